//! Replica acknowledgement: Redis replicates asynchronously, so a lock written on a primary
//! that fails before a replica has it is gone on the promoted replica. A lock write
//! (acquisition, extend, renewal) is therefore followed by `WAIT` on the same connection,
//! written and read in the same round trip, and a write that too few replicas acknowledged is
//! undone by its caller (see docs/semantics.md).

use crate::engine::display_name;
use crate::error::{Error, Result};
use crate::options::{Options, ReplicaAcks};
use crate::protocol::calls::{self, Call};
use crate::transport::Transport;
use redis::{FromRedisValue, Role, Value};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// What a client asks of replicas, and what it knows of them.
pub(crate) struct Replication {
    wanted: ReplicaAcks,
    timeout: Duration,
    /// By server (a cluster's masters may have different replicas).
    known: Mutex<HashMap<String, Known>>,
}

/// What the client learned from its writes to one server; forgotten when a reply does not
/// come (a failover, a restart).
#[derive(Default)]
struct Known {
    /// For [`ReplicaAcks::Auto`]: the replicas to wait for, from `ROLE`. Also forgotten when a
    /// write falls short (a replica gone).
    replicas: Option<u32>,
    /// The scripts written since: the server has them, so a `WAIT` after them never follows a
    /// NOSCRIPT (which would make the write wait twice).
    scripts: Vec<&'static str>,
}

/// How the replicas answered the `WAIT` after one write.
pub(crate) struct Acks {
    required: u32,
    /// How many acknowledged the write, or why `WAIT` was refused.
    acknowledged: std::result::Result<u32, String>,
    timeout: Duration,
}

