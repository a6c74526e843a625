//! A primary `redis-server` with replicas, watched by Sentinel processes, all on free loopback
//! ports and stopped when dropped. Sentinels are `RedisServer`s run as `redis-server
//! DIR/sentinel.conf --sentinel` (a file of their own they rewrite), so they can be killed,
//! paused or restarted as servers can. `start_secured` makes them all TLS-only and/or
//! password-protected; the harness still reaches each over its plain unix socket.

use crate::resp::Reply;
use crate::tls::TestCertificates;
use crate::{scaled, tls_peer_args, wait_for, RedisServer};
use std::collections::BTreeMap;
use std::time::Duration;

/// The name the Sentinels know the primary by.
pub const MASTER_NAME: &str = "mymaster";

/// How long a primary may not answer before the Sentinels call it down and fail over
/// (`down-after-milliseconds`: 1 s, stretched by `REDILOCK_TEST_TIME_SCALE`).
pub fn down_after() -> Duration {
    scaled(Duration::from_secs(1))
}

/// How long forming or failing over may take before a test fails.
fn patience() -> Duration {
    Duration::from_secs(30)
}

/// How a group of [`Sentinels`] is secured; `Default`: not at all (plain TCP, no passwords).
#[derive(Clone, Copy, Default)]
pub struct Secured<'a> {
    /// TLS only, with these certificates: the primary, the replicas and the Sentinels take
    /// TLS connections only (a client certificate is asked for but optional), and talk TLS to
    /// each other (replication, Sentinels' links), presenting the client certificate.
    pub tls: Option<&'a TestCertificates>,
    /// The primary's and the replicas' `requirepass`, and their `masterauth` (a demoted
    /// primary replicates the promoted replica); the Sentinels know it as `auth-pass`.
    pub password: Option<&'a str>,
    /// The Sentinels' own `requirepass`, which they also use with each other
    /// (`sentinel-pass`).
    pub sentinel_password: Option<&'a str>,
}

pub struct Sentinels {
    // Sentinels first: dropped (stopped) before the servers they watch.
    sentinels: Vec<RedisServer>,
    /// The primary it started with, then the replicas.
    servers: Vec<RedisServer>,
    /// For `start_behind`: the port the Sentinels and replicas reach the first primary at,
    /// and that primary's own port.
    front: Option<(u16, u16)>,
    /// Everything listens for TLS only (`start_secured`).
    tls: bool,
    password: Option<String>,
    sentinel_password: Option<String>,
}

impl Sentinels {
    /// Starts a primary, `replicas` replicas of it and `sentinels` Sentinels watching it as
    /// `mymaster` (quorum: a majority of the Sentinels; down after 1 s, failover timeout 5 s,
    /// both scaled by `REDILOCK_TEST_TIME_SCALE`), and returns once every Sentinel knows the primary, every
    /// replica (linked) and every other Sentinel, and they can authorize a failover.
    pub fn start(replicas: usize, sentinels: usize) -> Sentinels {
        Self::start_secured(replicas, sentinels, Secured::default())
    }

    /// As `start`, with TLS and passwords as `secured` says; `url` then has the `rediss`
    /// scheme and the credentials. (A client of the TLS servers trusts `tls.ca()`.)
    /// The harness itself still reaches every process over its plain unix socket.
    pub fn start_secured(replicas: usize, sentinels: usize, secured: Secured) -> Sentinels {
        Self::launch(replicas, sentinels, &|port| port, secured)
    }

    /// As `start`, with the first primary behind the port `front` gives for its own (a fault
    /// proxy, to cut the replication link): the Sentinels monitor it there and the replicas
    /// replicate it from there, so the Sentinels never point the replicas elsewhere. The
    /// Sentinels then name that port as the primary's until a failover.
    pub fn start_behind(
        replicas: usize,
        sentinels: usize,
        front: &dyn Fn(u16) -> u16,
    ) -> Sentinels {
        Self::launch(replicas, sentinels, front, Secured::default())
    }

