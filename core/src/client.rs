//! The TLS 1.2 client handshake (RFC 5246 7.3): PSK (RFC 4279 2) and ECDHE-ECDSA (RFC 8422,
//! RFC 7251, with RFC 7250 raw public keys) in one machine.
//!
//! PSK:
//!
//! ```text
//!  ClientHello            -->
//!                         <--  ServerHello             ExpectServerHello
//!                         <--  [ServerKeyExchange]     ExpectServerKeyExchangeOrDone
//!                         <--  ServerHelloDone         ExpectServerHelloDone
//!  ClientKeyExchange
//!  [ChangeCipherSpec]
//!  Finished               -->
//!                         <--  [ChangeCipherSpec]      ExpectChangeCipherSpec
//!                         <--  Finished                ExpectFinished
//!  (connected)                                         Connected
//! ```
//!
//! ECDHE-ECDSA (the server's messages after ServerHello):
//!
//! ```text
//!                         <--  Certificate             ExpectCertificate
//!        (the verifier may defer here)                 AwaitingPeer
//!                         <--  ServerKeyExchange       ExpectServerKeyExchangeEcdhe
//!                         <--  [CertificateRequest]    ExpectCertificateRequestOrDone
//!                         <--  ServerHelloDone         ExpectServerHelloDoneEcdhe
//!  [Certificate]
//!  ClientKeyExchange
//!  [CertificateVerify]
//!  [ChangeCipherSpec]
//!  Finished               -->                          (then as PSK)
//! ```

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

#[cfg(feature = "ecdhe")]
use p256::ecdsa::VerifyingKey;
use sha2::{Digest, Sha256};

use crate::cert::{CertError, PeerCertificateInfo};
use crate::common::{Common, Established, QueuedEvent, SessionInfo};
use crate::config::ClientConfig;
#[cfg(feature = "ecdhe")]
use crate::crypto::ecc::{self, EphemeralKey, POINT_LEN};
use crate::dtls::ReplayWindow;
use crate::enums::{CertificateType, ExtensionType, HandshakeType, POINT_FORMAT_UNCOMPRESSED};
#[cfg(feature = "ecdhe")]
use crate::enums::{CLIENT_CERT_TYPE_ECDSA_SIGN, ECDSA_SECP256R1_SHA256, NAMED_GROUP_SECP256R1};
use crate::error::{
    ApiMisuse, ConfigError, Error, InvalidMessage, PeerIncompatible, PeerMisbehaved,
};
#[cfg(feature = "ecdhe")]
use crate::handshake_cert::{encode_credential, own_type, parse_credential, ske_signed_data};
#[cfg(feature = "ecdhe")]
use crate::key_schedule::session_keys;
use crate::key_schedule::{psk_session_keys, verify_data};
use crate::messages::{
    encode_server_name, ClientHello, Extension, HelloVerifyRequest, PskIdentityBody, ServerHello,
    EMPTY_RENEGOTIATION_INFO,
};
#[cfg(feature = "ecdhe")]
use crate::messages::{
    encode_u16_list_ext, encode_u8_list_ext, CertificateRequest, DigitallySigned,
    EcdheServerKeyExchange,
};
use crate::secret::ct_eq;
use crate::suites::CipherSuite;

/// Parameters fixed by ServerHello.
#[derive(Debug)]
pub(crate) struct Negotiated {
    client_random: [u8; 32],
    server_random: [u8; 32],
    suite: CipherSuite,
    ems: bool,
    /// The server's certificate type (RFC 7250; X.509 unless negotiated).
    #[cfg_attr(not(feature = "ecdhe"), allow(dead_code))]
    server_cert_type: CertificateType,
    /// Ours, if the server asks for a certificate.
    #[cfg_attr(not(feature = "ecdhe"), allow(dead_code))]
    client_cert_type: CertificateType,
}

