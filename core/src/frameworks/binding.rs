//! The MEF/MAF wire binding of `docs/protocol.md`: HTTP/1.1 request/response framing with
//! oneM2M headers, and the JSON bodies of TS-0003's procedures as typed structs.
//!
//! Sans-IO and `no_std` (+ alloc): bytes in, typed messages out, and back. Parsing is bounded
//! ([`MAX_HEAD`], [`MAX_BODY`]) and never panics; HTTP parsing uses `httparse`, JSON `serde_json`.
//! Key material in bodies is held in [`HexKey`] (zeroized, redacted `Debug`) and bodies that
//! carry keys in [`Body`] (zeroized on drop).

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

/// Largest request or status line plus headers accepted.
pub const MAX_HEAD: usize = 8 * 1024;
/// Largest body accepted.
pub const MAX_BODY: usize = 16 * 1024;
/// Most headers parsed.
const MAX_HEADERS: usize = 24;

/// A message body; zeroized on drop because some carry keys.
pub type Body = Zeroizing<Vec<u8>>;

/// Why bytes are not a valid message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BindingError {
    /// Not HTTP/1.1 as this binding uses it.
    Malformed(&'static str),
    /// Head or body above the limits.
    TooLarge,
    /// A required header is missing.
    MissingHeader(&'static str),
    /// The JSON body does not match the procedure; names the parameter when one is at fault.
    BadContent(String),
    /// Unknown procedure (method and path).
    UnknownRoute,
}

impl fmt::Display for BindingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(w) => write!(f, "malformed message: {w}"),
            Self::TooLarge => f.write_str("message too large"),
            Self::MissingHeader(h) => write!(f, "missing header {h}"),
            Self::BadContent(w) => write!(f, "bad content: {w}"),
            Self::UnknownRoute => f.write_str("unknown procedure"),
        }
    }
}

/// The HTTP methods the binding uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Retrieve.
    Get,
    /// Create.
    Post,
    /// Delete.
    Delete,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Delete => "DELETE",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "GET" => Some(Self::Get),
            "POST" => Some(Self::Post),
            "DELETE" => Some(Self::Delete),
            _ => None,
        }
    }
}

/// oneM2M response status codes used by the binding (TS-0004 `m2m:responseStatusCode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rsc {
    /// 2000 OK.
    Ok,
    /// 2001 CREATED.
    Created,
    /// 2002 DELETED.
    Deleted,
    /// 4000 BAD_REQUEST.
    BadRequest,
    /// 4004 NOT_FOUND.
    NotFound,
    /// 4103 ORIGINATOR_HAS_NO_PRIVILEGE.
    NoPrivilege,
    /// 4105 CONFLICT.
    Conflict,
    /// 5000 INTERNAL_SERVER_ERROR.
    InternalError,
}

impl Rsc {
    /// The numeric code.
    #[must_use]
    pub const fn code(self) -> u16 {
        match self {
            Self::Ok => 2000,
            Self::Created => 2001,
            Self::Deleted => 2002,
            Self::BadRequest => 4000,
            Self::NotFound => 4004,
            Self::NoPrivilege => 4103,
            Self::Conflict => 4105,
            Self::InternalError => 5000,
        }
    }

    /// The code with this number.
    #[must_use]
    pub fn from_code(code: u16) -> Option<Self> {
        [
            Self::Ok,
            Self::Created,
            Self::Deleted,
            Self::BadRequest,
            Self::NotFound,
            Self::NoPrivilege,
            Self::Conflict,
            Self::InternalError,
        ]
        .into_iter()
        .find(|r| r.code() == code)
    }

    /// The HTTP status and reason that carry it.
    #[must_use]
    pub const fn http(self) -> (u16, &'static str) {
        match self {
            Self::Ok | Self::Deleted => (200, "OK"),
            Self::Created => (201, "Created"),
            Self::BadRequest => (400, "Bad Request"),
            Self::NotFound => (404, "Not Found"),
            Self::NoPrivilege => (403, "Forbidden"),
            Self::Conflict => (409, "Conflict"),
            Self::InternalError => (500, "Internal Server Error"),
        }
    }

    /// Whether the request succeeded.
    #[must_use]
    pub const fn is_success(self) -> bool {
        self.code() < 3000
    }
}

