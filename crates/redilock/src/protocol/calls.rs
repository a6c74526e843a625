//! Every call the lock sends to Redis and what its replies mean, whichever transport sends it.

use super::keys::LockKeys;
use super::scripts::{ACQUIRE, CLEANUP, EXTEND, RAISE_FENCE, RELEASE, REMAINING};
use crate::token::Token;
use redis::{Cmd, Pipeline, RedisResult, Script, ScriptInvocation, Value};
use std::time::Duration;

/// One call, and whether it may be sent again.
pub(crate) struct Call {
    pub(crate) request: Request,
    /// Sending it twice does what sending it once does, so a call whose reused connection
    /// turns out dead (Redis restarted while the client was idle) may be sent once more.
    pub(crate) idempotent: bool,
    /// Its script, if it is one.
    pub(crate) script: Option<&'static Script>,
    /// The Redis Cluster slot of its keys; `None`: any server answers it.
    pub(crate) slot: Option<u16>,
}

pub(crate) enum Request {
    /// EVALSHA, with the script loaded on NOSCRIPT.
    Script(ScriptInvocation<'static>),
    /// EVALSHA (or a command) among other commands, written together on one connection and
    /// read together (see [`then_wait`], [`after_role`], [`asking`]); the script is loaded on
    /// NOSCRIPT and all sent again.
    Pipelined {
        /// The script, if the call is one.
        script: Option<&'static Script>,
        pipeline: Pipeline,
        /// Where the script's (or the call's command's) reply is among the replies.
        script_at: usize,
        /// Which replies the caller reads.
        replies: Replies,
    },
    Command(Cmd),
}

/// The replies of a pipeline that its caller reads.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Replies {
    /// All, as an array.
    All,
    /// All but the one at this place (ASKING's), as an array.
    AllBut(usize),
    /// Only the one at this place (the script's, after ASKING).
    One(usize),
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

/// How a client takes turns with others on a lock.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Turns {
    /// Waiters take turns in arrival order; a release hands the lock to the first in line.
    Fair,
    /// A free lock goes to whoever asks first; waiters are only woken to try again.
    Barging,
    /// Barging, on one master of a quorum client: fencing counters count on from their own
    /// value, so the masters' counters stay equal while they all grant (see turns.lua).
    Quorum,
}

/// Takes the lock when it is free and nobody waits for it (or, unless `turns` is fair,
/// whoever waits), or when it is the caller's turn; otherwise queues the caller as
/// `queueing` says. The reply becomes an [`Attempt`]. Sending it again is harmless: an
/// attempt that finds the lock already its own says so.
pub(crate) fn acquire(
    key: &[u8],
    token: &Token,
    ttl: Duration,
    queueing: Queueing,
    turns: Turns,
) -> Call {
    let keys = LockKeys::of(key);
    let mut call = ACQUIRE.key(key);
    call.key(keys.fence())
        .key(keys.queue())
        .key(keys.withdrawn())
        .arg(token.as_str())
        .arg(millis(ttl));
    let taking = match turns {
        Turns::Fair => None,
        Turns::Barging => Some("barge"),
        Turns::Quorum => Some("quorum barge"),
    };
    let queue = match queueing {
        Queueing::TryOnce => None,
        Queueing::Join => Some("join"),
        Queueing::Stay => Some("stay"),
    };
    // Trying once fairly sends one argument less: Redis refuses more than 10 from a client
    // that has not authenticated, and that client should hear NOAUTH, not a protocol error.
    let mode: Vec<&str> = taking.into_iter().chain(queue).collect();
    if !mode.is_empty() {
        call.arg(mode.join(" "));
    }
    script(&ACQUIRE, call, &keys, true)
}

/// The atomic compare-and-delete that hands the lock to the first waiter in line; replies 1
/// when `token` held the lock. Not sent twice: a second one finds nothing and would report the
/// lock as lost.
pub(crate) fn release(key: &[u8], token: &Token) -> Call {
    let keys = LockKeys::of(key);
    let mut call = RELEASE.key(key);
    call.key(keys.fence()).key(keys.queue()).arg(token.as_str());
    script(&RELEASE, call, &keys, false)
}

