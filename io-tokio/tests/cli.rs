//! The `m2msec` binary as server and client against each other over loopback.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{wait_until, Proc, BIN};

const KEY: &str = "000102030405060708090a0b0c0d0e0f";

fn server(extra: &[&str]) -> Proc {
    let mut args = vec![
        "server",
        "--listen",
        "127.0.0.1:0",
        "--psk-identity",
        "cse-01",
        "--psk",
        KEY,
    ];
    args.extend_from_slice(extra);
    Proc::spawn(&args)
}

fn client(port: u16, key: &str, extra: &[&str]) -> Proc {
    let addr = format!("127.0.0.1:{port}");
    let mut args = vec![
        "client",
        "--connect",
        &addr,
        "--psk-identity",
        "cse-01",
        "--psk",
        key,
    ];
    args.extend_from_slice(extra);
    Proc::spawn(&args)
}

const EXPORTS: &[&str] = &[
    "--export",
    "EXPORTER-oneM2M-Bootstrap:48",
    "--export",
    "EXPORTER-test:16:",
    "--export",
    "EXPORTER-test:16",
    "--export",
    "EXPORTER-test:16:c0ffee",
];

#[test]
fn client_and_server_pipe_data_and_agree_on_exporters() {
    let mut s = server(&[&["--once"], EXPORTS].concat());
    let port = s.port();
    let mut c = client(port, KEY, &[&["--sni", "in-cse.example"], EXPORTS].concat());

    c.send(b"ping from the client\n");
    s.wait_stdout(b"ping from the client\n");
    s.send(b"pong from the server\n");
    c.wait_stdout(b"pong from the server\n");
    // More data after the first exchange still flows promptly.
    c.send(b"second");
    s.wait_stdout(b"second");

    // EOF on the client's stdin: close_notify; the server answers and both exit cleanly.
    c.close_stdin();
    assert!(c.wait().success(), "client: {}", c.stderr());
    assert!(s.wait().success(), "server: {}", s.stderr());

    let connected = "connected: suite=TLS_PSK_WITH_AES_128_CCM identity=cse-01 sni=in-cse.example";
    assert_eq!(c.stderr_lines("connected: "), [connected]);
    assert_eq!(s.stderr_lines("connected: "), [connected]);
    let ce = c.stderr_lines("exporter: ");
    assert_eq!(ce.len(), 4, "{}", c.stderr());
    assert_eq!(ce, s.stderr_lines("exporter: "));
    assert_eq!(ce[0].len(), "exporter: ".len() + 96);
    assert!(ce[0]["exporter: ".len()..]
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    assert_ne!(ce[1], ce[2], "empty context differs from no context");
    assert_ne!(ce[1], ce[3]);
    assert!(c.stderr_lines("error").is_empty() && s.stderr_lines("error").is_empty());
    assert_eq!(c.stdout(), b"pong from the server\n");
    assert_eq!(s.stdout(), b"ping from the client\nsecond");
}

#[test]
fn server_closes_first_and_suite_choice() {
    let mut s = server(&["--once", "--suite", "psk-aes128-ccm8", "--hint", "h"]);
    let port = s.port();
    // Client offers both (CCM first); the server accepts only CCM_8. No SNI for an IP.
    let mut c = client(port, KEY, &[]);
    s.send(b"bye after this");
    c.wait_stdout(b"bye after this");
    s.close_stdin();
    // The client exits 0 after printing what the server sent, its stdin still open.
    assert!(c.wait().success(), "client: {}", c.stderr());
    assert!(s.wait().success(), "server: {}", s.stderr());
    let want = "connected: suite=TLS_PSK_WITH_AES_128_CCM_8 identity=cse-01 sni=-";
    assert_eq!(c.stderr_lines("connected: "), [want]);
    assert_eq!(s.stderr_lines("connected: "), [want]);
    assert_eq!(c.stdout(), b"bye after this");
}

#[test]
fn wrong_psk_exits_non_zero_with_one_error_line() {
    let mut s = server(&["--once"]);
    let port = s.port();
    let mut c = client(port, "ffffffffffffffffffffffffffffffff", &[]);
    assert!(!c.wait().success());
    assert!(!s.wait().success());
    assert_eq!(
        c.stderr_lines("error"),
        ["error: received fatal alert: bad_record_mac"],
        "{}",
        c.stderr()
    );
    let se = s.stderr_lines("error");
    assert_eq!(se.len(), 1, "{}", s.stderr());
    assert!(se[0].contains("bad_record_mac"), "{se:?}");
    assert!(c.stderr_lines("connected").is_empty());
}

#[test]
fn server_without_once_serves_connections_one_after_another() {
    let s = server(&[]);
    let port = s.port();
    // Unknown identity first: the server reports it and goes on.
    let mut bad = Proc::spawn(&[
        "client",
        "--connect",
        &format!("127.0.0.1:{port}"),
        "--psk-identity",
        "nobody",
        "--psk",
        KEY,
    ]);
    assert!(!bad.wait().success());
    assert_eq!(
        bad.stderr_lines("error"),
        ["error: received fatal alert: unknown_psk_identity"]
    );
    for i in 0..2 {
        let mut c = client(port, KEY, &[]);
        let msg = format!("connection {i}\n");
        c.send(msg.as_bytes());
        s.wait_stdout(msg.as_bytes());
        c.close_stdin();
        assert!(c.wait().success(), "client {i}: {}", c.stderr());
    }
    wait_until("two connected lines", || {
        s.stderr_lines("connected: ").len() == 2
    });
    assert_eq!(s.stderr_lines("error").len(), 1, "{}", s.stderr());
}

#[test]
fn bad_arguments_are_refused() {
    for args in [
        &[
            "client",
            "--connect",
            "127.0.0.1:1",
            "--psk-identity",
            "a",
            "--psk",
            "zz",
        ][..],
        &[
            "client",
            "--connect",
            "127.0.0.1:1",
            "--psk-identity",
            "a",
            "--psk",
            "00",
            "--suite",
            "rc4",
        ],
        &[
            "client",
            "--connect",
            "127.0.0.1:1",
            "--psk-identity",
            "a",
            "--psk",
            "00",
            "--export",
            "x",
        ],
        &["server", "--psk-identity", "a", "--psk", "00"],
        // --mtu only with --dtls
        &[
            "server",
            "--listen",
            "127.0.0.1:0",
            "--psk-identity",
            "a",
            "--psk",
            "00",
            "--mtu",
            "500",
        ],
    ] {
        let mut p = Proc::spawn(args);
        p.close_stdin();
        assert!(!p.wait().success(), "{args:?}");
    }
    // A connection failure names its cause.
    let mut p = Proc::spawn(&[
        "client",
        "--connect",
        "127.0.0.1:1",
        "--psk-identity",
        "a",
        "--psk",
        "00",
    ]);
    assert!(!p.wait().success());
    let e = p.stderr_lines("error");
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with("error: cannot connect to 127.0.0.1:1"),
        "{e:?}"
    );
}

