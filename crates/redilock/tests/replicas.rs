//! Replica acknowledgement: a primary and a replica on loopback. A lock write counts once the
//! replica has it (WAIT after the write, on the same connection), and one the replica cannot
//! acknowledge (paused) is released and reported; the failover that loses an unacknowledged
//! lock, with and without it.

use redilock::{
    blocking::Client, AutoRenew, Error, Loss, Options, ReplicaAcks, Token, Wait, MAX_TTL,
};
use redilock_test_harness::proxy::{Fault, FaultProxy};
use redilock_test_harness::{queue, scaled, wait_until, RedisServer};
use std::time::{Duration, Instant};

const TTL: Option<Duration> = Some(Duration::from_secs(60));

/// Long enough for a healthy replica to acknowledge on a loaded machine.
fn ack_timeout() -> Duration {
    scaled(Duration::from_secs(1))
}

/// Leaves a call's round trips (the write, the release after a shortfall, a script load)
/// four times WAIT's timeout on top of it: a starved Redis still answers within it.
fn command_timeout() -> Duration {
    ack_timeout() * 5
}

fn options(replica_acks: ReplicaAcks) -> Options {
    Options {
        command_timeout: command_timeout(),
        replica_ack_timeout: Some(ack_timeout()),
        retry_interval: Duration::from_millis(100),
        replica_acks,
        ..Options::default()
    }
}

fn client(server: &RedisServer, replica_acks: ReplicaAcks) -> Client {
    Client::new(&server.url(), options(replica_acks)).unwrap()
}

/// A primary and its replica, following it.
fn primary_and_replica() -> (RedisServer, RedisServer) {
    let primary = RedisServer::start();
    let replica = RedisServer::start_replica_of(&primary);
    (primary, replica)
}

/// Asserts that `call` returned within `bound` (already scaled for a loaded machine).
fn within<T>(bound: Duration, call: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let outcome = call();
    let took = started.elapsed();
    assert!(took < bound, "took {took:?}, bound {bound:?}");
    outcome
}

fn holder(server: &RedisServer, name: &str) -> String {
    server.cli(&["GET", name])
}

/// How often `server` ran `command` since it started (INFO commandstats).
fn calls(server: &RedisServer, command: &str) -> u64 {
    let prefix = format!("cmdstat_{command}:calls=");
    server
        .cli(&["INFO", "commandstats"])
        .lines()
        .find_map(|line| line.strip_prefix(&prefix)?.split(',').next()?.parse().ok())
        .unwrap_or(0)
}

fn assert_not_replicated<T: std::fmt::Debug>(result: redilock::Result<T>, write: &str) {
    match result {
        Err(Error::NotReplicated(message)) => assert!(
            message.contains(&format!(
                "{write} of lock 'job' was acknowledged by 0 of the 1 replicas required within {} ms",
                ack_timeout().as_millis()
            )),
            "{message}"
        ),
        other => panic!("expected NotReplicated, got {other:?}"),
    }
}

#[test]
fn a_lock_the_replica_acknowledged_is_on_the_replica_when_the_call_returns() {
    let (primary, replica) = primary_and_replica();
    let c = client(&primary, ReplicaAcks::Count(1));
    let lease = c.lock("job", TTL, Wait::TryOnce).unwrap();
    assert_eq!(holder(&replica, "job"), lease.token.as_str());
    c.extend("job", &lease.token, Duration::from_secs(120))
        .unwrap();
    let replica_ttl: i64 = replica.cli(&["PTTL", "job"]).parse().unwrap();
    assert!(
        replica_ttl > 60_000,
        "the extension is on the replica: {replica_ttl}"
    );
    c.unlock("job", &lease.token).unwrap();
}

#[test]
fn a_lock_the_paused_replica_cannot_acknowledge_is_released_within_the_call_bound() {
    let (primary, replica) = primary_and_replica();
    let c = client(&primary, ReplicaAcks::Count(1));
    c.ping().unwrap();
    replica.pause();
    for wait in [Wait::TryOnce, Wait::AtMost(Duration::from_secs(1))] {
        let result = within(scaled(Duration::from_secs(1)) + command_timeout(), || {
            c.lock("job", TTL, wait)
        });
        assert_not_replicated(result, "the acquisition");
        assert_eq!(holder(&primary, "job"), "", "released on the primary");
    }
    replica.resume();
    let lease = c.lock("job", TTL, Wait::TryOnce).unwrap();
    assert_eq!(holder(&replica, "job"), lease.token.as_str());
}

#[test]
fn an_extend_the_paused_replica_cannot_acknowledge_releases_the_lock() {
    let (primary, replica) = primary_and_replica();
    let c = client(&primary, ReplicaAcks::Count(1));
    let lease = c.lock("job", TTL, Wait::TryOnce).unwrap();
    replica.pause();
    let result = within(command_timeout(), || {
        c.extend("job", &lease.token, Duration::from_secs(120))
    });
    assert_not_replicated(result, "the extension");
    assert_eq!(holder(&primary, "job"), "", "released on the primary");
    assert!(matches!(
        c.unlock("job", &lease.token),
        Err(Error::NotOwner(_))
    ));
}

#[test]
fn a_renewal_the_paused_replica_cannot_acknowledge_loses_the_lease_and_releases_it() {
    let (primary, replica) = primary_and_replica();
    let c = client(&primary, ReplicaAcks::Count(1));
    // Long enough for a few renewals to go unacknowledged before it runs out.
    let ttl = ack_timeout() * 4;
    let lease = c.lock("job", Some(ttl), Wait::TryOnce).unwrap();
    let renewal = c.auto_renew("job", &lease, AutoRenew::default()).unwrap();
    replica.pause();
    // Renewals start at a third of the TTL and go unacknowledged until the lease runs out.
    let lost = c
        .wait_for_loss(&lease.token, Wait::AtMost(ttl * 3), None)
        .unwrap();
    assert!(lost, "the lease was lost");
    assert_eq!(renewal.loss(), Some(Loss::NotReplicated));
    wait_until("the lock is released on the primary", || {
        holder(&primary, "job").is_empty()
    });
    assert!(matches!(
        c.unlock("job", &lease.token),
        Err(Error::NotOwner(_))
    ));
}

