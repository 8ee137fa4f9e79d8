#!/bin/sh
# spans_endpoint_cpu: CPU profiles per L7 endpoint, with no instrumentation.
# A Go net/http server (tests/programs/gohttp) serves a light endpoint and
# a CPU-heavy one (main.heavyWork, ~20 ms a request) to two ab clients at
# once.  The samples of heavyWork must be under endpoint "GET /heavy/{id}"
# (>= 90% of them) and absent from "GET /light/{id}"; the flame graph,
# folded stacks and pprof (label endpoint, read back by go tool pprof)
# accept endpoint=.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/spans.inc"
require_bpf
require_prog gohttp
command -v ab > /dev/null || fail "ab not installed (Debian package apache2-utils)"

port=$(free_port)
start_ember --frequency 199
start_bg "$PROGS/gohttp" "127.0.0.1:$port"
server=$BG_LAST
for i in $(seq 1 50); do
	curl -s -o /dev/null "http://127.0.0.1:$port/light/0" && break
	sleep 0.1
done
ab -q -n 150 -c 1 "http://127.0.0.1:$port/heavy/1" > "$OUT/ab-heavy.txt" 2>&1 &
h=$!
ab -q -k -n 20000 -c 2 "http://127.0.0.1:$port/light/2" > "$OUT/ab-light.txt" 2>&1 &
l=$!
wait $h && wait $l || fail "ab failed"
settle "pid=$server&protocol=http&role=server" '[.rows[].count] | add // 0' > /dev/null
sleep 2 # the last samples are flushed with the spans

heavy_ep="GET /heavy/{id}"
light_ep="GET /light/{id}"
enc() { printf '%s' "$1" | jq -sRr @uri; }
curl -sf "${URL}api/folded?pid=$server" > "$OUT/all.folded" || fail "folded failed"
curl -sf "${URL}api/folded?pid=$server&endpoint=$(enc "$heavy_ep")" > "$OUT/heavy.folded" || fail "folded endpoint=heavy failed"
curl -sf "${URL}api/folded?pid=$server&endpoint=$(enc "$light_ep")" > "$OUT/light.folded" || fail "folded endpoint=light failed"
count() { grep 'main.heavyWork' "$1" | awk '{ n += $NF } END { print n + 0 }'; }
all=$(count "$OUT/all.folded")
in_heavy=$(count "$OUT/heavy.folded")
in_light=$(count "$OUT/light.folded")
note "heavyWork samples: $all in all, $in_heavy under $heavy_ep, $in_light under $light_ep"
note "samples under the light endpoint: $(total_samples "$OUT/light.folded")"
[ "$all" -ge 50 ] || fail "too few heavyWork samples ($all) to judge"
[ $((in_heavy * 100)) -ge $((all * 90)) ] || fail "only $in_heavy of $all heavyWork samples under $heavy_ep"
[ "$in_light" -eq 0 ] || fail "$in_light heavyWork samples under $light_ep"
[ "$(total_samples "$OUT/light.folded")" -gt 0 ] || fail "no samples under $light_ep"

# the flame graph too
curl -sf "${URL}api/flamegraph?pid=$server&endpoint=$(enc "$heavy_ep")" | grep -q 'main.heavyWork' ||
	fail "heavyWork not in the flame graph of $heavy_ep"
# pprof carries the endpoint as a label: go tool pprof focuses on it
curl -sf "${URL}api/pprof?pid=$server" > "$OUT/all.pb.gz" || fail "pprof failed"
HOME=${HOME:-/root} GOCACHE=/tmp/ember-gocache go tool pprof -tags "$OUT/all.pb.gz" > "$OUT/tags.txt" 2>&1 ||
	{ cat "$OUT/tags.txt"; fail "go tool pprof -tags failed"; }
grep -q "GET /heavy/{id}" "$OUT/tags.txt" || { cat "$OUT/tags.txt"; fail "no endpoint label in pprof"; }
HOME=${HOME:-/root} GOCACHE=/tmp/ember-gocache go tool pprof -top -tagfocus 'endpoint=GET /light/{id}' \
	"$OUT/all.pb.gz" > "$OUT/light-top.txt" 2>&1 || { cat "$OUT/light-top.txt"; fail "pprof -tagfocus failed"; }
grep -q "main.heavyWork" "$OUT/light-top.txt" && fail "heavyWork under the light endpoint in pprof"
stop_ember
exit 0
