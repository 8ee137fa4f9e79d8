#!/bin/sh
# fallbacks: the 5.4-era paths, forced on this kernel, unwind as well:
# bpf_probe_read for bpf_probe_read_user, the top of the task's kernel stack
# for bpf_task_pt_regs, map updates for mmap-able maps.  Each is reported.
. /lib/ember/lib.sh
off=${FALLBACKS:-task_pt_regs,probe_read_user,mmap_maps}
start_bg "$PROGS/unwind_zoo" 600 150
pid=$BG_LAST
sleep 1
record "$OUT/zoo.folded" "$pid" "$(secs 6)" --no-feature $off
grep '^ember: fallback:' "$OUT/zoo.folded.err" | sed 's/^/  /'
# the forced ones (a kernel may lack others, find_vma without BTF say)
n=$(grep -cE "^ember: fallback: profiler: no ($(echo "$off" | tr ',' '|')):" "$OUT/zoo.folded.err")
[ "$n" -eq "$(echo "$off" | tr ',' '\n' | wc -l)" ] || fail "expected a profiler fallback reported for each of $off, got $n"
rooted=$(rooted_permille "$OUT/zoo.folded")
deep=$(deep_samples "$OUT/zoo.folded" 150)
metric "fallback_zoo_samples=$(total_samples "$OUT/zoo.folded") fallback_zoo_rooted_permille=$rooted fallback_zoo_deep150=$deep"
[ "$rooted" -ge 990 ] || fail "with fallbacks, $rooted/1000 of samples end at a root"
[ "$deep" -ge 5 ] || fail "with fallbacks, the deep recursion is whole in $deep samples"
kill "$pid"

start_bg "$PROGS/syscall_chain" 600
pid=$BG_LAST
sleep 0.5
record "$OUT/sys.folded" "$pid" "$(secs 5)" --no-feature $off
set -- $(kernel_share "$OUT/sys.folded" "_start;__libc_start_main;__libc_start_call_main;main;syscall_outer;syscall_inner")
metric "fallback_syscall_kernel_samples=$1 fallback_syscall_chain_pct=$2"
[ "$1" -ge 20 ] || fail "syscall_chain: $1 samples in kernel mode"
[ "$2" -ge 80 ] || { head -n 3 "$OUT/sys.folded"; fail "pt_regs from the task's stack: user chain whole on $2% of kernel-mode samples"; }
exit 0
