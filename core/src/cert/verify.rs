//! The built-in verifier of the oneM2M certificate rules (draft 8.1.1.2.2, spec-notes D7).
//!
//! An association is configured with the other entity's **Certificate Name** and **Root of
//! Trust** ([`RootOfTrust`]: a hash of a public verification key). [`OneM2mVerifier`] then decides
//! on what the peer sends:
//!
//! * **Raw public key** (RFC 7250): the key's DER SubjectPublicKeyInfo must hash to the Root of
//!   Trust (with the Root of Trust's algorithm). No name can be checked: as for a self-signed
//!   certificate, the key's hash *is* the entity's name, so the Root of Trust match is the name
//!   match. Refused with [`CertError::RawPublicKeyRefused`] when raw keys are switched off.
//! * **Self-signed certificate** (issuer == subject and its own signature verifies): the
//!   configured Certificate Name must denote the same hash as the Root of Trust (both are read
//!   as Root of Trust text, so `ni:///sha-256;..` and the 64-hex form of the same hash are
//!   equal), a name field of the certificate must denote that hash too (a subjectAltName URI or
//!   dNSName, or unless subjectAltName-only, a Subject attribute value), and the certificate's key
//!   must hash to the Root of Trust.
//! * **Chain** (leaf first, each next certificate issues the previous, as in the TLS Certificate
//!   message): the Certificate Name must equal a subjectAltName dNSName (ASCII case-insensitive)
//!   or URI (exact) of the leaf, or unless subjectAltName-only, a Subject attribute value (exact;
//!   case-insensitive when the name is a host name); names with `*` never match. The chain is
//!   followed from the leaf up to the **first** certificate whose key hashes to the Root of Trust
//!   (the root itself, or an intermediate when the root is omitted, or the leaf itself). Every
//!   certificate on that path must be valid at `now` and carry no unknown critical extension;
//!   every issuer must be named by its child's issuer field, verify its child's ECDSA P-256
//!   SHA-256 signature (ecdsa-with-SHA256 only), be a CA (basicConstraints cA), allow keyCertSign
//!   when it has keyUsage, respect its pathLenConstraint and its nameConstraints over every name
//!   below it. The leaf must have keyUsage with digitalSignature (the oneM2M profile, TS-0003
//!   10.1.1, requires keyUsage: a leaf without it is refused too) and, if it has
//!   extendedKeyUsage, serverAuth, clientAuth or anyExtendedKeyUsage.
//!
//! Every refusal is a [`CertError`] whose [`CertError::alert`] the handshake sends.
//! Certificates must be DER (they are re-encoded and compared), at most [`super::MAX_CHAIN_LEN`]
//! of them in at most [`super::MAX_CHAIN_BYTES`] bytes.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Write as _};
use core::str::FromStr;

use der::asn1::ObjectIdentifier;
use der::oid::AssociatedOid;
use der::{Decode, Encode, Tag, Tagged};
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};
use x509_cert::ext::pkix::constraints::name::GeneralSubtree;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, NameConstraints,
    SubjectAltName as SanExtension, SubjectKeyIdentifier,
};
use x509_cert::name::Name;
use x509_cert::Certificate;

use super::b64::{self, Alphabet};
use super::{
    verifying_key_from_spki, CertDecision, CertError, CertVerifier, Credential,
    PeerCertificateInfo, SubjectAltName,
};
use crate::time::UnixTime;

/// Defined in `cert` (present without `ecdhe`: `frameworks::config::Reason` carries it); also
/// here, its path before.
pub use super::RootOfTrustParseError;

/// ecdsa-with-SHA256 (RFC 5758 3.2), the only certificate signature algorithm accepted.
pub const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");

const EKU_SERVER_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.1");
const EKU_CLIENT_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.2");
const EKU_ANY: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37.0");

/// Verifies a DER ECDSA signature (`Ecdsa-Sig-Value`, RFC 3279 2.2.3) over SHA-256(`msg`) with a
/// P-256 key. The one signature check of the crate: certificate signatures here, and the
/// handshake's ServerKeyExchange / CertificateVerify. Any failure, including a signature that is
/// not strict DER, is [`CertError::BadSignature`].
pub fn verify_ecdsa_sha256(
    key: &VerifyingKey,
    msg: &[u8],
    der_sig: &[u8],
) -> Result<(), CertError> {
    let sig = Signature::from_der(der_sig).map_err(|_| CertError::BadSignature)?;
    key.verify(msg, &sig).map_err(|_| CertError::BadSignature)
}

