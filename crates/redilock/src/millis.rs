//! The one rule for durations that front ends pass as whole milliseconds: the C ABI, and
//! through it the C++, Go and Ruby bindings, which only convert their own units (rounding up,
//! so that a positive duration never becomes 0). Every range check and every message about a
//! duration is here, in the words a caller sees.

use crate::error::{Error, Result};
use crate::options::{check_ttl, Wait};
use std::time::Duration;

/// `-1` in a wait: wait until acquired.
pub const WAIT_FOREVER: i64 = -1;
/// `0` in a wait: try once.
pub const NO_WAIT: i64 = 0;

/// A lock's TTL: 0 means the client's default TTL (`None`), otherwise 1 ms to
/// [`crate::MAX_TTL`].
pub fn ttl(ms: i64) -> Result<Option<Duration>> {
    optional(ms, "TTL")?.map(check_ttl).transpose()
}

/// How long a lock call waits: [`WAIT_FOREVER`], [`NO_WAIT`] or a positive limit.
pub fn wait(ms: i64) -> Result<Wait> {
    match ms {
        WAIT_FOREVER => Ok(Wait::Forever),
        NO_WAIT => Ok(Wait::TryOnce),
        ms if ms > 0 => Ok(Wait::AtMost(Duration::from_millis(ms as u64))),
        ms => Err(Error::InvalidArgument(format!(
            "the timeout must be -1 (wait forever), 0 (try once) or positive, not {ms} ms"
        ))),
    }
}

/// A duration that must be greater than 0 (a timeout, an interval, the TTL of an extend).
pub fn positive(ms: i64, what: &str) -> Result<Duration> {
    optional(ms, what)?
        .ok_or_else(|| Error::InvalidArgument(format!("the {what} must be greater than 0 ms")))
}

/// A duration where 0 means "none" (no default TTL, no cap on the hold).
pub fn optional(ms: i64, what: &str) -> Result<Option<Duration>> {
    match ms {
        0 => Ok(None),
        ms if ms > 0 => Ok(Some(Duration::from_millis(ms as u64))),
        ms => Err(Error::InvalidArgument(format!(
            "the {what} must not be negative, not {ms} ms"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MAX_TTL;

    #[test]
    fn the_rules() {
        assert_eq!(ttl(0), Ok(None));
        assert_eq!(ttl(1500), Ok(Some(Duration::from_millis(1500))));
        assert!(ttl(-1).is_err());
        assert!(ttl(MAX_TTL.as_millis() as i64 + 1).is_err());
        assert_eq!(wait(-1), Ok(Wait::Forever));
        assert_eq!(wait(0), Ok(Wait::TryOnce));
        assert!(wait(-2).is_err());
        assert!(positive(0, "retry interval").is_err());
        assert_eq!(optional(0, "hold"), Ok(None));
        assert!(optional(i64::MIN, "hold")
            .unwrap_err()
            .to_string()
            .contains("negative"));
    }
}
