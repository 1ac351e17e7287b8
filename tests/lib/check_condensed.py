#!/usr/bin/env python3
"""check_condensed.py IN OUT STDERR TARGET PRESERVE [KEEP_LAST [mapreduce]]
        [--chunk-target N] [--summarize-system]
check_condensed.py tool-chats DIR

Checks, independently of the C code, what SPEC section 3 promises of a
condensed chat (llm-summarize, llm-mapreduce with "mapreduce"):
- every field but "messages" is unchanged;
- the leading system messages are unchanged, and the task (the first
  user message) follows them verbatim, unless the log (-v) says it was
  condensed ("task ... kept=no: ...");
- then comes one user message, the block: its head line, then spans, each
  "--- Summary ---", a summary, and maybe "--- Kept verbatim from it ---"
  and that span's extract (Errors:, Files:, Code:); no message ranges;
- then the system messages of the middle, then the tail (the last user
  message or tool result and all after it, and at least the last
  KEEP_LAST messages, never starting at a tool result), unchanged; with
  "mapreduce", what is kept verbatim may start earlier (the open chunk and
  the closed chunks not yet switched in), but never at a tool result;
- the output holds a user message; no run of non-system messages starts
  with a tool result; every tool result follows its call, and every call
  that had results in the input has them in the output;
- every fenced code block, file path and error line of what was condensed
  is in an extract verbatim, or named as dropped on stderr (-v);
- each span's summary is within TARGET tokens (with "mapreduce": within
  --chunk-target, default 300, and the block holds at most
  max(2, TARGET / (chunk target + PRESERVE + 24)) spans), each span's
  extract within PRESERVE (as llm-estimate counts), and an extractive
  summary never repeats a line or sentence its own extract lists;
- the output is not larger than the input.
Prints one line per problem; exits 1 when there is any.

"tool-chats DIR" writes the synthetic tool-calling chats the corpus tests
check as well (DIR/tools-*.json): assistant messages with tool_calls
(arguments as objects) and tool results, the task the only user message;
in tools-bigtask.json the task is over half of the chat.
"""
import json
import os
import re
import subprocess
import sys

HEAD = "--- Earlier conversation, condensed by llm-route: summaries, oldest first ---\n"
SPAN = "--- Summary ---\n"
KEPT = "--- Kept verbatim from it ---\n"
SPAN_OVERHEAD = 24
PATH = re.compile(r"(?<![\w./~-])((?:[\w.-]+/)+[\w-]+\.(?:py|c|h|txt|md|json|js|cfg|toml|yaml|yml|sh|rst))(?![\w/])", re.A)
ERROR = re.compile(r"Error:|error:|Traceback \(most recent call last\):")
ROLE_LINE = re.compile(r"(user|assistant|system|tool):(?= )")


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


def events(err, name):
    """The log lines (logfmt under -v, or JSON) of one event."""
    out = []
    for line in err.splitlines():
        if line.startswith("{"):
            try:
                d = json.loads(line)
            except ValueError:
                continue
            if d.get("event") == name:
                out.append({k: str(v) for k, v in d.items()})
        elif re.search(r": %s " % re.escape(name), line):
            out.append(logfmt(line.split(": %s " % name, 1)[1]))
    return out


def estimate(s):
    if not s:
        return 5	# what llm-estimate counts for a text besides its own
    return int(subprocess.run(["llm-estimate", "-n", "--text"], input=s.encode(),
                              capture_output=True, check=True).stdout)


def parse_spans(body):
    """The spans of a block's body: [(summary, extract)], or None."""
    spans, pos = [], 0
    while pos < len(body):
        if not body.startswith(SPAN, pos):
            return None
        start = pos + len(SPAN)
        q = body.find("\n" + SPAN, start)
        if q < 0:
            content, pos = body[start:], len(body)
        else:
            content, pos = body[start:q], q + 1
        if content.startswith(KEPT):
            summary, kept = "", content[len(KEPT):]
        elif "\n" + KEPT in content:
            summary, kept = content.split("\n" + KEPT, 1)
        else:
            summary, kept = content, ""
        spans.append((summary.rstrip("\n"), kept))
    return spans


