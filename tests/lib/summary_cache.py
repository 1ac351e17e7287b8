#!/usr/bin/env python3
"""summary_cache.py - the summary cache's keys and entries, as the C code makes them.

    python3 tests/lib/summary_cache.py transcripts < REQUESTS
    python3 tests/lib/summary_cache.py keys VERSION TARGET < REQUESTS
    python3 tests/lib/summary_cache.py put DIR KEY TEXT

REQUESTS: the helper's chat requests as `fake_requests NAME` prints them (one
JSON log line of tests/fake_ollama.py each, the request in "body").  A summary
request (src/condense.c condense_request) holds the transcript T as its second
message: "<conversation>\\n" T "</conversation>\\n\\nSummarize the conversation
above in at most N words."

transcripts  prints each request's transcript as a JSON string, one a line.
keys         prints each request's cache key for PROMPT_VERSION VERSION and a
             summary of TARGET tokens (--chunk-target), one a line: as
             summary_key() in src/mapreduce.c and cache_key() in src/cache.c
             make it, the SHA-256 (lower-case hex) of the parts "llm-route
             summary", VERSION, the model (the request's), TARGET and T, each
             followed by a NUL byte.
put          writes the entry KEY holding TEXT into the cache directory DIR as
             cache_put() in src/cache.c does: a header line "llm-route-cache 1
             LENGTH SHA256\\n" (SHA256: lower-case hex of the data), then the
             LENGTH bytes of TEXT (UTF-8).

Exit status: 0; 1 when a request is not a summary request; 2 on a usage error.
"""
import hashlib
import json
import os
import re
import sys

REQ = re.compile(r"\A<conversation>\n(.*)</conversation>\n\nSummarize the conversation "
                 r"above in at most [0-9]+ words\.\Z", re.S)


def requests():
    for line in sys.stdin:
        if not line.strip():
            continue
        body = json.loads(line)["body"]
        m = REQ.match(body["messages"][1]["content"])
        if m is None:
            sys.exit("summary_cache.py: not a summary request: "
                     + body["messages"][1]["content"][:80])
        yield body["model"], m.group(1)


def key(version, model, target, transcript):
    h = hashlib.sha256()
    for p in ("llm-route summary", version, model, target, transcript):
        h.update(p.encode("utf-8") + b"\0")
    return h.hexdigest()


def main(argv):
    if len(argv) == 2 and argv[1] == "transcripts":
        for _, t in requests():
            print(json.dumps(t))
    elif len(argv) == 4 and argv[1] == "keys":
        for model, t in requests():
            print(key(argv[2], model, argv[3], t))
    elif len(argv) == 5 and argv[1] == "put":
        data = argv[4].encode("utf-8")
        with open(os.path.join(argv[2], argv[3]), "wb") as f:
            f.write(b"llm-route-cache 1 %d %s\n" % (len(data),
                    hashlib.sha256(data).hexdigest().encode()))
            f.write(data)
    else:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