/// As [`verify_ecdsa_sha256`], over an already computed SHA-256 `digest` (the TLS 1.2
/// CertificateVerify over the running transcript hash).
pub fn verify_ecdsa_sha256_prehash(
    key: &VerifyingKey,
    digest: &[u8; 32],
    der_sig: &[u8],
) -> Result<(), CertError> {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    let sig = Signature::from_der(der_sig).map_err(|_| CertError::BadSignature)?;
    key.verify_prehash(digest, &sig)
        .map_err(|_| CertError::BadSignature)
}

/// SHA-256 of `data`.
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

// ---------------------------------------------------------------------------------------------
// Root of Trust

/// The hash algorithm of a [`RootOfTrust`]: RFC 6920 suite names (IANA Named Information Hash
/// Algorithm Registry).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RotHash {
    /// `sha-256`: the full 32-byte SHA-256 (suite ID 1).
    Sha256,
    /// `sha-256-128`: SHA-256 truncated to its first 16 bytes (suite ID 2).
    Sha256_128,
    /// `sha-256-120`: SHA-256 truncated to its first 15 bytes (suite ID 3).
    Sha256_120,
}

impl RotHash {
    /// The digest length in bytes.
    #[must_use]
    pub const fn digest_len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha256_128 => 16,
            Self::Sha256_120 => 15,
        }
    }

    /// The RFC 6920 name (`sha-256`, `sha-256-128`, `sha-256-120`).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha-256",
            Self::Sha256_128 => "sha-256-128",
            Self::Sha256_120 => "sha-256-120",
        }
    }

    /// The RFC 6920 suite ID (1, 2, 3).
    #[must_use]
    pub const fn suite_id(self) -> u8 {
        match self {
            Self::Sha256 => 1,
            Self::Sha256_128 => 2,
            Self::Sha256_120 => 3,
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        [Self::Sha256, Self::Sha256_128, Self::Sha256_120]
            .into_iter()
            .find(|h| h.name().eq_ignore_ascii_case(name))
    }
}

/// An entity's Root of Trust (draft 8.1.1.2.1): the hash of a public verification key, over the
/// key's DER SubjectPublicKeyInfo (spec-notes D7, RFC 6920 2), with SHA-256 or one of its
/// RFC 6920 truncations.
///
/// Text forms ([`FromStr`]; [`fmt::Display`] writes the first, the canonical form):
///
/// * `ni:///sha-256;<base64url>`, `ni:///sha-256-128;<base64url>`, `ni:///sha-256-120;<base64url>`
///   (RFC 6920 3: base64url without padding, exactly the algorithm's length, canonical). The
///   scheme and algorithm name are case-insensitive; an authority (`ni://example.com/sha-256;..`)
///   and a query (`?ct=..`) are allowed and ignored, as RFC 6920 3 says they do not take part in
///   the comparison.
/// * 64 hexadecimal digits (either case): a full SHA-256.
///
/// Two values are equal when algorithm and digest are equal, whatever text they came from.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RootOfTrust {
    hash: RotHash,
    /// The digest in the first `hash.digest_len()` bytes, zero after.
    digest: [u8; 32],
}

impl RootOfTrust {
    /// The Root of Trust of a public key: `alg` over its DER SubjectPublicKeyInfo (the bytes are
    /// hashed as given; [`super::spki_of`] gives the canonical P-256 form).
    #[must_use]
    pub fn of_spki(spki_der: &[u8], alg: RotHash) -> Self {
        let full = sha256(spki_der);
        let mut digest = [0u8; 32];
        digest[..alg.digest_len()].copy_from_slice(&full[..alg.digest_len()]);
        Self { hash: alg, digest }
    }

    /// A Root of Trust from its digest bytes; [`CertError::Malformed`] if the length is not the
    /// algorithm's.
    pub fn from_digest(alg: RotHash, digest: &[u8]) -> Result<Self, CertError> {
        if digest.len() != alg.digest_len() {
            return Err(CertError::Malformed);
        }
        let mut d = [0u8; 32];
        d[..alg.digest_len()].copy_from_slice(digest);
        Ok(Self {
            hash: alg,
            digest: d,
        })
    }

    /// The algorithm.
    #[must_use]
    pub fn hash(&self) -> RotHash {
        self.hash
    }

    /// The digest (16, 15 or 32 bytes).
    #[must_use]
    pub fn digest(&self) -> &[u8] {
        &self.digest[..self.hash.digest_len()]
    }

    /// Whether the DER SubjectPublicKeyInfo `spki_der` hashes to this Root of Trust.
    #[must_use]
    pub fn matches_spki(&self, spki_der: &[u8]) -> bool {
        Self::of_spki(spki_der, self.hash) == *self
    }

    /// The canonical text, `ni:///<alg>;<base64url>`.
    #[must_use]
    pub fn to_ni_uri(&self) -> String {
        let mut s = String::from("ni:///");
        s.push_str(self.hash.name());
        s.push(';');
        s.push_str(&b64::encode(Alphabet::UrlNoPad, self.digest()));
        s
    }
}

