//go:build cgo

package redilock

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
)

// Client is a lock client: one multiplexed Redis connection and one wake-up subscription
// (one of each per master for NewQuorum), served by one I/O thread of the C library. It is
// safe for use by any number of goroutines; share one per process and Close it when done.
type Client struct {
	// mu is read-held by every call that uses handle; Close write-locks it to free the handle,
	// so that no call runs during or after the free.
	mu     sync.RWMutex
	handle clientHandle // nil once freed

	// closing is set when Close begins: new calls are refused, and the loss callbacks that
	// the library then runs for the renewed locks tell a Close from any other loss. A separate
	// object, so that a renewal held by C does not keep the Client reachable.
	closing   *atomic.Bool
	closeOnce sync.Once
	cleanup   runtime.Cleanup
}

// New creates a client for url: redis://[user:password@]host[:port][/db], the same with
// rediss:// for TLS (the server's certificate verified against the system's roots or
// WithTLSCAFile; a trailing #insecure skips that, for tests only),
// unix:///path/to/redis.sock, redis+sentinel://host[:port],host[:port]/PRIMARY_NAME[/db]
// (the primary Sentinel names, followed across failovers) or
// redis+cluster://host:port,host:port (a Redis Cluster), the last two also with rediss+.
// It does no I/O: the client connects on first use (see Ping)
// and reconnects by itself after Redis comes back; a TLS handshake that fails then is ErrTLS.
// A URL it cannot parse is StatusInvalidArgument, whose message shows it with the password
// masked (user:***@).
func New(url string, options ...Option) (*Client, error) {
	return newClient([]string{url}, false, options)
}

// NewQuorum creates a quorum client ("Redlock") over independent masters: at least 3, each a
// single-server URL as New takes it (redis://, rediss:// or unix://), each a separate server.
// Every method works as on a client of New, asking every master at once: a lock is held when
// a quorum of them (a majority unless WithQuorum says otherwise) granted it with time left of
// its TTL, its Validity; Extend and AutoRenew need a quorum too. Too many masters failing or
// silent past WithNodeTimeout is ErrQuorumUnavailable, never ErrNotAcquired.
//
// Fence numbers strictly increase across holders as long as no master loses its data (run
// the masters with persistence). Waiters are woken by a release on any master, but they do
// not take turns across masters: a quorum client always barges (WithFair does not apply).
//
// Fewer than 3 URLs, a URL that is not one server, the same server twice and a quorum out of
// range are StatusInvalidArgument. Like New, it does no I/O.
func NewQuorum(urls []string, options ...Option) (*Client, error) {
	return newClient(urls, true, options)
}

// newClient is New (quorum false, one URL) or NewQuorum.
func newClient(urls []string, quorum bool, options []Option) (*Client, error) {
	var cfg config
	for _, option := range options {
		option(&cfg)
	}
	texts, err := cfg.texts()
	if err != nil {
		return nil, err
	}
	handle, err := newClientHandle(urls, quorum, &cfg, texts)
	if err != nil {
		return nil, err
	}
	c := &Client{handle: handle, closing: new(atomic.Bool)}
	// A backstop for a client that is dropped without Close.
	c.cleanup = runtime.AddCleanup(c, freeClientHandle, handle)
	return c, nil
}

// Close ends the waits in flight (their Lock calls return ErrClosed, and a lock that an
// attempt in flight took is given back before they return), waits for the other calls in
// flight to return, and frees the client. Locks still held are not unlocked: their TTL ends
// them. Auto-renewal stops, so auto-renewed locks count as lost (Lost is closed, with a cause
// matching both ErrClosed and ErrLost). Close is idempotent, safe to call concurrently, and
// returns nil; every other method called once Close has begun returns ErrClosed.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.closing.Store(true)
		// Thread-safe, unlike the free: it ends the calls that wait, so they give back mu.
		closeClientHandle(c.handle)
		c.mu.Lock()
		defer c.mu.Unlock()
		c.cleanup.Stop()
		freeClientHandle(c.handle)
		c.handle = nil
	})
	return nil
}

// Ping checks that Redis answers, connecting first if needed.
func (c *Client) Ping(ctx context.Context) error {
	return c.call(ctx, pingCall)
}

// call runs one C call with the handle, unless ctx is already done or the client freed.
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
// has begun (calls already in the library get its CLOSED).
func (c *Client) borrow() (clientHandle, error) {
	c.mu.RLock()
	if c.closing.Load() {
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
