#!/bin/sh
# web_ui: the browser tests (tests/web/*.test.js) - Debian's Chromium driven
# by playwright-core over known datasets (tests/tools/fill_db.c, fill_net.c,
# fill_spans.c)
# served by tests/tools/serve_db.c.  Needs no BPF; needs node, npm and chromium.
# playwright-core comes from the npm registry (npm ci, pinned by
# tests/web/package-lock.json); it downloads no browser.
. "$(dirname "$0")/lib.sh"

command -v node > /dev/null || skip "node not installed (Debian package nodejs)"
command -v npm > /dev/null || skip "npm not installed (Debian package npm)"
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || skip "${CHROMIUM:-/usr/bin/chromium} not installed (Debian package chromium)"
build=$(dirname "$EMBER")
for t in fill_db fill_net fill_spans serve_db; do
	[ -x "$build/tools/$t" ] || fail "$build/tools/$t not built (make build-tests)"
done

root=$(pwd)
export EMBER_BUILD="$root/$build"
case "$build" in /*) export EMBER_BUILD="$build" ;; esac
case "$OUT" in /*) export TEST_OUT="$OUT" ;; *) export TEST_OUT="$root/$OUT" ;; esac
cd tests/web || fail "tests/web missing"
npm ci --no-audit --no-fund > "$TEST_OUT/npm.log" 2>&1 || { cat "$TEST_OUT/npm.log"; fail "npm ci failed"; }
node --test > "$TEST_OUT/node-test.log" 2>&1
rc=$?
cat "$TEST_OUT/node-test.log"
[ $rc -eq 0 ] || fail "browser tests failed (screenshots in $TEST_OUT)"
note "screenshots in $TEST_OUT"
