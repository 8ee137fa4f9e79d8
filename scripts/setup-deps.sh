#!/bin/sh
# setup-deps.sh - install every Debian package Ember's build, run and tests need.
#
# Idempotent: packages already installed are skipped, and `apt-get update`
# runs at most once (only when something is missing).  Runs as root on a
# fresh Debian 12; prints what it installs.
set -eu

PKGS="build-essential pkg-config clang llvm bpftool libbpf-dev libelf-dev libdw-dev
zlib1g-dev libzstd-dev libsqlite3-dev sqlite3 libmicrohttpd-dev libcmocka-dev
libprotobuf-c-dev protobuf-c-compiler libunwind-dev golang-go linux-perf elfutils
binutils procps curl libc6-dbg bpftrace"

# The BTF archive (btf-archive/btfgen.sh: zstd, pahole from dwarves, lz4
# for LZ4-compressed kernels) and the kernel matrix in qemu
# (tests/kernels/: qemu-system-x86, busybox-static, cpio; the no-BTF
# kernel build: bc, bison, flex, libssl-dev, xz-utils).
PKGS="$PKGS zstd dwarves lz4 xz-utils qemu-system-x86 busybox-static cpio bc bison flex libssl-dev"

# Browser tests: Debian's Chromium, and Node.js with npm for playwright-core.
# Node and npm count as present when their commands are (a machine may have
# them from elsewhere, and Debian's npm would conflict with such a node).
PKGS="$PKGS chromium"
command -v node > /dev/null 2>&1 || PKGS="$PKGS nodejs"
command -v npm > /dev/null 2>&1 || PKGS="$PKGS npm"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done

if [ -z "$missing" ]; then
	echo "setup-deps: all packages present"
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "setup-deps: missing packages:$missing; run as root to install them" >&2
	exit 1
fi

echo "setup-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
echo "setup-deps: done"
