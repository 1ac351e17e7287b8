#!/usr/bin/env bats
# llm-serve with curl, in front of the fake backends: every endpoint, the
# stream shapes of SPEC 8 line by line, each strategy byte for byte what
# llm-route prints, the early first chunk and keep-alives, errors before
# and after the start, disconnects, limits, the token, draining, reloading
# and background condensing.

load lib/common
load lib/serve

A=$CORPUS/swe-agent__function_calling_simple.json	# ~1900 tokens: direct
B=$CORPUS/swe-agent__warmup.json			# ~4800: summarize
C=$CORPUS/swe-agent__pydicom__pydicom-1458.json		# ~15000: map-reduce

setup_file() {
	fake_start GPU0
	fake_start GPU1
	export XDG_CACHE_HOME=$BATS_FILE_TMPDIR/cache
	export XDG_CONFIG_HOME=$BATS_FILE_TMPDIR/config
	serve_start
	export MAIN_URL=$SERVE_URL MAIN_PID=$SERVE_PID MAIN_ERR=$SERVE_ERR
}

teardown_file() {
	SERVE_PID=$MAIN_PID serve_stop
	fake_stop GPU0
	fake_stop GPU1
}

setup() {
	fake_reset_all
	SERVE_URL=$MAIN_URL
	export LLM_GPU0_URL=$GPU0_URL LLM_GPU1_URL=$GPU1_URL
}

teardown() {
	# A server of the test's own (not the file's).
	if [[ -n ${SERVE_PID:-} && $SERVE_PID != "$MAIN_PID" ]]; then
		serve_stop || true
	fi
}

# post PATH [curl args...]: the body from stdin.
post() {
	local path=$1
	shift
	curl -sS -N -H 'Content-Type: application/json' --data-binary @- \
		"$@" "$SERVE_URL$path"
}

# post_bg OUT PATH [curl args...]: post in the background, the body from
# stdin, the reply to OUT; $BG is curl's own pid (so that killing it is a
# client leaving).
post_bg() {
	local out=$1 path=$2
	shift 2
	curl -sS -N -H 'Content-Type: application/json' --data-binary @- \
		"$@" "$SERVE_URL$path" <&0 >"$out" &
	BG=$!
}

# Wait until file $1 has at least $2 lines (10 s at most).
wait_lines() {
	local i
	for ((i = 0; i < 200; i++)); do
		(($(wc -l <"$1") >= $2)) && return 0
		sleep 0.05
	done
	return 1
}

