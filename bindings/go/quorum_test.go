package redilock_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	redilock "github.com/redilock/redilock/bindings/go"
)

// Quorum clients over the 5 independent masters of tests/harness/with-redis -n 5
// ($REDIS_URL_1..5; TestMain starts them for a plain `go test`). The first is also the server
// of the other tests, which no test here stops or pauses.

const quorumMasters = 5

// masterURLVariables names the environment variables of the masters' URLs.
func masterURLVariables() []string {
	variables := make([]string, quorumMasters)
	for i := range variables {
		variables[i] = "REDIS_URL_" + strconv.Itoa(i+1)
	}
	return variables
}

func masterURLs() []string {
	var urls []string
	for _, variable := range masterURLVariables() {
		urls = append(urls, os.Getenv(variable))
	}
	return urls
}

// newQuorumClient is a quorum client over urls, closed when the test ends.
func newQuorumClient(t testing.TB, urls []string, options ...redilock.Option) *redilock.Client {
	t.Helper()
	c, err := redilock.NewQuorum(urls, options...)
	return closedAtEnd(t, c, err)
}

// holders is how many of the masters at urls hold lock name.
func holders(t testing.TB, urls []string, name string) int {
	t.Helper()
	count := 0
	for _, url := range urls {
		if existsAt(t, url, name) {
			count++
		}
	}
	return count
}

// releasedEverywhere waits until no master holds name: Unlock returns once a quorum released
// it, and the other masters follow in the background.
func releasedEverywhere(t testing.TB, urls []string, name string) {
	t.Helper()
	waitUntil(t, "released on every master", func() bool { return holders(t, urls, name) == 0 })
}

// address is a redis:// URL's host:port, as the library names a master in its messages.
func address(url string) string {
	return strings.TrimPrefix(url, "redis://")
}

func TestQuorumLockIsHeldOnEveryMaster(t *testing.T) {
	urls := masterURLs()
	c := newQuorumClient(t, urls)
	ctx := context.Background()
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	name := lockName(t)
	const ttl = 10 * time.Second
	lock, err := c.Lock(ctx, name, ttl)
	if err != nil {
		t.Fatal(err)
	}
	if held := holders(t, urls, name); held != quorumMasters {
		t.Fatalf("held on %d masters, want %d", held, quorumMasters)
	}
	// The TTL less the time the masters took and the allowance for clock drift.
	if validity := lock.Validity(); validity >= ttl || validity < ttl-scaled(time.Second) {
		t.Fatalf("validity %v of a %v lock", validity, ttl)
	}
	if lock.Fence() == 0 {
		t.Fatal("no fence")
	}
	if err := lock.Extend(ctx, 2*ttl); err != nil {
		t.Fatal(err)
	}
	if left, err := lock.RemainingTTL(ctx); err != nil || left <= ttl {
		t.Fatalf("RemainingTTL after Extend(%v): %v, %v", 2*ttl, left, err)
	}
	mustUnlock(t, lock)
	releasedEverywhere(t, urls, name)
	if err := lock.Unlock(ctx); !errors.Is(err, redilock.ErrNotOwner) {
		t.Fatalf("second Unlock: %v", err)
	}
	next := mustLock(t, c, name)
	defer mustUnlock(t, next)
	if next.Fence() <= lock.Fence() {
		t.Fatalf("fence %d after %d", next.Fence(), lock.Fence())
	}
}

