//! The MAF over TLS-PSK (TCP) and DTLS-PSK (UDP) (`docs/protocol.md`, "MAF (Mmaf)" and
//! "Registrar"): the [`MafService`] around the sans-IO [`MafServer`], first contact after a
//! bootstrap against a real MEF ([`mef_fetch_km`]), and the client helpers of Entity A / Entity
//! B / the Enrolee: [`register_key`], [`retrieve_key`], [`register_client`] and their
//! `_via(addr, Transport, ...)` variants.
//!
//! ```text
//!  Entity A ──TLS-PSK(KmID|KeID)──▶ MafService ──POST /maf/keyRegistration──▶ Kc stored
//!  Enrolee  ──TLS-PSK(KeID)──▶ MafService ── deferred lookup: Km stored? else mef_fetch_km
//!                                (GET /mef/fetchCredentials/<KeID>/21 at the MEF) ─▶ Km stored
//!           ──POST /maf/clientRegistration──▶ KmID assigned; later sessions use the KmID
//!  Entity A ──TLS-PSK(KcID@MAF, Kc)──▶ Registrar ── deferred lookup ──▶ retrieve_key (B's MAF
//!                                                 session) ──▶ psk = Kc, bound to IdA
//! ```
//!
//! The adapter only moves bytes and runs key-store operations: every decision (who asks, what
//! may be registered or released) is [`MafServer`]'s. [`MafService::bind`] /
//! [`MafService::bind_dtls`] run it in the background behind a [`ServiceHandle`]; handshakes and
//! idle connections are bounded by [`MafService::with_timeout`] /
//! [`MafService::with_idle_timeout`], the connections served at once by
//! [`MafService::with_max_connections`].
//!
//! **DTLS and the key lookup.** [`MafService::bind_dtls`] builds its [`DtlsListener`] with an
//! asynchronous key lookup ([`MafService::dtls_lookup`], for
//! [`DtlsListener::bind_with_lookup`]): the handshake suspends on the client's identity exactly
//! as over TLS (configured KmID, Km record in the store, first contact at the MEF), so the MAF
//! answers `unknown_psk_identity` only once that lookup has failed. The
//! `_via(.., Transport::Dtls, ..)` clients therefore fail at once on a refused handshake, as
//! over TLS; they do not retry it.
//!
//! Logs (`tracing`): handshakes completed (transport, peer, PSK identity), requests answered
//! (target, status), refusals (status, error text, parameter), handshake failures. Never key
//! material or exporter output.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use m2msec::config::DeferAll;
use m2msec::frameworks::binding::{
    from_body, to_body, BindingError, ClientRegistrationRequest, ClientRegistrationResponse,
    ErrorBody, KeyRegistrationRequest, KeyRegistrationResponse, KeyRetrievalResponse, Request,
    Response, Route, Rsc, MAX_BODY, MAX_HEAD,
};
use m2msec::frameworks::config::{Lifespan, MafConfig};
use m2msec::frameworks::maf::{MafServer, SUID_MAF_SAEF};
use m2msec::frameworks::mef::{PeerContext, Pending, Step};
use m2msec::gba::kdf::{parse_psk_identity, BTid, GbaKdfError, GbaPrefix, NafId};
use m2msec::keys::{
    connection_key, IdKind, Kc, KeyId, Km, RelativeId, CONNECTION_EXPORTER_LABEL, EXPORTER_LEN,
};
use m2msec::store::{store_id, KeyKind, KeyRecord, KeySecret};
use m2msec::{CipherSuite, ClientConfig, ClientPsk, Now, Psk, ServerConfig};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::sync::watch;
use zeroize::Zeroizing;

use super::bsf::{zn_fetch, ZnFlavor};
pub use super::mef::ServiceHandle;
use super::mef::{
    dtls_connect, exchange_dtls, fetch_response, log_refusal, serve_dtls_records, ClientError,
    DEFAULT_MAX_CONNECTIONS, DTLS_MTU,
};
use super::Transport;
use crate::store::AsyncKeyStore;
use crate::{
    accept_with_async, connect, AsyncPskLookup, DtlsConnection, DtlsListener, DtlsListenerOptions,
    Error, PskLookupFuture, TlsStream,
};

/// The future a [`FetchKm`] returns.
pub type FetchKmFuture = Pin<Box<dyn Future<Output = Option<(Km, KeyRecord)>> + Send>>;

/// First contact after a bootstrap (D13): given the KeID a client authenticates with, the Km
/// its MEF releases and the record to store (as [`MafServer::km_record_from_mef`] builds it), or
/// `None` if the MEF refused. The real one calls the MEF
/// ([`MafServer::fetch_credentials_request`]); tests derive Km from a known Ke.
pub type FetchKm = Arc<dyn Fn(KeyId) -> FetchKmFuture + Send + Sync>;

/// The current time from the system clocks (the monotonic part is unused here).
pub(crate) fn now() -> Now {
    Now::from_std(std::time::Instant::now())
}

/// How long a peer may take to complete the handshake (the key lookup included).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a MAF connection may stay idle between requests, or take to send one.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

pub(crate) fn timed_out() -> Error {
    Error::Io(io::ErrorKind::TimedOut.into())
}

pub(crate) fn server_tls() -> Arc<ServerConfig> {
    Arc::new(
        ServerConfig::builder(Box::new(DeferAll))
            .suites(CipherSuite::ALL)
            .build()
            .expect("a deferring TLS-PSK server configuration is valid"),
    )
}

