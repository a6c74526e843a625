//! One blocking Redis connection for the calling-thread path: a command is written and its reply read
//! by the calling thread, the whole exchange bounded by one deadline (a reply dribbled a byte
//! at a time does not stretch it). Unlike a plain blocking socket it survives signals: the Go
//! runtime, Ruby and many C programs interrupt threads with signals, and a socket read with a
//! timeout is never restarted by the kernel (`EINTR`), so reads and writes are retried here
//! until they are done or the time is up. A `rediss://` connection runs the same way over
//! rustls.

use super::replies::first_reply;
use crate::deployment::Server;
use crate::error::Result;
use crate::tls;
use redis::{ConnectionAddr, ConnectionLike, RedisConnectionInfo, RedisResult, Value};
use rustls::{ClientConnection, StreamOwned};
use std::io::{self, Read, Write};
use std::mem::MaybeUninit;
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub(crate) struct BlockingConnection {
    socket: Socket,
    received: Received,
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
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
    Unix(UnixStream),
}

/// The bytes received and not read as replies yet: the buffer is kept from one reply to the
/// next, so a read costs no allocation.
#[derive(Default)]
struct Received {
    buffer: Vec<u8>,
    /// Where the unread bytes start and end.
    start: usize,
    end: usize,
}

/// What a read asks for at least: a lock call's replies fit many times over.
const READ_SIZE: usize = 4096;

impl Received {
    /// The first whole reply among the unread bytes, taken out of them.
    fn take_reply(&mut self) -> RedisResult<Option<Value>> {
        let Some((reply, used)) = first_reply(&self.buffer[self.start..self.end])? else {
            return Ok(None);
        };
        self.start += used;
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        }
        Ok(Some(reply))
    }

    fn has_unread(&self) -> bool {
        self.start < self.end
    }

    /// Room for at least [`READ_SIZE`] bytes after the unread ones.
    fn room(&mut self) -> &mut [u8] {
        if self.buffer.len() - self.end < READ_SIZE {
            self.buffer.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end - self.start);
            if self.buffer.len() - self.end < READ_SIZE {
                self.buffer.resize(self.end + READ_SIZE, 0);
            }
        }
        &mut self.buffer[self.end..]
    }
}

/// How far past its deadline a blocked socket call may run before the timeout is lowered for
/// it: lowering costs a system call, and a command usually fits in one read.
const DEADLINE_SLACK: Duration = Duration::from_millis(5);

impl BlockingConnection {
    /// Connects to `server`, completes the TLS handshake of a `rediss://` one,
    /// authenticates and selects the database, all before `deadline`.
    pub(crate) fn connect(
        server: &Server,
        deadline: Instant,
        command_timeout: Duration,
    ) -> Result<BlockingConnection> {
        let info = server.info();
        let failed = |err: io::Error| server.connect_error(&err.into());
        let stream = match (info.addr(), server.tls()) {
            (ConnectionAddr::Tcp(host, port), _) => {
                Stream::Tcp(connect_tcp(host, *port, deadline).map_err(failed)?)
            }
            (ConnectionAddr::TcpTls { host, port, .. }, Some(tls)) => {
                let tcp = connect_tcp(host, *port, deadline).map_err(failed)?;
                Stream::Tls(Box::new(StreamOwned::new(tls.session()?, tcp)))
            }
            (ConnectionAddr::Unix(path), _) => {
                Stream::Unix(UnixStream::connect(path).map_err(failed)?)
            }
            (other, _) => {
                let unsupported = format!("unsupported address {other}");
                return Err(failed(io::Error::new(
                    io::ErrorKind::Unsupported,
                    unsupported,
                )));
            }
        };
        let io_timeout = time_left(deadline).map_err(failed)?;
        stream.set_timeouts(io_timeout).map_err(failed)?;
        let settings = info.redis_settings();
        let mut conn = BlockingConnection {
            socket: Socket { stream, io_timeout },
            received: Received::default(),
            db: settings.db(),
            command_timeout,
            deadline: Some(deadline), // the handshake is part of connecting
        };
        conn.socket
            .finish_handshake(deadline)
            .map_err(|err| tls::handshake_failed(server.address(), &err))?;
        conn.set_up(settings)
            .map_err(|err| server.connect_error(&err))?;
        conn.deadline = None;
        Ok(conn)
    }

