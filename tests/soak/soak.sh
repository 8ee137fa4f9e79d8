#!/bin/sh
# soak.sh - `ember run` for a long while under process churn, API queries
# and reports; the agent's RSS must stay flat.
#
#   make soak                      (SOAK_MINUTES=30, SOAK_WARMUP=10 by default)
#   SOAK_MINUTES=10 sh tests/soak/soak.sh
#   SOAK_EVALUATE=build/soak/rss.csv sh tests/soak/soak.sh   (the verdict on a CSV)
#
# The workload, in 2-minute cycles: 60 s of churn at 1000 execs/s then 60 s
# at 100/s, and two programs that live for a cycle each (one
# with frame pointers, one without), the UI's queries on the last 5
# minutes every 10 s (flamegraph, top, timeline, folded; targets, stats)
# and `ember report` on the last hour every 5 minutes.  Every 10 s the agent's VmRSS (from
# /proc, not Ember's own figure), the kernel procs map's size (bpftool),
# the agent's tracked processes and loaded ELF files, and the host's load
# average (other activity on the host is profiled too) go to
# build/soak/rss.csv.
#
# After the warm-up the reference is the mean RSS of the first 2 minutes;
# every later sample must be within +-10% of it.  The warm-up is 10
# minutes: the symbolizer's and the unwinder's files of the processes found
# at start (and of the first cycle's programs) are held until they have
# been idle a while, and dropped around minute 8-9 (ELF files 188 -> 71 in
# the run of 2026-12-03 19:14), so a 5-minute warm-up put that peak into
# the reference.  Prints a table and a
# text plot of RSS over time, and exits 1 when RSS left the band.
set -eu
cd "$(dirname "$0")/../.."
MINUTES=${SOAK_MINUTES:-30}
WARMUP=${SOAK_WARMUP:-10}
TEST_OUT=${SOAK_OUT:-build/soak}

# the verdict: every sample after the warm-up within +-10% of the first 2
# minutes' mean, for VmRSS (column 2), and for information its anonymous
# part (heap, column 8) and its file-backed part (the database's mmap, the
# mapped binaries: column 9)
flatness() { # flatness CSV COLUMN LABEL
	awk -F, -v col="$2" -v label="$3" -v warm="$((WARMUP * 60))" 'NR > 1 && $1 >= warm {
			n++; t[n] = $1; r[n] = $col
			if (n == 1) first = $1
			if ($1 < first + 120) { ref += $col; nref++ }
		}
		END {
			if (n == 0) { print "soak: no samples after the warm-up"; exit }
			ref /= nref; min = max = r[1]
			for (i = 1; i <= n; i++) { if (r[i] < min) min = r[i]; if (r[i] > max) max = r[i] }
			for (i = 1; i <= n; i++) { sx += t[i]; sy += r[i]; sxx += t[i] * t[i]; sxy += t[i] * r[i] }
			slope = (n * sxx - sx * sx) ? (n * sxy - sx * sy) / (n * sxx - sx * sx) * 3600 : 0
			ok = max <= ref * 1.10 && min >= ref * 0.90
			printf "soak: %s after a %d min warm-up, %d samples: reference %.1f MiB (mean of the first 2 min), " \
				"min %.1f MiB (%+.1f%%), max %.1f MiB (%+.1f%%), slope %+.2f MiB/h: %s\n",
				label, warm / 60, n, ref / 1024, min / 1024, (min / ref - 1) * 100, max / 1024, (max / ref - 1) * 100,
				slope / 1024, ok ? "FLAT (within +-10%)" : "NOT FLAT"
		}' "$1"
}
if [ -n "${SOAK_EVALUATE:-}" ]; then
	[ -r "$SOAK_EVALUATE" ] || { echo "soak: cannot read $SOAK_EVALUATE" >&2; exit 2; }
	verdict=$(flatness "$SOAK_EVALUATE" 2 VmRSS)
	echo "$verdict"
	case $verdict in *"FLAT (within"*) exit 0 ;; *) exit 1 ;; esac
fi
. tests/e2e/lib.sh # fail, start_bg (stopped at exit), wait_for_server; empties $OUT
[ "$(id -u)" -eq 0 ] || fail "soak: needs root (BPF)"
for p in churn churn_child fp_chain unwind_zoo; do require_prog "$p"; done
# the workload's subshells: their children go with them
cleanup_workload() {
	for p in $BG_PIDS; do pkill -P "$p" 2> /dev/null || true; done
	cleanup
}
trap cleanup_workload EXIT INT TERM

start_bg "$EMBER" run --db "$OUT/soak.db" --listen 127.0.0.1:0 --frequency 49 --flush 5 \
	--unwind-cache "$OUT/unwind-cache" 2> "$OUT/run.log"
ember=$BG_LAST
wait_for_server "$ember" "$OUT/run.log"
# the maps may be opened after the server answers: look for a few seconds
for _ in 1 2 3 4 5 6 7 8 9 10; do
	map=$(procs_map_id "$ember")
	[ -n "$map" ] && break
	sleep 1