/// A request primitive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The path, e.g. `/maf/keyRetrieval/B41C...`.
    pub path: String,
    /// `X-M2M-Origin`.
    pub origin: String,
    /// `X-M2M-RI`.
    pub request_id: String,
    /// JSON content (may be empty).
    pub body: Body,
}

/// A response primitive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// `X-M2M-RSC`.
    pub rsc: Rsc,
    /// `X-M2M-RI`, echoed.
    pub request_id: String,
    /// JSON content (may be empty).
    pub body: Body,
}

/// The rule for the path, `X-M2M-Origin` and `X-M2M-RI`: 1 to 512 bytes of visible ASCII (no
/// space, no control byte, no other byte). The encoder refuses other values and the decoder
/// refuses them too, so whatever decodes re-encodes.
fn header_value_ok(v: &str) -> bool {
    !v.is_empty() && v.len() <= 512 && v.bytes().all(|b| (0x21..0x7f).contains(&b))
}

fn put_body_headers(out: &mut Vec<u8>, body: &[u8]) {
    if !body.is_empty() {
        out.extend_from_slice(b"Content-Type: application/json\r\n");
    }
    out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(body);
}

impl Request {
    /// Appends the HTTP/1.1 encoding. Fails for header values with spaces or control bytes.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), BindingError> {
        if !self.path.starts_with('/') || !header_value_ok(&self.path) {
            return Err(BindingError::Malformed("path"));
        }
        if !header_value_ok(&self.origin) || !header_value_ok(&self.request_id) {
            return Err(BindingError::Malformed("header value"));
        }
        if self.body.len() > MAX_BODY {
            return Err(BindingError::TooLarge);
        }
        out.extend_from_slice(
            format!(
                "{} {} HTTP/1.1\r\nHost: m2msec\r\nX-M2M-Origin: {}\r\nX-M2M-RI: {}\r\n",
                self.method.as_str(),
                self.path,
                self.origin,
                self.request_id
            )
            .as_bytes(),
        );
        put_body_headers(out, &self.body);
        Ok(())
    }

    /// Parses one request from the start of `buf`: `Ok(None)` when more bytes are needed, else
    /// the request and how many bytes it took. A path, `X-M2M-Origin` or `X-M2M-RI` that
    /// [`encode`](Self::encode) would refuse is refused here too (`Malformed`).
    pub fn decode(buf: &[u8]) -> Result<Option<(Self, usize)>, BindingError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        let Some(head) = head_length(req.parse(buf), buf.len(), "request head")? else {
            return Ok(None);
        };
        check_version(req.version)?;
        let method = req
            .method
            .and_then(Method::parse)
            .ok_or(BindingError::Malformed("method"))?;
        let path = req.path.ok_or(BindingError::Malformed("path"))?;
        // The encoder's rules (`encode`), so that whatever decodes re-encodes.
        if !path.starts_with('/') || !header_value_ok(path) {
            return Err(BindingError::Malformed("path"));
        }
        let fields = Fields::read(req.headers)?;
        let origin = fields
            .origin
            .ok_or(BindingError::MissingHeader("X-M2M-Origin"))?;
        let request_id = fields
            .request_id
            .ok_or(BindingError::MissingHeader("X-M2M-RI"))?;
        if !header_value_ok(&origin) || !header_value_ok(&request_id) {
            return Err(BindingError::Malformed("header value"));
        }
        let Some((body, used)) = take_body(buf, head, fields.length)? else {
            return Ok(None);
        };
        Ok(Some((
            Self {
                method,
                path: path.to_string(),
                origin,
                request_id,
                body,
            },
            used,
        )))
    }
}

