//! The door of every gRPC server: which TCP connections are let in, and how
//! long one may stay without doing anything.
//!
//! - At most `max_connections` connections at once, and `max_per_client`
//!   from one address; a connection over either cap is closed as soon as it
//!   is accepted, so it costs one accept and one close.
//! - A connection must start its first gRPC call within `first_call` of
//!   being accepted (this covers a slow TLS handshake, a missing HTTP/2
//!   preface and a client that connects and waits), and is closed once it
//!   has had no call open for `idle`. HTTP/2 pings do not count as calls:
//!   an idle client that answers pings is still idle.
//!
//! Calls are counted by [`super::auth::Guard`], which sees every request and
//! its response body; it reaches a connection's [`Activity`] through the
//! [`Peer`] that tonic hands it as the connection's info.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};
use tokio_stream::Stream;
use tonic::transport::server::Connected;

use super::untrusted::LogBudget;

/// Connection limits and timeouts of one server.
#[derive(Debug, Clone)]
pub struct GateConfig {
    pub max_connections: usize,
    /// Connections from one IP address (a NAT or an ingress counts once).
    pub max_per_client: usize,
    /// From accept to the first call.
    pub first_call: Duration,
    /// With no call open.
    pub idle: Duration,
}

impl Default for GateConfig {
    fn default() -> Self {
        Self {
            max_connections: default_max_connections(),
            max_per_client: 256,
            first_call: Duration::from_secs(10),
            idle: Duration::from_secs(120),
        }
    }
}

/// Connections this process can hold: three quarters of its file
/// descriptors (the rest are for files, listeners and outgoing links), at
/// most 4,096.
pub fn default_max_connections() -> usize {
    let fds = fd_limit().unwrap_or(1024);
    (fds.saturating_mul(3) / 4).clamp(16, 4096) as usize
}

/// The soft limit on open files.
pub fn fd_limit() -> Option<u64> {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct it is given and nothing else.
    (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } == 0).then_some(r.rlim_cur)
}

/// Raises the soft limit on open files to the hard limit (servers start
/// with 1,024 on many systems, which a few hundred clients exhaust).
pub fn raise_fd_limit() {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: both calls only read or write the struct they are given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

/// Who is connected.
#[derive(Default)]
struct Slots {
    total: usize,
    per_client: HashMap<IpAddr, usize>,
}

/// The connection limits of one server, shared by its accept loop and its
/// connections.
pub struct Gate {
    config: GateConfig,
    /// Taken on accept, given back when the connection is dropped.
    slots: Mutex<Slots>,
}

static REFUSED_LOG: LogBudget = LogBudget::new(5);

impl Gate {
    pub fn new(config: GateConfig) -> Arc<Self> {
        Arc::new(Self { config, slots: Mutex::new(Slots::default()) })
    }

    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let mine = slots.per_client.get(&ip).copied().unwrap_or(0);
        if slots.total >= self.config.max_connections || mine >= self.config.max_per_client {
            drop(slots);
            if let Some(suppressed) = REFUSED_LOG.allow() {
                tracing::warn!(client = %ip, suppressed, "connection refused: over the connection cap");
            }
            return None;
        }
        slots.total += 1;
        *slots.per_client.entry(ip).or_default() += 1;
        Some(Slot { gate: self.clone(), ip })
    }

    /// Accepted connections that passed the caps, for tonic's
    /// `serve_with_incoming`.
    pub fn incoming(self: Arc<Self>, listener: TcpListener) -> AcceptStream {
        AcceptStream { listener, gate: self }
    }
}

/// A connection's place under the caps; dropping it frees the place.
struct Slot {
    gate: Arc<Gate>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut slots = self.gate.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.total = slots.total.saturating_sub(1);
        if let Some(n) = slots.per_client.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                slots.per_client.remove(&self.ip);
            }
        }
    }
}

/// Accepts connections and applies the caps.
pub struct AcceptStream {
    listener: TcpListener,
    gate: Arc<Gate>,
}

