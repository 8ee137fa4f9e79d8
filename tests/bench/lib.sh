# lib.sh - what the benchmark scripts share (bash; sourced by run.sh, net.sh, spans.sh).
#
#   bench_begin   turns kernel.bpf_stats_enabled on (BPF run times) until
#                 the script exits; at exit it is restored and every
#                 process whose pid the script added to the array pids is
#                 killed and waited for.

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
