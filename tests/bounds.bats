#!/usr/bin/env bats
# Bounds on what one run may cost: /api/show under the role's timeouts and
# key, a timed-out lookup remembered; the chunks one chat may send the
# helper (--max-chunks); the input read no further than --max-input.

load lib/common

A=$CORPUS/swe-agent__function_calling_simple.json	# ~1900 tokens: direct

setup_file() {
	fake_start GPU0
	fake_start GPU1
}

teardown_file() {
	fake_stop GPU0
	fake_stop GPU1
}

setup() {
	fake_reset GPU0
	fake_reset GPU1
	export LLM_GPU0_URL=$GPU0_URL LLM_GPU1_URL=$GPU1_URL
	export XDG_CACHE_HOME=$BATS_TEST_TMPDIR/cache XDG_CONFIG_HOME=$BATS_TEST_TMPDIR/config
}

shows() {	# /api/show requests NAME had since the last reset
	fake_requests "$1" --all | jq -s 'map(select(.path == "/api/show")) | length'
}

@test "/api/show that never answers: given up on by GPU0's timeouts, then not asked again for 5 minutes" {
	fake_control GPU0 '{"show_delay": 60}'
	run --separate-stderr llm-route --set gpu0_first_byte_timeout=1 --set gpu0_timeout=2 <"$A"
	assert_fails 5 "^llm-route: GPU0 $GPU0_URL/api/show: timed out \(first byte, after [0-9.]+ s\)$"
	assert_equal "$(shows GPU0)" 1
	assert_equal "$(fake_requests GPU0 --all | jq -r .client_gone)" true
	# The next run does not wait on it again: the window is unknown, the
	# chat is answered.
	run --separate-stderr llm-route --set gpu0_first_byte_timeout=1 --set gpu0_timeout=2 <"$A"
	assert_success
	assert_output "$(llm-generate <"$A")"
	[[ ${stderr_lines[0]} =~ ^llm-route:\ GPU0\'s\ /api/show\ timed\ out\ [0-9]+\ s\ ago:\ the\ model\'s\ context\ window\ is\ unknown\ \(asked\ again\ after\ 5\ minutes\)$ ]] || fail "$stderr"
	assert_equal "$(shows GPU0)" 1
	# The total timeout bounds it too; without a cache nothing is
	# remembered.
	run --separate-stderr llm-route --no-cache --set gpu0_first_byte_timeout=60 --set gpu0_timeout=1 <"$A"
	assert_fails 5 "^llm-route: GPU0 $GPU0_URL/api/show: not done within 1.0 s \(timeout\)$"
	assert_equal "$(shows GPU0)" 2
}

@test "/api/show fails over to the role's next URL and carries its key" {
	run --separate-stderr env LLM_GPU0_API_KEY=sk-show llm-route --gpu0-url "http://127.0.0.1:1,$GPU0_URL" <"$A"
	assert_success
	assert_equal "$(fake_requests GPU0 --all | jq -r 'select(.path == "/api/show") | .headers.authorization')" "Bearer sk-show"
	# GPU1's too.
	run --separate-stderr env LLM_GPU1_API_KEY=sk-help llm-mapreduce --no-cache <"$A"
	assert_success
	assert_equal "$(fake_requests GPU1 --all | jq -r 'select(.path == "/api/show") | .headers.authorization')" "Bearer sk-help"
}
