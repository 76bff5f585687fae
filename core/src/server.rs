//! The TLS 1.2 server handshake (RFC 5246 7.3): PSK (RFC 4279 2) and ECDHE-ECDSA (RFC 8422,
//! RFC 7251, RFC 7250 raw public keys) in one machine.
//!
//! PSK:
//!
//! ```text
//!                         <--  ClientHello             ExpectClientHello
//!  ServerHello
//!  [ServerKeyExchange]    (only with an identity hint)
//!  ServerHelloDone        -->
//!                         <--  ClientKeyExchange       ExpectClientKeyExchange
//!        (key lookup may suspend here)                 AwaitingPsk
//!                         <--  [ChangeCipherSpec]      ExpectChangeCipherSpec
//!                         <--  Finished                ExpectFinished
//!  [ChangeCipherSpec]
//!  Finished               -->                          Connected
//! ```
//!
//! ECDHE-ECDSA:
//!
//! ```text
//!                         <--  ClientHello             ExpectClientHello
//!  ServerHello, Certificate, ServerKeyExchange,
//!  [CertificateRequest], ServerHelloDone -->
//!                         <--  [Certificate]           ExpectClientCertificate
//!        (the verifier may defer here)                 AwaitingPeer
//!                         <--  ClientKeyExchange       ExpectClientKeyExchangeEcdhe
//!                         <--  [CertificateVerify]     ExpectCertificateVerify
//!                         <--  ChangeCipherSpec, Finished (then as PSK)
//! ```

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

#[cfg(feature = "ecdhe")]
use p256::ecdsa::VerifyingKey;

use crate::cert::{CertError, PeerCertificateInfo};
use crate::common::{Common, Established, QueuedEvent, SessionInfo};
use crate::config::{ClientAuth, PskLookup, ServerConfig};
#[cfg(feature = "ecdhe")]
use crate::crypto::ecc::{self, EphemeralKey};
use crate::enums::{
    CertificateType, ExtensionType, HandshakeType, ProtocolVersion, ECDSA_SECP256R1_SHA256,
    NAMED_GROUP_SECP256R1, POINT_FORMAT_UNCOMPRESSED, TLS_EMPTY_RENEGOTIATION_INFO_SCSV,
};
#[cfg(feature = "ecdhe")]
use crate::enums::{CLIENT_CERT_TYPE_ECDSA_SIGN, CURVE_TYPE_NAMED_CURVE};
use crate::error::{ApiMisuse, Error, InvalidMessage, PeerIncompatible, PeerMisbehaved};
#[cfg(feature = "ecdhe")]
use crate::handshake_cert::{encode_credential, parse_credential, run_verifier, ske_signed_data};
#[cfg(feature = "ecdhe")]
use crate::key_schedule::session_keys;
use crate::key_schedule::{psk_session_keys, verify_data};
#[cfg(feature = "ecdhe")]
use crate::messages::{
    decode_ec_point, CertificateRequest, DigitallySigned, EcdheServerKeyExchange,
};
use crate::messages::{
    find_extension, parse_server_name, parse_u16_list_ext, parse_u8_list_ext, ClientHello,
    Extension, PskIdentityBody, ServerHello, EMPTY_RENEGOTIATION_INFO,
};
use crate::secret::{ct_eq, Psk};
use crate::suites::CipherSuite;

/// Parameters fixed once ServerHello is sent.
#[derive(Debug)]
pub(crate) struct Negotiated {
    client_random: [u8; 32],
    server_random: [u8; 32],
    suite: CipherSuite,
    ems: bool,
    server_name: Option<String>,
}

#[cfg(feature = "ecdhe")]
/// An ECDHE-ECDSA handshake after the server's first flight.
#[derive(Debug)]
pub(crate) struct Ecdhe {
    neg: Negotiated,
    eph: EphemeralKey,
    client_cert_type: CertificateType,
    /// The client's key, once its Certificate is in (none: not authenticated).
    peer_key: Option<VerifyingKey>,
    /// `None` while the verifier's decision is deferred, or without client authentication.
    peer_info: Option<PeerCertificateInfo>,
}

