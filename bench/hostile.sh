#!/usr/bin/env bash
# hostile.sh - hostile input and hostile backends: for each case, the exit
# status (and the one-line error printed), wall time and peak RSS of
#   llm-estimate -n
#   llm-mapreduce --extractive --no-cache          (input cases)
#   llm-mapreduce --no-cache --max-chunks 2        (hostile helper cases)
#   llm-route --no-cache                           (fake GPU0 and GPU1)
#   llm-generate                                   (fake GPU0)
#   llm-serve                                      (one request with curl)
# with the defaults (--max-input 64M, --max-body 64M, nesting 64), against a
# control row (a normal corpus request) of the same program measured in the
# same run.  Each program runs once under /usr/bin/time (and timeout(1), so
# that a hang shows as status 124); llm-serve is started afresh for each
# case, and its peak RSS is its VmHWM after the request.  Prints a markdown
# table on stdout.
#
# Input cases: a 1 GiB chat made on the fly into a pipe; 100k-deep [[[...]]];
# a 50 MB single-line message; a 50 MB multi-line message; 100k tiny
# messages; the control chat with invalid UTF-8, raw NUL bytes and \u0000
# escapes put into every message.  Backend cases (tests/fake_ollama.py's
# flood, huge_line, trickle and stall_after knobs), on a small chat (GPU0)
# or on a corpus chat condensed by a hostile helper (llm-mapreduce): 1M
# one-character chunks; one 100 MB NDJSON line; a reply that stalls after
# its first chunks and one that trickles a chunk a second and never ends,
# each with a 5 s timeout, then once more (llm-generate) with the defaults.
#
# CORPUS (default ../shared/corpus), CONTROL (default its django-12125
# chat), LIMIT (seconds before timeout(1) kills a run, default 120),
# DEFAULTS=0 to skip the two runs with the default timeouts (90 s), and the
# sizes MB (50), MSGS (100000), CHUNKS (1000000) and LINE_MB (100).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
bin=${BIN:-$REPO/bin}
# shellcheck source=bench/bench-lib.sh
. "$REPO/bench/bench-lib.sh"
bench_need python3 curl jq timeout /usr/bin/time
for p in llm-estimate llm-mapreduce llm-route llm-generate llm-serve; do
	[[ -x $bin/$p ]] || { echo "${0##*/}: no $bin/$p (make first)" >&2; exit 2; }
