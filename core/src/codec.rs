//! Byte-level reading and writing of TLS structures (RFC 5246 section 4).
//!
//! [`Reader`] never panics: every read returns `Err(InvalidMessage)` on short input.
//! Writers append to a `Vec<u8>` and back-patch length prefixes.

use alloc::vec::Vec;

use crate::error::InvalidMessage;

/// A cursor over untrusted bytes.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    #[must_use]
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes not yet read.
    #[must_use]
    pub fn left(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The unread remainder, consuming it.
    pub fn rest(&mut self) -> &'a [u8] {
        let r = &self.buf[self.pos..];
        self.pos = self.buf.len();
        r
    }

    /// Takes exactly `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], InvalidMessage> {
        if self.left() < n {
            return Err(InvalidMessage::Truncated);
        }
        let r = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(r)
    }

    /// Takes a fixed-size array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], InvalidMessage> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// Reads a `uint8`.
    pub fn u8(&mut self) -> Result<u8, InvalidMessage> {
        Ok(self.take(1)?[0])
    }

    /// Reads a big-endian `uint16`.
    pub fn u16(&mut self) -> Result<u16, InvalidMessage> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// Reads a big-endian `uint24`.
    pub fn u24(&mut self) -> Result<u32, InvalidMessage> {
        let b = self.take(3)?;
        Ok(u32::from_be_bytes([0, b[0], b[1], b[2]]))
    }

    /// Reads a big-endian `uint48`.
    pub fn u48(&mut self) -> Result<u64, InvalidMessage> {
        let b = self.take(6)?;
        Ok(u64::from_be_bytes([
            0, 0, b[0], b[1], b[2], b[3], b[4], b[5],
        ]))
    }

    /// Reads an opaque vector with a 1-byte length.
    pub fn vec8(&mut self) -> Result<&'a [u8], InvalidMessage> {
        let n = self.u8()? as usize;
        self.take(n)
    }

    /// Reads an opaque vector with a 2-byte length.
    pub fn vec16(&mut self) -> Result<&'a [u8], InvalidMessage> {
        let n = self.u16()? as usize;
        self.take(n)
    }

    /// Reads an opaque vector with a 3-byte length.
    pub fn vec24(&mut self) -> Result<&'a [u8], InvalidMessage> {
        let n = self.u24()? as usize;
        self.take(n)
    }

    /// Fails unless every byte was read.
    pub fn finish(&self) -> Result<(), InvalidMessage> {
        if self.left() == 0 {
            Ok(())
        } else {
            Err(InvalidMessage::TrailingData)
        }
    }
}

/// Appends a big-endian `uint16`.
pub fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Appends a big-endian `uint24` (the caller guarantees `v < 2^24`).
pub fn put_u24(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes()[1..]);
}

/// Appends a big-endian `uint48` (the caller guarantees `v < 2^48`).
pub fn put_u48(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes()[2..]);
}

/// Length-prefix width for [`put_vec`] / [`LengthPrefix`].
#[derive(Clone, Copy, Debug)]
pub enum Width {
    /// `uint8` length.
    U8,
    /// `uint16` length.
    U16,
    /// `uint24` length.
    U24,
}

impl Width {
    const fn bytes(self) -> usize {
        match self {
            Self::U8 => 1,
            Self::U16 => 2,
            Self::U24 => 3,
        }
    }
}

/// Appends `data` with a length prefix of `width`. Returns `Err` if it does not fit the width.
pub fn put_vec(out: &mut Vec<u8>, width: Width, data: &[u8]) -> Result<(), InvalidMessage> {
    let p = LengthPrefix::start(out, width);
    out.extend_from_slice(data);
    p.finish(out)
}

/// A length prefix written as zeros and patched once the body is known.
#[derive(Debug)]
#[must_use]
pub struct LengthPrefix {
    at: usize,
    width: Width,
}

impl LengthPrefix {
    /// Reserves the prefix at the end of `out`.
    pub fn start(out: &mut Vec<u8>, width: Width) -> Self {
        let at = out.len();
        out.resize(at + width.bytes(), 0);
        Self { at, width }
    }

    /// Patches the prefix with the length of everything appended since `start`.
    pub fn finish(self, out: &mut [u8]) -> Result<(), InvalidMessage> {
        let body = out.len() - self.at - self.width.bytes();
        let be = (body as u64).to_be_bytes();
        let n = self.width.bytes();
        let max = 1u64 << (8 * n);
        if body as u64 >= max {
            return Err(InvalidMessage::TooLong);
        }
        out[self.at..self.at + n].copy_from_slice(&be[8 - n..]);
        Ok(())
    }
}
