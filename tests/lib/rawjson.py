#!/usr/bin/env python3
"""rawjson.py - chats whose bytes a re-serializer would change, and checks
that a filter kept them (SPEC section 2: what the tools do not own leaves as
the bytes that came in).

  rawjson.py chat [--openai]   a chat to condense on stdout: a 30-digit seed,
                               members in an unusual order, \\u escapes, "\\/",
                               spaces and newlines between tokens
  rawjson.py same-but A B KEY  B is A's bytes with only the value of the
                               top-level member KEY changed (B may end with a
                               newline), and A's first and last elements of KEY
                               (an array) are in B's byte for byte
Prints what differs and exits 1 otherwise.
"""
import json
import sys

DEC = json.JSONDecoder()


def ws(s, i):
    while i < len(s) and s[i] in " \t\r\n":
        i += 1
    return i


def members(s):
    """{key: (value start, value end)} of the top-level object in s."""
    i = ws(s, 0)
    assert s[i] == "{", "not an object"
    out, i = {}, ws(s, i + 1)
    while s[i] != "}":
        key, i = DEC.raw_decode(s, i)
        i = ws(s, i)
        assert s[i] == ":"
        i = ws(s, i + 1)
        _, e = DEC.raw_decode(s, i)
        out[key] = (i, e)
        i = ws(s, e)
        if s[i] == ",":
            i = ws(s, i + 1)
    return out


def elements(s, a, b):
    """[(start, end)] of the elements of the array s[a:b]."""
    out, i = [], ws(s, a + 1)
    while i < b and s[i] != "]":
        _, e = DEC.raw_decode(s, i)
        out.append((i, e))
        i = ws(s, e)
        if s[i] == ",":
            i = ws(s, i + 1)
    return out


def chat(openai):
    step = ("Step {0}: please look at src\\/app\\/main{0}.py and tell me why the build "
            "fails. The tests were green yesterday and nothing in the dependency list "
            "changed since then, which is odd.")
    ans = ("Running the tests for step {0}.\\n```\\npytest tests\\/test_{0}.py\\n```\\n"
           "ValueError: bad value {0}\\nThe failure comes from the parser that reads the "
           "configuration, and it needs a guard.")
    msgs = ['{"content" : "You are a coding agent. Caf\\u00e9 \\ud83d\\ude00, paths: a\\/b.",'
            ' "role":"system"}']
    for i in range(6):
        msgs.append('{"role":"user","content":"%s"}' % step.format(i))
        msgs.append('{"role":"assistant","content":"%s"}' % ans.format(i))
    msgs.append('{"role":"user","content":"Now fix it, \\"quoted\\" \\/ \\u00e9."}')
    msgs.append('{ "role": "assistant", "content": "Done\\u0021" }')
    msgs.append('{"role":"user","content":"Thanks,\\tand now?"}')
    seed = "123456789012345678901234567890"
    if openai:
        head = '{ "seed":%s,  "temperature" : 0.50,\n "x_note": "caf\\u00e9 \\/",\n' % seed
    else:
        head = ('{ "options" : {"seed":%s, "temperature":0.50},\n "keep_alive":"10m",'
                ' "x_note": "caf\\u00e9 \\/",\n' % seed)
    return head + ' "messages": [\n  ' + ",\n  ".join(msgs) + \
        '\n ] ,\n "model":"qwen2.5-coder:7b", "stream" :false }\n'


def same_but(a, b, key):
    ma, mb = members(a), members(b)
    (sa, ea), (sb, eb) = ma[key], mb[key]
    bad = []
    if a[:sa] != b[:sb]:
        bad.append("before %s: %r != %r" % (key, a[:sa][-200:], b[:sb][-200:]))
    if a[ea:].rstrip("\n") != b[eb:].rstrip("\n"):
        bad.append("after %s: %r != %r" % (key, a[ea:][:200], b[eb:][:200]))
    ela = elements(a, sa, ea)
    for s, e in (ela[0], ela[-1]):
        if a[s:e] not in b[sb:eb]:
            bad.append("element not kept byte for byte: %r" % a[s:e][:200])
    if b[sb:eb] == a[sa:ea]:
        bad.append("%s unchanged: nothing was condensed" % key)
    return bad


def main():
    if sys.argv[1] == "chat":
        sys.stdout.write(chat("--openai" in sys.argv[2:]))
        return 0
    if sys.argv[1] == "same-but":
        a = open(sys.argv[2], encoding="utf-8").read()
        b = open(sys.argv[3], encoding="utf-8").read()
        bad = same_but(a, b, sys.argv[4])
        for line in bad:
            print(line)
        return 1 if bad else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
