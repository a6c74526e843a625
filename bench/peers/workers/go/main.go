// Command go-worker runs the Go contenders of `make bench-peers`, libredilock's Go binding and
// redsync (over go-redis), with the worker protocol of bench/peers/workers/lockbench.py:
//
//	go-worker redilock|redsync uncontended URL SECONDS
//	go-worker redilock|redsync contend URL SECONDS HOLD_MS PAUSE_MS
//	go-worker redilock|redsync fanin URL SECONDS GOROUTINES
//	go-worker redilock|redsync waiters URL SECONDS WAITERS
//
// For redsync, URL may be several URLs separated by spaces: independent masters of a quorum.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

const ttl = 10 * time.Second

// A client of one lock library: TryLock makes one attempt (the lock is free in the cycles),
// Lock waits the library's default way until it holds the lock.
type client interface {
	TryLock(name string) (held, error)
	Lock(name string) (held, error)
}

type held interface{ Unlock() error }

var libraries = map[string]func(url string) (client, error){
	"redilock": newRedilock,
	"redsync":  newRedsync,
}

var arities = map[string]int{"uncontended": 0, "contend": 2, "fanin": 1, "waiters": 1}

func main() {
	newClient, known := libraries[arg(1)]
	arity, scenario := arities[arg(2)]
	if !known || !scenario || len(os.Args) != 5+arity {
		fail("usage", errors.New("go-worker redilock|redsync uncontended|contend|fanin|waiters URL SECONDS [ARGS...]"))
	}
	url, duration := os.Args[3], time.Duration(number(4)*float64(time.Second))
	connect := func() client {
		c, err := newClient(url)
		check("new", err)
		return c
	}
	switch os.Args[2] {
	case "uncontended":
		start := time.Now()
		count := cycles(connect(), fmt.Sprintf("bench:go:%d", os.Getpid()), duration)
		fmt.Printf("cycles_per_sec %.1f\n", float64(count)/time.Since(start).Seconds())
	case "contend":
		contend(connect(), duration, number(5), number(6))
	case "fanin":
		fanin(connect(), duration, int(number(5)))
	case "waiters":
		waiters(connect, duration, int(number(5)))
	}
}

func arg(i int) string {
	if i < len(os.Args) {
		return os.Args[i]
	}
	return ""
}

func number(i int) float64 {
	v, err := strconv.ParseFloat(os.Args[i], 64)
	check("argument", err)
	return v
}

func check(what string, err error) {
	if err != nil {
		fail(what, err)
	}
}

func fail(what string, err error) {
	fmt.Fprintf(os.Stderr, "go-worker: %s: %v\n", what, err)
	os.Exit(1)
}

// monotonicNs reads CLOCK_MONOTONIC, the clock of every worker of the contended scenario.
func monotonicNs() int64 {
	var ts syscall.Timespec
	const clockMonotonic = 1
	if _, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockMonotonic, uintptr(unsafe.Pointer(&ts)), 0); errno != 0 {
		fail("clock_gettime", errno)
	}
	return ts.Nano()
}

// cycle takes the free lock `name` with one attempt and releases it.
func cycle(c client, name string) {
	lock, err := c.TryLock(name)
	check("lock", err)
	check("unlock", lock.Unlock())
}

func cycles(c client, name string, duration time.Duration) int {
	count := 0
	for end := time.Now().Add(duration); time.Now().Before(end); count++ {
		cycle(c, name)
	}
	return count
}

func contend(c client, duration time.Duration, holdMs, pauseMs float64) {
	hold, pause := time.Duration(holdMs*1e6), time.Duration(pauseMs*1e6)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for end := time.Now().Add(duration); time.Now().Before(end); {
		asked := monotonicNs()
		lock, err := c.Lock("bench:contended")
		check("lock", err)
		acquired := monotonicNs()
		time.Sleep(hold)
		released := monotonicNs()
		check("unlock", lock.Unlock())
		fmt.Fprintf(out, "cs %d %d %d\n", asked, acquired, released)
		time.Sleep(pause)
	}
}

func fanin(c client, duration time.Duration, goroutines int) {
	counts := make([]int, goroutines)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range counts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			counts[i] = cycles(c, fmt.Sprintf("bench:go:%d:%d", os.Getpid(), i), duration)
		}()
	}
	wg.Wait()
	total := 0
	for _, n := range counts {
		total += n
	}
	fmt.Printf("cycles_per_sec %.1f\n", float64(total)/time.Since(start).Seconds())
}

// waiters: a holder takes one name and prints "held"; after a line on stdin, `count` waiters
// with a client each (connected beforehand) wait while it is held for `duration`, then each
// takes it once.
func waiters(connect func() client, duration time.Duration, count int) {
	const name = "bench:held"
	holder := connect()
	clients := make([]client, count)
	for i := range clients {
		clients[i] = connect()
		cycle(clients[i], fmt.Sprintf("bench:go:warm:%d", i))
	}
	lock, err := holder.Lock(name)
	check("hold", err)
	fmt.Println("held")
	_, err = bufio.NewReader(os.Stdin).ReadString('\n')
	check("stdin", err)
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lock, err := c.Lock(name)
			check("lock", err)
			check("unlock", lock.Unlock())
		}()
	}
	time.Sleep(duration)
	check("release", lock.Unlock())
	wg.Wait()
	fmt.Printf("acquisitions %d\n", count)
}
