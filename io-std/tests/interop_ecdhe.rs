//! ECDHE-ECDSA interoperability with OpenSSL (TLS_ECDHE_ECDSA_WITH_AES_128_CCM and _CCM_8,
//! P-256, mutual authentication with X.509 certificates from `core/tests/data/ecdhe/make.sh`):
//! our client against `openssl s_server -Verify 1`, `openssl s_client` (with a client
//! certificate) against our server, over TLS and DTLS, data both ways, exporter values equal
//! to OpenSSL's `-keymatexport`.
//!
//! Under `CI=true` a missing `openssl` fails the test; elsewhere the test prints `SKIP`.

use std::io::{Read, Write};
use std::net::UdpSocket;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use m2msec::cert::{
    CertDecision, CertVerifier, CertifiedKey, Credential, PeerCertificateInfo, SigningKey,
};
use m2msec::{CipherSuite, ClientAuth, ClientConfig, ServerConfig, UnixTime};
use m2msec_std::{connect_dtls, DtlsServer, ServerEvent};

mod common;
use common::*;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../core/tests/data/ecdhe")
        .join(name)
}

fn path(name: &str) -> String {
    data(name).display().to_string()
}

fn der(name: &str) -> Vec<u8> {
    std::fs::read(data(name)).unwrap()
}

fn certified(cert: &str, key: &str, chain: &[&str]) -> CertifiedKey {
    let mut certs = vec![der(cert)];
    certs.extend(chain.iter().map(|c| der(c)));
    CertifiedKey::new(
        SigningKey::from_pkcs8_der(&der(key)).unwrap(),
        Credential::X509(certs),
    )
    .unwrap()
}

/// Trusts exactly one leaf key (what the test fixtures' peer presents).
struct Pin(Vec<u8>);

impl CertVerifier for Pin {
    fn verify(&self, peer: &Credential, _now: UnixTime) -> CertDecision {
        match peer.leaf_spki() {
            Ok(spki) if spki == self.0 => {
                CertDecision::Accept(PeerCertificateInfo::for_key([0; 32], false))
            }
            _ => CertDecision::Reject(m2msec::cert::CertError::UntrustedRoot),
        }
    }
}

fn pin(key: &str) -> Arc<Pin> {
    Arc::new(Pin(SigningKey::from_pkcs8_der(&der(key))
        .unwrap()
        .spki_der()))
}

fn ossl_cipher(suite: CipherSuite) -> &'static str {
    match suite {
        CipherSuite::EcdheEcdsaAes128Ccm => "ECDHE-ECDSA-AES128-CCM:@SECLEVEL=0",
        _ => "ECDHE-ECDSA-AES128-CCM8:@SECLEVEL=0",
    }
}

fn ossl_name(suite: CipherSuite) -> &'static str {
    match suite {
        CipherSuite::EcdheEcdsaAes128Ccm => "ECDHE-ECDSA-AES128-CCM",
        _ => "ECDHE-ECDSA-AES128-CCM8",
    }
}

fn client_config(suite: CipherSuite) -> Arc<ClientConfig> {
    Arc::new(
        ClientConfig::builder_with_verifier(pin("server.key.der"))
            .suites(&[suite])
            .certificate(certified("client.der", "client.key.der", &[]))
            .build()
            .unwrap(),
    )
}

fn server_config(suite: CipherSuite) -> Arc<ServerConfig> {
    Arc::new(
        ServerConfig::builder_with_certificate(certified(
            "server.der",
            "server.key.der",
            &["ca.der"],
        ))
        .suites(&[suite])
        .client_auth(ClientAuth::Required)
        .verifier(pin("client.key.der"))
        .build()
        .unwrap(),
    )
}

fn openssl_server(suite: CipherSuite, port: u16, dtls: bool) -> Peer {
    let accept = format!("127.0.0.1:{port}");
    let (cert, key, ca) = (path("server.crt"), path("server.key"), path("ca.crt"));
    let mut args = vec!["openssl", "s_server"];
    if dtls {
        args.extend(["-dtls1_2", "-listen"]);
    } else {
        args.extend(["-tls1_2", "-no_ticket"]);
    }
    args.extend([
        "-accept",
        &accept,
        "-cert",
        &cert,
        "-key",
        &key,
        "-cert_chain",
        &ca,
        "-Verify",
        "1",
        "-CAfile",
        &ca,
        "-verify_return_error",
        "-cipher",
        ossl_cipher(suite),
        "-naccept",
        "1",
        "-keymatexport",
        LABEL,
        "-keymatexportlen",
        "32",
    ]);
    let p = Peer::spawn(&args);
    p.wait_for("ACCEPT");
    p
}

fn openssl_client(suite: CipherSuite, port: u16, dtls: bool) -> Peer {
    let connect = format!("127.0.0.1:{port}");
    let (cert, key, ca) = (path("client.crt"), path("client.key"), path("ca.crt"));
    let mut args = vec!["openssl", "s_client"];
    if dtls {
        args.push("-dtls1_2");
    } else {
        args.extend(["-tls1_2", "-no_ticket"]);
    }
    args.extend([
        "-connect",
        &connect,
        "-cert",
        &cert,
        "-key",
        &key,
        "-CAfile",
        &ca,
        "-verify",
        "2",
        "-verify_return_error",
        "-verify_hostname",
        "localhost",
        "-servername",
        "localhost",
        "-cipher",
        ossl_cipher(suite),
        "-keymatexport",
        LABEL,
        "-keymatexportlen",
        "32",
    ]);
    Peer::spawn(&args)
}

