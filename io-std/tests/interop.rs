//! Interoperability with independent stacks: OpenSSL (`openssl s_server` / `s_client`) and
//! GnuTLS (`gnutls-serv` / `gnutls-cli`) on 127.0.0.1, both directions, both suites, data both
//! ways, exporter values compared, and the failure cases with their alerts.
//!
//! Under `CI=true` a missing peer binary fails the test; elsewhere the test prints `SKIP` and
//! passes.

use std::io::{Read, Write};

use m2msec::enums::AlertDescription;
use m2msec::{CipherSuite, Error};

mod common;
use common::*;

#[test]
fn our_client_with_openssl_server() {
    if !have("openssl") {
        return;
    }
    for &suite in CipherSuite::ALL {
        let port = free_port();
        let mut peer = openssl_server(suite, port, KEY_HEX);
        let mut tls = m2msec_std::connect(
            connect_when_listening(port),
            client_config(suite, ID, &key()),
            Some("localhost"),
        )
        .unwrap();
        assert_eq!(tls.info().suite, suite);
        assert!(
            tls.info().extended_master_secret,
            "OpenSSL negotiates RFC 7627"
        );
        assert_eq!(tls.info().psk_identity_hint.as_deref(), Some(&b"hint"[..]));
        tls.write_all(b"c2s from m2msec\n").unwrap();
        peer.wait_for("c2s from m2msec");
        peer.send_line("s2c from openssl");
        assert_eq!(read_line(&mut tls), "s2c from openssl\n");
        assert_eq!(peer.value_after("Keying material:"), exporter(&tls, None));
        tls.close().unwrap();
        let log = peer.finish();
        let expected = match suite {
            CipherSuite::PskAes128Ccm => "PSK-AES128-CCM\n",
            _ => "PSK-AES128-CCM8\n",
        };
        assert!(
            log.contains(&format!("CIPHER is {expected}")) || log.contains(expected.trim()),
            "{log}"
        );
    }
}

#[test]
fn openssl_client_with_our_server() {
    if !have("openssl") {
        return;
    }
    for &suite in CipherSuite::ALL {
        let (listener, port) = listen();
        let connect = format!("127.0.0.1:{port}");
        let mut peer = Peer::spawn(&[
            "openssl",
            "s_client",
            "-connect",
            &connect,
            "-tls1_2",
            "-psk_identity",
            ID,
            "-psk",
            KEY_HEX,
            "-cipher",
            &openssl_cipher(suite),
            "-no_ticket",
            "-servername",
            "in-cse.example",
            "-keymatexport",
            LABEL,
            "-keymatexportlen",
            "32",
        ]);
        let mut tls = accept_one(&listener, suite).unwrap();
        assert_eq!(tls.info().psk_identity, ID.as_bytes());
        assert_eq!(tls.info().server_name.as_deref(), Some("in-cse.example"));
        assert_eq!(tls.info().suite, suite);
        tls.write_all(b"s2c from m2msec\n").unwrap();
        peer.wait_for("s2c from m2msec");
        peer.send_line("c2s from openssl");
        assert_eq!(read_line(&mut tls), "c2s from openssl\n");
        assert_eq!(peer.value_after("Keying material:"), exporter(&tls, None));
        peer.close_stdin();
        // s_client closes on stdin EOF; we must see a clean end (close_notify) or EOF.
        let mut rest = Vec::new();
        let _ = tls.read_to_end(&mut rest);
        peer.finish();
    }
}

#[test]
fn our_client_with_gnutls_server() {
    if !have("gnutls-serv") {
        return;
    }
    let dir = tempdir("gs");
    for &suite in CipherSuite::ALL {
        let port = free_port();
        let peer = gnutls_server(suite, port, &dir);
        let mut tls = m2msec_std::connect(
            connect_when_listening(port),
            client_config(suite, ID, &key()),
            Some("localhost"),
        )
        .unwrap();
        assert_eq!(tls.info().suite, suite);
        tls.write_all(b"echo me\n").unwrap();
        assert_eq!(
            read_line(&mut tls),
            "echo me\n",
            "gnutls-serv --echo returns our data"
        );
        assert_eq!(peer.value_after("Key material:"), exporter(&tls, None));
        let want = match suite {
            CipherSuite::PskAes128Ccm => "(PSK)-(AES-128-CCM)",
            _ => "(PSK)-(AES-128-CCM-8)",
        };
        peer.wait_for(want);
        tls.close().unwrap();
        peer.terminate();
    }
}

