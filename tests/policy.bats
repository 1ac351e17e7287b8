#!/usr/bin/env bats
# The cost policy (llm-route --policy cost, llm-serve's the same): what
# each candidate is predicted to cost and what is picked, in constructed
# cases; the speeds measured and remembered; the thresholds' band B
# map-reduced when the cache holds its summaries.
#
# The fakes answer with modelled durations at their notional speeds
# (prefill 5000 tokens/s, decode 100), which is what the speeds are
# learned from; each test has a cache of its own.

load lib/common
load lib/serve

SRC=$CORPUS/mini-swe-agent__django__django-12125.json
B=$CORPUS/swe-agent__warmup.json	# ~4800 tokens: band B

setup_file() {
	fake_start GPU0
	fake_start GPU1
	jq -c '.messages |= .[:60]' "$SRC" >"$BATS_FILE_TMPDIR/t60.json"	# ~17K tokens
	jq -c '.messages |= .[:62]' "$SRC" >"$BATS_FILE_TMPDIR/t62.json"
	jq -c '.messages |= .[:20]' "$SRC" >"$BATS_FILE_TMPDIR/t20.json"
}

teardown_file() {
	fake_stop_all
}

teardown() {
	serve_stop || true
}

setup() {
	fake_reset_all
	export LLM_GPU0_URL=$GPU0_URL LLM_GPU1_URL=$GPU1_URL
	export XDG_CACHE_HOME=$BATS_TEST_TMPDIR/cache XDG_CONFIG_HOME=$BATS_TEST_TMPDIR/config
	T60=$BATS_FILE_TMPDIR/t60.json T62=$BATS_FILE_TMPDIR/t62.json T20=$BATS_FILE_TMPDIR/t20.json
}

# picked LOG: the strategy of the policy line of a --log-json stderr
picked() { grep '^{' <<<"$1" | jq -r 'select(.event == "policy") | .strategy'; }
# candidate LOG NAME KEY
candidate() { grep '^{' <<<"$1" | jq -r --arg n "$2" --arg k "$3" 'select(.event == "candidate" and .strategy == $n) | .[$k]'; }
# logged LOG FILTER: is FILTER true of a JSON line of LOG?
logged() { grep '^{' <<<"$1" | jq -es "any(.[]; $2)" >/dev/null; }

@test "--explain: the candidates, their predicted times, and each server's speeds" {
	run --separate-stderr llm-route --policy cost --explain --num-ctx 32768 <"$T60"
	assert_success
	assert_equal "$(jq -c '[.policy, (.candidates | map(.strategy)), (.candidates | map(.fits))]' <<<"$output")" \
		'["cost",["direct","summarize","mapreduce"],[true,false,true]]'
	# Nothing measured yet: the configured speeds, and no request at all.
	assert_equal "$(jq -c '[.gpu0.prefill_tps, .gpu0.decode_tps, .gpu0.speeds_from, .gpu1.prefill_tps]' <<<"$output")" \
		'[2000,50,"configuration",600]'
	assert_equal "$(fake_count GPU0)" 0
	assert_equal "$(fake_count GPU1)" 0
	# direct: all its prompt is prefilled, at 2000 tokens/s.
	jq -e '.candidates[0] | .gpu0_prefill == .gpu0_tokens and (.predicted_ms - .gpu0_prefill / 2 | fabs) < 1' <<<"$output" >/dev/null ||
		fail "$output"
	# mapreduce: every chunk summary still to be made, on GPU1.
	jq -e '.candidates[2] | .helper_requests > 3 and .helper_tokens > 10000' <<<"$output" >/dev/null || fail "$output"
	assert_equal "$(llm-route --explain <"$T60" | jq -c '[.policy, has("candidates"), .strategy]')" '["thresholds",false,"mapreduce"]'
	LLM_ROUTE_POLICY=cost run llm-route --explain --num-ctx 32768 <"$T60"
	assert_equal "$(jq -r '.policy + " " + .strategy' <<<"$output")" "cost direct"
}

@test "fits, and direct is cheaper: GPU0's prompt cache holds all but the new turn" {
	llm-route --policy cost --num-ctx 32768 <"$T60" >/dev/null
	run --separate-stderr llm-route --policy cost --num-ctx 32768 --log-json <"$T62"
	assert_success
	assert_equal "$(picked "$stderr")" direct
	# Only the two new messages are left to prefill: C could not win,
	# and is not even tried.
	(( $(candidate "$stderr" direct gpu0_prefill) < 1500 )) || fail "$stderr"
	assert_equal "$(candidate "$stderr" mapreduce fits)" skipped
	assert_equal "$(fake_requests GPU0 | tail -n 1 | jq '.body.messages | length')" 62
	assert_equal "$(fake_count GPU1)" 0
	# The measured speeds are remembered: what the first answer taught.
	run llm-route --policy cost --explain --num-ctx 32768 <"$T62"
	assert_equal "$(jq -c '[.gpu0.speeds_from, .gpu0.speed_answers >= 1, .gpu0.decode_tps]' <<<"$output")" '["measured",true,100]'
}

