//! The raw baseline of `make bench-peers`: the round trips a lock needs, issued directly with
//! the redis crate and nothing else: `SET name token NX PX 10000`, then the compare-and-delete
//! script by EVALSHA. The worker protocol is the one of bench/c_bench.c:
//!
//!   raw-baseline uncontended URL SECONDS
//!       one blocking connection, one name; prints "cycles_per_sec <float>".
//!   raw-baseline fanin URL SECONDS TASKS
//!       TASKS concurrent tasks, one name each, over one multiplexed connection (tokio, one
//!       worker thread per core); prints "cycles_per_sec <float>" for all tasks together.

use std::time::{Duration, Instant};

const RELEASE: &str =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";
const TTL_MS: u64 = 10_000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = || -> ! {
        eprintln!("usage: raw-baseline uncontended URL SECONDS | fanin URL SECONDS TASKS");
        std::process::exit(2)
    };
    if args.len() < 4 {
        usage();
    }
    let (url, seconds) = (&args[2], args[3].parse::<f64>().unwrap_or_else(|_| usage()));
    let duration = Duration::from_secs_f64(seconds);
    let rate = match (args[1].as_str(), args.get(4)) {
        ("uncontended", None) => uncontended(url, duration),
        ("fanin", Some(tasks)) => fanin(url, duration, tasks.parse().unwrap_or_else(|_| usage())),
        _ => usage(),
    };
    println!("cycles_per_sec {rate:.1}");
}

fn token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn set_nx(name: &str, token: &str) -> redis::Cmd {
    let mut cmd = redis::cmd("SET");
    cmd.arg(name).arg(token).arg("NX").arg("PX").arg(TTL_MS);
    cmd
}

fn uncontended(url: &str, duration: Duration) -> f64 {
    let mut conn = redis::Client::open(url)
        .and_then(|c| c.get_connection())
        .expect("connect");
    let release = redis::Script::new(RELEASE);
    let name = format!("bench:raw:{}", std::process::id());
    let start = Instant::now();
    let mut cycles = 0u64;
    while start.elapsed() < duration {
        let token = token();
        let taken: Option<String> = set_nx(&name, &token).query(&mut conn).expect("SET");
        assert!(taken.is_some(), "{name} was held");
        let released: i64 = release
            .key(&name)
            .arg(&token)
            .invoke(&mut conn)
            .expect("EVALSHA");
        assert_eq!(released, 1);
        cycles += 1;
    }
    cycles as f64 / start.elapsed().as_secs_f64()
}

#[tokio::main]
async fn fanin(url: &str, duration: Duration, tasks: usize) -> f64 {
    let client = redis::Client::open(url).expect("url");
    let conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|i| {
            let mut conn = conn.clone();
            tokio::spawn(async move {
                let release = redis::Script::new(RELEASE);
                let name = format!("bench:raw:{}:{i}", std::process::id());
                let mut cycles = 0u64;
                while start.elapsed() < duration {
                    let token = token();
                    let taken: Option<String> = set_nx(&name, &token)
                        .query_async(&mut conn)
                        .await
                        .expect("SET");
                    assert!(taken.is_some(), "{name} was held");
                    let released: i64 = release
                        .key(&name)
                        .arg(&token)
                        .invoke_async(&mut conn)
                        .await
                        .expect("EVALSHA");
                    assert_eq!(released, 1);
                    cycles += 1;
                }
                cycles
            })
        })
        .collect();
    let mut cycles = 0;
    for handle in handles {
        cycles += handle.await.expect("task");
    }
    cycles as f64 / start.elapsed().as_secs_f64()
}