impl fmt::Display for RootOfTrust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_ni_uri())
    }
}

impl fmt::Debug for RootOfTrust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RootOfTrust({})", self.to_ni_uri())
    }
}

impl FromStr for RootOfTrust {
    type Err = RootOfTrustParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let t = text.trim();
        if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut d = [0u8; 32];
            for (i, out) in d.iter_mut().enumerate() {
                let pair = t
                    .get(2 * i..2 * i + 2)
                    .ok_or(RootOfTrustParseError::Syntax)?;
                *out = u8::from_str_radix(pair, 16).map_err(|_| RootOfTrustParseError::Syntax)?;
            }
            return Ok(Self {
                hash: RotHash::Sha256,
                digest: d,
            });
        }
        let scheme = t.get(..5).ok_or(RootOfTrustParseError::Syntax)?;
        if !scheme.eq_ignore_ascii_case("ni://") {
            return Err(RootOfTrustParseError::Syntax);
        }
        let rest = &t[5..];
        // The authority (possibly empty) ends at the first '/'.
        let slash = rest.find('/').ok_or(RootOfTrustParseError::Syntax)?;
        let path = &rest[slash + 1..];
        let path = path.split_once('?').map_or(path, |(p, _query)| p);
        let (alg, value) = path.split_once(';').ok_or(RootOfTrustParseError::Syntax)?;
        let hash = RotHash::from_name(alg).ok_or(RootOfTrustParseError::UnknownAlgorithm)?;
        let digest = b64::decode(Alphabet::UrlNoPad, value).ok_or(RootOfTrustParseError::Base64)?;
        Self::from_digest(hash, &digest).map_err(|_| RootOfTrustParseError::Length)
    }
}

/// The Root of Trust that `credential` would be verified against when nothing above it is
/// configured: SHA-256 of the raw key, or of the key of the **last** certificate of the chain (the
/// root when the chain includes it; for a self-signed certificate, its own key). For tooling
/// (`m2msec cert` prints it for the operator to configure at the peer).
pub fn root_of_trust_of(credential: &Credential) -> Result<RootOfTrust, CertError> {
    let spki = match credential {
        Credential::RawPublicKey(spki) => spki.clone(),
        Credential::X509(chain) => {
            let last = chain.last().ok_or(CertError::NoCertificate)?;
            parse(last)?.spki_der
        }
    };
    verifying_key_from_spki(&spki)?;
    Ok(RootOfTrust::of_spki(&spki, RotHash::Sha256))
}

// ---------------------------------------------------------------------------------------------
// Parsing

/// A certificate as the verifier needs it.
struct Parsed {
    cert: Certificate,
    tbs_der: Vec<u8>,
    spki_der: Vec<u8>,
    issuer_der: Vec<u8>,
    subject_der: Vec<u8>,
    not_before: u64,
    not_after: u64,
    basic: Option<BasicConstraints>,
    key_usage: Option<KeyUsage>,
    eku: Option<ExtendedKeyUsage>,
    sans: Vec<GeneralName>,
    name_constraints: Option<NameConstraints>,
    unknown_critical: bool,
}

impl Parsed {
    fn self_issued(&self) -> bool {
        self.issuer_der == self.subject_der
    }
}

fn parse(der: &[u8]) -> Result<Parsed, CertError> {
    let cert = Certificate::from_der(der).map_err(|_| CertError::Malformed)?;
    // DER only: the signed bytes are the re-encoded TBSCertificate, so they must be the sent ones.
    if cert.to_der().map_err(|_| CertError::Malformed)? != der {
        return Err(CertError::Malformed);
    }
    let tbs = &cert.tbs_certificate;
    let enc = |r: der::Result<Vec<u8>>| r.map_err(|_| CertError::Malformed);
    let tbs_der = enc(tbs.to_der())?;
    let spki_der = enc(tbs.subject_public_key_info.to_der())?;
    let issuer_der = enc(tbs.issuer.to_der())?;
    let subject_der = enc(tbs.subject.to_der())?;
    let not_before = tbs.validity.not_before.to_unix_duration().as_secs();
    let not_after = tbs.validity.not_after.to_unix_duration().as_secs();

    let mut p = Parsed {
        tbs_der,
        spki_der,
        issuer_der,
        subject_der,
        not_before,
        not_after,
        basic: None,
        key_usage: None,
        eku: None,
        sans: Vec::new(),
        name_constraints: None,
        unknown_critical: false,
        cert: cert.clone(),
    };
    let mut seen: Vec<ObjectIdentifier> = Vec::new();
    for ext in cert.tbs_certificate.extensions.iter().flatten() {
        // RFC 5280 4.2: at most one instance of an extension.
        if seen.contains(&ext.extn_id) {
            return Err(CertError::Malformed);
        }
        seen.push(ext.extn_id);
        let v = ext.extn_value.as_bytes();
        let bad = |_| CertError::Malformed;
        match ext.extn_id {
            BasicConstraints::OID => p.basic = Some(BasicConstraints::from_der(v).map_err(bad)?),
            KeyUsage::OID => p.key_usage = Some(KeyUsage::from_der(v).map_err(bad)?),
            ExtendedKeyUsage::OID => p.eku = Some(ExtendedKeyUsage::from_der(v).map_err(bad)?),
            SanExtension::OID => p.sans = SanExtension::from_der(v).map_err(bad)?.0,
            NameConstraints::OID => {
                p.name_constraints = Some(NameConstraints::from_der(v).map_err(bad)?);
            }
            SubjectKeyIdentifier::OID => {
                SubjectKeyIdentifier::from_der(v).map_err(bad)?;
            }
            AuthorityKeyIdentifier::OID => {
                AuthorityKeyIdentifier::from_der(v).map_err(bad)?;
            }
            _ if ext.critical => p.unknown_critical = true,
            _ => {}
        }
    }
    Ok(p)
}

