//! The GBA Bootstrapping Server Function (TS 33.220) and its two clients: the UE's [`bootstrap`]
//! over Ub and the NAF's [`zn_fetch`] over Zn (`docs/protocol.md`, "BSF (Ub)" and "Zn").
//!
//! ```text
//!  UE ──Ub: HTTP/1.1 over TCP, Digest AKA (TS 24.109, RFC 3310)──▶ BSF ─┬─ subscriber store
//!       GET / (IMPI) ◀─ 401 RAND‖AUTN ─ GET / (RES | AUTS) ◀─ 200 B-TID │  (K, OPc, SQN, GUSS)
//!                                    (+ Authentication-Info rspauth) │
//!  NAF ─Zn: TLS-PSK (the NAF's own PSK), POST /zn/bootstrappingInfo───▶ └─ bootstrapping store
//!       {btid, nafId, flavor} ◀─ {key = Ks_(int_)NAF, impi, lifetime, ...}   (B-TID → Ks, RAND)
//! ```
//!
//! The Digest AKA message logic is the core's ([`m2msec::gba::digest`]), the Zn messages too
//! ([`m2msec::gba::zn`]); Milenage, the USIM model and the key derivation are [`m2msec::gba`]. This module moves bytes, keeps the
//! subscriber and bootstrapping records in an [`AsyncKeyStore`] (wrapped under the KEK by
//! [`RedbKeyStore`](crate::store::RedbKeyStore)) and the pending challenges in memory.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use m2msec::frameworks::binding::{BindingError, Request, Response, Rsc, MAX_BODY, MAX_HEAD};
use m2msec::gba::digest::{
    nonce_tag_ok, AuthenticationInfo, BootstrappingInfo, Credentials, DigestError,
    PendingChallenge, UbClient, UbRequest, UbResponse, UsimOutcome, Verdict, MAX_UB_HEAD,
};
use m2msec::gba::kdf::{ks_int_naf, ks_naf, BTid, NafId};
use m2msec::gba::usim::{generate_vector, resync, sqn_to_u64, SqnProfile, Usim, UsimFailure};
use m2msec::gba::zn::{refusal as zn_refusal, ZnReply};
pub use m2msec::gba::zn::{ZnFlavor, ZnKey, ZnRequest, ZN_PATH};
use m2msec::gba::Ks;
use m2msec::store::{KeyKind, KeyRecord, KeySecret, StoreError, StoreOp, StoreReply};
use m2msec::{ClientConfig, ClientPsk, Now, Psk, PskTable, ServerConfig, UnixTime};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use zeroize::Zeroizing;

pub use super::mef::ServiceHandle;
use crate::store::{AsyncKeyStore, Kek};
use crate::{accept, connect};

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
// Zn client (NAF side). The messages are the core's (`m2msec::gba::zn`): [`ZnRequest`] out,
// [`ZnKey`] (or a refusal) back.

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
    /// The answer is not what the binding specifies (or its lifetime already passed).
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

