//! One multiplexed connection per server, shared by every caller of a client, re-established
//! on demand after Redis goes away. No lock is held while a command is on the wire.

use super::routing::{routed, Failure, NodeSender};
use super::{keeps_connection, query_async, Nodes};
use crate::deployment::{Deployment, Server};
use crate::error::{Error, Result};
use crate::protocol::calls::Call;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, FromRedisValue};
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::{timeout_at, Instant};

/// The connections of a client to the servers of its deployment, one per server.
pub(crate) struct SharedConnection {
    deployment: Deployment,
    connect_timeout: Duration,
    nodes: Nodes<NodeConnection>,
}

impl SharedConnection {
    pub(crate) fn new(deployment: Deployment, connect_timeout: Duration) -> Self {
        SharedConnection {
            deployment,
            connect_timeout,
            nodes: Nodes::default(),
        }
    }

    pub(crate) fn deployment(&self) -> &Deployment {
        &self.deployment
    }

    /// Sends one call to the server its deployment routes it to (see [`routed`]).
    pub(crate) async fn send<T: FromRedisValue>(
        &self,
        call: &Call,
        deadline: std::time::Instant,
    ) -> Result<T> {
        routed(&self.deployment, self, call, deadline).await
    }

    /// Closes every connection; a later call would open new ones.
    pub(crate) fn close(&self) {
        self.nodes.each(NodeConnection::close);
    }
}

impl NodeSender for SharedConnection {
    async fn send_to<T: FromRedisValue>(
        &self,
        server: &Server,
        call: &Call,
        deadline: std::time::Instant,
    ) -> std::result::Result<T, Failure> {
        let node = self.nodes.get(server, || {
            NodeConnection::new(server.clone(), self.connect_timeout)
        });
        node.send(call, deadline).await
    }

    async fn pause(&self, pause: Duration) {
        tokio::time::sleep(pause).await
    }
}

/// The multiplexed connection to one server.
pub(crate) struct NodeConnection {
    server: Server,
    config: AsyncConnectionConfig,
    connect_timeout: Duration,
    /// The live connection and its generation, so a failed caller only discards the
    /// connection it used, not a newer one another caller has already made.
    current: Mutex<Option<(u64, MultiplexedConnection)>>,
    /// Serialises reconnects so that a burst of callers makes one connection, not many.
    connecting: tokio::sync::Mutex<u64>,
}

impl NodeConnection {
    fn new(server: Server, connect_timeout: Duration) -> Self {
        // Every call is bounded by its own deadline (see `send`), not by the redis crate's
        // 500 ms default: a reply may take up to a command timeout (a WAIT, a slow server).
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(connect_timeout))
            .set_response_timeout(None);
        NodeConnection {
            server,
            config,
            connect_timeout,
            current: Mutex::new(None),
            connecting: tokio::sync::Mutex::new(0),
        }
    }

    /// Sends one call and classifies its failure, all within one command timeout (plus the
    /// connect timeout when a connection has to be made). An idempotent call whose reused
    /// connection is found dead (Redis restarted while this client was idle) is sent once
    /// more on a new one; any other call is not, since it may have run.
    async fn send<T: FromRedisValue>(
        &self,
        call: &Call,
        deadline: std::time::Instant,
    ) -> std::result::Result<T, Failure> {
        let send = |mut conn: MultiplexedConnection| async move {
            query_async(&call.request, &mut conn).await
        };
        let mut deadline = Instant::from_std(deadline);
        if deadline <= Instant::now() {
            return Err(self.no_reply_in_time().into()); // an earlier step of the call used it all
        }
        let (mut generation, conn, reused) = self.get(&mut deadline).await?;
        let mut outcome = timeout_at(deadline, send(conn)).await;
        if let Ok(Err(err)) = &outcome {
            if reused && call.idempotent && err.is_connection_dropped() {
                self.discard(generation);
                let conn;
                (generation, conn, _) = self.get(&mut deadline).await?;
                outcome = timeout_at(deadline, send(conn)).await;
            }
        }
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(self.failed(generation, &err)),
            Err(_) => {
                // A connection that stops answering may be cut off for good (a lost network
                // keeps it open for minutes): the next call makes a new one.
                self.discard(generation);
                Err(self.no_reply_in_time().into())
            }
        }
    }

    /// Closes the connection; a later call would open a new one.
    fn close(&self) {
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    fn no_reply_in_time(&self) -> Error {
        Error::Connection(format!(
            "redis at {} did not answer in time",
            self.server.address()
        ))
    }

    /// The live connection (and whether it was made by an earlier call), connecting if needed;
    /// the time spent connecting moves `deadline` on.
    async fn get(&self, deadline: &mut Instant) -> Result<(u64, MultiplexedConnection, bool)> {
        if let Some((generation, conn)) = self.live() {
            return Ok((generation, conn, true));
        }
        let mut generation = self.connecting.lock().await;
        if let Some((generation, conn)) = self.live() {
            return Ok((generation, conn, true));
        }
        let started = Instant::now();
        let connect = self
            .server
            .client()
            .get_multiplexed_async_connection_with_config(&self.config);
        let conn = match tokio::time::timeout(self.connect_timeout, connect).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(err)) => return Err(self.server.connect_error(&err)),
            Err(_) => {
                return Err(Error::Connection(format!(
                    "connection to {} timed out after {} ms",
                    self.server.address(),
                    self.connect_timeout.as_millis()
                )))
            }
        };
        *deadline += started.elapsed();
        *generation += 1;
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some((*generation, conn.clone()));
        Ok((*generation, conn, false))
    }

    fn live(&self) -> Option<(u64, MultiplexedConnection)> {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Classifies a failed command; anything but an error reply means the connection is
    /// suspect, so the next caller makes a new one.
    fn failed(&self, generation: u64, err: &redis::RedisError) -> Failure {
        if !keeps_connection(err) {
            self.discard(generation);
        }
        Failure::of(&self.server, err, false)
    }

    fn discard(&self, generation: u64) {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if current.as_ref().is_some_and(|(g, _)| *g == generation) {
            *current = None;
        }
    }
}
