//! `redilock_options`: the builder behind `redilock_new_with_options`.

use crate::boundary::{boundary, c_str, free_box, hand_out, non_null_mut, Outcome};
use crate::status::redilock_status;
use redilock_core::{millis, Options, ReplicaAcks};
use std::ffi::c_char;

/// Options for `redilock_new_with_options`. A builder owned by one thread at a time.
pub struct redilock_options {
    pub(crate) options: Options,
}

/// Creates an options object with the defaults: retry interval 10000 ms, connect timeout
/// 2000 ms, command timeout 2000 ms, no default TTL, empty key prefix, fair, replica
/// acknowledgement `REDILOCK_REPLICA_ACKS_AUTO` within half the command timeout.
///
/// On success `*options_out` owns a new object; free it with `redilock_options_free` (it may
/// be freed right after `redilock_new_with_options`, which copies it).
#[no_mangle]
pub extern "C" fn redilock_options_new(options_out: *mut *mut redilock_options) -> redilock_status {
    boundary(|| {
        let options = Options::default();
        hand_out(options_out, redilock_options { options })
    })
}

/// How often a waiter looks at the lock when nothing wakes it: a safety net, since a release
/// hands the lock to the first waiter in line itself. Must be > 0.
#[no_mangle]
pub extern "C" fn redilock_options_set_retry_interval_ms(
    options: *mut redilock_options,
    retry_interval_ms: i64,
) -> redilock_status {
    set(options, |o| {
        o.retry_interval = millis::positive(retry_interval_ms, "retry interval")?;
        Ok(())
    })
}

/// How long establishing a connection may take. Must be > 0.
#[no_mangle]
pub extern "C" fn redilock_options_set_connect_timeout_ms(
    options: *mut redilock_options,
    connect_timeout_ms: i64,
) -> redilock_status {
    set(options, |o| {
        o.connect_timeout = millis::positive(connect_timeout_ms, "connect timeout")?;
        Ok(())
    })
}

/// How long one Redis command may wait for its reply. Must be > 0.
#[no_mangle]
pub extern "C" fn redilock_options_set_command_timeout_ms(
    options: *mut redilock_options,
    command_timeout_ms: i64,
) -> redilock_status {
    set(options, |o| {
        o.command_timeout = millis::positive(command_timeout_ms, "command timeout")?;
        Ok(())
    })
}

/// TTL used by lock calls that pass `ttl_ms = 0`; 0 here means every call must pass one.
/// At most `REDILOCK_MAX_TTL_MS`.
#[no_mangle]
pub extern "C" fn redilock_options_set_default_ttl_ms(
    options: *mut redilock_options,
    default_ttl_ms: i64,
) -> redilock_status {
    set(options, |o| {
        o.default_ttl = millis::ttl(default_ttl_ms)?;
        Ok(())
    })
}

/// Text put in front of every lock name to form its Redis key (e.g. "myapp:"). Default "",
/// which makes the key the name itself (compatible with python-redilock). The string is copied.
#[no_mangle]
pub extern "C" fn redilock_options_set_key_prefix(
    options: *mut redilock_options,
    key_prefix: *const c_char,
) -> redilock_status {
    boundary(|| {
        let prefix = c_str(key_prefix, "key_prefix")?.to_vec();
        set_checked(options, |o| {
            o.key_prefix = prefix;
            Ok(())
        })
    })
}

/// Fair (true, the default): waiters take turns in arrival order, and a release hands the lock
/// to the first in line. Not fair (false): this client's lock calls take a free lock whoever
/// waits, and its waiters are only woken to try again; for short critical sections where
/// throughput matters more than order (a waiter may be passed over any number of times).
#[no_mangle]
pub extern "C" fn redilock_options_set_fair(
    options: *mut redilock_options,
    fair: bool,
) -> redilock_status {
    set(options, |o| {
        o.fair = fair;
        Ok(())
    })
}

/// `count` of `redilock_options_set_replica_acks`: one replica when the server is a primary
/// with replicas connected, none otherwise (the default).
pub const REDILOCK_REPLICA_ACKS_AUTO: i32 = -1;

/// How many replicas must acknowledge each lock write (an acquisition, an extend, a renewal)
/// before it counts. The client sends `WAIT count timeout_ms` after the write, on the same
/// connection and in the same round trip (a client's first write of each kind costs one round
/// trip more). A lock that fewer replicas acknowledged is released and the call returns
/// `REDILOCK_STATUS_NOT_REPLICATED`; an auto-renewed lock whose renewals go unacknowledged
/// until its lease runs out is lost, and released.
///
/// `count`: `REDILOCK_REPLICA_ACKS_AUTO` (-1, the default: 1 when the server is a primary
/// with replicas connected, as `ROLE` tells, else 0), 0 (off: no `WAIT`), or a number of
/// replicas (more than the server has makes every lock call fail); below -1 is
/// INVALID_ARGUMENT. `timeout_ms`: how long `WAIT` waits; 0 for the default, half the command
/// timeout; negative is INVALID_ARGUMENT. The command timeout bounds a write and its `WAIT`
/// together, so `redilock_new_with_options` refuses (INVALID_ARGUMENT) a `timeout_ms` that is
/// not shorter than it.
#[no_mangle]
pub extern "C" fn redilock_options_set_replica_acks(
    options: *mut redilock_options,
    count: i32,
    timeout_ms: i64,
) -> redilock_status {
    set(options, |o| {
        o.replica_acks = match count {
            REDILOCK_REPLICA_ACKS_AUTO => ReplicaAcks::Auto,
            count => ReplicaAcks::Count(u32::try_from(count).map_err(|_| {
                redilock_core::Error::InvalidArgument(format!(
                    "the replica count must be REDILOCK_REPLICA_ACKS_AUTO (-1), 0 (off) or \
                     positive, not {count}"
                ))
            })?),
        };
        o.replica_ack_timeout = millis::optional(timeout_ms, "replica acknowledgement timeout")?;
        Ok(())
    })
}

/// Frees an options object. NULL is a no-op.
#[no_mangle]
pub extern "C" fn redilock_options_free(options: *mut redilock_options) {
    free_box(options)
}

/// Sets one option, inside the boundary.
fn set(
    options: *mut redilock_options,
    change: impl FnOnce(&mut Options) -> redilock_core::Result<()>,
) -> redilock_status {
    boundary(|| set_checked(options, change))
}

fn set_checked(
    options: *mut redilock_options,
    change: impl FnOnce(&mut Options) -> redilock_core::Result<()>,
) -> Outcome {
    let options = non_null_mut(options, "options")?;
    Ok(change(&mut options.options)?)
}
