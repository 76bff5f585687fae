//! DTLS 1.2 interoperability with OpenSSL (`s_server -dtls1_2 -listen`, `s_client -dtls1_2`)
//! and GnuTLS (`gnutls-serv --udp`, `gnutls-cli --udp`) on 127.0.0.1: both directions, both
//! suites, cookies, data both ways, exporter values, a small MTU, and a lossy relay.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use m2msec::CipherSuite;
use m2msec_std::{connect_dtls, DtlsServer, DtlsStream, ServerEvent};

mod common;
use common::*;

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn dtls_priority(suite: CipherSuite) -> String {
    gnutls_priority(suite).replace("VERS-TLS1.2", "VERS-DTLS1.2")
}

fn openssl_dtls_server(suite: CipherSuite, port: u16, extra: &[&str]) -> Peer {
    let accept = format!("127.0.0.1:{port}");
    let mut args = vec![
        "openssl",
        "s_server",
        "-dtls1_2",
        "-listen",
        "-accept",
        &accept,
        "-nocert",
        "-psk",
        KEY_HEX,
        "-psk_identity",
        ID,
        "-psk_hint",
        "hint",
        "-naccept",
        "1",
        "-keymatexport",
        LABEL,
        "-keymatexportlen",
        "32",
    ];
    let cipher = openssl_cipher(suite);
    args.extend_from_slice(&["-cipher", &cipher]);
    args.extend_from_slice(extra);
    let p = Peer::spawn(&args);
    p.wait_for("ACCEPT");
    p
}

fn udp_to(port: u16) -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.connect(("127.0.0.1", port)).unwrap();
    s
}

fn client(suite: CipherSuite, port: u16, mtu: usize) -> DtlsStream {
    let mut c = connect_dtls(
        udp_to(port),
        client_config(suite, ID, &key()),
        Some("localhost"),
        mtu,
    )
    .unwrap();
    c.set_recv_timeout(Some(Duration::from_secs(15)));
    c
}

fn hex_export(out: [u8; 32]) -> String {
    out.iter().map(|b| format!("{b:02x}")).collect()
}

fn client_export(c: &DtlsStream) -> String {
    let mut out = [0u8; 32];
    c.export_keying_material(&mut out, LABEL.as_bytes(), None)
        .unwrap();
    hex_export(out)
}

