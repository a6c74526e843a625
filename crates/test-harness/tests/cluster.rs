//! The harness's Redis Cluster, checked with redis-cli only: it forms, routes keys by slot,
//! moves slots (also half-way, for ASK and TRYAGAIN) and fails over, planned or not.

use redilock_test_harness::tls::TestCertificates;
use redilock_test_harness::{key_slot, RedisCluster, RedisServer};
use std::process::Command;
use std::time::Instant;

/// A key owned by master `index`: "{tag N}key" keys, tried in turn.
fn key_of_master(cluster: &RedisCluster, index: usize) -> String {
    (0..)
        .map(|i| format!("{{tag {i}}}key"))
        .find(|key| cluster.master_index_for_slot(key_slot(key.as_bytes())) == index)
        .unwrap()
}

fn role(server: &RedisServer) -> String {
    server
        .cli(&["ROLE"])
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

#[test]
fn forms_and_routes_keys_by_slot() {
    let started = Instant::now();
    let cluster = RedisCluster::start(3, 1);
    eprintln!("3 masters, 3 replicas formed in {:?}", started.elapsed());
    assert_eq!(cluster.nodes().len(), 6);
    let masters: Vec<u16> = cluster.masters().iter().map(|m| m.port).collect();
    assert_eq!(
        cluster.url(),
        format!(
            "redis+cluster://127.0.0.1:{},127.0.0.1:{},127.0.0.1:{}",
            masters[0], masters[1], masters[2]
        )
    );
    for (i, node) in cluster.nodes().iter().enumerate() {
        let info = node.cli(&["CLUSTER", "INFO"]);
        assert!(info.contains("cluster_state:ok"), "{info}");
        assert!(info.contains("cluster_slots_assigned:16384"), "{info}");
        assert!(info.contains("cluster_known_nodes:6"), "{info}");
        assert_eq!(role(node), if i < 3 { "master" } else { "slave" });
    }
    for i in 0..3 {
        let replica = cluster.replicas(i)[0];
        assert!(replica
            .cli(&["INFO", "replication"])
            .contains(&format!("master_port:{}", cluster.master(i).port)));
    }

    // The server's slots and the harness's own computation agree, hash tags and all.
    for key in [
        "foo",
        "{user1000}.following",
        "a key with spaces",
        "{}x",
        "{{a}}",
        "",
    ] {
        assert_eq!(cluster.keyslot(key), key_slot(key.as_bytes()), "{key:?}");
    }
    assert_eq!(key_slot(b"foo"), 12182);
    assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));

    // A key is served by its slot's master only; the others redirect.
    for (i, &port) in masters.iter().enumerate() {
        let key = key_of_master(&cluster, i);
        let slot = cluster.keyslot(&key);
        assert_eq!(cluster.master_for_slot(slot).port, port);
        assert_eq!(cluster.master(i).cli(&["SET", &key, "v"]), "OK");
        let other = cluster.master((i + 1) % 3);
        assert_eq!(
            other.cli(&["GET", &key]),
            format!("MOVED {slot} 127.0.0.1:{port}")
        );
        // redis-cli -c follows the redirection.
        let out = Command::new("redis-cli")
            .args(["-c", "-p", &other.port.to_string(), "GET", &key])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "v");
    }
}

#[test]
fn a_single_master_owns_every_slot() {
    let cluster = RedisCluster::start(1, 0);
    let master = cluster.master(0);
    assert_eq!(
        cluster.url(),
        format!("redis+cluster://127.0.0.1:{}", master.port)
    );
    assert_eq!(cluster.master_for_slot(0).port, master.port);
    assert_eq!(cluster.master_for_slot(16383).port, master.port);
    assert_eq!(master.cli(&["SET", "any key", "v"]), "OK");
}

#[test]
fn two_masters_with_two_replicas_each() {
    let cluster = RedisCluster::start(2, 2);
    assert_eq!(cluster.nodes().len(), 6);
    assert_eq!(cluster.master_index_for_slot(0), 0);
    assert_eq!(cluster.master_index_for_slot(16383), 1);
    for i in 0..2 {
        assert_eq!(cluster.replicas(i).len(), 2);
        for replica in cluster.replicas(i) {
            assert_eq!(role(replica), "slave");
        }
    }
}

