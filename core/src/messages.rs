//! Handshake message bodies (RFC 5246 7.4, RFC 4279, RFC 6347 4.2.1) and the extensions we use.
//!
//! Decoders borrow from the input, refuse trailing data and keep unknown code points, so
//! `encode(decode(x)) == x` for every well-formed `x`.

use alloc::vec::Vec;

use crate::codec::{put_u16, put_vec, LengthPrefix, Reader, Width};
use crate::enums::{ExtensionType, ProtocolVersion};
use crate::error::InvalidMessage;

/// One extension, kept raw: typed views are the `parse_*` functions below.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extension<'a> {
    /// The extension type.
    pub typ: ExtensionType,
    /// Its body.
    pub data: &'a [u8],
}

/// Reads an optional extensions block; refuses duplicates (RFC 5246 7.4.1.4).
fn read_extensions<'a>(r: &mut Reader<'a>) -> Result<Option<Vec<Extension<'a>>>, InvalidMessage> {
    if r.left() == 0 {
        return Ok(None);
    }
    let mut er = Reader::new(r.vec16()?);
    let mut exts: Vec<Extension<'a>> = Vec::new();
    while er.left() > 0 {
        let typ = ExtensionType::from(er.u16()?);
        let data = er.vec16()?;
        if exts.iter().any(|e| e.typ == typ) {
            return Err(InvalidMessage::DuplicateExtension);
        }
        exts.push(Extension { typ, data });
    }
    Ok(Some(exts))
}

fn write_extensions(
    out: &mut Vec<u8>,
    exts: Option<&[Extension<'_>]>,
) -> Result<(), InvalidMessage> {
    let Some(exts) = exts else { return Ok(()) };
    let p = LengthPrefix::start(out, Width::U16);
    for e in exts {
        put_u16(out, e.typ.into());
        put_vec(out, Width::U16, e.data)?;
    }
    p.finish(out)
}

/// Finds an extension by type.
#[must_use]
pub fn find_extension<'a>(exts: Option<&[Extension<'a>]>, typ: ExtensionType) -> Option<&'a [u8]> {
    exts?.iter().find(|e| e.typ == typ).map(|e| e.data)
}

/// ClientHello (RFC 5246 7.4.1.2; with the DTLS cookie of RFC 6347 4.2.1 when `cookie` is `Some`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientHello<'a> {
    /// client_version.
    pub version: ProtocolVersion,
    /// random.
    pub random: [u8; 32],
    /// session_id (0..32 bytes).
    pub session_id: &'a [u8],
    /// cookie (DTLS only).
    pub cookie: Option<&'a [u8]>,
    /// cipher_suites, raw code points.
    pub cipher_suites: Vec<u16>,
    /// compression_methods.
    pub compression_methods: &'a [u8],
    /// extensions, `None` when the block is absent.
    pub extensions: Option<Vec<Extension<'a>>>,
}

impl<'a> ClientHello<'a> {
    /// Decodes a body; `dtls` selects the DTLS layout with a cookie.
    pub fn decode(body: &'a [u8], dtls: bool) -> Result<Self, InvalidMessage> {
        let mut r = Reader::new(body);
        let version = ProtocolVersion(r.u16()?);
        let random = r.array()?;
        let session_id = r.vec8()?;
        if session_id.len() > 32 {
            return Err(InvalidMessage::InvalidValue("session_id longer than 32"));
        }
        let cookie = if dtls { Some(r.vec8()?) } else { None };
        let cs = r.vec16()?;
        if cs.is_empty() || cs.len() % 2 != 0 {
            return Err(InvalidMessage::InvalidValue("cipher_suites length"));
        }
        let cipher_suites = cs
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        let compression_methods = r.vec8()?;
        if compression_methods.is_empty() {
            return Err(InvalidMessage::EmptyVector);
        }
        let extensions = read_extensions(&mut r)?;
        r.finish()?;
        Ok(Self {
            version,
            random,
            session_id,
            cookie,
            cipher_suites,
            compression_methods,
            extensions,
        })
    }

