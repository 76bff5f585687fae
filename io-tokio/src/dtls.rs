//! DTLS 1.2 over tokio UDP sockets: [`connect_dtls`] (client) and [`DtlsListener`] (server).
//!
//! # Design
//!
//! Every socket has one background task, the *driver*, that owns the socket's receive side and
//! the table of sessions on it (one for a client, up to [`DtlsListenerOptions::max_sessions`] for
//! a listener). The driver feeds each received datagram to its session (or, for an unknown peer,
//! to the stateless [`CookieListener`] first), runs the retransmission timers with
//! [`tokio::time::sleep_until`] and [`Session::handle_timeout`], answers retransmitted flights,
//! and removes sessions that failed, closed, timed out or whose handle was dropped.
//!
//! A [`DtlsConnection`] is a handle on one session, shared with the driver behind a mutex that is
//! never held across an `.await`: [`DtlsConnection::send`] seals a record and writes the datagram
//! itself; [`DtlsConnection::recv`] takes what the driver queued. All methods take `&self`, so
//! one task may send while another receives. Timers keep running whether or not the application
//! calls anything.
//!
//! A client that comes back from the address of an existing session (a rebooted device reusing
//! its port) is served per RFC 6347 4.2.8: a ClientHello at epoch 0 whose client random differs
//! from the one that opened the session (or any, once the session ended) goes through the
//! cookie exchange, the existing session untouched; only a valid cookie, proof that the client
//! is reachable at that address, replaces the session (its handle reports `ConnectionReset`,
//! [`ListenerStats::reconnects`] counts it). A ClientHello retransmitted or duplicated (same
//! random) still goes to the session.
//!
//! Deferred decisions (a resolver's `Defer` for a key, a verifier's `Defer` for a certificate)
//! are answered by tasks: [`AsyncPskLookup`], [`AsyncCertVerifier`]
//! ([`DtlsListener::bind_verified`]); a client's certificate decision by the closure given to
//! [`connect_dtls_verified`]. The session is suspended meanwhile; its timers run.
//!
//! Datagram semantics are kept: one `send` is one record in one datagram, one `recv` returns the
//! application data of one datagram. Nothing is retransmitted except handshake flights (the
//! core's job); application data and close_notify may be lost like any UDP datagram.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use m2msec::cert::{CertError, Credential, PeerCertificateInfo};
use m2msec::dtls::{client_hello_random, CookieListener, ListenerDecision, MIN_MTU};
use m2msec::error::ApiMisuse;
use m2msec::session::Stats;
use m2msec::{
    CipherSuite, ClientConfig, Event, Now, Output, Psk, ServerConfig, Session, SessionInfo,
    Transport,
};
use tokio::net::{ToSocketAddrs, UdpSocket};
use tokio::sync::{mpsc, Notify};
use tokio::time::{sleep_until, Instant};

use crate::{os_seed, Error, PskRequest};

/// The receive buffer: the largest UDP payload, so no datagram is ever truncated.
const MAX_DATAGRAM: usize = 64 * 1024;
/// Received datagrams a connection buffers for `recv`; more are dropped, as UDP would.
const MAX_QUEUED: usize = 256;
/// Bytes of application data a connection buffers for `recv` (with `MAX_QUEUED`, the bound on a
/// session's receive queue whatever its peer sends: 16 full-size records); more are dropped.
const MAX_QUEUED_BYTES: usize = 256 * 1024;
/// The largest output buffer we grow to on `BufferTooSmall` (a datagram or a record is far less).
const MAX_OUTPUT_BUF: usize = 1 << 20;

/// `t + d`; a day from `t` if that overflows (options may hold `Duration::MAX`).
fn later(t: Instant, d: Duration) -> Instant {
    t.checked_add(d)
        .or_else(|| t.checked_add(Duration::from_secs(86_400)))
        .unwrap_or(t)
}

/// The future an [`AsyncPskLookup`] returns.
pub type PskLookupFuture = Pin<Box<dyn Future<Output = Option<Psk>> + Send>>;

/// An asynchronous key lookup for a [`DtlsListener`] whose `ServerConfig` resolver answers
/// `Defer` (e.g. `m2msec::config::DeferAll`): called with the client's PSK identity, its SNI
/// host name and its address; `None` means unknown identity. The session waits (its
/// handshake timeout keeps running) while the rest of the socket's peers are served.
pub type AsyncPskLookup =
    Arc<dyn Fn(Vec<u8>, Option<String>, SocketAddr) -> PskLookupFuture + Send + Sync>;

/// Like [`AsyncPskLookup`], given the whole [`PskRequest`] (with the negotiated cipher suite and
/// `peer` set): for keys derived per suite, e.g. GBA's NAF keys
/// ([`DtlsListener::bind_with_request_lookup`]).
pub type AsyncPskRequestLookup = Arc<dyn Fn(PskRequest) -> PskLookupFuture + Send + Sync>;

/// An [`AsyncPskLookup`] as an [`AsyncPskRequestLookup`].
fn request_lookup(lookup: AsyncPskLookup) -> AsyncPskRequestLookup {
    Arc::new(move |r: PskRequest| {
        let peer = r
            .peer
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        lookup(r.identity, r.server_name, peer)
    })
}

/// The future an [`AsyncCertVerifier`] returns: the peer's certificate information if trusted,
/// the reason otherwise (its alert ends the handshake).
pub type CertVerifyFuture =
    Pin<Box<dyn Future<Output = Result<PeerCertificateInfo, CertError>> + Send>>;

/// An asynchronous certificate decision for a [`DtlsListener`] whose `ServerConfig` verifier
/// answers `CertDecision::Defer`: called with the client's credential and address. The session
/// waits (its handshake timeout keeps running, a retransmitted flight starts no second
/// decision) while the rest of the socket's peers are served
/// ([`DtlsListener::bind_verified`]; [`connect_dtls_verified`] for a client).
pub type AsyncCertVerifier = Arc<dyn Fn(Credential, SocketAddr) -> CertVerifyFuture + Send + Sync>;

/// What the error of a session replaced by a new handshake from its address says.
const RECONNECTED: &str =
    "the peer started a new connection from the same address (RFC 6347 4.2.8)";

