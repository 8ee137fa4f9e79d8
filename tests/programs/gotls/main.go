// gotls: a Go HTTPS server and client for the TLS span tests
// (tests/e2e/spans_tls_go.sh).  HTTP/1.1 only (HTTP/2 is switched off on
// both sides: ember's parsers read HTTP/1.x).
//
//	gotls serve ADDR CERT KEY     /ok/N answers 200 "ok N", /fail/N 500,
//	                              /slow/N 200 "slow N" after N ms
//	gotls idle                    sleep until killed (a process of this file)
//	gotls client BASEURL N CONC   N requests over CONC keep-alive connections,
//	                              every 5th to /fail/; prints "200 A", "500 B"
//	                              and "bad C" (answers with a wrong body or
//	                              transport errors); exit 1 if C > 0
package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func serve(addr, cert, key string) {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "ok %s", strings.TrimPrefix(r.URL.Path, "/ok/"))
	})
	mux.HandleFunc("/fail/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "failed", http.StatusInternalServerError)
	})
	mux.HandleFunc("/slow/", func(w http.ResponseWriter, r *http.Request) {
		n := strings.TrimPrefix(r.URL.Path, "/slow/")
		ms, _ := strconv.Atoi(n)
		time.Sleep(time.Duration(ms) * time.Millisecond)
		fmt.Fprintf(w, "slow %s", n)
	})
	srv := &http.Server{Addr: addr, Handler: mux,
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){}}
	fmt.Println("listening", addr)
	if err := srv.ListenAndServeTLS(cert, key); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func client(base string, n, conc int) {
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: true},
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{},
		MaxIdleConnsPerHost: conc,
	}
	c := &http.Client{Transport: tr}
	var next, ok, failed, bad int64
	var wg sync.WaitGroup
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := atomic.AddInt64(&next, 1)
				if i > int64(n) {
					return
				}
				path, want, wantBody := "/ok/"+strconv.FormatInt(i, 10), 200, "ok "+strconv.FormatInt(i, 10)
				if i%5 == 0 {
					path, want, wantBody = "/fail/"+strconv.FormatInt(i, 10), 500, "failed\n"
				}
				resp, err := c.Get(base + path)
				if err != nil {
					atomic.AddInt64(&bad, 1)
					continue
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch {
				case err != nil || resp.StatusCode != want || string(body) != wantBody:
					atomic.AddInt64(&bad, 1)
				case want == 200:
					atomic.AddInt64(&ok, 1)
				default:
					atomic.AddInt64(&failed, 1)
				}
			}
		}()
	}
	wg.Wait()
	fmt.Printf("200 %d\n500 %d\nbad %d\n", ok, failed, bad)
	if bad > 0 {
		os.Exit(1)
	}
}

func main() {
	if len(os.Args) == 5 && os.Args[1] == "serve" {
		serve(os.Args[2], os.Args[3], os.Args[4])
		return
	}
	if len(os.Args) == 2 && os.Args[1] == "idle" {
		select {}
	}
	if len(os.Args) == 5 && os.Args[1] == "client" {
		n, err1 := strconv.Atoi(os.Args[3])
		conc, err2 := strconv.Atoi(os.Args[4])
		if err1 == nil && err2 == nil && n > 0 && conc > 0 {
			client(os.Args[2], n, conc)
			return
		}
	}
	fmt.Fprintln(os.Stderr, "usage: gotls serve ADDR CERT KEY | gotls client BASEURL N CONC | gotls idle")
	os.Exit(2)
}
