#!/usr/bin/env bats
# llm-generate against the fake Ollama/OpenAI server: streaming, the
# input shapes, the wire formats, and every fault of SPEC section 7.

load lib/common

setup_file() {
	fake_start GPU0
	fake_start ALT
}

teardown_file() {
	fake_stop_all
}

setup() {
	fake_reset_all
	export LLM_GPU0_URL=$GPU0_URL
}

@test "answers a text prompt, streamed as text with a final newline" {
	run --separate-stderr bash -c "echo 'Say hi in five words' | llm-generate"
	assert_success
	assert_output --regexp '^fake answer from qwen2.5-coder:7b: Say hi in five words \[[0-9]+ tokens, [0-9a-f]{8}\]$'
	[[ $(echo 'Say hi' | llm-generate | tail -c 1 | od -An -c | tr -d ' ') == '\n' ]]
	assert_equal "$stderr" ""
}

@test "the request sent is an Ollama chat with stream true and the request's fields" {
	jq -nc '{model: "m1", messages: [{role: "system", content: "be brief"},
		{role: "user", content: "hi", images: ["QUJD"]}],
		options: {temperature: 0, num_ctx: 8192}, keep_alive: "5m", stream: false}' >"$BATS_TEST_TMPDIR/in.json"
	run --separate-stderr llm-generate <"$BATS_TEST_TMPDIR/in.json"
	assert_success
	run fake_requests GPU0
	assert_equal "$(jq -c '.body | {model, stream, options, keep_alive}' <<<"$output")" \
		'{"model":"m1","stream":true,"options":{"temperature":0,"num_ctx":8192},"keep_alive":"5m"}'
	assert_equal "$(jq -c '.body.messages' <<<"$output")" "$(jq -c .messages "$BATS_TEST_TMPDIR/in.json")"
	assert_equal "$(jq -r .path <<<"$output")" /api/chat
	assert_equal "$(jq -r '.headers["content-type"]' <<<"$output")" application/json
}

@test "the model: --model, else the request's, else the role's" {
	chat | llm-generate --model forced >/dev/null
	chat | llm-generate >/dev/null
	echo hi | LLM_GPU0_MODEL=configured llm-generate >/dev/null
	echo hi | llm-generate >/dev/null
	run fake_requests GPU0
	assert_equal "$(jq -r .body.model <<<"$output" | paste -sd ' ')" \
		"forced qwen2.5-coder:7b configured qwen2.5-coder:7b"
}

@test "--json writes Ollama NDJSON lines ending with done:true and stats" {
	run --separate-stderr bash -c "chat | llm-generate --json | jq -r 'select(.done) | .eval_count'"
	assert_success
	[[ $output =~ ^[0-9]+$ ]] || fail "no eval_count: $output"
	run --separate-stderr bash -c "chat | llm-generate --json"
	assert_success
	# Every line is one JSON object; the text is the concatenated content.
	assert_equal "$(jq -s 'map(select(.done == false)) | length > 3' <<<"$output")" true
	assert_equal "$(jq -j '.message.content' <<<"$output")" "$(chat | llm-generate | tr -d '\n')"
}

@test "--no-stream prints the same answer, all at the end" {
	a=$(chat | llm-generate)
	run --separate-stderr bash -c "chat | llm-generate --no-stream"
	assert_success
	assert_output "$a"
	run --separate-stderr bash -c "chat | llm-generate --no-stream --json"
	assert_success
	assert_equal "${#lines[@]}" 1
	assert_equal "$(jq -r '.done, .message.content' <<<"$output" | head -c 200)" "true
$a"
}

@test "--no-stream --json: the server's created_at from its done line; an OpenAI server's is this host's time" {
	fake_reset GPU0
	done_at=$(chat | llm-generate --json | tail -n 1 | jq -r .created_at)
	[[ $done_at == 2026-01-01T00:00:00.*Z ]] || fail "$done_at"
	fake_reset GPU0
	assert_equal "$(chat | llm-generate --json --no-stream | jq -r .created_at)" "$done_at"
	at=$(chat | llm-generate --json --no-stream --api openai | jq -r .created_at)
	[[ $at == 20[0-9][0-9]-*Z && $at != 2026-01-01T00:00:00* ]] || fail "$at"
}

