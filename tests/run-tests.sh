#!/bin/sh
# run-tests.sh - run every test and print one summary line.
#
#   unit tests      build/tests/test_*        (cmocka)
#   ASan/UBSan      build/tests-asan/test_*   (the same tests, sanitized)
#   end-to-end      tests/e2e/*.sh            (real BPF, real programs)
#   fuzz            tests/fuzz/fuzz_*.c       (libFuzzer, FUZZ_SECONDS each)
#
# An end-to-end script exits 0 (pass), 77 (skipped: it prints SKIPPED and
# the reason) or anything else (fail).  Counts are per cmocka test case and
# per script.  The last line reads "N passed, N failed, N skipped".
# Set TESTS=pattern to run only the tests whose name contains it.
set -u
cd "$(dirname "$0")/.."
export EMBER_PROGS="${EMBER_PROGS:-$PWD/build/progs}"
export EMBER_BIN="${EMBER_BIN:-$PWD/build/ember}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
out="${TEST_OUT:-build/test-output}"
mkdir -p "$out"
passed=0 failed=0 skipped=0
failures=""
pattern="${TESTS:-}"

count() { # $1 = log file; adds cmocka's counts
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$1" | tail -n 1)
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$1" | tail -n 1)
	s=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' "$1" | tail -n 1)
	passed=$((passed + ${p:-0}))
	failed=$((failed + ${f:-0}))
	skipped=$((skipped + ${s:-0}))
}

for kind in tests tests-asan; do
	for t in build/$kind/test_*; do
		[ -x "$t" ] || continue
		name="$kind/$(basename "$t")"
		case "$name" in *"$pattern"*) ;; *) continue ;; esac
		log="$out/$(echo "$name" | tr / _).log"
		echo "=== $name"
		"$t" > "$log" 2>&1
		rc=$?
		cat "$log"
		count "$log"
		if [ $rc -ne 0 ] && ! grep -q '^\[  FAILED  \]' "$log"; then
			# crashed or sanitizer abort before cmocka's summary
			failed=$((failed + 1))
		fi
		[ $rc -ne 0 ] && failures="$failures $name"
	done
done

for t in tests/e2e/*.sh; do
	[ -f "$t" ] || continue
	[ "$(basename "$t")" = lib.sh ] && continue
	name="e2e/$(basename "$t" .sh)"
	case "$name" in *"$pattern"*) ;; *) continue ;; esac
	echo "=== $name"
	TEST_OUT="$out/$(basename "$t" .sh)" sh "$t"
	rc=$?
	case $rc in
	0) passed=$((passed + 1)); echo "--- PASS $name" ;;
	77) skipped=$((skipped + 1)); echo "--- SKIPPED $name" ;;
	*) failed=$((failed + 1)); failures="$failures $name"; echo "--- FAIL $name (exit $rc)" ;;
	esac
done

# Fuzz targets, briefly (FUZZ_SECONDS each, default 10): a crash fails.
for f in tests/fuzz/fuzz_*.c; do
	[ -f "$f" ] || continue
	name="fuzz/$(basename "$f" .c)"
	case "$name" in *"$pattern"*) ;; *) continue ;; esac
	echo "=== $name"
	if FUZZ_SECONDS="${FUZZ_SECONDS:-10}" sh tests/fuzz/run.sh "$(basename "$f" .c)"; then
		passed=$((passed + 1)); echo "--- PASS $name"
	else
		failed=$((failed + 1)); failures="$failures $name"; echo "--- FAIL $name"
	fi
done

[ -n "$failures" ] && echo "failing:$failures"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
