//! Every call the lock sends to Redis and what its replies mean, whichever transport sends it.

use super::keys::{fence_key, queue_key, withdrawn_key};
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

/// What an acquire call does when the lock is not the caller's to take.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Queueing {
    /// Nothing: one attempt.
    TryOnce,
    /// Join the back of the queue.
    Join,
    /// Keep the caller's place (or, if it was lost, join again).
    Stay,
}

/// Takes the lock when it is free and nobody waits for it (or, when `barging`, whoever waits),
/// or when it is the caller's turn; otherwise queues the caller as `queueing` says. The reply
/// becomes an [`Attempt`]. Sending it again is harmless: an attempt that finds the lock
/// already its own says so.
pub(crate) fn acquire(
    key: &[u8],
    token: &Token,
    ttl: Duration,
    queueing: Queueing,
    barging: bool,
) -> Call {
    let mut call = ACQUIRE.key(key);
    call.key(fence_key(key))
        .key(queue_key(key))
        .key(withdrawn_key(key))
        .arg(token.as_str())
        .arg(millis(ttl));
    // Trying once sends one argument less: Redis refuses more than 10 from a client that has
    // not authenticated, and that client should hear NOAUTH, not a protocol error.
    let mode = match (barging, queueing) {
        (false, Queueing::TryOnce) => None,
        (false, Queueing::Join) => Some("join"),
        (false, Queueing::Stay) => Some("stay"),
        (true, Queueing::TryOnce) => Some("barge"),
        (true, Queueing::Join) => Some("barge join"),
        (true, Queueing::Stay) => Some("barge stay"),
    };
    if let Some(mode) = mode {
        call.arg(mode);
    }
    script(call, true)
}

/// The atomic compare-and-delete that hands the lock to the first waiter in line; replies 1
/// when `token` held the lock. Not sent twice: a second one finds nothing and would report the
/// lock as lost.
pub(crate) fn release(key: &[u8], token: &Token) -> Call {
    let mut call = RELEASE.key(key);
    call.key(fence_key(key))
        .key(queue_key(key))
        .arg(token.as_str());
    script(call, false)
}

/// Gives back everything `token` (which asked for `ttl`) may hold when its caller stopped
/// without a lease (see cleanup.lua); replies 1 when it released the lock itself.
pub(crate) fn cleanup(key: &[u8], token: &Token, ttl: Duration) -> Call {
    let mut call = CLEANUP.key(key);
    call.key(fence_key(key))
        .key(queue_key(key))
        .key(withdrawn_key(key))
        .arg(token.as_str())
        .arg(queue_entry(token, ttl))
        .arg(millis(WITHDRAWN_FOR));
    script(call, true)
}

/// A waiter's entry in the queue: its token, then the TTL it asked for.
fn queue_entry(token: &Token, ttl: Duration) -> String {
    format!("{}{}", token.as_str(), millis(ttl))
}

/// The owner-checked PEXPIRE (telling the first waiter in line when the TTL shrinks);
/// replies 1 when `token` held the lock.
pub(crate) fn extend(key: &[u8], token: &Token, ttl: Duration) -> Call {
    let mut call = EXTEND.key(key);
    call.key(queue_key(key))
        .arg(token.as_str())
        .arg(millis(ttl));
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
    /// Held by someone else.
    Held(Held),
    /// The token was withdrawn: the call this attempt belongs to has already ended.
    Withdrawn,
}

/// What a refused attempt learned.
pub(crate) struct Held {
    /// The holder's remaining TTL, when it has one.
    pub(crate) remaining: Option<Duration>,
    /// Whether the caller is first in line: then it alone watches for the holder's expiry.
    pub(crate) first_in_line: bool,
    /// Whether the holder is other software, which announces no release (python-redilock).
    pub(crate) foreign: bool,
}

impl From<Vec<i64>> for Attempt {
    fn from(reply: Vec<i64>) -> Attempt {
        match reply.as_slice() {
            [1, fence] => Attempt::Acquired(*fence as u64),
            [0, -3, ..] => Attempt::Withdrawn,
            [_, remaining_ms, place, foreign, ..] => Attempt::Held(Held {
                remaining: u64::try_from(*remaining_ms).ok().map(Duration::from_millis),
                first_in_line: *place == 0,
                foreign: *foreign == 1,
            }),
            _ => Attempt::Held(Held {
                remaining: None,
                first_in_line: false,
                foreign: false,
            }),
        }
    }
}
