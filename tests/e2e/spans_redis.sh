#!/bin/sh
# spans_redis: Redis spans under redis-benchmark -t get,set -n N, one
# command per round trip and pipelined 16 deep (-P 16).  The oracle is the
# benchmark's N: GET and SET spans of the server and of each benchmark
# process must be N within 1%.  Run twice: with the default hooks and
# transport (syscall tracepoints, ring buffer), then with the fallbacks
# forced (raw sys_exit, perf buffers).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/spans.inc"
require_bpf
command -v redis-server > /dev/null || fail "redis-server not installed (scripts/setup-deps.sh installs it)"
command -v redis-benchmark > /dev/null || fail "redis-benchmark not installed (Debian package redis-tools)"

N=20000
port=$(free_port)
start_bg redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$OUT" \
	--logfile "$OUT/redis.log"
server=$BG_LAST
for i in $(seq 1 50); do
	redis-cli -p "$port" ping > /dev/null 2>&1 && break
	sleep 0.1
done

# bench ARGS...: run redis-benchmark, check its client spans, print its pid
bench() {
	redis-benchmark -p "$port" -t get,set -n $N -q "$@" > "$OUT/bench.txt" 2>&1 &
	b=$!
	wait $b || { cat "$OUT/bench.txt"; fail "redis-benchmark $* failed"; }
	for cmd in GET SET; do
		got=$(settle "pid=$b&protocol=redis" ".rows[] | select(.endpoint == \"$cmd\") | .count")
		note "redis-benchmark $* (pid $b): $got client $cmd spans"
		within "${got:-0}" $N 1 || fail "client $cmd spans: ${got:-0}, expected $N ($*)"
	done
	errors=$(spans_json "pid=$b&protocol=redis" | jq -r '[.rows[].errors] | add')
	[ "$errors" = 0 ] || fail "$errors client errors"
}

# server_count CMD: the server's spans of CMD so far
server_count() {
	spans_json "pid=$server&protocol=redis&role=server" |
		jq -r "[.rows[] | select(.endpoint == \"$1\") | .count] | add // 0"
}

for mode in default fallback; do
	if [ $mode = default ]; then
		start_ember
	else
		rm -f "$OUT/ember.db"*
		start_ember --force-perfbuf --spans-hooks raw
		grep -q "raw_tracepoint hooks and perfbuf" "$OUT/ember.log" || fail "fallbacks not used"
	fi
	bench
	bench -P 16
	for cmd in GET SET; do
		got=$(server_count $cmd)
		note "$mode: redis-server $got $cmd spans"
		within "$got" $((2 * N)) 1 || fail "server $cmd spans: $got, expected $((2 * N)) ($mode)"
	done
	lost=$(span_stat kernel.data_lost)
	note "$mode: kernel $(curl -sf "${URL}api/stats" | jq -c '.agent.spans.kernel | {calls, data_events, data_lost, ctl_lost, perf_lost}')"
	note "$mode: tracker $(curl -sf "${URL}api/stats" | jq -c '.agent.spans.tracker | {spans, desync, unanswered, unmatched, lost}')"
	stop_ember
done
exit 0
