#!/bin/sh
# net_redis: redis-server on a random loopback port, redis-benchmark against
# it.  Oracle: redis's own INFO stats (total_connections_received,
# total_net_input_bytes, total_net_output_bytes), read once at the end; Ember
# ran before redis got its first client, so its totals for the redis service
# must equal redis's within 1% (connections exactly).  The INFO reply itself
# is not in redis's output count yet when INFO is generated; the 1000-byte
# values make it negligible.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib/net.sh"
require_net
command -v redis-server > /dev/null || fail "redis-server not installed (scripts/setup-deps.sh)"
command -v redis-benchmark > /dev/null || fail "redis-benchmark not installed (redis-tools)"

case "$OUT" in /*) dir=$OUT ;; *) dir=$(pwd)/$OUT ;; esac
port=$(free_port)
svc="redis-test-$$"
cat > "$dir/redis.conf" <<CONF
bind 127.0.0.1
port $port
dir $dir
save ""
appendonly no
daemonize no
logfile $dir/redis.log
CONF

# redis rewrites its environment (process title): name it by executable
# (redis-server is a link to redis-check-rdb)
echo "$(readlink -f "$(command -v redis-server)") = $svc" > "$dir/services"
start_ember --services "$dir/services"
start_bg redis-server "$dir/redis.conf"
redis=$BG_LAST
for _ in $(seq 1 50); do
	ss -Htln "sport = :$port" | grep -q . && break
	sleep 0.1
done
ss -Htln "sport = :$port" | grep -q . || { cat "$dir/redis.log"; fail "redis does not listen on $port"; }
sleep 1 # redis is named before its first client

redis-benchmark -h 127.0.0.1 -p "$port" -n 20000 -c 10 -d 1000 -t set,get -q > "$dir/bench.out" 2>&1 ||
	{ cat "$dir/bench.out"; fail "redis-benchmark failed"; }
redis-cli -h 127.0.0.1 -p "$port" info stats | tr -d '\r' > "$dir/info.txt" || fail "redis-cli info failed"
info() { sed -n "s/^$1://p" "$dir/info.txt"; }
conns=$(info total_connections_received)
in=$(info total_net_input_bytes)
out=$(info total_net_output_bytes)
note "oracle: redis INFO: $conns connections, $in bytes in, $out bytes out"

settle "net?pid=$redis" "$dir/redis.json"
accepts=$(jq '[.peers[] | select(.direction == "in" and .port == '$port')] | map(.accepts) | add // 0' "$dir/redis.json")
recv=$(jq '[.peers[] | select(.direction == "in" and .port == '$port')] | map(.received_bytes) | add // 0' "$dir/redis.json")
sent=$(jq '[.peers[] | select(.direction == "in" and .port == '$port')] | map(.sent_bytes) | add // 0' "$dir/redis.json")
check_eq "redis connections accepted" "$accepts" "$conns"
check "redis bytes received" "$recv" "$in" 1
check "redis bytes sent" "$sent" "$out" 1
peers=$(jq -r '[.peers[] | select(.direction == "in") | .service // "?"] | unique | join(",")' "$dir/redis.json")
note "redis's clients: $peers"
echo "$peers" | grep -q redis-benchmark || fail "redis-benchmark is not among redis's named clients ($peers)"

# the same traffic under the service name (the services file names every
# redis-server on the host so: only our port counts), and the edge into it
settle "net?service=$svc" "$dir/service.json"
total=$(jq '[.peers[] | select(.direction == "in" and .port == '$port')] | map(.received_bytes) | add // 0' "$dir/service.json")
check "service $svc bytes received" "$total" "$in" 1
api topology > "$dir/topology.json" || fail "topology request failed"
jq -e '[.edges[] | select(.from == "redis-benchmark" and .to == "'$svc'")] | length > 0' "$dir/topology.json" > /dev/null ||
	fail "no redis-benchmark -> $svc edge in the topology"
note "topology: $(jq -c '[.edges[] | select(.to == "'$svc'") | {from, to, connects, sent_bytes}]' "$dir/topology.json")"
stop_ember
exit 0
