//! HTTP Digest AKA (RFC 3310, AKAv1-MD5) message logic for Ub, sans-IO.
//!
//! TS 24.109 4.5 / Annex A and spec-notes 6.3: the UE sends `GET` with
//! `Authorization: Digest username="<IMPI>", realm="<BSF>", nonce="", uri="/", response=""`; the
//! BSF answers `401` with `WWW-Authenticate: Digest realm=.., nonce=.., algorithm=AKAv1-MD5,
//! qop="auth-int"`; the UE runs the USIM on RAND/AUTN taken from the nonce and answers with RES as
//! the Digest password (or `auts` after a synchronisation failure); the BSF answers `200` with a
//! `BootstrappingInfo` XML body (B-TID, key lifetime) and `Authentication-Info: qop=auth-int,
//! rspauth=.., cnonce=.., nc=..` ([`AuthenticationInfo`], RFC 2617 3.2.3: the response digest
//! with XRES as the password, an empty method and the hash of that body), which the UE checks
//! before it accepts the B-TID ([`UbClient::on_bootstrapped`]): mutual authentication.
//!
//! Nothing here does I/O, reads a clock or draws randomness: the caller passes the cnonce bytes,
//! runs the USIM between [`UbClient::on_challenge`] and [`UbClient::answer`], and moves the bytes.
//!
//! Decisions (documented in the items below):
//! - **nonce** = base64(RAND ‖ AUTN ‖ tag), tag = the first 16 bytes of HMAC-SHA-256(nonce key,
//!   label ‖ username ‖ realm ‖ RAND ‖ AUTN) ([`make_nonce`]). The BSF can check a nonce was
//!   issued by itself for this user before any lookup ([`nonce_tag_ok`]); clients ignore the
//!   server data (0 to [`MAX_NONCE_SERVER_DATA`] bytes) as RFC 3310 3.1 says.
//! - **password** = RES as raw octets (RFC 3310 3.3 "RES is used as the password"; RES is binary,
//!   and A1 = username ":" realm ":" RES is hashed over those octets, as deployed AKAv1 peers do).
//!   Synchronisation and MAC failures answer with the empty password (RFC 3310 3.4, 3.5 style).
//! - Parsing is bounded ([`MAX_HEADER_VALUE`], [`MAX_PARAM_VALUE`], [`MAX_PARAMS`]), parameter
//!   names are case-insensitive, a repeated parameter is refused, token and quoted-string forms
//!   are equivalent (RFC 7235 2.2), unknown parameters are ignored (RFC 7616 3.3/3.4).

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::{AuthVector, Ks};
use crate::time::UnixTime;

/// The Digest algorithm of Ub.
pub const ALGORITHM: &str = "AKAv1-MD5";
/// The content type of the 200 body.
pub const BSF_CONTENT_TYPE: &str = "application/vnd.3gpp.bsf+xml";
/// The XML namespace of `BootstrappingInfo`.
pub const GBA_NAMESPACE: &str = "uri:3gpp-gba";
/// Longest `WWW-Authenticate` / `Authorization` value parsed.
pub const MAX_HEADER_VALUE: usize = 4096;
/// Longest single parameter value (after unquoting).
pub const MAX_PARAM_VALUE: usize = 1024;
/// Most parameters in one header value.
pub const MAX_PARAMS: usize = 24;
/// Most server-specific bytes after RAND ‖ AUTN in a nonce a client accepts.
pub const MAX_NONCE_SERVER_DATA: usize = 64;
/// Length of this BSF's nonce tag.
pub const NONCE_TAG_LEN: usize = 16;
/// Length of AUTS (SQN_MS ⊕ AK* ‖ MAC-S, TS 33.102 6.3.3).
pub const AUTS_LEN: usize = 14;
/// Largest `BootstrappingInfo` body parsed.
pub const MAX_XML: usize = 4096;
/// Most 401 challenges a client answers in one bootstrapping run (the first and one after a
/// resynchronisation, plus one spare).
pub const MAX_CHALLENGES: u8 = 3;

const NONCE_LABEL: &[u8] = b"m2msec Ub nonce v1";