fn request_id() -> String {
    let mut rnd = [0u8; 8];
    // An unpredictable request id is not a security property; fall back to the clock.
    if getrandom::getrandom(&mut rnd).is_err() {
        rnd = now().unix.0.to_be_bytes();
    }
    hex::encode(rnd)
}

// ---------------------------------------------------------------------------------------------
// HTTP over a TlsStream

/// `Request::decode` or `Response::decode`.
type Decode<T> = fn(&[u8]) -> Result<Option<(T, usize)>, BindingError>;

/// Reads one message from `tls` with `decode` (request or response): `Ok(None)` on a clean end
/// of stream before any byte of a new message. `buf` keeps bytes of a following message.
async fn read_message<S, T>(
    tls: &mut TlsStream<S>,
    buf: &mut Zeroizing<Vec<u8>>,
    decode: Decode<T>,
) -> Result<Option<Result<T, BindingError>>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut chunk = Zeroizing::new(vec![0u8; 4096]);
    loop {
        if !buf.is_empty() {
            match decode(buf) {
                Ok(Some((msg, used))) => {
                    buf.drain(..used);
                    return Ok(Some(Ok(msg)));
                }
                Ok(None) => {}
                Err(e) => return Ok(Some(Err(e))),
            }
        }
        if buf.len() > MAX_HEAD + MAX_BODY {
            return Ok(Some(Err(BindingError::TooLarge)));
        }
        let n = tls.read(&mut chunk).await?;
        if n == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(m2msec::Error::UnexpectedEof.into())
            };
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn write_response<S: AsyncRead + AsyncWrite + Unpin>(
    tls: &mut TlsStream<S>,
    response: &Response,
) -> Result<(), Error> {
    let mut out = Zeroizing::new(Vec::new());
    if response.encode(&mut out).is_err() {
        // Only an oversized body or a bad request id fail; answer a bare 5000 instead.
        let fallback = Response {
            rsc: Rsc::InternalError,
            request_id: "0".into(),
            body: Zeroizing::new(Vec::new()),
        };
        out.clear();
        fallback
            .encode(&mut out)
            .map_err(|_| io::Error::other("response encoding"))?;
    }
    tls.write_all(&out).await?;
    tls.flush().await?;
    Ok(())
}

/// The 4000 answered to bytes that are not a request of this binding.
fn bad_request(e: &BindingError) -> Response {
    let body = ErrorBody {
        error: e.to_string(),
        parameter: None,
    };
    Response {
        rsc: Rsc::BadRequest,
        request_id: "0".into(),
        body: to_body(&body).unwrap_or_default(),
    }
}

// ---------------------------------------------------------------------------------------------
// The MAF service

/// The MAF as a TLS-PSK and DTLS-PSK server: key lookup from its configuration and key store
/// (and, with [`with_fetch_km`](Self::with_fetch_km), first contact at the MEF), requests
/// served by [`MafServer::handle_request`], store operations run against `S`.
pub struct MafService<S> {
    server: MafServer,
    store: Arc<S>,
    fetch_km: Option<FetchKm>,
    /// GBA-based Security Bootstrap: B-TIDs of this BSF FQDN stand for their KeIDs.
    gba_bsf: Option<String>,
    tls: Arc<ServerConfig>,
    handshake_timeout: Duration,
    idle_timeout: Duration,
    max_connections: usize,
}

impl<S> fmt::Debug for MafService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MafService")
            .field("maf", &self.server.config().maf_identifier())
            .field("first_contact", &self.fetch_km.is_some())
            .field("handshake_timeout", &self.handshake_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .finish_non_exhaustive()
    }
}