/// Gives back everything `token` (which asked for `ttl`) may hold when its caller stopped
/// without a lease (see cleanup.lua); replies 1 when it released the lock itself.
pub(crate) fn cleanup(key: &[u8], token: &Token, ttl: Duration) -> Call {
    let keys = LockKeys::of(key);
    let mut call = CLEANUP.key(key);
    call.key(keys.fence())
        .key(keys.queue())
        .key(keys.withdrawn())
        .arg(token.as_str())
        .arg(queue_entry(token, ttl))
        .arg(millis(WITHDRAWN_FOR));
    script(&CLEANUP, call, &keys, true)
}

/// A waiter's entry in the queue: its token, then the TTL it asked for.
fn queue_entry(token: &Token, ttl: Duration) -> String {
    format!("{}{}", token.as_str(), millis(ttl))
}

/// The owner-checked PEXPIRE (telling the first waiter in line when the TTL shrinks);
/// replies 1 when `token` held the lock.
pub(crate) fn extend(key: &[u8], token: &Token, ttl: Duration) -> Call {
    let keys = LockKeys::of(key);
    let mut call = EXTEND.key(key);
    call.key(keys.queue()).arg(token.as_str()).arg(millis(ttl));
    script(&EXTEND, call, &keys, true)
}

/// Raises the fencing counter of `key` to `fence` if it is lower (a quorum acquisition's
/// second phase); safe to send again.
pub(crate) fn raise_fence(key: &[u8], fence: u64) -> Call {
    let keys = LockKeys::of(key);
    let mut call = RAISE_FENCE.key(keys.fence());
    call.arg(fence);
    script(&RAISE_FENCE, call, &keys, true)
}

/// The owner's remaining TTL in ms: -1 without expiry, -3 when `token` does not hold it.
pub(crate) fn remaining(key: &[u8], token: &Token) -> Call {
    let mut call = REMAINING.key(key);
    call.arg(token.as_str());
    script(&REMAINING, call, &LockKeys::of(key), true)
}

/// Anyone's remaining TTL in ms: -2 when free, -1 without expiry.
pub(crate) fn pttl(key: &[u8]) -> Call {
    let mut cmd = redis::cmd("PTTL");
    cmd.arg(key);
    Call {
        slot: Some(LockKeys::of(key).slot),
        ..command(cmd)
    }
}

pub(crate) fn ping() -> Call {
    command(redis::cmd("PING"))
}

/// Asks a sentinel where the primary named `name` is: `[host, port]`, or nil.
pub(crate) fn primary_address(name: &str) -> Call {
    let mut cmd = redis::cmd("SENTINEL");
    cmd.arg("GET-MASTER-ADDR-BY-NAME").arg(name);
    command(cmd)
}

/// Asks a cluster node which master serves which slots.
pub(crate) fn cluster_slots() -> Call {
    let mut cmd = redis::cmd("CLUSTER");
    cmd.arg("SLOTS");
    command(cmd)
}

/// `call` for the node a slot is being migrated to, which serves it only after `ASKING` on
/// the same connection (a Redis Cluster ASK redirection). `None` for a call that cannot be
/// sent so (one that was asked already): it waits until the migration ends.
pub(crate) fn asking(call: &Call) -> Option<Call> {
    let mut pipeline = redis::pipe();
    let (script, script_at, replies) = match &call.request {
        Request::Script(invocation) => {
            pipeline.cmd("ASKING").invoke_script(invocation);
            (Some(call.script?), 1, Replies::One(1))
        }
        Request::Command(command) => {
            pipeline.cmd("ASKING").add_command(command.clone());
            (None, 1, Replies::One(1))
        }
        Request::Pipelined {
            script,
            pipeline: commands,
            script_at,
            replies: Replies::All,
        } => {
            for (at, command) in commands.cmd_iter().enumerate() {
                if at == *script_at {
                    pipeline.cmd("ASKING");
                }
                pipeline.add_command(command.clone());
            }
            (*script, script_at + 1, Replies::AllBut(*script_at))
        }
        Request::Pipelined { .. } => return None,
    };
    pipeline.ignore_errors();
    Some(Call {
        request: Request::Pipelined {
            script,
            pipeline,
            script_at,
            replies,
        },
        ..*call
    })
}

