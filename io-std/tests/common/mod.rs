//! The peer-process harness shared by the interop tests.
#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use m2msec::config::PskTable;
use m2msec::{CipherSuite, ClientConfig, ClientPsk, Psk, ServerConfig};
use m2msec_std::TlsStream;

pub const ID: &str = "Client_identity";
pub const KEY_HEX: &str = "000102030405060708090a0b0c0d0e0f";
pub const WRONG_HEX: &str = "0f0e0d0c0b0a09080706050403020100";
pub const LABEL: &str = "EXPERIMENTAL-interop";

pub fn key() -> Vec<u8> {
    (0u8..16).collect()
}

pub fn have(bin: &str) -> bool {
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

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn openssl_cipher(suite: CipherSuite) -> String {
    match suite {
        CipherSuite::PskAes128Ccm => "PSK-AES128-CCM:@SECLEVEL=0".into(),
        _ => "PSK-AES128-CCM8:@SECLEVEL=0".into(),
    }
}

pub fn gnutls_priority(suite: CipherSuite) -> String {
    let c = match suite {
        CipherSuite::PskAes128Ccm => "AES-128-CCM",
        _ => "AES-128-CCM-8",
    };
    format!("NORMAL:-VERS-ALL:+VERS-TLS1.2:-KX-ALL:+PSK:-CIPHER-ALL:+{c}:-MAC-ALL:+AEAD")
}

/// A peer process with its combined output collected in the background.
pub struct Peer {
    child: Child,
    stdin: Option<ChildStdin>,
    log: Arc<Mutex<String>>,
    name: String,
}

impl Peer {
    pub fn spawn(args: &[&str]) -> Self {
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

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn send_line(&mut self, line: &str) {
        let s = self.stdin.as_mut().unwrap();
        s.write_all(line.as_bytes()).unwrap();
        s.write_all(b"\n").unwrap();
        s.flush().unwrap();
    }

    pub fn close_stdin(&mut self) {
        self.stdin.take();
    }

    /// Waits until the log contains `needle` (case-insensitively); panics after 15 s.
    pub fn wait_for(&self, needle: &str) -> String {
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
    pub fn value_after(&self, prefix: &str) -> String {
        let log = self.wait_for(prefix);
        let line = log.lines().find(|l| l.contains(prefix)).unwrap();
        let v = line.split(prefix).nth(1).unwrap().trim();
        v.to_ascii_lowercase()
    }

    pub fn finish(mut self) -> String {
        self.close_stdin();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
        self.stop();
        thread::sleep(Duration::from_millis(50));
        self.log()
    }

    /// Ends a peer that never exits by itself (gnutls-serv) at once; returns its log.
    pub fn terminate(mut self) -> String {
        self.stop();
        thread::sleep(Duration::from_millis(50));
        self.log()
    }

    /// Ends the peer: SIGTERM to `timeout`, which passes it on to the peer (a SIGKILL would
    /// orphan the peer), then SIGKILL if it lingers.
    fn stop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(self.child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                thread::sleep(Duration::from_millis(10));
            }
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn connect_when_listening(port: u16) -> TcpStream {
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

pub fn client_config(suite: CipherSuite, id: &str, key: &[u8]) -> Arc<ClientConfig> {
    let psk = ClientPsk::new(id.as_bytes(), Psk::new(key).unwrap()).unwrap();
    Arc::new(ClientConfig::builder(psk).suites(&[suite]).build().unwrap())
}

pub fn server_config(suite: CipherSuite) -> Arc<ServerConfig> {
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

pub fn exporter(tls: &TlsStream<TcpStream>, context: Option<&[u8]>) -> String {
    let mut out = [0u8; 32];
    tls.export_keying_material(&mut out, LABEL.as_bytes(), context)
        .unwrap();
    out.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn read_line(tls: &mut TlsStream<TcpStream>) -> String {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while !line.ends_with(b"\n") {
        assert_eq!(tls.read(&mut b).unwrap(), 1, "peer closed early");
        line.push(b[0]);
    }
    String::from_utf8(line).unwrap()
}

/// Accepts one connection on `listener` and runs our server handshake.
pub fn accept_one(
    listener: &TcpListener,
    suite: CipherSuite,
) -> Result<TlsStream<TcpStream>, m2msec_std::Error> {
    listener.set_nonblocking(false).unwrap();
    let (tcp, _) = listener.accept().unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    m2msec_std::accept(tcp, server_config(suite))
}

pub fn listen() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let p = l.local_addr().unwrap().port();
    (l, p)
}

pub fn openssl_server(suite: CipherSuite, port: u16, key_hex: &str) -> Peer {
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

pub fn gnutls_server(suite: CipherSuite, port: u16, dir: &std::path::Path) -> Peer {
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

pub fn tempdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("m2msec-interop-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}
