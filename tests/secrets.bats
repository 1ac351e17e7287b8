#!/usr/bin/env bats
# Secrets stay secret (issue 12, point 4): a URL's password, the API keys
# and llm-serve's token never show in a log line, an error, --print-config
# or --explain of any program.  Each test runs programs with the secrets
# set, keeps every stdout and stderr in $BATS_TEST_TMPDIR, and greps them
# all; a masked URL must show where the URL was printed.

load lib/common
load lib/serve

B=$CORPUS/swe-agent__warmup.json	# ~4800 tokens: summarize
C=$CORPUS/swe-agent__pydicom__pydicom-1458.json		# ~15000: map-reduce

PW=pw-Xq7Zr2Lf
KEY0=sk-gpu0-Hk4Lm9Pw
KEY1=sk-gpu1-Tb8Wn3Qs
TOKEN=tok-serve-Jd5Vc1Ry

setup_file() {
	fake_start GPU0
	fake_start GPU1
	export XDG_CACHE_HOME=$BATS_FILE_TMPDIR/cache
}

teardown_file() {
	fake_stop_all
}

setup() {
	fake_reset_all
	P0=http://alice:$PW@127.0.0.1:$GPU0_PORT
	P1=http://bob:$PW@127.0.0.1:$GPU1_PORT
	DEAD=http://carol:$PW@127.0.0.1:1
	export LLM_GPU0_URL=$P0 LLM_GPU1_URL=$P1
	export LLM_GPU0_API_KEY=$KEY0 LLM_GPU1_API_KEY=$KEY1 LLM_SERVE_TOKEN=$TOKEN
	chat >"$BATS_TEST_TMPDIR/small.json"
}

teardown() {
	if [[ -n ${SERVE_PID:-} ]]; then
		serve_stop || true
	fi
}

# keep NAME INPUT CMD...: run CMD on INPUT, whatever its status, its
# stdout and stderr kept as NAME.out and NAME.err.
keep() {
	local name=$1 in=$2
	shift 2
	"$@" <"$in" >"$BATS_TEST_TMPDIR/$name.out" \
		2>"$BATS_TEST_TMPDIR/$name.err" || true
}

# shows NAME.out|NAME.err TEXT: the file shows TEXT (fixed string).
shows() {
	grep -F -q -- "$2" "$BATS_TEST_TMPDIR/$1" ||
		fail "$1 does not show '$2': $(head -c 600 "$BATS_TEST_TMPDIR/$1")"
}

# No kept file shows a secret.
no_secrets() {
	local f s
	for f in "$BATS_TEST_TMPDIR"/*.out "$BATS_TEST_TMPDIR"/*.err; do
		[[ -e $f ]] || continue
		for s in "$PW" "$KEY0" "$KEY1" "$TOKEN"; do
			if grep -F -q -- "$s" "$f"; then
				fail "${f##*/} shows a secret: $(grep -F -- "$s" "$f" | head -n 2)"
			fi
		done
	done
}

@test "llm-generate: -v, --log-json, a closed port, HTTP errors and a config error mask them" {
	local S=$BATS_TEST_TMPDIR/small.json cfg=$BATS_TEST_TMPDIR/config
	keep v "$S" llm-generate -v
	shows v.err "url=http://alice:***@127.0.0.1:$GPU0_PORT/api/chat"
	keep json "$S" llm-generate --json --log-json
	shows json.err '"url":"http://alice:***@127.0.0.1:'
	keep dead "$S" llm-generate -v --url "$DEAD"
	shows dead.err "llm-generate: GPU0 http://carol:***@127.0.0.1:1/api/chat: "
	keep failover "$S" llm-generate --url "$DEAD,$P0"
	shows failover.err "trying http://alice:***@127.0.0.1:$GPU0_PORT"
	# A server that echoes the key it was given, before and in the stream.
	fake_control GPU0 "{\"status\": 401, \"error\": \"invalid api key $KEY0\"}"
	keep http "$S" llm-generate -v
	shows http.err 'HTTP 401: invalid api key ***'
	fake_reset GPU0
	fake_control GPU0 "{\"error_after\": 2, \"error\": \"key $KEY0 revoked\"}"
	keep mid "$S" llm-generate --json --log-json
	shows mid.err 'error in stream: key *** revoked'
	keep badport "$S" env LLM_GPU0_URL="http://alice:$PW@127.0.0.1:x" llm-generate
	shows badport.err "bad value 'http://alice:***@127.0.0.1:x'"
	printf 'gpu0_url = http://%s@127.0.0.1:x\n' "$PW" >"$cfg"
	keep file "$S" env -u LLM_GPU0_URL LLM_ROUTE_CONFIG="$cfg" llm-generate
	shows file.err "$cfg:1: bad value 'http://***@127.0.0.1:x'"
	no_secrets
}