impl<S: AsyncKeyStore + 'static> MafService<S> {
    /// A MAF over `store`, without first contact (an unknown KeID is an unknown identity).
    #[must_use]
    pub fn new(server: MafServer, store: Arc<S>) -> Self {
        Self {
            server,
            store,
            fetch_km: None,
            gba_bsf: None,
            tls: server_tls(),
            handshake_timeout: HANDSHAKE_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }

    /// Enables first contact after a bootstrap (D13) with `fetch_km` (e.g. [`mef_fetch_km`]).
    #[must_use]
    pub fn with_fetch_km(mut self, fetch_km: FetchKm) -> Self {
        self.fetch_km = Some(fetch_km);
        self
    }

    /// GBA-based Security Bootstrap (8.3.3.1): a session identity that is a B-TID of the BSF
    /// `bsf_fqdn` (bare or with the `3GPP-bootstrapping` prefix, TS 33.220 GBA_ME) stands for
    /// the KeID [`ke_id_of_btid`] (`HEX(RAND)@BSF-FQDN`), both in the key lookup (first contact
    /// through the [`FetchKm`], e.g. [`gba_fetch_km`]) and in what [`MafServer`] sees, so the
    /// MAF-based procedures run unchanged. A B-TID of another BSF stays an unknown identity.
    #[must_use]
    pub fn with_gba_btids(mut self, bsf_fqdn: &str) -> Self {
        self.gba_bsf = Some(bsf_fqdn.to_ascii_lowercase());
        self
    }

    /// The session identity the MAF works with: a B-TID of the configured BSF as its KeID,
    /// anything else as it is.
    fn session_identity(&self, identity: &[u8]) -> Vec<u8> {
        let translated = self.gba_bsf.as_deref().and_then(|bsf| {
            let (prefix, btid) = parse_psk_identity(std::str::from_utf8(identity).ok()?).ok()?;
            if matches!(prefix, Some(GbaPrefix::Uicc)) || !btid.bsf_fqdn().eq_ignore_ascii_case(bsf)
            {
                return None;
            }
            ke_id_of_btid(&btid)
        });
        match translated {
            Some(ke_id) => ke_id.as_str().as_bytes().to_vec(),
            None => identity.to_vec(),
        }
    }

    /// Bounds each handshake, the key lookup (and first contact) included (default
    /// [`HANDSHAKE_TIMEOUT`]).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Bounds the wait for the next request of a connection (default [`IDLE_TIMEOUT`]).
    #[must_use]
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Serves at most `max` connections at once (default
    /// [`DEFAULT_MAX_CONNECTIONS`](super::mef::DEFAULT_MAX_CONNECTIONS); at least one). Further
    /// TCP clients wait in the listen backlog; over DTLS it also bounds the listener's sessions.
    #[must_use]
    pub fn with_max_connections(mut self, max: usize) -> Self {
        self.max_connections = max.max(1);
        self
    }

    /// The key store.
    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    /// The sans-IO server this service runs.
    #[must_use]
    pub fn server(&self) -> &MafServer {
        &self.server
    }

    /// Binds `addr` (TCP) and serves TLS in a background task; see [`ServiceHandle`].
    pub async fn bind(self, addr: impl ToSocketAddrs) -> io::Result<ServiceHandle> {
        let listener = TcpListener::bind(addr).await?;
        Ok(self.spawn(listener))
    }

    /// Serves `listener` in a background task; see [`ServiceHandle`].
    pub fn spawn(self, listener: TcpListener) -> ServiceHandle {
        let local_addr = listener.local_addr().ok();
        let this = Arc::new(self);
        ServiceHandle::spawn(local_addr, move |stop| this.serve_until(listener, stop))
    }

    /// Accepts connections on `listener` until the returned future is dropped (which also
    /// drops every connection it serves).
    pub async fn serve(self: Arc<Self>, listener: TcpListener) -> io::Result<()> {
        let (_never, stop) = watch::channel(false);
        self.serve_until(listener, stop).await
    }

    /// Accepts connections on `listener`, each in its own task and at most
    /// [`with_max_connections`](Self::with_max_connections) at once, until `stop` turns true
    /// (or its sender is dropped); then ends those tasks and returns.
    pub async fn serve_until(
        self: Arc<Self>,
        listener: TcpListener,
        stop: watch::Receiver<bool>,
    ) -> io::Result<()> {
        let max = self.max_connections;
        let serve = move |tcp: TcpStream, peer: SocketAddr| {
            let _ = tcp.set_nodelay(true);
            let this = Arc::clone(&self);
            async move {
                if let Err(e) = this.serve_connection(tcp).await {
                    tracing::warn!(%peer, error = %e, "MAF connection failed");
                }
            }
        };
        let failed = |e: &io::Error| tracing::warn!(error = %e, "MAF accept failed");
        super::serve::tcp(listener, stop, max, serve, failed).await
    }

    /// Runs one connection: the TLS-PSK handshake, then requests until the peer closes.
    pub async fn serve_connection<T>(&self, io: T) -> Result<(), Error>
    where
        T: AsyncRead + AsyncWrite + Unpin,
    {
        let lookup = |identity: Vec<u8>, _sni: Option<String>| self.lookup(identity);
        let handshake = accept_with_async(io, self.tls.clone(), Some(lookup));
        let mut tls = match tokio::time::timeout(self.handshake_timeout, handshake).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                tracing::warn!(transport = "TLS", error = %e, "MAF handshake failed");
                return Err(e);
            }
            Err(_) => {
                tracing::warn!(transport = "TLS", "MAF handshake timed out");
                return Err(timed_out());
            }
        };
        let identity = String::from_utf8_lossy(&tls.info().psk_identity).into_owned();
        tracing::info!(transport = "TLS", psk_identity = %identity, "MAF handshake completed");
        let mut exported = Zeroizing::new([0u8; EXPORTER_LEN]);
        tls.export_keying_material(exported.as_mut(), CONNECTION_EXPORTER_LABEL, None)?;
        let session = self.session_identity(&tls.info().psk_identity);
        let peer = PeerContext::new(&session).with_exporter(&exported);
        drop(exported);
        let mut buf = Zeroizing::new(Vec::new());
        loop {
            let read = read_message(&mut tls, &mut buf, Request::decode);
            let Ok(read) = tokio::time::timeout(self.idle_timeout, read).await else {
                // Idle or too slow: close (best effort).
                let _ = tls.shutdown().await;
                return Ok(());
            };
            let request = match read? {
                None => break,
                Some(Ok(r)) => r,
                Some(Err(e)) => {
                    // The stream cannot be resynchronised: answer and close.
                    tracing::warn!(psk_identity = %identity, error = %e, rsc = 4000, "MAF malformed request");
                    let answer = bad_request(&e);
                    let write = write_response(&mut tls, &answer);
                    tokio::time::timeout(self.idle_timeout, write)
                        .await
                        .map_err(|_| timed_out())??;
                    break;
                }
            };
            let response = self.answer(&peer, &request, &identity).await;
            let write = write_response(&mut tls, &response);
            tokio::time::timeout(self.idle_timeout, write)
                .await
                .map_err(|_| timed_out())??;
        }
        tls.shutdown().await?;
        Ok(())
    }

    /// The asynchronous key lookup of [`bind_dtls`](Self::bind_dtls)'s listener (its
    /// `ServerConfig` defers every identity): the same lookup as over TLS (configured KmID, Km
    /// record in the store, first contact at the MEF), the handshake suspended meanwhile. Holds
    /// only a weak reference to the service.
    #[must_use]
    pub fn dtls_lookup(self: &Arc<Self>) -> AsyncPskLookup {
        let service = Arc::downgrade(self);
        Arc::new(
            move |identity: Vec<u8>, _sni: Option<String>, _peer: SocketAddr| {
                let service = service.clone();
                let lookup: PskLookupFuture = Box::pin(async move {
                    let service = service.upgrade()?;
                    service.lookup(identity).await
                });
                lookup
            },
        )
    }

    /// Binds a DTLS listener (`coaps://`) on `addr` (MTU [`DTLS_MTU`], at most
    /// [`with_max_connections`](Self::with_max_connections) sessions, the handshake and idle
    /// timeouts of this service) and serves it in a background task; see [`ServiceHandle`].
    pub async fn bind_dtls(self, addr: impl ToSocketAddrs) -> Result<ServiceHandle, Error> {
        let this = Arc::new(self);
        let options = DtlsListenerOptions {
            max_sessions: this.max_connections,
            handshake_timeout: this.handshake_timeout,
            idle_timeout: Some(this.idle_timeout),
            ..DtlsListenerOptions::default()
        };
        let listener = DtlsListener::bind_with_lookup(
            addr,
            server_tls(),
            DTLS_MTU,
            options,
            this.dtls_lookup(),
        )
        .await?;
        let local_addr = Some(listener.local_addr());
        Ok(ServiceHandle::spawn(local_addr, move |stop| {
            this.serve_dtls(listener, stop)
        }))
    }

    /// Like [`serve_until`](Self::serve_until) over DTLS (`listener` built with
    /// [`DtlsListener::bind_with_lookup`] and [`dtls_lookup`](Self::dtls_lookup), as
    /// [`bind_dtls`](Self::bind_dtls) does): one request per record, and a repeated `X-M2M-RI`
    /// answered from the session's cache of its last response (`docs/protocol.md`).
    pub async fn serve_dtls(
        self: Arc<Self>,
        listener: DtlsListener,
        stop: watch::Receiver<bool>,
    ) -> io::Result<()> {
        let max = self.max_connections;
        let serve = move |conn| {
            let this = Arc::clone(&self);
            async move { this.serve_dtls_connection(conn).await }
        };
        let failed = |peer: SocketAddr, error: Error, identity: Option<Vec<u8>>| {
            let identity = identity.map(|i| String::from_utf8_lossy(&i).into_owned());
            tracing::warn!(transport = "DTLS", %peer, ?identity, %error, "MAF handshake failed");
        };
        super::serve::dtls(listener, stop, max, serve, failed).await
    }

    async fn serve_dtls_connection(&self, conn: DtlsConnection) {
        let identity = String::from_utf8_lossy(&conn.info().psk_identity).into_owned();
        tracing::info!(
            transport = "DTLS",
            peer = %conn.peer_addr(),
            psk_identity = %identity,
            "MAF handshake completed"
        );
        let mut exported = Zeroizing::new([0u8; EXPORTER_LEN]);
        if let Err(e) =
            conn.export_keying_material(exported.as_mut(), CONNECTION_EXPORTER_LABEL, None)
        {
            tracing::warn!(psk_identity = %identity, error = %e, "MAF exporter failed");
            return;
        }
        let session = self.session_identity(&conn.info().psk_identity);
        let peer = PeerContext::new(&session).with_exporter(&exported);
        drop(exported);
        let on_malformed = || {
            tracing::warn!(psk_identity = %identity, rsc = 4000, "MAF malformed request");
        };
        let (peer, id) = (&peer, identity.as_str());
        let served = serve_dtls_records(
            &conn,
            self.idle_timeout,
            on_malformed,
            move |req| async move { self.answer(peer, &req, id).await },
        )
        .await;
        if let Err(e) = served {
            tracing::warn!(psk_identity = %identity, error = %e, "MAF connection failed");
        }
    }

    /// Runs one request to its response against the store.
    async fn answer(&self, peer: &PeerContext, req: &Request, identity: &str) -> Response {
        let now = now();
        let mut step = self.server.handle_request(now, peer, req);
        let response = loop {
            match step {
                Ok(Step::Respond(r)) => break r,
                Err(e) => {
                    if let Some(s) = e.store_error() {
                        tracing::warn!(psk_identity = %identity, error = %s, "MAF key store failed");
                    }
                    break e.into_response();
                }
                Ok(Step::Store(p)) => {
                    let result = self.store.execute(p.op().clone()).await;
                    step = p.resume(now, result);
                }
            }
        };
        log_refusal("MAF", identity, &req.path, &response);
        tracing::info!(
            psk_identity = %identity,
            target = %format_args!("{:?} {}", req.method, req.path),
            rsc = response.rsc.code(),
            "MAF answered"
        );
        response
    }

    /// The PSK of a session identity: a configured KmID, a Km record in the store (assigned KmID
    /// or KeID), or, for an unknown KeID, the Km first contact fetches (stored before use).
    async fn lookup(&self, identity: Vec<u8>) -> Option<Psk> {
        let identity = self.session_identity(&identity);
        let config = self.server.config();
        let maf = config.maf_identifier().as_str();
        if let Ok(km_id) = KeyId::parse_bytes(IdKind::Km, &identity) {
            if km_id.fqdn().eq_ignore_ascii_case(maf) {
                if let Some(client) = config.client_by_km_id(&km_id) {
                    // An expired credential is refused per request (4103 masterCredentialExpiry).
                    return Some(client.credential().master_credential().to_psk());
                }
                return self.stored_km(&store_id(&km_id)).await;
            }
        }
        let ke_id = KeyId::parse_bytes(IdKind::Ke, &identity).ok()?;
        let id = store_id(&ke_id);
        if let Some(psk) = self.stored_km(&id).await {
            return Some(psk);
        }
        let fetch = self.fetch_km.as_ref()?;
        let (km, record) = fetch(ke_id).await?;
        if record.id != id
            || record.kind != KeyKind::Km
            || record.secret != KeySecret::from_key(km.expose())
            || record.is_expired(now().unix)
        {
            tracing::warn!(ke_id = %id, "first contact: the fetched Km record does not fit the KeID");
            return None;
        }
        if let Err(e) = self.store.put(record.clone()).await {
            tracing::warn!(ke_id = %id, error = %e, "first contact: storing Km failed");
            return None;
        }
        tracing::info!(ke_id = %id, owner = %record.owner, "first contact: Km stored");
        Some(km.to_psk())
    }

    async fn stored_km(&self, id: &str) -> Option<Psk> {
        let record = self.store.get(id).await.ok()??;
        if record.kind != KeyKind::Km || record.is_expired(now().unix) {
            return None;
        }
        Psk::new(record.secret.expose()).ok()
    }
}