fn hex(out: [u8; 32]) -> String {
    out.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn our_client_with_openssl_server_tls() {
    if !have("openssl") {
        return;
    }
    for &suite in CipherSuite::ECDHE_ECDSA {
        let port = free_port();
        let mut peer = openssl_server(suite, port, false);
        let mut tls = m2msec_std::connect(
            connect_when_listening(port),
            client_config(suite),
            Some("localhost"),
        )
        .unwrap();
        assert_eq!(tls.info().suite, suite);
        assert!(tls.info().extended_master_secret);
        assert!(tls.info().peer_certificate.is_some());
        tls.write_all(b"c2s from m2msec\n").unwrap();
        peer.wait_for("c2s from m2msec");
        peer.send_line("s2c from openssl");
        assert_eq!(read_line(&mut tls), "s2c from openssl\n");
        assert_eq!(peer.value_after("Keying material:"), exporter(&tls, None));
        tls.close().unwrap();
        let log = peer.finish();
        assert!(
            log.contains(&format!("CIPHER is {}", ossl_name(suite))),
            "{log}"
        );
        assert!(
            log.contains("CN = m2msec-client"),
            "client certificate seen: {log}"
        );
    }
}

#[test]
fn openssl_client_with_our_server_tls() {
    if !have("openssl") {
        return;
    }
    for &suite in CipherSuite::ECDHE_ECDSA {
        let (listener, port) = listen();
        let mut peer = openssl_client(suite, port, false);
        let (tcp, _) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let mut tls = m2msec_std::accept(tcp, server_config(suite)).unwrap();
        assert_eq!(tls.info().suite, suite);
        assert!(
            tls.info().peer_certificate.is_some(),
            "client authenticated"
        );
        assert_eq!(tls.info().server_name.as_deref(), Some("localhost"));
        tls.write_all(b"s2c from m2msec\n").unwrap();
        peer.wait_for("s2c from m2msec");
        peer.send_line("c2s from openssl");
        assert_eq!(read_line(&mut tls), "c2s from openssl\n");
        assert_eq!(peer.value_after("Keying material:"), exporter(&tls, None));
        peer.close_stdin();
        let mut rest = Vec::new();
        let _ = tls.read_to_end(&mut rest);
        let log = peer.finish();
        assert!(
            log.contains(&format!("Cipher is {}", ossl_name(suite))),
            "{log}"
        );
        assert!(log.contains("Verification: OK"), "{log}");
    }
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn our_client_with_openssl_server_dtls() {
    if !have("openssl") {
        return;
    }
    for &suite in CipherSuite::ECDHE_ECDSA {
        for mtu in [1232, 300] {
            let port = free_udp_port();
            let mut peer = openssl_server(suite, port, true);
            let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
            sock.connect(("127.0.0.1", port)).unwrap();
            let mut c = connect_dtls(sock, client_config(suite), Some("localhost"), mtu).unwrap();
            c.set_recv_timeout(Some(Duration::from_secs(15)));
            assert_eq!(c.info().suite, suite);
            c.send(b"c2s from m2msec\n").unwrap();
            peer.wait_for("c2s from m2msec");
            peer.send_line("s2c from openssl");
            let mut buf = [0u8; 2048];
            let n = c.recv(&mut buf).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&buf[..n]).trim_end(),
                "s2c from openssl"
            );
            let mut out = [0u8; 32];
            c.export_keying_material(&mut out, LABEL.as_bytes(), None)
                .unwrap();
            assert_eq!(peer.value_after("Keying material:"), hex(out));
            c.close().unwrap();
            let log = peer.finish();
            assert!(
                log.contains(&format!("CIPHER is {}", ossl_name(suite))),
                "{log}"
            );
        }
    }
}

#[test]
fn openssl_client_with_our_server_dtls() {
    if !have("openssl") {
        return;
    }
    for &suite in CipherSuite::ECDHE_ECDSA {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = sock.local_addr().unwrap().port();
        let mut server = DtlsServer::new(sock, server_config(suite), 1232, 4).unwrap();
        let mut peer = openssl_client(suite, port, true);
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut export = None;
        let mut who = None;
        let mut sent_line = false;
        while Instant::now() < deadline {
            match server.poll(Duration::from_millis(50)).unwrap() {
                Some(ServerEvent::Connected(addr, info)) => {
                    assert_eq!(info.suite, suite);
                    assert!(info.peer_certificate.is_some());
                    let mut out = [0u8; 32];
                    server
                        .export_keying_material(addr, &mut out, LABEL.as_bytes(), None)
                        .unwrap();
                    export = Some(hex(out));
                    who = Some(addr);
                    server.send_to(addr, b"s2c from m2msec\n").unwrap();
                }
                Some(ServerEvent::Data(_, d)) => {
                    assert_eq!(String::from_utf8_lossy(&d).trim_end(), "c2s from openssl");
                    server.close(who.unwrap()).unwrap();
                    break;
                }
                Some(ServerEvent::Failed(a, e)) => panic!("{a}: {e}\n{}", peer.log()),
                Some(_) => {}
                None => {
                    if who.is_some() && !sent_line && peer.log().contains("s2c from m2msec") {
                        sent_line = true;
                        peer.send_line("c2s from openssl");
                    }
                }
            }
        }
        let export = export.expect("connected");
        assert_eq!(peer.value_after("Keying material:"), export);
        let log = peer.finish();
        assert!(
            log.contains(&format!("Cipher is {}", ossl_name(suite))),
            "{log}"
        );
        assert!(log.contains("Verification: OK"), "{log}");
    }
}
