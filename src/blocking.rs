//! The blocking client: the async client driven by a small private tokio runtime, for
//! callers that have threads rather than futures (and for the C ABI).

use crate::cancel::CancelSignal;
use crate::error::{Error, Result};
use crate::options::{Options, Wait};
use crate::token::Token;
use std::time::Duration;

/// A blocking lock client, safe to share between threads (`&Client` from any number of
/// threads at once). Each call blocks the calling thread.
///
/// The private runtime has no threads of its own: a calling thread drives the network I/O
/// itself, so an uncontended call costs its round trips and no thread hand-offs. When several
/// threads call at once, one of them drives the I/O for all and wakes the others.
///
/// Do not call it from inside an async runtime; use [`crate::Client`] there.
pub struct Client {
    runtime: tokio::runtime::Runtime,
    inner: crate::Client,
}

impl Client {
    /// Creates a client; no I/O happens until the first call.
    pub fn new(redis_url: &str, options: Options) -> Result<Client> {
        let inner = crate::Client::new(redis_url, options)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Connection(format!("cannot start the I/O driver: {e}")))?;
        Ok(Client { runtime, inner })
    }

    /// The options this client was created with.
    pub fn options(&self) -> &Options {
        self.inner.options()
    }

    /// See [`crate::Client::lock`].
    pub fn lock(&self, name: impl AsRef<[u8]>, ttl: Option<Duration>, wait: Wait) -> Result<Token> {
        self.runtime.block_on(self.inner.lock(name, ttl, wait))
    }

    /// See [`crate::Client::lock_cancellable`].
    pub fn lock_cancellable(
        &self,
        name: impl AsRef<[u8]>,
        ttl: Option<Duration>,
        wait: Wait,
        cancel: &CancelSignal,
    ) -> Result<Token> {
        self.runtime
            .block_on(self.inner.lock_cancellable(name, ttl, wait, cancel))
    }

    /// See [`crate::Client::unlock`].
    pub fn unlock(&self, name: impl AsRef<[u8]>, token: &Token) -> Result<()> {
        self.runtime.block_on(self.inner.unlock(name, token))
    }

    /// See [`crate::Client::ping`].
    pub fn ping(&self) -> Result<()> {
        self.runtime.block_on(self.inner.ping())
    }
}
