//! ECDHE-ECDSA interoperability with GnuTLS 3.7 (`gnutls-serv`, `gnutls-cli`) and, for the
//! credential shapes `interop_ecdhe.rs` does not cover, OpenSSL 3.0 (`s_server`, `s_client`):
//! TLS_ECDHE_ECDSA_WITH_AES_128_CCM and _CCM_8 over TLS and DTLS, both directions, mutual
//! authentication, our side checking the peer with [`OneM2mVerifier`] (Certificate Name + Root of
//! Trust), data both ways, and the RFC 5705 exporter equal to the peer's `--keymatexport` /
//! `-keymatexport` wherever the peer prints one (`gnutls-serv --udp` prints none).
//!
//! Credentials (`io-std/tests/data/ecdhe/make.sh`):
//! * **self-signed**: `ss-server.crt` / `ss-client.crt`, each named by the `ni:///sha-256;..` hash
//!   of its own key (the Certificate Name and the Root of Trust are that hash);
//! * **chain**: root → intermediate → leaf; the server leaf's SAN carries `cse1.example.com`, the
//!   client leaf's SAN the AE-ID URI `//sp.example.com/CSE1/Cae1`; the Root of Trust is the
//!   root's key hash, the peers send leaf + intermediate + root, we send leaf + intermediate;
//! * **raw public keys** (RFC 7250, GnuTLS only: OpenSSL 3.0 does not implement RFC 7250): the
//!   self-signed entities' keys, `--rawpkfile` / `--rawpkkeyfile` and
//!   `+CTYPE-CLI-RAWPK:+CTYPE-SRV-RAWPK` on the GnuTLS side.
//!
//! Under `CI=true` a missing `gnutls-cli` / `gnutls-serv` / `openssl` fails the test; elsewhere
//! the test prints `SKIP`.

use std::io::{Read, Write};
use std::net::UdpSocket;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use m2msec::cert::{
    pem_decode, CertifiedKey, Credential, OneM2mVerifier, PeerCertificateInfo, RootOfTrust,
    RotHash, SigningKey,
};
use m2msec::{CertificateType, CipherSuite, ClientAuth, ClientConfig, ServerConfig};
use m2msec_std::{connect_dtls, DtlsServer, DtlsStream, ServerEvent};

mod common;
use common::*;

/// The credential shape both ends use in one case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Creds {
    SelfSigned,
    Chain,
    Rpk,
}

const X509: [Creds; 2] = [Creds::SelfSigned, Creds::Chain];
const ALL_CREDS: [Creds; 3] = [Creds::SelfSigned, Creds::Chain, Creds::Rpk];

/// The server leaf's Certificate Name (a SAN dNSName) and the client leaf's (a SAN URI).
const SERVER_NAME: &str = "cse1.example.com";
const CLIENT_NAME: &str = "//sp.example.com/CSE1/Cae1";

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/ecdhe")
        .join(name)
}

fn path(name: &str) -> String {
    data(name).display().to_string()
}

fn text(name: &str) -> String {
    std::fs::read_to_string(data(name)).unwrap()
}

fn certs(names: &[&str]) -> Vec<Vec<u8>> {
    names
        .iter()
        .flat_map(|n| pem_decode("CERTIFICATE", &text(n)).unwrap())
        .collect()
}

fn signing_key(name: &str) -> SigningKey {
    let der = pem_decode("PRIVATE KEY", &text(name)).unwrap();
    SigningKey::from_pkcs8_der(&der[0]).unwrap()
}

fn rot_of(cert: &str) -> RootOfTrust {
    let spki = Credential::X509(certs(&[cert])).leaf_spki().unwrap();
    RootOfTrust::of_spki(&spki, RotHash::Sha256)
}

/// "server" or "client": which entity's credential.
fn own_key(creds: Creds, who: &str) -> CertifiedKey {
    match creds {
        Creds::Chain => CertifiedKey::new(
            signing_key(&format!("{who}.key")),
            Credential::X509(certs(&[&format!("{who}.crt"), "int.crt"])),
        )
        .unwrap(),
        Creds::SelfSigned => CertifiedKey::new(
            signing_key(&format!("ss-{who}.key")),
            Credential::X509(certs(&[&format!("ss-{who}.crt")])),
        )
        .unwrap(),
        Creds::Rpk => CertifiedKey::raw(signing_key(&format!("ss-{who}.key"))),
    }
}

