//! 3GPP Generic Bootstrapping Architecture (TS 33.220) for the GBA-based oneM2M frameworks
//! (seed 8.1.2.2, 8.2.3.2, 8.3.3.1; decisions D10 and spec-notes section 6).
//!
//! ```text
//!  UE (USIM: K, OPc, SQN) ──Ub: HTTP Digest AKA (RFC 3310)──▶ BSF (subscriber store, Milenage)
//!      Ks = CK || IK, B-TID = base64(RAND)@BSF-FQDN            Ks, B-TID, lifetime
//!  UE ──Ua: (D)TLS-PSK, psk_identity = [prefix ";"] B-TID──▶ NAF ──Zn: B-TID, NAF_Id──▶ BSF
//!      psk = Ks_NAF (GBA_ME) / Ks_ext_NAF / Ks_int_NAF (GBA_U)         Ks_(ext/int)_NAF
//! ```
//!
//! Everything here is sans-IO and pure: Milenage and the USIM model ([`milenage`], [`usim`]),
//! the TS 33.220 Annex B key derivation ([`kdf`]), the HTTP Digest AKA message logic of Ub
//! ([`digest`]) and the Zn message codec (`zn`, feature `binding`: JSON over the MEF/MAF wire
//! binding). Secrets are zeroized on drop and never shown by `Debug`.

pub mod digest;
pub mod kdf;
pub mod milenage;
pub mod usim;
#[cfg(feature = "binding")]
pub mod zn;

use zeroize::{Zeroize, ZeroizeOnDrop};

/// One authentication vector of the home network (TS 33.102 6.3.2): RAND, AUTN = SQN ⊕ AK ||
/// AMF || MAC-A, the expected response XRES and the keys CK, IK. Zeroized on drop; `Debug`
/// shows only RAND.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct AuthVector {
    /// The random challenge.
    pub rand: [u8; 16],
    /// The network authentication token.
    pub autn: [u8; 16],
    /// The expected response (Milenage f2: 8 bytes).
    pub xres: [u8; 8],
    /// The cipher key (f3).
    pub ck: [u8; 16],
    /// The integrity key (f4).
    pub ik: [u8; 16],
}

impl core::fmt::Debug for AuthVector {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AuthVector")
            .field("rand", &self.rand)
            .finish_non_exhaustive()
    }
}

impl AuthVector {
    /// Ks = CK || IK (TS 33.220 4.5.2).
    #[must_use]
    pub fn ks(&self) -> Ks {
        let mut k = [0u8; 32];
        k[..16].copy_from_slice(&self.ck);
        k[16..].copy_from_slice(&self.ik);
        Ks(k)
    }
}

/// The bootstrapped key Ks = CK || IK. Zeroized on drop; `Debug` is redacted.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct Ks(pub [u8; 32]);

impl core::fmt::Debug for Ks {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Ks(<redacted>)")
    }
}
