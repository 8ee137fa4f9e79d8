// goprog - a Go program with a known call chain for the end-to-end tests.
//
// main.main -> main.goA -> main.goB -> main.goHot, kept out of line with
// //go:noinline.  With "leaf": main.main -> main.leafA -> main.leafB ->
// main.leafHot, where leafHot is a frameless leaf (no frame pointer saved),
// which only unwinding from .gopclntab gets right.
// Usage: goprog SECONDS [leaf]
package main

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

// goHot keeps a small array indexed at run time, which gives it a stack
// frame and so a saved frame pointer: frame-pointer unwinding loses the
// caller of a frameless leaf (unwinding from .gopclntab does not).
//
//go:noinline
func goHot(x float64) float64 {
	var acc [4]float64
	for i := 0; i < 200000; i++ {
		x = x*1.0000001 + 0.5/(x+1.0)
		acc[i&3] += x
	}
	return x + acc[int(x)&3]
}

//go:noinline
func goB(x float64) float64 { return goHot(x) + 1 }

// leafHot has no locals: Go gives it no frame and saves no frame pointer.
//
//go:noinline
func leafHot(x float64) float64 {
	for i := 0; i < 200000; i++ {
		x = x*1.0000001 + 0.5/(x+1.0)
	}
	return x
}

//go:noinline
func leafB(x float64) float64 { return leafHot(x) + 1 }

//go:noinline
func leafA(x float64) float64 { return leafB(x) + 1 }

//go:noinline
func goA(x float64) float64 { return goB(x) + 1 }

func main() {
	seconds := 5.0
	if len(os.Args) > 1 {
		if v, err := strconv.ParseFloat(os.Args[1], 64); err == nil {
			seconds = v
		}
	}
	leaf := len(os.Args) > 2 && os.Args[2] == "leaf"
	deadline := time.Now().Add(time.Duration(seconds * float64(time.Second)))
	acc := 1.0
	for time.Now().Before(deadline) {
		if leaf {
			acc = leafA(acc)
		} else {
			acc = goA(acc)
		}
	}
	fmt.Println(acc)
}
