//! The blocking client's pool of calling-thread connections: a calling thread borrows one,
//! writes its command and reads the reply itself, with no runtime, task or channel in
//! between, so an uncontended call costs little more than its round trip. A client opens at
//! most [`DIRECT_CONNECTIONS`]; a call that finds them all busy is told so and goes through
//! the shared multiplexed connection instead, so a client keeps a few connections however
//! many threads use it. The pool's lock is never held while a command is on the wire.

use super::blocking_connection::{timed_out, BlockingConnection};
use super::routing::Failure;
use super::{keeps_connection, query, Nodes};
use crate::deployment::{Deployment, Server};
use crate::error::Result;
use crate::protocol::calls::Call;
use redis::{FromRedisValue, RedisResult};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Direct connections per client and server: enough for the threads of a typical host to
/// skip the multiplexed path, few enough that many clients do not crowd the server.
pub const DIRECT_CONNECTIONS: usize = 4;

/// A client's pools, one per server of its deployment.
pub(crate) struct ConnectionPool {
    deployment: Deployment,
    timeouts: (Duration, Duration),
    nodes: Nodes<NodePool>,
    closed: AtomicBool,
}

impl ConnectionPool {
    pub(crate) fn new(
        deployment: Deployment,
        connect_timeout: Duration,
        command_timeout: Duration,
    ) -> Self {
        ConnectionPool {
            deployment,
            timeouts: (connect_timeout, command_timeout),
            nodes: Nodes::default(),
            closed: AtomicBool::new(false),
        }
    }

    pub(crate) fn deployment(&self) -> &Deployment {
        &self.deployment
    }

    /// Sends one call to `server` (see [`NodePool::send`]); `None` when every direct
    /// connection to it is busy.
    pub(crate) fn send_to<T: FromRedisValue>(
        &self,
        server: &Server,
        call: &Call,
        deadline: Instant,
    ) -> Option<std::result::Result<T, Failure>> {
        let pool = self.nodes.get(server, || {
            let (connect_timeout, command_timeout) = self.timeouts;
            let pool = NodePool::new(server.clone(), connect_timeout, command_timeout);
            if self.closed.load(Ordering::SeqCst) {
                pool.close();
            }
            pool
        });
        pool.send(call, deadline)
    }

    /// Closes every connection: idle ones now, borrowed ones when they come back.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.nodes.each(NodePool::close);
    }
}

/// The direct connections to one server.
pub(crate) struct NodePool {
    server: Server,
    connect_timeout: Duration,
    command_timeout: Duration,
    pool: Mutex<Pool>,
}

#[derive(Default)]
struct Pool {
    idle: Vec<BlockingConnection>,
    /// Idle and borrowed connections, and slots reserved by callers still connecting.
    open: usize,
    /// Bumped when the connections are found dead (Redis restarted) or closed: older ones
    /// are closed instead of returned.
    generation: u64,
    closed: bool,
}

/// A slot lent to one call, with its connection once made; the connection goes back to the
/// pool only after a clean exchange.
struct Borrowed<'a> {
    owner: &'a NodePool,
    generation: u64,
    conn: Option<BlockingConnection>,
    reused: bool,
}

impl NodePool {
    fn new(server: Server, connect_timeout: Duration, command_timeout: Duration) -> Self {
        NodePool {
            server,
            connect_timeout,
            command_timeout,
            pool: Mutex::new(Pool::default()),
        }
    }

    /// Sends one call, answered by `deadline` (moved on by the time spent connecting, when a
    /// connection has to be made); `None` when every direct connection is busy. A reused
    /// connection found dead is replaced: before sending a call that must not be sent twice,
    /// or after sending an idempotent one, which is then sent once more.
    fn send<T: FromRedisValue>(
        &self,
        call: &Call,
        deadline: Instant,
    ) -> Option<std::result::Result<T, Failure>> {
        Some(self.borrow()?.send(call, deadline))
    }

    /// Closes every connection: idle ones now, borrowed ones when they come back.
    fn close(&self) {
        self.close_idle();
        self.lock_pool().closed = true;
    }

    fn borrow(&self) -> Option<Borrowed<'_>> {
        let mut pool = self.lock_pool();
        let generation = pool.generation;
        let conn = pool.idle.pop();
        if conn.is_none() {
            if pool.open == DIRECT_CONNECTIONS {
                return None;
            }
            pool.open += 1;
        }
        Some(Borrowed {
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

impl Borrowed<'_> {
    fn send<T: FromRedisValue>(
        &mut self,
        call: &Call,
        mut deadline: Instant,
    ) -> std::result::Result<T, Failure> {
        let send = |conn: &mut BlockingConnection| query(&call.request, conn);
        if !call.idempotent && self.conn.as_mut().is_some_and(|c| !c.is_idle_and_open()) {
            self.replace_dead();
        }
        let result = match self.exchange(&send, &mut deadline)? {
            Err(err) if self.reused && call.idempotent && err.is_connection_dropped() => {
                self.replace_dead();
                self.exchange(&send, &mut deadline)?
            }
            result => result,
        };
        result.map_err(|err| self.failed(&err))
    }

    /// Drops a connection found dead, and the idle ones, made before the same restart: the
    /// next exchange makes a new one.
    fn replace_dead(&mut self) {
        self.owner.close_idle();
        self.conn = None;
        self.reused = false;
    }

    /// Sends before `deadline` on the borrowed connection, made now when the slot has none (the
    /// time spent connecting, within the connect timeout, moves the deadline on). A failure to
    /// connect comes classified; the exchange's is left to the caller, who may try again.
    fn exchange<T>(
        &mut self,
        send: &impl Fn(&mut BlockingConnection) -> RedisResult<T>,
        deadline: &mut Instant,
    ) -> Result<RedisResult<T>> {
        let conn = match &mut self.conn {
            Some(conn) => conn,
            // An earlier step of the call used all its time: no new connection for it.
            None if *deadline <= Instant::now() => return Ok(Err(timed_out().into())),
            empty => {
                let owner = self.owner;
                let started = Instant::now();
                let conn = BlockingConnection::connect(
                    &owner.server,
                    started + owner.connect_timeout,
                    owner.command_timeout,
                )?;
                *deadline += started.elapsed();
                self.generation = owner.lock_pool().generation;
                empty.insert(conn)
            }
        };
        conn.set_deadline(Some(*deadline));
        let result = send(conn);
        conn.set_deadline(None);
        Ok(result)
    }

    /// Classifies a failed command; a connection that may hold a half-read reply is closed.
    fn failed(&mut self, err: &redis::RedisError) -> Failure {
        if !keeps_connection(err) {
            self.conn = None;
        }
        Failure::of(&self.owner.server, err, !self.reused)
    }
}

impl Drop for Borrowed<'_> {
    fn drop(&mut self) {
        let mut pool = self.owner.lock_pool();
        match self.conn.take() {
            Some(conn) if self.generation == pool.generation && !pool.closed => {
                pool.idle.push(conn)
            }
            _ => pool.open -= 1,
        }
    }
}
