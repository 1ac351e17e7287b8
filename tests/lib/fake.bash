# fake.bash - start, drive and read the fake LLM server (tests/fake_ollama.py).
#
# Sourced by bats files. NAME is a shell identifier (GPU0, GPU1, OAI...).
#   fake_start NAME [flags...]  start on 127.0.0.1, port 0; exports NAME_PORT,
#                               NAME_URL (http://127.0.0.1:PORT) and NAME_LOG
#   fake_stop NAME              SIGTERM, then SIGKILL after 2 s
#   fake_stop_all               fake_stop each fake this file started
#   fake_control NAME JSON      merge control keys (faults, latency, answer...)
#   fake_reset NAME             back to the start flags; clears the prefix cache;
#                               later fake_requests/fake_count see only newer requests
#   fake_reset_all              fake_reset each fake running
#   fake_requests NAME [--all]  chat requests since the last reset, one JSON per
#                               line: the "end" log line, or the "start" line of a
#                               request still running after 5 s (--all: every path)
#   fake_count NAME             number of chat requests since the last reset
# State (port, pid, log, stderr) lives in $BATS_FILE_TMPDIR/fake, or in a mktemp
# directory outside bats.

FAKE_PY=${FAKE_PY:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/fake_ollama.py}

_fake_dir() {
	if [[ -z ${FAKE_DIR:-} ]]; then
		if [[ -n ${BATS_FILE_TMPDIR:-} ]]; then
			FAKE_DIR=$BATS_FILE_TMPDIR/fake
		else
			FAKE_DIR=$(mktemp -d "${TMPDIR:-/tmp}/fake.XXXXXX") || return 1
		fi
		export FAKE_DIR
	fi
	mkdir -p "$FAKE_DIR"
}

_fake_url() {
	local v=${1}_URL
	[[ -n ${!v:-} ]] || { echo "fake: $1 is not started" >&2; return 1; }
	printf '%s' "${!v}"
}

fake_start() {
	local name=$1 i pid port
	shift
	_fake_dir || return 1
	local d=$FAKE_DIR pf=$FAKE_DIR/$name.port
	rm -f "$pf"
	python3 "$FAKE_PY" --port 0 --port-file "$pf" --log "$d/$name.log" \
		--name "$name" "$@" </dev/null >"$d/$name.out" 2>"$d/$name.err" 3>&- &
	pid=$!
	echo "$pid" >"$d/$name.pid"
	for ((i = 0; i < 200; i++)); do
		[[ -s $pf ]] && break
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "fake_start $name: server exited: $(cat "$d/$name.err")" >&2
			return 1
		fi
		sleep 0.05
	done
	[[ -s $pf ]] || { echo "fake_start $name: no port after 10 s" >&2; return 1; }
	port=$(<"$pf")
	export "${name}_PORT=$port" "${name}_URL=http://127.0.0.1:$port" \
		"${name}_LOG=$d/$name.log"
}

fake_stop() {
	local pf=${FAKE_DIR:-/nonexistent}/$1.pid pid i
	[[ -f $pf ]] || return 0
	pid=$(<"$pf")
	kill -TERM "$pid" 2>/dev/null
	for ((i = 0; i < 40; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	kill -KILL "$pid" 2>/dev/null
	rm -f "$pf"
	return 0
}

# The names of the fakes started (a pid file each).
_fake_names() {
	local f
	for f in "${FAKE_DIR:-/nonexistent}"/*.pid; do
		[[ -f $f ]] || continue
		f=${f##*/}
		printf '%s\n' "${f%.pid}"
	done
}

fake_stop_all() {
	local n
	for n in $(_fake_names); do fake_stop "$n"; done
}

_fake_post() {
	local url out
	url=$(_fake_url "$1") || return 1
	out=$(curl -sS --fail-with-body -H 'Content-Type: application/json' \
		--data-binary "$3" "$url$2") || { echo "fake $1 $2: $out" >&2; return 1; }
}

fake_control() { _fake_post "$1" /_control "$2"; }
fake_reset() { _fake_post "$1" /_reset '{}'; }

fake_reset_all() {
	local n
	for n in $(_fake_names); do fake_reset "$n" || return 1; done
}

# jq over the log since the last reset; $all: every path, not only chat.
# shellcheck disable=SC2016
_fake_since_reset='
	([to_entries[] | select(.value.event == "reset") | .key] | max) as $r
	| (if $r == null then . else .[$r + 1:] end)
	| map(select(.seq != null and .path != null
		and ($all or .path == "/api/chat" or .path == "/v1/chat/completions")))'

fake_requests() {
	local v=${1}_LOG all=false i
	[[ ${2:-} == --all ]] && all=true
	[[ -f ${!v:-} ]] || { echo "fake: $1 has no log" >&2; return 1; }
	for ((i = 0; i < 100; i++)); do	# wait for running requests to log their end
		jq -e -s --argjson all "$all" "$_fake_since_reset"'
			| (map(select(.event == "start") | .seq) - map(select(.event == "end") | .seq))
			| length == 0' "${!v}" >/dev/null && break
		sleep 0.05
	done
	jq -c -s --argjson all "$all" "$_fake_since_reset"'
		| group_by(.seq) | map((map(select(.event == "end")) + .)[0]) | .[]' "${!v}"
}

fake_count() {
	local out
	out=$(fake_requests "$1") || return 1
	if [[ -z $out ]]; then echo 0; else wc -l <<<"$out"; fi
}
