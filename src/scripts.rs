//! The Lua scripts that make every lock operation atomic. They are sent once per connection
//! (EVALSHA, re-loaded on NOSCRIPT by the redis crate); keys and values always travel as
//! KEYS/ARGV, never inside the script text.

use once_cell::sync::Lazy;
use redis::Script;

pub(crate) static ACQUIRE: Lazy<Script> =
    Lazy::new(|| Script::new(include_str!("scripts/acquire.lua")));
pub(crate) static RELEASE: Lazy<Script> =
    Lazy::new(|| Script::new(include_str!("scripts/release.lua")));
pub(crate) static EXTEND: Lazy<Script> =
    Lazy::new(|| Script::new(include_str!("scripts/extend.lua")));
pub(crate) static REMAINING: Lazy<Script> =
    Lazy::new(|| Script::new(include_str!("scripts/remaining.lua")));
pub(crate) static CLEANUP: Lazy<Script> =
    Lazy::new(|| Script::new(include_str!("scripts/cleanup.lua")));

/// Channel on which releases of `key` are announced to its waiters.
pub(crate) fn wake_channel(key: &[u8]) -> Vec<u8> {
    [b"redilock:released:".as_slice(), key].concat()
}

/// The keys a lock keeps beside its own: its fencing counter, the queue of its waiters and
/// their deadlines, and the tokens withdrawn by callers that stopped.
#[derive(Clone, Copy)]
pub(crate) enum Companion {
    Fence,
    Queue,
    Deadlines,
    Withdrawn,
}

/// A companion of `key`: `redilock:<kind>:{T}:<key>`, where the hash tag `T` is chosen to fall
/// in the same Redis Cluster slot as `key` itself (whatever braces the key contains), so one
/// script may touch them all.
pub(crate) fn companion_key(kind: Companion, key: &[u8]) -> Vec<u8> {
    let kind: &[u8] = match kind {
        Companion::Fence => b"fence",
        Companion::Queue => b"queue",
        Companion::Deadlines => b"deadlines",
        Companion::Withdrawn => b"withdrawn",
    };
    let tag = SLOT_TAGS[usize::from(slot(key))];
    [
        b"redilock:".as_slice(),
        kind,
        b":{",
        tag.to_string().as_bytes(),
        b"}:",
        key,
    ]
    .concat()
}

/// For each of the 16384 cluster slots, the smallest number whose decimal text hashes to it.
static SLOT_TAGS: Lazy<Vec<u32>> = Lazy::new(|| {
    let mut tags = vec![u32::MAX; SLOTS];
    let mut missing = SLOTS;
    let mut n = 0u32;
    while missing > 0 {
        let slot = usize::from(crc16(n.to_string().as_bytes()) % SLOTS as u16);
        if tags[slot] == u32::MAX {
            tags[slot] = n;
            missing -= 1;
        }
        n += 1;
    }
    tags
});

const SLOTS: usize = 16384;

/// The Redis Cluster slot of a key: CRC16 of its hash tag (the text between the first `{` and
/// the next `}`, when not empty), else of the whole key.
fn slot(key: &[u8]) -> u16 {
    let hashed = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            let close = rest.iter().position(|&b| b == b'}')?;
            (close > 0).then(|| &rest[..close])
        })
        .unwrap_or(key);
    crc16(hashed) % SLOTS as u16
}

/// CRC-16/XMODEM, the checksum Redis Cluster uses for slots.
fn crc16(bytes: &[u8]) -> u16 {
    bytes.iter().fold(0u16, |crc, &byte| {
        (0..8).fold(crc ^ (u16::from(byte) << 8), |crc, _| {
            if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis_cluster() {
        // Values from the Redis Cluster specification and `CLUSTER KEYSLOT`.
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(slot(b"foo"), 12182);
        assert_eq!(slot(b"{user1000}.following"), slot(b"user1000"));
        assert_eq!(slot(b"foo{}{bar}"), slot(b"foo{}{bar}".as_slice()));
        assert_eq!(slot(b"foo{{bar}}zap"), slot(b"{bar"));
    }

    #[test]
    fn companions_share_the_lock_keys_slot() {
        for key in [
            &b"orders:42"[..],
            b"{tag}:x",
            b"}{",
            b"a}b",
            b"",
            "ü锁".as_bytes(),
        ] {
            for kind in [
                Companion::Fence,
                Companion::Queue,
                Companion::Deadlines,
                Companion::Withdrawn,
            ] {
                assert_eq!(
                    slot(&companion_key(kind, key)),
                    slot(key),
                    "{:?}",
                    String::from_utf8_lossy(key)
                );
            }
        }
    }
}
