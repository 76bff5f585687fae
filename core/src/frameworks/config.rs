//! Typed, validated configuration of the PSK security frameworks: the parameters of draft
//! clause 9.1 (tables 9.1.1.1-1 to 9.1.2.4-1) that the Pre-Provisioned and MAF-based Security
//! Association Establishment Frameworks use, and the Bootstrap Credential / Bootstrap Instruction
//! Configuration of the Pre-Provisioned Symmetric Key Security Bootstrap Framework (draft
//! 8.3.2.1).
//!
//! The types group the parameters as the draft does:
//!
//! | draft phase | who | table / clause | type |
//! |---|---|---|---|
//! | Credential Configuration, Pre-Provisioned | field or infrastructure end-point | 9.1.1.1-1, 9.1.1.2-1 | [`PreProvisionedCredential`] |
//! | Credential Configuration, MAF-Based | field end-point | 9.1.1.1-1 | [`MafCredential`] (= `mafIdentifier` + [`MasterCredential`]) |
//! | Credential Configuration, MAF-Based, A-to-MAF | MAF | 9.1.1.3-1 | [`MasterCredential`] in a [`MafClient`] |
//! | Association Configuration, common | end-point, MAF | 9.1.2.1-1, 9.1.2.2-1, 9.1.2.3-1 | [`AssociationConfig`] |
//! | Association Configuration, Pre-Provisioned-specific | field end-point | 9.1.2.1-2 (`thisEntityIdentifier`) | [`PreProvisionedAssociation`] |
//! | Bootstrap Credential Configuration | Enrolee, MEF | 8.3.2.1 (Kpm, KpmId, MEF URI) | [`BootstrapCredential`], [`MefUri`] |
//! | Bootstrap Instruction Configuration | Enrolee, MEF | 8.3.2.1 (MAF-ID, Enrolee-ID) | [`BootstrapInstruction`] |
//! | Credential Configuration, Certificate Based | end-point, Enrolee, MEF | 9.1.1.1-1, 9.1.1.2-1, 8.1.1.2.1 | [`CertificateCredential`] |
//! | Association Configuration, Certificate Based | end-point | 9.1.2.1-2, 9.1.2.2-2 | [`CertificateAssociation`] (= [`CertificatePeer`] + [`AssociationConfig`]) |
//! | Certificate-Based Bootstrap Instruction | Enrolee, MEF | 8.3.2.2 | [`EnroleeBootstrap::certificate`], [`MefEnrolee::certificate`] |
//!
//! and whole configurations per role: [`EndPointConfig`] (an Entity A / Entity B, optionally an
//! Enrolee), [`MefConfig`] and [`MafConfig`].
//!
//! Every refusal is a [`ParameterError`] that names the parameter as the draft spells it (the
//! names are in [`param`]). Construction is time-free (the core reads no clock); the expiries are
//! checked against a caller-supplied `now`: `validate_at(now)` refuses a configuration with
//! anything already expired, and at run time [`MasterCredential::check_usable`] /
//! [`AssociationConfig::check_usable`] refuse an expired credential or configuration before a
//! handshake, while an [`AssociationClock`] tells the owner of an established security
//! association when its `securityAssociationLifespan` is over and it must be closed.
//!
//! An expiry is the first second at which the item is no longer usable: it is expired when
//! `now >= expiry`. Keys are the zeroizing types of [`crate::keys`]; `Debug` never shows them.
//!
//! Certificate-based peers are matched with [`match_certificate`] (the rule an Entity B or a
//! MEF uses to find which configured peer a received certificate belongs to).
//!
//! Not here: the GBA-based rows of the tables.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::num::NonZeroU64;
use core::time::Duration;

use zeroize::{ZeroizeOnDrop, Zeroizing};

#[cfg(feature = "ecdhe")]
use crate::cert::{
    root_of_trust_of, CertifiedKey, Credential, OneM2mVerifier, PeerCertificateInfo, RootOfTrust,
    SigningKey,
};
use crate::cert::{CertError, RootOfTrustParseError};
use crate::keys::{IdKind, Key32, KeyError, KeyId, Km, Kpsa, KEY_LEN};
use crate::messages::is_dns_name;
use crate::secret::{Psk, SecretArray};
use crate::time::UnixTime;

/// The parameter names, as the draft spells them; [`ParameterError`] carries one of these.
///
/// Table parameters keep the draft's camelCase names. The bootstrap parameters, which the draft
/// names only in prose ("MAF-ID", "Enrolee-ID", "MEF URI", "KpmId", "Kpm"), get camelCase names
/// in the same style; `mefIdentifier` (the MEF's own FQDN, needed to form KeID) is ours.
pub mod param {
    /// Pre-Provisioned Secure Connection Key Kpsa (tables 9.1.1.1-1, 9.1.1.2-1).
    pub const KPSA_KEY: &str = "kpsaKey";
    /// Its identifier KpsaId (tables 9.1.1.1-1, 9.1.1.2-1).
    pub const KPSA_ID: &str = "kpsaId";
    /// MAF-ID = MAF FQDN, in the Credential Configuration (table 9.1.1.1-1).
    pub const MAF_IDENTIFIER: &str = "mafIdentifier";
    /// CSE-ID / AE-ID of this end-point (tables 9.1.1.1-1, 9.1.1.3-1, 9.1.2.1-2).
    pub const THIS_ENTITY_IDENTIFIER: &str = "thisEntityIdentifier";
    /// Master Credential Km (tables 9.1.1.1-1, 9.1.1.3-1).
    pub const MASTER_CREDENTIAL: &str = "masterCredential";
    /// Master Credential Identifier KmID (tables 9.1.1.1-1, 9.1.1.3-1).
    pub const MASTER_CREDENTIAL_IDENTIFIER: &str = "masterCredentialIdentifier";
    /// When Km stops being usable (tables 9.1.1.1-1, 9.1.1.3-1).
    pub const MASTER_CREDENTIAL_EXPIRY: &str = "masterCredentialExpiry";
    /// CSE-ID / AE-ID of the peer (tables 9.1.2.1-1, 9.1.2.2-1, 9.1.2.3-1).
    pub const OTHER_ENTITY_IDENTIFIER: &str = "otherEntityIdentifier";
    /// When the association configuration stops being usable (tables 9.1.2.1-1 .. 9.1.2.3-1).
    pub const ASSOCIATION_CONFIGURATION_EXPIRY: &str = "associationConfigurationExpiry";
    /// How long one established security association may live (tables 9.1.2.1-1 .. 9.1.2.3-1).
    pub const SECURITY_ASSOCIATION_LIFESPAN: &str = "securityAssociationLifespan";
    /// "MAF-ID" of the Bootstrap Instruction Configuration (8.3.2.1).
    pub const MAF_ID: &str = "mafId";
    /// "Enrolee-ID" of the Bootstrap Instruction Configuration (8.3.2.1).
    pub const ENROLEE_ID: &str = "enroleeId";
    /// "MEF URI" of the Bootstrap Credential Configuration (8.3.2.1).
    pub const MEF_URI: &str = "mefUri";
    /// "KpmId" of the Bootstrap Credential Configuration (8.3.2.1).
    pub const KPM_ID: &str = "kpmId";
    /// "Kpm" of the Bootstrap Credential Configuration (8.3.2.1).
    pub const KPM: &str = "kpm";
    /// The MEF's own FQDN, the `@FQDN` of every KeID it issues (published 10.3.4; ours).
    pub const MEF_IDENTIFIER: &str = "mefIdentifier";
    /// The entity's Private Signing Key (tables 9.1.1.1-1, 9.1.1.2-1, Certificate Based).
    pub const THIS_ENTITY_PRIVATE_KEY: &str = "thisEntityPrivateKey";
    /// The entity's Certificate (tables 9.1.1.1-1, 9.1.1.2-1), or its raw public key.
    pub const THIS_ENTITY_CERTIFICATE: &str = "thisEntityCertificate";
    /// The Certificate Chain from the entity's Certificate towards a root (optional).
    pub const THIS_ENTITY_CERTIFICATE_CHAIN: &str = "thisEntityCertificateChain";
    /// The peer's Certificate Name (tables 9.1.2.1-2, 9.1.2.2-2; for a bootstrap: the MEF's or
    /// the Enrolee's Certificate Name of 8.3.2.2).
    pub const OTHER_ENTITY_CERTIFICATE_NAME: &str = "otherEntityCertificateName";
    /// The peer's Root of Trust (tables 9.1.2.1-2, 9.1.2.2-2; for a bootstrap: 8.3.2.2).
    pub const OTHER_ENTITY_ROOT_OF_TRUST: &str = "otherEntityRootOfTrust";
}

// ---------------------------------------------------------------------------------------------
// Errors

/// Why a parameter value was refused. Carries no secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// The value is empty.
    Empty,
    /// The value is longer than `max` bytes.
    TooLong {
        /// The limit.
        max: usize,
    },
    /// A character outside the allowed set.
    InvalidCharacter,
    /// A CSE-ID / AE-ID with an empty path segment, or `//` not followed by `SP-ID/`.
    MalformedEntityId,
    /// A key identifier that is not `relative@FQDN` (see [`KeyError`]).
    Identifier(KeyError),
    /// Not a DNS host name (LDH labels, no IP literal, no trailing dot).
    NotDnsName,
    /// A key of the wrong length.
    KeyLength {
        /// Bytes required.
        expected: usize,
        /// Bytes given.
        got: usize,
    },
    /// A zero duration.
    Zero,
    /// Must agree with the named parameter and does not (e.g. the FQDN of a KmID and
    /// `mafIdentifier`).
    Mismatch {
        /// The other parameter.
        other: &'static str,
    },
    /// The same value is configured twice where it must identify one entry.
    Duplicate,
    /// A URI whose scheme is not `https` (TLS) or `coaps` (DTLS).
    UnsupportedScheme,
    /// A URI that is not `scheme://host[:port][/path]` (no user info, no fragment).
    MalformedUri,
    /// A URI port that is not 1..=65535.
    BadPort,
    /// A certificate or key refused (not P-256, malformed, not the key's certificate, ...).
    Certificate(CertError),
    /// Not a Root of Trust (`ni:///sha-256;<base64url>`, sha-256-128, sha-256-120, or 64 hex
    /// digits).
    RootOfTrust(RootOfTrustParseError),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("is empty"),
            Self::TooLong { max } => write!(f, "is longer than {max} bytes"),
            Self::InvalidCharacter => f.write_str("has a character that is not allowed"),
            Self::MalformedEntityId => f.write_str(
                "is not a CSE-ID / AE-ID (empty path segment, or '//' without 'SP-ID/')",
            ),
            Self::Identifier(e) => write!(f, "is not relative@FQDN: {e}"),
            Self::NotDnsName => f.write_str("is not a DNS name"),
            Self::KeyLength { expected, got } => {
                write!(f, "has {got} bytes, {expected} are required")
            }
            Self::Zero => f.write_str("is zero"),
            Self::Mismatch { other } => write!(f, "does not agree with {other}"),
            Self::Duplicate => f.write_str("is configured more than once"),
            Self::UnsupportedScheme => f.write_str("has a scheme other than https or coaps"),
            Self::MalformedUri => f.write_str("is not scheme://host[:port][/path]"),
            Self::BadPort => f.write_str("has a port outside 1..=65535"),
            Self::Certificate(e) => write!(f, "is refused: {e}"),
            Self::RootOfTrust(e) => write!(f, "is not a Root of Trust: {e}"),
        }
    }
}

/// An expiry that has passed: `now >= expiry`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpiredError {
    /// The parameter that expired ([`param::MASTER_CREDENTIAL_EXPIRY`],
    /// [`param::ASSOCIATION_CONFIGURATION_EXPIRY`] or [`param::SECURITY_ASSOCIATION_LIFESPAN`]).
    pub name: &'static str,
    /// When it expired.
    pub expiry: UnixTime,
    /// The time it was checked at.
    pub now: UnixTime,
}

impl fmt::Display for ExpiredError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} expired at {} (Unix seconds), now is {}",
            self.name, self.expiry.0, self.now.0
        )
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ExpiredError {}

/// A refused configuration. Every variant names the parameter; none carries a secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParameterError {
    /// A mandatory parameter is absent.
    Missing {
        /// The parameter.
        name: &'static str,
    },
    /// A parameter has a value that is not acceptable.
    InvalidParameter {
        /// The parameter.
        name: &'static str,
        /// Why.
        reason: Reason,
    },
    /// An expiry has passed (from `validate_at`).
    Expired(ExpiredError),
}

impl ParameterError {
    /// The parameter concerned.
    #[must_use]
    pub const fn parameter(&self) -> &'static str {
        match self {
            Self::Missing { name } | Self::InvalidParameter { name, .. } => name,
            Self::Expired(e) => e.name,
        }
    }

    const fn invalid(name: &'static str, reason: Reason) -> Self {
        Self::InvalidParameter { name, reason }
    }
}

impl From<ExpiredError> for ParameterError {
    fn from(e: ExpiredError) -> Self {
        Self::Expired(e)
    }
}

