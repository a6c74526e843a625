//! Quorum locking over 5 independent masters on loopback: masters killed or paused (SIGSTOP),
//! too many down, fences across holders, wake-ups from any master, renewal by majority.

use redilock::{blocking::Client, AutoRenew, CancelSignal, Error, LockState, Options, Wait};
use redilock_test_harness::{queue, scaled, wait_until, RedisServer};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const MASTERS: usize = 5;
const TTL: Option<Duration> = Some(Duration::from_secs(10));

fn masters() -> Vec<RedisServer> {
    (0..MASTERS).map(|_| RedisServer::start()).collect()
}

/// Generous against loopback round trips, so that a loaded machine does not fail a master
/// (a client's first call to a master also connects and loads the scripts).
fn node_timeout() -> Duration {
    scaled(Duration::from_millis(300))
}

fn options() -> Options {
    Options {
        node_timeout: Some(node_timeout()),
        connect_timeout: Duration::from_millis(300),
        command_timeout: Duration::from_secs(1),
        ..Options::default()
    }
}

fn client(masters: &[RedisServer]) -> Client {
    let urls: Vec<String> = masters.iter().map(RedisServer::url).collect();
    Client::new_quorum(&urls, options()).unwrap()
}

/// How many masters hold `name`.
fn holders(masters: &[RedisServer], name: &str) -> usize {
    (masters.iter())
        .filter(|m| m.is_running() && !m.is_paused() && m.cli(&["EXISTS", name]) == "1")
        .count()
}

#[test]
fn a_lock_is_held_on_every_master_and_released_on_all() {
    let masters = masters();
    let c = client(&masters);
    let lease = c.lock("job", TTL, Wait::TryOnce).unwrap();
    assert_eq!(holders(&masters, "job"), MASTERS);
    assert!(lease.validity > Duration::from_secs(9) && lease.validity < Duration::from_secs(10));
    let remaining = c.remaining_ttl("job", &lease.token).unwrap().unwrap();
    assert!(remaining <= Duration::from_secs(10), "{remaining:?}");
    assert!(matches!(c.state("job").unwrap(), LockState::Held { .. }));
    c.extend("job", &lease.token, Duration::from_secs(20))
        .unwrap();
    c.unlock("job", &lease.token).unwrap();
    // Unlock returns once a quorum released it; the other masters follow in the background.
    wait_until("released on every master", || holders(&masters, "job") == 0);
    assert_eq!(c.state("job").unwrap(), LockState::Free);
    assert!(matches!(
        c.unlock("job", &lease.token),
        Err(Error::NotOwner(_))
    ));
    let next = c.lock("job", TTL, Wait::TryOnce).unwrap();
    assert!(next.fence > lease.fence);
    c.ping().unwrap();
}

#[test]
fn a_lock_held_elsewhere_is_not_acquired_and_leaves_nothing_behind() {
    let masters = masters();
    let (a, b) = (client(&masters), client(&masters));
    let held = a.lock("busy", TTL, Wait::TryOnce).unwrap();
    let err = b.lock("busy", TTL, Wait::TryOnce).unwrap_err();
    assert!(matches!(err, Error::NotAcquired(_)), "{err:?}");
    let started = Instant::now();
    let err = b
        .lock("busy", TTL, Wait::AtMost(Duration::from_millis(300)))
        .unwrap_err();
    assert!(matches!(err, Error::NotAcquired(_)), "{err:?}");
    assert!(started.elapsed() < scaled(Duration::from_secs(2)));
    a.unlock("busy", &held.token).unwrap();
    wait_until("the waiter's places are given back", || {
        masters.iter().all(|m| queue(m, "busy").is_empty())
    });
}

