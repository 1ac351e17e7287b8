#!/bin/bash
# torture.sh - allocation-failure torture of the programs (make torture).
#
#   tests/torture.sh BINDIR [CASE ...]
#
# BINDIR holds the torture build (make torture: ASan+UBSan, and
# tests/torture/alloc.c linked in, which fails the Nth allocation when
# LLM_ROUTE_FAIL_ALLOC=N).  For each case below (a program, its flags
# and a small input of one shape and band), run it once counting the
# allocations, then once for each N from 1 to the count (every
# ceil(count / TORTURE_MAX)-th when the count is over TORTURE_MAX,
# default 400) with the Nth allocation failing.  Each failing run must
# end cleanly:
#   - no signal, no sanitizer report (ASan, UBSan, LeakSanitizer);
#   - status 1 and stderr exactly one line, "PROG: out of memory";
#   - stdout empty, or for a program that streams its answer, a prefix
#     of the answer of the normal run;
# or, when the Nth allocation did not come (counts vary a little from
# run to run with the timing of the transfers), the normal status and
# output; or, when the failure hit libcurl and libcurl got over it (a
# cache it does without) or reported it as another error (its
# resolver's failure is "Could not resolve host"), what the program
# does with that: at most a one-line message, without "out of memory"
# (counted apart, "taken otherwise by libcurl").  The backends are the
# fake servers of tests/fake_ollama.py.  Prints one line per case (allocations, runs, failures) and a total;
# the runs that went wrong are kept in build-torture/fail/.  Exit
# status 0 when all ran clean, 1 otherwise, 2 on a usage error.
#
# Environment: TORTURE_MAX (runs per case at most), TORTURE_KEEP=1
# keeps the scratch directory, TORTURE_VERBOSE=1 prints each run of
# llm-serve and what libcurl said instead of "out of memory".
set -u

prog=tests/torture.sh
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1

[ $# -ge 1 ] || { echo "usage: $prog BINDIR [CASE ...]" >&2; exit 2; }
bin=$(cd "$1" && pwd) || exit 2
shift
max=${TORTURE_MAX:-400}
case $max in ''|*[!0-9]*|0) echo "$prog: TORTURE_MAX: not a number" >&2; exit 2 ;; esac

tmp=$(mktemp -d "${TMPDIR:-/tmp}/torture.XXXXXX") || exit 1
failed_dir=$top/build-torture/fail
rm -rf "$failed_dir"
mkdir -p "$failed_dir"
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	[ "${TORTURE_KEEP:-0}" = 1 ] || rm -rf "$tmp"
}
trap cleanup EXIT

# The fake backends, as tests/lib/fake.bash starts them.  Not in $(...):
# the pid must reach cleanup().
fake() {	# fake NAME VAR: start one, its URL in VAR
	local i
	python3 tests/fake_ollama.py --port 0 --port-file "$tmp/$1.port" \
	    --log "$tmp/$1.log" --name "$1" </dev/null >"$tmp/$1.out" \
	    2>"$tmp/$1.err" 3>&- &
	pids+=($!)
	for ((i = 0; i < 200; i++)); do
		[ -s "$tmp/$1.port" ] && break
		sleep 0.05
	done
	[ -s "$tmp/$1.port" ] || { echo "$prog: fake $1 did not start" >&2; exit 1; }
	printf -v "$2" 'http://127.0.0.1:%s' "$(cat "$tmp/$1.port")"
}
gpu0='' gpu1=''
fake GPU0 gpu0
fake GPU1 gpu1

# A clean environment: no user config, a scratch cache, the fakes.
unset LLM_ROUTE_CONFIG OLLAMA_HOST LLM_GPU0_API LLM_GPU1_API \
    LLM_GPU0_MODEL LLM_GPU1_MODEL LLM_ROUTE_A_MAX LLM_ROUTE_B_MAX \
    LLM_ROUTE_POLICY LLM_SERVE_LISTEN LLM_GPU0_API_KEY LLM_GPU1_API_KEY \
    LLM_ROUTE_FAIL_ALLOC LLM_ROUTE_ALLOC_COUNT
export HOME=$tmp/home XDG_CONFIG_HOME=$tmp/home/.config \
    XDG_CACHE_HOME=$tmp/home/.cache LLM_GPU0_URL=$gpu0 LLM_GPU1_URL=$gpu1
