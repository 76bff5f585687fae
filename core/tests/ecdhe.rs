//! ECDHE-ECDSA handshakes (TLS_ECDHE_ECDSA_WITH_AES_128_CCM / _CCM_8, P-256) over TLS and
//! DTLS, through the public sans-IO API: X.509 and RFC 7250 raw public keys, mutual
//! authentication, verifiers that accept, reject and defer, tampering, configuration rules.
#![cfg(feature = "ecdhe")]

use std::sync::Arc;

use m2msec::cert::{CertError, CertifiedKey, Credential};
use m2msec::config::ClientAuth;
use m2msec::enums::AlertDescription;
use m2msec::error::{ConfigError, PeerIncompatible, PeerMisbehaved};
use m2msec::{
    CertificateType, CipherSuite, ClientConfig, ClientPsk, Error, Now, Psk, PskTable, ServerConfig,
    Transport,
};

mod ecdhe_common;
use ecdhe_common::*;

const TRANSPORTS: [Transport; 3] = [
    Transport::Tls,
    Transport::Dtls { mtu: 1232 },
    Transport::Dtls { mtu: 256 },
];

fn mutual(suite: CipherSuite) -> (ClientConfig, ServerConfig) {
    let server = server_x509();
    let client = client_x509();
    (
        client_cfg(&[suite], pin(&server), Some(client.clone())),
        server_cfg(
            CipherSuite::ECDHE_ECDSA,
            server,
            ClientAuth::Required,
            pin(&client),
        ),
    )
}

fn check_data_and_exporter(o: &mut Outcome, chunk: usize) {
    assert_eq!(exporter(&o.c.s), exporter(&o.s.s));
    o.c.s.send(Now::default(), b"ping from client").unwrap();
    let mut out = Vec::new();
    o.c.drain(&mut out);
    o.s.feed(&out, chunk);
    assert_eq!(o.s.data, b"ping from client");
    o.s.s.send(Now::default(), b"pong").unwrap();
    let mut out = Vec::new();
    o.s.drain(&mut out);
    o.c.feed(&out, chunk);
    assert_eq!(o.c.data, b"pong");
}

#[test]
fn x509_mutual_auth_tls_and_dtls_both_suites() {
    for transport in TRANSPORTS {
        for &suite in CipherSuite::ECDHE_ECDSA {
            let (c, s) = mutual(suite);
            let mut o = run(c, s, transport, 1000);
            assert!(
                o.connected(),
                "{transport:?} {suite}: {:?} / {:?}",
                o.c.err,
                o.s.err
            );
            let (ci, si) = (o.c.info.clone().unwrap(), o.s.info.clone().unwrap());
            assert_eq!(ci.suite, suite);
            assert_eq!(si.suite, suite);
            assert!(ci.extended_master_secret && si.extended_master_secret);
            assert_eq!(si.server_name.as_deref(), Some("mef.example.com"));
            assert!(ci.psk_identity.is_empty());
            let server_pin = info_for(server_x509().credential());
            let client_pin = info_for(client_x509().credential());
            assert_eq!(ci.peer_certificate, Some(server_pin));
            assert_eq!(si.peer_certificate, Some(client_pin));
            check_data_and_exporter(&mut o, 1000);
        }
    }
}

#[test]
fn server_only_authentication() {
    for transport in TRANSPORTS {
        let server = server_x509();
        let c = client_cfg(CipherSuite::ECDHE_ECDSA, pin(&server), Some(client_x509()));
        let s = ServerConfig::builder_with_certificate(server)
            .build()
            .unwrap();
        let mut o = run(c, s, transport, 1000);
        assert!(o.connected(), "{:?} / {:?}", o.c.err, o.s.err);
        assert_eq!(o.s.info.as_ref().unwrap().peer_certificate, None);
        assert!(o.c.info.as_ref().unwrap().peer_certificate.is_some());
        assert_eq!(
            o.c.info.as_ref().unwrap().suite,
            CipherSuite::EcdheEcdsaAes128Ccm
        );
        check_data_and_exporter(&mut o, 1000);
    }
}

