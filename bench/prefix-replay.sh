#!/usr/bin/env bash
# prefix-replay.sh - does each condensed request start with the bytes of the
# one before it? GPU0's prompt cache reuses only a request's prefix shared with
# the previous one, so a condensed block that is rewritten every few turns
# makes GPU0 prefill it again. Three long corpus conversations are replayed
# request by request through llm-mapreduce, and the condensed requests are sent,
# in order, to a fake GPU0 with a prefix cache (tests/fake_ollama.py).
#
#   bench/prefix-replay.sh > out.md                       (after `make`)
#   BIN=/tmp/before/bin bench/prefix-replay.sh > before.md  (another build)
#
# Requests: for each conversation of n messages, every k >= n * FROM / 100
# whose message is a user message or a tool result (a turn where the agent
# would ask again); request k is the document with messages[0..k] inclusive.
# Each conversation is replayed in three variants:
#   direct      the uncondensed requests (the baseline: GPU0 alone);
#   extractive  `llm-mapreduce --extractive` (no helper model);
#   helper      `llm-mapreduce --on-helper-failure fail --jobs JOBS` against a
#               fake helper (GPU1, W1-word answers, no delays).
# Each variant of each conversation gets a fresh, empty XDG_CACHE_HOME that is
# kept across its requests, so chunk summaries are cached as in real use.
# Per variant: tests/lib/prefix.py over the (request, condensed request) pairs
# gives the requests that keep the previous condensed part ("keeps": the new
# rendered prompt starts with all of the previous one up to the end of its
# condensed part) and the mean share of each rendered prompt that is a prefix
# GPU0 has already processed. GPU0 (the fake, POST /_reset before each variant)
# gets each request with `llm-generate --gpu0`; its log gives the prompt tokens
# (ceil(chars / 4) of the rendered prompt) and the prefilled tokens (those past
# the prefix shared with its previous prompt), summed over the replay.
#
# Environment: BIN (the binaries, default $REPO/bin), CORPUS (tests/corpus),
# FILES (space-separated corpus file names, default the three longest), FROM
# (40: the first request, in percent of the messages), JOBS (2), W1 (200: words
# of each helper answer), DETAIL (1: append prefix.py's per-request lines).
# Prints markdown on stdout and progress on stderr; exits 2 when a tool is
# missing, 1 when a run fails (a helper failure fails the run).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${BIN:-$REPO/bin}
CORPUS=${CORPUS:-$REPO/tests/corpus}
FILES=${FILES:-mini-swe-agent__deepseek_chat_dev_rerun__pylint-dev__astroid-1333.json mini-swe-agent__django__django-12125.json mini-swe-agent__astropy__astropy-12907.json}
FROM=${FROM:-40}
JOBS=${JOBS:-2}
W1=${W1:-200}
DETAIL=${DETAIL:-0}
# shellcheck source=bench/bench-lib.sh
. "$REPO/bench/bench-lib.sh"

bench_need curl jq python3 awk
for b in llm-mapreduce llm-generate llm-estimate; do
	[[ -x $BIN/$b ]] || { echo "${0##*/}: $BIN/$b missing; run make (or set BIN)" >&2; exit 2; }
done
PREFIX=$REPO/tests/lib/prefix.py
[[ -r $PREFIX && -r $REPO/tests/fake_ollama.py ]] || { echo "${0##*/}: tests/lib/prefix.py or tests/fake_ollama.py missing" >&2; exit 2; }
read -r -a files <<<"$FILES"
for f in "${files[@]}"; do
	[[ -r $CORPUS/$f ]] || { echo "${0##*/}: $CORPUS/$f not found (set CORPUS, FILES)" >&2; exit 2; }
done

BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/bench-prefix.XXXXXX")
trap bench_cleanup EXIT	# the fakes too
trap 'exit 130' INT TERM
# No user config file and no user cache: the flags below decide everything.
: >"$BENCH_TMP/config"
export LLM_ROUTE_CONFIG=$BENCH_TMP/config
# Copies, so that a rebuild of $BIN during the run does not change what is measured.
cp "$BIN/llm-mapreduce" "$BIN/llm-generate" "$BIN/llm-estimate" "$BENCH_TMP/"
MR=$BENCH_TMP/llm-mapreduce
GEN=$BENCH_TMP/llm-generate
EST=$BENCH_TMP/llm-estimate
"$MR" --version >/dev/null && "$GEN" --version >/dev/null && "$EST" --version >/dev/null
# Which build: the commit of the tree that holds $BIN, and whether its sources differ.
build=$(cd "$BIN/.." && git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ $build != unknown ]] && [[ -n $(cd "$BIN/.." && git status --porcelain -- src cmd Makefile 2>/dev/null) ]]; then
	build="$build + uncommitted changes to src/ cmd/ Makefile"
fi

# No delays (prefill and decode rates 0) and no context limit: only the token
# counts in the logs matter here.
bench_fake_as GPU0
bench_fake_as GPU1 --set "{\"answer_words\":$W1}"
export LLM_GPU0_URL=$URL_GPU0 LLM_GPU1_URL=$URL_GPU1
unset OLLAMA_HOST

