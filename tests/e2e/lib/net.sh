# lib/net.sh - helpers for the TCP metrics tests (sourced after lib.sh).
#
# start_ember runs `ember run` with the TCP metrics on, flushing every
# second, on a port of its own and a database in $OUT; api GETs from it;
# settle waits until an API answer stops changing (every drain and flush
# is in); within compares a figure with its oracle.

NET_PUMP=${NET_PUMP:-$(dirname "$EMBER")/tools/net_pump}

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
