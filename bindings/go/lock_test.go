package redilock_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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

// The cgo preamble refuses a redilock.h of another ABI version at compile time: the package
// is built against a copy of the header that says 0.3.
func TestBuildRefusesAnotherHeaderVersion(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	includeDir, err := exec.Command("pkg-config", "--variable=includedir", "redilock").Output()
	if err != nil {
		t.Fatalf("pkg-config: %v", err)
	}
	header, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(includeDir)), "redilock.h"))
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

	build := exec.Command(goTool, "build", "-o", os.DevNull, ".")
	// The build cache does not track headers outside the package: a flag naming this
	// directory (where pkg-config's -I already looks first) keeps it from reusing a build.
	build.Env = append(os.Environ(), "PKG_CONFIG_PATH="+other, "CGO_CFLAGS=-O2 -g -I"+other, "GOGC=100", "GOFLAGS=")
	output, err := build.CombinedOutput()
	if err == nil || !strings.Contains(string(output), "written for the redilock 0.2 ABI") {
		t.Errorf("go build against a 0.3 header: %v\n%s", err, output)
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
