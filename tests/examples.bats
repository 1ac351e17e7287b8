#!/usr/bin/env bats
# Documented examples are tests: every command of the README's console
# blocks and of the man pages' EXAMPLES runs against the fake server, and
# where the document shows output, the output must be that.

load lib/common
load lib/serve

setup_file() {
	fake_start GPU0
	fake_start GPU1
}

# A test that started llm-serve and failed before stopping it.
teardown() {
	serve_stop >/dev/null 2>&1 || true
}

teardown_file() {
	fake_stop_all
}

setup() {
	fake_reset_all
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

# check_examples FILE [URL]: run FILE's examples.  With URL, the address
# at which the page's examples ask llm-serve, a command that starts
# llm-serve (a server, which runs until it is stopped) is run with
# --print-config added, which checks its options and settings and exits;
# the other commands ask, instead of URL, the llm-serve that the test
# started ($SERVE_URL).
check_examples() {
	local n=0 cmd want got start='^([A-Za-z_][A-Za-z0-9_]*=[^ ]* )*llm-serve( |$)'
	while IFS=$'\t' read -r cmd want; do
		n=$((n + 1))
		if [[ -n ${2:-} ]]; then
			if [[ $cmd =~ $start && $cmd != *--print-config* ]]; then
				cmd="$cmd --print-config >/dev/null"
				want=
			fi
			cmd=${cmd//"$2"/$SERVE_URL}
		fi
		got=$(bash -c "$cmd" 2>&1) || [[ $want == *"exit "* ]] ||
			fail "'$cmd' failed: $got"
		if [[ -n $want ]]; then
			assert_equal "$got" "$(printf '%b' "$want")"
		fi
	done < <(examples "$1")
	(( n > 0 )) || fail "no examples found in $1"
}

@test "README: every console command runs and prints what it shows" {
	serve_start
	check_examples README.md http://127.0.0.1:8512
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

@test "llm-serve(1): every EXAMPLES command runs" {
	# A fresh cache, no configuration file and no serve variable: the
	# outputs shown are those of the defaults.
	export XDG_CACHE_HOME=$BATS_TEST_TMPDIR/cache
	export XDG_CONFIG_HOME=$BATS_TEST_TMPDIR/config
	unset LLM_SERVE_LISTEN LLM_SERVE_TOKEN
	serve_start
	check_examples man/llm-serve.1 http://127.0.0.1:8512
	# And it stops cleanly.
	serve_stop || fail "llm-serve exited with status $? on SIGTERM: $(cat "$SERVE_ERR")"
}
