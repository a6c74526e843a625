//! Redis going away, coming back, refusing, or never answering: calls fail with a clear
//! status within their timeouts and the same client works again afterwards.

use redilock::{blocking::Client, Error, Options, Wait};
use redilock_test_harness::proxy::{Fault, FaultProxy};
use redilock_test_harness::{free_port, queue, scaled, wait_until, RedisServer};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TTL: Option<Duration> = Some(Duration::from_secs(10));

fn quick_options() -> Options {
    Options {
        connect_timeout: Duration::from_millis(300),
        command_timeout: Duration::from_millis(500),
        retry_interval: Duration::from_millis(50),
        ..Options::default()
    }
}

#[test]
fn unreachable_server_fails_fast_with_its_address() {
    let port = free_port();
    let c = Client::new(&format!("redis://127.0.0.1:{port}"), quick_options()).unwrap();
    let start = Instant::now();
    let err = c.lock("x", TTL, Wait::Forever).unwrap_err();
    assert!(
        start.elapsed() < scaled(Duration::from_secs(2)),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(
        err,
        Error::Connection(format!("connection to 127.0.0.1:{port} refused"))
    );
}

#[test]
fn killed_and_restarted_redis_under_a_live_client() {
    let mut server = RedisServer::start();
    let c = Client::new(&server.url(), quick_options()).unwrap();
    let token = c.lock("survivor", TTL, Wait::TryOnce).unwrap().token;
    c.unlock("survivor", &token).unwrap();

    server.kill();
    let start = Instant::now();
    assert!(matches!(
        c.lock("survivor", TTL, Wait::Forever),
        Err(Error::Connection(_))
    ));
    assert!(matches!(c.ping(), Err(Error::Connection(_))));
    assert!(
        start.elapsed() < scaled(Duration::from_secs(3)),
        "took {:?}",
        start.elapsed()
    );

    server.restart();
    // The same handle reconnects by itself: the first call after the restart succeeds.
    let token = c.lock("survivor", TTL, Wait::TryOnce).unwrap().token;
    c.unlock("survivor", &token).unwrap();
}

#[test]
fn restart_while_idle_is_invisible_to_the_next_calls() {
    let mut server = RedisServer::start();
    let c = Client::new(&server.url(), quick_options()).unwrap();
    // Several threads at once leave several idle connections, all dead after the restart.
    let on_threads = |work: &(dyn Fn(usize) + Sync)| {
        std::thread::scope(|scope| {
            for i in 0..8 {
                scope.spawn(move || work(i));
            }
        })
    };
    on_threads(&|_| c.ping().unwrap());
    server.restart();
    on_threads(&|i| {
        let name = format!("after-restart-{i}");
        let token = c.lock(&name, TTL, Wait::TryOnce).unwrap().token;
        c.unlock(&name, &token).unwrap();
    });
}

#[test]
fn a_waiter_gets_a_connection_error_when_redis_dies_and_wakeups_return_after_restart() {
    let mut server = RedisServer::start();
    let c = Arc::new(Client::new(&server.url(), quick_options()).unwrap());
    c.lock("held", TTL, Wait::TryOnce).unwrap();
    let waiter = {
        let c = c.clone();
        std::thread::spawn(move || c.lock("held", TTL, Wait::Forever))
    };
    wait_until("the waiter is queued", || queue(&server, "held").len() == 1);
    server.kill();
    let result = waiter.join().unwrap();
    assert!(matches!(result, Err(Error::Connection(_))), "{result:?}");

    server.restart();
    // Release-driven wake-ups work again on the re-established subscription: with a long
    // retry interval only a wake-up can be this fast.
    let slow_poll = Options {
        retry_interval: Duration::from_secs(10),
        ..quick_options()
    };
    let holder = Client::new(&server.url(), slow_poll.clone()).unwrap();
    let token = holder.lock("held", TTL, Wait::TryOnce).unwrap().token;
    let waiter = {
        let c = c.clone();
        std::thread::spawn(move || {
            c.lock("held", TTL, Wait::AtMost(Duration::from_secs(5)))
                .map(|_| Instant::now())
        })
    };
    wait_until("the waiter is queued", || queue(&server, "held").len() == 1);
    let released = Instant::now();
    holder.unlock("held", &token).unwrap();
    let acquired = waiter.join().unwrap().unwrap();
    assert!(
        acquired - released < scaled(Duration::from_millis(200)),
        "{:?}",
        acquired - released
    );
}

#[test]
fn a_server_that_never_answers_times_out() {
    let server = RedisServer::start();
    let c = Client::new(&server.url(), quick_options()).unwrap();
    c.ping().unwrap();
    // SIGSTOP: the socket stays open but nothing answers.
    unsafe { libc::kill(server.pid() as i32, libc::SIGSTOP) };
    let start = Instant::now();
    let err = c.lock("frozen", TTL, Wait::TryOnce).unwrap_err();
    let took = start.elapsed();
    unsafe { libc::kill(server.pid() as i32, libc::SIGCONT) };
    assert!(matches!(err, Error::Connection(_)), "{err:?}");
    assert!(took < scaled(Duration::from_secs(3)), "took {took:?}");
    c.ping().unwrap();
}

#[test]
fn passwords_work_and_never_appear_in_messages() {
    let server = RedisServer::start_with(&["--requirepass", "s3cret-pw"]);
    let base = format!("127.0.0.1:{}", server.port);
    let good = Client::new(&format!("redis://:s3cret-pw@{base}"), quick_options()).unwrap();
    let token = good.lock("guarded", TTL, Wait::TryOnce).unwrap().token;
    good.unlock("guarded", &token).unwrap();
    let with_user = Client::new(
        &format!("redis://default:s3cret-pw@{base}/2"),
        quick_options(),
    )
    .unwrap();
    with_user.ping().unwrap();

    let wrong = Client::new(&format!("redis://default:wr0ng-pw@{base}"), quick_options()).unwrap();
    let err = wrong.lock("guarded", TTL, Wait::TryOnce).unwrap_err();
    assert!(matches!(err, Error::Redis(_)), "{err:?}");
    assert!(!err.to_string().contains("wr0ng-pw"), "{err}");

    let none = Client::new(&format!("redis://{base}"), quick_options()).unwrap();
    let err = none.lock("guarded", TTL, Wait::TryOnce).unwrap_err();
    assert!(matches!(err, Error::Redis(_)), "{err:?}");
    assert!(err.to_string().contains("NOAUTH"), "{err}");
}

#[test]
fn permission_errors_are_redis_errors_and_leave_nothing_behind() {
    let server = RedisServer::start();
    server.cli(&[
        "ACL", "SETUSER", "reader", "on", ">pw", "~*", "+get", "+ping", "+hello", "+client",
    ]);
    let c = Client::new(
        &format!("redis://reader:pw@127.0.0.1:{}", server.port),
        quick_options(),
    )
    .unwrap();
    let err = c.lock("forbidden", TTL, Wait::TryOnce).unwrap_err();
    assert!(matches!(err, Error::Redis(_)), "{err:?}");
    assert!(err.to_string().contains("NOPERM"), "{err}");
    assert_eq!(server.cli(&["EXISTS", "forbidden"]), "0");
}

#[test]
fn signals_that_interrupt_a_call_do_not_fail_it() {
    // Go's runtime, Ruby and many C programs signal their threads; a socket read with a
    // timeout is never restarted by the kernel, so the library must retry it itself.
    extern "C" fn ignore(_: libc::c_int) {}
    // SAFETY: installs a handler that does nothing, with SA_RESTART as such runtimes do.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = ignore as *const () as usize;
        action.sa_flags = libc::SA_RESTART;
        libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut());
    }
    let server = RedisServer::start();
    let c = Arc::new(Client::new(&server.url(), quick_options()).unwrap());
    let worker = std::thread::spawn(move || {
        let started = Instant::now();
        let mut calls = 0;
        while started.elapsed() < Duration::from_secs(1) {
            let token = c.lock("signalled", TTL, Wait::TryOnce).unwrap().token;
            c.unlock("signalled", &token).unwrap();
            calls += 1;
        }
        calls
    });
    let target = std::os::unix::thread::JoinHandleExt::as_pthread_t(&worker);
    while !worker.is_finished() {
        // SAFETY: the worker thread has not been joined, so its id is valid.
        unsafe { libc::pthread_kill(target, libc::SIGUSR1) };
        std::thread::sleep(Duration::from_micros(50));
    }
    assert!(worker.join().unwrap() > 0);
}

