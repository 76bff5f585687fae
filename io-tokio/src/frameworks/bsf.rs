//! The GBA Bootstrapping Server Function (TS 33.220) and its two clients: the UE's [`bootstrap`]
//! over Ub and the NAF's [`zn_fetch`] over Zn (`docs/protocol.md`, "BSF (Ub)" and "Zn").
//!
//! ```text
//!  UE ──Ub: HTTP/1.1 over TCP, Digest AKA (TS 24.109, RFC 3310)──▶ BSF ─┬─ subscriber store
//!       GET / (IMPI) ◀─ 401 RAND‖AUTN ─ GET / (RES | AUTS) ◀─ 200 B-TID │  (K, OPc, SQN, GUSS)
//!  NAF ─Zn: TLS-PSK (the NAF's own PSK), POST /zn/bootstrappingInfo───▶ └─ bootstrapping store
//!       {btid, nafId, flavor} ◀─ {key = Ks_(int_)NAF, impi, lifetime, ...}   (B-TID → Ks, RAND)
//! ```
//!
//! The Digest AKA message logic is the core's ([`m2msec::gba::digest`]); Milenage, the USIM
//! model and the key derivation are [`m2msec::gba`]. This module moves bytes, keeps the
//! subscriber and bootstrapping records in an [`AsyncKeyStore`] (wrapped under the KEK by
//! [`RedbKeyStore`](crate::store::RedbKeyStore)) and the pending challenges in memory.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use m2msec::frameworks::binding::{
    from_body, to_body, ErrorBody, HexKey, Method, Request, Response, Rsc, MAX_BODY, MAX_HEAD,
};
use m2msec::gba::digest::{
    Credentials, DigestError, UbClient, UbRequest, UbResponse, UsimOutcome, MAX_UB_HEAD,
};
use m2msec::gba::kdf::{BTid, KsNaf, NafId};
use m2msec::gba::usim::{Usim, UsimFailure};
use m2msec::gba::Ks;
use m2msec::{ClientConfig, ClientPsk, Now, UnixTime};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use zeroize::Zeroizing;

use crate::{connect, TlsStream};

/// The Zn route: `POST /zn/bootstrappingInfo`.
pub const ZN_PATH: &str = "/zn/bootstrappingInfo";
/// The Ub request-target the client uses.
pub const UB_URI: &str = "/";
/// Default lifetime of a bootstrapping (B-TID, Ks).
pub const DEFAULT_KEY_LIFETIME: Duration = Duration::from_secs(3600);
/// How long a 401 challenge waits for its answer.
pub const DEFAULT_CHALLENGE_LIFETIME: Duration = Duration::from_secs(60);
/// Most challenges pending at once (the oldest is dropped beyond).
pub const MAX_PENDING: usize = 1024;
/// Most SQN resynchronisations within one bootstrapping run.
pub const MAX_RESYNCS: u8 = 1;
/// Bound on a handshake, on the wait for a request and on writing a response.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

const READ_CHUNK: usize = 4096;

// =============================================================================================
// Wire bodies of Zn.

/// Which NAF key Zn asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ZnFlavor {
    /// GBA_ME: Ks_NAF (= Ks_ext_NAF), `"gba-me"`.
    Me,
    /// GBA_U: Ks_int_NAF, `"gba-u"` (only for subscribers with `gbaU = true`).
    Uicc,
}

impl ZnFlavor {
    /// The wire name: `gba-me` or `gba-u`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Me => "gba-me",
            Self::Uicc => "gba-u",
        }
    }

    /// The flavor with this wire name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "gba-me" => Some(Self::Me),
            "gba-u" => Some(Self::Uicc),
            _ => None,
        }
    }
}

impl fmt::Display for ZnFlavor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body of `POST /zn/bootstrappingInfo`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZnRequest {
    /// The B-TID the UE presented.
    pub btid: String,
    /// NAF_Id = FQDN ‖ Ua security protocol identifier, as lower-case hex.
    #[serde(rename = "nafId")]
    pub naf_id: String,
    /// `gba-me` or `gba-u`.
    pub flavor: String,
}

/// The 2000 answer of Zn.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZnResponse {
    /// Ks_NAF / Ks_int_NAF, 64 hex digits.
    pub key: HexKey,
    /// The subscriber's IMPI.
    pub impi: String,
    /// End of the bootstrapping's lifetime, Unix seconds.
    pub lifetime: u64,
    /// When the bootstrapping ran, Unix seconds.
    #[serde(rename = "bootstrappingTime")]
    pub bootstrapping_time: u64,
    /// User security settings relevant to this NAF (the GUSS entries of its FQDNs).
    pub uss: Vec<String>,
}

