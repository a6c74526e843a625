package redilock_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	redilock "github.com/redilock/redilock/bindings/go"
)

// The library reads the certificate files in New and refuses one it cannot use with
// StatusInvalidArgument, naming it; Go refuses a certificate without its key (and the reverse)
// and a NUL in a path. None of this needs a server.
func TestTLSOptionArguments(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing-ca.pem")
	notPEM := filepath.Join(dir, "not-pem.txt")
	writeFile(t, notPEM, []byte("not a certificate\n"))
	const nowhere = "rediss://127.0.0.1:1" // New does no I/O
	for _, call := range []struct {
		what, mentions string
		err            error
	}{
		{"missing CA file", missing, clientErr(redilock.New(nowhere, redilock.WithTLSCAFile(missing)))},
		{"CA file without a certificate", notPEM, clientErr(redilock.New(nowhere, redilock.WithTLSCAFile(notPEM)))},
		{"missing client certificate", missing,
			clientErr(redilock.New(nowhere, redilock.WithTLSClientCert(missing, notPEM)))},
		{"certificate without its key", "WithTLSClientCert",
			clientErr(redilock.New(nowhere, redilock.WithTLSClientCert(missing, "")))},
		{"key without its certificate", "WithTLSClientCert",
			clientErr(redilock.New(nowhere, redilock.WithTLSClientCert("", missing)))},
		{"NUL in the CA file path", "NUL", clientErr(redilock.New(nowhere, redilock.WithTLSCAFile("ca\x00.pem")))},
		{"CA file for a plain URL", "not rediss://", clientErr(redilock.New(redisURL(), redilock.WithTLSCAFile(notPEM)))},
	} {
		failure := requireStatus(t, call.err, redilock.StatusInvalidArgument)
		if !strings.Contains(failure.Message, call.mentions) {
			t.Errorf("%s: %q does not mention %q", call.what, failure.Message, call.mentions)
		}
	}
	// "" is no file: the system's roots, no client certificate.
	newClientAt(t, nowhere, redilock.WithTLSCAFile(""), redilock.WithTLSClientCert("", ""))
}

// Every connection of the client runs over TLS: the calling goroutine's (TryLock, Unlock),
// and the shared one and the wake-up subscription a waiter uses (Lock, handed the lock).
func TestTLSWithTheCAFile(t *testing.T) {
	server := tlsTestServer(t)
	holder := newClientAt(t, server.url, redilock.WithTLSCAFile(server.ca))
	waiter := newClientAt(t, server.url, redilock.WithTLSCAFile(server.ca), redilock.WithRetryInterval(time.Hour))
	ctx := context.Background()
	name := lockName(t)

	lock := mustLock(t, holder, name)
	if !existsAt(t, server.url, name) {
		t.Fatal("the lock is not on the TLS server")
	}
	handed := lockInBackground(func() (*redilock.Lock, error) { return waiter.Lock(ctx, name, 10*time.Second) })
	awaitWaiters(t, server.url, name, 1)
	mustUnlock(t, lock)
	select {
	case result := <-handed:
		if result.err != nil {
			t.Fatal(result.err)
		}
		mustUnlock(t, result.lock)
	case <-time.After(patience):
		t.Fatal("the waiter was not handed the lock") // its retry interval is an hour
	}
	awaitGivenBack(t, server.url, name)
}

// The harness's server asks for a client certificate without requiring one, so the
// certificate is sent and accepted, on every connection.
func TestMutualTLS(t *testing.T) {
	server := tlsTestServer(t)
	c := newClientAt(t, server.url, redilock.WithTLSCAFile(server.ca),
		redilock.WithTLSClientCert(server.clientCert, server.clientKey))
	if err := c.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	name := lockName(t)
	mustUnlock(t, mustLock(t, c, name))
	awaitGivenBack(t, server.url, name)

	notAKey := server.ca
	_, err := redilock.New(server.url, redilock.WithTLSClientCert(server.clientCert, notAKey))
	if failure := requireStatus(t, err, redilock.StatusInvalidArgument); !strings.Contains(failure.Message, notAKey) {
		t.Errorf("a certificate for a key: %q does not name %s", failure.Message, notAKey)
	}
}

// Without a CA file the system's roots verify the server: they do not know the harness's CA.
func TestTLSWithTheSystemRootsRefusesAnUnknownCA(t *testing.T) {
	server := tlsTestServer(t)
	c := newClientAt(t, server.url)
	ctx := context.Background()
	name := lockName(t)
	_, err := c.TryLock(ctx, name, 10*time.Second)
	if !errors.Is(err, redilock.ErrTLS) || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("TryLock: %v, want ErrTLS about the certificate", err)
	}
	if err := c.Ping(ctx); !errors.Is(err, redilock.ErrTLS) {
		t.Errorf("Ping: %v", err)
	}
	if existsAt(t, server.url, name) {
		t.Error("a lock was taken")
	}
}

// #insecure encrypts without verifying the server: tests only.
func TestTLSInsecure(t *testing.T) {
	server := tlsTestServer(t)
	c := newClientAt(t, server.url+"#insecure")
	name := lockName(t)
	mustUnlock(t, mustLock(t, c, name))
}
