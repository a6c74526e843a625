//! Fast wake-ups: one pub/sub connection per client, shared by all of its waiters.
//!
//! The release script publishes on the lock's channel the token of the waiter whose turn it is
//! (the first in the lock's queue). A single task owns the subscription: it subscribes to a
//! channel when the first local waiter of that lock arrives, unsubscribes when the last one
//! leaves, and wakes only the waiter named, when it is local. The task runs between calls (on
//! the client's background runtime), so a subscription lost while the client is idle is
//! noticed then, and a new waiter never relies on a dead one: it is made again before the
//! waiter is told it is subscribed. While Redis cannot be reached, waiters fall back to their
//! retry interval, and every waiter is woken once on reconnect in case a release was missed
//! meanwhile.

use crate::deployment::Deployment;
use crate::token::Token;
use crate::unwind::catching;
use redis::aio::{PubSubSink, PubSubStream};
use std::collections::HashMap;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::time::{sleep_until, timeout, Instant};

enum Request {
    Subscribe {
        channel: Vec<u8>,
        token: Token,
        ready: oneshot::Sender<Arc<Notify>>,
    },
    Unsubscribe {
        channel: Vec<u8>,
        token: Token,
    },
    /// The client is closing.
    Stop,
}

/// Handle to the subscription task; dropping the client's last handle ends the task.
pub(crate) struct Wakeups {
    requests: mpsc::UnboundedSender<Request>,
}

/// One waiter's interest in one lock's releases; leaving scope withdraws it.
pub(crate) struct Subscription {
    channel: Vec<u8>,
    token: Token,
    notify: Option<Arc<Notify>>,
    requests: mpsc::UnboundedSender<Request>,
}

impl Wakeups {
    /// Starts the subscription task on `runtime`. It connects lazily, on the first
    /// subscription.
    pub(crate) fn start(
        deployment: Deployment,
        connect_timeout: Duration,
        command_timeout: Duration,
        retry: Duration,
        runtime: &tokio::runtime::Handle,
    ) -> Self {
        let (requests, inbox) = mpsc::unbounded_channel();
        let task = Subscriber {
            deployment,
            connect_timeout,
            command_timeout,
            retry,
            channels: HashMap::new(),
            link: None,
            next_connect: Instant::now(),
        };
        // A bug that ends the task leaves waiters to their re-checks; it must not end them.
        runtime.spawn(async move {
            let _ = catching(task.run(inbox)).await;
        });
        Wakeups { requests }
    }

    /// Ends the subscription task and closes its connection.
    pub(crate) fn stop(&self) {
        let _ = self.requests.send(Request::Stop);
    }

    /// Registers the waiter with `token` on `channel` and waits until Redis has confirmed the
    /// subscription (or it failed, in which case the waiter still works by re-checking at its
    /// interval).
    pub(crate) async fn subscribe(&self, channel: Vec<u8>, token: &Token) -> Subscription {
        let (ready, confirmed) = oneshot::channel();
        let sent = self.requests.send(Request::Subscribe {
            channel: channel.clone(),
            token: token.clone(),
            ready,
        });
        let notify = match sent {
            Ok(()) => confirmed.await.ok(),
            Err(_) => None,
        };
        Subscription {
            channel,
            token: token.clone(),
            notify,
            requests: self.requests.clone(),
        }
    }
}

impl Subscription {
    /// Resolves when the lock is released for this waiter (or never, without a subscription).
    pub(crate) async fn released(&self) {
        match &self.notify {
            Some(notify) => notify.notified().await,
            None => std::future::pending().await,
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if self.notify.is_some() {
            let channel = std::mem::take(&mut self.channel);
            let token = self.token.clone();
            let _ = self.requests.send(Request::Unsubscribe { channel, token });
        }
    }
}

/// A channel's local waiters, in arrival order.
type Waiters = Vec<(Token, Arc<Notify>)>;

struct Subscriber {
    deployment: Deployment,
    connect_timeout: Duration,
    command_timeout: Duration,
    retry: Duration,
    channels: HashMap<Vec<u8>, Waiters>,
    link: Option<(PubSubSink, PubSubStream)>,
    next_connect: Instant,
}

impl Subscriber {
    async fn run(mut self, mut inbox: mpsc::UnboundedReceiver<Request>) {
        loop {
            let reconnect_due = self.link.is_none() && !self.channels.is_empty();
            tokio::select! {
                request = inbox.recv() => match request {
                    Some(Request::Stop) | None => return,
                    Some(request) => self.handle(request).await,
                },
                message = next_message(&mut self.link), if self.link.is_some() => match message {
                    Some((channel, turn)) => self.wake(&channel, &turn),
                    None => self.disconnected(),
                },
                _ = sleep_until(self.next_connect), if reconnect_due => self.connect().await,
            }
        }
    }