#[cfg(feature = "ecdhe")]
/// What an ECDHE-ECDSA handshake knows once the server's Certificate is in.
#[derive(Debug)]
pub(crate) struct Ecdhe {
    neg: Negotiated,
    server_name: Option<String>,
    peer_key: VerifyingKey,
    /// `None` while the verifier's decision is deferred.
    peer_info: Option<PeerCertificateInfo>,
    /// The server's ephemeral point (from ServerKeyExchange), checked to be on the curve.
    server_point: Option<[u8; POINT_LEN]>,
    /// Whether the server sent a CertificateRequest we can answer with our credential.
    send_own: Option<bool>,
}

/// The client's states, in protocol order.
#[derive(Debug)]
pub(crate) enum ClientState {
    ExpectServerHello {
        client_random: [u8; 32],
        server_name: Option<String>,
    },
    ExpectServerKeyExchangeOrDone {
        neg: Negotiated,
        server_name: Option<String>,
    },
    ExpectServerHelloDone {
        neg: Negotiated,
        hint: Option<Vec<u8>>,
        server_name: Option<String>,
    },
    #[cfg(feature = "ecdhe")]
    ExpectCertificate {
        neg: Negotiated,
        server_name: Option<String>,
    },
    /// The verifier deferred: waits for `Session::peer_verified`, then expects ServerKeyExchange.
    #[cfg(feature = "ecdhe")]
    AwaitingPeer(Box<Ecdhe>),
    #[cfg(feature = "ecdhe")]
    ExpectServerKeyExchangeEcdhe(Box<Ecdhe>),
    #[cfg(feature = "ecdhe")]
    ExpectCertificateRequestOrDone(Box<Ecdhe>),
    #[cfg(feature = "ecdhe")]
    ExpectServerHelloDoneEcdhe(Box<Ecdhe>),
    ExpectChangeCipherSpec(Box<Established>),
    ExpectFinished(Box<Established>),
    Connected(Box<Established>),
}

/// Sends ClientHello and returns the first state.
pub(crate) fn start(
    cx: &mut Common,
    cfg: &ClientConfig,
    server_name: Option<&str>,
) -> Result<ClientState, Error> {
    let client_random: [u8; 32] = cx.rng.array();
    let cookie: Option<&[u8]> = cx.dtls.is_some().then_some(&[]);
    send_client_hello(cx, cfg, &client_random, server_name, cookie)?;
    Ok(ClientState::ExpectServerHello {
        client_random,
        server_name: server_name.map(String::from),
    })
}

fn send_client_hello(
    cx: &mut Common,
    cfg: &ClientConfig,
    client_random: &[u8; 32],
    server_name: Option<&str>,
    cookie: Option<&[u8]>,
) -> Result<(), Error> {
    let mut sni = Vec::new();
    let mut extensions = vec![
        Extension {
            typ: ExtensionType::ExtendedMasterSecret,
            data: &[],
        },
        Extension {
            typ: ExtensionType::RenegotiationInfo,
            data: EMPTY_RENEGOTIATION_INFO,
        },
    ];
    #[cfg(feature = "ecdhe")]
    let (mut groups, mut formats, mut sigalgs, mut sct, mut cct) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    #[cfg(feature = "ecdhe")]
    if cfg.suites.iter().any(|s| s.is_ecdhe_ecdsa()) {
        encode_u16_list_ext(&[NAMED_GROUP_SECP256R1], &mut groups)?;
        encode_u8_list_ext(&[POINT_FORMAT_UNCOMPRESSED], &mut formats)?;
        encode_u16_list_ext(&[ECDSA_SECP256R1_SHA256], &mut sigalgs)?;
        extensions.push(Extension {
            typ: ExtensionType::SupportedGroups,
            data: &groups,
        });
        extensions.push(Extension {
            typ: ExtensionType::EcPointFormats,
            data: &formats,
        });
        extensions.push(Extension {
            typ: ExtensionType::SignatureAlgorithms,
            data: &sigalgs,
        });
        if cfg.server_cert_types != [CertificateType::X509] {
            let types: Vec<u8> = cfg.server_cert_types.iter().map(|t| u8::from(*t)).collect();
            encode_u8_list_ext(&types, &mut sct)?;
            extensions.push(Extension {
                typ: ExtensionType::ServerCertificateType,
                data: &sct,
            });
        }
        if cfg.certificate.as_ref().map(own_type) == Some(CertificateType::RawPublicKey) {
            encode_u8_list_ext(&[CertificateType::RawPublicKey.into()], &mut cct)?;
            extensions.push(Extension {
                typ: ExtensionType::ClientCertificateType,
                data: &cct,
            });
        }
    }
    if let Some(name) = server_name {
        encode_server_name(name, &mut sni)?;
        extensions.insert(
            0,
            Extension {
                typ: ExtensionType::ServerName,
                data: &sni,
            },
        );
    }
    let hello = ClientHello {
        version: cx.version(),
        random: *client_random,
        session_id: &[],
        cookie,
        cipher_suites: cfg.suites.iter().map(|s| s.code()).collect(),
        compression_methods: &[0],
        extensions: Some(extensions),
    };
    let mut body = Vec::new();
    hello.encode(&mut body)?;
    cx.send_handshake(HandshakeType::ClientHello, &body)
}

