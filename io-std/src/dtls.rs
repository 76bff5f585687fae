//! Blocking DTLS over `std::net::UdpSocket`: a client ([`DtlsStream`]) and a server that
//! demultiplexes many peers on one socket ([`DtlsServer`]), cookie listener first.
//!
//! No protocol logic: datagrams go to `Session::handle_input`, `poll_output` is drained after
//! every call, and the socket's read timeout follows the session's retransmission deadline.
//!
//! A client that comes back from the address of a session (a rebooted device reusing its port)
//! is served per RFC 6347 4.2.8: a ClientHello at epoch 0 with another client random than the
//! one that opened the session goes through the cookie exchange, the session untouched; a
//! valid cookie replaces the session ([`ServerEvent::Reconnected`]).

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant as StdInstant};

use m2msec::cert::CertError;
use m2msec::dtls::{client_hello_random, CookieListener, ListenerDecision};
use m2msec::{
    ClientConfig, Event, Instant, Now, Output, ServerConfig, Session, SessionInfo, Transport,
};

use crate::{os_seed, Error};

/// Largest datagram we read.
const MAX_DATAGRAM: usize = 64 * 1024;

fn now(epoch: StdInstant) -> Now {
    Now::from_std(epoch)
}

/// What one drain produced.
#[derive(Default)]
struct Drained {
    data: VecDeque<Vec<u8>>,
    connected: Option<SessionInfo>,
    closed: bool,
    deadline: Option<Instant>,
}

/// Drains `s`, sending datagrams with `send`.
fn drain(
    s: &mut Session,
    epoch: StdInstant,
    out: &mut Vec<u8>,
    d: &mut Drained,
    mut send: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    loop {
        match s.poll_output(out) {
            // This adapter has no hook for deferred certificate decisions: refused at once
            // (use a verifier that decides synchronously).
            Output::Event(Event::VerifyPeer { .. }) => {
                let _ = s.peer_verified(now(epoch), Err(CertError::Refused));
            }
            Output::Transmit(b) => send(b)?,
            Output::BufferTooSmall { needed } => out.resize(needed, 0),
            Output::Event(Event::AppData(b)) => d.data.push_back(b.to_vec()),
            Output::Event(Event::Connected(info)) => d.connected = Some(info),
            Output::Event(Event::PeerClosed) => d.closed = true,
            Output::Event(_) => {}
            Output::Wait(deadline) => {
                d.deadline = deadline;
                return Ok(());
            }
            _ => return Ok(()),
        }
    }
}

fn until(deadline: Option<Instant>, epoch: StdInstant) -> Option<Duration> {
    deadline.map(|d| {
        let t = now(epoch).mono;
        d.saturating_since(t).max(Duration::from_millis(1))
    })
}

/// A DTLS client connection over a connected `UdpSocket`.
pub struct DtlsStream {
    socket: UdpSocket,
    session: Session,
    epoch: StdInstant,
    out: Vec<u8>,
    inbuf: Vec<u8>,
    state: Drained,
    /// A read timeout the caller set for `recv`, if any.
    user_timeout: Option<Duration>,
}

impl std::fmt::Debug for DtlsStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DtlsStream")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

/// Runs a DTLS client handshake over `socket` (already `connect`ed to the server).
pub fn connect_dtls(
    socket: UdpSocket,
    config: Arc<ClientConfig>,
    server_name: Option<&str>,
    mtu: usize,
) -> Result<DtlsStream, Error> {
    let epoch = StdInstant::now();
    let session = Session::client(
        config,
        Transport::Dtls { mtu },
        server_name,
        now(epoch),
        os_seed()?,
    )?;
    let mut s = DtlsStream {
        socket,
        session,
        epoch,
        out: vec![0u8; MAX_DATAGRAM],
        inbuf: vec![0u8; MAX_DATAGRAM],
        state: Drained::default(),
        user_timeout: None,
    };
    s.drain()?;
    while !s.session.is_connected() {
        s.turn(None)?;
    }
    Ok(s)
}

impl DtlsStream {
    fn drain(&mut self) -> Result<(), Error> {
        let sock = &self.socket;
        drain(
            &mut self.session,
            self.epoch,
            &mut self.out,
            &mut self.state,
            |b| sock.send(b).map(|_| ()),
        )?;
        if let Some(e) = self.session.error() {
            return Err(e.clone().into());
        }
        Ok(())
    }

