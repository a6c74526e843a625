//! The failure contract, under faults: Redis paused, replies cut mid-way or dribbled a byte at
//! a time, Redis restarted while the client is idle or without its data. A call returns
//! within its own bound, a call that fails leaves no lock behind once Redis is back, and a
//! result never lies. Each test is the regression test of a defect found that way.

use redilock::{
    blocking::Client, AutoRenew, CancelSignal, Error, LockOptions, Options, Wait, MAX_TTL,
};
use redilock_test_harness::proxy::{Fault, FaultProxy};
use redilock_test_harness::{queue, scaled, wait_until, RedisServer};
use std::sync::Arc;
use std::time::{Duration, Instant};

const LONG_TTL: Option<Duration> = Some(Duration::from_secs(60));
const COMMAND_TIMEOUT: Duration = Duration::from_millis(500);

fn options() -> Options {
    Options {
        connect_timeout: COMMAND_TIMEOUT,
        command_timeout: COMMAND_TIMEOUT,
        retry_interval: Duration::from_millis(100),
        ..Options::default()
    }
}

fn client(url: &str) -> Arc<Client> {
    Arc::new(Client::new(url, options()).unwrap())
}

/// Asserts that `call` returned within `bound` (scaled for a loaded machine).
fn within<T>(bound: Duration, call: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let outcome = call();
    let took = started.elapsed();
    assert!(took < scaled(bound), "took {took:?}, bound {bound:?}");
    outcome
}

fn exists(server: &RedisServer, key: &str) -> bool {
    server.cli(&["EXISTS", key]) == "1"
}

#[test]
fn a_try_once_lock_that_failed_while_redis_was_paused_leaves_no_lock_once_it_resumes() {
    let server = RedisServer::start();
    for (name, ttl) in [("paused-60s", LONG_TTL), ("paused-max", Some(MAX_TTL))] {
        let c = client(&server.url());
        c.ping().unwrap();
        server.pause();
        let err = within(COMMAND_TIMEOUT + Duration::from_millis(400), || {
            c.lock(name, ttl, Wait::TryOnce).unwrap_err()
        });
        assert!(matches!(err, Error::Connection(_)), "{err:?}");
        // Paused much longer than one try of the give-back, so only retrying releases it.
        std::thread::sleep(COMMAND_TIMEOUT * 4);
        server.resume();
        // Redis now runs the attempt it had queued, and the give-back that follows it (or,
        // if the give-back runs first, the attempt takes nothing).
        wait_until("the lock is given back", || !exists(&server, name));
        let other = client(&server.url());
        other.lock(name, ttl, Wait::TryOnce).unwrap();
    }
}

#[test]
fn a_waiting_lock_whose_reply_was_lost_leaves_no_lock_once_the_network_heals() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port);
    let holder = client(&server.url());
    let lease = holder.lock("cut", LONG_TTL, Wait::TryOnce).unwrap();
    let waiter = client(&proxy.url());
    let waiting = {
        let waiter = waiter.clone();
        std::thread::spawn(move || {
            waiter.lock("cut", LONG_TTL, Wait::AtMost(Duration::from_secs(30)))
        })
    };
    wait_until("the waiter is queued", || queue(&server, "cut").len() == 1);
    // From now on requests reach Redis but every reply is cut: the waiter's next attempt
    // takes the lock without hearing so.
    proxy.set_fault(Fault::CutMidReply);
    holder.unlock("cut", &lease.token).unwrap();
    let result = waiting.join().unwrap();
    assert!(matches!(result, Err(Error::Connection(_))), "{result:?}");
    proxy.set_fault(Fault::None);
    // No call on the waiting handle is needed: its background thread gives the lock back.
    wait_until("the lock is given back", || !exists(&server, "cut"));
    assert!(queue(&server, "cut").is_empty());
    holder.lock("cut", LONG_TTL, Wait::TryOnce).unwrap();
}

#[test]
fn unlock_never_reports_not_owner_for_a_lock_it_released() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port);
    let c = client(&proxy.url());
    for round in 0..5 {
        let name = format!("released-{round}");
        let lease = c.lock(&name, LONG_TTL, Wait::TryOnce).unwrap();
        // The release reaches Redis and runs; its reply is cut, on a connection the client
        // has used before (which it would otherwise be tempted to send again on).
        proxy.set_fault(Fault::CutMidReply);
        let result = c.unlock(&name, &lease.token);
        proxy.set_fault(Fault::None);
        assert!(
            matches!(result, Ok(()) | Err(Error::Connection(_))),
            "round {round}: {result:?}"
        );
        wait_until("the lock is released", || !exists(&server, &name));
    }
}

