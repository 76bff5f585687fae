//! TS 33.220 Annex B key derivation: Ks_NAF, Ks_ext_NAF, Ks_int_NAF, NAF_Id, B-TID, and the
//! GBA (D)TLS-PSK identity forms of decision D10.
//!
//! ```text
//! S          = FC || P0 || L0 || P1 || L1 || ... || Pn || Ln      (Li: 2-byte big-endian |Pi|)
//! derived    = HMAC-SHA-256(Key, S)                                (B.2)
//! Ks_NAF     = KDF(Ks, FC = 0x01, "gba-me", RAND, IMPI, NAF_Id)    (GBA_ME, B.3)
//! Ks_ext_NAF = KDF(Ks, FC = 0x01, "gba-me", RAND, IMPI, NAF_Id)    (GBA_U, for the ME)
//! Ks_int_NAF = KDF(Ks, FC = 0x01, "gba-u",  RAND, IMPI, NAF_Id)    (GBA_U, stays in the UICC)
//! NAF_Id     = FQDN of the NAF || Ua security protocol identifier (5 octets, H.1)
//! B-TID      = base64(RAND) "@" BSF FQDN                           (4.5.2)
//! ```
//!
//! GBA_U model: in a real GBA_U the UICC derives Ks from CK || IK itself and only releases
//! Ks_ext_NAF. Here Ks is the same CK || IK ([`super::Ks`]) for both; GBA_U differs from GBA_ME
//! only in which key is used: [`ks_ext_naf`] ("gba-me", equal to [`ks_naf`]) for an ME-based
//! client, [`ks_int_naf`] ("gba-u") for a client in the UICC.
//!
//! Key derivation inputs are taken byte for byte: NAF and BSF FQDNs are not case-folded (pass
//! the canonical, usually lower-case, name on both sides). The derived keys are
//! [`SecretArray<32>`]: zeroized on drop, redacted in `Debug`.

use alloc::string::String;
use alloc::vec::Vec;

use crate::crypto::prf::hmac_sha256;
use crate::secret::SecretArray;

use super::Ks;

/// FC of the GBA NAF-specific key derivation (TS 33.220 B.3).
pub const FC_GBA_NAF: u8 = 0x01;
/// P0 for Ks_NAF / Ks_ext_NAF.
pub const GBA_ME: &[u8] = b"gba-me";
/// P0 for Ks_int_NAF.
pub const GBA_U: &[u8] = b"gba-u";

/// A NAF-specific key: Ks_NAF, Ks_ext_NAF or Ks_int_NAF (32 bytes).
pub type KsNaf = SecretArray<32>;

/// Ua security protocol identifier (TS 33.220 H.2/H.3) for HTTP Digest (TS 33.222 4).
pub const UA_HTTP_DIGEST: [u8; 5] = [0x01, 0x00, 0x00, 0x00, 0x02];

/// The largest FQDN accepted (RFC 1035: 255 octets on the wire, 253 in text).
pub const MAX_FQDN_LEN: usize = 253;
/// The largest B-TID accepted as text.
pub const MAX_BTID_LEN: usize = 512;

/// psk_identity_hint and psk_identity prefix of a GBA_ME NAF (TS 33.222 5.4.0.1).
pub const PREFIX_ME: &str = "3GPP-bootstrapping";
/// psk_identity_hint and psk_identity prefix of a GBA_U NAF.
pub const PREFIX_UICC: &str = "3GPP-bootstrapping-uicc";

/// Why a GBA key derivation input or identifier was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GbaKdfError {
    /// A KDF parameter is longer than 65535 bytes.
    ParameterTooLong,
    /// Not a host name: empty, too long, or characters other than letters, digits, '-' and '.'
    /// (labels of 1..=63, not starting or ending with '-').
    InvalidFqdn,
    /// Not a B-TID: bounded printable text `base64 "@" FQDN` (standard alphabet, padded).
    InvalidBTid,
    /// Not a GBA psk_identity: [prefix (";" | ".")] B-TID with a known prefix.
    InvalidPskIdentity,
}

impl core::fmt::Display for GbaKdfError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::ParameterTooLong => "KDF parameter longer than 65535 bytes",
            Self::InvalidFqdn => "invalid FQDN",
            Self::InvalidBTid => "invalid B-TID",
            Self::InvalidPskIdentity => "invalid GBA psk_identity",
        })
    }
}

