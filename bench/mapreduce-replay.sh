#!/usr/bin/env bash
# mapreduce-replay.sh - a long corpus conversation replayed turn by turn through
# llm-mapreduce, with its chunk-summary cache and without, against the fake
# backend (tests/fake_ollama.py, started here on a free port) set to the speed
# of a small helper GPU.
#
#   bench/mapreduce-replay.sh > out.md      (from the repo, after `make`)
#
# For t = FIRST, FIRST+STEP, ... and the whole conversation, the first t
# messages go to `llm-mapreduce --jobs JOBS` twice:
#   (a) with a cache directory that persists across the turns (empty at the start);
#   (b) with --no-cache.
# Per turn and run: wall time of llm-mapreduce, the helper requests it made and
# the helper's busy time (sum of t_end - t_start of those requests in the fake's
# log). The direct comparison is (b), the same run without the cache.
#
# Latency model (the fake sleeps it): prefill PREFILL_TPS tokens/s on the prompt
# tokens past the longest prefix shared with the previous request, then
# DECODE_TPS answer words/s; every answer is ANSWER_WORDS words. The defaults
# model qwen3:1.7b (Q4_K_M) on a GTX 1050 2 GB; bench/README.md says why.
# SPEED > 1 runs the fake SPEED times faster (both rates multiplied) and scales
# every measured time back by SPEED, so that the whole run fits in a few
# minutes; the fake's own per-request overhead is scaled up with it (the totals
# show the modelled helper time next to the measured one).
#
# Environment: CORPUS (default tests/corpus), FILE (the conversation, default
# mini-swe-agent__django__django-12125.json), FIRST (20), STEP (6), SPEED (5),
# JOBS (2), PREFILL_TPS (600), DECODE_TPS (30), ANSWER_WORDS (200),
# MODEL (qwen3:1.7b).
# Prints markdown on stdout and progress on stderr; exits 2 when a tool is
# missing, 1 when a run fails (a helper failure fails the run).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CORPUS=${CORPUS:-$REPO/tests/corpus}
FILE=${FILE:-mini-swe-agent__django__django-12125.json}
FIRST=${FIRST:-20}
STEP=${STEP:-6}
SPEED=${SPEED:-5}
JOBS=${JOBS:-2}
PREFILL_TPS=${PREFILL_TPS:-600}
DECODE_TPS=${DECODE_TPS:-30}
ANSWER_WORDS=${ANSWER_WORDS:-200}
MODEL=${MODEL:-qwen3:1.7b}
# shellcheck source=bench/bench-lib.sh
. "$REPO/bench/bench-lib.sh"

bench_need curl jq python3 awk
for b in llm-mapreduce llm-estimate; do
	[[ -x $REPO/bin/$b ]] || { echo "${0##*/}: $REPO/bin/$b missing; run make" >&2; exit 2; }
done
SRC=$CORPUS/$FILE
[[ -r $SRC ]] || { echo "${0##*/}: $SRC not found (set CORPUS, FILE)" >&2; exit 2; }

BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/bench-mr.XXXXXX")
trap bench_cleanup EXIT
trap 'exit 130' INT TERM
# No user config file and no user cache: the flags below decide everything.
: >"$BENCH_TMP/config"
export LLM_ROUTE_CONFIG=$BENCH_TMP/config
export XDG_CACHE_HOME=$BENCH_TMP/xdg
# Copies, so that a rebuild of bin/ during the run does not change what is measured.
cp "$REPO/bin/llm-mapreduce" "$REPO/bin/llm-estimate" "$BENCH_TMP/"
MR=$BENCH_TMP/llm-mapreduce
EST=$BENCH_TMP/llm-estimate
"$MR" --version >/dev/null && "$EST" --version >/dev/null