/// Why a Ub message or step is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DigestError {
    /// The header value is not `Digest` followed by `name=value` pairs; names the place.
    Syntax(&'static str),
    /// A value or the whole input is above its bound.
    TooLong,
    /// A parameter (or header) appears twice.
    Duplicate,
    /// A required parameter (or header) is missing.
    Missing(&'static str),
    /// A parameter has a value outside its syntax; names the parameter.
    BadValue(&'static str),
    /// `algorithm` is not `AKAv1-MD5`.
    UnsupportedAlgorithm,
    /// No offered `qop` is `auth` or `auth-int`.
    UnsupportedQop,
    /// The step does not fit the client's state.
    State(&'static str),
    /// The HTTP framing is wrong.
    Http(&'static str),
    /// The `BootstrappingInfo` body is not the expected shape.
    Xml(&'static str),
    /// A 200 without `Authentication-Info` (or without `rspauth`): the BSF did not prove it knows
    /// XRES, so the B-TID is not accepted (RFC 2617 3.2.3, TS 24.109 4.2).
    MissingRspauth,
    /// `rspauth` (or the `qop`, `nc` or `cnonce` it is bound to) does not match the request sent:
    /// not the BSF that issued the challenge, or the answer or body was altered.
    BadRspauth,
}

impl fmt::Display for DigestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Syntax(w) => write!(f, "digest syntax: {w}"),
            Self::TooLong => f.write_str("digest value too long"),
            Self::Duplicate => f.write_str("repeated digest parameter or header"),
            Self::Missing(w) => write!(f, "missing {w}"),
            Self::BadValue(w) => write!(f, "bad value of {w}"),
            Self::UnsupportedAlgorithm => write!(f, "algorithm is not {ALGORITHM}"),
            Self::UnsupportedQop => f.write_str("no supported qop (auth, auth-int)"),
            Self::State(w) => write!(f, "out of sequence: {w}"),
            Self::Http(w) => write!(f, "Ub HTTP: {w}"),
            Self::Xml(w) => write!(f, "BootstrappingInfo: {w}"),
            Self::MissingRspauth => f.write_str("200 without Authentication-Info rspauth"),
            Self::BadRspauth => f.write_str("Authentication-Info rspauth does not verify"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Base64 (RFC 4648 section 4, padded, canonical only).

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard padded base64 of `data`.
#[must_use]
pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b0 = chunk.first().copied().unwrap_or(0);
        let b1 = chunk.get(1).copied().unwrap_or(0);
        let b2 = chunk.get(2).copied().unwrap_or(0);
        let n = (u32::from(b0) << 16) | (u32::from(b1) << 8) | u32::from(b2);
        for i in 0..4usize {
            if i <= chunk.len() {
                out.push(char::from(B64[((n >> (18 - 6 * i)) & 0x3f) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn b64_value(c: u8) -> Option<u32> {
    B64.iter()
        .position(|&x| x == c)
        .and_then(|p| u32::try_from(p).ok())
}

/// Decodes canonical standard padded base64 (no whitespace; unused bits zero); `None` otherwise.
#[must_use]
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if bytes.len() % 4 != 0 {
        return None;
    }
    let pad = bytes.iter().rev().take_while(|&&c| c == b'=').count();
    if pad > 2 {
        return None;
    }
    let body = bytes.get(..bytes.len() - pad)?;
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for chunk in body.chunks(4) {
        let mut n = 0u32;
        for &c in chunk {
            n = (n << 6) | b64_value(c)?;
        }
        match chunk.len() {
            4 => out.extend_from_slice(&[(n >> 16) as u8, (n >> 8) as u8, n as u8]),
            3 => {
                if n & 0x3 != 0 {
                    return None;
                }
                out.extend_from_slice(&[(n >> 10) as u8, (n >> 2) as u8]);
            }
            2 => {
                if n & 0xf != 0 {
                    return None;
                }
                out.push((n >> 4) as u8);
            }
            _ => return None,
        }
    }
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// auth-param lists (RFC 7235 2.1, RFC 7616 3.3/3.4).

fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

fn is_ows(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

/// One `name=value` with the name in lower case and the value unquoted.
struct Param {
    name: String,
    value: String,
}

/// Parses `Digest name=value, ...`; the scheme name is case-insensitive.
fn parse_digest_params(value: &str) -> Result<Vec<Param>, DigestError> {
    if value.len() > MAX_HEADER_VALUE {
        return Err(DigestError::TooLong);
    }
    let b = value.as_bytes();
    let mut i = skip_ows(b, 0);
    let scheme_start = i;
    while b.get(i).is_some_and(|&c| is_tchar(c)) {
        i += 1;
    }
    let scheme = value.get(scheme_start..i).unwrap_or("");
    if !scheme.eq_ignore_ascii_case("Digest") {
        return Err(DigestError::Syntax("scheme is not Digest"));
    }
    if !b.get(i).is_some_and(|&c| is_ows(c)) {
        return Err(DigestError::Syntax("no parameters"));
    }
    parse_param_list(value, skip_ows(b, i))
}

/// Parses the `name=value, ...` list of `value` from byte `i` (after the scheme, or the whole
/// value of `Authentication-Info`, which has no scheme: RFC 2617 3.2.3).
fn parse_param_list(value: &str, mut i: usize) -> Result<Vec<Param>, DigestError> {
    if value.len() > MAX_HEADER_VALUE {
        return Err(DigestError::TooLong);
    }
    let b = value.as_bytes();
    i = skip_ows(b, i);
    let mut params: Vec<Param> = Vec::new();
    loop {
        let start = i;
        while b.get(i).is_some_and(|&c| is_tchar(c)) {
            i += 1;
        }
        if i == start {
            return Err(DigestError::Syntax("parameter name"));
        }
        let name = value.get(start..i).unwrap_or("").to_ascii_lowercase();
        i = skip_ows(b, i);
        if b.get(i) != Some(&b'=') {
            return Err(DigestError::Syntax("expected ="));
        }
        i = skip_ows(b, i + 1);
        let (v, next) = if b.get(i) == Some(&b'"') {
            parse_quoted(b, i + 1)?
        } else {
            let s = i;
            while b.get(i).is_some_and(|&c| is_tchar(c)) {
                i += 1;
            }
            if i == s {
                return Err(DigestError::Syntax("parameter value"));
            }
            (value.get(s..i).unwrap_or("").to_string(), i)
        };
        if v.len() > MAX_PARAM_VALUE {
            return Err(DigestError::TooLong);
        }
        if params.iter().any(|p| p.name == name) {
            return Err(DigestError::Duplicate);
        }
        if params.len() >= MAX_PARAMS {
            return Err(DigestError::TooLong);
        }
        params.push(Param { name, value: v });
        i = skip_ows(b, next);
        match b.get(i) {
            None => return Ok(params),
            Some(b',') => {
                i = skip_ows(b, i + 1);
                if i >= b.len() {
                    return Err(DigestError::Syntax("trailing comma"));
                }
            }
            Some(_) => return Err(DigestError::Syntax("expected ,")),
        }
    }
}

fn skip_ows(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(|&c| is_ows(c)) {
        i += 1;
    }
    i
}

/// Unquotes from just after the opening quote; returns the value and the index after the
/// closing quote. Only SP, HTAB and visible ASCII are accepted (no obs-text).
fn parse_quoted(b: &[u8], mut i: usize) -> Result<(String, usize), DigestError> {
    let mut out = String::new();
    loop {
        let c = *b
            .get(i)
            .ok_or(DigestError::Syntax("unterminated quoted string"))?;
        match c {
            b'"' => return Ok((out, i + 1)),
            b'\\' => {
                let e = *b
                    .get(i + 1)
                    .ok_or(DigestError::Syntax("unterminated escape"))?;
                if !(is_ows(e) || (0x21..0x7f).contains(&e)) {
                    return Err(DigestError::Syntax("bad escaped character"));
                }
                out.push(char::from(e));
                i += 2;
            }
            c if is_ows(c) || (0x21..0x7f).contains(&c) => {
                out.push(char::from(c));
                i += 1;
            }
            _ => return Err(DigestError::Syntax("bad character in quoted string")),
        }
        if out.len() > MAX_PARAM_VALUE {
            return Err(DigestError::TooLong);
        }
    }
}

fn take(params: &mut Vec<Param>, name: &str) -> Option<String> {
    let pos = params.iter().position(|p| p.name == name)?;
    Some(params.swap_remove(pos).value)
}

fn require(params: &mut Vec<Param>, name: &'static str) -> Result<String, DigestError> {
    take(params, name).ok_or(DigestError::Missing(name))
}

/// A formatted header value, refused if the parsers would refuse it for its length (a value
/// that parsed may grow when formatted: quotes, escapes and separators).
fn bounded(out: String) -> Result<String, DigestError> {
    if out.len() > MAX_HEADER_VALUE {
        return Err(DigestError::TooLong);
    }
    Ok(out)
}

/// Appends `, name="value"` (the first without the comma), escaping `"` and `\`.
fn push_quoted(out: &mut String, name: &str, value: &str) -> Result<(), DigestError> {
    if value.len() > MAX_PARAM_VALUE {
        return Err(DigestError::TooLong);
    }
    if !value
        .bytes()
        .all(|c| is_ows(c) || (0x21..0x7f).contains(&c))
    {
        return Err(DigestError::BadValue(
            "parameter value (control or non-ASCII)",
        ));
    }
    push_sep(out);
    out.push_str(name);
    out.push_str("=\"");
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    Ok(())
}

fn push_token(out: &mut String, name: &str, value: &str) {
    push_sep(out);
    out.push_str(name);
    out.push('=');
    out.push_str(value);
}

/// A header value starts empty (`Authentication-Info`) or as exactly `"Digest "`; every later
/// parameter gets a separator (a parameter never ends in a space).
fn push_sep(out: &mut String) {
    if !out.is_empty() && !out.ends_with(' ') {
        out.push_str(", ");
    }
}

// ---------------------------------------------------------------------------------------------
// Challenge and credentials.

/// Quality of protection (RFC 2617 3.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Qop {
    /// Authentication only.
    Auth,
    /// Authentication with integrity of the entity body (what Ub's BSF offers).
    AuthInt,
}

impl Qop {
    /// The token.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::AuthInt => "auth-int",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        if s.eq_ignore_ascii_case("auth") {
            Some(Self::Auth)
        } else if s.eq_ignore_ascii_case("auth-int") {
            Some(Self::AuthInt)
        } else {
            None
        }
    }
}

/// A `WWW-Authenticate: Digest` challenge with `algorithm=AKAv1-MD5` (implied by the type: other
/// algorithms are refused on parse).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// `realm`: the BSF FQDN on Ub.
    pub realm: String,
    /// `nonce`: base64(RAND ‖ AUTN ‖ server data).
    pub nonce: String,
    /// `qop` options understood (unknown options are dropped on parse; empty = RFC 2069 mode).
    pub qop: Vec<Qop>,
    /// `opaque`, echoed by the client.
    pub opaque: Option<String>,
    /// `stale=true`.
    pub stale: bool,
}

impl Challenge {
    /// Parses a `WWW-Authenticate` value.
    pub fn parse(value: &str) -> Result<Self, DigestError> {
        let mut p = parse_digest_params(value)?;
        let realm = require(&mut p, "realm")?;
        let nonce = require(&mut p, "nonce")?;
        let algorithm = require(&mut p, "algorithm")?;
        if !algorithm.eq_ignore_ascii_case(ALGORITHM) {
            return Err(DigestError::UnsupportedAlgorithm);
        }
        let qop = match take(&mut p, "qop") {
            None => Vec::new(),
            Some(list) => {
                let mut known = Vec::new();
                for t in list.split(',').map(|t| t.trim_matches([' ', '\t'])) {
                    if let Some(q) = Qop::parse(t) {
                        if !known.contains(&q) {
                            known.push(q);
                        }
                    }
                }
                if known.is_empty() {
                    return Err(DigestError::UnsupportedQop);
                }
                known
            }
        };
        let opaque = take(&mut p, "opaque");
        let stale = match take(&mut p, "stale") {
            None => false,
            Some(s) => s.eq_ignore_ascii_case("true"),
        };
        Ok(Self {
            realm,
            nonce,
            qop,
            opaque,
            stale,
        })
    }

    /// The header value: `Digest realm="..", nonce="..", algorithm=AKAv1-MD5, qop="auth-int"[,
    /// opaque=".."][, stale=true]`.
    pub fn to_header(&self) -> Result<String, DigestError> {
        let mut out = String::from("Digest ");
        push_quoted(&mut out, "realm", &self.realm)?;
        push_quoted(&mut out, "nonce", &self.nonce)?;
        push_token(&mut out, "algorithm", ALGORITHM);
        if !self.qop.is_empty() {
            let list: Vec<&str> = self.qop.iter().map(|q| q.as_str()).collect();
            push_quoted(&mut out, "qop", &list.join(","))?;
        }
        if let Some(o) = &self.opaque {
            push_quoted(&mut out, "opaque", o)?;
        }
        if self.stale {
            push_token(&mut out, "stale", "true");
        }
        bounded(out)
    }
}

/// An `Authorization: Digest` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// `username`: the IMPI on Ub.
    pub username: String,
    /// `realm`.
    pub realm: String,
    /// `nonce`, empty in the initial request.
    pub nonce: String,
    /// `uri`: the request-target.
    pub uri: String,
    /// `response`: 32 lower-case hex digits, or empty in the initial request.
    pub response: String,
    /// Whether `algorithm=AKAv1-MD5` is present (any other algorithm is refused on parse).
    pub algorithm: bool,
    /// `qop`; `nc` and `cnonce` are present exactly when it is.
    pub qop: Option<Qop>,
    /// `nc` (8 hex digits on the wire).
    pub nc: Option<u32>,
    /// `cnonce`.
    pub cnonce: Option<String>,
    /// `opaque`, echoed.
    pub opaque: Option<String>,
    /// `auts` (RFC 3310 3.4), base64 on the wire.
    pub auts: Option<[u8; AUTS_LEN]>,
}

fn is_lhex(s: &str) -> bool {
    s.bytes()
        .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

impl Credentials {
    /// The initial Ub request's credentials (TS 24.109 4.5.2): username, realm and uri, with empty
    /// nonce and response.
    #[must_use]
    pub fn initial(username: &str, realm: &str, uri: &str) -> Self {
        Self {
            username: username.to_string(),
            realm: realm.to_string(),
            nonce: String::new(),
            uri: uri.to_string(),
            response: String::new(),
            algorithm: false,
            qop: None,
            nc: None,
            cnonce: None,
            opaque: None,
            auts: None,
        }
    }

    /// Whether this is an initial request (empty nonce): the BSF answers with a challenge.
    #[must_use]
    pub fn is_initial(&self) -> bool {
        self.nonce.is_empty()
    }

    /// Parses an `Authorization` value.
    pub fn parse(value: &str) -> Result<Self, DigestError> {
        let mut p = parse_digest_params(value)?;
        let username = require(&mut p, "username")?;
        let realm = require(&mut p, "realm")?;
        let nonce = require(&mut p, "nonce")?;
        let uri = require(&mut p, "uri")?;
        let response = require(&mut p, "response")?;
        if !(response.is_empty() || (response.len() == 32 && is_lhex(&response))) {
            return Err(DigestError::BadValue("response"));
        }
        let algorithm = match take(&mut p, "algorithm") {
            None => false,
            Some(a) if a.eq_ignore_ascii_case(ALGORITHM) => true,
            Some(_) => return Err(DigestError::UnsupportedAlgorithm),
        };
        let qop = match take(&mut p, "qop") {
            None => None,
            Some(q) => Some(Qop::parse(&q).ok_or(DigestError::UnsupportedQop)?),
        };
        let nc = match take(&mut p, "nc") {
            None => None,
            Some(n) => Some(parse_nc(&n)?),
        };
        let cnonce = take(&mut p, "cnonce");
        if qop.is_some() != nc.is_some() || qop.is_some() != cnonce.is_some() {
            return Err(DigestError::BadValue("qop, nc and cnonce go together"));
        }
        if cnonce.as_deref() == Some("") {
            return Err(DigestError::BadValue("cnonce"));
        }
        let opaque = take(&mut p, "opaque");
        let auts = match take(&mut p, "auts") {
            None => None,
            Some(a) => Some(
                base64_decode(&a)
                    .and_then(|v| <[u8; AUTS_LEN]>::try_from(v.as_slice()).ok())
                    .ok_or(DigestError::BadValue("auts"))?,
            ),
        };
        Ok(Self {
            username,
            realm,
            nonce,
            uri,
            response,
            algorithm,
            qop,
            nc,
            cnonce,
            opaque,
            auts,
        })
    }

    /// The header value, parameters in the order of RFC 2617 3.2.2 then `auts`.
    pub fn to_header(&self) -> Result<String, DigestError> {
        if !(self.response.is_empty() || (self.response.len() == 32 && is_lhex(&self.response))) {
            return Err(DigestError::BadValue("response"));
        }
        if self.qop.is_some() != self.nc.is_some() || self.qop.is_some() != self.cnonce.is_some() {
            return Err(DigestError::BadValue("qop, nc and cnonce go together"));
        }
        let mut out = String::from("Digest ");
        push_quoted(&mut out, "username", &self.username)?;
        push_quoted(&mut out, "realm", &self.realm)?;
        push_quoted(&mut out, "nonce", &self.nonce)?;
        push_quoted(&mut out, "uri", &self.uri)?;
        push_quoted(&mut out, "response", &self.response)?;
        if self.algorithm {
            push_token(&mut out, "algorithm", ALGORITHM);
        }
        if let (Some(q), Some(nc), Some(cn)) = (self.qop, self.nc, &self.cnonce) {
            if cn.is_empty() {
                return Err(DigestError::BadValue("cnonce"));
            }
            push_token(&mut out, "qop", q.as_str());
            push_token(&mut out, "nc", &format!("{nc:08x}"));
            push_quoted(&mut out, "cnonce", cn)?;
        }
        if let Some(o) = &self.opaque {
            push_quoted(&mut out, "opaque", o)?;
        }
        if let Some(a) = &self.auts {
            push_quoted(&mut out, "auts", &base64_encode(a))?;
        }
        bounded(out)
    }
}

/// An `Authentication-Info` value (RFC 2617 3.2.3, RFC 7616 3.5): the BSF's proof on the 200
/// that it knows the password (XRES) too, i.e. mutual authentication on Ub.
///
/// `rspauth` is the Digest of the request's parameters with the method left empty: A2 = ":"
/// digest-uri for `qop=auth`, ":" digest-uri ":" H(entity-body of the 200) for `qop=auth-int`
/// (so the `BootstrappingInfo` is integrity protected too). The server echoes the request's
/// `qop`, `nc` and `cnonce` ([`PendingChallenge::authentication_info`]); the client checks them
/// and `rspauth` ([`UbClient::on_bootstrapped`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthenticationInfo {
    /// `qop` (message-qop): the request's; `nc` and `cnonce` are present exactly when it is.
    pub qop: Option<Qop>,
    /// `rspauth`: 32 lower-case hex digits.
    pub rspauth: String,
    /// `cnonce`, echoed.
    pub cnonce: Option<String>,
    /// `nc` (8 hex digits on the wire), echoed.
    pub nc: Option<u32>,
    /// `nextnonce` (parsed and formatted, not used on Ub).
    pub nextnonce: Option<String>,
}

impl AuthenticationInfo {
    /// Parses an `Authentication-Info` value: `name=value` pairs without a scheme; `rspauth` is
    /// required, unknown parameters are ignored, the bounds are those of the other headers.
    pub fn parse(value: &str) -> Result<Self, DigestError> {
        let mut p = parse_param_list(value, 0)?;
        let rspauth = require(&mut p, "rspauth")?;
        if rspauth.len() != 32 || !is_lhex(&rspauth) {
            return Err(DigestError::BadValue("rspauth"));
        }
        let qop = match take(&mut p, "qop") {
            None => None,
            Some(q) => Some(Qop::parse(&q).ok_or(DigestError::UnsupportedQop)?),
        };
        let nc = match take(&mut p, "nc") {
            None => None,
            Some(n) => Some(parse_nc(&n)?),
        };
        let cnonce = take(&mut p, "cnonce");
        if qop.is_some() != nc.is_some() || qop.is_some() != cnonce.is_some() {
            return Err(DigestError::BadValue("qop, nc and cnonce go together"));
        }
        if cnonce.as_deref() == Some("") {
            return Err(DigestError::BadValue("cnonce"));
        }
        let nextnonce = take(&mut p, "nextnonce");
        Ok(Self {
            qop,
            rspauth,
            cnonce,
            nc,
            nextnonce,
        })
    }

    /// The header value: `qop=auth-int, rspauth="..", cnonce="..", nc=00000001[,
    /// nextnonce=".."]`.
    pub fn to_header(&self) -> Result<String, DigestError> {
        if self.rspauth.len() != 32 || !is_lhex(&self.rspauth) {
            return Err(DigestError::BadValue("rspauth"));
        }
        if self.qop.is_some() != self.nc.is_some() || self.qop.is_some() != self.cnonce.is_some() {
            return Err(DigestError::BadValue("qop, nc and cnonce go together"));
        }
        let mut out = String::new();
        if let Some(q) = self.qop {
            push_token(&mut out, "qop", q.as_str());
        }
        push_quoted(&mut out, "rspauth", &self.rspauth)?;
        if let (Some(cn), Some(nc)) = (&self.cnonce, self.nc) {
            if cn.is_empty() {
                return Err(DigestError::BadValue("cnonce"));
            }
            push_quoted(&mut out, "cnonce", cn)?;
            push_token(&mut out, "nc", &format!("{nc:08x}"));
        }
        if let Some(n) = &self.nextnonce {
            push_quoted(&mut out, "nextnonce", n)?;
        }
        bounded(out)
    }
}

fn parse_nc(n: &str) -> Result<u32, DigestError> {
    if n.len() != 8 || !n.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(DigestError::BadValue("nc"));
    }
    u32::from_str_radix(n, 16).map_err(|_| DigestError::BadValue("nc"))
}

// ---------------------------------------------------------------------------------------------
// The Digest computation (RFC 2617 3.2.2.1-3.2.2.3, RFC 3310 3.3).

/// The inputs of one `response` value.
#[derive(Clone, Copy)]
pub struct DigestInput<'a> {
    /// `username`.
    pub username: &'a str,
    /// `realm`.
    pub realm: &'a str,
    /// The password as octets: RES for AKAv1-MD5, empty after a sync or MAC failure.
    pub password: &'a [u8],
    /// The request method, e.g. `GET`.
    pub method: &'a str,
    /// `uri`.
    pub uri: &'a str,
    /// `nonce`.
    pub nonce: &'a str,
    /// `qop` with `nc` and `cnonce`; `None` for the RFC 2069 form.
    pub qop: Option<(Qop, u32, &'a str)>,
    /// The entity body (hashed into A2 for `auth-int`).
    pub body: &'a [u8],
}

impl fmt::Debug for DigestInput<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DigestInput")
            .field("username", &self.username)
            .field("realm", &self.realm)
            .field("uri", &self.uri)
            .finish_non_exhaustive()
    }
}

fn hex32(d: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (o, b) in out.chunks_mut(2).zip(d) {
        o.copy_from_slice(&[
            b"0123456789abcdef"[usize::from(b >> 4)],
            b"0123456789abcdef"[usize::from(b & 15)],
        ]);
    }
    out
}

/// The `response` value as 32 lower-case hex digits: KD(H(A1), nonce ":" nc ":" cnonce ":" qop
/// ":" H(A2)) with A1 = username ":" realm ":" password and A2 = method ":" uri [":" H(body)].
#[must_use]
pub fn digest_response(input: &DigestInput<'_>) -> String {
    let mut h = Md5::new();
    h.update(input.username.as_bytes());
    h.update(b":");
    h.update(input.realm.as_bytes());
    h.update(b":");
    h.update(input.password);
    let ha1 = Zeroizing::new(hex32(&h.finalize()));

    let mut h = Md5::new();
    h.update(input.method.as_bytes());
    h.update(b":");
    h.update(input.uri.as_bytes());
    if let Some((Qop::AuthInt, _, _)) = input.qop {
        h.update(b":");
        h.update(hex32(&Md5::digest(input.body)));
    }
    let ha2 = hex32(&h.finalize());

    let mut h = Md5::new();
    h.update(&ha1[..]);
    h.update(b":");
    h.update(input.nonce.as_bytes());
    h.update(b":");
    if let Some((qop, nc, cnonce)) = input.qop {
        h.update(format!("{nc:08x}").as_bytes());
        h.update(b":");
        h.update(cnonce.as_bytes());
        h.update(b":");
        h.update(qop.as_str().as_bytes());
        h.update(b":");
    }
    h.update(ha2);
    hex32(&h.finalize())
        .iter()
        .map(|&c| char::from(c))
        .collect()
}

/// The `rspauth` of `Authentication-Info` (RFC 2617 3.2.3): [`digest_response`] of the same
/// inputs as the request's `response` (same password, nonce, `qop`, `nc`, `cnonce`, digest-uri)
/// but with an empty method, and for `auth-int` the entity body of the *response* (`body`):
/// A2 = ":" digest-uri [":" H(entity-body)].
#[must_use]
pub fn response_auth(input: &DigestInput<'_>) -> String {
    digest_response(&DigestInput {
        method: "",
        ..*input
    })
}

// ---------------------------------------------------------------------------------------------
// Nonce.

/// RAND and AUTN taken from a nonce, for the USIM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsimChallenge {
    /// RAND.
    pub rand: [u8; 16],
    /// AUTN.
    pub autn: [u8; 16],
}

fn nonce_tag(
    nonce_key: &[u8],
    username: &str,
    realm: &str,
    rand: &[u8; 16],
    autn: &[u8; 16],
) -> [u8; NONCE_TAG_LEN] {
    // HMAC accepts keys of any length, so new_from_slice cannot fail.
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(nonce_key).expect("HMAC takes any key length");
    mac.update(NONCE_LABEL);
    for part in [username.as_bytes(), realm.as_bytes()] {
        mac.update(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
        mac.update(part);
    }
    mac.update(rand);
    mac.update(autn);
    let full = mac.finalize().into_bytes();
    let mut tag = [0u8; NONCE_TAG_LEN];
    for (t, f) in tag.iter_mut().zip(full.iter()) {
        *t = *f;
    }
    tag
}

/// This BSF's nonce: base64(RAND ‖ AUTN ‖ tag), tag = HMAC-SHA-256(`nonce_key`, label ‖
/// len ‖ username ‖ len ‖ realm ‖ RAND ‖ AUTN) truncated to [`NONCE_TAG_LEN`] bytes.
/// `nonce_key` is a BSF secret; the tag binds the nonce to the user and realm it was issued to.
#[must_use]
pub fn make_nonce(
    nonce_key: &[u8],
    username: &str,
    realm: &str,
    rand: &[u8; 16],
    autn: &[u8; 16],
) -> String {
    let mut raw = Vec::with_capacity(32 + NONCE_TAG_LEN);
    raw.extend_from_slice(rand);
    raw.extend_from_slice(autn);
    raw.extend_from_slice(&nonce_tag(nonce_key, username, realm, rand, autn));
    base64_encode(&raw)
}

/// Whether `nonce` carries this BSF's tag for `username` and `realm` (constant time).
#[must_use]
pub fn nonce_tag_ok(nonce_key: &[u8], username: &str, realm: &str, nonce: &str) -> bool {
    let Some(raw) = base64_decode(nonce) else {
        return false;
    };
    if raw.len() != 32 + NONCE_TAG_LEN {
        return false;
    }
    let (Some(rand), Some(autn), Some(tag)) = (raw.get(..16), raw.get(16..32), raw.get(32..))
    else {
        return false;
    };
    let (Ok(rand), Ok(autn)) = (<[u8; 16]>::try_from(rand), <[u8; 16]>::try_from(autn)) else {
        return false;
    };
    bool::from(nonce_tag(nonce_key, username, realm, &rand, &autn).ct_eq(tag))
}

/// RAND and AUTN from a nonce (RFC 3310 3.2): canonical base64 of at least 32 bytes, with at most
/// [`MAX_NONCE_SERVER_DATA`] server bytes after them (ignored).
pub fn split_nonce(nonce: &str) -> Result<UsimChallenge, DigestError> {
    if nonce.len() > (32 + MAX_NONCE_SERVER_DATA).div_ceil(3) * 4 {
        return Err(DigestError::BadValue("nonce"));
    }
    let raw = base64_decode(nonce).ok_or(DigestError::BadValue("nonce"))?;
    let rand = raw.get(..16).and_then(|r| <[u8; 16]>::try_from(r).ok());
    let autn = raw.get(16..32).and_then(|r| <[u8; 16]>::try_from(r).ok());
    match (rand, autn) {
        (Some(rand), Some(autn)) => Ok(UsimChallenge { rand, autn }),
        _ => Err(DigestError::BadValue("nonce")),
    }
}

// ---------------------------------------------------------------------------------------------
// BSF side.

/// The outcome of checking an `Authorization` against a [`PendingChallenge`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// `response` matches XRES: the UE is authenticated; bootstrap Ks (answer 200).
    Verified,
    /// `response` matches neither XRES nor the empty password (answer 403).
    BadResponse,
    /// The USIM reported a synchronisation failure (`auts`, response with the empty password):
    /// run the home side's resync with RAND and AUTS, then challenge again with a fresh vector.
    Resync {
        /// RAND of the challenge.
        rand: [u8; 16],
        /// AUTS from the UE.
        auts: [u8; AUTS_LEN],
    },
    /// The UE answered with the empty password and no `auts`: it did not authenticate the network
    /// (MAC failure, RFC 3310 3.5 / TS 24.109 4.5.3); do not retry with the same vector.
    NetworkAuthFailed,
    /// The request does not belong to this challenge or is incomplete; names the parameter.
    Malformed(&'static str),
}

/// A 401 the BSF sent and the vector behind it, until the UE answers. Single use: drop it after
/// [`verify`](Self::verify) (`nc` is therefore always 1 on Ub). The vector is zeroized on drop.
#[derive(Clone, Debug)]
pub struct PendingChallenge {
    username: String,
    realm: String,
    nonce: String,
    opaque: Option<String>,
    vector: AuthVector,
}

impl PendingChallenge {
    /// A challenge for `username` (IMPI) in `realm` (the BSF FQDN) from `vector`, its nonce made
    /// by [`make_nonce`] with the BSF's `nonce_key`.
    pub fn new(
        nonce_key: &[u8],
        username: &str,
        realm: &str,
        vector: AuthVector,
    ) -> Result<Self, DigestError> {
        for (v, what) in [(username, "username"), (realm, "realm")] {
            if v.is_empty() || v.len() > MAX_PARAM_VALUE {
                return Err(DigestError::BadValue(what));
            }
            if !v.bytes().all(|c| (0x20..0x7f).contains(&c)) {
                return Err(DigestError::BadValue(what));
            }
        }
        let nonce = make_nonce(nonce_key, username, realm, &vector.rand, &vector.autn);
        Ok(Self {
            username: username.to_string(),
            realm: realm.to_string(),
            nonce,
            opaque: None,
            vector,
        })
    }

    /// Adds an `opaque` the client must echo.
    pub fn with_opaque(mut self, opaque: &str) -> Result<Self, DigestError> {
        if opaque.len() > MAX_PARAM_VALUE || !opaque.bytes().all(|c| (0x20..0x7f).contains(&c)) {
            return Err(DigestError::BadValue("opaque"));
        }
        self.opaque = Some(opaque.to_string());
        Ok(self)
    }

    /// The IMPI challenged.
    #[must_use]
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The nonce sent.
    #[must_use]
    pub fn nonce(&self) -> &str {
        &self.nonce
    }

    /// RAND of the vector.
    #[must_use]
    pub fn rand(&self) -> [u8; 16] {
        self.vector.rand
    }

    /// Ks = CK ‖ IK of the vector (use after [`Verdict::Verified`]).
    #[must_use]
    pub fn ks(&self) -> Ks {
        self.vector.ks()
    }

    /// The `WWW-Authenticate` challenge: AKAv1-MD5, `qop="auth-int"`.
    #[must_use]
    pub fn challenge(&self) -> Challenge {
        Challenge {
            realm: self.realm.clone(),
            nonce: self.nonce.clone(),
            qop: alloc::vec![Qop::AuthInt],
            opaque: self.opaque.clone(),
            stale: false,
        }
    }

    /// Checks `creds` of a request `method request_uri` with entity `body` against this
    /// challenge. Identity fields are compared exactly; `response` in constant time against the
    /// value with password XRES and the value with the empty password.
    #[must_use]
    pub fn verify(
        &self,
        method: &str,
        request_uri: &str,
        body: &[u8],
        creds: &Credentials,
    ) -> Verdict {
        if creds.username != self.username {
            return Verdict::Malformed("username");
        }
        if creds.realm != self.realm {
            return Verdict::Malformed("realm");
        }
        if creds.nonce != self.nonce {
            return Verdict::Malformed("nonce");
        }
        if creds.uri != request_uri {
            return Verdict::Malformed("uri");
        }
        if creds.opaque != self.opaque {
            return Verdict::Malformed("opaque");
        }
        if !creds.algorithm {
            return Verdict::Malformed("algorithm");
        }
        let (Some(Qop::AuthInt), Some(nc), Some(cnonce)) = (creds.qop, creds.nc, &creds.cnonce)
        else {
            return Verdict::Malformed("qop");
        };
        if creds.response.len() != 32 {
            return Verdict::Malformed("response");
        }
        let input = |password: &'_ [u8]| -> String {
            digest_response(&DigestInput {
                username: &self.username,
                realm: &self.realm,
                password,
                method,
                uri: request_uri,
                nonce: &self.nonce,
                qop: Some((Qop::AuthInt, nc, cnonce)),
                body,
            })
        };
        let got = creds.response.as_bytes();
        let with_xres = bool::from(input(&self.vector.xres).as_bytes().ct_eq(got));
        let with_empty = bool::from(input(&[]).as_bytes().ct_eq(got));
        match (creds.auts, with_xres, with_empty) {
            (Some(auts), _, true) => Verdict::Resync {
                rand: self.vector.rand,
                auts,
            },
            (Some(_), _, false) => Verdict::BadResponse,
            (None, true, _) => Verdict::Verified,
            (None, false, true) => Verdict::NetworkAuthFailed,
            (None, false, false) => Verdict::BadResponse,
        }
    }

    /// The `Authentication-Info` of the 200 that answers `creds` (RFC 2617 3.2.3): `rspauth`
    /// with XRES as the password over the 200's entity `response_body` (the `BootstrappingInfo`
    /// as sent), the request's `qop`, `nc` and `cnonce` echoed.
    ///
    /// `creds` is verified again first (`method`, `request_uri` and `request_body` as for
    /// [`verify`](Self::verify)): an `rspauth` is only ever computed for a [`Verdict::Verified`]
    /// answer, so a failed answer never yields a value keyed by XRES.
    pub fn authentication_info(
        &self,
        method: &str,
        request_uri: &str,
        request_body: &[u8],
        creds: &Credentials,
        response_body: &[u8],
    ) -> Result<AuthenticationInfo, DigestError> {
        if self.verify(method, request_uri, request_body, creds) != Verdict::Verified {
            return Err(DigestError::State("rspauth only for a verified answer"));
        }
        let (Some(qop), Some(nc), Some(cnonce)) = (creds.qop, creds.nc, &creds.cnonce) else {
            return Err(DigestError::Missing("qop"));
        };
        let rspauth = response_auth(&DigestInput {
            username: &self.username,
            realm: &self.realm,
            password: &self.vector.xres,
            method: "",
            uri: request_uri,
            nonce: &self.nonce,
            qop: Some((qop, nc, cnonce)),
            body: response_body,
        });
        Ok(AuthenticationInfo {
            qop: Some(qop),
            rspauth,
            cnonce: Some(cnonce.clone()),
            nc: Some(nc),
            nextnonce: None,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// UE side.

/// What the USIM answered for RAND/AUTN (the caller maps its USIM's result onto this).
#[derive(Clone, Copy)]
pub enum UsimOutcome<'a> {
    /// AUTN accepted; RES (4 to 16 octets) is the password.
    Res(&'a [u8]),
    /// MAC-A wrong: the network is not authenticated.
    MacFailure,
    /// SQN out of range: AUTS for the BSF.
    SyncFailure {
        /// AUTS.
        auts: [u8; AUTS_LEN],
    },
}

impl fmt::Debug for UsimOutcome<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Res(_) => f.write_str("Res(<redacted>)"),
            Self::MacFailure => f.write_str("MacFailure"),
            Self::SyncFailure { .. } => f.write_str("SyncFailure"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum ClientState {
    Initial,
    Sent,
    Challenged {
        challenge: Challenge,
        rand: [u8; 16],
    },
    Answered {
        rand: Option<[u8; 16]>,
    },
    Done,
}

/// The UE side of one Ub bootstrapping run:
///
/// 1. [`start`](Self::start) → the initial `Authorization` (send `GET`);
/// 2. on 401, [`on_challenge`](Self::on_challenge) → RAND/AUTN for the USIM;
/// 3. [`answer`](Self::answer) with the USIM's outcome → the next `Authorization` (send `GET`);
///    after a sync failure the BSF answers with a fresh 401 (back to 2);
/// 4. on 200, [`on_bootstrapped`](Self::on_bootstrapped) with its `Authentication-Info` and
///    body → the BSF authenticated by rspauth, then B-TID and lifetime (the caller keeps
///    Ks = CK ‖ IK from its USIM).
#[derive(Clone, Debug)]
pub struct UbClient {
    impi: String,
    realm: String,
    uri: String,
    challenges: u8,
    state: ClientState,
    /// What the `rspauth` of the 200 must be computed from (set by a RES answer).
    sent: Option<SentAnswer>,
}

/// The inputs of the expected `rspauth`: the last RES answer's password and parameters.
/// RES is zeroized on drop and not shown by `Debug`.
#[derive(Clone)]
struct SentAnswer {
    res: Zeroizing<Vec<u8>>,
    nonce: String,
    qop: Option<Qop>,
    cnonce: String,
}

impl fmt::Debug for SentAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SentAnswer")
            .field("qop", &self.qop)
            .finish_non_exhaustive()
    }
}

impl UbClient {
    /// A client for `impi` towards the BSF `realm` (its FQDN) at request-target `uri` (`/`).
    pub fn new(impi: &str, realm: &str, uri: &str) -> Result<Self, DigestError> {
        for (v, what) in [(impi, "username"), (realm, "realm"), (uri, "uri")] {
            if v.is_empty()
                || v.len() > MAX_PARAM_VALUE
                || !v.bytes().all(|c| (0x21..0x7f).contains(&c))
            {
                return Err(DigestError::BadValue(what));
            }
        }
        if !uri.starts_with('/') {
            return Err(DigestError::BadValue("uri"));
        }
        Ok(Self {
            impi: impi.to_string(),
            realm: realm.to_string(),
            uri: uri.to_string(),
            challenges: 0,
            state: ClientState::Initial,
            sent: None,
        })
    }

    /// The request-target.
    #[must_use]
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The initial `Authorization` (TS 24.109 4.5.2: empty nonce and response).
    pub fn start(&mut self) -> Result<Credentials, DigestError> {
        if self.state != ClientState::Initial {
            return Err(DigestError::State("already started"));
        }
        self.state = ClientState::Sent;
        Ok(Credentials::initial(&self.impi, &self.realm, &self.uri))
    }

    /// A 401's challenge: checks realm and algorithm and returns RAND/AUTN for the USIM.
    pub fn on_challenge(&mut self, challenge: &Challenge) -> Result<UsimChallenge, DigestError> {
        match self.state {
            ClientState::Sent | ClientState::Answered { rand: None } => {}
            _ => return Err(DigestError::State("no challenge expected")),
        }
        if self.challenges >= MAX_CHALLENGES {
            return Err(DigestError::State("too many challenges"));
        }
        if challenge.realm != self.realm {
            return Err(DigestError::BadValue("realm"));
        }
        if !challenge.qop.is_empty()
            && !challenge.qop.contains(&Qop::AuthInt)
            && !challenge.qop.contains(&Qop::Auth)
        {
            return Err(DigestError::UnsupportedQop);
        }
        let usim = split_nonce(&challenge.nonce)?;
        self.challenges += 1;
        self.state = ClientState::Challenged {
            challenge: challenge.clone(),
            rand: usim.rand,
        };
        Ok(usim)
    }

    /// The `Authorization` after the USIM ran: `response` with RES as the password, or with the
    /// empty password and `auts` (sync failure) or without it (MAC failure, after which the run
    /// is over). `cnonce` is fresh random bytes from the caller; `method` and `body` are those of
    /// the request about to be sent (`GET`, empty on Ub).
    pub fn answer(
        &mut self,
        outcome: UsimOutcome<'_>,
        cnonce: &[u8; 16],
        method: &str,
        body: &[u8],
    ) -> Result<Credentials, DigestError> {
        let ClientState::Challenged { challenge, rand } = &self.state else {
            return Err(DigestError::State("no challenge to answer"));
        };
        let (password, auts, next) = match outcome {
            UsimOutcome::Res(res) => {
                if !(4..=16).contains(&res.len()) {
                    return Err(DigestError::BadValue("RES"));
                }
                (res, None, ClientState::Answered { rand: Some(*rand) })
            }
            UsimOutcome::SyncFailure { auts } => {
                (&[][..], Some(auts), ClientState::Answered { rand: None })
            }
            UsimOutcome::MacFailure => (&[][..], None, ClientState::Done),
        };
        let qop = if challenge.qop.contains(&Qop::AuthInt) {
            Some(Qop::AuthInt)
        } else if challenge.qop.contains(&Qop::Auth) {
            Some(Qop::Auth)
        } else {
            None
        };
        let cnonce_text: String = hex32(cnonce).iter().map(|&c| char::from(c)).collect();
        let response = digest_response(&DigestInput {
            username: &self.impi,
            realm: &self.realm,
            password,
            method,
            uri: &self.uri,
            nonce: &challenge.nonce,
            qop: qop.map(|q| (q, 1, cnonce_text.as_str())),
            body,
        });
        self.sent = match outcome {
            UsimOutcome::Res(res) => Some(SentAnswer {
                res: Zeroizing::new(res.to_vec()),
                nonce: challenge.nonce.clone(),
                qop,
                cnonce: cnonce_text.clone(),
            }),
            _ => None,
        };
        let creds = Credentials {
            username: self.impi.clone(),
            realm: self.realm.clone(),
            nonce: challenge.nonce.clone(),
            uri: self.uri.clone(),
            response,
            algorithm: true,
            qop,
            nc: qop.map(|_| 1),
            cnonce: qop.map(|_| cnonce_text),
            opaque: challenge.opaque.clone(),
            auts,
        };
        self.state = next;
        Ok(creds)
    }

    /// The 200: its `Authentication-Info` (`None` when the header is absent) and its entity
    /// `body` exactly as received. Checks, in this order, that
    ///
    /// 1. `rspauth` is present ([`DigestError::MissingRspauth`]) and equals, in constant time,
    ///    the value computed from the RES answered with an empty method and, for `auth-int`, the
    ///    hash of `body` ([`response_auth`]); the echoed `qop`, `nc` and `cnonce` must be the
    ///    request's ([`DigestError::BadRspauth`]): the BSF knew XRES, so it is the home network
    ///    that issued the challenge (RFC 3310 with RFC 2617 3.2.3);
    /// 2. the body is a `BootstrappingInfo` whose B-TID = base64(RAND) "@" ... for the RAND
    ///    answered (TS 33.220 4.5.2).
    ///
    /// Ends the run, also when `rspauth` fails (the run cannot be resumed: a new one is needed).
    pub fn on_bootstrapped(
        &mut self,
        authentication_info: Option<&AuthenticationInfo>,
        body: &[u8],
    ) -> Result<BootstrappingInfo, DigestError> {
        let ClientState::Answered { rand: Some(rand) } = self.state else {
            return Err(DigestError::State("no authenticated answer sent"));
        };
        let verified = self.check_rspauth(authentication_info, body);
        if verified.is_err() {
            self.state = ClientState::Done;
            self.sent = None;
        }
        verified?;
        let info = BootstrappingInfo::from_xml(body)?;
        // The B-TID syntax is kdf's (one parser for the module); its RAND must be this run's.
        let ok = super::kdf::BTid::parse(&info.btid)
            .ok()
            .and_then(|b| b.rand())
            .is_some_and(|r| r == rand);
        if !ok {
            return Err(DigestError::BadValue("btid"));
        }
        self.state = ClientState::Done;
        self.sent = None;
        Ok(info)
    }

    fn check_rspauth(
        &self,
        info: Option<&AuthenticationInfo>,
        body: &[u8],
    ) -> Result<(), DigestError> {
        let info = info.ok_or(DigestError::MissingRspauth)?;
        let sent = self
            .sent
            .as_ref()
            .ok_or(DigestError::State("no RES answered"))?;
        // The echoed parameters must be the request's: a downgrade from auth-int to auth would
        // leave the body unprotected.
        let echoed = match sent.qop {
            Some(q) => {
                info.qop == Some(q)
                    && info.nc == Some(1)
                    && info.cnonce.as_deref() == Some(sent.cnonce.as_str())
            }
            None => info.qop.is_none() && info.nc.is_none() && info.cnonce.is_none(),
        };
        let expected = response_auth(&DigestInput {
            username: &self.impi,
            realm: &self.realm,
            password: &sent.res,
            method: "",
            uri: &self.uri,
            nonce: &sent.nonce,
            qop: sent.qop.map(|q| (q, 1, sent.cnonce.as_str())),
            body,
        });
        let same = bool::from(expected.as_bytes().ct_eq(info.rspauth.as_bytes()));
        if echoed && same {
            Ok(())
        } else {
            Err(DigestError::BadRspauth)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// BootstrappingInfo (TS 24.109 Annex C).

/// B-TID = base64(RAND) "@" BSF server name (TS 33.220 4.5.2), as text without checking the
/// name; [`super::kdf::BTid::new`] is the checked form.
#[must_use]
pub fn btid(rand: &[u8; 16], bsf_fqdn: &str) -> String {
    let mut s = base64_encode(rand);
    s.push('@');
    s.push_str(bsf_fqdn);
    s
}

/// The 200 body: `<BootstrappingInfo xmlns="uri:3gpp-gba"><btid>..</btid><lifetime>..</lifetime>
/// </BootstrappingInfo>`, the lifetime as an `xs:dateTime` (UTC on output).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootstrappingInfo {
    /// The B-TID.
    pub btid: String,
    /// When Ks expires.
    pub lifetime: UnixTime,
}

fn xml_text_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_PARAM_VALUE
        && s.bytes()
            .all(|c| (0x21..0x7f).contains(&c) && !b"<>&\"'".contains(&c))
}

impl BootstrappingInfo {
    /// The XML document.
    pub fn to_xml(&self) -> Result<String, DigestError> {
        if !xml_text_ok(&self.btid) {
            return Err(DigestError::BadValue("btid"));
        }
        let lifetime = format_datetime(self.lifetime).ok_or(DigestError::BadValue("lifetime"))?;
        Ok(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<BootstrappingInfo xmlns=\"{GBA_NAMESPACE}\">\n  <btid>{}</btid>\n  <lifetime>{lifetime}</lifetime>\n</BootstrappingInfo>\n",
            self.btid
        ))
    }

    /// Parses exactly this shape: an optional `<?xml ...?>` declaration, `BootstrappingInfo` in
    /// namespace `uri:3gpp-gba` (default namespace, double or single quotes), `btid` then
    /// `lifetime` with plain text (no entities, comments or CDATA), whitespace between elements.
    pub fn from_xml(body: &[u8]) -> Result<Self, DigestError> {
        if body.len() > MAX_XML {
            return Err(DigestError::TooLong);
        }
        let text = core::str::from_utf8(body).map_err(|_| DigestError::Xml("not UTF-8"))?;
        let mut rest = text.strip_prefix('\u{feff}').unwrap_or(text).trim_start();
        if let Some(after) = rest.strip_prefix("<?xml") {
            let end = after.find("?>").ok_or(DigestError::Xml("declaration"))?;
            let decl = after.get(..end).unwrap_or("");
            if !decl.starts_with([' ', '\t', '\r', '\n']) || decl.contains('<') {
                return Err(DigestError::Xml("declaration"));
            }
            rest = after.get(end + 2..).unwrap_or("").trim_start();
        }
        let rest = rest
            .strip_prefix("<BootstrappingInfo")
            .ok_or(DigestError::Xml("root element"))?;
        let close = rest.find('>').ok_or(DigestError::Xml("root element"))?;
        let attrs = rest.get(..close).unwrap_or("").trim();
        let ns = attrs
            .strip_prefix("xmlns")
            .map(|a| a.trim_start())
            .and_then(|a| a.strip_prefix('='))
            .map(|a| a.trim_start())
            .ok_or(DigestError::Xml("namespace"))?;
        let ns_ok = ns == format!("\"{GBA_NAMESPACE}\"") || ns == format!("'{GBA_NAMESPACE}'");
        if !ns_ok {
            return Err(DigestError::Xml("namespace"));
        }
        let rest = rest.get(close + 1..).unwrap_or("");
        let (btid, rest) = element(rest, "btid")?;
        let (lifetime, rest) = element(rest, "lifetime")?;
        let rest = rest
            .trim_start()
            .strip_prefix("</BootstrappingInfo>")
            .ok_or(DigestError::Xml("end of root element"))?;
        if !rest.trim().is_empty() {
            return Err(DigestError::Xml("content after the root element"));
        }
        if !xml_text_ok(btid) {
            return Err(DigestError::BadValue("btid"));
        }
        Ok(Self {
            btid: btid.to_string(),
            lifetime: parse_datetime(lifetime).ok_or(DigestError::BadValue("lifetime"))?,
        })
    }
}

/// `<name>text</name>` after optional whitespace; the text (trimmed) and what follows.
fn element<'a>(s: &'a str, name: &'static str) -> Result<(&'a str, &'a str), DigestError> {
    let s = s.trim_start();
    let s = s
        .strip_prefix('<')
        .and_then(|s| s.strip_prefix(name))
        .and_then(|s| s.strip_prefix('>'))
        .ok_or(DigestError::Xml(name))?;
    let end = s.find('<').ok_or(DigestError::Xml(name))?;
    let text = s.get(..end).unwrap_or("");
    let after = s
        .get(end..)
        .and_then(|s| s.strip_prefix("</"))
        .and_then(|s| s.strip_prefix(name))
        .and_then(|s| s.strip_prefix('>'))
        .ok_or(DigestError::Xml(name))?;
    Ok((text.trim(), after))
}

fn digits(s: &str, range: core::ops::Range<usize>) -> Option<i64> {
    let d = s.get(range)?;
    if !d.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    d.parse().ok()
}

/// `YYYY-MM-DDThh:mm:ss[.f+](Z|±hh:mm)` (fractions dropped) as Unix seconds (1970..=9999).
fn parse_datetime(s: &str) -> Option<UnixTime> {
    let b = s.as_bytes();
    if b.len() < 20 || b.len() > 40 {
        return None;
    }
    let seps = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if !seps.iter().all(|&(i, c)| b.get(i) == Some(&c)) {
        return None;
    }
    let (y, mo, d) = (digits(s, 0..4)?, digits(s, 5..7)?, digits(s, 8..10)?);
    let (h, mi, se) = (digits(s, 11..13)?, digits(s, 14..16)?, digits(s, 17..19)?);
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    let offset = match (b.get(i), s.get(i..)) {
        (Some(b'Z'), Some("Z")) => 0,
        (Some(&sign @ (b'+' | b'-')), Some(tz))
            if tz.len() == 6 && tz.as_bytes().get(3) == Some(&b':') =>
        {
            let (oh, om) = (digits(tz, 1..3)?, digits(tz, 4..6)?);
            if oh > 14 || om > 59 {
                return None;
            }
            let o = oh * 3600 + om * 60;
            if sign == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return None,
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let dim = *month_days.get(usize::try_from(mo.checked_sub(1)?).ok()?)?;
    if y < 1970 || d < 1 || d > dim || h > 23 || mi > 59 || se > 59 {
        return None;
    }
    let t = crate::time::days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se - offset;
    // What `format_datetime` can write back: an offset must not carry the instant past 9999.
    if t > MAX_DATETIME {
        return None;
    }
    u64::try_from(t).ok().map(UnixTime)
}

/// 9999-12-31T23:59:59Z, the latest instant a lifetime can be written as.
const MAX_DATETIME: i64 = 253_402_300_799;

/// `YYYY-MM-DDThh:mm:ssZ` for years up to 9999.
fn format_datetime(t: UnixTime) -> Option<String> {
    let secs = i64::try_from(t.0).ok()?;
    let (y, m, d) = crate::time::civil_from_days(secs.div_euclid(86_400));
    if y > 9999 {
        return None;
    }
    let r = secs.rem_euclid(86_400);
    Some(format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        r / 3600,
        r % 3600 / 60,
        r % 60
    ))
}

// ---------------------------------------------------------------------------------------------
// HTTP/1.1 framing of Ub (feature `binding`, which carries httparse).

#[cfg(feature = "binding")]
pub use http::{UbReply, UbRequest, UbResponse, MAX_UB_HEAD};

#[cfg(feature = "binding")]
mod http {
    use super::{
        AuthenticationInfo, BootstrappingInfo, Challenge, Credentials, DigestError,
        BSF_CONTENT_TYPE, MAX_XML,
    };
    use alloc::format;
    use alloc::string::{String, ToString};
    use alloc::vec::Vec;

    /// Largest request or status line plus headers accepted.
    pub const MAX_UB_HEAD: usize = 8 * 1024;
    const MAX_HEADERS: usize = 24;

    /// The Ub `GET` (TS 24.109 4.5.2): request-target, `Host`, `Authorization` (always present:
    /// the initial request carries empty nonce and response).
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct UbRequest {
        /// The request-target, e.g. `/`.
        pub uri: String,
        /// `Host`.
        pub host: String,
        /// `Authorization`.
        pub authorization: Credentials,
    }

    /// A BSF answer.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum UbResponse {
        /// 401 with `WWW-Authenticate`.
        Unauthorized(Challenge),
        /// 200 with the `BootstrappingInfo` body.
        Bootstrapped(BootstrappingInfo),
        /// Any other status (e.g. 403 after a bad response), without body semantics.
        Status(u16),
    }

    /// One decoded BSF answer with what the client needs beyond [`UbResponse`] to authenticate
    /// a 200 ([`UbClient::on_bootstrapped`](super::UbClient::on_bootstrapped)).
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct UbReply<'a> {
        /// The answer.
        pub response: UbResponse,
        /// The parsed `Authentication-Info` of a 200 (`None` when absent; ignored on other
        /// statuses).
        pub authentication_info: Option<AuthenticationInfo>,
        /// The entity body exactly as received (what `rspauth` covers under `auth-int`).
        pub body: &'a [u8],
        /// How many bytes of the buffer the answer took.
        pub used: usize,
    }

    fn value_ok(v: &str) -> bool {
        !v.is_empty()
            && v.len() <= 4096
            && v.bytes().all(|b| b == b' ' || (0x21..0x7f).contains(&b))
    }

    fn reason(code: u16) -> &'static str {
        match code {
            200 => "OK",
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            500 => "Internal Server Error",
            503 => "Service Unavailable",
            _ => "Status",
        }
    }

    /// Headers read from a Ub message (each at most once).
    #[derive(Default)]
    struct Heads {
        host: Option<String>,
        authorization: Option<String>,
        www_authenticate: Option<String>,
        authentication_info: Option<String>,
        content_type: Option<String>,
        length: Option<usize>,
    }

    impl Heads {
        fn read(headers: &[httparse::Header<'_>]) -> Result<Self, DigestError> {
            let mut f = Self::default();
            for h in headers {
                let value = core::str::from_utf8(h.value)
                    .map_err(|_| DigestError::Http("header value"))?
                    .to_string();
                let n = h.name;
                let dup = if n.eq_ignore_ascii_case("Host") {
                    f.host.replace(value).is_some()
                } else if n.eq_ignore_ascii_case("Authorization") {
                    f.authorization.replace(value).is_some()
                } else if n.eq_ignore_ascii_case("WWW-Authenticate") {
                    f.www_authenticate.replace(value).is_some()
                } else if n.eq_ignore_ascii_case("Authentication-Info") {
                    f.authentication_info.replace(value).is_some()
                } else if n.eq_ignore_ascii_case("Content-Type") {
                    f.content_type.replace(value).is_some()
                } else if n.eq_ignore_ascii_case("Content-Length") {
                    if value.is_empty() || !value.bytes().all(|c| c.is_ascii_digit()) {
                        return Err(DigestError::Http("Content-Length"));
                    }
                    let len = value
                        .parse::<usize>()
                        .map_err(|_| DigestError::Http("Content-Length"))?;
                    f.length.replace(len).is_some()
                } else if n.eq_ignore_ascii_case("Transfer-Encoding") {
                    return Err(DigestError::Http("Transfer-Encoding is not used"));
                } else {
                    false
                };
                if dup {
                    return Err(DigestError::Duplicate);
                }
            }
            Ok(f)
        }
    }

    fn head_length(
        parsed: httparse::Result<usize>,
        have: usize,
    ) -> Result<Option<usize>, DigestError> {
        match parsed {
            Ok(httparse::Status::Complete(n)) if n > MAX_UB_HEAD => Err(DigestError::TooLong),
            Ok(httparse::Status::Complete(n)) => Ok(Some(n)),
            Ok(httparse::Status::Partial) if have > MAX_UB_HEAD => Err(DigestError::TooLong),
            Ok(httparse::Status::Partial) => Ok(None),
            Err(_) => Err(DigestError::Http("head")),
        }
    }

    impl UbRequest {
        /// Appends `GET <uri> HTTP/1.1` with `Host`, `User-Agent: 3gpp-gba` (TS 24.109 4.5.2),
        /// `Authorization` and `Content-Length: 0`.
        pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), DigestError> {
            if !self.uri.starts_with('/') || !value_ok(&self.uri) || self.uri.contains(' ') {
                return Err(DigestError::BadValue("uri"));
            }
            if !value_ok(&self.host) || self.host.contains(' ') {
                return Err(DigestError::BadValue("host"));
            }
            let auth = self.authorization.to_header()?;
            out.extend_from_slice(
                format!(
                    "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: 3gpp-gba\r\nAuthorization: {auth}\r\nContent-Length: 0\r\n\r\n",
                    self.uri, self.host
                )
                .as_bytes(),
            );
            Ok(())
        }

        /// Parses one request from the start of `buf`: `Ok(None)` while more bytes are needed,
        /// else the request and the bytes it took. Only `GET` without a body.
        pub fn decode(buf: &[u8]) -> Result<Option<(Self, usize)>, DigestError> {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut req = httparse::Request::new(&mut headers);
            let Some(head) = head_length(req.parse(buf), buf.len())? else {
                return Ok(None);
            };
            if req.version != Some(1) {
                return Err(DigestError::Http("HTTP version"));
            }
            if req.method != Some("GET") {
                return Err(DigestError::Http("method"));
            }
            let uri = req.path.ok_or(DigestError::Http("path"))?;
            if !uri.starts_with('/') {
                return Err(DigestError::Http("path"));
            }
            let f = Heads::read(req.headers)?;
            if f.length.unwrap_or(0) != 0 {
                return Err(DigestError::Http("GET with a body"));
            }
            let host = f.host.ok_or(DigestError::Missing("Host"))?;
            let authorization = Credentials::parse(
                &f.authorization
                    .ok_or(DigestError::Missing("Authorization"))?,
            )?;
            Ok(Some((
                Self {
                    uri: uri.to_string(),
                    host,
                    authorization,
                },
                head,
            )))
        }
    }

    impl UbResponse {
        /// Appends the HTTP/1.1 response (a 200 without `Authentication-Info`: see
        /// [`encode_with`](Self::encode_with)).
        pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), DigestError> {
            self.encode_with(None, out)
        }

        /// Appends the HTTP/1.1 response; a 200 carries `authentication_info` (the BSF's
        /// `rspauth`, [`PendingChallenge::authentication_info`](super::PendingChallenge::authentication_info)
        /// over [`BootstrappingInfo::to_xml`], the body written here). Other statuses carry none.
        pub fn encode_with(
            &self,
            authentication_info: Option<&AuthenticationInfo>,
            out: &mut Vec<u8>,
        ) -> Result<(), DigestError> {
            if authentication_info.is_some() && !matches!(self, Self::Bootstrapped(_)) {
                return Err(DigestError::BadValue(
                    "Authentication-Info on a status other than 200",
                ));
            }
            match self {
                Self::Unauthorized(c) => {
                    let h = c.to_header()?;
                    out.extend_from_slice(
                        format!("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: {h}\r\nContent-Length: 0\r\n\r\n")
                            .as_bytes(),
                    );
                }
                Self::Bootstrapped(info) => {
                    let body = info.to_xml()?;
                    let auth = match authentication_info {
                        Some(a) => format!("Authentication-Info: {}\r\n", a.to_header()?),
                        None => String::new(),
                    };
                    out.extend_from_slice(
                        format!(
                            "HTTP/1.1 200 OK\r\n{auth}Content-Type: {BSF_CONTENT_TYPE}\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        )
                        .as_bytes(),
                    );
                }
                Self::Status(code) => {
                    if !(100..=599).contains(code) || *code == 200 || *code == 401 {
                        return Err(DigestError::BadValue("status"));
                    }
                    out.extend_from_slice(
                        format!(
                            "HTTP/1.1 {code} {}\r\nContent-Length: 0\r\n\r\n",
                            reason(*code)
                        )
                        .as_bytes(),
                    );
                }
            }
            Ok(())
        }

        /// Parses one response from the start of `buf` (as [`UbRequest::decode`]); a 200 must
        /// carry `application/vnd.3gpp.bsf+xml`, a 401 one `WWW-Authenticate` Digest AKA
        /// challenge. Other statuses skip their body. A 200's `Authentication-Info`, if any,
        /// must parse but is dropped here: a client uses [`decode_reply`](Self::decode_reply).
        pub fn decode(buf: &[u8]) -> Result<Option<(Self, usize)>, DigestError> {
            Ok(Self::decode_reply(buf)?.map(|r| (r.response, r.used)))
        }

        /// [`decode`](Self::decode) with the 200's `Authentication-Info` and the raw body.
        pub fn decode_reply(buf: &[u8]) -> Result<Option<UbReply<'_>>, DigestError> {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut resp = httparse::Response::new(&mut headers);
            let Some(head) = head_length(resp.parse(buf), buf.len())? else {
                return Ok(None);
            };
            if resp.version != Some(1) {
                return Err(DigestError::Http("HTTP version"));
            }
            let code = resp.code.ok_or(DigestError::Http("status"))?;
            let f = Heads::read(resp.headers)?;
            let len = f.length.ok_or(DigestError::Missing("Content-Length"))?;
            if len > MAX_XML {
                return Err(DigestError::TooLong);
            }
            let Some(body) = buf.get(head..head + len) else {
                return Ok(None);
            };
            let mut authentication_info = None;
            let msg = match code {
                401 => Self::Unauthorized(Challenge::parse(
                    &f.www_authenticate
                        .ok_or(DigestError::Missing("WWW-Authenticate"))?,
                )?),
                200 => {
                    let ct = f.content_type.ok_or(DigestError::Missing("Content-Type"))?;
                    let media = ct.split(';').next().unwrap_or("").trim();
                    if !media.eq_ignore_ascii_case(BSF_CONTENT_TYPE) {
                        return Err(DigestError::Http("Content-Type"));
                    }
                    authentication_info = f
                        .authentication_info
                        .as_deref()
                        .map(AuthenticationInfo::parse)
                        .transpose()?;
                    Self::Bootstrapped(BootstrappingInfo::from_xml(body)?)
                }
                other => Self::Status(other),
            };
            Ok(Some(UbReply {
                response: msg,
                authentication_info,
                body,
                used: head + len,
            }))
        }
    }
}
