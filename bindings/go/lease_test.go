package redilock_test

import (
	"context"
	"errors"
	"math"
	"regexp"
	"runtime"
	"strconv"
	"testing"
	"time"

	redilock "github.com/redilock/redilock/bindings/go"
)

// Bounds for what the library does in the background, generous for -race on a loaded machine.
var (
	renewedTTL = scaled(2 * time.Second)  // renewed every ~0.7 s: a starved renewer still makes it
	lossNotice = scaled(10 * time.Second) // the most a loss may take to be reported
	gcNotice   = scaled(10 * time.Second) // the most the backstop may take to unlock a lock

	// droppedTTL outlasts every wait for the backstop, and its first renewal comes later
	// still: a key that goes was unlocked, not expired, and no renewal is counted.
	droppedTTL = 4 * gcNotice
)

// scriptsRun counts the scripts the server at url ran since its statistics were reset: every
// lock attempt, release, extension and renewal is one.
func scriptsRun(t testing.TB, url string) int {
	t.Helper()
	info, err := redisCommand(url, "INFO", "commandstats")
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, match := range regexp.MustCompile(`cmdstat_(?:evalsha|eval):calls=(\d+)`).FindAllStringSubmatch(info, -1) {
		calls, _ := strconv.Atoi(match[1])
		total += calls
	}
	return total
}

func resetStats(t testing.TB, url string) {
	t.Helper()
	if _, err := redisCommand(url, "CONFIG", "RESETSTAT"); err != nil {
		t.Fatal(err)
	}
}

func pttl(t testing.TB, url, key string) time.Duration {
	t.Helper()
	reply, err := redisCommand(url, "PTTL", key)
	if err != nil {
		t.Fatal(err)
	}
	ms, _ := strconv.Atoi(reply)
	return time.Duration(ms) * time.Millisecond
}

// awaitLoss waits for lock's loss notice and returns how long it took.
func awaitLoss(t *testing.T, lock *redilock.Lock) time.Duration {
	t.Helper()
	start := time.Now()
	select {
	case <-lock.Lost():
		return time.Since(start)
	case <-time.After(lossNotice):
		t.Fatalf("no loss reported for %q within %v", lock.Name(), lossNotice)
		return 0
	}
}

func requireHeld(t *testing.T, lock *redilock.Lock) {
	t.Helper()
	select {
	case <-lock.Lost():
		t.Fatalf("%q was reported lost", lock.Name())
	default:
	}
}

// requireHandlesGivenBack checks that the library holds no renewal handle beyond the count
// before: each was dropped once it could no longer be needed.
func requireHandlesGivenBack(t *testing.T, before int64) {
	t.Helper()
	if after := redilock.RenewalHandles(); after != before {
		t.Errorf("the library holds %d renewal handles, want %d", after, before)
	}
}

// redisClockMicros is the time of the server at url in microseconds.
func redisClockMicros(t *testing.T, url string) uint64 {
	t.Helper()
	clock, err := redisList(url, "TIME")
	if err != nil || len(clock) != 2 {
		t.Fatalf("TIME: %v, %v", clock, err)
	}
	seconds, _ := strconv.ParseUint(clock[0], 10, 64)
	micros, _ := strconv.ParseUint(clock[1], 10, 64)
	return seconds*1_000_000 + micros
}

// Fences are never below the Redis clock in microseconds (about 1.8e15): a fresh name does
// not start at 1, and the number reaches Go whole.
func TestFencesIncreaseAcrossClients(t *testing.T) {
	clients := []*redilock.Client{newClient(t), newClient(t)}
	name := lockName(t)
	last := redisClockMicros(t, redisURL())
	for round := range 6 {
		lock := mustLock(t, clients[round%2], name)
		if lock.Fence() <= last {
			t.Fatalf("round %d: fence %d after %d", round, lock.Fence(), last)
		}
		last = lock.Fence()
		mustUnlock(t, lock)
	}
}

