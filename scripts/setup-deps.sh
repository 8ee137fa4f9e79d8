#!/bin/sh
# setup-deps.sh - install every Debian package Ember's build, run and tests need.
#
# Idempotent: packages already installed are skipped, and `apt-get update`
# runs at most once (only when something is missing).  Runs as root on a
# fresh Debian 12; prints what it installs.
set -eu

PKGS="build-essential pkg-config clang llvm bpftool libbpf-dev libelf-dev libdw-dev
zlib1g-dev libzstd-dev libssl-dev libsqlite3-dev sqlite3 libmicrohttpd-dev libcmocka-dev
libprotobuf-c-dev protobuf-c-compiler libunwind-dev golang-go linux-perf elfutils
binutils procps curl libc6-dbg bpftrace git"

# Real programs the end-to-end tests profile (tests/e2e/go_node_exporter.sh).
PKGS="$PKGS prometheus-node-exporter"

# TCP metrics and span tests (tests/e2e/net_*.sh, tests/e2e/spans_*.sh): real
# servers and their own clients, the kernel's and the servers' own counters
# as oracles, promtool and a Prometheus server to check /metrics, jq to read
# the API's JSON.  The tests start their own nginx, redis, MariaDB and
# PostgreSQL on random loopback ports with their own config files and data
# directories; the system services these packages install are never used.
PKGS="$PKGS nginx redis-server redis-tools apache2-utils iproute2 prometheus jq
mariadb-server mariadb-client sysbench postgresql postgresql-contrib"

# TLS span tests (tests/e2e/spans_tls_*.sh): the openssl CLI makes their
# self-signed certificates; nginx, curl, ab and redis link libssl.so.3.
PKGS="$PKGS openssl libssl3"
# The BTF archive (btf-archive/btfgen.sh: zstd, pahole from dwarves, lz4
# for LZ4-compressed kernels) and the kernel matrix in qemu
# (tests/kernels/: qemu-system-x86, busybox-static, cpio; kmod's modinfo
# and xz-utils for the case kernels' own modules the guests load; iproute2
# and jq, above, are copied into the guests; the no-BTF kernel build: bc,
# bison, flex, libssl-dev, xz-utils).
PKGS="$PKGS zstd dwarves lz4 xz-utils qemu-system-x86 busybox-static cpio kmod bc bison flex libssl-dev"

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
# Server packages (nginx, redis, MariaDB, PostgreSQL, prometheus, node
# exporter) start their system service when
# installed; Ember's tests never use those, so keep them from starting
# (policy-rc.d, Debian's switch for this), unless the machine has its own.
policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
	policy=/usr/sbin/policy-rc.d
	printf '#!/bin/sh\nexit 101\n' > "$policy"
	chmod 755 "$policy"
	trap 'rm -f "$policy"' EXIT
fi
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
echo "setup-deps: done"
