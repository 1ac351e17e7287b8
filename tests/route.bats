#!/usr/bin/env bats
# llm-route: the same bytes as the pipeline in each band, thresholds from
# each source, --dry-run, --print-config, the context window, truncation,
# fallbacks and failover.

load lib/common

A=$CORPUS/swe-agent__function_calling_simple.json	# ~1900 tokens: direct
B=$CORPUS/swe-agent__warmup.json			# ~4800: summarize
C=$CORPUS/swe-agent__pydicom__pydicom-1458.json		# ~15000: map-reduce

setup_file() {
	fake_start GPU0
	fake_start GPU1
	fake_start ALT
}

teardown_file() {
	fake_stop_all
}

setup() {
	fake_reset_all
	export LLM_GPU0_URL=$GPU0_URL LLM_GPU1_URL=$GPU1_URL
	export XDG_CACHE_HOME=$BATS_TEST_TMPDIR/cache XDG_CONFIG_HOME=$BATS_TEST_TMPDIR/config
}

shows() {	# /api/show requests GPU0 had since the last reset
	fake_requests GPU0 --all | jq -s 'map(select(.path == "/api/show")) | length'
}

@test "band A: the same bytes as llm-generate" {
	run --separate-stderr llm-route <"$A"
	assert_success
	assert_output "$(llm-generate <"$A")"
	assert_equal "$(fake_count GPU1)" 0
	assert_equal "$(llm-route --json <"$A" | jq -c 'del(.created_at)')" "$(llm-generate --json <"$A" | jq -c 'del(.created_at)')"
}

@test "band B: the same bytes as llm-summarize | llm-generate" {
	run --separate-stderr llm-route <"$B"
	assert_success
	assert_output "$(llm-summarize <"$B" | llm-generate)"
	assert_equal "$(llm-route --target 200 --keep-last 2 <"$B")" "$(llm-summarize --target 200 --keep-last 2 <"$B" | llm-generate)"
	# GPU0 got the condensed chat: the system message, the task, the block.
	run fake_requests GPU0
	assert_equal "$(jq -c '.body.messages[:2]' <<<"${lines[0]}")" "$(jq -c '.messages[:2]' "$B")"
	assert_equal "$(jq -r '.body.messages[2] | .role, (.content | split("\n")[0])' <<<"${lines[0]}")" "user
--- Earlier conversation, condensed by llm-route: summaries, oldest first ---"
}

@test "band C: the same bytes as llm-mapreduce | llm-generate" {
	run --separate-stderr llm-route <"$C"
	assert_success
	assert_output "$(llm-mapreduce <"$C" | llm-generate)"
	assert_equal "$(llm-route --extractive --no-cache <"$C")" "$(llm-mapreduce --extractive --no-cache <"$C" | llm-generate)"
}

@test "the band does not depend on stream" {
	for s in true false; do
		jq -c --argjson s $s '.stream = $s' "$B" | llm-route -v 2>"$BATS_TEST_TMPDIR/err" >/dev/null
		grep -q ' route tokens=[0-9]* a_max=2000 b_max=6000 strategy=summarize$' "$BATS_TEST_TMPDIR/err"
	done
}