#[test]
fn unlock_after_an_idle_restart_that_kept_the_data_releases_and_says_so() {
    let mut server = RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    let c = client(&server.url());
    let lease = c.lock("kept", LONG_TTL, Wait::TryOnce).unwrap();
    server.restart();
    // Once Redis has loaded its data back (it answers LOADING until then).
    wait_until("the lock survived the restart", || exists(&server, "kept"));
    // The idle connection is dead; the release must go over a new one, and only once.
    c.unlock("kept", &lease.token).unwrap();
    assert!(!exists(&server, "kept"));
}

#[test]
fn the_command_timeout_bounds_the_whole_command_not_each_read() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port);
    let c = client(&proxy.url());
    c.ping().unwrap();
    // A reply of a dozen bytes, 150 ms apart: each read is quick, the whole is not.
    proxy.set_fault(Fault::SlowReplies(Duration::from_millis(150)));
    let err = within(COMMAND_TIMEOUT + Duration::from_millis(400), || {
        c.lock("dribbled", LONG_TTL, Wait::TryOnce).unwrap_err()
    });
    assert!(matches!(err, Error::Connection(_)), "{err:?}");
    proxy.set_fault(Fault::None);
    wait_until("the lock is given back", || !exists(&server, "dribbled"));
}

#[test]
fn a_timed_wait_returns_within_its_bound_while_redis_is_paused() {
    let server = RedisServer::start();
    let holder = client(&server.url());
    holder.lock("bounded", LONG_TTL, Wait::TryOnce).unwrap();
    let c = client(&server.url());
    let waiting = {
        let c = c.clone();
        std::thread::spawn(move || {
            within(
                Duration::from_millis(800) + COMMAND_TIMEOUT + Duration::from_millis(400),
                || {
                    c.lock(
                        "bounded",
                        LONG_TTL,
                        Wait::AtMost(Duration::from_millis(800)),
                    )
                },
            )
        })
    };
    wait_until("the waiter is queued", || {
        queue(&server, "bounded").len() == 1
    });
    server.pause();
    let result = waiting.join().unwrap();
    server.resume();
    // Held at the last look, or a re-check in flight timed out: both are true.
    assert!(
        matches!(result, Err(Error::NotAcquired(_) | Error::Connection(_))),
        "{result:?}"
    );
}

#[test]
fn a_wait_that_redis_never_answered_ends_as_connection_not_as_held_by_another() {
    let server = RedisServer::start();
    let c = client(&server.url());
    server.pause();
    let result = within(
        Duration::from_millis(800) + COMMAND_TIMEOUT + Duration::from_millis(400),
        || {
            c.lock(
                "unheard",
                LONG_TTL,
                Wait::AtMost(Duration::from_millis(800)),
            )
        },
    );
    server.resume();
    assert!(matches!(result, Err(Error::Connection(_))), "{result:?}");
    wait_until("nothing is left held or queued", || {
        !exists(&server, "unheard") && queue(&server, "unheard").is_empty()
    });
}

#[test]
fn a_cancel_ends_a_wait_promptly_even_while_redis_is_paused() {
    let server = RedisServer::start();
    let holder = client(&server.url());
    holder.lock("frozen-wait", LONG_TTL, Wait::TryOnce).unwrap();
    let c = client(&server.url());
    let cancel = CancelSignal::new();
    let waiting = {
        let (c, cancel) = (c.clone(), cancel.clone());
        std::thread::spawn(move || {
            c.lock_cancellable("frozen-wait", LONG_TTL, Wait::Forever, &cancel)
        })
    };
    wait_until("the waiter is queued", || {
        queue(&server, "frozen-wait").len() == 1
    });
    server.pause();
    // Let a re-check be in flight to the paused server.
    std::thread::sleep(options().retry_interval * 2);
    let cancelled_at = Instant::now();
    cancel.cancel();
    let result = waiting.join().unwrap();
    let took = cancelled_at.elapsed();
    server.resume();
    assert!(matches!(result, Err(Error::Cancelled(_))), "{result:?}");
    assert!(took < scaled(Duration::from_millis(100)), "took {took:?}");
    wait_until("the waiter left the queue", || {
        queue(&server, "frozen-wait").is_empty()
    });
}