# Has fake $1 logged event $2 since its last reset?
logged() {
	local v=${1}_LOG
	jq -e -s --arg e "$2" '([to_entries[] | select(.value.event == "reset")
		| .key] | max) as $r | .[($r // -1) + 1:] | any(.event == $e)' \
		"${!v}" >/dev/null
}

# Did fake $1's one request since the reset end with its client gone?
cancelled() {
	fake_requests "$1" | jq -e -s 'length == 1 and .[0].event == "end"
		and .[0].client_gone and (.[0].completed | not)' >/dev/null
}

# The SPEC 8 NDJSON stream shape, line by line, on stdin.
check_ndjson() {
	jq -e -s '
		length >= 2
		and all(.[]; type == "object" and (.model | type) == "string"
			and (.created_at | type) == "string"
			and (.done | type) == "boolean"
			and .message.role == "assistant"
			and (.message.content | type) == "string")
		and (map(select(.done)) | length) == 1
		and .[-1].done
		and (.[-1] | has("done_reason") and has("prompt_eval_count")
			and has("eval_count") and has("total_duration")
			and has("prompt_eval_duration") and has("eval_duration"))
		and .[0].message.content == "" and (.[0].done | not)' >/dev/null
}

@test "/api/chat streams NDJSON of SPEC 8's shape, byte for byte llm-route's after the first chunk" {
	post /api/chat -D "$BATS_TEST_TMPDIR/h" <"$A" >"$BATS_TEST_TMPDIR/out"
	grep -qi '^content-type: application/x-ndjson' "$BATS_TEST_TMPDIR/h"
	grep -qi '^x-accel-buffering: no' "$BATS_TEST_TMPDIR/h"
	grep -q '^HTTP/1.1 200' "$BATS_TEST_TMPDIR/h"
	check_ndjson <"$BATS_TEST_TMPDIR/out" || fail "$(cat "$BATS_TEST_TMPDIR/out")"
	# Every line ends in a newline, the last one too.
	assert_equal "$(tail -c 1 "$BATS_TEST_TMPDIR/out" | od -An -c | tr -d ' ')" '\n'
	fake_reset GPU0	# the same prompt cache for both
	assert_equal "$(tail -n +2 "$BATS_TEST_TMPDIR/out")" "$(llm-route --json <"$A")"
}

@test "each strategy answers what llm-route prints for the same chat" {
	for f in "$B" "$C"; do
		fake_reset GPU0
		out=$(post /api/chat <"$f" | tail -n +2)
		[[ -n $out ]] || fail "no answer for $f"
		fake_reset GPU0
		assert_equal "$out" "$(llm-route --json <"$f")"
	done
	# The summaries were asked of GPU1 (and then cached).
	(($(fake_count GPU1) > 0))
}

@test "stream:false gets one object with the whole answer" {
	run --separate-stderr bash -c "jq -c '.stream = false' '$A' | curl -sS -H 'Content-Type: application/json' --data-binary @- '$SERVE_URL/api/chat'"
	assert_success
	assert_equal "${#lines[@]}" 1
	fake_reset GPU0
	want=$(jq -c '.stream = false' "$A" | llm-route --json --no-stream | jq -c 'del(.created_at)')
	assert_equal "$(jq -c 'del(.created_at)' <<<"$output")" "$want"
	jq -e '.done and .message.role == "assistant" and (.message.content | startswith("fake answer"))' <<<"$output" >/dev/null
}

@test "/v1/chat/completions streams SSE: role first, finish_reason apart, usage, [DONE]" {
	jq -c '.stream = true | .stream_options = {include_usage: true}' "$A" |
		post /v1/chat/completions -D "$BATS_TEST_TMPDIR/h" >"$BATS_TEST_TMPDIR/out"
	grep -qi '^content-type: text/event-stream' "$BATS_TEST_TMPDIR/h"
	# Events are "data: JSON" lines, each followed by a blank line.
	assert_equal "$(grep -vc '^data: \|^$' "$BATS_TEST_TMPDIR/out")" 0
	assert_equal "$(tail -n 2 "$BATS_TEST_TMPDIR/out" | head -n 1)" "data: [DONE]"
	sed -n 's/^data: \({.*\)/\1/p' "$BATS_TEST_TMPDIR/out" >"$BATS_TEST_TMPDIR/ev"
	jq -e -s '
		.[0].choices[0].delta.role == "assistant"
		and all(.[]; .object == "chat.completion.chunk" and (.id | startswith("chatcmpl-")))
		and (.[-2].choices[0] | .finish_reason == "stop" and .delta == {})
		and all(.[:-2][]; .choices[0].finish_reason == null)
		and .[-1].choices == [] and (.[-1].usage | .prompt_tokens > 0 and .completion_tokens > 0
			and .total_tokens == .prompt_tokens + .completion_tokens)' \
		"$BATS_TEST_TMPDIR/ev" >/dev/null || fail "$(cat "$BATS_TEST_TMPDIR/out")"
	text=$(jq -j '.choices[0].delta.content // empty' "$BATS_TEST_TMPDIR/ev")
	assert_equal "$text" "$(llm-route <"$A")"
}

@test "/v1/chat/completions without stream answers one chat.completion" {
	run --separate-stderr bash -c "jq -c 'del(.stream)' '$A' | curl -sS --data-binary @- '$SERVE_URL/v1/chat/completions'"
	assert_success
	jq -e '.object == "chat.completion" and .choices[0].message.role == "assistant"
		and .choices[0].finish_reason == "stop" and .usage.total_tokens > 0' <<<"$output" >/dev/null
	assert_equal "$(jq -r '.choices[0].message.content' <<<"$output")" "$(llm-route <"$A")"
}

@test "tool calls keep object arguments on /api/chat and become strings on /v1" {
	fake_control GPU0 '{"tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]}'
	out=$(chat 'weather in Paris' | post /api/chat)
	jq -e -s 'map(select(.message.tool_calls)) | length == 1 and .[0].message.tool_calls[0].function.arguments == {city: "Paris"}' <<<"$out" >/dev/null || fail "$out"
	out=$(chat 'weather in Paris' | jq -c '.stream = false' | post /api/chat)
	jq -e '.message.tool_calls[0].function.arguments == {city: "Paris"}' <<<"$out" >/dev/null || fail "$out"
	out=$(chat 'weather in Paris' | post /v1/chat/completions)
	jq -e '.choices[0].finish_reason == "tool_calls" and .choices[0].message.tool_calls[0].function.arguments == "{\"city\":\"Paris\"}"
		and .choices[0].message.tool_calls[0].type == "function"' <<<"$out" >/dev/null || fail "$out"
	# llm-route --json --no-stream keeps them too.
	out=$(chat 'weather in Paris' | llm-route --json --no-stream)
	jq -e '.message.tool_calls[0].function.arguments == {city: "Paris"}' <<<"$out" >/dev/null || fail "$out"
}

@test "passed through to GPU0: tags, show (model or name), ps, version, /v1/models, /" {
	assert_equal "$(curl -sS "$SERVE_URL/api/tags")" "$(curl -sS "$GPU0_URL/api/tags")"
	assert_equal "$(curl -sS -d '{"model":"qwen3:1.7b"}' "$SERVE_URL/api/show" | jq -r '.model_info["qwen2.context_length"]')" 32768
	assert_equal "$(curl -sS -d '{"name":"qwen3:1.7b"}' "$SERVE_URL/api/show" | jq -r .details.family)" qwen2
	assert_equal "$(curl -sS -o /dev/null -w '%{http_code}' -d '{}' "$SERVE_URL/api/show")" 400
	assert_equal "$(curl -sS "$SERVE_URL/api/ps")" "$(curl -sS "$GPU0_URL/api/ps")"
	assert_equal "$(curl -sS "$SERVE_URL/api/version")" '{"version":"0.12.0"}'
	assert_equal "$(curl -sS -I -o /dev/null -w '%{http_code}' "$SERVE_URL/api/version")" 200
	assert_equal "$(curl -sS "$SERVE_URL/v1/models" | jq -r '.data[0].id')" qwen2.5-coder:7b
	assert_equal "$(curl -sS "$SERVE_URL/")" "Ollama is running"
	assert_equal "$(curl -sS -I -o /dev/null -w '%{http_code}' "$SERVE_URL/")" 200
	# What GPU0 was asked.
	run fake_requests GPU0 --all
	assert_equal "$(jq -r '.path' <<<"$output" | sort | paste -sd ' ')" "/ / /api/ps /api/ps /api/show /api/show /api/show /api/tags /api/tags /api/version /api/version /v1/models"
}

@test "its own: /healthz (200, or 503 saying why), /metrics, 404, 405" {
	run curl -sS -w ' %{http_code}' "$SERVE_URL/healthz"
	assert_output --regexp '^\{"status":"ok",.*\} 200$'
	chat | post /api/chat >/dev/null
	run curl -sS "$SERVE_URL/metrics"
	for m in llm_serve_requests_total llm_serve_first_byte_seconds_bucket \
	    llm_serve_first_token_seconds_count llm_serve_answer_seconds_sum \
	    llm_serve_helper_seconds_count llm_serve_cache_hits_total \
	    llm_serve_cache_misses_total llm_serve_prompt_tokens_saved_total \
	    llm_serve_streams_in_flight llm_serve_client_disconnects_total \
	    llm_serve_prefetch_hits_total; do
		assert_output --partial "$m"
	done
	assert_output --regexp 'llm_serve_requests_total\{endpoint="api_chat",strategy="direct",status="200"\} [1-9]'
	assert_equal "$(curl -sS -o /dev/null -w '%{http_code}' "$SERVE_URL/nope")" 404
	assert_equal "$(curl -sS -o /dev/null -w '%{http_code}' "$SERVE_URL/api/chat")" 405
	curl -sS -D - -o /dev/null "$SERVE_URL/api/version" -X DELETE | grep -qi '^allow: GET, HEAD'
	curl -sS -D - -o /dev/null "$SERVE_URL/api/tags" -X POST -d x | grep -qi '^allow: GET'

	serve_start --gpu0-url http://127.0.0.1:1
	run curl -sS -w ' %{http_code}' "$SERVE_URL/healthz"
	assert_output --regexp '^\{"error":"GPU0 http://127.0.0.1:1/api/version: cannot connect: .*\} 503$'
}

@test "the headers and an empty first chunk leave before any condensing, then keep-alives" {
	serve_start --keepalive 200ms
	gate=$BATS_TEST_TMPDIR/gate
	fake_control GPU1 "{\"gate\": \"$gate\"}"
	post_bg "$BATS_TEST_TMPDIR/out" /api/chat <"$B"
	pid=$BG
	wait_lines "$BATS_TEST_TMPDIR/out" 1
	# GPU1 holds the summary; GPU0 was not asked yet; the client has a line.
	wait_for logged GPU1 gate_wait
	assert_equal "$(fake_count GPU0)" 0
	jq -e '.message.content == "" and .done == false' <(head -n 1 "$BATS_TEST_TMPDIR/out") >/dev/null
	wait_lines "$BATS_TEST_TMPDIR/out" 3	# keep-alive chunks meanwhile
	assert_equal "$(fake_count GPU0)" 0
	touch "$gate"
	wait "$pid"
	check_ndjson <"$BATS_TEST_TMPDIR/out"
	jq -e -s '(map(select(.message.content == "" and (.done | not))) | length) >= 3' "$BATS_TEST_TMPDIR/out" >/dev/null
	# Less the empty chunks, what llm-route prints.
	fake_reset GPU0
	assert_equal "$(jq -c 'select(.message.content != "" or .done)' "$BATS_TEST_TMPDIR/out")" \
		"$(llm-route --json <"$B" | jq -c 'select(.message.content != "" or .done)')"
}

@test "SSE keep-alives are comments" {
	serve_start --keepalive 200ms
	gate=$BATS_TEST_TMPDIR/gate
	fake_control GPU1 "{\"gate\": \"$gate\"}"
	post_bg "$BATS_TEST_TMPDIR/out" /v1/chat/completions < <(jq -c '.stream = true' "$B")
	pid=$BG
	wait_for grep -q '^: keep-alive' "$BATS_TEST_TMPDIR/out"
	touch "$gate"
	wait "$pid"
	assert_equal "$(tail -n 2 "$BATS_TEST_TMPDIR/out" | head -n 1)" "data: [DONE]"
}

@test "errors before the start: the status and a JSON error" {
	run curl -sS -w ' %{http_code}' -d '{"messages": 3}' "$SERVE_URL/api/chat"
	assert_output --regexp '^\{"error":"bad input: \\"messages\\": .*"\} 400$'
	run curl -sS -w ' %{http_code}' -d 'not json' "$SERVE_URL/api/chat"
	assert_output --regexp '^\{"error":"bad input: .*"\} 400$'
	run curl -sS -w ' %{http_code}' -d '{"messages": 3}' "$SERVE_URL/v1/chat/completions"
	assert_output --regexp '^\{"error":\{"message":"bad input: .*","type":"invalid_request_error".*\}\} 400$'
	# A chat that cannot fit even condensed: 400 "context length".
	run bash -c "jq -c '.options = {num_ctx: 600}' '$B' | curl -sS -w ' %{http_code}' --data-binary @- '$SERVE_URL/api/chat'"
	assert_output --regexp '^\{"error":"context length exceeded: the chat needs about [0-9]+ tokens .*600 tokens.*"\} 400$'
	assert_equal "$(fake_count GPU1)" 0
	run bash -c "jq -c '.options = {num_ctx: 600}' '$B' | curl -sS -w ' %{http_code}' --data-binary @- '$SERVE_URL/v1/chat/completions'"
	assert_output --regexp '"code":"context_length_exceeded".* 400$'
	# The upstream's status, when not streaming.
	fake_control GPU0 '{"status": 429, "count": 1}'
	run bash -c "chat | jq -c '.stream = false' | curl -sS -w ' %{http_code}' --data-binary @- '$SERVE_URL/api/chat'"
	assert_output --regexp '^\{"error":"GPU0 .*HTTP 429.*"\} 429$'
	serve_start --gpu0-url http://127.0.0.1:1
	run bash -c "chat | jq -c '.stream = false' | curl -sS -w ' %{http_code}' --data-binary @- '$SERVE_URL/api/chat'"
	assert_output --regexp '^\{"error":"GPU0 http://127.0.0.1:1/api/show: cannot connect: .*"\} 502$'
}

@test "errors after the start: one error line (SSE: an error event) and the end, no done" {
	fake_control GPU0 '{"error_after": 2, "count": 2}'
	chat 'one two three four five six' | post /api/chat >"$BATS_TEST_TMPDIR/out"
	assert_equal "$(tail -n 1 "$BATS_TEST_TMPDIR/out" | jq -r 'keys | join(",")')" error
	[[ $(tail -n 1 "$BATS_TEST_TMPDIR/out" | jq -r .error) == *"error in stream"* ]]
	assert_equal "$(jq -s 'map(select(.done == true)) | length' "$BATS_TEST_TMPDIR/out")" 0
	chat 'one two three four five six' | jq -c '.stream = true' | post /v1/chat/completions >"$BATS_TEST_TMPDIR/out"
	tail -n 2 "$BATS_TEST_TMPDIR/out" | head -n 1 | sed 's/^data: //' | jq -e '.error.message | test("error in stream")' >/dev/null
	run grep -c 'DONE\|finish_reason":"stop' "$BATS_TEST_TMPDIR/out"
	assert_output 0
	# GPU0 unreachable once streaming (its window known, so nothing was
	# asked of it before): 200, the first chunk, then the error.
	serve_start --gpu0-url http://127.0.0.1:1 --num-ctx 32768
	chat | post /api/chat >"$BATS_TEST_TMPDIR/out"
	assert_equal "$(wc -l <"$BATS_TEST_TMPDIR/out")" 2
	[[ $(tail -n 1 "$BATS_TEST_TMPDIR/out" | jq -r .error) == "GPU0 http://127.0.0.1:1/api/chat: cannot connect:"* ]]
}

@test "a worker that dies mid-answer: an error line, never a clean end" {
	fake_control GPU0 '{"answer_words": 400, "decode_tps": 20}'
	post_bg "$BATS_TEST_TMPDIR/out" /api/chat < <(chat)
	pid=$BG
	wait_lines "$BATS_TEST_TMPDIR/out" 3
	kill -KILL "$(pgrep -P "$MAIN_PID")"
	wait "$pid"
	assert_equal "$(tail -n 1 "$BATS_TEST_TMPDIR/out" | jq -r .error)" "llm-serve: the request's worker ended without finishing the answer"
	assert_equal "$(jq -s 'map(select(.done == true)) | length' "$BATS_TEST_TMPDIR/out")" 0
	# A body passed through and cut: the connection is cut too (curl: 18).
	fake_control GPU0 '{"first_byte_delay": 30}'
	curl -sS -d '{"model": "m", "messages": []}' "$SERVE_URL/api/chat" >"$BATS_TEST_TMPDIR/out" 2>&1 &
	pid=$!
	wait_for logged GPU0 start
	kill -KILL "$(pgrep -P "$MAIN_PID")"
	st=0
	wait "$pid" || st=$?
	assert_equal "$(cat "$BATS_TEST_TMPDIR/out")" '{"error":"llm-serve: the request'"'"'s worker ended without finishing the answer"}'
}

@test "requests passed through keep GPU0's first-byte timeout" {
	serve_start --set gpu0_first_byte_timeout=500ms
	fake_control GPU0 '{"first_byte_delay": 5}'
	run curl -sS -w ' %{http_code}' -d '{"model": "m", "messages": []}' "$SERVE_URL/api/chat"
	assert_output --regexp '^\{"error":"GPU0 http://127.0.0.1:[0-9]+/api/chat: timed out \(first byte, after [0-9.]+ s\)"\} 504$'
}

@test "a client's odd model name sets no other model's num_ctx" {
	serve_start
	jq -c '.model = "qwen2.5-coder:7b x" | .options = {num_ctx: 4096}' "$A" | post /api/chat >/dev/null
	jq -c '.options = {num_ctx: 16384}' "$A" | post /api/chat >/dev/null
	assert_equal "$(fake_requests GPU0 | jq -r '.body.options.num_ctx' | paste -sd ' ')" "4096 16384"
}

@test "a client that disconnects cancels GPU0's answer" {
	fake_control GPU0 '{"answer_words": 400, "decode_tps": 20}'
	post_bg "$BATS_TEST_TMPDIR/out" /api/chat < <(chat)
	pid=$BG
	wait_lines "$BATS_TEST_TMPDIR/out" 3
	kill "$pid"
	wait "$pid" || true
	wait_for cancelled GPU0
	wait_for metric_at_least llm_serve_client_disconnects_total 1
}

@test "a client that disconnects cancels GPU1's summary too" {
	fake_control GPU1 '{"first_byte_delay": 40}'
	post_bg "$BATS_TEST_TMPDIR/out" /api/chat <"$B"
	pid=$BG
	wait_lines "$BATS_TEST_TMPDIR/out" 1
	wait_for logged GPU1 start
	kill "$pid"
	wait "$pid" || true
	wait_for cancelled GPU1
	assert_equal "$(fake_count GPU0)" 0
}

@test "limits: body size (413), bearer token (401), streams at once (503)" {
	serve_start --max-body 1K
	run curl -sS -w ' %{http_code}' --data-binary @"$A" "$SERVE_URL/api/chat"
	assert_output --regexp '^\{"error":"request body .*over the limit.*\(--max-body\)"\} 413$'
	# Without a length: read to the end, then refused all the same.
	run curl -sS -w ' %{http_code}' -H 'Transfer-Encoding: chunked' --data-binary @"$A" "$SERVE_URL/api/chat"
	assert_output --regexp '^\{"error":"request body .*over the limit.*\(--max-body\)"\} 413$'
	serve_stop
	printf 'sekrit\n' >"$BATS_TEST_TMPDIR/token"
	serve_start --token-file "$BATS_TEST_TMPDIR/token" --max-streams 1
	run bash -c "chat | curl -sS -w ' %{http_code}' --data-binary @- '$SERVE_URL/api/chat'"
	assert_output --regexp '^\{"error":"unauthorized: .*"\} 401$'
	run bash -c "chat | curl -sS -w ' %{http_code}' -H 'Authorization: Bearer wrong' --data-binary @- '$SERVE_URL/api/chat'"
	assert_output --regexp ' 401$'
	curl -sS -D - -o /dev/null "$SERVE_URL/api/tags" | grep -qi '^www-authenticate: Bearer'
	# / and /healthz need no token.
	assert_equal "$(curl -sS "$SERVE_URL/")" "Ollama is running"
	# One stream in flight (held by GPU0's gate): the next gets 503.
	gate=$BATS_TEST_TMPDIR/gate
	fake_control GPU0 "{\"gate\": \"$gate\"}"
	post_bg "$BATS_TEST_TMPDIR/out" /api/chat -H 'Authorization: Bearer sekrit' < <(chat)
	pid=$BG
	wait_for logged GPU0 gate_wait
	run bash -c "chat | curl -sS -w ' %{http_code}' -H 'Authorization: Bearer sekrit' --data-binary @- '$SERVE_URL/api/chat'"
	assert_output --regexp '^\{"error":"too many requests at once \(1, --max-streams\); try again"\} 503$'
	touch "$gate"
	wait "$pid"
	check_ndjson <"$BATS_TEST_TMPDIR/out"
	# The token also from the environment, never argv.
	serve_stop
	LLM_SERVE_TOKEN=envtoken serve_start
	assert_equal "$(chat | post /api/chat -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer envtoken')" 200
	assert_equal "$(chat | post /api/chat -o /dev/null -w '%{http_code}')" 401
}

@test "streams do not wait for each other" {
	gate=$BATS_TEST_TMPDIR/gate
	fake_control GPU0 "{\"gate\": \"$gate\", \"count\": 1}"
	post_bg "$BATS_TEST_TMPDIR/held" /api/chat < <(chat 'held one')
	pid=$BG
	wait_for logged GPU0 gate_wait
	out=$(chat 'free one' | post /api/chat | tail -n +2 | jq -j .message.content)
	[[ $out == "fake answer from qwen2.5-coder:7b: free one"* ]] || fail "$out"
	touch "$gate"
	wait "$pid"
	check_ndjson <"$BATS_TEST_TMPDIR/held"
}

@test "SIGTERM: no new requests, answers in flight finish, exit 0" {
	serve_start
	fake_control GPU0 '{"answer_words": 30, "decode_tps": 50}'
	post_bg "$BATS_TEST_TMPDIR/out" /api/chat < <(chat)
	pid=$BG
	wait_lines "$BATS_TEST_TMPDIR/out" 3
	kill -TERM "$SERVE_PID"
	sleep 0.2
	run curl -sS -o /dev/null -w '%{http_code}' "$SERVE_URL/api/version"
	assert_failure	# refused: not listening any more
	wait "$pid"
	check_ndjson <"$BATS_TEST_TMPDIR/out"
	st=0
	serve_stop || st=$?
	assert_equal "$st" 0
}

@test "SIGTERM past --drain: the answer is cancelled with an error line, exit 0" {
	serve_start --drain 300ms
	fake_control GPU0 '{"answer_words": 400, "decode_tps": 20}'
	post_bg "$BATS_TEST_TMPDIR/out" /api/chat < <(chat)
	pid=$BG
	wait_lines "$BATS_TEST_TMPDIR/out" 3
	kill -TERM "$SERVE_PID"
	wait "$pid"
	assert_equal "$(tail -n 1 "$BATS_TEST_TMPDIR/out" | jq -r .error)" "llm-serve is stopping: the answer was cancelled"
	assert_equal "$(jq -s 'map(select(.done == true)) | length' "$BATS_TEST_TMPDIR/out")" 0
	st=0
	serve_stop || st=$?
	assert_equal "$st" 0
	run fake_requests GPU0
	jq -e '.client_gone' <<<"$output" >/dev/null
}

@test "SIGHUP re-reads the configuration file" {
	mkdir -p "$BATS_TEST_TMPDIR/cfg/llm-route"
	printf 'a_max = 100000\nb_max = 200000\n' >"$BATS_TEST_TMPDIR/cfg/llm-route/config"
	XDG_CONFIG_HOME=$BATS_TEST_TMPDIR/cfg serve_start -v
	post /api/chat <"$B" >/dev/null
	assert_equal "$(fake_count GPU1)" 0	# direct under these thresholds
	printf 'a_max = 2000\nb_max = 6000\n' >"$BATS_TEST_TMPDIR/cfg/llm-route/config"
	kill -HUP "$SERVE_PID"
	wait_for grep -q ' reload ' "$SERVE_ERR"
	post /api/chat <"$B" >/dev/null
	(($(fake_count GPU1) > 0))
	wait_for grep -q 'serve method=POST path=/api/chat strategy=summarize status=200 bytes=[0-9]* ttfb_ms=[0-9.]* total_ms=[0-9.]* client=127.0.0.1:[0-9]*$' "$SERVE_ERR"
	# A bad file: a warning, and the old settings stay.
	printf 'bogus = 1\n' >"$BATS_TEST_TMPDIR/cfg/llm-route/config"
	kill -HUP "$SERVE_PID"
	wait_for grep -q 'SIGHUP: the configuration was not reloaded: .*unknown key' "$SERVE_ERR"
	assert_equal "$(curl -sS "$SERVE_URL/api/version")" '{"version":"0.12.0"}'
}

@test "one num_ctx per model upstream; a client's smaller window only narrows the fit" {
	serve_start
	jq -c '.options = {num_ctx: 16384}' "$A" | post /api/chat >/dev/null
	jq -c '.options = {num_ctx: 8192}' "$A" | post /api/chat >/dev/null
	post /api/chat <"$A" >/dev/null
	assert_equal "$(fake_requests GPU0 | jq -r '.body.options.num_ctx' | paste -sd ' ')" "16384 16384 16384"
}

@test "background condensing: the next turn needs no helper request" {
	# Turn 15 of a tool-calling conversation, then turn 17, which
	# closes a chunk that turn 15 left open.
	jq -c '.messages |= .[:15]' "$C" >"$BATS_TEST_TMPDIR/turn1"
	jq -c '.messages |= .[:17]' "$C" >"$BATS_TEST_TMPDIR/turn2"
	export XDG_CACHE_HOME=$BATS_TEST_TMPDIR/cache2
	serve_start
	post /api/chat <"$BATS_TEST_TMPDIR/turn1" >/dev/null
	# The background job ran, and wrote the chunk the next turn closes.
	wait_for metric_at_least llm_serve_prefetch_jobs_total 1
	wait_for bash -c "! pgrep -P $SERVE_PID >/dev/null"
	assert_equal "$(metric llm_serve_prefetch_chunks_total)" 1
	fake_reset GPU1
	fake_reset GPU0
	post /api/chat <"$BATS_TEST_TMPDIR/turn2" >"$BATS_TEST_TMPDIR/out"
	check_ndjson <"$BATS_TEST_TMPDIR/out"
	assert_equal "$(fake_count GPU1)" 0
	assert_equal "$(metric llm_serve_prefetch_hits_total)" 1
	# The same answer as without the server (the cache being warm).
	fake_reset GPU0
	assert_equal "$(tail -n +2 "$BATS_TEST_TMPDIR/out")" "$(llm-route --json <"$BATS_TEST_TMPDIR/turn2")"
	# Without it, the same next turn asks GPU1 for that chunk.
	serve_stop
	export XDG_CACHE_HOME=$BATS_TEST_TMPDIR/cache3
	serve_start --no-prefetch
	post /api/chat <"$BATS_TEST_TMPDIR/turn1" >/dev/null
	fake_reset GPU1
	post /api/chat <"$BATS_TEST_TMPDIR/turn2" >/dev/null
	assert_equal "$(fake_count GPU1)" 1
	assert_equal "$(metric llm_serve_prefetch_jobs_total)" 0
}

@test "GPU1 failing: the answer still comes, and GPU1 is left alone for a while" {
	serve_start
	fake_control GPU1 '{"status": 500}'
	out=$(post /api/chat <"$B" | tail -n +2)
	[[ $(jq -j .message.content <<<"$out") == "fake answer from"* ]] || fail "$out"
	assert_equal "$(fake_count GPU1)" 1
	wait_for grep -q 'HTTP 500.* (GPU1 is not asked for 60 s after it failed)$' "$SERVE_ERR"
	assert_equal "$(metric llm_serve_helper_cooldowns_total)" 1
	# The next requests, in band B and C, do not ask it.
	post /api/chat <"$B" >/dev/null
	post /api/chat <"$C" >"$BATS_TEST_TMPDIR/out"
	check_ndjson <"$BATS_TEST_TMPDIR/out"
	assert_equal "$(fake_count GPU1)" 1
	assert_equal "$(metric llm_serve_helper_cooldowns_total)" 1
}

# Has llm-serve logged at least $1 lines matching $2?
lines_logged() {
	(( $(grep -c -- "$2" "$SERVE_ERR") >= $1 ))
}

# The two serve lines of the --listen test, complete and as expected.
version_lines() {
	grep '"event":"serve"' "$SERVE_ERR" | jq -e -s 'length == 2 and all(.[];
		.method == "GET" and .path == "/api/version" and .status == 200
		and .bytes > 0 and .total_ms >= 0 and (.client | startswith("127.0.0.")))' >/dev/null 2>&1
}