// ---------------------------------------------------------------------------------------------
// First contact at a real MEF

/// First contact after a bootstrap (D13) against the MEF at `mef_addr` over `transport`: a
/// [`FetchKm`] that authenticates to the MEF with the MAF's own `psk` (identity as in the MEF's
/// MAF directory), sends `GET /mef/fetchCredentials/<KeID>/21` as originator `maf_id` (`sni` as
/// server name) and builds the record to store exactly as
/// [`MafServer::km_record_from_mef`] does (refused unless 2000 with status true, a valid
/// Enrolee-ID and a lifetime in the future). A refusal, a transport failure or a malformed
/// answer gives `None` (the Enrolee's handshake then fails with `unknown_psk_identity`) and is
/// logged without key material.
#[must_use]
pub fn mef_fetch_km(
    mef_addr: SocketAddr,
    transport: Transport,
    psk: ClientPsk,
    maf_id: impl Into<String>,
    sni: Option<String>,
    config: Arc<MafConfig>,
) -> FetchKm {
    let maf_id: Arc<str> = Arc::from(maf_id.into());
    let sni: Option<Arc<str>> = sni.map(Arc::from);
    // km_record_from_mef does not use the Kc lifetime.
    let lifespan = Lifespan::from_secs(1).expect("one second is a valid lifespan");
    let server = Arc::new(MafServer::new(config, lifespan));
    Arc::new(move |ke_id: KeyId| {
        let (psk, maf_id, sni, server) = (
            psk.clone(),
            Arc::clone(&maf_id),
            sni.clone(),
            Arc::clone(&server),
        );
        Box::pin(async move {
            let response =
                fetch_response(mef_addr, transport, psk, &ke_id, &maf_id, sni.as_deref()).await;
            let response = match response {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(ke_id = %ke_id.as_str(), %transport, error = %e, "first contact: fetchCredentials failed");
                    return None;
                }
            };
            log_refusal("MEF (fetchCredentials)", &maf_id, ke_id.as_str(), &response);
            match server.km_record_from_mef(now(), &ke_id, &response) {
                Ok(record) => {
                    let km = Km::new(*record.secret.to_key32()?.expose());
                    Some((km, record))
                }
                Err(e) => {
                    tracing::warn!(ke_id = %ke_id.as_str(), error = %e, "first contact: no Km");
                    None
                }
            }
        })
    })
}