/// Who answers a deferred certificate decision (`Event::VerifyPeer`) of a session.
#[derive(Clone)]
enum Verify {
    /// Nobody: refused at once (`CertError::Refused`).
    Refuse,
    /// The task in `connect_dtls_verified` (it takes `State::verify_request`).
    Caller,
    /// A task spawned per decision (listeners).
    Spawn(AsyncCertVerifier),
}

/// The answerers of a session's deferred decisions.
#[derive(Clone)]
struct Hooks {
    /// Deferred key lookups; `None`: "unknown identity".
    lookup: Option<AsyncPskRequestLookup>,
    verify: Verify,
}

/// Why a connection ended, kept so every later call can report it.
#[derive(Clone, Debug)]
enum Fault {
    Tls(m2msec::Error),
    Io(io::ErrorKind, &'static str),
}

impl Fault {
    fn to_error(&self) -> Error {
        match self {
            Self::Tls(e) => Error::Tls(e.clone()),
            Self::Io(kind, msg) => Error::Io(io::Error::new(*kind, *msg)),
        }
    }
}

/// One session and what the driver and the handle exchange about it.
struct State {
    session: Session,
    /// Lent to `poll_output`; grows on `BufferTooSmall`.
    buf: Vec<u8>,
    /// Application data of received datagrams, one entry per datagram.
    incoming: VecDeque<Vec<u8>>,
    /// The bytes in `incoming`.
    queued_bytes: usize,
    info: Option<SessionInfo>,
    /// The handle exists (server: handed to `accept`; client: returned by `connect_dtls`).
    announced: bool,
    /// A `PskNeeded` not answered yet: (identity, server_name).
    psk_request: Option<(Vec<u8>, Option<String>, CipherSuite)>,
    /// The PSK identity of the last `PskNeeded` (kept for a failure report).
    psk_identity: Option<Vec<u8>>,
    /// A deferred certificate decision (`VerifyPeer`) not handed to its answerer yet.
    verify_request: Option<Credential>,
    /// Server: the client random of the ClientHello that opened the session (a ClientHello
    /// with another one is a new association, RFC 6347 4.2.8).
    hello_random: Option<[u8; 32]>,
    peer_closed: bool,
    close_sent: bool,
    failed: Option<Fault>,
    /// The retransmission deadline from the last `Wait`.
    deadline: Option<m2msec::Instant>,
    handle_dropped: bool,
    created: Instant,
    last_activity: Instant,
    /// Datagrams of application data dropped because `recv` was not called (the queue held
    /// `MAX_QUEUED` datagrams or `MAX_QUEUED_BYTES` bytes).
    overflow: u64,
}

impl State {
    fn new(session: Session, mtu: usize) -> Self {
        let now = Instant::now();
        Self {
            session,
            buf: vec![0; mtu],
            incoming: VecDeque::new(),
            queued_bytes: 0,
            info: None,
            announced: false,
            psk_request: None,
            psk_identity: None,
            verify_request: None,
            hello_random: None,
            peer_closed: false,
            close_sent: false,
            failed: None,
            deadline: None,
            handle_dropped: false,
            created: now,
            last_activity: now,
            overflow: 0,
        }
    }

    /// Drains `poll_output` until `Wait`: datagrams to `out`, events recorded, the application
    /// data of this round queued as one datagram.
    fn drain(&mut self, out: &mut Vec<Vec<u8>>) {
        let mut data: Option<Vec<u8>> = None;
        loop {
            match self.session.poll_output(&mut self.buf) {
                Output::Transmit(b) => out.push(b.to_vec()),
                Output::Event(Event::AppData(b)) => {
                    data.get_or_insert_with(Vec::new).extend_from_slice(b);
                }
                Output::Event(Event::Connected(info)) => self.info = Some(info),
                Output::Event(Event::PskNeeded {
                    identity,
                    server_name,
                    suite,
                }) => {
                    self.psk_identity = Some(identity.clone());
                    self.psk_request = Some((identity, server_name, suite));
                }
                Output::Event(Event::VerifyPeer { credential }) => {
                    self.verify_request = Some(credential);
                }
                Output::Event(Event::PeerClosed) => self.peer_closed = true,
                Output::Event(_) => {}
                Output::BufferTooSmall { needed } => {
                    if needed <= self.buf.len() || needed > MAX_OUTPUT_BUF {
                        // Cannot make progress: treat the session as broken rather than spin.
                        self.fail(Fault::Io(io::ErrorKind::Other, "output buffer size"));
                        break;
                    }
                    self.buf.resize(needed, 0);
                }
                Output::Wait(deadline) => {
                    self.deadline = deadline;
                    break;
                }
                _ => break,
            }
        }
        if let Some(d) = data {
            if self.incoming.len() < MAX_QUEUED && self.queued_bytes + d.len() <= MAX_QUEUED_BYTES {
                self.queued_bytes += d.len();
                self.incoming.push_back(d);
            } else {
                self.overflow += 1;
            }
        }
        if let Some(e) = self.session.error() {
            let e = e.clone();
            self.fail(Fault::Tls(e));
        }
    }

    /// Records the first fault.
    fn fail(&mut self, f: Fault) {
        self.failed.get_or_insert(f);
        self.deadline = None;
    }

    /// Records the outcome of a core call and drains.
    fn after<T>(&mut self, r: Result<T, m2msec::Error>, out: &mut Vec<Vec<u8>>) -> Option<T> {
        self.drain(out);
        match r {
            Ok(t) => Some(t),
            Err(e) => {
                self.fail(Fault::Tls(e));
                None
            }
        }
    }
}

/// A session shared between its driver and its handle.
struct Conn {
    state: Mutex<State>,
    /// Wakes tasks in `recv` / `connect_dtls` (they `enable()` before checking the state).
    readable: Notify,
    socket: Arc<UdpSocket>,
    peer: SocketAddr,
    /// The socket is connected to `peer` (client): use `send`, not `send_to`.
    connected_socket: bool,
    epoch: std::time::Instant,
    /// Wakes the driver (a handle was dropped or changed the session's timers).
    driver: Arc<Notify>,
    hooks: Hooks,
}

impl Conn {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn now(&self) -> Now {
        Now::from_std(self.epoch)
    }

