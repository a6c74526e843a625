package redilock

import (
	"strings"
	"time"
)

// Option configures a Client in New.
type Option func(*config)

type config struct {
	retryInterval  time.Duration
	connectTimeout time.Duration
	commandTimeout time.Duration
	defaultTTL     time.Duration
	keyPrefix      string
	err            *Error // the first invalid option
}

// WithDefaultTTL sets the TTL used by lock calls that pass ttl 0. Without it (or with 0)
// every lock call must pass a TTL.
func WithDefaultTTL(ttl time.Duration) Option {
	return func(c *config) {
		c.defaultTTL = ttl
		c.require(ttl >= 0, "the default TTL must not be negative")
	}
}

// WithRetryInterval sets how often a waiter re-checks a held lock when no release message
// reaches it (default 250ms). Release messages wake waiters sooner.
func WithRetryInterval(interval time.Duration) Option {
	return func(c *config) {
		c.retryInterval = interval
		c.require(interval > 0, "the retry interval must be positive")
	}
}

// WithConnectTimeout sets how long establishing a connection may take (default 2s).
func WithConnectTimeout(timeout time.Duration) Option {
	return func(c *config) {
		c.connectTimeout = timeout
		c.require(timeout > 0, "the connect timeout must be positive")
	}
}

// WithCommandTimeout sets how long one Redis command may wait for its reply (default 2s).
// It bounds TryLock, Unlock, Ping and each attempt of Lock.
func WithCommandTimeout(timeout time.Duration) Option {
	return func(c *config) {
		c.commandTimeout = timeout
		c.require(timeout > 0, "the command timeout must be positive")
	}
}

// WithKeyPrefix puts prefix in front of every lock name to form its Redis key (e.g. "myapp:").
// The default "" makes the key the name itself.
func WithKeyPrefix(prefix string) Option {
	return func(c *config) { c.keyPrefix = prefix }
}

func (c *config) require(valid bool, message string) {
	if !valid && c.err == nil {
		c.err = invalidArgument("%s", message)
	}
}

// millis converts a duration for C, rounding up so that a positive duration stays positive.
func millis(d time.Duration) uint64 {
	if d <= 0 {
		return 0
	}
	return uint64((d + time.Millisecond - 1) / time.Millisecond)
}

// nulTerminated is text as C takes it; C would silently cut it at an inner NUL, so that is refused.
func nulTerminated(what, text string) ([]byte, *Error) {
	if strings.IndexByte(text, 0) >= 0 {
		return nil, invalidArgument("%s contains a NUL byte", what)
	}
	return append([]byte(text), 0), nil
}
