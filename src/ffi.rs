//! The C ABI: every `extern "C"` item of the library, as declared in `include/redilock.h`
//! (generated from this file by cbindgen; doc comments here become the header's).
//!
//! Each exported body runs inside `boundary`, so a panic becomes `REDILOCK_STATUS_PANIC`
//! instead of unwinding into C; every pointer is checked before use; every failure returns a
//! status and leaves a message for `redilock_last_error()`.

#![allow(non_camel_case_types)]
// These functions exist for C callers, whose pointer contracts are written in the header's
// doc comments; Rust code uses the safe API instead. Every pointer is checked for NULL.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

use crate::blocking::Client;
use crate::cancel::CancelSignal;
use crate::error::Error;
use crate::lease::KeepAlive;
use crate::options::{Options, Wait};
use crate::token::{Token, TOKEN_CHARS};
use std::cell::RefCell;
use std::ffi::{c_char, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::Mutex;
use std::time::Duration;

/// A status code. The numbers are stable and never reused: 0 is success, 1xx a caller error,
/// 2xx an expected outcome, 3xx a problem in the environment, 9xx an internal error.
pub type redilock_status = u32;

/// Success.
pub const REDILOCK_STATUS_OK: redilock_status = 0;
/// An argument is unusable (empty name, zero TTL, short buffer, bad URL…); nothing was sent.
pub const REDILOCK_STATUS_INVALID_ARGUMENT: redilock_status = 100;
/// A required pointer argument is NULL; nothing was sent.
pub const REDILOCK_STATUS_NULL_ARGUMENT: redilock_status = 101;
/// The client was created in another process (before a `fork()`); create one in this process.
pub const REDILOCK_STATUS_WRONG_PROCESS: redilock_status = 102;
/// The lock is held by another owner and the wait ended (try-once or timeout).
pub const REDILOCK_STATUS_NOT_ACQUIRED: redilock_status = 200;
/// The token does not hold the lock (expired, released, or another owner's); nothing deleted.
pub const REDILOCK_STATUS_NOT_OWNER: redilock_status = 201;
/// The wait was cancelled through a `redilock_cancel`.
pub const REDILOCK_STATUS_CANCELLED: redilock_status = 202;
/// The client was closed (`redilock_close`): waits in progress end with it, and calls made
/// afterwards get it.
pub const REDILOCK_STATUS_CLOSED: redilock_status = 203;
/// Redis is unreachable, the connection broke, or a reply timed out.
pub const REDILOCK_STATUS_CONNECTION: redilock_status = 300;
/// Redis replied with an error (NOAUTH, NOPERM, READONLY, OOM, WRONGTYPE…).
pub const REDILOCK_STATUS_REDIS: redilock_status = 301;
/// A bug in the library was caught at the boundary; the handle may be unusable.
pub const REDILOCK_STATUS_PANIC: redilock_status = 900;

/// Size of a token buffer: 32 characters and the terminating NUL.
pub const REDILOCK_TOKEN_LEN: usize = 33;
const _: () = assert!(REDILOCK_TOKEN_LEN == TOKEN_CHARS + 1);
/// `timeout_ms` value that waits until the lock is acquired.
pub const REDILOCK_WAIT_FOREVER: i64 = -1;
/// `timeout_ms` value that tries once and does not wait.
pub const REDILOCK_NO_WAIT: i64 = 0;
/// The largest TTL accepted, 2^62 ms (the largest Redis takes): an effectively eternal lock.
pub const REDILOCK_MAX_TTL_MS: u64 = 4_611_686_018_427_387_904;
const _: () = assert!(REDILOCK_MAX_TTL_MS as u128 == crate::MAX_TTL.as_millis());

/// Library version at compile time; `redilock_version()` gives it at run time. A test keeps
/// these equal to the version in Cargo.toml.
pub const REDILOCK_VERSION_MAJOR: u32 = 0;
pub const REDILOCK_VERSION_MINOR: u32 = 2;
pub const REDILOCK_VERSION_PATCH: u32 = 0;

/// A lock client: a few connections and one wake-up subscription, shared by every thread that
/// calls it (a calling thread does its own I/O; only auto-renewal adds a background thread).
/// All functions taking a `redilock *` may be called from any number of threads at once,
/// except `redilock_free`.
pub struct redilock {
    client: Client,
    /// A handle does not survive `fork()`: its sockets and event queue are shared with the
    /// parent, so a child must neither use nor tear them down.
    owner_pid: u32,
}

/// Options for `redilock_new_with_options`. A builder owned by one thread at a time.
pub struct redilock_options {
    options: Options,
}

/// A cancellation signal for `redilock_lock_cancellable`. Thread-safe: trigger it from any
/// thread while a lock call waits on it. Once triggered it stays triggered.
pub struct redilock_cancel {
    signal: CancelSignal,
}

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
    pub max_hold_ms: u64,
    /// With `auto_renew`: told when the lock is lost. NULL: nobody is told (query with
    /// `redilock_renewal_lost`, or wait with `redilock_renewal_wait`).
    pub on_lost: redilock_lost_callback,
    /// Passed to `on_lost`, untouched.
    pub on_lost_data: *mut c_void,
    /// Frees `on_lost_data` when the library is done with it (see `redilock_data_drop`).
    /// NULL: the caller frees it, after unlock (since 0.2).
    pub on_lost_data_drop: redilock_data_drop,
}

