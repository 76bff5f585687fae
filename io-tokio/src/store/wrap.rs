//! Records at rest: the value format and the AES-256-GCM-SIV key wrapping.
//!
//! One record value (version 1), big-endian integers:
//!
//! ```text
//! header   version u8 = 1 | kind u8 (KeyKind::code) | owner_len u16 | owner
//!          | n_targets u16 | (target_len u16 | target)* | not_after u64
//! nonce    12 random bytes (getrandom)
//! wrapped  AES-256-GCM-SIV(KEK, nonce, secret, aad) = ciphertext | 16-byte tag
//! aad      RECORD_AAD_LABEL | id_len u16 | id | header
//! ```
//!
//! The AAD binds the secret to its identifier and to every metadata field, so a wrapped secret
//! copied to another identifier, or a record whose owner, targets, kind or expiry were edited,
//! fails authentication ([`StoreError::Unwrap`]) instead of yielding a key.
//!
//! The KEK check value (in the meta table) is `1 | nonce | AES-256-GCM-SIV(KEK, nonce, 32 zero
//! bytes, KEK_CHECK_AAD)`; it tells a wrong KEK ([`StoreError::WrongKek`]) from a tampered record.

use std::fmt;

use aes_gcm_siv::aead::{Aead, KeyInit, Payload};
use aes_gcm_siv::{Aes256GcmSiv, Nonce};
use m2msec::store::{
    KeyInfo, KeyKind, KeyRecord, KeySecret, StoreError, MAX_SECRET_LEN, MAX_TARGETS,
};
use m2msec::UnixTime;
use zeroize::Zeroizing;

/// Bytes of a key-encryption key.
pub const KEK_LEN: usize = 32;

const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const RECORD_AAD_LABEL: &[u8] = b"m2msec key store record v1\0";
const KEK_CHECK_AAD: &[u8] = b"m2msec key store KEK check v1\0";
const KEK_CHECK_PLAIN: [u8; 32] = [0; 32];

/// The key-encryption key that wraps every secret at rest: 32 bytes from configuration.
///
/// Zeroized on drop, redacted in `Debug`.
#[derive(Clone)]
pub struct Kek(Zeroizing<[u8; KEK_LEN]>);

impl Kek {
    /// A KEK from its 32 bytes.
    #[must_use]
    pub fn new(bytes: [u8; KEK_LEN]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// A KEK from a slice; `None` unless it is exactly 32 bytes.
    #[must_use]
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let mut k = Zeroizing::new([0u8; KEK_LEN]);
        if bytes.len() != KEK_LEN {
            return None;
        }
        k.copy_from_slice(bytes);
        Some(Self(k))
    }
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Kek(<redacted>)")
    }
}

/// Seals and opens record values under one KEK.
pub(crate) struct Wrapper {
    cipher: Aes256GcmSiv,
}

impl Wrapper {
    pub(crate) fn new(kek: &Kek) -> Self {
        Self {
            cipher: Aes256GcmSiv::new(kek.0.as_slice().into()),
        }
    }

