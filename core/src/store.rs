//! Key storage for the MEF / MAF servers, as values: [`StoreOp`] in, [`StoreResult`] out.
//!
//! ```text
//!  server core ──StoreOp──▶ KeyStore::execute (sync, here)        ──StoreResult──▶ server core
//!                          AsyncKeyStore::execute (m2msec-tokio)
//! ```
//!
//! The core never does I/O: a server step that needs a key hands a [`StoreOp`] to its caller, which
//! runs it against a [`KeyStore`] (this module: [`MemoryKeyStore`]) or an asynchronous store (the
//! `m2msec-tokio` adapter: an embedded, crash-safe database with keys wrapped at rest) and resumes
//! the step with the [`StoreResult`].
//!
//! Rules every store follows (and the tests of each store check):
//!
//! - **Identifiers compare byte for byte, as the caller gives them.** Normalising them (case of a
//!   hexadecimal relative part or of an FQDN, NFKC) is the caller's job; [`store_id`] turns a
//!   [`KeyId`] into the text that matches exactly when the identifiers are equal.
//! - **Expiry is not enforced by the store.** `not_after` is stored and returned; the caller
//!   compares it with its `now` ([`KeyRecord::is_expired`], [`KeyInfo::is_expired`]). A store
//!   never reads a clock and never drops a key on its own.
//! - **`Put` replaces** a record with the same identifier (metadata and secret together) and is
//!   durable when it returns `Ok` for a persistent store.
//! - **Errors carry no secret** ([`StoreError`]).
//! - [`StoreOp::Derive`] computes HMAC-SHA-256(secret, label || context) inside the store, so a
//!   store in a Secure Environment or HSM can derive Km or Kpsa from Ke (published TS-0003 10.3.2,
//!   10.3.3) without ever exporting Ke.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::crypto::prf::hmac_sha256;
use crate::keys::{IdKind, Key32, KeyId, KEY_LEN};
use crate::secret::SecretArray;
use crate::time::UnixTime;

/// Longest key identifier, in bytes (a `relative@FQDN` identifier is at most
/// [`MAX_KEY_ID_LEN`](crate::keys::MAX_KEY_ID_LEN) = 509; GBA B-TIDs and other opaque
/// identifiers get some room).
pub const MAX_ID_LEN: usize = 1024;
/// Longest owner identity, in bytes (Enrolee-ID, AE-ID or CSE-ID).
pub const MAX_OWNER_LEN: usize = 1024;
/// Longest authorized target identity, in bytes.
pub const MAX_TARGET_LEN: usize = 1024;
/// Most authorized targets one record may carry.
pub const MAX_TARGETS: usize = 64;
/// Longest secret, in bytes (the longest PSK the engine accepts).
pub const MAX_SECRET_LEN: usize = crate::secret::MAX_PSK_LEN;

/// Which TS-0003 key a record holds. Stores persist it as [`KeyKind::code`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum KeyKind {
    /// Kpm, the key pre-provisioned between an Enrolee and its MEF (published TS-0003 8.3.2.1).
    Kpm,
    /// Ke, the Enrolment Key from a Security Bootstrap (published TS-0003 10.3.1).
    Ke,
    /// Km, the Master Credential shared by an Enrolee and its MAF (published TS-0003 10.3.2).
    Km,
    /// Kc, the M2M Secure Connection Key issued by a MAF (published TS-0003 10.3.1, 8.8.2.7).
    Kc,
    /// Kpsa, the Provisioned Secure Connection Key (published TS-0003 10.3.3).
    Kpsa,
    /// A GBA subscriber at the BSF (TS 33.220): identifier `gba-sub:<IMPI>`, secret
    /// K ‖ OPc ‖ SQN ‖ flags, targets the GUSS (the NAF FQDNs the subscriber may use).
    GbaSubscriber,
    /// A GBA bootstrapping at the BSF: identifier `gba-btid:<B-TID>`, owner the IMPI, secret
    /// Ks ‖ RAND ‖ bootstrapping time, `not_after` the key lifetime.
    GbaBootstrapping,
}

