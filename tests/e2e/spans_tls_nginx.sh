#!/bin/sh
# spans_tls_nginx: HTTPS spans of nginx (OpenSSL, libssl.so.3) read by the
# TLS uprobes, under curl -k and ab over HTTPS with a certificate the test
# makes.  nginx starts before ember (so it is attached as an already
# running process) and the clients after.  Oracles: ab's own counts
# ("Complete requests", "Non-2xx responses") and nginx's access log, per
# status, within 0.5%; the syscall hooks see only ciphertext, so every
# HTTP span of the worker must come from the uprobes, and every one is
# marked tls in the store.  The same nginx also listens in plain HTTP:
# those spans are not marked.  Slow requests (proxied to a Go HTTPS server
# that sleeps) through both listeners: /api/spans/slow marks exactly the
# ones that came over TLS (curl's own counts).  Then, with --no-tls, the
# same traffic gives no span.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/spans.inc"
require_bpf
command -v nginx > /dev/null || fail "nginx not installed (scripts/setup-deps.sh installs it)"
command -v ab > /dev/null || fail "ab not installed (Debian package apache2-utils)"
command -v openssl > /dev/null || fail "openssl not installed (scripts/setup-deps.sh installs it)"
ldd "$(command -v nginx)" | grep -q 'libssl.so.3' || skip "this nginx is not linked to libssl.so.3"
require_prog gotls

port=$(free_port)
plain=$(free_port)
goport=$(free_port)
mkdir -p "$OUT/www" "$OUT/tmp"
head -c 3000 /dev/urandom | base64 > "$OUT/www/index.html"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
	-keyout "$OUT/key.pem" -out "$OUT/cert.pem" > "$OUT/openssl.log" 2>&1 ||
	{ cat "$OUT/openssl.log"; fail "openssl could not make a certificate"; }
