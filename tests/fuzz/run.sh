#!/bin/sh
# run.sh - build every tests/fuzz/fuzz_*.c with libFuzzer and run each briefly.
#
#   FUZZ_SECONDS=20 sh tests/fuzz/run.sh [NAME...]
#
# A target lists what it links in its own header comment: the folders whose
# .c files it needs (or single .c files), and libraries:
#   FUZZ_SOURCES: src/ehframe src/core
#   FUZZ_LIBS: -lelf -lz
# Seeds: tests/fuzz/corpus/<name>/ if present, plus, for fuzz_ehframe, the
# .eh_frame of libc and of a small program (objcopy -O binary), cut into
# small pieces so libFuzzer keeps its inputs short; for fuzz_dwarf_line,
# the .debug_line of a tiny program (DWARF 4 and 5); for fuzz_elf_identity,
# a whole small ELF file with a PLT and the first page of a Go binary.  Artifacts (crash-*,
# timeout-*) land in build/fuzz/<name>/.  One summary line per target;
# exits non-zero when any target fails to build or finds a crash.
set -u
cd "$(dirname "$0")/../.."
seconds="${FUZZ_SECONDS:-20}"
out=build/fuzz
mkdir -p "$out"
status=0

meta() { # $1 = file, $2 = key
	sed -n "s/^ *\* *$2: *//p" "$1" | head -n 1
}

seed_ehframe() { # $1 = corpus dir
	for lib in /lib/x86_64-linux-gnu/libc.so.6 /bin/sh; do
		[ -r "$lib" ] || continue
		tmp="$1/.whole"
		objcopy -O binary --only-section=.eh_frame "$lib" "$tmp" 2>/dev/null || continue
		base=$(basename "$lib")
		# the start (CIE + first FDEs) and a few slices of 2 KiB
		head -c 2048 "$tmp" > "$1/$base-head"
		for skip in 1 7 23; do
			dd if="$tmp" of="$1/$base-$skip" bs=2048 skip="$skip" count=1 2>/dev/null
		done
		rm -f "$tmp"
	done
}

for src in tests/fuzz/fuzz_*.c; do
	[ -f "$src" ] || continue
	name=$(basename "$src" .c)
	if [ $# -gt 0 ]; then
		case " $* " in *" $name "*) ;; *) continue ;; esac
	fi
	sources=""
	for d in $(meta "$src" FUZZ_SOURCES); do
		if [ -d "$d" ]; then
			sources="$sources $(ls "$d"/*.c 2>/dev/null | tr '\n' ' ')"
		else
			sources="$sources $d"
		fi
	done
	libs=$(meta "$src" FUZZ_LIBS)
	dir="$out/$name"
	corpus="$dir/corpus"
	mkdir -p "$corpus"
	rm -f "$dir"/crash-* "$dir"/timeout-* "$dir"/oom-* "$dir"/leak-*
	# shellcheck disable=SC2086 # word splitting of the lists is intended
	if ! clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
		-D_GNU_SOURCE -Isrc -Ibpf/include -o "$dir/$name" "$src" $sources $libs \
		> "$dir/build.log" 2>&1; then
		echo "$name: BUILD FAILED (see $dir/build.log)"
		status=1
		continue
	fi
	[ -d "tests/fuzz/corpus/$name" ] && cp -r "tests/fuzz/corpus/$name/." "$corpus/"
	[ "$name" = fuzz_ehframe ] && seed_ehframe "$corpus"
	if [ "$name" = fuzz_dwarf_line ]; then
		# the start of real line programs: DWARF 4 (inline strings) and 5
		printf 'int main(void) { return 0; }\n' > "$dir/seed.c"
		for v in 4 5; do
			gcc -g -gdwarf-$v -c -o "$dir/seed$v.o" "$dir/seed.c" 2>/dev/null || continue
			objcopy -O binary --only-section=.debug_line "$dir/seed$v.o" "$dir/line$v" 2>/dev/null || continue
			{ printf '\001'; head -c 4000 "$dir/line$v"; } > "$corpus/gcc-dwarf$v"
		done
	fi
	if [ "$name" = fuzz_elf ]; then
		# the first pages of real binaries: headers, notes, the start of the text
		for bin in /bin/true build/progs/fp_chain build/progs/goprog_stripped; do
			[ -r "$bin" ] && head -c 4096 "$bin" > "$corpus/$(basename "$bin")-head"
		done
	fi
	if [ "$name" = fuzz_elf_identity ]; then
		# a whole small dynamic ELF file with a PLT, and the first page of a
		# Go binary (its build-id note)
		printf '#include <stdio.h>\n#include <stdlib.h>\nvoid f(void) { puts("x"); exit(0); }\n' \
			> "$dir/seed.c"
		gcc -Os -nostartfiles -Wl,-e,f -Wl,-z,norelro -Wl,-z,noseparate-code -s \
			-Wl,--build-id=0x0102030405060708 -o "$dir/tiny" "$dir/seed.c" 2> /dev/null &&
			[ "$(wc -c < "$dir/tiny")" -le 4096 ] && cp "$dir/tiny" "$corpus/tiny-plt"
		for bin in /bin/true build/progs/goprog_stripped; do
			[ -r "$bin" ] && head -c 4096 "$bin" > "$corpus/$(basename "$bin")-head"
		done
		printf 'xx\377 Go build ID: "abc/def"\n \377yy' > "$corpus/go-marker"
	fi
	"$dir/$name" -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=1024 \
		-print_final_stats=1 -artifact_prefix="$dir/" "$corpus" > "$dir/run.log" 2>&1
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/run.log" | tail -n 1)
	if [ $rc -eq 0 ]; then
		echo "$name: ok, ${runs:-?} runs in ${seconds}s"
	else
		crash=$(ls "$dir"/crash-* "$dir"/timeout-* "$dir"/oom-* "$dir"/leak-* 2>/dev/null | head -n 1)
		echo "$name: FAILED (exit $rc) ${crash:-} (see $dir/run.log)"
		status=1
	fi
done
exit $status