impl ZnError {
    /// The failures of the binding's request/response exchange (shared with the MEF's clients).
    fn from_exchange(e: super::mef::ClientError) -> Self {
        use super::mef::ClientError as C;
        match e {
            C::Transport(t) => Self::Transport(t),
            C::Closed => Self::Closed,
            other => Self::Malformed(other.to_string()),
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
    let origin = if origin.is_empty() {
        "-".into()
    } else {
        origin
    };
    let req = ZnRequest {
        btid: btid.clone(),
        naf_id: naf_id.clone(),
        flavor,
    }
    .to_request(&origin, &request_id()?)
    .map_err(|e| ZnError::Malformed(e.to_string()))?;
    let response = super::mef::exchange(&mut tls, &req)
        .await
        .map_err(ZnError::from_exchange)?;
    let _ = tls.shutdown().await;
    match ZnReply::from_response(&response, unix_now()) {
        Ok(ZnReply::Key(key)) => Ok(key),
        Ok(ZnReply::Refused { rsc, error, .. }) => Err(ZnError::Refused { rsc, error }),
        Err(e) => Err(ZnError::Malformed(e.to_string())),
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
    /// A message did not follow TS 24.109 / RFC 3310, including a 200 whose
    /// `Authentication-Info` is missing ([`DigestError::MissingRspauth`]) or whose `rspauth`
    /// does not verify ([`DigestError::BadRspauth`]): the BSF did not authenticate itself.
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
        let (response, auth_info, body) = conn.send(realm, creds).await?;
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
            UbResponse::Bootstrapped(_) => {
                // Mutual authentication: the BSF's rspauth over the body as received.
                let info = client.on_bootstrapped(auth_info.as_ref(), &body)?;
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

/// A BSF answer with the 200's `Authentication-Info` and entity body as received.
type UbAnswer = (UbResponse, Option<AuthenticationInfo>, Vec<u8>);

impl UbConn {
    async fn send(&mut self, host: &str, creds: Credentials) -> Result<UbAnswer, UbError> {
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
                if let Some(r) = UbResponse::decode_reply(&self.buf)? {
                    let answer = (r.response, r.authentication_info, r.body.to_vec());
                    self.buf.drain(..r.used);
                    return Ok(answer);
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

// =============================================================================================
// Configuration (`role = "bsf"`).

/// One subscriber provisioned at the BSF. `Debug` redacts K and OPc.
#[derive(Clone)]
pub struct Subscriber {
    /// The IMS private identity (Digest username).
    pub impi: String,
    /// The subscriber key K.
    pub k: Zeroizing<[u8; 16]>,
    /// OPc (from `opc`, or computed from `op` and K).
    pub opc: Zeroizing<[u8; 16]>,
    /// The initial SQN (the last one used); a larger SQN already in the store wins.
    pub sqn: [u8; 6],
    /// The GUSS: the NAF FQDNs this subscriber may use (lower case).
    pub guss: Vec<String>,
    /// Whether GBA_U keys (Ks_int_NAF) may be released for this subscriber.
    pub gba_u: bool,
}

impl fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscriber")
            .field("impi", &self.impi)
            .field("sqn", &sqn_to_u64(&self.sqn))
            .field("guss", &self.guss)
            .field("gba_u", &self.gba_u)
            .finish_non_exhaustive()
    }
}

/// One NAF allowed on Zn: its TLS-PSK identity and PSK, and the FQDNs it serves (a NAF_Id's
/// FQDN must be one of them).
#[derive(Clone, Debug)]
pub struct NafEntry {
    /// The FQDNs this NAF may ask keys for (lower case).
    pub fqdns: Vec<String>,
    /// Its PSK identity on Zn.
    pub psk_identity: String,
    /// Its PSK on Zn.
    pub psk: Psk,
}

/// The `[service]` part: sockets and the store (used by `m2msec bsf`, not by [`BsfService`]).
#[derive(Clone, Debug, Default)]
pub struct BsfListen {
    /// Ub (plain HTTP over TCP).
    pub listen: Option<SocketAddr>,
    /// Zn (TLS-PSK over TCP).
    pub listen_zn: Option<SocketAddr>,
    /// The redb store file.
    pub store: Option<PathBuf>,
    /// The key-encryption key of the store.
    pub kek: Option<Kek>,
}

/// The configuration of a BSF.
#[derive(Clone, Debug)]
pub struct BsfConfig {
    /// The BSF's FQDN: the Digest realm of Ub and the domain of every B-TID.
    pub bsf_fqdn: String,
    /// The provisioned subscribers.
    pub subscribers: Vec<Subscriber>,
    /// The NAFs allowed on Zn.
    pub nafs: Vec<NafEntry>,
    /// Lifetime of a bootstrapping (default [`DEFAULT_KEY_LIFETIME`]).
    pub key_lifetime: Duration,
    /// How long a challenge waits for its answer (default [`DEFAULT_CHALLENGE_LIFETIME`]).
    pub challenge_lifetime: Duration,
    /// Sockets and store.
    pub service: BsfListen,
}

/// A `role = "bsf"` file that cannot be used; the text names the parameter.
#[derive(Debug)]
#[non_exhaustive]
pub enum BsfConfigError {
    /// The file could not be read.
    Io(io::Error),
    /// Not TOML, an unknown or missing parameter, or a value of the wrong type.
    Toml(String),
    /// A parameter has a value outside its syntax: (parameter, problem).
    Invalid(String, String),
}

impl fmt::Display for BsfConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "{e}"),
            Self::Toml(e) => write!(f, "{e}"),
            Self::Invalid(p, what) => write!(f, "{p}: {what}"),
        }
    }
}

impl std::error::Error for BsfConfigError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawBsf {
    role: String,
    bsf_fqdn: String,
    #[serde(default)]
    subscriber: Vec<RawSubscriber>,
    #[serde(default)]
    naf: Vec<RawNaf>,
    #[serde(default)]
    service: RawService,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawSubscriber {
    impi: String,
    k: String,
    opc: Option<String>,
    op: Option<String>,
    sqn: Option<String>,
    #[serde(default)]
    guss: Vec<String>,
    #[serde(default)]
    gba_u: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawNaf {
    fqdn: Option<String>,
    fqdns: Option<Vec<String>>,
    psk_identity: String,
    psk: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawService {
    listen: Option<String>,
    listen_zn: Option<String>,
    store: Option<String>,
    kek: Option<String>,
    kek_file: Option<String>,
    key_lifetime: Option<toml::Value>,
    challenge_lifetime: Option<toml::Value>,
}

fn invalid(param: impl Into<String>, what: &str) -> BsfConfigError {
    BsfConfigError::Invalid(param.into(), what.to_owned())
}

fn hex_array<const N: usize>(
    param: &str,
    text: &str,
) -> Result<Zeroizing<[u8; N]>, BsfConfigError> {
    let mut out = Zeroizing::new([0u8; N]);
    hex::decode_to_slice(text.trim(), out.as_mut())
        .map_err(|_| invalid(param, &format!("expected {} hex digits", 2 * N)))?;
    Ok(out)
}

fn fqdn_ok(s: &str) -> bool {
    NafId::tls_psk(s, 0).is_ok()
}

/// Seconds as an integer, or a number with `s`, `m`, `h` or `d`.
fn duration(
    param: &str,
    v: Option<toml::Value>,
    default: Duration,
) -> Result<Duration, BsfConfigError> {
    let bad = || invalid(param, "expected seconds or a number with s, m, h or d");
    let secs = match v {
        None => return Ok(default),
        Some(toml::Value::Integer(n)) => u64::try_from(n).map_err(|_| bad())?,
        Some(toml::Value::String(s)) => {
            let s = s.trim();
            let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
            let n: u64 = num.parse().map_err(|_| bad())?;
            let mul = match unit {
                "" | "s" => 1,
                "m" => 60,
                "h" => 3600,
                "d" => 86_400,
                _ => return Err(bad()),
            };
            n.checked_mul(mul).ok_or_else(bad)?
        }
        Some(_) => return Err(bad()),
    };
    if secs == 0 {
        return Err(invalid(param, "must be at least one second"));
    }
    Ok(Duration::from_secs(secs))
}

impl BsfConfig {
    /// A BSF named `bsf_fqdn` with no subscribers, no NAFs and the default lifetimes.
    #[must_use]
    pub fn new(bsf_fqdn: &str) -> Self {
        Self {
            bsf_fqdn: bsf_fqdn.to_ascii_lowercase(),
            subscribers: Vec::new(),
            nafs: Vec::new(),
            key_lifetime: DEFAULT_KEY_LIFETIME,
            challenge_lifetime: DEFAULT_CHALLENGE_LIFETIME,
            service: BsfListen::default(),
        }
    }

    /// Reads a `role = "bsf"` file; relative paths are taken from the file's directory.
    pub fn load(path: &std::path::Path) -> Result<Self, BsfConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            BsfConfigError::Io(io::Error::new(e.kind(), format!("{}: {e}", path.display())))
        })?;
        let base = path.parent().unwrap_or(std::path::Path::new("."));
        Self::from_toml(&text, base)
    }

    /// Parses a `role = "bsf"` document (`docs/examples/bsf.toml`); relative paths are joined to
    /// `base`.
    pub fn from_toml(text: &str, base: &std::path::Path) -> Result<Self, BsfConfigError> {
        let raw: RawBsf = toml::from_str(text).map_err(|e| BsfConfigError::Toml(e.to_string()))?;
        if raw.role != "bsf" {
            return Err(invalid("role", "this file is not role = \"bsf\""));
        }
        if !fqdn_ok(&raw.bsf_fqdn) {
            return Err(invalid("bsfFqdn", "not an FQDN"));
        }
        let mut cfg = Self::new(&raw.bsf_fqdn);
        for (i, s) in raw.subscriber.into_iter().enumerate() {
            let at = |p: &str| format!("subscriber[{i}].{p}");
            if s.impi.is_empty()
                || s.impi.len() > 255
                || !s
                    .impi
                    .bytes()
                    .all(|c| (0x21..0x7f).contains(&c) && c != b'"' && c != b'\\')
            {
                return Err(invalid(
                    at("impi"),
                    "expected printable ASCII without spaces or quotes",
                ));
            }
            if cfg.subscribers.iter().any(|o| o.impi == s.impi) {
                return Err(invalid(at("impi"), "repeated"));
            }
            let k = hex_array::<16>(&at("k"), &s.k)?;
            let opc = match (s.opc, s.op) {
                (Some(opc), None) => hex_array::<16>(&at("opc"), &opc)?,
                (None, Some(op)) => {
                    let op = hex_array::<16>(&at("op"), &op)?;
                    Zeroizing::new(m2msec::gba::milenage::opc(&k, &op))
                }
                _ => return Err(invalid(at("opc"), "give exactly one of opc and op")),
            };
            let sqn = match s.sqn {
                None => [0; 6],
                Some(t) => *hex_array::<6>(&at("sqn"), &t)?,
            };
            let mut guss = Vec::new();
            for (j, g) in s.guss.iter().enumerate() {
                if !fqdn_ok(g) {
                    return Err(invalid(at(&format!("guss[{j}]")), "not an FQDN"));
                }
                guss.push(g.to_ascii_lowercase());
            }
            if guss.len() > m2msec::store::MAX_TARGETS {
                return Err(invalid(at("guss"), "too many entries"));
            }
            cfg.subscribers.push(Subscriber {
                impi: s.impi,
                k,
                opc,
                sqn,
                guss,
                gba_u: s.gba_u,
            });
        }
        for (i, n) in raw.naf.into_iter().enumerate() {
            let at = |p: &str| format!("naf[{i}].{p}");
            let fqdns: Vec<String> = match (n.fqdn, n.fqdns) {
                (Some(f), None) => vec![f],
                (None, Some(fs)) if !fs.is_empty() => fs,
                _ => return Err(invalid(at("fqdn"), "give exactly one of fqdn and fqdns")),
            };
            if let Some(bad) = fqdns.iter().find(|f| !fqdn_ok(f)) {
                return Err(invalid(at("fqdns"), &format!("{bad:?} is not an FQDN")));
            }
            if n.psk_identity.is_empty() || n.psk_identity.len() > 1024 {
                return Err(invalid(at("pskIdentity"), "expected 1 to 1024 bytes"));
            }
            if cfg.nafs.iter().any(|o| o.psk_identity == n.psk_identity) {
                return Err(invalid(at("pskIdentity"), "repeated"));
            }
            let psk = Zeroizing::new(
                hex::decode(n.psk.trim()).map_err(|_| invalid(at("psk"), "expected hex"))?,
            );
            let psk = Psk::new(&psk).map_err(|_| invalid(at("psk"), "expected 1 to 512 bytes"))?;
            cfg.nafs.push(NafEntry {
                fqdns: fqdns.iter().map(|f| f.to_ascii_lowercase()).collect(),
                psk_identity: n.psk_identity,
                psk,
            });
        }
        let s = raw.service;
        let addr = |v: Option<String>, p: &str| -> Result<Option<SocketAddr>, BsfConfigError> {
            v.map(|a| {
                a.parse()
                    .map_err(|_| invalid(format!("service.{p}"), "not an address"))
            })
            .transpose()
        };
        cfg.service.listen = addr(s.listen, "listen")?;
        cfg.service.listen_zn = addr(s.listen_zn, "listenZn")?;
        cfg.service.store = s.store.map(|p| base.join(p));
        cfg.service.kek = match (s.kek, s.kek_file) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "service.kekFile",
                    "give only one of kek and kekFile",
                ))
            }
            (Some(k), None) => Some(Kek::new(*hex_array::<32>("service.kek", &k)?)),
            (None, Some(f)) => {
                let file = base.join(f);
                let bytes = Zeroizing::new(std::fs::read(&file).map_err(|e| {
                    BsfConfigError::Io(io::Error::new(
                        e.kind(),
                        format!("kekFile {}: {e}", file.display()),
                    ))
                })?);
                let key = if bytes.len() == 32 {
                    Kek::from_slice(&bytes)
                } else {
                    let text = std::str::from_utf8(&bytes).unwrap_or("");
                    hex_array::<32>("service.kekFile", text)
                        .ok()
                        .map(|k| Kek::new(*k))
                };
                Some(key.ok_or_else(|| {
                    invalid("service.kekFile", "expected 32 bytes or 64 hex digits")
                })?)
            }
            (None, None) => None,
        };
        cfg.key_lifetime = duration("service.keyLifetime", s.key_lifetime, DEFAULT_KEY_LIFETIME)?;
        cfg.challenge_lifetime = duration(
            "service.challengeLifetime",
            s.challenge_lifetime,
            DEFAULT_CHALLENGE_LIFETIME,
        )?;
        Ok(cfg)
    }
}

