#!/bin/sh
# run_api: `ember run` profiles the host, flushes to SQLite, and its HTTP API
# returns the workload's stacks; SIGTERM writes the last flush and exits 0.
. "$(dirname "$0")/lib.sh"
require_bpf
require_prog fp_chain
command -v curl > /dev/null || fail "curl not installed (scripts/setup-deps.sh installs it)"

db="$OUT/ember.db"
start_bg "$PROGS/fp_chain" 30
work=$BG_LAST
start_bg "$EMBER" run --db "$db" --listen 127.0.0.1:0 --frequency 49 --flush 2 2> "$OUT/run.log"
ember=$BG_LAST

# the server prints its address once it listens
wait_for_server "$ember" "$OUT/run.log"
note "serving at $url"
case "$url" in http://127.0.0.1:*) ;; *) fail "not listening on loopback: $url" ;; esac

# wait for a flush that includes the workload
target=""
for i in $(seq 1 40); do
	sleep 0.5
	curl -sf "${url}api/targets" > "$OUT/targets.json" || continue
	target=$(tr '{' '\n' < "$OUT/targets.json" | grep "\"pid\":$work[,}]" | sed -n 's/.*"id":\([0-9]*\).*/\1/p' | head -n 1)
	[ -n "$target" ] && break
done
[ -n "$target" ] || { cat "$OUT/targets.json"; cat "$OUT/run.log"; fail "workload pid $work not among the targets"; }
note "workload target id $target"
grep -q '"service":"fp_chain"' "$OUT/targets.json" || fail "target has no service named after the executable"

sleep 2
curl -sf "${url}api/flamegraph?target=$target" > "$OUT/flame.json" || fail "flamegraph request failed"
grep -q 'work::hot_leaf(double)' "$OUT/flame.json" || fail "hot_leaf not in the flame graph"
grep -q 'work::chain_a(double)' "$OUT/flame.json" || fail "chain_a not in the flame graph"
curl -sf "${url}api/pprof?target=$target" > "$OUT/api.pb.gz" || fail "pprof request failed"
HOME=${HOME:-/root} GOCACHE=/tmp/ember-gocache go tool pprof -top "$OUT/api.pb.gz" > "$OUT/top.txt" 2>&1 ||
	{ cat "$OUT/top.txt"; fail "go tool pprof rejected /api/pprof"; }
grep -q "work::hot_leaf" "$OUT/top.txt" || fail "hot_leaf not in pprof -top"
code=$(curl -s -o "$OUT/bad.json" -w '%{http_code}' "${url}api/flamegraph?target=abc")
[ "$code" = 400 ] || fail "bad target parameter: HTTP $code, expected 400"
curl -sf "$url" | grep -q "Ember" || fail "/ does not serve the page"
curl -sf "${url}api/stats" > "$OUT/stats.json" || fail "stats request failed"
note "stats: $(cut -c1-300 "$OUT/stats.json")"

# clean stop: SIGTERM, exit 0, last flush written
before=$(sqlite3 "$db" 'select coalesce(sum(count),0) from samples' 2>/dev/null || echo 0)
kill -TERM "$ember"
wait "$ember"; rc=$?
[ $rc -eq 0 ] || { cat "$OUT/run.log"; fail "ember run exited $rc on SIGTERM"; }
grep -q "stopping" "$OUT/run.log" || fail "no stop message"
after=$(sqlite3 "$db" 'select coalesce(sum(count),0) from samples')
note "samples in the database: $after (before stop: $before)"
[ "$after" -ge "$before" ] && [ "$after" -gt 0 ] || fail "database lost samples ($before -> $after)"
exit 0
