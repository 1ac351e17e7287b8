#!/usr/bin/env bats
# Condensed chats rendered through the models' own chat templates (SPEC
# section 3: a condensed chat holds a role sequence the templates accept):
# Qwen2.5's and Qwen3's, and Qwen3.5's, which raises "No user query found in
# messages." when no user message is left. See templates/SOURCES.md.

load lib/common

TEMPLATES=$TESTS/templates
# Debian's python3-jinja2 (make deps) is for Debian's own python3, whatever
# python3 comes first in PATH.
JINJA_PY=${JINJA_PY:-/usr/bin/python3}

# render_all FILE...: render every FILE through every template; fail with
# each template's errors ("TEMPLATE: FILE: message").
render_all() {
	local t out errs=()
	for t in qwen2.5 qwen3 qwen3.5; do
		out=$("$JINJA_PY" "$TESTS/lib/render_chat.py" "$TEMPLATES/$t.jinja" "$@" 2>&1) ||
			errs+=("$(sed "s|^|$t: |" <<<"${out:-status $?}")")
	done
	((${#errs[@]} == 0)) || fail "$(printf '%s\n' "${errs[@]}")"
}

# condense_all COMMAND...: condense every corpus file with COMMAND into
# $BATS_TEST_TMPDIR, and check that most of them did lose messages.
condense_all() {
	local f out shrunk=0 n=0
	for f in "$CORPUS"/*.json; do
		out=$BATS_TEST_TMPDIR/${f##*/}
		"$@" <"$f" >"$out" 2>"$BATS_TEST_TMPDIR/err" ||
			fail "$f: $* exited with status $?: $(cat "$BATS_TEST_TMPDIR/err")"
		(($(jq '.messages | length' "$out") < $(jq '.messages | length' "$f"))) && shrunk=$((shrunk + 1))
		n=$((n + 1))
	done
	((shrunk * 2 > n)) || fail "only $shrunk of $n corpus files were condensed"
}

@test "the corpus as it is renders through every template" {
	render_all "$CORPUS"/*.json
}

@test "llm-mapreduce --extractive: every condensed corpus file renders through every template" {
	condense_all llm-mapreduce --extractive --no-cache --chunk-tokens 800 --keep-last 2
	render_all "$BATS_TEST_TMPDIR"/*.json
}

@test "llm-summarize --extractive: every condensed corpus file renders through every template" {
	condense_all llm-summarize --extractive --keep-last 2
	render_all "$BATS_TEST_TMPDIR"/*.json
}

# A condensed-looking chat: the summary in the system message, then the
# tail of a tool loop, and no user message anywhere.
no_user_chat() {
	jq -n '{model: "qwen3.5:9b", messages: [
		{role: "system", content: "You are a coding agent.\n\nSummary of the earlier conversation: the task is to fix the parser in src/app/main.py."},
		{role: "assistant", content: "", tool_calls: [{function: {name: "bash", arguments: {command: "pytest tests/test_main.py"}}}]},
		{role: "tool", content: "1 passed in 0.02s"}]}'
}

@test "control: a chat without a user message fails the strict template" {
	no_user_chat >"$BATS_TEST_TMPDIR/chat.json"
	run "$JINJA_PY" "$TESTS/lib/render_chat.py" "$TEMPLATES/qwen3.5.jinja" "$BATS_TEST_TMPDIR/chat.json"
	assert_failure 1
	assert_output "$BATS_TEST_TMPDIR/chat.json: No user query found in messages."
}

@test "control: the same chat with the task as a user message renders through every template" {
	no_user_chat | jq '.messages |= .[:1] + [{role: "user", content: "Fix the parser in src/app/main.py."}] + .[1:]' \
		>"$BATS_TEST_TMPDIR/chat.json"
	render_all "$BATS_TEST_TMPDIR/chat.json"
}

@test "render_chat.py: usage errors exit 2" {
	run "$JINJA_PY" "$TESTS/lib/render_chat.py" "$TEMPLATES/qwen3.5.jinja"
	assert_failure 2
	run "$JINJA_PY" "$TESTS/lib/render_chat.py" "$TEMPLATES/no-such.jinja" "$CORPUS/swe-agent__warmup.json"
	assert_failure 2
}