// =============================================================================================
// Records in the key store.

const SUB_PREFIX: &str = "gba-sub:";
const BTID_PREFIX: &str = "gba-btid:";
/// The AMF of the vectors this BSF generates (separation bit clear: not E-UTRAN).
const AMF: [u8; 2] = [0x00, 0x00];

fn sub_id(impi: &str) -> String {
    format!("{SUB_PREFIX}{impi}")
}

fn btid_id(btid: &BTid) -> String {
    format!("{BTID_PREFIX}{}", btid.as_str())
}

/// A subscriber as stored: secret K ‖ OPc ‖ SQN ‖ flags (bit 0: GBA_U), targets the GUSS.
struct SubRecord {
    impi: String,
    k: Zeroizing<[u8; 16]>,
    opc: Zeroizing<[u8; 16]>,
    sqn: [u8; 6],
    guss: Vec<String>,
    gba_u: bool,
}

impl SubRecord {
    fn to_record(&self) -> Result<KeyRecord, StoreError> {
        let mut secret = Zeroizing::new(Vec::with_capacity(39));
        secret.extend_from_slice(self.k.as_ref());
        secret.extend_from_slice(self.opc.as_ref());
        secret.extend_from_slice(&self.sqn);
        secret.push(u8::from(self.gba_u));
        Ok(KeyRecord::new(
            sub_id(&self.impi),
            KeyKind::GbaSubscriber,
            self.impi.clone(),
            UnixTime(u64::MAX),
            KeySecret::new(&secret)?,
        )?
        .with_targets(self.guss.iter().cloned())?)
    }