/// The verifier of the other entity `who` ("server" or "client").
fn verifier_for(creds: Creds, who: &str) -> Arc<OneM2mVerifier> {
    Arc::new(match creds {
        Creds::Chain => OneM2mVerifier::new(
            if who == "server" {
                SERVER_NAME
            } else {
                CLIENT_NAME
            },
            rot_of("root.crt"),
        )
        .accept_raw_public_keys(false),
        Creds::SelfSigned | Creds::Rpk => {
            let ni = text(&format!("ss-{who}.ni.txt")).trim().to_string();
            let rot = rot_of(&format!("ss-{who}.crt"));
            assert_eq!(ni.parse::<RootOfTrust>(), Ok(rot), "ni.txt matches the key");
            OneM2mVerifier::new(ni, rot).accept_raw_public_keys(creds == Creds::Rpk)
        }
    })
}

fn our_client_config(suite: CipherSuite, creds: Creds) -> Arc<ClientConfig> {
    let mut b = ClientConfig::builder_with_verifier(verifier_for(creds, "server"))
        .suites(&[suite])
        .certificate(own_key(creds, "client"));
    if creds == Creds::Rpk {
        b = b.server_certificate_types(&[CertificateType::RawPublicKey]);
    }
    Arc::new(b.build().unwrap())
}

fn our_server_config(suite: CipherSuite, creds: Creds) -> Arc<ServerConfig> {
    let mut b = ServerConfig::builder_with_certificate(own_key(creds, "server"))
        .suites(&[suite])
        .client_auth(ClientAuth::Required)
        .verifier(verifier_for(creds, "client"));
    if creds == Creds::Rpk {
        b = b.client_certificate_types(&[CertificateType::RawPublicKey]);
    }
    Arc::new(b.build().unwrap())
}

