//! Key identifiers of the form `relative@FQDN` (KeID, MAF key identifier / KcID, KmID, KpsaID,
//! KpmID) and the 16-byte relative identifier of an exporter output.

use alloc::string::String;
use core::fmt;
use core::hash::{Hash, Hasher};

use super::{KeyError, RELATIVE_ID_LEN};
use crate::messages::is_dns_name;

/// Longest relative part accepted, in bytes (TS-0003 sets none; `sec:relKeyID` is unbounded).
pub const MAX_RELATIVE_LEN: usize = 255;
/// Longest FQDN part, in bytes (a DNS name in text form, RFC 1035 2.3.4 less the trailing dot).
pub const MAX_FQDN_LEN: usize = 253;
/// Longest identifier: relative part, `@`, FQDN.
pub const MAX_KEY_ID_LEN: usize = MAX_RELATIVE_LEN + 1 + MAX_FQDN_LEN;

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// The 16-byte relative identifier taken from an exporter output: RelativeKeID (bootstrap) or
/// KcID (connection) (published TS-0003 10.3.1; D1).
///
/// It is sent in the clear inside KeID / the MAF key identifier, so it is not a secret. Its text
/// form is 32 upper-case hexadecimal digits (XSD `hexBinary` canonical form; D2).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RelativeId([u8; RELATIVE_ID_LEN]);

impl RelativeId {
    /// From its 16 bytes.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; RELATIVE_ID_LEN]) -> Self {
        Self(bytes)
    }

    /// The 16 bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; RELATIVE_ID_LEN] {
        &self.0
    }

    /// From 32 hexadecimal digits of either case; `None` for anything else.
    #[must_use]
    pub fn from_hex(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() != 2 * RELATIVE_ID_LEN {
            return None;
        }
        let mut out = [0u8; RELATIVE_ID_LEN];
        for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
            *o = (hex_val(pair[0])? << 4) | hex_val(pair[1])?;
        }
        Some(Self(out))
    }

    /// The 32 upper-case hexadecimal digits (D2).
    #[must_use]
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(2 * RELATIVE_ID_LEN);
        push_hex(&mut s, &self.0);
        s
    }
}

impl fmt::Display for RelativeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for RelativeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RelativeId({self})")
    }
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn push_hex(s: &mut String, bytes: &[u8]) {
    for b in bytes {
        s.push(char::from(HEX_UPPER[usize::from(b >> 4)]));
        s.push(char::from(HEX_UPPER[usize::from(b & 0x0f)]));
    }
}

fn is_hex_id(rel: &str) -> bool {
    rel.len() == 2 * RELATIVE_ID_LEN && rel.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Which key a [`KeyId`] names; it fixes the rules for the relative part.
///
/// | kind | relative part | relative compare | source |
/// |---|---|---|---|
/// | `Ke` | exactly 32 hex digits, emitted upper-case | case-insensitive | published 10.3.4; D2 |
/// | `Kc` | `A-Z a-z 0-9 . _ -`; 32 hex digits are emitted upper-case | case-insensitive | published 10.3.5, 8.8.2.7; D2, D4 |
/// | `Km` | `A-Z a-z 0-9 . _ -`, verbatim | case-insensitive | published 10.6 |
/// | `Kpsa` | `A-Z a-z 0-9 . _ -`, verbatim | exact | published 10.5 |
/// | `Kpm` | `A-Z a-z 0-9 . _ -`, verbatim | exact | none published; D3 form |
///
/// The FQDN part is a DNS name and compares case-insensitively for every kind (D2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IdKind {
    /// KeID = HEX(RelativeKeID) "@" MEF-FQDN (draft 9.1; published 10.3.4).
    Ke,
    /// MAF key identifier = RelativeKeyID "@" MAF-FQDN, RelativeKeyID = HEX(KcID) for an exported
    /// Kc (draft 8.2.3.1; published 10.3.5) or a MAF-chosen token (published 8.8.2.7; D4).
    Kc,
    /// KmID = MAF_RELATIVE_KmID "@" MAF-FQDN (draft 9.1; published 10.6; assigned by the MAF, D3).
    Km,
    /// KpsaID = Issuer_Relative_KpsaID "@" Issuer-FQDN (draft 8.2.2.1; published 10.5).
    Kpsa,
    /// KpmID: no published format; m2msec uses `relative@MEF-FQDN` (D3).
    Kpm,
}

impl IdKind {
    /// Whether the relative part compares case-insensitively.
    #[must_use]
    pub const fn relative_case_insensitive(self) -> bool {
        matches!(self, Self::Ke | Self::Kc | Self::Km)
    }
}

/// A key identifier `relative@FQDN`, validated and in canonical text form.
///
/// The text (`as_str`, `Display`) is what goes into `psk_identity`. Canonical form: hexadecimal
/// relative parts (every KeID; a KcID of 32 hex digits) are upper-cased (D2); everything else is
/// kept as given. Equality and hashing follow the comparison rules of [`IdKind`]: the FQDN always
/// case-insensitively, the relative part case-insensitively for `Ke`, `Kc` and `Km`. Identifiers
/// of different kinds are never equal.
///
/// Identifiers outside this form (e.g. a GBA B-TID, which carries base64) are not `KeyId`s; the
/// PSK layer still takes them as opaque bytes (D3).
#[derive(Clone)]
pub struct KeyId {
    kind: IdKind,
    text: String,
    at: usize,
}