/// The generic KDF of TS 33.220 Annex B.2: HMAC-SHA-256(key, FC || P0 || L0 || ... || Pn || Ln).
///
/// # Errors
/// [`GbaKdfError::ParameterTooLong`] if a parameter exceeds 65535 bytes.
pub fn kdf(key: &[u8], fc: u8, params: &[&[u8]]) -> Result<SecretArray<32>, GbaKdfError> {
    let mut lens: Vec<[u8; 2]> = Vec::with_capacity(params.len());
    for p in params {
        let l = u16::try_from(p.len()).map_err(|_| GbaKdfError::ParameterTooLong)?;
        lens.push(l.to_be_bytes());
    }
    let fc = [fc];
    let mut parts: Vec<&[u8]> = Vec::with_capacity(1 + 2 * params.len());
    parts.push(&fc);
    for (p, l) in params.iter().zip(&lens) {
        parts.push(p);
        parts.push(l);
    }
    Ok(SecretArray::new(hmac_sha256(key, &parts)))
}

/// Checks a host name (letters, digits, '-' in labels of 1..=63 separated by '.').
fn valid_fqdn(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_FQDN_LEN
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// NAF_Id = FQDN of the NAF || Ua security protocol identifier (TS 33.220 H.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NafId {
    fqdn: String,
    ua_protocol_id: [u8; 5],
}

impl NafId {
    /// NAF_Id from the NAF FQDN and a 5-octet Ua security protocol identifier.
    ///
    /// # Errors
    /// [`GbaKdfError::InvalidFqdn`].
    pub fn new(naf_fqdn: &str, ua_protocol_id: [u8; 5]) -> Result<Self, GbaKdfError> {
        if !valid_fqdn(naf_fqdn) {
            return Err(GbaKdfError::InvalidFqdn);
        }
        Ok(Self {
            fqdn: naf_fqdn.into(),
            ua_protocol_id,
        })
    }

    /// NAF_Id for (D)TLS-PSK on Ua (D10; TS 33.220 H.3 for TS 33.222 5.4):
    /// FQDN || 0x01 0x00 0x01 || the 2-byte cipher suite code.
    ///
    /// # Errors
    /// [`GbaKdfError::InvalidFqdn`].
    pub fn tls_psk(naf_fqdn: &str, cipher_suite: u16) -> Result<Self, GbaKdfError> {
        let [hi, lo] = cipher_suite.to_be_bytes();
        Self::new(naf_fqdn, [0x01, 0x00, 0x01, hi, lo])
    }

    /// The NAF FQDN.
    #[must_use]
    pub fn fqdn(&self) -> &str {
        &self.fqdn
    }

    /// The Ua security protocol identifier.
    #[must_use]
    pub fn ua_protocol_id(&self) -> [u8; 5] {
        self.ua_protocol_id
    }

    /// The NAF_Id octets (P3 of the KDF).
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.fqdn.len() + 5);
        v.extend_from_slice(self.fqdn.as_bytes());
        v.extend_from_slice(&self.ua_protocol_id);
        v
    }
}

fn naf_key(
    p0: &[u8],
    ks: &Ks,
    rand: &[u8; 16],
    impi: &str,
    naf_id: &NafId,
) -> Result<KsNaf, GbaKdfError> {
    let id = naf_id.to_bytes();
    kdf(&ks.0, FC_GBA_NAF, &[p0, rand, impi.as_bytes(), &id])
}

/// Ks_NAF (GBA_ME) = KDF(Ks, "gba-me", RAND, IMPI, NAF_Id).
///
/// # Errors
/// [`GbaKdfError::ParameterTooLong`] for an IMPI over 65535 bytes.
pub fn ks_naf(ks: &Ks, rand: &[u8; 16], impi: &str, naf_id: &NafId) -> Result<KsNaf, GbaKdfError> {
    naf_key(GBA_ME, ks, rand, impi, naf_id)
}

/// Ks_ext_NAF (GBA_U, for the ME): the same derivation as [`ks_naf`] ("gba-me").
///
/// # Errors
/// As [`ks_naf`].
pub fn ks_ext_naf(
    ks: &Ks,
    rand: &[u8; 16],
    impi: &str,
    naf_id: &NafId,
) -> Result<KsNaf, GbaKdfError> {
    naf_key(GBA_ME, ks, rand, impi, naf_id)
}

/// Ks_int_NAF (GBA_U, inside the UICC) = KDF(Ks, "gba-u", RAND, IMPI, NAF_Id).
///
/// # Errors
/// As [`ks_naf`].
pub fn ks_int_naf(
    ks: &Ks,
    rand: &[u8; 16],
    impi: &str,
    naf_id: &NafId,
) -> Result<KsNaf, GbaKdfError> {
    naf_key(GBA_U, ks, rand, impi, naf_id)
}

/// Standard padded base64 (one implementation for the GBA module: [`super::digest`]'s).
fn b64_encode(data: &[u8]) -> String {
    super::digest::base64_encode(data)
}

/// Canonical padded base64, non-empty.
fn b64_decode(text: &str) -> Option<Vec<u8>> {
    super::digest::base64_decode(text).filter(|v| !v.is_empty())
}

/// A bootstrapping transaction identifier `base64(RAND) "@" BSF-FQDN` (TS 33.220 4.5.2).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BTid(String);

