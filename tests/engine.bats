#!/usr/bin/env bats
# Behaving well against real engines (issue 11): --jobs never exceeds the
# helper's parallel setting, so that no request waits in the server's
# queue with its first-byte timer running (the helper here serves one
# request at a time, as Ollama with OLLAMA_NUM_PARALLEL=1, and logs how
# long each request waited); role URLs are checked whole.

load lib/common
load lib/serve

BIG=$CORPUS/mini-swe-agent__django__django-12125.json	# 189 messages, ~55K tokens
C=$CORPUS/swe-agent__pydicom__pydicom-1458.json		# ~15000 tokens: map-reduce

setup_file() {
	fake_start GPU0
	fake_start GPU1 --slots 1
}

teardown_file() {
	fake_stop_all
}

setup() {
	fake_reset_all
	# About 0.15 s a summary (15 words at 100 a second): requests sent
	# together overlap, and one queued behind another waits that long.
	fake_control GPU1 '{"decode_tps": 100}'
	export LLM_GPU0_URL=$GPU0_URL LLM_GPU1_URL=$GPU1_URL
	export XDG_CACHE_HOME=$BATS_TEST_TMPDIR/cache
	export XDG_CONFIG_HOME=$BATS_TEST_TMPDIR/config
}

teardown() {
	serve_stop || true
}

turn() {	# turn N: the conversation's first N messages
	jq -c --argjson n "$1" '.messages |= .[:$n]' "$BIG"
}

# The longest a request to GPU1 waited in its queue, in seconds; and how
# many of them there were, all answered in full.
queued_max() { fake_requests GPU1 | jq -s '[.[].queued_s] | max'; }
answered() { fake_requests GPU1 | jq -s '[.[] | select(.completed and .status == 200)] | length'; }

# A config file with gpu1_parallel = $1.
parallel_config() {
	mkdir -p "$XDG_CONFIG_HOME/llm-route"
	printf 'gpu1_parallel = %s\n' "$1" >"$XDG_CONFIG_HOME/llm-route/config"
}

@test "llm-mapreduce --jobs 2, gpu1_parallel 1 (the default): one request at a time, none queued, none fell back" {
	turn 100 >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr llm-mapreduce -v --jobs 2 --no-cache <"$BATS_TEST_TMPDIR/in"
	assert_success
	# The cap is logged once, because --jobs asked for more.
	assert_equal "$(grep -c ' llm-mapreduce: jobs asked=2 parallel=1$' <<<"$stderr")" 1
	refute [ "$(grep -c 'warning\|extractive' <<<"$stderr")" -gt 0 ]
	n=$(fake_count GPU1)
	(( n >= 7 )) || fail "only $n requests to GPU1"
	assert_equal "$(answered)" "$n"
	# No request waited in the helper's queue.
	awk -v q="$(queued_max)" 'BEGIN { exit !(q < 0.05) }' ||
		fail "a request waited $(queued_max) s in GPU1's queue"
	# Every chunk's summary is the helper's.
	assert_equal "$(grep -c ' chunk index=.* how=helper ' <<<"$stderr")" \
	    "$(grep -c ' chunk index=' <<<"$stderr")"
	# The default --jobs (2) is capped too, without a word.
	fake_reset GPU1
	fake_control GPU1 '{"decode_tps": 100}'
	run --separate-stderr llm-mapreduce -v --no-cache <"$BATS_TEST_TMPDIR/in"
	assert_success
	refute_output --partial 'jobs asked='
	[[ $stderr != *'jobs asked='* ]] || fail "$stderr"
	awk -v q="$(queued_max)" 'BEGIN { exit !(q < 0.05) }' ||
		fail "a request waited $(queued_max) s in GPU1's queue"
}

@test "llm-mapreduce --jobs 2, gpu1_parallel 2 (config file) against a one-slot helper: requests do queue" {
	parallel_config 2
	turn 100 >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr llm-mapreduce -v --jobs 2 --no-cache <"$BATS_TEST_TMPDIR/in"
	assert_success
	[[ $stderr != *'jobs asked='* ]] || fail "$stderr"
	awk -v q="$(queued_max)" 'BEGIN { exit !(q > 0.08) }' ||
		fail "no request waited in GPU1's queue (at most $(queued_max) s)"
	# --jobs still bounds it: --jobs 3 with parallel 2 is 2, logged.
	run --separate-stderr llm-mapreduce -v --jobs 3 --no-cache <"$BATS_TEST_TMPDIR/in"
	assert_success
	assert_equal "$(grep -c ' jobs asked=3 parallel=2$' <<<"$stderr")" 1
}

