#!/bin/sh
# http.sh - the HTTP server under 500 parallel flame-graph requests, before
# and after the query thread pool (issue [9], defect C).
#
#   sh tests/bench/http.sh             (from the repository root, after make)
#   BENCH_HOURS=24 BENCH_RATE=400      (the data set of tests/bench/query.sh)
#   BENCH_HTTP_REQUESTS=500            (requests in flight at once)
#   BENCH_HTTP_RANGE_MIN=15            (minutes of the flame graph, the newest ones:
#                                       15 is the UI's shortest range)
#   BENCH_HTTP_ROUNDS=1                (runs per server, alternating; the best p99 counts)
#   BENCH_HTTP_BASE=<commit>           (the "before" server; default: the last
#                                       commit with the single-threaded server)
#
# Both servers are tests/tools/serve_db over the same database (24 h of
# synthetic data written through the store API by tests/bench/query.sh),
# the "before" one built from BENCH_HTTP_BASE with `git archive` + make in
# build/bench/http/base/.  tests/tools/http_clients sends every request at
# once, one connection each, from 50 loopback addresses (10 per address,
# under the per-client limit), and times each from connect until its
# answer: a 200, a 503 (the new server's 30 s bound on waiting for a query
# thread) or the connection closed without one (the old server's idle
# timeout closes accepted connections it has not got round to).  Meanwhile
# another client (127.0.0.2) asks for /api/services five times in a row,
# the first thing the UI asks for.  Prints a markdown table (also
# build/bench/http/results.md): the answers, the 200s per second, the
# p50/p99 until an answer (all requests) and of the 200s, and the other
# client's latency, then the ratios.
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
OUT=$BUILD/bench/http
HOURS=${BENCH_HOURS:-24}
RATE=${BENCH_RATE:-400}
N=${BENCH_HTTP_REQUESTS:-500}
RANGE_MIN=${BENCH_HTTP_RANGE_MIN:-15}
ROUNDS=${BENCH_HTTP_ROUNDS:-1}
BASE=${BENCH_HTTP_BASE:-29677d9cb2d444913e17f85d57655d4c12658344}
DB=$BUILD/bench/query/query-$HOURS-$RATE.db
mkdir -p "$OUT"
ulimit -n 4096 2> /dev/null || true # 500 client sockets and as many server ones

for t in serve_db http_clients; do
	[ -x "$BUILD/tools/$t" ] || make -s "$BUILD/tools/$t"
done
if [ ! -s "$DB" ]; then
	echo "http bench: generating the data set (tests/bench/query.sh)..."
	BENCH_HOURS=$HOURS BENCH_RATE=$RATE sh tests/bench/query.sh > /dev/null
fi

# the "before" server, built once per base commit
base_dir=$OUT/base
if [ "$(cat "$base_dir/COMMIT" 2> /dev/null)" != "$BASE" ] || [ ! -x "$base_dir/build/tools/serve_db" ]; then
	echo "http bench: building the server of $BASE in $base_dir..."
	rm -rf "$base_dir"
	mkdir -p "$base_dir"
	git archive "$BASE" | tar -x -C "$base_dir"
	make -s -C "$base_dir" -j2 build/tools/serve_db > "$OUT/base-build.log" 2>&1 ||
		{ tail -n 20 "$OUT/base-build.log"; exit 1; }
	echo "$BASE" > "$base_dir/COMMIT"
fi

# the newest RANGE_MIN minutes of the data
newest_ns=$(sqlite3 "$DB" 'SELECT max(bucket_ns) FROM sample_totals')
to_ms=$(( newest_ns / 1000000 + 10000 ))
from_ms=$(( to_ms - RANGE_MIN * 60000 ))
path="/api/flamegraph?service=shop&from=$from_ms&to=$to_ms"

pids=""
trap 'for p in $pids; do kill "$p" 2> /dev/null || true; done' EXIT

cpu_seconds() { # utime+stime of a pid, in seconds
	awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print ($12 + $13) / hz }' "/proc/$1/stat"
}

