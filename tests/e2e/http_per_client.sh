#!/bin/sh
# http_per_client: one client (127.0.0.3) opening 40 connections holds at
# most the per-client limit (16); the rest, and its further connections,
# are closed at once, while another client (127.0.0.2, another loopback
# source address) is served.  The server's refusal counter agrees with what
# the client saw, and the client is served again once it lets go.
. "$(dirname "$0")/lib.sh"

http_test_db per_client
tools=$TOOLS
db=$DB
start_serve_db "$db"
limit=$(sed -n 's/.*max_per_client=\([0-9]*\).*/\1/p' "$OUT/serve.err")
[ "$limit" = 16 ] || fail "default per-client limit is '$limit', expected 16"

"$tools/http_clients" slow "$SERVE_PORT" 40 --sources 3 --trickle-ms 0 --seconds 4 > "$OUT/hold.out" &
hold=$!
BG_PIDS="$BG_PIDS $hold"
for i in $(seq 1 100); do grep -q '^ready' "$OUT/hold.out" && break; sleep 0.1; done
grep -q '^ready' "$OUT/hold.out" || fail "the holding client did not get going"
note "client 127.0.0.3: $(grep '^ready' "$OUT/hold.out")"
[ "$(kv "$OUT/hold.out" open)" = 16 ] || fail "127.0.0.3 holds $(kv "$OUT/hold.out" open) connections, limit 16"

req='GET /api/targets HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n'
got=$(printf '%b' "$req" | "$tools/http_clients" raw "$SERVE_PORT" --source 127.0.0.3)
[ "$got" = closed ] || fail "a 17th connection from 127.0.0.3 got '$got', expected to be closed"
got=$(printf '%b' "$req" | "$tools/http_clients" raw "$SERVE_PORT" --source 127.0.0.2)
[ "$got" = 200 ] || fail "another client (127.0.0.2) got '$got' while 127.0.0.3 is at its limit"

curl -sf "http://127.0.0.1:$SERVE_PORT/api/stats" > "$OUT/stats.json" || fail "no stats"
refused=$(json_num "$OUT/stats.json" refused_per_client)
seen=$(( $(kv "$OUT/hold.out" closed) + 1 ))
note "refused per client: server $refused, client saw $seen"
[ "$refused" = "$seen" ] || fail "the server counted $refused refusals, the client saw $seen"

wait $hold # lets go of its 16 connections
sleep 0.5
got=$(printf '%b' "$req" | "$tools/http_clients" raw "$SERVE_PORT" --source 127.0.0.3)
[ "$got" = 200 ] || fail "127.0.0.3 is not served after closing its connections (got '$got')"
exit 0
