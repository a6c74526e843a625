//! `make bench`: every way of taking the lock, side by side against one private redis-server,
//! in one run, reported as medians and ratios to a raw baseline.
//!
//! Rows of the uncontended table are separate worker programs built by `make bench`
//! (`build/bench-c`, `bench-cpp`, `bench-go`, `bench-ruby`; a missing one is listed as such)
//! plus rows this program runs as workers of its own: the raw baseline (the lock's same two
//! round trips, its acquire and release scripts, issued directly with the redis crate over one
//! blocking connection), a bare reference (SET NX PX, then a compare-and-delete script: no
//! fencing, no wake-up) and the Rust blocking client.
//! Rounds interleave the rows so that drift on a noisy machine hits them all alike.
//!
//! A table of its own measures replica acknowledgement (WAIT after each lock write) against a
//! primary with one replica; another, the deployments: a Redis Cluster of 1, 2 and 3 masters
//! and a primary found through Sentinel, beside one plain server.
//!
//! Environment: BENCH_ROUNDS (default 7), BENCH_SECONDS per row and round (default 2).

use redilock::{blocking, Options, ReplicaAcks, Wait};

/// The library's scripts, composed as it sends them (its file, included as it is).
#[allow(dead_code)]
#[path = "../crates/redilock/src/protocol/scripts.rs"]
mod scripts;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const RAW_RELEASE: &str =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() > 4 && run_as_worker(&args[1], &args[2..]) {
        return;
    }
    let out_dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "build".into()));
    let rounds: usize = env_or("BENCH_ROUNDS", 7);
    let seconds: f64 = env_or("BENCH_SECONDS", 2.0);
    let server = redilock_test_harness::RedisServer::start();
    let url = server.url();
    println!(
        "redilock {} benchmark: redis-server on loopback, {rounds} rounds x {seconds} s per row\n",
        env!("CARGO_PKG_VERSION")
    );

    uncontended(&out_dir, &url, rounds, seconds);
    contended(&out_dir, &url, seconds.max(1.0) * 2.5);
    replica_acks(&server, rounds, seconds);
    deployments(rounds.min(3), seconds);
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A row's worker: a program and the arguments before `uncontended URL SECONDS`.
type Worker = (PathBuf, Vec<&'static str>);

/// The raw and Rust rows run as workers too (this program, started again), so that every row
/// pays the same process and scheduling costs.
fn run_as_worker(kind: &str, args: &[String]) -> bool {
    let run: fn(&str, Duration) -> f64 = match kind {
        "worker-raw" => raw_cycles,
        "worker-bare" => bare_cycles,
        "worker-rust" => |url, duration| blocking_cycles(url, duration, ReplicaAcks::Auto),
        "worker-rust-acks-off" => {
            |url, duration| blocking_cycles(url, duration, ReplicaAcks::Count(0))
        }
        "worker-rust-acks-one" => {
            |url, duration| blocking_cycles(url, duration, ReplicaAcks::Count(1))
        }
        _ => return false,
    };
    let (url, seconds) = (&args[1], args[2].parse().expect("seconds"));
    println!(
        "cycles_per_sec {:.1}",
        run(url, Duration::from_secs_f64(seconds))
    );
    true
}

fn uncontended(out_dir: &Path, url: &str, rounds: usize, seconds: f64) {
    let this = std::env::current_exe().expect("own path");
    let mut rows: Vec<(&str, Worker)> = vec![
        ("raw, same round trips", (this.clone(), vec!["worker-raw"])),
        (
            "raw, bare SET NX (no fence)",
            (this.clone(), vec!["worker-bare"]),
        ),
        ("Rust blocking client", (this, vec!["worker-rust"])),
    ];
    let mut missing = Vec::new();
    for (label, program) in [
        ("C ABI", "bench-c"),
        ("C++", "bench-cpp"),
        ("Go", "bench-go"),
        ("Ruby", "bench-ruby"),
    ] {
        let path = out_dir.join(program);
        if path.exists() {
            rows.push((label, (path, Vec::new())));
        } else {
            missing.push(format!("{label} ({} not built)", path.display()));
        }
    }
    // A row whose worker fails is reported with the reason and not run again.
    let mut samples: Vec<Result<Vec<f64>, String>> = vec![Ok(Vec::new()); rows.len()];
    for _ in 0..rounds {
        for ((_, worker), sample) in rows.iter().zip(samples.iter_mut()) {
            let Ok(values) = sample else { continue };
            match program_cycles(worker, url, seconds) {
                Ok(value) => values.push(value),
                Err(reason) => *sample = Err(reason),
            }
        }
    }
    for ((label, _), sample) in rows.iter().zip(&samples) {
        if let Err(reason) = sample {
            missing.push(format!("{label} (failed: {reason})"));
        }
    }
    let (rows, samples): (Vec<_>, Vec<Vec<f64>>) = rows
        .into_iter()
        .zip(samples)
        .filter_map(|(row, sample)| Some((row, sample.ok()?)))
        .unzip();
    // A ratio is the median of per-round ratios: the rows of one round ran back to back, so a
    // burst of load on the machine moves both sides of each ratio alike.
    let ratio = |row: usize, base: usize| {
        let mut per_round: Vec<f64> = samples[row]
            .iter()
            .zip(&samples[base])
            .map(|(value, base)| value / base)
            .collect();
        median(&mut per_round)
    };
    let c_row = rows.iter().position(|(label, _)| *label == "C ABI");
    println!("Uncontended lock + unlock, one name, one worker (median cycles/s; ratios: median of per-round ratios)");
    println!(
        "| {:<28} | {:>10} | {:>8} | {:>8} |",
        "row", "cycles/s", "vs raw", "vs C"
    );
    println!("|{:-<30}|{:->12}|{:->10}|{:->10}|", "", "", "", "");
    for (row, (label, _)) in rows.iter().enumerate() {
        let vs_c = c_row
            .map(|c| format!("{:.2}x", ratio(row, c)))
            .unwrap_or_else(|| "-".into());
        println!(
            "| {label:<28} | {:>10.0} | {:>7.2}x | {vs_c:>8} |",
            median(&mut samples[row].clone()),
            ratio(row, 0)
        );
    }
    for row in missing {
        println!("| {row:<28} | not run |");
    }
    println!("vs raw: against the same round trips sent directly (the library's own cost)");
    println!("targets: C ABI >= 0.90x raw; C++ >= 0.95x C; Go >= 0.90x C\n");
}

/// The baseline: the lock's own two round trips (its acquire and release scripts, fencing and
/// wake-up included) sent directly over one blocking connection; what is left of the gap is the
/// library's own cost.
fn raw_cycles(url: &str, duration: Duration) -> f64 {
    let mut conn = redis::Client::open(url).unwrap().get_connection().unwrap();
    let (acquire, release) = (&*scripts::ACQUIRE, &*scripts::RELEASE);
    let name = format!("bench:raw:{}", std::process::id());
    let (fence, queue) = (format!("{name}:fence"), format!("{name}:queue"));
    count_cycles(duration, || {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let (taken, _fence): (i64, String) = acquire
            .key(&name)
            .key(&fence)
            .key(&queue)
            .key(format!("{name}:withdrawn"))
            .arg(&token)
            .arg(10_000) // no third argument: try once, as an uncontended call does
            .invoke(&mut conn)
            .unwrap();
        assert_eq!(taken, 1);
        let released: i64 = release
            .key(&name)
            .key(&fence)
            .key(&queue)
            .arg(&token)
            .invoke(&mut conn)
            .unwrap();
        assert_eq!(released, 1);
    })
}

/// A reference below any lock with fencing and wake-ups: a bare SET NX PX, then a
/// compare-and-delete script.
fn bare_cycles(url: &str, duration: Duration) -> f64 {
    let mut conn = redis::Client::open(url).unwrap().get_connection().unwrap();
    let release = redis::Script::new(RAW_RELEASE);
    let name = format!("bench:bare:{}", std::process::id());
    count_cycles(duration, || {
        let token = uuid::Uuid::new_v4().simple().to_string();
        assert!(raw_try_lock(&mut conn, &name, &token));
        let released: i64 = release.key(&name).arg(&token).invoke(&mut conn).unwrap();
        assert_eq!(released, 1);
    })
}

/// The baseline's acquisition: one SET NX PX round trip.
fn raw_try_lock(conn: &mut redis::Connection, name: &str, token: &str) -> bool {
    let taken: Option<String> = redis::cmd("SET")
        .arg(name)
        .arg(token)
        .arg("NX")
        .arg("PX")
        .arg(10_000)
        .query(conn)
        .unwrap();
    taken.is_some()
}

fn blocking_cycles(url: &str, duration: Duration, replica_acks: ReplicaAcks) -> f64 {
    let options = Options {
        replica_acks,
        ..Options::default()
    };
    let client = blocking::Client::new(url, options).unwrap();
    let name = format!("bench:rust:{}", std::process::id());
    count_cycles(duration, || {
        let token = client
            .lock(&name, Some(Duration::from_secs(10)), Wait::TryOnce)
            .unwrap()
            .token;
        client.unlock(&name, &token).unwrap();
    })
}

/// What replica acknowledgement costs: the Rust blocking client's uncontended cycles against a
/// primary with one replica on loopback, without WAIT, with WAIT for the replica, and by
/// default (AUTO: WAIT for the replica, which ROLE reports); then what AUTO's ROLE costs a new
/// client, whose first lock carries it.
fn replica_acks(primary: &redilock_test_harness::RedisServer, rounds: usize, seconds: f64) {
    let _replica = redilock_test_harness::RedisServer::start_replica_of(primary); // for the whole measurement
    let url = primary.url();
    let this = std::env::current_exe().expect("own path");
    let rows = [
        ("acks off (0)", "worker-rust-acks-off"),
        ("acks 1 (WAIT for the replica)", "worker-rust-acks-one"),
        ("AUTO (default)", "worker-rust"),
    ];
    let mut samples = vec![Vec::new(); rows.len()];
    for _ in 0..rounds {
        for ((_, kind), sample) in rows.iter().zip(samples.iter_mut()) {
            let worker = (this.clone(), vec![*kind]);
            sample.push(program_cycles(&worker, &url, seconds).expect("bench worker"));
        }
    }
    println!("\nReplica acknowledgement: uncontended lock + unlock, Rust blocking client, a primary with one replica");
    println!("| {:<30} | {:>10} | {:>8} |", "row", "cycles/s", "vs off");
    println!("|{:-<32}|{:->12}|{:->10}|", "", "", "");
    for (row, (label, _)) in rows.iter().enumerate() {
        let mut per_round: Vec<f64> = samples[row]
            .iter()
            .zip(&samples[0])
            .map(|(value, off)| value / off)
            .collect();
        println!(
            "| {label:<30} | {:>10.0} | {:>7.2}x |",
            median(&mut samples[row].clone()),
            median(&mut per_round)
        );
    }
    println!("\nA new client's first lock + unlock (connecting included), median of 50");
    let alone = redilock_test_harness::RedisServer::start();
    for (label, acks, server) in [
        ("acks off, no replica", ReplicaAcks::Count(0), &alone),
        (
            "AUTO, no replica (ROLE in front)",
            ReplicaAcks::Auto,
            &alone,
        ),
        ("acks 1, one replica", ReplicaAcks::Count(1), primary),
        (
            "AUTO, one replica (ROLE, then WAIT)",
            ReplicaAcks::Auto,
            primary,
        ),
    ] {
        let mut times: Vec<f64> = (0..50)
            .map(|_| first_lock_ms(&server.url(), acks))
            .collect();
        println!("| {label:<36} | {:>6.2} ms |", median(&mut times));
    }
}

/// Threads that lock and unlock names of their own through one Rust blocking client, per
/// deployment: what routing costs (one master against one plain server) and how the
/// throughput of many names grows with masters (on this machine's cores, shared by every
/// server and the client).
fn deployments(rounds: usize, seconds: f64) {
    use redilock_test_harness::{RedisCluster, RedisServer, Sentinels};
    let plain = RedisServer::start();
    let clusters: Vec<RedisCluster> = (1..=3)
        .map(|masters| RedisCluster::start(masters, 0))
        .collect();
    let sentinel = Sentinels::start(0, 1);
    let mut rows = vec![("one server (redis://)".to_string(), plain.url())];
    rows.extend(
        clusters
            .iter()
            .map(|c| (format!("cluster, {} master(s)", c.masters().len()), c.url())),
    );
    rows.push(("Sentinel (redis+sentinel://)".into(), sentinel.url()));
    let duration = Duration::from_secs_f64(seconds);
    let threads = [1, 8];
    let mut samples = vec![vec![Vec::new(); threads.len()]; rows.len()];
    for _ in 0..rounds {
        for (row, (_, url)) in rows.iter().enumerate() {
            for (column, &count) in threads.iter().enumerate() {
                samples[row][column].push(threaded_cycles(url, duration, count));
            }
        }
    }
    let handoffs: Vec<f64> = rows.iter().map(|(_, url)| handoff_ms(url)).collect();
    println!("\nDeployments: lock + unlock, Rust blocking client, 1 thread and 8 threads (a name each), median of {rounds}; hand-off: from a release to the waiter's return, median of {HANDOFFS}");
    println!(
        "| {:<30} | {:>10} | {:>7} | {:>10} | {:>7} | {:>8} |",
        "deployment", "1 thread", "vs one", "8 threads", "vs one", "hand-off"
    );
    println!(
        "|{:-<32}|{:->12}|{:->9}|{:->12}|{:->9}|{:->10}|",
        "", "", "", "", "", ""
    );
    let baseline: Vec<f64> = (0..threads.len())
        .map(|c| median(&mut samples[0][c].clone()))
        .collect();
    for (row, (label, _)) in rows.iter().enumerate() {
        let values: Vec<f64> = (0..threads.len())
            .map(|c| median(&mut samples[row][c].clone()))
            .collect();
        println!(
            "| {label:<30} | {:>10.0} | {:>6.2}x | {:>10.0} | {:>6.2}x | {:>5.2} ms |",
            values[0],
            values[0] / baseline[0],
            values[1],
            values[1] / baseline[1],
            handoffs[row]
        );
    }
}

const HANDOFFS: usize = 30;

/// How long a waiter of another client takes to return with the lock after its holder's
/// release returned (the wake-up crosses the deployment: in a cluster, from the lock's master
/// to the waiter's subscription there), in ms, median of [`HANDOFFS`].
fn handoff_ms(url: &str) -> f64 {
    let options = || Options {
        retry_interval: Duration::from_secs(60), // only the wake-up hands it over
        ..Options::default()
    };
    let (holder, waiter) = (
        blocking::Client::new(url, options()).unwrap(),
        blocking::Client::new(url, options()).unwrap(),
    );
    let ttl = Some(Duration::from_secs(10));
    let mut gaps: Vec<f64> = (0..HANDOFFS)
        .map(|i| {
            let name = format!("bench:handoff:{i}");
            let lease = holder.lock(&name, ttl, Wait::TryOnce).unwrap();
            std::thread::scope(|s| {
                let waiting = s.spawn(|| {
                    let lease = waiter.lock(&name, ttl, Wait::Forever).unwrap();
                    (Instant::now(), lease)
                });
                // Time for the waiter to queue; a bench may sleep, a test would look.
                std::thread::sleep(Duration::from_millis(30));
                holder.unlock(&name, &lease.token).unwrap();
                let released = Instant::now();
                let (handed, lease) = waiting.join().unwrap();
                waiter.unlock(&name, &lease.token).unwrap();
                handed.saturating_duration_since(released).as_secs_f64() * 1e3
            })
        })
        .collect();
    median(&mut gaps)
}

/// Lock + unlock cycles per second of `threads` threads sharing one client, each on a name of
/// its own (so they spread over a cluster's masters).
fn threaded_cycles(url: &str, duration: Duration, threads: usize) -> f64 {
    let client = blocking::Client::new(url, Options::default()).unwrap();
    let total: f64 = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|i| {
                let client = &client;
                s.spawn(move || {
                    let name = format!("bench:deployment:{i}");
                    count_cycles(duration, || {
                        let lease = client
                            .lock(&name, Some(Duration::from_secs(10)), Wait::TryOnce)
                            .unwrap();
                        client.unlock(&name, &lease.token).unwrap();
                    })
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    total
}

/// How long a new client takes to connect, lock and unlock once, in ms.
fn first_lock_ms(url: &str, replica_acks: ReplicaAcks) -> f64 {
    let options = Options {
        replica_acks,
        ..Options::default()
    };
    let started = Instant::now();
    let client = blocking::Client::new(url, options).unwrap();
    let lease = client
        .lock("bench:first", Some(Duration::from_secs(10)), Wait::TryOnce)
        .unwrap();
    client.unlock("bench:first", &lease.token).unwrap();
    started.elapsed().as_secs_f64() * 1e3
}

fn count_cycles(duration: Duration, mut cycle: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut cycles = 0u64;
    while start.elapsed() < duration {
        cycle();
        cycles += 1;
    }
    cycles as f64 / start.elapsed().as_secs_f64()
}

fn program_cycles((path, leading): &Worker, url: &str, seconds: f64) -> Result<f64, String> {
    let out = Command::new(path)
        .args(leading)
        .args(["uncontended", url, &seconds.to_string()])
        .output()
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|line| line.strip_prefix("cycles_per_sec ")?.trim().parse().ok())
        .ok_or_else(|| {
            let stderr = String::from_utf8_lossy(&out.stderr);
            stderr
                .lines()
                .find(|line| !line.trim().is_empty())
                .unwrap_or("no cycles_per_sec line")
                .to_string()
        })
}

/// One critical section as a worker reports it (CLOCK_MONOTONIC nanoseconds).
struct Section {
    asked: i64,
    acquired: i64,
    released: i64,
}

fn contended(out_dir: &Path, url: &str, seconds: f64) {
    const PROCESSES: usize = 4;
    println!(
        "Contended hand-off: {PROCESSES} processes, one name, hold 2 ms, pause 2 ms, {seconds} s"
    );
    println!(
        "| {:<34} | {:>7} | {:>9} | {:>9} | {:>9} | {:>9} |",
        "row", "CS/s", "wait p50", "wait p99", "wait max", "gap p50"
    );
    println!(
        "|{:-<36}|{:->9}|{:->11}|{:->11}|{:->11}|{:->11}|",
        "", "", "", "", "", ""
    );
    let program = out_dir.join("bench-c");
    let sections = if program.exists() {
        run_contenders(&program, url, seconds, PROCESSES)
    } else {
        Vec::new()
    };
    report_contended("C ABI (pub/sub wake-up)", &sections, seconds);
    let polled = polling_baseline(url, seconds, PROCESSES);
    report_contended("polling every 250 ms (python-redilock)", &polled, seconds);
}

fn run_contenders(program: &Path, url: &str, seconds: f64, processes: usize) -> Vec<Section> {
    let children: Vec<_> = (0..processes)
        .map(|_| {
            Command::new(program)
                .args(["contend", url, &seconds.to_string(), "2", "2"])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("bench worker")
        })
        .collect();
    children
        .into_iter()
        .flat_map(|child| {
            let out = child.wait_with_output().expect("bench worker");
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|line| {
                    let mut f = line
                        .strip_prefix("cs ")?
                        .split(' ')
                        .map(|v| v.parse::<i64>().ok());
                    Some(Section {
                        asked: f.next()??,
                        acquired: f.next()??,
                        released: f.next()??,
                    })
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The design this project grew from: SET NX PX, and on failure sleep the retry interval.
fn polling_baseline(url: &str, seconds: f64, workers: usize) -> Vec<Section> {
    let clock = Instant::now(); // one origin for all threads
    let threads: Vec<_> = (0..workers)
        .map(|_| {
            let url = url.to_string();
            std::thread::spawn(move || {
                let mut conn = redis::Client::open(url).unwrap().get_connection().unwrap();
                let release = redis::Script::new(RAW_RELEASE);
                let ns = || clock.elapsed().as_nanos() as i64;
                let mut sections = Vec::new();
                while clock.elapsed().as_secs_f64() < seconds {
                    let token = uuid::Uuid::new_v4().simple().to_string();
                    let asked = ns();
                    loop {
                        if raw_try_lock(&mut conn, "bench:polled", &token) {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(250));
                    }
                    let acquired = ns();
                    std::thread::sleep(Duration::from_millis(2));
                    let released = ns();
                    let _: i64 = release
                        .key("bench:polled")
                        .arg(&token)
                        .invoke(&mut conn)
                        .unwrap();
                    sections.push(Section {
                        asked,
                        acquired,
                        released,
                    });
                    std::thread::sleep(Duration::from_millis(2));
                }
                sections
            })
        })
        .collect();
    threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect()
}

fn report_contended(label: &str, sections: &[Section], seconds: f64) {
    if sections.is_empty() {
        println!("| {label:<34} | not run (worker program not built) |");
        return;
    }
    let ms = |ns: i64| ns as f64 / 1e6;
    let mut waits: Vec<f64> = sections.iter().map(|s| ms(s.acquired - s.asked)).collect();
    let mut by_acquisition: Vec<&Section> = sections.iter().collect();
    by_acquisition.sort_by_key(|s| s.acquired);
    // A hand-off: the next holder was already waiting when the previous one released.
    let mut gaps: Vec<f64> = by_acquisition
        .windows(2)
        .filter(|w| w[1].asked < w[0].released)
        .map(|w| ms(w[1].acquired - w[0].released))
        .collect();
    waits.sort_by(f64::total_cmp);
    println!(
        "| {label:<34} | {:>7.0} | {:>6.2} ms | {:>6.2} ms | {:>6.2} ms | {:>6.2} ms |",
        sections.len() as f64 / seconds,
        percentile(&waits, 0.50),
        percentile(&waits, 0.99),
        waits.last().copied().unwrap_or(0.0),
        median(&mut gaps)
    );
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    percentile(values, 0.5)
}