done
BENCH_TMP=$(mktemp -d)
SERVE_PID=
cleanup() {
	if [[ -n $SERVE_PID ]]; then
		kill -KILL "$SERVE_PID" 2>/dev/null || true
	fi
	bench_cleanup
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
export LLM_ROUTE_CONFIG=$BENCH_TMP/empty.conf
: >"$LLM_ROUTE_CONFIG"
export XDG_CACHE_HOME=$BENCH_TMP/cache
unset OLLAMA_HOST LLM_GPU0_MODEL LLM_GPU1_MODEL LLM_GPU0_API LLM_GPU1_API \
	LLM_ROUTE_A_MAX LLM_ROUTE_B_MAX LLM_SERVE_TOKEN
CORPUS=${CORPUS:-$REPO/../shared/corpus}
CONTROL=${CONTROL:-$CORPUS/mini-swe-agent__django__django-12125.json}
HELPED=$CORPUS/mini-swe-agent__django__django-11099.json
LIMIT=${LIMIT:-120}
MB=${MB:-50} MSGS=${MSGS:-100000} CHUNKS=${CHUNKS:-1000000} LINE_MB=${LINE_MB:-100}
[[ -f $CONTROL && -f $HELPED ]] || { echo "${0##*/}: no corpus in $CORPUS" >&2; exit 2; }

bench_fake_as G0
bench_fake_as G1
# shellcheck disable=SC2154
export LLM_GPU0_URL=$URL_G0 LLM_GPU1_URL=$URL_G1
ctl() {	# ctl URL JSON: reset the fake, then set its knobs
	curl -sS --fail -o /dev/null --data-binary '{}' "$1/_reset"
	curl -sS --fail -o /dev/null -H 'Content-Type: application/json' \
		--data-binary "$2" "$1/_control"
}

# --- inputs ------------------------------------------------------------------
d=$BENCH_TMP
python3 - "$d" "$CONTROL" "$MB" "$MSGS" <<'EOF'
import base64, json, random, sys
d, control, mb, nmsgs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
MB = 1024 * 1024
random.seed(1)

def chat(big):
    msgs = [{"role": "system", "content": "You are a coding assistant."},
            {"role": "user", "content": "Find out what the text below is."},
            {"role": "assistant", "content": "Paste it and I will look."},
            {"role": "user", "content": big}]
    for i in range(4):
        msgs.append({"role": "assistant",
                     "content": f"Step {i}: read a part, see src/blob.c line {10 + i}."})
        msgs.append({"role": "user", "content": f"Go on with step {i + 1}."})
    return {"model": "qwen2.5-coder:7b", "messages": msgs}

def write(name, obj=None, data=None):
    with open(f"{d}/{name}.json", "wb") as f:
        f.write(data if data is not None else
                json.dumps(obj, ensure_ascii=False).encode())

write("deep", data=b"[" * 100000 + b"]" * 100000)
# one line: base64 of random bytes, no newline, no space
write("line50", chat(base64.b64encode(random.randbytes(mb * MB * 3 // 4 + 3)).decode()[:mb * MB]))
# many lines: the corpus chat's own texts, numbered, repeated up to 50 MB
ctl = json.load(open(control))
texts = [m["content"] for m in ctl["messages"] if isinstance(m.get("content"), str)]
parts, n, i = [], 0, 0
while n < mb * MB:
    t = f"--- part {i} ---\n{texts[i % len(texts)]}\n"
    parts.append(t)
    n += len(t.encode())
    i += 1
write("multi50", chat("".join(parts).encode()[:mb * MB].decode("utf-8", "ignore")))
# 100k tiny messages
msgs = [{"role": "system", "content": "You are a coding assistant."}]
msgs += [{"role": "user" if k % 2 == 0 else "assistant", "content": f"msg {k}"}
         for k in range(nmsgs)]
msgs[-1]["role"] = "user"
write("tiny100k", {"model": "qwen2.5-coder:7b", "messages": msgs})
# the control chat with bad bytes in the middle of every string content
MARK = "\u2063BAD\u2063"
for m in ctl["messages"]:
    c = m.get("content")
    if isinstance(c, str):
        h = len(c) // 2
        m["content"] = c[:h] + MARK + c[h:]
raw = json.dumps(ctl, ensure_ascii=False).encode()
mark = MARK.encode()
# lone continuation byte, overlong '/', a surrogate, bytes never in UTF-8,
# a truncated 3-byte sequence
write("utf8", data=raw.replace(mark, b"\x80 \xc0\xaf \xed\xa0\x80 \xff\xfe \xe2\x82"))
write("nulraw", data=raw.replace(mark, b"\x00"))
write("nulesc", data=raw.replace(mark, b"\\u0000"))
EOF
cp "$CONTROL" "$d/control.json"
printf '%s' '{"model":"qwen2.5-coder:7b","messages":[{"role":"user","content":"Say hi in five words."}]}' \
	>"$d/small.json"
# gen1g: a 1 GiB chat on stdout, never on disk
gen1g() {
	printf '{"model":"qwen2.5-coder:7b","messages":[{"role":"user","content":"'
	head -c 1G /dev/zero | tr '\0' a
	printf '"}]}'
}

# --- running -----------------------------------------------------------------
# short TEXT: one line, at most 100 characters, safe in a markdown cell,
# without the fakes' addresses (http://127.0.0.1:PORT)
short() {
	local s
	s=$(printf '%s' "$1" | tr -d '\r' | tr '\n' ' ' | tr -s ' ' | LC_ALL=C tr -cd '\11\40-\176' |
		sed -E 's#http://127\.0\.0\.1:[0-9]+##g')
	s=${s% }
	((${#s} > 100)) && s="${s:0:97}..."
	s=${s//|/\\|}
	printf '%s' "${s:-(nothing)}"
}

# run IN CMD...: runs CMD < IN (a file name, or "gen1g"), its stdout in
# $d/out.txt; sets ST, WALL, KB, ERR
run() {
	local in=$1 tf=$d/time.txt ef=$d/err.txt t0
	shift
	: >"$tf"
	t0=$EPOCHREALTIME
	set +e
	if [[ $in == gen1g ]]; then
		gen1g 2>/dev/null | /usr/bin/time -o "$tf" -f '%e %M %x' \
			timeout -k 5 "$LIMIT" "$@" >"$d/out.txt" 2>"$ef"
	else
		/usr/bin/time -o "$tf" -f '%e %M %x' \
			timeout -k 5 "$LIMIT" "$@" <"$in" >"$d/out.txt" 2>"$ef"
	fi
	set -e
	WALL=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')
	read -r _ KB ST < <(tail -n 1 "$tf")
	if grep -q 'terminated by signal' "$tf"; then
		ST="signal $(sed -n 's/.*terminated by signal \([0-9]*\).*/\1/p' "$tf")"
	fi
	ERR=$(grep -v '^\s*$' "$ef" | tail -n 1 || true)
	[[ $ST == 0 ]] && ERR=${ERR:+warning: $ERR}
	[[ $ST == 124 ]] && ERR="killed by timeout(1) after $LIMIT s${ERR:+; $ERR}"
	return 0
}

# strict: ERR gets whether a successful run's stdout is strict JSON (what
# Python's json module accepts: no raw control characters, valid UTF-8)
strict() {
	local v
	[[ $ST == 0 ]] || return 0
	v=$(python3 -c 'import json, sys
try:
    json.loads(open(sys.argv[1], "rb").read().decode("utf-8")); print("strict JSON")
except ValueError as e:
    print("NOT strict JSON:", str(e)[:40])' "$d/out.txt")
	ERR="output: $v${ERR:+; $ERR}"
}

# serve IN [FLAGS...]: a fresh llm-serve, one POST /api/chat of IN with curl;
# sets ST (HTTP status, "+ error line" for a 200 that ends in one), WALL
# (curl's), KB (the peak RSS of llm-serve and of the children it forks to
# condense, from /usr/bin/time once it has stopped), ERR
serve() {
	local in=$1 url i out=$d/serve.out hf=$d/serve.code tpid
	shift
	: >"$d/serve.err"
	: >"$d/serve.time"
	/usr/bin/time -o "$d/serve.time" -f '%M' "$bin/llm-serve" --listen 127.0.0.1:0 \
		"$@" </dev/null >/dev/null 2>"$d/serve.err" &
	tpid=$!
	url=
	for ((i = 0; i < 200; i++)); do
		url=$(sed -n 's/^llm-serve: listening on \(http:[^ ]*\)$/\1/p' "$d/serve.err" | head -n 1)
		[[ -n $url ]] && break
		sleep 0.05
	done
	SERVE_PID=$(pgrep -P "$tpid" || true)
	[[ -n $SERVE_PID ]] || { echo "${0##*/}: llm-serve not found under /usr/bin/time" >&2; exit 1; }
	[[ -n $url ]] || { echo "${0##*/}: llm-serve did not start: $(cat "$d/serve.err")" >&2; exit 1; }
	local -a c=(curl -sS -N -o "$out" -w '%{http_code} %{time_total}' --max-time "$LIMIT"
		-H 'Content-Type: application/json' -H 'Expect:' "$url/api/chat")
	set +e
	if [[ $in == gen1g ]]; then
		gen1g 2>/dev/null | "${c[@]}" -X POST -T - >"$hf" 2>"$d/curl.err"
	else
		"${c[@]}" --data-binary "@$in" >"$hf" 2>"$d/curl.err"
	fi
	set -e
	read -r ST WALL <"$hf" || true
	if [[ $ST == 200 ]]; then
		ERR=$(grep -a '"error"' "$out" | head -n 1 | jq -r '.error // empty' 2>/dev/null || true)
		[[ -n $ERR ]] && ST="200 + error line"
		# the fake's answer
		[[ -z $ERR ]] && ERR="answer: $(grep -a -c '"done":false' "$out") chunks"
	else
		ERR=$(jq -r '.error // empty' "$out" 2>/dev/null || true)
		[[ -z $ERR ]] && ERR=$(tail -n 1 "$d/curl.err")
	fi
	# curl's own complaint (a cut upload, its --max-time) comes with it
	if [[ -s $d/curl.err ]]; then
		ERR="$ERR; curl: $(tail -n 1 "$d/curl.err" | sed 's/^curl: ([0-9]*) //')"
	fi
	kill -TERM "$SERVE_PID" 2>/dev/null || true
	for ((i = 0; i < 300; i++)); do
		kill -0 "$SERVE_PID" 2>/dev/null || break
		sleep 0.05
	done
	kill -KILL "$SERVE_PID" 2>/dev/null || true
	wait "$tpid" 2>/dev/null || true
	SERVE_PID=
	KB=$(tail -n 1 "$d/serve.time")
	WALL=$(awk -v a="$WALL" 'BEGIN { printf "%.3f", a }')
}

# ratio A B: A/B, with 2 decimals under 10, 1 under 100, else none
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (b <= 0) { print "-"; exit }
		r = a / b; printf(r < 10 ? "%.2f" : r < 100 ? "%.1f" : "%.0f", r) }'
}

declare -A CW CK	# the control row's wall s and kB, per program
# row INPUT PROGRAM: print the row for ST, WALL, KB, ERR
row() {
	local in=$1 prog=$2 key=$2 rw=- rk=-
	[[ -n ${3:-} ]] && key=$3
	if [[ $in == control || $in == *"(control)" ]]; then
		CW[$key]=$WALL CK[$key]=$KB
	fi
	if [[ -n ${CW[$key]:-} ]]; then
		rw=$(ratio "$WALL" "${CW[$key]}")
		rk=$(ratio "$KB" "${CK[$key]}")
	fi
	# shellcheck disable=SC2016
	printf '| %s | `%s` | %s | %s | %s | %s | %s | %s |\n' "$in" "$prog" "$ST" \
		"$(short "$ERR")" "$WALL" "$(awk -v k="$KB" 'BEGIN { printf "%.1f", k / 1024 }')" \
		"$rw" "$rk"
}

echo "| input | program | status | error or warning (last line of stderr, shortened) | wall s | peak RSS MB | wall / control | RSS / control |"
echo "|---|---|---|---|---:|---:|---:|---:|"

# --- input cases -------------------------------------------------------------
ctl "$URL_G0" '{}'
ctl "$URL_G1" '{}'
# shellcheck disable=SC2016
for c in "control|control.json" "1 GiB|gen1g" "100k-deep nesting|deep.json" \
	"$MB MB one line|line50.json" "$MB MB many lines|multi50.json" \
	"$MSGS tiny messages|tiny100k.json" "invalid UTF-8|utf8.json" \
	"raw NUL bytes|nulraw.json" '`\u0000` escapes|nulesc.json'; do
	label=${c%%|*} f=${c#*|}
	[[ $f == gen1g ]] || f=$d/$f
	run "$f" "$bin/llm-estimate" -n
	row "$label" "llm-estimate -n"
	run "$f" "$bin/llm-mapreduce" --extractive --no-cache
	strict
	row "$label" "llm-mapreduce --extractive --no-cache"
	run "$f" "$bin/llm-route" --no-cache
	row "$label" "llm-route --no-cache"
	run "$f" "$bin/llm-generate"
	row "$label" "llm-generate"
	serve "$f" --no-prefetch --no-cache
	row "$label" "llm-serve --no-cache"
done

# --- backend cases -------------------------------------------------------------
# on_gpu0 LABEL JSON TIMEOUT: the small chat through llm-generate, llm-route
# and llm-serve with GPU0 set to JSON; on_gpu1: the corpus chat through
# llm-mapreduce with the helper set to JSON.  TIMEOUT: seconds, or "".
on_gpu0() {
	local label=$1 knobs=$2 t=$3
	ctl "$URL_G0" "$knobs"
	run "$d/small.json" "$bin/llm-generate" ${t:+--timeout "$t"}
	row "$label" "llm-generate${t:+ --timeout $t}" llm-generate
	ctl "$URL_G0" "$knobs"
	run "$d/small.json" "$bin/llm-route" --no-cache ${t:+--set "gpu0_timeout=$t"}
	row "$label" "llm-route --no-cache${t:+ --set gpu0_timeout=$t}" "llm-route --no-cache"
	ctl "$URL_G0" "$knobs"
	serve "$d/small.json" --no-prefetch --no-cache ${t:+--set "gpu0_timeout=$t"}
	row "$label" "llm-serve --no-cache${t:+ --set gpu0_timeout=$t}" "llm-serve --no-cache"
}
on_gpu1() {
	local label=$1 knobs=$2 t=$3
	ctl "$URL_G1" "$knobs"
	run "$HELPED" "$bin/llm-mapreduce" --no-cache --max-chunks 2 ${t:+--timeout "$t"}
	row "$label" "llm-mapreduce --no-cache --max-chunks 2${t:+ --timeout $t}" helper
}
# The backend rows' control: the same requests to well-behaved fakes.
ctl "$URL_G1" '{}'
run "$HELPED" "$bin/llm-mapreduce" --no-cache --max-chunks 2
row "corpus chat, helper (control)" "llm-mapreduce --no-cache --max-chunks 2" helper
for c in 'small chat (control)|{}|' "backend: $CHUNKS tiny chunks|{\"flood\":$CHUNKS}|" \
	"backend: one $LINE_MB MB NDJSON line|{\"huge_line\":$((LINE_MB * 1048576))}|" \
	'backend: stalls after 2 chunks|{"stall_after":2,"stall_seconds":3600}|5' \
	'backend: never ends (a chunk a second)|{"trickle":1}|5'; do
	label=${c%%|*} rest=${c#*|}
	knobs=${rest%|*} t=${rest##*|}
	if [[ $label == "small chat (control)" ]]; then
		# the GPU0 rows' ratios are to these
		ctl "$URL_G0" '{}'
		run "$d/small.json" "$bin/llm-generate"
		row "$label" "llm-generate" small-generate
		CW[llm-generate]=$WALL CK[llm-generate]=$KB
		ctl "$URL_G0" '{}'
		run "$d/small.json" "$bin/llm-route" --no-cache
		row "$label" "llm-route --no-cache" small-route
		CW[llm-route --no-cache]=$WALL CK[llm-route --no-cache]=$KB
		ctl "$URL_G0" '{}'
		serve "$d/small.json" --no-prefetch --no-cache
		row "$label" "llm-serve --no-cache" small-serve
		CW[llm-serve --no-cache]=$WALL CK[llm-serve --no-cache]=$KB
		continue
	fi
	on_gpu0 "$label" "$knobs" "$t"
	on_gpu1 "$label" "$knobs" "$t"
done
if [[ ${DEFAULTS:-1} != 0 ]]; then
	# No timeout given: the defaults (first byte 300 s, idle 60 s, total none).
	ctl "$URL_G0" '{"stall_after":2,"stall_seconds":3600}'
	run "$d/small.json" "$bin/llm-generate"
	row "backend: stalls after 2 chunks, default timeouts" "llm-generate" llm-generate
	ctl "$URL_G0" '{"trickle":1}'
	LIMIT=30 run "$d/small.json" "$bin/llm-generate"
	row "backend: never ends, default timeouts" "llm-generate" llm-generate
fi
ctl "$URL_G0" '{}'