    /// Hands the session's pending questions to their answerers: deferred key lookups and
    /// certificate decisions go to tasks (or, for a client's decision, to the task in
    /// `connect_dtls_verified`); without an answerer a lookup is "unknown identity" and a
    /// decision a refusal, at once. Each question is asked once: a suspended session takes no
    /// input, so a retransmitted flight cannot raise it again.
    fn dispatch(self: &Arc<Self>, st: &mut State, now: Now, out: &mut Vec<Vec<u8>>) {
        while st.failed.is_none() {
            if let Some((identity, server_name, suite)) = st.psk_request.take() {
                if let Some(lookup) = &self.hooks.lookup {
                    let request = PskRequest {
                        identity,
                        server_name,
                        suite,
                        peer: Some(self.peer),
                    };
                    tokio::spawn(Self::lookup(self.clone(), lookup(request)));
                } else {
                    let r = st.session.provide_psk(now, None);
                    st.after(r, out);
                    continue;
                }
            }
            if let Some(credential) = st.verify_request.take() {
                match &self.hooks.verify {
                    Verify::Spawn(verify) => {
                        tokio::spawn(Self::verify(self.clone(), verify(credential, self.peer)));
                    }
                    Verify::Caller => st.verify_request = Some(credential),
                    Verify::Refuse => {
                        let r = st.session.peer_verified(now, Err(CertError::Refused));
                        st.after(r, out);
                        continue;
                    }
                }
            }
            return;
        }
    }

    /// Waits for a key lookup, resumes the session with its answer and sends what follows.
    async fn lookup(self: Arc<Self>, lookup: PskLookupFuture) {
        if let Some(psk) = self.unless_ended(lookup).await {
            self.resume(|st, now| st.session.provide_psk(now, psk))
                .await;
        }
    }

    /// Waits for a certificate decision, resumes the session with it and sends what follows.
    async fn verify(self: Arc<Self>, decision: CertVerifyFuture) {
        if let Some(decision) = self.unless_ended(decision).await {
            self.resume(|st, now| st.session.peer_verified(now, decision))
                .await;
        }
    }

    /// Awaits `f` unless the session fails (e.g. at the handshake timeout) or its handle is
    /// dropped first: then `None`, and `f` is dropped (nobody waits for its answer any more).
    async fn unless_ended<F: Future>(&self, f: F) -> Option<F::Output> {
        tokio::pin!(f);
        loop {
            let notified = self.readable.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let st = self.lock();
                if st.failed.is_some() || st.handle_dropped {
                    return None;
                }
            }
            tokio::select! {
                v = &mut f => return Some(v),
                () = notified => {}
            }
        }
    }

    /// Answers the session's question with `answer` (unless it failed or was dropped
    /// meanwhile, e.g. at the handshake timeout), sends what follows and wakes the driver.
    async fn resume(
        self: &Arc<Self>,
        answer: impl FnOnce(&mut State, Now) -> Result<(), m2msec::Error>,
    ) {
        let mut o = Vec::new();
        {
            let mut st = self.lock();
            if st.failed.is_some() || st.handle_dropped {
                return;
            }
            let now = self.now();
            let r = answer(&mut st, now);
            st.after(r, &mut o);
            self.dispatch(&mut st, now, &mut o);
        }
        // Best effort like every datagram: a lost flight is recovered by the timers.
        let _ = self.transmit(&o).await;
        self.readable.notify_waiters();
        // The driver re-reads the session's timers and announces the connection.
        self.driver.notify_one();
    }

    async fn transmit(&self, datagrams: &[Vec<u8>]) -> io::Result<()> {
        for d in datagrams {
            if self.connected_socket {
                self.socket.send(d).await?;
            } else {
                self.socket.send_to(d, self.peer).await?;
            }
        }
        Ok(())
    }

    /// Best effort, without waiting (from `Drop`).
    fn try_transmit(&self, datagrams: &[Vec<u8>]) {
        for d in datagrams {
            let _ = if self.connected_socket {
                self.socket.try_send(d)
            } else {
                self.socket.try_send_to(d, self.peer)
            };
        }
    }
}

/// Marks the session's handle gone when dropped (also when `connect_dtls` is cancelled).
struct Handle(Arc<Conn>);

impl Drop for Handle {
    fn drop(&mut self) {
        let mut out = Vec::new();
        {
            let mut st = self.0.lock();
            st.handle_dropped = true;
            let open = st.failed.is_none() && !st.close_sent && !st.peer_closed;
            if open && st.info.is_some() {
                let now = self.0.now();
                let r = st.session.close(now);
                st.close_sent = true;
                st.after(r, &mut out);
            }
        }
        self.0.try_transmit(&out);
        self.0.driver.notify_one();
    }
}

/// An established DTLS connection (client or server side).
///
/// All methods take `&self`: share it (e.g. in an `Arc`) to send from one task while another
/// receives. Dropping it sends close_notify if neither side closed yet and frees the session.
pub struct DtlsConnection {
    handle: Handle,
    info: SessionInfo,
    max_payload: usize,
}

