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
#   tests/fuzz/run.sh long SECONDS [NAME ...]
#       Fuzzing at depth (make fuzz-long): build, then run each target (or
#       those named) for SECONDS on a copy of its seed corpus, going on
#       after a failure, and merge what it found back into
#       tests/fuzz/corpus/NAME/ (libFuzzer's -set_cover_merge=1 with
#       -use_counters=0): only inputs that add edges to the corpus's
#       coverage are kept, as few as cover them.  FUZZ_JOBS targets run
#       at once (default 1).  Per target: executions, cov and ft as
#       libFuzzer prints them, the failure if any (input in
#       build-fuzz/artifacts/NAME/) and the files kept, in
#       build-fuzz/long.txt.  Exit status 1 when a target failed.
#   tests/fuzz/run.sh replay [NAME [FILE|DIR ...]]
#       Build each target with tests/fuzz/driver.c instead of libFuzzer,
#       under gcc with ASan and UBSan (build-fuzz/replay/), and run the
#       seed corpora (or the files given) through it.  Fast; for CI.
#
# Environment: CLANG (default clang), CC_REPLAY (default gcc), PKG_CONFIG,
# FUZZ_FLAGS (more libFuzzer options for "fuzz" and "long"), FUZZ_JOBS.
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
	echo "usage: $prog build | fuzz SECONDS [NAME ...] | long SECONDS [NAME ...] | replay [NAME [FILE|DIR ...]]" >&2
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

# long_one SECONDS NAME: one target of "long"; its line goes to
# $OUT/long/NAME.txt, its status is 0 or 1.
long_one() {
	secs=$1 n=$2
	work=$(mktemp -d "${TMPDIR:-/tmp}/fuzz_$n.XXXXXX")
	art=$OUT/artifacts/$n
	log=$OUT/long/$n.log
	mkdir -p "$art" "tests/fuzz/corpus/$n"
	cp tests/fuzz/corpus/"$n"/* "$work"/ 2>/dev/null || :
	before=$(ls "tests/fuzz/corpus/$n" | wc -l)
	dict=
	[ -f "tests/fuzz/fuzz_$n.dict" ] && dict=-dict=tests/fuzz/fuzz_$n.dict
	echo "$prog: fuzzing $n for $secs s" >&2
	st=ok
	# shellcheck disable=SC2086
	ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
	UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
	    "$OUT/fuzz_$n" -max_len=65536 -timeout=5 -rss_limit_mb=2048 \
	    -max_total_time="$secs" -print_final_stats=1 \
	    -artifact_prefix="$art/" $dict ${FUZZ_FLAGS:-} "$work" \
	    > "$log" 2>&1 || st=FAILED
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	covft=$(grep -E '^#[0-9]+.*(DONE|cov:)' "$log" | tail -n 1 |
	    sed -n 's/.*\(cov: [0-9]*\) \(ft: [0-9]*\).*/\1 \2/p')
	# Keep what adds coverage to the committed corpus: edges, not hit
	# counts (-use_counters=0), and a small set of inputs that covers
	# them (-set_cover_merge=1), so that the corpus stays small.  A
	# crashing input is in $art, not in $work.
	ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
	    "$OUT/fuzz_$n" -set_cover_merge=1 -use_counters=0 \
	    -max_len=65536 -timeout=5 \
	    -rss_limit_mb=2048 "tests/fuzz/corpus/$n" "$work" \
	    > "$OUT/long/$n.merge.log" 2>&1 || st="$st merge-failed"
	after=$(ls "tests/fuzz/corpus/$n" | wc -l)
	grown=$(grep -E '^MERGE-OUTER: [0-9]+ new files' "$OUT/long/$n.merge.log" |
	    sed 's/^MERGE-OUTER: //' | tail -n 1)
	echo "$n: $secs s, ${execs:-?} executions, ${covft:-cov: ?}, $st, $((after - before)) corpus files kept (${grown:-no merge})" \
	    > "$OUT/long/$n.txt"
	cat "$OUT/long/$n.txt" >&2
	[ "$st" = ok ] || { tail -n 40 "$log" >&2; echo "$prog: $n FAILED (log $log, input in $art/)" >&2; }
	rm -rf "$work"
	[ "$st" = ok ]
}

long() {
	secs=$1
	shift
	[ $# -gt 0 ] || set -- $(targets)
	jobs=${FUZZ_JOBS:-1}
	case $jobs in ''|*[!0-9]*|0) die "FUZZ_JOBS: not a positive number: $jobs" ;; esac
	build
	rm -rf "$OUT/long"
	mkdir -p "$OUT/long"
	# Round robin into FUZZ_JOBS lists, each run in turn in the
	# background.
	i=0
	for n in "$@"; do
		echo "$n" >> "$OUT/long/list.$((i % jobs))"
		i=$((i + 1))
	done
	pids=
	for l in "$OUT"/long/list.*; do
		( failed=0
		  while read -r n; do long_one "$secs" "$n" </dev/null || failed=1; done < "$l"
		  exit $failed ) &
		pids="$pids $!"
	done
	failed=0
	for p in $pids; do
		wait "$p" || failed=1
	done
	for n in "$@"; do
		cat "$OUT/long/$n.txt"
	done > "$OUT/long.txt"
	echo "$prog: long: per target ($OUT/long.txt):" >&2
	cat "$OUT/long.txt" >&2
	[ $failed -eq 0 ] || die "some targets failed: see above"
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
long)
	[ $# -ge 1 ] || usage
	case $1 in ''|*[!0-9]*) usage ;; esac
	secs=$1
	shift
	check_names "$@"
	long "$secs" "$@" ;;
replay)
	replay "$@" ;;
*)
	usage ;;
esac
