//! The TLS 1.2 PSK server handshake (RFC 5246 7.3, RFC 4279 2).
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

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use crate::common::{Common, Established, QueuedEvent, SessionInfo};
use crate::config::{PskLookup, ServerConfig};
use crate::enums::{
    ExtensionType, HandshakeType, ProtocolVersion, TLS_EMPTY_RENEGOTIATION_INFO_SCSV,
};
use crate::error::{Error, InvalidMessage, PeerIncompatible, PeerMisbehaved};
use crate::key_schedule::{psk_session_keys, verify_data};
use crate::messages::{
    find_extension, parse_server_name, ClientHello, Extension, PskIdentityBody, ServerHello,
    EMPTY_RENEGOTIATION_INFO,
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

/// The server's states, in protocol order.
#[derive(Debug)]
pub(crate) enum ServerState {
    ExpectClientHello,
    ExpectClientKeyExchange(Negotiated),
    AwaitingPsk { neg: Negotiated, identity: Vec<u8> },
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
            let neg = negotiate(cx, cfg, &hello)?;
            Ok(ServerState::ExpectClientKeyExchange(neg))
        }
        (ServerState::ExpectClientKeyExchange(neg), HandshakeType::ClientKeyExchange) => {
            cx.add_to_transcript(raw);
            let identity = PskIdentityBody::decode(body)?.0;
            if identity.is_empty() {
                return Err(PeerMisbehaved::IllegalParameter("empty psk_identity").into());
            }
            match cfg.resolver.resolve(identity, neg.server_name.as_deref()) {
                PskLookup::Found(psk) => key_from_psk(cx, cfg, neg, identity.to_vec(), &psk),
                PskLookup::Unknown => unknown_identity(cx, cfg, neg, identity.to_vec()),
                PskLookup::Defer => {
                    cx.events.push_back(QueuedEvent::PskNeeded {
                        identity: identity.to_vec(),
                        server_name: neg.server_name.clone(),
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
        _ => Err(crate::error::ApiMisuse::NoPskRequested.into()),
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

fn negotiate(
    cx: &mut Common,
    cfg: &ServerConfig,
    hello: &ClientHello<'_>,
) -> Result<Negotiated, Error> {
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
    let suite = cfg
        .suites
        .iter()
        .copied()
        .find(|s| hello.cipher_suites.contains(&s.code()))
        .ok_or(PeerIncompatible::NoCommonCipherSuite)?;
    let exts = hello.extensions.as_deref();
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
    if let Some(hint) = &cfg.hint {
        body.clear();
        PskIdentityBody(hint).encode(&mut body)?;
        cx.send_handshake(HandshakeType::ServerKeyExchange, &body)?;
    }
    cx.send_handshake(HandshakeType::ServerHelloDone, &[])?;
    Ok(Negotiated {
        client_random: hello.random,
        server_random,
        suite,
        ems,
        server_name,
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
        },
    })))
}
