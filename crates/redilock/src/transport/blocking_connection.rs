//! One blocking Redis connection for the calling-thread path: a command is written and its reply read
//! by the calling thread, the whole exchange bounded by one deadline (a reply dribbled a byte
//! at a time does not stretch it). Unlike a plain blocking socket it survives signals: the Go
//! runtime, Ruby and many C programs interrupt threads with signals, and a socket read with a
//! timeout is never restarted by the kernel (`EINTR`), so reads and writes are retried here
//! until they are done or the time is up.

use redis::{ConnectionAddr, ConnectionInfo, ConnectionLike, Parser, RedisResult, Value};
use std::io::{self, Read, Write};
use std::mem::MaybeUninit;
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub(crate) struct BlockingConnection {
    socket: Socket,
    parser: Parser,
    db: i64,
    command_timeout: Duration,
    /// When the exchange under way must be over; `None`: one command timeout per command.
    deadline: Option<Instant>,
}

/// The stream and the read and write timeouts last set on it. They are lowered only when a
/// deadline comes noticeably sooner, so a quick exchange costs no extra system call.
struct Socket {
    stream: Stream,
    io_timeout: Duration,
}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// How far past its deadline a blocked socket call may run before the timeout is lowered for
/// it: lowering costs a system call, and a command usually fits in one read.
const DEADLINE_SLACK: Duration = Duration::from_millis(5);

impl BlockingConnection {
    /// Connects, authenticates and selects the database as `info` says, all before
    /// `deadline`.
    pub(crate) fn connect(
        info: &ConnectionInfo,
        deadline: Instant,
        command_timeout: Duration,
    ) -> RedisResult<BlockingConnection> {
        let stream = match info.addr() {
            ConnectionAddr::Tcp(host, port) => Stream::Tcp(connect_tcp(host, *port, deadline)?),
            ConnectionAddr::Unix(path) => Stream::Unix(UnixStream::connect(path)?),
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!("unsupported address {other}"),
                )
                .into())
            }
        };
        let io_timeout = time_left(deadline)?;
        stream.set_timeouts(io_timeout)?;
        let settings = info.redis_settings();
        let mut conn = BlockingConnection {
            socket: Socket { stream, io_timeout },
            parser: Parser::new(),
            db: settings.db(),
            command_timeout,
            deadline: Some(deadline), // the handshake is part of connecting
        };
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
        conn.deadline = None;
        Ok(conn)
    }

    /// Bounds every command sent until the next call by `deadline`.
    pub(crate) fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
    }

    /// Whether the connection still looks usable: nothing is waiting to be read on it. An
    /// idle connection whose server went away has its end of stream (or a reset) waiting;
    /// finding that before sending tells a dead connection from a lost reply.
    pub(crate) fn is_idle_and_open(&self) -> bool {
        let mut byte = [MaybeUninit::<u8>::uninit()];
        let flags = libc::MSG_PEEK | libc::MSG_DONTWAIT;
        let peeked = match &self.socket.stream {
            Stream::Tcp(s) => socket2::SockRef::from(s).recv_with_flags(&mut byte, flags),
            Stream::Unix(s) => socket2::SockRef::from(s).recv_with_flags(&mut byte, flags),
        };
        matches!(peeked, Err(err) if err.kind() == io::ErrorKind::WouldBlock)
    }
}

impl Socket {
    /// Lowers the timeouts to what is left of `deadline`, when that is noticeably less.
    fn bound(&mut self, deadline: Instant) -> io::Result<()> {
        let left = time_left(deadline)?;
        if left + DEADLINE_SLACK < self.io_timeout {
            self.set_timeouts(left)?;
        }
        Ok(())
    }

    fn set_timeouts(&mut self, timeout: Duration) -> io::Result<()> {
        self.stream.set_timeouts(timeout)?;
        self.io_timeout = timeout;
        Ok(())
    }

    fn write_all_before(&mut self, mut bytes: &[u8], deadline: Instant) -> io::Result<()> {
        while !bytes.is_empty() {
            self.bound(deadline)?;
            match self.stream.write(bytes) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => bytes = &bytes[written..],
                Err(err) => self.retry_or_fail(err, deadline)?,
            }
        }
        Ok(())
    }

    /// An interrupted or timed-out socket call is retried while time is left: a signal cut it
    /// short, or a timeout set for an earlier, shorter deadline ran out.
    fn retry_or_fail(&mut self, err: io::Error, deadline: Instant) -> io::Result<()> {
        match err.kind() {
            io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                self.set_timeouts(time_left(deadline)?)
            }
            _ => Err(err),
        }
    }
}

/// What is left before `deadline`; a timeout error once it has passed.
fn time_left(deadline: Instant) -> io::Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(timed_out());
    }
    Ok(left)
}

fn connect_tcp(host: &str, port: u16, deadline: Instant) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{host} has no address"));
    for addr in resolve(host, port, deadline)? {
        match TcpStream::connect_timeout(&addr, time_left(deadline)?) {
            Ok(stream) => {
                stream.set_nodelay(true)?;
                return Ok(stream);
            }
            Err(err) => last = err,
        }
    }
    Err(last)
}

/// The addresses of `host`. A name is looked up on a thread of its own, since the system's
/// resolver takes no timeout: a slow DNS server must not hold the call past its deadline.
fn resolve(host: &str, port: u16, deadline: Instant) -> io::Result<Vec<SocketAddr>> {
    if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let (found, lookup) = mpsc::channel();
    let name = host.to_string();
    std::thread::Builder::new()
        .name("redilock-resolve".into())
        .spawn(move || {
            let _ = found.send((name.as_str(), port).to_socket_addrs().map(Vec::from_iter));
        })?;
    lookup.recv_timeout(time_left(deadline)?).map_err(|_| {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no address for {host} in time"),
        )
    })?
}

pub(crate) fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "no reply in time")
}

/// The socket as the reply parser reads it: every read ends by the deadline.
struct BoundedReader<'a> {
    socket: &'a mut Socket,
    deadline: Instant,
}

impl Read for BoundedReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            self.socket.bound(self.deadline)?;
            match self.socket.stream.read(buf) {
                Err(err) => self.socket.retry_or_fail(err, self.deadline)?,
                result => return result,
            }
        }
    }
}

impl ConnectionLike for BlockingConnection {
    fn req_packed_command(&mut self, cmd: &[u8]) -> RedisResult<Value> {
        Ok(self.req_packed_commands(cmd, 0, 1)?.remove(0))
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        let deadline = match self.deadline {
            Some(deadline) => deadline,
            None => {
                // A fresh command timeout: raise the timeouts an earlier deadline lowered.
                if self.socket.io_timeout < self.command_timeout {
                    self.socket.set_timeouts(self.command_timeout)?;
                }
                Instant::now() + self.command_timeout
            }
        };
        self.socket.write_all_before(cmd, deadline)?;
        // Every reply is read, error replies included (they stay in their place, for the
        // command or the pipeline to report), so that the connection stays in step.
        let mut replies = Vec::with_capacity(count);
        for index in 0..offset + count {
            let mut reader = BoundedReader {
                socket: &mut self.socket,
                deadline,
            };
            let value = self.parser.parse_value(&mut reader)?;
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
        match self {
            Stream::Tcp(s) => {
                s.set_read_timeout(Some(timeout))?;
                s.set_write_timeout(Some(timeout))
            }
            Stream::Unix(s) => {
                s.set_read_timeout(Some(timeout))?;
                s.set_write_timeout(Some(timeout))
            }
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
