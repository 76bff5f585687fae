//! Loading the JSON data files under `data/` (shared by the test binaries).

#![allow(dead_code)] // each test binary uses a different part of this module

use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

/// The path of `data/<rel>` in this crate.
pub(crate) fn data_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join(rel)
}

/// Parses `data/<rel>` as `T`; panics with the file name on any error.
pub(crate) fn load<T: DeserializeOwned>(rel: &str) -> T {
    let path = data_path(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every data file, relative to `data/`.
pub(crate) const DATA_FILES: &[&str] = &[
    "hmac-sha256/rfc4231.json",
    "aes-ccm/nist_sp800_38c.json",
    "aes-ccm/wycheproof_aes_ccm_k128_n96.json",
    "prf/tls12_prf_sha256.json",
    "exporter/openssl.json",
    "ts0003/kdf.json",
    "gba/milenage.json",
    "gba/kdf.json",
];

/// A hex string in the JSON, decoded.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Hex(pub(crate) Vec<u8>);

impl<'de> Deserialize<'de> for Hex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(&s).map(Hex).map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Debug for Hex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(&self.0))
    }
}

/// `data/hmac-sha256/*.json`.
#[derive(Deserialize)]
pub(crate) struct HmacFile {
    pub(crate) tests: Vec<HmacTest>,
}

/// One HMAC case; `mac` may be a truncated prefix.
#[derive(Deserialize)]
pub(crate) struct HmacTest {
    pub(crate) name: String,
    pub(crate) key: Hex,
    pub(crate) data: Hex,
    pub(crate) mac: Hex,
}

/// `data/aes-ccm/nist_sp800_38c.json`.
#[derive(Deserialize)]
pub(crate) struct CcmFile {
    pub(crate) tests: Vec<CcmTest>,
}

/// One valid CCM case.
#[derive(Deserialize)]
pub(crate) struct CcmTest {
    pub(crate) name: String,
    pub(crate) key: Hex,
    pub(crate) nonce: Hex,
    pub(crate) aad: Hex,
    pub(crate) pt: Hex,
    pub(crate) ct: Hex,
    pub(crate) tag: Hex,
}

/// `data/aes-ccm/wycheproof_*.json`: Wycheproof's own layout, less what we do not read.
#[derive(Deserialize)]
pub(crate) struct WycheproofFile {
    #[serde(rename = "numberOfTests")]
    pub(crate) number_of_tests: usize,
    #[serde(rename = "testGroups")]
    pub(crate) groups: Vec<WycheproofGroup>,
}

/// A Wycheproof AEAD test group.
#[derive(Deserialize)]
pub(crate) struct WycheproofGroup {
    #[serde(rename = "keySize")]
    pub(crate) key_size: usize,
    #[serde(rename = "ivSize")]
    pub(crate) iv_size: usize,
    #[serde(rename = "tagSize")]
    pub(crate) tag_size: usize,
    pub(crate) tests: Vec<WycheproofTest>,
}

/// A Wycheproof AEAD test.
#[derive(Deserialize)]
pub(crate) struct WycheproofTest {
    #[serde(rename = "tcId")]
    pub(crate) tc_id: usize,
    pub(crate) comment: String,
    pub(crate) key: Hex,
    pub(crate) iv: Hex,
    pub(crate) aad: Hex,
    pub(crate) msg: Hex,
    pub(crate) ct: Hex,
    pub(crate) tag: Hex,
    /// "valid", "invalid" or "acceptable".
    pub(crate) result: String,
    pub(crate) flags: Vec<String>,
}

/// `data/prf/*.json`.
#[derive(Deserialize)]
pub(crate) struct PrfFile {
    pub(crate) tests: Vec<PrfTest>,
}

/// One PRF case; `label` is ASCII.
#[derive(Deserialize)]
pub(crate) struct PrfTest {
    pub(crate) name: String,
    pub(crate) secret: Hex,
    pub(crate) label: String,
    pub(crate) seed: Hex,
    pub(crate) output: Hex,
}

/// `data/exporter/*.json`.
#[derive(Deserialize)]
pub(crate) struct ExporterFile {
    pub(crate) sessions: Vec<ExporterSession>,
}

/// One captured TLS 1.2 session.
#[derive(Deserialize)]
pub(crate) struct ExporterSession {
    pub(crate) name: String,
    pub(crate) client_random: Hex,
    pub(crate) server_random: Hex,
    pub(crate) master_secret: Hex,
    pub(crate) exports: Vec<Export>,
}

/// One RFC 5705 export: `context` is `None` for "no context", `Some(empty)` for an empty one.
#[derive(Deserialize)]
pub(crate) struct Export {
    pub(crate) label: String,
    pub(crate) context: Option<Hex>,
    pub(crate) length: usize,
    pub(crate) output: Hex,
}

/// `data/ts0003/kdf.json`: TS-0003 key derivations and key identifiers.
#[derive(Deserialize)]
pub(crate) struct Ts0003File {
    pub(crate) km: Vec<KmTest>,
    pub(crate) kpsa: Vec<KpsaTest>,
    pub(crate) exporter: Vec<Ts0003ExporterTest>,
    pub(crate) key_id_cases: Vec<KeyIdTest>,
}

/// Km = HMAC-SHA-256(Ke, label || UTF-8(NFKC(MAF-ID))).
#[derive(Deserialize)]
pub(crate) struct KmTest {
    pub(crate) name: String,
    pub(crate) ke: Hex,
    pub(crate) maf_id: String,
    pub(crate) maf_id_nfkc_utf8: Hex,
    pub(crate) km: Hex,
}

/// Kpsa = HMAC-SHA-256(Ke, label || UTF-8(NFKC(Enrolee-B-ID))).
#[derive(Deserialize)]
pub(crate) struct KpsaTest {
    pub(crate) name: String,
    pub(crate) ke: Hex,
    pub(crate) enrolee_b_id: String,
    pub(crate) enrolee_b_id_nfkc_utf8: Hex,
    pub(crate) kpsa: Hex,
}

/// A 48-byte oneM2M export (no context) from a master secret, its split and identifier, and
/// optionally the Km derived from its key.
#[derive(Deserialize)]
pub(crate) struct Ts0003ExporterTest {
    pub(crate) name: String,
    pub(crate) label: String,
    pub(crate) master_secret: Hex,
    pub(crate) client_random: Hex,
    pub(crate) server_random: Hex,
    pub(crate) exporter: Hex,
    pub(crate) fqdn: String,
    pub(crate) relative_id: Hex,
    pub(crate) key: Hex,
    pub(crate) key_id: String,
    pub(crate) maf_id: Option<String>,
    pub(crate) km: Option<Hex>,
}

/// A key identifier: `canonical` is `None` when it must be refused.
#[derive(Deserialize)]
pub(crate) struct KeyIdTest {
    pub(crate) kind: String,
    pub(crate) input: String,
    pub(crate) canonical: Option<String>,
}
