#!/bin/sh
# record_go: a Go program's chain main.main -> goA -> goB -> goHot is whole.
. "$(dirname "$0")/lib.sh"
require_bpf
require_prog goprog

start_bg "$PROGS/goprog" 10
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
exit 0