impl KeyKind {
    /// The stable one-byte code stores persist. Never renumbered; new kinds take new codes.
    #[must_use]
    pub const fn code(self) -> u8 {
        match self {
            Self::Kpm => 1,
            Self::Ke => 2,
            Self::Km => 3,
            Self::Kc => 4,
            Self::Kpsa => 5,
            Self::GbaSubscriber => 6,
            Self::GbaBootstrapping => 7,
        }
    }

    /// The kind with this [`code`](Self::code); `None` for an unknown code.
    #[must_use]
    pub const fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => Self::Kpm,
            2 => Self::Ke,
            3 => Self::Km,
            4 => Self::Kc,
            5 => Self::Kpsa,
            6 => Self::GbaSubscriber,
            7 => Self::GbaBootstrapping,
            _ => return None,
        })
    }
}

impl From<IdKind> for KeyKind {
    fn from(k: IdKind) -> Self {
        match k {
            IdKind::Ke => Self::Ke,
            IdKind::Kc => Self::Kc,
            IdKind::Km => Self::Km,
            IdKind::Kpsa => Self::Kpsa,
            IdKind::Kpm => Self::Kpm,
        }
    }
}

/// The store identifier of a [`KeyId`]: its text with the FQDN in lower case and, for kinds whose
/// relative part compares case-insensitively (Ke, Kc, Km), the relative part in upper case.
///
/// Two `KeyId`s of the same kind are equal exactly when their `store_id`s are; the canonical
/// text of a KeID or a hexadecimal KcID is unchanged except for the FQDN's case. Keys of
/// different kinds should not share identifiers in one store (the kind is not part of the text).
#[must_use]
pub fn store_id(id: &KeyId) -> String {
    let mut s = String::with_capacity(id.as_str().len());
    if id.kind().relative_case_insensitive() {
        s.extend(id.relative().chars().map(|c| c.to_ascii_uppercase()));
    } else {
        s.push_str(id.relative());
    }
    s.push('@');
    s.extend(id.fqdn().chars().map(|c| c.to_ascii_lowercase()));
    s
}

/// A stored secret: 1 to [`MAX_SECRET_LEN`] bytes, zeroized on drop, compared in constant time,
/// redacted in `Debug`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct KeySecret(Vec<u8>);

impl KeySecret {
    /// A secret from its bytes; 1 to [`MAX_SECRET_LEN`] bytes.
    pub fn new(bytes: &[u8]) -> Result<Self, RecordError> {
        if bytes.is_empty() || bytes.len() > MAX_SECRET_LEN {
            return Err(RecordError::BadSecretLength);
        }
        Ok(Self(bytes.to_vec()))
    }

    /// A secret from a 32-byte key (`Ke::expose()`, `Kc::expose()`, ...).
    #[must_use]
    pub fn from_key(key: &[u8; KEY_LEN]) -> Self {
        Self(key.to_vec())
    }

    /// The secret bytes. Handle with care.
    #[must_use]
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes (not secret).
    #[must_use]
    #[allow(clippy::len_without_is_empty)] // never empty
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The secret as a 32-byte key (to build `Ke`, `Kc`, `Km`, `Kpsa` with `From<Key32>`);
    /// `None` if it is not 32 bytes long.
    #[must_use]
    pub fn to_key32(&self) -> Option<Key32> {
        if self.0.len() != KEY_LEN {
            return None;
        }
        let mut buf = Zeroizing::new([0u8; KEY_LEN]);
        buf.copy_from_slice(&self.0);
        Some(SecretArray::new(*buf))
    }

    /// HMAC-SHA-256(secret, `label` || `context`), the shape of the TS-0003 10.3.2 and 10.3.3
    /// derivations (the caller applies NFKC to an identifier in `context`).
    #[must_use]
    pub fn derive(&self, label: &[u8], context: &[u8]) -> Key32 {
        let mut out = hmac_sha256(&self.0, &[label, context]);
        let key = SecretArray::new(out);
        out.zeroize();
        key
    }
}

