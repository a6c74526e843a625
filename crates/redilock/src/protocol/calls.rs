//! Every call the lock sends to Redis and what its replies mean, whichever transport sends it.

use super::keys::{deadlines_key, fence_key, queue_key, wake_channel, withdrawn_key};
use super::scripts::{ACQUIRE, CLEANUP, EXTEND, RELEASE, REMAINING};
use crate::token::Token;
use redis::{Cmd, ScriptInvocation};
use std::time::Duration;

/// One call, and whether it may be sent again.
pub(crate) struct Call {
    pub(crate) request: Request,
    /// Sending it twice does what sending it once does, so a call whose reused connection
    /// turns out dead (Redis restarted while the client was idle) may be sent once more.
    pub(crate) idempotent: bool,
}

pub(crate) enum Request {
    /// EVALSHA, with the script loaded on NOSCRIPT.
    Script(ScriptInvocation<'static>),
    Command(Cmd),
}

/// How long a cleaned-up token stays withdrawn: longer than any copy of an attempt can stay
/// on its way (TCP gives up retransmitting after about 15 minutes), so a late copy never takes
/// the lock.
const WITHDRAWN_FOR: Duration = Duration::from_secs(30 * 60);

/// Takes the lock when it is free and no earlier waiter is queued; the reply becomes an
/// [`Attempt`]. With `keep_place_for`, a refused caller joins the queue (or keeps its place)
/// for that long; without, it only tries once. Sending it again is harmless: an attempt that
/// finds the lock already its own says so.
pub(crate) fn acquire(
    key: &[u8],
    token: &Token,
    ttl: Duration,
    keep_place_for: Option<Duration>,
) -> Call {
    let mut call = ACQUIRE.key(key);
    call.key(fence_key(key))
        .key(queue_key(key))
        .key(deadlines_key(key))
        .key(withdrawn_key(key))
        .arg(token.as_str())
        .arg(millis(ttl));
    // Trying once sends one argument less: Redis refuses more than 10 from a client that has
    // not authenticated, and that client should hear NOAUTH, not a protocol error.
    if let Some(keep_place_for) = keep_place_for {
        call.arg(millis(keep_place_for).max(1));
    }
    script(call, true)
}

/// The atomic compare-and-delete that also wakes the next waiter; replies 1 when `token` held
/// the lock. Not sent twice: a second one finds nothing and would report the lock as lost.
pub(crate) fn release(key: &[u8], token: &Token) -> Call {
    let mut call = RELEASE.key(key);
    call.key(queue_key(key))
        .arg(token.as_str())
        .arg(wake_channel(key));
    script(call, false)
}

/// Gives back everything `token` may hold when its caller stopped without a lease (see
/// cleanup.lua); replies 1 when it released the lock itself.
pub(crate) fn cleanup(key: &[u8], token: &Token) -> Call {
    let mut call = CLEANUP.key(key);
    call.key(queue_key(key))
        .key(deadlines_key(key))
        .key(withdrawn_key(key))
        .arg(token.as_str())
        .arg(wake_channel(key))
        .arg(millis(WITHDRAWN_FOR));
    script(call, true)
}

/// The owner-checked PEXPIRE; replies 1 when `token` held the lock.
pub(crate) fn extend(key: &[u8], token: &Token, ttl: Duration) -> Call {
    let mut call = EXTEND.key(key);
    call.arg(token.as_str()).arg(millis(ttl));
    script(call, true)
}

/// The owner's remaining TTL in ms: -1 without expiry, -3 when `token` does not hold it.
pub(crate) fn remaining(key: &[u8], token: &Token) -> Call {
    let mut call = REMAINING.key(key);
    call.arg(token.as_str());
    script(call, true)
}

/// Anyone's remaining TTL in ms: -2 when free, -1 without expiry.
pub(crate) fn pttl(key: &[u8]) -> Call {
    let mut cmd = redis::cmd("PTTL");
    cmd.arg(key);
    command(cmd)
}

pub(crate) fn ping() -> Call {
    command(redis::cmd("PING"))
}

fn script(invocation: ScriptInvocation<'static>, idempotent: bool) -> Call {
    Call {
        request: Request::Script(invocation),
        idempotent,
    }
}

fn command(cmd: Cmd) -> Call {
    Call {
        request: Request::Command(cmd),
        idempotent: true,
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

pub(crate) enum Attempt {
    /// Taken, with its fencing number.
    Acquired(u64),
    /// Held by another owner; remaining TTL when it has one.
    Held(Option<Duration>),
    /// Free, but it is the turn of a waiter queued earlier.
    OthersTurn,
    /// The token was withdrawn: the call this attempt belongs to has already ended.
    Withdrawn,
}

impl From<(i64, i64)> for Attempt {
    fn from(reply: (i64, i64)) -> Attempt {
        match reply {
            (1, fence) => Attempt::Acquired(fence as u64),
            (_, -2) => Attempt::OthersTurn,
            (_, -3) => Attempt::Withdrawn,
            (_, remaining_ms) => {
                Attempt::Held(u64::try_from(remaining_ms).ok().map(Duration::from_millis))
            }
        }
    }
}
