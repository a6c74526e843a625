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

	awaitWaiters(t, redisURL(), name, waiters)
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
		"Lock":         lockErr(c.Lock(ctx, name, time.Second)),
		"TryLock":      lockErr(c.TryLock(ctx, name, time.Second)),
		"WithLock":     c.WithLock(ctx, name, time.Second, func(context.Context) error { return nil }),
		"Ping":         c.Ping(ctx),
		"Extend":       kept.Extend(ctx, time.Minute),
		"RemainingTTL": errorOf(kept.RemainingTTL(ctx)),
		"Unlock":       kept.Unlock(ctx),
		"Close":        errors.Join(c.Close(), redilock.ErrClosed),
	}
	for call, err := range calls {
		if !errors.Is(err, redilock.ErrClosed) {
			t.Errorf("%s after Close: %v", call, err)
		}
	}
}

// errorOf is the error of a call that also returns a value.
func errorOf[T any](_ T, err error) error {
	return err
}

// Close ends a wait within milliseconds, with the library's CLOSED status, and gives back the
// waiter's place in the queue.
func TestCloseEndsAWaitPromptly(t *testing.T) {
	holder := newClient(t)
	var latencies []time.Duration
	for range 10 {
		c := newClient(t, redilock.WithRetryInterval(slowRecheck))
		name := lockName(t)
		held := mustLock(t, holder, name)
		result := lockInBackground(func() (*redilock.Lock, error) { return c.Lock(context.Background(), name, time.Second) })
		awaitWaiters(t, redisURL(), name, 1)
		closing := time.Now()
		go c.Close()
		got := <-result
		latencies = append(latencies, time.Since(closing))
		if got.lock != nil || !errors.Is(got.err, redilock.ErrClosed) || got.err == redilock.ErrClosed {
			t.Fatalf("Lock: %v, %v; want the library's CLOSED", got.lock, got.err)
		}
		requireStatus(t, got.err, redilock.StatusClosed)
		awaitWaiters(t, redisURL(), name, 0)
		mustUnlock(t, held)
	}
	requirePrompt(t, "Close to the waiter's return", latencies)
}

func TestClosedStatusMatchesErrClosed(t *testing.T) {
	closed := &redilock.Error{Status: redilock.StatusClosed, Message: "the client was closed"}
	if !errors.Is(closed, redilock.ErrClosed) || errors.Is(closed, redilock.ErrNotOwner) {
		t.Errorf("status %d: errors.Is(ErrClosed) %v, errors.Is(ErrNotOwner) %v", redilock.StatusClosed,
			errors.Is(closed, redilock.ErrClosed), errors.Is(closed, redilock.ErrNotOwner))
	}
	if errors.Is(&redilock.Error{Status: redilock.StatusCancelled}, redilock.ErrClosed) {
		t.Error("a cancellation matches ErrClosed")
	}
	if redilock.StatusClosed != 203 || redilock.StatusClosed.String() != "client closed" {
		t.Errorf("StatusClosed = %d, %q", redilock.StatusClosed, redilock.StatusClosed)
	}
}

// An attempt that Redis holds while Close runs takes the lock when Redis lets it run: the call
// still returns ErrClosed, and the library has given the lock back once Close returned (the
// call gives it back before it returns CLOSED, and the free flushes what is pending).
func TestCloseDuringAttemptReleasesTheLock(t *testing.T) {
	c := patientClient(t, redisURL())
	name := lockName(t)
	unpause := attemptInPause(t, redisURL(), func() (*redilock.Lock, error) {
		return c.Lock(context.Background(), name, leakTTL)
	})
	closed := make(chan struct{})
	go func() {
		c.Close()
		close(closed)
	}()
	waitUntil(t, "Close waits for the call in flight", func() bool { return redilock.CloseWaitsForCalls(c) })
	got := unpause()
	<-closed
	if got.lock != nil || !errors.Is(got.err, redilock.ErrClosed) {
		t.Fatalf("Lock: %v, %v", got.lock, got.err)
	}
	if keyExists(t, name) || len(queue(t, redisURL(), name)) != 0 {
		t.Errorf("after Close: the key exists %v, queue %q", keyExists(t, name), queue(t, redisURL(), name))
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
	// Kept reachable until counted: with GOGC=1 a collection could free them before that.
	clients := make([]*redilock.Client, abandoned)
	for i := range clients {
		c, err := redilock.New(server.url)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Ping(context.Background()); err != nil {
			t.Fatal(err)
		}
		clients[i] = c
	}
	if got := connected(); got < baseline+abandoned {
		t.Fatalf("%d clients connected, want at least %d", got, baseline+abandoned)
	}
	runtime.KeepAlive(clients)
	waitUntil(t, "the abandoned clients disconnect", func() bool {
		runtime.GC()
		return connected() <= baseline
	})
}
