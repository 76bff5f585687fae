//! In-memory client/server pairs driven through the public sans-IO API.

use std::sync::Arc;

use m2msec::config::{DeferAll, Limits};
use m2msec::enums::AlertDescription;
use m2msec::error::PeerMisbehaved;
use m2msec::{
    CipherSuite, ClientConfig, ClientPsk, Error, Now, Psk, PskTable, ServerConfig, Session,
    Transport,
};

mod common;
use common::*;

#[test]
fn psk_handshake_both_suites_data_and_exporter() {
    for &suite in CipherSuite::ALL {
        for hint in [None, Some(&b"hint"[..])] {
            for chunk in [1, 7, 100_000] {
                let (mut p, c, s) = handshake(
                    client_cfg(&KEY, &[suite]),
                    server_cfg(CipherSuite::ALL, hint),
                    Some("mef.example.com"),
                    chunk,
                )
                .map_err(|(e, _)| e)
                .unwrap();
                let ci = c.connected.unwrap();
                let si = s.connected.unwrap();
                assert_eq!(ci.suite, suite);
                assert_eq!(si.suite, suite);
                assert_eq!(si.psk_identity, ID);
                assert_eq!(si.server_name.as_deref(), Some("mef.example.com"));
                assert!(ci.extended_master_secret && si.extended_master_secret);
                assert_eq!(ci.psk_identity_hint.as_deref(), hint);

                let mut a = [0u8; 48];
                let mut b = [0u8; 48];
                p.client
                    .export_keying_material(&mut a, b"EXPORTER-oneM2M-Bootstrap", None)
                    .unwrap();
                p.server
                    .export_keying_material(&mut b, b"EXPORTER-oneM2M-Bootstrap", None)
                    .unwrap();
                assert_eq!(a, b);
                let mut e = [0u8; 48];
                p.server
                    .export_keying_material(&mut e, b"EXPORTER-oneM2M-Bootstrap", Some(b""))
                    .unwrap();
                assert_ne!(a, e, "empty context differs from no context");

                // data both ways, including more than one record
                let big: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
                let mut sent = 0;
                while sent < big.len() {
                    sent += p.client.send(Now::default(), &big[sent..]).unwrap();
                    let bytes = drain(&mut p.client).bytes;
                    let got = feed(&mut p.server, &bytes, chunk).unwrap();
                    assert_eq!(got.data, big[sent - got.data.len()..sent]);
                }
                p.server.send(Now::default(), b"pong").unwrap();
                let bytes = drain(&mut p.server).bytes;
                assert_eq!(feed(&mut p.client, &bytes, chunk).unwrap().data, b"pong");

                // orderly close
                p.client.close(Now::default()).unwrap();
                let bytes = drain(&mut p.client).bytes;
                let d = feed(&mut p.server, &bytes, chunk).unwrap();
                assert_eq!(d.events, vec!["PeerClosed".to_string()]);
                let d = feed(&mut p.client, &d.bytes, chunk).unwrap();
                assert_eq!(d.events, vec!["PeerClosed".to_string()]);
                p.client.handle_eof(Now::default()).unwrap();
            }
        }
    }
}

/// Feeds bytes to `s` expecting a fatal error; returns it and the alert `s` then sends.
fn alert_sent(s: &mut Session) -> Option<AlertDescription> {
    let b = drain(s).bytes;
    // Find the last alert record in plaintext or protected form: only plaintext alerts are
    // readable here, so callers use the peer to decode protected ones.
    (b.len() >= 7 && b[b.len() - 7] == 21).then(|| AlertDescription::from(b[b.len() - 1]))
}

#[test]
fn wrong_psk_fails_with_bad_record_mac_on_both_sides() {
    let (e, mut p) = handshake(
        client_cfg(&[9; 16], CipherSuite::ALL),
        server_cfg(CipherSuite::ALL, None),
        None,
        1000,
    )
    .err()
    .expect("must fail");
    assert_eq!(e, Error::BadRecordMac);
    // The server's alert is plaintext (its write keys are not active yet): feed it to the client.
    let bytes = drain(&mut p.server).bytes;
    assert_eq!(bytes, [21, 3, 3, 0, 2, 2, 20]);
    let e = feed(&mut p.client, &bytes, 1000).unwrap_err();
    assert_eq!(e, Error::AlertReceived(AlertDescription::BadRecordMac));
    assert_eq!(
        p.client.handle_input(Now::default(), &[]),
        Err(Error::ApiMisuse(m2msec::error::ApiMisuse::AfterFatal))
    );
}

#[test]
fn unknown_identity_gets_unknown_psk_identity() {
    let psk = ClientPsk::new(b"nobody", Psk::new(&KEY).unwrap()).unwrap();
    let c = Arc::new(ClientConfig::builder(psk).build().unwrap());
    let (e, mut p) = handshake(c, server_cfg(CipherSuite::ALL, None), None, 1000)
        .err()
        .expect("must fail");
    assert_eq!(e, Error::UnknownPskIdentity);
    assert_eq!(
        alert_sent(&mut p.server),
        Some(AlertDescription::UnknownPskIdentity)
    );
}

