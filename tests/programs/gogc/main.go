// gogc: a Go program that keeps the runtime busy on its system stacks, for
// the unwinder's stack-switch crossing (tests/e2e/go_stacks.sh).
//
//	gogc SECONDS
//
// Goroutines allocate small and large objects (mallocgc, GC assists through
// runtime.systemstack), grow their stacks by deep recursion (morestack),
// park on channels (mcall), read the clock (the vDSO via nanotime1) and
// force collections, until SECONDS have passed.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"
)

var sink []byte
var mu sync.Mutex

//go:noinline
func allocSmall(n int) int {
	total := 0
	for i := 0; i < n; i++ {
		b := make([]byte, 64+i%512)
		total += len(b)
		m := map[int]string{i: strconv.Itoa(i)}
		total += len(m[i])
	}
	return total
}

//go:noinline
func allocLarge() int {
	b := make([]byte, 1<<20+4096) // large objects go straight to the heap
	mu.Lock()
	sink = b
	mu.Unlock()
	return len(b)
}

//go:noinline
func recurse(depth int, pad [256]byte) int {
	if depth == 0 {
		return int(pad[0]) + allocSmall(8)
	}
	pad[depth%256]++
	return recurse(depth-1, pad) + 1 // 100 frames of 256+ bytes grow the stack
}

func growStacks(done <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		select {
		case <-done:
			return
		default:
		}
		ch := make(chan int)
		go func() { ch <- recurse(100, [256]byte{}) }() // a fresh goroutine starts with a small stack
		<-ch
	}
}

func allocator(done <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	for i := 0; ; i++ {
		select {
		case <-done:
			return
		default:
		}
		allocSmall(200)
		if i%16 == 0 {
			allocLarge()
		}
	}
}

func pingPong(done <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	a, b := make(chan int), make(chan int)
	go func() {
		for v := range a {
			b <- v + 1
		}
		close(b)
	}()
	for v := 0; ; v++ {
		select {
		case <-done:
			close(a)
			for range b {
			}
			return
		default:
		}
		a <- v
		<-b
		_ = time.Now()
	}
}

func main() {
	secs := 10
	if len(os.Args) > 1 {
		if v, err := strconv.Atoi(os.Args[1]); err == nil {
			secs = v
		}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(4)
	go allocator(done, &wg)
	go allocator(done, &wg)
	go growStacks(done, &wg)
	go pingPong(done, &wg)
	deadline := time.Now().Add(time.Duration(secs) * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		runtime.GC()
	}
	close(done)
	wg.Wait()
	fmt.Println("gogc: done", len(sink))
}