@test "fits, but condensed is cheaper: GPU0's cache was lost and the cache holds the summaries" {
	llm-mapreduce <"$T60" >/dev/null	# every summary C needs, into the cache
	llm-route --policy cost --num-ctx 32768 <"$T20" >/dev/null	# GPU0's last prompt: another
	n1=$(fake_count GPU1)
	run --separate-stderr llm-route --policy cost --num-ctx 32768 --log-json <"$T60"
	assert_success
	assert_equal "$(picked "$stderr")" mapreduce
	assert_equal "$(candidate "$stderr" mapreduce helper_requests)" 0
	assert_equal "$(candidate "$stderr" direct fits)" yes
	assert_equal "$(fake_count GPU1)" "$n1"	# no helper request
	assert_equal "$(fake_requests GPU0 | tail -n 1 | jq -r '.body.messages[2].content | split("\n")[0]')" \
		"--- Earlier conversation, condensed by llm-route: summaries, oldest first ---"
	# The same chat just sent direct instead: direct keeps GPU0's cache.
	llm-route --num-ctx 32768 --a-max 100000 --b-max 100000 <"$T60" >/dev/null
	run --separate-stderr llm-route --policy cost --num-ctx 32768 --log-json <"$T60"
	assert_equal "$(picked "$stderr")" direct
	# The measured time to the first token is logged beside the prediction.
	logged "$stderr" '.event == "first_token" and .strategy == "direct" and .predicted_ms >= 0 and .measured_ms > 0' ||
		fail "$stderr"
}

@test "does not fit: direct is left out, and what is sent fits" {
	run --separate-stderr llm-route --policy cost --num-ctx 16384 --log-json <"$T60"
	assert_success
	assert_equal "$(candidate "$stderr" direct fits)" no
	assert_equal "$(picked "$stderr")" mapreduce
	assert_equal "$(fake_requests GPU0 | jq -s 'map(select(.truncated)) | length')" 0
	# None fits as it is: condensed harder, as the thresholds would.
	run --separate-stderr llm-route --policy cost --num-ctx 8192 --log-json <"$T60"
	assert_success
	assert_equal "$(picked "$stderr")" none
	[[ $stderr == *"condensing harder"* ]] || fail "$stderr"
	assert_equal "$(fake_requests GPU0 | jq -s 'map(select(.truncated)) | length')" 0
	(( $(fake_requests GPU0 | tail -n 1 | jq .prompt_tokens) < 8192 ))
	# Not even the bone fits: refused before any work.
	run --separate-stderr llm-route --policy cost --num-ctx 300 <"$T60"
	assert_equal "$status" 3
	[[ ${stderr_lines[0]} == *"even condensed, more than GPU0's context of 300 tokens"* ]] || fail "$stderr"
	assert_equal "$output" ""
}

@test "helper down: condensing costs no helper time (extractive), or is left out" {
	export LLM_GPU1_URL=http://127.0.0.1:1	# a closed port
	run --separate-stderr llm-route --policy cost --num-ctx 16384 --log-json <"$T60"
	assert_success
	assert_equal "$(picked "$stderr")" mapreduce
	assert_equal "$(candidate "$stderr" mapreduce helper_requests)" 0
	assert_equal "$(fake_requests GPU0 | jq -s 'map(select(.truncated)) | length')" 0
	# With --on-helper-failure=direct, B and C would send it unchanged:
	# nothing fits, and it is refused as before.
	run --separate-stderr llm-route --policy cost --num-ctx 16384 --on-helper-failure=direct --log-json <"$T60"
	assert_equal "$(candidate "$stderr" mapreduce fits)" no
	assert_equal "$(picked "$stderr")" none
}

@test "thresholds: a band-B chat whose summaries are all cached is map-reduced, asking GPU1 nothing" {
	run --separate-stderr llm-route --log-json --chunk-tokens 1000 <"$B"
	assert_success
	logged "$stderr" '.event == "first_token" and .strategy == "summarize"' || fail "$stderr"
	llm-mapreduce --chunk-tokens 1000 <"$B" >/dev/null
	n1=$(fake_count GPU1)
	run --separate-stderr llm-route --log-json --chunk-tokens 1000 <"$B"
	assert_success
	logged "$stderr" '.event == "band" and .strategy == "mapreduce" and .was == "summarize"' || fail "$stderr"
	assert_output "$(llm-mapreduce --chunk-tokens 1000 <"$B" | llm-generate)"
	assert_equal "$(fake_count GPU1)" "$n1"
}

