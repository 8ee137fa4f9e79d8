#!/bin/sh
# btf_archive: ember loads through a BTF archive entry when it is told the
# kernel has no BTF (--no-feature kernel_btf): an archive made here by
# btf-archive/btfgen.sh from this kernel's /sys/kernel/btf/vmlinux, reduced
# against the objects of this build; the profile is as whole as with the
# kernel's BTF.  Refused, each with a message that names the kernel and
# the fix: an entry made for other BPF objects, an archive without this
# kernel, one with another build of this release.  --btf takes raw BTF and
# zstd'ed BTF and rejects what is neither.
. "$(dirname "$0")/lib.sh"
require_bpf
require_prog fp_chain_nofp
command -v bpftool > /dev/null && command -v zstd > /dev/null ||
	fail "bpftool or zstd missing (scripts/setup-deps.sh installs them)"

gen() { sh btf-archive/btfgen.sh "$@" > "$OUT/btfgen.log" 2>&1 || { cat "$OUT/btfgen.log"; fail "btfgen.sh $*"; }; }
# this kernel, this kernel under another release name, another build of this release
BTF_SOURCES="$OUT/src" gen add /sys/kernel/btf/vmlinux "e2e test"
BTF_SOURCES="$OUT/src" gen min "$OUT/arch" build/bpf/*/*.bpf.o
BTF_SOURCES="$OUT/src" sh btf-archive/btfgen.sh stats "$OUT/arch" 2> /dev/null | sed 's/^/  /'
mkdir -p "$OUT/src2" "$OUT/src3"
sed "s/^$(uname -r)	/0.0.0-other	/" "$OUT/src/index" > "$OUT/src2/index"
sed "s/^\($(uname -r)\)	[^	]*	/\1	#999 another build	/" "$OUT/src/index" > "$OUT/src3/index"
ln -s "$OUT/src/$(uname -r)" "$OUT/src2/$(uname -r)"
ln -s "$OUT/src/$(uname -r)" "$OUT/src3/$(uname -r)"
BTF_SOURCES="$OUT/src2" gen min "$OUT/other" build/bpf/*/*.bpf.o
BTF_SOURCES="$OUT/src3" gen min "$OUT/build" build/bpf/*/*.bpf.o

start_bg "$PROGS/fp_chain_nofp" 600
pid=$BG_LAST
sleep 0.3
chain="main;work::chain_a(double);work::chain_b(double);work::hot_leaf(double)"

# through the archive
"$EMBER" record --pid "$pid" --duration 3 --output "$OUT/arch.folded" --no-feature kernel_btf \
	--btf-archive "$OUT/arch" 2> "$OUT/arch.err" || { cat "$OUT/arch.err"; fail "record through the archive failed"; }
grep '^ember: BTF:' "$OUT/arch.err" | sed 's/^/  /'
grep -q "^ember: BTF: archive: $OUT/arch/$(uname -r)/" "$OUT/arch.err" || fail "BTF did not come from the archive entry"
grep -q "kernel_btf=off" "$OUT/arch.err" || fail "kernel_btf not reported off"
pct=$(share "$OUT/arch.folded" "$chain")
note "through the archive: whole chain on $pct% of $(total_samples "$OUT/arch.folded") samples"
[ "$pct" -ge 80 ] || fail "chain on $pct% of samples through the archive"

refused() { # name, expected text, ember options...
	what=$1 want=$2
	shift 2
	if "$EMBER" record --pid "$pid" --duration 1 --output "$OUT/x.folded" "$@" 2> "$OUT/refused.err"; then
		fail "$what: ember record should have refused"
	fi
	grep -q -- "$want" "$OUT/refused.err" || { cat "$OUT/refused.err"; fail "$what: no '$want' in the message"; }
	note "$what: $(head -c 160 "$OUT/refused.err")..."
}

# an archive made for other objects
cp -r "$OUT/arch" "$OUT/stale"
sed -i 's/^objects\t.*/objects\t0000000000000000000000000000000000000000000000000000000000000000/' "$OUT/stale/index"
refused "stale entry" "reduced against other BPF objects" --no-feature kernel_btf --btf-archive "$OUT/stale"
# an archive without this kernel (and none embedded for it)
if ! grep -q "^entry	$(uname -r)	" build/btf-archive/index; then
	refused "no entry" "kernel $(uname -r) .* has no BTF" --no-feature kernel_btf --btf-archive "$OUT/other"
	grep -q "make btf-archive BTF=FILE" "$OUT/refused.err" || fail "the refusal does not say how to add the kernel"
	# another build of this release
	refused "other build" "only as build '#999 another build'" --no-feature kernel_btf --btf-archive "$OUT/build"
fi

# --btf: the raw entry, the zstd'ed one, and a file that is neither
f=$(sed -n "s/^entry	$(uname -r)	[^	]*	\([^	]*\)	.*/\1/p" "$OUT/arch/index")
zstd -q -d -c "$OUT/arch/$f" > "$OUT/raw.btf"
for btf in "$OUT/raw.btf" "$OUT/arch/$f"; do
	"$EMBER" record --pid "$pid" --duration 2 --output "$OUT/file.folded" --btf "$btf" 2> "$OUT/file.err" ||
		{ cat "$OUT/file.err"; fail "--btf $btf failed"; }
	grep -q "^ember: BTF: file: " "$OUT/file.err" || fail "--btf $btf: BTF source not reported as file"
	pct=$(share "$OUT/file.folded" "$chain")
	note "--btf $(basename "$btf"): whole chain on $pct%"
	[ "$pct" -ge 80 ] || fail "--btf $btf: chain on $pct%"
done
head -c 1000 /dev/urandom > "$OUT/junk.btf"
refused "junk --btf" "neither raw BTF nor an ELF file with .BTF" --btf "$OUT/junk.btf"
exit 0