// ---------------------------------------------------------------------------------------------
// GBA-based Security Bootstrap (8.3.3.1)

/// The TLS cipher suite code in the NAF_Id of a MAF acting as NAF for the GBA-based Security
/// Bootstrap: `TLS_PSK_WITH_AES_128_CCM` (0xC0A4), fixed, since Km outlives any one Ua session
/// (the MAF sessions Km later secures may negotiate another suite).
pub const GBA_MAF_SUITE: u16 = 0xC0A4;

/// NAF_Id of the MAF `maf_fqdn` for Km: `maf_fqdn ‖ 01 00 01 ‖ C0 A4` ([`GBA_MAF_SUITE`]).
pub fn gba_maf_naf_id(maf_fqdn: &str) -> Result<NafId, GbaKdfError> {
    NafId::tls_psk(maf_fqdn, GBA_MAF_SUITE)
}

/// The KeID standing for a B-TID at the MAF: `HEX(RAND)@BSF-FQDN` (the B-TID is
/// `base64(RAND)@BSF-FQDN`, so the two name the same bootstrapping). `None` if the B-TID's
/// RAND is not 16 bytes.
#[must_use]
pub fn ke_id_of_btid(btid: &BTid) -> Option<KeyId> {
    let rand = btid.rand()?;
    let rel = RelativeId::from_bytes(rand).to_hex();
    KeyId::parse(IdKind::Ke, &format!("{rel}@{}", btid.bsf_fqdn())).ok()
}

/// The B-TID a KeID of [`ke_id_of_btid`] stands for.
#[must_use]
pub fn btid_of_ke_id(ke_id: &KeyId) -> Option<BTid> {
    let rel = ke_id.relative_id()?;
    BTid::new(rel.as_bytes(), ke_id.fqdn()).ok()
}

