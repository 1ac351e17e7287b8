# serve.bash - start and stop llm-serve for the suites.
#
#   serve_start [flags...]  start llm-serve on 127.0.0.1, port 0, in front of
#                           $GPU0_URL and $GPU1_URL (fake.bash); exports
#                           SERVE_URL, SERVE_PID and SERVE_ERR (its stderr)
#   serve_stop              SIGTERM, and wait for it (SIGKILL after 15 s);
#                           returns its exit status
#   wait_for CMD...         until CMD succeeds, 10 s at most
#   metric NAME             the value of /metrics' NAME (a full name with
#                           labels, or a bare name)
#   metric_at_least NAME N  is it at least N (each try asks again, unlike
#                           wait_for test "$(metric ...)", taken once)?
# State lives in $BATS_FILE_TMPDIR/serve (or a mktemp directory outside bats).

serve_start() {
	local d i
	d=${BATS_FILE_TMPDIR:-$(mktemp -d "${TMPDIR:-/tmp}/serve.XXXXXX")}/serve
	mkdir -p "$d"
	SERVE_ERR=$d/stderr
	: >"$SERVE_ERR"
	llm-serve --listen 127.0.0.1:0 ${GPU0_URL:+--gpu0-url "$GPU0_URL"} \
		${GPU1_URL:+--gpu1-url "$GPU1_URL"} "$@" </dev/null \
		>"$d/stdout" 2>"$SERVE_ERR" 3>&- &
	SERVE_PID=$!
	for ((i = 0; i < 300; i++)); do
		SERVE_URL=$(sed -n 's/^llm-serve: listening on \(http:[^ ]*\)$/\1/p' \
			"$SERVE_ERR" | head -n 1)
		[[ -n $SERVE_URL ]] && break
		if ! kill -0 "$SERVE_PID" 2>/dev/null; then
			echo "serve_start: llm-serve exited: $(cat "$SERVE_ERR")" >&2
			return 1
		fi
		sleep 0.05
	done
	[[ -n $SERVE_URL ]] || { echo "serve_start: no address after 15 s" >&2; return 1; }
	export SERVE_URL SERVE_PID SERVE_ERR
}

serve_stop() {
	local i st
	[[ -n ${SERVE_PID:-} ]] || return 0
	kill -TERM "$SERVE_PID" 2>/dev/null || true
	for ((i = 0; i < 300; i++)); do
		kill -0 "$SERVE_PID" 2>/dev/null || break
		sleep 0.05
	done
	kill -KILL "$SERVE_PID" 2>/dev/null || true
	st=0
	wait "$SERVE_PID" || st=$?
	SERVE_PID=
	return $st
}

wait_for() {
	local i
	for ((i = 0; i < 200; i++)); do
		"$@" && return 0
		sleep 0.05
	done
	return 1
}

metric() {
	curl -sS "$SERVE_URL/metrics" | awk -v m="$1" '$1 == m { print $2 }'
}

metric_at_least() {
	local v
	v=$(metric "$1") || return 1
	v=${v:-0}
	(( ${v%.*} >= $2 ))
}
