#!/usr/bin/env bats
# Condensing that keeps GPU0's prompt cache (commit 3a9dd3f): the prefix
# stability of a conversation replayed request by request, and how many
# compactions it costs; --summary-only; a plain-text log that grew by
# appending keeps its old pieces (the mark left in the cache); cache keys
# carry PROMPT_VERSION, so version-1 entries are not read.

load lib/common

BIG=$CORPUS/mini-swe-agent__django__django-12125.json	# 189 messages, ~55K tokens
SUMMARY_CACHE=$TESTS/lib/summary_cache.py

# plant DIR < KEYS: a cache entry "PLANTED KEY" in DIR under each key.
plant() {
	local k
	while read -r k; do
		python3 "$SUMMARY_CACHE" put "$1" "$k" "PLANTED $k"
	done
}

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

# replay DIR STEP ARGS...: BIG's requests, in order, through `llm-mapreduce
# -v ARGS`, one cache directory (DIR/xdg) kept across them.  Request k is
# messages[0..k] for every user or tool message k from 40% of the
# conversation on (as bench/prefix-replay.sh); with STEP 2 every 2nd of them.
# Writes DIR/in.N.json, DIR/out.N.json (tests/lib/prefix.py's pairs) and
# DIR/err.N (the -v log).
replay() {
	local dir=$1 step=$2 i=0 n=0 k name
	shift 2
	mkdir -p "$dir/xdg"
	for k in $(jq -r '.messages | length as $n | to_entries[]
		| select(.key * 100 >= $n * 40 and (.value.role == "user" or .value.role == "tool"))
		| .key' "$BIG"); do
		if ((i++ % step == 0)); then
			printf -v name '%04d' "$n"
			n=$((n + 1))
			jq -c --argjson k "$k" '.messages |= .[:$k + 1]' "$BIG" >"$dir/in.$name.json"
			XDG_CACHE_HOME=$dir/xdg llm-mapreduce -v "$@" <"$dir/in.$name.json" \
				>"$dir/out.$name.json" 2>"$dir/err.$name" ||
				fail "request $name (messages 0..$k): status $?: $(tail -n 3 "$dir/err.$name")"
		fi
	done
	((n >= 20)) || fail "only $n requests"
}

# log_field FILE EVENT FIELD: FIELD=VALUE of the -v log line of EVENT.
log_field() {
	sed -n "s/^[0-9:.]* llm-[a-z]*: $2 .*\\<$3=\\([0-9]*\\).*/\\1/p" "$1" | tail -n 1
}

# check_replay DIR STEP: the checks on one replay.
check_replay() {
	local dir=$1 step=$2 f idx keeps c prev='' name closed spans levels compactions g m
	# Every condensed request keeps the system message and the task (the
	# first user message) verbatim, and the block is the user message
	# after them.
	run python3 - "$dir" <<-'EOF'
		import json, os, sys
		d = sys.argv[1]
		for name in sorted(n for n in os.listdir(d) if n.startswith("in.")):
		    i = json.load(open(os.path.join(d, name)))["messages"]
		    o = json.load(open(os.path.join(d, "out." + name[3:])))["messages"]
		    t = next(k for k, m in enumerate(i) if m["role"] == "user")
		    if o[:t + 1] != i[:t + 1]:
		        print(name, ": the system messages and the task are not kept verbatim")
		    elif o[t + 1]["role"] != "user" or not o[t + 1]["content"].startswith(
		            "--- Earlier conversation, condensed by llm-route: summaries, oldest first ---\n"):
		        print(name, ": no summary block after the task:", o[t + 1]["content"][:60])
	EOF
	assert_success
	assert_output ""

	# Prefix stability: a request that does not keep all of the previous
	# one's condensed part is one where a compaction happened (the
	# count of compactions, a function of the closed chunks, never
	# goes down); and with every request replayed, at least 95% keep it.
	run python3 "$TESTS/lib/prefix.py" -v "$dir"
	assert_success
	while IFS=$'\t' read -r idx _ _ _ _ keeps _; do
		[[ $idx == '#'* || $idx == summary ]] && continue
		printf -v name '%04d' "$idx"
		c=$(log_field "$dir/err.$name" mapreduce compactions)
		[[ -n $c ]] || fail "request $name: no mapreduce log line"
		if [[ -n $prev ]]; then
			((c >= prev)) || fail "request $name: compactions went down, $prev to $c"
			((keeps == 1 || c > prev)) ||
				fail "request $name rewrote the block without a compaction"
		fi
		prev=$c
	done <<<"$output"
	pct=$(awk -F'\t' '$1 == "summary" { print $4 }' <<<"$output")
	echo "# $dir: $(tail -n 1 <<<"$output")" >&3
	if ((step == 1)); then
		awk -v p="$pct" 'BEGIN { exit !(p >= 95) }' || fail "keeps $pct% < 95%"
	else	# fewer requests, the same compactions: each weighs more
		awk -v p="$pct" 'BEGIN { exit !(p >= 85) }' || fail "keeps $pct% < 85%"
	fi

	# The compactions of the last request, from its -v log.  With the
	# defaults, M = floor(--target / (--chunk-target + --preserve + 24))
	# = floor(4000 / 474) = 8 spans at most, and a merge takes at most
	# g = floor(--chunk-tokens / (--chunk-target + 4)) = floor(3000 / 304)
	# = 9 spans.  Bounds, for the closed chunks c:
	#   spans <= M (the block's budget);
	#   levels <= 1 + ceil(log_g(c)), compactions <= 2c/M + levels.
	# plan_spans() (src/mapreduce.c) appends one span a chunk and merges
	# while there are more than M, a whole run of the newest level (up
	# to g) at a time, so a level-0 merge comes about every M/2 chunks
	# and a level-L merge takes several level-(L-1) spans.  These bounds
	# hold for c < 155 (a Python port of plan_spans checked c = 1..2000);
	# past that the block fills with high-level spans, merges come at
	# almost every chunk and the levels grow about linearly (c = 5000:
	# 28 levels, 4013 compactions), so they are not general.  Always true:
	# a merge turns at least 2 spans into 1, so compactions <= c - spans.
	# Here c = 19 (every request, or every 2nd: the last one is then
	# the turn before the last): levels = 2, compactions = 2.
	f=$(ls "$dir"/err.* | tail -n 1)
	closed=$(log_field "$f" chunks closed)
	spans=$(log_field "$f" mapreduce spans)
	levels=$(log_field "$f" mapreduce levels)
	compactions=$(log_field "$f" mapreduce compactions)
	echo "# $dir: closed=$closed spans=$spans levels=$levels compactions=$compactions" >&3
	[[ -n $closed && -n $spans && -n $levels && -n $compactions ]] || fail "$(cat "$f")"
	g=$((3000 / (300 + 4))) m=$((4000 / (300 + 150 + 24)))
	((g == 9 && m == 8))
	((compactions >= 1)) || fail "the replay made no compaction: nothing was checked"
	((spans >= 1 && spans <= m)) || fail "spans=$spans, M=$m"
	awk -v l="$levels" -v c="$closed" -v g="$g" 'BEGIN {
		b = log(c) / log(g); cb = int(b); if (cb < b) cb++
		exit !(l <= 1 + cb) }' || fail "levels=$levels > 1 + ceil(log_$g($closed))"
	awk -v x="$compactions" -v l="$levels" -v c="$closed" -v m="$m" 'BEGIN {
		exit !(x <= 2 * c / m + l) }' || fail "compactions=$compactions > 2*$closed/$m + $levels"
	((compactions <= closed - spans)) || fail "compactions=$compactions > $closed - $spans"
}