/// First contact after a GBA-based Security Bootstrap (8.3.3.1; MEF = BSF, Ke = Ks, KeID =
/// B-TID, Km = Ks_NAF with the MAF as NAF): a [`FetchKm`] that, for a KeID of the BSF
/// `bsf_fqdn` (a B-TID translated by [`MafService::with_gba_btids`]), asks the BSF at `zn_addr`
/// over Zn (the MAF's own NAF PSK `naf_psk`) for Ks_NAF with NAF_Id [`gba_maf_naf_id`]`(maf_fqdn)`
/// and flavour GBA_ME, and builds the Km record `{KeID, Km, owner, not_after: the
/// bootstrapping's lifetime}`. The owner is the Enrolee-ID `peers` maps the IMPI to; without
/// `peers` the IMPI itself; an IMPI missing from a non-empty `peers` is refused. Any other KeID
/// goes to `fallback` (e.g. [`mef_fetch_km`]). A Zn refusal (unknown or expired B-TID, the MAF
/// not in the GUSS) gives `None`: the client's handshake fails with `unknown_psk_identity`.
#[must_use]
pub fn gba_fetch_km(
    zn_addr: SocketAddr,
    naf_psk: ClientPsk,
    maf_fqdn: &str,
    bsf_fqdn: &str,
    peers: Vec<(String, String)>,
    fallback: Option<FetchKm>,
) -> FetchKm {
    let maf_fqdn: Arc<str> = Arc::from(maf_fqdn);
    let bsf_fqdn: Arc<str> = Arc::from(bsf_fqdn.to_ascii_lowercase());
    let peers = Arc::new(peers);
    Arc::new(move |ke_id: KeyId| {
        if !ke_id.fqdn().eq_ignore_ascii_case(&bsf_fqdn) {
            return match &fallback {
                Some(f) => f(ke_id),
                None => Box::pin(async { None }),
            };
        }
        let (psk, maf_fqdn, peers) = (naf_psk.clone(), Arc::clone(&maf_fqdn), Arc::clone(&peers));
        Box::pin(async move {
            let btid = btid_of_ke_id(&ke_id)?;
            let naf_id = gba_maf_naf_id(&maf_fqdn).ok()?;
            let z = match zn_fetch(zn_addr, psk, &btid, &naf_id, ZnFlavor::Me).await {
                Ok(z) => z,
                Err(e) => {
                    tracing::warn!(btid = %btid.as_str(), error = %e, "GBA first contact: Zn refused");
                    return None;
                }
            };
            let owner = if peers.is_empty() {
                z.impi.clone()
            } else if let Some((_, id)) = peers.iter().find(|(impi, _)| impi == &z.impi) {
                id.clone()
            } else {
                tracing::warn!(btid = %btid.as_str(), impi = %z.impi, "GBA first contact: IMPI not mapped");
                return None;
            };
            if z.lifetime <= now().unix {
                return None;
            }
            let record = KeyRecord::new(
                store_id(&ke_id),
                KeyKind::Km,
                owner.as_str(),
                z.lifetime,
                KeySecret::from_key(z.key.expose()),
            )
            .ok()?;
            Some((Km::new(*z.key.expose()), record))
        })
    })
}

// ---------------------------------------------------------------------------------------------
// Clients of the MAF

/// What a MAF client authenticates with: the PSK identity (its KmID, or its KeID on first
/// contact), the key (Km), the identity bound to it (`X-M2M-Origin`: its CSE-ID / AE-ID) and
/// the MAF's FQDN.
#[derive(Clone, Debug)]
pub struct MafCredentials {
    /// The MAF-FQDN (`mafFQDN`, and the FQDN of the key identifiers it assigns).
    pub maf_fqdn: String,
    /// The PSK identity: KmID, or KeID on first contact.
    pub psk_identity: String,
    /// Km.
    pub key: Km,
    /// The client's CSE-ID / AE-ID.
    pub origin: String,
}

/// Why a MAF exchange gave no result.
#[derive(Debug)]
#[non_exhaustive]
pub enum MafClientError {
    /// The TLS session or the transport failed.
    Transport(Error),
    /// The MAF refused with this status code and error body.
    Refused {
        /// The response status code.
        rsc: Rsc,
        /// The error body, if it parsed.
        error: Option<ErrorBody>,
    },
    /// The response is not what the procedure answers.
    Malformed(&'static str),
    /// The relativeKeyID the MAF returned is not the KcID this client derived.
    KcIdMismatch,
}

impl MafClientError {
    /// The status code of a refusal.
    #[must_use]
    pub fn rsc(&self) -> Option<Rsc> {
        match self {
            Self::Refused { rsc, .. } => Some(*rsc),
            _ => None,
        }
    }
}

impl fmt::Display for MafClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Transport(e) => write!(f, "MAF session: {e}"),
            Self::Refused { rsc, error } => {
                write!(f, "the MAF refused with {}", rsc.code())?;
                if let Some(e) = error {
                    write!(f, ": {}", e.error)?;
                }
                Ok(())
            }
            Self::Malformed(w) => write!(f, "malformed MAF response: {w}"),
            Self::KcIdMismatch => f.write_str("relativeKeyID is not the KcID derived locally"),
        }
    }
}

impl std::error::Error for MafClientError {}

impl From<Error> for MafClientError {
    fn from(e: Error) -> Self {
        Self::Transport(e)
    }
}

impl From<io::Error> for MafClientError {
    fn from(e: io::Error) -> Self {
        Self::Transport(e.into())
    }
}

impl From<ClientError> for MafClientError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Transport(e) => Self::Transport(e),
            ClientError::Closed => Self::Transport(Error::Tls(m2msec::Error::UnexpectedEof)),
            _ => Self::Malformed("HTTP response"),
        }
    }
}