    fn from_record(r: &KeyRecord) -> Option<Self> {
        let s = r.secret.expose();
        if r.kind != KeyKind::GbaSubscriber || s.len() != 39 {
            return None;
        }
        let mut k = Zeroizing::new([0u8; 16]);
        let mut opc = Zeroizing::new([0u8; 16]);
        k.copy_from_slice(&s[..16]);
        opc.copy_from_slice(&s[16..32]);
        Some(Self {
            impi: r.owner.clone(),
            k,
            opc,
            sqn: s[32..38].try_into().ok()?,
            guss: r.targets.clone(),
            gba_u: s[38] & 1 != 0,
        })
    }
}

/// A bootstrapping as stored: secret Ks ‖ RAND ‖ bootstrapping time, owner the IMPI.
struct BootRecord {
    impi: String,
    ks: Ks,
    rand: [u8; 16],
    time: UnixTime,
    lifetime: UnixTime,
}

impl BootRecord {
    fn to_record(&self, btid: &BTid) -> Result<KeyRecord, StoreError> {
        let mut secret = Zeroizing::new(Vec::with_capacity(56));
        secret.extend_from_slice(&self.ks.0);
        secret.extend_from_slice(&self.rand);
        secret.extend_from_slice(&self.time.0.to_be_bytes());
        Ok(KeyRecord::new(
            btid_id(btid),
            KeyKind::GbaBootstrapping,
            self.impi.clone(),
            self.lifetime,
            KeySecret::new(&secret)?,
        )?)
    }

    fn from_record(r: &KeyRecord) -> Option<Self> {
        let s = r.secret.expose();
        if r.kind != KeyKind::GbaBootstrapping || s.len() != 56 {
            return None;
        }
        let mut ks = Ks([0; 32]);
        ks.0.copy_from_slice(&s[..32]);
        Some(Self {
            impi: r.owner.clone(),
            ks,
            rand: s[32..48].try_into().ok()?,
            time: UnixTime(u64::from_be_bytes(s[48..56].try_into().ok()?)),
            lifetime: r.not_after,
        })
    }
}

// =============================================================================================
// The service.

struct PendingEntry {
    challenge: PendingChallenge,
    impi: String,
    resyncs: u8,
    expires: tokio::time::Instant,
}

/// The BSF: Ub ([`bind_ub`](Self::bind_ub)) and Zn ([`bind_zn`](Self::bind_zn)) over one
/// subscriber and bootstrapping store.
///
/// The subscribers of the configuration are written to the store when the first listener is
/// bound ([`provision`](Self::provision)): K, OPc, GUSS and GBA_U from the configuration, the SQN
/// the larger of the configured and the stored one. Each challenge advances the subscriber's SQN
/// in the store (durably) before it is sent; challenges wait in memory (at most
/// [`MAX_PENDING`], each for the configured challenge lifetime, answered at most once).
pub struct BsfService<S> {
    config: Arc<BsfConfig>,
    store: Arc<S>,
    nonce_key: Zeroizing<[u8; 32]>,
    pending: Mutex<HashMap<String, PendingEntry>>,
    sqn_lock: tokio::sync::Mutex<()>,
    provisioned: tokio::sync::OnceCell<()>,
    profile: SqnProfile,
    timeout: Duration,
    max_connections: usize,
    epoch: std::time::Instant,
}

