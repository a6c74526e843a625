//! What a holder does with its lock: unlock it, extend it, read its remaining TTL, and learn
//! of its loss under auto-renewal.

use crate::boundary::{boundary, c_str, non_null_mut, optional, token_from};
use crate::cancel::redilock_cancel;
use crate::client::{live_client, redilock};
use crate::status::{redilock_status, ErrorStatus};
use redilock_core::millis;
use redilock_core::{blocking::Client, Token};
use std::ffi::c_char;

/// Resets the TTL of the lock `name` held by `token` to `ttl_ms` (1 to `REDILOCK_MAX_TTL_MS`;
/// 0 is refused before anything is sent, since it would delete the lock). Atomic and
/// owner-checked: NOT_OWNER when the token does not hold the lock, which is never re-created.
#[no_mangle]
pub extern "C" fn redilock_extend(
    client: *mut redilock,
    name: *const c_char,
    token: *const c_char,
    ttl_ms: i64,
) -> redilock_status {
    boundary(|| {
        let (client, name, token) = held_lock(client, name, token)?;
        let ttl = millis::positive(ttl_ms, "TTL")?;
        Ok(client.extend(name, &token, ttl)?)
    })
}

/// The arguments that name a held lock, checked: the client, the lock's name and its token.
fn held_lock<'a>(
    client: *const redilock,
    name: *const c_char,
    token: *const c_char,
) -> Result<(&'a Client, &'a [u8], Token), ErrorStatus> {
    Ok((
        live_client(client)?,
        c_str(name, "name")?,
        token_from(token)?,
    ))
}

/// What `redilock_remaining_ttl` writes for a key without expiry (which only other software
/// sets).
pub const REDILOCK_NO_EXPIRY: i64 = -1;

/// Writes the remaining TTL in milliseconds of the lock `name` held by `token` to
/// `*remaining_ms_out` (`REDILOCK_NO_EXPIRY`: the key has no expiry).
/// NOT_OWNER when the token does not hold it.
#[no_mangle]
pub extern "C" fn redilock_remaining_ttl(
    client: *mut redilock,
    name: *const c_char,
    token: *const c_char,
    remaining_ms_out: *mut i64,
) -> redilock_status {
    boundary(|| {
        let (client, name, token) = held_lock(client, name, token)?;
        let out = non_null_mut(remaining_ms_out, "remaining_ms_out")?;
        let remaining = client.remaining_ttl(name, &token)?;
        let ms = |ttl: std::time::Duration| i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        *out = remaining.map_or(REDILOCK_NO_EXPIRY, ms);
        Ok(())
    })
}

/// Without I/O: sets `*lost_out` to whether the auto-renewed lock held by `token` has been
/// lost. INVALID_ARGUMENT when that token has no auto-renewal (never had, or unlocked).
#[no_mangle]
pub extern "C" fn redilock_renewal_lost(
    client: *mut redilock,
    token: *const c_char,
    lost_out: *mut bool,
) -> redilock_status {
    boundary(|| {
        let client = live_client(client)?;
        let token = token_from(token)?;
        let out = non_null_mut(lost_out, "lost_out")?;
        *out = client.renewal_lost(&token)?;
        Ok(())
    })
}

/// Blocks until the auto-renewed lock held by `token` is lost, then sets `*lost_out` to true
/// (`redilock_close` counts as a loss); sets it to false when the renewal ends without a loss
/// (`redilock_unlock`) or `timeout_ms` passes first (-1 waits forever, 0 only checks).
/// `cancel` (may be NULL) ends the wait with CANCELLED. INVALID_ARGUMENT when that token has
/// no auto-renewal; CLOSED when the client was closed before the call. For bindings that
/// cannot take a callback on a library thread: one thread waits here instead of polling
/// `redilock_renewal_lost`.
#[no_mangle]
pub extern "C" fn redilock_renewal_wait(
    client: *mut redilock,
    token: *const c_char,
    timeout_ms: i64,
    cancel: *const redilock_cancel,
    lost_out: *mut bool,
) -> redilock_status {
    boundary(|| {
        let client = live_client(client)?;
        let token = token_from(token)?;
        let out = non_null_mut(lost_out, "lost_out")?;
        let wait = millis::wait(timeout_ms)?;
        let cancel = optional(cancel).map(|cancel| &cancel.signal);
        *out = client.wait_for_loss(&token, wait, cancel)?;
        Ok(())
    })
}

/// Releases the lock `name` if `token` holds it, in one atomic compare-and-delete that also
/// wakes the next waiter. `REDILOCK_STATUS_NOT_OWNER` (and nothing deleted) when the token does
/// not hold it: it expired, was released, or belongs to another owner. Stops the lock's
/// auto-renewal; when this returns, its `on_lost` callback is neither running nor will run.
///
/// A release is never sent twice (a second one would find nothing and report the lock lost).
/// When its reply is lost, the client asks Redis again in a way that is safe to repeat: OK
/// when that finds the lock still held and releases it, otherwise
/// `REDILOCK_STATUS_CONNECTION`, meaning "outcome unknown": the lock is not held by this token
/// any more once Redis answers (the client keeps trying in the background meanwhile).
#[no_mangle]
pub extern "C" fn redilock_unlock(
    client: *mut redilock,
    name: *const c_char,
    token: *const c_char,
) -> redilock_status {
    boundary(|| {
        let (client, name, token) = held_lock(client, name, token)?;
        Ok(client.unlock(name, &token)?)
    })
}