/// What a Client Registration gives the Enrolee: the KmID the MAF assigned (the PSK identity of
/// its later sessions, with the same Km), its registration id and the granted expiry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientRegistration {
    /// `assignedSymmKeyID`: KmID = `km-<32 hex>@MAF-FQDN`.
    pub km_id: KeyId,
    /// `mafClientRegID`.
    pub maf_client_reg_id: String,
    /// The granted expiry (Unix seconds).
    pub expires: u64,
}

/// A client session with the MAF over TLS or DTLS.
enum MafSession {
    Tls(Box<TlsStream<TcpStream>>),
    Dtls(Box<DtlsConnection>),
}

impl MafSession {
    fn export(&self, out: &mut [u8]) -> Result<(), Error> {
        match self {
            Self::Tls(t) => t.export_keying_material(out, CONNECTION_EXPORTER_LABEL, None),
            Self::Dtls(c) => c.export_keying_material(out, CONNECTION_EXPORTER_LABEL, None),
        }
    }

    /// Sends `request` and reads its response, then closes the session; refusals become
    /// [`MafClientError::Refused`].
    async fn exchange(self, request: &Request) -> Result<Response, MafClientError> {
        let response = match self {
            Self::Tls(mut tls) => {
                let mut out = Zeroizing::new(Vec::new());
                request
                    .encode(&mut out)
                    .map_err(|_| MafClientError::Malformed("request encoding"))?;
                tls.write_all(&out).await?;
                tls.flush().await?;
                let mut buf = Zeroizing::new(Vec::new());
                let response = match read_message(&mut tls, &mut buf, Response::decode).await? {
                    None => return Err(Error::Tls(m2msec::Error::UnexpectedEof).into()),
                    Some(Err(_)) => return Err(MafClientError::Malformed("HTTP response")),
                    Some(Ok(r)) => r,
                };
                // Best effort: the answer is in hand.
                let _ = tls.shutdown().await;
                response
            }
            Self::Dtls(conn) => {
                // One record per request, retransmitted with the same X-M2M-RI.
                let response = exchange_dtls(&conn, request).await;
                let _ = conn.close().await;
                response?
            }
        };
        if response.request_id != request.request_id {
            if !response.rsc.is_success() {
                // A 4000 to bytes the MAF could not parse carries no request id.
                return Err(MafClientError::Refused {
                    rsc: response.rsc,
                    error: from_body(&response.body).ok(),
                });
            }
            return Err(MafClientError::Malformed("X-M2M-RI"));
        }
        if !response.rsc.is_success() {
            return Err(MafClientError::Refused {
                rsc: response.rsc,
                error: from_body(&response.body).ok(),
            });
        }
        Ok(response)
    }
}

fn client_config(creds: &MafCredentials) -> Result<Arc<ClientConfig>, MafClientError> {
    let psk = ClientPsk::new(creds.psk_identity.as_bytes(), creds.key.to_psk())
        .map_err(|_| MafClientError::Malformed("PSK identity"))?;
    Ok(Arc::new(
        ClientConfig::builder(psk)
            .suites(CipherSuite::ALL)
            .build()
            .map_err(|_| MafClientError::Malformed("client configuration"))?,
    ))
}

async fn maf_session(
    addr: impl ToSocketAddrs,
    creds: &MafCredentials,
) -> Result<MafSession, MafClientError> {
    let config = client_config(creds)?;
    let tcp = TcpStream::connect(addr).await?;
    let _ = tcp.set_nodelay(true);
    Ok(MafSession::Tls(Box::new(
        connect(tcp, config, Some(&creds.maf_fqdn)).await?,
    )))
}

/// A session over `transport`. A refused handshake (e.g. `unknown_psk_identity`) fails at once
/// over either transport: the MAF refuses only after its key lookup has failed.
async fn maf_session_via(
    addr: SocketAddr,
    transport: Transport,
    creds: &MafCredentials,
) -> Result<MafSession, MafClientError> {
    if transport == Transport::Tls {
        return maf_session(addr, creds).await;
    }
    let config = client_config(creds)?;
    let conn = dtls_connect(addr, config, Some(&creds.maf_fqdn)).await?;
    Ok(MafSession::Dtls(Box::new(conn)))
}

/// Entity A's Key Registration: a TLS-PSK session to the MAF at `addr` with `creds`, the
/// session's `EXPORTER-oneM2M-Connection` output split into KcID / Kc, `POST
/// /maf/keyRegistration` for `target_ids` until `expires` (Unix seconds). Returns the key
/// identifier `HEX(KcID)@MAF-FQDN` (the `psk_identity` for the association), Kc (the `psk`) and
/// the expiry the MAF granted. Refuses a relativeKeyID that is not its own KcID.
pub async fn register_key(
    addr: impl ToSocketAddrs,
    creds: &MafCredentials,
    target_ids: &[&str],
    expires: u64,
) -> Result<(KeyId, Kc, u64), MafClientError> {
    let session = maf_session(addr, creds).await?;
    register_key_on(session, creds, target_ids, expires).await
}

/// [`register_key`] over `transport` (DTLS: one request per record, retransmitted with the same
/// `X-M2M-RI`; the KcID / Kc come from the DTLS session's exporter).
pub async fn register_key_via(
    addr: SocketAddr,
    transport: Transport,
    creds: &MafCredentials,
    target_ids: &[&str],
    expires: u64,
) -> Result<(KeyId, Kc, u64), MafClientError> {
    let session = maf_session_via(addr, transport, creds).await?;
    register_key_on(session, creds, target_ids, expires).await
}

