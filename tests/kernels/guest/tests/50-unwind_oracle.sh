#!/bin/sh
# unwind_oracle: frame by frame, the in-kernel unwinder agrees with
# libunwind (the oracle) on >= 99.9% of decidable stack snapshots of
# unwind_zoo, as tests/e2e/unwind_dwarf.sh checks on the build machine.
. /lib/ember/lib.sh
[ -x /bin/validate_unwind ] || skip "validate_unwind not in the initramfs"
start_bg "$PROGS/unwind_zoo" 600 150
pid=$BG_LAST
sleep 1
/bin/validate_unwind --pid "$pid" --duration "$(secs 6)" --min-agreement 99.9 > "$OUT/validate.txt" 2>&1
rc=$?
tail -n 12 "$OUT/validate.txt" | sed 's/^/  /'
agree=$(sed -n 's/.*agreement[^0-9]*\([0-9.]*\)%.*/\1/p' "$OUT/validate.txt" | tail -n 1)
metric "libunwind_agreement_pct=${agree:-?}"
[ $rc -ne 2 ] || fail "validate_unwind could not run: $(grep validate_unwind: "$OUT/validate.txt" | head -c 300)"
[ $rc -eq 0 ] || fail "agreement with libunwind below 99.9%"
exit 0
