#!/bin/sh
# buildid_collision: two different programs linked with one
# `-Wl,--build-id=0x...` are profiled together by `ember record`; a
# copied build-id must not make one borrow the other's names or unwind
# table (issue [9] E: the second got the first's names, 69% truncated).
#   - no stack mixes functions only one of them has (the oracle: `nm` on
#     each binary), and each program's own hot chain is in >= 90% of the
#     stacks holding its functions (>= 100 each);
#   - the one built without frame pointers (needs its own CFI table) has
#     >= 99% of its stacks reaching _start / __libc_start_main;
#   - recorded twice with one unwind cache: the second run reads both
#     tables from the disk cache and is as right as the first;
#   - the collision is counted, by the symbolizer and by the unwind tables.
. "$(dirname "$0")/lib.sh"
require_bpf
command -v nm > /dev/null || fail "nm not installed (binutils)"

BID=0xb1dc0111b1dc0111b1dc0111b1dc0111b1dc0111
cat > "$OUT/alpha.c" << 'EOF'
#include <stdlib.h>
#include <time.h>
volatile double alpha_sink;
__attribute__((noinline)) double alpha_leaf(double x)
{
	for (int i = 0; i < 20000; i++)
		x = x * 1.0000001 + 0.5 / (x + 1.0);
	return x;
}
__attribute__((noinline)) double alpha_middle(double x)
{
	return alpha_leaf(x) + 1.0;
}
__attribute__((noinline)) double alpha_outer(double x)
{
	return alpha_middle(x) * 0.5;
}
int main(int argc, char **argv)
{
	time_t end = time(NULL) + (argc > 1 ? atoi(argv[1]) : 10);
	while (time(NULL) < end)
		alpha_sink = alpha_outer(alpha_sink);
	return 0;
}
EOF
cat > "$OUT/bravo.c" << 'EOF'
#include <stdlib.h>
#include <string.h>
#include <time.h>
volatile double bravo_sink;
/* stack arrays and several levels: without frame pointers only CFI unwinds these */
__attribute__((noinline)) double bravo_kernel(double *v, int n)
{
	double acc = 0;
	for (int r = 0; r < 400; r++)
		for (int i = 0; i < n; i++)
			acc += v[i] * 1.0000001 + 0.25 / (v[i] + 1.0);
	return acc;
}
__attribute__((noinline)) double bravo_stage2(double seed)
{
	double v[48];
	for (int i = 0; i < 48; i++)
		v[i] = seed + i;
	return bravo_kernel(v, 48);
}
__attribute__((noinline)) double bravo_stage1(double seed)
{
	char pad[256];
	memset(pad, (int)seed & 0x7f, sizeof(pad));
	return bravo_stage2(seed + pad[(int)seed & 0xff]) - 1.0;
}
__attribute__((noinline)) double bravo_driver(double seed)
{
	return bravo_stage1(seed) + bravo_stage1(seed + 1.0);
}
int main(int argc, char **argv)
{
	time_t end = time(NULL) + (argc > 1 ? atoi(argv[1]) : 10);
	while (time(NULL) < end)
		bravo_sink = bravo_driver(bravo_sink);
	return 0;
}
EOF
gcc -O2 -g -fno-omit-frame-pointer -Wl,--build-id=$BID -o "$OUT/bid_alpha" "$OUT/alpha.c" ||
	fail "gcc failed"
gcc -O2 -g -fomit-frame-pointer -Wl,--build-id=$BID -o "$OUT/bid_bravo" "$OUT/bravo.c" ||
	fail "gcc failed"
for p in alpha bravo; do
	id=$(readelf -n "$OUT/bid_$p" | sed -n 's/.*Build ID: //p')
	[ "$id" = "${BID#0x}" ] || fail "bid_$p has build-id '$id', expected ${BID#0x}"
	nm "$OUT/bid_$p" | awk '$2 ~ /^[Tt]$/ { print $3 }' | sort -u > "$OUT/$p.nm"
done
# the functions only one of them has: these must never show up in the other's stacks
comm -23 "$OUT/alpha.nm" "$OUT/bravo.nm" > "$OUT/alpha.only"
comm -13 "$OUT/alpha.nm" "$OUT/bravo.nm" > "$OUT/bravo.only"
grep -qx alpha_leaf "$OUT/alpha.only" && grep -qx bravo_kernel "$OUT/bravo.only" ||
	fail "nm does not list the test functions"

