//! One call, sent to the server its deployment routes it to, and sent on when that server
//! redirects it (Redis Cluster's MOVED and ASK) or refuses it in a way that says it did not
//! run and may soon (TRYAGAIN, CLUSTERDOWN, a demoted primary's READONLY), all within the
//! call's deadline. Written once for both transports over their per-server connections.

use crate::deployment::{Deployment, Next, Server};
use crate::error::{Error, Result};
use crate::protocol::calls::{self, Call};
use redis::{FromRedisValue, ServerErrorKind};
use std::future::Future;
use std::time::{Duration, Instant};

/// A refusal that says the call did not run, and where or when it may.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Redirect {
    /// The slot is served by `host:port` now.
    Moved { host: String, port: u16 },
    /// The slot is being migrated to `host:port`, which has the keys already moved.
    Ask { host: String, port: u16 },
    /// Not now: the keys of the slot are half-migrated, or the cluster is failing over.
    TryAgain,
    /// The server is a replica: a primary was demoted.
    ReadOnly,
    /// A script stopped half-way in a slot being migrated away, at a key it had deleted
    /// itself: what it wrote before stands. The lock scripts avoid that, but one that was
    /// sent may be sent again (it did what it would do again), once the migration is over.
    HalfRun,
}

impl Redirect {
    fn of(err: &redis::RedisError) -> Option<Redirect> {
        let node = || {
            let (address, _slot) = err.redirect_node()?;
            let (host, port) = address.rsplit_once(':')?;
            Some((
                host.trim_matches(['[', ']']).to_string(),
                port.parse().ok()?,
            ))
        };
        match err.kind() {
            redis::ErrorKind::Server(ServerErrorKind::Moved) => {
                node().map(|(host, port)| Redirect::Moved { host, port })
            }
            redis::ErrorKind::Server(ServerErrorKind::Ask) => {
                node().map(|(host, port)| Redirect::Ask { host, port })
            }
            redis::ErrorKind::Server(
                ServerErrorKind::TryAgain
                | ServerErrorKind::ClusterDown
                | ServerErrorKind::MasterDown,
            ) => Some(Redirect::TryAgain),
            redis::ErrorKind::Server(ServerErrorKind::ReadOnly) => Some(Redirect::ReadOnly),
            _ if err
                .detail()
                .is_some_and(|d| d.starts_with("Script attempted to access a non local key")) =>
            {
                Some(Redirect::HalfRun)
            }
            _ => None,
        }
    }
}

/// Why a call to one server failed.
pub(crate) enum Failure {
    /// Refused without running: the call may go elsewhere, or later. The error is what the
    /// caller hears when it does not.
    Redirected(Redirect, Error),
    Failed(Error),
}

impl Failure {
    /// Classifies `err` from `server` (`first`: on its connection's first exchange).
    pub(crate) fn of(server: &Server, err: &redis::RedisError, first: bool) -> Failure {
        let error = server.exchange_error(err, first);
        match Redirect::of(err) {
            Some(redirect) => Failure::Redirected(redirect, error),
            None => Failure::Failed(error),
        }
    }

    pub(crate) fn error(self) -> Error {
        match self {
            Failure::Redirected(_, error) | Failure::Failed(error) => error,
        }
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        Failure::Failed(error)
    }
}

/// Sends a call to one given server.
pub(crate) trait NodeSender {
    fn send_to<T: FromRedisValue>(
        &self,
        server: &Server,
        call: &Call,
        deadline: Instant,
    ) -> impl Future<Output = std::result::Result<T, Failure>>;

    /// Waits a little, the way this transport waits (the calling thread sleeps; a task yields).
    fn pause(&self, pause: Duration) -> impl Future<Output = ()>;
}

/// The first pause before a refused call is sent again; it doubles up to [`LAST_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(5);
const LAST_PAUSE: Duration = Duration::from_millis(100);

/// MOVED and ASK redirections followed per call, at most: more means the nodes disagree for
/// now. (Waits are bounded by the call's deadline.)
const MAX_REDIRECTIONS: usize = 16;

/// Sends `call` where `deployment` routes it, through `nodes`, and on where it is redirected,
/// by `deadline`.
pub(crate) async fn routed<T: FromRedisValue>(
    deployment: &Deployment,
    nodes: &impl NodeSender,
    call: &Call,
    deadline: Instant,
) -> Result<T> {
    let mut pause = FIRST_PAUSE;
    let mut next: Option<(Server, bool)> = None;
    let mut redirections = 0;
    loop {
        let (server, asking) = match next.take() {
            Some(target) => target,
            None => (
                deployment.server_for(call.slot, nodes, deadline).await?,
                false,
            ),
        };
        let asked = match asking.then(|| calls::asking(call)).flatten() {
            Some(asked) => nodes.send_to(&server, &asked, deadline).await,
            None => nodes.send_to(&server, call, deadline).await,
        };
        let (redirect, error) = match asked {
            Ok(reply) => return Ok(reply),
            Err(Failure::Failed(error)) => {
                if matches!(error, Error::Connection(_)) {
                    deployment.unreachable(&server);
                }
                return Err(error);
            }
            Err(Failure::Redirected(redirect, error)) => (redirect, error),
        };
        let go_on = Instant::now() < deadline && (call.idempotent || redirect != Redirect::HalfRun);
        match deployment.redirected(&server, &redirect)? {
            _ if !go_on => return Err(error),
            Next::To(_) | Next::Asking(_) if redirections == MAX_REDIRECTIONS => return Err(error),
            Next::To(server) => {
                redirections += 1;
                next = Some((server, false));
            }
            // A call that cannot be sent after ASKING waits for the migration to end.
            Next::Asking(server) if calls::asking(call).is_some() => {
                redirections += 1;
                next = Some((server, true));
            }
            Next::Asking(_) | Next::Later => {
                if Instant::now() + pause >= deadline {
                    return Err(error);
                }
                nodes.pause(pause).await;
                pause = (pause * 2).min(LAST_PAUSE);
            }
            Next::Fail => return Err(deployment.misrouted(error, &redirect)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(reply: &[u8]) -> redis::RedisError {
        match redis::parse_redis_value(reply).unwrap() {
            redis::Value::ServerError(err) => err.into(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn redirections_say_where_to_go() {
        assert_eq!(
            Redirect::of(&refusal(b"-MOVED 3999 127.0.0.1:6381\r\n")),
            Some(Redirect::Moved {
                host: "127.0.0.1".into(),
                port: 6381
            })
        );
        assert_eq!(
            Redirect::of(&refusal(b"-ASK 3999 [::1]:6382\r\n")),
            Some(Redirect::Ask {
                host: "::1".into(),
                port: 6382
            })
        );
        assert_eq!(
            Redirect::of(&refusal(
                b"-TRYAGAIN Multiple keys request during rehashing of slot\r\n"
            )),
            Some(Redirect::TryAgain)
        );
        assert_eq!(
            Redirect::of(&refusal(b"-CLUSTERDOWN The cluster is down\r\n")),
            Some(Redirect::TryAgain)
        );
        assert_eq!(
            Redirect::of(&refusal(
                b"-READONLY You can't write against a read only replica.\r\n"
            )),
            Some(Redirect::ReadOnly)
        );
        assert_eq!(
            Redirect::of(&refusal(
                b"-ERR Script attempted to access a non local key in a cluster node script: x\r\n"
            )),
            Some(Redirect::HalfRun)
        );
        assert_eq!(Redirect::of(&refusal(b"-NOPERM no\r\n")), None);
    }
}
