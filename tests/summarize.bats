#!/usr/bin/env bats
# llm-summarize (strategy B): the invariants of SPEC section 3, the helper
# request, every helper failure with its fallback, and bad input.

load lib/common

setup_file() {
	fake_start GPU1
}

teardown_file() {
	fake_stop GPU1
}

setup() {
	fake_reset GPU1
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

check() {	# check IN OUT ERR [TARGET PRESERVE KEEP_LAST]
	run python3 "$TESTS/lib/check_condensed.py" "$1" "$2" "$3" "${4:-500}" "${5:-500}" "${6:-4}"
	assert_success
	assert_output ""
}

@test "every corpus file, extractive: the SPEC section 3 invariants hold" {
	for f in "$CORPUS"/*.json; do
		llm-summarize --extractive -v <"$f" >"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err" ||
			fail "$f: status $?"
		check "$f" "$BATS_TEST_TMPDIR/out" "$BATS_TEST_TMPDIR/err"
	done
}

@test "every corpus file, with the fake helper: the invariants hold" {
	for f in "$CORPUS"/*.json; do
		llm-summarize -v <"$f" >"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err" ||
			fail "$f: status $?"
		check "$f" "$BATS_TEST_TMPDIR/out" "$BATS_TEST_TMPDIR/err"
	done
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

@test "system messages and the tail are kept verbatim; the block is appended to the system message" {
	mkchat >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr llm-summarize <"$BATS_TEST_TMPDIR/in"
	assert_success
	# The tail: the last user message and after, and at least 4 (the default).
	assert_equal "$(jq -c '[.messages[] | .role]' <<<"$output")" '["system","assistant","user","assistant","user"]'
	assert_equal "$(jq -c '.messages[1:]' <<<"$output")" "$(jq -c '.messages[-4:]' "$BATS_TEST_TMPDIR/in")"
	assert_equal "$(jq -r '.messages[0].content' <<<"$output" | head -3)" "You are a coding agent.

--- Earlier conversation (messages 2-8), condensed by llm-route ---"
	# Every other field intact, in its order.
	assert_equal "$(jq -c 'del(.messages)' <<<"$output")" '{"model":"qwen2.5-coder:7b","stream":true,"options":{"temperature":0.2},"keep_alive":"10m"}'
}

@test "code, paths and errors of the middle are carried over verbatim, newest first" {
	mkchat >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr llm-summarize <"$BATS_TEST_TMPDIR/in"
	block=$(jq -r '.messages[0].content' <<<"$output")
	# Paths inside a kept code block are not listed again.
	[[ $block == *"Errors:
ValueError: bad value 2
ValueError: bad value 1
ValueError: bad value 0
Files: src/app/main3.py, src/app/main2.py, src/app/main1.py, src/app/main0.py
Code:
\`\`\`
pytest tests/test_2.py
\`\`\`
\`\`\`
pytest tests/test_1.py"* ]] || fail "$block"
}

@test "--keep-last N keeps at least the last N messages" {
	mkchat >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr llm-summarize --keep-last 6 <"$BATS_TEST_TMPDIR/in"
	assert_success
	assert_equal "$(jq '.messages | length' <<<"$output")" 7
	assert_equal "$(jq -c '.messages[1:]' <<<"$output")" "$(jq -c '.messages[-6:]' "$BATS_TEST_TMPDIR/in")"
	assert_equal "$(jq -r '.messages[0].content' <<<"$output" | sed -n 3p)" \
		"--- Earlier conversation (messages 2-6), condensed by llm-route ---"
	run --separate-stderr llm-summarize --keep-last 0 <"$BATS_TEST_TMPDIR/in"
	assert_equal "$(jq -c '.messages[1:]' <<<"$output")" "$(jq -c '.messages[-1:]' "$BATS_TEST_TMPDIR/in")"
}

@test "no system message: the block becomes a new leading system message" {
	mkchat | jq -c '.messages |= .[1:]' >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr llm-summarize <"$BATS_TEST_TMPDIR/in"
	assert_success
	assert_equal "$(jq -r '.messages[0] | .role, (.content | split("\n")[0])' <<<"$output")" "system
--- Earlier conversation (messages 1-7), condensed by llm-route ---"
}

@test "--summarize-system condenses the system message too" {
	mkchat >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr llm-summarize --summarize-system <"$BATS_TEST_TMPDIR/in"
	assert_success
	assert_equal "$(jq '[.messages[] | select(.role == "system")] | length' <<<"$output")" 1
	assert_equal "$(jq -r '.messages[0].content | split("\n")[0]' <<<"$output")" \
		"--- Earlier conversation (messages 1-8), condensed by llm-route ---"
	run fake_requests GPU1
	[[ $(jq -r '.body.messages[1].content' <<<"$output") == *"[system]
You are a coding agent."* ]]
}

@test "two turns with the same condensed part share the same prefix" {
	mkchat >"$BATS_TEST_TMPDIR/t1"
	jq -c '.messages += [{role: "assistant", content: "Here is the next step."}]' "$BATS_TEST_TMPDIR/t1" >"$BATS_TEST_TMPDIR/t2"
	# With --keep-last 1 the tail starts at the last user message in both.
	llm-summarize --keep-last 1 <"$BATS_TEST_TMPDIR/t1" >"$BATS_TEST_TMPDIR/o1"
	llm-summarize --keep-last 1 <"$BATS_TEST_TMPDIR/t2" >"$BATS_TEST_TMPDIR/o2"
	assert_equal "$(jq -c '.messages[0]' "$BATS_TEST_TMPDIR/o2")" "$(jq -c '.messages[0]' "$BATS_TEST_TMPDIR/o1")"
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
	[[ $u == "<conversation>
[user]
Step 0: please look at src/app/main0.py"* ]] || fail "$u"
	[[ $u == *"Summarize the conversation above in at most 150 words." ]] || fail "$u"
	[[ $u != *"Now fix it."* && $u != *"You are a coding agent."* ]] || fail "tail or system in the request"
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
	[[ $stderr =~ summary_tokens=([0-9]+) ]] && (( BASH_REMATCH[1] <= 100 && BASH_REMATCH[1] > 80 )) ||
		fail "$stderr"
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
	assert_fails 4 "GPU1 http://127.0.0.1:1/api/chat: .*onnect"
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
	assert_equal "$(jq -c '.messages[0].content | map(.type)' <<<"$output")" '["text","text"]'
	assert_equal "$(jq -r '.messages[0].content[1].text | split("\n")[0]' <<<"$output")" \
		"--- Earlier conversation (messages 2-8), condensed by llm-route ---"
	assert_equal "$(jq .temperature <<<"$output")" 0.5
	mkchat | jq -c .messages >"$BATS_TEST_TMPDIR/arr"
	run --separate-stderr llm-summarize <"$BATS_TEST_TMPDIR/arr"
	assert_equal "$(jq -r 'type, length' <<<"$output" | paste -sd ' ')" "array 5"
}

@test "plain text input gives a plain-text summary" {
	{ for i in $(seq 1 60); do echo "2026-11-26 12:00:$i worker $i: processed batch $i of the nightly import in 3.$i s"; done
	  echo "2026-11-26 12:01:00 worker 7: error: cannot open /var/lib/import/batch7.csv"; } >"$BATS_TEST_TMPDIR/log"
	run --separate-stderr llm-summarize --extractive --target 60 <"$BATS_TEST_TMPDIR/log"
	assert_success
	assert_equal "${lines[0]}" "--- Earlier conversation (messages 1-1), condensed by llm-route ---"
	[[ $output == *"Errors:
2026-11-26 12:01:00 worker 7: error: cannot open /var/lib/import/batch7.csv"* ]] || fail "$output"
	(( $(wc -c <<<"$output") < $(wc -c <"$BATS_TEST_TMPDIR/log") ))
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
	[[ ${stderr_lines[0]} == *" split messages=12 system=1 middle=7 middle_from=2 middle_to=8 tail=4" ]] || fail "${stderr_lines[0]}"
	[[ ${stderr_lines[1]} == *" request role=GPU1 url=$GPU1_URL/api/chat status=200 result=ok "* ]] || fail "${stderr_lines[1]}"
	[[ ${stderr_lines[2]} =~ condense\ how=helper\ tokens_in=[0-9]+\ tokens_out=[0-9]+\ ratio=0\.[0-9] ]] || fail "${stderr_lines[2]}"
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
