#!/bin/sh
# spans_mysql: MySQL-protocol spans of MariaDB under sysbench oltp_read_only,
# with plain queries (--db-ps-mode=disable) and prepared statements (auto).
# Oracles outside Ember:
#   - the server's spans (prepares aside, which MariaDB does not count)
#     equal the server's own Questions counter delta within 1%;
#   - sysbench's client spans equal the queries sysbench reports within 1%;
#   - the normalized statements are the ones in sysbench's oltp_common.lua.
# MariaDB runs from a data directory made by the test, on a free port.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/spans.inc"
require_bpf
command -v mariadbd > /dev/null || fail "mariadbd not installed (Debian package mariadb-server)"
command -v sysbench > /dev/null || fail "sysbench not installed (scripts/setup-deps.sh installs it)"
lua=/usr/share/sysbench/oltp_common.lua
[ -r $lua ] || fail "$lua missing (Debian package sysbench)"
install=$(command -v mariadb-install-db || command -v mysql_install_db) || fail "mariadb-install-db missing"
client=$(command -v mariadb || command -v mysql) || fail "mariadb client missing (mariadb-client)"

port=$(free_port)
"$install" --no-defaults --datadir="$OUT/data" --auth-root-authentication-method=normal \
	--skip-test-db --user=root > "$OUT/install.log" 2>&1 || { cat "$OUT/install.log"; fail "install-db failed"; }
start_bg mariadbd --no-defaults --datadir="$OUT/data" --socket="$OUT/sock" --port="$port" \
	--bind-address=127.0.0.1 --user=root --skip-log-bin --innodb-buffer-pool-size=32M \
	--open-files-limit=1024 --max-connections=50 \
	--pid-file="$OUT/mariadb.pid" --log-error="$OUT/mariadb.err"
server=$BG_LAST
for i in $(seq 1 100); do
	"$client" --no-defaults -S "$OUT/sock" -uroot -e "select 1" > /dev/null 2>&1 && break
	sleep 0.2
done
"$client" --no-defaults -S "$OUT/sock" -uroot -e "CREATE DATABASE sbtest;
	CREATE USER 'sb'@'127.0.0.1' IDENTIFIED BY 'sb'; GRANT ALL ON *.* TO 'sb'@'127.0.0.1';" ||
	fail "cannot set MariaDB up"
SB="sysbench oltp_read_only --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port=$port
	--mysql-user=sb --mysql-password=sb --mysql-db=sbtest --tables=1 --table-size=2000"
$SB prepare > "$OUT/prepare.log" 2>&1 || { cat "$OUT/prepare.log"; fail "sysbench prepare failed"; }

questions() {
	"$client" --no-defaults -h 127.0.0.1 -P "$port" -usb -psb -N \
		-e "SHOW GLOBAL STATUS LIKE 'Questions'" | awk '{ print $2 }'
}

start_ember
q0=$(questions)
queries=0
pids=""
for mode in disable auto; do
	$SB --threads=2 --events=400 --time=0 --db-ps-mode=$mode run > "$OUT/run-$mode.log" 2>&1 &
	b=$!
	wait $b || { cat "$OUT/run-$mode.log"; fail "sysbench run ($mode) failed"; }
	n=$(sed -n 's/^ *total: *\([0-9]*\)$/\1/p' "$OUT/run-$mode.log" | head -n 1)
	[ -n "$n" ] || { cat "$OUT/run-$mode.log"; fail "no query total in sysbench's report"; }
	note "sysbench --db-ps-mode=$mode (pid $b): $n queries"
	queries=$((queries + n))
	pids="$pids $b"
done
q1=$(questions)
delta=$((q1 - q0))
note "Questions: $q0 -> $q1 (delta $delta)"

# server spans: every statement Questions counts (prepares are not)
q="pid=$server&protocol=mysql&role=server"
served=$(settle "$q" '[.rows[] | select(.endpoint | startswith("PREPARE ") | not) | .count] | add // 0')
spans_json "$q" | jq -r '.rows[] | "\(.count)\t\(.endpoint)"' > "$OUT/server-rows.txt"
cat "$OUT/server-rows.txt"
note "server spans (prepares aside): $served"
# Q0's own SHOW is in the spans but not in the delta
within "$served" $((delta + 1)) 1 || fail "server spans $served, Questions delta $delta"

# client spans, per sysbench process, and their statements
seen=0
for b in $pids; do
	c=$(spans_json "pid=$b&protocol=mysql&role=client" |
		jq -r '[.rows[] | select(.endpoint | startswith("PREPARE ") | not) | .count] | add // 0')
	seen=$((seen + c))
	spans_json "pid=$b&protocol=mysql&role=client" | jq -r '.rows[].endpoint' > "$OUT/endpoints-$b.txt"
	sed -n 's/^ *"\(SELECT [^"]*sbtest%u[^"]*\)",*$/\1/p' $lua | sed 's/%u/1/' |
		while read -r stmt; do
			grep -qxF "$stmt" "$OUT/endpoints-$b.txt" ||
				{ cat "$OUT/endpoints-$b.txt"; fail "sysbench statement '$stmt' not among pid $b's endpoints"; }
		done || exit 1
	grep -qx "BEGIN" "$OUT/endpoints-$b.txt" || fail "BEGIN missing"
done
note "sysbench client spans: $seen, sysbench's count: $queries"
within "$seen" "$queries" 1 || fail "client spans $seen, sysbench counted $queries"
[ "$(sed -n 's/^ *"\(SELECT [^"]*sbtest%u[^"]*\)",*$/\1/p' $lua | wc -l)" -ge 5 ] ||
	fail "could not read sysbench's statements from $lua"

# prepared statements were seen being prepared
spans_json "pid=$server&protocol=mysql&role=server" | jq -r '.rows[].endpoint' |
	grep -q '^PREPARE SELECT c FROM sbtest1 WHERE id=?$' || fail "no PREPARE span"
note "tracker: $(curl -sf "${URL}api/stats" | jq -c '.agent.spans.tracker | {spans, desync, unanswered, unmatched, unknown_stmt}')"
note "kernel: $(curl -sf "${URL}api/stats" | jq -c '.agent.spans.kernel | {data_events, data_lost, ctl_lost, unknown_conns}')"
stop_ember
"$client" --no-defaults -S "$OUT/sock" -uroot -e "SHUTDOWN" > /dev/null 2>&1
exit 0
