#!/bin/sh
# record_cpp: C++ and C built without frame pointers unwind whole from the
# DWARF tables (the checks of tests/e2e/unwind_dwarf.sh and record_cpp_fp.sh):
#   - unwind_zoo: >= 99% of stacks end at a root, the 150-deep recursion is
#     whole, every chain through libc, a shared library and a signal frame;
#   - fp_chain_nofp: main -> chain_a -> chain_b -> hot_leaf on >= 80%;
#   - syscall_chain: samples in kernel mode carry their whole user chain.
. /lib/ember/lib.sh
start_bg "$PROGS/unwind_zoo" 600 150
pid=$BG_LAST
sleep 1
record "$OUT/zoo.folded" "$pid" "$(secs 8)"
grep -E "recorded|complete|cfi_frames|fp_frames|no_row|tail_calls" "$OUT/zoo.folded.err" | sed 's/^/  /'
total=$(total_samples "$OUT/zoo.folded")
rooted=$(rooted_permille "$OUT/zoo.folded")
deep=$(deep_samples "$OUT/zoo.folded" 150)
metric "zoo_samples=$total zoo_rooted_permille=$rooted zoo_deep150=$deep"
metric "verifier_insns=$(sed -n 's/^verifier: ember_profile \([0-9]*\) .*ember_unwind_step \([0-9]*\)$/\1+\2/p' "$OUT/zoo.folded.err")"
[ "$total" -ge 100 ] || fail "unwind_zoo: $total samples, expected >= 100"
[ "$rooted" -ge 990 ] || fail "unwind_zoo: $rooted/1000 of samples end at a root (expected >= 990)"
[ "$deep" -ge 5 ] || fail "unwind_zoo: the 150-deep recursion is whole in $deep samples (expected >= 5)"
for chain in zoo_sort_round qsort_r zoo_qsort_cmp "zoo_lib_work;zoo_lib_callback" zoo_signal_handler; do
	grep -q "$chain" "$OUT/zoo.folded" || fail "unwind_zoo: no stack with $chain"
done
kill "$pid"

start_bg "$PROGS/fp_chain_nofp" 600
pid=$BG_LAST
sleep 0.5
record "$OUT/nofp.folded" "$pid" "$(secs 5)"
chain="main;work::chain_a(double);work::chain_b(double);work::hot_leaf(double)"
pct=$(share "$OUT/nofp.folded" "$chain")
metric "nofp_samples=$(total_samples "$OUT/nofp.folded") nofp_chain_pct=$pct"
[ "$pct" -ge 80 ] || { head -n 3 "$OUT/nofp.folded"; fail "fp_chain_nofp: chain on $pct% of samples"; }
kill "$pid"

start_bg "$PROGS/syscall_chain" 600
pid=$BG_LAST
sleep 0.5
record "$OUT/sys.folded" "$pid" "$(secs 5)"
set -- $(kernel_share "$OUT/sys.folded" "_start;__libc_start_main;__libc_start_call_main;main;syscall_outer;syscall_inner")
metric "syscall_kernel_samples=$1 syscall_chain_pct=$2"
[ "$1" -ge 20 ] || fail "syscall_chain: $1 samples in kernel mode, expected >= 20"
[ "$2" -ge 80 ] || { head -n 3 "$OUT/sys.folded"; fail "syscall_chain: user chain whole on $2% of kernel-mode samples"; }
exit 0
