#!/usr/bin/env bash
# generate-vs-curl.sh - llm-generate against curl posting the same request to the
# same fake backend (tests/fake_ollama.py, started here on a free port).
#
#   bench/generate-vs-curl.sh > out.md      (from the repo, after `make`)
#
# Three measurements, each for a small request (a one-line prompt) and a large
# one (a ~228 KB coding-agent conversation from the corpus):
#   1. wall time of the whole process (hyperfine), backend without delays and a
#      200-word answer (201 NDJSON lines); ratio against curl;
#   2. time to first byte on the client's stdout, measured from process start, with
#      the backend streaming a 50-word answer at 50 words/s; difference to curl;
#   3. peak RSS (/usr/bin/time -v) on the large request.
# curl -sN dumps the raw NDJSON; llm-generate parses it and writes the text, and
# llm-generate --json re-emits NDJSON lines.
#
# Environment: CORPUS (default ../shared/corpus from the repo), RUNS (30),
# WARMUP (3), TTFB_RUNS (20), RSS_RUNS (5); BASELINE, another llm-generate
# (an older build, say) measured in the same run as a fourth client;
# PARTS, the measurements to make (default "wall ttfb rss"); REQUESTS
# (default "small large"); TTFB_WORDS, the answer's words in the TTFB runs
# (default 50; fewer make many runs quicker).
# Prints markdown on stdout; progress and hyperfine's own output go to stderr.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CORPUS=${CORPUS:-$REPO/../shared/corpus}
RUNS=${RUNS:-30}
WARMUP=${WARMUP:-3}
TTFB_RUNS=${TTFB_RUNS:-20}
RSS_RUNS=${RSS_RUNS:-5}
PARTS=" ${PARTS:-wall ttfb rss} "
REQUESTS=${REQUESTS:-small large}
TTFB_WORDS=${TTFB_WORDS:-50}
LARGE_NAME=mini-swe-agent__django__django-12125.json
GEN=$REPO/bin/llm-generate
q() { printf '%q' "$1"; }
# shellcheck source=bench/bench-lib.sh
. "$REPO/bench/bench-lib.sh"

bench_need hyperfine curl jq python3 /usr/bin/time
[[ -x $GEN ]] || { echo "${0##*/}: $GEN missing; run make" >&2; exit 2; }
[[ -r $CORPUS/$LARGE_NAME ]] || { echo "${0##*/}: $CORPUS/$LARGE_NAME not found (set CORPUS)" >&2; exit 2; }

BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/bench-gen.XXXXXX")
trap bench_cleanup EXIT
trap 'exit 130' INT TERM
# No user config file: the flags below decide the backend.
: >"$BENCH_TMP/config"
export LLM_ROUTE_CONFIG=$BENCH_TMP/config
# A copy, so that a rebuild during the run does not change what is measured.
cp "$GEN" "$BENCH_TMP/llm-generate"
GEN=$BENCH_TMP/llm-generate
BASE=
if [[ -n ${BASELINE:-} ]]; then
	[[ -x $BASELINE ]] || { echo "${0##*/}: BASELINE $BASELINE is not executable" >&2; exit 2; }
	cp "$BASELINE" "$BENCH_TMP/llm-generate.baseline"
	BASE=$BENCH_TMP/llm-generate.baseline
fi

SMALL=$BENCH_TMP/small.json
LARGE=$BENCH_TMP/large.json
printf '%s\n' '{"model":"qwen2.5-coder:7b","stream":true,"messages":[{"role":"user","content":"Write a one-line shell command that counts the lines of every .c file."}]}' >"$SMALL"
# Same body for both clients, with "stream": true (the corpus files have it).
jq -c '.stream = true' "$CORPUS/$LARGE_NAME" >"$LARGE"

# shellcheck disable=SC2119
bench_fake_start
URL=$FAKE_URL

# The TTFB harness: runs the clients round-robin, each with stdin from FILE and
# stdout on a pipe; TTFB = first byte read on the pipe - just before spawn.
cat >"$BENCH_TMP/ttfb.py" <<'EOF'
import os, shlex, statistics, subprocess, sys, time
runs, infile, cmds = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
first = {c: [] for c in cmds}
total = {c: [] for c in cmds}
for _ in range(runs):
    for c in cmds:
        argv = shlex.split(c)
        with open(infile, "rb") as f:
            t0 = time.perf_counter()
            p = subprocess.Popen(argv, stdin=f, stdout=subprocess.PIPE)
            b = os.read(p.stdout.fileno(), 1)
            t1 = time.perf_counter()
            while os.read(p.stdout.fileno(), 65536):
                pass
            rc = p.wait()
            t2 = time.perf_counter()
        if rc != 0 or not b:
            sys.exit(f"ttfb: {c}: exit {rc}, first byte {b!r}")
        first[c].append((t1 - t0) * 1000)
        total[c].append((t2 - t0) * 1000)
for c in cmds:
    print(f"{statistics.median(first[c]):.2f}\t{min(first[c]):.2f}\t"
          f"{max(first[c]):.2f}\t{statistics.median(total[c]):.2f}")
EOF

echo "## llm-generate vs curl (bench/generate-vs-curl.sh)"
echo
bench_machine
# shellcheck disable=SC2016
printf -- '- small request: %s bytes; large request: `%s`, %s bytes\n' \
	"$(wc -c <"$SMALL")" "$LARGE_NAME" "$(wc -c <"$LARGE")"