def extract_items(kept):
    """The items of an extract, as strings (error lines, paths, code lines)."""
    items, section = [], None
    for line in kept.split("\n"):
        if line == "Errors:" and section is None:
            section = "errors"
        elif line.startswith("Files: ") and section in (None, "errors"):
            section = "files"
            items += line[len("Files: "):].split(", ")
        elif line == "Code:" and section in (None, "errors", "files"):
            section = "code"
        elif line:
            items.append(line)
    return items


def units(t):
    """Candidate units of the extractive summary: the lines of a text,
    long ones (over 240 bytes) cut into sentences, each trimmed, the way
    extract.c cuts them."""
    out, ws = set(), b" \t\n\v\f\r"
    for line in t.encode().split(b"\n"):
        if line.endswith(b"\r"):
            line = line[:-1]
        cut = [line]
        if len(line) > 240:
            cut, s = [], 0
            for q in range(len(line) - 1):
                if line[q:q + 1] in (b".", b"?", b"!") and line[q + 1:q + 2] == b" " and q - s > 20:
                    cut.append(line[s:q + 1])
                    s = q + 2
            cut.append(line[s:])
        for u in cut:
            u = u.strip(ws)
            if len(u) >= 3:
                out.add(u.decode(errors="replace"))
    return out


class Segmenter:
    """Does a summary line "role: u1 u2 ..." read as units of the condensed
    messages, and must one of them be a unit the extract lists?"""

    def __init__(self, us):
        self.long, self.short = {}, set()
        for u in us:
            if len(u) >= 8:
                self.long.setdefault(u[:8], []).append(u)
            else:
                self.short.add(u)

    def starting(self, s, i):
        for u in self.long.get(s[i:i + 8], ()):
            if s.startswith(u, i):
                yield u
        for k in range(1, 8):
            if s[i:i + k] in self.short and i + k <= len(s):
                yield s[i:i + k]

    def repeats(self, line, listed):
        """None when the line is not made of units (a helper's summary);
        else the listed unit it cannot do without, or ""."""
        m = ROLE_LINE.match(line)
        if not m:
            return None
        s = line[m.end():]
        # States: offsets of the space before a unit.  clean: reachable
        # with unlisted units only; any: with any units.
        clean, anyr, bad = {0}, {0}, {}
        for j in range(len(s)):
            if j not in anyr or s[j] != " ":
                continue
            for u in self.starting(s, j + 1):
                e = j + 1 + len(u)
                if e < len(s) and s[e] != " ":
                    continue
                anyr.add(e)
                if j in clean:
                    if listed(u):
                        bad.setdefault(e, u)
                    else:
                        clean.add(e)
        if len(s) in clean:
            return ""
        if len(s) in anyr:
            return bad.get(len(s), next(iter(bad.values()), "?"))
        return None


def tool_run_problems(bm, am):
    problems = []
    if not any(m.get("role") == "user" for m in bm):
        problems.append("no user message in the output")
    for k, m in enumerate(bm):
        role = m.get("role")
        if role == "tool":
            j = k
            while j > 0 and bm[j - 1].get("role") == "tool":
                j -= 1
            if j == 0 or bm[j - 1].get("role") == "system":
                problems.append(f"output message {k + 1}: a part starts with a tool result")
            elif bm[j - 1].get("role") != "assistant":	# (calls may be in its text)
                problems.append(f"output message {k + 1}: a tool result without its call")
        elif role == "assistant" and m.get("tool_calls"):
            if k + 1 < len(bm) and bm[k + 1].get("role") == "tool":
                continue
            had = [i for i, x in enumerate(am) if x == m and i + 1 < len(am) and am[i + 1].get("role") == "tool"]
            if had:
                problems.append(f"output message {k + 1}: a call without its tool results")
    return problems


