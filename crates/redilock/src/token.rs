//! Lock tokens: the secret that proves ownership of a lock.

use std::fmt;

/// Length of a token in characters (32 lowercase hex digits, no NUL).
pub const TOKEN_CHARS: usize = 32;

/// A random owner token, 32 hex characters: the first 16 name the client that made it (its
/// waiters are woken on that client's channel), the last 16 are drawn for each lock call. Both
/// halves come from the OS's secure source, drawn anew, so threads, processes and forked
/// children never share one.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Token(String);

impl Token {
    pub(crate) fn generate(client: &ClientId) -> Token {
        let mut token = String::with_capacity(TOKEN_CHARS);
        token.push_str(&client.0);
        push_random_hex(&mut token);
        Token(token)
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

/// Names one client in the tokens it makes: 16 random hex characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ClientId(String);

impl ClientId {
    pub(crate) fn generate() -> ClientId {
        let mut id = String::with_capacity(TOKEN_CHARS / 2);
        push_random_hex(&mut id);
        ClientId(id)
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// Appends 16 hex characters from the OS's secure source (60 random bits: a v4 UUID's first
/// half).
fn push_random_hex(text: &mut String) {
    let first_half = uuid::Uuid::new_v4().as_u128() >> 64;
    for digit in (0..16).rev() {
        let nibble = (first_half >> (digit * 4)) & 0xf;
        text.push(char::from(b"0123456789abcdef"[nibble as usize]));
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
        let client = ClientId::generate();
        let tokens: HashSet<String> = (0..10_000).map(|_| Token::generate(&client).0).collect();
        assert_eq!(tokens.len(), 10_000);
        for t in &tokens {
            assert_eq!(t.len(), TOKEN_CHARS);
            assert!(t.bytes().all(|b| b.is_ascii_hexdigit()));
            assert!(t.starts_with(client.as_str()));
        }
    }

    #[test]
    fn debug_does_not_show_the_secret() {
        let t = Token::generate(&ClientId::generate());
        assert!(!format!("{t:?}").contains(t.as_str()));
    }
}