/// Most HelloVerifyRequests a client answers in one handshake.
const MAX_HELLO_VERIFY: u8 = 3;

/// DTLS: answers HelloVerifyRequest with a second ClientHello carrying the cookie. Neither the
/// first ClientHello nor the HelloVerifyRequest is hashed (RFC 6347 4.2.1).
fn handle_hello_verify(
    cx: &mut Common,
    cfg: &ClientConfig,
    client_random: &[u8; 32],
    server_name: Option<&str>,
    body: &[u8],
) -> Result<(), Error> {
    let Some(d) = cx.dtls.as_mut() else {
        return Err(unexpected("HelloVerifyRequest over TLS"));
    };
    let hvr = HelloVerifyRequest::decode(body)?;
    if hvr.version.0 >> 8 != 0xfe {
        return Err(PeerIncompatible::UnsupportedVersion.into());
    }
    let h = d
        .handshake
        .as_mut()
        .ok_or(unexpected("HelloVerifyRequest after the handshake"))?;
    h.hello_verify_count += 1;
    if h.hello_verify_count > MAX_HELLO_VERIFY {
        return Err(unexpected("too many HelloVerifyRequests"));
    }
    // The server may restart its record numbering after a stateless cookie exchange.
    d.replay[0] = ReplayWindow::default();
    cx.transcript = Sha256::new();
    send_client_hello(cx, cfg, client_random, server_name, Some(hvr.cookie))
}

fn unexpected(what: &'static str) -> Error {
    PeerMisbehaved::UnexpectedMessage(what).into()
}