    /// Authenticates and selects the database.
    fn set_up(&mut self, settings: &RedisConnectionInfo) -> RedisResult<()> {
        if let Some(password) = settings.password() {
            let mut auth = redis::cmd("AUTH");
            if let Some(user) = settings.username() {
                auth.arg(user);
            }
            auth.arg(password).exec(self)?;
        }
        if self.db != 0 {
            redis::cmd("SELECT").arg(self.db).exec(self)?;
        }
        if matches!(self.socket.stream, Stream::Tls(_)) {
            // A TLS 1.3 server judges the client's certificate after the client has finished
            // its half of the handshake: one exchange makes its verdict part of connecting.
            redis::cmd("PING").exec(self)?;
        }
        Ok(())
    }

    /// The next reply, read by `deadline`.
    fn read_reply(&mut self, deadline: Instant) -> RedisResult<Value> {
        loop {
            if let Some(reply) = self.received.take_reply()? {
                return Ok(reply);
            }
            let room = self.received.room();
            match self.socket.before(deadline, |stream| stream.read(room))? {
                0 => return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into()),
                read => self.received.end += read,
            }
        }
    }

    /// Bounds every command sent until the next call by `deadline`.
    pub(crate) fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
    }

    /// Whether the connection still looks usable: nothing is waiting to be read on it. An
    /// idle connection whose server went away has its end of stream (or a reset) waiting;
    /// finding that before sending tells a dead connection from a lost reply.
    pub(crate) fn is_idle_and_open(&mut self) -> bool {
        if self.received.has_unread() {
            return false; // bytes nobody asked for
        }
        let stream = &mut self.socket.stream;
        loop {
            match (stream.peek(), &mut *stream) {
                (Err(err), _) if err.kind() == io::ErrorKind::WouldBlock => return true,
                // A TLS server sends records of its own between replies (TLS 1.3 session
                // tickets, key updates): taken in, they leave the connection as it was. They
                // are waiting, so reading them does not block.
                (Ok(1..), Stream::Tls(tls)) => {
                    let taken_in = tls.conn.read_tls(&mut tls.sock).is_ok_and(|n| n > 0)
                        && tls.conn.process_new_packets().is_ok_and(|state| {
                            state.plaintext_bytes_to_read() == 0 && !state.peer_has_closed()
                        });
                    if !taken_in {
                        return false; // a close_notify, an alert, or data nobody asked for
                    }
                }
                _ => return false, // its end of stream, a reset, or bytes nobody asked for
            }
        }
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

    /// Runs one socket call until it succeeds or `deadline` passes.
    fn before<T>(
        &mut self,
        deadline: Instant,
        mut call: impl FnMut(&mut Stream) -> io::Result<T>,
    ) -> io::Result<T> {
        loop {
            self.bound(deadline)?;
            match call(&mut self.stream) {
                Ok(done) => return Ok(done),
                Err(err) => self.retry_or_fail(err, deadline)?,
            }
        }
    }

    fn write_all_before(&mut self, mut bytes: &[u8], deadline: Instant) -> io::Result<()> {
        while !bytes.is_empty() {
            match self.before(deadline, |stream| stream.write(bytes))? {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                written => bytes = &bytes[written..],
            }
        }
        self.before(deadline, Stream::flush) // what TLS still holds goes out
    }

    /// Completes the TLS handshake of a `rediss://` connection before `deadline`.
    fn finish_handshake(&mut self, deadline: Instant) -> io::Result<()> {
        let step = |stream: &mut Stream| match stream {
            Stream::Tls(tls) if tls.conn.is_handshaking() => {
                tls.conn.complete_io(&mut tls.sock).map(|_| true)
            }
            _ => Ok(false),
        };
        while self.before(deadline, step)? {}
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
            let value = self.read_reply(deadline)?;
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
    fn socket(&self) -> socket2::SockRef<'_> {
        match self {
            Stream::Tcp(s) => socket2::SockRef::from(s),
            Stream::Tls(tls) => socket2::SockRef::from(&tls.sock),
            Stream::Unix(s) => socket2::SockRef::from(s),
        }
    }

    fn set_timeouts(&self, timeout: Duration) -> io::Result<()> {
        let socket = self.socket();
        socket.set_read_timeout(Some(timeout))?;
        socket.set_write_timeout(Some(timeout))
    }

    /// How many bytes wait to be read (one at most is looked at), without reading them or
    /// waiting: `Ok(0)` is the end of the stream.
    fn peek(&self) -> io::Result<usize> {
        let mut byte = [MaybeUninit::<u8>::uninit()];
        let flags = libc::MSG_PEEK | libc::MSG_DONTWAIT;
        self.socket().recv_with_flags(&mut byte, flags)
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Tls(tls) => tls.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

/// A write to TLS hands the bytes to rustls and fails only before taking them, so a retried
/// write never sends them twice; `flush` sends what rustls still holds.
impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Tls(tls) => tls.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tls(tls) => tls.flush(),
            Stream::Tcp(_) | Stream::Unix(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Options;
    use redilock_test_harness::tls::TestCertificates;
    use redilock_test_harness::wait_until;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use rustls::ServerConnection;
    use std::net::TcpListener;
    use std::sync::Arc;

    /// What the test server does next, after it answered the connection's PING.
    enum Step {
        /// Sends a TLS 1.3 key update: a record with no data in it.
        UpdateKeys,
        /// Reads one request and answers it.
        Answer(&'static [u8]),
        /// Sends data no request asked for.
        Say(&'static [u8]),
        CloseNotify,
    }

    /// A TLS server for one connection, on a free loopback port, that does as it is told.
    fn tls_server(certificates: &TestCertificates) -> (u16, mpsc::Sender<Step>) {
        let chain = CertificateDer::pem_file_iter(certificates.server_cert())
            .unwrap()
            .collect::<std::result::Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(certificates.server_key()).unwrap();
        #[allow(deprecated)] // ring, as the library's client uses
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (steps, to_do) = mpsc::channel();
        std::thread::spawn(move || {
            let (socket, _) = listener.accept().unwrap();
            let session = ServerConnection::new(Arc::new(config)).unwrap();
            let mut tls = StreamOwned::new(session, socket);
            let answer = |tls: &mut StreamOwned<ServerConnection, TcpStream>, reply| {
                let mut request = [0; 64];
                let _ = tls.read(&mut request).unwrap();
                tls.write_all(reply).unwrap();
                tls.flush().unwrap();
            };
            answer(&mut tls, b"+PONG\r\n");
            for step in to_do {
                match step {
                    Step::UpdateKeys => tls.conn.refresh_traffic_keys().unwrap(),
                    Step::Answer(reply) => answer(&mut tls, reply),
                    Step::Say(data) => tls.write_all(data).unwrap(),
                    Step::CloseNotify => tls.conn.send_close_notify(),
                }
                tls.flush().unwrap();
            }
        });
        (port, steps)
    }

    fn connect(port: u16, certificates: &TestCertificates) -> BlockingConnection {
        let options = Options {
            tls_ca_file: Some(certificates.ca()),
            ..Options::default()
        };
        let url = format!("rediss://127.0.0.1:{port}");
        let server = Server::from_url(&url, &options).unwrap();
        let timeout = Duration::from_secs(5);
        BlockingConnection::connect(&server, Instant::now() + timeout, timeout).unwrap()
    }

    fn wait_for_bytes(conn: &BlockingConnection) {
        wait_until("the server's bytes arrive", || {
            conn.socket.stream.peek().is_ok_and(|n| n > 0)
        });
    }

    #[test]
    fn records_without_data_keep_an_idle_tls_connection_and_a_close_notify_ends_it() {
        let certificates = TestCertificates::generate();
        let (port, server) = tls_server(&certificates);
        let mut conn = connect(port, &certificates);
        assert!(conn.is_idle_and_open());
        server.send(Step::UpdateKeys).unwrap();
        wait_for_bytes(&conn);
        assert!(conn.is_idle_and_open(), "a key update is no sign of death");
        server.send(Step::Answer(b"+PONG\r\n")).unwrap();
        redis::cmd("PING").exec(&mut conn).unwrap(); // on the new keys
        server.send(Step::CloseNotify).unwrap();
        wait_for_bytes(&conn);
        assert!(!conn.is_idle_and_open());
    }

    #[test]
    fn data_nobody_asked_for_makes_a_tls_connection_unusable() {
        let certificates = TestCertificates::generate();
        let (port, server) = tls_server(&certificates);
        let mut conn = connect(port, &certificates);
        server.send(Step::Say(b"+OK\r\n")).unwrap();
        wait_for_bytes(&conn);
        assert!(!conn.is_idle_and_open());
    }
}