@test "each input shape: Ollama, OpenAI with content parts, bare array, plain text" {
	cp "$CORPUS/claude-code-log__representative_messages.json" "$BATS_TEST_TMPDIR/oai.json"
	run --separate-stderr llm-generate <"$BATS_TEST_TMPDIR/oai.json"
	assert_success
	jq '.messages' "$CORPUS/swe-agent__warmup.json" | llm-generate >/dev/null
	printf 'line one\n{not json\n' | llm-generate >/dev/null
	printf '[{"role":"user","content":"as text"}]' | llm-generate --text >/dev/null
	run fake_requests GPU0
	# The OpenAI parts became strings; the array and text became chats.
	assert_equal "$(jq -s '[.[0].body.messages[].content | type] | unique' <<<"$output" | jq -c .)" '["string"]'
	assert_equal "$(jq -s '.[1].body.messages | length' <<<"$output")" \
		"$(jq '.messages | length' "$CORPUS/swe-agent__warmup.json")"
	assert_equal "$(jq -s -c '.[2].body.messages' <<<"$output")" '[{"role":"user","content":"line one\n{not json\n"}]'
	assert_equal "$(jq -s -r '.[3].body.messages[0].content' <<<"$output")" '[{"role":"user","content":"as text"}]'
}

@test "lines split across reads, coalesced lines and no final newline give the same answer" {
	a=$(chat "split test words here" | llm-generate)
	fake_control GPU0 '{"split": true, "split_bytes": 1}'
	run --separate-stderr bash -c 'chat "split test words here" | llm-generate'
	assert_success
	assert_output "$a"
	fake_reset GPU0
	fake_control GPU0 '{"coalesce": 5, "no_final_newline": true}'
	run --separate-stderr bash -c 'chat "split test words here" | llm-generate'
	assert_success
	assert_output "$a"
}

@test "streaming: the first chunk is out before the last is sent" {
	gate=$BATS_TEST_TMPDIR/gate
	fake_control GPU0 "{\"gate\": \"$gate\"}"
	chat | llm-generate >"$BATS_TEST_TMPDIR/out" &
	pid=$!
	for ((i = 0; i < 100; i++)); do
		[[ -s $BATS_TEST_TMPDIR/out ]] && break
		sleep 0.05
	done
	first=$(cat "$BATS_TEST_TMPDIR/out")
	# The server is holding the rest: it has not sent its last chunk.
	assert_equal "$(jq -s -c 'map(.event) | map(select(. == "gate_wait" or . == "last_chunk"))' "$GPU0_LOG")" '["gate_wait"]'
	touch "$gate"
	wait "$pid"
	assert_equal "$first" "fake "
	[[ $(cat "$BATS_TEST_TMPDIR/out") == "fake answer from"* ]]
	assert_equal "$(jq -s -c 'map(.event) | map(select(. == "gate_wait" or . == "last_chunk"))' "$GPU0_LOG")" '["gate_wait","last_chunk"]'
	assert_equal "$(jq -s -c 'map(select(.event == "gate_open"))[0].timeout' "$GPU0_LOG")" false
}

@test "OpenAI backend: SSE answer, API key from the environment, synthesized NDJSON" {
	a=$(chat | llm-generate)
	run --separate-stderr bash -c "chat | LLM_GPU0_API=openai LLM_GPU0_API_KEY=sekrit llm-generate"
	assert_success
	assert_output "$a"
	run fake_requests GPU0
	assert_equal "$(tail -n 1 <<<"$output" | jq -r '.path, .headers.authorization, .body.stream')" "/v1/chat/completions
Bearer sekrit
true"
	run --separate-stderr bash -c "chat | llm-generate --api openai --json"
	assert_success
	assert_equal "$(tail -n 1 <<<"$output" | jq -c '{done, prompt_eval_count: (.prompt_eval_count > 0)}')" \
		'{"done":true,"prompt_eval_count":true}'
	assert_equal "$(jq -j '.message.content' <<<"$output")" "$(tr -d '\n' <<<"$a")"
}

@test "OLLAMA_HOST is GPU0's address when LLM_GPU0_URL is not set" {
	unset LLM_GPU0_URL
	run --separate-stderr bash -c "chat | OLLAMA_HOST=127.0.0.1:$GPU0_PORT llm-generate"
	assert_success
	assert_equal "$(fake_count GPU0)" 1
}

