//! A cancellation signal for waits, usable from any thread (the C ABI hands it to other
//! languages, whose own cancellation — a Go context, say — fires it).

use crate::latch::Latch;
use std::sync::Arc;

/// Cancels the waits it is passed to. Cloning shares the signal; once cancelled it stays so.
///
/// A cancel seen before a lock call returns always wins: the call ends with
/// [`crate::Error::Cancelled`] within milliseconds, sends nothing if the signal was already
/// cancelled, and gives back a lock that an attempt in flight took meanwhile.
#[derive(Clone, Default)]
pub struct CancelSignal {
    latch: Arc<Latch>,
}

impl CancelSignal {
    /// A signal not cancelled yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels every current and future wait that uses this signal.
    pub fn cancel(&self) {
        self.latch.set();
    }

    /// Whether [`CancelSignal::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.latch.is_set()
    }

    /// Resolves once the signal is cancelled.
    pub async fn cancelled(&self) {
        self.latch.wait().await
    }
}
