#!/usr/bin/env bats
# docs.bats - the man pages and the shell completions agree with --help.
#
# For each program, the options that --help lists are the options that the
# man page describes and that the bash, zsh and fish completions offer.
# The man pages lint clean and have the sections SPEC section 7 and
# STYLE.md ask for.  Run by tests/run, or alone: bats tests/docs.bats

load lib/common

# Each *_opts function prints a program's options, short and long, one a
# line, sorted.

# The option lines of --help ("  -n, --tokens  ...", "      --gpu0, --gpu1").
help_opts() {
	"$1" --help | grep -E '^ +-' |
	    grep -oE -- '(^|[ ,])-{1,2}[A-Za-z0-9][A-Za-z0-9-]*' |
	    tr -d ' ,' | sort -u
}

# The options the man page describes: the Fl arguments of its .It lines.
man_opts() {
	grep -E '^\.It .*Fl ' "$TOP/man/$1.1" |
	    awk '{ for (i = 1; i < NF; i++) if ($i == "Fl") print "-" $(i + 1) }' |
	    sort -u
}

# Every long option the man page mentions anywhere (Fl -x, Fl -x | -y).
man_long_mentions() {
	grep -oE -- '(Fl|\|) -[A-Za-z0-9][A-Za-z0-9-]*' "$TOP/man/$1.1" |
	    sed 's/^.* /-/' | sort -u
}

