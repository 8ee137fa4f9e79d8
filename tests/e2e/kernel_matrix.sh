#!/bin/sh
# kernel_matrix: the cheap case of `make test-kernels` in every `make test`:
# Debian's 6.1 cloud kernel booted in qemu (TCG) with /sys/kernel/btf
# hidden, so ember must load through the BTF archive entry made for that
# kernel; in the guest, the FP-less C++ and Go workloads unwind whole, the
# forced 5.4-era fallbacks too, frames agree with libunwind, and the TCP
# metrics (kprobes and raw tracepoints here) match ss -ti and nstat over
# real netem (tests/kernels/guest/tests/).  SKIPPED when qemu is missing or the kernel
# cannot be downloaded (no network to Debian's archive).
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" -eq 0 ] || skip "needs root (apt-get download into build/kernels)"
[ -x "$EMBER" ] || fail "$EMBER not built"
[ -x build/tools/validate_unwind ] || fail "build/tools/validate_unwind not built"
TEST_OUT="$OUT" BUILD_KERNELS=0 sh tests/kernels/run.sh deb61-nobtf
