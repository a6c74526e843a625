//! A Redis Cluster of throwaway `redis-server` nodes on free loopback ports: masters, each
//! with its replicas, the 16384 slots shared evenly among the masters. Stopped when dropped.
//!
//! The harness forms the cluster itself, as `redis-cli --cluster create` does (slots, distinct
//! config epochs, MEET, REPLICATE), which also works for fewer than 3 masters and gives each
//! master the replicas the caller expects. Every wait watches the nodes' own reports
//! (`CLUSTER INFO`, `CLUSTER NODES`, `INFO replication`) until all running nodes agree.
//!
//! Masters are numbered 0..masters: master `i` is a shard, its first node and its replicas.
//! After a failover, master `i` is the shard's promoted replica; the old master, if it runs
//! (or once restarted), is the shard's replica.

use crate::resp::Reply;
use crate::{free_port, scaled, tls, tls_peer_args, wait_for, RedisServer};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// Hash slots of a Redis Cluster.
pub const SLOTS: u16 = 16384;

/// How long the cluster waits for a node before calling it failing (`cluster-node-timeout`:
/// 1.5 s, stretched by `REDILOCK_TEST_TIME_SCALE` so that a loaded machine does not fail nodes
/// over). A master paused for longer is failed over, as a killed one is.
pub fn node_timeout() -> Duration {
    scaled(Duration::from_millis(1500))
}

/// How long forming, failing over or settling may take before a test fails.
fn patience() -> Duration {
    Duration::from_secs(30)
}

pub struct RedisCluster {
    /// The nodes in start order: the masters, then the replicas of master 0, of master 1...
    nodes: Vec<RedisServer>,
    /// Each node's cluster id (kept across restarts, in its `nodes.conf`).
    ids: Vec<String>,
    /// For each master index, the indexes in `nodes` of the shard's nodes, its master first.
    shards: Vec<Vec<usize>>,
    tls: bool,
}

/// What a node says of another in `CLUSTER NODES`.
#[derive(Debug, Clone)]
struct NodeLine {
    id: String,
    flags: Vec<String>,
    /// The id of its master, for a replica.
    master: Option<String>,
    /// Slot ranges it owns, inclusive.
    slots: Vec<(u16, u16)>,
    /// Slots it is migrating or importing (`[slot->-id]`, `[slot-<-id]`; of `myself` only).
    migrations: Vec<String>,
}

impl NodeLine {
    fn flagged(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    fn is_master(&self) -> bool {
        self.flagged("master")
    }

    fn owns(&self, slot: u16) -> bool {
        self.slots.iter().any(|&(a, b)| a <= slot && slot <= b)
    }
}

fn parse_nodes(text: &str) -> Vec<NodeLine> {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let mut slots = Vec::new();
            let mut migrations = Vec::new();
            for field in fields.iter().skip(8) {
                if field.starts_with('[') {
                    migrations.push(field.to_string());
                } else if let Some((a, b)) = field.split_once('-') {
                    slots.push((a.parse().unwrap(), b.parse().unwrap()));
                } else {
                    let slot = field.parse().unwrap();
                    slots.push((slot, slot));
                }
            }
            NodeLine {
                id: fields[0].to_string(),
                flags: fields[2].split(',').map(str::to_string).collect(),
                master: Some(fields[3]).filter(|m| *m != "-").map(str::to_string),
                slots,
                migrations,
            }
        })
        .collect()
}

/// What all running nodes agree on: for each running node's id, its role and slots.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Agreed {
    nodes: BTreeMap<String, Role>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Role {
    /// The id of its master, for a replica; None for a master.
    master: Option<String>,
    /// Slot ranges it owns, inclusive.
    slots: Vec<(u16, u16)>,
}

