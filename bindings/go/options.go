//go:build cgo

package redilock

import (
	"math"
	"strings"
	"time"
)

// Option configures a Client in New.
type Option func(*config)

type config struct {
	retryInterval  durationOption
	connectTimeout durationOption
	commandTimeout durationOption
	defaultTTL     durationOption
	keyPrefix      string
	notFair        bool // the zero value is the library's default: fair
	replicaAcks    replicaAcksOption
	tlsCAFile      string // "": the system's root certificates
	tlsClientCert  string // "": no client certificate
	tlsClientKey   string
	quorum         int // 0: a majority, the library's default
	nodeTimeout    durationOption
}

// replicaAcksOption is WithReplicaAcks, passed on as it is once given.
type replicaAcksOption struct {
	count   int
	timeout time.Duration
	given   bool
}

// durationOption is a duration given to New, passed to the library as it is: the library
// checks its range and refuses an invalid one with its own message.
type durationOption struct {
	value time.Duration
	given bool
}

func (o *durationOption) set(d time.Duration) {
	*o = durationOption{value: d, given: true}
}

// WithDefaultTTL sets the TTL used by lock calls that pass ttl 0. Without it (or with 0)
// every lock call must pass a TTL. A negative one is refused by New (StatusInvalidArgument).
func WithDefaultTTL(ttl time.Duration) Option {
	return func(c *config) { c.defaultTTL.set(ttl) }
}

// WithRetryInterval sets how often a waiter looks at a held lock when nothing wakes it: a
// safety net only (default 10s). Waiters queue, and a release hands the lock to the first in
// line, who is woken at once; the first in line also watches for the holder's TTL to run out.
// Neither waits for this interval. It must be positive.
func WithRetryInterval(interval time.Duration) Option {
	return func(c *config) { c.retryInterval.set(interval) }
}

// WithConnectTimeout sets how long establishing a connection may take (default 2s). It must
// be positive.
func WithConnectTimeout(timeout time.Duration) Option {
	return func(c *config) { c.connectTimeout.set(timeout) }
}

// WithCommandTimeout sets how long one Redis command may wait for its reply (default 2s).
// It bounds TryLock, Unlock, Ping and each attempt of Lock. It must be positive.
func WithCommandTimeout(timeout time.Duration) Option {
	return func(c *config) { c.commandTimeout.set(timeout) }
}

// WithKeyPrefix puts prefix in front of every lock name to form its Redis key (e.g. "myapp:").
// The default "" makes the key the name itself.
func WithKeyPrefix(prefix string) Option {
	return func(c *config) { c.keyPrefix = prefix }
}

// WithFair chooses between fair (true, the default) and fast (false) locking. Fair: waiters
// take turns in arrival order, and a release hands the lock to the first in line. Not fair:
// this client's Lock and TryLock take a free lock whoever waits, and its waiters are only
// woken to try again; more throughput for short critical sections, with no bound on how long a
// waiter may be passed over.
func WithFair(fair bool) Option {
	return func(c *config) { c.notFair = !fair }
}

// WithReplicaAcks sets how many replicas must acknowledge each lock write (an acquisition, an
// Extend, a renewal), and how long to wait for them: the client sends Redis's WAIT after the
// write, in the same round trip, so that a failover does not lose a lock it handed out.
//
// count is ReplicaAcksAuto (the default: one replica when the server is a primary with
// replicas connected, none otherwise), 0 (off) or a number of replicas; more than the server
// has makes every lock fail. timeout 0 is the default, half the command timeout; New refuses a
// timeout that is not shorter than the command timeout. A Lock, TryLock or Extend that too few
// replicas acknowledged releases the lock and returns an error matching ErrNotReplicated; an
// auto-renewed lock whose renewals go unacknowledged until its lease runs out is lost.
func WithReplicaAcks(count int, timeout time.Duration) Option {
	return func(c *config) { c.replicaAcks = replicaAcksOption{count: count, timeout: timeout, given: true} }
}

// WithTLSCAFile makes a rediss:// client trust the certificate authorities of this PEM file,
// instead of the system's root certificates, to verify the server's certificate. New reads the
// file: one it cannot read or that holds no certificate is StatusInvalidArgument, naming it, as
// is a URL that is not rediss://. "" keeps the system's roots.
func WithTLSCAFile(path string) Option {
	return func(c *config) { c.tlsCAFile = path }
}

