//! The asynchronous (tokio) client: all lock logic lives here; the blocking client and the
//! C ABI are thin layers over it.

use crate::cancel::CancelSignal;
use crate::commands::{self, Attempt, Call};
use crate::connection::SharedConnection;
use crate::direct::DirectConnections;
use crate::error::{Error, Result};
use crate::lease::{renew, KeepAlive, Lease, Renewal, RenewalState};
use crate::options::{Options, Wait};
use crate::scripts::wake_channel;
use crate::token::Token;
use crate::wakeups::Wakeups;
use once_cell::sync::OnceCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::time::{sleep_until, Instant};

/// An asynchronous lock client. Cheap to clone; all clones share one multiplexed connection
/// and one wake-up subscription. Creating it does no I/O: it connects on first use and
/// reconnects by itself after Redis comes back.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    options: Options,
    connection: SharedConnection,
    /// Started on first contention, on the runtime of the caller that waits.
    wakeups: OnceCell<Wakeups>,
    /// Leases being renewed, by token: unlock stops their renewal and reports a lost one.
    renewals: Mutex<HashMap<Token, Arc<RenewalState>>>,
}

/// What [`Client::status`] reads of a lock without owning it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockStatus {
    Free,
    /// Held by someone; `remaining` is `None` for a lock without expiry (which only a lock set
    /// by other software can have).
    Held {
        remaining: Option<Duration>,
    },
}

impl LockStatus {
    /// From a PTTL reply: -2 when free, -1 when held without expiry.
    pub(crate) fn from_pttl(reply_ms: i64) -> LockStatus {
        match reply_ms {
            -2 => LockStatus::Free,
            ms => LockStatus::Held {
                remaining: u64::try_from(ms).ok().map(Duration::from_millis),
            },
        }
    }
}

/// A client that does not keep its connections alive (held by renewal tasks, so that a
/// dropped client stops renewing).
#[derive(Clone)]
pub(crate) struct WeakClient(Weak<Inner>);

impl WeakClient {
    pub(crate) fn upgrade(&self) -> Option<Client> {
        self.0.upgrade().map(|inner| Client { inner })
    }
}

/// One lock call, checked before anything is sent.
pub(crate) struct LockRequest<'a> {
    name: &'a [u8],
    pub(crate) key: Vec<u8>,
    pub(crate) token: Token,
    pub(crate) ttl: Duration,
    wait: Wait,
    deadline: Option<Instant>,
    cancel: Option<&'a CancelSignal>,
}

impl LockRequest<'_> {
    pub(crate) fn lease(&self, fence: u64, acquired_at: Instant) -> Lease {
        Lease {
            token: self.token.clone(),
            fence,
            ttl: self.ttl,
            acquired_at,
        }
    }

    /// The refusal, as the last attempt found the lock.
    fn not_acquired(&self, promised: bool) -> Error {
        let name = display_name(self.name);
        Error::NotAcquired(if promised {
            format!("lock '{name}' is free but promised to a waiter queued earlier")
        } else {
            format!("lock '{name}' is held by another owner")
        })
    }
}