impl fmt::Display for ParameterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing { name } => write!(f, "mandatory parameter {name} is missing"),
            Self::InvalidParameter { name, reason } => write!(f, "parameter {name} {reason}"),
            Self::Expired(e) => write!(f, "parameter {e}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ParameterError {}

fn check_expiry(
    name: &'static str,
    expiry: Option<UnixTime>,
    now: UnixTime,
) -> Result<(), ExpiredError> {
    match expiry {
        Some(expiry) if now >= expiry => Err(ExpiredError { name, expiry, now }),
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------------
// Identifier and value types

/// A fully qualified domain name (MAF-ID = MAF FQDN, MEF FQDN): a DNS name by
/// [`is_dns_name`], compared case-insensitively (D2). Kept as given.
#[derive(Clone, Debug, Eq)]
pub struct Fqdn(String);

impl Fqdn {
    /// Validates `s` as a DNS name.
    pub fn new(s: &str) -> Result<Self, Reason> {
        if s.is_empty() {
            return Err(Reason::Empty);
        }
        if !is_dns_name(s) {
            return Err(Reason::NotDnsName);
        }
        Ok(Self(String::from(s)))
    }

    /// The name as configured.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl PartialEq for Fqdn {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

impl core::hash::Hash for Fqdn {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        for b in self.0.bytes() {
            state.write_u8(b.to_ascii_lowercase());
        }
    }
}

impl fmt::Display for Fqdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Longest CSE-ID / AE-ID accepted, in bytes (TS-0003 sets none; ours).
pub const MAX_ENTITY_ID_LEN: usize = 512;

/// A CSE-ID or AE-ID (`thisEntityIdentifier`, `otherEntityIdentifier`, Enrolee-ID), in any of
/// the oneM2M forms: CSE-relative (`Cae1`, `id-in`), SP-relative (`/id-in`, `/id-in/Cae1`) or
/// absolute (`//sp.example.com/id-in/Cae1`). Compared exactly (oneM2M identifiers are
/// case-sensitive).
///
/// Accepted: 1..=[`MAX_ENTITY_ID_LEN`] bytes of RFC 3986 unreserved characters
/// (`A-Z a-z 0-9 - . _ ~`) and `/`; no empty path segment (so no trailing `/`); a leading `//`
/// must be followed by a DNS name (the SP-ID) and `/`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EntityId(String);

impl EntityId {
    /// Validates `s` as a CSE-ID / AE-ID.
    pub fn new(s: &str) -> Result<Self, Reason> {
        if s.is_empty() {
            return Err(Reason::Empty);
        }
        if s.len() > MAX_ENTITY_ID_LEN {
            return Err(Reason::TooLong {
                max: MAX_ENTITY_ID_LEN,
            });
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/'))
        {
            return Err(Reason::InvalidCharacter);
        }
        let rest = if let Some(abs) = s.strip_prefix("//") {
            let (sp_id, rest) = abs.split_once('/').ok_or(Reason::MalformedEntityId)?;
            if !is_dns_name(sp_id) {
                return Err(Reason::MalformedEntityId);
            }
            rest
        } else {
            s.strip_prefix('/').unwrap_or(s)
        };
        if rest.split('/').any(str::is_empty) {
            return Err(Reason::MalformedEntityId);
        }
        Ok(Self(String::from(s)))
    }

    /// The identifier as configured.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EntityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A `securityAssociationLifespan`: a whole number of seconds, at least one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lifespan(NonZeroU64);

impl Lifespan {
    /// A lifespan of `secs` seconds; zero is refused.
    pub fn from_secs(secs: u64) -> Result<Self, Reason> {
        NonZeroU64::new(secs).map(Self).ok_or(Reason::Zero)
    }

    /// The lifespan in seconds.
    #[must_use]
    pub const fn as_secs(self) -> u64 {
        self.0.get()
    }

    /// The lifespan as a [`Duration`].
    #[must_use]
    pub const fn as_duration(self) -> Duration {
        Duration::from_secs(self.0.get())
    }

    /// The first second at which an association established at `established_at` is past its
    /// lifespan (saturating).
    #[must_use]
    pub const fn deadline(self, established_at: UnixTime) -> UnixTime {
        UnixTime(established_at.0.saturating_add(self.0.get()))
    }
}

/// Which transport a [`MefUri`] names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MefTransport {
    /// `https`: TLS 1.2 over TCP, default port 443.
    Tls,
    /// `coaps`: DTLS 1.2 over UDP, default port 5684.
    Dtls,
}

/// The MEF URI the Enrolee uses "for the purpose of routing the (D)TLS exchange" (draft
/// 8.3.2.1): `https://host[:port][/path]` or `coaps://host[:port][/path]`.
///
/// The host must be a DNS name, because the client always sends it as server_name (D9); no user
/// information, no fragment. The scheme compares case-insensitively.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MefUri {
    text: String,
    transport: MefTransport,
    host: String,
    port: u16,
    path: String,
}

impl MefUri {
    /// Parses and validates `s`.
    pub fn parse(s: &str) -> Result<Self, Reason> {
        if s.is_empty() {
            return Err(Reason::Empty);
        }
        if !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Reason::InvalidCharacter);
        }
        let (scheme, rest) = s.split_once("://").ok_or(Reason::MalformedUri)?;
        let (transport, default_port) = if scheme.eq_ignore_ascii_case("https") {
            (MefTransport::Tls, 443)
        } else if scheme.eq_ignore_ascii_case("coaps") {
            (MefTransport::Dtls, 5684)
        } else {
            return Err(Reason::UnsupportedScheme);
        };
        if rest.contains('#') || rest.contains('@') {
            return Err(Reason::MalformedUri);
        }
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if authority.starts_with('[') {
            // An IP literal: no server_name can name it (D9).
            return Err(Reason::NotDnsName);
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => {
                if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(Reason::BadPort);
                }
                let port: u32 = port.parse().map_err(|_| Reason::BadPort)?;
                match u16::try_from(port) {
                    Ok(p) if p != 0 => (host, p),
                    _ => return Err(Reason::BadPort),
                }
            }
            None => (authority, default_port),
        };
        if !is_dns_name(host) {
            return Err(Reason::NotDnsName);
        }
        Ok(Self {
            text: String::from(s),
            transport,
            host: String::from(host),
            port,
            path: String::from(path),
        })
    }

    /// The URI as configured.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// TLS (`https`) or DTLS (`coaps`).
    #[must_use]
    pub const fn transport(&self) -> MefTransport {
        self.transport
    }

    /// The host: where to connect, and the server_name to send.
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, or the scheme's default.
    #[must_use]
    pub const fn port(&self) -> u16 {
        self.port
    }

    /// Path and query, possibly empty.
    #[must_use]
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl fmt::Display for MefUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Pre-Provisioned Symmetric Enrolee Key Kpm, shared by an Enrolee and its MEF (draft
/// 8.3.2.1). 32 bytes, like every symmetric key here.
///
/// Zeroized on drop, compared in constant time, redacted in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Kpm(Key32);

impl Kpm {
    /// The key from its bytes.
    #[must_use]
    pub fn new(bytes: [u8; KEY_LEN]) -> Self {
        Self(SecretArray::new(bytes))
    }

    /// The key bytes. Handle with care.
    #[must_use]
    pub fn expose(&self) -> &[u8; KEY_LEN] {
        self.0.expose()
    }

    /// The key as the (D)TLS pre-shared key of the Bootstrap Security Handshake: all 32 bytes
    /// (draft 8.3.2.1: "psk" = Kpm).
    #[must_use]
    pub fn to_psk(&self) -> Psk {
        Psk::new(self.0.expose()).expect("32 bytes is within 1..=MAX_PSK_LEN")
    }
}

// The only field is a SecretArray, which zeroizes itself on drop.
impl ZeroizeOnDrop for Kpm {}

impl fmt::Debug for Kpm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Kpm(<redacted>)")
    }
}

fn key_bytes(name: &'static str, bytes: &[u8]) -> Result<Zeroizing<[u8; KEY_LEN]>, ParameterError> {
    if bytes.len() != KEY_LEN {
        return Err(ParameterError::invalid(
            name,
            Reason::KeyLength {
                expected: KEY_LEN,
                got: bytes.len(),
            },
        ));
    }
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    out.copy_from_slice(bytes);
    Ok(out)
}

fn key_id(name: &'static str, kind: IdKind, s: &str) -> Result<KeyId, ParameterError> {
    if s.is_empty() {
        return Err(ParameterError::invalid(name, Reason::Empty));
    }
    KeyId::parse(kind, s).map_err(|e| ParameterError::invalid(name, Reason::Identifier(e)))
}

fn entity_id(name: &'static str, s: &str) -> Result<EntityId, ParameterError> {
    EntityId::new(s).map_err(|r| ParameterError::invalid(name, r))
}

fn fqdn(name: &'static str, s: &str) -> Result<Fqdn, ParameterError> {
    Fqdn::new(s).map_err(|r| ParameterError::invalid(name, r))
}

fn require<T>(name: &'static str, v: Option<T>) -> Result<T, ParameterError> {
    v.ok_or(ParameterError::Missing { name })
}

