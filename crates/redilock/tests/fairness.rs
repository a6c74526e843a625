//! Waiters queue in Redis: the longest waiter gets the lock next, nobody barges ahead of it,
//! and a waiter that gives up or dies does not hold up the others for long.

use redilock::{blocking::Client, Options, Wait};
use redilock_test_harness::{queue, scaled, wait_until, RedisServer};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TTL: Option<Duration> = Some(Duration::from_secs(10));

fn client(server: &RedisServer) -> Arc<Client> {
    Arc::new(Client::new(&server.url(), Options::default()).unwrap())
}

#[test]
fn the_lock_goes_to_waiters_in_arrival_order() {
    let server = RedisServer::start();
    let holder = client(&server);
    let lease = holder.lock("fifo", TTL, Wait::TryOnce).unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let waiters: Vec<_> = (0..3)
        .map(|i| {
            let (c, order) = (client(&server), order.clone());
            let waiter = std::thread::spawn(move || {
                let lease = c.lock("fifo", TTL, Wait::Forever).unwrap();
                order.lock().unwrap().push(i);
                std::thread::sleep(Duration::from_millis(20));
                c.unlock("fifo", &lease.token).unwrap();
            });
            wait_until("the waiter is queued", || {
                queue(&server, "fifo").len() == i + 1
            });
            waiter
        })
        .collect();
    holder.unlock("fifo", &lease.token).unwrap();
    waiters.into_iter().for_each(|w| w.join().unwrap());
    assert_eq!(*order.lock().unwrap(), [0, 1, 2]);
    assert!(queue(&server, "fifo").is_empty());
}

#[test]
fn nobody_barges_ahead_of_a_queued_waiter() {
    let server = RedisServer::start();
    let (holder, waiter, barger) = (client(&server), client(&server), client(&server));
    let lease = holder.lock("turn", TTL, Wait::TryOnce).unwrap();
    let queued = std::thread::spawn(move || waiter.lock("turn", TTL, Wait::Forever).unwrap());
    wait_until("the waiter is queued", || queue(&server, "turn").len() == 1);
    holder.unlock("turn", &lease.token).unwrap();
    // Whether or not the waiter has taken the lock yet, it is its turn, not the barger's.
    assert!(barger.lock("turn", TTL, Wait::TryOnce).is_err());
    let taken = queued.join().unwrap();
    assert_eq!(server.cli(&["GET", "turn"]), taken.token.as_str());
}

#[test]
fn a_waiter_that_times_out_gives_up_its_place_at_once() {
    let server = RedisServer::start();
    let (holder, patient) = (client(&server), client(&server));
    let lease = holder.lock("line", TTL, Wait::TryOnce).unwrap();
    let impatient = client(&server);
    let gives_up = std::thread::spawn(move || {
        impatient
            .lock("line", TTL, Wait::AtMost(Duration::from_secs(1)))
            .unwrap_err()
    });
    wait_until("the first waiter is queued", || {
        queue(&server, "line").len() == 1
    });
    let second = std::thread::spawn(move || {
        let lease = patient.lock("line", TTL, Wait::Forever).unwrap();
        (Instant::now(), lease)
    });
    wait_until("the second waiter is queued", || {
        queue(&server, "line").len() == 2
    });
    gives_up.join().unwrap();
    assert_eq!(queue(&server, "line").len(), 1, "the first waiter left");
    let released = Instant::now();
    holder.unlock("line", &lease.token).unwrap();
    let (taken, _) = second.join().unwrap();
    // Without the first waiter's leaving, this would wait for its place to expire (750 ms).
    assert!(
        taken - released < scaled(Duration::from_millis(200)),
        "{:?}",
        taken - released
    );
}

#[test]
fn a_waiter_that_died_first_in_line_loses_its_place_at_its_deadline() {
    let server = RedisServer::start();
    let quick = Options {
        retry_interval: Duration::from_millis(50),
        ..Options::default()
    };
    let holder = client(&server);
    let lease = holder.lock("ghost", TTL, Wait::TryOnce).unwrap();
    let live = Arc::new(Client::new(&server.url(), quick).unwrap());
    let waiter = std::thread::spawn(move || {
        let started = Instant::now();
        live.lock("ghost", TTL, Wait::Forever).unwrap();
        started.elapsed()
    });
    wait_until("the waiter is queued", || {
        queue(&server, "ghost").len() == 1
    });
    // A waiter that died first in line: it never re-checks, so its deadline is never renewed.
    let queue_key = server.cli(&["--scan", "--pattern", "redilock:queue:*:ghost"]);
    let deadlines_key = queue_key.replacen("redilock:queue:", "redilock:deadlines:", 1);
    let now_ms = server
        .cli(&["TIME"])
        .lines()
        .next()
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 1000;
    server.cli(&["LPUSH", &queue_key, "dead-waiter"]);
    server.cli(&[
        "ZADD",
        &deadlines_key,
        &(now_ms + 1000).to_string(),
        "dead-waiter",
    ]);
    holder.unlock("ghost", &lease.token).unwrap();
    let waited = waiter.join().unwrap();
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    assert!(!queue(&server, "ghost").contains(&"dead-waiter".to_string()));
}

#[test]
fn an_async_wait_dropped_mid_way_gives_up_its_place() {
    let server = RedisServer::start();
    let holder = client(&server);
    let lease = holder.lock("dropped", TTL, Wait::TryOnce).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let c = redilock::Client::new(&server.url(), Options::default()).unwrap();
        let wait = c.lock("dropped", TTL, Wait::Forever);
        assert!(tokio::time::timeout(Duration::from_millis(300), wait)
            .await
            .is_err());
        // The dropped future's guard gives the place back from a task on this runtime, well
        // before the place would expire by itself (three retry intervals after its last
        // re-check).
        let start = Instant::now();
        while !queue(&server, "dropped").is_empty() {
            assert!(
                start.elapsed() < Duration::from_millis(300),
                "the place was kept"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    holder.unlock("dropped", &lease.token).unwrap();
}

#[test]
fn a_free_lock_promised_to_a_queued_waiter_says_so() {
    let server = RedisServer::start();
    let holder = client(&server);
    // A waiter that re-checks rarely: between its attempts the lock's turn stays its own.
    let slow = Options {
        retry_interval: Duration::from_secs(10),
        ..Options::default()
    };
    let waiter = Client::new(&server.url(), slow).unwrap();
    let lease = holder.lock("promised", TTL, Wait::TryOnce).unwrap();
    let queued = std::thread::spawn(move || {
        let _ = waiter.lock("promised", TTL, Wait::AtMost(Duration::from_secs(1)));
    });
    wait_until("the waiter is queued", || {
        queue(&server, "promised").len() == 1
    });
    // Freed behind the queue's back (an expiry would do the same): the turn is the waiter's.
    server.cli(&["DEL", "promised"]);
    let err = holder.lock("promised", TTL, Wait::TryOnce).unwrap_err();
    assert_eq!(
        err.to_string(),
        "lock 'promised' is free but promised to a waiter queued earlier"
    );
    drop(lease);
    queued.join().unwrap();
}
