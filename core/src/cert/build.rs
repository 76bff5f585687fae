//! A small X.509 v3 certificate builder (P-256, ecdsa-with-SHA256) for `m2msec cert new` and
//! for tests, and PEM text (RFC 7468) around DER.
//!
//! Everything is deterministic: the serial number comes from the caller (no ambient
//! randomness in the core) and the ECDSA signature uses RFC 6979 nonces.
//!
//! ```text
//!  CertBuilder::new(serial, not_before, not_after)
//!      .subject_cn("cse1.example.com")
//!      .san(SubjectAltName::Dns(..)) / .san(SubjectAltName::Uri("//sp.example.com/CSE1/Cae1"))
//!      .ca(Some(0)) / .key_usage(..) / .name_constraints(..) / .extension(..)
//!      .self_signed(&key)            -> DER   (adds SAN URI ni:///sha-256;<own key hash>)
//!      .signed_by(&key.verifying_key(), &issuer_certified_key) -> DER
//! ```

use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use der::asn1::{BitString, GeneralizedTime, Ia5String, OctetString, UtcTime, Utf8StringRef};
use der::oid::AssociatedOid;
use der::{Any, DateTime, Decode, Encode};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, VerifyingKey};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::certificate::{TbsCertificate, Version};
use x509_cert::ext::pkix::constraints::name::GeneralSubtree;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    BasicConstraints, KeyUsage, KeyUsages, NameConstraints, SubjectAltName as SanExtension,
};
use x509_cert::ext::Extension;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};
use x509_cert::Certificate;

use super::b64::{self, Alphabet};
use super::verify::{RootOfTrust, RotHash, ECDSA_WITH_SHA256};
use super::{spki_of, CertError, CertifiedKey, Credential, SigningKey, SubjectAltName};
use crate::time::UnixTime;

/// keyUsage digitalSignature (bit 0).
pub const KU_DIGITAL_SIGNATURE: u16 = 1 << 0;
/// keyUsage keyEncipherment (bit 2).
pub const KU_KEY_ENCIPHERMENT: u16 = 1 << 2;
/// keyUsage keyAgreement (bit 4).
pub const KU_KEY_AGREEMENT: u16 = 1 << 4;
/// keyUsage keyCertSign (bit 5).
pub const KU_KEY_CERT_SIGN: u16 = 1 << 5;
/// keyUsage cRLSign (bit 6).
pub const KU_CRL_SIGN: u16 = 1 << 6;

const OID_CN: der::asn1::ObjectIdentifier = der::asn1::ObjectIdentifier::new_unwrap("2.5.4.3");

/// An extra extension, DER value given as is (tests: unknown critical extensions, names hidden
/// in other fields).
#[derive(Clone, Debug)]
struct Extra {
    /// `None` when the dotted text did not parse (reported by the build).
    oid: Option<der::asn1::ObjectIdentifier>,
    critical: bool,
    value: Vec<u8>,
}

/// Builds one certificate. See the module documentation.
#[derive(Clone, Debug)]
pub struct CertBuilder {
    serial: Vec<u8>,
    not_before: UnixTime,
    not_after: UnixTime,
    subject_cn: Option<String>,
    sans: Vec<SubjectAltName>,
    /// `None`: no basicConstraints; `Some((ca, path_len))`.
    basic: Option<(bool, Option<u8>)>,
    /// `None`: no keyUsage; `Some(bits)`. Defaults per role when not set.
    key_usage: Option<Option<u16>>,
    permitted: Vec<SubjectAltName>,
    excluded: Vec<SubjectAltName>,
    ni_san: bool,
    extras: Vec<Extra>,
}

impl CertBuilder {
    /// A builder with the serial number (big-endian positive integer bytes, 1 to 20) and the
    /// validity period.
    #[must_use]
    pub fn new(serial: &[u8], not_before: UnixTime, not_after: UnixTime) -> Self {
        Self {
            serial: serial.to_vec(),
            not_before,
            not_after,
            subject_cn: None,
            sans: Vec::new(),
            basic: None,
            key_usage: None,
            permitted: Vec::new(),
            excluded: Vec::new(),
            ni_san: true,
            extras: Vec::new(),
        }
    }