#[test]
fn raw_public_keys_both_ways() {
    for transport in TRANSPORTS {
        for &suite in CipherSuite::ECDHE_ECDSA {
            let server = CertifiedKey::raw(key(SERVER_KEY));
            let client = CertifiedKey::raw(key(CLIENT_KEY));
            let c = ClientConfig::builder_with_verifier(pin(&server))
                .suites(&[suite])
                .certificate(client.clone())
                .server_certificate_types(&[CertificateType::RawPublicKey])
                .build()
                .unwrap();
            let s = server_cfg(
                CipherSuite::ECDHE_ECDSA,
                server,
                ClientAuth::Required,
                pin(&client),
            );
            let mut o = run(c, s, transport, 1000);
            assert!(o.connected(), "{:?} / {:?}", o.c.err, o.s.err);
            let ci = o.c.info.clone().unwrap();
            let si = o.s.info.clone().unwrap();
            assert!(ci.peer_certificate.unwrap().raw_public_key);
            assert!(si.peer_certificate.unwrap().raw_public_key);
            check_data_and_exporter(&mut o, 1000);
        }
    }
}

#[test]
fn x509_server_sends_its_raw_key_when_the_client_prefers_it() {
    let server = server_x509();
    let raw = CertifiedKey::raw(key(SERVER_KEY));
    let c = ClientConfig::builder_with_verifier(pin(&raw))
        .server_certificate_types(&[CertificateType::RawPublicKey, CertificateType::X509])
        .build()
        .unwrap();
    let s = ServerConfig::builder_with_certificate(server)
        .server_certificate_types(&[CertificateType::X509, CertificateType::RawPublicKey])
        .build()
        .unwrap();
    let o = run(c, s, Transport::Tls, 1000);
    assert!(o.connected(), "{:?} / {:?}", o.c.err, o.s.err);
    assert!(o.c.info.unwrap().peer_certificate.unwrap().raw_public_key);

    // A client that wants raw keys only, against a server that sends X.509 only.
    let c = ClientConfig::builder_with_verifier(Arc::new(AcceptAll))
        .server_certificate_types(&[CertificateType::RawPublicKey])
        .build()
        .unwrap();
    let s = ServerConfig::builder_with_certificate(server_x509())
        .build()
        .unwrap();
    let o = run(c, s, Transport::Tls, 1000);
    assert_eq!(
        o.s.err,
        Some(Error::PeerIncompatible(
            PeerIncompatible::NoCommonCertificateType
        ))
    );
    assert_eq!(
        alert_received(&o.c),
        Some(AlertDescription::UnsupportedCertificate)
    );
}

#[test]
fn verifier_rejects_on_either_side() {
    for transport in [Transport::Tls, Transport::dtls()] {
        // The client refuses the server.
        let server = server_x509();
        let c = client_cfg(
            CipherSuite::ECDHE_ECDSA,
            Arc::new(RejectAll(CertError::UntrustedRoot)),
            None,
        );
        let s = ServerConfig::builder_with_certificate(server)
            .build()
            .unwrap();
        let o = run(c, s, transport, 1000);
        assert_eq!(o.c.err, Some(Error::Certificate(CertError::UntrustedRoot)));
        assert_eq!(alert_received(&o.s), Some(AlertDescription::UnknownCa));

        // The server refuses the client (a pin on another key).
        let (c, _) = mutual(CipherSuite::EcdheEcdsaAes128Ccm8);
        let s = server_cfg(
            CipherSuite::ECDHE_ECDSA,
            server_x509(),
            ClientAuth::Required,
            pin(&CertifiedKey::raw(key(OTHER_KEY))),
        );
        let o = run(c, s, transport, 1000);
        assert_eq!(o.s.err, Some(Error::Certificate(CertError::UntrustedRoot)));
        assert_eq!(alert_received(&o.c), Some(AlertDescription::UnknownCa));
        assert!(!o.c.s.is_connected());
    }
}

