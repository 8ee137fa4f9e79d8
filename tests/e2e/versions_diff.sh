#!/bin/sh
# versions_diff: two versions of one C++ program, profiled by a running
# `ember run`, are told apart without any labelling (same executable name =
# one service, different build-ids = two versions); /api/diff between them
# ranks the function version 2 slowed down first with a positive change,
# and an A/A diff of two runs of version 1 shows no change above the noise
# threshold.  Prints the figures.
. "$(dirname "$0")/lib.sh"
require_bpf
require_prog v1/versioned
require_prog v2/versioned
command -v curl > /dev/null || fail "curl not installed (scripts/setup-deps.sh installs it)"

RUN_S=4        # seconds each run
NOISE=0.05     # |change of share| an A/A diff must stay under
db="$OUT/ember.db"
env -u EMBER_SERVICE -u EMBER_VERSION -u OTEL_SERVICE_NAME -u OTEL_RESOURCE_ATTRIBUTES \
	"$EMBER" run --db "$db" --listen 127.0.0.1:0 --frequency 997 --flush 2 2> "$OUT/run.log" &
ember=$!
BG_PIDS="$BG_PIDS $ember"

wait_for_server "$ember" "$OUT/run.log"
note "serving at $url"
sleep 1 # the profiler is attached once the address is printed; let it settle

# run PROG: run it for RUN_S seconds in the foreground (without any
# service/version variables), print its pid
run() {
	env -u EMBER_SERVICE -u EMBER_VERSION -u OTEL_SERVICE_NAME -u OTEL_RESOURCE_ATTRIBUTES \
		"$1" "$RUN_S" &
	p=$!
	wait "$p"
	echo "$p"
}
# warm-up: the first process of a binary may lose the outer (libc) frames
# of its first samples while the profiler builds the binary's unwind tables
# (each run also pauses after a short burst, see versioned.cpp); one short
# run of each binary first, so the measured runs start with tables in place
RUN_S=1 run "$PROGS/v1/versioned" > /dev/null
RUN_S=1 run "$PROGS/v2/versioned" > /dev/null
p1=$(run "$PROGS/v1/versioned")
p2=$(run "$PROGS/v2/versioned")
p3=$(run "$PROGS/v1/versioned")
note "v1 pid $p1, v2 pid $p2, v1 again pid $p3"

# version of a pid's target, once a flush has stored it
version_of() {
	tr '{' '\n' < "$OUT/targets.json" | grep "\"pid\":$1[,}]" |
		sed -n 's/.*"version":"\([^"]*\)".*/\1/p' | head -n 1
}
v1="" v2="" v3=""
for i in $(seq 1 30); do
	sleep 0.5
	curl -sf "${url}api/targets" > "$OUT/targets.json" || continue
	v1=$(version_of "$p1") v2=$(version_of "$p2") v3=$(version_of "$p3")
	[ -n "$v1" ] && [ -n "$v2" ] && [ -n "$v3" ] && break
done
[ -n "$v1" ] && [ -n "$v2" ] && [ -n "$v3" ] ||
	{ cat "$OUT/targets.json"; fail "the three runs are not all among the targets"; }
sleep 3 # the last samples of the last run: one more flush
note "versions: v1 $v1, v2 $v2, v1 again $v3"
[ "$v1" = "$v3" ] || fail "two runs of the same binary got different versions ($v1, $v3)"
[ "$v1" != "$v2" ] || fail "the two builds got the same version ($v1)"

# one service "versioned" holding both versions
curl -sf "${url}api/services" > "$OUT/services.json" || fail "/api/services failed"
svc=$(tr -d '\n' < "$OUT/services.json" | sed 's/{"service":/\n&/g' | grep '^{"service":"versioned"')
[ -n "$svc" ] || { cat "$OUT/services.json"; fail "no service named versioned"; }
nver=$(echo "$svc" | grep -o '"version":"[^"]*"' | sort -u | wc -l)
[ "$nver" -eq 2 ] || { echo "$svc"; fail "service versioned has $nver versions, expected 2"; }
echo "$svc" | grep -q "\"version\":\"$v1\"" || fail "v1 ($v1) not listed"
echo "$svc" | grep -q "\"version\":\"$v2\"" || fail "v2 ($v2) not listed"
note "services: $(echo "$svc" | cut -c1-400)"

