//! Lock semantics through the Rust API, against a real redis-server.

use redilock::{blocking::Client, Error, Options, Token, Wait};
use redilock_test_harness::proxy::{Fault, FaultProxy};
use redilock_test_harness::{queue, scaled, wait_until, RedisServer};
use std::time::{Duration, Instant};

const TTL: Option<Duration> = Some(Duration::from_secs(10));

fn client(server: &RedisServer) -> Client {
    Client::new(&server.url(), Options::default()).unwrap()
}

#[test]
fn lock_then_unlock_stores_the_token_under_the_name_itself() {
    let server = RedisServer::start();
    let c = client(&server);
    let token = c.lock("orders:42", TTL, Wait::TryOnce).unwrap().token;
    assert_eq!(
        server.cli(&["GET", "orders:42"]),
        token.as_str(),
        "key is the name, as in python-redilock"
    );
    let pttl: i64 = server.cli(&["PTTL", "orders:42"]).parse().unwrap();
    assert!(pttl > 9_000 && pttl <= 10_000, "pttl {pttl}");
    c.unlock("orders:42", &token).unwrap();
    assert_eq!(server.cli(&["EXISTS", "orders:42"]), "0");
}

#[test]
fn second_locker_is_refused_until_release() {
    let server = RedisServer::start();
    let c = client(&server);
    let token = c.lock("job", TTL, Wait::TryOnce).unwrap().token;
    let err = c.lock("job", TTL, Wait::TryOnce).unwrap_err();
    assert_eq!(
        err,
        Error::NotAcquired("lock 'job' is held by another owner".into())
    );
    c.unlock("job", &token).unwrap();
    c.lock("job", TTL, Wait::TryOnce).unwrap();
}

#[test]
fn timeout_waits_about_that_long_then_gives_up() {
    let server = RedisServer::start();
    let c = client(&server);
    c.lock("busy", TTL, Wait::TryOnce).unwrap();
    let start = Instant::now();
    let err = c
        .lock("busy", TTL, Wait::AtMost(Duration::from_millis(300)))
        .unwrap_err();
    let waited = start.elapsed();
    assert!(matches!(err, Error::NotAcquired(_)));
    assert!(
        waited >= Duration::from_millis(290) && waited < Duration::from_secs(3),
        "waited {waited:?}"
    );
}

#[test]
fn only_the_owner_can_unlock_and_nothing_is_deleted_otherwise() {
    let server = RedisServer::start();
    let c = client(&server);
    let token = c.lock("owned", TTL, Wait::TryOnce).unwrap().token;
    for wrong in [Token::from_string("not-a-token"), Token::from_string("")] {
        assert!(matches!(c.unlock("owned", &wrong), Err(Error::NotOwner(_))));
        assert_eq!(server.cli(&["GET", "owned"]), token.as_str());
    }
    assert!(matches!(
        c.unlock("never-held", &token),
        Err(Error::NotOwner(_))
    ));
    c.unlock("owned", &token).unwrap();
    assert!(
        matches!(c.unlock("owned", &token), Err(Error::NotOwner(_))),
        "double unlock"
    );
}

#[test]
fn expired_lock_is_not_owned_and_is_taken_over() {
    let server = RedisServer::start();
    let c = client(&server);
    let first = c
        .lock("short", Some(Duration::from_millis(100)), Wait::TryOnce)
        .unwrap()
        .token;
    std::thread::sleep(Duration::from_millis(150));
    let second = c.lock("short", TTL, Wait::TryOnce).unwrap().token;
    assert!(matches!(c.unlock("short", &first), Err(Error::NotOwner(_))));
    assert_eq!(
        server.cli(&["GET", "short"]),
        second.as_str(),
        "the late unlock deleted nothing"
    );
}

#[test]
fn a_waiter_takes_over_a_crashed_holders_lock_at_its_expiry() {
    let server = RedisServer::start();
    // A long retry interval proves the waiter sleeps only until the holder's TTL runs out.
    let c = Client::new(
        &server.url(),
        Options {
            retry_interval: Duration::from_secs(30),
            ..Options::default()
        },
    )
    .unwrap();
    c.lock("crashed", Some(Duration::from_millis(400)), Wait::TryOnce)
        .unwrap(); // never unlocked
    let start = Instant::now();
    c.lock("crashed", TTL, Wait::AtMost(Duration::from_secs(10)))
        .unwrap();
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(300) && waited < scaled(Duration::from_secs(2)),
        "waited {waited:?}"
    );
}

