#!/bin/sh
# unwind_dwarf: a program built without frame pointers (deep recursion,
# std::sort, a qsort callback, a shared library without frame pointers,
# threads, a signal handler) unwinds in the kernel from DWARF CFI tables:
#   - >= 99% of samples have a stack that ends at the process or thread root
#   - the 150-deep recursion is whole (through tail calls)
#   - every expected chain is there, through libc, the library, the signal frame
#   - frames agree with libunwind on >= 99.9% of decidable snapshots
. "$(dirname "$0")/lib.sh"
require_bpf
require_prog unwind_zoo
[ -x build/tools/validate_unwind ] || fail "build/tools/validate_unwind not built"

start_bg "$PROGS/unwind_zoo" 30 150
pid=$BG_LAST
sleep 0.5
"$EMBER" record --pid "$pid" --duration 5 --output "$OUT/zoo.folded" --stats 2> "$OUT/record.err" ||
	{ cat "$OUT/record.err"; fail "ember record failed"; }
grep -E "recorded|complete|cfi_frames|fp_frames|unsupported|no_row|tail_calls" "$OUT/record.err" | sed 's/^/  /'
total=$(total_samples "$OUT/zoo.folded")
[ "$total" -ge 300 ] || fail "expected >= 300 samples, got $total"

# outermost frame of each stack: the process root or a thread root
rooted=$(rooted_permille "$OUT/zoo.folded")
note "stacks ending at a root: $(echo "$rooted" | sed 's/\(.\)$/.\1/')%"
awk -F';' '{ print $1 }' "$OUT/zoo.folded" | sort | uniq -c | sort -rn | head -n 5 | sed 's/^/  root: /'
[ "$rooted" -ge 990 ] || fail "only $rooted/1000 of samples end at a root (expected >= 990)"

# the deep chain: main -> 150 alternating recurse frames -> zoo_spin
deep=$(deep_samples "$OUT/zoo.folded" 150)
note "samples with the whole 150-frame recursion under _start: $deep"
[ "$deep" -ge 20 ] || fail "the deep recursion is not whole in enough samples ($deep)"

for chain in "zoo_sort_round" "qsort_r" "zoo_qsort_cmp" "zoo_lib_work;zoo_lib_callback" \
	"zoo_signal_handler"; do
	pct=$(share "$OUT/zoo.folded" "$chain")
	note "chain $chain: $pct%"
	grep -q "$chain" "$OUT/zoo.folded" || fail "no stack with $chain"
done
# the signal handler's stack continues past the signal frame into the interrupted code
grep "zoo_signal_handler" "$OUT/zoo.folded" | grep -q "^_start;\|^start_thread;\|^clone3;" ||
	fail "signal handler stacks do not reach a root"

# frame by frame against libunwind on snapshots of the same samples
build/tools/validate_unwind --pid "$pid" --duration 4 --min-agreement 99.9 > "$OUT/validate.txt" 2>&1
rc=$?
tail -n 12 "$OUT/validate.txt" | sed 's/^/  /'
[ $rc -eq 0 ] || fail "agreement with libunwind below 99.9%"
exit 0