#[test]
fn two_killed_masters_still_leave_a_quorum() {
    let mut masters = masters();
    let c = client(&masters);
    c.ping().unwrap();
    masters[0].kill();
    masters[3].kill();
    let started = Instant::now();
    let lease = c.lock("two-down", TTL, Wait::TryOnce).unwrap();
    assert!(
        started.elapsed() < node_timeout() + scaled(Duration::from_millis(500)),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(holders(&masters, "two-down"), 3);
    c.extend("two-down", &lease.token, Duration::from_secs(20))
        .unwrap();
    c.unlock("two-down", &lease.token).unwrap();
}

#[test]
fn two_paused_masters_cost_one_node_timeout() {
    let masters = masters();
    let c = client(&masters);
    c.ping().unwrap();
    masters[1].pause();
    masters[4].pause();
    let started = Instant::now();
    let lease = c.lock("two-paused", TTL, Wait::TryOnce).unwrap();
    let took = started.elapsed();
    assert!(
        took < node_timeout() + scaled(Duration::from_millis(500)),
        "{took:?}"
    );
    c.unlock("two-paused", &lease.token).unwrap();
    masters[1].resume();
    masters[4].resume();
    // The attempts the paused masters ran late are given back once they answer.
    wait_until("nothing is left on the paused masters", || {
        holders(&masters, "two-paused") == 0
    });
}

#[test]
fn three_masters_down_is_an_outage_not_contention() {
    let mut masters = masters();
    let c = client(&masters);
    for master in &mut masters[..3] {
        master.kill();
    }
    let started = Instant::now();
    let err = c.lock("outage", TTL, Wait::Forever).unwrap_err();
    assert!(started.elapsed() < scaled(Duration::from_secs(2)));
    let Error::QuorumUnavailable(message) = &err else {
        panic!("expected QuorumUnavailable, got {err:?}");
    };
    for master in &masters {
        let port = master.url().rsplit(':').next().unwrap().to_string();
        assert!(message.contains(&port), "{message}");
    }
    assert!(message.contains("granted"), "{message}");
    assert_eq!(
        holders(&masters, "outage"),
        0,
        "nothing left held: {message}"
    );
    assert!(matches!(c.ping(), Err(Error::QuorumUnavailable(_))));
}

#[test]
fn a_password_in_a_master_url_never_reaches_a_message() {
    let masters = masters();
    let mut urls: Vec<String> = masters.iter().map(RedisServer::url).collect();
    urls[0] = urls[0].replace("redis://", "redis://:s3cret@");
    let c = Client::new_quorum(&urls, options()).unwrap();
    masters[1].pause();
    masters[2].pause();
    masters[3].pause();
    let err = c.lock("secret", TTL, Wait::TryOnce).unwrap_err();
    for master in &masters[1..4] {
        master.resume();
    }
    assert!(matches!(err, Error::QuorumUnavailable(_)), "{err:?}");
    assert!(!err.to_string().contains("s3cret"), "{err}");
}

#[test]
fn a_waiter_is_woken_by_a_release_on_any_master() {
    let masters = masters();
    let (holder, waiter) = (client(&masters), client(&masters));
    let held = holder.lock("wake", TTL, Wait::TryOnce).unwrap();
    let released_at = Arc::new(Mutex::new(None));
    std::thread::scope(|scope| {
        let waiting = scope.spawn(|| {
            let lease = waiter.lock("wake", TTL, Wait::Forever).unwrap();
            (Instant::now(), lease)
        });
        wait_until("the waiter queued on every master", || {
            masters.iter().all(|m| queue(m, "wake").len() == 1)
        });
        *released_at.lock().unwrap() = Some(Instant::now());
        holder.unlock("wake", &held.token).unwrap();
        let (acquired_at, lease) = waiting.join().unwrap();
        let woken_after = acquired_at - released_at.lock().unwrap().unwrap();
        // The TTL is 10 s and the retry interval 10 s: only a wake-up is this quick.
        assert!(
            woken_after < scaled(Duration::from_secs(1)),
            "{woken_after:?}"
        );
        assert!(lease.fence > held.fence);
        waiter.unlock("wake", &lease.token).unwrap();
    });
}

#[test]
fn fences_strictly_increase_while_random_pairs_of_masters_are_paused() {
    let masters = masters();
    let urls: Vec<String> = masters.iter().map(RedisServer::url).collect();
    // Each round waits out the paused pair: a short node timeout keeps 300 rounds quick.
    let quick = Options {
        node_timeout: Some(scaled(Duration::from_millis(80))),
        ..options()
    };
    let c = Client::new_quorum(&urls, quick).unwrap();
    wait_until("connected to every master", || c.ping().is_ok());
    let mut last = 0;
    let mut random = 0x2545_f491_4f6c_dd1d_u64;
    for round in 0..300 {
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        let first = (random % MASTERS as u64) as usize;
        let second = (first + 1 + (random >> 8) as usize % (MASTERS - 1)) % MASTERS;
        masters[first].pause();
        masters[second].pause();
        // A round the loaded machine made too slow says nothing about fences: try it again.
        let mut lease = c.lock("fenced", Some(Duration::from_secs(5)), Wait::TryOnce);
        for _ in 0..3 {
            if !matches!(lease, Err(Error::QuorumUnavailable(_))) {
                break;
            }
            lease = c.lock("fenced", Some(Duration::from_secs(5)), Wait::TryOnce);
        }
        masters[first].resume();
        masters[second].resume();
        let lease = lease.unwrap_or_else(|err| panic!("round {round}: {err}"));
        assert!(
            lease.fence > last,
            "round {round}: {} after {last}",
            lease.fence
        );
        last = lease.fence;
        if c.unlock("fenced", &lease.token).is_err() {
            // Too slow to answer on a loaded machine: the lock expires instead.
            wait_until("the lock is free again", || {
                c.state("fenced") == Ok(LockState::Free)
            });
        }
    }
}

#[test]
fn threads_under_random_pauses_never_overlap_among_fenced_writes() {
    let masters = masters();
    let clients: Vec<Client> = (0..3).map(|_| client(&masters)).collect();
    // The protected resource: accepts a write only with a fence above the last it saw.
    let highest = AtomicU64::new(0);
    let inside = AtomicBool::new(false);
    let (writes, overlaps) = (AtomicU64::new(0), AtomicU64::new(0));
    let until = Instant::now() + scaled(Duration::from_secs(4));
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut pick = 7usize;
            while Instant::now() < until {
                pick = (pick * 31 + 11) % MASTERS;
                masters[pick].pause();
                std::thread::sleep(Duration::from_millis(150));
                masters[pick].resume();
            }
        });
        for c in &clients {
            scope.spawn(|| {
                while Instant::now() < until {
                    let wait = Wait::AtMost(Duration::from_millis(500));
                    let Ok(lease) = c.lock("soak", Some(Duration::from_secs(2)), wait) else {
                        continue;
                    };
                    if highest.fetch_max(lease.fence, Ordering::SeqCst) < lease.fence {
                        if inside.swap(true, Ordering::SeqCst) {
                            overlaps.fetch_add(1, Ordering::SeqCst);
                        }
                        writes.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(2));
                        inside.store(false, Ordering::SeqCst);
                    }
                    let _ = c.unlock("soak", &lease.token);
                }
            });
        }
    });
    assert_eq!(overlaps.load(Ordering::SeqCst), 0);
    assert!(writes.load(Ordering::SeqCst) > 10, "{writes:?}");
}