@test "a config file sets the URL; flags and environment win over it" {
	unset LLM_GPU0_URL
	cfg=$BATS_TEST_TMPDIR/config
	printf '# test\ngpu0_url = %s\ngpu0_model = "from-file"\n' "$GPU0_URL" >"$cfg"
	echo hi | LLM_ROUTE_CONFIG=$cfg llm-generate >/dev/null
	echo hi | LLM_ROUTE_CONFIG=$cfg LLM_GPU0_MODEL=from-env llm-generate >/dev/null
	echo hi | LLM_ROUTE_CONFIG=$cfg LLM_GPU0_URL=http://127.0.0.1:1 llm-generate --url "$ALT_URL" >/dev/null
	assert_equal "$(fake_requests GPU0 | jq -r .body.model | paste -sd ' ')" "from-file from-env"
	assert_equal "$(fake_count ALT)" 1
}

@test "bad configuration: unknown key, bad value, bad variable (status 2)" {
	cfg=$BATS_TEST_TMPDIR/config
	printf 'gpu0_url = http://x\nbogus = 1\n' >"$cfg"
	run --separate-stderr bash -c "echo hi | LLM_ROUTE_CONFIG=$cfg llm-generate"
	assert_fails 2 "^llm-generate: $cfg:2: unknown key 'bogus'$"
	printf 'gpu0_api = grpc\n' >"$cfg"
	run --separate-stderr bash -c "echo hi | LLM_ROUTE_CONFIG=$cfg llm-generate"
	assert_fails 2 "^llm-generate: $cfg:1: bad value 'grpc' for gpu0_api"
	run --separate-stderr bash -c "echo hi | LLM_GPU0_URL=ftp://x llm-generate"
	assert_fails 2 "^llm-generate: LLM_GPU0_URL: bad value 'ftp://x'"
	run --separate-stderr bash -c "echo hi | LLM_ROUTE_CONFIG=/nonexistent llm-generate"
	assert_fails 2 "^llm-generate: config file /nonexistent: No such file"
}

@test "a URL without a host, or with a tab or space, is refused at startup naming where (status 2)" {
	cfg=$BATS_TEST_TMPDIR/config
	for u in 'http://' 'http://[]' 'http://[]:11434'; do
		run --separate-stderr bash -c "echo hi | LLM_GPU0_URL='$u' llm-generate"
		assert_fails 2 "^llm-generate: LLM_GPU0_URL: bad value '${u//[/\\[}' for gpu0_url: no host name$"
	done
	printf '# a tab pasted in\ngpu0_url = %s/a\tb\n' "$GPU0_URL" >"$cfg"
	run --separate-stderr bash -c "echo hi | LLM_ROUTE_CONFIG=$cfg llm-generate"
	assert_fails 2 "^llm-generate: $cfg:2: bad value '.*' for gpu0_url: a URL has no spaces or control characters$"
	printf 'gpu0_url = "%s/a b"\n' "$GPU0_URL" >"$cfg"
	run --separate-stderr bash -c "echo hi | LLM_ROUTE_CONFIG=$cfg llm-generate"
	assert_fails 2 "^llm-generate: $cfg:1: bad value '.*' for gpu0_url: a URL has no spaces or control characters$"
	assert_equal "$(fake_count GPU0)" 0
}

@test "a time under 1 ms is 1 ms, not 0 (which is no limit)" {
	fake_control GPU0 '{"first_byte_delay": 1}'
	run --separate-stderr bash -c "chat | llm-generate --first-byte-timeout 0.0001"
	assert_fails 5 "^llm-generate: GPU0 .*: no reply within 1 ms \(first-byte timeout\)$"
	run --separate-stderr bash -c "chat | llm-generate --timeout 0.1ms"
	assert_equal "$status" 5
}

@test "usage errors: unknown option, bad duration, stray argument (status 2)" {
	run --separate-stderr llm-generate --bogus </dev/null
	assert_equal "$status" 2
	assert_equal "${stderr_lines[1]}" "Try 'llm-generate --help' for more information."
	run --separate-stderr llm-generate --idle-timeout soon </dev/null
	assert_equal "$status" 2
	[[ ${stderr_lines[0]} == "llm-generate: --idle-timeout: bad value 'soon'"* ]]
	run --separate-stderr llm-generate chat.json </dev/null
	assert_equal "$status" 2
	[[ ${stderr_lines[0]} == *"unexpected argument 'chat.json'"* ]]
}

