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
fn a_waiter_whose_client_died_is_skipped_at_once() {
    let server = RedisServer::start();
    let holder = client(&server);
    let lease = holder.lock("ghost", TTL, Wait::TryOnce).unwrap();
    let live = client(&server);
    let waiter = std::thread::spawn(move || {
        live.lock("ghost", TTL, Wait::Forever).unwrap();
        Instant::now()
    });
    wait_until("the waiter is queued", || {
        queue(&server, "ghost").len() == 1
    });
    // First in line, a waiter whose client no longer listens for wake-ups (it crashed): a
    // token of 32 characters, the first 16 naming a client nobody is, and its TTL.
    let queue_key = server.cli(&["--scan", "--pattern", "redilock:queue:*:ghost"]);
    let dead = format!("{}{}", "dead".repeat(8), 10_000);
    server.cli(&["LPUSH", &queue_key, &dead]);
    let released = Instant::now();
    holder.unlock("ghost", &lease.token).unwrap();
    let acquired = waiter.join().unwrap();
    assert!(
        acquired - released < scaled(Duration::from_millis(200)),
        "the live waiter got the lock {:?} after the release",
        acquired - released
    );
    assert!(
        queue(&server, "ghost").is_empty(),
        "the dead waiter is gone too"
    );
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
fn a_lock_freed_behind_the_queues_back_goes_to_the_first_waiter() {
    let server = RedisServer::start();
    let holder = client(&server);
    // A waiter that re-checks rarely: only the hand-over can give it the lock in time.
    let slow = Options {
        retry_interval: Duration::from_secs(30),
        ..Options::default()
    };
    let waiter = Client::new(&server.url(), slow).unwrap();
    holder.lock("freed", TTL, Wait::TryOnce).unwrap();
    let queued = std::thread::spawn(move || {
        waiter.lock("freed", TTL, Wait::AtMost(Duration::from_secs(20)))
    });
    wait_until("the waiter is queued", || {
        queue(&server, "freed").len() == 1
    });
    // Freed behind the queue's back (an expiry does the same): whoever finds the lock free
    // next hands it to the first in line, and does not take it.
    server.cli(&["DEL", "freed"]);
    let err = holder.lock("freed", TTL, Wait::TryOnce).unwrap_err();
    assert_eq!(err.to_string(), "lock 'freed' is held by another owner");
    let lease = queued.join().unwrap().unwrap();
    assert_eq!(server.cli(&["GET", "freed"]), lease.token.as_str());
}

#[test]
fn a_holder_that_shortens_its_ttl_is_taken_over_when_the_shorter_one_ends() {
    let server = RedisServer::start();
    let holder = client(&server);
    let lease = holder.lock("shortened", TTL, Wait::TryOnce).unwrap();
    let waiter = client(&server);
    let queued = std::thread::spawn(move || {
        waiter.lock("shortened", TTL, Wait::AtMost(Duration::from_secs(30)))
    });
    wait_until("the waiter is queued", || {
        queue(&server, "shortened").len() == 1
    });
    // The first in line was told the holder's 10 s TTL; the extend tells it the new one.
    let shortened = Instant::now();
    holder
        .extend("shortened", &lease.token, Duration::from_millis(50))
        .unwrap();
    queued.join().unwrap().unwrap();
    assert!(
        shortened.elapsed() < scaled(Duration::from_secs(2)),
        "taken over {:?} after the TTL was cut to 50 ms",
        shortened.elapsed()
    );
}

fn barging(server: &RedisServer) -> Arc<Client> {
    let options = Options {
        fair: false,
        retry_interval: Duration::from_secs(30), // only a wake-up can end a wait in time
        ..Options::default()
    };
    Arc::new(Client::new(&server.url(), options).unwrap())
}

#[test]
fn a_waiter_that_barges_is_woken_to_try_again() {
    let server = RedisServer::start();
    let holder = client(&server);
    let lease = holder.lock("race", TTL, Wait::TryOnce).unwrap();
    let barger = barging(&server);
    let waiting =
        std::thread::spawn(move || barger.lock("race", TTL, Wait::AtMost(Duration::from_secs(20))));
    wait_until("the barging waiter is queued", || {
        queue(&server, "race").len() == 1
    });
    holder.unlock("race", &lease.token).unwrap();
    let taken = waiting.join().unwrap().unwrap();
    assert_eq!(server.cli(&["GET", "race"]), taken.token.as_str());
}

#[test]
fn a_caller_that_barges_takes_a_free_lock_whoever_waits() {
    let server = RedisServer::start();
    let holder = client(&server);
    holder.lock("open", TTL, Wait::TryOnce).unwrap();
    let fair = client(&server);
    let fair_waiter = std::thread::spawn(move || fair.lock("open", TTL, Wait::Forever));
    wait_until("the fair waiter is queued", || {
        queue(&server, "open").len() == 1
    });
    server.cli(&["DEL", "open"]); // free, with a waiter in line
    let barger = barging(&server);
    let barged = barger.lock("open", TTL, Wait::TryOnce).unwrap();
    assert_eq!(
        queue(&server, "open").len(),
        1,
        "the fair waiter is still in line"
    );
    barger.unlock("open", &barged.token).unwrap();
    let handed = fair_waiter.join().unwrap().unwrap();
    assert!(handed.fence > barged.fence);
}