impl Response {
    /// Appends the HTTP/1.1 encoding.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), BindingError> {
        if !header_value_ok(&self.request_id) {
            return Err(BindingError::Malformed("header value"));
        }
        if self.body.len() > MAX_BODY {
            return Err(BindingError::TooLarge);
        }
        let (status, reason) = self.rsc.http();
        out.extend_from_slice(
            format!(
                "HTTP/1.1 {status} {reason}\r\nX-M2M-RSC: {}\r\nX-M2M-RI: {}\r\n",
                self.rsc.code(),
                self.request_id
            )
            .as_bytes(),
        );
        put_body_headers(out, &self.body);
        Ok(())
    }

    /// Parses one response from the start of `buf` (as [`Request::decode`]).
    pub fn decode(buf: &[u8]) -> Result<Option<(Self, usize)>, BindingError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut headers);
        let Some(head) = head_length(resp.parse(buf), buf.len(), "status head")? else {
            return Ok(None);
        };
        check_version(resp.version)?;
        let status = resp.code.ok_or(BindingError::Malformed("status"))?;
        let fields = Fields::read(resp.headers)?;
        let rsc = fields.rsc.ok_or(BindingError::MissingHeader("X-M2M-RSC"))?;
        if rsc.http().0 != status {
            return Err(BindingError::Malformed("status does not match X-M2M-RSC"));
        }
        let request_id = fields
            .request_id
            .ok_or(BindingError::MissingHeader("X-M2M-RI"))?;
        if !header_value_ok(&request_id) {
            return Err(BindingError::Malformed("header value"));
        }
        let Some((body, used)) = take_body(buf, head, fields.length)? else {
            return Ok(None);
        };
        Ok(Some((
            Self {
                rsc,
                request_id,
                body,
            },
            used,
        )))
    }
}

/// The length of a complete head, `None` while more bytes may complete it, or the error.
fn head_length(
    parsed: httparse::Result<usize>,
    have: usize,
    what: &'static str,
) -> Result<Option<usize>, BindingError> {
    match parsed {
        Ok(httparse::Status::Complete(n)) if n > MAX_HEAD => Err(BindingError::TooLarge),
        Ok(httparse::Status::Complete(n)) => Ok(Some(n)),
        Ok(httparse::Status::Partial) if have > MAX_HEAD => Err(BindingError::TooLarge),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(_) => Err(BindingError::Malformed(what)),
    }
}

fn check_version(minor: Option<u8>) -> Result<(), BindingError> {
    if minor == Some(1) {
        Ok(())
    } else {
        Err(BindingError::Malformed("HTTP version"))
    }
}

/// The headers the binding reads.
#[derive(Default)]
struct Fields {
    origin: Option<String>,
    request_id: Option<String>,
    rsc: Option<Rsc>,
    length: usize,
}

impl Fields {
    fn read(headers: &[httparse::Header<'_>]) -> Result<Self, BindingError> {
        let mut f = Self::default();
        let mut length = None;
        for h in headers {
            let value = core::str::from_utf8(h.value)
                .map_err(|_| BindingError::Malformed("header value"))?;
            let name = h.name;
            let dup = if name.eq_ignore_ascii_case("X-M2M-Origin") {
                f.origin.replace(value.to_string()).is_some()
            } else if name.eq_ignore_ascii_case("X-M2M-RI") {
                f.request_id.replace(value.to_string()).is_some()
            } else if name.eq_ignore_ascii_case("X-M2M-RSC") {
                let code = value
                    .parse()
                    .ok()
                    .and_then(Rsc::from_code)
                    .ok_or(BindingError::Malformed("X-M2M-RSC"))?;
                f.rsc.replace(code).is_some()
            } else if name.eq_ignore_ascii_case("Content-Length") {
                let n: usize = value
                    .parse()
                    .map_err(|_| BindingError::Malformed("Content-Length"))?;
                length.replace(n).is_some()
            } else if name.eq_ignore_ascii_case("Transfer-Encoding") {
                return Err(BindingError::Malformed("Transfer-Encoding is not used"));
            } else {
                false
            };
            if dup {
                return Err(BindingError::Malformed("repeated header"));
            }
        }
        f.length = length.ok_or(BindingError::MissingHeader("Content-Length"))?;
        if f.length > MAX_BODY {
            return Err(BindingError::TooLarge);
        }
        Ok(f)
    }
}

fn take_body(buf: &[u8], head: usize, len: usize) -> Result<Option<(Body, usize)>, BindingError> {
    let Some(body) = buf.get(head..head + len) else {
        return Ok(None);
    };
    Ok(Some((Zeroizing::new(body.to_vec()), head + len)))
}

/// A 32-byte key in JSON as lower-case hex; zeroized on drop, redacted in `Debug`.
#[derive(Clone, PartialEq, Eq, Zeroize)]
#[zeroize(drop)]
pub struct HexKey(pub [u8; 32]);

impl fmt::Debug for HexKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HexKey(<redacted>)")
    }
}

impl Serialize for HexKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut text = Zeroizing::new(String::with_capacity(64));
        for b in self.0 {
            text.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
            text.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
        }
        s.serialize_str(&text)
    }
}

