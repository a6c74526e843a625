//! A Redis Cluster: every key of one lock lives in the lock key's slot (see
//! `protocol/keys.rs`), so each call goes to the one master that serves that slot, found in
//! the slot map (`CLUSTER SLOTS`, asked of any node). A MOVED reply sends the call on to the
//! new owner and has the map asked for again; ASK sends it to the node a slot is being
//! migrated to, after `ASKING`; TRYAGAIN and CLUSTERDOWN (keys of a slot half-migrated, a
//! failover under way) are waited out within the call's time. None of them reaches the caller
//! while the call has time left.

use super::{ask_in_turn, HostList, Next, Server};
use crate::error::{Error, Result};
use crate::options::Options;
use crate::protocol::calls;
use crate::transport::routing::{NodeSender, Redirect};
use redis::Value;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
use tokio::sync::watch;

const FORM: &str = "redis+cluster://[user:password@]host:port[,host:port...]";

const SLOTS: usize = 16384;

pub(crate) struct Cluster {
    /// The nodes of the URL: where the map is asked for when no known master answers.
    seeds: Vec<Server>,
    map: Mutex<Option<Arc<SlotMap>>>,
    /// The masters of the last map: asked first for the next one, and the nodes that
    /// redirections name.
    last_masters: Mutex<Vec<Server>>,
    /// Bumped when the masters of a new map differ from the last one's.
    changes: watch::Sender<u64>,
    /// The last node that did not answer: asked last for the next map.
    unreachable: Mutex<Option<String>>,
}

/// Which master serves which slot.
struct SlotMap {
    masters: Vec<Server>,
    /// For each slot, its master's index in `masters`; `None` while no master serves it.
    owners: Vec<Option<u16>>,
}

