//! Fast wake-ups: one pub/sub connection per client, shared by all of its waiters.
//!
//! The release script publishes on the lock's channel. A single task owns the subscription:
//! it subscribes to a channel when the first local waiter of that lock arrives, unsubscribes
//! when the last one leaves, and wakes one local waiter per release (the others keep waiting,
//! since only one can win the lock). If the subscription connection is lost, waiters fall back
//! to their retry interval until it is back, and every channel is woken once on reconnect in
//! case a release was missed meanwhile.

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
        ready: oneshot::Sender<Arc<Notify>>,
    },
    Unsubscribe {
        channel: Vec<u8>,
    },
}

/// Handle to the subscription task; dropping the client's last handle ends the task.
pub(crate) struct Wakeups {
    requests: mpsc::UnboundedSender<Request>,
}

/// One waiter's interest in one lock's releases; leaving scope withdraws it.
pub(crate) struct Subscription {
    channel: Vec<u8>,
    notify: Option<Arc<Notify>>,
    requests: mpsc::UnboundedSender<Request>,
}

impl Wakeups {
    /// Starts the subscription task on the current tokio runtime. It connects lazily, on the
    /// first subscription.
    pub(crate) fn start(
        client: redis::Client,
        connect_timeout: Duration,
        command_timeout: Duration,
        retry: Duration,
    ) -> Self {
        let (requests, inbox) = mpsc::unbounded_channel();
        let task = Subscriber {
            client,
            connect_timeout,
            command_timeout,
            retry,
            channels: HashMap::new(),
            link: None,
            next_connect: Instant::now(),
        };
        tokio::spawn(task.run(inbox));
        Wakeups { requests }
    }

    /// Registers interest in `channel` and waits until Redis has confirmed the subscription
    /// (or it failed, in which case the waiter still works by re-checking at its interval).
    pub(crate) async fn subscribe(&self, channel: Vec<u8>) -> Subscription {
        let (ready, confirmed) = oneshot::channel();
        let sent = self.requests.send(Request::Subscribe {
            channel: channel.clone(),
            ready,
        });
        let notify = match sent {
            Ok(()) => confirmed.await.ok(),
            Err(_) => None,
        };
        Subscription {
            channel,
            notify,
            requests: self.requests.clone(),
        }
    }
}

impl Subscription {
    /// Resolves when a release of the lock is announced (or never, without a subscription).
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
            let _ = self.requests.send(Request::Unsubscribe { channel });
        }
    }
}

struct Channel {
    waiters: usize,
    notify: Arc<Notify>,
}

struct Subscriber {
    client: redis::Client,
    connect_timeout: Duration,
    command_timeout: Duration,
    retry: Duration,
    channels: HashMap<Vec<u8>, Channel>,
    link: Option<(PubSubSink, PubSubStream)>,
    next_connect: Instant,
}

impl Subscriber {
    async fn run(mut self, mut inbox: mpsc::UnboundedReceiver<Request>) {
        loop {
            let reconnect_due = self.link.is_none() && !self.channels.is_empty();
            tokio::select! {
                request = inbox.recv() => match request {
                    Some(request) => self.handle(request).await,
                    None => return,
                },
                message = next_message(&mut self.link), if self.link.is_some() => match message {
                    Some(channel) => self.wake_one(&channel),
                    None => self.disconnected(),
                },
                _ = sleep_until(self.next_connect), if reconnect_due => self.connect().await,
            }
        }
    }

    async fn handle(&mut self, request: Request) {
        match request {
            Request::Subscribe { channel, ready } => {
                let entry = self
                    .channels
                    .entry(channel.clone())
                    .or_insert_with(|| Channel {
                        waiters: 0,
                        notify: Arc::new(Notify::new()),
                    });
                entry.waiters += 1;
                let notify = entry.notify.clone();
                if entry.waiters == 1 {
                    self.send_subscription(true, &channel).await;
                }
                let _ = ready.send(notify);
            }
            Request::Unsubscribe { channel } => {
                let Some(entry) = self.channels.get_mut(&channel) else {
                    return;
                };
                entry.waiters -= 1;
                if entry.waiters == 0 {
                    self.channels.remove(&channel);
                    self.send_subscription(false, &channel).await;
                }
            }
        }
    }

    /// Sends SUBSCRIBE or UNSUBSCRIBE on the live link, connecting first when due.
    async fn send_subscription(&mut self, subscribe: bool, channel: &[u8]) {
        if self.link.is_none() {
            if subscribe && Instant::now() >= self.next_connect {
                self.connect().await; // subscribes to every registered channel, this one included
            }
            return;
        }
        let Some((sink, _)) = self.link.as_mut() else {
            return;
        };
        let sent = if subscribe {
            timeout(self.command_timeout, sink.subscribe(channel)).await
        } else {
            timeout(self.command_timeout, sink.unsubscribe(channel)).await
        };
        if !matches!(sent, Ok(Ok(()))) {
            self.disconnected();
        }
    }

    async fn connect(&mut self) {
        let channels: Vec<&Vec<u8>> = self.channels.keys().collect();
        let attempt = async {
            let (mut sink, stream) = self.client.get_async_pubsub().await?.split();
            if !channels.is_empty() {
                sink.subscribe(channels).await?;
            }
            Ok::<_, redis::RedisError>((sink, stream))
        };
        match timeout(self.connect_timeout + self.command_timeout, attempt).await {
            Ok(Ok(link)) => {
                self.link = Some(link);
                // A release may have been announced while we were away: let one waiter re-check.
                for channel in self.channels.values() {
                    channel.notify.notify_one();
                }
            }
            _ => self.next_connect = Instant::now() + self.retry,
        }
    }

    fn disconnected(&mut self) {
        self.link = None;
        self.next_connect = Instant::now() + self.retry;
    }

    fn wake_one(&self, channel: &[u8]) {
        if let Some(entry) = self.channels.get(channel) {
            entry.notify.notify_one();
        }
    }
}

/// The channel of the next published message; `None` when the connection is gone.
async fn next_message(link: &mut Option<(PubSubSink, PubSubStream)>) -> Option<Vec<u8>> {
    let (_, stream) = link.as_mut()?;
    let message = poll_fn(|cx| futures_core::Stream::poll_next(Pin::new(&mut *stream), cx)).await?;
    Some(message.get_channel::<Vec<u8>>().unwrap_or_default())
}