def main(argv):
    flags = {"--summarize-system": False, "--chunk-target": "300"}
    pos, i = [], 0
    while i < len(argv):
        if argv[i] == "--summarize-system":
            flags[argv[i]] = True
        elif argv[i] == "--chunk-target":
            i += 1
            flags["--chunk-target"] = argv[i]
        else:
            pos.append(argv[i])
        i += 1
    src, dst, err = (open(f, "rb").read().decode() for f in pos[0:3])
    target, preserve = int(pos[3]), int(pos[4])
    keep_last = int(pos[5]) if len(pos) > 5 else 4
    mapreduce = len(pos) > 6 and pos[6] == "mapreduce"
    chunk_target = int(flags["--chunk-target"])
    summarize_system = flags["--summarize-system"]
    a, b = json.loads(src), json.loads(dst)
    problems = []
    am = a["messages"] if isinstance(a, dict) else a
    bm = b["messages"] if isinstance(b, dict) else b
    if isinstance(a, dict) != isinstance(b, dict):
        problems.append("the shape changed")
        return report(problems)
    if isinstance(a, dict):
        if {k: v for k, v in a.items() if k != "messages"} != {k: v for k, v in b.items() if k != "messages"}:
            problems.append("fields other than messages changed")
    n = len(am)

    def taken(i):	# condensed when in the middle (the task aside)
        return summarize_system or am[i]["role"] != "system"

    sys_end = 0
    while not summarize_system and sys_end < n and am[sys_end]["role"] == "system":
        sys_end += 1
    turns = [i for i, m in enumerate(am) if m["role"] in ("user", "tool")]
    tail = min(turns[-1] if turns else n, n - keep_last)
    while sys_end < tail < n and am[tail]["role"] == "tool":
        tail -= 1
    tail = max(tail, sys_end)
    first_user = next((i for i in range(sys_end, tail) if am[i]["role"] == "user"), None)
    condensed_task = first_user is not None and any(
        e.get("message") == str(first_user + 1) and e.get("kept", "").startswith("no")
        for e in events(err, "task"))
    task = None if condensed_task else first_user
    middle = [i for i in range(sys_end, tail) if taken(i) and i != task]
    if not middle:
        if a != b:
            problems.append("nothing to condense, but the output differs")
        return report(problems)
    if a == b:
        if "how=unchanged why=" not in err and '"why":' not in err:
            problems.append("unchanged, and the log does not say why")
        return report(problems)

    # System messages, the task, the block.
    for i in range(sys_end):
        if i >= len(bm) or bm[i] != am[i]:
            problems.append(f"system message {i + 1} changed")
    k = sys_end
    task_in_front = task is not None and k < len(bm) and bm[k] == am[task]
    if task_in_front:
        k += 1
    block = bm[k] if k < len(bm) else {}
    t = block.get("content")
    if block.get("role") != "user" or not isinstance(t, str) or not t.startswith(HEAD + "\n"):
        problems.append(f"output message {k + 1} is not the block: a user message that starts with the head line"
                        + ("" if task is None or task_in_front else " (and the task is not right after the system messages)"))
        return report(problems)
    spans = parse_spans(t[len(HEAD) + 1:])
    if not spans:
        problems.append("the block is not made of spans: " + repr(t[len(HEAD):len(HEAD) + 80]))
        return report(problems)

    # What is kept verbatim after the block: the system messages of the
    # middle, then the tail (mapreduce: from where the open region starts).
    rest = bm[k + 1:]

    def expect(o):
        return [am[i] for i in range(sys_end, o) if not taken(i) and i != task] + am[o:]

    starts = [o for o in range(tail, sys_end, -1) if expect(o) == rest] if mapreduce else \
        [tail] if expect(tail) == rest else []
    if not starts:
        problems.append("the tail (or a system message in the middle) changed"
                        + (", or what mapreduce keeps verbatim is not a run of the input's last messages" if mapreduce else ""))
        return report(problems)
    o = starts[0]
    if o < n and am[o]["role"] == "tool":
        problems.append(f"what is kept verbatim starts at a tool result (message {o + 1})")
    if task is not None:
        if task_in_front and task >= o:
            problems.append("the task is both in front and in what is kept verbatim")
        if not task_in_front and task < o:
            problems.append("the task is not kept verbatim right after the system messages")
    middle = [i for i in range(sys_end, o) if taken(i) and i != task]
    problems += tool_run_problems(bm, am)

    # Each span: the summary and the extract within their budgets.
    limit = chunk_target if mapreduce else target
    if not mapreduce and len(spans) != 1:
        problems.append(f"{len(spans)} spans, not one")
    if mapreduce:
        most = max(2, target // (chunk_target + preserve + SPAN_OVERHEAD))
        if len(spans) > most:
            problems.append(f"{len(spans)} spans, over {most} (target {target})")
    extracts = "\n".join(kept for _, kept in spans)
    seg = None
    for j, (summary, kept) in enumerate(spans, 1):
        st = estimate(summary.strip()) - 5
        if st > limit:
            problems.append(f"span {j}: summary of {st} tokens, over {limit}")
        if kept:
            pt = estimate(kept) - 5
            if pt > preserve + preserve // 20 + 10:
                problems.append(f"span {j}: extract of {pt} tokens, over {preserve}")
        items = extract_items(kept)
        if not items or not summary:
            continue
        if seg is None:
            us = set()
            for i in middle:
                us |= units(text(am[i]))
                if am[i].get("tool_calls"):
                    us |= units("[tool calls] " + json.dumps(am[i]["tool_calls"], separators=(",", ":"), ensure_ascii=False))
            seg = Segmenter(us)
        for line in summary.split("\n"):
            u = seg.repeats(line, lambda u: any(u in it for it in items))
            if u:
                problems.append(f"span {j}: the summary repeats what its extract lists: {u[:80]!r}")

    # Verbatim items of what was condensed.
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
            if it in extracts:
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
    if estimate(dst) > estimate(src):
        problems.append("the output is larger than the input")
    return report(problems)


def report(problems):
    for p in problems:
        print(p)
    return 1 if problems else 0


def tool_chats(d):
    """Synthetic tool-calling chats: the task is the only user message."""
    words = ("parser config loader cache index worker request handler token "
             "buffer stream schema record field module import export build").split()

    def prose(seed, n):
        return " ".join(words[(seed * 7 + i * 3 + i * i) % len(words)] for i in range(n)) + "."

    def chat(name, steps, task_words, task_code=0):
        task = ("Fix the failing build of the importer. " + prose(1, task_words) +
                "\nThe error we see is in src/importer/core.py:\n"
                "```\nValueError: bad header in batch.csv\n```\n")
        for j in range(task_code):
            task += "\n```python\n" + "\n".join(f"def step_{j}_{i}(x):\n    return x + {i}" for i in range(40)) + "\n```\n"
        msgs = [{"role": "system", "content": "You are a coding agent with tools."},
                {"role": "user", "content": task}]
        for s in range(steps):
            calls = [{"id": f"call_{s}_0", "type": "function",
                      "function": {"name": "bash", "arguments": {"command": f"pytest tests/test_step{s}.py -x"}}}]
            if s % 3 == 1:
                calls.append({"id": f"call_{s}_1", "type": "function",
                              "function": {"name": "read_file",
                                           "arguments": {"path": f"src/importer/mod{s}.py", "lines": [1, 80]}}})
            msgs.append({"role": "assistant", "content": f"Step {s}: " + prose(s, 40), "tool_calls": calls})
            for c in calls:
                if c["function"]["name"] == "bash":
                    out = (f"collected {s + 3} items\n\ntests/test_step{s}.py F\n\n"
                           "Traceback (most recent call last):\n"
                           f"  File \"src/importer/mod{s}.py\", line {10 + s}, in load\n"
                           f"    return parse(row{s})\n"
                           f"ValueError: bad value {s} in column {s % 5}\n" + prose(s + 1, 60))
                else:
                    out = ("```python\n" + "\n".join(f"line_{s}_{i} = load('{words[i % len(words)]}')" for i in range(25)) +
                           "\n```\n" + prose(s + 2, 30))
                msgs.append({"role": "tool", "tool_call_id": c["id"], "name": c["function"]["name"], "content": out})
        msgs.append({"role": "assistant", "content": "The build passes now. " + prose(steps, 20)})
        with open(os.path.join(d, f"tools-{name}.json"), "w") as f:
            json.dump({"model": "qwen2.5-coder:7b", "stream": False, "messages": msgs}, f)

    os.makedirs(d, exist_ok=True)
    chat("small", 8, 60)
    chat("large", 90, 120)
    chat("bigtask", 14, 3000, task_code=12)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "tool-chats":
        sys.exit(tool_chats(sys.argv[2]))
    sys.exit(main(sys.argv[1:]))