// =============================================================================================
// Zn client (NAF side).

/// A NAF key released by the BSF.
#[derive(Clone)]
pub struct ZnKey {
    /// Ks_NAF (GBA_ME) or Ks_int_NAF (GBA_U).
    pub key: KsNaf,
    /// The subscriber.
    pub impi: String,
    /// End of the bootstrapping's lifetime (the key must not be used after it).
    pub lifetime: UnixTime,
    /// When the bootstrapping ran.
    pub bootstrapping_time: UnixTime,
    /// User security settings for this NAF.
    pub uss: Vec<String>,
}

impl fmt::Debug for ZnKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZnKey")
            .field("key", &"<redacted>")
            .field("impi", &self.impi)
            .field("lifetime", &self.lifetime)
            .field("bootstrapping_time", &self.bootstrapping_time)
            .field("uss", &self.uss)
            .finish()
    }
}

/// Why [`zn_fetch`] failed.
///
/// The BSF refuses with [`Rsc::NotFound`] (4004) an unknown B-TID and an expired bootstrapping
/// (an expired record is deleted, so both read "no such bootstrapping"), with
/// [`Rsc::NoPrivilege`] (4103) a NAF_Id whose FQDN this NAF is not configured for, a NAF not in
/// the subscriber's GUSS and GBA_U for a subscriber without it, and with [`Rsc::BadRequest`]
/// (4000) a malformed request.
#[derive(Debug)]
#[non_exhaustive]
pub enum ZnError {
    /// The BSF answered a refusal.
    Refused {
        /// The status code.
        rsc: Rsc,
        /// The error text of the body, if any.
        error: Option<String>,
    },
    /// TCP or TLS failed (a wrong NAF PSK fails the handshake).
    Transport(crate::Error),
    /// The answer is not what the binding specifies.
    Malformed(String),
    /// The BSF closed the connection before answering.
    Closed,
}

impl fmt::Display for ZnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused { rsc, error } => {
                write!(f, "BSF refused Zn request ({})", rsc.code())?;
                if let Some(e) = error {
                    write!(f, ": {e}")?;
                }
                Ok(())
            }
            Self::Transport(e) => write!(f, "Zn transport: {e}"),
            Self::Malformed(w) => write!(f, "malformed Zn answer: {w}"),
            Self::Closed => f.write_str("BSF closed the Zn connection"),
        }
    }
}

impl std::error::Error for ZnError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Transport(e) => Some(e),
            _ => None,
        }
    }
}

impl From<crate::Error> for ZnError {
    fn from(e: crate::Error) -> Self {
        Self::Transport(e)
    }
}

impl From<io::Error> for ZnError {
    fn from(e: io::Error) -> Self {
        Self::Transport(e.into())
    }
}

/// Asks the BSF at `addr` over Zn (TLS-PSK with `naf_psk`, the NAF's own identity and PSK
/// configured at the BSF) for the key of `btid` for `naf_id`: Ks_NAF for [`ZnFlavor::Me`],
/// Ks_int_NAF for [`ZnFlavor::Uicc`]. An answer whose lifetime already passed is refused as
/// [`ZnError::Malformed`].
pub async fn zn_fetch(
    addr: SocketAddr,
    naf_psk: ClientPsk,
    btid: &BTid,
    naf_id: &NafId,
    flavor: ZnFlavor,
) -> Result<ZnKey, ZnError> {
    let origin = String::from_utf8_lossy(naf_psk.identity()).into_owned();
    let config = Arc::new(
        ClientConfig::builder(naf_psk)
            .build()
            .map_err(|e| ZnError::Transport(crate::Error::Tls(e.into())))?,
    );
    let tcp = TcpStream::connect(addr).await?;
    let _ = tcp.set_nodelay(true);
    let mut tls = connect(tcp, config, None).await?;
    let body = to_body(&ZnRequest {
        btid: btid.as_str().to_owned(),
        naf_id: hex::encode(naf_id.to_bytes()),
        flavor: flavor.as_str().to_owned(),
    })
    .map_err(|e| ZnError::Malformed(e.to_string()))?;
    let req = Request {
        method: Method::Post,
        path: ZN_PATH.to_owned(),
        origin: if origin.is_empty() {
            "-".into()
        } else {
            origin
        },
        request_id: request_id()?,
        body,
    };
    let response = exchange(&mut tls, &req).await?;
    let _ = tls.shutdown().await;
    if response.rsc != Rsc::Ok {
        let body: Option<ErrorBody> = from_body(&response.body).ok();
        return Err(ZnError::Refused {
            rsc: response.rsc,
            error: body.map(|b| b.error),
        });
    }
    let body: ZnResponse =
        from_body(&response.body).map_err(|e| ZnError::Malformed(e.to_string()))?;
    if body.lifetime <= unix_now().0 {
        return Err(ZnError::Malformed("lifetime already passed".into()));
    }
    Ok(ZnKey {
        key: KsNaf::new(body.key.0),
        impi: body.impi.clone(),
        lifetime: UnixTime(body.lifetime),
        bootstrapping_time: UnixTime(body.bootstrapping_time),
        uss: body.uss.clone(),
    })
}