#[test]
fn a_slow_reply_on_the_shared_connection_may_take_up_to_the_command_timeout() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port);
    let options = Options {
        command_timeout: Duration::from_secs(5),
        ..quick_options()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let c = redilock::Client::new(&proxy.url(), options).unwrap();
        c.ping().await.unwrap(); // connected before the replies slow down
                                 // "+PONG\r\n", one byte every 150 ms: about 900 ms, beyond the redis crate's default.
        proxy.set_fault(Fault::SlowReplies(Duration::from_millis(150)));
        c.ping().await.unwrap();
    });
}

/// The commands the ACL paragraph of docs/operations.md names, as ACL rules (`+get`,
/// `+script|load`): every word in backticks that is all capitals.
fn documented_acl_rules() -> Vec<String> {
    let doc = include_str!("../../../docs/operations.md");
    let paragraph = doc
        .split("\n\n")
        .find(|p| p.starts_with("**ACL.**"))
        .expect("docs/operations.md has an **ACL.** paragraph");
    paragraph
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|quoted| {
            quoted
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_whitespace())
        })
        .flat_map(|quoted| match quoted {
            "SCRIPT LOAD" => vec!["+script|load".to_string()],
            commands => commands
                .split_whitespace()
                .map(|c| format!("+{}", c.to_lowercase()))
                .collect(),
        })
        .collect()
}