/// Handles one complete handshake message. `raw` is what the transcript hashes.
pub(crate) fn handle(
    state: ClientState,
    cx: &mut Common,
    cfg: &ClientConfig,
    typ: HandshakeType,
    body: &[u8],
    raw: &[u8],
) -> Result<ClientState, Error> {
    match (state, typ) {
        (
            ClientState::ExpectServerHello {
                client_random,
                server_name,
            },
            HandshakeType::HelloVerifyRequest,
        ) => {
            handle_hello_verify(cx, cfg, &client_random, server_name.as_deref(), body)?;
            Ok(ClientState::ExpectServerHello {
                client_random,
                server_name,
            })
        }
        (
            ClientState::ExpectServerHello {
                client_random,
                server_name,
            },
            HandshakeType::ServerHello,
        ) => {
            cx.add_to_transcript(raw);
            let neg = handle_server_hello(cx, cfg, client_random, server_name.is_some(), body)?;
            if neg.suite.is_ecdhe_ecdsa() {
                // Without `ecdhe` the configuration offers no such suite (`SuiteUnavailable`),
                // and `handle_server_hello` accepts only offered suites.
                #[cfg(feature = "ecdhe")]
                return Ok(ClientState::ExpectCertificate { neg, server_name });
                #[cfg(not(feature = "ecdhe"))]
                return Err(ConfigError::SuiteUnavailable.into());
            }
            Ok(ClientState::ExpectServerKeyExchangeOrDone { neg, server_name })
        }
        #[cfg(feature = "ecdhe")]
        (ClientState::ExpectCertificate { neg, server_name }, HandshakeType::Certificate) => {
            cx.add_to_transcript(raw);
            handle_certificate(cx, cfg, neg, server_name, body)
        }
        #[cfg(feature = "ecdhe")]
        (ClientState::ExpectServerKeyExchangeEcdhe(mut e), HandshakeType::ServerKeyExchange) => {
            cx.add_to_transcript(raw);
            handle_ecdhe_ske(&mut e, body)?;
            Ok(ClientState::ExpectCertificateRequestOrDone(e))
        }
        #[cfg(feature = "ecdhe")]
        (ClientState::ExpectCertificateRequestOrDone(mut e), HandshakeType::CertificateRequest) => {
            cx.add_to_transcript(raw);
            let cr = CertificateRequest::decode(body)?;
            let ours = cfg.certificate.as_ref().map(own_type);
            let can_sign = cr.certificate_types.contains(&CLIENT_CERT_TYPE_ECDSA_SIGN)
                && cr.sig_schemes.contains(&ECDSA_SECP256R1_SHA256);
            let send = can_sign && ours == Some(e.neg.client_cert_type);
            if !send && e.neg.client_cert_type == CertificateType::RawPublicKey {
                // A raw public key cannot be declined with an empty list (RFC 7250 3).
                return Err(PeerIncompatible::NoCommonSignatureScheme.into());
            }
            e.send_own = Some(send);
            Ok(ClientState::ExpectServerHelloDoneEcdhe(e))
        }
        #[cfg(feature = "ecdhe")]
        (ClientState::ExpectCertificateRequestOrDone(e), HandshakeType::ServerHelloDone)
        | (ClientState::ExpectServerHelloDoneEcdhe(e), HandshakeType::ServerHelloDone) => {
            send_second_flight_ecdhe(cx, cfg, e, body, raw)
        }
        #[cfg(feature = "ecdhe")]
        (ClientState::AwaitingPeer(_), _) => {
            Err(unexpected("message while the peer verification is pending"))
        }
        (
            ClientState::ExpectServerKeyExchangeOrDone { neg, server_name },
            HandshakeType::ServerKeyExchange,
        ) => {
            cx.add_to_transcript(raw);
            let hint = PskIdentityBody::decode(body)?.0.to_vec();
            Ok(ClientState::ExpectServerHelloDone {
                neg,
                hint: Some(hint),
                server_name,
            })
        }
        (
            ClientState::ExpectServerKeyExchangeOrDone { neg, server_name },
            HandshakeType::ServerHelloDone,
        ) => send_second_flight(cx, cfg, neg, None, server_name, body, raw),
        (
            ClientState::ExpectServerHelloDone {
                neg,
                hint,
                server_name,
            },
            HandshakeType::ServerHelloDone,
        ) => send_second_flight(cx, cfg, neg, hint, server_name, body, raw),
        (ClientState::ExpectFinished(est), HandshakeType::Finished) => {
            let expected = verify_data(&est.master_secret, false, &cx.transcript_hash());
            if !ct_eq(&expected, body) {
                return Err(PeerMisbehaved::BadFinished.into());
            }
            cx.add_to_transcript(raw);
            cx.events
                .push_back(QueuedEvent::Connected(est.info.clone()));
            Ok(ClientState::Connected(est))
        }
        (ClientState::Connected(_), HandshakeType::HelloRequest) => Err(unexpected("HelloRequest")),
        (ClientState::ExpectServerKeyExchangeOrDone { .. }, HandshakeType::Certificate) => {
            Err(unexpected("Certificate in a PSK handshake"))
        }
        _ => Err(unexpected("handshake message out of order")),
    }
}