impl fmt::Debug for DtlsConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DtlsConnection")
            .field("peer", &self.handle.0.peer)
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl DtlsConnection {
    fn conn(&self) -> &Conn {
        &self.handle.0
    }

    /// What the handshake established (suite, identity, hint, SNI, EMS).
    pub fn info(&self) -> &SessionInfo {
        &self.info
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.conn().peer
    }

    /// The largest payload one [`send`](Self::send) takes (the MTU less record overhead).
    pub fn max_payload(&self) -> usize {
        self.max_payload
    }

    /// The core's counters: records dropped (malformed, bad MAC, replayed, wrong epoch) and
    /// flights retransmitted.
    pub fn stats(&self) -> Stats {
        self.conn().lock().session.stats()
    }

    /// RFC 5705 keying material for `label` and an optional `context` (absent and empty differ).
    pub fn export_keying_material(
        &self,
        out: &mut [u8],
        label: &[u8],
        context: Option<&[u8]>,
    ) -> Result<(), Error> {
        Ok(self
            .conn()
            .lock()
            .session
            .export_keying_material(out, label, context)?)
    }

    /// Sends `data` as one record in one datagram. `data` must not be longer than
    /// [`max_payload`](Self::max_payload) (an `InvalidInput` I/O error otherwise: datagram
    /// boundaries are the application's, so nothing is split silently). Empty `data` sends
    /// nothing. Delivery is not guaranteed, as with UDP.
    pub async fn send(&self, data: &[u8]) -> Result<(), Error> {
        if data.len() > self.max_payload {
            return Err(Error::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                "data longer than max_payload",
            )));
        }
        if data.is_empty() {
            return Ok(());
        }
        let mut out = Vec::new();
        let result = {
            let mut st = self.conn().lock();
            if let Some(f) = &st.failed {
                return Err(f.to_error());
            }
            let now = self.conn().now();
            let r = st.session.send(now, data);
            st.last_activity = Instant::now();
            match st.after(r, &mut out) {
                Some(n) if n == data.len() => Ok(()),
                Some(_) => Err(Error::Io(io::ErrorKind::WouldBlock.into())),
                // A fatal error: its alert (if any) goes out, the driver drops the session.
                None => Err(st
                    .failed
                    .as_ref()
                    .map_or_else(|| Error::Io(io::ErrorKind::Other.into()), Fault::to_error)),
            }
        };
        let sent = self.conn().transmit(&out).await;
        if result.is_err() {
            self.conn().driver.notify_one();
        }
        result?;
        Ok(sent?)
    }

    /// Waits for the next datagram's application data and copies it to `buf`; returns its
    /// length. A datagram longer than `buf` is truncated, as with `UdpSocket::recv` (64 KiB
    /// always suffices). `Ok(0)` means the peer sent close_notify. Data that arrived before a
    /// failure is returned first; then the failure is.
    pub async fn recv(&self, buf: &mut [u8]) -> Result<usize, Error> {
        loop {
            let notified = self.conn().readable.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut st = self.conn().lock();
                if let Some(d) = st.incoming.pop_front() {
                    st.queued_bytes -= d.len();
                    let n = d.len().min(buf.len());
                    buf[..n].copy_from_slice(&d[..n]);
                    return Ok(n);
                }
                if let Some(f) = &st.failed {
                    return Err(f.to_error());
                }
                if st.peer_closed {
                    return Ok(0);
                }
            }
            notified.await;
        }
    }

    /// Sends close_notify (once; later calls do nothing). `recv` goes on returning the peer's
    /// data until its close_notify (`Ok(0)`). close_notify is not retransmitted: over a lossy
    /// path, wait for the peer's reply with a timeout.
    pub async fn close(&self) -> Result<(), Error> {
        let mut out = Vec::new();
        {
            let mut st = self.conn().lock();
            if let Some(f) = &st.failed {
                return Err(f.to_error());
            }
            if st.close_sent || st.peer_closed {
                return Ok(());
            }
            let now = self.conn().now();
            let r = st.session.close(now);
            st.close_sent = true;
            st.after(r, &mut out);
        }
        self.conn().transmit(&out).await?;
        Ok(())
    }
}

/// Runs a DTLS client handshake over `socket`, which must already be connected to the server
/// (`UdpSocket::connect`). `server_name` is sent as SNI; `mtu` bounds every datagram we send
/// (at least `m2msec::dtls::MIN_MTU`; 1232 suits any IPv6 path).
///
/// Flights are retransmitted per the config's `RetransmitConfig`; the core gives up after its
/// `max_retransmissions` (`HandshakeTimeout`). For a shorter overall limit, wrap the call in
/// `tokio::time::timeout` (dropping the future frees everything). An ICMP "port unreachable"
/// (`ConnectionRefused`) ends the handshake at once.
pub async fn connect_dtls(
    socket: UdpSocket,
    config: Arc<ClientConfig>,
    server_name: Option<&str>,
    mtu: usize,
) -> Result<DtlsConnection, Error> {
    connect_inner(socket, config, server_name, mtu, None::<NoVerify>).await
}

/// The type of "no deferred certificate verifier".
type NoVerify = fn(Credential) -> std::future::Ready<Result<PeerCertificateInfo, CertError>>;

/// Like [`connect_dtls`], answering a deferred certificate decision (a `CertVerifier` that
/// returns `CertDecision::Defer`) with `verify(credential)`, awaited by this call: e.g. a
/// lookup of the server's key in a database. Meanwhile the driver keeps the session's timers
/// running (the core's handshake limit included: a failure ends the wait) and a retransmitted
/// server flight starts no second decision. Without it ([`connect_dtls`]) a deferred decision
/// is a refusal.
pub async fn connect_dtls_verified<V, VFut>(
    socket: UdpSocket,
    config: Arc<ClientConfig>,
    server_name: Option<&str>,
    mtu: usize,
    verify: V,
) -> Result<DtlsConnection, Error>
where
    V: FnOnce(Credential) -> VFut,
    VFut: Future<Output = Result<PeerCertificateInfo, CertError>>,
{
    connect_inner(socket, config, server_name, mtu, Some(verify)).await
}

async fn connect_inner<V, VFut>(
    socket: UdpSocket,
    config: Arc<ClientConfig>,
    server_name: Option<&str>,
    mtu: usize,
    mut verify: Option<V>,
) -> Result<DtlsConnection, Error>
where
    V: FnOnce(Credential) -> VFut,
    VFut: Future<Output = Result<PeerCertificateInfo, CertError>>,
{
    let peer = socket.peer_addr()?;
    let epoch = std::time::Instant::now();
    let session = Session::client(
        config,
        Transport::Dtls { mtu },
        server_name,
        Now::from_std(epoch),
        os_seed()?,
    )?;
    let socket = Arc::new(socket);
    let wake = Arc::new(Notify::new());
    let conn = Arc::new(Conn {
        state: Mutex::new(State::new(session, mtu)),
        readable: Notify::new(),
        socket: socket.clone(),
        peer,
        connected_socket: true,
        epoch,
        driver: wake.clone(),
        hooks: Hooks {
            lookup: None,
            verify: if verify.is_some() {
                Verify::Caller
            } else {
                Verify::Refuse
            },
        },
    });
    let mut hello = Vec::new();
    {
        let mut st = conn.lock();
        st.announced = true;
        st.drain(&mut hello);
    }
    let handle = Handle(conn.clone());
    let mut driver = Driver::new(socket, true, epoch, wake, None);
    driver.conns.insert(peer, conn.clone());
    tokio::spawn(driver.run());
    conn.transmit(&hello).await?;
    loop {
        let notified = conn.readable.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let credential = {
            let mut st = conn.lock();
            if let Some(f) = &st.failed {
                return Err(f.to_error());
            }
            if let Some(info) = st.info.clone() {
                let max_payload = st.session.max_payload();
                drop(st);
                return Ok(DtlsConnection {
                    handle,
                    info,
                    max_payload,
                });
            }
            if st.peer_closed {
                return Err(m2msec::Error::UnexpectedEof.into());
            }
            st.verify_request.take()
        };
        match credential {
            Some(credential) => {
                let decision = match verify.take() {
                    Some(f) => match conn.unless_ended(f(credential)).await {
                        Some(d) => d,
                        None => continue, // the failure is reported at the top
                    },
                    None => Err(CertError::Refused),
                };
                conn.resume(|st, now| st.session.peer_verified(now, decision))
                    .await;
            }
            None => notified.await,
        }
    }
}

