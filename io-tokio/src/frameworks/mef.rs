//! The M2M Enrolment Function over TLS-PSK (TCP), and its two clients: the Enrolee's
//! [`enrol`] and the MAF's [`fetch_km`] (`docs/protocol.md`, "MEF (Mmef)").
//!
//! ```text
//!   TcpListener ──accept──▶ one task per connection:
//!     TLS-PSK handshake (KpmIDs of MefConfig + the MAFs' PSKs)
//!     PeerContext { psk_identity, EXPORTER-oneM2M-Bootstrap (48 bytes) }
//!     loop: Request::decode ─▶ MefServer::handle_request ─▶ Step::Store ─▶ AsyncKeyStore
//!                                                           Step::Respond ─▶ Response::encode
//! ```
//!
//! Every protocol and authorization decision is the core's [`MefServer`]; this module moves
//! bytes, runs the store operations the server asks for and reports [`MefEvent`]s (which never
//! carry a key: identities, procedures, status codes and error texts only).
//!
//! A request that does not parse (or exceeds the binding's limits) is answered 4000 and the
//! connection is closed. Handshakes, the arrival of each request and the writing of each
//! response are bounded by [`MefService::with_timeout`]; the connections served at once by
//! [`MefService::with_max_connections`]. An unknown PSK identity fails the handshake like a wrong
//! key (`hide_unknown_identity`), so KpmIDs cannot be probed.
//!
//! DTLS (`coaps://`): [`MefService::bind_dtls`], [`enrol_dtls`] and [`fetch_km_dtls`] carry the
//! same HTTP/1.1 bytes, one message per record; the client retransmits an unanswered request
//! with the same `X-M2M-RI` and the server answers a repeat from its per-session cache.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use m2msec::config::ClientAuth;
use m2msec::error::ConfigError;
use m2msec::frameworks::binding::{
    from_body, to_body, BindingError, EnrolmentRequest, EnrolmentResponse, ErrorBody,
    FetchCredentialsResponse, Method, Request, Response, Route, Rsc, MAX_BODY, MAX_HEAD,
};
use m2msec::frameworks::config::{EnroleeBootstrap, EntityId, Fqdn, Lifespan, MefConfig};
use m2msec::frameworks::mef::{MafDirectory, MefServer, PeerContext, Pending, Step, SUID_RSPF_MAF};
use m2msec::keys::{
    enrolment_key, IdKind, Ke, KeyId, KeyIdTable, Km, BOOTSTRAP_EXPORTER_LABEL, EXPORTER_LEN,
};
use m2msec::{
    CertificateType, CipherSuite, ClientConfig, ClientPsk, Now, Psk, ServerConfig, SessionInfo,
    UnixTime,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs, UdpSocket};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use zeroize::Zeroizing;

use super::registrar::MatchingVerifier;
use crate::store::AsyncKeyStore;
use crate::{accept, connect, connect_dtls, DtlsConnection, DtlsListener, TlsStream};

/// Default bound on a handshake and on the wait for the next request of an idle connection.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Default bound on the connections served at once.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// The MTU of DTLS sessions (fits any IPv6 path).
pub const DTLS_MTU: usize = 1232;

/// Times a DTLS client retransmits an unanswered request (`docs/protocol.md`).
pub const DTLS_RETRANSMISSIONS: u32 = 5;

/// The wait before the first retransmission; it doubles after each.
const DTLS_FIRST_RETRANSMIT: Duration = Duration::from_secs(1);

/// Receive buffer of a DTLS record's plaintext.
const DTLS_RECV_BUF: usize = 64 * 1024;

/// Bytes read from the transport at a time.
const READ_CHUNK: usize = 4096;

// ---------------------------------------------------------------------------------------------
// Errors

/// Why a [`MefService`] cannot be built from its configuration. Carries no secret.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServiceConfigError {
    /// A MAF PSK is given for an identity that is no entry of the [`MafDirectory`].
    UnknownMafIdentity(String),
    /// A [`MafDirectory`] entry has no PSK.
    MissingMafPsk(String),
    /// The same PSK identity is configured twice (two MAF PSKs, or a MAF and an Enrolee KpmID).
    DuplicateIdentity(String),
    /// The TLS engine refused the configuration.
    Tls(m2msec::Error),
}

impl fmt::Display for ServiceConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownMafIdentity(id) => {
                write!(f, "MAF PSK identity {id} is not in the MAF directory")
            }
            Self::MissingMafPsk(id) => write!(f, "MAF PSK identity {id} has no PSK"),
            Self::DuplicateIdentity(id) => write!(f, "PSK identity {id} is configured twice"),
            Self::Tls(e) => write!(f, "TLS configuration: {e}"),
        }
    }
}

impl std::error::Error for ServiceConfigError {}

