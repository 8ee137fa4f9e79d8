#!/bin/sh
# net_nginx: nginx serving a file over loopback, ab fetching it without
# keep-alive.  Oracles: nginx's access log ($bytes_sent, $request_length per
# request), its stub_status "accepts" counter, and ab's own counts.  Ember's
# bytes per peer must match them within 1%; its connections must equal
# nginx's accepted connections on both sides (nginx accepted them, ab opened
# them), and with keep-alive off those equal the requests.  The topology has
# the ab -> nginx edge, ab's peer is named by nginx's service.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib/net.sh"
require_net
command -v nginx > /dev/null || [ -x /usr/sbin/nginx ] || fail "nginx not installed (scripts/setup-deps.sh)"
command -v ab > /dev/null || fail "ab not installed (apache2-utils, scripts/setup-deps.sh)"
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
REQUESTS=2000

case "$OUT" in /*) dir=$OUT ;; *) dir=$(pwd)/$OUT ;; esac
port=$(free_port)
svc="nginx-test-$$"
mkdir -p "$dir/www" "$dir/tmp"
head -c 20000 /dev/urandom > "$dir/www/file.bin"
cat > "$dir/nginx.conf" <<CONF
user root;
daemon off;
worker_processes 2;
pid $dir/nginx.pid;
error_log $dir/nginx-error.log;
events { worker_connections 1024; }
http {
	log_format counts '\$bytes_sent \$request_length';
	access_log $dir/access.log counts;
	client_body_temp_path $dir/tmp/body;
	proxy_temp_path $dir/tmp/proxy;
	fastcgi_temp_path $dir/tmp/fastcgi;
	uwsgi_temp_path $dir/tmp/uwsgi;
	scgi_temp_path $dir/tmp/scgi;
	default_type application/octet-stream;
	server {
		listen 127.0.0.1:$port;
		root $dir/www;
		location = /status { stub_status; access_log off; }
	}
}
CONF

# nginx rewrites its environment (process titles): name it by executable,
# a copy of its own so no other nginx on the host shares the name
cp "$NGINX" "$dir/nginx-test"
echo "$dir/nginx-test = $svc" > "$dir/services"
start_ember --services "$dir/services"
start_bg "$dir/nginx-test" -p "$dir/" -c "$dir/nginx.conf"
for _ in $(seq 1 50); do
	curl -sf -o /dev/null "http://127.0.0.1:$port/file.bin" && break
	sleep 0.1
done
curl -sf -o /dev/null "http://127.0.0.1:$port/file.bin" || { cat "$dir/nginx-error.log"; fail "nginx does not answer on port $port"; }
# nginx's count of accepted connections (this request's included)
accepted() {
	curl -sf "http://127.0.0.1:$port/status" | awk '/^server accepts/ { getline; print $1 }'
}
sleep 1 # nginx logs a request after its response: the probes' lines are in
: > "$dir/access.log" # the oracle counts ab's requests only
sleep 1 # the probes above are drained and named before ab starts
before=$(accepted)

EMBER_SERVICE=ab-test-$$ ab -n $REQUESTS -c 1 "http://127.0.0.1:$port/file.bin" > "$dir/ab.out" 2>&1 &
abpid=$!
wait $abpid || { cat "$dir/ab.out"; fail "ab failed"; }
complete=$(sed -n 's/^Complete requests: *//p' "$dir/ab.out")
failed=$(sed -n 's/^Failed requests: *//p' "$dir/ab.out")
transferred=$(sed -n 's/^Total transferred: *\([0-9]*\) bytes/\1/p' "$dir/ab.out")
[ "$complete" = $REQUESTS ] && [ "$failed" = 0 ] || { cat "$dir/ab.out"; fail "ab: $complete complete, $failed failed"; }
sleep 1 # nginx writes its log lines after the response
total_accepted=$(accepted) # since nginx started: probes, status requests and ab's
conns=$(( total_accepted - before - 1 )) # the second status request is not ab's
log_sent=$(awk '{ s += $1 } END { print s + 0 }' "$dir/access.log")
log_recv=$(awk '{ s += $2 } END { print s + 0 }' "$dir/access.log")
log_lines=$(wc -l < "$dir/access.log")
note "oracle: ab $complete requests, $transferred bytes received; nginx accepted $conns connections, logged $log_lines requests, sent $log_sent, received $log_recv"
[ "$conns" = "$log_lines" ] || fail "nginx accepted $conns connections for $log_lines requests without keep-alive"

# nginx's side: the peers "ab -> :port": named ab-test-PID, or "ab" for
# the connections made before the agent read ab (the name it had then);
# curl's probes are other peers
settle "net?service=$svc" "$dir/nginx.json"
sel='[.peers[] | select(.direction == "in" and .port == '$port' and (.service | startswith("ab")))]'
accepts=$(jq "$sel | map(.accepts) | add // 0" "$dir/nginx.json")
closes=$(jq "$sel | map(.closes) | add // 0" "$dir/nginx.json")
sent=$(jq "$sel | map(.sent_bytes) | add // 0" "$dir/nginx.json")
recv=$(jq "$sel | map(.received_bytes) | add // 0" "$dir/nginx.json")
# every accepted connection, whoever the peer: nginx's own total
all_accepts=$(jq "[.peers[] | select(.direction == \"in\" and .port == $port)] | map(.accepts) | add // 0" "$dir/nginx.json")
check_eq "nginx accepted connections, all peers" "$all_accepts" "$total_accepted"
# ab's peer: its first connections (up to ~1 s of them) can come before the
# agent has read ab, and are counted under the name it had then ("unknown"
# or "ab"); the total above is exact
check "nginx accepted connections from ab" "$accepts" "$conns" 5
check "nginx closed connections from ab" "$closes" "$conns" 5
check "nginx bytes sent" "$sent" "$log_sent" 1
check "nginx bytes received" "$recv" "$log_recv" 1

# ab's side: the peer 127.0.0.1:port, named by nginx's service
settle "net?pid=$abpid" "$dir/ab.json"
sel='[.peers[] | select(.direction == "out" and .port == '$port')]'
connects=$(jq "$sel | map(.connects) | add // 0" "$dir/ab.json")
recv=$(jq "$sel | map(.received_bytes) | add // 0" "$dir/ab.json")
sent=$(jq "$sel | map(.sent_bytes) | add // 0" "$dir/ab.json")
named=$(jq -r "$sel | map(.service) | unique | join(\",\")" "$dir/ab.json")
closes=$(jq "$sel | map(.closes) | add // 0" "$dir/ab.json")
check_eq "ab opened connections" "$connects" "$conns"
check_eq "ab closed connections" "$closes" "$conns"
check "ab bytes received" "$recv" "$transferred" 1
check "ab bytes sent" "$sent" "$log_recv" 1
[ "$named" = "$svc" ] || fail "ab's peer is named '$named', expected the local service $svc"
note "ab's peer is the local service $named"

# who calls whom
api "topology" > "$dir/topology.json" || fail "topology request failed"
# ab's first connections can come before the agent read ab (an earlier
# name, as above): its edges into nginx together carry every connection
edge=$(jq -c "[.edges[] | select(.to == \"$svc\" and (.from | startswith(\"ab\"))) | .connects] | add // 0" "$dir/topology.json")
jq -c '.edges[] | select(.to == "'$svc'")' "$dir/topology.json" > "$dir/edges.json"
check "ab's edges into $svc, connections" "$edge" "$conns" 5
note "topology: $(jq -c "[.edges[] | select(.to == \"$svc\") | {from, to, connects}]" "$dir/topology.json")"
stop_ember
exit 0
