package redilock_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	redilock "github.com/redilock/redilock/bindings/go"
)

func ExampleClient_Lock() {
	c, err := redilock.New(os.Getenv("REDIS_URL"), redilock.WithDefaultTTL(30*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	lock, err := c.Lock(ctx, "example:orders:42", 10*time.Second)
	if err != nil {
		log.Fatal(err) // errors.Is(err, redilock.ErrNotAcquired) if 5 s were not enough
	}
	defer lock.Unlock(ctx)
	fmt.Println("holding", lock.Name())
	// Output: holding example:orders:42
}

func ExampleClient_TryLock() {
	c, err := redilock.New(os.Getenv("REDIS_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	first, err := c.TryLock(ctx, "example:report", time.Minute)
	if err != nil {
		log.Fatal(err)
	}
	_, err = c.TryLock(ctx, "example:report", time.Minute)
	fmt.Println("second attempt:", errors.Is(err, redilock.ErrNotAcquired))

	fmt.Println("unlock:", first.Unlock(ctx))
	fmt.Println("unlock again:", errors.Is(first.Unlock(ctx), redilock.ErrNotOwner))
	// Output:
	// second attempt: true
	// unlock: <nil>
	// unlock again: true
}

func ExampleClient_WithLock() {
	c, err := redilock.New(os.Getenv("REDIS_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	err = c.WithLock(context.Background(), "example:nightly", time.Minute, func(ctx context.Context) error {
		fmt.Println("only one process runs this at a time")
		return nil
	})
	fmt.Println("err:", err)
	// Output:
	// only one process runs this at a time
	// err: <nil>
}

func ExampleError() {
	c, err := redilock.New(os.Getenv("REDIS_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	held, err := c.TryLock(context.Background(), "example:busy", time.Minute)
	if err != nil {
		log.Fatal(err)
	}
	defer held.Unlock(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = c.Lock(ctx, "example:busy", time.Minute)
	var failure *redilock.Error
	if errors.As(err, &failure) {
		fmt.Println("status:", failure.Status == redilock.StatusNotAcquired)
	}
	fmt.Println("not acquired:", errors.Is(err, redilock.ErrNotAcquired))
	fmt.Println("deadline:", errors.Is(err, context.DeadlineExceeded))
	// Output:
	// status: true
	// not acquired: true
	// deadline: true
}

func ExampleAutoRenew() {
	c, err := redilock.New(os.Getenv("REDIS_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	lock, err := c.Lock(ctx, "example:migration", 2*time.Second, redilock.AutoRenew())
	if err != nil {
		log.Fatal(err)
	}
	defer lock.Unlock(ctx)
	// Send the fence with every write; the store refuses fences older than the newest it saw.
	fence := lock.Fence()

	select {
	case <-lock.Lost():
		fmt.Println("lost: stop writing")
	case <-time.After(3 * time.Second): // work that outlasts the TTL
		fmt.Println("still held past the TTL; fence > 0:", fence > 0)
	}
	// Output: still held past the TTL; fence > 0: true
}

func ExampleLock_Extend() {
	c, err := redilock.New(os.Getenv("REDIS_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	lock, err := c.TryLock(ctx, "example:import", 10*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	defer lock.Unlock(ctx)
	fmt.Println("extend:", lock.Extend(ctx, time.Minute)) // the job needs longer
	left, err := lock.RemainingTTL(ctx)
	fmt.Println("more than 50 s left:", left > 50*time.Second, err)
	fmt.Println("negative:", lock.Extend(ctx, -time.Second)) // refused by the library
	// Output:
	// extend: <nil>
	// more than 50 s left: true <nil>
	// negative: redilock: the TTL must not be negative, not -1000 ms
}

func ExampleNewQuorum() {
	// Independent masters, no replication between them: a lock needs a majority (2 of 3).
	masters := []string{os.Getenv("REDIS_URL_1"), os.Getenv("REDIS_URL_2"), os.Getenv("REDIS_URL_3")}
	c, err := redilock.NewQuorum(masters, redilock.WithNodeTimeout(200*time.Millisecond))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	lock, err := c.Lock(ctx, "example:ledger", 10*time.Second)
	if errors.Is(err, redilock.ErrQuorumUnavailable) {
		log.Fatal("too few masters answered: ", err) // the message names each one
	}
	if err != nil {
		log.Fatal(err)
	}
	defer lock.Unlock(ctx)
	// Finish within the validity, and send the fence with every write.
	fmt.Println("validity under the TTL:", lock.Validity() > 0 && lock.Validity() < 10*time.Second)
	fmt.Println("fence > 0:", lock.Fence() > 0)
	// Output:
	// validity under the TTL: true
	// fence > 0: true
}
