//! P-256 for the ECDHE-ECDSA suites: ephemeral ECDH keys drawn from the session's DRBG,
//! ECDSA-SHA256 signatures (RFC 6979, deterministic) and their verification, all in the TLS
//! encodings (uncompressed ECPoint, DER ECDSA-Sig-Value).

use p256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{DerSignature, Signature, VerifyingKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{PublicKey, SecretKey};
use zeroize::Zeroizing;

use super::rng::Drbg;
use crate::cert::SigningKey;

/// Bytes of an uncompressed P-256 point (0x04 || x || y).
pub const POINT_LEN: usize = 65;

/// An ephemeral ECDH key. The scalar is zeroized on drop; `Debug` is redacted.
pub struct EphemeralKey(SecretKey);

impl core::fmt::Debug for EphemeralKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("EphemeralKey(<redacted>)")
    }
}

impl EphemeralKey {
    /// A fresh key from `rng`: 32-byte candidates until one is a valid scalar (0 < k < n;
    /// a rejection happens with probability about 2^-32).
    pub fn generate(rng: &mut Drbg) -> Self {
        loop {
            let candidate = Zeroizing::new(rng.array::<32>());
            if let Ok(k) = SecretKey::from_bytes((&*candidate).into()) {
                return Self(k);
            }
        }
    }

    /// The public point, uncompressed.
    #[must_use]
    pub fn public_point(&self) -> [u8; POINT_LEN] {
        let mut out = [0u8; POINT_LEN];
        out.copy_from_slice(self.0.public_key().to_encoded_point(false).as_bytes());
        out
    }

    /// The ECDH premaster secret with the peer's point: the x-coordinate (RFC 8422 5.10).
    /// `None` when the point is not an uncompressed point on the curve.
    #[must_use]
    pub fn agree(&self, peer_point: &[u8]) -> Option<Zeroizing<[u8; 32]>> {
        let peer = parse_point(peer_point)?;
        let shared = p256::ecdh::diffie_hellman(self.0.to_nonzero_scalar(), peer.as_affine());
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(shared.raw_secret_bytes());
        Some(out)
    }
}

/// An uncompressed point on P-256 (not the identity); compressed or hybrid forms are refused.
#[must_use]
pub fn parse_point(point: &[u8]) -> Option<PublicKey> {
    if point.len() != POINT_LEN || point[0] != 0x04 {
        return None;
    }
    PublicKey::from_sec1_bytes(point).ok()
}

/// ECDSA-SHA256 over `message`, DER encoded.
#[must_use]
pub fn sign(key: &SigningKey, message: &[u8]) -> DerSignature {
    let sig: Signature = key.ecdsa().sign(message);
    sig.to_der()
}

/// ECDSA over an already computed SHA-256 `digest` (CertificateVerify), DER encoded.
pub fn sign_digest(key: &SigningKey, digest: &[u8; 32]) -> Option<DerSignature> {
    let sig: Signature = key.ecdsa().sign_prehash(digest).ok()?;
    Some(sig.to_der())
}

/// Whether `der_sig` is a valid ECDSA-SHA256 signature of `message` by `key`.
#[must_use]
pub fn verify(key: &VerifyingKey, message: &[u8], der_sig: &[u8]) -> bool {
    Signature::from_der(der_sig).is_ok_and(|s| key.verify(message, &s).is_ok())
}

/// Whether `der_sig` is a valid ECDSA signature of the SHA-256 `digest` by `key`.
#[must_use]
pub fn verify_digest(key: &VerifyingKey, digest: &[u8; 32], der_sig: &[u8]) -> bool {
    Signature::from_der(der_sig).is_ok_and(|s| key.verify_prehash(digest, &s).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecdh_agrees_and_refuses_bad_points() {
        let mut r1 = Drbg::new([1; 32]);
        let mut r2 = Drbg::new([2; 32]);
        let a = EphemeralKey::generate(&mut r1);
        let b = EphemeralKey::generate(&mut r2);
        let ab = a.agree(&b.public_point()).unwrap();
        let ba = b.agree(&a.public_point()).unwrap();
        assert_eq!(*ab, *ba);
        let mut bad = b.public_point();
        bad[64] ^= 1;
        assert!(a.agree(&bad).is_none(), "off the curve");
        assert!(a.agree(&bad[..33]).is_none(), "compressed");
        assert!(a.agree(&[0u8; 65]).is_none());
        assert!(a.agree(&[]).is_none());
    }

    #[test]
    fn signatures_verify_and_tampering_fails() {
        let k = SigningKey::from_bytes(&[5; 32]).unwrap();
        let s = sign(&k, b"params");
        assert!(verify(&k.verifying_key(), b"params", s.as_bytes()));
        assert!(!verify(&k.verifying_key(), b"paramz", s.as_bytes()));
        let d = [9u8; 32];
        let s = sign_digest(&k, &d).unwrap();
        assert!(verify_digest(&k.verifying_key(), &d, s.as_bytes()));
        let mut t = s.as_bytes().to_vec();
        let n = t.len();
        t[n - 1] ^= 1;
        assert!(!verify_digest(&k.verifying_key(), &d, &t));
        assert!(!verify_digest(&k.verifying_key(), &d, &[]));
    }
}
