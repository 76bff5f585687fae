//! Certificates for the ECDHE-ECDSA suites (P-256 only): what an entity presents, its signing
//! key, and the verification of the peer's credential as an external decision.
//!
//! ```text
//!  own side:   CertifiedKey { SigningKey (P-256), Credential::X509(chain) | ::RawPublicKey(spki) }
//!  peer side:  Credential ──▶ CertVerifier::verify(peer, now) ──▶ Accept(PeerCertificateInfo)
//!                                                             ├─▶ Reject(CertError) ─▶ alert
//!                                                             └─▶ Defer ─▶ Event, Session::peer_verified
//! ```
//!
//! The built-in verifier of the oneM2M rules (seed 8.1.1.2.2, decision D7) is in `verify`.
//! Every type here carries no secret except [`SigningKey`], whose `Debug` is redacted and which
//! is zeroized on drop.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

#[cfg(feature = "ecdhe")]
use der::{Decode, Encode};
#[cfg(feature = "ecdhe")]
use p256::ecdsa::{SigningKey as EcdsaSigningKey, VerifyingKey};
#[cfg(feature = "ecdhe")]
use spki::SubjectPublicKeyInfoRef;
#[cfg(feature = "ecdhe")]
use x509_cert::Certificate;

use crate::enums::AlertDescription;
use crate::time::UnixTime;

#[cfg(feature = "ecdhe")]
mod b64;
#[cfg(feature = "ecdhe")]
pub mod build;
#[cfg(feature = "ecdhe")]
pub mod verify;

#[cfg(feature = "ecdhe")]
pub use build::{pem_decode, pem_encode, CertBuilder};
#[cfg(feature = "ecdhe")]
pub use verify::{
    root_of_trust_of, verify_ecdsa_sha256, verify_ecdsa_sha256_prehash, OneM2mVerifier,
    RootOfTrust, RotHash,
};

/// Why a Root of Trust text (`verify::RootOfTrust`, feature `ecdhe`) was refused. Plain data,
/// in every build: the configuration's `Reason::RootOfTrust` carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RootOfTrustParseError {
    /// Neither an `ni:` URI nor 64 hexadecimal digits.
    Syntax,
    /// An `ni` hash algorithm other than sha-256, sha-256-128, sha-256-120.
    UnknownAlgorithm,
    /// The value is not canonical base64url without padding.
    Base64,
    /// The digest length is not the algorithm's.
    Length,
}

impl fmt::Display for RootOfTrustParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Syntax => "a Root of Trust is ni:///sha-256;<base64url> (or sha-256-128, sha-256-120) or 64 hex digits",
            Self::UnknownAlgorithm => "unknown ni hash algorithm (sha-256, sha-256-128, sha-256-120)",
            Self::Base64 => "the ni value is not canonical base64url without padding",
            Self::Length => "the digest length does not match the hash algorithm",
        })
    }
}

impl core::error::Error for RootOfTrustParseError {}

/// The largest certificate chain (DER bytes, all certificates together) we accept or send.
pub const MAX_CHAIN_BYTES: usize = 16 * 1024;

/// The most certificates in a chain (leaf included).
pub const MAX_CHAIN_LEN: usize = 6;

#[cfg(feature = "ecdhe")]
/// id-ecPublicKey (RFC 5480).
pub const ID_EC_PUBLIC_KEY: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");

#[cfg(feature = "ecdhe")]
/// secp256r1 / prime256v1 (RFC 5480).
pub const SECP256R1: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");

/// What an entity presents in the handshake: an X.509 chain (DER, leaf first, as in the TLS
/// Certificate message) or a raw public key (RFC 7250: the DER SubjectPublicKeyInfo).
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// X.509 certificates, leaf first.
    X509(Vec<Vec<u8>>),
    /// A raw public key: DER SubjectPublicKeyInfo (id-ecPublicKey, secp256r1, uncompressed).
    RawPublicKey(Vec<u8>),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::X509(chain) => write!(f, "X509({} certificates)", chain.len()),
            Self::RawPublicKey(spki) => write!(f, "RawPublicKey({} bytes)", spki.len()),
        }
    }
}

