#!/bin/sh
# run.sh - build and run the fuzz targets of tests/fuzz/ (SPEC section 9).
#
#   tests/fuzz/run.sh build
#       Build each target tests/fuzz/fuzz_NAME.c with clang and libFuzzer,
#       ASan and UBSan, against src/*.c compiled with the same flags, into
#       build-fuzz/ (build-fuzz/fuzz_NAME).
#   tests/fuzz/run.sh fuzz SECONDS [NAME ...]
#       Build, then run each target (or those named) for SECONDS on a copy
#       of its seed corpus tests/fuzz/corpus/NAME/.  Fails on the first
#       crash, leak, sanitizer report or timeout; the input is left in
#       build-fuzz/artifacts/NAME/.  New inputs found are not kept.
#   tests/fuzz/run.sh replay [NAME [FILE|DIR ...]]
#       Build each target with tests/fuzz/driver.c instead of libFuzzer,
#       under gcc with ASan and UBSan (build-fuzz/replay/), and run the
#       seed corpora (or the files given) through it.  Fast; for CI.
#
# Environment: CLANG (default clang), CC_REPLAY (default gcc), PKG_CONFIG,
# FUZZ_FLAGS (more libFuzzer options for "fuzz").
# Exit status: 0 when all went well, 1 on a failure, 2 on a usage error.

set -eu

prog=tests/fuzz/run.sh
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"

CLANG=${CLANG:-clang}
CC_REPLAY=${CC_REPLAY:-gcc}
PKG_CONFIG=${PKG_CONFIG:-pkg-config}
OUT=build-fuzz

usage() {
	echo "usage: $prog build | fuzz SECONDS [NAME ...] | replay [NAME [FILE|DIR ...]]" >&2
	exit 2
}

die() {
	echo "$prog: $*" >&2
	exit 1
}

