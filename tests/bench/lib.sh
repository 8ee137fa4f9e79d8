# lib.sh - what the benchmark scripts share (bash; sourced by run.sh, net.sh, spans.sh).
#
#   bench_setup DIR  sets EMBER, PROGS, HZ and OUT=DIR (emptied), needs root
#   bench_begin   turns kernel.bpf_stats_enabled on (BPF run times) until
#                 the script exits; at exit it is restored and every
#                 process whose pid the script added to the array pids is
#                 killed and waited for.
#   free_port     a TCP port nothing listens on (20000-32000)

bench_begin() {
	bench_old_stats=$(sysctl -n kernel.bpf_stats_enabled)
	sysctl -qw kernel.bpf_stats_enabled=1
	pids=()
	trap bench_end EXIT
}

bench_end() {
	sysctl -qw kernel.bpf_stats_enabled="$bench_old_stats"
	for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2> /dev/null || true; done
}

free_port() {
	local p
	while :; do
		p=$(shuf -i 20000-32000 -n 1)
		ss -Hltn "sport = :$p" | grep -q . || { echo "$p"; return; }
	done
}

bench_setup() {
	OUT=$1
	EMBER=build/ember
	PROGS=build/progs
	HZ=$(getconf CLK_TCK)
	[ "$(id -u)" -eq 0 ] || { echo "bench: needs root (BPF, perf -a)"; exit 1; }
	rm -rf "$OUT"; mkdir -p "$OUT"
}