#[cfg(feature = "ecdhe")]
impl Credential {
    /// The DER SubjectPublicKeyInfo of the leaf (or of the raw key), checked to be a P-256 key.
    pub fn leaf_spki(&self) -> Result<Vec<u8>, CertError> {
        let spki = match self {
            Self::RawPublicKey(spki) => spki.clone(),
            Self::X509(chain) => {
                let leaf = chain.first().ok_or(CertError::NoCertificate)?;
                let cert = Certificate::from_der(leaf).map_err(|_| CertError::Malformed)?;
                cert.tbs_certificate
                    .subject_public_key_info
                    .to_der()
                    .map_err(|_| CertError::Malformed)?
            }
        };
        verifying_key_from_spki(&spki)?;
        Ok(spki)
    }

    /// The leaf's (or raw key's) ECDSA P-256 verification key.
    pub fn verifying_key(&self) -> Result<VerifyingKey, CertError> {
        verifying_key_from_spki(&self.leaf_spki()?)
    }
}

impl Credential {
    /// Checks the sizes the handshake accepts: at most [`MAX_CHAIN_LEN`] certificates and
    /// [`MAX_CHAIN_BYTES`] bytes, none empty.
    pub fn check_bounds(&self) -> Result<(), CertError> {
        match self {
            Self::RawPublicKey(spki) if spki.is_empty() || spki.len() > MAX_CHAIN_BYTES => {
                Err(CertError::Malformed)
            }
            Self::RawPublicKey(_) => Ok(()),
            Self::X509(chain) => {
                let total: usize = chain.iter().map(Vec::len).sum();
                if chain.is_empty() {
                    Err(CertError::NoCertificate)
                } else if chain.len() > MAX_CHAIN_LEN || total > MAX_CHAIN_BYTES {
                    Err(CertError::ChainTooLong)
                } else if chain.iter().any(Vec::is_empty) {
                    Err(CertError::Malformed)
                } else {
                    Ok(())
                }
            }
        }
    }
}

#[cfg(feature = "ecdhe")]
/// The P-256 verification key in a DER SubjectPublicKeyInfo: id-ecPublicKey with the named
/// curve secp256r1 and an uncompressed point (oneM2M profile), nothing else.
pub fn verifying_key_from_spki(spki_der: &[u8]) -> Result<VerifyingKey, CertError> {
    let spki = SubjectPublicKeyInfoRef::from_der(spki_der).map_err(|_| CertError::Malformed)?;
    if spki.algorithm.oid != ID_EC_PUBLIC_KEY {
        return Err(CertError::UnsupportedKey);
    }
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as::<der::asn1::ObjectIdentifier>().ok());
    if curve != Some(SECP256R1) {
        return Err(CertError::UnsupportedKey);
    }
    let point = spki
        .subject_public_key
        .as_bytes()
        .ok_or(CertError::Malformed)?;
    if point.first() != Some(&0x04) || point.len() != 65 {
        return Err(CertError::UnsupportedKey);
    }
    VerifyingKey::from_sec1_bytes(point).map_err(|_| CertError::UnsupportedKey)
}

#[cfg(feature = "ecdhe")]
/// The DER SubjectPublicKeyInfo of a P-256 verification key (uncompressed point).
#[must_use]
pub fn spki_of(key: &VerifyingKey) -> Vec<u8> {
    let point = key.to_encoded_point(false);
    let mut out = Vec::with_capacity(P256_SPKI_PREFIX.len() + 65);
    out.extend_from_slice(&P256_SPKI_PREFIX);
    out.extend_from_slice(point.as_bytes());
    out
}

#[cfg(feature = "ecdhe")]
/// The DER of a P-256 SubjectPublicKeyInfo up to the 65-byte uncompressed point: SEQUENCE {
/// SEQUENCE { id-ecPublicKey, secp256r1 }, BIT STRING (66 bytes, 0 unused bits) }.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

#[cfg(feature = "ecdhe")]
/// An entity's Private Signing Key (P-256). Zeroized on drop; `Debug` shows only the public key
/// hash prefix.
#[derive(Clone)]
pub struct SigningKey(EcdsaSigningKey);