mkdir -p "$HOME"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=99
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS=exitcode=98

# The inputs: small chats of each shape, and texts.
in=$tmp/in
mkdir -p "$in"
cp examples/small.json "$in/ollama.json"	# band A at the defaults
cp tests/corpus/claude-code-log__representative_messages.json "$in/tiny.json"
jq -c '{model, messages: [.messages[] | {role: (if .role == "tool" then "user" else .role end),
    content: [{type: "text", text: .content}]}]}' examples/small.json >"$in/openai.json"
jq -c '.messages' examples/small.json >"$in/array.json"
jq -r '.messages[] | .content' tests/corpus/claude-code-log__representative_messages.json \
    >"$in/text.txt"
printf '{"model": "m", "messages": [{"role": "user", "content": "hi"},' >"$in/bad.json"
printf '{"model":"qwen2.5-coder:7b","messages":[{"role":"user","content":"Say hi."}]}\n' \
    >"$in/hi.json"

# A config file with a key of each kind (the URLs stay the fakes': the
# environment wins).
cp tests/fuzz/corpus/config/all_keys.conf "$in/config"
echo s3cret >"$in/token"

# The cases: NAME, the streaming flag (1: stdout may be cut short),
# the expected status of the normal run, the input, the command.
# Bands B and C come from small inputs with low thresholds.
CASES=(
	"estimate-ollama|0|0|ollama.json|llm-estimate"
	"estimate-openai|0|0|openai.json|llm-estimate --per-message"
	"estimate-array|0|0|array.json|llm-estimate -c --method chars4"
	"estimate-text|0|0|text.txt|llm-estimate --text"
	"estimate-bad|0|3|bad.json|llm-estimate"
	"generate-ollama|1|0|hi.json|llm-generate"
	"generate-openai|1|0|hi.json|llm-generate --api openai"
	"generate-json|1|0|tiny.json|llm-generate --json"
	"summarize-helper|0|0|tiny.json|llm-summarize --target 60 --keep-last 2"
	"summarize-extractive|0|0|ollama.json|llm-summarize --extractive --target 100"
	"summarize-text|0|0|text.txt|llm-summarize --text --target 60 --keep-last 1"
	"mapreduce-helper|0|0|tiny.json|llm-mapreduce --no-cache --chunk-tokens 100 --chunk-target 30 --target 200 --keep-last 2"
	"mapreduce-extractive|0|0|ollama.json|llm-mapreduce --no-cache --extractive --chunk-tokens 400"
	"mapreduce-dry-run|0|0|array.json|llm-mapreduce --no-cache --dry-run --chunk-tokens 300 --chunk-target 50"
	"mapreduce-cache|0|0|tiny.json|llm-mapreduce --cache-dir @CACHE@ --chunk-tokens 100 --chunk-target 30 --target 200 --keep-last 2"
	"route-a|1|0|tiny.json|llm-route --no-cache"
	"route-b|1|0|tiny.json|llm-route --no-cache --a-max 100 --b-max 5000 --keep-last 2"
	"route-c|1|0|tiny.json|llm-route --no-cache --a-max 100 --b-max 200 --chunk-tokens 100 --chunk-target 30 --keep-last 2"
	"route-openai|1|0|openai.json|llm-route --no-cache --a-max 100 --b-max 5000 --extractive"
	"route-text|1|0|text.txt|llm-route --text --no-cache --a-max 100 --b-max 5000"
	"route-explain|0|0|tiny.json|llm-route --no-cache --explain --policy cost"
	"route-print-config|0|0|tiny.json|llm-route --print-config"
	"config-file|0|0|tiny.json|LLM_ROUTE_CONFIG=@CONFIG@ llm-route --print-config"
	"config-file-estimate|0|0|tiny.json|LLM_ROUTE_CONFIG=@CONFIG@ llm-estimate"
)

