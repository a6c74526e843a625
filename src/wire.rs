//! One blocking Redis connection for the direct path: a command is written and its reply read
//! by the calling thread, bounded by the command timeout. Unlike a plain blocking socket it
//! survives signals: the Go runtime, Ruby and many C programs interrupt threads with signals,
//! and a socket read with a timeout is never restarted by the kernel (`EINTR`), so reads are
//! retried here until the reply arrives or the time is up.

use redis::{ConnectionAddr, ConnectionInfo, ConnectionLike, Parser, RedisResult, Value};
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

pub(crate) struct WireConnection {
    stream: Stream,
    parser: Parser,
    db: i64,
    command_timeout: Duration,
    /// Set when an interrupted read shortened the socket's read timeout.
    read_timeout_shortened: bool,
}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl WireConnection {
    /// Connects within `connect_timeout`, then authenticates and selects the database as
    /// `info` says.
    pub(crate) fn connect(
        info: &ConnectionInfo,
        connect_timeout: Duration,
        command_timeout: Duration,
    ) -> RedisResult<WireConnection> {
        let stream = match info.addr() {
            ConnectionAddr::Tcp(host, port) => {
                Stream::Tcp(connect_tcp(host, *port, connect_timeout)?)
            }
            ConnectionAddr::Unix(path) => Stream::Unix(UnixStream::connect(path)?),
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!("unsupported address {other}"),
                )
                .into())
            }
        };
        let settings = info.redis_settings();
        let mut conn = WireConnection {
            stream,
            parser: Parser::new(),
            db: settings.db(),
            command_timeout: connect_timeout, // the handshake is part of connecting
            read_timeout_shortened: false,
        };
        conn.stream.set_timeouts(connect_timeout)?;
        if let Some(password) = settings.password() {
            let mut auth = redis::cmd("AUTH");
            if let Some(user) = settings.username() {
                auth.arg(user);
            }
            auth.arg(password).exec(&mut conn)?;
        }
        if conn.db != 0 {
            redis::cmd("SELECT").arg(conn.db).exec(&mut conn)?;
        }
        conn.command_timeout = command_timeout;
        conn.stream.set_timeouts(command_timeout)?;
        Ok(conn)
    }

    fn read_value(&mut self, deadline: Instant) -> RedisResult<Value> {
        let mut socket = Retrying {
            stream: &mut self.stream,
            read_timeout_shortened: &mut self.read_timeout_shortened,
            deadline,
        };
        self.parser.parse_value(&mut socket)?.extract_error()
    }
}

fn connect_tcp(host: &str, port: u16, timeout: Duration) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{host} has no address"));
    for addr in (host, port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => {
                stream.set_nodelay(true)?;
                return Ok(stream);
            }
            Err(err) => last = err,
        }
    }
    Err(last)
}

/// The socket read by the parser: interrupted reads are retried with the time left.
struct Retrying<'a> {
    stream: &'a mut Stream,
    read_timeout_shortened: &'a mut bool,
    deadline: Instant,
}

impl Read for Retrying<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.stream.read(buf) {
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {
                    let left = self.deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(timed_out());
                    }
                    self.stream.set_read_timeout(left)?;
                    *self.read_timeout_shortened = true;
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Err(timed_out()),
                result => return result,
            }
        }
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "no reply in time")
}

impl ConnectionLike for WireConnection {
    fn req_packed_command(&mut self, cmd: &[u8]) -> RedisResult<Value> {
        Ok(self.req_packed_commands(cmd, 0, 1)?.remove(0))
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        let deadline = Instant::now() + self.command_timeout;
        if std::mem::take(&mut self.read_timeout_shortened) {
            self.stream.set_read_timeout(self.command_timeout)?;
        }
        // write_all retries interrupted writes; a full send buffer times out.
        self.stream.write_all(cmd).map_err(|err| match err.kind() {
            io::ErrorKind::WouldBlock => timed_out(),
            _ => err,
        })?;
        let mut replies = Vec::with_capacity(count);
        for index in 0..offset + count {
            let value = self.read_value(deadline)?;
            if index >= offset {
                replies.push(value);
            }
        }
        Ok(replies)
    }

    fn get_db(&self) -> i64 {
        self.db
    }

    fn check_connection(&mut self) -> bool {
        redis::cmd("PING").exec(self).is_ok()
    }

    fn is_open(&self) -> bool {
        true
    }
}

impl Stream {
    fn set_timeouts(&self, timeout: Duration) -> io::Result<()> {
        self.set_read_timeout(timeout)?;
        match self {
            Stream::Tcp(s) => s.set_write_timeout(Some(timeout)),
            Stream::Unix(s) => s.set_write_timeout(Some(timeout)),
        }
    }

    fn set_read_timeout(&self, timeout: Duration) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_read_timeout(Some(timeout)),
            Stream::Unix(s) => s.set_read_timeout(Some(timeout)),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
