//! Base64 (RFC 4648) for the Root of Trust text (section 5, base64url without padding, as
//! RFC 6920 writes `ni` URIs) and for PEM (section 4, with padding). No allocation beyond the
//! output; decoding is strict: only canonical encodings are accepted.

use alloc::string::String;
use alloc::vec::Vec;

const STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The two alphabets.
#[derive(Clone, Copy)]
pub(crate) enum Alphabet {
    /// `+` and `/`, padded with `=` (PEM).
    Standard,
    /// `-` and `_`, no padding (RFC 6920).
    UrlNoPad,
}

impl Alphabet {
    fn table(self) -> &'static [u8; 64] {
        match self {
            Self::Standard => STD,
            Self::UrlNoPad => URL,
        }
    }

    fn value(self, c: u8) -> Option<u8> {
        let t = self.table();
        t.iter()
            .position(|&x| x == c)
            .and_then(|p| u8::try_from(p).ok())
    }
}

/// Encodes `data`.
pub(crate) fn encode(alphabet: Alphabet, data: &[u8]) -> String {
    let t = alphabet.table();
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..4 {
            if i < chars {
                out.push(char::from(t[((n >> (18 - 6 * i)) & 0x3f) as usize]));
            } else if matches!(alphabet, Alphabet::Standard) {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes `text` (no whitespace). `None` unless it is the canonical encoding of some bytes:
/// right alphabet, padding exactly as `encode` writes it, unused trailing bits zero.
pub(crate) fn decode(alphabet: Alphabet, text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let body = match alphabet {
        Alphabet::Standard => {
            if bytes.len() % 4 != 0 {
                return None;
            }
            let pad = bytes.iter().rev().take_while(|&&c| c == b'=').count();
            if pad > 2 {
                return None;
            }
            &bytes[..bytes.len() - pad]
        }
        Alphabet::UrlNoPad => bytes,
    };
    if body.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    for chunk in body.chunks(4) {
        let mut n: u32 = 0;
        for &c in chunk {
            n = (n << 6) | u32::from(alphabet.value(c)?);
        }
        let produced = chunk.len() - 1; // 4 chars -> 3 bytes, 3 -> 2, 2 -> 1
        let spare_bits = chunk.len() * 6 - produced * 8;
        if n & ((1 << spare_bits) - 1) != 0 {
            return None;
        }
        n >>= spare_bits;
        for i in (0..produced).rev() {
            out.push(((n >> (8 * i)) & 0xff) as u8);
        }
    }
    if matches!(alphabet, Alphabet::Standard) && encode(alphabet, &out).len() != bytes.len() {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4648_vectors_and_strictness() {
        let cases: [(&[u8], &str); 7] = [
            (b"", ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
            (b"fooba", "Zm9vYmE="),
            (b"foobar", "Zm9vYmFy"),
        ];
        for (raw, text) in cases {
            assert_eq!(encode(Alphabet::Standard, raw), text);
            assert_eq!(decode(Alphabet::Standard, text).as_deref(), Some(raw));
            let url = text.trim_end_matches('=');
            assert_eq!(encode(Alphabet::UrlNoPad, raw), url);
            assert_eq!(decode(Alphabet::UrlNoPad, url).as_deref(), Some(raw));
        }
        assert_eq!(encode(Alphabet::UrlNoPad, &[0xfb, 0xff]), "-_8");
        // Non-canonical trailing bits, wrong padding, wrong alphabet, stray length.
        assert_eq!(decode(Alphabet::UrlNoPad, "Zh"), None);
        assert_eq!(decode(Alphabet::Standard, "Zg="), None);
        assert_eq!(decode(Alphabet::Standard, "Zg==="), None);
        assert_eq!(decode(Alphabet::UrlNoPad, "Zg=="), None);
        assert_eq!(decode(Alphabet::UrlNoPad, "+/8"), None);
        assert_eq!(decode(Alphabet::UrlNoPad, "Zm9vY"), None);
    }
}