impl PartialEq for KeySecret {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len() && bool::from(self.0.ct_eq(&other.0))
    }
}

impl Eq for KeySecret {}

impl fmt::Debug for KeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeySecret(<{} bytes redacted>)", self.0.len())
    }
}

/// The public part of a record: everything but the secret.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyInfo {
    /// The key identifier (KeID, KmID, KcID, KpsaID, KpmID text, ...), compared byte for byte.
    pub id: String,
    /// Which key this is.
    pub kind: KeyKind,
    /// The entity the key belongs to: Enrolee-ID, AE-ID or CSE-ID.
    pub owner: String,
    /// The entities the key may be released to or used with (e.g. Enrolee-B-IDs, MAF-ID); empty
    /// for none.
    pub targets: Vec<String>,
    /// The key must not be used after this time (compared by the caller, never by the store).
    pub not_after: UnixTime,
}

impl KeyInfo {
    /// The public part of a record, checked against the length limits of this module.
    pub fn new(
        id: impl Into<String>,
        kind: KeyKind,
        owner: impl Into<String>,
        targets: Vec<String>,
        not_after: UnixTime,
    ) -> Result<Self, RecordError> {
        let info = Self {
            id: id.into(),
            kind,
            owner: owner.into(),
            targets,
            not_after,
        };
        check_meta(&info.id, &info.owner, &info.targets)?;
        Ok(info)
    }

    /// Whether the key has expired at `now` (`now > not_after`).
    #[must_use]
    pub fn is_expired(&self, now: UnixTime) -> bool {
        now > self.not_after
    }
}

/// A stored key: identifier, kind, owner, authorized targets, expiry and secret.
///
/// `Debug` prints the metadata and redacts the secret.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyRecord {
    /// The key identifier (KeID, KmID, KcID, KpsaID, KpmID text, ...), compared byte for byte.
    pub id: String,
    /// Which key this is.
    pub kind: KeyKind,
    /// The entity the key belongs to: Enrolee-ID, AE-ID or CSE-ID.
    pub owner: String,
    /// The entities the key may be released to or used with; empty for none.
    pub targets: Vec<String>,
    /// The key must not be used after this time (compared by the caller, never by the store).
    pub not_after: UnixTime,
    /// The key bytes.
    pub secret: KeySecret,
}

impl KeyRecord {
    /// A record with no targets; checked against the length limits of this module.
    pub fn new(
        id: impl Into<String>,
        kind: KeyKind,
        owner: impl Into<String>,
        not_after: UnixTime,
        secret: KeySecret,
    ) -> Result<Self, RecordError> {
        let r = Self {
            id: id.into(),
            kind,
            owner: owner.into(),
            targets: Vec::new(),
            not_after,
            secret,
        };
        r.validate()?;
        Ok(r)
    }

    /// The same record with these authorized targets (checked).
    pub fn with_targets<I, T>(mut self, targets: I) -> Result<Self, RecordError>
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.targets = targets.into_iter().map(Into::into).collect();
        self.validate()?;
        Ok(self)
    }

    /// A record from its public part and its secret (checked).
    pub fn from_parts(info: KeyInfo, secret: KeySecret) -> Result<Self, RecordError> {
        let r = Self {
            id: info.id,
            kind: info.kind,
            owner: info.owner,
            targets: info.targets,
            not_after: info.not_after,
            secret,
        };
        r.validate()?;
        Ok(r)
    }

    /// Checks every field against the limits of this module. Stores call it on `Put`, since the
    /// fields are public.
    pub fn validate(&self) -> Result<(), RecordError> {
        check_meta(&self.id, &self.owner, &self.targets)?;
        if self.secret.0.is_empty() || self.secret.0.len() > MAX_SECRET_LEN {
            return Err(RecordError::BadSecretLength);
        }
        Ok(())
    }

    /// The public part (a copy).
    #[must_use]
    pub fn info(&self) -> KeyInfo {
        KeyInfo {
            id: self.id.clone(),
            kind: self.kind,
            owner: self.owner.clone(),
            targets: self.targets.clone(),
            not_after: self.not_after,
        }
    }

    /// Whether the key has expired at `now` (`now > not_after`).
    #[must_use]
    pub fn is_expired(&self, now: UnixTime) -> bool {
        now > self.not_after
    }

    /// Whether `target` is one of the authorized targets (byte for byte).
    #[must_use]
    pub fn authorizes(&self, target: &str) -> bool {
        self.targets.iter().any(|t| t == target)
    }
}