impl RedisCluster {
    /// Starts `masters * (1 + replicas_per_master)` cluster nodes and forms a cluster of them,
    /// returning once every node reports `cluster_state:ok`, all running nodes agree on who
    /// owns which slot and who replicates whom, and every replica's link is up.
    /// A single master without replicas works too.
    pub fn start(masters: usize, replicas_per_master: usize) -> RedisCluster {
        Self::form(masters, replicas_per_master, None)
    }

    /// As `start`, with nodes that take TLS connections only (with `certificates`' server
    /// certificate; a client certificate is asked for but optional), and talk TLS to each
    /// other on the cluster bus and for replication (with the client certificate).
    pub fn start_tls(
        certificates: &tls::TestCertificates,
        masters: usize,
        replicas_per_master: usize,
    ) -> RedisCluster {
        let mut tls = tls_peer_args(certificates);
        tls.extend(["--tls-cluster".into(), "yes".into()]);
        Self::form(masters, replicas_per_master, Some(tls))
    }

    fn form(masters: usize, replicas: usize, tls: Option<Vec<String>>) -> RedisCluster {
        assert!(masters >= 1, "a cluster needs a master");
        let args = |dir: &Path| {
            [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                dir.join("nodes.conf").to_str().unwrap(),
                "--cluster-node-timeout",
                &node_timeout().as_millis().to_string(),
                // Its own bus port: the default, port + 10000, may be taken or above 65535.
                "--cluster-port",
                &free_port().to_string(),
                // Shards keep their nodes: no replica moves to another master by itself.
                "--cluster-allow-replica-migration",
                "no",
            ]
            .map(str::to_string)
            .to_vec()
        };
        let count = masters * (1 + replicas);
        let nodes: Vec<RedisServer> = (0..count)
            .map(|_| RedisServer::start_listening(&args, tls.clone(), false))
            .collect();
        let ids = nodes
            .iter()
            .map(|node| node.call(&[b"CLUSTER", b"MYID"]).text())
            .collect();
        let shards = (0..masters)
            .map(|m| {
                std::iter::once(m)
                    .chain((0..replicas).map(|r| masters + m * replicas + r))
                    .collect()
            })
            .collect();
        let cluster = RedisCluster {
            nodes,
            ids,
            shards,
            tls: tls.is_some(),
        };
        let nodes = &cluster.nodes;
        for (i, node) in nodes.iter().enumerate() {
            // Distinct epochs, so that no collision has to be resolved first.
            node.call(&[
                b"CLUSTER",
                b"SET-CONFIG-EPOCH",
                (i + 1).to_string().as_bytes(),
            ]);
        }
        for (m, master) in nodes[..masters].iter().enumerate() {
            let first = m * SLOTS as usize / masters;
            let last = (m + 1) * SLOTS as usize / masters - 1;
            master.call(&[
                b"CLUSTER",
                b"ADDSLOTSRANGE",
                first.to_string().as_bytes(),
                last.to_string().as_bytes(),
            ]);
        }
        for node in &nodes[1..] {
            nodes[0].call(&[
                b"CLUSTER",
                b"MEET",
                b"127.0.0.1",
                node.port.to_string().as_bytes(),
                bus_port(node).to_string().as_bytes(),
            ]);
        }
        // A replica can only follow a master it knows.
        wait_for("the cluster nodes know each other", patience(), || {
            for node in nodes {
                let lines = parse_nodes(&node.call(&[b"CLUSTER", b"NODES"]).text());
                let known = lines.iter().filter(|l| !l.flagged("handshake")).count();
                if known != count {
                    return Err(format!("port {} knows {known} of {count}", node.port));
                }
            }
            Ok(())
        });
        for shard in &cluster.shards {
            for &replica in &shard[1..] {
                nodes[replica].call(&[b"CLUSTER", b"REPLICATE", cluster.ids[shard[0]].as_bytes()]);
            }
        }
        cluster.wait_for_agreement("the cluster is formed");
        cluster
    }

