//! Leases: extend, remaining TTL, auto-renewal with loss notice, fencing numbers — including
//! a holder process paused past its TTL and four processes taking one lock a thousand times.
//!
//! The multi-process tests run this test binary again in a "role" (chosen by environment
//! variables), so the processes are real and separate.

mod common;

use common::RedisServer;
use redilock::{blocking::Client, Error, KeepAlive, Options, Token, Wait};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
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
    let ttl = Duration::from_millis(300);
    let lease = c.lock("long-job", Some(ttl), Wait::TryOnce).unwrap();
    let renewal = c
        .keep_alive("long-job", &lease, KeepAlive::default())
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
    assert_eq!(c.renewal_lost(&lease.token), Some(false));
    c.unlock("long-job", &lease.token).unwrap();
    assert_eq!(server.cli(&["EXISTS", "long-job"]), "0");
    assert_eq!(
        c.renewal_lost(&lease.token),
        None,
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
    let keep = KeepAlive {
        on_lost: Some(Box::new(move || {
            told_in_callback.store(true, Ordering::SeqCst)
        })),
        ..KeepAlive::default()
    };
    let renewal = c.keep_alive("stolen", &lease, keep).unwrap();
    server.cli(&["DEL", "stolen"]);
    std::thread::sleep(ttl); // one renewal period and then some
    assert!(renewal.is_lost());
    assert!(told.load(Ordering::SeqCst), "the callback ran");
    assert!(matches!(
        c.unlock("stolen", &lease.token),
        Err(Error::NotOwner(_))
    ));
}

