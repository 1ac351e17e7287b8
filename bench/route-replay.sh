#!/usr/bin/env bash
# route-replay.sh - a long corpus conversation replayed turn by turn through
# llm-route, against a direct call to GPU0 and against a router without its
# summary cache, with two fake backends (tests/fake_ollama.py, started here on
# free ports) set to the speed of the two GPUs of the design note.
#
#   bench/route-replay.sh > out.md      (from the repo, after `make`)
#
# For t = FIRST, FIRST+STEP, ... and the whole conversation, the first t
# messages go, one turn after the other, through three variants:
#   direct    `llm-generate < turn.json` to GPU0 (the whole conversation every
#             turn; the fake's prefix cache makes only the new part cost prefill);
#   route     `llm-route < turn.json`, default thresholds, a cache directory
#             (XDG_CACHE_HOME) that is empty at the start and kept across turns;
#   no-cache  `llm-route --no-cache < turn.json`, the baseline that condenses
#             everything again every turn (map-reduce recomputes every chunk);
#   cost      `llm-route --policy cost < turn.json`, with its own cache kept
#             across turns;
#   serve     `llm-serve --policy cost`, started once for the variant with its
#             own cache; each turn is POSTed to its /api/chat (curl -N) and
#             answered before the next is sent, as Cline does; its background
#             condensing runs between turns.
# The cost variants are told the fakes' speeds (gpu*_prefill_tps and the like),
# as a user would configure them.
# Both fakes are reset (POST /_reset: settings back to the start flags, prefix
# cache emptied) before each variant. Per turn: wall time of the command, time
# to first byte of the answer on its stdout (a python3 harness), GPU0 and GPU1
# busy seconds (sum of t_end - t_start of the chat requests in each fake's log),
# the same modelled from the token counts in the log, and GPU0's prompt tokens.
#
# Latency model (the fakes sleep it): prefill at P tokens/s on the prompt tokens
# past the longest prefix shared with that model's previous prompt, then D
# answer words/s. GPU0: qwen2.5-coder:7b on an RTX 2060 SUPER 8 GB (P0, D0,
# W0-word answers, num_ctx NUM_CTX with Ollama's silent truncation); GPU1:
# qwen3:1.7b on a GTX 1050 2 GB (P1, D1, W1-word summaries). bench/README.md
# says why. SPEED > 1 runs both fakes SPEED times faster and scales every
# measured time back by SPEED (the fakes' own per-request overhead is scaled up
# with it; the modelled columns leave it out).
#
# Environment: CORPUS (default tests/corpus), FILE (the conversation, default
# mini-swe-agent__django__django-12125.json), FIRST (10), STEP (6), SPEED (5),
# P0 (2000), D0 (50), W0 (300), NUM_CTX (32768), P1 (600), D1 (30), W1 (200),
# EVERY (3: print every EVERY-th turn in the per-turn table, and the last),
# VARIANTS (default "direct route nocache cost serve"; direct must be first).
# Prints markdown on stdout and progress on stderr; exits 2 when a tool is
# missing, 1 when a run fails.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CORPUS=${CORPUS:-$REPO/tests/corpus}
FILE=${FILE:-mini-swe-agent__django__django-12125.json}
FIRST=${FIRST:-10}
STEP=${STEP:-6}
SPEED=${SPEED:-5}
P0=${P0:-2000}
D0=${D0:-50}
W0=${W0:-300}
NUM_CTX=${NUM_CTX:-32768}
P1=${P1:-600}
D1=${D1:-30}
W1=${W1:-200}
EVERY=${EVERY:-3}
VARIANTS=${VARIANTS:-direct route nocache cost serve}
read -r -a variants <<<"$VARIANTS"
[[ ${variants[0]} == direct ]] || { echo "${0##*/}: VARIANTS must start with direct" >&2; exit 2; }
# shellcheck source=bench/bench-lib.sh
. "$REPO/bench/bench-lib.sh"

bench_need curl jq python3 awk
for b in llm-route llm-generate llm-estimate llm-serve; do
	[[ -x $REPO/bin/$b ]] || { echo "${0##*/}: $REPO/bin/$b missing; run make" >&2; exit 2; }