/// Why an Enrolee's [`enrol`] or a MAF's [`fetch_km`] failed. Carries no secret.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientError {
    /// The TLS handshake or session failed (e.g. `AlertReceived(BadRecordMac)` for a wrong key),
    /// or the transport did.
    Transport(crate::Error),
    /// The MEF refused the request.
    Refused {
        /// The response status code.
        rsc: Rsc,
        /// The MEF's error text, if its body had one.
        error: Option<String>,
        /// The TS-0003 parameter at fault, if the MEF named one.
        parameter: Option<String>,
    },
    /// The MEF answered with a KeID other than the one this Enrolee derived.
    KeIdMismatch,
    /// The MEF answered for a MAF-ID other than the one requested.
    MafIdMismatch,
    /// The credential's lifetime has already passed.
    Expired,
    /// The response does not follow the binding.
    Malformed(String),
    /// The connection ended before a complete response.
    Closed,
    /// The caller's parameters cannot form a request (e.g. `mef_fqdn` is not a DNS name).
    BadParameter(&'static str),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Transport(e) => fmt::Display::fmt(e, f),
            Self::Refused {
                rsc,
                error,
                parameter,
            } => {
                write!(f, "MEF refused with {}", rsc.code())?;
                if let Some(e) = error {
                    write!(f, ": {e}")?;
                }
                if let Some(p) = parameter {
                    write!(f, " (parameter {p})")?;
                }
                Ok(())
            }
            Self::KeIdMismatch => f.write_str("the MEF's keID differs from the derived KeID"),
            Self::MafIdMismatch => f.write_str("the MEF answered for another MAF-ID"),
            Self::Expired => f.write_str("the credential has already expired"),
            Self::Malformed(w) => write!(f, "malformed MEF response: {w}"),
            Self::Closed => f.write_str("the MEF closed the connection before responding"),
            Self::BadParameter(p) => write!(f, "invalid parameter {p}"),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Transport(e) => Some(e),
            _ => None,
        }
    }
}

impl From<crate::Error> for ClientError {
    fn from(e: crate::Error) -> Self {
        Self::Transport(e)
    }
}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        Self::Transport(e.into())
    }
}

impl From<m2msec::Error> for ClientError {
    fn from(e: m2msec::Error) -> Self {
        Self::Transport(e.into())
    }
}

impl From<ConfigError> for ClientError {
    fn from(e: ConfigError) -> Self {
        Self::Transport(m2msec::Error::from(e).into())
    }
}

// ---------------------------------------------------------------------------------------------
// Events

/// What the service reports for the operator's log. Never carries a key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MefEvent {
    /// The listener failed to accept a connection (e.g. out of file descriptors); it retries
    /// after a pause.
    AcceptFailed {
        /// The error text.
        error: String,
    },
    /// A connection failed before or during the handshake (wrong key, unknown identity,
    /// timeout, transport error).
    HandshakeFailed {
        /// The peer's address, if known.
        peer: Option<SocketAddr>,
        /// The error text.
        error: String,
    },
    /// A request was answered.
    Answered {
        /// The PSK identity of the session.
        identity: String,
        /// The request's method and path (`None` for a request that did not parse).
        target: Option<String>,
        /// The response status code.
        rsc: u16,
    },
    /// A request was answered 5000 because of the key store; the store's error text.
    StoreFailed {
        /// The PSK identity of the session.
        identity: String,
        /// The store's error (carries no secret).
        error: String,
    },
    /// An established connection ended with an error (other than the peer going away).
    ConnectionFailed {
        /// The PSK identity of the session.
        identity: String,
        /// The error text.
        error: String,
    },
}

// ---------------------------------------------------------------------------------------------
// The service

/// The MEF: a TLS-PSK server over TCP running [`MefServer`] against an [`AsyncKeyStore`]
/// ([`RedbKeyStore`](crate::store::RedbKeyStore) in production).
///
/// The PSK table serves the Enrolees' KpmIDs (from [`MefConfig`]) and the MAFs' own PSKs:
/// `MefConfig` has no place for the latter, so [`MefService::new`] takes them with the
/// [`MafDirectory`], one per directory entry.
pub struct MefService<S> {
    server: MefServer,
    tls: Arc<ServerConfig>,
    /// The matcher of certificate Enrolees (Certificate-Based Security Bootstrap).
    certificates: Option<Arc<MatchingVerifier>>,
    store: Arc<S>,
    timeout: Duration,
    max_connections: usize,
    epoch: std::time::Instant,
    events: Option<mpsc::Sender<MefEvent>>,
}

