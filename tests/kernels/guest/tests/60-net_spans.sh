#!/bin/sh
# net_spans: the TCP metrics and L7 spans of `ember run` in the guest, the
# checks of tests/e2e/net_metrics.sh and spans_go.sh against the same
# oracles (the programs' own counts), through the hooks this kernel offers:
#   - net_pump fanout sends BYTES to each of two sinks: the sum of
#     ember_tcp_sent_bytes_total towards peer net_pump in /metrics is exactly that;
#   - busybox wget makes N requests to the Go net/http server gohttp: the
#     server's ember_requests_total for GET /light/{id} is N;
#   - /api/stats names the send/receive hooks (agent.net.hooks.send_recv)
#     and agent.kernel lists the same under hooks.net; the case says which
#     to expect (EXPECT_NET: fentry where the kernel has BTF and
#     trampolines, kprobe where it has no BTF to offer);
#   - EMBER_VERBOSE=1 (GUEST_ENV) runs ember -v: why each hook family failed;
#   - when fentry was chosen, a second run with --no-fentry takes the
#     classic kprobe path (tcp_sendmsg/tcp_cleanup_rbuf) and counts the
#     same bytes, with the fallback visible in /api/stats.
. /lib/ember/lib.sh
BYTES=200000
N=20

# metric_sum FILE FAMILY TEXT: the sum of the samples of FAMILY in /metrics whose labels hold TEXT
metric_sum() { grep "^$2{" "$1" | grep -F "$3" | awk '{ s += $NF } END { printf "%d\n", s }'; }

# wait_metric NAME FAMILY TEXT WANT: poll /metrics (30 s) until those lines sum to WANT; sets got
wait_metric() {
	got=0
	for _ in $(seq 1 30); do
		get metrics "$OUT/$1.metrics" || { sleep 1; continue; }
		got=$(metric_sum "$OUT/$1.metrics" "$2" "$3")
		[ "$got" = "$4" ] && return 0
		sleep 1
	done
	return 1
}

# net_check NAME: fan out BYTES to two sinks, check the bytes; sets io (the hooks used)
net_check() {
	get api/stats "$OUT/$1.stats" || fail "$1: GET /api/stats failed"
	io=$(grep -o '"send_recv":"[a-z]*"' "$OUT/$1.stats" | cut -d'"' -f4)
	[ -n "$io" ] || {
		grep -o '"net":{[^}]*' "$OUT/$1.stats"
		grep -i 'net' "$OUT/$1.log" | grep -v '^ember: hooks' | head -n 20
		fail "$1: no TCP metrics"
	}
	grep -o '"hooks":{"[a-z]*":[^}]*}' "$OUT/$1.stats" | tail -n 1 | grep -q "\"net\":\"send/receive by $io" ||
		fail "$1: agent.kernel.hooks.net does not name $io"
	ports=""
	for i in 1 2; do
		start_bg /bin/net_pump sink 127.0.0.1 0 > "$OUT/$1-sink$i.out"
		for _ in $(seq 1 50); do grep -q listening "$OUT/$1-sink$i.out" && break; sleep 0.2; done
		p=$(sed -n 's/^listening \([0-9]*\)$/\1/p' "$OUT/$1-sink$i.out")
		[ -n "$p" ] || fail "$1: net_pump sink did not start"
		ports="$ports${ports:+,}$p"
	done
	svc="fan-$1"
	# connections held 3 s: the agent names the sender from its environment while it lives
	EMBER_SERVICE=$svc /bin/net_pump fanout 127.0.0.1 "$ports" $BYTES 3000 > "$OUT/$1-fan.out" ||
		fail "$1: net_pump fanout failed"
	want=$((2 * BYTES))
	# by peer, not by the sender's service: under TCG the sender may be gone
	# before the agent reads its environment (it is then named by its comm)
	wait_metric "$1" ember_tcp_sent_bytes_total 'direction="out",peer="net_pump"}' $want
	metric "${1}_net_io=$io ${1}_sent_bytes=$got"
	if [ "$got" != $want ]; then
		grep '^ember_tcp_sent_bytes_total' "$OUT/$1.metrics" | head -n 8
		get api/stats "$OUT/$1.stats2" && grep -o '"net":{.*' "$OUT/$1.stats2" | cut -c1-900
		fail "$1 ($io): ember_tcp_sent_bytes_total to net_pump is $got, net_pump sent $want"
	fi
}

start_run auto
net_check auto
[ -z "${EXPECT_NET:-}" ] || [ "$io" = "$EXPECT_NET" ] ||
	fail "TCP metrics through $io hooks, expected $EXPECT_NET on this kernel"

# spans: N sequential requests to the Go server
start_bg env EMBER_SERVICE=web-guest "$PROGS/gohttp" 127.0.0.1:0 > "$OUT/gohttp.out"
for _ in $(seq 1 100); do grep -q listening "$OUT/gohttp.out" && break; sleep 0.2; done
addr=$(sed -n 's/^listening //p' "$OUT/gohttp.out")
[ -n "$addr" ] || fail "gohttp did not start"
ok=0
for i in $(seq 1 $N); do
	wget -q -O /dev/null "http://$addr/light/$i" && ok=$((ok + 1))
done
wait_metric spans ember_requests_total 'service="web-guest",protocol="http",role="server",endpoint="GET /light/{id}"' $ok
hooks=$(grep -o '"spans":"[^"]*"' "$OUT/auto.stats" | head -n 1 | cut -d'"' -f4)
metric "spans_requests=$got spans_client_ok=$ok"
note "spans hooks: $hooks"
if [ "$got" != "$ok" ] || [ "$ok" != $N ]; then
	grep '^ember_requests_total' "$OUT/spans.metrics" | head -n 8
	fail "spans: $got server requests of gohttp in /metrics, wget made $ok of $N"
fi
stop_run

# the kprobe path where fentry was the default
if [ "$io" = fentry ]; then
	start_run nofentry --no-fentry
	net_check nofentry
	[ "$io" = kprobe ] || fail "with --no-fentry, TCP metrics through $io, expected kprobe"
	grep -q '"family":"net","missing":"fentry","using":"kprobe"' "$OUT/nofentry.stats" ||
		fail "with --no-fentry, no fentry -> kprobe fallback of net in /api/stats"
	stop_run
fi
exit 0