#[test]
fn deferred_verification_resumes_both_ways() {
    for transport in TRANSPORTS {
        for chunk in [1, 13, 100_000] {
            if transport != Transport::Tls && chunk != 100_000 {
                continue;
            }
            let server = server_x509();
            let client = client_x509();
            let c = client_cfg(CipherSuite::ECDHE_ECDSA, Arc::new(DeferAll), Some(client));
            let s = server_cfg(
                CipherSuite::ECDHE_ECDSA,
                server,
                ClientAuth::Required,
                Arc::new(DeferAll),
            );
            let mut o = run(c, s, transport, chunk);
            assert!(
                o.connected(),
                "{transport:?} {chunk}: {:?} / {:?}",
                o.c.err,
                o.s.err
            );
            assert_eq!(o.c.verify_events, 1);
            assert_eq!(o.s.verify_events, 1);
            assert!(o.c.info.as_ref().unwrap().peer_certificate.is_some());
            assert!(o.s.info.as_ref().unwrap().peer_certificate.is_some());
            check_data_and_exporter(&mut o, chunk);

            // A deferred refusal on the client, then on the server.
            for client_refuses in [true, false] {
                let c = client_cfg(
                    CipherSuite::ECDHE_ECDSA,
                    Arc::new(DeferAll),
                    Some(client_x509()),
                );
                let s = server_cfg(
                    CipherSuite::ECDHE_ECDSA,
                    server_x509(),
                    ClientAuth::Required,
                    Arc::new(DeferAll),
                );
                let answers: (Answer, Answer) = if client_refuses {
                    (refuse, accept)
                } else {
                    (accept, refuse)
                };
                let o = run_with(c, s, transport, chunk, answers, &mut |_, _, _| {});
                let (refuser, other) = if client_refuses {
                    (&o.c, &o.s)
                } else {
                    (&o.s, &o.c)
                };
                assert_eq!(refuser.err, Some(Error::Certificate(CertError::Refused)));
                assert_eq!(
                    alert_received(other),
                    Some(AlertDescription::BadCertificate)
                );
            }
        }
    }
}

#[test]
fn deferred_session_takes_no_input_and_refuses_misuse() {
    let c = client_cfg(CipherSuite::ECDHE_ECDSA, Arc::new(DeferAll), None);
    let s = ServerConfig::builder_with_certificate(server_x509())
        .build()
        .unwrap();
    let mut client =
        m2msec::Session::client(Arc::new(c), Transport::Tls, None, Now::default(), [3; 32])
            .unwrap();
    let mut server =
        m2msec::Session::server(Arc::new(s), Transport::Tls, Now::default(), [4; 32]).unwrap();
    assert_eq!(
        client.peer_verified(Now::default(), Err(CertError::Refused)),
        Err(Error::ApiMisuse(
            m2msec::error::ApiMisuse::NoVerificationRequested
        ))
    );
    let mut c = Side::new(client, false, accept);
    let mut s = Side::new(server, false, accept);
    let mut out = Vec::new();
    c.drain(&mut out);
    let flight = s.feed(&out, 100_000).concat();
    // Feed the whole server flight without draining: the client stops after Certificate.
    let n = c.s.handle_input(Now::default(), &flight).unwrap();
    assert!(n < flight.len());
    assert!(c.s.is_suspended());
    assert_eq!(c.s.handle_input(Now::default(), &flight[n..]).unwrap(), 0);
    let mut out = Vec::new();
    c.drain(&mut out); // answers (accept) and resumes
    assert!(!c.s.is_suspended());
    let out2 = c.feed(&[flight[n..].to_vec()], 100_000);
    let to_server = [out.concat(), out2.concat()].concat();
    let back = s.feed(&[to_server], 100_000);
    c.feed(&back, 100_000);
    assert!(c.s.is_connected() && s.s.is_connected());
    server = s.s;
    let _ = server.info();
}

#[test]
fn client_without_certificate() {
    for transport in [Transport::Tls, Transport::dtls()] {
        let server = server_x509();
        let c = client_cfg(CipherSuite::ECDHE_ECDSA, pin(&server), None);
        let s = server_cfg(
            CipherSuite::ECDHE_ECDSA,
            server.clone(),
            ClientAuth::Required,
            Arc::new(AcceptAll),
        );
        let o = run(c, s, transport, 1000);
        assert_eq!(o.s.err, Some(Error::Certificate(CertError::NoCertificate)));
        assert_eq!(
            alert_received(&o.c),
            Some(AlertDescription::HandshakeFailure)
        );

        let c = client_cfg(CipherSuite::ECDHE_ECDSA, pin(&server), None);
        let s = server_cfg(
            CipherSuite::ECDHE_ECDSA,
            server,
            ClientAuth::Optional,
            Arc::new(AcceptAll),
        );
        let o = run(c, s, transport, 1000);
        assert!(o.connected(), "{:?} / {:?}", o.c.err, o.s.err);
        assert_eq!(o.s.info.unwrap().peer_certificate, None);
    }
}

