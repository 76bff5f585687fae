//! AES-128-CCM with a 12-byte nonce and a 16- or 8-byte tag, as (D)TLS 1.2 uses it
//! (RFC 6655 3: L = 3, nonce = 4-byte salt || 8-byte explicit part), written on the `aes` block
//! cipher (NIST SP 800-38C, RFC 3610).
//!
//! Our own mode rather than the `ccm` crate for speed: each payload block's CBC-MAC step and its
//! CTR keystream block go through the cipher together (one two-block call), so the CPU overlaps
//! the independent counter encryption with the serial MAC chain, where the `ccm` crate runs the
//! MAC pass and the CTR pass one after the other. The `ccm` crate stays as the reference the
//! tests compare against (`core/tests/ccm_reference.rs`), next to the NIST and Wycheproof vectors.

use alloc::boxed::Box;

use aes::cipher::consts::U16;
use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockBackend, BlockClosure, BlockEncrypt, BlockSizeUser, KeyInit, ParBlocks};
use aes::{Aes128Enc, Block};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

/// Bytes of an AES-128 key.
pub const KEY_LEN: usize = 16;
/// Bytes of the CCM nonce in (D)TLS 1.2 (4-byte salt plus 8-byte explicit part).
pub const NONCE_LEN: usize = 12;
/// The CCM length-field size for a 12-byte nonce: 15 - 12 (messages below 2^24 bytes).
const L: usize = 15 - NONCE_LEN;
/// Longest message CCM with L = 3 can protect.
pub const MAX_MESSAGE: usize = (1 << (8 * L)) - 1;
/// Longest associated data this implementation encodes (the short form of SP 800-38C A.2.2).
pub const MAX_AAD: usize = 0xff00 - 1;

/// The CCM tag length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagLen {
    /// 16 bytes (TLS_*_AES_128_CCM).
    Sixteen,
    /// 8 bytes (TLS_*_AES_128_CCM_8).
    Eight,
}

impl TagLen {
    /// The length in bytes.
    #[must_use]
    pub const fn bytes(self) -> usize {
        match self {
            Self::Sixteen => 16,
            Self::Eight => 8,
        }
    }
}

/// An AES-128-CCM key, expanded once (encryption schedule only: CCM never decrypts blocks).
/// The schedule is zeroized on drop (aes `zeroize`) and lives on the heap, so that sessions
/// holding several keys stay small.
#[derive(Clone)]
pub struct CcmKey {
    aes: Box<Aes128Enc>,
    tag: TagLen,
}

impl core::fmt::Debug for CcmKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "CcmKey({:?}, <redacted>)", self.tag)
    }
}

/// Authentication failed, or a length outside what CCM with L = 3 allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenError;

/// A counter block A_i (SP 800-38C A.3): flags = L - 1, nonce, i.
fn counter(nonce: &[u8; NONCE_LEN], i: u32) -> Block {
    let mut b = Block::default();
    b[0] = (L - 1) as u8;
    b[1..13].copy_from_slice(nonce);
    b[13..16].copy_from_slice(&i.to_be_bytes()[1..]);
    b
}

fn xor_into(dst: &mut [u8], src: &[u8]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d ^= s;
    }
}

/// One CCM pass over the payload inside a single call into the cipher backend (so AES-NI is
/// reached without a dispatch per block): counter blocks eight at a time through the pipelined
/// path, the serial CBC-MAC block by block beside them.
struct CcmPass<'a> {
    nonce: &'a [u8; NONCE_LEN],
    buf: &'a mut [u8],
    mac: Block,
    /// Decrypt (MAC over the recovered plaintext) rather than encrypt (MAC over the input).
    open: bool,
}

impl BlockSizeUser for &mut CcmPass<'_> {
    type BlockSize = U16;
}

impl BlockClosure for &mut CcmPass<'_> {
    fn call<B: BlockBackend<BlockSize = U16>>(self, backend: &mut B) {
        let mut ks: ParBlocks<B> = Default::default();
        let par = ks.len();
        let mut next_counter = 1u32;
        for group in self.buf.chunks_mut(16 * par) {
            for k in ks.iter_mut() {
                *k = counter(self.nonce, next_counter);
                next_counter = next_counter.wrapping_add(1);
            }
            backend.proc_par_blocks((&mut ks).into());
            for (chunk, k) in group.chunks_mut(16).zip(ks.iter()) {
                if self.open {
                    xor_into(chunk, k);
                    xor_into(&mut self.mac, chunk);
                } else {
                    xor_into(&mut self.mac, chunk);
                    xor_into(chunk, k);
                }
                backend.proc_block((&mut self.mac).into());
            }
        }
        for k in ks.iter_mut() {
            k.as_mut_slice().zeroize();
        }
    }
}

