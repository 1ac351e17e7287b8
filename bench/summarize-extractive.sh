#!/usr/bin/env bash
# summarize-extractive.sh [CORPUS_DIR] - compression and run time of
# `llm-summarize --extractive` on each corpus file, against `jq -c .` on
# the same file (parsing and writing the same JSON) measured in the same
# run with hyperfine.  Prints a markdown table.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
corpus=${1:-$top/tests/corpus}
bin=${BIN:-$top/bin}
command -v hyperfine >/dev/null || { echo "hyperfine is not installed" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "| file | tokens in | tokens out | out/in | llm-summarize --extractive | jq -c . | ratio |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for f in "$corpus"/*.json; do
	name=${f##*/}
	tin=$("$bin/llm-estimate" -n <"$f")
	"$bin/llm-summarize" --extractive <"$f" >"$tmp/out"
	tout=$("$bin/llm-estimate" -n <"$tmp/out")
	hyperfine --warmup 3 --runs 20 --export-json "$tmp/h.json" \
	    "$bin/llm-summarize --extractive < '$f'" "jq -c . < '$f'" \
	    >/dev/null 2>&1
	read -r ms jq < <(jq -r '[.results[].mean * 1000] | "\(.[0]) \(.[1])"' "$tmp/h.json")
	printf '| %s | %d | %d | %.2f | %.2f ms | %.2f ms | %.2f |\n' \
	    "${name%.json}" "$tin" "$tout" "$(echo "$tout / $tin" | bc -l)" \
	    "$ms" "$jq" "$(echo "$ms / $jq" | bc -l)"
done
