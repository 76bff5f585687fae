//! oneM2M TS-0003 key derivations and key identifiers, as pure functions over bytes.
//!
//! Nothing here touches a [`Session`](crate::Session): the (D)TLS exporter output is taken as
//! 48 plain bytes, so the same functions serve the Enrolee, the MEF, the MAF and the tests.
//!
//! | what | function / type | draft clause | published TS-0003 V3.18.0 | decision |
//! |---|---|---|---|---|
//! | exporter labels, 48 bytes, no context | [`BOOTSTRAP_EXPORTER_LABEL`], [`CONNECTION_EXPORTER_LABEL`], [`EXPORTER_LEN`] | 8.3.2.1 a), 8.3.2.2 / 9.3 | 10.3.1 | D1 |
//! | split `out[0..16]` id, `out[16..48]` key | [`split_exporter`] | 9.3 | 10.3.1 | D1 |
//! | Ke and KeID | [`enrolment_key`] | 8.3.2.1 a) b), 8.3.2.2 / 9.1 | 10.3.1, 10.3.4 | D1, D2 |
//! | Kc and the MAF key identifier | [`connection_key`] | 8.2.3.1 | 10.3.1, 10.3.5 | D1, D2, D4, D5 |
//! | Km from Ke and MAF-ID | [`km`] | 8.3.1.2 / 9.4 | 10.3.2 | D6 |
//! | Kpsa from Ke and Enrolee-B-ID | [`kpsa`] | (none) | 10.3.3 | D0 |
//! | `relative@FQDN` identifiers | [`KeyId`], [`IdKind`] | 9.1 | 10.3.4, 10.3.5, 10.5, 10.6 | D2, D3, D4 |
//!
//! `docs/spec-map.md` carries the same table with the reasons for each decision.
//!
//! Secrets ([`Ke`], [`Kc`], [`Km`], [`Kpsa`], [`Key32`]) are zeroized on drop, compare in constant
//! time and print as `<redacted>`. Identifiers ([`KeyId`], [`RelativeId`]) travel in the clear as
//! `psk_identity` and are ordinary values.

mod derive;
mod error;
mod id;
mod table;
mod types;

pub use derive::{connection_key, enrolment_key, km, kpsa, nfkc, split_exporter};
pub use error::KeyError;
pub use id::{IdKind, KeyId, RelativeId, MAX_FQDN_LEN, MAX_KEY_ID_LEN, MAX_RELATIVE_LEN};
pub use table::KeyIdTable;
pub use types::{Kc, Ke, Key32, Km, Kpsa, KEY_LEN};

/// RFC 5705 label for the Enrolment Key Ke and RelativeKeID, exported from the Enrolee-MEF
/// (D)TLS session of the PSK- and certificate-based Security Bootstrap (draft 8.3.2.1 a), 8.3.2.2
/// and 9.3; published TS-0003 10.3.1). Used with no context (D1).
pub const BOOTSTRAP_EXPORTER_LABEL: &[u8] = b"EXPORTER-oneM2M-Bootstrap";

/// RFC 5705 label for the M2M Secure Connection Key Kc and KcID, exported from the
/// Entity A-MAF (D)TLS session of the MAF-based Security Association Establishment (draft 8.2.3.1;
/// published TS-0003 10.3.1, used by the MAF Key Registration of 8.8.2.7). Used with no context
/// (D1).
pub const CONNECTION_EXPORTER_LABEL: &[u8] = b"EXPORTER-oneM2M-Connection";

/// Bytes exported under either oneM2M label: a 16-byte relative identifier followed by a
/// 32-byte key (published TS-0003 10.3.1; D1).
pub const EXPORTER_LEN: usize = 48;

/// Bytes of the relative identifier at the start of the exporter output (published TS-0003
/// 10.3.1: "the 16 most significant bytes"; D1).
pub const RELATIVE_ID_LEN: usize = 16;

/// HMAC label of the Master Credential derivation Km = HMAC-SHA-256(Ke, label || MAF-ID)
/// (draft 9.4; published TS-0003 10.3.2; D6).
pub const KM_LABEL: &[u8] = b"oneM2M Enrolment Key to Master Credential derivation";

/// HMAC label of the Provisioned Secure Connection Key derivation
/// Kpsa = HMAC-SHA-256(Ke, label || Enrolee-B-ID) (published TS-0003 10.3.3; the draft has no
/// such clause, so the published text fills it, D0).
pub const KPSA_LABEL: &[u8] =
    b"oneM2M Enrolment Key to Provisioned Secure Connection Key derivation";
