package redilock_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	redilock "github.com/redilock/redilock/bindings/go"
)

func TestCloseWhileCallsAreInFlight(t *testing.T) {
	holder := newClient(t)
	c, err := redilock.New(redisURL())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	name := lockName(t)
	defer mustUnlock(t, mustLock(t, holder, name))
	kept := mustLock(t, c, lockName(t))

	const waiters, busy = 16, 16
	unexpected := make(chan error, waiters+busy)
	var wg sync.WaitGroup
	for range waiters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Lock(ctx, name, time.Second); !errors.Is(err, redilock.ErrClosed) {
				unexpected <- fmt.Errorf("waiting Lock: %w", err)
			}
		}()
	}
	for g := range busy {
		wg.Add(1)
		go func() {
			defer wg.Done()
			own := fmt.Sprintf("%s-%d", lockName(t), g)
			for {
				lock, err := c.TryLock(ctx, own, 2*time.Second)
				if err == nil {
					err = lock.Unlock(ctx)
				}
				if err == nil {
					err = c.Ping(ctx)
				}
				if err != nil {
					if !errors.Is(err, redilock.ErrClosed) {
						unexpected <- fmt.Errorf("busy goroutine: %w", err)
					}
					return
				}
			}
		}()
	}

	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	var closers sync.WaitGroup
	for range 3 {
		closers.Add(1)
		go func() {
			defer closers.Done()
			if err := c.Close(); err != nil {
				t.Error(err)
			}
		}()
	}
	closers.Wait()
	t.Logf("Close returned after %v", time.Since(start))
	wg.Wait()
	close(unexpected)
	for err := range unexpected {
		t.Error(err)
	}

	calls := map[string]error{
		"Lock":     lockErr(c.Lock(ctx, name, time.Second)),
		"TryLock":  lockErr(c.TryLock(ctx, name, time.Second)),
		"WithLock": c.WithLock(ctx, name, time.Second, func(context.Context) error { return nil }),
		"Ping":     c.Ping(ctx),
		"Unlock":   kept.Unlock(ctx),
		"Close":    errors.Join(c.Close(), redilock.ErrClosed),
	}
	for call, err := range calls {
		if !errors.Is(err, redilock.ErrClosed) {
			t.Errorf("%s after Close: %v", call, err)
		}
	}
}

func TestCloseDuringAttemptReleasesTheLock(t *testing.T) {
	c, err := redilock.New(redisURL())
	if err != nil {
		t.Fatal(err)
	}
	name := lockName(t)
	pausedAttempt(t, c, redisURL())
	time.AfterFunc(50*time.Millisecond, func() { c.Close() })
	if lock, err := c.Lock(context.Background(), name, 10*time.Second); lock != nil || err != redilock.ErrClosed {
		t.Fatalf("Lock: %v, %v", lock, err)
	}
	if keyExists(t, name) {
		t.Error("the lock taken by the attempt in flight was left behind")
	}
}

// A client dropped without Close is freed by its cleanup: its connection to Redis closes.
func TestCleanupFreesAnAbandonedClient(t *testing.T) {
	server := ownRedis(t)
	connected := func() int {
		info, err := redisCommand(server.url, "INFO", "clients")
		if err != nil {
			t.Fatal(err)
		}
		count, _ := strconv.Atoi(regexp.MustCompile(`connected_clients:(\d+)`).FindStringSubmatch(info)[1])
		return count
	}
	baseline := connected()
	const abandoned = 8
	for range abandoned {
		c, err := redilock.New(server.url)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Ping(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if got := connected(); got < baseline+abandoned {
		t.Fatalf("%d clients connected, want at least %d", got, baseline+abandoned)
	}
	for deadline := time.Now().Add(10 * time.Second); connected() > baseline; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d clients still connected, want %d", connected(), baseline)
		}
		runtime.GC()
	}
}