@test "bad input is refused before any request (status 3)" {
	run --separate-stderr bash -c "printf '{\"messages\": 1}' | llm-generate"
	assert_fails 3 'bad input: "messages": expected an array, got a number'
	run --separate-stderr bash -c "printf '' | llm-generate"
	assert_fails 3 'bad input: empty input'
	assert_equal "$(fake_count GPU0)" 0
}

@test "connection refused: status 4, a hint, nothing on stdout" {
	run --separate-stderr bash -c "chat | llm-generate --url http://127.0.0.1:1"
	assert_fails 4 "^llm-generate: GPU0 http://127.0.0.1:1/api/chat: .*onnect.*LLM_GPU0_URL or OLLAMA_HOST\)$"
}

@test "connect timeout: status 5" {
	# A listener (backlog 0) whose accept queue one connection fills:
	# the kernel drops later handshakes, so connecting hangs.
	python3 -c '
import socket, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(0)
fill = socket.create_connection(s.getsockname(), timeout=1)
print(s.getsockname()[1], flush=True); time.sleep(20)' >"$BATS_TEST_TMPDIR/port" 3>&- &
	pid=$!
	for ((i = 0; i < 50; i++)); do [[ -s $BATS_TEST_TMPDIR/port ]] && break; sleep 0.1; done
	port=$(<"$BATS_TEST_TMPDIR/port")
	run --separate-stderr bash -c "chat | llm-generate --url http://127.0.0.1:$port --connect-timeout 0.3"
	kill "$pid"
	assert_fails 5 "connect timeout after 0.3 s"
}

@test "first-byte timeout: status 5" {
	fake_control GPU0 '{"first_byte_delay": 3}'
	run --separate-stderr bash -c "chat | llm-generate --first-byte-timeout 300ms"
	assert_fails 5 "^llm-generate: GPU0 .*: no reply within 0.3 s \(first-byte timeout\)$"
}

@test "idle timeout mid-stream: status 5, what was printed stays printed" {
	fake_control GPU0 '{"stall_after": 2, "stall_seconds": 3}'
	run --separate-stderr bash -c "chat | llm-generate --idle-timeout 0.4"
	assert_equal "$status" 5
	assert_output "fake answer "
	assert_equal "$stderr" "llm-generate: GPU0 $GPU0_URL/api/chat: nothing received for 0.4 s (idle timeout)"
}

@test "total timeout: status 5" {
	fake_control GPU0 '{"decode_tps": 5}'
	run --separate-stderr bash -c "chat | llm-generate --timeout 0.5"
	assert_equal "$status" 5
	[[ $stderr == *"not done within 0.5 s (timeout)" ]]
}

@test "HTTP errors with an error body: model not found, 500 (status 6)" {
	fake_control GPU0 '{"models": ["other"]}'
	run --separate-stderr bash -c "chat | llm-generate"
	assert_fails 6 "^llm-generate: GPU0 .*/api/chat: HTTP 404: model \"qwen2.5-coder:7b\" not found"
	fake_reset GPU0
	fake_control GPU0 '{"status": 500}'
	run --separate-stderr bash -c "chat | llm-generate"
	assert_fails 6 "HTTP 500: llama runner process has terminated"
	fake_reset GPU0
	fake_control GPU0 '{"status": 503}'
	run --separate-stderr bash -c "chat | llm-generate --api openai"
	assert_fails 6 "HTTP 503: server busy"
}

@test "an error line mid-stream: status 6, the text before it stays" {
	fake_control GPU0 '{"error_after": 3, "error": "CUDA error: out of memory"}'
	run --separate-stderr bash -c "chat | llm-generate"
	assert_equal "$status" 6
	assert_output "fake answer from "
	assert_equal "$stderr" "llm-generate: GPU0 $GPU0_URL/api/chat: error in stream: CUDA error: out of memory"
	run --separate-stderr bash -c "chat | llm-generate --api openai"
	assert_equal "$status" 6
	[[ $stderr == *"error in stream: CUDA error: out of memory" ]]
}

@test "a malformed line: status 7" {
	fake_control GPU0 '{"malformed_after": 2}'
	run --separate-stderr bash -c "chat | llm-generate"
	assert_equal "$status" 7
	assert_output "fake answer "
	[[ $stderr == "llm-generate: GPU0 "*": malformed reply: not a JSON object: "* ]]
}