nmsg=$(jq '.messages | length' "$SRC")
turns=()
for ((t = FIRST; t <= nmsg; t += STEP)); do turns+=("$t"); done
if ((${#turns[@]} == 0)) || [[ ${turns[-1]} != "$nmsg" ]]; then turns+=("$nmsg"); fi

# The fake at SPEED times the modelled rates.
fast() { awk -v a="$1" -v s="$SPEED" 'BEGIN { printf "%g", a * s }'; }
# shellcheck disable=SC2119
bench_fake_start --prefill-tps "$(fast "$PREFILL_TPS")" --decode-tps "$(fast "$DECODE_TPS")" \
	--set "{\"answer_words\":$ANSWER_WORDS}"
LOG=$BENCH_TMP/fake.log
CACHE=$BENCH_TMP/cache
load0=$(cut -d' ' -f1-3 /proc/loadavg)

# run MODE IN OUT: writes "wall_s requests helper_s modelled_s closed hits
# map_requests" (times scaled back by SPEED) to $BENCH_TMP/res.
run() {
	local mode=$1 in=$2 out=$3 n0 t0 t1 args i s e
	if [[ $mode == cache ]]; then args=(--cache-dir "$CACHE"); else args=(--no-cache); fi
	n0=$(wc -l <"$LOG")
	t0=$EPOCHREALTIME
	if ! "$MR" --jobs "$JOBS" --url "$FAKE_URL" --model "$MODEL" --on-helper-failure fail \
		--log-json "${args[@]}" <"$in" >"$out" 2>"$BENCH_TMP/err"; then
		echo "${0##*/}: llm-mapreduce ($mode) failed:" >&2
		grep -v '^{' "$BENCH_TMP/err" >&2 || true
		exit 1
	fi
	t1=$EPOCHREALTIME
	if grep -qv '^{' "$BENCH_TMP/err"; then
		echo "${0##*/}: llm-mapreduce ($mode) warned:" >&2
		grep -v '^{' "$BENCH_TMP/err" >&2
		exit 1
	fi
	# The fake writes a request's end line after the client may have exited.
	for ((i = 0; i < 100; i++)); do
		s=$(tail -n +"$((n0 + 1))" "$LOG" | grep -c '"event":"start"' || true)
		e=$(tail -n +"$((n0 + 1))" "$LOG" | grep -c '"event":"end"' || true)
		[[ $s == "$e" ]] && break
		sleep 0.05
	done
	[[ $s == "$e" ]] || { echo "${0##*/}: the fake did not finish its requests" >&2; exit 1; }
	tail -n +"$((n0 + 1))" "$LOG" | jq -rs --slurpfile err "$BENCH_TMP/err" \
		--argjson sp "$SPEED" --argjson wall "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" \
		--argjson p "$PREFILL_TPS" --argjson d "$DECODE_TPS" '
		[.[] | select(.event == "end" and .path == "/api/chat")] as $r
		| if any($r[]; .status != 200 or .completed != true) then error("a helper request failed") else . end
		| ($err | map(select(.event == "chunks"))[0].closed // 0) as $closed
		| ($err | map(select(.event == "mapreduce"))[0].cache_hits // 0) as $hits
		| [$wall * $sp, ($r | length), ($r | map(.t_end - .t_start) | add // 0) * $sp,
		   ($r | map(.prefilled_tokens / $p + .eval_count / $d) | add // 0),
		   $closed, $hits, ($closed - $hits)] | @tsv' >"$BENCH_TMP/res"
}

echo "## llm-mapreduce: a growing conversation (bench/mapreduce-replay.sh)"
echo
printf -- '- date: %s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
printf -- '- CPU: %s, nproc %s, kernel %s, %s\n' \
	"$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)" "$(nproc)" \
	"$(uname -r)" "$(python3 --version)"
# shellcheck disable=SC2016
printf -- '- conversation: `%s`, %s messages, %s tokens (`llm-estimate -n`)\n' \
	"$FILE" "$nmsg" "$("$EST" -n <"$SRC")"
printf -- '- turns: t = %s and every %s messages after it, and %s (the whole conversation): %s turns\n' \
	"$FIRST" "$STEP" "$nmsg" "${#turns[@]}"
# shellcheck disable=SC2016
printf -- '- `llm-mapreduce --jobs %s --model %s`, defaults otherwise (--chunk-tokens 3000, --chunk-target 300, --target 1000)\n' \
	"$JOBS" "$MODEL"
printf -- '- fake helper: prefill %s tokens/s (new prompt tokens), decode %s tokens/s, %s-word answers; run %sx faster and the times scaled back\n' \
	"$PREFILL_TPS" "$DECODE_TPS" "$ANSWER_WORDS" "$SPEED"
echo

tot=()
rows=()
same=0
for t in "${turns[@]}"; do
	in=$BENCH_TMP/in.json
	jq -c --argjson t "$t" '.messages |= .[:$t]' "$SRC" >"$in"
	tin=$("$EST" -n <"$in")
	echo "turn $t ($tin tokens)" >&2
	run cache "$in" "$BENCH_TMP/out-cache.json"
	IFS=$'\t' read -r cw cn ch cm closed _ cmap <"$BENCH_TMP/res"
	run nocache "$in" "$BENCH_TMP/out-nocache.json"
	IFS=$'\t' read -r nw nn nh nm _ _ _ <"$BENCH_TMP/res"
	tout=$("$EST" -n <"$BENCH_TMP/out-cache.json")
	cmp -s "$BENCH_TMP/out-cache.json" "$BENCH_TMP/out-nocache.json" && same=$((same + 1))
	rows+=("$(printf '| %s | %s | %s | %s | %s (%s+%s) | %s | %s | %s | %s | %s |' \
		"$t" "$tin" "$tout" "$closed" "$cn" "$cmap" "$((cn - cmap))" \
		"$(printf '%.1f' "$ch")" "$(printf '%.1f' "$cw")" \
		"$nn" "$(printf '%.1f' "$nh")" "$(printf '%.1f' "$nw")")")
	tot+=("$cw $cn $ch $cm $cmap $nw $nn $nh $nm")
done
load1=$(cut -d' ' -f1-3 /proc/loadavg)

echo "### Per turn"
echo
echo "Requests: helper requests (new chunk summaries + reduce requests). Helper s:"
echo "sum of the requests' durations. Wall s: llm-mapreduce's run time."
echo
echo "| turn | tokens in | tokens out | closed chunks | cache: requests | cache: helper s | cache: wall s | no cache: requests | no cache: helper s | no cache: wall s |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${rows[@]}"
echo

echo "### Totals over ${#turns[@]} turns"
echo
printf '%s\n' "${tot[@]}" | awk '
	{ for (i = 1; i <= NF; i++) s[i] += $i }
	END {
		print "| | cache | no cache | no cache / cache |"
		print "|---|---:|---:|---:|"
		printf "| helper requests | %d | %d | %.1f |\n", s[2], s[7], (s[2] ? s[7] / s[2] : 0)
		printf "| of them new chunk summaries | %d | | |\n", s[5]
		printf "| helper busy s (sum of request durations) | %.1f | %.1f | %.1f |\n", s[3], s[8], (s[3] ? s[8] / s[3] : 0)
		printf "| helper s modelled (prefill + decode from the log) | %.1f | %.1f | %.1f |\n", s[4], s[9], (s[4] ? s[9] / s[4] : 0)
		printf "| llm-mapreduce wall s | %.1f | %.1f | %.1f |\n", s[1], s[6], (s[1] ? s[6] / s[1] : 0)
		printf "| helper busy s per turn (mean) | %.1f | %.1f | |\n", s[3] / NR, s[8] / NR
	}'
echo
printf -- '- outputs with and without the cache byte-identical: %s of %s turns\n' "$same" "${#turns[@]}"
printf -- '- load average before / after: %s / %s\n' "$load0" "$load1"
