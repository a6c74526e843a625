//! # redilock — a distributed lock on Redis
//!
//! `lock(name, ttl)` returns a lease (a secret token and a fencing number); `unlock(name,
//! token)` releases only for the owner; the TTL is mandatory, so a crashed holder's lock
//! expires, and `extend` or auto-renewal ([`Client::auto_renew`]) keep a long holder's lease.
//! Waiters queue in Redis and are woken by the release itself (pub/sub) instead of polling.
//!
//! Two clients share one engine: [`Client`] (async, tokio) and [`blocking::Client`]. The C
//! ABI (`include/redilock.h`) is a thin layer over the blocking client, in the `redilock-ffi`
//! crate; the command-line tool is `redilock-cli`.
//!
//! ```no_run
//! use redilock::{blocking, Options, Wait};
//! use std::time::Duration;
//!
//! let client = blocking::Client::new("redis://127.0.0.1:6379", Options::default())?;
//! let lease = client.lock("orders:42", Some(Duration::from_secs(10)), Wait::Forever)?;
//! // … only one process anywhere runs this; send lease.fence along with each write …
//! client.unlock("orders:42", &lease.token)?;
//! # Ok::<(), redilock::Error>(())
//! ```
//!
//! The layers, bottom up: [`protocol`](crate) (scripts, keys, calls; no I/O), the deployment
//! (which server holds a lock's keys), the transports (the calling thread's connections and
//! the shared multiplexed one), the engine (each operation written once), the background work
//! (wake-up subscriber, auto-renewal, cleanup of failed calls), and the two clients.

#![warn(missing_docs)]
// Pure Rust: the C boundary and its unsafe code live in the redilock-ffi crate.
#![forbid(unsafe_code)]

mod background;
pub mod blocking;
mod cancel;
mod cleanup;
mod client;
mod deployment;
mod engine;
mod error;
mod latch;
mod lease;
pub mod millis;
mod options;
mod protocol;
mod quorum;
mod renewal;
mod replication;
mod state;
mod tls;
mod token;
mod transport;
mod unwind;
mod wakeups;

pub use cancel::CancelSignal;
pub use client::Client;
pub use error::{Error, Result};
pub use lease::Lease;
pub use options::{LockOptions, Options, ReplicaAcks, TlsClientCert, Wait, MAX_TTL};
pub use renewal::{AutoRenew, Loss, Renewal};
pub use state::LockState;
pub use token::{Token, TOKEN_CHARS};
