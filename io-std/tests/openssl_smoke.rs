//! A quick check of the blocking adapter against `openssl s_server` (skips when absent).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use m2msec::{CipherSuite, ClientConfig, ClientPsk, Psk};

#[test]
fn client_against_openssl_s_server() {
    if Command::new("openssl").arg("version").output().is_err() {
        assert!(std::env::var("CI").is_err(), "openssl is required under CI");
        eprintln!("SKIP: openssl not installed");
        return;
    }
    for (suite, cipher) in [
        (CipherSuite::PskAes128Ccm, "PSK-AES128-CCM"),
        (CipherSuite::PskAes128Ccm8, "PSK-AES128-CCM8"),
    ] {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let mut srv = Command::new("timeout")
            .args([
                "20",
                "openssl",
                "s_server",
                "-accept",
                &format!("127.0.0.1:{port}"),
                "-tls1_2",
                "-nocert",
            ])
            .args([
                "-psk",
                "000102030405060708090a0b0c0d0e0f",
                "-psk_identity",
                "Client_identity",
                "-psk_hint",
                "hint",
            ])
            .args([
                "-cipher",
                &format!("{cipher}:@SECLEVEL=0"),
                "-no_ticket",
                "-naccept",
                "1",
            ])
            .args([
                "-keymatexport",
                "EXPERIMENTAL-interop",
                "-keymatexportlen",
                "32",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut tcp = None;
        for _ in 0..100 {
            if let Ok(t) = TcpStream::connect(("127.0.0.1", port)) {
                tcp = Some(t);
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let tcp = tcp.expect("s_server listens");
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let psk = ClientPsk::new(
            b"Client_identity",
            Psk::new(&(0u8..16).collect::<Vec<_>>()).unwrap(),
        )
        .unwrap();
        let cfg = Arc::new(ClientConfig::builder(psk).suites(&[suite]).build().unwrap());
        let mut tls = m2msec_std::connect(tcp, cfg, Some("localhost")).unwrap();
        assert_eq!(tls.info().suite, suite);
        let mut ours = [0u8; 32];
        tls.export_keying_material(&mut ours, b"EXPERIMENTAL-interop", None)
            .unwrap();
        tls.write_all(b"hello from m2msec\n").unwrap();
        let mut stdin = srv.stdin.take().unwrap();
        stdin.write_all(b"hello from openssl\n").unwrap();
        stdin.flush().unwrap();
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while !line.ends_with(b"\n") {
            assert_eq!(tls.read(&mut byte).unwrap(), 1);
            line.push(byte[0]);
        }
        assert_eq!(line, b"hello from openssl\n");
        tls.close().unwrap();
        drop(stdin);
        let out = BufReader::new(srv.stdout.take().unwrap());
        let mut material = None;
        let mut got_line = false;
        for l in out.lines() {
            let l = l.unwrap();
            if let Some(v) = l.trim().strip_prefix("Keying material: ") {
                material = Some(v.to_ascii_lowercase());
            }
            got_line |= l.contains("hello from m2msec");
        }
        let _ = srv.wait();
        let hex: String = ours.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            material.as_deref(),
            Some(hex.as_str()),
            "exporter equals OpenSSL's"
        );
        assert!(got_line, "s_server printed our data");
    }
}
