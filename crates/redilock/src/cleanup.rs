//! Giving back what a lock call that ended without its lease may still hold in Redis: a lock
//! its attempt took though the reply never came (Redis paused, a connection cut), or its place
//! in the queue. One task per client sends the cleanup script (see cleanup.lua) for each such
//! token, retrying with backoff until Redis answers, so a failed call leaves no lock behind
//! once Redis is back. The script also withdraws the token, so an attempt that reaches Redis
//! after its cleanup takes nothing.

use crate::protocol::calls;
use crate::token::Token;
use crate::transport::SharedConnection;
use crate::unwind::catching;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::{sleep, timeout_at, Instant};

/// Cleanups kept while Redis cannot be reached; beyond that the oldest are dropped (their
/// locks, if any, then end at their TTL).
pub(crate) const MAX_PENDING: usize = 10_000;
const FIRST_RETRY: Duration = Duration::from_millis(50);
const LAST_RETRY: Duration = Duration::from_secs(2);

/// Handle to a client's cleanup task.
pub(crate) struct Cleanup {
    inbox: mpsc::UnboundedSender<Leftover>,
    /// Cleanups not yet confirmed by Redis, counted from the moment they are handed over.
    pending: Arc<watch::Sender<usize>>,
}

struct Leftover {
    key: Vec<u8>,
    token: Token,
    /// The TTL the call asked for, which names its place in the queue.
    ttl: Duration,
}

impl Cleanup {
    /// Starts the task on `runtime`; it sends over `connection`, each call bounded by
    /// `command_timeout`.
    pub(crate) fn start(
        connection: Arc<SharedConnection>,
        command_timeout: Duration,
        runtime: &tokio::runtime::Handle,
    ) -> Cleanup {
        let (inbox, leftovers) = mpsc::unbounded_channel();
        let pending = Arc::new(watch::Sender::new(0));
        let task = run(connection, command_timeout, leftovers, pending.clone());
        runtime.spawn(async move {
            let _ = catching(task).await;
        });
        Cleanup { inbox, pending }
    }

    /// Hands over what `token` (which asked for `ttl`) may hold on `key`; returns at once.
    pub(crate) fn give_back(&self, key: &[u8], token: &Token, ttl: Duration) {
        self.pending.send_modify(|n| *n += 1);
        let leftover = Leftover {
            key: key.to_vec(),
            token: token.clone(),
            ttl,
        };
        if self.inbox.send(leftover).is_err() {
            self.pending.send_modify(|n| *n -= 1); // the task is gone: the TTL will do
        }
    }

    /// Waits until Redis has confirmed every cleanup handed over so far, or `deadline`;
    /// returns how many are still pending.
    pub(crate) async fn flush(&self, deadline: Instant) -> usize {
        let mut pending = self.pending.subscribe();
        let _ = timeout_at(deadline, pending.wait_for(|n| *n == 0)).await;
        let left = *pending.borrow();
        left
    }
}

async fn run(
    connection: Arc<SharedConnection>,
    command_timeout: Duration,
    mut inbox: mpsc::UnboundedReceiver<Leftover>,
    pending: Arc<watch::Sender<usize>>,
) {
    let mut queue = VecDeque::new();
    let mut backoff = FIRST_RETRY;
    loop {
        if queue.is_empty() {
            match inbox.recv().await {
                Some(leftover) => queue.push_back(leftover),
                None => return, // the client is gone
            }
        }
        while let Ok(leftover) = inbox.try_recv() {
            queue.push_back(leftover);
        }
        while queue.len() > MAX_PENDING {
            queue.pop_front();
            pending.send_modify(|n| *n -= 1);
        }
        // In order, until one fails: while Redis cannot be reached the others would too.
        while let Some(leftover) = queue.front() {
            let call = calls::cleanup(&leftover.key, &leftover.token, leftover.ttl);
            let deadline = std::time::Instant::now() + command_timeout;
            if connection.send::<i64>(&call, deadline).await.is_err() {
                break;
            }
            queue.pop_front();
            pending.send_modify(|n| *n -= 1);
            backoff = FIRST_RETRY;
        }
        if !queue.is_empty() {
            sleep(backoff).await;
            backoff = (backoff * 2).min(LAST_RETRY);
        }
    }
}