// A single-server lock has a validity too: its TTL less the round trip.
func TestValidityWithoutQuorum(t *testing.T) {
	lock, err := newClient(t).TryLock(context.Background(), lockName(t), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer mustUnlock(t, lock)
	if validity := lock.Validity(); validity > 10*time.Second || validity < 10*time.Second-scaled(time.Second) {
		t.Fatalf("validity %v of a 10s lock", validity)
	}
}

func TestNewQuorumRefusesInvalidArguments(t *testing.T) {
	urls := masterURLs()
	for _, bad := range []struct {
		what    string
		urls    []string
		options []redilock.Option
		says    string
	}{
		{"no masters", nil, nil, "at least 3 masters"},
		{"two masters", urls[:2], nil, "at least 3 masters"},
		{"a master twice", []string{urls[0], urls[1], urls[0]}, nil, "given twice"},
		{"a cluster as a master", append(urls[:2:2], "redis+cluster://127.0.0.1:7000"), nil, "one server"},
		{"a NUL in a URL", append(urls[:2:2], urls[2]+"\x00"), nil, "master URL 3 contains a NUL"},
		{"a quorum of half", urls, []redilock.Option{redilock.WithQuorum(2)}, "more than half"},
		{"a quorum above the masters", urls, []redilock.Option{redilock.WithQuorum(quorumMasters + 1)}, "at most all"},
		{"a negative quorum", urls, []redilock.Option{redilock.WithQuorum(-1)}, "must not be negative"},
		{"a negative node timeout", urls, []redilock.Option{redilock.WithNodeTimeout(-time.Millisecond)}, "node timeout"},
	} {
		c, err := redilock.NewQuorum(bad.urls, bad.options...)
		if c != nil || !errors.Is(err, redilock.ErrInvalidArgument) || !strings.Contains(err.Error(), bad.says) {
			t.Errorf("%s: client %v, error %v: want ErrInvalidArgument saying %q", bad.what, c, err, bad.says)
		}
	}
	// The quorum options are for NewQuorum: New takes and ignores them.
	if c, err := redilock.New(urls[0], redilock.WithQuorum(3), redilock.WithNodeTimeout(time.Second)); err != nil {
		t.Fatal(err)
	} else {
		c.Close()
	}
}

// With 3 of 5 masters out, no quorum can grant: ErrQuorumUnavailable (never ErrNotAcquired),
// naming each master, in about the node timeout, and nothing is left held.
func TestQuorumUnavailableWithThreeMastersOut(t *testing.T) {
	urls := masterURLs()
	// Only the node timeout can end a silent master's call within bound. Close flushes what
	// the failed call left to give back for up to the connect and command timeouts: short.
	bound := scaled(time.Second)
	options := []redilock.Option{redilock.WithNodeTimeout(100 * time.Millisecond),
		redilock.WithCommandTimeout(3 * bound), redilock.WithConnectTimeout(bound)}

	requireUnavailable := func(t *testing.T, c *redilock.Client, out []string) {
		t.Helper()
		name := lockName(t)
		start := time.Now()
		_, err := c.TryLock(context.Background(), name, 10*time.Second)
		if took := time.Since(start); took > bound {
			t.Errorf("TryLock took %v, more than %v", took, bound)
		}
		requireStatus(t, err, redilock.StatusQuorumUnavailable)
		if !errors.Is(err, redilock.ErrQuorumUnavailable) || errors.Is(err, redilock.ErrNotAcquired) {
			t.Fatalf("%v: want ErrQuorumUnavailable alone", err)
		}
		for _, url := range out {
			if !strings.Contains(err.Error(), address(url)) {
				t.Errorf("the message does not name master %s: %v", address(url), err)
			}
		}
		awaitGivenBack(t, urls[0], name)
		awaitGivenBack(t, urls[1], name)
	}

	t.Run("stopped", func(t *testing.T) {
		var servers []*redisServer
		var stopped []string
		for range 3 {
			server := ownRedis(t)
			server.stop()
			servers = append(servers, server)
			stopped = append(stopped, server.url)
		}
		c := newQuorumClient(t, append(urls[:2:2], stopped...), options...)
		requireUnavailable(t, c, stopped)
		for _, server := range servers { // before Close, which then flushes at once
			server.restart(t)
		}
	})

	t.Run("paused", func(t *testing.T) {
		c := newQuorumClient(t, urls, options...) // closed after the masters resume
		paused := urls[2:]
		pauseMs := strconv.FormatInt((2 * patience).Milliseconds(), 10)
		for _, url := range paused {
			if _, err := redisCommand(url, "CLIENT", "PAUSE", pauseMs, "WRITE"); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if _, err := redisCommand(url, "CLIENT", "UNPAUSE"); err != nil {
					t.Error(err)
				}
			})
		}
		requireUnavailable(t, c, paused)
	})
}

// Held on the masters by another client: ErrNotAcquired, and a waiter is woken by the release.
func TestQuorumLockHeldByAnotherClient(t *testing.T) {
	urls := masterURLs()
	// Nothing but a wake-up ends a wait as soon as the tests expect.
	holder := newQuorumClient(t, urls)
	other := newQuorumClient(t, urls, redilock.WithRetryInterval(3*patience))
	name := lockName(t)
	held := mustLock(t, holder, name)

	_, err := other.TryLock(context.Background(), name, 10*time.Second)
	if !errors.Is(err, redilock.ErrNotAcquired) || errors.Is(err, redilock.ErrQuorumUnavailable) {
		t.Fatalf("TryLock of a held lock: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := other.Lock(ctx, name, 10*time.Second); !errors.Is(err, redilock.ErrNotAcquired) ||
		!errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock until a deadline: %v", err)
	}

	waiter := lockInBackground(func() (*redilock.Lock, error) {
		return other.Lock(context.Background(), name, leakTTL)
	})
	for _, url := range urls {
		awaitWaiters(t, url, name, 1)
	}
	start := time.Now()
	mustUnlock(t, held)
	result := <-waiter
	if result.err != nil {
		t.Fatal(result.err)
	}
	defer mustUnlock(t, result.lock)
	if took := time.Since(start); took > scaled(2*time.Second) {
		t.Fatalf("the waiter took %v to get a released lock", took)
	}
	if result.lock.Fence() <= held.Fence() {
		t.Fatalf("fence %d after %d", result.lock.Fence(), held.Fence())
	}
}

// reconcile is work under a quorum lock, given up by a deferred Unlock however it returns.
func reconcile(ctx context.Context, c *redilock.Client, name string, work func() error) error {
	lock, err := c.Lock(ctx, name, 10*time.Second)
	if err != nil {
		return err
	}
	defer lock.Unlock(ctx)
	return work()
}

func TestQuorumLockWithDeferredUnlock(t *testing.T) {
	urls := masterURLs()
	c := newQuorumClient(t, urls)
	name := lockName(t)
	failed := errors.New("the work failed")
	err := reconcile(context.Background(), c, name, func() error {
		if held := holders(t, urls, name); held != quorumMasters {
			return fmt.Errorf("held on %d masters while working", held)
		}
		return failed
	})
	if !errors.Is(err, failed) {
		t.Fatal(err)
	}
	releasedEverywhere(t, urls, name)
	// WithLock too: renewed by a quorum, and unlocked on every master.
	err = c.WithLock(context.Background(), name, 10*time.Second, func(ctx context.Context) error {
		return ctx.Err()
	})
	if err != nil {
		t.Fatalf("WithLock: %v", err)
	}
	releasedEverywhere(t, urls, name)
}
