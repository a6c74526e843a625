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
//!
//! In a Redis Cluster, a client listens on every master: a script counts the listeners of the
//! server it runs on, not the cluster's, so a client listens where its locks' scripts run.
//! Redis forwards each message to every node, so it arrives once per master; the copies of a
//! hand-over after the first are dropped. (Sharded pub/sub would carry each message to one
//! shard only, but needs a channel per slot, and so a subscription per slot a client waits in.)

use crate::cleanup::Cleanup;
use crate::deployment::Server;
use crate::protocol::keys::wake_channel;
use crate::token::{ClientId, Token};
use crate::transport::SharedConnection;
use crate::unwind::catching;
use redis::aio::{PubSubSink, PubSubStream};
use std::collections::{HashMap, VecDeque};
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;
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
    /// Starts the subscriber task on `runtime`; it finds the servers to listen on through
    /// `connection`, and connects on the first wait.
    pub(crate) fn start(
        connection: Arc<SharedConnection>,
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
            changes: connection.deployment().changes(),
            connection,
            channel: wake_channel(client.as_str()),
            timeouts,
            retry,
            cleanup,
            shared: shared.clone(),
            links: Vec::new(),
            lost_link: false,
            next_connect: Instant::now(),
            handed: VecDeque::new(),
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
    /// Drops what it was told so far (a quorum waiter about to look at every master anyway).
    pub(crate) fn forget_events(&self) {
        while self.slot.take().is_some() {}
    }

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
    connection: Arc<SharedConnection>,
    /// When the servers to listen on may have changed (a failover, a new master).
    changes: Option<watch::Receiver<u64>>,
    channel: Vec<u8>,
    /// The connect and command timeouts.
    timeouts: (Duration, Duration),
    retry: Duration,
    cleanup: Arc<Cleanup>,
    shared: Arc<Shared>,
    /// One per server listened on; none while not listening.
    links: Vec<Link>,
    /// Whether a link was lost: messages may have been lost with it.
    lost_link: bool,
    next_connect: Instant,
    /// The hand-overs delivered lately, while several links bring copies of each message.
    handed: VecDeque<(Instant, Token, u64)>,
}

struct Link {
    server: Server,
    // Kept: dropping the sink ends the subscription.
    _sink: PubSubSink,
    stream: PubSubStream,
}

/// How long the copies of a hand-over may trail the first, and how many are remembered.
const COPIES_WITHIN: Duration = Duration::from_secs(60);
const COPIES_REMEMBERED: usize = 4096;

impl Subscriber {
    async fn run(mut self, mut inbox: mpsc::UnboundedReceiver<Request>) {
        loop {
            let has_waiters = !self.shared.lock_waiters().is_empty();
            let listening = !self.links.is_empty();
            let reconnect_due = !listening && has_waiters;
            tokio::select! {
                request = inbox.recv() => match request {
                    Some(Request::Listen) => {
                        if !listening {
                            self.connect().await;
                        }
                    }
                    Some(Request::Stop) | None => return,
                },
                message = next_message(&mut self.links), if listening => match message {
                    Ok(payload) => self.deliver(&payload),
                    Err(lost) => self.disconnected(Some(lost)),
                },
                _ = changed(&mut self.changes), if listening => self.follow_changes().await,
                _ = sleep_until(self.next_connect), if reconnect_due => self.connect().await,
            }
        }
    }

    async fn connect(&mut self) {
        let (connect_timeout, command_timeout) = self.timeouts;
        let attempt = async {
            let mut links = Vec::new();
            for server in self.publishers().await? {
                let subscribed = async {
                    let (mut sink, stream) = server.client().get_async_pubsub().await?.split();
                    sink.subscribe(&self.channel).await?;
                    Ok::<_, redis::RedisError>((sink, stream))
                };
                match subscribed.await {
                    Ok((sink, stream)) => links.push(Link {
                        server,
                        _sink: sink,
                        stream,
                    }),
                    Err(_) => {
                        self.connection.deployment().unreachable(&server);
                        return None;
                    }
                }
            }
            Some(links)
        };
        match timeout(connect_timeout + command_timeout, attempt).await {
            Ok(Some(links)) => {
                self.links = links;
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

    /// The servers to listen on, as the deployment knows them now (asking it when it does
    /// not); the changes up to here are taken into account.
    async fn publishers(&mut self) -> Option<Vec<Server>> {
        if let Some(changes) = &mut self.changes {
            changes.borrow_and_update();
        }
        let (connect_timeout, command_timeout) = self.timeouts;
        let deadline = std::time::Instant::now() + connect_timeout + command_timeout;
        let connection = &*self.connection;
        connection
            .deployment()
            .publishers(connection, deadline)
            .await
            .ok()
    }

    /// The deployment's servers may have changed: listening on others means connecting
    /// anew.
    async fn follow_changes(&mut self) {
        let listened: Vec<String> = self
            .links
            .iter()
            .map(|l| l.server.address().to_string())
            .collect();
        let same = |servers: &Vec<Server>| {
            servers.len() == listened.len()
                && servers
                    .iter()
                    .all(|s| listened.iter().any(|l| l == s.address()))
        };
        if !self
            .publishers()
            .await
            .is_some_and(|servers| same(&servers))
        {
            self.disconnected(None);
        }
    }

    /// A link is gone (`lost`: its server), or the links are no longer the right ones: with
    /// waiters, the next loop connects anew at once; only a failed attempt to connect waits a
    /// retry interval.
    fn disconnected(&mut self, lost: Option<usize>) {
        if let Some(link) = lost.and_then(|index| self.links.get(index)) {
            self.connection.deployment().unreachable(&link.server);
        }
        self.links.clear();
        self.lost_link = true;
        self.shared.listening.send_replace(false);
        self.next_connect = Instant::now();
    }

    /// Whether a hand-over was delivered already, by another link: remembers it if not.
    fn is_copy(&mut self, token: &Token, fence: u64) -> bool {
        if self.links.len() < 2 {
            return false;
        }
        let now = Instant::now();
        while self.handed.front().is_some_and(|(at, ..)| {
            now.duration_since(*at) > COPIES_WITHIN || self.handed.len() > COPIES_REMEMBERED
        }) {
            self.handed.pop_front();
        }
        let seen = self
            .handed
            .iter()
            .any(|(_, t, f)| t == token && *f == fence);
        if !seen {
            self.handed.push_back((now, token.clone(), fence));
        }
        seen
    }

    fn deliver(&mut self, payload: &[u8]) {
        let Some(message) = Message::parse(payload) else {
            return;
        };
        match message {
            Message::Handed { token, fence, .. } if self.is_copy(&token, fence) => {}
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

/// The payload of the next message published on any link; `Err(index)` when the link at
/// `index` is gone.
async fn next_message(links: &mut [Link]) -> Result<Vec<u8>, usize> {
    let message = poll_fn(|cx| {
        for (index, link) in links.iter_mut().enumerate() {
            match futures_core::Stream::poll_next(Pin::new(&mut link.stream), cx) {
                Poll::Ready(Some(message)) => return Poll::Ready(Ok(message)),
                Poll::Ready(None) => return Poll::Ready(Err(index)),
                Poll::Pending => {}
            }
        }
        Poll::Pending
    })
    .await?;
    Ok(message.get_payload::<Vec<u8>>().unwrap_or_default())
}

/// Resolves when the deployment's servers may have changed; never without changes to watch.
async fn changed(changes: &mut Option<watch::Receiver<u64>>) {
    let changed = match changes {
        Some(changes) => changes.changed().await.is_ok(),
        None => false,
    };
    if !changed {
        std::future::pending::<()>().await;
    }
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
