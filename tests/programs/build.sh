#!/bin/sh
# build.sh OUTDIR - build the programs the tests profile and inspect.
#
#   fp_chain        C++ -O2 -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer,
#                   main -> a -> b -> hot leaf.  Built with clang++: GCC 12
#                   ignores -mno-omit-leaf-frame-pointer, and a frameless leaf
#                   hides its caller from frame-pointer unwinding (the DWARF
#                   unwinder is what handles such code; see fp_chain_nofp).
#   fp_chain_nofp   the same with -fomit-frame-pointer (for the DWARF unwinder)
#   unwind_zoo      C++ -O2 -fomit-frame-pointer: deep recursion, std::sort,
#                   qsort callback, a shared library without frame pointers
#                   (libzoo_lib.so), threads, a signal handler
#   v1/versioned, v2/versioned
#                   C++ -O2 -fno-omit-frame-pointer, the same program in two
#                   versions (-DVERSION=1/2): same name, different build-ids;
#                   version 2 spends 4x as long in render_page
#   clock_spin      C -O2, main -> spin_on_clock -> clock_gettime (the vDSO)
#   syscall_chain   C -O2 -fomit-frame-pointer, main -> syscall_outer ->
#                   syscall_inner -> getppid(): samples in kernel mode
#   churn, churn_child
#                   process churn: churn RATE SECONDS starts RATE processes a
#                   second (mostly churn_child: static, no libc, exits at once)
#   cpu_endpoints   C -O2 HTTP server, a thread per connection: /heavy/N spends
#                   ~20 ms in heavy_work, /light/N nothing (per-endpoint CPU test)
#   offcpu_waits    C -O2 -fomit-frame-pointer, threads that sleep, wait on a mutex,
#                   read a slowly fed pipe and spin, timing their own waits
#                   (the off-CPU ground truth)
#   goprog          Go, main.main -> goA -> goB -> goHot
#   goprog_stripped the same built with -ldflags='-s -w'
#   gohttp          Go net/http server: /light/N, /heavy/N (heavyWork, ~20 ms of
#                   CPU), /fail/N (500), for the span tests
#   gotls           Go HTTPS server and client (HTTP/1.1), for the TLS span
#                   tests; gotls_stripped the same with -ldflags='-s -w'
#   gogc            Go, GC-heavy: allocation, stack growth, channels, the
#                   clock (the runtime's stack switches); gogc_stripped too
# Rebuilds only what is older than its source.
set -eu
mkdir -p "$1"
out=$(cd "$1" && pwd)
src=$(dirname "$0")
mkdir -p "$out"

newer() { [ ! -e "$1" ] || [ -n "$(find "$2" -newer "$1" -print -quit)" ]; }

if newer "$out/fp_chain" "$src/fp_chain.cpp"; then
	clang++ -O2 -g -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer -o "$out/fp_chain" "$src/fp_chain.cpp"
fi
if newer "$out/fp_chain_nofp" "$src/fp_chain.cpp"; then
	g++ -O2 -g -fomit-frame-pointer -o "$out/fp_chain_nofp" "$src/fp_chain.cpp"
fi
if newer "$out/unwind_zoo" "$src/unwind_zoo.cpp" || newer "$out/libzoo_lib.so" "$src/zoo_lib.cpp"; then
	g++ -O2 -g -fomit-frame-pointer -fPIC -shared -o "$out/libzoo_lib.so" "$src/zoo_lib.cpp"
	g++ -O2 -g -fomit-frame-pointer -o "$out/unwind_zoo" "$src/unwind_zoo.cpp" \
		-L"$out" -lzoo_lib -Wl,-rpath,"$out" -lpthread
fi
for v in 1 2; do
	if newer "$out/v$v/versioned" "$src/versioned.cpp"; then
		mkdir -p "$out/v$v"
		g++ -O2 -g -fno-omit-frame-pointer -DVERSION=$v -o "$out/v$v/versioned" "$src/versioned.cpp"
	fi
done
if newer "$out/clock_spin" "$src/clock_spin.c"; then
	gcc -O2 -g -o "$out/clock_spin" "$src/clock_spin.c"
fi
if newer "$out/offcpu_waits" "$src/offcpu_waits.c"; then
	gcc -O2 -g -Wall -Wextra -fomit-frame-pointer -o "$out/offcpu_waits" "$src/offcpu_waits.c" -lpthread
fi
if newer "$out/syscall_chain" "$src/syscall_chain.c"; then
	gcc -O2 -g -fomit-frame-pointer -o "$out/syscall_chain" "$src/syscall_chain.c"
fi
if newer "$out/churn" "$src/churn.c"; then
	gcc -O2 -g -Wall -Wextra -o "$out/churn" "$src/churn.c"
fi
if newer "$out/churn_child" "$src/churn_child.c"; then
	gcc -O2 -static -nostdlib -o "$out/churn_child" "$src/churn_child.c"
fi
if newer "$out/cpu_endpoints" "$src/cpu_endpoints.c"; then
	gcc -O2 -g -fno-omit-frame-pointer -o "$out/cpu_endpoints" "$src/cpu_endpoints.c" -lpthread
fi
if command -v go >/dev/null 2>&1; then
	export GOCACHE="${GOCACHE:-/tmp/ember-gocache}" GOFLAGS=-mod=mod GOPROXY=off
	export HOME="${HOME:-/root}"
	if newer "$out/goprog" "$src/goprog"; then
		(cd "$src/goprog" && go build -o "$out/goprog" .)
	fi
	if newer "$out/goprog_stripped" "$src/goprog"; then
		(cd "$src/goprog" && go build -ldflags='-s -w' -o "$out/goprog_stripped" .)
	fi
	if newer "$out/gohttp" "$src/gohttp"; then
		(cd "$src/gohttp" && go build -o "$out/gohttp" .)
	fi
	if newer "$out/gotls" "$src/gotls"; then
		(cd "$src/gotls" && go build -o "$out/gotls" .)
	fi
	if newer "$out/gotls_stripped" "$src/gotls"; then
		(cd "$src/gotls" && go build -ldflags='-s -w' -o "$out/gotls_stripped" .)
	fi
	if newer "$out/gogc" "$src/gogc"; then
		(cd "$src/gogc" && go build -o "$out/gogc" .)
	fi
	if newer "$out/gogc_stripped" "$src/gogc"; then
		(cd "$src/gogc" && go build -ldflags='-s -w' -o "$out/gogc_stripped" .)
	fi
else
	echo "build.sh: go not found; Go test programs not built" >&2
fi
