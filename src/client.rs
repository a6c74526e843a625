//! The asynchronous (tokio) client: all lock logic lives here; the blocking client and the
//! C ABI are thin layers over it.

use crate::cancel::CancelSignal;
use crate::connection::SharedConnection;
use crate::error::{Error, Result};
use crate::options::{Options, Wait};
use crate::scripts::{wake_channel, ACQUIRE, RELEASE};
use crate::token::Token;
use crate::wakeups::Wakeups;
use once_cell::sync::OnceCell;
use std::sync::Arc;
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
}

enum Attempt {
    Acquired,
    /// Held by another owner; remaining TTL when it has one.
    Held(Option<Duration>),
}

impl Client {
    /// Creates a client for `redis_url` (`redis://[user[:password]@]host[:port][/db]`,
    /// `rediss://` is not enabled, `unix:///path/to/socket[?db=N]`).
    pub fn new(redis_url: &str, options: Options) -> Result<Client> {
        options.validate()?;
        let client = redis::Client::open(redis_url).map_err(|_| {
            Error::InvalidArgument(format!(
                "invalid Redis URL '{}' (expected redis://[user:password@]host[:port][/db] or unix:///path)",
                redact_url(redis_url)
            ))
        })?;
        let connection =
            SharedConnection::new(client, options.connect_timeout, options.command_timeout);
        Ok(Client {
            inner: Arc::new(Inner {
                options,
                connection,
                wakeups: OnceCell::new(),
            }),
        })
    }

    /// The options this client was created with.
    pub fn options(&self) -> &Options {
        &self.inner.options
    }

    /// Acquires `name` for `ttl` (or the client's default TTL), waiting as `wait` says.
    /// Returns the owner token needed to unlock.
    ///
    /// Dropping the returned future while an attempt is in flight releases whatever that
    /// attempt took, so wrapping it in `tokio::time::timeout` never leaks a lock.
    pub async fn lock(
        &self,
        name: impl AsRef<[u8]>,
        ttl: Option<Duration>,
        wait: Wait,
    ) -> Result<Token> {
        self.acquire(name.as_ref(), ttl, wait, None).await
    }

    /// Like [`Client::lock`], and `cancel` ends the wait with [`Error::Cancelled`].
    pub async fn lock_cancellable(
        &self,
        name: impl AsRef<[u8]>,
        ttl: Option<Duration>,
        wait: Wait,
        cancel: &CancelSignal,
    ) -> Result<Token> {
        self.acquire(name.as_ref(), ttl, wait, Some(cancel)).await
    }

    /// Releases `name` if `token` holds it; [`Error::NotOwner`] (and nothing deleted) otherwise.
    pub async fn unlock(&self, name: impl AsRef<[u8]>, token: &Token) -> Result<()> {
        let name = name.as_ref();
        let key = self.key(name)?;
        if self.release(&key, token).await? {
            Ok(())
        } else {
            Err(Error::NotOwner(format!(
                "lock '{}' is not held by this token (it expired, was released, or belongs to another owner)",
                display_name(name)
            )))
        }
    }

    /// Checks that Redis answers.
    pub async fn ping(&self) -> Result<()> {
        self.inner
            .connection
            .query::<String>(&redis::cmd("PING"))
            .await
            .map(drop)
    }

    async fn acquire(
        &self,
        name: &[u8],
        ttl: Option<Duration>,
        wait: Wait,
        cancel: Option<&CancelSignal>,
    ) -> Result<Token> {
        let key = self.key(name)?;
        let ttl = self.inner.options.effective_ttl(ttl)?;
        let deadline = match wait {
            Wait::AtMost(limit) => Some(Instant::now() + limit),
            Wait::TryOnce | Wait::Forever => None,
        };
        let token = Token::generate();
        let not_acquired = || {
            Error::NotAcquired(format!(
                "lock '{}' is held by another owner",
                display_name(name)
            ))
        };

        let mut held_for = match self.attempt(&key, &token, ttl).await? {
            Attempt::Acquired => return Ok(token),
            Attempt::Held(_) if wait == Wait::TryOnce => return Err(not_acquired()),
            Attempt::Held(remaining) => remaining,
        };
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
            subscription = wakeups.subscribe(wake_channel(&key)) => subscription,
            _ = wait_for(cancel) => return Err(cancelled(name)),
            _ = sleep_until_opt(deadline) => return Err(not_acquired()),
        };
        loop {
            match self.attempt(&key, &token, ttl).await? {
                Attempt::Acquired => return Ok(token),
                Attempt::Held(remaining) => held_for = remaining.or(held_for),
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Err(not_acquired());
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
                _ = wait_for(cancel) => return Err(cancelled(name)),
            }
        }
    }

    /// One acquisition attempt. If the caller's future is dropped while the attempt is in
    /// flight, the guard releases whatever it may have taken.
    async fn attempt(&self, key: &[u8], token: &Token, ttl: Duration) -> Result<Attempt> {
        let guard = InFlight {
            client: self,
            key,
            token,
        };
        let reply: (i64, i64) = self
            .inner
            .connection
            .invoke(
                ACQUIRE
                    .key(key)
                    .arg(token.as_str())
                    .arg(ttl.as_millis() as u64),
            )
            .await?;
        std::mem::forget(guard);
        Ok(match reply {
            (1, _) => Attempt::Acquired,
            (_, remaining_ms) if remaining_ms >= 0 => {
                Attempt::Held(Some(Duration::from_millis(remaining_ms as u64)))
            }
            _ => Attempt::Held(None),
        })
    }

    /// The atomic compare-and-delete; true when `token` held the lock.
    async fn release(&self, key: &[u8], token: &Token) -> Result<bool> {
        let mut call = RELEASE.key(key);
        call.arg(token.as_str()).arg(wake_channel(key));
        let released: i64 = self.inner.connection.invoke(&call).await?;
        Ok(released == 1)
    }

    fn key(&self, name: &[u8]) -> Result<Vec<u8>> {
        if name.is_empty() {
            return Err(Error::InvalidArgument(
                "the lock name must not be empty".into(),
            ));
        }
        Ok([self.inner.options.key_prefix.as_slice(), name].concat())
    }
}

/// Releases a possibly-taken lock when an attempt ends without a reply: its future was
/// dropped mid-flight, or the reply was lost (the command may still have run).
struct InFlight<'a> {
    client: &'a Client,
    key: &'a [u8],
    token: &'a Token,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (client, key, token) = (self.client.clone(), self.key.to_vec(), self.token.clone());
        runtime.spawn(async move {
            let _ = client.release(&key, &token).await;
        });
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
