# lib/net.sh - helpers for the TCP metrics tests (sourced after lib.sh).
#
# start_ember runs `ember run` with the TCP metrics on, flushing every
# second, on a port of its own and a database in $OUT; api GETs from it.
# The comparisons with the oracles (settle, within, check, check_eq) are in
# tests/lib/netcheck.sh, shared with the kernel-matrix guests.

NET_PUMP=${NET_PUMP:-$(dirname "$EMBER")/tools/net_pump}
. "$(dirname "$0")/../lib/netcheck.sh"

require_net() {
	require_bpf
	command -v jq > /dev/null || fail "jq not installed (scripts/setup-deps.sh installs it)"
	command -v curl > /dev/null || fail "curl not installed (scripts/setup-deps.sh installs it)"
	[ -x "$NET_PUMP" ] || fail "$NET_PUMP not built (make build-tests)"
}

# A TCP port nobody listens on here, picked at random (tests run in parallel).
free_port() {
	for _ in $(seq 1 100); do
		p=$(( $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 25000 + 20000 ))
		if ! ss -Htan "( sport = :$p or dport = :$p )" | grep -q .; then
			echo "$p"
			return 0
		fi
	done
	fail "no free TCP port found"
}

# start_ember [ARGS...]: sets URL and EMBER_PID.  Skips when the kernel has
# no hook for TCP metrics (the reason is ember's); fails when it has them but
# refused Ember's programs.
start_ember() {
	start_bg "$EMBER" run --db "$OUT/ember.db" --listen 127.0.0.1:0 --flush 1 \
		--unwind-cache "$OUT/unwind-cache" "$@" 2> "$OUT/run.log"
	EMBER_PID=$BG_LAST
	URL=""
	for _ in $(seq 1 100); do
		URL=$(sed -n 's/^ember: serving \(http:[^ ]*\)$/\1/p' "$OUT/run.log")
		[ -n "$URL" ] && break
		kill -0 "$EMBER_PID" 2> /dev/null || { cat "$OUT/run.log"; fail "ember run exited"; }
		sleep 0.1
	done
	[ -n "$URL" ] || { cat "$OUT/run.log"; fail "ember run did not print its address"; }
	for _ in $(seq 1 20); do
		grep -q "^ember: TCP metrics:" "$OUT/run.log" && break
		sleep 0.1
	done
	if ! grep -q "^ember: TCP metrics:" "$OUT/run.log"; then
		reason=$(sed -n 's/^ember: no TCP metrics: //p' "$OUT/run.log")
		# a kernel without the hooks is a skip; programs it refused are a bug
		case "$reason" in
		*refused* | *"cannot attach"* | "") ;;
		*) skip "no TCP metrics on this kernel: $reason" ;;
		esac
		cat "$OUT/run.log"
		fail "ember run reported no TCP metrics"
	fi
	note "$(grep "^ember: TCP metrics:" "$OUT/run.log" | sed "s/^ember: //")"
}

stop_ember() {
	kill -TERM "$EMBER_PID" 2> /dev/null
	wait "$EMBER_PID" 2> /dev/null
}

api() {
	curl -sf "${URL}api/$1"
}