/// Sends `req` and reads one response.
async fn exchange<IO>(tls: &mut TlsStream<IO>, req: &Request) -> Result<Response, ZnError>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let mut out = Zeroizing::new(Vec::new());
    req.encode(&mut out)
        .map_err(|e| ZnError::Malformed(e.to_string()))?;
    tls.write_all(&out).await?;
    tls.flush().await?;
    let mut buf = Zeroizing::new(Vec::with_capacity(READ_CHUNK));
    let mut chunk = Zeroizing::new([0u8; READ_CHUNK]);
    loop {
        match Response::decode(&buf) {
            Ok(Some((response, _))) => {
                if response.request_id != req.request_id && response.request_id != "-" {
                    return Err(ZnError::Malformed("X-M2M-RI not echoed".into()));
                }
                return Ok(response);
            }
            Ok(None) => {}
            Err(e) => return Err(ZnError::Malformed(e.to_string())),
        }
        let n = tls.read(chunk.as_mut()).await?;
        if n == 0 {
            return Err(ZnError::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_HEAD + MAX_BODY {
            return Err(ZnError::Malformed("response too large".into()));
        }
    }
}

fn request_id() -> io::Result<String> {
    let mut r = [0u8; 8];
    getrandom::getrandom(&mut r).map_err(io::Error::from)?;
    Ok(hex::encode(r))
}

fn unix_now() -> UnixTime {
    Now::from_std(std::time::Instant::now()).unix
}

// =============================================================================================
// Ub client (UE side).

/// A completed bootstrapping: what the UE keeps to derive its NAF keys.
#[derive(Clone, Debug)]
pub struct Bootstrapped {
    /// The bootstrapping transaction identifier (base64(RAND)@BSF-FQDN).
    pub btid: BTid,
    /// Ks = CK ‖ IK.
    pub ks: Ks,
    /// The RAND of the run (an input of every NAF key).
    pub rand: [u8; 16],
    /// End of the key lifetime the BSF announced.
    pub lifetime: UnixTime,
}

/// Why [`bootstrap`] failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum UbError {
    /// The USIM found the network's MAC wrong (not our home network, or a K/OPc mismatch); the
    /// BSF was told with an empty-password answer.
    MacFailure,
    /// The USIM refused the AMF separation bit.
    AmfFailure,
    /// The BSF answered with this HTTP status: 403 after a wrong RES, an unknown IMPI or a bad
    /// AUTS; 400 for a malformed request.
    Refused {
        /// The HTTP status.
        status: u16,
    },
    /// More challenges than a run allows (resynchronisation loop).
    TooManyChallenges,
    /// A message did not follow TS 24.109 / RFC 3310.
    Digest(DigestError),
    /// The TCP connection failed or was closed early.
    Io(io::Error),
}

impl fmt::Display for UbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MacFailure => f.write_str("USIM: network authentication (MAC) failed"),
            Self::AmfFailure => f.write_str("USIM: AMF separation bit refused"),
            Self::Refused { status } => write!(f, "BSF refused bootstrapping (HTTP {status})"),
            Self::TooManyChallenges => f.write_str("too many challenges from the BSF"),
            Self::Digest(e) => write!(f, "Ub: {e}"),
            Self::Io(e) => write!(f, "Ub transport: {e}"),
        }
    }
}

impl std::error::Error for UbError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for UbError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

