//! Redis Sentinel: a primary, a replica and three sentinels on loopback
//! (`redis+sentinel://`). The same client locks again once the sentinels have promoted the
//! replica, its waiters are woken on the new primary, and a lock the replica never had is
//! refused with replica acknowledgement on, or held twice with it off.

use redilock::{blocking::Client, Error, Options, ReplicaAcks, Wait, MAX_TTL};
use redilock_test_harness::proxy::FaultProxy;
use redilock_test_harness::{scaled, wait_until, Sentinels};
use std::time::{Duration, Instant};

const TTL: Option<Duration> = Some(Duration::from_secs(30));

fn options(replica_acks: ReplicaAcks) -> Options {
    Options {
        // Long: a waiter must be woken by the release, not find the lock free by looking.
        retry_interval: Duration::from_secs(60),
        command_timeout: scaled(Duration::from_secs(5)),
        replica_ack_timeout: Some(scaled(Duration::from_secs(1))),
        replica_acks,
        ..Options::default()
    }
}

fn client(sentinels: &Sentinels, replica_acks: ReplicaAcks) -> Client {
    Client::new(&sentinels.url(), options(replica_acks)).unwrap()
}

#[test]
fn the_same_client_locks_again_and_wakes_its_waiters_after_a_failover() {
    let mut sentinels = Sentinels::start(1, 3);
    let holder = client(&sentinels, ReplicaAcks::Auto);
    let waiter = client(&sentinels, ReplicaAcks::Auto);
    let lease = holder.lock("before", TTL, Wait::TryOnce).unwrap();
    assert_eq!(
        sentinels.primary().cli(&["GET", "before"]),
        lease.token.as_str()
    );
    let old = sentinels.kill_primary();
    let new = sentinels.wait_for_failover(old);
    let promoted = Instant::now();
    wait_until("the client locks on the promoted replica", || {
        holder.lock("after", TTL, Wait::TryOnce).is_ok()
    });
    eprintln!(
        "locked again {:?} after the sentinels agreed on the new primary",
        promoted.elapsed()
    );
    let held = sentinels.primary();
    assert_eq!(held.port, new);
    assert!(!held.cli(&["GET", "after"]).is_empty());
    // The waiter's client listened on the old primary: it listens on the new one now.
    std::thread::scope(|s| {
        let waiting = s.spawn(|| waiter.lock("after", TTL, Wait::Forever));
        wait_until("the waiter queues", || {
            !redilock_test_harness::queue(held, "after").is_empty()
        });
        let token = held.cli(&["GET", "after"]);
        let released = Instant::now();
        holder
            .unlock("after", &redilock::Token::from_string(token))
            .unwrap();
        waiting.join().unwrap().expect("the waiter gets the lock");
        let took = released.elapsed();
        assert!(
            took < scaled(Duration::from_secs(5)),
            "woken after {took:?}"
        );
    });
}

/// A lock taken while the replica's link loses everything (a partition of that link only),
/// then a failover that promotes that replica: what the first client was told, and whether a
/// second client then gets the same lock. The primary sits behind a fault proxy, through
/// which the sentinels, the replica and the clients reach it.
fn failover_after_a_lock(replica_acks: ReplicaAcks) -> (redilock::Result<()>, bool) {
    let proxy = std::sync::OnceLock::<FaultProxy>::new();
    let mut sentinels = Sentinels::start_behind(1, 3, &|port| {
        proxy.get_or_init(|| FaultProxy::start(port)).port()
    });
    let (proxy, primary) = (proxy.get().unwrap(), sentinels.servers()[0].port);
    let links = sentinels.servers()[0].cli(&["CLIENT", "LIST", "TYPE", "replica"]);
    let link = links
        .split_whitespace()
        .find_map(|field| field.strip_prefix("addr=127.0.0.1:")?.parse().ok())
        .expect("the replica's link");
    assert!(proxy.blackhole_link_from(link));
    let first = client(&sentinels, replica_acks);
    let first_lock = first.lock("job", Some(MAX_TTL), Wait::TryOnce).map(|_| ());
    sentinels.server_mut(primary).kill();
    sentinels.wait_for_failover(proxy.port());
    let second = client(&sentinels, ReplicaAcks::Count(0));
    let second_lock = second.lock("job", Some(MAX_TTL), Wait::TryOnce);
    (first_lock, second_lock.is_ok())
}

#[test]
fn without_acknowledgement_a_sentinel_failover_leaves_two_holders() {
    let (first, second) = failover_after_a_lock(ReplicaAcks::Count(0));
    first.expect("the first client believes it holds the lock");
    assert!(
        second,
        "the promoted replica never had the lock: a second holder"
    );
}

#[test]
fn with_acknowledgement_the_lock_a_sentinel_failover_would_lose_is_refused() {
    let (first, _) = failover_after_a_lock(ReplicaAcks::Auto);
    match first {
        Err(Error::NotReplicated(message)) => assert!(message.contains("released"), "{message}"),
        other => panic!("expected NOT_REPLICATED, got {other:?}"),
    }
}

#[test]
fn a_sentinel_url_whose_sentinels_do_not_answer_fails_within_the_call_bound() {
    let sentinels = Sentinels::start(0, 1);
    let url = sentinels.url().replace("mymaster", "nosuchprimary");
    let client = Client::new(&url, options(ReplicaAcks::Auto)).unwrap();
    let started = Instant::now();
    let err = client.lock("x", TTL, Wait::TryOnce).unwrap_err();
    assert!(started.elapsed() < scaled(Duration::from_secs(10)));
    assert!(
        matches!(&err, Error::Connection(m) if m.contains("nosuchprimary") && m.contains("does not know it")),
        "{err}"
    );
}

#[test]
fn paused_sentinels_fail_the_call_within_its_bound() {
    let sentinels = Sentinels::start(0, 3);
    let command_timeout = scaled(Duration::from_millis(600));
    let options = Options {
        command_timeout,
        replica_ack_timeout: None,
        ..options(ReplicaAcks::Auto)
    };
    let client = Client::new(&sentinels.url(), options).unwrap();
    for sentinel in sentinels.sentinels() {
        sentinel.pause();
    }
    let started = Instant::now();
    let failed = client.lock("x", TTL, Wait::TryOnce);
    let took = started.elapsed();
    for sentinel in sentinels.sentinels() {
        sentinel.resume();
    }
    assert!(
        matches!(&failed, Err(Error::Connection(m)) if m.contains("no sentinel named the primary")),
        "{failed:?}"
    );
    assert!(
        took < command_timeout + scaled(Duration::from_secs(1)),
        "took {took:?}"
    );
    wait_until("the client locks once the sentinels answer", || {
        client.lock("x", TTL, Wait::TryOnce).is_ok()
    });
}