@test "a stream cut before done, cleanly or not, or an empty reply: status 7" {
	fake_control GPU0 '{"drop_after": 2, "drop_mode": "clean"}'
	run --separate-stderr bash -c "chat | llm-generate"
	assert_equal "$status" 7
	assert_equal "$stderr" "llm-generate: GPU0 $GPU0_URL/api/chat: the reply ended before done:true"
	fake_reset GPU0
	fake_control GPU0 '{"drop_after": 2, "drop_mode": "abort"}'
	run --separate-stderr bash -c "chat | llm-generate"
	assert_equal "$status" 7
	[[ $stderr == *"the reply was cut before done"* ]]
	fake_reset GPU0
	fake_control GPU0 '{"refuse": true}'
	run --separate-stderr bash -c "chat | llm-generate"
	assert_fails 7 "closed the connection without a reply"
	fake_reset GPU0
	fake_control GPU0 '{"drop_after": 2}'
	run --separate-stderr bash -c "chat | llm-generate --api openai"
	assert_equal "$status" 7
	[[ $stderr == *"before [DONE]" ]]
}

@test "a cut-off answer ends its line before the error; a cut at a newline gets no second one" {
	out=$BATS_TEST_TMPDIR/out
	cut() {	# cut STATUS FAULT [FLAGS...]: the text written, then the status
		local want=$1 fault=$2 st
		shift 2
		fake_reset GPU0
		fake_control GPU0 "$fault"
		chat | llm-generate "$@" >"$out" 2>"$out.err" && st=0 || st=$?
		assert_equal "$st" "$want"
		assert_equal "$(wc -l <"$out.err")" 1
	}
	cut 7 '{"drop_after": 2, "drop_mode": "clean"}'
	assert_equal "$(cat "$out"; echo .)" "fake answer "$'\n'.
	cut 7 '{"drop_after": 2, "drop_mode": "abort"}'
	assert_equal "$(tail -c 2 "$out" | od -An -c | tr -d ' ')" '\n'
	cut 7 '{"drop_after": 2}' --api openai
	assert_equal "$(tail -c 2 "$out" | od -An -c | tr -d ' ')" '\n'
	cut 6 '{"error_after": 3}'
	assert_equal "$(cat "$out"; echo .)" "fake answer from "$'\n'.
	cut 6 '{"error_after": 3}' --api openai
	assert_equal "$(cat "$out"; echo .)" "fake answer from "$'\n'.
	cut 5 '{"stall_after": 2, "stall_seconds": 3}' --idle-timeout 0.4
	assert_equal "$(cat "$out"; echo .)" "fake answer "$'\n'.
	# Already at the start of a line: nothing added.
	cut 7 '{"answer": "one\ntwo\nthree", "drop_after": 2, "drop_mode": "clean"}'
	assert_equal "$(cat "$out"; echo .)" $'one\ntwo\n.'
	# Nothing written: nothing added.
	cut 6 '{"error_after": 0}'
	assert_equal "$(wc -c <"$out")" 0
	# --json and --no-stream write nothing of a cut answer.
	cut 7 '{"drop_after": 2}' --no-stream
	assert_equal "$(wc -c <"$out")" 0
	# A complete answer ends with one newline, one that has it not doubled.
	fake_reset GPU0
	fake_control GPU0 '{"answer": "one\ntwo\n"}'
	chat | llm-generate >"$out"
	assert_equal "$(cat "$out"; echo .)" $'one\ntwo\n.'
}

@test "several URLs: the next is tried when one is unreachable or answers 5xx" {
	run --separate-stderr bash -c "chat | llm-generate --url http://127.0.0.1:1,$ALT_URL"
	assert_success
	[[ $stderr == "llm-generate: GPU0 http://127.0.0.1:1/api/chat: "*"; trying $ALT_URL" ]]
	fake_control GPU0 '{"status": 503}'
	run --separate-stderr bash -c "chat | llm-generate --url $GPU0_URL,$ALT_URL"
	assert_success
	assert_equal "$(fake_count GPU0) $(fake_count ALT)" "1 2"
	fake_reset ALT
	fake_control ALT '{"status": 404}'
	run --separate-stderr bash -c "chat | llm-generate --url $ALT_URL,$GPU0_URL"
	assert_equal "$status" 6	# a 4xx is the answer, not a reason to fail over
}