    /// The Subject's commonName (UTF8String). Without it the Subject is empty and the
    /// subjectAltName extension is marked critical (RFC 5280 4.2.1.6).
    #[must_use]
    pub fn subject_cn(mut self, cn: &str) -> Self {
        self.subject_cn = Some(String::from(cn));
        self
    }

    /// Adds a subjectAltName entry: [`SubjectAltName::Uri`] for an absolute AE-ID
    /// (`//sp.example.com/CSE1/Cae1`, published 10.1.1), [`SubjectAltName::Dns`] for a CSE's
    /// public domain name or an FQDN, [`SubjectAltName::Ip`] (4 or 16 bytes).
    #[must_use]
    pub fn san(mut self, name: SubjectAltName) -> Self {
        self.sans.push(name);
        self
    }

    /// Makes a CA certificate: basicConstraints cA=TRUE (critical) with the given
    /// pathLenConstraint, and by default keyUsage digitalSignature, keyCertSign, cRLSign.
    #[must_use]
    pub fn ca(mut self, path_len: Option<u8>) -> Self {
        self.basic = Some((true, path_len));
        self
    }

    /// Adds basicConstraints cA=FALSE (an end entity says so explicitly).
    #[must_use]
    pub fn end_entity(mut self) -> Self {
        self.basic = Some((false, None));
        self
    }

    /// keyUsage with these `KU_*` bits (critical), replacing the role's default
    /// (end entity: digitalSignature; CA: digitalSignature, keyCertSign, cRLSign).
    #[must_use]
    pub fn key_usage(mut self, bits: u16) -> Self {
        self.key_usage = Some(Some(bits));
        self
    }

    /// No keyUsage extension at all.
    #[must_use]
    pub fn no_key_usage(mut self) -> Self {
        self.key_usage = Some(None);
        self
    }

    /// nameConstraints (critical) with these permitted and excluded subtrees (dNSName and URI
    /// bases are written as given: `example.com`, `.example.com`; IP as address || mask).
    #[must_use]
    pub fn name_constraints(
        mut self,
        permitted: Vec<SubjectAltName>,
        excluded: Vec<SubjectAltName>,
    ) -> Self {
        self.permitted = permitted;
        self.excluded = excluded;
        self
    }

    /// Whether [`Self::self_signed`] adds the SAN URI `ni:///sha-256;<hash of the key>` (default
    /// yes: the self-signed rule needs the key hash in a name field).
    #[must_use]
    pub fn ni_san(mut self, yes: bool) -> Self {
        self.ni_san = yes;
        self
    }

    /// Adds an extension with a DER value given as is; `oid` in dotted form. Errors at build time
    /// if the OID does not parse.
    #[must_use]
    pub fn extension(mut self, oid: &str, critical: bool, der_value: &[u8]) -> Self {
        let oid = der::asn1::ObjectIdentifier::new(oid).ok();
        self.extras.push(Extra {
            oid,
            critical,
            value: der_value.to_vec(),
        });
        self
    }

    /// A self-signed certificate for `key` (issuer = subject, signed by `key`).
    pub fn self_signed(mut self, key: &SigningKey) -> Result<Vec<u8>, CertError> {
        if self.ni_san {
            let ni = RootOfTrust::of_spki(&key.spki_der(), RotHash::Sha256).to_ni_uri();
            self.sans.push(SubjectAltName::Uri(ni));
        }
        let subject = self.subject_name()?;
        self.build(subject.clone(), subject, &key.verifying_key(), key)
    }

    /// A certificate for `subject_key`, issued by `issuer` (its leaf certificate's subject
    /// becomes the issuer name; its key signs). `issuer` must be an X.509 credential.
    pub fn signed_by(
        self,
        subject_key: &VerifyingKey,
        issuer: &CertifiedKey,
    ) -> Result<Vec<u8>, CertError> {
        let Credential::X509(chain) = issuer.credential() else {
            return Err(CertError::NoCertificate);
        };
        let issuer_cert = chain.first().ok_or(CertError::NoCertificate)?;
        let issuer_cert = Certificate::from_der(issuer_cert).map_err(|_| CertError::Malformed)?;
        let subject = self.subject_name()?;
        self.build(
            issuer_cert.tbs_certificate.subject,
            subject,
            subject_key,
            issuer.key(),
        )
    }

