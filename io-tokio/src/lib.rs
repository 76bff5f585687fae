//! Tokio adapter for the `m2msec` sans-IO (D)TLS 1.2 PSK engine.
//!
//! TLS: [`connect`], [`accept`] and [`accept_with`] run the handshake over any
//! `AsyncRead + AsyncWrite + Unpin` transport and return a [`TlsStream`], which implements
//! tokio's [`AsyncRead`] / [`AsyncWrite`].
//!
//! DTLS: [`connect_dtls`] over a connected `UdpSocket` and [`DtlsListener`] (cookie exchange,
//! many peers on one socket) give a [`DtlsConnection`] with datagram `send` / `recv`; see the
//! design notes on [`DtlsListener`] and [`connect_dtls`]. The adapter only moves bytes: every protocol decision
//! is the core's. Each session gets a fresh 32-byte seed from the operating system.

use std::fmt;
use std::future::{ready, Future, Ready};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll, Waker};

use m2msec::cert::{CertError, Credential, PeerCertificateInfo};
use m2msec::error::ApiMisuse;
use m2msec::{
    CipherSuite, ClientConfig, Event, Now, Output, Psk, ServerConfig, Session, SessionInfo,
    Transport,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

pub mod config_toml;
mod dtls;
pub mod frameworks;
pub mod node;
pub mod store;

pub use dtls::{
    connect_dtls, Accepted, AsyncPskLookup, AsyncPskRequestLookup, DtlsConnection, DtlsListener,
    DtlsListenerOptions, ListenerStats, PskLookupFuture,
};
pub use dtls::{connect_dtls_verified, AsyncCertVerifier, CertVerifyFuture};

/// A deferred key lookup's question (`Event::PskNeeded` of the core): what a server needs to
/// find or derive the key. The suite is there for keys that depend on it, like a GBA NAF key
/// (NAF_Id = NAF FQDN || 01 00 01 || the suite's code, D10).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PskRequest {
    /// The client's psk_identity.
    pub identity: Vec<u8>,
    /// The SNI host name the client sent.
    pub server_name: Option<String>,
    /// The cipher suite the server chose (already sent in its ServerHello).
    pub suite: CipherSuite,
    /// The client's address (DTLS listeners; `None` for TLS over a stream).
    pub peer: Option<std::net::SocketAddr>,
}

/// Size of the buffers handed to the core and to the transport: one TLS record and then some.
const BUF: usize = 18 * 1024;

/// What can go wrong in the adapter: the protocol (core) or the transport.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The TLS engine failed (fatal alert sent or received, bad configuration, ...).
    Tls(m2msec::Error),
    /// The transport failed, or the OS could not provide randomness.
    Io(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tls(e) => fmt::Display::fmt(e, f),
            Self::Io(e) => write!(f, "I/O error: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Tls(e) => Some(e),
            Self::Io(e) => Some(e),
        }
    }
}

impl From<m2msec::Error> for Error {
    fn from(e: m2msec::Error) -> Self {
        Self::Tls(e)
    }
}

impl From<io::Error> for Error {
    /// Unwraps an `io::Error` that carries a core error (as [`TlsStream`]'s I/O methods return).
    fn from(e: io::Error) -> Self {
        if e.get_ref().is_some_and(|i| i.is::<m2msec::Error>()) {
            let kind = e.kind();
            return match e.into_inner().map(|b| b.downcast::<m2msec::Error>()) {
                Some(Ok(inner)) => Self::Tls(*inner),
                Some(Err(other)) => Self::Io(io::Error::new(kind, other)),
                None => Self::Io(kind.into()),
            };
        }
        Self::Io(e)
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Io(e) => e,
            Error::Tls(e) => tls_to_io(e),
        }
    }
}

/// Wraps a core error in an `io::Error` (recover it with `Error::from`).
fn tls_to_io(e: m2msec::Error) -> io::Error {
    let kind = match e {
        m2msec::Error::UnexpectedEof => io::ErrorKind::UnexpectedEof,
        m2msec::Error::ApiMisuse(ApiMisuse::Closed) => io::ErrorKind::BrokenPipe,
        _ => io::ErrorKind::InvalidData,
    };
    io::Error::new(kind, e)
}

