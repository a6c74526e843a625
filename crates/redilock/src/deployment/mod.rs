//! Where a client's Redis lives, and the one place that decides which server a call goes to:
//! one server (`redis://`, `rediss://`, `unix://`), the primary that Sentinel names
//! (`redis+sentinel://`), or the master of a Redis Cluster that serves the lock's slot
//! (`redis+cluster://`). The transports, the wake-up subscriber and the cleanup task all
//! reach Redis through a [`Deployment`]; it learns where things are by asking through them
//! (see [`crate::transport::routing`]), and forgets what a failure shows to be out of date.

mod cluster;
mod sentinel;
mod server;

use crate::error::{Error, Result};
use crate::options::Options;
use crate::protocol::calls::Call;
use crate::transport::routing::{NodeSender, Redirect};
use cluster::Cluster;
use redis::FromRedisValue;
use sentinel::Sentinel;
pub(crate) use server::Server;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::watch;

/// Cheap to clone: clones share what they learned (the primary, the slot map).
#[derive(Clone)]
pub(crate) enum Deployment {
    Single(Server),
    Sentinel(Arc<Sentinel>),
    Cluster(Arc<Cluster>),
}

/// Where a call goes after a redirection or a refusal that says it did not run.
pub(crate) enum Next {
    /// To this server (a Redis Cluster MOVED).
    To(Server),
    /// To this server, after `ASKING` (a slot being migrated).
    Asking(Server),
    /// Wherever the deployment routes it, after a short pause (a failover or a migration
    /// under way).
    Later,
    /// Nowhere: the refusal is the call's result.
    Fail,
}

impl Deployment {
    /// Parses `url`: a single server's URL (see [`Server::from_url`]),
    /// `redis+sentinel://[user:password@]host[:port][,host[:port]...]/PRIMARY_NAME[/db]`, or
    /// `redis+cluster://[user:password@]host:port[,host:port...]`, each also with `rediss+`.
    pub(crate) fn from_url(url: &str, options: &Options) -> Result<Deployment> {
        let scheme = url.split_once("://").map_or("", |(scheme, _)| scheme);
        Ok(match scheme {
            "redis+sentinel" | "rediss+sentinel" => {
                Deployment::Sentinel(Arc::new(Sentinel::from_url(url, options)?))
            }
            "redis+cluster" | "rediss+cluster" => {
                Deployment::Cluster(Arc::new(Cluster::from_url(url, options)?))
            }
            _ => Deployment::Single(Server::from_url(url, options)?),
        })
    }

    /// The server a call for `slot` goes to (`None`: any server would do), asking `via` for
    /// the deployment's layout when it is not known, by `deadline`.
    pub(crate) async fn server_for(
        &self,
        slot: Option<u16>,
        via: &impl NodeSender,
        deadline: Instant,
    ) -> Result<Server> {
        match self {
            Deployment::Single(server) => Ok(server.clone()),
            Deployment::Sentinel(sentinel) => sentinel.primary(via, deadline).await,
            Deployment::Cluster(cluster) => cluster.master_for(slot, via, deadline).await,
        }
    }

    /// The servers on which a client listens for wake-ups: every server that runs lock
    /// scripts, since a script counts the listeners of the server it runs on.
    pub(crate) async fn publishers(
        &self,
        via: &impl NodeSender,
        deadline: Instant,
    ) -> Result<Vec<Server>> {
        match self {
            Deployment::Cluster(cluster) => cluster.masters(via, deadline).await,
            _ => Ok(vec![self.server_for(None, via, deadline).await?]),
        }
    }

    /// Changes whenever the servers that [`Deployment::publishers`] names may have changed
    /// (a failover, a new master); `None` for a single server, which never changes.
    pub(crate) fn changes(&self) -> Option<watch::Receiver<u64>> {
        match self {
            Deployment::Single(_) => None,
            Deployment::Sentinel(sentinel) => Some(sentinel.changes()),
            Deployment::Cluster(cluster) => Some(cluster.changes()),
        }
    }

    /// What a call that `server` refused with `redirect` does next.
    pub(crate) fn redirected(&self, server: &Server, redirect: &Redirect) -> Result<Next> {
        Ok(match (self, redirect) {
            (Deployment::Cluster(cluster), _) => cluster.redirected(redirect)?,
            // A primary demoted by a failover refuses writes: ask the sentinels again.
            (Deployment::Sentinel(sentinel), Redirect::ReadOnly) => {
                sentinel.forget(server);
                Next::Later
            }
            _ => Next::Fail,
        })
    }

    /// `server` could not be reached or did not answer: where things are may have changed.
    pub(crate) fn unreachable(&self, server: &Server) {
        match self {
            Deployment::Single(_) => {}
            Deployment::Sentinel(sentinel) => sentinel.forget(server),
            Deployment::Cluster(cluster) => cluster.forget(server),
        }
    }

