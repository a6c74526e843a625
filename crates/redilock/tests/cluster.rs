//! Redis Cluster: 3 masters and 3 replicas on loopback (`redis+cluster://`). Every key of a
//! lock in the lock name's slot, whatever braces the name holds; locks spread over the
//! masters; a waiter woken by a release on another node; a slot migrated while clients lock
//! and unlock in a loop; a master's failover under a client.

use redilock::{blocking::Client, Error, Options, Wait};
use redilock_test_harness::{scaled, wait_until, RedisCluster, RedisServer};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TTL: Option<Duration> = Some(Duration::from_secs(30));

fn options() -> Options {
    Options {
        // Long: a waiter must be woken by the release, not find the lock free by looking.
        retry_interval: Duration::from_secs(60),
        command_timeout: scaled(Duration::from_secs(5)),
        ..Options::default()
    }
}

/// A client that knows one node of the cluster, `seed`: it finds the others itself.
fn client_via(cluster: &RedisCluster, seed: &RedisServer) -> Client {
    let url = format!("redis+cluster://127.0.0.1:{}", seed.port);
    let client = Client::new(&url, options()).unwrap();
    assert!(cluster.nodes().iter().any(|n| n.port == seed.port));
    client
}

fn client(cluster: &RedisCluster) -> Client {
    Client::new(&cluster.url(), options()).unwrap()
}

/// Every key on `node` (redilock's and the names themselves).
fn keys(node: &RedisServer) -> Vec<String> {
    let listed = node.cli(&["--scan"]);
    listed.lines().map(str::to_string).collect()
}

/// A name whose slot another master than `cluster.master(avoid)` serves.
fn name_off(cluster: &RedisCluster, avoid: usize) -> String {
    (0..)
        .map(|i| format!("off-{i}"))
        .find(|name| cluster.master_index_for_slot(cluster.keyslot(name)) != avoid)
        .unwrap()
}

#[test]
fn every_key_of_a_lock_is_in_the_slot_of_its_name_whatever_braces_it_holds() {
    let cluster = RedisCluster::start(3, 1);
    let holder = client(&cluster);
    let waiter = client(&cluster);
    for name in [
        "a}b",
        "a{b",
        "x{}y",
        "foo{{bar}}zap",
        "{bar",
        "{user1}:job",
        "plain",
    ] {
        let slot = cluster.keyslot(name);
        let node = cluster.master_for_slot(slot);
        let lease = holder.lock(name, TTL, Wait::TryOnce).unwrap();
        let seen = std::cell::RefCell::new(std::collections::BTreeSet::new());
        std::thread::scope(|s| {
            // A waiter that gives up leaves a queue entry, then a withdrawn token.
            let waiting =
                s.spawn(|| waiter.lock(name, TTL, Wait::AtMost(scaled(Duration::from_secs(2)))));
            wait_until("the waiter queues", || {
                let mut seen = seen.borrow_mut();
                seen.extend(keys(node));
                seen.iter().any(|k| k.starts_with("redilock:queue:"))
            });
            assert!(matches!(
                waiting.join().unwrap(),
                Err(Error::NotAcquired(_))
            ));
        });
        let mut seen = seen.into_inner();
        seen.extend(keys(node));
        holder.unlock(name, &lease.token).unwrap();
        for kind in ["fence", "queue", "withdrawn"] {
            let prefix = format!("redilock:{kind}:");
            assert!(
                seen.iter()
                    .any(|k| k.starts_with(&prefix) && k.ends_with(name)),
                "{name}: no {kind} key among {seen:?}"
            );
        }
        assert!(seen.contains(name), "{name}: the lock key itself");
        for key in seen.iter().filter(|k| k.ends_with(name)) {
            assert_eq!(
                cluster.keyslot(key),
                slot,
                "{key} is not in the slot of {name}"
            );
        }
        for other in cluster.masters() {
            if other.port != node.port {
                let strays: Vec<_> = keys(other)
                    .into_iter()
                    .filter(|k| k.ends_with(name))
                    .collect();
                assert!(
                    strays.is_empty(),
                    "{name}: keys on another master: {strays:?}"
                );
            }
        }
    }
}

#[test]
fn locks_spread_over_the_masters() {
    let cluster = RedisCluster::start(3, 0);
    let client = client_via(&cluster, cluster.master(0));
    let leases: Vec<_> = (0..30)
        .map(|i| {
            let name = format!("job-{i}");
            (client.lock(&name, TTL, Wait::TryOnce).unwrap(), name)
        })
        .collect();
    for (index, master) in cluster.masters().iter().enumerate() {
        let held = keys(master)
            .iter()
            .filter(|k| k.starts_with("job-"))
            .count();
        assert!(held > 0, "master {index} holds none of the 30 locks");
    }
    for (lease, name) in leases {
        client.unlock(&name, &lease.token).unwrap();
    }
}

