//! Client options and the validation of per-call arguments (done before anything is sent).

use crate::cancel::CancelSignal;
use crate::error::{Error, Result};
use crate::renewal::AutoRenew;
use std::path::PathBuf;
use std::time::Duration;

/// The longest TTL accepted: 2^62 ms, the largest `PX` Redis takes (an effectively eternal lock).
pub const MAX_TTL: Duration = Duration::from_millis(1 << 62);

/// How a client connects and waits. `Options::default()` gives the documented defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// How often a waiter looks at the lock when nothing wakes it: a safety net (default 10 s).
    /// A waiter is handed the lock by the release itself, and the first in line also looks when
    /// the holder's TTL runs out; neither waits for this interval.
    pub retry_interval: Duration,
    /// How long establishing a connection may take (default 2 s).
    pub connect_timeout: Duration,
    /// How long one command may wait for its reply (default 2 s).
    pub command_timeout: Duration,
    /// TTL used when a call passes none; `None` makes the TTL mandatory on each call.
    pub default_ttl: Option<Duration>,
    /// Bytes put in front of every lock name to form its Redis key (default empty, so the key is
    /// the name itself, as in python-redilock).
    pub key_prefix: Vec<u8>,
    /// Fair (the default): waiters take turns in arrival order, and a release hands the lock
    /// to the first in line. Not fair: this client's calls take a free lock whoever waits, and
    /// its waiters are only woken to try again. For short critical sections where throughput
    /// matters more than order; there is no bound on how long a waiter may be passed over.
    pub fair: bool,
    /// `rediss://` only: a PEM file of the certificate authorities that may sign the server's
    /// certificate, trusted instead of the system's roots. Read when the client is created.
    pub tls_ca_file: Option<PathBuf>,
    /// `rediss://` only: the certificate this client presents to servers that ask for one
    /// (mutual TLS). Read when the client is created.
    pub tls_client_cert: Option<TlsClientCert>,
}

/// A client certificate and its private key, two PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsClientCert {
    /// The certificate, optionally followed by the intermediate certificates of its chain.
    pub cert_file: PathBuf,
    /// Its private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            retry_interval: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(2),
            command_timeout: Duration::from_secs(2),
            default_ttl: None,
            key_prefix: Vec::new(),
            fair: true,
            tls_ca_file: None,
            tls_client_cert: None,
        }
    }
}

impl Options {
    pub(crate) fn validate(&self) -> Result<()> {
        for (what, value) in [
            ("retry interval", self.retry_interval),
            ("connect timeout", self.connect_timeout),
            ("command timeout", self.command_timeout),
        ] {
            if value.is_zero() {
                return Err(Error::InvalidArgument(format!(
                    "the {what} must be greater than 0"
                )));
            }
        }
        if let Some(ttl) = self.default_ttl {
            check_ttl(ttl)?;
        }
        Ok(())
    }

    /// The TTL of one call: the explicit one, else the default; one of them is required.
    pub(crate) fn effective_ttl(&self, ttl: Option<Duration>) -> Result<Duration> {
        let ttl = ttl.or(self.default_ttl).ok_or_else(|| {
            Error::InvalidArgument(
                "a TTL is required: pass one or set a default TTL on the client".into(),
            )
        })?;
        check_ttl(ttl)?;
        Ok(ttl)
    }
}

/// A TTL Redis can take: 1 ms to [`MAX_TTL`]; returns it.
pub(crate) fn check_ttl(ttl: Duration) -> Result<Duration> {
    if ttl.as_millis() == 0 {
        return Err(Error::InvalidArgument(
            "the TTL must be at least 1 ms".into(),
        ));
    }
    if ttl > MAX_TTL {
        return Err(Error::InvalidArgument(format!(
            "the TTL must be at most {} ms",
            MAX_TTL.as_millis()
        )));
    }
    Ok(ttl)
}

/// What a lock call may add to a plain one (see `lock_with` on either client).
#[derive(Default)]
pub struct LockOptions<'a> {
    /// Ends the wait with [`crate::Error::Cancelled`] when cancelled.
    pub cancel: Option<&'a CancelSignal>,
    /// Renews the lock from the moment it is taken; the renewal is in place before the call
    /// returns, or the lock is given back and the call fails.
    pub auto_renew: Option<AutoRenew>,
}

/// How long `lock` waits for a lock held by someone else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// One attempt, no waiting.
    TryOnce,
    /// Wait at most this long, then fail with [`Error::NotAcquired`].
    AtMost(Duration),
    /// Wait until acquired (or cancelled, or Redis fails).
    Forever,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_rules() {
        let opts = Options::default();
        assert!(opts.effective_ttl(None).is_err());
        assert!(opts.effective_ttl(Some(Duration::ZERO)).is_err());
        assert!(opts
            .effective_ttl(Some(Duration::from_micros(500)))
            .is_err());
        assert!(opts.effective_ttl(Some(MAX_TTL)).is_ok());
        assert!(opts
            .effective_ttl(Some(MAX_TTL + Duration::from_millis(1)))
            .is_err());
        let with_default = Options {
            default_ttl: Some(Duration::from_secs(3)),
            ..Options::default()
        };
        assert_eq!(with_default.effective_ttl(None), Ok(Duration::from_secs(3)));
        assert_eq!(
            with_default.effective_ttl(Some(Duration::from_secs(1))),
            Ok(Duration::from_secs(1))
        );
    }

    #[test]
    fn zero_intervals_are_rejected() {
        let opts = Options {
            retry_interval: Duration::ZERO,
            ..Options::default()
        };
        assert!(opts.validate().is_err());
        assert!(Options::default().validate().is_ok());
    }
}
