//! The blocking client, for callers that have threads rather than futures (and for the C
//! ABI): plain calls go straight over direct connections; waits for a release run the async
//! client on a small private tokio runtime.

use crate::cancel::CancelSignal;
use crate::client::{owner_checked, owner_ttl, LockRequest, LockStatus};
use crate::commands::{self, Attempt, Call};
use crate::direct::DirectConnections;
pub use crate::direct::DIRECT_CONNECTIONS;
use crate::error::{Error, Result};
use crate::lease::{KeepAlive, Lease, Renewal};
use crate::options::{Options, Wait};
use crate::token::Token;
use once_cell::sync::OnceCell;
use std::time::Duration;
use tokio::time::Instant;

/// A blocking lock client, safe to share between threads (`&Client` from any number of
/// threads at once). Each call blocks the calling thread.
///
/// A call borrows one of a few direct connections and does its own network I/O, so an
/// uncontended call costs its round trips and nothing more; a thread that finds them all
/// busy shares the multiplexed connection instead. Waiting for a release (pub/sub wake-ups,
/// re-checks) runs the async client on a private runtime with no threads of its own: a
/// waiting thread drives it, and when several wait, one drives the I/O for all.
/// Auto-renewal, and the release of what a failed attempt may have taken, must run while no
/// call is made: they get one background thread and one connection of their own, started
/// when first needed.
///
/// Do not call it from inside an async runtime; use [`crate::Client`] there.
pub struct Client {
    runtime: tokio::runtime::Runtime,
    inner: crate::Client,
    direct: DirectConnections,
    url: String,
    background: OnceCell<Background>,
}

/// The thread that sends renewals and background releases, with its own connection (a
/// separate async client).
struct Background {
    client: crate::Client,
    runtime: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Client {
    /// Creates a client; no I/O happens until the first call.
    pub fn new(redis_url: &str, options: Options) -> Result<Client> {
        let inner = crate::Client::new(redis_url, options)?;
        let direct = inner.direct_connections();
        Ok(Client {
            runtime: new_runtime()?,
            inner,
            direct,
            url: redis_url.to_string(),
            background: OnceCell::new(),
        })
    }

    /// The options this client was created with.
    pub fn options(&self) -> &Options {
        self.inner.options()
    }

    /// See [`crate::Client::lock`].
    pub fn lock(&self, name: impl AsRef<[u8]>, ttl: Option<Duration>, wait: Wait) -> Result<Lease> {
        self.acquire(self.inner.lock_request(name.as_ref(), ttl, wait, None)?)
    }

    /// See [`crate::Client::lock_cancellable`].
    pub fn lock_cancellable(
        &self,
        name: impl AsRef<[u8]>,
        ttl: Option<Duration>,
        wait: Wait,
        cancel: &CancelSignal,
    ) -> Result<Lease> {
        self.acquire(
            self.inner
                .lock_request(name.as_ref(), ttl, wait, Some(cancel))?,
        )
    }

    /// See [`crate::Client::unlock`].
    pub fn unlock(&self, name: impl AsRef<[u8]>, token: &Token) -> Result<()> {
        let name = name.as_ref();
        let key = self.inner.key(name)?;
        let lease_was_lost = self.inner.stop_renewal(token);
        let released = self.send::<i64>(&commands::release(&key, token))? == 1;
        owner_checked(name, released && !lease_was_lost)
    }

    /// See [`crate::Client::extend`].
    pub fn extend(&self, name: impl AsRef<[u8]>, token: &Token, ttl: Duration) -> Result<()> {
        let name = name.as_ref();
        let key = self.inner.key(name)?;
        let ttl = self.options().effective_ttl(Some(ttl))?;
        let extended = self.send::<i64>(&commands::extend(&key, token, ttl))? == 1;
        owner_checked(name, extended)
    }

    /// See [`crate::Client::remaining_ttl`].
    pub fn remaining_ttl(&self, name: impl AsRef<[u8]>, token: &Token) -> Result<Option<Duration>> {
        let name = name.as_ref();
        let key = self.inner.key(name)?;
        owner_ttl(name, self.send(&commands::remaining(&key, token))?)
    }

    /// See [`crate::Client::status`].
    pub fn status(&self, name: impl AsRef<[u8]>) -> Result<LockStatus> {
        let key = self.inner.key(name.as_ref())?;
        Ok(LockStatus::from_pttl(self.send(&commands::pttl(&key))?))
    }

    /// See [`crate::Client::keep_alive`]; renewals run on this client's background thread.
    pub fn keep_alive(
        &self,
        name: impl AsRef<[u8]>,
        lease: &Lease,
        keep: KeepAlive,
    ) -> Result<Renewal> {
        let background = self.background()?;
        self.inner.keep_alive_on(
            name.as_ref(),
            lease,
            keep,
            &background.client,
            &background.runtime,
        )
    }

    /// Whether the auto-renewed lease of `token` was lost; `None` when it is not auto-renewed.
    pub fn renewal_lost(&self, token: &Token) -> Option<bool> {
        self.inner.renewal_lost(token)
    }

    /// See [`crate::Client::ping`].
    pub fn ping(&self) -> Result<()> {
        self.send::<String>(&commands::ping()).map(drop)
    }

    /// The first attempt goes straight over a direct connection; only a wait needs the runtime.
    fn acquire(&self, request: LockRequest<'_>) -> Result<Lease> {
        let asked = Instant::now();
        let call = commands::acquire(&request.key, &request.token, request.ttl, None);
        let first = self
            .send::<(i64, i64)>(&call)
            .inspect_err(|_| self.abandon_later(&request))?;
        match first.into() {
            Attempt::Acquired(fence) => Ok(request.lease(fence, asked)),
            held => self
                .runtime
                .block_on(self.inner.after_first_attempt(&request, held, asked)),
        }
    }

    /// Gives back what a failed attempt may have taken, on the background thread so that the
    /// error returns at once.
    fn abandon_later(&self, request: &LockRequest<'_>) {
        if let Ok(background) = self.background() {
            background
                .client
                .abandon_later(request, &background.runtime);
        }
    }

    fn background(&self) -> Result<&Background> {
        self.background
            .get_or_try_init(|| Background::start(&self.url, self.options()))
    }

    /// Sends one call over a direct connection, or the multiplexed one when all are busy.
    fn send<T: redis::FromRedisValue>(&self, call: &Call) -> Result<T> {
        self.direct
            .send(call)
            .unwrap_or_else(|| self.runtime.block_on(self.inner.send(call)))
    }
}

impl Background {
    fn start(url: &str, options: &Options) -> Result<Background> {
        let client = crate::Client::new(url, options.clone())?;
        let runtime = new_runtime()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("redilock-bg".into())
            .spawn(move || {
                let _ = runtime.block_on(stopped);
            })
            .map_err(|e| Error::Connection(format!("cannot start the background thread: {e}")))?;
        Ok(Background {
            client,
            runtime: handle,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn new_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Connection(format!("cannot start the I/O driver: {e}")))
}
