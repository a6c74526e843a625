//! The command line, parsed by clap, and the tables its help shares with the man pages
//! (examples/man.rs includes this file, so it names its sibling modules through `super`).

use super::{duration, exit};
use clap::{ArgAction, Args, Parser, Subcommand};
use redilock::{Options, ReplicaAcks, TlsClientCert, Wait};
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// The exit codes and what they mean, for `--help`, `run --help` and the man pages. A line
/// break in a meaning is where the help text wraps it.
pub const EXIT_CODES: &[(&str, &str)] = &[
    (
        "0-255",
        "run: the command's own exit status (128+N when it was killed by signal N)",
    ),
    ("0", "lock, unlock, extend, state: done"),
    (
        "64",
        "usage: bad option, duration or Redis URL, or a TLS file that cannot be used",
    ),
    (
        "69",
        "Redis unavailable: unreachable, timed out, refused the command (NOAUTH, READONLY…),\n\
         or the TLS handshake failed; or too few replicas acknowledged the lock, which was released;\n\
         or, with 3 or more --url, too few masters answered (the message names each one)",
    ),
    ("70", "internal error"),
    (
        "75",
        "not acquired: the lock is held by another owner (--conflict-exit-code N: N, silently)",
    ),
    (
        "79",
        "lock lost: run stopped the command (SIGTERM, then SIGKILL after --kill-after);\n\
         unlock/extend: the token does not hold the lock (expired, released, taken over)",
    ),
    ("126", "run: the command cannot be executed"),
    ("127", "run: the command was not found"),
    (
        "128+N",
        "interrupted by signal N while waiting for the lock",
    ),
];

/// What `run` adds to its command's environment (run.rs sets them).
pub const COMMAND_ENVIRONMENT: &[(&str, &str)] = &[
    ("REDILOCK_NAME", "the lock's name"),
    ("REDILOCK_TOKEN", "the owner token that holds the lock"),
    (
        "REDILOCK_FENCE",
        "the fencing number, larger at every acquisition: pass it with each write",
    ),
];

/// Command lines worth copying, with what each does (empty: the line says it).
pub const EXAMPLES: &[(&str, &str)] = &[
    (
        "redilock run nightly-report -- ./report.sh",
        "one at a time across every host",
    ),
    (
        "redilock run --no-wait deploy -- make deploy",
        "skip when a deploy is already running",
    ),
    (
        "redilock run --no-wait --conflict-exit-code 0 report -- ./report.sh",
        "cron: skip, silently, when it runs elsewhere",
    ),
    (
        "redilock run --wait 10m --ttl 1m backup -- pg_dump -f /backup/db.sql app",
        "",
    ),
    (
        "token=$(redilock lock migrate --ttl 5m) && ./migrate && redilock unlock migrate \"$token\"",
        "",
    ),
    ("redilock state nightly-report --json", ""),
    (
        "REDIS_URL='redis://a:6379 redis://b:6379 redis://c:6379' redilock run report -- ./report.sh",
        "held on 2 of 3 independent masters",
    ),
];

/// `title:` and the rows of a table, aligned as clap aligns its own lists.
fn help_table(title: &str, rows: &[(&str, &str)]) -> String {
    let width = rows.iter().map(|(key, _)| key.len()).max().unwrap_or(0) + 2;
    let mut text = format!("{title}:");
    for (key, value) in rows {
        for (i, line) in value.lines().enumerate() {
            let key = if i == 0 { key } else { "" };
            text.push_str(&format!("\n  {key:<width$}{}", line.trim_start()));
        }
    }
    text
}

fn examples_help() -> String {
    let mut text = String::from("Examples:");
    for (command, what) in EXAMPLES {
        // What it does goes in a column of its own, under a command too long to share a line.
        let line = match (what.is_empty(), command.len() <= 46) {
            (true, _) => command.to_string(),
            (false, true) => format!("{command:<46}  {what}"),
            (false, false) => format!("{command}\n  {:<46}  {what}", ""),
        };
        text.push_str(&format!("\n  {line}"));
    }
    text
}

fn exit_codes_help() -> String {
    help_table("Exit codes", EXIT_CODES)
}

fn top_after_help() -> String {
    format!("{}\n\n{}", examples_help(), exit_codes_help())
}

fn run_after_help() -> String {
    format!(
        "{}\n\n{}",
        help_table("The command's environment", COMMAND_ENVIRONMENT),
        exit_codes_help()
    )
}

#[derive(Parser)]
#[command(
    name = "redilock",
    version,
    about = "A distributed lock on Redis: flock(1) for a whole fleet",
    long_about = "A distributed lock on Redis: flock(1) for a whole fleet

redilock runs a command while it holds a lock in Redis, so that one process at a time runs it \
across every host that uses the same Redis server; or it takes, extends and releases a lock \
for a shell script.

Given several independent Redis masters (--url 3 or more times), it holds the lock when a \
quorum of them (a majority unless --quorum says) granted it: locks go on working while a quorum of \
them answers. Waiters then take the lock in no set order, not in turn.

