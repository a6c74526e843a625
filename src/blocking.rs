//! The blocking client: the async client driven by a small private tokio runtime, for
//! callers that have threads rather than futures (and for the C ABI).

use crate::cancel::CancelSignal;
use crate::client::LockStatus;
use crate::error::{Error, Result};
use crate::lease::{KeepAlive, Lease, Renewal};
use crate::options::{Options, Wait};
use crate::token::Token;
use once_cell::sync::OnceCell;
use std::time::Duration;

/// A blocking lock client, safe to share between threads (`&Client` from any number of
/// threads at once). Each call blocks the calling thread.
///
/// The private runtime has no threads of its own: a calling thread drives the network I/O
/// itself, so an uncontended call costs its round trips and no thread hand-offs. When several
/// threads call at once, one of them drives the I/O for all and wakes the others.
/// Auto-renewal, which must run while no call is made, gets one thread and one connection of
/// its own, started with the first renewed lock.
///
/// Do not call it from inside an async runtime; use [`crate::Client`] there.
pub struct Client {
    runtime: tokio::runtime::Runtime,
    inner: crate::Client,
    url: String,
    renewer: OnceCell<Renewer>,
}

/// The thread that sends renewals, with its own connection (a separate async client).
struct Renewer {
    client: crate::Client,
    runtime: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Client {
    /// Creates a client; no I/O happens until the first call.
    pub fn new(redis_url: &str, options: Options) -> Result<Client> {
        let inner = crate::Client::new(redis_url, options)?;
        Ok(Client {
            runtime: new_runtime()?,
            inner,
            url: redis_url.to_string(),
            renewer: OnceCell::new(),
        })
    }

    /// The options this client was created with.
    pub fn options(&self) -> &Options {
        self.inner.options()
    }

    /// See [`crate::Client::lock`].
    pub fn lock(&self, name: impl AsRef<[u8]>, ttl: Option<Duration>, wait: Wait) -> Result<Lease> {
        self.runtime.block_on(self.inner.lock(name, ttl, wait))
    }

    /// See [`crate::Client::lock_cancellable`].
    pub fn lock_cancellable(
        &self,
        name: impl AsRef<[u8]>,
        ttl: Option<Duration>,
        wait: Wait,
        cancel: &CancelSignal,
    ) -> Result<Lease> {
        self.runtime
            .block_on(self.inner.lock_cancellable(name, ttl, wait, cancel))
    }

    /// See [`crate::Client::unlock`].
    pub fn unlock(&self, name: impl AsRef<[u8]>, token: &Token) -> Result<()> {
        self.runtime.block_on(self.inner.unlock(name, token))
    }

    /// See [`crate::Client::extend`].
    pub fn extend(&self, name: impl AsRef<[u8]>, token: &Token, ttl: Duration) -> Result<()> {
        self.runtime.block_on(self.inner.extend(name, token, ttl))
    }

    /// See [`crate::Client::remaining_ttl`].
    pub fn remaining_ttl(&self, name: impl AsRef<[u8]>, token: &Token) -> Result<Option<Duration>> {
        self.runtime.block_on(self.inner.remaining_ttl(name, token))
    }

    /// See [`crate::Client::status`].
    pub fn status(&self, name: impl AsRef<[u8]>) -> Result<LockStatus> {
        self.runtime.block_on(self.inner.status(name))
    }

    /// See [`crate::Client::keep_alive`]; renewals run on this client's renewal thread.
    pub fn keep_alive(
        &self,
        name: impl AsRef<[u8]>,
        lease: &Lease,
        keep: KeepAlive,
    ) -> Result<Renewal> {
        let renewer = self
            .renewer
            .get_or_try_init(|| Renewer::start(&self.url, self.options()))?;
        self.inner.keep_alive_on(
            name.as_ref(),
            lease,
            keep,
            &renewer.client,
            &renewer.runtime,
        )
    }

    /// Whether the auto-renewed lease of `token` was lost; `None` when it is not auto-renewed.
    pub fn renewal_lost(&self, token: &Token) -> Option<bool> {
        self.inner.renewal_lost(token)
    }

    /// See [`crate::Client::ping`].
    pub fn ping(&self) -> Result<()> {
        self.runtime.block_on(self.inner.ping())
    }
}

impl Renewer {
    fn start(url: &str, options: &Options) -> Result<Renewer> {
        let client = crate::Client::new(url, options.clone())?;
        let runtime = new_runtime()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("redilock-renew".into())
            .spawn(move || {
                let _ = runtime.block_on(stopped);
            })
            .map_err(|e| Error::Connection(format!("cannot start the renewal thread: {e}")))?;
        Ok(Renewer {
            client,
            runtime: handle,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Renewer {
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
