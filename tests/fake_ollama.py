#!/usr/bin/env python3
"""fake_ollama.py - a fake Ollama / OpenAI-compatible LLM server for the test suites.

Speaks the real wire formats (Ollama NDJSON, OpenAI SSE), answers
deterministically, models latency (prefill and decode tokens/s, a prompt-prefix
cache, a context limit with Ollama's silent truncation), injects faults chosen
per test through POST /_control, and logs every request as JSON lines.
Standard library only (Python 3.11).

    python3 tests/fake_ollama.py --port 0 --port-file FILE --log FILE
        [--num-ctx N] [--prefill-tps X] [--decode-tps X] [--ctx-length N]
        [--models A,B] [--api-key KEY] [--slots N] [--set JSON] [--name LABEL]

Binds 127.0.0.1 only, writes the port to --port-file (tmp file then rename)
once listening, prints nothing on stdout, exits 0 on SIGTERM.

Answer (a function of model and messages only):
    fake answer from MODEL: <first 8 words of the last user message> [N tokens, H]
N is prompt_eval_count; H is 8 hex digits of sha256 of the messages array as
canonical JSON (keys sorted, no spaces, UTF-8). Streamed one word (with its
trailing whitespace) per chunk; the chunks concatenate to the exact text.
Prompt tokens: each message rendered "<|im_start|>ROLE\\nTEXT<|im_end|>\\n"
(TEXT: the content string or its concatenated text parts), ceil(chars/4 * R)
with R the token_ratio (1: ceil(chars/4)); the truncation to num_ctx and the
prefix cache count the same way.
Times are synthetic so a reply is reproducible byte for byte from the same
server state: created_at starts at 2026-01-01T00:00:00Z plus modelled time, and
durations are modelled (at notional 5000/100 tokens/s when a rate is 0, which
means "no delay").

Control (POST /_control, a JSON object merged into the settings; POST /_reset
goes back to the start flags and empties the prefix cache):
  answer TEXT | answer_words N | thinking none|field|tags|only
  tool_calls [{"function": {"name", "arguments": {..}}}] (a last chunk of tool calls)
  usage_chunk separate|final   prefill_tps X  decode_tps X  (0: no delay)
  num_ctx N (0: none; a request's options.num_ctx wins on /api/chat)
  ctx_length N (/api/show)  ctx_lengths {"MODEL": N} (/api/show, per model)
  models [..] ([]: any model)  api_key KEY (/v1/*)
  show_delay S (/api/show answers after S seconds, or not before the client
    gives up: a hung server)
  token_ratio R (the engine's tokenizer counts R times ceil(chars/4); 1.0)
  log_raw true: the log lines also hold "raw", the request body's bytes as
    base64 (the "body" is re-parsed, which changes numbers, escapes and order)
  slots N (0: unlimited) at most N chat requests are served at once, as Ollama
    with OLLAMA_NUM_PARALLEL=N: the others wait in a queue, first come first
    served, before anything of their reply is sent (their time to first byte
    runs meanwhile); "queued_s" in the end line is the time each waited
Faults, for chat requests only; setting any of them (re)starts `count`:
  count N (the next N requests, null: until reset)  only_model M
  refuse  status CODE  error MSG  error_after K  drop_after K
  drop_mode clean|abort|reset  malformed_after K  split  split_bytes N
  split_delay S  coalesce N|true  no_final_newline  stall_after K
  stall_seconds S  first_byte_delay S  gate PATH
  flood N  huge_line N  trickle S
K counts message chunks; K >= their number means "just before the done line".
Hostile backends (streaming only; for bench/hostile.sh): flood N streams N
one-character chunks ("x") instead of the answer, as fast as it can (many lines
to a write), then the done line, ignoring num_predict; huge_line N streams one
message chunk whose content is N bytes ("x"), in HTTP chunks of 1 MiB, then
the done line; trickle S sends the answer, then a "." chunk every S seconds and
never the done line, until the client hangs up. The log's answer is then a
stand-in ("<flood: N chunks>", "<huge_line: N bytes>") or the words sent.

Log lines (--log FILE and GET /_log), one JSON object each, flushed:
    {"event":"start","seq","server","t_start","method","path","headers","body",
     "raw" (with log_raw)}
    {"event":"end", ...the same..., "t_end","status","fault","prompt_tokens",
     "prefilled_tokens","eval_count","truncated","answer","thinking",
     "completed","client_gone","queued_s" (chat requests let in)}
    {"event":"gate_wait"|"gate_open"|"last_chunk","seq","t"}  (gate only)
    {"event":"reset","t"}                                       (POST /_reset)
The /_* harness endpoints themselves are not logged.
"""
import argparse
import base64
import collections
import hashlib
import json
import math
import os
import re
import select
import signal
import socket
import struct
import sys
import threading
import time
from fractions import Fraction
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

