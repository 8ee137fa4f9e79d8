#!/bin/sh
# store_truncate: the database file is truncated under `ember run`, several
# times (issue [9], defect B: this used to kill the agent with SIGBUS).  The
# agent stays alive, says which file is damaged, counts it in /api/stats,
# writes nothing into the damaged file, keeps collecting in memory, and
# writes again once the file is usable: emptied (truncate -s 0 leaves an
# empty database), removed (a new database), or restored from a backup.
# The oracle for "writes again" is the sample count a fresh sqlite3 reads
# from the file, against the count before.
. "$(dirname "$0")/lib.sh"
require_bpf
require_prog fp_chain
command -v curl > /dev/null || fail "curl not installed (scripts/setup-deps.sh installs it)"
command -v sqlite3 > /dev/null || fail "sqlite3 not installed (scripts/setup-deps.sh installs it)"

db="$OUT/ember.db"
log="$OUT/run.log"
start_bg "$PROGS/fp_chain" 120
start_bg "$EMBER" run --db "$db" --listen 127.0.0.1:0 --frequency 99 --flush 1 --max-pending 400 2> "$log"
ember=$BG_LAST

url=$(serving_url "$log" "$ember") || exit 1

alive() { kill -0 "$ember" 2> /dev/null || { cat "$log"; fail "ember run died ($1)"; }; }
samples() { sqlite3 "$db" 'select coalesce(sum(count),0) from samples' 2> /dev/null || echo 0; }
stat_field() { # stat_field NAME: a number or word from the "database" object of /api/stats
	curl -sf "${url}api/stats" | sed -n "s/.*\"database\":{[^}]*\"$1\":\"\{0,1\}\([a-z0-9]*\).*/\1/p"
}
wait_for() { # wait_for SECONDS COMMAND...: until COMMAND succeeds
	t=$(($1 * 5)); shift
	while [ "$t" -gt 0 ]; do
		"$@" && return 0
		alive "waiting for: $*"
		sleep 0.2
		t=$((t - 1))
	done
	return 1
}
has_samples() { [ "$(samples)" -gt "${1:-0}" ]; }
log_has() { [ "$(grep -c "$1" "$log")" -ge "$2" ]; }
state_is() { [ "$(stat_field state)" = "$1" ]; }

wait_for 20 has_samples || { cat "$log"; fail "no samples stored"; }
note "storing: $(samples) samples"

# 1. truncate -s 0, three times: reported, then an empty database is used again
for round in 1 2 3; do
	truncate -s 0 "$db"
	wait_for 10 log_has "database file was truncated" "$round" ||
		{ cat "$log"; fail "round $round: truncation to 0 not reported"; }
	wait_for 10 log_has "was emptied" "$round" || { cat "$log"; fail "round $round: did not go on"; }
	wait_for 10 has_samples || { cat "$log"; fail "round $round: nothing stored after the truncation"; }
	note "round $round: truncated to 0, reported, storing again: $(samples) samples"
done
grep "truncated" "$log" | head -n 1 | grep -q "$db" || fail "the message does not name the database"
[ "$(stat_field damaged)" -ge 3 ] || fail "/api/stats database.damaged: $(stat_field damaged), expected >= 3"

# 2. a backup, then truncate -s 4096: damaged until removed; nothing written into it
sqlite3 "$db" ".backup '$OUT/backup.db'" || fail "cannot back up the database"
backup_samples=$(sqlite3 "$OUT/backup.db" 'select coalesce(sum(count),0) from samples')
truncate -s 4096 "$db"
wait_for 10 state_is damaged || { cat "$log"; fail "truncation to 4096 bytes not noticed"; }
sleep 3
alive "damaged"
size=$(stat -c %s "$db")
[ "$size" -eq 4096 ] || fail "the damaged file was written to: $size bytes"
state_is damaged || fail "state is $(stat_field state) while the file is still truncated"
pending=$(curl -sf "${url}api/stats" | sed -n 's/.*"pending":{"samples":\([0-9]*\).*/\1/p')
[ "${pending:-0}" -gt 0 ] || fail "no samples kept in memory while damaged (pending $pending)"
note "truncated to 4096: damaged, file untouched, $pending samples pending in memory"
# the memory kept is bounded (--max-pending 400 stacks): new samples are dropped and counted
pending_field() { curl -sf "${url}api/stats" | sed -n "s/.*\"pending\":{[^}]*\"$1\":\([0-9]*\).*/\1/p"; }
dropped_before=$(pending_field dropped_samples)
dropped_some() { [ "$(pending_field dropped_samples)" -gt "$dropped_before" ]; }
wait_for 60 dropped_some || fail "pending never reached its bound: $(curl -sf "${url}api/stats" | grep -o '"pending":{[^}]*}')"
stacks=$(pending_field stacks)
[ "$stacks" -le 1000 ] || fail "pending holds $stacks stacks, over its bound of 400 (+ one drain)"
note "bounded: $stacks stacks pending, $(($(pending_field dropped_samples) - dropped_before)) samples dropped and counted meanwhile"
pending=$(pending_field samples)
rm -f "$db"
wait_for 10 log_has "was removed: created a new database" 1 || { cat "$log"; fail "did not create a new database"; }
wait_for 10 has_samples "$((pending - 1))" || { cat "$log"; fail "the pending samples were not written to the new database"; }
note "removed: new database holds $(samples) samples (>= the $pending pending)"

# 3. truncate again, then restore the backup in place (cp keeps the inode)
truncate -s 4096 "$db"
wait_for 10 state_is damaged || { cat "$log"; fail "second truncation to 4096 not noticed"; }
cp "$OUT/backup.db" "$db"
wait_for 10 state_is ok || { cat "$log"; fail "restored database not reopened"; }
wait_for 10 has_samples "$backup_samples" || { cat "$log"; fail "nothing stored after the restore"; }
[ "$(sqlite3 "$db" 'pragma integrity_check')" = ok ] || fail "the restored database is corrupt"
note "restored in place: $(samples) samples (backup had $backup_samples)"

kill -TERM "$ember"
wait "$ember"; rc=$?
[ $rc -eq 0 ] || { cat "$log"; fail "ember run exited $rc on SIGTERM"; }
[ "$(sqlite3 "$db" 'pragma integrity_check')" = ok ] || fail "the database is corrupt after stopping"
grep -E "error|warning" "$log" | sed 's/^/  log: /' | head -n 20
exit 0
