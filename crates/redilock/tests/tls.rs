//! `rediss://` against real TLS redis-servers, with certificates each test makes: every
//! connection of a client (its direct ones, the multiplexed one, the wake-up subscriber) over
//! TLS; server verification, mutual TLS, `#insecure`; and the mistakes told apart clearly.

use redilock::{blocking, Client, Error, Options, TlsClientCert, Wait};
use redilock_test_harness::tls::TestCertificates;
use redilock_test_harness::{scaled, RedisServer};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const TTL: Option<Duration> = Some(Duration::from_secs(10));

/// Trusts `ca`; waiters look again on their own only once a minute, so a prompt hand-over is
/// the wake-up's doing; connecting may take a second.
fn options(ca: PathBuf) -> Options {
    Options {
        tls_ca_file: Some(ca),
        retry_interval: Duration::from_secs(60),
        connect_timeout: Duration::from_secs(1),
        ..Options::default()
    }
}

fn with_client_cert(options: Options, certificates: &TestCertificates) -> Options {
    Options {
        tls_client_cert: Some(TlsClientCert {
            cert_file: certificates.client_cert(),
            key_file: certificates.client_key(),
        }),
        ..options
    }
}

/// A failed call's error and how long it took.
fn timed<T: std::fmt::Debug>(call: impl FnOnce() -> Result<T, Error>) -> (Error, Duration) {
    let started = Instant::now();
    let err = call().unwrap_err();
    (err, started.elapsed())
}

/// Within the connect timeout of [`options`], give or take a loaded machine.
fn within_connect_timeout(took: Duration) -> bool {
    took < scaled(Duration::from_millis(1500))
}

#[test]
fn a_waiter_is_handed_the_lock_over_tls() {
    let certificates = TestCertificates::generate();
    let server = RedisServer::start_tls(&certificates, false);
    let holder = blocking::Client::new(&server.url(), options(certificates.ca())).unwrap();
    let waiter = blocking::Client::new(&server.url(), options(certificates.ca())).unwrap();
    let lease = holder.lock("tls-job", TTL, Wait::TryOnce).unwrap();
    std::thread::scope(|s| {
        let waiting = s.spawn(|| {
            let started = Instant::now();
            let lease = waiter.lock("tls-job", TTL, Wait::AtMost(Duration::from_secs(30)));
            (lease, started.elapsed())
        });
        redilock_test_harness::wait_until("the waiter queues", || {
            redilock_test_harness::queue(&server, "tls-job").len() == 1
        });
        holder.unlock("tls-job", &lease.token).unwrap();
        let (handed, waited) = waiting.join().unwrap();
        let handed = handed.unwrap();
        assert!(handed.fence > lease.fence);
        assert!(
            waited < scaled(Duration::from_secs(10)),
            "waited {waited:?}"
        );
        waiter.unlock("tls-job", &handed.token).unwrap();
    });
}

#[tokio::test]
async fn the_async_client_locks_over_tls() {
    let certificates = TestCertificates::generate();
    let server = RedisServer::start_tls(&certificates, false);
    let client = Client::new(&server.url(), options(certificates.ca())).unwrap();
    let lease = client.lock("async-tls", TTL, Wait::TryOnce).await.unwrap();
    assert_eq!(server.cli(&["GET", "async-tls"]), lease.token.as_str());
    client.unlock("async-tls", &lease.token).await.unwrap();
}

#[test]
fn mutual_tls_takes_a_client_certificate_and_refuses_a_client_without_one() {
    let certificates = TestCertificates::generate();
    let server = RedisServer::start_tls(&certificates, true);
    let with_cert = with_client_cert(options(certificates.ca()), &certificates);
    let client = blocking::Client::new(&server.url(), with_cert).unwrap();
    let lease = client.lock("mtls", TTL, Wait::TryOnce).unwrap();
    client.unlock("mtls", &lease.token).unwrap();

    let without = blocking::Client::new(&server.url(), options(certificates.ca())).unwrap();
    let (err, took) = timed(|| without.lock("mtls", TTL, Wait::TryOnce));
    assert!(
        matches!(&err, Error::Tls(m) if m.contains("requires a client certificate")),
        "{err:?}"
    );
    assert!(within_connect_timeout(took), "took {took:?}");
}

#[tokio::test]
async fn the_async_client_without_a_certificate_is_refused_with_a_tls_error() {
    let certificates = TestCertificates::generate();
    let server = RedisServer::start_tls(&certificates, true);
    let client = Client::new(&server.url(), options(certificates.ca())).unwrap();
    let err = client.ping().await.unwrap_err();
    assert!(
        matches!(&err, Error::Tls(m) if m.contains("requires a client certificate")),
        "{err:?}"
    );
}