/// The session plus the buffers between it and the transport (no I/O happens here).
struct Core {
    session: Session,
    epoch: std::time::Instant,
    /// Buffer lent to `poll_output`.
    scratch: Box<[u8]>,
    /// Bytes to write to the transport, from `wpos` on.
    wbuf: Vec<u8>,
    wpos: usize,
    /// Bytes from the transport the session has not taken yet, from `rpos` on.
    rbuf: Vec<u8>,
    rpos: usize,
    /// Application data from the peer not yet read by the caller, from `ppos` on.
    plain: Vec<u8>,
    ppos: usize,
    info: Option<SessionInfo>,
    psk_request: Option<(Vec<u8>, Option<String>, CipherSuite)>,
    /// A deferred certificate decision not answered yet.
    verify_request: Option<Credential>,
    peer_closed: bool,
    /// The transport ended after the peer's close_notify.
    eof: bool,
    close_sent: bool,
    failed: Option<m2msec::Error>,
}

impl Core {
    fn new(session: Session, epoch: std::time::Instant) -> Self {
        let mut core = Self {
            session,
            epoch,
            scratch: vec![0; BUF].into_boxed_slice(),
            wbuf: Vec::new(),
            wpos: 0,
            rbuf: Vec::new(),
            rpos: 0,
            plain: Vec::new(),
            ppos: 0,
            info: None,
            psk_request: None,
            verify_request: None,
            peer_closed: false,
            eof: false,
            close_sent: false,
            failed: None,
        };
        core.drain();
        core
    }

    fn now(&self) -> Now {
        Now::from_std(self.epoch)
    }

    /// Drains `poll_output` until `Wait` (the contract after every mutation); returns how
    /// many outputs there were.
    fn drain(&mut self) -> usize {
        let mut count = 0;
        loop {
            count += 1;
            match self.session.poll_output(&mut self.scratch) {
                Output::Transmit(b) => self.wbuf.extend_from_slice(b),
                Output::Event(Event::AppData(b)) => {
                    if self.ppos == self.plain.len() {
                        self.plain.clear();
                        self.ppos = 0;
                    }
                    self.plain.extend_from_slice(b);
                }
                Output::Event(Event::Connected(info)) => self.info = Some(info),
                Output::Event(Event::PskNeeded {
                    identity,
                    server_name,
                    suite,
                }) => self.psk_request = Some((identity, server_name, suite)),
                Output::Event(Event::VerifyPeer { credential }) => {
                    self.verify_request = Some(credential);
                }
                Output::Event(Event::PeerClosed) => self.peer_closed = true,
                // Events added later are not ours to act on.
                Output::Event(_) => {}
                // TLS sets no timers, so `Wait` never carries a deadline here.
                _ => break,
            }
        }
        if let Some(e) = self.session.error() {
            self.failed.get_or_insert_with(|| e.clone());
        }
        count - 1
    }

    /// Records the outcome of a mutating call and drains.
    fn after<T>(&mut self, r: Result<T, m2msec::Error>) -> Result<(T, usize), m2msec::Error> {
        let outputs = self.drain();
        if let Err(e) = &r {
            if self.session.error().is_some() {
                self.failed.get_or_insert_with(|| e.clone());
            }
        }
        r.map(|t| (t, outputs))
    }

    /// Feeds buffered transport bytes while the session takes them.
    fn feed(&mut self) -> Result<(), m2msec::Error> {
        while self.rpos < self.rbuf.len()
            && self.psk_request.is_none()
            && self.verify_request.is_none()
        {
            let now = self.now();
            let r = self.session.handle_input(now, &self.rbuf[self.rpos..]);
            let (n, outputs) = self.after(r)?;
            self.rpos += n;
            if n == 0 && outputs == 0 {
                break; // no progress without more input or a decision
            }
        }
        if self.rpos == self.rbuf.len() {
            self.rbuf.clear();
            self.rpos = 0;
        }
        Ok(())
    }

    /// Takes `n` bytes just read from the transport (0: end of stream).
    fn received(&mut self, n: usize) -> Result<(), m2msec::Error> {
        if n == 0 {
            let now = self.now();
            let r = self.session.handle_eof(now);
            self.after(r)?;
            self.eof = true;
            return Ok(());
        }
        self.rbuf.extend_from_slice(&self.scratch[..n]);
        self.feed()
    }

