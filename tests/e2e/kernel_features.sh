#!/bin/sh
# kernel_features: `ember run` reports the kernel's features in its
# start-up output and in /api/stats agent.kernel (checked against what the
# kernel itself shows: /sys/kernel/btf/vmlinux, the kprobe PMU in sysfs),
# the flags force features off, and each forced fallback the profiler takes
# is listed and counted.  The forced fallbacks (the 5.4-era paths) unwind
# as well: FP-less C++ rooted and whole through 150 recursive frames, and
# kernel-mode samples (user registers from the task's kernel stack
# instead of bpf_task_pt_regs) with their whole user chain.
. "$(dirname "$0")/lib.sh"
require_bpf
require_prog unwind_zoo
require_prog syscall_chain
command -v curl > /dev/null || fail "curl not installed"
command -v node > /dev/null || fail "node not installed (scripts/setup-deps.sh installs nodejs)"

off=task_pt_regs,probe_read_user,mmap_maps
start_bg "$EMBER" run --db "$OUT/ember.db" --listen 127.0.0.1:0 --flush 60 \
	--no-feature $off --no-kprobes --force-perfbuf 2> "$OUT/run.log"
ember=$BG_LAST
wait_for_server "$ember" "$OUT/run.log"
grep -E '^ember: (BTF|features|hooks|fallback)' "$OUT/run.log" | sed 's/^/  /'
grep -q '^ember: features: .*ringbuf=off' "$OUT/run.log" || fail "no features line with ringbuf=off"
curl -sf "${url}api/stats" > "$OUT/stats.json" || fail "GET /api/stats failed"

kbtf=false; [ -r /sys/kernel/btf/vmlinux ] && kbtf=true
kprobe_pmu=$([ -e /sys/bus/event_source/devices/kprobe/type ] && echo yes || echo no)
node -e '
const s = JSON.parse(require("fs").readFileSync(process.argv[1])).agent.kernel;
const [kbtf, pmu] = [process.argv[2] === "true", process.argv[3]];
const bad = (m) => { console.log("FAIL: /api/stats kernel: " + m); process.exit(1); };
if (!s) bad("missing (agent.kernel)");
if (s.release !== require("os").release()) bad("release " + s.release);
if (s.features.kernel_btf !== kbtf) bad("kernel_btf " + s.features.kernel_btf);
if (s.btf.source !== (kbtf ? "kernel" : "archive")) bad("btf.source " + s.btf.source);
for (const f of ["kprobes", "ringbuf", "task_pt_regs", "probe_read_user", "mmap_maps"])
	if (s.features[f] !== false) bad(f + " not off");
if (!/forced off/.test(s.absent.ringbuf)) bad("ringbuf absent for " + s.absent.ringbuf);
if (pmu === "no" && s.absent.kprobes === undefined) bad("kprobes: no reason");
if (!/perf_event/.test(s.hooks.profiler || "")) bad("no profiler hooks");
const fb = s.fallbacks.filter((f) => f.family === "profiler").map((f) => f.missing).sort();
if (fb.join() !== "mmap_maps,probe_read_user,task_pt_regs") bad("fallbacks " + fb.join());
// spans and net open through the same kernel: the forced features reach them
const sfb = s.fallbacks.filter((f) => f.family === "spans").map((f) => f.missing).sort();
if (sfb.join() !== "probe_read_user,ringbuf,task_pt_regs") bad("spans fallbacks " + sfb.join());
if (!/perf buffers/.test(s.hooks.spans || "")) bad("spans hooks " + s.hooks.spans);
const net = JSON.parse(require("fs").readFileSync(process.argv[1])).agent.net;
if (net.enabled) {
	if (net.hooks.send_recv === "kprobe") bad("net uses kprobes under --no-kprobes");
	if (!new RegExp("send/receive by " + net.hooks.send_recv).test(s.hooks.net || ""))
		bad("net hooks " + s.hooks.net + " vs agent.net " + net.hooks.send_recv);
	const nfb = s.fallbacks.filter((f) => f.family === "net").map((f) => f.missing);
	if (net.hooks.send_recv !== "fentry" && !nfb.includes("kprobes")) bad("net: no kprobes fallback");
}
const sum = s.fallbacks.reduce((a, f) => a + f.count, 0);
if (s.fallbacks_total !== sum) bad("fallbacks_total " + s.fallbacks_total + " != " + sum);
console.log("  /api/stats kernel: btf " + s.btf.source + ", fallbacks " + fb.join() + "; spans " + sfb.join() +
	", probed in " + s.probe_ms + " ms");
' "$OUT/stats.json" "$kbtf" "$kprobe_pmu" || exit 1

# net under mmap_maps off flips its generation by map updates: bytes still exact
if [ -x build/tools/net_pump ]; then
	start_bg build/tools/net_pump sink 127.0.0.1 0 > "$OUT/sink.out"
	for _ in $(seq 1 50); do grep -q listening "$OUT/sink.out" && break; sleep 0.1; done
	port=$(sed -n 's/^listening \([0-9]*\)$/\1/p' "$OUT/sink.out")
	build/tools/net_pump fanout 127.0.0.1 "$port" 300000 2000 > /dev/null || fail "net_pump fanout failed"
	got=0
	for _ in $(seq 1 40); do
		got=$(curl -sf "${url}metrics" | grep '^ember_tcp_sent_bytes_total{' |
			grep -F 'direction="out",peer="net_pump"}' | awk '{ s += $NF } END { printf "%d", s }')
		[ "$got" = 300000 ] && break
		sleep 0.5
	done
	note "net with mmap_maps off: $got of 300000 bytes sent to net_pump"
	[ "$got" = 300000 ] || fail "net with mmap_maps off counted $got bytes, net_pump sent 300000"
fi
kill "$ember"

# the fallbacks unwind as well as the defaults
start_bg "$PROGS/unwind_zoo" 30 150
pid=$BG_LAST
sleep 0.5
"$EMBER" record --pid "$pid" --duration 4 --output "$OUT/zoo.folded" --no-feature $off 2> "$OUT/zoo.err" ||
	{ cat "$OUT/zoo.err"; fail "ember record with fallbacks failed"; }
rooted=$(rooted_permille "$OUT/zoo.folded")
deep=$(deep_samples "$OUT/zoo.folded" 150)
note "fallbacks, unwind_zoo: $rooted/1000 rooted, $deep samples with the whole recursion"
[ "$rooted" -ge 990 ] || fail "with fallbacks, $rooted/1000 of samples end at a root"
[ "$deep" -ge 10 ] || fail "with fallbacks, the recursion is whole in $deep samples"
kill "$pid"

for mode in default fallbacks; do
	start_bg "$PROGS/syscall_chain" 30
	pid=$BG_LAST
	sleep 0.3
	opts=""
	[ $mode = fallbacks ] && opts="--no-feature $off"
	# shellcheck disable=SC2086
	"$EMBER" record --pid "$pid" --duration 3 --output "$OUT/sys-$mode.folded" $opts 2> "$OUT/sys.err" ||
		{ cat "$OUT/sys.err"; fail "ember record on syscall_chain ($mode) failed"; }
	set -- $(kernel_share "$OUT/sys-$mode.folded" "main;syscall_outer;syscall_inner")
	note "$mode: $1 kernel-mode samples, user chain whole on $2%"
	[ "$1" -ge 10 ] || fail "$mode: only $1 samples in kernel mode (a loaded machine gives fewer)"
	[ "$2" -ge 90 ] || fail "$mode: user chain whole on $2% of kernel-mode samples"
	kill "$pid"
done
exit 0
