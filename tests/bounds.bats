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

@test "--max-input: no more than the limit and one byte is read, then status 3 and one line" {
	head -c 5000 /dev/zero | tr '\0' x >"$BATS_TEST_TMPDIR/in"
	for p in llm-estimate llm-summarize llm-mapreduce llm-generate llm-route; do
		# What the program left unread of the file it shares with cat
		# (not wc -c alone: it counts from the file size, roughly).
		{ st=0; "$p" --max-input 1000 2>"$BATS_TEST_TMPDIR/err" || st=$?; echo "status $st"; cat | wc -c; } \
		    <"$BATS_TEST_TMPDIR/in" >"$BATS_TEST_TMPDIR/out"
		assert_equal "$(paste -sd ' ' "$BATS_TEST_TMPDIR/out")" "status 3 3999"
		assert_equal "$(cat "$BATS_TEST_TMPDIR/err")" "$p: input larger than 1000 bytes (see --max-input)"
	done
	# 200 MB against a 16 MB limit: 16 MB and a byte read, memory near it.
	truncate -s 200M "$BATS_TEST_TMPDIR/big"
	{ llm-estimate --max-input 16M 2>/dev/null || true; cat | wc -c; } <"$BATS_TEST_TMPDIR/big" >"$BATS_TEST_TMPDIR/out"
	assert_equal "$(cat "$BATS_TEST_TMPDIR/out")" "$((200 * 1048576 - 16 * 1048576 - 1))"
	if [[ -x /usr/bin/time ]]; then	# a generous bound, not a measure
		/usr/bin/time -f %M -o "$BATS_TEST_TMPDIR/rss" llm-estimate --max-input 16M \
		    <"$BATS_TEST_TMPDIR/big" 2>/dev/null || true
		rss=$(tail -n 1 "$BATS_TEST_TMPDIR/rss")	# after "Command exited..."
		(( rss < 3 * 16 * 1024 )) || fail "peak RSS $rss kB"
	fi
}
