// gohttp: a net/http server with two endpoints, for the span tests.
//
//	gohttp ADDR
//
// GET /light/{n} answers at once; GET /heavy/{n} first spins in
// heavyWork for about 20 ms of CPU.  Prints "listening ADDR" once ready.
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
)

var sink uint64

//go:noinline
func heavyWork() uint64 {
	x := uint64(88172645463325252)
	for i := 0; i < 6000000; i++ {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
	}
	return x
}

func main() {
	ln, err := net.Listen("tcp", os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	http.HandleFunc("/light/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "light", strings.TrimPrefix(r.URL.Path, "/light/"))
	})
	http.HandleFunc("/heavy/", func(w http.ResponseWriter, r *http.Request) {
		sink += heavyWork()
		fmt.Fprintln(w, "heavy", sink&1)
	})
	http.HandleFunc("/fail/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "failed", http.StatusInternalServerError)
	})
	fmt.Println("listening", ln.Addr())
	http.Serve(ln, nil)
}