#[test]
fn a_server_certificate_of_another_ca_is_refused_within_the_connect_timeout() {
    let certificates = TestCertificates::generate();
    let server = RedisServer::start_tls(&certificates, false);
    let client = blocking::Client::new(&server.url(), options(certificates.other_ca())).unwrap();
    let (err, took) = timed(|| client.lock("wrong-ca", TTL, Wait::TryOnce));
    assert_eq!(
        err,
        Error::Tls(format!(
            "TLS handshake with 127.0.0.1:{} failed: the server's certificate did not verify: UnknownIssuer",
            server.port
        ))
    );
    assert!(within_connect_timeout(took), "took {took:?}");
    assert_eq!(server.cli(&["EXISTS", "wrong-ca"]), "0");
}

#[test]
fn insecure_takes_any_certificate() {
    let certificates = TestCertificates::generate();
    let server = RedisServer::start_tls(&certificates, false);
    let url = format!("{}#insecure", server.url());
    let client = blocking::Client::new(&url, Options::default()).unwrap();
    let lease = client.lock("insecure", TTL, Wait::TryOnce).unwrap();
    client.unlock("insecure", &lease.token).unwrap();
}

#[test]
fn a_plain_client_on_a_tls_port_is_told_so_quickly() {
    let certificates = TestCertificates::generate();
    let server = RedisServer::start_tls(&certificates, false);
    let plain_url = server.url().replace("rediss://", "redis://");
    let client = blocking::Client::new(&plain_url, Options::default()).unwrap();
    let (err, took) = timed(|| client.ping());
    assert!(
        matches!(&err, Error::Connection(m) if m.contains("rediss://")),
        "{err:?}"
    );
    assert!(took < scaled(Duration::from_secs(2)), "took {took:?}");
}

#[test]
fn a_tls_client_on_a_plain_port_gets_a_tls_error_within_the_connect_timeout() {
    let certificates = TestCertificates::generate();
    let server = RedisServer::start();
    let tls_url = server.url().replace("redis://", "rediss://");
    let client = blocking::Client::new(&tls_url, options(certificates.ca())).unwrap();
    let (err, took) = timed(|| client.lock("plain-port", TTL, Wait::TryOnce));
    assert!(
        matches!(&err, Error::Tls(m) if m.contains("is it a TLS port?")),
        "{err:?}"
    );
    assert!(within_connect_timeout(took), "took {took:?}");
}

#[test]
fn the_same_client_locks_again_after_its_tls_server_restarted() {
    let certificates = TestCertificates::generate();
    let mut server = RedisServer::start_tls(&certificates, false);
    let client = blocking::Client::new(&server.url(), options(certificates.ca())).unwrap();
    let lease = client.lock("restarted", TTL, Wait::TryOnce).unwrap();
    client.unlock("restarted", &lease.token).unwrap();
    server.restart();
    let lease = client.lock("restarted", TTL, Wait::TryOnce).unwrap();
    client.unlock("restarted", &lease.token).unwrap();
}

#[test]
fn idle_tls_connections_are_kept() {
    let certificates = TestCertificates::generate();
    let server = RedisServer::start_tls(&certificates, false);
    let client = blocking::Client::new(&server.url(), options(certificates.ca())).unwrap();
    let connections_made = || -> u64 {
        let stats = server.cli(&["INFO", "stats"]);
        let line = stats
            .lines()
            .find_map(|line| line.strip_prefix("total_connections_received:"))
            .unwrap();
        line.trim().parse().unwrap()
    };
    client.ping().unwrap();
    let before = connections_made();
    for round in 0..5 {
        std::thread::sleep(Duration::from_millis(100));
        let name = format!("idle-{round}");
        let lease = client.lock(&name, TTL, Wait::TryOnce).unwrap();
        client.unlock(&name, &lease.token).unwrap();
    }
    // Only the second look through redis-cli is new.
    assert_eq!(connections_made(), before + 1);
}

#[test]
fn unusable_certificate_files_are_refused_when_the_client_is_created() {
    let certificates = TestCertificates::generate();
    let url = "rediss://127.0.0.1:6380";
    let missing = certificates.ca().with_file_name("missing.pem");
    let not_pem = certificates.file("not-pem.pem", "hello");
    for ca in [missing.clone(), not_pem.clone()] {
        let err = blocking::Client::new(url, options(ca.clone()))
            .err()
            .unwrap();
        assert!(
            matches!(&err, Error::InvalidArgument(m) if m.contains(ca.to_str().unwrap())),
            "{err:?}"
        );
    }
    let key_missing = Options {
        tls_client_cert: Some(TlsClientCert {
            cert_file: certificates.client_cert(),
            key_file: missing.clone(),
        }),
        ..Options::default()
    };
    let err = blocking::Client::new(url, key_missing).err().unwrap();
    assert!(
        matches!(&err, Error::InvalidArgument(m) if m.contains("TLS client key file") && m.contains(missing.to_str().unwrap())),
        "{err:?}"
    );
    let err = blocking::Client::new("redis://127.0.0.1:6379", options(certificates.ca()))
        .err()
        .unwrap();
    assert!(
        matches!(&err, Error::InvalidArgument(m) if m.contains("not rediss://")),
        "{err:?}"
    );
}
