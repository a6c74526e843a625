//! Auto-renewal: keeps a lease alive while its holder works, and tells the holder at once when
//! the lease is lost. A renewal needs an owner-checked PEXPIRE on a connection, nothing more.

use crate::cancel::CancelSignal;
use crate::error::{Error, Result};
use crate::latch::Latch;
use crate::lease::Lease;
use crate::options::Wait;
use crate::protocol::calls;
use crate::replication::Replication;
use crate::token::Token;
use crate::transport::SharedConnection;
use crate::unwind::catching;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::ThreadId;
use std::time::Duration;
use tokio::time::{sleep, sleep_until, timeout_at, Instant};

/// How auto-renewal behaves (see [`crate::Client::auto_renew`]).
#[derive(Default)]
pub struct AutoRenew {
    /// Stop renewing once the lock has been held this long (the lease then runs out at its
    /// TTL and counts as lost). `None`: renew until unlocked.
    pub max_hold: Option<Duration>,
    /// Called once, on a thread of its own, when the lease is lost. Once `unlock` (or the
    /// client's `close`) has returned, it is neither running nor will it run, and it has been
    /// dropped: whatever it captured may be freed then.
    pub on_lost: Option<Box<dyn FnOnce() + Send>>,
}

/// The leases a client renews, by token: unlock stops their renewal and reports a lost one,
/// close marks them all lost.
#[derive(Default)]
pub(crate) struct Renewals(Mutex<HashMap<Token, Arc<RenewalState>>>);

impl Renewals {
    /// Registers the renewal of `token`'s lease, unless `closed` is set (then `closed_error`):
    /// a close that ran meanwhile may have missed it.
    pub(crate) fn register(
        &self,
        token: &Token,
        on_lost: Option<Box<dyn FnOnce() + Send>>,
        closed: &Latch,
        closed_error: impl FnOnce() -> Error,
    ) -> Result<Arc<RenewalState>> {
        let state = RenewalState::new(on_lost);
        self.lock().insert(token.clone(), state.clone());
        if closed.is_set() {
            self.stop(token);
            return Err(closed_error());
        }
        Ok(state)
    }

    /// The renewal of `token`'s lease.
    pub(crate) fn get(&self, token: &Token) -> Result<Arc<RenewalState>> {
        self.lock().get(token).cloned().ok_or_else(|| {
            Error::InvalidArgument(
                "this token has no auto-renewal (never requested, or already unlocked)".into(),
            )
        })
    }

    /// Stops the renewal of `token`'s lease, if any; true when that lease was already lost.
    pub(crate) fn stop(&self, token: &Token) -> bool {
        let renewal = self.lock().remove(token);
        renewal.is_some_and(|state| state.stop())
    }

    /// Marks every lease lost because the client closes, and stops renewing them. They stay
    /// registered, so that an unlock racing the close still finds its renewal and waits for
    /// the callback; the client's drop forgets them.
    pub(crate) fn end_all(&self) {
        let renewals: Vec<_> = self.lock().values().cloned().collect();
        for state in &renewals {
            state.mark_lost(Loss::Closed);
        }
        for state in &renewals {
            state.stop();
        }
    }

