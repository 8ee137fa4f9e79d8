#!/bin/sh
# offcpu_waits: `ember record --type offcpu` attributes each wait of a
# program to its stack within 5% of the time the program measured itself
# (clock_gettime around every blocking call: nanosleep, a contended mutex,
# a slowly fed pipe), with the wait reason as kernel frames; a spinning
# thread has no off-CPU time, and the CPU profile recorded at the same time
# still holds the spinner's CPU time (its own CLOCK_THREAD_CPUTIME_ID).
# The pprof form carries the off_cpu/nanoseconds sample type.
. "$(dirname "$0")/lib.sh"
require_bpf
require_prog offcpu_waits

SECONDS_RUN=6
start_bg "$PROGS/offcpu_waits" "$SECONDS_RUN" > "$OUT/truth.txt"
pid=$BG_LAST
for i in $(seq 1 50); do grep -q '^ready' "$OUT/truth.txt" && break; sleep 0.1; done
grep -q '^ready' "$OUT/truth.txt" || fail "offcpu_waits did not start"

# both recordings end when the program exits
start_bg "$EMBER" record --type offcpu --pid "$pid" --duration 120 --stats \
	--output "$OUT/off.folded" 2> "$OUT/off.err"
off=$BG_LAST
start_bg "$EMBER" record --type offcpu --pid "$pid" --duration 120 \
	--output "$OUT/off.pb.gz" 2> "$OUT/offpb.err"
offpb=$BG_LAST
start_bg "$EMBER" record --pid "$pid" --duration 120 --output "$OUT/cpu.folded" 2> "$OUT/cpu.err"
cpu=$BG_LAST
for f in off.err offpb.err cpu.err; do
	for i in $(seq 1 150); do grep -q 'recording' "$OUT/$f" && break; sleep 0.2; done
	grep -q 'recording' "$OUT/$f" || { cat "$OUT/$f"; fail "ember record ($f) did not start"; }
done
kill -USR1 "$pid"
wait "$off" || { cat "$OUT/off.err"; fail "ember record --type offcpu failed"; }
wait "$offpb" || { cat "$OUT/offpb.err"; fail "ember record --type offcpu (pprof) failed"; }
wait "$cpu" || { cat "$OUT/cpu.err"; fail "ember record (cpu) failed"; }
sed -n '/BPF off-CPU counters/,$p' "$OUT/off.err" | sed 's/^/  | /'
sed 's/^/  truth: /' "$OUT/truth.txt"

# offcpu_ns NAME: nanoseconds of the stacks through function NAME
offcpu_ns() {
	awk -v pat=";$1;" '{ n = $NF; line = $0; sub(/ [0-9]+$/, "", line);
		if (index(line, pat)) t += n } END { printf "%.0f\n", t }' "$OUT/off.folded"
}
truth_ns() { sed -n "s/^$1 waits=[0-9]* ns=\([0-9]*\)$/\1/p" "$OUT/truth.txt"; }

for fn in sleep_waits hold_lock lock_waits feed_pipe pipe_waits; do
	want=$(truth_ns "$fn")
	got=$(offcpu_ns "$fn")
	[ -n "$want" ] && [ "$want" -gt 0 ] || fail "no measured waits for $fn"
	err=$(awk -v a="$got" -v b="$want" 'BEGIN { d = (a - b) / b * 100; if (d < 0) d = -d; printf "%.2f", d }')
	note "$fn: off-CPU ${got} ns, measured ${want} ns, off by ${err}%"
	awk -v e="$err" 'BEGIN { exit !(e <= 5) }' || fail "$fn: off by $err% (> 5%)"
done

# the wait reasons, as kernel frames under the user stacks
grep ";lock_waits;.*futex_wait_\[k\]" "$OUT/off.folded" > /dev/null ||
	fail "lock_waits: no futex_wait kernel frame"
grep ";pipe_waits;.*pipe_read_\[k\]" "$OUT/off.folded" > /dev/null ||
	fail "pipe_waits: no pipe_read kernel frame"
grep ";sleep_waits;.*do_nanosleep_\[k\]" "$OUT/off.folded" > /dev/null ||
	fail "sleep_waits: no do_nanosleep kernel frame"
! grep -q "bpf_prog_\|bpf_trace_run\|__traceiter_" "$OUT/off.folded" || fail "the tracer's own frames are in the stacks"

# the spinner never blocks
spin_off=$(offcpu_ns spin)
note "spin: off-CPU ${spin_off} ns"
[ "$spin_off" -lt 50000000 ] || fail "spin has $spin_off ns off-CPU (it never blocks)"

# the CPU profile, recorded at the same time: the spinner's CPU time at 99 Hz
spin_cpu=$(sed -n 's/^spin cpu_ns=\([0-9]*\)$/\1/p' "$OUT/truth.txt")
spin_samples=$(awk '{ n = $NF; if (index($0, ";spin")) t += n } END { print t + 0 }' "$OUT/cpu.folded")
expect=$(awk -v c="$spin_cpu" 'BEGIN { printf "%.0f", c / 1e9 * 99 }')
note "CPU profile: spin $spin_samples samples, expected ~$expect (99 Hz x its CPU time)"
awk -v a="$spin_samples" -v b="$expect" 'BEGIN { exit !(b > 0 && a >= b * 0.8 && a <= b * 1.2) }' ||
	fail "CPU profile: spin has $spin_samples samples, expected $expect +- 20%"
pct=$(share "$OUT/cpu.folded" ";spin")
[ "$pct" -ge 80 ] || fail "CPU profile: spin on $pct% of samples, expected >= 80%"

# pprof: one sample type, off_cpu in nanoseconds
command -v go > /dev/null || fail "go not installed (scripts/setup-deps.sh installs golang-go)"
HOME=${HOME:-/root} GOCACHE=/tmp/ember-gocache go tool pprof -raw "$OUT/off.pb.gz" > "$OUT/raw.txt" 2>&1 ||
	{ cat "$OUT/raw.txt"; fail "go tool pprof rejected the off-CPU profile"; }
sed -n '/^Samples:/{n;p;q}' "$OUT/raw.txt" | grep -q "^off_cpu/nanoseconds *$" ||
	{ head -n 5 "$OUT/raw.txt"; fail "pprof sample type is not off_cpu/nanoseconds"; }
exit 0
