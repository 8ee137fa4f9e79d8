#!/bin/sh
# net_netem: the loss-and-delay check of tests/e2e/net_netem.sh with the
# real thing, which the build VM's kernel lacks: the case kernel's own
# sch_netem (and veth, tcp_diag for ss -ti; put in /modules by run.sh),
# two network namespaces joined by veth with iproute2's ip, and
# `tc qdisc add ... netem delay 20ms loss 5%` on A's end.  A sender in A
# paced at 200 KB/s for 30 s (TCG is slow: 30 s gives Ember, which reads
# one RTT a drain, and the ss sampler, whose every sample is a process
# start, 15 or more samples each) to a sink in B, under `ember run`
# (--no-spans: the TCP metrics are what is checked); the oracles are the
# kernel's (tests/lib/netem.sh): Ember's RTT p50 for the peer within 10%
# of the median of `ss -ti`'s rtt, its retransmits within 2% of nstat's
# TcpRetransSegs increase in A, its bytes within 1% of the sender's count.
# SKIP where the kernel lacks what this needs (the no-BTF tinyconfig
# kernel: no network namespaces, veth or netem).
. /lib/ember/lib.sh
. /lib/ember/netcheck.sh
. /lib/ember/netem.sh
[ -z "${KERNEL_LACKS:-}" ] || skip "the kernel lacks$KERNEL_LACKS"
[ -z "${KMODULES_ERROR:-}" ] || fail "the host could not provide the modules: $KMODULES_ERROR"
IP=/usr/bin/ip TC=/usr/bin/tc SS=/usr/bin/ss NSTAT=/usr/bin/nstat NET_PUMP=/bin/net_pump
for t in $IP $TC $SS $NSTAT /usr/bin/jq; do
	[ -x "$t" ] || fail "$t is not in the initramfs (iproute2, jq: scripts/setup-deps.sh)"
done
export PATH=/usr/bin:$PATH # jq
load_modules $KMODULES
mkdir -p /var/run/netns /run/netns # ip netns add makes only the last level

netem_namespaces

# One vCPU while it runs: round-robin TCG (run.sh) runs both vCPUs on one
# host thread and lets a busy one keep the other's interrupts waiting up
# to its 100 ms kick period, so each ss the sampler starts would hold back
# the connection's ACKs and spike its RTT just when the oracle reads it.
cpus_off=""
for c in /sys/devices/system/cpu/cpu[1-9]*/online; do
	[ "$(cat "$c" 2> /dev/null)" = 1 ] && echo 0 > "$c" && cpus_off="$cpus_off $c"
done
cpus_back() { for c in $cpus_off; do echo 1 > "$c"; done; }
trap 'netem_cleanup; cpus_back' EXIT INT TERM
note "CPUs online: $(cat /sys/devices/system/cpu/online)"
netem_veth || fail "veth + netem: $(cat "$OUT/tc.err")"
netem_addresses
note "link: veth + netem ($($A $TC qdisc show dev "$deva" | head -n 1))"

start_run netem --no-spans --no-tls
get api/stats "$OUT/netem.stats" || fail "GET /api/stats failed"
io=$(grep -o '"send_recv":"[a-z]*"' "$OUT/netem.stats" | cut -d'"' -f4)
[ -n "$io" ] || fail "no TCP metrics (agent.net.hooks.send_recv missing)"
netem_traffic 30 200000
netem_ember
metric "netem_hooks=$io netem_rtt_ms=$p50 netem_ss_rtt_ms=$ss_p50 netem_rtt_samples=$samples/$n_rtt netem_retrans=$ember_retrans netem_nstat_retrans=$retrans netem_sent=$ember_sent/$sent"
netem_check
stop_run
exit 0