impl<S> fmt::Debug for MefService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MefService")
            .field("mef_identifier", self.server.config().mef_identifier())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl<S: AsyncKeyStore + 'static> MefService<S> {
    /// A service for `config` and the MAFs of `mafs`, with `maf_psks` the PSK of each MAF
    /// (keyed by its directory PSK identity) and `ke_lifetime` the lifetime of each Ke.
    pub fn new(
        config: Arc<MefConfig>,
        mafs: Arc<MafDirectory>,
        maf_psks: Vec<(KeyId, Psk)>,
        ke_lifetime: Lifespan,
        store: Arc<S>,
    ) -> Result<Self, ServiceConfigError> {
        // KpmIDs and MAF identities compare by the KeyId rules (D2: the FQDN case-insensitively).
        let mut table = KeyIdTable::new();
        let mut seen: Vec<KeyId> = Vec::new();
        let mut add = |id: &KeyId, psk: Psk| {
            if seen.contains(id) || !table.insert(id.clone(), psk) {
                return Err(ServiceConfigError::DuplicateIdentity(
                    id.as_str().to_owned(),
                ));
            }
            seen.push(id.clone());
            Ok(())
        };
        for c in config.enrolees().iter().filter_map(|e| e.credential()) {
            add(c.kpm_id(), c.kpm().to_psk())?;
        }
        for (id, psk) in maf_psks {
            if mafs.by_psk_identity(id.as_bytes()).is_none() {
                return Err(ServiceConfigError::UnknownMafIdentity(
                    id.as_str().to_owned(),
                ));
            }
            add(&id, psk)?;
        }
        if let Some(missing) = mafs
            .entries()
            .iter()
            .find(|e| !seen.contains(e.psk_identity()))
        {
            return Err(ServiceConfigError::MissingMafPsk(
                missing.psk_identity().as_str().to_owned(),
            ));
        }
        // An unknown identity fails exactly like a wrong key: KpmIDs cannot be probed.
        let mut tls = ServerConfig::builder(Box::new(table)).hide_unknown_identity(true);
        let mut certificates = None;
        if let Some(own) = config.certificate() {
            // Certificate-Based Security Bootstrap (8.3.2.2): ECDHE-ECDSA next to the PSK
            // suites, the Enrolee's certificate required and matched to its configuration.
            let matcher = Arc::clone(&config);
            let verifier = Arc::new(MatchingVerifier::new(move |peer, now| {
                matcher.match_certificate_enrolee(peer, now)
            }));
            let suites: Vec<CipherSuite> = CipherSuite::ALL
                .iter()
                .chain(CipherSuite::ECDHE_ECDSA)
                .copied()
                .collect();
            tls = tls
                .suites(&suites)
                .certificate(own.certified_key().clone())
                .verifier(verifier.clone())
                .client_auth(ClientAuth::Required)
                .client_certificate_types(&[CertificateType::X509, CertificateType::RawPublicKey]);
            certificates = Some(verifier);
        }
        let tls = tls.build().map_err(|e| ServiceConfigError::Tls(e.into()))?;
        Ok(Self {
            server: MefServer::new(config, mafs, ke_lifetime),
            tls: Arc::new(tls),
            certificates,
            store,
            timeout: DEFAULT_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            epoch: std::time::Instant::now(),
            events: None,
        })
    }

    /// Bounds each handshake and each wait for a request (default [`DEFAULT_TIMEOUT`]).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Serves at most `max` connections at once (default [`DEFAULT_MAX_CONNECTIONS`]; at least
    /// one): further clients wait in the listen backlog.
    #[must_use]
    pub fn with_max_connections(mut self, max: usize) -> Self {
        self.max_connections = max.max(1);
        self
    }

    /// Reports [`MefEvent`]s to `events` (dropped, not awaited, when the channel is full).
    #[must_use]
    pub fn with_events(mut self, events: mpsc::Sender<MefEvent>) -> Self {
        self.events = Some(events);
        self
    }

    /// The sans-IO server this service runs.
    #[must_use]
    pub fn server(&self) -> &MefServer {
        &self.server
    }

    /// Binds `addr` and serves in a background task; see [`ServiceHandle`].
    pub async fn bind(self, addr: impl ToSocketAddrs) -> io::Result<ServiceHandle> {
        let listener = TcpListener::bind(addr).await?;
        Ok(self.spawn(listener))
    }

    /// Serves `listener` in a background task; see [`ServiceHandle`].
    pub fn spawn(self, listener: TcpListener) -> ServiceHandle {
        let local_addr = listener.local_addr().ok();
        let this = Arc::new(self);
        ServiceHandle::spawn(local_addr, move |stop| this.serve(listener, stop))
    }

    /// Accepts connections from `listener` until `stop` turns true (or its sender is dropped),
    /// each in its own task; then ends those tasks and returns.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        stop: watch::Receiver<bool>,
    ) -> io::Result<()> {
        let max = self.max_connections;
        let this = Arc::clone(&self);
        let serve = move |tcp, peer| {
            let this = Arc::clone(&this);
            async move { this.serve_tcp(tcp, peer).await }
        };
        let failed = |e: &io::Error| {
            self.emit(MefEvent::AcceptFailed {
                error: e.to_string(),
            })
        };
        super::serve::tcp(listener, stop, max, serve, failed).await
    }

    /// Binds a DTLS listener (`coaps://`) on `addr` and serves in a background task; see
    /// [`ServiceHandle`].
    pub async fn bind_dtls(self, addr: impl ToSocketAddrs) -> Result<ServiceHandle, crate::Error> {
        let listener = DtlsListener::bind(addr, Arc::clone(&self.tls), DTLS_MTU).await?;
        Ok(self.spawn_dtls(listener))
    }

    /// Serves the DTLS `listener` in a background task; see [`ServiceHandle`].
    pub fn spawn_dtls(self, listener: DtlsListener) -> ServiceHandle {
        let local_addr = Some(listener.local_addr());
        let this = Arc::new(self);
        ServiceHandle::spawn(local_addr, move |stop| this.serve_dtls(listener, stop))
    }

    /// Like [`serve`](Self::serve), over DTLS: one request per record, and a repeated
    /// `X-M2M-RI` answered from the session's cache of its last response (`docs/protocol.md`).
    pub async fn serve_dtls(
        self: Arc<Self>,
        listener: DtlsListener,
        stop: watch::Receiver<bool>,
    ) -> io::Result<()> {
        let max = self.max_connections;
        let this = Arc::clone(&self);
        let serve = move |conn| {
            let this = Arc::clone(&this);
            async move { this.serve_dtls_connection(conn).await }
        };
        let failed = |peer, error: crate::Error, _: Option<Vec<u8>>| {
            self.emit(MefEvent::HandshakeFailed {
                peer: Some(peer),
                error: error.to_string(),
            });
        };
        super::serve::dtls(listener, stop, max, serve, failed).await
    }

    /// The session's authenticated peer: its PSK identity, or for an ECDHE-ECDSA session the
    /// certificate Enrolee its verified certificate matched (the identity logged is then
    /// `cert:<Enrolee-ID>`). A certificate no longer matched gets an empty context, which every
    /// procedure refuses.
    fn peer_of(&self, info: &SessionInfo) -> (PeerContext, String) {
        if !info.suite.is_ecdhe_ecdsa() {
            let identity = String::from_utf8_lossy(&info.psk_identity).into_owned();
            return (PeerContext::new(&info.psk_identity), identity);
        }
        let index = info
            .peer_certificate
            .as_ref()
            .zip(self.certificates.as_ref())
            .and_then(|(p, v)| v.take(p));
        let enrolee = index.and_then(|i| self.server.config().enrolees().get(i).map(|e| (i, e)));
        match enrolee {
            Some((i, e)) => (
                PeerContext::certificate_enrolee(i),
                format!("cert:{}", e.instruction().enrolee_id()),
            ),
            None => (PeerContext::new(&[]), "cert:-".to_owned()),
        }
    }

    async fn serve_dtls_connection(&self, conn: DtlsConnection) {
        let (peer, identity) = self.peer_of(conn.info());
        tracing::info!(
            transport = "DTLS",
            peer = %conn.peer_addr(),
            psk_identity = %identity,
            "MEF handshake completed"
        );
        if let Err(e) = self.dtls_requests(&conn, peer, &identity).await {
            self.emit(MefEvent::ConnectionFailed {
                identity,
                error: e.to_string(),
            });
        }
    }

    async fn dtls_requests(
        &self,
        conn: &DtlsConnection,
        peer: PeerContext,
        identity: &str,
    ) -> Result<(), crate::Error> {
        let mut exported = Zeroizing::new([0u8; EXPORTER_LEN]);
        conn.export_keying_material(exported.as_mut(), BOOTSTRAP_EXPORTER_LABEL, None)?;
        let peer = peer.with_exporter(&exported);
        drop(exported);
        let on_malformed = || {
            self.emit(MefEvent::Answered {
                identity: identity.to_owned(),
                target: None,
                rsc: Rsc::BadRequest.code(),
            });
        };
        let peer = &peer;
        serve_dtls_records(conn, self.timeout, on_malformed, move |req| async move {
            self.answer(peer, &req, identity).await
        })
        .await
    }

    async fn serve_tcp(&self, tcp: TcpStream, peer: SocketAddr) {
        let _ = tcp.set_nodelay(true);
        self.serve_connection(tcp, Some(peer)).await;
    }

    /// Serves one connection over `io`: the handshake, then requests until the peer closes,
    /// a malformed request, a timeout or an error. Outcomes are reported as [`MefEvent`]s.
    pub async fn serve_connection<IO>(&self, io: IO, peer: Option<SocketAddr>)
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let tls = match tokio::time::timeout(self.timeout, accept(io, Arc::clone(&self.tls))).await
        {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                self.emit(MefEvent::HandshakeFailed {
                    peer,
                    error: e.to_string(),
                });
                return;
            }
            Err(_) => {
                self.emit(MefEvent::HandshakeFailed {
                    peer,
                    error: "handshake timed out".to_owned(),
                });
                return;
            }
        };
        let (peer_context, identity) = self.peer_of(tls.info());
        tracing::info!(
            transport = "TLS",
            peer = ?peer,
            psk_identity = %identity,
            "MEF handshake completed"
        );
        if let Err(e) = self.requests(tls, peer_context, &identity).await {
            if !is_gone(&e) {
                self.emit(MefEvent::ConnectionFailed {
                    identity,
                    error: e.to_string(),
                });
            }
        }
    }

    async fn requests<IO>(
        &self,
        mut tls: TlsStream<IO>,
        peer: PeerContext,
        identity: &str,
    ) -> io::Result<()>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let mut exported = Zeroizing::new([0u8; EXPORTER_LEN]);
        tls.export_keying_material(exported.as_mut(), BOOTSTRAP_EXPORTER_LABEL, None)?;
        let peer = peer.with_exporter(&exported);
        drop(exported);
        let mut buf = Zeroizing::new(Vec::with_capacity(READ_CHUNK));
        let mut out = Zeroizing::new(Vec::new());
        // The next request must arrive whole within the timeout (no trickling bytes in forever).
        let mut deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            match Request::decode(&buf) {
                Ok(Some((req, used))) => {
                    buf.drain(..used);
                    let response = self.answer(&peer, &req, identity).await;
                    out.clear();
                    if response.encode(&mut out).is_err() {
                        // Only a request id with forbidden bytes gets here (the decoder refuses
                        // them, so this is a defect): answer without echoing it.
                        out.clear();
                        malformed("unencodable response").encode(&mut out).ok();
                    }
                    self.write_out(&mut tls, &out).await?;
                    deadline = tokio::time::Instant::now() + self.timeout;
                }
                Ok(None) => {
                    let mut chunk = Zeroizing::new([0u8; READ_CHUNK]);
                    let read = tokio::time::timeout_at(deadline, tls.read(chunk.as_mut())).await;
                    let n = match read {
                        Ok(r) => r?,
                        Err(_) => {
                            // Idle or too slow: close (best effort).
                            let _ = tls.shutdown().await;
                            return Ok(());
                        }
                    };
                    if n == 0 {
                        // The peer closed (after a partial request, if buf is not empty).
                        let _ = tls.shutdown().await;
                        return Ok(());
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if buf.len() > MAX_HEAD + MAX_BODY {
                        return self.refuse(&mut tls, identity, "message too large").await;
                    }
                }
                Err(e) => {
                    let what = match e {
                        BindingError::TooLarge => "message too large",
                        BindingError::MissingHeader(_) => "missing header",
                        _ => "malformed request",
                    };
                    return self.refuse(&mut tls, identity, what).await;
                }
            }
        }
    }

    /// Answers 4000 and closes the connection.
    async fn refuse<IO>(
        &self,
        tls: &mut TlsStream<IO>,
        identity: &str,
        what: &'static str,
    ) -> io::Result<()>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let mut out = Vec::new();
        malformed(what).encode(&mut out).ok();
        self.emit(MefEvent::Answered {
            identity: identity.to_owned(),
            target: None,
            rsc: Rsc::BadRequest.code(),
        });
        self.write_out(tls, &out).await?;
        tls.shutdown().await
    }

    /// Writes and flushes `out` within the timeout (a client that does not read is dropped).
    async fn write_out<IO>(&self, tls: &mut TlsStream<IO>, out: &[u8]) -> io::Result<()>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let write = async {
            tls.write_all(out).await?;
            tls.flush().await
        };
        tokio::time::timeout(self.timeout, write)
            .await
            .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
    }

    /// Runs one request to its response, executing the store steps.
    async fn answer(&self, peer: &PeerContext, req: &Request, identity: &str) -> Response {
        let mut step = self.server.handle_request(self.now(), peer, req);
        let response = loop {
            match step {
                Ok(Step::Respond(r)) => break r,
                Err(e) => {
                    if let Some(s) = e.store_error() {
                        self.emit(MefEvent::StoreFailed {
                            identity: identity.to_owned(),
                            error: s.to_string(),
                        });
                    }
                    break e.into_response();
                }
                Ok(Step::Store(p)) => {
                    let result = self.store.execute(p.op().clone()).await;
                    step = p.resume(self.now(), result);
                }
            }
        };
        log_refusal("MEF", identity, &req.path, &response);
        self.emit(MefEvent::Answered {
            identity: identity.to_owned(),
            target: Some(format!("{:?} {}", req.method, req.path)),
            rsc: response.rsc.code(),
        });
        response
    }

    fn now(&self) -> Now {
        Now::from_std(self.epoch)
    }

    fn emit(&self, event: MefEvent) {
        log_event(&event);
        if let Some(tx) = &self.events {
            let _ = tx.try_send(event);
        }
    }
}

