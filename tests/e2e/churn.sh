#!/bin/sh
# churn: `ember run` under process churn (tests/programs/churn: 1000 execs a
# second for 60 s, most exiting at once, as a build or a CGI host does).
# Checked from outside the agent:
#   - the kernel's procs map (bpftool, found through the agent's own fds)
#     never fills during the churn, holds only live processes (/proc) after
#     it, and returns to within 10% of its size before (2 entries of slack;
#     processes other users started meanwhile and that still run are not
#     counted against it: a shared host is not quiet); /api/stats agrees
#     with bpftool;
#   - the agent's VmRSS (/proc/PID/status) returns within 10% of its
#     baseline within 60 s of the end of the churn;
#   - a program without frame pointers started after the churn
#     (unwind_zoo) has >= 99% complete stacks in the agent's own data
#     (/api/folded): no [truncated] frame, outermost frame a process or
#     thread root.
# The churn also starts while the agent starts, so its first reads of
# libc and the loader race with exiting processes (defect F): a failure
# there must not cost the later program its libc frames.
# CHURN_RATE and CHURN_SECONDS override the load (defaults 1000 and 60).
. "$(dirname "$0")/lib.sh"
require_bpf
require_prog churn
require_prog churn_child
require_prog unwind_zoo
command -v bpftool > /dev/null || fail "bpftool not installed (scripts/setup-deps.sh installs it)"
command -v curl > /dev/null || fail "curl not installed (scripts/setup-deps.sh installs it)"
rate=${CHURN_RATE:-1000}
seconds=${CHURN_SECONDS:-60}

rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# Pids of $1 (a file of pids) that are not running: gone or zombies.
dead_pids() {
	while read -r p; do
		[ -r "/proc/$p/stat" ] || { echo "$p"; continue; }
		state=$(sed 's/^.*) \(.\).*/\1/' "/proc/$p/stat" 2> /dev/null)
		case "$state" in Z | X | "") echo "$p" ;; esac
	done < "$1"
}

# Pids of $1 (a file of pids) started after $2 (clock ticks since boot).
started_after() {
	while read -r p; do
		start=$(sed 's/^.*) //' "/proc/$p/stat" 2> /dev/null | cut -d' ' -f20)
		[ -n "$start" ] && [ "$start" -gt "$2" ] && echo "$p"
	done < "$1"
}

started_after_one() { echo "$1" > "$OUT/one.pid"; [ -n "$(started_after "$OUT/one.pid" "$2")" ]; }

ticks_now() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%d\n", $1 * hz }' /proc/uptime; }

stat_field() { # stat_field FILE NAME: a number in /api/stats
	sed -n "s/.*\"$2\":\([0-9][0-9]*\).*/\1/p" "$1" | head -n 1
}

# churn while the agent starts (defect F's race), then let it settle
start_bg "$PROGS/churn" "$rate" 5 2
early=$BG_LAST
start_bg "$EMBER" run --db "$OUT/ember.db" --listen 127.0.0.1:0 --frequency 49 --flush 5 \
	--unwind-cache "$OUT/unwind-cache" 2> "$OUT/run.log"
ember=$BG_LAST
wait_for_server "$ember" "$OUT/run.log"
wait "$early"
map=$(procs_map_id "$ember")
[ -n "$map" ] || fail "cannot find the agent's procs map among its fds"
max=$(bpftool -j map show id "$map" | sed -n 's/.*"max_entries":\([0-9]*\).*/\1/p')
note "agent pid $ember at $url, procs map id $map ($max entries)"
sleep 15

# baseline: map size and RSS, averaged over 10 s
sum=0
for i in 1 2 3 4 5; do sum=$((sum + $(rss "$ember"))); sleep 2; done
base_rss=$((sum / 5))
procs_pids "$map" > "$OUT/before.pids"
before=$(wc -l < "$OUT/before.pids")
base_ticks=$(ticks_now)
note "before: $before processes in the procs map, VmRSS $base_rss kB"

"$PROGS/churn" "$rate" "$seconds" > "$OUT/churn.txt" &
churn=$!
peak=0
while kill -0 "$churn" 2> /dev/null; do
	sleep 5
	n=$(procs_pids "$map" | wc -l)
	[ "$n" -gt "$peak" ] && peak=$n
done
wait "$churn" || { cat "$OUT/churn.txt"; fail "the churn driver failed"; }
note "$(cat "$OUT/churn.txt")"
achieved=$(sed -n 's/.*(\([0-9]*\)\/s).*/\1/p' "$OUT/churn.txt")
note "procs map during the churn: at most $peak entries (of $max)"
[ "${achieved:-0}" -ge $((rate / 10)) ] || fail "the churn reached only ${achieved:-0}/s of $rate/s"
[ "$peak" -lt $((max / 4)) ] || fail "the procs map filled up under churn: $peak of $max entries"

# RSS back within 10% of the baseline within 60 s (the first sample that is)
limit=$((base_rss * 110 / 100))
back=""
for i in $(seq 1 30); do
	sleep 2
	r=$(rss "$ember")
	echo "$((i * 2)) $r" >> "$OUT/rss_after.txt"
	if [ "$r" -le "$limit" ]; then
		back="$((i * 2)) s"
		break
	fi
