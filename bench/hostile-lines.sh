#!/usr/bin/env bash
# hostile-lines.sh - one message that is a single line of 1, 4, 16 and 50 MB
# (base64 of random bytes, no newline, no space, no sentence end), in the
# middle of an eight-turn chat: wall time and peak RSS (/usr/bin/time -v) of
#   llm-mapreduce --extractive --no-cache
#   llm-mapreduce --dry-run --no-cache
#   llm-route --extractive --no-cache  (band C, against a fake GPU0)
# against `llm-estimate -n` on the same input (reading, parsing and counting
# it once) measured in the same run.  Cutting such a line into chunks must
# cost time in proportion to its size: the "s/MB" column should stay flat
# from 1 to 50 MB.  Prints a markdown table on stdout.
#
# SIZES (default "1 4 16 50") lists the sizes in MB.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
bin=${BIN:-$REPO/bin}
# shellcheck source=bench/bench-lib.sh
. "$REPO/bench/bench-lib.sh"
bench_need python3 curl jq /usr/bin/time
BENCH_TMP=$(mktemp -d)
trap bench_cleanup EXIT
export LLM_ROUTE_CONFIG=$BENCH_TMP/empty.conf
: >"$LLM_ROUTE_CONFIG"
export XDG_CACHE_HOME=$BENCH_TMP/cache

bench_fake_start
export LLM_GPU0_URL=$FAKE_URL LLM_GPU1_URL=http://127.0.0.1:1

# gen MB: the chat on stdout.
gen() {
	python3 - "$1" <<'EOF'
import base64, json, random, sys
n = int(float(sys.argv[1]) * 1024 * 1024)
random.seed(1)
line = base64.b64encode(random.randbytes(n * 3 // 4 + 3)).decode()[:n]
msgs = [{"role": "system", "content": "You are a coding assistant."},
        {"role": "user", "content": "Find out what the blob below is."},
        {"role": "assistant", "content": "Paste it and I will look."},
        {"role": "user", "content": line}]
for i in range(4):
    msgs.append({"role": "assistant",
                 "content": f"Step {i}: decoded a part, see src/blob.c line {10 + i}."})
    msgs.append({"role": "user", "content": f"Go on with step {i + 1}."})
json.dump({"model": "qwen2.5-coder:7b", "messages": msgs}, sys.stdout)
EOF
}

# run FILE CMD...: "seconds kB" of one run of CMD < FILE.
run() {
	local f=$1 out=$BENCH_TMP/time.txt
	shift
	# A failed run's time would mean nothing.
	if ! /usr/bin/time -v -o "$out" "$@" <"$f" >/dev/null 2>"$BENCH_TMP/err"; then
		echo "${0##*/}: $* failed: $(tail -n 1 "$BENCH_TMP/err")" >&2
		exit 1
	fi
	awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, t, ":"); s = 0
			for (i = 1; i <= n; i++) s = s * 60 + t[i] }
		/Maximum resident set size/ { kb = $2 }
		END { printf "%.2f %d\n", s, kb }' "$out"
}

echo "| input | command | wall s | s/MB | peak RSS MB | wall / llm-estimate -n |"
echo "|---:|---|---:|---:|---:|---:|"
for mb in ${SIZES:-1 4 16 50}; do
	f=$BENCH_TMP/line$mb.json
	gen "$mb" >"$f"
	read -r est _ < <(run "$f" "$bin/llm-estimate" -n --max-input 1G)
	for cmd in "llm-estimate -n" "llm-mapreduce --extractive --no-cache" \
	    "llm-mapreduce --dry-run --no-cache" "llm-route --extractive --no-cache"; do
		# shellcheck disable=SC2086
		read -r s kb < <(run "$f" "$bin/"$cmd --max-input 1G)
		# shellcheck disable=SC2016
		printf '| %s MB | `%s` | %s | %s | %s | %s |\n' "$mb" "$cmd" "$s" \
		    "$(bench_fmt "$(awk -v s="$s" -v m="$mb" 'BEGIN { print s / m }')")" \
		    "$(awk -v k="$kb" 'BEGIN { printf "%.1f", k / 1024 }')" \
		    "$(bench_ratio "$s" "$est")"
	done
	rm -f "$f"
done