impl<'de> Deserialize<'de> for HexKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = Zeroizing::new(String::deserialize(d)?);
        let bytes = text.as_bytes();
        if bytes.len() != 64 {
            return Err(serde::de::Error::custom("a key is 64 hex digits"));
        }
        let nibble = |c: u8| -> Result<u8, D::Error> {
            match c {
                b'0'..=b'9' => Ok(c - b'0'),
                b'a'..=b'f' => Ok(c - b'a' + 10),
                b'A'..=b'F' => Ok(c - b'A' + 10),
                _ => Err(serde::de::Error::custom("a key is hex")),
            }
        };
        let mut k = [0u8; 32];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            k[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
        }
        Ok(Self(k))
    }
}

/// MEF Enrolment request (`POST /mef/enrolment`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolmentRequest {
    /// Enrolee-ID.
    #[serde(rename = "enroleeID")]
    pub enrolee_id: String,
    /// MAF-ID the Enrolee wants to be provisioned for.
    #[serde(rename = "mafID")]
    pub maf_id: String,
}

/// MEF Enrolment response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolmentResponse {
    /// KeID the MEF derived (the Enrolee checks it equals its own).
    #[serde(rename = "keID")]
    pub ke_id: String,
    /// MAF-ID.
    #[serde(rename = "mafID")]
    pub maf_id: String,
    /// Where the MAF listens.
    #[serde(rename = "mafURI")]
    pub maf_uri: String,
    /// Ke expiry, Unix seconds.
    #[serde(rename = "expirationTime")]
    pub expiration_time: u64,
}

/// MEF fetchCredentials response (`GET /mef/fetchCredentials/<KeID>/<SUID>`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FetchCredentialsResponse {
    /// True when the credential is released.
    pub status: bool,
    /// Km.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub credential: Option<HexKey>,
    /// The Enrolee the credential belongs to.
    #[serde(rename = "enroleeID", skip_serializing_if = "Option::is_none", default)]
    pub enrolee_id: Option<String>,
    /// Expiry, Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub lifetime: Option<u64>,
}

/// MAF Client Registration request (`POST /maf/clientRegistration`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientRegistrationRequest {
    /// MAF-FQDN.
    #[serde(rename = "mafFQDN")]
    pub maf_fqdn: String,
    /// Requested expiry, Unix seconds.
    #[serde(rename = "expirationTime")]
    pub expiration_time: u64,
}

/// MAF Client Registration response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientRegistrationResponse {
    /// mafClientRegID.
    #[serde(rename = "mafClientRegID")]
    pub maf_client_reg_id: String,
    /// The KmID the MAF assigned.
    #[serde(rename = "assignedSymmKeyID")]
    pub assigned_symm_key_id: String,
    /// Granted expiry, Unix seconds.
    #[serde(rename = "expirationTime")]
    pub expiration_time: u64,
}

/// MAF Key Registration request (`POST /maf/keyRegistration`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRegistrationRequest {
    /// MAF-FQDN.
    #[serde(rename = "mafFQDN")]
    pub maf_fqdn: String,
    /// Requested expiry, Unix seconds.
    #[serde(rename = "expirationTime")]
    pub expiration_time: u64,
    /// SUID (32: a MAF-distributed key for a security association).
    pub suid: u8,
    /// The Entity B identities that may retrieve the key.
    #[serde(rename = "targetIDs")]
    pub target_ids: Vec<String>,
}

/// MAF Key Registration response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRegistrationResponse {
    /// RelativeKeyID (HEX(KcID)).
    #[serde(rename = "relativeKeyID")]
    pub relative_key_id: String,
    /// Granted expiry, Unix seconds.
    #[serde(rename = "expirationTime")]
    pub expiration_time: u64,
    /// Source MAF Client ID: IdA, from Entity A's handshake.
    #[serde(rename = "sourceMafClientID")]
    pub source_maf_client_id: String,
    /// SUID.
    pub suid: u8,
    /// Targets.
    #[serde(rename = "targetIDs")]
    pub target_ids: Vec<String>,
}

/// MAF Key Retrieval response (`GET /maf/keyRetrieval/<RelativeKeyID>`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRetrievalResponse {
    /// Expiry, Unix seconds.
    #[serde(rename = "expirationTime")]
    pub expiration_time: u64,
    /// IdA.
    #[serde(rename = "sourceMafClientID")]
    pub source_maf_client_id: String,
    /// SUID.
    pub suid: u8,
    /// Kc.
    #[serde(rename = "keyValue")]
    pub key_value: HexKey,
}