@test "prefix stability: a conversation replayed request by request keeps its condensed prefix; the compactions stay few" {
	local step=1
	# Under valgrind (about 1 s a request), every 2nd request.
	[[ -n ${LLM_ROUTE_WRAP:-} ]] && step=2
	replay "$BATS_TEST_TMPDIR/extractive" "$step" --extractive
	check_replay "$BATS_TEST_TMPDIR/extractive" "$step"
	assert_equal "$(fake_count GPU1)" 0
	replay "$BATS_TEST_TMPDIR/helper" "$step" --on-helper-failure fail
	check_replay "$BATS_TEST_TMPDIR/helper" "$step"
	# The cache spared the helper most requests: each closed chunk (and
	# merge) once, not once a turn.
	n=$(fake_count GPU1)
	((n > 0 && n <= 40)) || fail "$n helper requests"
}

# A chat of 30 messages, each about 250 tokens, marked m01..m30, after a
# system message marked SYSMARK.
long_chat() {
	python3 -c '
import json
words = "the build of the parser failed again because the cache was stale".split()
msgs = [{"role": "system", "content": "SYSMARK: you are a helpful assistant."}]
for i in range(1, 31):
    text = "m%02d " % i + " ".join(words[(i + j) % len(words)] + str(j % 7) for j in range(180))
    msgs.append({"role": "user" if i % 2 else "assistant", "content": text + "."})
print(json.dumps({"model": "qwen2.5-coder:7b", "messages": msgs}))'
}

