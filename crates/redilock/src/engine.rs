//! The lock's operations, written once over a [`Transport`] and shared by both clients: lock
//! (first attempt, then the fair wait), unlock, extend, remaining TTL, state, ping,
//! auto-renewal, close; and what keeps a failed call from leaving anything behind.

use crate::background::BackgroundRuntime;
use crate::cancel::CancelSignal;
use crate::cleanup::Cleanup;
use crate::deployment::Deployment;
use crate::error::{Error, Result};
use crate::latch::Latch;
use crate::lease::Lease;
use crate::options::{LockOptions, Options, Wait};
use crate::protocol::calls::{self, Attempt, Held, Queueing, Turns};
use crate::renewal::{renew, AutoRenew, OneServer, Renewal, Renewals};
use crate::replication::Replication;
use crate::state::LockState;
use crate::token::{ClientId, Token};
use crate::transport::{Overflow, SharedConnection, Transport};
use crate::wakeups::{Event, Waiter, Wakeups};
use once_cell::sync::OnceCell;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::{sleep_until, timeout_at, Instant};

/// What both clients share: the options, the connection every wait uses, and the work that
/// goes on between calls.
pub(crate) struct Engine {
    pub(crate) options: Options,
    pub(crate) connection: Arc<SharedConnection>,
    /// What lock writes ask of replicas; shared with the renewals.
    replication: Arc<Replication>,
    background: BackgroundRuntime,
    /// The connection of the background work, when it runs on a thread of its own.
    background_connection: OnceCell<Arc<SharedConnection>>,
    /// How its lock calls take turns with others'.
    turns: Turns,
    /// Names this client in its tokens, and its wake-up channel.
    client_id: ClientId,
    /// Started on the first wait.
    wakeups: OnceCell<Wakeups>,
    /// Started on the first wait, or the first call that ends without its lease and may
    /// hold something.
    cleanup: OnceCell<Arc<Cleanup>>,
    /// Leases being renewed, by token: unlock stops their renewal and reports a lost one.
    renewals: Renewals,
    closed: Latch,
}

/// One lock call, checked before anything is sent.
pub(crate) struct LockRequest<'a> {
    pub(crate) name: &'a [u8],
    pub(crate) key: Vec<u8>,
    pub(crate) token: Token,
    pub(crate) ttl: Duration,
    pub(crate) wait: Wait,
    pub(crate) deadline: Option<Instant>,
    pub(crate) cancel: Option<&'a CancelSignal>,
    /// Taken out when the lock is: the renewal starts before the lease is handed out.
    auto_renew: Mutex<Option<AutoRenew>>,
}

impl LockRequest<'_> {
    /// The lease an attempt sent at `acquired_at` took, sure until `ends_at`.
    pub(crate) fn lease(&self, fence: u64, acquired_at: Instant, ends_at: Instant) -> Lease {
        Lease::new(self.token.clone(), fence, self.ttl, acquired_at, ends_at)
    }

    /// The refusal: the lock is someone else's (taken, or handed to a waiter queued earlier).
    pub(crate) fn not_acquired(&self) -> Error {
        let name = display_name(self.name);
        Error::NotAcquired(format!("lock '{name}' is held by another owner"))
    }

    /// The auto-renewal asked for, taken out (once) when the lock is taken.
    pub(crate) fn take_auto_renew(&self) -> Option<AutoRenew> {
        self.auto_renew
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    pub(crate) fn cancelled(&self) -> Error {
        Error::Cancelled(format!(
            "waiting for lock '{}' was cancelled",
            display_name(self.name)
        ))
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancel.is_some_and(CancelSignal::is_cancelled)
    }
}

impl Engine {
    pub(crate) fn new(
        redis_url: &str,
        options: Options,
        background: BackgroundRuntime,
    ) -> Result<Engine> {
        let deployment = Deployment::from_url(redis_url, &options)?;
        let turns = match options.fair {
            true => Turns::Fair,
            false => Turns::Barging,
        };
        Engine::over(
            deployment,
            options,
            background,
            (ClientId::generate(), turns),
        )
    }