/// What our side must have learnt about the peer.
fn check_peer(info: Option<&PeerCertificateInfo>, creds: Creds, peer: &str) {
    let info = info.expect("peer authenticated");
    match creds {
        Creds::Rpk => assert!(info.raw_public_key, "{info:?}"),
        Creds::SelfSigned => {
            assert!(!info.raw_public_key);
            assert_eq!(info.chain_len, 1, "{info:?}");
            let ni = text(&format!("ss-{peer}.ni.txt"));
            assert_eq!(info.matched_name.as_deref(), Some(ni.trim()));
        }
        Creds::Chain => {
            assert!(!info.raw_public_key);
            assert_eq!(info.chain_len, 3, "leaf, intermediate, root: {info:?}");
            let want = if peer == "server" {
                SERVER_NAME
            } else {
                CLIENT_NAME
            };
            assert_eq!(info.matched_name.as_deref(), Some(want));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// GnuTLS

/// The priority string: TLS 1.2 and DTLS 1.2 both enabled (one string serves `--udp` too).
/// `+SIGN-ECDSA-SECP256R1-SHA256` is a TLS 1.3 name: with TLS 1.2 only it leaves no usable
/// signature algorithm (`No or insufficient priorities were set`), so it is `SIGN-ECDSA-SHA256`.
fn gnutls_priority(suite: CipherSuite, creds: Creds) -> String {
    let cipher = match suite {
        CipherSuite::EcdheEcdsaAes128Ccm => "AES-128-CCM",
        _ => "AES-128-CCM-8",
    };
    let mut p = format!(
        "NORMAL:-VERS-ALL:+VERS-TLS1.2:+VERS-DTLS1.2:-CIPHER-ALL:+{cipher}:-MAC-ALL:+AEAD:\
         -KX-ALL:+ECDHE-ECDSA:-SIGN-ALL:+SIGN-ECDSA-SHA256:-GROUP-ALL:+GROUP-SECP256R1"
    );
    if creds == Creds::Rpk {
        p.push_str(":-CTYPE-ALL:+CTYPE-CLI-RAWPK:+CTYPE-SRV-RAWPK");
    }
    p
}

/// The name GnuTLS prints in `- Description: (TLS1.2-..)-(ECDHE-SECP256R1)-(ECDSA-SHA256)-(..)`.
fn gnutls_cipher_tag(suite: CipherSuite) -> &'static str {
    match suite {
        CipherSuite::EcdheEcdsaAes128Ccm => "-(AES-128-CCM)",
        _ => "-(AES-128-CCM-8)",
    }
}

fn gnutls_creds(creds: Creds, who: &str, args: &mut Vec<String>) {
    let peer = if who == "server" { "client" } else { "server" };
    match creds {
        Creds::Chain => {
            args.push(format!(
                "--x509certfile={}",
                path(&format!("{who}-chain.crt"))
            ));
            args.push(format!("--x509keyfile={}", path(&format!("{who}.key"))));
            args.push(format!("--x509cafile={}", path("root.crt")));
        }
        Creds::SelfSigned => {
            args.push(format!("--x509certfile={}", path(&format!("ss-{who}.crt"))));
            args.push(format!("--x509keyfile={}", path(&format!("ss-{who}.key"))));
            args.push(format!("--x509cafile={}", path(&format!("ss-{peer}.crt"))));
        }
        Creds::Rpk => {
            args.push(format!("--rawpkfile={}", path(&format!("ss-{who}.pub"))));
            args.push(format!("--rawpkkeyfile={}", path(&format!("ss-{who}.key"))));
        }
    }
}

fn gnutls_server(suite: CipherSuite, creds: Creds, port: u16, dtls: bool) -> Peer {
    let mut args: Vec<String> = vec!["gnutls-serv".into(), "--echo".into()];
    if dtls {
        args.push("--udp".into());
    }
    args.extend([
        "-p".into(),
        port.to_string(),
        format!("--priority={}", gnutls_priority(suite, creds)),
        "--require-client-cert".into(),
    ]);
    if creds != Creds::Rpk {
        args.push("--verify-client-cert".into());
    }
    gnutls_creds(creds, "server", &mut args);
    if let Ok(level) = std::env::var("GNUTLS_SERV_DEBUG") {
        args.push(format!("-d{level}"));
    }
    args.extend([
        format!("--keymatexport={LABEL}"),
        "--keymatexportsize=32".into(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let p = Peer::spawn(&args);
    p.wait_for("listening on IPv4");
    p
}

fn gnutls_client(suite: CipherSuite, creds: Creds, port: u16, dtls: bool) -> Peer {
    let mut args: Vec<String> = vec!["gnutls-cli".into()];
    if dtls {
        args.push("--udp".into());
    }
    args.extend([
        "127.0.0.1".into(),
        "-p".into(),
        port.to_string(),
        format!("--priority={}", gnutls_priority(suite, creds)),
    ]);
    if creds == Creds::Rpk {
        // GnuTLS has no PKI check for a raw public key (gnutls-cli: "Could not verify
        // certificate (err: The request is invalid.)"); the key is printed and compared instead.
        args.extend(["--insecure".into(), "--print-cert".into()]);
    } else {
        args.push("--verify-hostname=localhost".into());
    }
    gnutls_creds(creds, "client", &mut args);
    args.extend([
        format!("--keymatexport={LABEL}"),
        "--keymatexportsize=32".into(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Peer::spawn(&args)
}

/// The base64 body of a PEM SubjectPublicKeyInfo file, as one string (GnuTLS prints the peer's
/// raw public key in this form).
fn pem_body(name: &str) -> String {
    text(name)
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect()
}

/// Whether a GnuTLS log shows the raw public key of `file` (PEM lines joined).
fn log_shows_key(log: &str, file: &str) -> bool {
    let joined: String = log.lines().map(str::trim).collect();
    joined.contains(&pem_body(file))
}

// ---------------------------------------------------------------------------------------------
// OpenSSL (X.509 only: OpenSSL 3.0 has no RFC 7250 raw public keys)

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

fn ossl_creds(creds: Creds, who: &str, args: &mut Vec<String>) {
    let peer = if who == "server" { "client" } else { "server" };
    match creds {
        Creds::Chain => args.extend([
            "-cert".into(),
            path(&format!("{who}.crt")),
            "-key".into(),
            path(&format!("{who}.key")),
            "-cert_chain".into(),
            path("int-root.crt"),
            "-CAfile".into(),
            path("root.crt"),
        ]),
        Creds::SelfSigned => args.extend([
            "-cert".into(),
            path(&format!("ss-{who}.crt")),
            "-key".into(),
            path(&format!("ss-{who}.key")),
            "-CAfile".into(),
            path(&format!("ss-{peer}.crt")),
        ]),
        Creds::Rpk => unreachable!("OpenSSL 3.0 has no RFC 7250"),
    }
}

fn openssl_server(suite: CipherSuite, creds: Creds, port: u16, dtls: bool) -> Peer {
    let mut args: Vec<String> = vec!["openssl".into(), "s_server".into()];
    if dtls {
        args.extend(["-dtls1_2".into(), "-listen".into()]);
    } else {
        args.extend(["-tls1_2".into(), "-no_ticket".into()]);
    }
    args.extend(["-accept".into(), format!("127.0.0.1:{port}")]);
    ossl_creds(creds, "server", &mut args);
    args.extend(
        [
            "-Verify",
            "2",
            "-verify_return_error",
            "-cipher",
            ossl_cipher(suite),
            "-naccept",
            "1",
            "-keymatexport",
            LABEL,
            "-keymatexportlen",
            "32",
        ]
        .map(String::from),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let p = Peer::spawn(&args);
    p.wait_for("ACCEPT");
    p
}

fn openssl_client(suite: CipherSuite, creds: Creds, port: u16, dtls: bool) -> Peer {
    let mut args: Vec<String> = vec!["openssl".into(), "s_client".into()];
    if dtls {
        args.push("-dtls1_2".into());
    } else {
        args.extend(["-tls1_2".into(), "-no_ticket".into()]);
    }
    args.extend(["-connect".into(), format!("127.0.0.1:{port}")]);
    ossl_creds(creds, "client", &mut args);
    args.extend(
        [
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
        ]
        .map(String::from),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Peer::spawn(&args)
}

/// The subject OpenSSL's verify callback prints for the client leaf (`depth=0 CN = ..`).
/// The client certificate's subject as `s_server` prints it on stdout (the `depth=` lines go
/// to stderr and may interleave with stdout output mid-line).
fn ossl_client_cn(creds: Creds) -> &'static str {
    match creds {
        Creds::Chain => "subject=CN = Cae1",
        _ => "subject=CN = ss-client",
    }
}

// ---------------------------------------------------------------------------------------------
// Drivers

fn hex(out: [u8; 32]) -> String {
    out.iter().map(|b| format!("{b:02x}")).collect()
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn dtls_client(suite: CipherSuite, creds: Creds, port: u16, mtu: usize) -> DtlsStream {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.connect(("127.0.0.1", port)).unwrap();
    let mut c = connect_dtls(
        sock,
        our_client_config(suite, creds),
        Some("localhost"),
        mtu,
    )
    .unwrap_or_else(|e| panic!("{suite:?} {creds:?} mtu {mtu}: {e}"));
    c.set_recv_timeout(Some(Duration::from_secs(15)));
    c
}

fn recv_string(c: &mut DtlsStream) -> String {
    let mut buf = [0u8; 2048];
    let n = c.recv(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Runs our DTLS server until `peer` has connected and one line went each way; returns our
/// exporter value.
fn serve_dtls(server: &mut DtlsServer, peer: &mut Peer, creds: Creds, their_line: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut export = None;
    let mut who = None;
    let mut sent_line = false;
    while Instant::now() < deadline {
        match server.poll(Duration::from_millis(50)).unwrap() {
            Some(ServerEvent::Connected(addr, info)) => {
                check_peer(info.peer_certificate.as_ref(), creds, "client");
                let mut out = [0u8; 32];
                server
                    .export_keying_material(addr, &mut out, LABEL.as_bytes(), None)
                    .unwrap();
                export = Some(hex(out));
                who = Some(addr);
                server.send_to(addr, b"s2c from m2msec\n").unwrap();
            }
            Some(ServerEvent::Data(_, d)) => {
                assert_eq!(String::from_utf8_lossy(&d).trim_end(), their_line);
                server.close(who.unwrap()).unwrap();
                return export.expect("connected");
            }
            Some(ServerEvent::Failed(a, e)) => panic!("{a}: {e}\n{}", peer.log()),
            Some(_) => {}
            None => {
                if who.is_some() && !sent_line && peer.log().contains("s2c from m2msec") {
                    sent_line = true;
                    peer.send_line(their_line);
                }
            }
        }
    }
    panic!("no connection or no data; peer log:\n{}", peer.log());
}

// ---------------------------------------------------------------------------------------------
// GnuTLS tests

#[test]
fn our_client_with_gnutls_server_tls() {
    if !have("gnutls-serv") {
        return;
    }
    for &suite in CipherSuite::ECDHE_ECDSA {
        for creds in ALL_CREDS {
            let port = free_port();
            let peer = gnutls_server(suite, creds, port, false);
            let mut tls = m2msec_std::connect(
                connect_when_listening(port),
                our_client_config(suite, creds),
                Some("localhost"),
            )
            .unwrap_or_else(|e| panic!("{suite:?} {creds:?}: {e}\n{}", peer.log()));
            assert_eq!(tls.info().suite, suite);
            assert!(tls.info().extended_master_secret);
            check_peer(tls.info().peer_certificate.as_ref(), creds, "server");
            tls.write_all(b"c2s from m2msec\n").unwrap();
            assert_eq!(read_line(&mut tls), "c2s from m2msec\n", "echoed");
            assert_eq!(peer.value_after("Key material:"), exporter(&tls, None));
            tls.close().unwrap();
            let log = peer.terminate();
            assert!(log.contains(gnutls_cipher_tag(suite)), "{log}");
            if creds == Creds::Rpk {
                assert!(log.contains("(TLS1.2-Raw Public Key)"), "{log}");
                assert!(log_shows_key(&log, "ss-client.pub"), "{log}");
            } else {
                assert!(
                    log.contains("The certificate is trusted"),
                    "gnutls-serv verified our client certificate: {log}"
                );
            }
        }
    }
}

#[test]
fn gnutls_client_with_our_server_tls() {
    if !have("gnutls-cli") {
        return;
    }
    for &suite in CipherSuite::ECDHE_ECDSA {
        for creds in ALL_CREDS {
            let (listener, port) = listen();
            let mut peer = gnutls_client(suite, creds, port, false);
            let (tcp, _) = listener.accept().unwrap();
            tcp.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
            let mut tls = m2msec_std::accept(tcp, our_server_config(suite, creds))
                .unwrap_or_else(|e| panic!("{suite:?} {creds:?}: {e}\n{}", peer.log()));
            assert_eq!(tls.info().suite, suite);
            check_peer(tls.info().peer_certificate.as_ref(), creds, "client");
            tls.write_all(b"s2c from m2msec\n").unwrap();
            peer.wait_for("s2c from m2msec");
            peer.send_line("c2s from gnutls");
            assert_eq!(read_line(&mut tls), "c2s from gnutls\n");
            assert_eq!(peer.value_after("Key material:"), exporter(&tls, None));
            peer.close_stdin();
            let mut rest = Vec::new();
            tls.read_to_end(&mut rest)
                .expect("clean close_notify from gnutls-cli");
            let log = peer.finish();
            assert!(log.contains(gnutls_cipher_tag(suite)), "{log}");
            assert!(log.contains("(TLS1.2-"), "{log}");
            if creds == Creds::Rpk {
                assert!(log.contains("(TLS1.2-Raw Public Key)"), "{log}");
                assert!(log_shows_key(&log, "ss-server.pub"), "{log}");
            } else {
                assert!(log.contains("The certificate is trusted"), "{log}");
            }
        }
    }
}

#[test]
fn our_client_with_gnutls_server_dtls() {
    if !have("gnutls-serv") {
        return;
    }
    for &suite in CipherSuite::ECDHE_ECDSA {
        for creds in ALL_CREDS {
            for mtu in [1232, 300] {
                let port = free_udp_port();
                let peer = gnutls_server(suite, creds, port, true);
                let mut c = dtls_client(suite, creds, port, mtu);
                assert_eq!(c.info().suite, suite);
                check_peer(c.info().peer_certificate.as_ref(), creds, "server");
                c.send(b"c2s from m2msec\n").unwrap();
                assert_eq!(recv_string(&mut c), "c2s from m2msec\n", "echoed");
                // gnutls-serv --udp prints no session information and no exporter value.
                c.close().unwrap();
                let log = peer.terminate();
                assert!(log.contains("c2s from m2msec"), "{log}");
            }
        }
    }
}

#[test]
fn gnutls_client_with_our_server_dtls() {
    if !have("gnutls-cli") {
        return;
    }
    for &suite in CipherSuite::ECDHE_ECDSA {
        for creds in ALL_CREDS {
            let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
            let port = sock.local_addr().unwrap().port();
            let mut server =
                DtlsServer::new(sock, our_server_config(suite, creds), 1232, 4).unwrap();
            let mut peer = gnutls_client(suite, creds, port, true);
            let export = serve_dtls(&mut server, &mut peer, creds, "c2s from gnutls");
            assert_eq!(peer.value_after("Key material:"), export);
            let log = peer.finish();
            assert!(log.contains(gnutls_cipher_tag(suite)), "{log}");
            assert!(log.contains("(DTLS1.2-"), "{log}");
            if creds == Creds::Rpk {
                assert!(log.contains("(DTLS1.2-Raw Public Key)"), "{log}");
                assert!(log_shows_key(&log, "ss-server.pub"), "{log}");
            } else {
                assert!(log.contains("The certificate is trusted"), "{log}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// OpenSSL tests: self-signed and root → intermediate → leaf, both directions, TLS and DTLS

#[test]
fn our_client_with_openssl_server_certs_tls_and_dtls() {
    if !have("openssl") {
        return;
    }
    for dtls in [false, true] {
        for &suite in CipherSuite::ECDHE_ECDSA {
            for creds in X509 {
                let port = if dtls { free_udp_port() } else { free_port() };
                let mut peer = openssl_server(suite, creds, port, dtls);
                let export = if dtls {
                    let mut c = dtls_client(suite, creds, port, 1232);
                    assert_eq!(c.info().suite, suite);
                    check_peer(c.info().peer_certificate.as_ref(), creds, "server");
                    c.send(b"c2s from m2msec\n").unwrap();
                    peer.wait_for("c2s from m2msec");
                    peer.send_line("s2c from openssl");
                    assert_eq!(recv_string(&mut c).trim_end(), "s2c from openssl");
                    let mut out = [0u8; 32];
                    c.export_keying_material(&mut out, LABEL.as_bytes(), None)
                        .unwrap();
                    let export = hex(out);
                    assert_eq!(peer.value_after("Keying material:"), export);
                    c.close().unwrap();
                    export
                } else {
                    let mut tls = m2msec_std::connect(
                        connect_when_listening(port),
                        our_client_config(suite, creds),
                        Some("localhost"),
                    )
                    .unwrap_or_else(|e| panic!("{suite:?} {creds:?}: {e}\n{}", peer.log()));
                    assert_eq!(tls.info().suite, suite);
                    check_peer(tls.info().peer_certificate.as_ref(), creds, "server");
                    tls.write_all(b"c2s from m2msec\n").unwrap();
                    peer.wait_for("c2s from m2msec");
                    peer.send_line("s2c from openssl");
                    assert_eq!(read_line(&mut tls), "s2c from openssl\n");
                    let export = exporter(&tls, None);
                    assert_eq!(peer.value_after("Keying material:"), export);
                    tls.close().unwrap();
                    export
                };
                let log = peer.finish();
                assert_eq!(export.len(), 64);
                assert!(
                    log.contains(&format!("CIPHER is {}", ossl_name(suite))),
                    "{log}"
                );
                assert!(log.contains(ossl_client_cn(creds)), "{log}");
                assert!(log.contains("verify return:1"), "{log}");
            }
        }
    }
}

#[test]
fn openssl_client_with_our_server_certs_tls_and_dtls() {
    if !have("openssl") {
        return;
    }
    for dtls in [false, true] {
        for &suite in CipherSuite::ECDHE_ECDSA {
            for creds in X509 {
                let mut peer;
                if dtls {
                    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
                    let port = sock.local_addr().unwrap().port();
                    let mut server =
                        DtlsServer::new(sock, our_server_config(suite, creds), 1232, 4).unwrap();
                    peer = openssl_client(suite, creds, port, true);
                    let export = serve_dtls(&mut server, &mut peer, creds, "c2s from openssl");
                    assert_eq!(peer.value_after("Keying material:"), export);
                } else {
                    let (listener, port) = listen();
                    peer = openssl_client(suite, creds, port, false);
                    let (tcp, _) = listener.accept().unwrap();
                    tcp.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
                    let mut tls = m2msec_std::accept(tcp, our_server_config(suite, creds))
                        .unwrap_or_else(|e| panic!("{suite:?} {creds:?}: {e}\n{}", peer.log()));
                    assert_eq!(tls.info().suite, suite);
                    assert_eq!(tls.info().server_name.as_deref(), Some("localhost"));
                    check_peer(tls.info().peer_certificate.as_ref(), creds, "client");
                    tls.write_all(b"s2c from m2msec\n").unwrap();
                    peer.wait_for("s2c from m2msec");
                    peer.send_line("c2s from openssl");
                    assert_eq!(read_line(&mut tls), "c2s from openssl\n");
                    assert_eq!(peer.value_after("Keying material:"), exporter(&tls, None));
                    peer.close_stdin();
                    let mut rest = Vec::new();
                    let _ = tls.read_to_end(&mut rest);
                }
                let log = peer.finish();
                assert!(
                    log.contains(&format!("Cipher is {}", ossl_name(suite))),
                    "{log}"
                );
                assert!(log.contains("Verification: OK"), "{log}");
                let depth = if creds == Creds::Chain {
                    "depth=2 CN = m2msec Interop Root"
                } else {
                    "depth=0 CN = ss-server"
                };
                assert!(log.contains(depth), "{log}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Refusals

/// Our client expecting another Certificate Name refuses gnutls-serv's chain (the leaf's SAN
/// does not carry it), and gnutls-serv sees the alert.
#[test]
fn our_client_refuses_gnutls_server_with_other_name() {
    if !have("gnutls-serv") {
        return;
    }
    let suite = CipherSuite::EcdheEcdsaAes128Ccm8;
    let port = free_port();
    let peer = gnutls_server(suite, Creds::Chain, port, false);
    let verifier = Arc::new(OneM2mVerifier::new("cse2.example.com", rot_of("root.crt")));
    let cfg = ClientConfig::builder_with_verifier(verifier)
        .suites(&[suite])
        .certificate(own_key(Creds::Chain, "client"))
        .build()
        .unwrap();
    let err = m2msec_std::connect(connect_when_listening(port), Arc::new(cfg), None)
        .expect_err("refused");
    assert!(
        format!("{err}").contains("Certificate Name is not in the certificate"),
        "{err}"
    );
    let log = peer.terminate();
    // gnutls-serv, waiting for the client's Certificate, reports our fatal bad_certificate alert
    // (`-d5` shows `Alert[2|42] - Certificate is bad - was received`) as "No certificate was found".
    assert!(log.contains("Error in handshake"), "{log}");
}

/// Our server requiring client authentication refuses gnutls-cli without a certificate.
#[test]
fn our_server_refuses_gnutls_client_without_certificate() {
    if !have("gnutls-cli") {
        return;
    }
    let suite = CipherSuite::EcdheEcdsaAes128Ccm8;
    let (listener, port) = listen();
    let peer = Peer::spawn(&[
        "gnutls-cli",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        &format!("--priority={}", gnutls_priority(suite, Creds::Chain)),
        &format!("--x509cafile={}", path("root.crt")),
        "--verify-hostname=localhost",
    ]);
    let (tcp, _) = listener.accept().unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let err = m2msec_std::accept(tcp, our_server_config(suite, Creds::Chain)).expect_err("refused");
    let log = peer.finish();
    assert!(
        log.contains("Fatal error") || log.contains("alert"),
        "{err}\n{log}"
    );
}
