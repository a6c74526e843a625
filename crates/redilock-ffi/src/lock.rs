//! The lock calls: `redilock_lock`, `redilock_lock_cancellable`, `redilock_lock_ex` and its
//! versioned parameters, with the loss callback and its data.

use crate::boundary::{boundary, c_str, non_null, non_null_mut, optional, Outcome};
use crate::cancel::redilock_cancel;
use crate::client::{live_client, redilock};
use crate::status::{redilock_status, ErrorStatus};
use redilock_core::{millis, AutoRenew, LockOptions, TOKEN_CHARS};
use std::ffi::{c_char, c_void, CStr};
use std::ptr;

/// Size of a token buffer: 32 characters and the terminating NUL.
pub const REDILOCK_TOKEN_LEN: usize = 33;
const _: () = assert!(REDILOCK_TOKEN_LEN == TOKEN_CHARS + 1);
/// `timeout_ms` value that waits until the lock is acquired.
pub const REDILOCK_WAIT_FOREVER: i64 = -1;
/// `timeout_ms` value that tries once and does not wait.
pub const REDILOCK_NO_WAIT: i64 = 0;
const _: () =
    assert!(REDILOCK_WAIT_FOREVER == millis::WAIT_FOREVER && REDILOCK_NO_WAIT == millis::NO_WAIT);
/// The largest TTL accepted, 2^62 ms (the largest Redis takes): an effectively eternal lock.
pub const REDILOCK_MAX_TTL_MS: i64 = 4_611_686_018_427_387_904;
const _: () = assert!(REDILOCK_MAX_TTL_MS as u128 == redilock_core::MAX_TTL.as_millis());

/// Called once when an auto-renewed lock is lost (a renewal found it gone, could not reach
/// Redis before the lease ran out, or the client was closed), with the `on_lost_data` given at
/// lock time and the lock's name (valid during the call only). It runs on a thread of the
/// library's own, never on the caller's: make it thread-safe and brief. It may call any
/// redilock function, except `redilock_free` on the client that holds the lock. Once
/// `redilock_unlock` for that lock, `redilock_close` or `redilock_free` has returned, it is
/// neither running nor will it run (unless that call was made from inside the callback).
pub type redilock_lost_callback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, name: *const c_char)>;

/// Called exactly once with `on_lost_data` when the library is done with it: after the loss
/// callback has returned, or once it can no longer run (unlock, close, free, or a lock call
/// that failed or did not ask for auto-renewal, before that call returns). The place to
/// free the data. It may run on any thread.
pub type redilock_data_drop = Option<unsafe extern "C" fn(user_data: *mut c_void)>;

/// Optional parameters of `redilock_lock_ex`. Initialise with `redilock_lock_params_init`,
/// which sets `struct_size` (so the struct can grow without breaking callers) and the
/// defaults, then set the fields you need. Fields are only ever added at the end: a program
/// built against an older header passes its smaller `struct_size` and gets the defaults for
/// the fields it does not know.
#[repr(C)]
pub struct redilock_lock_params {
    /// `sizeof(redilock_lock_params)`, set by `redilock_lock_params_init`.
    pub struct_size: usize,
    /// Ends the wait when triggered, as in `redilock_lock_cancellable`. NULL: not cancellable.
    pub cancel: *const redilock_cancel,
    /// Renew the lock at about a third of its TTL until `redilock_unlock`. Default false.
    pub auto_renew: bool,
    /// With `auto_renew`: stop renewing once held this long (it then expires at its TTL and
    /// counts as lost). 0: no limit.
    pub max_hold_ms: i64,
    /// With `auto_renew`: told when the lock is lost. NULL: nobody is told (query with
    /// `redilock_renewal_lost`, or wait with `redilock_renewal_wait`).
    pub on_lost: redilock_lost_callback,
    /// Passed to `on_lost`, untouched.
    pub on_lost_data: *mut c_void,
    /// Frees `on_lost_data` when the library is done with it (see `redilock_data_drop`).
    /// NULL: the caller frees it, after unlock (since 0.2). A parameter block refused for its
    /// `struct_size` is not read at all, so its drop is not called either.
    pub on_lost_data_drop: redilock_data_drop,
    /// On OK, when not NULL: how long the lock is sure to stay held from when the call
    /// returned, unless extended (the TTL less the time the acquisition took, and for a quorum
    /// client less an allowance for clock drift). Work that must finish under the lock has to
    /// fit in it.
    pub validity_ms_out: *mut i64,
}

