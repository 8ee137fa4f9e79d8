#!/bin/sh
# btfgen.sh - Ember's BTF archive: kernels' BTF in, minimized entries out.
#
#   btfgen.sh add SRC [ORIGIN]     add one kernel's whole BTF to btf-archive/sources/
#   btfgen.sh min OUTDIR [OBJ...]  reduce every source against the BPF objects
#                                  (default: every build/bpf/**/*.bpf.o) into
#                                  OUTDIR/index and OUTDIR/<release>/<build>.btf.zst
#   btfgen.sh embed DIR            print the C file compiling DIR into ember
#   btfgen.sh hash [OBJ...]        print the hash of the BPF objects
#   btfgen.sh stats [DIR]          entries, total bytes, bytes per kernel
#   btfgen.sh key SRC              print the release and build SRC would be keyed by
#
# SRC, for `add`, is any of:
#   /sys/kernel/btf/vmlinux   this machine's kernel (key from uname -r / -v)
#   a bzImage (vmlinuz)       its .BTF, from the decompressed payload; key
#                             from the setup header's version string
#   a vmlinux ELF             its .BTF section, or, built without BTF, its
#                             DWARF through `pahole --btf_encode_detached`;
#                             key from the linux_banner string
#   a raw .btf or BTFHub .btf.tar.xz
#                             key from RELEASE= (default: the file name, as
#                             BTFHub names them) and BUILD= (default "*":
#                             BTFHub does not record the build, so such an
#                             entry matches every build of the release)
# RELEASE= and BUILD= override the key for any SRC.  ORIGIN says where the
# BTF came from (package, version, checksum); it is kept in the index.
#
# Why two levels: `bpftool gen min_core_btf` keeps only the types the given
# objects relocate against, so its output is tied to those objects.  The
# whole BTF of each kernel is kept (zstd) in btf-archive/sources/ and the
# build derives the minimized entries from it whenever a BPF object changes
# (Makefile: build/btf-archive, embedded into build/ember).  The index of
# OUTDIR records the objects' hash; ember refuses entries made for others.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
sources=${BTF_SOURCES:-$here/sources}
tab=$(printf '\t')

die() { echo "btfgen: $*" >&2; exit 1; }
need() { command -v "$1" > /dev/null 2>&1 || die "$1 not found (scripts/setup-deps.sh installs it)"; }

magic() { od -An -tx1 -N"${2:-4}" -j"${3:-0}" "$1" 2>/dev/null | tr -d ' \n'; }

objects_list() { # OBJ... or every build/bpf/**/*.bpf.o, sorted
	if [ $# -gt 0 ]; then
		printf '%s\n' "$@" | LC_ALL=C sort
	else
		find "$root/build/bpf" -name '*.bpf.o' 2>/dev/null | LC_ALL=C sort
	fi
}

objects_hash() { # the hash ember embeds: sha256 over the objects' bytes, in path order
	# shellcheck disable=SC2046
	cat $(objects_list "$@") | sha256sum | cut -d' ' -f1
}

# ---- add ---------------------------------------------------------------------

# bzImage -> vmlinux ELF (stdout): the payload is located by the setup header.
bzimage_to_vmlinux() {
	setup=$(od -An -tu1 -j $((0x1f1)) -N1 "$1" | tr -d ' ')
	[ "$setup" = 0 ] && setup=4
	off=$(od -An -tu4 -j $((0x248)) -N4 "$1" | tr -d ' ')
	len=$(od -An -tu4 -j $((0x24c)) -N4 "$1" | tr -d ' ')
	start=$(((setup + 1) * 512 + off))
	dd if="$1" bs=64K iflag=skip_bytes,count_bytes skip="$start" count="$len" status=none > "$2.payload"
	case $(magic "$2.payload" 4) in
	1f8b*) dec="gzip -dc" ;;
	fd377a58) dec="xz -dc" ;;
	5d00*) dec="xz --format=lzma -dc" ;;
	425a*) dec="bzip2 -dc" ;;
	02214c18) need lz4; dec="lz4 -dc" ;;
	28b52ffd) dec="zstd -dc" ;;
	*) die "$1: unknown kernel compression (magic $(magic "$2.payload" 4))" ;;
	esac
	# trailing size words after the stream upset some decompressors: the ELF check follows
	$dec < "$2.payload" 2> /dev/null || true
	rm -f "$2.payload"
}

# "6.1.0-50-cloud-amd64 (debian-kernel@...) #1 SMP ..." from a bzImage header
bzimage_banner() {
	ptr=$(od -An -tu2 -j $((0x20e)) -N2 "$1" | tr -d ' ')
	dd if="$1" bs=1 skip=$((ptr + 0x200)) count=256 status=none | tr '\0' '\n' | head -n 1
}

# "Linux version 6.1.192-x (u@h) (gcc ...) #1 SMP ..." from a vmlinux
elf_banner() {
	strings -a -n 24 "$1" | grep -m 1 '^Linux version ' | sed 's/^Linux version //'
}