done
SRC=$CORPUS/$FILE
[[ -r $SRC ]] || { echo "${0##*/}: $SRC not found (set CORPUS, FILE)" >&2; exit 2; }

BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/bench-route.XXXXXX")
trap bench_cleanup EXIT	# the fakes too
trap 'exit 130' INT TERM
# No user config file and no user cache: the flags below decide everything.
: >"$BENCH_TMP/config"
export LLM_ROUTE_CONFIG=$BENCH_TMP/config
# Copies, so that a rebuild of bin/ during the run does not change what is measured.
cp "$REPO/bin/llm-route" "$REPO/bin/llm-generate" "$REPO/bin/llm-estimate" "$REPO/bin/llm-serve" "$BENCH_TMP/"
ROUTE=$BENCH_TMP/llm-route
GEN=$BENCH_TMP/llm-generate
EST=$BENCH_TMP/llm-estimate
SERVE=$BENCH_TMP/llm-serve
"$ROUTE" --version >/dev/null && "$GEN" --version >/dev/null && "$EST" --version >/dev/null

nmsg=$(jq '.messages | length' "$SRC")
turns=()
for ((t = FIRST; t <= nmsg; t += STEP)); do turns+=("$t"); done
[[ ${turns[-1]:-} == "$nmsg" ]] || turns+=("$nmsg")

fast() { awk -v a="$1" -v s="$SPEED" 'BEGIN { printf "%g", a * s }'; }
bench_fake_as GPU0 --prefill-tps "$(fast "$P0")" --decode-tps "$(fast "$D0")" \
	--num-ctx "$NUM_CTX" --ctx-length "$NUM_CTX" --set "{\"answer_words\":$W0}"
bench_fake_as GPU1 --prefill-tps "$(fast "$P1")" --decode-tps "$(fast "$D1")" \
	--set "{\"answer_words\":$W1}"
reset_fakes() {
	curl -sS --fail -o /dev/null --data-binary '{}' "$URL_GPU0/_reset"
	curl -sS --fail -o /dev/null --data-binary '{}' "$URL_GPU1/_reset"
}

# The harness: runs ARGV with stdin from FILE, stdout on a pipe and stderr to
# ERR; prints "ttfb_s wall_s out_bytes" (from just before spawning).
cat >"$BENCH_TMP/run.py" <<'EOF'
import os, re, subprocess, sys, time
infile, errfile, outfile, argv = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
# NDJSON (llm-serve's stream): the first byte of the answer is the first line
# with content, not the first byte of the stream.
ndjson = os.environ.get("RUN_NDJSON") == "1"
first = re.compile(rb'"content":"[^"]')
with open(infile, "rb") as f, open(errfile, "wb") as e, open(outfile, "wb") as o:
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdin=f, stdout=subprocess.PIPE, stderr=e)
    b = os.read(p.stdout.fileno(), 65536)
    t1 = time.perf_counter()
    seen = b
    n = len(b)
    o.write(b)
    while b:
        b = os.read(p.stdout.fileno(), 65536)
        if ndjson and not first.search(seen):
            t1 = time.perf_counter()
            seen += b
        o.write(b)
        n += len(b)
    rc = p.wait()
    t2 = time.perf_counter()
if rc != 0 or n == 0:
    sys.exit(f"{argv[0]}: exit {rc}, {n} bytes on stdout")
print(f"{t1 - t0:.6f} {t2 - t0:.6f} {n}")
EOF

