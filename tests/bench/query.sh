#!/bin/sh
# query.sh - query latency over a day of synthetic data (tests/bench/query_bench.c).
#
#   sh tests/bench/query.sh            (from the repository root, after make)
#   BENCH_HOURS=24 BENCH_RATE=400      (hours of data; samples per 10 s bucket)
#
# The database is kept in build/bench/query/ and reused while its size
# parameters are unchanged (generating 24 h takes a minute or two).
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
OUT=$BUILD/bench/query
HOURS=${BENCH_HOURS:-24}
RATE=${BENCH_RATE:-400}
mkdir -p "$OUT"
gcc -O2 -g -std=gnu11 -D_GNU_SOURCE -Isrc -Ibpf/include -I"$BUILD/gen" -o "$OUT/query_bench" \
	tests/bench/query_bench.c "$BUILD/libember.a" \
	-lbpf -lelf -ldw -lz -lzstd -lcrypto -lsqlite3 -lmicrohttpd -lprotobuf-c -lstdc++ -lpthread -lm
db="$OUT/query-$HOURS-$RATE.db"
"$OUT/query_bench" "$db" "$HOURS" "$RATE" | tee "$OUT/results.md"
