#!/bin/sh
# safe_files: every file Ember writes is created without following a
# symlink planted by another user, and is not world-readable (issue [9],
# defects D and G).
#
#  - `ember run` creates its database directory 0750, the database and its
#    WAL and SHM 0640 (group `ember` when it exists, else root's), the
#    unwind cache 0700 with 0600 files.
#  - with fs.protected_symlinks=0 (the kernel then lets root follow anyone's
#    symlink in a sticky world-writable directory; restored afterwards),
#    symlinks owned by `nobody` to a root-owned victim are planted at the
#    final and temporary paths of: `ember report --output`, `--output-dir`,
#    the cron file, `ember record --output` (folded and pprof), and the
#    database and its WAL; the victim's bytes never change, and the outputs
#    are regular files.
. "$(dirname "$0")/lib.sh"
require_bpf
require_prog fp_chain
command -v sqlite3 > /dev/null || fail "sqlite3 not installed (scripts/setup-deps.sh installs it)"

old_protected=$(sysctl -n fs.protected_symlinks 2> /dev/null || echo "")
restore() {
	[ -n "$old_protected" ] && sysctl -q -w fs.protected_symlinks="$old_protected"
	cleanup
}
trap restore EXIT INT TERM
if [ -n "$old_protected" ] && sysctl -q -w fs.protected_symlinks=0 2> /dev/null; then
	note "fs.protected_symlinks=0 for this test (was $old_protected)"
else
	note "cannot set fs.protected_symlinks; testing with its current value"
fi

mode() { stat -c %a "$1"; }
group_ok() { # the file's group is ember when that group exists, else root's
	want=$(getent group ember | cut -d: -f3)
	[ "$(stat -c %g "$1")" = "${want:-0}" ]
}

# ---- G: what `ember run` creates ----
root="$OUT/var"
db="$root/lib/ember/ember.db"
cache="$root/cache/ember/unwind"
start_bg "$PROGS/fp_chain" 30
start_bg "$EMBER" run --db "$db" --unwind-cache "$cache" --listen 127.0.0.1:0 --flush 1 \
	2> "$OUT/run.log"
ember=$BG_LAST
for i in $(seq 1 50); do
	n=$(sqlite3 "$db" 'select coalesce(sum(count),0) from samples' 2> /dev/null || echo 0)
	[ "${n:-0}" -gt 0 ] && break
	kill -0 "$ember" 2> /dev/null || { cat "$OUT/run.log"; fail "ember run exited"; }
	sleep 0.3
done
[ "${n:-0}" -gt 0 ] || { cat "$OUT/run.log"; fail "nothing stored"; }
for f in "$db" "$db-wal" "$db-shm"; do
	[ -f "$f" ] || fail "$f missing"
	[ "$(mode "$f")" = 640 ] || fail "$f is mode $(mode "$f"), expected 640"
	group_ok "$f" || fail "$f has group $(stat -c %G "$f")"
	note "$(stat -c '%a %U:%G %n' "$f")"
done
for d in "$root/lib/ember" "$root/lib"; do
	[ "$(mode "$d")" = 750 ] || fail "$d is mode $(mode "$d"), expected 750"
done
for d in "$cache" "$root/cache/ember"; do
	[ "$(mode "$d")" = 700 ] || fail "$d is mode $(mode "$d"), expected 700"
