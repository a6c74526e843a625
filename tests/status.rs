//! Reading a lock's state without its token: free, held with a TTL, held without expiry.

mod common;

use common::RedisServer;
use redilock::{blocking::Client, Error, LockStatus, Options, Wait};
use std::time::Duration;

#[test]
fn status_tells_free_from_held() {
    let server = RedisServer::start();
    let client = Client::new(&server.url(), Options::default()).unwrap();
    assert_eq!(client.status("job").unwrap(), LockStatus::Free);

    let ttl = Duration::from_secs(30);
    let lease = client.lock("job", Some(ttl), Wait::TryOnce).unwrap();
    let LockStatus::Held {
        remaining: Some(remaining),
    } = client.status("job").unwrap()
    else {
        panic!("held with a TTL expected");
    };
    assert!(
        remaining <= ttl && remaining > ttl - Duration::from_secs(5),
        "{remaining:?}"
    );

    client.unlock("job", &lease.token).unwrap();
    assert_eq!(client.status("job").unwrap(), LockStatus::Free);

    server.cli(&["SET", "set-by-other-software", "x"]);
    assert_eq!(
        client.status("set-by-other-software").unwrap(),
        LockStatus::Held { remaining: None }
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
    assert_eq!(client.status("job").unwrap(), LockStatus::Free);
    client
        .lock("job", Some(Duration::from_secs(30)), Wait::TryOnce)
        .unwrap();
    assert_ne!(client.status("job").unwrap(), LockStatus::Free);
    assert!(matches!(client.status(""), Err(Error::InvalidArgument(_))));
}

#[tokio::test(flavor = "current_thread")]
async fn the_async_client_reads_it_too() {
    let server = RedisServer::start();
    let client = redilock::Client::new(&server.url(), Options::default()).unwrap();
    assert_eq!(client.status("job").await.unwrap(), LockStatus::Free);
    client
        .lock("job", Some(Duration::from_secs(30)), Wait::TryOnce)
        .await
        .unwrap();
    assert!(matches!(
        client.status("job").await,
        Ok(LockStatus::Held { remaining: Some(_) })
    ));
}