@test "--summary-only: the summary of all of the chat but its system messages, as text" {
	long_chat >"$BATS_TEST_TMPDIR/in"
	for prog in llm-mapreduce llm-summarize; do
		for mode in --extractive --on-helper-failure=fail; do
			fake_reset GPU1
			# --num-ctx: room for all of it in llm-summarize's one request.
			run --separate-stderr "$prog" --summary-only "$mode" --num-ctx 32768 <"$BATS_TEST_TMPDIR/in"
			assert_success
			assert_equal "$stderr" ""
			# Plain text: the spans alone, no chat and no block head.
			assert_equal "${lines[0]}" "--- Summary ---"
			! jq -e . <<<"$output" >/dev/null 2>&1 || fail "$prog $mode: stdout is JSON"
			[[ $output != *'"role"'* && $output != *'--- Earlier conversation'* ]] ||
				fail "$prog $mode: stdout holds more than the summary"
			[[ $output != *SYSMARK* ]] || fail "$prog $mode: the system message is in the summary"
			if [[ $mode == --extractive ]]; then
				assert_equal "$(fake_count GPU1)" 0
			else
				[[ $output == *'fake answer from '* ]] || fail "$prog $mode: no helper summary"
				# The helper read every message but the system one: the
				# task and the last ones too.
				t=$(fake_requests GPU1 | python3 "$SUMMARY_CACHE" transcripts)
				[[ -n $t ]] || fail "$prog $mode: the helper was not asked"
				for i in $(seq -w 1 30); do
					[[ $t == *"m$i "* ]] || fail "$prog $mode: message m$i not summarized"
				done
				[[ $t != *SYSMARK* ]] || fail "$prog $mode: the helper read the system message"
			fi
		done
		[[ $prog == llm-summarize ]] || (($(grep -c '^--- Summary ---$' <<<"$output") >= 2)) ||
			fail "llm-mapreduce: one span for several chunks"
	done
	# A chat with only a system message has nothing to summarize.
	jq -nc '{model: "m", messages: [{role: "system", content: "SYSMARK"}]}' >"$BATS_TEST_TMPDIR/sys"
	fake_reset GPU1
	for prog in llm-mapreduce llm-summarize; do
		for mode in --extractive --on-helper-failure=fail; do
			run --separate-stderr "$prog" --summary-only "$mode" <"$BATS_TEST_TMPDIR/sys"
			assert_fails 3 "^$prog: nothing to summarize: "
		done
	done
	assert_equal "$(fake_count GPU1)" 0
}

# make_log N: N lines of a service log (about 55 tokens a line).
make_log() {
	awk -v n="$1" 'BEGIN {
		split("sshd kernel nginx cron postgres systemd", c, " ")
		split("INFO WARN DEBUG ERROR", l, " ")
		for (i = 1; i <= n; i++)
			printf "2026-03-01T%02d:%02d:%02dZ host%d %s[%d]: %s request %d handled in %d ms path=/srv/app/file%d.py user=u%d\n",
				int(i / 3600), int(i / 60) % 60, i % 60, i % 9 + 1, c[i % 6 + 1], 100 + i * 37 % 9900,
				l[i % 4 + 1], i, i * 7919 % 1000, i % 50 + 1, i * 13 % 30 + 1
	}'
}

