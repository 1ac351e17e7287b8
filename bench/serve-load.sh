#!/usr/bin/env bash
# serve-load.sh - llm-serve under 1, 32 and 256 concurrent streaming clients,
# against the same clients talking to the fake GPU0 directly, in the same run.
#
#   bench/serve-load.sh > out.md      (from the repo, after `make`; ~2.5 min)
#
# Builds two helpers from bench/ into a temporary directory with $CC:
#   serve-load-fake    a fast fake GPU0 (C, epoll, one timerfd per stream): each
#                      POST /api/chat gets CHUNKS NDJSON lines INTERVAL_MS apart,
#                      each line's content the CLOCK_MONOTONIC time of its write
#   serve-load-client  N concurrent streaming clients (C, epoll, raw sockets):
#                      per stream the time to the first byte and to the first
#                      content line; per line arrival - send (one-way latency)
# and starts the fake and a copy of bin/llm-serve on 127.0.0.1 ephemeral ports,
# llm-serve pointed at the fake (--gpu0-url, --gpu1-url).  For each level N the
# client runs one warm-up round and ROUNDS measured rounds against each target,
# alternating "direct" (client -> fake) and "via" (client -> llm-serve -> fake);
# a round is N streams started evenly over RAMP_MS.  The requests are small
# (routed "direct" by llm-serve) and carry options.num_ctx, so llm-serve asks
# no /api/show.  During the "via" rounds the client samples, every 100 ms,
# llm-serve's RSS and its children's (/proc/PID/task/PID/children, statm) and
# counts the CPU time of llm-serve and of its reaped children (/proc/PID/stat).
# A last round of the largest N against llm-serve alone reads smaps_rollup (PSS,
# private memory) of llm-serve and every child; it is not timed.
#
# Environment: LEVELS ("1 32 256"), CHUNKS (100), INTERVAL_MS (20), RAMP_MS
# (INTERVAL_MS), ROUNDS (default 20 for N=1, 6 up to 32, else 4), MAX_STREAMS
# (llm-serve --max-streams, default the largest level), CC (cc), SERVE (the
# llm-serve to measure, default bin/llm-serve).
# Prints markdown on stdout, progress on stderr; exits 1 when a stream failed or
# llm-serve did not stop cleanly, 2 when a tool is missing.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LEVELS=${LEVELS:-"1 32 256"}
CHUNKS=${CHUNKS:-100}
INTERVAL_MS=${INTERVAL_MS:-20}
RAMP_MS=${RAMP_MS:-$INTERVAL_MS}
CC=${CC:-cc}
SERVE=${SERVE:-$REPO/bin/llm-serve}
# shellcheck source=bench/bench-lib.sh
. "$REPO/bench/bench-lib.sh"

bench_need jq "$CC"
[[ -x $SERVE ]] || { echo "${0##*/}: $SERVE missing; run make" >&2; exit 2; }
MAXN=0
for n in $LEVELS; do if ((n > MAXN)); then MAXN=$n; fi; done
MAX_STREAMS=${MAX_STREAMS:-$MAXN}

BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/bench-serve-load.XXXXXX")
SERVE_PID=
cleanup() {
	local i
	if [[ -n $SERVE_PID ]] && kill -0 "$SERVE_PID" 2>/dev/null; then
		kill -TERM "$SERVE_PID" 2>/dev/null || true
		for ((i = 0; i < 60; i++)); do
			kill -0 "$SERVE_PID" 2>/dev/null || break
			sleep 0.05
		done
		kill -KILL "$SERVE_PID" 2>/dev/null || true
	fi
	bench_cleanup	# the fake (FAKE_PID) and BENCH_TMP
}
trap cleanup EXIT
trap 'exit 130' INT TERM
: >"$BENCH_TMP/config"
export LLM_ROUTE_CONFIG=$BENCH_TMP/config
# A copy, so that a rebuild during the run does not change what is measured.
if [[ $SERVE -ef $REPO/bin/llm-serve ]]; then
	SERVE_WHAT="bin/llm-serve (tree $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo '?'))"
else
	SERVE_WHAT=$SERVE
fi
SERVE_WHAT="$SERVE_WHAT, built $(date -u -r "$SERVE" '+%Y-%m-%d %H:%M UTC')"
cp "$SERVE" "$BENCH_TMP/llm-serve"
SERVE=$BENCH_TMP/llm-serve

for h in serve-load-fake serve-load-client; do
	$CC -std=c11 -O2 -Wall -Wextra -o "$BENCH_TMP/$h" "$REPO/bench/$h.c"
done

