#!/bin/sh
# record_go: Go's main.main -> goA -> goB -> goHot is whole, and so is the
# chain through a frameless leaf, in the plain and the stripped binary
# (the checks of tests/e2e/record_go.sh).
. /lib/ember/lib.sh
start_bg "$PROGS/goprog" 600
pid=$BG_LAST
sleep 0.5
record "$OUT/go.folded" "$pid" "$(secs 5)"
pct=$(share "$OUT/go.folded" "main.main;main.goA;main.goB;main.goHot")
metric "go_samples=$(total_samples "$OUT/go.folded") go_chain_pct=$pct"
[ "$pct" -ge 80 ] || { head -n 3 "$OUT/go.folded"; fail "goprog: chain on $pct% of samples"; }
kill "$pid"
for prog in goprog goprog_stripped; do
	start_bg "$PROGS/$prog" 600 leaf
	pid=$BG_LAST
	sleep 0.5
	record "$OUT/$prog-leaf.folded" "$pid" "$(secs 4)"
	pct=$(share "$OUT/$prog-leaf.folded" "main.main;main.leafA;main.leafB;main.leafHot")
	metric "${prog}_leaf_chain_pct=$pct"
	[ "$pct" -ge 80 ] || { head -n 3 "$OUT/$prog-leaf.folded"; fail "$prog leaf: chain on $pct% of samples"; }
	kill "$pid"
done
exit 0
