#!/bin/sh
# cli_usability: what a new user ran into with the command line (issue [13]):
# an output that cannot be written is refused before recording (#4), -v
# works after the command and twice shows libbpf's log (#5), a port in use
# fails `ember run` before it creates the database and its directory (#9),
# `symbolize --json --llvm` is refused, and `record --pid A,B` prefixes
# each stack with its process and pid (#14).
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

# 14. two output styles at once are refused
"$EMBER" symbolize --json --llvm --pid "$pid" 0x1000 > /dev/null 2> "$OUT/e14"; rc=$?
[ $rc -eq 2 ] || fail "symbolize --json --llvm: exit $rc, expected 2"
grep -q -- "--json and --llvm" "$OUT/e14" || fail "symbolize --json --llvm: $(cat "$OUT/e14")"
# two processes: each line names its process and pid (the oracle: the pids started here)
start_bg "$PROGS/fp_chain" 60
pid2=$BG_LAST
"$EMBER" record --pid "$pid,$pid2" --duration 2 -o "$OUT/two.folded" 2> "$OUT/two.err" ||
	fail "record --pid A,B: $(cat "$OUT/two.err")"
grep -q "^fp_chain-$pid;" "$OUT/two.folded" || fail "no line of pid $pid: $(head -n 3 "$OUT/two.folded")"
grep -q "^fp_chain-$pid2;" "$OUT/two.folded" || fail "no line of pid $pid2"
bad=$(grep -v -c "^fp_chain-\($pid\|$pid2\);" "$OUT/two.folded")
[ "$bad" -eq 0 ] || fail "$bad lines without a process prefix: $(grep -v -m 2 "^fp_chain-" "$OUT/two.folded")"
# one pid: no prefix, as before
"$EMBER" record --pid "$pid" --duration 1 -o "$OUT/one.folded" 2> /dev/null || fail "record --pid A failed"
grep -q "^fp_chain-" "$OUT/one.folded" && fail "one pid: a process prefix"

# 9. a port in use: ember run fails first, creating no directory and no database
command -v python3 > /dev/null || skip "python3 not installed (holds a port for the test)"
python3 -c 'import socket,sys,time
s=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(1)
print(s.getsockname()[1], flush=True); time.sleep(60)' > "$OUT/port" &
holder=$!
i=0; while [ $i -lt 100 ] && [ ! -s "$OUT/port" ]; do i=$((i + 1)); sleep 0.1; done
port=$(cat "$OUT/port")
[ -n "$port" ] || fail "no port held"
# the oracle: the kernel says something listens there
ss -ltn "sport = :$port" | grep -q ":$port" || fail "port $port not held"
"$EMBER" run --db "$OUT/missing/dir/x.db" --listen "127.0.0.1:$port" 2> "$OUT/e9"; rc=$?
kill "$holder" 2> /dev/null
[ $rc -ne 0 ] || fail "run on a port in use: exit 0"
grep -q "$port" "$OUT/e9" || fail "message does not name the address: $(cat "$OUT/e9")"
[ ! -e "$OUT/missing" ] || fail "the database directory was created: $(find "$OUT/missing")"
note "port in use: $(cat "$OUT/e9")"
exit 0