key_from_banner() { # banner -> release, build (after the compiler's closing parenthesis)
	release=${RELEASE:-$(echo "$1" | cut -d' ' -f1)}
	build=${BUILD:-$(echo "$1" | sed 's/^[^#]*) \(#.*\)$/\1/; s/^[^#]* \(#.*\)$/\1/')}
}

elf_btf() { # ELF -> raw BTF in $2: its .BTF, or its DWARF encoded by pahole
	if readelf -S -W "$1" 2>/dev/null | grep -q ' \.BTF '; then
		objcopy --dump-section .BTF="$2" "$1" /dev/null 2>/dev/null ||
			objcopy -O binary --only-section=.BTF "$1" "$2"
		how=".BTF section"
	elif readelf -S -W "$1" 2>/dev/null | grep -q ' \.debug_info '; then
		need pahole
		pahole --btf_encode_detached="$2" "$1" > /dev/null ||
			die "$1: pahole could not encode its DWARF"
		how="DWARF via pahole --btf_encode_detached ($(pahole --version))"
	else
		die "$1: an ELF file with neither .BTF nor DWARF (.debug_info)"
	fi
}

cmd_key() {
	[ $# -eq 1 ] || die "usage: btfgen.sh key SRC"
	if [ "$1" = /sys/kernel/btf/vmlinux ]; then
		release=${RELEASE:-$(uname -r)} build=${BUILD:-$(uname -v)}
	elif [ "$(magic "$1" 4 $((0x202)))" = 48647253 ]; then
		key_from_banner "$(bzimage_banner "$1")"
	elif [ "$(magic "$1")" = 7f454c46 ]; then
		key_from_banner "$(elf_banner "$1")"
	else
		die "$1: not a bzImage, a vmlinux or /sys/kernel/btf/vmlinux"
	fi
	printf '%s\t%s\n' "$release" "$build"
}

cmd_add() {
	[ $# -ge 1 ] || die "usage: btfgen.sh add SRC [ORIGIN]"
	src=$1
	origin=${2:-}
	[ -r "$src" ] || die "$src: cannot read"
	need bpftool
	need zstd
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	raw="$tmp/full.btf"
	if [ "$src" = /sys/kernel/btf/vmlinux ]; then
		cat "$src" > "$raw"
		release=${RELEASE:-$(uname -r)}
		build=${BUILD:-$(uname -v)}
		how="/sys/kernel/btf/vmlinux of $(hostname 2>/dev/null || echo a host)"
	elif [ "$(magic "$src" 4 $((0x202)))" = 48647253 ]; then # "HdrS": a bzImage
		bzimage_to_vmlinux "$src" "$tmp/vmlinux" > "$tmp/vmlinux"
		[ "$(magic "$tmp/vmlinux")" = 7f454c46 ] || die "$src: payload is not an ELF vmlinux"
		elf_btf "$tmp/vmlinux" "$raw"
		key_from_banner "$(bzimage_banner "$src")"
		how="$how of bzImage $(basename "$src")"
	elif [ "$(magic "$src")" = 7f454c46 ]; then
		elf_btf "$src" "$raw"
		key_from_banner "$(elf_banner "$src")"
		how="$how of $(basename "$src")"
	else
		case $(magic "$src" 2) in
		fd37) tar -C "$tmp" -xJf "$src"
			f=$(find "$tmp" -name '*.btf' | head -n 1)
			[ -n "$f" ] || die "$src: no .btf file inside"
			mv "$f" "$raw"
			base=$(basename "$f" .btf) ;;
		9feb) cp "$src" "$raw"; base=$(basename "$src" .btf) ;;
		*) die "$src: not /sys/kernel/btf/vmlinux, a bzImage, an ELF vmlinux, raw BTF or a .btf.tar.xz" ;;
		esac
		release=${RELEASE:-$base}
		build=${BUILD:-*}
		how="BTF file $(basename "$src")"
	fi
	[ -n "$release" ] && [ -n "$build" ] || die "$src: cannot tell the kernel release and build (set RELEASE= and BUILD=)"
	echo "$release" | grep -q '^[[:graph:]]*$' || die "release '$release' has blanks"
	case $release in */*) die "release '$release' has a '/'" ;; esac
	[ "$(printf %s "$build" | wc -c)" -le 64 ] || die "build '$build' is longer than uname -v can be"
	bpftool btf dump file "$raw" > /dev/null 2>&1 || die "$src: the BTF does not parse (bpftool btf dump)"
	bytes=$(wc -c < "$raw")
	sum=$(sha256sum < "$src" 2>/dev/null | cut -c1-16)
	origin="${origin:+$origin; }$how; sha256 of the input ${sum}..."
	origin=$(printf %s "$origin" | tr '\t\n' '  ')

	id=$(printf %s "$build" | sha256sum | cut -c1-12)
	file="$release/$id.btf.zst"
	mkdir -p "$sources/$release"
	zstd -q -19 -f "$raw" -o "$sources/$file"
	index="$sources/index"
	[ -f "$index" ] || printf '# release\tbuild\tfile\tbytes\torigin\n' > "$index"
	{
		grep -v "^$release$tab$build$tab" "$index" || true
		printf '%s\t%s\t%s\t%s\t%s\n' "$release" "$build" "$file" "$bytes" "$origin"
	} > "$tmp/index"
	{ grep '^#' "$tmp/index"; grep -v '^#' "$tmp/index" | LC_ALL=C sort; } > "$index"
	echo "btfgen: added $release '$build': $bytes bytes of BTF, $(wc -c < "$sources/$file") in $file"
}

# ---- min ---------------------------------------------------------------------

cmd_min() {
	[ $# -ge 1 ] || die "usage: btfgen.sh min OUTDIR [OBJ...]"
	out=$1
	shift
	need bpftool
	need zstd
	objs=$(objects_list "$@")
	[ -n "$objs" ] || die "no BPF objects (build them first: make)"
	hash=$(objects_hash "$@")
	mkdir -p "$out"
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	printf 'ember-btf-archive\t1\n# made by btf-archive/btfgen.sh from btf-archive/sources against:\n' > "$tmp/index"
	for o in $objs; do echo "#   $(basename "$o")" >> "$tmp/index"; done
	printf 'objects\t%s\n' "$hash" >> "$tmp/index"
	n=0
	if [ -f "$sources/index" ]; then
		grep -v '^#' "$sources/index" > "$tmp/sources" || true
		while IFS="$tab" read -r release build file bytes origin; do
			[ -n "$release" ] || continue
			zstd -q -dc "$sources/$file" > "$tmp/full.btf" || die "$sources/$file: cannot decompress"
			# shellcheck disable=SC2086
			bpftool gen min_core_btf "$tmp/full.btf" "$tmp/min.btf" $objs > "$tmp/log" 2>&1 ||
				{ cat "$tmp/log" >&2; die "min_core_btf failed for $release"; }
			mkdir -p "$(dirname "$out/$file")"
			zstd -q -19 -f "$tmp/min.btf" -o "$out/$file"
			printf 'entry\t%s\t%s\t%s\t%s\t%s\n' "$release" "$build" "$file" \
				"$(wc -c < "$tmp/min.btf")" "$origin" >> "$tmp/index"
			n=$((n + 1))
		done < "$tmp/sources"
	fi
	mv "$tmp/index" "$out/index"
	echo "btfgen: $out: $n kernels, objects $(echo "$hash" | cut -c1-12)"
}

# ---- embed -------------------------------------------------------------------

cstr() { printf '"%s"' "$(printf %s "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')"; }

cmd_embed() {
	[ $# -eq 1 ] || die "usage: btfgen.sh embed DIR"
	dir=$1
	[ -f "$dir/index" ] || die "$dir/index: missing (btfgen.sh min first)"
	echo '/* generated by btf-archive/btfgen.sh embed: do not edit */'
	echo '#include "agent/btf_archive_embedded.h"'
	printf 'const char ember_btf_objects_hash[] = %s;\n' "$(cstr "$(sed -n 's/^objects\t//p' "$dir/index")")"
	n=0
	grep "^entry$tab" "$dir/index" | while IFS="$tab" read -r _ release build file bytes origin; do
		sh "$root/scripts/c-array.sh" "entry_$n" "$dir/$file"
		n=$((n + 1))
	done
	echo 'const struct ember_btf_entry ember_btf_embedded[] = {'
	n=0
	grep "^entry$tab" "$dir/index" > /dev/null || echo '	{0},'
	grep "^entry$tab" "$dir/index" | while IFS="$tab" read -r _ release build file bytes origin; do
		printf '\t{%s, %s, NULL, entry_%d, sizeof(entry_%d), %s, %s},\n' "$(cstr "$release")" \
			"$(cstr "$build")" "$n" "$n" "$bytes" "$(cstr "$origin")"
		n=$((n + 1))
	done
	echo '};'
	printf 'const size_t ember_btf_embedded_count = %d;\n' "$(grep -c "^entry$tab" "$dir/index" || true)"
}

