//! The blocking client, for callers that have threads rather than futures (and for the C
//! ABI): it runs the async client's operations, with plain calls sent straight over direct
//! connections; waits for a release run on a small private tokio runtime.

use crate::background::{new_runtime, Background};
use crate::cancel::CancelSignal;
use crate::client::{Inner, LockRequest, LockStatus};
use crate::commands::Attempt;
use crate::direct::DirectConnections;
pub use crate::direct::DIRECT_CONNECTIONS;
use crate::error::Result;
use crate::lease::{KeepAlive, Lease, Renewal};
use crate::options::{Options, Wait};
use crate::token::Token;
use crate::transport::{run_now, CallingThread};
use std::time::Duration;
use tokio::time::Instant;

/// A blocking lock client, safe to share between threads (`&Client` from any number of
/// threads at once). Each call blocks the calling thread, for at most its own bound: the
/// wait it asks for plus one command timeout (plus the connect timeout when it has to open a
/// connection), whatever Redis or the network does.
///
/// A call borrows one of a few direct connections and does its own network I/O, so an
/// uncontended call costs its round trips and nothing more; a thread that finds them all
/// busy shares the multiplexed connection instead. Waiting for a release (pub/sub wake-ups,
/// re-checks) runs on a private runtime with no threads of its own: a waiting thread drives
/// it, and when several wait, one drives the I/O for all. What must go on while no call is
/// made (the wake-up subscription, auto-renewal, giving back what failed calls may hold) runs
/// on one background thread with its own connection, started when first needed.
///
/// Do not call it from inside an async runtime; use [`crate::Client`] there.
pub struct Client {
    runtime: tokio::runtime::Runtime,
    inner: Inner,
    direct: DirectConnections,
}

impl Client {
    /// Creates a client; no I/O happens until the first call.
    pub fn new(redis_url: &str, options: Options) -> Result<Client> {
        let inner = Inner::new(
            redis_url,
            options,
            Background::OwnThread(Default::default()),
        )?;
        let opts = &inner.options;
        let direct = DirectConnections::new(
            inner.connection.redis_client().clone(),
            opts.connect_timeout,
            opts.command_timeout,
        );
        Ok(Client {
            runtime: new_runtime()?,
            inner,
            direct,
        })
    }

    /// The options this client was created with.
    pub fn options(&self) -> &Options {
        &self.inner.options
    }

    /// See [`crate::Client::lock`].
    pub fn lock(&self, name: impl AsRef<[u8]>, ttl: Option<Duration>, wait: Wait) -> Result<Lease> {
        self.acquire(&self.inner.lock_request(name.as_ref(), ttl, wait, None)?)
    }

    /// See [`crate::Client::lock_cancellable`].
    pub fn lock_cancellable(
        &self,
        name: impl AsRef<[u8]>,
        ttl: Option<Duration>,
        wait: Wait,
        cancel: &CancelSignal,
    ) -> Result<Lease> {
        let request = self
            .inner
            .lock_request(name.as_ref(), ttl, wait, Some(cancel))?;
        self.acquire(&request)
    }

    /// See [`crate::Client::unlock`].
    pub fn unlock(&self, name: impl AsRef<[u8]>, token: &Token) -> Result<()> {
        self.run(self.inner.unlock(&self.transport(), name.as_ref(), token))
    }

    /// See [`crate::Client::extend`].
    pub fn extend(&self, name: impl AsRef<[u8]>, token: &Token, ttl: Duration) -> Result<()> {
        self.run(
            self.inner
                .extend(&self.transport(), name.as_ref(), token, ttl),
        )
    }

    /// See [`crate::Client::remaining_ttl`].
    pub fn remaining_ttl(&self, name: impl AsRef<[u8]>, token: &Token) -> Result<Option<Duration>> {
        self.run(
            self.inner
                .remaining_ttl(&self.transport(), name.as_ref(), token),
        )
    }

    /// See [`crate::Client::status`].
    pub fn status(&self, name: impl AsRef<[u8]>) -> Result<LockStatus> {
        self.run(self.inner.status(&self.transport(), name.as_ref()))
    }

    /// See [`crate::Client::ping`].
    pub fn ping(&self) -> Result<()> {
        self.run(self.inner.ping(&self.transport()))
    }

    /// See [`crate::Client::keep_alive`]; renewals run on this client's background thread.
    pub fn keep_alive(
        &self,
        name: impl AsRef<[u8]>,
        lease: &Lease,
        keep: KeepAlive,
    ) -> Result<Renewal> {
        self.inner.keep_alive(name.as_ref(), lease, keep)
    }

    /// Whether the auto-renewed lease of `token` was lost; `None` when it is not auto-renewed.
    pub fn renewal_lost(&self, token: &Token) -> Option<bool> {
        self.inner.renewal(token).map(|state| state.is_lost())
    }

    /// Blocks until the auto-renewed lease of `token` is lost (`Ok(true)`), or until its
    /// renewal ends without a loss (unlock) or `wait` runs out (`Ok(false)`). `cancel` ends
    /// the wait with [`crate::Error::Cancelled`], closing the client with
    /// [`crate::Error::Closed`]. [`crate::Error::InvalidArgument`] when `token` has no
    /// auto-renewal.
    pub fn wait_for_loss(
        &self,
        token: &Token,
        wait: Wait,
        cancel: Option<&CancelSignal>,
    ) -> Result<bool> {
        self.runtime
            .block_on(self.inner.wait_for_loss(token, wait, cancel))
    }

    /// See [`crate::Client::close`]. Safe to call from any thread while other calls are in
    /// progress; they end within their own bounds, and a lock one of them takes afterwards is
    /// given back.
    pub fn close(&self) {
        self.runtime.block_on(self.inner.close());
        self.direct.close();
    }

    /// Whether [`Client::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.inner.check_open().is_err()
    }

    /// The first attempt goes straight over a direct connection; only a wait needs the runtime.
    fn acquire(&self, request: &LockRequest<'_>) -> Result<Lease> {
        let asked = Instant::now();
        let first = self.run(self.inner.first_attempt(&self.transport(), request))?;
        match first {
            Attempt::Acquired(fence) => self.inner.keep(request, fence, asked),
            other => self
                .runtime
                .block_on(self.inner.after_first_attempt(request, other, asked)),
        }
    }

    fn transport(&self) -> CallingThread<'_> {
        CallingThread {
            direct: &self.direct,
            shared: &self.inner.connection,
            runtime: &self.runtime,
        }
    }

    fn run<F: std::future::Future>(&self, operation: F) -> F::Output {
        run_now(&self.runtime, operation)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.close();
    }
}
