#!/bin/sh
# bad_environment: a database that cannot be opened or is corrupt, and a
# user without BPF rights, each get one clear message and a non-zero exit.
. "$(dirname "$0")/lib.sh"
require_bpf

# corrupt database: the message names the path
head -c 8192 /dev/urandom > "$OUT/corrupt.db"
"$EMBER" run --db "$OUT/corrupt.db" --listen 127.0.0.1:0 2> "$OUT/e1"; rc=$?
note "corrupt db: $(head -n 1 "$OUT/e1")"
[ $rc -ne 0 ] || fail "corrupt database accepted"
grep -q "$OUT/corrupt.db" "$OUT/e1" || fail "message does not name the database path"

# a database path that is a directory
mkdir -p "$OUT/dir.db"
"$EMBER" run --db "$OUT/dir.db" --listen 127.0.0.1:0 2> "$OUT/e2"; rc=$?
note "directory as db: $(head -n 1 "$OUT/e2")"
[ $rc -ne 0 ] && grep -q "$OUT/dir.db" "$OUT/e2" || fail "directory as database: exit $rc"

# a listen address that does not parse
"$EMBER" run --db "$OUT/ok.db" --listen "not-an-address" 2> "$OUT/e3"; rc=$?
note "bad listen: $(head -n 1 "$OUT/e3")"
[ $rc -ne 0 ] && grep -q "not-an-address" "$OUT/e3" || fail "bad --listen: exit $rc"

# no BPF rights: an unprivileged user is told what is missing
command -v setpriv > /dev/null || fail "setpriv (util-linux) missing"
chmod 1777 "$OUT"
setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
	"$EMBER" record --all --duration 1 --output "$OUT/nobody.folded" 2> "$OUT/e4"; rc=$?
note "unprivileged: $(head -n 1 "$OUT/e4")"
[ $rc -ne 0 ] || fail "unprivileged record succeeded?"
grep -q "root" "$OUT/e4" || fail "message does not say root/capabilities are needed"
[ "$(wc -l < "$OUT/e4")" -le 3 ] || fail "expected one clear message, got: $(cat "$OUT/e4")"
exit 0
