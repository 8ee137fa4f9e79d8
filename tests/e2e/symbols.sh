#!/bin/sh
# symbols: what the symbolizer shows in real profiles.
#   - kernel frames of a syscall-heavy program resolve to kernel function names
#   - inline frames appear as frames of their own in folded output, and as
#     several Lines of one Location in pprof (`go tool pprof -traces` shows them)
#   - a stripped Go binary (-ldflags='-s -w') profiles with the same stacks
#     as the unstripped one
#   - vDSO frames are named (clock_gettime) and unwound through to main
#   - `ember symbolize --llvm` prints what llvm-symbolizer --inlining prints,
#     byte for byte, for every 3rd byte of the zoo's C++ functions
. "$(dirname "$0")/lib.sh"
require_bpf
require_prog unwind_zoo
require_prog goprog
require_prog goprog_stripped
require_prog clock_spin
export HOME=${HOME:-/root} GOCACHE=/tmp/ember-gocache

# kernel frames: dd copying /dev/zero to /dev/null in 1-byte blocks lives in read/write
start_bg dd if=/dev/zero of=/dev/null bs=1 count=2000000000
sleep 0.3
"$EMBER" record --pid "$BG_LAST" --duration 3 --output "$OUT/dd.folded" 2> /dev/null ||
	fail "ember record on dd failed"
kill "$BG_LAST"
tr ';' '\n' < "$OUT/dd.folded" | sed 's/ [0-9]*$//' | grep '_\[k\]$' | sort -u > "$OUT/kframes.txt"
named=$(grep -cv '^\[unknown\]\|+0x' "$OUT/kframes.txt")
all=$(wc -l < "$OUT/kframes.txt")
note "kernel frames: $named of $all distinct ones named, e.g. $(grep -m 3 -E 'sys_(read|write)|vfs_(read|write)' "$OUT/kframes.txt" | tr '\n' ' ')"
grep -qE '^(__x64_sys_read|ksys_read|vfs_read|__x64_sys_write|ksys_write|vfs_write)_\[k\]$' "$OUT/kframes.txt" ||
	fail "no read/write syscall frame among the kernel frames"
[ "$named" -eq "$all" ] || fail "unnamed kernel frames: $(grep -E '^\[unknown\]|\+0x' "$OUT/kframes.txt" | head -n 3)"

# inline frames: the zoo is built with -O2 -g; std::sort's helpers are inlined
start_bg "$PROGS/unwind_zoo" 60 # ended by the trap; two recordings must fit
zoo=$BG_LAST
sleep 0.3
"$EMBER" record --pid "$zoo" --duration 3 --output "$OUT/zoo.pb.gz" 2> /dev/null || fail "record pprof failed"
"$EMBER" record --pid "$zoo" --duration 2 --output "$OUT/zoo.folded" 2> /dev/null || fail "record folded failed"
kill "$zoo"
go tool pprof -traces "$OUT/zoo.pb.gz" > "$OUT/traces.txt" 2>&1 || { cat "$OUT/traces.txt"; fail "go tool pprof -traces failed"; }
inl=$(grep -c '(inline)' "$OUT/traces.txt")
note "go tool pprof -traces: $inl inline frame lines, e.g.: $(grep -m 1 '(inline)' "$OUT/traces.txt" | sed 's/^ *//')"
[ "$inl" -gt 0 ] || fail "no inline frames in pprof -traces"
grep -q 'std::__introsort_loop\|std::__insertion_sort\|std::__unguarded_partition' "$OUT/zoo.folded" ||
	fail "std::sort's inlined helpers are not frames in the folded output"

# stripped Go: the same stacks as the unstripped build
for prog in goprog goprog_stripped; do
	start_bg "$PROGS/$prog" 8 leaf
	sleep 0.3
	"$EMBER" record --pid "$BG_LAST" --duration 2 --output "$OUT/$prog.folded" 2> /dev/null ||
		fail "record $prog failed"
	kill "$BG_LAST"
	sort -t' ' -k2 -rn "$OUT/$prog.folded" | head -n 1 | sed 's/ [0-9]*$//' > "$OUT/$prog.top"
	note "$prog: $(cat "$OUT/$prog.top")"
done
cmp -s "$OUT/goprog.top" "$OUT/goprog_stripped.top" || fail "stripped Go binary's top stack differs"
grep -q "main.leafA;main.leafB;main.leafHot" "$OUT/goprog_stripped.top" || fail "stripped Go stack incomplete"
# ember symbolize --llvm against llvm-symbolizer (inline chains, lambdas, clones)
nm -S --defined-only "$PROGS/unwind_zoo" | awk '
	function hex(h,  i, v) { v = 0; for (i = 1; i <= length(h); i++) v = v * 16 + index("0123456789abcdef", substr(h, i, 1)) - 1; return v }
	$3 ~ /^[tT]$/ && $4 ~ /^_Z/ { a = hex($1); n = hex($2); for (x = 0; x < n; x += 3) printf "%x\n", a + x }' \
	> "$OUT/zoo_addrs.txt"
[ "$(wc -l < "$OUT/zoo_addrs.txt")" -gt 100 ] || fail "too few zoo addresses: $(wc -l < "$OUT/zoo_addrs.txt")"
"$EMBER" symbolize --llvm --exe "$PROGS/unwind_zoo" < "$OUT/zoo_addrs.txt" > "$OUT/zoo_ember.txt" ||
	fail "ember symbolize failed"
# (LLVM 14's demangler gives up on a few names GCC's demangles: c++filt them)
sed 's/^/0x/' "$OUT/zoo_addrs.txt" |
	llvm-symbolizer --inlining --demangle --obj="$PROGS/unwind_zoo" | c++filt > "$OUT/zoo_llvm.txt"
note "ember symbolize --llvm vs llvm-symbolizer: $(wc -l < "$OUT/zoo_addrs.txt") addresses, $(diff "$OUT/zoo_ember.txt" "$OUT/zoo_llvm.txt" | grep -c '^<') lines differ"
cmp -s "$OUT/zoo_ember.txt" "$OUT/zoo_llvm.txt" ||
	fail "ember symbolize --llvm differs from llvm-symbolizer: $(diff "$OUT/zoo_ember.txt" "$OUT/zoo_llvm.txt" | head -n 4)"

# the vDSO: named from the agent's own image (its exported functions; its
# internal helpers have no symbol, as for perf), unwound through to main
start_bg "$PROGS/clock_spin" 10
sleep 0.3
"$EMBER" record --pid "$BG_LAST" --duration 2 --output "$OUT/clock.folded" 2> /dev/null ||
	fail "record clock_spin failed"
kill "$BG_LAST"
top=$(sort -t' ' -k2 -rn "$OUT/clock.folded" | head -n 1)
note "clock_spin's heaviest stack: $top"
grep -qE '(^|;)main;spin_on_clock;(.*;)?__vdso_clock_gettime(;| )' "$OUT/clock.folded" ||
	fail "no main;spin_on_clock;...;__vdso_clock_gettime stack: $top"
exit 0
