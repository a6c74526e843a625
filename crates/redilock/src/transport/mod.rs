//! The two ways a call reaches Redis, behind one trait so that every operation is written
//! once: the shared multiplexed connections (the async client, and every wait), and the
//! calling thread's own connections (the blocking client's plain calls). Both keep
//! connections per server and send each call where [`routing`] says.

mod blocking_connection;
mod multiplexed;
mod pool;
mod replies;
pub(crate) mod routing;

pub(crate) use multiplexed::SharedConnection;
pub(crate) use pool::ConnectionPool;
pub use pool::DIRECT_CONNECTIONS;

use crate::deployment::Server;
use crate::error::Result;
use crate::protocol::calls::{script_in_pipeline, Call, Request};
use redis::{FromRedisValue, RedisResult};
use routing::{routed, Failure, NodeSender};
use std::collections::HashMap;
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// Sends one call and reads its reply, by `deadline` (moved on by the time spent opening a
/// connection, which has its own timeout).
pub(crate) trait Transport {
    fn send<T: FromRedisValue>(
        &self,
        call: &Call,
        deadline: Instant,
    ) -> impl Future<Output = Result<T>>;

    /// The server `call` goes to now (unless a redirection sends it on).
    fn route(&self, call: &Call, deadline: Instant) -> impl Future<Output = Result<Server>>;
}

impl Transport for SharedConnection {
    fn send<T: FromRedisValue>(
        &self,
        call: &Call,
        deadline: Instant,
    ) -> impl Future<Output = Result<T>> {
        SharedConnection::send(self, call, deadline)
    }

    fn route(&self, call: &Call, deadline: Instant) -> impl Future<Output = Result<Server>> {
        self.deployment().server_for(call.slot, self, deadline)
    }
}

/// The blocking client's transport: a direct connection when one is free, else the
/// multiplexed one, driven on the client's private runtime. It does all its work inside
/// `send`, so its futures are ready at their first poll (see [`run_now`]).
pub(crate) struct CallingThread<'a> {
    pub(crate) pool: &'a ConnectionPool,
    /// Where the calls go that find every calling-thread connection busy.
    pub(crate) overflow: &'a dyn Overflow,
}

/// A multiplexed connection driven by a thread of its own (the client's background thread),
/// on which any number of calling threads can send at once: their calls are pipelined.
pub(crate) trait Overflow {
    fn overflow(&self) -> Result<(tokio::runtime::Handle, std::sync::Arc<SharedConnection>)>;
}

impl Transport for CallingThread<'_> {
    fn send<T: FromRedisValue>(
        &self,
        call: &Call,
        deadline: Instant,
    ) -> impl Future<Output = Result<T>> {
        routed(self.pool.deployment(), self, call, deadline)
    }

    fn route(&self, call: &Call, deadline: Instant) -> impl Future<Output = Result<Server>> {
        self.pool.deployment().server_for(call.slot, self, deadline)
    }
}

/// Every future it returns is ready at its first poll.
impl NodeSender for CallingThread<'_> {
    fn send_to<T: FromRedisValue>(
        &self,
        server: &Server,
        call: &Call,
        deadline: Instant,
    ) -> impl Future<Output = std::result::Result<T, Failure>> {
        let result = self
            .pool
            .send_to(server, call, deadline)
            .unwrap_or_else(|| {
                let (runtime, shared) = self.overflow.overflow()?;
                runtime.block_on(shared.send_to(server, call, deadline))
            });
        std::future::ready(result)
    }

    fn pause(&self, pause: Duration) -> impl Future<Output = ()> {
        std::thread::sleep(pause);
        std::future::ready(())
    }
}

/// Something per server (a connection, a pool of them), made on first use.
pub(crate) struct Nodes<C> {
    by_address: Mutex<HashMap<String, Arc<C>>>,
}

impl<C> Default for Nodes<C> {
    fn default() -> Self {
        Nodes {
            by_address: Mutex::new(HashMap::new()),
        }
    }
}

impl<C> Nodes<C> {
    /// The one for `server`, made by `make` if there is none yet.
    pub(crate) fn get(&self, server: &Server, make: impl FnOnce() -> C) -> Arc<C> {
        let mut nodes = self.lock();
        match nodes.get(server.address()) {
            Some(node) => node.clone(),
            None => {
                let node = Arc::new(make());
                nodes.insert(server.address().to_string(), node.clone());
                node
            }
        }
    }

    pub(crate) fn each(&self, f: impl Fn(&C)) {
        for node in self.lock().values() {
            f(node);
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<C>>> {
        self.by_address.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Runs an operation over [`CallingThread`] on the calling thread: every await in it is a
/// ready future, so one poll finishes it. Should it ever wait on something else, the
/// private runtime takes it to its end.
pub(crate) fn run_now<F: Future>(runtime: &tokio::runtime::Runtime, operation: F) -> F::Output {
    let mut operation = pin!(operation);
    match operation
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => runtime.block_on(operation),
    }
}

/// Sends `request` over a blocking connection and reads its reply.
fn query<T: FromRedisValue>(
    request: &Request,
    conn: &mut dyn redis::ConnectionLike,
) -> RedisResult<T> {
    match request {
        Request::Script(script) => script.invoke(conn),
        Request::Pipelined {
            script,
            pipeline,
            script_at,
            replies,
        } => {
            let read = *replies;
            let replies = match (
                script_in_pipeline(pipeline.query(conn)?, *script_at, read),
                script,
            ) {
                (Err(err), Some(script)) if is_noscript(&err) => {
                    script.load(conn)?;
                    script_in_pipeline(pipeline.query(conn)?, *script_at, read)
                }
                (replies, _) => replies,
            }?;
            Ok(redis::from_redis_value(replies)?)
        }
        Request::Command(cmd) => cmd.query(conn),
    }
}

/// [`query`] over an async connection.
async fn query_async<T: FromRedisValue>(
    request: &Request,
    conn: &mut impl redis::aio::ConnectionLike,
) -> RedisResult<T> {
    match request {
        Request::Script(script) => script.invoke_async(conn).await,
        Request::Pipelined {
            script,
            pipeline,
            script_at,
            replies,
        } => {
            let read = *replies;
            let sent = script_in_pipeline(pipeline.query_async(conn).await?, *script_at, read);
            let replies = match (sent, script) {
                (Err(err), Some(script)) if is_noscript(&err) => {
                    script.load_async(conn).await?;
                    script_in_pipeline(pipeline.query_async(conn).await?, *script_at, read)
                }
                (replies, _) => replies,
            }?;
            Ok(redis::from_redis_value(replies)?)
        }
        Request::Command(cmd) => cmd.query_async(conn).await,
    }
}

/// The script is not in the server's cache (first use, a restart): it did not run.
fn is_noscript(err: &redis::RedisError) -> bool {
    err.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript)
}

/// Whether a connection stays usable after `err`: only an error reply leaves it in step.
pub(crate) fn keeps_connection(err: &redis::RedisError) -> bool {
    matches!(
        err.kind(),
        redis::ErrorKind::Server(_) | redis::ErrorKind::Extension
    )
}