/// Keeps the first error a builder setter met; `build` reports it.
fn first_error<T>(
    slot: &mut Option<T>,
    err: &mut Option<ParameterError>,
    r: Result<T, ParameterError>,
) {
    match r {
        Ok(v) => *slot = Some(v),
        Err(e) => {
            if err.is_none() {
                *err = Some(e);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Credential Configuration (9.1.1)

/// Credential Configuration of the Pre-Provisioned M2M Secure Connection Key framework, at a
/// field- or infrastructure-domain end-point (tables 9.1.1.1-1 and 9.1.1.2-1): `kpsaKey`,
/// `kpsaId`, both mandatory.
///
/// The Association Security Handshake uses `psk_identity` = KpsaId and `psk` = Kpsa (draft
/// 8.2.2.1).
#[derive(Clone, Debug)]
pub struct PreProvisionedCredential {
    kpsa_key: Kpsa,
    kpsa_id: KeyId,
}

impl PreProvisionedCredential {
    /// Validates `kpsaKey` (exactly 32 bytes) and `kpsaId` (`relative@Issuer-FQDN`, published
    /// 10.5).
    pub fn new(kpsa_key: &[u8], kpsa_id: &str) -> Result<Self, ParameterError> {
        let kpsa_id = key_id(param::KPSA_ID, IdKind::Kpsa, kpsa_id)?;
        let kpsa_key = Kpsa::new(*key_bytes(param::KPSA_KEY, kpsa_key)?);
        Ok(Self { kpsa_key, kpsa_id })
    }

    /// `kpsaKey`.
    #[must_use]
    pub fn kpsa_key(&self) -> &Kpsa {
        &self.kpsa_key
    }

    /// `kpsaId`.
    #[must_use]
    pub fn kpsa_id(&self) -> &KeyId {
        &self.kpsa_id
    }
}

/// A Master Credential Km with its identifier and expiry, and the entity it belongs to: the
/// MAF-Based rows of table 9.1.1.1-1 (at the end-point, where `thisEntityIdentifier` is the
/// end-point itself) and table 9.1.1.3-1 (at the MAF, one per A-to-MAF client, where
/// `thisEntityIdentifier` names that client).
///
/// `masterCredentialIdentifier` is a KmID, `relative@MAF-FQDN` (published 10.6). Build with
/// [`MasterCredential::builder`].
#[derive(Clone, Debug)]
pub struct MasterCredential {
    this_entity_identifier: EntityId,
    master_credential: Km,
    master_credential_identifier: KeyId,
    master_credential_expiry: Option<UnixTime>,
}

impl MasterCredential {
    /// A builder; `build` checks that every mandatory parameter was given.
    #[must_use]
    pub fn builder() -> MasterCredentialBuilder {
        MasterCredentialBuilder::default()
    }

    /// `thisEntityIdentifier`.
    #[must_use]
    pub fn this_entity_identifier(&self) -> &EntityId {
        &self.this_entity_identifier
    }

    /// `masterCredential` (Km).
    #[must_use]
    pub fn master_credential(&self) -> &Km {
        &self.master_credential
    }

    /// `masterCredentialIdentifier` (KmID).
    #[must_use]
    pub fn master_credential_identifier(&self) -> &KeyId {
        &self.master_credential_identifier
    }

    /// `masterCredentialExpiry`, if configured.
    #[must_use]
    pub fn master_credential_expiry(&self) -> Option<UnixTime> {
        self.master_credential_expiry
    }

    /// Whether Km may be used for a handshake at `now`; an expired Km is refused, naming
    /// `masterCredentialExpiry`. Both the end-point and the MAF call this before every MAF
    /// Handshake.
    pub fn check_usable(&self, now: UnixTime) -> Result<(), ExpiredError> {
        check_expiry(
            param::MASTER_CREDENTIAL_EXPIRY,
            self.master_credential_expiry,
            now,
        )
    }
}

/// Builds a [`MasterCredential`]. Setters validate at once; `build` reports the first refusal,
/// else the first missing mandatory parameter.
#[derive(Default)]
pub struct MasterCredentialBuilder {
    this_entity_identifier: Option<EntityId>,
    master_credential: Option<Km>,
    master_credential_identifier: Option<KeyId>,
    master_credential_expiry: Option<UnixTime>,
    error: Option<ParameterError>,
}

impl fmt::Debug for MasterCredentialBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterCredentialBuilder")
            .field("this_entity_identifier", &self.this_entity_identifier)
            .field("master_credential", &self.master_credential)
            .field(
                "master_credential_identifier",
                &self.master_credential_identifier,
            )
            .field("master_credential_expiry", &self.master_credential_expiry)
            .field("error", &self.error)
            .finish()
    }
}

impl MasterCredentialBuilder {
    /// `thisEntityIdentifier` (mandatory): a CSE-ID / AE-ID.
    #[must_use]
    pub fn this_entity_identifier(mut self, id: &str) -> Self {
        let r = entity_id(param::THIS_ENTITY_IDENTIFIER, id);
        first_error(&mut self.this_entity_identifier, &mut self.error, r);
        self
    }

    /// `masterCredential` (mandatory): Km, exactly 32 bytes.
    #[must_use]
    pub fn master_credential(mut self, km: &[u8]) -> Self {
        let r = key_bytes(param::MASTER_CREDENTIAL, km).map(|b| Km::new(*b));
        first_error(&mut self.master_credential, &mut self.error, r);
        self
    }

    /// `masterCredentialIdentifier` (mandatory): KmID, `relative@MAF-FQDN`.
    #[must_use]
    pub fn master_credential_identifier(mut self, id: &str) -> Self {
        let r = key_id(param::MASTER_CREDENTIAL_IDENTIFIER, IdKind::Km, id);
        first_error(&mut self.master_credential_identifier, &mut self.error, r);
        self
    }

    /// `masterCredentialExpiry` (optional).
    #[must_use]
    pub fn master_credential_expiry(mut self, expiry: UnixTime) -> Self {
        self.master_credential_expiry = Some(expiry);
        self
    }

    /// The credential, or the first refusal / missing parameter.
    pub fn build(self) -> Result<MasterCredential, ParameterError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        Ok(MasterCredential {
            this_entity_identifier: require(
                param::THIS_ENTITY_IDENTIFIER,
                self.this_entity_identifier,
            )?,
            master_credential: require(param::MASTER_CREDENTIAL, self.master_credential)?,
            master_credential_identifier: require(
                param::MASTER_CREDENTIAL_IDENTIFIER,
                self.master_credential_identifier,
            )?,
            master_credential_expiry: self.master_credential_expiry,
        })
    }
}

/// Credential Configuration of the MAF-Based framework at a field-domain end-point (table
/// 9.1.1.1-1): `mafIdentifier` and the [`MasterCredential`] shared with that MAF.
///
/// The FQDN part of the KmID must name the same MAF (published 10.6: KmID =
/// relative@MAF-FQDN, and MAF-ID is the MAF FQDN), compared case-insensitively.
#[derive(Clone, Debug)]
pub struct MafCredential {
    maf_identifier: Fqdn,
    master: MasterCredential,
}

impl MafCredential {
    /// Validates `mafIdentifier` and its agreement with the KmID.
    pub fn new(maf_identifier: &str, master: MasterCredential) -> Result<Self, ParameterError> {
        let maf_identifier = fqdn(param::MAF_IDENTIFIER, maf_identifier)?;
        check_km_id_names(&master, &maf_identifier, param::MAF_IDENTIFIER)?;
        Ok(Self {
            maf_identifier,
            master,
        })
    }

    /// `mafIdentifier`: the MAF FQDN, where the MAF Handshake goes.
    #[must_use]
    pub fn maf_identifier(&self) -> &Fqdn {
        &self.maf_identifier
    }

    /// Km, KmID, expiry and `thisEntityIdentifier`.
    #[must_use]
    pub fn master(&self) -> &MasterCredential {
        &self.master
    }

    /// See [`MasterCredential::check_usable`].
    pub fn check_usable(&self, now: UnixTime) -> Result<(), ExpiredError> {
        self.master.check_usable(now)
    }
}

fn check_km_id_names(
    master: &MasterCredential,
    maf: &Fqdn,
    maf_param: &'static str,
) -> Result<(), ParameterError> {
    if master
        .master_credential_identifier
        .fqdn()
        .eq_ignore_ascii_case(maf.as_str())
    {
        Ok(())
    } else {
        Err(ParameterError::invalid(
            param::MASTER_CREDENTIAL_IDENTIFIER,
            Reason::Mismatch { other: maf_param },
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Association Configuration (9.1.2)

/// The Association Configuration parameters common to all frameworks (tables 9.1.2.1-1,
/// 9.1.2.2-1, and the A-to-MAF rows of 9.1.2.3-1): `otherEntityIdentifier` (mandatory),
/// `associationConfigurationExpiry` and `securityAssociationLifespan` (optional). Build with
/// [`AssociationConfig::builder`].
///
/// m2msec reads the two times as follows: after `associationConfigurationExpiry` no new
/// security association may be established under this configuration
/// ([`check_usable`](Self::check_usable)); `securityAssociationLifespan` bounds each
/// established association, whose owner must close it at its deadline ([`Self::clock`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssociationConfig {
    other_entity_identifier: EntityId,
    association_configuration_expiry: Option<UnixTime>,
    security_association_lifespan: Option<Lifespan>,
}

impl AssociationConfig {
    /// A builder; `build` checks that `otherEntityIdentifier` was given.
    #[must_use]
    pub fn builder() -> AssociationConfigBuilder {
        AssociationConfigBuilder::default()
    }

    /// `otherEntityIdentifier`: the peer's CSE-ID / AE-ID.
    #[must_use]
    pub fn other_entity_identifier(&self) -> &EntityId {
        &self.other_entity_identifier
    }

    /// `associationConfigurationExpiry`, if configured.
    #[must_use]
    pub fn association_configuration_expiry(&self) -> Option<UnixTime> {
        self.association_configuration_expiry
    }

    /// `securityAssociationLifespan`, if configured.
    #[must_use]
    pub fn security_association_lifespan(&self) -> Option<Lifespan> {
        self.security_association_lifespan
    }

    /// Whether a new security association may be established under this configuration at
    /// `now`; refused after `associationConfigurationExpiry`, naming it.
    pub fn check_usable(&self, now: UnixTime) -> Result<(), ExpiredError> {
        check_expiry(
            param::ASSOCIATION_CONFIGURATION_EXPIRY,
            self.association_configuration_expiry,
            now,
        )
    }

    /// When an association established at `established_at` reaches its lifespan; `None` when
    /// no lifespan is configured.
    #[must_use]
    pub fn lifespan_deadline(&self, established_at: UnixTime) -> Option<UnixTime> {
        self.security_association_lifespan
            .map(|l| l.deadline(established_at))
    }

    /// The clock of an association established at `established_at` under this configuration.
    #[must_use]
    pub fn clock(&self, established_at: UnixTime) -> AssociationClock {
        AssociationClock::new(established_at, self.security_association_lifespan)
    }
}

/// Builds an [`AssociationConfig`]. Setters validate at once; `build` reports the first
/// refusal, else the missing `otherEntityIdentifier`.
#[derive(Debug, Default)]
pub struct AssociationConfigBuilder {
    other_entity_identifier: Option<EntityId>,
    association_configuration_expiry: Option<UnixTime>,
    security_association_lifespan: Option<Lifespan>,
    error: Option<ParameterError>,
}

impl AssociationConfigBuilder {
    /// `otherEntityIdentifier` (mandatory): the peer's CSE-ID / AE-ID.
    #[must_use]
    pub fn other_entity_identifier(mut self, id: &str) -> Self {
        let r = entity_id(param::OTHER_ENTITY_IDENTIFIER, id);
        first_error(&mut self.other_entity_identifier, &mut self.error, r);
        self
    }

    /// `associationConfigurationExpiry` (optional).
    #[must_use]
    pub fn association_configuration_expiry(mut self, expiry: UnixTime) -> Self {
        self.association_configuration_expiry = Some(expiry);
        self
    }

    /// `securityAssociationLifespan` (optional) in seconds; zero is refused.
    #[must_use]
    pub fn security_association_lifespan_secs(mut self, secs: u64) -> Self {
        let r = Lifespan::from_secs(secs)
            .map_err(|r| ParameterError::invalid(param::SECURITY_ASSOCIATION_LIFESPAN, r));
        first_error(&mut self.security_association_lifespan, &mut self.error, r);
        self
    }

    /// `securityAssociationLifespan` (optional).
    #[must_use]
    pub fn security_association_lifespan(mut self, lifespan: Lifespan) -> Self {
        self.security_association_lifespan = Some(lifespan);
        self
    }

    /// The configuration, or the first refusal / missing parameter.
    pub fn build(self) -> Result<AssociationConfig, ParameterError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        Ok(AssociationConfig {
            other_entity_identifier: require(
                param::OTHER_ENTITY_IDENTIFIER,
                self.other_entity_identifier,
            )?,
            association_configuration_expiry: self.association_configuration_expiry,
            security_association_lifespan: self.security_association_lifespan,
        })
    }
}

/// The run-time clock of one established security association: when it was established and
/// when its `securityAssociationLifespan` is over. The owner of the association (the adapter
/// driving its session) asks [`must_close`](Self::must_close) or [`check`](Self::check) with
/// its `now`, arms a timer with [`remaining`](Self::remaining), and closes the association once
/// past the deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AssociationClock {
    established_at: UnixTime,
    deadline: Option<UnixTime>,
}

impl AssociationClock {
    /// An association established at `established_at` with an optional lifespan.
    #[must_use]
    pub const fn new(established_at: UnixTime, lifespan: Option<Lifespan>) -> Self {
        let deadline = match lifespan {
            Some(l) => Some(l.deadline(established_at)),
            None => None,
        };
        Self {
            established_at,
            deadline,
        }
    }

    /// When the association was established.
    #[must_use]
    pub const fn established_at(&self) -> UnixTime {
        self.established_at
    }

    /// The first second at which the association is past its lifespan; `None` if unbounded.
    #[must_use]
    pub const fn deadline(&self) -> Option<UnixTime> {
        self.deadline
    }

    /// Whether the association must be closed at `now`.
    #[must_use]
    pub fn must_close(&self, now: UnixTime) -> bool {
        self.deadline.is_some_and(|d| now >= d)
    }

    /// `Err` naming `securityAssociationLifespan` once the association is past its lifespan.
    pub fn check(&self, now: UnixTime) -> Result<(), ExpiredError> {
        check_expiry(param::SECURITY_ASSOCIATION_LIFESPAN, self.deadline, now)
    }

    /// Time left before the deadline (zero when past it); `None` if unbounded.
    #[must_use]
    pub fn remaining(&self, now: UnixTime) -> Option<Duration> {
        self.deadline
            .map(|d| Duration::from_secs(d.0.saturating_sub(now.0)))
    }
}

/// One association of the Pre-Provisioned framework at an end-point: its Credential
/// Configuration (Kpsa, KpsaId), the common Association Configuration, and the
/// framework-specific `thisEntityIdentifier` (table 9.1.2.1-2: mandatory in the field domain;
/// table 9.1.2.2-2: none in the infrastructure domain, which knows its CSE-ID/AE-ID already, so
/// optional there).
#[derive(Clone, Debug)]
pub struct PreProvisionedAssociation {
    credential: PreProvisionedCredential,
    this_entity_identifier: Option<EntityId>,
    association: AssociationConfig,
}

impl PreProvisionedAssociation {
    /// Validates `thisEntityIdentifier` if given; whether it is required is checked by
    /// [`EndPointConfig`], which knows the domain.
    pub fn new(
        credential: PreProvisionedCredential,
        this_entity_identifier: Option<&str>,
        association: AssociationConfig,
    ) -> Result<Self, ParameterError> {
        let this_entity_identifier = this_entity_identifier
            .map(|s| entity_id(param::THIS_ENTITY_IDENTIFIER, s))
            .transpose()?;
        Ok(Self {
            credential,
            this_entity_identifier,
            association,
        })
    }

    /// Kpsa and KpsaId.
    #[must_use]
    pub fn credential(&self) -> &PreProvisionedCredential {
        &self.credential
    }

    /// `thisEntityIdentifier` (table 9.1.2.1-2), if configured.
    #[must_use]
    pub fn this_entity_identifier(&self) -> Option<&EntityId> {
        self.this_entity_identifier.as_ref()
    }

    /// The common Association Configuration.
    #[must_use]
    pub fn association(&self) -> &AssociationConfig {
        &self.association
    }
}

// ---------------------------------------------------------------------------------------------
// Bootstrap Credential and Bootstrap Instruction Configuration (8.3.2.1)

/// Bootstrap Credential Configuration of the Pre-Provisioned Symmetric Key Security Bootstrap
/// Framework (draft 8.3.2.1): Kpm and KpmId, at the Enrolee and at the MEF. The Bootstrap
/// Security Handshake uses `psk_identity` = KpmId and `psk` = Kpm.
///
/// KpmId has no published format; m2msec uses `relative@MEF-FQDN` (D3).
#[derive(Clone, Debug)]
pub struct BootstrapCredential {
    kpm_id: KeyId,
    kpm: Kpm,
}

impl BootstrapCredential {
    /// Validates `kpmId` (`relative@FQDN`) and `kpm` (exactly 32 bytes).
    pub fn new(kpm_id: &str, kpm: &[u8]) -> Result<Self, ParameterError> {
        let kpm_id = key_id(param::KPM_ID, IdKind::Kpm, kpm_id)?;
        let kpm = Kpm::new(*key_bytes(param::KPM, kpm)?);
        Ok(Self { kpm_id, kpm })
    }

    /// `kpmId`.
    #[must_use]
    pub fn kpm_id(&self) -> &KeyId {
        &self.kpm_id
    }

    /// `kpm`.
    #[must_use]
    pub fn kpm(&self) -> &Kpm {
        &self.kpm
    }
}

/// Bootstrap Instruction Configuration (draft 8.3.2.1), the same at the Enrolee and the MEF:
/// MAF-ID, the MAF the Enrolee is provisioned for, and Enrolee-ID, the CSE-ID / AE-ID the
/// Enrolee uses with that MAF (and the MEF hands to the MAF with Km).
///
/// The MAF-ID is the MAF FQDN and is the input of Km = HMAC-SHA-256(Ke, label || MAF-ID) (D6),
/// used exactly as configured (K3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootstrapInstruction {
    maf_id: Fqdn,
    enrolee_id: EntityId,
}

impl BootstrapInstruction {
    /// Validates `mafId` (a DNS name) and `enroleeId` (a CSE-ID / AE-ID).
    pub fn new(maf_id: &str, enrolee_id: &str) -> Result<Self, ParameterError> {
        Ok(Self {
            maf_id: fqdn(param::MAF_ID, maf_id)?,
            enrolee_id: entity_id(param::ENROLEE_ID, enrolee_id)?,
        })
    }

    /// MAF-ID.
    #[must_use]
    pub fn maf_id(&self) -> &Fqdn {
        &self.maf_id
    }

    /// Enrolee-ID.
    #[must_use]
    pub fn enrolee_id(&self) -> &EntityId {
        &self.enrolee_id
    }
}

/// What an Enrolee is configured with for its Security Bootstrap: the Pre-Provisioned
/// Symmetric Key framework (draft 8.3.2.1: its Bootstrap Credential KpmId/Kpm, [`new`](Self::new))
/// or the Certificate-Based framework (8.3.2.2: its certificate credential and the MEF's
/// Certificate Name and Root of Trust, [`certificate`](Self::certificate)), the MEF URI, and its
/// Bootstrap Instruction.
#[derive(Clone, Debug)]
pub struct EnroleeBootstrap {
    credential: EnroleeCredential,
    mef_uri: MefUri,
    instruction: BootstrapInstruction,
}

impl EnroleeBootstrap {
    /// Pre-Provisioned Symmetric Key bootstrap: validates `mefUri` and groups the three.
    pub fn new(
        credential: BootstrapCredential,
        mef_uri: &str,
        instruction: BootstrapInstruction,
    ) -> Result<Self, ParameterError> {
        Self::with(EnroleeCredential::Psk(credential), mef_uri, instruction)
    }

    /// Certificate-Based bootstrap (8.3.2.2): the Enrolee's `credential`, the MEF's
    /// Certificate Name and Root of Trust (`mef`), the MEF URI and the instruction.
    #[cfg(feature = "ecdhe")]
    pub fn certificate(
        credential: CertificateCredential,
        mef: CertificatePeer,
        mef_uri: &str,
        instruction: BootstrapInstruction,
    ) -> Result<Self, ParameterError> {
        Self::with(
            EnroleeCredential::Certificate(credential, mef),
            mef_uri,
            instruction,
        )
    }

    fn with(
        credential: EnroleeCredential,
        mef_uri: &str,
        instruction: BootstrapInstruction,
    ) -> Result<Self, ParameterError> {
        let mef_uri =
            MefUri::parse(mef_uri).map_err(|r| ParameterError::invalid(param::MEF_URI, r))?;
        Ok(Self {
            credential,
            mef_uri,
            instruction,
        })
    }

    /// Kpm and KpmId (Pre-Provisioned Symmetric Key bootstrap); `None` for a certificate one.
    #[must_use]
    pub fn credential(&self) -> Option<&BootstrapCredential> {
        match &self.credential {
            EnroleeCredential::Psk(c) => Some(c),
            #[cfg(feature = "ecdhe")]
            EnroleeCredential::Certificate(..) => None,
        }
    }

    /// The Enrolee's certificate credential and the MEF's Certificate Name and Root of Trust
    /// (Certificate-Based bootstrap); `None` for a PSK one.
    #[cfg(feature = "ecdhe")]
    #[must_use]
    pub fn certificate_credential(&self) -> Option<(&CertificateCredential, &CertificatePeer)> {
        match &self.credential {
            EnroleeCredential::Certificate(c, p) => Some((c, p)),
            EnroleeCredential::Psk(_) => None,
        }
    }

    /// The MEF's FQDN, the `@FQDN` of the KeID the bootstrap yields: the FQDN of the KpmId
    /// (PSK); for a certificate bootstrap the MEF's Certificate Name when it is a DNS name (the
    /// MEF holds an FQDN certificate, published 10.1.3), else the MEF URI's host when that is a
    /// DNS name. `None` when neither is.
    #[must_use]
    pub fn mef_fqdn(&self) -> Option<&str> {
        match &self.credential {
            EnroleeCredential::Psk(c) => Some(c.kpm_id().fqdn()),
            #[cfg(feature = "ecdhe")]
            EnroleeCredential::Certificate(_, p) => {
                let name = p.certificate_name();
                if is_dns_name(name) {
                    Some(name)
                } else {
                    Some(self.mef_uri.host()).filter(|h| is_dns_name(h))
                }
            }
        }
    }

    /// The MEF URI.
    #[must_use]
    pub fn mef_uri(&self) -> &MefUri {
        &self.mef_uri
    }

    /// MAF-ID and Enrolee-ID.
    #[must_use]
    pub fn instruction(&self) -> &BootstrapInstruction {
        &self.instruction
    }
}

// ---------------------------------------------------------------------------------------------
// Certificate-Based frameworks (8.1.1.2, 8.2.2.2, 8.3.2.2)

/// Credential Configuration of the Certificate-Based frameworks (tables 9.1.1.1-1, 9.1.1.2-1;
/// draft 8.1.1.2.1): `thisEntityPrivateKey` (P-256) and `thisEntityCertificate` with the
/// optional `thisEntityCertificateChain` (leaf first, then towards the root), or the entity's
/// raw public key (RFC 7250; published 10.2.3 accepts all flavours). Holds the private key
/// (zeroized on drop; `Debug` redacts it).
#[cfg(feature = "ecdhe")]
#[derive(Clone, Debug)]
pub struct CertificateCredential {
    key: CertifiedKey,
}

#[cfg(feature = "ecdhe")]
impl CertificateCredential {
    /// `thisEntityPrivateKey` from DER: PKCS#8 PrivateKeyInfo, or SEC1 ECPrivateKey. Refused
    /// (naming the parameter) if it is neither or not a P-256 key.
    pub fn private_key_from_der(der: &[u8]) -> Result<SigningKey, ParameterError> {
        SigningKey::from_pkcs8_der(der)
            .or_else(|_| SigningKey::from_sec1_der(der))
            .map_err(|e| {
                ParameterError::invalid(param::THIS_ENTITY_PRIVATE_KEY, Reason::Certificate(e))
            })
    }

    /// An X.509 credential: `certificate` (DER) must certify `private_key`'s public key;
    /// `chain` (DER, may be empty) follows it in the handshake's Certificate message.
    pub fn x509(
        private_key: SigningKey,
        certificate: Vec<u8>,
        chain: Vec<Vec<u8>>,
    ) -> Result<Self, ParameterError> {
        let chain_given = !chain.is_empty();
        let mut certs = Vec::with_capacity(1 + chain.len());
        certs.push(certificate);
        certs.extend(chain);
        let credential = Credential::X509(certs);
        // The leaf must parse and carry a P-256 key; the last certificate too (it names the
        // Root of Trust peers configure).
        credential.leaf_spki().map_err(|e| {
            ParameterError::invalid(param::THIS_ENTITY_CERTIFICATE, Reason::Certificate(e))
        })?;
        root_of_trust_of(&credential).map_err(|e| {
            let name = if chain_given {
                param::THIS_ENTITY_CERTIFICATE_CHAIN
            } else {
                param::THIS_ENTITY_CERTIFICATE
            };
            ParameterError::invalid(name, Reason::Certificate(e))
        })?;
        CertifiedKey::new(private_key, credential)
            .map(|key| Self { key })
            .map_err(|e| {
                let name = match e {
                    CertError::ChainTooLong if chain_given => param::THIS_ENTITY_CERTIFICATE_CHAIN,
                    _ => param::THIS_ENTITY_CERTIFICATE,
                };
                ParameterError::invalid(name, Reason::Certificate(e))
            })
    }

    /// A raw public key credential (RFC 7250): the key's SubjectPublicKeyInfo is sent alone.
    #[must_use]
    pub fn raw_public_key(private_key: SigningKey) -> Self {
        Self {
            key: CertifiedKey::raw(private_key),
        }
    }

    /// The key and what is sent for it, for the (D)TLS configuration.
    #[must_use]
    pub fn certified_key(&self) -> &CertifiedKey {
        &self.key
    }

    /// Whether this is a raw public key (no certificate).
    #[must_use]
    pub fn is_raw_public_key(&self) -> bool {
        matches!(self.key.credential(), Credential::RawPublicKey(_))
    }

    /// The Root of Trust a peer configures for this credential ([`root_of_trust_of`]: SHA-256
    /// of the last certificate's key, or of the raw key).
    #[must_use]
    pub fn root_of_trust(&self) -> Option<RootOfTrust> {
        root_of_trust_of(self.key.credential()).ok()
    }
}

/// How an entity recognises a certificate-authenticated peer (draft 8.1.1.2.2):
/// `otherEntityCertificateName` and `otherEntityRootOfTrust` (tables 9.1.2.1-2, 9.1.2.2-2; the
/// MEF's or the Enrolee's Certificate Name and Root of Trust of 8.3.2.2).
///
/// The name is kept verbatim: a DNS name, an absolute AE-ID URI, a CSE-ID, or for a self-signed
/// certificate or a raw public key the `ni:` hash that is also the Root of Trust. It must be
/// non-empty, at most [`MAX_ENTITY_ID_LEN`] bytes, without controls, spaces or `*` (wildcards
/// never match, published 10.1.2).
#[cfg(feature = "ecdhe")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificatePeer {
    certificate_name: String,
    root_of_trust: RootOfTrust,
}