cache="$OUT/unwind-cache"
record() { # record RUN: profile both programs, check, print the figures
	start_bg "$OUT/bid_alpha" 8
	pa=$BG_LAST
	start_bg "$OUT/bid_bravo" 8
	pb=$BG_LAST
	sleep 0.5
	# --pid loads both programs' tables before sampling starts: no
	# frame-pointer-only warm-up, so every truncated stack is a wrong table
	"$EMBER" record --pid "$pa,$pb" --duration 4 --frequency 499 --unwind-cache "$cache" \
		--output "$OUT/run$1.folded" --stats 2> "$OUT/run$1.err" ||
		{ cat "$OUT/run$1.err"; fail "run $1: ember record failed"; }
	kill "$pa" "$pb" 2> /dev/null
	wait "$pa" "$pb" 2> /dev/null
	grep -E "^unwind tables|^symbolizer" "$OUT/run$1.err" | sed 's/^/  /'
	# a stack is p's when it holds one of p's own functions (main and libc
	# are in both); none may hold functions of both
	for p in alpha bravo; do
		other=$([ $p = alpha ] && echo bravo || echo alpha)
		awk -F';' -v own="$OUT/$p.only" -v oth="$OUT/$other.only" -v mixed="$OUT/run$1.mixed" '
			BEGIN { while ((getline l < own) > 0) mine[l] = 1
				while ((getline l < oth) > 0) theirs[l] = 1 }
			{ line = $0; sub(/ [0-9]+$/, "", line); k = split(line, f, ";"); m = 0; t = 0
			  for (i = 1; i <= k; i++) { if (f[i] in mine) m = 1; if (f[i] in theirs) t = 1 }
			  if (m && t) print > mixed; else if (m) print }' \
			"$OUT/run$1.folded" > "$OUT/run$1.$p"
	done
	[ -s "$OUT/run$1.mixed" ] &&
		{ head -n 3 "$OUT/run$1.mixed"; fail "run $1: stacks mix alpha's and bravo's functions"; }
	na=$(total_samples "$OUT/run$1.alpha")
	nb=$(total_samples "$OUT/run$1.bravo")
	note "run $1: alpha $na samples, bravo $nb samples"
	[ "$na" -ge 100 ] && [ "$nb" -ge 100 ] || fail "run $1: too few samples"
	# each program's hot chain, under its own names
	ca=$(share "$OUT/run$1.alpha" "alpha_outer;alpha_middle;alpha_leaf")
	cb=$(share "$OUT/run$1.bravo" "bravo_driver;bravo_stage1;bravo_stage2;bravo_kernel")
	note "run $1: alpha's chain in $ca% of its samples, bravo's in $cb%"
	[ "$ca" -ge 90 ] && [ "$cb" -ge 90 ] || fail "run $1: a program's own chain is missing"
	# bravo has no frame pointers: whole stacks only with its own CFI table
	# (with two pids each line starts with "name-PID")
	rooted=$(awk '{ n = $NF; t += n; split($1, f, ";"); r = f[1] ~ /-[0-9]+$/ ? f[2] : f[1]
			if (r ~ /^(_start|__libc_start_main|__libc_start_call_main)$/) ok += n }
			END { printf "%d\n", t ? ok * 1000 / t : 0 }' "$OUT/run$1.bravo")
	note "run $1: bravo's stacks reaching _start: $(echo "$rooted" | sed 's/\(.\)$/.\1/')%"
	[ "$rooted" -ge 990 ] || fail "run $1: only $rooted/1000 of bravo's stacks are whole"
	sc=$(sed -n 's/^symbolizer: .* \([0-9]*\) build-id collisions.*/\1/p' "$OUT/run$1.err")
	uc=$(sed -n 's/^unwind tables: .* \([0-9]*\) build-id collisions.*/\1/p' "$OUT/run$1.err")
	note "run $1: collisions counted: symbolizer ${sc:-?}, unwind tables ${uc:-?}"
	[ "${sc:-0}" -ge 1 ] || fail "run $1: the symbolizer did not count the collision"
	hits=$(sed -n 's/^unwind tables: .*, \([0-9]*\) from cache,.*/\1/p' "$OUT/run$1.err")
	eval "hits$1=\${hits:-0} uc$1=\${uc:-0}"
}

record 1
ls "$cache" | grep "^${BID#0x}-" > "$OUT/cached.txt"
note "cached tables for build-id ${BID#0x}: $(wc -l < "$OUT/cached.txt")"
[ "$(wc -l < "$OUT/cached.txt")" -eq 2 ] || fail "expected two cached tables for the shared build-id"
[ "$uc1" -ge 1 ] || fail "run 1: the unwind tables did not count the collision"
record 2
# run 2 reads both programs' tables back (libc's too)
[ "$hits2" -ge 2 ] || fail "run 2: only $hits2 tables came from the disk cache"
[ "$uc2" -ge 2 ] || fail "run 2: the unwind tables counted $uc2 collisions, expected 2"
exit 0
