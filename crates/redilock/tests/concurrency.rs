//! Many threads on one client: the lock alone keeps a non-atomic counter exact.

use redilock::blocking::{Client, DIRECT_CONNECTIONS};
use redilock::{Options, Wait};
use redilock_test_harness::RedisServer;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const TTL: Option<Duration> = Some(Duration::from_secs(10));

/// A counter updated by a separate read and write: concurrent updates lose increments, and
/// `inside` catches two holders at once.
#[derive(Default)]
struct Guarded {
    counter: AtomicU64,
    inside: AtomicBool,
    overlaps: AtomicU64,
}

impl Guarded {
    fn increment(&self) {
        if self.inside.swap(true, Ordering::SeqCst) {
            self.overlaps.fetch_add(1, Ordering::SeqCst);
        }
        let seen = self.counter.load(Ordering::SeqCst);
        std::thread::yield_now();
        self.counter.store(seen + 1, Ordering::SeqCst);
        self.inside.store(false, Ordering::SeqCst);
    }
}

#[test]
fn sixteen_threads_on_one_client_keep_an_exact_count() {
    const THREADS: u64 = 16;
    const ITERATIONS: u64 = 100;
    let server = RedisServer::start();
    let client = Arc::new(Client::new(&server.url(), Options::default()).unwrap());
    let guarded = Arc::new(Guarded::default());
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let (client, guarded) = (client.clone(), guarded.clone());
            std::thread::spawn(move || {
                for _ in 0..ITERATIONS {
                    let token = client.lock("counter", TTL, Wait::Forever).unwrap().token;
                    guarded.increment();
                    client.unlock("counter", &token).unwrap();
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(guarded.overlaps.load(Ordering::SeqCst), 0);
    assert_eq!(guarded.counter.load(Ordering::SeqCst), THREADS * ITERATIONS);
    // A few connections serve all threads: the direct ones, the multiplexed one for the
    // rest, the wake-up subscription and the background thread's; plus the redis-cli that asks.
    let connections = server.cli(&["CLIENT", "LIST"]).lines().count();
    assert!(
        connections <= DIRECT_CONNECTIONS + 4,
        "{connections} connections for one client"
    );
}

#[test]
fn threads_on_separate_clients_and_distinct_names_do_not_block_each_other() {
    let server = RedisServer::start();
    let clients: Vec<_> = (0..4)
        .map(|_| Arc::new(Client::new(&server.url(), Options::default()).unwrap()))
        .collect();
    let threads: Vec<_> = (0..16)
        .map(|i| {
            let client = clients[i % clients.len()].clone();
            std::thread::spawn(move || {
                let name = format!("own-{i}");
                for _ in 0..50 {
                    let token = client
                        .lock(&name, TTL, Wait::TryOnce)
                        .expect("a private name is always free");
                    client.unlock(&name, &token.token).unwrap();
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(
        server.cli(&["KEYS", "own-*"]),
        "",
        "every lock was released"
    );
}