/// A running [`MefService`] or [`MafService`](super::maf::MafService): its address, and the
/// way to stop it.
///
/// Dropping the handle stops the service too (the accept loop sees its stop signal close), but
/// only [`ServiceHandle::shutdown`] waits until every connection task, and with them every clone
/// of the store, is gone.
#[derive(Debug)]
pub struct ServiceHandle {
    local_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    task: JoinHandle<io::Result<()>>,
}

/// The handle of a running [`MefService`] (the name before the MAF shared it).
pub type MefHandle = ServiceHandle;

impl ServiceHandle {
    /// Spawns `serve(stop)` with a fresh stop signal.
    pub(crate) fn spawn<F, Fut>(local_addr: Option<SocketAddr>, serve: F) -> Self
    where
        F: FnOnce(watch::Receiver<bool>) -> Fut,
        Fut: Future<Output = io::Result<()>> + Send + 'static,
    {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(serve(stopped));
        Self {
            local_addr,
            stop,
            task,
        }
    }

    /// The address the service listens on.
    #[must_use]
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// Stops accepting, ends every connection and waits until the service is gone.
    pub async fn shutdown(self) -> io::Result<()> {
        let _ = self.stop.send(true);
        match self.task.await {
            Ok(r) => r,
            Err(e) => Err(io::Error::other(e)),
        }
    }
}

