#!/bin/sh
# store_kill9: `ember run` killed with SIGKILL while it ingests, five times
# on one database.  After each kill the database passes
# `PRAGMA integrity_check` (sqlite3, outside Ember), holds at least every
# sample that a reader saw committed just before the kill, and the next
# `ember run` opens it and stores more.  Also: the retention options are
# checked (bad values exit 2) and retention reports in /api/stats.
. "$(dirname "$0")/lib.sh"
require_bpf
require_prog fp_chain
command -v sqlite3 > /dev/null || fail "sqlite3 not installed (scripts/setup-deps.sh installs it)"
command -v curl > /dev/null || fail "curl not installed (scripts/setup-deps.sh installs it)"

for bad in "--retention 5x" "--retention 30m" "--full-resolution 0" "--max-db-size 1M" "--max-db-size 2Q"; do
	# shellcheck disable=SC2086
	"$EMBER" run --db "$OUT/never.db" $bad > /dev/null 2> "$OUT/bad.err"
	[ $? -eq 2 ] || fail "ember run $bad did not exit 2"
	opt=${bad%% *}
	grep -q -- "$opt" "$OUT/bad.err" || fail "no message naming $opt: $(cat "$OUT/bad.err")"
done
[ ! -e "$OUT/never.db" ] || fail "a refused option still created the database"

db="$OUT/ember.db"
samples() { sqlite3 "$db" 'select coalesce(sum(count),0) from samples' 2> /dev/null || echo 0; }
start_bg "$PROGS/fp_chain" 120
prev=0
for round in 1 2 3 4 5; do
	"$EMBER" run --db "$db" --listen 127.0.0.1:0 --frequency 199 --flush 1 \
		--retention 2d --max-db-size 64M 2> "$OUT/run$round.log" &
	ember=$!
	BG_PIDS="$BG_PIDS $ember"
	for i in $(seq 1 50); do
		[ "$(samples)" -gt "$prev" ] && break
		kill -0 "$ember" 2> /dev/null || { cat "$OUT/run$round.log"; fail "round $round: ember run exited"; }
		sleep 0.2
	done
	if [ "$round" -eq 1 ]; then
		url=$(serving_url "$OUT/run$round.log" "$ember") || exit 1
		curl -sf "${url}api/stats" > "$OUT/stats.json" || fail "no /api/stats"
		grep -q '"retention":{"passes":[1-9]' "$OUT/stats.json" || fail "no retention pass in /api/stats: $(cat "$OUT/stats.json")"
		grep -q '"max_bytes":67108864' "$OUT/stats.json" || fail "--max-db-size not in /api/stats"
	fi
	# kill at an arbitrary point of a flush cycle
	sleep "0.$(awk -v r="$round" 'BEGIN { srand(r * 7919); printf "%d", rand() * 9 + 1 }')"
	seen=$(samples)
	kill -9 "$ember"
	wait "$ember" 2> /dev/null
	check=$(sqlite3 "$db" 'pragma integrity_check')
	[ "$check" = ok ] || fail "round $round: integrity_check after kill -9: $check"
	after=$(samples)
	[ "$after" -ge "$seen" ] || fail "round $round: committed samples lost: $seen seen, $after after the kill"
	[ "$seen" -gt "$prev" ] || fail "round $round: nothing stored before the kill ($prev -> $seen)"
	note "round $round: killed with $seen samples seen committed, $after in the file, integrity ok"
	prev=$after
done
exit 0