#[test]
fn max_hold_caps_renewal_and_the_lease_then_runs_out() {
    let server = RedisServer::start();
    let c = client(&server);
    let ttl = Duration::from_millis(200);
    let lease = c.lock("capped", Some(ttl), Wait::TryOnce).unwrap();
    let keep = KeepAlive {
        max_hold: Some(Duration::from_millis(500)),
        ..KeepAlive::default()
    };
    let renewal = c.keep_alive("capped", &lease, keep).unwrap();
    std::thread::sleep(Duration::from_millis(350));
    assert_eq!(
        server.cli(&["EXISTS", "capped"]),
        "1",
        "renewed past its TTL"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        server.cli(&["EXISTS", "capped"]),
        "0",
        "not renewed past the cap"
    );
    assert!(renewal.is_lost());
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
        .keep_alive("fragile", &lease, KeepAlive::default())
        .unwrap();
    server.kill();
    let killed = Instant::now();
    while !renewal.is_lost() && killed.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(renewal.is_lost());
    assert!(
        killed.elapsed() <= ttl + Duration::from_millis(200),
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

/// The Redis server's clock, in microseconds.
fn redis_clock_us(server: &RedisServer) -> u64 {
    let time = server.cli(&["TIME"]);
    let mut parts = time.lines().map(|part| part.parse::<u64>().unwrap());
    parts.next().unwrap() * 1_000_000 + parts.next().unwrap()
}

/// The toy resource of the tests below: accepts a write only with a fencing number at least
/// as new as the newest it has seen.
#[derive(Default)]
struct FencedResource {
    newest: u64,
    accepted: Vec<u64>,
    rejected: Vec<u64>,
}

impl FencedResource {
    fn write(&mut self, fence: u64) -> bool {
        if fence < self.newest {
            self.rejected.push(fence);
            return false;
        }
        self.newest = fence;
        self.accepted.push(fence);
        true
    }
}

/// Runs a role of this test binary in a child process.
fn spawn_role(role: &str, url: &str) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([role, "--exact", "--nocapture", "--test-threads=1"])
        .env("REDILOCK_ROLE_URL", url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

fn role_url() -> Option<String> {
    std::env::var("REDILOCK_ROLE_URL").ok()
}

/// Role: takes "paused" with auto-renewal, reports, waits for a line on stdin, then tries its
/// (late) write and its unlock, and reports what happened.
#[test]
fn role_paused_holder() {
    let Some(url) = role_url() else { return };
    let c = Client::new(&url, Options::default()).unwrap();
    let lease = c
        .lock("paused", Some(Duration::from_millis(300)), Wait::TryOnce)
        .unwrap();
    let keep = KeepAlive {
        on_lost: Some(Box::new(|| println!("role: lost"))),
        ..KeepAlive::default()
    };
    c.keep_alive("paused", &lease, keep).unwrap();
    println!("role: locked {}", lease.fence);
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    println!("role: write {}", lease.fence);
    match c.unlock("paused", &lease.token) {
        Err(Error::NotOwner(_)) => println!("role: unlock not-owner"),
        other => println!("role: unlock {other:?}"),
    }
}

#[test]
fn a_holder_paused_past_its_ttl_loses_the_lock_and_its_late_write_is_rejected() {
    if role_url().is_some() {
        return;
    }
    let server = RedisServer::start();
    let mut holder = spawn_role("role_paused_holder", &server.url());
    // The role's own lines, without the test harness's.
    let mut lines = BufReader::new(holder.stdout.take().unwrap())
        .lines()
        .map_while(|line| line.ok())
        .filter_map(|line| line.split_once("role: ").map(|(_, said)| said.to_string()));
    let mut next_line = move || lines.next().expect("the holder ended early");
    let mut resource = FencedResource::default();

    let first_fence: u64 = next_line()
        .strip_prefix("locked ")
        .unwrap()
        .parse()
        .unwrap();
    assert!(resource.write(first_fence));
    unsafe { libc::kill(holder.id() as i32, libc::SIGSTOP) };
    let c = client(&server);
    let lease = c
        .lock("paused", TTL, Wait::AtMost(Duration::from_secs(5)))
        .unwrap();
    assert!(lease.fence > first_fence);
    assert!(resource.write(lease.fence));
    unsafe { libc::kill(holder.id() as i32, libc::SIGCONT) };

    assert_eq!(
        next_line(),
        "lost",
        "the paused holder was told it lost the lock"
    );
    writeln!(holder.stdin.as_mut().unwrap(), "go").unwrap();
    let late: u64 = next_line().strip_prefix("write ").unwrap().parse().unwrap();
    assert!(
        !resource.write(late),
        "the late write carries an older fencing number"
    );
    assert_eq!(next_line(), "unlock not-owner");
    assert!(holder.wait().unwrap().success());
    assert_eq!(
        resource.accepted,
        vec![first_fence, lease.fence],
        "0 stale writes accepted"
    );
    assert_eq!(server.cli(&["GET", "paused"]), lease.token.as_str());
}

/// Role: 1000 acquisitions of "fenced"; each appends its fencing number to the shared log
/// while holding the lock (with a TTL generous enough for a loaded machine); every 50th is
/// then shortened to expire on its own, never unlocked, so the next holder takes it over.
#[test]
fn role_fencer() {
    let Some(url) = role_url() else { return };
    let log_path = std::env::var("REDILOCK_FENCE_LOG").unwrap();
    let c = Client::new(&url, Options::default()).unwrap();
    for i in 0..1000 {
        let lease = c
            .lock("fenced", Some(Duration::from_secs(5)), Wait::Forever)
            .unwrap();
        let mut log = std::fs::OpenOptions::new()
            .append(true)
            .open(&log_path)
            .unwrap();
        writeln!(log, "{}", lease.fence).unwrap();
        if i % 50 == 49 {
            c.extend("fenced", &lease.token, Duration::from_millis(20))
                .unwrap();
        } else {
            c.unlock("fenced", &lease.token).unwrap();
        }
    }
}

#[test]
fn fencing_numbers_strictly_increase_across_four_processes_and_takeovers() {
    if role_url().is_some() {
        return;
    }
    let server = RedisServer::start();
    let log = std::env::temp_dir().join(format!("redilock-fences-{}", std::process::id()));
    std::fs::write(&log, "").unwrap();
    let children: Vec<_> = (0..4)
        .map(|_| {
            Command::new(std::env::current_exe().unwrap())
                .args(["role_fencer", "--exact", "--test-threads=1"])
                .env("REDILOCK_ROLE_URL", server.url())
                .env("REDILOCK_FENCE_LOG", &log)
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let fences: Vec<u64> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    std::fs::remove_file(&log).unwrap();
    assert_eq!(fences.len(), 4000);
    assert!(
        fences.windows(2).all(|w| w[0] < w[1]),
        "in acquisition order, every number is larger"
    );
}
