#!/bin/sh
# go_node_exporter: Debian's stripped prometheus-node-exporter (Go, cgo,
# externally linked), scraped on loopback: >= 99.5% of its samples reach a
# Go root through the runtime's stack switches, and every user frame is
# named (no module+0xOFF or [unknown]; the vDSO's internal helpers have no
# symbols anywhere and are left out).
. "$(dirname "$0")/lib.sh"
require_bpf
ne=/usr/bin/prometheus-node-exporter
[ -x "$ne" ] || skip "prometheus-node-exporter is not installed (scripts/setup-deps.sh installs it)"
command -v curl > /dev/null || skip "curl is not installed"

port=$(( 20000 + $$ % 20000 ))
start_bg sh -c "exec $ne --web.listen-address=127.0.0.1:$port --no-collector.systemd 2> $OUT/ne.log"
pid=$BG_LAST
for i in $(seq 1 50); do
	curl -sf "http://127.0.0.1:$port/metrics" > /dev/null && break
	sleep 0.1
done
kill -0 "$pid" 2>/dev/null || fail "node exporter did not start"
( while kill -0 "$pid" 2>/dev/null; do curl -s "http://127.0.0.1:$port/metrics" > /dev/null; done ) &
BG_PIDS="$BG_PIDS $!"
"$EMBER" record --pid "$pid" --duration 12 --frequency 499 --output "$OUT/ne.folded" \
	2> "$OUT/record.err" || { cat "$OUT/record.err"; fail "ember record failed"; }
set -- $(awk '{ n = $NF; split($0, f, ";"); r = f[1]; sub(/ [0-9]+$/, "", r)
	if (r ~ /_\[k\]$/) next
	t += n
	if (r == "runtime.goexit" || r == "runtime.mstart" || r == "runtime.rt0_go" ||
	    r == "runtime.mcall" || r == "runtime.morestack") ok += n }
	END { print ok + 0, t + 0 }' "$OUT/ne.folded")
note "node exporter: $1 of $2 samples reach a root"
[ "$2" -ge 200 ] || fail "only $2 samples"
[ $(($1 * 1000)) -ge $(($2 * 995)) ] || {
	grep '\[truncated\]' "$OUT/ne.folded" | head -n 5 | cut -c1-300
	fail "$1 of $2 samples complete, expected >= 99.5%"
}
unnamed=$(sed 's/ [0-9]*$//' "$OUT/ne.folded" | tr ';' '\n' | grep -v '_\[k\]$' |
	grep -v '^\[vdso\]' | grep -E '\+0x|^\[unknown\]$' | sort -u)
[ -z "$unnamed" ] || { echo "$unnamed" | head; fail "unnamed frames in node exporter stacks"; }
exit 0
