#!/bin/sh
# spans_tls_redis: Redis over TLS (Debian's redis-server links libssl.so.3),
# spans read by the OpenSSL uprobes, under redis-benchmark --tls -t get,set
# -n N, one command per round trip and pipelined 16 deep.  Oracles: the
# benchmark's N for its client spans, and the server's own INFO
# commandstats (calls per command) for the server spans, within 1%.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/spans.inc"
require_bpf
command -v redis-server > /dev/null || fail "redis-server not installed (scripts/setup-deps.sh installs it)"
command -v redis-benchmark > /dev/null || fail "redis-benchmark not installed (Debian package redis-tools)"
command -v openssl > /dev/null || fail "openssl not installed (scripts/setup-deps.sh installs it)"
ldd "$(command -v redis-server)" | grep -q 'libssl.so.3' || skip "this redis-server is built without TLS"

N=20000
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
	-keyout "$OUT/key.pem" -out "$OUT/cert.pem" > "$OUT/openssl.log" 2>&1 ||
	{ cat "$OUT/openssl.log"; fail "openssl could not make a certificate"; }
TLS="--tls --insecure"
port=$(free_port)
start_bg redis-server --port 0 --tls-port "$port" --tls-cert-file "$OUT/cert.pem" \
	--tls-key-file "$OUT/key.pem" --tls-auth-clients no --bind 127.0.0.1 --save "" \
	--appendonly no --dir "$OUT" --logfile "$OUT/redis.log"
server=$BG_LAST
cli() { redis-cli $TLS -p "$port" "$@"; }
for i in $(seq 1 50); do
	cli ping > /dev/null 2>&1 && break
	sleep 0.1
done
[ "$(cli ping)" = PONG ] || { cat "$OUT/redis.log"; fail "redis over TLS does not answer"; }

start_ember
cli config resetstat > /dev/null
calls() { cli info commandstats | sed -n "s/^cmdstat_$1:calls=\([0-9]*\),.*/\1/p"; }

for args in "" "-P 16"; do
	redis-benchmark $TLS -p "$port" -t get,set -n $N -q $args > "$OUT/bench.txt" 2>&1 &
	b=$!
	wait $b || { cat "$OUT/bench.txt"; fail "redis-benchmark $args failed"; }
	for cmd in GET SET; do
		got=$(settle "pid=$b&protocol=redis" ".rows[] | select(.endpoint == \"$cmd\") | .count")
		note "redis-benchmark --tls $args (pid $b): ${got:-0} client $cmd spans"
		within "${got:-0}" $N 1 || fail "client $cmd spans: ${got:-0}, expected $N ($args)"
	done
done
get=$(calls get)
set=$(calls set)
note "redis-server's commandstats: $get GET, $set SET"
for cmd in GET SET; do
	want=$get
	[ $cmd = SET ] && want=$set
	got=$(spans_json "pid=$server&protocol=redis&role=server" |
		jq -r "[.rows[] | select(.endpoint == \"$cmd\") | .count] | add // 0")
	note "redis-server: $got $cmd spans"
	within "$got" "$want" 1 || fail "server $cmd spans: $got, its commandstats: $want"
done
note "kernel: $(span_stat kernel | jq -c '{tls_calls, tls_no_fd, tls_no_entry, data_lost}')"
note "tracker: $(span_stat tracker | jq -c '{spans, tls_spans, desync, unanswered, unmatched}')"
stop_ember
exit 0
