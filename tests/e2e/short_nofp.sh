#!/bin/sh
# short_nofp: no frame-pointer-only window for new processes.  Forty runs
# of fp_chain_nofp (built without frame pointers) of 50 ms each, one after
# another, under `ember record --all` at 999 Hz.  Samples whose stack has a
# user part must reach the program's root, `_start` (the ELF entry point,
# as `nm` names it), in at least 95% of cases (the goal; measured 99.8% in
# make test with the code mappings noted at exec and mmap, 92.9% before
# them, 74% before any of this): the tables of a process are
# used from its first sample (files already known through other processes
# or an earlier run are found by inode in the kernel; code mapped later is
# loaded when the mmap returns).  Samples with no user part (inside execve
# before the new image runs, or tearing the memory down at exit) are
# kernel-only and not counted.
. "$(dirname "$0")/lib.sh"
require_bpf
require_prog fp_chain_nofp
# The agent must read a process within milliseconds of its exec to name
# its frames at all: on a host busier than its CPUs that cannot be judged.
load=$(cut -d' ' -f1 /proc/loadavg)
cpus=$(nproc)
if [ "$(echo "$load $cpus" | awk '{ print ($1 > $2 * 2) }')" = 1 ]; then
	echo "SKIPPED: load average $load on $cpus CPUs: a 50 ms process cannot be judged"
	exit 77
fi

entry=$(nm "$PROGS/fp_chain_nofp" | awk '$3 == "_start" { print $1 }')
[ -n "$entry" ] || fail "fp_chain_nofp has no _start symbol (nm)"
# Before the program's _start runs, the dynamic loader's entry code is the
# root: Debian's ld.so has no symbol table, so those frames read
# LOADER+0xOFFSET with an offset just past its e_entry (readelf -h).
interp=$(readelf -l "$PROGS/fp_chain_nofp" | sed -n 's/.*program interpreter: \(.*\)]/\1/p')
[ -n "$interp" ] || fail "fp_chain_nofp has no program interpreter (readelf -l)"
loader=$(basename "$interp")
loader_entry=$(readelf -h "$interp" | awk '/Entry point/ { print $4 }')

"$EMBER" record --all --frequency 999 --duration 8 --stats --output "$OUT/short.folded" \
	> "$OUT/record.out" 2> "$OUT/record.err" &
rec=$!
sleep 2
i=0
while [ $i -lt 40 ]; do
	"$PROGS/fp_chain_nofp" 0.05 > /dev/null
	i=$((i + 1))
done
wait "$rec" || { cat "$OUT/record.err"; fail "ember record --all failed"; }

grep '^fp_chain_nofp;' "$OUT/short.folded" > "$OUT/nofp.folded" || true
# per line: samples with a user frame, and those whose frames include _start
set -- $(awk -v loader="$loader" -v lentry="$loader_entry" '
function hex(s,   i, v) { # "0x1ab70" -> 109424 (mawk has no strtonum)
	s = tolower(s); sub(/^0x/, "", s); v = 0
	for (i = 1; i <= length(s); i++) v = v * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1
	return v
}
function loader_root(frame,   off) {
	if (index(frame, loader "+0x") != 1) return 0
	off = hex(substr(frame, length(loader) + 2))
	return off >= hex(lentry) && off < hex(lentry) + 256
}
{
	n = $NF; line = $0; sub(/ [0-9]+$/, "", line)
	k = split(line, f, ";"); user = 0; root = 0
	for (i = 2; i <= k; i++) {
		if (f[i] !~ /_\[k\]$/ && f[i] != "[no stack]") user = 1
		if (f[i] == "_start") root = 1
	}
	if (k >= 2 && loader_root(f[2])) root = 1
	if (user) { u += n; if (root) r += n; else print > bad }
} END { print u + 0, r + 0 }' bad="$OUT/not_rooted.folded" "$OUT/nofp.folded")
user=$1 rooted=$2
note "fp_chain_nofp (40 runs of 50 ms): $rooted of $user samples with a user stack reach _start (or $loader's entry)"
grep -E 'vma_mappings|early_vmas|vma_busy|kernel_vma_procs|code_mapped|in_exec|no_proc' "$OUT/record.err" | tr -s ' ' | sed 's/^/  /'
[ "$user" -ge 200 ] || fail "too few fp_chain_nofp samples: $user"
[ $((rooted * 100)) -ge $((user * 95)) ] ||
	fail "only $rooted of $user reach _start; e.g. $(sort -t' ' -k2 -rn "$OUT/not_rooted.folded" | head -n 3)"
exit 0
