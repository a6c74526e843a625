//! The test harness itself: the fault proxy (tests/common/proxy.rs) and pausing a server,
//! checked against a real redis-server with a hand-written RESP client. Timeouts are generous
//! and state is polled: these tests must pass on a loaded 2-core machine.

use redilock_test_harness::proxy::{Fault, FaultProxy};
use redilock_test_harness::RedisServer;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const PING: &[u8] = b"*1\r\n$4\r\nPING\r\n";
const PONG: &[u8] = b"+PONG\r\n";
/// Long enough for anything that should happen, on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(10);
/// How long a read waits when nothing should arrive.
const SILENCE: Duration = Duration::from_millis(300);

fn connect(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.set_write_timeout(Some(PATIENCE)).unwrap();
    stream
}

/// A RESP command, as redis-cli would send it.
fn command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Reads exactly `len` bytes (panics on EOF, error or timeout).
fn read_exact(stream: &mut TcpStream, len: usize) -> Vec<u8> {
    let mut buf = vec![0; len];
    stream.read_exact(&mut buf).expect("read the reply");
    buf
}

fn ping(stream: &mut TcpStream) {
    stream.write_all(PING).unwrap();
    assert_eq!(read_exact(stream, PONG.len()), PONG);
}

/// Asserts that nothing arrives within `SILENCE`.
fn assert_silent(stream: &mut TcpStream) {
    stream.set_read_timeout(Some(SILENCE)).unwrap();
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("expected silence, got {other:?} {:?}", &buf[..8]),
    }
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
}

/// Reads until EOF or a reset; returns what arrived. Panics if the connection is still open
/// after `PATIENCE`.
fn read_until_cut(stream: &mut TcpStream) -> Vec<u8> {
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("connection still open after {PATIENCE:?} (got {got:?})")
            }
            Err(_) => return got, // reset
        }
    }
}

fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn passthrough() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port);
    assert_eq!(proxy.url(), format!("redis://127.0.0.1:{}", proxy.port()));
    assert_eq!(proxy.fault(), Fault::None);

    let mut a = connect(proxy.port());
    let mut b = connect(proxy.port());
    ping(&mut a);
    ping(&mut b);
    wait_for("2 connections", || proxy.connections() == 2);

    // A value bigger than any buffer, both ways.
    let value: Vec<u8> = (0..1_000_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    a.write_all(&command(&[b"SET", b"big", &value])).unwrap();
    assert_eq!(read_exact(&mut a, 5), b"+OK\r\n");
    b.write_all(&command(&[b"GET", b"big"])).unwrap();
    let header = format!("${}\r\n", value.len()).into_bytes();
    assert_eq!(read_exact(&mut b, header.len()), header);
    assert_eq!(read_exact(&mut b, value.len()), value);
    assert_eq!(read_exact(&mut b, 2), b"\r\n");
    assert_eq!(server.cli(&["STRLEN", "big"]), "1000000");

    // Pipelined commands.
    let mut pipeline = Vec::new();
    for _ in 0..100 {
        pipeline.extend_from_slice(PING);
    }
    a.write_all(&pipeline).unwrap();
    assert_eq!(read_exact(&mut a, 100 * PONG.len()), PONG.repeat(100));

    drop(a);
    wait_for("1 connection", || proxy.connections() == 1);
    drop(b);
    wait_for("no connection", || proxy.connections() == 0);
}

#[test]
fn blackhole_drops_bytes_then_heals() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port);
    let mut old = connect(proxy.port());
    ping(&mut old);

    proxy.set_fault(Fault::Blackhole);
    old.write_all(PING).unwrap();
    assert_silent(&mut old);
    // New connections are accepted, and silent too.
    let mut new = connect(proxy.port());
    new.write_all(PING).unwrap();
    assert_silent(&mut new);
    wait_for("2 connections", || proxy.connections() == 2);

    proxy.set_fault(Fault::None);
    // The PINGs sent during the blackhole were lost, not delayed: one PONG per new PING.
    ping(&mut old);
    ping(&mut new);
    assert_silent(&mut old);
    assert_silent(&mut new);
    let mut fresh = connect(proxy.port());
    ping(&mut fresh);
}

#[test]
fn slow_replies_take_their_time() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port);
    let mut stream = connect(proxy.port());
    ping(&mut stream);

    let delay = Duration::from_millis(20);
    proxy.set_fault(Fault::SlowReplies(delay));
    let request = command(&[b"ECHO", b"0123456789"]);
    let reply = b"$10\r\n0123456789\r\n";
    let started = Instant::now();
    stream.write_all(&request).unwrap();
    assert_eq!(read_exact(&mut stream, reply.len()), reply);
    let took = started.elapsed();
    let least = delay * (reply.len() as u32 - 1);
    assert!(took >= least, "took {took:?}, expected at least {least:?}");

    // Healing mid-reply: the rest comes at once.
    proxy.set_fault(Fault::SlowReplies(Duration::from_secs(3600)));
    stream.write_all(PING).unwrap();
    assert_eq!(read_exact(&mut stream, 1), b"+");
    proxy.set_fault(Fault::None);
    assert_eq!(read_exact(&mut stream, PONG.len() - 1), &PONG[1..]);
    ping(&mut stream);
}

