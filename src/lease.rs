//! A held lock is a lease: it ends at its TTL unless extended. This module holds what a
//! successful acquisition returns and the auto-renewal that keeps a lease alive while its
//! holder works, telling the holder at once when the lease is lost.

use crate::client::WeakClient;
use crate::flag::Flag;
use crate::token::Token;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::{sleep, sleep_until, timeout_at, Instant};

/// A successful acquisition: the owner token (needed to unlock or extend) and the fencing
/// number, which strictly increases with every acquisition of the same lock name by anyone.
/// Pass the fencing number to the resource you protect so it can reject writes that carry an
/// older one: a paused holder can outlive its lease, and only fencing stops its late writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub token: Token,
    pub fence: u64,
    /// The TTL it was taken with, and when the successful attempt was sent (the lease runs
    /// from then, by the holder's clock): what auto-renewal needs.
    pub(crate) ttl: Duration,
    pub(crate) acquired_at: Instant,
}

/// How auto-renewal behaves (see [`crate::Client::keep_alive`]).
#[derive(Default)]
pub struct KeepAlive {
    /// Stop renewing once the lock has been held this long (the lease then runs out at its
    /// TTL and counts as lost). `None`: renew until unlocked.
    pub max_hold: Option<Duration>,
    /// Called once, on a thread of its own, when the lease is lost.
    pub on_lost: Option<Box<dyn FnOnce() + Send>>,
}

/// Handle to one lock's auto-renewal. Renewal stops at unlock (or when every handle and the
/// client's own record are gone); cloning shares the state.
#[derive(Clone)]
pub struct Renewal {
    pub(crate) state: Arc<RenewalState>,
}

pub(crate) struct RenewalState {
    lost: Flag,
    stopped: Flag,
    on_lost: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl Renewal {
    /// True once the lease is known to be lost (renewal found the lock gone, or could not
    /// reach Redis before the lease ran out). Unlock then reports `NotOwner`.
    pub fn is_lost(&self) -> bool {
        self.state.is_lost()
    }

    /// Resolves when the lease is lost; never, if it is unlocked first.
    pub async fn lost(&self) {
        self.state.lost.wait().await
    }
}

impl RenewalState {
    pub(crate) fn new(on_lost: Option<Box<dyn FnOnce() + Send>>) -> Arc<Self> {
        Arc::new(RenewalState {
            lost: Flag::default(),
            stopped: Flag::default(),
            on_lost: Mutex::new(on_lost),
        })
    }

    pub(crate) fn is_lost(&self) -> bool {
        self.lost.is_set()
    }

    /// Stops renewing (unlock); returns whether the lease had been lost before.
    pub(crate) fn stop(&self) -> bool {
        self.stopped.set();
        self.is_lost()
    }

    fn mark_lost(&self) {
        if self.stopped.is_set() || self.lost.set() {
            return;
        }
        let callback = self
            .on_lost
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(callback) = callback {
            // A thread of its own, outside any runtime: the callback may call back into the
            // library (unlock, lock) without deadlocking the renewal machinery.
            std::thread::spawn(callback);
        }
    }
}

/// Keeps a lease alive: extends it at about a third of its TTL; retries quickly while Redis
/// cannot be reached; declares it lost when the lock is gone or the lease ran out unrenewed.
pub(crate) async fn renew(
    client: WeakClient,
    key: Vec<u8>,
    token: Token,
    ttl: Duration,
    acquired_at: Instant,
    max_hold: Option<Duration>,
    state: Arc<RenewalState>,
) {
    let interval = (ttl / 3).max(Duration::from_millis(1));
    let hold_until = max_hold.map(|hold| acquired_at + hold);
    let mut lease_ends = acquired_at + ttl;
    let mut next = acquired_at + interval;
    // Ends with Err when the lease is lost, Ok when there is nobody left to tell.
    let work = async {
        loop {
            sleep_until(next).await;
            let now = Instant::now();
            let extend_by = match hold_until {
                Some(limit) if limit <= now => {
                    // Hold time used up: let the lease run out, then report it gone.
                    sleep_until(lease_ends).await;
                    return Err(());
                }
                Some(limit) => ttl.min(limit - now).max(Duration::from_millis(1)),
                None => ttl,
            };
            let Some(client) = client.upgrade() else {
                return Ok(());
            }; // client dropped
            match timeout_at(lease_ends, client.extend_key(&key, &token, extend_by)).await {
                Ok(Ok(true)) => {
                    lease_ends = now + extend_by;
                    next = now + (extend_by / 3).max(Duration::from_millis(1));
                }
                Ok(Ok(false)) => return Err(()), // the lock is gone or someone else's
                Ok(Err(_)) => {
                    // Redis unreachable for now: try again soon, while the lease lasts.
                    if Instant::now() >= lease_ends {
                        return Err(());
                    }
                    sleep(RETRY_WHEN_UNREACHABLE.min(interval)).await;
                    next = Instant::now();
                }
                Err(_) => return Err(()), // the lease ran out while waiting for Redis
            }
        }
    };
    tokio::select! {
        outcome = work => if outcome.is_err() { state.mark_lost() },
        _ = state.stopped.wait() => {}
    }
}

const RETRY_WHEN_UNREACHABLE: Duration = Duration::from_millis(100);