# run NAME SERVE_DB: start it, warm up, load it; appends a line to $OUT/NAME.txt
run() {
	"$2" "$DB" 127.0.0.1:0 > "$OUT/$1.serve.out" 2> "$OUT/$1.serve.err" &
	srv=$!
	pids="$pids $srv"
	port=""
	for i in $(seq 1 100); do
		port=$(sed -n 's/^serving http:\/\/127.0.0.1:\([0-9]*\)\/$/\1/p' "$OUT/$1.serve.out")
		[ -n "$port" ] && break
		sleep 0.1
	done
	[ -n "$port" ] || { cat "$OUT/$1.serve.err"; echo "http bench: $1 did not start"; exit 1; }
	code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port$path")
	if [ "$code" != 200 ]; then
		echo "http bench: $1 answers $code to $path"
		kill "$srv"
		wait "$srv" || true
		return 1
	fi
	cpu0=$(cpu_seconds "$srv")
	"$BUILD/tools/http_clients" load "$port" "$N" "$path" --sources 10-59 \
		--probe /api/services --probe-source 127.0.0.2 | tr '\n' ' ' >> "$OUT/$1.txt"
	echo "cpu_s=$(awk -v a="$cpu0" -v b="$(cpu_seconds "$srv")" 'BEGIN { print b - a }')" >> "$OUT/$1.txt"
	kill "$srv"
	wait "$srv" || true
}

rm -f "$OUT/before.txt" "$OUT/after.txt"
load0=$(cut -d" " -f1 /proc/loadavg)
echo "http bench: $N parallel requests of $path, $ROUNDS rounds per server..."
base_ok=1
for r in $(seq 1 "$ROUNDS"); do
	if [ $base_ok = 1 ]; then
		run before "$base_dir/build/tools/serve_db" || base_ok=0
	fi
	run after "$BUILD/tools/serve_db"
done

# best round of each (most 200s, then lowest p99 until an answer): key=value fields
best() { [ -s "$1" ] && awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
	if (!seen || v["ok"] + 0 > ok + 0 || (v["ok"] + 0 == ok + 0 && v["all_p99_ms"] + 0 < p99 + 0)) {
		ok = v["ok"]; p99 = v["all_p99_ms"]; line = $0; seen = 1 } }
	END { print line }' "$1"; }
field() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

after=$(best "$OUT/after.txt")
before=$( [ $base_ok = 1 ] && best "$OUT/before.txt" || true)
threads=$(sed -n 's/.*threads=\([0-9]*\).*/\1/p' "$OUT/after.serve.err")
{
	echo "$N parallel \`GET $path\` ($RANGE_MIN min of $HOURS h of synthetic data, $(nproc) CPUs, load average $load0 before the run; best of $ROUNDS rounds):"
	echo
	echo "| server | 200 | 503 | no answer | 200s per s | server CPU ms per 200 | until an answer, p50 / p99 ms | 200s, p50 / p99 ms | another client's first \`/api/services\` / slowest of 5, ms |"
	echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
	for side in before after; do
		line=$(eval echo "\$$side")
		[ -n "$line" ] || continue
		name="before: one thread ($(echo "$BASE" | cut -c1-7))"
		[ $side = after ] && name="after: event thread + $threads query threads"
		echo "| $name | $(field "$line" ok) | $(field "$line" busy_503) | $(($(field "$line" failed) + $(field "$line" other_status))) | $(field "$line" ok_per_s) | $(awk -v c="$(field "$line" cpu_s)" -v n="$(field "$line" ok)" 'BEGIN { printf "%.0f", n ? c * 1000 / n : 0 }') | $(field "$line" all_p50_ms) / $(field "$line" all_p99_ms) | $(field "$line" ok_p50_ms) / $(field "$line" ok_p99_ms) | $(field "$line" probe_first_ms) / $(field "$line" probe_max_ms) |"
	done
	echo
	if [ -n "$before" ]; then
		awk -v b50="$(field "$before" all_p50_ms)" -v a50="$(field "$after" all_p50_ms)" \
		    -v b99="$(field "$before" all_p99_ms)" -v a99="$(field "$after" all_p99_ms)" \
		    -v bt="$(field "$before" ok_per_s)" -v at="$(field "$after" ok_per_s)" \
		    -v bp="$(field "$before" probe_first_ms)" -v ap="$(field "$after" probe_first_ms)" 'BEGIN {
			printf "Before / after: until an answer p50 %.1fx, p99 %.1fx; another client'"'"'s first request %.0fx. ", \
				b50 / (a50 > 0 ? a50 : 1), b99 / (a99 > 0 ? a99 : 1), bp / (ap > 0 ? ap : 1)
			printf "After / before: 200s per second %.2fx.\n", at / (bt > 0 ? bt : 1) }'
	else
		echo "No \"before\" figures: the server of $BASE cannot read this database."
	fi
} | tee "$OUT/results.md"
