//! A simulated USIM (TS 33.102 6.3.3, Annex C) and the home network side of UMTS AKA
//! (authentication vectors, re-synchronisation), on [`Milenage`].
//!
//! # Sequence number profile (TS 33.102 Annex C.1-C.3)
//!
//! SQN (48 bits) = SEQ || IND, with IND the low `ind_bits` bits (default 5, i.e. an array of
//! a = 32 entries, Annex C.3.2's example). The USIM keeps the array SEQ_MS(0..a) of the highest
//! SEQ accepted per IND and accepts SQN = SEQ || IND iff
//!
//! * SEQ > SEQ_MS(IND) (freshness per array entry, C.2.2), and
//! * if a Δ is configured, SEQ - SEQ_MS ≤ Δ, SEQ_MS being the highest SEQ accepted in any entry
//!   (the "not too far ahead" limit of C.2.2; default Δ = 2^28, Annex C.3.4's example).
//!
//! The optional age limit L of C.2.2 is not modelled. On a failed check the USIM answers a
//! synchronisation failure with AUTS = (SQN_MS ⊕ AK*) || MAC-S, where SQN_MS = SEQ_MS || IND of
//! the entry holding it, AK* = f5*(RAND) and MAC-S = f1*(SQN_MS, RAND, AMF = 0x0000) (6.3.3,
//! 6.3.5). The home network recovers SQN_MS with [`resync`] (it checks MAC-S) and continues with
//! SEQ_MS + 1.
//!
//! AMF (Annex H): bit 0 (the most significant bit) is the "AMF separation bit"; the USIM can be
//! told to require it clear or set ([`AmfPolicy`]); by default any AMF is accepted, as a UMTS
//! USIM does.

use alloc::vec;
use alloc::vec::Vec;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::milenage::Milenage;
use super::{AuthVector, Ks};

/// The largest 48-bit SQN.
pub const SQN_MAX: u64 = (1 << 48) - 1;

/// A 48-bit SQN as a number.
#[must_use]
pub fn sqn_to_u64(sqn: &[u8; 6]) -> u64 {
    sqn.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
}

/// A number (its low 48 bits) as a 6-byte SQN.
#[must_use]
pub fn sqn_from_u64(v: u64) -> [u8; 6] {
    let b = v.to_be_bytes();
    let mut out = [0u8; 6];
    out.copy_from_slice(&b[2..8]);
    out
}

/// What the USIM requires of the AMF separation bit (TS 33.102 Annex H).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AmfPolicy {
    /// Any AMF (UMTS USIM behaviour).
    #[default]
    Any,
    /// The separation bit must be 0 (non-E-UTRAN vectors, e.g. for GBA over UTRAN AKA).
    SeparationBitClear,
    /// The separation bit must be 1 (E-UTRAN vectors, TS 33.401 6.1.1).
    SeparationBitSet,
}

/// The SQN management profile of a [`Usim`] (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SqnProfile {
    /// Bits of IND (0..=8): the array holds 2^ind_bits entries.
    pub ind_bits: u8,
    /// The largest accepted step SEQ - SEQ_MS; `None` for no limit.
    pub delta: Option<u64>,
}

impl Default for SqnProfile {
    fn default() -> Self {
        Self {
            ind_bits: 5,
            delta: Some(1 << 28),
        }
    }
}

impl SqnProfile {
    /// SQN = SEQ || IND; `None` if SEQ or IND does not fit.
    #[must_use]
    pub fn sqn(&self, seq: u64, ind: u64) -> Option<[u8; 6]> {
        let ib = u32::from(self.ind_bits);
        if ib > 8 || ind >= (1 << ib) || seq > (SQN_MAX >> ib) {
            return None;
        }
        Some(sqn_from_u64((seq << ib) | ind))
    }

    /// (SEQ, IND) of `sqn`.
    #[must_use]
    pub fn split(&self, sqn: &[u8; 6]) -> (u64, u64) {
        let ib = u32::from(self.ind_bits.min(8));
        let v = sqn_to_u64(sqn);
        (v >> ib, v & ((1 << ib) - 1))
    }

    /// The SQN the home network uses after learning SQN_MS: SEQ_MS + 1 with the given IND.
    #[must_use]
    pub fn next_after(&self, sqn_ms: &[u8; 6], ind: u64) -> Option<[u8; 6]> {
        let (seq, _) = self.split(sqn_ms);
        self.sqn(seq.checked_add(1)?, ind)
    }
}

