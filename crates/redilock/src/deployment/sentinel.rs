//! A primary that Redis Sentinel names, followed across failovers: the client asks the
//! sentinels where the primary is before its first call, and again after a call found it
//! unreachable or demoted (a READONLY refusal), so the same client locks again once a replica
//! is promoted. (The redis crate's own Sentinel client asks once and keeps that answer.)

use super::{ask_in_turn, HostList, Server};
use crate::error::{Error, Result};
use crate::options::Options;
use crate::protocol::calls;
use crate::transport::routing::NodeSender;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;
use tokio::sync::watch;

const FORM: &str = "redis+sentinel://[user:password@]host[:port][,host[:port]...]/PRIMARY_NAME[/db][?sentinel_username=..&sentinel_password=..]";

/// Sentinel's port when a host names none.
const SENTINEL_PORT: u16 = 26379;

pub(crate) struct Sentinel {
    /// The name the sentinels monitor the primary under.
    name: String,
    sentinels: Vec<Server>,
    /// The primary's settings (credentials, database, TLS), at the first sentinel's address.
    template: Server,
    primary: Mutex<Option<Server>>,
    /// The sentinel asked first: the one after the last that named a primary which then
    /// failed, so that one sentinel with an old answer does not keep the client on it.
    first: AtomicUsize,
    /// Bumped when the primary changes.
    changes: watch::Sender<u64>,
}

impl Sentinel {
    pub(crate) fn from_url(url: &str, options: &Options) -> Result<Sentinel> {
        let list = HostList::parse(url, FORM)?;
        let invalid = |why: String| {
            Error::InvalidArgument(format!(
                "invalid Redis URL '{}': {why} (expected {FORM})",
                super::redact_url(url)
            ))
        };
        let mut segments = list.path.split('/').skip(1);
        let name = match segments.next() {
            Some(name) if !name.is_empty() => name,
            _ => return Err(invalid("no primary name".into())),
        };
        let db = segments.next().unwrap_or("0");
        if db.parse::<u16>().is_err() || segments.next().is_some() {
            return Err(invalid(format!("'{db}' is no database number")));
        }
        let mut sentinel_credentials = String::new();
        for (key, value) in &list.query {
            match *key {
                "sentinel_username" => sentinel_credentials.insert_str(0, value),
                "sentinel_password" => sentinel_credentials.push_str(&format!(":{value}")),
                _ => return Err(invalid(format!("unknown parameter '{key}'"))),
            }
        }
        if !sentinel_credentials.is_empty() {
            sentinel_credentials.push('@');
        }
        let sentinels = list
            .hosts
            .iter()
            .map(|host| {
                let host = with_default_port(host);
                Server::from_url(&list.server_url(&sentinel_credentials, &host, ""), options)
            })
            .collect::<Result<Vec<_>>>()?;
        let first_host = with_default_port(list.hosts[0]);
        let template = Server::from_url(
            &list.server_url(list.credentials, &first_host, &format!("/{db}")),
            options,
        )?;
        Ok(Sentinel {
            name: name.to_string(),
            sentinels,
            template,
            primary: Mutex::new(None),
            first: AtomicUsize::new(0),
            changes: watch::Sender::new(0),
        })
    }

    /// The primary, asking the sentinels when it is not known (each in turn, with a share of
    /// the time left, until one names it).
    pub(crate) async fn primary(&self, via: &impl NodeSender, deadline: Instant) -> Result<Server> {
        if let Some(primary) = self.lock_primary().clone() {
            return Ok(primary);
        }
        let first = self.first.load(Ordering::Relaxed) % self.sentinels.len();
        let (earlier, from_first) = self.sentinels.split_at(first);
        let in_turn: Vec<Server> = from_first.iter().chain(earlier).cloned().collect();
        let named = |sentinel: &Server, address: Option<(String, u16)>| match address {
            Some((host, port)) => self.template.at(&host, port),
            None => Err(Error::Connection(format!(
                "{} does not know it",
                sentinel.address()
            ))),
        };
        let ask = calls::primary_address(&self.name);
        let failed = format!("no sentinel named the primary '{}'", self.name);
        let primary = ask_in_turn(&in_turn, &ask, via, deadline, named, &failed).await?;
        self.learned(&primary);
        Ok(primary)
    }

    /// Forgets `server` as the primary: the next call asks the sentinels again, starting
    /// with another one.
    pub(crate) fn forget(&self, server: &Server) {
        let mut primary = self.lock_primary();
        if primary
            .as_ref()
            .is_some_and(|p| p.address() == server.address())
        {
            *primary = None;
            self.first.fetch_add(1, Ordering::Relaxed);
            self.changes.send_modify(|n| *n += 1);
        }
    }

    pub(crate) fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn learned(&self, primary: &Server) {
        let mut known = self.lock_primary();
        if known
            .as_ref()
            .is_none_or(|p| p.address() != primary.address())
        {
            *known = Some(primary.clone());
            self.changes.send_modify(|n| *n += 1);
        }
    }

    fn lock_primary(&self) -> MutexGuard<'_, Option<Server>> {
        self.primary.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `host` with Sentinel's port when it names none (`h`, `[::1]`).
fn with_default_port(host: &str) -> String {
    let has_port = match host.rsplit_once(':') {
        Some((before, _)) => !before.starts_with('[') || before.ends_with(']'),
        None => false,
    };
    match has_port {
        true => host.to_string(),
        false => format!("{host}:{SENTINEL_PORT}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinel_urls_name_the_primary_its_database_and_the_sentinels() {
        let options = Options::default();
        let url = "redis+sentinel://u:pw@a,b:2,[::1]/main/3?sentinel_password=s";
        let sentinel = Sentinel::from_url(url, &options).unwrap();
        assert_eq!(sentinel.name, "main");
        let addresses: Vec<_> = sentinel.sentinels.iter().map(Server::address).collect();
        assert_eq!(addresses, ["a:26379", "b:2", "::1:26379"]);
        let settings = sentinel.template.info().redis_settings();
        assert_eq!((settings.db(), settings.password()), (3, Some("pw")));
        let asked = sentinel.sentinels[0].info().redis_settings();
        assert_eq!((asked.db(), asked.password()), (0, Some("s")));
    }

    #[test]
    fn a_sentinel_url_without_a_primary_name_is_refused() {
        for url in [
            "redis+sentinel://a,b",
            "redis+sentinel://a/",
            "redis+sentinel://a/m/x",
            "redis+sentinel://:secret@a/m?nope=1",
        ] {
            let err = Sentinel::from_url(url, &Options::default()).err().unwrap();
            assert!(matches!(err, Error::InvalidArgument(_)), "{url}: {err}");
            assert!(!err.to_string().contains("secret"), "{err}");
        }
    }
}
