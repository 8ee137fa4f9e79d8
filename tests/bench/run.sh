#!/bin/bash
# run.sh - Ember's benchmarks, against peers measured in the same run.
#
# Appliance cost: `ember run` profiling the whole host at 19 Hz while two
# copies of tests/programs/fp_chain keep both CPUs busy, against
# `perf record -a -g` (frame pointers) and `perf record --call-graph dwarf`
# over the same workload and duration, each followed by `perf script` (the
# post-processing to symbolized stacks that Ember does online).
# Prints a markdown table (also written to build/bench/results.md), then
# runs unwind.sh, symbolize.sh, query.sh and net.sh (TCP metrics cost).
# Prints a markdown table (also written to build/bench/results.md), then runs
# the unwind, symbolize, query and HTTP benchmarks (tests/bench/*.sh).
#
#   BENCH_SECONDS   length of each measurement (default 60)
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR=${BENCH_SECONDS:-60}
OUT=build/bench
EMBER=build/ember
PROGS=build/progs
rm -rf "$OUT"; mkdir -p "$OUT"
HZ=$(getconf CLK_TCK)
[ "$(id -u)" -eq 0 ] || { echo "bench: needs root (BPF, perf -a)"; exit 1; }

. tests/bench/lib.sh
bench_begin

# keep both CPUs busy for the whole run
for i in 1 2; do "$PROGS/fp_chain" $((DUR * 4 + 60)) > /dev/null & pids+=($!); done
sleep 1

http_get() { # http_get PORT PATH: the body of a GET on 127.0.0.1, with bash's /dev/tcp
	local line body=0
	exec 3<> "/dev/tcp/127.0.0.1/$1" || return 1
	printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3
	while IFS= read -r line <&3 || [ -n "$line" ]; do
		if [ $body = 1 ]; then printf '%s\n' "$line"; elif [ "$line" = $'\r' ]; then body=1; fi
	done
	exec 3<&-
}

cpu_seconds() { # utime+stime of a pid, in seconds
	awk -v hz="$HZ" '{ sub(/^.*\) /, ""); print ($12 + $13) / hz }' "/proc/$1/stat"
}

echo "bench: ember run, ${DUR}s at 19 Hz on every CPU..."
"$EMBER" run --db "$OUT/bench.db" --listen 127.0.0.1:0 --frequency 19 --flush 5 2> "$OUT/run.log" &
ember=$!
pids+=($ember)
sleep 1
url=$(sed -n 's/^ember: serving \(http:[^ ]*\)$/\1/p' "$OUT/run.log")
port=${url##*:}; port=${port%/}
# The second half measures the symbol cache in steady state: no new program
# may start in it (its first sightings are misses), so this script neither
# runs sleep nor curl there; it waits on a FIFO and fetches with bash alone.
fifo="$OUT/wait.fifo"; mkfifo "$fifo"; exec 9<> "$fifo"
pause() { read -r -t "$1" -u 9 || true; }
http_get "$port" /api/stats > /dev/null || true # the same code runs once before
pause $((DUR / 2 - 1))
http_get "$port" /api/stats > "$OUT/stats-half.json" || true
pause $((DUR - DUR / 2))
http_get "$port" /api/stats > "$OUT/stats.json" || true
exec 9<&-
ember_cpu=$(cpu_seconds "$ember")
ember_rss=$(awk '/VmHWM/ { print $2 }' "/proc/$ember/status")
kill -TERM "$ember"; wait "$ember" || true
samples=$(sqlite3 "$OUT/bench.db" 'select sum(count) from samples')
db_bytes=$(cat "$OUT"/bench.db* | wc -c)
run_cnt=$(grep -o '"prog_run_cnt":[0-9]*' "$OUT/stats.json" | cut -d: -f2)
run_ns=$(grep -o '"prog_run_time_ns":[0-9]*' "$OUT/stats.json" | cut -d: -f2)

perf_run() { # name, extra perf args...: times record + script
	local name=$1; shift
	local t0 t1
	echo "bench: perf record $* , ${DUR}s..."
	TIMEFORMAT='%U %S'
	{ time perf record -q -e cpu-clock -F 19 -a "$@" -o "$OUT/$name.data" -- sleep "$DUR" 2> /dev/null; } 2> "$OUT/$name.rec.time"
	{ time perf script -i "$OUT/$name.data" > "$OUT/$name.script" 2> /dev/null; } 2> "$OUT/$name.script.time"
	t0=$(awk '{ print $1 + $2 }' "$OUT/$name.rec.time")
	t1=$(awk '{ print $1 + $2 }' "$OUT/$name.script.time")
	local n
	n=$(awk 'BEGIN { RS = "" } END { print NR }' "$OUT/$name.script") # one paragraph per sample
	echo "$name $t0 $t1 ${n:-0} $(wc -c < "$OUT/$name.data")" >> "$OUT/perf.txt"
}
perf_run perf_fp -g
perf_run perf_dwarf --call-graph dwarf

{
	echo "| what | samples | CPU s (collect + post-process) | CPU ms / 1k samples | ratio to Ember | RSS / data |"
	echo "| --- | --- | --- | --- | --- | --- |"
	ember_per=$(awk -v c="$ember_cpu" -v n="$samples" 'BEGIN { printf "%.2f", c * 1e6 / n }')
	echo "| ember run (BPF CFI + FP unwind, symbolize, SQLite) | $samples | $ember_cpu | $ember_per | 1.0 | RSS $((ember_rss / 1024)) MiB, DB $((db_bytes / 1024)) KiB ($(awk -v b="$db_bytes" -v d="$DUR" 'BEGIN { printf "%.1f", b * 3600 / d / 1048576 }') MiB/h) |"
	while read -r name rec scr n bytes; do
		awk -v name="$name" -v rec="$rec" -v scr="$scr" -v n="$n" -v bytes="$bytes" -v e="$ember_per" 'BEGIN {
			per = n ? (rec + scr) * 1e6 / n : 0
			printf "| %s | %d | %.2f + %.2f | %.2f | %.1fx | data %d KiB |\n", name, n, rec, scr, per, (e > 0 ? per / e : 0), bytes / 1024 }'
	done < "$OUT/perf.txt"
	echo
	echo "Samples per second stored by ember: $(awk -v n="$samples" -v d="$DUR" 'BEGIN { printf "%.1f", n / d }')"
	# symbolizer cache hit rate over the second half (steady state)
	num() { grep -o "\"$2\":[0-9]*" "$1" | head -n 1 | cut -d: -f2; }
	l1=$(num "$OUT/stats-half.json" symcache_lookups); h1=$(num "$OUT/stats-half.json" symcache_hits)
	l2=$(num "$OUT/stats.json" symcache_lookups); h2=$(num "$OUT/stats.json" symcache_hits)
	if [ -n "$l1" ] && [ -n "$l2" ] && [ "$l2" -gt "$l1" ]; then
		echo "Symbol cache hit rate, second half of the run (steady state): $(awk -v a=$((h2 - h1)) -v b=$((l2 - l1)) 'BEGIN { printf "%.3f%% of %d lookups", a * 100 / b, b }')"
	fi
	if [ -n "$run_cnt" ] && [ "$run_cnt" -gt 0 ]; then
		echo "Per-sample BPF cost (frame-pointer stack, kernel BPF stats): $((run_ns / run_cnt)) ns over $run_cnt runs"
	fi
} | tee "$OUT/results.md"
bash tests/bench/unwind.sh
sh tests/bench/symbolize.sh
sh tests/bench/query.sh
sh tests/bench/retention.sh
bash tests/bench/net.sh
sh tests/bench/http.sh
bash tests/bench/spans.sh
