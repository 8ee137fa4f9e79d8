# lib.sh - helpers for the end-to-end tests (sourced, POSIX sh).
#
# Each test script: . "$(dirname "$0")/lib.sh", then require_bpf, then its
# steps; fail "message" exits 1, skip "reason" exits 77 (run-tests.sh
# counts it as skipped and the reason is printed).  Background processes
# started with start_bg are killed on exit.

set -u
EMBER=${EMBER_BIN:-build/ember}
PROGS=${EMBER_PROGS:-build/progs}
OUT=${TEST_OUT:-/tmp/ember-e2e}
rm -rf "$OUT"
mkdir -p "$OUT"
BG_PIDS=""

cleanup() {
	for p in $BG_PIDS; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
}
trap cleanup EXIT INT TERM

fail() { echo "FAIL: $*"; exit 1; }
skip() { echo "SKIPPED: $*"; exit 77; }
note() { echo "  $*"; }

start_bg() { # start_bg CMD... ; sets $! in BG_LAST
	"$@" &
	BG_LAST=$!
	BG_PIDS="$BG_PIDS $BG_LAST"
}

# wait_for_server PID LOG: wait until `ember run` (pid PID, stderr in LOG)
# prints the address it serves; sets $url.  Fails when it exits or is silent.
wait_for_server() {
	url=""
	for i in $(seq 1 50); do
		url=$(sed -n 's/^ember: serving \(http:[^ ]*\)$/\1/p' "$2")
		[ -n "$url" ] && return 0
		kill -0 "$1" 2> /dev/null || { cat "$2"; fail "ember run exited"; }
		sleep 0.2
	done
	cat "$2"
	fail "ember run did not print its address"
}

# procs_map_id PID: the id of the kernel procs map of the agent PID: among
# its BPF map fds, the hash whose value is a struct ember_proc (3080 bytes).
procs_map_id() {
	for f in /proc/"$1"/fdinfo/*; do
		awk '/^map_type:/ { t = $2 } /^value_size:/ { v = $2 } /^map_id:/ { id = $2 }
			END { if (t == 1 && v == 3080) print id }' "$f" 2> /dev/null
	done | head -n 1
}

# procs_pids ID: the pids in the procs map ID, one a line, as bpftool dumps them.
procs_pids() {
	bpftool -j map dump id "$1" | tr ',{}' '\n\n\n' | sed -n 's/^ *"key": *\([0-9][0-9]*\) *$/\1/p'
}

# Skip unless this machine can load BPF and open perf events.
require_bpf() {
	[ "$(id -u)" -eq 0 ] || skip "needs root to load BPF programs (running as uid $(id -u))"
	[ -r /sys/kernel/btf/vmlinux ] || skip "kernel has no BTF (/sys/kernel/btf/vmlinux missing)"
	[ -x "$EMBER" ] || fail "$EMBER not built"
}

require_prog() {
	[ -x "$PROGS/$1" ] || fail "test program $PROGS/$1 not built (make test-programs)"
}

# share FILE PATTERN: percentage (integer) of samples in folded FILE whose stack matches PATTERN
share() {
	awk -v pat="$2" '{ n = $NF; total += n; line = $0; sub(/ [0-9]+$/, "", line);
		if (index(line, pat)) hit += n }
		END { if (total == 0) print 0; else printf "%d\n", hit * 100 / total }' "$1"
}

total_samples() { awk '{ t += $NF } END { print t + 0 }' "$1"; }
