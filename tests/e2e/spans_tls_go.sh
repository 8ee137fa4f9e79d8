#!/bin/sh
# spans_tls_go: HTTPS spans of a Go 1.19 server and client
# (tests/programs/gotls, HTTP/1.1 over crypto/tls) read by uprobes on
# crypto/tls.(*Conn).Write/Read and on each of their RET instructions.
# Two rounds of 10k requests: an unstripped server (started before ember:
# attached while running) with a stripped client, then a stripped server
# (started after ember: found by the attacher's scan) with an unstripped
# client.  Oracles: the client's own counts per status (it checks every
# body), the server answering correctly afterwards, and objdump's count of
# RET instructions in the two functions against the probes attached.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/spans.inc"
require_bpf
require_prog gotls
require_prog gotls_stripped
command -v openssl > /dev/null || fail "openssl not installed (scripts/setup-deps.sh installs it)"
command -v objdump > /dev/null || skip "objdump (binutils) not installed"

N=10000
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
	-keyout "$OUT/key.pem" -out "$OUT/cert.pem" > "$OUT/openssl.log" 2>&1 ||
	{ cat "$OUT/openssl.log"; fail "openssl could not make a certificate"; }

# RETs objdump finds in the two functions (the stripped build has the same code)
rets() {
	objdump -d --no-show-raw-insn "$PROGS/gotls" |
		awk -v f="<crypto/tls.(*Conn).$1>:" '$2 == f { on = 1; next } on && /^$/ { exit }
			on && $2 == "ret" { n++ } END { print n + 0 }'
}
rw=$(rets Write)
rr=$(rets Read)
note "objdump: $rw RETs in (*Conn).Write, $rr in (*Conn).Read"
[ "$rw" -ge 1 ] && [ "$rr" -ge 1 ] || fail "objdump found no RET"

wait_up() { # wait_up PORT
	for i in $(seq 1 100); do
		[ "$(curl -sk "https://127.0.0.1:$1/ok/1")" = "ok 1" ] && return 0
		sleep 0.1
	done
	fail "the Go server on port $1 does not answer"
}

# round SERVER_BIN CLIENT_BIN: N requests; checks spans on both sides
round() {
	"$PROGS/$2" client "https://127.0.0.1:$port" $N 8 > "$OUT/client-$2.txt" 2>&1 &
	client=$!
	wait $client || { cat "$OUT/client-$2.txt"; fail "the client ($2) failed"; }
	ok=$(sed -n 's/^200 //p' "$OUT/client-$2.txt")
	failed=$(sed -n 's/^500 //p' "$OUT/client-$2.txt")
	note "$2 client: $ok x 200, $failed x 500, $(sed -n 's/^bad //p' "$OUT/client-$2.txt") bad"
	[ $((ok + failed)) = $N ] || fail "the client's counts do not add up to $N"
	kill -0 "$server" 2> /dev/null || fail "the $1 server died"
	[ "$(curl -sk "https://127.0.0.1:$port/ok/77")" = "ok 77" ] || fail "the $1 server answers wrongly"

	q="pid=$server&protocol=http&role=server"
	s200=$(settle "$q" '[.rows[].statuses["200"] // 0] | add // 0')
	s500=$(statuses "$q" 500)
	spans_json "$q" | jq -c '.rows[] | {endpoint, count, statuses, p50_ms, p99_ms}'
	c200=$(statuses "pid=$client&protocol=http&role=client" 200)
	c500=$(statuses "pid=$client&protocol=http&role=client" 500)
	note "$1 server spans: $s200 x 200, $s500 x 500; $2 client spans: $c200 x 200, $c500 x 500"
	# the server also answered wait_up's and the health check's requests
	within "$s200" $((ok + 2)) 0.5 || fail "$1 server spans with 200: $s200, client: $ok"
	within "$s500" "$failed" 0.5 || fail "$1 server spans with 500: $s500, client: $failed"
	within "$c200" "$ok" 0.5 || fail "$2 client spans with 200: $c200, client: $ok"
	within "$c500" "$failed" 0.5 || fail "$2 client spans with 500: $c500, client: $failed"
}

# round 1: the server runs before ember starts
port=$(free_port)
start_bg "$PROGS/gotls" serve "127.0.0.1:$port" "$OUT/cert.pem" "$OUT/key.pem"
server=$BG_LAST
wait_up $port
start_ember
tls=$(span_stat tls)
note "attacher: $(echo "$tls" | jq -c .)"
[ "$(echo "$tls" | jq -r .go_files)" -ge 1 ] || fail "the running Go server was not attached"
# an idle process of the client's file makes the attacher find it first (a
# new program is found by a scan, every 0.5 s: its first calls may be missed)
start_bg "$PROGS/gotls_stripped" idle
idle=$BG_LAST
# attached_rets PID: the RETs of (*Conn).Read the attacher probed in PID's binary
attached_rets() {
	sed -n "s/^ember: info: tls: tracing Go crypto\/tls in pid $1 (.*): (\*Conn).Read has \([0-9]*\) RETs$/\1/p" "$OUT/ember.log"
}
for i in $(seq 1 50); do
	[ -n "$(attached_rets $idle)" ] && break
	sleep 0.1
done
kill $idle
[ -n "$(attached_rets $idle)" ] || fail "the stripped client binary was not attached"
[ "$(attached_rets $idle)" = "$rr" ] || fail "$(attached_rets $idle) RETs probed in the stripped (*Conn).Read, objdump: $rr"
round gotls gotls_stripped
kill "$server"

# round 2: a stripped server started now
port=$(free_port)
start_bg "$PROGS/gotls_stripped" serve "127.0.0.1:$port" "$OUT/cert.pem" "$OUT/key.pem"
server=$BG_LAST
tls=$(span_stat tls)
note "attacher: $(echo "$tls" | jq -c .)"
wait_up $port
round gotls_stripped gotls
kern=$(span_stat kernel)
note "kernel: $(echo "$kern" | jq -c '{tls_calls, tls_no_fd, tls_no_entry, tls_calls_full, data_lost}')"
# a Read may return after another goroutine closed the connection: rare
[ "$(echo "$kern" | jq -r .tls_no_fd)" -le $(($(echo "$kern" | jq -r .tls_calls) / 1000)) ] ||
	fail "TLS calls without a socket"
kill "$server"
stop_ember
exit 0
