//! What the client and server machines share for the ECDHE-ECDSA suites: the Certificate body
//! in both forms (X.509 list, RFC 7250 raw public key), the verifier call with its three
//! answers, and the data a ServerKeyExchange signature covers.

use alloc::vec::Vec;

use crate::cert::{
    CertDecision, CertError, CertVerifier, CertifiedKey, Credential, PeerCertificateInfo,
};
use crate::cert::{MAX_CHAIN_BYTES, MAX_CHAIN_LEN};
use crate::common::{Common, QueuedEvent};
use crate::enums::CertificateType;
use crate::error::Error;
use crate::messages::{
    decode_certificate_list, decode_raw_public_key, encode_certificate_list, encode_raw_public_key,
};

/// Decodes a Certificate body of the negotiated type. `None` is an empty X.509 list (a client
/// declining a CertificateRequest). Chains over [`MAX_CHAIN_LEN`] certificates or
/// [`MAX_CHAIN_BYTES`] bytes are refused before anything is copied.
pub(crate) fn parse_credential(
    body: &[u8],
    typ: CertificateType,
) -> Result<Option<Credential>, Error> {
    let cred = if typ == CertificateType::RawPublicKey {
        Credential::RawPublicKey(decode_raw_public_key(body)?.to_vec())
    } else {
        let list = decode_certificate_list(body)?;
        if list.is_empty() {
            return Ok(None);
        }
        let total: usize = list.iter().map(|c| c.len()).sum();
        if list.len() > MAX_CHAIN_LEN || total > MAX_CHAIN_BYTES {
            return Err(CertError::ChainTooLong.into());
        }
        Credential::X509(list.iter().map(|c| c.to_vec()).collect())
    };
    cred.check_bounds()?;
    Ok(Some(cred))
}

/// The Certificate body presenting `key` as `typ` (a raw public key is the leaf's SPKI).
pub(crate) fn encode_credential(
    key: Option<&CertifiedKey>,
    typ: CertificateType,
) -> Result<Vec<u8>, Error> {
    let mut body = Vec::new();
    match (key, typ) {
        (Some(k), CertificateType::RawPublicKey) => {
            encode_raw_public_key(&k.key().spki_der(), &mut body)?;
        }
        (Some(k), _) => match k.credential() {
            Credential::X509(chain) => encode_certificate_list(chain, &mut body)?,
            // Configuration checks keep a raw key out of X.509; send it as no certificate.
            Credential::RawPublicKey(_) => encode_certificate_list(&[], &mut body)?,
        },
        (None, _) => encode_certificate_list(&[], &mut body)?,
    }
    Ok(body)
}

/// The certificate type `key`'s credential is sent as by default.
pub(crate) fn own_type(key: &CertifiedKey) -> CertificateType {
    match key.credential() {
        Credential::X509(_) => CertificateType::X509,
        Credential::RawPublicKey(_) => CertificateType::RawPublicKey,
    }
}

/// Asks `verifier` about `cred`: `Some(info)` to go on, `None` when the decision is deferred
/// (the `VerifyPeer` event is queued), or the refusal.
pub(crate) fn run_verifier(
    cx: &mut Common,
    verifier: Option<&dyn CertVerifier>,
    cred: &Credential,
) -> Result<Option<PeerCertificateInfo>, Error> {
    let Some(v) = verifier else {
        return Err(crate::error::ConfigError::MissingVerifier.into());
    };
    match v.verify(cred, cx.unix) {
        CertDecision::Accept(info) => Ok(Some(info)),
        CertDecision::Reject(e) => Err(e.into()),
        CertDecision::Defer => {
            cx.events.push_back(QueuedEvent::VerifyPeer(cred.clone()));
            Ok(None)
        }
    }
}

/// client_random || server_random || ServerECDHParams: what the ServerKeyExchange signs.
pub(crate) fn ske_signed_data(
    client_random: &[u8; 32],
    server_random: &[u8; 32],
    params: &[u8],
) -> Vec<u8> {
    let mut v = Vec::with_capacity(64 + params.len());
    v.extend_from_slice(client_random);
    v.extend_from_slice(server_random);
    v.extend_from_slice(params);
    v
}