# Waits until every request started in LOG since line N0 has ended, then prints
# "requests busy_s modelled_s prompt_tokens prefilled_tokens truncated" for its
# /api/chat requests (times scaled back by SPEED).
log_stats() {
	local log=$1 n0=$2 p=$3 d=$4 wait=${5:-1} i s e
	for ((i = 0; i < 200 && wait; i++)); do
		s=$(tail -n +"$((n0 + 1))" "$log" | grep -c '"event": *"start"' || true)
		e=$(tail -n +"$((n0 + 1))" "$log" | grep -c '"event": *"end"' || true)
		[[ $s == "$e" ]] && break
		sleep 0.05
	done
	((!wait)) || [[ $s == "$e" ]] || { echo "${0##*/}: $log: requests did not finish" >&2; exit 1; }
	# Background condensing's requests may be cancelled: not an error.
	tail -n +"$((n0 + 1))" "$log" | jq -rs --argjson sp "$SPEED" --argjson p "$p" --argjson d "$d" --argjson strict "$wait" '
		[.[] | select(.event == "end" and .path == "/api/chat")] as $r
		| if $strict == 1 and any($r[]; .status != 200 or .completed != true) then error("a chat request failed") else . end
		| [($r | length), (($r | map(.t_end - .t_start) | add // 0) * $sp * 1000 | round / 1000),
		   (($r | map(.prefilled_tokens / $p + .eval_count / $d) | add // 0) * 1000 | round / 1000),
		   ($r | map(.prompt_tokens) | add // 0), ($r | map(.prefilled_tokens) | add // 0),
		   (if any($r[]; .truncated) then 1 else 0 end)] | @tsv'
}

# The speeds the cost variants are configured with: the fakes'.
COST_SET=(--policy cost --set "gpu0_prefill_tps=$(fast "$P0")" --set "gpu0_decode_tps=$(fast "$D0")"
	--set "gpu1_prefill_tps=$(fast "$P1")" --set "gpu1_decode_tps=$(fast "$D1")")

# serve_start: llm-serve --policy cost on a free port, logging to serve.err;
# sets SERVE_URL, SERVE_PID.
serve_start() {
	local i
	: >"$BENCH_TMP/serve.err"
	"$SERVE" --listen 127.0.0.1:0 --gpu0-url "$URL_GPU0" --gpu1-url "$URL_GPU1" --log-json \
		"${COST_SET[@]}" </dev/null >/dev/null 2>"$BENCH_TMP/serve.err" &
	SERVE_PID=$!
	BENCH_PIDS+=("$SERVE_PID")
	for ((i = 0; i < 200; i++)); do
		SERVE_URL=$(sed -n 's/^llm-serve: listening on \(http:[^ ]*\)$/\1/p' "$BENCH_TMP/serve.err" | head -n 1)
		[[ -n $SERVE_URL ]] && return
		kill -0 "$SERVE_PID" 2>/dev/null || { echo "llm-serve exited: $(cat "$BENCH_TMP/serve.err")" >&2; exit 1; }
		sleep 0.05
	done
	echo "llm-serve: not listening after 10 s" >&2
	exit 1
}

# variant NAME: runs every turn, appends one line per turn to $BENCH_TMP/NAME.tsv:
# t tokens ttfb wall, log_stats of GPU0 (6 fields) and of GPU1 (6), strategy,
# cache hits/lookups, predicted and measured ms to the first token (-1: none)
variant() {
	local v=$1 t in n0 n1 r0 r1 ttfb wall strat hits pm ns wait1=1
	local -a cmd
	reset_fakes
	export XDG_CACHE_HOME=$BENCH_TMP/xdg-$v
	mkdir -p "$XDG_CACHE_HOME"
	case $v in
	direct) cmd=("$GEN" --url "$URL_GPU0" --log-json) ;;
	route) cmd=("$ROUTE" --gpu0-url "$URL_GPU0" --gpu1-url "$URL_GPU1" --log-json) ;;
	nocache) cmd=("$ROUTE" --gpu0-url "$URL_GPU0" --gpu1-url "$URL_GPU1" --log-json --no-cache) ;;
	cost) cmd=("$ROUTE" --gpu0-url "$URL_GPU0" --gpu1-url "$URL_GPU1" --log-json "${COST_SET[@]}") ;;
	serve)
		serve_start
		wait1=0	# background condensing may run past a turn
		cmd=(curl -sSN --fail --data-binary @- "$SERVE_URL/api/chat") ;;
	*) echo "${0##*/}: unknown variant $v" >&2; exit 2 ;;
	esac
	: >"$BENCH_TMP/$v.tsv"
	for t in "${turns[@]}"; do
		in=$BENCH_TMP/turn-$t.json
		echo "$v: turn $t" >&2
		n0=$(wc -l <"$BENCH_TMP/GPU0.log")
		n1=$(wc -l <"$BENCH_TMP/GPU1.log")
		[[ $v == serve ]] && ns=$(wc -l <"$BENCH_TMP/serve.err")
		if ! read -r ttfb wall _ < <(RUN_NDJSON=$([[ $v == serve ]] && echo 1) python3 "$BENCH_TMP/run.py" "$in" "$BENCH_TMP/err" \
			"$BENCH_TMP/out-$v-$t.txt" "${cmd[@]}"); then
			echo "${0##*/}: $v failed at turn $t:" >&2
			grep -v '^{' "$BENCH_TMP/err" >&2 || true
			exit 1
		fi
		[[ -n ${wall:-} ]] || { echo "${0##*/}: $v failed at turn $t:" >&2; grep -v '^{' "$BENCH_TMP/err" >&2 || true; exit 1; }
		if [[ $v == serve ]]; then	# the logs are llm-serve's, this turn's
			sleep 0.1
			tail -n +"$((ns + 1))" "$BENCH_TMP/serve.err" >"$BENCH_TMP/err"
		fi
		# Warnings (for example a server that evidently truncated) are kept, not fatal.
		grep -v '^{' "$BENCH_TMP/err" | sed "s/^/$v turn $t: /" >>"$BENCH_TMP/warnings" || true
		r0=$(log_stats "$BENCH_TMP/GPU0.log" "$n0" "$P0" "$D0")
		r1=$(log_stats "$BENCH_TMP/GPU1.log" "$n1" "$P1" "$D1" "$wait1")
		grep '^{' "$BENCH_TMP/err" >"$BENCH_TMP/err.json" || true
		strat=$(jq -rs '(map(select(.event == "first_token"))[0].strategy // map(select(.event == "route"))[0].strategy) // "direct"' "$BENCH_TMP/err.json")
		hits=$(jq -rs 'map(select(.event == "cache" and .hits != null))[0] | if . then "\(.hits)/\(.hits + .misses)" else "-" end' \
			"$BENCH_TMP/err.json")
		pm=$(jq -rs 'map(select(.event == "first_token"))[0] | if . then "\(.predicted_ms)\t\(.measured_ms)" else "-1\t-1" end' \
			"$BENCH_TMP/err.json")
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "${tok[$t]}" \
			"$(awk -v a="$ttfb" -v s="$SPEED" 'BEGIN { printf "%.3f", a * s }')" \
			"$(awk -v a="$wall" -v s="$SPEED" 'BEGIN { printf "%.3f", a * s }')" \
			"$r0" "$r1" "$strat" "$hits" "$pm" >>"$BENCH_TMP/$v.tsv"
	done
	if [[ $v == serve ]]; then
		kill "$SERVE_PID" 2>/dev/null || true
		wait "$SERVE_PID" 2>/dev/null || true
	fi
}