// WithTLSClientCert makes a rediss:// client present this certificate (a PEM file, which may
// go on with the intermediates of its chain) with its private key (a PEM file) to a server
// that asks for one: mutual TLS. New reads both files: one it cannot use, or a key that does
// not match the certificate, is StatusInvalidArgument, naming the file, as is a URL that is
// not rediss://. Both "" is no certificate; one without the other is refused.
func WithTLSClientCert(certFile, keyFile string) Option {
	return func(c *config) { c.tlsClientCert, c.tlsClientKey = certFile, keyFile }
}

// WithQuorum sets how many masters of a quorum client (NewQuorum) must grant a lock, an
// Extend or a renewal: more than half of them and at most all of them, or 0 for a majority
// (N/2 + 1, the default). NewQuorum refuses any other count (StatusInvalidArgument); New
// ignores it.
func WithQuorum(quorum int) Option {
	return func(c *config) { c.quorum = quorum }
}

// WithNodeTimeout sets how long one master of a quorum client (NewQuorum) may take to answer
// one call before it counts as failed for that call; keep it small against the TTL, as the
// time the masters take comes off the lock's validity. 0 (the default): a tenth of the call's
// TTL, at least 50 ms (500 ms for calls without a TTL: Unlock, RemainingTTL, Ping), at most
// the command timeout. A negative one is refused (StatusInvalidArgument); New ignores it.
func WithNodeTimeout(timeout time.Duration) Option {
	return func(c *config) { c.nodeTimeout.set(timeout) }
}

// millis converts a duration to the whole milliseconds the library takes, rounding away from
// zero: a positive duration never becomes 0 (which would mean "the default" or "none"), nor
// does a negative one, which the library refuses with its own message. The range is never
// a concern here: the longest Duration is about 9.2e12 ms, far inside int64, so nothing needs
// to saturate; the library checks the range of each value.
func millis(d time.Duration) int64 {
	ms := int64(d / time.Millisecond)
	switch rest := d % time.Millisecond; {
	case rest > 0:
		ms++
	case rest < 0:
		ms--
	}
	return ms
}

// durationOfMillis is the duration of ms milliseconds from the library, the largest Duration
// for more than a Duration holds.
func durationOfMillis(ms int64) time.Duration {
	if ms > int64(math.MaxInt64/time.Millisecond) {
		return math.MaxInt64
	}
	return time.Duration(ms) * time.Millisecond
}

// configTexts is the text options of a config as C takes them: NUL-terminated, nil where
// the option keeps its default.
type configTexts struct {
	keyPrefix, tlsCAFile, tlsClientCert, tlsClientKey []byte
}

func (cfg *config) texts() (*configTexts, *Error) {
	// C takes a NULL certificate as none, whatever the key: here either file alone is a mistake.
	if (cfg.tlsClientCert == "") != (cfg.tlsClientKey == "") {
		return nil, invalidArgument("WithTLSClientCert needs both a certificate file and a key file, not %q and %q",
			cfg.tlsClientCert, cfg.tlsClientKey)
	}
	var texts configTexts
	for _, text := range []struct {
		what, value string
		c           *[]byte
	}{
		{"the key prefix", cfg.keyPrefix, &texts.keyPrefix},
		{"the TLS CA file path", cfg.tlsCAFile, &texts.tlsCAFile},
		{"the TLS client certificate path", cfg.tlsClientCert, &texts.tlsClientCert},
		{"the TLS client key path", cfg.tlsClientKey, &texts.tlsClientKey},
	} {
		if text.value == "" {
			continue
		}
		var err *Error
		if *text.c, err = nulTerminated(text.what, text.value); err != nil {
			return nil, err
		}
	}
	return &texts, nil
}

// nulTerminated is text as C takes it; C would silently cut it at an inner NUL, so that is refused.
func nulTerminated(what, text string) ([]byte, *Error) {
	if strings.IndexByte(text, 0) >= 0 {
		return nil, invalidArgument("%s contains a NUL byte", what)
	}
	return append([]byte(text), 0), nil
}
