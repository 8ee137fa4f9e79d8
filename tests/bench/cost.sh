#!/bin/bash
# cost.sh - what the agent costs (issue [14]), against peers in the same run.
#
#   1. idle: `ember run` at its defaults, CPU over BENCH_IDLE s after a 10 s
#      warm-up (start-up excluded), next to `perf record -a -g -F 19` over
#      the same window.  "Idle" is only as idle as the host: the load
#      average is printed with it.
#   2. steady state at 19 Hz with both CPUs busy (two fp_chain), CPU over
#      BENCH_IDLE s after the warm-up.
#   3. BPF time per sample on a 20-deep stack (kernel.bpf_stats_enabled):
#      ember's CFI unwinder on unwind_zoo (no frame pointers) against
#      bpftrace's frame-pointer `ustack` on the same program built with
#      frame pointers, both at 99 Hz on one pid, interleaved; and the cost
#      of a sample `record --pid` filters out (another process).
#   4. CPU per 1,000 samples on that workload: ember record (agent + BPF)
#      against perf record --call-graph dwarf + perf script.  perf copies
#      the stack in the kernel on the profiled task's time; that part is
#      not in its figure, so perf looks cheaper than it is.
#
#   BENCH_IDLE   seconds of each CPU measurement (default 30)
#   BENCH_REC    seconds of each recording in 3 and 4 (default 10)
set -euo pipefail
cd "$(dirname "$0")/../.."
IDLE=${BENCH_IDLE:-30}
REC=${BENCH_REC:-10}
. tests/bench/lib.sh
bench_setup build/bench/cost
bench_begin

cpu_ticks() { # utime+stime of a pid, in clock ticks
	awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}
load() { cut -d' ' -f1-3 /proc/loadavg; }
pct() { # ticks seconds -> % of one CPU
	awk -v t="$1" -v s="$2" -v hz="$HZ" 'BEGIN { printf "%.3f", t / hz / s * 100 }'
}

# measure_window PID: CPU % of PID over IDLE s, after a 10 s warm-up
measure_window() {
	local p=$1 a b
	sleep 10
	a=$(cpu_ticks "$p")
	sleep "$IDLE"
	b=$(cpu_ticks "$p")
	pct $((b - a)) "$IDLE"
}

ember_run_window() { # label binary: one `ember run` at its defaults, its steady-state CPU %
	local label=$1 bin=$2
	"$bin" run --db "$OUT/$label.db" --listen 127.0.0.1:0 > /dev/null 2> "$OUT/$label.log" &
	local e=$!
	local r
	# the warm-up starts once it serves (start-up on a loaded host takes a while,
	# and a SIGINT before its handler is installed would be ignored)
	for _ in $(seq 600); do
		grep -q '^ember: serving' "$OUT/$label.log" && break
		kill -0 $e 2> /dev/null || { cat "$OUT/$label.log" >&2; return 1; }
		sleep 0.2
	done
	r=$(measure_window $e)
	kill -INT $e; wait $e || true
	rm -f "$OUT/$label.db"*
	echo "$r"
}

perf_window() { # label: `perf record -a -g -F 19` for IDLE s + `perf script`, % of a CPU
	TIMEFORMAT='%U %S'
	{ time perf record -q -e cpu-clock -F 19 -a -g -o "$OUT/$1.data" -- sleep "$IDLE" 2> /dev/null; } 2> "$OUT/$1.rec.time"
	{ time perf script -i "$OUT/$1.data" > /dev/null 2>&1; } 2> "$OUT/$1.script.time"
	cat "$OUT/$1.rec.time" "$OUT/$1.script.time" |
		awk -v s="$IDLE" '{ c += $1 + $2 } END { printf "%.3f", c / s * 100 }'
}

