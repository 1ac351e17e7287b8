#!/usr/bin/env python3
"""render_chat.py TEMPLATE FILE... - render each chat request (an Ollama
/api/chat JSON object with "messages" and optional "tools") through the Jinja
chat template TEMPLATE, set up the way Hugging Face transformers sets it up
(apply_chat_template), and print "FILE: <the exception message>" for each file
that fails. Exits 1 when any failed, 0 when none did, 2 on usage errors.

Ollama's tool_calls carry function.arguments as an object; it is passed as
it is (the Qwen templates take objects as well as strings)."""
import json
import sys
from datetime import datetime

import jinja2.ext
from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment


def raise_exception(message):
    raise TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    # transformers' own tojson: Jinja's escapes HTML and non-ASCII characters.
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent,
                      separators=separators, sort_keys=sort_keys)


def environment():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env


def main(argv):
    if len(argv) < 3:
        print("usage: render_chat.py TEMPLATE FILE...", file=sys.stderr)
        return 2
    try:
        with open(argv[1], encoding="utf-8") as f:
            template = environment().from_string(f.read())
    except (OSError, TemplateError) as e:
        print(f"render_chat.py: {argv[1]}: {e}", file=sys.stderr)
        return 2
    failed = 0
    for path in argv[2:]:
        try:
            with open(path, encoding="utf-8") as f:
                chat = json.load(f)
            template.render(messages=chat["messages"], tools=chat.get("tools") or None,
                            add_generation_prompt=True)
        except Exception as e:  # whatever the template or the input raised
            print(f"{path}: {e or type(e).__name__}")
            failed = 1
    return failed


if __name__ == "__main__":
    sys.exit(main(sys.argv))
