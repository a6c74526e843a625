//! Quorum locking over independent masters: the algorithm of the Redis distributed-lock page
//! ("Redlock"). A quorum client runs one engine per master, all under one client id, so one
//! token and one wake-up channel name span the masters. Every attempt goes to every master at
//! once, each with a node timeout small against the TTL; the lock counts when a quorum (a
//! majority unless set) granted it and time is left of its TTL once the time the attempt took
//! and an allowance for clock drift are taken off (the validity). Otherwise what was granted is
//! released, and a waiter tries again when any master wakes it (its releases wake the waiters
//! queued there, as for a client that barges) or after a jittered delay. Masters that fail or
//! time out count apart from masters that answer "held": too many of them is
//! [`Error::QuorumUnavailable`], never [`Error::NotAcquired`].
//!
//! Fencing numbers: each granting master numbers the acquisition with its own counter; the
//! lease takes the highest, and when fewer than a quorum of the granting masters already have
//! it, it is written to the others (raise_fence.lua, a max-register) before the lock counts.
//! Any two quorums share a master, and that master's counter is at least the previous
//! holder's number, so numbers strictly increase across sequential holders, as long as no
//! master loses its counter (persistence on every master) and only quorum clients use the
//! names.

use crate::background::BackgroundRuntime;
use crate::deployment::{redact_url, Deployment};
use crate::engine::{display_name, owner_checked, Engine, LockRequest, EXPIRY_SLACK, PROMPT_END};
use crate::error::{Error, Result};
use crate::latch::Latch;
use crate::lease::Lease;
use crate::options::{LockOptions, Options, Wait};
use crate::protocol::calls::{self, Attempt, Queueing, Turns};
use crate::renewal::{renew, AutoRenew, Extender, Extension, OneServer, Renewal, Renewals};
use crate::state::LockState;
use crate::token::{ClientId, Token};
use crate::wakeups::Waiter;
use futures_util::future::{join_all, select_all};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{sleep_until, timeout_at, Instant};

/// The fewest masters a quorum client takes: with two, one failure would stop every lock.
const FEWEST_MASTERS: usize = 3;

/// The node timeout of a call without a TTL (unlock, remaining TTL, state, ping) when none is
/// set, unless the command timeout is shorter.
const NODE_TIMEOUT_WITHOUT_TTL: Duration = Duration::from_millis(500);

/// The shortest automatic node timeout: a master on the same network answers well within it.
const SHORTEST_NODE_TIMEOUT: Duration = Duration::from_millis(50);

/// The longest random pause before a waiter tries again after a round that nobody won (the
/// masters split between contenders): short, and different for each, so one of them wins.
const SPLIT_RETRY_JITTER: Duration = Duration::from_millis(50);

/// A lock over several independent masters; see the module's documentation.
pub(crate) struct Quorum {
    masters: Vec<Master>,
    /// How many masters must grant a lock or an extension.
    needed: usize,
    options: Options,
    renewals: Renewals,
    closed: Latch,
}

struct Master {
    engine: Arc<Engine>,
    /// Its address, without credentials, for messages.
    address: String,
}

impl Quorum {
    /// A quorum client over `urls`, each one server (`redis://`, `rediss://`, `unix://`).
    pub(crate) fn new(
        urls: &[impl AsRef<str>],
        options: Options,
        background: BackgroundRuntime,
    ) -> Result<Quorum> {
        options.validate()?;
        let count = urls.len();
        if count < FEWEST_MASTERS {
            return Err(Error::InvalidArgument(format!(
                "a quorum client needs at least {FEWEST_MASTERS} masters, got {count}"
            )));
        }
        let needed = options.quorum.unwrap_or(count / 2 + 1);
        if needed <= count / 2 || needed > count {
            return Err(Error::InvalidArgument(format!(
                "the quorum must be more than half of the {count} masters and at most all of \
                 them, got {needed}"
            )));
        }
        // FIFO turns cannot be kept across masters: a quorum client always barges.
        let per_master = options.clone();
        let client_id = ClientId::generate();
        let mut masters: Vec<Master> = Vec::with_capacity(count);
        for url in urls {
            let url = url.as_ref();
            let Deployment::Single(server) = Deployment::from_url(url, &per_master)? else {
                return Err(Error::InvalidArgument(format!(
                    "each master of a quorum client must be one server (redis://, rediss:// or \
                     unix://), not {}",
                    redact_url(url)
                )));
            };
            let address = server.address().to_string();
            if masters.iter().any(|master| master.address == address) {
                return Err(Error::InvalidArgument(format!(
                    "{address} is given twice: each master of a quorum client must be a \
                     separate server"
                )));
            }
            let deployment = Deployment::Single(server);
            let engine = Engine::over(
                deployment,
                per_master.clone(),
                background.clone(),
                (client_id.clone(), Turns::Quorum),
            )?;
            masters.push(Master {
                engine: Arc::new(engine),
                address,
            });
        }
        Ok(Quorum {
            masters,
            needed,
            options,
            renewals: Renewals::default(),
            closed: Latch::default(),
        })
    }