#[cfg(feature = "ecdhe")]
impl CertificatePeer {
    /// Validates `otherEntityCertificateName` and parses `otherEntityRootOfTrust` (see
    /// [`RootOfTrust`]'s text forms).
    pub fn new(certificate_name: &str, root_of_trust: &str) -> Result<Self, ParameterError> {
        let rot = root_of_trust.parse::<RootOfTrust>().map_err(|e| {
            ParameterError::invalid(param::OTHER_ENTITY_ROOT_OF_TRUST, Reason::RootOfTrust(e))
        })?;
        Self::with_root_of_trust(certificate_name, rot)
    }

    /// Like [`new`](Self::new) with a parsed Root of Trust.
    pub fn with_root_of_trust(
        certificate_name: &str,
        root_of_trust: RootOfTrust,
    ) -> Result<Self, ParameterError> {
        let name = param::OTHER_ENTITY_CERTIFICATE_NAME;
        if certificate_name.is_empty() {
            return Err(ParameterError::invalid(name, Reason::Empty));
        }
        if certificate_name.len() > MAX_ENTITY_ID_LEN {
            return Err(ParameterError::invalid(
                name,
                Reason::TooLong {
                    max: MAX_ENTITY_ID_LEN,
                },
            ));
        }
        if certificate_name
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '*')
        {
            return Err(ParameterError::invalid(name, Reason::InvalidCharacter));
        }
        Ok(Self {
            certificate_name: String::from(certificate_name),
            root_of_trust,
        })
    }

    /// `otherEntityCertificateName`.
    #[must_use]
    pub fn certificate_name(&self) -> &str {
        &self.certificate_name
    }

    /// `otherEntityRootOfTrust`.
    #[must_use]
    pub fn root_of_trust(&self) -> &RootOfTrust {
        &self.root_of_trust
    }

    /// The verifier of draft 8.1.1.2.2 for this peer (name in the Subject or a subjectAltName,
    /// raw public keys accepted: D7, published 10.2.3).
    #[must_use]
    pub fn verifier(&self) -> OneM2mVerifier {
        OneM2mVerifier::new(self.certificate_name.clone(), self.root_of_trust)
    }
}

/// One association of the Certificate-Based framework at an end-point (draft 8.2.2.2): the
/// peer's [`CertificatePeer`] (table 9.1.2.1-2 / 9.1.2.2-2), the common Association
/// Configuration, and `thisEntityIdentifier` (mandatory in the field domain, table 9.1.2.1-2).
#[cfg(feature = "ecdhe")]
#[derive(Clone, Debug)]
pub struct CertificateAssociation {
    peer: CertificatePeer,
    this_entity_identifier: Option<EntityId>,
    association: AssociationConfig,
}

#[cfg(feature = "ecdhe")]
impl CertificateAssociation {
    /// Validates `thisEntityIdentifier` if given; whether it is required is checked by
    /// [`EndPointConfig`].
    pub fn new(
        peer: CertificatePeer,
        this_entity_identifier: Option<&str>,
        association: AssociationConfig,
    ) -> Result<Self, ParameterError> {
        let this_entity_identifier = this_entity_identifier
            .map(|s| entity_id(param::THIS_ENTITY_IDENTIFIER, s))
            .transpose()?;
        Ok(Self {
            peer,
            this_entity_identifier,
            association,
        })
    }

    /// `otherEntityCertificateName` and `otherEntityRootOfTrust`.
    #[must_use]
    pub fn peer(&self) -> &CertificatePeer {
        &self.peer
    }

    /// `thisEntityIdentifier`, if configured.
    #[must_use]
    pub fn this_entity_identifier(&self) -> Option<&EntityId> {
        self.this_entity_identifier.as_ref()
    }

    /// The common Association Configuration (`otherEntityIdentifier`, expiry, lifespan).
    #[must_use]
    pub fn association(&self) -> &AssociationConfig {
        &self.association
    }
}

/// The outcome of [`match_certificate`].
#[cfg(feature = "ecdhe")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertificateMatch {
    /// The credential verifies under the configured peer at `index`, whose configuration is
    /// usable.
    Matched {
        /// The index of the peer in the candidates given.
        index: usize,
        /// What the verifier established.
        info: PeerCertificateInfo,
    },
    /// The credential verifies only under configured peers whose
    /// `associationConfigurationExpiry` has passed (the first is reported).
    Expired {
        /// The index of that peer.
        index: usize,
        /// The expiry.
        error: ExpiredError,
    },
    /// No configured peer accepts the credential.
    Refused(CertError),
}