    /// Appends the encoded body.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), InvalidMessage> {
        put_u16(out, self.version.0);
        out.extend_from_slice(&self.random);
        put_vec(out, Width::U8, self.session_id)?;
        if let Some(c) = self.cookie {
            put_vec(out, Width::U8, c)?;
        }
        let p = LengthPrefix::start(out, Width::U16);
        for s in &self.cipher_suites {
            put_u16(out, *s);
        }
        p.finish(out)?;
        put_vec(out, Width::U8, self.compression_methods)?;
        write_extensions(out, self.extensions.as_deref())
    }
}

/// ServerHello (RFC 5246 7.4.1.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerHello<'a> {
    /// server_version.
    pub version: ProtocolVersion,
    /// random.
    pub random: [u8; 32],
    /// session_id (0..32 bytes).
    pub session_id: &'a [u8],
    /// cipher_suite.
    pub cipher_suite: u16,
    /// compression_method.
    pub compression_method: u8,
    /// extensions, `None` when the block is absent.
    pub extensions: Option<Vec<Extension<'a>>>,
}

impl<'a> ServerHello<'a> {
    /// Decodes a body.
    pub fn decode(body: &'a [u8]) -> Result<Self, InvalidMessage> {
        let mut r = Reader::new(body);
        let version = ProtocolVersion(r.u16()?);
        let random = r.array()?;
        let session_id = r.vec8()?;
        if session_id.len() > 32 {
            return Err(InvalidMessage::InvalidValue("session_id longer than 32"));
        }
        let cipher_suite = r.u16()?;
        let compression_method = r.u8()?;
        let extensions = read_extensions(&mut r)?;
        r.finish()?;
        Ok(Self {
            version,
            random,
            session_id,
            cipher_suite,
            compression_method,
            extensions,
        })
    }

    /// Appends the encoded body.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), InvalidMessage> {
        put_u16(out, self.version.0);
        out.extend_from_slice(&self.random);
        put_vec(out, Width::U8, self.session_id)?;
        put_u16(out, self.cipher_suite);
        out.push(self.compression_method);
        write_extensions(out, self.extensions.as_deref())
    }
}

/// HelloVerifyRequest (RFC 6347 4.2.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HelloVerifyRequest<'a> {
    /// server_version.
    pub version: ProtocolVersion,
    /// cookie (0..255 bytes).
    pub cookie: &'a [u8],
}

impl<'a> HelloVerifyRequest<'a> {
    /// Decodes a body.
    pub fn decode(body: &'a [u8]) -> Result<Self, InvalidMessage> {
        let mut r = Reader::new(body);
        let version = ProtocolVersion(r.u16()?);
        let cookie = r.vec8()?;
        r.finish()?;
        Ok(Self { version, cookie })
    }

    /// Appends the encoded body.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), InvalidMessage> {
        put_u16(out, self.version.0);
        put_vec(out, Width::U8, self.cookie)
    }
}

/// A body that is a single `opaque <0..2^16-1>`: the PSK ServerKeyExchange (identity hint) and
/// the PSK ClientKeyExchange (identity), RFC 4279 section 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PskIdentityBody<'a>(pub &'a [u8]);

impl<'a> PskIdentityBody<'a> {
    /// Decodes a body.
    pub fn decode(body: &'a [u8]) -> Result<Self, InvalidMessage> {
        let mut r = Reader::new(body);
        let v = r.vec16()?;
        r.finish()?;
        Ok(Self(v))
    }

    /// Appends the encoded body.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), InvalidMessage> {
        put_vec(out, Width::U16, self.0)
    }
}

/// A TLS 1.2 `DigitallySigned` (RFC 5246 4.7): the CertificateVerify body, and the tail of an
/// ECDHE ServerKeyExchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DigitallySigned<'a> {
    /// SignatureAndHashAlgorithm as one u16 (0x0403 = ecdsa_secp256r1_sha256).
    pub scheme: u16,
    /// The signature (for ECDSA: a DER ECDSA-Sig-Value).
    pub signature: &'a [u8],
}

impl<'a> DigitallySigned<'a> {
    fn read(r: &mut Reader<'a>) -> Result<Self, InvalidMessage> {
        let scheme = r.u16()?;
        let signature = r.vec16()?;
        Ok(Self { scheme, signature })
    }

