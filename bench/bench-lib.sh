# shellcheck shell=bash
# bench-lib.sh - shared by the bench/*.sh benchmarks (sourced, not run).
#
#   bench_need CMD...          exit 2 unless every CMD is installed
#   bench_machine              markdown lines: date, CPU, nproc, kernel, tools
#   bench_fake_start [flags]   start tests/fake_ollama.py on 127.0.0.1 port 0 in
#                              $BENCH_TMP; sets FAKE_URL, FAKE_PID
#   bench_fake_as NAME [flags] another one, logging to $BENCH_TMP/NAME.log;
#                              sets URL_<NAME> (several may run)
#   bench_fake_control JSON    POST /_reset, then /_control JSON
#   bench_hf_stat FILE I KEY   KEY (median, mean, stddev...) of command I of a
#                              hyperfine --export-json FILE, in ms (3 decimals)
#   bench_rss CMD...           peak RSS in kB of CMD (stdin and stdout as given),
#                              from /usr/bin/time -v "Maximum resident set size"
#   bench_median N...          median of numbers
# The caller sets REPO and BENCH_TMP (a mktemp -d directory) first and calls
# bench_cleanup from its EXIT trap, which removes BENCH_TMP unless BENCH_KEEP
# is set (to look into a failed run).

bench_need() {
	local c
	for c in "$@"; do
		if ! command -v "$c" >/dev/null 2>&1; then
			echo "${0##*/}: $c is not installed (needed: $*)" >&2
			exit 2
		fi
	done
}

bench_machine() {
	local cpu
	cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
	printf -- '- date: %s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
	printf -- '- CPU: %s, nproc %s, kernel %s\n' "${cpu:-unknown}" "$(nproc)" "$(uname -r)"
	printf -- '- %s, %s, %s, %s\n' "$(hyperfine --version)" \
		"$(curl --version | head -n 1 | cut -d' ' -f1-2)" "$(jq --version)" \
		"$(python3 --version)"
}

# _bench_fake FILE LABEL [flags]: a fake logging to $BENCH_TMP/FILE.log, its
# port in $BENCH_TMP/FILE.port once it listens; sets _BENCH_PID.
_bench_fake() {
	local f=$BENCH_TMP/$1 label=$2 i
	shift 2
	python3 "$REPO/tests/fake_ollama.py" --port 0 --port-file "$f.port" \
		--log "$f.log" --name "$label" "$@" \
		</dev/null >/dev/null 2>"$f.err" &
	_BENCH_PID=$!
	for ((i = 0; i < 200; i++)); do
		[[ -s $f.port ]] && break
		if ! kill -0 "$_BENCH_PID" 2>/dev/null; then
			echo "fake server $label exited: $(cat "$f.err")" >&2
			exit 1
		fi
		sleep 0.05
	done
	[[ -s $f.port ]] || { echo "fake server $label: no port after 10 s" >&2; exit 1; }
}

bench_fake_start() {
	_bench_fake fake BENCH "$@"
	FAKE_PID=$_BENCH_PID
	FAKE_URL=http://127.0.0.1:$(<"$BENCH_TMP/fake.port")
}

BENCH_PIDS=()
bench_fake_as() {
	local name=$1
	shift
	_bench_fake "$name" "$name" "$@"
	BENCH_PIDS+=("$_BENCH_PID")
	printf -v "URL_$name" 'http://127.0.0.1:%s' "$(<"$BENCH_TMP/$name.port")"
}

bench_fake_control() {
	curl -sS --fail -o /dev/null --data-binary '{}' "$FAKE_URL/_reset"
	curl -sS --fail -o /dev/null -H 'Content-Type: application/json' \
		--data-binary "$1" "$FAKE_URL/_control"
}

bench_cleanup() {
	local i p
	for p in ${FAKE_PID:-} "${BENCH_PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
		for ((i = 0; i < 40; i++)); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.05
		done
		kill -KILL "$p" 2>/dev/null || true
	done
	if [[ -n ${BENCH_KEEP:-} ]]; then
		echo "${0##*/}: BENCH_KEEP: the run's files are in $BENCH_TMP" >&2
	elif [[ -n ${BENCH_TMP:-} && -d $BENCH_TMP ]]; then
		rm -rf "$BENCH_TMP"
	fi
	return 0
}

bench_hf_stat() {
	jq -r --argjson i "$2" --arg k "$3" \
		'.results[$i][$k] * 1000 | . * 1000 | round / 1000' "$1"
}

bench_rss() {
	local out=$BENCH_TMP/rss.txt
	/usr/bin/time -v -o "$out" "$@" >/dev/null
	sed -n 's/^[[:space:]]*Maximum resident set size (kbytes): //p' "$out"
}

bench_median() {
	printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 }
		END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# ratio A B -> A/B with 2 decimals
bench_ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
# fmt X -> X with 2 decimals
bench_fmt() { awk -v a="$1" 'BEGIN { printf "%.2f", a }'; }
