#!/bin/bash
# spans.sh - the cost of L7 span tracing (issue [7]), measured in one run.
#
#   1. Throughput at saturation, interleaved rounds: redis-benchmark
#      (-t get,set, 50 clients) and ab -k against nginx (50 clients), with
#      no agent ("off"), `ember run --no-spans` ("profiler") and `ember run`
#      ("spans"); the order of the three rotates every round; medians.
#   2. Cost per event, from the "spans" rounds: BPF run time per program
#      run and per traced syscall (kernel.bpf_stats_enabled=1), the span
#      thread's CPU per span, and the agent's whole CPU per request.
# Servers run from directories under build/bench/spans on free ports.
# Prints markdown (also build/bench/spans/results.md).
#
#   BENCH_ROUNDS    rounds (default 5)
#   BENCH_REQUESTS  redis requests per test per round (default 200000; ab: half)
#   BENCH_BASELINE  another build's ember binary: its `ember run` is a fourth
#                   mode ("baseline") in the same rotation, and its cost per
#                   event is printed beside this build's (before/after a
#                   change, measured under the same load)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${BENCH_ROUNDS:-5}
N=${BENCH_REQUESTS:-200000}
BASELINE=${BENCH_BASELINE:-}
OUT=$PWD/build/bench/spans
EMBER=build/ember
rm -rf "$OUT"; mkdir -p "$OUT/www" "$OUT/tmp"
[ "$(id -u)" -eq 0 ] || { echo "bench: needs root (BPF)"; exit 1; }
for c in redis-server redis-benchmark nginx ab jq; do
	command -v $c > /dev/null || { echo "bench: $c missing (make deps)"; exit 1; }
done
HZ=$(getconf CLK_TCK)

. tests/bench/lib.sh
bench_begin

rport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --dir "$OUT" \
	--logfile "$OUT/redis.log" &
pids+=($!)
nport=$(free_port)
head -c 600 /dev/urandom | base64 > "$OUT/www/index.html"
cat > "$OUT/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $OUT/nginx.pid;
error_log $OUT/nginx-error.log;
events { worker_connections 1024; }
http {
	access_log off;
	keepalive_requests 1000000;
	client_body_temp_path $OUT/tmp; proxy_temp_path $OUT/tmp; fastcgi_temp_path $OUT/tmp;
	uwsgi_temp_path $OUT/tmp; scgi_temp_path $OUT/tmp;
	server { listen 127.0.0.1:$nport; root $OUT/www; }
}
EOF
nginx -c "$OUT/nginx.conf" -p "$OUT" &
pids+=($!)
for _ in $(seq 1 50); do
	redis-cli -p "$rport" ping > /dev/null 2>&1 && curl -sf -o /dev/null "http://127.0.0.1:$nport/" && break
	sleep 0.1
done
redis-cli -p "$rport" ping > /dev/null || { echo "bench: redis-server did not start"; exit 1; }

ember_pid=""
start_agent() { # mode
	ember_pid=""
	[ "$1" = off ] && return
	local extra=() bin=$EMBER
	[ "$1" = profiler ] && extra=(--no-spans)
	[ "$1" = baseline ] && bin=$BASELINE
	rm -f "$OUT"/ember.db*
	"$bin" run --db "$OUT/ember.db" --listen 127.0.0.1:0 --flush 5 "${extra[@]}" 2> "$OUT/ember.log" &
	ember_pid=$!
	for _ in $(seq 1 100); do
		grep -q "^ember: serving" "$OUT/ember.log" &&
			{ [ "$1" = profiler ] || grep -q "tracing L7" "$OUT/ember.log"; } && break
		sleep 0.1
	done
	sleep 1
}

stop_agent() {
	[ -n "$ember_pid" ] || return 0
	kill -TERM "$ember_pid"
	wait "$ember_pid" || true
}

cpu_seconds() { awk -v hz="$HZ" '{ sub(/^.*\) /, ""); print ($12 + $13) / hz }' "/proc/$1/stat"; }