/// Settings of a [`DtlsListener`].
#[derive(Clone, Debug)]
pub struct DtlsListenerOptions {
    /// Sessions kept at once (handshaking or established); datagrams from new peers beyond it
    /// are dropped.
    pub max_sessions: usize,
    /// A session not established this long after its first (cookie-verified) ClientHello is
    /// removed and reported as failed.
    pub handshake_timeout: Duration,
    /// An established session with no datagram received or sent this long is removed; its
    /// handle then reports `TimedOut`. `None`: never.
    pub idle_timeout: Option<Duration>,
    /// How often the cookie secret is replaced (cookies of the previous secret stay valid).
    pub cookie_rotation: Duration,
}

impl Default for DtlsListenerOptions {
    fn default() -> Self {
        Self {
            max_sessions: 1024,
            handshake_timeout: Duration::from_secs(30),
            idle_timeout: Some(Duration::from_secs(300)),
            cookie_rotation: Duration::from_secs(300),
        }
    }
}

/// Counters of a [`DtlsListener`] (a snapshot).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListenerStats {
    /// HelloVerifyRequests sent to ClientHellos without a (valid) cookie.
    pub hello_verify_requests: u64,
    /// ClientHellos with a valid cookie: sessions created.
    pub cookies_accepted: u64,
    /// Datagrams from unknown peers dropped (not a ClientHello, bad cookie, over capacity).
    pub dropped: u64,
    /// Handshakes that failed or timed out.
    pub handshakes_failed: u64,
    /// Connections established.
    pub established: u64,
    /// Sessions in the table now.
    pub sessions: u64,
    /// Sessions replaced by a new handshake from their peer's address (RFC 6347 4.2.8: a
    /// ClientHello that starts another association, e.g. from a rebooted client on the same
    /// port, whose cookie proved the client reachable there). The replaced session's handle
    /// reports `ConnectionReset`; the new connection is announced by `accept`.
    pub reconnects: u64,
}

#[derive(Default)]
struct Counters {
    hello_verify_requests: AtomicU64,
    cookies_accepted: AtomicU64,
    dropped: AtomicU64,
    handshakes_failed: AtomicU64,
    established: AtomicU64,
    sessions: AtomicU64,
    reconnects: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// What the listener's driver shares with the [`DtlsListener`].
#[derive(Default)]
struct Shared {
    counters: Counters,
    /// The socket error that stopped the driver.
    fatal: Mutex<Option<(io::ErrorKind, String)>>,
}

/// The outcome of one handshake on a [`DtlsListener`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Accepted {
    /// An established connection.
    Connection(DtlsConnection),
    /// A handshake from `peer` that passed the cookie exchange and then failed.
    Failed {
        /// The client's address.
        peer: SocketAddr,
        /// Why (an alert, a retransmission timeout, the listener's handshake timeout).
        error: Error,
        /// The PSK identity the client offered, when its key was looked up through the listener
        /// (an asynchronous lookup, `Event::PskNeeded`) before the failure: a wrong key fails
        /// after that, and the operator wants to know whose.
        psk_identity: Option<Vec<u8>>,
    },
}

/// A DTLS server on one UDP socket. A background task answers unknown peers with the stateless
/// cookie exchange, runs every session's handshake and timers concurrently, and queues
/// established connections for [`accept`](Self::accept).
///
/// Dropping the listener stops new handshakes; established connections keep working until they
/// are dropped.
pub struct DtlsListener {
    rx: mpsc::Receiver<Accepted>,
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    wake: Arc<Notify>,
}

impl fmt::Debug for DtlsListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DtlsListener")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl Drop for DtlsListener {
    fn drop(&mut self) {
        self.rx.close();
        self.wake.notify_one();
    }
}

impl DtlsListener {
    /// Binds a UDP socket to `addr` and serves DTLS on it with default options.
    pub async fn bind(
        addr: impl ToSocketAddrs,
        config: Arc<ServerConfig>,
        mtu: usize,
    ) -> Result<Self, Error> {
        Self::bind_with(addr, config, mtu, DtlsListenerOptions::default()).await
    }

    /// Like [`bind`](Self::bind), with `options`.
    pub async fn bind_with(
        addr: impl ToSocketAddrs,
        config: Arc<ServerConfig>,
        mtu: usize,
        options: DtlsListenerOptions,
    ) -> Result<Self, Error> {
        let socket = UdpSocket::bind(addr).await?;
        Self::from_socket(socket, config, mtu, options)
    }

    /// Serves DTLS on an already bound (not connected) socket. Needs a tokio runtime.
    pub fn from_socket(
        socket: UdpSocket,
        config: Arc<ServerConfig>,
        mtu: usize,
        options: DtlsListenerOptions,
    ) -> Result<Self, Error> {
        Self::from_socket_with_lookup(socket, config, mtu, options, None)
    }

    /// Like [`bind_with`](Self::bind_with), answering deferred key lookups with `lookup`
    /// (asynchronously: other peers are served meanwhile).
    pub async fn bind_with_lookup(
        addr: impl ToSocketAddrs,
        config: Arc<ServerConfig>,
        mtu: usize,
        options: DtlsListenerOptions,
        lookup: AsyncPskLookup,
    ) -> Result<Self, Error> {
        let socket = UdpSocket::bind(addr).await?;
        Self::from_socket_with_lookup(socket, config, mtu, options, Some(lookup))
    }