done
note "VmRSS after the churn: $(tail -n 1 "$OUT/rss_after.txt" | cut -d' ' -f2) kB (limit $limit kB), back after ${back:-never}"
[ -n "$back" ] || { cat "$OUT/rss_after.txt"; fail "agent RSS did not return within 10% of $base_rss kB in 60 s"; }

# procs map: only live processes, and back to its size before
procs_pids "$map" > "$OUT/after1.pids"
sleep 3
procs_pids "$map" > "$OUT/after2.pids"
dead_pids "$OUT/after1.pids" | sort > "$OUT/dead1.pids"
dead_pids "$OUT/after2.pids" | sort > "$OUT/dead2.pids"
stale=$(comm -12 "$OUT/dead1.pids" "$OUT/dead2.pids" | wc -l)
after=$(wc -l < "$OUT/after2.pids")
newcomers=$(started_after "$OUT/after2.pids" "$base_ticks" | wc -l)
curl -sf "${url}api/stats" > "$OUT/stats.json" || fail "stats request failed"
api=$(stat_field "$OUT/stats.json" procs_map_entries)
note "after: $after processes in the procs map (API: $api), $stale of them dead for 3 s," \
	"$newcomers started since the baseline and running"
note "lifetime: $(sed -n 's/.*"lifetime":\({[^}]*}\).*/\1/p' "$OUT/stats.json")"
[ "$stale" -eq 0 ] || fail "dead pids left in the procs map: $(comm -12 "$OUT/dead1.pids" "$OUT/dead2.pids" | head -n 5 | tr '\n' ' ')"
# live processes that ran before the churn but were sampled only after it
# (the test's own shells, the build running the tests) join the map
# rightly: they are not counted against it, newcomers neither
sort "$OUT/before.pids" > "$OUT/before.sorted"
sort "$OUT/after2.pids" > "$OUT/after2.sorted"
joined=$(comm -13 "$OUT/before.sorted" "$OUT/after2.sorted" | while read -r p; do
	[ -r "/proc/$p/stat" ] && ! started_after_one "$p" "$base_ticks" && echo "$p"
done | wc -l)
slack=$((before / 10))
[ "$slack" -lt 2 ] && slack=2
[ $((after - newcomers - joined)) -le $((before + slack)) ] ||
	fail "procs map has $after entries after the churn ($newcomers of them new, $joined older live processes sampled since), $before before (slack $slack)"
# the two counts are taken at different moments: processes started or ended
# between them (as many as the newcomers, at least 4) may differ
tol=$((newcomers > 4 ? newcomers : 4))
[ "${api:-x}" -le $((after + tol)) ] && [ "${api:-0}" -ge $((after - tol)) ] 2> /dev/null ||
	fail "/api/stats says $api entries, bpftool counts $after (tolerance $tol)"
tracked=$(stat_field "$OUT/stats.json" tracked)
[ "${tracked:-999999}" -lt 2000 ] || fail "the agent still tracks $tracked processes"

# a program without frame pointers, started after the churn, unwinds whole
"$PROGS/unwind_zoo" 25 100 > /dev/null &
zoo=$!
BG_PIDS="$BG_PIDS $zoo"
sleep 3
from=$(( ($(date +%s) / 10 + 1) * 10 * 1000 )) # the next whole 10 s bucket
sleep 22
wait "$zoo"
sleep 6 # one flush
curl -sf "${url}api/folded?pid=$zoo&from=$from" > "$OUT/zoo.folded" || fail "folded request failed"
total=$(total_samples "$OUT/zoo.folded")
[ "$total" -ge 200 ] || { cat "$OUT/run.log"; fail "too few unwind_zoo samples in the agent's data: $total"; }
truncated=$(grep -F '[truncated]' "$OUT/zoo.folded" > "$OUT/zoo.truncated"; total_samples "$OUT/zoo.truncated")
rooted=$(awk '{ n = $NF; split($1, f, ";");
	if (f[1] ~ /^(_start|__libc_start_main|start_thread|clone3?|__clone3?)$/) ok += n }
	END { print ok + 0 }' "$OUT/zoo.folded")
note "unwind_zoo after the churn: $total samples, $truncated truncated, $rooted rooted"
[ $((truncated * 100)) -le "$total" ] || {
	sort -t' ' -k2 -rn "$OUT/zoo.truncated" | head -n 3
	fail "more than 1% of unwind_zoo's stacks are truncated ($truncated of $total)"
}
[ $((rooted * 100)) -ge $((total * 99)) ] || fail "fewer than 99% of unwind_zoo's stacks reach a root ($rooted of $total)"
grep -q 'zoo_qsort_cmp' "$OUT/zoo.folded" || fail "no stack through libc's qsort"

if grep -q "warning: cannot read ELF" "$OUT/run.log"; then
	grep "warning" "$OUT/run.log" | head -n 5
	fail "files of exiting processes were reported as unreadable"
fi
kill -TERM "$ember"
wait "$ember" || fail "ember run did not exit cleanly"
exit 0
