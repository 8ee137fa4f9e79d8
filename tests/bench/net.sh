#!/bin/bash
# net.sh - the cost of the TCP metrics (issue [6]), measured in one run.
#
#   1. nginx throughput at saturation under ab (keep-alive, 1 KiB file),
#      interleaved rounds, each in a new random order and each measurement
#      after a 2 s warm-up: no agent, `ember run --no-net` (profiler only)
#      and `ember run` (profiler + TCP metrics).  The loss that matters is
#      "ember run" against "--no-net": what the net programs add.
#   2. BPF time per send/receive event: kernel BPF stats
#      (kernel.bpf_stats_enabled=1) of the send/receive programs, divided by
#      their runs, and by the TCP events they counted.
#   3. Kernel memory of the net maps at their default sizes (memlock of the
#      map fds, as the kernel charges it).
# Prints markdown (also build/bench/net/results.md).
#
#   BENCH_ROUNDS   interleaved rounds (default 5)
#   BENCH_SECONDS  ab run length per measurement (default 10)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${BENCH_ROUNDS:-5}
DUR=${BENCH_SECONDS:-10}
OUT=$PWD/build/bench/net
EMBER=$PWD/build/ember
rm -rf "$OUT"; mkdir -p "$OUT/www" "$OUT/tmp"
[ "$(id -u)" -eq 0 ] || { echo "bench: needs root (BPF)"; exit 1; }
command -v ab > /dev/null && command -v nginx > /dev/null || { echo "bench: needs nginx and ab (make deps)"; exit 1; }

. tests/bench/lib.sh
bench_begin

port=$(( (RANDOM % 20000) + 20000 ))
head -c 1024 /dev/urandom > "$OUT/www/1k.bin"
cat > "$OUT/nginx.conf" <<CONF
user root;
daemon off;
worker_processes 1;
pid $OUT/nginx.pid;
error_log $OUT/nginx-error.log;
events { worker_connections 1024; }
http {
	access_log off;
	keepalive_requests 1000000;
	client_body_temp_path $OUT/tmp/body;
	proxy_temp_path $OUT/tmp/proxy;
	fastcgi_temp_path $OUT/tmp/fastcgi;
	uwsgi_temp_path $OUT/tmp/uwsgi;
	scgi_temp_path $OUT/tmp/scgi;
	default_type application/octet-stream;
	server { listen 127.0.0.1:$port; root $OUT/www; }
}
CONF
nginx -p "$OUT/" -c "$OUT/nginx.conf" &
pids+=($!)
sleep 1

rps() { # one ab run at saturation: requests per second
	ab -k -q -c 32 -t "$DUR" -n 100000000 "http://127.0.0.1:$port/1k.bin" 2> /dev/null |
		sed -n 's/^Requests per second: *\([0-9.]*\).*/\1/p'
}

start_agent() { # start_agent NAME [ARGS...]: ember run, waits until it serves
	local name=$1; shift
	"$EMBER" run --db "$OUT/$name.db" --listen 127.0.0.1:0 --flush 5 "$@" 2> "$OUT/$name.log" &
	agent=$!
	for _ in $(seq 1 100); do grep -q "serving" "$OUT/$name.log" && break; sleep 0.1; done
	url=$(sed -n 's/^ember: serving \(http:[^ ]*\)$/\1/p' "$OUT/$name.log")
	sleep 2 # start-up work (tables of the running processes) out of the way
}

stop_agent() {
	kill -TERM "$agent"; wait "$agent" || true
}

: > "$OUT/rounds.txt"
measure() { # measure CONFIG ROUND: requests/s of one configuration (after a warm-up)
	case $1 in
	none) ab -k -q -c 32 -t 2 -n 100000000 "http://127.0.0.1:$port/1k.bin" > /dev/null 2>&1; rps ;;
	nonet) start_agent "nonet-$2" --no-net
		ab -k -q -c 32 -t 2 -n 100000000 "http://127.0.0.1:$port/1k.bin" > /dev/null 2>&1
		rps; stop_agent ;;
	net) start_agent "net-$2"
		ab -k -q -c 32 -t 2 -n 100000000 "http://127.0.0.1:$port/1k.bin" > /dev/null 2>&1
		rps
		curl -sf "${url}api/stats" > "$OUT/stats-$2.json" || true
		stop_agent ;;
	esac
}
for r in $(seq 1 "$ROUNDS"); do
	# a new order every round: whatever drifts (other load, caches) is spread
	order=$(printf 'none\nnonet\nnet\n' | shuf)
	echo "bench: round $r/$ROUNDS ($(echo $order))"
	for c in $order; do
		v=$(measure "$c" "$r")
		eval "rps_$c=\${v:-0}"
	done
	echo "$r $rps_none $rps_nonet $rps_net" >> "$OUT/rounds.txt"
done

{
	echo "### nginx under ab -k -c 32, 1 KiB file, ${DUR} s per run, $ROUNDS interleaved rounds"
	echo
	echo "| round | no agent (req/s) | ember --no-net (req/s) | ember with TCP metrics (req/s) | net vs --no-net |"
	echo "| --- | --- | --- | --- | --- |"
	awk '{ printf "| %d | %.0f | %.0f | %.0f | %+.2f%% |\n", $1, $2, $3, $4, ($4 / $3 - 1) * 100 }' "$OUT/rounds.txt"
	awk '{ a += $2; b += $3; c += $4; n++ } END {
		printf "| mean | %.0f | %.0f | %.0f | **%+.2f%%** |\n", a / n, b / n, c / n, (c / b - 1) * 100 }' "$OUT/rounds.txt"
	sort -t' ' -k1,1n "$OUT/rounds.txt" | awk '{ r[NR] = $4 / $3 } END {
		asort(r); printf "\nMedian ratio (with / without the net programs): %.4f (goal: loss <= 2%%)\n", r[int((NR + 1) / 2)] }'
	echo
	stats=$(ls -t "$OUT"/stats-*.json 2> /dev/null | while read -r f; do
		[ -s "$f" ] && echo "$f" && break; done)
	[ -n "$stats" ] || { echo "(no /api/stats answer was read: BPF figures missing)"; exit 0; }
	cnt=$(jq '.agent.net.bpf.io_prog_run_cnt' "$stats")
	ns=$(jq '.agent.net.bpf.io_prog_run_time_ns' "$stats")
	ev=$(jq '.agent.net.bpf.sends + .agent.net.bpf.recvs' "$stats")
	echo "### BPF cost of the send/receive hooks ($(jq -r '.agent.net.hooks.send_recv' "$stats") family), one run"
	echo
	echo "| program runs | TCP events counted | run time | ns per run | ns per TCP event |"
	echo "| --- | --- | --- | --- | --- |"
	awk -v c="$cnt" -v n="$ns" -v e="$ev" 'BEGIN { printf "| %d | %d | %.3f s | %.0f | %.0f |\n", c, e, n / 1e9, n / c, n / e }'
	echo
	echo "Runs include every socket type's sendmsg/recvmsg (the tracepoints fire for UNIX sockets too, filtered first thing)."
	echo
	echo "### Kernel memory of the net maps at default sizes"
	echo
	echo "| map bytes (memlock) | sockets tracked | counters per generation | CPUs |"
	echo "| --- | --- | --- | --- |"
	echo "| $(jq '.agent.net.map_bytes' "$stats") ($(jq '.agent.net.map_bytes / 1048576 * 100 | floor / 100' "$stats") MiB; goal <= 16 MiB) | $(jq '.agent.net.socks_max' "$stats") | $(jq '.agent.net.counts_max' "$stats") | $(nproc) |"
} | tee "$OUT/results.md"
