//! The Zn message codec (`docs/protocol.md`, "Zn"): the NAF asks the BSF for the key of a B-TID
//! for its NAF_Id, over the HTTP/1.1 + JSON binding of [`crate::frameworks::binding`] (instead
//! of Diameter, TS 29.109), on TLS-PSK.
//!
//! ```text
//!  NAF ── POST /zn/bootstrappingInfo {"btid", "nafId" (hex), "flavor"} ──▶ BSF
//!      ◀── 2000 {"key" (64 hex), "impi", "lifetime", "bootstrappingTime", "uss"} ── (or ErrorBody)
//! ```
//!
//! Sans-IO, `no_std` + alloc (feature `binding`): typed, validated messages ([`ZnRequest`],
//! [`ZnKey`]) to and from the binding's [`Request`] / [`Response`] and their JSON bodies.
//! Whatever parses is within the bounds below and re-encodes to a body that parses to the same
//! value. The key is zeroized ([`KsNaf`], [`HexKey`]) and never shown by `Debug`.
//!
//! Bounds: bodies at most [`MAX_BODY`]; `btid` a [`BTid`] (at most
//! [`MAX_BTID_LEN`](super::kdf::MAX_BTID_LEN) bytes, canonical base64 "@" host name); `nafId` the
//! hex of FQDN ‖ 5-octet Ua protocol id ([`NafId`]); `impi` 1 to [`MAX_IMPI_LEN`] printable ASCII
//! bytes; `uss` at most [`MAX_USS`] host names; `bootstrappingTime` ≤ `lifetime` ≤
//! [`MAX_LIFETIME`] (9999-12-31T23:59:59Z, what Ub's `BootstrappingInfo` can carry).

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use serde::{Deserialize, Serialize};

use super::kdf::{BTid, KsNaf, NafId};
use crate::frameworks::binding::{
    from_body, to_body, BindingError, Body, ErrorBody, HexKey, Method, Request, Response, Rsc,
    MAX_BODY,
};
use crate::time::UnixTime;

/// The Zn route: `POST /zn/bootstrappingInfo`.
pub const ZN_PATH: &str = "/zn/bootstrappingInfo";
/// Longest IMPI in an answer.
pub const MAX_IMPI_LEN: usize = 255;
/// Most `uss` entries in an answer (the store's bound on a subscriber's GUSS).
pub const MAX_USS: usize = crate::store::MAX_TARGETS;
/// The latest `lifetime` (and `bootstrappingTime`): 9999-12-31T23:59:59Z.
pub const MAX_LIFETIME: u64 = 253_402_300_799;
/// Length of the Ua security protocol identifier at the end of a NAF_Id.
const UA_ID_LEN: usize = 5;

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

/// Why a Zn message is refused. [`rsc`](Self::rsc), [`message`](Self::message) and
/// [`parameter`](Self::parameter) give the BSF's refusal (`docs/protocol.md`, Zn table).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ZnError {
    /// The request's path is not [`ZN_PATH`] (4004 `no such resource`).
    UnknownResource,
    /// The request's method is not `POST` (4000 `method`).
    Method,
    /// The body is not the message's JSON: malformed, a field of the wrong type, missing or
    /// unknown, or above [`MAX_BODY`] (4000; the text is the JSON parser's).
    Body(BindingError),
    /// A field has a value outside its syntax or bounds.
    Invalid {
        /// The JSON field.
        parameter: &'static str,
        /// What is wrong (the refusal's `error`).
        what: &'static str,
    },
    /// The answer's `lifetime` is not after the time given: the key must not be used.
    Expired,
}

impl ZnError {
    const fn invalid(parameter: &'static str, what: &'static str) -> Self {
        Self::Invalid { parameter, what }
    }

    /// The status a BSF answers this refusal of a request with.
    #[must_use]
    pub const fn rsc(&self) -> Rsc {
        match self {
            Self::UnknownResource => Rsc::NotFound,
            _ => Rsc::BadRequest,
        }
    }

    /// The refusal's `error` text.
    #[must_use]
    pub fn message(&self) -> String {
        match self {
            Self::UnknownResource => "no such resource".into(),
            Self::Method => "method".into(),
            Self::Body(e) => e.to_string(),
            Self::Invalid { what, .. } => (*what).into(),
            Self::Expired => "lifetime already passed".into(),
        }
    }

    /// The refusal's `parameter`, when one field is at fault.
    #[must_use]
    pub const fn parameter(&self) -> Option<&'static str> {
        match self {
            Self::Invalid { parameter, .. } => Some(parameter),
            _ => None,
        }
    }

    /// The refusal a BSF answers this error with (`request_id` echoed).
    #[must_use]
    pub fn refusal(&self, request_id: &str) -> Response {
        refusal(self.rsc(), &self.message(), self.parameter(), request_id)
    }
}

