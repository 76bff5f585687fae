//! Milenage (TS 35.206): f1, f1*, f2, f3, f4, f5, f5* on AES-128 (the `aes` crate as E_K).
//!
//! With the TS 35.206 constants r1 = 64, r2 = 0, r3 = 32, r4 = 64, r5 = 96 (bits) and
//! c1 = 0, c2 = 1, c3 = 2, c4 = 4, c5 = 8 (in the last byte of a 128-bit block):
//!
//! ```text
//! OPc  = E_K(OP) ⊕ OP
//! TEMP = E_K(RAND ⊕ OPc)
//! IN1  = SQN || AMF || SQN || AMF
//! OUT1 = E_K(TEMP ⊕ rot(IN1 ⊕ OPc, r1) ⊕ c1) ⊕ OPc    f1 = OUT1[0..8], f1* = OUT1[8..16]
//! OUTi = E_K(rot(TEMP ⊕ OPc, ri) ⊕ ci) ⊕ OPc, i=2..5  f5 = OUT2[0..6], f2 = OUT2[8..16],
//!                                                     f3 = OUT3, f4 = OUT4, f5* = OUT5[0..6]
//! ```
//!
//! Checked against every Milenage test set of TS 35.208 (see `testvectors/data/gba/`).
//! Every intermediate block is zeroized; `Debug` never shows K or OPc.

use aes::cipher::{BlockEncrypt, KeyInit};
use aes::Aes128;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Rotation amounts r1..r5 of TS 35.206, in bits (all multiples of 8).
pub const R: [u32; 5] = [64, 0, 32, 64, 96];

/// The last byte of the constants c1..c5 of TS 35.206 (the other 15 bytes are zero).
pub const C: [u8; 5] = [0, 1, 2, 4, 8];

/// The outputs of f2, f3, f4, f5 and f5* for one RAND. Zeroized on drop; `Debug` is redacted.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct F2345 {
    /// f2: RES / XRES (64 bits).
    pub res: [u8; 8],
    /// f3: the cipher key CK.
    pub ck: [u8; 16],
    /// f4: the integrity key IK.
    pub ik: [u8; 16],
    /// f5: the anonymity key AK (48 bits).
    pub ak: [u8; 6],
    /// f5*: the anonymity key AK* used in re-synchronisation (48 bits).
    pub ak_star: [u8; 6],
}

impl core::fmt::Debug for F2345 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("F2345(<redacted>)")
    }
}

/// Milenage keyed with the subscriber key K and the operator variant OPc.
///
/// The AES key schedule is zeroized on drop (the `aes` crate's `zeroize` feature), OPc too.
#[derive(Clone)]
pub struct Milenage {
    cipher: Aes128,
    opc: Zeroizing<[u8; 16]>,
}

impl core::fmt::Debug for Milenage {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Milenage(<redacted>)")
    }
}

/// OPc = E_K(OP) ⊕ OP (TS 35.206 4.1).
#[must_use]
pub fn opc(k: &[u8; 16], op: &[u8; 16]) -> [u8; 16] {
    let cipher = Aes128::new(k.into());
    let mut out = *op;
    encrypt(&cipher, &mut out);
    xor_in(&mut out, op);
    out
}

fn encrypt(cipher: &Aes128, block: &mut [u8; 16]) {
    cipher.encrypt_block(block.into());
}

fn xor_in<const N: usize>(a: &mut [u8; N], b: &[u8; N]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x ^= y;
    }
}

/// Cyclic left rotation of a 128-bit block by `bits` (a multiple of 8 below 128).
fn rot(x: &[u8; 16], bits: u32) -> [u8; 16] {
    let by = (bits / 8) as usize % 16;
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = x[(i + by) % 16];
    }
    out
}

impl Milenage {
    /// Milenage for subscriber key `k` and the operator's OPc.
    #[must_use]
    pub fn new_with_opc(k: &[u8; 16], opc: &[u8; 16]) -> Self {
        Self {
            cipher: Aes128::new(k.into()),
            opc: Zeroizing::new(*opc),
        }
    }

    /// Milenage for subscriber key `k` and the operator's OP (OPc is computed from it).
    #[must_use]
    pub fn new_with_op(k: &[u8; 16], op: &[u8; 16]) -> Self {
        let c = Zeroizing::new(opc(k, op));
        Self::new_with_opc(k, &c)
    }

    /// The OPc in use (secret: handle with care).
    #[must_use]
    pub fn opc(&self) -> &[u8; 16] {
        &self.opc
    }

    /// TEMP = E_K(RAND ⊕ OPc).
    fn temp(&self, rand: &[u8; 16]) -> Zeroizing<[u8; 16]> {
        let mut t = Zeroizing::new(*rand);
        xor_in(&mut t, &self.opc);
        encrypt(&self.cipher, &mut t);
        t
    }

    /// OUT1 = E_K(TEMP ⊕ rot(IN1 ⊕ OPc, r1) ⊕ c1) ⊕ OPc.
    fn out1(&self, rand: &[u8; 16], sqn: &[u8; 6], amf: &[u8; 2]) -> Zeroizing<[u8; 16]> {
        let temp = self.temp(rand);
        let mut in1 = Zeroizing::new([0u8; 16]);
        in1[0..6].copy_from_slice(sqn);
        in1[6..8].copy_from_slice(amf);
        in1[8..14].copy_from_slice(sqn);
        in1[14..16].copy_from_slice(amf);
        xor_in(&mut in1, &self.opc);
        let mut block = Zeroizing::new(rot(&in1, R[0]));
        xor_in(&mut block, &temp);
        block[15] ^= C[0];
        encrypt(&self.cipher, &mut block);
        xor_in(&mut block, &self.opc);
        block
    }

