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