@test "policy settings: flag, variable, config file; bad values are usage errors" {
	echo 'policy = cost' >"$BATS_TEST_TMPDIR/config.conf"
	LLM_ROUTE_CONFIG=$BATS_TEST_TMPDIR/config.conf run llm-route --print-config
	assert_line "policy = cost	# $BATS_TEST_TMPDIR/config.conf:1"
	run llm-route --print-config --policy thresholds --set gpu1_decode_tps=12.5
	assert_line "policy = thresholds	# --policy"
	assert_line "gpu1_decode_tps = 12.5	# --set"
	run --separate-stderr llm-route --policy fastest </dev/null
	assert_equal "$status" 2
	assert_equal "${stderr_lines[0]}" "llm-route: --policy: bad value 'fastest' for policy: not 'thresholds' or 'cost'"
	run --separate-stderr llm-serve --set serve_prepare=120
	assert_equal "$status" 2
	[[ $stderr == *"serve_prepare: not a number from 0 to 100"* ]] || fail "$stderr"
}

no_jobs() { ! pgrep -P "$SERVE_PID" >/dev/null; }

@test "llm-serve --policy cost: a chat answered direct is prepared from serve_prepare percent of GPU0's window" {
	serve_start --policy cost --num-ctx 32768
	curl -sS --fail --data-binary @"$T60" "$SERVE_URL/api/chat" >/dev/null
	assert_equal "$(fake_requests GPU0 | tail -n 1 | jq '.body.messages | length')" 60	# direct
	# 17K tokens, past half of 32768: the next turn's chunks are summarized.
	wait_for metric_at_least llm_serve_prefetch_chunks_total 1
	wait_for no_jobs
	# The speeds the jobs measured, in /metrics.
	metric_at_least 'llm_serve_speed_answers{role="GPU0",model="qwen2.5-coder:7b"}' 1
	assert_equal "$(metric 'llm_serve_decode_tokens_per_second{role="GPU0",model="qwen2.5-coder:7b"}')" 100
	# The next turn, where it no longer fits: map-reduced from the cache.
	fake_reset GPU1
	run --separate-stderr llm-route --policy cost --num-ctx 16384 --log-json <"$T62"
	assert_success
	assert_equal "$(picked "$stderr")" mapreduce
	assert_equal "$(candidate "$stderr" mapreduce helper_requests)" 0
	assert_equal "$(fake_count GPU1)" 0
	serve_stop
	# From 90%, the same chat is not prepared.
	export XDG_CACHE_HOME=$BATS_TEST_TMPDIR/cache2
	serve_start --policy cost --num-ctx 32768 --set serve_prepare=90
	fake_reset GPU1
	curl -sS --fail --data-binary @"$T60" "$SERVE_URL/api/chat" >/dev/null
	wait_for metric_at_least llm_serve_prefetch_jobs_total 1
	wait_for no_jobs
	assert_equal "$(metric llm_serve_prefetch_chunks_total)" 0
	assert_equal "$(fake_count GPU1)" 0
}

@test "llm-serve --policy cost: a chat that no longer fits is answered at once, model-free summaries standing in until the background writes them" {
	serve_start --policy cost --num-ctx 16384 --log-json
	curl -sS --fail --data-binary @"$T60" "$SERVE_URL/api/chat" >"$BATS_TEST_TMPDIR/out"
	[[ $(tail -n 1 "$BATS_TEST_TMPDIR/out" | jq .done) == true ]] || fail "$(cat "$BATS_TEST_TMPDIR/out")"
	assert_equal "$(picked "$(cat "$SERVE_ERR")")" interim
	logged "$(cat "$SERVE_ERR")" '.event == "interim" and .stand_ins > 0' || fail "$(cat "$SERVE_ERR")"
	# GPU0 got the condensed chat, and it fits.
	assert_equal "$(fake_requests GPU0 | tail -n 1 | jq -r '.body.messages[2].content | split("\n")[0]')" \
		"--- Earlier conversation, condensed by llm-route: summaries, oldest first ---"
	assert_equal "$(fake_requests GPU0 | jq -s 'map(select(.truncated)) | length')" 0
	# The background writes the summaries it stood in for ...
	wait_for metric_at_least llm_serve_prefetch_chunks_total 2
	wait_for no_jobs
	(( $(metric llm_serve_prefetch_cancelled_total) == 0 ))
	# ... so that the same chat is now map-reduced from the cache alone.
	: >"$SERVE_ERR"
	fake_reset GPU1
	curl -sS --fail --data-binary @"$T60" "$SERVE_URL/api/chat" >/dev/null
	assert_equal "$(picked "$(cat "$SERVE_ERR")")" mapreduce
	assert_equal "$(candidate "$(cat "$SERVE_ERR")" mapreduce helper_requests)" 0
	# llm-route has no background: no interim candidate.
	run --separate-stderr llm-route --policy cost --num-ctx 16384 --explain <"$T20"
	assert_equal "$(jq -c '[.candidates[].strategy]' <<<"$output")" '["direct","summarize","mapreduce"]'
}