    /// Like [`bind_with_lookup`](Self::bind_with_lookup), the lookup given the whole
    /// [`PskRequest`] (identity, SNI, negotiated suite, peer address).
    pub async fn bind_with_request_lookup(
        addr: impl ToSocketAddrs,
        config: Arc<ServerConfig>,
        mtu: usize,
        options: DtlsListenerOptions,
        lookup: AsyncPskRequestLookup,
    ) -> Result<Self, Error> {
        let socket = UdpSocket::bind(addr).await?;
        Self::from_socket_with_request_lookup(socket, config, mtu, options, Some(lookup))
    }

    /// Like [`from_socket`](Self::from_socket), answering deferred key lookups with `lookup`.
    pub fn from_socket_with_lookup(
        socket: UdpSocket,
        config: Arc<ServerConfig>,
        mtu: usize,
        options: DtlsListenerOptions,
        lookup: Option<AsyncPskLookup>,
    ) -> Result<Self, Error> {
        Self::from_socket_with_request_lookup(
            socket,
            config,
            mtu,
            options,
            lookup.map(request_lookup),
        )
    }

    /// Like [`from_socket_with_lookup`](Self::from_socket_with_lookup), the lookup given the
    /// whole [`PskRequest`].
    pub fn from_socket_with_request_lookup(
        socket: UdpSocket,
        config: Arc<ServerConfig>,
        mtu: usize,
        options: DtlsListenerOptions,
        lookup: Option<AsyncPskRequestLookup>,
    ) -> Result<Self, Error> {
        let hooks = Hooks {
            lookup,
            verify: Verify::Refuse,
        };
        Self::start(socket, config, mtu, options, hooks)
    }

    /// Like [`bind_with_request_lookup`](Self::bind_with_request_lookup) (`lookup` optional),
    /// also answering deferred certificate decisions (a `CertVerifier` that returns
    /// `CertDecision::Defer`) with `verify(credential, peer)`, asynchronously: the session
    /// waits, its handshake timeout running, while other peers are served. Without it
    /// ([`bind`](Self::bind) and the others) a deferred decision is a refusal.
    pub async fn bind_verified(
        addr: impl ToSocketAddrs,
        config: Arc<ServerConfig>,
        mtu: usize,
        options: DtlsListenerOptions,
        lookup: Option<AsyncPskRequestLookup>,
        verify: AsyncCertVerifier,
    ) -> Result<Self, Error> {
        let socket = UdpSocket::bind(addr).await?;
        Self::from_socket_verified(socket, config, mtu, options, lookup, verify)
    }

    /// Like [`bind_verified`](Self::bind_verified), on an already bound (not connected)
    /// socket. Needs a tokio runtime.
    pub fn from_socket_verified(
        socket: UdpSocket,
        config: Arc<ServerConfig>,
        mtu: usize,
        options: DtlsListenerOptions,
        lookup: Option<AsyncPskRequestLookup>,
        verify: AsyncCertVerifier,
    ) -> Result<Self, Error> {
        let hooks = Hooks {
            lookup,
            verify: Verify::Spawn(verify),
        };
        Self::start(socket, config, mtu, options, hooks)
    }

    fn start(
        socket: UdpSocket,
        config: Arc<ServerConfig>,
        mtu: usize,
        options: DtlsListenerOptions,
        hooks: Hooks,
    ) -> Result<Self, Error> {
        if mtu < MIN_MTU {
            return Err(m2msec::Error::from(ApiMisuse::MtuTooSmall).into());
        }
        let local_addr = socket.local_addr()?;
        let capacity = options.max_sessions.saturating_add(64).max(1);
        let (tx, rx) = mpsc::channel(capacity);
        let mut secret = [0u8; 32];
        getrandom::getrandom(&mut secret).map_err(|e| Error::Io(e.into()))?;
        let shared = Arc::new(Shared::default());
        let wake = Arc::new(Notify::new());
        let server = ServerPart {
            config,
            mtu,
            cookies: CookieListener::new(secret),
            next_rotation: later(Instant::now(), options.cookie_rotation),
            options,
            accepted: tx,
            shared: shared.clone(),
            hooks,
        };
        let driver = Driver::new(
            Arc::new(socket),
            false,
            std::time::Instant::now(),
            wake.clone(),
            Some(server),
        );
        tokio::spawn(driver.run());
        Ok(Self {
            rx,
            shared,
            local_addr,
            wake,
        })
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> ListenerStats {
        let c = &self.shared.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ListenerStats {
            hello_verify_requests: get(&c.hello_verify_requests),
            cookies_accepted: get(&c.cookies_accepted),
            dropped: get(&c.dropped),
            handshakes_failed: get(&c.handshakes_failed),
            established: get(&c.established),
            sessions: get(&c.sessions),
            reconnects: get(&c.reconnects),
        }
    }

    /// The next established connection; failed handshakes are skipped (see
    /// [`accept_or_failure`](Self::accept_or_failure)). Errs only if the socket failed.
    pub async fn accept(&mut self) -> Result<DtlsConnection, Error> {
        loop {
            if let Accepted::Connection(c) = self.accept_or_failure().await? {
                return Ok(c);
            }
        }
    }

    /// The next established connection or failed handshake, in the order they happened.
    pub async fn accept_or_failure(&mut self) -> Result<Accepted, Error> {
        match self.rx.recv().await {
            Some(a) => Ok(a),
            None => {
                let fatal = self
                    .shared
                    .fatal
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone();
                Err(Error::Io(match fatal {
                    Some((kind, msg)) => io::Error::new(kind, msg),
                    None => io::ErrorKind::BrokenPipe.into(),
                }))
            }
        }
    }
}

/// The listener half of a driver.
struct ServerPart {
    config: Arc<ServerConfig>,
    mtu: usize,
    cookies: CookieListener,
    next_rotation: Instant,
    options: DtlsListenerOptions,
    accepted: mpsc::Sender<Accepted>,
    shared: Arc<Shared>,
    hooks: Hooks,
}

/// The peer bytes the cookie covers: the IP address octets and the port.
fn peer_bytes(peer: SocketAddr) -> Vec<u8> {
    let mut b = match peer.ip() {
        std::net::IpAddr::V4(ip) => ip.octets().to_vec(),
        std::net::IpAddr::V6(ip) => ip.octets().to_vec(),
    };
    b.extend_from_slice(&peer.port().to_be_bytes());
    b
}

/// What woke the driver.
enum Wakeup {
    Datagram(io::Result<(usize, SocketAddr)>),
    Timer,
    Poked,
}

/// The task owning a socket's receive side and its sessions.
struct Driver {
    socket: Arc<UdpSocket>,
    connected_socket: bool,
    epoch: std::time::Instant,
    wake: Arc<Notify>,
    conns: HashMap<SocketAddr, Arc<Conn>>,
    server: Option<ServerPart>,
}

/// Datagrams to send, with their destination.
type Outbox = Vec<(SocketAddr, Vec<u8>)>;

impl Driver {
    fn new(
        socket: Arc<UdpSocket>,
        connected_socket: bool,
        epoch: std::time::Instant,
        wake: Arc<Notify>,
        server: Option<ServerPart>,
    ) -> Self {
        Self {
            socket,
            connected_socket,
            epoch,
            wake,
            conns: HashMap::new(),
            server,
        }
    }