#[test]
fn demo_runs_both_suites_over_tls_and_dtls() {
    let mut d = Proc::spawn(&["demo"]);
    let start = Instant::now();
    assert!(d.wait().success(), "demo: {}", d.stderr());
    assert!(start.elapsed() < Duration::from_secs(10));
    let out = String::from_utf8(d.stdout()).unwrap();
    let (engine, frameworks) = out.split_once("\n\n").expect("two tables");
    let lines: Vec<&str> = engine.lines().collect();
    assert_eq!(lines.len(), 5, "{out}");
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        [
            "framework",
            "transport",
            "suite",
            "handshake_ms",
            "bytes_each_way",
            "exporter_equal"
        ]
    );
    let suites = ["TLS_PSK_WITH_AES_128_CCM", "TLS_PSK_WITH_AES_128_CCM_8"];
    let want = [
        ("tls", suites[0], "65536"),
        ("tls", suites[1], "65536"),
        ("dtls", suites[0], "64000"),
        ("dtls", suites[1], "64000"),
    ];
    for (line, (transport, suite, bytes)) in lines[1..].iter().zip(want) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cols[..3], ["psk-tls", transport, suite], "{line}");
        assert!(cols[3].parse::<f64>().is_ok(), "{line}");
        assert_eq!(cols[4], bytes, "{line}");
        assert_eq!(cols[5], "yes", "{line}");
    }
    demo_frameworks_table(frameworks);
}