fn malformed(what: &'static str) -> Response {
    let body = to_body(&ErrorBody {
        error: what.to_owned(),
        parameter: None,
    })
    .unwrap_or_default();
    Response {
        rsc: Rsc::BadRequest,
        request_id: "-".to_owned(),
        body,
    }
}

/// Serves the requests of one DTLS session: one request per record, each answered by
/// `answer`; a repeated `X-M2M-RI` is answered from the cache of the last response without
/// running the procedure again; a record that is not exactly one request is answered 4000 (after
/// `on_malformed`) and the session closed; an idle session (no record within `timeout`) is
/// closed.
pub(crate) async fn serve_dtls_records<M, A, Fut>(
    conn: &DtlsConnection,
    timeout: Duration,
    on_malformed: M,
    mut answer: A,
) -> Result<(), crate::Error>
where
    M: FnOnce(),
    A: FnMut(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    let mut buf = Zeroizing::new(vec![0u8; DTLS_RECV_BUF]);
    let mut last: Option<(String, Zeroizing<Vec<u8>>)> = None;
    loop {
        let Ok(n) = tokio::time::timeout(timeout, conn.recv(&mut buf)).await else {
            // Idle: close (best effort).
            let _ = conn.close().await;
            return Ok(());
        };
        let n = n?;
        if n == 0 {
            let _ = conn.close().await;
            return Ok(());
        }
        let req = match Request::decode(&buf[..n]) {
            Ok(Some((req, used))) if used == n => req,
            _ => {
                // Not exactly one whole request in the record.
                let mut out = Vec::new();
                malformed("malformed request").encode(&mut out).ok();
                on_malformed();
                conn.send(&out).await?;
                let _ = conn.close().await;
                return Ok(());
            }
        };
        if let Some((rid, out)) = &last {
            if *rid == req.request_id {
                // A retransmission: the same answer, without running the procedure again.
                tracing::debug!(request_id = %rid, "DTLS retransmission answered from the cache");
                conn.send(out).await?;
                continue;
            }
        }
        let request_id = req.request_id.clone();
        let response = answer(req).await;
        let mut out = Zeroizing::new(Vec::new());
        if response.encode(&mut out).is_err() {
            out.clear();
            malformed("unencodable response").encode(&mut out).ok();
        }
        conn.send(&out).await?;
        last = Some((request_id, out));
    }
}