#[test]
fn names_with_separators_braces_spaces_and_utf8_work() {
    let server = RedisServer::start();
    let c = client(&server);
    let long = "x".repeat(100_000);
    for name in [
        "a:b:c",
        "{tag}:x",
        "with space",
        "ünïcødé-锁-🔒",
        "::",
        "}{",
        long.as_str(),
    ] {
        let token = c.lock(name, TTL, Wait::TryOnce).unwrap().token;
        assert!(
            matches!(c.lock(name, TTL, Wait::TryOnce), Err(Error::NotAcquired(_))),
            "{name}"
        );
        c.unlock(name, &token).unwrap();
        assert_eq!(server.cli(&["EXISTS", name]), "0", "{name}");
    }
}

#[test]
fn bad_arguments_are_refused_before_anything_is_sent() {
    let server = RedisServer::start();
    let c = client(&server);
    let invalid = |r: Result<redilock::Lease, Error>| {
        assert!(matches!(r, Err(Error::InvalidArgument(_))), "{r:?}")
    };
    invalid(c.lock("", TTL, Wait::TryOnce));
    invalid(c.lock("x", None, Wait::TryOnce));
    invalid(c.lock("x", Some(Duration::ZERO), Wait::TryOnce));
    invalid(c.lock(
        "x",
        Some(redilock::MAX_TTL + Duration::from_millis(1)),
        Wait::TryOnce,
    ));
    assert_eq!(server.cli(&["DBSIZE"]), "0");
    assert!(matches!(
        c.unlock("", &Token::from_string("t")),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn default_ttl_and_the_maximum_ttl() {
    let server = RedisServer::start();
    let options = Options {
        default_ttl: Some(Duration::from_secs(5)),
        ..Options::default()
    };
    let c = Client::new(&server.url(), options).unwrap();
    let token = c.lock("defaulted", None, Wait::TryOnce).unwrap().token;
    let pttl: i64 = server.cli(&["PTTL", "defaulted"]).parse().unwrap();
    assert!(pttl > 4_000 && pttl <= 5_000, "pttl {pttl}");
    c.unlock("defaulted", &token).unwrap();
    let eternal = c
        .lock("eternal", Some(redilock::MAX_TTL), Wait::TryOnce)
        .unwrap()
        .token;
    assert!(server.cli(&["PTTL", "eternal"]).parse::<i64>().unwrap() > 1 << 61);
    c.unlock("eternal", &eternal).unwrap();
}

#[test]
fn key_prefix_is_put_in_front_of_the_name() {
    let server = RedisServer::start();
    let options = Options {
        key_prefix: b"myapp:".to_vec(),
        ..Options::default()
    };
    let c = Client::new(&server.url(), options).unwrap();
    let token = c.lock("job", TTL, Wait::TryOnce).unwrap().token;
    assert_eq!(server.cli(&["GET", "myapp:job"]), token.as_str());
    assert_eq!(server.cli(&["EXISTS", "job"]), "0");
    c.unlock("job", &token).unwrap();
}

#[test]
fn database_number_and_unix_socket_urls() {
    let server = RedisServer::start();
    let c = Client::new(&format!("{}/3", server.url()), Options::default()).unwrap();
    let token = c.lock("in-db-3", TTL, Wait::TryOnce).unwrap().token;
    assert_eq!(server.cli(&["-n", "3", "GET", "in-db-3"]), token.as_str());
    assert_eq!(server.cli(&["EXISTS", "in-db-3"]), "0", "not in db 0");

    let unix = Client::new(
        &format!("unix://{}", server.socket_path().display()),
        Options::default(),
    )
    .unwrap();
    let over_unix = unix.lock("in-db-3", TTL, Wait::TryOnce).unwrap().token;
    assert_eq!(server.cli(&["GET", "in-db-3"]), over_unix.as_str());
}

#[test]
fn a_release_wakes_a_waiter_within_milliseconds() {
    let server = RedisServer::start();
    // The retry interval is far longer than the bound: only the wake-up can meet it.
    let options = Options {
        retry_interval: Duration::from_secs(10),
        ..Options::default()
    };
    let holder = Client::new(&server.url(), options.clone()).unwrap();
    let waiter = std::sync::Arc::new(Client::new(&server.url(), options).unwrap());
    let mut worst = Duration::ZERO;
    for round in 0..10 {
        let name = format!("wake-{round}");
        let token = holder.lock(&name, TTL, Wait::TryOnce).unwrap().token;
        let w = waiter.clone();
        let n = name.clone();
        let handle = std::thread::spawn(move || {
            w.lock(&n, TTL, Wait::AtMost(Duration::from_secs(5)))
                .unwrap();
            Instant::now()
        });
        wait_until("the waiter is queued", || queue(&server, &name).len() == 1);
        let released = Instant::now();
        holder.unlock(&name, &token).unwrap();
        let acquired = handle.join().unwrap();
        worst = worst.max(acquired - released);
    }
    assert!(
        worst < scaled(Duration::from_millis(50)),
        "slowest wake-up {worst:?}"
    );
}

#[test]
fn async_client_and_dropped_futures_leave_no_lock() {
    let server = RedisServer::start();
    // Replies dribbled a byte at a time: an attempt reaches Redis and runs, and the future is
    // dropped before its reply is in.
    let proxy = FaultProxy::start(server.port);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let c = redilock::Client::new(&proxy.url(), Options::default()).unwrap();
        let token = c.lock("async", TTL, Wait::TryOnce).await.unwrap().token;
        // A waiter abandoned by a timeout must not end up holding the lock.
        let abandoned = tokio::time::timeout(
            Duration::from_millis(50),
            c.lock("async", TTL, Wait::Forever),
        )
        .await;
        assert!(abandoned.is_err());
        c.unlock("async", &token).await.unwrap();
        eventually("the abandoned waiter holds nothing", || {
            server.cli(&["EXISTS", "async"]) == "0" && queue(&server, "async").is_empty()
        })
        .await;

        proxy.set_fault(Fault::SlowReplies(Duration::from_millis(20)));
        let cut = tokio::time::timeout(
            Duration::from_millis(100),
            c.lock("racy", Some(Duration::from_secs(60)), Wait::TryOnce),
        )
        .await;
        assert!(cut.is_err(), "the attempt was cut in flight");
        proxy.set_fault(Fault::None);
        let fences = server.cli(&["--scan", "--pattern", "redilock:fence:*racy"]);
        assert!(!fences.is_empty(), "the cut attempt ran and took the lock");
        // Well before its 60 s TTL: the client gives it back.
        eventually("the cut attempt's lock is given back", || {
            server.cli(&["EXISTS", "racy"]) == "0"
        })
        .await;
    });
}

/// Polls `condition` while the runtime runs the client's own tasks.
async fn eventually(what: &str, condition: impl Fn() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(
            start.elapsed() < scaled(Duration::from_secs(5)),
            "never: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[test]
fn cancel_signal_ends_a_wait_promptly() {
    let server = RedisServer::start();
    let c = std::sync::Arc::new(client(&server));
    c.lock("cancel-me", TTL, Wait::TryOnce).unwrap();
    let signal = redilock::CancelSignal::new();
    let (c2, s2) = (c.clone(), signal.clone());
    let waiter =
        std::thread::spawn(move || c2.lock_cancellable("cancel-me", TTL, Wait::Forever, &s2));
    wait_until("the waiter is queued", || {
        queue(&server, "cancel-me").len() == 1
    });
    let cancelled_at = Instant::now();
    signal.cancel();
    let result = waiter.join().unwrap();
    assert!(matches!(result, Err(Error::Cancelled(_))), "{result:?}");
    assert!(cancelled_at.elapsed() < scaled(Duration::from_millis(100)));
    // An already-cancelled signal sends nothing: even a free lock is not taken.
    let result = c.lock_cancellable("free", TTL, Wait::Forever, &signal);
    assert!(matches!(result, Err(Error::Cancelled(_))), "{result:?}");
    assert_eq!(server.cli(&["EXISTS", "free"]), "0");
}