/// The USIM's answer to a successful authentication. Zeroized on drop; `Debug` is redacted.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct UsimResponse {
    /// RES = f2(RAND).
    pub res: [u8; 8],
    /// CK = f3(RAND).
    pub ck: [u8; 16],
    /// IK = f4(RAND).
    pub ik: [u8; 16],
}

impl core::fmt::Debug for UsimResponse {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("UsimResponse(<redacted>)")
    }
}

impl UsimResponse {
    /// Ks = CK || IK (TS 33.220 4.5.2).
    #[must_use]
    pub fn ks(&self) -> Ks {
        let mut k = [0u8; 32];
        k[..16].copy_from_slice(&self.ck);
        k[16..].copy_from_slice(&self.ik);
        Ks(k)
    }
}

/// Why the USIM refused an AUTN (TS 33.102 6.3.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UsimFailure {
    /// XMAC-A ≠ MAC-A: the challenge is not from the home network ("MAC failure").
    MacFailure,
    /// The SQN is not acceptable (replayed, old, or too far ahead); AUTS lets the home network
    /// re-synchronise ("synch failure").
    SyncFailure {
        /// AUTS = (SQN_MS ⊕ AK*) || MAC-S (14 bytes; not secret, it goes to the network).
        auts: [u8; 14],
    },
    /// The AMF separation bit is not what the [`AmfPolicy`] requires.
    AmfFailure,
}

impl core::fmt::Display for UsimFailure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::MacFailure => "MAC failure",
            Self::SyncFailure { .. } => "synchronisation failure",
            Self::AmfFailure => "AMF separation bit refused",
        })
    }
}

/// Why [`resync`] refused an AUTS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResyncError {
    /// XMAC-S ≠ MAC-S: the AUTS is not from this subscriber for this RAND.
    MacFailure,
}

impl core::fmt::Display for ResyncError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("AUTS MAC-S failure")
    }
}

/// A simulated USIM: K, OPc (in [`Milenage`]) and the SEQ_MS array. `Debug` shows no key.
#[derive(Clone)]
pub struct Usim {
    milenage: Milenage,
    profile: SqnProfile,
    amf_policy: AmfPolicy,
    /// SEQ_MS(i) per IND; 0 = nothing accepted yet.
    seq_ms: Vec<u64>,
}

impl core::fmt::Debug for Usim {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Usim")
            .field("profile", &self.profile)
            .field("amf_policy", &self.amf_policy)
            .field("sqn_ms", &sqn_to_u64(&self.sqn_ms()))
            .finish_non_exhaustive()
    }
}

impl Usim {
    /// A USIM with the default [`SqnProfile`] and [`AmfPolicy::Any`], nothing accepted yet.
    #[must_use]
    pub fn new(k: &[u8; 16], opc: &[u8; 16]) -> Self {
        Self::with_profile(k, opc, SqnProfile::default(), AmfPolicy::Any)
    }

    /// A USIM with the given profile (`ind_bits` is capped at 8).
    #[must_use]
    pub fn with_profile(
        k: &[u8; 16],
        opc: &[u8; 16],
        profile: SqnProfile,
        amf_policy: AmfPolicy,
    ) -> Self {
        let profile = SqnProfile {
            ind_bits: profile.ind_bits.min(8),
            ..profile
        };
        Self {
            milenage: Milenage::new_with_opc(k, opc),
            profile,
            amf_policy,
            seq_ms: vec![0; 1 << profile.ind_bits],
        }
    }

    /// The profile in use.
    #[must_use]
    pub fn profile(&self) -> SqnProfile {
        self.profile
    }

    /// SQN_MS = SEQ_MS || IND of the array entry holding the highest accepted SEQ (all zero
    /// when nothing was accepted yet).
    #[must_use]
    pub fn sqn_ms(&self) -> [u8; 6] {
        let mut best = (0u64, 0u64);
        for (i, &s) in (0u64..).zip(&self.seq_ms) {
            if s > best.0 {
                best = (s, i);
            }
        }
        self.profile.sqn(best.0, best.1).unwrap_or([0; 6])
    }

