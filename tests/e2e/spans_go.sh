#!/bin/sh
# spans_go: server spans of a Go 1.19 net/http server (tests/programs/gohttp)
# under ab, three endpoints: fast, CPU-heavy (~20 ms) and failing (500).
# Oracle: ab's counts per endpoint and status.  Also: the heavy requests
# are slower in the RED table, and, over a 10 ms slow threshold, every one
# is in /api/spans/slow with its text (light ones only when delayed), unless
# the slow list of a flush overflowed (counted: aggregator.slow_dropped).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/spans.inc"
require_bpf
require_prog gohttp
command -v ab > /dev/null || fail "ab not installed (Debian package apache2-utils)"

port=$(free_port)
start_ember --slow-threshold 10
start_bg "$PROGS/gohttp" "127.0.0.1:$port"
server=$BG_LAST
for i in $(seq 1 50); do
	curl -s -o /dev/null "http://127.0.0.1:$port/light/0" && break
	sleep 0.1
done

ab -q -k -n 2000 -c 4 "http://127.0.0.1:$port/light/7" > "$OUT/ab-light.txt" 2>&1 &
a=$!
ab -q -n 60 -c 2 "http://127.0.0.1:$port/heavy/3" > "$OUT/ab-heavy.txt" 2>&1 &
b=$!
ab -q -n 300 -c 2 "http://127.0.0.1:$port/fail/12" > "$OUT/ab-fail.txt" 2>&1 &
c=$!
wait $a && wait $b && wait $c || fail "ab failed"
light=$(sed -n 's/^Complete requests: *//p' "$OUT/ab-light.txt")
heavy=$(sed -n 's/^Complete requests: *//p' "$OUT/ab-heavy.txt")
failed=$(sed -n 's/^Non-2xx responses: *//p' "$OUT/ab-fail.txt")
note "ab: $light light, $heavy heavy, $failed failed"

q="pid=$server&protocol=http&role=server"
settle "$q" '[.rows[].count] | add // 0' > /dev/null
spans_json "$q" > "$OUT/red.json"
jq -c '.rows[] | {endpoint, count, errors, statuses, p50_ms, p99_ms}' "$OUT/red.json"
row() { jq -r ".rows[] | select(.endpoint == \"$1\") | .$2" "$OUT/red.json"; }
within "$(row 'GET /light/{id}' 'statuses["200"]')" "$light" 0.5 || fail "light spans differ from ab's $light"
within "$(row 'GET /heavy/{id}' 'statuses["200"]')" "$heavy" 0.5 || fail "heavy spans differ from ab's $heavy"
within "$(row 'GET /fail/{id}' 'statuses["500"]')" "$failed" 0.5 || fail "500 spans differ from ab's $failed"
within "$(row 'GET /fail/{id}' 'errors')" "$failed" 0.5 || fail "500s are server errors"
hp50=$(row 'GET /heavy/{id}' p50_ms)
lp50=$(row 'GET /light/{id}' p50_ms)
awk -v h="$hp50" -v l="$lp50" 'BEGIN { exit !(h >= 5 && h > 10 * l) }' ||
	fail "heavy p50 $hp50 ms is not well above light p50 $lp50 ms"

curl -sf "${URL}api/spans/slow?pid=$server&from=$T0&limit=1000" > "$OUT/slow.json" || fail "slow spans request failed"
nslow=$(jq '.spans | length' "$OUT/slow.json")
jq -c '.spans[0]' "$OUT/slow.json"
[ "$nslow" -ge 1 ] || fail "no slow spans"
jq -e '[.spans[] | select(.endpoint == "GET /heavy/{id}" and .text == "GET /heavy/3")] | length > 0' \
	"$OUT/slow.json" > /dev/null || fail "heavy requests not among the slow spans"
hslow=$(jq '[.spans[] | select(.endpoint == "GET /heavy/{id}")] | length' "$OUT/slow.json")
lslow=$(jq '[.spans[] | select(.endpoint == "GET /light/{id}")] | length' "$OUT/slow.json")
dropped=$(span_stat aggregator.slow_dropped)
note "slow spans: $hslow of $heavy heavy requests, $lslow of $light light ones ($dropped dropped)"
# the list keeps the slowest EMBER_RED_MAX_SLOW of each flush: on a loaded
# host ab's own (client) spans pass 10 ms too and can push heavy ones out
[ "$hslow" -le "$heavy" ] && [ $((hslow + dropped)) -ge "$heavy" ] ||
	fail "$hslow heavy requests among the slow spans, $heavy sent, $dropped dropped"
[ $((lslow * 20)) -lt "$light" ] || fail "$lslow light requests among the slow spans"
jq -e '[.spans[].duration_ms] | min >= 10' "$OUT/slow.json" > /dev/null || fail "a slow span under the threshold"
# parameters are validated
code=$(curl -s -o /dev/null -w '%{http_code}' "${URL}api/spans?protocol=ftp")
[ "$code" = 400 ] || fail "protocol=ftp: HTTP $code, expected 400"
code=$(curl -s -o /dev/null -w '%{http_code}' "${URL}api/spans/slow?limit=0")
[ "$code" = 400 ] || fail "limit=0: HTTP $code, expected 400"
note "kernel: $(curl -sf "${URL}api/stats" | jq -c '.agent.spans.kernel | {data_events, data_lost, ctl_lost, unknown_conns}')"
stop_ember
exit 0