/// Which Security Association Establishment Framework keyed an association (`framework` of
/// [`AssociationInfoResponse`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AssociationFramework {
    /// Pre-Provisioned Symmetric Key (draft 8.2.2.1): `psk_identity` = KpsaId, `psk` = Kpsa.
    PreProvisioned,
    /// MAF-Based Symmetric Key (draft 8.2.3.1): `psk_identity` = KcID@MAF-FQDN, `psk` = Kc.
    MafBased,
    /// Certificate-Based (draft 8.2.2.2): ECDHE-ECDSA with mutual authentication; the key
    /// identifier is the `ni:` hash of Entity A's public key.
    CertificateBased,
    /// GBA-based (draft 8.2.3.2): `psk_identity` = [prefix (";" | ".")] B-TID, `psk` = the NAF
    /// key (Ks_NAF / Ks_int_NAF) the registrar, as NAF, fetched from the BSF over Zn.
    GbaBased,
}

impl AssociationFramework {
    /// The wire name: `pre-provisioned`, `maf-based`, `certificate-based` or `gba-based`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::PreProvisioned => "pre-provisioned",
            Self::MafBased => "maf-based",
            Self::CertificateBased => "certificate-based",
            Self::GbaBased => "gba-based",
        }
    }
}

impl fmt::Display for AssociationFramework {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Registrar association information (`GET /registrar/association`): what Entity B bound to
/// the association the request arrived on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssociationInfoResponse {
    /// The identity the registrar bound to the association: IdA.
    #[serde(rename = "boundIdentity")]
    pub bound_identity: String,
    /// The framework that keyed it.
    pub framework: AssociationFramework,
    /// The `psk_identity` the association authenticated with (KpsaId or KcID@MAF-FQDN); for a
    /// certificate-based association the `ni:///sha-256;...` hash of the peer's public key.
    #[serde(rename = "keyIdentifier")]
    pub key_identifier: String,
    /// When the registrar closes the association, Unix seconds; absent when unbounded.
    #[serde(
        rename = "expirationTime",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub expiration_time: Option<u64>,
}

/// The body of every refusal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: String,
    /// The TS-0003 parameter at fault, if one is.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub parameter: Option<String>,
}

/// Serializes a body (zeroized buffer).
pub fn to_body<T: Serialize>(value: &T) -> Result<Body, BindingError> {
    serde_json::to_vec(value)
        .map(Zeroizing::new)
        .map_err(|e| BindingError::BadContent(e.to_string()))
}

/// Parses a body.
pub fn from_body<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, BindingError> {
    serde_json::from_slice(body).map_err(|e| BindingError::BadContent(e.to_string()))
}

/// The procedures, recognised from method and path.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Route {
    /// `POST /mef/enrolment`.
    Enrolment,
    /// `GET /mef/fetchCredentials/<KeID>/<SUID>`.
    FetchCredentials {
        /// KeID.
        ke_id: String,
        /// SUID.
        suid: u8,
    },
    /// `POST /maf/clientRegistration`.
    ClientRegistration,
    /// `POST /maf/keyRegistration`.
    KeyRegistration,
    /// `GET /maf/keyRetrieval/<RelativeKeyID>`.
    KeyRetrieval {
        /// RelativeKeyID.
        relative_key_id: String,
    },
    /// `GET /registrar/association`: the association information of the session it arrives on.
    RegistrarAssociation,
}

impl Route {
    /// Recognises a request's procedure.
    pub fn of(method: Method, path: &str) -> Result<Self, BindingError> {
        let parts: Vec<&str> = path.split('/').collect();
        match (method, parts.as_slice()) {
            (Method::Post, ["", "mef", "enrolment"]) => Ok(Self::Enrolment),
            (Method::Get, ["", "mef", "fetchCredentials", ke, suid]) if !ke.is_empty() => {
                Ok(Self::FetchCredentials {
                    ke_id: (*ke).to_string(),
                    suid: suid
                        .parse()
                        .map_err(|_| BindingError::BadContent("SUID".into()))?,
                })
            }
            (Method::Post, ["", "maf", "clientRegistration"]) => Ok(Self::ClientRegistration),
            (Method::Post, ["", "maf", "keyRegistration"]) => Ok(Self::KeyRegistration),
            (Method::Get, ["", "maf", "keyRetrieval", id]) if !id.is_empty() => {
                Ok(Self::KeyRetrieval {
                    relative_key_id: (*id).to_string(),
                })
            }
            (Method::Get, ["", "registrar", "association"]) => Ok(Self::RegistrarAssociation),
            _ => Err(BindingError::UnknownRoute),
        }
    }