    fn subject_name(&self) -> Result<Name, CertError> {
        let mut rdns = Vec::new();
        if let Some(cn) = &self.subject_cn {
            let value = Any::from(Utf8StringRef::new(cn).map_err(|_| CertError::Malformed)?);
            let atv = AttributeTypeAndValue { oid: OID_CN, value };
            let set = der::asn1::SetOfVec::try_from(alloc::vec![atv])
                .map_err(|_| CertError::Malformed)?;
            rdns.push(RelativeDistinguishedName(set));
        }
        Ok(RdnSequence(rdns))
    }

    fn build(
        self,
        issuer: Name,
        subject: Name,
        subject_key: &VerifyingKey,
        signer: &SigningKey,
    ) -> Result<Vec<u8>, CertError> {
        let bad = |_| CertError::Malformed;
        let alg = AlgorithmIdentifierOwned {
            oid: ECDSA_WITH_SHA256,
            parameters: None,
        };
        let spki = SubjectPublicKeyInfoOwned::from_der(&spki_of(subject_key)).map_err(bad)?;
        let is_ca = matches!(self.basic, Some((true, _)));

        let mut extensions = Vec::new();
        if let Some((ca, path_len_constraint)) = self.basic {
            let bc = BasicConstraints {
                ca,
                path_len_constraint,
            };
            extensions.push(ext(BasicConstraints::OID, true, &bc)?);
        }
        let ku_bits = match self.key_usage {
            Some(bits) => bits,
            None if is_ca => Some(KU_DIGITAL_SIGNATURE | KU_KEY_CERT_SIGN | KU_CRL_SIGN),
            None => Some(KU_DIGITAL_SIGNATURE),
        };
        if let Some(bits) = ku_bits {
            extensions.push(ext(KeyUsage::OID, true, &key_usage(bits))?);
        }
        if !self.sans.is_empty() {
            let names = self
                .sans
                .iter()
                .map(general_name)
                .collect::<Result<Vec<_>, _>>()?;
            let critical = subject.0.is_empty();
            extensions.push(ext(SanExtension::OID, critical, &SanExtension(names))?);
        }
        if !self.permitted.is_empty() || !self.excluded.is_empty() {
            let subtrees =
                |names: &[SubjectAltName]| -> Result<Option<Vec<GeneralSubtree>>, CertError> {
                    if names.is_empty() {
                        return Ok(None);
                    }
                    names
                        .iter()
                        .map(|n| {
                            Ok(GeneralSubtree {
                                base: general_name(n)?,
                                minimum: 0,
                                maximum: None,
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()
                        .map(Some)
                };
            let nc = NameConstraints {
                permitted_subtrees: subtrees(&self.permitted)?,
                excluded_subtrees: subtrees(&self.excluded)?,
            };
            extensions.push(ext(NameConstraints::OID, true, &nc)?);
        }
        for e in &self.extras {
            extensions.push(Extension {
                extn_id: e.oid.ok_or(CertError::Malformed)?,
                critical: e.critical,
                extn_value: OctetString::new(e.value.clone()).map_err(bad)?,
            });
        }

        let tbs = TbsCertificate {
            version: Version::V3,
            serial_number: SerialNumber::new(&self.serial).map_err(bad)?,
            signature: alg.clone(),
            issuer,
            validity: Validity {
                not_before: time(self.not_before)?,
                not_after: time(self.not_after)?,
            },
            subject,
            subject_public_key_info: spki,
            issuer_unique_id: None,
            subject_unique_id: None,
            extensions: (!extensions.is_empty()).then_some(extensions),
        };
        let tbs_der = tbs.to_der().map_err(bad)?;
        let sig: Signature = signer.ecdsa().sign(&tbs_der);
        let cert = Certificate {
            tbs_certificate: tbs,
            signature_algorithm: alg,
            signature: BitString::from_bytes(sig.to_der().as_bytes()).map_err(bad)?,
        };
        cert.to_der().map_err(bad)
    }
}

fn ext<T: Encode>(
    oid: der::asn1::ObjectIdentifier,
    critical: bool,
    value: &T,
) -> Result<Extension, CertError> {
    let der = value.to_der().map_err(|_| CertError::Malformed)?;
    Ok(Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(der).map_err(|_| CertError::Malformed)?,
    })
}

fn key_usage(bits: u16) -> KeyUsage {
    let all = [
        (KU_DIGITAL_SIGNATURE, KeyUsages::DigitalSignature),
        (1 << 1, KeyUsages::NonRepudiation),
        (KU_KEY_ENCIPHERMENT, KeyUsages::KeyEncipherment),
        (1 << 3, KeyUsages::DataEncipherment),
        (KU_KEY_AGREEMENT, KeyUsages::KeyAgreement),
        (KU_KEY_CERT_SIGN, KeyUsages::KeyCertSign),
        (KU_CRL_SIGN, KeyUsages::CRLSign),
    ];
    let mut set = der::flagset::FlagSet::<KeyUsages>::default();
    for (bit, flag) in all {
        if bits & bit != 0 {
            set |= flag;
        }
    }
    KeyUsage(set)
}

fn general_name(n: &SubjectAltName) -> Result<GeneralName, CertError> {
    let ia5 = |s: &str| Ia5String::new(s).map_err(|_| CertError::Malformed);
    Ok(match n {
        SubjectAltName::Dns(s) => GeneralName::DnsName(ia5(s)?),
        SubjectAltName::Uri(s) => GeneralName::UniformResourceIdentifier(ia5(s)?),
        SubjectAltName::Ip(b) => {
            GeneralName::IpAddress(OctetString::new(b.clone()).map_err(|_| CertError::Malformed)?)
        }
        SubjectAltName::Other(der) => {
            GeneralName::from_der(der).map_err(|_| CertError::Malformed)?
        }
    })
}

/// UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 4.1.2.5).
fn time(t: UnixTime) -> Result<Time, CertError> {
    let dt =
        DateTime::from_unix_duration(Duration::from_secs(t.0)).map_err(|_| CertError::Malformed)?;
    if dt.year() < 2050 {
        UtcTime::from_date_time(dt).map(Time::UtcTime)
    } else {
        Ok(Time::GeneralTime(GeneralizedTime::from_date_time(dt)))
    }
    .map_err(|_| CertError::Malformed)
}

/// PEM text (RFC 7468) of `der` under `label` (`CERTIFICATE`, `PUBLIC KEY`, `PRIVATE KEY`),
/// 64 characters a line, `\n` line ends.
#[must_use]
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    let body = b64::encode(Alphabet::Standard, der);
    let mut out = String::with_capacity(body.len() + body.len() / 64 + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    let mut rest = body.as_str();
    while !rest.is_empty() {
        let (line, tail) = rest.split_at(rest.len().min(64));
        out.push_str(line);
        out.push('\n');
        rest = tail;
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

/// Every PEM block labelled `label` in `text`, decoded, in order (a certificate chain file).
/// Text outside the blocks is ignored; a block with bad base64 or no END line is
/// [`CertError::Malformed`].
pub fn pem_decode(label: &str, text: &str) -> Result<Vec<Vec<u8>>, CertError> {
    let mut begin = String::from("-----BEGIN ");
    begin.push_str(label);
    begin.push_str("-----");
    let mut end = String::from("-----END ");
    end.push_str(label);
    end.push_str("-----");
    let mut out = Vec::new();
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        if line != begin {
            continue;
        }
        let mut body = String::new();
        loop {
            let l = lines.next().ok_or(CertError::Malformed)?;
            if l == end {
                break;
            }
            body.push_str(l);
        }
        out.push(b64::decode(Alphabet::Standard, &body).ok_or(CertError::Malformed)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trip() {
        let der: Vec<u8> = (0u8..=200).collect();
        let pem = pem_encode("CERTIFICATE", &der);
        assert!(pem.lines().all(|l| l.len() <= 64));
        let two = alloc::format!("junk\n{pem}\r\n{pem}");
        assert_eq!(
            pem_decode("CERTIFICATE", &two).unwrap(),
            alloc::vec![der.clone(), der]
        );
        assert_eq!(
            pem_decode("PUBLIC KEY", &pem).unwrap(),
            Vec::<Vec<u8>>::new()
        );
        let cut = &pem[..pem.len() - 10];
        assert_eq!(pem_decode("CERTIFICATE", cut), Err(CertError::Malformed));
    }
}
