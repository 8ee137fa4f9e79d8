#!/bin/sh
# record_go: a Go program's chain main.main -> goA -> goB -> goHot is whole;
# so is main.main -> leafA -> leafB -> leafHot where leafHot is a frameless
# leaf (frame pointers lose leafB there; the .gopclntab/.debug_frame rows do
# not), in the plain and in the stripped (-s -w) binary.
. "$(dirname "$0")/lib.sh"
require_bpf
require_prog goprog

start_bg "$PROGS/goprog" 60 # ended by the trap; two recordings must fit
pid=$BG_LAST
sleep 0.3
"$EMBER" record --pid "$pid" --duration 4 --output "$OUT/go.folded" 2> "$OUT/record.err" ||
	{ cat "$OUT/record.err"; fail "ember record exited with an error"; }
total=$(total_samples "$OUT/go.folded")
note "samples: $total"
[ "$total" -ge 100 ] || fail "expected >= 100 samples, got $total"
chain="main.main;main.goA;main.goB;main.goHot"
pct=$(share "$OUT/go.folded" "$chain")
note "share of samples with the whole chain: $pct%"
head -n 5 "$OUT/go.folded" | sed 's/^/  | /'
[ "$pct" -ge 80 ] || fail "chain $chain on $pct% of samples, expected >= 80%"

"$EMBER" record --pid "$pid" --duration 2 --format pprof --output "$OUT/go.prof" 2> /dev/null ||
	fail "ember record --format pprof failed"
HOME=${HOME:-/root} GOCACHE=/tmp/ember-gocache go tool pprof -top "$OUT/go.prof" > "$OUT/top.txt" 2>&1 ||
	{ cat "$OUT/top.txt"; fail "go tool pprof rejected the profile"; }
first=$(awk '/flat%/ { getline; print; exit }' "$OUT/top.txt")
echo "$first" | grep -q "main.goHot" || fail "goHot is not the top function: $first"
for prog in goprog goprog_stripped; do
	require_prog "$prog"
	start_bg "$PROGS/$prog" 10 leaf
	lpid=$BG_LAST
	sleep 0.3
	"$EMBER" record --pid "$lpid" --duration 3 --output "$OUT/$prog-leaf.folded" 2> /dev/null ||
		fail "ember record failed on $prog leaf"
	chain="main.main;main.leafA;main.leafB;main.leafHot"
	pct=$(share "$OUT/$prog-leaf.folded" "$chain")
	note "$prog, frameless leaf: whole chain on $pct% of samples"
	[ "$pct" -ge 80 ] || { head -n 3 "$OUT/$prog-leaf.folded"; fail "$prog: $chain on $pct% of samples"; }
	kill "$lpid"
done
exit 0