impl fmt::Display for ZnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid { parameter, what } => write!(f, "{parameter}: {what}"),
            other => f.write_str(&other.message()),
        }
    }
}

impl From<BindingError> for ZnError {
    fn from(e: BindingError) -> Self {
        Self::Body(e)
    }
}

/// A refusal: `rsc` with an [`ErrorBody`] (`error`, optional `parameter`).
#[must_use]
pub fn refusal(rsc: Rsc, error: &str, parameter: Option<&str>, request_id: &str) -> Response {
    Response {
        rsc,
        request_id: request_id.to_string(),
        body: to_body(&ErrorBody {
            error: error.to_string(),
            parameter: parameter.map(ToString::to_string),
        })
        .unwrap_or_default(),
    }
}

// ---------------------------------------------------------------------------------------------
// Hex (lower case out, either case in).

fn hex_encode(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        s.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    s
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    let b = text.as_bytes();
    if b.len() % 2 != 0 {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    b.chunks_exact(2)
        .map(|p| Some(nibble(p[0])? << 4 | nibble(p[1])?))
        .collect()
}

/// NAF_Id from its hex: FQDN ‖ 5-octet Ua security protocol identifier.
fn naf_id_from_hex(text: &str) -> Option<NafId> {
    if text.len() > 2 * (super::kdf::MAX_FQDN_LEN + UA_ID_LEN) {
        return None;
    }
    let bytes = hex_decode(text)?;
    if bytes.len() <= UA_ID_LEN {
        return None;
    }
    let (fqdn, ua) = bytes.split_at(bytes.len() - UA_ID_LEN);
    NafId::new(core::str::from_utf8(fqdn).ok()?, ua.try_into().ok()?).ok()
}

fn host_name_ok(s: &str) -> bool {
    NafId::tls_psk(s, 0).is_ok()
}

fn impi_ok(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_IMPI_LEN && s.bytes().all(|c| (0x21..0x7f).contains(&c))
}

fn body_bound(body: &[u8]) -> Result<(), ZnError> {
    if body.len() > MAX_BODY {
        return Err(ZnError::Body(BindingError::TooLarge));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Request.

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireRequest {
    btid: String,
    #[serde(rename = "nafId")]
    naf_id: String,
    flavor: String,
}

/// The body of `POST /zn/bootstrappingInfo`:
/// `{"btid":"<B-TID>","nafId":"<hex of NAF_Id>","flavor":"gba-me"|"gba-u"}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZnRequest {
    /// The B-TID the UE presented.
    pub btid: BTid,
    /// NAF_Id = FQDN ‖ Ua security protocol identifier (lower-case hex on the wire).
    pub naf_id: NafId,
    /// Which key.
    pub flavor: ZnFlavor,
}

impl ZnRequest {
    /// The JSON body.
    pub fn to_body(&self) -> Result<Body, ZnError> {
        let body = to_body(&WireRequest {
            btid: self.btid.as_str().to_string(),
            naf_id: hex_encode(&self.naf_id.to_bytes()),
            flavor: self.flavor.as_str().to_string(),
        })?;
        body_bound(&body)?;
        Ok(body)
    }

    /// Parses and validates a JSON body.
    pub fn from_body(body: &[u8]) -> Result<Self, ZnError> {
        body_bound(body)?;
        let w: WireRequest = from_body(body)?;
        let btid = BTid::parse(&w.btid).map_err(|_| ZnError::invalid("btid", "not a B-TID"))?;
        let naf_id = naf_id_from_hex(&w.naf_id).ok_or(ZnError::invalid("nafId", "not a NAF_Id"))?;
        let flavor = ZnFlavor::parse(&w.flavor)
            .ok_or(ZnError::invalid("flavor", "flavor is gba-me or gba-u"))?;
        Ok(Self {
            btid,
            naf_id,
            flavor,
        })
    }

    /// The request primitive (`POST` [`ZN_PATH`], `X-M2M-Origin: origin`, `X-M2M-RI`).
    pub fn to_request(&self, origin: &str, request_id: &str) -> Result<Request, ZnError> {
        Ok(Request {
            method: Method::Post,
            path: ZN_PATH.to_string(),
            origin: origin.to_string(),
            request_id: request_id.to_string(),
            body: self.to_body()?,
        })
    }

    /// The Zn request of a request primitive: [`ZnError::UnknownResource`] for another path,
    /// [`ZnError::Method`] for another method, else [`from_body`](Self::from_body).
    pub fn from_request(req: &Request) -> Result<Self, ZnError> {
        if req.path != ZN_PATH {
            return Err(ZnError::UnknownResource);
        }
        if req.method != Method::Post {
            return Err(ZnError::Method);
        }
        Self::from_body(&req.body)
    }
}

// ---------------------------------------------------------------------------------------------
// Answer.

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireKey {
    key: HexKey,
    impi: String,
    lifetime: u64,
    #[serde(rename = "bootstrappingTime")]
    bootstrapping_time: u64,
    uss: Vec<String>,
}

/// The 2000 answer of Zn: a NAF key released by the BSF,
/// `{"key":"<64 hex>","impi":"..","lifetime":<s>,"bootstrappingTime":<s>,"uss":[..]}`.
/// `Debug` redacts the key.
#[derive(Clone, PartialEq, Eq)]
pub struct ZnKey {
    /// Ks_NAF (GBA_ME) or Ks_int_NAF (GBA_U).
    pub key: KsNaf,
    /// The subscriber.
    pub impi: String,
    /// End of the bootstrapping's lifetime (the key must not be used after it).
    pub lifetime: UnixTime,
    /// When the bootstrapping ran.
    pub bootstrapping_time: UnixTime,
    /// User security settings for this NAF: the GUSS entries that are FQDNs of the asking NAF.
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

impl ZnKey {
    fn check(&self) -> Result<(), ZnError> {
        if !impi_ok(&self.impi) {
            return Err(ZnError::invalid("impi", "1 to 255 printable ASCII bytes"));
        }
        if self.lifetime.0 > MAX_LIFETIME {
            return Err(ZnError::invalid("lifetime", "after 9999-12-31T23:59:59Z"));
        }
        if self.bootstrapping_time > self.lifetime {
            return Err(ZnError::invalid("bootstrappingTime", "after the lifetime"));
        }
        if self.uss.len() > MAX_USS {
            return Err(ZnError::invalid("uss", "too many entries"));
        }
        if !self.uss.iter().all(|u| host_name_ok(u)) {
            return Err(ZnError::invalid("uss", "not a host name"));
        }
        Ok(())
    }

    /// The JSON body (the values checked as [`from_body`](Self::from_body) checks them).
    pub fn to_body(&self) -> Result<Body, ZnError> {
        self.check()?;
        let body = to_body(&WireKey {
            key: HexKey(*self.key.expose()),
            impi: self.impi.clone(),
            lifetime: self.lifetime.0,
            bootstrapping_time: self.bootstrapping_time.0,
            uss: self.uss.clone(),
        })?;
        body_bound(&body)?;
        Ok(body)
    }

    /// Parses and validates a JSON body (the static bounds; [`ZnReply::from_response`] also
    /// checks the lifetime against the time).
    pub fn from_body(body: &[u8]) -> Result<Self, ZnError> {
        body_bound(body)?;
        let w: WireKey = from_body(body)?;
        let key = Self {
            key: KsNaf::new(w.key.0),
            impi: w.impi,
            lifetime: UnixTime(w.lifetime),
            bootstrapping_time: UnixTime(w.bootstrapping_time),
            uss: w.uss,
        };
        key.check()?;
        Ok(key)
    }

    /// The 2000 response primitive.
    pub fn to_response(&self, request_id: &str) -> Result<Response, ZnError> {
        Ok(Response {
            rsc: Rsc::Ok,
            request_id: request_id.to_string(),
            body: self.to_body()?,
        })
    }

    /// Whether the key may still be used at `now` (its lifetime is after `now`).
    #[must_use]
    pub fn is_live(&self, now: UnixTime) -> bool {
        self.lifetime > now
    }
}

/// What the BSF answered a Zn request with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ZnReply {
    /// 2000: the key.
    Key(ZnKey),
    /// A refusal (any other status).
    Refused {
        /// The status.
        rsc: Rsc,
        /// The `error` of its [`ErrorBody`], when the body is one.
        error: Option<String>,
        /// Its `parameter`, when present.
        parameter: Option<String>,
    },
}

impl ZnReply {
    /// The reply of a response primitive: a 2000 must carry a valid [`ZnKey`] whose lifetime is
    /// after `now` ([`ZnError::Expired`] otherwise); any other status is a refusal, with the
    /// `error` and `parameter` of its body when the body is an [`ErrorBody`].
    pub fn from_response(resp: &Response, now: UnixTime) -> Result<Self, ZnError> {
        if resp.rsc != Rsc::Ok {
            let body: Option<ErrorBody> = from_body(&resp.body).ok();
            let (error, parameter) = body.map_or((None, None), |b| (Some(b.error), b.parameter));
            return Ok(Self::Refused {
                rsc: resp.rsc,
                error,
                parameter,
            });
        }
        let key = ZnKey::from_body(&resp.body)?;
        if !key.is_live(now) {
            return Err(ZnError::Expired);
        }
        Ok(Self::Key(key))
    }
}