impl From<DigestError> for UbError {
    fn from(e: DigestError) -> Self {
        match e {
            DigestError::State("too many challenges") => Self::TooManyChallenges,
            e => Self::Digest(e),
        }
    }
}

/// Bootstraps `impi` with the BSF at `addr` (plain HTTP/1.1 over TCP, `realm` the BSF's FQDN):
/// Digest AKA with the simulated `usim`. A synchronisation failure is answered with AUTS and the
/// fresh challenge that follows is run too (bounded by
/// [`MAX_CHALLENGES`](m2msec::gba::digest::MAX_CHALLENGES)).
pub async fn bootstrap(
    addr: SocketAddr,
    impi: &str,
    realm: &str,
    usim: &mut Usim,
) -> Result<Bootstrapped, UbError> {
    let mut client = UbClient::new(impi, realm, UB_URI)?;
    let tcp = TcpStream::connect(addr).await?;
    let _ = tcp.set_nodelay(true);
    let mut conn = UbConn {
        tcp,
        buf: Vec::new(),
    };
    let mut creds = client.start()?;
    let mut keys: Option<(Ks, [u8; 16])> = None;
    loop {
        let response = conn.send(realm, creds).await?;
        match response {
            UbResponse::Unauthorized(challenge) => {
                let ch = client.on_challenge(&challenge)?;
                let mut cnonce = [0u8; 16];
                getrandom::getrandom(&mut cnonce).map_err(io::Error::from)?;
                match usim.authenticate(&ch.rand, &ch.autn) {
                    Ok(r) => {
                        creds = client.answer(UsimOutcome::Res(&r.res), &cnonce, "GET", b"")?;
                        keys = Some((r.ks(), ch.rand));
                    }
                    Err(UsimFailure::SyncFailure { auts }) => {
                        creds = client.answer(
                            UsimOutcome::SyncFailure { auts },
                            &cnonce,
                            "GET",
                            b"",
                        )?;
                        keys = None;
                    }
                    Err(failure) => {
                        // Tell the BSF (RFC 3310 3.4), then stop whatever it answers.
                        let creds = client.answer(UsimOutcome::MacFailure, &cnonce, "GET", b"")?;
                        let _ = conn.send(realm, creds).await;
                        return Err(match failure {
                            UsimFailure::AmfFailure => UbError::AmfFailure,
                            _ => UbError::MacFailure,
                        });
                    }
                }
            }
            UbResponse::Bootstrapped(info) => {
                let xml = info.to_xml()?;
                let info = client.on_bootstrapping_info(xml.as_bytes())?;
                let (ks, rand) = keys.take().ok_or(DigestError::State("200 before a RES"))?;
                let btid = BTid::parse(&info.btid).map_err(|_| DigestError::BadValue("btid"))?;
                return Ok(Bootstrapped {
                    btid,
                    ks,
                    rand,
                    lifetime: info.lifetime,
                });
            }
            UbResponse::Status(status) => return Err(UbError::Refused { status }),
        }
    }
}

/// One client connection of Ub.
struct UbConn {
    tcp: TcpStream,
    buf: Vec<u8>,
}

impl UbConn {
    async fn send(&mut self, host: &str, creds: Credentials) -> Result<UbResponse, UbError> {
        let mut out = Vec::new();
        UbRequest {
            uri: UB_URI.to_owned(),
            host: host.to_owned(),
            authorization: creds,
        }
        .encode(&mut out)?;
        let io = async {
            self.tcp.write_all(&out).await?;
            self.tcp.flush().await?;
            let mut chunk = [0u8; READ_CHUNK];
            loop {
                if let Some((r, used)) = UbResponse::decode(&self.buf)? {
                    self.buf.drain(..used);
                    return Ok(r);
                }
                let n = self.tcp.read(&mut chunk).await?;
                if n == 0 {
                    return Err(UbError::Io(io::ErrorKind::UnexpectedEof.into()));
                }
                self.buf.extend_from_slice(&chunk[..n]);
                if self.buf.len() > MAX_UB_HEAD + m2msec::gba::digest::MAX_XML {
                    return Err(UbError::Digest(DigestError::TooLong));
                }
            }
        };
        tokio::time::timeout(DEFAULT_TIMEOUT, io)
            .await
            .unwrap_or_else(|_| Err(UbError::Io(io::ErrorKind::TimedOut.into())))
    }
}