    pub(crate) fn options(&self) -> &Options {
        &self.options
    }

    /// Checks a lock call's arguments, before anything is sent.
    pub(crate) fn lock_request<'a>(
        &self,
        name: &'a [u8],
        ttl: Option<Duration>,
        wait: Wait,
        options: LockOptions<'a>,
    ) -> Result<LockRequest<'a>> {
        self.masters[0]
            .engine
            .lock_request(name, ttl, wait, options)
    }

    /// A whole lock call: rounds until one wins, or the wait ends.
    pub(crate) async fn lock(&self, request: &LockRequest<'_>) -> Result<Lease> {
        let call = GiveBack::armed(self, request);
        let waiters = self.get_ready_to_wait(request).await?;
        let mut queueing = match waiters.is_empty() {
            true => Queueing::TryOnce,
            false => Queueing::Join,
        };
        loop {
            for waiter in &waiters {
                waiter.forget_events(); // what they told of comes before this round
            }
            let retry_in = match self.round(request, queueing).await {
                Ok(lease) => return self.keep(call, request, lease).await,
                Err(Lost::Refused { retry_in, .. }) if !waiters.is_empty() => retry_in,
                Err(Lost::Refused { error, .. } | Lost::Failed(error)) => {
                    return self.leave(call, request, error).await
                }
            };
            let woken = async {
                let any_wakeup = select_all(waiters.iter().map(|waiter| Box::pin(waiter.next())));
                tokio::select! {
                    _ = any_wakeup => {}
                    _ = sleep_until(Instant::now() + retry_in) => {}
                }
                Ok(())
            };
            match self.first().until_deadline(request, woken).await {
                Ok(Some(())) => queueing = Queueing::Stay,
                Ok(None) => return self.leave(call, request, request.not_acquired()).await,
                Err(end) => return self.leave(call, request, end).await,
            }
        }
    }

    /// For a caller that waits: registers it for wake-ups on every master, and has the client
    /// listen where it does not yet (a master that does not answer within the node timeout is
    /// left to the retries). Empty for a caller that tries once.
    async fn get_ready_to_wait(&self, request: &LockRequest<'_>) -> Result<Vec<Waiter>> {
        let mut waiters = Vec::new();
        let mut silent = Vec::new();
        for master in &self.masters {
            if let Some((waiter, listening)) = master.engine.register(request)? {
                waiters.push(waiter);
                if !listening {
                    silent.push(&master.engine);
                }
            }
        }
        let until = Instant::now() + self.node_timeout(Some(request.ttl));
        join_all(
            silent
                .iter()
                .map(|engine| timeout_at(until, engine.listen(request))),
        )
        .await;
        Ok(waiters)
    }

    /// One attempt on every master, numbered and checked for validity when a quorum granted
    /// it; what a lost round was granted is released at once.
    async fn round(
        &self,
        request: &LockRequest<'_>,
        queueing: Queueing,
    ) -> std::result::Result<Lease, Lost> {
        self.check_open().map_err(Lost::Failed)?;
        if request.is_cancelled() {
            return Err(Lost::Failed(request.cancelled()));
        }
        let asked = Instant::now();
        let answers = self
            .on_every_master(Some(request.ttl), |master| {
                let engine = &master.engine;
                engine.attempt(&*engine.connection, request, queueing)
            })
            .await;
        let granted: Vec<(usize, u64)> = (answers.iter().enumerate())
            .filter_map(|(at, answer)| match answer {
                Ok(Attempt::Acquired(fence)) => Some((at, *fence)),
                _ => None,
            })
            .collect();
        let failed = answers
            .iter()
            .filter(|answer| !matches!(answer, Ok(Attempt::Acquired(_) | Attempt::Held(_))))
            .count();
        let mut late = false;
        if granted.len() >= self.needed {
            if let Some(fence) = self.number(&request.key, &granted).await {
                let ends_at = (asked + request.ttl).checked_sub(drift(request.ttl));
                match ends_at {
                    Some(ends_at) if ends_at > Instant::now() => {
                        return Ok(request.lease(fence, asked, ends_at))
                    }
                    _ => late = true,
                }
            }
        }
        self.release_grants(request, &granted).await;
        let name = display_name(request.name);
        let outcome = self.describe(&answers, |attempt| match attempt {
            Attempt::Acquired(_) => "granted".into(),
            Attempt::Held(_) => "held by another owner".into(),
            Attempt::Withdrawn => "an earlier attempt of this call did not answer in time".into(),
        });
        if late {
            return Err(Lost::Failed(Error::QuorumUnavailable(format!(
                "lock '{name}': the masters took longer than its TTL leaves ({outcome})"
            ))));
        }
        if failed > self.masters.len() - self.needed || granted.len() >= self.needed {
            return Err(Lost::Failed(self.unavailable(&name, outcome)));
        }
        // Held where it was refused: look again when that holder's TTL ends, unless woken
        // first; split between contenders: soon, after a pause of one's own.
        let held_for = (answers.iter())
            .filter_map(|answer| match answer {
                Ok(Attempt::Held(held)) => Some(held.remaining.unwrap_or(Duration::MAX)),
                _ => None,
            })
            .min();
        let retry_in = match held_for {
            Some(remaining) if granted.is_empty() => {
                (remaining.saturating_add(EXPIRY_SLACK)).min(self.options.retry_interval)
                    + jitter(SPLIT_RETRY_JITTER)
            }
            _ => jitter(SPLIT_RETRY_JITTER),
        };
        Err(Lost::Refused {
            error: Error::NotAcquired(format!(
                "lock '{name}' is held by another owner on too many masters ({outcome})"
            )),
            retry_in,
        })
    }

    /// The fencing number of an acquisition that the masters in `granted` numbered: the
    /// highest, once a quorum of them has it (the others are raised to it). `None` when too
    /// few could be raised.
    async fn number(&self, key: &[u8], granted: &[(usize, u64)]) -> Option<u64> {
        let top = granted.iter().map(|&(_, fence)| fence).max()?;
        let at_top = granted.iter().filter(|&&(_, fence)| fence == top).count();
        if at_top >= self.needed {
            return Some(top);
        }
        let until = Instant::now() + self.node_timeout(None);
        let raise = calls::raise_fence(key, top);
        let raised = join_all((granted.iter()).filter(|&&(_, fence)| fence < top).map(
            |&(at, _)| {
                let connection = &self.masters[at].engine.connection;
                timeout_at(until, connection.send::<i64>(&raise, until.into_std()))
            },
        ))
        .await;
        let raised = raised
            .iter()
            .filter(|sent| matches!(sent, Ok(Ok(1))))
            .count();
        (at_top + raised >= self.needed).then_some(top)
    }

    /// Releases what a lost round was granted (a release wakes whoever waits there); a master
    /// that does not confirm is left to its cleanup task.
    async fn release_grants(&self, request: &LockRequest<'_>, granted: &[(usize, u64)]) {
        let until = Instant::now() + self.node_timeout(None);
        let release = calls::release(&request.key, &request.token);
        join_all(granted.iter().map(|&(at, _)| {
            let engine = &self.masters[at].engine;
            let release = &release;
            async move {
                let sent = timeout_at(
                    until,
                    engine.connection.send::<i64>(release, until.into_std()),
                );
                if !matches!(sent.await, Ok(Ok(_))) {
                    engine.give_back(&request.key, &request.token, request.ttl);
                }
            }
        }))
        .await;
    }

    /// The lease, once a round won, with its auto-renewal started if asked for; unless the
    /// client was closed or the wait cancelled meanwhile, or the renewal cannot start.
    async fn keep(
        &self,
        call: GiveBack<'_>,
        request: &LockRequest<'_>,
        lease: Lease,
    ) -> Result<Lease> {
        let refusal = if self.closed.is_set() {
            self.first().closed_error()
        } else if request.is_cancelled() {
            request.cancelled()
        } else {
            match request
                .take_auto_renew()
                .map(|settings| self.auto_renew(request.name, &lease, settings))
            {
                None | Some(Ok(_)) => {
                    call.disarm();
                    return Ok(lease);
                }
                Some(Err(err)) => err,
            }
        };
        self.leave(call, request, refusal).await
    }

    /// Ends a lock call without the lease: what it holds anywhere (grants, places in the
    /// queues) is given back before the caller hears why, promptly for a cancel or a close.
    async fn leave<T>(
        &self,
        call: GiveBack<'_>,
        request: &LockRequest<'_>,
        end: Error,
    ) -> Result<T> {
        let within = match end {
            Error::Cancelled(_) | Error::Closed(_) => PROMPT_END,
            _ => self.node_timeout(None),
        };
        let until = Instant::now() + within;
        join_all(self.masters.iter().map(|master| async move {
            let engine = &master.engine;
            let (key, token, ttl) = (&request.key, &request.token, request.ttl);
            let sent = engine.give_back_by(&*engine.connection, key, token, ttl, until.into_std());
            if timeout_at(until, sent).await.is_err() {
                engine.give_back(key, token, ttl);
            }
        }))
        .await;
        call.disarm();
        Err(end)
    }

    pub(crate) async fn unlock(&self, name: &[u8], token: &Token) -> Result<()> {
        let lease_was_lost = self.renewals.stop(token);
        self.check_open()?;
        let key = &self.first().key(name)?;
        let answers = self
            .on_every_master(None, |master| {
                let engine = &master.engine;
                async move {
                    let unlocked = engine.unlock(&*engine.connection, name, token);
                    let until = Instant::now() + self.node_timeout(None);
                    timeout_at(until, unlocked).await.unwrap_or_else(|_| {
                        engine.give_back(key, token, Duration::ZERO); // no place in a queue
                        Err(Error::Connection(
                            "no answer in time; released once it answers".into(),
                        ))
                    })
                }
            })
            .await;
        let released = answers.iter().filter(|answer| answer.is_ok()).count();
        let not_owner = (answers.iter())
            .filter(|answer| matches!(answer, Err(Error::NotOwner(_))))
            .count();
        if released >= self.needed || not_owner > self.masters.len() - self.needed {
            return owner_checked(name, released >= self.needed && !lease_was_lost);
        }
        let outcome = self.describe(&answers, |()| "released".into());
        Err(Error::QuorumUnavailable(format!(
            "lock '{}' was released on {released} of {} masters, {} needed to know it was held; \
             the others release it once they answer, or it expires at its TTL ({outcome})",
            display_name(name),
            self.masters.len(),
            self.needed
        )))
    }

    pub(crate) async fn extend(&self, name: &[u8], token: &Token, ttl: Duration) -> Result<()> {
        self.check_open()?;
        let key = self.first().key(name)?;
        let ttl = self.options.effective_ttl(Some(ttl))?;
        let masters =
            (self.masters.iter()).map(|master| (master.engine.connection.clone(), master));
        let masters = self.extender(masters);
        let until = Instant::now() + self.node_timeout(Some(ttl));
        match masters.extend(&key, token, ttl, until.into_std()).await {
            Extension::Extended(_) => Ok(()),
            Extension::NotHeld => owner_checked(name, false),
            Extension::NotReplicated | Extension::NoAnswer => {
                Err(Error::QuorumUnavailable(format!(
                    "lock '{}' was extended on fewer than {} of {} masters in time",
                    display_name(name),
                    self.needed,
                    self.masters.len()
                )))
            }
        }
    }

    pub(crate) async fn remaining_ttl(
        &self,
        name: &[u8],
        token: &Token,
    ) -> Result<Option<Duration>> {
        self.check_open()?;
        let answers = self
            .on_every_master(None, |master| {
                let engine = &master.engine;
                engine.remaining_ttl(&*engine.connection, name, token)
            })
            .await;
        let not_owner = (answers.iter())
            .filter(|answer| matches!(answer, Err(Error::NotOwner(_))))
            .count();
        if not_owner > self.masters.len() - self.needed {
            return owner_checked(name, false).map(|()| None);
        }
        let held: Vec<Option<Duration>> = answers.iter().filter_map(|a| a.clone().ok()).collect();
        match quorum_remaining(held, self.needed) {
            Some(remaining) => Ok(remaining.map(|ttl| ttl.saturating_sub(drift(ttl)))),
            None => {
                let outcome = self.describe(&answers, |ttl| match ttl {
                    Some(ttl) => format!("held for {} ms", ttl.as_millis()),
                    None => "held without expiry".into(),
                });
                Err(self.unavailable(&display_name(name), outcome))
            }
        }
    }

    pub(crate) async fn state(&self, name: &[u8]) -> Result<LockState> {
        self.check_open()?;
        let answers = self
            .on_every_master(None, |master| {
                let engine = &master.engine;
                engine.state(&*engine.connection, name)
            })
            .await;
        let free = (answers.iter())
            .filter(|answer| matches!(answer, Ok(LockState::Free)))
            .count();
        if free > self.masters.len() - self.needed {
            return Ok(LockState::Free);
        }
        let held = (answers.iter())
            .filter_map(|answer| match answer {
                Ok(LockState::Held { remaining }) => Some(*remaining),
                _ => None,
            })
            .collect();
        match quorum_remaining(held, self.needed) {
            Some(remaining) => Ok(LockState::Held { remaining }),
            None => {
                let outcome = self.describe(&answers, |state| format!("{state:?}").to_lowercase());
                Err(self.unavailable(&display_name(name), outcome))
            }
        }
    }

    pub(crate) async fn ping(&self) -> Result<()> {
        self.check_open()?;
        let answers = self
            .on_every_master(None, |master| {
                let engine = &master.engine;
                engine.ping(&*engine.connection)
            })
            .await;
        let answered = answers.iter().filter(|answer| answer.is_ok()).count();
        if answered >= self.needed {
            return Ok(());
        }
        let outcome = self.describe(&answers, |()| "answered".into());
        Err(Error::QuorumUnavailable(format!(
            "only {answered} of {} masters answered, {} needed ({outcome})",
            self.masters.len(),
            self.needed
        )))
    }

    pub(crate) fn auto_renew(
        &self,
        name: &[u8],
        lease: &Lease,
        settings: AutoRenew,
    ) -> Result<Renewal> {
        self.check_open()?;
        let key = self.first().key(name)?;
        let mut runtime = None;
        let mut on_background = Vec::with_capacity(self.masters.len());
        for master in &self.masters {
            let (handle, connection) = master.engine.background()?;
            runtime.get_or_insert(handle);
            on_background.push((connection, master));
        }
        let masters = self.extender(on_background.into_iter());
        let state = self
            .renewals
            .register(&lease.token, settings.on_lost, &self.closed, || {
                self.first().closed_error()
            })?;
        let runtime = runtime.expect("a quorum client has masters");
        runtime.spawn(renew(
            masters,
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

    /// See [`Engine::wait_for_loss`].
    pub(crate) async fn wait_for_loss(
        &self,
        token: &Token,
        wait: Wait,
        cancel: Option<&crate::CancelSignal>,
    ) -> Result<bool> {
        self.check_open()?;
        self.renewals.wait_for_loss(token, wait, cancel).await
    }

    pub(crate) async fn close(&self) {
        if self.closed.set() {
            return;
        }
        self.renewals.end_all();
        join_all(self.masters.iter().map(|master| master.engine.close())).await;
    }

    /// Waits (boundedly) for what failed calls still have to give back.
    pub(crate) async fn flush_cleanups(&self) {
        join_all(
            self.masters
                .iter()
                .map(|master| master.engine.flush_cleanups()),
        )
        .await;
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        match self.closed.is_set() {
            true => Err(self.first().closed_error()),
            false => Ok(()),
        }
    }

    // ---- helpers ------------------------------------------------------------------------

    fn first(&self) -> &Engine {
        &self.masters[0].engine
    }

    /// How long a master may take to answer one call with `ttl` (see
    /// [`Options::node_timeout`]).
    fn node_timeout(&self, ttl: Option<Duration>) -> Duration {
        let command_timeout = self.options.command_timeout;
        match (self.options.node_timeout, ttl) {
            (Some(timeout), _) => timeout,
            (None, Some(ttl)) => (ttl / 10).max(SHORTEST_NODE_TIMEOUT),
            (None, None) => NODE_TIMEOUT_WITHOUT_TTL,
        }
        .min(command_timeout)
    }

    /// Runs `call` on every master at once; a master that has not answered within the node
    /// timeout of a call with `ttl` counts as failed.
    async fn on_every_master<'a, T, F>(
        &'a self,
        ttl: Option<Duration>,
        call: impl Fn(&'a Master) -> F,
    ) -> Vec<Result<T>>
    where
        F: Future<Output = Result<T>> + 'a,
    {
        let timeout = self.node_timeout(ttl);
        let until = Instant::now() + timeout;
        join_all(self.masters.iter().map(|master| {
            let answer = call(master);
            async move {
                timeout_at(until, answer).await.unwrap_or_else(|_| {
                    Err(Error::Connection(format!(
                        "no answer within the node timeout ({} ms)",
                        timeout.as_millis()
                    )))
                })
            }
        }))
        .await
    }

    /// Each master's answer, for a message: `address: answer; …`.
    fn describe<T>(&self, answers: &[Result<T>], answer: impl Fn(&T) -> String) -> String {
        (self.masters.iter().zip(answers))
            .map(|(master, outcome)| {
                let told = match outcome {
                    Ok(value) => answer(value),
                    Err(err) => err.to_string(),
                };
                format!("{}: {told}", master.address)
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn unavailable(&self, name: &str, outcome: String) -> Error {
        Error::QuorumUnavailable(format!(
            "lock '{name}': fewer than {} of {} masters answered in time ({outcome})",
            self.needed,
            self.masters.len()
        ))
    }

    /// The renewal of a lease over the connections of `masters`.
    fn extender<'a>(
        &self,
        masters: impl Iterator<Item = (Arc<crate::transport::SharedConnection>, &'a Master)>,
    ) -> Masters {
        let servers = masters
            .map(|(connection, master)| OneServer {
                connection,
                replication: master.engine.replication().clone(),
                command_timeout: self.options.command_timeout,
            })
            .collect();
        Masters {
            servers,
            needed: self.needed,
            timeout: self.node_timeout(None),
        }
    }
}

impl Drop for Quorum {
    fn drop(&mut self) {
        if !self.closed.set() {
            self.renewals.end_all();
        }
    }
}

/// How a round was lost.
enum Lost {
    /// Enough masters answered that the lock is someone else's (or split between contenders):
    /// a waiter tries again in `retry_in`, or sooner when woken.
    Refused { error: Error, retry_in: Duration },
    /// Too many masters failed, or the call was cancelled or the client closed: the call ends.
    Failed(Error),
}

/// The renewal of a quorum lease: an extension counts when a quorum extended it, for its TTL
/// less the time it took and the drift allowance.
struct Masters {
    servers: Vec<OneServer>,
    needed: usize,
    timeout: Duration,
}

impl Extender for Masters {
    async fn extend(
        &self,
        key: &[u8],
        token: &Token,
        by: Duration,
        deadline: std::time::Instant,
    ) -> Extension {
        let sent = Instant::now();
        let answers = join_all(self.servers.iter().map(|server| async move {
            timeout_at(deadline.into(), server.extend(key, token, by, deadline))
                .await
                .unwrap_or(Extension::NoAnswer)
        }))
        .await;
        let count = |kind: fn(&Extension) -> bool| answers.iter().filter(|a| kind(a)).count();
        if count(|a| matches!(a, Extension::Extended(_))) >= self.needed {
            let lasts = by.saturating_sub(sent.elapsed() + drift(by));
            if !lasts.is_zero() {
                return Extension::Extended(lasts);
            }
        }
        if count(|a| matches!(a, Extension::NotHeld)) > self.servers.len() - self.needed {
            return Extension::NotHeld;
        }
        if count(|a| matches!(a, Extension::NotReplicated)) > 0 {
            return Extension::NotReplicated;
        }
        Extension::NoAnswer
    }

    async fn release(&self, key: &[u8], token: &Token) {
        join_all(self.servers.iter().map(|server| server.release(key, token))).await;
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }
}

/// What a lock call holds while it runs, given back to every master's cleanup task if the call
/// is dropped before it ends (its caller's future dropped mid-wait).
struct GiveBack<'a> {
    quorum: &'a Quorum,
    request: &'a LockRequest<'a>,
    armed: bool,
}

impl<'a> GiveBack<'a> {
    fn armed(quorum: &'a Quorum, request: &'a LockRequest<'a>) -> Self {
        GiveBack {
            quorum,
            request,
            armed: true,
        }
    }

    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for GiveBack<'_> {
    fn drop(&mut self) {
        if self.armed {
            let request = self.request;
            for master in &self.quorum.masters {
                (master.engine).give_back(&request.key, &request.token, request.ttl);
            }
        }
    }
}

/// The allowance for the masters' clocks running at different rates during a lease: 1% of the
/// TTL plus 2 ms (the Redis distributed-lock page's figures).
fn drift(ttl: Duration) -> Duration {
    ttl / 100 + Duration::from_millis(2)
}

/// How long a quorum of the holders in `held` keeps the lock (`Some(None)`: no expiry), or
/// `None` when fewer than `needed` hold it.
fn quorum_remaining(mut held: Vec<Option<Duration>>, needed: usize) -> Option<Option<Duration>> {
    // Longest first, no expiry longest of all: the quorum lasts as long as its `needed`-th.
    held.sort_by(|a, b| b.unwrap_or(Duration::MAX).cmp(&a.unwrap_or(Duration::MAX)));
    held.get(needed - 1).copied()
}

/// A random pause of up to `most`.
fn jitter(most: Duration) -> Duration {
    let random = uuid::Uuid::new_v4().as_u128() as u64;
    Duration::from_micros(random % (most.as_micros() as u64 + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quorum(urls: &[&str], options: Options) -> Result<Quorum> {
        Quorum::new(urls, options, BackgroundRuntime::CallersRuntime)
    }

    const THREE: [&str; 3] = [
        "redis://127.0.0.1:1",
        "redis://127.0.0.1:2",
        "redis://127.0.0.1:3",
    ];

    #[test]
    fn a_quorum_needs_three_separate_single_servers_and_a_majority() {
        let refused = |urls: &[&str], options| quorum(urls, options).err().unwrap().to_string();
        assert!(refused(&THREE[..2], Options::default()).contains("at least 3 masters"));
        let twice = [
            "redis://127.0.0.1:1",
            "redis://:pw@127.0.0.1:1",
            "redis://127.0.0.1:3",
        ];
        assert!(refused(&twice, Options::default()).contains("given twice"));
        let cluster = [
            "redis+cluster://h:1",
            "redis://127.0.0.1:2",
            "redis://127.0.0.1:3",
        ];
        assert!(refused(&cluster, Options::default()).contains("must be one server"));
        let minority = Options {
            quorum: Some(1),
            ..Options::default()
        };
        assert!(refused(&THREE, minority).contains("more than half"));
        assert_eq!(quorum(&THREE, Options::default()).unwrap().needed, 2);
        let all = Options {
            quorum: Some(3),
            ..Options::default()
        };
        assert_eq!(quorum(&THREE, all).unwrap().needed, 3);
    }

    #[test]
    fn the_node_timeout_is_small_against_the_ttl() {
        let q = quorum(&THREE, Options::default()).unwrap();
        assert_eq!(
            q.node_timeout(Some(Duration::from_secs(10))),
            Duration::from_secs(1)
        );
        assert_eq!(
            q.node_timeout(Some(Duration::from_millis(100))),
            SHORTEST_NODE_TIMEOUT
        );
        assert_eq!(
            q.node_timeout(Some(Duration::from_secs(60))),
            Duration::from_secs(2)
        );
        assert_eq!(q.node_timeout(None), NODE_TIMEOUT_WITHOUT_TTL);
    }

    #[test]
    fn a_quorum_lasts_as_long_as_its_shortest_member() {
        let ms = |ms| Some(Duration::from_millis(ms));
        assert_eq!(quorum_remaining(vec![ms(5), None, ms(9)], 2), Some(ms(9)));
        assert_eq!(quorum_remaining(vec![ms(5), ms(7), ms(9)], 3), Some(ms(5)));
        assert_eq!(quorum_remaining(vec![ms(5)], 2), None);
        assert_eq!(drift(Duration::from_secs(10)), Duration::from_millis(102));
    }
}
