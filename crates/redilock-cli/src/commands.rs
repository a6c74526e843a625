//! The commands for shell scripts: `lock`, `unlock`, `extend` and `state`.

use crate::acquire::acquire;
use crate::args::AcquireArgs;
use crate::duration;
use crate::exit::Failure;
use crate::supervisor::Supervisor;
use redilock::{blocking::Client, LockState, Token};
use std::time::Duration;

/// Prints the owner token; nothing renews the lock, so its TTL must cover the work.
pub fn lock(client: &Client, name: &str, args: &AcquireArgs, quiet: bool) -> Result<u8, Failure> {
    // Signals end the wait cleanly instead of killing the process mid-acquisition.
    let supervisor = Supervisor::start()?;
    let lease = acquire(client, name, args, &supervisor, quiet)?;
    println!("{}", lease.token);
    Ok(0)
}

pub fn unlock(client: &Client, name: &str, token: &str) -> Result<u8, Failure> {
    client.unlock(name, &Token::from_string(token))?;
    Ok(0)
}

pub fn extend(client: &Client, name: &str, token: &str, ttl: Duration) -> Result<u8, Failure> {
    client.extend(name, &Token::from_string(token), ttl)?;
    Ok(0)
}

pub fn state(client: &Client, name: &str, json: bool) -> Result<u8, Failure> {
    let state = client.state(name)?;
    if json {
        let remaining_ms = match state {
            LockState::Held {
                remaining: Some(remaining),
            } => remaining.as_millis().to_string(),
            LockState::Held { remaining: None } | LockState::Free => "null".into(),
        };
        println!(
            "{{\"name\":{},\"held\":{},\"remaining_ms\":{remaining_ms}}}",
            json_string(name),
            state != LockState::Free
        );
    } else {
        match state {
            LockState::Free => println!("free"),
            LockState::Held { remaining: None } => println!("held, no expiry"),
            LockState::Held {
                remaining: Some(remaining),
            } => {
                println!("held, {} left", duration::describe(remaining))
            }
        }
    }
    Ok(0)
}

/// `text` as a JSON string literal.
fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::json_string;

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("job"), r#""job""#);
        assert_eq!(json_string("a\"b\\c\nd"), r#""a\"b\\c\u000ad""#);
        assert_eq!(json_string("nächtlich"), "\"nächtlich\"");
    }
}
