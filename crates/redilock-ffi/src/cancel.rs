//! `redilock_cancel`: a signal that ends waits, triggered from any thread.

use crate::boundary::{boundary, free_box, hand_out, optional};
use crate::status::redilock_status;
use redilock_core::CancelSignal;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// A cancellation signal for `redilock_lock_cancellable`, `redilock_lock_ex` and
/// `redilock_renewal_wait`. Thread-safe: trigger it from any thread while a call waits on it.
/// Once triggered it stays triggered.
pub struct redilock_cancel {
    pub(crate) signal: CancelSignal,
}

/// Creates a cancellation signal. On success `*cancel_out` owns it; free it with
/// `redilock_cancel_free` once no call uses it.
#[no_mangle]
pub extern "C" fn redilock_cancel_new(cancel_out: *mut *mut redilock_cancel) -> redilock_status {
    boundary(|| {
        let signal = CancelSignal::new();
        hand_out(cancel_out, redilock_cancel { signal })
    })
}

/// Triggers `cancel`: every call waiting on it returns `REDILOCK_STATUS_CANCELLED`, and gives
/// back what an attempt in flight may take. Thread-safe; NULL is a no-op.
#[no_mangle]
pub extern "C" fn redilock_cancel_trigger(cancel: *const redilock_cancel) {
    if let Some(cancel) = optional(cancel) {
        let _ = catch_unwind(AssertUnwindSafe(|| cancel.signal.cancel()));
    }
}

/// Frees a cancellation signal. NULL is a no-op.
#[no_mangle]
pub extern "C" fn redilock_cancel_free(cancel: *mut redilock_cancel) {
    free_box(cancel)
}
