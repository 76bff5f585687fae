//! A deterministic random bit generator seeded by the caller: the core never reads ambient
//! randomness. Output block i is HMAC-SHA-256(seed, "m2msec drbg" || i); the seed is zeroized on drop.

use zeroize::{Zeroize, ZeroizeOnDrop};

use super::prf::hmac_sha256;

/// The generator. Give each session a fresh 32-byte seed from a CSPRNG (the adapters use the OS).
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct Drbg {
    seed: [u8; 32],
    counter: u64,
}

impl core::fmt::Debug for Drbg {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Drbg(<redacted>)")
    }
}

impl Drbg {
    /// A generator over `seed`.
    #[must_use]
    pub fn new(seed: [u8; 32]) -> Self {
        Self { seed, counter: 0 }
    }

    /// Fills `out` with pseudorandom bytes.
    pub fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(32) {
            let mut block = hmac_sha256(&self.seed, &[b"m2msec drbg", &self.counter.to_be_bytes()]);
            self.counter = self.counter.wrapping_add(1);
            chunk.copy_from_slice(&block[..chunk.len()]);
            block.zeroize();
        }
    }

    /// A random array.
    pub fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut a = [0u8; N];
        self.fill(&mut a);
        a
    }
}