    /// Decodes a body that is exactly one `DigitallySigned` (CertificateVerify).
    pub fn decode(body: &'a [u8]) -> Result<Self, InvalidMessage> {
        let mut r = Reader::new(body);
        let v = Self::read(&mut r)?;
        r.finish()?;
        Ok(v)
    }

    /// Appends the encoding.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), InvalidMessage> {
        put_u16(out, self.scheme);
        put_vec(out, Width::U16, self.signature)
    }
}

/// The ECDHE ServerKeyExchange (RFC 8422 5.4): `ServerECDHParams` and its signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EcdheServerKeyExchange<'a> {
    /// ECCurveType (3 = named_curve; the others are deprecated and refused by the handshake).
    pub curve_type: u8,
    /// NamedCurve (23 = secp256r1).
    pub named_curve: u16,
    /// The ephemeral public point (`ECPoint`, 1..255 bytes).
    pub point: &'a [u8],
    /// The signature over client_random || server_random || ServerECDHParams.
    pub signed: DigitallySigned<'a>,
}

impl<'a> EcdheServerKeyExchange<'a> {
    /// Decodes a body. Only the named_curve form is understood: anything else is refused as
    /// an illegal value (explicit curves are deprecated by RFC 8422 5.4).
    pub fn decode(body: &'a [u8]) -> Result<Self, InvalidMessage> {
        let mut r = Reader::new(body);
        let curve_type = r.u8()?;
        if curve_type != crate::enums::CURVE_TYPE_NAMED_CURVE {
            return Err(InvalidMessage::InvalidValue("ECCurveType"));
        }
        let named_curve = r.u16()?;
        let point = r.vec8()?;
        if point.is_empty() {
            return Err(InvalidMessage::EmptyVector);
        }
        let signed = DigitallySigned::read(&mut r)?;
        r.finish()?;
        Ok(Self {
            curve_type,
            named_curve,
            point,
            signed,
        })
    }

    /// The encoded `ServerECDHParams` (what the signature covers after the two randoms).
    pub fn params(&self) -> Result<Vec<u8>, InvalidMessage> {
        let mut out = Vec::with_capacity(4 + self.point.len());
        out.push(self.curve_type);
        put_u16(&mut out, self.named_curve);
        put_vec(&mut out, Width::U8, self.point)?;
        Ok(out)
    }

    /// Appends the encoded body.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), InvalidMessage> {
        out.extend_from_slice(&self.params()?);
        self.signed.encode(out)
    }
}

/// CertificateRequest (RFC 5246 7.4.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateRequest<'a> {
    /// ClientCertificateType values (64 = ecdsa_sign).
    pub certificate_types: &'a [u8],
    /// supported_signature_algorithms.
    pub sig_schemes: Vec<u16>,
    /// certificate_authorities: DER DistinguishedNames.
    pub authorities: Vec<&'a [u8]>,
}

impl<'a> CertificateRequest<'a> {
    /// Decodes a body.
    pub fn decode(body: &'a [u8]) -> Result<Self, InvalidMessage> {
        let mut r = Reader::new(body);
        let certificate_types = r.vec8()?;
        if certificate_types.is_empty() {
            return Err(InvalidMessage::EmptyVector);
        }
        let sig_schemes = u16_list(r.vec16()?)?;
        let mut ca = Reader::new(r.vec16()?);
        let mut authorities = Vec::new();
        while ca.left() > 0 {
            let dn = ca.vec16()?;
            if dn.is_empty() {
                return Err(InvalidMessage::EmptyVector);
            }
            authorities.push(dn);
        }
        r.finish()?;
        Ok(Self {
            certificate_types,
            sig_schemes,
            authorities,
        })
    }

    /// Appends the encoded body.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), InvalidMessage> {
        put_vec(out, Width::U8, self.certificate_types)?;
        let p = LengthPrefix::start(out, Width::U16);
        for s in &self.sig_schemes {
            put_u16(out, *s);
        }
        p.finish(out)?;
        let p = LengthPrefix::start(out, Width::U16);
        for dn in &self.authorities {
            put_vec(out, Width::U16, dn)?;
        }
        p.finish(out)
    }
}

