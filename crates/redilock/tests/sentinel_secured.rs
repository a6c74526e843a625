//! Redis Sentinel secured: `rediss+sentinel://` (TLS to the sentinels and to the primary they
//! name, trusting the test CA), and a primary and sentinels each with a password of their own
//! (`:PASSWORD@` and `?sentinel_password=`). The same client locks again over TLS after a
//! failover; a wrong password, the sentinels' or the primary's, fails the call with an error
//! that says who refused and never shows the password.

use redilock::{blocking::Client, Error, Options, Wait};
use redilock_test_harness::tls::TestCertificates;
use redilock_test_harness::{scaled, wait_until, Secured, Sentinels};
use std::time::{Duration, Instant};

const TTL: Option<Duration> = Some(Duration::from_secs(30));
/// Passwords with characters a URL gives a meaning to (the harness percent-encodes them in
/// its URLs); every password of these tests has "secret" in it.
const PASSWORD: &str = "primary-secret@/:%?";
const SENTINEL_PASSWORD: &str = "sentinel-secret&@:%";

fn options() -> Options {
    Options {
        command_timeout: scaled(Duration::from_secs(5)),
        replica_ack_timeout: Some(scaled(Duration::from_secs(1))),
        ..Options::default()
    }
}

fn tls_options(certificates: &TestCertificates) -> Options {
    Options {
        tls_ca_file: Some(certificates.ca()),
        ..options()
    }
}

/// No password in `message`, neither as given nor percent-encoded, right or wrong.
fn assert_no_password(message: &str) {
    assert!(
        !message.contains("secret"),
        "the message shows a password: {message}"
    );
}

#[test]
fn over_tls_the_same_client_locks_unlocks_and_locks_again_after_a_failover() {
    let certificates = TestCertificates::generate();
    let secured = Secured {
        tls: Some(&certificates),
        ..Secured::default()
    };
    let mut sentinels = Sentinels::start_secured(1, 3, secured);
    let url = sentinels.url();
    assert!(url.starts_with("rediss+sentinel://"), "{url}");
    let client = Client::new(&url, tls_options(&certificates)).unwrap();
    let lease = client.lock("job", TTL, Wait::TryOnce).unwrap();
    assert_eq!(
        sentinels.primary().cli(&["GET", "job"]),
        lease.token.as_str()
    );
    client.unlock("job", &lease.token).unwrap();
    assert_eq!(sentinels.primary().cli(&["EXISTS", "job"]), "0");
    let old = sentinels.kill_primary();
    let new = sentinels.wait_for_failover(old);
    let promoted = Instant::now();
    wait_until("the client locks on the promoted replica", || {
        client.lock("job", TTL, Wait::TryOnce).is_ok()
    });
    eprintln!(
        "locked again over TLS {:?} after the sentinels agreed on the new primary",
        promoted.elapsed()
    );
    let held = sentinels.primary();
    assert_eq!(held.port, new);
    assert!(!held.cli(&["GET", "job"]).is_empty());
}

fn with_passwords() -> Sentinels {
    Sentinels::start_secured(
        1,
        3,
        Secured {
            password: Some(PASSWORD),
            sentinel_password: Some(SENTINEL_PASSWORD),
            ..Secured::default()
        },
    )
}

#[test]
fn with_both_passwords_in_the_url_the_client_locks_and_locks_again_after_a_failover() {
    let mut sentinels = with_passwords();
    let url = sentinels.url();
    assert!(
        url.starts_with("redis+sentinel://:primary-secret")
            && url.contains("?sentinel_password=sentinel-secret"),
        "{url}"
    );
    let client = Client::new(&url, options()).unwrap();
    let lease = client.lock("job", TTL, Wait::TryOnce).unwrap();
    assert_eq!(
        sentinels.primary().cli(&["GET", "job"]),
        lease.token.as_str()
    );
    client.unlock("job", &lease.token).unwrap();
    // The sentinels vote among themselves (their own password) and reach the replica with
    // the primary's, which it also replicates with.
    let old = sentinels.kill_primary();
    let new = sentinels.wait_for_failover(old);
    wait_until("the client locks on the promoted replica", || {
        client.lock("after", TTL, Wait::TryOnce).is_ok()
    });
    let held = sentinels.primary();
    assert_eq!(held.port, new);
    assert!(!held.cli(&["GET", "after"]).is_empty());
}

#[test]
fn over_tls_with_both_passwords_the_client_locks() {
    let certificates = TestCertificates::generate();
    let sentinels = Sentinels::start_secured(
        1,
        3,
        Secured {
            tls: Some(&certificates),
            password: Some(PASSWORD),
            sentinel_password: Some(SENTINEL_PASSWORD),
        },
    );
    let url = sentinels.url();
    assert!(url.starts_with("rediss+sentinel://"), "{url}");
    let client = Client::new(&url, tls_options(&certificates)).unwrap();
    let lease = client.lock("job", TTL, Wait::TryOnce).unwrap();
    assert_eq!(
        sentinels.primary().cli(&["GET", "job"]),
        lease.token.as_str()
    );
    client.unlock("job", &lease.token).unwrap();
}

#[test]
fn a_wrong_password_is_refused_by_whom_it_was_for_and_never_shown() {
    let sentinels = with_passwords();
    let lock = |url: String| {
        let client = Client::new(&url, options()).unwrap();
        let started = Instant::now();
        let result = client.lock("job", TTL, Wait::TryOnce);
        assert!(started.elapsed() < scaled(Duration::from_secs(10)));
        result.map(|_| ()).unwrap_err()
    };

    // The sentinels refuse: none names the primary, and each says why.
    let err = lock(sentinels.url_with(Some(PASSWORD), Some("wrong-secret")));
    match &err {
        Error::Connection(m) => {
            assert!(m.contains("no sentinel named the primary"), "{m}");
            assert_eq!(
                m.matches("WRONGPASS").count(),
                3,
                "each sentinel refuses: {m}"
            );
        }
        other => panic!("expected a connection error, got {other:?}"),
    }
    assert_no_password(&err.to_string());
    assert_no_password(&format!("{err:?}"));

    // The sentinels answer; the primary they name refuses a wrong password, or none.
    for (password, refusal) in [(Some("wrong-secret"), "WRONGPASS"), (None, "NOAUTH")] {
        let err = lock(sentinels.url_with(password, Some(SENTINEL_PASSWORD)));
        match &err {
            Error::Redis(m) => assert!(m.contains(refusal), "{m}"),
            other => panic!("expected a Redis error reply, got {other:?}"),
        }
        assert_no_password(&err.to_string());
        assert_no_password(&format!("{err:?}"));
    }

    // Nothing got through: nothing held.
    assert_eq!(sentinels.primary().cli(&["EXISTS", "job"]), "0");
}
