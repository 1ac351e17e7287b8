#!/usr/bin/env python3
"""check_condensed.py IN OUT STDERR TARGET PRESERVE [KEEP_LAST [mapreduce]]

Checks, independently of the C code, what SPEC section 3 promises of a
condensed chat (llm-summarize, llm-mapreduce):
- every field but "messages" is unchanged;
- the leading system messages are unchanged, but for the summary block
  appended to the last of them (or a new leading system message);
- the tail (the last user message or tool result and all after it, and
  at least the last KEEP_LAST messages, never starting at a tool result)
  is unchanged; with "mapreduce", the block may stop earlier, where the
  open chunk kept verbatim starts;
- every fenced code block, file path and error line of the middle is in
  the output verbatim, or named as dropped on stderr (-v);
- the summary is within TARGET tokens and the preserved part within
  PRESERVE (as llm-estimate counts), and the output is not larger.
Prints one line per problem; exits 1 when there is any.
"""
import json
import re
import subprocess
import sys

HEAD = re.compile(r"--- Earlier conversation \(messages (\d+)-(\d+)\), condensed by llm-route ---\n")
KEPT = "--- Kept verbatim from it, newest first ---\n"
END = "--- End of the condensed conversation ---"
PATH = re.compile(r"(?<![\w./~-])((?:[\w.-]+/)+[\w-]+\.(?:py|c|h|txt|md|json|js|cfg|toml|yaml|yml|sh|rst))(?![\w/])", re.A)
ERROR = re.compile(r"Error:|error:|Traceback \(most recent call last\):")


def text(m):
    c = m.get("content")
    if isinstance(c, str):
        return c
    if isinstance(c, list):
        return "\n".join(p if isinstance(p, str) else p.get("text", "")
                         for p in c if isinstance(p, str) or p.get("type") == "text")
    return ""


def code_blocks(t):
    out, lines, i = [], t.split("\n"), 0
    while i < len(lines):
        m = re.match(r" {0,3}(`{3,}|~{3,})", lines[i])
        if not m:
            i += 1
            continue
        fence, j = m.group(1), i + 1
        while j < len(lines) and not re.match(r" {0,3}" + re.escape(fence[0]) + "{%d,}\\s*$" % len(fence), lines[j]):
            j += 1
        out.append("\n".join(lines[i:j + 1]).rstrip("\r"))
        i = j + 1
    return out


def logfmt(line):
    """key=value pairs; quoted values have \\ and \" escapes."""
    out = {}
    for k, q, v in re.findall(r'(\w+)=(?:"((?:[^"\\]|\\.)*)"|(\S+))', line):
        out[k] = re.sub(r"\\(.)", r"\1", q) if q or not v else v
    return out


def estimate(s):
    return int(subprocess.run(["llm-estimate", "-n", "--text"], input=s.encode(),
                              capture_output=True, check=True).stdout)


def main():
    src, dst, err = (open(f, "rb").read().decode() for f in sys.argv[1:4])
    target, preserve = int(sys.argv[4]), int(sys.argv[5])
    keep_last = int(sys.argv[6]) if len(sys.argv) > 6 else 4
    mapreduce = len(sys.argv) > 7 and sys.argv[7] == "mapreduce"
    a, b = json.loads(src), json.loads(dst)
    problems = []
    am = a["messages"] if isinstance(a, dict) else a
    bm = b["messages"] if isinstance(b, dict) else b
    if isinstance(a, dict):
        if {k: v for k, v in a.items() if k != "messages"} != {k: v for k, v in b.items() if k != "messages"}:
            problems.append("fields other than messages changed")
    n = len(am)
    sys_end = 0
    while sys_end < n and am[sys_end]["role"] == "system":
        sys_end += 1
    turns = [i for i, m in enumerate(am) if m["role"] in ("user", "tool")]
    tail = min(turns[-1] if turns else n, n - keep_last)
    while sys_end < tail < n and am[tail]["role"] == "tool":
        tail -= 1
    tail = max(tail, sys_end)
    middle = [i for i in range(sys_end, tail) if am[i]["role"] != "system"]
    if not middle:
        if a != b:
            problems.append("nothing to condense, but the output differs")
        return report(problems)
    if a == b:
        if "how=unchanged why=" not in err and '"why":' not in err:
            problems.append("unchanged, and the log does not say why")
        return report(problems)
    # Leading system messages: unchanged, the block after the last one.
    lead = bm[0]
    block_owner = lead if sys_end == 0 else bm[sys_end - 1]
    for i in range(sys_end - 1):
        if bm[i] != am[i]:
            problems.append(f"system message {i} changed")
    t = text(block_owner)
    if sys_end > 0:
        orig = text(am[sys_end - 1])
        if not t.startswith(orig + "\n\n") and not t.startswith(orig + "\n"):
            problems.append("the last system message does not start with its original text")
        t = t[len(orig):].lstrip("\n")
    m = HEAD.match(t)
    if not m or not t.endswith(END):
        problems.append("no summary block with its header and end line")
        return report(problems)
    if mapreduce and sys_end < int(m.group(2)) <= tail:
        tail = int(m.group(2))	# the open chunk, kept verbatim, and the tail
        middle = [i for i in range(sys_end, tail) if am[i]["role"] != "system"]
    if (int(m.group(1)), int(m.group(2))) != (sys_end + 1, tail):
        problems.append(f"the block names messages {m.group(1)}-{m.group(2)}, not {sys_end + 1}-{tail}")
    body = t[m.end():-len(END)]
    summary, _, kept = body.partition(KEPT)
    # Tail and middle system messages unchanged, in order.
    want = [am[i] for i in range(sys_end, tail) if am[i]["role"] == "system"] + am[tail:]
    if bm[max(sys_end, 1):] != want:
        problems.append("the tail (or a system message in the middle) changed")
    # Verbatim items of the middle.
    dropped = [json.loads(l) if l.startswith("{") else logfmt(l)
               for l in err.splitlines() if " dropped " in l or '"dropped"' in l]
    for d in dropped:
        d["item"] = str(d.get("item", ""))
        d["message"] = int(d.get("message", -1))
    for i in middle:
        mt = text(am[i])
        items = code_blocks(mt)
        items += [p for p in PATH.findall(mt)]
        items += [l.rstrip("\r") for l in mt.split("\n") if ERROR.search(l) and len(l) <= 500]
        for it in items:
            if it in kept:
                continue
            # Named by its first 100 characters (line ends as spaces),
            # from this message or a later one with the same item (one of
            # each is kept, the newest), or a line inside a dropped code
            # block or traceback of this message or a later one.
            flat = re.sub(r"[\x00-\x1f\x7f]", " ", it)
            named = [d for d in dropped if d["message"] >= i + 1 and
                     (flat.startswith(d["item"].removesuffix("...")[:97]) or
                      "\n" not in it and (d.get("kind") == "code" or
                                          d["item"].startswith("Traceback")))]
            if not named:
                problems.append(f"message {i + 1}: not kept and not named as dropped: {it[:80]!r}")
    st = estimate(summary.strip()) - 5
    if st > target:
        problems.append(f"summary of {st} tokens, over the target {target}")
    if kept:
        pt = estimate(kept) - 5
        if pt > preserve + preserve // 20 + 10:
            problems.append(f"preserved part of {pt} tokens, over {preserve}")
    if estimate(dst) > estimate(src):
        problems.append("the output is larger than the input")
    return report(problems)


def report(problems):
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
