#!/bin/sh
# spans_tls_detach: TLS uprobes go when the processes that mapped their
# file go, and new programs still get spans.  Six copies of the Go HTTPS
# server (tests/programs/gotls; each copy its own inode, as a rebuilt or
# redeployed binary is) run one after the other under
# --tls-max-probes 3 x (the probes of one copy) + 8 (libssl, which curl
# maps): without detaching, the fourth copy could not be attached.  For
# each copy: it is attached when it starts (the agent's exec event, not
# the 0.5 s scan), its server spans equal curl's answers, and once it is
# killed its probes are detached (the log names the copy).
# Oracle outside ember: the kernel's own account of the uprobe links on
# each copy held by the agent (tests/tools/uprobe_links reads each link's
# file from the kernel; the agent's link ids from /proc/PID/fdinfo), one
# copy's worth at its start, none after its stop, never a uretprobe; and
# objdump's RET count for the probes per copy.
# Last, a shell the attacher has already seen execs the server in place
# (same pid): only the exec event can tell the attacher, and its spans come.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/spans.inc"
require_bpf
require_prog gotls
command -v openssl > /dev/null || fail "openssl not installed (scripts/setup-deps.sh installs it)"
command -v objdump > /dev/null || skip "objdump (binutils) not installed"

COPIES=6
N=30
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
	-keyout "$OUT/key.pem" -out "$OUT/cert.pem" > "$OUT/openssl.log" 2>&1 ||
	{ cat "$OUT/openssl.log"; fail "openssl could not make a certificate"; }