impl<S> fmt::Debug for BsfService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BsfService")
            .field("bsf_fqdn", &self.config.bsf_fqdn)
            .finish_non_exhaustive()
    }
}

/// How a Ub request ended, for the log.
fn ub_status(r: &UbResponse) -> u16 {
    match r {
        UbResponse::Unauthorized(_) => 401,
        UbResponse::Bootstrapped(_) => 200,
        UbResponse::Status(s) => *s,
    }
}

impl<S: AsyncKeyStore + 'static> BsfService<S> {
    /// A BSF for `config` over `store`.
    pub fn new(config: Arc<BsfConfig>, store: Arc<S>) -> Self {
        let mut nonce_key = Zeroizing::new([0u8; 32]);
        // Without OS randomness nothing here can work; the first challenge fails the same way.
        let _ = getrandom::getrandom(nonce_key.as_mut());
        Self {
            config,
            store,
            nonce_key,
            pending: Mutex::new(HashMap::new()),
            sqn_lock: tokio::sync::Mutex::new(()),
            provisioned: tokio::sync::OnceCell::new(),
            profile: SqnProfile::default(),
            timeout: DEFAULT_TIMEOUT,
            max_connections: super::mef::DEFAULT_MAX_CONNECTIONS,
            epoch: std::time::Instant::now(),
        }
    }

    /// Bounds each handshake, each wait for a request and each write (default
    /// [`DEFAULT_TIMEOUT`]).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &BsfConfig {
        &self.config
    }

    /// Writes the configured subscribers to the store (once per service; later calls return at
    /// once). A stored SQN larger than the configured one is kept.
    pub async fn provision(&self) -> Result<(), StoreError> {
        self.provisioned
            .get_or_try_init(|| async {
                let _guard = self.sqn_lock.lock().await;
                for s in &self.config.subscribers {
                    let stored = self
                        .store
                        .get(sub_id(&s.impi))
                        .await?
                        .and_then(|r| SubRecord::from_record(&r));
                    let sqn = match stored {
                        Some(old) if sqn_to_u64(&old.sqn) > sqn_to_u64(&s.sqn) => old.sqn,
                        _ => s.sqn,
                    };
                    let rec = SubRecord {
                        impi: s.impi.clone(),
                        k: s.k.clone(),
                        opc: s.opc.clone(),
                        sqn,
                        guss: s.guss.clone(),
                        gba_u: s.gba_u,
                    };
                    self.store.put(rec.to_record()?).await?;
                }
                Ok(())
            })
            .await
            .map(|_| ())
    }

    /// The SQN the store holds for `impi` (the last one used in a challenge).
    pub async fn stored_sqn(&self, impi: &str) -> Result<Option<[u8; 6]>, StoreError> {
        Ok(self
            .store
            .get(sub_id(impi))
            .await?
            .and_then(|r| SubRecord::from_record(&r))
            .map(|s| s.sqn))
    }

    /// Binds Ub (HTTP/1.1 over plain TCP) on `addr` and serves in a background task.
    pub async fn bind_ub(self: &Arc<Self>, addr: SocketAddr) -> io::Result<ServiceHandle> {
        self.provision().await.map_err(io::Error::other)?;
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr().ok();
        let this = Arc::clone(self);
        Ok(ServiceHandle::spawn(local, move |stop| async move {
            let max = this.max_connections;
            accept_loop(listener, stop, max, move |tcp, peer| {
                let this = Arc::clone(&this);
                async move { this.serve_ub(tcp, peer).await }
            })
            .await
        }))
    }

    /// Binds Zn (TLS-PSK over TCP, each NAF with its own PSK) on `addr` and serves in a
    /// background task.
    pub async fn bind_zn(self: &Arc<Self>, addr: SocketAddr) -> io::Result<ServiceHandle> {
        self.provision().await.map_err(io::Error::other)?;
        let mut table = PskTable::new();
        for n in &self.config.nafs {
            table
                .insert(n.psk_identity.as_bytes(), n.psk.clone())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{e:?}")))?;
        }
        let tls = ServerConfig::builder(Box::new(table))
            .hide_unknown_identity(true)
            .build()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{e:?}")))?;
        let tls = Arc::new(tls);
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr().ok();
        let this = Arc::clone(self);
        Ok(ServiceHandle::spawn(local, move |stop| async move {
            let max = this.max_connections;
            accept_loop(listener, stop, max, move |tcp, peer| {
                let this = Arc::clone(&this);
                let tls = Arc::clone(&tls);
                async move { this.serve_zn(tcp, peer, tls).await }
            })
            .await
        }))
    }

    fn now(&self) -> UnixTime {
        Now::from_std(self.epoch).unix
    }

    // ---- Ub ---------------------------------------------------------------------------------

    async fn serve_ub(&self, mut tcp: TcpStream, peer: SocketAddr) {
        let _ = tcp.set_nodelay(true);
        let mut buf: Vec<u8> = Vec::new();
        let mut deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            let ((response, auth_info), close) = match UbRequest::decode(&buf) {
                Ok(Some((req, used))) => {
                    buf.drain(..used);
                    (self.answer_ub(&req, peer).await, false)
                }
                Ok(None) => {
                    let mut chunk = [0u8; READ_CHUNK];
                    match tokio::time::timeout_at(deadline, tcp.read(&mut chunk)).await {
                        Ok(Ok(n)) if n > 0 => {
                            buf.extend_from_slice(&chunk[..n]);
                            continue;
                        }
                        _ => return,
                    }
                }
                Err(e) => {
                    tracing::warn!(peer = %peer, error = %e, "BSF Ub request refused (400)");
                    ((UbResponse::Status(400), None), true)
                }
            };
            let mut out = Vec::new();
            if response.encode_with(auth_info.as_ref(), &mut out).is_err() {
                out.clear();
                let _ = UbResponse::Status(500).encode(&mut out);
            }
            let write = async {
                tcp.write_all(&out).await?;
                tcp.flush().await
            };
            if !matches!(tokio::time::timeout(self.timeout, write).await, Ok(Ok(()))) || close {
                return;
            }
            deadline = tokio::time::Instant::now() + self.timeout;
        }
    }

    /// The answer to one Ub request, with the `Authentication-Info` of a 200.
    async fn answer_ub(
        &self,
        req: &UbRequest,
        peer: SocketAddr,
    ) -> (UbResponse, Option<AuthenticationInfo>) {
        let creds = &req.authorization;
        let impi = creds.username.as_str();
        let answer = if !creds.realm.eq_ignore_ascii_case(&self.config.bsf_fqdn) {
            tracing::warn!(peer = %peer, impi, realm = %creds.realm, "BSF Ub: foreign realm");
            (UbResponse::Status(403), None)
        } else if creds.is_initial() {
            (self.challenge(impi, None, 0).await, None)
        } else {
            self.answer_challenge(req, peer).await
        };
        tracing::info!(peer = %peer, impi, status = ub_status(&answer.0), "BSF Ub answered");
        answer
    }

    async fn answer_challenge(
        &self,
        req: &UbRequest,
        peer: SocketAddr,
    ) -> (UbResponse, Option<AuthenticationInfo>) {
        let creds = &req.authorization;
        let impi = creds.username.as_str();
        let answer = self.answer_pending(req, peer).await;
        let (response, entry) = match answer {
            Ok(entry) => (self.bootstrapped(&entry).await, entry),
            Err(response) => return (response, None),
        };
        let UbResponse::Bootstrapped(info) = &response else {
            return (response, None);
        };
        // RFC 2617 3.2.3: rspauth (XRES as the password, empty method) over the body as sent.
        let auth = info.to_xml().and_then(|xml| {
            entry
                .challenge
                .authentication_info("GET", &req.uri, b"", creds, xml.as_bytes())
        });
        match auth {
            Ok(a) => (response, Some(a)),
            Err(e) => {
                tracing::error!(peer = %peer, impi, error = %e, "BSF Ub: no Authentication-Info");
                (UbResponse::Status(500), None)
            }
        }
    }

    /// The pending challenge a verified answer belongs to, or the refusal / fresh challenge.
    async fn answer_pending(
        &self,
        req: &UbRequest,
        peer: SocketAddr,
    ) -> Result<PendingEntry, UbResponse> {
        let creds = &req.authorization;
        let impi = creds.username.as_str();
        if !nonce_tag_ok(
            self.nonce_key.as_ref(),
            impi,
            &self.config.bsf_fqdn,
            &creds.nonce,
        ) {
            tracing::warn!(peer = %peer, impi, "BSF Ub: nonce not issued here for this user");
            return Err(UbResponse::Status(403));
        }
        let entry = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            pending.remove(&creds.nonce)
        };
        let Some(entry) = entry.filter(|e| e.expires > tokio::time::Instant::now()) else {
            // Expired or already answered: a fresh challenge, marked stale (RFC 7616 3.3).
            return Err(match self.challenge(impi, None, 0).await {
                UbResponse::Unauthorized(mut c) => {
                    c.stale = true;
                    UbResponse::Unauthorized(c)
                }
                other => other,
            });
        };
        let refusal = match entry.challenge.verify("GET", &req.uri, b"", creds) {
            Verdict::Verified => return Ok(entry),
            Verdict::BadResponse => {
                tracing::warn!(peer = %peer, impi, "BSF Ub: wrong response (RES)");
                UbResponse::Status(403)
            }
            Verdict::NetworkAuthFailed => {
                tracing::warn!(peer = %peer, impi, "BSF Ub: the UE reported a MAC failure");
                UbResponse::Status(403)
            }
            Verdict::Resync { rand, auts } => {
                if entry.resyncs >= MAX_RESYNCS {
                    tracing::warn!(peer = %peer, impi, "BSF Ub: repeated synchronisation failure");
                    return Err(UbResponse::Status(403));
                }
                let sub = match self.subscriber(&entry.impi).await {
                    Ok(Some(s)) => s,
                    Ok(None) => return Err(UbResponse::Status(403)),
                    Err(_) => return Err(UbResponse::Status(500)),
                };
                match resync(&sub.k, &sub.opc, &rand, &auts) {
                    Ok(sqn_ms) => {
                        tracing::info!(
                            impi,
                            sqn_ms = sqn_to_u64(&sqn_ms),
                            "BSF Ub: SQN resynchronised"
                        );
                        self.challenge(&entry.impi, Some(sqn_ms), entry.resyncs + 1)
                            .await
                    }
                    Err(_) => {
                        tracing::warn!(peer = %peer, impi, "BSF Ub: AUTS failed MAC-S");
                        UbResponse::Status(403)
                    }
                }
            }
            Verdict::Malformed(what) => {
                tracing::warn!(peer = %peer, impi, what, "BSF Ub: answer does not fit the challenge");
                UbResponse::Status(400)
            }
        };
        Err(refusal)
    }

    async fn subscriber(&self, impi: &str) -> Result<Option<SubRecord>, StoreError> {
        Ok(self
            .store
            .get(sub_id(impi))
            .await?
            .and_then(|r| SubRecord::from_record(&r)))
    }

    /// Advances and stores the SQN (from `resync_base`, the USIM's SQN_MS, after a
    /// resynchronisation), then issues a challenge.
    async fn challenge(&self, impi: &str, resync_base: Option<[u8; 6]>, resyncs: u8) -> UbResponse {
        let vector = {
            let _guard = self.sqn_lock.lock().await;
            let mut sub = match self.subscriber(impi).await {
                Ok(Some(s)) => s,
                Ok(None) => {
                    tracing::warn!(impi, "BSF Ub: unknown IMPI");
                    return UbResponse::Status(403);
                }
                Err(e) => {
                    tracing::error!(impi, error = %e, "BSF subscriber store failed");
                    return UbResponse::Status(500);
                }
            };
            let base = resync_base.unwrap_or(sub.sqn);
            let Some(next) = self.profile.next_after(&base, 0) else {
                tracing::error!(impi, "BSF Ub: SQN exhausted");
                return UbResponse::Status(500);
            };
            sub.sqn = next;
            // Durable before the challenge leaves: a crash never reuses an SQN.
            let stored = match sub.to_record() {
                Ok(r) => self.store.put(r).await,
                Err(e) => Err(e),
            };
            if let Err(e) = stored {
                tracing::error!(impi, error = %e, "BSF subscriber store failed");
                return UbResponse::Status(500);
            }
            let mut rand = [0u8; 16];
            if getrandom::getrandom(&mut rand).is_err() {
                return UbResponse::Status(500);
            }
            generate_vector(&sub.k, &sub.opc, &next, &AMF, &rand)
        };
        let pending = match PendingChallenge::new(
            self.nonce_key.as_ref(),
            impi,
            &self.config.bsf_fqdn,
            vector,
        ) {
            Ok(p) => p,
            Err(_) => return UbResponse::Status(400),
        };
        let challenge = pending.challenge();
        let now = tokio::time::Instant::now();
        let mut map = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_PENDING {
            map.retain(|_, e| e.expires > now);
        }
        if map.len() >= MAX_PENDING {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, e)| e.expires)
                .map(|(n, _)| n.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(
            pending.nonce().to_owned(),
            PendingEntry {
                challenge: pending,
                impi: impi.to_owned(),
                resyncs,
                expires: now + self.config.challenge_lifetime,
            },
        );
        UbResponse::Unauthorized(challenge)
    }

    /// Stores the bootstrapping of a verified answer (replacing the subscriber's earlier ones)
    /// and answers 200.
    async fn bootstrapped(&self, entry: &PendingEntry) -> UbResponse {
        let rand = entry.challenge.rand();
        let Ok(btid) = BTid::new(&rand, &self.config.bsf_fqdn) else {
            return UbResponse::Status(500);
        };
        let now = self.now();
        let lifetime = UnixTime(now.0.saturating_add(self.config.key_lifetime.as_secs()));
        let record = BootRecord {
            impi: entry.impi.clone(),
            ks: entry.challenge.ks(),
            rand,
            time: now,
            lifetime,
        };
        let result = async {
            // TS 33.220 4.5.2: a new bootstrapping replaces the subscriber's earlier ones.
            if let StoreReply::Listed(infos) = self
                .store
                .execute(StoreOp::ListByOwner(entry.impi.clone()))
                .await?
            {
                for i in infos {
                    if i.kind == KeyKind::GbaBootstrapping {
                        self.store.delete(i.id).await?;
                    }
                }
            }
            self.store.put(record.to_record(&btid)?).await
        }
        .await;
        if let Err(e) = result {
            tracing::error!(impi = %entry.impi, error = %e, "BSF bootstrapping store failed");
            return UbResponse::Status(500);
        }
        tracing::info!(impi = %entry.impi, btid = %btid, lifetime = lifetime.0, "BSF bootstrapped");
        UbResponse::Bootstrapped(BootstrappingInfo {
            btid: btid.as_str().to_owned(),
            lifetime,
        })
    }

    // ---- Zn ---------------------------------------------------------------------------------

    async fn serve_zn(&self, tcp: TcpStream, peer: SocketAddr, tls: Arc<ServerConfig>) {
        let _ = tcp.set_nodelay(true);
        let mut tls = match tokio::time::timeout(self.timeout, accept(tcp, tls)).await {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => {
                tracing::warn!(peer = %peer, error = %e, "BSF Zn handshake failed");
                return;
            }
            Err(_) => {
                tracing::warn!(peer = %peer, "BSF Zn handshake timed out");
                return;
            }
        };
        let identity = String::from_utf8_lossy(&tls.info().psk_identity).into_owned();
        let Some(naf) = self.config.nafs.iter().find(|n| n.psk_identity == identity) else {
            let _ = tls.shutdown().await;
            return;
        };
        tracing::info!(peer = %peer, psk_identity = %identity, "BSF Zn handshake completed");
        let mut buf = Zeroizing::new(Vec::with_capacity(READ_CHUNK));
        let mut deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            let (response, close) = match Request::decode(&buf) {
                Ok(Some((req, used))) => {
                    buf.drain(..used);
                    let mut r = self.answer_zn(naf, &req).await;
                    r.request_id = req.request_id.clone();
                    (r, false)
                }
                Ok(None) => {
                    let mut chunk = Zeroizing::new([0u8; READ_CHUNK]);
                    match tokio::time::timeout_at(deadline, tls.read(chunk.as_mut())).await {
                        Ok(Ok(n)) if n > 0 => {
                            buf.extend_from_slice(&chunk[..n]);
                            if buf.len() > MAX_HEAD + MAX_BODY {
                                (refusal(Rsc::BadRequest, "message too large", None), true)
                            } else {
                                continue;
                            }
                        }
                        _ => {
                            let _ = tls.shutdown().await;
                            return;
                        }
                    }
                }
                Err(e) => {
                    let what = match e {
                        BindingError::TooLarge => "message too large",
                        BindingError::MissingHeader(_) => "missing header",
                        _ => "malformed request",
                    };
                    (refusal(Rsc::BadRequest, what, None), true)
                }
            };
            if !response.rsc.is_success() {
                super::mef::log_refusal("BSF Zn", &identity, ZN_PATH, &response);
            }
            let mut out = Zeroizing::new(Vec::new());
            if response.encode(&mut out).is_err() {
                out.clear();
                let _ = refusal(Rsc::InternalError, "unencodable response", None).encode(&mut out);
            }
            let write = async {
                tls.write_all(&out).await?;
                tls.flush().await
            };
            if !matches!(tokio::time::timeout(self.timeout, write).await, Ok(Ok(()))) {
                return;
            }
            if close {
                let _ = tls.shutdown().await;
                return;
            }
            deadline = tokio::time::Instant::now() + self.timeout;
        }
    }

    async fn answer_zn(&self, naf: &NafEntry, req: &Request) -> Response {
        let ZnRequest {
            btid,
            naf_id,
            flavor,
        } = match ZnRequest::from_request(req) {
            Ok(r) => r,
            Err(e) => return e.refusal("-"),
        };
        let fqdn = naf_id.fqdn().to_ascii_lowercase();
        if !naf.fqdns.contains(&fqdn) {
            return refusal(
                Rsc::NoPrivilege,
                "NAF_Id is not an FQDN of this NAF",
                Some("nafId"),
            );
        }
        if !btid.bsf_fqdn().eq_ignore_ascii_case(&self.config.bsf_fqdn) {
            return refusal(Rsc::NotFound, "unknown B-TID", Some("btid"));
        }
        let boot = match self.store.get(btid_id(&btid)).await {
            Ok(Some(r)) => match BootRecord::from_record(&r) {
                Some(b) => b,
                None => return refusal(Rsc::InternalError, "bootstrapping record", None),
            },
            Ok(None) => return refusal(Rsc::NotFound, "unknown B-TID", Some("btid")),
            Err(e) => {
                tracing::error!(error = %e, "BSF bootstrapping store failed");
                return refusal(Rsc::InternalError, "key store", None);
            }
        };
        if boot.lifetime <= self.now() {
            let _ = self.store.delete(btid_id(&btid)).await;
            return refusal(Rsc::NotFound, "bootstrapping expired", Some("btid"));
        }
        let sub = match self.subscriber(&boot.impi).await {
            Ok(Some(s)) => s,
            Ok(None) => return refusal(Rsc::NotFound, "subscriber no longer known", Some("btid")),
            Err(_) => return refusal(Rsc::InternalError, "key store", None),
        };
        if !sub.guss.contains(&fqdn) {
            return refusal(
                Rsc::NoPrivilege,
                "NAF not allowed by the GUSS",
                Some("nafId"),
            );
        }
        if flavor == ZnFlavor::Uicc && !sub.gba_u {
            return refusal(
                Rsc::NoPrivilege,
                "GBA_U not allowed for this subscriber",
                Some("flavor"),
            );
        }
        let key = match flavor {
            ZnFlavor::Me => ks_naf(&boot.ks, &boot.rand, &boot.impi, &naf_id),
            ZnFlavor::Uicc => ks_int_naf(&boot.ks, &boot.rand, &boot.impi, &naf_id),
        };
        let Ok(key) = key else {
            return refusal(Rsc::BadRequest, "NAF key derivation", Some("nafId"));
        };
        let uss = sub
            .guss
            .iter()
            .filter(|g| naf.fqdns.contains(g))
            .cloned()
            .collect();
        let answer = ZnKey {
            key,
            impi: boot.impi.clone(),
            lifetime: boot.lifetime,
            bootstrapping_time: boot.time,
            uss,
        }
        .to_response("-");
        match answer {
            Ok(response) => {
                tracing::info!(
                    psk_identity = %naf.psk_identity,
                    btid = %btid,
                    naf = %fqdn,
                    flavor = %flavor,
                    "BSF Zn key released"
                );
                response
            }
            Err(e) => {
                tracing::error!(error = %e, "BSF Zn answer not encodable");
                refusal(Rsc::InternalError, "encoding", None)
            }
        }
    }
}

fn refusal(rsc: Rsc, error: &str, parameter: Option<&str>) -> Response {
    zn_refusal(rsc, error, parameter, "-")
}

/// Accepts until `stop`, each connection in its own task (at most `max` at once).
async fn accept_loop<F, Fut>(
    listener: TcpListener,
    stop: watch::Receiver<bool>,
    max: usize,
    handle: F,
) -> io::Result<()>
where
    F: Fn(TcpStream, SocketAddr) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let failed = |e: &io::Error| tracing::warn!(error = %e, "BSF accept failed");
    super::serve::tcp(listener, stop, max, handle, failed).await
}