#[test]
fn cut_mid_reply_sends_a_strict_prefix() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port);
    let mut first = connect(proxy.port());
    ping(&mut first);

    proxy.set_fault(Fault::CutMidReply);
    for stream in [&mut first, &mut connect(proxy.port())] {
        stream.write_all(PING).unwrap();
        let got = read_until_cut(stream);
        assert!(
            !got.is_empty() && got.len() < PONG.len() && PONG.starts_with(&got),
            "expected a strict prefix of {PONG:?}, got {got:?}"
        );
    }
    wait_for("no connection", || proxy.connections() == 0);

    // The server did run the command: only its reply was lost.
    let mut stream = connect(proxy.port());
    stream.write_all(&command(&[b"INCR", b"n"])).unwrap();
    let got = read_until_cut(&mut stream);
    assert!(b":1\r\n".starts_with(&got) && got.len() < 4, "{got:?}");
    assert_eq!(server.cli(&["GET", "n"]), "1");

    proxy.set_fault(Fault::None);
    let mut stream = connect(proxy.port());
    ping(&mut stream);
}

#[test]
fn reset_every_cuts_connections_periodically() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port);
    let period = Duration::from_millis(200);
    proxy.set_fault(Fault::ResetEvery(period));

    // An idle connection is cut within a few periods (here: at most PATIENCE).
    let mut idle = connect(proxy.port());
    let started = Instant::now();
    assert_eq!(read_until_cut(&mut idle), b"");
    assert!(started.elapsed() < PATIENCE);

    // New connections work between cuts (a cut may strike mid-PING: retry).
    let mut answered = 0;
    let deadline = Instant::now() + PATIENCE;
    while answered < 3 {
        assert!(Instant::now() < deadline, "no PING answered between resets");
        let mut stream = connect(proxy.port());
        stream.write_all(PING).unwrap();
        let mut buf = [0u8; 7];
        if stream.read_exact(&mut buf).is_ok() {
            assert_eq!(&buf, PONG);
            answered += 1;
        }
    }

    // Healed: a connection outlives several periods.
    proxy.set_fault(Fault::None);
    let mut stream = connect(proxy.port());
    ping(&mut stream);
    std::thread::sleep(period * 3);
    ping(&mut stream);
}

#[test]
fn reset_all_cuts_every_connection_now() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port);
    let mut streams: Vec<TcpStream> = (0..3).map(|_| connect(proxy.port())).collect();
    for stream in &mut streams {
        ping(stream);
    }
    assert_eq!(proxy.connections(), 3);
    proxy.reset_all();
    assert_eq!(proxy.connections(), 0);
    for stream in &mut streams {
        assert_eq!(read_until_cut(stream), b"");
    }
    let mut stream = connect(proxy.port());
    ping(&mut stream);
}

#[test]
fn dropping_the_proxy_closes_everything_promptly() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port);
    let port = proxy.port();
    let mut plain = connect(port);
    ping(&mut plain);
    let mut held = connect(port);
    ping(&mut held);
    // A pump sleeping for an hour between two bytes must not hold the drop up.
    proxy.set_fault(Fault::SlowReplies(Duration::from_secs(3600)));
    held.write_all(PING).unwrap();
    assert_eq!(read_exact(&mut held, 1), b"+");
    wait_for("2 connections", || proxy.connections() == 2);

    let started = Instant::now();
    drop(proxy);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "drop took {took:?}");
    assert_eq!(read_until_cut(&mut plain), b"");
    assert_eq!(read_until_cut(&mut held), b"");
    // Nobody listens any more.
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn many_proxies_come_and_go() {
    let server = RedisServer::start();
    for fault in [
        Fault::None,
        Fault::Blackhole,
        Fault::SlowReplies(Duration::from_millis(1)),
        Fault::CutMidReply,
        Fault::ResetEvery(Duration::from_millis(5)),
    ] {
        for _ in 0..10 {
            let proxy = FaultProxy::start(server.port);
            let mut stream = connect(proxy.port());
            if fault == Fault::None {
                ping(&mut stream);
            }
            proxy.set_fault(fault);
            let _ = stream.write_all(PING);
            drop(proxy);
            read_until_cut(&mut stream);
        }
    }
    // The server sees the upstream connections go: only redis-cli's own remains.
    wait_for("upstream connections closed", || {
        server.cli(&["CLIENT", "LIST"]).lines().count() == 1
    });
}

#[test]
fn upstream_down_closes_clients() {
    let mut server = RedisServer::start();
    let proxy = FaultProxy::start(server.port);
    server.kill();
    let mut stream = connect(proxy.port());
    assert_eq!(read_until_cut(&mut stream), b"");
    server.restart();
    let mut stream = connect(proxy.port());
    ping(&mut stream);
}

#[test]
fn pause_and_resume() {
    let server = RedisServer::start();
    let mut stream = connect(server.port);
    ping(&mut stream);

    server.pause();
    assert!(server.is_paused());
    stream.write_all(PING).unwrap();
    assert_silent(&mut stream);
    // The kernel still accepts connections for it.
    let mut other = connect(server.port);
    other.write_all(PING).unwrap();
    assert_silent(&mut other);

    server.resume();
    assert!(!server.is_paused());
    // What queued up meanwhile is answered.
    assert_eq!(read_exact(&mut stream, PONG.len()), PONG);
    assert_eq!(read_exact(&mut other, PONG.len()), PONG);
    ping(&mut stream);
}

#[test]
fn a_paused_server_is_killed_and_dropped_cleanly() {
    let mut server = RedisServer::start();
    let pid = server.pid();
    server.pause();
    server.kill();
    assert!(!server.is_paused());
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    server.restart();
    let mut stream = connect(server.port);
    ping(&mut stream);

    server.pause();
    let pid = server.pid();
    drop(server);
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
}
