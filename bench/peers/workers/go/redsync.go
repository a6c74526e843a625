package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/go-redsync/redsync/v4"
	redsyncredis "github.com/go-redsync/redsync/v4/redis"
	"github.com/go-redsync/redsync/v4/redis/goredis/v9"
	goredislib "github.com/redis/go-redis/v9"
)

// redsyncClient is redsync over go-redis, one pool per URL: with several (independent masters),
// a lock is held when a quorum of them granted it, its default N/2+1. Lock waits its default
// way: up to 32 tries 50-250 ms apart, then ErrTaken (or ErrFailed), on which the waiter asks
// again.
type redsyncClient struct{ rs *redsync.Redsync }

type redsyncLock struct{ mutex *redsync.Mutex }

// newRedsync takes one URL, or several separated by spaces.
func newRedsync(urls string) (client, error) {
	var pools []redsyncredis.Pool
	for _, url := range strings.Fields(urls) {
		options, err := goredislib.ParseURL(url)
		if err != nil {
			return nil, err
		}
		pools = append(pools, goredis.NewPool(goredislib.NewClient(options)))
	}
	return redsyncClient{redsync.New(pools...)}, nil
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
