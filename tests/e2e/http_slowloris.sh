#!/bin/sh
# http_slowloris: 200 connections that trickle one header byte a second
# (which restarts libmicrohttpd's own idle timeout every time) must not
# lock the server out (tests/tools/serve_db over a small database, no BPF).
#
# 1. Default limits: the 200 come from 20 loopback addresses (10 each, under
#    the per-client limit).  Another client's flame graph and page are still
#    answered (within 5 s, a generous bound); every slow connection is
#    closed by the server at its whole-request deadline (10 s), not before
#    and not much after; the server's counter of deadline closes agrees with
#    the client's count.
# 2. A table of 100 connections: the 200 do not fit.  The longest-waiting
#    ones are evicted to make room, another client is still answered, and
#    the server's eviction counter agrees with the connections the client
#    saw closed early.
. "$(dirname "$0")/lib.sh"

http_test_db slow
tools=$TOOLS
db=$DB

# wait_ready FILE: until the slow clients say every connection is established
wait_ready() {
	for _i in $(seq 1 100); do
		grep -q '^ready' "$1" && return 0
		sleep 0.1
	done
	cat "$1"
	fail "the slow clients did not get going"
}

# slow_clients NAME [serve_db options]: start a server, then 200 connections
# trickling a byte a second from 127.0.0.10-29 into $OUT/NAME.out (pid $slow)
slow_clients() {
	_name=$1; shift
	start_serve_db "$db" "$@"
	"$tools/http_clients" slow "$SERVE_PORT" 200 --sources 10-29 --trickle-ms 1000 \
		--seconds 25 --early-s 9 > "$OUT/$_name.out" &
	slow=$!
	BG_PIDS="$BG_PIDS $slow"
	wait_ready "$OUT/$_name.out"
}

# probe NAME PATH: another client (127.0.0.1) must get a 200 within 5 s
probe() {
	code=$(curl -s -m 5 -o "$OUT/$1.body" -w '%{http_code} %{time_total}' "http://127.0.0.1:$SERVE_PORT$2")
	note "$1 while the slow clients hold on: HTTP $code s"
	case "$code" in 200\ *) ;; *) fail "$1 not answered within 5 s (HTTP $code)" ;; esac
}

# ---- 1: default limits, deadline ----
slow_clients slow1
note "slow clients: $(grep '^ready' "$OUT/slow1.out")"
[ "$(kv "$OUT/slow1.out" open)" = 200 ] || fail "not all 200 slow connections were admitted"
probe flamegraph "/api/flamegraph?service=shop"
grep -q '"total":[1-9]' "$OUT/flamegraph.body" || fail "the flame graph is empty"
probe page "/"
wait $slow
note "slow clients: $(tail -n 1 "$OUT/slow1.out")"
curl -sf "http://127.0.0.1:$SERVE_PORT/api/stats" > "$OUT/stats1.json" || fail "no stats"
closed=$(kv "$OUT/slow1.out" closed_by_server)
[ "$closed" = 200 ] || fail "the server closed $closed of the 200 slow connections within 25 s"
[ "$(kv "$OUT/slow1.out" closed_early)" = 0 ] || fail "slow connections closed before the deadline"
[ "$(kv "$OUT/slow1.out" answered)" = 0 ] || fail "a slow connection got a response"
max=$(kv "$OUT/slow1.out" max_life_s)
awk -v m="$max" 'BEGIN { exit !(m <= 13) }' || fail "a slow connection lived ${max} s, deadline 10 s"
counted=$(json_num "$OUT/stats1.json" closed_request_deadline)
[ "$counted" = 200 ] || fail "the server counted $counted deadline closes, the client saw 200"
kill "$SERVE_PID"; wait "$SERVE_PID" 2> /dev/null

# ---- 2: a full table evicts the longest-waiting connections ----
slow_clients slow2 --max-connections 100
note "slow clients with 100 connections allowed: $(grep '^ready' "$OUT/slow2.out")"
[ "$(kv "$OUT/slow2.out" open)" = 100 ] || fail "expected 100 slow connections to remain open"
probe flamegraph2 "/api/flamegraph?service=shop"
probe page2 "/"
wait $slow
note "slow clients: $(tail -n 1 "$OUT/slow2.out")"
curl -sf "http://127.0.0.1:$SERVE_PORT/api/stats" > "$OUT/stats2.json" || fail "no stats"
early=$(kv "$OUT/slow2.out" closed_early)
evicted=$(json_num "$OUT/stats2.json" evicted)
note "evicted: server $evicted, client saw $early closed early"
[ "$early" -ge 100 ] || fail "only $early slow connections were evicted"
[ "$evicted" = "$early" ] || fail "the server counted $evicted evictions, the client saw $early"
[ "$(kv "$OUT/slow2.out" closed_by_server)" = 200 ] || fail "not every slow connection was closed"
[ "$(json_num "$OUT/stats2.json" refused_full)" = 0 ] || fail "connections refused instead of evicting"
exit 0