@test "thinking is left out unless --show-thinking" {
	fake_control GPU0 '{"thinking": "field"}'
	run --separate-stderr bash -c "chat | llm-generate"
	assert_output --regexp '^fake answer from'
	run --separate-stderr bash -c "chat | llm-generate --show-thinking"
	assert_output --regexp '^<think>.+</think>'$'\n''fake answer from'
	fake_reset GPU0
	fake_control GPU0 '{"thinking": "tags", "split": true, "split_bytes": 2}'
	run --separate-stderr bash -c "chat | llm-generate"
	assert_success
	assert_output --regexp '^fake answer from'
	run --separate-stderr bash -c "chat | llm-generate --show-thinking"
	assert_output --regexp '^<think>'
	fake_reset GPU0
	fake_control GPU0 '{"thinking": "only"}'
	run --separate-stderr bash -c "chat | llm-generate"
	assert_success
	assert_output ""
}

@test "--json cut by an error ends with an {\"error\"} line, as Ollama's own stream does" {
	fake_control GPU0 '{"error_after": 2, "error": "CUDA error: out of memory"}'
	run --separate-stderr bash -c "chat | llm-generate --json"
	assert_equal "$status" 6
	assert_equal "${#lines[@]}" 3
	assert_equal "$(head -n 2 <<<"$output" | jq -c .done | paste -sd ' ')" "false false"
	msg="GPU0 $GPU0_URL/api/chat: error in stream: CUDA error: out of memory"
	assert_equal "${lines[2]}" "$(jq -nc --arg m "$msg" '{error: $m}')"
	assert_equal "$stderr" "llm-generate: $msg"
	run --separate-stderr bash -c "chat | llm-generate --json --api openai"
	assert_equal "$status" 6
	assert_equal "$(tail -n 1 <<<"$output" | jq -r .error)" \
		"GPU0 $GPU0_URL/v1/chat/completions: error in stream: CUDA error: out of memory"
	fake_reset GPU0
	fake_control GPU0 '{"drop_after": 2, "drop_mode": "clean"}'
	run --separate-stderr bash -c "chat | llm-generate --json"
	assert_equal "$status" 7
	assert_equal "${#lines[@]}" 3
	assert_equal "$(jq -r .error <<<"${lines[2]}")" "${stderr#llm-generate: }"
	# Nothing written, or --no-stream: no line either.
	fake_reset GPU0
	fake_control GPU0 '{"error_after": 0}'
	run --separate-stderr bash -c "chat | llm-generate --json"
	assert_equal "$status" 6
	assert_output ""
	fake_reset GPU0
	fake_control GPU0 '{"drop_after": 2}'
	run --separate-stderr bash -c "chat | llm-generate --json --no-stream"
	assert_equal "$status" 7
	assert_output ""
}

@test "a write error on stdout is reported once (status 1): text, --json, --no-stream" {
	[[ -w /dev/full ]] || fail "no /dev/full"
	for f in "" --json --no-stream; do
		run --separate-stderr bash -c "chat | llm-generate $f >/dev/full"
		assert_equal "$status" 1
		assert_equal "$stderr" "llm-generate: writing output: No space left on device"
	done
}

@test "a closed stdout ends it quietly and cancels the upstream request" {
	fake_control GPU0 '{"answer_words": 3000}'
	first=$(chat | llm-generate | head -c 5)
	fake_reset GPU0
	fake_control GPU0 '{"answer_words": 3000, "decode_tps": 200}'
	run --separate-stderr bash -c 'set -o pipefail; chat | llm-generate | head -c 5'
	assert_equal "$status" 141
	assert_output "$first"
	assert_equal "$stderr" ""
	run fake_requests GPU0
	assert_equal "$(jq -r .completed <<<"$output")" false
}

@test "SIGTERM and SIGINT cancel the upstream request (143, 130)" {
	fake_control GPU0 '{"stall_after": 1, "stall_seconds": 10}'
	for sig in TERM INT; do
		n=$(jq -s 'map(select(.event == "start")) | length' "$GPU0_LOG")
		chat | llm-generate >/dev/null 2>"$BATS_TEST_TMPDIR/err" &
		pid=$!
		for ((i = 0; i < 200; i++)); do
			[[ $(jq -s 'map(select(.event == "start")) | length' "$GPU0_LOG") -gt $n ]] && break
			sleep 0.05
		done
		sleep 0.2
		kill -s $sig $pid
		wait $pid && st=0 || st=$?
		[[ $sig == TERM ]] && assert_equal "$st" 143 || assert_equal "$st" 130
		assert_equal "$(cat "$BATS_TEST_TMPDIR/err")" ""
	done
	run fake_requests GPU0
	assert_equal "$(jq -s 'map(select(.completed == false)) | length' <<<"$output")" 2
}

