package redilock_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	redilock "github.com/redilock/redilock/bindings/go"
)

// Redis Cluster and Sentinel, through the URLs New takes as they are. The round trips use the
// cluster and the Sentinel-watched primary of tests/harness/with-redis --cluster --sentinel
// (REDIS_CLUSTER_URL, REDIS_SENTINEL_URL) and are skipped without them; the URL checks need
// no server.

// clusterServer is the harness's Redis Cluster: its URL and its masters' ports.
type clusterServer struct {
	url     string
	masters []string
}

// clusterTestServer is the harness's cluster; the test is skipped without one.
func clusterTestServer(t *testing.T) clusterServer {
	t.Helper()
	url := os.Getenv("REDIS_CLUSTER_URL")
	if url == "" {
		t.Skip("REDIS_CLUSTER_URL is not set: run through tests/harness/with-redis --cluster, as make test-go does")
	}
	// The masters first, then one replica of each in the same order.
	ports := strings.Fields(os.Getenv("REDIS_CLUSTER_PORTS"))
	if len(ports) < 2 || len(ports)%2 != 0 {
		t.Fatalf("REDIS_CLUSTER_PORTS %q: want the masters' ports, then their replicas'", ports)
	}
	return clusterServer{url: url, masters: ports[:len(ports)/2]}
}

// masterURL is a plain URL of master i, for the tests' own commands.
func (s clusterServer) masterURL(i int) string {
	return "redis://127.0.0.1:" + s.masters[i]
}

// scan is the keys matching pattern on each master, as redis-cli --scan lists them.
func (s clusterServer) scan(t *testing.T, pattern string) [][]string {
	t.Helper()
	keys := make([][]string, len(s.masters))
	for i, port := range s.masters {
		output, err := exec.Command("redis-cli", "-p", port, "--scan", "--pattern", pattern).Output()
		if err != nil {
			t.Fatalf("redis-cli -p %s --scan: %v", port, err)
		}
		for key := range strings.Lines(string(output)) {
			keys[i] = append(keys[i], strings.TrimSuffix(key, "\n"))
		}
	}
	return keys
}

// masterOf is the index of the one master that holds key. It asks each master with SCAN (a
// node refuses EXISTS for a key of another node's slot, with MOVED).
func (s clusterServer) masterOf(t *testing.T, key string) int {
	t.Helper()
	holder := -1
	for i, keys := range s.scan(t, globEscaper.Replace(key)) {
		if slices.Contains(keys, key) {
			if holder >= 0 {
				t.Fatalf("%q is on masters %s and %s", key, s.masters[holder], s.masters[i])
			}
			holder = i
		}
	}
	if holder < 0 {
		t.Fatalf("%q is on no master", key)
	}
	return holder
}

