//! The TLS 1.2 key schedule for our suites: PSK premaster secret (RFC 4279 section 2) or the
//! ECDH shared secret (RFC 8422 5.10), master
//! secret (RFC 5246 8.1) or extended master secret (RFC 7627 4), key expansion (RFC 5246 6.3),
//! Finished (RFC 5246 7.4.9) and the keying-material exporter (RFC 5705 section 4).

use alloc::vec;

use zeroize::{Zeroize, Zeroizing};

use crate::crypto::aead::{CcmKey, TagLen, KEY_LEN};
use crate::crypto::prf::prf;
use crate::error::ApiMisuse;
use crate::secret::{Psk, SecretArray, SecretVec};

/// Bytes of the master secret.
pub const MASTER_SECRET_LEN: usize = 48;
/// Bytes of Finished.verify_data.
pub const VERIFY_DATA_LEN: usize = 12;
/// Bytes of the implicit nonce part (client_write_IV / server_write_IV) for CCM (RFC 6655 3).
pub const FIXED_IV_LEN: usize = 4;

/// The labels TLS itself uses, which the exporter refuses (RFC 5705 4).
const RESERVED_LABELS: &[&[u8]] = &[
    b"client finished",
    b"server finished",
    b"master secret",
    b"key expansion",
    b"extended master secret",
];

/// The master secret.
pub type MasterSecret = SecretArray<MASTER_SECRET_LEN>;

/// premaster = uint16 N || N zero bytes || uint16 N || psk  (RFC 4279 section 2).
#[must_use]
pub fn psk_premaster_secret(psk: &Psk) -> SecretVec {
    let k = psk.expose();
    let n = u16::try_from(k.len()).expect("Psk::new bounds the length");
    let mut pms = Zeroizing::new(vec![0u8; 4 + 2 * k.len()]);
    pms[..2].copy_from_slice(&n.to_be_bytes());
    pms[2 + k.len()..4 + k.len()].copy_from_slice(&n.to_be_bytes());
    pms[4 + k.len()..].copy_from_slice(k);
    pms
}

/// The master secret: with RFC 7627 when `session_hash` is given, else RFC 5246 8.1.
#[must_use]
pub fn master_secret(
    premaster: &[u8],
    client_random: &[u8; 32],
    server_random: &[u8; 32],
    session_hash: Option<&[u8; 32]>,
) -> MasterSecret {
    let mut ms = [0u8; MASTER_SECRET_LEN];
    match session_hash {
        Some(h) => prf(premaster, b"extended master secret", &[h], &mut ms),
        None => prf(
            premaster,
            b"master secret",
            &[client_random, server_random],
            &mut ms,
        ),
    }
    SecretArray(ms)
}

/// One direction's record protection keys.
#[derive(Clone)]
pub struct DirectionKeys {
    /// The AEAD key, expanded.
    pub key: CcmKey,
    /// The implicit 4-byte nonce salt.
    pub salt: [u8; FIXED_IV_LEN],
}

impl core::fmt::Debug for DirectionKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("DirectionKeys(<redacted>)")
    }
}

impl Drop for DirectionKeys {
    fn drop(&mut self) {
        self.salt.zeroize();
    }
}

/// The key block split into (client write, server write) keys (RFC 5246 6.3; no MAC keys for AEAD).
#[must_use]
pub fn key_expansion(
    ms: &MasterSecret,
    client_random: &[u8; 32],
    server_random: &[u8; 32],
    tag: TagLen,
) -> (DirectionKeys, DirectionKeys) {
    let mut block = [0u8; 2 * KEY_LEN + 2 * FIXED_IV_LEN];
    prf(
        ms.expose(),
        b"key expansion",
        &[server_random, client_random],
        &mut block,
    );
    let mut ck = [0u8; KEY_LEN];
    let mut sk = [0u8; KEY_LEN];
    let mut civ = [0u8; FIXED_IV_LEN];
    let mut siv = [0u8; FIXED_IV_LEN];
    ck.copy_from_slice(&block[..16]);
    sk.copy_from_slice(&block[16..32]);
    civ.copy_from_slice(&block[32..36]);
    siv.copy_from_slice(&block[36..40]);
    let out = (
        DirectionKeys {
            key: CcmKey::new(&ck, tag),
            salt: civ,
        },
        DirectionKeys {
            key: CcmKey::new(&sk, tag),
            salt: siv,
        },
    );
    block.zeroize();
    ck.zeroize();
    sk.zeroize();
    out
}

/// The whole PSK key schedule: premaster (RFC 4279 2), master secret (extended when
/// `session_hash` is given, RFC 7627) and the (client write, server write) keys.
#[must_use]
pub fn psk_session_keys(
    psk: &Psk,
    client_random: &[u8; 32],
    server_random: &[u8; 32],
    session_hash: Option<&[u8; 32]>,
    tag: TagLen,
) -> (MasterSecret, DirectionKeys, DirectionKeys) {
    let pms = psk_premaster_secret(psk);
    session_keys(&pms, client_random, server_random, session_hash, tag)
}

/// The key schedule from any premaster secret (the ECDH x-coordinate for ECDHE, RFC 8422
/// 5.10): master secret (extended when `session_hash` is given) and the (client write, server
/// write) keys.
#[must_use]
pub fn session_keys(
    premaster: &[u8],
    client_random: &[u8; 32],
    server_random: &[u8; 32],
    session_hash: Option<&[u8; 32]>,
    tag: TagLen,
) -> (MasterSecret, DirectionKeys, DirectionKeys) {
    let ms = master_secret(premaster, client_random, server_random, session_hash);
    let (client_keys, server_keys) = key_expansion(&ms, client_random, server_random, tag);
    (ms, client_keys, server_keys)
}

/// Finished.verify_data for the client (`client = true`) or the server over `handshake_hash`.
#[must_use]
pub fn verify_data(
    ms: &MasterSecret,
    client: bool,
    handshake_hash: &[u8; 32],
) -> [u8; VERIFY_DATA_LEN] {
    let label: &[u8] = if client {
        b"client finished"
    } else {
        b"server finished"
    };
    let mut out = [0u8; VERIFY_DATA_LEN];
    prf(ms.expose(), label, &[handshake_hash], &mut out);
    out
}

/// RFC 5705 keying material: `PRF(ms, label, client_random || server_random [|| uint16 len || context])`.
///
/// `None` context and an empty context differ (the empty one still adds its 2-byte length).
pub fn export(
    ms: &MasterSecret,
    client_random: &[u8; 32],
    server_random: &[u8; 32],
    label: &[u8],
    context: Option<&[u8]>,
    out: &mut [u8],
) -> Result<(), ApiMisuse> {
    if RESERVED_LABELS.contains(&label) {
        return Err(ApiMisuse::ReservedExporterLabel);
    }
    match context {
        None => prf(ms.expose(), label, &[client_random, server_random], out),
        Some(ctx) => {
            let len = u16::try_from(ctx.len()).map_err(|_| ApiMisuse::ExporterTooLong)?;
            prf(
                ms.expose(),
                label,
                &[client_random, server_random, &len.to_be_bytes(), ctx],
                out,
            );
        }
    }
    Ok(())
}