fn check_meta(id: &str, owner: &str, targets: &[String]) -> Result<(), RecordError> {
    check_id(id)?;
    if owner.len() > MAX_OWNER_LEN {
        return Err(RecordError::OwnerTooLong);
    }
    if targets.len() > MAX_TARGETS {
        return Err(RecordError::TooManyTargets);
    }
    if targets.iter().any(|t| t.len() > MAX_TARGET_LEN) {
        return Err(RecordError::TargetTooLong);
    }
    Ok(())
}

/// Checks an identifier used in a [`StoreOp`]: 1 to [`MAX_ID_LEN`] bytes.
pub fn check_id(id: &str) -> Result<(), RecordError> {
    if id.is_empty() {
        return Err(RecordError::EmptyId);
    }
    if id.len() > MAX_ID_LEN {
        return Err(RecordError::IdTooLong);
    }
    Ok(())
}

/// One request to a key store.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreOp {
    /// Fetch the record with this identifier: [`StoreReply::Found`] or [`StoreReply::NotFound`].
    Get(String),
    /// Insert or replace the record with this identifier: [`StoreReply::Stored`]. Durable when it
    /// returns `Ok`, for a persistent store.
    Put(KeyRecord),
    /// Remove the record with this identifier: [`StoreReply::Deleted`].
    Delete(String),
    /// The public parts of every record of this owner, ordered by identifier:
    /// [`StoreReply::Listed`].
    ListByOwner(String),
    /// HMAC-SHA-256(secret of `id`, `label` || `context`), computed inside the store:
    /// [`StoreReply::Derived`] or [`StoreReply::NotFound`].
    Derive {
        /// The record whose secret keys the HMAC.
        id: String,
        /// The derivation label (e.g. [`KM_LABEL`](crate::keys::KM_LABEL)).
        label: Vec<u8>,
        /// The context (e.g. UTF-8 of NFKC(MAF-ID)).
        context: Vec<u8>,
    },
}

/// What a store answers to a [`StoreOp`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreReply {
    /// The record asked for.
    Found(KeyRecord),
    /// No record has this identifier.
    NotFound,
    /// The record is stored; `replaced` tells whether one with the same identifier existed.
    Stored {
        /// A record with the same identifier was overwritten.
        replaced: bool,
    },
    /// Done; `existed` tells whether a record was removed.
    Deleted {
        /// A record was removed.
        existed: bool,
    },
    /// The public parts of the owner's records, ordered by identifier.
    Listed(Vec<KeyInfo>),
    /// A derived key, with the public part of the record it came from (so the caller can check
    /// kind, owner and expiry).
    Derived {
        /// HMAC-SHA-256(secret, label || context).
        key: Key32,
        /// The record the key was derived from.
        from: KeyInfo,
    },
}

/// The outcome of one [`StoreOp`].
pub type StoreResult = Result<StoreReply, StoreError>;

/// A record that breaks the limits of this module. Carries no secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RecordError {
    /// The identifier is empty.
    EmptyId,
    /// The identifier is longer than [`MAX_ID_LEN`].
    IdTooLong,
    /// The owner is longer than [`MAX_OWNER_LEN`].
    OwnerTooLong,
    /// More than [`MAX_TARGETS`] targets.
    TooManyTargets,
    /// A target is longer than [`MAX_TARGET_LEN`].
    TargetTooLong,
    /// The secret is empty or longer than [`MAX_SECRET_LEN`].
    BadSecretLength,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::EmptyId => "empty key identifier",
            Self::IdTooLong => "key identifier too long",
            Self::OwnerTooLong => "owner identity too long",
            Self::TooManyTargets => "too many authorized targets",
            Self::TargetTooLong => "authorized target identity too long",
            Self::BadSecretLength => "secret is empty or too long",
        })
    }
}