A lock lives for its TTL unless renewed or released, so the lock of a holder that crashed \
frees itself. run renews its lock while the command runs; lock, extend and unlock leave \
that to the script. Waiters queue in Redis and take the lock in turn, as soon as it is \
released.

Durations are a whole number and a unit: 500ms, 30s, 5m, 1h.",
    after_help = top_after_help()
)]
pub struct Cli {
    #[command(flatten)]
    pub connection: ConnectionArgs,

    /// Say nothing on stderr while waiting, nor when the lock is not acquired (other failures
    /// are still said)
    #[arg(long, short, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run a command while holding NAME: renewed while it runs, released when it exits
    ///
    /// Waits for the lock (forever unless --wait or --no-wait), runs the command, renews the
    /// lock at a third of its TTL while the command runs, releases it once the command has
    /// exited, and exits with the command's exit status.
    ///
    /// The command runs in redilock's process group, with the lock's name, token and fencing
    /// number in its environment. SIGINT, SIGTERM and SIGHUP sent to redilock are passed on to
    /// it; a signal while still waiting ends the wait, and the command never starts.
    ///
    /// When the lock is lost while the command runs (Redis out of reach until the TTL ran out,
    /// or the key deleted), the command gets SIGTERM, then SIGKILL --kill-after later, and
    /// redilock exits with 79.
    #[command(after_help = run_after_help())]
    Run(RunArgs),

    /// Take NAME and print the owner token, for unlock and extend (nothing renews it)
    ///
    /// The token goes to standard output, and nothing else does. Nothing renews the lock: give
    /// it a TTL that covers the work, or extend it between steps.
    Lock {
        /// The lock's name (its Redis key)
        name: String,
        #[command(flatten)]
        acquire: AcquireArgs,
    },

    /// Release NAME if TOKEN holds it
    ///
    /// When TOKEN does not hold the lock (it expired, was released, or belongs to another
    /// owner), the lock is left as it is and the exit code is 79.
    Unlock {
        /// The lock's name (its Redis key)
        name: String,
        /// The owner token that `lock` printed
        token: String,
    },

    /// Set the TTL of NAME to --ttl from now, if TOKEN holds it
    ///
    /// There is no default TTL: Redis does not keep the TTL a lock was taken with, so --ttl is
    /// required rather than a default that would shorten a longer lock without a word. The TTL
    /// is set, not added: one shorter than what is left shortens the lock.
    Extend {
        /// The lock's name (its Redis key)
        name: String,
        /// The owner token that `lock` printed
        token: String,
        /// The lock's new TTL, counted from now (500ms, 30s, 5m, 1h)
        #[arg(long, value_parser = duration::parse, value_name = "DURATION")]
        ttl: Duration,
    },

    /// Tell whether NAME is free or held, and for how much longer
    ///
    /// Prints "free", "held, 12 s left" or "held, no expiry". Anyone may ask: no token is
    /// needed, and nothing is changed.
    #[command(alias = "status")]
    State {
        /// The lock's name (its Redis key)
        name: String,
        /// Print {"name":…,"held":…,"remaining_ms":…} (null: free, or held without expiry)
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
pub struct RunArgs {
    /// The lock's name (its Redis key)
    pub name: String,

    #[command(flatten)]
    pub acquire: AcquireArgs,

    /// When the lock is lost, how long the command gets to stop after SIGTERM before SIGKILL
    #[arg(long, default_value = "10s", value_parser = duration::parse, value_name = "DURATION")]
    pub kill_after: Duration,

    /// The command to run and its arguments (after `--`, or after NAME)
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub command: Vec<OsString>,
}

/// Which Redis, and how: the options every command takes.
#[derive(Args)]
pub struct ConnectionArgs {
    /// Redis to use: redis://[user:password@]host[:port][/db], the same with rediss:// for TLS
    /// (#insecure at the end skips verifying the server's certificate),
    /// unix:///path/to/socket, redis+sentinel://host[:port],host[:port]/PRIMARY_NAME[/db]
    /// (Sentinel), or redis+cluster://host:port,host:port (Redis Cluster); the last two also
    /// as rediss+sentinel:// and rediss+cluster://. Given 3 or more times (in REDIS_URL:
    /// separated by spaces), a quorum of independent masters, each one server (redis://,
    /// rediss:// or unix://)
    #[arg(
        long,
        visible_alias = "redis",
        global = true,
        env = "REDIS_URL",
        hide_env_values = true,
        default_value = "redis://127.0.0.1:6379",
        action = ArgAction::Append
    )]
    pub url: Vec<String>,

    /// With 3 or more --url: how many masters must grant a lock and its renewals; more than
    /// half of them [default: a majority]
    #[arg(long, global = true, env = "REDILOCK_QUORUM", value_name = "N")]
    pub quorum: Option<usize>,

