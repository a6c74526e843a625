//! Wake-ups: a client listens on one channel of its own, `redilock:wake:<client id>`, over one
//! pub/sub connection, from its first wait until it is closed. A release hands the lock to the
//! first waiter in line and tells it so on its client's channel (`lock <token> <fence> <key>`),
//! and tells the next in line that it is first now (`first <token> <holder TTL ms> <key>`): see
//! turns.lua. Redis counts the listeners of a channel, which is how a release knows that a
//! waiter's client is alive; so a waiter needs no re-checks to keep its place.
//!
//! Waiters register here before they queue, so no message can come before they listen. If the
//! connection is lost, every waiter re-checks once it is back (a message may have been lost
//! with it). A lock handed to a token no local waiter expects any more (its call just ended) is
//! given back.

use crate::cleanup::Cleanup;
use crate::deployment::Deployment;
use crate::protocol::keys::wake_channel;
use crate::token::{ClientId, Token};
use crate::unwind::catching;
use redis::aio::{PubSubSink, PubSubStream};
use std::collections::HashMap;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{mpsc, watch, Notify};
use tokio::time::{sleep_until, timeout, Instant};

/// What a waiter learns while it waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    /// The lock was handed to it, under this fencing number, at about this time.
    Handed { fence: u64, at: Instant },
    /// It is first in line now; the holder's TTL then (`None`: no expiry).
    First { holder_ttl: Option<Duration> },
    /// Messages may have been lost: look again.
    Recheck,
}

/// Handle to the subscriber task; dropping the client's last handle ends the task.
pub(crate) struct Wakeups {
    shared: Arc<Shared>,
    requests: mpsc::UnboundedSender<Request>,
}

enum Request {
    /// Listen, if not listening already.
    Listen,
    /// The client is closing.
    Stop,
}

/// What the waiters and the task share.
struct Shared {
    waiters: Mutex<HashMap<Token, Arc<Slot>>>,
    /// Whether the channel is subscribed right now.
    listening: watch::Sender<bool>,
}

/// One waiter's mailbox: the latest of each kind of event.
#[derive(Default)]
struct Slot {
    events: Mutex<Pending>,
    notify: Notify,
}

#[derive(Default)]
struct Pending {
    handed: Option<(u64, Instant)>,
    first: Option<Option<Duration>>,
    recheck: bool,
}

/// A registered waiter; dropping it unregisters it.
pub(crate) struct Waiter {
    token: Token,
    slot: Arc<Slot>,
    shared: Arc<Shared>,
}

impl Wakeups {
    /// Starts the subscriber task on `runtime`. It connects on the first wait.
    pub(crate) fn start(
        deployment: Deployment,
        client: &ClientId,
        timeouts: (Duration, Duration),
        retry: Duration,
        cleanup: Arc<Cleanup>,
        runtime: &tokio::runtime::Handle,
    ) -> Self {
        let (requests, inbox) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            waiters: Mutex::new(HashMap::new()),
            listening: watch::Sender::new(false),
        });
        let task = Subscriber {
            deployment,
            channel: wake_channel(client.as_str()),
            timeouts,
            retry,
            cleanup,
            shared: shared.clone(),
            link: None,
            lost_link: false,
            next_connect: Instant::now(),
        };
        // A bug that ends the task leaves waiters to their re-checks; it must not end them.
        runtime.spawn(async move {
            let _ = catching(task.run(inbox)).await;
        });
        Wakeups { shared, requests }
    }

    /// Registers the waiter with `token`; `true` when the channel is already listened to, so
    /// the waiter may queue at once (otherwise, [`Wakeups::listen`] first).
    pub(crate) fn register(&self, token: &Token) -> (Waiter, bool) {
        let slot = Arc::new(Slot::default());
        self.shared
            .lock_waiters()
            .insert(token.clone(), slot.clone());
        let waiter = Waiter {
            token: token.clone(),
            slot,
            shared: self.shared.clone(),
        };
        (waiter, *self.shared.listening.borrow())
    }

    /// Waits until the channel is listened to; `false` if Redis could not be reached (the
    /// waiter then relies on its re-checks).
    pub(crate) async fn listen(&self) -> bool {
        let mut listening = self.shared.listening.subscribe();
        if *listening.borrow_and_update() {
            return true;
        }
        if self.requests.send(Request::Listen).is_err() {
            return false;
        }
        // The task answers by setting the flag, or by leaving it false after a failed try.
        matches!(listening.changed().await, Ok(())) && *listening.borrow()
    }

    /// Ends the subscriber task and closes its connection.
    pub(crate) fn stop(&self) {
        let _ = self.requests.send(Request::Stop);
    }
}

