package redilock_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	redilock "github.com/redilock/redilock/bindings/go"
)

func TestVersionAndStatusText(t *testing.T) {
	if !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(redilock.Version()) {
		t.Errorf("Version() = %q", redilock.Version())
	}
	if redilock.StatusOK.String() != "ok" || !strings.Contains(redilock.StatusNotOwner.String(), "owner") {
		t.Errorf("status text: %q, %q", redilock.StatusOK, redilock.StatusNotOwner)
	}
}

// The cgo preamble refuses a redilock.h of another ABI version at compile time, on either
// link: the package is built against a copy of the module's header that says 0.3.
func TestBuildRefusesAnotherHeaderVersion(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	header, err := os.ReadFile(filepath.Join("internal", "clib", "redilock.h"))
	if err != nil {
		t.Fatal(err)
	}
	const ours = "#define REDILOCK_VERSION_MINOR 2\n"
	if bytes.Count(header, []byte(ours)) != 1 {
		t.Fatalf("redilock.h does not define the minor version as %q", ours)
	}
	other := t.TempDir()
	writeFile(t, filepath.Join(other, "redilock.h"), bytes.Replace(header, []byte(ours), []byte("#define REDILOCK_VERSION_MINOR 3\n"), 1))
	writeFile(t, filepath.Join(other, "redilock.pc"), []byte("Name: redilock\nDescription: a header of another version\n"+
		"Version: 0.3.0\nCflags: -I"+other+"\nLibs: -lredilock\n"))

	for _, tags := range []string{"", "redilock_system"} {
		build := exec.Command(goTool, "build", "-tags", tags, "-o", os.DevNull, ".")
		// CGO_CFLAGS come before the #cgo CFLAGS and pkg-config's, so the 0.3 header is found
		// first. The build cache does not track headers outside the package: the flag naming
		// this directory also keeps it from reusing a build.
		build.Env = append(os.Environ(), "PKG_CONFIG_PATH="+other, "CGO_CFLAGS=-O2 -g -I"+other, "GOGC=100", "GOFLAGS=")
		output, err := build.CombinedOutput()
		if err == nil || !strings.Contains(string(output), "written for the redilock 0.2 ABI") {
			t.Errorf("go build -tags %q against a 0.3 header: %v\n%s", tags, err, output)
		}
	}
}

func writeFile(t *testing.T, path string, content []byte) {
	t.Helper()
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLockUnlockAndOwnership(t *testing.T) {
	c := newClient(t)
	ctx := context.Background()
	name := lockName(t)

	lock := mustLock(t, c, name)
	if len(lock.Token()) != 32 || lock.Name() != name {
		t.Errorf("token %q, name %q", lock.Token(), lock.Name())
	}
	if got := redisDo(t, "GET", name); got != lock.Token() {
		t.Errorf("Redis holds %q, want the token %q", got, lock.Token())
	}
	other, err := c.TryLock(ctx, name, time.Second)
	if other != nil || !errors.Is(err, redilock.ErrNotAcquired) {
		t.Fatalf("second TryLock: %v, %v", other, err)
	}
	failure := requireStatus(t, err, redilock.StatusNotAcquired)
	if !strings.Contains(failure.Message, "is held by another owner") || !strings.Contains(err.Error(), name) {
		t.Errorf("message %q", err)
	}
	if errors.Is(err, redilock.ErrNotOwner) || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("%v matches the wrong sentinels", err)
	}

	mustUnlock(t, lock)
	if err := lock.Unlock(ctx); !errors.Is(err, redilock.ErrNotOwner) {
		t.Errorf("second Unlock: %v", err)
	}
	var never *redilock.Lock
	if err := never.Unlock(ctx); !errors.Is(err, redilock.ErrNotOwner) {
		t.Errorf("Unlock on nil: %v", err)
	}

	for _, odd := range []string{"a:b", "{braces}", "with space", "ünicode-锁"} {
		mustUnlock(t, mustLock(t, c, odd+name))
	}
}

