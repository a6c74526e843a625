package redilock

import (
	"context"
	"runtime"
	"sync"
)

// Client is a lock client: one multiplexed Redis connection and one wake-up subscription,
// served by one I/O thread of the C library. It is safe for use by any number of goroutines;
// share one per process and Close it when done.
type Client struct {
	// mu is read-held by every call that uses handle; Close write-locks it, so the handle is
	// freed only once no call uses it.
	mu     sync.RWMutex
	handle clientHandle

	// closing is cancelled when Close begins: waits in flight end and new calls are refused.
	closing      context.Context
	startClosing context.CancelFunc
	closeOnce    sync.Once
	cleanup      runtime.Cleanup
}

// New creates a client for url: redis://[user:password@]host[:port][/db] or
// unix:///path/to/redis.sock. It does no I/O: the client connects on first use (see Ping)
// and reconnects by itself after Redis comes back.
func New(url string, options ...Option) (*Client, error) {
	var cfg config
	for _, option := range options {
		option(&cfg)
	}
	if cfg.err != nil {
		return nil, cfg.err
	}
	cURL, err := nulTerminated("the URL", url)
	if err != nil {
		return nil, err
	}
	cPrefix, err := nulTerminated("the key prefix", cfg.keyPrefix)
	if err != nil {
		return nil, err
	}
	handle, err := newClientHandle(cURL, cPrefix, &cfg)
	if err != nil {
		return nil, err
	}
	c := &Client{handle: handle}
	c.closing, c.startClosing = context.WithCancel(context.Background())
	// A backstop for a client that is dropped without Close.
	c.cleanup = runtime.AddCleanup(c, freeClient, handle)
	return c, nil
}

// freeClient reports the client's renewed locks as lost, then frees it. In that order: once
// freed, the address may be reused by a new client with renewals of its own.
func freeClient(handle clientHandle) {
	endRenewals(handle)
	freeClientHandle(handle)
}

// Close ends the waits in flight (their Lock calls return ErrClosed), waits for the other calls
// in flight to return, and frees the client. Locks still held are not released: their TTL ends
// them. Auto-renewal stops, so auto-renewed locks count as lost (Lost is closed, with a cause
// matching both ErrClosed and ErrLost). Close is idempotent, safe to call concurrently, and
// returns nil; every other method called once Close has begun returns ErrClosed.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.startClosing()
		c.mu.Lock()
		defer c.mu.Unlock()
		c.cleanup.Stop()
		freeClient(c.handle)
		c.handle = nil
	})
	return nil
}

// Ping checks that Redis answers, connecting first if needed.
func (c *Client) Ping(ctx context.Context) error {
	return c.call(ctx, pingCall)
}

// call runs one C call with the handle, unless ctx is already done or the client closed.
func (c *Client) call(ctx context.Context, fn func(clientHandle) *Error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	handle, err := c.borrow()
	if err != nil {
		return err
	}
	defer c.giveBack()
	return asError(fn(handle))
}

// borrow returns the handle for one call, which must end with giveBack; ErrClosed once Close
// has begun.
func (c *Client) borrow() (clientHandle, error) {
	c.mu.RLock()
	if c.closing.Err() != nil {
		c.mu.RUnlock()
		return nil, ErrClosed
	}
	return c.handle, nil
}

func (c *Client) giveBack() {
	c.mu.RUnlock()
	// The cleanup must not free the handle while a call was still using it.
	runtime.KeepAlive(c)
}

// asError keeps a nil *Error from becoming a non-nil error.
func asError(err *Error) error {
	if err == nil {
		return nil
	}
	return err
}