impl Waiter {
    /// The next event: a hand-over first, then news of being first, then a recheck.
    pub(crate) async fn next(&self) -> Event {
        loop {
            let notified = self.slot.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable(); // before looking, so a post in between is not missed
            if let Some(event) = self.slot.take() {
                return event;
            }
            notified.await;
        }
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        self.shared.lock_waiters().remove(&self.token);
    }
}

impl Slot {
    fn post(&self, event: Event) {
        {
            let mut pending = self.lock();
            match event {
                Event::Handed { fence, at } => pending.handed = Some((fence, at)),
                Event::First { holder_ttl } => pending.first = Some(holder_ttl),
                Event::Recheck => pending.recheck = true,
            }
        }
        self.notify.notify_one();
    }

    fn take(&self) -> Option<Event> {
        let mut pending = self.lock();
        if let Some((fence, at)) = pending.handed.take() {
            return Some(Event::Handed { fence, at });
        }
        if let Some(holder_ttl) = pending.first.take() {
            return Some(Event::First { holder_ttl });
        }
        std::mem::take(&mut pending.recheck).then_some(Event::Recheck)
    }

    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.events.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Shared {
    fn lock_waiters(&self) -> MutexGuard<'_, HashMap<Token, Arc<Slot>>> {
        self.waiters.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn waiter(&self, token: &Token) -> Option<Arc<Slot>> {
        self.lock_waiters().get(token).cloned()
    }

    fn recheck_all(&self) {
        for slot in self.lock_waiters().values() {
            slot.post(Event::Recheck);
        }
    }
}

struct Subscriber {
    deployment: Deployment,
    channel: Vec<u8>,
    /// The connect and command timeouts.
    timeouts: (Duration, Duration),
    retry: Duration,
    cleanup: Arc<Cleanup>,
    shared: Arc<Shared>,
    link: Option<(PubSubSink, PubSubStream)>,
    /// Whether a link was lost: messages may have been lost with it.
    lost_link: bool,
    next_connect: Instant,
}

impl Subscriber {
    async fn run(mut self, mut inbox: mpsc::UnboundedReceiver<Request>) {
        loop {
            let has_waiters = !self.shared.lock_waiters().is_empty();
            let reconnect_due = self.link.is_none() && has_waiters;
            tokio::select! {
                request = inbox.recv() => match request {
                    Some(Request::Listen) => {
                        if self.link.is_none() {
                            self.connect().await;
                        }
                    }
                    Some(Request::Stop) | None => return,
                },
                message = next_message(&mut self.link), if self.link.is_some() => match message {
                    Some(payload) => self.deliver(&payload),
                    None => self.disconnected(),
                },
                _ = sleep_until(self.next_connect), if reconnect_due => self.connect().await,
            }
        }
    }

    async fn connect(&mut self) {
        let (connect_timeout, command_timeout) = self.timeouts;
        let attempt = async {
            let server = self.deployment.server();
            let (mut sink, stream) = server.get_async_pubsub().await?.split();
            sink.subscribe(&self.channel).await?;
            Ok::<_, redis::RedisError>((sink, stream))
        };
        match timeout(connect_timeout + command_timeout, attempt).await {
            Ok(Ok(link)) => {
                self.link = Some(link);
                self.shared.listening.send_replace(true);
                // A hand-over may have been announced while we were away: everyone looks again.
                if std::mem::take(&mut self.lost_link) {
                    self.shared.recheck_all();
                }
            }
            _ => {
                self.next_connect = Instant::now() + self.retry;
                // Tell whoever waits for listening that it did not work this time.
                self.shared.listening.send_replace(false);
            }
        }
    }

