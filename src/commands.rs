//! Every call the lock sends to Redis and what its replies mean, shared by the async client
//! (over the multiplexed connection) and the blocking client (over direct connections).

use crate::scripts::{
    companion_key, wake_channel, Companion, ABANDON, ACQUIRE, EXTEND, RELEASE, REMAINING,
};
use crate::token::Token;
use redis::{Cmd, ScriptInvocation};
use std::time::Duration;

pub(crate) enum Call {
    /// EVALSHA, with the script loaded on NOSCRIPT.
    Script(ScriptInvocation<'static>),
    Command(Cmd),
}

/// Takes the lock when it is free and no earlier waiter is queued; the reply becomes an
/// [`Attempt`]. With `queue_for`, a refused caller joins the queue (or keeps its place) for
/// that long; without, it only tries once.
pub(crate) fn acquire(
    key: &[u8],
    token: &Token,
    ttl: Duration,
    queue_for: Option<Duration>,
) -> Call {
    let mut call = ACQUIRE.key(key);
    call.key(companion_key(Companion::Fence, key))
        .key(companion_key(Companion::Queue, key))
        .key(companion_key(Companion::Deadlines, key))
        .arg(token.as_str())
        .arg(ttl.as_millis() as u64)
        .arg(queue_for.map_or(0, |d| d.as_millis().max(1) as u64));
    Call::Script(call)
}

/// The atomic compare-and-delete that also wakes the next waiter; replies 1 when `token` held
/// the lock.
pub(crate) fn release(key: &[u8], token: &Token) -> Call {
    let mut call = RELEASE.key(key);
    call.key(companion_key(Companion::Queue, key))
        .arg(token.as_str())
        .arg(wake_channel(key));
    Call::Script(call)
}

/// Gives back what `token` holds when its caller stops without a lease: its place in the
/// queue, or a lock taken by an attempt whose reply was lost.
pub(crate) fn abandon(key: &[u8], token: &Token) -> Call {
    let mut call = ABANDON.key(key);
    call.key(companion_key(Companion::Queue, key))
        .key(companion_key(Companion::Deadlines, key))
        .arg(token.as_str())
        .arg(wake_channel(key));
    Call::Script(call)
}

/// The owner-checked PEXPIRE; replies 1 when `token` held the lock.
pub(crate) fn extend(key: &[u8], token: &Token, ttl: Duration) -> Call {
    let mut call = EXTEND.key(key);
    call.arg(token.as_str()).arg(ttl.as_millis() as u64);
    Call::Script(call)
}

/// The owner's remaining TTL in ms: -1 without expiry, -3 when `token` does not hold it.
pub(crate) fn remaining(key: &[u8], token: &Token) -> Call {
    let mut call = REMAINING.key(key);
    call.arg(token.as_str());
    Call::Script(call)
}

/// Anyone's remaining TTL in ms: -2 when free, -1 without expiry.
pub(crate) fn pttl(key: &[u8]) -> Call {
    let mut cmd = redis::cmd("PTTL");
    cmd.arg(key);
    Call::Command(cmd)
}

pub(crate) fn ping() -> Call {
    Call::Command(redis::cmd("PING"))
}

pub(crate) enum Attempt {
    /// Taken, with its fencing number.
    Acquired(u64),
    /// Held by another owner; remaining TTL when it has one.
    Held(Option<Duration>),
    /// Free, but it is the turn of a waiter queued earlier.
    Promised,
}

impl From<(i64, i64)> for Attempt {
    fn from(reply: (i64, i64)) -> Attempt {
        match reply {
            (1, fence) => Attempt::Acquired(fence as u64),
            (_, -2) => Attempt::Promised,
            (_, remaining_ms) => {
                Attempt::Held(u64::try_from(remaining_ms).ok().map(Duration::from_millis))
            }
        }
    }
}
