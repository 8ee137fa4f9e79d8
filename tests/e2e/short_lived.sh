#!/bin/sh
# short_lived: processes that exit between two drains still get named
# frames.  Eight fp_chain runs of 0.3 s each, one after another, under
# `ember record --all`: the agent drains once a second, so most of them are
# gone by then; their maps must have been read when they were first sampled.
. "$(dirname "$0")/lib.sh"
require_bpf
require_prog fp_chain

"$EMBER" record --all --frequency 199 --duration 5 --output "$OUT/short.folded" 2> "$OUT/record.err" &
rec=$!
sleep 1
i=0
while [ $i -lt 8 ]; do
	"$PROGS/fp_chain" 0.3 > /dev/null
	i=$((i + 1))
done
wait "$rec" || { cat "$OUT/record.err"; fail "ember record --all failed"; }

grep '^fp_chain;' "$OUT/short.folded" > "$OUT/fp_chain.folded" || true
all=$(total_samples "$OUT/fp_chain.folded")
named=$(grep -F 'main;work::chain_a(double);work::chain_b(double);work::hot_leaf(double)' "$OUT/fp_chain.folded" > "$OUT/named.folded"; total_samples "$OUT/named.folded")
note "fp_chain (8 runs of 0.3 s): $named of $all samples with the whole named chain"
[ "$all" -ge 100 ] || fail "too few fp_chain samples: $all"
[ $((named * 100)) -ge $((all * 90)) ] ||
	fail "only $named of $all samples named; e.g. $(grep -v hot_leaf "$OUT/fp_chain.folded" | sort -t' ' -k2 -rn | head -n 2)"
exit 0