fn handle_server_hello(
    cx: &Common,
    cfg: &ClientConfig,
    client_random: [u8; 32],
    sent_sni: bool,
    body: &[u8],
) -> Result<Negotiated, Error> {
    let sh = ServerHello::decode(body)?;
    if sh.version != cx.version() {
        return Err(PeerIncompatible::UnsupportedVersion.into());
    }
    let suite = CipherSuite::from_code(sh.cipher_suite)
        .filter(|s| cfg.suites.contains(s))
        .ok_or(PeerMisbehaved::IllegalParameter("cipher suite not offered"))?;
    if sh.compression_method != 0 {
        return Err(PeerMisbehaved::IllegalParameter("compression method").into());
    }
    let offered_ecc = cfg.suites.iter().any(|s| s.is_ecdhe_ecdsa());
    let offered_sct = offered_ecc && cfg.server_cert_types != [CertificateType::X509];
    #[cfg(feature = "ecdhe")]
    let own = cfg.certificate.as_ref().map(own_type);
    #[cfg(not(feature = "ecdhe"))]
    let own: Option<CertificateType> = None;
    let offered_cct = offered_ecc && own == Some(CertificateType::RawPublicKey);
    let mut server_cert_type = CertificateType::X509;
    let mut client_cert_type = CertificateType::X509;
    let mut ems = false;
    for e in sh.extensions.as_deref().unwrap_or(&[]) {
        match e.typ {
            ExtensionType::ExtendedMasterSecret => {
                if !e.data.is_empty() {
                    return Err(InvalidMessage::InvalidValue("extended_master_secret body").into());
                }
                ems = true;
            }
            ExtensionType::RenegotiationInfo => {
                if e.data != EMPTY_RENEGOTIATION_INFO {
                    return Err(PeerMisbehaved::BadRenegotiationInfo.into());
                }
            }
            ExtensionType::ServerName if sent_sni => {
                if !e.data.is_empty() {
                    return Err(InvalidMessage::InvalidValue("server_name acknowledgement").into());
                }
            }
            ExtensionType::EcPointFormats if offered_ecc => {
                let formats = crate::messages::parse_u8_list_ext(e.data)?;
                if !formats.contains(&POINT_FORMAT_UNCOMPRESSED) {
                    return Err(PeerMisbehaved::IllegalParameter("ec_point_formats").into());
                }
            }
            ExtensionType::ServerCertificateType if offered_sct => {
                server_cert_type = single_cert_type(e.data)?;
                if !cfg.server_cert_types.contains(&server_cert_type) {
                    return Err(PeerMisbehaved::IllegalParameter("server_certificate_type").into());
                }
            }
            ExtensionType::ClientCertificateType if offered_cct => {
                client_cert_type = single_cert_type(e.data)?;
                if Some(client_cert_type) != own {
                    return Err(PeerMisbehaved::IllegalParameter("client_certificate_type").into());
                }
            }
            _ => return Err(PeerMisbehaved::UnsolicitedExtension.into()),
        }
    }
    if cfg.require_ems && !ems {
        return Err(PeerIncompatible::ExtendedMasterSecretRequired.into());
    }
    if suite.is_ecdhe_ecdsa() && !cfg.server_cert_types.contains(&server_cert_type) {
        // We asked for raw public keys only and the server ignored RFC 7250.
        return Err(PeerIncompatible::NoCommonCertificateType.into());
    }
    Ok(Negotiated {
        client_random,
        server_random: sh.random,
        suite,
        ems,
        server_cert_type,
        client_cert_type,
    })
}

