#!/bin/sh
# retention.sh - retention's effect on ingest and queries (tests/bench/retention_bench.c).
#
#   sh tests/bench/retention.sh        (from the repository root, after make)
#
# Works on a copy of the query benchmark's database (made by
# tests/bench/query.sh first when missing), so that one stays as it is.
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
OUT=$BUILD/bench/retention
HOURS=${BENCH_HOURS:-24}
RATE=${BENCH_RATE:-400}
src="$BUILD/bench/query/query-$HOURS-$RATE.db"
[ -f "$src" ] || sh tests/bench/query.sh > /dev/null
mkdir -p "$OUT"
gcc -O2 -g -std=gnu11 -D_GNU_SOURCE -Isrc -Ibpf/include -I"$BUILD/gen" -o "$OUT/retention_bench" \
	tests/bench/retention_bench.c "$BUILD/libember.a" \
	-lbpf -lelf -ldw -lz -lzstd -lsqlite3 -lmicrohttpd -lprotobuf-c -lstdc++ -lpthread -lm
rm -f "$OUT/copy.db" "$OUT/copy.db-wal" "$OUT/copy.db-shm"
sqlite3 "$src" ".backup '$OUT/copy.db'"
"$OUT/retention_bench" "$OUT/copy.db" "$HOURS" | tee "$OUT/results.md"