/// Re-signs the ServerKeyExchange of a TLS server flight with `other`.
fn resign_ske(flight: &mut Vec<u8>, client_random: &[u8], other: &m2msec::SigningKey) {
    use p256::ecdsa::signature::Signer;
    let mut recs = records(flight);
    let server_random = recs[0].1[4 + 2..4 + 34].to_vec();
    for (_, body) in &mut recs {
        if body[0] == 12 {
            let params = body[4..4 + 4 + 65].to_vec();
            let signed = [client_random, &server_random, &params].concat();
            let sig: p256::ecdsa::Signature = other.ecdsa().sign(&signed);
            let der = sig.to_der();
            let mut msg = params.clone();
            msg.extend_from_slice(&[4, 3]);
            msg.extend_from_slice(&u16::try_from(der.as_bytes().len()).unwrap().to_be_bytes());
            msg.extend_from_slice(der.as_bytes());
            let mut new = vec![12, 0, 0, 0];
            new[1..4].copy_from_slice(&u32::try_from(msg.len()).unwrap().to_be_bytes()[1..]);
            new.extend_from_slice(&msg);
            *body = new;
        }
    }
    *flight = join(&recs);
}

#[test]
fn signature_by_another_key_is_decrypt_error() {
    // ServerKeyExchange signed by a key that is not the certificate's.
    let server = server_x509();
    let c = client_cfg(CipherSuite::ECDHE_ECDSA, pin(&server), None);
    let s = ServerConfig::builder_with_certificate(server)
        .build()
        .unwrap();
    let mut client_random = Vec::new();
    let other = key(OTHER_KEY);
    let o = run_with(
        c,
        s,
        Transport::Tls,
        100_000,
        (accept, accept),
        &mut |round, from_client, f| {
            if round == 0 && from_client {
                client_random = records(&f[0])[0].1[6..38].to_vec();
            }
            if round == 0 && !from_client {
                resign_ske(&mut f[0], &client_random, &other);
            }
        },
    );
    assert_eq!(
        o.c.err,
        Some(Error::PeerMisbehaved(PeerMisbehaved::BadSignature))
    );
    assert_eq!(alert_received(&o.s), Some(AlertDescription::DecryptError));

    // A CertificateVerify signed by another key: swap the client's key under its certificate
    // by presenting the certificate with a CertifiedKey check bypassed is impossible, so the
    // flight is edited: the signature's last byte flipped.
    let (c, s) = mutual(CipherSuite::EcdheEcdsaAes128Ccm);
    let o = run_with(
        c,
        s,
        Transport::Tls,
        100_000,
        (accept, accept),
        &mut |round, from_client, f| {
            if round == 1 && from_client {
                let mut recs = records(&f[0]);
                for (t, body) in &mut recs {
                    if *t == 22 && body[0] == 15 {
                        let n = body.len();
                        body[n - 1] ^= 0x01;
                    }
                }
                f[0] = [
                    join(&recs[..recs.len() - 1]),
                    f[0][f[0].len() - (5 + recs.last().unwrap().1.len())..].to_vec(),
                ]
                .concat();
            }
        },
    );
    assert_eq!(
        o.s.err,
        Some(Error::PeerMisbehaved(PeerMisbehaved::BadSignature))
    );
    assert_eq!(alert_received(&o.c), Some(AlertDescription::DecryptError));
}

#[test]
fn invalid_client_point_is_illegal_parameter() {
    let (c, s) = mutual(CipherSuite::EcdheEcdsaAes128Ccm);
    let o = run_with(
        c,
        s,
        Transport::Tls,
        100_000,
        (accept, accept),
        &mut |round, from_client, f| {
            if round == 1 && from_client {
                // The point of ClientKeyExchange (type 16): flip a bit of y.
                let pos = {
                    let b = &f[0];
                    let mut i = 0;
                    loop {
                        if b[i] == 22 && b[i + 5] == 16 {
                            break i + 5 + 4 + 1 + 64;
                        }
                        i += 5 + usize::from(u16::from_be_bytes([b[i + 3], b[i + 4]]));
                    }
                };
                f[0][pos] ^= 1;
            }
        },
    );
    assert_eq!(
        o.s.err,
        Some(Error::PeerMisbehaved(PeerMisbehaved::IllegalParameter(
            "ECPoint"
        )))
    );
    assert_eq!(
        alert_received(&o.c),
        Some(AlertDescription::IllegalParameter)
    );
}

