package redilock_test

import (
	"context"
	"errors"
	"math"
	"strconv"
	"testing"
	"time"

	redilock "github.com/redilock/redilock/bindings/go"
)

// The library checks the count and the timeout, with its own message.
func TestReplicaAcksArguments(t *testing.T) {
	for _, call := range []struct {
		what    string
		options []redilock.Option
	}{
		{"count below ReplicaAcksAuto", []redilock.Option{redilock.WithReplicaAcks(redilock.ReplicaAcksAuto-1, 0)}},
		{"negative timeout", []redilock.Option{redilock.WithReplicaAcks(1, -time.Millisecond)}},
		{"timeout as long as the command timeout", []redilock.Option{
			redilock.WithCommandTimeout(time.Second), redilock.WithReplicaAcks(1, time.Second)}},
	} {
		failure := requireStatus(t, clientErr(redilock.New(redisURL(), call.options...)), redilock.StatusInvalidArgument)
		if failure.Message == "" {
			t.Errorf("%s: no message", call.what)
		}
	}
}

// The test server has no replica: a lock that one replica must acknowledge is released, and
// the call fails with ErrNotReplicated, leaving nothing held.
func TestTooFewReplicasIsErrNotReplicated(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	beyondInt32 := math.MaxInt32
	if strconv.IntSize == 64 {
		beyondInt32++ // stays beyond what a server has, rather than wrapping to a negative count
	}
	handles := redilock.RenewalHandles()
	for _, count := range []int{1, beyondInt32} {
		c := newClient(t, redilock.WithReplicaAcks(count, 50*time.Millisecond))
		name := lockName(t)
		for _, call := range []struct {
			what string
			do   func() error
		}{
			{"Lock", func() error { return lockErr(c.Lock(ctx, name, 10*time.Second)) }},
			{"TryLock", func() error { return lockErr(c.TryLock(ctx, name, 10*time.Second)) }},
			{"Lock with AutoRenew", func() error { return lockErr(c.Lock(ctx, name, 10*time.Second, redilock.AutoRenew())) }},
			{"WithLock", func() error {
				return c.WithLock(ctx, name, 10*time.Second, func(context.Context) error {
					return errors.New("fn ran without the lock")
				})
			}},
		} {
			err := call.do()
			if !errors.Is(err, redilock.ErrNotReplicated) {
				t.Errorf("count %d, %s: %v, want ErrNotReplicated", count, call.what, err)
			}
			if keyExists(t, name) || len(queue(t, redisURL(), name)) != 0 {
				t.Fatalf("count %d, %s left the lock held or queued", count, call.what)
			}
		}
	}
	if after := redilock.RenewalHandles(); after != handles {
		t.Errorf("the library holds %d renewal handles, want %d", after, handles)
	}
}

// Off (0), and the default (ReplicaAcksAuto) on a server without replicas, ask for none.
func TestReplicaAcksOffOrAutoWithoutReplicasLocks(t *testing.T) {
	for _, option := range []redilock.Option{
		redilock.WithReplicaAcks(0, 0),
		redilock.WithReplicaAcks(redilock.ReplicaAcksAuto, 50*time.Millisecond),
		redilock.WithReplicaAcks(redilock.ReplicaAcksAuto, 0),
	} {
		c := newClient(t, option)
		name := lockName(t)
		lock := mustLock(t, c, name)
		if err := lock.Extend(context.Background(), 20*time.Second); err != nil {
			t.Errorf("Extend: %v", err)
		}
		mustUnlock(t, lock)
	}
}