@test "llm-summarize and llm-mapreduce: -v, --log-json, a dead helper, an HTTP error mask them" {
	keep sum "$B" llm-summarize -v
	shows sum.err "url=http://bob:***@127.0.0.1:$GPU1_PORT/api/chat"
	keep sumjson "$B" llm-summarize --log-json
	shows sumjson.err '"url":"http://bob:***@'
	keep mr "$C" llm-mapreduce -v --no-cache
	shows mr.err "url=http://bob:***@127.0.0.1:$GPU1_PORT/api/chat"
	keep mrdry "$C" llm-mapreduce --dry-run -v
	keep dead "$B" llm-summarize --url "$DEAD"
	shows dead.err "http://carol:***@127.0.0.1:1"
	keep mrdead "$C" llm-mapreduce --no-cache --url "$DEAD" --on-helper-failure=fail
	shows mrdead.err "http://carol:***@127.0.0.1:1"
	fake_control GPU1 "{\"status\": 500, \"error\": \"bad key $KEY1\"}"
	keep http "$B" llm-summarize -v --on-helper-failure=fail
	shows http.err 'HTTP 500: bad key ***'
	no_secrets
}

@test "llm-route: -v, --log-json, --explain, --dry-run, --print-config and errors mask them" {
	local S=$BATS_TEST_TMPDIR/small.json
	keep v "$B" llm-route -v --no-cache
	shows v.err "url=http://alice:***@127.0.0.1:$GPU0_PORT/api/chat"
	shows v.err "url=http://bob:***@127.0.0.1:$GPU1_PORT/api/chat"
	keep json "$B" llm-route --log-json --json --no-cache
	keep explain "$B" llm-route --explain -v
	shows explain.out "\"url\": \"http://alice:***@127.0.0.1:$GPU0_PORT\""
	shows explain.out "\"url\": \"http://bob:***@127.0.0.1:$GPU1_PORT\""
	keep dry "$S" llm-route --dry-run --log-json
	keep config "$S" llm-route --print-config --gpu1-url "$DEAD"
	shows config.out "gpu0_url = http://alice:***@127.0.0.1:$GPU0_PORT"
	shows config.out "gpu1_url = http://carol:***@127.0.0.1:1"
	keep helperdead "$B" llm-route -v --no-cache --gpu1-url "$DEAD"
	shows helperdead.err "http://carol:***@127.0.0.1:1"
	keep dead "$S" llm-route --gpu0-url "$DEAD"
	shows dead.err "llm-route: GPU0 http://carol:***@127.0.0.1:1/api/show: "
	fake_control GPU0 "{\"status\": 401, \"error\": \"invalid api key $KEY0\"}"
	keep http "$S" llm-route -v
	shows http.err 'HTTP 401: invalid api key ***'
	no_secrets
}

@test "llm-estimate: -v and a config error mask them" {
	keep v "$B" llm-estimate -v
	keep bad "$B" env LLM_GPU1_URL="http://bob:$PW@127.0.0.1:x" llm-estimate
	shows bad.err "bad value 'http://bob:***@127.0.0.1:x'"
	no_secrets
}

@test "llm-serve: --print-config, its log, a request through it, errors and /healthz mask them" {
	local d=$BATS_TEST_TMPDIR S=$BATS_TEST_TMPDIR/small.json
	keep config "$S" llm-serve --print-config
	shows config.out "gpu0_url = http://alice:***@127.0.0.1:$GPU0_PORT"
	GPU0_URL=$P0 GPU1_URL=$P1 serve_start -v
	curl -sS -H "Authorization: Bearer $TOKEN" --data-binary @"$S" \
		"$SERVE_URL/api/chat" >"$d/chat.out" 2>"$d/chat.err"
	shows chat.out '"done":true'
	curl -sS -H "Authorization: Bearer $TOKEN" --data-binary @"$B" \
		"$SERVE_URL/api/chat" >"$d/chatb.out" 2>"$d/chatb.err"
	curl -sS -H "Authorization: Bearer wrong-token" --data-binary @"$S" \
		"$SERVE_URL/api/chat" >"$d/wrong.out" 2>"$d/wrong.err"
	curl -sS "$SERVE_URL/healthz" >"$d/health.out" 2>"$d/health.err"
	shows health.out "http://alice:***@127.0.0.1:$GPU0_PORT"
	fake_control GPU0 "{\"status\": 401, \"error\": \"invalid api key $KEY0\"}"
	curl -sS -H "Authorization: Bearer $TOKEN" --data-binary @"$S" \
		"$SERVE_URL/api/chat" >"$d/http.out" 2>"$d/http.err"
	shows http.out 'invalid api key ***'
	curl -sS "$SERVE_URL/healthz" >"$d/health2.out" 2>"$d/health2.err"
	fake_reset GPU0
	fake_control GPU0 "{\"error_after\": 2, \"error\": \"key $KEY0 revoked\"}"
	curl -sS -H "Authorization: Bearer $TOKEN" --data-binary @"$S" \
		"$SERVE_URL/api/chat" >"$d/mid.out" 2>"$d/mid.err"
	shows mid.out 'key *** revoked'
	serve_stop || true
	cp "$SERVE_ERR" "$d/serve.err"
	shows serve.err "url=http://alice:***@127.0.0.1:$GPU0_PORT/api/chat"
	no_secrets
}
