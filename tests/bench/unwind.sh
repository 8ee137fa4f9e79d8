#!/bin/bash
# unwind.sh - DWARF unwinding benchmarks (issue [2]), against perf in the same run.
#
#   1. table compile time and bytes per row: libc, libstdc++, libLLVM-14
#   2. per-sample BPF cost (kernel BPF stats: run_time_ns / run_cnt) for a
#      frame-pointer stack, and 20- and 60-deep CFI stacks
#   3. stack completeness on the FP-less zoo program, Ember vs
#      `perf record --call-graph dwarf`, and the CPU each spends per sample
#      (profiler process + BPF + post-processing to symbolized stacks)
# Prints markdown; BENCH_SECONDS sets the recording length (default 10).
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR=${BENCH_SECONDS:-10}
OUT=build/bench/unwind
EMBER=build/ember
PROGS=build/progs
rm -rf "$OUT"; mkdir -p "$OUT"
HZ=$(getconf CLK_TCK)
old_stats=$(sysctl -n kernel.bpf_stats_enabled)
sysctl -qw kernel.bpf_stats_enabled=1
trap 'sysctl -qw kernel.bpf_stats_enabled=$old_stats' EXIT

echo "### Table compile (ember ehframe --repeat 20: first compile in a fresh process, best warm)"
echo
echo "| file | .eh_frame bytes | FDEs | rows | compiler bytes/row | first ms | warm ms |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for f in /lib/x86_64-linux-gnu/libc.so.6 /lib/x86_64-linux-gnu/libstdc++.so.6 \
	/usr/lib/llvm-14/lib/libLLVM-14.so.1; do
	[ -r "$f" ] || continue
	"$EMBER" ehframe --repeat 20 "$f" > "$OUT/ehframe.txt"
	first=$(sed -n 's/^compile: first \([0-9.]*\) ms.*/\1/p' "$OUT/ehframe.txt")
	best=$(sed -n 's/.*best of [0-9]* \([0-9.]*\) ms.*/\1/p' "$OUT/ehframe.txt")
	eh=$(sed -n 's/.*\.eh_frame \([0-9]*\) bytes.*/\1/p' "$OUT/ehframe.txt")
	fdes=$(sed -n 's/^fdes: \([0-9]*\).*/\1/p' "$OUT/ehframe.txt")
	rows=$(sed -n 's/.* rows: \([0-9]*\).*/\1/p' "$OUT/ehframe.txt")
	bpr=$(sed -n 's/.*(\([0-9]*\) per row).*/\1/p' "$OUT/ehframe.txt")
	echo "| $(basename "$f") | $eh | $fdes | $rows | $bpr | $first | $best |"
done
echo
echo "In the kernel's maps rows are packed to 4 bytes (ember record --stats prints bytes per row, index and rules included)."
echo

cpu_of() { awk -v hz="$HZ" '{ sub(/^.*\) /, ""); print ($12 + $13) / hz }' "/proc/$1/stat"; }

# per-sample cost: ember record --stats prints run_time_ns / run_cnt
cost() { # label, program args...
	local label=$1; shift
	"$@" > /dev/null &
	local pid=$!
	sleep 0.3
	local fp=""
	case "$label" in *--frame-pointers*) fp=--frame-pointers ;; esac
	"$EMBER" record --pid "$pid" --duration "$DUR" --stats $fp -o "$OUT/cost.folded" 2> "$OUT/cost.err" || true
	kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
	local ns depth
	ns=$(sed -n 's/.*per_sample_cost *\([0-9]*\) ns.*/\1/p' "$OUT/cost.err")
	depth=$(awk '{ n = split($1, f, ";"); d += n * $NF; t += $NF } END { printf "%.0f", t ? d / t : 0 }' "$OUT/cost.folded")
	echo "| $label | $depth | ${ns:-?} |"
}
echo "### Per-sample BPF cost (kernel.bpf_stats_enabled, ${DUR}s at 99 Hz)"
echo
echo "| stack | mean frames | ns per sample |"
echo "| --- | --- | --- |"
# the peer: bpftrace's ustack (frame pointers, bpf_get_stackid) on the same program
"$PROGS/fp_chain" $((DUR + 5)) > /dev/null &
fpw=$!
timeout $((DUR + 2)) bpftrace -e "profile:hz:99 /pid == $fpw/ { @[ustack(perf)] = count(); }" > /dev/null 2>&1 &
bt=$!
sleep "$DUR"
bt_stats=$(bpftool prog show 2>/dev/null | awk '/perf_event/ && /name 99/ { for (i = 1; i <= NF; i++) { if ($i == "run_time_ns") t = $(i + 1); if ($i == "run_cnt") c = $(i + 1) } } END { if (c) printf "%d", t / c }')
wait "$bt" 2>/dev/null || true
kill "$fpw" 2>/dev/null; wait "$fpw" 2>/dev/null || true
echo "| bpftrace ustack (frame pointers, fp_chain) | 7 | ${bt_stats:-?} |"
cost "Ember, frame pointers (fp_chain, --frame-pointers)" "$PROGS/fp_chain" $((DUR + 5))
cost "CFI, 20 deep (unwind_zoo solo)" "$PROGS/unwind_zoo" $((DUR + 5)) 17 solo
cost "CFI, 60 deep (unwind_zoo solo)" "$PROGS/unwind_zoo" $((DUR + 5)) 57 solo
cost "CFI, 150 deep (unwind_zoo solo)" "$PROGS/unwind_zoo" $((DUR + 5)) 147 solo
echo

