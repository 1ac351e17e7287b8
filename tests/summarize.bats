#!/usr/bin/env bats
# llm-summarize (strategy B): the invariants of SPEC section 3, the helper
# request, every helper failure with its fallback, and bad input.
#
# The condensed layout: the system messages, the task (the first user
# message), one user message holding the block (its head line, then one
# span: "--- Summary ---", the summary, "--- Kept verbatim from it ---"
# and the extract), the system messages of the middle, the tail.

load lib/common

setup_file() {
	fake_start GPU1
}

teardown_file() {
	fake_stop_all
}

setup() {
	fake_reset_all
	export LLM_GPU1_URL=$GPU1_URL
}

# A chat: system, 8 older messages (code, a path, an error), then a tail.
mkchat() {
	jq -nc '{model: "qwen2.5-coder:7b", stream: true, options: {temperature: 0.2}, keep_alive: "10m",
		messages: ([{role: "system", content: "You are a coding agent."}] +
		[range(0; 4) as $i | {role: "user", content: "Step \($i): please look at src/app/main\($i).py and tell me why the build fails. The tests were green yesterday and nothing in the dependency list changed since then, which is odd."},
		 {role: "assistant", content: "Running the tests for step \($i).\n```\npytest tests/test_\($i).py\n```\nValueError: bad value \($i)\nThe failure comes from the parser that reads the configuration, and it needs a guard."}] +
		[{role: "user", content: "Now fix it."}, {role: "assistant", content: "Done."}, {role: "user", content: "Thanks, and now?"}])}'
}

HEAD="--- Earlier conversation, condensed by llm-route: summaries, oldest first ---"

check() {	# check IN OUT ERR [TARGET PRESERVE KEEP_LAST [FLAGS...]]
	run python3 "$TESTS/lib/check_condensed.py" "$1" "$2" "$3" "${4:-500}" "${5:-500}" "${6:-4}" "${@:7}"
	assert_success
	assert_output ""
}

# The corpus, and synthetic tool-calling chats (tool_calls with object
# arguments, tool results, the task the only user message; in
# tools-bigtask.json the task is over half of the chat).
corpus() {
	python3 "$TESTS/lib/check_condensed.py" tool-chats "$BATS_TEST_TMPDIR/tools"
	ls "$CORPUS"/*.json "$BATS_TEST_TMPDIR"/tools/*.json
}

# Every corpus file through llm-summarize FLAGS, checked; all problems
# are listed before the test fails.
check_corpus() {
	local f bad=""
	for f in $(corpus); do
		llm-summarize "$@" -v <"$f" >"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err" ||
			{ bad+="$f: status $?"$'\n'; continue; }
		run python3 "$TESTS/lib/check_condensed.py" "$f" "$BATS_TEST_TMPDIR/out" "$BATS_TEST_TMPDIR/err" 500 500 4
		[[ $status == 0 && -z $output ]] || bad+="$f: $output"$'\n'
		# The task is condensed when, and only when, it is over half the chat.
		if [[ $f == */tools-bigtask.json ]]; then
			grep -q ' task message=2 tokens=[0-9]* budget=[0-9]* kept="no: more than half the budget' "$BATS_TEST_TMPDIR/err" ||
				bad+="$f: the task over half the chat is not condensed"$'\n'
		elif [[ $f == */tools-*.json ]]; then
			[[ $(jq -c '.messages[1]' "$BATS_TEST_TMPDIR/out") == "$(jq -c '.messages[1]' "$f")" ]] ||
				bad+="$f: the task is not the second message"$'\n'
		fi
	done
	[[ -z $bad ]] || fail "$bad"
}

@test "every corpus file, extractive: the SPEC section 3 invariants hold" {
	check_corpus --extractive
}

@test "every corpus file, with the fake helper: the invariants hold" {
	check_corpus
}

@test "tight budgets: dropped items are named on stderr under -v" {
	f=$CORPUS/swe-agent__pydicom__pydicom-1458.json
	run --separate-stderr llm-summarize --extractive -v --target 100 --preserve 60 <"$f"
	assert_success
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/out"
	printf '%s\n' "$stderr" >"$BATS_TEST_TMPDIR/err"
	check "$f" "$BATS_TEST_TMPDIR/out" "$BATS_TEST_TMPDIR/err" 100 60
	[[ $stderr == *" dropped kind=code message="* ]]
	[[ $stderr == *" dropped kind=path message="* ]]
}

