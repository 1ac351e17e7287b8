#!/usr/bin/env bats
# Documented examples are tests: every command of the README's console
# blocks and of the man pages' EXAMPLES runs against the fake server, and
# where the document shows output, the output must be that.

load lib/common

setup_file() {
	fake_start GPU0
	fake_start GPU1
}

teardown_file() {
	fake_stop GPU0
	fake_stop GPU1
}

setup() {
	fake_reset GPU0
	fake_reset GPU1
	export LLM_GPU0_URL=$GPU0_URL LLM_GPU1_URL=$GPU1_URL
	cd "$TOP"
}

# examples FILE: print "command<TAB>expected output (\n-escaped)" for
# each "$ " line; README: in ```console blocks; man: in .Bd blocks.
examples() {
	awk -v man="${1##*.}" '
		function flush() {
			if (cmd != "") print cmd "\t" out
			cmd = ""; out = ""
		}
		man == "md" && /^```console/ { inblock = 1; next }
		man == "md" && /^```/ { flush(); inblock = 0; next }
		man != "md" && /^\.Bd/ { inblock = 1; next }
		man != "md" && /^\.Ed/ { flush(); inblock = 0; next }
		!inblock { next }
		/^\$ / { flush(); cmd = substr($0, 3); next }
		cmd != "" { out = out (out == "" ? "" : "\\n") $0 }
	' "$1"
}

check_examples() {
	local n=0 cmd want got
	while IFS=$'\t' read -r cmd want; do
		n=$((n + 1))
		got=$(bash -c "$cmd" 2>&1) || [[ $want == *"exit "* ]] ||
			fail "'$cmd' failed: $got"
		if [[ -n $want ]]; then
			assert_equal "$got" "$(printf '%b' "$want")"
		fi
	done < <(examples "$1")
	(( n > 0 )) || fail "no examples found in $1"
}

@test "README: every console command runs and prints what it shows" {
	check_examples README.md
}

@test "llm-estimate(1): every EXAMPLES command runs" {
	check_examples man/llm-estimate.1
}

@test "llm-generate(1): every EXAMPLES command runs" {
	check_examples man/llm-generate.1
}

@test "llm-summarize(1): every EXAMPLES command runs" {
	check_examples man/llm-summarize.1
}

@test "llm-mapreduce(1): every EXAMPLES command runs" {
	export XDG_CACHE_HOME=$BATS_TEST_TMPDIR/cache
	check_examples man/llm-mapreduce.1
}

@test "llm-route(1): every EXAMPLES command runs" {
	# A fresh cache, and no configuration file: the outputs shown are
	# those of the defaults.
	export XDG_CACHE_HOME=$BATS_TEST_TMPDIR/cache
	export XDG_CONFIG_HOME=$BATS_TEST_TMPDIR/config
	check_examples man/llm-route.1
}