/// The size of `redilock_lock_params` in 0.1, the smallest `struct_size` accepted.
const LOCK_PARAMS_V0_1_SIZE: usize = std::mem::offset_of!(redilock_lock_params, on_lost_data_drop);

/// Why a call failed: the status and the text for `redilock_last_error()`.
struct Failure {
    status: redilock_status,
    message: String,
}

impl From<Error> for Failure {
    fn from(err: Error) -> Self {
        let status = match &err {
            Error::InvalidArgument(_) => REDILOCK_STATUS_INVALID_ARGUMENT,
            Error::NotAcquired(_) => REDILOCK_STATUS_NOT_ACQUIRED,
            Error::NotOwner(_) => REDILOCK_STATUS_NOT_OWNER,
            Error::Cancelled(_) => REDILOCK_STATUS_CANCELLED,
            Error::Closed(_) => REDILOCK_STATUS_CLOSED,
            Error::Connection(_) => REDILOCK_STATUS_CONNECTION,
            Error::Redis(_) => REDILOCK_STATUS_REDIS,
        };
        Failure {
            status,
            message: err.to_string(),
        }
    }
}

fn invalid(message: impl Into<String>) -> Failure {
    Failure {
        status: REDILOCK_STATUS_INVALID_ARGUMENT,
        message: message.into(),
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(message: &str) {
    let text = CString::new(message.replace('\0', " ")).unwrap_or_default();
    let _ = LAST_ERROR.try_with(|slot| *slot.borrow_mut() = text);
}

/// Runs an exported body: a failure or a panic becomes a status plus a last-error message.
fn boundary(body: impl FnOnce() -> Result<(), Failure>) -> redilock_status {
    let failure = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => return REDILOCK_STATUS_OK,
        Ok(Err(failure)) => failure,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Failure {
                status: REDILOCK_STATUS_PANIC,
                message: format!("internal error in redilock: {what}"),
            }
        }
    };
    set_last_error(&failure.message);
    failure.status
}

fn null_argument(what: &str) -> Failure {
    Failure {
        status: REDILOCK_STATUS_NULL_ARGUMENT,
        message: format!("{what} is NULL"),
    }
}

fn non_null<'a, T>(ptr: *const T, what: &str) -> Result<&'a T, Failure> {
    // SAFETY: the caller promises `ptr` is NULL or valid for the duration of the call.
    unsafe { ptr.as_ref() }.ok_or_else(|| null_argument(what))
}

fn c_str<'a>(ptr: *const c_char, what: &str) -> Result<&'a [u8], Failure> {
    non_null(ptr, what)?;
    // SAFETY: non-NULL, and the caller promises a NUL-terminated string.
    Ok(unsafe { CStr::from_ptr(ptr) }.to_bytes())
}