/// Which configured peer a received certificate (or raw public key) belongs to, when the
/// receiver (Entity B, the MEF) cannot know before the handshake who is coming.
///
/// **Rule.** The candidates are tried in configuration order, each with its own
/// [`CertificatePeer::verifier`] (draft 8.1.1.2.2) at `cert_now`; the **first** that accepts the
/// credential and whose `associationConfigurationExpiry` (if any) has not passed at `config_now`
/// is the match. If only expired candidates accept it, the result is [`CertificateMatch::Expired`]
/// (refused, and reported as such). Otherwise the credential is refused with the most telling
/// error: one that shows a candidate recognised the peer but found a fault (expired certificate,
/// broken chain, ...), else `UntrustedRoot` (a name matched, the root did not), else the first
/// candidate's error; [`CertError::UntrustedRoot`] when there is no candidate.
#[cfg(feature = "ecdhe")]
pub fn match_certificate<'a, I>(
    candidates: I,
    peer: &Credential,
    cert_now: UnixTime,
    config_now: UnixTime,
) -> CertificateMatch
where
    I: IntoIterator<Item = (&'a CertificatePeer, Option<&'a AssociationConfig>)>,
{
    let mut expired: Option<(usize, ExpiredError)> = None;
    let mut first_error: Option<CertError> = None;
    let mut untrusted = false;
    let mut telling: Option<CertError> = None;
    for (index, (p, assoc)) in candidates.into_iter().enumerate() {
        match p.verifier().check(peer, cert_now) {
            Ok(info) => match assoc.map(|a| a.check_usable(config_now)) {
                Some(Err(error)) => {
                    expired.get_or_insert((index, error));
                }
                _ => return CertificateMatch::Matched { index, info },
            },
            Err(e) => {
                first_error.get_or_insert(e);
                match e {
                    CertError::NameMismatch => {}
                    CertError::UntrustedRoot => untrusted = true,
                    other => {
                        telling.get_or_insert(other);
                    }
                }
            }
        }
    }
    if let Some((index, error)) = expired {
        return CertificateMatch::Expired { index, error };
    }
    let error = telling
        .or(untrusted.then_some(CertError::UntrustedRoot))
        .or(first_error)
        .unwrap_or(CertError::UntrustedRoot);
    CertificateMatch::Refused(error)
}

/// How an Enrolee authenticates its Bootstrap Security Handshake.
#[derive(Clone, Debug)]
enum EnroleeCredential {
    /// Pre-Provisioned Symmetric Key (8.3.2.1): KpmId / Kpm.
    Psk(BootstrapCredential),
    /// Certificate-Based (8.3.2.2): the Enrolee's certificate and the MEF's name and RoT.
    #[cfg(feature = "ecdhe")]
    Certificate(CertificateCredential, CertificatePeer),
}

// ---------------------------------------------------------------------------------------------
// Whole configurations per role

/// Which domain a Security Association End-Point is in: it decides the tables that apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Domain {
    /// Field domain: tables 9.1.1.1-1, 9.1.2.1-1, 9.1.2.1-2.
    Field,
    /// Infrastructure domain: tables 9.1.1.2-1, 9.1.2.2-1, 9.1.2.2-2.
    Infrastructure,
}

/// The configuration of one Security Association End-Point (Entity A or Entity B), possibly
/// also an Enrolee: its Pre-Provisioned associations, its MAF-Based credential and
/// associations, and its Bootstrap configuration. Build with [`EndPointConfig::builder`].
///
/// Rules checked by `build` (beyond each group's own):
/// - field domain: every Pre-Provisioned association has `thisEntityIdentifier` (table
///   9.1.2.1-2);
/// - `kpsaId` identifies one Pre-Provisioned association;
/// - `otherEntityIdentifier` identifies one MAF-Based association;
/// - MAF-Based associations need Km: a `masterCredential` or a bootstrap that will provision
///   one;
/// - with both, the bootstrap's `mafId` is the credential's `mafIdentifier` (one MAF per
///   end-point);
/// - Certificate-Based associations (and a certificate bootstrap) need the certificate
///   credential (`thisEntityPrivateKey`, `thisEntityCertificate`); in the field domain each has
///   `thisEntityIdentifier`; `otherEntityIdentifier` identifies one of them, and no two have the
///   same `otherEntityCertificateName` and `otherEntityRootOfTrust`.
///
/// The certificate credential serves the Certificate-Based associations; a certificate
/// bootstrap carries its own (the Bootstrap Credential of 8.3.2.2 may differ).
#[derive(Clone, Debug)]
pub struct EndPointConfig {
    domain: Domain,
    pre_provisioned: Vec<PreProvisionedAssociation>,
    maf_credential: Option<MafCredential>,
    maf_associations: Vec<AssociationConfig>,
    bootstrap: Option<EnroleeBootstrap>,
    #[cfg(feature = "ecdhe")]
    certificate: Option<CertificateCredential>,
    #[cfg(feature = "ecdhe")]
    certificate_associations: Vec<CertificateAssociation>,
}

impl EndPointConfig {
    /// A builder for an end-point of `domain`.
    #[must_use]
    pub fn builder(domain: Domain) -> EndPointConfigBuilder {
        EndPointConfigBuilder {
            domain,
            pre_provisioned: Vec::new(),
            maf_credential: None,
            maf_associations: Vec::new(),
            bootstrap: None,
            #[cfg(feature = "ecdhe")]
            certificate: None,
            #[cfg(feature = "ecdhe")]
            certificate_associations: Vec::new(),
        }
    }

    /// The certificate credential (Certificate-Based frameworks), if configured.
    #[cfg(feature = "ecdhe")]
    #[must_use]
    pub fn certificate(&self) -> Option<&CertificateCredential> {
        self.certificate.as_ref()
    }

    /// The Certificate-Based associations.
    #[cfg(feature = "ecdhe")]
    #[must_use]
    pub fn certificate_associations(&self) -> &[CertificateAssociation] {
        &self.certificate_associations
    }

    /// The Certificate-Based association with the peer `other`.
    #[cfg(feature = "ecdhe")]
    #[must_use]
    pub fn certificate_association_with(
        &self,
        other: &EntityId,
    ) -> Option<&CertificateAssociation> {
        self.certificate_associations
            .iter()
            .find(|a| a.association.other_entity_identifier == *other)
    }

    /// Which Certificate-Based association a received credential belongs to, by the rule of
    /// [`match_certificate`] (configuration order, first usable match); the index is into
    /// [`certificate_associations`](Self::certificate_associations).
    #[cfg(feature = "ecdhe")]
    #[must_use]
    pub fn match_certificate_association(
        &self,
        peer: &Credential,
        cert_now: UnixTime,
        config_now: UnixTime,
    ) -> CertificateMatch {
        match_certificate(
            self.certificate_associations
                .iter()
                .map(|a| (&a.peer, Some(&a.association))),
            peer,
            cert_now,
            config_now,
        )
    }

    /// The domain.
    #[must_use]
    pub const fn domain(&self) -> Domain {
        self.domain
    }

    /// The Pre-Provisioned associations.
    #[must_use]
    pub fn pre_provisioned(&self) -> &[PreProvisionedAssociation] {
        &self.pre_provisioned
    }

    /// The Pre-Provisioned association whose KpsaId is `id` (the `psk_identity` a server
    /// receives).
    #[must_use]
    pub fn pre_provisioned_by_kpsa_id(&self, id: &KeyId) -> Option<&PreProvisionedAssociation> {
        self.pre_provisioned
            .iter()
            .find(|p| p.credential.kpsa_id == *id)
    }

    /// The MAF-Based credential, if pre-provisioned.
    #[must_use]
    pub fn maf_credential(&self) -> Option<&MafCredential> {
        self.maf_credential.as_ref()
    }

    /// The MAF-Based associations.
    #[must_use]
    pub fn maf_associations(&self) -> &[AssociationConfig] {
        &self.maf_associations
    }

    /// The MAF-Based association with the peer `other`.
    #[must_use]
    pub fn maf_association_with(&self, other: &EntityId) -> Option<&AssociationConfig> {
        self.maf_associations
            .iter()
            .find(|a| a.other_entity_identifier == *other)
    }

    /// The Bootstrap configuration, if this end-point is an Enrolee.
    #[must_use]
    pub fn bootstrap(&self) -> Option<&EnroleeBootstrap> {
        self.bootstrap.as_ref()
    }

    /// Refuses the configuration if anything in it has expired at `now`, naming the parameter:
    /// `masterCredentialExpiry`, then each `associationConfigurationExpiry`.
    pub fn validate_at(&self, now: UnixTime) -> Result<(), ParameterError> {
        if let Some(c) = &self.maf_credential {
            c.check_usable(now)?;
        }
        for p in &self.pre_provisioned {
            p.association.check_usable(now)?;
        }
        for a in &self.maf_associations {
            a.check_usable(now)?;
        }
        #[cfg(feature = "ecdhe")]
        for a in &self.certificate_associations {
            a.association.check_usable(now)?;
        }
        Ok(())
    }
}

/// Builds an [`EndPointConfig`]; see there for the rules `build` checks.
#[derive(Debug)]
pub struct EndPointConfigBuilder {
    domain: Domain,
    pre_provisioned: Vec<PreProvisionedAssociation>,
    maf_credential: Option<MafCredential>,
    maf_associations: Vec<AssociationConfig>,
    bootstrap: Option<EnroleeBootstrap>,
    #[cfg(feature = "ecdhe")]
    certificate: Option<CertificateCredential>,
    #[cfg(feature = "ecdhe")]
    certificate_associations: Vec<CertificateAssociation>,
}

impl EndPointConfigBuilder {
    /// Adds a Pre-Provisioned association.
    #[must_use]
    pub fn pre_provisioned(mut self, p: PreProvisionedAssociation) -> Self {
        self.pre_provisioned.push(p);
        self
    }

    /// Sets the MAF-Based credential.
    #[must_use]
    pub fn maf_credential(mut self, c: MafCredential) -> Self {
        self.maf_credential = Some(c);
        self
    }

    /// Adds a MAF-Based association.
    #[must_use]
    pub fn maf_association(mut self, a: AssociationConfig) -> Self {
        self.maf_associations.push(a);
        self
    }

    /// Sets the Bootstrap configuration (the end-point is an Enrolee).
    #[must_use]
    pub fn bootstrap(mut self, b: EnroleeBootstrap) -> Self {
        self.bootstrap = Some(b);
        self
    }

    /// Sets the certificate credential (Certificate-Based frameworks).
    #[cfg(feature = "ecdhe")]
    #[must_use]
    pub fn certificate(mut self, c: CertificateCredential) -> Self {
        self.certificate = Some(c);
        self
    }

    /// Adds a Certificate-Based association.
    #[cfg(feature = "ecdhe")]
    #[must_use]
    pub fn certificate_association(mut self, a: CertificateAssociation) -> Self {
        self.certificate_associations.push(a);
        self
    }

    /// The configuration, or the first rule broken.
    pub fn build(self) -> Result<EndPointConfig, ParameterError> {
        for (i, p) in self.pre_provisioned.iter().enumerate() {
            if self.domain == Domain::Field && p.this_entity_identifier.is_none() {
                return Err(ParameterError::Missing {
                    name: param::THIS_ENTITY_IDENTIFIER,
                });
            }
            if self.pre_provisioned[..i]
                .iter()
                .any(|q| q.credential.kpsa_id == p.credential.kpsa_id)
            {
                return Err(ParameterError::invalid(param::KPSA_ID, Reason::Duplicate));
            }
        }
        check_unique_others(&self.maf_associations)?;
        #[cfg(feature = "ecdhe")]
        for (i, a) in self.certificate_associations.iter().enumerate() {
            if self.certificate.is_none() {
                return Err(ParameterError::Missing {
                    name: param::THIS_ENTITY_PRIVATE_KEY,
                });
            }
            if self.domain == Domain::Field && a.this_entity_identifier.is_none() {
                return Err(ParameterError::Missing {
                    name: param::THIS_ENTITY_IDENTIFIER,
                });
            }
            let earlier = &self.certificate_associations[..i];
            if earlier.iter().any(|b| {
                b.association.other_entity_identifier == a.association.other_entity_identifier
            }) {
                return Err(ParameterError::invalid(
                    param::OTHER_ENTITY_IDENTIFIER,
                    Reason::Duplicate,
                ));
            }
            if earlier.iter().any(|b| b.peer == a.peer) {
                return Err(ParameterError::invalid(
                    param::OTHER_ENTITY_CERTIFICATE_NAME,
                    Reason::Duplicate,
                ));
            }
        }
        if !self.maf_associations.is_empty()
            && self.maf_credential.is_none()
            && self.bootstrap.is_none()
        {
            return Err(ParameterError::Missing {
                name: param::MASTER_CREDENTIAL,
            });
        }
        if let (Some(c), Some(b)) = (&self.maf_credential, &self.bootstrap) {
            if c.maf_identifier != b.instruction.maf_id {
                return Err(ParameterError::invalid(
                    param::MAF_ID,
                    Reason::Mismatch {
                        other: param::MAF_IDENTIFIER,
                    },
                ));
            }
        }
        Ok(EndPointConfig {
            domain: self.domain,
            pre_provisioned: self.pre_provisioned,
            maf_credential: self.maf_credential,
            maf_associations: self.maf_associations,
            bootstrap: self.bootstrap,
            #[cfg(feature = "ecdhe")]
            certificate: self.certificate,
            #[cfg(feature = "ecdhe")]
            certificate_associations: self.certificate_associations,
        })
    }
}

fn check_unique_others(assocs: &[AssociationConfig]) -> Result<(), ParameterError> {
    for (i, a) in assocs.iter().enumerate() {
        if assocs[..i]
            .iter()
            .any(|b| b.other_entity_identifier == a.other_entity_identifier)
        {
            return Err(ParameterError::invalid(
                param::OTHER_ENTITY_IDENTIFIER,
                Reason::Duplicate,
            ));
        }
    }
    Ok(())
}

/// One Enrolee as its MEF is configured with it: the Bootstrap Credential the Enrolee
/// authenticates with (KpmId/Kpm, draft 8.3.2.1, [`new`](Self::new)) or its Certificate Name and
/// Root of Trust (8.3.2.2, [`certificate`](Self::certificate)), and its Bootstrap Instruction.
#[derive(Clone, Debug)]
pub struct MefEnrolee {
    credential: Option<BootstrapCredential>,
    #[cfg(feature = "ecdhe")]
    certificate: Option<CertificatePeer>,
    instruction: BootstrapInstruction,
}

impl MefEnrolee {
    /// A Pre-Provisioned Symmetric Key Enrolee.
    #[must_use]
    pub fn new(credential: BootstrapCredential, instruction: BootstrapInstruction) -> Self {
        Self {
            credential: Some(credential),
            #[cfg(feature = "ecdhe")]
            certificate: None,
            instruction,
        }
    }