fn recv_string(c: &mut DtlsStream) -> String {
    let mut buf = [0u8; 2048];
    let n = c.recv(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn our_client_with_openssl_dtls_server() {
    if !have("openssl") {
        return;
    }
    for &suite in CipherSuite::ALL {
        for mtu in [1232, 200] {
            let port = free_udp_port();
            let mut peer = openssl_dtls_server(suite, port, &[]);
            let mut c = client(suite, port, mtu);
            assert_eq!(c.info().suite, suite);
            assert_eq!(c.info().psk_identity_hint.as_deref(), Some(&b"hint"[..]));
            c.send(b"c2s from m2msec\n").unwrap();
            peer.wait_for("c2s from m2msec");
            peer.send_line("s2c from openssl");
            // s_server sends the line without its newline over DTLS.
            assert_eq!(recv_string(&mut c).trim_end(), "s2c from openssl");
            assert_eq!(peer.value_after("Keying material:"), client_export(&c));
            c.close().unwrap();
            peer.finish();
        }
    }
}

#[test]
fn our_client_with_gnutls_dtls_server() {
    if !have("gnutls-serv") {
        return;
    }
    let dir = tempdir("gs-dtls");
    let passwd = dir.join("psk.passwd");
    std::fs::write(&passwd, format!("{ID}:{KEY_HEX}\n")).unwrap();
    for &suite in CipherSuite::ALL {
        let port = free_udp_port();
        let peer = Peer::spawn(&[
            "gnutls-serv",
            "--udp",
            "--echo",
            "-p",
            &port.to_string(),
            &format!("--pskpasswd={}", passwd.display()),
            &format!("--priority={}", dtls_priority(suite)),
        ]);
        peer.wait_for("UDP Echo Server listening on IPv4");
        let mut c = client(suite, port, 1232);
        assert_eq!(c.info().suite, suite);
        c.send(b"echo me").unwrap();
        assert_eq!(recv_string(&mut c), "echo me");
        c.close().unwrap();
        peer.terminate();
    }
}

/// Runs our DTLS server until `peer` has connected, exchanged a line each way and closed.
/// Serves one peer; after the exchange, waits up to `close_wait` for the peer's answer to our
/// close_notify.
fn serve_one(
    server: &mut DtlsServer,
    peer: &mut Peer,
    their_line: &str,
    close_wait: Duration,
) -> (SocketAddr, String) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut who = None;
    let mut export = String::new();
    let mut got = false;
    let mut sent = false;
    while Instant::now() < deadline {
        match server.poll(Duration::from_millis(50)).unwrap() {
            Some(ServerEvent::Connected(addr, info)) => {
                assert_eq!(info.psk_identity, ID.as_bytes());
                who = Some(addr);
                let mut out = [0u8; 32];
                server
                    .export_keying_material(addr, &mut out, LABEL.as_bytes(), None)
                    .unwrap();
                export = hex_export(out);
                server.send_to(addr, b"s2c from m2msec\n").unwrap();
            }
            Some(ServerEvent::Data(_, d)) => {
                // OpenSSL sends the line without its newline over DTLS; GnuTLS with it.
                assert_eq!(
                    String::from_utf8_lossy(&d).trim_end(),
                    their_line.trim_end()
                );
                got = true;
                server.close(who.unwrap()).unwrap();
            }
            Some(ServerEvent::Closed(a)) => return (a, export),
            Some(ServerEvent::Failed(a, e)) => panic!("{a}: {e}\n{}", peer.log()),
            Some(e) => panic!("{e:?}"),
            None => {
                if who.is_some() && !sent && peer.log().contains("s2c from m2msec") {
                    sent = true;
                    peer.send_line(their_line.trim_end());
                }
            }
        }
        if got {
            // Wait for the peer's close_notify answer, or give up quietly; callers that need
            // the session gone assert it (and wait generously: CI machines are loaded).
            let until = Instant::now() + close_wait;
            while Instant::now() < until {
                if let Ok(Some(ServerEvent::Closed(a))) = server.poll(Duration::from_millis(200)) {
                    return (a, export);
                }
            }
            return (who.unwrap(), export);
        }
    }
    panic!("no connection; peer log:\n{}", peer.log());
}

#[test]
fn openssl_dtls_client_with_our_server() {
    if !have("openssl") {
        return;
    }
    for &suite in CipherSuite::ALL {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = sock.local_addr().unwrap().port();
        let mut server = DtlsServer::new(sock, server_config(suite), 1232, 16).unwrap();
        let connect = format!("127.0.0.1:{port}");
        let mut peer = Peer::spawn(&[
            "openssl",
            "s_client",
            "-dtls1_2",
            "-connect",
            &connect,
            "-psk_identity",
            ID,
            "-psk",
            KEY_HEX,
            "-cipher",
            &openssl_cipher(suite),
            "-keymatexport",
            LABEL,
            "-keymatexportlen",
            "32",
        ]);
        let (_, export) = serve_one(
            &mut server,
            &mut peer,
            "c2s from openssl\n",
            Duration::from_secs(10),
        );
        assert_eq!(server.hello_verifies(), 1, "the cookie exchange ran");
        assert_eq!(peer.value_after("Keying material:"), export);
        assert!(peer.log().contains("s2c from m2msec"));
        peer.finish();
        assert_eq!(server.session_count(), 0);
    }
}

#[test]
fn gnutls_dtls_client_with_our_server() {
    if !have("gnutls-cli") {
        return;
    }
    for &suite in CipherSuite::ALL {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = sock.local_addr().unwrap().port();
        let mut server = DtlsServer::new(sock, server_config(suite), 1232, 16).unwrap();
        let mut peer = Peer::spawn(&[
            "gnutls-cli",
            "--udp",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            &format!("--priority={}", dtls_priority(suite)),
            &format!("--pskusername={ID}"),
            &format!("--pskkey={KEY_HEX}"),
            &format!("--keymatexport={LABEL}"),
            "--keymatexportsize=32",
        ]);
        let (_, export) = serve_one(
            &mut server,
            &mut peer,
            "c2s from gnutls\n",
            Duration::from_secs(2),
        );
        assert_eq!(peer.value_after("Key material:"), export);
        peer.wait_for("(DTLS1.2");
        peer.finish();
    }
}

/// A wrong PSK from `openssl s_client -dtls1_2` and `gnutls-cli --udp`: our server cannot
/// authenticate the client's Finished and answers a fatal bad_record_mac at once (RFC 6347
/// 4.1.2.7 allows the alert), which both peers report, instead of leaving them to retransmit in
/// silence until a timeout.
#[test]
fn wrong_psk_from_openssl_and_gnutls_clients_ends_with_bad_record_mac() {
    for tool in ["openssl", "gnutls-cli"] {
        if !have(tool) {
            continue;
        }
        let suite = CipherSuite::PskAes128Ccm8;
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = sock.local_addr().unwrap().port();
        let mut server = DtlsServer::new(sock, server_config(suite), 1232, 16).unwrap();
        let connect = format!("127.0.0.1:{port}");
        let port_s = port.to_string();
        let priority = format!("--priority={}", dtls_priority(suite));
        let user = format!("--pskusername={ID}");
        let key = format!("--pskkey={WRONG_HEX}");
        let cipher = openssl_cipher(suite);
        let args: Vec<&str> = if tool == "openssl" {
            vec![
                "openssl",
                "s_client",
                "-dtls1_2",
                "-connect",
                &connect,
                "-psk_identity",
                ID,
                "-psk",
                WRONG_HEX,
                "-cipher",
                &cipher,
            ]
        } else {
            vec![
                "gnutls-cli",
                "--udp",
                "127.0.0.1",
                "-p",
                &port_s,
                &priority,
                &user,
                &key,
            ]
        };
        let peer = Peer::spawn(&args);
        let deadline = Instant::now() + Duration::from_secs(20);
        let error = loop {
            assert!(
                Instant::now() < deadline,
                "{tool}: no failure\n{}",
                peer.log()
            );
            match server.poll(Duration::from_millis(50)).unwrap() {
                Some(ServerEvent::Failed(_, e)) => break e,
                Some(ServerEvent::Connected(..)) => panic!("{tool}: connected with a wrong key"),
                _ => {}
            }
        };
        assert_eq!(error, m2msec::Error::BadRecordMac, "{tool}");
        // The peer heard the alert: OpenSSL prints "sslv3 alert bad record mac", GnuTLS
        // "Bad record MAC" (wait_for compares case-insensitively and fails after 15 s).
        peer.wait_for("bad record mac");
        peer.terminate();
    }
}

/// A UDP relay between our client and `openssl s_server -dtls1_2` that drops and reorders
/// datagrams with a fixed seed: the handshake still completes and data still flows.
#[test]
fn lossy_relay_to_openssl() {
    if !have("openssl") {
        return;
    }
    let seeds: Vec<u64> = match std::env::var("RELAY_SEED") {
        Ok(v) => vec![v.parse().unwrap()],
        Err(_) => vec![1, 2, 3],
    };
    for seed in seeds {
        let port = free_udp_port();
        let peer = openssl_dtls_server(CipherSuite::PskAes128Ccm8, port, &[]);
        let relay = UdpSocket::bind("127.0.0.1:0").unwrap();
        let relay_port = relay.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let stats = thread::spawn(move || run_relay(relay, port, seed, &stop2));
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.connect(("127.0.0.1", relay_port)).unwrap();
        let psk = m2msec::ClientPsk::new(ID.as_bytes(), m2msec::Psk::new(&key()).unwrap()).unwrap();
        let rt = m2msec::dtls::RetransmitConfig {
            initial: Duration::from_millis(250),
            max: Duration::from_secs(2),
            ..Default::default()
        };
        let cfg = Arc::new(
            m2msec::ClientConfig::builder(psk)
                .retransmit(rt)
                .build()
                .unwrap(),
        );
        let started = Instant::now();
        let mut c = connect_dtls(sock, cfg, None, 1232).unwrap();
        eprintln!(
            "seed {seed}: handshake through the relay in {:?}, {:?}",
            started.elapsed(),
            c.stats()
        );
        c.set_recv_timeout(Some(Duration::from_secs(30)));
        assert!(peer
            .wait_for("CIPHER is PSK-AES128-CCM8")
            .contains("CIPHER is"));
        // Data through the lossy path: send until one copy arrives.
        let deadline = Instant::now() + Duration::from_secs(20);
        while !peer.log().contains("through the relay") {
            assert!(Instant::now() < deadline, "no data through the relay");
            c.send(b"through the relay\n").unwrap();
            thread::sleep(Duration::from_millis(100));
        }
        stop.store(true, Ordering::Relaxed);
        let (dropped, forwarded) = stats.join().unwrap();
        assert!(
            dropped > 0 && forwarded > 0,
            "relay dropped {dropped}, forwarded {forwarded}"
        );
        let _ = c.close();
        peer.finish();
    }
}

/// Forwards datagrams between the first client and 127.0.0.1:`server_port`, dropping a third
/// of them (the first ClientHello always) and holding some back to reorder them.
fn run_relay(relay: UdpSocket, server_port: u16, seed: u64, stop: &AtomicBool) -> (u64, u64) {
    relay
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let server: SocketAddr = ([127, 0, 0, 1], server_port).into();
    let mut client: Option<SocketAddr> = None;
    let mut rng = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut held: Option<(SocketAddr, Vec<u8>)> = None;
    let (mut dropped, mut forwarded) = (0u64, 0u64);
    let mut buf = [0u8; 65536];
    let mut first = true;
    while !stop.load(Ordering::Relaxed) {
        let Ok((n, from)) = relay.recv_from(&mut buf) else {
            continue;
        };
        let to = if from == server {
            match client {
                Some(c) => c,
                None => continue,
            }
        } else {
            client = Some(from);
            server
        };
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let verbose = std::env::var("RELAY_TRACE").is_ok();
        let desc = |d: &[u8]| {
            let hs = if d.len() > 13 && d[0] == 22 && d[3..5] == [0, 0] {
                d[13]
            } else {
                0xff
            };
            format!(
                "len={} type={} epoch={} hs={hs}",
                d.len(),
                d[0],
                u16::from_be_bytes([d[3], d[4]])
            )
        };
        if first || rng % 3 == 0 {
            first = false;
            dropped += 1;
            if verbose {
                eprintln!(
                    "DROP {} {}",
                    if to == server { "c->s" } else { "s->c" },
                    desc(&buf[..n])
                );
            }
            continue;
        }
        if verbose {
            eprintln!(
                "PASS {} {}",
                if to == server { "c->s" } else { "s->c" },
                desc(&buf[..n])
            );
        }
        if rng % 5 == 1 && held.is_none() {
            held = Some((to, buf[..n].to_vec()));
            continue;
        }
        let _ = relay.send_to(&buf[..n], to);
        forwarded += 1;
        if let Some((t, d)) = held.take() {
            let _ = relay.send_to(&d, t);
            forwarded += 1;
        }
    }
    (dropped, forwarded)
}
