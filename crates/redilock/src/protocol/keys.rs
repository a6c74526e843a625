//! The Redis keys of one lock. Besides the lock key itself (the prefix and the name, as in
//! python-redilock), a lock keeps a fencing counter, the queue of its waiters, and the tokens
//! withdrawn by callers that stopped; waiters are woken on their client's channel. Every key is put in the lock key's Redis Cluster slot, whatever braces the name
//! contains, so one script may touch them all: this module is where a deployment that spreads
//! keys over servers finds which server holds a lock.

use once_cell::sync::Lazy;

/// The lock's fencing counter.
pub(crate) fn fence_key(key: &[u8]) -> Vec<u8> {
    beside(b"fence", key)
}

/// The queue of waiting tokens, first in line first (a list).
pub(crate) fn queue_key(key: &[u8]) -> Vec<u8> {
    beside(b"queue", key)
}

/// The tokens withdrawn by callers that stopped, until when (a sorted set).
pub(crate) fn withdrawn_key(key: &[u8]) -> Vec<u8> {
    beside(b"withdrawn", key)
}

/// The channel on which a client's waiters are woken (see turns.lua): its name is in every
/// token the client makes.
pub(crate) fn wake_channel(client: &str) -> Vec<u8> {
    [b"redilock:wake:".as_slice(), client.as_bytes()].concat()
}

/// `redilock:<kind>:{T}:<key>`, where the hash tag `T` is chosen to fall in the same Redis
/// Cluster slot as `key` itself.
fn beside(kind: &[u8], key: &[u8]) -> Vec<u8> {
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
pub(crate) fn slot(key: &[u8]) -> u16 {
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
    fn every_key_of_a_lock_shares_its_slot() {
        for key in [
            &b"orders:42"[..],
            b"{tag}:x",
            b"}{",
            b"a}b",
            b"",
            "ü锁".as_bytes(),
        ] {
            for beside in [fence_key, queue_key, withdrawn_key] {
                assert_eq!(
                    slot(&beside(key)),
                    slot(key),
                    "{:?}",
                    String::from_utf8_lossy(key)
                );
            }
        }
    }
}