@test "system messages, the task and the tail are kept verbatim; the block is a user message after the task" {
	mkchat >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr llm-summarize <"$BATS_TEST_TMPDIR/in"
	assert_success
	# The system message and the task (the first user message), then the
	# block, then the tail: the last user message and after, and at least
	# 4 (the default).
	assert_equal "$(jq -c '[.messages[] | .role]' <<<"$output")" '["system","user","user","assistant","user","assistant","user"]'
	assert_equal "$(jq -c '.messages[:2]' <<<"$output")" "$(jq -c '.messages[:2]' "$BATS_TEST_TMPDIR/in")"
	assert_equal "$(jq -c '.messages[3:]' <<<"$output")" "$(jq -c '.messages[-4:]' "$BATS_TEST_TMPDIR/in")"
	# The block: its head line, no message range, one span.
	block=$(jq -r '.messages[2].content' <<<"$output")
	assert_equal "$(head -3 <<<"$block")" "$HEAD

--- Summary ---"
	[[ $(sed -n 4p <<<"$block") == "fake answer from qwen3:1.7b: "* ]] || fail "$block"
	assert_equal "$(grep -c '^--- Summary ---$' <<<"$block")" 1
	# Every other field intact, in its order.
	assert_equal "$(jq -c 'del(.messages)' <<<"$output")" '{"model":"qwen2.5-coder:7b","stream":true,"options":{"temperature":0.2},"keep_alive":"10m"}'
}

