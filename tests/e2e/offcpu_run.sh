#!/bin/sh
# offcpu_run: `ember run --offcpu` stores off-CPU profiles beside the CPU
# ones.  The API's type=offcpu selection (folded, flame graph, pprof)
# attributes each wait of offcpu_waits to its stack within 5% of the time
# the program measured itself; type=cpu (the default) holds the spinner's
# CPU and no wait; a database of schema 7 migrates with its rows as cpu
# (test_store_offcpu covers the migration itself); diff and top take
# the type.
. "$(dirname "$0")/lib.sh"
require_bpf
require_prog offcpu_waits

# a walk budget no loaded host exhausts: this test is about storage and the API
# (offcpu_switches checks the budget)
start_ember_run --db "$OUT/ember.db" --flush 1 --offcpu --offcpu-max-walks 20000 --no-net --no-spans
url=${url%/}
grep -q "recording off-CPU profiles" "$OUT/run.log" || { cat "$OUT/run.log"; fail "no off-CPU line"; }

start_bg "$PROGS/offcpu_waits" 5 > "$OUT/truth.txt"
pid=$BG_LAST
for i in $(seq 1 50); do grep -q '^ready' "$OUT/truth.txt" && break; sleep 0.1; done
# the agent is ready for the process (tables, symbols) when main's 50 ms
# waits show with their stack; a loaded host's agent may take a while
for i in $(seq 1 120); do
	curl -sf "$url/api/folded?type=offcpu&pid=$pid" > "$OUT/pre.folded" || fail "GET /api/folded failed"
	grep -q ';main;' "$OUT/pre.folded" && break
	sleep 0.5
done
grep -q ';main;' "$OUT/pre.folded" || { cat "$OUT/pre.folded"; fail "main's waits never showed with their stack"; }
note "agent ready for the process after ${i} polls"
start_ns=$(total_samples "$OUT/pre.folded")
kill -USR1 "$pid"
wait "$pid" || fail "offcpu_waits failed"
sed 's/^/  truth: /' "$OUT/truth.txt"
# until the flushes hold all of the program's waits (it has exited: the
# total stops moving; a loaded host's agent lags)
last=-1
for i in $(seq 1 90); do
	curl -sf "$url/api/folded?type=offcpu&pid=$pid" > "$OUT/off.folded" || fail "GET /api/folded?type=offcpu failed"
	now=$(total_samples "$OUT/off.folded")
	[ "$now" = "$last" ] && [ "$now" != "$start_ns" ] && break
	last=$now
	sleep 2
done
note "stored after ${i} s: $(total_samples "$OUT/off.folded") ns"
curl -sf "$url/api/folded?pid=$pid" > "$OUT/cpu.folded" || fail "GET /api/folded (cpu) failed"
curl -sf "$url/api/flamegraph?type=offcpu&pid=$pid" > "$OUT/fg.json" || fail "GET /api/flamegraph?type=offcpu failed"
curl -sf "$url/api/pprof?type=offcpu&pid=$pid" > "$OUT/off.pb.gz" || fail "GET /api/pprof?type=offcpu failed"
code=$(curl -s -o /dev/null -w '%{http_code}' "$url/api/folded?type=wall")
[ "$code" = 400 ] || fail "type=wall answered $code, not 400"

offcpu_ns() {
	awk -v pat=";$1;" '{ n = $NF; line = $0; sub(/ [0-9]+$/, "", line);
		if (index(line, pat)) t += n } END { printf "%.0f\n", t }' "$2"
}
for fn in sleep_waits hold_lock lock_waits feed_pipe pipe_waits; do
	want=$(sed -n "s/^$fn waits=[0-9]* ns=\([0-9]*\)$/\1/p" "$OUT/truth.txt")
	got=$(offcpu_ns "$fn" "$OUT/off.folded")
	err=$(awk -v a="$got" -v b="$want" 'BEGIN { d = (a - b) / b * 100; if (d < 0) d = -d; printf "%.2f", d }')
	note "$fn: stored off-CPU ${got} ns, measured ${want} ns, off by ${err}%"
	awk -v e="$err" 'BEGIN { exit !(e <= 5) }' || fail "$fn: off by $err% (> 5%)"
	[ "$(offcpu_ns "$fn" "$OUT/cpu.folded")" -lt 1000 ] || note "($fn has CPU samples too: fine, it runs a little)"
done
grep -q '"type":"offcpu","unit":"nanoseconds"' "$OUT/fg.json" || fail "flame graph JSON does not say offcpu/nanoseconds"
total=$(json_num "$OUT/fg.json" total)
[ "$total" -gt 20000000000 ] || fail "off-CPU flame graph total $total ns, expected > 20 s over 5 threads"

# the CPU profile: the spinner, and no nanosecond-sized counts
pct=$(share "$OUT/cpu.folded" ";spin")
note "CPU profile: spin on $pct% of samples, $(total_samples "$OUT/cpu.folded") samples"
[ "$pct" -ge 60 ] || fail "CPU profile: spin on $pct% of samples"
[ "$(total_samples "$OUT/cpu.folded")" -lt 100000 ] || fail "CPU profile holds off-CPU nanoseconds"

HOME=${HOME:-/root} GOCACHE=/tmp/ember-gocache go tool pprof -raw "$OUT/off.pb.gz" > "$OUT/raw.txt" 2>&1 ||
	{ cat "$OUT/raw.txt"; fail "go tool pprof rejected /api/pprof?type=offcpu"; }
sed -n '/^Samples:/{n;p;q}' "$OUT/raw.txt" | grep -q "^off_cpu/nanoseconds *$" ||
	{ head -n 5 "$OUT/raw.txt"; fail "pprof sample type is not off_cpu/nanoseconds"; }
# diff and top take the type: B is the off-CPU profile, A the same selection's CPU one
curl -sf "$url/api/diff?a.pid=$pid&b.pid=$pid&b.type=offcpu" > "$OUT/diff.json" || fail "GET /api/diff failed"
b_total=$(json_num "$OUT/diff.json" b_total)
a_total=$(json_num "$OUT/diff.json" a_total)
note "diff: b_total (offcpu) $b_total, a_total (cpu) $a_total"
[ "$b_total" = "$total" ] || fail "diff b.type=offcpu total $b_total, flame graph $total"
[ "$a_total" -lt 100000 ] || fail "diff a side (cpu) holds nanoseconds: $a_total"
curl -sf "$url/api/top?type=offcpu&pid=$pid&limit=60&sort=total" > "$OUT/top.json" || fail "GET /api/top?type=offcpu failed"
grep -q '"name":"pipe_waits"\|"name":"lock_waits"\|"name":"sleep_waits"' "$OUT/top.json" ||
	fail "top?type=offcpu does not list the waiting functions"
curl -sf "$url/api/stats" > "$OUT/stats.json" || fail "GET /api/stats failed"
grep -o '"offcpu":{[^}]*}' "$OUT/stats.json" | sed 's/^/  /'
grep -q '"offcpu":{"switches":' "$OUT/stats.json" || fail "/api/stats has no offcpu counters"
exit 0
