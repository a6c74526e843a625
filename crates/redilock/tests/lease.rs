//! Leases: extend, remaining TTL, auto-renewal with loss notice, fencing numbers. The tests
//! with several processes are in processes.rs.

use redilock::{blocking::Client, AutoRenew, Error, Options, Token, Wait};
use redilock_test_harness::{scaled, wait_until, RedisServer};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TTL: Option<Duration> = Some(Duration::from_secs(10));

fn client(server: &RedisServer) -> Client {
    Client::new(&server.url(), Options::default()).unwrap()
}

/// How many scripts Redis ran since the last reset (EVALSHA and EVAL).
fn scripts_run(server: &RedisServer) -> u64 {
    server
        .cli(&["INFO", "commandstats"])
        .lines()
        .filter(|l| l.starts_with("cmdstat_evalsha:") || l.starts_with("cmdstat_eval:"))
        .filter_map(|l| {
            l.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

fn pttl(server: &RedisServer, key: &str) -> i64 {
    server.cli(&["PTTL", key]).parse().unwrap()
}

#[test]
fn extend_resets_the_ttl_of_a_held_lock_only() {
    let server = RedisServer::start();
    let c = client(&server);
    let lease = c
        .lock("job", Some(Duration::from_secs(2)), Wait::TryOnce)
        .unwrap();
    c.extend("job", &lease.token, Duration::from_secs(60))
        .unwrap();
    assert!(pttl(&server, "job") > 50_000);
    assert!(c.remaining_ttl("job", &lease.token).unwrap().unwrap() > Duration::from_secs(50));

    let foreign = Token::from_string("someone-else");
    assert!(matches!(
        c.extend("job", &foreign, Duration::from_secs(1)),
        Err(Error::NotOwner(_))
    ));
    assert!(matches!(
        c.remaining_ttl("job", &foreign),
        Err(Error::NotOwner(_))
    ));
    assert!(
        pttl(&server, "job") > 50_000,
        "a foreign extend changed nothing"
    );

    let short = c
        .lock("short", Some(Duration::from_millis(50)), Wait::TryOnce)
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert!(matches!(
        c.extend("short", &short.token, Duration::from_secs(5)),
        Err(Error::NotOwner(_))
    ));
    assert_eq!(
        server.cli(&["EXISTS", "short"]),
        "0",
        "an expired lock is never re-created"
    );
}

#[test]
fn invalid_extend_ttls_are_refused_before_anything_is_sent() {
    let server = RedisServer::start();
    let c = client(&server);
    let lease = c.lock("job", TTL, Wait::TryOnce).unwrap();
    server.cli(&["CONFIG", "RESETSTAT"]);
    for ttl in [
        Duration::ZERO,
        Duration::from_micros(999),
        redilock::MAX_TTL + Duration::from_millis(1),
    ] {
        assert!(
            matches!(
                c.extend("job", &lease.token, ttl),
                Err(Error::InvalidArgument(_))
            ),
            "{ttl:?}"
        );
    }
    assert_eq!(scripts_run(&server), 0);
    assert!(
        pttl(&server, "job") > 9_000,
        "PEXPIRE 0 would have deleted it"
    );
}

#[test]
fn auto_renewal_holds_a_lock_five_times_its_ttl_and_stops_at_unlock() {
    let server = RedisServer::start();
    let c = client(&server);
    let ttl = Duration::from_millis(600);
    let lease = c.lock("long-job", Some(ttl), Wait::TryOnce).unwrap();
    let renewal = c
        .auto_renew("long-job", &lease, AutoRenew::default())
        .unwrap();
    let rival = client(&server);
    let start = Instant::now();
    while start.elapsed() < ttl * 5 {
        assert!(matches!(
            rival.lock("long-job", Some(ttl), Wait::TryOnce),
            Err(Error::NotAcquired(_))
        ));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!renewal.is_lost());
    assert_eq!(c.renewal_lost(&lease.token), Ok(false));
    c.unlock("long-job", &lease.token).unwrap();
    assert_eq!(server.cli(&["EXISTS", "long-job"]), "0");
    assert!(
        matches!(c.renewal_lost(&lease.token), Err(Error::InvalidArgument(_))),
        "unlock ended the renewal"
    );

    server.cli(&["CONFIG", "RESETSTAT"]);
    std::thread::sleep(ttl * 2);
    assert_eq!(scripts_run(&server), 0, "no renewals after unlock");
}

#[test]
fn a_lock_deleted_behind_the_holders_back_is_reported_lost_at_once() {
    let server = RedisServer::start();
    let c = client(&server);
    let ttl = Duration::from_millis(300);
    let lease = c.lock("stolen", Some(ttl), Wait::TryOnce).unwrap();
    let told = Arc::new(AtomicBool::new(false));
    let told_in_callback = told.clone();
    let keep = AutoRenew {
        on_lost: Some(Box::new(move || {
            told_in_callback.store(true, Ordering::SeqCst)
        })),
        ..AutoRenew::default()
    };
    let renewal = c.auto_renew("stolen", &lease, keep).unwrap();
    server.cli(&["DEL", "stolen"]);
    let deleted = Instant::now();
    wait_until("the callback ran", || told.load(Ordering::SeqCst));
    // At the next renewal, a third of the TTL later.
    assert!(deleted.elapsed() < scaled(ttl), "{:?}", deleted.elapsed());
    assert!(renewal.is_lost());
    assert!(matches!(
        c.unlock("stolen", &lease.token),
        Err(Error::NotOwner(_))
    ));
}

#[test]
fn max_hold_caps_renewal_and_the_lease_then_runs_out() {
    let server = RedisServer::start();
    let c = client(&server);
    let (ttl, max_hold) = (Duration::from_millis(600), Duration::from_millis(1500));
    // The cap counts from when the request was sent, so the clock starts before the call.
    let acquired = Instant::now();
    let lease = c.lock("capped", Some(ttl), Wait::TryOnce).unwrap();
    let keep = AutoRenew {
        max_hold: Some(max_hold),
        ..AutoRenew::default()
    };
    let renewal = c.auto_renew("capped", &lease, keep).unwrap();
    wait_until("the lock expires", || {
        server.cli(&["EXISTS", "capped"]) == "0"
    });
    let held = acquired.elapsed();
    assert!(held >= max_hold, "renewed until the cap, held {held:?}");
    assert!(
        held < max_hold + scaled(ttl * 2),
        "not renewed past the cap, held {held:?}"
    );
    wait_until("the loss is reported", || renewal.is_lost());
    assert!(matches!(
        c.unlock("capped", &lease.token),
        Err(Error::NotOwner(_))
    ));
}

#[test]
fn unreachable_redis_during_renewal_ends_in_a_loss_notice() {
    let mut server = RedisServer::start();
    let options = Options {
        connect_timeout: Duration::from_millis(100),
        command_timeout: Duration::from_millis(100),
        ..Options::default()
    };
    let c = Client::new(&server.url(), options).unwrap();
    let ttl = Duration::from_millis(400);
    let lease = c.lock("fragile", Some(ttl), Wait::TryOnce).unwrap();
    let renewal = c
        .auto_renew("fragile", &lease, AutoRenew::default())
        .unwrap();
    server.kill();
    let killed = Instant::now();
    wait_until("the loss is reported", || renewal.is_lost());
    assert!(
        killed.elapsed() <= ttl + scaled(Duration::from_millis(200)),
        "told {:?} after the kill",
        killed.elapsed()
    );
    server.restart();
    assert!(matches!(
        c.unlock("fragile", &lease.token),
        Err(Error::NotOwner(_))
    ));
}

#[test]
fn fencing_numbers_increase_with_every_acquisition() {
    let server = RedisServer::start();
    let c = client(&server);
    let mut last = 0;
    for _ in 0..20 {
        let lease = c.lock("fenced", TTL, Wait::TryOnce).unwrap();
        assert!(lease.fence > last);
        last = lease.fence;
        c.unlock("fenced", &lease.token).unwrap();
    }
    // A name's first fence is taken from the Redis clock (in microseconds), so that a Redis
    // that lost its counters still numbers above every earlier holder.
    let clock_us = redis_clock_us(&server);
    let other = c.lock("other-name", TTL, Wait::TryOnce).unwrap();
    assert!(other.fence >= clock_us, "{} < {clock_us}", other.fence);
}

#[test]
fn fencing_numbers_rise_by_one_when_the_counter_is_ahead_of_the_clock() {
    // As after the Redis host's clock stepped back: the counter, not the clock, goes on.
    let server = RedisServer::start();
    let c = client(&server);
    let first = c.lock("ahead", TTL, Wait::TryOnce).unwrap();
    c.unlock("ahead", &first.token).unwrap();
    let counter = server.cli(&["--scan", "--pattern", "redilock:fence:*ahead"]);
    let ahead = redis_clock_us(&server) + 3_600_000_000;
    server.cli(&["SET", counter.trim(), &ahead.to_string()]);
    for expected in [ahead + 1, ahead + 2] {
        let lease = c.lock("ahead", TTL, Wait::TryOnce).unwrap();
        assert_eq!(lease.fence, expected);
        c.unlock("ahead", &lease.token).unwrap();
    }
}

/// The Redis server's clock, in microseconds.
fn redis_clock_us(server: &RedisServer) -> u64 {
    let time = server.cli(&["TIME"]);
    let mut parts = time.lines().map(|part| part.parse::<u64>().unwrap());
    parts.next().unwrap() * 1_000_000 + parts.next().unwrap()
}