    /// Runs the USIM side of AKA (TS 33.102 6.3.3) on RAND and AUTN = (SQN ⊕ AK) || AMF ||
    /// MAC-A: checks MAC-A, then the AMF policy, then the SQN; on success records the SQN and
    /// returns RES, CK, IK.
    ///
    /// # Errors
    /// [`UsimFailure::MacFailure`], [`UsimFailure::AmfFailure`] or
    /// [`UsimFailure::SyncFailure`] with the AUTS to send.
    pub fn authenticate(
        &mut self,
        rand: &[u8; 16],
        autn: &[u8; 16],
    ) -> Result<UsimResponse, UsimFailure> {
        let v = self.milenage.f2345(rand);
        let mut sqn = [0u8; 6];
        for (i, s) in sqn.iter_mut().enumerate() {
            *s = autn[i] ^ v.ak[i];
        }
        let amf = [autn[6], autn[7]];
        let xmac = self.milenage.f1(rand, &sqn, &amf);
        if !bool::from(xmac.ct_eq(&autn[8..16])) {
            return Err(UsimFailure::MacFailure);
        }
        let sep = amf[0] & 0x80 != 0;
        match self.amf_policy {
            AmfPolicy::SeparationBitClear if sep => return Err(UsimFailure::AmfFailure),
            AmfPolicy::SeparationBitSet if !sep => return Err(UsimFailure::AmfFailure),
            _ => {}
        }
        let (seq, ind) = self.profile.split(&sqn);
        let highest = self.seq_ms.iter().copied().max().unwrap_or(0);
        let entry = usize::try_from(ind)
            .ok()
            .and_then(|i| self.seq_ms.get_mut(i));
        let fresh = match entry {
            Some(e) if seq > *e => {
                if self
                    .profile
                    .delta
                    .is_some_and(|d| seq.saturating_sub(highest) > d)
                {
                    false
                } else {
                    *e = seq;
                    true
                }
            }
            _ => false,
        };
        if !fresh {
            return Err(UsimFailure::SyncFailure {
                auts: self.auts(rand, &v.ak_star),
            });
        }
        Ok(UsimResponse {
            res: v.res,
            ck: v.ck,
            ik: v.ik,
        })
    }

    /// AUTS = (SQN_MS ⊕ AK*) || f1*(SQN_MS, RAND, AMF = 0).
    fn auts(&self, rand: &[u8; 16], ak_star: &[u8; 6]) -> [u8; 14] {
        let sqn_ms = self.sqn_ms();
        let mac_s = self.milenage.f1_star(rand, &sqn_ms, &[0, 0]);
        let mut auts = [0u8; 14];
        for i in 0..6 {
            auts[i] = sqn_ms[i] ^ ak_star[i];
        }
        auts[6..].copy_from_slice(&mac_s);
        auts
    }
}

/// The home network's authentication vector (TS 33.102 6.3.2) for SQN, AMF and RAND:
/// AUTN = (SQN ⊕ f5(RAND)) || AMF || f1(SQN, RAND, AMF), XRES = f2, CK = f3, IK = f4.
#[must_use]
pub fn generate_vector(
    k: &[u8; 16],
    opc: &[u8; 16],
    sqn: &[u8; 6],
    amf: &[u8; 2],
    rand: &[u8; 16],
) -> AuthVector {
    let m = Milenage::new_with_opc(k, opc);
    let v = m.f2345(rand);
    let mac_a = m.f1(rand, sqn, amf);
    let mut autn = [0u8; 16];
    for i in 0..6 {
        autn[i] = sqn[i] ^ v.ak[i];
    }
    autn[6..8].copy_from_slice(amf);
    autn[8..].copy_from_slice(&mac_a);
    AuthVector {
        rand: *rand,
        autn,
        xres: v.res,
        ck: v.ck,
        ik: v.ik,
    }
}

/// The home network's side of re-synchronisation (TS 33.102 6.3.5): recovers SQN_MS =
/// AUTS[0..6] ⊕ f5*(RAND) and checks MAC-S = f1*(SQN_MS, RAND, AMF = 0) in constant time.
/// `rand` is the RAND of the challenge the USIM refused.
///
/// # Errors
/// [`ResyncError::MacFailure`] when MAC-S does not verify.
pub fn resync(
    k: &[u8; 16],
    opc: &[u8; 16],
    rand: &[u8; 16],
    auts: &[u8; 14],
) -> Result<[u8; 6], ResyncError> {
    let m = Milenage::new_with_opc(k, opc);
    let ak_star = m.f5_star(rand);
    let mut sqn_ms = [0u8; 6];
    for i in 0..6 {
        sqn_ms[i] = auts[i] ^ ak_star[i];
    }
    let xmac_s = m.f1_star(rand, &sqn_ms, &[0, 0]);
    if bool::from(xmac_s.ct_eq(&auts[6..14])) {
        Ok(sqn_ms)
    } else {
        Err(ResyncError::MacFailure)
    }
}