    async fn run(mut self) {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let socket = self.socket.clone();
        let wake = self.wake.clone();
        loop {
            let mut out = Outbox::new();
            let next = self.sweep(&mut out);
            self.flush(&out).await;
            if self.finished() {
                return;
            }
            let far = later(Instant::now(), Duration::from_secs(3600));
            let wakeup = tokio::select! {
                r = socket.recv_from(&mut buf) => Wakeup::Datagram(r),
                () = sleep_until(next.unwrap_or(far)) => Wakeup::Timer,
                () = wake.notified() => Wakeup::Poked,
            };
            let mut out = Outbox::new();
            match wakeup {
                Wakeup::Datagram(Ok((n, peer))) => self.datagram(peer, &buf[..n], &mut out),
                Wakeup::Datagram(Err(e)) => {
                    if self.recv_failed(e) {
                        self.sweep(&mut out);
                        self.flush(&out).await;
                        return;
                    }
                }
                Wakeup::Timer | Wakeup::Poked => {}
            }
            self.flush(&out).await;
        }
    }

    fn finished(&self) -> bool {
        match &self.server {
            None => self.conns.is_empty(),
            Some(s) => self.conns.is_empty() && s.accepted.is_closed(),
        }
    }

    async fn flush(&self, out: &Outbox) {
        for (peer, d) in out {
            // UDP is best effort; a failed send is a lost datagram (the timers recover flights).
            let _ = if self.connected_socket {
                self.socket.send(d).await
            } else {
                self.socket.send_to(d, *peer).await
            };
        }
    }

    /// A receive error; true if the driver must stop.
    fn recv_failed(&mut self, e: io::Error) -> bool {
        let kind = e.kind();
        let transient = matches!(
            kind,
            io::ErrorKind::ConnectionRefused
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::Interrupted
                | io::ErrorKind::WouldBlock
        );
        if self.connected_socket {
            // The client's socket: an ICMP error from the peer ends a live session.
            let (fault, stop) = if kind == io::ErrorKind::ConnectionRefused {
                (Fault::Io(kind, "connection refused by the peer"), false)
            } else if transient {
                return false;
            } else {
                (Fault::Io(kind, "receive failed"), true)
            };
            for c in self.conns.values() {
                let mut st = c.lock();
                if !st.peer_closed && !st.close_sent {
                    st.fail(fault.clone());
                }
                drop(st);
                c.readable.notify_waiters();
            }
            return stop;
        }
        if transient {
            return false;
        }
        if let Some(s) = &self.server {
            *s.shared
                .fatal
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((kind, e.to_string()));
        }
        for c in self.conns.values() {
            c.lock()
                .fail(Fault::Io(kind, "the listener's socket failed"));
            c.readable.notify_waiters();
        }
        true
    }

    fn datagram(&mut self, peer: SocketAddr, d: &[u8], out: &mut Outbox) {
        let conn = if self.connected_socket {
            self.conns.values().next().cloned()
        } else {
            self.conns.get(&peer).cloned()
        };
        match conn {
            Some(c) if self.server.is_some() && Self::new_association(&c, d) => {
                self.reconnect(peer, &c, d, out);
            }
            Some(c) => Self::feed(&c, d, out),
            None => self.new_peer(peer, d, out),
        }
    }

    /// Whether `d`, from the address of `c`'s peer, starts another association (RFC 6347
    /// 4.2.8): a ClientHello at epoch 0 with another client random than the one that opened
    /// the session, or any ClientHello once the session has ended. A ClientHello retransmitted
    /// during the handshake (or duplicated later) has the same random and goes to the session.
    fn new_association(c: &Conn, d: &[u8]) -> bool {
        let Some(random) = client_hello_random(d) else {
            return false;
        };
        let st = c.lock();
        st.failed.is_some() || st.peer_closed || st.hello_random != Some(random)
    }

    /// A ClientHello that starts another association from a known address goes through the
    /// cookie exchange like a new peer's, the existing session untouched; only a valid cookie
    /// (the client is reachable there: an off-path attacker cannot disturb the session) ends
    /// the existing session, whose handle then reports `ConnectionReset`, and starts a new one.
    fn reconnect(&mut self, peer: SocketAddr, old: &Arc<Conn>, d: &[u8], out: &mut Outbox) {
        let Some(s) = self.server.as_ref() else {
            return;
        };
        let counters = &s.shared.counters;
        if s.accepted.is_closed() {
            bump(&counters.dropped);
            return;
        }
        match s.cookies.handle_datagram(&peer_bytes(peer), d) {
            ListenerDecision::SendHelloVerify(hvr) => {
                bump(&counters.hello_verify_requests);
                out.push((peer, hvr));
            }
            ListenerDecision::Accept => {
                let report = {
                    let mut st = old.lock();
                    if !st.peer_closed {
                        st.fail(Fault::Io(io::ErrorKind::ConnectionReset, RECONNECTED));
                    }
                    (!st.announced)
                        .then(|| st.failed.as_ref().map(Fault::to_error))
                        .flatten()
                        .map(|error| (error, st.psk_identity.clone()))
                };
                old.readable.notify_waiters();
                if let Some((error, psk_identity)) = report {
                    bump(&counters.handshakes_failed);
                    let _ = s.accepted.try_send(Accepted::Failed {
                        peer,
                        error,
                        psk_identity,
                    });
                }
                bump(&counters.reconnects);
                self.conns.remove(&peer);
                self.start_session(peer, d, out);
            }
            _ => bump(&counters.dropped),
        }
    }