@test "llm-route --jobs 2: capped by gpu1_parallel; --set gpu1_parallel=2 lets two in flight" {
	run --separate-stderr llm-route -v --no-cache --jobs 2 <"$C"
	assert_success
	assert_equal "$(grep -c ' llm-route: jobs asked=2 parallel=1$' <<<"$stderr")" 1
	(( $(fake_count GPU1) >= 3 )) || fail "$(fake_count GPU1) requests to GPU1"
	assert_equal "$(answered)" "$(fake_count GPU1)"
	awk -v q="$(queued_max)" 'BEGIN { exit !(q < 0.05) }' ||
		fail "a request waited $(queued_max) s in GPU1's queue"
	fake_reset GPU1
	fake_control GPU1 '{"decode_tps": 100}'
	run --separate-stderr llm-route -v --no-cache --jobs 2 --set gpu1_parallel=2 <"$C"
	assert_success
	[[ $stderr != *'jobs asked='* ]] || fail "$stderr"
	awk -v q="$(queued_max)" 'BEGIN { exit !(q > 0.08) }' ||
		fail "no request waited in GPU1's queue (at most $(queued_max) s)"
}

@test "llm-serve --jobs 2: a chat's chunks go to a one-slot helper one at a time" {
	serve_start --jobs 2 --no-prefetch
	jq -c '.stream = false' "$C" >"$BATS_TEST_TMPDIR/in"
	run curl -sS -H 'Content-Type: application/json' --data-binary @"$BATS_TEST_TMPDIR/in" "$SERVE_URL/api/chat"
	assert_success
	run jq -r '.message.content' <<<"$output"
	assert_output --partial 'fake answer from'
	(( $(fake_count GPU1) >= 3 )) || fail "$(fake_count GPU1) requests to GPU1"
	assert_equal "$(answered)" "$(fake_count GPU1)"
	awk -v q="$(queued_max)" 'BEGIN { exit !(q < 0.05) }' ||
		fail "a request waited $(queued_max) s in GPU1's queue"
}

@test "gpu0_parallel and gpu1_parallel: --print-config shows them; at least 1" {
	run --separate-stderr llm-route --print-config
	assert_line $'gpu0_parallel = 1\t# default'
	assert_line $'gpu1_parallel = 1\t# default'
	parallel_config 4
	run --separate-stderr llm-route --print-config
	assert_line $'gpu1_parallel = 4\t# '"$XDG_CONFIG_HOME/llm-route/config:1"
	run --separate-stderr llm-route --set gpu1_parallel=0 --print-config
	assert_equal "$status" 2
	assert_equal "${stderr_lines[0]}" "llm-route: --set: bad value '0' for gpu1_parallel: not a number from 1 to 1000"
	parallel_config x
	run --separate-stderr llm-mapreduce --dry-run </dev/null
	assert_fails 2 "^llm-mapreduce: $XDG_CONFIG_HOME/llm-route/config:1: bad value 'x' for gpu1_parallel: not a number from 1 to 1000\$"
}

@test "a role URL with ':' and no port is a configuration error, not port 80" {
	run --separate-stderr env LLM_GPU1_URL=http://127.0.0.1: llm-route <<<"$(chat)"
	assert_fails 2 "^llm-route: LLM_GPU1_URL: bad value 'http://127\.0\.0\.1:' for gpu1_url: expected a port number after ':'\$"
	run --separate-stderr llm-route --gpu0-url "$GPU0_URL,http://127.0.0.1:/" <<<"$(chat)"
	assert_equal "$status" 2
	assert_equal "${stderr_lines[0]}" "llm-route: --gpu0-url: bad value '$GPU0_URL,http://127.0.0.1:/' for gpu0_url: expected a port number after ':'"
	run --separate-stderr llm-generate --url 'http://[::1]:' <<<"$(chat)"
	assert_equal "$status" 2
	assert_equal "${stderr_lines[0]}" "llm-generate: --url: bad value 'http://[::1]:' for gpu0_url: expected a port number after ':'"
	run --separate-stderr env -u LLM_GPU0_URL OLLAMA_HOST=http://localhost: llm-generate <<<"$(chat)"
	assert_fails 2 "^llm-generate: OLLAMA_HOST: bad value 'http://localhost:' for gpu0_url: expected a port number after ':'\$"
	mkdir -p "$XDG_CONFIG_HOME/llm-route"
	printf '# GPU1\ngpu1_url = http://10.0.0.2:\n' >"$XDG_CONFIG_HOME/llm-route/config"
	run --separate-stderr llm-summarize <<<"$(chat)"
	assert_fails 2 "^llm-summarize: $XDG_CONFIG_HOME/llm-route/config:2: bad value 'http://10\.0\.0\.2:' for gpu1_url: expected a port number after ':'\$"
	# Nothing was asked.
	assert_equal "$(fake_count GPU0)" 0
	assert_equal "$(fake_count GPU1)" 0
	rm "$XDG_CONFIG_HOME/llm-route/config"
	# A port out of range or not a number, and no host, are refused too;
	# a URL without a port, with a path, or IPv6 with a port is fine.
	for u in http://h:0 http://h:65536 http://h:80x http:// 'http://:8080'; do
		run --separate-stderr llm-route --gpu1-url "$u" --print-config
		assert_equal "$status" 2
	done
	for u in http://localhost http://h:8080/v1 'http://[::1]:11435' 'https://user:pw@h:443/x'; do
		run --separate-stderr llm-route --gpu1-url "$u" --print-config
		assert_success
	done
}