impl CcmKey {
    /// Expands `key`.
    #[must_use]
    pub fn new(key: &[u8; KEY_LEN], tag: TagLen) -> Self {
        Self {
            aes: Box::new(Aes128Enc::new(GenericArray::from_slice(key))),
            tag,
        }
    }

    /// The tag length.
    #[must_use]
    pub fn tag_len(&self) -> TagLen {
        self.tag
    }

    /// The CBC-MAC state after B0 and the associated data (SP 800-38C A.2.1, A.2.2).
    fn mac_start(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], len: usize) -> Block {
        let mut b0 = Block::default();
        let m = self.tag.bytes();
        b0[0] = (u8::from(!aad.is_empty()) << 6) | ((((m - 2) / 2) as u8) << 3) | (L - 1) as u8;
        b0[1..13].copy_from_slice(nonce);
        b0[13..16].copy_from_slice(&(len as u32).to_be_bytes()[1..]);
        let mut mac = b0;
        self.aes.encrypt_block(&mut mac);
        if aad.is_empty() {
            return mac;
        }
        // First block: 2-byte length, then up to 14 bytes of AAD; then 16-byte chunks.
        let mut first = [0u8; 16];
        first[..2].copy_from_slice(&(aad.len() as u16).to_be_bytes());
        let n = aad.len().min(14);
        first[2..2 + n].copy_from_slice(&aad[..n]);
        xor_into(&mut mac, &first);
        self.aes.encrypt_block(&mut mac);
        for chunk in aad[n..].chunks(16) {
            xor_into(&mut mac, chunk);
            self.aes.encrypt_block(&mut mac);
        }
        mac
    }

    /// The tag: the first `tag_len` bytes of MAC xor E(A_0).
    fn finish(&self, nonce: &[u8; NONCE_LEN], mac: &Block) -> Block {
        let mut s0 = counter(nonce, 0);
        self.aes.encrypt_block(&mut s0);
        xor_into(&mut s0, mac);
        s0
    }

    /// Encrypts `buf` in place and writes the tag to `tag_out` (which must be `tag_len` long).
    ///
    /// Returns `Err` only for lengths CCM with L = 3 cannot carry (2^24 bytes or more of
    /// message, 65 280 bytes or more of AAD) or a wrong `tag_out` length.
    pub fn seal_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
        tag_out: &mut [u8],
    ) -> Result<(), OpenError> {
        if buf.len() > MAX_MESSAGE || aad.len() > MAX_AAD || tag_out.len() != self.tag.bytes() {
            return Err(OpenError);
        }
        let mac = self.mac_start(nonce, aad, buf.len());
        let mut pass = CcmPass {
            nonce,
            buf,
            mac,
            open: false,
        };
        self.aes.encrypt_with_backend(&mut pass);
        let mut tag = self.finish(nonce, &pass.mac);
        tag_out.copy_from_slice(&tag[..tag_out.len()]);
        tag.zeroize();
        Ok(())
    }

    /// Checks `tag` and decrypts `buf` in place. On failure `buf` is zeroed: no unauthenticated
    /// plaintext is ever left behind.
    pub fn open_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8],
    ) -> Result<(), OpenError> {
        if buf.len() > MAX_MESSAGE || aad.len() > MAX_AAD || tag.len() != self.tag.bytes() {
            return Err(OpenError);
        }
        let mac = self.mac_start(nonce, aad, buf.len());
        let mut pass = CcmPass {
            nonce,
            buf,
            mac,
            open: true,
        };
        self.aes.encrypt_with_backend(&mut pass);
        let mac = pass.mac;
        let mut expected = self.finish(nonce, &mac);
        let ok: bool = expected[..tag.len()].ct_eq(tag).into();
        expected.zeroize();
        if ok {
            Ok(())
        } else {
            buf.zeroize();
            Err(OpenError)
        }
    }
}