# ---- stats -------------------------------------------------------------------

cmd_stats() {
	dir=${1:-$root/build/btf-archive}
	[ -f "$dir/index" ] || die "$dir/index: missing (make btf-archive)"
	total=0 raw=0 n=0
	printf '%-40s %10s %10s %12s\n' "kernel release" "BTF bytes" "zstd bytes" "source zstd"
	while IFS="$tab" read -r _ release build file bytes origin; do
		z=$(wc -c < "$dir/$file")
		s=$(wc -c < "$sources/$file" 2>/dev/null || echo 0)
		printf '%-40s %10d %10d %12d\n' "$release" "$bytes" "$z" "$s"
		total=$((total + z)) raw=$((raw + bytes)) n=$((n + 1))
	done <<EOF
$(grep "^entry$tab" "$dir/index")
EOF
	echo "entries: $n; minimized: $raw bytes, $total zstd ($([ $n -gt 0 ] && echo $((total / n)) || echo 0) per kernel); sources: $(cat "$sources"/*/*.btf.zst 2>/dev/null | wc -c) zstd bytes"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
add) cmd_add "$@" ;;
min) cmd_min "$@" ;;
embed) cmd_embed "$@" ;;
hash) objects_hash "$@" ;;
stats) cmd_stats "$@" ;;
key) cmd_key "$@" ;;
*) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