impl Replication {
    pub(crate) fn new(options: &Options) -> Replication {
        Replication {
            wanted: options.replica_acks,
            timeout: options.replica_ack_timeout(),
            known: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `call`, a lock write, may have to wait for replicas (for [`ReplicaAcks::Auto`],
    /// unless the server it goes to is known to have none).
    pub(crate) async fn may_wait(
        &self,
        transport: &impl Transport,
        call: &Call,
        deadline: std::time::Instant,
    ) -> Result<bool> {
        Ok(match self.wanted {
            ReplicaAcks::Count(count) => count > 0,
            ReplicaAcks::Auto => {
                let server = transport.route(call, deadline).await?;
                self.required(server.address()) != Some(0)
            }
        })
    }

    /// How many replicas a write to `server` waits for, when that is known without asking it.
    fn required(&self, server: &str) -> Option<u32> {
        match self.wanted {
            ReplicaAcks::Count(count) => Some(count),
            ReplicaAcks::Auto => self.lock_known().get(server)?.replicas,
        }
    }

    /// Sends the lock write that `call` makes, followed by `WAIT` when replicas must
    /// acknowledge it, all by `deadline`: its reply, and how the replicas answered. A first
    /// write (of its script, or while [`ReplicaAcks::Auto`] does not know the replicas: then
    /// with `ROLE` in front, in the same round trip) goes without `WAIT`; when it `took`
    /// effect and replicas must have it, it is sent once more with `WAIT` (the lock calls are
    /// safe to repeat).
    pub(crate) async fn send<T: FromRedisValue>(
        &self,
        transport: &impl Transport,
        call: impl Fn() -> Call,
        took: impl Fn(&T) -> bool,
        deadline: std::time::Instant,
    ) -> Result<(T, Acks)> {
        if self.wanted == ReplicaAcks::Count(0) {
            let reply = transport.send(&call(), deadline).await?;
            return Ok((reply, self.acks(0, Ok(0))));
        }
        let server = transport.route(&call(), deadline).await?;
        let server = server.address();
        let script = call().script.map(redis::Script::get_hash);
        let written_before = script.is_none_or(|script| self.has_written(server, script));
        let (reply, required) = match self.required(server) {
            Some(0) => {
                let reply = transport.send(&call(), deadline).await?;
                return Ok((reply, self.acks(0, Ok(0))));
            }
            Some(required) if written_before => {
                return self
                    .waited(transport, server, call(), required, deadline)
                    .await;
            }
            Some(required) => {
                let sent = transport.send::<T>(&call(), deadline).await;
                (self.forgotten_unless_answered(sent)?, required)
            }
            None => {
                let asking = calls::after_role(call());
                let asked = transport.send::<(Value, T)>(&asking, deadline).await;
                let (role, reply) = self.forgotten_unless_answered(asked)?;
                let required = replicas_to_wait_for(role);
                self.known_of(server, |known| known.replicas = Some(required));
                (reply, required)
            }
        };
        if let Some(script) = script.filter(|script| !self.has_written(server, script)) {
            self.known_of(server, |known| known.scripts.push(script));
        }
        if required == 0 || !took(&reply) {
            return Ok((reply, self.acks(0, Ok(0)))); // nothing to acknowledge
        }
        // Written without WAIT: once more with it. A refusal leaves the first write
        // unacknowledged (its caller releases the lock).
        match self
            .waited(transport, server, call(), required, deadline)
            .await
        {
            Err(Error::Redis(refusal)) => Ok((reply, self.acks(required, Err(refusal)))),
            sent => sent,
        }
    }

    /// Sends `call` followed by `WAIT` for `required` replicas of `server`.
    async fn waited<T: FromRedisValue>(
        &self,
        transport: &impl Transport,
        server: &str,
        call: Call,
        required: u32,
        deadline: std::time::Instant,
    ) -> Result<(T, Acks)> {
        let waited = calls::then_wait(call, required, self.timeout);
        let sent = transport.send::<(T, Value)>(&waited, deadline).await;
        let (reply, waited) = self.forgotten_unless_answered(sent)?;
        let acks = self.acks(required, acknowledged(waited));
        if !acks.suffice() {
            // A replica gone counts no more under Auto.
            self.known_of(server, |known| known.replicas = None);
        }
        Ok((reply, acks))
    }

    fn has_written(&self, server: &str, script: &str) -> bool {
        let known = self.lock_known();
        known
            .get(server)
            .is_some_and(|k| k.scripts.contains(&script))
    }

    fn known_of(&self, server: &str, change: impl FnOnce(&mut Known)) {
        change(self.lock_known().entry(server.to_string()).or_default());
    }

    fn acks(&self, required: u32, acknowledged: std::result::Result<u32, String>) -> Acks {
        Acks {
            required,
            acknowledged,
            timeout: self.timeout,
        }
    }

    /// A write whose reply did not come may have met a failover or a restart: the servers
    /// may be others, with other replicas and without the scripts.
    fn forgotten_unless_answered<T>(&self, sent: Result<T>) -> Result<T> {
        if matches!(sent, Err(Error::Connection(_))) {
            self.lock_known().clear();
        }
        sent
    }

    fn lock_known(&self) -> MutexGuard<'_, HashMap<String, Known>> {
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Auto's count from `ROLE`'s reply: one for a primary with replicas. Anything else waits for
/// none: a primary without replicas, a replica (whose writes fail with READONLY anyway), and a
/// refusal (an ACL without ROLE), where there is nothing to go by.
fn replicas_to_wait_for(role: Value) -> u32 {
    match Role::from_redis_value(role) {
        Ok(Role::Primary { replicas, .. }) => u32::from(!replicas.is_empty()),
        _ => 0,
    }
}

/// WAIT's reply: how many replicas acknowledged, or why WAIT was refused.
fn acknowledged(waited: Value) -> std::result::Result<u32, String> {
    match waited {
        Value::ServerError(refusal) => Err(refusal.to_string()),
        count => u32::from_redis_value(count).map_err(|err| err.to_string()),
    }
}

impl Acks {
    /// Whether as many replicas acknowledged the write as were required.
    pub(crate) fn suffice(&self) -> bool {
        self.acknowledged
            .as_ref()
            .is_ok_and(|acknowledged| *acknowledged >= self.required)
    }

    /// [`Error::NotReplicated`] for `write` (as the message names it) on lock `name` when too
    /// few replicas acknowledged it; its caller releases the lock.
    pub(crate) fn check(&self, write: &str, name: &[u8]) -> Result<()> {
        if self.suffice() {
            return Ok(());
        }
        let name = display_name(name);
        let why = match &self.acknowledged {
            Ok(acknowledged) => format!(
                "acknowledged by {acknowledged} of the {} replicas required within {} ms",
                self.required,
                self.timeout.as_millis()
            ),
            Err(refusal) => format!("not acknowledged: WAIT was refused ({refusal})"),
        };
        Err(Error::NotReplicated(format!(
            "{write} of lock '{name}' was {why}, so the lock is released"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_says_how_many_acknowledged_of_how_many_within_what() {
        let acks = |acknowledged| Acks {
            required: 2,
            acknowledged,
            timeout: Duration::from_millis(1000),
        };
        assert_eq!(acks(Ok(2)).check("the acquisition", b"x"), Ok(()));
        assert_eq!(
            acks(Ok(1)).check("the acquisition", b"orders:42"),
            Err(Error::NotReplicated(
                "the acquisition of lock 'orders:42' was acknowledged by 1 of the 2 replicas \
                 required within 1000 ms, so the lock is released"
                    .into()
            ))
        );
        let refused = acks(Err("NOPERM no permissions".into()));
        assert!(!refused.suffice());
        assert!(refused
            .check("the extension", b"x")
            .unwrap_err()
            .to_string()
            .contains("WAIT was refused (NOPERM no permissions)"));
    }
}
