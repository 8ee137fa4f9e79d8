#!/bin/sh
# go_build_versions: Go binaries have no GNU build-id; two `go build`s of
# one module outside version control (no vcs.revision, module version
# "(devel)") must still be two versions under `ember run` (issue [8]).
# Built: v1, v2 (a code change), and v2 stripped (-ldflags='-s -w').
#   - /api/targets has, for each build, a target of its executable whose
#     build_id is the one the oracle expects: the first 20 bytes of SHA-256
#     of the Go build ID that `go tool buildid` prints
#     (docs/symbolization.md);
#   - the three build_ids are distinct, each version is its build_id's
#     first 12 digits, and /api/services lists service "goprog" with
#     exactly these three versions (besides "unknown": see below).
. "$(dirname "$0")/lib.sh"
require_bpf
command -v go > /dev/null || fail "go not installed (scripts/setup-deps.sh installs golang-go)"
command -v curl > /dev/null || fail "curl not installed (scripts/setup-deps.sh installs it)"
export GOCACHE="${GOCACHE:-/tmp/ember-gocache}" GOFLAGS=-mod=mod GOPROXY=off
export HOME="${HOME:-/root}"

# one module, built twice with a code change in between, outside any VCS
# stamping (-buildvcs=false: what `go build` does outside a repository)
src=$(cd "$(dirname "$0")/../programs/goprog" && pwd)
mkdir -p "$OUT/mod" "$OUT/v1" "$OUT/v2" "$OUT/v2s"
cp "$src/go.mod" "$src/main.go" "$OUT/mod/"
(cd "$OUT/mod" && go build -buildvcs=false -o "$OUT/v1/goprog" .) || fail "go build v1 failed"
sed -i 's/i < 200000; i++/i < 200001; i++/' "$OUT/mod/main.go"
cmp -s "$src/main.go" "$OUT/mod/main.go" && fail "the code change did not apply"
(cd "$OUT/mod" && go build -buildvcs=false -o "$OUT/v2/goprog" . &&
	go build -buildvcs=false -ldflags='-s -w' -o "$OUT/v2s/goprog" .) || fail "go build v2 failed"
for v in v1 v2 v2s; do
	readelf -n "$OUT/$v/goprog" | grep -q "Build ID:" && fail "$v/goprog has a GNU build-id"
	gid=$(go tool buildid "$OUT/$v/goprog") || fail "go tool buildid $v failed"
	printf %s "$gid" | sha256sum | cut -c1-40 > "$OUT/$v.want"
	note "$v: go build ID $gid -> expected build_id $(cat "$OUT/$v.want")"
done
readelf -S "$OUT/v2s/goprog" | grep -q '\.symtab' && fail "v2s/goprog is not stripped"

# targets FIELD VALUE: the targets whose FIELD is VALUE (JSON text), one a line
targets() {
	tr '{' '\n' < "$OUT/targets.json" | grep "\"$1\":$2[,}]"
}
# field FIELD: a field of the target on stdin, as JSON text ("..." or null)
field() {
	sed -n "s/.*\"$1\":\(null\|\"[^\"]*\"\).*/\1/p" | head -n 1
}
# found V: does a target carry build V's expected build_id?
found() {
	[ -n "$(targets build_id "\"$(cat "$OUT/$1.want")\"")" ]
}
# run BUILDS...: run them at once (8 s, started directly: through env(1) a
# pid read between the two execs is taken for env) and wait until each has
# its target, or 20 s
run_builds() {
	for v in "$@"; do
		"$OUT/$v/goprog" 8 > /dev/null &
		echo $! > "$OUT/$v.pid"
		BG_PIDS="$BG_PIDS $!"
	done
	for i in $(seq 1 40); do
		sleep 0.5
		curl -sf "${url}api/targets" > "$OUT/targets.json" || continue
		ok=1
		for v in "$@"; do found $v || ok=0; done
		[ $ok -eq 1 ] && return 0
	done
}
unset EMBER_SERVICE EMBER_VERSION OTEL_SERVICE_NAME OTEL_RESOURCE_ATTRIBUTES
start_ember_run --db "$OUT/ember.db" --frequency 997 --flush 1 --unwind-cache "$OUT/unwind-cache"
sleep 1
run_builds v1 v2 v2s
# A process the agent could not read from /proc at all gets no build-id
# (exe and build_id null, version "unknown"): a process-tracking race on a
# loaded host that exists without this change too.  Such a build is run
# again (twice at most); each must end with a target of its own carrying
# the right build-id.
for attempt in 2 3; do
	missing=""
	for v in v1 v2 v2s; do found $v || missing="$missing $v"; done
	[ -z "$missing" ] && break
	note "not read while they ran:$missing; running them again"
	# shellcheck disable=SC2086 # a list of names
	run_builds $missing
done
for v in v1 v2 v2s; do
	p=$(cat "$OUT/$v.pid")
	want=$(cat "$OUT/$v.want")
	targets pid "$p" | sed "s/^/    $v (pid $p): /"
	t=$(targets build_id "\"$want\"" | head -n 1)
	[ -n "$t" ] || { targets comm '"goprog"' | head -n 5; fail "$v: no target has build_id $want (from go tool buildid)"; }
	ver=$(echo "$t" | field version)
	svc=$(echo "$t" | field service)
	exe=$(echo "$t" | field exe)
	[ "$exe" = "\"$OUT/$v/goprog\"" ] || fail "$v: build_id $want is on $exe, not $OUT/$v/goprog"
	[ "$ver" = "\"$(echo "$want" | cut -c1-12)\"" ] ||
		fail "$v: version $ver is not the build_id's first 12 digits"
	[ "$svc" = '"goprog"' ] || fail "$v: service $svc, expected \"goprog\""
done
[ "$(sort -u "$OUT"/*.want | wc -l)" -eq 3 ] || fail "the three builds do not have three build_ids"
nulls=$(targets build_id null | grep -c '"comm":"goprog"')
[ "$nulls" -gt 0 ] && note "goprog targets read too late to get any build-id: $nulls"

curl -sf "${url}api/services" > "$OUT/services.json" || fail "/api/services failed"
svc=$(tr -d '\n' < "$OUT/services.json" | sed 's/{"service":/\n&/g' | grep '^{"service":"goprog"')
[ -n "$svc" ] || { cat "$OUT/services.json"; fail "no service named goprog"; }
echo "$svc" | grep -o '"version":"[^"]*"' | grep -v '"unknown"' | sort -u > "$OUT/versions.txt"
note "goprog's versions: $(tr '\n' ' ' < "$OUT/versions.txt")"
[ "$(wc -l < "$OUT/versions.txt")" -eq 3 ] ||
	fail "service goprog has $(wc -l < "$OUT/versions.txt") versions besides \"unknown\", expected 3"
for v in v1 v2 v2s; do
	grep -q "\"version\":\"$(cut -c1-12 "$OUT/$v.want")\"" "$OUT/versions.txt" ||
		fail "$v's version is not listed by /api/services"
done
exit 0
