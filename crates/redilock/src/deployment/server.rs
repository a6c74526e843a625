//! One Redis server: how to connect to it (its address, credentials, database, TLS) and what
//! a failure to reach it means. Every deployment is made of these: the single server of a
//! `redis://` URL, the primary Sentinel names, the masters of a cluster.

use super::redact_url;
use crate::error::{from_redis, io_error_in, Error, Result};
use crate::options::Options;
use crate::tls;
use redis::{ConnectionAddr, ConnectionInfo};
use std::sync::Arc;

/// One server. Cheap to clone (each call is routed to a clone).
#[derive(Clone)]
pub(crate) struct Server(Arc<Inner>);

struct Inner {
    client: redis::Client,
    /// `host:port` or the socket's path, for messages and as the server's identity (never the
    /// URL: it may hold a password).
    address: String,
    /// For TLS: how the direct connections do their handshake, and what the redis crate's
    /// connections need for theirs.
    tls: Option<(tls::Connector, redis::TlsCertificates)>,
}

impl Server {
    /// Parses `url`: `redis://[user[:password]@]host[:port][/db]`, the same with `rediss://`,
    /// or `unix:///path/to/socket[?db=N]`; reads the TLS files `options` name.
    pub(crate) fn from_url(url: &str, options: &Options) -> Result<Server> {
        let invalid_url = |_| {
            Error::InvalidArgument(format!(
                "invalid Redis URL '{}' (expected redis://[user:password@]host[:port][/db], the same with rediss://, redis+sentinel://, redis+cluster://, or unix:///path)",
                redact_url(url)
            ))
        };
        // TCP_NODELAY: every lock call is a small request waiting for its reply.
        let info = redis::IntoConnectionInfo::into_connection_info(url)
            .map_err(invalid_url)?
            .set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true));
        let tls = match info.addr() {
            ConnectionAddr::TcpTls { host, insecure, .. } => {
                Some(tls::configure(host, *insecure, options)?)
            }
            _ if options.tls_ca_file.is_some() || options.tls_client_cert.is_some() => {
                return Err(Error::InvalidArgument(format!(
                    "TLS certificate files are set, but the URL '{}' is not rediss://",
                    redact_url(url)
                )))
            }
            _ => None,
        };
        Server::with(info, tls)
    }

    /// The server at `host:port` that this one's settings (credentials, database, TLS) apply
    /// to as well: a cluster node, the primary Sentinel names.
    pub(crate) fn at(&self, host: &str, port: u16) -> Result<Server> {
        let info = self.0.client.get_connection_info().clone();
        let (addr, tls) = match (info.addr(), &self.0.tls) {
            (ConnectionAddr::TcpTls { insecure, .. }, Some((connector, certificates))) => (
                ConnectionAddr::TcpTls {
                    host: host.to_string(),
                    port,
                    insecure: *insecure,
                    tls_params: None,
                },
                Some((connector.for_host(host)?, certificates.clone())),
            ),
            _ => (ConnectionAddr::Tcp(host.to_string(), port), None),
        };
        Server::with(info.set_addr(addr), tls)
    }

    fn with(
        info: ConnectionInfo,
        tls: Option<(tls::Connector, redis::TlsCertificates)>,
    ) -> Result<Server> {
        let client = match &tls {
            Some((_, certificates)) => redis::Client::build_with_tls(info, certificates.clone())
                .map_err(|err| {
                    Error::InvalidArgument(format!("unusable TLS certificates: {err}"))
                })?,
            None => redis::Client::open(info)
                .map_err(|err| Error::InvalidArgument(format!("invalid Redis address: {err}")))?,
        };
        Ok(Server(Arc::new(Inner {
            address: client.get_connection_info().addr().to_string(),
            client,
            tls,
        })))
    }

    /// The redis crate's client for the multiplexed and pub/sub connections.
    pub(crate) fn client(&self) -> &redis::Client {
        &self.0.client
    }

    pub(crate) fn info(&self) -> &ConnectionInfo {
        self.0.client.get_connection_info()
    }

    /// The server's address, for messages; two servers with the same address are one.
    pub(crate) fn address(&self) -> &str {
        &self.0.address
    }

    /// For `rediss://`: what a direct connection's handshake needs.
    pub(crate) fn tls(&self) -> Option<&tls::Connector> {
        self.0.tls.as_ref().map(|(connector, _)| connector)
    }

    /// Classifies a failure to connect: a refused TLS handshake is [`Error::Tls`]. (A TLS
    /// handshake the redis crate makes has no timeout of its own, so when it does not end in
    /// time, only the message can say that it may be the cause.)
    pub(crate) fn connect_error(&self, err: &redis::RedisError) -> Error {
        match (tls::rustls_error_in(err), &self.0.tls) {
            (Some(tls_error), Some(_)) => tls::rustls_failed(&self.0.address, tls_error),
            (None, Some(_)) if err.is_timeout() => Error::Connection(format!(
                "redis at {} did not answer in time while connecting over TLS: is it a TLS port?",
                self.address()
            )),
            _ => self.exchange_error(err, true),
        }
    }

    /// Classifies a failed exchange, `first` on its connection. A TLS port cuts a client that
    /// does not speak TLS off, maybe after a TLS alert (which is no RESP): on a plain
    /// connection's first exchange, the message says what that may mean.
    pub(crate) fn exchange_error(&self, err: &redis::RedisError, first: bool) -> Error {
        let plain_tcp = matches!(self.info().addr(), ConnectionAddr::Tcp(..));
        let cut_off_or_garbled = err.kind() == redis::ErrorKind::Parse
            || io_error_in(err).is_some_and(|err| {
                use std::io::ErrorKind::*;
                matches!(
                    err.kind(),
                    ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof
                )
            });
        match from_redis(err, &self.0.address) {
            Error::Connection(message) if first && plain_tcp && cut_off_or_garbled => {
                Error::Connection(format!(
                    "{message}; the server did not answer as Redis does: is it a TLS port? Then use rediss://"
                ))
            }
            error => error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::ErrorKind;

    #[test]
    fn a_plain_connection_cut_off_or_garbled_at_once_may_have_reached_a_tls_port() {
        let server = Server::from_url("redis://127.0.0.1:1", &Options::default()).unwrap();
        let reset = redis::RedisError::from(std::io::Error::from(ErrorKind::ConnectionReset));
        let tls_alert = redis::parse_redis_value(b"\x15\x03\x03\x00\x02\x02\x46").unwrap_err();
        for err in [reset, tls_alert] {
            let first = server.exchange_error(&err, true);
            assert!(
                first
                    .message()
                    .ends_with("is it a TLS port? Then use rediss://"),
                "{first}"
            );
            let later = server.exchange_error(&err, false);
            assert!(!later.message().contains("TLS"), "{later}");
        }
    }

    #[test]
    fn bad_urls_do_not_echo_passwords() {
        let err = Server::from_url("redis://u:hunter2@[bad", &Options::default())
            .err()
            .unwrap();
        assert!(matches!(err, Error::InvalidArgument(_)));
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
