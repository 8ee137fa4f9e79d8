# netem.sh - the loss-and-delay check of the TCP metrics, shared by the
# build host's tests/e2e/net_netem.sh and the kernel-matrix guests'
# tests/kernels/guest/tests/70-net_netem.sh; sourced, POSIX sh that busybox
# runs too.
#
# Two network namespaces, A and B, joined by a link with 20 ms delay and 5%
# loss from A to B (netem on a veth pair, or whatever link the caller makes
# between them); a sender in A paced at RATE bytes/s to a sink in B.  The
# oracles are the kernel's: the median of `ss -ti`'s rtt for the connection,
# sampled every 0.5 s (Ember's RTT p50 within 10%), nstat's TcpRetransSegs
# increase in A, whose only traffic is this connection (Ember's
# retransmits within 2%), and the sender's own byte count (1%).
#
# The caller sets IP, TC, SS, NSTAT (iproute2's commands, paths or names),
# NET_PUMP and OUT (an absolute directory), defines api PATH (prints the
# running agent's /api/PATH), and has harness.sh and netcheck.sh loaded.

NETEM_DELAY_MS=20
NETEM_LOSS_PCT=5
NETEM_ADDR_A=10.201.0.1
NETEM_ADDR_B=10.201.0.2

# netem_namespaces: create namespaces A and B (names in nsa, nsb; run a
# command in them with $A CMD, $B CMD), loopback up; removed at exit.
netem_namespaces() {
	nsa="ember-$$-a"
	nsb="ember-$$-b"
	$IP netns add "$nsa" || skip "cannot create network namespaces"
	$IP netns add "$nsb" || { $IP netns del "$nsa"; skip "cannot create network namespaces"; }
	trap netem_cleanup EXIT INT TERM
	A="$IP netns exec $nsa"
	B="$IP netns exec $nsb"
	$A $IP link set lo up
	$B $IP link set lo up
}

netem_cleanup() {
	cleanup
	$IP netns del "$nsa" 2> /dev/null
	$IP netns del "$nsb" 2> /dev/null
}

# netem_veth: a veth pair between A and B, netem delay and loss on A's end;
# sets deva, devb.  Returns 1 when the kernel cannot (tc's or ip's words in
# $OUT/tc.err), leaving no device behind.
netem_veth() {
	deva="emv$$a"
	devb="emv$$b"
	if $IP link add "$deva" type veth peer name "$devb" 2> "$OUT/tc.err" &&
		$IP link set "$deva" netns "$nsa" && $IP link set "$devb" netns "$nsb" &&
		$A $TC qdisc add dev "$deva" root netem delay ${NETEM_DELAY_MS}ms loss ${NETEM_LOSS_PCT}% \
			2> "$OUT/tc.err"; then
		return 0
	fi
	$IP link del "$deva" 2> /dev/null
	$A $IP link del "$deva" 2> /dev/null
	return 1
}

# netem_addresses: NETEM_ADDR_A on deva in A, NETEM_ADDR_B on devb in B,
# up.  B acknowledges at once (route option quickack): a delayed ACK would
# add up to 40 ms to some of the RTT samples and make the RTT wander
# between the moments the oracle and Ember read it.
netem_addresses() {
	$A $IP addr add $NETEM_ADDR_A/24 dev "$deva" || fail "cannot address $deva in $nsa"
	$B $IP addr add $NETEM_ADDR_B/24 dev "$devb" || fail "cannot address $devb in $nsb"
	$A $IP link set "$deva" up
	$B $IP link set "$devb" up
	$B $IP route replace ${NETEM_ADDR_B%.*}.0/24 dev "$devb" proto kernel scope link \
		src $NETEM_ADDR_B quickack 1 || fail "cannot set quickack on $nsb's route"
}

# netem_traffic SECONDS RATE: a sink in B, then the sender in A for SECONDS
# at RATE bytes/s while ss -ti samples the connection every 0.5 s; sets
# port, sender (its pid: `ip netns exec` execs the command), sent (its byte
# count), ss_p50 (ms), n_rtt, retrans (nstat TcpRetransSegs in A).
netem_traffic() {
	start_bg $B "$NET_PUMP" sink $NETEM_ADDR_B 0 > "$OUT/sink.out"
	for _ in $(seq 1 100); do grep -q listening "$OUT/sink.out" && break; sleep 0.1; done
	port=$(sed -n 's/^listening \([0-9]*\)$/\1/p' "$OUT/sink.out")
	[ -n "$port" ] || fail "net_pump sink did not start in $nsb"
	$A ping -c 1 -W 2 $NETEM_ADDR_B > /dev/null 2>&1 || true # warm up the neighbour entries
	export NSTAT_HISTORY="$OUT/nstat.history"
	$A $NSTAT -n || fail "nstat failed in $nsa"

	# paced: a bulk sender would fill the link's queue and the RTT would
	# wander with it (the oracle samples it at other moments than Ember)
	start_bg $A "$NET_PUMP" send $NETEM_ADDR_B "$port" "$1" "$2" > "$OUT/send.out"
	sender=$BG_LAST
	: > "$OUT/ss.txt"
	while kill -0 "$sender" 2> /dev/null; do
		$A $SS -tin "dst $NETEM_ADDR_B:$port" >> "$OUT/ss.txt" 2> /dev/null
		sleep 0.5
	done
	wait "$sender" || fail "the sender failed: $(cat "$OUT/send.out")"
	sleep 0.5
	retrans=$($A $NSTAT -z TcpRetransSegs | awk '$1 == "TcpRetransSegs" { print $2 }')
	rtts=$(grep -o ' rtt:[0-9.]*' "$OUT/ss.txt" | cut -d: -f2 | sort -n)
	n_rtt=$(echo "$rtts" | grep -c .)
	[ "$n_rtt" -ge 5 ] || { cat "$OUT/ss.txt"; fail "ss -ti gave $n_rtt rtt samples"; }
	ss_p50=$(echo "$rtts" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
	sent=$(sed -n 's/^sent //p' "$OUT/send.out")
	note "oracle: sent $sent bytes; ss -ti rtt median $ss_p50 ms over $n_rtt samples ($(echo $rtts)); nstat TcpRetransSegs +$retrans"
}

# netem_ember: what the agent says of the sender's peer, once settled; sets
# p50 (ms), samples, ember_retrans, ember_sent.
netem_ember() {
	settle "net?pid=$sender" "$OUT/sender.json"
	sel='.peers[] | select(.direction == "out" and .addr == "'$NETEM_ADDR_B'" and .port == '$port')'
	p50=$(jq "$sel | .rtt_p50_ms" "$OUT/sender.json")
	samples=$(jq "$sel | .rtt_samples" "$OUT/sender.json")
	ember_retrans=$(jq "$sel | .retransmits" "$OUT/sender.json")
	ember_sent=$(jq "$sel | .sent_bytes" "$OUT/sender.json")
	[ -n "$p50" ] && [ "$p50" != null ] || { cat "$OUT/sender.json"; fail "no RTT for the sender's peer"; }
	note "ember: $(jq -c "$sel" "$OUT/sender.json")"
}

# netem_check: netem_ember's figures against netem_traffic's oracles.
netem_check() {
	check "RTT p50 (ms, $samples samples)" "$p50" "$ss_p50" 10
	[ "${retrans:-0}" -gt 20 ] || fail "only ${retrans:-0} retransmits over a ${NETEM_LOSS_PCT}% lossy link: the link did not work"
	check "retransmitted segments" "$ember_retrans" "$retrans" 2
	check "bytes sent" "$ember_sent" "$sent" 1
}