    /// A Certificate-Based Enrolee: `otherEntityCertificateName` and `otherEntityRootOfTrust`
    /// are the Enrolee's Certificate Name and Root of Trust (8.3.2.2).
    #[cfg(feature = "ecdhe")]
    #[must_use]
    pub fn certificate(peer: CertificatePeer, instruction: BootstrapInstruction) -> Self {
        Self {
            credential: None,
            certificate: Some(peer),
            instruction,
        }
    }

    /// Kpm and KpmId (PSK Enrolee).
    #[must_use]
    pub fn credential(&self) -> Option<&BootstrapCredential> {
        self.credential.as_ref()
    }

    /// The Enrolee's Certificate Name and Root of Trust (certificate Enrolee).
    #[cfg(feature = "ecdhe")]
    #[must_use]
    pub fn certificate_peer(&self) -> Option<&CertificatePeer> {
        self.certificate.as_ref()
    }

    /// MAF-ID and Enrolee-ID.
    #[must_use]
    pub fn instruction(&self) -> &BootstrapInstruction {
        &self.instruction
    }
}

/// The configuration of an M2M Enrolment Function: its own FQDN (`mefIdentifier`, the `@FQDN`
/// of the KeIDs it issues, published 10.3.4), the Enrolees it may provision (`kpmId` identifies
/// one PSK Enrolee; Certificate Name and Root of Trust one certificate Enrolee) and, for the
/// Certificate-Based Security Bootstrap, its own certificate credential (an FQDN certificate,
/// published 10.1.3).
#[derive(Clone, Debug)]
pub struct MefConfig {
    mef_identifier: Fqdn,
    enrolees: Vec<MefEnrolee>,
    #[cfg(feature = "ecdhe")]
    certificate: Option<CertificateCredential>,
}

impl MefConfig {
    /// Validates `mefIdentifier` and that no KpmId is configured twice (PSK Enrolees only;
    /// a certificate Enrolee needs `with_certificate`, feature `ecdhe`).
    pub fn new(mef_identifier: &str, enrolees: Vec<MefEnrolee>) -> Result<Self, ParameterError> {
        Ok(Self {
            mef_identifier: Self::check(mef_identifier, &enrolees, false)?,
            enrolees,
            #[cfg(feature = "ecdhe")]
            certificate: None,
        })
    }

    /// Like [`new`](Self::new), with the MEF's certificate credential; certificate Enrolees
    /// need it (else `thisEntityPrivateKey` is missing), and no two of them have the same
    /// Certificate Name and Root of Trust.
    #[cfg(feature = "ecdhe")]
    pub fn with_certificate(
        mef_identifier: &str,
        enrolees: Vec<MefEnrolee>,
        certificate: Option<CertificateCredential>,
    ) -> Result<Self, ParameterError> {
        Ok(Self {
            mef_identifier: Self::check(mef_identifier, &enrolees, certificate.is_some())?,
            enrolees,
            certificate,
        })
    }

    /// The rules of `new` and `with_certificate`, Enrolee by Enrolee in order; `has_certificate`:
    /// whether the MEF has its certificate credential.
    #[cfg_attr(not(feature = "ecdhe"), allow(unused_variables))]
    fn check(
        mef_identifier: &str,
        enrolees: &[MefEnrolee],
        has_certificate: bool,
    ) -> Result<Fqdn, ParameterError> {
        let mef_identifier = fqdn(param::MEF_IDENTIFIER, mef_identifier)?;
        for (i, e) in enrolees.iter().enumerate() {
            let earlier = &enrolees[..i];
            if let Some(c) = &e.credential {
                if earlier
                    .iter()
                    .any(|o| o.credential.as_ref().is_some_and(|x| x.kpm_id == c.kpm_id))
                {
                    return Err(ParameterError::invalid(param::KPM_ID, Reason::Duplicate));
                }
            }
            #[cfg(feature = "ecdhe")]
            if let Some(p) = &e.certificate {
                if !has_certificate {
                    return Err(ParameterError::Missing {
                        name: param::THIS_ENTITY_PRIVATE_KEY,
                    });
                }
                if earlier.iter().any(|o| o.certificate.as_ref() == Some(p)) {
                    return Err(ParameterError::invalid(
                        param::OTHER_ENTITY_CERTIFICATE_NAME,
                        Reason::Duplicate,
                    ));
                }
            }
        }
        Ok(mef_identifier)
    }

    /// `mefIdentifier`.
    #[must_use]
    pub fn mef_identifier(&self) -> &Fqdn {
        &self.mef_identifier
    }

    /// The MEF's certificate credential, if configured.
    #[cfg(feature = "ecdhe")]
    #[must_use]
    pub fn certificate(&self) -> Option<&CertificateCredential> {
        self.certificate.as_ref()
    }

    /// The Enrolees.
    #[must_use]
    pub fn enrolees(&self) -> &[MefEnrolee] {
        &self.enrolees
    }

    /// The Enrolee whose KpmId is `id` (the `psk_identity` of a Bootstrap Security Handshake).
    #[must_use]
    pub fn enrolee_by_kpm_id(&self, id: &KeyId) -> Option<&MefEnrolee> {
        self.enrolees
            .iter()
            .find(|e| e.credential.as_ref().is_some_and(|c| c.kpm_id == *id))
    }

    /// Which certificate Enrolee a received credential belongs to, by the rule of
    /// [`match_certificate`] (configuration order among the certificate Enrolees, first
    /// match); the index is into [`enrolees`](Self::enrolees). Nothing expires here.
    #[cfg(feature = "ecdhe")]
    #[must_use]
    pub fn match_certificate_enrolee(&self, peer: &Credential, now: UnixTime) -> CertificateMatch {
        let indices: Vec<usize> = (0..self.enrolees.len())
            .filter(|&i| self.enrolees[i].certificate.is_some())
            .collect();
        let candidates = indices
            .iter()
            .filter_map(|&i| self.enrolees[i].certificate.as_ref().map(|p| (p, None)));
        match match_certificate(candidates, peer, now, now) {
            CertificateMatch::Matched { index, info } => CertificateMatch::Matched {
                index: indices[index],
                info,
            },
            CertificateMatch::Expired { index, error } => CertificateMatch::Expired {
                index: indices[index],
                error,
            },
            refused => refused,
        }
    }

    /// Nothing in a MEF configuration expires (the draft gives Kpm no expiry); always `Ok`.
    /// Present so that every role has the same check.
    pub fn validate_at(&self, _now: UnixTime) -> Result<(), ParameterError> {
        Ok(())
    }
}

/// One A-to-MAF client as its MAF is configured with it: the Credential Configuration of
/// table 9.1.1.3-1 (its Km, KmID, expiry and `thisEntityIdentifier`) and the Association
/// Configuration of table 9.1.2.3-1 (the peers it may establish associations with).
#[derive(Clone, Debug)]
pub struct MafClient {
    credential: MasterCredential,
    associations: Vec<AssociationConfig>,
}

impl MafClient {
    /// Checks that `otherEntityIdentifier` identifies one association.
    pub fn new(
        credential: MasterCredential,
        associations: Vec<AssociationConfig>,
    ) -> Result<Self, ParameterError> {
        check_unique_others(&associations)?;
        Ok(Self {
            credential,
            associations,
        })
    }

    /// The client's Master Credential.
    #[must_use]
    pub fn credential(&self) -> &MasterCredential {
        &self.credential
    }

    /// The associations configured for this client.
    #[must_use]
    pub fn associations(&self) -> &[AssociationConfig] {
        &self.associations
    }

    /// The association of this client with the peer `other`.
    #[must_use]
    pub fn association_with(&self, other: &EntityId) -> Option<&AssociationConfig> {
        self.associations
            .iter()
            .find(|a| a.other_entity_identifier == *other)
    }
}

/// The configuration of an M2M Authentication Function: its MAF-ID (`mafIdentifier`, "presumed
/// to have been configured prior to the Credential Configuration phase", 9.1.1.3) and its
/// pre-provisioned clients (tables 9.1.1.3-1, 9.1.2.3-1). Clients provisioned through a
/// Security Bootstrap are learned at run time from the MEF, not configured here.
///
/// Every client's KmID must end in `@` this MAF-ID, and identify one client.
#[derive(Clone, Debug)]
pub struct MafConfig {
    maf_identifier: Fqdn,
    clients: Vec<MafClient>,
}

impl MafConfig {
    /// Validates `mafIdentifier` and the clients' KmIDs.
    pub fn new(maf_identifier: &str, clients: Vec<MafClient>) -> Result<Self, ParameterError> {
        let maf_identifier = fqdn(param::MAF_IDENTIFIER, maf_identifier)?;
        for (i, c) in clients.iter().enumerate() {
            check_km_id_names(&c.credential, &maf_identifier, param::MAF_IDENTIFIER)?;
            let id = &c.credential.master_credential_identifier;
            if clients[..i]
                .iter()
                .any(|o| o.credential.master_credential_identifier == *id)
            {
                return Err(ParameterError::invalid(
                    param::MASTER_CREDENTIAL_IDENTIFIER,
                    Reason::Duplicate,
                ));
            }
        }
        Ok(Self {
            maf_identifier,
            clients,
        })
    }

    /// `mafIdentifier`.
    #[must_use]
    pub fn maf_identifier(&self) -> &Fqdn {
        &self.maf_identifier
    }

    /// The clients.
    #[must_use]
    pub fn clients(&self) -> &[MafClient] {
        &self.clients
    }

    /// The client whose KmID is `id` (the `psk_identity` of a MAF Handshake; KmID compares
    /// case-insensitively, published 10.6).
    #[must_use]
    pub fn client_by_km_id(&self, id: &KeyId) -> Option<&MafClient> {
        self.clients
            .iter()
            .find(|c| c.credential.master_credential_identifier == *id)
    }

