# common.bash - loaded by every bats file: assertions, the fake server,
# the corpus, and small helpers.
bats_require_minimum_version 1.5.0
load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

TESTS=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOP=$(cd "$TESTS/.." && pwd)
# Real coding-agent conversations (see corpus/SOURCES.md for their licence).
CORPUS=$TESTS/corpus
source "$TESTS/lib/fake.bash"

# When run alone (not by tests/run), use the programs in bin/.
if ! command -v llm-estimate >/dev/null; then
	PATH=$TOP/bin:$PATH
fi

# Assert that the last `run --separate-stderr` failed with status $1 and
# exactly one line on stderr matching the regex $2, and nothing on stdout.
assert_fails() {
	assert_equal "$status" "$1"
	assert_equal "${#stderr_lines[@]}" 1
	[[ ${stderr_lines[0]} =~ $2 ]] || fail "stderr '${stderr_lines[0]}' does not match '$2'"
	assert_equal "$output" ""
}

# Are the programs instrumented (valgrind, ASan)?  Then their memory
# and time say nothing of the programs' own.
instrumented() {
	[[ -n ${LLM_ROUTE_WRAP:-} || ${LLM_ROUTE_BINDIR:-} == *-san ]]
}

# A small chat request.
chat() {
	jq -nc --arg c "${1:-Say hi in five words}" \
		'{model: "qwen2.5-coder:7b", messages: [{role: "user", content: $c}]}'
}
export -f chat
