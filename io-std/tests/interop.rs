//! Interoperability with independent stacks: OpenSSL (`openssl s_server` / `s_client`) and
//! GnuTLS (`gnutls-serv` / `gnutls-cli`) on 127.0.0.1, both directions, both suites, data both
//! ways, exporter values compared, and the failure cases with their alerts.
//!
//! Under `CI=true` a missing peer binary fails the test; elsewhere the test prints `SKIP` and
//! passes.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use m2msec::config::PskTable;
use m2msec::enums::AlertDescription;
use m2msec::{CipherSuite, ClientConfig, ClientPsk, Error, Psk, ServerConfig};
use m2msec_std::TlsStream;

const ID: &str = "Client_identity";
const KEY_HEX: &str = "000102030405060708090a0b0c0d0e0f";
const WRONG_HEX: &str = "0f0e0d0c0b0a09080706050403020100";
const LABEL: &str = "EXPERIMENTAL-interop";

fn key() -> Vec<u8> {
    (0u8..16).collect()
}

fn have(bin: &str) -> bool {
    let ok = Command::new(bin)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
        || Command::new(bin)
            .arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
    if !ok {
        assert!(
            std::env::var("CI").is_err(),
            "{bin} is required under CI=true"
        );
        eprintln!("SKIP: {bin} not installed");
    }
    ok
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn openssl_cipher(suite: CipherSuite) -> String {
    match suite {
        CipherSuite::PskAes128Ccm => "PSK-AES128-CCM:@SECLEVEL=0".into(),
        _ => "PSK-AES128-CCM8:@SECLEVEL=0".into(),
    }
}

fn gnutls_priority(suite: CipherSuite) -> String {
    let c = match suite {
        CipherSuite::PskAes128Ccm => "AES-128-CCM",
        _ => "AES-128-CCM-8",
    };
    format!("NORMAL:-VERS-ALL:+VERS-TLS1.2:-KX-ALL:+PSK:-CIPHER-ALL:+{c}:-MAC-ALL:+AEAD")
}

/// A peer process with its combined output collected in the background.
struct Peer {
    child: Child,
    stdin: Option<ChildStdin>,
    log: Arc<Mutex<String>>,
    name: String,
}

impl Peer {
    fn spawn(args: &[&str]) -> Self {
        let mut child = Command::new("timeout")
            .arg("30")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn peer");
        let log = Arc::new(Mutex::new(String::new()));
        for mut r in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let log = log.clone();
            thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = r.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    log.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        Self {
            stdin: child.stdin.take(),
            child,
            log,
            name: args.join(" "),
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn send_line(&mut self, line: &str) {
        let s = self.stdin.as_mut().unwrap();
        s.write_all(line.as_bytes()).unwrap();
        s.write_all(b"\n").unwrap();
        s.flush().unwrap();
    }

    fn close_stdin(&mut self) {
        self.stdin.take();
    }

    /// Waits until the log contains `needle` (case-insensitively); panics after 15 s.
    fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let log = self.log();
            if log
                .to_ascii_lowercase()
                .contains(&needle.to_ascii_lowercase())
            {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "{}: waited for {needle:?}; log:\n{log}",
                self.name
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The hex value after `prefix` on some line, lower-cased.
    fn value_after(&self, prefix: &str) -> String {
        let log = self.wait_for(prefix);
        let line = log.lines().find(|l| l.contains(prefix)).unwrap();
        let v = line.split(prefix).nth(1).unwrap().trim();
        v.to_ascii_lowercase()
    }

    fn finish(mut self) -> String {
        self.close_stdin();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        thread::sleep(Duration::from_millis(50));
        self.log()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn connect_when_listening(port: u16) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(t) = TcpStream::connect(("127.0.0.1", port)) {
            t.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
            return t;
        }
        assert!(Instant::now() < deadline, "peer never listened on {port}");
        thread::sleep(Duration::from_millis(20));
    }
}

fn client_config(suite: CipherSuite, id: &str, key: &[u8]) -> Arc<ClientConfig> {
    let psk = ClientPsk::new(id.as_bytes(), Psk::new(key).unwrap()).unwrap();
    Arc::new(ClientConfig::builder(psk).suites(&[suite]).build().unwrap())
}

fn server_config(suite: CipherSuite) -> Arc<ServerConfig> {
    let mut t = PskTable::new();
    t.insert(ID.as_bytes(), Psk::new(&key()).unwrap()).unwrap();
    Arc::new(
        ServerConfig::builder(Box::new(t))
            .suites(&[suite])
            .identity_hint(Some(b"hint"))
            .build()
            .unwrap(),
    )
}

fn exporter(tls: &TlsStream<TcpStream>, context: Option<&[u8]>) -> String {
    let mut out = [0u8; 32];
    tls.export_keying_material(&mut out, LABEL.as_bytes(), context)
        .unwrap();
    out.iter().map(|b| format!("{b:02x}")).collect()
}

fn read_line(tls: &mut TlsStream<TcpStream>) -> String {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while !line.ends_with(b"\n") {
        assert_eq!(tls.read(&mut b).unwrap(), 1, "peer closed early");
        line.push(b[0]);
    }
    String::from_utf8(line).unwrap()
}

/// Accepts one connection on `listener` and runs our server handshake.
fn accept_one(
    listener: &TcpListener,
    suite: CipherSuite,
) -> Result<TlsStream<TcpStream>, m2msec_std::Error> {
    listener.set_nonblocking(false).unwrap();
    let (tcp, _) = listener.accept().unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    m2msec_std::accept(tcp, server_config(suite))
}

fn listen() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let p = l.local_addr().unwrap().port();
    (l, p)
}

fn openssl_server(suite: CipherSuite, port: u16, key_hex: &str) -> Peer {
    let accept = format!("127.0.0.1:{port}");
    Peer::spawn(&[
        "openssl",
        "s_server",
        "-accept",
        &accept,
        "-tls1_2",
        "-nocert",
        "-psk",
        key_hex,
        "-psk_identity",
        ID,
        "-psk_hint",
        "hint",
        "-cipher",
        &openssl_cipher(suite),
        "-no_ticket",
        "-naccept",
        "1",
        "-keymatexport",
        LABEL,
        "-keymatexportlen",
        "32",
    ])
}

fn gnutls_server(suite: CipherSuite, port: u16, dir: &std::path::Path) -> Peer {
    let passwd = dir.join("psk.passwd");
    std::fs::write(&passwd, format!("{ID}:{KEY_HEX}\n")).unwrap();
    Peer::spawn(&[
        "gnutls-serv",
        "--echo",
        "-p",
        &port.to_string(),
        &format!("--pskpasswd={}", passwd.display()),
        "--pskhint=hint",
        &format!("--priority={}", gnutls_priority(suite)),
        &format!("--keymatexport={LABEL}"),
        "--keymatexportsize=32",
    ])
}

fn tempdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("m2msec-interop-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

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
        peer.finish();
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
