#!/bin/sh
# store_diskfull: the database's file system fills up under `ember run`
# (an 8 MiB tmpfs, mostly taken by a filler file).  The agent stays alive,
# says the flush failed (the disk is full, not a damaged database), keeps
# the samples in memory (pending in /api/stats), and once space is freed
# writes them: the sample count a fresh sqlite3 reads grows past what it
# was while full, and the file passes `PRAGMA integrity_check`.
. "$(dirname "$0")/lib.sh"
require_bpf
require_prog fp_chain
command -v sqlite3 > /dev/null || fail "sqlite3 not installed (scripts/setup-deps.sh installs it)"
command -v curl > /dev/null || fail "curl not installed (scripts/setup-deps.sh installs it)"
command -v jq > /dev/null || fail "jq not installed (scripts/setup-deps.sh installs it)"

mnt="$OUT/small"
mkdir -p "$mnt"
mount -t tmpfs -o size=8m,mode=0750 ember-diskfull "$mnt" 2> "$OUT/mount.err" ||
	skip "cannot mount a tmpfs: $(cat "$OUT/mount.err")"
unmount() {
	rc=$?
	cleanup
	# keep the database of a failed run for whoever investigates
	[ $rc -eq 0 ] || { mkdir -p "$OUT/kept" && cp -p "$mnt"/ember.db* "$OUT/kept/" 2> /dev/null; }
	umount "$mnt" 2> /dev/null || umount -l "$mnt" 2> /dev/null
}
trap unmount EXIT INT TERM

db="$mnt/ember.db"
log="$OUT/run.log"
start_bg "$PROGS/fp_chain" 120
start_bg "$EMBER" run --db "$db" --listen 127.0.0.1:0 --frequency 999 --flush 1 --max-db-size 0 2> "$log"
ember=$BG_LAST
url=$(serving_url "$log" "$ember") || exit 1
samples() { sqlite3 "$db" 'select coalesce(sum(count),0) from samples' 2> /dev/null || echo 0; }
for i in $(seq 1 50); do [ "$(samples)" -gt 0 ] && break; sleep 0.2; done
[ "$(samples)" -gt 0 ] || { cat "$log"; fail "nothing stored"; }

# fill the file system and keep it full (the agent gives its WAL's space
# back after a failed write; the filler takes it again)
(while :; do dd if=/dev/zero bs=64k count=16 >> "$mnt/filler" 2> /dev/null; sleep 0.05; done) &
filler=$!
BG_PIDS="$BG_PIDS $filler"
for i in $(seq 1 60); do
	grep -q "flush failed" "$log" && break
	kill -0 "$ember" 2> /dev/null || { cat "$log"; fail "ember run died on a full disk"; }
	sleep 0.5
done
note "file system full: $(df -k "$mnt" | awk 'NR == 2 { print $4 " KiB free" }')"
grep "flush failed" "$log" | head -n 1 | grep -qi "full" || { cat "$log"; fail "no flush failure naming the full disk"; }
sleep 3
kill -0 "$ember" 2> /dev/null || { cat "$log"; fail "ember run died on a full disk"; }
grep -q "database file" "$log" && { cat "$log"; fail "a full disk was taken for a damaged database"; }
# the agent's own counters (the TCP metrics and the spans have flush counters too)
stats=$(curl -sf "${url}api/stats")
stored=$(echo "$stats" | jq '.agent.flushed_samples')
pending=$(echo "$stats" | jq '.agent.pending.samples')
errors=$(echo "$stats" | jq '.agent.flush_errors')
[ "${pending:-0}" -gt 0 ] || fail "no samples pending in memory while the disk is full"
[ "${errors:-0}" -gt 0 ] || fail "flush_errors is ${errors:-0}"
note "while full: $stored samples stored, $pending pending, $errors flush errors"

kill "$filler"
wait "$filler" 2> /dev/null
rm -f "$mnt/filler"
for i in $(seq 1 60); do
	[ "$(samples)" -ge "$((stored + pending))" ] && break
	sleep 0.5
done
after=$(samples)
[ "$after" -ge "$((stored + pending))" ] || { cat "$log"; fail "the pending samples were not written ($stored stored + $pending pending, $after in the file)"; }
grep -q "works again" "$log" || fail "no message that flushing works again"
kill -TERM "$ember"
wait "$ember" || { cat "$log"; fail "ember run did not stop cleanly"; }
[ "$(sqlite3 "$db" 'pragma integrity_check')" = ok ] || fail "the database is corrupt"
note "space freed: $after samples stored, integrity ok"
exit 0
