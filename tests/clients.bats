#!/usr/bin/env bats
# llm-serve against real clients from npm (tests/npm, pinned, installed by
# `make deps`): the `ollama` package (Cline 3.x), the `openai` package through
# /v1, and the AI SDK's streamText with `ollama-ai-provider-v2` (Cline 4).
# Each answers the same text as llm-route against the same fakes.

load lib/common
load lib/serve

NPM=$TESTS/npm
B=$CORPUS/swe-agent__warmup.json	# ~4800 tokens: condensed on GPU1

setup_file() {
	fake_start GPU0
	fake_start GPU1
	serve_start
}

teardown_file() {
	serve_stop
	fake_stop GPU0
	fake_stop GPU1
}

# The clients must be installed, at the versions package.json pins: a missing
# or stale tests/npm/node_modules fails every test (never a skip).
npm_ready() {
	local dep want have
	command -v node >/dev/null || fail "node is not installed: run 'make deps'"
	[[ -d $NPM/node_modules ]] ||
		fail "$NPM/node_modules is missing: run 'make npm-deps' (or 'make deps')"
	for dep in $(jq -r '.dependencies | keys[]' "$NPM/package.json"); do
		want=$(jq -r --arg d "$dep" '.dependencies[$d]' "$NPM/package.json")
		have=$(jq -r .version "$NPM/node_modules/$dep/package.json" 2>/dev/null)
		[[ $have == "$want" ]] ||
			fail "npm package $dep is ${have:-not installed}, package.json pins $want: run 'make npm-deps'"
	done
}

setup() {
	npm_ready
	fake_reset GPU0
	fake_reset GPU1
}

# client SCRIPT ARGS... < chat: run tests/npm/SCRIPT with node.
client() { node "$NPM/$1" "${@:2}"; }

# What llm-route answers for the chat on stdin, against the same fakes.
route() { llm-route --gpu0-url "$GPU0_URL" --gpu1-url "$GPU1_URL"; }

# A multi-turn chat with a system message.
turns() {
	jq -nc '{model: "qwen2.5-coder:7b", messages: [
		{role: "system", content: "You are terse."},
		{role: "user", content: "Name a colour"},
		{role: "assistant", content: "Blue."},
		{role: "user", content: "And another one, please, with a reason"}]}'
}

# The answering request GPU0 had since the last reset: "prompt_tokens eval_count".
gpu0_usage() {
	fake_requests GPU0 | jq -rs 'map(select(.path == "/api/chat")) | last
		| "\(.prompt_tokens) \(.eval_count)"'
}

@test "ollama: a streamed chat completes with the same text as llm-route and one final done:true" {
	for c in "$(chat)" "$(turns)" "$(jq -c . "$B")"; do
		fake_reset GPU0
		run --separate-stderr client ollama-chat.mjs "$SERVE_URL" <<<"$c"
		assert_success
		assert_equal "$stderr" ""
		assert_equal "$(jq -c '[.done, .last_done, .done_reason, .bad_parts]' <<<"$output")" '[1,true,"stop",0]'
		(($(jq .parts <<<"$output") > 2)) || fail "not streamed: $output"
		assert_equal "$(jq -r '"\(.prompt_eval_count) \(.eval_count)"' <<<"$output")" "$(gpu0_usage)"
		assert_equal "$(jq -r .text <<<"$output")" "$(route <<<"$c")"
	done
	# The corpus chat was condensed on GPU1 first.
	(($(fake_count GPU1) > 0)) || fail "GPU1 condensed nothing"
}

@test "ollama: stream:false gets one object with done:true" {
	run --separate-stderr client ollama-chat.mjs "$SERVE_URL" --no-stream < <(turns)
	assert_success
	assert_equal "$(jq -c '[.parts, .done, .last_done, .done_reason, .bad_parts]' <<<"$output")" '[1,1,true,"stop",0]'
	assert_equal "$(jq -r .text <<<"$output")" "$(turns | route)"
}