done
echo "soak: ember run (pid $ember) at $url for $MINUTES min ($WARMUP min warm-up); procs map $map"
start=$(date +%s)
end=$((start + MINUTES * 60))

# the workload, in the background
(
	trap - EXIT INT TERM # a subshell must not run the cleanup
	while [ "$(date +%s)" -lt "$end" ]; do
		"$PROGS/fp_chain" 120 > /dev/null 2>&1 &
		"$PROGS/unwind_zoo" 120 60 > /dev/null 2>&1 &
		"$PROGS/churn" 1000 60 > /dev/null 2>&1 || true
		"$PROGS/churn" 100 60 > /dev/null 2>&1 || true
		wait
	done
) &
BG_PIDS="$BG_PIDS $!"
(
	trap - EXIT INT TERM # a subshell must not run the cleanup
	while [ "$(date +%s)" -lt "$end" ]; do
		from=$(( ($(date +%s) - 300) * 1000 )) # the last 5 minutes, as the UI's live view
		for q in "flamegraph?from=$from" "top?limit=50&from=$from" "timeline?from=$from" \
			"folded?from=$from" "targets" "stats"; do
			curl -s "${url}api/$q" > /dev/null || true
		done
		sleep 10
	done
) &
BG_PIDS="$BG_PIDS $!"
(
	trap - EXIT INT TERM # a subshell must not run the cleanup
	while [ "$(date +%s)" -lt "$end" ]; do
		sleep 300
		"$EMBER" report --db "$OUT/soak.db" --from -1h --format json --no-save \
			--output "$OUT/report.json" 2>> "$OUT/report.log" || true
		echo "report at $(date +%T): $(wc -c < "$OUT/report.json" 2> /dev/null || echo 0) bytes" >> "$OUT/report.log"
	done
) &
BG_PIDS="$BG_PIDS $!"

echo "t_s,rss_kb,procs_map_entries,tracked,warm,elf_files,loadavg,rss_anon_kb,rss_file_kb" > "$OUT/rss.csv"
while [ "$(date +%s)" -lt "$end" ]; do
	sleep 10
	kill -0 "$ember" 2> /dev/null || { tail "$OUT/run.log"; fail "soak: ember run died"; }
	t=$(($(date +%s) - start))
	rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$ember/status")
	anon=$(awk '/^RssAnon:/ { print $2 }' "/proc/$ember/status")
	file=$(awk '/^RssFile:/ { print $2 }' "/proc/$ember/status")
	entries=$(procs_pids "$map" | wc -l)
	curl -s "${url}api/stats" > "$OUT/stats-now.json" || true
	tracked=$(sed -n 's/.*"tracked":\([0-9]*\).*/\1/p' "$OUT/stats-now.json")
	elf=$(sed -n 's/.*"elf_files":\([0-9]*\).*/\1/p' "$OUT/stats-now.json")
	warm=$([ "$t" -ge $((WARMUP * 60)) ] && echo 1 || echo 0)
	echo "$t,$rss,$entries,${tracked:-},$warm,${elf:-},$(cut -d' ' -f1 /proc/loadavg),$anon,$file" >> "$OUT/rss.csv"
done
curl -s "${url}api/stats" > "$OUT/stats.json" || true
kill -TERM "$ember"
wait "$ember" || true

flatness "$OUT/rss.csv" 2 VmRSS > "$OUT/summary.txt"
flatness "$OUT/rss.csv" 8 "RssAnon (heap)" > "$OUT/summary-parts.txt"
flatness "$OUT/rss.csv" 9 "RssFile (database mmap, binaries)" >> "$OUT/summary-parts.txt"

# a table (one line a minute) with a bar per sample
awk -F, 'NR > 1 && $1 % 60 < 10 { n++; t[n] = $1; r[n] = $2; e[n] = $3; k[n] = $4; f[n] = $6; l[n] = $7
		if ($2 > max) max = $2 }
	END {
		print "| min | VmRSS MiB | procs map | tracked | ELF files | load | |"
		print "| --- | --- | --- | --- | --- | --- | --- |"
		for (i = 1; i <= n; i++) {
			bar = ""; for (j = 0; j < r[i] * 40 / max; j++) bar = bar "#"
			printf "| %d | %.1f | %d | %s | %s | %s | `%s` |\n", t[i] / 60, r[i] / 1024, e[i], k[i], f[i], l[i], bar
		}
	}' "$OUT/rss.csv" > "$OUT/table.md"
cat "$OUT/table.md"
cat "$OUT/summary.txt" "$OUT/summary-parts.txt"
echo "soak: lifetime counters: $(sed -n 's/.*"lifetime":\({[^}]*}\).*/\1/p' "$OUT/stats.json")"
echo "soak: reports: $(grep -c '^report at' "$OUT/report.log" 2> /dev/null || echo 0); CSV in $OUT/rss.csv"
grep -q "FLAT (within" "$OUT/summary.txt"
