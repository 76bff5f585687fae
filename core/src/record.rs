//! The TLS 1.2 record layer (RFC 5246 6.2): a bounded deframer for stream input and AES-CCM
//! record protection (RFC 6655 3): nonce = 4-byte salt || 8-byte explicit nonce, where we send the
//! sequence number as explicit nonce; AAD = seq_num || type || version || plaintext length.

use alloc::vec::Vec;

use crate::codec::put_u16;
use crate::crypto::aead::NONCE_LEN;
use crate::enums::ContentType;
use crate::error::{Error, InvalidMessage};
use crate::key_schedule::DirectionKeys;

/// Bytes of a TLS record header.
pub const TLS_HEADER_LEN: usize = 5;
/// Bytes of a DTLS record header.
pub const DTLS_HEADER_LEN: usize = 13;
/// Largest plaintext fragment (RFC 5246 6.2.1).
pub const MAX_PLAINTEXT: usize = 1 << 14;
/// Largest protected fragment (RFC 5246 6.2.3).
pub const MAX_CIPHERTEXT: usize = MAX_PLAINTEXT + 2048;
/// Bytes of the explicit nonce carried in each CCM record.
pub const EXPLICIT_NONCE_LEN: usize = 8;

/// A parsed TLS record header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    /// Content type.
    pub typ: ContentType,
    /// Record version.
    pub version: u16,
    /// Fragment length.
    pub len: usize,
}

impl RecordHeader {
    /// Decodes and checks a 5-byte header; `protected` selects the ciphertext size limit.
    pub fn decode(h: &[u8; TLS_HEADER_LEN], protected: bool) -> Result<Self, Error> {
        let typ = ContentType::from(h[0]);
        if let ContentType::Unknown(_) = typ {
            return Err(InvalidMessage::InvalidValue("record content type").into());
        }
        let version = u16::from_be_bytes([h[1], h[2]]);
        if version >> 8 != 3 {
            return Err(InvalidMessage::InvalidValue("record version").into());
        }
        let len = usize::from(u16::from_be_bytes([h[3], h[4]]));
        let max = if protected {
            MAX_CIPHERTEXT
        } else {
            MAX_PLAINTEXT
        };
        if len > max {
            return Err(Error::RecordOverflow);
        }
        Ok(Self { typ, version, len })
    }
}

/// Record protection for one direction, with its sequence number.
#[derive(Debug)]
pub struct Protection {
    keys: DirectionKeys,
}

impl Protection {
    /// Protection under `keys`.
    #[must_use]
    pub fn new(keys: DirectionKeys) -> Self {
        Self { keys }
    }

    /// Bytes a record grows by: explicit nonce and tag.
    #[must_use]
    pub fn overhead(&self) -> usize {
        EXPLICIT_NONCE_LEN + self.keys.key.tag_len().bytes()
    }

    fn nonce(&self, explicit: &[u8]) -> [u8; NONCE_LEN] {
        let mut n = [0u8; NONCE_LEN];
        n[..4].copy_from_slice(&self.keys.salt);
        n[4..].copy_from_slice(explicit);
        n
    }

    /// Appends one protected record of `typ` holding `plaintext` to `out`, with header `version`.
    /// `seq` is the 64-bit sequence number (for DTLS, epoch || seq, which is also what the DTLS
    /// header carries). Allocates only if `out` lacks capacity.
    pub fn seal_record(
        &self,
        out: &mut Vec<u8>,
        wire: Wire,
        typ: ContentType,
        version: u16,
        seq: u64,
        plaintext: &[u8],
    ) {
        let tag_len = self.keys.key.tag_len().bytes();
        let total = EXPLICIT_NONCE_LEN + plaintext.len() + tag_len;
        out.reserve(wire.header_len() + total);
        put_header(out, wire, typ, version, seq, total);
        let body_start = out.len() + EXPLICIT_NONCE_LEN;
        out.extend_from_slice(&seq.to_be_bytes());
        out.extend_from_slice(plaintext);
        out.resize(body_start + plaintext.len() + tag_len, 0);
        let aad = aad(seq, typ, version, plaintext.len());
        let nonce = self.nonce(&seq.to_be_bytes());
        let (body, tag) = out[body_start..].split_at_mut(plaintext.len());
        self.keys
            .key
            .seal_in_place(&nonce, &aad, body, tag)
            .expect("a record is far below the CCM length limit");
    }