impl Cluster {
    pub(crate) fn from_url(url: &str, options: &Options) -> Result<Cluster> {
        let list = HostList::parse(url, FORM)?;
        if !matches!(list.path, "" | "/" | "/0") || !list.query.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "invalid Redis URL '{}': a cluster has one database and takes no parameters (expected {FORM})",
                super::redact_url(url)
            )));
        }
        let seeds = list
            .hosts
            .iter()
            .map(|host| Server::from_url(&list.server_url(list.credentials, host, ""), options))
            .collect::<Result<Vec<_>>>()?;
        Ok(Cluster {
            seeds,
            map: Mutex::new(None),
            last_masters: Mutex::new(Vec::new()),
            changes: watch::Sender::new(0),
            unreachable: Mutex::new(None),
        })
    }

    /// The master serving `slot` (any master for `None`).
    pub(crate) async fn master_for(
        &self,
        slot: Option<u16>,
        via: &impl NodeSender,
        deadline: Instant,
    ) -> Result<Server> {
        let map = self.map(via, deadline).await?;
        let owner = match slot {
            Some(slot) => map.owners[usize::from(slot)],
            None => Some(0),
        };
        match owner.and_then(|index| map.masters.get(usize::from(index))) {
            Some(master) => Ok(master.clone()),
            None => {
                self.forget_map();
                Err(Error::Redis(format!(
                    "no master of the cluster serves slot {} (CLUSTERDOWN)",
                    slot.unwrap_or_default()
                )))
            }
        }
    }

    /// Every master.
    pub(crate) async fn masters(
        &self,
        via: &impl NodeSender,
        deadline: Instant,
    ) -> Result<Vec<Server>> {
        Ok(self.map(via, deadline).await?.masters.clone())
    }

    pub(crate) fn redirected(&self, redirect: &Redirect) -> Result<Next> {
        Ok(match redirect {
            Redirect::Moved { host, port } => {
                self.forget_map(); // slots moved: the next call asks for the map again
                Next::To(self.node(host, *port)?)
            }
            Redirect::Ask { host, port } => Next::Asking(self.node(host, *port)?),
            Redirect::TryAgain | Redirect::ReadOnly | Redirect::HalfRun => {
                if matches!(redirect, Redirect::ReadOnly) {
                    self.forget_map(); // a master demoted by a failover
                }
                Next::Later
            }
        })
    }

    /// `server` did not answer: it may have failed over, and the map with it.
    pub(crate) fn forget(&self, server: &Server) {
        *self.unreachable.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(server.address().to_string());
        self.forget_map();
    }

    pub(crate) fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// The slot map, asked for when not known: of the known masters first, then of the
    /// URL's nodes, the one that last did not answer last, each with a share of the time
    /// left, until one answers.
    async fn map(&self, via: &impl NodeSender, deadline: Instant) -> Result<Arc<SlotMap>> {
        if let Some(map) = self.lock_map().clone() {
            return Ok(map);
        }
        let mut candidates = self.lock_last_masters().clone();
        for seed in &self.seeds {
            if !candidates.iter().any(|c| c.address() == seed.address()) {
                candidates.push(seed.clone());
            }
        }
        let unreachable = self
            .unreachable
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        candidates.sort_by_key(|c| Some(c.address()) == unreachable.as_deref());
        let parsed = |node: &Server, reply: Value| self.parse_map(node, reply);
        let failed = "no node of the cluster told its slots";
        let ask = calls::cluster_slots();
        let map = ask_in_turn(&candidates, &ask, via, deadline, parsed, failed).await?;
        Ok(self.learned(map))
    }

    /// `CLUSTER SLOTS`: `[[first, last, [host, port, id, ...], replicas...], ...]`. A host
    /// left empty (a node that does not know its own address) is the asked node's.
    fn parse_map(&self, asked: &Server, reply: Value) -> Result<SlotMap> {
        let unexpected = || {
            Error::Redis(format!(
                "redis at {} answered CLUSTER SLOTS unexpectedly: is it a cluster node?",
                asked.address()
            ))
        };
        let Value::Array(ranges) = reply else {
            return Err(unexpected());
        };
        let asked_host = match asked.info().addr() {
            redis::ConnectionAddr::Tcp(host, _) | redis::ConnectionAddr::TcpTls { host, .. } => {
                host.clone()
            }
            _ => return Err(unexpected()),
        };
        let mut map = SlotMap {
            masters: Vec::new(),
            owners: vec![None; SLOTS],
        };
        for range in ranges {
            let (first, last, host, port) = match redis::from_redis_value::<Vec<Value>>(range) {
                Ok(parts) if parts.len() >= 3 => {
                    let master = redis::from_redis_value::<Vec<Value>>(parts[2].clone())
                        .map_err(|_| unexpected())?;
                    let number = |v: &Value| redis::from_redis_value::<i64>(v.clone());
                    match (number(&parts[0]), number(&parts[1]), master.as_slice()) {
                        (Ok(first), Ok(last), [host, port, ..]) => (
                            first,
                            last,
                            redis::from_redis_value::<String>(host.clone()).unwrap_or_default(),
                            number(port).map_err(|_| unexpected())?,
                        ),
                        _ => return Err(unexpected()),
                    }
                }
                _ => return Err(unexpected()),
            };
            let host = match host.as_str() {
                "" | "?" => asked_host.clone(),
                _ => host,
            };
            let port = u16::try_from(port).map_err(|_| unexpected())?;
            let index = match map.masters.iter().position(|m| same_node(m, &host, port)) {
                Some(index) => index,
                None => {
                    map.masters.push(asked.at(&host, port)?);
                    map.masters.len() - 1
                }
            };
            let (first, last) = (
                first.clamp(0, SLOTS as i64 - 1),
                last.clamp(0, SLOTS as i64 - 1),
            );
            for slot in first..=last {
                map.owners[slot as usize] = Some(index as u16);
            }
        }
        if map.masters.is_empty() {
            return Err(Error::Redis(format!(
                "redis at {} serves no slots: the cluster is not set up",
                asked.address()
            )));
        }
        Ok(map)
    }

    fn learned(&self, map: SlotMap) -> Arc<SlotMap> {
        let map = Arc::new(map);
        *self.lock_map() = Some(map.clone());
        let addresses = |masters: &[Server]| {
            let mut addresses: Vec<String> = masters.iter().map(|m| m.address().into()).collect();
            addresses.sort();
            addresses
        };
        let mut last = self.lock_last_masters();
        if addresses(&last) != addresses(&map.masters) {
            *last = map.masters.clone();
            self.changes.send_modify(|n| *n += 1);
        }
        map
    }

    /// The node at `host:port`: a known master, or a new one with the URL's settings.
    fn node(&self, host: &str, port: u16) -> Result<Server> {
        match self
            .lock_last_masters()
            .iter()
            .find(|m| same_node(m, host, port))
        {
            Some(master) => Ok(master.clone()),
            None => self.seeds[0].at(host, port),
        }
    }

    fn forget_map(&self) {
        self.lock_map().take();
    }

    fn lock_last_masters(&self) -> MutexGuard<'_, Vec<Server>> {
        self.last_masters.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_map(&self) -> MutexGuard<'_, Option<Arc<SlotMap>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn same_node(server: &Server, host: &str, port: u16) -> bool {
    match server.info().addr() {
        redis::ConnectionAddr::Tcp(h, p)
        | redis::ConnectionAddr::TcpTls {
            host: h, port: p, ..
        } => h == host && *p == port,
        _ => false,
    }
}