want=("$@")
selected() {
	local w
	[ ${#want[@]} -eq 0 ] && return 0
	for w in "${want[@]}"; do [ "$w" = "$1" ] && return 0; done
	return 1
}

# run N NAME INPUT CMD...: one run, the Nth allocation failing (0: none);
# status in $st, output in $tmp/out, $tmp/err, the counts in $tmp/count.
run() {
	local n=$1 input=$3
	shift 3
	rm -f "$tmp/count"
	if [ "$n" -gt 0 ]; then
		LLM_ROUTE_FAIL_ALLOC=$n LLM_ROUTE_ALLOC_COUNT=$tmp/count \
		    timeout -k 5 60 "$@" <"$in/$input" >"$tmp/out" 2>"$tmp/err" 3>&-
	else
		LLM_ROUTE_ALLOC_COUNT=$tmp/count \
		    timeout -k 5 60 "$@" <"$in/$input" >"$tmp/out" 2>"$tmp/err" 3>&-
	fi
	st=$?
}

# stream_cut_ok OUT OUT0: OUT is the normal answer OUT0 cut short and
# ended as a stream cut by an error is: whole lines, the last one
# {"error":"out of memory"} for NDJSON (its times aside).
stream_cut_ok() {
	python3 - "$1" "$2" <<'PY'
import re, sys
norm = lambda b: re.sub(rb'"[a-z_]*duration":[0-9]+', b'',
                        re.sub(rb'"created_at":"[^"]*"', b'"created_at":""', b))
out, out0 = (norm(open(f, "rb").read()) for f in sys.argv[1:3])
if not out.endswith(b"\n"):
    sys.exit(1)
err = b'{"error":"out of memory"}\n'
if out0.startswith(b"{"):
    if not out.endswith(err):
        sys.exit(1)
    out = out[:-len(err)]
sys.exit(0 if out0.startswith(out) or out0.startswith(out[:-1]) else 1)
PY
}

# keep NAME N WHY: keep a bad run.
keep() {
	local d=$failed_dir/$1.$2
	mkdir -p "$d"
	cp "$tmp/out" "$d/stdout"
	cp "$tmp/err" "$d/stderr"
	echo "$3" >"$d/why"
	echo "  $1 N=$2: $3 ($(head -c 200 "$tmp/err" | head -n 1))" >&2
}

# case_done: the line of the case just walked, its counts added to the totals.
case_done() {
	printf '%-22s %6d allocations, %4d runs (every %d): %d clean, %d not reached, %d taken otherwise by libcurl, %d bad\n' \
	    "$name" "$count" "$runs" "$stride" "$clean" "$missed" "$other" "$bad"
	total_cases=$((total_cases + 1))
	total_runs=$((total_runs + runs))
	total_allocs=$((total_allocs + count))
	total_bad=$((total_bad + bad))
	total_other=$((total_other + other))
}

total_cases=0 total_runs=0 total_allocs=0 total_bad=0 total_other=0
for c in "${CASES[@]}"; do
	IFS='|' read -r name stream want_st input cmd <<<"$c"
	selected "$name" || continue
	rm -rf "$tmp/cache"
	cmd=${cmd//@CACHE@/$tmp/cache}
	cmd=${cmd//@CONFIG@/$in/config}
	# shellcheck disable=SC2206
	argv=($cmd)
	# Leading VAR=VALUE words are the environment of the command.
	envs=()
	while [[ ${argv[0]} == [A-Z]*=* ]]; do
		envs+=("${argv[0]}")
		argv=("${argv[@]:1}")
	done
	argv=(env "${envs[@]}" "$bin/${argv[0]}" "${argv[@]:1}")
	p=${argv[$((${#envs[@]} + 1))]##*/}
	# The normal run: its status, output and count (a case with a
	# cache: the second, with the cache filled by the first).
	case $name in *-cache) run 0 "$name" "$input" "${argv[@]}" ;; esac
	run 0 "$name" "$input" "${argv[@]}"
	if [ "$st" -ne "$want_st" ] || [ ! -s "$tmp/count" ]; then
		keep "$name" 0 "the normal run: status $st, not $want_st"
		total_bad=$((total_bad + 1))
		continue
	fi
	cp "$tmp/out" "$tmp/out0"
	count=$(awk '{ n += $2 } END { print n + 0 }' "$tmp/count")
	stride=$(( (count + max - 1) / max ))
	[ "$stride" -ge 1 ] || stride=1
	runs=0 bad=0 clean=0 missed=0 other=0
	for ((n = 1; n <= count; n += stride)); do
		# A cache written by the last run would change the count.
		[ "$name" = mapreduce-cache ] || rm -rf "$tmp/cache"
		run "$n" "$name" "$input" "${argv[@]}"
		runs=$((runs + 1))
		who=$(awk '$3 != "-" { print $3 }' "$tmp/count" 2>/dev/null | head -n 1)
		why=
		if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: ' "$tmp/err"; then
			why="sanitizer report"
		elif [ "$st" -gt 128 ] || [ "$st" -eq 124 ] || [ "$st" -ge 98 ]; then
			why="status $st (signal, timeout or sanitizer)"
		elif [ -z "$who" ]; then
			# The Nth allocation did not come: the normal answer.
			if [ "$st" -eq "$want_st" ] && cmp -s "$tmp/out" "$tmp/out0"; then
				missed=$((missed + 1))
			else
				why="no allocation failed, yet status $st or another output"
			fi
		elif [ "$st" -eq 1 ] && [ "$(cat "$tmp/err")" = "$p: out of memory" ] &&
		    { [ ! -s "$tmp/out" ] || { [ "$stream" = 1 ] &&
		    stream_cut_ok "$tmp/out" "$tmp/out0"; }; }; then
			clean=$((clean + 1))
		elif [ "$who" = curl ] && ! grep -qi 'out of memory' "$tmp/err" &&
		    [ "$(wc -l <"$tmp/err")" -le 1 ]; then
			# libcurl said its failure as another error (a
			# resolver failing says "Could not resolve host"),
			# and the program took it as that error.
			other=$((other + 1))
			[ "${TORTURE_VERBOSE:-0}" = 1 ] && echo "  $name N=$n: libcurl said: status $st, $(head -n 1 "$tmp/err")" >&2
		elif [ "$st" -ne 1 ]; then
			why="status $st, not 1 (failed: $who)"
		elif [ "$(cat "$tmp/err")" != "$p: out of memory" ]; then
			why="stderr is not the one line '$p: out of memory' (failed: $who)"
		else
			why="stdout written ($(wc -c <"$tmp/out") bytes, failed: $who)"
		fi
		if [ -n "$why" ]; then
			keep "$name" "$n" "$why"
			bad=$((bad + 1))
		fi
	done
	case_done
done
# llm-serve: started with the Nth allocation failing (in the server or
# in the worker it forks, which goes on counting from the server's
# count), one request, then SIGTERM.  Clean: no sanitizer report; the
# server either stops with status 0 after SIGTERM, the client having
# the answer, a 500 with a JSON error, a stream ended by an error line
# or a body cut short (the transfer left unfinished), or it dies of the
# failure with status 1 and its last line "llm-serve: out of memory";
# stderr holds nothing but the listening line and "out of memory" lines
# (a worker's).
SERVE_CASES=(
	"serve-ollama|/api/chat|tiny.json|"
	"serve-openai-b|/v1/chat/completions|openai.json|--a-max 100 --b-max 5000"
	"serve-bad|/api/chat|bad.json|"
	"serve-token|/api/chat|hi.json|--set serve_token_file=@TOKEN@"
)

# serve_once N PATH INPUT FLAGS...: sets $st (the server's status),
# $code (HTTP), $cst (curl's status); output in $tmp/out, $tmp/err.
serve_once() {
	local n=$1 path=$2 input=$3 spid url i
	shift 3
	rm -f "$tmp/count" "$tmp/out"
	: >"$tmp/err"
	if [ "$n" -gt 0 ]; then
		LLM_ROUTE_FAIL_ALLOC=$n LLM_ROUTE_ALLOC_COUNT=$tmp/count \
		    "$bin/llm-serve" --listen 127.0.0.1:0 --gpu0-url "$gpu0" \
		    --gpu1-url "$gpu1" --no-cache "$@" </dev/null >/dev/null \
		    2>"$tmp/err" 3>&- &
	else
		LLM_ROUTE_ALLOC_COUNT=$tmp/count \
		    "$bin/llm-serve" --listen 127.0.0.1:0 --gpu0-url "$gpu0" \
		    --gpu1-url "$gpu1" --no-cache "$@" </dev/null >/dev/null \
		    2>"$tmp/err" 3>&- &
	fi
	spid=$!
	url=
	for ((i = 0; i < 200; i++)); do
		url=$(sed -n 's/^llm-serve: listening on \(http:[^ ]*\)$/\1/p' "$tmp/err" | head -n 1)
		[ -n "$url" ] && break
		kill -0 "$spid" 2>/dev/null || break
		sleep 0.05
	done
	code=000 cst=7
	if [ -n "$url" ]; then
		code=$(curl -sS --max-time 30 -o "$tmp/out" -w '%{http_code}' \
		    -H 'Content-Type: application/json' \
		    -H 'Authorization: Bearer s3cret' --data-binary @"$in/$input" "$url$path" 2>/dev/null)
		cst=$?
	fi
	kill -TERM "$spid" 2>/dev/null
	for ((i = 0; i < 400; i++)); do
		kill -0 "$spid" 2>/dev/null || break
		sleep 0.05
	done
	kill -KILL "$spid" 2>/dev/null
	wait "$spid"
	st=$?
	[ -f "$tmp/out" ] || : >"$tmp/out"
}

# The answer without what changes from run to run (times, ids).
norm() {
	sed -E 's/"(created_at|created|id|system_fingerprint)":("[^"]*"|[0-9]+)//g; s/"[a-z_]*duration":[0-9]+//g' "$1"
}

for c in "${SERVE_CASES[@]}"; do
	IFS='|' read -r name path input flags <<<"$c"
	selected "$name" || continue
	flags=${flags//@TOKEN@/$in/token}
	# shellcheck disable=SC2206
	fl=($flags)
	serve_once 0 "$path" "$input" "${fl[@]}"
	if [ "$st" -ne 0 ] || [ "$cst" -ne 0 ] || [ ! -s "$tmp/count" ]; then
		keep "$name" 0 "the normal run: status $st, curl $cst, HTTP $code"
		total_bad=$((total_bad + 1))
		continue
	fi
	norm "$tmp/out" >"$tmp/out0"
	code0=$code
	count=$(awk '$2 > n { n = $2 } END { print n + 0 }' "$tmp/count")
	stride=$(( (count + max - 1) / max ))
	[ "$stride" -ge 1 ] || stride=1
	runs=0 bad=0 clean=0 missed=0 other=0
	for ((n = 1; n <= count; n += stride)); do
		serve_once "$n" "$path" "$input" "${fl[@]}"
		runs=$((runs + 1))
		who=$(awk '$3 != "-" { print $3 }' "$tmp/count" 2>/dev/null | head -n 1)
		others=$(grep -vE '^llm-serve: (listening on http|out of memory$)' "$tmp/err" | head -n 1)
		why=
		if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: ' "$tmp/err"; then
			why="sanitizer report"
		elif [ "$cst" -eq 28 ]; then
			why="the request hung (curl timed out)"
		elif [ "$st" -gt 1 ]; then
			why="server status $st"
		elif [ -z "$who" ]; then
			if [ "$st" -eq 0 ] && [ "$code" = "$code0" ] &&
			    cmp -s <(norm "$tmp/out") "$tmp/out0"; then
				missed=$((missed + 1))
			else
				why="no allocation failed, yet status $st, HTTP $code or another answer"
			fi
		elif [ "$who" = curl ] && ! grep -qi 'out of memory' "$tmp/err" "$tmp/out"; then
			# libcurl said its failure as another error (a 502).
			other=$((other + 1))
		elif [ -n "$others" ]; then
			why="stderr: $others"
		elif [ "$st" -eq 1 ] && [ "$(tail -n 1 "$tmp/err")" != "llm-serve: out of memory" ]; then
			why="status 1 without 'out of memory' last"
		elif [ "$st" -eq 0 ] && [ "$code" != "$code0" ] && [ "$code" != 500 ]; then
			why="HTTP $code"
		elif [ "$st" -eq 0 ] && [ "$code" = 200 ] && [ "$cst" -eq 0 ] &&
		    ! cmp -s <(norm "$tmp/out") "$tmp/out0" &&
		    ! grep -q 'error' <(tail -n 2 "$tmp/out"); then
			# (A body whose worker died is cut, the chunked
			# encoding left unfinished: curl says so, 18.)
			why="an answer cut without an error line or a cut transfer"
		else
			clean=$((clean + 1))
		fi
		[ "${TORTURE_VERBOSE:-0}" = 1 ] && echo "  $name N=$n: failed in ${who:--}, server status $st, HTTP $code, curl $cst, ${why:-ok}" >&2
		if [ -n "$why" ]; then
			keep "$name" "$n" "$why"
			bad=$((bad + 1))
		fi
	done
	case_done
done

echo "torture: $total_cases cases, $total_allocs allocations, $total_runs runs, $total_other taken otherwise by libcurl, $total_bad bad"
[ "$total_bad" -eq 0 ]
