//! A held lock is a lease: it ends at its TTL unless extended. This is what a successful
//! acquisition returns.

use crate::token::Token;
use std::time::Duration;
use tokio::time::Instant;

/// A successful acquisition: the owner token (needed to unlock or extend) and the fencing
/// number, which strictly increases with every acquisition of the same lock name by anyone.
/// Pass the fencing number to the resource you protect so it can reject writes that carry an
/// older one: a paused holder can outlive its lease, and only fencing stops its late writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The secret that proves ownership: needed to unlock, extend or auto-renew the lock.
    pub token: Token,
    /// The fencing number of this acquisition (see above).
    pub fence: u64,
    /// How long the lock was sure to stay this lease's when the lock call returned, unless
    /// extended: the TTL less the time the acquisition took (with a quorum client, less an
    /// allowance for the masters' clocks drifting apart too). Work that must finish while the
    /// lock is held has to fit in it.
    pub validity: Duration,
    /// The TTL it was taken with, and when the successful attempt was sent (the lease runs
    /// from then, by the holder's clock): what auto-renewal needs.
    pub(crate) ttl: Duration,
    pub(crate) acquired_at: Instant,
    /// When the lease ends by the holder's clock, unless extended.
    pub(crate) ends_at: Instant,
}

impl Lease {
    /// The lease of `token` under `fence`, taken with `ttl` by an attempt sent at
    /// `acquired_at`, sure until `ends_at`.
    pub(crate) fn new(
        token: Token,
        fence: u64,
        ttl: Duration,
        acquired_at: Instant,
        ends_at: Instant,
    ) -> Lease {
        Lease {
            token,
            fence,
            validity: ends_at.saturating_duration_since(Instant::now()),
            ttl,
            acquired_at,
            ends_at,
        }
    }
}
