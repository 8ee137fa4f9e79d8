# lib.sh - helpers for the end-to-end tests (sourced, POSIX sh).
#
# Each test script: . "$(dirname "$0")/lib.sh", then require_bpf, then its
# steps; fail "message" exits 1, skip "reason" exits 77 (run-tests.sh
# counts it as skipped and the reason is printed).  Background processes
# started with start_bg are killed on exit.

set -u
EMBER=${EMBER_BIN:-build/ember}
PROGS=${EMBER_PROGS:-build/progs}
OUT=${TEST_OUT:-/tmp/ember-e2e}
rm -rf "$OUT"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd) # absolute: tests cd elsewhere
. "$(dirname "$0")/../lib/harness.sh" # fail, skip, note, start_bg; cleanup on exit

# wait_for_server PID LOG: wait until `ember run` (pid PID, stderr in LOG)
# prints the address it serves; sets $url.  Fails when it exits or is silent.
wait_for_server() {
	url=""
	for i in $(seq 1 50); do
		url=$(sed -n 's/^ember: serving \(http:[^ ]*\)$/\1/p' "$2")
		[ -n "$url" ] && return 0
		kill -0 "$1" 2> /dev/null || { cat "$2"; fail "ember run exited"; }
		sleep 0.2
	done
	cat "$2"
	fail "ember run did not print its address"
}

# procs_map_id PID: the id of the kernel procs map of the agent PID: among
# its BPF map fds, the hash whose value is a struct ember_proc (3080 bytes).
procs_map_id() {
	for f in /proc/"$1"/fdinfo/*; do
		awk '/^map_type:/ { t = $2 } /^value_size:/ { v = $2 } /^map_id:/ { id = $2 }
			END { if (t == 1 && v == 3080) print id }' "$f" 2> /dev/null
	done | head -n 1
}

# procs_pids ID: the pids in the procs map ID, one a line, as bpftool dumps them.
procs_pids() {
	bpftool -j map dump id "$1" | tr ',{}' '\n\n\n' | sed -n 's/^ *"key": *\([0-9][0-9]*\) *$/\1/p'
}

# Skip unless this machine can load BPF and open perf events.
require_bpf() {
	[ "$(id -u)" -eq 0 ] || skip "needs root to load BPF programs (running as uid $(id -u))"
	[ -r /sys/kernel/btf/vmlinux ] || skip "kernel has no BTF (/sys/kernel/btf/vmlinux missing)"
	[ -x "$EMBER" ] || fail "$EMBER not built"
}

# serving_url LOG PID: the address `ember run` (pid PID, stderr in LOG)
# prints once it listens; fails if it exits or says nothing for 10 s.
serving_url() {
	for i in $(seq 1 50); do
		u=$(sed -n 's/^ember: serving \(http:[^ ]*\)$/\1/p' "$1")
		[ -n "$u" ] && { echo "$u"; return 0; }
		kill -0 "$2" 2> /dev/null || { cat "$1" >&2; fail "ember run exited"; }
		sleep 0.2
	done
	cat "$1" >&2
	fail "ember run did not print its address"
}

require_prog() {
	[ -x "$PROGS/$1" ] || fail "test program $PROGS/$1 not built (make test-programs)"
}

. "$(dirname "$0")/../lib/folded.sh" # share, total_samples, rooted_permille, deep_samples

# start_ember_run ARGS...: `ember run --listen 127.0.0.1:0 ARGS` in the
# background, without service/version variables in its environment; sets
# $ember (its pid) and $url (where it serves) or fails.  Log: $OUT/run.log.
start_ember_run() {
	env -u EMBER_SERVICE -u EMBER_VERSION -u OTEL_SERVICE_NAME -u OTEL_RESOURCE_ATTRIBUTES \
		"$EMBER" run --listen 127.0.0.1:0 "$@" 2> "$OUT/run.log" &
	ember=$!
	BG_PIDS="$BG_PIDS $ember"
	wait_for_server "$ember" "$OUT/run.log"
}

# http_test_db NAME: check the HTTP test tools are built and write the
# small known dataset of tests/tools/fill_db to $OUT/NAME.db; sets TOOLS, DB.
http_test_db() {
	TOOLS=$(dirname "$EMBER")/tools
	for _t in fill_db serve_db http_clients; do
		[ -x "$TOOLS/$_t" ] || fail "$TOOLS/$_t not built (make build-tests)"
	done
	DB="$OUT/$1.db"
	"$TOOLS/fill_db" "$DB" > "$OUT/fill.log" 2>&1 || { cat "$OUT/fill.log"; fail "fill_db $DB failed"; }
}

# start_serve_db DB [serve_db options...]: serve DB over HTTP (tests/tools/
# serve_db, no BPF) on a free port; sets SERVE_PID and SERVE_PORT.
start_serve_db() {
	_db=$1; shift
	start_bg "$(dirname "$EMBER")/tools/serve_db" "$_db" "$@" > "$OUT/serve.out" 2>> "$OUT/serve.err"
	SERVE_PID=$BG_LAST
	SERVE_PORT=""
	for _i in $(seq 1 50); do
		SERVE_PORT=$(sed -n 's/^serving http:\/\/[0-9.]*:\([0-9]*\)\/$/\1/p' "$OUT/serve.out")
		[ -n "$SERVE_PORT" ] && return 0
		kill -0 "$SERVE_PID" 2> /dev/null || break
		sleep 0.1
	done
	cat "$OUT/serve.err"
	fail "serve_db $_db did not start"
}

# json_num FILE KEY: the first number after "KEY": in FILE (empty if none)
json_num() { grep -o "\"$2\":[0-9.]*" "$1" | head -n 1 | cut -d: -f2; }

# kv FILE KEY: the value of KEY=value in the last line of FILE that has it
kv() { grep -o "\(^\| \)$2=[^ ]*" "$1" | tail -n 1 | cut -d= -f2; }