@test "a log grown by appending: its old pieces are kept, only the new ones summarized, the old summary a prefix of the new" {
	make_log 800 >"$BATS_TEST_TMPDIR/b.log"
	head -n 500 "$BATS_TEST_TMPDIR/b.log" >"$BATS_TEST_TMPDIR/a.log"
	cd "$BATS_TEST_TMPDIR"
	# --target: room for every span, so that no compaction rewrites the
	# old ones.  The helper variant reads the log as non-JSON input, the
	# extractive one with --text.
	for mode in helper extractive; do
		if [[ $mode == helper ]]; then
			args=(--on-helper-failure=fail)
		else
			args=(--extractive --text)
		fi
		fake_reset GPU1
		llm-mapreduce -v --target 100000 --cache-dir c-$mode "${args[@]}" <a.log >a.$mode 2>a.$mode.err
		c1=$(log_field a.$mode.err chunks closed)
		# The run leaves in the cache its summaries, one mark and GPU1's
		# context window (the extractive one, the mark alone).
		assert_equal "$(ls c-$mode)" "$(ls c-$mode | grep -xE '[0-9a-f]{64}')"
		if [[ $mode == helper ]]; then
			assert_equal "$(ls c-$mode | wc -l)" "$((c1 + 2))"
		else
			assert_equal "$(ls c-$mode | wc -l)" 1
		fi
		assert_equal "$(log_field a.$mode.err mapreduce compactions)" 0
		fake_requests GPU1 | python3 "$SUMMARY_CACHE" transcripts | sort >a.$mode.asked
		fake_reset GPU1
		llm-mapreduce -v --target 100000 --cache-dir c-$mode "${args[@]}" <b.log >b.$mode 2>b.$mode.err
		c2=$(log_field b.$mode.err chunks closed)
		assert_equal "$(log_field b.$mode.err mapreduce compactions)" 0
		fake_requests GPU1 | python3 "$SUMMARY_CACHE" transcripts | sort >b.$mode.asked
		((c1 >= 5 && c2 > c1)) || fail "$mode: closed chunks $c1, then $c2"
		# The summary of the grown log starts with the old one, byte for byte.
		[[ $(wc -c <b.$mode) -gt $(wc -c <a.$mode) ]] || fail "$mode: the second summary is not longer"
		cmp -n "$(wc -c <a.$mode)" a.$mode b.$mode || fail "$mode: the first summary is not a prefix of the second"
		if [[ $mode == helper ]]; then
			# The helper was asked for the new chunks only.
			assert_equal "$(wc -l <a.$mode.asked)" "$c1"
			assert_equal "$(wc -l <b.$mode.asked)" "$((c2 - c1))"
			assert_equal "$(comm -12 a.$mode.asked b.$mode.asked)" ""
			assert_equal "$(log_field b.$mode.err mapreduce cache_hits)" "$c1"
		else
			assert_equal "$(cat a.$mode.asked b.$mode.asked)" ""
		fi
		# Control: without the mark (a fresh cache) the old end is not
		# found, the pieces are cut elsewhere and the old summary is not
		# a prefix: the mark is what keeps it.
		llm-mapreduce --target 100000 --cache-dir fresh-$mode "${args[@]}" <b.log >f.$mode
		! cmp -s -n "$(wc -c <a.$mode)" a.$mode f.$mode ||
			fail "$mode: the summary starts with the old one without the mark too"
		[[ $(head -c 200 f.$mode) == "$(head -c 200 b.$mode)" ]] ||
			fail "$mode: the fresh run differs from the start"
	done
}

@test "cache keys carry PROMPT_VERSION: an entry under the version-1 key is not read" {
	jq -c '.messages |= .[:60]' "$BIG" >"$BATS_TEST_TMPDIR/in"
	cd "$BATS_TEST_TMPDIR"
	llm-mapreduce -v --cache-dir c2 <in >o1 2>e1
	fake_requests GPU1 >asked
	n=$(wc -l <asked)
	((n >= 3)) || fail "$n helper requests"
	assert_equal "$(log_field e1 mapreduce compactions)" 0
	# The keys computed as summary_key() does are the entries the run
	# wrote: the recipe below is faithful.
	python3 "$SUMMARY_CACHE" keys 2 300 <asked | sort >keys2
	assert_equal "$(wc -l <keys2)" "$n"
	assert_equal "$(comm -23 keys2 <(ls c2 | sort))" ""
	python3 "$SUMMARY_CACHE" keys 1 300 <asked >keys1
	# Planted under the version-2 keys, entries are read (the format is
	# right): the helper is not asked, the spans hold them.
	mkdir planted2 planted1
	plant planted2 <keys2
	fake_reset GPU1
	run --separate-stderr llm-mapreduce --cache-dir planted2 <in
	assert_success
	assert_equal "$(fake_count GPU1)" 0
	[[ $output == *'PLANTED '* ]] || fail "the planted entries were not read"
	# Planted under the version-1 keys, they are not: the helper is asked
	# for every chunk, and the output is the first run's.
	plant planted1 <keys1
	fake_reset GPU1
	run --separate-stderr llm-mapreduce --cache-dir planted1 <in
	assert_success
	assert_equal "$(fake_count GPU1)" "$n"
	[[ $output != *PLANTED* ]] || fail "a version-1 entry was read"
	assert_equal "$output" "$(cat o1)"
}