declare -A tok
for t in "${turns[@]}"; do
	jq -c --argjson t "$t" '.messages |= .[:$t]' "$SRC" >"$BENCH_TMP/turn-$t.json"
	tok[$t]=$("$EST" -n <"$BENCH_TMP/turn-$t.json")
done
: >"$BENCH_TMP/warnings"

load0=$(cut -d' ' -f1-3 /proc/loadavg)
up0=$(uptime)
start=$EPOCHREALTIME
for v in "${variants[@]}"; do variant "$v"; done
load1=$(cut -d' ' -f1-3 /proc/loadavg)
elapsed=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d min %d s", (b - a) / 60, (b - a) % 60 }')

echo "## llm-route: a growing conversation (bench/route-replay.sh)"
echo
printf -- '- date: %s, run time %s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')" "$elapsed"
printf -- '- CPU: %s, nproc %s, kernel %s, %s\n' \
	"$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)" "$(nproc)" \
	"$(uname -r)" "$(python3 --version)"
printf -- '- load average before / after: %s / %s (uptime before: %s)\n' "$load0" "$load1" "${up0# }"
# shellcheck disable=SC2016
printf -- '- conversation: `%s`, %s messages, %s tokens (`llm-estimate -n`)\n' \
	"$FILE" "$nmsg" "${tok[$nmsg]}"