#[test]
fn oversized_and_malformed_certificates() {
    // A server whose chain repeats the CA seven times: refused by CertifiedKey already.
    let chain = vec![SERVER_CERT.to_vec(); 7];
    assert_eq!(
        CertifiedKey::new(key(SERVER_KEY), Credential::X509(chain)).unwrap_err(),
        CertError::ChainTooLong
    );
    // So the flight is edited: the Certificate message gets seven copies of the leaf.
    let server = server_x509();
    let c = client_cfg(CipherSuite::ECDHE_ECDSA, Arc::new(AcceptAll), None);
    let s = ServerConfig::builder_with_certificate(server)
        .build()
        .unwrap();
    let o = run_with(
        c,
        s,
        Transport::Tls,
        100_000,
        (accept, accept),
        &mut |round, from_client, f| {
            if round == 0 && !from_client {
                let mut recs = records(&f[0]);
                for (_, body) in &mut recs {
                    if body[0] == 11 {
                        let mut list = Vec::new();
                        for _ in 0..7 {
                            list.extend_from_slice(
                                &u32::try_from(SERVER_CERT.len()).unwrap().to_be_bytes()[1..],
                            );
                            list.extend_from_slice(SERVER_CERT);
                        }
                        let mut msg =
                            u32::try_from(list.len()).unwrap().to_be_bytes()[1..].to_vec();
                        msg.extend_from_slice(&list);
                        let mut new = vec![11];
                        new.extend_from_slice(
                            &u32::try_from(msg.len()).unwrap().to_be_bytes()[1..],
                        );
                        new.extend_from_slice(&msg);
                        *body = new;
                    }
                }
                f[0] = join(&recs);
            }
        },
    );
    assert_eq!(o.c.err, Some(Error::Certificate(CertError::ChainTooLong)));
    assert_eq!(alert_received(&o.s), Some(AlertDescription::BadCertificate));
}

#[test]
fn configuration_rules() {
    let psk = || ClientPsk::new(b"id", Psk::new(&[1; 16]).unwrap()).unwrap();
    // PSK-only configurations are unchanged.
    assert!(ClientConfig::builder(psk()).build().is_ok());
    assert!(ServerConfig::builder(Box::new(PskTable::new()))
        .build()
        .is_ok());
    // An ECDHE suite needs a verifier (client) or a certificate (server).
    assert_eq!(
        ClientConfig::builder(psk())
            .suites(CipherSuite::every())
            .build()
            .unwrap_err(),
        ConfigError::MissingVerifier
    );
    assert_eq!(
        ServerConfig::builder(Box::new(PskTable::new()))
            .suites(CipherSuite::every())
            .build()
            .unwrap_err(),
        ConfigError::MissingCertificate
    );
    // A PSK suite needs a PSK.
    assert_eq!(
        ClientConfig::builder_with_verifier(Arc::new(AcceptAll))
            .suites(CipherSuite::every())
            .build()
            .unwrap_err(),
        ConfigError::MissingPsk
    );
    assert_eq!(
        ServerConfig::builder_with_certificate(server_x509())
            .suites(CipherSuite::every())
            .build()
            .unwrap_err(),
        ConfigError::MissingPsk
    );
    // Client authentication needs a verifier.
    assert_eq!(
        ServerConfig::builder_with_certificate(server_x509())
            .client_auth(ClientAuth::Required)
            .build()
            .unwrap_err(),
        ConfigError::MissingVerifier
    );
    // A raw key cannot be presented as X.509; empty and repeated type lists are refused.
    let raw = CertifiedKey::raw(key(SERVER_KEY));
    assert_eq!(
        ServerConfig::builder_with_certificate(raw)
            .server_certificate_types(&[CertificateType::X509])
            .build()
            .unwrap_err(),
        ConfigError::BadCertificateTypes
    );
    assert_eq!(
        ClientConfig::builder_with_verifier(Arc::new(AcceptAll))
            .server_certificate_types(&[])
            .build()
            .unwrap_err(),
        ConfigError::BadCertificateTypes
    );
    assert_eq!(
        ClientConfig::builder_with_verifier(Arc::new(AcceptAll))
            .server_certificate_types(&[CertificateType::X509, CertificateType::X509])
            .build()
            .unwrap_err(),
        ConfigError::BadCertificateTypes
    );
    // ALL stays the PSK suites; every() has all four; names and code points round-trip.
    assert!(CipherSuite::ALL.iter().all(|s| s.is_psk()));
    assert_eq!(CipherSuite::every().len(), 4);
    for &s in CipherSuite::every() {
        assert_eq!(CipherSuite::from_code(s.code()), Some(s));
        assert_eq!(CipherSuite::from_name(s.short_name()), Some(s));
    }
    assert_eq!(CipherSuite::EcdheEcdsaAes128Ccm8.code(), 0xC0AE);
    // Debug never shows key material.
    let dbg = format!("{:?}", server_x509());
    assert!(dbg.contains("redacted"), "{dbg}");
}