/// The frameworks table of the demo: every PSK framework, the certificate-based association
/// (X.509 chain and raw public key) and the certificate-based bootstrap (then the MAF first
/// contact), the GBA-based association (GBA_ME and GBA_U, one bootstrapping over Ub) and the
/// GBA-based Security Bootstrap (then the MAF first contact with the B-TID) over TLS and DTLS
/// against the real servers, with the identity the registrar bound equal to the
/// associating entity.
fn demo_frameworks_table(table: &str) {
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        [
            "framework",
            "transport",
            "suite",
            "identities",
            "key_ids",
            "ms"
        ],
        "{table}"
    );
    let want = [
        ("pre-provisioned", "tls"),
        ("pre-provisioned", "dtls"),
        ("bootstrap-psk", "tls"),
        ("bootstrap-psk", "dtls"),
        ("maf-based", "tls"),
        ("maf-based", "dtls"),
        ("maf-after-bootstrap", "tls"),
        ("maf-after-bootstrap", "dtls"),
        ("certificate", "tls"),
        ("certificate", "dtls"),
        ("certificate-raw", "tls"),
        ("certificate-raw", "dtls"),
        ("bootstrap-cert", "tls"),
        ("maf-after-cert-boot", "tls"),
        ("bootstrap-cert", "dtls"),
        ("maf-after-cert-boot", "dtls"),
        ("gba-me", "tls"),
        ("gba-me", "dtls"),
        ("gba-u", "tls"),
        ("gba-u", "dtls"),
        ("bootstrap-gba", "http"),
        ("maf-after-gba-boot", "tls"),
        ("bootstrap-gba", "http"),
        ("maf-after-gba-boot", "dtls"),
    ];
    let mut a_keys = Vec::new();
    let mut btids = Vec::new();
    assert_eq!(lines.len(), 1 + want.len(), "{table}");
    let hex32 = |s: &str| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit());
    for (line, (framework, transport)) in lines[1..].iter().zip(want) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cols[..2], [framework, transport], "{line}");
        let ecdhe = framework.starts_with("certificate") || framework == "bootstrap-cert";
        let suite = if ecdhe {
            "TLS_ECDHE_ECDSA_WITH_AES_128_CCM"
        } else if framework == "bootstrap-gba" {
            "Digest-AKAv1-MD5"
        } else {
            "TLS_PSK_WITH_AES_128_CCM"
        };
        assert!(cols[2].starts_with(suite), "{line}");
        assert!(cols.last().unwrap().parse::<f64>().is_ok(), "{line}");
        let field = |name: &str| {
            cols.iter()
                .find_map(|c| c.strip_prefix(name))
                .unwrap_or_else(|| panic!("no {name} in {line}"))
        };
        let btid_ok = |btid: &str| {
            let (b64, fqdn) = btid.split_once('@').unwrap();
            fqdn == "bsf.example.com"
                && b64.len() == 24
                && b64.ends_with("==")
                && b64[..22]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
        };
        if framework == "bootstrap-gba" {
            // GBA-based Security Bootstrap (8.3.3.1) over Ub: KeID = B-TID.
            assert!(btid_ok(field("btid=")), "{line}");
            assert!(field("impi=").ends_with("@ims.example.com"), "{line}");
            assert_eq!(field("bsf="), "bsf.example.com", "{line}");
            continue;
        }
        if framework.starts_with("bootstrap-") {
            let (rel, fqdn) = field("ke=").split_once('@').unwrap();
            assert!(hex32(rel) && fqdn == "mef.example.com", "{line}");
            assert_eq!(field("maf-id="), "maf.example.com");
            continue;
        }
        assert_eq!(field("A="), field("B-bound="), "{line}");
        if framework.starts_with("gba-") {
            // B-TID = base64(RAND)@BSF-FQDN; the first association bootstraps over Ub, the
            // others reuse the stored Ks (the same B-TID).
            let btid = field("btid=");
            assert!(btid_ok(btid), "{line}");
            let want_ks = if btids.is_empty() { "ub" } else { "stored" };
            assert_eq!(field("ks="), want_ks, "{line}");
            assert_eq!(field("A="), "ue@ims.example.com", "{line}");
            btids.push(btid.to_owned());
        } else if framework == "pre-provisioned" {
            assert_eq!(field("kpsa="), "asn-a.in@sp.example.com");
        } else if framework.starts_with("certificate") {
            // B bound the association to the configured otherEntityIdentifier of the
            // certificate it matched, and reports A's key as ni:///sha-256;<43 base64url>.
            let want = if framework == "certificate" {
                "/id-asn-c"
            } else {
                "/id-asn-r"
            };
            assert_eq!(field("B-bound="), want, "{line}");
            let key = field("a-key=");
            assert!(
                key.strip_prefix("ni:///sha-256;")
                    .is_some_and(|b| b.len() == 43),
                "{line}"
            );
            a_keys.push((framework, key.to_owned()));
        } else {
            let (rel, fqdn) = field("kc=").split_once('@').unwrap();
            assert!(hex32(rel) && fqdn == "maf.example.com", "{line}");
            let km = field("km=");
            if framework.starts_with("maf-after-") {
                let (rel, fqdn) = km.split_once('@').unwrap();
                assert!(rel.strip_prefix("km-").is_some_and(hex32), "{line}");
                assert_eq!(fqdn, "maf.example.com");
            } else {
                assert_eq!(km, "asn-a.km1@maf.example.com");
            }
        }
    }
    assert_eq!(btids.len(), 4);
    assert!(btids.iter().all(|b| b == &btids[0]), "{btids:?}");
    // The same key over TLS and DTLS; the X.509 entity and the raw-key entity differ.
    assert_eq!(a_keys.len(), 4);
    assert_eq!(a_keys[0].1, a_keys[1].1);
    assert_eq!(a_keys[2].1, a_keys[3].1);
    assert_ne!(a_keys[0].1, a_keys[2].1);
}