# EMBER_BASE=path/to/older/ember: that build measured too, interleaved (before/after)
windows() { # label: ember, [base], perf; sets ${label}_ember ${label}_base ${label}_perf ${label}_load
	local e b="" p l
	e=$(ember_run_window "$1" "$EMBER")
	l=$(load)
	if [ -n "${EMBER_BASE:-}" ]; then b=$(ember_run_window "$1-base" "$EMBER_BASE"); fi
	p=$(perf_window "$1-perf")
	printf -v "${1}_ember" %s "$e"; printf -v "${1}_base" %s "$b"
	printf -v "${1}_perf" %s "$p"; printf -v "${1}_load" %s "$l"
	echo "  ember run $e% of a CPU${b:+ (EMBER_BASE: $b%)}; perf record -a -g + script $p%; load $l"
}
idle_ember=0; idle_base=""; idle_perf=0; idle_load=""; busy_ember=0; busy_base=""; busy_perf=0; busy_load=""
if [ -z "${BENCH_NO_WINDOWS:-}" ]; then
	echo "bench: idle agent (ember run defaults), ${IDLE}s after 10 s, load $(load)"
	windows idle
	echo "bench: steady state, both CPUs busy, 19 Hz"
	busy=()
	for i in 1 2; do "$PROGS/fp_chain" $((IDLE * 8 + 180)) > /dev/null & busy+=($!); pids+=($!); done
	windows busy
	kill "${busy[@]}" 2> /dev/null || true
fi

# ---- BPF time per sample, 20-deep stacks ------------------------------------
zoo_fp="$OUT/unwind_zoo_fp"
g++ -O2 -g -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer -o "$zoo_fp" \
	tests/programs/unwind_zoo.cpp "$PROGS/libzoo_lib.so" -Wl,-rpath,"$(realpath $PROGS)" -lpthread

prog_stats() { # prog id -> "run_cnt run_time_ns"
	bpftool prog show id "$1" 2> /dev/null |
		sed -n 's/.*run_time_ns \([0-9]*\) run_cnt \([0-9]*\).*/\2 \1/p'
}

ember_bpf() { # pid -> "ns_per_run samples cpu_s": ember record --pid at 99 Hz
	local t0 r
	TIMEFORMAT='%U %S'
	{ time "$EMBER" record --pid "$1" -d "$REC" -F 99 --stats -o "$OUT/rec.folded" \
		2> "$OUT/rec.err"; } 2> "$OUT/rec.time" || true
	local ns n cpu
	ns=$(sed -n 's/^ *per_sample_cost *\([0-9]*\) ns.*/\1/p' "$OUT/rec.err")
	n=$(sed -n 's/^ember: samples recorded vs written: [0-9]* vs \([0-9]*\),.*/\1/p' "$OUT/rec.err")
	cpu=$(awk '{ print $1 + $2 }' "$OUT/rec.time")
	echo "${ns:-0} ${n:-0} $cpu"
}

bpftrace_bpf() { # pid -> "ns_per_run samples": bpftrace FP ustack at 99 Hz
	bpftrace -e "profile:hz:99 /pid == $1/ { @s[ustack(perf, 127)] = count(); @n = count(); }" \
		> "$OUT/bt.out" 2>&1 &
	local b=$! id=""
	# attached (and its SIGINT handler installed: a background job starts
	# with SIGINT ignored) before the clock starts; its program is the newest
	for _ in $(seq 300); do
		grep -q '^Attaching' "$OUT/bt.out" && break
		sleep 0.2
	done
	sleep 1
	id=$(bpftool prog show 2> /dev/null | awk '/perf_event/ && /name 99/ { sub(":", "", $1); print $1 }' | tail -n 1)
	sleep "$REC"
	local s
	s=$(prog_stats "$id")
	kill -INT $b
	for _ in $(seq 50); do kill -0 $b 2> /dev/null || break; sleep 0.2; done
	kill -TERM $b 2> /dev/null || true
	wait $b || true
	local n
	n=$(sed -n 's/^@n: \([0-9]*\)/\1/p' "$OUT/bt.out")
	awk -v s="$s" -v n="${n:-0}" 'BEGIN { split(s, a, " "); printf "%d %d %d %d\n", a[1] ? a[2] / a[1] : 0, n, a[1], a[2] }'
}