/// The server's states, in protocol order.
#[derive(Debug)]
pub(crate) enum ServerState {
    ExpectClientHello,
    ExpectClientKeyExchange(Negotiated),
    AwaitingPsk {
        neg: Negotiated,
        identity: Vec<u8>,
    },
    #[cfg(feature = "ecdhe")]
    ExpectClientCertificate(Box<Ecdhe>),
    /// The verifier deferred: waits for `Session::peer_verified`.
    #[cfg(feature = "ecdhe")]
    AwaitingPeer(Box<Ecdhe>),
    #[cfg(feature = "ecdhe")]
    ExpectClientKeyExchangeEcdhe(Box<Ecdhe>),
    #[cfg(feature = "ecdhe")]
    ExpectCertificateVerify {
        est: Box<Established>,
        peer_key: VerifyingKey,
    },
    ExpectChangeCipherSpec(Box<Established>),
    ExpectFinished(Box<Established>),
    Connected(Box<Established>),
}

fn unexpected(what: &'static str) -> Error {
    PeerMisbehaved::UnexpectedMessage(what).into()
}

/// Handles one complete handshake message. `raw` is what the transcript hashes.
pub(crate) fn handle(
    state: ServerState,
    cx: &mut Common,
    cfg: &ServerConfig,
    typ: HandshakeType,
    body: &[u8],
    raw: &[u8],
) -> Result<ServerState, Error> {
    match (state, typ) {
        (ServerState::ExpectClientHello, HandshakeType::ClientHello) => {
            cx.add_to_transcript(raw);
            let hello = ClientHello::decode(body, cx.dtls.is_some())?;
            negotiate(cx, cfg, &hello)
        }
        #[cfg(feature = "ecdhe")]
        (ServerState::ExpectClientCertificate(mut e), HandshakeType::Certificate) => {
            cx.add_to_transcript(raw);
            match parse_credential(body, e.client_cert_type)? {
                None if cfg.client_auth == ClientAuth::Required => {
                    Err(CertError::NoCertificate.into())
                }
                None => Ok(ServerState::ExpectClientKeyExchangeEcdhe(e)),
                Some(cred) => {
                    e.peer_key = Some(cred.verifying_key()?);
                    e.peer_info = run_verifier(cx, cfg.verifier.as_deref(), &cred)?;
                    Ok(if e.peer_info.is_none() {
                        ServerState::AwaitingPeer(e)
                    } else {
                        ServerState::ExpectClientKeyExchangeEcdhe(e)
                    })
                }
            }
        }
        #[cfg(feature = "ecdhe")]
        (ServerState::ExpectClientKeyExchangeEcdhe(e), HandshakeType::ClientKeyExchange) => {
            cx.add_to_transcript(raw);
            ecdhe_client_key_exchange(cx, e, body)
        }
        #[cfg(feature = "ecdhe")]
        (
            ServerState::ExpectCertificateVerify { est, peer_key },
            HandshakeType::CertificateVerify,
        ) => {
            let cv = DigitallySigned::decode(body)?;
            if cv.scheme != ECDSA_SECP256R1_SHA256 {
                return Err(
                    PeerMisbehaved::IllegalParameter("signature algorithm not offered").into(),
                );
            }
            if !ecc::verify_digest(&peer_key, &cx.transcript_hash(), cv.signature) {
                return Err(PeerMisbehaved::BadSignature.into());
            }
            cx.add_to_transcript(raw);
            Ok(ServerState::ExpectChangeCipherSpec(est))
        }
        #[cfg(feature = "ecdhe")]
        (ServerState::AwaitingPeer(_), _) => {
            Err(unexpected("message while the peer verification is pending"))
        }
        (ServerState::ExpectClientKeyExchange(neg), HandshakeType::ClientKeyExchange) => {
            cx.add_to_transcript(raw);
            let identity = PskIdentityBody::decode(body)?.0;
            if identity.is_empty() {
                return Err(PeerMisbehaved::IllegalParameter("empty psk_identity").into());
            }
            let lookup = match &cfg.resolver {
                Some(r) => r.resolve(identity, neg.server_name.as_deref()),
                None => PskLookup::Unknown,
            };
            match lookup {
                PskLookup::Found(psk) => key_from_psk(cx, cfg, neg, identity.to_vec(), &psk),
                PskLookup::Unknown => unknown_identity(cx, cfg, neg, identity.to_vec()),
                PskLookup::Defer => {
                    cx.events.push_back(QueuedEvent::PskNeeded {
                        identity: identity.to_vec(),
                        server_name: neg.server_name.clone(),
                        suite: neg.suite,
                    });
                    Ok(ServerState::AwaitingPsk {
                        neg,
                        identity: identity.to_vec(),
                    })
                }
            }
        }
        (ServerState::ExpectFinished(est), HandshakeType::Finished) => {
            let expected = verify_data(&est.master_secret, true, &cx.transcript_hash());
            if !ct_eq(&expected, body) {
                return Err(PeerMisbehaved::BadFinished.into());
            }
            cx.add_to_transcript(raw);
            let server_keys = cx
                .pending_write
                .take()
                .ok_or(unexpected("Finished before keys"))?;
            cx.send_ccs_and_switch(server_keys)?;
            let fin = verify_data(&est.master_secret, false, &cx.transcript_hash());
            cx.send_handshake(HandshakeType::Finished, &fin)?;
            cx.events
                .push_back(QueuedEvent::Connected(est.info.clone()));
            Ok(ServerState::Connected(est))
        }
        (ServerState::AwaitingPsk { .. }, _) => {
            Err(unexpected("message while the key lookup is pending"))
        }
        _ => Err(unexpected("handshake message out of order")),
    }
}

