#!/bin/sh
# go_stacks: Go stacks are whole through the runtime's stack switches.
#
# A GC-heavy Go program (allocation with GC assists, stack growth, channels,
# the clock) spends much of its time on its threads' system stacks (g0),
# entered through runtime.systemstack, mcall, morestack and vDSO calls.  The
# unwinder crosses them to the goroutine that was running, as Go's own
# traceback does, so >= 99.5% of samples with a user stack must reach a
# root: runtime.goexit (a goroutine), runtime.mstart / rt0_go (a thread),
# or runtime.mcall / morestack on g0 when no goroutine is left above them
# (Go's traceback stops there too).  Allocation slow paths must continue
# into the user function that allocated.  The plain and the stripped
# (-s -w: offsets decoded from the runtime's code, not DWARF) builds.
. "$(dirname "$0")/lib.sh"
require_bpf

# complete FILE: "rooted total" over the samples that have a user stack
complete() {
	awk '{ n = $NF; split($0, f, ";"); r = f[1]; sub(/ [0-9]+$/, "", r)
		if (r ~ /_\[k\]$/) next
		t += n
		if (r == "runtime.goexit" || r == "runtime.mstart" || r == "runtime.rt0_go" ||
		    r == "runtime.mcall" || r == "runtime.morestack") ok += n }
		END { print ok + 0, t + 0 }' "$1"
}

for prog in gogc gogc_stripped; do
	require_prog "$prog"
	start_bg "$PROGS/$prog" 12
	pid=$BG_LAST
	sleep 0.5
	"$EMBER" record --pid "$pid" --duration 8 --frequency 499 --stats \
		--output "$OUT/$prog.folded" 2> "$OUT/$prog.err" ||
		{ cat "$OUT/$prog.err"; fail "$prog: ember record failed"; }
	set -- $(complete "$OUT/$prog.folded")
	ok=$1 total=$2
	switches=$(awk '$1 == "go_switches" { print $2 }' "$OUT/$prog.err")
	note "$prog: $ok of $total samples reach a root; $switches stack switches crossed"
	[ "$total" -ge 500 ] || fail "$prog: only $total samples"
	[ $((ok * 1000)) -ge $((total * 995)) ] || {
		grep -v '^runtime\.\(goexit\|mstart\|rt0_go\|mcall\|morestack\);' "$OUT/$prog.folded" |
			head -n 5 | cut -c1-300
		fail "$prog: $ok of $total samples complete, expected >= 99.5%"
	}
	[ "${switches:-0}" -gt 0 ] || fail "$prog: no stack switch crossed"
	# allocation: mallocgc -> ... -> systemstack continues into main.*
	set -- $(awk '{ n = $NF; p = index($0, "runtime.mallocgc;")
		if (p && index($0, "runtime.systemstack")) {
			t += n; if (substr($0, 1, p) ~ /main\./) ok += n } }
		END { print ok + 0, t + 0 }' "$OUT/$prog.folded")
	note "$prog: $1 of $2 samples under mallocgc -> systemstack name the allocating main.* function"
	[ "$2" -ge 3 ] || fail "$prog: only $2 samples of allocation through systemstack"
	[ $(($1 * 100)) -ge $(($2 * 95)) ] || fail "$prog: allocation stacks lose their caller"
	kill "$pid" 2>/dev/null
done
exit 0
