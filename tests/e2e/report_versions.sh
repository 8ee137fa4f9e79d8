#!/bin/sh
# report_versions: two versions of one C++ program (tests/programs/versioned.cpp;
# version 2 renders four times as long) are profiled by a running `ember
# run`; `ember report --baseline previous-version --format json` names the
# slowed function (render_page) first among the regressions, with the
# versions it coincides with, and does not report the functions whose share
# only shrank because render_page grew.  The report is saved in the
# database and served by the UI's API (list, HTML page with its diff links,
# JSON); --fail-on-regression exits 3; bad options exit 2.
. "$(dirname "$0")/lib.sh"
require_bpf
require_prog v1/versioned
require_prog v2/versioned
command -v curl > /dev/null || fail "curl not installed (scripts/setup-deps.sh installs it)"

RUN_S=4 # seconds each version runs
db="$OUT/ember.db"
noenv() { env -u EMBER_SERVICE -u EMBER_VERSION -u OTEL_SERVICE_NAME -u OTEL_RESOURCE_ATTRIBUTES "$@"; }

# usage errors first: exit 2 and a message naming the option
"$EMBER" report --db "$db" --day 2024-13-01 > /dev/null 2> "$OUT/usage.err"
[ $? -eq 2 ] || fail "a bad --day did not exit 2"
grep -q -- "--day" "$OUT/usage.err" || fail "no message naming --day: $(cat "$OUT/usage.err")"
"$EMBER" report --db "$OUT/missing.db" > /dev/null 2> "$OUT/missing.err"
[ $? -eq 1 ] || fail "a missing database did not exit 1"
grep -q "missing.db" "$OUT/missing.err" || fail "no message naming the database"

# env runs ember directly (not through the noenv function, whose subshell
# would get the pid: killing it at exit would leave ember running)
env -u EMBER_SERVICE -u EMBER_VERSION -u OTEL_SERVICE_NAME -u OTEL_RESOURCE_ATTRIBUTES \
	"$EMBER" run --db "$db" --listen 127.0.0.1:0 --frequency 997 --flush 2 2> "$OUT/run.log" &
ember=$!
BG_PIDS="$BG_PIDS $ember"
wait_for_server "$ember" "$OUT/run.log"
note "serving at $url"
sleep 1

noenv "$PROGS/v1/versioned" "$RUN_S" || fail "v1 failed"
# the store knows versions by 10 s bucket: v2 starts in a later one than
# v1, or neither is the other's previous version
sleep $((10 - $(date +%s) % 10 + 1))
noenv "$PROGS/v2/versioned" "$RUN_S" || fail "v2 failed"

# wait until both versions are stored, then one more flush
nver=0
for i in $(seq 1 30); do
	curl -sf "${url}api/services" > "$OUT/services.json" || { sleep 0.5; continue; }
	svc=$(tr -d '\n' < "$OUT/services.json" | sed 's/{"service":/\n&/g' | grep '^{"service":"versioned"')
	nver=$(echo "$svc" | grep -o '"version":"[^"]*"' | sort -u | wc -l)
	[ "$nver" -ge 2 ] && break
	sleep 0.5
done
[ "$nver" -eq 2 ] || { cat "$OUT/services.json"; fail "service versioned has $nver versions, expected 2"; }
sleep 3

# the report reads the database on its own connection: a version the
# server's answer already had may need one more flush to be in its window
for attempt in 1 2 3; do
	"$EMBER" report --db "$db" --from -15m --baseline previous-version --service versioned \
		--format json --output "$OUT/report.json" 2> "$OUT/report.err" ||
		{ cat "$OUT/report.err"; fail "ember report failed"; }
	json=$(tr -d '\n' < "$OUT/report.json")
	echo "$json" | grep -q '"service":"versioned","status":"ok"' && break
	sleep 3
done
cat "$OUT/report.err"
echo "$json" | grep -q '"service":"versioned","status":"ok"' ||
	{ echo "$json" | cut -c1-2000; fail "service versioned not compared"; }
first=$(echo "$json" | grep -o '"regressions":\[{"rank":1,"function":"[^"]*"' | sed 's/.*"function":"//; s/"$//')
note "first regression: $first"
case "$first" in
render_page*) ;;
*) echo "$json" | cut -c1-3000; fail "the slowed function is not named first (got '$first')" ;;
esac
# its numbers: render_page's self share goes from ~0.2 to ~0.5
finding=$(echo "$json" | sed 's/.*"regressions":\[{"rank":1,//; s/},{"rank":.*//; s/\],"new".*//')
delta=$(echo "$finding" | sed -n 's/.*"delta":\([-0-9.e+]*\),.*/\1/p')
note "render_page: delta $delta; $(echo "$finding" | grep -o '"version_base":"[^"]*","version_cur":"[^"]*"')"
awk -v d="$delta" 'BEGIN { exit !(d > 0.15) }' || fail "render_page's change is too small: $delta"
echo "$finding" | grep -q '"version_base":"[^"]*","version_cur":"[^"]*"' ||
	fail "no version change attached to the finding"
echo "$finding" | grep -q '"link":"http://127.0.0.1:7070/#s=versioned&v=' ||
	fail "the finding does not link to the diff view"
# the others only shrank because render_page grew: no improvement is reported
echo "$json" | grep -q '"improvements":\[\]' ||
	{ echo "$json" | grep -o '"improvements":\[[^]]*' | cut -c1-600; fail "dilution reported as improvement"; }
note "suppressed: $(echo "$json" | grep -o '"suppressed":{"total":[0-9]*,"diluted":[0-9]*,"moved":[0-9]*')"

# saved in the database and listed by the UI's API
curl -sf "${url}api/reports" > "$OUT/reports.json" || fail "/api/reports failed"
id=$(sed -n 's/^{"reports":\[{"id":\([0-9]*\),.*/\1/p' "$OUT/reports.json")
[ -n "$id" ] || { cat "$OUT/reports.json"; fail "the report is not listed by /api/reports"; }
curl -sf "${url}api/reports/$id" > "$OUT/report.html" || fail "/api/reports/$id failed"
grep -q "render_page" "$OUT/report.html" || fail "the served report does not name render_page"
grep -q 'href="/#s=versioned&amp;v=' "$OUT/report.html" || fail "the served report has no diff link"
curl -sf "${url}api/reports/report.css" > /dev/null || fail "report.css not served"
curl -sf "${url}api/reports/$id?format=json" | grep -q '"regressions":\[{"rank":1,"function":"render_page' ||
	fail "/api/reports/$id?format=json differs"

# the same as a self-contained HTML file, and the exit status on regressions
"$EMBER" report --db "$db" --from -15m --baseline previous-version --service versioned \
	--no-save --fail-on-regression --ui-url http://ui.example:9999/ --output "$OUT/report.html" \
	2> /dev/null
[ $? -eq 3 ] || fail "--fail-on-regression did not exit 3"
grep -q 'href="http://ui.example:9999/#s=versioned' "$OUT/report.html" || fail "--ui-url not used"
grep -q -i '<script\|stylesheet\| src=' "$OUT/report.html" && fail "the HTML report loads external resources"
note "report: $(wc -c < "$OUT/report.html") bytes of HTML"
exit 0