    fn launch(
        replicas: usize,
        sentinels: usize,
        front: &dyn Fn(u16) -> u16,
        secured: Secured,
    ) -> Sentinels {
        assert!(sentinels >= 1, "at least one Sentinel");
        let tls = secured.tls.map(tls_peer_args);
        let password_args = |password: Option<&str>, also: &[&str]| -> Vec<String> {
            let Some(password) = password else {
                return Vec::new();
            };
            std::iter::once("--requirepass")
                .chain(also.iter().copied())
                .flat_map(|option| [option.to_string(), password.to_string()])
                .collect()
        };
        let server_args = password_args(secured.password, &["--masterauth"]);
        let primary = RedisServer::start_listening(&|_| server_args.clone(), tls.clone(), false);
        let front = (front(primary.port), primary.port);
        let mut servers: Vec<RedisServer> = (0..replicas)
            .map(|_| {
                RedisServer::start_replica_listening(&primary, front.0, &server_args, tls.clone())
            })
            .collect();
        servers.insert(0, primary);
        let sentinel_args = password_args(secured.sentinel_password, &[]);
        let sentinels = (0..sentinels)
            .map(|_| RedisServer::start_listening(&|_| sentinel_args.clone(), tls.clone(), true))
            .collect();
        let group = Sentinels {
            sentinels,
            servers,
            front: Some(front).filter(|(seen, own)| seen != own),
            tls: secured.tls.is_some(),
            password: secured.password.map(str::to_string),
            sentinel_password: secured.sentinel_password.map(str::to_string),
        };
        let primary_port = front.0.to_string();
        let quorum = (group.sentinels.len() / 2 + 1).to_string();
        let down_after = down_after().as_millis().to_string();
        let failover_timeout = scaled(Duration::from_secs(5)).as_millis().to_string();
        let tilt_period = scaled(Duration::from_secs(5)).as_millis().to_string();
        for sentinel in &group.sentinels {
            // Quicker than the defaults (INFO every 10 s, hellos every 2 s, which also make a
            // returning old primary wait 8 s before it is made a replica), and out of TILT
            // after 5 s rather than 30 (a loaded machine or a paused Sentinel may trigger it).
            // Not kept in the configuration: a restarted Sentinel has the defaults again.
            sentinel.call(&[
                b"SENTINEL",
                b"DEBUG",
                b"info-period",
                b"1000",
                b"publish-period",
                b"500",
                b"tilt-period",
                tilt_period.as_bytes(),
            ]);
            if let Some(password) = secured.sentinel_password {
                // What it authenticates with to the other Sentinels (their `requirepass`).
                sentinel.call(&[
                    b"SENTINEL",
                    b"CONFIG",
                    b"SET",
                    b"sentinel-pass",
                    password.as_bytes(),
                ]);
            }
            sentinel.call(&[
                b"SENTINEL",
                b"MONITOR",
                MASTER_NAME.as_bytes(),
                b"127.0.0.1",
                primary_port.as_bytes(),
                quorum.as_bytes(),
            ]);
            let mut set: Vec<&[u8]> = vec![
                b"SENTINEL",
                b"SET",
                MASTER_NAME.as_bytes(),
                b"down-after-milliseconds",
                down_after.as_bytes(),
                b"failover-timeout",
                failover_timeout.as_bytes(),
                b"parallel-syncs",
                b"1",
            ];
            if let Some(password) = secured.password {
                set.extend([b"auth-pass".as_slice(), password.as_bytes()]);
            }
            sentinel.call(&set);
        }
        group.wait_until_settled();
        group
    }

    /// `redis+sentinel://127.0.0.1:S1,127.0.0.1:S2,.../mymaster`; for a group started
    /// secured, `rediss+sentinel://` with TLS and the passwords: the primary's as the URL's
    /// (`:PASSWORD@`), the Sentinels' as `?sentinel_password=`.
    pub fn url(&self) -> String {
        self.url_with(self.password.as_deref(), self.sentinel_password.as_deref())
    }

