//! The Redis keys of one lock. Besides the lock key itself (the prefix and the name, as in
//! python-redilock), a lock keeps a fencing counter, the queue of its waiters, and the tokens
//! withdrawn by callers that stopped; waiters are woken on their client's channel. Every key is put in the lock key's Redis Cluster slot, whatever braces the name
//! contains, so one script may touch them all: this module is where a deployment that spreads
//! keys over servers finds which server holds a lock.

use once_cell::sync::Lazy;

/// A lock's key and the keys kept beside it, all in the lock key's Redis Cluster slot, which
/// is worked out once for them all.
pub(crate) struct LockKeys<'a> {
    key: &'a [u8],
    pub(crate) slot: u16,
}

impl<'a> LockKeys<'a> {
    pub(crate) fn of(key: &'a [u8]) -> Self {
        LockKeys {
            key,
            slot: slot(key),
        }
    }

    /// The lock's fencing counter.
    pub(crate) fn fence(&self) -> Vec<u8> {
        self.beside(b"fence")
    }

    /// The queue of waiting tokens, first in line first (a list).
    pub(crate) fn queue(&self) -> Vec<u8> {
        self.beside(b"queue")
    }

    /// The tokens withdrawn by callers that stopped, until when (a sorted set).
    pub(crate) fn withdrawn(&self) -> Vec<u8> {
        self.beside(b"withdrawn")
    }

    /// `redilock:<kind>:{T}:<key>`, where the hash tag `T` is chosen to fall in the same Redis
    /// Cluster slot as `key` itself.
    fn beside(&self, kind: &[u8]) -> Vec<u8> {
        let mut digits = [0; 10];
        let tag = decimal(SLOT_TAGS[usize::from(self.slot)], &mut digits);
        [b"redilock:".as_slice(), kind, b":{", tag, b"}:", self.key].concat()
    }
}

/// The channel on which a client's waiters are woken (see turns.lua): its name is in every
/// token the client makes.
pub(crate) fn wake_channel(client: &str) -> Vec<u8> {
    [b"redilock:wake:".as_slice(), client.as_bytes()].concat()
}

/// For each of the 16384 cluster slots, the smallest number whose decimal text hashes to it.
static SLOT_TAGS: Lazy<Vec<u32>> = Lazy::new(|| {
    let mut tags = vec![u32::MAX; SLOTS];
    let mut missing = SLOTS;
    let mut n = 0u32;
    while missing > 0 {
        let slot = usize::from(crc16(decimal(n, &mut [0; 10])) % SLOTS as u16);
        if tags[slot] == u32::MAX {
            tags[slot] = n;
            missing -= 1;
        }
        n += 1;
    }
    tags
});

const SLOTS: usize = 16384;

/// `n` in decimal, written at the end of `digits`.
fn decimal(mut n: u32, digits: &mut [u8; 10]) -> &[u8] {
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &digits[start..];
        }
    }
}

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

/// CRC-16/XMODEM, the checksum Redis Cluster uses for slots, a byte at a time.
fn crc16(bytes: &[u8]) -> u16 {
    bytes.iter().fold(0u16, |crc, &byte| {
        (crc << 8) ^ CRC16_TABLE[usize::from((crc >> 8) as u8 ^ byte)]
    })
}

/// The CRC of each byte value on its own, worked out a bit at a time at compile time.
const CRC16_TABLE: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut byte = 0;
    while byte < 256 {
        let mut crc = (byte as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[byte] = crc;
        byte += 1;
    }
    table
};

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
    fn decimal_is_to_string() {
        for n in [0, 7, 10, 16383, 110_000, u32::MAX] {
            assert_eq!(decimal(n, &mut [0; 10]), n.to_string().as_bytes());
        }
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
            let keys = LockKeys::of(key);
            for beside in [keys.fence(), keys.queue(), keys.withdrawn()] {
                assert_eq!(
                    slot(&beside),
                    slot(key),
                    "{:?}",
                    String::from_utf8_lossy(key)
                );
            }
        }
    }
}