EPOCH = 1767225600                       # 2026-01-01T00:00:00Z
NOTIONAL_PREFILL, NOTIONAL_DECODE = 5000, 100
DEFAULT_MODELS = ["qwen2.5-coder:7b", "qwen3:1.7b"]
CHAT_PATHS = ("/api/chat", "/v1/chat/completions")
VOCAB = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo "
         "lima mike november oscar papa").split()

DEFAULTS = {
    # answer
    "answer": None,            # fixed answer text
    "answer_words": 0,         # N deterministic words instead of the default answer
    "thinking": "none",        # none | field | tags | only
    "tool_calls": None,        # a list of Ollama tool calls, sent after the text
    "usage_chunk": "separate",  # OpenAI usage: separate chunk (choices []) | final
    # latency, context, models
    "prefill_tps": 0.0, "decode_tps": 0.0, "num_ctx": 0, "ctx_length": 32768,
    "ctx_lengths": {},         # {"model": N}: /api/show's context length for that model
    "models": [],              # [] = any model exists
    "api_key": None,           # when set, /v1/* needs "Authorization: Bearer KEY"
    "token_ratio": 1.0,        # prompt tokens: ceil(chars/4 * token_ratio)
    "slots": 0,                # chat requests served at once (0: unlimited); the rest queue
    "show_delay": 0.0,         # seconds /api/show waits before its reply (a hung server)
    "log_raw": False,          # log lines also hold "raw": the body's bytes, base64
    # faults (chat requests only); "count" limits them to the next N requests
    "count": None, "only_model": None,
    "refuse": False, "status": 0, "error": None,
    "error_after": None, "drop_after": None, "drop_mode": "clean",
    "malformed_after": None,
    "split": False, "split_bytes": 3, "split_delay": 0.002,
    "coalesce": 0, "no_final_newline": False,
    "stall_after": None, "stall_seconds": 0.0,
    "first_byte_delay": 0.0, "gate": None,
    "flood": 0, "huge_line": 0, "trickle": 0.0,   # hostile backends (bench/hostile.sh)
}
FAULT_KEYS = list(DEFAULTS)[list(DEFAULTS).index("count"):]
ERROR_TEXT = {400: "invalid request", 401: "unauthorized", 429: "too many requests",
              500: "llama runner process has terminated: exit status 2",
              503: "server busy, please try again.  maximum pending requests exceeded"}
OPENAI_TYPE = {400: "invalid_request_error", 401: "invalid_request_error",
               404: "not_found_error"}


class ClientGone(Exception):
    pass


def text_of(content):
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content
                       if isinstance(p, dict) and p.get("type", "text") == "text")
    return ""


def render(messages):
    return "".join(f"<|im_start|>{m.get('role', '')}\n{text_of(m.get('content'))}<|im_end|>\n"
                   for m in messages if isinstance(m, dict))


def tokens(s, ratio=1):
    """ceil(chars/4 * ratio): an engine whose tokenizer counts ratio times the estimate."""
    return math.ceil(Fraction(len(s)) * ratio / 4)


def ratio_of(s):
    """token_ratio as an exact fraction (1.2 is 6/5), so that counts do not drift."""
    r = Fraction(str(s["token_ratio"]))
    if r <= 0:
        raise ValueError("token_ratio must be more than 0")
    return r


def words(text):
    w = re.findall(r"\s*\S+\s*", text)
    return w if "".join(w) == text else ([text] if text else [])


