//! A TCP fault proxy for tests: it sits between a client and a `redis-server` on loopback and
//! injects network faults on demand (see [`Fault`]). std only: one accept thread, one control
//! thread (for [`Fault::ResetEvery`]) and two pump threads per connection.
//!
//! ```ignore
//! let server = RedisServer::start();
//! let proxy = FaultProxy::start(server.port);
//! // connect the code under test to proxy.url() ...
//! proxy.set_fault(Fault::Blackhole);
//! // ... the network is gone ...
//! proxy.set_fault(Fault::None);
//! ```
//!
//! How connections are cut: with `shutdown(Both)` on the client socket and on the upstream
//! socket, not with `SO_LINGER 0` (an RST). A shutdown sends its FIN *after* the bytes already
//! queued, so a client deterministically reads the forwarded prefix and then EOF (with
//! `SO_LINGER 0` the RST discards the send queue, so whether the prefix arrives would depend on
//! timing); it also wakes the pump threads blocked in `read`/`write` on those sockets, which is
//! how connections and threads end promptly; and std can do it without `unsafe`. A client may
//! still get `ECONNRESET` instead of EOF (the kernel answers with an RST when data arrives on,
//! or is left unread in, a socket that was shut down), so tests accept either as "cut".
//!
//! Dropping a [`FaultProxy`] stops accepting, cuts every connection and joins all its threads.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The fault a [`FaultProxy`] injects. Switchable at any time with [`FaultProxy::set_fault`];
/// it applies at once to existing and new connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Fault {
    /// A healthy network: everything is forwarded as is.
    #[default]
    None,
    /// A lost network (a partition, a dead switch, packets dropped by a firewall): connections
    /// stay open, new ones are accepted, but nothing is forwarded either way. Bytes read
    /// meanwhile are dropped, not delayed; healing (`Fault::None`) forwards new bytes only.
    Blackhole,
    /// A slow link or an overloaded server: server→client bytes are forwarded one at a time with
    /// this delay between bytes (a reply of `n` bytes takes at least `(n - 1) * delay`).
    /// Client→server bytes are unchanged.
    SlowReplies(Duration),
    /// A reply lost mid-way (a server or a middlebox dying while answering): of every
    /// server→client chunk, only the first half (at least 1 byte) is forwarded, then that
    /// connection is cut both ways. Applies to every chunk while the mode is set.
    CutMidReply,
    /// A flaky load balancer or NAT that drops idle and busy connections alike: every such
    /// period (counted from `set_fault`), all current connections are cut. New connections work
    /// normally until the next cut.
    ResetEvery(Duration),
}