    /// The method and path of this procedure.
    #[must_use]
    pub fn target(&self) -> (Method, String) {
        match self {
            Self::Enrolment => (Method::Post, "/mef/enrolment".into()),
            Self::FetchCredentials { ke_id, suid } => {
                (Method::Get, format!("/mef/fetchCredentials/{ke_id}/{suid}"))
            }
            Self::ClientRegistration => (Method::Post, "/maf/clientRegistration".into()),
            Self::KeyRegistration => (Method::Post, "/maf/keyRegistration".into()),
            Self::KeyRetrieval { relative_key_id } => {
                (Method::Get, format!("/maf/keyRetrieval/{relative_key_id}"))
            }
            Self::RegistrarAssociation => (Method::Get, "/registrar/association".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrar_association_route_and_body() {
        let route = Route::of(Method::Get, "/registrar/association").unwrap();
        assert_eq!(route, Route::RegistrarAssociation);
        assert_eq!(
            route.target(),
            (Method::Get, String::from("/registrar/association"))
        );
        assert_eq!(
            Route::of(Method::Post, "/registrar/association"),
            Err(BindingError::UnknownRoute)
        );
        assert_eq!(
            Route::of(Method::Get, "/registrar/association/x"),
            Err(BindingError::UnknownRoute)
        );

        // The docs/protocol.md example, byte for byte.
        let info = AssociationInfoResponse {
            bound_identity: "C-ae-1".into(),
            framework: AssociationFramework::PreProvisioned,
            key_identifier: "ae1-kpsa@in-cse.example.net".into(),
            expiration_time: Some(1_795_000_000),
        };
        let body = to_body(&info).unwrap();
        assert_eq!(
            core::str::from_utf8(&body).unwrap(),
            r#"{"boundIdentity":"C-ae-1","framework":"pre-provisioned","keyIdentifier":"ae1-kpsa@in-cse.example.net","expirationTime":1795000000}"#
        );
        assert_eq!(from_body::<AssociationInfoResponse>(&body).unwrap(), info);

        // Unbounded: no expirationTime; maf-based spelling; unknown framework refused.
        let unbounded = AssociationInfoResponse {
            framework: AssociationFramework::MafBased,
            expiration_time: None,
            ..info
        };
        let body = to_body(&unbounded).unwrap();
        assert!(!core::str::from_utf8(&body)
            .unwrap()
            .contains("expirationTime"));
        assert!(core::str::from_utf8(&body)
            .unwrap()
            .contains(r#""framework":"maf-based""#));
        assert_eq!(
            from_body::<AssociationInfoResponse>(&body).unwrap(),
            unbounded
        );
        assert!(from_body::<AssociationInfoResponse>(
            br#"{"boundIdentity":"C-ae-1","framework":"gba","keyIdentifier":"a@b.c"}"#
        )
        .is_err());

        // Certificate-based: the key identifier is the ni hash of A's public key.
        let cert = r#"{"boundIdentity":"C-ae-1","framework":"certificate-based","keyIdentifier":"ni:///sha-256;47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"}"#;
        let decoded = from_body::<AssociationInfoResponse>(cert.as_bytes()).unwrap();
        assert_eq!(decoded.framework, AssociationFramework::CertificateBased);
        assert_eq!(decoded.framework.to_string(), "certificate-based");
        assert_eq!(decoded.expiration_time, None);
        assert_eq!(
            core::str::from_utf8(&to_body(&decoded).unwrap()).unwrap(),
            cert
        );
        assert!(from_body::<AssociationInfoResponse>(
            br#"{"boundIdentity":"C-ae-1","framework":"certificate","keyIdentifier":"x"}"#
        )
        .is_err());

        // Carried in a response primitive.
        let response = Response {
            rsc: Rsc::Ok,
            request_id: "5e1d".into(),
            body: to_body(&unbounded).unwrap(),
        };
        let mut wire = Vec::new();
        response.encode(&mut wire).unwrap();
        let (back, used) = Response::decode(&wire).unwrap().unwrap();
        assert_eq!(used, wire.len());
        assert_eq!(back, response);
    }
}