    fn fail_on(&mut self, r: Result<(), m2msec::Error>) {
        if let Err(e) = r {
            self.failed.get_or_insert(e);
        }
    }

    fn pending_write(&self) -> &[u8] {
        &self.wbuf[self.wpos..]
    }

    fn wrote(&mut self, n: usize) {
        self.wpos += n;
        if self.wpos == self.wbuf.len() {
            self.wbuf.clear();
            self.wpos = 0;
        }
    }
}

/// A TLS connection over the transport `S`, after a completed handshake.
///
/// Reading returns the peer's application data and end-of-stream once the peer sent
/// close_notify (a transport EOF without it is an error). [`AsyncWrite::poll_shutdown`] sends
/// close_notify, flushes and shuts the transport's write side; reading may go on until the
/// peer closes too.
pub struct TlsStream<S> {
    io: S,
    core: Core,
    info: SessionInfo,
    /// The task last blocked in a write, woken when a read borrows the transport's write side.
    write_waker: Option<Waker>,
}

impl<S> fmt::Debug for TlsStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsStream")
            .field("info", &self.info)
            .field("session", &self.core.session)
            .finish_non_exhaustive()
    }
}

fn os_seed() -> Result<[u8; 32], Error> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(|e| Error::Io(e.into()))?;
    Ok(seed)
}

/// The lookup used when the caller supplies none: every identity is unknown.
type NoLookup = fn(PskRequest) -> Ready<Option<Psk>>;

/// The type of "no deferred certificate verifier".
type NoVerify = fn(Credential) -> Ready<Result<PeerCertificateInfo, CertError>>;

/// Runs a client handshake over `io`. `server_name` is sent as SNI (a DNS name, not an IP).
pub async fn connect<S: AsyncRead + AsyncWrite + Unpin>(
    io: S,
    config: Arc<ClientConfig>,
    server_name: Option<&str>,
) -> Result<TlsStream<S>, Error> {
    let epoch = std::time::Instant::now();
    let session = Session::client(
        config,
        Transport::Tls,
        server_name,
        Now::from_std(epoch),
        os_seed()?,
    )?;
    handshake(
        io,
        Core::new(session, epoch),
        None::<NoLookup>,
        None::<NoVerify>,
    )
    .await
}

/// Runs a server handshake over `io`. A deferred key lookup (`PskLookup::Defer`) is answered
/// "unknown identity"; use [`accept_with`] to answer it.
pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
    io: S,
    config: Arc<ServerConfig>,
) -> Result<TlsStream<S>, Error> {
    accept_with_request(io, config, None::<NoLookup>).await
}

/// Like [`accept`], answering deferred key lookups (e.g. with `m2msec::config::DeferAll`) by
/// calling `lookup(identity, sni)`.
pub async fn accept_with<S, F>(
    io: S,
    config: Arc<ServerConfig>,
    mut lookup: F,
) -> Result<TlsStream<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnMut(&[u8], Option<&str>) -> Option<Psk>,
{
    let f = move |r: PskRequest| ready(lookup(&r.identity, r.server_name.as_deref()));
    accept_with_request(io, config, Some(f)).await
}

/// Like [`accept_with`], with an asynchronous lookup (e.g. a database query) given the
/// identity and the SNI host name.
pub async fn accept_with_async<S, F, Fut>(
    io: S,
    config: Arc<ServerConfig>,
    lookup: Option<F>,
) -> Result<TlsStream<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnMut(Vec<u8>, Option<String>) -> Fut,
    Fut: Future<Output = Option<Psk>>,
{
    let lookup = lookup.map(|mut f| move |r: PskRequest| f(r.identity, r.server_name));
    accept_with_request(io, config, lookup).await
}

/// Like [`accept_with_async`], the lookup given the whole [`PskRequest`]: identity, SNI and the
/// negotiated cipher suite (for keys derived per suite, e.g. GBA's NAF keys).
pub async fn accept_with_request<S, F, Fut>(
    io: S,
    config: Arc<ServerConfig>,
    lookup: Option<F>,
) -> Result<TlsStream<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnMut(PskRequest) -> Fut,
    Fut: Future<Output = Option<Psk>>,
{
    let epoch = std::time::Instant::now();
    let session = Session::server(config, Transport::Tls, Now::from_std(epoch), os_seed()?)?;
    handshake(io, Core::new(session, epoch), lookup, None::<NoVerify>).await
}

