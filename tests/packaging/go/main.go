// Command redilock-consumer locks and unlocks one name on the Redis at $REDIS_URL: the
// smallest program that links the Go binding and calls through it.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	redilock "github.com/redilock/redilock/bindings/go"
)

func main() {
	if err := lockAndUnlock(os.Getenv("REDIS_URL")); err != nil {
		fmt.Fprintln(os.Stderr, "redilock-consumer:", err)
		os.Exit(1)
	}
}

func lockAndUnlock(url string) error {
	c, err := redilock.New(url)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lock, err := c.Lock(ctx, fmt.Sprintf("redilock-consumer:%d", os.Getpid()), 10*time.Second)
	if err != nil {
		return err
	}
	if err := lock.Unlock(ctx); err != nil {
		return err
	}
	fmt.Printf("redilock-consumer: locked and unlocked %s (redilock %s, fence %d)\n", lock.Name(), redilock.Version(), lock.Fence())
	return nil
}
