#!/usr/bin/env bats
# llm-mapreduce (strategy C): chunk stability, concurrency, the cache
# (hits, growth by one turn, corruption, sharing, the cap), per-chunk
# fallback, progress, the switch of closed chunks into the block, the
# compactions, and bad input.
#
# The condensed layout: the system messages, the task (the first user
# message), one user message holding the block (its head line, then one
# span per closed chunk switched in, or per merge of them, oldest first:
# "--- Summary ---", the summary, "--- Kept verbatim from it ---" and
# that span's extract), the system messages of the middle, then what is
# kept verbatim: the closed chunks not yet switched in, the open chunk,
# the tail.

load lib/common

BIG=$CORPUS/mini-swe-agent__django__django-12125.json	# 189 messages, ~55K tokens

setup_file() {
	fake_start GPU1
}

teardown_file() {
	fake_stop_all
}

setup() {
	fake_reset_all
	export LLM_GPU1_URL=$GPU1_URL
	export XDG_CACHE_HOME=$BATS_TEST_TMPDIR/cache
}

turn() {	# turn N: the conversation's first N messages
	jq -c --argjson n "$1" '.messages |= .[:$n]' "$BIG"
}

closed_rows() {	# the closed chunks of a dry run
	llm-mapreduce --dry-run --no-cache | awk -F'\t' '$4 == "closed"'
}

block() {	# the block of a condensed chat on stdin (after system and task)
	jq -r '.messages[] | select(.role == "user") | .content | strings
		| select(startswith("--- Earlier conversation, condensed by llm-route: summaries, oldest first ---\n"))'
}

summaries() {	# the first line of each span's summary in a block on stdin
	awk 'prev == "--- Summary ---" { print } { prev = $0 }'
}

@test "every corpus file, extractive and with the fake helper: the invariants hold" {
	# The corpus, and synthetic tool-calling chats (tool_calls with object
	# arguments, tool results, the task the only user message; in
	# tools-bigtask.json the task is over half of the chat).
	python3 "$TESTS/lib/check_condensed.py" tool-chats "$BATS_TEST_TMPDIR/tools"
	bad=""
	for f in "$CORPUS"/*.json "$BATS_TEST_TMPDIR"/tools/*.json; do
		for mode in --extractive --no-cache; do
			llm-mapreduce $mode -v <"$f" >"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err" ||
				{ bad+="$f $mode: status $?"$'\n'; continue; }
			run python3 "$TESTS/lib/check_condensed.py" "$f" "$BATS_TEST_TMPDIR/out" \
				"$BATS_TEST_TMPDIR/err" 4000 150 4 mapreduce --chunk-target 300
			[[ $status == 0 && -z $output ]] || bad+="$f $mode: $output"$'\n'
			case $f in
			*/tools-bigtask.json)
				grep -q ' task message=2 tokens=[0-9]* budget=[0-9]* kept="no: more than half the budget' \
					"$BATS_TEST_TMPDIR/err" || bad+="$f $mode: the task over half the chat is not condensed"$'\n' ;;
			*/tools-large.json)
				[[ $(jq -c '.messages[1]' "$BATS_TEST_TMPDIR/out") == "$(jq -c '.messages[1]' "$f")" ]] ||
					bad+="$f $mode: the task is not the second message"$'\n'
				grep -q ' mapreduce .* compactions=[1-9]' "$BATS_TEST_TMPDIR/err" ||
					bad+="$f $mode: no compaction"$'\n' ;;
			esac
		done
	done
	[[ -z $bad ]] || fail "$bad"
}

@test "--dry-run lists the chunks, asks nothing" {
	run --separate-stderr llm-mapreduce --dry-run <"$BIG"
	assert_success
	assert_equal "${lines[0]}" "$(printf 'chunk\tmessages\ttokens\tstate\tcache')"
	# Message 2, the task, is kept verbatim: the first chunk starts after it.
	assert_equal "${lines[1]}" "$(printf '1\t3-10\t2401\tclosed\tmiss')"
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
	# The system message, the task and the block.
	[[ $(jq -r '.messages[2].content' "$BATS_TEST_TMPDIR/o1") == "--- Earlier conversation, condensed by llm-route"* ]]
	assert_equal "$(jq -c '.messages[:3]' "$BATS_TEST_TMPDIR/o2")" "$(jq -c '.messages[:3]' "$BATS_TEST_TMPDIR/o1")"
}