async fn register_key_on(
    session: MafSession,
    creds: &MafCredentials,
    target_ids: &[&str],
    expires: u64,
) -> Result<(KeyId, Kc, u64), MafClientError> {
    let mut exported = Zeroizing::new([0u8; EXPORTER_LEN]);
    session.export(exported.as_mut())?;
    let (kc_id, kc) = connection_key(&exported, &creds.maf_fqdn)
        .map_err(|_| MafClientError::Malformed("MAF-FQDN"))?;
    drop(exported);
    let body = KeyRegistrationRequest {
        maf_fqdn: creds.maf_fqdn.clone(),
        expiration_time: expires,
        suid: SUID_MAF_SAEF,
        target_ids: target_ids.iter().map(|t| (*t).to_string()).collect(),
    };
    let (method, path) = Route::KeyRegistration.target();
    let request = Request {
        method,
        path,
        origin: creds.origin.clone(),
        request_id: request_id(),
        body: to_body(&body).map_err(|_| MafClientError::Malformed("request body"))?,
    };
    let response = session.exchange(&request).await?;
    let reply: KeyRegistrationResponse =
        from_body(&response.body).map_err(|_| MafClientError::Malformed("keyRegistration body"))?;
    let returned = KeyId::parse(
        IdKind::Kc,
        &format!("{}@{}", reply.relative_key_id, creds.maf_fqdn),
    )
    .map_err(|_| MafClientError::Malformed("relativeKeyID"))?;
    if returned != kc_id {
        return Err(MafClientError::KcIdMismatch);
    }
    Ok((kc_id, kc, reply.expiration_time))
}

/// Entity B's Key Retrieval: a TLS-PSK session to the MAF at `addr` with `creds`, `GET
/// /maf/keyRetrieval/<relative_key_id>`. Returns Kc, the source (IdA, `sourceMafClientID`) and
/// the expiry.
pub async fn retrieve_key(
    addr: impl ToSocketAddrs,
    creds: &MafCredentials,
    relative_key_id: &str,
) -> Result<(Kc, String, u64), MafClientError> {
    let session = maf_session(addr, creds).await?;
    retrieve_key_on(session, creds, relative_key_id).await
}

/// [`retrieve_key`] over `transport`.
pub async fn retrieve_key_via(
    addr: SocketAddr,
    transport: Transport,
    creds: &MafCredentials,
    relative_key_id: &str,
) -> Result<(Kc, String, u64), MafClientError> {
    let session = maf_session_via(addr, transport, creds).await?;
    retrieve_key_on(session, creds, relative_key_id).await
}

async fn retrieve_key_on(
    session: MafSession,
    creds: &MafCredentials,
    relative_key_id: &str,
) -> Result<(Kc, String, u64), MafClientError> {
    let (method, path) = Route::KeyRetrieval {
        relative_key_id: relative_key_id.to_string(),
    }
    .target();
    let request = Request {
        method,
        path,
        origin: creds.origin.clone(),
        request_id: request_id(),
        body: Zeroizing::new(Vec::new()),
    };
    let response = session.exchange(&request).await?;
    let reply: KeyRetrievalResponse =
        from_body(&response.body).map_err(|_| MafClientError::Malformed("keyRetrieval body"))?;
    if reply.suid != SUID_MAF_SAEF {
        return Err(MafClientError::Malformed("suid"));
    }
    Ok((
        Kc::new(reply.key_value.0),
        reply.source_maf_client_id,
        reply.expiration_time,
    ))
}

/// The Enrolee's Client Registration on its first contact after a bootstrap: a TLS-PSK session
/// to the MAF at `addr` with `creds` (`psk_identity` = its KeID, `key` = Km, `origin` = its
/// Enrolee-ID), `POST /maf/clientRegistration` until `expires` (Unix seconds). Returns the KmID
/// the MAF assigned (the identity of later sessions, with the same Km) and the granted expiry.
/// Refuses an `assignedSymmKeyID` that is not a KmID of `creds.maf_fqdn`.
pub async fn register_client(
    addr: impl ToSocketAddrs,
    creds: &MafCredentials,
    expires: u64,
) -> Result<ClientRegistration, MafClientError> {
    let session = maf_session(addr, creds).await?;
    register_client_on(session, creds, expires).await
}

/// [`register_client`] over `transport`.
pub async fn register_client_via(
    addr: SocketAddr,
    transport: Transport,
    creds: &MafCredentials,
    expires: u64,
) -> Result<ClientRegistration, MafClientError> {
    let session = maf_session_via(addr, transport, creds).await?;
    register_client_on(session, creds, expires).await
}

async fn register_client_on(
    session: MafSession,
    creds: &MafCredentials,
    expires: u64,
) -> Result<ClientRegistration, MafClientError> {
    let body = ClientRegistrationRequest {
        maf_fqdn: creds.maf_fqdn.clone(),
        expiration_time: expires,
    };
    let (method, path) = Route::ClientRegistration.target();
    let request = Request {
        method,
        path,
        origin: creds.origin.clone(),
        request_id: request_id(),
        body: to_body(&body).map_err(|_| MafClientError::Malformed("request body"))?,
    };
    let response = session.exchange(&request).await?;
    let reply: ClientRegistrationResponse = from_body(&response.body)
        .map_err(|_| MafClientError::Malformed("clientRegistration body"))?;
    let km_id = KeyId::parse(IdKind::Km, &reply.assigned_symm_key_id)
        .map_err(|_| MafClientError::Malformed("assignedSymmKeyID"))?;
    if !km_id.fqdn().eq_ignore_ascii_case(&creds.maf_fqdn) {
        return Err(MafClientError::Malformed("assignedSymmKeyID"));
    }
    Ok(ClientRegistration {
        km_id,
        maf_client_reg_id: reply.maf_client_reg_id,
        expires: reply.expiration_time,
    })
}
