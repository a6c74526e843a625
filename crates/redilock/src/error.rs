//! The one error type of the crate. Each variant maps to one stable C status (see `ffi`).

use std::fmt;

/// Why a lock operation did not succeed.
///
/// Messages name what went wrong in words a log reader understands and never contain a
/// password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The caller passed something unusable (empty name, zero TTL, …); nothing was sent.
    InvalidArgument(String),
    /// The lock is held by another owner and the wait ended (try-once or timeout).
    NotAcquired(String),
    /// The token does not hold the lock (expired, never held, or someone else's).
    NotOwner(String),
    /// The wait was cancelled through a [`crate::CancelSignal`] before the lock was taken.
    Cancelled(String),
    /// The client was closed: waits in progress end with it, and calls made afterwards get it.
    Closed(String),
    /// Redis could not be reached, the connection broke, or a reply did not come in time. The
    /// outcome of the call is unknown, but nothing is left held by it once Redis answers
    /// again: what an attempt may have taken is released by the client itself.
    Connection(String),
    /// Redis answered with an error reply (NOAUTH, NOPERM, READONLY, OOM, …).
    Redis(String),
    /// Fewer replicas acknowledged a lock write in time than [`crate::Options::replica_acks`]
    /// asks for: the lock was released, since a failover could lose it.
    NotReplicated(String),
    /// A `rediss://` connection could not be set up: the TLS handshake failed, or a
    /// certificate was refused (the server's by this client, or this client's by the server).
    /// Nothing was sent: it happens while connecting.
    Tls(String),
    /// A quorum client could not reach enough masters: more than N − quorum of them failed
    /// or did not answer in time, so whether the lock is free is unknown. The message names
    /// each master and its answer. Nothing is left held once they answer again. Distinct from
    /// [`Error::NotAcquired`], which means enough masters answered that the lock is held.
    QuorumUnavailable(String),
}

impl Error {
    /// The human-readable message without the variant name.
    pub fn message(&self) -> &str {
        match self {
            Error::InvalidArgument(m)
            | Error::NotAcquired(m)
            | Error::NotOwner(m)
            | Error::Cancelled(m)
            | Error::Closed(m)
            | Error::Connection(m)
            | Error::Redis(m)
            | Error::NotReplicated(m)
            | Error::Tls(m)
            | Error::QuorumUnavailable(m) => m,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for Error {}

/// Result alias used across the crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Classifies an error from the redis crate: error replies are `Redis`, everything else
/// (refused, no such socket, reset, timed out, unparsable) is `Connection`. `server` names the
/// address only, so credentials cannot leak into the message.
pub(crate) fn from_redis(err: &redis::RedisError, server: &str) -> Error {
    use redis::ErrorKind;
    match err.kind() {
        ErrorKind::Server(_) | ErrorKind::Extension | ErrorKind::AuthenticationFailed => {
            let code = err.code().unwrap_or("ERR");
            let detail = err.detail().unwrap_or("");
            Error::Redis(
                format!("redis at {server} replied with an error: {code} {detail}")
                    .trim_end()
                    .to_string(),
            )
        }
        // The redis crate counts a missing unix socket as a refusal; it is not one.
        _ if io_error_in(err).is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound) => Error::Connection(
            format!("connection to {server} failed: the socket does not exist (No such file or directory)"),
        ),
        _ if err.is_connection_refusal() => {
            Error::Connection(format!("connection to {server} refused"))
        }
        _ if err.is_timeout() => {
            Error::Connection(format!("redis at {server} did not answer in time"))
        }
        _ => Error::Connection(format!(
            "connection to {server} failed: {}",
            describe_io(err)
        )),
    }
}

/// The I/O error behind `err`, if one is. The redis crate keeps it behind an `Arc`, as the
/// source of the error.
pub(crate) fn io_error_in(err: &redis::RedisError) -> Option<&std::io::Error> {
    let source = std::error::Error::source(err)?;
    let shared = source.downcast_ref::<std::sync::Arc<dyn std::error::Error + Send + Sync>>()?;
    shared.downcast_ref()
}

/// The error's own text with any `redis://…` address removed (defence in depth: the redis
/// crate does not print URLs today, but a password must never reach a message).
fn describe_io(err: &redis::RedisError) -> String {
    err.to_string()
        .split_whitespace()
        .filter(|word| !word.contains("://"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection_error(connect: std::io::Result<std::os::unix::net::UnixStream>) -> Error {
        from_redis(&connect.unwrap_err().into(), "/the/socket")
    }

    #[test]
    fn a_missing_unix_socket_is_not_a_refusal() {
        let missing =
            std::env::temp_dir().join(format!("redilock-{}-none.sock", std::process::id()));
        let err = connection_error(std::os::unix::net::UnixStream::connect(missing));
        assert_eq!(
            err,
            Error::Connection(
                "connection to /the/socket failed: the socket does not exist (No such file or directory)".into()
            )
        );
    }

    #[test]
    fn a_socket_nobody_listens_on_is_refused() {
        let path = std::env::temp_dir().join(format!("redilock-{}-stale.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap()); // the file stays
        let err = connection_error(std::os::unix::net::UnixStream::connect(&path));
        let _ = std::fs::remove_file(&path);
        assert_eq!(
            err,
            Error::Connection("connection to /the/socket refused".into())
        );
    }
}
