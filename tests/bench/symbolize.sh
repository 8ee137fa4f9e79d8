#!/bin/sh
# symbolize.sh - Ember's symbolizer against llvm-symbolizer, eu-addr2line and
# addr2line on the same addresses of a large generated C++ binary with DWARF.
#
#   sh tests/bench/symbolize.sh            (from the repository root, after make)
#   BENCH_ADDRS=100000 BENCH_FUNCS=3000    (sizes; defaults shown)
#
# The binary has BENCH_FUNCS template-heavy functions (STL containers,
# inlined helpers); the addresses are spread evenly over its functions.
# Ember cold = load + resolve every address once through DWARF (no cache);
# warm = the same addresses from the symcache.  Peers resolve the batch in
# one process each (inline chains on, demangling on).
set -eu
cd "$(dirname "$0")/../.."
OUT=build/bench/symbolize
NADDR=${BENCH_ADDRS:-100000}
NFUNC=${BENCH_FUNCS:-3000}
mkdir -p "$OUT"

if [ ! -x "$OUT/big" ] || [ "$(cat "$OUT/big.funcs" 2>/dev/null)" != "$NFUNC" ]; then
	echo "bench: generating a C++ program with $NFUNC functions..."
	{
		echo '#include <algorithm>'
		echo '#include <map>'
		echo '#include <string>'
		echo '#include <vector>'
		echo 'template <typename T> static inline T mix(T a, T b) { return (a * 31) ^ (b + 7); }'
		i=0
		while [ $i -lt "$NFUNC" ]; do
			echo "__attribute__((noinline)) long f$i(int n) { std::vector<long> v; std::map<std::string, long> m;"
			echo "  for (int i = 0; i < n; i++) { v.push_back(mix<long>(i, $i)); m[std::to_string(i % 7)] += i; }"
			echo "  std::sort(v.begin(), v.end()); long s = 0; for (auto &kv : m) s += kv.second; return s + v[0]; }"
			i=$((i + 1))
		done
		echo 'int main(int argc, char **) { return (int)f0(argc); }'
	} > "$OUT/big.cpp"
	g++ -O2 -g -o "$OUT/big" "$OUT/big.cpp"
	echo "$NFUNC" > "$OUT/big.funcs"
fi
ls -la "$OUT/big" | awk '{ printf "bench: binary %.1f MiB\n", $5 / 1048576 }'

# NADDR addresses spread over the text of all functions.
nm -S --defined-only "$OUT/big" | awk -v n="$NADDR" '
	function hex(h,  i, v) { v = 0; for (i = 1; i <= length(h); i++) v = v * 16 + index("0123456789abcdef", substr(h, i, 1)) - 1; return v }
	$3 ~ /^[tTwW]$/ && NF == 4 { a[k] = hex($1); s[k] = hex($2); tot += s[k]; k++ }
	END { step = tot / n; if (step < 1) step = 1; for (i = 0; i < k; i++) for (x = 0; x < s[i] && c < n; x += step) { printf "%x\n", a[i] + int(x); c++ } }' \
	> "$OUT/addrs.txt"
echo "bench: $(wc -l < "$OUT/addrs.txt") addresses"

CFLAGS="-std=gnu11 -O2 -g -D_GNU_SOURCE -Isrc -Ibpf/include"
[ -f build/libember.a ] || make build/libember.a > /dev/null
gcc $CFLAGS -o "$OUT/symbolize_bench" tests/bench/symbolize_bench.c build/libember.a \
	-lbpf -lelf -ldw -lz -lzstd -lsqlite3 -lmicrohttpd -lprotobuf-c -lstdc++ -lpthread -lm

PEER_TIMEOUT=${BENCH_PEER_TIMEOUT:-120}
timeit() { # label, command...: prints seconds (peers get PEER_TIMEOUT seconds)
	label=$1; shift
	t0=$(date +%s.%N)
	if ! timeout "$PEER_TIMEOUT" "$@" > "$OUT/$label.out" 2>/dev/null; then
		echo "$label: failed or timed out after ${PEER_TIMEOUT}s"
		return 0
	fi
	t1=$(date +%s.%N)
	awk -v a="$t0" -v b="$t1" -v n="$(wc -l < "$OUT/addrs.txt")" -v l="$label" \
		'BEGIN { printf "%-16s %8.3f s  %10.0f lookups/s\n", l, b - a, n / (b - a) }'
}

"$OUT/symbolize_bench" "$OUT/big" "$OUT/addrs.txt" 1
if command -v llvm-symbolizer >/dev/null; then
	timeit llvm-symbolizer sh -c "llvm-symbolizer --inlining --demangle --obj=$OUT/big < $OUT/addrs.txt"
fi
if command -v eu-addr2line >/dev/null; then
	timeit eu-addr2line sh -c "eu-addr2line -i -f -C -e $OUT/big < $OUT/addrs.txt"
fi
if command -v addr2line >/dev/null; then
	timeit addr2line sh -c "addr2line -i -f -C -e $OUT/big < $OUT/addrs.txt"
fi
