//! The harness's Sentinels, checked with redis-cli only: they watch a primary and its replica,
//! know each other, and fail over when the primary dies; secured, with TLS and passwords too.

use redilock_test_harness::tls::TestCertificates;
use redilock_test_harness::{wait_until, RedisServer, Secured, Sentinels};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn sentinels_watch_the_primary_and_fail_over() {
    let started = Instant::now();
    let mut group = Sentinels::start(1, 3);
    eprintln!(
        "primary, replica and 3 Sentinels ready in {:?}",
        started.elapsed()
    );
    let primary = group.servers()[0].port;
    let replica = group.servers()[1].port;
    let sentinels = group.sentinel_ports();
    assert_eq!(sentinels.len(), 3);
    assert_eq!(
        group.url(),
        format!(
            "redis+sentinel://127.0.0.1:{},127.0.0.1:{},127.0.0.1:{}/mymaster",
            sentinels[0], sentinels[1], sentinels[2]
        )
    );
    assert_eq!(group.master_name(), "mymaster");
    assert_eq!(group.current_primary_port(), primary);
    assert_eq!(group.primary().port, primary);
    assert_eq!(group.replicas()[0].port, replica);
    for sentinel in group.sentinels() {
        assert_eq!(
            sentinel.cli(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster"]),
            format!("127.0.0.1\n{primary}")
        );
        assert!(sentinel
            .cli(&["SENTINEL", "CKQUORUM", "mymaster"])
            .starts_with("OK 3 usable Sentinels"));
    }
    assert_eq!(group.primary().cli(&["SET", "k", "before"]), "OK");
    // Replication is asynchronous: the key must be on the replica before the primary dies.
    wait_until("the replica has the key", || {
        group.servers()[1].cli(&["GET", "k"]) == "before"
    });

    let started = Instant::now();
    assert_eq!(group.kill_primary(), primary);
    let promoted = group.wait_for_failover(primary);
    eprintln!("failover in {:?}", started.elapsed());
    assert_eq!(promoted, replica);
    assert_eq!(group.current_primary_port(), replica);
    assert_eq!(group.primary().cli(&["GET", "k"]), "before");
    assert_eq!(group.primary().cli(&["SET", "k", "after"]), "OK");
    assert!(group.replicas().is_empty());
    for sentinel in group.sentinels() {
        assert_eq!(
            sentinel.cli(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster"]),
            format!("127.0.0.1\n{replica}")
        );
    }

    // The old primary comes back (empty) and the Sentinels make it the new one's replica.
    group.server_mut(primary).restart();
    group.wait_until_settled();
    assert_eq!(group.primary().port, replica);
    assert_eq!(group.replicas()[0].port, primary);
    wait_until("the old primary has the new data", || {
        group.replicas()[0].cli(&["GET", "k"]) == "after"
    });
}

#[test]
fn a_single_sentinel_without_replicas() {
    let group = Sentinels::start(0, 1);
    assert_eq!(group.sentinel_ports().len(), 1);
    assert_eq!(group.current_primary_port(), group.servers()[0].port);
    assert!(group.replicas().is_empty());
}

#[test]
fn sentinels_stop_on_drop() {
    let group = Sentinels::start(1, 2);
    let dirs: Vec<_> = group
        .sentinels()
        .iter()
        .chain(group.servers())
        .map(|s| (s.pid(), s.dir().to_path_buf()))
        .collect();
    assert!(dirs.iter().all(|(_, dir)| dir.exists()));
    assert!(group.sentinels()[0].dir().join("sentinel.conf").exists());
    drop(group);
    for (pid, dir) in dirs {
        assert!(!dir.exists(), "{dir:?} is left");
        // Killed and reaped: no such process any more.
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    }
}

/// What `server` answers a plain, unauthenticated PING with: on its port (TCP), and on its
/// unix socket.
fn plain_pings(server: &RedisServer) -> (String, String) {
    let mut answer = String::new();
    if let Ok(mut tcp) = TcpStream::connect(("127.0.0.1", server.port)) {
        tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = tcp.write_all(b"PING\r\n");
        let _ = tcp.read_to_string(&mut answer);
    }
    let socket = Command::new("redis-cli")
        .arg("-s")
        .arg(server.socket_path())
        .arg("PING")
        .output()
        .unwrap();
    (
        answer,
        String::from_utf8_lossy(&socket.stdout).trim().to_string(),
    )
}

#[test]
fn secured_sentinels_take_tls_and_passwords_only_and_fail_over() {
    let certificates = TestCertificates::generate();
    let started = Instant::now();
    let mut group = Sentinels::start_secured(
        1,
        3,
        Secured {
            tls: Some(&certificates),
            password: Some("pass@:/%"),
            sentinel_password: Some("sentinel&pass"),
        },
    );
    eprintln!(
        "secured primary, replica and 3 Sentinels ready in {:?}",
        started.elapsed()
    );
    let primary = group.servers()[0].port;
    let replica = group.servers()[1].port;
    let sentinels = group.sentinel_ports();
    assert_eq!(
        group.url(),
        format!(
            "rediss+sentinel://:pass%40%3A%2F%25@127.0.0.1:{},127.0.0.1:{},127.0.0.1:{}\
             /mymaster?sentinel_password=sentinel%26pass",
            sentinels[0], sentinels[1], sentinels[2]
        )
    );
    assert_eq!(
        group.url_with(None, Some("other")),
        format!(
            "rediss+sentinel://127.0.0.1:{},127.0.0.1:{},127.0.0.1:{}\
             /mymaster?sentinel_password=other",
            sentinels[0], sentinels[1], sentinels[2]
        )
    );
    // TLS only on the ports, a password on every socket.
    for server in group.sentinels().iter().chain(group.servers()) {
        let (tcp, socket) = plain_pings(server);
        assert!(!tcp.contains("PONG"), "port {}: {tcp:?}", server.port);
        assert!(
            socket.starts_with("NOAUTH"),
            "port {}: {socket}",
            server.port
        );
        assert_eq!(server.cli(&["PING"]), "PONG");
    }
    for sentinel in group.sentinels() {
        assert!(sentinel
            .cli(&["SENTINEL", "CKQUORUM", "mymaster"])
            .starts_with("OK 3 usable Sentinels"));
    }
    assert_eq!(group.primary().cli(&["SET", "k", "before"]), "OK");
    wait_until("the replica has the key", || {
        group.servers()[1].cli(&["GET", "k"]) == "before"
    });

    // The Sentinels vote over TLS with their password, and promote the replica.
    assert_eq!(group.kill_primary(), primary);
    assert_eq!(group.wait_for_failover(primary), replica);
    assert_eq!(group.primary().cli(&["GET", "k"]), "before");
    assert_eq!(group.primary().cli(&["SET", "k", "after"]), "OK");

    // The old primary comes back and replicates the new one (TLS, `masterauth`).
    group.server_mut(primary).restart();
    group.wait_until_settled();
    assert_eq!(group.replicas()[0].port, primary);
    wait_until("the old primary has the new data", || {
        group.replicas()[0].cli(&["GET", "k"]) == "after"
    });
    // A restarted Sentinel finds the passwords in its configuration, and the others accept it.
    group.sentinel_mut(0).restart();
    group.wait_until_settled();
}