    /// The link is gone: with waiters, the next loop makes a new one at once; only a failed
    /// attempt to connect waits a retry interval.
    fn disconnected(&mut self) {
        self.link = None;
        self.lost_link = true;
        self.shared.listening.send_replace(false);
        self.next_connect = Instant::now();
    }

    fn deliver(&self, payload: &[u8]) {
        let Some(message) = Message::parse(payload) else {
            return;
        };
        match message {
            Message::Handed { token, fence, key } => match self.shared.waiter(&token) {
                Some(slot) => slot.post(Event::Handed {
                    fence,
                    at: Instant::now(),
                }),
                // Nobody waits for it any more (the call just ended): give it back.
                None => self.cleanup.give_back(key, &token, Duration::ZERO),
            },
            Message::First {
                token, holder_ttl, ..
            } => {
                if let Some(slot) = self.shared.waiter(&token) {
                    slot.post(Event::First { holder_ttl });
                }
            }
            Message::Free { token } => {
                if let Some(slot) = self.shared.waiter(&token) {
                    slot.post(Event::Recheck);
                }
            }
        }
    }
}

/// A message on a client's channel (see turns.lua).
#[derive(Debug, PartialEq)]
enum Message<'a> {
    Handed {
        token: Token,
        fence: u64,
        key: &'a [u8],
    },
    First {
        token: Token,
        holder_ttl: Option<Duration>,
        key: &'a [u8],
    },
    /// The lock is free: a waiter that barges may try for it.
    Free { token: Token },
}

impl<'a> Message<'a> {
    /// `lock <token> <fence> <key>`, `first <token> <holder TTL ms> <key>` or `free <token> 0
    /// <key>`; the key, last, may contain anything.
    fn parse(payload: &'a [u8]) -> Option<Message<'a>> {
        let mut parts = payload.splitn(4, |&b| b == b' ');
        let (kind, token, number, key) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let token = Token::from_string(std::str::from_utf8(token).ok()?);
        let number: i64 = std::str::from_utf8(number).ok()?.parse().ok()?;
        match kind {
            b"lock" => Some(Message::Handed {
                token,
                fence: u64::try_from(number).ok()?,
                key,
            }),
            b"first" => Some(Message::First {
                token,
                holder_ttl: u64::try_from(number).ok().map(Duration::from_millis),
                key,
            }),
            b"free" => Some(Message::Free { token }),
            _ => None,
        }
    }
}

/// The payload of the next published message; `None` when the connection is gone.
async fn next_message(link: &mut Option<(PubSubSink, PubSubStream)>) -> Option<Vec<u8>> {
    let (_, stream) = link.as_mut()?;
    let message = poll_fn(|cx| futures_core::Stream::poll_next(Pin::new(&mut *stream), cx)).await?;
    Some(message.get_payload::<Vec<u8>>().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_parse_with_any_key() {
        let token = "a".repeat(32);
        let handed = format!("lock {token} 1796581498029073 orders: 42 {{x}}");
        assert_eq!(
            Message::parse(handed.as_bytes()),
            Some(Message::Handed {
                token: Token::from_string(token.clone()),
                fence: 1796581498029073,
                key: b"orders: 42 {x}",
            })
        );
        let first = format!("first {token} -1 k");
        assert_eq!(
            Message::parse(first.as_bytes()),
            Some(Message::First {
                token: Token::from_string(token),
                holder_ttl: None,
                key: b"k",
            })
        );
        assert_eq!(Message::parse(b"lock short"), None);
    }
}
