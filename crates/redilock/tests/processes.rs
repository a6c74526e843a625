//! Several real processes on one lock: a holder paused past its TTL, four processes taking
//! turns with takeovers, and a soak of processes × threads through connections reset every
//! two seconds. The test binary runs itself again as a worker (`processes worker ROLE ...`),
//! so it has its own `main` (no libtest): run without arguments, it runs every scenario and
//! fails on the first that does.

use redilock::{blocking::Client, AutoRenew, Error, Options, Wait};
use redilock_test_harness::proxy::{Fault, FaultProxy};
use redilock_test_harness::{scaled, RedisServer};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SCENARIOS: &[(&str, fn())] = &[
    (
        "a_holder_paused_past_its_ttl_loses_the_lock_and_its_late_write_is_rejected",
        paused_holder,
    ),
    (
        "fencing_numbers_strictly_increase_across_four_processes_and_takeovers",
        fencing_across_processes,
    ),
    (
        "soak_processes_and_threads_through_connections_reset_every_two_seconds",
        soak,
    ),
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("worker") {
        return run_worker(&args[1..]);
    }
    // libtest's flags (cargo test passes some) select nothing here but a name filter.
    let filter = args.iter().find(|a| !a.starts_with('-'));
    for (name, scenario) in SCENARIOS {
        if filter.is_some_and(|f| !name.contains(f.as_str())) {
            continue;
        }
        let started = Instant::now();
        scenario();
        println!("test {name} ... ok ({:.1?})", started.elapsed());
    }
}

fn run_worker(args: &[String]) {
    match args {
        [role, url] if role == "paused-holder" => paused_holder_worker(url),
        [role, url, log] if role == "fencer" => fencer_worker(url, Path::new(log)),
        [role, url, dir, threads, seconds] if role == "soaker" => soak_worker(
            url,
            Path::new(dir),
            threads.parse().unwrap(),
            Duration::from_secs(seconds.parse().unwrap()),
        ),
        _ => panic!("unknown worker: {args:?}"),
    }
}