#[cfg(feature = "ecdhe")]
impl SigningKey {
    /// From the 32-byte private scalar.
    pub fn from_bytes(scalar: &[u8; 32]) -> Result<Self, CertError> {
        EcdsaSigningKey::from_bytes(scalar.into())
            .map(Self)
            .map_err(|_| CertError::UnsupportedKey)
    }

    /// From a DER PKCS#8 PrivateKeyInfo (`openssl genpkey` / `openssl pkcs8 -topk8 -nocrypt`).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, CertError> {
        use p256::pkcs8::DecodePrivateKey;
        EcdsaSigningKey::from_pkcs8_der(der)
            .map(Self)
            .map_err(|_| CertError::UnsupportedKey)
    }

    /// From a DER SEC1 ECPrivateKey (`openssl ecparam -genkey -outform der`).
    pub fn from_sec1_der(der: &[u8]) -> Result<Self, CertError> {
        p256::SecretKey::from_sec1_der(der)
            .map(|k| Self(EcdsaSigningKey::from(k)))
            .map_err(|_| CertError::UnsupportedKey)
    }

    /// The ECDSA key.
    #[must_use]
    pub fn ecdsa(&self) -> &EcdsaSigningKey {
        &self.0
    }

    /// The public verification key.
    #[must_use]
    pub fn verifying_key(&self) -> VerifyingKey {
        *self.0.verifying_key()
    }

    /// The DER SubjectPublicKeyInfo of the public key (what a raw public key credential sends).
    #[must_use]
    pub fn spki_der(&self) -> Vec<u8> {
        spki_of(self.0.verifying_key())
    }
}

#[cfg(feature = "ecdhe")]
impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

#[cfg(feature = "ecdhe")]
/// A signing key with the credential that certifies it.
#[derive(Clone, Debug)]
pub struct CertifiedKey {
    key: SigningKey,
    credential: Credential,
}

#[cfg(feature = "ecdhe")]
impl CertifiedKey {
    /// Pairs `key` with `credential`, checking that the leaf (or raw key) is `key`'s public key
    /// and that the credential fits the bounds of the handshake.
    pub fn new(key: SigningKey, credential: Credential) -> Result<Self, CertError> {
        credential.check_bounds()?;
        if credential.leaf_spki()? != key.spki_der() {
            return Err(CertError::KeyMismatch);
        }
        Ok(Self { key, credential })
    }

    /// A raw public key credential for `key` (RFC 7250).
    #[must_use]
    pub fn raw(key: SigningKey) -> Self {
        let credential = Credential::RawPublicKey(key.spki_der());
        Self { key, credential }
    }

    /// The signing key.
    #[must_use]
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// The credential sent to the peer.
    #[must_use]
    pub fn credential(&self) -> &Credential {
        &self.credential
    }
}

/// A name from a certificate's subjectAltName.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubjectAltName {
    /// dNSName.
    Dns(String),
    /// uniformResourceIdentifier.
    Uri(String),
    /// iPAddress (4 or 16 bytes).
    Ip(Vec<u8>),
    /// Any other GeneralName form, DER.
    Other(Vec<u8>),
}

/// What the verifier established about the peer, for the caller (in the session's
/// information once connected).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerCertificateInfo {
    /// Whether the peer sent a raw public key (no certificate).
    pub raw_public_key: bool,
    /// The name that matched the configured Certificate Name, if the verifier checked one.
    pub matched_name: Option<String>,
    /// The leaf's Subject (RFC 4514 text), if X.509.
    pub subject: Option<String>,
    /// The leaf's subjectAltName entries, if X.509.
    pub subject_alt_names: Vec<SubjectAltName>,
    /// The leaf's validity, if X.509.
    pub not_before: Option<UnixTime>,
    /// The leaf's validity, if X.509.
    pub not_after: Option<UnixTime>,
    /// SHA-256 of the leaf's (or raw key's) DER SubjectPublicKeyInfo.
    pub spki_sha256: [u8; 32],
    /// The number of certificates in the verified chain (0 for a raw key).
    pub chain_len: usize,
}

