#!/bin/sh
# http_battery: malformed and hostile HTTP requests against the server
# (tests/tools/serve_db over a small known database, no BPF): bad methods,
# broken request lines and versions, huge and too many headers, an over-long
# URL, bad percent-encoding, bad, repeated, unknown, too many and over-long
# parameters, path traversal on the static files, a foreign Host, request
# bodies.  Each must get its status (or, for a line that is not HTTP at all,
# a closed connection); afterwards the server still answers, its process is
# alive, and its own request counters saw the requests.
. "$(dirname "$0")/lib.sh"

http_test_db battery
build=$(dirname "$EMBER")
db=$DB
start_serve_db "$db" --request-deadline 2
server=$SERVE_PID
port=$SERVE_PORT

n=0
bad=0
# check NAME EXPECTED REQUEST: REQUEST goes through printf %b (\r, \n, \0 escapes)
check() {
	n=$((n + 1))
	got=$(printf '%b' "$3" | "$build/tools/http_clients" raw "$port" --timeout-ms 8000)
	case " $2 " in
	*" $got "*) ;;
	*) echo "  $1: got $got, expected $2"; bad=$((bad + 1)) ;;
	esac
}
long() { head -c "$1" /dev/zero | tr '\0' "$2"; }

H='Host: 127.0.0.1\r\n'
check "unknown method" 405 "BREW / HTTP/1.1\r\n$H\r\n"
check "POST with a body" 405 "POST /api/targets HTTP/1.1\r\n${H}Content-Length: 5\r\n\r\nhello"
check "PUT" 405 "PUT /api/targets HTTP/1.1\r\n${H}Content-Length: 0\r\n\r\n"
check "DELETE" 405 "DELETE / HTTP/1.1\r\n$H\r\n"
check "OPTIONS *" 405 "OPTIONS * HTTP/1.1\r\n$H\r\n"
check "TRACE" 405 "TRACE / HTTP/1.1\r\n$H\r\n"
check "CONNECT" 405 "CONNECT 127.0.0.1:80 HTTP/1.1\r\n$H\r\n"
check "5000-byte method" 405 "$(long 5000 G) / HTTP/1.1\r\n$H\r\n"
check "not a request line" "400 closed" "GARBAGE\r\n\r\n"
check "binary junk" "400 closed" '\001\002\003\004\377\376\r\n\r\n'
check "HTTP/9.9" 505 "GET / HTTP/9.9\r\n$H\r\n"
check "HTTP/2.0 as text" 505 "GET / HTTP/2.0\r\n$H\r\n"
check "HTTP/1.1 without Host" 400 "GET / HTTP/1.1\r\n\r\n"
check "header without a colon" 400 "GET / HTTP/1.1\r\n${H}NoColonHere\r\n\r\n"
check "40 KiB header" 431 "GET / HTTP/1.1\r\n${H}X-Big: $(long 40000 a)\r\n\r\n"
check "3000 headers" 431 "GET / HTTP/1.1\r\n$H$(i=0; while [ $i -lt 3000 ]; do printf 'X-%d: y\\r\\n' $i; i=$((i + 1)); done)\r\n"
check "40 KiB URL" 414 "GET /api/flamegraph?service=$(long 40000 a) HTTP/1.1\r\n$H\r\n"
check "bad percent-encoding %zz" 400 "GET /api/flamegraph?service=%zz HTTP/1.0\r\n\r\n"
check "truncated percent-encoding" 400 "GET /api/flamegraph?service=ab%4 HTTP/1.0\r\n\r\n"
check "percent-encoded NUL" 400 "GET /api/flamegraph?service=a%00b HTTP/1.0\r\n\r\n"
check "bad percent-encoding in a key" 400 "GET /api/flamegraph?%zz=1 HTTP/1.0\r\n\r\n"
check "bad percent-encoding in the path" 400 "GET /index%g1.html HTTP/1.0\r\n\r\n"
check "good percent-encoding" 200 "GET /api/flamegraph?service=sh%6fp HTTP/1.0\r\n\r\n"
check "non-numeric target" 400 "GET /api/flamegraph?target=abc HTTP/1.0\r\n\r\n"
check "negative pid" 400 "GET /api/flamegraph?pid=-1 HTTP/1.0\r\n\r\n"
check "overflowing target" 400 "GET /api/flamegraph?target=99999999999999999999999 HTTP/1.0\r\n\r\n"
check "from after to" 400 "GET /api/flamegraph?from=5&to=1 HTTP/1.0\r\n\r\n"
check "repeated parameter" 400 "GET /api/flamegraph?target=1&target=1 HTTP/1.0\r\n\r\n"
check "unknown parameter" 400 "GET /api/flamegraph?colour=red HTTP/1.0\r\n\r\n"
check "parameter on /api/targets" 400 "GET /api/targets?x=1 HTTP/1.0\r\n\r\n"
check "300-byte value" 400 "GET /api/flamegraph?service=$(long 300 a) HTTP/1.0\r\n\r\n"
check "40 parameters" 400 "GET /api/flamegraph?$(i=0; while [ $i -lt 40 ]; do printf 'p%d=1&' $i; i=$((i + 1)); done) HTTP/1.0\r\n\r\n"
check "100 versions" 400 "GET /api/flamegraph?version=$(i=0; while [ $i -lt 100 ]; do printf 'v%d,' $i; i=$((i + 1)); done) HTTP/1.0\r\n\r\n"
check "min_share out of range" 400 "GET /api/diff?min_share=2 HTTP/1.0\r\n\r\n"
check "sort=diff without base" 400 "GET /api/top?sort=diff HTTP/1.0\r\n\r\n"
check "report id junk" 400 "GET /api/reports/abc HTTP/1.0\r\n\r\n"
check "unknown endpoint" 404 "GET /api/nope HTTP/1.0\r\n\r\n"
check "traversal ../" 404 "GET /../../etc/passwd HTTP/1.0\r\n\r\n"
check "traversal %2e%2e" 404 "GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.0\r\n\r\n"
check "traversal ..%2f" 404 "GET /..%2f..%2fetc%2fpasswd HTTP/1.0\r\n\r\n"
check "traversal via a folder" 404 "GET /web/../index.html HTTP/1.0\r\n\r\n"
check "double slash" 404 "GET //etc/passwd HTTP/1.0\r\n\r\n"
check "traversal in the API" 404 "GET /api/../../etc/passwd HTTP/1.0\r\n\r\n"
check "absolute URI" 404 "GET http://127.0.0.1/ HTTP/1.1\r\n$H\r\n"
check "foreign Host (DNS rebinding)" 403 "GET /api/targets HTTP/1.1\r\nHost: evil.example\r\n\r\n"
check "foreign Host with a port" 403 "GET / HTTP/1.1\r\nHost: 127.0.0.1.evil.example:80\r\n\r\n"
check "big Content-Length" 413 "GET / HTTP/1.1\r\n${H}Content-Length: 100000\r\n\r\n"
check "huge Content-Length" 413 "GET / HTTP/1.1\r\n${H}Content-Length: 99999999999999999999999\r\n\r\n"
check "negative Content-Length" 400 "GET / HTTP/1.1\r\n${H}Content-Length: -1\r\n\r\n"
check "junk Content-Length" 400 "GET / HTTP/1.1\r\n${H}Content-Length: abc\r\n\r\n"
check "bad chunk size" 400 "GET / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nZZZ\r\n"
check "100 KiB chunked body" "400 413 closed" "GET / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n$(i=0; while [ $i -lt 25 ]; do printf '1000\\r\\n%s\\r\\n' "$(long 4096 b)"; i=$((i + 1)); done)"
check "small body on GET (ignored)" 200 "GET /api/targets HTTP/1.1\r\n${H}Connection: close\r\nContent-Length: 5\r\n\r\nhello"
check "nothing sent (request deadline)" closed ""
check "half a request line (request deadline)" closed "GET /api/targ"
check "HEAD" 200 "HEAD / HTTP/1.0\r\n\r\n"
check "bare LF line ends" 200 "GET /api/targets HTTP/1.0\n\n"
note "$n requests, $bad answered wrongly"

# still healthy: answers, alive, and counted what it was sent
curl -sf "http://127.0.0.1:$port/api/stats" > "$OUT/stats.json" || fail "the server no longer answers"
kill -0 "$server" 2> /dev/null || fail "the server died"
grep -q '"server":{' "$OUT/stats.json" || fail "no server counters in /api/stats"
accepted=$(json_num "$OUT/stats.json" accepted)
[ "${accepted:-0}" -ge "$n" ] || fail "the server counted $accepted connections for $n requests"
[ $bad -eq 0 ] || fail "$bad of $n malformed requests got the wrong answer"
exit 0