    /// An engine over `deployment` whose tokens and wake-up channel are `client_id`'s (the
    /// masters of a quorum client share one), taking `turns` with others.
    pub(crate) fn over(
        deployment: Deployment,
        options: Options,
        background: BackgroundRuntime,
        (client_id, turns): (ClientId, Turns),
    ) -> Result<Engine> {
        options.validate()?;
        Ok(Engine {
            turns,
            connection: Arc::new(SharedConnection::new(deployment, options.connect_timeout)),
            replication: Arc::new(Replication::new(&options)),
            options,
            background,
            background_connection: OnceCell::new(),
            client_id,
            wakeups: OnceCell::new(),
            cleanup: OnceCell::new(),
            renewals: Renewals::default(),
            closed: Latch::default(),
        })
    }

    /// Checks a lock call's arguments, before anything is sent.
    pub(crate) fn lock_request<'a>(
        &self,
        name: &'a [u8],
        ttl: Option<Duration>,
        wait: Wait,
        options: LockOptions<'a>,
    ) -> Result<LockRequest<'a>> {
        Ok(LockRequest {
            name,
            key: self.key(name)?,
            token: Token::generate(&self.client_id),
            ttl: self.options.effective_ttl(ttl)?,
            wait,
            // A limit too far to represent is no limit.
            deadline: match wait {
                Wait::AtMost(limit) => Instant::now().checked_add(limit),
                Wait::TryOnce | Wait::Forever => None,
            },
            cancel: options.cancel,
            auto_renew: Mutex::new(options.auto_renew),
        })
    }

    // ---- the operations, each written once --------------------------------------------

    /// A whole lock call over `transport`: one attempt, or, for a caller that waits, a place
    /// in the queue and the wait for its turn.
    pub(crate) async fn lock(
        &self,
        transport: &impl Transport,
        request: &LockRequest<'_>,
    ) -> Result<Lease> {
        let asked = Instant::now();
        let waiter = self.get_ready_to_wait(request).await?;
        let first = self
            .first_attempt(transport, request, waiter.is_some())
            .await?;
        match (first, waiter) {
            (Attempt::Acquired(fence), _) => self.keep(transport, request, fence, asked).await,
            (Attempt::Held(held), Some(waiter)) => self.wait_for_turn(request, waiter, held).await,
            _ => Err(request.not_acquired()),
        }
    }

    /// For a caller that waits: registers it for wake-ups, listening first if this client
    /// does not yet (once per client). `None` for a caller that tries once, or whose wait's
    /// limit passed before the client listened (it then tries once).
    async fn get_ready_to_wait(&self, request: &LockRequest<'_>) -> Result<Option<Waiter>> {
        let Some((waiter, listening)) = self.register(request)? else {
            return Ok(None);
        };
        Ok((listening || self.listen(request).await?).then_some(waiter))
    }

    /// Waits until this client listens for wake-ups (within the wait's bounds). If Redis
    /// cannot be reached, the waiter is left to its re-checks. `false` when the wait's limit
    /// passed first: the caller then tries once, so that its answer says what Redis says.
    pub(crate) async fn listen(&self, request: &LockRequest<'_>) -> Result<bool> {
        let listen = async { Ok(self.wakeups()?.listen().await) };
        Ok(self.until_deadline(request, listen).await?.is_some())
    }

    /// The part of getting ready to wait that needs no waiting: `None` for a caller
    /// that tries once, else the waiter and whether the client already listens.
    pub(crate) fn register(&self, request: &LockRequest<'_>) -> Result<Option<(Waiter, bool)>> {
        if request.wait == Wait::TryOnce {
            return Ok(None);
        }
        Ok(Some(self.wakeups()?.register(&request.token)))
    }

    /// The first attempt of a lock call, joining the queue when refused if `queue` says so. A
    /// closed client or a cancelled signal sends nothing; an attempt whose outcome is unknown
    /// (no reply) is given back.
    pub(crate) async fn first_attempt(
        &self,
        transport: &impl Transport,
        request: &LockRequest<'_>,
        queue: bool,
    ) -> Result<Attempt> {
        let queueing = if queue {
            Queueing::Join
        } else {
            Queueing::TryOnce
        };
        self.attempt(transport, request, queueing).await
    }

    /// One attempt, queueing as `queueing` says when refused; see [`Engine::first_attempt`].
    pub(crate) async fn attempt(
        &self,
        transport: &impl Transport,
        request: &LockRequest<'_>,
        queueing: Queueing,
    ) -> Result<Attempt> {
        self.check_open()?;
        if request.is_cancelled() {
            return Err(request.cancelled());
        }
        let turns = self.turns;
        let call = || calls::acquire(&request.key, &request.token, request.ttl, queueing, turns);
        let deadline = self.call_deadline();
        let in_flight = GiveBack::armed(self, request);
        match self
            .replication
            .send(transport, call, calls::acquired, deadline)
            .await
        {
            Ok((reply, acks)) => {
                let attempt = Attempt::from(reply);
                if let (Attempt::Acquired(_), Err(short)) =
                    (&attempt, acks.check(ACQUISITION, request.name))
                {
                    self.give_back_now(transport, request, deadline).await;
                    in_flight.disarm();
                    return Err(short);
                }
                in_flight.disarm(); // from here, what it holds is the caller's (or its wait's)
                Ok(attempt)
            }
            Err(err @ Error::Connection(_)) => Err(err), // dropping in_flight gives back
            Err(err) => {
                in_flight.disarm(); // an error reply: the script did not run
                Err(err)
            }
        }
    }

    /// The lease, once an attempt took the lock, with its auto-renewal started if asked for;
    /// unless the client was closed or the wait cancelled meanwhile, or the renewal cannot
    /// start: then the lock is given back (over `transport`, or in the background if Redis
    /// does not answer) before the caller hears why.
    pub(crate) async fn keep(
        &self,
        transport: &impl Transport,
        request: &LockRequest<'_>,
        fence: u64,
        asked: Instant,
    ) -> Result<Lease> {
        let lease = request.lease(fence, asked, asked + request.ttl);
        let refusal = if self.closed.is_set() {
            self.closed_error()
        } else if request.is_cancelled() {
            request.cancelled()
        } else {
            match request
                .take_auto_renew()
                .map(|settings| self.auto_renew(request.name, &lease, settings))
            {
                None | Some(Ok(_)) => return Ok(lease),
                Some(Err(err)) => err,
            }
        };
        let deadline = self.call_deadline();
        self.give_back_now(transport, request, deadline).await;
        Err(refusal)
    }

    /// Gives back what `request`'s token may hold, waiting for Redis until `deadline`; after
    /// that, the cleanup task takes over.
    async fn give_back_now(
        &self,
        transport: &impl Transport,
        request: &LockRequest<'_>,
        deadline: std::time::Instant,
    ) {
        let (key, token) = (&request.key, &request.token);
        self.give_back_by(transport, key, token, request.ttl, deadline)
            .await
    }

    /// Gives back what `token` (which asked for `ttl`) may hold on `key`, waiting for Redis
    /// until `deadline`; after that, the cleanup task takes over.
    pub(crate) async fn give_back_by(
        &self,
        transport: &impl Transport,
        key: &[u8],
        token: &Token,
        ttl: Duration,
        deadline: std::time::Instant,
    ) {
        let call = calls::cleanup(key, token, ttl);
        if transport.send::<i64>(&call, deadline).await.is_err() {
            self.give_back(key, token, ttl);
        }
    }

    /// Waits in the queue until the lock is handed over; re-checks only when first in line
    /// and the holder's TTL runs out (a crashed holder hands nothing over), when the holder is
    /// other software (which announces no release), when messages may have been lost, and at
    /// the retry interval as a safety net. Ends early at the wait's deadline, on cancel or
    /// close, or when Redis fails; its place (and a lock handed over meanwhile) is then given
    /// back.
    pub(crate) async fn wait_for_turn(
        &self,
        request: &LockRequest<'_>,
        waiter: Waiter,
        held: Held,
    ) -> Result<Lease> {
        let place = GiveBack::armed(self, request);
        let mut recheck_at = self.recheck_time(&held);
        loop {
            let woken = async {
                tokio::select! {
                    event = waiter.next() => Ok(Some(event)),
                    _ = sleep_until(recheck_at) => Ok(None),
                }
            };
            let event = match self.until_interrupted(request, woken).await {
                Ok(event) => event,
                Err(end) => return self.leave(place, request, end).await,
            };
            match event {
                Some(Event::Handed { fence, at }) => match self.confirm_hand_over(request).await {
                    Ok(true) => {
                        place.disarm(); // the hand-over took the caller off the queue
                        return self.keep(&*self.connection, request, fence, at).await;
                    }
                    Ok(false) => {} // gone before it was confirmed (its TTL ran out): look again
                    Err(end) => return self.leave(place, request, end).await,
                },
                Some(Event::First { holder_ttl }) => {
                    recheck_at = self.recheck_time(&Held {
                        remaining: holder_ttl,
                        first_in_line: true,
                        foreign: false,
                    });
                    continue;
                }
                Some(Event::Recheck) | None => {}
            }
            let asked = Instant::now();
            let turns = self.turns;
            let call = || {
                let (key, token) = (&request.key, &request.token);
                calls::acquire(key, token, request.ttl, Queueing::Stay, turns)
            };
            let attempt = self.replication.send(
                &*self.connection,
                call,
                calls::acquired,
                self.call_deadline(),
            );
            match self.until_interrupted(request, attempt).await {
                Ok((reply, acks)) => match reply.into() {
                    Attempt::Acquired(fence) => {
                        if let Err(short) = acks.check(ACQUISITION, request.name) {
                            return self.leave(place, request, short).await;
                        }
                        place.disarm(); // the script took the caller off the queue
                        return self.keep(&*self.connection, request, fence, asked).await;
                    }
                    Attempt::Held(held) => recheck_at = self.recheck_time(&held),
                    Attempt::Withdrawn => {
                        // Only a cleanup withdraws a token, and only after its call ended.
                        return self.leave(place, request, request.not_acquired()).await;
                    }
                },
                Err(end) => return self.leave(place, request, end).await,
            }
        }
    }

    /// Makes a lock handed to the caller count only once replicas have it, when they must
    /// acknowledge lock writes: the releaser's connection wrote the hand-over, so a WAIT on
    /// this client's proves nothing until it writes too. It sends the owner-checked extend to
    /// the TTL the caller asked for, and WAIT with it. `false` when the lock is no longer the
    /// caller's (its TTL ran out first); NotReplicated when too few replicas acknowledged.
    async fn confirm_hand_over(&self, request: &LockRequest<'_>) -> Result<bool> {
        let call = || calls::extend(&request.key, &request.token, request.ttl);
        let (connection, deadline) = (&*self.connection, self.call_deadline());
        if !self
            .replication
            .may_wait(connection, &call(), deadline)
            .await?
        {
            return Ok(true);
        }
        let (extended, acks) = self
            .replication
            .send(connection, call, calls::extended, deadline)
            .await?;
        if !calls::extended(&extended) {
            return Ok(false);
        }
        acks.check(ACQUISITION, request.name)?;
        Ok(true)
    }

    /// When a waiter that knows `held` looks again, if nothing wakes it first.
    fn recheck_time(&self, held: &Held) -> Instant {
        let now = Instant::now();
        let safety_net = now + self.options.retry_interval;
        match held {
            Held {
                foreign: true,
                first_in_line: true,
                ..
            } => safety_net.min(now + FOREIGN_POLL),
            Held {
                remaining: Some(remaining),
                first_in_line: true,
                ..
            } => safety_net.min(now + *remaining + EXPIRY_SLACK),
            _ => safety_net,
        }
    }

    /// Runs one step of a wait, ending it early (with the error to return) when the client is
    /// closed, the wait cancelled, or its deadline passed.
    async fn until_interrupted<T>(
        &self,
        request: &LockRequest<'_>,
        step: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        self.until_deadline(request, step)
            .await?
            .ok_or_else(|| request.not_acquired())
    }

    /// `step`, unless the client closes or the wait is cancelled first (an error) or the
    /// wait's limit passes (`None`).
    pub(crate) async fn until_deadline<T>(
        &self,
        request: &LockRequest<'_>,
        step: impl Future<Output = Result<T>>,
    ) -> Result<Option<T>> {
        tokio::select! {
            biased;
            _ = self.closed.wait() => Err(self.closed_error()),
            _ = wait_for(request.cancel) => Err(request.cancelled()),
            _ = sleep_until_opt(request.deadline) => Ok(None),
            outcome = step => outcome.map(Some),
        }
    }

    /// Ends a wait without the lease: its place (and a lock an interrupted attempt may have
    /// taken) is given back before the caller hears why, so the next waiter does not wait
    /// for this one's place to expire; if Redis does not confirm soon, in the background.
    async fn leave<T>(
        &self,
        place: GiveBack<'_>,
        request: &LockRequest<'_>,
        end: Error,
    ) -> Result<T> {
        // A cancel or a close must end the wait at once; a timeout may take one more round
        // trip, within the call's bound (the wait limit plus one command timeout).
        let within = match end {
            Error::Cancelled(_) | Error::Closed(_) => PROMPT_END,
            _ => self.options.command_timeout,
        };
        let deadline = match request.deadline {
            Some(limit) => (limit + self.options.command_timeout).min(Instant::now() + within),
            None => Instant::now() + within,
        };
        place.now(deadline).await;
        Err(end)
    }

    pub(crate) async fn unlock(
        &self,
        transport: &impl Transport,
        name: &[u8],
        token: &Token,
    ) -> Result<()> {
        let key = self.key(name)?;
        // Even on a closed client: when unlock returns, the loss callback is done.
        let lease_was_lost = self.renewals.stop(token);
        self.check_open()?;
        let deadline = self.call_deadline();
        let why = match transport
            .send::<i64>(&calls::release(&key, token), deadline)
            .await
        {
            Ok(released) => return owner_checked(name, released == 1 && !lease_was_lost),
            Err(Error::Connection(why)) => why,
            Err(err) => return Err(err),
        };
        // The release may or may not have run. A cleanup, safe to send again, tells which
        // when it finds the lock still ours; otherwise the outcome stays unknown.
        let cleanup = calls::cleanup(&key, token, Duration::ZERO); // unlock holds no place in a queue
        match transport.send::<i64>(&cleanup, deadline).await {
            Ok(1) => owner_checked(name, !lease_was_lost),
            Ok(_) => Err(Error::Connection(format!(
                "{why}; lock '{}' is no longer held by this token, but whether this unlock released it is unknown",
                display_name(name)
            ))),
            Err(_) => {
                self.give_back(&key, token, Duration::ZERO); // holds no place in a queue
                Err(Error::Connection(format!(
                    "{why}; lock '{}' will be released as soon as Redis answers (or expire at its TTL)",
                    display_name(name)
                )))
            }
        }
    }

    pub(crate) async fn extend(
        &self,
        transport: &impl Transport,
        name: &[u8],
        token: &Token,
        ttl: Duration,
    ) -> Result<()> {
        self.check_open()?;
        let key = self.key(name)?;
        let ttl = self.options.effective_ttl(Some(ttl))?;
        let call = || calls::extend(&key, token, ttl);
        let deadline = self.call_deadline();
        let (extended, acks) = self
            .replication
            .send(transport, call, calls::extended, deadline)
            .await?;
        owner_checked(name, calls::extended(&extended))?;
        if let Err(short) = acks.check("the extension", name) {
            // Holds no place in a queue: no TTL names one.
            self.give_back_by(transport, &key, token, Duration::ZERO, deadline)
                .await;
            return Err(short);
        }
        Ok(())
    }

    pub(crate) async fn remaining_ttl(
        &self,
        transport: &impl Transport,
        name: &[u8],
        token: &Token,
    ) -> Result<Option<Duration>> {
        self.check_open()?;
        let key = self.key(name)?;
        let call = calls::remaining(&key, token);
        let reply_ms = transport.send::<i64>(&call, self.call_deadline()).await?;
        owner_checked(name, reply_ms != -3)?;
        Ok(u64::try_from(reply_ms).ok().map(Duration::from_millis))
    }

    pub(crate) async fn state(&self, transport: &impl Transport, name: &[u8]) -> Result<LockState> {
        self.check_open()?;
        let key = self.key(name)?;
        let call = calls::pttl(&key);
        let reply_ms = transport.send(&call, self.call_deadline()).await?;
        Ok(LockState::from_pttl(reply_ms))
    }

    pub(crate) async fn ping(&self, transport: &impl Transport) -> Result<()> {
        self.check_open()?;
        let call = calls::ping();
        transport
            .send::<String>(&call, self.call_deadline())
            .await
            .map(drop)
    }

    pub(crate) fn auto_renew(
        &self,
        name: &[u8],
        lease: &Lease,
        settings: AutoRenew,
    ) -> Result<Renewal> {
        self.check_open()?;
        let key = self.key(name)?;
        let (runtime, connection) = self.background()?;
        let state = self
            .renewals
            .register(&lease.token, settings.on_lost, &self.closed, || {
                self.closed_error()
            })?;
        let server = OneServer {
            connection,
            replication: self.replication.clone(),
            command_timeout: self.options.command_timeout,
        };
        runtime.spawn(renew(
            server,
            key,
            lease.clone(),
            settings.max_hold,
            state.clone(),
        ));
        Ok(Renewal { state })
    }

    /// Whether the auto-renewed lease of `token` was lost, without I/O.
    pub(crate) fn renewal_lost(&self, token: &Token) -> Result<bool> {
        self.check_open()?;
        Ok(self.renewals.get(token)?.is_lost())
    }

    /// Waits until the auto-renewed lease of `token` is lost (`true`; closing the client counts
    /// as a loss), renewal ends without a loss (unlock) or the wait ends (`false`); `cancel`
    /// ends it with [`Error::Cancelled`].
    pub(crate) async fn wait_for_loss(
        &self,
        token: &Token,
        wait: Wait,
        cancel: Option<&CancelSignal>,
    ) -> Result<bool> {
        self.check_open()?;
        self.renewals.wait_for_loss(token, wait, cancel).await
    }

    pub(crate) async fn close(&self) {
        if self.closed.set() {
            return;
        }
        self.end_background();
        self.flush_cleanups().await;
        self.connection.close();
    }

    /// Waits for the cleanups still pending, for at most the connect timeout plus the
    /// command timeout.
    pub(crate) async fn flush_cleanups(&self) {
        if let Some(cleanup) = self.cleanup.get() {
            let opts = &self.options;
            cleanup
                .flush(Instant::now() + opts.connect_timeout + opts.command_timeout)
                .await;
        }
    }

    /// Stops what runs between calls, except the cleanups: renewals (their leases count as
    /// lost, and their callbacks have returned) and wake-ups.
    fn end_background(&self) {
        self.renewals.end_all();
        if let Some(wakeups) = self.wakeups.get() {
            wakeups.stop();
        }
    }

    // ---- helpers ------------------------------------------------------------------------

    pub(crate) fn check_open(&self) -> Result<()> {
        match self.closed.is_set() {
            true => Err(self.closed_error()),
            false => Ok(()),
        }
    }

    pub(crate) fn closed_error(&self) -> Error {
        Error::Closed("the client was closed".into())
    }

    /// What lock writes ask of replicas.
    pub(crate) fn replication(&self) -> &Arc<Replication> {
        &self.replication
    }

    /// When a call that sends now must have its reply.
    fn call_deadline(&self) -> std::time::Instant {
        std::time::Instant::now() + self.options.command_timeout
    }

    pub(crate) fn background(&self) -> Result<(tokio::runtime::Handle, Arc<SharedConnection>)> {
        self.background.place(
            &self.connection,
            &self.background_connection,
            self.options.connect_timeout,
        )
    }

    fn wakeups(&self) -> Result<&Wakeups> {
        self.wakeups.get_or_try_init(|| {
            let (runtime, connection) = self.background()?;
            let opts = &self.options;
            Ok(Wakeups::start(
                connection,
                &self.client_id,
                (opts.connect_timeout, opts.command_timeout),
                opts.retry_interval,
                self.cleanup()?.clone(),
                &runtime,
            ))
        })
    }

    fn cleanup(&self) -> Result<&Arc<Cleanup>> {
        self.cleanup.get_or_try_init(|| {
            let (runtime, connection) = self.background()?;
            let timeout = self.options.command_timeout;
            Ok(Arc::new(Cleanup::start(connection, timeout, &runtime)))
        })
    }

    /// Hands what `token` (which asked for `ttl`) may hold on `key` to the cleanup task;
    /// returns at once. Without a place to run it (an async client dropped outside a
    /// runtime), the TTL ends the lock.
    pub(crate) fn give_back(&self, key: &[u8], token: &Token, ttl: Duration) {
        if let Ok(cleanup) = self.cleanup() {
            cleanup.give_back(key, token, ttl);
        }
    }

    pub(crate) fn key(&self, name: &[u8]) -> Result<Vec<u8>> {
        if name.is_empty() {
            return Err(Error::InvalidArgument(
                "the lock name must not be empty".into(),
            ));
        }
        Ok([self.options.key_prefix.as_slice(), name].concat())
    }
}

