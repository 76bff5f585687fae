//! The TLS 1.2 PRF with SHA-256 (RFC 5246 section 5): `P_SHA256(secret, label || seed)`.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroize;

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA-256 of the concatenation of `parts` under `key`.
#[must_use]
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length, so new_from_slice cannot fail.
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// Fills `out` with `PRF(secret, label, seed_parts[0] || seed_parts[1] || ...)`.
pub fn prf(secret: &[u8], label: &[u8], seed_parts: &[&[u8]], out: &mut [u8]) {
    let keyed = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
    // A(1) = HMAC(secret, label || seed)
    let mut a: [u8; 32] = {
        let mut m = keyed.clone();
        m.update(label);
        for p in seed_parts {
            m.update(p);
        }
        m.finalize().into_bytes().into()
    };
    let mut filled = 0;
    while filled < out.len() {
        let mut m = keyed.clone();
        m.update(&a);
        m.update(label);
        for p in seed_parts {
            m.update(p);
        }
        let mut block: [u8; 32] = m.finalize().into_bytes().into();
        let n = core::cmp::min(32, out.len() - filled);
        out[filled..filled + n].copy_from_slice(&block[..n]);
        block.zeroize();
        filled += n;
        if filled < out.len() {
            let mut m = keyed.clone();
            m.update(&a);
            a = m.finalize().into_bytes().into();
        }
    }
    a.zeroize();
}
