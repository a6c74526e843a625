//! Reading a lock's state without its token: free, held with a TTL, held without expiry.

use redilock::{blocking::Client, Error, LockState, Options, Wait};
use redilock_test_harness::RedisServer;
use std::time::Duration;

#[test]
fn status_tells_free_from_held() {
    let server = RedisServer::start();
    let client = Client::new(&server.url(), Options::default()).unwrap();
    assert_eq!(client.state("job").unwrap(), LockState::Free);

    let ttl = Duration::from_secs(30);
    let lease = client.lock("job", Some(ttl), Wait::TryOnce).unwrap();
    let LockState::Held {
        remaining: Some(remaining),
    } = client.state("job").unwrap()
    else {
        panic!("held with a TTL expected");
    };
    assert!(
        remaining <= ttl && remaining > ttl - Duration::from_secs(5),
        "{remaining:?}"
    );

    client.unlock("job", &lease.token).unwrap();
    assert_eq!(client.state("job").unwrap(), LockState::Free);

    server.cli(&["SET", "set-by-other-software", "x"]);
    assert_eq!(
        client.state("set-by-other-software").unwrap(),
        LockState::Held { remaining: None }
    );
}

#[test]
fn status_reads_the_prefixed_key() {
    let server = RedisServer::start();
    let options = Options {
        key_prefix: b"app:".to_vec(),
        ..Options::default()
    };
    let client = Client::new(&server.url(), options).unwrap();
    server.cli(&["SET", "job", "unprefixed", "PX", "60000"]);
    assert_eq!(client.state("job").unwrap(), LockState::Free);
    client
        .lock("job", Some(Duration::from_secs(30)), Wait::TryOnce)
        .unwrap();
    assert_ne!(client.state("job").unwrap(), LockState::Free);
    assert!(matches!(client.state(""), Err(Error::InvalidArgument(_))));
}

#[tokio::test(flavor = "current_thread")]
async fn the_async_client_reads_it_too() {
    let server = RedisServer::start();
    let client = redilock::Client::new(&server.url(), Options::default()).unwrap();
    assert_eq!(client.state("job").await.unwrap(), LockState::Free);
    client
        .lock("job", Some(Duration::from_secs(30)), Wait::TryOnce)
        .await
        .unwrap();
    assert!(matches!(
        client.state("job").await,
        Ok(LockState::Held { remaining: Some(_) })
    ));
}
