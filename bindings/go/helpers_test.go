package redilock_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	redilock "github.com/redilock/redilock/bindings/go"
)

// TestMain uses the server of tests/harness/with-redis ($REDIS_URL), or starts one so that a
// plain `go test` works too.
func TestMain(m *testing.M) {
	if os.Getenv("REDIS_URL") != "" {
		os.Exit(m.Run())
	}
	server, err := startRedis(freePort())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("REDIS_URL", server.url)
	code := m.Run()
	server.stop()
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
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
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
	parsed, err := url.Parse(redisURL)
	if err != nil {
		return "", err
	}
	conn, err := net.DialTimeout("tcp", parsed.Host, time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	var request strings.Builder
	fmt.Fprintf(&request, "*%d\r\n", len(args))
	for _, arg := range args {
		fmt.Fprintf(&request, "$%d\r\n%s\r\n", len(arg), arg)
	}
	if _, err := conn.Write([]byte(request.String())); err != nil {
		return "", err
	}
	reader := bufio.NewReader(conn)
	line, err := reader.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", fmt.Errorf("redis: %s", line[1:])
	case '$':
		size, _ := strconv.Atoi(line[1:])
		if size < 0 {
			return "", nil
		}
		body := make([]byte, size+2)
		_, err := io.ReadFull(reader, body)
		return string(body[:size]), err
	}
	return "", fmt.Errorf("redis: unexpected reply %q", line)
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
	return redisDo(t, "EXISTS", name) == "1"
}