/// Checks that `child` is signed with ecdsa-with-SHA256 by `issuer_key`.
fn check_signed_by(child: &Parsed, issuer_key: &VerifyingKey) -> Result<(), CertError> {
    let outer = &child.cert.signature_algorithm;
    if outer.oid != ECDSA_WITH_SHA256
        || outer.parameters.is_some()
        || child.cert.tbs_certificate.signature != *outer
    {
        return Err(CertError::UnsupportedKey);
    }
    let sig = child
        .cert
        .signature
        .as_bytes()
        .ok_or(CertError::BadSignature)?;
    verify_ecdsa_sha256(issuer_key, &child.tbs_der, sig)
}

fn check_validity(c: &Parsed, now: UnixTime) -> Result<(), CertError> {
    if now.0 < c.not_before {
        Err(CertError::NotYetValid)
    } else if now.0 > c.not_after {
        Err(CertError::Expired)
    } else {
        Ok(())
    }
}

/// What every certificate on the verified path must satisfy.
fn check_common(c: &Parsed, now: UnixTime) -> Result<(), CertError> {
    if c.unknown_critical {
        return Err(CertError::UnhandledCriticalExtension);
    }
    check_validity(c, now)
}

/// The leaf's uses: keyUsage present with digitalSignature; extendedKeyUsage, if present, for
/// TLS (either role: the verifier does not know which side it is on) or any purpose.
fn check_leaf_usage(c: &Parsed) -> Result<(), CertError> {
    match &c.key_usage {
        Some(ku) if ku.digital_signature() => {}
        _ => return Err(CertError::KeyUsage),
    }
    if let Some(eku) = &c.eku {
        if !eku
            .0
            .iter()
            .any(|o| *o == EKU_SERVER_AUTH || *o == EKU_CLIENT_AUTH || *o == EKU_ANY)
        {
            return Err(CertError::KeyUsage);
        }
    }
    Ok(())
}

