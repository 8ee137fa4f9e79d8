# lib.sh - helpers for the kernel-matrix guest tests (sourced, busybox sh).
#
# A guest test is one file in tests/kernels/guest/tests/, run by the
# guest's /init in name order: it exits 0 (pass), 77 after "SKIPPED: why",
# or anything else after "FAIL: why", like the end-to-end tests.  metric
# sends KEY=VALUE figures to the host's results table.  /case.env holds:
#   CASE        the case's name (deb61, deb61-nobtf, ...)
#   EXPECT      features the kernel must report, e.g. "kernel_btf=no kprobes=yes"
#   EXPECT_BTF  where ember must find BTF: kernel, archive
#   EMBER_ARGS  extra ember options for this case (--btf-archive /archive)
#   SCALE       recording seconds multiplier (TCG is slow; default 1); workloads
#               run 600 s and are killed when done (start-up under TCG is slow)
. /case.env
. /lib/ember/folded.sh
EMBER=/bin/ember
PROGS=/progs
TEST=$(basename "$0" .sh)
OUT=/tmp/$TEST
mkdir -p "$OUT"
. /lib/ember/harness.sh # fail, skip, note, start_bg; cleanup on exit
metric() { echo "METRIC $TEST $*" > "${RESULTS:-/dev/null}"; note "$*"; }

secs() { echo $(($1 * ${SCALE:-1})); }

# record OUTFILE PID SECONDS [ember options]: ember record, stderr in OUTFILE.err
record() {
	out=$1 pid=$2 d=$3
	shift 3
	# shellcheck disable=SC2086 # EMBER_ARGS is a list of options
	"$EMBER" record --pid "$pid" --duration "$d" --output "$out" --stats $EMBER_ARGS "$@" \
		2> "$out.err" || { cat "$out.err"; fail "ember record $* failed"; }
}
