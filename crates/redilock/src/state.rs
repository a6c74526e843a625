//! What anyone can read of a lock without owning it.

use std::time::Duration;

/// What [`crate::Client::state`] reads of a lock without owning it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockState {
    /// Nobody holds it.
    Free,
    /// Held by someone.
    Held {
        /// How long until it expires; `None` for a lock without expiry (which only a lock set
        /// by other software can have).
        remaining: Option<Duration>,
    },
}

impl LockState {
    /// From a PTTL reply: -2 when free, -1 when held without expiry.
    pub(crate) fn from_pttl(reply_ms: i64) -> LockState {
        match reply_ms {
            -2 => LockState::Free,
            ms => LockState::Held {
                remaining: u64::try_from(ms).ok().map(Duration::from_millis),
            },
        }
    }
}