#[test]
fn dtls_client_and_server_pipe_datagrams_and_agree_on_exporters() {
    let mut s = server(&[&["--dtls", "--once"], EXPORTS].concat());
    let port = s.port();
    let mut c = client(
        port,
        KEY,
        &[&["--dtls", "--sni", "in-cse.example"], EXPORTS].concat(),
    );

    c.send(b"ping from the client\n");
    s.wait_stdout(b"ping from the client\n");
    s.send(b"pong from the server\n");
    c.wait_stdout(b"pong from the server\n");
    c.send(b"second\n");
    s.wait_stdout(b"second\n");

    // EOF on the client's stdin: close_notify; the server answers and both exit cleanly.
    c.close_stdin();
    assert!(c.wait().success(), "client: {}", c.stderr());
    assert!(s.wait().success(), "server: {}", s.stderr());

    let connected = "connected: suite=TLS_PSK_WITH_AES_128_CCM identity=cse-01 sni=in-cse.example";
    assert_eq!(c.stderr_lines("connected: "), [connected]);
    assert_eq!(s.stderr_lines("connected: "), [connected]);
    let ce = c.stderr_lines("exporter: ");
    assert_eq!(ce.len(), 4, "{}", c.stderr());
    assert_eq!(ce, s.stderr_lines("exporter: "));
    assert_ne!(ce[1], ce[2], "empty context differs from no context");
    assert!(c.stderr_lines("error").is_empty() && s.stderr_lines("error").is_empty());
    assert_eq!(c.stdout(), b"pong from the server\n");
    assert_eq!(s.stdout(), b"ping from the client\nsecond\n");
}