    async fn handle(&mut self, request: Request) {
        match request {
            Request::Subscribe {
                channel,
                token,
                ready,
            } => {
                let waiters = self.channels.entry(channel.clone()).or_default();
                let notify = Arc::new(Notify::new());
                waiters.push((token, notify.clone()));
                if waiters.len() == 1 {
                    self.send_subscription(true, &channel).await;
                }
                let _ = ready.send(notify);
            }
            Request::Unsubscribe { channel, token } => {
                let Some(waiters) = self.channels.get_mut(&channel) else {
                    return;
                };
                waiters.retain(|(waiter, _)| *waiter != token);
                if waiters.is_empty() {
                    self.channels.remove(&channel);
                    self.send_subscription(false, &channel).await;
                }
            }
            Request::Stop => {}
        }
    }

    /// Sends SUBSCRIBE or UNSUBSCRIBE on the live link, connecting first when due. A link
    /// found dead by a SUBSCRIBE (Redis restarted while no waiter was subscribed) is made
    /// again at once, so that the new waiter is woken by the next release.
    async fn send_subscription(&mut self, subscribe: bool, channel: &[u8]) {
        let Some((sink, _)) = self.link.as_mut() else {
            if subscribe && Instant::now() >= self.next_connect {
                self.connect().await; // subscribes to every registered channel, this one included
            }
            return;
        };
        let sent = if subscribe {
            timeout(self.command_timeout, sink.subscribe(channel)).await
        } else {
            timeout(self.command_timeout, sink.unsubscribe(channel)).await
        };
        if !matches!(sent, Ok(Ok(()))) {
            self.disconnected();
            if subscribe {
                self.connect().await;
            }
        }
    }

    async fn connect(&mut self) {
        let channels: Vec<&Vec<u8>> = self.channels.keys().collect();
        let attempt = async {
            let (mut sink, stream) = self.deployment.server().get_async_pubsub().await?.split();
            if !channels.is_empty() {
                sink.subscribe(channels).await?;
            }
            Ok::<_, redis::RedisError>((sink, stream))
        };
        match timeout(self.connect_timeout + self.command_timeout, attempt).await {
            Ok(Ok(link)) => {
                self.link = Some(link);
                // A release may have been announced while we were away: every waiter re-checks.
                for (_, notify) in self.channels.values().flatten() {
                    notify.notify_one();
                }
            }
            _ => self.next_connect = Instant::now() + self.retry,
        }
    }

    /// The link is gone: the next subscription (or, with waiters, the next loop) makes a new
    /// one at once; only a failed attempt to connect waits a retry interval.
    fn disconnected(&mut self) {
        self.link = None;
        self.next_connect = Instant::now();
    }

    /// Wakes the local waiter whose `turn` it is, if any.
    fn wake(&self, channel: &[u8], turn: &[u8]) {
        let waiter = self.channels.get(channel).and_then(|waiters| {
            waiters
                .iter()
                .find(|(token, _)| token.as_str().as_bytes() == turn)
        });
        if let Some((_, notify)) = waiter {
            notify.notify_one();
        }
    }
}

/// The channel and payload of the next published message; `None` when the connection is gone.
async fn next_message(link: &mut Option<(PubSubSink, PubSubStream)>) -> Option<(Vec<u8>, Vec<u8>)> {
    let (_, stream) = link.as_mut()?;
    let message = poll_fn(|cx| futures_core::Stream::poll_next(Pin::new(&mut *stream), cx)).await?;
    Some((
        message.get_channel::<Vec<u8>>().unwrap_or_default(),
        message.get_payload::<Vec<u8>>().unwrap_or_default(),
    ))
}
