package main

import (
	"errors"
	"fmt"

	"github.com/go-redsync/redsync/v4"
	"github.com/go-redsync/redsync/v4/redis/goredis/v9"
	goredislib "github.com/redis/go-redis/v9"
)

// redsyncClient is redsync over go-redis, one pool. Lock waits its default way: up to 32 tries
// 50-250 ms apart, then ErrTaken (or ErrFailed), on which the waiter asks again.
type redsyncClient struct{ rs *redsync.Redsync }

type redsyncLock struct{ mutex *redsync.Mutex }

func newRedsync(url string) (client, error) {
	options, err := goredislib.ParseURL(url)
	if err != nil {
		return nil, err
	}
	return redsyncClient{redsync.New(goredis.NewPool(goredislib.NewClient(options)))}, nil
}

func (r redsyncClient) TryLock(name string) (held, error) {
	mutex := r.rs.NewMutex(name, redsync.WithExpiry(ttl))
	return redsyncLock{mutex}, mutex.TryLock()
}

func (r redsyncClient) Lock(name string) (held, error) {
	mutex := r.rs.NewMutex(name, redsync.WithExpiry(ttl))
	for {
		err := mutex.Lock()
		var taken *redsync.ErrTaken
		if !errors.Is(err, redsync.ErrFailed) && !errors.As(err, &taken) {
			return redsyncLock{mutex}, err
		}
	}
}

func (l redsyncLock) Unlock() error {
	ok, err := l.mutex.Unlock()
	if err == nil && !ok {
		err = fmt.Errorf("%s was not held", l.mutex.Name())
	}
	return err
}