    /// OUTi (i = 2..5, `idx` = i - 1) from TEMP.
    fn out_n(&self, temp: &[u8; 16], idx: usize) -> Zeroizing<[u8; 16]> {
        let mut x = Zeroizing::new(*temp);
        xor_in(&mut x, &self.opc);
        let mut block = Zeroizing::new(rot(&x, R[idx]));
        block[15] ^= C[idx];
        encrypt(&self.cipher, &mut block);
        xor_in(&mut block, &self.opc);
        block
    }

    /// f1 and f1* together: (MAC-A, MAC-S).
    #[must_use]
    pub fn f1_both(&self, rand: &[u8; 16], sqn: &[u8; 6], amf: &[u8; 2]) -> ([u8; 8], [u8; 8]) {
        let out = self.out1(rand, sqn, amf);
        let mut mac_a = [0u8; 8];
        let mut mac_s = [0u8; 8];
        mac_a.copy_from_slice(&out[0..8]);
        mac_s.copy_from_slice(&out[8..16]);
        (mac_a, mac_s)
    }

    /// f1: the network authentication code MAC-A (also XMAC-A).
    #[must_use]
    pub fn f1(&self, rand: &[u8; 16], sqn: &[u8; 6], amf: &[u8; 2]) -> [u8; 8] {
        self.f1_both(rand, sqn, amf).0
    }

    /// f1*: the re-synchronisation authentication code MAC-S (also XMAC-S).
    #[must_use]
    pub fn f1_star(&self, rand: &[u8; 16], sqn: &[u8; 6], amf: &[u8; 2]) -> [u8; 8] {
        self.f1_both(rand, sqn, amf).1
    }

    /// f2, f3, f4, f5 and f5* for `rand`.
    #[must_use]
    pub fn f2345(&self, rand: &[u8; 16]) -> F2345 {
        let temp = self.temp(rand);
        let out2 = self.out_n(&temp, 1);
        let out3 = self.out_n(&temp, 2);
        let out4 = self.out_n(&temp, 3);
        let out5 = self.out_n(&temp, 4);
        let mut v = F2345 {
            res: [0; 8],
            ck: *out3,
            ik: *out4,
            ak: [0; 6],
            ak_star: [0; 6],
        };
        v.res.copy_from_slice(&out2[8..16]);
        v.ak.copy_from_slice(&out2[0..6]);
        v.ak_star.copy_from_slice(&out5[0..6]);
        v
    }

    /// f2: the response RES (XRES at the home network).
    #[must_use]
    pub fn f2(&self, rand: &[u8; 16]) -> [u8; 8] {
        self.f2345(rand).res
    }

    /// f3: the cipher key CK.
    #[must_use]
    pub fn f3(&self, rand: &[u8; 16]) -> [u8; 16] {
        self.f2345(rand).ck
    }

    /// f4: the integrity key IK.
    #[must_use]
    pub fn f4(&self, rand: &[u8; 16]) -> [u8; 16] {
        self.f2345(rand).ik
    }

    /// f5: the anonymity key AK.
    #[must_use]
    pub fn f5(&self, rand: &[u8; 16]) -> [u8; 6] {
        self.f2345(rand).ak
    }

    /// f5*: the re-synchronisation anonymity key AK*.
    #[must_use]
    pub fn f5_star(&self, rand: &[u8; 16]) -> [u8; 6] {
        self.f2345(rand).ak_star
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h<const N: usize>(s: &str) -> [u8; N] {
        let mut out = [0u8; N];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }

    /// TS 35.208 4.3.1, test set 1 (the full data of all sets is run by `testvectors`).
    #[test]
    fn test_set_1() {
        let k = h::<16>("465b5ce8b199b49faa5f0a2ee238a6bc");
        let rand = h::<16>("23553cbe9637a89d218ae64dae47bf35");
        let op = h::<16>("cdc202d5123e20f62b6d676ac72cb318");
        assert_eq!(opc(&k, &op), h("cd63cb71954a9f4e48a5994e37a02baf"));
        let m = Milenage::new_with_op(&k, &op);
        let (a, s) = m.f1_both(&rand, &h("ff9bb4d0b607"), &h("b9b9"));
        assert_eq!(a, h("4a9ffac354dfafb3"));
        assert_eq!(s, h("01cfaf9ec4e871e9"));
        let v = m.f2345(&rand);
        assert_eq!(v.res, h("a54211d5e3ba50bf"));
        assert_eq!(v.ck, h("b40ba9a3c58b2a05bbf0d987b21bf8cb"));
        assert_eq!(v.ik, h("f769bcd751044604127672711c6d3441"));
        assert_eq!(v.ak, h("aa689c648370"));
        assert_eq!(v.ak_star, h("451e8beca43b"));
        assert_eq!(
            alloc::format!("{m:?} {v:?}"),
            "Milenage(<redacted>) F2345(<redacted>)"
        );
    }
}
