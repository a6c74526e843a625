//! The Lua scripts that make every lock operation atomic. They are sent once per connection
//! (EVALSHA, re-loaded on NOSCRIPT by the redis crate); keys and values always travel as
//! KEYS/ARGV, never inside the script text. The scripts that number an acquisition, hand the
//! lock on or tell a waiter share fence.lua, put in front of each, and turns.lua, put where
//! each has the line `-- turns.lua`: the acquire and release scripts have it after their
//! uncontended path, which so does not pay for building helpers it does not call.

use once_cell::sync::Lazy;
use redis::Script;

pub(crate) static ACQUIRE: Lazy<Script> =
    Lazy::new(|| with_helpers(include_str!("scripts/acquire.lua")));
pub(crate) static RELEASE: Lazy<Script> =
    Lazy::new(|| with_helpers(include_str!("scripts/release.lua")));
pub(crate) static EXTEND: Lazy<Script> =
    Lazy::new(|| with_helpers(include_str!("scripts/extend.lua")));
pub(crate) static REMAINING: Lazy<Script> =
    Lazy::new(|| Script::new(include_str!("scripts/remaining.lua")));
pub(crate) static RAISE_FENCE: Lazy<Script> =
    Lazy::new(|| Script::new(include_str!("scripts/raise_fence.lua")));
pub(crate) static CLEANUP: Lazy<Script> =
    Lazy::new(|| with_helpers(include_str!("scripts/cleanup.lua")));

/// `script` with fence.lua in front and turns.lua at its `-- turns.lua` line.
fn with_helpers(script: &str) -> Script {
    Script::new(&script_text(script))
}

fn script_text(script: &str) -> String {
    let (before, after) = script
        .split_once(TURNS_HERE)
        .expect("a script with helpers says where turns.lua goes");
    [
        include_str!("scripts/fence.lua"),
        before,
        include_str!("scripts/turns.lua"),
        after,
    ]
    .concat()
}

const TURNS_HERE: &str = "\n-- turns.lua\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_script_with_helpers_has_them_once() {
        for script in [
            include_str!("scripts/acquire.lua"),
            include_str!("scripts/release.lua"),
            include_str!("scripts/extend.lua"),
            include_str!("scripts/cleanup.lua"),
        ] {
            assert_eq!(script.matches(TURNS_HERE).count(), 1);
            let text = script_text(script);
            assert_eq!(text.matches("local function next_fence").count(), 1);
            assert_eq!(text.matches("local function hand_over").count(), 1);
        }
    }
}