impl Stream for AcceptStream {
    type Item = io::Result<GatedConn>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            let (stream, addr) = match this.listener.poll_accept(cx) {
                Poll::Pending => return Poll::Pending,
                // Accept errors (out of file descriptors, say) are tonic's
                // to log and retry; the stream goes on.
                Poll::Ready(Err(e)) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Ok(accepted)) => accepted,
            };
            // Over a cap: dropped here, so closed at once.
            let Some(slot) = this.gate.admit(addr.ip()) else { continue };
            // Small turn messages must not wait for delayed ACKs.
            let _ = stream.set_nodelay(true);
            let deadline = Instant::now() + this.gate.config.first_call;
            return Poll::Ready(Some(Ok(GatedConn {
                io: stream,
                peer: Peer { addr, activity: Arc::new(Activity::new()) },
                config: this.gate.config.clone(),
                timer: Box::pin(tokio::time::sleep_until(deadline)),
                _slot: slot,
            })));
        }
    }
}

/// What a connection is doing: calls open, and since when it has had none.
#[derive(Debug)]
pub struct Activity {
    open: AtomicUsize,
    calls: AtomicU64,
    /// When the last call closed (or the connection opened).
    idle_since: Mutex<Instant>,
}

impl Activity {
    fn new() -> Self {
        Self { open: AtomicUsize::new(0), calls: AtomicU64::new(0), idle_since: Mutex::new(Instant::now()) }
    }

    /// A call starts; it ends when the returned guard is dropped.
    pub fn begin(self: &Arc<Self>) -> CallGuard {
        self.open.fetch_add(1, Ordering::SeqCst);
        self.calls.fetch_add(1, Ordering::Relaxed);
        CallGuard(self.clone())
    }
}

/// One open call on a connection.
pub struct CallGuard(Arc<Activity>);

impl Drop for CallGuard {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::SeqCst) == 1 {
            *self.0.idle_since.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        }
    }
}

/// A connection's info as tonic hands it to every request (see
/// [`Connected`]): the client's address and its activity.
#[derive(Debug, Clone)]
pub struct Peer {
    pub addr: SocketAddr,
    pub activity: Arc<Activity>,
}

/// An accepted TCP connection under the gate's timeouts.
pub struct GatedConn {
    io: TcpStream,
    peer: Peer,
    config: GateConfig,
    /// Fires when the connection has been without a call for too long.
    timer: Pin<Box<Sleep>>,
    _slot: Slot,
}

static TIMEOUT_LOG: LogBudget = LogBudget::new(5);

impl GatedConn {
    /// Err once the connection has had no call open for too long; else
    /// arms the timer for when that would be.
    fn check_idle(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        let a = &self.peer.activity;
        if a.open.load(Ordering::SeqCst) > 0 {
            return Ok(());
        }
        let since = *a.idle_since.lock().unwrap_or_else(|e| e.into_inner());
        let limit = if a.calls.load(Ordering::Relaxed) == 0 { self.config.first_call } else { self.config.idle };
        let deadline = since + limit;
        if Instant::now() >= deadline {
            if let Some(suppressed) = TIMEOUT_LOG.allow() {
                tracing::info!(client = %self.peer.addr, suppressed, "closing a connection without calls for {limit:?}");
            }
            return Err(io::Error::new(io::ErrorKind::TimedOut, "no call on this connection for too long"));
        }
        if self.timer.deadline() != deadline {
            self.timer.as_mut().reset(deadline);
        }
        // Registers the waker: the connection task is woken at the deadline
        // even while the client sends nothing.
        let _ = self.timer.as_mut().poll(cx);
        Ok(())
    }
}

use std::future::Future as _;

impl AsyncRead for GatedConn {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if let Err(e) = self.check_idle(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for GatedConn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

impl Connected for GatedConn {
    type ConnectInfo = Peer;

    fn connect_info(&self) -> Peer {
        self.peer.clone()
    }
}
