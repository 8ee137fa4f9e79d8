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
OUT=$(cd "$OUT" && pwd) # absolute: tests cd elsewhere
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

# serving_url LOG PID: the address `ember run` (pid PID, stderr in LOG)
# prints once it listens; fails if it exits or says nothing for 10 s.
serving_url() {
	for i in $(seq 1 50); do
		u=$(sed -n 's/^ember: serving \(http:[^ ]*\)$/\1/p' "$1")
		[ -n "$u" ] && { echo "$u"; return 0; }
		kill -0 "$2" 2> /dev/null || { cat "$1" >&2; fail "ember run exited"; }
		sleep 0.2
	done
	cat "$1" >&2
	fail "ember run did not print its address"
}

require_prog() {
	[ -x "$PROGS/$1" ] || fail "test program $PROGS/$1 not built (make test-programs)"
}

# start_ember_run ARGS...: `ember run --listen 127.0.0.1:0 ARGS` in the
# background, without service/version variables in its environment; sets
# $ember (its pid) and $url (where it serves) or fails.  Log: $OUT/run.log.
start_ember_run() {
	env -u EMBER_SERVICE -u EMBER_VERSION -u OTEL_SERVICE_NAME -u OTEL_RESOURCE_ATTRIBUTES \
		"$EMBER" run --listen 127.0.0.1:0 "$@" 2> "$OUT/run.log" &
	ember=$!
	BG_PIDS="$BG_PIDS $ember"
	url=""
	for _ in $(seq 1 50); do
		url=$(sed -n 's/^ember: serving \(http:[^ ]*\)$/\1/p' "$OUT/run.log")
		[ -n "$url" ] && return 0
		kill -0 "$ember" 2> /dev/null || { cat "$OUT/run.log"; fail "ember run exited"; }
		sleep 0.2
	done
	cat "$OUT/run.log"
	fail "ember run did not print its address"
}

# share FILE PATTERN: percentage (integer) of samples in folded FILE whose stack matches PATTERN
share() {
	awk -v pat="$2" '{ n = $NF; total += n; line = $0; sub(/ [0-9]+$/, "", line);
		if (index(line, pat)) hit += n }
		END { if (total == 0) print 0; else printf "%d\n", hit * 100 / total }' "$1"
}

total_samples() { awk '{ t += $NF } END { print t + 0 }' "$1"; }