/// See the module documentation.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept_thread: Option<JoinHandle<()>>,
    control_thread: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy to `127.0.0.1:upstream_port` on a free loopback port, forwarding
    /// everything (`Fault::None`).
    pub fn start(upstream_port: u16) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            upstream: SocketAddr::from(([127, 0, 0, 1], upstream_port)),
            state: Mutex::new(State {
                fault: Fault::None,
                fault_since: Instant::now(),
                epoch: 0,
                stop: false,
            }),
            changed: Condvar::new(),
            conns: Mutex::new(HashMap::new()),
            pumps: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(0),
        });
        let accept_thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("proxy-accept".into())
                .spawn(move || accept_loop(listener, shared))
                .unwrap()
        };
        let control_thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("proxy-control".into())
                .spawn(move || control_loop(shared))
                .unwrap()
        };
        FaultProxy {
            addr,
            shared,
            accept_thread: Some(accept_thread),
            control_thread: Some(control_thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `redis://127.0.0.1:PORT`, for the code under test.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port())
    }

    /// Switches the fault mode, for existing and new connections alike.
    pub fn set_fault(&self, fault: Fault) {
        let mut state = self.shared.state();
        state.fault = fault;
        state.fault_since = Instant::now();
        state.epoch += 1;
        drop(state);
        self.shared.changed.notify_all();
    }

    /// The current fault mode.
    pub fn fault(&self) -> Fault {
        self.shared.fault()
    }

    /// The client connections open right now (a cut connection no longer counts).
    pub fn connections(&self) -> usize {
        self.shared.conns.lock().unwrap().len()
    }

    /// Loses everything, both ways, on the one connection whose proxy-to-server side has the
    /// local port `port` (as the server lists it in CLIENT LIST: a replica's link, say), from
    /// now on, whatever the fault mode; the connection stays open. False when there is none.
    pub fn blackhole_link_from(&self, port: u16) -> bool {
        let conns = self.shared.conns.lock().unwrap();
        let found = conns
            .values()
            .find(|c| c.upstream.local_addr().is_ok_and(|a| a.port() == port));
        if let Some(conn) = found {
            conn.blackholed.store(true, Ordering::SeqCst);
        }
        found.is_some()
    }

    /// Cuts every open connection now (new connections are accepted as usual).
    pub fn reset_all(&self) {
        self.shared.reset_all();
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        {
            let mut state = self.shared.state();
            state.stop = true;
            state.epoch += 1;
        }
        self.shared.changed.notify_all();
        // After `stop` no connection is registered any more (see `accept_loop`), so this cuts
        // them all, which ends their pump threads.
        self.shared.reset_all();
        // Wake the accept thread blocked in `accept`; it sees `stop` and drops the listener.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        for thread in [self.accept_thread.take(), self.control_thread.take()]
            .into_iter()
            .flatten()
        {
            let _ = thread.join();
        }
        let pumps = std::mem::take(&mut *self.shared.pumps.lock().unwrap());
        for pump in pumps {
            let _ = pump.join();
        }
    }
}

struct Shared {
    upstream: SocketAddr,
    state: Mutex<State>,
    /// Notified whenever `state` changes (fault, stop) or a connection is cut, so that sleepers
    /// (slow replies, the reset timer) re-check at once.
    changed: Condvar,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    pumps: Mutex<Vec<JoinHandle<()>>>,
    next_id: AtomicU64,
}

struct State {
    fault: Fault,
    fault_since: Instant,
    /// Bumped on every change, so that a sleeper knows it was woken for a reason.
    epoch: u64,
    stop: bool,
}

struct Conn {
    id: u64,
    client: TcpStream,
    upstream: TcpStream,
    closed: AtomicBool,
    /// Everything on it is lost (`blackhole_link_from`).
    blackholed: AtomicBool,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fault(&self) -> Fault {
        self.state().fault
    }

    fn reset_all(&self) {
        let conns: Vec<Arc<Conn>> = self.conns.lock().unwrap().values().cloned().collect();
        for conn in conns {
            self.close(&conn);
        }
    }

    /// Cuts a connection both ways (see the module documentation); idempotent.
    fn close(&self, conn: &Conn) {
        if conn.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        let _ = conn.client.shutdown(Shutdown::Both);
        let _ = conn.upstream.shutdown(Shutdown::Both);
        self.conns.lock().unwrap().remove(&conn.id);
        self.state().epoch += 1;
        self.changed.notify_all();
    }

