//! AES-128-CCM with a 12-byte nonce and a 16- or 8-byte tag, as RFC 6655 uses it.

use alloc::boxed::Box;

use aes::Aes128Enc;
use ccm::aead::generic_array::GenericArray;
use ccm::aead::{AeadInPlace, KeyInit};
use ccm::consts::{U12, U16, U8};
use ccm::Ccm;

/// Bytes of an AES-128 key.
pub const KEY_LEN: usize = 16;
/// Bytes of the CCM nonce in (D)TLS 1.2 (4-byte salt plus 8-byte explicit part).
pub const NONCE_LEN: usize = 12;

type Ccm16 = Ccm<Aes128Enc, U16, U12>;
type Ccm8 = Ccm<Aes128Enc, U8, U12>;

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
pub enum CcmKey {
    /// 16-byte tag.
    Tag16(Box<Ccm16>),
    /// 8-byte tag.
    Tag8(Box<Ccm8>),
}

impl core::fmt::Debug for CcmKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "CcmKey({:?}, <redacted>)", self.tag_len())
    }
}

/// Authentication failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenError;

impl CcmKey {
    /// Expands `key`.
    #[must_use]
    pub fn new(key: &[u8; KEY_LEN], tag: TagLen) -> Self {
        let k = GenericArray::from_slice(key);
        match tag {
            TagLen::Sixteen => Self::Tag16(Box::new(Ccm16::new(k))),
            TagLen::Eight => Self::Tag8(Box::new(Ccm8::new(k))),
        }
    }

    /// The tag length.
    #[must_use]
    pub fn tag_len(&self) -> TagLen {
        match self {
            Self::Tag16(_) => TagLen::Sixteen,
            Self::Tag8(_) => TagLen::Eight,
        }
    }

    /// Encrypts `buf` in place and writes the tag to `tag_out` (which must be `tag_len` long).
    ///
    /// Returns `Err` only if the message is too long for CCM with L = 3 (2^24 bytes).
    pub fn seal_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
        tag_out: &mut [u8],
    ) -> Result<(), OpenError> {
        let n = GenericArray::from_slice(nonce);
        match self {
            Self::Tag16(c) => {
                let t = c
                    .encrypt_in_place_detached(n, aad, buf)
                    .map_err(|_| OpenError)?;
                tag_out.copy_from_slice(&t);
            }
            Self::Tag8(c) => {
                let t = c
                    .encrypt_in_place_detached(n, aad, buf)
                    .map_err(|_| OpenError)?;
                tag_out.copy_from_slice(&t);
            }
        }
        Ok(())
    }

    /// Checks `tag` and decrypts `buf` in place. On failure `buf` holds no plaintext.
    pub fn open_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8],
    ) -> Result<(), OpenError> {
        let n = GenericArray::from_slice(nonce);
        if tag.len() != self.tag_len().bytes() {
            return Err(OpenError);
        }
        match self {
            Self::Tag16(c) => {
                c.decrypt_in_place_detached(n, aad, buf, GenericArray::from_slice(tag))
            }
            Self::Tag8(c) => {
                c.decrypt_in_place_detached(n, aad, buf, GenericArray::from_slice(tag))
            }
        }
        .map_err(|_| OpenError)
    }
}