impl Client {
    /// Creates a client for `redis_url` (`redis://[user[:password]@]host[:port][/db]`,
    /// `rediss://` is not enabled, `unix:///path/to/socket[?db=N]`).
    pub fn new(redis_url: &str, options: Options) -> Result<Client> {
        options.validate()?;
        let invalid_url = |_| {
            Error::InvalidArgument(format!(
                "invalid Redis URL '{}' (expected redis://[user:password@]host[:port][/db] or unix:///path)",
                redact_url(redis_url)
            ))
        };
        // TCP_NODELAY: every lock call is a small request waiting for its reply.
        let info = redis::IntoConnectionInfo::into_connection_info(redis_url)
            .map_err(invalid_url)?
            .set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true));
        let client = redis::Client::open(info).map_err(invalid_url)?;
        let connection =
            SharedConnection::new(client, options.connect_timeout, options.command_timeout);
        Ok(Client {
            inner: Arc::new(Inner {
                options,
                connection,
                wakeups: OnceCell::new(),
                renewals: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The options this client was created with.
    pub fn options(&self) -> &Options {
        &self.inner.options
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
        self.acquire(self.lock_request(name.as_ref(), ttl, wait, None)?)
            .await
    }

    /// Like [`Client::lock`], and `cancel` ends the wait with [`Error::Cancelled`].
    pub async fn lock_cancellable(
        &self,
        name: impl AsRef<[u8]>,
        ttl: Option<Duration>,
        wait: Wait,
        cancel: &CancelSignal,
    ) -> Result<Lease> {
        self.acquire(self.lock_request(name.as_ref(), ttl, wait, Some(cancel))?)
            .await
    }

    /// Releases `name` if `token` holds it; [`Error::NotOwner`] (and nothing deleted) otherwise.
    /// Stops the lock's auto-renewal; after a lost lease it reports `NotOwner`, never success.
    pub async fn unlock(&self, name: impl AsRef<[u8]>, token: &Token) -> Result<()> {
        let name = name.as_ref();
        let key = self.key(name)?;
        let lease_was_lost = self.stop_renewal(token);
        let released = self.send::<i64>(&commands::release(&key, token)).await? == 1;
        owner_checked(name, released && !lease_was_lost)
    }

    /// Resets the TTL of a held lock to `ttl`, atomically and only for its owner. Never
    /// re-creates an expired lock: [`Error::NotOwner`] then.
    pub async fn extend(&self, name: impl AsRef<[u8]>, token: &Token, ttl: Duration) -> Result<()> {
        let name = name.as_ref();
        let key = self.key(name)?;
        let ttl = self.inner.options.effective_ttl(Some(ttl))?;
        owner_checked(name, self.extend_key(&key, token, ttl).await?)
    }

    /// The remaining TTL of a lock `token` holds (`None`: it has no expiry, which only a lock
    /// set by other software can have); [`Error::NotOwner`] when it does not hold it.
    pub async fn remaining_ttl(
        &self,
        name: impl AsRef<[u8]>,
        token: &Token,
    ) -> Result<Option<Duration>> {
        let name = name.as_ref();
        let key = self.key(name)?;
        owner_ttl(name, self.send(&commands::remaining(&key, token)).await?)
    }

    /// Whether anyone holds `name`, read without a token (for status displays).
    pub async fn status(&self, name: impl AsRef<[u8]>) -> Result<LockStatus> {
        let key = self.key(name.as_ref())?;
        Ok(LockStatus::from_pttl(
            self.send(&commands::pttl(&key)).await?,
        ))
    }

    /// Keeps `lease` on `name` alive until it is unlocked: renews it at about a third of its
    /// TTL, and marks it lost (calling `keep.on_lost`) when a renewal finds the lock gone or
    /// cannot reach Redis before the lease runs out. Renewal runs on the caller's tokio
    /// runtime and stops when the client is dropped.
    pub fn keep_alive(
        &self,
        name: impl AsRef<[u8]>,
        lease: &Lease,
        keep: KeepAlive,
    ) -> Result<Renewal> {
        self.keep_alive_on(
            name.as_ref(),
            lease,
            keep,
            self,
            &tokio::runtime::Handle::current(),
        )
    }

    /// [`Client::keep_alive`] whose renewals are sent by `renewer` on `runtime` (the blocking
    /// client's background thread, with its own connection).
    pub(crate) fn keep_alive_on(
        &self,
        name: &[u8],
        lease: &Lease,
        keep: KeepAlive,
        renewer: &Client,
        runtime: &tokio::runtime::Handle,
    ) -> Result<Renewal> {
        let key = self.key(name)?;
        let state = RenewalState::new(keep.on_lost);
        self.lock_renewals()
            .insert(lease.token.clone(), state.clone());
        runtime.spawn(renew(
            renewer.downgrade(),
            key,
            lease.token.clone(),
            lease.ttl,
            lease.acquired_at,
            keep.max_hold,
            state.clone(),
        ));
        Ok(Renewal { state })
    }

    /// Whether the auto-renewed lease of `token` was lost; `None` without auto-renewal.
    pub(crate) fn renewal_lost(&self, token: &Token) -> Option<bool> {
        self.lock_renewals().get(token).map(|state| state.is_lost())
    }

    pub(crate) fn downgrade(&self) -> WeakClient {
        WeakClient(Arc::downgrade(&self.inner))
    }

    /// The owner-checked PEXPIRE; true when `token` held the lock.
    pub(crate) async fn extend_key(
        &self,
        key: &[u8],
        token: &Token,
        ttl: Duration,
    ) -> Result<bool> {
        Ok(self.send::<i64>(&commands::extend(key, token, ttl)).await? == 1)
    }

    fn lock_renewals(&self) -> std::sync::MutexGuard<'_, HashMap<Token, Arc<RenewalState>>> {
        self.inner
            .renewals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Checks that Redis answers.
    pub async fn ping(&self) -> Result<()> {
        self.send::<String>(&commands::ping()).await.map(drop)
    }

    /// Direct connections to this client's server, for the blocking client.
    pub(crate) fn direct_connections(&self) -> DirectConnections {
        let opts = &self.inner.options;
        DirectConnections::new(
            self.inner.connection.redis_client().clone(),
            opts.connect_timeout,
            opts.command_timeout,
        )
    }

    /// Sends one call over the shared multiplexed connection.
    pub(crate) async fn send<T: redis::FromRedisValue>(&self, call: &Call) -> Result<T> {
        self.inner.connection.send(call).await
    }

    /// Stops the renewal of `token`'s lease, if any; true when that lease was already lost.
    pub(crate) fn stop_renewal(&self, token: &Token) -> bool {
        let renewal = self.lock_renewals().remove(token);
        renewal.is_some_and(|state| state.stop())
    }

    /// Checks a lock call's arguments, before anything is sent.
    pub(crate) fn lock_request<'a>(
        &self,
        name: &'a [u8],
        ttl: Option<Duration>,
        wait: Wait,
        cancel: Option<&'a CancelSignal>,
    ) -> Result<LockRequest<'a>> {
        Ok(LockRequest {
            name,
            key: self.key(name)?,
            token: Token::generate(),
            ttl: self.inner.options.effective_ttl(ttl)?,
            wait,
            deadline: match wait {
                Wait::AtMost(limit) => Some(Instant::now() + limit),
                Wait::TryOnce | Wait::Forever => None,
            },
            cancel,
        })
    }

    async fn acquire(&self, request: LockRequest<'_>) -> Result<Lease> {
        let asked = Instant::now();
        let in_flight = Abandon::new(self, &request);
        let first = self.attempt(&request, None).await?;
        in_flight.disarm();
        self.after_first_attempt(&request, first, asked).await
    }

    /// The lease when the first attempt took the lock; otherwise, unless told not to wait,
    /// queues for the lock and tries again at each wake-up and re-check until it is taken.
    pub(crate) async fn after_first_attempt(
        &self,
        request: &LockRequest<'_>,
        first: Attempt,
        asked: Instant,
    ) -> Result<Lease> {
        let mut promised = matches!(first, Attempt::Promised);
        let mut held_for = match first {
            Attempt::Acquired(fence) => return Ok(request.lease(fence, asked)),
            _ if request.wait == Wait::TryOnce => return Err(request.not_acquired(promised)),
            Attempt::Held(remaining) => remaining,
            Attempt::Promised => None,
        };
        let (deadline, cancel) = (request.deadline, request.cancel);
        // Subscribe before the next attempt, so a release between the two is not missed.
        let wakeups = self.inner.wakeups.get_or_init(|| {
            let opts = &self.inner.options;
            Wakeups::start(
                self.inner.connection.redis_client().clone(),
                opts.connect_timeout,
                opts.command_timeout,
                opts.retry_interval,
            )
        });
        let subscription = tokio::select! {
            subscription = wakeups.subscribe(wake_channel(&request.key), &request.token) => subscription,
            _ = wait_for(cancel) => return Err(cancelled(request.name)),
            _ = sleep_until_opt(deadline) => return Err(request.not_acquired(promised)),
        };
        // From the next attempt on, the caller has a place in the queue, kept by each
        // re-check; a caller that stops re-checking (crashed) loses it after three intervals.
        let queue_for = Some(self.inner.options.retry_interval * 3);
        let place = Abandon::new(self, request);
        loop {
            let asked = Instant::now();
            match self.attempt(request, queue_for).await? {
                Attempt::Acquired(fence) => {
                    place.disarm(); // the script took the caller off the queue
                    return Ok(request.lease(fence, asked));
                }
                Attempt::Held(remaining) => {
                    promised = false;
                    held_for = remaining.or(held_for);
                }
                Attempt::Promised => promised = true,
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                place.now().await;
                return Err(request.not_acquired(promised));
            }
            // Re-check at the retry interval, and never sleep past the holder's expiry.
            let mut recheck = now + self.inner.options.retry_interval;
            if let Some(remaining) = held_for.take() {
                recheck = recheck.min(now + remaining);
            }
            if let Some(deadline) = deadline {
                recheck = recheck.min(deadline);
            }
            tokio::select! {
                _ = subscription.released() => {}
                _ = sleep_until(recheck) => {}
                _ = wait_for(cancel) => {
                    place.now().await;
                    return Err(cancelled(request.name));
                }
            }
        }
    }

    /// One acquisition attempt, queueing for `queue_for` when refused (see commands::acquire).
    async fn attempt(
        &self,
        request: &LockRequest<'_>,
        queue_for: Option<Duration>,
    ) -> Result<Attempt> {
        let call = commands::acquire(&request.key, &request.token, request.ttl, queue_for);
        Ok(self.send::<(i64, i64)>(&call).await?.into())
    }

    /// Gives back in the background what a lock call that ended without a lease may hold
    /// (see commands::abandon); the TTLs cover the case where this fails too.
    pub(crate) fn abandon_later(
        &self,
        request: &LockRequest<'_>,
        runtime: &tokio::runtime::Handle,
    ) {
        let (client, key, token) = (self.clone(), request.key.clone(), request.token.clone());
        runtime.spawn(async move {
            let _ = client.send::<i64>(&commands::abandon(&key, &token)).await;
        });
    }

    pub(crate) fn key(&self, name: &[u8]) -> Result<Vec<u8>> {
        if name.is_empty() {
            return Err(Error::InvalidArgument(
                "the lock name must not be empty".into(),
            ));
        }
        Ok([self.inner.options.key_prefix.as_slice(), name].concat())
    }
}

/// Gives back what a lock call may hold while it has no lease: a lock taken by an attempt
/// whose reply was lost, or its place in the queue. Dropped while armed (the caller's future
/// dropped mid-wait, an attempt failed), it does so in the background.
struct Abandon<'a> {
    client: &'a Client,
    request: &'a LockRequest<'a>,
    armed: bool,
}

