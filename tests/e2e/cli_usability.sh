#!/bin/sh
# cli_usability: what a new user ran into with the command line (issue [13]):
# an output that cannot be written is refused before recording (#4), -v
# works after the command and twice shows libbpf's log (#5).
. "$(dirname "$0")/lib.sh"
require_bpf
require_prog fp_chain

start_bg "$PROGS/fp_chain" 60
pid=$BG_LAST

# 4. a missing output directory: refused at once, one message naming the path
for out in /nonexistent-ember-dir/x.folded /nonexistent-ember-dir/x.pb.gz; do
	t0=$(date +%s)
	"$EMBER" record --pid "$pid" --duration 30 --output "$out" 2> "$OUT/e4"; rc=$?
	t1=$(date +%s)
	[ $rc -ne 0 ] || fail "$out: exit 0"
	[ $((t1 - t0)) -lt 10 ] || fail "$out: failed after $((t1 - t0)) s (recorded before checking the output)"
	grep -q "/nonexistent-ember-dir" "$OUT/e4" || fail "$out: message does not name the path: $(cat "$OUT/e4")"
	[ "$(wc -l < "$OUT/e4")" -eq 1 ] || fail "$out: $(wc -l < "$OUT/e4") error lines: $(cat "$OUT/e4")"
	note "$out: $(cat "$OUT/e4")"
done
[ ! -e /nonexistent-ember-dir ] || fail "the missing directory was created"

# 5. -v after the command is accepted; twice (either side) shows libbpf's debug log
"$EMBER" record -v --pid "$pid" --duration 1 -o "$OUT/v1.folded" 2> "$OUT/v1"; rc=$?
[ $rc -eq 0 ] || fail "record -v: exit $rc: $(tail -n 3 "$OUT/v1")"
grep -q "^libbpf: " "$OUT/v1" && fail "record -v: libbpf's debug log with one -v"
"$EMBER" -v record -v --pid "$pid" --duration 1 -o "$OUT/v2.folded" 2> "$OUT/v2"; rc=$?
[ $rc -eq 0 ] || fail "-v record -v: exit $rc"
grep -q "^libbpf: " "$OUT/v2" || fail "-v -v: no libbpf log: $(head -n 5 "$OUT/v2")"
note "-v -v: $(grep -c '^libbpf: ' "$OUT/v2") libbpf lines"
exit 0
