//! A cancellation signal for waits, usable from any thread (the C ABI hands it to other
//! languages, whose own cancellation — a Go context, say — fires it).

use crate::flag::Flag;
use std::sync::Arc;

/// Cancels the waits it is passed to. Cloning shares the signal; once cancelled it stays so.
///
/// Cancellation only ends the *waiting*: an acquisition attempt already sent to Redis is
/// allowed to finish, and a lock it took is kept and returned, so a cancel racing the
/// acquisition never leaves a lock held that nobody knows about.
#[derive(Clone, Default)]
pub struct CancelSignal {
    flag: Arc<Flag>,
}

impl CancelSignal {
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels every current and future wait that uses this signal.
    pub fn cancel(&self) {
        self.flag.set();
    }

    pub fn is_cancelled(&self) -> bool {
        self.flag.is_set()
    }

    /// Resolves once the signal is cancelled.
    pub async fn cancelled(&self) {
        self.flag.wait().await
    }
}
