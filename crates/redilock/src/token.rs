//! Lock tokens: the secret that proves ownership of a lock.

use std::fmt;

/// Length of a token in characters (32 lowercase hex digits, no NUL).
pub const TOKEN_CHARS: usize = 32;

/// A random owner token: a v4 UUID (122 random bits from the OS's secure source, drawn per
/// token, so threads, processes and forked children never share one), written as 32 hex
/// characters.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Token(String);

impl Token {
    pub(crate) fn generate() -> Token {
        Token(uuid::Uuid::new_v4().simple().to_string())
    }

    /// Wraps a token received from elsewhere (another process, a C caller). Any bytes are
    /// accepted: a wrong token simply does not own the lock.
    pub fn from_string(token: impl Into<String>) -> Token {
        Token(token.into())
    }

    /// The token as text, as stored in Redis.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// Debug hides the secret so that logging a lock does not hand out the right to release it.
impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn tokens_are_32_hex_chars_and_distinct() {
        let tokens: HashSet<String> = (0..10_000).map(|_| Token::generate().0).collect();
        assert_eq!(tokens.len(), 10_000);
        for t in &tokens {
            assert_eq!(t.len(), TOKEN_CHARS);
            assert!(t.bytes().all(|b| b.is_ascii_hexdigit()));
        }
    }

    #[test]
    fn debug_does_not_show_the_secret() {
        let t = Token::generate();
        assert!(!format!("{t:?}").contains(t.as_str()));
    }
}
