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