    /// `redis+cluster://127.0.0.1:P1,127.0.0.1:P2,...`: the current masters
    /// (`rediss+cluster://` for TLS nodes).
    pub fn url(&self) -> String {
        let scheme = if self.tls {
            "rediss+cluster"
        } else {
            "redis+cluster"
        };
        let seeds: Vec<String> = self
            .masters()
            .iter()
            .map(|m| format!("127.0.0.1:{}", m.port))
            .collect();
        format!("{scheme}://{}", seeds.join(","))
    }

    /// All nodes, in start order: the first masters, then the replicas of master 0, 1...
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// A node by its index in `nodes`, to kill, restart or pause it. After a restart (a
    /// node keeps its cluster id and rejoins), `wait_until_settled`.
    pub fn node_mut(&mut self, index: usize) -> &mut RedisServer {
        &mut self.nodes[index]
    }

    /// The cluster id of the node at `index` in `nodes`.
    pub fn node_id(&self, index: usize) -> &str {
        &self.ids[index]
    }

    /// The current master of each shard, by master index.
    pub fn masters(&self) -> Vec<&RedisServer> {
        self.shards.iter().map(|s| &self.nodes[s[0]]).collect()
    }

    /// The current master of shard `index`.
    pub fn master(&self, index: usize) -> &RedisServer {
        &self.nodes[self.shards[index][0]]
    }

    /// The current replicas of the master `index`.
    pub fn replicas(&self, index: usize) -> Vec<&RedisServer> {
        self.shards[index][1..]
            .iter()
            .map(|&i| &self.nodes[i])
            .collect()
    }

    /// The slot of `key`, as a node computes it (`CLUSTER KEYSLOT`; `{...}` hash tags count).
    pub fn keyslot(&self, key: &str) -> u16 {
        match self
            .any_node()
            .call(&[b"CLUSTER", b"KEYSLOT", key.as_bytes()])
        {
            Reply::Integer(slot) => slot as u16,
            other => panic!("CLUSTER KEYSLOT: {other:?}"),
        }
    }

    /// The master that owns `slot`, as the nodes say.
    pub fn master_for_slot(&self, slot: u16) -> &RedisServer {
        &self.nodes[self.owner(slot)]
    }

    /// The index of the master that owns `slot`.
    pub fn master_index_for_slot(&self, slot: u16) -> usize {
        let owner = self.owner(slot);
        self.shards.iter().position(|s| s.contains(&owner)).unwrap()
    }

    /// Moves `slot` and its keys to the master `to`, as `redis-cli --cluster reshard` does,
    /// and returns once all running nodes agree on its new owner.
    pub fn migrate_slot(&self, slot: u16, to: usize) {
        let migration = self.begin_migration(slot, to);
        migration.move_keys();
        migration.finish();
    }