targets() {
	for f in tests/fuzz/fuzz_*.c; do
		f=${f##*/}
		f=${f#fuzz_}
		echo "${f%.c}"
	done
}

check_names() {
	for n in "$@"; do
		[ -f "tests/fuzz/fuzz_$n.c" ] || die "no target '$n' (have: $(targets | tr '\n' ' '))"
	done
}

CURL_CFLAGS=$($PKG_CONFIG --cflags libcurl libmicrohttpd) || die "pkg-config libcurl failed"
CURL_LIBS=$($PKG_CONFIG --libs libcurl libmicrohttpd) || die "pkg-config libcurl failed"
BASE="-std=c11 -D_POSIX_C_SOURCE=200809L -DLR_VERSION=\"fuzz\" -Isrc $CURL_CFLAGS -g -O1"
SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"

# compile CC FLAGS OBJDIR: src/*.c into OBJDIR/*.o, when out of date.
compile_lib() {
	cc=$1 flags=$2 dir=$3
	mkdir -p "$dir"
	echo "$cc $flags" > "$dir/flags.new"
	if ! cmp -s "$dir/flags.new" "$dir/flags" 2>/dev/null; then
		rm -f "$dir"/*.o
		mv "$dir/flags.new" "$dir/flags"
	else
		rm -f "$dir/flags.new"
	fi
	for src in src/*.c; do
		obj=$dir/$(basename "$src" .c).o
		if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] ||
		    [ -n "$(find src -name '*.h' -newer "$obj" 2>/dev/null)" ]; then
			# shellcheck disable=SC2086
			$cc $flags -c -o "$obj" "$src" || die "compiling $src failed"
		fi
	done
}

# uptodate BIN SRC: BIN is newer than SRC, the headers and the objects.
uptodate() {
	[ -f "$1" ] && [ "$1" -nt "$2" ] &&
	    [ -z "$(find tests/fuzz -name '*.h' -newer "$1")" ] &&
	    [ -z "$(find "$(dirname "$1")/src" -name '*.o' -newer "$1")" ]
}

build() {
	flags="$BASE -fsanitize=fuzzer $SAN"
	compile_lib "$CLANG" "$flags" "$OUT/src"
	for n in $(targets); do
		uptodate "$OUT/fuzz_$n" "tests/fuzz/fuzz_$n.c" &&
		    [ "$OUT/fuzz_$n" -nt tests/fuzz/jq16_leak.c ] && continue
		echo "$prog: building $OUT/fuzz_$n" >&2
		# shellcheck disable=SC2086
		$CLANG $flags -Wall -Wextra -Itests/fuzz -o "$OUT/fuzz_$n" \
		    "tests/fuzz/fuzz_$n.c" tests/fuzz/jq16_leak.c "$OUT"/src/*.o \
		    $CURL_LIBS -ljq -lmd -ldl -lm ||
		    die "building fuzz_$n failed"
	done
}

build_replay() {
	flags="$BASE $SAN"
	compile_lib "$CC_REPLAY" "$flags" "$OUT/replay/src"
	for n in "$@"; do
		# shellcheck disable=SC2086
		$CC_REPLAY $flags -Wall -Wextra -Itests/fuzz \
		    -o "$OUT/replay/fuzz_$n" "tests/fuzz/fuzz_$n.c" \
		    tests/fuzz/driver.c tests/fuzz/jq16_leak.c \
		    "$OUT"/replay/src/*.o $CURL_LIBS -ljq -lmd -ldl -lm ||
		    die "building replay fuzz_$n failed"
	done
}

fuzz() {
	secs=$1
	shift
	[ $# -gt 0 ] || set -- $(targets)
	build
	failed=
	for n in "$@"; do
		work=$(mktemp -d "${TMPDIR:-/tmp}/fuzz_$n.XXXXXX")
		art=$OUT/artifacts/$n
		mkdir -p "$art"
		if [ -d "tests/fuzz/corpus/$n" ]; then
			cp tests/fuzz/corpus/"$n"/* "$work"/ 2>/dev/null || :
		fi
		dict=
		[ -f "tests/fuzz/fuzz_$n.dict" ] && dict=-dict=tests/fuzz/fuzz_$n.dict
		echo "$prog: fuzzing $n for $secs s" >&2
		# shellcheck disable=SC2086
		if ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
		    UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
		    "$OUT/fuzz_$n" -max_len=65536 -timeout=5 -rss_limit_mb=2048 \
		    -max_total_time="$secs" -print_final_stats=1 \
		    -artifact_prefix="$art/" $dict ${FUZZ_FLAGS:-} "$work" \
		    > "$OUT/fuzz_$n.log" 2>&1; then
			grep -E '^(#[0-9]+.*DONE|stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb))' \
			    "$OUT/fuzz_$n.log" | sed "s/^/$n: /" >&2 || :
		else
			tail -n 60 "$OUT/fuzz_$n.log" >&2
			echo "$prog: $n FAILED (log $OUT/fuzz_$n.log, input in $art/)" >&2
			failed="$failed $n"
		fi
		rm -rf "$work"
	done
	[ -z "$failed" ] || die "failed:$failed"
	echo "$prog: all targets ran $secs s without a failure" >&2
}

replay() {
	if [ $# -gt 0 ]; then
		check_names "$1"
		names=$1
		shift
	else
		names=$(targets)
	fi
	# shellcheck disable=SC2086
	build_replay $names
	ninputs=0
	for n in $names; do
		if [ $# -gt 0 ]; then
			set -- "$@"
		elif [ -d "tests/fuzz/corpus/$n" ]; then
			set -- "tests/fuzz/corpus/$n"
		else
			continue
		fi
		ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0} \
		UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
		    "$OUT/replay/fuzz_$n" "$@" 2> "$OUT/replay/fuzz_$n.log" || {
			tail -n 60 "$OUT/replay/fuzz_$n.log" >&2
			die "replay of $n failed (log $OUT/replay/fuzz_$n.log)"
		}
		k=$(grep -c ' bytes)$' "$OUT/replay/fuzz_$n.log" || :)
		ninputs=$((ninputs + k))
		set --
	done
	echo "$prog: replay: $ninputs inputs through $(echo $names | wc -w) targets, no failure" >&2
}

[ $# -ge 1 ] || usage
cmd=$1
shift
case $cmd in
build)
	[ $# -eq 0 ] || usage
	build ;;
fuzz)
	[ $# -ge 1 ] || usage
	case $1 in ''|*[!0-9]*) usage ;; esac
	secs=$1
	shift
	check_names "$@"
	fuzz "$secs" "$@" ;;
replay)
	replay "$@" ;;
*)
	usage ;;
esac