/// The size of `redilock_lock_params` in 0.1, the smallest `struct_size` accepted.
const LOCK_PARAMS_V0_1_SIZE: usize = std::mem::offset_of!(redilock_lock_params, on_lost_data_drop);

/// Makes the token buffer "" so that it holds a token only after a successful lock.
fn clear_token(token_out: *mut c_char, token_out_len: usize) {
    if !token_out.is_null() && token_out_len > 0 {
        // SAFETY: the caller promises `token_out_len` writable bytes.
        unsafe { *token_out = 0 };
    }
}

/// What the extended lock call adds to a plain one.
#[derive(Default)]
struct LockExtras<'a> {
    options: LockOptions<'a>,
    fence_out: Option<&'a mut u64>,
    validity_out: Option<&'a mut i64>,
}

fn lock_into(
    client_ptr: *mut redilock,
    name: *const c_char,
    ttl_ms: i64,
    timeout_ms: i64,
    extras: LockExtras,
    token_out: *mut c_char,
    token_out_len: usize,
) -> Outcome {
    clear_token(token_out, token_out_len);
    let client = live_client(client_ptr)?;
    let name = c_str(name, "name")?;
    non_null(token_out, "token_out")?;
    if token_out_len < REDILOCK_TOKEN_LEN {
        return Err(ErrorStatus::invalid(format!(
            "token_out_len is {token_out_len}; a token needs REDILOCK_TOKEN_LEN ({REDILOCK_TOKEN_LEN}) bytes"
        )));
    }
    let wait = millis::wait(timeout_ms)?;
    let ttl = millis::ttl(ttl_ms)?;
    let lease = client.lock_with(name, ttl, wait, extras.options)?;
    let bytes = lease.token.as_str().as_bytes();
    // SAFETY: the buffer holds at least REDILOCK_TOKEN_LEN = bytes.len() + 1 bytes.
    unsafe {
        ptr::copy_nonoverlapping(bytes.as_ptr(), token_out.cast::<u8>(), bytes.len());
        *token_out.add(bytes.len()) = 0;
    }
    if let Some(fence_out) = extras.fence_out {
        *fence_out = lease.fence;
    }
    if let Some(validity_out) = extras.validity_out {
        *validity_out = i64::try_from(lease.validity.as_millis()).unwrap_or(i64::MAX);
    }
    Ok(())
}

/// Reads the caller's parameters (NULL: the defaults) into what the lock call needs.
fn lock_extras<'a>(
    params: *const redilock_lock_params,
    name: *const c_char,
    fence_out: *mut u64,
) -> Result<LockExtras<'a>, ErrorStatus> {
    // SAFETY: the caller promises NULL or a writable uint64_t.
    let mut extras = LockExtras {
        fence_out: unsafe { fence_out.as_mut() },
        ..LockExtras::default()
    };
    let Some(params) = read_params(params)? else {
        return Ok(extras);
    };
    // The data is the library's to drop from here on, whatever happens next.
    let data = UserData {
        data: params.on_lost_data,
        drop: params.on_lost_data_drop,
    };
    extras.options.cancel = optional(params.cancel).map(|cancel| &cancel.signal);
    // SAFETY: the caller promises NULL or a writable int64_t.
    extras.validity_out = unsafe { params.validity_ms_out.as_mut() };
    let max_hold = millis::optional(params.max_hold_ms, "maximum hold time")?;
    if params.auto_renew {
        let on_lost = params
            .on_lost
            .map(|callback| lost_notice(callback, data, name));
        extras.options.auto_renew = Some(AutoRenew { max_hold, on_lost });
    }
    Ok(extras)
}