    /// Sleeps until `deadline`; returns false early if anything changed meanwhile (the fault,
    /// a connection cut, the proxy stopping), so that the caller re-checks.
    fn sleep_until(&self, deadline: Instant) -> bool {
        let mut state = self.state();
        let epoch = state.epoch;
        loop {
            if state.stop || state.epoch != epoch {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            state = self
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for client in listener.incoming() {
        if shared.state().stop {
            return;
        }
        let client = match client {
            Ok(client) => client,
            Err(_) => {
                // e.g. out of file descriptors: do not spin
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        // Upstream down (killed, restarting): close the client at once, as a refused
        // connection would (the client sees EOF).
        let Ok(upstream) = TcpStream::connect_timeout(&shared.upstream, Duration::from_secs(2))
        else {
            continue;
        };
        // Byte-at-a-time replies must leave at once, not wait for Nagle.
        let _ = client.set_nodelay(true);
        let _ = upstream.set_nodelay(true);
        let (Ok(client_read), Ok(client_write), Ok(upstream_read), Ok(upstream_write)) = (
            client.try_clone(),
            client.try_clone(),
            upstream.try_clone(),
            upstream.try_clone(),
        ) else {
            continue;
        };
        let conn = Arc::new(Conn {
            id: shared.next_id.fetch_add(1, Ordering::Relaxed),
            client,
            upstream,
            closed: AtomicBool::new(false),
            blackholed: AtomicBool::new(false),
        });
        {
            // Register under the `conns` lock, checking `stop` with it held: `Drop` sets `stop`
            // before cutting all registered connections, so none can slip through.
            let mut conns = shared.conns.lock().unwrap();
            if shared.state().stop {
                return;
            }
            conns.insert(conn.id, conn.clone());
        }
        let mut pumps = shared.pumps.lock().unwrap();
        pumps.retain(|pump| !pump.is_finished()); // a long-lived proxy must not pile them up
        for (direction, from, to) in [
            (Direction::ToServer, client_read, upstream_write),
            (Direction::ToClient, upstream_read, client_write),
        ] {
            let (shared, conn) = (shared.clone(), conn.clone());
            let name = format!("proxy-{:?}-{}", direction, conn.id);
            let pump = std::thread::Builder::new()
                .name(name)
                .spawn(move || {
                    pump(&shared, &conn, direction, from, to);
                    shared.close(&conn); // either side gone: cut the whole connection
                })
                .unwrap();
            pumps.push(pump);
        }
    }
}

/// Cuts all connections every period while the fault is `ResetEvery`.
fn control_loop(shared: Arc<Shared>) {
    let mut last_reset: Option<Instant> = None;
    let mut state = shared.state();
    while !state.stop {
        let Fault::ResetEvery(period) = state.fault else {
            state = shared
                .changed
                .wait(state)
                .unwrap_or_else(|e| e.into_inner());
            continue;
        };
        let since = match last_reset {
            Some(at) if at > state.fault_since => at,
            _ => state.fault_since,
        };
        let deadline = since + period;
        let now = Instant::now();
        if now < deadline {
            state = shared
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            continue;
        }
        drop(state);
        shared.reset_all();
        last_reset = Some(Instant::now());
        state = shared.state();
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    ToServer,
    ToClient,
}

/// Forwards `from` to `to` until either side ends or the connection is cut.
fn pump(
    shared: &Shared,
    conn: &Conn,
    direction: Direction,
    mut from: TcpStream,
    mut to: TcpStream,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        if conn.closed.load(Ordering::SeqCst)
            || forward(shared, conn, direction, &buf[..n], &mut to).is_err()
        {
            return;
        }
    }
}

/// Forwards one chunk as the current fault says; the fault is re-read between slow bytes, so
/// switching modes takes effect mid-chunk. Err: stop pumping (write failed, or cut).
fn forward(
    shared: &Shared,
    conn: &Conn,
    direction: Direction,
    chunk: &[u8],
    to: &mut TcpStream,
) -> Result<(), ()> {
    let mut rest = chunk;
    let mut next_byte_at: Option<Instant> = None;
    while !rest.is_empty() {
        if conn.closed.load(Ordering::SeqCst) {
            return Err(());
        }
        if conn.blackholed.load(Ordering::SeqCst) {
            return Ok(()); // lost
        }
        match (shared.fault(), direction) {
            (Fault::Blackhole, _) => return Ok(()), // lost
            (Fault::SlowReplies(delay), Direction::ToClient) => {
                if let Some(at) = next_byte_at {
                    if !shared.sleep_until(at) {
                        if shared.state().stop {
                            return Err(());
                        }
                        continue; // something changed: re-check the fault
                    }
                }
                to.write_all(&rest[..1]).map_err(drop)?;
                rest = &rest[1..];
                next_byte_at = Some(Instant::now() + delay);
            }
            (Fault::CutMidReply, Direction::ToClient) => {
                let keep = (rest.len() / 2).max(1);
                let _ = to.write_all(&rest[..keep]);
                shared.close(conn);
                return Err(());
            }
            _ => {
                to.write_all(rest).map_err(drop)?;
                return Ok(());
            }
        }
    }
    Ok(())
}
