// Package redilock is a distributed lock on Redis, backed by the redilock C library.
//
//	c, err := redilock.New("redis://127.0.0.1:6379", redilock.WithDefaultTTL(30*time.Second))
//	if err != nil { ... }
//	defer c.Close()
//
//	lock, err := c.Lock(ctx, "orders:42", 10*time.Second)
//	if err != nil { ... } // errors.Is(err, redilock.ErrNotAcquired) when ctx's deadline passed
//	defer lock.Unlock(ctx)
//
// A lock is a Redis key holding a random owner token with a TTL; Unlock gives it up only if
// the token still holds it. Waiters queue in Redis: Unlock hands the lock to the first waiter
// in line, which is woken at once by a message, and the first in line also takes over when the
// holder's TTL runs out. The retry interval (WithRetryInterval, default 10s) is only a safety
// net for a lost message.
//
// Contexts are honoured inside the C call: cancelling ctx or reaching its deadline ends a
// waiting Lock within milliseconds, and Close ends it with ErrClosed. A cancel or a Close that
// reaches the call before it returns always wins: if an attempt in flight took the lock
// meanwhile, the library gives it back, so a failed Lock never leaves a lock behind.
//
// Leases: a lock taken with AutoRenew (as WithLock does) is renewed in the background until
// Unlock; Lost is closed at once if it is lost, and WithLock cancels fn's context then. Fence
// numbers every acquisition of a name, increasing, for the protected resource to check.
// Extend and RemainingTTL reset and read a held lock's TTL.
//
// Deployments: rediss:// URLs run every connection over TLS, verified against the system's
// roots or WithTLSCAFile, with WithTLSClientCert for mutual TLS (ErrTLS when a handshake
// fails). With replicas, each lock write waits for one to acknowledge it (WithReplicaAcks);
// a lock too few acknowledged is released, and the call returns ErrNotReplicated.
// redis+sentinel:// URLs name Sentinels and the primary they watch, which the client follows
// across failovers ([Sentinel]); redis+cluster:// URLs name nodes of a Redis Cluster, where each
// lock lives on the master of its name's slot and waiters are woken from every master
// ([Redis Cluster]). New lists the URL forms.
//
// Quorum ("Redlock"): NewQuorum takes the URLs of at least 3 independent masters, and every
// method asks them all at once; a lock is held when a quorum (a majority, or WithQuorum)
// granted it, and Validity is how long it is sure to stay held (its TTL less the time taken
// and a clock-drift allowance). Masters silent past WithNodeTimeout count as failed: too many
// is ErrQuorumUnavailable, whose message names each master, never ErrNotAcquired. Fences
// increase across holders only while no master loses its data (run them with persistence),
// and waiters are woken from any master but take no turns: a quorum client always barges.
//
// Linking: the package needs cgo. By default it links the static libredilock the module
// carries for linux/amd64 and linux/arm64 (internal/clib), so `go get` is all a program needs
// and it loads no libredilock.so. With -tags redilock_system it links the libredilock installed
// on the system instead, found by pkg-config, as a shared library.
//
// [Sentinel]: https://github.com/redilock/redilock/blob/main/docs/operations.md#sentinel
// [Redis Cluster]: https://github.com/redilock/redilock/blob/main/docs/operations.md#redis-cluster
package redilock
