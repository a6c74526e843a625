// Command bench is the Go row of `make bench` (bench/compare.rs), with the protocol of the
// `uncontended` mode of bench/c_bench.c:
//
//	bench uncontended URL SECONDS
//	    TryLock + Unlock one name in a loop; prints "cycles_per_sec <float>".
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	redilock "github.com/redilock/redilock/bindings/go"
)

func main() {
	if len(os.Args) != 4 || os.Args[1] != "uncontended" {
		fmt.Fprintf(os.Stderr, "usage: %s uncontended URL SECONDS\n", os.Args[0])
		os.Exit(2)
	}
	seconds, err := strconv.ParseFloat(os.Args[3], 64)
	check("SECONDS", err)
	c, err := redilock.New(os.Args[2], redilock.WithDefaultTTL(10*time.Second))
	check("new", err)
	defer c.Close()

	ctx := context.Background()
	name := fmt.Sprintf("bench:uncontended:%d", os.Getpid())
	cycles := 0
	start := time.Now()
	end := start.Add(time.Duration(seconds * float64(time.Second)))
	now := start
	for now.Before(end) {
		lock, err := c.TryLock(ctx, name, 0)
		check("lock", err)
		check("unlock", lock.Unlock(ctx))
		cycles++
		now = time.Now()
	}
	fmt.Printf("cycles_per_sec %.1f\n", float64(cycles)/now.Sub(start).Seconds())
}

func check(what string, err error) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %s: %v\n", what, err)
		os.Exit(1)
	}
}
