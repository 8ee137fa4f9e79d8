#!/bin/sh
# net_netem: RTT and retransmits over a lossy, slow link between two network
# namespaces the test creates (tests/lib/netem.sh, shared with the kernel
# matrix's guests, which run it on the Debian kernels' own sch_netem).  A
# bulk sender in namespace A writes to a sink in B for 10 s at 1 MB/s over
# a link with 20 ms delay and 5% loss from A to B: netem on a veth pair
# (tc qdisc ... netem delay 20ms loss 5%), or where the kernel has no
# sch_netem, as on the build VM, tests/tools/net_delayline.c (TUN devices,
# the same delay and loss in user space).  Oracles, from the kernel: the
# median of `ss -ti`'s rtt for the connection sampled every 0.5 s (Ember's
# RTT p50 must be within 10%), and nstat's TcpRetransSegs increase in A,
# whose only traffic is this connection (Ember's retransmits within 2%).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib/net.sh"
. "$(dirname "$0")/../lib/netem.sh"
require_net
IP=ip TC=tc SS=ss NSTAT=nstat
command -v ip > /dev/null || fail "ip not installed (iproute2)"
command -v nstat > /dev/null || fail "nstat not installed (iproute2)"
DELAYLINE=$(dirname "$EMBER")/tools/net_delayline
[ -x "$DELAYLINE" ] || fail "$DELAYLINE not built (make build-tests)"

netem_namespaces
if netem_veth; then
	link="veth + netem"
else
	start_bg "$DELAYLINE" "$nsa" "$nsb" $NETEM_DELAY_MS $NETEM_LOSS_PCT > "$OUT/delayline.out" 2> "$OUT/delayline.err"
	for _ in $(seq 1 50); do grep -q ready "$OUT/delayline.out" && break; sleep 0.1; done
	grep -q ready "$OUT/delayline.out" || { cat "$OUT/delayline.err"; fail "net_delayline did not start"; }
	deva=emdl0
	devb=emdl0
	link="TUN delay line (no sch_netem: $(head -c 80 "$OUT/tc.err" 2> /dev/null))"
fi
netem_addresses
note "link: $link, $NETEM_DELAY_MS ms and $NETEM_LOSS_PCT% loss from A to B"

start_ember
netem_traffic 10 1000000
netem_ember
netem_check
stop_ember
exit 0
