# lib.sh - helpers for the kernel-matrix guest tests (sourced, busybox sh).
#
# A guest test is one file in tests/kernels/guest/tests/, run by the
# guest's /init in name order: it exits 0 (pass), 77 after "SKIPPED: why",
# or anything else after "FAIL: why", like the end-to-end tests.  metric
# sends KEY=VALUE figures to the host's results table; start_run/stop_run
# run `ember run` (get and api read its answers); load_modules loads the
# kernel modules the host put in the case's cpio.  /case.env holds:
#   CASE        the case's name (deb61, deb61-nobtf, ...)
#   EXPECT      features the kernel must report, e.g. "kernel_btf=no kprobes=yes"
#   EXPECT_BTF  where ember must find BTF: kernel, archive
#   EMBER_ARGS  extra ember options for this case (--btf-archive /archive)
#   KMODULES    modules in /modules (NAME.ko, the case kernel's own), in load order
#   KMODULES_ERROR  why the host could not put them there (empty: it did)
#   KERNEL_LACKS  what the kernel's config lacks of what guest tests load
#               (CONFIG_NET_SCH_NETEM ...); empty when it has all of it
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

# load_modules NAME...: insmod /modules/NAME.ko in the order given, unless loaded
load_modules() {
	for m in "$@"; do
		[ -d "/sys/module/$m" ] && continue
		[ -f "/modules/$m.ko" ] || fail "module $m is not in the case's initramfs (/modules)"
		insmod "/modules/$m.ko" 2> "$OUT/insmod-$m.err" || fail "insmod $m: $(cat "$OUT/insmod-$m.err")"
	done
}

# start_run NAME [ember options]: `ember run` on a free port; sets URL, RUN_PID
start_run() {
	name=$1
	shift
	# shellcheck disable=SC2086 # EMBER_ARGS is a list of options
	start_bg "$EMBER" ${EMBER_VERBOSE:+-v} run --db "$OUT/$name.db" --listen 127.0.0.1:0 --flush 1 \
		--unwind-cache "$OUT/cache" $EMBER_ARGS "$@" 2> "$OUT/$name.log"
	RUN_PID=$BG_LAST
	URL=""
	for _ in $(seq 1 600); do # TCG: loading every family takes a while
		URL=$(sed -n 's/^ember: serving \(http:[^ ]*\)$/\1/p' "$OUT/$name.log")
		[ -n "$URL" ] && break
		kill -0 "$RUN_PID" 2> /dev/null || { cat "$OUT/$name.log"; fail "ember run ($name) exited"; }
		sleep 0.2
	done
	[ -n "$URL" ] || { cat "$OUT/$name.log"; fail "ember run ($name) did not print its address"; }
	grep -E '^ember: (hooks|fallback|TCP metrics|tracing)' "$OUT/$name.log" | sed 's/^/  /'
}

stop_run() {
	kill "$RUN_PID" 2> /dev/null
	wait "$RUN_PID" 2> /dev/null
}

# get PATH FILE: the agent's answer to PATH (e.g. api/stats, metrics) in FILE
get() { wget -q -O "$2" "$URL$1"; }

# api PATH: the agent's /api/PATH on stdout (netcheck.sh's settle and check)
api() { wget -q -O - "${URL}api/$1"; }
