#!/bin/sh
# elf_race_quiet: short-lived processes that exit while the agent reads
# their executables and libraries are the agent's business, not the user's
# (issue [13] #6): `ember record --all` over a storm of `ls`, `cat` and
# `sh` prints no "cannot read ELF" warning, and the files are still read
# (the unwind tables hold libc's rows).
. "$(dirname "$0")/lib.sh"
require_bpf

storm() { # many short processes, each mapping libc, libselinux (ls), ...
	end=$(($(date +%s) + $1))
	while [ "$(date +%s)" -lt "$end" ]; do
		for i in 1 2 3 4 5 6 7 8; do
			ls / > /dev/null & cat /proc/self/stat > /dev/null & sh -c 'i=0; while [ $i -lt 300 ]; do i=$((i+1)); done' &
		done
		wait
	done
}
storm 12 &
storm_pid=$!
"$EMBER" record --all --duration 10 --stats -o "$OUT/all.folded" 2> "$OUT/rec.log"; rc=$?
wait $storm_pid
[ $rc -eq 0 ] || fail "record --all: exit $rc: $(tail -n 5 "$OUT/rec.log")"
n=$(grep -c "cannot read ELF" "$OUT/rec.log")
[ "$n" -eq 0 ] || fail "$n 'cannot read ELF' warnings for processes that exited: $(grep -m 3 'cannot read ELF' "$OUT/rec.log")"
grep -q "unwind tables: [1-9][0-9]* files" "$OUT/rec.log" || fail "no unwind tables read: $(grep 'unwind tables' "$OUT/rec.log")"
note "$(grep 'unwind tables' "$OUT/rec.log" | cut -c1-120)"
exit 0
