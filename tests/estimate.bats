#!/usr/bin/env bats
# llm-estimate: the report, the thresholds from each source, every input
# shape and every kind of bad input.

load lib/common

@test "the report on a corpus file: fields, sums and the strategy" {
	run --separate-stderr llm-estimate <"$CORPUS/swe-agent__warmup.json"
	assert_success
	assert_equal "$(jq -c 'keys_unsorted' <<<"$output")" \
		'["tokens","chars","bytes","input_bytes","messages","by_role","strategy","thresholds","method","shape"]'
	assert_equal "$(jq '.by_role | add' <<<"$output")" "$(jq .tokens <<<"$output")"
	assert_equal "$(jq .messages <<<"$output")" "$(jq '.messages | length' "$CORPUS/swe-agent__warmup.json")"
	assert_equal "$(jq .chars <<<"$output")" "$(jq '[.messages[].content | length] | add' "$CORPUS/swe-agent__warmup.json")"
	assert_equal "$(jq .input_bytes <<<"$output")" "$(wc -c <"$CORPUS/swe-agent__warmup.json")"
	assert_equal "$(jq -c '[.thresholds, .method, .shape]' <<<"$output")" '[{"a_max":2000,"b_max":6000},"qwen","ollama"]'
}

@test "every corpus file: -n equals the report, the strategy follows the thresholds" {
	for f in "$CORPUS"/*.json; do
		r=$(llm-estimate -c <"$f") || fail "$f: status $?"
		n=$(llm-estimate -n <"$f")
		t=$(jq .tokens <<<"$r")
		assert_equal "$n" "$t"
		want=$(jq -r 'if .tokens < 2000 then "direct" elif .tokens < 6000 then "summarize" else "mapreduce" end' <<<"$r")
		assert_equal "$(jq -r .strategy <<<"$r")" "$want"
		[[ $r != *$'\n'* ]] || fail "-c printed more than one line"
	done
}

@test "the corpus covers all three strategies" {
	for f in "$CORPUS"/*.json; do llm-estimate -c <"$f" | jq -r .strategy; done | sort -u >"$BATS_TEST_TMPDIR/s"
	assert_equal "$(paste -sd ' ' "$BATS_TEST_TMPDIR/s")" "direct mapreduce summarize"
}

@test "the default estimate is within 15% of the Qwen tokenizer on every corpus file" {
	ref=$TOP/bench/tokenize/reference.tsv
	[[ -f $ref ]] || fail "no $ref"
	while IFS=$'\t' read -r file _ real _; do
		[[ $file == file || $file == \#* ]] && continue
		est=$(llm-estimate -n <"$CORPUS/$file")
		err=$(( (est - real) * 1000 / real ))
		(( err <= 150 && err >= -150 )) || fail "$file: estimate $est, real $real"
	done <"$ref"
}

@test "--per-message lists every message; sizes add up" {
	run --separate-stderr llm-estimate --per-message <"$CORPUS/swe-agent__networking_1.json"
	assert_success
	assert_equal "$(jq '.per_message | length' <<<"$output")" "$(jq .messages <<<"$output")"
	assert_equal "$(jq '[.per_message[].tokens] | add' <<<"$output")" "$(jq .tokens <<<"$output")"
	assert_equal "$(jq -c '.per_message[0] | keys_unsorted' <<<"$output")" '["index","role","tokens","chars","bytes"]'
}

@test "--method chars4 is the design note's characters / 4" {
	run --separate-stderr llm-estimate --method chars4 -c <"$CORPUS/swe-agent__warmup.json"
	assert_success
	assert_equal "$(jq -r .method <<<"$output")" chars4
	# Each message's content characters / 4, rounded up.
	assert_equal "$(jq .tokens <<<"$output")" \
		"$(jq '[.messages[].content | length | (. + 3) / 4 | floor] | add' "$CORPUS/swe-agent__warmup.json")"
	run --separate-stderr llm-estimate --method bpe </dev/null
	assert_equal "$status" 2
	[[ $stderr == *"--method: unknown method 'bpe'"* ]]
}

@test "each input shape: Ollama, OpenAI parts, bare array, plain text" {
	jq '.messages |= map(.content |= [{type: "text", text: .}])' \
		"$CORPUS/swe-agent__warmup.json" >"$BATS_TEST_TMPDIR/parts.json"
	run llm-estimate -c <"$BATS_TEST_TMPDIR/parts.json"
	assert_equal "$(jq -r .shape <<<"$output")" openai
	assert_equal "$(jq .tokens <<<"$output")" "$(llm-estimate -n <"$CORPUS/swe-agent__warmup.json")"
	jq .messages "$CORPUS/swe-agent__warmup.json" >"$BATS_TEST_TMPDIR/a.json"
	run llm-estimate -c <"$BATS_TEST_TMPDIR/a.json"
	assert_equal "$(jq -r .shape <<<"$output")" array
	assert_equal "$(jq .tokens <<<"$output")" "$(llm-estimate -n <"$CORPUS/swe-agent__warmup.json")"
	run llm-estimate -c <<<"plain words, a log line"
	assert_equal "$(jq -c '[.shape, .messages, (.by_role | keys)]' <<<"$output")" '["text",1,["user"]]'
	run llm-estimate -c --text <"$BATS_TEST_TMPDIR/a.json"
	assert_equal "$(jq -r .shape <<<"$output")" text
	# Only text parts count: an image part adds nothing.
	jq -nc '{messages: [{role: "user", content: [{type: "text", text: "hello"}]}]}' >"$BATS_TEST_TMPDIR/p1"
	jq -nc '{messages: [{role: "user", content: [{type: "text", text: "hello"},
		{type: "image_url", image_url: {url: "data:image/png;base64,AAAA"}}]}]}' >"$BATS_TEST_TMPDIR/p2"
	assert_equal "$(llm-estimate -n <"$BATS_TEST_TMPDIR/p1")" "$(llm-estimate -n <"$BATS_TEST_TMPDIR/p2")"
}

@test "tool calls count towards a message's tokens" {
	jq -nc '{messages: [{role: "assistant", content: ""}]}' >"$BATS_TEST_TMPDIR/a"
	jq -nc '{messages: [{role: "assistant", content: "", tool_calls: [{function:
		{name: "read_file", arguments: {path: "src/main.c"}}}]}]}' >"$BATS_TEST_TMPDIR/b"
	(( $(llm-estimate -n <"$BATS_TEST_TMPDIR/b") > $(llm-estimate -n <"$BATS_TEST_TMPDIR/a") + 5 ))
}

@test "thresholds: flags over environment over config file over defaults" {
	f=$CORPUS/swe-agent__warmup.json	# about 4900 tokens
	cfg=$BATS_TEST_TMPDIR/config
	export XDG_CONFIG_HOME=$BATS_TEST_TMPDIR/xdg
	mkdir -p "$XDG_CONFIG_HOME/llm-route"
	printf 'a_max = 100\nb_max = 200\n' >"$XDG_CONFIG_HOME/llm-route/config"
	assert_equal "$(llm-estimate -c <"$f" | jq -c '[.thresholds[], .strategy]')" '[100,200,"mapreduce"]'
	assert_equal "$(LLM_ROUTE_B_MAX=90000 llm-estimate -c <"$f" | jq -c '[.thresholds[], .strategy]')" '[100,90000,"summarize"]'
	assert_equal "$(LLM_ROUTE_A_MAX=10 LLM_ROUTE_B_MAX=90000 llm-estimate --a-max 8000 -c <"$f" | jq -c '[.thresholds[], .strategy]')" '[8000,90000,"direct"]'
	printf 'a_max = 7000\nb_max = 9000\n' >"$cfg"
	# LLM_ROUTE_CONFIG names the file instead of the XDG one.
	assert_equal "$(LLM_ROUTE_CONFIG=$cfg llm-estimate -c <"$f" | jq -c '[.thresholds[], .strategy]')" '[7000,9000,"direct"]'
	rm "$XDG_CONFIG_HOME/llm-route/config"
	assert_equal "$(llm-estimate -c <"$f" | jq -c '[.thresholds[], .strategy]')" '[2000,6000,"summarize"]'
}

@test "bad thresholds are usage errors (status 2)" {
	run --separate-stderr llm-estimate --a-max 7000 </dev/null
	assert_fails 2 "^llm-estimate: A_MAX \(7000, from --a-max\) is greater than B_MAX \(6000, from default\)$"
	run --separate-stderr env LLM_ROUTE_A_MAX=lots llm-estimate </dev/null
	assert_fails 2 "^llm-estimate: LLM_ROUTE_A_MAX: bad value 'lots' for a_max: not a number$"
	run --separate-stderr llm-estimate --b-max -5 </dev/null
	assert_equal "$status" 2
}

@test "bad input: empty, blank, invalid JSON with where, not a chat (status 3)" {
	run --separate-stderr llm-estimate </dev/null
	assert_fails 3 '^llm-estimate: bad input: empty input$'
	run --separate-stderr llm-estimate <<<$'  \n\t'
	assert_fails 3 'empty input'
	run --separate-stderr llm-estimate <<<'{"messages": [{"role": "user", "content": "x"}'
	assert_fails 3 '^llm-estimate: bad input: invalid JSON: Unfinished JSON term at EOF at line 2, column 0'
	run --separate-stderr llm-estimate <<<'{"messages" [] }'
	assert_fails 3 "invalid JSON: .* at line 1, column [0-9]+, after '\{\"messages\" \['"
	run --separate-stderr llm-estimate <<<'{"model": "m"}'
	assert_fails 3 '^llm-estimate: bad input: not a chat: no "messages"$'
	run --separate-stderr llm-estimate <<<'{"messages": "hi"}'
	assert_fails 3 '"messages": expected an array, got a string$'
	run --separate-stderr llm-estimate <<<'{"messages": [null]}'
	assert_fails 3 'messages\[0\]: expected an object, got null$'
	run --separate-stderr llm-estimate <<<'{"messages": [{"role": "user", "content": "a"}, {"role": 7}]}'
	assert_fails 3 'messages\[1\].role: expected a string, got a number$'
	run --separate-stderr llm-estimate <<<'{"messages": [{"role": "user", "content": {"text": "a"}}]}'
	assert_fails 3 'messages\[0\].content: expected a string or an array of parts, got an object$'
	run --separate-stderr llm-estimate <<<'{"messages": [{"role": "user", "content": [7]}]}'
	assert_fails 3 'messages\[0\].content\[0\]: expected an object, got a number$'
	run --separate-stderr llm-estimate <<<'{"messages": [], "options": []}'
	assert_fails 3 '"options": expected an object, got an array$'
	run --separate-stderr llm-estimate <<<'[1, 2]'
	assert_fails 3 'messages\[0\]: expected an object, got a number$'
}

@test "limits: input size and nesting depth (status 3)" {
	run --separate-stderr llm-estimate --max-input 1K <"$CORPUS/swe-agent__warmup.json"
	assert_fails 3 '^llm-estimate: input larger than 1024 bytes \(see --max-input\)$'
	run --separate-stderr llm-estimate --max-input 1M <"$CORPUS/swe-agent__warmup.json"
	assert_success
	run --separate-stderr bash -c "python3 -c 'print(\"[\" * 65 + \"]\" * 65)' | llm-estimate"
	assert_fails 3 '^llm-estimate: bad input: nesting deeper than 64 levels at line 1, column 65$'
	run --separate-stderr bash -c "python3 -c 'print(\"{\\\"messages\\\":[]}\" + \" \" * 10)' | llm-estimate -n"
	assert_success
	run --separate-stderr llm-estimate --max-input 0 </dev/null
	assert_equal "$status" 2
	run --separate-stderr llm-estimate --max-input 12Q </dev/null
	assert_equal "$status" 2
}

@test "binary and invalid UTF-8 input never crashes" {
	head -c 4096 /dev/urandom >"$BATS_TEST_TMPDIR/r"
	run --separate-stderr llm-estimate -n <"$BATS_TEST_TMPDIR/r"
	(( status == 0 || status == 3 )) || fail "status $status"
	printf '{"messages":[{"role":"user","content":"\xff\xfe\x00abc"}]}' >"$BATS_TEST_TMPDIR/u"
	run --separate-stderr llm-estimate -n <"$BATS_TEST_TMPDIR/u"
	(( status == 0 || status == 3 )) || fail "status $status"
	printf '[{"role":"user","content":"a\\u0000b"}]' | llm-estimate -n
}

@test "a write error on stdout is an error (status 1)" {
	[[ -w /dev/full ]] || fail "no /dev/full"
	run --separate-stderr bash -c "llm-estimate <'$CORPUS/swe-agent__warmup.json' >/dev/full"
	assert_equal "$status" 1
	[[ $stderr == "llm-estimate: writing output: No space left on device" ]]
}

@test "-v logs the estimate; --log-json the same as JSON" {
	run --separate-stderr llm-estimate -v -n <"$CORPUS/swe-agent__warmup.json"
	assert_success
	[[ $stderr =~ ^[0-9:.]+\ llm-estimate:\ estimate\ shape=ollama\ messages=15\ bytes_in=[0-9]+\ tokens=$output\ method=qwen\ strategy=summarize\ ms= ]] || fail "$stderr"
	run --separate-stderr llm-estimate --log-json -n <"$CORPUS/swe-agent__warmup.json"
	assert_equal "$(jq -c '[.event, .tokens, .strategy]' <<<"$stderr")" "[\"estimate\",$output,\"summarize\"]"
}

@test "config file: comments, quoted values, an error names file and line" {
	cfg=$BATS_TEST_TMPDIR/config
	printf '# thresholds\n\n  a_max = 100   # lower\nb_max="200"\n' >"$cfg"
	assert_equal "$(LLM_ROUTE_CONFIG=$cfg llm-estimate -c </dev/null <<<hi | jq -c '[.thresholds[]]')" '[100,200]'
	printf 'a_max = 100\nb_max 200\n' >"$cfg"
	run --separate-stderr env LLM_ROUTE_CONFIG="$cfg" llm-estimate <<<hi
	assert_fails 2 "^llm-estimate: $cfg:2: expected 'key = value'$"
}

@test "usage errors name the option as typed (status 2)" {
	run --separate-stderr llm-estimate --bogus
	assert_equal "$status" 2
	assert_equal "$stderr" "llm-estimate: unknown option '--bogus'
Try 'llm-estimate --help' for more information."
	run --separate-stderr llm-estimate -x
	assert_equal "${stderr_lines[0]}" "llm-estimate: unknown option '-x'"
	run --separate-stderr llm-estimate --method
	assert_equal "${stderr_lines[0]}" "llm-estimate: option '--method' needs a value"
	run --separate-stderr llm-estimate --tokens=3
	assert_equal "${stderr_lines[0]}" "llm-estimate: option '--tokens' takes no value"
}

@test "flags fix thresholds that the environment set inconsistently" {
	run --separate-stderr env LLM_ROUTE_A_MAX=7000 llm-estimate --b-max 8000 -c <<<hi
	assert_success
	assert_equal "$(jq -c '.thresholds' <<<"$output")" '{"a_max":7000,"b_max":8000}'
}

@test "a raw control byte in a string is invalid JSON (RFC 8259), named with where it is (status 3)" {
	# libjq 1.6 takes a raw NUL in a string; the pre-scan does not.
	printf '{"messages":[{"role":"user","content":"a\000b"}]}' >"$BATS_TEST_TMPDIR/nul"
	run --separate-stderr llm-estimate <"$BATS_TEST_TMPDIR/nul"
	assert_fails 3 '^llm-estimate: bad input: invalid JSON: raw control byte 0x00 in a string at byte 41 \(line 1, column 41\)$'
	printf '[{"role":"user",\r\n "content":"a\tb"}]' >"$BATS_TEST_TMPDIR/tab"
	run --separate-stderr llm-estimate <"$BATS_TEST_TMPDIR/tab"
	assert_fails 3 '^llm-estimate: bad input: invalid JSON: raw control byte 0x09 in a string at byte 32 \(line 2, column 14\)$'
	# Outside a string only white space may be a control byte.
	printf '{"messages":[]}\000' >"$BATS_TEST_TMPDIR/tail"
	run --separate-stderr llm-estimate <"$BATS_TEST_TMPDIR/tail"
	assert_fails 3 '^llm-estimate: bad input: invalid JSON: raw control byte 0x00 outside a string at byte 16 \(line 1, column 16\)$'
	# Escaped, they are fine; as plain text too.
	run llm-estimate -n <<<'{"messages":[{"role":"user","content":"a\u0000b\\\"\n"}]}'
	assert_success
	printf 'a\000b' | llm-estimate -n
}
