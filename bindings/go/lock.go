//go:build cgo

package redilock

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Lock is a lock held by this client. Give it up with Unlock; if it is not unlocked its TTL
// ends it (with AutoRenew: Close or a loss ends it, or, as a backstop, the garbage collector
// once the Lock is unreachable). A Lock may be used from any goroutine.
type Lock struct {
	client   *Client
	name     string
	cName    []byte // name with a NUL, as C takes it
	token    tokenBuffer
	fence    uint64
	validity time.Duration
	renewal  *renewal // nil without AutoRenew
}

// Lock acquires the lock name for ttl (0: the client's default TTL), waiting while another
// owner holds it. Waiters queue: an Unlock hands the lock to the one that has waited longest,
// woken at once. The wait ends when the lock is acquired, when ctx is cancelled (the error
// matches context.Canceled and has StatusCancelled), at ctx's deadline (the error matches both
// ErrNotAcquired and context.DeadlineExceeded), or when the client is closed (ErrClosed).
// Each waiting Lock occupies an OS thread, inside the C call.
//
// Lock returns a lock or an error, and an error leaves no lock behind: when ctx ends or the
// client closes while an attempt is in flight, the library gives back what the attempt took.
//
// Options: AutoRenew, MaxHold. A renewal starts only once a lock is returned.
func (c *Client) Lock(ctx context.Context, name string, ttl time.Duration, options ...LockOption) (*Lock, error) {
	return c.lock(ctx, name, ttl, true, options)
}

// TryLock makes one attempt to acquire the lock name for ttl (0: the client's default TTL):
// ErrNotAcquired if another owner holds it. ctx is checked before the attempt, which is one
// round trip bounded by the client's command timeout. Options as for Lock.
func (c *Client) TryLock(ctx context.Context, name string, ttl time.Duration, options ...LockOption) (*Lock, error) {
	return c.lock(ctx, name, ttl, false, options)
}

// WithLock runs fn while holding the lock name, acquired as Lock does with AutoRenew, and
// unlocks it when fn returns or panics. The lock is renewed while fn runs (options may add
// MaxHold); if it is lost, fn's context is cancelled at once with a cause matching ErrLost
// (context.Cause), since from then on the lock no longer protects the work. The error is fn's,
// joined with Unlock's if that failed (errors.Is(err, ErrNotOwner) after a loss).
func (c *Client) WithLock(ctx context.Context, name string, ttl time.Duration, fn func(ctx context.Context) error, options ...LockOption) (err error) {
	lock, err := c.Lock(ctx, name, ttl, append([]LockOption{AutoRenew()}, options...)...)
	if err != nil {
		return err
	}
	defer func() {
		if unlockErr := lock.Unlock(ctx); unlockErr != nil {
			err = errors.Join(err, unlockErr)
		}
	}()
	held, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	lost := lock.renewal.lost
	stopWatching := context.AfterFunc(lost, func() { cancel(context.Cause(lost)) })
	defer stopWatching()
	return fn(held)
}

// Unlock gives up the lock if this owner still holds it, handing it to the first waiter in
// line. It returns an error matching ErrNotOwner if the lock expired, was already unlocked, or
// was taken by another owner after expiring; nothing is deleted then.
//
// Unlock is one round trip bounded by the client's command timeout. It is attempted even when
// ctx is done, so that a deferred Unlock still unlocks after the caller's context ended. Unlock on a nil *Lock returns ErrNotOwner.
func (l *Lock) Unlock(ctx context.Context) error {
	if l == nil {
		return ErrNotOwner
	}
	if l.renewal != nil {
		l.renewal.backstop.Stop()
	}
	return unlock(l.client, l.cName, &l.token, l.renewal)
}

// unlock is Unlock's work, which the backstop of a dropped lock shares. r is the lock's
// renewal, nil without one. ErrClosed after Close, which has ended the renewal already.
func unlock(c *Client, cName []byte, token *tokenBuffer, r *renewal) error {
	handle, err := c.borrow()
	if err != nil {
		return err
	}
	defer c.giveBack()
	failed := unlockCall(handle, cName, token)
	if r != nil {
		r.unlocked(failed)
	}
	return asError(failed)
}

// Name is the lock's name, without the client's key prefix.
func (l *Lock) Name() string {
	return l.name
}

// Token is the random owner token stored in Redis while the lock is held (32 characters).
func (l *Lock) Token() string {
	return string(l.token[:len(l.token)-1])
}

func (c *Client) lock(ctx context.Context, name string, ttl time.Duration, wait bool, options []LockOption) (*Lock, error) {
	var settings lockSettings
	if len(options) > 0 { // applying them allocates: keep the plain path free of it
		settings = applyLockOptions(options)
	}
	cName, invalid := nulTerminated("the lock name", name)
	if invalid != nil {
		return nil, invalid
	}
	if err := ctx.Err(); err != nil {
		return nil, contextEnded(name, err)
	}
	timeoutMs := noWait
	deadline, hasDeadline := ctx.Deadline()
	if wait {
		timeoutMs = waitForever
		if hasDeadline {
			left := time.Until(deadline)
			if left <= 0 {
				return nil, contextEnded(name, context.DeadlineExceeded)
			}
			timeoutMs = millis(left)
		}
	}

	handle, err := c.borrow()
	if err != nil {
		return nil, err
	}
	defer c.giveBack()
	var cancel cancelHandle
	if wait {
		signal, failed := newCancelSignal()
		if failed != nil {
			return nil, failed
		}
		defer signal.free()
		stopOnDone := context.AfterFunc(ctx, signal.trigger)
		defer stopOnDone()
		cancel = signal.handle
	}

	lock := &Lock{client: c, name: name, cName: cName}
	if settings.autoRenew {
		lock.renewal = newRenewal(c.closing)
	}
	failed := lockCall(handle, cName, ttl, timeoutMs, cancel, lock.renewal, settings.maxHold, &lock.token, &lock.fence, &lock.validity)
	switch {
	case failed == nil:
		if lock.renewal != nil {
			lock.unlockIfDropped()
		}
		return lock, nil
	case failed.Status == StatusCancelled:
		// Only ctx's end triggers the signal: report it, a deadline as not acquired.
		return nil, contextEnded(name, ctx.Err())
	case failed.Status == StatusNotAcquired && wait && hasDeadline:
		// The C timeout was ctx's deadline, which its timer may not have marked yet.
		failed.cause = context.DeadlineExceeded
	}
	return nil, failed
}

// cancelSignal is a C cancellation handle that context callbacks trigger from their own
// goroutines; mu keeps a trigger from running into free.
type cancelSignal struct {
	mu     sync.Mutex
	handle cancelHandle
}

func newCancelSignal() (*cancelSignal, *Error) {
	handle, err := newCancelHandle()
	if err != nil {
		return nil, err
	}
	return &cancelSignal{handle: handle}, nil
}

func (s *cancelSignal) trigger() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.handle != nil {
		triggerCancelHandle(s.handle)
	}
}

func (s *cancelSignal) free() {
	s.mu.Lock()
	defer s.mu.Unlock()
	freeCancelHandle(s.handle)
	s.handle = nil
}