/// The tracing line of a [`MefEvent`] (identities, procedures, status codes and error texts: no
/// key material).
fn log_event(event: &MefEvent) {
    match event {
        MefEvent::AcceptFailed { error } => tracing::warn!(%error, "MEF accept failed"),
        MefEvent::HandshakeFailed { peer, error } => {
            tracing::warn!(peer = ?peer, %error, "MEF handshake failed");
        }
        MefEvent::Answered {
            identity,
            target,
            rsc,
        } => tracing::info!(
            psk_identity = %identity,
            target = target.as_deref().unwrap_or("-"),
            rsc,
            "MEF answered"
        ),
        MefEvent::StoreFailed { identity, error } => {
            tracing::warn!(psk_identity = %identity, %error, "MEF key store failed");
        }
        MefEvent::ConnectionFailed { identity, error } => {
            tracing::warn!(psk_identity = %identity, %error, "MEF connection failed");
        }
    }
}

/// Logs a refusal (a response that is not a success) with its status code, error text and the
/// parameter at fault; error bodies carry no key material.
pub(crate) fn log_refusal(service: &'static str, identity: &str, path: &str, response: &Response) {
    if response.rsc.is_success() {
        return;
    }
    let body: Option<ErrorBody> = from_body(&response.body).ok();
    tracing::warn!(
        service,
        psk_identity = %identity,
        path,
        rsc = response.rsc.code(),
        error = body.as_ref().map_or("-", |b| b.error.as_str()),
        parameter = body.as_ref().and_then(|b| b.parameter.as_deref()).unwrap_or("-"),
        "request refused"
    );
}

fn is_gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::NotConnected
            | io::ErrorKind::UnexpectedEof
    )
}

// ---------------------------------------------------------------------------------------------
// Clients

/// What a successful Enrolment gives the Enrolee: Ke and KeID to store, the MAF to go to and
/// when Ke expires. `Debug` redacts Ke.
#[derive(Debug, Clone)]
pub struct Enrolment {
    /// KeID = HEX(RelativeKeID)@MEF-FQDN, as derived and as the MEF confirmed.
    pub ke_id: KeyId,
    /// The Enrolment Key.
    pub ke: Ke,
    /// The MAF-ID the MEF provisioned the Enrolee for.
    pub maf_id: String,
    /// Where that MAF listens.
    pub maf_uri: String,
    /// When Ke expires.
    pub expires: UnixTime,
    /// The cipher suite of the Bootstrap Security Handshake.
    pub suite: CipherSuite,
}

/// What a successful fetchCredentials gives the MAF. `Debug` redacts Km.
#[derive(Debug, Clone)]
pub struct FetchedKm {
    /// The Master Credential Km = HMAC-SHA-256(Ke, label || MAF-ID).
    pub km: Km,
    /// The Enrolee the credential belongs to.
    pub enrolee_id: String,
    /// When Km expires (the Ke's expiry).
    pub expires: UnixTime,
}

/// The Enrolee's Security Bootstrap over TLS (draft 8.3.2.1): connects to `addr`, runs TLS-PSK
/// with the KpmID/Kpm of `bootstrap` (`sni` as server name), derives (KeID, Ke) from the
/// `EXPORTER-oneM2M-Bootstrap` output and `mef_fqdn` (the MEF's `mefIdentifier`), asks for
/// the instruction's MAF-ID with `POST /mef/enrolment` and checks the MEF's `keID` is its own.
///
/// The caller stores the returned Ke/KeID.
pub async fn enrol(
    addr: impl ToSocketAddrs,
    bootstrap: &EnroleeBootstrap,
    mef_fqdn: &str,
    sni: Option<&str>,
) -> Result<Enrolment, ClientError> {
    let tcp = TcpStream::connect(addr).await?;
    let _ = tcp.set_nodelay(true);
    enrol_over(tcp, bootstrap, mef_fqdn, sni).await
}

/// [`enrol`] over an already connected transport.
pub async fn enrol_over<IO>(
    io: IO,
    bootstrap: &EnroleeBootstrap,
    mef_fqdn: &str,
    sni: Option<&str>,
) -> Result<Enrolment, ClientError>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let config = enrolee_config(bootstrap, mef_fqdn)?;
    let mut tls = connect(io, config, sni).await?;
    let mut exported = Zeroizing::new([0u8; EXPORTER_LEN]);
    tls.export_keying_material(exported.as_mut(), BOOTSTRAP_EXPORTER_LABEL, None)?;
    let (ke_id, ke) = enrolment_key(&exported, mef_fqdn)
        .map_err(|_| ClientError::BadParameter("mefIdentifier"))?;
    drop(exported);
    let req = enrolment_request(bootstrap)?;
    let response = exchange(&mut tls, &req).await?;
    let _ = tls.shutdown().await;
    enrolment_result(bootstrap, ke_id, ke, &response, tls.info().suite)
}

/// [`enrol`] over DTLS (`coaps://`): one request per record, retransmitted with the same
/// `X-M2M-RI` after 1 s, doubling, up to 5 times (`docs/protocol.md`).
pub async fn enrol_dtls(
    addr: SocketAddr,
    bootstrap: &EnroleeBootstrap,
    mef_fqdn: &str,
    sni: Option<&str>,
) -> Result<Enrolment, ClientError> {
    let config = enrolee_config(bootstrap, mef_fqdn)?;
    let conn = dtls_connect(addr, config, sni).await?;
    let mut exported = Zeroizing::new([0u8; EXPORTER_LEN]);
    conn.export_keying_material(exported.as_mut(), BOOTSTRAP_EXPORTER_LABEL, None)?;
    let (ke_id, ke) = enrolment_key(&exported, mef_fqdn)
        .map_err(|_| ClientError::BadParameter("mefIdentifier"))?;
    drop(exported);
    let req = enrolment_request(bootstrap)?;
    let response = exchange_dtls(&conn, &req).await?;
    let _ = conn.close().await;
    enrolment_result(bootstrap, ke_id, ke, &response, conn.info().suite)
}

