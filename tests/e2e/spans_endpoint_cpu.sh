#!/bin/sh
# spans_endpoint_cpu: CPU profiles per L7 endpoint, with no instrumentation.
# A server with a light endpoint and a CPU-heavy one (~20 ms a request in
# its heavy function) serves two ab clients at once:
#   - tests/programs/cpu_endpoints (C, a thread per connection): >= 90% of
#     heavy_work's samples are under "GET /heavy/{id}", none under
#     "GET /light/{id}";
#   - tests/programs/gohttp (Go net/http): goroutines move between threads,
#     and a thread may pick another request up while one is open, so the
#     tags are looser: >= 75% under the heavy endpoint, and what lands
#     under the light one is reported (a few samples at most);
# and the flame graph, folded stacks and pprof (label endpoint, read back
# by go tool pprof -tags/-tagfocus) accept endpoint=.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/spans.inc"
require_bpf
require_prog cpu_endpoints
require_prog gohttp
command -v ab > /dev/null || fail "ab not installed (Debian package apache2-utils)"

heavy_ep="GET /heavy/{id}"
light_ep="GET /light/{id}"
enc() { printf '%s' "$1" | jq -sRr @uri; }
count() { grep "$2" "$1" | awk '{ n += $NF } END { print n + 0 }'; }

start_ember --frequency 199

# check NAME PROGRAM FUNCTION MIN_PERCENT MAX_IN_LIGHT
check() {
	port=$(free_port)
	if [ "$1" = go ]; then start_bg "$2" "127.0.0.1:$port"; else start_bg "$2" "$port"; fi
	server=$BG_LAST
	for i in $(seq 1 50); do
		curl -s -o /dev/null "http://127.0.0.1:$port/light/0" && break
		sleep 0.1
	done
	ab -q -n 150 -c 1 "http://127.0.0.1:$port/heavy/1" > "$OUT/ab-heavy-$1.txt" 2>&1 &
	h=$!
	ab -q -k -n 20000 -c 2 "http://127.0.0.1:$port/light/2" > "$OUT/ab-light-$1.txt" 2>&1 &
	l=$!
	wait $h && wait $l || fail "ab failed ($1)"
	settle "pid=$server&protocol=http&role=server" '[.rows[].count] | add // 0' > /dev/null
	sleep 2 # the last samples are flushed with the spans
	curl -sf "${URL}api/folded?pid=$server" > "$OUT/$1-all.folded" || fail "folded failed"
	curl -sf "${URL}api/folded?pid=$server&endpoint=$(enc "$heavy_ep")" > "$OUT/$1-heavy.folded" ||
		fail "folded endpoint=heavy failed"
	curl -sf "${URL}api/folded?pid=$server&endpoint=$(enc "$light_ep")" > "$OUT/$1-light.folded" ||
		fail "folded endpoint=light failed"
	all=$(count "$OUT/$1-all.folded" "$3")
	in_heavy=$(count "$OUT/$1-heavy.folded" "$3")
	in_light=$(count "$OUT/$1-light.folded" "$3")
	note "$1: $3 samples: $all in all, $in_heavy ($((in_heavy * 100 / (all + 1)))%) under $heavy_ep, $in_light under $light_ep; $(total_samples "$OUT/$1-light.folded") samples under $light_ep"
	[ "$all" -ge 50 ] || fail "$1: too few $3 samples ($all) to judge"
	[ $((in_heavy * 100)) -ge $((all * $4)) ] || fail "$1: only $in_heavy of $all $3 samples under $heavy_ep"
	[ "$in_light" -le "$5" ] || fail "$1: $in_light $3 samples under $light_ep"
	[ "$(total_samples "$OUT/$1-light.folded")" -gt 0 ] || fail "$1: no samples under $light_ep"
	curl -sf "${URL}api/flamegraph?pid=$server&endpoint=$(enc "$heavy_ep")" | grep -q "$3" ||
		fail "$1: $3 not in the flame graph of $heavy_ep"
	kill "$server"
}

check c "$PROGS/cpu_endpoints" heavy_work 90 0
check go "$PROGS/gohttp" main.heavyWork 75 "$(( 10 ))"

# pprof carries the endpoint as a label: go tool pprof focuses on it
curl -sf "${URL}api/pprof?pid=$server" > "$OUT/all.pb.gz" || fail "pprof failed"
HOME=${HOME:-/root} GOCACHE=/tmp/ember-gocache go tool pprof -tags "$OUT/all.pb.gz" > "$OUT/tags.txt" 2>&1 ||
	{ cat "$OUT/tags.txt"; fail "go tool pprof -tags failed"; }
grep -q "GET /heavy/{id}" "$OUT/tags.txt" || { cat "$OUT/tags.txt"; fail "no endpoint label in pprof"; }
HOME=${HOME:-/root} GOCACHE=/tmp/ember-gocache go tool pprof -top -tagfocus 'endpoint=GET /heavy/{id}' \
	"$OUT/all.pb.gz" > "$OUT/heavy-top.txt" 2>&1 || { cat "$OUT/heavy-top.txt"; fail "pprof -tagfocus failed"; }
grep -q "main.heavyWork" "$OUT/heavy-top.txt" || fail "heavyWork not in pprof's view of the heavy endpoint"
note "kernel: $(curl -sf "${URL}api/stats" | jq -c '.agent.spans.kernel | {data_events, data_lost, ctl_lost, unknown_conns}')"
stop_ember
exit 0
