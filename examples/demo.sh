#!/bin/sh
# demo.sh - route the three example conversations through llm-route -v
# against canned demo backends (the test suite's fake Ollama servers on
# 127.0.0.1, labelled as such), then start llm-serve in front of them and
# send it one chat with curl, as Cline would, so that routing, condensing
# and streaming can be seen without a GPU.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${BIN:-$top/bin}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/llm-route-demo.XXXXXX")
cleanup() {	# every server started, by the pid files start() writes
	for f in "$tmp"/*.pid; do
		[ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

start() {	# start NAME: a fake server; prints its URL
	python3 "$top/tests/fake_ollama.py" --port 0 --port-file "$tmp/$1.port" \
	    --log "$tmp/$1.log" --name "$1" --decode-tps 25 \
	    </dev/null >/dev/null 2>"$tmp/$1.err" &
	echo $! >"$tmp/$1.pid"	# start() runs in $(...): a file, not a variable
	i=0
	while [ ! -s "$tmp/$1.port" ]; do
		i=$((i + 1))
		[ $i -lt 100 ] || { echo "demo: $1 did not start" >&2; exit 1; }
		sleep 0.1
	done
	echo "http://127.0.0.1:$(cat "$tmp/$1.port")"
}

LLM_GPU0_URL=$(start demo-gpu0)
LLM_GPU1_URL=$(start demo-gpu1)
export LLM_GPU0_URL LLM_GPU1_URL XDG_CACHE_HOME="$tmp/cache"
echo "canned demo backends (fake Ollama servers, not models):"
echo "  GPU0 $LLM_GPU0_URL   GPU1 $LLM_GPU1_URL"
for ex in small medium large; do
	f=$top/examples/$ex.json
	echo
	echo "=== examples/$ex.json: $("$bin/llm-estimate" -n <"$f") tokens"
	"$bin/llm-route" -v <"$f" 2>&1 | grep -v ' dropped '
done

echo
echo "=== llm-serve in front of them, and one chat sent to it with curl"
"$bin/llm-serve" --listen 127.0.0.1:0 -v </dev/null >/dev/null \
    2>"$tmp/serve.err" &
echo $! >"$tmp/serve.pid"
i=0
until url=$(sed -n 's/^llm-serve: listening on //p' "$tmp/serve.err") &&
    [ -n "$url" ]; do
	i=$((i + 1))
	[ $i -lt 100 ] || { echo "demo: llm-serve did not start" >&2; exit 1; }
	sleep 0.1
done
echo "llm-serve: listening on $url"
echo "\$ curl -sN $url/api/chat -d @examples/medium.json | jq -j .message.content"
curl -sN "$url/api/chat" -d @"$top/examples/medium.json" | jq -j .message.content
echo
kill "$(cat "$tmp/serve.pid")"
while kill -0 "$(cat "$tmp/serve.pid")" 2>/dev/null; do sleep 0.1; done
grep ' serve ' "$tmp/serve.err"
