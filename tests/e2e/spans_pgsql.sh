#!/bin/sh
# spans_pgsql: PostgreSQL spans under pgbench -S, simple and prepared
# protocols.  The oracle is pgbench's "number of transactions actually
# processed": each transaction of -S is one SELECT, so the spans of that
# statement, on the server and in each pgbench process, must equal it
# within 1%.  PostgreSQL runs from a cluster made by the test (initdb, as
# the postgres user), on a free port with its socket in $OUT.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/spans.inc"
require_bpf
bin=$(ls -d /usr/lib/postgresql/*/bin 2> /dev/null | sort -V | tail -n 1)
[ -x "$bin/initdb" ] || fail "PostgreSQL not installed (Debian package postgresql)"
command -v pgbench > /dev/null || fail "pgbench not installed (Debian package postgresql-contrib)"
id postgres > /dev/null 2>&1 || skip "no postgres user to run the server as"

port=$(free_port)
pgdir="$OUT/pg"
mkdir -p "$pgdir"
chown postgres "$pgdir"
chmod 755 "$OUT"
as_pg() { su postgres -s /bin/sh -c "$*"; }
as_pg "'$bin/initdb' -D '$pgdir/data' -A trust -U postgres" > "$OUT/initdb.log" 2>&1 ||
	{ cat "$OUT/initdb.log"; fail "initdb failed"; }
as_pg "'$bin/pg_ctl' -D '$pgdir/data' -l '$pgdir/log' -w -o \"-p $port -k $pgdir -c listen_addresses=127.0.0.1\" start" \
	> "$OUT/pg_ctl.log" 2>&1 || { cat "$OUT/pg_ctl.log" "$pgdir/log"; fail "pg_ctl start failed"; }
stop_pg() { as_pg "'$bin/pg_ctl' -D '$pgdir/data' -m fast stop" > /dev/null 2>&1; }
trap 'stop_pg; cleanup' EXIT INT TERM
PGB="pgbench -h 127.0.0.1 -p $port -U postgres"
$PGB -i -s 1 postgres > "$OUT/init.log" 2>&1 || { cat "$OUT/init.log"; fail "pgbench -i failed"; }

start_ember
stmt_simple="SELECT abalance FROM pgbench_accounts WHERE aid = ?"
stmt_prep="SELECT abalance FROM pgbench_accounts WHERE aid = \$1"
server_total=0
for mode in simple prepared; do
	$PGB -S -n -c 2 -t 2500 -M $mode postgres > "$OUT/bench-$mode.log" 2>&1 &
	b=$!
	wait $b || { cat "$OUT/bench-$mode.log"; fail "pgbench -M $mode failed"; }
	tx=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$OUT/bench-$mode.log")
	[ -n "$tx" ] || { cat "$OUT/bench-$mode.log"; fail "no transaction count from pgbench"; }
	stmt=$stmt_simple
	[ $mode = prepared ] && stmt=$stmt_prep
	got=$(settle "pid=$b&protocol=pgsql&role=client" \
		"[.rows[] | select(.endpoint == \"$stmt\") | .count] | add // 0")
	note "pgbench -M $mode (pid $b): $tx transactions, $got client spans of \"$stmt\""
	within "$got" "$tx" 1 || fail "client spans $got, pgbench's transactions $tx ($mode)"
	server_total=$((server_total + tx))
done
# the server: a backend process per connection, gone by now; count the
# statements over every PostgreSQL server process (only pgbench sends them)
svc=$(spans_json "protocol=pgsql&role=server" | jq -r '[.rows[].service] | unique | join(",")')
byservice=$(spans_json "protocol=pgsql&role=server" |
	jq -r "[.rows[] | select(.endpoint == \"$stmt_simple\" or .endpoint == \"$stmt_prep\") | .count] | add // 0")
note "server spans of the two statements (services $svc): $byservice; pgbench: $server_total"
within "$byservice" "$server_total" 1 || fail "server spans $byservice, pgbench's transactions $server_total"
spans_json "protocol=pgsql&role=server" | jq -r '.rows[].endpoint' | grep -q "^PREPARE $stmt_prep\$" ||
	fail "no PREPARE span for the prepared statement"
note "tracker: $(curl -sf "${URL}api/stats" | jq -c '.agent.spans.tracker | {spans, desync, unanswered, unmatched, unknown_stmt}')"
note "kernel: $(curl -sf "${URL}api/stats" | jq -c '.agent.spans.kernel | {data_events, data_lost, ctl_lost, unknown_conns}')"
stop_ember
exit 0