# log_stats LOG N0: waits until every request logged in LOG after line N0 has
# ended, then prints "requests prompt_tokens prefilled_tokens" of its chat
# requests (exit 1 when one failed).
cat >"$BENCH_TMP/logstats.py" <<'EOF'
import json, sys
n = p = f = 0
with open(sys.argv[1], encoding="utf-8") as log:
    for i, line in enumerate(log):
        if i < int(sys.argv[2]) or '"event":"end"' not in line[:40]:
            continue
        r = json.loads(line)
        if r.get("path") != "/api/chat":
            continue
        if r.get("status") != 200 or not r.get("completed"):
            sys.exit(f"{sys.argv[1]}: request {r.get('seq')} failed (status {r.get('status')})")
        n, p, f = n + 1, p + r["prompt_tokens"], f + r["prefilled_tokens"]
print(n, p, f)
EOF
log_stats() {
	local log=$1 n0=$2 i s e
	for ((i = 0; i < 200; i++)); do
		s=$(tail -n +"$((n0 + 1))" "$log" | cut -c1-40 | grep -c '"event":"start"' || true)
		e=$(tail -n +"$((n0 + 1))" "$log" | cut -c1-40 | grep -c '"event":"end"' || true)
		[[ $s == "$e" ]] && break
		sleep 0.05
	done
	[[ $s == "$e" ]] || { echo "${0##*/}: $log: requests did not finish" >&2; exit 1; }
	python3 "$BENCH_TMP/logstats.py" "$log" "$n0"
}