impl core::error::Error for RecordError {}

/// Why a store operation failed. Carries no secret; `detail` strings come from the backend and
/// name no key material.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// The operation's record or identifier breaks the limits of this module.
    InvalidRecord(RecordError),
    /// The key-encryption key does not open this store.
    WrongKek,
    /// The wrapped secret of this record failed authentication: the stored bytes were altered or
    /// moved to another identifier. No key is returned.
    Unwrap {
        /// The record's identifier.
        id: String,
    },
    /// Stored bytes do not decode as a record of a known format.
    Corrupt {
        /// What is wrong (no key material).
        detail: String,
    },
    /// The backend failed (I/O, database, worker thread).
    Backend {
        /// The backend's description (no key material).
        detail: String,
    },
    /// This store does not support the operation.
    Unsupported,
}

impl From<RecordError> for StoreError {
    fn from(e: RecordError) -> Self {
        Self::InvalidRecord(e)
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidRecord(e) => write!(f, "invalid key record: {e}"),
            Self::WrongKek => f.write_str("the key-encryption key does not open this key store"),
            Self::Unwrap { id } => write!(f, "wrapped key {id:?} failed authentication"),
            Self::Corrupt { detail } => write!(f, "key store corrupt: {detail}"),
            Self::Backend { detail } => write!(f, "key store backend failed: {detail}"),
            Self::Unsupported => f.write_str("operation not supported by this key store"),
        }
    }
}

impl core::error::Error for StoreError {}

/// A synchronous key store: runs one [`StoreOp`] to completion.
///
/// Implementations must follow the rules in the [module documentation](self): byte-exact
/// identifiers, no expiry enforcement, `Put` replaces and is durable on `Ok`, no secret in errors.
pub trait KeyStore {
    /// Runs `op`.
    fn execute(&mut self, op: StoreOp) -> StoreResult;
}

impl<S: KeyStore + ?Sized> KeyStore for &mut S {
    fn execute(&mut self, op: StoreOp) -> StoreResult {
        (**self).execute(op)
    }
}

/// A key store in memory (a `BTreeMap`): for tests, and for servers that may forget their keys.
#[derive(Clone, Debug, Default)]
pub struct MemoryKeyStore {
    records: BTreeMap<String, KeyRecord>,
}

impl MemoryKeyStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// How many records are stored.
    #[must_use]
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the store is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