@test "-v logs the request and the final stats; --log-json as JSON lines" {
	run --separate-stderr bash -c "chat | llm-generate -v"
	assert_success
	[[ ${stderr_lines[0]} =~ ^[0-9:.]+\ llm-generate:\ request\ role=GPU0\ url=$GPU0_URL/api/chat\ status=200\ result=ok ]] || fail "${stderr_lines[0]}"
	[[ ${stderr_lines[1]} =~ stats\ role=GPU0\ prompt_eval_count=[0-9]+\ eval_count=[0-9]+\ .*tokens_per_s= ]] || fail "${stderr_lines[1]}"
	run --separate-stderr bash -c "chat | llm-generate --log-json"
	assert_success
	assert_equal "$(jq -r .event <<<"$stderr" | paste -sd ' ')" "request stats"
	assert_equal "$(jq -s '.[1].eval_count > 0' <<<"$stderr")" true
}

@test "a signal while the chat is still being read ends it (143), asking nothing" {
	mkfifo "$BATS_TEST_TMPDIR/fifo"
	sleep 5 >"$BATS_TEST_TMPDIR/fifo" &
	writer=$!
	llm-generate <"$BATS_TEST_TMPDIR/fifo" >"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err" &
	pid=$!
	sleep 0.5
	kill -TERM $pid
	wait $pid && st=0 || st=$?
	kill $writer 2>/dev/null || true
	assert_equal "$st" 143
	assert_equal "$(cat "$BATS_TEST_TMPDIR/out" "$BATS_TEST_TMPDIR/err")" ""
	assert_equal "$(fake_count GPU0)" 0
}

@test "tool calls in Ollama's shape go to an OpenAI server with string arguments" {
	jq -nc '{model: "m", messages: [{role: "user", content: "read a.c"},
		{role: "assistant", content: "", tool_calls: [{function: {name: "read", arguments: {path: "a.c"}}}]},
		{role: "tool", content: "int x;", tool_name: "read"}, {role: "user", content: "and?"}]}' >"$BATS_TEST_TMPDIR/in"
	llm-generate --api openai <"$BATS_TEST_TMPDIR/in" >/dev/null
	run fake_requests GPU0
	assert_equal "$(jq -c '.body.messages[1].tool_calls[0] | [.type, .function.arguments]' <<<"$output")" \
		'["function","{\"path\":\"a.c\"}"]'
}

@test "tool calls in OpenAI's shape go to Ollama with object arguments" {
	jq -nc '{model: "m", temperature: 0, messages: [{role: "user", content: "x"},
		{role: "assistant", content: null, tool_calls: [{id: "c1", type: "function",
			function: {name: "read", arguments: "{\"path\":\"a.c\"}"}}]},
		{role: "tool", tool_call_id: "c1", content: "int x;"}, {role: "user", content: "y"}]}' >"$BATS_TEST_TMPDIR/in"
	llm-generate <"$BATS_TEST_TMPDIR/in" >/dev/null
	run fake_requests GPU0
	assert_equal "$(jq -c '.body.messages[1] | [.content, .tool_calls[0].function.arguments]' <<<"$output")" \
		'["",{"path":"a.c"}]'
	assert_equal "$(jq -c '.body.options' <<<"$output")" '{"temperature":0}'
}

@test "a flag given again: the last one counts" {
	bad=http://127.0.0.1:1
	run --separate-stderr bash -c "chat | llm-generate --url $bad --url $bad --url $bad --url $bad --url $bad \
		--url $bad --url $bad --url $bad --url $bad --timeout 9 --timeout 20 --url $GPU0_URL"
	assert_success
	assert_equal "$stderr" ""
	assert_equal "$(fake_count GPU0)" 1
}

