#!/bin/sh
# net_pressure: more connections than the kernel maps hold.  Ember runs with
# 1024-entry socket and counter maps while 3000 connections (6000 sockets)
# open, each sends a byte, and all stay open 3 s.  Nothing may block: the
# clients finish in time, the API keeps answering, the overflow counters
# rise, the maps' kernel memory stays what it was at start, the agent's
# resident memory stays bounded, and once the burst is over a new
# connection is counted exactly again.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib/net.sh"
require_net
case "$OUT" in /*) dir=$OUT ;; *) dir=$(pwd)/$OUT ;; esac
CONNS=3000

start_ember --net-map-sockets 1024 --net-map-counts 1024
sleep 1
api stats > "$dir/stats0.json" || fail "stats request failed"
mem0=$(jq '.agent.net.map_bytes' "$dir/stats0.json")
rss0=$(awk '/^VmRSS/ { print $2 }' "/proc/$EMBER_PID/status")

port=$(free_port)
start_bg "$NET_PUMP" sink 127.0.0.1 "$port" > "$dir/sink.out"
for _ in $(seq 1 50); do grep -q listening "$dir/sink.out" && break; sleep 0.1; done
t0=$(date +%s)
timeout 60 "$NET_PUMP" many 127.0.0.1 "$port" $CONNS 3000 > "$dir/many.out" 2>&1 ||
	fail "the clients did not finish: $(cat "$dir/many.out")"
t1=$(date +%s)
grep -q "^opened $CONNS\$" "$dir/many.out" || fail "$(cat "$dir/many.out")"
note "$CONNS connections opened, held and closed in $((t1 - t0)) s"
[ $((t1 - t0)) -le 20 ] || fail "the burst took $((t1 - t0)) s: something blocked"

sleep 3
api stats > "$dir/stats1.json" || fail "the API stopped answering under pressure"
socks_full=$(jq '.agent.net.bpf.socks_full' "$dir/stats1.json")
counts_full=$(jq '.agent.net.bpf.counts_full' "$dir/stats1.json")
mem1=$(jq '.agent.net.map_bytes' "$dir/stats1.json")
rss1=$(awk '/^VmRSS/ { print $2 }' "/proc/$EMBER_PID/status")
note "overflow: socks_full $socks_full, counts_full $counts_full; map memory $mem0 -> $mem1 bytes; agent RSS $rss0 -> $rss1 KiB"
[ "$socks_full" -gt 0 ] || fail "6000 sockets in a 1024-entry map and socks_full is 0"
[ "$counts_full" -gt 0 ] || fail "6000 connections in a 1024-entry map and counts_full is 0"
[ "$mem1" = "$mem0" ] || fail "the maps' kernel memory changed: $mem0 -> $mem1"
[ "$rss1" -le $((rss0 + 65536)) ] || fail "agent RSS grew by more than 64 MiB: $rss0 -> $rss1 KiB"

# after the burst: a connection is counted exactly again
"$NET_PUMP" send 127.0.0.1 "$port" 1 1000000 > "$dir/send.out" 2>&1 &
sender=$!
wait $sender || fail "$(cat "$dir/send.out")"
sent=$(sed -n 's/^sent //p' "$dir/send.out")
settle "net?pid=$sender" "$dir/after.json"
ember_sent=$(jq '[.peers[] | select(.port == '$port')] | map(.sent_bytes) | add // 0' "$dir/after.json")
check_eq "bytes of a connection after the burst" "$ember_sent" "$sent"
stop_ember
exit 0