#[test]
fn dtls_small_mtu_splits_long_lines_and_server_closes_first() {
    let mut s = server(&[
        "--dtls",
        "--once",
        "--mtu",
        "200",
        "--suite",
        "psk-aes128-ccm8",
    ]);
    let port = s.port();
    let mut c = client(port, KEY, &["--dtls", "--mtu", "200"]);
    // A 1000-byte line does not fit a 200-byte datagram: it goes as several.
    let mut line: Vec<u8> = (0..999).map(|i| b'a' + (i % 26) as u8).collect();
    line.push(b'\n');
    c.send(&line);
    s.wait_stdout(&line);
    s.send(b"bye after this\n");
    c.wait_stdout(b"bye after this\n");
    s.close_stdin();
    assert!(c.wait().success(), "client: {}", c.stderr());
    assert!(s.wait().success(), "server: {}", s.stderr());
    let want = "connected: suite=TLS_PSK_WITH_AES_128_CCM_8 identity=cse-01 sni=-";
    assert_eq!(c.stderr_lines("connected: "), [want]);
    assert_eq!(s.stderr_lines("connected: "), [want]);
    assert_eq!(s.stdout(), line);
}

#[test]
fn dtls_server_without_once_serves_peers_one_after_another() {
    let s = server(&["--dtls"]);
    let port = s.port();
    for i in 0..2 {
        let mut c = client(port, KEY, &["--dtls"]);
        let msg = format!("datagram {i}\n");
        c.send(msg.as_bytes());
        s.wait_stdout(msg.as_bytes());
        c.close_stdin();
        assert!(c.wait().success(), "client {i}: {}", c.stderr());
    }
    wait_until("two connected lines", || {
        s.stderr_lines("connected: ").len() == 2
    });
    assert!(s.stderr_lines("error").is_empty(), "{}", s.stderr());
}

/// `m2msec keys`: the operator's view of the TS-0003 derivations. The Km value is the one in
/// spec-notes 4.1 (computed there with Python's hmac); the split follows D1/D2.
#[test]
fn keys_km_and_split() {
    let run = |args: &[&str]| Command::new(BIN).args(args).output().unwrap();
    let ke: String = (0u8..32).map(|b| format!("{b:02x}")).collect();
    let out = run(&["keys", "km", "--ke", &ke, "--maf-id", "maf.example.com"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "km: 3055bf32dd9c95586aaffa2ae2e165dfeffd0803566e16bdd343171457da8a5e\n"
    );
    let exporter: String = (0u8..48).map(|b| format!("{b:02x}")).collect();
    let out = run(&[
        "keys",
        "split",
        "--exporter",
        &exporter,
        "--fqdn",
        "mef.example.com",
    ]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "id: 000102030405060708090A0B0C0D0E0F@mef.example.com\n\
         key: 101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f\n"
    );
    for bad in [
        vec!["keys", "km", "--ke", "00", "--maf-id", "m"],
        vec![
            "keys",
            "split",
            "--exporter",
            &ke,
            "--fqdn",
            "mef.example.com",
        ],
        vec![
            "keys",
            "split",
            "--exporter",
            &exporter,
            "--fqdn",
            "not a name",
        ],
    ] {
        let out = run(&bad);
        assert!(!out.status.success(), "{bad:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with("error: ") && err.lines().count() == 1,
            "{err}"
        );
    }
}