#[test]
fn psk_and_certificates_in_one_configuration() {
    let server = server_x509();
    let mut table = PskTable::new();
    table.insert(b"id", Psk::new(&[1; 16]).unwrap()).unwrap();
    let scfg = |order: &[CipherSuite]| {
        let mut t = PskTable::new();
        t.insert(b"id", Psk::new(&[1; 16]).unwrap()).unwrap();
        ServerConfig::builder(Box::new(t))
            .certificate(server_x509())
            .suites(order)
            .build()
            .unwrap()
    };
    let ccfg = || {
        ClientConfig::builder(ClientPsk::new(b"id", Psk::new(&[1; 16]).unwrap()).unwrap())
            .verifier(pin(&server))
            .suites(CipherSuite::every())
            .build()
            .unwrap()
    };
    // The server's preference decides.
    let o = run(
        ccfg(),
        scfg(&[CipherSuite::EcdheEcdsaAes128Ccm8, CipherSuite::PskAes128Ccm]),
        Transport::Tls,
        1000,
    );
    assert!(o.connected(), "{:?} / {:?}", o.c.err, o.s.err);
    assert_eq!(o.c.info.unwrap().suite, CipherSuite::EcdheEcdsaAes128Ccm8);
    let o = run(ccfg(), scfg(CipherSuite::every()), Transport::dtls(), 1000);
    assert!(o.connected(), "{:?} / {:?}", o.c.err, o.s.err);
    let ci = o.c.info.unwrap();
    assert_eq!(ci.suite, CipherSuite::PskAes128Ccm);
    assert_eq!(ci.peer_certificate, None);
    assert_eq!(o.s.info.unwrap().psk_identity, b"id");
    drop(table);
}

#[test]
fn dtls_lost_certificate_flight_is_retransmitted_and_reassembled_out_of_order() {
    use m2msec::{Instant, Session, UnixTime};
    let (c, s) = mutual(CipherSuite::EcdheEcdsaAes128Ccm8);
    let t = Transport::Dtls { mtu: 300 };
    let client = Session::client(Arc::new(c), t, None, Now::default(), [5; 32]).unwrap();
    let server = Session::server(Arc::new(s), t, Now::default(), [6; 32]).unwrap();
    let (mut client, mut server) = (
        Side::new(client, true, accept),
        Side::new(server, true, accept),
    );
    let mut hello = Vec::new();
    client.drain(&mut hello);
    let lost = server.feed(&hello, 0);
    assert!(
        lost.len() > 3,
        "the certificate flight is fragmented over several datagrams"
    );
    let later = Now {
        mono: Instant(2_000_000),
        unix: UnixTime(0),
    };
    server.s.handle_timeout(later).unwrap();
    let mut again = Vec::new();
    server.drain(&mut again);
    assert_eq!(again.len(), lost.len());
    again.reverse();
    let to_server = client.feed(&again, 0);
    let back = server.feed(&to_server, 0);
    client.feed(&back, 0);
    assert!(client.s.is_connected() && server.s.is_connected());
    assert_eq!(exporter(&client.s), exporter(&server.s));
    assert!(server.s.stats().retransmissions >= 1);
}