# The fake GPU0.
"$BENCH_TMP/serve-load-fake" --port-file "$BENCH_TMP/fake.port" \
	--chunks "$CHUNKS" --interval-ms "$INTERVAL_MS" \
	</dev/null >/dev/null 2>"$BENCH_TMP/fake.err" &
FAKE_PID=$!
for ((i = 0; i < 100; i++)); do
	[[ -s $BENCH_TMP/fake.port ]] && break
	kill -0 "$FAKE_PID" 2>/dev/null || { cat "$BENCH_TMP/fake.err" >&2; exit 1; }
	sleep 0.05
done
FAKE_PORT=$(<"$BENCH_TMP/fake.port")
FAKE_URL=http://127.0.0.1:$FAKE_PORT

# llm-serve, its warnings kept.
"$SERVE" --listen 127.0.0.1:0 --gpu0-url "$FAKE_URL" --gpu1-url "$FAKE_URL" \
	--no-cache --max-streams "$MAX_STREAMS" \
	</dev/null >/dev/null 2>"$BENCH_TMP/serve.err" &
SERVE_PID=$!
SERVE_PORT=
for ((i = 0; i < 100; i++)); do
	SERVE_PORT=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' \
		"$BENCH_TMP/serve.err")
	[[ -n $SERVE_PORT ]] && break
	kill -0 "$SERVE_PID" 2>/dev/null || { cat "$BENCH_TMP/serve.err" >&2; exit 1; }
	sleep 0.05
done
[[ -n $SERVE_PORT ]] || { echo "${0##*/}: llm-serve did not listen" >&2; exit 1; }
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)

rounds_for() {
	if [[ -n ${ROUNDS:-} ]]; then echo "$ROUNDS"
	elif (($1 <= 1)); then echo 20
	elif (($1 <= 32)); then echo 6
	else echo 4; fi
}

# A round's time limit: its streams' length and 15 s.
ROUND_TIMEOUT=$(awk -v k="$CHUNKS" -v i="$INTERVAL_MS" -v r="$RAMP_MS" \
	'BEGIN { print int((k + 1) * i / 1000 + r / 1000 + 15) }')
T0=$SECONDS
for n in $LEVELS; do
	r=$(rounds_for "$n")
	echo "${0##*/}: $n stream(s), $r rounds each, direct and via llm-serve" >&2
	"$BENCH_TMP/serve-load-client" -n "$n" -r "$r" -w 1 -k "$CHUNKS" \
		--ramp-ms "$RAMP_MS" --timeout-s "$ROUND_TIMEOUT" \
		direct="$FAKE_PORT" via="$SERVE_PORT" --watch via="$SERVE_PID" \
		>"$BENCH_TMP/level-$n.json" 2> >(tee "$BENCH_TMP/level-$n.err" >&2)
done
echo "${0##*/}: $MAXN streams via llm-serve, reading smaps_rollup (untimed)" >&2
"$BENCH_TMP/serve-load-client" -n "$MAXN" -r 1 -w 0 -k "$CHUNKS" \
	--ramp-ms "$RAMP_MS" --timeout-s "$ROUND_TIMEOUT" via="$SERVE_PORT" \
	--watch via="$SERVE_PID" --pss --sample-ms 200 \
	>"$BENCH_TMP/pss.json" 2> >(tee "$BENCH_TMP/pss.err" >&2)
ELAPSED=$((SECONDS - T0))
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
HWM=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$SERVE_PID/status")
# shellcheck disable=SC2046
FAKE_CPU=$(awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); printf "%.0f", ($12 + $13) * 1000 / hz }' \
	"/proc/$FAKE_PID/stat")

# A clean stop: SIGTERM with nothing in flight ends llm-serve with status 0.
kill -TERM "$SERVE_PID"
STOP=ok
for ((i = 0; i < 100; i++)); do
	kill -0 "$SERVE_PID" 2>/dev/null || break
	sleep 0.05
done
if kill -0 "$SERVE_PID" 2>/dev/null; then
	STOP="still running 5 s after SIGTERM"
else
	set +e
	wait "$SERVE_PID"
	rc=$?
	set -e
	((rc == 0)) || STOP="exit status $rc after SIGTERM"
fi
SERVE_PID=
WARNINGS=$(grep -vc 'listening on' "$BENCH_TMP/serve.err" || true)

# ---- the report ----

# The peak: VmHWM, or a sample above it (the kernel's RSS counters are
# batched per CPU, so VmHWM can lag VmRSS by a little).
for f in "$BENCH_TMP"/level-*.json "$BENCH_TMP/pss.json"; do
	s=$(jq -r 'select(.target == "via") | .mem_kb.parent_rss_peak' "$f")
	if ((s > HWM)); then HWM=$s; fi
done

