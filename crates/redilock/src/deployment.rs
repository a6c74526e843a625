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

/// The URL as it was given, for messages, with what may be a password masked, whether or
/// not it parses: what sits between the first `:` and the last `@` of the part after the
/// scheme (`user:password@`), and the value of a `pass` (or `password`) query parameter (`unix://…?pass=`).
/// Control characters are escaped, so the message stays one line.
pub(crate) fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (&url[..scheme.len() + 3], rest),
        None => ("", url),
    };
    let rest = match rest.rsplit_once('@') {
        Some((credentials, host)) => match credentials.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => rest.to_string(),
        },
        None => rest.to_string(),
    };
    let rest = match rest.split_once('?') {
        Some((path, query)) => {
            let masked: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key @ ("pass" | "password"), _)) => format!("{key}=***"),
                    _ => pair.to_string(),
                })
                .collect();
            format!("{path}?{}", masked.join("&"))
        }
        None => rest,
    };
    format!("{scheme}{rest}")
        .chars()
        .flat_map(|c| match c.is_control() {
            true => c.escape_default().collect::<Vec<_>>(),
            false => vec![c],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact_url("redis://u:secret@h:1/0"), "redis://u:***@h:1/0");
        assert_eq!(redact_url("redis://:secret@h"), "redis://:***@h");
        assert_eq!(redact_url("redis://h:6379"), "redis://h:6379");
        assert_eq!(redact_url("redis://user@h"), "redis://user@h");
        assert_eq!(redact_url("redis://u:p@ss:w/rd@h/0"), "redis://u:***@h/0");
        assert_eq!(
            redact_url("unix:///run/redis.sock?db=2&pass=secret"),
            "unix:///run/redis.sock?db=2&pass=***"
        );
    }

    #[test]
    fn what_does_not_parse_is_shown_with_its_password_masked() {
        assert_eq!(redact_url("u:secret@h:6379"), "u:***@h:6379");
        assert_eq!(redact_url("localhost:6379"), "localhost:6379");
        assert_eq!(redact_url("redis://u:secret@[::1"), "redis://u:***@[::1");
        assert_eq!(redact_url("redis://h\n:1"), "redis://h\\n:1");
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
