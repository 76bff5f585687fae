//! The MAF over TLS-PSK sockets (`docs/protocol.md`, "MAF (Mmaf)" and "Registrar"): the
//! [`MafService`] around the sans-IO [`MafServer`], the Entity A / Entity B client helpers
//! [`register_key`] and [`retrieve_key`], and a minimal [`Registrar`] (Entity B) that accepts
//! associations keyed by a MAF-distributed Kc.
//!
//! ```text
//!  Entity A ──TLS-PSK(KmID|KeID)──▶ MafService ──POST /maf/keyRegistration──▶ Kc stored
//!  Entity A ──TLS-PSK(KcID@MAF, Kc)──▶ Registrar ── deferred lookup ──▶ retrieve_key (B's MAF
//!                                                 session) ──▶ psk = Kc, bound to IdA
//! ```
//!
//! The adapter only moves bytes and runs key-store operations: every decision (who asks, what
//! may be registered or released) is [`MafServer`]'s.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use m2msec::config::DeferAll;
use m2msec::frameworks::binding::{
    from_body, to_body, BindingError, ErrorBody, KeyRegistrationRequest, KeyRegistrationResponse,
    KeyRetrievalResponse, Request, Response, Route, Rsc, MAX_BODY, MAX_HEAD,
};
use m2msec::frameworks::maf::{MafServer, SUID_MAF_SAEF};
use m2msec::frameworks::mef::{PeerContext, Pending, ServerError, Step};
use m2msec::keys::{
    connection_key, IdKind, Kc, KeyId, Km, CONNECTION_EXPORTER_LABEL, EXPORTER_LEN,
};
use m2msec::store::{store_id, KeyKind, KeyRecord, KeySecret};
use m2msec::{CipherSuite, ClientConfig, ClientPsk, Now, Psk, ServerConfig};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::task::JoinSet;
use zeroize::Zeroizing;

use crate::store::AsyncKeyStore;
use crate::{accept_with_async, connect, Error, TlsStream};

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

/// Runs a sans-IO step to its response against an asynchronous store.
async fn drive<P: Pending>(
    now: Now,
    step: Result<Step<P>, ServerError>,
    store: &impl AsyncKeyStore,
) -> Response {
    let mut step = step;
    loop {
        match step {
            Ok(Step::Respond(r)) => return r,
            Err(e) => return e.into_response(),
            Ok(Step::Store(p)) => {
                let result = store.execute(p.op().clone()).await;
                step = p.resume(now, result);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The MAF service

/// The MAF as a TLS-PSK server: key lookup from its configuration and key store, requests
/// served by [`MafServer::handle_request`], store operations run against `S`.
pub struct MafService<S> {
    server: MafServer,
    store: Arc<S>,
    fetch_km: Option<FetchKm>,
    tls: Arc<ServerConfig>,
}

impl<S> fmt::Debug for MafService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MafService")
            .field("maf", &self.server.config().maf_identifier())
            .field("first_contact", &self.fetch_km.is_some())
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
            tls: server_tls(),
        }
    }

    /// Enables first contact after a bootstrap (D13) with `fetch_km`.
    #[must_use]
    pub fn with_fetch_km(mut self, fetch_km: FetchKm) -> Self {
        self.fetch_km = Some(fetch_km);
        self
    }

    /// The key store.
    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    /// Accepts connections on `listener` until the returned future is dropped (which also
    /// drops every connection it serves).
    pub async fn serve(self: Arc<Self>, listener: TcpListener) -> io::Result<()> {
        let mut tasks = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (tcp, _) = accepted?;
                    let this = self.clone();
                    tasks.spawn(async move {
                        // A failed connection concerns only its peer.
                        let _ = this.serve_connection(tcp).await;
                    });
                }
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
    }

    /// Runs one connection: the TLS-PSK handshake, then requests until the peer closes.
    pub async fn serve_connection<T>(&self, io: T) -> Result<(), Error>
    where
        T: AsyncRead + AsyncWrite + Unpin,
    {
        let lookup = |identity: Vec<u8>, _sni: Option<String>| self.lookup(identity);
        let handshake = accept_with_async(io, self.tls.clone(), Some(lookup));
        let mut tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake)
            .await
            .map_err(|_| timed_out())??;
        let mut exported = Zeroizing::new([0u8; EXPORTER_LEN]);
        tls.export_keying_material(exported.as_mut(), CONNECTION_EXPORTER_LABEL, None)?;
        let peer = PeerContext::new(&tls.info().psk_identity).with_exporter(&exported);
        let mut buf = Zeroizing::new(Vec::new());
        loop {
            let read = read_message(&mut tls, &mut buf, Request::decode);
            let read = tokio::time::timeout(IDLE_TIMEOUT, read)
                .await
                .map_err(|_| timed_out())?;
            let request = match read? {
                None => break,
                Some(Ok(r)) => r,
                Some(Err(e)) => {
                    // The stream cannot be resynchronised: answer and close.
                    write_response(&mut tls, &bad_request(&e)).await?;
                    break;
                }
            };
            let now = now();
            let step = self.server.handle_request(now, &peer, &request);
            let response = drive(now, step, &*self.store).await;
            write_response(&mut tls, &response).await?;
        }
        tls.shutdown().await?;
        Ok(())
    }

    /// The PSK of a session identity: a configured KmID, a Km record in the store (assigned KmID
    /// or KeID), or, for an unknown KeID, the Km first contact fetches (stored before use).
    async fn lookup(&self, identity: Vec<u8>) -> Option<Psk> {
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
            return None;
        }
        self.store.put(record).await.ok()?;
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