fn non_null_mut<'a, T>(ptr: *mut T, what: &str) -> Result<&'a mut T, Failure> {
    // SAFETY: the caller promises `ptr` is NULL or valid and writable for the call.
    unsafe { ptr.as_mut() }.ok_or_else(|| null_argument(what))
}

fn token_from(ptr: *const c_char) -> Result<Token, Failure> {
    Ok(Token::from_string(String::from_utf8_lossy(c_str(
        ptr, "token",
    )?)))
}

fn live_client<'a>(ptr: *const redilock) -> Result<&'a Client, Failure> {
    let handle = non_null(ptr, "client")?;
    if handle.owner_pid != std::process::id() {
        return Err(Failure {
            status: REDILOCK_STATUS_WRONG_PROCESS,
            message: "this client was created before fork(); create a new client in this process"
                .into(),
        });
    }
    Ok(&handle.client)
}

fn options_mut<'a>(ptr: *mut redilock_options) -> Result<&'a mut Options, Failure> {
    non_null_mut(ptr, "options").map(|o| &mut o.options)
}

fn positive_ms(ms: u64, what: &str) -> Result<Duration, Failure> {
    if ms == 0 {
        return Err(invalid(format!("the {what} must be greater than 0 ms")));
    }
    Ok(Duration::from_millis(ms))
}

fn wait_from(timeout_ms: i64) -> Result<Wait, Failure> {
    match timeout_ms {
        REDILOCK_WAIT_FOREVER => Ok(Wait::Forever),
        REDILOCK_NO_WAIT => Ok(Wait::TryOnce),
        ms if ms > 0 => Ok(Wait::AtMost(Duration::from_millis(ms as u64))),
        ms => Err(invalid(format!(
            "timeout_ms must be -1 (forever), 0 (try once) or positive, not {ms}"
        ))),
    }
}

/// Moves a new object to the caller through `out` (checked for NULL first).
fn hand_out<T>(out: *mut *mut T, value: T) -> Result<(), Failure> {
    let out = non_null_mut(out, "output pointer")?; // before boxing: a refused value is dropped
    *out = Box::into_raw(Box::new(value));
    Ok(())
}

fn new_client(
    url: *const c_char,
    options: Options,
    client_out: *mut *mut redilock,
) -> Result<(), Failure> {
    if !client_out.is_null() {
        // SAFETY: checked non-NULL; cleared so a failed call never leaves a stale pointer.
        unsafe { *client_out = ptr::null_mut() };
    }
    let url = std::str::from_utf8(c_str(url, "redis_url")?)
        .map_err(|_| invalid("redis_url is not valid UTF-8"))?;
    let client = Client::new(url, options)?;
    hand_out(
        client_out,
        redilock {
            client,
            owner_pid: std::process::id(),
        },
    )
}

fn ttl_from(ttl_ms: u64) -> Option<Duration> {
    (ttl_ms != 0).then(|| Duration::from_millis(ttl_ms))
}

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
    cancel: Option<&'a CancelSignal>,
    renewal: Option<KeepAlive>,
    fence_out: Option<&'a mut u64>,
}