    /// Starts moving `slot` to the master `to`: the target imports it, its owner migrates it.
    /// Meanwhile the owner answers ASK for keys it no longer has and TRYAGAIN for commands
    /// over keys some of which moved. Move the keys with `Migration::move_keys`, end with
    /// `Migration::finish` (if never finished, the slot stays half-migrated).
    pub fn begin_migration(&self, slot: u16, to: usize) -> Migration<'_> {
        let source = self.owner(slot);
        let target = self.shards[to][0];
        assert_ne!(source, target, "slot {slot} is already master {to}'s");
        let slot_arg = slot.to_string();
        self.nodes[target].call(&[
            b"CLUSTER",
            b"SETSLOT",
            slot_arg.as_bytes(),
            b"IMPORTING",
            self.ids[source].as_bytes(),
        ]);
        self.nodes[source].call(&[
            b"CLUSTER",
            b"SETSLOT",
            slot_arg.as_bytes(),
            b"MIGRATING",
            self.ids[target].as_bytes(),
        ]);
        Migration {
            cluster: self,
            slot,
            source,
            target,
        }
    }

    /// A planned failover of master `index` (`CLUSTER FAILOVER` on its first running
    /// replica): returns once that replica is the master all running nodes agree on and the
    /// old master replicates it.
    pub fn failover(&mut self, index: usize) {
        let replica = *self.shards[index][1..]
            .iter()
            .find(|&&i| self.nodes[i].is_running())
            .unwrap_or_else(|| panic!("master {index} has no running replica"));
        self.nodes[replica].call(&[b"CLUSTER", b"FAILOVER"]);
        let id = self.ids[replica].clone();
        let agreed = wait_for("the replica takes over", patience(), || {
            let agreed = self.agreement()?;
            match agreed.nodes.get(&id) {
                Some(Role { master: None, .. }) => Ok(agreed),
                _ => Err("the replica is not master yet".into()),
            }
        });
        self.adopt(&agreed);
    }

    /// Kills master `index` (SIGKILL), as a crash would; returns its port. Its replica takes
    /// over after the node timeout, if a majority of masters still runs:
    /// `wait_for_promotion`.
    pub fn kill_master(&mut self, index: usize) -> u16 {
        let master = self.shards[index][0];
        self.nodes[master].kill();
        self.nodes[master].port
    }

    /// Waits until a replica has taken over from each killed master: all slots are owned by
    /// running masters that all running nodes agree on.
    pub fn wait_for_promotion(&mut self) {
        for (i, shard) in self.shards.iter().enumerate() {
            if !self.nodes[shard[0]].is_running() {
                assert!(
                    shard[1..].iter().any(|&n| self.nodes[n].is_running()),
                    "master {i} was killed and has no running replica to take over"
                );
            }
        }
        let agreed = self.wait_for_agreement("a replica takes over from the killed master");
        self.adopt(&agreed);
    }

    /// Waits until the cluster is whole again (e.g. after `node_mut(i).restart()`): state ok,
    /// all running nodes agree, replicas linked; masters then are as the nodes say.
    pub fn wait_until_settled(&mut self) {
        let agreed = self.wait_for_agreement("the cluster settles");
        self.adopt(&agreed);
    }

    /// Reorders each shard so that the master all nodes agree on comes first.
    fn adopt(&mut self, agreed: &Agreed) {
        for shard in &mut self.shards {
            let is_master = |i: &usize| {
                matches!(
                    agreed.nodes.get(&self.ids[*i]),
                    Some(Role { master: None, .. })
                ) && self.nodes[*i].is_running()
            };
            if let Some(position) = shard.iter().position(is_master) {
                let master = shard.remove(position);
                shard.insert(0, master);
            }
        }
    }

    fn wait_for_agreement(&self, what: &str) -> Agreed {
        wait_for(what, patience(), || self.agreement())
    }

    /// Nodes that run and are not paused: they answer.
    fn answering(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.nodes.len()).filter(|&i| self.nodes[i].is_running() && !self.nodes[i].is_paused())
    }

    fn any_node(&self) -> &RedisServer {
        let i = self.answering().next().expect("a running node");
        &self.nodes[i]
    }

    /// The node that owns `slot`, as the first answering master (or node) says.
    fn owner(&self, slot: u16) -> usize {
        let asked = self
            .answering()
            .find(|&i| self.shards.iter().any(|s| s[0] == i))
            .unwrap_or_else(|| self.answering().next().expect("a running node"));
        let lines = parse_nodes(&self.nodes[asked].call(&[b"CLUSTER", b"NODES"]).text());
        let owner = lines
            .iter()
            .find(|l| l.is_master() && l.owns(slot))
            .unwrap_or_else(|| panic!("no master owns slot {slot}"));
        self.ids
            .iter()
            .position(|id| *id == owner.id)
            .expect("a node of this cluster")
    }

    /// The cluster as all answering nodes see it, if they agree and it is whole: every one
    /// says `cluster_state:ok`, knows every running node as the others do and none of the
    /// answering ones as failing, no node migrates a slot, running masters own all slots
    /// (none is left to a killed node), and replicas of answering masters have their link up.
    fn agreement(&self) -> Result<Agreed, String> {
        let running: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].is_running())
            .collect();
        let mut agreed: Option<Agreed> = None;
        for i in self.answering() {
            let node = &self.nodes[i];
            let port = node.port;
            let ask = |args: &[&[u8]]| {
                node.command(args)
                    .and_then(Reply::ok)
                    .map(|r| r.text())
                    .map_err(|e| format!("port {port}: {e}"))
            };
            let info = ask(&[b"CLUSTER", b"INFO"])?;
            if !info.lines().any(|l| l.trim() == "cluster_state:ok") {
                return Err(format!("port {port} says the cluster is not ok"));
            }
            let lines = parse_nodes(&ask(&[b"CLUSTER", b"NODES"])?);
            let mut view = Agreed {
                nodes: BTreeMap::new(),
            };
            for line in &lines {
                if line.flagged("handshake") {
                    return Err(format!("port {port} is still meeting {}", line.id));
                }
                if !line.migrations.is_empty() {
                    return Err(format!("port {port} migrates {:?}", line.migrations));
                }
                let Some(n) = self.ids.iter().position(|id| *id == line.id) else {
                    return Err(format!("port {port} knows a stranger, {}", line.id));
                };
                if !running.contains(&n) {
                    if !line.slots.is_empty() {
                        return Err(format!(
                            "port {port} leaves slots to the stopped node {}",
                            self.nodes[n].port
                        ));
                    }
                    continue;
                }
                if !self.nodes[n].is_paused() && (line.flagged("fail") || line.flagged("fail?")) {
                    return Err(format!(
                        "port {port} thinks port {} fails",
                        self.nodes[n].port
                    ));
                }
                let master = if line.is_master() {
                    None
                } else {
                    Some(line.master.clone().unwrap_or_default())
                };
                let slots = line.slots.clone();
                view.nodes.insert(line.id.clone(), Role { master, slots });
            }
            if view.nodes.len() != running.len() {
                return Err(format!(
                    "port {port} knows {} of the {} running nodes",
                    view.nodes.len(),
                    running.len()
                ));
            }
            match &agreed {
                None => agreed = Some(view),
                Some(first) if *first == view => {}
                Some(first) => {
                    return Err(format!("port {port} sees {view:?}, another node {first:?}"))
                }
            }
        }
        let agreed = agreed.ok_or("no node answers")?;
        let mut covered = vec![false; SLOTS as usize];
        for Role { master, slots } in agreed.nodes.values() {
            for &(a, b) in slots {
                if master.is_some() {
                    return Err("a replica owns slots".into());
                }
                for slot in a..=b {
                    if std::mem::replace(&mut covered[slot as usize], true) {
                        return Err(format!("slot {slot} has two owners"));
                    }
                }
            }
        }
        if let Some(slot) = covered.iter().position(|c| !c) {
            return Err(format!("slot {slot} has no owner"));
        }
        for i in self.answering() {
            let Some(Role {
                master: Some(master),
                ..
            }) = agreed.nodes.get(&self.ids[i])
            else {
                continue;
            };
            let master_answers = self.answering().any(|m| self.ids[m] == *master);
            let replication = self.nodes[i]
                .command(&[b"INFO", b"replication"])
                .map(|r| r.text())
                .map_err(|e| format!("port {}: {e}", self.nodes[i].port))?;
            if master_answers
                && !replication
                    .lines()
                    .any(|l| l.trim() == "master_link_status:up")
            {
                return Err(format!(
                    "the replica on port {} has no link to its master",
                    self.nodes[i].port
                ));
            }
        }
        Ok(agreed)
    }
}