#[test]
fn the_first_wait_after_an_idle_restart_is_woken_by_the_release() {
    let mut server = RedisServer::start();
    // Re-checks so rare that only a wake-up can end the wait in time.
    let slow_poll = Options {
        retry_interval: Duration::from_secs(20),
        ..options()
    };
    let c = Arc::new(Client::new(&server.url(), slow_poll).unwrap());
    let holder = client(&server.url());
    // One wait, so that the client has a wake-up subscription, then idleness.
    let lease = holder.lock("before", LONG_TTL, Wait::TryOnce).unwrap();
    let short = c.lock("before", LONG_TTL, Wait::AtMost(Duration::from_millis(100)));
    assert!(matches!(short, Err(Error::NotAcquired(_))), "{short:?}");
    drop(lease);
    server.restart();

    let lease = holder.lock("after", LONG_TTL, Wait::TryOnce).unwrap();
    let waiting = {
        let c = c.clone();
        std::thread::spawn(move || {
            c.lock("after", LONG_TTL, Wait::AtMost(Duration::from_secs(10)))
                .map(|_| Instant::now())
        })
    };
    wait_until("the waiter is queued", || {
        queue(&server, "after").len() == 1
    });
    let released = Instant::now();
    holder.unlock("after", &lease.token).unwrap();
    let acquired = waiting.join().unwrap().unwrap();
    let took = acquired - released;
    assert!(
        took < scaled(Duration::from_millis(300)),
        "woken after {took:?}"
    );
}

#[test]
fn fencing_numbers_keep_increasing_after_redis_restarts_without_its_data() {
    let mut server = RedisServer::start();
    let c = client(&server.url());
    let before = c.lock("fenced", LONG_TTL, Wait::TryOnce).unwrap();
    c.unlock("fenced", &before.token).unwrap();
    server.restart();
    let counters = server.cli(&["--scan", "--pattern", "redilock:fence:*"]);
    assert!(counters.is_empty(), "the counter is gone: {counters}");
    let after = c.lock("fenced", LONG_TTL, Wait::TryOnce).unwrap();
    assert!(
        after.fence > before.fence,
        "{} after {}",
        after.fence,
        before.fence
    );
}

#[test]
fn close_ends_waits_and_refuses_later_calls() {
    let server = RedisServer::start();
    let holder = client(&server.url());
    let lease = holder.lock("closing", LONG_TTL, Wait::TryOnce).unwrap();
    let c = client(&server.url());
    let waiting = {
        let c = c.clone();
        std::thread::spawn(move || c.lock("closing", LONG_TTL, Wait::Forever))
    };
    wait_until("the waiter is queued", || {
        queue(&server, "closing").len() == 1
    });
    within(Duration::from_millis(500), || c.close());
    let result = waiting.join().unwrap();
    assert!(matches!(result, Err(Error::Closed(_))), "{result:?}");
    assert!(c.is_closed());
    assert!(matches!(c.ping(), Err(Error::Closed(_))));
    assert!(matches!(
        c.lock("other", LONG_TTL, Wait::TryOnce),
        Err(Error::Closed(_))
    ));
    c.close(); // idempotent
    wait_until("the closed waiter left the queue", || {
        queue(&server, "closing").is_empty()
    });
    holder.unlock("closing", &lease.token).unwrap();
}

#[test]
fn a_lock_taken_while_the_client_closes_is_given_back_before_it_is_freed() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port);
    let patient = Options {
        command_timeout: Duration::from_secs(10),
        ..options()
    };
    let c = Arc::new(Client::new(&proxy.url(), patient).unwrap());
    let warm_up = c.lock("closing-race", LONG_TTL, Wait::TryOnce).unwrap(); // scripts loaded
    c.unlock("closing-race", &warm_up.token).unwrap();
    // Replies crawl: the attempt takes the lock in Redis long before its reply arrives.
    proxy.set_fault(Fault::SlowReplies(Duration::from_millis(30)));
    let locking = {
        let c = c.clone();
        std::thread::spawn(move || {
            let options = LockOptions {
                auto_renew: Some(AutoRenew::default()),
                ..LockOptions::default()
            };
            c.lock_with("closing-race", LONG_TTL, Wait::TryOnce, options)
        })
    };
    wait_until("the attempt took the lock", || {
        exists(&server, "closing-race")
    });
    c.close();
    let result = locking.join().unwrap();
    assert!(matches!(result, Err(Error::Closed(_))), "{result:?}");
    proxy.set_fault(Fault::None);
    drop(c); // the last handle: freeing flushes what is still to give back
    assert!(!exists(&server, "closing-race"), "left behind after free");
}

#[test]
fn closing_counts_as_the_loss_of_every_renewed_lease() {
    let server = RedisServer::start();
    let c = client(&server.url());
    let lease = c.lock("renewed", LONG_TTL, Wait::TryOnce).unwrap();
    c.auto_renew("renewed", &lease, AutoRenew::default())
        .unwrap();
    let watching = {
        let (c, token) = (c.clone(), lease.token.clone());
        std::thread::spawn(move || c.wait_for_loss(&token, Wait::Forever, None))
    };
    // The watcher may start before or after the close: either way it hears of the loss.
    c.close();
    assert_eq!(
        watching.join().unwrap().or_else(|err| match err {
            Error::Closed(_) => Ok(true),
            other => Err(other),
        }),
        Ok(true)
    );
    assert!(matches!(
        c.renewal_lost(&lease.token),
        Err(Error::Closed(_))
    ));
}
