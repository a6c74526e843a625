//! The asynchronous (tokio) client: one line per operation over the engine.

use crate::background::BackgroundRuntime;
use crate::cancel::CancelSignal;
use crate::engine::Engine;
use crate::error::Result;
use crate::lease::Lease;
use crate::options::{LockOptions, Options, Wait};
use crate::quorum::Quorum;
use crate::renewal::{AutoRenew, Renewal};
use crate::state::LockState;
use crate::token::Token;
use std::sync::Arc;
use std::time::Duration;

/// An asynchronous lock client. Cheap to clone; all clones share one multiplexed connection
/// and one wake-up subscription. Creating it does no I/O: it connects on first use and
/// reconnects by itself after Redis comes back. Its background work (wake-ups, renewals,
/// cleanups) runs on the tokio runtime of the call that first needs it.
#[derive(Clone)]
pub struct Client {
    backend: Arc<Backend>,
}

/// One deployment, or a quorum of independent masters.
enum Backend {
    One(Engine),
    Quorum(Quorum),
}

impl Client {
    /// Creates a client for `redis_url`: `redis://[user[:password]@]host[:port][/db]`, the
    /// same with `rediss://` for TLS, `unix:///path/to/socket[?db=N]`, the primary Sentinel
    /// names (`redis+sentinel://[user:password@]host[:port],host[:port]/PRIMARY_NAME[/db]`,
    /// with `?sentinel_username=`/`sentinel_password=` for the sentinels' own credentials),
    /// or a Redis Cluster (`redis+cluster://[user:password@]host:port,host:port`); the last
    /// two with `rediss+` for TLS. The TLS files of `options` are read here.
    pub fn new(redis_url: &str, options: Options) -> Result<Client> {
        let engine = Engine::new(redis_url, options, BackgroundRuntime::CallersRuntime)?;
        Ok(Client {
            backend: Arc::new(Backend::One(engine)),
        })
    }

    /// Creates a quorum client over independent masters (at least 3), each given by a
    /// single-server URL (`redis://`, `rediss://`, `unix://`): a lock is held when a quorum of
    /// them granted it ([`Options::quorum`], a majority by default) with time left of its TTL
    /// (the lease's [`Lease::validity`]); extensions and renewals need a quorum too. Fencing
    /// numbers strictly increase across holders as long as no master loses its data (run them
    /// with persistence). Waiters are woken by a release on any master, without FIFO turns.
    /// [`crate::Error::QuorumUnavailable`] means too many masters failed to answer.
    pub fn new_quorum(urls: &[impl AsRef<str>], options: Options) -> Result<Client> {
        let quorum = Quorum::new(urls, options, BackgroundRuntime::CallersRuntime)?;
        Ok(Client {
            backend: Arc::new(Backend::Quorum(quorum)),
        })
    }

    /// The options this client was created with.
    pub fn options(&self) -> &Options {
        match &*self.backend {
            Backend::One(engine) => &engine.options,
            Backend::Quorum(quorum) => quorum.options(),
        }
    }

    /// Acquires `name` for `ttl` (or the client's default TTL), waiting as `wait` says.
    /// Returns the lease: the owner token needed to unlock, and the fencing number.
    ///
    /// Dropping the returned future while an attempt is in flight releases whatever that
    /// attempt took, so wrapping it in `tokio::time::timeout` never leaks a lock.
    pub async fn lock(
        &self,
        name: impl AsRef<[u8]>,
        ttl: Option<Duration>,
        wait: Wait,
    ) -> Result<Lease> {
        self.lock_with(name, ttl, wait, LockOptions::default())
            .await
    }

    /// Like [`Client::lock`], and `cancel` ends the wait with [`crate::Error::Cancelled`] at
    /// once, giving back whatever an attempt in flight may take.
    pub async fn lock_cancellable(
        &self,
        name: impl AsRef<[u8]>,
        ttl: Option<Duration>,
        wait: Wait,
        cancel: &CancelSignal,
    ) -> Result<Lease> {
        let options = LockOptions {
            cancel: Some(cancel),
            ..LockOptions::default()
        };
        self.lock_with(name, ttl, wait, options).await
    }

    /// Like [`Client::lock`], with a cancel signal and auto-renewal from the start (see
    /// [`LockOptions`]).
    pub async fn lock_with(
        &self,
        name: impl AsRef<[u8]>,
        ttl: Option<Duration>,
        wait: Wait,
        options: LockOptions<'_>,
    ) -> Result<Lease> {
        let name = name.as_ref();
        match &*self.backend {
            Backend::One(engine) => {
                let request = engine.lock_request(name, ttl, wait, options)?;
                engine.lock(&*engine.connection, &request).await
            }
            Backend::Quorum(quorum) => {
                let request = quorum.lock_request(name, ttl, wait, options)?;
                quorum.lock(&request).await
            }
        }
    }