impl KeyId {
    /// Parses and validates `s` as an identifier of `kind`.
    pub fn parse(kind: IdKind, s: &str) -> Result<Self, KeyError> {
        if s.len() > MAX_KEY_ID_LEN {
            return Err(KeyError::TooLong);
        }
        let (rel, fqdn) = s.split_once('@').ok_or(KeyError::MissingAt)?;
        check_relative(kind, rel)?;
        check_fqdn(fqdn)?;
        let mut text = String::with_capacity(s.len());
        if kind == IdKind::Ke || (kind == IdKind::Kc && is_hex_id(rel)) {
            text.extend(rel.chars().map(|c| c.to_ascii_uppercase()));
        } else {
            text.push_str(rel);
        }
        text.push('@');
        text.push_str(fqdn);
        Ok(Self {
            kind,
            text,
            at: rel.len(),
        })
    }

    /// Parses a `psk_identity` as received: UTF-8 text (RFC 4279 5.1), then [`KeyId::parse`].
    pub fn parse_bytes(kind: IdKind, bytes: &[u8]) -> Result<Self, KeyError> {
        if bytes.len() > MAX_KEY_ID_LEN {
            return Err(KeyError::TooLong);
        }
        let s = core::str::from_utf8(bytes).map_err(|_| KeyError::NotUtf8)?;
        Self::parse(kind, s)
    }

    /// HEX(`relative`) "@" `fqdn`: KeID from a RelativeKeID, or a MAF key identifier from a KcID
    /// (published 10.3.4, 10.3.5; D2). Fails only if `fqdn` is not a DNS name.
    pub fn from_relative_bytes(
        kind: IdKind,
        relative: &[u8; RELATIVE_ID_LEN],
        fqdn: &str,
    ) -> Result<Self, KeyError> {
        check_fqdn(fqdn)?;
        let mut text = String::with_capacity(2 * RELATIVE_ID_LEN + 1 + fqdn.len());
        push_hex(&mut text, relative);
        text.push('@');
        text.push_str(fqdn);
        Ok(Self {
            kind,
            text,
            at: 2 * RELATIVE_ID_LEN,
        })
    }

    /// Which key this identifier names.
    #[must_use]
    pub const fn kind(&self) -> IdKind {
        self.kind
    }

    /// The canonical text, `relative@FQDN`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The canonical text as bytes, for `psk_identity`.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        self.text.as_bytes()
    }

    /// The part before the `@`.
    #[must_use]
    pub fn relative(&self) -> &str {
        &self.text[..self.at]
    }

    /// The FQDN after the `@`: the MEF, MAF or issuer that holds the key.
    #[must_use]
    pub fn fqdn(&self) -> &str {
        &self.text[self.at + 1..]
    }

    /// The 16 bytes behind a relative part of 32 hex digits (always for `Ke`; for `Kc` when the
    /// MAF returned HEX(KcID)); `None` otherwise.
    #[must_use]
    pub fn relative_id(&self) -> Option<RelativeId> {
        RelativeId::from_hex(self.relative())
    }
}

fn check_relative(kind: IdKind, rel: &str) -> Result<(), KeyError> {
    if rel.is_empty() {
        return Err(KeyError::EmptyRelative);
    }
    if rel.len() > MAX_RELATIVE_LEN {
        return Err(KeyError::RelativeTooLong);
    }
    if !rel
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(KeyError::InvalidRelativeChar);
    }
    if kind == IdKind::Ke && !is_hex_id(rel) {
        return Err(KeyError::NotHexRelative);
    }
    Ok(())
}

fn check_fqdn(fqdn: &str) -> Result<(), KeyError> {
    // is_dns_name bounds the length (253) and refuses '@', IP literals and empty labels.
    if fqdn.len() > MAX_FQDN_LEN || !is_dns_name(fqdn) {
        return Err(KeyError::InvalidFqdn);
    }
    Ok(())
}

impl PartialEq for KeyId {
    fn eq(&self, other: &Self) -> bool {
        let rel_eq = if self.kind.relative_case_insensitive() {
            self.relative().eq_ignore_ascii_case(other.relative())
        } else {
            self.relative() == other.relative()
        };
        self.kind == other.kind && rel_eq && self.fqdn().eq_ignore_ascii_case(other.fqdn())
    }
}

impl Eq for KeyId {}

impl Hash for KeyId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.kind.hash(state);
        let fold = self.kind.relative_case_insensitive();
        state.write_usize(self.at);
        for b in self.relative().bytes() {
            state.write_u8(if fold { b.to_ascii_lowercase() } else { b });
        }
        for b in self.fqdn().bytes() {
            state.write_u8(b.to_ascii_lowercase());
        }
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({:?}, {:?})", self.kind, self.text)
    }
}