    /// The value stored for `record` (validated by the caller).
    pub(crate) fn seal(&self, record: &KeyRecord) -> Result<Vec<u8>, StoreError> {
        let mut out = encode_header(record);
        let header_len = out.len();
        let aad = record_aad(&record.id, &out);
        let nonce = random_nonce()?;
        let wrapped = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: record.secret.expose(),
                    aad: &aad,
                },
            )
            .map_err(|_| backend("AES-GCM-SIV refused to seal"))?;
        out.reserve(NONCE_LEN + wrapped.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&wrapped);
        debug_assert_eq!(
            out.len(),
            header_len + NONCE_LEN + record.secret.len() + TAG_LEN
        );
        Ok(out)
    }

    /// The record stored as `value` under `id`: decoded and authenticated.
    pub(crate) fn open(&self, id: &str, value: &[u8]) -> Result<KeyRecord, StoreError> {
        let (info, header_len) = decode_header(id, value)?;
        let rest = &value[header_len..];
        if rest.len() < NONCE_LEN + TAG_LEN + 1 || rest.len() > NONCE_LEN + TAG_LEN + MAX_SECRET_LEN
        {
            return Err(corrupt("wrapped secret has a bad length"));
        }
        let (nonce, wrapped) = rest.split_at(NONCE_LEN);
        let aad = record_aad(id, &value[..header_len]);
        let secret = Zeroizing::new(
            self.cipher
                .decrypt(
                    Nonce::from_slice(nonce),
                    Payload {
                        msg: wrapped,
                        aad: &aad,
                    },
                )
                .map_err(|_| StoreError::Unwrap { id: id.to_owned() })?,
        );
        let secret = KeySecret::new(&secret).map_err(|_| corrupt("bad secret length"))?;
        KeyRecord::from_parts(info, secret).map_err(|e| corrupt(&e.to_string()))
    }

    /// A fresh KEK check value.
    pub(crate) fn kek_check(&self) -> Result<Vec<u8>, StoreError> {
        let nonce = random_nonce()?;
        let ct = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &KEK_CHECK_PLAIN,
                    aad: KEK_CHECK_AAD,
                },
            )
            .map_err(|_| backend("AES-GCM-SIV refused to seal"))?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Whether `check` (from [`Wrapper::kek_check`]) was made with this KEK.
    pub(crate) fn verify_kek(&self, check: &[u8]) -> Result<(), StoreError> {
        if check.len() != 1 + NONCE_LEN + KEK_CHECK_PLAIN.len() + TAG_LEN || check[0] != VERSION {
            return Err(corrupt("KEK check value has a bad format"));
        }
        let (nonce, ct) = check[1..].split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: KEK_CHECK_AAD,
                },
            )
            .map_err(|_| StoreError::WrongKek)?;
        if plain != KEK_CHECK_PLAIN {
            return Err(StoreError::WrongKek);
        }
        Ok(())
    }
}

/// The owner written in a stored value, without authenticating it (to keep the owner index in
/// step when a record is replaced or deleted).
pub(crate) fn stored_owner(value: &[u8]) -> Option<String> {
    let mut r = Reader(value);
    (r.u8()? == VERSION).then_some(())?;
    r.u8()?;
    let owner = r.str16()?;
    Some(owner.to_owned())
}

fn encode_header(record: &KeyRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        2 + 2
            + record.owner.len()
            + 2
            + record.targets.iter().map(|t| 2 + t.len()).sum::<usize>()
            + 8,
    );
    out.push(VERSION);
    out.push(record.kind.code());
    put_str16(&mut out, &record.owner);
    // validate() bounds the count by MAX_TARGETS (64).
    out.extend_from_slice(&(record.targets.len() as u16).to_be_bytes());
    for t in &record.targets {
        put_str16(&mut out, t);
    }
    out.extend_from_slice(&record.not_after.0.to_be_bytes());
    out
}

fn decode_header(id: &str, value: &[u8]) -> Result<(KeyInfo, usize), StoreError> {
    let mut r = Reader(value);
    let bad = || corrupt("record header does not decode");
    let version = r.u8().ok_or_else(bad)?;
    if version != VERSION {
        return Err(corrupt(&format!("unknown record version {version}")));
    }
    let code = r.u8().ok_or_else(bad)?;
    let kind = KeyKind::from_code(code)
        .ok_or_else(|| corrupt(&format!("unknown key kind code {code}")))?;
    let owner = r.str16().ok_or_else(bad)?;
    let n = usize::from(r.u16().ok_or_else(bad)?);
    if n > MAX_TARGETS {
        return Err(bad());
    }
    let mut targets = Vec::with_capacity(n);
    for _ in 0..n {
        targets.push(r.str16().ok_or_else(bad)?.to_owned());
    }
    let not_after = UnixTime(r.u64().ok_or_else(bad)?);
    let consumed = value.len() - r.0.len();
    let info =
        KeyInfo::new(id, kind, owner, targets, not_after).map_err(|e| corrupt(&e.to_string()))?;
    Ok((info, consumed))
}

fn record_aad(id: &str, header: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(RECORD_AAD_LABEL.len() + 2 + id.len() + header.len());
    aad.extend_from_slice(RECORD_AAD_LABEL);
    put_str16(&mut aad, id);
    aad.extend_from_slice(header);
    aad
}

