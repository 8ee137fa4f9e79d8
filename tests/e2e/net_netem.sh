#!/bin/sh
# net_netem: RTT and retransmits over a lossy, slow link between two network
# namespaces the test creates.  A bulk sender in namespace A writes to a sink
# in B for 10 s at 1 MB/s over a link with 20 ms delay and 5% loss from A to B: netem on
# a veth pair (tc qdisc ... netem delay 20ms loss 5%), or where the kernel
# has no sch_netem, tests/tools/net_delayline.c (TUN devices, the same
# delay and loss in user space).  Oracles, from the kernel: the median of
# `ss -ti`'s rtt for the connection sampled every 0.5 s (Ember's RTT p50 must
# be within 10%), and nstat's TcpRetransSegs increase in A, whose only
# traffic is this connection (Ember's retransmits within 2%).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib/net.sh"
require_net
command -v ip > /dev/null || fail "ip not installed (iproute2)"
command -v nstat > /dev/null || fail "nstat not installed (iproute2)"
DELAYLINE=$(dirname "$EMBER")/tools/net_delayline
[ -x "$DELAYLINE" ] || fail "$DELAYLINE not built (make build-tests)"

case "$OUT" in /*) dir=$OUT ;; *) dir=$(pwd)/$OUT ;; esac
nsa="ember-$$-a"
nsb="ember-$$-b"
ip netns add "$nsa" || skip "cannot create network namespaces"
ip netns add "$nsb" || { ip netns del "$nsa"; skip "cannot create network namespaces"; }
cleanup_ns() {
	cleanup
	ip netns del "$nsa" 2> /dev/null
	ip netns del "$nsb" 2> /dev/null
}
trap cleanup_ns EXIT INT TERM
A="ip netns exec $nsa"
B="ip netns exec $nsb"
$A ip link set lo up
$B ip link set lo up

if ip link add "emv$$a" type veth peer name "emv$$b" 2> /dev/null &&
	ip link set "emv$$a" netns "$nsa" && ip link set "emv$$b" netns "$nsb" &&
	$A tc qdisc add dev "emv$$a" root netem delay 20ms loss 5% 2> "$dir/tc.err"; then
	deva="emv$$a"
	devb="emv$$b"
	link="veth + netem"
else
	ip link del "emv$$a" 2> /dev/null
	$A ip link del "emv$$a" 2> /dev/null
	start_bg "$DELAYLINE" "$nsa" "$nsb" 20 5 > "$dir/delayline.out" 2> "$dir/delayline.err"
	for _ in $(seq 1 50); do grep -q ready "$dir/delayline.out" && break; sleep 0.1; done
	grep -q ready "$dir/delayline.out" || { cat "$dir/delayline.err"; fail "net_delayline did not start"; }
	deva=emdl0
	devb=emdl0
	link="TUN delay line (no sch_netem: $(head -c 80 "$dir/tc.err" 2> /dev/null))"
fi
$A ip addr add 10.201.0.1/24 dev "$deva"
$B ip addr add 10.201.0.2/24 dev "$devb"
$A ip link set "$deva" up
$B ip link set "$devb" up
note "link: $link, 20 ms and 5% loss from A to B"

start_ember
port=$(free_port)
$B "$NET_PUMP" sink 10.201.0.2 "$port" > "$dir/sink.out" &
BG_PIDS="$BG_PIDS $!"
for _ in $(seq 1 50); do grep -q listening "$dir/sink.out" && break; sleep 0.1; done
$A ping -c 1 -W 2 10.201.0.2 > /dev/null 2>&1 || true # warm up the neighbour entries
export NSTAT_HISTORY="$dir/nstat.history"
$A nstat -n

# paced at 1 MB/s: a bulk sender would fill the link's queue and the RTT
# would wander with it (the oracle samples it at other moments than Ember)
$A "$NET_PUMP" send 10.201.0.2 "$port" 10 1000000 > "$dir/send.out" &
sender=$!
BG_PIDS="$BG_PIDS $sender"
: > "$dir/ss.txt"
while kill -0 "$sender" 2> /dev/null; do
	$A ss -tin "dst 10.201.0.2:$port" >> "$dir/ss.txt" 2> /dev/null
	sleep 0.5
done
wait "$sender" || fail "the sender failed: $(cat "$dir/send.out")"
sleep 0.5
retrans=$($A nstat -z TcpRetransSegs | awk '$1 == "TcpRetransSegs" { print $2 }')
rtts=$(grep -o ' rtt:[0-9.]*' "$dir/ss.txt" | cut -d: -f2 | sort -n)
n_rtt=$(echo "$rtts" | grep -c .)
[ "$n_rtt" -ge 5 ] || { cat "$dir/ss.txt"; fail "ss -ti gave $n_rtt rtt samples"; }
ss_p50=$(echo "$rtts" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
note "oracle: $(cat "$dir/send.out" | tr '\n' ' '); ss -ti rtt median $ss_p50 ms over $n_rtt samples; nstat TcpRetransSegs +$retrans"

settle "net?pid=$sender" "$dir/sender.json"
sel='.peers[] | select(.direction == "out" and .addr == "10.201.0.2" and .port == '$port')'
p50=$(jq "$sel | .rtt_p50_ms" "$dir/sender.json")
samples=$(jq "$sel | .rtt_samples" "$dir/sender.json")
ember_retrans=$(jq "$sel | .retransmits" "$dir/sender.json")
[ -n "$p50" ] && [ "$p50" != null ] || { cat "$dir/sender.json"; fail "no RTT for the sender's peer"; }
check "RTT p50 (ms, $samples samples)" "$p50" "$ss_p50" 10
[ "$retrans" -gt 20 ] || fail "only $retrans retransmits over a 5% lossy link: the link did not work"
check "retransmitted segments" "$ember_retrans" "$retrans" 2
sent=$(sed -n 's/^sent //p' "$dir/send.out")
ember_sent=$(jq "$sel | .sent_bytes" "$dir/sender.json")
check "bytes sent" "$ember_sent" "$sent" 1
stop_ember
exit 0