/// `call`, a script that writes, followed on the same connection by `WAIT replicas timeout`,
/// which counts the replicas that acknowledged this connection's writes: the script's own, and
/// through it everything written before. The reply is the pair (the script's reply, WAIT's
/// reply as a [`Value`]: the count, or why WAIT was refused).
pub(crate) fn then_wait(call: Call, replicas: u32, timeout: Duration) -> Call {
    pipelined(call, 0, |pipeline, script| {
        pipeline
            .invoke_script(script)
            .cmd("WAIT")
            .arg(replicas)
            .arg(millis(timeout));
    })
}

/// `call`, a script, after ROLE in the same round trip: the reply is the pair (ROLE's reply
/// as a [`Value`], the script's reply).
pub(crate) fn after_role(call: Call) -> Call {
    pipelined(call, 1, |pipeline, script| {
        pipeline.cmd("ROLE").invoke_script(script);
    })
}

/// `call`'s script in a pipeline that `build` makes, its reply the `script_at`-th. Only
/// scripts are pipelined: another call is left as it is.
fn pipelined(
    call: Call,
    script_at: usize,
    build: impl FnOnce(&mut Pipeline, &ScriptInvocation<'static>),
) -> Call {
    let request = match call.request {
        Request::Script(invocation) => {
            let mut pipeline = redis::pipe();
            build(&mut pipeline, &invocation);
            pipeline.ignore_errors(); // each reply is read in its place: see script_in_pipeline
            match call.script {
                Some(script) => Request::Pipelined {
                    script: Some(script),
                    pipeline,
                    script_at,
                    replies: Replies::All,
                },
                None => Request::Script(invocation),
            }
        }
        other => other,
    };
    Call { request, ..call }
}

/// The replies of a [`Request::Pipelined`] as one value for the caller's tuple: the script's
/// error reply is the call's error (a NOSCRIPT one tells the transport to load the script);
/// the other commands' replies are left in their places.
pub(crate) fn script_in_pipeline(
    replies: Value,
    script_at: usize,
    read: Replies,
) -> RedisResult<Value> {
    match replies {
        Value::Array(mut replies) => match replies.get(script_at) {
            Some(Value::ServerError(err)) => Err(err.clone().into()),
            _ => Ok(match read {
                Replies::All => Value::Array(replies),
                Replies::AllBut(at) if at < replies.len() => {
                    replies.remove(at);
                    Value::Array(replies)
                }
                Replies::One(at) if at < replies.len() => replies.swap_remove(at),
                _ => Value::Array(replies),
            }),
        },
        other => Ok(other),
    }
}

/// Whether an acquire call's reply says it took the lock.
pub(crate) fn acquired(reply: &Vec<i64>) -> bool {
    matches!(reply.as_slice(), [1, _])
}

/// Whether an extend call's reply says it extended the lock.
pub(crate) fn extended(reply: &i64) -> bool {
    *reply == 1
}

fn script(
    source: &'static Script,
    invocation: ScriptInvocation<'static>,
    keys: &LockKeys,
    idempotent: bool,
) -> Call {
    Call {
        request: Request::Script(invocation),
        idempotent,
        script: Some(source),
        slot: Some(keys.slot),
    }
}

fn command(cmd: Cmd) -> Call {
    Call {
        request: Request::Command(cmd),
        idempotent: true,
        script: None,
        slot: None,
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
    /// The holder's remaining TTL, when it has one and the caller needs it: a caller behind
    /// the first in line is not told (the first in line alone watches the holder).
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
