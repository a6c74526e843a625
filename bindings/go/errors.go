//go:build cgo

package redilock

import (
	"context"
	"errors"
	"fmt"
)

// Error is a failure reported by the library: its status, its message and, when a lock call
// ended because its context did, the context's error (reachable through errors.Is).
//
// errors.Is matches an *Error against the sentinels by status, so
// errors.Is(err, ErrNotAcquired) holds for every not-acquired outcome whatever its message.
type Error struct {
	Status  Status
	Message string
	cause   error
}

// Sentinels for errors.Is. The errors returned are *Error values with the same Status and a
// more specific Message.
var (
	// ErrInvalidArgument: an argument was refused before anything was sent (an empty name, a
	// duration out of range, a URL that does not parse, shown with its password masked).
	ErrInvalidArgument = &Error{Status: StatusInvalidArgument, Message: "invalid argument"}
	// ErrNotAcquired: another owner holds the lock and the attempt or the wait ended, including
	// at the context's deadline (then errors.Is(err, context.DeadlineExceeded) holds too).
	ErrNotAcquired = &Error{Status: StatusNotAcquired, Message: "lock not acquired"}
	// ErrNotOwner: Unlock found the lock expired, already unlocked, or taken by another owner.
	ErrNotOwner = &Error{Status: StatusNotOwner, Message: "lock not held by this owner"}
	// ErrConnection: Redis is unreachable, the connection broke, or a reply timed out.
	ErrConnection = &Error{Status: StatusConnection, Message: "connection to Redis failed"}
	// ErrRedis: Redis replied with an error (NOAUTH, NOPERM, READONLY, OOM, WRONGTYPE…).
	ErrRedis = &Error{Status: StatusRedis, Message: "Redis replied with an error"}
	// ErrNotReplicated: too few replicas acknowledged the lock write in time, so the lock was
	// released (a failover could have lost it).
	ErrNotReplicated = &Error{Status: StatusNotReplicated, Message: "lock not acknowledged by enough replicas"}
	// ErrQuorumUnavailable: a quorum client (NewQuorum) could not reach enough masters: more
	// than N − quorum failed or did not answer within the node timeout, so whether the lock is
	// free is unknown. The message names each master and its answer (passwords masked).
	// ErrNotAcquired, by contrast, means enough masters answered that the lock is held.
	ErrQuorumUnavailable = &Error{Status: StatusQuorumUnavailable, Message: "too few masters answered for a quorum"}
	// ErrTLS: the TLS handshake with Redis failed, or a certificate was refused (rediss://).
	ErrTLS = &Error{Status: StatusTLS, Message: "TLS handshake with Redis failed"}
	// ErrClosed: the Client was closed, before or during the call.
	ErrClosed = &Error{Status: StatusClosed, Message: "client is closed"}
	// ErrLost: an auto-renewed lock was lost (a renewal found it gone or taken, it could not
	// reach Redis before the lease ran out, MaxHold ran out, or the client was closed). It is
	// the cause of WithLock's context (context.Cause) once the lock is lost.
	ErrLost = errors.New("redilock: lock lost")

	// errClosedLost is the loss cause of a lock whose renewal Close ended.
	errClosedLost = fmt.Errorf("%w: %w", ErrClosed, ErrLost)
)

// Error returns the message, prefixed with "redilock: ".
func (e *Error) Error() string {
	if e.cause != nil {
		return fmt.Sprintf("redilock: %s: %v", e.Message, e.cause)
	}
	return "redilock: " + e.Message
}

// Is reports whether target is an *Error with the same Status (such as a sentinel).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Status == e.Status
}

// Unwrap returns the context error that ended a lock call, if that is what happened.
func (e *Error) Unwrap() error {
	return e.cause
}

// invalidArgument is a caller error found before calling the library.
func invalidArgument(format string, args ...any) *Error {
	return &Error{Status: StatusInvalidArgument, Message: fmt.Sprintf(format, args...)}
}

// contextEnded is the error of a lock call whose context ended (err is ctx.Err()): at a
// deadline it is a not-acquired outcome, otherwise a cancellation.
func contextEnded(name string, err error) *Error {
	if errors.Is(err, context.DeadlineExceeded) {
		return &Error{Status: StatusNotAcquired, Message: fmt.Sprintf("lock '%s' was not acquired before the deadline", name), cause: err}
	}
	return &Error{Status: StatusCancelled, Message: fmt.Sprintf("waiting for lock '%s' was cancelled", name), cause: err}
}
