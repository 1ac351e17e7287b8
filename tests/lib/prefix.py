#!/usr/bin/env python3
"""prefix.py - does each condensed request start with the previous one's bytes?

    python3 tests/lib/prefix.py [-v] DIR

DIR holds pairs in.N.json / out.N.json (N: decimal digits, normally 4, e.g.
in.0007.json): in.N is the request sent to llm-mapreduce (or llm-summarize),
out.N the condensed request it printed. The pairs are taken in the numeric
order of N, which is the replay order: a conversation growing turn by turn.
A file is an Ollama or OpenAI chat request (an object with "messages") or a
bare JSON array of messages.

GPU0 sees render(messages), the ChatML string that tests/fake_ollama.py builds
("<|im_start|>ROLE\\nTEXT<|im_end|>\\n" per message, TEXT the content string or
its text parts joined; render is imported from there). GPU0's prompt cache
helps a request only as far as its rendered prompt starts with the previous
prompt's. For each request after the first (cur, with prev the one before it):

  common     length of the common prefix of render(prev_out) and render(cur_out)
  tail       the longest run of final messages of prev_out equal (as JSON
             values) to the final messages of prev_in: what prev kept verbatim
  threshold  where, in render(prev_out), the content of the last message before
             that tail ends (the tail's start minus len("<|im_end|>\\n")): a
             condensed part may grow by appending to that content, but all of
             it must be kept. When the tail is the whole of prev_out (nothing
             was condensed: an unchanged request), the threshold is the end of
             the content of prev_out's first user message (0 if it has none).
  keeps      1 when common >= threshold: the new request reuses all of the
             previous one's condensed part, 0 when it rewrote some of it
  share      common / len(render(cur_out)): the part of this request that GPU0
             has already processed

Lengths are in characters (code points) of the rendered string, as
fake_ollama.py counts them for its prefix cache (tokens = ceil(chars / 4),
prefilled = tokens - common // 4); for ASCII text they are bytes.

Output (tab-separated): with -v, a header line starting with "#" and one line
per request after the first:
    index  messages  chars  common  threshold  keeps  share  out_messages
(index: N; messages: of in.N; chars: len(render(out.N)); share: a fraction with
4 decimals; out_messages: of out.N); then always one summary line:
    summary  REQUESTS  KEEPS  KEEPS_PCT  MEAN_SHARE_PCT
(REQUESTS: the requests compared, i.e. pairs - 1; percentages with 1 decimal).
For example, in a bats test:
    run python3 tests/lib/prefix.py "$dir"
    pct=$(awk -F'\\t' '$1 == "summary" { print $4 }' <<<"$output")

Exit status: 0; 1 when DIR or a file is unreadable or not a chat, when an
in.N has no out.N (or the reverse), or when there are fewer than 2 pairs;
2 on a usage error.
"""
import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from fake_ollama import render  # noqa: E402  (tests/fake_ollama.py)

IM_END = "<|im_end|>\n"
PAIR = re.compile(r"^(in|out)\.([0-9]+)\.json$")


class Bad(Exception):
    pass


def messages_of(path):
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        raise Bad(f"{path}: {e}")
    msgs = doc.get("messages") if isinstance(doc, dict) else doc
    if not isinstance(msgs, list):
        raise Bad(f"{path}: not a chat (no messages array)")
    return [m for m in msgs if isinstance(m, dict)]   # as render() sees them


def load_pairs(d):
    try:
        names = os.listdir(d)
    except OSError as e:
        raise Bad(f"{d}: {e.strerror}")
    seen = {}
    for name in names:
        m = PAIR.match(name)
        if m:
            seen.setdefault(int(m.group(2)), {})[m.group(1)] = os.path.join(d, name)
    pairs = []
    for n in sorted(seen):
        f = seen[n]
        if "in" not in f or "out" not in f:
            raise Bad(f"{d}: {'in' if 'in' not in f else 'out'}.{n:04d}.json missing")
        pairs.append((n, messages_of(f["in"]), messages_of(f["out"])))
    if len(pairs) < 2:
        raise Bad(f"{d}: {len(pairs)} in.N.json/out.N.json pairs, at least 2 needed")
    return pairs


def tail_len(pin, pout):
    """Messages at the end of pout equal to those at the end of pin."""
    n = 0
    while n < len(pin) and n < len(pout) and pin[-1 - n] == pout[-1 - n]:
        n += 1
    return n


def threshold(pin, pout):
    t = tail_len(pin, pout)
    if t < len(pout):
        return len(render(pout[:len(pout) - t])) - len(IM_END)
    # Nothing condensed: keep at least through the first user message.
    pos = 0
    for m in pout:
        pos += len(render([m]))
        if m.get("role") == "user":
            return pos - len(IM_END)
    return 0


def common_prefix(a, b):
    return len(os.path.commonprefix([a, b]))


def measure(pairs):
    """One row per request after the first."""
    rows = []
    prev = None
    for n, cin, cout in pairs:
        r = render(cout)
        if prev is not None:
            pin, pout, pr = prev
            common = common_prefix(pr, r)
            th = threshold(pin, pout)
            rows.append({"index": n, "messages": len(cin), "chars": len(r), "common": common,
                         "threshold": th, "keeps": int(common >= th),
                         "share": common / len(r) if r else 1.0, "out_messages": len(cout)})
        prev = (cin, cout, r)
    return rows


def main(argv):
    args = argv[1:]
    verbose = False
    if args and args[0] == "-v":
        verbose, args = True, args[1:]
    if len(args) != 1 or args[0].startswith("-"):
        print("usage: prefix.py [-v] DIR   (DIR holds in.NNNN.json / out.NNNN.json)", file=sys.stderr)
        return 2
    try:
        rows = measure(load_pairs(args[0]))
    except Bad as e:
        print(f"prefix.py: {e}", file=sys.stderr)
        return 1
    if verbose:
        print("# index\tmessages\tchars\tcommon\tthreshold\tkeeps\tshare\tout_messages")
        for x in rows:
            print(f"{x['index']}\t{x['messages']}\t{x['chars']}\t{x['common']}\t{x['threshold']}\t"
                  f"{x['keeps']}\t{x['share']:.4f}\t{x['out_messages']}")
    n = len(rows)
    keeps = sum(x["keeps"] for x in rows)
    share = sum(x["share"] for x in rows) / n
    print(f"summary\t{n}\t{keeps}\t{100 * keeps / n:.1f}\t{100 * share:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
