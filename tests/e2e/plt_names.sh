#!/bin/sh
# plt_names: PLT stubs are named "FUNC@plt", as objdump names them.
#
# A C and a C++ program are linked in every PLT layout Debian's gcc and
# GNU ld produce: lazy binding, -z now, IBT (-fcf-protection -z ibtplt:
# .plt.sec), IBT with -z now, non-PIE, and with a function whose address
# is taken (.plt.got).  For each binary, every byte of .plt, .plt.sec and
# .plt.got is symbolized with `ember symbolize --exe`:
#   - an address objdump -d -C labels <NAME@plt> (up to the next label or
#     the section end) must be named NAME@plt by Ember;
#   - an address Ember names *@plt must lie in such an objdump entry
#     (PLT0 and IBT's lazy stubs stay unnamed in both).
# Needs no BPF.
. "$(dirname "$0")/lib.sh"
command -v objdump > /dev/null || fail "objdump not installed (binutils)"
[ -x "$EMBER" ] || fail "$EMBER not built"

cat > "$OUT/p.c" << 'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int (*fp)(const char *) = puts; /* address taken: .plt.got in a PIE */
int main(int argc, char **argv)
{
	char b[64];
	snprintf(b, sizeof b, "%d", argc);
	puts(b);
	fp(b);
	return strlen(argv[0]) > 1000 ? atoi(b) + (int)strtoul(b, 0, 10) : 0;
}
EOF
cat > "$OUT/q.cpp" << 'EOF'
#include <map>
#include <string>
#include <iostream>
int main(int argc, char **argv)
{
	std::map<std::string, int> m;
	for (int i = 0; i < argc; i++)
		m[argv[i]] += i;
	std::cout << m.size() << std::endl;
	return 0;
}
EOF

n_bins=0 n_named=0
check() { # check NAME: compare Ember with objdump on $OUT/NAME
	bin="$OUT/$1"
	# objdump's labels, in decimal: "start name" (an entry ends at the next label)
	objdump -d -C -j .plt -j .plt.sec -j .plt.got "$bin" 2> /dev/null |
		sed -n 's/^\([0-9a-f]*\) <\(.*\)>:$/\1 \2/p' |
		while read -r a name; do echo "$((0x$a)) $name"; done > "$OUT/$1.labels"
	# every byte of each PLT section (readelf's section table)
	readelf -SW "$bin" | sed 's/^ *\[ *[0-9]*\] //' |
		awk '$1 == ".plt" || $1 == ".plt.sec" || $1 == ".plt.got" { print $1, $3, $5 }' \
			> "$OUT/$1.sections"
	[ -s "$OUT/$1.sections" ] || fail "$1: no PLT section"
	: > "$OUT/$1.addrs"
	while read -r sec addr size; do
		a=$((0x$addr)) e=$((0x$addr + 0x$size))
		while [ $a -lt $e ]; do
			echo $a >> "$OUT/$1.addrs"
			a=$((a + 1))
		done
	done < "$OUT/$1.sections"
	awk '{ printf "%x\n", $1 }' "$OUT/$1.addrs" |
		"$EMBER" symbolize --exe "$bin" --json > "$OUT/$1.json" ||
		fail "$1: ember symbolize failed"
	[ "$(wc -l < "$OUT/$1.json")" -eq "$(wc -l < "$OUT/$1.addrs")" ] ||
		fail "$1: ember symbolize answered $(wc -l < "$OUT/$1.json") of $(wc -l < "$OUT/$1.addrs") addresses"
	# what objdump says each address is: the label covering it if it is NAME@plt, else "-"
	awk 'NR == FNR { s = $1; $1 = ""; sub(/^ /, ""); starts[++n] = s + 0; names[n] = $0; next }
	     { a = $1 + 0; want = "-"
	       for (i = 1; i <= n; i++) {
		       hi = i < n ? starts[i + 1] : 2^52
		       if (a >= starts[i] && a < hi) { want = names[i]; break } }
	       if (want !~ /@plt$/) want = "-"
	       printf "%x %s\n", a, want }' "$OUT/$1.labels" "$OUT/$1.addrs" > "$OUT/$1.want"
	# and Ember: the function of each JSON line, "-" unless it is a PLT name
	sed 's/.*"function":\(null\|"\(\([^"\\]\|\\.\)*\)"\).*/\2/; s/\\"/"/g' "$OUT/$1.json" |
		awk '{ print ($0 ~ /@plt$/) ? $0 : "-" }' > "$OUT/$1.got"
	paste -d '|' "$OUT/$1.want" "$OUT/$1.got" |
		awk -F'|' '{ split($1, w, " "); addr = w[1]; want = substr($1, length(addr) + 2)
			     if (want != $2) { bad++; if (bad <= 5) printf "  0x%s: objdump %s, ember %s\n", addr, want, $2 }
			     if ($2 != "-") named++ }
			   END { printf "%d %d\n", bad + 0, named + 0 }' > "$OUT/$1.cmp"
	bad=$(tail -n 1 "$OUT/$1.cmp" | cut -d' ' -f1)
	named=$(tail -n 1 "$OUT/$1.cmp" | cut -d' ' -f2)
	entries=$(grep -c '@plt$' "$OUT/$1.labels")
	note "$1: $(wc -l < "$OUT/$1.addrs") PLT bytes, $entries objdump entries, $named bytes named by Ember, $bad disagreements"
	[ "$bad" -eq 0 ] || { head -n -1 "$OUT/$1.cmp"; fail "$1: Ember and objdump disagree"; }
	[ "$entries" -ge 3 ] || fail "$1: objdump names only $entries PLT entries"
	[ "$named" -gt 0 ] || fail "$1: Ember names no PLT byte"
	n_bins=$((n_bins + 1))
	n_named=$((n_named + named))
}

gcc -O1 -o "$OUT/lazy" "$OUT/p.c" || fail "gcc failed"
gcc -O1 -Wl,-z,now -o "$OUT/now" "$OUT/p.c" || fail "gcc failed"
gcc -O1 -no-pie -o "$OUT/nopie" "$OUT/p.c" || fail "gcc failed"
g++ -O1 -o "$OUT/cxx" "$OUT/q.cpp" || fail "g++ failed"
for b in lazy now nopie cxx; do check $b; done
# IBT: .plt.sec (binutils >= 2.29 with -z ibtplt)
if gcc -O1 -fcf-protection=full -Wl,-z,ibtplt -o "$OUT/ibt" "$OUT/p.c" 2> /dev/null &&
	readelf -SW "$OUT/ibt" | grep -q '\.plt\.sec'; then
	gcc -O1 -fcf-protection=full -Wl,-z,ibtplt -Wl,-z,now -o "$OUT/ibtnow" "$OUT/p.c" ||
		fail "gcc failed"
	for b in ibt ibtnow; do check $b; done
else
	fail "this toolchain cannot link an IBT PLT (.plt.sec)"
fi
# the .plt.got layout must have been exercised
grep -q '^\.plt\.got' "$OUT/lazy.sections" || fail "no .plt.got in the PIE test binary"
note "$n_bins binaries, $n_named PLT bytes named, all as objdump names them"
exit 0
