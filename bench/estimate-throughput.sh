#!/usr/bin/env bash
# estimate-throughput.sh - llm-estimate's speed on the largest corpus file,
# against jq summing the content lengths of the same file.
#
#   bench/estimate-throughput.sh > out.md   (from the repo, after `make`)
#
# hyperfine (shell-startup corrected) times
#   llm-estimate -n < FILE                   (qwen method, the default)
#   llm-estimate --method chars4 -n < FILE
#   jq '[.messages[].content|strings|length]|add' < FILE
# and reports medians, ratios against jq, MB/s (file bytes / median wall time,
# process start included) and peak RSS (/usr/bin/time -v).
#
# Environment: CORPUS (default ../shared/corpus from the repo), FILE (default the
# largest .json in CORPUS), RUNS (50), WARMUP (3), RSS_RUNS (5).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CORPUS=${CORPUS:-$REPO/../shared/corpus}
RUNS=${RUNS:-50}
WARMUP=${WARMUP:-3}
RSS_RUNS=${RSS_RUNS:-5}
EST=$REPO/bin/llm-estimate
JQ_FILTER='[.messages[].content|strings|length]|add'
# shellcheck source=bench/bench-lib.sh
. "$REPO/bench/bench-lib.sh"

bench_need hyperfine jq curl python3 /usr/bin/time
[[ -x $EST ]] || { echo "${0##*/}: $EST missing; run make" >&2; exit 2; }
if [[ -z ${FILE:-} ]]; then
	# shellcheck disable=SC2012
	FILE=$(ls -S "$CORPUS"/*.json 2>/dev/null | head -n 1) || true
fi
[[ -n ${FILE:-} && -r $FILE ]] || { echo "${0##*/}: no corpus file (set CORPUS or FILE)" >&2; exit 2; }

BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/bench-est.XXXXXX")
trap bench_cleanup EXIT
trap 'exit 130' INT TERM
: >"$BENCH_TMP/config"
export LLM_ROUTE_CONFIG=$BENCH_TMP/config
# A copy, so that a rebuild during the run does not change what is measured.
cp "$EST" "$BENCH_TMP/llm-estimate"
EST=$BENCH_TMP/llm-estimate

bytes=$(wc -c <"$FILE")
qf=$(printf '%q' "$FILE")
qe=$(printf '%q' "$EST")
names=("jq" "llm-estimate -n" "llm-estimate --method chars4 -n")
cmds=("jq '$JQ_FILTER' < $qf" "$qe -n < $qf" "$qe --method chars4 -n < $qf")
outs=("$(jq "$JQ_FILTER" <"$FILE")" "$("$EST" -n <"$FILE")" "$("$EST" --method chars4 -n <"$FILE")")

echo "## llm-estimate throughput (bench/estimate-throughput.sh)"
echo
bench_machine
# shellcheck disable=SC2016
printf -- '- file: `%s`, %s bytes, %s messages\n' "${FILE##*/}" "$bytes" \
	"$(jq '.messages | length' <"$FILE")"
echo
echo "### Wall time (hyperfine --warmup $WARMUP --runs $RUNS)"
echo
echo "Ratio: median / median of jq. MB/s: file bytes / median (10^6 bytes)."
echo
echo "| command | prints | median ms | mean ± sd ms | ratio vs jq | MB/s | max RSS kB |"
echo "|---|---:|---:|---:|---:|---:|---:|"
hf=$BENCH_TMP/hf.json
args=()
for i in "${!names[@]}"; do args+=(-n "${names[i]}" "${cmds[i]}"); done
hyperfine --warmup "$WARMUP" --runs "$RUNS" --style basic --export-json "$hf" "${args[@]}" >&2
base=$(bench_hf_stat "$hf" 0 median)
for i in "${!names[@]}"; do
	med=$(bench_hf_stat "$hf" "$i" median)
	vals=()
	for ((r = 0; r < RSS_RUNS; r++)); do
		case $i in
		0) vals+=("$(bench_rss jq "$JQ_FILTER" <"$FILE")") ;;
		1) vals+=("$(bench_rss "$EST" -n <"$FILE")") ;;
		2) vals+=("$(bench_rss "$EST" --method chars4 -n <"$FILE")") ;;
		esac
	done
	printf '| %s | %s | %s | %s ± %s | %s | %s | %s |\n' "\`${names[i]}\`" "${outs[i]}" \
		"$(bench_fmt "$med")" "$(bench_fmt "$(bench_hf_stat "$hf" "$i" mean)")" \
		"$(bench_fmt "$(bench_hf_stat "$hf" "$i" stddev)")" "$(bench_ratio "$med" "$base")" \
		"$(awk -v b="$bytes" -v m="$med" 'BEGIN { printf "%.0f", b / 1e6 / (m / 1000) }')" \
		"$(bench_median "${vals[@]}")"
done
echo
echo "jq prints the summed content length in code points; llm-estimate prints tokens."
echo "The times include process start, which dominates at this size."
echo

# The same with the messages repeated 10 times: the marginal rate excludes startup.
big=$BENCH_TMP/x10.json
jq -c '.messages = [range(10) as $i | .messages[]]' <"$FILE" >"$big"
bytes10=$(wc -c <"$big")
qb=$(printf '%q' "$big")
cmds10=("jq '$JQ_FILTER' < $qb" "$qe -n < $qb" "$qe --method chars4 -n < $qb")
echo "### Marginal throughput (messages repeated 10 times, $bytes10 bytes)"
echo
echo "Marginal MB/s: (bytes x10 - bytes x1) / (median x10 - median x1)."
echo
echo "| command | median ms x10 | ratio vs jq | marginal MB/s | max RSS kB x10 |"
echo "|---|---:|---:|---:|---:|"
hf10=$BENCH_TMP/hf10.json
args=()
for i in "${!names[@]}"; do args+=(-n "${names[i]}" "${cmds10[i]}"); done
hyperfine --warmup "$WARMUP" --runs "$RUNS" --style basic --export-json "$hf10" "${args[@]}" >&2
base10=$(bench_hf_stat "$hf10" 0 median)
for i in "${!names[@]}"; do
	med=$(bench_hf_stat "$hf" "$i" median)
	med10=$(bench_hf_stat "$hf10" "$i" median)
	case $i in
	0) rss=$(bench_rss jq "$JQ_FILTER" <"$big") ;;
	1) rss=$(bench_rss "$EST" -n <"$big") ;;
	2) rss=$(bench_rss "$EST" --method chars4 -n <"$big") ;;
	esac
	printf '| %s | %s | %s | %s | %s |\n' "\`${names[i]}\`" "$(bench_fmt "$med10")" \
		"$(bench_ratio "$med10" "$base10")" \
		"$(awk -v b="$((bytes10 - bytes))" -v d="$med10" -v m="$med" \
			'BEGIN { printf "%.0f", (d > m ? b / 1e6 / ((d - m) / 1000) : 0) }')" "$rss"
done