fn lock_into(
    client_ptr: *mut redilock,
    name: *const c_char,
    ttl_ms: u64,
    timeout_ms: i64,
    extras: LockExtras,
    token_out: *mut c_char,
    token_out_len: usize,
) -> Result<(), Failure> {
    clear_token(token_out, token_out_len);
    let client = live_client(client_ptr)?;
    let name = c_str(name, "name")?;
    non_null(token_out, "token_out")?;
    if token_out_len < REDILOCK_TOKEN_LEN {
        return Err(invalid(format!(
            "token_out_len is {token_out_len}; a token needs REDILOCK_TOKEN_LEN ({REDILOCK_TOKEN_LEN}) bytes"
        )));
    }
    let wait = wait_from(timeout_ms)?;
    let ttl = ttl_from(ttl_ms);
    let lease = match extras.cancel {
        Some(cancel) => client.lock_cancellable(name, ttl, wait, cancel)?,
        None => client.lock(name, ttl, wait)?,
    };
    if let Some(keep) = extras.renewal {
        if let Err(err) = client.keep_alive(name, &lease, keep) {
            let _ = client.unlock(name, &lease.token); // leave no lock behind
            return Err(err.into());
        }
    }
    let bytes = lease.token.as_str().as_bytes();
    // SAFETY: the buffer holds at least REDILOCK_TOKEN_LEN = bytes.len() + 1 bytes.
    unsafe {
        ptr::copy_nonoverlapping(bytes.as_ptr(), token_out.cast::<u8>(), bytes.len());
        *token_out.add(bytes.len()) = 0;
    }
    if let Some(fence_out) = extras.fence_out {
        *fence_out = lease.fence;
    }
    Ok(())
}

/// Reads the caller's parameters (NULL: the defaults) into what the lock call needs.
fn lock_extras<'a>(
    params: *const redilock_lock_params,
    name: *const c_char,
    fence_out: *mut u64,
) -> Result<LockExtras<'a>, Failure> {
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
    // SAFETY: the caller promises NULL or a live cancel handle that outlives the call.
    extras.cancel = unsafe { params.cancel.as_ref() }.map(|cancel| &cancel.signal);
    if params.auto_renew {
        let max_hold = (params.max_hold_ms != 0).then(|| Duration::from_millis(params.max_hold_ms));
        let on_lost = params
            .on_lost
            .map(|callback| lost_notice(callback, data, name));
        extras.renewal = Some(KeepAlive { max_hold, on_lost });
    }
    Ok(extras)
}