echo "- backend: tests/fake_ollama.py (Python, 127.0.0.1), Ollama /api/chat NDJSON"
echo

names=("curl -sN" "llm-generate" "llm-generate --json")
cmds=("curl -sN --data-binary @REQ $URL/api/chat"
	"$(q "$GEN") --url $URL"
	"$(q "$GEN") --url $URL --json")
if [[ -n $BASE ]]; then
	names+=("llm-generate (BASELINE)")
	cmds+=("$(q "$BASE") --url $URL")
	echo "- BASELINE: \`$BASELINE\`"
	echo
fi

# 1. Wall time.
if [[ $PARTS == *" wall "* ]]; then
bench_fake_control '{"answer_words":200}'
echo "### Wall time (hyperfine --warmup $WARMUP --runs $RUNS, output to a pipe)"
echo
echo "Backend without delays, 200-word answer. Ratio: median / median of curl."
echo
echo "| request | client | median ms | mean ± sd ms | user+sys CPU ms | ratio vs curl |"
echo "|---|---|---:|---:|---:|---:|"
for req in $REQUESTS; do
	f=$BENCH_TMP/$req.json
	hf=$BENCH_TMP/hf-$req.json
	args=()
	for i in "${!names[@]}"; do
		if [[ $i == 0 ]]; then c=${cmds[0]/REQ/$(q "$f")}; else c="${cmds[i]} < $(q "$f")"; fi
		args+=(-n "${names[i]}" "$c")
	done
	echo "hyperfine: $req request" >&2
	hyperfine --warmup "$WARMUP" --runs "$RUNS" --output=pipe --style basic \
		--export-json "$hf" "${args[@]}" >&2
	base=$(bench_hf_stat "$hf" 0 median)
	for i in "${!names[@]}"; do
		med=$(bench_hf_stat "$hf" "$i" median)
		cpu=$(awk -v u="$(bench_hf_stat "$hf" "$i" user)" -v s="$(bench_hf_stat "$hf" "$i" system)" \
			'BEGIN { printf "%.1f", u + s }')
		printf '| %s | %s | %s | %s ± %s | %s | %s |\n' "$req" "\`${names[i]}\`" \
			"$(bench_fmt "$med")" "$(bench_fmt "$(bench_hf_stat "$hf" "$i" mean)")" \
			"$(bench_fmt "$(bench_hf_stat "$hf" "$i" stddev)")" "$cpu" "$(bench_ratio "$med" "$base")"
	done
done
echo

fi

# 2. Time to first byte.
if [[ $PARTS == *" ttfb "* ]]; then
bench_fake_control "{\"answer_words\":$TTFB_WORDS,\"decode_tps\":50}"
echo "### Time to first byte ($TTFB_RUNS runs each, clients interleaved)"
echo
echo "Backend streams a $TTFB_WORDS-word answer at 50 words/s. TTFB: from just"
echo "before spawning the client to its first byte on the stdout pipe (python3"
echo "harness in the script). Difference: median minus curl's median."
echo
echo "| request | client | median TTFB ms | min–max ms | diff vs curl ms | median total ms |"
echo "|---|---|---:|---:|---:|---:|"
for req in $REQUESTS; do
	f=$BENCH_TMP/$req.json
	echo "ttfb: $req request" >&2
	mapfile -t rows < <(python3 "$BENCH_TMP/ttfb.py" "$TTFB_RUNS" "$f" \
		"${cmds[0]/REQ/$(q "$f")}" "${cmds[@]:1}")
	[[ ${#rows[@]} == "${#names[@]}" ]] || { echo "ttfb harness failed" >&2; exit 1; }
	base=${rows[0]%%$'\t'*}
	for i in "${!names[@]}"; do
		IFS=$'\t' read -r med lo hi tot <<<"${rows[i]}"
		printf '| %s | %s | %s | %s–%s | %+.2f | %s |\n' "$req" "\`${names[i]}\`" \
			"$med" "$lo" "$hi" "$(awk -v a="$med" -v b="$base" 'BEGIN { print a - b }')" "$tot"
	done
done
echo

fi

# 3. Peak RSS on the large request.
if [[ $PARTS == *" rss "* ]]; then
bench_fake_control '{"answer_words":200}'
echo "### Peak RSS, large request (/usr/bin/time -v, median of $RSS_RUNS)"
echo
echo "| client | max RSS kB | ratio vs curl |"
echo "|---|---:|---:|"
declare -a rss
for i in "${!names[@]}"; do
	vals=()
	for ((r = 0; r < RSS_RUNS; r++)); do
		case $i in
		0) vals+=("$(bench_rss curl -sN --data-binary @"$LARGE" "$URL/api/chat" </dev/null)") ;;
		1) vals+=("$(bench_rss "$GEN" --url "$URL" <"$LARGE")") ;;
		2) vals+=("$(bench_rss "$GEN" --url "$URL" --json <"$LARGE")") ;;
		3) vals+=("$(bench_rss "$BASE" --url "$URL" <"$LARGE")") ;;
		esac
	done
	rss[i]=$(bench_median "${vals[@]}")
	printf '| %s | %s | %s |\n' "\`${names[i]}\`" "${rss[i]}" "$(bench_ratio "${rss[i]}" "${rss[0]}")"
done
fi
