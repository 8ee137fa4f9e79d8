#!/bin/bash
# offcpu.sh - the cost of off-CPU profiling (issue [11]), measured in one run.
#
#   1. `perf bench sched pipe` (two processes ping-ponging through pipes: a
#      context switch per message) in interleaved rounds with no agent
#      ("off"), `ember run` ("cpu": the sampler alone) and `ember run
#      --offcpu` ("offcpu"), default settings (waits >= 1 ms, 1000 walks per
#      CPU per second); the order rotates every round; each measurement
#      follows a short warm-up run in the same mode (the agent's first
#      tables); medians of usecs/op and their ratios.
#   2. BPF time per sched_switch, from the "offcpu" rounds
#      (kernel.bpf_stats_enabled=1: the tracer's run time / switches), and
#      the tracer's counters: walks, rate-limited and short waits.
# Prints markdown (also build/bench/offcpu/results.md).
#
#   BENCH_ROUNDS  rounds (default 5)
#   BENCH_LOOPS   messages per perf bench run (default 100000)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${BENCH_ROUNDS:-5}
LOOPS=${BENCH_LOOPS:-100000}
OUT=$PWD/build/bench/offcpu
EMBER=build/ember
rm -rf "$OUT"; mkdir -p "$OUT"
[ "$(id -u)" -eq 0 ] || { echo "bench: needs root (BPF)"; exit 1; }
command -v perf > /dev/null || { echo "bench: perf missing (make deps)"; exit 1; }

. tests/bench/lib.sh
bench_begin

agent=""
start_agent() { # start_agent MODE: ember run for cpu / offcpu, none for off
	agent=""
	[ "$1" = off ] && return 0
	local extra=()
	[ "$1" = offcpu ] && extra=(--offcpu)
	"$EMBER" run --db "$OUT/$1.db" --listen 127.0.0.1:0 --no-net --no-spans "${extra[@]}" \
		2> "$OUT/run-$1.log" &
	agent=$!
	pids+=("$agent")
	for _ in $(seq 1 600); do # a loaded VM may take a while
		grep -q '^ember: serving' "$OUT/run-$1.log" && break
		sleep 0.1
	done
	grep -q '^ember: serving' "$OUT/run-$1.log" || { cat "$OUT/run-$1.log"; exit 1; }
}

# A short run first, in every mode: the agent loads the tables of perf (a
# new process each time, whose tables the unwind cache keeps) and of every
# process that blocks meanwhile; steady state is what is measured.
warm_up() {
	perf bench sched pipe -l 20000 > /dev/null 2>&1
	sleep 2
}

stop_agent() {
	[ -n "$agent" ] || return 0
	if [ "$1" = offcpu ]; then
		local port
		port=$(sed -n 's/^ember: serving http:\/\/127.0.0.1:\([0-9]*\)\/$/\1/p' "$OUT/run-offcpu.log")
		exec 3<> "/dev/tcp/127.0.0.1/$port"
		printf 'GET /api/stats HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
		sed '1,/^\r$/d' <&3 > "$OUT/stats-$round.json"
		exec 3<&-
	fi
	kill "$agent"
	wait "$agent" 2> /dev/null || true
}

declare -A us
modes=(off cpu offcpu)
for round in $(seq 1 "$ROUNDS"); do
	for i in 0 1 2; do
		m=${modes[$(((i + round) % 3))]}
		start_agent "$m"
		warm_up
		v=$(perf bench sched pipe -l "$LOOPS" 2>&1 | awk '/usecs\/op/ { print $1 }')
		stop_agent "$m"
		us[$m]="${us[$m]:-} $v"
		echo "round $round $m: $v usecs/op" >&2
	done
done

median() { tr ' ' '\n' | grep . | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
off=$(echo "${us[off]}" | median)
cpu=$(echo "${us[cpu]}" | median)
offcpu=$(echo "${us[offcpu]}" | median)

# the tracer's counters over all offcpu rounds
sum() { jq -s "map(.agent.offcpu.$1) | add" "$OUT"/stats-*.json; }
switches=$(sum switches); run_ns=$(sum run_ns); walks=$(sum walks)
limited=$(sum rate_limited); short=$(sum short); blocks=$(sum blocks); recorded=$(sum recorded)
{
	echo "### Off-CPU profiling: perf bench sched pipe ($ROUNDS interleaved rounds of $LOOPS messages, medians)"
	echo
	echo "| mode | usecs/op | vs off | vs cpu |"
	echo "| --- | ---: | ---: | ---: |"
	awk -v o="$off" -v c="$cpu" -v x="$offcpu" 'BEGIN {
		printf "| no agent | %.2f | 1.000 | |\n", o
		printf "| ember run (CPU sampler) | %.2f | %.3f | 1.000 |\n", c, c / o
		printf "| ember run --offcpu | %.2f | %.3f | %.3f |\n", x, x / o, x / c }'
	echo
	echo "Off-CPU tracer over the offcpu rounds (every process on the host): $switches switches,"
	echo "$blocks blocks of user threads, $walks stack walks, $limited over the walk budget,"
	echo "$short waits under 1 ms (not recorded), $recorded recorded."
	awk -v n="$run_ns" -v s="$switches" 'BEGIN { if (s > 0) printf "BPF time per sched_switch: %.0f ns (tracer and walk, kernel.bpf_stats_enabled).\n", n / s }'
} | tee "$OUT/results.md"
