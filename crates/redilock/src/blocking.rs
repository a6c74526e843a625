//! The blocking client, for callers that have threads rather than futures (and for the C
//! ABI): it runs the engine's operations with plain calls sent straight over the calling
//! thread's own connections; waits for a release run on a small private tokio runtime.

use crate::background::{new_runtime, BackgroundRuntime};
use crate::cancel::CancelSignal;
use crate::engine::Engine;
use crate::error::Result;
use crate::lease::Lease;
use crate::options::{LockOptions, Options, Wait};
use crate::protocol::calls::Attempt;
use crate::renewal::{AutoRenew, Renewal};
use crate::state::LockState;
use crate::token::Token;
pub use crate::transport::DIRECT_CONNECTIONS;
use crate::transport::{run_now, CallingThread, ConnectionPool};
use std::time::Duration;
use tokio::time::Instant;

/// A blocking lock client, safe to share between threads (`&Client` from any number of
/// threads at once). Each call blocks the calling thread, for at most its own bound: the
/// wait it asks for plus one command timeout (plus the connect timeout for each connection it
/// has to open), whatever Redis or the network does.
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
    engine: Engine,
    pool: ConnectionPool,
}

impl Client {
    /// Creates a client for `redis_url` (see [`crate::Client::new`]); it reads the TLS files of
    /// `options`, and connects on the first call.
    pub fn new(redis_url: &str, options: Options) -> Result<Client> {
        let background = BackgroundRuntime::OwnThread(Default::default());
        let engine = Engine::new(redis_url, options, background)?;
        let opts = &engine.options;
        let pool = ConnectionPool::new(
            engine.connection.deployment().clone(),
            opts.connect_timeout,
            opts.command_timeout,
        );
        Ok(Client {
            runtime: new_runtime()?,
            engine,
            pool,
        })
    }

    /// The options this client was created with.
    pub fn options(&self) -> &Options {
        &self.engine.options
    }

    /// See [`crate::Client::lock`].
    pub fn lock(&self, name: impl AsRef<[u8]>, ttl: Option<Duration>, wait: Wait) -> Result<Lease> {
        self.lock_with(name, ttl, wait, LockOptions::default())
    }

    /// See [`crate::Client::lock_cancellable`].
    pub fn lock_cancellable(
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
        self.lock_with(name, ttl, wait, options)
    }

    /// See [`crate::Client::lock_with`]; renewals run on this client's background thread.
    /// The first attempt goes straight over the calling thread's connection; only a wait
    /// needs the runtime.
    pub fn lock_with(
        &self,
        name: impl AsRef<[u8]>,
        ttl: Option<Duration>,
        wait: Wait,
        options: LockOptions<'_>,
    ) -> Result<Lease> {
        let request = self
            .engine
            .lock_request(name.as_ref(), ttl, wait, options)?;
        let asked = Instant::now();
        let waiter = match self.engine.register(&request)? {
            Some((waiter, true)) => Some(waiter),
            // Once per client: starting to listen for wake-ups needs the runtime.
            Some((waiter, false)) => self
                .runtime
                .block_on(self.engine.listen(&request))?
                .then_some(waiter),
            None => None,
        };
        let first = self.run(self.engine.first_attempt(
            &self.transport(),
            &request,
            waiter.is_some(),
        ))?;
        match (first, waiter) {
            (Attempt::Acquired(fence), _) => {
                self.run(self.engine.keep(&self.transport(), &request, fence, asked))
            }
            (Attempt::Held(held), Some(waiter)) => self
                .runtime
                .block_on(self.engine.wait_for_turn(&request, waiter, held)),
            _ => Err(request.not_acquired()),
        }
    }

    /// See [`crate::Client::unlock`].
    pub fn unlock(&self, name: impl AsRef<[u8]>, token: &Token) -> Result<()> {
        self.run(self.engine.unlock(&self.transport(), name.as_ref(), token))
    }

    /// See [`crate::Client::extend`].
    pub fn extend(&self, name: impl AsRef<[u8]>, token: &Token, ttl: Duration) -> Result<()> {
        self.run(
            self.engine
                .extend(&self.transport(), name.as_ref(), token, ttl),
        )
    }

    /// See [`crate::Client::remaining_ttl`].
    pub fn remaining_ttl(&self, name: impl AsRef<[u8]>, token: &Token) -> Result<Option<Duration>> {
        self.run(
            self.engine
                .remaining_ttl(&self.transport(), name.as_ref(), token),
        )
    }

    /// See [`crate::Client::state`].
    pub fn state(&self, name: impl AsRef<[u8]>) -> Result<LockState> {
        self.run(self.engine.state(&self.transport(), name.as_ref()))
    }

    /// See [`crate::Client::ping`].
    pub fn ping(&self) -> Result<()> {
        self.run(self.engine.ping(&self.transport()))
    }

    /// See [`crate::Client::auto_renew`]; renewals run on this client's background thread.
    pub fn auto_renew(
        &self,
        name: impl AsRef<[u8]>,
        lease: &Lease,
        settings: AutoRenew,
    ) -> Result<Renewal> {
        self.engine.auto_renew(name.as_ref(), lease, settings)
    }

    /// See [`crate::Client::renewal_lost`].
    pub fn renewal_lost(&self, token: &Token) -> Result<bool> {
        self.engine.renewal_lost(token)
    }

    /// Blocks until the auto-renewed lease of `token` is lost (`Ok(true)`; closing the
    /// client counts as a loss), or until its renewal ends without a loss (unlock) or `wait`
    /// runs out (`Ok(false)`). `cancel` ends the wait with [`crate::Error::Cancelled`].
    /// [`crate::Error::InvalidArgument`] when `token` has no auto-renewal.
    pub fn wait_for_loss(
        &self,
        token: &Token,
        wait: Wait,
        cancel: Option<&CancelSignal>,
    ) -> Result<bool> {
        self.runtime
            .block_on(self.engine.wait_for_loss(token, wait, cancel))
    }

    /// See [`crate::Client::close`]. Safe to call from any thread while other calls are in
    /// progress; they end within their own bounds, and a lock one of them takes afterwards is
    /// given back.
    pub fn close(&self) {
        self.runtime.block_on(self.engine.close());
        self.pool.close();
    }

    /// Whether [`Client::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.engine.check_open().is_err()
    }

    fn transport(&self) -> CallingThread<'_> {
        CallingThread {
            pool: &self.pool,
            overflow: &self.engine,
        }
    }

    fn run<F: std::future::Future>(&self, operation: F) -> F::Output {
        run_now(&self.runtime, operation)
    }
}

impl Drop for Client {
    /// Closes the client, which waits (boundedly) for what failed calls still have to give
    /// back; when it was closed before, waits for what calls that ended after the close have
    /// to give back. One bounded wait either way.
    fn drop(&mut self) {
        if self.is_closed() {
            self.runtime.block_on(self.engine.flush_cleanups());
        } else {
            self.close();
        }
    }
}
