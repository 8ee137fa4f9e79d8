#!/bin/sh
# symbolize.sh - Ember's symbolizer against llvm-symbolizer, eu-addr2line and
# addr2line on the same addresses of a large generated C++ binary with DWARF;
# then what keying caches by content costs (identity_bench.c, vs sha256sum).
#
#   sh tests/bench/symbolize.sh            (from the repository root, after make)
#   BENCH_ADDRS=100000 BENCH_FUNCS=3000    (sizes; defaults shown)
#
# The binary has BENCH_FUNCS template-heavy functions (STL containers,
# inlined helpers); the addresses are spread evenly over its functions.
# Ember cold = load + resolve every address once through DWARF (no cache);
# warm = the same addresses from the symcache.  Peers resolve the batch in
# one process each (inline chains on, demangling on), as does `ember
# symbolize --llvm`, whose output must equal llvm-symbolizer's byte for
# byte; the addr2lines' function chains are compared with Ember's.
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
	-lbpf -lelf -ldw -lz -lzstd -lcrypto -lsqlite3 -lmicrohttpd -lprotobuf-c -lstdc++ -lpthread -lm
gcc $CFLAGS -o "$OUT/identity_bench" tests/bench/identity_bench.c build/libember.a \
	-lbpf -lelf -ldw -lz -lzstd -lcrypto -lsqlite3 -lmicrohttpd -lprotobuf-c -lstdc++ -lpthread -lm

# llvm-symbolizer reads an address only with its 0x (a bare 1100 is decimal,
# a bare 110e a symbol name); addr2line and eu-addr2line read bare hex.  The
# two addr2lines would take minutes to hours for the whole batch (eu-addr2line
# -i ~0.1 s per address here), so they get the first BENCH_SLOW_ADDRS and
# BENCH_EU_ADDRS addresses.
SLOW=${BENCH_SLOW_ADDRS:-10000}
EU=${BENCH_EU_ADDRS:-200}
sed 's/^/0x/' "$OUT/addrs.txt" > "$OUT/addrs0x.txt"
head -n "$SLOW" "$OUT/addrs.txt" > "$OUT/addrs_slow.txt"
head -n "$EU" "$OUT/addrs.txt" > "$OUT/addrs_eu.txt"

PEER_TIMEOUT=${BENCH_PEER_TIMEOUT:-120}
timeit() { # label, address file, command...: prints seconds (PEER_TIMEOUT at most)
	label=$1; addrs=$2; shift 2
	t0=$(date +%s.%N)
	if ! timeout "$PEER_TIMEOUT" "$@" < "$addrs" > "$OUT/$label.out" 2>/dev/null; then
		echo "$label: failed or timed out after ${PEER_TIMEOUT}s"
		return 0
	fi
	t1=$(date +%s.%N)
	awk -v a="$t0" -v b="$t1" -v n="$(wc -l < "$addrs")" -v l="$label" \
		'BEGIN { printf "%-22s %8.3f s  %10.0f lookups/s  (%d addresses, one process)\n", l, b - a, n / (b - a), n }'
}

# Per address, its chain of function names joined by "|": from addr2line -a
# output (an 0x line, then function and location lines) or from Ember's
# plain output (function and location lines, a blank line after each).  The
# addr2lines name a function's cold part by its DWARF name, not its symbol's
# ("f() [clone .cold]"), so clone suffixes are dropped on both sides, as is
# eu-addr2line's " inlined at FILE:LINE in FUNCTION".
chains_a2l() {
	awk '/^0x/ { if (n++) print c; c = ""; k = 0; next }
	     { if (++k % 2) { sub(/ inlined at .*$/, ""); gsub(/ \[clone [^]]*\]/, ""); c = c "|" $0 } }
	     END { print c }' "$1"
}
chains_ember() {
	awk '/^$/ { print c; c = ""; k = 0; next }
	     { if (++k % 2) { sub(/ \(inlined\)$/, ""); gsub(/ \[clone [^]]*\]/, ""); c = c "|" $0 } }' "$1"
}
agree() { # label, peer chains, ember chains (on the peer's addresses)
	head -n "$(wc -l < "$2")" "$3" | paste -d '\t' "$2" - | awk -F '\t' -v l="$1" '
		{ n++; if ($1 == $2) ok++ }
		END { printf "%-22s function chains equal Ember'"'"'s on %d of %d addresses (%.2f%%)\n", l, ok, n, 100 * ok / n }'
}

"$OUT/symbolize_bench" "$OUT/big" "$OUT/addrs.txt" 1
timeit "ember symbolize" "$OUT/addrs.txt" build/ember symbolize --llvm --exe "$OUT/big"
if command -v llvm-symbolizer >/dev/null; then
	timeit llvm-symbolizer "$OUT/addrs0x.txt" llvm-symbolizer --inlining --demangle --obj="$OUT/big"
	if [ -s "$OUT/llvm-symbolizer.out" ]; then
		if cmp -s "$OUT/ember symbolize.out" "$OUT/llvm-symbolizer.out"; then
			echo "output: ember symbolize --llvm = llvm-symbolizer --inlining, byte for byte, on all $(wc -l < "$OUT/addrs.txt") addresses"
		else
			echo "output: ember symbolize --llvm differs from llvm-symbolizer on $(diff "$OUT/ember symbolize.out" "$OUT/llvm-symbolizer.out" | grep -c '^<') lines (see $OUT)"
		fi
	fi
fi
build/ember symbolize --exe "$OUT/big" < "$OUT/addrs_slow.txt" > "$OUT/ember_slow.out"
chains_ember "$OUT/ember_slow.out" > "$OUT/ember_slow.chains"
if command -v eu-addr2line >/dev/null; then
	timeit eu-addr2line "$OUT/addrs_eu.txt" eu-addr2line -a -i -f -C -e "$OUT/big"
	[ -s "$OUT/eu-addr2line.out" ] && chains_a2l "$OUT/eu-addr2line.out" > "$OUT/eu.chains" &&
		agree eu-addr2line "$OUT/eu.chains" "$OUT/ember_slow.chains"
fi
if command -v addr2line >/dev/null; then
	timeit addr2line "$OUT/addrs_slow.txt" addr2line -a -i -f -C -e "$OUT/big"
	[ -s "$OUT/addr2line.out" ] && chains_a2l "$OUT/addr2line.out" > "$OUT/a2l.chains" &&
		agree addr2line "$OUT/a2l.chains" "$OUT/ember_slow.chains"
fi

# What knowing a binary by its content costs (docs/symbolization.md): the
# hashes next to the ELF load and CFI compile they key, and sha256sum
# (coreutils) on the same files as the peer.
ID_FILES="$OUT/big /lib/x86_64-linux-gnu/libc.so.6 /usr/lib/x86_64-linux-gnu/libstdc++.so.6"
for f in /usr/lib/x86_64-linux-gnu/libLLVM-15.so.1 /usr/lib/x86_64-linux-gnu/libLLVM-14.so.1; do
	[ -r "$f" ] && ID_FILES="$ID_FILES $f" && break
done
# shellcheck disable=SC2086 # a list of paths
"$OUT/identity_bench" $ID_FILES
for f in $ID_FILES; do
	t0=$(date +%s.%N)
	sha256sum "$f" > /dev/null
	t1=$(date +%s.%N)
	awk -v a="$t0" -v b="$t1" -v f="$(basename "$f")" \
		'BEGIN { printf "sha256sum %-28s %8.1f ms (peer, one process)\n", f, (b - a) * 1e3 }'
done
