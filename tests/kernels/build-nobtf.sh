#!/bin/sh
# build-nobtf.sh OUTDIR - build a Linux 6.1 kernel without BTF, for the kernel matrix.
#
# Fleets of 5.4/5.10-era machines run kernels built without
# CONFIG_DEBUG_INFO_BTF: no /sys/kernel/btf/vmlinux, no BTF in the verifier
# (no tp_btf, fentry or BTF-typed helpers).  No such kernel ships in
# Debian 12, so this script makes one from Debian's own sources: the
# linux-source-6.1 tarball and the cloud-amd64 config from linux-config-6.1
# (both fetched with `apt-get download`, never installed), with BTF off,
# DWARF on (pahole turns it into the archive's BTF source) and modules off
# (nothing in the matrix needs them, and it halves the build).
#
# The kernel release carries a hash of the config and the source version
# (6.1.NNN-ember-nobtf-HASH), and the build string is fixed
# (KBUILD_BUILD_TIMESTAMP etc.), so a rebuild from the same inputs is the
# same kernel to the BTF archive.  The result is cached in OUTDIR/<key>/:
#   bzImage  vmlinux (with DWARF)  release  version  config
# and OUTDIR/current names the latest key.  About 12-25 min on 2 cores.
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
for p in linux-source-6.1 linux-config-6.1; do
	if ! ls "$dl/${p}_${ver}"_*.deb > /dev/null 2>&1; then
		(cd "$dl" && apt-get download -q "$p=$ver") > "$dl/$p.log" 2>&1 ||
			{ cat "$dl/$p.log" >&2; echo "build-nobtf: cannot download $p=$ver" >&2; exit 1; }
	fi
done

# the key: source version + the config changes below + this script
key=$(cat "$0" | { cat; echo "$ver"; } | sha256sum | cut -c1-10)
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
	for p in linux-source-6.1 linux-config-6.1; do
		dpkg-deb -x "$dl/${p}_${ver}"_*.deb "$src/pkg"
	done
	tar -C "$src" -xaf "$src/pkg/usr/src/linux-source-6.1.tar.xz"
	mv "$src/linux-source-6.1" "$src/linux"
fi
cfg=$(ls "$src"/pkg/usr/src/linux-config-6.1/config.amd64_none_cloud-amd64.xz)

build="$out/build-$key"
mkdir -p "$build"
xz -dc "$cfg" > "$build/.config"
sc() { "$src/linux/scripts/config" --file "$build/.config" "$@"; }
sc --disable DEBUG_INFO_BTF --disable DEBUG_INFO_BTF_MODULES \
	--disable MODULES --disable MODULE_SIG \
	--set-str SYSTEM_TRUSTED_KEYS "" --set-str SYSTEM_REVOCATION_KEYS "" \
	--disable LOCALVERSION_AUTO --set-str LOCALVERSION "-ember-nobtf-$(echo "$key" | cut -c1-6)" \
	--enable DEBUG_INFO --enable DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT --disable DEBUG_INFO_REDUCED \
	--disable DEBUG_INFO_SPLIT --disable DEBUG_INFO_COMPRESSED
export KBUILD_BUILD_TIMESTAMP="Debian linux-source-6.1 $ver" KBUILD_BUILD_USER=ember \
	KBUILD_BUILD_HOST=ember KBUILD_BUILD_VERSION=1
mk() { make -s -C "$src/linux" O="$build" "$@"; }
mk olddefconfig
grep -q '^# CONFIG_DEBUG_INFO_BTF is not set' "$build/.config" ||
	{ echo "build-nobtf: CONFIG_DEBUG_INFO_BTF still set after olddefconfig" >&2; exit 1; }
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