@test "several --listen addresses; --log-json logs a serve line per request" {
	serve_start --listen 127.0.0.2:0 --log-json
	wait_for lines_logged 2 '^llm-serve: listening on'
	second=$(sed -n 's/^llm-serve: listening on \(http:[^ ]*\)$/\1/p' "$SERVE_ERR" | sed -n 2p)
	[[ $second == http://127.0.0.2:* ]] || fail "$(cat "$SERVE_ERR")"
	assert_equal "$(curl -sS "$second/api/version")" '{"version":"0.12.0"}'
	assert_equal "$(curl -sS "$SERVE_URL/api/version")" '{"version":"0.12.0"}'
	# Logged when each reply is done, which may be just after curl has it.
	wait_for version_lines || fail "$(cat "$SERVE_ERR")"
}

@test "bad flags and settings: status 2" {
	run --separate-stderr llm-serve --listen nowhere
	assert_equal "$status" 2
	[[ ${stderr_lines[0]} == "llm-serve: --listen: bad value 'nowhere' for serve_listen: expected ADDR:PORT" ]] || fail "$stderr"
	run --separate-stderr llm-serve --max-streams 0
	assert_equal "$status" 2
	run --separate-stderr llm-serve stray
	assert_equal "$status" 2
	run --separate-stderr llm-serve --token-file /nonexistent/token --listen 127.0.0.1:0
	assert_equal "$status" 2
	[[ ${stderr_lines[0]} == "llm-serve: token file /nonexistent/token: No such file or directory" ]] || fail "$stderr"
}

@test "a raw control byte in a body's string: 400 and a JSON error naming it, nothing asked" {
	printf '{"model":"m","messages":[{"role":"user","content":"a\000b"}]}' >"$BATS_TEST_TMPDIR/nul"
	run curl -sS -w ' %{http_code}' --data-binary @"$BATS_TEST_TMPDIR/nul" "$SERVE_URL/api/chat"
	assert_output '{"error":"bad input: invalid JSON: raw control byte 0x00 in a string at byte 53 (line 1, column 53)"} 400'
	run curl -sS -w ' %{http_code}' --data-binary @"$BATS_TEST_TMPDIR/nul" "$SERVE_URL/v1/chat/completions"
	assert_output --regexp '^\{"error":\{"message":"bad input: invalid JSON: raw control byte 0x00 in a string at byte 53 \(line 1, column 53\)","type":"invalid_request_error".*\}\} 400$'
	assert_equal "$(fake_requests GPU0 --all | wc -l)" 0
}

@test "what the tools do not own reaches GPU0 as the bytes the client sent" {
	python3 "$TESTS/lib/rawjson.py" chat >"$BATS_TEST_TMPDIR/in"
	fake_control GPU0 '{"log_raw": true}'
	post /api/chat <"$BATS_TEST_TMPDIR/in" >/dev/null
	fake_requests GPU0 | jq -r .raw | base64 -d >"$BATS_TEST_TMPDIR/sent"
	# Owned: "stream" (always on upstream) and options.num_ctx.
	run python3 - "$BATS_TEST_TMPDIR/in" "$BATS_TEST_TMPDIR/sent" <<'PY'
import re, sys
a, b = open(sys.argv[1]).read().rstrip("\n"), open(sys.argv[2]).read()
b = re.sub(r',"num_ctx":[0-9]+\}', "}", b, count=1).replace('"stream" :true', '"stream" :false')
print("" if a == b else "sent:\n%s\nwanted:\n%s" % (b[:300], a[:300]))
PY
	assert_success
	assert_output ""
}