impl Overflow for Engine {
    fn overflow(&self) -> Result<(tokio::runtime::Handle, Arc<SharedConnection>)> {
        self.background()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if !self.closed.set() {
            self.end_background();
        }
    }
}

/// What the messages of a lock call call its write, when replicas did not acknowledge it.
const ACQUISITION: &str = "the acquisition";

/// How long a cancel or a close waits for Redis to confirm a give-back before leaving it to
/// the background: the wait must end promptly.
pub(crate) const PROMPT_END: Duration = Duration::from_millis(50);

/// How often the first in line polls a lock held by other software (python-redilock), which
/// announces no release: python-redilock's own interval.
const FOREIGN_POLL: Duration = Duration::from_millis(250);

/// How long after a holder's TTL the first in line looks: Redis has dropped the key by then.
pub(crate) const EXPIRY_SLACK: Duration = Duration::from_millis(2);

/// What a lock call gives back if it ends without its lease: a lock an attempt in flight
/// may have taken, or its place in the queue. Dropped while armed (an attempt failed, the
/// caller's future was dropped mid-wait), it hands them to the cleanup task.
struct GiveBack<'a> {
    engine: &'a Engine,
    request: &'a LockRequest<'a>,
    armed: bool,
}

impl<'a> GiveBack<'a> {
    fn armed(engine: &'a Engine, request: &'a LockRequest<'a>) -> Self {
        GiveBack {
            engine,
            request,
            armed: true,
        }
    }

