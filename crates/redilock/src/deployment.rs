//! Where a client's Redis lives, and the one place that decides which server holds a lock's
//! keys and how to connect to it. Today: one server, over TCP (`redis://`) or a unix socket
//! (`unix://`). The transports, the wake-up subscriber and the cleanup task all connect
//! through a [`Deployment`].

use crate::error::{Error, Result};

/// One standalone Redis server.
#[derive(Clone)]
pub(crate) struct Deployment {
    client: redis::Client,
    /// The server's address for messages (never the URL: it may hold a password).
    address: String,
}

impl Deployment {
    /// Parses `url`: `redis://[user[:password]@]host[:port][/db]` or
    /// `unix:///path/to/socket[?db=N]`.
    pub(crate) fn from_url(url: &str) -> Result<Deployment> {
        let invalid_url = |_| {
            Error::InvalidArgument(format!(
                "invalid Redis URL '{}' (expected redis://[user:password@]host[:port][/db] or unix:///path)",
                redact_url(url)
            ))
        };
        // TCP_NODELAY: every lock call is a small request waiting for its reply.
        let info = redis::IntoConnectionInfo::into_connection_info(url)
            .map_err(invalid_url)?
            .set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true));
        let client = redis::Client::open(info).map_err(invalid_url)?;
        Ok(Deployment {
            address: client.get_connection_info().addr().to_string(),
            client,
        })
    }

    /// The server every key lives on.
    pub(crate) fn server(&self) -> &redis::Client {
        &self.client
    }

    /// The server's address, for messages.
    pub(crate) fn address(&self) -> &str {
        &self.address
    }
}

/// The URL with any password replaced, for messages.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<unparsable>".into();
    };
    match rest.rsplit_once('@') {
        Some((credentials, host)) => {
            let user = credentials.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact_url("redis://u:secret@h:1/0"), "redis://u:***@h:1/0");
        assert_eq!(redact_url("redis://:secret@h"), "redis://:***@h");
        assert_eq!(redact_url("redis://h:6379"), "redis://h:6379");
        assert!(!redact_url("nonsense secret").contains("secret"));
    }

    #[test]
    fn bad_urls_do_not_echo_passwords() {
        let err = Deployment::from_url("redis://u:hunter2@[bad")
            .err()
            .unwrap();
        assert!(matches!(err, Error::InvalidArgument(_)));
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
