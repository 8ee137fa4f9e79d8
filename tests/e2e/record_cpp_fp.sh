#!/bin/sh
# record_cpp_fp: `ember record --pid` on a frame-pointer C++ program shows the
# whole chain main -> chain_a -> chain_b -> hot_leaf on most samples, in
# folded form (with DWARF tables and by frame pointers alone) and in pprof
# form (read back by `go tool pprof`).
. "$(dirname "$0")/lib.sh"
require_bpf
require_prog fp_chain

start_bg "$PROGS/fp_chain" 60 # ended by the trap; three recordings must fit, however slow their start
pid=$BG_LAST
sleep 0.3
"$EMBER" record --pid "$pid" --duration 4 --output "$OUT/fp.folded" 2> "$OUT/record.err" ||
	{ cat "$OUT/record.err"; fail "ember record exited $?"; }
cat "$OUT/record.err"
total=$(total_samples "$OUT/fp.folded")
note "samples: $total"
[ "$total" -ge 100 ] || fail "expected >= 100 samples at 99 Hz for 4 s, got $total"
chain="main;work::chain_a(double);work::chain_b(double);work::hot_leaf(double)"
pct=$(share "$OUT/fp.folded" "$chain")
note "share of samples with the whole chain: $pct%"
head -n 5 "$OUT/fp.folded" | sed 's/^/  | /'
[ "$pct" -ge 80 ] || fail "chain $chain on $pct% of samples, expected >= 80%"

# the same by frame pointers alone (no DWARF tables loaded)
"$EMBER" record --pid "$pid" --duration 2 --frame-pointers --stats --output "$OUT/fponly.folded" \
	2> "$OUT/fponly.err" || { cat "$OUT/fponly.err"; fail "ember record --frame-pointers failed"; }
pct=$(share "$OUT/fponly.folded" "$chain")
note "frame pointers only: whole chain on $pct% of samples"
[ "$pct" -ge 80 ] || fail "--frame-pointers: chain on $pct% of samples"
grep -q "cfi_frames *0$" "$OUT/fponly.err" || fail "--frame-pointers still used CFI rows"

"$EMBER" record --pid "$pid" --duration 3 --output "$OUT/fp.pb.gz" 2> "$OUT/record2.err" ||
	{ cat "$OUT/record2.err"; fail "ember record (pprof) failed"; }
command -v go > /dev/null || fail "go not installed (scripts/setup-deps.sh installs golang-go)"
HOME=${HOME:-/root} GOCACHE=/tmp/ember-gocache go tool pprof -top "$OUT/fp.pb.gz" > "$OUT/top.txt" 2>&1 ||
	{ cat "$OUT/top.txt"; fail "go tool pprof rejected the profile"; }
sed -n '1,12p' "$OUT/top.txt" | sed 's/^/  | /'
first=$(awk '/flat%/ { getline; print; exit }' "$OUT/top.txt")
echo "$first" | grep -q "work::hot_leaf" || fail "hot_leaf is not the top function: $first"
exit 0
