#!/bin/sh
# record_bad_input: clear messages and the right exit codes for bad input.
. "$(dirname "$0")/lib.sh"
require_bpf
require_prog fp_chain

# usage errors: exit 2 with a message naming the option
"$EMBER" record --all --pid 1 -o "$OUT/x" 2> "$OUT/e1"; rc=$?
[ $rc -eq 2 ] || fail "--all with --pid: exit $rc, expected 2"
"$EMBER" record --pid abc -o "$OUT/x" 2> "$OUT/e2"; rc=$?
[ $rc -eq 2 ] && grep -q -- "--pid" "$OUT/e2" || fail "--pid abc: exit $rc, message: $(cat "$OUT/e2")"
"$EMBER" record --pid 1 --format xml -o "$OUT/x" 2> "$OUT/e3"; rc=$?
[ $rc -eq 2 ] && grep -q "xml" "$OUT/e3" || fail "--format xml: exit $rc"

# a pid that does not exist: non-zero, message names it
"$EMBER" record --pid 999999999 --duration 1 -o "$OUT/none.folded" 2> "$OUT/e4"; rc=$?
[ $rc -ne 0 ] || fail "nonexistent pid: exit 0"
grep -q "999999999" "$OUT/e4" || fail "message does not name the pid: $(cat "$OUT/e4")"
note "nonexistent pid: $(head -n 1 "$OUT/e4")"

# a process that exits during the recording: its samples are kept, exit 0, early stop
start_bg "$PROGS/fp_chain" 10 # outlives the start-up (feature probes, loading) on a loaded machine
pid=$BG_LAST
"$EMBER" record --pid "$pid" --duration 20 -o "$OUT/exits.folded" 2> "$OUT/e5"; rc=$?
cat "$OUT/e5"
[ $rc -eq 0 ] || fail "process exiting mid-run: exit $rc"
grep -q "exited" "$OUT/e5" || fail "no message about the process exiting"
[ "$(total_samples "$OUT/exits.folded")" -gt 0 ] || fail "no samples kept"
share=$(share "$OUT/exits.folded" "work::hot_leaf")
[ "$share" -ge 50 ] || fail "samples of the exited process not symbolized ($share% hot_leaf)"

# one live and one missing pid: records the live one, mentions the missing one
start_bg "$PROGS/fp_chain" 10
pid=$BG_LAST
"$EMBER" record --pid "$pid,999999998" --duration 1 -o "$OUT/mixed.folded" 2> "$OUT/e6"; rc=$?
[ $rc -eq 0 ] || fail "live+missing pid: exit $rc"
grep -q "999999998" "$OUT/e6" || fail "missing pid not mentioned"
exit 0