# replay C VARIANT: the requests of conversation C (in $BENCH_TMP/c$C/in) through
# VARIANT and GPU0; appends "C variant requests keeps keeps% share% gpu0_req
# prompt prefilled gpu1_req" to $BENCH_TMP/results.
replay() {
	local c=$1 v=$2 dir=$BENCH_TMP/c$1/$2 in name n0 n1 g0 g1 summary
	local -a cmd
	mkdir -p "$dir"
	export XDG_CACHE_HOME=$dir/xdg
	mkdir -p "$XDG_CACHE_HOME"
	case $v in
	direct) cmd=() ;;
	extractive) cmd=("$MR" --extractive) ;;
	helper) cmd=("$MR" --gpu1 --on-helper-failure fail --jobs "$JOBS") ;;
	esac
	curl -sS --fail -o /dev/null --data-binary '{}' "$URL_GPU0/_reset"
	n0=$(wc -l <"$BENCH_TMP/GPU0.log")
	n1=$(wc -l <"$BENCH_TMP/GPU1.log")
	echo "${files[$c]}: $v" >&2
	for in in "$BENCH_TMP/c$c/in"/in.*.json; do
		name=${in##*/}
		ln "$in" "$dir/$name"
		if ((${#cmd[@]} == 0)); then
			ln "$in" "$dir/out.${name#in.}"
		elif ! "${cmd[@]}" <"$in" >"$dir/out.${name#in.}" 2>"$BENCH_TMP/err"; then
			echo "${0##*/}: ${files[$c]} $v ${name}: llm-mapreduce failed:" >&2
			cat "$BENCH_TMP/err" >&2
			exit 1
		fi
		[[ ! -s $BENCH_TMP/err ]] || sed "s/^/${files[$c]} $v $name: /" "$BENCH_TMP/err" >>"$BENCH_TMP/warnings"
		: >"$BENCH_TMP/err"
		if ! "$GEN" --gpu0 --no-stream <"$dir/out.${name#in.}" >/dev/null 2>"$BENCH_TMP/err"; then
			echo "${0##*/}: ${files[$c]} $v ${name}: llm-generate failed:" >&2
			cat "$BENCH_TMP/err" >&2
			exit 1
		fi
	done
	g0=$(log_stats "$BENCH_TMP/GPU0.log" "$n0")
	g1=$(log_stats "$BENCH_TMP/GPU1.log" "$n1")
	python3 "$PREFIX" -v "$dir" >"$dir/prefix.tsv"
	summary=$(awk -F'\t' '$1 == "summary" { print $2, $3, $4, $5 }' "$dir/prefix.tsv")
	echo "$c $v $summary $g0 ${g1%% *}" >>"$BENCH_TMP/results"
}

: >"$BENCH_TMP/results"
: >"$BENCH_TMP/warnings"
: >"$BENCH_TMP/err"
load0=$(cut -d' ' -f1-3 /proc/loadavg)
start=$EPOCHREALTIME
declare -a nmsg nreq tok
for c in "${!files[@]}"; do
	src=$CORPUS/${files[$c]}
	mkdir -p "$BENCH_TMP/c$c/in"
	nmsg[c]=$(jq '.messages | length' "$src")
	tok[c]=$("$EST" -n <"$src")
	# k: a user or tool message at or past FROM % of the conversation.
	i=0
	for k in $(jq -r --argjson from "$FROM" '.messages | length as $n | to_entries[]
		| select(.key * 100 >= $n * $from and (.value.role == "user" or .value.role == "tool")) | .key' "$src"); do
		jq -c --argjson k "$k" '.messages |= .[:$k + 1]' "$src" >"$BENCH_TMP/c$c/in/in.$(printf '%04d' "$i").json"
		i=$((i + 1))
	done
	nreq[c]=$i
	((i >= 2)) || { echo "${0##*/}: ${files[$c]}: fewer than 2 requests" >&2; exit 1; }
	for v in direct extractive helper; do replay "$c" "$v"; done
done
load1=$(cut -d' ' -f1-3 /proc/loadavg)
elapsed=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d min %d s", (b - a) / 60, (b - a) % 60 }')

echo "## Prefix stability: llm-mapreduce replayed request by request (bench/prefix-replay.sh)"
echo
printf -- '- date: %s, run time %s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')" "$elapsed"
# shellcheck disable=SC2016
printf -- '- binaries: `%s` (build of commit %s), `llm-mapreduce` defaults otherwise (--chunk-tokens 3000, --chunk-target 300, --target 4000, --preserve 150, --keep-last 4)\n' \
	"$BIN" "$build"
printf -- '- CPU: %s, nproc %s, %s; load average before / after: %s / %s\n' \
	"$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)" "$(nproc)" \
	"$(python3 --version)" "$load0" "$load1"
printf -- '- requests: every user or tool message k from %s%% of the conversation on; request k holds messages 0..k\n' "$FROM"
printf -- '- fakes (tests/fake_ollama.py, no delays): GPU0 with its prefix cache, reset before each variant; GPU1 answers %s words\n' "$W1"
echo
echo "| conversation | messages | tokens | requests (k from-to) |"
echo "|---|---:|---:|---|"
for c in "${!files[@]}"; do
	first=$(jq '.messages | length - 1' "$BENCH_TMP/c$c/in/in.0000.json")
	last=$(jq '.messages | length - 1' "$BENCH_TMP/c$c/in/in.$(printf '%04d' $((nreq[c] - 1))).json")
	# shellcheck disable=SC2016
	printf '| `%s` | %s | %s | %s (%s-%s) |\n' "${files[$c]}" "${nmsg[c]}" "${tok[c]}" "${nreq[c]}" "$first" "$last"
done
echo
echo "### Per conversation and variant"
echo
echo "Keeps: requests (after the first) whose rendered prompt starts with all of"
echo "the previous condensed request up to the end of its condensed part. Prefix"
echo "share: of each rendered prompt, the part that is a prefix of the previous"
echo "one (mean over the requests after the first). GPU0 tokens: sums over the"
echo "replay from the fake's log; prefilled: past the prefix shared with the"
echo "previous prompt. Ratio: prefilled / direct's prefilled."
echo
echo "| conversation | variant | keeps | keeps % | prefix share % | GPU0 prompt tokens | GPU0 prefilled tokens | prefilled / direct | helper requests |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
awk -v names="${files[*]}" '
	BEGIN { split(names, f, " ") }
	{ c = $1; v = $2; if ($2 == "direct") d[c] = $9
	  short = f[c + 1]; sub(/^mini-swe-agent__/, "", short); sub(/\.json$/, "", short)
	  printf "| %s | %s | %d/%d | %.1f | %.1f | %d | %d | %.2f | %d |\n", short, v, $4, $3, $5, $6, $8, $9,
		(d[c] ? $9 / d[c] : 0), $10
	  n[v] += $3; k[v] += $4; s[v] += $6 * $3; p[v] += $8; pf[v] += $9; h[v] += $10 }
	END {
		split("direct extractive helper", vs, " ")
		for (i = 1; i <= 3; i++) { v = vs[i]
			printf "| **all three** | %s | %d/%d | %.1f | %.1f | %d | %d | %.2f | %d |\n", v, k[v], n[v],
				(n[v] ? 100 * k[v] / n[v] : 0), (n[v] ? s[v] / n[v] : 0), p[v], pf[v],
				(pf["direct"] ? pf[v] / pf["direct"] : 0), h[v] }
	}' "$BENCH_TMP/results"
echo
echo "(all three: the prefix share is the mean over all requests of the three conversations.)"
if [[ -s $BENCH_TMP/warnings ]]; then
	echo
	echo "Warnings on stderr ($(wc -l <"$BENCH_TMP/warnings")), the first 5:"
	echo
	echo '```'
	head -n 5 "$BENCH_TMP/warnings"
	echo '```'
fi
if [[ $DETAIL == 1 ]]; then
	echo
	echo "### Per request (tests/lib/prefix.py -v)"
	for c in "${!files[@]}"; do
		for v in extractive helper; do
			echo
			# shellcheck disable=SC2016
			printf '`%s`, %s:\n\n```\n' "${files[$c]}" "$v"
			cat "$BENCH_TMP/c$c/$v/prefix.tsv"
			echo '```'
		done
	done
fi
