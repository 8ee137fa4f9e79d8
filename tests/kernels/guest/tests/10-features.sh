#!/bin/sh
# features: ember reports the kernel features the kernel's config promises
# (the host derives EXPECT from the config: CONFIG_KPROBES, BTF, ...), finds
# BTF where the case says (the kernel's own or the archive entry made for
# this kernel), and flags force features off.
. /lib/ember/lib.sh
start_bg "$PROGS/fp_chain_nofp" 600
pid=$BG_LAST
sleep 0.5
record "$OUT/f.folded" "$pid" 1
sed -n 's/^ember: /  | /p' "$OUT/f.folded.err"
features=$(sed -n 's/^ember: features: \(.*\) (probed.*/\1/p' "$OUT/f.folded.err")
[ -n "$features" ] || fail "ember printed no features line"
metric "features=$(echo "$features" | tr ' ' ',')"
for want in $EXPECT; do
	case " $features " in *" $want "*) ;; *) fail "expected $want; ember found: $features" ;; esac
done
btf=$(sed -n 's/^ember: BTF: \([a-z]*\): .*/\1/p' "$OUT/f.folded.err")
metric "btf=$btf"
[ "$btf" = "$EXPECT_BTF" ] || fail "BTF from '$btf', expected '$EXPECT_BTF'"
hooks=$(sed -n 's/^ember: hooks: profiler: //p' "$OUT/f.folded.err")
[ -n "$hooks" ] || fail "no hooks line for the profiler"
metric "probe_ms=$(sed -n 's/.*(probed in \([0-9.]*\) ms).*/\1/p' "$OUT/f.folded.err")"

record "$OUT/forced.folded" "$pid" 1 --no-kprobes --no-fentry --force-perfbuf
for f in kprobes fentry ringbuf; do
	grep -q "^ember: features:.* $f=off" "$OUT/forced.folded.err" ||
		fail "--no-kprobes --no-fentry --force-perfbuf did not turn $f off"
done
kill "$pid"
exit 0
