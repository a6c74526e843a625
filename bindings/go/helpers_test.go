package redilock_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	redilock "github.com/redilock/redilock/bindings/go"
)

// TestMain uses the servers of tests/harness/with-redis -n 5 ($REDIS_URL, the first, and
// $REDIS_URL_1..5, the masters of the quorum tests), or starts those missing, so that a plain
// `go test` works too.
func TestMain(m *testing.M) {
	var started []*redisServer
	for _, variable := range masterURLVariables() {
		if os.Getenv(variable) != "" {
			continue
		}
		server, err := startRedis(freePort())
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		started = append(started, server)
		os.Setenv(variable, server.url)
	}
	if os.Getenv("REDIS_URL") == "" {
		os.Setenv("REDIS_URL", os.Getenv("REDIS_URL_1"))
	}
	code := m.Run()
	for _, server := range started {
		server.stop()
	}
	os.Exit(code)
}

// redisServer is a redis-server this test binary started, for tests that kill or restart it.
type redisServer struct {
	port int
	url  string
	cmd  *exec.Cmd
}

func freePort() int {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer listener.Close()
	return listener.Addr().(*net.TCPAddr).Port
}

func startRedis(port int) (*redisServer, error) {
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	server := &redisServer{port: port, url: fmt.Sprintf("redis://127.0.0.1:%d", port), cmd: cmd}
	for deadline := time.Now().Add(scaled(5 * time.Second)); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if _, err := redisCommand(server.url, "PING"); err == nil {
			return server, nil
		}
	}
	server.stop()
	return nil, fmt.Errorf("redis-server on port %d did not answer", port)
}

// ownRedis starts a server for one test and stops it at the end.
func ownRedis(t *testing.T) *redisServer {
	t.Helper()
	server, err := startRedis(freePort())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(server.stop)
	return server
}

func (s *redisServer) stop() {
	if s.cmd.Process != nil && s.cmd.ProcessState == nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
	}
}

func (s *redisServer) restart(t *testing.T) {
	t.Helper()
	server, err := startRedis(s.port)
	if err != nil {
		t.Fatal(err)
	}
	s.cmd = server.cmd
}

// redisCommand sends one command over a fresh connection and returns the reply as text
// (integers in decimal, nil as ""); an error reply becomes an error.
func redisCommand(redisURL string, args ...string) (string, error) {
	reply, err := redisReply(redisURL, args...)
	text, _ := reply.(string)
	return text, err
}

// redisList is redisCommand for a command that replies with an array.
func redisList(redisURL string, args ...string) ([]string, error) {
	reply, err := redisReply(redisURL, args...)
	list, _ := reply.([]string)
	return list, err
}

// redisReply sends one command over a fresh connection: a plain RESP exchange, so that the
// tests observe Redis without the library under test. A rediss:// URL is the harness's TLS
// server (tlsTestServer), whose certificate its CA signed.
func redisReply(redisURL string, args ...string) (any, error) {
	parsed, err := url.Parse(redisURL)
	if err != nil {
		return nil, err
	}
	dialer := &net.Dialer{Timeout: scaled(5 * time.Second)}
	var conn net.Conn
	if parsed.Scheme == "rediss" {
		conn, err = tls.DialWithDialer(dialer, "tcp", parsed.Host, &tls.Config{RootCAs: harnessCA()})
	} else {
		conn, err = dialer.Dial("tcp", parsed.Host)
	}
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(scaled(10 * time.Second)))
	var request strings.Builder
	fmt.Fprintf(&request, "*%d\r\n", len(args))
	for _, arg := range args {
		fmt.Fprintf(&request, "$%d\r\n%s\r\n", len(arg), arg)
	}
	if _, err := conn.Write([]byte(request.String())); err != nil {
		return nil, err
	}
	return readReply(bufio.NewReader(conn))
}

// readReply reads one RESP2 reply: a string, or a []string for an array of scalars.
func readReply(reader *bufio.Reader) (any, error) {
	line, err := reader.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return nil, errors.New("redis: empty reply line")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return nil, fmt.Errorf("redis: %s", line[1:])
	case '$':
		size, _ := strconv.Atoi(line[1:])
		if size < 0 {
			return "", nil
		}
		body := make([]byte, size+2)
		_, err := io.ReadFull(reader, body)
		return string(body[:size]), err
	case '*':
		count, _ := strconv.Atoi(line[1:])
		elements := make([]string, 0, max(count, 0))
		for range count {
			element, err := readReply(reader)
			if err != nil {
				return nil, err
			}
			text, _ := element.(string)
			elements = append(elements, text)
		}
		return elements, nil
	}
	return nil, fmt.Errorf("redis: unexpected reply %q", line)
}