// globEscaper makes a key a SCAN pattern that matches it alone.
var globEscaper = strings.NewReplacer(`\`, `\\`, "*", `\*`, "?", `\?`, "[", `\[`, "]", `\]`)

// Each lock lives on the master of its name's slot: 30 names held at once spread over the
// masters, each on one, holding its owner's token; unlocked, none is left.
func TestClusterLocksSpreadOverTheMasters(t *testing.T) {
	cluster := clusterTestServer(t)
	c := newClientAt(t, cluster.url)
	ctx := context.Background()
	prefix := lockName(t) + ":"

	func() {
		tokens := map[string]string{}
		for i := range 30 {
			name := fmt.Sprintf("%s%d", prefix, i)
			lock, err := c.Lock(ctx, name, leakTTL)
			if err != nil {
				t.Fatalf("Lock(%q): %v", name, err)
			}
			defer func() {
				if err := lock.Unlock(ctx); err != nil {
					t.Errorf("Unlock(%q): %v", name, err)
				}
			}()
			if lock.Fence() == 0 {
				t.Errorf("%q: fence 0", name)
			}
			tokens[name] = lock.Token()
		}

		var found []string
		used := 0
		for i, keys := range cluster.scan(t, prefix+"*") {
			if len(keys) > 0 {
				used++
			}
			t.Logf("master %s holds %d of the locks", cluster.masters[i], len(keys))
			for _, key := range keys {
				if got, _ := redisCommand(cluster.masterURL(i), "GET", key); got != tokens[key] {
					t.Errorf("master %s holds %q for %q, want the token %q", cluster.masters[i], got, key, tokens[key])
				}
			}
			found = append(found, keys...)
		}
		slices.Sort(found)
		want := make([]string, 0, len(tokens))
		for name := range tokens {
			want = append(want, name)
		}
		slices.Sort(want)
		if !slices.Equal(found, want) {
			t.Fatalf("the masters hold %q, want each of %q once", found, want)
		}
		if used < 2 {
			t.Errorf("the 30 locks are all on one master")
		}
	}()

	for i, keys := range cluster.scan(t, prefix+"*") {
		if len(keys) > 0 {
			t.Errorf("master %s still holds %q after Unlock", cluster.masters[i], keys)
		}
	}
}

// A held lock is not acquired by TryLock, whichever master holds it.
func TestClusterTryLockOnAHeldLock(t *testing.T) {
	cluster := clusterTestServer(t)
	holder, other := newClientAt(t, cluster.url), newClientAt(t, cluster.url)
	ctx := context.Background()
	for _, lock := range lockOnEveryMaster(t, cluster, holder, lockName(t)) {
		taken, err := other.TryLock(ctx, lock.Name(), 10*time.Second)
		if taken != nil || !errors.Is(err, redilock.ErrNotAcquired) {
			t.Errorf("TryLock(%q) held elsewhere: %v, %v; want ErrNotAcquired", lock.Name(), taken, err)
		}
		mustUnlock(t, lock)
		mustUnlock(t, mustLock(t, other, lock.Name()))
	}
}

// A waiter is handed the lock as soon as the holder unlocks, on every master: it listens for
// wake-ups on each. Its retry interval is an hour and the holder's TTL outlasts the wait, so
// only the wake-up explains the hand-over.
func TestClusterWaiterIsWokenOnEveryMaster(t *testing.T) {
	cluster := clusterTestServer(t)
	holder := newClientAt(t, cluster.url)
	waiter := newClientAt(t, cluster.url, redilock.WithRetryInterval(time.Hour))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // a waiter left behind by a failure

	for master, lock := range lockOnEveryMaster(t, cluster, holder, lockName(t)) {
		name, url := lock.Name(), cluster.masterURL(master)
		handed := lockInBackground(func() (*redilock.Lock, error) { return waiter.Lock(ctx, name, 10*time.Second) })
		awaitWaiters(t, url, name, 1)
		unlocked := time.Now()
		mustUnlock(t, lock)
		select {
		case result := <-handed:
			if result.err != nil {
				t.Fatalf("Lock(%q): %v", name, result.err)
			}
			t.Logf("master %s: handed over %v after the unlock", cluster.masters[master], time.Since(unlocked))
			if result.lock.Fence() <= lock.Fence() {
				t.Errorf("%q: the waiter's fence %d is not above the holder's %d", name, result.lock.Fence(), lock.Fence())
			}
			mustUnlock(t, result.lock)
		case <-time.After(patience):
			t.Fatalf("master %s: the waiter was not handed %q within %v of the unlock", cluster.masters[master], name, patience)
		}
		awaitGivenBack(t, url, name)
	}
}

// lockOnEveryMaster takes, with c, one lock on each master of the cluster (names from base):
// the lock at index i lives on master i. Its TTL outlasts patience.
func lockOnEveryMaster(t *testing.T, cluster clusterServer, c *redilock.Client, base string) []*redilock.Lock {
	t.Helper()
	ctx := context.Background()
	locks := make([]*redilock.Lock, len(cluster.masters))
	missing := len(locks)
	for i := 0; missing > 0; i++ {
		if i == 1000 {
			t.Fatalf("no name of 1000 lives on each of the %d masters", len(locks))
		}
		name := fmt.Sprintf("%s:%d", base, i)
		lock, err := c.TryLock(ctx, name, leakTTL)
		if err != nil {
			t.Fatalf("TryLock(%q): %v", name, err)
		}
		if master := cluster.masterOf(t, name); locks[master] == nil {
			locks[master] = lock
			missing--
		} else {
			mustUnlock(t, lock)
		}
	}
	return locks
}

// sentinelServer is the harness's primary behind Sentinels: the URL of the Sentinels and a
// plain URL of the primary they name.
type sentinelServer struct {
	url, primary string
}

// sentinelTestServer is the harness's Sentinel deployment; the test is skipped without one.
func sentinelTestServer(t *testing.T) sentinelServer {
	t.Helper()
	url := os.Getenv("REDIS_SENTINEL_URL")
	if url == "" {
		t.Skip("REDIS_SENTINEL_URL is not set: run through tests/harness/with-redis --sentinel, as make test-go does")
	}
	return sentinelServer{url: url, primary: "redis://127.0.0.1:" + os.Getenv("REDIS_SENTINEL_PRIMARY_PORT")}
}

// The client finds the primary through the Sentinels: the lock is taken there, extended,
// read and given back.
func TestSentinelLockExtendRemainingTTLUnlock(t *testing.T) {
	sentinel := sentinelTestServer(t)
	c := newClientAt(t, sentinel.url)
	ctx := context.Background()
	name := lockName(t)

	lock, err := c.Lock(ctx, name, 10*time.Second)
	if err != nil {
		t.Fatalf("Lock: %v", err)
	}
	if lock.Fence() == 0 {
		t.Error("fence 0")
	}
	if got, err := redisCommand(sentinel.primary, "GET", name); err != nil || got != lock.Token() {
		t.Fatalf("the primary holds %q (%v), want the token %q", got, err, lock.Token())
	}
	if err := lock.Extend(ctx, leakTTL); err != nil {
		t.Fatalf("Extend: %v", err)
	}
	remaining, err := lock.RemainingTTL(ctx)
	if err != nil {
		t.Fatalf("RemainingTTL: %v", err)
	}
	if remaining <= 10*time.Second || remaining > leakTTL {
		t.Errorf("RemainingTTL after Extend(%v): %v", leakTTL, remaining)
	}
	mustUnlock(t, lock)
	if existsAt(t, sentinel.primary, name) {
		t.Error("the lock is still on the primary after Unlock")
	}
	if _, err := lock.RemainingTTL(ctx); !errors.Is(err, redilock.ErrNotOwner) {
		t.Errorf("RemainingTTL after Unlock: %v, want ErrNotOwner", err)
	}
}

// A waiter on the primary the Sentinels name is woken by the unlock (its retry interval is
// an hour), and TryLock meanwhile finds the lock held.
func TestSentinelWaiterIsWokenByTheUnlock(t *testing.T) {
	sentinel := sentinelTestServer(t)
	holder := newClientAt(t, sentinel.url)
	waiter := newClientAt(t, sentinel.url, redilock.WithRetryInterval(time.Hour))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	name := lockName(t)

	lock, err := holder.TryLock(ctx, name, leakTTL)
	if err != nil {
		t.Fatal(err)
	}
	if taken, err := waiter.TryLock(ctx, name, 10*time.Second); taken != nil || !errors.Is(err, redilock.ErrNotAcquired) {
		t.Errorf("TryLock on the held lock: %v, %v; want ErrNotAcquired", taken, err)
	}
	handed := lockInBackground(func() (*redilock.Lock, error) { return waiter.Lock(ctx, name, 10*time.Second) })
	awaitWaiters(t, sentinel.primary, name, 1)
	mustUnlock(t, lock)
	select {
	case result := <-handed:
		if result.err != nil {
			t.Fatal(result.err)
		}
		mustUnlock(t, result.lock)
	case <-time.After(patience):
		t.Fatalf("the waiter was not handed the lock within %v of the unlock", patience)
	}
	awaitGivenBack(t, sentinel.primary, name)
}

// A multi-host URL New cannot use is ErrInvalidArgument, saying why, with the password
// masked: in the credentials (u:***@) and in the Sentinels' sentinel_password.
func TestBadMultiHostURLs(t *testing.T) {
	for _, bad := range []struct{ url, masked, why string }{
		{"redis+cluster://u:s3cret@127.0.0.1:1,,127.0.0.1:2", "redis+cluster://u:***@127.0.0.1:1,,127.0.0.1:2", "empty host"},
		{"redis+sentinel://u:s3cret@127.0.0.1:1", "redis+sentinel://u:***@127.0.0.1:1", "no primary name"},
		{"redis+sentinel://127.0.0.1:1,127.0.0.1:2?sentinel_password=s3cret",
			"redis+sentinel://127.0.0.1:1,127.0.0.1:2?sentinel_password=***", "no primary name"},
		{"redis+sentinel://u:s3cret@127.0.0.1:1/mymaster/x", "redis+sentinel://u:***@127.0.0.1:1/mymaster/x", "no database number"},
		{"redis+cluster://u:s3cret@127.0.0.1:1/3", "redis+cluster://u:***@127.0.0.1:1/3", "one database"},
		{"rediss+cluster://u:s3cret@127.0.0.1:1,,127.0.0.1:2", "rediss+cluster://u:***@127.0.0.1:1,,127.0.0.1:2", "empty host"},
	} {
		c, err := redilock.New(bad.url)
		if c != nil {
			c.Close()
		}
		if !errors.Is(err, redilock.ErrInvalidArgument) {
			t.Errorf("New(%q): %v, want ErrInvalidArgument", bad.masked, err)
			continue
		}
		message := err.Error()
		if strings.Contains(message, "s3cret") || !strings.Contains(message, bad.masked) {
			t.Errorf("New(%q): %q does not name the URL with its password masked", bad.masked, message)
		}
		if !strings.Contains(message, bad.why) {
			t.Errorf("New(%q): %q does not say %q", bad.masked, message, bad.why)
		}
	}
}