/// The X.509 Certificate body (RFC 5246 7.4.2): `ASN.1Cert certificate_list<0..2^24-1>`, each
/// certificate 1..2^24-1 bytes. An empty list is how a client declines a CertificateRequest.
pub fn decode_certificate_list(body: &[u8]) -> Result<Vec<&[u8]>, InvalidMessage> {
    let mut r = Reader::new(body);
    let mut list = Reader::new(r.vec24()?);
    r.finish()?;
    let mut certs = Vec::new();
    while list.left() > 0 {
        let c = list.vec24()?;
        if c.is_empty() {
            return Err(InvalidMessage::EmptyVector);
        }
        certs.push(c);
    }
    Ok(certs)
}

/// Encodes an X.509 Certificate body from DER certificates, leaf first.
pub fn encode_certificate_list(certs: &[Vec<u8>], out: &mut Vec<u8>) -> Result<(), InvalidMessage> {
    let p = LengthPrefix::start(out, Width::U24);
    for c in certs {
        put_vec(out, Width::U24, c)?;
    }
    p.finish(out)
}

/// The raw public key Certificate body (RFC 7250 3): `opaque ASN.1_subjectPublicKeyInfo<1..2^24-1>`.
pub fn decode_raw_public_key(body: &[u8]) -> Result<&[u8], InvalidMessage> {
    let mut r = Reader::new(body);
    let spki = r.vec24()?;
    r.finish()?;
    if spki.is_empty() {
        return Err(InvalidMessage::EmptyVector);
    }
    Ok(spki)
}

/// Encodes a raw public key Certificate body.
pub fn encode_raw_public_key(spki: &[u8], out: &mut Vec<u8>) -> Result<(), InvalidMessage> {
    put_vec(out, Width::U24, spki)
}

/// A body that is one `ECPoint` (`opaque point<1..2^8-1>`): the ECDHE ClientKeyExchange.
pub fn decode_ec_point(body: &[u8]) -> Result<&[u8], InvalidMessage> {
    let mut r = Reader::new(body);
    let p = r.vec8()?;
    r.finish()?;
    if p.is_empty() {
        return Err(InvalidMessage::EmptyVector);
    }
    Ok(p)
}

/// A list of u16 (`<2..2^16-2>`: supported_groups, signature_algorithms), raw bytes given.
pub fn u16_list(data: &[u8]) -> Result<Vec<u16>, InvalidMessage> {
    if data.is_empty() || data.len() % 2 != 0 {
        return Err(InvalidMessage::InvalidValue("u16 list length"));
    }
    Ok(data
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect())
}

/// An extension body that is one `vec16` of u16 values (supported_groups, signature_algorithms).
pub fn parse_u16_list_ext(data: &[u8]) -> Result<Vec<u16>, InvalidMessage> {
    let mut r = Reader::new(data);
    let v = u16_list(r.vec16()?)?;
    r.finish()?;
    Ok(v)
}

/// An extension body that is one non-empty `vec8` of bytes (ec_point_formats, the ClientHello
/// certificate type lists of RFC 7250).
pub fn parse_u8_list_ext(data: &[u8]) -> Result<&[u8], InvalidMessage> {
    let mut r = Reader::new(data);
    let v = r.vec8()?;
    r.finish()?;
    if v.is_empty() {
        return Err(InvalidMessage::EmptyVector);
    }
    Ok(v)
}

/// Encodes a `vec16` of u16 values as an extension body.
pub fn encode_u16_list_ext(values: &[u16], out: &mut Vec<u8>) -> Result<(), InvalidMessage> {
    let p = LengthPrefix::start(out, Width::U16);
    for v in values {
        put_u16(out, *v);
    }
    p.finish(out)
}

/// Encodes a `vec8` of bytes as an extension body.
pub fn encode_u8_list_ext(values: &[u8], out: &mut Vec<u8>) -> Result<(), InvalidMessage> {
    put_vec(out, Width::U8, values)
}

