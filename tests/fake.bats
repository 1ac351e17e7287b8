#!/usr/bin/env bats
# Tests of the fake LLM server itself (tests/fake_ollama.py), with curl and jq.

bats_require_minimum_version 1.5.0
load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'
load 'lib/fake'

setup_file() { fake_start F; }
teardown_file() { fake_stop F; }
setup() { fake_reset F; }

HELLO='{"model":"m","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hello there world"}]}'

# chat JSON [curl args...]: POST to /api/chat, body on stdout
chat() { local b=$1; shift; curl -sSN "$@" "$F_URL/api/chat" --data-binary "$b"; }
oai() { local b=$1; shift; curl -sSN "$@" "$F_URL/v1/chat/completions" --data-binary "$b"; }
content() { jq -j 'select(.done == false) | .message.content'; }
# tokens of the rendered prompt of $HELLO
hello_tokens() {
	local s=$'<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nhello there world<|im_end|>\n'
	echo $(((${#s} + 3) / 4))
}

@test "ollama stream: NDJSON lines, words as chunks, final done line with stats" {
	chat "$HELLO" -D "$BATS_TEST_TMPDIR/h" >"$BATS_TEST_TMPDIR/o"
	grep -qi '^content-type: application/x-ndjson' "$BATS_TEST_TMPDIR/h"
	grep -qi '^transfer-encoding: chunked' "$BATS_TEST_TMPDIR/h"
	run jq -e -s 'length > 3 and all(.[:-1][]; .done == false and .message.role == "assistant"
		and (.created_at | test("^2026-.*Z$")))' "$BATS_TEST_TMPDIR/o"
	assert_success
	run jq -c 'select(.done) | [.done_reason, .prompt_eval_count, .eval_count > 0,
		(.total_duration, .load_duration, .prompt_eval_duration, .eval_duration | . > 0)]' "$BATS_TEST_TMPDIR/o"
	assert_output "[\"stop\",$(hello_tokens),true,true,true,true,true]"
	run content <"$BATS_TEST_TMPDIR/o"
	assert_output --regexp "^fake answer from m: hello there world \[$(hello_tokens) tokens, [0-9a-f]{8}\]$"
	run jq -r 'select(.done == false) | .message.content' "$BATS_TEST_TMPDIR/o"
	assert_line --index 0 'fake '
}

@test "deterministic: the same request gives the same bytes; another gives another hash" {
	chat "$HELLO" >"$BATS_TEST_TMPDIR/a"
	fake_reset F
	chat "$HELLO" >"$BATS_TEST_TMPDIR/b"
	cmp "$BATS_TEST_TMPDIR/a" "$BATS_TEST_TMPDIR/b"
	chat '{"model":"m","messages":[{"role":"user","content":"hello there world!"}]}' >"$BATS_TEST_TMPDIR/c"
	[[ $(content <"$BATS_TEST_TMPDIR/a" | tail -c 10) != $(content <"$BATS_TEST_TMPDIR/c" | tail -c 10) ]]
}

@test "ollama non-streaming: one JSON object with the same message and stats" {
	streamed=$(chat "$HELLO" | content)
	fake_reset F
	run chat "${HELLO%\}},\"stream\":false}" -D "$BATS_TEST_TMPDIR/h"
	assert_success
	grep -qi '^content-type: application/json' "$BATS_TEST_TMPDIR/h"
	[[ $(jq -r .message.content <<<"$output") == "$streamed" ]]
	run jq -c '[.done, .done_reason, .prompt_eval_count]' <<<"$output"
	assert_output "[true,\"stop\",$(hello_tokens)]"
}

@test "openai: SSE chunks, usage chunk, data: [DONE]; non-streaming chat.completion" {
	body='{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":[{"type":"text","text":"hello there"},{"type":"text","text":" world"}]}]}'
	oai "$body" -D "$BATS_TEST_TMPDIR/h" >"$BATS_TEST_TMPDIR/o"
	grep -qi '^content-type: text/event-stream' "$BATS_TEST_TMPDIR/h"
	[[ $(tail -c 14 "$BATS_TEST_TMPDIR/o" | tr '\n' '|') == 'data: [DONE]||' ]]
	# every other line is blank; events are data: lines
	run awk 'NR % 2 == 0 && $0 != "" { bad++ } NR % 2 == 1 && !/^data: / { bad++ } END { print bad + 0 }' "$BATS_TEST_TMPDIR/o"
	assert_output 0
	sed -n 's/^data: \({.*\)/\1/p' "$BATS_TEST_TMPDIR/o" >"$BATS_TEST_TMPDIR/j"
	run jq -j '.choices[0].delta.content // empty' "$BATS_TEST_TMPDIR/j"
	assert_output --regexp '^fake answer from m: hello there world \[[0-9]+ tokens, [0-9a-f]{8}\]$'
	run jq -c 'select(.choices[0].finish_reason != null) | .choices[0].finish_reason' "$BATS_TEST_TMPDIR/j"
	assert_output '"stop"'
	run jq -c 'select(.usage) | [(.choices | length), .usage.total_tokens > 0]' "$BATS_TEST_TMPDIR/j"
	assert_output '[0,true]'
	run oai '{"model":"m","messages":[{"role":"user","content":"hi"}]}'
	run jq -c '[.object, .choices[0].message.content, .choices[0].finish_reason, .usage.completion_tokens]' <<<"$output"
	assert_output --regexp '^\["chat.completion","fake answer from m: hi \[8 tokens, [0-9a-f]+\]","stop",8\]$'
}

@test "other endpoints: tags, show, version, ps, v1/models" {
	run curl -sS "$F_URL/api/version"
	assert_output '{"version":"0.12.0"}'
	run curl -sS "$F_URL/api/tags"
	run jq -r '.models[].name' <<<"$output"
	assert_line 'qwen2.5-coder:7b'
	run curl -sS "$F_URL/api/show" -d '{"model":"qwen3:1.7b"}'
	run jq -c '[.model_info["general.architecture"], .model_info["qwen2.context_length"], .details.family, (.parameters | type)]' <<<"$output"
	assert_output '["qwen2",32768,"qwen2","string"]'
	chat "$HELLO" >/dev/null
	run curl -sS "$F_URL/api/ps"
	run jq -r '.models[].name' <<<"$output"
	assert_output m
	run curl -sS "$F_URL/v1/models"
	run jq -r '.object, .data[0].id' <<<"$output"
	assert_output $'list\nqwen2.5-coder:7b'
}

@test "thinking: field (unless think:false), tags, only" {
	fake_control F '{"thinking":"field"}'
	run chat "$HELLO"
	run jq -r 'select(.done == false) | if .message.thinking then "T" else "C" end' <<<"$output"
	[[ $(tr -d '\n' <<<"$output") =~ ^T+C+$ ]]
	run chat "${HELLO%\}},\"think\":false}"
	refute_output --partial thinking
	fake_control F '{"thinking":"tags"}'
	run content < <(chat "${HELLO%\}},\"think\":false}")
	assert_output --regexp $'^<think>Thinking about request [0-9a-f]{8} step by step.</think>\nfake answer from m:'
	fake_control F '{"thinking":"only"}'
	run chat "${HELLO%\}},\"stream\":false}"
	run jq -c '[.message.content, (.message.thinking | length > 0)]' <<<"$output"
	assert_output '["",true]'
	run oai '{"model":"m","stream":true,"messages":[]}'
	assert_output --partial '"reasoning_content":"Thinking '
}

@test "answer and answer_words control the text; num_predict stops with length" {
	fake_control F '{"answer":"one two three"}'
	run chat "$HELLO"
	run jq -r 'select(.done == false) | .message.content' <<<"$output"
	assert_output $'one \ntwo \nthree'
	fake_control F '{"answer":null,"answer_words":50}'
	run content < <(chat "$HELLO")
	[[ $(wc -w <<<"$output") -eq 50 ]]
	run chat "${HELLO%\}},\"options\":{\"num_predict\":3}}"
	run jq -c 'select(.done) | [.done_reason, .eval_count]' <<<"$output"
	assert_output '["length",3]'
}

@test "fault status: Ollama and OpenAI error bodies; count limits it" {
	fake_control F '{"status":404,"count":1}'
	run chat "$HELLO" -w '\n%{http_code}'
	assert_output $'{"error":"model \\"m\\" not found, try pulling it first"}\n404'
	run chat "$HELLO" -w '\n%{http_code}'
	assert_line --index -1 200
	fake_control F '{"status":503,"error":"busy"}'
	run oai "$HELLO" -w '\n%{http_code}'
	assert_output $'{"error":{"message":"busy","type":"api_error","param":null,"code":null}}\n503'
	run oai "$HELLO" -w '\n%{http_code}'
	assert_line --index -1 503
}

@test "fault refuse: accepted then closed with no reply" {
	fake_control F '{"refuse":true}'
	run chat "$HELLO"
	assert_failure 52
}

@test "fault error_after: K chunks then an error line (Ollama) / error event (OpenAI)" {
	fake_control F '{"error_after":2,"error":"boom"}'
	run chat "$HELLO"
	assert_success
	assert_equal "${#lines[@]}" 3
	assert_line --index 2 '{"error":"boom"}'
	run oai '{"model":"m","stream":true,"messages":[]}'
	assert_line --index 2 'data: {"error":{"message":"boom","type":"api_error","param":null,"code":null}}'
	refute_output --partial '[DONE]'
}

@test "fault drop_after: clean end without done, or a cut chunked stream" {
	fake_control F '{"drop_after":3}'
	run chat "$HELLO"
	assert_success
	assert_equal "${#lines[@]}" 3
	refute_output --partial '"done":true'
	fake_control F '{"drop_after":3,"drop_mode":"abort"}'
	run chat "$HELLO"
	assert_failure 18
	fake_control F '{"drop_after":0,"drop_mode":"reset"}'
	run chat '{"model":"m","stream":true,"messages":[]}'
	assert_failure
}

@test "fault malformed_after: K chunks then a line that is not JSON" {
	fake_control F '{"malformed_after":1}'
	chat "$HELLO" >"$BATS_TEST_TMPDIR/o"
	run sed -n 1p "$BATS_TEST_TMPDIR/o"
	run jq -e .done <<<"$output"
	assert_output false
	run jq . "$BATS_TEST_TMPDIR/o"
	assert_failure
}

@test "faults split, coalesce, no_final_newline: same bytes reassembled" {
	chat "$HELLO" >"$BATS_TEST_TMPDIR/plain"
	oai '{"model":"m","stream":true,"messages":[]}' >"$BATS_TEST_TMPDIR/plain.sse"
	for f in '{"split":true,"split_bytes":7,"split_delay":0}' '{"coalesce":true}' '{"coalesce":3,"split":true,"split_bytes":50}'; do
		fake_reset F
		fake_control F "$f"
		chat "$HELLO" >"$BATS_TEST_TMPDIR/x"
		cmp "$BATS_TEST_TMPDIR/plain" "$BATS_TEST_TMPDIR/x"
		oai '{"model":"m","stream":true,"messages":[]}' >"$BATS_TEST_TMPDIR/x"
		cmp "$BATS_TEST_TMPDIR/plain.sse" "$BATS_TEST_TMPDIR/x"
	done
	fake_reset F
	fake_control F '{"no_final_newline":true}'
	chat "$HELLO" >"$BATS_TEST_TMPDIR/x"
	[[ $(tail -c 1 "$BATS_TEST_TMPDIR/x") == "}" ]]
	cmp <(cat "$BATS_TEST_TMPDIR/x"; echo) "$BATS_TEST_TMPDIR/plain"
	# split really fragments the stream: one HTTP chunk per 3 bytes
	fake_control F '{"no_final_newline":false,"split":true,"split_delay":0}'
	run curl -sS --raw "$F_URL/api/chat" -d "$HELLO"
	assert_line --index 0 $'3\r'
}

@test "faults stall_after and first_byte_delay: client times out; the log sees it leave" {
	fake_control F '{"stall_after":2,"stall_seconds":3}'
	run --separate-stderr chat "$HELLO" --max-time 0.5
	assert_failure 28
	assert_equal "${#lines[@]}" 2
	fake_control F '{"stall_after":null,"first_byte_delay":3}'
	run --separate-stderr chat "$HELLO" --max-time 0.5
	assert_failure 28
	[[ $stderr == *'with 0 bytes received'* ]]
	run fake_requests F
	run jq -c '[.completed, .client_gone]' <<<"$output"
	assert_output $'[false,true]\n[false,true]'
}

@test "hostile streams: flood, huge_line, trickle (for bench/hostile.sh)" {
	fake_control F '{"flood":2500}'
	run -0 bash -c "curl -sSN '$F_URL/api/chat' -d '$HELLO' | jq -s -c '[length, (map(select(.done == false).message.content) | add | length), .[-1].done]'"
	assert_output '[2501,2500,true]'
	fake_control F '{"flood":0,"huge_line":3000000}'
	run -0 bash -c "curl -sSN '$F_URL/api/chat' -d '$HELLO' | jq -s -c '[length, (.[0].message.content | length), .[-1].done]'"
	assert_output '[2,3000000,true]'
	fake_control F '{"huge_line":0,"trickle":0.1}'
	run --separate-stderr chat "$HELLO" --max-time 1
	assert_failure 28
	run jq -r 'select(.done == false) | .message.content' <<<"$output"
	assert_line --index 0 'fake '
	assert_line --index -1 '.'
	run fake_requests F
	run jq -c '[.answer[:7], .completed, .client_gone]' <<<"$output"
	assert_output $'["<flood:",true,false]\n["<huge_l",true,false]\n["fake an",false,true]'
}

@test "request log: start and end lines with body, headers, Authorization, counts" {
	oai '{"model":"m","messages":[{"role":"user","content":"key?"}]}' -H 'Authorization: Bearer sk-test' >/dev/null
	chat "$HELLO" >/dev/null
	run fake_count F
	assert_output 2
	run fake_requests F
	run jq -c '[.event, .path, .headers.authorization, .body.messages[-1].content, .status, .completed]' <<<"$output"
	assert_line --index 0 '["end","/v1/chat/completions","Bearer sk-test","key?",200,true]'
	assert_line --index 1 '["end","/api/chat",null,"hello there world",200,true]'
	run jq -c 'select(.path == "/api/chat") | .event' "$F_LOG"
	assert_output --partial $'"start"\n"end"'
}

@test "api_key: /v1 requires the bearer token" {
	fake_control F '{"api_key":"sk-x"}'
	run oai "$HELLO" -w ' %{http_code}'
	assert_output --partial '"type":"invalid_request_error"'
	assert_output --partial ' 401'
	run oai "$HELLO" -H 'Authorization: Bearer sk-x' -w ' %{http_code}'
	assert_output --partial ' 200'
}

@test "latency model: prefix cache, durations from prefill_tps and decode_tps" {
	fake_control F '{"prefill_tps":1000,"decode_tps":200,"answer_words":4}'
	long=$(printf 'word%.0s ' {1..200})
	first="{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"$long\"}]}"
	second="{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"$long\"},{\"role\":\"assistant\",\"content\":\"ok\"},{\"role\":\"user\",\"content\":\"more\"}]}"
	run chat "$first"
	run jq -c 'select(.done) | [.prompt_eval_count, .prompt_eval_duration, .eval_count, .eval_duration]' <<<"$output"
	assert_output '[257,257000000,4,20000000]'
	chat "$second" >/dev/null
	run fake_requests F
	run jq -c '[.prompt_tokens, .prefilled_tokens]' <<<"$output"
	assert_line --index 0 '[257,257]'
	assert_line --index 1 '[274,17]'
}

@test "num_ctx: silent truncation keeps the tail and reports the truncated count" {
	long=$(printf 'word%.0s ' {1..200})
	body="{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"$long\"}]}"
	fake_control F '{"num_ctx":100}'
	run chat "$body"
	run jq -c 'select(.done) | .prompt_eval_count' <<<"$output"
	assert_output 100
	run chat "${body%\}},\"options\":{\"num_ctx\":120}}"
	run jq -c 'select(.done) | .prompt_eval_count' <<<"$output"
	assert_output 120
	run fake_requests F
	run jq -c '[.prompt_tokens, .truncated]' <<<"$output"
	assert_output $'[100,true]\n[120,true]'
}

@test "gate: the first chunk arrives before the gate opens, the rest after" {
	gate=$BATS_TEST_TMPDIR/gate
	fake_control F "{\"gate\":\"$gate\"}"
	chat "$HELLO" >"$BATS_TEST_TMPDIR/o" &
	for ((i = 0; i < 100; i++)); do [[ -s $BATS_TEST_TMPDIR/o ]] && break; sleep 0.05; done
	run cat "$BATS_TEST_TMPDIR/o"
	assert_equal "${#lines[@]}" 1
	touch "$gate"
	wait $!
	run jq -s -c 'last | .done' "$BATS_TEST_TMPDIR/o"
	assert_output true
	run jq -r 'select(.event | startswith("gate") or . == "last_chunk") | .event' "$F_LOG"
	assert_output $'gate_wait\ngate_open\nlast_chunk'
}

@test "token_ratio: prompt counts, the answer's count, truncation and the prefix cache scale" {
	fake_control F '{"token_ratio":1.5}'
	run chat "$HELLO"
	# 83 characters: ceil(83 / 4 * 1.5) = 32, not 21.
	run jq -c 'select(.done) | .prompt_eval_count' <<<"$output"
	assert_output 32
	run content < <(chat "$HELLO")
	assert_output --regexp '\[32 tokens, [0-9a-f]{8}\]$'
	# Truncated to num_ctx in the engine's tokens: 200 characters kept.
	long=$(printf 'word%.0s ' {1..200})
	fake_reset F
	fake_control F '{"token_ratio":2,"num_ctx":100}'
	run chat "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"$long\"}]}"
	run jq -c 'select(.done) | .prompt_eval_count' <<<"$output"
	assert_output 100
	# The prefix cache counts the same: twice the tokens of ratio 1 ([257,257], [274,17]).
	fake_reset F
	fake_control F '{"token_ratio":2}'
	chat "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"$long\"}]}" >/dev/null
	chat "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"$long\"},{\"role\":\"assistant\",\"content\":\"ok\"},{\"role\":\"user\",\"content\":\"more\"}]}" >/dev/null
	run fake_requests F
	run jq -c '[.prompt_tokens, .prefilled_tokens, .truncated]' <<<"$output"
	assert_output $'[514,514,false]\n[548,34,false]'
	# A ratio must be more than 0.
	run curl -sS "$F_URL/_control" -d '{"token_ratio":0}' -w ' %{http_code}'
	assert_output --partial ' 400'
}

@test "ctx_lengths: /api/show's context length per model, ctx_length for the others" {
	fake_control F '{"ctx_length":8192,"ctx_lengths":{"small:1b":2048}}'
	run curl -sS "$F_URL/api/show" -d '{"model":"small:1b"}'
	run jq '.model_info["qwen2.context_length"]' <<<"$output"
	assert_output 2048
	run curl -sS "$F_URL/api/show" -d '{"name":"other:7b"}'
	run jq '.model_info["qwen2.context_length"]' <<<"$output"
	assert_output 8192
	fake_control F '{"models":["other:7b"]}'
	run curl -sS "$F_URL/api/show" -d '{"model":"small:1b"}' -w ' %{http_code}'
	assert_output --partial ' 404'
}

@test "slots: at most N chat requests at once; the others queue, sending nothing, and log queued_s" {
	# Each reply takes about 0.4 s (8 words at 20 a second).
	fake_control F '{"slots":1,"decode_tps":20,"answer_words":8}'
	for i in 1 2 3; do
		chat "$HELLO" -o /dev/null -w '%{time_starttransfer}\n' >"$BATS_TEST_TMPDIR/ttfb$i" &
	done
	wait
	run fake_requests F
	assert_equal "${#lines[@]}" 3
	# One after the other: the first waited nothing, the others about
	# 0.4 s and 0.8 s, and no reply began before its wait was over.
	run jq -s -c '[.[].queued_s] | sort | [.[0] < 0.1, .[1] > 0.3, .[2] > 0.7]' <<<"$output"
	assert_output '[true,true,true]'
	run bash -c "cat '$BATS_TEST_TMPDIR'/ttfb* | sort -n | tail -n 1"
	awk -v t="$output" 'BEGIN { exit !(t > 0.7) }' || fail "the last reply began after $output s"
	# A client that leaves while queued takes no slot.
	fake_reset F
	fake_control F '{"slots":1,"decode_tps":20,"answer_words":8}'
	chat "$HELLO" -o /dev/null &
	sleep 0.1
	run chat "$HELLO" --max-time 0.2
	assert_failure 28
	wait
	chat "$HELLO" -o /dev/null
	run fake_requests F
	run jq -c '[.client_gone, .queued_s < 0.1]' <<<"$output"
	assert_output $'[false,true]\n[true,false]\n[false,true]'
	# slots 0, the default: no one waits.
	fake_reset F
	fake_control F '{"decode_tps":20,"answer_words":8}'
	for i in 1 2 3; do chat "$HELLO" -o /dev/null & done
	wait
	run jq -s -c '[.[].queued_s] | max' < <(fake_requests F)
	assert_output 0
}

@test "--slots N sets slots at start" {
	fake_start S --slots 2
	run curl -sS "$S_URL/_control" -d '{}'
	fake_stop S || true
	run jq -c '[.slots, .token_ratio]' <<<"$output"
	assert_output '[2,1]'
}