# the upstream of /slow/: /slow/N answers after N ms
start_bg "$PROGS/gotls" serve "127.0.0.1:$goport" "$OUT/cert.pem" "$OUT/key.pem"
cat > "$OUT/nginx.conf" <<EOC
worker_processes 1;
daemon off;
pid $OUT/nginx.pid;
error_log $OUT/nginx-error.log;
events { worker_connections 256; }
http {
	log_format st '\$status';
	access_log $OUT/access.log st;
	keepalive_requests 100000;
	client_body_temp_path $OUT/tmp; proxy_temp_path $OUT/tmp; fastcgi_temp_path $OUT/tmp;
	uwsgi_temp_path $OUT/tmp; scgi_temp_path $OUT/tmp;
	server {
		listen 127.0.0.1:$port ssl;
		ssl_certificate $OUT/cert.pem;
		ssl_certificate_key $OUT/key.pem;
		root $OUT/www;
		location /slow/ { proxy_pass https://127.0.0.1:$goport; }
	}
	server {
		listen 127.0.0.1:$plain;
		root $OUT/www;
		location /slow/ { proxy_pass https://127.0.0.1:$goport; }
	}
}
EOC

start_bg nginx -c "$OUT/nginx.conf" -p "$OUT"
for i in $(seq 1 50); do
	curl -sk -o /dev/null "https://127.0.0.1:$port/" && break
	sleep 0.1
done
master=$(cat "$OUT/nginx.pid")
worker=$(ps -o pid= --ppid "$master" | tr -d ' ' | head -n 1)
[ -n "$worker" ] || fail "no nginx worker"
note "nginx master $master, worker $worker on https port $port, http port $plain"

start_ember --slow-threshold 30
tls=$(span_stat tls)
note "attacher: $tls"
[ "$(echo "$tls" | jq -r '.libssl_files')" -ge 1 ] || fail "no libssl attached: $tls"
: > "$OUT/access.log"

# the mix: ab with and without keep-alive, and curl -k one request at a time
ab -q -n 2000 -c 4 "https://127.0.0.1:$port/index.html" > "$OUT/ab-200.txt" 2>&1 &
ab200=$!
ab -q -k -n 1000 -c 4 "https://127.0.0.1:$port/missing/42" > "$OUT/ab-404.txt" 2>&1 &
ab404=$!
curl_ok=0
for i in $(seq 1 50); do
	code=$(curl -sk -o /dev/null -w '%{http_code}' "https://127.0.0.1:$port/index.html")
	[ "$code" = 200 ] && curl_ok=$((curl_ok + 1))
done
wait $ab200 || { cat "$OUT/ab-200.txt"; fail "ab failed"; }
wait $ab404 || { cat "$OUT/ab-404.txt"; fail "ab -k failed"; }
ok=$(sed -n 's/^Complete requests: *//p' "$OUT/ab-200.txt")
bad=$(sed -n 's/^Complete requests: *//p' "$OUT/ab-404.txt")
non2xx_a=$(sed -n 's/^Non-2xx responses: *//p' "$OUT/ab-200.txt")
non2xx_b=$(sed -n 's/^Non-2xx responses: *//p' "$OUT/ab-404.txt")
[ -z "$non2xx_a" ] || fail "ab saw $non2xx_a non-2xx answers for index.html"
[ "$non2xx_b" = "$bad" ] || fail "ab saw $non2xx_b non-2xx of $bad for /missing"
[ "$curl_ok" = 50 ] || fail "curl -k got $curl_ok x 200 of 50"
want200=$((ok + curl_ok))
log200=$(grep -c '^200$' "$OUT/access.log")
log404=$(grep -c '^404$' "$OUT/access.log")
note "clients: $want200 x 200 (ab $ok, curl $curl_ok), $bad x 404; nginx log: $log200 x 200, $log404 x 404"
[ "$log200" = "$want200" ] && [ "$log404" = "$bad" ] || fail "nginx's log disagrees with the clients"

# every HTTP span of the worker comes from the uprobes (its sockets carry ciphertext);
# ab and curl use OpenSSL too: client spans from the ab processes
check_nginx_spans "$worker" "$want200" "$bad" "$ab200" "$ab404" "$ok"
# stored marked: every one of them came over TLS
tls_worker=$(spans_json "$q" | jq -r '[.rows[].tls] | add // 0')
tls_ab=$(spans_json "pid=$ab200&protocol=http&role=client" | jq -r '[.rows[].tls] | add // 0')
note "spans marked tls: worker $tls_worker of $total, ab $tls_ab of $c200"
[ "$tls_worker" = "$total" ] || fail "the worker's spans marked tls: $tls_worker of $total"
[ "$tls_ab" = "$c200" ] || fail "ab's spans marked tls: $tls_ab of $c200"

# plain HTTP to the same worker: not marked
: > "$OUT/access.log"
ab -q -n 200 -c 2 "http://127.0.0.1:$plain/plain/7" > "$OUT/ab-plain.txt" 2>&1 || fail "ab (plain) failed"
plain404=$(sed -n 's/^Non-2xx responses: *//p' "$OUT/ab-plain.txt")
[ "$plain404" = 200 ] || fail "ab (plain) saw $plain404 non-2xx of 200"
[ "$(grep -c '^404$' "$OUT/access.log")" = 200 ] || fail "nginx's log disagrees with ab (plain)"
sel='.rows[] | select(.endpoint == "GET /plain/{id}")'
pc=$(settle "$q" "[$sel | .count] | add // 0")
pt=$(spans_json "$q" | jq -r "[$sel | .tls] | add // 0")
note "plain: $pc spans of GET /plain/{id} (ab: 200), $pt marked tls"
within "$pc" 200 0.5 || fail "plain spans: $pc, ab: 200"
[ "$pt" = 0 ] || fail "$pt plain spans marked tls"

# slow requests (over --slow-threshold 30 ms) through both listeners
slow_tls=0 slow_plain=0
for i in $(seq 1 10); do
	[ "$(curl -sk "https://127.0.0.1:$port/slow/40")" = "slow 40" ] && slow_tls=$((slow_tls + 1))
	[ "$(curl -s "http://127.0.0.1:$plain/slow/40")" = "slow 40" ] && slow_plain=$((slow_plain + 1))
done
note "slow requests answered: $slow_tls over https, $slow_plain over http"
[ "$slow_tls" = 10 ] && [ "$slow_plain" = 10 ] || fail "the slow requests were not all answered"
slow_count() { # slow_count TLS(true|false): the worker's slow GET /slow/{id} spans so marked
	curl -sf "${URL}api/spans/slow?pid=$worker&role=server&protocol=http&limit=1000" |
		jq -r "[.spans[] | select(.endpoint == \"GET /slow/{id}\" and .tls == $1)] | length"
}
for i in $(seq 1 30); do
	[ $(($(slow_count true) + $(slow_count false))) -ge 20 ] && break
	sleep 1
done
st=$(slow_count true)
sp=$(slow_count false)
note "slow spans of the worker: $st marked tls, $sp not"
[ "$st" = "$slow_tls" ] || fail "slow TLS spans: $st, curl over https: $slow_tls"
[ "$sp" = "$slow_plain" ] || fail "slow plain spans: $sp, curl over http: $slow_plain"

kern=$(span_stat kernel)
note "kernel: $(echo "$kern" | jq -c '{tls_calls, tls_no_fd, tls_no_entry, tls_calls_full, data_lost, unknown_conns}')"
[ "$(echo "$kern" | jq -r .tls_calls)" -ge $((2 * (want200 + bad))) ] || fail "too few TLS calls counted"
tls_spans=$(span_stat tracker.tls_spans)
note "tracker: $tls_spans spans from TLS connections"
[ "$tls_spans" -ge $((total + c200 + c404)) ] || fail "spans not marked tls: $tls_spans"
stop_ember

# --no-tls: the same traffic, and no HTTP span of the worker (a fresh database)
rm -f "$OUT"/ember.db*
start_ember --no-tls
grep -q "TLS plaintext off" "$OUT/ember.log" || fail "--no-tls not reported"
[ "$(span_stat tls)" = null ] || fail "--no-tls still attaches"
ab -q -n 300 -c 2 "https://127.0.0.1:$port/index.html" > "$OUT/ab-notls.txt" 2>&1 || fail "ab failed"
sleep 3
n=$(spans_json "$q" | jq -r "[.rows[].count] | add // 0")
[ "$n" = 0 ] || fail "with --no-tls, $n spans of the worker"
[ "$(span_stat kernel.tls_calls)" = 0 ] || fail "with --no-tls, TLS calls counted"
stop_ember
kill "$master"
exit 0
