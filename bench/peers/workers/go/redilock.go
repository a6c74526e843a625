package main

import (
	"context"

	redilock "github.com/redilock/redilock/bindings/go"
)

// redilockClient is libredilock through its Go binding. Lock waits its default way: in the
// lock's queue, handed the lock by the Unlock before it (the retry interval, default 10 s, is
// only a safety net).
type redilockClient struct{ c *redilock.Client }

type redilockLock struct{ lock *redilock.Lock }

func newRedilock(url string) (client, error) {
	c, err := redilock.New(url, redilock.WithDefaultTTL(ttl))
	return redilockClient{c}, err
}

func (r redilockClient) TryLock(name string) (held, error) {
	lock, err := r.c.TryLock(context.Background(), name, 0)
	return redilockLock{lock}, err
}

func (r redilockClient) Lock(name string) (held, error) {
	lock, err := r.c.Lock(context.Background(), name, 0)
	return redilockLock{lock}, err
}

func (l redilockLock) Unlock() error { return l.lock.Unlock(context.Background()) }