/// Resumes a suspended key lookup (`provide_psk`).
pub(crate) fn resume_with_psk(
    state: ServerState,
    cx: &mut Common,
    cfg: &ServerConfig,
    psk: Option<Psk>,
) -> Result<ServerState, Error> {
    match state {
        ServerState::AwaitingPsk { neg, identity } => match psk {
            Some(psk) => key_from_psk(cx, cfg, neg, identity, &psk),
            None => unknown_identity(cx, cfg, neg, identity),
        },
        _ => Err(ApiMisuse::NoPskRequested.into()),
    }
}

fn unknown_identity(
    cx: &mut Common,
    cfg: &ServerConfig,
    neg: Negotiated,
    identity: Vec<u8>,
) -> Result<ServerState, Error> {
    if cfg.hide_unknown_identity {
        // Continue with a key nobody has: the client's Finished then fails exactly as with a
        // wrong key (bad_record_mac), so identities cannot be probed (RFC 4279 2).
        let random: [u8; 32] = cx.rng.array();
        let psk = Psk::new(&random).expect("32 bytes is a valid PSK length");
        return key_from_psk(cx, cfg, neg, identity, &psk);
    }
    Err(Error::UnknownPskIdentity)
}

/// What the ClientHello allows for the ECDHE-ECDSA suites.
struct EccOffer {
    /// secp256r1, uncompressed points and ecdsa_secp256r1_sha256 are all acceptable.
    usable: bool,
    /// The client sent ec_point_formats (echoed in ServerHello, RFC 8422 5.2).
    point_formats_sent: bool,
    /// The certificate type we present, if the client accepts one we have (RFC 7250).
    server_type: Option<CertificateType>,
    server_type_ext: bool,
    /// The client's client_certificate_type list, if sent.
    client_types: Option<Vec<CertificateType>>,
}

