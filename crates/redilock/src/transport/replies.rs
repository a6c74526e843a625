//! The replies of the calling thread's connections, read from the bytes received so far. A
//! lock call's replies are a few short RESP2 values, which this reads at a fraction of the cost
//! of the redis crate's streaming parser; the values are the redis crate's own, and an error
//! reply is handed to it, so that it is classified (MOVED, NOSCRIPT…) exactly as elsewhere.

use redis::{ErrorKind, RedisError, RedisResult, Value};

/// Replies nest no deeper than this (a lock call's nest once); deeper is taken as garbage.
const MAX_DEPTH: usize = 16;

/// The first whole reply in `bytes` and how many bytes it takes; `None` while part of it has
/// still to arrive.
pub(crate) fn first_reply(bytes: &[u8]) -> RedisResult<Option<(Value, usize)>> {
    let mut at = 0;
    Ok(reply(bytes, &mut at, 0)?.map(|value| (value, at)))
}

fn reply(bytes: &[u8], at: &mut usize, depth: usize) -> RedisResult<Option<Value>> {
    let start = *at;
    let Some(line) = line(bytes, at) else {
        return Ok(None);
    };
    let (&kind, text) = line.split_first().ok_or_else(|| garbage("an empty line"))?;
    let value = match kind {
        b'+' if text == b"OK" => Value::Okay,
        b'+' => Value::SimpleString(
            String::from_utf8(text.to_vec()).map_err(|_| garbage("a status that is not UTF-8"))?,
        ),
        b'-' => redis::parse_redis_value(&bytes[start..*at])?,
        b':' => Value::Int(number(text)?),
        b'$' => match length(text)? {
            None => Value::Nil,
            Some(len) => {
                let Some(end) = at.checked_add(len).filter(|end| end + 2 <= bytes.len()) else {
                    return Ok(None);
                };
                if &bytes[end..end + 2] != b"\r\n" {
                    return Err(garbage("a bulk string longer than it said"));
                }
                let data = bytes[*at..end].to_vec();
                *at = end + 2;
                Value::BulkString(data)
            }
        },
        b'*' => match length(text)? {
            None => Value::Nil,
            Some(_) if depth == MAX_DEPTH => return Err(garbage("arrays nested too deep")),
            Some(count) => {
                // Not trusting the count for the allocation: the elements must arrive first.
                let mut items = Vec::with_capacity(count.min(16));
                for _ in 0..count {
                    match reply(bytes, at, depth + 1)? {
                        Some(item) => items.push(item),
                        None => return Ok(None),
                    }
                }
                Value::Array(items)
            }
        },
        _ => return Err(garbage("a reply of an unknown type")),
    };
    Ok(Some(value))
}

/// The line at `at`, without its CRLF, moving `at` past it; `None` until it has all arrived.
fn line<'a>(bytes: &'a [u8], at: &mut usize) -> Option<&'a [u8]> {
    let rest = bytes.get(*at..)?;
    let end = rest.windows(2).position(|pair| pair == b"\r\n")?;
    *at += end + 2;
    Some(&rest[..end])
}

fn number(text: &[u8]) -> RedisResult<i64> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| garbage("a number that is not one"))
}

/// A bulk string's or an array's length; `None` for the nil one (-1).
fn length(text: &[u8]) -> RedisResult<Option<usize>> {
    match number(text)? {
        -1 => Ok(None),
        len => usize::try_from(len)
            .map(Some)
            .map_err(|_| garbage("a negative length")),
    }
}

fn garbage(what: &'static str) -> RedisError {
    RedisError::from((ErrorKind::Parse, "unreadable reply", what.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every reply as the redis crate reads it, whole and cut short at every byte.
    const REPLIES: &[&[u8]] = &[
        b"+OK\r\n",
        b"+PONG\r\n",
        b":-42\r\n",
        b"$-1\r\n",
        b"*-1\r\n",
        b"$0\r\n\r\n",
        b"$4\r\na\r\nb\r\n",
        b"*0\r\n",
        b"*2\r\n:1\r\n$16\r\n1765000000000001\r\n",
        b"*4\r\n:0\r\n:-2\r\n:3\r\n*1\r\n$-1\r\n",
        b"-NOSCRIPT No matching script. Please use EVAL.\r\n",
        b"-MOVED 3999 127.0.0.1:6381\r\n",
        b"*2\r\n-ERR inside\r\n:1\r\n",
    ];

    #[test]
    fn reads_what_the_redis_crate_reads() {
        for &whole in REPLIES {
            let expected = redis::parse_redis_value(whole).unwrap();
            let mut followed = whole.to_vec();
            followed.extend_from_slice(b":7\r\n");
            assert_eq!(
                first_reply(&followed).unwrap(),
                Some((expected, whole.len())),
                "{}",
                String::from_utf8_lossy(whole)
            );
            for cut in 0..whole.len() {
                assert_eq!(first_reply(&whole[..cut]).unwrap(), None, "{cut}");
            }
        }
    }

    #[test]
    fn error_replies_keep_their_kind() {
        let (reply, _) = first_reply(b"-NOSCRIPT No matching script\r\n")
            .unwrap()
            .unwrap();
        let err = reply.extract_error().unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::Server(redis::ServerErrorKind::NoScript)
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_wait() {
        for garbage in [
            &b"?what\r\n"[..],
            b"\r\n",
            b":12a\r\n",
            b"$-2\r\n",
            b"$2\r\nabc\r\n",
            b"+\xff\r\n",
        ] {
            let err = first_reply(garbage).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Parse, "{garbage:?}");
        }
        let deep = [b"*1\r\n".repeat(MAX_DEPTH + 1), b":1\r\n".to_vec()].concat();
        assert_eq!(first_reply(&deep).unwrap_err().kind(), ErrorKind::Parse);
    }
}