impl BTid {
    /// The B-TID for RAND at the BSF named `bsf_fqdn`.
    ///
    /// # Errors
    /// [`GbaKdfError::InvalidFqdn`].
    pub fn new(rand: &[u8; 16], bsf_fqdn: &str) -> Result<Self, GbaKdfError> {
        if !valid_fqdn(bsf_fqdn) {
            return Err(GbaKdfError::InvalidFqdn);
        }
        let mut s = b64_encode(rand);
        s.push('@');
        s.push_str(bsf_fqdn);
        Ok(Self(s))
    }

    /// Parses and validates a B-TID: at most [`MAX_BTID_LEN`] bytes of printable ASCII,
    /// exactly one '@', canonical padded standard base64 on its left, a host name on its right.
    /// The left part need not be a 16-byte RAND (a BSF may choose another unique value).
    ///
    /// # Errors
    /// [`GbaKdfError::InvalidBTid`].
    pub fn parse(text: &str) -> Result<Self, GbaKdfError> {
        if text.is_empty()
            || text.len() > MAX_BTID_LEN
            || !text.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(GbaKdfError::InvalidBTid);
        }
        let (local, domain) = text.split_once('@').ok_or(GbaKdfError::InvalidBTid)?;
        if domain.contains('@') || !valid_fqdn(domain) || b64_decode(local).is_none() {
            return Err(GbaKdfError::InvalidBTid);
        }
        Ok(Self(text.into()))
    }

    /// The B-TID text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The BSF FQDN (after the '@').
    #[must_use]
    pub fn bsf_fqdn(&self) -> &str {
        self.0.split_once('@').map_or("", |(_, d)| d)
    }

    /// The RAND, when the part before '@' is the base64 of 16 bytes.
    #[must_use]
    pub fn rand(&self) -> Option<[u8; 16]> {
        let (local, _) = self.0.split_once('@')?;
        b64_decode(local)?.try_into().ok()
    }
}

impl core::fmt::Display for BTid {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The psk_identity prefix of a GBA (D)TLS-PSK client (D10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GbaPrefix {
    /// "3GPP-bootstrapping" (GBA_ME, or GBA_U with Ks_ext_NAF).
    Me,
    /// "3GPP-bootstrapping-uicc" (GBA_U with Ks_int_NAF).
    Uicc,
}

impl GbaPrefix {
    /// The prefix text (also the NAF's psk_identity_hint).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Me => PREFIX_ME,
            Self::Uicc => PREFIX_UICC,
        }
    }
}

/// The psk_identity a client sends (D10, as the draft writes it): `prefix ";" B-TID`.
#[must_use]
pub fn psk_identity(prefix: GbaPrefix, btid: &BTid) -> String {
    let mut s = String::with_capacity(prefix.as_str().len() + 1 + btid.0.len());
    s.push_str(prefix.as_str());
    s.push(';');
    s.push_str(&btid.0);
    s
}

/// Parses a GBA psk_identity (D10): `prefix ";" B-TID`, `prefix "." B-TID` (3GPP test specs)
/// or the bare B-TID (published oneM2M). Returns the prefix if one was present.
///
/// # Errors
/// [`GbaKdfError::InvalidPskIdentity`] for an unknown prefix or an invalid B-TID.
pub fn parse_psk_identity(identity: &str) -> Result<(Option<GbaPrefix>, BTid), GbaKdfError> {
    // The longer prefix first: "3GPP-bootstrapping" is a prefix of "-uicc". Base64 has no '-',
    // so a bare B-TID never starts with either prefix.
    for p in [GbaPrefix::Uicc, GbaPrefix::Me] {
        if let Some(rest) = identity.strip_prefix(p.as_str()) {
            let btid = rest
                .strip_prefix(';')
                .or_else(|| rest.strip_prefix('.'))
                .ok_or(GbaKdfError::InvalidPskIdentity)?;
            return BTid::parse(btid)
                .map(|b| (Some(p), b))
                .map_err(|_| GbaKdfError::InvalidPskIdentity);
        }
    }
    BTid::parse(identity)
        .map(|b| (None, b))
        .map_err(|_| GbaKdfError::InvalidPskIdentity)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip() {
        for n in 0..20u8 {
            let data: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37) ^ 0xa5).collect();
            let e = b64_encode(&data);
            if n == 0 {
                assert_eq!(b64_decode(&e), None);
            } else {
                assert_eq!(b64_decode(&e).as_deref(), Some(&data[..]));
            }
        }
        assert_eq!(b64_encode(b"foob"), "Zm9vYg==");
        assert_eq!(b64_decode("Zm9vYh=="), None); // non-canonical
        assert_eq!(b64_decode("Zm9v=g=="), None);
        assert_eq!(b64_decode("Zg==Zm9v"), None);
    }
}
