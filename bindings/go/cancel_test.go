package redilock_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	redilock "github.com/redilock/redilock/bindings/go"
)

// Bounds for the latency of a cancel, a deadline, a Close or a release wake-up: the aim is a
// few milliseconds, and the measured figures are logged. The median must stay under
// typicalLatency; the worst case, which scheduling stalls on a loaded machine stretch, under
// worstLatency. Both still tell a prompt end from a missed signal, which would leave the
// waiter until the holder's TTL (10 s), since waiters re-check only every slowRecheck.
var (
	typicalLatency = scaled(100 * time.Millisecond)
	worstLatency   = scaled(2 * time.Second)
)

const slowRecheck = time.Minute

// waiterOnHeldLock returns a client that waits only for wake-ups, and the name of a lock that
// another client holds until the test ends.
func waiterOnHeldLock(t *testing.T) (*redilock.Client, string) {
	holder, waiter := newClient(t), newClient(t, redilock.WithRetryInterval(slowRecheck))
	name := lockName(t)
	held := mustLock(t, holder, name)
	t.Cleanup(func() { mustUnlock(t, held) })
	return waiter, name
}

// requirePrompt logs the median and maximum of latencies and fails if either is too long.
func requirePrompt(t *testing.T, what string, latencies []time.Duration) {
	t.Helper()
	slices.Sort(latencies)
	median, worst := latencies[len(latencies)/2], latencies[len(latencies)-1]
	t.Logf("%s: median %v, max %v", what, median, worst)
	if median > typicalLatency || worst > worstLatency {
		t.Errorf("%s: median %v (bound %v), max %v (bound %v)", what, median, typicalLatency, worst, worstLatency)
	}
}

func TestCancelEndsTheWaitPromptly(t *testing.T) {
	var latencies []time.Duration
	for range 20 {
		waiter, name := waiterOnHeldLock(t)
		ctx, cancel := context.WithCancel(context.Background())
		result := lockInBackground(func() (*redilock.Lock, error) { return waiter.Lock(ctx, name, time.Second) })
		awaitWaiters(t, redisURL(), name, 1)
		cancelled := time.Now()
		cancel()
		got := <-result
		latencies = append(latencies, time.Since(cancelled))
		if got.lock != nil || !errors.Is(got.err, context.Canceled) || errors.Is(got.err, redilock.ErrNotAcquired) {
			t.Fatalf("Lock: %v, %v", got.lock, got.err)
		}
		requireStatus(t, got.err, redilock.StatusCancelled)
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
// either the waiter returns a lock it holds, or it returns the context's error and the lock
// is given back (each round's holder would find it taken otherwise).
func TestCancelRacingAcquisitionLeavesNoLock(t *testing.T) {
	holder, waiter := newClient(t), newClient(t)
	name := lockName(t)
	const rounds = 2000
	acquired, cancelled := 0, 0
	for round := range rounds {
		held, err := holder.TryLock(context.Background(), name, leakTTL)
		if err != nil {
			t.Fatalf("round %d: the holder's TryLock: %v (a lock was left behind?)", round, err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		result := lockInBackground(func() (*redilock.Lock, error) { return waiter.Lock(ctx, name, leakTTL) })
		mustUnlock(t, held)
		time.Sleep(time.Duration(round%20) * 100 * time.Microsecond) // spreads the cancels
		cancel()
		got := <-result
		switch {
		case got.err == nil:
			acquired++
			mustUnlock(t, got.lock)
		case errors.Is(got.err, context.Canceled):
			cancelled++
			// The library may finish giving back a lock taken meanwhile after Lock returned.
			awaitGivenBack(t, redisURL(), name)
		default:
			t.Fatalf("round %d: %v", round, got.err)
		}
	}
	t.Logf("%d rounds: %d acquired before the cancel, %d cancelled", rounds, acquired, cancelled)
	if acquired == 0 || cancelled == 0 {
		t.Error("the rounds did not cover both outcomes")
	}
}

func TestCancelDuringAttemptReleasesTheLock(t *testing.T) {
	c := patientClient(t, redisURL())
	name := lockName(t)
	ctx, cancel := context.WithCancel(context.Background())
	unpause := attemptInPause(t, redisURL(), func() (*redilock.Lock, error) { return c.Lock(ctx, name, leakTTL) })
	cancel()
	got := unpause()
	if got.lock != nil || !errors.Is(got.err, context.Canceled) {
		t.Fatalf("Lock: %v, %v", got.lock, got.err)
	}
	awaitGivenBack(t, redisURL(), name)
}