printf -- '- turns: t = %s, %s, ... every %s messages, and %s (%s turns)\n' \
	"${turns[0]}" "${turns[1]:-}" "$STEP" "$nmsg" "${#turns[@]}"
printf -- '- GPU0 fake: prefill %s tokens/s, decode %s tokens/s, %s-word answers, num_ctx %s (silent truncation past it)\n' \
	"$P0" "$D0" "$W0" "$NUM_CTX"
printf -- '- GPU1 fake: prefill %s tokens/s, decode %s tokens/s, %s-word answers\n' "$P1" "$D1" "$W1"
printf -- '- both fakes run %sx faster and every time is scaled back by %s\n' "$SPEED" "$SPEED"
echo

# Per turn, every EVERY-th turn and the last.
# Each variant's tsv: 1 t, 2 tokens, 3 ttfb, 4 wall, GPU0: 5 req 6 busy 7 model
# 8 prompt 9 prefilled 10 truncated, GPU1: 11-16 the same, 17 strategy,
# 18 cache hits, 19 predicted ms, 20 measured ms.
label() { case $1 in direct) echo direct ;; route) echo "llm-route" ;; nocache) echo "no cache" ;;
	cost) echo "cost (llm-route)" ;; serve) echo "cost (llm-serve)" ;; *) echo "$1" ;; esac; }
echo "### Per turn (every ${EVERY} turns from the first, and the last)"
echo
echo "Tokens: \`llm-estimate -n\` of the first t messages. Per variant: the strategy,"
echo "GPU0's prompt tokens (the fake's count, characters/4; T: silently truncated to"
echo "num_ctx), wall and TTFB seconds of the turn."
echo
hdr="| turn | tokens |" sep="|---:|---:|"
for v in "${variants[@]}"; do
	hdr+=" $(label "$v"): strategy | GPU0 prompt | wall s | TTFB s |"
	sep+="---|---:|---:|---:|"
done
echo "$hdr"
echo "$sep"
files=()
for v in "${variants[@]}"; do files+=("$BENCH_TMP/$v.tsv"); done
paste "${files[@]}" | awk -F'\t' -v every="$EVERY" -v n="${#turns[@]}" -v nv="${#variants[@]}" '
	(NR - 1) % every == 0 || NR == n {
		line = sprintf("| %s | %s |", $1, $2)
		for (v = 0; v < nv; v++) { o = v * 20
			line = line sprintf(" %s | %s%s | %.1f | %.1f |", (v == 0 ? "direct" : $(o + 17)),
				$(o + 8), ($(o + 10) == 1 ? " T" : ""), $(o + 4), $(o + 3)) }
		print line
	}'
echo

echo "### Totals over ${#turns[@]} turns"
echo
echo "Sums over the turns; the ratio column after each variant is variant / direct."
echo "Busy: sum of the chat requests' durations in the fake's log (GPU1's includes"
echo "llm-serve's background condensing); modelled: prefill + decode time from the"
echo "token counts in the log. Slow turns: turns where direct was not truncated and"
echo "the variant's TTFB was more than 10% above direct's (and, the next row, also"
echo "more than 0.25 s, 50 ms before the scaling, above it)."
echo
hdr="| |" sep="|---|"
for v in "${variants[@]}"; do
	if [[ $v == direct ]]; then hdr+=" direct |"; sep+="---:|"
	else hdr+=" $(label "$v") | ratio |"; sep+="---:|---:|"; fi
