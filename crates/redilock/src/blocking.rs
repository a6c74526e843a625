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
use crate::quorum::Quorum;
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
    backend: Backend,
}

/// One deployment over the calling threads' connections, or a quorum of independent masters
/// (whose calls go to every master at once, so they run on the runtime).
enum Backend {
    One {
        engine: Engine,
        pool: ConnectionPool,
    },
    Quorum(Quorum),
}

impl Client {
    /// Creates a client for `redis_url` (see [`crate::Client::new`]); it reads the TLS files of
    /// `options`, and connects on the first call.
    pub fn new(redis_url: &str, options: Options) -> Result<Client> {
        let engine = Engine::new(redis_url, options, BackgroundRuntime::own_thread())?;
        let opts = &engine.options;
        let pool = ConnectionPool::new(
            engine.connection.deployment().clone(),
            opts.connect_timeout,
            opts.command_timeout,
        );
        Ok(Client {
            runtime: new_runtime()?,
            backend: Backend::One { engine, pool },
        })
    }

    /// Creates a quorum client over independent masters (see [`crate::Client::new_quorum`]).
    /// Its background work runs on one thread for all the masters.
    pub fn new_quorum(urls: &[impl AsRef<str>], options: Options) -> Result<Client> {
        let quorum = Quorum::new(urls, options, BackgroundRuntime::own_thread())?;
        Ok(Client {
            runtime: new_runtime()?,
            backend: Backend::Quorum(quorum),
        })
    }

    /// The options this client was created with.
    pub fn options(&self) -> &Options {
        match &self.backend {
            Backend::One { engine, .. } => &engine.options,
            Backend::Quorum(quorum) => quorum.options(),
        }
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
        let (engine, pool) = match &self.backend {
            Backend::One { engine, pool } => (engine, pool),
            Backend::Quorum(quorum) => {
                let request = quorum.lock_request(name.as_ref(), ttl, wait, options)?;
                return self.runtime.block_on(quorum.lock(&request));
            }
        };
        let request = engine.lock_request(name.as_ref(), ttl, wait, options)?;
        let asked = Instant::now();
        let waiter = match engine.register(&request)? {
            Some((waiter, true)) => Some(waiter),
            // Once per client: starting to listen for wake-ups needs the runtime.
            Some((waiter, false)) => self
                .runtime
                .block_on(engine.listen(&request))?
                .then_some(waiter),
            None => None,
        };
        let transport = calling_thread(engine, pool);
        let first = self.run(engine.first_attempt(&transport, &request, waiter.is_some()))?;
        match (first, waiter) {
            (Attempt::Acquired(fence), _) => {
                self.run(engine.keep(&transport, &request, fence, asked))
            }
            (Attempt::Held(held), Some(waiter)) => self
                .runtime
                .block_on(engine.wait_for_turn(&request, waiter, held)),
            _ => Err(request.not_acquired()),
        }
    }

    /// See [`crate::Client::unlock`].
    pub fn unlock(&self, name: impl AsRef<[u8]>, token: &Token) -> Result<()> {
        let name = name.as_ref();
        match &self.backend {
            Backend::One { engine, pool } => {
                self.run(engine.unlock(&calling_thread(engine, pool), name, token))
            }
            Backend::Quorum(quorum) => self.runtime.block_on(quorum.unlock(name, token)),
        }
    }

    /// See [`crate::Client::extend`].
    pub fn extend(&self, name: impl AsRef<[u8]>, token: &Token, ttl: Duration) -> Result<()> {
        let name = name.as_ref();
        match &self.backend {
            Backend::One { engine, pool } => {
                self.run(engine.extend(&calling_thread(engine, pool), name, token, ttl))
            }
            Backend::Quorum(quorum) => self.runtime.block_on(quorum.extend(name, token, ttl)),
        }
    }

