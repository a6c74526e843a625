//! Test harness: real `redis-server` processes on free loopback ports, each in its own
//! temporary folder, stopped when dropped. Tests never touch a Redis on 6379.
//! Besides single servers: a Redis Cluster ([`RedisCluster`]) and a primary with replicas
//! watched by Sentinels ([`Sentinels`]).

pub mod cluster;
pub mod proxy;
mod resp;
pub mod sentinel;
pub mod tls;

pub use cluster::{key_slot, Migration, RedisCluster};
pub use sentinel::{Secured, Sentinels};

use std::net::TcpListener;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub struct RedisServer {
    /// Its TCP port: a TLS one for a server started by `start_tls`.
    pub port: u16,
    dir: PathBuf,
    extra: Vec<String>,
    /// `--tls-*` arguments: it listens for TLS only.
    tls: Option<Vec<String>>,
    /// Runs as a Sentinel (`redis-server DIR/sentinel.conf --sentinel`).
    sentinel: bool,
    child: Option<Child>,
    /// SIGSTOPped by `pause` and not yet resumed.
    paused: AtomicBool,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        Self::start_with(&[])
    }

    /// Starts a server with extra `redis-server` arguments (e.g. `["--requirepass", "x"]`).
    pub fn start_with(extra: &[&str]) -> RedisServer {
        Self::start_configured(|_| extra.iter().map(|s| s.to_string()).collect())
    }

    /// Starts a server with extra arguments made for it: `args` is called with the server's
    /// own folder for each port tried, so it may name files there or pick other free ports
    /// afresh (e.g. `--cluster-config-file` and `--cluster-port`).
    pub fn start_configured(args: impl Fn(&Path) -> Vec<String>) -> RedisServer {
        Self::start_listening(&args, None, false)
    }

    /// Starts a server that takes TLS connections only, with `certificates`' server
    /// certificate; with `client_certificates_required`, clients must present one `ca` signed.
    /// Its unix socket stays plain, for `cli`.
    pub fn start_tls(
        certificates: &tls::TestCertificates,
        client_certificates_required: bool,
    ) -> RedisServer {
        let auth_clients = if client_certificates_required {
            "yes"
        } else {
            "no"
        };
        Self::start_listening(
            &|_| Vec::new(),
            Some(tls_args(certificates, auth_clients)),
            false,
        )
    }

    /// Starts a server (`tls`: `--tls-*` arguments, for TLS only; `sentinel`: as a Sentinel)
    /// with the extra arguments `args` makes for its folder, on the first free port that works.
    pub(crate) fn start_listening(
        args: &dyn Fn(&Path) -> Vec<String>,
        tls: Option<Vec<String>>,
        sentinel: bool,
    ) -> RedisServer {
        static STARTED: AtomicU32 = AtomicU32::new(0);
        for _ in 0..20 {
            let port = free_port();
            // The count keeps folders apart even when a port comes round again while a killed
            // server still owns its folder (and, say, its cluster configuration).
            let dir = std::env::temp_dir().join(format!(
                "redilock-test-{}-{}-{port}",
                std::process::id(),
                STARTED.fetch_add(1, Ordering::SeqCst)
            ));
            std::fs::create_dir_all(&dir).unwrap();
            let mut server = RedisServer {
                port,
                extra: args(&dir),
                dir,
                tls: tls.clone(),
                sentinel,
                child: None,
                paused: AtomicBool::new(false),
            };
            if server.spawn() {
                return server;
            }
        }
        panic!("could not start redis-server on a free port (is redis-server installed? run scripts/setup)");
    }

    /// Starts a replica of `primary` and returns once it has the primary's data and follows
    /// its writes.
    pub fn start_replica_of(primary: &RedisServer) -> RedisServer {
        Self::start_replica_via(primary, primary.port)
    }

    /// Starts a replica of `primary` that reaches it at `port` (a proxy in front of it, say),
    /// and returns once it follows the primary's writes: its link is up and the primary
    /// counts it among its replicas (ROLE lists it, WAIT counts its acknowledgements).
    pub fn start_replica_via(primary: &RedisServer, port: u16) -> RedisServer {
        Self::start_replica_listening(primary, port, &[], None)
    }

    /// As `start_replica_via`, with extra arguments (e.g. `--masterauth`) and `--tls-*` ones
    /// (as `start_listening`'s).
    pub(crate) fn start_replica_listening(
        primary: &RedisServer,
        port: u16,
        extra: &[String],
        tls: Option<Vec<String>>,
    ) -> RedisServer {
        let mut args = vec!["--replicaof".into(), "127.0.0.1".into(), port.to_string()];
        args.extend_from_slice(extra);
        let replica = Self::start_listening(&|_| args.clone(), tls, false);
        let online = format!("port={},state=online", replica.port);
        wait_until("the replica follows its primary", || {
            let has_link = replica.cli(&["INFO", "replication"]);
            has_link
                .lines()
                .any(|line| line.trim() == "master_link_status:up")
                && primary.cli(&["INFO", "replication"]).contains(&online)
        });
        replica
    }

    /// Makes a replica a primary of its own, as a failover does (`REPLICAOF NO ONE`).
    pub fn promote(&self) {
        assert_eq!(
            self.cli(&["REPLICAOF", "NO", "ONE"]),
            "OK",
            "promote the replica"
        );
    }

    /// `redis://127.0.0.1:PORT`, or `rediss://…` for a TLS server.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    pub fn socket_path(&self) -> PathBuf {
        self.dir.join("redis.sock")
    }

    /// The server's own folder (its `--dir`), removed on drop.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the server process runs: started and not killed (it may be paused).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Sends one command over the unix socket (authenticated as `cli` is) and reads the
    /// reply; arguments and replies are binary-safe.
    pub(crate) fn command(&self, args: &[&[u8]]) -> std::io::Result<resp::Reply> {
        let mut connection = resp::Connection::open(&self.socket_path())?;
        if let Some(password) = self.password() {
            connection.call(&[b"AUTH", password.as_bytes()])?.ok()?;
        }
        connection.call(args)
    }

    /// As `command`, for a command that must succeed.
    pub(crate) fn call(&self, args: &[&[u8]]) -> resp::Reply {
        let shown = || {
            args.iter()
                .map(|a| String::from_utf8_lossy(a))
                .collect::<Vec<_>>()
                .join(" ")
        };
        match self.command(args).and_then(|reply| reply.ok()) {
            Ok(reply) => reply,
            Err(e) => panic!("{} on port {}: {e}", shown(), self.port),
        }
    }

    /// Runs a command through redis-cli (over the unix socket for a TLS server) and returns
    /// its output, trimmed.
    pub fn cli(&self, args: &[&str]) -> String {
        let server = match self.tls {
            Some(_) => [
                "-s".to_string(),
                self.socket_path().to_str().unwrap().to_string(),
            ],
            None => ["-p".to_string(), self.port.to_string()],
        };
        let out = Command::new("redis-cli")
            .args(server)
            .arg("--no-auth-warning")
            .args(self.auth_args())
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Kills the server (SIGKILL), as a crash would. A paused server is resumed first.
    pub fn kill(&mut self) {
        // SIGKILL ends a stopped process too, but SIGCONT first costs nothing and leaves no
        // doubt (e.g. under a tracer); the flag is cleared for `restart`.
        if self.paused.swap(false, Ordering::SeqCst) {
            if let Some(child) = &self.child {
                unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGCONT) };
            }
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (empty: no persistence).
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.spawn() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not come back on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Freezes the server (SIGSTOP), as a long GC pause, a swapped-out or overloaded host
    /// would: connections are accepted by the kernel and requests queue up, but nothing is
    /// answered. Returns once the process is stopped. `kill` and `Drop` resume it first.
    pub fn pause(&self) {
        let pid = self.pid();
        assert_eq!(
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGSTOP) },
            0,
            "SIGSTOP redis-server"
        );
        self.paused.store(true, Ordering::SeqCst);
        wait_for_state(pid, true);
    }

    /// Thaws a server frozen by `pause` (SIGCONT); it then answers what queued up meanwhile.
    pub fn resume(&self) {
        let pid = self.pid();
        assert_eq!(
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGCONT) },
            0,
            "SIGCONT redis-server"
        );
        self.paused.store(false, Ordering::SeqCst);
        wait_for_state(pid, false);
    }

    /// Whether the server is paused (by `pause`, not yet resumed).
    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::SeqCst)
    }

    fn password(&self) -> Option<&str> {
        let i = self.extra.iter().position(|a| a == "--requirepass")?;
        Some(&self.extra[i + 1])
    }

    fn auth_args(&self) -> Vec<String> {
        match self.password() {
            Some(password) => vec!["-a".into(), password.into()],
            None => vec![],
        }
    }

    fn spawn(&mut self) -> bool {
        let port = self.port.to_string();
        let listen = match &self.tls {
            Some(_) => vec!["--port", "0", "--tls-port", &port],
            None => vec!["--port", &port],
        };
        let mut command = Command::new("redis-server");
        if self.sentinel {
            // A Sentinel needs a configuration file it can rewrite, named first; a restarted
            // one finds in it what it had learnt.
            let config = self.dir.join("sentinel.conf");
            if !config.exists() {
                std::fs::write(&config, "").unwrap();
            }
            command.arg(config).arg("--sentinel");
        }
        let child = command
            .args(listen)
            .args(self.tls.iter().flatten())
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            // A replica is served at once, not after the default 5 s of waiting for others.
            .args(["--repl-diskless-sync-delay", "0"])
            .args([
                "--unixsocket",
                self.socket_path().to_str().unwrap(),
                "--unixsocketperm",
                "700",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(mut child) = child else { return false };
        let deadline = Instant::now() + scaled(Duration::from_secs(5));
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return false; // port taken meanwhile, or bad arguments
            }
            // Its own unix socket, not the port: another server may have taken the port
            // meanwhile (this one then exits), and would answer there. Redis opens the socket
            // after binding the port, so an answer on it means the port is this server's.
            // An answer, not just a connection: a cluster node binds its bus port after the
            // socket and exits if that port is taken; any reply (even -NOAUTH) comes after.
            if let Ok(stream) = UnixStream::connect(self.socket_path()) {
                if resp::Connection::from(stream).call(&[b"PING"]).is_ok() {
                    self.child = Some(child);
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `--tls-*` arguments of a server with `certificates`' server certificate, which asks clients
/// for a certificate `ca` signed as `auth_clients` says (`yes`, `optional`, `no`).
pub(crate) fn tls_args(certificates: &tls::TestCertificates, auth_clients: &str) -> Vec<String> {
    let path = |p: PathBuf| p.to_str().unwrap().to_string();
    vec![
        "--tls-cert-file".into(),
        path(certificates.server_cert()),
        "--tls-key-file".into(),
        path(certificates.server_key()),
        "--tls-ca-cert-file".into(),
        path(certificates.ca()),
        "--tls-auth-clients".into(),
        auth_clients.into(),
    ]
}

/// `tls_args` (client certificates optional) of a server that also talks TLS to other
/// servers, for replication (`--tls-replication`), presenting `certificates`' client
/// certificate: the server certificate is for servers only.
pub(crate) fn tls_peer_args(certificates: &tls::TestCertificates) -> Vec<String> {
    let path = |p: PathBuf| p.to_str().unwrap().to_string();
    let mut args = tls_args(certificates, "optional");
    args.extend([
        "--tls-replication".into(),
        "yes".into(),
        "--tls-client-cert-file".into(),
        path(certificates.client_cert()),
        "--tls-client-key-file".into(),
        path(certificates.client_key()),
    ]);
    args
}

/// Waits (up to 5 s) until the process is stopped or running again, as `/proc/PID/stat` says;
/// signals are delivered asynchronously. Without `/proc` (not Linux), returns at once.
fn wait_for_state(pid: u32, stopped: bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return;
        };
        // "PID (COMM) STATE ...": COMM may hold spaces or parentheses, so take the last ')'.
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next());
        if matches!(state, Some('T') | Some('t')) == stopped {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!(
        "redis-server (pid {pid}) did not become {}",
        if stopped { "stopped" } else { "running" }
    );
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A time bound of a test, stretched by `REDILOCK_TEST_TIME_SCALE` (default 1) on a slow or
/// loaded machine. Bounds check that something happens promptly; they are never what the
/// test waits for.
pub fn scaled(bound: Duration) -> Duration {
    let scale = std::env::var("REDILOCK_TEST_TIME_SCALE")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| *s >= 1.0)
        .unwrap_or(1.0);
    bound.mul_f64(scale)
}

/// Polls `condition` until it holds; fails the test after a generous limit.
pub fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(
            start.elapsed() < scaled(Duration::from_secs(20)),
            "never: {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Polls `check` until it returns a value; fails the test after `bound` (scaled), with the
/// last reason `check` gave for not being there yet.
pub(crate) fn wait_for<T>(
    what: &str,
    bound: Duration,
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    let start = Instant::now();
    loop {
        match check() {
            Ok(value) => return value,
            Err(why) => assert!(
                start.elapsed() < scaled(bound),
                "never: {what} (after {:?}: {why})",
                start.elapsed()
            ),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The tokens queued for lock `name` on `server`, first in line first.
pub fn queue(server: &RedisServer, name: &str) -> Vec<String> {
    let key = server.cli(&["--scan", "--pattern", &format!("redilock:queue:*:{name}")]);
    if key.is_empty() {
        return Vec::new();
    }
    let listed = server.cli(&["LRANGE", &key, "0", "-1"]);
    listed.lines().map(str::to_string).collect()
}