    /// Authenticates and decrypts a record fragment in place; returns the plaintext range within
    /// `fragment`. On failure no plaintext is exposed.
    pub fn open_record(
        &self,
        fragment: &mut [u8],
        typ: ContentType,
        version: u16,
        seq: u64,
    ) -> Result<core::ops::Range<usize>, Error> {
        let tag_len = self.keys.key.tag_len().bytes();
        if fragment.len() < EXPLICIT_NONCE_LEN + tag_len {
            return Err(Error::BadRecordMac);
        }
        let pt_len = fragment.len() - EXPLICIT_NONCE_LEN - tag_len;
        if pt_len > MAX_PLAINTEXT {
            return Err(Error::RecordOverflow);
        }
        let nonce = self.nonce(&fragment[..EXPLICIT_NONCE_LEN]);
        let aad = aad(seq, typ, version, pt_len);
        let (body, tag) = fragment[EXPLICIT_NONCE_LEN..].split_at_mut(pt_len);
        self.keys
            .key
            .open_in_place(&nonce, &aad, body, tag)
            .map_err(|_| Error::BadRecordMac)?;
        Ok(EXPLICIT_NONCE_LEN..EXPLICIT_NONCE_LEN + pt_len)
    }
}

fn aad(seq: u64, typ: ContentType, version: u16, len: usize) -> [u8; 13] {
    let mut a = [0u8; 13];
    a[..8].copy_from_slice(&seq.to_be_bytes());
    a[8] = typ.into();
    a[9..11].copy_from_slice(&version.to_be_bytes());
    // len <= MAX_PLAINTEXT, checked by every caller.
    a[11..13].copy_from_slice(&(len as u16).to_be_bytes());
    a
}

/// The record framing: TLS (5-byte header) or DTLS (13-byte header with epoch and sequence).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    /// TLS records (RFC 5246 6.2).
    Tls,
    /// DTLS records (RFC 6347 4.1).
    Dtls,
}

impl Wire {
    /// Bytes of the record header.
    #[must_use]
    pub const fn header_len(self) -> usize {
        match self {
            Self::Tls => TLS_HEADER_LEN,
            Self::Dtls => DTLS_HEADER_LEN,
        }
    }
}

fn put_header(out: &mut Vec<u8>, wire: Wire, typ: ContentType, version: u16, seq: u64, len: usize) {
    out.push(typ.into());
    put_u16(out, version);
    if wire == Wire::Dtls {
        out.extend_from_slice(&seq.to_be_bytes());
    }
    put_u16(
        out,
        u16::try_from(len).expect("callers fragment to MAX_PLAINTEXT"),
    );
}

/// Appends a plaintext record (`seq` is written only in DTLS headers).
pub fn plain_record(
    out: &mut Vec<u8>,
    wire: Wire,
    typ: ContentType,
    version: u16,
    seq: u64,
    fragment: &[u8],
) {
    out.reserve(wire.header_len() + fragment.len());
    put_header(out, wire, typ, version, seq, fragment.len());
    out.extend_from_slice(fragment);
}

/// Collects one record at a time from a byte stream, never holding more than one record.
#[derive(Debug, Default)]
pub struct Deframer {
    buf: Vec<u8>,
    header: Option<RecordHeader>,
}

impl Deframer {
    /// Takes bytes from `input` towards the current record; returns how many it took and whether
    /// a whole record is now held. `protected` selects the size limit for the next header.
    pub fn feed(&mut self, input: &[u8], protected: bool) -> Result<(usize, bool), Error> {
        let mut used = 0;
        if self.header.is_none() {
            let want = TLS_HEADER_LEN - self.buf.len();
            let n = want.min(input.len());
            self.buf.extend_from_slice(&input[..n]);
            used += n;
            if self.buf.len() < TLS_HEADER_LEN {
                return Ok((used, false));
            }
            let mut h = [0u8; TLS_HEADER_LEN];
            h.copy_from_slice(&self.buf[..TLS_HEADER_LEN]);
            let header = RecordHeader::decode(&h, protected)?;
            self.buf.reserve(header.len);
            self.header = Some(header);
        }
        let Some(h) = self.header else {
            return Ok((used, false));
        };
        let want = TLS_HEADER_LEN + h.len - self.buf.len();
        let n = want.min(input.len() - used);
        self.buf.extend_from_slice(&input[used..used + n]);
        used += n;
        Ok((used, self.buf.len() == TLS_HEADER_LEN + h.len))
    }

    /// The complete record: its header and mutable fragment. Only after `feed` said it is whole.
    pub fn record(&mut self) -> Option<(RecordHeader, &mut [u8])> {
        let h = self.header?;
        if self.buf.len() != TLS_HEADER_LEN + h.len {
            return None;
        }
        Some((h, &mut self.buf[TLS_HEADER_LEN..]))
    }

    /// Bytes of the held record's fragment (after `record`).
    #[must_use]
    pub fn fragment(&self) -> &[u8] {
        self.buf.get(TLS_HEADER_LEN..).unwrap_or(&[])
    }

    /// Forgets the held record, keeping the buffer's capacity.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.header = None;
    }

    /// Whether part of a record is held.
    #[must_use]
    pub fn is_mid_record(&self) -> bool {
        !self.buf.is_empty()
    }
}