# probes per Go file: an entry probe on Write and Read, one per RET of Read
rr=$(objdump -d --no-show-raw-insn "$PROGS/gotls" |
	awk '$2 == "<crypto/tls.(*Conn).Read>:" { on = 1; next } on && /^$/ { exit }
		on && $2 == "ret" { n++ } END { print n + 0 }')
[ "$rr" -ge 1 ] || fail "objdump found no RET in (*Conn).Read"
P=$((rr + 2))
MAX=$((3 * P + 8))
note "objdump: $rr RETs in (*Conn).Read: $P probes per copy; --tls-max-probes $MAX"

# the oracle reads uprobe links' files from the kernel: Linux 6.6 and later
kv=$(uname -r | awk -F. '{ print $1 * 1000 + $2 }')
[ "$kv" -ge 6006 ] || skip "the kernel ($(uname -r)) does not report uprobe links' files (6.6+)"
TOOLS=$(dirname "$EMBER")/tools
[ -x "$TOOLS/uprobe_links" ] || fail "$TOOLS/uprobe_links not built (make build-tests)"
# links PATH [uprobe|uretprobe]: the uprobe links on PATH that the agent
# holds, by the kernel's account (tests/tools/uprobe_links: every uprobe
# link's path as attached, for a Go binary /proc/PID/exe of the process it
# was found in; the agent's link ids from /proc/PID/fdinfo: another agent
# on this host may trace the same file)
links() {
	mine=$(awk '/^link_id:/ { print $2 }' /proc/$EMBER_PID/fdinfo/* 2> /dev/null)
	"$TOOLS/uprobe_links" 2> /dev/null | awk -v f="$1" -v k="${2:-}" '$5 == f && (k == "" || $3 == k) { print $1 }' |
		grep -cxF "$mine"
}

# wait_links FILE WANT: until links FILE is WANT (10 s); prints what it is
wait_links() {
	for i in $(seq 1 100); do
		l=$(links "$1")
		[ "$l" = "$2" ] && break
		sleep 0.1
	done
	echo "$l"
}

# attach_line PID: the attacher's line for a Go server attached in PID
attach_line() {
	grep "tls: tracing Go crypto/tls in pid $1 " "$OUT/ember.log"
}

# serve_and_count PID PORT: N requests by curl; checks PID's server spans against them
serve_and_count() {
	for i in $(seq 1 100); do
		[ "$(curl -sk "https://127.0.0.1:$2/ok/0")" = "ok 0" ] && break
		sleep 0.05
	done
	ok=0
	for i in $(seq 1 $N); do
		[ "$(curl -sk "https://127.0.0.1:$2/ok/$i")" = "ok $i" ] && ok=$((ok + 1))
	done
	[ "$ok" = $N ] || fail "curl got $ok right answers of $N from pid $1"
	got=$(settle "pid=$1&protocol=http&role=server" '[.rows[].statuses["200"] // 0] | add // 0')
	tls=$(spans_json "pid=$1&protocol=http&role=server" | jq -r '[.rows[].tls] | add // 0')
	note "pid $1: $got server spans (curl: $N, and the request that found it up), $tls marked tls"
	# the first request may come before the attach: N or N + 1
	[ "$got" -ge $N ] && [ "$got" -le $((N + 1)) ] || fail "pid $1: $got spans, curl: $N (+1)"
	[ "$tls" = "$got" ] || fail "pid $1: $tls of $got spans marked tls"
}

start_ember --tls-max-probes $MAX

for c in $(seq 1 $COPIES); do
	mkdir -p "$OUT/copy$c"
	bin="$OUT/copy$c/gotls-$c"
	cp "$PROGS/gotls" "$bin"
	port=$(free_port)
	start_bg "$bin" serve "127.0.0.1:$port" "$OUT/cert.pem" "$OUT/key.pem"
	server=$BG_LAST
	for i in $(seq 1 50); do
		[ -n "$(attach_line $server)" ] && break
		sleep 0.1
	done
	[ -n "$(attach_line $server)" ] || fail "copy $c (pid $server) was not attached"
	up=$(wait_links "/proc/$server/exe" $P)
	note "copy $c: $(attach_line $server | sed 's/.*tls: //'); the kernel has $up links of the agent on it"
	[ "$up" = $P ] || fail "copy $c: $up uprobe links on it, want $P"
	[ "$(links "/proc/$server/exe" uretprobe)" = 0 ] || fail "copy $c: a uretprobe on a Go binary"
	serve_and_count "$server" "$port"
	kill "$server"
	wait "$server" 2> /dev/null
	for i in $(seq 1 100); do
		grep -qF "tls: detached $P probes from $bin: no process maps it" "$OUT/ember.log" && break
		sleep 0.1
	done
	grep -qF "tls: detached $P probes from $bin: no process maps it" "$OUT/ember.log" ||
		fail "copy $c: its probes were not detached"
	down=$(wait_links "/proc/$server/exe" 0)
	note "copy $c stopped: detached; the kernel has $down links of the agent on it"
	[ "$down" = 0 ] || fail "after copy $c: $down uprobe links on it"
done

stats=$(span_stat tls)
note "attacher: $(echo "$stats" | jq -c .)"
att=$(echo "$stats" | jq -r .go_files)
det=$(echo "$stats" | jq -r .detaches)
[ "$att" -ge $COPIES ] || fail "$att Go files attached, want >= $COPIES"
[ "$det" -ge $COPIES ] || fail "$det files detached, want >= $COPIES"
# more probes attached over time than the limit allows at once: slots were freed
[ "$(echo "$stats" | jq -r .probes)" -gt "$MAX" ] || fail "never more probes than the limit"
[ "$(echo "$stats" | jq -r .probes_attached)" -le "$MAX" ] || fail "over the limit"

# exec in place: a shell, seen by the attacher's scans, becomes the server
cp "$PROGS/gotls" "$OUT/gotls-exec"
port=$(free_port)
start_bg sh -c "sleep 2; exec '$OUT/gotls-exec' serve 127.0.0.1:$port '$OUT/cert.pem' '$OUT/key.pem'"
server=$BG_LAST
ev0=$(echo "$stats" | jq -r .events)
sleep 2.5
[ -n "$(attach_line $server)" ] || fail "the server exec'd by pid $server was not attached"
serve_and_count "$server" "$port"
ev=$(span_stat tls.events)
note "exec'd in place: pid $server attached; $((ev - ev0)) exec events handled meanwhile"
[ "$ev" -gt "$ev0" ] || fail "no exec event handled"
kill "$server"
stop_ember
exit 0