func TestExpiredLockIsNotOwned(t *testing.T) {
	c, other := newClient(t), newClient(t)
	ctx := context.Background()
	name := lockName(t)
	lock, err := c.TryLock(ctx, name, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the lock expires", func() bool { return !keyExists(t, name) })
	successor := mustLock(t, other, name)
	if err := lock.Unlock(ctx); !errors.Is(err, redilock.ErrNotOwner) {
		t.Errorf("Unlock after expiry: %v", err)
	}
	mustUnlock(t, successor) // the late Unlock deleted nothing
}

func TestInvalidArguments(t *testing.T) {
	c := newClient(t)
	ctx := context.Background()
	for _, call := range []struct {
		what string
		err  error
	}{
		{"empty name", lockErr(c.TryLock(ctx, "", time.Second))},
		{"NUL in name", lockErr(c.Lock(ctx, "a\x00b", time.Second))},
		{"negative TTL", lockErr(c.TryLock(ctx, "n", -time.Second))},
		{"no TTL and no default", lockErr(c.TryLock(ctx, "n", 0))},
		{"bad URL", clientErr(redilock.New("http://nope"))},
		{"NUL in URL", clientErr(redilock.New("redis://host\x00"))},
		{"zero retry interval", clientErr(redilock.New(redisURL(), redilock.WithRetryInterval(0)))},
		{"negative connect timeout", clientErr(redilock.New(redisURL(), redilock.WithConnectTimeout(-1)))},
		{"zero command timeout", clientErr(redilock.New(redisURL(), redilock.WithCommandTimeout(0)))},
		{"negative default TTL", clientErr(redilock.New(redisURL(), redilock.WithDefaultTTL(-1)))},
		{"NUL in key prefix", clientErr(redilock.New(redisURL(), redilock.WithKeyPrefix("a\x00")))},
	} {
		var failure *redilock.Error
		if !errors.As(call.err, &failure) || failure.Status != redilock.StatusInvalidArgument || failure.Message == "" {
			t.Errorf("%s: %v", call.what, call.err)
		}
	}
	if err := clientErr(redilock.New("redis://u:hunter2@[::bad")); strings.Contains(err.Error(), "hunter2") {
		t.Errorf("the password leaked into %q", err)
	}
}

// Go checks no range: it passes durations on as whole milliseconds, and the library refuses an
// invalid one with StatusInvalidArgument and its own message, which the error carries as it
// is. A negative duration shorter than a millisecond stays negative: it never becomes 0, which
// would mean the default TTL.
func TestNegativeDurationsAreRefusedByTheLibrary(t *testing.T) {
	c := newClient(t, redilock.WithDefaultTTL(time.Minute))
	ctx := context.Background()
	name := lockName(t)
	held, err := c.TryLock(ctx, name+":held", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	defer mustUnlock(t, held)
	handles := redilock.RenewalHandles()
	withOption := func(option redilock.Option) error { return clientErr(redilock.New(redisURL(), option)) }
	nothing := func(context.Context) error { return nil }
	for _, call := range []struct {
		what, message string
		err           error
	}{
		{"TryLock(-1s)", "the TTL must not be negative, not -1000 ms", lockErr(c.TryLock(ctx, name, -time.Second))},
		{"Lock(-1ns)", "the TTL must not be negative, not -1 ms", lockErr(c.Lock(ctx, name, -1))},
		{"WithLock(-1.5ms)", "the TTL must not be negative, not -2 ms", c.WithLock(ctx, name, -1500*time.Microsecond, nothing)},
		{"MaxHold(-1s)", "the maximum hold time must not be negative, not -1000 ms",
			lockErr(c.TryLock(ctx, name, time.Second, redilock.MaxHold(-time.Second)))},
		{"Extend(-1s)", "the TTL must not be negative, not -1000 ms", held.Extend(ctx, -time.Second)},
		{"Extend(0)", "the TTL must be greater than 0 ms", held.Extend(ctx, 0)},
		{"WithDefaultTTL(-1s)", "the TTL must not be negative, not -1000 ms", withOption(redilock.WithDefaultTTL(-time.Second))},
		{"WithRetryInterval(-1s)", "the retry interval must not be negative, not -1000 ms", withOption(redilock.WithRetryInterval(-time.Second))},
		{"WithRetryInterval(0)", "the retry interval must be greater than 0 ms", withOption(redilock.WithRetryInterval(0))},
		{"WithConnectTimeout(-1s)", "the connect timeout must not be negative, not -1000 ms", withOption(redilock.WithConnectTimeout(-time.Second))},
		{"WithCommandTimeout(-1ns)", "the command timeout must not be negative, not -1 ms", withOption(redilock.WithCommandTimeout(-1))},
	} {
		var failure *redilock.Error
		if !errors.As(call.err, &failure) || failure.Status != redilock.StatusInvalidArgument ||
			failure.Message != call.message || call.err.Error() != "redilock: "+call.message {
			t.Errorf("%s: %v; want StatusInvalidArgument and the library's %q", call.what, call.err, call.message)
		}
	}
	if keyExists(t, name) {
		t.Error("a lock was taken")
	}
	if after := redilock.RenewalHandles(); after != handles { // refused calls drop their renewal too
		t.Errorf("the library holds %d renewal handles, want %d", after, handles)
	}
	if remaining := pttl(t, redisURL(), name+":held"); remaining <= 50*time.Minute {
		t.Errorf("PTTL %v: the held lock's TTL changed", remaining)
	}
}

// Durations become whole milliseconds rounded away from zero, so that neither a positive nor a
// negative one becomes 0; every Duration fits in the int64 the library takes.
func TestDurationsBecomeWholeMilliseconds(t *testing.T) {
	for _, c := range []struct {
		d  time.Duration
		ms int64
	}{
		{0, 0}, {1, 1}, {time.Millisecond, 1}, {time.Millisecond + 1, 2}, {1500 * time.Microsecond, 2},
		{time.Minute, 60000}, {-1, -1}, {-time.Millisecond, -1}, {-time.Millisecond - 1, -2},
		{math.MaxInt64, 9223372036855}, {math.MinInt64, -9223372036855},
	} {
		if got := redilock.Millis(c.d); got != c.ms {
			t.Errorf("Millis(%d ns) = %d, want %d", int64(c.d), got, c.ms)
		}
	}
}

func lockErr(lock *redilock.Lock, err error) error {
	if lock != nil {
		lock.Unlock(context.Background())
		return errors.New("got a lock")
	}
	return err
}

func clientErr(c *redilock.Client, err error) error {
	if c != nil {
		c.Close()
		return errors.New("got a client")
	}
	return err
}

func TestOptions(t *testing.T) {
	prefixed := newClient(t, redilock.WithKeyPrefix("app:"), redilock.WithDefaultTTL(3*time.Second),
		redilock.WithRetryInterval(20*time.Millisecond), redilock.WithConnectTimeout(500*time.Millisecond),
		redilock.WithCommandTimeout(500*time.Millisecond))
	plain := newClient(t)
	ctx := context.Background()
	name := lockName(t)

	lock, err := prefixed.TryLock(ctx, name, 0) // the default TTL
	if err != nil {
		t.Fatal(err)
	}
	ttl, _ := strconv.Atoi(redisDo(t, "PTTL", "app:"+name))
	if ttl <= 1000 || ttl > 3000 {
		t.Errorf("PTTL of app:%s = %d ms, want about 3000", name, ttl)
	}
	if _, err := plain.TryLock(ctx, "app:"+name, time.Second); !errors.Is(err, redilock.ErrNotAcquired) {
		t.Errorf("the prefixed key is not held: %v", err)
	}
	mustUnlock(t, mustLock(t, plain, name))
	mustUnlock(t, lock)
}

func TestPing(t *testing.T) {
	c := newClient(t)
	if err := c.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Ping(cancelled); !errors.Is(err, context.Canceled) {
		t.Errorf("Ping with a cancelled context: %v", err)
	}
}

func TestUnreachableServer(t *testing.T) {
	// Port 1 on loopback: nothing listens there.
	c, err := redilock.New("redis://127.0.0.1:1", redilock.WithConnectTimeout(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	start := time.Now()
	_, err = c.Lock(ctx, "n", time.Second)
	if !errors.Is(err, redilock.ErrConnection) || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("Lock: %v", err)
	}
	if elapsed := time.Since(start); elapsed > scaled(2*time.Second) {
		t.Errorf("Lock took %v", elapsed)
	}
	if _, err := c.TryLock(ctx, "n", time.Second); !errors.Is(err, redilock.ErrConnection) {
		t.Errorf("TryLock: %v", err)
	}
	if err := c.Ping(ctx); !errors.Is(err, redilock.ErrConnection) {
		t.Errorf("Ping: %v", err)
	}
}

func TestRedisErrorReply(t *testing.T) {
	// A user who may only PING: the lock script is refused with NOPERM.
	user := strings.ReplaceAll(lockName(t), ":", "-")
	redisDo(t, "ACL", "SETUSER", user, "on", ">secret", "+ping", "~*")
	t.Cleanup(func() { redisDo(t, "ACL", "DELUSER", user) })
	c, err := redilock.New(strings.Replace(redisURL(), "redis://", "redis://"+user+":secret@", 1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	_, err = c.TryLock(ctx, lockName(t), time.Second)
	if !errors.Is(err, redilock.ErrRedis) || !strings.Contains(err.Error(), "NOPERM") {
		t.Errorf("TryLock: %v", err)
	}
}

func TestReconnectsAfterRestart(t *testing.T) {
	server := ownRedis(t)
	c, err := redilock.New(server.url, redilock.WithConnectTimeout(200*time.Millisecond),
		redilock.WithCommandTimeout(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	mustUnlock(t, mustLock(t, c, "restart"))

	server.stop()
	if _, err := c.TryLock(ctx, "restart", time.Second); !errors.Is(err, redilock.ErrConnection) {
		t.Fatalf("TryLock with Redis down: %v", err)
	}
	server.restart(t)
	waitUntil(t, "the client reconnects after the restart", func() bool {
		lock, err := c.TryLock(ctx, "restart", time.Second)
		if err == nil {
			mustUnlock(t, lock)
		}
		return err == nil
	})
}

// The error message must be the one of the call that failed, even with goroutines moving
// between OS threads and other calls failing on the same threads.
func TestErrorMessagesStayWithTheirCall(t *testing.T) {
	c := newClient(t)
	ctx := context.Background()
	const goroutines = 32
	var wg sync.WaitGroup
	for g := range goroutines {
		name := fmt.Sprintf("%s-%d", lockName(t), g)
		held := mustLock(t, c, name)
		defer mustUnlock(t, held)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				_, err := c.TryLock(ctx, name, time.Second)
				if !errors.Is(err, redilock.ErrNotAcquired) || !strings.Contains(err.Error(), "'"+name+"'") {
					t.Errorf("TryLock(%q): %v", name, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestWaiterIsWokenByRelease(t *testing.T) {
	// A retry interval far beyond the test: only the release message can wake the waiter.
	holder, waiter := newClient(t), newClient(t, redilock.WithRetryInterval(slowRecheck))
	name := lockName(t)
	held := mustLock(t, holder, name)
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()

	result := lockInBackground(func() (*redilock.Lock, error) { return waiter.Lock(ctx, name, time.Second) })
	awaitWaiters(t, redisURL(), name, 1)
	releasing := time.Now()
	mustUnlock(t, held)
	got := <-result
	if got.err != nil {
		t.Fatal(got.err)
	}
	wake := time.Since(releasing)
	t.Logf("woken %v after the release", wake)
	if wake > worstLatency {
		t.Errorf("woken %v after the release", wake)
	}
	mustUnlock(t, got.lock)
}

// Waiters whose retry interval (60 s) is far beyond the test queue in Redis and are handed
// the lock in turn, each within milliseconds of the previous holder's Unlock: the hand-over
// wakes them, not a re-check. A queue entry is the waiter's token followed by its TTL in ms.
func TestWaitersAreHandedTheLockInTurn(t *testing.T) {
	holder := newClient(t)
	name := lockName(t)
	previous := mustLock(t, holder, name)
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	const waiters, waiterTTL = 3, 7 * time.Second
	var results []<-chan lockResult
	for i := range waiters {
		waiter := newClient(t, redilock.WithRetryInterval(60*time.Second))
		results = append(results, lockInBackground(func() (*redilock.Lock, error) { return waiter.Lock(ctx, name, waiterTTL) }))
		awaitWaiters(t, redisURL(), name, i+1) // in line in this order
	}
	tokens := queuedTokens(t, redisURL(), name)
	for i, entry := range queue(t, redisURL(), name) {
		if entry != tokens[i]+"7000" {
			t.Errorf("queue entry %d is %q, want the token and the TTL in ms", i, entry)
		}
	}

	var latencies []time.Duration
	for i, result := range results {
		unlocking := time.Now()
		mustUnlock(t, previous)
		got := <-result
		latencies = append(latencies, time.Since(unlocking))
		if got.err != nil {
			t.Fatalf("waiter %d: %v", i, got.err)
		}
		if got.lock.Token() != tokens[i] {
			t.Errorf("waiter %d got the lock as %q, in line as %q", i, got.lock.Token(), tokens[i])
		}
		if left := queuedTokens(t, redisURL(), name); !slices.Equal(left, tokens[i+1:]) {
			t.Errorf("after waiter %d: in line %q, want %q", i, left, tokens[i+1:])
		}
		previous = got.lock
	}
	mustUnlock(t, previous)
	requirePrompt(t, "Unlock to the next waiter's return", latencies)
}

// 64 goroutines share one client and count under the lock. The counter is read and written
// as separate atomic operations, so the race detector stays quiet while only the lock keeps
// increments from being lost.
func TestGoroutinesShareOneClient(t *testing.T) {
	c := newClient(t)
	const goroutines, iterations = 64, 20
	name := lockName(t)
	var counter, inside, overlaps, failures atomic.Int64
	var wg sync.WaitGroup
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			for range iterations {
				lock, err := c.Lock(ctx, name, 5*time.Second)
				if err != nil {
					t.Error(err)
					failures.Add(1)
					continue
				}
				if inside.Add(1) != 1 {
					overlaps.Add(1)
				}
				seen := counter.Load()
				time.Sleep(10 * time.Microsecond)
				counter.Store(seen + 1)
				inside.Add(-1)
				if err := lock.Unlock(ctx); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if counter.Load() != goroutines*iterations || overlaps.Load() != 0 || failures.Load() != 0 {
		t.Errorf("counter %d (want %d), overlaps %d, failures %d", counter.Load(), goroutines*iterations,
			overlaps.Load(), failures.Load())
	}
}

func TestWithLock(t *testing.T) {
	c := newClient(t)
	ctx := context.Background()
	name := lockName(t)

	failed := errors.New("work failed")
	err := c.WithLock(ctx, name, time.Second, func(ctx context.Context) error {
		if !keyExists(t, name) {
			t.Error("the lock is not held inside WithLock")
		}
		return failed
	})
	if err != failed || keyExists(t, name) {
		t.Errorf("WithLock returned %v; key left: %v", err, keyExists(t, name))
	}

	func() {
		defer func() { recover() }()
		c.WithLock(ctx, name, time.Second, func(context.Context) error { panic("boom") })
	}()
	if keyExists(t, name) {
		t.Error("a panic in fn left the lock held")
	}

	held := mustLock(t, c, name)
	defer mustUnlock(t, held)
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	ran := false
	err = c.WithLock(short, name, time.Second, func(context.Context) error { ran = true; return nil })
	if ran || !errors.Is(err, redilock.ErrNotAcquired) {
		t.Errorf("WithLock on a held lock: ran %v, %v", ran, err)
	}
}

// A client that is not fair takes a free lock whoever waits in line, and its own waiter is
// woken to try again when the lock is released.
func TestAClientThatIsNotFairBarges(t *testing.T) {
	holder := newClient(t)
	name := lockName(t)
	mustLock(t, holder, name)
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	fair := newClient(t, redilock.WithRetryInterval(60*time.Second))
	inLine := lockInBackground(func() (*redilock.Lock, error) { return fair.Lock(ctx, name, time.Minute) })
	awaitWaiters(t, redisURL(), name, 1)
	if _, err := redisCommand(redisURL(), "DEL", name); err != nil { // free, with a waiter in line
		t.Fatal(err)
	}

	barger := newClient(t, redilock.WithFair(false))
	barged, err := barger.TryLock(ctx, name, time.Minute)
	if err != nil {
		t.Fatalf("a client that is not fair did not take the free lock: %v", err)
	}
	if n := len(queue(t, redisURL(), name)); n != 1 {
		t.Errorf("%d waiters in line, want the fair one still there", n)
	}
	mustUnlock(t, barged)
	got := <-inLine
	if got.err != nil {
		t.Fatalf("the fair waiter: %v", got.err)
	}
	mustUnlock(t, got.lock)
}
