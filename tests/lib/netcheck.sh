# netcheck.sh - Ember's TCP metrics against their oracles: helpers shared by
# the end-to-end tests (tests/e2e/lib/net.sh) and the kernel-matrix guests
# (tests/kernels/guest/lib.sh); sourced, POSIX sh that busybox runs too.
#
# The caller defines api PATH (prints the agent's /api/PATH answer) and has
# harness.sh (fail, note) and jq.  settle waits until an API answer stops
# changing (every drain and flush is in); within and check compare a figure
# with its oracle.

# settle PATH FILE: fetch api/PATH until two answers 2 s apart are the same
# (at most 30 s); the last answer is left in FILE.
settle() {
	prev=""
	for _ in $(seq 1 15); do
		sleep 2
		api "$1" > "$2" || continue
		cur=$(jq -c 'del(.timeline)' "$2")
		[ -n "$prev" ] && [ "$cur" = "$prev" ] && return 0
		prev=$cur
	done
	fail "api/$1 kept changing for 30 s"
}

# within VALUE EXPECTED PERCENT: true when VALUE is EXPECTED +- PERCENT %.
within() {
	awk -v v="$1" -v e="$2" -v p="$3" 'BEGIN { d = v - e; if (d < 0) d = -d;
		exit !(e > 0 && d <= e * p / 100) }'
}

# check NAME VALUE EXPECTED PERCENT: note the comparison, fail when off.
check() {
	if within "$2" "$3" "$4"; then
		note "$1: ember $2, expected $3 (within $4%)"
	else
		net_diagnose
		fail "$1: ember says $2, the oracle says $3 (more than $4% apart)"
	fi
}

# check_eq NAME VALUE EXPECTED
check_eq() {
	[ "$2" = "$3" ] || { net_diagnose; fail "$1: ember says $2, the oracle says $3"; }
	note "$1: $2 (exact)"
}

# What the agent says about its TCP metrics, for a failure's log.
net_diagnose() {
	api stats > "$OUT/stats-at-failure.json" 2> /dev/null &&
		jq -c '.agent.net' "$OUT/stats-at-failure.json" 2> /dev/null
}