done
for f in "$cache"/*; do
	[ -f "$f" ] || continue
	[ "$(mode "$f")" = 600 ] || fail "unwind cache file $f is mode $(mode "$f")"
done
note "unwind cache: $(ls "$cache" | wc -l) files, none world-readable"
kill -TERM "$ember"
wait "$ember" || fail "ember run did not stop cleanly"

# ---- D: symlinks planted by another user ----
pub="$OUT/tmp" # like /tmp: sticky and world-writable
mkdir -m 1777 "$pub"
victim="$OUT/victim"
printf 'root:precious\n' > "$victim"
chmod 600 "$victim"
sum=$(md5sum < "$victim")
plant() { # plant NAME...: nobody's symlinks to the victim in $pub
	for name in "$@"; do
		ln -sf "$victim" "$pub/$name"
		chown -h nobody "$pub/$name"
	done
}
intact() { [ "$(md5sum < "$victim")" = "$sum" ] || fail "$1 overwrote the victim"; }
regular() { [ -f "$1" ] && [ ! -L "$1" ] || fail "$1 is not a regular file"; }

from="@$(($(date +%s) - 3600))" # one window for every report: one file name
plant X X.tmp .X.tmp
"$EMBER" report --db "$db" --from "$from" --no-save --output "$pub/X" 2> "$OUT/report.err" ||
	{ cat "$OUT/report.err"; fail "ember report --output failed"; }
intact "ember report --output"
regular "$pub/X"
[ "$(mode "$pub/X")" = 640 ] || fail "report is mode $(mode "$pub/X")"
grep -q "<html" "$pub/X" || fail "the report is not in $pub/X"
note "report --output: written as a new file, victim intact"

mkdir -m 1777 "$pub/reports"
name=$("$EMBER" report --db "$db" --from "$from" --no-save --output-dir "$OUT/probe" 2>&1 |
	sed -n 's|.*wrote .*/\(ember-report-[^ ]*\)$|\1|p')
[ -n "$name" ] || fail "cannot learn the report file name"
for n in "$name" "$name.tmp" ".$name.tmp"; do
	ln -sf "$victim" "$pub/reports/$n"
	chown -h nobody "$pub/reports/$n"
done
"$EMBER" report --db "$db" --from "$from" --no-save --output-dir "$pub/reports" 2> "$OUT/dir.err" ||
	{ cat "$OUT/dir.err"; fail "ember report --output-dir failed"; }
intact "ember report --output-dir"
regular "$pub/reports/$name"
note "report --output-dir: $name written as a new file, victim intact"

mkdir -m 1777 "$pub/crontab.dir"
for n in ember-report .ember-report.tmp; do
	ln -sf "$victim" "$pub/crontab.dir/$n"
	chown -h nobody "$pub/crontab.dir/$n"
done
EMBER_CRON_DIR="$pub/crontab.dir" "$EMBER" report --install-cron --db "$db" \
	--output-dir "$OUT/cron-reports" 2> "$OUT/cron.err" || { cat "$OUT/cron.err"; fail "install-cron failed"; }
intact "ember report --install-cron"
regular "$pub/crontab.dir/ember-report"
[ "$(mode "$pub/crontab.dir/ember-report")" = 640 ] || fail "cron file is mode $(mode "$pub/crontab.dir/ember-report")"
note "cron file: written as a new file, victim intact"

start_bg "$PROGS/fp_chain" 60 > /dev/null
work=$BG_LAST
plant Y.folded Y.folded.tmp Z.pb.gz
"$EMBER" record --pid "$work" --duration 2 --output "$pub/Y.folded" 2> "$OUT/record.err" ||
	{ cat "$OUT/record.err"; fail "ember record (folded) failed"; }
intact "ember record --output (folded)"
regular "$pub/Y.folded"
[ "$(mode "$pub/Y.folded")" = 640 ] || fail "folded output is mode $(mode "$pub/Y.folded")"
grep -q "hot_leaf" "$pub/Y.folded" || fail "the folded profile is not in $pub/Y.folded"
"$EMBER" record --pid "$work" --duration 2 --output "$pub/Z.pb.gz" 2> "$OUT/record2.err" ||
	{ cat "$OUT/record2.err"; fail "ember record (pprof) failed"; }
intact "ember record --output (pprof)"
regular "$pub/Z.pb.gz"
note "record --output: folded and pprof written as new files, victim intact"

plant e.db f.db-wal
"$EMBER" run --db "$pub/e.db" --listen 127.0.0.1:0 > /dev/null 2> "$OUT/e.err" &&
	fail "ember run used a symlinked database"
grep -q "symbolic link" "$OUT/e.err" || { cat "$OUT/e.err"; fail "no message about the symlink"; }
"$EMBER" run --db "$pub/f.db" --listen 127.0.0.1:0 > /dev/null 2> "$OUT/f.err" &&
	fail "ember run used a database with a symlinked WAL"
grep -q "f.db-wal is a symbolic link" "$OUT/f.err" || { cat "$OUT/f.err"; fail "no message about the WAL"; }
intact "ember run --db"
note "database or WAL symlinked: refused ($(head -n 1 "$OUT/e.err"))"
exit 0
