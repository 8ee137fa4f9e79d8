// goprog - a Go program with a known call chain for the end-to-end tests.
//
// main.main -> main.goA -> main.goB -> main.goHot, kept out of line with
// //go:noinline.  Usage: goprog SECONDS
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

//go:noinline
func goA(x float64) float64 { return goB(x) + 1 }

func main() {
	seconds := 5.0
	if len(os.Args) > 1 {
		if v, err := strconv.ParseFloat(os.Args[1], 64); err == nil {
			seconds = v
		}
	}
	deadline := time.Now().Add(time.Duration(seconds * float64(time.Second)))
	acc := 1.0
	for time.Now().Before(deadline) {
		acc = goA(acc)
	}
	fmt.Println(acc)
}