rooted() { # folded file -> "rooted% of N"
	awk '{ n = $NF; t += n; split($1, f, ";");
		if (f[1] ~ /^(_start|__libc_start_main|start_thread|clone3?|__clone3?)$/) ok += n }
		END { printf "%.1f%% of %d", t ? ok * 100 / t : 0, t }' "$1"
}
deep() { # folded file -> samples with the whole 150-frame recursion
	awk '{ c = gsub(/zoo_recurse_[ab]/, "&"); if (c >= 150) n += $NF } END { print n + 0 }' "$1"
}

echo "### Completeness and CPU per sample on unwind_zoo (FP-less, threads, 150-deep recursion)"
echo
echo "| profiler | samples ending at a root | samples with the whole 150-deep chain | CPU ms per 1k samples |"
echo "| --- | --- | --- | --- |"
"$PROGS/unwind_zoo" $((DUR + 5)) 150 > /dev/null &
zoo=$!
sleep 0.3
TIMEFORMAT='%U %S'
{ time "$EMBER" record --pid "$zoo" --duration "$DUR" --stats -o "$OUT/ember.folded" 2> "$OUT/ember.err"; } 2> "$OUT/ember.time"
wait "$zoo" 2>/dev/null || true
ecpu=$(awk '{ print $1 + $2 }' "$OUT/ember.time")
bpf_ns=$(sed -n 's/.*per_sample_cost *\([0-9]*\) ns.*/\1/p' "$OUT/ember.err")
en=$(awk '{ t += $NF } END { print t + 0 }' "$OUT/ember.folded")
eper=$(awk -v c="$ecpu" -v n="$en" -v b="${bpf_ns:-0}" 'BEGIN { printf "%.1f", (c * 1e6 / n) + b / 1000 }')
echo "| ember record (BPF CFI unwind) | $(rooted "$OUT/ember.folded") | $(deep "$OUT/ember.folded") | $eper (incl. BPF ${bpf_ns:-?} ns/sample) |"

{ time perf record -q -e cpu-clock -F 99 --call-graph dwarf -o "$OUT/perf.data" -- "$PROGS/unwind_zoo" "$DUR" 150 > /dev/null 2>&1; } 2> "$OUT/perf.rec.time"
{ time perf script -i "$OUT/perf.data" -F comm,tid,ip,sym > "$OUT/perf.script" 2>/dev/null; } 2> "$OUT/perf.script.time"
# perf script: a sample is a header line then frames leaf first; fold root first
awk 'BEGIN { RS = ""; FS = "\n" } {
	s = ""; for (i = NF; i >= 2; i--) { split($i, a, " "); fn = a[2]; sub(/\+0x[0-9a-f]+$/, "", fn); s = s (s ? ";" : "") fn }
	c[s]++ } END { for (k in c) print k, c[k] }' "$OUT/perf.script" > "$OUT/perf.folded"
pcpu=$(cat "$OUT/perf.rec.time" "$OUT/perf.script.time" | awk '{ t += $1 + $2 } END { print t }')
pn=$(awk '{ t += $NF } END { print t + 0 }' "$OUT/perf.folded")
pper=$(awk -v c="$pcpu" -v n="$pn" 'BEGIN { printf "%.1f", n ? c * 1e6 / n : 0 }')
echo "| perf --call-graph dwarf (8 KiB stack copies) | $(rooted "$OUT/perf.folded") | $(deep "$OUT/perf.folded") | $pper ($(awk -v p="$pper" -v e="$eper" 'BEGIN { printf "%.1fx", (e > 0 ? p / e : 0) }') Ember's) |"