    /// The call ended with its lease: nothing to give back.
    fn disarm(mut self) {
        self.armed = false;
    }

    /// Gives back now, waiting for Redis until `deadline` (opening a connection included: a
    /// give-back at a cancel must be prompt); after that the cleanup task takes over.
    async fn now(self, deadline: Instant) {
        let engine = self.engine;
        let sent = engine.give_back_now(&*engine.connection, self.request, deadline.into_std());
        if timeout_at(deadline, sent).await.is_ok() {
            self.disarm(); // sent, or handed to the cleanup task
        }
    }
}

impl Drop for GiveBack<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.engine
                .give_back(&self.request.key, &self.request.token, self.request.ttl);
        }
    }
}

async fn wait_for(cancel: Option<&CancelSignal>) {
    match cancel {
        Some(cancel) => cancel.cancelled().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Ok when an owner-checked call found `token` holding the lock, NotOwner otherwise.
pub(crate) fn owner_checked(name: &[u8], held: bool) -> Result<()> {
    if held {
        return Ok(());
    }
    Err(Error::NotOwner(format!(
        "lock '{}' is not held by this token (it expired, was released, or belongs to another owner)",
        display_name(name)
    )))
}

/// A lock name as shown in messages: lossy UTF-8, cut after 100 characters.
pub(crate) fn display_name(name: &[u8]) -> String {
    let text = String::from_utf8_lossy(name);
    match text.char_indices().nth(100) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> Engine {
        let url = "redis://127.0.0.1:1";
        Engine::new(url, Options::default(), BackgroundRuntime::CallersRuntime).unwrap()
    }

    #[test]
    fn long_names_are_shortened_in_messages() {
        let name = "ü".repeat(500);
        assert_eq!(display_name(name.as_bytes()).chars().count(), 101);
        assert_eq!(display_name(b"orders:42"), "orders:42");
    }

    #[test]
    fn a_wait_limit_too_far_to_represent_waits_forever() {
        let ttl = Some(Duration::from_secs(1));
        let engine = engine();
        let request = engine
            .lock_request(
                b"x",
                ttl,
                Wait::AtMost(Duration::MAX),
                LockOptions::default(),
            )
            .unwrap();
        assert_eq!(request.deadline, None);
    }

    #[test]
    fn auto_renewal_outside_a_runtime_is_an_error_not_a_panic() {
        let (ttl, now) = (Duration::from_secs(1), Instant::now());
        let lease = Lease::new(
            Token::generate(&ClientId::generate()),
            1,
            ttl,
            now,
            now + ttl,
        );
        let err = engine()
            .auto_renew(b"x", &lease, AutoRenew::default())
            .err()
            .unwrap();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    }
}