    /// With 3 or more --url: how long one master may take to answer before it counts as
    /// failed for that call, at most the command timeout [default: a tenth of the TTL, from
    /// 50ms to the command timeout]
    #[arg(
        long,
        global = true,
        env = "REDILOCK_NODE_TIMEOUT",
        value_parser = duration::parse,
        value_name = "DURATION"
    )]
    pub node_timeout: Option<Duration>,

    /// rediss://: trust the certificate authorities of this PEM file to sign the server's
    /// certificate, instead of the system's root certificates
    #[arg(long, global = true, env = "REDILOCK_TLS_CA", value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,

    /// rediss://: present this certificate (PEM) to a server that asks for one (mutual TLS);
    /// needs --tls-key
    #[arg(
        long,
        global = true,
        env = "REDILOCK_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,

    /// rediss://: the private key (PEM) of --tls-cert
    #[arg(
        long,
        global = true,
        env = "REDILOCK_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,

    /// How many replicas must acknowledge each lock write before it counts: auto (one when the
    /// server has replicas, else none), 0 (off) or a number; a lock too few acknowledged is
    /// released, with exit code 69
    #[arg(
        long,
        global = true,
        env = "REDILOCK_REPLICA_ACKS",
        value_name = "N|auto",
        default_value = "auto",
        value_parser = replica_acks
    )]
    pub replica_acks: ReplicaAcks,

    /// How long a lock write waits for the replicas' acknowledgements; under the command
    /// timeout [default: half the command timeout]
    #[arg(
        long,
        global = true,
        env = "REDILOCK_REPLICA_ACK_TIMEOUT",
        value_parser = duration::parse,
        value_name = "DURATION"
    )]
    pub replica_ack_timeout: Option<Duration>,

    /// How long opening a connection to Redis may take, TLS handshake and authentication
    /// included [default: 2s]
    #[arg(
        long,
        global = true,
        env = "REDILOCK_CONNECT_TIMEOUT",
        value_parser = duration::parse,
        value_name = "DURATION"
    )]
    pub connect_timeout: Option<Duration>,

    /// How long one Redis command may take to answer: what a paused or unreachable Redis costs
    /// each call [default: 2s]
    #[arg(
        long,
        global = true,
        env = "REDILOCK_COMMAND_TIMEOUT",
        value_parser = duration::parse,
        value_name = "DURATION"
    )]
    pub command_timeout: Option<Duration>,
}

impl ConnectionArgs {
    /// The client's options; the library checks them (and reads the TLS files) when the client
    /// is made.
    pub fn options(&self) -> Options {
        let tls_client_cert = match (&self.tls_cert, &self.tls_key) {
            (Some(cert_file), Some(key_file)) => Some(TlsClientCert {
                cert_file: cert_file.clone(),
                key_file: key_file.clone(),
            }),
            _ => None, // clap requires both or neither
        };
        let defaults = Options::default();
        Options {
            connect_timeout: self.connect_timeout.unwrap_or(defaults.connect_timeout),
            command_timeout: self.command_timeout.unwrap_or(defaults.command_timeout),
            replica_acks: self.replica_acks,
            replica_ack_timeout: self.replica_ack_timeout,
            tls_ca_file: self.tls_ca.clone(),
            tls_client_cert,
            quorum: self.quorum,
            node_timeout: self.node_timeout,
            ..defaults
        }
    }
}

/// `auto` or a number of replicas.
fn replica_acks(text: &str) -> Result<ReplicaAcks, String> {
    match text {
        "auto" => Ok(ReplicaAcks::Auto),
        count => count
            .parse()
            .map(ReplicaAcks::Count)
            .map_err(|_| "expected auto, or a number of replicas (0: off)".to_string()),
    }
}

/// How to take a lock: shared by `run` and `lock`.
#[derive(Args)]
pub struct AcquireArgs {
    /// How long the lock lives unless renewed or released (500ms, 30s, 5m, 1h)
    #[arg(long, default_value = "30s", value_parser = duration::parse, value_name = "DURATION")]
    pub ttl: Duration,

    /// Give up after waiting this long [default: wait until acquired]
    #[arg(long, value_parser = duration::parse, value_name = "DURATION")]
    pub wait: Option<Duration>,

    /// Give up at once when the lock is held
    #[arg(long, conflicts_with = "wait")]
    pub no_wait: bool,

    /// Exit with N, silently, when the lock is not acquired (like flock -E) [default: 75,
    /// with a message]
    #[arg(long, value_name = "N")]
    pub conflict_exit_code: Option<u8>,
}

impl AcquireArgs {
    /// The exit code when the lock is not acquired.
    pub fn conflict_code(&self) -> u8 {
        self.conflict_exit_code.unwrap_or(exit::NOT_ACQUIRED)
    }

    /// Whether a lock not acquired ends without a message: the caller asked for quiet, or
    /// chose the exit code (it handles the conflict, as cron jobs with `flock -n -E 0` do).
    pub fn silent_conflict(&self, quiet: bool) -> bool {
        quiet || self.conflict_exit_code.is_some()
    }

    pub fn wait(&self) -> Wait {
        match (self.no_wait, self.wait) {
            (true, _) => Wait::TryOnce,
            (false, Some(limit)) => Wait::AtMost(limit),
            (false, None) => Wait::Forever,
        }
    }
}
