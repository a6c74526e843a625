//! The Lua scripts that make every lock operation atomic. They are sent once per connection
//! (EVALSHA, re-loaded on NOSCRIPT by the redis crate); keys and values always travel as
//! KEYS/ARGV, never inside the script text. The scripts that hand the lock on or tell a
//! waiter share turns.lua, put in front of each.

use once_cell::sync::Lazy;
use redis::Script;

pub(crate) static ACQUIRE: Lazy<Script> = Lazy::new(|| {
    Script::new(concat!(
        include_str!("scripts/turns.lua"),
        include_str!("scripts/acquire.lua")
    ))
});
pub(crate) static RELEASE: Lazy<Script> = Lazy::new(|| {
    Script::new(concat!(
        include_str!("scripts/turns.lua"),
        include_str!("scripts/release.lua")
    ))
});
pub(crate) static EXTEND: Lazy<Script> = Lazy::new(|| {
    Script::new(concat!(
        include_str!("scripts/turns.lua"),
        include_str!("scripts/extend.lua")
    ))
});
pub(crate) static REMAINING: Lazy<Script> =
    Lazy::new(|| Script::new(include_str!("scripts/remaining.lua")));
pub(crate) static RAISE_FENCE: Lazy<Script> =
    Lazy::new(|| Script::new(include_str!("scripts/raise_fence.lua")));
pub(crate) static CLEANUP: Lazy<Script> = Lazy::new(|| {
    Script::new(concat!(
        include_str!("scripts/turns.lua"),
        include_str!("scripts/cleanup.lua")
    ))
});