# bash_complete PROG WORD...: what the bash completion of PROG offers for
# the last WORD of the command line "PROG WORD...".
bash_complete() {
	bash -c '
		source "$1" || exit 1
		shift
		fn=$(complete -p "$1" | sed -n "s/.*-F \([^ ]*\) .*/\1/p")
		[ -n "$fn" ] || { echo "no complete -F for $1" >&2; exit 1; }
		COMP_WORDS=("$@")
		COMP_CWORD=$(($# - 1))
		COMP_LINE="$*"
		COMP_POINT=${#COMP_LINE}
		"$fn" "$1" "${COMP_WORDS[COMP_CWORD]}" \
		    "${COMP_WORDS[COMP_CWORD - 1]}" || exit 1
		printf "%s\n" "${COMPREPLY[@]}"
	' _ "$TOP/completions/$1.bash" "$@"
}

bash_opts() {
	bash_complete "$1" - | sort -u
}

# zsh: the option names of the _arguments specs, without descriptions
# ([...]) and argument specs (:...).
zsh_opts() {
	grep -E "^[[:space:]]+'" "$TOP/completions/_$1" |
	    sed -E 's/\[[^]]*\]//g; s/:.*//' |
	    grep -oE -- "(^|[ '{,(])-{1,2}[A-Za-z0-9][A-Za-z0-9-]*" |
	    sed -E "s/^[ '{,(]//" | sort -u
}

# fish: -s X and -l NAME of the "complete -c PROG" lines.
fish_opts() {
	grep -E "^complete -c $1 " "$TOP/completions/$1.fish" |
	    grep -oE -- ' -[sl] [A-Za-z0-9][A-Za-z0-9-]*' |
	    sed -E 's/^ -s /-/; s/^ -l /--/' | sort -u
}

# same_opts PROG KIND: KIND_opts PROG lists what help_opts PROG lists.
same_opts() {
	local want="$BATS_TEST_TMPDIR/help" got="$BATS_TEST_TMPDIR/$2"
	help_opts "$1" >"$want"
	[ -s "$want" ] || fail "$1 --help lists no options"
	"$2_opts" "$1" >"$got"
	run diff -u --label "$1 --help" --label "$1 $2" "$want" "$got"
	assert_success
}

# Man page options equal --help's; every long option it mentions exists.
man_matches_help() {
	same_opts "$1" man
	help_opts "$1" | grep -- '^--' >"$BATS_TEST_TMPDIR/long"
	man_long_mentions "$1" >"$BATS_TEST_TMPDIR/mentions"
	run comm -13 "$BATS_TEST_TMPDIR/long" "$BATS_TEST_TMPDIR/mentions"
	assert_output ''
}

man_lint() {
	run mandoc -Tlint -W warning "$TOP/man/$1.1"
	assert_success
	assert_output ''
}

# man_sections PROG [STATUS...]: the page has the sections, and its EXIT
# STATUS lists every status of SPEC section 7, or exactly the STATUSes
# given (llm-serve, a server, exits with 0, 1 or 2 only).
man_sections() {
	local page="$TOP/man/$1.1" s st
	for s in NAME SYNOPSIS DESCRIPTION ENVIRONMENT FILES 'EXIT STATUS' \
	    EXAMPLES 'SEE ALSO'; do
		grep -qx "\.Sh $s" "$page" || fail "$1.1: no section $s"
	done
	# The statuses listed in EXIT STATUS: the numbers on its .It lines.
	run awk '/^\.Sh EXIT STATUS/ { f = 1; next } /^\.Sh / { f = 0 }
	    f && /^\.It / { for (i = 2; i <= NF; i++)
		if ($i ~ /^[0-9]+$/) print $i }' "$page"
	if (($# > 1)); then
		shift
		assert_output "$(printf '%s\n' "$@")"
		return
	fi
	for st in 0 1 2 3 4 5 6 7 130 143; do
		assert_line "$st"
	done
}

version_is() {
	local v
	v=$(sed -n 's/^VERSION *= *//p' "$TOP/Makefile")
	run --separate-stderr "$1" --version
	assert_success
	assert_output "$1 $v"
	[ -z "$stderr" ]
}

bash_loads() {
	run --separate-stderr bash -c 'source "$1" && complete -p "$2"' _ \
	    "$TOP/completions/$1.bash" "$1"
	assert_success
	[ -z "$stderr" ] || fail "stderr: $stderr"
	assert_output --partial "complete -F "
	# "--" offers exactly the long options of --help.
	help_opts "$1" | grep -- '^--' >"$BATS_TEST_TMPDIR/long"
	bash_complete "$1" -- | sort -u >"$BATS_TEST_TMPDIR/offered"
	run diff -u --label "$1 --help" --label "$1 bash --" \
	    "$BATS_TEST_TMPDIR/long" "$BATS_TEST_TMPDIR/offered"
	assert_success
}

zsh_file_ok() {
	local f="$TOP/completions/_$1"
	run head -n 1 "$f"
	assert_output "#compdef $1"
	grep -q '^_arguments ' "$f" || fail "_$1: no _arguments"
	if command -v zsh >/dev/null; then
		run zsh -n "$f"
		assert_success
	fi
}

fish_file_ok() {
	local f="$TOP/completions/$1.fish"
	# Every completion line is for this program.
	run grep -E '^complete ' "$f"
	assert_success
	run grep -Ev "^(#|\$|complete -c $1 )" "$f"
	assert_output ''
	if command -v fish >/dev/null; then
		run fish --no-execute "$f"
		assert_success
	fi
}

@test "llm-estimate: man page options = --help options" {
	man_matches_help llm-estimate
}

@test "llm-generate: man page options = --help options" {
	man_matches_help llm-generate
}

@test "llm-summarize: man page options = --help options" {
	man_matches_help llm-summarize
}

@test "llm-mapreduce: man page options = --help options" {
	man_matches_help llm-mapreduce
}

@test "llm-route: man page options = --help options" {
	man_matches_help llm-route
}

@test "llm-serve: man page options = --help options" {
	man_matches_help llm-serve
}

@test "llm-estimate: bash completion options = --help options" {
	same_opts llm-estimate bash
}

@test "llm-generate: bash completion options = --help options" {
	same_opts llm-generate bash
}

@test "llm-summarize: bash completion options = --help options" {
	same_opts llm-summarize bash
}

@test "llm-mapreduce: bash completion options = --help options" {
	same_opts llm-mapreduce bash
}

@test "llm-route: bash completion options = --help options" {
	same_opts llm-route bash
}

@test "llm-serve: bash completion options = --help options" {
	same_opts llm-serve bash
}

@test "llm-estimate: zsh completion options = --help options" {
	same_opts llm-estimate zsh
}

@test "llm-generate: zsh completion options = --help options" {
	same_opts llm-generate zsh
}

@test "llm-summarize: zsh completion options = --help options" {
	same_opts llm-summarize zsh
}

@test "llm-mapreduce: zsh completion options = --help options" {
	same_opts llm-mapreduce zsh
}

@test "llm-route: zsh completion options = --help options" {
	same_opts llm-route zsh
}

@test "llm-serve: zsh completion options = --help options" {
	same_opts llm-serve zsh
}

@test "llm-estimate: fish completion options = --help options" {
	same_opts llm-estimate fish
}

@test "llm-generate: fish completion options = --help options" {
	same_opts llm-generate fish
}

@test "llm-summarize: fish completion options = --help options" {
	same_opts llm-summarize fish
}

@test "llm-mapreduce: fish completion options = --help options" {
	same_opts llm-mapreduce fish
}

@test "llm-route: fish completion options = --help options" {
	same_opts llm-route fish
}

@test "llm-serve: fish completion options = --help options" {
	same_opts llm-serve fish
}

@test "llm-estimate.1: mandoc -Tlint -W warning is clean" {
	man_lint llm-estimate
}

@test "llm-generate.1: mandoc -Tlint -W warning is clean" {
	man_lint llm-generate
}

@test "llm-summarize.1: mandoc -Tlint -W warning is clean" {
	man_lint llm-summarize
}

@test "llm-mapreduce.1: mandoc -Tlint -W warning is clean" {
	man_lint llm-mapreduce
}

@test "llm-route.1: mandoc -Tlint -W warning is clean" {
	man_lint llm-route
}

@test "llm-serve.1: mandoc -Tlint -W warning is clean" {
	man_lint llm-serve
}

@test "llm-estimate.1: the sections, and every exit status" {
	man_sections llm-estimate
}

@test "llm-generate.1: the sections, and every exit status" {
	man_sections llm-generate
}

@test "llm-summarize.1: the sections, and every exit status" {
	man_sections llm-summarize
}

@test "llm-mapreduce.1: the sections, and every exit status" {
	man_sections llm-mapreduce
}

@test "llm-route.1: the sections, and every exit status" {
	man_sections llm-route
}

@test "llm-serve.1: the sections, and its exit statuses 0, 1 and 2" {
	man_sections llm-serve 0 1 2
}

@test "llm-estimate --version prints name and version" {
	version_is llm-estimate
}

@test "llm-generate --version prints name and version" {
	version_is llm-generate
}

@test "llm-summarize --version prints name and version" {
	version_is llm-summarize
}

@test "llm-mapreduce --version prints name and version" {
	version_is llm-mapreduce
}

@test "llm-route --version prints name and version" {
	version_is llm-route
}

@test "llm-serve --version prints name and version" {
	version_is llm-serve
}

@test "llm-estimate: bash completion loads and offers the long options" {
	bash_loads llm-estimate
}

@test "llm-generate: bash completion loads and offers the long options" {
	bash_loads llm-generate
}

@test "llm-summarize: bash completion loads and offers the long options" {
	bash_loads llm-summarize
}

@test "llm-mapreduce: bash completion loads and offers the long options" {
	bash_loads llm-mapreduce
}

@test "llm-route: bash completion loads and offers the long options" {
	bash_loads llm-route
}

@test "llm-serve: bash completion loads and offers the long options" {
	bash_loads llm-serve
}

@test "bash completion of option values: --method, --api, --on-helper-failure" {
	run bash_complete llm-estimate --method ''
	assert_output $'qwen\nchars4'
	run bash_complete llm-estimate --method = c
	assert_output chars4
	run bash_complete llm-generate --api o
	assert_output $'ollama\nopenai'
	run bash_complete llm-generate --url ''
	assert_output ''
	run bash_complete llm-generate --num-ctx ''
	assert_output ''
	run bash_complete llm-summarize --on-helper-failure ''
	assert_output $'extractive\ndirect\nfail'
	run bash_complete llm-summarize --on-helper-failure = d
	assert_output direct
	run bash_complete llm-summarize --on-helper-failure=f
	assert_output -- --on-helper-failure=fail
	run bash_complete llm-summarize --api o
	assert_output $'ollama\nopenai'
	run bash_complete llm-summarize --target ''
	assert_output ''
	# No file names: the chat is read from stdin.
	run bash_complete llm-generate ''
	assert_output ''
	run bash_complete llm-summarize ''
	assert_output ''
}

@test "llm-mapreduce: bash completion of option values" {
	run bash_complete llm-mapreduce --on-helper-failure ''
	assert_output $'extractive\ndirect\nfail'
	run bash_complete llm-mapreduce --on-helper-failure=d
	assert_output -- --on-helper-failure=direct
	run bash_complete llm-mapreduce --api = o
	assert_output $'ollama\nopenai'
	for opt in --jobs --chunk-tokens --chunk-target --target --cache-max; do
		run bash_complete llm-mapreduce "$opt" ''
		assert_output ''
	done
	# --cache-dir: directories only.
	mkdir -p "$BATS_TEST_TMPDIR/cd/sub"
	touch "$BATS_TEST_TMPDIR/cd/file"
	run bash_complete llm-mapreduce --cache-dir "$BATS_TEST_TMPDIR/cd/"
	assert_output "$BATS_TEST_TMPDIR/cd/sub"
	run bash_complete llm-mapreduce ''
	assert_output ''
}

@test "llm-route: bash completion of option values, and --set KEY=VALUE" {
	run bash_complete llm-route --on-helper-failure ''
	assert_output $'extractive\ndirect\nfail'
	run bash_complete llm-route --on-helper-failure=e
	assert_output -- --on-helper-failure=extractive
	for opt in --a-max --b-max --gpu0-url --gpu1-url --model --helper-model \
	    --num-ctx --target --jobs --chunk-tokens --chunk-target --cache-max; do
		run bash_complete llm-route "$opt" ''
		assert_output ''
	done
	# --set offers every key of the configuration table, as KEY=.
	run bash_complete llm-route --set ''
	assert_output "$(llm-route --print-config | sed -n 's/^\([a-z0-9_]*\) = .*/\1=/p')"
	run bash_complete llm-route --set gpu1_n
	assert_output gpu1_num_ctx=
	# The value of an _api key, with '=' in COMP_WORDBREAKS or not.
	run bash_complete llm-route --set gpu0_api = o
	assert_output $'ollama\nopenai'
	run bash_complete llm-route --set gpu1_api =
	assert_output $'ollama\nopenai'
	run bash_complete llm-route --set gpu0_api=op
	assert_output gpu0_api=openai
	run bash_complete llm-route --set a_max =
	assert_output ''
	mkdir -p "$BATS_TEST_TMPDIR/cd/sub"
	touch "$BATS_TEST_TMPDIR/cd/file"
	run bash_complete llm-route --cache-dir "$BATS_TEST_TMPDIR/cd/"
	assert_output "$BATS_TEST_TMPDIR/cd/sub"
	run bash_complete llm-route ''
	assert_output ''
}

@test "llm-serve: bash completion of option values, and --set KEY=VALUE" {
	run bash_complete llm-serve --on-helper-failure ''
	assert_output $'extractive\ndirect\nfail'
	for opt in --listen --max-body --max-streams --keepalive --drain \
	    --a-max --b-max --gpu0-url --gpu1-url --model --helper-model \
	    --num-ctx --target --jobs --chunk-tokens --chunk-target --cache-max; do
		run bash_complete llm-serve "$opt" ''
		assert_output ''
	done
	run bash_complete llm-serve --listen = ''
	assert_output ''
	# --set offers every key of the configuration table, as KEY=.
	run bash_complete llm-serve --set ''
	assert_output "$(llm-serve --print-config | sed -n 's/^\([a-z0-9_]*\) = .*/\1=/p')"
	run bash_complete llm-serve --set serve_m
	assert_output $'serve_max_body=\nserve_max_streams='
	# serve_prefetch is on or off, with '=' in COMP_WORDBREAKS or not.
	run bash_complete llm-serve --set serve_prefetch = o
	assert_output $'on\noff'
	run bash_complete llm-serve --set serve_prefetch =
	assert_output $'on\noff'
	run bash_complete llm-serve --set serve_prefetch=of
	assert_output serve_prefetch=off
	run bash_complete llm-serve --set gpu0_api = o
	assert_output $'ollama\nopenai'
	run bash_complete llm-serve --set serve_keepalive =
	assert_output ''
	# --token-file: files; --cache-dir: directories only.
	mkdir -p "$BATS_TEST_TMPDIR/cd/sub"
	touch "$BATS_TEST_TMPDIR/cd/token"
	run bash_complete llm-serve --token-file "$BATS_TEST_TMPDIR/cd/t"
	assert_output "$BATS_TEST_TMPDIR/cd/token"
	run bash_complete llm-serve --token-file="$BATS_TEST_TMPDIR/cd/t"
	assert_output -- "--token-file=$BATS_TEST_TMPDIR/cd/token"
	run bash_complete llm-serve --cache-dir "$BATS_TEST_TMPDIR/cd/"
	assert_output "$BATS_TEST_TMPDIR/cd/sub"
	# A server: it takes no arguments, and reads no chat from stdin.
	run bash_complete llm-serve ''
	assert_output ''
}

@test "llm-serve: zsh and fish complete --set with every key, and serve_prefetch with on and off" {
	local keys
	keys=$(llm-serve --print-config | sed -n 's/^\([a-z0-9_]*\) = .*/\1/p')
	[ -n "$keys" ] || fail "llm-serve --print-config prints no keys"
	# zsh: the keys array of _llm_serve_set, and serve_prefetch= on off.
	run bash -c 'sed -n "/^ *keys=(/,/)/p" "$1" | tr -d "()" |
	    sed "s/keys=//" | tr -s " \n" "\n\n" | grep .' _ "$TOP/completions/_llm-serve"
	assert_output "$keys"
	grep -q "compset -P 'serve_prefetch='" "$TOP/completions/_llm-serve" ||
		fail "_llm-serve: no values for serve_prefetch"
	grep -q 'compadd -- on off' "$TOP/completions/_llm-serve" ||
		fail "_llm-serve: serve_prefetch is not on or off"
	# fish: the -a list of --set, each KEY= or KEY=VALUE.
	run bash -c 'grep -E -- "^complete -c llm-serve -l set " "$1" |
	    sed -E "s/.* -a '\''([^'\'']*)'\''.*/\\1/" | tr " " "\n" |
	    sed "s/=.*//" | uniq' _ "$TOP/completions/llm-serve.fish"
	assert_output "$keys"
	run grep -c -- 'serve_prefetch=on serve_prefetch=off' "$TOP/completions/llm-serve.fish"
	assert_output 1
	# --token-file completes file names in zsh and fish.
	grep -q -- "--token-file=.*:_files'" "$TOP/completions/_llm-serve" ||
		fail "_llm-serve: --token-file does not complete files"
	grep -qE -- '-l token-file .*-F' "$TOP/completions/llm-serve.fish" ||
		fail "llm-serve.fish: --token-file does not complete files"
}

@test "llm-serve.1: documents every serve_* key, endpoint and metric" {
	local page="$TOP/man/llm-serve.1" k m
	# The serve_* keys, each with its default as --print-config shows it.
	while IFS=$'\t' read -r k m; do
		grep -qxF ".It Cm ${k% =*} No = ${m}" "$page" ||
		    grep -qxF ".It Cm ${k% =*} No = Li ${m}" "$page" ||
		    grep -qxF ".It Cm ${k% =*} No = Cm ${m}" "$page" ||
		    grep -qxF ".It Cm ${k% =*} No =" "$page" ||
		    fail "llm-serve.1: no '${k% =*}' with its default '$m' in FILES"
	done < <(llm-serve --print-config | sed -n 's/^\(serve_[a-z_]*\) = \(.*\)\t# default$/\1 =\t\2/p')
	# The endpoints of the server's routing table (src/serve.c).
	for m in $(sed -n 's/^[[:space:]]*{ "\(\/[^"]*\)", ".*/\1/p' "$TOP/src/serve.c"); do
		grep -qE "^\.It Li [A-Z |]+ ${m}\$" "$page" ||
		    fail "llm-serve.1: endpoint $m is not in ENDPOINTS"
	done
	# The metrics that /metrics writes (src/serve.c), each on an .It line.
	for m in $(grep -o '"llm_serve_[a-z_]*' "$TOP/src/serve.c" | tr -d '"' | sort -u); do
		grep -qE "^\.It Cm (.*[ ,])?${m}( ,|\$)" "$page" ||
		    fail "llm-serve.1: metric $m is not documented"
	done
}

@test "llm-route: -n, --dry-run and --explain are one option, documented and completed as one" {
	# --help and the man page give them on one line.
	run bash -c 'llm-route --help | grep -E -- "^ +-n, --dry-run, --explain$"'
	assert_success
	run grep -Ex '\.It Fl n , Fl -dry-run , Fl -explain' "$TOP/man/llm-route.1"
	assert_success
	# Each completion offers all three.
	for o in -n --dry-run --explain; do
		bash_opts llm-route | grep -qx -- "$o" || fail "bash: no $o"
		zsh_opts llm-route | grep -qx -- "$o" || fail "zsh: no $o"
		fish_opts llm-route | grep -qx -- "$o" || fail "fish: no $o"
	done
	# And they do the same thing, asking no server.
	export XDG_CACHE_HOME=$BATS_TEST_TMPDIR/cache XDG_CONFIG_HOME=$BATS_TEST_TMPDIR/config
	export LLM_GPU0_URL=http://127.0.0.1:1 LLM_GPU1_URL=http://127.0.0.1:1
	run --separate-stderr llm-route --dry-run <"$TOP/examples/medium.json"
	assert_success
	[ -z "$stderr" ] || fail "stderr: $stderr"
	[ "$(jq -r .strategy <<<"$output")" = summarize ] || fail "$output"
	local want=$output
	run --separate-stderr llm-route --explain <"$TOP/examples/medium.json"
	assert_output "$want"
	run --separate-stderr llm-route -n <"$TOP/examples/medium.json"
	assert_output "$want"
}

@test "zsh completion files: #compdef and _arguments" {
	zsh_file_ok llm-estimate
	zsh_file_ok llm-generate
	zsh_file_ok llm-summarize
	zsh_file_ok llm-mapreduce
	zsh_file_ok llm-route
	zsh_file_ok llm-serve
}

@test "fish completion files: only complete -c lines for their program" {
	fish_file_ok llm-estimate
	fish_file_ok llm-generate
	fish_file_ok llm-summarize
	fish_file_ok llm-mapreduce
	fish_file_ok llm-route
	fish_file_ok llm-serve
}