#[test]
fn renewal_keeps_a_majority_and_reports_the_loss_of_it() {
    let masters = masters();
    let c = client(&masters);
    let ttl = Duration::from_millis(600);
    let lease = c.lock("renewed", Some(ttl), Wait::TryOnce).unwrap();
    let renewal = c
        .auto_renew("renewed", &lease, AutoRenew::default())
        .unwrap();
    std::thread::sleep(ttl * 2);
    assert!(!renewal.is_lost());
    assert!(holders(&masters, "renewed") >= 3);
    for master in &masters[..3] {
        master.cli(&["DEL", "renewed"]);
    }
    wait_until("the loss is reported", || renewal.is_lost());
    assert!(matches!(
        c.unlock("renewed", &lease.token),
        Err(Error::NotOwner(_))
    ));
}

#[test]
fn a_quorum_client_needs_three_separate_masters() {
    let masters = masters();
    let urls: Vec<String> = masters.iter().map(RedisServer::url).collect();
    let err = Client::new_quorum(&urls[..2], options()).err().unwrap();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    let twice = [urls[0].clone(), urls[0].clone(), urls[1].clone()];
    assert!(Client::new_quorum(&twice, options()).is_err());
}

#[test]
fn a_cancelled_wait_ends_at_once_and_gives_its_places_back() {
    let masters = masters();
    let (holder, waiter) = (client(&masters), client(&masters));
    let held = holder.lock("cancel", TTL, Wait::TryOnce).unwrap();
    let cancel = CancelSignal::new();
    std::thread::scope(|scope| {
        let waiting = scope.spawn(|| {
            let ended = waiter.lock_cancellable("cancel", TTL, Wait::Forever, &cancel);
            (Instant::now(), ended)
        });
        wait_until("the waiter queued on every master", || {
            masters.iter().all(|m| queue(m, "cancel").len() == 1)
        });
        let cancelled_at = Instant::now();
        cancel.cancel();
        let (ended_at, ended) = waiting.join().unwrap();
        assert!(matches!(ended, Err(Error::Cancelled(_))), "{ended:?}");
        assert!(ended_at - cancelled_at < scaled(Duration::from_millis(500)));
    });
    wait_until("its places are given back", || {
        masters.iter().all(|m| queue(m, "cancel").is_empty())
    });
    holder.unlock("cancel", &held.token).unwrap();
}

#[test]
fn the_async_client_locks_by_quorum_and_a_dropped_call_leaves_nothing() {
    let masters = masters();
    let urls: Vec<String> = masters.iter().map(RedisServer::url).collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let c = redilock::Client::new_quorum(&urls, options()).unwrap();
        let lease = c.lock("async", TTL, Wait::TryOnce).await.unwrap();
        assert_eq!(holders(&masters, "async"), MASTERS);
        let abandoned = tokio::time::timeout(
            Duration::from_millis(100),
            c.lock("async", TTL, Wait::Forever),
        )
        .await;
        assert!(abandoned.is_err());
        c.unlock("async", &lease.token).await.unwrap();
        let started = Instant::now();
        while !masters
            .iter()
            .all(|m| queue(m, "async").is_empty() && m.cli(&["EXISTS", "async"]) == "0")
        {
            assert!(
                started.elapsed() < scaled(Duration::from_secs(5)),
                "the abandoned call left something"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        c.close().await;
    });
}
