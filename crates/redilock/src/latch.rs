//! A latch: set once, awaited by anyone. The building block of cancellation, of closing a
//! client and of lease-loss notices, each set on one thread and awaited on another.

use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::Notify;

#[derive(Default)]
pub(crate) struct Latch {
    set: AtomicBool,
    notify: Notify,
}

impl Latch {
    /// Sets the latch and wakes every waiter; returns whether it was already set.
    pub(crate) fn set(&self) -> bool {
        let was_set = self.set.swap(true, Ordering::SeqCst);
        self.notify.notify_waiters();
        was_set
    }

    pub(crate) fn is_set(&self) -> bool {
        self.set.load(Ordering::SeqCst)
    }

    /// Resolves once the latch is set.
    pub(crate) async fn wait(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            // Register before checking, so a `set` in between is not missed.
            notified.as_mut().enable();
            if self.is_set() {
                return;
            }
            notified.await;
        }
    }
}