#[test]
fn a_waiter_is_woken_by_a_release_on_a_master_it_did_not_name() {
    let cluster = RedisCluster::start(3, 0);
    let name = name_off(&cluster, 1);
    let holder = client_via(&cluster, cluster.master(1));
    let waiter = client_via(&cluster, cluster.master(1));
    let lease = holder.lock(&name, TTL, Wait::TryOnce).unwrap();
    let queued = cluster.master_for_slot(cluster.keyslot(&name));
    std::thread::scope(|s| {
        let waiting = s.spawn(|| waiter.lock(&name, TTL, Wait::Forever));
        wait_until("the waiter queues", || {
            keys(queued)
                .iter()
                .any(|k| k.starts_with("redilock:queue:"))
        });
        let released = Instant::now();
        holder.unlock(&name, &lease.token).unwrap();
        let handed = waiting.join().unwrap().expect("the waiter gets the lock");
        let took = released.elapsed();
        // The waiter's re-check is a minute away: only the wake-up explains a prompt lock.
        assert!(
            took < scaled(Duration::from_secs(5)),
            "woken after {took:?}"
        );
        waiter.unlock(&name, &handed.token).unwrap();
    });
}

#[test]
fn a_slot_migrated_while_clients_lock_and_unlock_loses_no_exclusion_and_no_call() {
    let cluster = RedisCluster::start(3, 0);
    let name = "migrating";
    let slot = cluster.keyslot(name);
    let clients = [client(&cluster), client(&cluster)];
    let inside = AtomicBool::new(false);
    let counter = AtomicU64::new(0);
    let cycles = AtomicU64::new(0);
    let stop = Arc::new(AtomicBool::new(false));
    let errors = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for client in &clients {
            for _ in 0..2 {
                s.spawn(|| {
                    while !stop.load(Ordering::SeqCst) {
                        let lease = match client.lock(name, TTL, Wait::Forever) {
                            Ok(lease) => lease,
                            Err(err) => {
                                errors.lock().unwrap().push(format!("lock: {err}"));
                                continue;
                            }
                        };
                        assert!(!inside.swap(true, Ordering::SeqCst), "two holders at once");
                        // Not an atomic increment: an overlap would lose one.
                        let seen = counter.load(Ordering::SeqCst);
                        std::thread::yield_now();
                        counter.store(seen + 1, Ordering::SeqCst);
                        inside.store(false, Ordering::SeqCst);
                        if let Err(err) = client.unlock(name, &lease.token) {
                            errors.lock().unwrap().push(format!("unlock: {err}"));
                        }
                        // A plain command (PTTL) is asked, too, after ASK.
                        if let Err(err) = client.state(name) {
                            errors.lock().unwrap().push(format!("state: {err}"));
                        }
                        cycles.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
        }
        let mut owner = cluster.master_index_for_slot(slot);
        for round in 0..4 {
            let before = cycles.load(Ordering::SeqCst);
            wait_until("the clients lock in a loop", || {
                cycles.load(Ordering::SeqCst) > before + 20
            });
            owner = (owner + 1 + round % 2) % 3;
            if round % 2 == 0 {
                cluster.migrate_slot(slot, owner);
            } else {
                // Half-migrated for a while: some keys here, some there (TRYAGAIN, ASK).
                let migration = cluster.begin_migration(slot, owner);
                migration.move_keys_at_most(1);
                std::thread::sleep(Duration::from_millis(200));
                migration.finish();
            }
        }
        let before = cycles.load(Ordering::SeqCst);
        wait_until("the clients lock after the last migration", || {
            cycles.load(Ordering::SeqCst) > before + 20
        });
        stop.store(true, Ordering::SeqCst);
    });
    assert_eq!(errors.into_inner().unwrap(), Vec::<String>::new());
    let refusals = |code: &str| -> u64 {
        let line = format!("errorstat_{code}:count=");
        let stats: String = cluster
            .masters()
            .iter()
            .map(|m| m.cli(&["INFO", "errorstats"]) + "\n")
            .collect();
        stats
            .lines()
            .filter_map(|l| l.strip_prefix(&line)?.trim().parse::<u64>().ok())
            .sum()
    };
    let (moved, ask, try_again) = (refusals("MOVED"), refusals("ASK"), refusals("TRYAGAIN"));
    eprintln!(
        "{} cycles; the clients followed {moved} MOVED, {ask} ASK, {try_again} TRYAGAIN",
        cycles.load(Ordering::SeqCst)
    );
    assert!(
        moved > 0,
        "the clients were never redirected: the slot did not move"
    );
    assert_eq!(
        counter.load(Ordering::SeqCst),
        cycles.load(Ordering::SeqCst)
    );
    assert_eq!(
        cluster.master_for_slot(slot).cli(&["EXISTS", name]),
        "0",
        "the last unlock released the lock on the slot's new master"
    );
}

#[test]
fn the_same_client_locks_again_after_its_master_fails_over() {
    let mut cluster = RedisCluster::start(3, 1);
    let client = client(&cluster);
    let name = "failing-over";
    let index = cluster.master_index_for_slot(cluster.keyslot(name));
    let lease = client.lock(name, TTL, Wait::TryOnce).unwrap();
    client.unlock(name, &lease.token).unwrap();
    cluster.kill_master(index);
    cluster.wait_for_promotion();
    let promoted = cluster.master(index).port;
    let started = Instant::now();
    wait_until(
        "the client locks on the promoted replica",
        || match client.lock(name, TTL, Wait::TryOnce) {
            Ok(lease) => client.unlock(name, &lease.token).is_ok(),
            Err(_) => false,
        },
    );
    eprintln!(
        "locked again {:?} after the promotion was agreed (master now on port {promoted})",
        started.elapsed()
    );
    assert_eq!(
        cluster.master_for_slot(cluster.keyslot(name)).port,
        promoted
    );
}

#[test]
fn a_tls_cluster_is_locked_on_every_master_over_tls() {
    let certificates = redilock_test_harness::tls::TestCertificates::generate();
    let cluster = RedisCluster::start_tls(&certificates, 3, 0);
    assert!(cluster.url().starts_with("rediss+cluster://"));
    let options = Options {
        tls_ca_file: Some(certificates.ca()),
        ..options()
    };
    let holder = Client::new(&cluster.url(), options.clone()).unwrap();
    let waiter = Client::new(&cluster.url(), options).unwrap();
    let mut masters_used = std::collections::BTreeSet::new();
    for i in 0..12 {
        let name = format!("tls-{i}");
        let lease = holder.lock(&name, TTL, Wait::TryOnce).unwrap();
        masters_used.insert(cluster.master_index_for_slot(cluster.keyslot(&name)));
        std::thread::scope(|s| {
            // Woken over the TLS subscription of the slot's master.
            let waiting = s.spawn(|| waiter.lock(&name, TTL, Wait::Forever));
            let queued = cluster.master_for_slot(cluster.keyslot(&name));
            wait_until("the waiter queues", || {
                keys(queued)
                    .iter()
                    .any(|k| k.starts_with("redilock:queue:"))
            });
            holder.unlock(&name, &lease.token).unwrap();
            let handed = waiting.join().unwrap().unwrap();
            waiter.unlock(&name, &handed.token).unwrap();
        });
    }
    assert_eq!(masters_used.len(), 3, "12 names on fewer than 3 masters");
}

#[test]
fn each_master_is_asked_for_the_acknowledgements_its_own_replicas_can_give() {
    let mut cluster = RedisCluster::start(2, 1);
    let without = 0;
    let replica = cluster
        .nodes()
        .iter()
        .position(|n| n.port == cluster.replicas(without)[0].port);
    cluster.node_mut(replica.unwrap()).kill();
    let alone = cluster.master(without);
    wait_until("the master counts no replica", || {
        alone.cli(&["ROLE"]).lines().count() <= 3
    });
    let names: Vec<String> = (0..).map(|i| format!("acks-{i}")).take(40).collect();
    let on = |index: usize| {
        names
            .iter()
            .filter(|n| cluster.master_index_for_slot(cluster.keyslot(n)) == index)
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
    };
    let client = client(&cluster);
    // Alternately on the master without a replica and on the one with: each write waits for
    // what its own master has, none for one and one for the other.
    for (a, b) in on(without).iter().zip(on(1 - without).iter()) {
        for name in [a, b] {
            let lease = client.lock(name, TTL, Wait::TryOnce).unwrap();
            client.unlock(name, &lease.token).unwrap();
        }
    }
    let waits = |node: &RedisServer| {
        node.cli(&["INFO", "commandstats"])
            .contains("cmdstat_wait:")
    };
    assert!(!waits(alone), "WAIT sent to the master without replicas");
    assert!(
        waits(cluster.master(1 - without)),
        "no WAIT on the master with a replica"
    );
}

#[test]
fn a_paused_master_fails_the_call_within_its_bound_and_nothing_is_left_held() {
    let cluster = RedisCluster::start(3, 0);
    let command_timeout = scaled(Duration::from_millis(500));
    let client = Client::new(
        &cluster.url(),
        Options {
            command_timeout,
            ..options()
        },
    )
    .unwrap();
    let name = "paused";
    let master = cluster.master_for_slot(cluster.keyslot(name));
    client.ping().unwrap();
    master.pause();
    let started = Instant::now();
    let failed = client.lock(name, TTL, Wait::TryOnce);
    let took = started.elapsed();
    master.resume();
    assert!(matches!(failed, Err(Error::Connection(_))), "{failed:?}");
    assert!(
        took < command_timeout + scaled(Duration::from_secs(1)),
        "took {took:?}"
    );
    // The attempt the paused master ran once it resumed is given back.
    wait_until("the lock is free again", || {
        master.cli(&["EXISTS", name]) == "0"
    });
    wait_until("the client locks again", || {
        client.lock(name, TTL, Wait::TryOnce).is_ok()
    });
}