def answer(model, messages, ptok, s):
    """The answer text (before thinking) and the 8-hex-digit hash of the messages."""
    canon = json.dumps(messages, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    h = hashlib.sha256(canon.encode()).hexdigest()[:8]
    if s["answer"] is not None:
        return str(s["answer"]), h
    if s["answer_words"]:
        pick = lambda i: hashlib.sha256(f"{model}|{canon}|{i}".encode()).digest()[0] % len(VOCAB)
        return " ".join(VOCAB[pick(i)] for i in range(int(s["answer_words"]))), h
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    first = text_of(users[-1].get("content")).split()[:8] if users else []
    return " ".join([f"fake answer from {model}:", *first, f"[{ptok} tokens, {h}]"]), h


def stamp(ns):
    sec, frac = divmod(EPOCH * 10**9 + ns, 10**9)
    frac = f"{frac:09d}".rstrip("0")
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + (f".{frac}" if frac else "") + "Z"


def jbytes(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


class State:
    def __init__(self, base, logpath, name):
        self.base, self.name = dict(base), name
        self.lock = threading.Lock()
        self.seq, self.lines = 0, []
        self.slot_cv, self.active, self.waiting = threading.Condition(), 0, collections.deque()
        self.logf = open(logpath, "a", encoding="utf-8") if logpath else None
        self.reset()

    def reset(self):
        with self.lock:
            self.cur, self.left, self.cache = dict(self.base), None, {}

    def log(self, obj):
        line = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
        with self.lock:
            self.lines.append(line)
            if self.logf:
                self.logf.write(line + "\n")
                self.logf.flush()

    def next_seq(self):
        with self.lock:
            self.seq += 1
            return self.seq

    def control(self, d):
        bad = sorted(set(d) - set(DEFAULTS))
        if bad:
            raise ValueError("unknown control key: " + ", ".join(bad))
        if "token_ratio" in d:
            ratio_of(d)
        with self.lock:
            self.cur.update(d)
            if any(k in FAULT_KEYS for k in d):
                self.left = d.get("count")
            return dict(self.cur, count_left=self.left)

    def take(self, model):
        """Settings for one chat request; consumes one of `count`."""
        with self.lock:
            s = dict(self.cur)
            applies = s["only_model"] in (None, model)
            if applies and self.left is not None:
                applies = self.left > 0
                self.left -= applies
            if not applies:
                s.update({k: self.base[k] for k in FAULT_KEYS})
            return s

    def prefill(self, model, rendered, ratio=1):
        """Tokens to prefill past the longest common prefix with this model's last prompt."""
        with self.lock:
            prev, self.cache[model] = self.cache.get(model, ""), rendered
        full = tokens(rendered, ratio)
        common = math.floor(Fraction(len(os.path.commonprefix([prev, rendered]))) * ratio / 4)
        return max(full - common, 1 if full else 0)


class Out:
    """Writes lines (chunked, or raw for a non-streamed body) with split/coalesce faults."""

    def __init__(self, h, s, chunked=True):
        self.h, self.s, self.chunked, self.held = h, s, chunked, []

    def raw(self, b):
        self.h.wfile.write(b)

    def send(self, b):
        n = int(self.s["split_bytes"]) if self.s["split"] else 0
        for i in range(0, len(b), n if n > 0 else max(len(b), 1)):
            part = b[i:i + n] if n > 0 else b
            self.raw(b"%x\r\n%s\r\n" % (len(part), part) if self.chunked else part)
            if n > 0:
                time.sleep(float(self.s["split_delay"]))

    def line(self, b):
        c = self.s["coalesce"]
        if not c:
            return self.send(b)
        self.held.append(b)
        if c is not True and len(self.held) >= int(c):
            self.flush()

    def flush(self):
        if self.held:
            b, self.held = b"".join(self.held), []
            self.send(b)

    def end(self):
        self.flush()
        if self.chunked:
            self.raw(b"0\r\n\r\n")

    def drop(self, mode):
        self.flush()
        if mode == "clean" and self.chunked:
            self.raw(b"0\r\n\r\n")
        self.h.cut(mode)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY, as Ollama's (Go's) sockets: without it a reply's small
    # writes wait for the client's delayed ACK, some 40 ms a request.
    disable_nagle_algorithm = True

    def version_string(self):
        return "fake-ollama/0.12.0"

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.route()

    def do_POST(self):
        self.route()

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass

    # --- plumbing -------------------------------------------------------------------
    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while size := int(self.rfile.readline().split(b";")[0] or b"0", 16):
                data += self.rfile.read(size)
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return data
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def send_response(self, code, message=None):
        if getattr(self, "rec", None) is not None:
            self.rec["status"] = code
        super().send_response(code, message)

    def reply(self, code, body, ctype="application/json; charset=utf-8"):
        data = body if isinstance(body, bytes) else jbytes(body)
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def error(self, ollama, code, msg):
        if ollama:
            return self.reply(code, {"error": msg})
        self.reply(code, {"error": {"message": msg, "type": OPENAI_TYPE.get(code, "api_error"),
                                    "param": None, "code": None}})

    def cut(self, mode="clean"):
        """Close the connection now: clean/abort send FIN, reset sends RST."""
        self.close_connection = True
        try:
            if mode == "reset":
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
            self.connection.close()
        except OSError:
            pass

    def hung_up(self, wait):
        """Whether the client hung up (waiting up to `wait` seconds to see it)."""
        if not select.select([self.connection], [], [], wait)[0]:
            return False
        try:
            return not self.connection.recv(1, socket.MSG_PEEK)
        except OSError:
            return True

    def nap(self, secs):
        """Sleep, but notice a client that hangs up meanwhile."""
        end = time.monotonic() + float(secs or 0)
        while (left := end - time.monotonic()) > 0:
            if select.select([self.connection], [], [], min(left, 0.05))[0]:
                if self.hung_up(0):
                    raise ClientGone
                time.sleep(max(end - time.monotonic(), 0))

    def take_slot(self, st):
        """Wait in the queue, sending nothing, until one of `slots` is free (queued_s: how long)."""
        t0, me = time.monotonic(), object()
        with st.slot_cv:
            st.waiting.append(me)
            try:
                while not (st.waiting[0] is me and
                           (int(st.cur["slots"] or 0) <= 0 or st.active < int(st.cur["slots"]))):
                    st.slot_cv.wait(0.05)
                    if self.hung_up(0):
                        raise ClientGone
                st.active += 1
                self.slotted = True
            finally:
                st.waiting.remove(me)
                st.slot_cv.notify_all()
                self.rec["queued_s"] = round(time.monotonic() - t0, 3)

    def free_slot(self, st):
        if self.slotted:
            self.slotted = False
            with st.slot_cv:
                st.active -= 1
                st.slot_cv.notify_all()

    def event(self, name, **kw):
        self.server.state.log({"event": name, "seq": self.rec["seq"], "t": round(time.time(), 6), **kw})

    def gate(self, path):
        self.event("gate_wait", gate=path)
        end = time.monotonic() + 30
        while not os.path.exists(path) and time.monotonic() < end:
            self.nap(0.02)
        self.event("gate_open", timeout=not os.path.exists(path))

    # --- routing --------------------------------------------------------------------
    def route(self):
        st, path = self.server.state, self.path.split("?")[0]
        self.rec, self.slotted = None, False
        raw = self.read_body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError as e:
            body = ValueError(str(e))
        if path.startswith("/_"):
            return self.harness(st, path, body)
        self.rec = {"seq": st.next_seq(), "server": st.name, "t_start": round(time.time(), 6),
                    "method": self.command, "path": path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": raw.decode("utf-8", "replace") if isinstance(body, ValueError) else body}
        if st.cur["log_raw"] and raw:
            self.rec["raw"] = base64.b64encode(raw).decode("ascii")
        st.log({"event": "start", **self.rec})
        self.rec.update(status=None, fault=None, completed=False, client_gone=False)
        try:
            if self.command == "POST" and path in CHAT_PATHS:
                self.chat(st, path == "/api/chat", body)
            else:
                self.misc(st, path, body)
                self.rec["completed"] = True
        except (ClientGone, BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.rec.update(completed=False, client_gone=True)
            self.close_connection = True
        finally:
            self.free_slot(st)
            st.log({"event": "end", **self.rec, "t_end": round(time.time(), 6)})

    def harness(self, st, path, body):
        if path == "/_control" and self.command == "POST":
            if not isinstance(body, dict):
                return self.reply(400, {"error": "control body must be a JSON object"})
            try:
                return self.reply(200, st.control(body))
            except ValueError as e:
                return self.reply(400, {"error": str(e)})
        if path == "/_reset" and self.command == "POST":
            st.reset()
            st.log({"event": "reset", "t": round(time.time(), 6)})
            return self.reply(200, {"ok": True})
        if path == "/_log":
            with st.lock:
                data = "".join(line + "\n" for line in st.lines).encode()
            return self.reply(200, data, "application/x-ndjson")
        if path == "/_health":
            return self.reply(200, {"ok": True, "name": st.name, "port": self.server.server_port})
        self.reply(404, {"error": "no such harness endpoint"})

    def model_entry(self, name, s):
        digest = hashlib.sha256(name.encode()).hexdigest()
        return {"name": name, "model": name, "modified_at": stamp(0), "size": 4683087332,
                "digest": digest, "details": self.details()}

    @staticmethod
    def details():
        return {"parent_model": "", "format": "gguf", "family": "qwen2", "families": ["qwen2"],
                "parameter_size": "7.6B", "quantization_level": "Q4_K_M"}

    def misc(self, st, path, body):
        with st.lock:
            s, used = dict(st.cur), list(st.cache)
        models = s["models"] or DEFAULT_MODELS
        get = self.command == "GET"
        if path == "/" and get:
            return self.reply(200, b"Ollama is running", "text/plain; charset=utf-8")
        if path == "/api/version" and get:
            return self.reply(200, {"version": "0.12.0"})
        if path == "/api/tags" and get:
            return self.reply(200, {"models": [self.model_entry(m, s) for m in models]})
        if path == "/api/ps" and get:
            return self.reply(200, {"models": [dict(self.model_entry(m, s), expires_at=stamp(300 * 10**9),
                                                    size_vram=4683087332, context_length=s["num_ctx"] or 4096)
                                               for m in used]})
        if path == "/api/show" and not get:
            self.nap(s["show_delay"])
            name = body.get("model") or body.get("name") if isinstance(body, dict) else None
            if not name:
                return self.reply(400, {"error": "model is required"})
            if s["models"] and name not in s["models"]:
                return self.reply(404, {"error": f"model '{name}' not found"})
            return self.reply(200, {
                "license": "Apache License 2.0",
                "modelfile": f"# Modelfile generated by \"ollama show\"\nFROM {name}\n",
                "parameters": 'stop                           "<|im_start|>"\nstop                           "<|im_end|>"',
                "template": "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n",
                "details": self.details(),
                "model_info": {"general.architecture": "qwen2", "general.parameter_count": 7615616512,
                               "qwen2.context_length": int((s["ctx_lengths"] or {}).get(name, s["ctx_length"])),
                               "qwen2.embedding_length": 3584, "qwen2.block_count": 28},
                "capabilities": ["completion", "tools"], "modified_at": stamp(0)})
        if path == "/v1/models" and get:
            if s["api_key"] and self.headers.get("Authorization") != f"Bearer {s['api_key']}":
                return self.error(False, 401, "Incorrect API key provided")
            return self.reply(200, {"object": "list", "data": [
                {"id": m, "object": "model", "created": EPOCH, "owned_by": "library"} for m in models]})
        self.reply(404, b"404 page not found", "text/plain")

    # --- chat -----------------------------------------------------------------------
    def chat(self, st, ollama, body):
        model = body.get("model") if isinstance(body, dict) else None
        s = st.take(model)
        fault = {k: s[k] for k in FAULT_KEYS if s[k] != DEFAULTS[k]}
        self.rec["fault"] = fault or None
        if s["refuse"]:
            return self.cut()     # accepted, then closed with no reply (ECONNREFUSED: use a closed port)
        self.take_slot(st)
        self.nap(s["first_byte_delay"])
        if s["status"]:
            code = int(s["status"])
            msg = s["error"] or (f'model "{model}" not found, try pulling it first' if code == 404
                                 else ERROR_TEXT.get(code) or HTTPStatus(code).phrase.lower())
            return self.error(ollama, code, msg)
        if not isinstance(body, dict):
            return self.error(ollama, 400, f"invalid JSON: {body}" if body else "missing request body")
        if not model:
            return self.error(ollama, 400, "model is required")
        if not ollama and s["api_key"] and self.headers.get("Authorization") != f"Bearer {s['api_key']}":
            return self.error(False, 401, "Incorrect API key provided")
        if s["models"] and model not in s["models"]:
            return self.error(ollama, 404, f'model "{model}" not found, try pulling it first')
        messages = body.get("messages") or []
        opts = body.get("options") if isinstance(body.get("options"), dict) else {}

        # prompt, context limit, prefix cache
        rendered, ratio = render(messages), ratio_of(s)
        nctx = int(opts.get("num_ctx") or 0) if ollama else 0
        nctx = nctx if nctx > 0 else int(s["num_ctx"] or 0)
        truncated = bool(nctx) and tokens(rendered, ratio) > nctx
        if truncated:                                 # silently keep the tail, like Ollama
            rendered = rendered[len(rendered) - math.floor(nctx * 4 / ratio):]
        ptok, prefilled = tokens(rendered, ratio), st.prefill(model, rendered, ratio)

        text, h = answer(model, messages, ptok, s)
        thought = f"Thinking about request {h} step by step."
        mode = s["thinking"]
        if mode == "tags":
            text = f"<think>{thought}</think>\n{text}"
        pieces = [("thinking", w) for w in words(thought)
                  if mode == "only" or (mode == "field" and body.get("think") is not False)]
        pieces += [("content", w) for w in ([] if mode == "only" else words(text))]
        if isinstance(s["tool_calls"], list) and s["tool_calls"]:
            pieces.append(("tool_calls", s["tool_calls"]))
        limit = (opts.get("num_predict") if ollama
                 else body.get("max_completion_tokens") or body.get("max_tokens"))
        reason = "stop"
        if isinstance(limit, int) and 0 < limit < len(pieces):
            pieces, reason = pieces[:limit], "length"
        n = len(pieces)
        if pieces and pieces[-1][0] == "tool_calls":
            reason = "stop" if ollama else "tool_calls"
        self.rec.update(prompt_tokens=ptok, prefilled_tokens=prefilled, eval_count=n, truncated=truncated,
                        answer="".join(w for k, w in pieces if k == "content"),
                        thinking="".join(w for k, w in pieces if k == "thinking"))

        # modelled time
        load_ns, tok_ns = 1_000_000, round(1e9 / float(s["decode_tps"] or NOTIONAL_DECODE))
        pe_ns = round(prefilled * 1e9 / float(s["prefill_tps"] or NOTIONAL_PREFILL))
        at = lambda i: stamp(load_ns + pe_ns + i * tok_ns)
        usage = {"prompt_tokens": ptok, "completion_tokens": n, "total_tokens": ptok + n}
        stats = {"total_duration": load_ns + pe_ns + n * tok_ns + 500_000, "load_duration": load_ns,
                 "prompt_eval_count": ptok, "prompt_eval_duration": pe_ns,
                 "eval_count": n, "eval_duration": n * tok_ns}
        oid = f"chatcmpl-{int(h, 16) % 1000}"
        head = {"id": oid, "object": "chat.completion.chunk", "created": EPOCH, "model": model,
                "system_fingerprint": "fp_ollama"}
        if s["prefill_tps"]:
            self.nap(prefilled / float(s["prefill_tps"]))
        errmsg = s["error"] or "an error was encountered while running the model: unexpected EOF"

        if body.get("stream", ollama) is not True:
            return self.whole(s, ollama, pieces, errmsg, reason, stats, usage, head, at(n))

        # streaming
        def line(obj):
            return jbytes(obj) + b"\n" if ollama else b"data: " + jbytes(obj) + b"\n\n"

        def oai_calls(calls, stream):
            return [dict({"index": j} if stream else {}, id=f"call_{j}", type="function",
                         function={"name": c["function"]["name"],
                                   "arguments": json.dumps(c["function"].get("arguments", {}),
                                                           separators=(",", ":"))})
                    for j, c in enumerate(calls)]

        def chunk(i):
            kind, w = pieces[i]
            if kind == "tool_calls":
                if ollama:
                    return line({"model": model, "created_at": at(i), "message": {
                        "role": "assistant", "content": "", "tool_calls": w}, "done": False})
                return line(dict(head, choices=[{"index": 0, "delta": {
                    "role": "assistant", "tool_calls": oai_calls(w, True)}, "finish_reason": None}]))
            if ollama:
                msg = {"role": "assistant", "content": w} if kind == "content" else \
                      {"role": "assistant", "content": "", "thinking": w}
                return line({"model": model, "created_at": at(i), "message": msg, "done": False})
            delta = {"role": "assistant", "content": w} if kind == "content" else \
                    {"role": "assistant", "reasoning_content": w}
            return line(dict(head, choices=[{"index": 0, "delta": delta, "finish_reason": None}]))

        def msg_line(text, i):
            if ollama:
                return line({"model": model, "created_at": at(i),
                             "message": {"role": "assistant", "content": text}, "done": False})
            return line(dict(head, choices=[{"index": 0, "delta": {"role": "assistant", "content": text},
                                             "finish_reason": None}]))

        def final_lines():
            if ollama:
                final = [line({"model": model, "created_at": at(n),
                               "message": {"role": "assistant", "content": ""},
                               "done": True, "done_reason": reason, **stats})]
            else:
                fin = dict(head, choices=[{"index": 0, "delta": {}, "finish_reason": reason}])
                final = [line(fin)]
                if (body.get("stream_options") or {}).get("include_usage"):
                    if s["usage_chunk"] == "final":
                        final = [line(dict(fin, usage=usage))]
                    else:
                        final.append(line(dict(head, choices=[], usage=usage)))
                final.append(b"data: [DONE]\n\n")
            if s["no_final_newline"]:
                final[-1] = final[-1].rstrip(b"\n")
            return final

        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson" if ollama else "text/event-stream")
        if not ollama:
            self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        out = Out(self, s)
        if s["flood"] or s["huge_line"]:
            return self.hostile(s, out, msg_line, final_lines())
        for i in range(n + 1):
            hit = lambda k: k is not None and min(int(k), n) == i
            if s["gate"] and i == min(1, n):
                out.flush()
                self.gate(s["gate"])
            if hit(s["stall_after"]):
                out.flush()
                self.nap(s["stall_seconds"])
            if hit(s["error_after"]):
                out.line(line({"error": errmsg} if ollama else {"error": {
                    "message": errmsg, "type": "api_error", "param": None, "code": None}}))
                return out.end()
            if hit(s["malformed_after"]):
                out.line(b'{"model":"%s","created_at":"%s","message":{"role":"assistant","content":"\n'
                         % (model.encode(), at(i).encode()) if ollama else
                         b'data: {"id":"%s","choices":[{"delta":{"content":"\n\n' % oid.encode())
                return out.end()
            if hit(s["drop_after"]):
                return out.drop(s["drop_mode"])
            if i == n:
                if s["trickle"]:
                    out.flush()
                    self.trickle(s, out, msg_line, n)
                break
            if s["decode_tps"]:
                out.flush()
                self.nap(1 / float(s["decode_tps"]))
            out.line(chunk(i))
        for b in final_lines():
            out.line(b)
        out.flush()
        self.rec["completed"] = True
        if s["gate"]:
            self.event("last_chunk")
        out.end()

    def hostile(self, s, out, msg_line, final):
        """flood / huge_line: the hostile streams, then the done line."""
        if s["flood"]:
            k = int(s["flood"])
            one = msg_line("x", 0)
            batch = one * max(1, 65536 // len(one))
            per = len(batch) // len(one)
            for _ in range(k // per):
                out.send(batch)
            if k % per:
                out.send(one * (k % per))
            self.rec.update(eval_count=k, answer=f"<flood: {k} chunks>")
        else:
            k = int(s["huge_line"])
            data = msg_line("x" * k, 0)
            for i in range(0, len(data), 1 << 20):
                out.send(data[i:i + (1 << 20)])
            self.rec.update(eval_count=1, answer=f"<huge_line: {k} bytes>")
        for b in final:
            out.send(b)
        self.rec["completed"] = True
        out.end()

    def trickle(self, s, out, msg_line, i):
        """Never the done line: a "." chunk every `trickle` seconds until the client leaves."""
        while True:
            self.nap(float(s["trickle"]))
            out.send(msg_line(".", i))
            self.rec["answer"] = (self.rec.get("answer") or "") + "."
            i += 1

    def whole(self, s, ollama, pieces, errmsg, reason, stats, usage, head, created):
        """A non-streamed reply, with the faults that make sense for one."""
        if s["decode_tps"]:
            self.nap(len(pieces) / float(s["decode_tps"]))
        if s["gate"]:
            self.gate(s["gate"])
        if s["stall_after"] is not None:
            self.nap(s["stall_seconds"])
        if s["error_after"] is not None:
            return self.error(ollama, 500, errmsg)
        msg = {"role": "assistant", "content": "".join(w for k, w in pieces if k == "content")}
        calls = [w for k, w in pieces if k == "tool_calls"]
        if calls:
            msg["tool_calls"] = calls[0] if ollama else [
                {"id": f"call_{j}", "type": "function", "function": {
                    "name": c["function"]["name"],
                    "arguments": json.dumps(c["function"].get("arguments", {}), separators=(",", ":"))}}
                for j, c in enumerate(calls[0])]
        think = "".join(w for k, w in pieces if k == "thinking")
        if think:
            msg["thinking" if ollama else "reasoning_content"] = think
        if ollama:
            obj = {"model": head["model"], "created_at": created, "message": msg,
                   "done_reason": reason, "done": True, **stats}
        else:
            obj = dict(head, object="chat.completion", usage=usage,
                       choices=[{"index": 0, "message": msg, "finish_reason": reason}])
        data = jbytes(obj)
        if s["malformed_after"] is not None:
            data = data[:len(data) // 2]
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        out = Out(self, s, chunked=False)
        if s["drop_after"] is not None:
            out.line(data[:len(data) // 2])
            return out.drop("abort" if s["drop_mode"] == "clean" else s["drop_mode"])
        self.rec["completed"] = s["malformed_after"] is None
        out.line(data)
        out.flush()


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (ConnectionError, ClientGone)):
            super().handle_error(request, client_address)


def main():
    ap = argparse.ArgumentParser(description="fake Ollama/OpenAI server for tests")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--log")
    ap.add_argument("--name", default="fake")
    ap.add_argument("--num-ctx", type=int)
    ap.add_argument("--prefill-tps", type=float)
    ap.add_argument("--decode-tps", type=float)
    ap.add_argument("--ctx-length", type=int)
    ap.add_argument("--models", help="comma-separated; other models are 404")
    ap.add_argument("--api-key", help="require this bearer token on /v1/*")
    ap.add_argument("--slots", type=int, help="chat requests served at once (0: unlimited)")
    ap.add_argument("--set", default="{}", help="JSON object of control keys as start settings")
    a = ap.parse_args()
    base = dict(DEFAULTS)
    extra = json.loads(a.set)
    bad = sorted(set(extra) - set(DEFAULTS))
    if bad:
        ap.error("--set: unknown key: " + ", ".join(bad))
    base.update(extra)
    try:
        ratio_of(base)
    except ValueError as e:
        ap.error(f"--set: token_ratio: {e}")
    for key in ("num_ctx", "prefill_tps", "decode_tps", "ctx_length", "api_key", "slots"):
        if getattr(a, key) is not None:
            base[key] = getattr(a, key)
    if a.models:
        base["models"] = [m for m in a.models.split(",") if m]

    srv = Server(("127.0.0.1", a.port), Handler)
    srv.state = State(base, a.log, a.name)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if a.port_file:
        tmp = f"{a.port_file}.tmp{os.getpid()}"
        with open(tmp, "w") as f:
            f.write(f"{srv.server_port}\n")
        os.replace(tmp, a.port_file)
    try:
        srv.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()


if __name__ == "__main__":
    main()
