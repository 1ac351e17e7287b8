#!/usr/bin/env bats
# llm-mapreduce (strategy C): chunk stability, concurrency, the cache
# (hits, growth by one turn, corruption, sharing, the cap), per-chunk
# fallback, progress, and bad input.

load lib/common

BIG=$CORPUS/mini-swe-agent__django__django-12125.json	# 189 messages, ~55K tokens

setup_file() {
	fake_start GPU1
}

teardown_file() {
	fake_stop GPU1
}

setup() {
	fake_reset GPU1
	export LLM_GPU1_URL=$GPU1_URL
	export XDG_CACHE_HOME=$BATS_TEST_TMPDIR/cache
}

turn() {	# turn N: the conversation's first N messages
	jq -c --argjson n "$1" '.messages |= .[:$n]' "$BIG"
}

closed_rows() {	# the closed chunks of a dry run
	llm-mapreduce --dry-run --no-cache | awk -F'\t' '$4 == "closed"'
}

@test "every corpus file, extractive and with the fake helper: the invariants hold" {
	for f in "$CORPUS"/*.json; do
		for mode in --extractive --no-cache; do
			llm-mapreduce $mode -v <"$f" >"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err" ||
				fail "$f $mode: status $?"
			run python3 "$TESTS/lib/check_condensed.py" "$f" "$BATS_TEST_TMPDIR/out" \
				"$BATS_TEST_TMPDIR/err" 1000 500 4 mapreduce
			assert_success
			assert_output ""
		done
	done
}

@test "--dry-run lists the chunks, asks nothing" {
	run --separate-stderr llm-mapreduce --dry-run <"$BIG"
	assert_success
	assert_equal "${lines[0]}" "$(printf 'chunk\tmessages\ttokens\tstate\tcache')"
	assert_equal "${lines[1]}" "$(printf '1\t2-6\t2702\tclosed\tmiss')"
	assert_equal "$(tail -n 1 <<<"$output" | cut -f 4,5)" "$(printf 'open\t-')"
	# No chunk over the limit; chunks follow each other without a gap.
	awk -F'\t' 'NR > 1 && $3 > 3000 { exit 1 }' <<<"$output"
	assert_equal "$(fake_count GPU1)" 0
	run --separate-stderr llm-mapreduce --dry-run --chunk-tokens 1000 <"$BIG"
	awk -F'\t' 'NR > 1 && $3 > 1000 { exit 1 }' <<<"$output"
	(( ${#lines[@]} > 40 ))
}

@test "chunks are stable: a grown conversation keeps its earlier chunks and its output prefix" {
	a=$(turn 120 | closed_rows)
	b=$(turn 150 | closed_rows)
	[[ $b == "$a"* ]] || fail "the chunks of turn 120 are not a prefix of those of turn 150"
	# Two turns whose closed chunks are the same give the same block.
	n=$(turn 120 | closed_rows | wc -l)
	for t in 121 122 123 124; do
		[[ $(turn $t | closed_rows | wc -l) == "$n" ]] && last=$t
	done
	turn 120 | llm-mapreduce >"$BATS_TEST_TMPDIR/o1"
	turn "$last" | llm-mapreduce >"$BATS_TEST_TMPDIR/o2"
	assert_equal "$(jq -c '.messages[0]' "$BATS_TEST_TMPDIR/o2")" "$(jq -c '.messages[0]' "$BATS_TEST_TMPDIR/o1")"
}

@test "an oversized message is cut on paragraph boundaries, not inside a code block" {
	big=$(python3 -c '
para = " ".join(["word%d" % i for i in range(300)])
code = "```\n" + "\n".join(["x = %d" % i for i in range(90)]) + "\n```"
print("\n\n".join([para, code, para, para, code, para]))')
	jq -nc --arg b "$big" '{messages: [{role: "system", content: "s"}, {role: "user", content: $b},
		{role: "assistant", content: "ok"}, {role: "user", content: "next"}, {role: "assistant", content: "a"},
		{role: "user", content: "b"}, {role: "assistant", content: "c"}, {role: "user", content: "d"}]}' >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr llm-mapreduce --dry-run --chunk-tokens 1200 <"$BATS_TEST_TMPDIR/in"
	assert_success
	[[ $output == *$'\t2 (part 1 of '* ]] || fail "$output"
	llm-mapreduce --chunk-tokens 1200 --no-cache <"$BATS_TEST_TMPDIR/in" >/dev/null
	# Each piece sent to the helper holds whole code blocks.
	run fake_requests GPU1
	while IFS= read -r r; do
		n=$(jq -r '.body.messages[1].content' <<<"$r" | grep -c '^```' || true)
		(( n % 2 == 0 )) || fail "a piece cuts a code block: $n fences"
	done <<<"$output"
}

@test "--jobs N: N helper requests overlap, the output keeps chunk order" {
	fake_control GPU1 '{"decode_tps": 40, "prefill_tps": 20000}'
	turn 100 >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr llm-mapreduce --jobs 3 --no-cache <"$BATS_TEST_TMPDIR/in"
	assert_success
	# The most requests in flight at once, from the fake's log.
	max=$(fake_requests GPU1 | jq -s '[.[] | {t: .t_start, d: 1}, {t: .t_end, d: -1}]
		| sort_by(.t, .d) | reduce .[] as $e ({n: 0, max: 0}; .n += $e.d | .max = ([.max, .n] | max)) | .max')
	assert_equal "$max" 3
	starts=$(jq -r '.messages[0].content' <<<"$output" | grep -o '^Messages [0-9]*' | cut -d' ' -f2 | paste -sd ' ')
	assert_equal "$starts" "$(tr ' ' '\n' <<<"$starts" | sort -n | paste -sd ' ')"
	(( $(wc -w <<<"$starts") >= 6 ))
	fake_reset GPU1
	fake_control GPU1 '{"decode_tps": 40}'
	run --separate-stderr llm-mapreduce --jobs 1 --no-cache <"$BATS_TEST_TMPDIR/in"
	max=$(fake_requests GPU1 | jq -s '[.[] | {t: .t_start, d: 1}, {t: .t_end, d: -1}]
		| sort_by(.t, .d) | reduce .[] as $e ({n: 0, max: 0}; .n += $e.d | .max = ([.max, .n] | max)) | .max')
	assert_equal "$max" 1
}

@test "cache: a second run asks nothing and writes the same bytes" {
	turn 100 | llm-mapreduce -v >"$BATS_TEST_TMPDIR/o1" 2>"$BATS_TEST_TMPDIR/e1"
	n=$(fake_count GPU1)
	(( n >= 6 ))
	ls "$XDG_CACHE_HOME/llm-route" | grep -cE '^[0-9a-f]{64}$' >"$BATS_TEST_TMPDIR/entries"
	fake_reset GPU1
	turn 100 | llm-mapreduce -v >"$BATS_TEST_TMPDIR/o2" 2>"$BATS_TEST_TMPDIR/e2"
	assert_equal "$(fake_count GPU1)" 0
	cmp "$BATS_TEST_TMPDIR/o1" "$BATS_TEST_TMPDIR/o2"
	grep -q "cache dir=$XDG_CACHE_HOME/llm-route hits=$n misses=0 writes=0" "$BATS_TEST_TMPDIR/e2"
	# --dry-run says so.
	run llm-mapreduce --dry-run < <(turn 100)
	assert_equal "$(awk -F'\t' '$4 == "closed" && $5 != "hit"' <<<"$output")" ""
}

@test "cache: a conversation grown by one turn asks only for its new chunks" {
	turn 100 | llm-mapreduce >/dev/null
	for t in 101 102 103 104 105 106 107 108 109 110; do
		want=$(turn $t | llm-mapreduce --dry-run | awk -F'\t' '$5 == "miss"' | wc -l)
		fake_reset GPU1
		turn $t | llm-mapreduce >/dev/null
		assert_equal "$(fake_count GPU1)" "$want"
		(( want <= 1 )) || fail "turn $t: $want new chunks"
	done
}

@test "cache: a corrupt or truncated entry is ignored and rewritten" {
	turn 60 | llm-mapreduce >"$BATS_TEST_TMPDIR/o1"
	dir=$XDG_CACHE_HOME/llm-route
	e1=$(ls "$dir" | head -n 1)
	e2=$(ls "$dir" | sed -n 2p)
	head -c 30 "$dir/$e1" >"$dir/$e1.tmp" && mv "$dir/$e1.tmp" "$dir/$e1"
	sed -i 's/a/b/g' "$dir/$e2"
	fake_reset GPU1
	run --separate-stderr bash -c "jq -c '.messages |= .[:60]' '$BIG' | llm-mapreduce -v"
	assert_success
	assert_equal "$output" "$(cat "$BATS_TEST_TMPDIR/o1")"
	assert_equal "$(fake_count GPU1)" 2
	assert_equal "$(grep -c cache_corrupt <<<"$stderr")" 2
	fake_reset GPU1
	turn 60 | llm-mapreduce >/dev/null
	assert_equal "$(fake_count GPU1)" 0
}

@test "cache: two processes share one cache" {
	fake_control GPU1 '{"decode_tps": 100}'
	turn 100 >"$BATS_TEST_TMPDIR/in"
	llm-mapreduce <"$BATS_TEST_TMPDIR/in" >"$BATS_TEST_TMPDIR/o1" 2>"$BATS_TEST_TMPDIR/e1" &
	p1=$!
	llm-mapreduce <"$BATS_TEST_TMPDIR/in" >"$BATS_TEST_TMPDIR/o2" 2>"$BATS_TEST_TMPDIR/e2" &
	p2=$!
	wait $p1
	wait $p2
	cmp "$BATS_TEST_TMPDIR/o1" "$BATS_TEST_TMPDIR/o2"
	assert_equal "$(cat "$BATS_TEST_TMPDIR/e1" "$BATS_TEST_TMPDIR/e2")" ""
	assert_equal "$(ls -A "$XDG_CACHE_HOME/llm-route" | grep -vcE '^[0-9a-f]{64}$' || true)" 0
	fake_reset GPU1
	llm-mapreduce <"$BATS_TEST_TMPDIR/in" >/dev/null
	assert_equal "$(fake_count GPU1)" 0
}

@test "cache: --no-cache, --cache-dir, the size cap" {
	turn 60 | llm-mapreduce --no-cache >/dev/null
	[[ ! -e $XDG_CACHE_HOME/llm-route ]]
	turn 60 | llm-mapreduce --cache-dir "$BATS_TEST_TMPDIR/c2" >/dev/null
	(( $(ls "$BATS_TEST_TMPDIR/c2" | wc -l) >= 3 ))
	turn 150 | llm-mapreduce --cache-dir "$BATS_TEST_TMPDIR/c3" --cache-max 2K >/dev/null
	(( $(du -b "$BATS_TEST_TMPDIR/c3" | cut -f1) <= 2048 + 4096 ))
	(( $(cat "$BATS_TEST_TMPDIR"/c3/* | wc -c) <= 2048 ))
	run --separate-stderr llm-mapreduce --cache-dir /proc/nope < <(turn 60)
	assert_fails 1 "^llm-mapreduce: cache directory /proc/nope: "
}

@test "a helper that fails is not asked again: every span falls back, one warning" {
	turn 60 >"$BATS_TEST_TMPDIR/in"
	fake_control GPU1 '{"status": 500, "count": 1}'
	run --separate-stderr llm-mapreduce --no-cache --jobs 1 -q <"$BATS_TEST_TMPDIR/in"
	assert_success
	assert_equal "$stderr" ""
	fake_reset GPU1
	fake_control GPU1 '{"status": 500, "count": 1}'
	run --separate-stderr llm-mapreduce --no-cache --jobs 1 <"$BATS_TEST_TMPDIR/in"
	assert_success
	assert_equal "${#stderr_lines[@]}" 1
	[[ $stderr =~ ^llm-mapreduce:\ GPU1\ $GPU1_URL/api/chat:\ HTTP\ 500:\ .*\;\ using\ the\ extractive\ summary\ for\ ([0-9]+)\ of\ ([0-9]+)\ spans\ \(GPU1\ is\ not\ asked\ again\ in\ this\ run\)$ ]] || fail "$stderr"
	assert_equal "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
	assert_equal "$(fake_count GPU1)" 1
	n=$(jq -r '.messages[0].content' <<<"$output" | grep -c '^Messages .*: fake answer' || true)
	assert_equal "$n" 0
	run --separate-stderr llm-mapreduce --no-cache --on-helper-failure fail --url http://127.0.0.1:1 <"$BATS_TEST_TMPDIR/in"
	assert_fails 4 "GPU1 http://127.0.0.1:1/api/chat"
	run --separate-stderr llm-mapreduce --no-cache --on-helper-failure direct --url http://127.0.0.1:1 <"$BATS_TEST_TMPDIR/in"
	assert_success
	assert_output "$(cat "$BATS_TEST_TMPDIR/in")"
}

@test "progress on stderr when it is a terminal, nothing extra otherwise" {
	command -v script >/dev/null || fail "script(1) is not installed"
	turn 60 >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr llm-mapreduce --no-cache <"$BATS_TEST_TMPDIR/in"
	assert_equal "$stderr" ""
	script -qec "llm-mapreduce --no-cache <'$BATS_TEST_TMPDIR/in' >/dev/null" "$BATS_TEST_TMPDIR/tty" >/dev/null
	grep -q $'\rmap 1/' "$BATS_TEST_TMPDIR/tty"
	n=$(fake_count GPU1)
	grep -q "map $((n / 2))/$((n / 2))" "$BATS_TEST_TMPDIR/tty"
}

@test "the reduction: summaries over the target are summarized again" {
	fake_control GPU1 '{"answer_words": 120}'
	run --separate-stderr llm-mapreduce --no-cache -v --target 300 <"$BIG"
	assert_success
	[[ $stderr == *" reduce level=1 parts="* ]] || fail "no reduction"
	s=$(jq -r '.messages[0].content' <<<"$output" | sed -n '/^--- Earlier/,/^--- Kept/p' | sed '1d;$d')
	(( $(llm-estimate -n --text <<<"$s") <= 310 ))
}

@test "bad input and bad flags" {
	run --separate-stderr llm-mapreduce <<<'[{"role": 1}]'
	assert_fails 3 'messages\[0\].role: expected a string, got a number$'
	run --separate-stderr llm-mapreduce --jobs 0 </dev/null
	assert_equal "$status" 2
	run --separate-stderr llm-mapreduce --chunk-target 5000 </dev/null
	assert_equal "$status" 2
	[[ ${stderr_lines[0]} == "llm-mapreduce: --chunk-target (5000) must be smaller than --chunk-tokens (3000)" ]]
	assert_equal "$(fake_count GPU1)" 0
}

@test "--extractive asks no server at all, not even to reduce" {
	run --separate-stderr llm-mapreduce --extractive --no-cache --target 300 --url http://127.0.0.1:1 <"$BIG"
	assert_success
	assert_equal "$stderr" ""
	(( $(jq -r '.messages[0].content' <<<"$output" | sed -n '/^--- Earlier/,/^--- Kept/p' | llm-estimate -n --text) <= 330 ))
}

@test "a failed reduction follows --on-helper-failure" {
	llm-mapreduce --target 10000 <"$BIG" >/dev/null	# the chunk summaries, cached
	fake_control GPU1 '{"status": 500}'
	run --separate-stderr llm-mapreduce --target 300 --on-helper-failure fail <"$BIG"
	assert_fails 6 "HTTP 500"
	run --separate-stderr llm-mapreduce --target 300 --on-helper-failure direct <"$BIG"
	assert_success
	assert_output "$(cat "$BIG")"
	run --separate-stderr llm-mapreduce --target 300 <"$BIG"
	assert_success
	[[ $stderr == *"; cutting each of those parts to its share instead" ]] || fail "$stderr"
	# The newest history is not lost: the last closed chunk's range is there.
	last=$(llm-mapreduce --dry-run <"$BIG" | awk -F'\t' '$4 == "closed" { m = $2 } END { print m }')
	[[ $(jq -r '.messages[0].content' <<<"$output") == *"Messages $last:"* ]] || fail "no Messages $last"
}

@test "chunks fit the helper's num_ctx" {
	run --separate-stderr llm-mapreduce --dry-run --num-ctx 2048 <"$BIG"
	assert_success
	awk -F'\t' 'NR > 1 && $3 > 2048 - 450 - 400 { exit 1 }' <<<"$output"
	run --separate-stderr llm-mapreduce --dry-run --no-cache <"$BIG"
	assert_equal "$(cut -f 5 <<<"$output" | sort -u | paste -sd ' ')" "- cache"
	run --separate-stderr llm-mapreduce --cache-dir /etc/passwd <"$BIG"
	assert_fails 1 "^llm-mapreduce: cache directory /etc/passwd: Not a directory$"
}

@test "a tool result stays with the assistant message that called it" {
	python3 -c '
import json
msgs = [{"role": "system", "content": "s"}, {"role": "user", "content": "task " * 50}]
for i in range(12):
    msgs.append({"role": "assistant", "content": "step %d " % i + "thinking " * 30,
                 "tool_calls": [{"function": {"name": "run", "arguments": {"cmd": "make %d" % i}}}]})
    msgs.append({"role": "tool", "content": "output %d " % i + "line " * 60})
msgs.append({"role": "user", "content": "done?"})
print(json.dumps({"messages": msgs}))' >"$BATS_TEST_TMPDIR/in"
	for ct in 100 120 150 200 300; do
		run --separate-stderr llm-mapreduce --extractive --chunk-tokens $ct --chunk-target 50 <"$BATS_TEST_TMPDIR/in"
		assert_success
		# Every tool message follows an assistant or tool message.
		assert_equal "$(jq '[.messages as $m | range(1; $m | length) | select($m[.].role == "tool" and ($m[. - 1].role | IN("assistant", "tool") | not))] | length' <<<"$output")" 0
	done
}