fn spawn_worker(args: &[&str]) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .arg("worker")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("redilock-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// ---- a holder paused past its TTL --------------------------------------------------------

/// The toy resource of these tests: accepts a write only with a fencing number at least as
/// new as the newest it has seen.
#[derive(Default)]
struct FencedResource {
    newest: u64,
    accepted: Vec<u64>,
}

impl FencedResource {
    fn write(&mut self, fence: u64) -> bool {
        if fence < self.newest {
            return false;
        }
        self.newest = fence;
        self.accepted.push(fence);
        true
    }
}

/// Takes "paused" with auto-renewal, says so, waits for a line on stdin, then reports its
/// (late) write and what its unlock said.
fn paused_holder_worker(url: &str) {
    let c = Client::new(url, Options::default()).unwrap();
    let lease = c
        .lock("paused", Some(Duration::from_millis(300)), Wait::TryOnce)
        .unwrap();
    let keep = AutoRenew {
        on_lost: Some(Box::new(|| println!("lost"))),
        ..AutoRenew::default()
    };
    c.auto_renew("paused", &lease, keep).unwrap();
    println!("locked {}", lease.fence);
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    println!("write {}", lease.fence);
    match c.unlock("paused", &lease.token) {
        Err(Error::NotOwner(_)) => println!("unlock not-owner"),
        other => println!("unlock {other:?}"),
    }
}

fn paused_holder() {
    let server = RedisServer::start();
    let mut holder = spawn_worker(&["paused-holder", &server.url()]);
    let mut lines = BufReader::new(holder.stdout.take().unwrap())
        .lines()
        .map_while(|line| line.ok());
    let mut next_line = move || lines.next().expect("the holder ended early");
    let mut resource = FencedResource::default();

    let first_fence: u64 = next_line()
        .strip_prefix("locked ")
        .unwrap()
        .parse()
        .unwrap();
    assert!(resource.write(first_fence));
    unsafe { libc::kill(holder.id() as i32, libc::SIGSTOP) };
    let c = Client::new(&server.url(), Options::default()).unwrap();
    let lease = c
        .lock(
            "paused",
            Some(Duration::from_secs(10)),
            Wait::AtMost(scaled(Duration::from_secs(5))),
        )
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

// ---- four processes, takeovers ----------------------------------------------------------

/// 1000 acquisitions of "fenced"; each appends its fencing number to the shared log while
/// holding the lock (with a TTL generous enough for a loaded machine); every 50th is then
/// shortened to expire on its own, never unlocked, so the next holder takes it over.
fn fencer_worker(url: &str, log_path: &Path) {
    let c = Client::new(url, Options::default()).unwrap();
    for i in 0..1000 {
        let lease = c
            .lock("fenced", Some(Duration::from_secs(5)), Wait::Forever)
            .unwrap();
        let mut log = OpenOptions::new().append(true).open(log_path).unwrap();
        writeln!(log, "{}", lease.fence).unwrap();
        if i % 50 == 49 {
            c.extend("fenced", &lease.token, Duration::from_millis(20))
                .unwrap();
        } else {
            c.unlock("fenced", &lease.token).unwrap();
        }
    }
}

fn fencing_across_processes() {
    let server = RedisServer::start();
    let log = scratch_dir("fences").join("log");
    File::create(&log).unwrap();
    let workers: Vec<_> = (0..4)
        .map(|_| spawn_worker(&["fencer", &server.url(), log.to_str().unwrap()]))
        .collect();
    for mut worker in workers {
        assert!(worker.wait().unwrap().success());
    }
    let fences: Vec<u64> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(fences.len(), 4000);
    assert!(
        fences.windows(2).all(|w| w[0] < w[1]),
        "in acquisition order, every number is larger"
    );
}

// ---- the soak ---------------------------------------------------------------------------

/// A store that accepts a write only with a fencing number above the last one it accepted,
/// kept in files so that every process sees it. A marker file, created exclusively while a
/// write is in progress, catches two writers at once.
struct FencedStore {
    dir: PathBuf,
}

/// What one worker saw; summed over all of them.
#[derive(Default, Debug, PartialEq)]
struct Tally {
    accepted: u64,
    stale: u64,
    overlaps: u64,
    /// An unlock that said NOT_OWNER for a lock its TTL still covered: a lie.
    false_not_owner: u64,
    /// Calls that failed with CONNECTION (expected while connections are being reset).
    connection_errors: u64,
}

impl FencedStore {
    fn write(&self, fence: u64) -> (bool, bool) {
        let marker = self.dir.join("writing");
        let overlap = match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&marker)
        {
            Ok(_) => false,
            Err(err) if err.kind() == ErrorKind::AlreadyExists => true,
            Err(err) => panic!("{err}"),
        };
        let state = self.dir.join("state");
        let mut text = String::new();
        File::open(&state)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        let (newest, count) = parse_state(&text);
        let accepted = fence > newest;
        if accepted {
            // Written aside and renamed into place: a writer that overlaps (its lock lost, its
            // write about to be refused) reads the old state or the new, never half of one.
            let aside = self.dir.join(format!(
                "state.{}.{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            std::fs::write(&aside, format!("{fence} {}", count + 1)).unwrap();
            std::fs::rename(&aside, &state).unwrap();
        }
        if !overlap {
            std::fs::remove_file(&marker).unwrap();
        }
        (accepted, overlap)
    }
}

fn parse_state(text: &str) -> (u64, u64) {
    let mut numbers = text.split_whitespace().map(|n| n.parse::<u64>().unwrap());
    (numbers.next().unwrap(), numbers.next().unwrap())
}

/// `threads` threads share one client and write to the store under the lock "soak" until
/// `duration` has passed; prints the tally.
fn soak_worker(url: &str, dir: &Path, threads: usize, duration: Duration) {
    let options = Options {
        connect_timeout: Duration::from_millis(500),
        command_timeout: Duration::from_millis(500),
        ..Options::default()
    };
    let client = Arc::new(Client::new(url, options).unwrap());
    let store = Arc::new(FencedStore {
        dir: dir.to_path_buf(),
    });
    let until = Instant::now() + duration;
    let tallies: Vec<Tally> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let (client, store) = (client.clone(), store.clone());
                scope.spawn(move || soak_thread(&client, &store, until))
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let total = tallies.into_iter().fold(Tally::default(), |sum, t| Tally {
        accepted: sum.accepted + t.accepted,
        stale: sum.stale + t.stale,
        overlaps: sum.overlaps + t.overlaps,
        false_not_owner: sum.false_not_owner + t.false_not_owner,
        connection_errors: sum.connection_errors + t.connection_errors,
    });
    println!(
        "{} {} {} {} {}",
        total.accepted, total.stale, total.overlaps, total.false_not_owner, total.connection_errors
    );
}

fn soak_thread(client: &Client, store: &FencedStore, until: Instant) -> Tally {
    // Long enough that no lease runs out while its holder works, even on a loaded machine:
    // every NOT_OWNER from unlock would then be a lie.
    const TTL: Duration = Duration::from_secs(30);
    let mut tally = Tally::default();
    while Instant::now() < until {
        let lease = match client.lock("soak", Some(TTL), Wait::AtMost(Duration::from_secs(5))) {
            Ok(lease) => lease,
            Err(Error::Connection(_)) => {
                tally.connection_errors += 1;
                continue;
            }
            Err(Error::NotAcquired(_)) => continue,
            Err(err) => panic!("lock: {err:?}"),
        };
        let (accepted, overlap) = store.write(lease.fence);
        tally.accepted += u64::from(accepted);
        tally.stale += u64::from(!accepted);
        tally.overlaps += u64::from(overlap);
        match client.unlock("soak", &lease.token) {
            Ok(()) => {}
            Err(Error::Connection(_)) => tally.connection_errors += 1,
            Err(Error::NotOwner(_)) => tally.false_not_owner += 1,
            Err(err) => panic!("unlock: {err:?}"),
        }
    }
    tally
}

fn soak() {
    const PROCESSES: usize = 3;
    const THREADS: usize = 4;
    const SECONDS: u64 = 12;
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port);
    proxy.set_fault(Fault::ResetEvery(Duration::from_secs(2)));
    let dir = scratch_dir("soak");
    std::fs::write(dir.join("state"), "0 0").unwrap();
    let args = [
        "soaker".to_string(),
        proxy.url(),
        dir.to_str().unwrap().to_string(),
        THREADS.to_string(),
        SECONDS.to_string(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let workers: Vec<_> = (0..PROCESSES).map(|_| spawn_worker(&args)).collect();
    let mut total = Tally::default();
    for worker in workers {
        let output = worker.wait_with_output().unwrap();
        assert!(output.status.success(), "a soak worker failed");
        let line = String::from_utf8(output.stdout).unwrap();
        let n: Vec<u64> = line
            .split_whitespace()
            .map(|n| n.parse().unwrap())
            .collect();
        total.accepted += n[0];
        total.stale += n[1];
        total.overlaps += n[2];
        total.false_not_owner += n[3];
        total.connection_errors += n[4];
    }
    let (_, count) = parse_state(&std::fs::read_to_string(dir.join("state")).unwrap());
    println!("soak: {total:?}");
    assert_eq!(total.overlaps, 0, "two holders at once: {total:?}");
    assert_eq!(
        total.stale, 0,
        "a holder wrote with an old fence: {total:?}"
    );
    assert_eq!(
        total.false_not_owner, 0,
        "unlock said NOT_OWNER for a held lock: {total:?}"
    );
    assert_eq!(count, total.accepted, "the store's counter is exact");
    assert!(total.accepted >= 100, "too little progress: {total:?}");
    // Once the network is healthy, nothing is left held.
    proxy.set_fault(Fault::None);
    redilock_test_harness::wait_until("the soak lock is free", || {
        server.cli(&["EXISTS", "soak"]) == "0"
    });
    let _ = std::fs::remove_dir_all(dir);
}