ms() { awk -v x="$1" 'BEGIN { if (x < 0) print "-"; else printf "%.3f", x / 1000 }'; }
dms() { awk -v a="$1" -v b="$2" 'BEGIN { if (a < 0 || b < 0) print "-"; else printf "%+.3f", (a - b) / 1000 }'; }
mb() { awk -v x="$1" 'BEGIN { printf "%.1f", x / 1024 }'; }
get() { jq -r --arg t "$2" "select(.target == \$t) | $3" "$1"; }
yesno() { awk -v a="$1" -v l="$2" 'BEGIN { print (a <= l ? "yes" : "no") }'; }

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
echo "## llm-serve under load: figures"
echo
printf -- '- date: %s; CPU: %s, nproc %s, kernel %s; libmicrohttpd %s\n' \
	"$(date -u '+%Y-%m-%d %H:%M UTC')" "${cpu:-unknown}" "$(nproc)" "$(uname -r)" \
	"$(pkg-config --modversion libmicrohttpd 2>/dev/null || echo '?')"
printf -- '- llm-serve: %s; load average before / after: %s / %s; run time %s s\n' \
	"$SERVE_WHAT" "$LOAD0" "$LOAD1" "$ELAPSED"
printf -- '- each stream: %s content lines %s ms apart, then done:true; a round: N streams started evenly over %s ms; llm-serve --max-streams %s\n' \
	"$CHUNKS" "$INTERVAL_MS" "$RAMP_MS" "$MAX_STREAMS"
echo

echo "### Per-line latency (fake GPU0's write to the client's recv), ms"
echo
echo "All content lines of the measured rounds. \"Steady\": only the lines sent while"
echo "every stream of the round was answering (after the last stream's first content"
echo "line, before the first stream's end)."
echo
echo "| streams | rounds | lines | direct p50 | via p50 | **added p50** | direct p99 | via p99 | **added p99** | via p99.9 | via max |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for n in $LEVELS; do
	f=$BENCH_TMP/level-$n.json
	for set in chunk steady; do
		dp50=$(get "$f" direct ".${set}_us.p50"); vp50=$(get "$f" via ".${set}_us.p50")
		dp99=$(get "$f" direct ".${set}_us.p99"); vp99=$(get "$f" via ".${set}_us.p99")
		label=$n; [[ $set == steady ]] && label="$n, steady"
		printf '| %s | %s | %s | %s | %s | **%s** | %s | %s | **%s** | %s | %s |\n' \
			"$label" "$(get "$f" via .rounds)" "$(get "$f" via ".${set}_us.n")" \
			"$(ms "$dp50")" "$(ms "$vp50")" "$(dms "$vp50" "$dp50")" \
			"$(ms "$dp99")" "$(ms "$vp99")" "$(dms "$vp99" "$dp99")" \
			"$(ms "$(get "$f" via ".${set}_us.p999")")" "$(ms "$(get "$f" via ".${set}_us.max")")"
	done
done
echo

echo "### Time to first byte, ms"
echo
echo "From just before connect(2) to the first byte of the response (status line),"
echo "and to the first content line.  The fake answers at once, so direct, both are"
echo "the same; llm-serve sends its head and an empty line before GPU0 answers."
echo
echo "| streams | direct p50 | direct p99 | via, first byte p50 | p99 | via, first content p50 | p99 | **added p50** (content) | **added p99** (content) |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for n in $LEVELS; do
	f=$BENCH_TMP/level-$n.json
	dp50=$(get "$f" direct .ttfc_us.p50); dp99=$(get "$f" direct .ttfc_us.p99)
	vp50=$(get "$f" via .ttfc_us.p50); vp99=$(get "$f" via .ttfc_us.p99)
	printf '| %s | %s | %s | %s | %s | %s | %s | **%s** | **%s** |\n' "$n" \
		"$(ms "$dp50")" "$(ms "$dp99")" \
		"$(ms "$(get "$f" via .ttfb_us.p50)")" "$(ms "$(get "$f" via .ttfb_us.p99)")" \
		"$(ms "$vp50")" "$(ms "$vp99")" "$(dms "$vp50" "$dp50")" "$(dms "$vp99" "$dp99")"
done
echo

