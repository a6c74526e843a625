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
    /// A quorum client always barges: turns cannot be kept across independent masters.
    pub fair: bool,
    /// How many replicas must acknowledge each lock write (an acquisition, an extend, a
    /// renewal) before it counts: the client sends `WAIT` after the write, on the same
    /// connection and in the same round trip. A lock that fewer replicas acknowledged is
    /// released and the call fails with [`Error::NotReplicated`]; a renewal short of them is
    /// retried while the lease lasts. Default [`ReplicaAcks::Auto`].
    pub replica_acks: ReplicaAcks,
    /// How long a lock write waits for those acknowledgements (`WAIT`'s timeout); `None` (the
    /// default): half the command timeout, which leaves the other half for the round trips of
    /// the write and of the release that follows a shortfall. At least 1 ms, and shorter than
    /// the command timeout, which bounds the write and its `WAIT` together.
    pub replica_ack_timeout: Option<Duration>,
    /// `rediss://` only: a PEM file of the certificate authorities that may sign the server's
    /// certificate, trusted instead of the system's roots. Read when the client is created.
    pub tls_ca_file: Option<PathBuf>,
    /// `rediss://` only: the certificate this client presents to servers that ask for one
    /// (mutual TLS). Read when the client is created.
    pub tls_client_cert: Option<TlsClientCert>,
    /// Quorum clients only (see [`crate::Client::new_quorum`]): how many masters must grant a
    /// lock (and its extensions) for it to count. `None` (the default): a majority, N/2 + 1.
    /// More than half of the masters, so that two holders can never both have one.
    pub quorum: Option<usize>,
    /// Quorum clients only: how long one master may take to answer one call before it counts
    /// as failed for that call. Small against the TTL, so that a dead or paused master costs
    /// little of the lease. `None` (the default): a tenth of the TTL, at least 50 ms, at most
    /// the command timeout.
    pub node_timeout: Option<Duration>,
}

/// How many replicas must acknowledge a lock write (see [`Options::replica_acks`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplicaAcks {
    /// One when the server is a primary with replicas connected, none otherwise. The client
    /// sends `ROLE` in front of its first lock write, in the same round trip, and again after a
    /// write got no reply or fell short (a failover, a replica gone); a Redis user that may not
    /// run `ROLE` gets none.
    #[default]
    Auto,
    /// This many replicas; `Count(0)` sends no `WAIT`.
    Count(u32),
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
            replica_acks: ReplicaAcks::Auto,
            replica_ack_timeout: None,
            tls_ca_file: None,
            tls_client_cert: None,
            quorum: None,
            node_timeout: None,
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
        if self.node_timeout.is_some_and(|timeout| timeout.is_zero()) {
            return Err(Error::InvalidArgument(
                "the node timeout must be greater than 0".into(),
            ));
        }
        self.check_replica_ack_timeout()
    }

    /// `WAIT`'s timeout: the one set, else half the command timeout (never 0, which would
    /// make `WAIT` wait forever).
    pub(crate) fn replica_ack_timeout(&self) -> Duration {
        self.replica_ack_timeout
            .unwrap_or(self.command_timeout / 2)
            .max(Duration::from_millis(1))
    }

    /// The write and its `WAIT` share one command timeout, so that a lock call keeps its bound.
    fn check_replica_ack_timeout(&self) -> Result<()> {
        let Some(timeout) = self.replica_ack_timeout else {
            return Ok(());
        };
        if timeout.as_millis() == 0 {
            return Err(Error::InvalidArgument(
                "the replica acknowledgement timeout must be at least 1 ms".into(),
            ));
        }
        if timeout >= self.command_timeout {
            return Err(Error::InvalidArgument(format!(
                "the replica acknowledgement timeout ({} ms) must be shorter than the command \
                 timeout ({} ms), which bounds a lock write and its WAIT together",
                timeout.as_millis(),
                self.command_timeout.as_millis()
            )));
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

    #[test]
    fn the_replica_ack_timeout_fits_inside_the_command_timeout() {
        let with_timeout = |ms| Options {
            replica_ack_timeout: Some(Duration::from_millis(ms)),
            ..Options::default()
        };
        assert_eq!(
            Options::default().replica_ack_timeout(),
            Duration::from_secs(1)
        );
        assert!(with_timeout(1999).validate().is_ok());
        let refused = with_timeout(2000).validate().unwrap_err();
        assert_eq!(
            refused.to_string(),
            "the replica acknowledgement timeout (2000 ms) must be shorter than the command \
             timeout (2000 ms), which bounds a lock write and its WAIT together"
        );
        assert!(with_timeout(0).validate().is_err());
        let tiny = Options {
            command_timeout: Duration::from_millis(1),
            ..Options::default()
        };
        assert_eq!(tiny.replica_ack_timeout(), Duration::from_millis(1));
    }
}