fn put_str16(out: &mut Vec<u8>, s: &str) {
    // Every string is bounded by the store limits (at most 1024 bytes), well inside u16.
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn random_nonce() -> Result<[u8; NONCE_LEN], StoreError> {
    let mut n = [0u8; NONCE_LEN];
    getrandom::getrandom(&mut n).map_err(|e| backend(&format!("no randomness: {e}")))?;
    Ok(n)
}

fn corrupt(detail: &str) -> StoreError {
    StoreError::Corrupt {
        detail: detail.to_owned(),
    }
}

fn backend(detail: &str) -> StoreError {
    StoreError::Backend {
        detail: detail.to_owned(),
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }

    fn u64(&mut self) -> Option<u64> {
        let b = self.take(8)?;
        Some(u64::from_be_bytes(b.try_into().ok()?))
    }

    fn str16(&mut self) -> Option<&'a str> {
        let n = usize::from(self.u16()?);
        std::str::from_utf8(self.take(n)?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> KeyRecord {
        KeyRecord::new(
            id,
            KeyKind::Km,
            "C-enrolee",
            UnixTime(1_700_000_000),
            KeySecret::from_key(&[0x5a; 32]),
        )
        .unwrap()
        .with_targets(["maf.example", "CSE-B"])
        .unwrap()
    }

    #[test]
    fn seal_open_round_trip() {
        let w = Wrapper::new(&Kek::new([1; 32]));
        let r = record("km@maf.example");
        let v = w.seal(&r).unwrap();
        assert_eq!(w.open("km@maf.example", &v).unwrap(), r);
        assert_eq!(stored_owner(&v).as_deref(), Some("C-enrolee"));
        // Random nonces: sealing twice gives different bytes.
        assert_ne!(w.seal(&r).unwrap(), v);
    }

    #[test]
    fn gba_kinds_round_trip() {
        let w = Wrapper::new(&Kek::new([1; 32]));
        for (id, kind) in [
            ("gba-sub:user@ims.example", KeyKind::GbaSubscriber),
            (
                "gba-btid:AAAAAAAAAAAAAAAAAAAAAA==@bsf.example",
                KeyKind::GbaBootstrapping,
            ),
        ] {
            let r = KeyRecord::new(
                id,
                kind,
                "user@ims.example",
                UnixTime(u64::MAX),
                KeySecret::new(&[7; 56]).unwrap(),
            )
            .unwrap()
            .with_targets(["naf.example"])
            .unwrap();
            assert_eq!(w.open(id, &w.seal(&r).unwrap()).unwrap(), r);
        }
    }

    #[test]
    fn moved_or_edited_records_fail_authentication() {
        let w = Wrapper::new(&Kek::new([1; 32]));
        let v = w.seal(&record("km@maf.example")).unwrap();
        assert_eq!(
            w.open("other@maf.example", &v).unwrap_err(),
            StoreError::Unwrap {
                id: "other@maf.example".into()
            }
        );
        // Flip one bit of not_after (last header byte before the nonce).
        let header_len = v.len() - NONCE_LEN - 32 - TAG_LEN;
        let mut e = v.clone();
        e[header_len - 1] ^= 1;
        assert!(matches!(
            w.open("km@maf.example", &e),
            Err(StoreError::Unwrap { .. })
        ));
        // Another kind code.
        let mut k = v.clone();
        k[1] = KeyKind::Ke.code();
        assert!(matches!(
            w.open("km@maf.example", &k),
            Err(StoreError::Unwrap { .. })
        ));
        // A wrong KEK never yields a key.
        let w2 = Wrapper::new(&Kek::new([2; 32]));
        assert!(matches!(
            w2.open("km@maf.example", &v),
            Err(StoreError::Unwrap { .. })
        ));
    }

    #[test]
    fn truncations_are_corrupt_not_panics() {
        let w = Wrapper::new(&Kek::new([1; 32]));
        let v = w.seal(&record("km@maf.example")).unwrap();
        for n in 0..v.len() {
            assert!(w.open("km@maf.example", &v[..n]).is_err(), "prefix {n}");
        }
        let mut bad = v.clone();
        bad[0] = 9;
        assert!(matches!(
            w.open("km@maf.example", &bad),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn kek_check() {
        let w = Wrapper::new(&Kek::new([1; 32]));
        let c = w.kek_check().unwrap();
        w.verify_kek(&c).unwrap();
        assert_eq!(
            Wrapper::new(&Kek::new([3; 32])).verify_kek(&c),
            Err(StoreError::WrongKek)
        );
        assert!(Kek::from_slice(&[0; 31]).is_none());
        assert_eq!(format!("{:?}", Kek::new([9; 32])), "Kek(<redacted>)");
    }
}