@test "ollama: an upstream failure throws a clean error carrying the upstream text" {
	# GPU0 refuses the chat (after llm-serve's first empty chunk went out).
	fake_control GPU0 '{"status":500,"count":1}'
	run --separate-stderr client ollama-chat.mjs "$SERVE_URL" < <(chat)
	assert_fails 1 '^(Response)?Error: .*llama runner process has terminated: exit status 2$'
	# GPU0 fails in the middle of the answer.
	fake_reset GPU0
	fake_control GPU0 '{"error_after":2,"error":"CUDA error: out of memory","count":1}'
	run --separate-stderr client ollama-chat.mjs "$SERVE_URL" < <(chat)
	assert_fails 1 '^(Response)?Error: .*CUDA error: out of memory$'
	# Not streamed: the HTTP status and the error, thrown as a ResponseError.
	fake_reset GPU0
	fake_control GPU0 '{"status":500,"error":"CUDA error: out of memory","count":1}'
	run --separate-stderr client ollama-chat.mjs "$SERVE_URL" --no-stream < <(chat)
	assert_fails 1 '^ResponseError: .*CUDA error: out of memory$'
	# And the next chat is fine.
	run --separate-stderr client ollama-chat.mjs "$SERVE_URL" < <(chat)
	assert_success
	assert_equal "$(jq -r .text <<<"$output")" "$(chat | route)"
}

@test "openai: a streamed chat through /v1 completes, with its usage" {
	for c in "$(chat)" "$(turns)"; do
		fake_reset GPU0
		run --separate-stderr client openai-chat.mjs "$SERVE_URL/v1" --stream <<<"$c"
		assert_success
		assert_equal "$stderr" ""
		assert_equal "$(jq -c '[.object, .finish_reason]' <<<"$output")" '["chat.completion.chunk","stop"]'
		(($(jq .chunks <<<"$output") > 2)) || fail "not streamed: $output"
		assert_equal "$(jq -r '.usage | "\(.prompt_tokens) \(.completion_tokens)"' <<<"$output")" "$(gpu0_usage)"
		assert_equal "$(jq -r .text <<<"$output")" "$(route <<<"$c")"
	done
}

@test "openai: a non-streamed chat through /v1 completes, with its usage" {
	for c in "$(chat)" "$(turns)"; do
		fake_reset GPU0
		run --separate-stderr client openai-chat.mjs "$SERVE_URL/v1" <<<"$c"
		assert_success
		assert_equal "$stderr" ""
		assert_equal "$(jq -c '[.object, .finish_reason, .chunks]' <<<"$output")" '["chat.completion","stop",0]'
		assert_equal "$(jq -r '.usage | "\(.prompt_tokens) \(.completion_tokens)"' <<<"$output")" "$(gpu0_usage)"
		assert_equal "$(jq -r .text <<<"$output")" "$(route <<<"$c")"
	done
}

@test "openai: an upstream failure throws an error carrying the upstream text" {
	fake_control GPU0 '{"status":500,"error":"CUDA error: out of memory","count":1}'
	run --separate-stderr client openai-chat.mjs "$SERVE_URL/v1" < <(chat)
	assert_fails 1 '^[A-Za-z]*Error: 500 .*CUDA error: out of memory$'
	fake_reset GPU0
	fake_control GPU0 '{"error_after":2,"error":"CUDA error: out of memory","count":1}'
	run --separate-stderr client openai-chat.mjs "$SERVE_URL/v1" --stream < <(chat)
	assert_fails 1 '^[A-Za-z]*Error: .*CUDA error: out of memory$'
}

@test "ai-sdk: streamText with ollama-ai-provider-v2 completes and reports its usage" {
	for c in "$(chat)" "$(turns)"; do
		fake_reset GPU0
		run --separate-stderr client ai-sdk-chat.mjs "$SERVE_URL/api" <<<"$c"
		assert_success
		assert_equal "$stderr" ""
		assert_equal "$(jq -r .finish_reason <<<"$output")" stop
		assert_equal "$(jq -r '.usage | "\(.inputTokens) \(.outputTokens)"' <<<"$output")" "$(gpu0_usage)"
		assert_equal "$(jq -r '.usage | .inputTokens + .outputTokens == .totalTokens' <<<"$output")" true
		assert_equal "$(jq -r .text <<<"$output")" "$(route <<<"$c")"
	done
}