fn enrolee_config(
    bootstrap: &EnroleeBootstrap,
    mef_fqdn: &str,
) -> Result<Arc<ClientConfig>, ClientError> {
    Fqdn::new(mef_fqdn).map_err(|_| ClientError::BadParameter("mefIdentifier"))?;
    if let Some(cred) = bootstrap.credential() {
        let psk = ClientPsk::new(cred.kpm_id().as_bytes(), cred.kpm().to_psk())?;
        return Ok(Arc::new(ClientConfig::builder(psk).build()?));
    }
    // Certificate-Based Security Bootstrap (8.3.2.2): the Enrolee's certificate, the MEF
    // checked against its configured Certificate Name and Root of Trust.
    let (own, mef) = bootstrap
        .certificate_credential()
        .ok_or(ClientError::BadParameter("bootstrap.credential"))?;
    Ok(Arc::new(
        ClientConfig::builder_with_verifier(Arc::new(mef.verifier()))
            .certificate(own.certified_key().clone())
            .server_certificate_types(&[CertificateType::X509, CertificateType::RawPublicKey])
            .build()?,
    ))
}

fn enrolment_request(bootstrap: &EnroleeBootstrap) -> Result<Request, ClientError> {
    let instruction = bootstrap.instruction();
    let (method, path) = Route::Enrolment.target();
    let body = to_body(&EnrolmentRequest {
        enrolee_id: instruction.enrolee_id().as_str().to_owned(),
        maf_id: instruction.maf_id().as_str().to_owned(),
    })
    .map_err(|e| ClientError::Malformed(e.to_string()))?;
    Ok(Request {
        method,
        path,
        origin: instruction.enrolee_id().as_str().to_owned(),
        request_id: request_id()?,
        body,
    })
}

fn enrolment_result(
    bootstrap: &EnroleeBootstrap,
    ke_id: KeyId,
    ke: Ke,
    response: &Response,
    suite: CipherSuite,
) -> Result<Enrolment, ClientError> {
    if response.rsc != Rsc::Created {
        return Err(refused(response));
    }
    let body: EnrolmentResponse =
        from_body(&response.body).map_err(|e| ClientError::Malformed(e.to_string()))?;
    let theirs = KeyId::parse(IdKind::Ke, &body.ke_id).map_err(|_| ClientError::KeIdMismatch)?;
    if theirs != ke_id {
        return Err(ClientError::KeIdMismatch);
    }
    let maf = Fqdn::new(&body.maf_id).map_err(|_| ClientError::MafIdMismatch)?;
    if maf != *bootstrap.instruction().maf_id() {
        return Err(ClientError::MafIdMismatch);
    }
    if body.expiration_time <= unix_now().0 {
        return Err(ClientError::Expired);
    }
    Ok(Enrolment {
        ke_id,
        ke,
        maf_id: body.maf_id,
        maf_uri: body.maf_uri,
        expires: UnixTime(body.expiration_time),
        suite,
    })
}

/// The MAF's fetchCredentials over TLS (draft 8.3.1, D13): connects to `addr` with its own
/// PSK `psk` (identity as in the MEF's [`MafDirectory`]), sends
/// `GET /mef/fetchCredentials/<ke_id>/21` as originator `maf_id` and returns the Km the MEF
/// released.
pub async fn fetch_km(
    addr: impl ToSocketAddrs,
    psk: ClientPsk,
    ke_id: &KeyId,
    maf_id: &str,
    sni: Option<&str>,
) -> Result<FetchedKm, ClientError> {
    let tcp = TcpStream::connect(addr).await?;
    let _ = tcp.set_nodelay(true);
    fetch_km_over(tcp, psk, ke_id, maf_id, sni).await
}

/// [`fetch_km`] over an already connected transport.
pub async fn fetch_km_over<IO>(
    io: IO,
    psk: ClientPsk,
    ke_id: &KeyId,
    maf_id: &str,
    sni: Option<&str>,
) -> Result<FetchedKm, ClientError>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let config = Arc::new(ClientConfig::builder(psk).build()?);
    let mut tls = connect(io, config, sni).await?;
    let req = fetch_request(ke_id, maf_id)?;
    let response = exchange(&mut tls, &req).await?;
    let _ = tls.shutdown().await;
    fetch_result(&response)
}

/// [`fetch_km`] over DTLS, retransmitting as [`enrol_dtls`] does.
pub async fn fetch_km_dtls(
    addr: SocketAddr,
    psk: ClientPsk,
    ke_id: &KeyId,
    maf_id: &str,
    sni: Option<&str>,
) -> Result<FetchedKm, ClientError> {
    let config = Arc::new(ClientConfig::builder(psk).build()?);
    let conn = dtls_connect(addr, config, sni).await?;
    let req = fetch_request(ke_id, maf_id)?;
    let response = exchange_dtls(&conn, &req).await?;
    let _ = conn.close().await;
    fetch_result(&response)
}

pub(crate) fn fetch_request(ke_id: &KeyId, maf_id: &str) -> Result<Request, ClientError> {
    let (method, path) = Route::FetchCredentials {
        ke_id: ke_id.as_str().to_owned(),
        suid: SUID_RSPF_MAF,
    }
    .target();
    debug_assert_eq!(method, Method::Get);
    Ok(Request {
        method,
        path,
        origin: maf_id.to_owned(),
        request_id: request_id()?,
        body: Zeroizing::new(Vec::new()),
    })
}

