#!/bin/sh
# spans_fdreuse: a traced socket's fd number becomes a file without a
# close(2) the span hooks see (close_range(2) then open(2), which may well
# reuse the socket's struct file at the same address; or dup2(2) onto it),
# and the file's bytes, an HTTP request written and a 500 answer read, must
# not become spans: the kernel's per-connection cache of the fd's struct
# file (tcp_sock_cached) must notice the change.  Oracle: the tool's own
# server counts the requests it answered and its client the answers it
# read; the client spans must equal them exactly and no span may name the
# file's path.  Run twice: with the default hooks (arguments read at exit)
# and with --no-feature task_pt_regs (sys_enter and sys_exit in two halves).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/spans.inc"
require_bpf
tool=$(dirname "$EMBER")/tools/spans_fdreuse
[ -x "$tool" ] || fail "$tool not built (make build-tests)"
ROUNDS=100

for mode in exit two-halves; do
	port=$(free_port)
	if [ $mode = exit ]; then
		start_ember
	else
		start_ember --no-feature task_pt_regs
		grep -q "spans: no task_pt_regs" "$OUT/ember.log" ||
			{ cat "$OUT/ember.log"; fail "the two-halves fallback was not taken"; }
	fi
	cached0=$(span_stat kernel.fd_cached)
	start_bg "$tool" "$port" "$OUT/scratch-$mode" $ROUNDS > "$OUT/tool-$mode.txt" 2>&1
	j=$BG_LAST
	# it prints its counts when done, then lives on until killed (its spans are named while it runs)
	for i in $(seq 1 300); do
		grep -q "^close_range" "$OUT/tool-$mode.txt" && break
		kill -0 $j 2> /dev/null || { cat "$OUT/tool-$mode.txt"; fail "spans_fdreuse failed"; }
		sleep 0.1
	done
	grep -q "^close_range" "$OUT/tool-$mode.txt" || fail "spans_fdreuse did not finish in 30 s"
	ok=$(sed -n 's/^client_ok //p' "$OUT/tool-$mode.txt")
	served=$(sed -n 's/^server_answered //p' "$OUT/tool-$mode.txt")
	same=$(sed -n 's/^fd_same //p' "$OUT/tool-$mode.txt")
	note "$mode: $(tr '\n' ' ' < "$OUT/tool-$mode.txt")"
	[ "$ok" -eq $((ROUNDS * 5)) ] || fail "the client read $ok answers of $((ROUNDS * 5))"
	[ "$served" -eq "$ok" ] || fail "the server answered $served, the client read $ok"
	# the kernel hands out the lowest free fd: nearly every round reuses the
	# socket's number (a round where it did not proves nothing either way)
	[ "$same" -ge $((ROUNDS * 9 / 10)) ] || fail "the file got the socket's fd number in $same rounds of $ROUNDS"

	q="pid=$j&protocol=http"
	# the first flush that names the process can take a few seconds on a loaded host
	for i in $(seq 1 60); do
		[ "$(span_count "$q&role=client")" -gt 0 ] && break
		sleep 1
	done
	client=$(settle "$q&role=client" '[.rows[].count] | add // 0')
	server=$(span_count "$q&role=server")
	spans_json "$q" | jq -c '.rows[] | {role, endpoint, count, statuses}' > "$OUT/rows-$mode.txt"
	cat "$OUT/rows-$mode.txt"
	fake=$(spans_json "$q" | jq -r '[.rows[] | select(.endpoint | test("fake")) | .count] | add // 0')
	cached=$(span_stat kernel.fd_cached)
	note "$mode: client spans $client, server spans $server, spans of the file $fake; fd_cached +$((cached - cached0))"
	[ "$fake" -eq 0 ] || fail "$fake spans from the file's bytes"
	[ "$client" -eq "$ok" ] || fail "client spans $client, answers read $ok"
	[ "$server" -eq "$served" ] || fail "server spans $server, requests answered $served"
	[ $((cached - cached0)) -gt 0 ] || fail "no call took the cached-file path"
	kill $j
	stop_ember
done
exit 0