/// An issuer with `below` non-self-issued intermediates between it and the leaf.
fn check_ca(issuer: &Parsed, below: usize) -> Result<(), CertError> {
    match &issuer.basic {
        Some(bc) if bc.ca => {
            if let Some(n) = bc.path_len_constraint {
                if below > usize::from(n) {
                    return Err(CertError::PathLenExceeded);
                }
            }
        }
        _ => return Err(CertError::NotCa),
    }
    if let Some(ku) = &issuer.key_usage {
        if !ku.key_cert_sign() {
            return Err(CertError::KeyUsage);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Names

/// The string value of a Subject attribute (UTF8String, PrintableString, IA5String,
/// TeletexString treated as Latin-1 subset only if ASCII, or BMPString is skipped).
fn attribute_str(value: &der::Any) -> Option<&str> {
    match value.tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::TeletexString => {
            core::str::from_utf8(value.value()).ok()
        }
        _ => None,
    }
}

fn subject_values(name: &Name) -> impl Iterator<Item = &str> {
    name.0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .filter_map(|atv| attribute_str(&atv.value))
}

fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// RFC 4514-style text of a Name (x509-cert's rendering; never fails).
fn name_text(name: &Name) -> String {
    let mut s = String::new();
    if write!(s, "{name}").is_err() {
        s.clear();
        s.push_str("<unprintable>");
    }
    s
}

fn to_public_san(g: &GeneralName) -> SubjectAltName {
    match g {
        GeneralName::DnsName(s) => SubjectAltName::Dns(String::from(s.as_str())),
        GeneralName::UniformResourceIdentifier(s) => SubjectAltName::Uri(String::from(s.as_str())),
        GeneralName::IpAddress(o) => SubjectAltName::Ip(o.as_bytes().to_vec()),
        other => SubjectAltName::Other(other.to_der().unwrap_or_default()),
    }
}

/// Where the Certificate Name was found.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Found {
    SanDns,
    SanUri,
    Subject,
}

/// The host of a URI (`scheme://[userinfo@]host[:port]/..` or scheme-relative `//host/..`, as in
/// an oneM2M absolute AE-ID), lower-cased by the caller. `None` without an authority or host.
fn uri_host(uri: &str) -> Option<&str> {
    let rest = match uri.find(':') {
        Some(p)
            if uri[..p].starts_with(|c: char| c.is_ascii_alphabetic())
                && uri[..p]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.') =>
        {
            &uri[p + 1..]
        }
        _ => uri,
    };
    let rest = rest.strip_prefix("//")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let hostport = authority.rsplit('@').next().unwrap_or(authority);
    let host = if hostport.starts_with('[') {
        &hostport[..=hostport.find(']')?]
    } else {
        hostport.split(':').next().unwrap_or(hostport)
    };
    (!host.is_empty()).then_some(host)
}

fn trim_dot(s: &str) -> &str {
    s.strip_suffix('.').unwrap_or(s)
}

/// dNSName constraint (RFC 5280 4.2.1.10): `example.com` covers itself and every name below it,
/// `.example.com` only the names below it; the empty base covers everything.
fn dns_within(name: &str, base: &str) -> bool {
    let (name, base) = (trim_dot(name), trim_dot(base));
    if base.is_empty() {
        return true;
    }
    let ends = |suffix: &str| {
        name.len() > suffix.len()
            && name
                .get(name.len() - suffix.len()..)
                .is_some_and(|t| t.eq_ignore_ascii_case(suffix))
    };
    if base.starts_with('.') {
        ends(base)
    } else {
        name.eq_ignore_ascii_case(base)
            || (ends(base) && name.as_bytes()[name.len() - base.len() - 1] == b'.')
    }
}

/// URI constraint (RFC 5280 4.2.1.10), on the host: `.example.com` covers hosts below it,
/// `host.example.com` that host only.
fn uri_host_within(host: &str, base: &str) -> bool {
    let (host, base) = (trim_dot(host), trim_dot(base));
    if base.starts_with('.') {
        host.len() > base.len()
            && host
                .get(host.len() - base.len()..)
                .is_some_and(|t| t.eq_ignore_ascii_case(base))
    } else {
        host.eq_ignore_ascii_case(base)
    }
}

fn ip_within(ip: &[u8], base: &[u8]) -> Result<bool, CertError> {
    if base.len() != 8 && base.len() != 32 {
        return Err(CertError::Malformed);
    }
    let (addr, mask) = base.split_at(base.len() / 2);
    if ip.len() != addr.len() {
        return Ok(false);
    }
    Ok(ip
        .iter()
        .zip(addr)
        .zip(mask)
        .all(|((i, a), m)| i & m == a & m))
}

fn dir_within(name: &Name, base: &Name) -> bool {
    base.0.len() <= name.0.len() && base.0.iter().zip(&name.0).all(|(b, n)| b == n)
}

/// A name below a CA, as name constraints see it.
enum Subordinate<'a> {
    Dns(&'a str),
    Uri(&'a str),
    Ip(&'a [u8]),
    Dir(&'a Name),
    /// Another GeneralName form, by its context tag number.
    Other(u8),
}

fn general_form(g: &GeneralName) -> u8 {
    match g {
        GeneralName::OtherName(_) => 0,
        GeneralName::Rfc822Name(_) => 1,
        GeneralName::DnsName(_) => 2,
        GeneralName::DirectoryName(_) => 4,
        GeneralName::EdiPartyName(_) => 5,
        GeneralName::UniformResourceIdentifier(_) => 6,
        GeneralName::IpAddress(_) => 7,
        GeneralName::RegisteredId(_) => 8,
    }
}

impl Subordinate<'_> {
    fn form(&self) -> u8 {
        match self {
            Self::Dns(_) => 2,
            Self::Uri(_) => 6,
            Self::Ip(_) => 7,
            Self::Dir(_) => 4,
            Self::Other(t) => *t,
        }
    }

    /// Whether this name is within `base` (same form). `Err` for forms we cannot evaluate.
    fn within(&self, base: &GeneralName) -> Result<bool, CertError> {
        match (self, base) {
            (Self::Dns(n), GeneralName::DnsName(b)) => Ok(dns_within(n, b.as_str())),
            (Self::Uri(u), GeneralName::UniformResourceIdentifier(b)) => {
                Ok(uri_host(u).is_some_and(|h| uri_host_within(h, b.as_str())))
            }
            (Self::Ip(ip), GeneralName::IpAddress(b)) => ip_within(ip, b.as_bytes()),
            (Self::Dir(n), GeneralName::DirectoryName(b)) => Ok(dir_within(n, b)),
            _ => Err(CertError::NameConstraints),
        }
    }
}

fn subtrees_of_form(
    trees: Option<&Vec<GeneralSubtree>>,
    form: u8,
) -> impl Iterator<Item = &GeneralSubtree> {
    trees
        .into_iter()
        .flatten()
        .filter(move |t| general_form(&t.base) == form)
}

/// Applies one CA's nameConstraints to one name.
fn check_constraint(nc: &NameConstraints, name: &Subordinate<'_>) -> Result<(), CertError> {
    let form = name.form();
    for t in subtrees_of_form(nc.excluded_subtrees.as_ref(), form) {
        if name.within(&t.base)? {
            return Err(CertError::NameConstraints);
        }
    }
    let mut permitted = subtrees_of_form(nc.permitted_subtrees.as_ref(), form).peekable();
    if permitted.peek().is_none() {
        return Ok(());
    }
    for t in permitted {
        if name.within(&t.base)? {
            return Ok(());
        }
    }
    Err(CertError::NameConstraints)
}

fn check_name_constraints(
    nc: &NameConstraints,
    below: &[Parsed],
    matched_subject_value: Option<&str>,
) -> Result<(), CertError> {
    // RFC 5280 4.2.1.10: minimum is 0 and maximum absent.
    for t in nc
        .permitted_subtrees
        .iter()
        .chain(nc.excluded_subtrees.iter())
        .flatten()
    {
        if t.minimum != 0 || t.maximum.is_some() {
            return Err(CertError::Malformed);
        }
    }
    for (k, c) in below.iter().enumerate() {
        // The subject of a self-issued intermediate is exempt (RFC 5280 6.1.3 (b)).
        let subject = &c.cert.tbs_certificate.subject;
        let exempt = subject.0.is_empty() || (k > 0 && c.self_issued());
        if !exempt {
            check_constraint(nc, &Subordinate::Dir(subject))?;
        }
        for g in &c.sans {
            let s = match g {
                GeneralName::DnsName(d) => Subordinate::Dns(d.as_str()),
                GeneralName::UniformResourceIdentifier(u) => Subordinate::Uri(u.as_str()),
                GeneralName::IpAddress(o) => Subordinate::Ip(o.as_bytes()),
                GeneralName::DirectoryName(n) => Subordinate::Dir(n),
                other => Subordinate::Other(general_form(other)),
            };
            check_constraint(nc, &s)?;
        }
    }
    // A Certificate Name matched in the leaf's Subject is held to the same constraints as if it
    // were a subjectAltName (otherwise a constrained CA could issue any name in a CN).
    if let Some(v) = matched_subject_value {
        let s = if v.contains('/') {
            Subordinate::Uri(v)
        } else {
            Subordinate::Dns(v)
        };
        check_constraint(nc, &s)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The verifier

/// The oneM2M certificate verifier for one association (see the module documentation for the
/// rules).
#[derive(Clone, Debug)]
pub struct OneM2mVerifier {
    certificate_name: String,
    root_of_trust: RootOfTrust,
    san_only: bool,
    accept_raw_public_keys: bool,
}

impl OneM2mVerifier {
    /// A verifier for the other entity's Certificate Name (otherEntityCertificateName) and Root
    /// of Trust (otherEntityRootOfTrust). Defaults: the name may be in the Subject or a
    /// subjectAltName (draft), raw public keys are accepted (published 10.2.3: all flavours).
    #[must_use]
    pub fn new(certificate_name: impl Into<String>, root_of_trust: RootOfTrust) -> Self {
        Self {
            certificate_name: certificate_name.into(),
            root_of_trust,
            san_only: false,
            accept_raw_public_keys: true,
        }
    }

    /// Only subjectAltName entries can carry the Certificate Name (published TS-0003 10.1.2:
    /// the CN is never used).
    #[must_use]
    pub fn san_only(mut self, yes: bool) -> Self {
        self.san_only = yes;
        self
    }

    /// Whether raw public keys (RFC 7250) are accepted.
    #[must_use]
    pub fn accept_raw_public_keys(mut self, yes: bool) -> Self {
        self.accept_raw_public_keys = yes;
        self
    }

    /// The configured Certificate Name.
    #[must_use]
    pub fn certificate_name(&self) -> &str {
        &self.certificate_name
    }

    /// The configured Root of Trust.
    #[must_use]
    pub fn root_of_trust(&self) -> &RootOfTrust {
        &self.root_of_trust
    }

    /// The decision as a `Result`: what [`CertVerifier::verify`] returns as Accept / Reject.
    pub fn check(
        &self,
        peer: &Credential,
        now: UnixTime,
    ) -> Result<PeerCertificateInfo, CertError> {
        peer.check_bounds()?;
        match peer {
            Credential::RawPublicKey(spki) => {
                if !self.accept_raw_public_keys {
                    return Err(CertError::RawPublicKeyRefused);
                }
                verifying_key_from_spki(spki)?;
                if !self.root_of_trust.matches_spki(spki) {
                    return Err(CertError::UntrustedRoot);
                }
                Ok(PeerCertificateInfo::for_key(sha256(spki), true))
            }
            Credential::X509(chain) => {
                let certs = chain
                    .iter()
                    .map(|c| parse(c))
                    .collect::<Result<Vec<_>, _>>()?;
                let leaf = certs.first().ok_or(CertError::NoCertificate)?;
                let leaf_key = verifying_key_from_spki(&leaf.spki_der)?;
                let self_signed = leaf.self_issued()
                    && match check_signed_by(leaf, &leaf_key) {
                        Ok(()) => true,
                        Err(e) if certs.len() == 1 => return Err(e),
                        Err(_) => false,
                    };
                let (matched, chain_len) = if self_signed {
                    (self.check_self_signed(leaf, now)?, 1)
                } else {
                    self.check_chain(&certs, now)?
                };
                let tbs = &leaf.cert.tbs_certificate;
                let mut info = PeerCertificateInfo::for_key(sha256(&leaf.spki_der), false);
                info.matched_name = Some(matched);
                info.subject = Some(name_text(&tbs.subject));
                info.subject_alt_names = leaf.sans.iter().map(to_public_san).collect();
                info.not_before = Some(UnixTime(leaf.not_before));
                info.not_after = Some(UnixTime(leaf.not_after));
                info.chain_len = chain_len;
                Ok(info)
            }
        }
    }

    /// The name fields of `c` that may carry the Certificate Name: subjectAltName dNSName and
    /// URI values, then (unless SAN-only) the Subject's string attribute values.
    fn name_fields<'c>(&self, c: &'c Parsed) -> impl Iterator<Item = (Found, &'c str)> {
        let sans = c.sans.iter().filter_map(|g| match g {
            GeneralName::DnsName(d) => Some((Found::SanDns, d.as_str())),
            GeneralName::UniformResourceIdentifier(u) => Some((Found::SanUri, u.as_str())),
            _ => None,
        });
        let subject = (!self.san_only)
            .then(|| subject_values(&c.cert.tbs_certificate.subject).map(|v| (Found::Subject, v)))
            .into_iter()
            .flatten();
        sans.chain(subject)
    }

    fn check_self_signed(&self, leaf: &Parsed, now: UnixTime) -> Result<String, CertError> {
        check_common(leaf, now)?;
        check_leaf_usage(leaf)?;
        let rot = self.root_of_trust;
        if !rot.matches_spki(&leaf.spki_der) {
            return Err(CertError::UntrustedRoot);
        }
        // The Certificate Name and the Root of Trust are identical (as hashes)...
        if RootOfTrust::from_str(&self.certificate_name) != Ok(rot) {
            return Err(CertError::NameMismatch);
        }
        // ... and some name field of the certificate carries that hash.
        self.name_fields(leaf)
            .find(|(_, v)| RootOfTrust::from_str(v) == Ok(rot))
            .map(|(_, v)| String::from(v))
            .ok_or(CertError::NameMismatch)
    }

    /// Finds the Certificate Name in the leaf.
    fn match_name<'c>(&self, leaf: &'c Parsed) -> Option<(Found, &'c str)> {
        let want = self.certificate_name.as_str();
        if want.is_empty() || want.contains('*') {
            return None;
        }
        let host_like = is_host_name(want);
        self.name_fields(leaf).find(|&(found, v)| {
            if v.contains('*') {
                return false;
            }
            match found {
                Found::SanDns => v.eq_ignore_ascii_case(want),
                Found::SanUri => v == want,
                Found::Subject => v == want || (host_like && v.eq_ignore_ascii_case(want)),
            }
        })
    }

    /// The chained rule; returns the matched name and the number of certificates used.
    fn check_chain(&self, certs: &[Parsed], now: UnixTime) -> Result<(String, usize), CertError> {
        let leaf = &certs[0];
        check_common(leaf, now)?;
        check_leaf_usage(leaf)?;
        let (found, matched) = self.match_name(leaf).ok_or(CertError::NameMismatch)?;
        let subject_value = (found == Found::Subject).then_some(matched);
        let rot = self.root_of_trust;
        for i in 0..certs.len() {
            let c = &certs[i];
            if i > 0 {
                check_common(c, now)?;
            }
            if rot.matches_spki(&c.spki_der) {
                return Ok((String::from(matched), i + 1));
            }
            let issuer = certs.get(i + 1).ok_or(CertError::UntrustedRoot)?;
            if c.issuer_der != issuer.subject_der {
                return Err(CertError::BadChainOrder);
            }
            let issuer_key = verifying_key_from_spki(&issuer.spki_der)?;
            check_signed_by(c, &issuer_key)?;
            let below = certs[1..=i].iter().filter(|x| !x.self_issued()).count();
            check_ca(issuer, below)?;
            if let Some(nc) = &issuer.name_constraints {
                check_name_constraints(nc, &certs[..=i], subject_value)?;
            }
        }
        Err(CertError::UntrustedRoot)
    }
}

impl CertVerifier for OneM2mVerifier {
    fn verify(&self, peer: &Credential, now: UnixTime) -> CertDecision {
        match self.check(peer, now) {
            Ok(info) => CertDecision::Accept(info),
            Err(e) => CertDecision::Reject(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn root_of_trust_text_forms() {
        let spki = super::super::SigningKey::from_bytes(&[9u8; 32])
            .unwrap()
            .spki_der();
        let full = RootOfTrust::of_spki(&spki, RotHash::Sha256);
        let hex: String = full
            .digest()
            .iter()
            .map(|b| alloc::format!("{b:02X}"))
            .collect();
        assert_eq!(hex.parse::<RootOfTrust>(), Ok(full));
        assert_eq!(hex.to_lowercase().parse::<RootOfTrust>(), Ok(full));
        let text = full.to_string();
        assert!(text.starts_with("ni:///sha-256;"));
        assert_eq!(text.len(), "ni:///sha-256;".len() + 43);
        assert_eq!(text.parse::<RootOfTrust>(), Ok(full));
        let with_authority = text.replacen("ni:///", "NI://example.com/", 1) + "?ct=text/plain";
        assert_eq!(with_authority.parse::<RootOfTrust>(), Ok(full));
        for alg in [RotHash::Sha256_128, RotHash::Sha256_120] {
            let t = RootOfTrust::of_spki(&spki, alg);
            assert_eq!(t.digest(), &full.digest()[..alg.digest_len()]);
            assert_eq!(t.to_string().parse::<RootOfTrust>(), Ok(t));
            assert!(t.matches_spki(&spki));
            assert_ne!(t, full);
        }
        use RootOfTrustParseError as E;
        assert_eq!("".parse::<RootOfTrust>(), Err(E::Syntax));
        assert_eq!(
            "ni:///md5;AAAA".parse::<RootOfTrust>(),
            Err(E::UnknownAlgorithm)
        );
        assert_eq!("ni:///sha-256;AAAA".parse::<RootOfTrust>(), Err(E::Length));
        assert_eq!("ni:///sha-256;AA=A".parse::<RootOfTrust>(), Err(E::Base64));
        assert_eq!(hex[..62].parse::<RootOfTrust>(), Err(E::Syntax));
        assert_eq!("ni:sha-256;AAAA".parse::<RootOfTrust>(), Err(E::Syntax));
    }

    #[test]
    fn name_constraint_matching() {
        assert!(dns_within("a.example.com", "example.com"));
        assert!(dns_within("EXAMPLE.com", "example.com"));
        assert!(!dns_within("badexample.com", "example.com"));
        assert!(!dns_within("example.com", ".example.com"));
        assert!(dns_within("a.b.example.com", ".example.com"));
        assert!(dns_within("anything", ""));
        assert_eq!(
            uri_host("//m2m.prov.com/CSE3219/C9886"),
            Some("m2m.prov.com")
        );
        assert_eq!(uri_host("coaps://u@h.example:5684/x"), Some("h.example"));
        assert_eq!(uri_host("ni:///sha-256;x"), None);
        assert_eq!(uri_host("urn:x:y"), None);
        assert_eq!(uri_host("https://[::1]:8/"), Some("[::1]"));
        assert!(uri_host_within("a.example.com", ".example.com"));
        assert!(!uri_host_within("example.com", ".example.com"));
        assert!(!uri_host_within("a.example.com", "example.com"));
        assert_eq!(
            ip_within(&[10, 1, 2, 3], &[10, 0, 0, 0, 255, 0, 0, 0]),
            Ok(true)
        );
        assert_eq!(
            ip_within(&[11, 1, 2, 3], &[10, 0, 0, 0, 255, 0, 0, 0]),
            Ok(false)
        );
        assert!(ip_within(&[1], &[1]).is_err());
    }
}
