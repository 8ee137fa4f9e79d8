#!/bin/sh
# spans_nginx: HTTP server spans of nginx under ab, a 200/404 mix, with and
# without keep-alive, bodies sent by sendfile(2).  The oracle is ab's own
# count: the worker's spans per status and ab's client spans must equal
# "Complete requests" and "Non-2xx responses" within 0.5%.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/spans.inc"
require_bpf
command -v nginx > /dev/null || fail "nginx not installed (scripts/setup-deps.sh installs it)"
command -v ab > /dev/null || fail "ab not installed (Debian package apache2-utils)"

port=$(free_port)
mkdir -p "$OUT/www" "$OUT/tmp"
head -c 3000 /dev/urandom | base64 > "$OUT/www/index.html"
cat > "$OUT/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $OUT/nginx.pid;
error_log $OUT/nginx-error.log;
events { worker_connections 256; }
http {
	access_log off;
	sendfile on;
	keepalive_requests 100000;
	client_body_temp_path $OUT/tmp; proxy_temp_path $OUT/tmp; fastcgi_temp_path $OUT/tmp;
	uwsgi_temp_path $OUT/tmp; scgi_temp_path $OUT/tmp;
	server { listen 127.0.0.1:$port; root $OUT/www; }
}
EOF

start_ember
start_bg nginx -c "$OUT/nginx.conf" -p "$OUT"
for i in $(seq 1 50); do
	curl -s -o /dev/null "http://127.0.0.1:$port/" && break
	sleep 0.1
done
master=$(cat "$OUT/nginx.pid")
worker=$(ps -o pid= --ppid "$master" | tr -d ' ' | head -n 1)
[ -n "$worker" ] || fail "no nginx worker"
note "nginx master $master, worker $worker on port $port"

# the mix: two ab runs at once, one with keep-alive
ab -q -n 3000 -c 4 "http://127.0.0.1:$port/index.html" > "$OUT/ab-200.txt" 2>&1 &
ab200=$!
ab -q -k -n 1500 -c 4 "http://127.0.0.1:$port/missing/42" > "$OUT/ab-404.txt" 2>&1 &
ab404=$!
wait $ab200 || { cat "$OUT/ab-200.txt"; fail "ab failed"; }
wait $ab404 || { cat "$OUT/ab-404.txt"; fail "ab -k failed"; }
ok=$(sed -n 's/^Complete requests: *//p' "$OUT/ab-200.txt")
bad=$(sed -n 's/^Complete requests: *//p' "$OUT/ab-404.txt")
non2xx_a=$(sed -n 's/^Non-2xx responses: *//p' "$OUT/ab-200.txt")
non2xx_b=$(sed -n 's/^Non-2xx responses: *//p' "$OUT/ab-404.txt")
[ -z "$non2xx_a" ] || fail "ab saw $non2xx_a non-2xx answers for index.html"
[ "$non2xx_b" = "$bad" ] || fail "ab saw $non2xx_b non-2xx of $bad for /missing"
note "ab: $ok x 200, $bad x 404"

q="pid=$worker&protocol=http&role=server"
got200=$(settle "$q" '[.rows[].statuses["200"] // 0] | add // 0')
got404=$(spans_json "$q" | jq -r '[.rows[].statuses["404"] // 0] | add // 0')
total=$(spans_json "$q" | jq -r '[.rows[].count] | add // 0')
spans_json "$q" | jq -c '.rows[] | {endpoint, count, statuses, p50_ms, p99_ms}' > "$OUT/server-rows.txt"
cat "$OUT/server-rows.txt"
note "nginx server spans: $got200 x 200, $got404 x 404, $total in all"
within "$got200" "$ok" 0.5 || fail "server spans with 200: $got200, ab: $ok"
within "$got404" "$bad" 0.5 || fail "server spans with 404: $got404, ab: $bad"
within "$total" $((ok + bad)) 0.5 || fail "server spans: $total, ab: $((ok + bad))"
grep -q '"endpoint":"GET /missing/{id}"' "$OUT/server-rows.txt" || fail "404 path not templated"

# the client side, from each ab process
c200=$(spans_json "pid=$ab200&protocol=http&role=client" | jq -r '[.rows[].statuses["200"] // 0] | add // 0')
c404=$(spans_json "pid=$ab404&protocol=http&role=client" | jq -r '[.rows[].statuses["404"] // 0] | add // 0')
note "ab client spans: $c200 x 200, $c404 x 404"
within "$c200" "$ok" 0.5 || fail "ab's client spans with 200: $c200, ab: $ok"
within "$c404" "$bad" 0.5 || fail "ab's client spans with 404: $c404, ab: $bad"
err=$(spans_json "pid=$ab404&protocol=http&role=client" | jq -r '[.rows[].errors] | add // 0')
[ "$err" = "$c404" ] || fail "a client's 404 should count as an error ($err of $c404)"

note "kernel: $(curl -sf "${URL}api/stats" | jq -c '.agent.spans.kernel')"
note "kernel: $(curl -sf "${URL}api/stats" | jq -c '.agent.spans.kernel | {data_events, data_lost, ctl_lost, unknown_conns}')"
stop_ember
exit 0