    /// One turn: wait for a datagram or the session's deadline (or `limit`), feed it, drain.
    /// Returns false if `limit` passed with nothing to do.
    fn turn(&mut self, limit: Option<Duration>) -> Result<bool, Error> {
        let wait = match (until(self.state.deadline, self.epoch), limit) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.socket.set_read_timeout(wait)?;
        match self.socket.recv(&mut self.inbuf) {
            Ok(n) => {
                let t = now(self.epoch);
                let taken = self.session.handle_input(t, &self.inbuf[..n]);
                self.drain()?;
                taken?;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                let t = now(self.epoch);
                let due = self.state.deadline.is_some_and(|d| d <= t.mono);
                let r = self.session.handle_timeout(t);
                self.drain()?;
                r?;
                if !due && limit.is_some() {
                    return Ok(false);
                }
            }
            // ICMP port unreachable surfaces as ConnectionRefused on a connected socket:
            // the datagram was lost; the retransmission timer handles it.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
            Err(e) => return Err(e.into()),
        }
        Ok(true)
    }

    /// What the handshake established.
    pub fn info(&self) -> &SessionInfo {
        self.session
            .info()
            .expect("exists only after the handshake")
    }

    /// RFC 5705 keying material.
    pub fn export_keying_material(
        &self,
        out: &mut [u8],
        label: &[u8],
        context: Option<&[u8]>,
    ) -> Result<(), Error> {
        Ok(self.session.export_keying_material(out, label, context)?)
    }

    /// The largest payload of one `send`.
    pub fn max_payload(&self) -> usize {
        self.session.max_payload()
    }

    /// Sends one datagram of application data; returns how much of `data` it carried (at most
    /// [`Self::max_payload`]).
    pub fn send(&mut self, data: &[u8]) -> Result<usize, Error> {
        let n = self.session.send(now(self.epoch), data)?;
        self.drain()?;
        Ok(n)
    }

    /// Limits how long `recv` waits (`None`: forever).
    pub fn set_recv_timeout(&mut self, t: Option<Duration>) {
        self.user_timeout = t;
    }

    /// Receives one datagram's application data into `buf` (truncating); 0 means the peer
    /// closed. Times out with `io::ErrorKind::TimedOut` after the `set_recv_timeout` limit.
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        let start = StdInstant::now();
        loop {
            if let Some(d) = self.state.data.pop_front() {
                let n = d.len().min(buf.len());
                buf[..n].copy_from_slice(&d[..n]);
                return Ok(n);
            }
            if self.state.closed {
                return Ok(0);
            }
            let left = self.user_timeout.map(|t| t.saturating_sub(start.elapsed()));
            if left == Some(Duration::ZERO) {
                return Err(io::Error::from(io::ErrorKind::TimedOut).into());
            }
            self.turn(left)?;
        }
    }

    /// Sends close_notify.
    pub fn close(&mut self) -> Result<(), Error> {
        self.session.close(now(self.epoch))?;
        self.drain()
    }

    /// Counters of dropped records and retransmissions.
    pub fn stats(&self) -> m2msec::session::Stats {
        self.session.stats()
    }
}

/// What the server loop reports.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServerEvent {
    /// A handshake completed.
    Connected(SocketAddr, SessionInfo),
    /// A datagram of application data.
    Data(SocketAddr, Vec<u8>),
    /// The peer sent close_notify; its session is gone.
    Closed(SocketAddr),
    /// The peer's session failed; it is gone.
    Failed(SocketAddr, m2msec::Error),
    /// A new handshake from the peer's address proved it reachable there with a valid cookie
    /// (RFC 6347 4.2.8: e.g. a rebooted client reusing its port): its previous session
    /// (established or still handshaking) is gone; `Connected` follows when the new one
    /// completes.
    Reconnected(SocketAddr),
}

/// One peer's session.
struct Peer {
    session: Session,
    drained: Drained,
    /// The client random of the ClientHello that opened the session.
    hello_random: Option<[u8; 32]>,
}