#[test]
fn migrate_slot_moves_the_keys() {
    let cluster = RedisCluster::start(3, 0);
    let key = key_of_master(&cluster, 0);
    let slot = cluster.keyslot(&key);
    let tag = &key[..key.find('}').unwrap() + 1];
    let keys: Vec<String> = (0..250)
        .map(|i| format!("{tag} key {i}\nwith a newline"))
        .collect();
    for k in &keys {
        assert_eq!(cluster.master(0).cli(&["SET", k, k]), "OK");
    }
    cluster.migrate_slot(slot, 2);
    assert_eq!(cluster.master_for_slot(slot).port, cluster.master(2).port);
    assert_eq!(cluster.master_index_for_slot(slot), 2);
    assert_eq!(
        cluster
            .master(2)
            .cli(&["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()]),
        "250"
    );
    assert_eq!(
        cluster
            .master(0)
            .cli(&["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()]),
        "0"
    );
    assert_eq!(cluster.master(2).cli(&["GET", &keys[7]]), keys[7]);
    for i in [0, 1] {
        assert_eq!(
            cluster.master(i).cli(&["GET", &keys[7]]),
            format!("MOVED {slot} 127.0.0.1:{}", cluster.master(2).port)
        );
    }
    // And back.
    cluster.migrate_slot(slot, 0);
    assert_eq!(cluster.master(0).cli(&["GET", &keys[249]]), keys[249]);
}

#[test]
fn a_half_migrated_slot_answers_ask_and_tryagain() {
    let cluster = RedisCluster::start(3, 0);
    let key = key_of_master(&cluster, 1);
    let slot = cluster.keyslot(&key);
    let tag = &key[..key.find('}').unwrap() + 1];
    let (a, b) = (format!("{tag}a"), format!("{tag}b"));
    for k in [&a, &b] {
        assert_eq!(cluster.master(1).cli(&["SET", k, "v"]), "OK");
    }
    let migration = cluster.begin_migration(slot, 0);
    assert_eq!(migration.slot(), slot);
    assert_eq!(migration.source().port, cluster.master(1).port);
    assert_eq!(migration.target().port, cluster.master(0).port);
    assert_eq!(migration.move_keys_at_most(1), 1);
    let (moved, stayed) = if cluster.master(1).cli(&["EXISTS", &a]) == "0" {
        (&a, &b)
    } else {
        (&b, &a)
    };
    let ask = format!("ASK {slot} 127.0.0.1:{}", cluster.master(0).port);
    assert_eq!(cluster.master(1).cli(&["GET", moved]), ask);
    assert_eq!(cluster.master(1).cli(&["GET", stayed]), "v");
    // A new key of the slot goes to the target too.
    assert_eq!(
        cluster.master(1).cli(&["SET", &format!("{tag}new"), "v"]),
        ask
    );
    assert!(cluster
        .master(1)
        .cli(&["MGET", &a, &b])
        .starts_with("TRYAGAIN"));
    // The target takes the moved key only when asked.
    assert!(cluster.master(0).cli(&["GET", moved]).starts_with("MOVED"));
    // Ownership has not changed yet.
    assert_eq!(cluster.master_index_for_slot(slot), 1);

    migration.finish();
    assert_eq!(cluster.master_index_for_slot(slot), 0);
    assert_eq!(cluster.master(0).cli(&["MGET", &a, &b]), "v\nv");
}

#[test]
fn failover_promotes_the_replica() {
    let mut cluster = RedisCluster::start(3, 1);
    let old_master = cluster.master(0).port;
    let replica = cluster.replicas(0)[0].port;
    let key = key_of_master(&cluster, 0);
    assert_eq!(cluster.master(0).cli(&["SET", &key, "before"]), "OK");

    let started = Instant::now();
    cluster.failover(0);
    eprintln!("planned failover in {:?}", started.elapsed());
    assert_eq!(cluster.master(0).port, replica);
    assert_eq!(cluster.replicas(0)[0].port, old_master);
    assert_eq!(role(cluster.master(0)), "master");
    assert_eq!(role(cluster.replicas(0)[0]), "slave");
    assert_eq!(cluster.master(0).cli(&["GET", &key]), "before");
    let slot = cluster.keyslot(&key);
    assert_eq!(cluster.master_for_slot(slot).port, replica);
    assert!(cluster.url().contains(&format!("127.0.0.1:{replica}")));
    assert!(!cluster.url().contains(&format!("127.0.0.1:{old_master}")));
    assert_eq!(
        cluster.replicas(0)[0].cli(&["GET", &key]),
        format!("MOVED {slot} 127.0.0.1:{replica}")
    );
}

#[test]
fn a_killed_master_is_replaced_by_its_replica() {
    let mut cluster = RedisCluster::start(3, 1);
    let old_master = cluster.master(1).port;
    let replica = cluster.replicas(1)[0].port;
    let key = key_of_master(&cluster, 1);

    let started = Instant::now();
    assert_eq!(cluster.kill_master(1), old_master);
    cluster.wait_for_promotion();
    eprintln!("unplanned failover in {:?}", started.elapsed());
    assert_eq!(cluster.master(1).port, replica);
    assert_eq!(role(cluster.master(1)), "master");
    assert_eq!(cluster.master(1).cli(&["SET", &key, "after"]), "OK");
    for node in cluster.nodes().iter().filter(|n| n.is_running()) {
        assert!(node.cli(&["CLUSTER", "INFO"]).contains("cluster_state:ok"));
    }

    // The old master comes back (empty, with its cluster identity) as the new one's replica.
    let index = cluster
        .nodes()
        .iter()
        .position(|n| n.port == old_master)
        .unwrap();
    cluster.node_mut(index).restart();
    cluster.wait_until_settled();
    assert_eq!(cluster.master(1).port, replica);
    assert_eq!(cluster.replicas(1)[0].port, old_master);
    assert_eq!(role(cluster.replicas(1)[0]), "slave");
}

#[test]
fn a_tls_cluster() {
    let certificates = TestCertificates::generate();
    let started = Instant::now();
    let cluster = RedisCluster::start_tls(&certificates, 3, 1);
    eprintln!("TLS cluster formed in {:?}", started.elapsed());
    assert!(cluster.url().starts_with("rediss+cluster://127.0.0.1:"));
    let key = key_of_master(&cluster, 2);
    let ca = certificates.ca();
    let tls_cli = |port: u16, args: &[&str]| {
        let out = Command::new("redis-cli")
            .args(["--tls", "--cacert", ca.to_str().unwrap(), "-c"])
            .args(["-p", &port.to_string()])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    // Through another master, following the redirection, over TLS.
    assert_eq!(tls_cli(cluster.master(0).port, &["SET", &key, "tls"]), "OK");
    assert_eq!(cluster.master(2).cli(&["GET", &key]), "tls");
    // Replication and MIGRATE go over TLS too.
    assert_eq!(cluster.master(2).cli(&["WAIT", "1", "10000"]), "1");
    let slot = cluster.keyslot(&key);
    cluster.migrate_slot(slot, 1);
    assert_eq!(tls_cli(cluster.master(1).port, &["GET", &key]), "tls");
}