# nodes FILE: "delta name" per node of a diff tree (root excluded), largest delta first
nodes() {
	grep -o '{"name":"[^"]*"[^{]*"delta":[-0-9.e+]*' "$1" | grep -v '^{"name":"all"' |
		sed 's/^{"name":"\([^"]*\)".*"delta":\([-0-9.e+]*\)$/\2 \1/' | sort -g -r
}

curl -sf "${url}api/diff?a.service=versioned&a.version=$v1&b.service=versioned&b.version=$v2" \
	> "$OUT/diff.json" || fail "/api/diff v1 -> v2 failed"
nodes "$OUT/diff.json" > "$OUT/diff.txt"
a_total=$(sed -n 's/^{"a_total":\([0-9]*\),"b_total":\([0-9]*\).*/\1/p' "$OUT/diff.json")
b_total=$(sed -n 's/^{"a_total":\([0-9]*\),"b_total":\([0-9]*\).*/\2/p' "$OUT/diff.json")
note "diff v1 -> v2: a_total $a_total, b_total $b_total; largest changes of share:"
head -n 5 "$OUT/diff.txt" | sed 's/^/      /'
tail -n 3 "$OUT/diff.txt" | sed 's/^/      /'
[ "${a_total:-0}" -ge 500 ] && [ "${b_total:-0}" -ge 500 ] ||
	fail "too few samples (a $a_total, b $b_total)"
top=$(head -n 1 "$OUT/diff.txt")
case "$top" in
*" render_page"*) ;;
*) fail "the slowed function does not rank first: $top" ;;
esac
awk -v d="${top%% *}" 'BEGIN { exit !(d > 0.15) }' || fail "render_page's change is too small: $top"

# A/A: the two runs of v1, selected by process: no frame of the diff tree and
# no function of the table changes its share by more than the noise threshold
aa="a.version=$v1&a.pid=$p1&b.version=$v1&b.pid=$p3"
curl -sf "${url}api/diff?$aa" > "$OUT/aa.json" || fail "/api/diff v1 -> v1 failed"
nodes "$OUT/aa.json" > "$OUT/aa.txt"
[ -s "$OUT/aa.txt" ] || { cat "$OUT/aa.json"; fail "empty A/A diff"; }
worst=$(awk '{ d = $1 < 0 ? -$1 : $1; if (d > m) { m = d; n = $0 } } END { print m + 0, n }' "$OUT/aa.txt")
note "A/A diff (pid $p1 vs $p3): largest |change| of a frame $worst (threshold $NOISE)"
awk -v w="${worst%% *}" -v t="$NOISE" 'BEGIN { exit !(w < t) }' ||
	fail "A/A diff above the noise threshold: $worst"
curl -sf "${url}api/top?version=$v1&pid=$p3&base.version=$v1&base.pid=$p1&limit=10000" \
	> "$OUT/aa_top.json" || fail "/api/top A/A failed"
fworst=$(grep -o '"name":"[^"]*"[^}]*"diff_self":[-0-9.e+]*,"diff_total":[-0-9.e+]*' "$OUT/aa_top.json" |
	sed 's/^"name":"\([^"]*\)".*"diff_self":\([-0-9.e+]*\),"diff_total":\([-0-9.e+]*\)$/\2 \3 \1/' |
	awk '{ for (i = 1; i <= 2; i++) { d = $i < 0 ? -$i : $i; if (d > m) { m = d; n = $3 } } }
		END { print m + 0, n }')
note "A/A functions: largest |change| of self or total share $fworst"
awk -v w="${fworst%% *}" -v t="$NOISE" 'BEGIN { exit !(w < t) }' ||
	fail "A/A function above the noise threshold: $fworst"

# and the function table with a base agrees
curl -sf "${url}api/top?service=versioned&version=$v2&base.service=versioned&base.version=$v1&limit=3" \
	> "$OUT/top.json" || fail "/api/top failed"
grep -q '"functions":\[{"name":"render_page' "$OUT/top.json" ||
	{ cat "$OUT/top.json"; fail "render_page is not first in /api/top by diff"; }
note "top by diff: $(cut -c1-300 "$OUT/top.json")"
exit 0
