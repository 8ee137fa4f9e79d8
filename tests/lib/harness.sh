# harness.sh - the test harness shared by the end-to-end tests (tests/e2e/lib.sh)
# and the kernel-matrix guest tests (tests/kernels/guest/lib.sh); sourced,
# POSIX sh that busybox runs too.
#
# fail "message" exits 1, skip "reason" exits 77 (counted as skipped, the
# reason printed); background processes started with start_bg are killed
# when the test exits.

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
