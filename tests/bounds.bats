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
	fake_stop_all
}

setup() {
	fake_reset_all
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
	if [[ -x /usr/bin/time ]] && ! instrumented; then	# a generous bound
		/usr/bin/time -f %M -o "$BATS_TEST_TMPDIR/rss" llm-estimate --max-input 16M \
		    <"$BATS_TEST_TMPDIR/big" 2>/dev/null || true
		rss=$(tail -n 1 "$BATS_TEST_TMPDIR/rss")	# after "Command exited..."
		(( rss < 3 * 16 * 1024 )) || fail "peak RSS $rss kB"
	fi
}

@test "llm-generate: a chat near --max-input costs under 4 times the limit in memory" {
	[[ -x /usr/bin/time ]] || skip "no /usr/bin/time"
	# A 15 MB one-line message against a 16 MB limit, and no server: the
	# request is built (the peak) before connecting.  The input's bytes,
	# kept after parsing, were a copy more: 4.4 times the input.
	{ printf '{"model":"m","messages":[{"role":"user","content":"'
	  head -c 11M /dev/urandom | base64 -w 0
	  printf '"}]}'; } >"$BATS_TEST_TMPDIR/in"
	run /usr/bin/time -f %M -o "$BATS_TEST_TMPDIR/rss" llm-generate --max-input 16M \
	    --url http://127.0.0.1:1 <"$BATS_TEST_TMPDIR/in"
	assert_equal "$status" 4
	instrumented && return 0	# its memory is not the program's
	rss=$(tail -n 1 "$BATS_TEST_TMPDIR/rss")
	(( rss < 4 * 16 * 1024 )) || fail "peak RSS $rss kB"
}

@test "--max-chunks N: a chat of more chunks asks the helper N times at most; the older chunks extractive" {
	C=$CORPUS/swe-agent__pydicom__pydicom-1458.json	# 27 closed chunks of 500 tokens
	small=(--chunk-tokens 500 --chunk-target 100)
	run --separate-stderr llm-mapreduce -v --no-cache "${small[@]}" --max-chunks 5 <"$C"
	assert_success
	assert_equal "$(fake_count GPU1)" 5
	[[ $stderr == *" max_chunks chunks=27 max_chunks=5 older=22"* ]] || fail "$stderr"
	assert_equal "$(grep -c ' how=extractive ' <<<"$stderr")" 22
	# Without the bound: each chunk and the merges.
	fake_reset GPU1
	llm-mapreduce --no-cache "${small[@]}" <"$C" >/dev/null
	(( $(fake_count GPU1) > 27 ))
	# With the cache, the newest summaries are not asked again, and
	# what was left to the model-free way is not asked later either.
	fake_reset GPU1
	llm-mapreduce "${small[@]}" --max-chunks 5 <"$C" >/dev/null
	assert_equal "$(fake_count GPU1)" 5
	llm-mapreduce "${small[@]}" --max-chunks 5 <"$C" >/dev/null
	assert_equal "$(fake_count GPU1)" 5
	# llm-route in band C, and the configuration key (the flag wins).
	fake_reset GPU1
	run --separate-stderr llm-route --no-cache "${small[@]}" --max-chunks 4 <"$C"
	assert_success
	assert_equal "$(fake_count GPU1)" 4
	mkdir -p "$XDG_CONFIG_HOME/llm-route"
	echo 'max_chunks = 3' >"$XDG_CONFIG_HOME/llm-route/config"
	fake_reset GPU1
	llm-route --no-cache "${small[@]}" <"$C" >/dev/null
	assert_equal "$(fake_count GPU1)" 3
	fake_reset GPU1
	llm-mapreduce --no-cache "${small[@]}" <"$C" >/dev/null
	assert_equal "$(fake_count GPU1)" 3
	llm-mapreduce --no-cache "${small[@]}" --max-chunks 2 <"$C" >/dev/null
	assert_equal "$(fake_count GPU1)" 5
	assert_equal "$(llm-route --max-chunks 7 --print-config | grep '^max_chunks')" "$(printf 'max_chunks = 7\t# --max-chunks')"
	assert_equal "$(llm-route --print-config | grep '^max_chunks')" "$(printf 'max_chunks = 3\t# %s/llm-route/config:1' "$XDG_CONFIG_HOME")"
	# At least one.
	run --separate-stderr llm-mapreduce --max-chunks 0 <"$C"
	assert_equal "$status" 2
	assert_equal "${stderr_lines[0]}" "llm-mapreduce: --max-chunks: bad value '0': out of range"
	echo 'max_chunks = 0' >"$XDG_CONFIG_HOME/llm-route/config"
	run --separate-stderr llm-route <"$C"
	assert_fails 2 "^llm-route: $XDG_CONFIG_HOME/llm-route/config:1: max_chunks must be at least 1\$"
}