    /// Feeds a datagram to an existing session.
    fn feed(c: &Arc<Conn>, d: &[u8], out: &mut Outbox) {
        let mut o = Vec::new();
        {
            let mut st = c.lock();
            if st.failed.is_some() || st.peer_closed {
                return;
            }
            let now = c.now();
            st.last_activity = Instant::now();
            let r = st.session.handle_input(now, d);
            st.after(r, &mut o);
            c.dispatch(&mut st, now, &mut o);
        }
        out.extend(o.into_iter().map(|d| (c.peer, d)));
        c.readable.notify_waiters();
    }

    fn new_peer(&mut self, peer: SocketAddr, d: &[u8], out: &mut Outbox) {
        let Some(s) = self.server.as_ref() else {
            return;
        };
        let counters = &s.shared.counters;
        if s.accepted.is_closed() || self.conns.len() >= s.options.max_sessions {
            bump(&counters.dropped);
            return;
        }
        match s.cookies.handle_datagram(&peer_bytes(peer), d) {
            ListenerDecision::SendHelloVerify(hvr) => {
                bump(&counters.hello_verify_requests);
                out.push((peer, hvr));
            }
            ListenerDecision::Accept => self.start_session(peer, d, out),
            _ => bump(&counters.dropped),
        }
    }

    /// Creates the session of a ClientHello with a valid cookie and feeds it the datagram.
    fn start_session(&mut self, peer: SocketAddr, d: &[u8], out: &mut Outbox) {
        let Some(s) = self.server.as_ref() else {
            return;
        };
        let counters = &s.shared.counters;
        let Ok(seed) = os_seed() else {
            bump(&counters.dropped);
            return;
        };
        let transport = Transport::Dtls { mtu: s.mtu };
        let now = Now::from_std(self.epoch);
        let Ok(session) = Session::server(s.config.clone(), transport, now, seed) else {
            bump(&counters.dropped);
            return;
        };
        bump(&counters.cookies_accepted);
        let mut state = State::new(session, s.mtu);
        state.hello_random = client_hello_random(d);
        let conn = Arc::new(Conn {
            state: Mutex::new(state),
            readable: Notify::new(),
            socket: self.socket.clone(),
            peer,
            connected_socket: false,
            epoch: self.epoch,
            driver: self.wake.clone(),
            hooks: s.hooks.clone(),
        });
        self.conns.insert(peer, conn.clone());
        Self::feed(&conn, d, out);
    }

    /// Fires due timers, announces new connections, reports and removes finished sessions, and
    /// rotates the cookie secret. Returns when to look again.
    fn sweep(&mut self, out: &mut Outbox) -> Option<Instant> {
        let now = Instant::now();
        let mut next: Option<Instant> = None;
        let mut soonest = |t: Instant| next = Some(next.map_or(t, |n: Instant| n.min(t)));
        if let Some(s) = self.server.as_mut() {
            if now >= s.next_rotation {
                let mut secret = [0u8; 32];
                if getrandom::getrandom(&mut secret).is_ok() {
                    s.cookies.rotate(secret);
                }
                s.next_rotation = later(now, s.options.cookie_rotation);
            }
            soonest(s.next_rotation);
        }
        let mut finished = Vec::new();
        for (peer, c) in &self.conns {
            let mut o = Vec::new();
            let mut changed = false;
            let mut st = c.lock();
            let core_now = c.now();
            if st.failed.is_none() && st.deadline.is_some_and(|d| d <= core_now.mono) {
                let r = st.session.handle_timeout(core_now);
                st.after(r, &mut o);
                changed = true;
            }
            if let Some(s) = &self.server {
                if st.info.is_none() && now >= later(st.created, s.options.handshake_timeout) {
                    st.fail(Fault::Io(
                        io::ErrorKind::TimedOut,
                        "DTLS handshake timed out",
                    ));
                }
                if let Some(idle) = s.options.idle_timeout {
                    if st.info.is_some() && !st.peer_closed && now >= later(st.last_activity, idle)
                    {
                        st.fail(Fault::Io(io::ErrorKind::TimedOut, "idle timeout"));
                    }
                }
                let fresh = st
                    .info
                    .clone()
                    .filter(|_| st.failed.is_none() && !st.announced);
                if let Some(info) = fresh {
                    st.announced = true;
                    changed = true;
                    bump(&s.shared.counters.established);
                    let max_payload = st.session.max_payload();
                    drop(st);
                    let conn = DtlsConnection {
                        handle: Handle(c.clone()),
                        info,
                        max_payload,
                    };
                    if let Err(e) = s.accepted.try_send(Accepted::Connection(conn)) {
                        drop(e); // the handle's Drop sends close_notify and marks it gone
                    }
                    st = c.lock();
                }
            }
            let done = st.failed.is_some() || st.peer_closed || st.handle_dropped;
            if done {
                changed = true;
                if let (Some(f), false, Some(s)) = (&st.failed, st.announced, &self.server) {
                    bump(&s.shared.counters.handshakes_failed);
                    let _ = s.accepted.try_send(Accepted::Failed {
                        peer: *peer,
                        error: f.to_error(),
                        psk_identity: st.psk_identity.clone(),
                    });
                }
                finished.push(*peer);
            } else {
                if let Some(d) = st.deadline {
                    let at = later(Instant::from_std(self.epoch), Duration::from_micros(d.0));
                    soonest(at);
                }
                if let Some(s) = &self.server {
                    if st.info.is_none() {
                        soonest(later(st.created, s.options.handshake_timeout));
                    } else if let Some(idle) = s.options.idle_timeout {
                        soonest(later(st.last_activity, idle));
                    }
                }
            }
            drop(st);
            out.extend(o.into_iter().map(|d| (c.peer, d)));
            if changed {
                c.readable.notify_waiters();
            }
        }
        for peer in finished {
            self.conns.remove(&peer);
        }
        if let Some(s) = &self.server {
            s.shared
                .counters
                .sessions
                .store(self.conns.len() as u64, Ordering::Relaxed);
        }
        next
    }
}
