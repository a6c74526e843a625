//! `redilock`: the client handle — creating, closing and freeing it, and ping. A handle does
//! not survive `fork()`: every call checks that it is used in the process that made it.

use crate::boundary::{boundary, c_str, hand_out, non_null, optional, Outcome};
use crate::options::redilock_options;
use crate::process::Process;
use crate::status::{redilock_status, ErrorStatus, REDILOCK_STATUS_WRONG_PROCESS};
use redilock_core::{blocking::Client, millis, Options};
use std::ffi::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::Mutex;

/// A lock client: a few connections and one wake-up subscription, shared by every thread that
/// calls it (a calling thread does its own I/O; waits, auto-renewal and the cleanup of failed
/// calls add one background thread). All functions taking a `redilock *` may be called from
/// any number of threads at once, except `redilock_free`.
pub struct redilock {
    client: Client,
    /// A handle does not survive `fork()`: its sockets and event queue are shared with the
    /// parent, so a child must neither use nor tear them down.
    made_in: Process,
}

impl redilock {
    /// A handle for `client`, made in this process.
    fn made_here(client: Client) -> redilock {
        let made_in = Process::current();
        redilock { client, made_in }
    }
}

/// The client behind a handle, once checked: not NULL, and made in this process.
pub(crate) fn live_client<'a>(ptr: *const redilock) -> Result<&'a Client, ErrorStatus> {
    let handle = non_null(ptr, "client")?;
    if handle.made_in != Process::current() {
        return Err(ErrorStatus::new(
            REDILOCK_STATUS_WRONG_PROCESS,
            "this client was created before fork(); create a new client in this process",
        ));
    }
    Ok(&handle.client)
}

/// Makes `*client_out` NULL first thing, so that a failed call never leaves a stale pointer.
fn clear(client_out: *mut *mut redilock) {
    if !client_out.is_null() {
        // SAFETY: checked non-NULL; the caller promises a writable pointer.
        unsafe { *client_out = ptr::null_mut() };
    }
}

fn new_client(url: *const c_char, options: Options, client_out: *mut *mut redilock) -> Outcome {
    let url = std::str::from_utf8(c_str(url, "redis_url")?)
        .map_err(|_| ErrorStatus::invalid("redis_url is not valid UTF-8"))?;
    let client = Client::new(url, options)?;
    hand_out(client_out, redilock::made_here(client))
}

/// Creates a client for `redis_url` with default options and `default_ttl_ms` (0: every lock
/// call must pass a TTL).
///
/// URLs: `redis://[user:password@]host[:port][/db]`, the same with `rediss://` for TLS,
/// `unix:///path/to/redis.sock`, `redis+sentinel://[user:password@]host[:port],host[:port]/
/// PRIMARY_NAME[/db]` (the primary that Sentinel names, followed across failovers; the
/// sentinels' own credentials as `?sentinel_username=..&sentinel_password=..`) and
/// `redis+cluster://[user:password@]host:port,host:port` (a Redis Cluster); the last two with
/// `rediss+` for TLS. Over TLS the server's certificate is verified against the
/// system's root certificates, or the options' CA file (`redilock_options_set_tls_ca_file`);
/// a URL ending in `#insecure` skips that verification. No network I/O happens here: the
/// client connects on first use (see `redilock_ping`) and reconnects by itself after Redis
/// comes back; a failed TLS handshake then returns REDILOCK_STATUS_TLS.
///
/// On success `*client_out` owns a new client; free it with `redilock_free`. On failure it is
/// set to NULL. The URL string is not retained.
#[no_mangle]
pub extern "C" fn redilock_new(
    redis_url: *const c_char,
    default_ttl_ms: i64,
    client_out: *mut *mut redilock,
) -> redilock_status {
    boundary(|| {
        clear(client_out);
        let options = Options {
            default_ttl: millis::ttl(default_ttl_ms)?,
            ..Options::default()
        };
        new_client(redis_url, options, client_out)
    })
}

/// Like `redilock_new`, with options (NULL: the defaults). The options are copied; the object
/// stays owned by the caller. The TLS files the options name are read here.
#[no_mangle]
pub extern "C" fn redilock_new_with_options(
    redis_url: *const c_char,
    options: *const redilock_options,
    client_out: *mut *mut redilock,
) -> redilock_status {
    boundary(|| {
        clear(client_out);
        let options = optional(options).map(|o| o.options.clone());
        new_client(redis_url, options.unwrap_or_default(), client_out)
    })
}

/// Creates a quorum client over `url_count` independent masters (at least 3), each given by a
/// single-server URL (`redis://`, `rediss://` or `unix://`, as for `redilock_new`), with
/// `options` (NULL: the defaults; `redilock_options_set_quorum` and
/// `redilock_options_set_node_timeout_ms` apply to quorum clients only).
///
/// Every call on the handle works as on a single-server client, asking every master at once:
/// a lock is held when a quorum (a majority by default) granted it with time left of its TTL
/// (the validity, given by `redilock_lock_params.validity_ms_out`); extend and auto-renewal
/// need a quorum too. Too many masters failing is REDILOCK_STATUS_QUORUM_UNAVAILABLE, never
/// NOT_ACQUIRED. Fencing numbers strictly increase across holders as long as no master loses
/// its data (run them with persistence). Waiters are woken by a release on any master, but
/// FIFO turns are not kept across masters (the fair option does not apply).
///
/// On success `*client_out` owns a new client; free it with `redilock_free`. On failure it is
/// set to NULL. Neither the array nor its strings are retained.
#[no_mangle]
pub extern "C" fn redilock_new_quorum(
    urls: *const *const c_char,
    url_count: usize,
    options: *const redilock_options,
    client_out: *mut *mut redilock,
) -> redilock_status {
    boundary(|| {
        clear(client_out);
        non_null(urls, "urls")?;
        // SAFETY: non-NULL; the caller promises `url_count` readable pointers.
        let urls = unsafe { std::slice::from_raw_parts(urls, url_count) };
        let urls = (urls.iter().enumerate())
            .map(|(at, &url)| {
                std::str::from_utf8(c_str(url, &format!("urls[{at}]"))?)
                    .map_err(|_| ErrorStatus::invalid(format!("urls[{at}] is not valid UTF-8")))
            })
            .collect::<Result<Vec<&str>, ErrorStatus>>()?;
        let options = optional(options).map(|o| o.options.clone());
        let client = Client::new_quorum(&urls, options.unwrap_or_default())?;
        hand_out(client_out, redilock::made_here(client))
    })
}

/// Sends PING: OK when Redis answers (connecting first if needed); a quorum client: when a
/// quorum of its masters answers.
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
        if handle.made_in == Process::current() {
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