impl<'a> Abandon<'a> {
    fn new(client: &'a Client, request: &'a LockRequest<'a>) -> Self {
        Abandon {
            client,
            request,
            armed: true,
        }
    }

    /// The call ended with its lease: nothing to give back.
    fn disarm(mut self) {
        self.armed = false;
    }

    /// Gives back at once, before the caller hears that it stopped waiting, so the next
    /// waiter does not wait for this one's place to expire.
    async fn now(mut self) {
        self.armed = false;
        let (key, token) = (&self.request.key, &self.request.token);
        let _ = self
            .client
            .send::<i64>(&commands::abandon(key, token))
            .await;
    }
}

impl Drop for Abandon<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            self.client.abandon_later(self.request, &runtime);
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

/// The owner's remaining TTL from the `remaining` script's reply (None: no expiry).
pub(crate) fn owner_ttl(name: &[u8], reply_ms: i64) -> Result<Option<Duration>> {
    owner_checked(name, reply_ms != -3)?;
    Ok(u64::try_from(reply_ms).ok().map(Duration::from_millis))
}

fn cancelled(name: &[u8]) -> Error {
    Error::Cancelled(format!(
        "waiting for lock '{}' was cancelled",
        display_name(name)
    ))
}

/// A lock name as shown in messages: lossy UTF-8, cut after 100 characters.
pub(crate) fn display_name(name: &[u8]) -> String {
    let text = String::from_utf8_lossy(name);
    match text.char_indices().nth(100) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.into_owned(),
    }
}

/// The URL with any password replaced, for messages.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<unparsable>".into();
    };
    match rest.rsplit_once('@') {
        Some((credentials, host)) => {
            let user = credentials.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact_url("redis://u:secret@h:1/0"), "redis://u:***@h:1/0");
        assert_eq!(redact_url("redis://:secret@h"), "redis://:***@h");
        assert_eq!(redact_url("redis://h:6379"), "redis://h:6379");
        assert!(!redact_url("nonsense secret").contains("secret"));
    }

    #[test]
    fn long_names_are_shortened_in_messages() {
        let name = "ü".repeat(500);
        assert_eq!(display_name(name.as_bytes()).chars().count(), 101);
        assert_eq!(display_name(b"orders:42"), "orders:42");
    }

    #[test]
    fn bad_urls_do_not_echo_passwords() {
        let err = Client::new("redis://u:hunter2@[bad", Options::default())
            .err()
            .unwrap();
        assert!(matches!(err, Error::InvalidArgument(_)));
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