    /// As `url`, with these passwords instead of the group's own (e.g. wrong ones): the
    /// primary's and the Sentinels'; `None` leaves a password out.
    pub fn url_with(&self, password: Option<&str>, sentinel_password: Option<&str>) -> String {
        let scheme = match self.tls {
            true => "rediss+sentinel",
            false => "redis+sentinel",
        };
        let credentials = password
            .map(|p| format!(":{}@", percent_encoded(p)))
            .unwrap_or_default();
        let sentinels: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect();
        let query = sentinel_password
            .map(|p| format!("?sentinel_password={}", percent_encoded(p)))
            .unwrap_or_default();
        format!(
            "{scheme}://{credentials}{}/{MASTER_NAME}{query}",
            sentinels.join(",")
        )
    }

    pub fn master_name(&self) -> &str {
        MASTER_NAME
    }

    /// The Sentinel processes.
    pub fn sentinels(&self) -> &[RedisServer] {
        &self.sentinels
    }

    /// A Sentinel by index, to kill, pause or restart it (it keeps what it learnt).
    pub fn sentinel_mut(&mut self, index: usize) -> &mut RedisServer {
        &mut self.sentinels[index]
    }

    pub fn sentinel_ports(&self) -> Vec<u16> {
        self.sentinels.iter().map(|s| s.port).collect()
    }

    /// The data servers: the primary it started with, then the replicas.
    pub fn servers(&self) -> &[RedisServer] {
        &self.servers
    }

    /// The data server on `port` (e.g. to restart a killed primary, which the Sentinels then
    /// make a replica of the new one: `wait_until_settled`).
    pub fn server_mut(&mut self, port: u16) -> &mut RedisServer {
        let port = self.own_port(port);
        self.servers
            .iter_mut()
            .find(|s| s.port == port)
            .unwrap_or_else(|| panic!("no server on port {port}"))
    }

    /// The server the Sentinels name as primary now.
    pub fn primary(&self) -> &RedisServer {
        let port = self.own_port(self.current_primary_port());
        self.servers
            .iter()
            .find(|s| s.port == port)
            .unwrap_or_else(|| panic!("the Sentinels name port {port}, none of the servers"))
    }

    /// The running servers other than the primary the Sentinels name now (their replicas,
    /// once `wait_until_settled`).
    pub fn replicas(&self) -> Vec<&RedisServer> {
        let port = self.own_port(self.current_primary_port());
        self.servers
            .iter()
            .filter(|s| s.port != port && s.is_running())
            .collect()
    }