/// A slot on its way from one master to another: see `RedisCluster::begin_migration`.
pub struct Migration<'a> {
    cluster: &'a RedisCluster,
    slot: u16,
    source: usize,
    target: usize,
}

impl Migration<'_> {
    pub fn slot(&self) -> u16 {
        self.slot
    }

    /// The master the slot leaves.
    pub fn source(&self) -> &RedisServer {
        &self.cluster.nodes[self.source]
    }

    /// The master the slot goes to.
    pub fn target(&self) -> &RedisServer {
        &self.cluster.nodes[self.target]
    }

    /// Moves the keys the source still has in the slot to the target (`CLUSTER
    /// GETKEYSINSLOT`, `MIGRATE ... KEYS`, 100 at a time); returns how many moved.
    pub fn move_keys(&self) -> usize {
        self.move_keys_at_most(usize::MAX)
    }

    /// As `move_keys`, stopping after about `limit` keys (whole batches of up to 100), so
    /// that a slot can stay split between the two masters for a while.
    pub fn move_keys_at_most(&self, limit: usize) -> usize {
        let source = self.source();
        let target = self.target();
        let slot = self.slot.to_string();
        let timeout = scaled(Duration::from_secs(5)).as_millis().to_string();
        let port = target.port.to_string();
        let mut moved = 0;
        while moved < limit {
            let batch = (limit - moved).min(100).to_string();
            let keys = source.call(&[
                b"CLUSTER",
                b"GETKEYSINSLOT",
                slot.as_bytes(),
                batch.as_bytes(),
            ]);
            let keys: Vec<Vec<u8>> = keys.items().iter().map(Reply::bytes).collect();
            if keys.is_empty() {
                break;
            }
            let mut args: Vec<&[u8]> = vec![
                b"MIGRATE",
                b"127.0.0.1",
                port.as_bytes(),
                b"",
                b"0",
                timeout.as_bytes(),
                b"KEYS",
            ];
            args.extend(keys.iter().map(Vec::as_slice));
            // OK, or NOKEY when the keys went meanwhile (expired, deleted).
            source.call(&args);
            moved += keys.len();
        }
        moved
    }

    /// Moves the remaining keys, then gives the slot to the target (`CLUSTER SETSLOT slot
    /// NODE`, on the target, the source, then the other masters) and returns once all
    /// running nodes agree.
    pub fn finish(self) {
        self.move_keys();
        let cluster = self.cluster;
        let slot = self.slot.to_string();
        let target_id = cluster.ids[self.target].as_bytes();
        let others = cluster
            .shards
            .iter()
            .map(|s| s[0])
            .filter(|&m| m != self.source && m != self.target && cluster.nodes[m].is_running());
        for node in [self.target, self.source].into_iter().chain(others) {
            cluster.nodes[node].call(&[
                b"CLUSTER",
                b"SETSLOT",
                slot.as_bytes(),
                b"NODE",
                target_id,
            ]);
        }
        let target = cluster.ids[self.target].clone();
        let slot = self.slot;
        wait_for("the slot's new owner is agreed", patience(), || {
            let agreed = cluster.agreement()?;
            match agreed.nodes.get(&target) {
                Some(Role {
                    master: None,
                    slots,
                }) if slots.iter().any(|&(a, b)| a <= slot && slot <= b) => Ok(()),
                _ => Err(format!("slot {slot} is not the target's yet")),
            }
        });
    }
}

/// The port of a node's cluster bus (its `--cluster-port`).
fn bus_port(node: &RedisServer) -> u16 {
    let i = node
        .extra
        .iter()
        .position(|a| a == "--cluster-port")
        .unwrap();
    node.extra[i + 1].parse().unwrap()
}

/// The slot of `key`, computed as Redis does (CRC16 of the key, or of the first non-empty
/// `{...}` in it, modulo 16384), without asking a node.
pub fn key_slot(key: &[u8]) -> u16 {
    let hashed = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            let len = rest.iter().position(|&b| b == b'}')?;
            (len > 0).then(|| &rest[..len])
        })
        .unwrap_or(key);
    let mut crc: u16 = 0;
    for &byte in hashed {
        crc ^= (byte as u16) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % SLOTS
}