/// A copy of the caller's parameters, of whatever version: fields beyond its `struct_size`
/// keep their defaults.
fn read_params(
    params: *const redilock_lock_params,
) -> Result<Option<redilock_lock_params>, ErrorStatus> {
    if params.is_null() {
        return Ok(None);
    }
    // SAFETY: non-NULL; the caller promises a parameter block of at least `struct_size`
    // bytes, the first field of every version.
    let size = unsafe { *params.cast::<usize>() };
    let ours = std::mem::size_of::<redilock_lock_params>();
    if size < LOCK_PARAMS_V0_1_SIZE {
        return Err(ErrorStatus::invalid(
            "params->struct_size is too small: initialise params with redilock_lock_params_init",
        ));
    }
    if size > ours {
        return Err(ErrorStatus::invalid(format!(
            "params->struct_size is {size}, but this library knows only {ours} bytes of it: \
             the program was built against a newer redilock.h than the library it runs with"
        )));
    }
    let mut copy = default_params();
    // SAFETY: `size` bytes are readable (the caller's promise) and fit in `copy`; every field
    // is plain data, and the fields not copied keep their defaults.
    unsafe {
        ptr::copy_nonoverlapping(
            params.cast::<u8>(),
            (&mut copy as *mut redilock_lock_params).cast::<u8>(),
            size,
        )
    };
    Ok(Some(copy))
}

fn default_params() -> redilock_lock_params {
    redilock_lock_params {
        struct_size: std::mem::size_of::<redilock_lock_params>(),
        cancel: ptr::null(),
        auto_renew: false,
        max_hold_ms: 0,
        on_lost: None,
        on_lost_data: ptr::null_mut(),
        on_lost_data_drop: None,
        validity_ms_out: ptr::null_mut(),
    }
}

/// The caller's data for its loss callback, dropped through the caller's function exactly
/// once, when the library no longer needs it.
struct UserData {
    data: *mut c_void,
    drop: redilock_data_drop,
}

// SAFETY: the data is handed back to the caller's functions untouched; their thread-safety
// is the caller's, as the header says.
unsafe impl Send for UserData {}

impl Drop for UserData {
    fn drop(&mut self) {
        if let Some(drop) = self.drop {
            // SAFETY: the caller registered this function for exactly this data.
            unsafe { drop(self.data) }
        }
    }
}

/// Wraps a C loss callback; the name is copied, since the caller's string may be gone by then.
fn lost_notice(
    callback: unsafe extern "C" fn(*mut c_void, *const c_char),
    data: UserData,
    name: *const c_char,
) -> Box<dyn FnOnce() + Send> {
    // SAFETY: checked non-NULL by the caller of lock_into before any callback can run.
    let name = unsafe { name.as_ref() }
        .map(|_| unsafe { CStr::from_ptr(name) }.to_owned())
        .unwrap_or_default();
    Box::new(move || {
        let data = data; // the whole UserData, not just its pointer: it drops after the call
                         // SAFETY: the caller registered this callback and data for exactly this call.
        unsafe { callback(data.data, name.as_ptr()) }
    })
}

