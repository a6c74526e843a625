//! The boundary every exported body runs inside: a panic becomes `REDILOCK_STATUS_PANIC`
//! instead of unwinding into C, a failure becomes a status and a last-error message, and every
//! pointer is checked before use.

use crate::status::{
    redilock_status, set_last_error, ErrorStatus, REDILOCK_STATUS_NULL_ARGUMENT,
    REDILOCK_STATUS_OK, REDILOCK_STATUS_PANIC,
};
use redilock_core::Token;
use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// What an exported body returns.
pub(crate) type Outcome = Result<(), ErrorStatus>;

/// Runs an exported body: a failure or a panic becomes a status plus a last-error message.
pub(crate) fn boundary(body: impl FnOnce() -> Outcome) -> redilock_status {
    let failure = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => return REDILOCK_STATUS_OK,
        Ok(Err(failure)) => failure,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            ErrorStatus::new(
                REDILOCK_STATUS_PANIC,
                format!("internal error in redilock: {what}"),
            )
        }
    };
    set_last_error(&failure.message);
    failure.status
}

/// Frees an object made by a `_new` function; NULL is a no-op (`_free` functions return
/// nothing, so a panic is only contained).
pub(crate) fn free_box<T>(object: *mut T) {
    if !object.is_null() {
        // SAFETY: made by Box::into_raw in `hand_out` and, per the contract, freed once.
        let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(object) })));
    }
}

/// Moves a new object to the caller through `out` (checked for NULL first).
pub(crate) fn hand_out<T>(out: *mut *mut T, value: T) -> Outcome {
    let out = non_null_mut(out, "output pointer")?; // before boxing: a refused value is dropped
    *out = Box::into_raw(Box::new(value));
    Ok(())
}

pub(crate) fn null_argument(what: &str) -> ErrorStatus {
    ErrorStatus::new(REDILOCK_STATUS_NULL_ARGUMENT, format!("{what} is NULL"))
}

pub(crate) fn non_null<'a, T>(ptr: *const T, what: &str) -> Result<&'a T, ErrorStatus> {
    // SAFETY: the caller promises `ptr` is NULL or valid for the duration of the call.
    unsafe { ptr.as_ref() }.ok_or_else(|| null_argument(what))
}

pub(crate) fn non_null_mut<'a, T>(ptr: *mut T, what: &str) -> Result<&'a mut T, ErrorStatus> {
    // SAFETY: the caller promises `ptr` is NULL or valid and writable for the call.
    unsafe { ptr.as_mut() }.ok_or_else(|| null_argument(what))
}

/// An optional pointer: NULL is `None`.
pub(crate) fn optional<'a, T>(ptr: *const T) -> Option<&'a T> {
    // SAFETY: the caller promises NULL or a live object for the duration of the call.
    unsafe { ptr.as_ref() }
}

pub(crate) fn c_str<'a>(ptr: *const c_char, what: &str) -> Result<&'a [u8], ErrorStatus> {
    non_null(ptr, what)?;
    // SAFETY: non-NULL, and the caller promises a NUL-terminated string.
    Ok(unsafe { CStr::from_ptr(ptr) }.to_bytes())
}

pub(crate) fn token_from(ptr: *const c_char) -> Result<Token, ErrorStatus> {
    let text = String::from_utf8_lossy(c_str(ptr, "token")?);
    Ok(Token::from_string(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::redilock_last_error;

    #[test]
    fn panics_become_a_status_and_a_message() {
        let status = boundary(|| panic!("boom"));
        assert_eq!(status, REDILOCK_STATUS_PANIC);
        // SAFETY: never NULL, valid until the next failing call on this thread.
        let message = unsafe { CStr::from_ptr(redilock_last_error()) };
        assert!(message.to_str().unwrap().contains("boom"));
    }
}