@test "code, paths and errors of the middle are carried over verbatim, newest first" {
	mkchat >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr llm-summarize <"$BATS_TEST_TMPDIR/in"
	block=$(jq -r '.messages[2].content' <<<"$output")
	# Paths inside a kept code block are not listed again; the task's
	# path (src/app/main0.py) is in the task, kept verbatim, and the
	# tail's error (bad value 3) in the tail.
	[[ $block == *"
--- Kept verbatim from it ---
Errors:
ValueError: bad value 2
ValueError: bad value 1
ValueError: bad value 0
Files: src/app/main3.py, src/app/main2.py, src/app/main1.py
Code:
\`\`\`
pytest tests/test_2.py
\`\`\`
\`\`\`
pytest tests/test_1.py
\`\`\`
\`\`\`
pytest tests/test_0.py
\`\`\`" ]] || fail "$block"
	[[ $block != *"main0.py"* && $block != *"bad value 3"* ]] || fail "$block"
}

@test "--keep-last N keeps at least the last N messages" {
	mkchat >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr llm-summarize --keep-last 6 <"$BATS_TEST_TMPDIR/in"
	assert_success
	# The system message, the task, the block, the last 6.
	assert_equal "$(jq '.messages | length' <<<"$output")" 9
	assert_equal "$(jq -c '.messages[3:]' <<<"$output")" "$(jq -c '.messages[-6:]' "$BATS_TEST_TMPDIR/in")"
	assert_equal "$(jq -r '.messages[2].content' <<<"$output" | head -1)" "$HEAD"
	# The helper read messages 3-6 only: up to step 2's question.
	u=$(fake_requests GPU1 | jq -r '.body.messages[1].content')
	[[ $u == *"Step 2: please look"* && $u != *"Running the tests for step 2."* ]] || fail "$u"
	run --separate-stderr llm-summarize --keep-last 0 <"$BATS_TEST_TMPDIR/in"
	assert_equal "$(jq -c '.messages[3:]' <<<"$output")" "$(jq -c '.messages[-1:]' "$BATS_TEST_TMPDIR/in")"
}

@test "no system message: the task leads, the block follows it as a user message" {
	mkchat | jq -c '.messages |= .[1:]' >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr llm-summarize -v <"$BATS_TEST_TMPDIR/in"
	assert_success
	assert_equal "$(jq -c '.messages[0]' <<<"$output")" "$(jq -c '.messages[0]' "$BATS_TEST_TMPDIR/in")"
	assert_equal "$(jq -r '.messages[1] | .role, (.content | split("\n")[0])' <<<"$output")" "user
$HEAD"
	assert_equal "$(jq '[.messages[] | select(.role == "system")] | length' <<<"$output")" 0
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/out"
	printf '%s\n' "$stderr" >"$BATS_TEST_TMPDIR/err"
	check "$BATS_TEST_TMPDIR/in" "$BATS_TEST_TMPDIR/out" "$BATS_TEST_TMPDIR/err"
}

@test "--summarize-system condenses the system message too" {
	mkchat >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr llm-summarize -v --summarize-system <"$BATS_TEST_TMPDIR/in"
	assert_success
	# No system message is left; the task leads, then the block.
	assert_equal "$(jq '[.messages[] | select(.role == "system")] | length' <<<"$output")" 0
	assert_equal "$(jq -c '.messages[0]' <<<"$output")" "$(jq -c '.messages[1]' "$BATS_TEST_TMPDIR/in")"
	assert_equal "$(jq -r '.messages[1].content | split("\n")[0]' <<<"$output")" "$HEAD"
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/out"
	printf '%s\n' "$stderr" >"$BATS_TEST_TMPDIR/err"
	check "$BATS_TEST_TMPDIR/in" "$BATS_TEST_TMPDIR/out" "$BATS_TEST_TMPDIR/err" 500 500 4 --summarize-system
	run fake_requests GPU1
	[[ $(jq -r '.body.messages[1].content' <<<"$output") == "<conversation>
[system]
You are a coding agent."* ]]
}

@test "two turns with the same condensed part share the same prefix" {
	mkchat >"$BATS_TEST_TMPDIR/t1"
	jq -c '.messages += [{role: "assistant", content: "Here is the next step."}]' "$BATS_TEST_TMPDIR/t1" >"$BATS_TEST_TMPDIR/t2"
	# With --keep-last 1 the tail starts at the last user message in both.
	llm-summarize --keep-last 1 <"$BATS_TEST_TMPDIR/t1" >"$BATS_TEST_TMPDIR/o1"
	llm-summarize --keep-last 1 <"$BATS_TEST_TMPDIR/t2" >"$BATS_TEST_TMPDIR/o2"
	# The system message, the task and the block.
	assert_equal "$(jq -c '.messages[:3]' "$BATS_TEST_TMPDIR/o2")" "$(jq -c '.messages[:3]' "$BATS_TEST_TMPDIR/o1")"
	# Byte for byte, the first output is a prefix of the second, up to
	# the end of its messages.
	a=$(head -c -3 "$BATS_TEST_TMPDIR/o1")
	[[ $(cat "$BATS_TEST_TMPDIR/o2") == "$a"* ]] || fail "not a prefix"
}

@test "the helper request: helper model, thinking off, fixed num_ctx, only the middle" {
	mkchat >"$BATS_TEST_TMPDIR/in"
	llm-summarize --target 200 <"$BATS_TEST_TMPDIR/in" >/dev/null
	run fake_requests GPU1
	assert_equal "$(jq -c '.body | [.model, .think, .stream, .options]' <<<"$output")" \
		'["qwen3:1.7b",false,true,{"temperature":0,"num_predict":300,"num_ctx":8192}]'
	u=$(jq -r '.body.messages[1].content' <<<"$output")
	# The middle starts after the task, which stays verbatim.
	[[ $u == "<conversation>
[assistant]
Running the tests for step 0."* ]] || fail "$u"
	[[ $u == *"Summarize the conversation above in at most 150 words." ]] || fail "$u"
	[[ $u != *"Now fix it."* && $u != *"You are a coding agent."* ]] || fail "tail or system in the request"
	[[ $u != *"Step 0: please look"* ]] || fail "the task in the request"
	[[ $(jq -r '.body.messages[0].content' <<<"$output") == *"files, functions, classes"* ]]
	llm-summarize --model tiny --num-ctx 4096 <"$BATS_TEST_TMPDIR/in" >/dev/null
	assert_equal "$(fake_requests GPU1 | tail -n 1 | jq -c '.body | [.model, .options.num_ctx]')" '["tiny",4096]'
}

@test "the summary is trimmed to --target and thinking never reaches the output" {
	mkchat >"$BATS_TEST_TMPDIR/in"
	fake_control GPU1 '{"answer_words": 3000, "thinking": "tags"}'
	run --separate-stderr llm-summarize -v --target 100 <"$BATS_TEST_TMPDIR/in"
	assert_success
	[[ $output != *"think>"* ]] || fail "thinking in the output"
	# The span's summary, without its extract: trimmed to the target, not
	# far under it (llm-estimate --text counts 5 tokens besides the text).
	s=$(jq -r '.messages[2].content' <<<"$output" | sed -n '/^--- Summary ---$/,/^--- Kept verbatim from it ---$/p' | sed '1d;$d')
	n=$(printf '%s' "$s" | llm-estimate -n --text)
	(( n - 5 <= 100 && n - 5 > 80 )) || fail "$n: $s"
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/out"
	printf '%s\n' "$stderr" >"$BATS_TEST_TMPDIR/err"
	check "$BATS_TEST_TMPDIR/in" "$BATS_TEST_TMPDIR/out" "$BATS_TEST_TMPDIR/err" 100 500
	fake_reset GPU1
	fake_control GPU1 '{"thinking": "field"}'
	run --separate-stderr llm-summarize <"$BATS_TEST_TMPDIR/in"
	[[ $output != *"think"* ]] || fail "thinking in the output"
}

@test "helper failures fall back to the extractive summary with one warning" {
	mkchat >"$BATS_TEST_TMPDIR/in"
	llm-summarize --extractive <"$BATS_TEST_TMPDIR/in" >"$BATS_TEST_TMPDIR/want"
	for fault in '{"status": 500}' '{"status": 404}' '{"answer": ""}' '{"thinking": "only"}' \
	    '{"drop_after": 2}' '{"malformed_after": 1}' '{"first_byte_delay": 3}' '{"stall_after": 1, "stall_seconds": 3}'; do
		fake_reset GPU1
		fake_control GPU1 "$fault"
		run --separate-stderr llm-summarize --first-byte-timeout 0.5 --idle-timeout 0.5 <"$BATS_TEST_TMPDIR/in"
		assert_success
		assert_equal "${#stderr_lines[@]}" 1
		[[ $stderr == "llm-summarize: GPU1 "*"; using the extractive summary" ]] || fail "$fault: $stderr"
		assert_equal "$output" "$(cat "$BATS_TEST_TMPDIR/want")"
	done
	run --separate-stderr llm-summarize --url http://127.0.0.1:1 <"$BATS_TEST_TMPDIR/in"
	assert_success
	[[ $stderr == *"cannot connect: Connection refused"*"; using the extractive summary" ]] || fail "$stderr"
	run --separate-stderr llm-summarize -q --url http://127.0.0.1:1 <"$BATS_TEST_TMPDIR/in"
	assert_equal "$stderr" ""
}

@test "--on-helper-failure=direct passes the chat on unchanged; =fail fails" {
	mkchat >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr llm-summarize --on-helper-failure=direct --url http://127.0.0.1:1 <"$BATS_TEST_TMPDIR/in"
	assert_success
	assert_output "$(cat "$BATS_TEST_TMPDIR/in")"
	[[ $stderr == *"; passing the chat on unchanged" ]]
	run --separate-stderr llm-summarize --on-helper-failure=fail --url http://127.0.0.1:1 <"$BATS_TEST_TMPDIR/in"
	assert_fails 4 "GPU1 http://127.0.0.1:1/api/show: .*onnect"
	fake_control GPU1 '{"status": 503}'
	run --separate-stderr llm-summarize --on-helper-failure=fail <"$BATS_TEST_TMPDIR/in"
	assert_fails 6 "HTTP 503"
	run --separate-stderr llm-summarize --on-helper-failure=maybe </dev/null
	assert_equal "$status" 2
}

@test "never larger than the input: a small chat passes through unchanged" {
	printf '{"messages":[{"role":"system","content":"s"},{"role":"user","content":"a"},{"role":"assistant","content":"b"},{"role":"user","content":"c"},{"role":"assistant","content":"d"},{"role":"user","content":"e"}]}' >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr llm-summarize -v --keep-last 1 <"$BATS_TEST_TMPDIR/in"
	assert_success
	assert_output "$(cat "$BATS_TEST_TMPDIR/in")"
	[[ $stderr == *'how=unchanged why="the condensed chat is not smaller"'* ]] || fail "$stderr"
	chat | llm-summarize -v >"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err"
	assert_equal "$(cat "$BATS_TEST_TMPDIR/out")" "$(chat)"
	grep -q 'why="nothing to condense"' "$BATS_TEST_TMPDIR/err"
	assert_equal "$(fake_count GPU1)" 1	# only the first chat asked the helper
}

@test "shapes: OpenAI parts keep their shape, a bare array stays an array" {
	mkchat | jq -c '.messages |= map(.content |= [{type: "text", text: .}]) | .temperature = 0.5' >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr llm-summarize <"$BATS_TEST_TMPDIR/in"
	assert_success
	# The kept messages keep their parts; the block is a message of its own.
	assert_equal "$(jq -c '.messages[0:2] | map(.content | map(.type))' <<<"$output")" '[["text"],["text"]]'
	assert_equal "$(jq -c '.messages[:2] + .messages[3:]' <<<"$output")" "$(jq -c '.messages[:2] + .messages[-4:]' "$BATS_TEST_TMPDIR/in")"
	assert_equal "$(jq -r '.messages[2].content | split("\n")[0]' <<<"$output")" "$HEAD"
	assert_equal "$(jq .temperature <<<"$output")" 0.5
	mkchat | jq -c .messages >"$BATS_TEST_TMPDIR/arr"
	run --separate-stderr llm-summarize <"$BATS_TEST_TMPDIR/arr"
	assert_equal "$(jq -r 'type, length' <<<"$output" | paste -sd ' ')" "array 7"
	assert_equal "$(jq -r '.[2].content | split("\n")[0]' <<<"$output")" "$HEAD"
}

@test "plain text input gives a plain-text summary" {
	{ for i in $(seq 1 60); do echo "2026-11-26 12:00:$i worker $i: processed batch $i of the nightly import in 3.$i s"; done
	  echo "2026-11-26 12:01:00 worker 7: error: cannot open /var/lib/import/batch7.csv"; } >"$BATS_TEST_TMPDIR/log"
	run --separate-stderr llm-summarize --extractive --target 60 <"$BATS_TEST_TMPDIR/log"
	assert_success
	# The span as text: no head line, no message range.
	assert_equal "${lines[0]}" "--- Summary ---"
	[[ $output != *"--- Earlier conversation"* ]] || fail "$output"
	[[ $output == *"--- Kept verbatim from it ---
Errors:
2026-11-26 12:01:00 worker 7: error: cannot open /var/lib/import/batch7.csv"* ]] || fail "$output"
	(( $(wc -c <<<"$output") < $(wc -c <"$BATS_TEST_TMPDIR/log") ))
}

@test "--summary-only: all but the system messages summarized, the span as text" {
	mkchat >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr llm-summarize --summary-only <"$BATS_TEST_TMPDIR/in"
	assert_success
	assert_equal "${lines[0]}" "--- Summary ---"
	[[ ${lines[1]} == "fake answer from qwen3:1.7b: "* ]] || fail "$output"
	[[ $output != *"--- Earlier conversation"* && $output != *'"messages"'* ]] || fail "$output"
	# The helper read the task and the tail too, not the system message.
	u=$(fake_requests GPU1 | jq -r '.body.messages[1].content')
	[[ $u == "<conversation>
[user]
Step 0: please look"* && $u == *"[user]
Thanks, and now?"* && $u != *"You are a coding agent."* ]] || fail "$u"
	# The extract holds what the task and the tail hold as well.
	run --separate-stderr llm-summarize --summary-only --extractive <"$BATS_TEST_TMPDIR/in"
	assert_success
	[[ $output == *"--- Kept verbatim from it ---
Errors:
ValueError: bad value 3
"*"Files: src/app/main3.py, src/app/main2.py, src/app/main1.py, src/app/main0.py"* ]] || fail "$output"
	# Only system messages: nothing to summarize.
	run --separate-stderr llm-summarize --summary-only <<<'{"messages": [{"role": "system", "content": "s"}]}'
	assert_equal "$status" 3
	assert_equal "$output" ""
	[[ $stderr == *"nothing to summarize"* ]] || fail "$stderr"
}

@test "bad input is refused (status 3), nothing on stdout" {
	run --separate-stderr llm-summarize <<<'{"messages": [{"role": "user"}, 1]}'
	assert_fails 3 '^llm-summarize: bad input: messages\[1\]: expected an object, got a number$'
	run --separate-stderr llm-summarize </dev/null
	assert_fails 3 'empty input'
	run --separate-stderr llm-summarize --target 0 </dev/null
	assert_equal "$status" 2
	assert_equal "$(fake_count GPU1)" 0
}

@test "a batch loop: one output per file, an exit status per file" {
	mkdir "$BATS_TEST_TMPDIR/logs" "$BATS_TEST_TMPDIR/out"
	cp "$CORPUS/swe-agent__warmup.json" "$CORPUS/swe-agent__networking_1.json" "$BATS_TEST_TMPDIR/logs/"
	echo '{"messages": 3}' >"$BATS_TEST_TMPDIR/logs/bad.json"
	st=""
	for f in "$BATS_TEST_TMPDIR"/logs/*.json; do
		llm-summarize --extractive <"$f" >"$BATS_TEST_TMPDIR/out/${f##*/}" 2>/dev/null &&
			st="$st 0" || st="$st $?"
	done
	assert_equal "$st" " 3 0 0"
	assert_equal "$(wc -c <"$BATS_TEST_TMPDIR/out/bad.json")" 0
	jq -e . "$BATS_TEST_TMPDIR/out/swe-agent__warmup.json" >/dev/null
}

@test "-v logs the split, the helper request and the compression" {
	mkchat >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr llm-summarize -v <"$BATS_TEST_TMPDIR/in"
	assert_success
	# GPU1's window first (issue 11: never cut the helper's input).
	[[ ${stderr_lines[0]} == *" show role=GPU1 url=$GPU1_URL/api/show status=200 context_length="* ]] || fail "${stderr_lines[0]}"
	[[ ${stderr_lines[1]} == *" split messages=12 system=1 task=2 middle=6 middle_from=2 middle_to=8 tail=4" ]] || fail "${stderr_lines[1]}"
	[[ ${stderr_lines[2]} == *" request role=GPU1 url=$GPU1_URL/api/chat status=200 result=ok "* ]] || fail "${stderr_lines[2]}"
	[[ ${stderr_lines[3]} =~ condense\ how=helper\ tokens_in=[0-9]+\ tokens_out=[0-9]+\ ratio=0\.[0-9]+\ task=kept\ spans=1\ summary_tokens=[0-9]+$ ]] || fail "${stderr_lines[3]}"
}

@test "a signal during the model-free compressor: no output, status 143" {
	mkfifo "$BATS_TEST_TMPDIR/fifo"
	{ sleep 1; cat "$CORPUS/swe-agent__warmup.json"; } >"$BATS_TEST_TMPDIR/fifo" &
	llm-summarize --extractive <"$BATS_TEST_TMPDIR/fifo" >"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err" &
	pid=$!
	sleep 0.3
	kill -TERM $pid
	wait $pid && st=0 || st=$?
	assert_equal "$st" 143
	assert_equal "$(wc -c <"$BATS_TEST_TMPDIR/out")" 0
}

@test "a traceback longer than 80 lines, at the end of a message" {
	python3 -c '
import json
tb = "Traceback (most recent call last):\n" + "".join("  File \"/x/m%d.py\", line %d, in f\n" % (i, i) for i in range(90)) + "```"
msgs = [{"role": "system", "content": "s"}, {"role": "user", "content": "go " * 400},
        {"role": "assistant", "content": tb}] + [{"role": r, "content": "x"} for r in ("user", "assistant", "user", "assistant")]
print(json.dumps({"messages": msgs}))' >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr llm-summarize --extractive <"$BATS_TEST_TMPDIR/in"
	assert_success
	[[ $output == *"Traceback (most recent call last):"* ]] || fail "no traceback"
}

@test "the output is the input's bytes with only \"messages\" replaced; kept messages keep their bytes" {
	for flag in "" --openai; do
		python3 "$TESTS/lib/rawjson.py" chat ${flag:+"$flag"} >"$BATS_TEST_TMPDIR/in"
		llm-summarize <"$BATS_TEST_TMPDIR/in" >"$BATS_TEST_TMPDIR/out"
		run python3 "$TESTS/lib/rawjson.py" same-but "$BATS_TEST_TMPDIR/in" "$BATS_TEST_TMPDIR/out" messages
		assert_success
		assert_output ""
	done
}

@test "a raw control byte in a string: status 3, nothing on stdout, nothing asked" {
	printf '{"messages":[{"role":"user","content":"a\000b"}]}' >"$BATS_TEST_TMPDIR/nul"
	run --separate-stderr llm-summarize <"$BATS_TEST_TMPDIR/nul"
	assert_fails 3 '^llm-summarize: bad input: invalid JSON: raw control byte 0x00 in a string at byte 41 \(line 1, column 41\)$'
	assert_equal "$(fake_count GPU1)" 0
}
