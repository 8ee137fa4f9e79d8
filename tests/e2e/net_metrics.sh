#!/bin/sh
# net_metrics: GET /metrics passes `promtool check metrics` (Debian's
# prometheus package), bounds its labels, and a real Prometheus server
# scrapes it.  A client (service fan-PID) sends known byte counts to five
# local servers while Ember runs with --net-top-peers 2: its sent-bytes
# series must name at most 2 peers plus peer="other", and add up to exactly
# what the client sent (its own count); each server is a service of its own.  The agent's health families must be
# there, and the L7 span families (a request of the test's curl).  Then Prometheus, started by the test on a random port with its
# own storage under $TEST_OUT, scrapes Ember and answers a query with the
# same total.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib/net.sh"
require_net
command -v promtool > /dev/null || fail "promtool not installed (prometheus, scripts/setup-deps.sh)"
case "$OUT" in /*) dir=$OUT ;; *) dir=$(pwd)/$OUT ;; esac
BYTES=100000

start_ember --net-top-peers 2
ports=""
for i in 1 2 3 4 5; do
	p=$(free_port)
	start_bg env EMBER_SERVICE="sink$i-$$" "$NET_PUMP" sink 127.0.0.1 "$p" > "$dir/sink$i.out"
	ports="$ports${ports:+,}$p"
done
for i in 1 2 3 4 5; do
	for _ in $(seq 1 50); do grep -q listening "$dir/sink$i.out" && break; sleep 0.1; done
done
# an HTTP request for the span families: curl's side is a client span
spans=$(curl -sf "${URL}api/stats" | jq -r '.agent.spans != null')
svc="fan-$$"
EMBER_SERVICE=$svc "$NET_PUMP" fanout 127.0.0.1 "$ports" $BYTES 3000 || fail "fanout failed"
expected=$((5 * BYTES))
sleep 3

curl -sf "${URL}metrics" > "$dir/metrics.txt" || fail "GET /metrics failed"
curl -sfI "${URL}metrics" | grep -qi '^content-type: text/plain; version=0.0.4' ||
	fail "/metrics has not the Prometheus text content type"
promtool check metrics < "$dir/metrics.txt" > "$dir/promtool.out" 2>&1 ||
	{ cat "$dir/promtool.out"; fail "promtool check metrics rejected /metrics"; }
note "promtool check metrics: ok ($(grep -c '^ember_' "$dir/metrics.txt") samples, $(grep -c '^# TYPE' "$dir/metrics.txt") families)"
for f in ember_agent_samples_total ember_agent_unwind_total ember_agent_bpf_map_entries \
	ember_agent_cpu_seconds_total ember_agent_resident_memory_bytes ember_store_size_bytes \
	ember_tcp_sent_bytes_total ember_tcp_rtt_seconds_bucket ember_tcp_connects_total; do
	grep -q "^$f" "$dir/metrics.txt" || fail "no $f in /metrics"
done
if [ "$spans" = true ]; then # L7 spans loaded: their families too (the curl above)
	for f in 'ember_requests_total{service="curl",protocol="http",role="client",endpoint="GET /api/stats"' \
		ember_request_duration_seconds_bucket ember_request_duration_seconds_count; do
		grep -qF "$f" "$dir/metrics.txt" || fail "no $f in /metrics"
	done
fi

series=$(grep "^ember_tcp_sent_bytes_total{service=\"$svc\"" "$dir/metrics.txt")
echo "$series" > "$dir/fan.txt"
labels=$(echo "$series" | sed -n 's/.*peer="\([^"]*\)".*/\1/p' | sort -u | tr '\n' ' ')
named=$(echo "$series" | grep -vc 'peer="other"')
total=$(echo "$series" | awk '{ s += $NF } END { print s + 0 }')
note "series of $svc: peers $labels"
[ "$named" -le 2 ] || fail "$named named peers with --net-top-peers 2: $labels"
echo "$series" | grep -q 'peer="other"' || fail "5 peers, top 2, and no peer=\"other\""
check_eq "bytes sent over all peer labels" "$total" "$expected"

# a real Prometheus scrapes it
command -v prometheus > /dev/null || { stop_ember; note "no prometheus server: scrape not tested"; exit 0; }
pport=$(free_port)
hostport=${URL#http://}
hostport=${hostport%/}
cat > "$dir/prometheus.yml" <<CONF
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: ember
    static_configs:
      - targets: ['$hostport']
CONF
start_bg prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/tsdb" \
	--web.listen-address="127.0.0.1:$pport" > "$dir/prometheus.log" 2>&1
q="sum(ember_tcp_sent_bytes_total{service=\"$svc\"})"
value=""
for _ in $(seq 1 60); do
	sleep 1
	value=$(curl -sf -G "http://127.0.0.1:$pport/api/v1/query" --data-urlencode "query=$q" |
		jq -r '.data.result[0].value[1] // empty' 2> /dev/null)
	[ -n "$value" ] && break
done
[ -n "$value" ] || { tail -5 "$dir/prometheus.log"; fail "Prometheus never answered $q"; }
health=$(curl -sf "http://127.0.0.1:$pport/api/v1/targets" | jq -r '.data.activeTargets[0].health')
[ "$health" = up ] || fail "Prometheus says the ember target is $health"
check_eq "Prometheus: $q" "$value" "$expected"
stop_ember
exit 0