#[test]
fn no_common_suite_is_handshake_failure() {
    let (e, mut p) = handshake(
        client_cfg(&KEY, &[CipherSuite::PskAes128Ccm8]),
        server_cfg(&[CipherSuite::PskAes128Ccm], None),
        None,
        1000,
    )
    .err()
    .expect("must fail");
    assert_eq!(
        e,
        Error::PeerIncompatible(m2msec::error::PeerIncompatible::NoCommonCipherSuite)
    );
    assert_eq!(
        alert_sent(&mut p.server),
        Some(AlertDescription::HandshakeFailure)
    );
}

#[test]
fn deferred_psk_lookup_resumes() {
    let s = Arc::new(ServerConfig::builder(Box::new(DeferAll)).build().unwrap());
    let mut client = Session::client(
        client_cfg(&KEY, CipherSuite::ALL),
        Transport::Tls,
        Some("maf.example"),
        Now::default(),
        [3; 32],
    )
    .unwrap();
    let mut server = Session::server(s, Transport::Tls, Now::default(), [4; 32]).unwrap();
    let ch = drain(&mut client).bytes;
    let sh = feed(&mut server, &ch, 1000).unwrap().bytes;
    let fin = feed(&mut client, &sh, 1000).unwrap().bytes;
    let d = feed(&mut server, &fin, 1000).unwrap();
    assert_eq!(d.psk_needed.as_deref(), Some(ID));
    assert!(
        d.bytes.is_empty(),
        "nothing is sent while the lookup is pending"
    );
    // Misuse is typed: a second provide without a request fails, after the first one succeeds.
    server
        .provide_psk(Now::default(), Some(Psk::new(&KEY).unwrap()))
        .unwrap();
    // The records after ClientKeyExchange were not taken while suspended: feed them now.
    assert!(!d.leftover.is_empty());
    let d = feed(&mut server, &d.leftover, 1000).unwrap();
    assert!(
        server.is_connected(),
        "server connected after resume: {:?}",
        server.error()
    );
    let d2 = feed(&mut client, &d.bytes, 1000).unwrap();
    assert!(d2.connected.is_some());
    assert_eq!(
        server.provide_psk(Now::default(), None),
        Err(Error::ApiMisuse(m2msec::error::ApiMisuse::NoPskRequested))
    );
}

#[test]
fn handshake_message_bound_is_enforced() {
    let psk = ClientPsk::new(ID, Psk::new(&KEY).unwrap()).unwrap();
    let _c = ClientConfig::builder(psk).limits(Limits {
        max_handshake_message: 64,
        ..Limits::default()
    });
    let s = Arc::new(
        ServerConfig::builder(Box::new(PskTable::new()))
            .limits(Limits {
                max_handshake_message: 64,
                ..Limits::default()
            })
            .build()
            .unwrap(),
    );
    let mut server = Session::server(s, Transport::Tls, Now::default(), [0; 32]).unwrap();
    // A ClientHello header announcing 1 MiB.
    let e = server
        .handle_input(Now::default(), &[22, 3, 3, 0, 4, 1, 0x10, 0, 0])
        .unwrap_err();
    assert_eq!(
        e,
        Error::Decode(m2msec::error::InvalidMessage::HandshakeMessageTooLarge)
    );
}

#[test]
fn tampered_record_is_rejected_after_handshake() {
    let (mut p, _, _) = handshake(
        client_cfg(&KEY, CipherSuite::ALL),
        server_cfg(CipherSuite::ALL, None),
        None,
        1000,
    )
    .map_err(|(e, _)| e)
    .unwrap();
    p.client.send(Now::default(), b"hello").unwrap();
    let mut bytes = drain(&mut p.client).bytes;
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    assert_eq!(
        feed(&mut p.server, &bytes, 1000).unwrap_err(),
        Error::BadRecordMac
    );
    let _ = PeerMisbehaved::BadFinished;
}

#[test]
fn session_is_small() {
    // Stack size of the session value itself (heap buffers come on top): keep it embeddable.
    let size = size_of::<Session>();
    eprintln!("size_of::<Session>() = {size}");
    assert!(size <= 1024, "Session is {size} bytes");
}

#[test]
fn send_applies_backpressure_and_never_stalls() {
    let psk = ClientPsk::new(ID, Psk::new(&KEY).unwrap()).unwrap();
    let limits = Limits {
        max_buffered_output: 20_000,
        ..Limits::default()
    };
    let c = Arc::new(ClientConfig::builder(psk).limits(limits).build().unwrap());
    let (mut p, _, _) = handshake(c, server_cfg(CipherSuite::ALL, None), None, 100_000)
        .map_err(|(e, _)| e)
        .unwrap();
    let data = vec![7u8; 100_000];
    // Nothing queued: at least one full record is taken, but not everything.
    let first = p.client.send(Now::default(), &data).unwrap();
    assert_eq!(first, 20_000);
    // Still queued: nothing more fits until the caller drains.
    assert_eq!(p.client.send(Now::default(), &data[first..]).unwrap(), 0);
    let bytes = drain(&mut p.client).bytes;
    assert_eq!(
        feed(&mut p.server, &bytes, 100_000).unwrap().data.len(),
        first
    );
    assert_eq!(
        p.client.send(Now::default(), &data[first..]).unwrap(),
        20_000
    );
}
