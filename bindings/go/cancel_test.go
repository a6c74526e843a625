package redilock_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	redilock "github.com/redilock/redilock/bindings/go"
)

// The bound asserted for cancellation and deadline latency; the aim is under 20 ms, and the
// measured figures are logged. The margin is for -race on a loaded machine.
const promptly = 100 * time.Millisecond

// waiterOnHeldLock returns a client and the name of a lock that another client holds until
// the test ends.
func waiterOnHeldLock(t *testing.T) (*redilock.Client, string) {
	holder, waiter := newClient(t), newClient(t)
	name := lockName(t)
	held := mustLock(t, holder, name)
	t.Cleanup(func() { mustUnlock(t, held) })
	return waiter, name
}

// requirePrompt logs the median and maximum of latencies and fails if the maximum is too long.
func requirePrompt(t *testing.T, what string, latencies []time.Duration) {
	t.Helper()
	slices.Sort(latencies)
	worst := latencies[len(latencies)-1]
	t.Logf("%s: median %v, max %v", what, latencies[len(latencies)/2], worst)
	if worst > promptly {
		t.Errorf("%s took up to %v", what, worst)
	}
}

func TestCancelEndsTheWaitPromptly(t *testing.T) {
	waiter, name := waiterOnHeldLock(t)
	var latencies []time.Duration
	for range 20 {
		ctx, cancel := context.WithCancel(context.Background())
		cancelledAt := make(chan time.Time, 1)
		go func() {
			time.Sleep(30 * time.Millisecond)
			cancelledAt <- time.Now()
			cancel()
		}()
		lock, err := waiter.Lock(ctx, name, time.Second)
		returned := time.Now()
		if lock != nil || !errors.Is(err, context.Canceled) || errors.Is(err, redilock.ErrNotAcquired) {
			t.Fatalf("Lock: %v, %v", lock, err)
		}
		requireStatus(t, err, redilock.StatusCancelled)
		latencies = append(latencies, returned.Sub(<-cancelledAt))
	}
	requirePrompt(t, "cancel to return", latencies)
}

func TestDeadlineEndsTheWait(t *testing.T) {
	waiter, name := waiterOnHeldLock(t)
	var overshoots []time.Duration
	for range 10 {
		const timeout = 100 * time.Millisecond
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		start := time.Now()
		lock, err := waiter.Lock(ctx, name, time.Second)
		elapsed := time.Since(start)
		cancel()
		if lock != nil || !errors.Is(err, redilock.ErrNotAcquired) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Lock: %v, %v", lock, err)
		}
		requireStatus(t, err, redilock.StatusNotAcquired)
		if elapsed < timeout-5*time.Millisecond {
			t.Errorf("Lock gave up after %v, before the deadline", elapsed)
		}
		overshoots = append(overshoots, elapsed-timeout)
	}
	requirePrompt(t, "deadline to return", overshoots)
}

func TestContextAlreadyDone(t *testing.T) {
	c := newClient(t)
	name := lockName(t)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, stop := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer stop()

	for _, lockCall := range []func(context.Context, string, time.Duration, ...redilock.LockOption) (*redilock.Lock, error){c.Lock, c.TryLock} {
		if _, err := lockCall(cancelled, name, time.Second); !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled context: %v", err)
		}
		_, err := lockCall(expired, name, time.Second)
		if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, redilock.ErrNotAcquired) {
			t.Errorf("expired context: %v", err)
		}
	}
	if keyExists(t, name) {
		t.Error("a lock was taken with a context already done")
	}
}

// The cancel lands before, during and after the waiter's acquisition, in thousands of rounds:
// either the waiter returns a lock it holds, or it returns the context's error and no lock is
// left in Redis.
func TestCancelRacingAcquisitionLeavesNoLock(t *testing.T) {
	holder, waiter := newClient(t), newClient(t)
	name := lockName(t)
	const rounds = 2000
	acquired, cancelled := 0, 0
	type outcome struct {
		lock *redilock.Lock
		err  error
	}
	for round := range rounds {
		held := mustLock(t, holder, name)
		ctx, cancel := context.WithCancel(context.Background())
		result := make(chan outcome, 1)
		go func() {
			lock, err := waiter.Lock(ctx, name, 10*time.Second)
			result <- outcome{lock, err}
		}()
		mustUnlock(t, held)
		time.Sleep(time.Duration(round%10) * 100 * time.Microsecond)
		cancel()
		got := <-result
		switch {
		case got.err == nil:
			acquired++
			mustUnlock(t, got.lock)
		case errors.Is(got.err, context.Canceled):
			cancelled++
		default:
			t.Fatalf("round %d: %v", round, got.err)
		}
		if keyExists(t, name) {
			t.Fatalf("round %d: a lock was left behind (Lock returned %v)", round, got.err)
		}
	}
	t.Logf("%d rounds: %d acquired before the cancel, %d cancelled", rounds, acquired, cancelled)
	if acquired == 0 || cancelled == 0 {
		t.Error("the rounds did not cover both outcomes")
	}
}

// pausedAttempt makes the next lock attempt of c, a client on url, wait in Redis for about
// 300 ms (CLIENT PAUSE holds write commands), so a cancel or Close lands while the attempt is
// in flight.
func pausedAttempt(t *testing.T, c *redilock.Client, url string) {
	t.Helper()
	if err := c.Ping(context.Background()); err != nil { // connect before the pause
		t.Fatal(err)
	}
	if _, err := redisCommand(url, "CLIENT", "PAUSE", "300", "WRITE"); err != nil {
		t.Fatal(err)
	}
}

func TestCancelDuringAttemptReleasesTheLock(t *testing.T) {
	c := newClient(t)
	name := lockName(t)
	pausedAttempt(t, c, redisURL())
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	lock, err := c.Lock(ctx, name, 10*time.Second)
	elapsed := time.Since(start)
	if lock != nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("Lock: %v, %v", lock, err)
	}
	if elapsed < 200*time.Millisecond {
		t.Errorf("Lock returned after %v, before the paused attempt could finish", elapsed)
	}
	if keyExists(t, name) {
		t.Error("the lock taken by the attempt in flight was left behind")
	}
}