    /// The primary's port, as the first answering Sentinel says
    /// (`SENTINEL get-master-addr-by-name`).
    pub fn current_primary_port(&self) -> u16 {
        let sentinel = self
            .answering()
            .next()
            .expect("a running Sentinel that is not paused");
        primary_port_of(sentinel).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Kills the current primary (SIGKILL), as a crash would; returns its port.
    pub fn kill_primary(&mut self) -> u16 {
        let port = self.current_primary_port();
        self.server_mut(port).kill();
        port
    }

    /// Waits until every answering Sentinel names the same primary, not the one on
    /// `old_port`, and that server says it is a master (ROLE); returns its port.
    pub fn wait_for_failover(&self, old_port: u16) -> u16 {
        wait_for("the Sentinels fail over", patience(), || {
            let port = self.agreed_primary()?;
            if port == old_port {
                return Err(format!("the primary is still port {old_port}"));
            }
            self.says_master(port)?;
            Ok(port)
        })
    }

    /// Waits until the Sentinels agree on a primary that says it is one, every other running
    /// server is their replica of it with its link up, every Sentinel knows every other, and
    /// they can authorize a failover (`SENTINEL CKQUORUM`).
    pub fn wait_until_settled(&self) {
        wait_for("the Sentinels settle", patience(), || {
            let primary = self.agreed_primary()?;
            self.says_master(primary)?;
            let expected_replicas: Vec<u16> = self
                .servers
                .iter()
                .filter(|s| s.is_running() && s.port != self.own_port(primary))
                .map(|s| s.port)
                .collect();
            let sentinel_ports = self.sentinel_ports();
            for sentinel in self.answering() {
                let port = sentinel.port;
                let ask = |what: &[u8]| {
                    sentinel
                        .command(&[b"SENTINEL", what, MASTER_NAME.as_bytes()])
                        .and_then(Reply::ok)
                        .map_err(|e| format!("Sentinel {port}: {e}"))
                };
                let replicas = records(&ask(b"REPLICAS")?);
                for expected in &expected_replicas {
                    let Some(replica) = replicas
                        .iter()
                        .find(|r| r.get("port") == Some(&expected.to_string()))
                    else {
                        return Err(format!("Sentinel {port} does not know replica {expected}"));
                    };
                    if replica.get("flags").map(String::as_str) != Some("slave")
                        || replica.get("master-link-status").map(String::as_str) != Some("ok")
                        || replica.get("master-port") != Some(&primary.to_string())
                    {
                        return Err(format!("Sentinel {port} sees replica {replica:?}"));
                    }
                }
                let others = records(&ask(b"SENTINELS")?);
                for other in sentinel_ports.iter().filter(|&&p| p != port) {
                    if !others
                        .iter()
                        .any(|s| s.get("port") == Some(&other.to_string()))
                    {
                        return Err(format!("Sentinel {port} does not know Sentinel {other}"));
                    }
                }
                let quorum = ask(b"CKQUORUM")?.text();
                if !quorum.starts_with("OK") {
                    return Err(format!("Sentinel {port}: {quorum}"));
                }
            }
            Ok(())
        });
    }

    /// Sentinels that run and are not paused: they answer.
    fn answering(&self) -> impl Iterator<Item = &RedisServer> {
        self.sentinels
            .iter()
            .filter(|s| s.is_running() && !s.is_paused())
    }

    /// The server's own port, for the port the Sentinels name it by.
    fn own_port(&self, port: u16) -> u16 {
        match self.front {
            Some((seen, own)) if seen == port => own,
            _ => port,
        }
    }

    /// The primary's port all answering Sentinels name.
    fn agreed_primary(&self) -> Result<u16, String> {
        let mut agreed = None;
        for sentinel in self.answering() {
            let port = primary_port_of(sentinel)?;
            match agreed {
                None => agreed = Some(port),
                Some(p) if p == port => {}
                Some(p) => {
                    return Err(format!(
                        "Sentinels disagree: port {p}, and {port} for Sentinel {}",
                        sentinel.port
                    ))
                }
            }
        }
        agreed.ok_or_else(|| "no Sentinel answers".into())
    }

    /// Whether the server on `port` is running and says it is a master.
    fn says_master(&self, port: u16) -> Result<(), String> {
        let port = self.own_port(port);
        let server = self
            .servers
            .iter()
            .find(|s| s.port == port && s.is_running() && !s.is_paused())
            .ok_or_else(|| format!("no running server on port {port}"))?;
        let role = server
            .command(&[b"ROLE"])
            .map_err(|e| format!("ROLE on port {port}: {e}"))?;
        match role.items().first() {
            Some(role) if role.text() == "master" => Ok(()),
            _ => Err(format!("port {port} says {role:?}")),
        }
    }
}

/// The primary's port as `sentinel` names it.
fn primary_port_of(sentinel: &RedisServer) -> Result<u16, String> {
    let reply = sentinel
        .command(&[
            b"SENTINEL",
            b"GET-MASTER-ADDR-BY-NAME",
            MASTER_NAME.as_bytes(),
        ])
        .and_then(Reply::ok)
        .map_err(|e| format!("Sentinel {}: {e}", sentinel.port))?;
    reply
        .items()
        .get(1)
        .and_then(|port| port.text().parse().ok())
        .ok_or_else(|| format!("Sentinel {} names {reply:?}", sentinel.port))
}

/// `text` with every byte but URL-safe ones (RFC 3986's unreserved) as `%XX`.
fn percent_encoded(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `SENTINEL REPLICAS`/`SENTINELS` records: arrays of field, value, field, value...
fn records(reply: &Reply) -> Vec<BTreeMap<String, String>> {
    reply
        .items()
        .iter()
        .map(|record| {
            record
                .items()
                .chunks(2)
                .map(|pair| {
                    (
                        pair[0].text(),
                        pair.get(1).map(Reply::text).unwrap_or_default(),
                    )
                })
                .collect()
        })
        .collect()
}