/// A ServerHello certificate type extension body: exactly one type (RFC 7250 4.2).
fn single_cert_type(data: &[u8]) -> Result<CertificateType, Error> {
    match data {
        [t] => Ok(CertificateType::from(*t)),
        _ => Err(InvalidMessage::InvalidValue("certificate type").into()),
    }
}

#[cfg(feature = "ecdhe")]
/// The server's Certificate: parsed, its key checked, then the verifier asked.
fn handle_certificate(
    cx: &mut Common,
    cfg: &ClientConfig,
    neg: Negotiated,
    server_name: Option<String>,
    body: &[u8],
) -> Result<ClientState, Error> {
    let cred = parse_credential(body, neg.server_cert_type)?.ok_or(CertError::NoCertificate)?;
    let peer_key = cred.verifying_key()?;
    let peer_info = crate::handshake_cert::run_verifier(cx, cfg.verifier.as_deref(), &cred)?;
    let deferred = peer_info.is_none();
    let e = Box::new(Ecdhe {
        neg,
        server_name,
        peer_key,
        peer_info,
        server_point: None,
        send_own: None,
    });
    Ok(if deferred {
        ClientState::AwaitingPeer(e)
    } else {
        ClientState::ExpectServerKeyExchangeEcdhe(e)
    })
}

/// Resumes a deferred verification (`Session::peer_verified`).
pub(crate) fn resume_verified(
    state: ClientState,
    result: Result<PeerCertificateInfo, CertError>,
) -> Result<ClientState, Error> {
    #[cfg(not(feature = "ecdhe"))]
    let _ = result; // no state waits for a verification
    match state {
        #[cfg(feature = "ecdhe")]
        ClientState::AwaitingPeer(mut e) => {
            e.peer_info = Some(result?);
            Ok(ClientState::ExpectServerKeyExchangeEcdhe(e))
        }
        _ => Err(ApiMisuse::NoVerificationRequested.into()),
    }
}

#[cfg(feature = "ecdhe")]
/// ServerKeyExchange (RFC 8422 5.4): secp256r1, ecdsa_secp256r1_sha256, a valid signature by
/// the certified key, then a point on the curve.
fn handle_ecdhe_ske(e: &mut Ecdhe, body: &[u8]) -> Result<(), Error> {
    let ske = EcdheServerKeyExchange::decode(body)?;
    if ske.named_curve != NAMED_GROUP_SECP256R1 {
        return Err(PeerMisbehaved::IllegalParameter("named curve not offered").into());
    }
    if ske.signed.scheme != ECDSA_SECP256R1_SHA256 {
        return Err(PeerMisbehaved::IllegalParameter("signature algorithm not offered").into());
    }
    let signed = ske_signed_data(&e.neg.client_random, &e.neg.server_random, &ske.params()?);
    if !ecc::verify(&e.peer_key, &signed, ske.signed.signature) {
        return Err(PeerMisbehaved::BadSignature.into());
    }
    if ecc::parse_point(ske.point).is_none() {
        return Err(PeerMisbehaved::IllegalParameter("ECPoint").into());
    }
    let mut point = [0u8; POINT_LEN];
    point.copy_from_slice(ske.point);
    e.server_point = Some(point);
    Ok(())
}

