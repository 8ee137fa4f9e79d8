#!/bin/sh
# report_usability: `ember report` on a young database (issue [13] #8).
# A database filled by tests/tools/fill_db holds the last two hours only:
# the default window (yesterday) has no samples, which the report says,
# naming what the database holds, and saves nothing; --service with an
# unknown name is a usage error naming the known services; a window with
# data is reported and saved; in previous-version mode a service with one
# version shows its samples.  The oracles are the reports and samples
# tables read with the sqlite3 shell.  Needs no BPF.
. "$(dirname "$0")/lib.sh"
command -v sqlite3 > /dev/null || skip "sqlite3 not installed (Debian package sqlite3)"
http_test_db report
saved() { sqlite3 "$DB" 'SELECT count(*) FROM reports'; }

"$EMBER" report --db "$DB" > "$OUT/empty.html" 2> "$OUT/empty.err"; rc=$?
cat "$OUT/empty.err"
[ $rc -eq 0 ] || fail "empty window: exit $rc"
grep -q "no samples between" "$OUT/empty.err" || fail "the empty window is not explained"
grep -q "try --from -[0-9]*h" "$OUT/empty.err" || fail "no hint at the data the database holds"
[ "$(saved)" -eq 0 ] || fail "the empty report was saved ($(saved) saved)"
# the hint works: that window has the data
hint=$(sed -n 's/.*try \(--from -[0-9]*h\).*/\1/p' "$OUT/empty.err")
"$EMBER" report --db "$DB" $hint --no-save > /dev/null 2> "$OUT/hint.err" || fail "the hint $hint fails"
grep -q "no samples between" "$OUT/hint.err" && fail "the hint $hint finds no samples"

"$EMBER" report --db "$DB" --service nosuch > /dev/null 2> "$OUT/nosuch.err"; rc=$?
cat "$OUT/nosuch.err"
[ $rc -eq 2 ] || fail "--service nosuch: exit $rc, expected 2"
grep -q "unknown service" "$OUT/nosuch.err" || fail "--service nosuch: not called unknown"
grep -q "shop" "$OUT/nosuch.err" || fail "--service nosuch: the known services are not named"

"$EMBER" report --db "$DB" --service shop --from -3h --format json > "$OUT/shop.json" 2> "$OUT/shop.err"; rc=$?
cat "$OUT/shop.err"
[ $rc -eq 0 ] || fail "--service shop --from -3h: exit $rc"
[ "$(saved)" -eq 1 ] || fail "a report with data was not saved ($(saved) saved)"
# previous-version: "search" has one version, so it is not compared, but its
# sample count is the one the database holds (it read 0 before), by sqlite3
"$EMBER" report --db "$DB" --from -3h --baseline previous-version --no-save --format json \
	> "$OUT/pv.json" 2> "$OUT/pv.err" || { cat "$OUT/pv.err"; fail "previous-version report failed"; }
want=$(sqlite3 "$DB" "SELECT sum(s.count) FROM samples s JOIN targets t ON t.id = s.target_id
	WHERE t.service = 'search'")
got=$(grep -o '"service":"search","status":"no_baseline"[^[]*"samples":[0-9]*' "$OUT/pv.json" |
	sed 's/.*"samples"://')
[ -n "$want" ] && [ "$want" -gt 0 ] || fail "sqlite3 finds no samples of search"
[ "$got" = "$want" ] || fail "previous-version: search has ${got:-no} samples in the report, $want in the database"
exit 0