fn ecc_offer(cfg: &ServerConfig, exts: Option<&[Extension<'_>]>) -> Result<EccOffer, Error> {
    let groups_ok = match find_extension(exts, ExtensionType::SupportedGroups) {
        // RFC 8422 4: without the extension the server may choose any curve.
        None => true,
        Some(d) => parse_u16_list_ext(d)?.contains(&NAMED_GROUP_SECP256R1),
    };
    let formats = find_extension(exts, ExtensionType::EcPointFormats);
    let formats_ok = match formats {
        None => true,
        Some(d) => parse_u8_list_ext(d)?.contains(&POINT_FORMAT_UNCOMPRESSED),
    };
    let sigalgs_ok = match find_extension(exts, ExtensionType::SignatureAlgorithms) {
        // RFC 5246 7.4.1.4.1: absent means {sha1, ecdsa}, which we do not sign with.
        None => false,
        Some(d) => parse_u16_list_ext(d)?.contains(&ECDSA_SECP256R1_SHA256),
    };
    let sct = find_extension(exts, ExtensionType::ServerCertificateType);
    let server_type = match sct {
        None => cfg
            .server_cert_types
            .contains(&CertificateType::X509)
            .then_some(CertificateType::X509),
        Some(d) => parse_u8_list_ext(d)?
            .iter()
            .map(|t| CertificateType::from(*t))
            .find(|t| cfg.server_cert_types.contains(t)),
    };
    let client_types = match find_extension(exts, ExtensionType::ClientCertificateType) {
        None => None,
        Some(d) => Some(
            parse_u8_list_ext(d)?
                .iter()
                .map(|t| CertificateType::from(*t))
                .collect(),
        ),
    };
    Ok(EccOffer {
        usable: groups_ok && formats_ok && sigalgs_ok && cfg.has_certificate(),
        point_formats_sent: formats.is_some(),
        server_type,
        server_type_ext: sct.is_some(),
        client_types,
    })
}

fn negotiate(
    cx: &mut Common,
    cfg: &ServerConfig,
    hello: &ClientHello<'_>,
) -> Result<ServerState, Error> {
    let v = hello.version.0;
    let supported = if cx.dtls.is_some() {
        v >> 8 == 0xfe && v <= ProtocolVersion::DTLS12.0
    } else {
        v >> 8 == 3 && v >= ProtocolVersion::TLS12.0
    };
    if !supported {
        return Err(PeerIncompatible::UnsupportedVersion.into());
    }
    if !hello.compression_methods.contains(&0) {
        return Err(PeerIncompatible::NullCompressionRequired.into());
    }
    let exts = hello.extensions.as_deref();
    let ecc = ecc_offer(cfg, exts)?;
    let eligible = |s: &CipherSuite| {
        (s.is_psk() && cfg.resolver.is_some())
            || (s.is_ecdhe_ecdsa() && ecc.usable && ecc.server_type.is_some())
    };
    let offered = |s: &CipherSuite| hello.cipher_suites.contains(&s.code());
    let Some(suite) = cfg
        .suites
        .iter()
        .copied()
        .find(|s| offered(s) && eligible(s))
    else {
        let cert_type_only = ecc.usable
            && ecc.server_type.is_none()
            && cfg.suites.iter().any(|s| s.is_ecdhe_ecdsa() && offered(s));
        return Err(if cert_type_only {
            PeerIncompatible::NoCommonCertificateType.into()
        } else {
            PeerIncompatible::NoCommonCipherSuite.into()
        });
    };
    // The client's certificate type, when we ask for one (RFC 7250 4.2).
    let client_auth = suite.is_ecdhe_ecdsa() && cfg.client_auth != ClientAuth::Off;
    let client_cert_type = if client_auth {
        let chosen = match &ecc.client_types {
            None => cfg
                .client_cert_types
                .contains(&CertificateType::X509)
                .then_some(CertificateType::X509),
            Some(list) => list
                .iter()
                .copied()
                .find(|t| cfg.client_cert_types.contains(t)),
        };
        match chosen {
            Some(t) => Some(t),
            None if cfg.client_auth == ClientAuth::Required => {
                return Err(PeerIncompatible::NoCommonCertificateType.into())
            }
            None => None,
        }
    } else {
        None
    };
    let ems = match find_extension(exts, ExtensionType::ExtendedMasterSecret) {
        Some([]) => true,
        Some(_) => return Err(InvalidMessage::InvalidValue("extended_master_secret body").into()),
        None => false,
    };
    if cfg.require_ems && !ems {
        return Err(PeerIncompatible::ExtendedMasterSecretRequired.into());
    }
    let reneg_ext = find_extension(exts, ExtensionType::RenegotiationInfo);
    if reneg_ext.is_some_and(|d| d != EMPTY_RENEGOTIATION_INFO) {
        return Err(PeerMisbehaved::BadRenegotiationInfo.into());
    }
    let secure_reneg = reneg_ext.is_some()
        || hello
            .cipher_suites
            .contains(&TLS_EMPTY_RENEGOTIATION_INFO_SCSV);
    let server_name = match find_extension(exts, ExtensionType::ServerName) {
        Some(d) => Some(String::from(parse_server_name(d)?)),
        None => None,
    };

    let server_random: [u8; 32] = cx.rng.array();
    let server_type = ecc.server_type.unwrap_or(CertificateType::X509);
    let formats = [1, POINT_FORMAT_UNCOMPRESSED];
    let sct = [u8::from(server_type)];
    let cct = [client_cert_type.map_or(0, u8::from)];
    let mut extensions = Vec::new();
    if ems {
        extensions.push(Extension {
            typ: ExtensionType::ExtendedMasterSecret,
            data: &[],
        });
    }
    if secure_reneg {
        extensions.push(Extension {
            typ: ExtensionType::RenegotiationInfo,
            data: EMPTY_RENEGOTIATION_INFO,
        });
    }
    if suite.is_ecdhe_ecdsa() {
        if ecc.point_formats_sent {
            extensions.push(Extension {
                typ: ExtensionType::EcPointFormats,
                data: &formats,
            });
        }
        if ecc.server_type_ext {
            extensions.push(Extension {
                typ: ExtensionType::ServerCertificateType,
                data: &sct,
            });
        }
        if ecc.client_types.is_some() && client_cert_type.is_some() {
            extensions.push(Extension {
                typ: ExtensionType::ClientCertificateType,
                data: &cct,
            });
        }
    }
    let sh = ServerHello {
        version: cx.version(),
        random: server_random,
        session_id: &[],
        cipher_suite: suite.code(),
        compression_method: 0,
        extensions: (!extensions.is_empty()).then_some(extensions),
    };
    let mut body = Vec::new();
    sh.encode(&mut body)?;
    cx.send_handshake(HandshakeType::ServerHello, &body)?;
    let neg = Negotiated {
        client_random: hello.random,
        server_random,
        suite,
        ems,
        server_name,
    };
    if suite.is_ecdhe_ecdsa() {
        // Without `ecdhe` no suite is eligible: `ecc.usable` needs an own certificate.
        #[cfg(feature = "ecdhe")]
        return ecdhe_first_flight(cx, cfg, neg, server_type, client_cert_type);
        #[cfg(not(feature = "ecdhe"))]
        return Err(crate::error::ConfigError::SuiteUnavailable.into());
    }
    if let Some(hint) = &cfg.hint {
        body.clear();
        PskIdentityBody(hint).encode(&mut body)?;
        cx.send_handshake(HandshakeType::ServerKeyExchange, &body)?;
    }
    cx.send_handshake(HandshakeType::ServerHelloDone, &[])?;
    Ok(ServerState::ExpectClientKeyExchange(neg))
}

#[cfg(feature = "ecdhe")]
/// Certificate, ServerKeyExchange, [CertificateRequest], ServerHelloDone.
fn ecdhe_first_flight(
    cx: &mut Common,
    cfg: &ServerConfig,
    neg: Negotiated,
    server_type: CertificateType,
    client_cert_type: Option<CertificateType>,
) -> Result<ServerState, Error> {
    let own = cfg
        .certificate
        .as_ref()
        .ok_or(crate::error::ConfigError::MissingCertificate)?;
    let cert = encode_credential(Some(own), server_type)?;
    cx.send_handshake(HandshakeType::Certificate, &cert)?;

    let eph = EphemeralKey::generate(&mut cx.rng);
    let point = eph.public_point();
    let mut ske = EcdheServerKeyExchange {
        curve_type: CURVE_TYPE_NAMED_CURVE,
        named_curve: NAMED_GROUP_SECP256R1,
        point: &point,
        signed: DigitallySigned {
            scheme: ECDSA_SECP256R1_SHA256,
            signature: &[],
        },
    };
    let signed = ske_signed_data(&neg.client_random, &neg.server_random, &ske.params()?);
    let sig = ecc::sign(own.key(), &signed);
    ske.signed.signature = sig.as_bytes();
    let mut body = Vec::new();
    ske.encode(&mut body)?;
    cx.send_handshake(HandshakeType::ServerKeyExchange, &body)?;

    if client_cert_type.is_some() {
        body.clear();
        CertificateRequest {
            certificate_types: &[CLIENT_CERT_TYPE_ECDSA_SIGN],
            sig_schemes: alloc::vec![ECDSA_SECP256R1_SHA256],
            authorities: cfg.ca_names.iter().map(Vec::as_slice).collect(),
        }
        .encode(&mut body)?;
        cx.send_handshake(HandshakeType::CertificateRequest, &body)?;
    }
    cx.send_handshake(HandshakeType::ServerHelloDone, &[])?;
    let e = Box::new(Ecdhe {
        neg,
        eph,
        client_cert_type: client_cert_type.unwrap_or(CertificateType::X509),
        peer_key: None,
        peer_info: None,
    });
    Ok(if client_cert_type.is_some() {
        ServerState::ExpectClientCertificate(e)
    } else {
        ServerState::ExpectClientKeyExchangeEcdhe(e)
    })
}

/// Resumes a deferred verification (`Session::peer_verified`).
pub(crate) fn resume_verified(
    state: ServerState,
    result: Result<PeerCertificateInfo, CertError>,
) -> Result<ServerState, Error> {
    #[cfg(not(feature = "ecdhe"))]
    let _ = result; // no state waits for a verification
    match state {
        #[cfg(feature = "ecdhe")]
        ServerState::AwaitingPeer(mut e) => {
            e.peer_info = Some(result?);
            Ok(ServerState::ExpectClientKeyExchangeEcdhe(e))
        }
        _ => Err(ApiMisuse::NoVerificationRequested.into()),
    }
}

#[cfg(feature = "ecdhe")]
/// ClientKeyExchange (RFC 8422 5.7): the client's point, the shared secret, the keys.
fn ecdhe_client_key_exchange(
    cx: &mut Common,
    e: Box<Ecdhe>,
    body: &[u8],
) -> Result<ServerState, Error> {
    let point = decode_ec_point(body)?;
    let pms = e
        .eph
        .agree(point)
        .ok_or(PeerMisbehaved::IllegalParameter("ECPoint"))?;
    let Ecdhe {
        neg,
        peer_key,
        peer_info,
        ..
    } = *e;
    let session_hash = cx.transcript_hash();
    let (ms, client_keys, server_keys) = session_keys(
        &*pms,
        &neg.client_random,
        &neg.server_random,
        neg.ems.then_some(&session_hash),
        neg.suite.tag_len(),
    );
    drop(pms);
    cx.pending_read = Some(client_keys);
    cx.pending_write = Some(server_keys);
    let est = Box::new(Established {
        client_random: neg.client_random,
        server_random: neg.server_random,
        master_secret: ms,
        info: SessionInfo {
            suite: neg.suite,
            psk_identity: Vec::new(),
            psk_identity_hint: None,
            server_name: neg.server_name,
            extended_master_secret: neg.ems,
            peer_certificate: peer_info,
        },
    });
    Ok(match peer_key {
        Some(peer_key) => ServerState::ExpectCertificateVerify { est, peer_key },
        None => ServerState::ExpectChangeCipherSpec(est),
    })
}

fn key_from_psk(
    cx: &mut Common,
    cfg: &ServerConfig,
    neg: Negotiated,
    identity: Vec<u8>,
    psk: &Psk,
) -> Result<ServerState, Error> {
    let session_hash = cx.transcript_hash();
    let (ms, client_keys, server_keys) = psk_session_keys(
        psk,
        &neg.client_random,
        &neg.server_random,
        neg.ems.then_some(&session_hash),
        neg.suite.tag_len(),
    );
    cx.pending_read = Some(client_keys);
    cx.pending_write = Some(server_keys);
    Ok(ServerState::ExpectChangeCipherSpec(Box::new(Established {
        client_random: neg.client_random,
        server_random: neg.server_random,
        master_secret: ms,
        info: SessionInfo {
            suite: neg.suite,
            psk_identity: identity,
            psk_identity_hint: cfg.hint.clone(),
            server_name: neg.server_name,
            extended_master_secret: neg.ems,
            peer_certificate: None,
        },
    })))
}
