//! # redilock — a distributed lock on Redis
//!
//! `lock(name, ttl)` returns a lease (a secret token and a fencing number); `unlock(name,
//! token)` releases only for the owner; the TTL is mandatory, so a crashed holder's lock
//! expires, and `extend` or auto-renewal ([`Client::keep_alive`]) keep a long holder's lease. Waiters are woken by the
//! release itself (pub/sub) instead of polling, and still re-check at a retry interval and at
//! the holder's expiry.
//!
//! Two Rust clients share one engine: [`Client`] (async, tokio) and [`blocking::Client`].
//! The C ABI (`include/redilock.h`) is a thin layer over the blocking client, in [`ffi`].
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

mod background;
pub mod blocking;
mod cancel;
mod cleanup;
mod client;
mod commands;
mod connection;
mod direct;
mod error;
pub mod ffi;
mod flag;
mod lease;
mod options;
mod scripts;
mod token;
mod transport;
mod unwind;
mod wakeups;
mod wire;

pub use cancel::CancelSignal;
pub use client::{Client, LockStatus};
pub use error::{Error, Result};
pub use lease::{KeepAlive, Lease, Renewal};
pub use options::{Options, Wait, MAX_TTL};
pub use token::{Token, TOKEN_CHARS};
