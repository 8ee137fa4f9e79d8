#!/bin/sh
# net_resets: a connect to a closed port, and a server that closes a
# connection with unread data.  Oracles: what the programs themselves saw
# (connect refused; read failed with ECONNRESET).  Ember must count each
# once: the refused connect as one connect failure and one reset received
# by the client; the abort as one reset sent by the server and one reset
# received by its client.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib/net.sh"
require_net
case "$OUT" in /*) dir=$OUT ;; *) dir=$(pwd)/$OUT ;; esac

start_ember
sleep 1
closed=$(free_port)
"$NET_PUMP" refused 127.0.0.1 "$closed" > "$dir/refused.out" 2>&1 &
refuser=$!
wait $refuser || fail "$(cat "$dir/refused.out")"
grep -q '^refused$' "$dir/refused.out" || fail "the connect was not refused"

port=$(free_port)
"$NET_PUMP" abort-server 127.0.0.1 "$port" > "$dir/server.out" 2>&1 &
server=$!
BG_PIDS="$BG_PIDS $server"
for _ in $(seq 1 50); do grep -q listening "$dir/server.out" && break; sleep 0.1; done
"$NET_PUMP" abort-client 127.0.0.1 "$port" > "$dir/client.out" 2>&1 &
client=$!
wait $client || fail "client: $(cat "$dir/client.out")"
wait $server || fail "server: $(cat "$dir/server.out")"
grep -q '^reset$' "$dir/client.out" || fail "the client saw no reset"
note "oracle: 1 refused connect (pid $refuser), 1 connection reset by its server (pids $server -> $client)"

field() { # field FILE JQ-SELECTOR NAME
	jq "[$2] | map(.$3) | add // 0" "$1"
}
settle "net?pid=$refuser" "$dir/refuser.json"
sel='.peers[] | select(.direction == "out" and .port == '$closed')'
check_eq "refused: connect failures" "$(field "$dir/refuser.json" "$sel" connect_failures)" 1
check_eq "refused: resets received" "$(field "$dir/refuser.json" "$sel" resets_received)" 1
check_eq "refused: connections established" "$(field "$dir/refuser.json" "$sel" closes)" 0

settle "net?pid=$server" "$dir/server.json"
sel='.peers[] | select(.direction == "in" and .port == '$port')'
check_eq "abort: server resets sent" "$(field "$dir/server.json" "$sel" resets_sent)" 1
check_eq "abort: server resets received" "$(field "$dir/server.json" "$sel" resets_received)" 0
check_eq "abort: server accepts" "$(field "$dir/server.json" "$sel" accepts)" 1

settle "net?pid=$client" "$dir/client.json"
sel='.peers[] | select(.direction == "out" and .port == '$port')'
check_eq "abort: client resets received" "$(field "$dir/client.json" "$sel" resets_received)" 1
check_eq "abort: client resets sent" "$(field "$dir/client.json" "$sel" resets_sent)" 0
check_eq "abort: client connects" "$(field "$dir/client.json" "$sel" connects)" 1
check_eq "abort: client connect failures" "$(field "$dir/client.json" "$sel" connect_failures)" 0
stop_ember
exit 0
