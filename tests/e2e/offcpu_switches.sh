#!/bin/sh
# offcpu_switches: under a context-switch-heavy load (`perf bench sched
# pipe`: two processes ping-ponging through pipes, tens of thousands of
# switches a second) the off-CPU tracer stays within its walk budget
# (walks <= budget x CPUs x seconds), keeps the time of the waits it did
# not walk (rate_limited_ns, recorded under the process alone), and the
# profile holds exactly what the kernel recorded; the walked waits of the
# benchmark are attributed to its pipe reads (pipe_read under read()),
# but for the page faults of its start.
. "$(dirname "$0")/lib.sh"
require_bpf
command -v perf > /dev/null || fail "perf not installed (scripts/setup-deps.sh installs linux-perf)"

BUDGET=100
start_bg "$EMBER" record --type offcpu --all --min-block 0 --max-walks "$BUDGET" --duration 120 \
	--stats --output "$OUT/off.folded" 2> "$OUT/rec.err"
rec=$BG_LAST
for i in $(seq 1 150); do grep -q 'recording' "$OUT/rec.err" && break; sleep 0.2; done
grep -q 'recording' "$OUT/rec.err" || { cat "$OUT/rec.err"; fail "ember record did not start"; }
t0=$(date +%s.%N)
perf bench sched pipe -l 100000 > "$OUT/perf.txt" 2>&1 || { cat "$OUT/perf.txt"; fail "perf bench failed"; }
kill -INT "$rec"
wait "$rec" || { cat "$OUT/rec.err"; fail "ember record failed"; }
t1=$(date +%s.%N)
sed -n '/BPF off-CPU counters/,$p' "$OUT/rec.err" | sed 's/^/  | /'
grep usecs/op "$OUT/perf.txt" | sed 's/^ */  perf: /'

stat() { sed -n "s/^  $1  *\([0-9]*\)$/\1/p" "$OUT/rec.err"; }
walks=$(stat walks); limited=$(stat rate_limited); recorded_ns=$(stat recorded_ns)
switches=$(stat switches); limited_ns=$(stat rate_limited_ns)
cpus=$(nproc)
# +2: a window may straddle each end of the recording
max=$(awk -v b="$BUDGET" -v c="$cpus" -v a="$t0" -v z="$t1" 'BEGIN { printf "%d", b * c * (z - a + 2) }')
note "switches $switches, walks $walks (bound $max), rate-limited $limited"
[ "$switches" -gt 50000 ] || fail "only $switches switches: the load did not run"
[ "$walks" -le "$max" ] || fail "$walks walks over the bound $max"
[ "$limited" -gt 0 ] && [ "$limited_ns" -gt 0 ] || fail "no rate-limited waits under this load"

# the profile holds what the kernel recorded (a wait ending during the last drain may miss it)
total=$(total_samples "$OUT/off.folded")
note "profile total ${total} ns, recorded in the kernel ${recorded_ns} ns"
awk -v a="$total" -v b="$recorded_ns" 'BEGIN { d = (a - b) / b; if (d < 0) d = -d; exit !(d <= 0.02) }' ||
	fail "profile total $total ns differs from the kernel's recorded_ns $recorded_ns by > 2%"
# the not-walked time is in the profile, as stacks without frames
nostack=$(awk '/\[no stack\] [0-9]+$/ { t += $NF } END { printf "%.0f", t }' "$OUT/off.folded")
note "waits without stacks: ${nostack} ns (rate_limited_ns ${limited_ns})"
[ "$nostack" -gt 0 ] || fail "the rate-limited time is not in the profile"

# the benchmark's walked waits are its pipe reads
perf_ns=$(awk '/^sched-pipe;/ && !/\[no stack\]/ { t += $NF } END { printf "%.0f", t }' "$OUT/off.folded")
pipe_ns=$(awk '/^sched-pipe;/ && /pipe_read_\[k\]/ { t += $NF } END { printf "%.0f", t }' "$OUT/off.folded")
note "sched-pipe walked waits: ${perf_ns} ns, in pipe_read: ${pipe_ns} ns"
[ "$perf_ns" -gt 0 ] || { head -n 20 "$OUT/off.folded"; fail "no walked waits of sched-pipe"; }
# the rest: its start, page faults and file reads waiting for the disk (the
# loader and perf's pages read in; a cold page cache on a fresh machine)
fault_ns=$(awk '/^sched-pipe;/ && (/exc_page_fault_\[k\]/ || /io_schedule_\[k\]/) && !/pipe_read_\[k\]/ { t += $NF } END { printf "%.0f", t }' "$OUT/off.folded")
note "sched-pipe walked waits in page faults and disk reads: ${fault_ns} ns"
awk -v a="$pipe_ns" -v f="$fault_ns" -v b="$perf_ns" 'BEGIN { exit !(a >= 0.5 * (b - f) && a + f >= 0.95 * b) }' ||
	{ grep '^sched-pipe' "$OUT/off.folded" | sort -t' ' -k2 -rn | head -n 5; fail "sched-pipe's waits are not in pipe_read"; }
exit 0