echo "### Errors, memory and CPU"
echo
echo "Errors: streams that failed (connect, status not 200, an error line, a missing"
echo "or out-of-order line, no done:true, a cut or timed-out stream).  RSS sampled"
echo "every 100 ms during the \"via\" rounds; a child's RSS counts the pages it shares"
echo "with llm-serve (copy-on-write after fork), so the sum over children overcounts."
echo "CPU: llm-serve's own, and its children's once reaped, over the measured rounds."
echo "Not streamed: answers that came with a Content-Length instead of chunked (the"
echo "whole answer was in llm-serve before it sent the head); not an error."
echo
echo "| streams | streams ok (direct / via) | errors (direct / via) | via, not streamed | llm-serve RSS peak, MB | children at once, peak | children's RSS sum peak, MB | CPU per line, llm-serve / children, µs |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
errs=0
for n in $LEVELS; do
	f=$BENCH_TMP/level-$n.json
	de=$(get "$f" direct .errors); ve=$(get "$f" via .errors)
	errs=$((errs + de + ve))
	lines=$(get "$f" via .chunk_us.n)
	printf '| %s | %s / %s | %s / %s | %s | %s | %s | %s | %s / %s |\n' "$n" \
		"$(get "$f" direct .ok)" "$(get "$f" via .ok)" "$de" "$ve" \
		"$(get "$f" via .unchunked)" \
		"$(mb "$(get "$f" via .mem_kb.parent_rss_peak)")" \
		"$(get "$f" via .mem_kb.children_peak)" \
		"$(mb "$(get "$f" via .mem_kb.children_rss_sum_peak)")" \
		"$(awk -v c="$(get "$f" via .cpu_ms.parent)" -v l="$lines" 'BEGIN { printf "%.0f", (l > 0 ? c * 1000 / l : 0) }')" \
		"$(awk -v c="$(get "$f" via .cpu_ms.children)" -v l="$lines" 'BEGIN { printf "%.0f", (l > 0 ? c * 1000 / l : 0) }')"
done
echo
f=$BENCH_TMP/pss.json
pe=$(get "$f" via .errors)
errs=$((errs + pe))
printf -- '- llm-serve peak RSS over the whole run (VmHWM, or a higher sample): **%s MB**\n' "$(mb "$HWM")"
printf -- '- %s streams, smaps_rollup every 200 ms (%s errors): llm-serve PSS %s MB; children at once %s, their PSS sum %s MB, their private memory sum %s MB; llm-serve and children, PSS sum %s MB (RSS sum %s MB)\n' \
	"$MAXN" "$pe" "$(mb "$(get "$f" via .mem_kb.parent_pss_peak)")" \
	"$(get "$f" via .mem_kb.children_peak)" \
	"$(mb "$(get "$f" via .mem_kb.children_pss_sum_peak)")" \
	"$(mb "$(get "$f" via .mem_kb.children_private_sum_peak)")" \
	"$(mb "$(get "$f" via .mem_kb.total_pss_sum_peak)")" \
	"$(mb "$(get "$f" via .mem_kb.total_rss_sum_peak)")"
printf -- '- CPU of the load client over the run: %s ms (the %s level(s) and the PSS round); of the fake GPU0: %s ms\n' \
	"$(jq -s 'map(.client_cpu_ms // 0) | add' "$BENCH_TMP"/level-*.json "$BENCH_TMP/pss.json")" \
	"$(wc -w <<<"$LEVELS")" "$FAKE_CPU"
printf -- '- llm-serve: %s line(s) on stderr besides "listening"; stop on SIGTERM: %s\n' "$WARNINGS" "$STOP"
if ((WARNINGS > 0)); then
	echo
	echo '```'
	grep -v 'listening on' "$BENCH_TMP/serve.err" | sort | uniq -c | sort -rn | head -n 10
	echo '```'
fi
echo

f=$BENCH_TMP/level-$MAXN.json
vp50=$(get "$f" via .chunk_us.p50); dp50=$(get "$f" direct .chunk_us.p50)
vp99=$(get "$f" via .chunk_us.p99); dp99=$(get "$f" direct .chunk_us.p99)
echo "### Targets ($MAXN streams)"
echo
echo "| target | measured | met |"
echo "|---|---:|---|"
a50=$(awk -v a="$vp50" -v b="$dp50" 'BEGIN { print a - b }')
a99=$(awk -v a="$vp99" -v b="$dp99" 'BEGIN { print a - b }')
printf '| added per-line p50 ≤ 0.2 ms | %s ms | %s |\n' "$(dms "$vp50" "$dp50")" "$(yesno "$a50" 200)"
printf '| added per-line p99 ≤ 1 ms | %s ms | %s |\n' "$(dms "$vp99" "$dp99")" "$(yesno "$a99" 1000)"
printf '| llm-serve peak RSS ≤ 32 MB | %s MB | %s |\n' "$(mb "$HWM")" "$(yesno "$HWM" 32768)"
printf '| errors = 0 | %s | %s |\n' "$errs" "$(yesno "$errs" 0)"

[[ $errs -eq 0 && $STOP == ok ]] || exit 1