/// Like [`connect`], answering a deferred certificate decision (a `CertVerifier` that returns
/// `CertDecision::Defer`) with `verify(credential)`: e.g. a lookup of the peer in a database.
/// Without it ([`connect`], [`accept`]) a deferred decision is a refusal.
pub async fn connect_verified<S, V, VFut>(
    io: S,
    config: Arc<ClientConfig>,
    server_name: Option<&str>,
    verify: V,
) -> Result<TlsStream<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    V: FnMut(Credential) -> VFut,
    VFut: Future<Output = Result<PeerCertificateInfo, CertError>>,
{
    let epoch = std::time::Instant::now();
    let session = Session::client(
        config,
        Transport::Tls,
        server_name,
        Now::from_std(epoch),
        os_seed()?,
    )?;
    handshake(
        io,
        Core::new(session, epoch),
        None::<NoLookup>,
        Some(verify),
    )
    .await
}

/// Like [`accept_with_async`], also answering a deferred certificate decision with
/// `verify(credential)` (see [`connect_verified`]).
pub async fn accept_verified<S, F, Fut, V, VFut>(
    io: S,
    config: Arc<ServerConfig>,
    lookup: Option<F>,
    verify: V,
) -> Result<TlsStream<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnMut(Vec<u8>, Option<String>) -> Fut,
    Fut: Future<Output = Option<Psk>>,
    V: FnMut(Credential) -> VFut,
    VFut: Future<Output = Result<PeerCertificateInfo, CertError>>,
{
    let epoch = std::time::Instant::now();
    let session = Session::server(config, Transport::Tls, Now::from_std(epoch), os_seed()?)?;
    let lookup = lookup.map(|mut f| move |r: PskRequest| f(r.identity, r.server_name));
    handshake(io, Core::new(session, epoch), lookup, Some(verify)).await
}

