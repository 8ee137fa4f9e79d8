#!/bin/sh
# build-nobtf.sh OUTDIR - build a Linux 6.1 kernel without BTF, for the kernel matrix.
#
# Fleets of 5.4/5.10-era machines run kernels built without
# CONFIG_DEBUG_INFO_BTF: no /sys/kernel/btf/vmlinux, no BTF in the verifier
# (no tp_btf, fentry or BTF-typed helpers).  No such kernel ships in
# Debian 12, so this script makes one from Debian's own linux-source-6.1
# (fetched with `apt-get download`, never installed): tinyconfig plus
# tests/kernels/nobtf.config (BPF, perf, kprobes, ftrace, DWARF for pahole;
# BTF off).  Debian's whole cloud config builds ~8x as many
# objects, hours on this shared 2-core machine; what the matrix needs from
# this kernel is the absence of BTF, not Debian's driver set.
#
# The kernel release carries a hash of the config and the source version
# (6.1.NNN-ember-nobtf-HASH), and the build string is fixed
# (KBUILD_BUILD_TIMESTAMP etc.), so a rebuild from the same inputs is the
# same kernel to the BTF archive.  The result is cached in OUTDIR/<key>/:
#   bzImage  vmlinux (with DWARF)  release  version  config
# and OUTDIR/current names the latest key.
#
#   JOBS=N  parallel jobs (default 2)
set -eu
out=$1
jobs=${JOBS:-2}
mkdir -p "$out"
out=$(cd "$out" && pwd)
here=$(cd "$(dirname "$0")" && pwd)

ver=$(apt-cache policy linux-source-6.1 | awk '/Candidate:/ { print $2 }')
[ -n "$ver" ] && [ "$ver" != "(none)" ] || { echo "build-nobtf: linux-source-6.1 is not in the apt sources" >&2; exit 1; }

dl="$out/debs"
mkdir -p "$dl"
for p in linux-source-6.1; do
	if ! ls "$dl/${p}_${ver}"_*.deb > /dev/null 2>&1; then
		(cd "$dl" && apt-get download -q "$p=$ver") > "$dl/$p.log" 2>&1 ||
			{ cat "$dl/$p.log" >&2; echo "build-nobtf: cannot download $p=$ver" >&2; exit 1; }
	fi
done

# the key: source version + config fragment + this script
key=$(cat "$0" "$here/nobtf.config" | { cat; echo "$ver"; } | sha256sum | cut -c1-10)
dst="$out/$key"
if [ -s "$dst/bzImage" ] && [ -s "$dst/vmlinux" ] && [ -s "$dst/version" ]; then
	echo "build-nobtf: cached $dst ($(cat "$dst/release"))"
	ln -sfn "$key" "$out/current"
	exit 0
fi

src="$out/src-$ver"
if [ ! -d "$src/linux" ]; then
	rm -rf "$src"
	mkdir -p "$src/pkg"
	dpkg-deb -x "$dl/linux-source-6.1_${ver}"_*.deb "$src/pkg"
	tar -C "$src" -xaf "$src/pkg/usr/src/linux-source-6.1.tar.xz"
	mv "$src/linux-source-6.1" "$src/linux"
fi
build="$out/build-$key"
mkdir -p "$build"
mk() { make -s -C "$src/linux" O="$build" "$@"; }
mk tinyconfig
{ cat "$here/nobtf.config"; echo "CONFIG_LOCALVERSION=\"-ember-nobtf-$(echo "$key" | cut -c1-6)\""; } > "$build/fragment"
"$src/linux/scripts/kconfig/merge_config.sh" -m -O "$build" "$build/.config" "$build/fragment" > "$build/merge.log"
export KBUILD_BUILD_TIMESTAMP="Debian linux-source-6.1 $ver" KBUILD_BUILD_USER=ember \
	KBUILD_BUILD_HOST=ember KBUILD_BUILD_VERSION=1
mk olddefconfig
# every option asked for must have stuck (a dependency missing drops it silently)
missing=$(grep '^CONFIG_.*=y$' "$here/nobtf.config" | while read -r line; do
	grep -qx "$line" "$build/.config" || echo "${line%=y}"
done)
[ -z "$missing" ] || { echo "build-nobtf: options not set after olddefconfig:" $missing >&2; exit 1; }
! grep -q '^CONFIG_DEBUG_INFO_BTF=y' "$build/.config" ||
	{ echo "build-nobtf: CONFIG_DEBUG_INFO_BTF still set" >&2; exit 1; }
echo "build-nobtf: building $(mk kernelrelease) with $jobs jobs in $build"
start=$(date +%s)
mk -j"$jobs" bzImage
echo "build-nobtf: built in $(( $(date +%s) - start )) s"

mkdir -p "$dst"
cp "$build/arch/x86/boot/bzImage" "$dst/bzImage"
cp "$build/.config" "$dst/config"
mk kernelrelease > "$dst/release"
# uname -v as the kernel will report it: "#1 SMP PREEMPT_DYNAMIC <timestamp>"
cat "$build"/include/generated/*.h | sed -n 's/^#define UTS_VERSION "\(.*\)"$/\1/p' > "$dst/version"
[ -s "$dst/version" ] || { echo "build-nobtf: no UTS_VERSION in include/generated/" >&2; exit 1; }
mv "$build/vmlinux" "$dst/vmlinux"
rm -rf "$build" "$src"
ln -sfn "$key" "$out/current"
echo "build-nobtf: $dst: $(cat "$dst/release") $(cat "$dst/version")"
