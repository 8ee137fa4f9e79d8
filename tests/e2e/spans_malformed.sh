#!/bin/sh
# spans_malformed: hostile traffic (tests/tools/spans_junk.c): random bytes,
# requests finished a byte at a time, 20 pipelined requests, a request
# followed by garbage, oversized headers and messages announcing huge
# lengths, 500 half-open connections.  ember must keep running, drop and
# count the connections of unknown protocol in the kernel, keep its state
# bounded, and still count the well-formed requests the client saw
# answered (its own count is the oracle).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/spans.inc"
require_bpf
junk=$(dirname "$EMBER")/tools/spans_junk
[ -x "$junk" ] || fail "$junk not built (make build-tests)"

port=$(free_port)
start_ember
rss0=$(awk '/^VmRSS/ { print $2 }' /proc/$EMBER_PID/status)
unknown0=$(span_stat kernel.unknown_conns)
"$junk" "$port" > "$OUT/junk.txt" 2>&1 &
j=$!
wait $j || { cat "$OUT/junk.txt"; fail "spans_junk failed"; }
cat "$OUT/junk.txt"
ok=$(sed -n 's/^http_ok //p' "$OUT/junk.txt")
[ "$ok" -eq 72 ] || fail "the client got $ok answers of 72"

q="pid=$j&protocol=http&role=client"
got=$(settle "$q" '[.rows[].statuses["200"] // 0] | add // 0')
spans_json "$q" | jq -c '.rows[] | {endpoint, count, statuses}'
note "client spans with 200: $got (the client counted $ok)"
[ "$got" -eq "$ok" ] || fail "client spans $got, answers $ok"
kill -0 "$EMBER_PID" || fail "ember died"

unknown=$(span_stat kernel.unknown_conns)
note "kernel: unknown connections $unknown0 -> $unknown, $(curl -sf "${URL}api/stats" | jq -c '.agent.spans.kernel | {unknown_events, inferred, data_lost}')"
[ $((unknown - unknown0)) -ge 200 ] || fail "fewer than 200 connections counted as unknown"
curl -sf "${URL}api/stats" | jq -c '.agent.spans.tracker' > "$OUT/tracker.json"
note "tracker: $(cat "$OUT/tracker.json")"
jq -e '.desync > 0 and .conns <= 16384' "$OUT/tracker.json" > /dev/null || fail "tracker state"
# the half-open connections are gone after their close (two sweeps)
sleep 3
conns=$(span_stat tracker.conns)
[ "$conns" -lt 100 ] || fail "$conns connections still tracked after every one closed"
rss1=$(awk '/^VmRSS/ { print $2 }' /proc/$EMBER_PID/status)
note "ember RSS: $rss0 -> $rss1 KiB"
[ "$rss1" -lt $((rss0 + 200000)) ] || fail "ember grew by $((rss1 - rss0)) KiB"
stop_ember
exit 0
