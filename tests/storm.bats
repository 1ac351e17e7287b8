#!/usr/bin/env bats
# llm-serve under a storm: many clients stream at once, a quarter of them
# leave at random moments.  Every stream that completes is byte for byte
# what llm-route prints for the same chat; every upstream request of a
# client that left is cancelled; nothing is left running.  Under valgrind
# or the sanitizers (which tests/run turns into failures on any report)
# the same test runs with fewer clients.

load lib/common
load lib/serve

setup_file() {
	fake_start GPU0
	fake_start GPU1
}

teardown_file() {
	fake_stop_all
}

teardown() {
	serve_stop || true
}

@test "a storm of streams, a quarter leaving early: the rest exact, the leavers cancelled" {
	local n=200 i d pids=() st
	if instrumented; then
		n=24
	fi
	export XDG_CACHE_HOME=$BATS_TEST_TMPDIR/cache LLM_GPU0_URL=$GPU0_URL LLM_GPU1_URL=$GPU1_URL
	mkdir -p "$BATS_TEST_TMPDIR/in" "$BATS_TEST_TMPDIR/out"
	# One model a client: the fake's prompt cache is per model, so each
	# answer's modelled times do not depend on the order of arrival.
	for ((i = 0; i < n; i++)); do
		jq -nc --arg m "storm-$i" --arg c "client $i asks about the storm" \
			'{model: $m, options: {num_ctx: 8192},
			  messages: [{role: "user", content: $c}]}' >"$BATS_TEST_TMPDIR/in/$i"
	done
	# Streams held in flight for a while, without changing a byte.
	fake_control GPU0 '{"first_byte_delay": 0.2, "stall_after": 3, "stall_seconds": 0.6}'
	serve_start --max-streams 256
	for ((i = 0; i < n; i++)); do
		if ((i % 4 == 0)); then	# leaves after 50 to 700 ms
			d=$(printf '0.%03d' $((50 + RANDOM % 650)))
			curl -sS -N --max-time "$d" --data-binary @"$BATS_TEST_TMPDIR/in/$i" \
				"$SERVE_URL/api/chat" >"$BATS_TEST_TMPDIR/out/$i" 2>/dev/null &
		else
			curl -sS -N --data-binary @"$BATS_TEST_TMPDIR/in/$i" \
				"$SERVE_URL/api/chat" >"$BATS_TEST_TMPDIR/out/$i" 2>&1 &
		fi
		pids[i]=$!
	done
	for ((i = 0; i < n; i++)); do
		st=0
		wait "${pids[i]}" || st=$?
		if ((i % 4 == 0)); then
			# curl's 28: it gave up, mid-answer.
			((st == 28)) || fail "client $i ended with $st, not by leaving: $(cat "$BATS_TEST_TMPDIR/out/$i")"
		else
			((st == 0)) || fail "client $i: curl status $st: $(cat "$BATS_TEST_TMPDIR/out/$i")"
		fi
	done
	# Nothing left running: no job, no stream in flight.
	wait_gone() { ! pgrep -P "$SERVE_PID" >/dev/null; }
	for ((i = 0; i < 200; i++)); do wait_gone && break; sleep 0.05; done
	wait_gone || fail "jobs still running: $(pgrep -P "$SERVE_PID" | wc -l)"
	assert_equal "$(curl -sS "$SERVE_URL/metrics" | awk '$1 == "llm_serve_streams_in_flight" { print $2 }')" 0
	assert_equal "$(curl -sS "$SERVE_URL/metrics" | awk '$1 == "llm_serve_client_disconnects_total" { print $2 }')" $(((n + 3) / 4))
	# The leavers' upstream requests: none completed.
	run fake_requests GPU0
	leavers=$(jq -r 'select(.completed) | .body.model' <<<"$output" |
		sed -n 's/^storm-//p' | awk '$1 % 4 == 0' | wc -l)
	assert_equal "$leavers" 0
	assert_equal "$(jq -r 'select(.completed) | .body.model' <<<"$output" | wc -l)" $((n - (n + 3) / 4))
	# The others: what llm-route prints, byte for byte, after the first chunk.
	fake_reset GPU0
	for ((i = 1; i < n; i++)); do
		((i % 4 == 0)) && continue
		want=$(llm-route --json <"$BATS_TEST_TMPDIR/in/$i")
		got=$(tail -n +2 "$BATS_TEST_TMPDIR/out/$i")
		[[ $got == "$want" ]] || fail "client $i: $(diff <(echo "$want") <(echo "$got") | head -5)"
	done
	serve_stop
}