    /// Refuses the configuration if anything in it has expired at `now`, naming the parameter.
    pub fn validate_at(&self, now: UnixTime) -> Result<(), ParameterError> {
        for c in &self.clients {
            c.credential.check_usable(now)?;
            for a in &c.associations {
                a.check_usable(now)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::vec;

    const K: [u8; 32] = [0x11; 32];
    const T0: UnixTime = UnixTime(1_800_000_000);

    fn invalid(name: &'static str, reason: Reason) -> ParameterError {
        ParameterError::InvalidParameter { name, reason }
    }

    fn master() -> MasterCredentialBuilder {
        MasterCredential::builder()
            .this_entity_identifier("/id-mn/Cae1")
            .master_credential(&K)
            .master_credential_identifier("km-1@maf.example.com")
    }

    fn assoc(other: &str) -> AssociationConfig {
        AssociationConfig::builder()
            .other_entity_identifier(other)
            .build()
            .unwrap()
    }

    #[test]
    fn pre_provisioned_credential_refusals() {
        assert!(PreProvisionedCredential::new(&K, "a-b@issuer.example.com").is_ok());
        assert_eq!(
            PreProvisionedCredential::new(&K[..16], "a-b@issuer.example.com").unwrap_err(),
            invalid(
                param::KPSA_KEY,
                Reason::KeyLength {
                    expected: 32,
                    got: 16
                }
            )
        );
        assert_eq!(
            PreProvisionedCredential::new(&K, "").unwrap_err(),
            invalid(param::KPSA_ID, Reason::Empty)
        );
        assert_eq!(
            PreProvisionedCredential::new(&K, "no-at-sign").unwrap_err(),
            invalid(param::KPSA_ID, Reason::Identifier(KeyError::MissingAt))
        );
        assert_eq!(
            PreProvisionedCredential::new(&K, "a@192.168.0.1").unwrap_err(),
            invalid(param::KPSA_ID, Reason::Identifier(KeyError::InvalidFqdn))
        );
    }

    #[test]
    fn master_credential_refusals() {
        assert!(master().build().is_ok());
        assert_eq!(
            master()
                .master_credential_identifier("km-1")
                .build()
                .unwrap_err(),
            invalid(
                param::MASTER_CREDENTIAL_IDENTIFIER,
                Reason::Identifier(KeyError::MissingAt)
            )
        );
        assert_eq!(
            master()
                .master_credential_identifier("km 1@maf.example.com")
                .build()
                .unwrap_err(),
            invalid(
                param::MASTER_CREDENTIAL_IDENTIFIER,
                Reason::Identifier(KeyError::InvalidRelativeChar)
            )
        );
        assert_eq!(
            master().master_credential(&[1; 33]).build().unwrap_err(),
            invalid(
                param::MASTER_CREDENTIAL,
                Reason::KeyLength {
                    expected: 32,
                    got: 33
                }
            )
        );
        assert_eq!(
            master().this_entity_identifier("").build().unwrap_err(),
            invalid(param::THIS_ENTITY_IDENTIFIER, Reason::Empty)
        );
        assert_eq!(
            MasterCredential::builder()
                .this_entity_identifier("Cae1")
                .master_credential_identifier("km@maf.example.com")
                .build()
                .unwrap_err(),
            ParameterError::Missing {
                name: param::MASTER_CREDENTIAL
            }
        );
        assert_eq!(
            MasterCredential::builder()
                .master_credential(&K)
                .master_credential_identifier("km@maf.example.com")
                .build()
                .unwrap_err()
                .parameter(),
            param::THIS_ENTITY_IDENTIFIER
        );
        // The first refusal wins over a later one and over missing parameters.
        assert_eq!(
            MasterCredential::builder()
                .master_credential(&[])
                .master_credential_identifier("x")
                .build()
                .unwrap_err()
                .parameter(),
            param::MASTER_CREDENTIAL
        );
    }

    #[test]
    fn expired_master_credential_is_refused() {
        let c = master()
            .master_credential_expiry(UnixTime(T0.0 + 10))
            .build()
            .unwrap();
        assert!(c.check_usable(T0).is_ok());
        assert!(c.check_usable(UnixTime(T0.0 + 9)).is_ok());
        let e = c.check_usable(UnixTime(T0.0 + 10)).unwrap_err();
        assert_eq!(
            e,
            ExpiredError {
                name: param::MASTER_CREDENTIAL_EXPIRY,
                expiry: UnixTime(T0.0 + 10),
                now: UnixTime(T0.0 + 10)
            }
        );
        let m = MafCredential::new("maf.example.com", c).unwrap();
        assert_eq!(
            m.check_usable(UnixTime(T0.0 + 11)).unwrap_err().name,
            param::MASTER_CREDENTIAL_EXPIRY
        );
        let cfg = EndPointConfig::builder(Domain::Field)
            .maf_credential(m)
            .build()
            .unwrap();
        assert!(cfg.validate_at(T0).is_ok());
        assert_eq!(
            cfg.validate_at(UnixTime(T0.0 + 100)).unwrap_err(),
            ParameterError::Expired(ExpiredError {
                name: param::MASTER_CREDENTIAL_EXPIRY,
                expiry: UnixTime(T0.0 + 10),
                now: UnixTime(T0.0 + 100)
            })
        );
        // Without an expiry, usable forever.
        assert!(master()
            .build()
            .unwrap()
            .check_usable(UnixTime(u64::MAX))
            .is_ok());
    }

    #[test]
    fn maf_credential_refusals() {
        assert_eq!(
            MafCredential::new("maf..example.com", master().build().unwrap()).unwrap_err(),
            invalid(param::MAF_IDENTIFIER, Reason::NotDnsName)
        );
        assert_eq!(
            MafCredential::new("", master().build().unwrap()).unwrap_err(),
            invalid(param::MAF_IDENTIFIER, Reason::Empty)
        );
        assert_eq!(
            MafCredential::new("other-maf.example.com", master().build().unwrap()).unwrap_err(),
            invalid(
                param::MASTER_CREDENTIAL_IDENTIFIER,
                Reason::Mismatch {
                    other: param::MAF_IDENTIFIER
                }
            )
        );
        // The FQDN compares case-insensitively (D2).
        assert!(MafCredential::new("MAF.Example.COM", master().build().unwrap()).is_ok());
    }

    #[test]
    fn entity_ids() {
        for ok in [
            "Cae1",
            "id-in",
            "/id-in",
            "/id-in/Cae1",
            "//sp.example.com/id-in",
            "//sp.example.com/id-in/C_a~e.1",
        ] {
            assert!(EntityId::new(ok).is_ok(), "{ok}");
        }
        assert_eq!(EntityId::new(""), Err(Reason::Empty));
        assert_eq!(EntityId::new("C ae"), Err(Reason::InvalidCharacter));
        assert_eq!(EntityId::new("Cäe"), Err(Reason::InvalidCharacter));
        assert_eq!(EntityId::new("a@b"), Err(Reason::InvalidCharacter));
        for bad in [
            "/",
            "//",
            "///x",
            "//sp.example.com",
            "//sp..com/x",
            "/a//b",
            "a/",
        ] {
            assert_eq!(EntityId::new(bad), Err(Reason::MalformedEntityId), "{bad}");
        }
        let long = "C".repeat(MAX_ENTITY_ID_LEN + 1);
        assert_eq!(
            EntityId::new(&long),
            Err(Reason::TooLong {
                max: MAX_ENTITY_ID_LEN
            })
        );
    }

    #[test]
    fn association_refusals_and_clock() {
        assert_eq!(
            AssociationConfig::builder().build().unwrap_err(),
            ParameterError::Missing {
                name: param::OTHER_ENTITY_IDENTIFIER
            }
        );
        assert_eq!(
            AssociationConfig::builder()
                .other_entity_identifier("id in")
                .build()
                .unwrap_err(),
            invalid(param::OTHER_ENTITY_IDENTIFIER, Reason::InvalidCharacter)
        );
        assert_eq!(
            AssociationConfig::builder()
                .other_entity_identifier("/id-in")
                .security_association_lifespan_secs(0)
                .build()
                .unwrap_err(),
            invalid(param::SECURITY_ASSOCIATION_LIFESPAN, Reason::Zero)
        );
        let a = AssociationConfig::builder()
            .other_entity_identifier("/id-in")
            .association_configuration_expiry(UnixTime(T0.0 + 100))
            .security_association_lifespan_secs(3600)
            .build()
            .unwrap();
        assert!(a.check_usable(T0).is_ok());
        assert_eq!(
            a.check_usable(UnixTime(T0.0 + 100)).unwrap_err().name,
            param::ASSOCIATION_CONFIGURATION_EXPIRY
        );
        assert_eq!(a.lifespan_deadline(T0), Some(UnixTime(T0.0 + 3600)));
        let clock = a.clock(T0);
        assert_eq!(clock.established_at(), T0);
        assert!(!clock.must_close(UnixTime(T0.0 + 3599)));
        assert!(clock.check(UnixTime(T0.0 + 3599)).is_ok());
        assert_eq!(
            clock.remaining(UnixTime(T0.0 + 3000)),
            Some(Duration::from_secs(600))
        );
        assert!(clock.must_close(UnixTime(T0.0 + 3600)));
        assert_eq!(
            clock.check(UnixTime(T0.0 + 4000)).unwrap_err(),
            ExpiredError {
                name: param::SECURITY_ASSOCIATION_LIFESPAN,
                expiry: UnixTime(T0.0 + 3600),
                now: UnixTime(T0.0 + 4000)
            }
        );
        assert_eq!(clock.remaining(UnixTime(T0.0 + 4000)), Some(Duration::ZERO));
        // No lifespan: never closed by the clock; deadline saturates at the end of time.
        let unbounded = assoc("/id-in").clock(T0);
        assert_eq!(unbounded.deadline(), None);
        assert!(!unbounded.must_close(UnixTime(u64::MAX)));
        assert_eq!(
            Lifespan::from_secs(10)
                .unwrap()
                .deadline(UnixTime(u64::MAX - 1)),
            UnixTime(u64::MAX)
        );
    }

    #[test]
    fn end_point_rules() {
        let cred = || PreProvisionedCredential::new(&K, "a-b@issuer.example.com").unwrap();
        // Field domain: thisEntityIdentifier is mandatory (table 9.1.2.1-2).
        let no_this = PreProvisionedAssociation::new(cred(), None, assoc("/id-in")).unwrap();
        assert_eq!(
            EndPointConfig::builder(Domain::Field)
                .pre_provisioned(no_this.clone())
                .build()
                .unwrap_err(),
            ParameterError::Missing {
                name: param::THIS_ENTITY_IDENTIFIER
            }
        );
        // Infrastructure domain: it is not (table 9.1.2.2-2).
        assert!(EndPointConfig::builder(Domain::Infrastructure)
            .pre_provisioned(no_this.clone())
            .build()
            .is_ok());
        assert_eq!(
            PreProvisionedAssociation::new(cred(), Some("x//y"), assoc("/id-in")).unwrap_err(),
            invalid(param::THIS_ENTITY_IDENTIFIER, Reason::MalformedEntityId)
        );
        assert_eq!(
            EndPointConfig::builder(Domain::Infrastructure)
                .pre_provisioned(no_this.clone())
                .pre_provisioned(no_this)
                .build()
                .unwrap_err(),
            invalid(param::KPSA_ID, Reason::Duplicate)
        );
        // MAF-Based associations need Km or a bootstrap.
        assert_eq!(
            EndPointConfig::builder(Domain::Field)
                .maf_association(assoc("/id-in"))
                .build()
                .unwrap_err(),
            ParameterError::Missing {
                name: param::MASTER_CREDENTIAL
            }
        );
        let maf = || MafCredential::new("maf.example.com", master().build().unwrap()).unwrap();
        assert_eq!(
            EndPointConfig::builder(Domain::Field)
                .maf_credential(maf())
                .maf_association(assoc("/id-in"))
                .maf_association(assoc("/id-in"))
                .build()
                .unwrap_err(),
            invalid(param::OTHER_ENTITY_IDENTIFIER, Reason::Duplicate)
        );
        let boot = |maf_id: &str| {
            EnroleeBootstrap::new(
                BootstrapCredential::new("dev1@mef.example.com", &K).unwrap(),
                "https://mef.example.com",
                BootstrapInstruction::new(maf_id, "Cae1").unwrap(),
            )
            .unwrap()
        };
        assert!(EndPointConfig::builder(Domain::Field)
            .bootstrap(boot("maf.example.com"))
            .maf_association(assoc("/id-in"))
            .build()
            .is_ok());
        assert_eq!(
            EndPointConfig::builder(Domain::Field)
                .maf_credential(maf())
                .bootstrap(boot("maf2.example.com"))
                .build()
                .unwrap_err(),
            invalid(
                param::MAF_ID,
                Reason::Mismatch {
                    other: param::MAF_IDENTIFIER
                }
            )
        );
        // validate_at names the expired association configuration.
        let expiring = AssociationConfig::builder()
            .other_entity_identifier("/id-in")
            .association_configuration_expiry(T0)
            .build()
            .unwrap();
        let cfg = EndPointConfig::builder(Domain::Field)
            .maf_credential(maf())
            .maf_association(expiring)
            .build()
            .unwrap();
        assert!(cfg.validate_at(UnixTime(T0.0 - 1)).is_ok());
        assert_eq!(
            cfg.validate_at(T0).unwrap_err().parameter(),
            param::ASSOCIATION_CONFIGURATION_EXPIRY
        );
        let id = EntityId::new("/id-in").unwrap();
        assert!(cfg.maf_association_with(&id).is_some());
    }

    #[test]
    fn bootstrap_refusals() {
        assert_eq!(
            BootstrapCredential::new("dev1", &K).unwrap_err(),
            invalid(param::KPM_ID, Reason::Identifier(KeyError::MissingAt))
        );
        assert_eq!(
            BootstrapCredential::new("dev1@mef.example.com", &[0; 31]).unwrap_err(),
            invalid(
                param::KPM,
                Reason::KeyLength {
                    expected: 32,
                    got: 31
                }
            )
        );
        assert_eq!(
            BootstrapInstruction::new("maf_example com", "Cae1").unwrap_err(),
            invalid(param::MAF_ID, Reason::NotDnsName)
        );
        assert_eq!(
            BootstrapInstruction::new("maf.example.com", "").unwrap_err(),
            invalid(param::ENROLEE_ID, Reason::Empty)
        );
        let cred = || BootstrapCredential::new("dev1@mef.example.com", &K).unwrap();
        let ins = || BootstrapInstruction::new("maf.example.com", "Cae1").unwrap();
        for (uri, reason) in [
            ("", Reason::Empty),
            ("http://mef.example.com", Reason::UnsupportedScheme),
            ("mef.example.com", Reason::MalformedUri),
            ("https://user@mef.example.com", Reason::MalformedUri),
            ("https://mef.example.com#x", Reason::MalformedUri),
            ("https://mef.example.com:0", Reason::BadPort),
            ("https://mef.example.com:65536", Reason::BadPort),
            ("https://mef.example.com:", Reason::BadPort),
            ("https://10.0.0.1/", Reason::NotDnsName),
            ("https://[::1]/", Reason::NotDnsName),
            ("https://mef example.com", Reason::InvalidCharacter),
        ] {
            assert_eq!(
                EnroleeBootstrap::new(cred(), uri, ins()).unwrap_err(),
                invalid(param::MEF_URI, reason),
                "{uri}"
            );
        }
        let b =
            EnroleeBootstrap::new(cred(), "coaps://MEF.example.com:5685/boot?x=1", ins()).unwrap();
        assert_eq!(b.mef_uri().transport(), MefTransport::Dtls);
        assert_eq!(b.mef_uri().host(), "MEF.example.com");
        assert_eq!(b.mef_uri().port(), 5685);
        assert_eq!(b.mef_uri().path(), "/boot?x=1");
        let h = MefUri::parse("HTTPS://mef.example.com").unwrap();
        assert_eq!(
            (h.transport(), h.port(), h.path()),
            (MefTransport::Tls, 443, "")
        );
    }

    #[test]
    fn mef_and_maf_rules() {
        let e = |id: &str| {
            MefEnrolee::new(
                BootstrapCredential::new(id, &K).unwrap(),
                BootstrapInstruction::new("maf.example.com", "Cae1").unwrap(),
            )
        };
        assert_eq!(
            MefConfig::new(
                "mef.example.com",
                vec![e("d1@mef.example.com"), e("d1@MEF.example.com")]
            )
            .unwrap_err(),
            invalid(param::KPM_ID, Reason::Duplicate)
        );
        assert_eq!(
            MefConfig::new("-mef", vec![]).unwrap_err(),
            invalid(param::MEF_IDENTIFIER, Reason::NotDnsName)
        );
        let mef = MefConfig::new("mef.example.com", vec![e("d1@mef.example.com")]).unwrap();
        let id = KeyId::parse(IdKind::Kpm, "d1@mef.example.com").unwrap();
        assert!(mef.enrolee_by_kpm_id(&id).is_some());
        assert!(mef.validate_at(UnixTime(u64::MAX)).is_ok());

        let client = |km_id: &str| {
            MafClient::new(
                master()
                    .master_credential_identifier(km_id)
                    .build()
                    .unwrap(),
                vec![assoc("/id-in")],
            )
            .unwrap()
        };
        assert_eq!(
            MafConfig::new("maf.example.com", vec![client("a@elsewhere.example.com")]).unwrap_err(),
            invalid(
                param::MASTER_CREDENTIAL_IDENTIFIER,
                Reason::Mismatch {
                    other: param::MAF_IDENTIFIER
                }
            )
        );
        // KmID relative parts compare case-insensitively (published 10.6).
        assert_eq!(
            MafConfig::new(
                "maf.example.com",
                vec![client("a@maf.example.com"), client("A@maf.example.com")]
            )
            .unwrap_err(),
            invalid(param::MASTER_CREDENTIAL_IDENTIFIER, Reason::Duplicate)
        );
        assert_eq!(
            MafClient::new(master().build().unwrap(), vec![assoc("Cx"), assoc("Cx")]).unwrap_err(),
            invalid(param::OTHER_ENTITY_IDENTIFIER, Reason::Duplicate)
        );
        let expiring = MafClient::new(
            master().master_credential_expiry(T0).build().unwrap(),
            vec![],
        )
        .unwrap();
        let maf = MafConfig::new("maf.example.com", vec![expiring]).unwrap();
        assert_eq!(
            maf.validate_at(T0).unwrap_err().parameter(),
            param::MASTER_CREDENTIAL_EXPIRY
        );
        let id = KeyId::parse(IdKind::Km, "KM-1@maf.example.com").unwrap();
        assert!(maf.client_by_km_id(&id).is_some());
    }

    #[test]
    fn debug_never_shows_secrets() {
        let secret = [0xAB; 32];
        let c = MasterCredential::builder()
            .this_entity_identifier("Cae1")
            .master_credential(&secret)
            .master_credential_identifier("km@maf.example.com");
        let built = c.build().unwrap();
        let p = PreProvisionedCredential::new(&secret, "a@i.example.com").unwrap();
        let b = BootstrapCredential::new("d@mef.example.com", &secret).unwrap();
        for s in [
            format!("{built:?}"),
            format!("{p:?}"),
            format!("{b:?}"),
            format!(
                "{:?}",
                MasterCredential::builder().master_credential(&secret)
            ),
        ] {
            assert!(!s.to_ascii_lowercase().contains("ab, ab"), "{s}");
            assert!(!s.contains("171"), "{s}");
            assert!(!s.to_ascii_lowercase().contains("abab"), "{s}");
            assert!(s.contains("redacted"), "{s}");
        }
    }

    #[test]
    fn errors_display_the_parameter() {
        let e = invalid(
            param::KPSA_KEY,
            Reason::KeyLength {
                expected: 32,
                got: 3,
            },
        );
        assert_eq!(
            format!("{e}"),
            "parameter kpsaKey has 3 bytes, 32 are required"
        );
        let m = ParameterError::Missing {
            name: param::OTHER_ENTITY_IDENTIFIER,
        };
        assert!(format!("{m}").contains("otherEntityIdentifier"));
        let x = ParameterError::from(ExpiredError {
            name: param::MASTER_CREDENTIAL_EXPIRY,
            expiry: UnixTime(5),
            now: UnixTime(6),
        });
        assert!(format!("{x}").contains("masterCredentialExpiry expired at 5"));
    }

    // -----------------------------------------------------------------------------------------
    // Certificate-Based

    #[cfg(feature = "ecdhe")]
    mod certificate {
        use super::*;

        use crate::cert::{CertBuilder, SubjectAltName};

        struct Pki {
            root: CertificateCredential,
            leaf_key: SigningKey,
            leaf: Vec<u8>,
        }

        /// root CA -> leaf with SAN dNSName `name`, valid around T0.
        fn pki(seed: u8, name: &str) -> Pki {
            let root_key = SigningKey::from_bytes(&[seed; 32]).unwrap();
            let root_der = CertBuilder::new(&[1], UnixTime(T0.0 - 1000), UnixTime(T0.0 + 1000))
                .subject_cn("root")
                .ca(None)
                .self_signed(&root_key)
                .unwrap();
            let root = CertificateCredential::x509(root_key, root_der, vec![]).unwrap();
            let leaf_key = SigningKey::from_bytes(&[seed + 1; 32]).unwrap();
            let leaf = CertBuilder::new(&[2], UnixTime(T0.0 - 1000), UnixTime(T0.0 + 1000))
                .subject_cn(name)
                .san(SubjectAltName::Dns(name.into()))
                .end_entity()
                .signed_by(&leaf_key.verifying_key(), root.certified_key())
                .unwrap();
            Pki {
                root,
                leaf_key,
                leaf,
            }
        }

        impl Pki {
            /// What the leaf's owner sends: leaf, then the root (the RoT's certificate).
            fn sent(&self) -> Credential {
                let Credential::X509(root) = self.root.certified_key().credential() else {
                    unreachable!()
                };
                Credential::X509(vec![self.leaf.clone(), root[0].clone()])
            }
        }

        fn peer_of(p: &Pki, name: &str) -> CertificatePeer {
            CertificatePeer::with_root_of_trust(name, p.root.root_of_trust().unwrap()).unwrap()
        }

        #[test]
        fn certificate_credential_refusals() {
            let p = pki(3, "a.example.com");
            let root_der = match p.root.certified_key().credential() {
                Credential::X509(c) => c[0].clone(),
                Credential::RawPublicKey(_) => unreachable!(),
            };
            let ok =
                CertificateCredential::x509(p.leaf_key.clone(), p.leaf.clone(), vec![root_der])
                    .unwrap();
            assert!(!ok.is_raw_public_key());
            assert_eq!(ok.root_of_trust(), p.root.root_of_trust());
            // The certificate of another key.
            let other = SigningKey::from_bytes(&[9; 32]).unwrap();
            assert_eq!(
                CertificateCredential::x509(other.clone(), p.leaf.clone(), vec![]).unwrap_err(),
                invalid(
                    param::THIS_ENTITY_CERTIFICATE,
                    Reason::Certificate(CertError::KeyMismatch)
                )
            );
            // Garbage certificate, garbage chain, garbage key.
            assert_eq!(
                CertificateCredential::x509(other.clone(), vec![0x30, 0x00], vec![])
                    .unwrap_err()
                    .parameter(),
                param::THIS_ENTITY_CERTIFICATE
            );
            assert_eq!(
                CertificateCredential::x509(
                    p.leaf_key.clone(),
                    p.leaf.clone(),
                    vec![vec![1, 2, 3]]
                )
                .unwrap_err()
                .parameter(),
                param::THIS_ENTITY_CERTIFICATE_CHAIN
            );
            assert_eq!(
                CertificateCredential::private_key_from_der(&[0x30, 0x03, 0x02, 0x01, 0x00])
                    .unwrap_err()
                    .parameter(),
                param::THIS_ENTITY_PRIVATE_KEY
            );
            let raw = CertificateCredential::raw_public_key(other);
            assert!(raw.is_raw_public_key());
            assert!(!format!("{raw:?}").contains("09"));
        }

        #[test]
        fn certificate_peer_refusals() {
            let rot = "ni:///sha-256;47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU";
            assert!(CertificatePeer::new("cse.example.com", rot).is_ok());
            assert_eq!(
                CertificatePeer::new("", rot).unwrap_err(),
                invalid(param::OTHER_ENTITY_CERTIFICATE_NAME, Reason::Empty)
            );
            assert_eq!(
                CertificatePeer::new("*.example.com", rot).unwrap_err(),
                invalid(
                    param::OTHER_ENTITY_CERTIFICATE_NAME,
                    Reason::InvalidCharacter
                )
            );
            assert_eq!(
                CertificatePeer::new("a b", rot).unwrap_err().parameter(),
                param::OTHER_ENTITY_CERTIFICATE_NAME
            );
            assert_eq!(
                CertificatePeer::new("cse.example.com", "ni:///sha-256;AAAA").unwrap_err(),
                invalid(
                    param::OTHER_ENTITY_ROOT_OF_TRUST,
                    Reason::RootOfTrust(RootOfTrustParseError::Length)
                )
            );
        }

        #[test]
        fn certificate_matching_rule() {
            let a = pki(20, "a.example.com");
            let b = pki(30, "b.example.com");
            let cred_a = a.sent();
            let expired = AssociationConfig::builder()
                .other_entity_identifier("/id-x")
                .association_configuration_expiry(T0)
                .build()
                .unwrap();
            let usable = assoc("/id-a");
            let pa = peer_of(&a, "a.example.com");
            let pb = peer_of(&b, "b.example.com");
            // Configuration order: the first usable match wins.
            let m = match_certificate(
                [(&pb, Some(&usable)), (&pa, Some(&usable)), (&pa, None)],
                &cred_a,
                T0,
                T0,
            );
            assert!(matches!(m, CertificateMatch::Matched { index: 1, .. }));
            // An expired configuration is skipped for a later usable one ...
            let m = match_certificate([(&pa, Some(&expired)), (&pa, None)], &cred_a, T0, T0);
            assert!(matches!(m, CertificateMatch::Matched { index: 1, .. }));
            // ... and reported when it is the only match.
            let m = match_certificate([(&pb, None), (&pa, Some(&expired))], &cred_a, T0, T0);
            assert!(matches!(m, CertificateMatch::Expired { index: 1, .. }));
            // Right name, wrong root: UntrustedRoot; no name: NameMismatch; expired cert: Expired.
            let wrong_root = peer_of(&b, "a.example.com");
            assert_eq!(
                match_certificate([(&pb, None), (&wrong_root, None)], &cred_a, T0, T0),
                CertificateMatch::Refused(CertError::UntrustedRoot)
            );
            assert_eq!(
                match_certificate([(&pb, None)], &cred_a, T0, T0),
                CertificateMatch::Refused(CertError::NameMismatch)
            );
            assert_eq!(
                match_certificate(
                    [(&pb, None), (&pa, None)],
                    &cred_a,
                    UnixTime(T0.0 + 5000),
                    T0
                ),
                CertificateMatch::Refused(CertError::Expired)
            );
            assert_eq!(
                match_certificate(core::iter::empty(), &cred_a, T0, T0),
                CertificateMatch::Refused(CertError::UntrustedRoot)
            );
        }

        #[test]
        fn end_point_certificate_rules() {
            let a = pki(40, "a.example.com");
            let ca = |other: &str, this: Option<&str>| {
                CertificateAssociation::new(peer_of(&a, "a.example.com"), this, assoc(other))
                    .unwrap()
            };
            let own =
                CertificateCredential::raw_public_key(SigningKey::from_bytes(&[5; 32]).unwrap());
            // Without the credential.
            assert_eq!(
                EndPointConfig::builder(Domain::Infrastructure)
                    .certificate_association(ca("/id-a", None))
                    .build()
                    .unwrap_err(),
                ParameterError::Missing {
                    name: param::THIS_ENTITY_PRIVATE_KEY
                }
            );
            // Field domain needs thisEntityIdentifier.
            assert_eq!(
                EndPointConfig::builder(Domain::Field)
                    .certificate(own.clone())
                    .certificate_association(ca("/id-a", None))
                    .build()
                    .unwrap_err(),
                ParameterError::Missing {
                    name: param::THIS_ENTITY_IDENTIFIER
                }
            );
            // Same name and root twice.
            assert_eq!(
                EndPointConfig::builder(Domain::Infrastructure)
                    .certificate(own.clone())
                    .certificate_association(ca("/id-a", None))
                    .certificate_association(ca("/id-b", None))
                    .build()
                    .unwrap_err(),
                invalid(param::OTHER_ENTITY_CERTIFICATE_NAME, Reason::Duplicate)
            );
            let c = EndPointConfig::builder(Domain::Infrastructure)
                .certificate(own)
                .certificate_association(ca("/id-a", None))
                .build()
                .unwrap();
            let m = c.match_certificate_association(&a.sent(), T0, T0);
            assert!(matches!(m, CertificateMatch::Matched { index: 0, .. }));
            assert!(c
                .certificate_association_with(&EntityId::new("/id-a").unwrap())
                .is_some());
        }

        #[test]
        fn mef_certificate_enrolees() {
            let a = pki(50, "dev1.example.com");
            let ins = BootstrapInstruction::new("maf.example.com", "/id-mn-e").unwrap();
            let psk = MefEnrolee::new(
                BootstrapCredential::new("d@mef.example.com", &K).unwrap(),
                ins.clone(),
            );
            let cert = MefEnrolee::certificate(peer_of(&a, "dev1.example.com"), ins.clone());
            assert_eq!(
                MefConfig::new("mef.example.com", vec![cert.clone()]).unwrap_err(),
                ParameterError::Missing {
                    name: param::THIS_ENTITY_PRIVATE_KEY
                }
            );
            let own =
                CertificateCredential::raw_public_key(SigningKey::from_bytes(&[6; 32]).unwrap());
            assert_eq!(
                MefConfig::with_certificate(
                    "mef.example.com",
                    vec![cert.clone(), cert.clone()],
                    Some(own.clone())
                )
                .unwrap_err(),
                invalid(param::OTHER_ENTITY_CERTIFICATE_NAME, Reason::Duplicate)
            );
            let m =
                MefConfig::with_certificate("mef.example.com", vec![psk, cert], Some(own)).unwrap();
            // The index is into enrolees(), PSK entries included.
            let found = m.match_certificate_enrolee(&a.sent(), T0);
            assert!(matches!(found, CertificateMatch::Matched { index: 1, .. }));
            assert!(m
                .enrolee_by_kpm_id(&KeyId::parse(IdKind::Kpm, "d@mef.example.com").unwrap())
                .is_some());
            // Enrolee side: the MEF FQDN comes from the MEF's Certificate Name (or the URI host).
            let b = EnroleeBootstrap::certificate(
                CertificateCredential::raw_public_key(SigningKey::from_bytes(&[7; 32]).unwrap()),
                peer_of(&a, "mef.example.com"),
                "coaps://other.example.com:5684",
                ins.clone(),
            )
            .unwrap();
            assert_eq!(b.mef_fqdn(), Some("mef.example.com"));
            assert!(b.credential().is_none());
            let ni = a.root.root_of_trust().unwrap().to_ni_uri();
            let b = EnroleeBootstrap::certificate(
                CertificateCredential::raw_public_key(SigningKey::from_bytes(&[7; 32]).unwrap()),
                CertificatePeer::new(&ni, &ni).unwrap(),
                "https://mef.example.com:443",
                ins,
            )
            .unwrap();
            assert_eq!(b.mef_fqdn(), Some("mef.example.com"));
        }
    }
}