: > "$OUT/rounds.txt"
modes=(off profiler spans)
[ -n "$BASELINE" ] && modes+=(baseline)
nm=${#modes[@]}
for r in $(seq 1 "$ROUNDS"); do
	for k in $(seq 0 $((nm - 1))); do
		mode=${modes[$(((r + k) % nm))]}
		start_agent "$mode"
		cpu0=0
		[ -n "$ember_pid" ] && cpu0=$(cpu_seconds "$ember_pid")
		redis-benchmark -p "$rport" -t get,set -n "$N" -c 50 -q > "$OUT/redis-$r-$mode.txt" 2>&1
		ab -q -k -n $((N / 2)) -c 50 "http://127.0.0.1:$nport/index.html" > "$OUT/ab-$r-$mode.txt" 2>&1
		get=$(sed -n 's/.*GET: \([0-9.]*\) requests per second.*/\1/p' "$OUT/redis-$r-$mode.txt" | tail -n 1)
		set_=$(sed -n 's/.*SET: \([0-9.]*\) requests per second.*/\1/p' "$OUT/redis-$r-$mode.txt" | tail -n 1)
		abr=$(sed -n 's/^Requests per second: *\([0-9.]*\).*/\1/p' "$OUT/ab-$r-$mode.txt")
		echo "$mode $get $set_ $abr" >> "$OUT/rounds.txt"
		if [ "$mode" = spans ] || [ "$mode" = baseline ]; then
			url=$(sed -n 's/^ember: serving \(http:[^ ]*\)$/\1/p' "$OUT/ember.log")
			sleep 6 # the last flush
			curl -sf "${url}api/stats" > "$OUT/stats-$mode-$r.json"
			echo "$(cpu_seconds "$ember_pid") $cpu0" > "$OUT/cpu-$mode-$r.txt"
		fi
		stop_agent
		echo "round $r $mode: redis GET $get/s SET $set_/s, nginx $abr/s"
	done
done

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
col() { awk -v m="$1" -v c="$2" '$1 == m { print $c }' "$OUT/rounds.txt" | median; }
# cost_column MODE: the cost-per-event figures of MODE's rounds, one a line
cost_column() {
	local m=$1
	sum() { jq -s "map($1) | add" "$OUT"/stats-$m-*.json; }
	runs=$(sum .agent.spans.kernel.prog_run_cnt); run_ns=$(sum .agent.spans.kernel.prog_run_time_ns)
	calls=$(sum .agent.spans.kernel.calls); events=$(sum .agent.spans.kernel.data_events)
	lost=$(sum .agent.spans.kernel.data_lost); spans=$(sum .agent.spans.aggregator.spans)
	thread=$(sum .agent.spans.thread_cpu_s)
	agent=$(cat "$OUT"/cpu-$m-*.txt | awk '{ s += $1 - $2 } END { print s }')
	awk -v runs="$runs" -v run_ns="$run_ns" -v calls="$calls" -v events="$events" -v lost="$lost" \
		-v spans="$spans" -v thread="$thread" -v agent="$agent" -v reqs="$reqs" 'BEGIN {
		printf "%d\n%.0f ns\n%d\n%.0f ns\n%d / %d\n%d (%.2f per request)\n", runs, run_ns / runs,
			calls, run_ns / calls, events, lost, spans, spans / reqs
		printf "%.2f us\n%.2f us\n%.2f us\n%.2f us\n%.4f%% of a CPU\n", thread * 1e6 / spans,
			agent * 1e6 / spans, run_ns / 1e3 / reqs, (run_ns / 1e9 + agent) * 1e6 / reqs,
			(run_ns / 1e9 + agent) / reqs * 75 * 100
	}'
}
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
col() { awk -v m="$1" -v c="$2" '$1 == m { print $c }' "$OUT/rounds.txt" | median; }
reqs=$((ROUNDS * (2 * N + N / 2)))
{
	echo "### Throughput at saturation, $ROUNDS interleaved rounds (medians, requests/s)"
	echo
	if [ -n "$BASELINE" ]; then
		echo "| workload | off | profiler (--no-spans) | spans | baseline spans | spans vs off | spans vs profiler | baseline vs off |"
		echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
	else
		echo "| workload | off | profiler (--no-spans) | spans | spans vs off | spans vs profiler |"
		echo "| --- | --- | --- | --- | --- | --- |"
	fi
	for w in "redis GET:2" "redis SET:3" "nginx ab -k:4"; do
		name=${w%%:*}; c=${w##*:}
		o=$(col off "$c"); p=$(col profiler "$c"); s=$(col spans "$c")
		b=0; [ -n "$BASELINE" ] && b=$(col baseline "$c")
		awk -v n="$name" -v o="$o" -v p="$p" -v s="$s" -v b="$b" -v base="$BASELINE" 'BEGIN {
			if (base != "")
				printf "| %s | %.0f | %.0f | %.0f | %.0f | %+.1f%% | %+.1f%% | %+.1f%% |\n", n, o, p, s, b,
					(s - o) * 100 / o, (s - p) * 100 / p, (b - o) * 100 / o
			else
				printf "| %s | %.0f | %.0f | %.0f | %+.1f%% | %+.1f%% |\n", n, o, p, s,
					(s - o) * 100 / o, (s - p) * 100 / p }'
	done
	echo
	echo "### Cost per event (the spans rounds: $reqs requests, each seen by its client and its server)"
	echo
	names="BPF programs run (syscall hooks, all processes)
BPF time per program run
traced socket syscalls (TCP, bytes moved)
BPF time per traced syscall (all runs / traced calls)
data events sent / lost
spans
span thread CPU per span
agent CPU (all threads, profiler included) per span
BPF time per request-response pair
kernel + agent CPU per request-response pair (both sides traced)
the same at 75 requests/s (Beyla anchor: ~0.5% CPU)"
	cost_column spans > "$OUT/cost-spans.txt"
	if [ -n "$BASELINE" ]; then
		cost_column baseline > "$OUT/cost-baseline.txt"
		echo "| figure | this build | baseline |"
		echo "| --- | --- | --- |"
		paste -d '|' <(echo "$names") "$OUT/cost-spans.txt" "$OUT/cost-baseline.txt" |
			awk -F'|' '{ printf "| %s | %s | %s |\n", $1, $2, $3 }'
	else
		echo "| figure | value |"
		echo "| --- | --- |"
		paste -d '|' <(echo "$names") "$OUT/cost-spans.txt" | awk -F'|' '{ printf "| %s | %s |\n", $1, $2 }'
	fi
} | tee "$OUT/results.md"
