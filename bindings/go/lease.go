//go:build cgo

package redilock

import (
	"context"
	"math"
	"runtime"
	"sync/atomic"
	"time"
)

// LockOption configures one Lock, TryLock or WithLock call.
type LockOption func(*lockSettings)

type lockSettings struct {
	autoRenew bool
	maxHold   time.Duration // 0: no cap
}

// AutoRenew keeps the lock alive while it is held: the library resets its TTL at about a
// third of the TTL, from a thread of its own, until Unlock. If a renewal finds the lock gone,
// or cannot reach Redis before the lease runs out, the lock is lost: Lost is closed at once
// and Unlock returns ErrNotOwner. Closing the client also ends the renewal and counts as a
// loss. A renewed lock outlives its TTL, so always Unlock it (defer lock.Unlock(ctx)).
//
// As a backstop only, a renewed Lock that becomes unreachable without Unlock is unlocked by
// the garbage collector, so that it is not renewed until Close. That happens at no set time,
// and possibly as soon as the program stops using the Lock: keep it until Unlock, as a
// deferred Unlock does. After Close the backstop does nothing.
func AutoRenew() LockOption {
	return func(s *lockSettings) { s.autoRenew = true }
}

// MaxHold turns on AutoRenew with a cap: once the lock has been held for d, renewal stops,
// the lock expires at the end of its current TTL, and it is then reported lost (Lost is
// closed). d 0 means no cap (AutoRenew alone); a negative d is refused by the lock call
// (StatusInvalidArgument).
func MaxHold(d time.Duration) LockOption {
	return func(s *lockSettings) {
		s.autoRenew = true
		s.maxHold = d
	}
}

func applyLockOptions(options []LockOption) lockSettings {
	var settings lockSettings
	for _, option := range options {
		option(&settings)
	}
	return settings
}

// renewal is the Go side of one lock's auto-renewal: lost is cancelled when the lock is lost.
// The library holds it as the loss callback's data, through a cgo.Handle it drops when done.
type renewal struct {
	lost     context.Context
	markLost context.CancelCauseFunc
	closing  *atomic.Bool    // the client's: set while Close ends the renewals
	backstop runtime.Cleanup // unlocks the Lock if it is dropped without Unlock
}

func newRenewal(closing *atomic.Bool) *renewal {
	lost, markLost := context.WithCancelCause(context.Background())
	return &renewal{lost: lost, markLost: markLost, closing: closing}
}

// lockLost handles the loss callback. It runs on a library thread and must stay brief.
func (r *renewal) lockLost() {
	if r.closing.Load() {
		r.markLost(errClosedLost)
	} else {
		r.markLost(ErrLost)
	}
}

// unlocked ends the renewal after Unlock, which stopped it in C. NOT_OWNER means the lease
// was lost before, whether or not its callback ran.
func (r *renewal) unlocked(failed *Error) {
	if failed != nil && failed.Status == StatusNotOwner {
		r.markLost(ErrLost)
	}
}

// droppedLock is what unlocking a Lock takes, copied out of it: the cleanup that unlocks it
// must not reference the Lock, which would then never become unreachable.
type droppedLock struct {
	client  *Client
	cName   []byte
	token   tokenBuffer
	renewal *renewal
}

// unlockIfDropped sets the backstop of an auto-renewed lock, which the library would
// otherwise renew until Close if it were dropped without Unlock. The cleanup keeps the client
// reachable, so the client's own cleanup cannot free the handle before it has run.
func (l *Lock) unlockIfDropped() {
	l.renewal.backstop = runtime.AddCleanup(l, unlockDropped,
		droppedLock{client: l.client, cName: l.cName, token: l.token, renewal: l.renewal})
}

// unlockDropped unlocks a dropped lock, which also stops its renewal; the result has nobody
// to go to. In a goroutine of its own, so that the round trip holds up no other cleanup.
func unlockDropped(lock droppedLock) {
	go unlock(lock.client, lock.cName, &lock.token, lock.renewal)
}

// Fence is the lock's fencing number: it strictly increases with every acquisition of this
// name, by any client. Send it with each write to the resource the lock protects, and have
// the resource refuse numbers older than the newest it has seen: a holder paused past its
// TTL can still write late, and only fencing stops those writes.
func (l *Lock) Fence() uint64 {
	return l.fence
}

// Validity is how long the lock was sure to stay held when the lock call returned, unless
// extended or renewed: its TTL less the time the acquisition took and, for a quorum client
// (NewQuorum), less an allowance for the masters' clocks drifting apart. Work that must finish
// under the lock has to fit in it.
func (l *Lock) Validity() time.Duration {
	return l.validity
}

// Lost is closed as soon as an auto-renewed lock is lost (see AutoRenew); Unlock then
// returns ErrNotOwner. It stays open after a successful Unlock. For a lock taken without
// AutoRenew it is nil, which blocks forever in a select: no loss is watched for such a lock,
// which simply ends at its TTL.
func (l *Lock) Lost() <-chan struct{} {
	if l.renewal == nil {
		return nil
	}
	return l.renewal.lost.Done()
}

// Extend resets the lock's TTL to ttl, atomically and only if this owner still holds it:
// otherwise it returns ErrNotOwner and never re-creates an expired lock. ttl must be positive
// (it is rounded up to a millisecond); the library refuses an invalid one, with
// StatusInvalidArgument, before anything is sent. With AutoRenew, later renewals go back to
// the TTL the lock was taken with. ctx is checked before the call, which is one round trip
// bounded by the command timeout.
func (l *Lock) Extend(ctx context.Context, ttl time.Duration) error {
	return l.client.call(ctx, func(handle clientHandle) *Error {
		return extendCall(handle, l.cName, &l.token, ttl)
	})
}

// RemainingTTL is how long the lock has left, to the millisecond; ErrNotOwner if this owner
// no longer holds it. A key without expiry (which only other software makes) reports the
// largest Duration. ctx is checked before the call, which is one round trip.
func (l *Lock) RemainingTTL(ctx context.Context) (time.Duration, error) {
	var remainingMs int64
	err := l.client.call(ctx, func(handle clientHandle) (failed *Error) {
		remainingMs, failed = remainingTTLCall(handle, l.cName, &l.token)
		return failed
	})
	if err != nil {
		return 0, err
	}
	if remainingMs == noExpiry {
		return math.MaxInt64, nil
	}
	return durationOfMillis(remainingMs), nil
}