/// The MAF's fetchCredentials over `transport` to the MEF at `addr`: the MEF's raw response,
/// for the caller to judge (the MAF builds its record with
/// [`MafServer::km_record_from_mef`](m2msec::frameworks::maf::MafServer::km_record_from_mef)).
pub(crate) async fn fetch_response(
    addr: SocketAddr,
    transport: super::Transport,
    psk: ClientPsk,
    ke_id: &KeyId,
    maf_id: &str,
    sni: Option<&str>,
) -> Result<Response, ClientError> {
    let config = Arc::new(ClientConfig::builder(psk).build()?);
    let req = fetch_request(ke_id, maf_id)?;
    match transport {
        super::Transport::Tls => {
            let tcp = TcpStream::connect(addr).await?;
            let _ = tcp.set_nodelay(true);
            let mut tls = connect(tcp, config, sni).await?;
            let response = exchange(&mut tls, &req).await?;
            let _ = tls.shutdown().await;
            Ok(response)
        }
        super::Transport::Dtls => {
            let conn = dtls_connect(addr, config, sni).await?;
            let response = exchange_dtls(&conn, &req).await?;
            let _ = conn.close().await;
            Ok(response)
        }
    }
}

fn fetch_result(response: &Response) -> Result<FetchedKm, ClientError> {
    if response.rsc != Rsc::Ok {
        return Err(refused(response));
    }
    let body: FetchCredentialsResponse =
        from_body(&response.body).map_err(|e| ClientError::Malformed(e.to_string()))?;
    let (true, Some(km), Some(enrolee_id), Some(lifetime)) =
        (body.status, body.credential, body.enrolee_id, body.lifetime)
    else {
        return Err(ClientError::Malformed(
            "fetchCredentials response without status, credential, enroleeID and lifetime".into(),
        ));
    };
    EntityId::new(&enrolee_id).map_err(|_| ClientError::Malformed("enroleeID".into()))?;
    if lifetime <= unix_now().0 {
        return Err(ClientError::Expired);
    }
    Ok(FetchedKm {
        km: Km::new(km.0),
        enrolee_id,
        expires: UnixTime(lifetime),
    })
}

pub(crate) async fn dtls_connect(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    sni: Option<&str>,
) -> Result<DtlsConnection, ClientError> {
    let local: SocketAddr = if addr.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(addr).await?;
    Ok(connect_dtls(socket, config, sni, DTLS_MTU).await?)
}

/// Sends `req` as one record and waits for its response, retransmitting the same bytes after
/// 1 s, 2 s, 4 s, ... up to [`DTLS_RETRANSMISSIONS`] times.
pub(crate) async fn exchange_dtls(
    conn: &DtlsConnection,
    req: &Request,
) -> Result<Response, ClientError> {
    let mut out = Zeroizing::new(Vec::new());
    req.encode(&mut out)
        .map_err(|e| ClientError::Malformed(e.to_string()))?;
    let mut buf = Zeroizing::new(vec![0u8; DTLS_RECV_BUF]);
    let mut wait = DTLS_FIRST_RETRANSMIT;
    for attempt in 0..=DTLS_RETRANSMISSIONS {
        conn.send(&out).await?;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let n = match tokio::time::timeout_at(deadline, conn.recv(&mut buf)).await {
                Ok(r) => r?,
                Err(_) => break,
            };
            if n == 0 {
                return Err(ClientError::Closed);
            }
            match Response::decode(&buf[..n]) {
                Ok(Some((response, _))) if response.request_id == req.request_id => {
                    return Ok(response)
                }
                Ok(Some((response, _))) if response.request_id == "-" => return Ok(response),
                // A late answer to an earlier request, or noise: keep waiting.
                Ok(Some(_)) => {}
                Ok(None) => return Err(ClientError::Malformed("truncated response".into())),
                Err(e) => return Err(ClientError::Malformed(e.to_string())),
            }
        }
        if attempt < DTLS_RETRANSMISSIONS {
            wait *= 2;
        }
    }
    Err(ClientError::Transport(crate::Error::Io(
        io::ErrorKind::TimedOut.into(),
    )))
}

/// Sends `req` and reads one response (also the BSF's Zn client's exchange).
pub(crate) async fn exchange<IO>(
    tls: &mut TlsStream<IO>,
    req: &Request,
) -> Result<Response, ClientError>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let mut out = Zeroizing::new(Vec::new());
    req.encode(&mut out)
        .map_err(|e| ClientError::Malformed(e.to_string()))?;
    tls.write_all(&out).await?;
    tls.flush().await?;
    let mut buf = Zeroizing::new(Vec::with_capacity(READ_CHUNK));
    let mut chunk = Zeroizing::new([0u8; READ_CHUNK]);
    loop {
        match Response::decode(&buf) {
            Ok(Some((response, _))) => {
                if response.request_id != req.request_id && response.request_id != "-" {
                    return Err(ClientError::Malformed("X-M2M-RI not echoed".into()));
                }
                return Ok(response);
            }
            Ok(None) => {}
            Err(e) => return Err(ClientError::Malformed(e.to_string())),
        }
        let n = tls.read(chunk.as_mut()).await?;
        if n == 0 {
            return Err(ClientError::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_HEAD + MAX_BODY {
            return Err(ClientError::Malformed("response too large".into()));
        }
    }
}

fn refused(response: &Response) -> ClientError {
    let body: Option<ErrorBody> = from_body(&response.body).ok();
    ClientError::Refused {
        rsc: response.rsc,
        error: body.as_ref().map(|b| b.error.clone()),
        parameter: body.and_then(|b| b.parameter),
    }
}

fn request_id() -> Result<String, ClientError> {
    let mut r = [0u8; 8];
    getrandom::getrandom(&mut r).map_err(|e| ClientError::from(io::Error::from(e)))?;
    Ok(hex::encode(r))
}

fn unix_now() -> UnixTime {
    Now::from_std(std::time::Instant::now()).unix
}