/// A blocking DTLS server on one `UdpSocket`: cookie exchange first (no state before it), then
/// one session per peer address, each with its timers driven by [`DtlsServer::poll`].
pub struct DtlsServer {
    socket: UdpSocket,
    config: Arc<ServerConfig>,
    listener: CookieListener,
    sessions: HashMap<SocketAddr, Peer>,
    events: VecDeque<ServerEvent>,
    mtu: usize,
    max_sessions: usize,
    epoch: StdInstant,
    out: Vec<u8>,
    inbuf: Vec<u8>,
    hello_verifies: u64,
    reconnects: u64,
}

impl std::fmt::Debug for DtlsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DtlsServer")
            .field("sessions", &self.sessions.len())
            .field("hello_verifies", &self.hello_verifies)
            .field("reconnects", &self.reconnects)
            .finish_non_exhaustive()
    }
}

/// The bytes a cookie binds a peer's address to.
fn addr_bytes(a: &SocketAddr) -> Vec<u8> {
    let mut v = match a.ip() {
        std::net::IpAddr::V4(ip) => ip.octets().to_vec(),
        std::net::IpAddr::V6(ip) => ip.octets().to_vec(),
    };
    v.extend_from_slice(&a.port().to_be_bytes());
    v
}

impl DtlsServer {
    /// A server on `socket`, accepting up to `max_sessions` peers at once.
    pub fn new(
        socket: UdpSocket,
        config: Arc<ServerConfig>,
        mtu: usize,
        max_sessions: usize,
    ) -> Result<Self, Error> {
        Ok(Self {
            socket,
            config,
            listener: CookieListener::new(os_seed()?),
            sessions: HashMap::new(),
            events: VecDeque::new(),
            mtu,
            max_sessions,
            epoch: StdInstant::now(),
            out: vec![0u8; MAX_DATAGRAM],
            inbuf: vec![0u8; MAX_DATAGRAM],
            hello_verifies: 0,
            reconnects: 0,
        })
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Sessions currently held (handshaking or established).
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// HelloVerifyRequests sent so far.
    pub fn hello_verifies(&self) -> u64 {
        self.hello_verifies
    }

    /// Sessions replaced by a new handshake from their peer's address
    /// ([`ServerEvent::Reconnected`]).
    pub fn reconnects(&self) -> u64 {
        self.reconnects
    }

    /// Replaces the cookie secret (do it periodically).
    pub fn rotate_cookie_secret(&mut self) -> Result<(), Error> {
        self.listener.rotate(os_seed()?);
        Ok(())
    }

    fn drain_peer(&mut self, peer: SocketAddr) -> io::Result<()> {
        let Some(Peer {
            session: s,
            drained: d,
            ..
        }) = self.sessions.get_mut(&peer)
        else {
            return Ok(());
        };
        let sock = &self.socket;
        drain(s, self.epoch, &mut self.out, d, |b| {
            sock.send_to(b, peer).map(|_| ())
        })?;
        if let Some(info) = d.connected.take() {
            self.events.push_back(ServerEvent::Connected(peer, info));
        }
        while let Some(data) = d.data.pop_front() {
            self.events.push_back(ServerEvent::Data(peer, data));
        }
        if let Some(e) = s.error() {
            let e = e.clone();
            self.sessions.remove(&peer);
            self.events.push_back(ServerEvent::Failed(peer, e));
        } else if d.closed {
            self.sessions.remove(&peer);
            self.events.push_back(ServerEvent::Closed(peer));
        }
        Ok(())
    }

    /// Whether `d`, from the address of an existing session, starts another association
    /// (RFC 6347 4.2.8): a ClientHello at epoch 0 whose client random is not the one that
    /// opened the session. A retransmitted or duplicated ClientHello (same random) is the
    /// session's.
    fn new_association(&self, peer: SocketAddr, d: &[u8]) -> bool {
        let Some(p) = self.sessions.get(&peer) else {
            return false;
        };
        client_hello_random(d).is_some_and(|r| p.session.is_closed() || p.hello_random != Some(r))
    }

    fn datagram(&mut self, peer: SocketAddr, n: usize) -> io::Result<()> {
        let t = now(self.epoch);
        let d = &self.inbuf[..n];
        let known = self.sessions.contains_key(&peer);
        if !known || self.new_association(peer, d) {
            // The cookie exchange first, for a new peer as for a known one starting over: the
            // existing session is left alone until a valid cookie proves the client reachable.
            match self.listener.handle_datagram(&addr_bytes(&peer), d) {
                ListenerDecision::SendHelloVerify(hvr) => {
                    self.hello_verifies += 1;
                    self.socket.send_to(&hvr, peer)?;
                    return Ok(());
                }
                ListenerDecision::Accept if known || self.sessions.len() < self.max_sessions => {
                    let Ok(seed) = os_seed() else { return Ok(()) };
                    let Ok(s) = Session::server(
                        self.config.clone(),
                        Transport::Dtls { mtu: self.mtu },
                        t,
                        seed,
                    ) else {
                        return Ok(());
                    };
                    if known {
                        self.reconnects += 1;
                        self.events.push_back(ServerEvent::Reconnected(peer));
                    }
                    let p = Peer {
                        session: s,
                        drained: Drained::default(),
                        hello_random: client_hello_random(d),
                    };
                    self.sessions.insert(peer, p);
                }
                _ => return Ok(()),
            }
        }
        if let Some(p) = self.sessions.get_mut(&peer) {
            // An error is recorded in the session and reported by drain_peer.
            let _ = p.session.handle_input(t, &self.inbuf[..n]);
        }
        self.drain_peer(peer)
    }

    fn timers(&mut self) -> io::Result<()> {
        let t = now(self.epoch);
        let due: Vec<SocketAddr> = self
            .sessions
            .iter()
            .filter(|(_, p)| p.drained.deadline.is_some_and(|x| x <= t.mono))
            .map(|(a, _)| *a)
            .collect();
        for peer in due {
            if let Some(p) = self.sessions.get_mut(&peer) {
                let _ = p.session.handle_timeout(t);
            }
            self.drain_peer(peer)?;
        }
        Ok(())
    }

    /// Runs the loop until an event or until `timeout` passes (`None` when it did).
    pub fn poll(&mut self, timeout: Duration) -> Result<Option<ServerEvent>, Error> {
        let start = StdInstant::now();
        loop {
            if let Some(e) = self.events.pop_front() {
                return Ok(Some(e));
            }
            let left = timeout.saturating_sub(start.elapsed());
            if left.is_zero() {
                return Ok(None);
            }
            let next = self
                .sessions
                .values()
                .filter_map(|p| p.drained.deadline)
                .min();
            let wait = until(next, self.epoch).map_or(left, |d| d.min(left));
            self.socket
                .set_read_timeout(Some(wait.max(Duration::from_millis(1))))?;
            match self.socket.recv_from(&mut self.inbuf) {
                Ok((n, peer)) => self.datagram(peer, n)?,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
                Err(e) => return Err(e.into()),
            }
            self.timers()?;
        }
    }

    fn with_session<T>(
        &mut self,
        peer: SocketAddr,
        f: impl FnOnce(&mut Session, Now) -> Result<T, m2msec::Error>,
    ) -> Result<T, Error> {
        let t = now(self.epoch);
        let p = self
            .sessions
            .get_mut(&peer)
            .ok_or(m2msec::Error::ApiMisuse(m2msec::error::ApiMisuse::Closed))?;
        let r = f(&mut p.session, t);
        self.drain_peer(peer)?;
        Ok(r?)
    }

    /// Sends one datagram of application data to `peer`; returns how much it carried.
    pub fn send_to(&mut self, peer: SocketAddr, data: &[u8]) -> Result<usize, Error> {
        self.with_session(peer, |s, t| s.send(t, data))
    }

    /// Sends close_notify to `peer`.
    pub fn close(&mut self, peer: SocketAddr) -> Result<(), Error> {
        self.with_session(peer, |s, t| s.close(t))
    }

    /// RFC 5705 keying material of `peer`'s session.
    pub fn export_keying_material(
        &mut self,
        peer: SocketAddr,
        out: &mut [u8],
        label: &[u8],
        context: Option<&[u8]>,
    ) -> Result<(), Error> {
        self.with_session(peer, |s, _| s.export_keying_material(out, label, context))
    }
}