async fn maf_session(
    addr: impl ToSocketAddrs,
    creds: &MafCredentials,
) -> Result<TlsStream<TcpStream>, MafClientError> {
    let psk = ClientPsk::new(creds.psk_identity.as_bytes(), creds.key.to_psk())
        .map_err(|_| MafClientError::Malformed("PSK identity"))?;
    let config = Arc::new(
        ClientConfig::builder(psk)
            .suites(CipherSuite::ALL)
            .build()
            .map_err(|_| MafClientError::Malformed("client configuration"))?,
    );
    let tcp = TcpStream::connect(addr).await?;
    Ok(connect(tcp, config, Some(&creds.maf_fqdn)).await?)
}

/// Sends `request` and reads its response; refusals become [`MafClientError::Refused`].
async fn exchange(
    tls: &mut TlsStream<TcpStream>,
    request: &Request,
) -> Result<Response, MafClientError> {
    let mut out = Zeroizing::new(Vec::new());
    request
        .encode(&mut out)
        .map_err(|_| MafClientError::Malformed("request encoding"))?;
    tls.write_all(&out).await?;
    tls.flush().await?;
    let mut buf = Zeroizing::new(Vec::new());
    let response = match read_message(tls, &mut buf, Response::decode).await? {
        None => return Err(Error::Tls(m2msec::Error::UnexpectedEof).into()),
        Some(Err(_)) => return Err(MafClientError::Malformed("HTTP response")),
        Some(Ok(r)) => r,
    };
    // Best effort: the answer is in hand.
    let _ = tls.shutdown().await;
    if response.request_id != request.request_id {
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
    let mut tls = maf_session(addr, creds).await?;
    let mut exported = Zeroizing::new([0u8; EXPORTER_LEN]);
    tls.export_keying_material(exported.as_mut(), CONNECTION_EXPORTER_LABEL, None)?;
    let (kc_id, kc) = connection_key(&exported, &creds.maf_fqdn)
        .map_err(|_| MafClientError::Malformed("MAF-FQDN"))?;
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
    let response = exchange(&mut tls, &request).await?;
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
    let mut tls = maf_session(addr, creds).await?;
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
    let response = exchange(&mut tls, &request).await?;
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
