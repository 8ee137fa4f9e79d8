#!/bin/sh
# initramfs.sh OUT.cpio - the kernel matrix's guest root: busybox, ember, the workloads, the tests.
#
# One uncompressed newc cpio shared by every case (each case appends a
# small cpio of its own: /case.env and maybe /archive).  It holds:
#   /bin/busybox and its applets         busybox-static
#   /bin/ember, /bin/validate_unwind     with every shared library ldd names,
#                                        at the same paths, and libc's
#                                        separate debug file when installed
#                                        (libc6-dbg: start_thread, clone3)
#   /progs/*                             build/progs (tests/programs/build.sh)
#   /usr/bin/{ip,tc,ss,nstat,jq}         iproute2 (busybox's ip has no netns, and
#                                        no tc, ss or nstat) and jq, with their
#                                        libraries; off the guest's PATH, so
#                                        the busybox applets stay the default
#   /init, /lib/ember/*.sh, /tests/*.sh  tests/kernels/guest/, tests/lib/*.sh
# Uncompressed: unpacking it is a copy, where decompressing under TCG
# would cost seconds per boot.
#
# Guest tools for later tests (net, spans) go in GUEST_TOOLS below: each
# is copied with its libraries.
set -eu
out=$1
cd "$(dirname "$0")/../.."
progs=${EMBER_PROGS:-build/progs}
GUEST_TOOLS="build/ember build/tools/validate_unwind build/tools/net_pump"
# system commands for /usr/bin (70-net_netem): never at /bin, where the
# busybox applet of the same name is a symlink that cp would follow
GUEST_SYSTEM_TOOLS="ip tc ss nstat jq"

# busybox-static installs /bin/busybox; a dynamic one (package busybox) would need its libraries
busybox=/bin/busybox
[ -x "$busybox" ] && ! readelf -l "$busybox" 2> /dev/null | grep -q INTERP ||
	{ echo "initramfs: /bin/busybox is missing or not static (install busybox-static)" >&2; exit 1; }
[ -x build/ember ] || { echo "initramfs: build/ember not built" >&2; exit 1; }

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/sbin" "$root/proc" "$root/sys" "$root/dev" "$root/tmp" \
	"$root/etc" "$root/progs" "$root/tests" "$root/lib/ember" "$root/root"

cp "$busybox" "$root/bin/busybox"
for app in $("$busybox" --list); do
	[ -e "$root/bin/$app" ] || ln -s busybox "$root/bin/$app"
done

# copy_elf FILE [DEST]: the file, its libraries, and their debug files
copied=" "
copy_elf() {
	dest=${2:-$1}
	case $copied in *" $dest "*) return ;; esac
	copied="$copied$dest "
	mkdir -p "$root$(dirname "$dest")"
	cp -L "$1" "$root$dest"
	id=$(readelf -n "$1" 2> /dev/null | sed -n 's/.*Build ID: *//p' | head -n 1)
	if [ -n "$id" ]; then
		dbg=/usr/lib/debug/.build-id/$(echo "$id" | cut -c1-2)/$(echo "$id" | cut -c3-).debug
		if [ -r "$dbg" ] && [ ! -e "$root$dbg" ]; then
			mkdir -p "$root$(dirname "$dbg")"
			cp "$dbg" "$root$dbg"
		fi
	fi
	for lib in $(ldd "$1" 2> /dev/null | sed -n 's/.*=> \(\/[^ ]*\).*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) (.*/\1/p'); do
		case $lib in "$PWD"/*) continue ;; esac # the test's own libraries go to /progs
		copy_elf "$lib"
	done
}

for t in $GUEST_TOOLS; do
	[ -x "$t" ] && copy_elf "$t" "/bin/$(basename "$t")"
done
for t in $GUEST_SYSTEM_TOOLS; do
	p=$(PATH=/usr/sbin:/usr/bin:/sbin:/bin command -v "$t") ||
		{ echo "initramfs: $t is not installed (scripts/setup-deps.sh)" >&2; exit 1; }
	copy_elf "$p" "/usr/bin/$t"
done
for p in "$progs"/*; do
	[ -f "$p" ] || continue
	case $p in
	*.so) copy_elf "$p" "/progs/$(basename "$p")" ;;
	*) [ -x "$p" ] && copy_elf "$p" "/progs/$(basename "$p")" ;;
	esac
done

cp tests/kernels/guest/init "$root/init"
cp tests/kernels/guest/lib.sh "$root/lib/ember/lib.sh"
cp tests/lib/folded.sh tests/lib/harness.sh tests/lib/netcheck.sh tests/lib/netem.sh "$root/lib/ember/"
cp tests/kernels/guest/tests/*.sh "$root/tests/"
chmod 755 "$root/init" "$root"/tests/*.sh
echo "root:x:0:0:root:/root:/bin/sh" > "$root/etc/passwd"

(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) > "$out.tmp"
mv "$out.tmp" "$out"
echo "initramfs: $out: $(($(wc -c < "$out") / 1024 / 1024)) MiB"
