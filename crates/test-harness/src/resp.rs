//! A minimal RESP2 client over a server's unix socket, for the harness's own bookkeeping
//! (cluster and Sentinel state, moving keys): binary-safe both ways and without a redis-cli
//! process for each of the many polls.

use std::io::{BufRead, BufReader, Error, ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    Status(String),
    Error(String),
    Integer(i64),
    Bulk(Vec<u8>),
    Nil,
    Array(Vec<Reply>),
}

impl Reply {
    /// The reply itself, or an error for an error reply.
    pub(crate) fn ok(self) -> std::io::Result<Reply> {
        match self {
            Reply::Error(e) => Err(Error::other(e)),
            reply => Ok(reply),
        }
    }

    /// A status or bulk string as text (lossy), "" for anything else.
    pub(crate) fn text(&self) -> String {
        match self {
            Reply::Status(s) | Reply::Error(s) => s.clone(),
            Reply::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
            Reply::Integer(i) => i.to_string(),
            _ => String::new(),
        }
    }

    pub(crate) fn items(&self) -> &[Reply] {
        match self {
            Reply::Array(items) => items,
            _ => &[],
        }
    }

    pub(crate) fn bytes(&self) -> Vec<u8> {
        match self {
            Reply::Bulk(b) => b.clone(),
            other => other.text().into_bytes(),
        }
    }
}

pub(crate) struct Connection {
    reader: BufReader<UnixStream>,
}

impl From<UnixStream> for Connection {
    fn from(stream: UnixStream) -> Connection {
        // Generous: a reply is only waited for from a server that runs and is not paused.
        let patience = crate::scaled(Duration::from_secs(10));
        stream.set_read_timeout(Some(patience)).unwrap();
        stream.set_write_timeout(Some(patience)).unwrap();
        Connection {
            reader: BufReader::new(stream),
        }
    }
}

impl Connection {
    pub(crate) fn open(socket: &Path) -> std::io::Result<Connection> {
        Ok(UnixStream::connect(socket)?.into())
    }

    pub(crate) fn call(&mut self, args: &[&[u8]]) -> std::io::Result<Reply> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            out.extend_from_slice(arg);
            out.extend_from_slice(b"\r\n");
        }
        self.reader.get_mut().write_all(&out)?;
        self.read()
    }

    fn line(&mut self) -> std::io::Result<String> {
        let mut line = Vec::new();
        self.reader.read_until(b'\n', &mut line)?;
        if !line.ends_with(b"\r\n") {
            return Err(Error::new(ErrorKind::UnexpectedEof, "connection closed"));
        }
        line.truncate(line.len() - 2);
        Ok(String::from_utf8_lossy(&line).into_owned())
    }

    fn read(&mut self) -> std::io::Result<Reply> {
        let line = self.line()?;
        let bad = || Error::new(ErrorKind::InvalidData, format!("bad reply line {line:?}"));
        let (kind, rest) = line.split_at_checked(1).ok_or_else(bad)?;
        let number = || rest.parse::<i64>().map_err(|_| bad());
        Ok(match kind {
            "+" => Reply::Status(rest.to_string()),
            "-" => Reply::Error(rest.to_string()),
            ":" => Reply::Integer(number()?),
            "$" => match number()? {
                -1 => Reply::Nil,
                len => {
                    let mut data = vec![0; len as usize + 2];
                    self.reader.read_exact(&mut data)?;
                    data.truncate(len as usize);
                    Reply::Bulk(data)
                }
            },
            "*" => match number()? {
                -1 => Reply::Nil,
                len => Reply::Array((0..len).map(|_| self.read()).collect::<Result<_, _>>()?),
            },
            _ => return Err(bad()),
        })
    }
}