/// Reads the first host_name of a server_name extension (RFC 6066 3) and checks it is a DNS name.
pub fn parse_server_name(data: &[u8]) -> Result<&str, InvalidMessage> {
    let mut r = Reader::new(data);
    let mut list = Reader::new(r.vec16()?);
    r.finish()?;
    let mut host = None;
    while list.left() > 0 {
        let typ = list.u8()?;
        let name = list.vec16()?;
        if typ == 0 {
            if host.is_some() {
                return Err(InvalidMessage::InvalidValue("two host_name entries"));
            }
            host = Some(name);
        }
    }
    let name = host.ok_or(InvalidMessage::InvalidValue("no host_name"))?;
    let s = core::str::from_utf8(name).map_err(|_| InvalidMessage::InvalidValue("host_name"))?;
    if !is_dns_name(s) {
        return Err(InvalidMessage::InvalidValue("host_name"));
    }
    Ok(s)
}

/// Encodes a server_name extension body with one host_name.
pub fn encode_server_name(host: &str, out: &mut Vec<u8>) -> Result<(), InvalidMessage> {
    let p = LengthPrefix::start(out, Width::U16);
    out.push(0);
    put_vec(out, Width::U16, host.as_bytes())?;
    p.finish(out)
}

/// Whether `s` is a DNS host name fit for SNI: LDH labels of 1..63 bytes, 1..253 in all, not an
/// IP literal, an optional trailing dot not allowed (RFC 6066 3).
#[must_use]
pub fn is_dns_name(s: &str) -> bool {
    if s.is_empty() || s.len() > 253 || s.parse_ip_like() {
        return false;
    }
    s.split('.').all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

trait IpLike {
    fn parse_ip_like(&self) -> bool;
}

impl IpLike for str {
    /// IPv4 dotted quads (all-digit labels) and anything with a colon are IP literals.
    fn parse_ip_like(&self) -> bool {
        self.contains(':')
            || self
                .split('.')
                .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()))
    }
}

/// renegotiation_info body for an initial handshake: an empty `renegotiated_connection`.
pub const EMPTY_RENEGOTIATION_INFO: &[u8] = &[0];

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn client_hello_round_trip_with_unknown_extension() {
        let ch = ClientHello {
            version: ProtocolVersion::TLS12,
            random: [7; 32],
            session_id: &[1, 2, 3],
            cookie: None,
            cipher_suites: vec![0xC0A8, 0x1234],
            compression_methods: &[0],
            extensions: Some(vec![
                Extension {
                    typ: ExtensionType::ExtendedMasterSecret,
                    data: &[],
                },
                Extension {
                    typ: ExtensionType::Unknown(0xabcd),
                    data: &[9, 9],
                },
            ]),
        };
        let mut out = Vec::new();
        ch.encode(&mut out).unwrap();
        let back = ClientHello::decode(&out, false).unwrap();
        assert_eq!(back, ch);
        let mut again = Vec::new();
        back.encode(&mut again).unwrap();
        assert_eq!(again, out);
    }

    #[test]
    fn duplicate_extension_refused() {
        let sh = ServerHello {
            version: ProtocolVersion::TLS12,
            random: [0; 32],
            session_id: &[],
            cipher_suite: 0xC0A4,
            compression_method: 0,
            extensions: Some(vec![
                Extension {
                    typ: ExtensionType::ExtendedMasterSecret,
                    data: &[],
                },
                Extension {
                    typ: ExtensionType::ExtendedMasterSecret,
                    data: &[],
                },
            ]),
        };
        let mut out = Vec::new();
        sh.encode(&mut out).unwrap();
        assert_eq!(
            ServerHello::decode(&out),
            Err(InvalidMessage::DuplicateExtension)
        );
    }

    #[test]
    fn sni_names() {
        assert!(is_dns_name("mef.example.com"));
        assert!(is_dns_name("localhost"));
        assert!(!is_dns_name("127.0.0.1"));
        assert!(!is_dns_name("::1"));
        assert!(!is_dns_name("a..b"));
        assert!(!is_dns_name("-a.b"));
        let mut out = Vec::new();
        encode_server_name("in-cse.example", &mut out).unwrap();
        assert_eq!(parse_server_name(&out), Ok("in-cse.example"));
    }
}