command -v bpftrace > /dev/null || echo "bench: bpftrace not installed (scripts/setup-deps.sh --bench)"
"$PROGS/unwind_zoo" $((REC * 12 + 60)) 20 solo > /dev/null & zoo=$!; pids+=($zoo)
"$zoo_fp" $((REC * 12 + 60)) 20 solo > /dev/null & zoofp=$!; pids+=($zoofp)
sleep 1
echo "bench: BPF time per sample, 20-deep stack, 99 Hz, ${REC}s each, interleaved"
: > "$OUT/bpf.txt"
for round in 1 2; do
	read -r ens en ecpu < <(ember_bpf $zoo)
	echo "ember $ens $en $ecpu" >> "$OUT/bpf.txt"
	if command -v bpftrace > /dev/null; then
		read -r bns bn _ _ < <(bpftrace_bpf $zoofp)
		echo "bpftrace $bns $bn" >> "$OUT/bpf.txt"
	fi
done
# the per-run cost of samples --pid does not want: record a sleeping pid
sleep 1000 & idle_pid=$!; pids+=($idle_pid)
read -r fns _ _ < <(ember_bpf $idle_pid)
kill $idle_pid

# ---- CPU per 1,000 samples: ember record vs perf --call-graph dwarf ---------
TIMEFORMAT='%U %S'
{ time perf record -q -e cpu-clock -F 99 --call-graph dwarf -p $zoo -o "$OUT/dwarf.data" -- sleep "$REC" 2> /dev/null; } 2> "$OUT/dwarf.rec.time"
{ time perf script -i "$OUT/dwarf.data" > "$OUT/dwarf.script" 2> /dev/null; } 2> "$OUT/dwarf.script.time"
perf_n=$(awk 'BEGIN { RS = "" } END { print NR }' "$OUT/dwarf.script")
perf_cpu=$(cat "$OUT/dwarf.rec.time" "$OUT/dwarf.script.time" | awk '{ s += $1 + $2 } END { print s }')
read -r ens2 en2 ecpu2 < <(ember_bpf $zoo)

{
	echo "Load average during the idle and busy windows: $idle_load / $busy_load (2 vCPUs, shared)"
	echo
	echo "| what | ember | peer | ratio |"
	echo "| --- | --- | --- | --- |"
	row() { # what ember peer
		awk -v w="$1" -v e="$2" -v p="$3" 'BEGIN {
			printf "| %s | %.3f%% | %.3f%% | %s |\n", w, e, p, (p > 0 ? sprintf("%.3fx", e / p) : "n/a") }'
	}
	row "idle agent, % of a CPU (peer: perf record -a -g -F 19 + perf script)" "$idle_ember" "$idle_perf"
	row "both CPUs busy, 19 Hz, % of a CPU (same peer)" "$busy_ember" "$busy_perf"
	if [ -n "$idle_base" ]; then
		row "idle agent: this build against EMBER_BASE" "$idle_ember" "$idle_base"
		row "both CPUs busy: this build against EMBER_BASE" "$busy_ember" "$busy_base"
	fi
	awk '$1 == "ember" { e += $2; ne++ } $1 == "bpftrace" { b += $2; nb++ }
	     END { e = ne ? e / ne : 0; b = nb ? b / nb : 0
		   printf "| BPF ns per run, 20-deep stack (peer: bpftrace FP ustack) | %d | %s | %s |\n", e, nb ? b : "n/a", nb && b ? sprintf("%.2fx", e / b) : "n/a" }' "$OUT/bpf.txt"
	echo "| BPF ns per run for a sample record --pid filters out | $fns | | |"
	awk -v n="$en2" -v c="$ecpu2" -v ns="$ens2" -v pn="$perf_n" -v pc="$perf_cpu" -v hz=99 -v rec="$REC" 'BEGIN {
		# ember: the agent process plus BPF time (per run x runs: every CPU tick while recording)
		bpf = ns * 1e-9 * hz * rec * 2
		e = n ? (c + bpf) * 1000 / n : 0; p = pn ? pc * 1000 / pn : 0
		printf "| CPU s per 1k samples (ember record + BPF vs perf record --call-graph dwarf + perf script) | %.3f | %.3f | %s |\n", e, p, (p > 0 ? sprintf("%.3fx", e / p) : "n/a") }'
	echo
	echo "Rounds (name, ns per run, samples, agent CPU s):"
	sed 's/^/    /' "$OUT/bpf.txt"
} | tee "$OUT/results.md"