    /// Releases `name` if `token` holds it; [`crate::Error::NotOwner`] (and nothing deleted) otherwise.
    /// Stops the lock's auto-renewal; after a lost lease it reports `NotOwner`, never success.
    /// [`crate::Error::Connection`] means the outcome is unknown, and the client releases the lock
    /// itself as soon as Redis answers (or the lock expires).
    pub async fn unlock(&self, name: impl AsRef<[u8]>, token: &Token) -> Result<()> {
        match &*self.backend {
            Backend::One(engine) => {
                (engine.unlock(&*engine.connection, name.as_ref(), token)).await
            }
            Backend::Quorum(quorum) => quorum.unlock(name.as_ref(), token).await,
        }
    }

    /// Resets the TTL of a held lock to `ttl`, atomically and only for its owner. Never
    /// re-creates an expired lock: [`crate::Error::NotOwner`] then.
    pub async fn extend(&self, name: impl AsRef<[u8]>, token: &Token, ttl: Duration) -> Result<()> {
        match &*self.backend {
            Backend::One(engine) => {
                (engine.extend(&*engine.connection, name.as_ref(), token, ttl)).await
            }
            Backend::Quorum(quorum) => quorum.extend(name.as_ref(), token, ttl).await,
        }
    }

    /// The remaining TTL of a lock `token` holds (`None`: it has no expiry, which only a lock
    /// set by other software can have); [`crate::Error::NotOwner`] when it does not hold it.
    pub async fn remaining_ttl(
        &self,
        name: impl AsRef<[u8]>,
        token: &Token,
    ) -> Result<Option<Duration>> {
        match &*self.backend {
            Backend::One(engine) => {
                (engine.remaining_ttl(&*engine.connection, name.as_ref(), token)).await
            }
            Backend::Quorum(quorum) => quorum.remaining_ttl(name.as_ref(), token).await,
        }
    }

    /// Whether anyone holds `name`, read without a token (for displays).
    pub async fn state(&self, name: impl AsRef<[u8]>) -> Result<LockState> {
        match &*self.backend {
            Backend::One(engine) => engine.state(&*engine.connection, name.as_ref()).await,
            Backend::Quorum(quorum) => quorum.state(name.as_ref()).await,
        }
    }

    /// Checks that Redis answers (a quorum client: that a quorum of masters answers).
    pub async fn ping(&self) -> Result<()> {
        match &*self.backend {
            Backend::One(engine) => engine.ping(&*engine.connection).await,
            Backend::Quorum(quorum) => quorum.ping().await,
        }
    }

    /// Keeps `lease` on `name` alive until it is unlocked: renews it at about a third of its
    /// TTL, and marks it lost (calling `settings.on_lost`) when a renewal finds the lock gone
    /// or cannot reach Redis before the lease runs out. Renewal runs on the caller's tokio
    /// runtime (outside one: [`crate::Error::InvalidArgument`]) and stops at unlock, close, or
    /// when the client is dropped.
    pub fn auto_renew(
        &self,
        name: impl AsRef<[u8]>,
        lease: &Lease,
        settings: AutoRenew,
    ) -> Result<Renewal> {
        match &*self.backend {
            Backend::One(engine) => engine.auto_renew(name.as_ref(), lease, settings),
            Backend::Quorum(quorum) => quorum.auto_renew(name.as_ref(), lease, settings),
        }
    }

    /// Whether the auto-renewed lease of `token` was lost, without I/O.
    /// [`crate::Error::InvalidArgument`] when it is not auto-renewed (or was unlocked).
    pub fn renewal_lost(&self, token: &Token) -> Result<bool> {
        match &*self.backend {
            Backend::One(engine) => engine.renewal_lost(token),
            Backend::Quorum(quorum) => quorum.renewal_lost(token),
        }
    }

    /// Closes the client: waits in progress end with [`crate::Error::Closed`], later calls get it at
    /// once, auto-renewed leases stop being renewed and count as lost (their `on_lost` runs,
    /// and has returned when this does, unless called from inside one), and the cleanups
    /// still pending are given up to the connect timeout plus the command timeout to reach
    /// Redis. Locks still held are not released: their TTL ends them. Idempotent; a second
    /// call returns at once.
    pub async fn close(&self) {
        match &*self.backend {
            Backend::One(engine) => engine.close().await,
            Backend::Quorum(quorum) => quorum.close().await,
        }
    }

    /// Whether [`Client::close`] was called.
    pub fn is_closed(&self) -> bool {
        match &*self.backend {
            Backend::One(engine) => engine.check_open().is_err(),
            Backend::Quorum(quorum) => quorum.check_open().is_err(),
        }
    }
}
