#!/bin/sh
# report_offcpu: `ember report` compares off-CPU profiles as well as CPU
# ones.  Two versions of one service run tests/programs/offcpu_waits under
# `ember run --offcpu`: version 1 with one sleeper thread, version 2 with
# four, so the share of the service's waiting time spent in sleep_waits
# grows; the spinner's CPU is the same in both.  The report (baseline: the
# previous version) has an off-CPU entry for the service whose first
# regression is sleep_waits, with its shares before and after within 3
# points of what the program timed itself (every wait of every thread,
# main's included), and a CPU entry without sleep_waits among its
# regressions.  --type cpu leaves the off-CPU entry out, --type offcpu
# keeps only it; its diff link opens the off-CPU view (t=offcpu); the HTML
# names it; a bad --type exits 2.
. "$(dirname "$0")/lib.sh"
require_bpf
require_prog offcpu_waits
command -v jq > /dev/null || fail "jq not installed (scripts/setup-deps.sh installs it)"

RUN_S=6
db="$OUT/ember.db"

"$EMBER" report --db "$db" --type wall > /dev/null 2> "$OUT/usage.err"
[ $? -eq 2 ] || fail "a bad --type did not exit 2"
grep -q -- "--type" "$OUT/usage.err" || fail "no message naming --type: $(cat "$OUT/usage.err")"

# a walk budget no loaded host exhausts (waits without a stack would blur the shares)
start_ember_run --db "$db" --flush 1 --frequency 997 --offcpu --offcpu-max-walks 20000 \
	--no-net --no-spans

# run VERSION SLEEPERS: one run of offcpu_waits as service "waits", once the
# agent shows its waits with their stack; its own timings in $OUT/truth-VERSION.txt
run() {
	EMBER_SERVICE=waits EMBER_VERSION=$1 "$PROGS/offcpu_waits" $RUN_S "$2" > "$OUT/truth-$1.txt" &
	pid=$!
	BG_PIDS="$BG_PIDS $pid"
	for i in $(seq 1 50); do grep -q '^ready' "$OUT/truth-$1.txt" && break; sleep 0.1; done
	for i in $(seq 1 120); do
		curl -sf "${url}api/folded?type=offcpu&pid=$pid" | grep -q ';main;' && break
		sleep 0.5
	done
	kill -USR1 "$pid"
	wait "$pid" || fail "offcpu_waits (version $1) failed"
	sed "s/^/  truth v$1: /" "$OUT/truth-$1.txt"
}

# share_of VERSION: sleep_waits' part of all the waiting the program timed
share_of() {
	awk '$2 ~ /^waits=/ { split($3, a, "="); all += a[2]; if ($1 == "sleep_waits") s = a[2] }
		END { printf "%.4f\n", s / all }' "$OUT/truth-$1.txt"
}

run 1 1
# the store knows versions by 10 s bucket: version 2 starts in a later one
sleep $((10 - $(date +%s) % 10 + 1))
run 2 4
want_base=$(share_of 1)
want_cur=$(share_of 2)
note "the program's own timing: sleep_waits is $want_base of the waiting in version 1, $want_cur in version 2"

# report until both versions' off-CPU time is in (the agent flushes every second)
report() { # report OUTPUT [OPTIONS]: JSON report of service waits, previous version as baseline
	_out=$1
	shift
	"$EMBER" report --db "$db" --from -15m --baseline previous-version --service waits \
		--format json --no-save --output "$_out" "$@" 2> "$OUT/report.err" ||
		{ cat "$OUT/report.err"; fail "ember report $* failed"; }
}
off='.services[] | select(.service == "waits" and .type == "offcpu")'
for attempt in $(seq 1 10); do
	sleep 2
	report "$OUT/all.json"
	[ "$(jq -r "$off | .status" "$OUT/all.json")" = ok ] &&
		[ "$(jq -r "$off | .regressions[0].function" "$OUT/all.json")" = sleep_waits ] && break
done
jq -c '.services[] | {service, type, status, note, samples, base_samples,
	regressions: [.regressions[] | {function, metric, delta}]}' "$OUT/all.json"
[ "$(jq -r "$off | .status" "$OUT/all.json")" = ok ] || fail "the off-CPU profiles were not compared"
first=$(jq -r "$off | .regressions[0].function" "$OUT/all.json")
[ "$first" = sleep_waits ] || fail "the first off-CPU regression is '$first', not sleep_waits"
base=$(jq -r "$off | .regressions[0].base.total_share" "$OUT/all.json")
cur=$(jq -r "$off | .regressions[0].cur.total_share" "$OUT/all.json")
note "report: sleep_waits $base -> $cur of the off-CPU time"
close() { awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 0.03) }'; }
close "$base" "$want_base" || fail "base share $base, the program's $want_base"
close "$cur" "$want_cur" || fail "current share $cur, the program's $want_cur"
link=$(jq -r "$off | .regressions[0].link" "$OUT/all.json")
case "$link" in *"#s=waits&t=offcpu&"*) ;; *) fail "the finding's link does not open the off-CPU diff: $link" ;; esac

# the CPU entry of the same service: compared, and the waits are no CPU regression
cpu='.services[] | select(.service == "waits" and .type == "cpu")'
[ -n "$(jq -r "$cpu | .status" "$OUT/all.json")" ] || fail "no CPU entry for the service"
jq -e "[$cpu | .regressions[].function] | index(\"sleep_waits\") == null" "$OUT/all.json" > /dev/null ||
	fail "sleep_waits reported as a CPU regression"
note "CPU entry: $(jq -c "$cpu | {status, samples, base_samples, regressions: [.regressions[].function]}" "$OUT/all.json")"

# one type at a time
report "$OUT/cpu.json" --type cpu
[ "$(jq -r '[.services[].type] | unique | join(",")' "$OUT/cpu.json")" = cpu ] || fail "--type cpu: $(jq -c '[.services[].type]' "$OUT/cpu.json")"
report "$OUT/off.json" --type offcpu
[ "$(jq -r '[.services[].type] | unique | join(",")' "$OUT/off.json")" = offcpu ] || fail "--type offcpu: $(jq -c '[.services[].type]' "$OUT/off.json")"
[ "$(jq -r '.services[0].regressions[0].function' "$OUT/off.json")" = sleep_waits ] || fail "--type offcpu lost the finding"

# the HTML report says which profile each section compares
"$EMBER" report --db "$db" --from -15m --baseline previous-version --service waits --no-save \
	--output "$OUT/report.html" 2> /dev/null || fail "the HTML report failed"
grep -q 'waits (off-CPU)' "$OUT/report.html" || fail "the HTML report does not name the off-CPU section"
grep -q 'one sample is 10 ms of waiting' "$OUT/report.html" || fail "the HTML report does not give the unit"
exit 0
