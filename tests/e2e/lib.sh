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
. "$(dirname "$0")/../lib/harness.sh" # fail, skip, note, start_bg; cleanup on exit

# Skip unless this machine can load BPF and open perf events.
require_bpf() {
	[ "$(id -u)" -eq 0 ] || skip "needs root to load BPF programs (running as uid $(id -u))"
	[ -r /sys/kernel/btf/vmlinux ] || skip "kernel has no BTF (/sys/kernel/btf/vmlinux missing)"
	[ -x "$EMBER" ] || fail "$EMBER not built"
}

require_prog() {
	[ -x "$PROGS/$1" ] || fail "test program $PROGS/$1 not built (make test-programs)"
}

. "$(dirname "$0")/../lib/folded.sh" # share, total_samples, rooted_permille, deep_samples

# wait_for_url LOG PID: set url to what `ember run` (pid PID, stderr in LOG)
# prints it serves, failing if it exits or prints nothing within 20 s
wait_for_url() {
	url=""
	for i in $(seq 1 100); do
		url=$(sed -n 's/^ember: serving \(http:[^ ]*\)$/\1/p' "$1")
		[ -n "$url" ] && return 0
		kill -0 "$2" 2> /dev/null || { cat "$1"; fail "ember run exited"; }
		sleep 0.2
	done
	cat "$1"
	fail "ember run did not print its address"
}