func TestExtendAndRemainingTTL(t *testing.T) {
	c, other := newClient(t), newClient(t)
	ctx := context.Background()
	name := lockName(t)

	lock := mustLock(t, c, name) // 10 s
	if lock.Lost() != nil {
		t.Error("a lock without AutoRenew has a loss channel")
	}
	if err := lock.Extend(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	if remaining := pttl(t, redisURL(), name); remaining <= 50*time.Second {
		t.Errorf("PTTL after Extend: %v", remaining)
	}
	if remaining, err := lock.RemainingTTL(ctx); err != nil || remaining <= 50*time.Second || remaining > time.Minute {
		t.Errorf("RemainingTTL: %v, %v", remaining, err)
	}

	// Expired: not re-created. Then taken by another owner: left alone.
	expired, err := c.TryLock(ctx, name+":short", 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the short lock expires", func() bool { return !keyExists(t, name+":short") })
	if err := expired.Extend(ctx, time.Minute); !errors.Is(err, redilock.ErrNotOwner) || keyExists(t, name+":short") {
		t.Errorf("Extend after expiry: %v; key re-created: %v", err, keyExists(t, name+":short"))
	}
	successor := mustLock(t, other, name+":short")
	if err := expired.Extend(ctx, time.Hour); !errors.Is(err, redilock.ErrNotOwner) {
		t.Errorf("Extend of a lock another owner holds: %v", err)
	}
	if _, err := expired.RemainingTTL(ctx); !errors.Is(err, redilock.ErrNotOwner) {
		t.Errorf("RemainingTTL of a lock another owner holds: %v", err)
	}
	if remaining := pttl(t, redisURL(), name+":short"); remaining > 10*time.Second {
		t.Errorf("the successor's TTL became %v", remaining)
	}
	mustUnlock(t, successor)

	mustUnlock(t, lock)
	if err := lock.Extend(ctx, time.Minute); !errors.Is(err, redilock.ErrNotOwner) {
		t.Errorf("Extend after Unlock: %v", err)
	}
	if _, err := lock.RemainingTTL(ctx); !errors.Is(err, redilock.ErrNotOwner) {
		t.Errorf("RemainingTTL after Unlock: %v", err)
	}
}

// Invalid TTLs and options are refused before anything reaches Redis: PEXPIRE 0 would delete
// the lock.
func TestInvalidLeaseArgumentsSendNothing(t *testing.T) {
	server := ownRedis(t)
	c := newClientAt(t, server.url)
	ctx := context.Background()
	lock, err := c.TryLock(ctx, "held", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	resetStats(t, server.url)
	for what, err := range map[string]error{
		"Extend(0)":        lock.Extend(ctx, 0),
		"Extend(-1s)":      lock.Extend(ctx, -time.Second),
		"Extend(-1ns)":     lock.Extend(ctx, -1),
		"TryLock(-1s)":     lockErr(c.TryLock(ctx, "other", -time.Second)),
		"MaxHold(-1s)":     lockErr(c.Lock(ctx, "other", time.Second, redilock.MaxHold(-time.Second))),
		"WithLock MaxHold": c.WithLock(ctx, "other", time.Second, func(context.Context) error { return nil }, redilock.MaxHold(-1)),
	} {
		if failure := requireStatus(t, err, redilock.StatusInvalidArgument); failure.Message == "" {
			t.Errorf("%s: no message", what)
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := lock.Extend(cancelled, time.Minute); !errors.Is(err, context.Canceled) {
		t.Errorf("Extend with a cancelled context: %v", err)
	}
	if _, err := lock.RemainingTTL(cancelled); !errors.Is(err, context.Canceled) {
		t.Errorf("RemainingTTL with a cancelled context: %v", err)
	}
	if sent := scriptsRun(t, server.url); sent != 0 {
		t.Errorf("%d scripts ran", sent)
	}
	if remaining := pttl(t, server.url, "held"); remaining <= 50*time.Minute {
		t.Errorf("PTTL %v: the lock's TTL changed", remaining)
	}
}

// A key without expiry, which only other software makes, has the largest Duration left.
func TestRemainingTTLOfAKeyWithoutExpiry(t *testing.T) {
	c := newClient(t)
	name := lockName(t)
	lock := mustLock(t, c, name)
	defer mustUnlock(t, lock)
	redisDo(t, "PERSIST", name)
	if remaining, err := lock.RemainingTTL(context.Background()); err != nil || remaining != math.MaxInt64 {
		t.Errorf("RemainingTTL: %v, %v; want the largest Duration", remaining, err)
	}
}

// MaxHold(0) is AutoRenew without a cap, as max_hold_ms 0 is in C.
func TestMaxHoldZeroIsNoCap(t *testing.T) {
	c := newClient(t)
	lock, err := c.TryLock(context.Background(), lockName(t), renewedTTL, redilock.MaxHold(0))
	if err != nil {
		t.Fatal(err)
	}
	if lock.Lost() == nil {
		t.Error("MaxHold(0) did not turn on AutoRenew")
	}
	requireHeld(t, lock)
	mustUnlock(t, lock)
}

func TestAutoRenewHoldsTheLockAndStopsAtUnlock(t *testing.T) {
	server := ownRedis(t)
	c, rival := newClientAt(t, server.url), newClientAt(t, server.url)
	ctx := context.Background()
	before := redilock.RenewalHandles()

	lock, err := c.TryLock(ctx, "long-job", renewedTTL, redilock.AutoRenew())
	if err != nil {
		t.Fatal(err)
	}
	for start := time.Now(); time.Since(start) < 2*renewedTTL; time.Sleep(50 * time.Millisecond) {
		if _, err := rival.TryLock(ctx, "long-job", time.Second); !errors.Is(err, redilock.ErrNotAcquired) {
			t.Fatalf("rival TryLock after %v: %v", time.Since(start), err)
		}
	}
	requireHeld(t, lock)
	if remaining, err := lock.RemainingTTL(ctx); err != nil || remaining <= 0 || remaining > renewedTTL {
		t.Errorf("RemainingTTL: %v, %v", remaining, err)
	}
	mustUnlock(t, lock)
	if exists, _ := redisCommand(server.url, "EXISTS", "long-job"); exists != "0" {
		t.Error("the key outlived Unlock")
	}
	requireHandlesGivenBack(t, before)

	resetStats(t, server.url)
	time.Sleep(renewedTTL) // three renewal intervals
	if sent := scriptsRun(t, server.url); sent != 0 {
		t.Errorf("%d scripts ran after Unlock", sent)
	}
	requireHeld(t, lock) // a released lock is not a lost one
	successor := mustLock(t, rival, "long-job")
	if successor.Fence() <= lock.Fence() {
		t.Errorf("fence %d after %d", successor.Fence(), lock.Fence())
	}
	mustUnlock(t, successor)
}

// Whichever way an acquisition fails, no renewal is left: neither in Go nor in Redis.
func TestFailedAcquisitionStartsNoRenewal(t *testing.T) {
	server := ownRedis(t)
	holder, c := newClientAt(t, server.url), newClientAt(t, server.url)
	before := redilock.RenewalHandles()
	held := mustLock(t, holder, "busy")
	const ttl = 3 * time.Second // a leaked renewal would run every ttl/3

	if _, err := c.TryLock(context.Background(), "busy", ttl, redilock.AutoRenew()); !errors.Is(err, redilock.ErrNotAcquired) {
		t.Errorf("TryLock: %v", err)
	}
	short, stop := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer stop()
	if _, err := c.Lock(short, "busy", ttl, redilock.AutoRenew()); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Lock past its deadline: %v", err)
	}
	awaitWaiters(t, server.url, "busy", 0)
	waiting, cancel := context.WithCancel(context.Background())
	result := lockInBackground(func() (*redilock.Lock, error) { return c.Lock(waiting, "busy", ttl, redilock.AutoRenew()) })
	awaitWaiters(t, server.url, "busy", 1)
	cancel()
	if got := <-result; !errors.Is(got.err, context.Canceled) {
		t.Errorf("cancelled Lock: %v", got.err)
	}
	// The attempt in flight takes the lock; the library gives it back as the cancel won.
	patient := patientClient(t, server.url)
	inFlight, cancel := context.WithCancel(context.Background())
	unpause := attemptInPause(t, server.url, func() (*redilock.Lock, error) {
		return patient.Lock(inFlight, "free", ttl, redilock.AutoRenew())
	})
	cancel()
	if got := unpause(); !errors.Is(got.err, context.Canceled) {
		t.Errorf("Lock cancelled during its attempt: %v", got.err)
	}
	awaitGivenBack(t, server.url, "free")
	requireHandlesGivenBack(t, before)

	resetStats(t, server.url)
	time.Sleep(ttl/3 + time.Second)
	if sent := scriptsRun(t, server.url); sent != 0 {
		t.Errorf("%d scripts ran: a renewal was started", sent)
	}
	mustUnlock(t, held)
}

func TestLossIsReportedAtOnce(t *testing.T) {
	c := newClient(t)
	ctx := context.Background()
	name := lockName(t)
	before := redilock.RenewalHandles()
	lock, err := c.TryLock(ctx, name, renewedTTL, redilock.AutoRenew())
	if err != nil {
		t.Fatal(err)
	}
	redisDo(t, "DEL", name)
	t.Logf("loss reported %v after the key was deleted", awaitLoss(t, lock))
	if err := lock.Unlock(ctx); !errors.Is(err, redilock.ErrNotOwner) {
		t.Errorf("Unlock after the loss: %v", err)
	}
	requireHandlesGivenBack(t, before) // dropped after the callback, which Unlock waits for
	if err := lock.Extend(ctx, time.Minute); !errors.Is(err, redilock.ErrNotOwner) || keyExists(t, name) {
		t.Errorf("Extend after the loss: %v", err)
	}
}

func TestMaxHoldCapsTheRenewal(t *testing.T) {
	c, rival := newClient(t), newClient(t)
	ctx := context.Background()
	name := lockName(t)
	maxHold := 3 * renewedTTL
	start := time.Now()
	lock, err := c.TryLock(ctx, name, renewedTTL, redilock.MaxHold(maxHold))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(renewedTTL + renewedTTL/2) // past the TTL, well before the cap
	if _, err := rival.TryLock(ctx, name, time.Second); !errors.Is(err, redilock.ErrNotAcquired) {
		t.Errorf("rival TryLock %v after the lock was taken: %v", time.Since(start), err)
	}
	awaitLoss(t, lock)
	held := time.Since(start)
	t.Logf("held %v with MaxHold %v", held, maxHold)
	if held < maxHold-50*time.Millisecond {
		t.Errorf("lost after %v, before the cap", held)
	}
	// The loss is told when the lease ends by the client's clock, which starts a lease when
	// the renewal is sent, a moment before Redis does: the key may outlive the notice by that.
	for deadline := time.Now().Add(scaled(500 * time.Millisecond)); keyExists(t, name); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("reported lost while the key still exists")
		}
	}
	if err := lock.Unlock(ctx); !errors.Is(err, redilock.ErrNotOwner) {
		t.Errorf("Unlock after the cap: %v", err)
	}
}

func TestWithLockRenewsAndCancelsOnLoss(t *testing.T) {
	c := newClient(t)
	ctx := context.Background()
	name := lockName(t)
	before := redilock.RenewalHandles()

	err := c.WithLock(ctx, name, renewedTTL, func(ctx context.Context) error {
		time.Sleep(2 * renewedTTL)
		if !keyExists(t, name) || ctx.Err() != nil {
			t.Errorf("past its TTL: key held %v, ctx %v (cause %v)", keyExists(t, name), ctx.Err(), context.Cause(ctx))
		}
		return nil
	})
	if err != nil || keyExists(t, name) {
		t.Errorf("WithLock: %v; key left: %v", err, keyExists(t, name))
	}

	// Taken over behind the holder's back.
	err = c.WithLock(ctx, name, renewedTTL, func(ctx context.Context) error {
		redisDo(t, "SET", name, "someone-else")
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(lossNotice):
			return errors.New("fn's context was not cancelled")
		}
	})
	if !errors.Is(err, redilock.ErrLost) || !errors.Is(err, redilock.ErrNotOwner) {
		t.Errorf("WithLock after a loss: %v", err)
	}
	if redisDo(t, "GET", name) != "someone-else" {
		t.Error("the late release deleted another owner's lock")
	}
	requireHandlesGivenBack(t, before)
}

func TestCloseEndsRenewals(t *testing.T) {
	c := newClient(t)
	ctx := context.Background()
	before := redilock.RenewalHandles()
	lock, err := c.TryLock(ctx, lockName(t), renewedTTL, redilock.AutoRenew())
	if err != nil {
		t.Fatal(err)
	}
	err = c.WithLock(ctx, lockName(t), renewedTTL, func(ctx context.Context) error {
		c.Close()
		<-ctx.Done()
		return context.Cause(ctx)
	})
	if !errors.Is(err, redilock.ErrLost) || !errors.Is(err, redilock.ErrClosed) {
		t.Errorf("WithLock with Close inside: %v", err)
	}
	awaitLoss(t, lock)
	if err := lock.Unlock(ctx); !errors.Is(err, redilock.ErrClosed) {
		t.Errorf("Unlock after Close: %v", err)
	}
	requireHandlesGivenBack(t, before)
}

// The library drops each renewal's handle once it can no longer need it, whichever way the
// renewal ends: Unlock, a loss, a lock call that fails, Close.
func TestRenewalHandlesAreGivenBack(t *testing.T) {
	c, rival := newClient(t), newClient(t)
	ctx := context.Background()
	before := redilock.RenewalHandles()
	renewMany := func(c *redilock.Client) []*redilock.Lock {
		var locks []*redilock.Lock
		for range 25 {
			lock, err := c.TryLock(ctx, lockName(t), renewedTTL, redilock.AutoRenew())
			if err != nil {
				t.Fatal(err)
			}
			locks = append(locks, lock)
		}
		if held := redilock.RenewalHandles() - before; held != int64(len(locks)) {
			t.Fatalf("the library holds %d renewal handles for %d renewed locks", held, len(locks))
		}
		return locks
	}

	for _, lock := range renewMany(c) {
		mustUnlock(t, lock)
	}
	requireHandlesGivenBack(t, before)

	lost := renewMany(c)
	for _, lock := range lost {
		redisDo(t, "DEL", lock.Name())
	}
	for _, lock := range lost {
		awaitLoss(t, lock)
	}
	waitUntil(t, "the lost locks' handles are dropped", func() bool { return redilock.RenewalHandles() == before })
	for _, lock := range lost {
		if err := lock.Unlock(ctx); !errors.Is(err, redilock.ErrNotOwner) {
			t.Errorf("Unlock after the loss: %v", err)
		}
	}
	requireHandlesGivenBack(t, before)

	name := lockName(t)
	defer mustUnlock(t, mustLock(t, rival, name))
	for range 25 {
		if _, err := c.TryLock(ctx, name, renewedTTL, redilock.AutoRenew()); !errors.Is(err, redilock.ErrNotAcquired) {
			t.Fatalf("TryLock of a held lock: %v", err)
		}
	}
	requireHandlesGivenBack(t, before)

	renewMany(c)
	c.Close()
	requireHandlesGivenBack(t, before)
}

// dropRenewedLock takes name with AutoRenew and drops the Lock without Unlock.
func dropRenewedLock(t *testing.T, c *redilock.Client, name string) {
	t.Helper()
	if _, err := c.TryLock(context.Background(), name, droppedTTL, redilock.AutoRenew()); err != nil {
		t.Fatal(err)
	}
}

// collectUntil runs the garbage collector until done, and fails the test after gcNotice.
func collectUntil(t *testing.T, what string, done func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !done() {
		if time.Since(start) > gcNotice {
			t.Fatalf("%s: not within %v", what, gcNotice)
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// collectBriefly gives any cleanup still queued time to run.
func collectBriefly() {
	for range 5 {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}

// An auto-renewed lock dropped without Unlock is unlocked by its cleanup instead of being
// renewed until Close; with droppedTTL, a rival that gets it shows an unlock, not an expiry.
func TestGCUnlocksADroppedRenewedLock(t *testing.T) {
	c, rival := newClient(t), newClient(t)
	name := lockName(t)
	before := redilock.RenewalHandles()
	dropRenewedLock(t, c, name)

	var successor *redilock.Lock
	waited := collectUntil(t, "the dropped lock was not unlocked", func() bool {
		lock, err := rival.TryLock(context.Background(), name, time.Second)
		if err != nil && !errors.Is(err, redilock.ErrNotAcquired) {
			t.Fatal(err)
		}
		successor = lock
		return err == nil
	})
	t.Logf("unlocked %v after it was dropped", waited)
	mustUnlock(t, successor)
	collectUntil(t, "the dropped lock's renewal handle was not given back", func() bool {
		return redilock.RenewalHandles() == before
	})
}

// Unlock cancels the backstop: the garbage collector sends no second unlock. The lock
// dropped after it, whose unlock the test waits for, shows that the collector has run.
func TestUnlockCancelsTheBackstop(t *testing.T) {
	server := ownRedis(t)
	c, rival := newClientAt(t, server.url), newClientAt(t, server.url)
	lock, err := c.TryLock(context.Background(), "job", droppedTTL, redilock.AutoRenew())
	if err != nil {
		t.Fatal(err)
	}
	mustUnlock(t, lock)
	successor := mustLock(t, rival, "job")
	dropRenewedLock(t, c, "dropped")

	resetStats(t, server.url)
	collectUntil(t, "the dropped lock was not unlocked", func() bool {
		return !existsAt(t, server.url, "dropped")
	})
	collectBriefly()
	if sent := scriptsRun(t, server.url); sent != 1 {
		t.Errorf("%d scripts ran, want 1: the dropped lock's unlock", sent)
	}
	if _, err := successor.RemainingTTL(context.Background()); err != nil {
		t.Errorf("the successor lost the lock: %v", err)
	}
	mustUnlock(t, successor)
}

// After Close the backstop does nothing: the client's handle is gone, and Close already ended
// the renewal. The lock is left to its TTL, as Close leaves every lock.
func TestBackstopAfterCloseDoesNothing(t *testing.T) {
	server := ownRedis(t)
	c, other := newClientAt(t, server.url), newClientAt(t, server.url)
	dropRenewedLock(t, c, "closed")
	c.Close()
	dropRenewedLock(t, other, "dropped")

	collectUntil(t, "the dropped lock was not unlocked", func() bool {
		return !existsAt(t, server.url, "dropped")
	})
	collectBriefly()
	if !existsAt(t, server.url, "closed") {
		t.Error("a lock of the closed client was unlocked")
	}
}