async fn handshake<S, F, Fut, V, VFut>(
    mut io: S,
    mut core: Core,
    mut lookup: Option<F>,
    mut verify: Option<V>,
) -> Result<TlsStream<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnMut(PskRequest) -> Fut,
    Fut: Future<Output = Option<Psk>>,
    V: FnMut(Credential) -> VFut,
    VFut: Future<Output = Result<PeerCertificateInfo, CertError>>,
{
    loop {
        if !core.pending_write().is_empty() {
            let w = io.write_all(core.pending_write()).await;
            core.wbuf.clear();
            core.wpos = 0;
            if let Some(e) = core.failed.clone() {
                return Err(e.into()); // the alert went out best-effort
            }
            w?;
            io.flush().await?;
        }
        if let Some(e) = core.failed.clone() {
            return Err(e.into());
        }
        if let Some(info) = core.info.clone() {
            return Ok(TlsStream {
                io,
                core,
                info,
                write_waker: None,
            });
        }
        if core.peer_closed || core.eof {
            return Err(m2msec::Error::UnexpectedEof.into());
        }
        if let Some((identity, server_name, suite)) = core.psk_request.take() {
            let psk = match lookup.as_mut() {
                Some(f) => {
                    f(PskRequest {
                        identity,
                        server_name,
                        suite,
                        peer: None,
                    })
                    .await
                }
                None => None,
            };
            let now = core.now();
            let r = core.session.provide_psk(now, psk);
            // The bytes the session did not take while it waited go in next.
            let r = core.after(r).and_then(|_| core.feed());
            core.fail_on(r);
            continue;
        }
        if let Some(credential) = core.verify_request.take() {
            // Without a verifier for deferred decisions, a deferred credential is refused
            // rather than left waiting.
            let decision = match verify.as_mut() {
                Some(f) => f(credential).await,
                None => Err(CertError::Refused),
            };
            let now = core.now();
            let r = core.session.peer_verified(now, decision);
            let r = core.after(r).and_then(|_| core.feed());
            core.fail_on(r);
            continue;
        }
        let n = io.read(&mut core.scratch).await?;
        let r = core.received(n);
        core.fail_on(r); // reported at the top of the loop, after the alert is written
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream<S> {
    /// What the handshake established (suite, identity, hint, SNI, EMS).
    pub fn info(&self) -> &SessionInfo {
        &self.info
    }

    /// RFC 5705 keying material for `label` and an optional `context` (absent and empty differ).
    pub fn export_keying_material(
        &self,
        out: &mut [u8],
        label: &[u8],
        context: Option<&[u8]>,
    ) -> Result<(), Error> {
        Ok(self
            .core
            .session
            .export_keying_material(out, label, context)?)
    }

    /// The transport.
    pub fn get_ref(&self) -> &S {
        &self.io
    }

    /// Writes pending output to the transport. `Ready(Ok)` once it is all written.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.core.pending_write().is_empty() {
            match Pin::new(&mut self.io).poll_write(cx, self.core.pending_write()) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => self.core.wrote(n),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }

    /// `poll_write_out` for the write side: remembers the waker if it has to wait.
    fn poll_write_out_as_writer(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = self.poll_write_out(cx);
        if r.is_pending() {
            self.write_waker = Some(cx.waker().clone());
        }
        r
    }

    /// A best-effort flush (alerts, the close_notify reply), e.g. from the read side. The
    /// transport keeps one write waker, so a writer that registered before is woken to
    /// re-register.
    fn flush_best_effort(&mut self, cx: &mut Context<'_>) {
        if self.core.pending_write().is_empty() {
            return;
        }
        let _ = self.poll_write_out(cx);
        if let Some(w) = self.write_waker.take() {
            if !w.will_wake(cx.waker()) {
                w.wake();
            }
        }
    }

    /// The stored fatal error, after a best-effort flush of the alert it queued.
    fn failed(&mut self, cx: &mut Context<'_>) -> Option<io::Error> {
        let e = self.core.failed.clone()?;
        self.flush_best_effort(cx);
        Some(tls_to_io(e))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            let c = &mut this.core;
            if c.ppos < c.plain.len() {
                let n = buf.remaining().min(c.plain.len() - c.ppos);
                buf.put_slice(&c.plain[c.ppos..c.ppos + n]);
                c.ppos += n;
                return Poll::Ready(Ok(()));
            }
            if let Some(e) = this.failed(cx) {
                return Poll::Ready(Err(e));
            }
            this.flush_best_effort(cx);
            let c = &mut this.core;
            if c.peer_closed || c.eof {
                return Poll::Ready(Ok(()));
            }
            if c.rpos < c.rbuf.len() {
                let before = (c.rbuf.len() - c.rpos, c.plain.len() - c.ppos);
                let r = c.feed();
                c.fail_on(r);
                let after = (c.rbuf.len() - c.rpos, c.plain.len() - c.ppos);
                if c.failed.is_some() || before != after || c.peer_closed {
                    continue;
                }
            }
            let mut rb = ReadBuf::new(&mut this.core.scratch);
            ready!(Pin::new(&mut this.io).poll_read(cx, &mut rb))?;
            let n = rb.filled().len();
            let r = this.core.received(n);
            this.core.fail_on(r); // reported at the top of the loop
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(e) = this.failed(cx) {
            return Poll::Ready(Err(e));
        }
        // Bounded buffering: take new data only once earlier output has been written.
        ready!(this.poll_write_out_as_writer(cx))?;
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let now = this.core.now();
        let r = this.core.session.send(now, data);
        let (n, _) = this.core.after(r).map_err(tls_to_io)?;
        // Start writing now; what does not fit is written by the next call or flush.
        if this.poll_write_out_as_writer(cx).is_ready() {
            this.write_waker = None;
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(e) = this.failed(cx) {
            return Poll::Ready(Err(e));
        }
        ready!(this.poll_write_out_as_writer(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(e) = this.failed(cx) {
            return Poll::Ready(Err(e));
        }
        if !this.core.close_sent {
            let now = this.core.now();
            let r = this.core.session.close(now);
            this.core.after(r).map_err(tls_to_io)?;
            this.core.close_sent = true;
        }
        match ready!(this.poll_shutdown_io(cx)) {
            // The peer already closed and went away: our reply could not matter to it.
            Err(e) if this.core.peer_closed && is_gone(&e) => Poll::Ready(Ok(())),
            r => Poll::Ready(r),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream<S> {
    /// Writes what is pending, then flushes and shuts down the transport.
    fn poll_shutdown_io(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_write_out_as_writer(cx))?;
        ready!(Pin::new(&mut self.io).poll_flush(cx))?;
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

fn is_gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset | io::ErrorKind::NotConnected
    )
}