impl PeerCertificateInfo {
    /// Information with only the key hash set (for verifiers that learn nothing more).
    #[must_use]
    pub fn for_key(spki_sha256: [u8; 32], raw_public_key: bool) -> Self {
        Self {
            raw_public_key,
            matched_name: None,
            subject: None,
            subject_alt_names: Vec::new(),
            not_before: None,
            not_after: None,
            spki_sha256,
            chain_len: 0,
        }
    }
}

/// The decision on a peer's credential.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertDecision {
    /// Trusted: the handshake goes on.
    Accept(PeerCertificateInfo),
    /// Not trusted: the handshake fails with [`CertError::alert`].
    Reject(CertError),
    /// The caller decides later: the session emits `Event::VerifyPeer` and waits for
    /// `Session::peer_verified`.
    Defer,
}

/// Decides whether the peer's credential is trusted. Implementations must not panic on any
/// input; `now` is the caller's wall clock (certificate validity).
pub trait CertVerifier: Send + Sync {
    /// The decision on `peer` at `now`.
    fn verify(&self, peer: &Credential, now: UnixTime) -> CertDecision;
}

/// Why a credential was refused. Carries no secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertError {
    /// The peer sent no certificate (or an empty chain) where one is required.
    NoCertificate,
    /// Not DER, or not a certificate / SubjectPublicKeyInfo.
    Malformed,
    /// Not an id-ecPublicKey secp256r1 key with an uncompressed point, or not ECDSA-SHA256.
    UnsupportedKey,
    /// More certificates or bytes than [`MAX_CHAIN_LEN`] / [`MAX_CHAIN_BYTES`].
    ChainTooLong,
    /// A certificate signature in the chain does not verify.
    BadSignature,
    /// A certificate's notAfter is before now.
    Expired,
    /// A certificate's notBefore is after now.
    NotYetValid,
    /// The configured Certificate Name is in no (allowed) name field of the leaf.
    NameMismatch,
    /// No certificate of the chain (or the raw key) hashes to the configured Root of Trust.
    UntrustedRoot,
    /// A certificate that signs another is not a CA (basicConstraints).
    NotCa,
    /// A pathLenConstraint is exceeded.
    PathLenExceeded,
    /// keyUsage forbids the use (digitalSignature on the leaf, keyCertSign on a CA).
    KeyUsage,
    /// A name is outside a CA's nameConstraints.
    NameConstraints,
    /// An extension marked critical that we do not process.
    UnhandledCriticalExtension,
    /// The chain is not in order (a certificate's issuer is not the next one's subject).
    BadChainOrder,
    /// The signing key does not match the credential's public key (configuration).
    KeyMismatch,
    /// The caller's verifier refused (e.g. a deferred decision).
    Refused,
    /// The peer sent a raw public key where the association requires a certificate.
    RawPublicKeyRefused,
    /// An ECDH public value that is not a valid uncompressed P-256 point (or a private scalar
    /// out of range).
    InvalidPoint,
}

impl CertError {
    /// The alert for this refusal (RFC 5246 7.2.2).
    #[must_use]
    pub const fn alert(self) -> AlertDescription {
        match self {
            Self::NoCertificate | Self::Malformed | Self::BadChainOrder | Self::BadSignature => {
                AlertDescription::BadCertificate
            }
            Self::UnsupportedKey | Self::UnhandledCriticalExtension | Self::RawPublicKeyRefused => {
                AlertDescription::UnsupportedCertificate
            }
            Self::InvalidPoint => AlertDescription::IllegalParameter,
            Self::Expired | Self::NotYetValid => AlertDescription::CertificateExpired,
            Self::UntrustedRoot | Self::NotCa | Self::PathLenExceeded | Self::NameConstraints => {
                AlertDescription::UnknownCa
            }
            Self::ChainTooLong
            | Self::NameMismatch
            | Self::KeyUsage
            | Self::KeyMismatch
            | Self::Refused => AlertDescription::BadCertificate,
        }
    }
}

