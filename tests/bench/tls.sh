#!/bin/bash
# tls.sh - the cost of reading TLS plaintext with uprobes (issue [12]), in one run.
#
#   Workloads: nginx over HTTPS (OpenSSL) driven by ab, and the Go HTTPS
#   server and client of tests/programs/gotls (crypto/tls); each one
#   request at a time (latency: the added cost per call shows) and at
#   saturation (throughput).  Modes, interleaved, the order rotating every
#   round: no agent ("off"), `ember run --no-tls` ("no-tls": syscall span
#   hooks only) and `ember run` ("tls": the uprobes too).  Medians.
#   Per-call cost: (1) the BPF run time of the TLS programs per run
#   (kernel.bpf_stats_enabled=1, bpftool), which leaves out the uprobe trap
#   itself; (2) the whole cost, trap included: the added time per request
#   of the one-at-a-time runs, tls vs no-tls, divided by the uprobe hits
#   per request.  Peer in the same run: a bare uprobe (tracefs
#   uprobe_events, no BPF) on an empty function (uprobe_loop.c), the floor
#   under any uprobe-based tool on this machine.  Anchor: eCapture's 1-2 us
#   per uprobe event.
# Prints markdown (also build/bench/tls/results.md).
#
#   BENCH_ROUNDS    rounds (default 5)
#   BENCH_REQUESTS  requests of a saturation run (default 20000; one-at-a-time runs: a quarter)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${BENCH_ROUNDS:-5}
N=${BENCH_REQUESTS:-20000}
NSEQ=$((N / 4))
OUT=$PWD/build/bench/tls
EMBER=build/ember
GOTLS=build/progs/gotls
rm -rf "$OUT"; mkdir -p "$OUT/www" "$OUT/tmp"
[ "$(id -u)" -eq 0 ] || { echo "bench: needs root (BPF)"; exit 1; }
for c in nginx ab openssl jq bpftool; do
	command -v $c > /dev/null || { echo "bench: $c missing (make deps)"; exit 1; }
done
[ -x "$GOTLS" ] || { echo "bench: $GOTLS missing (make test-programs)"; exit 1; }

. tests/bench/lib.sh
bench_begin