@test "thresholds from flags, environment and config file, in that order" {
	mkdir -p "$XDG_CONFIG_HOME/llm-route"
	printf 'a_max = 100\nb_max = 200\n' >"$XDG_CONFIG_HOME/llm-route/config"
	assert_equal "$(llm-route --dry-run <"$B" | jq -r .strategy)" mapreduce
	assert_equal "$(LLM_ROUTE_B_MAX=9000 llm-route --dry-run <"$B" | jq -r .strategy)" summarize
	assert_equal "$(LLM_ROUTE_A_MAX=10 LLM_ROUTE_B_MAX=9000 llm-route --a-max 5000 --dry-run <"$B" | jq -r .strategy)" direct
	assert_equal "$(llm-route --set a_max=6000 --set b_max=7000 --dry-run <"$B" | jq -r .strategy)" direct
	run --separate-stderr env LLM_ROUTE_A_MAX=4000 LLM_ROUTE_B_MAX=8000 llm-route -v <"$B"
	assert_success
	[[ ${stderr_lines[0]} == *" route tokens=4822 a_max=4000 b_max=8000 strategy=summarize" ]] || fail "$stderr"
	# A_MAX over B_MAX, from different sources, is a configuration error.
	run --separate-stderr env LLM_ROUTE_A_MAX=4000 llm-route <"$B"
	assert_fails 2 "^llm-route: A_MAX \(4000, from LLM_ROUTE_A_MAX\) is greater than B_MAX \(200, from $XDG_CONFIG_HOME/llm-route/config:2\)$"
}

@test "--dry-run (and --explain): the decision and its numbers, no request at all" {
	run --separate-stderr llm-route --dry-run <"$C"
	assert_success
	assert_equal "$(jq -c '[.strategy, .thresholds, .gpu0.url, .gpu0.model, .gpu1.model]' <<<"$output")" \
		"[\"mapreduce\",{\"a_max\":2000,\"b_max\":6000},\"$GPU0_URL\",\"qwen2.5-coder:7b\",\"qwen3:1.7b\"]"
	assert_equal "$(jq -r .tokens <<<"$output")" "$(llm-estimate -n <"$C")"
	assert_equal "$(llm-route --explain <"$C")" "$output"
	assert_equal "$(fake_requests GPU0 --all | wc -l) $(fake_requests GPU1 --all | wc -l)" "0 0"
}

@test "--print-config: every setting and where it came from" {
	mkdir -p "$XDG_CONFIG_HOME/llm-route"
	printf 'gpu1_model = small:1b\n' >"$XDG_CONFIG_HOME/llm-route/config"
	run --separate-stderr env LLM_ROUTE_B_MAX=7000 llm-route --a-max 1500 --print-config
	assert_success
	assert_line "# config file: $XDG_CONFIG_HOME/llm-route/config"
	assert_line "$(printf 'gpu0_url = %s\t# LLM_GPU0_URL' "$GPU0_URL")"
	assert_line "$(printf 'gpu1_model = small:1b\t# %s/llm-route/config:1' "$XDG_CONFIG_HOME")"
	assert_line "$(printf 'a_max = 1500\t# --a-max')"
	assert_line "$(printf 'b_max = 7000\t# LLM_ROUTE_B_MAX')"
	assert_line "$(printf 'gpu0_model = qwen2.5-coder:7b\t# default')"
	run --separate-stderr llm-route --set bogus=1 --print-config
	assert_equal "$status" 2
	[[ ${stderr_lines[0]} == "llm-route: unknown setting bogus" ]]
}

@test "the context window: asked once from /api/show, remembered, the same num_ctx for every size" {
	llm-route <"$A" >/dev/null
	llm-route <"$B" >/dev/null
	llm-route <"$C" >/dev/null
	assert_equal "$(shows)" 1
	assert_equal "$(fake_requests GPU0 | jq -r '.body.options.num_ctx' | sort -u)" 32768
	# Configured wins over the request's, which wins over the model's.
	jq -c '.options = {num_ctx: 16384}' "$A" | llm-route >/dev/null
	jq -c '.options = {num_ctx: 16384}' "$A" | llm-route --num-ctx 20000 >/dev/null
	assert_equal "$(fake_requests GPU0 | jq -r '.body.options.num_ctx' | tail -n 2 | paste -sd ' ')" "16384 20000"
}

