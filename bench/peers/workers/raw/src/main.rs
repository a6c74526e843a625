//! The raw baseline of `make bench-peers`: the round trips a lock needs, issued directly with
//! the redis crate and nothing else: `SET name token NX PX 10000`, then the compare-and-delete
//! script by EVALSHA. The worker protocol is the one of bench/c_bench.c:
//!
//!   raw-baseline uncontended URL SECONDS
//!       one blocking connection, one name; prints "cycles_per_sec <float>".
//!   raw-baseline fanin URL SECONDS TASKS
//!       TASKS concurrent tasks, one name each, over one multiplexed connection (tokio, one
//!       worker thread per core); prints "cycles_per_sec <float>" for all tasks together.
//!
//! With `RAW_SCRIPTS=libredilock` a cycle sends libredilock's own acquire and release scripts
//! instead, over the same client: what those two scripts cost, apart from the library's client.

/// libredilock's scripts module and its Lua files, copied beside this file by
/// bench/peers/install (the worker is built outside the library's workspace).
#[allow(dead_code)] // the module has scripts this worker does not send
mod scripts;

use redis::aio::MultiplexedConnection;
use redis::{Cmd, ScriptInvocation, Value};
use std::time::{Duration, Instant};

const RELEASE: &str =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";
const TTL_MS: u64 = 10_000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = || -> ! {
        eprintln!("usage: [RAW_SCRIPTS=libredilock] raw-baseline uncontended URL SECONDS | fanin URL SECONDS TASKS");
        std::process::exit(2)
    };
    if args.len() < 4 {
        usage();
    }
    let (url, seconds) = (&args[2], args[3].parse::<f64>().unwrap_or_else(|_| usage()));
    let duration = Duration::from_secs_f64(seconds);
    let scripts = match std::env::var("RAW_SCRIPTS").as_deref() {
        Err(_) | Ok("") => Scripts::Bare,
        Ok("libredilock") => Scripts::Libredilock,
        Ok(_) => usage(),
    };
    let rate = match (args[1].as_str(), args.get(4)) {
        ("uncontended", None) => uncontended(url, duration, scripts),
        ("fanin", Some(tasks)) => fanin(
            url,
            duration,
            tasks.parse().unwrap_or_else(|_| usage()),
            scripts,
        ),
        _ => usage(),
    };
    println!("cycles_per_sec {rate:.1}");
}

/// What a cycle sends.
#[derive(Clone, Copy)]
enum Scripts {
    /// `SET NX PX`, then the compare-and-delete script.
    Bare,
    /// libredilock's acquire script (queue and withdrawn tokens looked at, the acquisition
    /// numbered), then its release script (the queue looked at).
    Libredilock,
}

/// One of a cycle's two requests.
enum Request<'a> {
    Command(Cmd),
    Script(ScriptInvocation<'a>),
}

impl Scripts {
    fn acquire(self, name: &str, token: &str) -> Request<'static> {
        match self {
            Scripts::Bare => {
                let mut cmd = redis::cmd("SET");
                cmd.arg(name).arg(token).arg("NX").arg("PX").arg(TTL_MS);
                Request::Command(cmd)
            }
            Scripts::Libredilock => {
                let mut call = scripts::ACQUIRE.prepare_invoke();
                call.key(name)
                    .key(format!("{name}:fence"))
                    .key(format!("{name}:queue"))
                    .key(format!("{name}:withdrawn"))
                    .arg(token)
                    .arg(TTL_MS); // no third argument: try once, as an uncontended call does
                Request::Script(call)
            }
        }
    }

    fn release<'a>(self, bare: &'a redis::Script, name: &str, token: &str) -> Request<'a> {
        let mut call = match self {
            Scripts::Bare => bare.key(name),
            Scripts::Libredilock => {
                let mut call = scripts::RELEASE.key(name);
                call.key(format!("{name}:fence"))
                    .key(format!("{name}:queue"));
                call
            }
        };
        call.arg(token);
        Request::Script(call)
    }
}

impl Request<'_> {
    fn send(&self, conn: &mut redis::Connection) -> Value {
        match self {
            Request::Command(cmd) => cmd.query(conn),
            Request::Script(call) => call.invoke(conn),
        }
        .expect("request")
    }

    async fn send_async(&self, conn: &mut MultiplexedConnection) -> Value {
        match self {
            Request::Command(cmd) => cmd.query_async(conn).await,
            Request::Script(call) => call.invoke_async(conn).await,
        }
        .expect("request")
    }
}

/// Whether an acquire request took the lock: `OK` from SET, `{1, fence}` from the script.
fn taken(reply: &Value) -> bool {
    match reply {
        Value::Okay => true,
        Value::Array(items) => items.first() == Some(&Value::Int(1)),
        _ => false,
    }
}

fn token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn uncontended(url: &str, duration: Duration, scripts: Scripts) -> f64 {
    let mut conn = redis::Client::open(url)
        .and_then(|c| c.get_connection())
        .expect("connect");
    let bare = redis::Script::new(RELEASE);
    let name = format!("bench:raw:{}", std::process::id());
    let start = Instant::now();
    let mut cycles = 0u64;
    while start.elapsed() < duration {
        let token = token();
        let reply = scripts.acquire(&name, &token).send(&mut conn);
        assert!(taken(&reply), "{name} was held: {reply:?}");
        let released = scripts.release(&bare, &name, &token).send(&mut conn);
        assert_eq!(released, Value::Int(1));
        cycles += 1;
    }
    cycles as f64 / start.elapsed().as_secs_f64()
}

#[tokio::main]
async fn fanin(url: &str, duration: Duration, tasks: usize, scripts: Scripts) -> f64 {
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
                let bare = redis::Script::new(RELEASE);
                let name = format!("bench:raw:{}:{i}", std::process::id());
                let mut cycles = 0u64;
                while start.elapsed() < duration {
                    let token = token();
                    let reply = scripts.acquire(&name, &token).send_async(&mut conn).await;
                    assert!(taken(&reply), "{name} was held: {reply:?}");
                    let released = scripts
                        .release(&bare, &name, &token)
                        .send_async(&mut conn)
                        .await;
                    assert_eq!(released, Value::Int(1));
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