    /// See [`crate::Client::remaining_ttl`].
    pub fn remaining_ttl(&self, name: impl AsRef<[u8]>, token: &Token) -> Result<Option<Duration>> {
        let name = name.as_ref();
        match &self.backend {
            Backend::One { engine, pool } => {
                self.run(engine.remaining_ttl(&calling_thread(engine, pool), name, token))
            }
            Backend::Quorum(quorum) => self.runtime.block_on(quorum.remaining_ttl(name, token)),
        }
    }

    /// See [`crate::Client::state`].
    pub fn state(&self, name: impl AsRef<[u8]>) -> Result<LockState> {
        let name = name.as_ref();
        match &self.backend {
            Backend::One { engine, pool } => {
                self.run(engine.state(&calling_thread(engine, pool), name))
            }
            Backend::Quorum(quorum) => self.runtime.block_on(quorum.state(name)),
        }
    }

    /// See [`crate::Client::ping`].
    pub fn ping(&self) -> Result<()> {
        match &self.backend {
            Backend::One { engine, pool } => self.run(engine.ping(&calling_thread(engine, pool))),
            Backend::Quorum(quorum) => self.runtime.block_on(quorum.ping()),
        }
    }

    /// See [`crate::Client::auto_renew`]; renewals run on this client's background thread.
    pub fn auto_renew(
        &self,
        name: impl AsRef<[u8]>,
        lease: &Lease,
        settings: AutoRenew,
    ) -> Result<Renewal> {
        match &self.backend {
            Backend::One { engine, .. } => engine.auto_renew(name.as_ref(), lease, settings),
            Backend::Quorum(quorum) => quorum.auto_renew(name.as_ref(), lease, settings),
        }
    }

    /// See [`crate::Client::renewal_lost`].
    pub fn renewal_lost(&self, token: &Token) -> Result<bool> {
        match &self.backend {
            Backend::One { engine, .. } => engine.renewal_lost(token),
            Backend::Quorum(quorum) => quorum.renewal_lost(token),
        }
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
        match &self.backend {
            Backend::One { engine, .. } => self
                .runtime
                .block_on(engine.wait_for_loss(token, wait, cancel)),
            Backend::Quorum(quorum) => self
                .runtime
                .block_on(quorum.wait_for_loss(token, wait, cancel)),
        }
    }

    /// See [`crate::Client::close`]. Safe to call from any thread while other calls are in
    /// progress; they end within their own bounds, and a lock one of them takes afterwards is
    /// given back.
    pub fn close(&self) {
        match &self.backend {
            Backend::One { engine, pool } => {
                self.runtime.block_on(engine.close());
                pool.close();
            }
            Backend::Quorum(quorum) => self.runtime.block_on(quorum.close()),
        }
    }

    /// Whether [`Client::close`] was called.
    pub fn is_closed(&self) -> bool {
        match &self.backend {
            Backend::One { engine, .. } => engine.check_open().is_err(),
            Backend::Quorum(quorum) => quorum.check_open().is_err(),
        }
    }

    /// Runs an operation over the calling thread's connections (a quorum's go through the
    /// runtime, which drives its connections to every master at once).
    fn run<F: std::future::Future>(&self, operation: F) -> F::Output {
        run_now(&self.runtime, operation)
    }
}

/// The calling thread's connections, with the engine's shared one as the overflow.
fn calling_thread<'a>(engine: &'a Engine, pool: &'a ConnectionPool) -> CallingThread<'a> {
    CallingThread {
        pool,
        overflow: engine,
    }
}

impl Drop for Client {
    /// Closes the client, which waits (boundedly) for what failed calls still have to give
    /// back; when it was closed before, waits for what calls that ended after the close have
    /// to give back. One bounded wait either way.
    fn drop(&mut self) {
        if !self.is_closed() {
            self.close();
            return;
        }
        match &self.backend {
            Backend::One { engine, .. } => self.runtime.block_on(engine.flush_cleanups()),
            Backend::Quorum(quorum) => self.runtime.block_on(quorum.flush_cleanups()),
        }
    }
}
