//! The derivations: exporter split (D1), Ke/KeID, Kc/KcID, Km (D6), Kpsa.

use alloc::borrow::Cow;
#[cfg(feature = "unicode")]
use alloc::string::String;

#[cfg(feature = "unicode")]
use unicode_normalization::{is_nfkc_quick, IsNormalized, UnicodeNormalization};
use zeroize::Zeroize;

use super::id::{IdKind, KeyId, RelativeId};
use super::types::{Kc, Ke, Key32, Km, Kpsa, KEY_LEN};
use super::{KeyError, EXPORTER_LEN, KM_LABEL, KPSA_LABEL, RELATIVE_ID_LEN};
use crate::crypto::prf::hmac_sha256;
use crate::secret::SecretArray;

/// Splits 48 bytes exported under [`BOOTSTRAP_EXPORTER_LABEL`](super::BOOTSTRAP_EXPORTER_LABEL) or
/// [`CONNECTION_EXPORTER_LABEL`](super::CONNECTION_EXPORTER_LABEL): the 16 most significant
/// (leading) bytes are the relative identifier, the 32 least significant (trailing) bytes the key
/// (published TS-0003 10.3.1; D1).
#[must_use]
pub fn split_exporter(out: &[u8; EXPORTER_LEN]) -> (RelativeId, Key32) {
    let mut id = [0u8; RELATIVE_ID_LEN];
    id.copy_from_slice(&out[..RELATIVE_ID_LEN]);
    let mut key = [0u8; KEY_LEN];
    key.copy_from_slice(&out[RELATIVE_ID_LEN..]);
    let secret = SecretArray::new(key);
    key.zeroize();
    (RelativeId::from_bytes(id), secret)
}

/// The Enrolment Key Ke and its identifier KeID = HEX(RelativeKeID) "@" MEF-FQDN, from the 48 bytes
/// exported under [`BOOTSTRAP_EXPORTER_LABEL`](super::BOOTSTRAP_EXPORTER_LABEL) with no context
/// (draft 8.3.2.1 a) b), 8.3.2.2, 9.1, 9.3; published TS-0003 10.3.1, 10.3.4; D1, D2).
///
/// Fails only if `mef_fqdn` is not a DNS name.
pub fn enrolment_key(
    exporter: &[u8; EXPORTER_LEN],
    mef_fqdn: &str,
) -> Result<(KeyId, Ke), KeyError> {
    let (rel, key) = split_exporter(exporter);
    let id = KeyId::from_relative_bytes(IdKind::Ke, rel.as_bytes(), mef_fqdn)?;
    Ok((id, Ke::from(key)))
}

/// The M2M Secure Connection Key Kc and the MAF key identifier HEX(KcID) "@" MAF-FQDN, from the 48
/// bytes exported under [`CONNECTION_EXPORTER_LABEL`](super::CONNECTION_EXPORTER_LABEL) with no
/// context (draft 8.2.3.1; published TS-0003 10.3.1, 10.3.5; D1, D2, D4).
///
/// Fails only if `maf_fqdn` is not a DNS name. Per D4 a client uses the RelativeKeyID its MAF
/// returns in the Key Registration response, which for an exported key is this HEX(KcID).
pub fn connection_key(
    exporter: &[u8; EXPORTER_LEN],
    maf_fqdn: &str,
) -> Result<(KeyId, Kc), KeyError> {
    let (rel, key) = split_exporter(exporter);
    let id = KeyId::from_relative_bytes(IdKind::Kc, rel.as_bytes(), maf_fqdn)?;
    Ok((id, Kc::from(key)))
}

/// The Master Credential Km = HMAC-SHA-256(Ke, [`KM_LABEL`] || UTF-8(NFKC(MAF-ID))), plain
/// concatenation with no separator or length (draft 8.3.1.2, 9.4; published TS-0003 10.3.2; D6).
///
/// The MAF-ID is the MAF's FQDN (published table 8.8.3.2-1); it is taken as configured, any string.
#[must_use]
pub fn km(ke: &Ke, maf_id: &str) -> Km {
    Km::from(hmac_label_id(ke, KM_LABEL, maf_id))
}

/// The Provisioned Secure Connection Key Kpsa = HMAC-SHA-256(Ke, [`KPSA_LABEL`] ||
/// UTF-8(NFKC(Enrolee-B-ID))), where Enrolee-B-ID is the CSE-ID or AE-ID of the other party
/// (published TS-0003 10.3.3; not in the draft, D0).
#[must_use]
pub fn kpsa(ke: &Ke, enrolee_b_id: &str) -> Kpsa {
    Kpsa::from(hmac_label_id(ke, KPSA_LABEL, enrolee_b_id))
}

/// Unicode Normalization Form KC of `s` (UAX #15), as the TS-0003 10.3.2 / 10.3.3 derivations
/// take their identifier. Borrows `s` when it is already in NFKC (all ASCII is).
///
/// Without the `unicode` feature (a device build without the ~120 KB of normalization tables)
/// `s` is taken as given: the same for ASCII, which every identifier the framework types accept
/// is (FQDNs, CSE-IDs, AE-IDs); text outside ASCII that is not already in NFKC would derive a
/// different key than a peer with the feature.
#[must_use]
pub fn nfkc(s: &str) -> Cow<'_, str> {
    #[cfg(feature = "unicode")]
    if !s.is_ascii() && is_nfkc_quick(s.chars()) != IsNormalized::Yes {
        return Cow::Owned(s.nfkc().collect::<String>());
    }
    Cow::Borrowed(s)
}

fn hmac_label_id(ke: &Ke, label: &[u8], id: &str) -> Key32 {
    let id = nfkc(id);
    let mut out = hmac_sha256(ke.expose(), &[label, id.as_bytes()]);
    let key = SecretArray::new(out);
    out.zeroize();
    key
}