#[test]
fn gnutls_client_with_our_server() {
    if !have("gnutls-cli") {
        return;
    }
    for &suite in CipherSuite::ALL {
        let (listener, port) = listen();
        let mut peer = Peer::spawn(&[
            "gnutls-cli",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            &format!("--priority={}", gnutls_priority(suite)),
            &format!("--pskusername={ID}"),
            &format!("--pskkey={KEY_HEX}"),
            &format!("--keymatexport={LABEL}"),
            "--keymatexportsize=32",
        ]);
        let mut tls = accept_one(&listener, suite).unwrap();
        assert_eq!(tls.info().suite, suite);
        tls.write_all(b"s2c from m2msec\n").unwrap();
        peer.wait_for("s2c from m2msec");
        peer.send_line("c2s from gnutls");
        assert_eq!(read_line(&mut tls), "c2s from gnutls\n");
        assert_eq!(peer.value_after("Key material:"), exporter(&tls, None));
        peer.close_stdin();
        // gnutls-cli sends close_notify on stdin EOF: we see a clean end of stream.
        let mut rest = Vec::new();
        tls.read_to_end(&mut rest)
            .expect("clean close_notify from gnutls-cli");
        assert!(rest.is_empty());
        peer.finish();
    }
}

fn tls_error(e: m2msec_std::Error) -> Error {
    match e {
        m2msec_std::Error::Tls(e) => e,
        m2msec_std::Error::Io(e) => panic!("expected a TLS error, got I/O {e}"),
    }
}

#[test]
fn wrong_psk_fails_on_both_sides() {
    if !have("openssl") || !have("gnutls-cli") {
        return;
    }
    let suite = CipherSuite::PskAes128Ccm8;
    // our client, OpenSSL server with another key: the server cannot open our Finished.
    let port = free_port();
    let peer = openssl_server(suite, port, WRONG_HEX);
    let e = m2msec_std::connect(
        connect_when_listening(port),
        client_config(suite, ID, &key()),
        None,
    )
    .unwrap_err();
    assert_eq!(
        tls_error(e),
        Error::AlertReceived(AlertDescription::BadRecordMac)
    );
    let log = peer.finish();
    assert!(log.contains("bad record mac"), "{log}");

    // GnuTLS client with another key, our server.
    let (listener, port) = listen();
    let peer = Peer::spawn(&[
        "gnutls-cli",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        &format!("--priority={}", gnutls_priority(suite)),
        &format!("--pskusername={ID}"),
        &format!("--pskkey={WRONG_HEX}"),
    ]);
    let e = accept_one(&listener, suite).unwrap_err();
    assert_eq!(tls_error(e), Error::BadRecordMac);
    let log = peer.finish();
    assert!(
        log.to_ascii_lowercase().contains("bad record mac")
            || log.contains("Decryption has failed"),
        "{log}"
    );
}

#[test]
fn unknown_identity_fails_with_unknown_psk_identity() {
    if !have("openssl") {
        return;
    }
    let suite = CipherSuite::PskAes128Ccm;
    let (listener, port) = listen();
    let connect = format!("127.0.0.1:{port}");
    let peer = Peer::spawn(&[
        "openssl",
        "s_client",
        "-connect",
        &connect,
        "-tls1_2",
        "-psk_identity",
        "nobody",
        "-psk",
        KEY_HEX,
        "-cipher",
        &openssl_cipher(suite),
        "-no_ticket",
    ]);
    let e = accept_one(&listener, suite).unwrap_err();
    assert_eq!(tls_error(e), Error::UnknownPskIdentity);
    let log = peer.finish();
    assert!(log.contains("unknown psk identity"), "{log}");
}

#[test]
fn no_common_suite_fails_with_handshake_failure() {
    if !have("openssl") {
        return;
    }
    let port = free_port();
    let peer = openssl_server(CipherSuite::PskAes128Ccm, port, KEY_HEX);
    let e = m2msec_std::connect(
        connect_when_listening(port),
        client_config(CipherSuite::PskAes128Ccm8, ID, &key()),
        None,
    )
    .unwrap_err();
    assert_eq!(
        tls_error(e),
        Error::AlertReceived(AlertDescription::HandshakeFailure)
    );
    peer.finish();
}