/// Acquires the lock `name` for `ttl_ms` milliseconds (0: the client's default TTL).
///
/// `timeout_ms`: `REDILOCK_WAIT_FOREVER` (-1) waits until acquired, `REDILOCK_NO_WAIT` (0)
/// tries once, a positive value waits at most that long; then `REDILOCK_STATUS_NOT_ACQUIRED`.
/// Waiters queue: the lock goes to the longest waiter, which wakes within milliseconds of the
/// holder's release, and a try-once call does not get in ahead of a queued waiter.
///
/// On `REDILOCK_STATUS_OK` the owner token (a NUL-terminated string) is written to `token_out`,
/// which must hold `REDILOCK_TOKEN_LEN` bytes; pass it to `redilock_unlock`. On any other
/// status `token_out` is set to "" when usable, and no lock is left behind: with
/// `REDILOCK_STATUS_CONNECTION` an attempt may have taken the lock without its reply coming
/// back, and the client gives it back itself as soon as Redis answers again.
///
/// The call returns within `timeout_ms` (when it waits) plus one command timeout, plus the
/// connect timeout for each connection it has to open, whatever Redis or the network does.
#[no_mangle]
pub extern "C" fn redilock_lock(
    client: *mut redilock,
    name: *const c_char,
    ttl_ms: i64,
    timeout_ms: i64,
    token_out: *mut c_char,
    token_out_len: usize,
) -> redilock_status {
    boundary(|| {
        lock_into(
            client,
            name,
            ttl_ms,
            timeout_ms,
            LockExtras::default(),
            token_out,
            token_out_len,
        )
    })
}

/// `redilock_lock`, whose wait ends with `REDILOCK_STATUS_CANCELLED` within milliseconds of
/// `cancel` being triggered (from any thread), even while Redis does not answer. A cancel
/// seen before the call returns always wins: a signal already triggered sends nothing, and
/// a lock taken by an attempt in flight is given back, so the call never returns OK after the
/// cancel and never leaves a lock behind. (The first attempt of a call, on the calling
/// thread's own connection, is not interrupted: it ends within one command timeout.) `cancel`
/// must stay alive until the call returns.
#[no_mangle]
pub extern "C" fn redilock_lock_cancellable(
    client: *mut redilock,
    name: *const c_char,
    ttl_ms: i64,
    timeout_ms: i64,
    cancel: *const redilock_cancel,
    token_out: *mut c_char,
    token_out_len: usize,
) -> redilock_status {
    boundary(|| {
        clear_token(token_out, token_out_len);
        let cancel = &non_null(cancel, "cancel")?.signal;
        lock_into(
            client,
            name,
            ttl_ms,
            timeout_ms,
            LockExtras {
                options: LockOptions {
                    cancel: Some(cancel),
                    ..LockOptions::default()
                },
                ..LockExtras::default()
            },
            token_out,
            token_out_len,
        )
    })
}

/// Sets `params` to the defaults (not cancellable, no auto-renewal) and its `struct_size`.
#[no_mangle]
pub extern "C" fn redilock_lock_params_init(params: *mut redilock_lock_params) -> redilock_status {
    boundary(|| {
        *non_null_mut(params, "params")? = default_params();
        Ok(())
    })
}

/// `redilock_lock` with optional parameters (NULL: the defaults) and the fencing number.
///
/// On OK, `*fence_out` (when not NULL) receives the lock's fencing number: it strictly
/// increases with every acquisition of this name, by any holder. Send it with each write to
/// the resource you protect, and have the resource reject numbers older than the newest it
/// has seen: a paused holder can outlive its lease, and fencing is what stops its late writes.
///
/// With `params->auto_renew` the lock is renewed in the background until `redilock_unlock`
/// (which then reports NOT_OWNER if the lease was lost meanwhile); see
/// `redilock_lost_callback` for how a loss is reported.
#[no_mangle]
pub extern "C" fn redilock_lock_ex(
    client: *mut redilock,
    name: *const c_char,
    ttl_ms: i64,
    timeout_ms: i64,
    params: *const redilock_lock_params,
    token_out: *mut c_char,
    token_out_len: usize,
    fence_out: *mut u64,
) -> redilock_status {
    boundary(|| {
        clear_token(token_out, token_out_len);
        let extras = lock_extras(params, name, fence_out)?;
        lock_into(
            client,
            name,
            ttl_ms,
            timeout_ms,
            extras,
            token_out,
            token_out_len,
        )
    })
}