@test "what the tools do not own reaches the server as the bytes that came in: Ollama request" {
	# A 30-digit seed, members in an odd order, \u escapes, "\/", spaces:
	# only "stream" and options.num_ctx change.
	printf '%s' '{ "options" : {"seed":123456789012345678901234567890, "temperature":0.50},
 "x_note": "caf\u00e9 \/ \ud83d\ude00", "messages": [{"content":"a\/b \u00e9 \"q\"","role":"user"}],
 "model":"m\u0031", "stream" :false }' >"$BATS_TEST_TMPDIR/in"
	fake_control GPU0 '{"log_raw": true}'
	llm-generate --num-ctx 4096 <"$BATS_TEST_TMPDIR/in" >/dev/null
	run fake_requests GPU0
	assert_equal "$(jq -r .body.model <<<"$output")" m1
	assert_equal "$(jq -r .raw <<<"$output" | base64 -d)" '{ "options" : {"seed":123456789012345678901234567890, "temperature":0.50,"num_ctx":4096},
 "x_note": "caf\u00e9 \/ \ud83d\ude00", "messages": [{"content":"a\/b \u00e9 \"q\"","role":"user"}],
 "model":"m\u0031", "stream" :true }'
}

@test "what the tools do not own reaches the server as the bytes that came in: OpenAI request, either API" {
	printf '%s' '{"seed":123456789012345678901234567890,"messages":[{"role":"user","content":"a\/b"}], "temperature" : 0.50,"model":"m","user":"u\u0031","stream":false}' >"$BATS_TEST_TMPDIR/in"
	fake_control GPU0 '{"log_raw": true}'
	llm-generate --api openai <"$BATS_TEST_TMPDIR/in" >/dev/null
	run fake_requests GPU0
	assert_equal "$(jq -r .raw <<<"$output" | base64 -d)" \
		'{"seed":123456789012345678901234567890,"messages":[{"role":"user","content":"a\/b"}], "temperature" : 0.50,"model":"m","user":"u\u0031","stream":true,"stream_options":{"include_usage":true}}'
	# To Ollama the sampling options move into "options", with their digits.
	fake_reset GPU0
	fake_control GPU0 '{"log_raw": true}'
	llm-generate <"$BATS_TEST_TMPDIR/in" >/dev/null
	run fake_requests GPU0
	assert_equal "$(jq -r .raw <<<"$output" | base64 -d)" \
		'{"messages":[{"role":"user","content":"a\/b"}],"model":"m","stream":true,"options":{"temperature":0.50,"seed":123456789012345678901234567890}}'
}

@test "a bare array of messages keeps its bytes inside the request made around it" {
	printf '%s' '[ {"role":"user","content":"a\/b \u00e9"} ]' >"$BATS_TEST_TMPDIR/in"
	fake_control GPU0 '{"log_raw": true}'
	llm-generate <"$BATS_TEST_TMPDIR/in" >/dev/null
	run fake_requests GPU0
	assert_equal "$(jq -r .raw <<<"$output" | base64 -d)" \
		'{"messages":[ {"role":"user","content":"a\/b \u00e9"} ],"model":"qwen2.5-coder:7b","stream":true}'
}

@test "a raw control byte in a string is refused, naming it and where (status 3)" {
	printf '{"messages":[{"role":"user","content":"a\000b"}]}' >"$BATS_TEST_TMPDIR/nul"
	run --separate-stderr llm-generate <"$BATS_TEST_TMPDIR/nul"
	assert_fails 3 '^llm-generate: bad input: invalid JSON: raw control byte 0x00 in a string at byte 41 \(line 1, column 41\)$'
	printf '{"model": "m",\n "messages":[{"role":"user","content":"a\001b"}]}' >"$BATS_TEST_TMPDIR/soh"
	run --separate-stderr llm-generate <"$BATS_TEST_TMPDIR/soh"
	assert_fails 3 '^llm-generate: bad input: invalid JSON: raw control byte 0x01 in a string at byte 56 \(line 2, column 41\)$'
	assert_equal "$(fake_count GPU0)" 0
}

@test "invalid UTF-8 in the input: written anew (U+FFFD), so what GPU0 and stdout get is valid JSON" {
	printf '{"model":"m","messages":[{"role":"user","content":"bad \377\376 byte"}]}' >"$BATS_TEST_TMPDIR/bad"
	run --separate-stderr llm-generate <"$BATS_TEST_TMPDIR/bad"
	assert_success
	assert_equal "$(fake_requests GPU0 | jq -r '.body.messages[0].content')" "bad �� byte"
	run --separate-stderr llm-mapreduce --extractive --no-cache <"$BATS_TEST_TMPDIR/bad"
	assert_success
	assert_equal "$(jq -r '.messages[0].content' <<<"$output")" "bad �� byte"
	run --separate-stderr llm-summarize --extractive <"$BATS_TEST_TMPDIR/bad"
	assert_success
	jq -e . <<<"$output" >/dev/null
}