# the bare uprobe: time per call of an empty function without and with a probe
cc -O2 -o "$OUT/uprobe_loop" tests/bench/uprobe_loop.c
TRACEFS=/sys/kernel/tracing
[ -e $TRACEFS/uprobe_events ] || mount -t tracefs nodev $TRACEFS
sym=$(nm "$OUT/uprobe_loop" | awk '$3 == "ember_bench_target" { print $1 }')
# file offset = vaddr - segment vaddr + segment offset (the executable PT_LOAD)
read -r seg_off seg_vaddr < <(readelf -lW "$OUT/uprobe_loop" | awk '$1 == "LOAD" && / R E / { print $2, $3; exit }')
off=$(printf '0x%x' $((16#$sym - seg_vaddr + seg_off)))
bare_off=$("$OUT/uprobe_loop" 200000)
echo "p:ember_bench/loop $OUT/uprobe_loop:$off" >> $TRACEFS/uprobe_events
echo 1 > $TRACEFS/events/ember_bench/loop/enable
bare_on=$("$OUT/uprobe_loop" 20000)
echo 0 > $TRACEFS/events/ember_bench/loop/enable
echo "-:ember_bench/loop" >> $TRACEFS/uprobe_events
echo "bare uprobe: $bare_off ns per call without, $bare_on ns with"

openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
	-keyout "$OUT/key.pem" -out "$OUT/cert.pem" > "$OUT/openssl.log" 2>&1
nport=$(free_port)
head -c 600 /dev/urandom | base64 > "$OUT/www/index.html"
cat > "$OUT/nginx.conf" <<EOC
worker_processes 1;
daemon off;
pid $OUT/nginx.pid;
error_log $OUT/nginx-error.log;
events { worker_connections 1024; }
http {
	access_log off;
	keepalive_requests 1000000;
	client_body_temp_path $OUT/tmp; proxy_temp_path $OUT/tmp; fastcgi_temp_path $OUT/tmp;
	uwsgi_temp_path $OUT/tmp; scgi_temp_path $OUT/tmp;
	server {
		listen 127.0.0.1:$nport ssl;
		ssl_certificate $OUT/cert.pem;
		ssl_certificate_key $OUT/key.pem;
		root $OUT/www;
	}
}
EOC
nginx -c "$OUT/nginx.conf" -p "$OUT" &
pids+=($!)
gport=$(free_port)
"$GOTLS" serve "127.0.0.1:$gport" "$OUT/cert.pem" "$OUT/key.pem" > "$OUT/gotls.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do
	curl -skf -o /dev/null "https://127.0.0.1:$nport/" && curl -skf -o /dev/null "https://127.0.0.1:$gport/ok/1" && break
	sleep 0.1
done
curl -skf -o /dev/null "https://127.0.0.1:$gport/ok/1" || { echo "bench: gotls did not start"; exit 1; }

ember_pid=""
agent_ids="[]"
start_agent() { # mode
	ember_pid=""
	[ "$1" = off ] && return
	local extra=()
	[ "$1" = no-tls ] && extra=(--no-tls)
	rm -f "$OUT"/ember.db*
	local before
	before=$(tls_prog_ids)
	"$EMBER" run --db "$OUT/ember.db" --listen 127.0.0.1:0 --flush 5 "${extra[@]}" 2> "$OUT/ember.log" &
	ember_pid=$!
	for _ in $(seq 1 100); do
		grep -q "tracing L7" "$OUT/ember.log" && break
		sleep 0.1
	done
	agent_ids=$(jq -cn --argjson a "$(tls_prog_ids)" --argjson b "$before" '$a - $b')
	sleep 1
}

stop_agent() {
	[ -n "$ember_pid" ] || return 0
	kill -TERM "$ember_pid"
	wait "$ember_pid" || true
}

# ids of the loaded TLS programs (of every agent on the host)
tls_prog_ids() {
	bpftool prog show -j | jq -c '[.[] | select(.name | test("^ember_(ssl|go_tls)_")) | .id]'
}
# run count and run time (ns) of this agent's TLS programs: the ones that
# appeared when it started (other agents on the host may load theirs)
tls_prog_stats() {
	[ -n "$ember_pid" ] || { echo "0 0"; return; }
	bpftool prog show -j | jq -r --argjson ids "$agent_ids" '[.[] | select(.id as $i | $ids | index($i))] |
		"\(map(.run_cnt // 0) | add // 0) \(map(.run_time_ns // 0) | add // 0)"'
}

now_ns() { date +%s%N; }
# gorun N CONC: seconds the Go client takes for N requests
gorun() {
	local t0 t1
	t0=$(now_ns)
	"$GOTLS" client "https://127.0.0.1:$gport" "$1" "$2" > "$OUT/goclient.txt" 2>&1 ||
		{ cat "$OUT/goclient.txt"; exit 1; }
	t1=$(now_ns)
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", (b - a) / 1e9 }'
}
abrate() { sed -n 's/^Requests per second: *\([0-9.]*\).*/\1/p' "$1"; }
abmean() { sed -n 's/^Time per request: *\([0-9.]*\) \[ms\] (mean)$/\1/p' "$1"; }

: > "$OUT/rounds.txt"
modes=(off no-tls tls)
for r in $(seq 1 "$ROUNDS"); do
	for k in 0 1 2; do
		mode=${modes[$(((r + k) % 3))]}
		start_agent "$mode"
		s0=$(tls_prog_stats)
		ab -q -k -n "$NSEQ" -c 1 "https://127.0.0.1:$nport/index.html" > "$OUT/ab1.txt" 2>&1
		s1=$(tls_prog_stats)
		gseq=$(gorun "$NSEQ" 1)
		s2=$(tls_prog_stats)
		ab -q -k -n "$N" -c 50 "https://127.0.0.1:$nport/index.html" > "$OUT/ab50.txt" 2>&1
		gsat=$(gorun "$N" 16)
		s3=$(tls_prog_stats)
		# nginx one at a time: ms per request; Go: us per request; saturation: requests/s
		echo "$mode $(abmean "$OUT/ab1.txt") $(awk -v t="$gseq" -v n="$NSEQ" 'BEGIN { print t * 1e6 / n }') \
$(abrate "$OUT/ab50.txt") $(awk -v t="$gsat" -v n="$N" 'BEGIN { print n / t }') $s0 $s1 $s2 $s3" >> "$OUT/rounds.txt"
		stop_agent
		echo "round $r $mode: $(tail -n 1 "$OUT/rounds.txt")"
	done
done

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
col() { awk -v m="$1" -v c="$2" '$1 == m { print $c }' "$OUT/rounds.txt" | median; }
{
	echo "### HTTPS with and without TLS capture, $ROUNDS interleaved rounds (medians)"
	echo
	echo "| workload | off | no-tls | tls | tls vs off | tls vs no-tls |"
	echo "| --- | --- | --- | --- | --- | --- |"
	for w in "nginx+ab -k -c 1, us per request:2:1000" "Go client+server, 1 at a time, us per request:3:1" \
		"nginx+ab -k -c 50, requests/s:4:1" "Go client+server, 16 at a time, requests/s:5:1"; do
		IFS=: read -r name c scale <<< "$w"
		o=$(col off "$c"); p=$(col no-tls "$c"); s=$(col tls "$c")
		awk -v n="$name" -v o="$o" -v p="$p" -v s="$s" -v k="$scale" 'BEGIN {
			printf "| %s | %.1f | %.1f | %.1f | %+.1f%% | %+.1f%% |\n", n, o * k, p * k, s * k, (s - o) * 100 / o, (s - p) * 100 / p }'
	done
	echo
	# per call, from the tls rounds: uprobe runs per request of the one-at-a-time runs
	awk -v nseq="$NSEQ" '
		$1 == "tls" { n++; ab_runs += $8 - $6; ab_ns += $9 - $7; go_runs += $10 - $8; go_ns += $11 - $9
			all_runs += $12 - $6; all_ns += $13 - $7 }
		$1 == "no-tls" { m++ }
		END {
			printf "| figure | value |\n| --- | --- |\n"
			printf "| uprobe runs per request, nginx+ab (entries + returns, both sides) | %.2f |\n", ab_runs / (n * nseq)
			printf "| uprobe runs per request, Go client+server | %.2f |\n", go_runs / (n * nseq)
			printf "| BPF time per TLS program run (all runs, trap not included) | %.2f us |\n", all_ns / all_runs / 1000
		}' "$OUT/rounds.txt"
	# whole cost per uprobe hit: added time per request (tls - no-tls) / runs per request
	ab_runs=$(awk -v nseq="$NSEQ" '$1 == "tls" { n++; s += $8 - $6 } END { print s / (n * nseq) }' "$OUT/rounds.txt")
	go_runs=$(awk -v nseq="$NSEQ" '$1 == "tls" { n++; s += $10 - $8 } END { print s / (n * nseq) }' "$OUT/rounds.txt")
	awk -v pa="$(col no-tls 2)" -v sa="$(col tls 2)" -v pg="$(col no-tls 3)" -v sg="$(col tls 3)" \
		-v ra="$ab_runs" -v rg="$go_runs" -v bon="$bare_on" -v boff="$bare_off" 'BEGIN {
		printf "| added time per uprobe hit, nginx+ab one at a time (trap included) | %.2f us |\n", (sa - pa) * 1000 / ra
		printf "| added time per uprobe hit, Go one at a time (trap included) | %.2f us |\n", (sg - pg) / rg
		printf "| bare uprobe, no BPF (tracefs uprobe_events), same machine, same run | %.2f us |\n", (bon - boff) / 1000
		printf "| eCapture (anchor) | 1-2 us per uprobe event |\n"
	}'
} | tee "$OUT/results.md"