    /// Waits until the lease of `token` is lost (`true`), its renewal ends without a loss
    /// (unlock) or `wait` ends (`false`); `cancel` ends it with [`Error::Cancelled`].
    pub(crate) async fn wait_for_loss(
        &self,
        token: &Token,
        wait: Wait,
        cancel: Option<&CancelSignal>,
    ) -> Result<bool> {
        let renewal = self.get(token)?;
        let deadline = match wait {
            Wait::TryOnce => Some(Instant::now()),
            Wait::AtMost(limit) => Instant::now().checked_add(limit),
            Wait::Forever => None,
        };
        let cancelled = async {
            match cancel {
                Some(cancel) => cancel.cancelled().await,
                None => std::future::pending().await,
            }
        };
        let ended = async {
            match deadline {
                Some(deadline) => sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            lost = renewal.lost_or_stopped() => Ok(lost),
            _ = cancelled => Err(Error::Cancelled("waiting for the loss of a lease was cancelled".into())),
            // No arm for close: closing counts as the loss of every renewed lease.
            _ = ended => Ok(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Token, Arc<RenewalState>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Why an auto-renewed lease was lost (see [`Renewal::loss`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Loss {
    /// Redis answered that the token no longer holds the lock: it expired, was deleted or
    /// released, or another owner holds it now.
    NotHeld,
    /// No renewal went through before the lease ran out: Redis was unreachable, stopped or too
    /// slow (or replied with errors). The lock has expired by Redis's clock, or will once that clock runs again (a
    /// paused server); whether another owner holds it is unknown.
    NoAnswer,
    /// The hold limit ([`AutoRenew::max_hold`]) was reached and the lease ran out.
    HoldLimit,
    /// No renewal was acknowledged by as many replicas as [`crate::Options::replica_acks`]
    /// asks for before the lease ran out; the lock was released.
    NotReplicated,
    /// The client was closed.
    Closed,
    /// The renewal itself failed (a bug, caught).
    Failed,
}

/// Handle to one lock's auto-renewal. Renewal stops at unlock or when the client is closed or
/// dropped; cloning shares the state.
#[derive(Clone)]
pub struct Renewal {
    pub(crate) state: Arc<RenewalState>,
}

pub(crate) struct RenewalState {
    lost: Latch,
    /// Why, set before `lost`.
    loss: OnceLock<Loss>,
    stopped: Latch,
    notice: LossNotice,
}

impl Renewal {
    /// True once the lease is known to be lost (renewal found the lock gone, or could not
    /// reach Redis before the lease ran out). Unlock then reports `NotOwner`.
    pub fn is_lost(&self) -> bool {
        self.state.is_lost()
    }

    /// Why the lease was lost, once it is (already when the `on_lost` callback runs).
    pub fn loss(&self) -> Option<Loss> {
        match self.state.is_lost() {
            true => self.state.loss.get().copied(),
            false => None,
        }
    }

    /// Resolves when the lease is lost; never, if it is unlocked first.
    pub async fn lost(&self) {
        self.state.lost.wait().await
    }
}

impl RenewalState {
    pub(crate) fn new(on_lost: Option<Box<dyn FnOnce() + Send>>) -> Arc<Self> {
        Arc::new(RenewalState {
            lost: Latch::default(),
            loss: OnceLock::new(),
            stopped: Latch::default(),
            notice: LossNotice::new(on_lost),
        })
    }

    pub(crate) fn is_lost(&self) -> bool {
        self.lost.is_set()
    }

    /// Resolves with `true` once the lease is lost, or `false` once renewal stopped first.
    pub(crate) async fn lost_or_stopped(&self) -> bool {
        tokio::select! {
            biased;
            _ = self.lost.wait() => true,
            _ = self.stopped.wait() => self.is_lost(),
        }
    }

    /// Ends the renewal (unlock, close): returns whether the lease had been lost. When it
    /// returns, the loss callback is neither running nor will run, unless this is called
    /// from inside that callback.
    pub(crate) fn stop(&self) -> bool {
        self.stopped.set();
        self.notice.retire();
        self.is_lost()
    }

    /// Marks the lease lost and tells its holder, once, unless renewal was stopped first.
    /// The callback runs on a thread of its own, outside any runtime: it may call back into
    /// the library (unlock, lock) without deadlocking the renewal machinery. The first loss
    /// found is the one told.
    pub(crate) fn mark_lost(self: &Arc<Self>, loss: Loss) {
        if self.stopped.is_set() {
            return;
        }
        let _ = self.loss.set(loss);
        if self.lost.set() {
            return;
        }
        let Some(callback) = self.notice.take_for_running() else {
            return;
        };
        let state = self.clone();
        let spawned = std::thread::Builder::new()
            .name("redilock-lost".into())
            .spawn(move || state.notice.run(callback));
        if spawned.is_err() {
            self.notice.finish(); // no thread to run it: the holder still sees is_lost()
        }
    }
}

/// The holder's loss callback and where it stands, so that whoever ends a renewal can wait
/// until the callback is neither running nor able to run.
struct LossNotice {
    stage: Mutex<Stage>,
    finished: Condvar,
}

enum Stage {
    Armed(Option<Box<dyn FnOnce() + Send>>),
    /// Handed to its thread; the thread's id once it has started.
    Running(Option<ThreadId>),
    Done,
}

impl LossNotice {
    fn new(callback: Option<Box<dyn FnOnce() + Send>>) -> Self {
        LossNotice {
            stage: Mutex::new(Stage::Armed(callback)),
            finished: Condvar::new(),
        }
    }

    /// Runs the callback on the current thread, and marks it done even if it panics.
    fn run(&self, callback: Box<dyn FnOnce() + Send>) {
        *self.lock() = Stage::Running(Some(std::thread::current().id()));
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(callback));
        self.finish();
    }

    fn finish(&self) {
        *self.lock() = Stage::Done;
        self.finished.notify_all();
    }

    fn take_for_running(&self) -> Option<Box<dyn FnOnce() + Send>> {
        let mut stage = self.lock();
        match std::mem::replace(&mut *stage, Stage::Running(None)) {
            Stage::Armed(Some(callback)) => Some(callback),
            other => {
                *stage = match other {
                    Stage::Armed(None) => Stage::Done,
                    other => other,
                };
                None
            }
        }
    }

    /// Drops a callback that never ran, or waits for a running one to return.
    fn retire(&self) {
        let mut stage = self.lock();
        loop {
            match &mut *stage {
                Stage::Armed(callback) => {
                    let callback = callback.take();
                    *stage = Stage::Done;
                    drop(stage);
                    drop(callback); // outside the lock: dropping may run the holder's code
                    return;
                }
                Stage::Running(Some(id)) if *id == std::thread::current().id() => return,
                Stage::Running(_) => {
                    stage = self.finished.wait(stage).unwrap_or_else(|e| e.into_inner())
                }
                Stage::Done => return,
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Stage> {
        self.stage.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What one renewal found.
pub(crate) enum Extension {
    /// Extended: the lease is sure to last this long from when the renewal was sent.
    Extended(Duration),
    /// Extended, but fewer replicas acknowledged it than the options ask for.
    NotReplicated,
    /// The lock is gone, or someone else's.
    NotHeld,
    /// No answer in time (Redis unreachable, stopped, too slow, or replying with errors).
    NoAnswer,
}

/// Where a renewal sends its extensions: one server, or every master of a quorum client.
pub(crate) trait Extender: Send + Sync + 'static {
    /// Extends `token`'s lease on `key` to `by`, with the answer due by `deadline`.
    fn extend(
        &self,
        key: &[u8],
        token: &Token,
        by: Duration,
        deadline: std::time::Instant,
    ) -> impl Future<Output = Extension> + Send;

    /// Releases a lease lost for want of replica acknowledgements.
    fn release(&self, key: &[u8], token: &Token) -> impl Future<Output = ()> + Send;

    /// How long one renewal may wait for its answer.
    fn timeout(&self) -> Duration;
}

/// One server: the owner-checked PEXPIRE, with `WAIT` when replicas must acknowledge it.
pub(crate) struct OneServer {
    pub(crate) connection: Arc<SharedConnection>,
    pub(crate) replication: Arc<Replication>,
    pub(crate) command_timeout: Duration,
}

impl Extender for OneServer {
    async fn extend(
        &self,
        key: &[u8],
        token: &Token,
        by: Duration,
        deadline: std::time::Instant,
    ) -> Extension {
        let call = || calls::extend(key, token, by);
        let renewal = self
            .replication
            .send(&*self.connection, call, calls::extended, deadline);
        match renewal.await {
            Ok((1, acks)) if acks.suffice() => Extension::Extended(by),
            Ok((1, _)) => Extension::NotReplicated,
            Ok(_) => Extension::NotHeld,
            Err(_) => Extension::NoAnswer,
        }
    }

    async fn release(&self, key: &[u8], token: &Token) {
        let release = calls::cleanup(key, token, Duration::ZERO); // no place in a queue
        let deadline = std::time::Instant::now() + self.command_timeout;
        let _ = self.connection.send::<i64>(&release, deadline).await; // else its TTL ends it
    }

    fn timeout(&self) -> Duration {
        self.command_timeout
    }
}

/// Keeps a lease alive until renewal is stopped; marks it lost when it is gone, could not be
/// renewed before it ran out, or the renewal itself failed (a bug caught here). A lease lost
/// for want of replica acknowledgements is released after its holder is told: the lock must
/// not outlive a failover.
pub(crate) async fn renew(
    extender: impl Extender,
    key: Vec<u8>,
    lease: Lease,
    max_hold: Option<Duration>,
    state: Arc<RenewalState>,
) {
    let lost = catching(renew_until_lost(&extender, &key, &lease, max_hold));
    tokio::select! {
        loss = lost => {
            let loss = loss.unwrap_or(Loss::Failed);
            state.mark_lost(loss);
            if loss == Loss::NotReplicated {
                extender.release(&key, &lease.token).await;
            }
        }
        _ = state.stopped.wait() => {}
    }
}

/// Extends the lease at about a third of its TTL and retries quickly while Redis cannot be
/// reached or too few replicas acknowledge; returns why once the lease is lost.
async fn renew_until_lost(
    extender: &impl Extender,
    key: &[u8],
    lease: &Lease,
    max_hold: Option<Duration>,
) -> Loss {
    let (ttl, acquired_at) = (lease.ttl, lease.acquired_at);
    let interval = (ttl / 3).max(Duration::from_millis(1));
    let hold_until = max_hold.and_then(|hold| acquired_at.checked_add(hold));
    let mut lease_ends = lease.ends_at;
    let mut next = acquired_at + interval;
    // Why the lease is lost if it runs out before a renewal goes through.
    let mut unrenewed = Loss::NoAnswer;
    loop {
        sleep_until(next).await;
        let now = Instant::now();
        let extend_by = match hold_until {
            Some(limit) if limit <= now => {
                // Hold time used up: let the lease run out, then report it gone.
                sleep_until(lease_ends).await;
                return Loss::HoldLimit;
            }
            Some(limit) => ttl.min(limit - now).max(Duration::from_millis(1)),
            None => ttl,
        };
        let deadline = lease_ends.min(now + extender.timeout()).into_std();
        let renewal = extender.extend(key, &lease.token, extend_by, deadline);
        match timeout_at(lease_ends, renewal).await {
            Ok(Extension::Extended(lasts)) => {
                lease_ends = now + lasts;
                next = now + (extend_by / 3).max(Duration::from_millis(1));
                continue;
            }
            // Extended on the primary only: the lease lasts as long as the last acknowledged
            // renewal made it.
            Ok(Extension::NotReplicated) => unrenewed = Loss::NotReplicated,
            Ok(Extension::NotHeld) => return Loss::NotHeld, // the lock is gone or someone else's
            // Cut short by the lease's end: that says nothing new about Redis.
            Ok(Extension::NoAnswer) if Instant::now() >= lease_ends => return unrenewed,
            Ok(Extension::NoAnswer) => unrenewed = Loss::NoAnswer,
            Err(_) => return unrenewed, // the lease ran out while waiting for Redis
        }
        // Try again soon, while the lease lasts.
        if Instant::now() >= lease_ends {
            return unrenewed;
        }
        sleep(RETRY_WHEN_UNREACHABLE.min(interval)).await;
        next = Instant::now();
    }
}

/// How soon a renewal that did not go through (Redis unreachable, too few replicas) is tried
/// again, at most.
const RETRY_WHEN_UNREACHABLE: Duration = Duration::from_millis(100);

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;

    /// Counts how often it is dropped, as a C caller's drop function would.
    struct Data(Arc<AtomicUsize>);

    impl Drop for Data {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn stop_waits_for_a_running_callback_and_its_data_is_dropped_once() {
        let drops = Arc::new(AtomicUsize::new(0));
        let (started, callback_started) = mpsc::channel();
        let data = Data(drops.clone());
        let state = RenewalState::new(Some(Box::new(move || {
            let _data = &data;
            started.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(100));
        })));
        state.mark_lost(Loss::Closed);
        callback_started.recv().unwrap();
        assert!(state.stop(), "the lease was lost");
        assert_eq!(
            drops.load(Ordering::SeqCst),
            1,
            "done and dropped when stop returns"
        );
        state.mark_lost(Loss::Closed);
        assert!(state.stop());
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_callback_that_never_ran_is_dropped_at_stop() {
        let drops = Arc::new(AtomicUsize::new(0));
        let data = Data(drops.clone());
        let state = RenewalState::new(Some(Box::new(move || drop(data))));
        assert!(!state.stop());
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        state.mark_lost(Loss::Closed); // after stop: nobody is told
        assert!(!state.is_lost());
    }

    #[test]
    fn stop_from_inside_the_callback_does_not_wait_for_itself() {
        let (done, finished) = mpsc::channel();
        let state = RenewalState::new(None);
        let inner = state.clone();
        *state.notice.lock() = Stage::Armed(Some(Box::new(move || {
            done.send(inner.stop()).unwrap();
        })));
        state.mark_lost(Loss::Closed);
        assert_eq!(finished.recv_timeout(Duration::from_secs(5)), Ok(true));
    }

    #[test]
    fn the_first_loss_found_is_the_one_told() {
        let (told, heard) = mpsc::channel();
        let slot = Arc::new(OnceLock::<Renewal>::new());
        let seen = slot.clone();
        let state = RenewalState::new(Some(Box::new(move || {
            told.send(seen.get().and_then(Renewal::loss)).unwrap();
        })));
        let renewal = Renewal {
            state: state.clone(),
        };
        let _ = slot.set(renewal.clone());
        assert_eq!(renewal.loss(), None);
        state.mark_lost(Loss::NoAnswer);
        state.mark_lost(Loss::Closed);
        assert_eq!(
            heard.recv_timeout(Duration::from_secs(5)),
            Ok(Some(Loss::NoAnswer)),
            "known to the callback"
        );
        assert!(state.stop());
        assert_eq!(renewal.loss(), Some(Loss::NoAnswer));
    }

    #[test]
    fn a_panicking_callback_still_counts_as_done() {
        let state = RenewalState::new(Some(Box::new(|| panic!("in the holder's callback"))));
        state.mark_lost(Loss::Closed);
        assert!(state.stop(), "returns instead of waiting forever");
    }
}