#[cfg(feature = "ecdhe")]
fn send_second_flight_ecdhe(
    cx: &mut Common,
    cfg: &ClientConfig,
    e: Box<Ecdhe>,
    body: &[u8],
    raw: &[u8],
) -> Result<ClientState, Error> {
    if !body.is_empty() {
        return Err(InvalidMessage::TrailingData.into());
    }
    cx.add_to_transcript(raw);
    let own = match e.send_own {
        Some(true) => cfg.certificate.as_ref(),
        _ => None,
    };
    if e.send_own.is_some() {
        let cert = encode_credential(own, e.neg.client_cert_type)?;
        cx.send_handshake(HandshakeType::Certificate, &cert)?;
    }
    let server_point = e
        .server_point
        .ok_or(unexpected("ServerHelloDone before ServerKeyExchange"))?;
    let eph = EphemeralKey::generate(&mut cx.rng);
    let pms = eph
        .agree(&server_point)
        .ok_or(PeerMisbehaved::IllegalParameter("ECPoint"))?;
    let mut cke = Vec::with_capacity(1 + POINT_LEN);
    crate::codec::put_vec(&mut cke, crate::codec::Width::U8, &eph.public_point())?;
    cx.send_handshake(HandshakeType::ClientKeyExchange, &cke)?;

    let neg = &e.neg;
    let session_hash = cx.transcript_hash();
    let (ms, client_keys, server_keys) = session_keys(
        &*pms,
        &neg.client_random,
        &neg.server_random,
        neg.ems.then_some(&session_hash),
        neg.suite.tag_len(),
    );
    drop(pms);
    if let Some(k) = own {
        let sig = ecc::sign_digest(k.key(), &cx.transcript_hash())
            .ok_or(PeerMisbehaved::IllegalParameter("signing failed"))?;
        let mut cv = Vec::new();
        DigitallySigned {
            scheme: ECDSA_SECP256R1_SHA256,
            signature: sig.as_bytes(),
        }
        .encode(&mut cv)?;
        cx.send_handshake(HandshakeType::CertificateVerify, &cv)?;
    }
    cx.pending_read = Some(server_keys);
    cx.send_ccs_and_switch(client_keys)?;
    let fin = verify_data(&ms, true, &cx.transcript_hash());
    cx.send_handshake(HandshakeType::Finished, &fin)?;
    let Ecdhe {
        neg,
        server_name,
        peer_info,
        ..
    } = *e;
    Ok(ClientState::ExpectChangeCipherSpec(Box::new(Established {
        client_random: neg.client_random,
        server_random: neg.server_random,
        master_secret: ms,
        info: SessionInfo {
            suite: neg.suite,
            psk_identity: Vec::new(),
            psk_identity_hint: None,
            server_name,
            extended_master_secret: neg.ems,
            peer_certificate: peer_info,
        },
    })))
}

fn send_second_flight(
    cx: &mut Common,
    cfg: &ClientConfig,
    neg: Negotiated,
    hint: Option<Vec<u8>>,
    server_name: Option<String>,
    body: &[u8],
    raw: &[u8],
) -> Result<ClientState, Error> {
    if !body.is_empty() {
        return Err(InvalidMessage::TrailingData.into());
    }
    cx.add_to_transcript(raw);
    let psk = cfg.psk.as_ref().ok_or(ConfigError::MissingPsk)?;
    let mut cke = Vec::new();
    PskIdentityBody(psk.identity()).encode(&mut cke)?;
    cx.send_handshake(HandshakeType::ClientKeyExchange, &cke)?;

    let session_hash = cx.transcript_hash();
    let (ms, client_keys, server_keys) = psk_session_keys(
        psk.key(),
        &neg.client_random,
        &neg.server_random,
        neg.ems.then_some(&session_hash),
        neg.suite.tag_len(),
    );
    cx.pending_read = Some(server_keys);
    cx.send_ccs_and_switch(client_keys)?;
    let fin = verify_data(&ms, true, &cx.transcript_hash());
    cx.send_handshake(HandshakeType::Finished, &fin)?;
    Ok(ClientState::ExpectChangeCipherSpec(Box::new(Established {
        client_random: neg.client_random,
        server_random: neg.server_random,
        master_secret: ms,
        info: SessionInfo {
            suite: neg.suite,
            psk_identity: psk.identity().to_vec(),
            psk_identity_hint: hint,
            server_name,
            extended_master_secret: neg.ems,
            peer_certificate: None,
        },
    })))
}