done
echo "$hdr"
echo "$sep"
paste "${files[@]}" | awk -F'\t' -v nv="${#variants[@]}" '
	{ for (v = 0; v < nv; v++) { o = v * 20
		w[v] += $(o + 4); f[v] += $(o + 3); b0[v] += $(o + 6); m0[v] += $(o + 7)
		pt[v] += $(o + 8); pf[v] += $(o + 9); tr[v] += $(o + 10)
		n1[v] += $(o + 11); b1[v] += $(o + 12); m1[v] += $(o + 13)
		if ($10 != 1 && $(o + 3) > 1.1 * $3) slow[v]++
		if ($10 != 1 && $(o + 3) > 1.1 * $3 && $(o + 3) - $3 > 0.25) slow2[v]++ } }
	function row(name, a, fmt, ratio,   v, s) {
		s = "| " name " |"
		for (v = 0; v < nv; v++) {
			s = s sprintf(" " fmt " |", a[v])
			if (v > 0) s = s (ratio ? sprintf(" %.2f |", a[0] ? a[v] / a[0] : 0) : " |")
		}
		print s
	}
	END {
		for (v = 0; v < nv; v++) { b[v] = b0[v] + b1[v]; m[v] = m0[v] + m1[v]; mw[v] = w[v] / NR
			sl[v] = slow[v] + 0; sl2[v] = slow2[v] + 0 }
		row("wall s", w, "%.1f", 1); row("TTFB s", f, "%.1f", 1)
		row("GPU0 busy s", b0, "%.1f", 1); row("GPU0 modelled s", m0, "%.1f", 1)
		row("GPU1 busy s", b1, "%.1f", 0); row("GPU1 modelled s", m1, "%.1f", 0)
		row("GPU1 requests", n1, "%d", 0)
		row("GPU0 + GPU1 busy s", b, "%.1f", 1)
		row("GPU0 prompt tokens", pt, "%d", 1); row("GPU0 prefilled tokens", pf, "%d", 1)
		row("turns truncated by GPU0", tr, "%d", 0)
		row("slow turns (TTFB > 1.1x direct, direct not truncated)", sl, "%d", 0)
		row("of them, more than 0.25 s slower", sl2, "%d", 0)
		row("wall s per turn (mean)", mw, "%.1f", 1)
	}'
echo
for v in "${variants[@]}"; do
	[[ $v == cost || $v == serve ]] || continue
	# The predictor: |predicted - measured| / measured on the turns that were predicted.
	awk -F'\t' '$19 > 0 && $20 > 0 { e = ($19 - $20) / $20; print (e < 0 ? -e : e) }' "$BENCH_TMP/$v.tsv" |
		sort -g | awk -v name="$(label "$v")" '{ d[++n] = $1 }
		END { if (!n) { printf "- %s: no predicted turn\n", name; exit }
			med = n % 2 ? d[(n + 1) / 2] : (d[n / 2] + d[n / 2 + 1]) / 2
			k = int(n * 0.9 + 0.5); if (k < 1) k = 1
			printf "- %s: predicted time to the first token against measured, median error %.0f%% over %d turns (90th percentile %.0f%%)\n",
				name, med * 100, n, d[k] * 100 }'
	printf -- '- %s: strategies %s\n' "$(label "$v")" "$(cut -f17 "$BENCH_TMP/$v.tsv" | sort | uniq -c | awk '{ printf "%s%s %s", (NR > 1 ? ", " : ""), $2, $1 }')"
done
first_trunc=$(awk -F'\t' '$10 == 1 { print $1 " (" $2 " tokens)"; exit }' "$BENCH_TMP/direct.tsv")
printf -- '- first turn where direct was truncated at num_ctx %s: %s\n' "$NUM_CTX" "${first_trunc:-none}"
if [[ " ${variants[*]} " == *" route "* && " ${variants[*]} " == *" nocache "* ]]; then
	printf -- '- outputs of llm-route and of the no-cache run identical: %s of %s turns\n' \
		"$(for t in "${turns[@]}"; do cmp -s "$BENCH_TMP/out-route-$t.txt" "$BENCH_TMP/out-nocache-$t.txt" && echo; done | wc -l)" \
		"${#turns[@]}"
fi
if [[ -s $BENCH_TMP/warnings ]]; then
	echo "- warnings on stderr ($(wc -l <"$BENCH_TMP/warnings")), the first 5:"
	echo
	echo '```'
	head -n 5 "$BENCH_TMP/warnings"
	echo '```'
fi
echo
echo "Full per-turn data (tab-separated, times scaled back):"
echo
echo '```'
echo "variant t tokens ttfb_s wall_s gpu0: req busy_s model_s prompt prefilled truncated gpu1: req busy_s model_s prompt prefilled truncated strategy cache_hits predicted_ms measured_ms"
for v in "${variants[@]}"; do sed "s/^/$v\t/" "$BENCH_TMP/$v.tsv"; done
echo '```'