#[test]
fn a_handed_over_lock_counts_once_the_replica_has_it() {
    let (primary, replica) = primary_and_replica();
    let releaser = client(&primary, ReplicaAcks::Count(0));
    let waiter = client(&primary, ReplicaAcks::Count(1));
    for replica_answers in [true, false] {
        let held = releaser.lock("job", TTL, Wait::TryOnce).unwrap();
        let waiting = std::thread::scope(|scope| {
            let waiting =
                scope.spawn(|| waiter.lock("job", TTL, Wait::AtMost(Duration::from_secs(30))));
            wait_until("the waiter is queued", || queue(&primary, "job").len() == 1);
            if !replica_answers {
                replica.pause();
            }
            releaser.unlock("job", &held.token).unwrap();
            let released = Instant::now();
            let result = waiting.join().unwrap();
            // Its own bound: one command timeout from the hand-over.
            let took = released.elapsed();
            assert!(took < command_timeout() * 2, "took {took:?}");
            result
        });
        if replica_answers {
            let lease = waiting.unwrap();
            assert_eq!(holder(&replica, "job"), lease.token.as_str());
            waiter.unlock("job", &lease.token).unwrap();
        } else {
            assert_not_replicated(waiting, "the acquisition");
            assert_eq!(holder(&primary, "job"), "", "released on the primary");
            assert!(queue(&primary, "job").is_empty(), "and left the queue");
            replica.resume();
        }
    }
}

/// The window replica acknowledgement closes: the primary fails before its replica has the
/// lock, the replica is promoted, and a second client takes the same lock there. The replica
/// follows through a proxy that then drops everything (a partition): a paused replica would
/// not do on loopback, since the write would wait in its socket's buffer and be applied when
/// it resumes.
fn failover_after_a_lock(replica_acks: ReplicaAcks) -> (redilock::Result<Token>, Token) {
    let mut primary = RedisServer::start();
    let link = FaultProxy::start(primary.port);
    let replica = RedisServer::start_replica_via(&primary, link.port());
    let first = client(&primary, replica_acks);
    first.ping().unwrap();
    link.set_fault(Fault::Blackhole);
    let first_lock = first
        .lock("job", Some(MAX_TTL), Wait::TryOnce)
        .map(|lease| lease.token);
    primary.kill();
    replica.promote();
    assert_eq!(
        holder(&replica, "job"),
        "",
        "the replica never had the lock"
    );
    let second = Client::new(&replica.url(), options(ReplicaAcks::Count(0))).unwrap();
    let second_lock = second.lock("job", Some(MAX_TTL), Wait::TryOnce).unwrap();
    (first_lock, second_lock.token)
}

#[test]
fn without_acknowledgement_a_failover_leaves_two_holders() {
    let (first, second) = failover_after_a_lock(ReplicaAcks::Count(0));
    let first = first.expect("the first client believes it holds the lock");
    assert_ne!(first, second, "two holders of one lock");
}

#[test]
fn with_acknowledgement_the_lock_a_failover_would_lose_is_refused() {
    let (first, _second) = failover_after_a_lock(ReplicaAcks::Count(1));
    assert_not_replicated(first, "the acquisition");
}

#[test]
fn auto_waits_for_one_replica_when_the_primary_has_one_and_for_none_without() {
    let (primary, replica) = primary_and_replica();
    let c = client(&primary, ReplicaAcks::Auto);
    let lease = c.lock("job", TTL, Wait::TryOnce).unwrap();
    assert_eq!(holder(&replica, "job"), lease.token.as_str());
    c.unlock("job", &lease.token).unwrap();
    // ROLE went in front of the first write (twice if the script had to be loaded).
    let (asked, waited) = (calls(&primary, "role"), calls(&primary, "wait"));
    assert!(asked > 0);
    for _ in 0..3 {
        let lease = c.lock("job", TTL, Wait::TryOnce).unwrap();
        c.unlock("job", &lease.token).unwrap();
    }
    assert_eq!(calls(&primary, "role"), asked, "asked once");
    assert_eq!(calls(&primary, "wait"), waited + 3, "one WAIT per lock");
    replica.pause();
    assert_not_replicated(c.lock("job", TTL, Wait::TryOnce), "the acquisition");
    replica.resume();

    let alone = RedisServer::start();
    let c = client(&alone, ReplicaAcks::Auto);
    for _ in 0..3 {
        let lease = c.lock("job", TTL, Wait::TryOnce).unwrap();
        c.unlock("job", &lease.token).unwrap();
    }
    assert!(calls(&alone, "role") > 0);
    assert_eq!(calls(&alone, "wait"), 0, "no replica: no WAIT");
}

#[test]
fn the_async_client_waits_on_its_shared_connection() {
    let (primary, replica) = primary_and_replica();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let c = redilock::Client::new(&primary.url(), options(ReplicaAcks::Count(1))).unwrap();
        let lease = c.lock("job", TTL, Wait::TryOnce).await.unwrap();
        assert_eq!(holder(&replica, "job"), lease.token.as_str());
        c.unlock("job", &lease.token).await.unwrap();
        replica.pause();
        assert_not_replicated(c.lock("job", TTL, Wait::TryOnce).await, "the acquisition");
        assert_eq!(holder(&primary, "job"), "");
        replica.resume();
    });
}
