//! Direct connections for the blocking client: a calling thread borrows one, writes its
//! command and reads the reply itself, with no runtime, task or channel in between, so an
//! uncontended call costs little more than its round trip. A client opens at most
//! [`DIRECT_CONNECTIONS`]; a call that finds them all busy is told so and goes through the
//! shared multiplexed connection instead, so a client keeps a few connections however many
//! threads use it. The pool's lock is never held while a command is on the wire.

use crate::commands::Call;
use crate::connection::{keeps_connection, server_address};
use crate::error::{from_redis, Error, Result};
use crate::wire::WireConnection;
use redis::{FromRedisValue, RedisResult};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// Direct connections per client: enough for the threads of a typical host to skip the
/// multiplexed path, few enough that many clients do not crowd the server.
pub const DIRECT_CONNECTIONS: usize = 4;

pub(crate) struct DirectConnections {
    client: redis::Client,
    connect_timeout: Duration,
    command_timeout: Duration,
    server: String,
    pool: Mutex<Pool>,
}

#[derive(Default)]
struct Pool {
    idle: Vec<WireConnection>,
    /// Idle and lent connections, and slots reserved by callers still connecting.
    open: usize,
    /// Bumped when the connections are found dead (Redis restarted): older ones are closed
    /// instead of returned.
    generation: u64,
}

/// A slot lent to one call, with its connection once made; the connection goes back to the
/// pool only after a clean exchange.
struct Lent<'a> {
    owner: &'a DirectConnections,
    generation: u64,
    conn: Option<WireConnection>,
    reused: bool,
}

impl DirectConnections {
    pub(crate) fn new(
        client: redis::Client,
        connect_timeout: Duration,
        command_timeout: Duration,
    ) -> Self {
        DirectConnections {
            server: server_address(&client),
            client,
            connect_timeout,
            command_timeout,
            pool: Mutex::new(Pool::default()),
        }
    }

    /// Sends one call; `None` when every direct connection is busy. As on the multiplexed
    /// connection, a connection found dead on first use is replaced and the call sent once
    /// more (the scripts are idempotent per token).
    pub(crate) fn send<T: FromRedisValue>(&self, call: &Call) -> Option<Result<T>> {
        let send = |conn: &mut WireConnection| -> RedisResult<T> {
            match call {
                Call::Script(script) => script.invoke(conn),
                Call::Command(cmd) => cmd.query(conn),
            }
        };
        let mut lent = self.lend()?;
        let result = match lent.exchange(send) {
            Err(err) if lent.reused && err.is_connection_dropped() => {
                self.close_idle();
                lent.conn = None;
                lent.exchange(send)
            }
            result => result,
        };
        Some(result.map_err(|err| lent.failed(&err)))
    }

    fn lend(&self) -> Option<Lent<'_>> {
        let mut pool = self.lock_pool();
        let generation = pool.generation;
        let conn = pool.idle.pop();
        if conn.is_none() {
            if pool.open == DIRECT_CONNECTIONS {
                return None;
            }
            pool.open += 1;
        }
        Some(Lent {
            owner: self,
            generation,
            reused: conn.is_some(),
            conn,
        })
    }

    /// Closes the idle connections: made before a restart, they are dead too.
    fn close_idle(&self) {
        let mut pool = self.lock_pool();
        pool.open -= pool.idle.len();
        pool.idle.clear();
        pool.generation += 1;
    }

    fn lock_pool(&self) -> MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Lent<'_> {
    /// Sends on the lent connection, made now when the slot has none.
    fn exchange<T>(
        &mut self,
        send: impl Fn(&mut WireConnection) -> RedisResult<T>,
    ) -> RedisResult<T> {
        let conn = match &mut self.conn {
            Some(conn) => conn,
            empty => {
                let owner = self.owner;
                let conn = WireConnection::connect(
                    owner.client.get_connection_info(),
                    owner.connect_timeout,
                    owner.command_timeout,
                )?;
                self.generation = owner.lock_pool().generation;
                empty.insert(conn)
            }
        };
        send(conn)
    }

    /// Classifies a failed command; a connection that may hold a half-read reply is closed.
    fn failed(&mut self, err: &redis::RedisError) -> Error {
        if !keeps_connection(err) {
            self.conn = None;
        }
        from_redis(err, &self.owner.server)
    }
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        let mut pool = self.owner.lock_pool();
        match self.conn.take() {
            Some(conn) if self.generation == pool.generation => pool.idle.push(conn),
            _ => pool.open -= 1,
        }
    }
}