// harnessCA is the CA of the harness's TLS server; nil (the system's roots) without one.
func harnessCA() *x509.CertPool {
	pem, err := os.ReadFile(os.Getenv("REDIS_TLS_CA"))
	if err != nil {
		return nil
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return pool
}

// tlsServer is the TLS-only server of tests/harness/with-redis --tls and the files made for
// it: the CA that signed its certificate, and a client certificate of that CA with its key
// (the server asks for one but does not require it).
type tlsServer struct {
	url, ca, clientCert, clientKey string
}

// tlsTestServer is the harness's TLS server; the test is skipped without one.
func tlsTestServer(t *testing.T) tlsServer {
	t.Helper()
	url := os.Getenv("REDIS_TLS_URL")
	if url == "" {
		t.Skip("REDIS_TLS_URL is not set: run through tests/harness/with-redis --tls, as make test-go does")
	}
	return tlsServer{url: url, ca: os.Getenv("REDIS_TLS_CA"), clientCert: os.Getenv("REDIS_TLS_CLIENT_CERT"),
		clientKey: os.Getenv("REDIS_TLS_CLIENT_KEY")}
}

// redisDo is redisCommand against $REDIS_URL, failing the test on error.
func redisDo(t testing.TB, args ...string) string {
	t.Helper()
	reply, err := redisCommand(redisURL(), args...)
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return reply
}

func redisURL() string {
	return os.Getenv("REDIS_URL")
}

// newClient is a client on $REDIS_URL, closed when the test ends.
func newClient(t testing.TB, options ...redilock.Option) *redilock.Client {
	t.Helper()
	return newClientAt(t, redisURL(), options...)
}

// newClientAt is a client on url, closed when the test ends.
func newClientAt(t testing.TB, url string, options ...redilock.Option) *redilock.Client {
	t.Helper()
	c, err := redilock.New(url, options...)
	return closedAtEnd(t, c, err)
}

// closedAtEnd is a new client c, closed when the test ends; err (its constructor's) fails the
// test.
func closedAtEnd(t testing.TB, c *redilock.Client, err error) *redilock.Client {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

var nameCount atomic.Int64

// lockName is unique per call, so tests sharing one server never meet.
func lockName(t testing.TB) string {
	return fmt.Sprintf("go-test:%s:%d", t.Name(), nameCount.Add(1))
}

func mustLock(t testing.TB, c *redilock.Client, name string) *redilock.Lock {
	t.Helper()
	lock, err := c.TryLock(context.Background(), name, 10*time.Second)
	if err != nil {
		t.Fatalf("TryLock(%q): %v", name, err)
	}
	return lock
}

func mustUnlock(t testing.TB, lock *redilock.Lock) {
	t.Helper()
	if err := lock.Unlock(context.Background()); err != nil {
		t.Fatalf("Unlock(%q): %v", lock.Name(), err)
	}
}

// requireStatus checks that err is an *redilock.Error with the given status.
func requireStatus(t testing.TB, err error, status redilock.Status) *redilock.Error {
	t.Helper()
	var failure *redilock.Error
	if !errors.As(err, &failure) || failure.Status != status {
		t.Fatalf("error %v: want status %d (%v)", err, status, status)
	}
	return failure
}

// keyExists reports whether Redis holds the key of a lock (no key prefix).
func keyExists(t testing.TB, name string) bool {
	t.Helper()
	return existsAt(t, redisURL(), name)
}

// existsAt reports whether the server at url holds key.
func existsAt(t testing.TB, url, key string) bool {
	t.Helper()
	reply, err := redisCommand(url, "EXISTS", key)
	if err != nil {
		t.Fatal(err)
	}
	return reply == "1"
}

// scaled stretches a time bound by REDILOCK_TEST_TIME_SCALE (default 1) for a slow or loaded
// machine: every bound a test asserts goes through it. Tests wait by polling what they can
// observe, never by sleeping for a bound.
func scaled(bound time.Duration) time.Duration {
	scale, err := strconv.ParseFloat(os.Getenv("REDILOCK_TEST_TIME_SCALE"), 64)
	if err != nil || scale < 1 {
		scale = 1
	}
	return time.Duration(float64(bound) * scale)
}

// patience bounds every wait for something the tests observe (waitUntil): generous, since
// those waits end as soon as the thing happens.
var patience = scaled(20 * time.Second)

// waitUntil polls condition until it holds, and fails the test after patience.
func waitUntil(t testing.TB, what string, condition func() bool) {
	t.Helper()
	for deadline := time.Now().Add(patience); !condition(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", patience, what)
		}
	}
}

// leakTTL outlasts patience: a lock taken with it that a call should have left behind (or
// given back) is still there when waitUntil gives up, instead of expiring unseen.
var leakTTL = 3 * patience

// queue is the entries of the waiters for lock name (its key: no key prefix) at url, first in
// line first: the list redilock:queue:{N}:<name>, whose entries are a waiter's token (32
// characters) followed by the TTL in ms it asked for. queuedTokens gives the tokens alone.
func queue(t testing.TB, url, name string) []string {
	t.Helper()
	keys, err := redisList(url, "KEYS", "redilock:queue:*:"+name)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) == 0 {
		return nil
	}
	entries, err := redisList(url, "LRANGE", keys[0], "0", "-1")
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

// tokenLen is the length of an owner token, which begins each queue entry.
const tokenLen = 32

// queuedTokens is the tokens of the waiters for lock name at url, first in line first.
func queuedTokens(t testing.TB, url, name string) []string {
	t.Helper()
	var tokens []string
	for _, entry := range queue(t, url, name) {
		if len(entry) < tokenLen {
			t.Fatalf("queue entry %q is shorter than a token", entry)
		}
		tokens = append(tokens, entry[:tokenLen])
	}
	return tokens
}

// awaitWaiters returns once count callers wait in the queue of lock name at url.
func awaitWaiters(t testing.TB, url, name string, count int) {
	t.Helper()
	waitUntil(t, fmt.Sprintf("%d waiters queued for %q", count, name), func() bool {
		return len(queue(t, url, name)) == count
	})
}

// awaitGivenBack returns once lock name (no key prefix) at url is neither held nor waited for:
// what a call that ended without a lock gives back, possibly just after it returned.
func awaitGivenBack(t testing.TB, url, name string) {
	t.Helper()
	waitUntil(t, fmt.Sprintf("%q is given back", name), func() bool {
		return !existsAt(t, url, name) && len(queue(t, url, name)) == 0
	})
}

type lockResult struct {
	lock *redilock.Lock
	err  error
}

// lockInBackground runs lockCall on a goroutine of its own; its result comes on the channel.
func lockInBackground(lockCall func() (*redilock.Lock, error)) <-chan lockResult {
	result := make(chan lockResult, 1)
	go func() {
		lock, err := lockCall()
		result <- lockResult{lock, err}
	}()
	return result
}

// patientClient is a client on url whose commands may wait in a paused Redis (attemptInPause).
func patientClient(t *testing.T, url string) *redilock.Client {
	return newClientAt(t, url, redilock.WithCommandTimeout(3*patience))
}

// attemptInPause starts lockCall while Redis at url holds write commands (CLIENT PAUSE
// WRITE), and returns once its attempt waits in Redis, so that a cancel or a Close is sure to
// land while the attempt is in flight. unpause lets the attempt run (taking the lock) and
// returns the call's result. The client needs a command timeout above patience.
func attemptInPause(t *testing.T, url string, lockCall func() (*redilock.Lock, error)) (unpause func() lockResult) {
	t.Helper()
	pauseMs := strconv.FormatInt((2 * patience).Milliseconds(), 10)
	if _, err := redisCommand(url, "CLIENT", "PAUSE", pauseMs, "WRITE"); err != nil {
		t.Fatal(err)
	}
	resume := func() {
		if _, err := redisCommand(url, "CLIENT", "UNPAUSE"); err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(resume)
	result := lockInBackground(lockCall)
	pausedScript := regexp.MustCompile(`flags=\w*b\w* .*cmd=eval`)
	waitUntil(t, "a lock attempt waits in the paused Redis", func() bool {
		clients, err := redisCommand(url, "CLIENT", "LIST")
		if err != nil {
			t.Fatal(err)
		}
		return pausedScript.MatchString(clients)
	})
	return func() lockResult {
		resume()
		return <-result
	}
}
