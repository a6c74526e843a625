//! A cancellation signal for waits, usable from any thread (the C ABI hands it to other
//! languages, whose own cancellation — a Go context, say — fires it).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;

/// Cancels the waits it is passed to. Cloning shares the signal; once cancelled it stays so.
///
/// Cancellation only ends the *waiting*: an acquisition attempt already sent to Redis is
/// allowed to finish, and a lock it took is kept and returned, so a cancel racing the
/// acquisition never leaves a lock held that nobody knows about.
#[derive(Clone, Default)]
pub struct CancelSignal {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    cancelled: AtomicBool,
    notify: Notify,
}

impl CancelSignal {
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels every current and future wait that uses this signal.
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::SeqCst);
        self.inner.notify.notify_waiters();
    }

    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    /// Resolves once the signal is cancelled.
    pub async fn cancelled(&self) {
        loop {
            let notified = self.inner.notify.notified();
            tokio::pin!(notified);
            // Register before checking the flag so a cancel in between is not missed.
            notified.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }
}