impl KeyStore for MemoryKeyStore {
    fn execute(&mut self, op: StoreOp) -> StoreResult {
        match op {
            StoreOp::Get(id) => {
                check_id(&id)?;
                Ok(self
                    .records
                    .get(&id)
                    .map_or(StoreReply::NotFound, |r| StoreReply::Found(r.clone())))
            }
            StoreOp::Put(record) => {
                record.validate()?;
                let replaced = self.records.insert(record.id.clone(), record).is_some();
                Ok(StoreReply::Stored { replaced })
            }
            StoreOp::Delete(id) => {
                check_id(&id)?;
                let existed = self.records.remove(&id).is_some();
                Ok(StoreReply::Deleted { existed })
            }
            StoreOp::ListByOwner(owner) => Ok(StoreReply::Listed(
                self.records
                    .values()
                    .filter(|r| r.owner == owner)
                    .map(KeyRecord::info)
                    .collect(),
            )),
            StoreOp::Derive { id, label, context } => {
                check_id(&id)?;
                Ok(match self.records.get(&id) {
                    None => StoreReply::NotFound,
                    Some(r) => StoreReply::Derived {
                        key: r.secret.derive(&label, &context),
                        from: r.info(),
                    },
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use alloc::format;
    use alloc::string::ToString;
    use alloc::vec;

    use super::*;
    use crate::keys::{km, Ke, KM_LABEL};

    fn rec(id: &str, owner: &str, byte: u8) -> KeyRecord {
        KeyRecord::new(
            id,
            KeyKind::Ke,
            owner,
            UnixTime(1_000),
            KeySecret::from_key(&[byte; 32]),
        )
        .unwrap()
    }

    #[test]
    fn kind_codes_are_stable() {
        let all = [
            (KeyKind::Kpm, 1),
            (KeyKind::Ke, 2),
            (KeyKind::Km, 3),
            (KeyKind::Kc, 4),
            (KeyKind::Kpsa, 5),
            (KeyKind::GbaSubscriber, 6),
            (KeyKind::GbaBootstrapping, 7),
        ];
        for (kind, code) in all {
            assert_eq!(kind.code(), code);
            assert_eq!(KeyKind::from_code(code), Some(kind));
        }
        assert_eq!(KeyKind::from_code(0), None);
        assert_eq!(KeyKind::from_code(8), None);
    }

    #[test]
    fn put_get_overwrite_delete() {
        let mut s = MemoryKeyStore::new();
        let id = "00112233445566778899AABBCCDDEEFF@mef.example";
        assert_eq!(
            s.execute(StoreOp::Get(id.into())).unwrap(),
            StoreReply::NotFound
        );
        assert_eq!(
            s.execute(StoreOp::Put(rec(id, "C-enrolee", 1))).unwrap(),
            StoreReply::Stored { replaced: false }
        );
        let r2 = rec(id, "C-other", 2).with_targets(["CSE-B"]).unwrap();
        assert_eq!(
            s.execute(StoreOp::Put(r2.clone())).unwrap(),
            StoreReply::Stored { replaced: true }
        );
        assert_eq!(
            s.execute(StoreOp::Get(id.into())).unwrap(),
            StoreReply::Found(r2)
        );
        assert_eq!(
            s.execute(StoreOp::Delete(id.into())).unwrap(),
            StoreReply::Deleted { existed: true }
        );
        assert_eq!(
            s.execute(StoreOp::Delete(id.into())).unwrap(),
            StoreReply::Deleted { existed: false }
        );
        assert!(s.is_empty());
    }

    #[test]
    fn ids_are_byte_exact() {
        let mut s = MemoryKeyStore::new();
        s.execute(StoreOp::Put(rec("abc@MEF.example", "o", 1)))
            .unwrap();
        assert_eq!(
            s.execute(StoreOp::Get("abc@mef.example".into())).unwrap(),
            StoreReply::NotFound
        );
    }

    #[test]
    fn store_id_folds_like_key_id_equality() {
        let a = KeyId::parse(IdKind::Km, "km-1@MAF.Example").unwrap();
        let b = KeyId::parse(IdKind::Km, "KM-1@maf.example").unwrap();
        assert_eq!(a, b);
        assert_eq!(store_id(&a), store_id(&b));
        assert_eq!(store_id(&a), "KM-1@maf.example");
        // Kpsa relative parts are case-sensitive: kept as given.
        let c = KeyId::parse(IdKind::Kpsa, "ab@Issuer.Example").unwrap();
        assert_eq!(store_id(&c), "ab@issuer.example");
        let ke = KeyId::parse(IdKind::Ke, "00112233445566778899aabbccddeeff@mef.example").unwrap();
        assert_eq!(store_id(&ke), ke.as_str());
    }

    #[test]
    fn expiry_is_the_callers_business() {
        let mut s = MemoryKeyStore::new();
        s.execute(StoreOp::Put(rec("x@y.example", "o", 1))).unwrap();
        // Long expired, still returned.
        let StoreReply::Found(r) = s.execute(StoreOp::Get("x@y.example".into())).unwrap() else {
            panic!("missing")
        };
        assert!(!r.is_expired(UnixTime(1_000)));
        assert!(r.is_expired(UnixTime(1_001)));
    }

    #[test]
    fn list_by_owner_is_ordered_and_secret_free() {
        let mut s = MemoryKeyStore::new();
        for (id, owner) in [
            ("b@x.example", "o1"),
            ("a@x.example", "o1"),
            ("c@x.example", "o2"),
        ] {
            s.execute(StoreOp::Put(rec(id, owner, 3))).unwrap();
        }
        let StoreReply::Listed(l) = s.execute(StoreOp::ListByOwner("o1".into())).unwrap() else {
            panic!("not listed")
        };
        let ids: Vec<_> = l.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["a@x.example", "b@x.example"]);
        assert_eq!(
            s.execute(StoreOp::ListByOwner("nobody".into())).unwrap(),
            StoreReply::Listed(vec![])
        );
    }

    #[test]
    fn derive_matches_km() {
        let mut s = MemoryKeyStore::new();
        let ke = Ke::new([7; 32]);
        let id = "00112233445566778899AABBCCDDEEFF@mef.example";
        let r = KeyRecord::new(
            id,
            KeyKind::Ke,
            "C-enrolee",
            UnixTime(5),
            KeySecret::from_key(ke.expose()),
        )
        .unwrap();
        s.execute(StoreOp::Put(r)).unwrap();
        let reply = s
            .execute(StoreOp::Derive {
                id: id.into(),
                label: KM_LABEL.to_vec(),
                context: b"maf.example".to_vec(),
            })
            .unwrap();
        let StoreReply::Derived { key, from } = reply else {
            panic!("not derived")
        };
        assert_eq!(key.expose(), km(&ke, "maf.example").expose());
        assert_eq!(from.kind, KeyKind::Ke);
        assert_eq!(
            s.execute(StoreOp::Derive {
                id: "none@mef.example".into(),
                label: vec![],
                context: vec![]
            })
            .unwrap(),
            StoreReply::NotFound
        );
    }

    #[test]
    fn limits_are_checked_on_put() {
        let mut s = MemoryKeyStore::new();
        assert_eq!(
            KeySecret::new(&[]).unwrap_err(),
            RecordError::BadSecretLength
        );
        assert_eq!(
            KeySecret::new(&[0; MAX_SECRET_LEN + 1]).unwrap_err(),
            RecordError::BadSecretLength
        );
        let mut r = rec("x@y.example", "o", 1);
        r.id = "x".repeat(MAX_ID_LEN + 1);
        assert_eq!(
            s.execute(StoreOp::Put(r.clone())).unwrap_err(),
            StoreError::InvalidRecord(RecordError::IdTooLong)
        );
        r.id = String::new();
        assert_eq!(
            s.execute(StoreOp::Put(r.clone())).unwrap_err(),
            StoreError::InvalidRecord(RecordError::EmptyId)
        );
        r.id = "x@y.example".into();
        r.targets = (0..=MAX_TARGETS).map(|i| format!("t{i}")).collect();
        assert_eq!(r.validate(), Err(RecordError::TooManyTargets));
        assert!(s.is_empty());
        assert_eq!(
            s.execute(StoreOp::Get(String::new())).unwrap_err(),
            StoreError::InvalidRecord(RecordError::EmptyId)
        );
    }

    #[test]
    fn debug_redacts_the_secret() {
        let r = rec("x@y.example", "owner", 0xAB);
        let d = format!("{r:?}");
        assert!(d.contains("x@y.example") && d.contains("owner"));
        assert!(d.contains("redacted"));
        assert!(!d.to_lowercase().contains("171") && !d.to_lowercase().contains("ab, "));
        assert_eq!(r.secret.to_key32().unwrap().expose(), &[0xAB; 32]);
        assert!(KeySecret::new(&[1; 16]).unwrap().to_key32().is_none());
        assert_eq!(
            StoreError::Unwrap { id: "k".into() }.to_string(),
            "wrapped key \"k\" failed authentication"
        );
    }
}
