//! One multiplexed connection shared by every caller of a client, re-established on demand
//! after Redis goes away. No lock is held while a command is on the wire.

use crate::commands::Call;
use crate::error::{from_redis, Error, Result};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, FromRedisValue};
use std::sync::Mutex;
use std::time::Duration;

pub(crate) struct SharedConnection {
    client: redis::Client,
    config: AsyncConnectionConfig,
    connect_timeout: Duration,
    /// Address for messages (never the URL: it may hold a password).
    server: String,
    /// The live connection and its generation, so a failed caller only discards the
    /// connection it used, not a newer one another caller has already made.
    current: Mutex<Option<(u64, MultiplexedConnection)>>,
    /// Serialises reconnects so that a burst of callers makes one connection, not many.
    connecting: tokio::sync::Mutex<u64>,
}

impl SharedConnection {
    pub(crate) fn new(
        client: redis::Client,
        connect_timeout: Duration,
        command_timeout: Duration,
    ) -> Self {
        let server = server_address(&client);
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(connect_timeout))
            .set_response_timeout(Some(command_timeout));
        SharedConnection {
            client,
            config,
            connect_timeout,
            server,
            current: Mutex::new(None),
            connecting: tokio::sync::Mutex::new(0),
        }
    }

    pub(crate) fn redis_client(&self) -> &redis::Client {
        &self.client
    }

    /// Sends one call and classifies its failure. A connection found dead on first use
    /// (Redis restarted while this client was idle) is replaced and the call sent once more;
    /// the scripts are written so that running twice for one token does no harm.
    pub(crate) async fn send<T: FromRedisValue>(&self, call: &Call) -> Result<T> {
        self.with_retry(|mut conn| async move {
            match call {
                Call::Script(script) => script.invoke_async(&mut conn).await,
                Call::Command(cmd) => cmd.query_async(&mut conn).await,
            }
        })
        .await
    }

    async fn with_retry<T, F, Fut>(&self, send: F) -> Result<T>
    where
        F: Fn(MultiplexedConnection) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let (generation, conn, reused) = self.get().await?;
        match send(conn).await {
            Err(err) if reused && err.is_connection_dropped() => {
                self.discard(generation);
                let (generation, conn, _) = self.get().await?;
                send(conn)
                    .await
                    .map_err(|err| self.failed(generation, &err))
            }
            result => result.map_err(|err| self.failed(generation, &err)),
        }
    }

    /// The live connection (and whether it was made by an earlier call), connecting if needed.
    async fn get(&self) -> Result<(u64, MultiplexedConnection, bool)> {
        if let Some((generation, conn)) = self.live() {
            return Ok((generation, conn, true));
        }
        let mut generation = self.connecting.lock().await;
        if let Some((generation, conn)) = self.live() {
            return Ok((generation, conn, true));
        }
        let connect = self
            .client
            .get_multiplexed_async_connection_with_config(&self.config);
        let conn = match tokio::time::timeout(self.connect_timeout, connect).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(err)) => return Err(from_redis(&err, &self.server)),
            Err(_) => {
                return Err(Error::Connection(format!(
                    "connection to {} timed out after {} ms",
                    self.server,
                    self.connect_timeout.as_millis()
                )))
            }
        };
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
    fn failed(&self, generation: u64, err: &redis::RedisError) -> Error {
        if !keeps_connection(err) {
            self.discard(generation);
        }
        from_redis(err, &self.server)
    }

    fn discard(&self, generation: u64) {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if current.as_ref().is_some_and(|(g, _)| *g == generation) {
            *current = None;
        }
    }
}

/// Whether a connection stays usable after `err`: only an error reply leaves it in step.
pub(crate) fn keeps_connection(err: &redis::RedisError) -> bool {
    matches!(
        err.kind(),
        redis::ErrorKind::Server(_) | redis::ErrorKind::Extension
    )
}

/// The server's address for messages (never the URL: it may hold a password).
pub(crate) fn server_address(client: &redis::Client) -> String {
    client.get_connection_info().addr().to_string()
}
