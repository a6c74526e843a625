//! The status codes every call returns, and the thread-local last error that says more.

use redilock_core::Error;
use std::cell::RefCell;
use std::ffi::{c_char, CString};

/// A status code. The numbers are stable and never reused: 0 is success, 1xx a caller error,
/// 2xx an expected outcome, 3xx a problem in the environment, 9xx an internal error.
pub type redilock_status = u32;

/// Success.
pub const REDILOCK_STATUS_OK: redilock_status = 0;
/// An argument is unusable (empty name, negative TTL, short buffer, bad URL…); nothing was sent.
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
/// Redis is unreachable, the connection broke, or a reply timed out: the outcome is unknown,
/// and nothing is left held by the call once Redis answers again.
pub const REDILOCK_STATUS_CONNECTION: redilock_status = 300;
/// Redis replied with an error (NOAUTH, NOPERM, READONLY, OOM, WRONGTYPE…).
pub const REDILOCK_STATUS_REDIS: redilock_status = 301;
/// A `rediss://` connection could not be set up: the TLS handshake failed, or a certificate
/// was refused (the server's by this client, or this client's by the server). Nothing was sent.
pub const REDILOCK_STATUS_TLS: redilock_status = 302;
/// Fewer replicas acknowledged a lock write in time than `redilock_options_set_replica_acks`
/// asks for: the lock was released (a failover could have lost it).
pub const REDILOCK_STATUS_NOT_REPLICATED: redilock_status = 303;
/// A quorum client (`redilock_new_quorum`) could not reach enough masters: more than N − quorum
/// failed or did not answer within the node timeout, so whether the lock is free is unknown
/// (NOT_ACQUIRED, by contrast, means enough masters answered that it is held). The last error
/// names each master and its answer. Nothing is left held once they answer again.
pub const REDILOCK_STATUS_QUORUM_UNAVAILABLE: redilock_status = 304;
/// A bug in the library was caught at the boundary; the handle may be unusable.
pub const REDILOCK_STATUS_PANIC: redilock_status = 900;

/// Why a call failed: its status and the text for `redilock_last_error()`.
pub(crate) struct ErrorStatus {
    pub(crate) status: redilock_status,
    pub(crate) message: String,
}

impl ErrorStatus {
    pub(crate) fn new(status: redilock_status, message: impl Into<String>) -> Self {
        ErrorStatus {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        ErrorStatus::new(REDILOCK_STATUS_INVALID_ARGUMENT, message)
    }
}

impl From<Error> for ErrorStatus {
    fn from(err: Error) -> Self {
        let status = match &err {
            Error::InvalidArgument(_) => REDILOCK_STATUS_INVALID_ARGUMENT,
            Error::NotAcquired(_) => REDILOCK_STATUS_NOT_ACQUIRED,
            Error::NotOwner(_) => REDILOCK_STATUS_NOT_OWNER,
            Error::Cancelled(_) => REDILOCK_STATUS_CANCELLED,
            Error::Closed(_) => REDILOCK_STATUS_CLOSED,
            Error::Connection(_) => REDILOCK_STATUS_CONNECTION,
            Error::Redis(_) => REDILOCK_STATUS_REDIS,
            Error::Tls(_) => REDILOCK_STATUS_TLS,
            Error::NotReplicated(_) => REDILOCK_STATUS_NOT_REPLICATED,
            Error::QuorumUnavailable(_) => REDILOCK_STATUS_QUORUM_UNAVAILABLE,
        };
        ErrorStatus::new(status, err.to_string())
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

pub(crate) fn set_last_error(message: &str) {
    let text = CString::new(message.replace('\0', " ")).unwrap_or_default();
    let _ = LAST_ERROR.try_with(|slot| *slot.borrow_mut() = text);
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
        REDILOCK_STATUS_TLS => c"TLS handshake with Redis failed",
        REDILOCK_STATUS_NOT_REPLICATED => c"lock write not acknowledged by enough replicas",
        REDILOCK_STATUS_QUORUM_UNAVAILABLE => c"too few masters answered to form a quorum",
        REDILOCK_STATUS_PANIC => c"internal error",
        _ => c"unknown status",
    };
    text.as_ptr()
}