@test "closed chunks switch into the block three at a time; the rest stays verbatim" {
	seen=""
	for t in 30 40 50 60 70 80 90 100 110; do
		turn $t >"$BATS_TEST_TMPDIR/in"
		llm-mapreduce --dry-run --no-cache <"$BATS_TEST_TMPDIR/in" >"$BATS_TEST_TMPDIR/dry"
		c=$(awk -F'\t' '$4 == "closed"' "$BATS_TEST_TMPDIR/dry" | wc -l)
		# Once more than 3 have closed, a multiple of 3 is switched in.
		e=$(( c > 3 ? c - c % 3 : c ))
		seen+=" $c"
		# A target large enough for no compaction: one span a chunk.
		llm-mapreduce --extractive --no-cache -v --target 100000 <"$BATS_TEST_TMPDIR/in" \
			>"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err"
		grep -q " mapreduce chunks=$((c + 1)) cache_hits=0 spans=$e levels=1 compactions=0$" "$BATS_TEST_TMPDIR/err" ||
			fail "turn $t, $c closed: $(grep ' mapreduce ' "$BATS_TEST_TMPDIR/err")"
		assert_equal "$(block <"$BATS_TEST_TMPDIR/out" | grep -c '^--- Summary ---$')" "$e"
		# What follows the block is the input from chunk e + 1 on (or the
		# open chunk): the closed chunks not switched in yet, verbatim.
		from=$(awk -F'\t' -v r=$((e + 2)) 'NR == r { split($2, m, /[- ]/); print m[1] }' "$BATS_TEST_TMPDIR/dry")
		assert_equal "$(jq -c '.messages[3:]' "$BATS_TEST_TMPDIR/out")" "$(jq -c --argjson f "$from" '.messages[$f - 1:]' "$BATS_TEST_TMPDIR/in")"
	done
	# The turns saw counts that are not multiples of 3, over 3.
	[[ "$seen " =~ \ (4|5|7|8|10|11)\  ]] || fail "closed counts:$seen"
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
	# No count of the pieces, which would change as the message grows.
	[[ $output == *$'\t2 (part 1)\t'* && $output == *$'\t2 (part 2)\t'* ]] || fail "$output"
	[[ $output != *" of "* ]] || fail "$output"
	llm-mapreduce --chunk-tokens 1200 --no-cache <"$BATS_TEST_TMPDIR/in" >/dev/null
	# Each piece sent to the helper holds whole code blocks, under the
	# head "[user] (part K)".
	run fake_requests GPU1
	(( ${#lines[@]} >= 3 ))
	while IFS= read -r r; do
		u=$(jq -r '.body.messages[1].content' <<<"$r")
		n=$(grep -c '^```' <<<"$u" || true)
		(( n % 2 == 0 )) || fail "a piece cuts a code block: $n fences"
		[[ $u =~ ^"<conversation>"$'\n'"[user] (part "[0-9]+")"$'\n' ]] || fail "$u"
	done <<<"$output"
}

@test "--jobs N: N helper requests overlap, the output keeps chunk order" {
	# A helper that serves three at once: --jobs is never more (engine.bats).
	printf 'gpu1_parallel = 3\n' >"$BATS_TEST_TMPDIR/config"
	export LLM_ROUTE_CONFIG=$BATS_TEST_TMPDIR/config
	fake_control GPU1 '{"decode_tps": 40, "prefill_tps": 20000}'
	turn 100 >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr llm-mapreduce --jobs 3 --no-cache <"$BATS_TEST_TMPDIR/in"
	assert_success
	# The most requests in flight at once, from the fake's log.
	max=$(fake_requests GPU1 | jq -s '[.[] | {t: .t_start, d: 1}, {t: .t_end, d: -1}]
		| sort_by(.t, .d) | reduce .[] as $e ({n: 0, max: 0}; .n += $e.d | .max = ([.max, .n] | max)) | .max')
	assert_equal "$max" 3
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/o3"
	fake_reset GPU1
	fake_control GPU1 '{"decode_tps": 40}'
	run --separate-stderr llm-mapreduce --jobs 1 --no-cache <"$BATS_TEST_TMPDIR/in"
	max=$(fake_requests GPU1 | jq -s '[.[] | {t: .t_start, d: 1}, {t: .t_end, d: -1}]
		| sort_by(.t, .d) | reduce .[] as $e ({n: 0, max: 0}; .n += $e.d | .max = ([.max, .n] | max)) | .max')
	assert_equal "$max" 1
	# One after the other, the requests come in chunk order; the spans
	# are their answers in that order (the default --target merges these
	# chunks into one span, so the order shows in the merge's request),
	# and --jobs 3 wrote the same bytes.
	assert_equal "$output" "$(cat "$BATS_TEST_TMPDIR/o3")"
	answers=$(fake_requests GPU1 | jq -r '.answer')
	merge=$(fake_requests GPU1 | jq -r '.body.messages[1].content | select(contains("fake answer from"))')
	assert_equal "$(grep -c '^fake answer from' <<<"$merge")" "$(( $(wc -l <<<"$answers") - 1 ))"
	assert_equal "$(grep '^fake answer from' <<<"$merge")" "$(head -n -1 <<<"$answers")"
	assert_equal "$(block <<<"$output" | summaries)" "$(tail -n 1 <<<"$answers")"
	(( $(wc -l <<<"$answers") >= 7 ))
}

@test "--jobs 1: the next helper request starts as soon as one ends, with no idle wait" {
	run --separate-stderr llm-mapreduce --jobs 1 --no-cache <"$BIG"
	assert_success
	# From one request's end to the next one's start, in the fake's log:
	# the median, in ms.  The event loop used to poll with no transfer
	# running, sleeping all of its 50 ms before it started the next one.
	gap=$(fake_requests GPU1 | jq -s 'sort_by(.t_start)
		| [range(1; length) as $i | (.[$i].t_start - .[$i - 1].t_end) * 1000]
		| sort | .[length / 2 | floor] | floor')
	(( $(fake_count GPU1) >= 10 ))
	(( gap < 25 ))
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
	# The summaries, and GPU1's context window (/api/show), from the cache.
	grep -q "cache dir=$XDG_CACHE_HOME/llm-route hits=$((n + 1)) misses=0 writes=0" "$BATS_TEST_TMPDIR/e2"
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
	# Two of the summaries (not GPU1's remembered context window).
	e1=$(grep -L '^32768$' "$dir"/* | head -n 1); e1=${e1##*/}
	e2=$(grep -L '^32768$' "$dir"/* | sed -n 2p); e2=${e2##*/}
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
	[[ $stderr =~ ^llm-mapreduce:\ GPU1\ $GPU1_URL/api/chat:\ HTTP\ 500:\ .*\;\ using\ the\ extractive\ summary\ for\ ([0-9]+)\ of\ ([0-9]+)\ summaries\ \(GPU1\ is\ not\ asked\ again\ in\ this\ run\)$ ]] || fail "$stderr"
	assert_equal "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
	assert_equal "$(fake_count GPU1)" 1
	# No span holds a helper's answer.
	(( $(block <<<"$output" | grep -c '^--- Summary ---$') >= 1 ))
	n=$(block <<<"$output" | summaries | grep -c '^fake answer' || true)
	assert_equal "$n" 0
	run --separate-stderr llm-mapreduce --no-cache --on-helper-failure fail --url http://127.0.0.1:1 <"$BATS_TEST_TMPDIR/in"
	assert_fails 4 "GPU1 http://127.0.0.1:1/api/show"
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
	# Each run asked for the chunks switched into the block (map), and
	# for those that stay verbatim for now (prepare, for a later turn).
	n=$(fake_count GPU1)
	m=$(grep -ao 'map [0-9]*/[0-9]*' "$BATS_TEST_TMPDIR/tty" | tail -n 1)
	p=$(grep -ao 'prepare [0-9]*/[0-9]*' "$BATS_TEST_TMPDIR/tty" | tail -n 1)
	[[ $m =~ ^map\ ([0-9]+)/([0-9]+)$ && ${BASH_REMATCH[1]} == "${BASH_REMATCH[2]}" ]] || fail "$m"
	[[ $p =~ ^prepare\ ([0-9]+)/([0-9]+)$ && ${BASH_REMATCH[1]} == "${BASH_REMATCH[2]}" ]] || fail "$p"
	assert_equal "$(( ${m##*/} + ${p##*/} ))" "$((n / 2))"
}

@test "compactions: spans over the block's budget merge on the helper, level by level" {
	turn 120 >"$BATS_TEST_TMPDIR/in"
	# Spans of at most 100 + 50 + 24 tokens; a block of 700: 4 spans at most.
	run --separate-stderr llm-mapreduce --no-cache -v --chunk-tokens 1000 --chunk-target 100 --preserve 50 \
		--target 700 <"$BATS_TEST_TMPDIR/in"
	assert_success
	[[ $stderr =~ \ mapreduce\ chunks=[0-9]+\ cache_hits=0\ spans=([0-9]+)\ levels=([0-9]+)\ compactions=([0-9]+) ]] ||
		fail "$stderr"
	spans=${BASH_REMATCH[1]} levels=${BASH_REMATCH[2]} compactions=${BASH_REMATCH[3]}
	(( compactions > 0 && levels >= 2 && spans >= 2 && spans <= 700 / (100 + 50 + 24) )) ||
		fail "spans=$spans levels=$levels compactions=$compactions"
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/out"
	printf '%s\n' "$stderr" >"$BATS_TEST_TMPDIR/err"
	run python3 "$TESTS/lib/check_condensed.py" "$BATS_TEST_TMPDIR/in" "$BATS_TEST_TMPDIR/out" \
		"$BATS_TEST_TMPDIR/err" 700 50 4 mapreduce --chunk-target 100
	assert_success
	assert_output ""
	assert_equal "$(block <"$BATS_TEST_TMPDIR/out" | grep -c '^--- Summary ---$')" "$spans"
	# Each merge reached the helper once: a request that holds the
	# summaries it merges, oldest first, each an earlier answer.
	fake_requests GPU1 >"$BATS_TEST_TMPDIR/reqs"
	jq -r '.answer' "$BATS_TEST_TMPDIR/reqs" >"$BATS_TEST_TMPDIR/answers"
	merges=$(jq -c 'select(.body.messages[1].content | contains("\nfake answer from"))' "$BATS_TEST_TMPDIR/reqs")
	assert_equal "$(wc -l <<<"$merges")" "$compactions"
	while IFS= read -r r; do
		kids=$(jq -r '.body.messages[1].content' <<<"$r" | grep '^fake answer from')
		(( $(wc -l <<<"$kids") >= 2 )) || fail "a merge of one: $kids"
		grep -vxFf "$BATS_TEST_TMPDIR/answers" <<<"$kids" && fail "a merged summary that is no answer"
		[[ $(jq -r '.body.messages[1].content' <<<"$r") == *"Summarize the conversation above in at most 75 words." ]] ||
			fail "not asked for --chunk-target"
	done <<<"$merges"
	# The spans are the answers; the oldest is a merge's.
	block <"$BATS_TEST_TMPDIR/out" | summaries >"$BATS_TEST_TMPDIR/spans"
	grep -vxFf "$BATS_TEST_TMPDIR/answers" "$BATS_TEST_TMPDIR/spans" && fail "a span that is no answer"
	assert_equal "$(jq -r 'select(.body.messages[1].content | contains("\nfake answer from")) | .answer' "$BATS_TEST_TMPDIR/reqs" |
		grep -cxF "$(head -n 1 "$BATS_TEST_TMPDIR/spans")")" 1
	# A turn later, with the same closed chunks, the same block, from the cache.
	llm-mapreduce --chunk-tokens 1000 --chunk-target 100 --preserve 50 --target 700 <"$BATS_TEST_TMPDIR/in" >"$BATS_TEST_TMPDIR/o1"
	fake_reset GPU1
	jq -c '.messages += [{role: "assistant", content: "One more step."}]' "$BATS_TEST_TMPDIR/in" |
		llm-mapreduce --chunk-tokens 1000 --chunk-target 100 --preserve 50 --target 700 >"$BATS_TEST_TMPDIR/o2"
	assert_equal "$(block <"$BATS_TEST_TMPDIR/o2")" "$(block <"$BATS_TEST_TMPDIR/o1")"
	assert_equal "$(fake_count GPU1)" 0
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

@test "--extractive asks no server at all, not even to merge" {
	run --separate-stderr llm-mapreduce --extractive --no-cache --target 300 --url http://127.0.0.1:1 <"$BIG"
	assert_success
	assert_equal "$stderr" ""
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/out"
	run --separate-stderr llm-mapreduce --extractive --no-cache -v --target 300 --url http://127.0.0.1:1 <"$BIG"
	assert_success
	assert_equal "$output" "$(cat "$BATS_TEST_TMPDIR/out")"
	[[ $stderr =~ \ mapreduce\ .*\ spans=([0-9]+)\ levels=[0-9]+\ compactions=([1-9][0-9]*)$'\n' ]] || fail "no compaction: $stderr"
	(( BASH_REMATCH[1] <= 2 )) || fail "${BASH_REMATCH[1]} spans"
	[[ $stderr != *" request role="* ]] || fail "$stderr"
	printf '%s\n' "$stderr" >"$BATS_TEST_TMPDIR/err"
	run python3 "$TESTS/lib/check_condensed.py" "$BIG" "$BATS_TEST_TMPDIR/out" "$BATS_TEST_TMPDIR/err" 300 150 4 mapreduce
	assert_success
	assert_output ""
}

@test "a failed merge follows --on-helper-failure" {
	# The chunk summaries, cached; no merge with this target.
	llm-mapreduce -v --target 10000 <"$BIG" 2>"$BATS_TEST_TMPDIR/err" >"$BATS_TEST_TMPDIR/o1"
	grep -q ' mapreduce .* compactions=0$' "$BATS_TEST_TMPDIR/err" || fail "$(cat "$BATS_TEST_TMPDIR/err")"
	newest=$(block <"$BATS_TEST_TMPDIR/o1" | summaries | tail -n 1)
	fake_reset GPU1
	fake_control GPU1 '{"status": 500}'
	run --separate-stderr llm-mapreduce --target 300 --on-helper-failure fail <"$BIG"
	assert_fails 6 "HTTP 500"
	run --separate-stderr llm-mapreduce --target 300 --on-helper-failure direct <"$BIG"
	assert_success
	assert_output "$(cat "$BIG")"
	# Only merges were asked for: the chunk summaries came from the cache.
	run fake_requests GPU1
	while IFS= read -r r; do
		[[ $(jq -r '.body.messages[1].content' <<<"$r") == *$'\nfake answer from'* ]] || fail "not a merge: $r"
	done <<<"$output"
	run --separate-stderr llm-mapreduce -v --target 300 <"$BIG"
	assert_success
	[[ $stderr == *"HTTP 500"*"; using the extractive summary for "*" summaries (GPU1 is not asked again in this run)"* ]] || fail "$stderr"
	# The newest history is not lost: the newest chunk's summary, or its
	# share of a merge, is there.
	[[ $(block <<<"$output") == *"${newest:0:60}"* ]] || fail "no ${newest:0:60}"
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/out"
	printf '%s\n' "$stderr" >"$BATS_TEST_TMPDIR/err"
	run python3 "$TESTS/lib/check_condensed.py" "$BIG" "$BATS_TEST_TMPDIR/out" "$BATS_TEST_TMPDIR/err" 300 150 4 mapreduce
	assert_success
	assert_output ""
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

@test "the output is the input's bytes with only \"messages\" replaced; kept messages keep their bytes" {
	for flag in "" --openai; do
		python3 "$TESTS/lib/rawjson.py" chat ${flag:+"$flag"} >"$BATS_TEST_TMPDIR/in"
		llm-mapreduce --chunk-tokens 200 --chunk-target 60 --target 100 \
			<"$BATS_TEST_TMPDIR/in" >"$BATS_TEST_TMPDIR/out"
		run python3 "$TESTS/lib/rawjson.py" same-but "$BATS_TEST_TMPDIR/in" "$BATS_TEST_TMPDIR/out" messages
		assert_success
		assert_output ""
	done
}

@test "a raw control byte in a string: status 3, nothing on stdout, nothing asked" {
	printf '{"messages":[{"role":"user","content":"a\000b"}]}' >"$BATS_TEST_TMPDIR/nul"
	run --separate-stderr llm-mapreduce <"$BATS_TEST_TMPDIR/nul"
	assert_fails 3 '^llm-mapreduce: bad input: invalid JSON: raw control byte 0x00 in a string at byte 41 \(line 1, column 41\)$'
	assert_equal "$(fake_count GPU1)" 0
}