#[test]
fn the_documented_acl_is_enough_for_every_call() {
    let server = RedisServer::start();
    let rules = documented_acl_rules();
    assert!(rules.len() > 20, "{rules:?}");
    let mut setuser = vec![
        "ACL",
        "SETUSER",
        "locker",
        "on",
        ">pw",
        "~*",
        "&redilock:wake:*",
    ];
    setuser.extend(rules.iter().map(String::as_str));
    server.cli(&setuser);
    let url = format!("redis://locker:pw@127.0.0.1:{}", server.port);
    let holder = Client::new(&url, quick_options()).unwrap();
    let waiter = Arc::new(Client::new(&url, quick_options()).unwrap());

    let token = holder.lock("acl", TTL, Wait::TryOnce).unwrap().token;
    holder
        .extend("acl", &token, Duration::from_secs(20))
        .unwrap();
    assert!(holder.remaining_ttl("acl", &token).unwrap().is_some());
    holder.state("acl").unwrap();
    // A wait that gives up withdraws its place (the cleanup script).
    let err = waiter
        .lock("acl", TTL, Wait::AtMost(Duration::from_millis(100)))
        .unwrap_err();
    assert!(matches!(err, Error::NotAcquired(_)), "{err:?}");
    // A queued waiter is handed the lock by the release and woken on its channel.
    let queued = Arc::clone(&waiter);
    let handed = std::thread::spawn(move || {
        queued.lock("acl", TTL, Wait::AtMost(scaled(Duration::from_secs(10))))
    });
    wait_until("the waiter is queued", || queue(&server, "acl").len() == 1);
    holder.unlock("acl", &token).unwrap();
    let lease = handed.join().unwrap().unwrap();
    waiter.unlock("acl", &lease.token).unwrap();
    assert_eq!(server.cli(&["EXISTS", "acl"]), "0");
}
