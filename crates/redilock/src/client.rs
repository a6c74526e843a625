//! The asynchronous (tokio) client: one line per operation over the engine.

use crate::background::BackgroundRuntime;
use crate::cancel::CancelSignal;
use crate::engine::Engine;
use crate::error::Result;
use crate::lease::Lease;
use crate::options::{LockOptions, Options, Wait};
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
    engine: Arc<Engine>,
}

impl Client {
    /// Creates a client for `redis_url`: `redis://[user[:password]@]host[:port][/db]`, the
    /// same with `rediss://` for TLS, `unix:///path/to/socket[?db=N]`, the primary Sentinel
    /// names (`redis+sentinel://[user:password@]host[:port],host[:port]/PRIMARY_NAME[/db]`,
    /// with `?sentinel_username=`/`sentinel_password=` for the sentinels' own credentials),
    /// or a Redis Cluster (`redis+cluster://[user:password@]host:port,host:port`); the last
    /// two with `rediss+` for TLS. The TLS files of `options` are read here.
    pub fn new(redis_url: &str, options: Options) -> Result<Client> {
        Ok(Client {
            engine: Arc::new(Engine::new(
                redis_url,
                options,
                BackgroundRuntime::CallersRuntime,
            )?),
        })
    }

    /// The options this client was created with.
    pub fn options(&self) -> &Options {
        &self.engine.options
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
        let request = self
            .engine
            .lock_request(name.as_ref(), ttl, wait, options)?;
        self.engine.lock(&*self.engine.connection, &request).await
    }

    /// Releases `name` if `token` holds it; [`crate::Error::NotOwner`] (and nothing deleted) otherwise.
    /// Stops the lock's auto-renewal; after a lost lease it reports `NotOwner`, never success.
    /// [`crate::Error::Connection`] means the outcome is unknown, and the client releases the lock
    /// itself as soon as Redis answers (or the lock expires).
    pub async fn unlock(&self, name: impl AsRef<[u8]>, token: &Token) -> Result<()> {
        let engine = &self.engine;
        engine
            .unlock(&*engine.connection, name.as_ref(), token)
            .await
    }

    /// Resets the TTL of a held lock to `ttl`, atomically and only for its owner. Never
    /// re-creates an expired lock: [`crate::Error::NotOwner`] then.
    pub async fn extend(&self, name: impl AsRef<[u8]>, token: &Token, ttl: Duration) -> Result<()> {
        let engine = &self.engine;
        engine
            .extend(&*engine.connection, name.as_ref(), token, ttl)
            .await
    }

    /// The remaining TTL of a lock `token` holds (`None`: it has no expiry, which only a lock
    /// set by other software can have); [`crate::Error::NotOwner`] when it does not hold it.
    pub async fn remaining_ttl(
        &self,
        name: impl AsRef<[u8]>,
        token: &Token,
    ) -> Result<Option<Duration>> {
        let engine = &self.engine;
        engine
            .remaining_ttl(&*engine.connection, name.as_ref(), token)
            .await
    }

    /// Whether anyone holds `name`, read without a token (for displays).
    pub async fn state(&self, name: impl AsRef<[u8]>) -> Result<LockState> {
        let engine = &self.engine;
        engine.state(&*engine.connection, name.as_ref()).await
    }

    /// Checks that Redis answers.
    pub async fn ping(&self) -> Result<()> {
        self.engine.ping(&*self.engine.connection).await
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
        self.engine.auto_renew(name.as_ref(), lease, settings)
    }

    /// Whether the auto-renewed lease of `token` was lost, without I/O.
    /// [`crate::Error::InvalidArgument`] when it is not auto-renewed (or was unlocked).
    pub fn renewal_lost(&self, token: &Token) -> Result<bool> {
        self.engine.renewal_lost(token)
    }

    /// Closes the client: waits in progress end with [`crate::Error::Closed`], later calls get it at
    /// once, auto-renewed leases stop being renewed and count as lost (their `on_lost` runs,
    /// and has returned when this does, unless called from inside one), and the cleanups
    /// still pending are given up to the connect timeout plus the command timeout to reach
    /// Redis. Locks still held are not released: their TTL ends them. Idempotent; a second
    /// call returns at once.
    pub async fn close(&self) {
        self.engine.close().await
    }

    /// Whether [`Client::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.engine.check_open().is_err()
    }
}