    /// The refusal of a call that does not go to a cluster node although it should: told
    /// in words that say what to do.
    pub(crate) fn misrouted(&self, error: Error, redirect: &Redirect) -> Error {
        match (self, redirect, error) {
            (
                Deployment::Single(_),
                Redirect::Moved { .. } | Redirect::Ask { .. },
                Error::Redis(m),
            ) => Error::Redis(format!(
                "{m} (the server is a Redis Cluster node: use a redis+cluster:// URL)"
            )),
            (_, _, error) => error,
        }
    }
}

/// The parts of a URL with several hosts (`scheme://[credentials@]host[:port],host[:port]
/// [/path][?query][#fragment]`), each a single-server URL's part.
struct HostList<'a> {
    /// `redis` or `rediss`.
    scheme: &'a str,
    /// `user:password@`, or empty.
    credentials: &'a str,
    hosts: Vec<&'a str>,
    /// From the `/` on, without the query and fragment.
    path: &'a str,
    query: Vec<(&'a str, &'a str)>,
    /// `#insecure`, or empty.
    fragment: &'a str,
}

impl<'a> HostList<'a> {
    fn parse(url: &'a str, form: &str) -> Result<HostList<'a>> {
        let invalid = |why: &str| {
            Error::InvalidArgument(format!(
                "invalid Redis URL '{}': {why} (expected {form})",
                redact_url(url)
            ))
        };
        let (scheme, rest) = url.split_once("://").ok_or_else(|| invalid("no scheme"))?;
        let scheme = scheme.split_once('+').map_or(scheme, |(plain, _)| plain);
        let (rest, fragment) = match rest.split_once('#') {
            Some((rest, fragment)) => (rest, &url[url.len() - fragment.len() - 1..]),
            None => (rest, ""),
        };
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, path) = match rest.find('/') {
            Some(at) => rest.split_at(at),
            None => (rest, ""),
        };
        let (credentials, hosts) = match authority.rfind('@') {
            Some(at) => (&authority[..=at], &authority[at + 1..]),
            None => ("", authority),
        };
        let hosts: Vec<&str> = hosts.split(',').collect();
        if hosts.iter().any(|host| host.is_empty()) {
            return Err(invalid("an empty host"));
        }
        let query = query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
            .collect();
        Ok(HostList {
            scheme,
            credentials,
            hosts,
            path,
            query,
            fragment,
        })
    }

    /// The single-server URL of `host`, with `credentials` and `path`.
    fn server_url(&self, credentials: &str, host: &str, path: &str) -> String {
        format!(
            "{}://{credentials}{host}{path}{}",
            self.scheme, self.fragment
        )
    }
}

/// Asks `servers` one after the other with `call` until `understood` makes something of a
/// reply, each with a share of what is left before `deadline` (so that one that does not
/// answer leaves time for the others). Otherwise, CONNECTION: `failed`, then each server's
/// answer.
async fn ask_in_turn<R: FromRedisValue, T>(
    servers: &[Server],
    call: &Call,
    via: &impl NodeSender,
    deadline: Instant,
    understood: impl Fn(&Server, R) -> Result<T>,
    failed: &str,
) -> Result<T> {
    let count = servers.len();
    let mut answers = Vec::new();
    for (asked, server) in servers.iter().enumerate() {
        let now = Instant::now();
        let share = now + deadline.saturating_duration_since(now) / (count - asked) as u32;
        let answer = match via.send_to::<R>(server, call, share).await {
            Ok(reply) => understood(server, reply),
            Err(failure) => Err(failure.error()),
        };
        match answer {
            Ok(understood) => return Ok(understood),
            Err(err) => answers.push(err.to_string()),
        }
    }
    Err(Error::Connection(format!(
        "{failed}: {}",
        answers.join("; ")
    )))
}

/// The URL as it was given, for messages, with what may be a password masked, whether or
/// not it parses: what sits between the first `:` and the last `@` of the part after the
/// scheme (`user:password@`), and the value of a `pass` (or `password`, `sentinel_password`)
/// query parameter. Control characters are escaped, so the message stays one line.
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
                    Some((key @ ("pass" | "password" | "sentinel_password"), _)) => {
                        format!("{key}=***")
                    }
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
        assert_eq!(
            redact_url("redis+sentinel://:p@a,b:2/m?sentinel_password=s"),
            "redis+sentinel://:***@a,b:2/m?sentinel_password=***"
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
    fn host_lists_split_into_single_server_urls() {
        let url = "rediss+sentinel://u:p%40ss@a:1,b,[::1]:3/main/2?sentinel_password=s#insecure";
        let list = HostList::parse(url, "").unwrap();
        assert_eq!(list.hosts, ["a:1", "b", "[::1]:3"]);
        assert_eq!(list.path, "/main/2");
        assert_eq!(list.query, [("sentinel_password", "s")]);
        assert_eq!(
            list.server_url(list.credentials, "b", "/2"),
            "rediss://u:p%40ss@b/2#insecure"
        );
        assert!(HostList::parse("redis+cluster://a:1,,b:2", "").is_err());
    }
}
