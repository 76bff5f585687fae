//! The TLS 1.2 PSK client handshake (RFC 5246 7.3, RFC 4279 2).
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

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use crate::common::{Common, Established, QueuedEvent, SessionInfo};
use crate::config::ClientConfig;
use sha2::{Digest, Sha256};

use crate::dtls::ReplayWindow;
use crate::enums::{ExtensionType, HandshakeType};
use crate::error::{Error, InvalidMessage, PeerIncompatible, PeerMisbehaved};
use crate::key_schedule::{psk_session_keys, verify_data};
use crate::messages::{
    encode_server_name, ClientHello, Extension, HelloVerifyRequest, PskIdentityBody, ServerHello,
    EMPTY_RENEGOTIATION_INFO,
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
    d.hello_verify_count += 1;
    if d.hello_verify_count > MAX_HELLO_VERIFY {
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
            Ok(ClientState::ExpectServerKeyExchangeOrDone { neg, server_name })
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
        (_, HandshakeType::Certificate) => Err(unexpected("Certificate in a PSK handshake")),
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
            _ => return Err(PeerMisbehaved::UnsolicitedExtension.into()),
        }
    }
    if cfg.require_ems && !ems {
        return Err(PeerIncompatible::ExtendedMasterSecretRequired.into());
    }
    Ok(Negotiated {
        client_random,
        server_random: sh.random,
        suite,
        ems,
    })
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
    let psk = &cfg.psk;
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
        },
    })))
}