@test "a chat that does not fit is condensed harder, or refused (status 3)" {
	# The system message, the task (713 tokens, under half of the 2976
	# that may be sent) and the tail stay: about 2500 tokens, 2750 with
	# the margin of a server whose tokenizer is not measured yet.
	run --separate-stderr llm-route --num-ctx 4000 <"$B"
	assert_success
	[[ $stderr == "llm-route: the chat needs about "*" tokens with its answer, more than GPU0's context of 4000 tokens (num_ctx, from configuration): condensing harder (mapreduce)" ]] || fail "$stderr"
	(( $(fake_requests GPU0 | jq '.prompt_tokens') <= 4000 ))
	assert_equal "$(fake_requests GPU0 | jq -c '.body.messages[1]')" "$(jq -c '.messages[1]' "$B")"
	fake_reset GPU0
	run --separate-stderr llm-route --num-ctx 600 <"$B"
	assert_equal "$status" 3
	[[ ${stderr_lines[-1]} =~ ^llm-route:\ the\ chat\ needs\ about\ [0-9]+\ tokens\ with\ its\ answer\ even\ condensed,\ more\ than\ GPU0\'s\ context\ of\ 600\ tokens ]] || fail "$stderr"
	assert_equal "$output" ""
	assert_equal "$(fake_count GPU0)" 0
}

@test "the task stays unless it alone takes half of what may be sent (num_ctx less the answer's room)" {
	python3 -c '
import json
task = "Port the importer to the new schema. " + " ".join("The %s field of record %d moves to table t%d." % (w, i, i % 7) for i, w in enumerate(["name", "date", "size", "owner"] * 18))
msgs = [{"role": "system", "content": "You are a coding agent."}, {"role": "user", "content": task}]
for i in range(12):
    msgs.append({"role": "assistant", "content": "Step %d: I read src/importer/m%d.py and changed the mapping of field %d; the tests of module %d pass now, and the next one is the loader of batch %d." % (i, i, i, i, i) * 3})
    msgs.append({"role": "user", "content": "Good, go on with step %d, and keep the old column names as aliases." % (i + 1)})
print(json.dumps({"model": "qwen2.5-coder:7b", "options": {"num_predict": 200}, "messages": msgs}))' >"$BATS_TEST_TMPDIR/in"
	(( $(jq '.messages[1].content' "$BATS_TEST_TMPDIR/in" | llm-estimate -n --text) > 1000 ))
	# 2400 - 200 may be sent: the task (about 1010 tokens) stays.
	run --separate-stderr llm-route -v --num-ctx 2400 <"$BATS_TEST_TMPDIR/in"
	assert_success
	[[ $stderr != *" task message="* && $stderr == *" condense how=helper "*" task=kept "* ]] || fail "$stderr"
	assert_equal "$(fake_requests GPU0 | jq -c '.body.messages[:2]')" "$(jq -c '.messages[:2]' "$BATS_TEST_TMPDIR/in")"
	# 2000 - 200: it goes with the rest, and the log says so.
	fake_reset GPU0
	run --separate-stderr llm-route -v --num-ctx 2000 <"$BATS_TEST_TMPDIR/in"
	assert_success
	[[ $stderr == *' task message=2 tokens='*' budget=1800 kept="no: more than half the budget, condensed with the rest"'* ]] || fail "$stderr"
	assert_equal "$(fake_requests GPU0 | jq -r '.body.messages[1] | .role, (.content | split("\n")[0])')" "user
--- Earlier conversation, condensed by llm-route: summaries, oldest first ---"
	(( $(fake_requests GPU0 | jq '.prompt_tokens') <= 1800 ))
}

@test "an evident truncation by the server is named" {
	# An OpenAI-compatible server with a smaller context than the prompt
	# cuts it silently; llm-route cannot know its window beforehand.
	fake_control GPU0 '{"num_ctx": 1000}'
	run --separate-stderr llm-route --set gpu0_api=openai <"$B"
	assert_success
	[[ $stderr == "llm-route: GPU0 evaluated 1000 prompt tokens where about "*" were sent: the server evidently truncated the prompt"* ]] || fail "$stderr"
	fake_reset GPU0
	run --separate-stderr llm-route --set gpu0_api=openai <"$B"
	assert_equal "$stderr" ""
}

@test "helper down: extractive (default), direct or fail" {
	run --separate-stderr llm-route --gpu1-url http://127.0.0.1:1 <"$B"
	assert_success
	[[ $stderr == *"; using the extractive summary" ]] || fail "$stderr"
	assert_output "$(llm-summarize --extractive <"$B" | llm-generate)"
	run --separate-stderr llm-route --gpu1-url http://127.0.0.1:1 --on-helper-failure=direct <"$B"
	assert_success
	assert_output "$(llm-generate <"$B")"
	run --separate-stderr llm-route --gpu1-url http://127.0.0.1:1 --on-helper-failure=fail <"$B"
	assert_fails 4 "GPU1 http://127.0.0.1:1/api/show"
	fake_control GPU1 '{"status": 500}'
	run --separate-stderr llm-route --no-cache --jobs 1 <"$C"
	assert_success
	# 3 closed chunks, each a span of the block.
	[[ ${stderr_lines[0]} == *"HTTP 500"*"; using the extractive summary for 3 of 3 summaries (GPU1 is not asked again in this run)" ]] || fail "$stderr"
	# Asked once, not once a chunk and a try.
	assert_equal "$(fake_count GPU1)" 1
}

@test "a hung helper costs one timeout, not one a chunk" {
	fake_control GPU1 '{"first_byte_delay": 5}'
	run --separate-stderr llm-route --no-cache --jobs 1 --set gpu1_first_byte_timeout=300ms <"$C"
	assert_success
	assert_equal "${#stderr_lines[@]}" 1
	[[ ${stderr_lines[0]} == *"(first-byte timeout); using the extractive summary for 3 of 3 summaries (GPU1 is not asked again in this run)" ]] || fail "$stderr"
	assert_equal "$(fake_count GPU1)" 1
	# A closed port: one attempt, one warning for the spans.
	run --separate-stderr llm-route --no-cache --gpu1-url http://127.0.0.1:1 <"$C"
	assert_success
	assert_equal "$(grep -c 'using the extractive summary' <<<"$stderr")" 1
}

@test "GPU0 down: status 4 and how to point at a server" {
	run --separate-stderr llm-route --gpu0-url http://127.0.0.1:1 <"$A"
	assert_equal "$status" 4
	assert_equal "$output" ""
	[[ $stderr == "llm-route: GPU0 http://127.0.0.1:1/api/show: cannot connect: "*"(is the server running? point GPU0 at it with LLM_GPU0_URL or OLLAMA_HOST)" ]] || fail "$stderr"
	assert_equal "${#stderr_lines[@]}" 1	# one cause, told once
}

@test "GPU0 down: the chat fails before GPU1 condenses anything" {
	# The window unknown: /api/show fails, and that is the error.
	run --separate-stderr llm-route --no-cache --gpu0-url http://127.0.0.1:1 <"$C"
	assert_equal "$status" 4
	assert_equal "$output" ""
	assert_equal "${#stderr_lines[@]}" 1
	assert_equal "$(fake_count GPU1)" 0
	# The window known, so nothing asks /api/show: a connection is tried.
	run --separate-stderr llm-route --no-cache --num-ctx 32768 --gpu0-url http://127.0.0.1:1 <"$B"
	assert_equal "$status" 4
	[[ $stderr == "llm-route: GPU0 http://127.0.0.1:1: cannot connect: "*"(is the server running? point GPU0 at it with LLM_GPU0_URL or OLLAMA_HOST)" ]] || fail "$stderr"
	assert_equal "$(fake_count GPU1)" 0
	# A second URL that answers is enough.
	run --separate-stderr llm-route --no-cache --num-ctx 32768 --gpu0-url "http://127.0.0.1:1,$GPU0_URL" <"$B"
	assert_success
	assert_equal "$(fake_count GPU1)" 1
}

@test "--on-overflow: refuse (default, before any work) or direct (sent as it is, with a warning)" {
	run --separate-stderr llm-route --no-cache --num-ctx 3000 <"$B"
	assert_equal "$status" 3
	assert_equal "$output" ""
	[[ $stderr == "llm-route: the chat needs about "*" tokens with its answer even condensed, more than GPU0's context of 3000 tokens (num_ctx, from configuration)" ]] || fail "$stderr"
	assert_equal "$(fake_count GPU1)" 0
	assert_equal "$(fake_count GPU0)" 0
	run --separate-stderr llm-route --no-cache --num-ctx 3000 --on-overflow=direct <"$B"
	assert_success
	assert_equal "$(fake_count GPU1)" 0
	assert_equal "$(fake_count GPU0)" 1
	# GPU0 got the chat as it is, and cut it.
	assert_equal "$(fake_requests GPU0 | jq -c '.body.messages')" "$(jq -c .messages "$B")"
	[[ ${stderr_lines[0]} == *"sending it unchanged (--on-overflow=direct); the server will truncate it" ]] || fail "$stderr"
	[[ ${stderr_lines[1]} == "llm-route: GPU0 evaluated 3000 prompt tokens, its whole context of 3000, where about "*" were sent: the server evidently truncated the prompt" ]] || fail "$stderr"
	run --separate-stderr llm-route --on-overflow=maybe <"$B"
	assert_equal "$status" 2
	[[ ${stderr_lines[0]} == "llm-route: --on-overflow: unknown mode 'maybe' (refuse or direct)" ]] || fail "$stderr"
}

@test "several URLs per role: the next on a refusal or a 5xx" {
	run --separate-stderr llm-route --gpu0-url "http://127.0.0.1:1,$ALT_URL" <"$A"
	assert_success
	assert_equal "$(fake_count ALT)" 1
	fake_control GPU1 '{"status": 503}'
	run --separate-stderr llm-route --gpu1-url "$GPU1_URL,$ALT_URL" <"$B"
	assert_success
	[[ $stderr == "llm-route: GPU1 $GPU1_URL/api/chat: HTTP 503: "*"; trying $ALT_URL" ]] || fail "$stderr"
	assert_equal "$(fake_count ALT)" 2
}

@test "a prompt that fills a known window was cut: the warning fires, whatever the server's tokenizer" {
	# GPU0's tokenizer counts 20% more than ceil(chars/4): A's 1879
	# estimated tokens (2067 with the 10% margin, and 24 for the answer)
	# fit a window of 2200, but GPU0 counts 2375 and keeps 2200.
	fake_control GPU0 '{"token_ratio": 1.2}'
	run --separate-stderr bash -c "jq -c '.options.num_predict = 24' '$A' | llm-route --no-cache --num-ctx 2200"
	assert_success
	[[ $stderr == "llm-route: GPU0 evaluated 2200 prompt tokens, its whole context of 2200, where about 1879 were sent: the server evidently truncated the prompt (its tokenizer counts more than the estimate: lower the thresholds or raise num_ctx)" ]] || fail "$stderr"
	assert_equal "$(fake_requests GPU0 | jq '.truncated')" true
	# Not a word when the prompt fits.
	run --separate-stderr bash -c "jq -c '.options.num_predict = 24' '$A' | llm-route --no-cache --num-ctx 4096"
	assert_success
	assert_equal "$stderr" ""
}

@test "GPU0's tokens are learned from its answers: the fit, --explain and --bands server use them" {
	fake_control GPU0 '{"token_ratio": 1.2}'
	# Nothing measured yet: the estimate, and 10% more to fit.
	run llm-route --explain <"$A"
	assert_equal "$(jq -c '.gpu0 | [.token_ratio, .token_ratio_answers, .tokens]' <<<"$output")" '[null,0,2066]'
	assert_equal "$(jq -r .bands <<<"$output")" estimate
	# One answer teaches the ratio: 2374 counted where 1879 were estimated.
	run --separate-stderr llm-route -v <"$A"
	assert_success
	[[ $stderr == *" token_ratio sample=1.263 ratio=1.263 answers=1"* ]] || fail "$stderr"
	run llm-route --explain <"$A"
	assert_equal "$(jq -c '.gpu0 | [.token_ratio, .token_ratio_answers, .tokens]' <<<"$output")" '[1.263,1,2374]'
	# The fit counts it: the same chat no longer goes as it is into
	# 2200 tokens, it is condensed, and nothing is cut.
	fake_reset GPU0
	fake_control GPU0 '{"token_ratio": 1.2}'
	run --separate-stderr bash -c "jq -c '.options.num_predict = 24' '$A' | llm-route --num-ctx 2200"
	assert_success
	[[ $stderr == "llm-route: the chat needs about 2398 tokens with its answer, more than GPU0's context of 2200 tokens (num_ctx, from configuration): condensing harder (summarize)" ]] || fail "$stderr"
	assert_equal "$(fake_requests GPU0 | jq '.truncated')" false
	# The bands judge the estimate (1879 < A_MAX: direct), unless told
	# to judge what GPU0 counts (2374: summarize).
	assert_equal "$(llm-route --explain <"$A" | jq -r .strategy)" direct
	run llm-route --explain --bands server <"$A"
	assert_equal "$(jq -c '[.strategy, .bands]' <<<"$output")" '["summarize","server"]'
	run --separate-stderr llm-route --bands tokens <"$A"
	assert_equal "$status" 2
	[[ ${stderr_lines[0]} == "llm-route: --bands: unknown units 'tokens' (estimate or server)" ]] || fail "$stderr"
}

@test "GPU1's window comes from its server too: a small one is never overflowed" {
	fake_control GPU1 '{"ctx_length": 2048}'
	run --separate-stderr llm-route -v --no-cache <"$C"
	assert_success
	[[ $stderr == *" helper_window role=GPU1 num_ctx=2048 was=8192 from=/api/show"* ]] || fail "$stderr"
	(( $(fake_count GPU1) > 0 ))
	# Every helper request asks for that window and fits in it.
	assert_equal "$(fake_requests GPU1 | jq -s 'map(.body.options.num_ctx) | unique')" "[
  2048
]"
	assert_equal "$(fake_requests GPU1 | jq -s 'map(select(.truncated)) | length')" 0
}

@test "-v and --log-json: one line per stage" {
	run --separate-stderr llm-route --log-json <"$B"
	assert_success
	# GPU0's window, then GPU1's (show show), then the stages, and what
	# each answer taught of its server's speed and of GPU0's tokenizer.
	assert_equal "$(jq -r .event <<<"$stderr" | paste -sd ' ')" "route show show split request speed condense request speed stats token_ratio first_token cache"
	assert_equal "$(jq -r 'select(.event == "show") | .role' <<<"$stderr" | paste -sd ' ')" "GPU0 GPU1"
	assert_equal "$(jq -r 'select(.event == "request") | .role' <<<"$stderr" | paste -sd ' ')" "GPU1 GPU0"
}

@test "-v: a failed /api/show logs its status and leaves context_length out" {
	fake_control GPU0 '{"models": ["other"]}'	# /api/show and /api/chat 404
	run --separate-stderr llm-route -v <"$A"
	assert_equal "$status" 6
	[[ $stderr == *" llm-route: show role=GPU0 url=$GPU0_URL/api/show status=404"$'\n'* ]] || fail "$stderr"
	run --separate-stderr llm-route --log-json <"$A"
	assert_equal "$(grep '"event":"show"' <<<"$stderr" | jq -c 'del(.time)')" \
	    '{"prog":"llm-route","event":"show","role":"GPU0","url":"'"$GPU0_URL"'/api/show","status":404}'
}

@test "--json cut by an error ends with an {\"error\"} line (status 6)" {
	fake_control GPU0 '{"error_after": 2, "error": "CUDA error: out of memory"}'
	run --separate-stderr llm-route --json <"$A"
	assert_equal "$status" 6
	assert_equal "${#lines[@]}" 3
	assert_equal "$(jq -r .error <<<"${lines[2]}")" \
		"GPU0 $GPU0_URL/api/chat: error in stream: CUDA error: out of memory"
	assert_equal "$stderr" "llm-route: $(jq -r .error <<<"${lines[2]}")"
}

@test "a write error on stdout while answering is reported once (status 1)" {
	[[ -w /dev/full ]] || fail "no /dev/full"
	for f in "$A" "$B"; do
		run --separate-stderr bash -c "llm-route --no-cache <'$f' >/dev/full"
		assert_equal "$status" 1
		assert_equal "$stderr" "llm-route: writing output: No space left on device"
		run --separate-stderr bash -c "llm-route --json <'$f' >/dev/full"
		assert_equal "$status" 1
		assert_equal "$stderr" "llm-route: writing output: No space left on device"
	done
}

@test "bad input (status 3) and bad flags (status 2)" {
	run --separate-stderr llm-route <<<'{"messages": [{"role": "user", "content": 5}]}'
	assert_fails 3 'messages\[0\].content: expected a string or an array of parts, got a number$'
	run --separate-stderr llm-route --set nokey </dev/null
	assert_equal "$status" 2
	run --separate-stderr llm-route --a-max 9000 </dev/null
	assert_equal "$status" 2
	assert_equal "$(fake_requests GPU0 --all | wc -l)" 0
}

@test "condensed or not, what the tools do not own reaches GPU0 as the bytes that came in" {
	python3 "$TESTS/lib/rawjson.py" chat >"$BATS_TEST_TMPDIR/in"
	for flags in "--a-max 10 --b-max 100000 --extractive" ""; do
		fake_reset GPU0
		fake_control GPU0 '{"log_raw": true}'
		# shellcheck disable=SC2086
		llm-route $flags --num-ctx 8192 <"$BATS_TEST_TMPDIR/in" >/dev/null
		fake_requests GPU0 | jq -r .raw | base64 -d >"$BATS_TEST_TMPDIR/sent"
		# Owned: messages (when condensed), stream, options.num_ctx.
		python3 - "$BATS_TEST_TMPDIR/in" "$BATS_TEST_TMPDIR/sent" "$flags" <<'PY'
import sys
a, b, flags = open(sys.argv[1]).read().rstrip("\n"), open(sys.argv[2]).read(), sys.argv[3]
want = a.replace('"temperature":0.50}', '"temperature":0.50,"num_ctx":8192}').replace('"stream" :false', '"stream" :true')
if flags:
    s, e = want.index('"messages": [') + 12, want.index("\n ] ,") + 3
    bs, be = b.index('"messages": [') + 12, b.index(' ,\n "model"')
    assert "condensed by llm-route" in b[bs:be], "not condensed"
    want, b = want[:s] + "M" + want[e:], b[:bs] + "M" + b[be:]
if b != want:
    sys.exit("sent:\n%s\nwanted:\n%s" % (b[-400:], want[-400:]))
PY
	done
}

@test "a raw control byte in a string: status 3, nothing on stdout, nothing asked" {
	printf '{"messages":[{"role":"user","content":"a\000b"}]}' >"$BATS_TEST_TMPDIR/nul"
	run --separate-stderr llm-route <"$BATS_TEST_TMPDIR/nul"
	assert_fails 3 '^llm-route: bad input: invalid JSON: raw control byte 0x00 in a string at byte 41 \(line 1, column 41\)$'
	assert_equal "$(fake_requests GPU0 --all | wc -l)" 0
}
