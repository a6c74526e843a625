//! The Lua scripts that make acquire and release atomic. They are sent once per connection
//! (EVALSHA, re-loaded on NOSCRIPT by the redis crate); keys and values always travel as
//! KEYS/ARGV, never inside the script text.

use once_cell::sync::Lazy;
use redis::Script;

pub(crate) static ACQUIRE: Lazy<Script> =
    Lazy::new(|| Script::new(include_str!("scripts/acquire.lua")));
pub(crate) static RELEASE: Lazy<Script> =
    Lazy::new(|| Script::new(include_str!("scripts/release.lua")));

/// Channel on which releases of `key` are announced to its waiters.
pub(crate) fn wake_channel(key: &[u8]) -> Vec<u8> {
    [b"redilock:released:".as_slice(), key].concat()
}
