//! The command line, parsed by clap.

use crate::{duration, exit};
use clap::{Args, Parser, Subcommand};
use redilock::Wait;
use std::ffi::OsString;
use std::time::Duration;

/// The exit-code table, shown by `--help` and `run --help`.
macro_rules! exit_codes {
    () => {
        "Exit codes:
  0-255  run: the command's own exit status (128+N when it was killed by signal N)
  64     usage: bad option, duration or Redis URL
  69     Redis unavailable: unreachable, timed out, or refused the command (NOAUTH, READONLY…)
  70     internal error
  75     not acquired: the lock is held by another owner (--conflict-exit-code changes it)
  79     lock lost: run stopped the command (SIGTERM, then SIGKILL after --kill-after);
         unlock/extend: the token does not hold the lock (expired, released, taken over)
  126    run: the command cannot be executed
  127    run: the command was not found
  128+N  interrupted by signal N while waiting for the lock"
    };
}

#[derive(Parser)]
#[command(
    name = "redilock",
    version,
    about = "A distributed lock on Redis: flock(1) for a whole fleet",
    after_help = concat!(
        "Examples:
  redilock run nightly-report -- ./report.sh      one at a time across every host
  redilock run --no-wait deploy -- make deploy    skip when a deploy is already running
  redilock run --wait 10m --ttl 1m backup -- pg_dump -f /backup/db.sql app
  token=$(redilock lock migrate --ttl 5m) && ./migrate && redilock unlock migrate \"$token\"
  redilock state nightly-report --json

",
        exit_codes!()
    )
)]
pub struct Cli {
    /// Redis to use: redis://[user:password@]host[:port][/db] or unix:///path/to/socket
    #[arg(
        long,
        global = true,
        env = "REDIS_URL",
        hide_env_values = true,
        default_value = "redis://127.0.0.1:6379"
    )]
    pub url: String,

    /// No status line on stderr while waiting
    #[arg(long, short, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run a command while holding NAME: renewed while it runs, released when it exits
    #[command(after_help = concat!(
        "The command sees REDILOCK_NAME, REDILOCK_TOKEN and REDILOCK_FENCE (the fencing number) in
its environment and runs in redilock's process group. SIGINT, SIGTERM and SIGHUP sent to
redilock are passed on to it. redilock exits with the command's exit status once the lock is
released.

",
        exit_codes!()
    ))]
    Run(RunArgs),

    /// Take NAME and print the owner token, for unlock and extend (nothing renews it)
    Lock {
        /// The lock's name (its Redis key)
        name: String,
        #[command(flatten)]
        acquire: AcquireArgs,
    },

    /// Release NAME if TOKEN holds it
    Unlock {
        /// The lock's name (its Redis key)
        name: String,
        /// The owner token that `lock` printed
        token: String,
    },

    /// Reset the TTL of NAME to --ttl if TOKEN holds it
    Extend {
        /// The lock's name (its Redis key)
        name: String,
        /// The owner token that `lock` printed
        token: String,
        /// The new TTL
        #[arg(long, default_value = "30s", value_parser = duration::parse, value_name = "DURATION")]
        ttl: Duration,
    },

    /// Tell whether NAME is free or held, and for how much longer
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

    /// Exit code when the lock is not acquired
    #[arg(long, value_name = "N", default_value_t = exit::NOT_ACQUIRED)]
    pub conflict_exit_code: u8,
}

impl AcquireArgs {
    pub fn wait(&self) -> Wait {
        match (self.no_wait, self.wait) {
            (true, _) => Wait::TryOnce,
            (false, Some(limit)) => Wait::AtMost(limit),
            (false, None) => Wait::Forever,
        }
    }
}
