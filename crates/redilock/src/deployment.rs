//! Where a client's Redis lives, and the one place that decides which server holds a lock's
//! keys and how to connect to it. Today: one server, over TCP (`redis://`), TLS (`rediss://`)
//! or a unix socket (`unix://`). The transports, the wake-up subscriber and the cleanup task
//! all connect through a [`Deployment`].

use crate::error::{from_redis, io_error_in, Error, Result};
use crate::options::Options;
use crate::tls;
use redis::ConnectionAddr;

/// One standalone Redis server.
#[derive(Clone)]
pub(crate) struct Deployment {
    client: redis::Client,
    /// The server's address for messages (never the URL: it may hold a password).
    address: String,
    /// For `rediss://`: how the direct connections do their handshake.
    tls: Option<tls::Connector>,
}

impl Deployment {
    /// Parses `url`: `redis://[user[:password]@]host[:port][/db]`, the same with `rediss://`,
    /// or `unix:///path/to/socket[?db=N]`; reads the TLS files `options` name.
    pub(crate) fn from_url(url: &str, options: &Options) -> Result<Deployment> {
        let invalid_url = |_| {
            Error::InvalidArgument(format!(
                "invalid Redis URL '{}' (expected redis://[user:password@]host[:port][/db], the same with rediss://, or unix:///path)",
                redact_url(url)
            ))
        };
        // TCP_NODELAY: every lock call is a small request waiting for its reply.
        let info = redis::IntoConnectionInfo::into_connection_info(url)
            .map_err(invalid_url)?
            .set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true));
        let (client, tls) = match info.addr() {
            ConnectionAddr::TcpTls { host, insecure, .. } => {
                let (connector, certificates) = tls::configure(host, *insecure, options)?;
                let client = redis::Client::build_with_tls(info, certificates).map_err(|err| {
                    Error::InvalidArgument(format!("unusable TLS certificates: {err}"))
                })?;
                (client, Some(connector))
            }
            _ if options.tls_ca_file.is_some() || options.tls_client_cert.is_some() => {
                return Err(Error::InvalidArgument(format!(
                    "TLS certificate files are set, but the URL '{}' is not rediss://",
                    redact_url(url)
                )))
            }
            _ => (redis::Client::open(info).map_err(invalid_url)?, None),
        };
        Ok(Deployment {
            address: client.get_connection_info().addr().to_string(),
            client,
            tls,
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

    /// For `rediss://`: what a direct connection's handshake needs.
    pub(crate) fn tls(&self) -> Option<&tls::Connector> {
        self.tls.as_ref()
    }

    /// Classifies a failure to connect: a refused TLS handshake is [`Error::Tls`]. (A TLS
    /// handshake the redis crate makes has no timeout of its own, so when it does not end in
    /// time, only the message can say that it may be the cause.)
    pub(crate) fn connect_error(&self, err: &redis::RedisError) -> Error {
        match (tls::rustls_error_in(err), &self.tls) {
            (Some(tls_error), Some(_)) => tls::rustls_failed(&self.address, tls_error),
            (None, Some(_)) if err.is_timeout() => Error::Connection(format!(
                "redis at {} did not answer in time while connecting over TLS: is it a TLS port?",
                self.address
            )),
            _ => self.exchange_error(err, true),
        }
    }

    /// Classifies a failed exchange, `first` on its connection. A TLS port cuts a client that
    /// does not speak TLS off, maybe after a TLS alert (which is no RESP): on a plain
    /// connection's first exchange, the message says what that may mean.
    pub(crate) fn exchange_error(&self, err: &redis::RedisError, first: bool) -> Error {
        let plain_tcp = matches!(
            self.client.get_connection_info().addr(),
            ConnectionAddr::Tcp(..)
        );
        let cut_off_or_garbled = err.kind() == redis::ErrorKind::Parse
            || io_error_in(err).is_some_and(|err| {
                use std::io::ErrorKind::*;
                matches!(
                    err.kind(),
                    ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof
                )
            });
        match from_redis(err, &self.address) {
            Error::Connection(message) if first && plain_tcp && cut_off_or_garbled => {
                Error::Connection(format!(
                    "{message}; the server did not answer as Redis does: is it a TLS port? Then use rediss://"
                ))
            }
            error => error,
        }
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
    use std::io::ErrorKind;

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
    fn a_plain_connection_cut_off_or_garbled_at_once_may_have_reached_a_tls_port() {
        let deployment = Deployment::from_url("redis://127.0.0.1:1", &Options::default()).unwrap();
        let reset = redis::RedisError::from(std::io::Error::from(ErrorKind::ConnectionReset));
        let tls_alert = redis::parse_redis_value(b"\x15\x03\x03\x00\x02\x02\x46").unwrap_err();
        for err in [reset, tls_alert] {
            let first = deployment.exchange_error(&err, true);
            assert!(
                first
                    .message()
                    .ends_with("is it a TLS port? Then use rediss://"),
                "{first}"
            );
            let later = deployment.exchange_error(&err, false);
            assert!(!later.message().contains("TLS"), "{later}");
        }
    }

    #[test]
    fn bad_urls_do_not_echo_passwords() {
        let err = Deployment::from_url("redis://u:hunter2@[bad", &Options::default())
            .err()
            .unwrap();
        assert!(matches!(err, Error::InvalidArgument(_)));
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