impl fmt::Display for CertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoCertificate => "no certificate",
            Self::Malformed => "malformed certificate or key",
            Self::UnsupportedKey => "not an ECDSA P-256 (SHA-256, uncompressed) key",
            Self::ChainTooLong => "certificate chain too long",
            Self::BadSignature => "a certificate signature does not verify",
            Self::Expired => "certificate expired",
            Self::NotYetValid => "certificate not yet valid",
            Self::NameMismatch => "the Certificate Name is not in the certificate",
            Self::UntrustedRoot => "no key of the chain matches the Root of Trust",
            Self::NotCa => "an issuing certificate is not a CA",
            Self::PathLenExceeded => "pathLenConstraint exceeded",
            Self::KeyUsage => "keyUsage does not allow this use",
            Self::NameConstraints => "a name violates the issuer's nameConstraints",
            Self::UnhandledCriticalExtension => "unhandled critical extension",
            Self::BadChainOrder => "certificates out of order",
            Self::KeyMismatch => "the signing key does not match the certificate",
            Self::Refused => "refused by the verifier",
            Self::RawPublicKeyRefused => "raw public keys are not accepted here",
            Self::InvalidPoint => "not a valid P-256 point or scalar",
        })
    }
}

impl core::error::Error for CertError {}

#[cfg(feature = "ecdhe")]
/// ECDH on P-256 (RFC 8422 5.10): the x-coordinate of `secret_scalar` times the peer's point.
///
/// `peer_sec1_point` must be an uncompressed SEC1 point (`04 || X || Y`, 65 bytes: the only
/// format TLS 1.2 ECDHE uses, RFC 8422 5.1.2) on the curve and not the identity;
/// `secret_scalar` (big-endian) must be in `[1, n-1]`. Anything else is
/// [`CertError::InvalidPoint`]. The premaster secret is zeroized when dropped.
pub fn ecdh_p256_shared(
    secret_scalar: &[u8; 32],
    peer_sec1_point: &[u8],
) -> Result<zeroize::Zeroizing<[u8; 32]>, CertError> {
    if peer_sec1_point.len() != 65 || peer_sec1_point[0] != 0x04 {
        return Err(CertError::InvalidPoint);
    }
    let peer =
        p256::PublicKey::from_sec1_bytes(peer_sec1_point).map_err(|_| CertError::InvalidPoint)?;
    let secret =
        p256::SecretKey::from_bytes(secret_scalar.into()).map_err(|_| CertError::InvalidPoint)?;
    let shared = p256::ecdh::diffie_hellman(secret.to_nonzero_scalar(), peer.as_affine());
    let mut out = zeroize::Zeroizing::new([0u8; 32]);
    out.copy_from_slice(shared.raw_secret_bytes());
    Ok(out)
}

#[cfg(feature = "ecdhe")]
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spki_round_trip_and_refusals() {
        let key = SigningKey::from_bytes(&[7u8; 32]).unwrap();
        let spki = key.spki_der();
        assert_eq!(spki.len(), 91);
        assert_eq!(verifying_key_from_spki(&spki).unwrap(), key.verifying_key());
        let raw = CertifiedKey::raw(key.clone());
        assert_eq!(raw.credential().leaf_spki().unwrap(), spki);
        // A compressed point, another curve's OID, garbage: refused without panic.
        let mut compressed = spki.clone();
        compressed[26] = 0x02;
        assert_eq!(
            verifying_key_from_spki(&compressed),
            Err(CertError::UnsupportedKey)
        );
        let mut other_curve = spki.clone();
        other_curve[22] = 0x08;
        assert_eq!(
            verifying_key_from_spki(&other_curve),
            Err(CertError::UnsupportedKey)
        );
        assert_eq!(
            verifying_key_from_spki(&spki[..40]),
            Err(CertError::Malformed)
        );
        // A key that is not the credential's.
        let other = SigningKey::from_bytes(&[8u8; 32]).unwrap();
        assert_eq!(
            CertifiedKey::new(other, raw.credential().clone()).unwrap_err(),
            CertError::KeyMismatch
        );
        assert!(!alloc::format!("{key:?}").contains('7'));
    }
}
