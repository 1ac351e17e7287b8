#!/bin/sh
#
# estimate-accuracy.sh - the token estimators against a real tokenizer.
#
# usage: bench/estimate-accuracy.sh [CORPUS_DIR]
#
# For each chat request in CORPUS_DIR (default ../shared/corpus, beside the
# repository) prints a markdown table row: the real token count of the
# rendered prompt ("<|im_start|>ROLE\nCONTENT<|im_end|>\n" per message,
# Qwen3 tokenizer), the "qwen" and "chars4" estimates and their signed
# errors; then the median and worst absolute error of each method.  A
# second table does the same per message for bench/tokenize/samples.json,
# kinds of text the corpus lacks (other scripts, JSON, logs, hashes).
#
# Real counts are read from bench/tokenize/reference.tsv and samples.tsv;
# REFRESH=1 (or a missing file) recounts them with node, which needs
# "npm ci" in bench/tokenize first.  Needs jq and a C compiler otherwise
# (est-harness is built in a temporary directory).
#
set -eu

cd "$(dirname "$0")/.."

CORPUS=${1:-../shared/corpus}
TOK=bench/tokenize
REF=$TOK/reference.tsv
SREF=$TOK/samples.tsv
SAMPLES=$TOK/samples.json
CC=${CC:-cc}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
HARNESS=$tmp/est-harness
rows=$tmp/rows

# A chat request on stdin -> "M<TAB>role<TAB>nbytes<NL>content<NL>" per
# message, the input of est-harness.  Content: a string, or the text
# parts of an array of parts, concatenated.
# shellcheck disable=SC2016
JQ_DUMP='def text: if type == "string" then .
	elif type == "array" then map(select(type == "object" and
	    .type == "text" and (.text | type) == "string") | .text) | join("")
	else "" end;
(if type == "array" then . else .messages // [] end)[]
| (.content | text) as $c
| "M\t\(.role // "")\t\($c | utf8bytelength)\n\($c)\n"'

# How to estimate: "$ESTIMATE_CMD METHOD < request.json" prints a count.
harness_estimate() { jq -j "$JQ_DUMP" | "$HARNESS" -m "$1"; }
llm_estimate() { ./bin/llm-estimate -n --method="$1"; }
ESTIMATE_CMD=${ESTIMATE_CMD:-harness_estimate}

if [ "$ESTIMATE_CMD" = harness_estimate ]; then
	$CC -std=c11 -D_POSIX_C_SOURCE=200809L -O2 -Wall -Wextra \
	    -o "$HARNESS" bench/est-harness.c
fi

if [ "${REFRESH:-0}" = 1 ] || [ ! -s "$REF" ]; then
	node $TOK/count.mjs "$CORPUS"/*.json > "$REF.tmp" && mv "$REF.tmp" "$REF"
fi
if [ "${REFRESH:-0}" = 1 ] || [ ! -s "$SREF" ]; then
	node $TOK/count.mjs -m "$SAMPLES" > "$SREF.tmp" && mv "$SREF.tmp" "$SREF"
fi

# err EST REAL -> signed error in percent, one decimal
err() { awk -v e="$1" -v r="$2" 'BEGIN { printf "%+.1f", (e - r) * 100 / r }'; }

# median and worst of the absolute values in column $1 of stdin
summary() {
	awk -v c="$1" '{ v = $c < 0 ? -$c : $c; print v + 0 }' | sort -n |
	    awk '{ a[NR] = $1 } END {
		m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
		printf "%.1f%% %.1f%%", m, a[NR] }'
}

echo "| file | real | qwen | error | chars/4 | error |"
echo "|---|---:|---:|---:|---:|---:|"
for f in "$CORPUS"/*.json; do
	name=$(basename "$f")
	real=$(awk -F '\t' -v n="$name" '$1 == n { print $3 }' "$REF")
	if [ -z "$real" ]; then
		echo "$0: $name: not in $REF; run with REFRESH=1" >&2
		exit 1
	fi
	q=$($ESTIMATE_CMD qwen < "$f")
	c=$($ESTIMATE_CMD chars4 < "$f")
	eq=$(err "$q" "$real")
	ec=$(err "$c" "$real")
	printf '%s %s\n' "$eq" "$ec" >> "$rows"
	echo "| \`$name\` | $real | $q | $eq% | $c | $ec% |"
done
sq=$(summary 1 < "$rows")
sc=$(summary 2 < "$rows")
echo "| **median \\|error\\|** | | | ${sq% *} | | ${sc% *} |"
echo "| **worst \\|error\\|** | | | ${sq#* } | | ${sc#* } |"

echo
echo "| sample (one message) | real | qwen | error | chars/4 | error |"
echo "|---|---:|---:|---:|---:|---:|"
: > "$rows"
n=$(jq '.messages | length' "$SAMPLES")
i=0
while [ "$i" -lt "$n" ]; do
	one=$(jq -c --argjson i "$i" '{messages: [.messages[$i]]}' "$SAMPLES")
	name=$(jq -r --argjson i "$i" '.messages[$i].name // $i' "$SAMPLES")
	real=$(awk -F '\t' -v i="$i" '$2 == i { print $4 }' "$SREF")
	q=$(printf '%s\n' "$one" | $ESTIMATE_CMD qwen)
	c=$(printf '%s\n' "$one" | $ESTIMATE_CMD chars4)
	eq=$(err "$q" "$real")
	ec=$(err "$c" "$real")
	printf '%s %s\n' "$eq" "$ec" >> "$rows"
	echo "| $name | $real | $q | $eq% | $c | $ec% |"
	i=$((i + 1))
done
sq=$(summary 1 < "$rows")
sc=$(summary 2 < "$rows")
echo "| **median \\|error\\|** | | | ${sq% *} | | ${sc% *} |"
echo "| **worst \\|error\\|** | | | ${sq#* } | | ${sc#* } |"