/// A copy of the caller's parameters, of whatever version: fields beyond its `struct_size`
/// keep their defaults.
fn read_params(
    params: *const redilock_lock_params,
) -> Result<Option<redilock_lock_params>, Failure> {
    if params.is_null() {
        return Ok(None);
    }
    // SAFETY: non-NULL; the caller promises a parameter block of at least `struct_size`
    // bytes, the first field of every version.
    let size = unsafe { *params.cast::<usize>() };
    let ours = std::mem::size_of::<redilock_lock_params>();
    if size < LOCK_PARAMS_V0_1_SIZE {
        return Err(invalid(
            "params->struct_size is too small: initialise params with redilock_lock_params_init",
        ));
    }
    if size > ours {
        return Err(invalid(format!(
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

/// Creates an options object with the defaults: retry interval 250 ms, connect timeout 2000 ms,
/// command timeout 2000 ms, no default TTL, empty key prefix.
///
/// On success `*options_out` owns a new object; free it with `redilock_options_free` (it may
/// be freed right after `redilock_new_with_options`, which copies it).
#[no_mangle]
pub extern "C" fn redilock_options_new(options_out: *mut *mut redilock_options) -> redilock_status {
    boundary(|| {
        hand_out(
            options_out,
            redilock_options {
                options: Options::default(),
            },
        )
    })
}

/// How often a waiter re-checks a held lock when no release message reaches it. Must be > 0.
#[no_mangle]
pub extern "C" fn redilock_options_set_retry_interval_ms(
    options: *mut redilock_options,
    retry_interval_ms: u64,
) -> redilock_status {
    boundary(|| {
        let options = options_mut(options)?;
        options.retry_interval = positive_ms(retry_interval_ms, "retry interval")?;
        Ok(())
    })
}

/// How long establishing a connection may take. Must be > 0.
#[no_mangle]
pub extern "C" fn redilock_options_set_connect_timeout_ms(
    options: *mut redilock_options,
    connect_timeout_ms: u64,
) -> redilock_status {
    boundary(|| {
        let options = options_mut(options)?;
        options.connect_timeout = positive_ms(connect_timeout_ms, "connect timeout")?;
        Ok(())
    })
}

/// How long one Redis command may wait for its reply. Must be > 0.
#[no_mangle]
pub extern "C" fn redilock_options_set_command_timeout_ms(
    options: *mut redilock_options,
    command_timeout_ms: u64,
) -> redilock_status {
    boundary(|| {
        let options = options_mut(options)?;
        options.command_timeout = positive_ms(command_timeout_ms, "command timeout")?;
        Ok(())
    })
}

/// TTL used by lock calls that pass `ttl_ms = 0`; 0 here means every call must pass one.
/// At most `REDILOCK_MAX_TTL_MS`.
#[no_mangle]
pub extern "C" fn redilock_options_set_default_ttl_ms(
    options: *mut redilock_options,
    default_ttl_ms: u64,
) -> redilock_status {
    boundary(|| {
        let options = options_mut(options)?;
        if default_ttl_ms > REDILOCK_MAX_TTL_MS {
            return Err(invalid(format!(
                "the default TTL must be at most {REDILOCK_MAX_TTL_MS} ms"
            )));
        }
        options.default_ttl = ttl_from(default_ttl_ms);
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
        options_mut(options)?.key_prefix = prefix;
        Ok(())
    })
}

/// Frees an options object. NULL is a no-op.
#[no_mangle]
pub extern "C" fn redilock_options_free(options: *mut redilock_options) {
    if !options.is_null() {
        // SAFETY: made by redilock_options_new and, per the contract, freed once.
        let _ = catch_unwind(|| drop(unsafe { Box::from_raw(options) }));
    }
}

/// Creates a client for `redis_url` with default options and `default_ttl_ms` (0: every lock
/// call must pass a TTL).
///
/// URLs: `redis://[user:password@]host[:port][/db]` and `unix:///path/to/redis.sock`. No I/O
/// happens here: the client connects on first use (see `redilock_ping`) and reconnects by
/// itself after Redis comes back.
///
/// On success `*client_out` owns a new client; free it with `redilock_free`. On failure it is
/// set to NULL. The URL string is not retained.
#[no_mangle]
pub extern "C" fn redilock_new(
    redis_url: *const c_char,
    default_ttl_ms: u64,
    client_out: *mut *mut redilock,
) -> redilock_status {
    boundary(|| {
        let options = Options {
            default_ttl: ttl_from(default_ttl_ms),
            ..Options::default()
        };
        new_client(redis_url, options, client_out)
    })
}

/// Like `redilock_new`, with options (NULL: the defaults). The options are copied; the object
/// stays owned by the caller.
#[no_mangle]
pub extern "C" fn redilock_new_with_options(
    redis_url: *const c_char,
    options: *const redilock_options,
    client_out: *mut *mut redilock,
) -> redilock_status {
    boundary(|| {
        // SAFETY: the caller promises NULL or a live options object.
        let options = unsafe { options.as_ref() }
            .map(|o| o.options.clone())
            .unwrap_or_default();
        new_client(redis_url, options, client_out)
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
/// connect timeout when it has to open a connection, whatever Redis or the network does.
#[no_mangle]
pub extern "C" fn redilock_lock(
    client: *mut redilock,
    name: *const c_char,
    ttl_ms: u64,
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
    ttl_ms: u64,
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
                cancel: Some(cancel),
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
    ttl_ms: u64,
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

/// Resets the TTL of the lock `name` held by `token` to `ttl_ms` (1 to `REDILOCK_MAX_TTL_MS`;
/// 0 is refused before anything is sent, since it would delete the lock). Atomic and
/// owner-checked: NOT_OWNER when the token does not hold the lock, which is never re-created.
#[no_mangle]
pub extern "C" fn redilock_extend(
    client: *mut redilock,
    name: *const c_char,
    token: *const c_char,
    ttl_ms: u64,
) -> redilock_status {
    boundary(|| {
        let client = live_client(client)?;
        let name = c_str(name, "name")?;
        let token = token_from(token)?;
        Ok(client.extend(name, &token, Duration::from_millis(ttl_ms))?)
    })
}

/// Writes the remaining TTL in milliseconds of the lock `name` held by `token` to
/// `*ttl_ms_out` (`UINT64_MAX`: the key has no expiry, which only other software sets).
/// NOT_OWNER when the token does not hold it.
#[no_mangle]
pub extern "C" fn redilock_ttl(
    client: *mut redilock,
    name: *const c_char,
    token: *const c_char,
    ttl_ms_out: *mut u64,
) -> redilock_status {
    boundary(|| {
        let client = live_client(client)?;
        let name = c_str(name, "name")?;
        let token = token_from(token)?;
        let out = non_null_mut(ttl_ms_out, "ttl_ms_out")?;
        let remaining = client.remaining_ttl(name, &token)?;
        *out = remaining.map_or(u64::MAX, |ttl| ttl.as_millis() as u64);
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
        *out = client.renewal_lost(&token).ok_or_else(|| {
            invalid("this token has no auto-renewal (never requested, or already unlocked)")
        })?;
        Ok(())
    })
}

/// Blocks until the auto-renewed lock held by `token` is lost, then sets `*lost_out` to true;
/// sets it to false when the renewal ends without a loss (`redilock_unlock`) or `timeout_ms`
/// passes first (-1 waits forever, 0 only checks). `cancel` (may be NULL) ends the wait with
/// CANCELLED, `redilock_close` with CLOSED. INVALID_ARGUMENT when that token has no
/// auto-renewal. For bindings that cannot take a callback on a library thread: one thread
/// waits here instead of polling `redilock_renewal_lost`.
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
        let wait = wait_from(timeout_ms)?;
        // SAFETY: the caller promises NULL or a live cancel handle that outlives the call.
        let cancel = unsafe { cancel.as_ref() }.map(|cancel| &cancel.signal);
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
        let client = live_client(client)?;
        let name = c_str(name, "name")?;
        let token = token_from(token)?;
        Ok(client.unlock(name, &token)?)
    })
}

/// Sends PING: OK when Redis answers (connecting first if needed).
#[no_mangle]
pub extern "C" fn redilock_ping(client: *mut redilock) -> redilock_status {
    boundary(|| Ok(live_client(client)?.ping()?))
}

/// Closes a client, and keeps the handle valid until `redilock_free`. Every wait on it ends
/// with CLOSED (an attempt in flight is given back), and every later call returns CLOSED
/// without sending anything. Auto-renewal stops: renewed locks count as lost, their
/// `on_lost` callbacks run, and have returned when this does (unless it is called from
/// inside one). What failed calls left to give back is flushed to Redis for at most the
/// connect timeout plus the command timeout. Locks still held are not released: their TTL
/// ends them. Idempotent and thread-safe: calls in progress on other threads end within
/// their own bounds; a second `redilock_close` returns at once.
#[no_mangle]
pub extern "C" fn redilock_close(client: *mut redilock) -> redilock_status {
    boundary(|| {
        live_client(client)?.close();
        Ok(())
    })
}

/// Frees a client: closes it as `redilock_close` does, if that was not done, then releases
/// its memory, connections and background thread. NULL is a no-op. No other call may use the
/// client during or after this one (close it first to end calls waiting on other threads),
/// and it must not be called from inside an `on_lost` callback of the same client. Locks still
/// held are not released (their TTL ends them). In a forked child the parent's handle is only
/// forgotten, never torn down twice.
#[no_mangle]
pub extern "C" fn redilock_free(client: *mut redilock) {
    if client.is_null() {
        return;
    }
    // SAFETY: made by redilock_new* and, per the contract, freed once.
    let handle = unsafe { Box::from_raw(client) };
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if handle.owner_pid == std::process::id() {
            drop(handle);
        } else {
            // Tearing the handle down here would unregister sockets from the event queue the
            // child shares with its parent: keep it, reachable, for the life of the child.
            static INHERITED: Mutex<Vec<redilock>> = Mutex::new(Vec::new());
            INHERITED
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(*handle);
        }
    }));
}

/// Creates a cancellation signal. On success `*cancel_out` owns it; free it with
/// `redilock_cancel_free` once no call uses it.
#[no_mangle]
pub extern "C" fn redilock_cancel_new(cancel_out: *mut *mut redilock_cancel) -> redilock_status {
    boundary(|| {
        hand_out(
            cancel_out,
            redilock_cancel {
                signal: CancelSignal::new(),
            },
        )
    })
}

/// Triggers `cancel`: every lock call waiting on it returns `REDILOCK_STATUS_CANCELLED`, and
/// gives back what an attempt in flight may take. Thread-safe; NULL is a no-op.
#[no_mangle]
pub extern "C" fn redilock_cancel_trigger(cancel: *const redilock_cancel) {
    // SAFETY: the caller promises NULL or a live signal.
    if let Some(cancel) = unsafe { cancel.as_ref() } {
        let _ = catch_unwind(AssertUnwindSafe(|| cancel.signal.cancel()));
    }
}

/// Frees a cancellation signal. NULL is a no-op.
#[no_mangle]
pub extern "C" fn redilock_cancel_free(cancel: *mut redilock_cancel) {
    if !cancel.is_null() {
        // SAFETY: made by redilock_cancel_new and, per the contract, freed once.
        let _ = catch_unwind(|| drop(unsafe { Box::from_raw(cancel) }));
    }
}

/// The message of the last failed call on this thread ("" if none). Never NULL. Success does
/// not clear it. The pointer stays valid until the next failing call on this thread.
#[no_mangle]
pub extern "C" fn redilock_last_error() -> *const c_char {
    LAST_ERROR
        .try_with(|slot| slot.borrow().as_ptr())
        .unwrap_or(c"".as_ptr())
}

/// A static description of a status ("unknown status" for numbers not defined). Never NULL.
#[no_mangle]
pub extern "C" fn redilock_status_str(status: redilock_status) -> *const c_char {
    let text = match status {
        REDILOCK_STATUS_OK => c"ok",
        REDILOCK_STATUS_INVALID_ARGUMENT => c"invalid argument",
        REDILOCK_STATUS_NULL_ARGUMENT => c"NULL argument",
        REDILOCK_STATUS_WRONG_PROCESS => {
            c"client used in another process than the one that created it"
        }
        REDILOCK_STATUS_NOT_ACQUIRED => c"lock not acquired: held by another owner",
        REDILOCK_STATUS_NOT_OWNER => c"not the owner of the lock",
        REDILOCK_STATUS_CANCELLED => c"wait cancelled",
        REDILOCK_STATUS_CLOSED => c"client closed",
        REDILOCK_STATUS_CONNECTION => c"cannot reach Redis",
        REDILOCK_STATUS_REDIS => c"Redis replied with an error",
        REDILOCK_STATUS_PANIC => c"internal error",
        _ => c"unknown status",
    };
    text.as_ptr()
}

/// The library version ("MAJOR.MINOR.PATCH"), static.
#[no_mangle]
pub extern "C" fn redilock_version() -> *const c_char {
    static VERSION: &CStr =
        match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
            Ok(version) => version,
            Err(_) => panic!("version contains NUL"),
        };
    VERSION.as_ptr()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_constants_match_cargo_toml() {
        assert_eq!(
            REDILOCK_VERSION_MAJOR.to_string(),
            env!("CARGO_PKG_VERSION_MAJOR")
        );
        assert_eq!(
            REDILOCK_VERSION_MINOR.to_string(),
            env!("CARGO_PKG_VERSION_MINOR")
        );
        assert_eq!(
            REDILOCK_VERSION_PATCH.to_string(),
            env!("CARGO_PKG_VERSION_PATCH")
        );
        // SAFETY: static NUL-terminated string.
        let runtime = unsafe { CStr::from_ptr(redilock_version()) };
        assert_eq!(runtime.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn panics_become_a_status_and_a_message() {
        let status = boundary(|| panic!("boom"));
        assert_eq!(status, REDILOCK_STATUS_PANIC);
        // SAFETY: never NULL, valid until the next failing call on this thread.
        let message = unsafe { CStr::from_ptr(redilock_last_error()) };
        assert!(message.to_str().unwrap().contains("boom"));
    }
}
