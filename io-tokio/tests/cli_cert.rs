//! The `m2msec` binary with certificates: `cert new` / `cert rot` (checked with OpenSSL), our
//! client against our server over TLS and DTLS with both ECDHE-ECDSA suites and mutual
//! authentication, refusals with their named cause, and `openssl s_client` against our server.
//!
//! Under `CI=true` a missing `openssl` fails the OpenSSL parts; elsewhere they are skipped.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use common::{wait_until, Proc, BIN};

const AE_ID: &str = "//sp.example.com/CSE1/Cae1";
const CSE: &str = "cse1.example.com";
const EXPORT: &[&str] = &["--export", "EXPORTER-oneM2M-Connection:48"];
const SUITES: [(&str, &str); 2] = [
    ("ecdhe-ecdsa-aes128-ccm", "TLS_ECDHE_ECDSA_WITH_AES_128_CCM"),
    ("ecdhe-aes128-ccm8", "TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8"),
];

/// Runs `m2msec` to completion; (exit status, stdout, stderr).
fn run(args: &[&str]) -> (ExitStatus, String, String) {
    let out = Command::new(BIN).args(args).output().expect("run m2msec");
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn have_openssl() -> bool {
    let ok = Command::new("openssl")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !ok {
        assert!(std::env::var("CI").is_err(), "openssl is required under CI");
        eprintln!("SKIP: openssl not found");
    }
    ok
}

/// A fresh directory for one test's files.
fn dir(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("m2msec-cli-cert-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn p(d: &Path, name: &str) -> String {
    d.join(name).display().to_string()
}

/// What `cert new` printed.
struct Made {
    root_of_trust: String,
    certificate_name: String,
}

/// `m2msec cert new ARGS --out-key D/NAME.key --out-cert D/NAME.pem`, checked to succeed.
fn cert_new(d: &Path, name: &str, args: &[&str]) -> Made {
    let (key, cert) = (p(d, &format!("{name}.key")), p(d, &format!("{name}.pem")));
    let mut all = vec!["cert", "new"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--out-key", &key, "--out-cert", &cert]);
    let (status, out, err) = run(&all);
    assert!(status.success(), "cert new {args:?}: {err}");
    let value = |prefix: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in {out:?}"))
            .to_string()
    };
    let made = Made {
        root_of_trust: value("root-of-trust: "),
        certificate_name: value("certificate-name: "),
    };
    assert!(made.root_of_trust.starts_with("ni:///sha-256;"), "{out}");
    assert_eq!(made.root_of_trust.len(), "ni:///sha-256;".len() + 43);
    made
}

/// A CA (name-constrained to example.com), a CSE leaf and an AE leaf issued by it.
struct Pki {
    d: PathBuf,
    ca: Made,
    cse: Made,
    ae: Made,
}

fn pki(test: &str) -> Pki {
    let d = dir(test);
    let ca = cert_new(
        &d,
        "ca",
        &[
            "--ca",
            "--name",
            "m2msec Test CA",
            "--path-len",
            "0",
            "--permit-dns",
            "example.com",
            "--days",
            "30",
        ],
    );
    let (ca_cert, ca_key) = (p(&d, "ca.pem"), p(&d, "ca.key"));
    let issued = |name: &str, extra: &[&str]| {
        let mut args = vec!["--ca-cert", &ca_cert, "--ca-key", &ca_key];
        args.extend_from_slice(extra);
        cert_new(&d, name, &args)
    };
    let cse = issued("cse", &["--name", CSE, "--kind", "cse"]);
    let ae = issued("ae", &["--name", AE_ID]);
    Pki { d, ca, cse, ae }
}

impl Pki {
    fn f(&self, name: &str) -> String {
        p(&self.d, name)
    }

    /// The CSE's server: its certificate, the AE as the expected client.
    fn server(&self, extra: &[&str]) -> Proc {
        let (cert, key) = (self.f("cse.pem"), self.f("cse.key"));
        let mut args = vec![
            "server",
            "--listen",
            "127.0.0.1:0",
            "--once",
            "--cert",
            &cert,
            "--key",
            &key,
            "--peer-root",
            &self.ca.root_of_trust,
            "--san-only",
        ];
        if !extra.contains(&"--peer-name") {
            args.extend_from_slice(&["--peer-name", AE_ID]);
        }
        args.extend_from_slice(extra);
        Proc::spawn(&args)
    }

    /// The AE's client, with its certificate unless `extra` says otherwise.
    fn client(&self, port: u16, with_cert: bool, extra: &[&str]) -> Proc {
        let addr = format!("127.0.0.1:{port}");
        let (cert, key) = (self.f("ae.pem"), self.f("ae.key"));
        let mut args = vec!["client", "--connect", &addr, "--sni", CSE];
        if with_cert {
            args.extend_from_slice(&["--cert", &cert, "--key", &key]);
        }
        let has = |flag: &str| extra.contains(&flag);
        if !has("--peer-root") {
            args.extend_from_slice(&["--peer-root", &self.ca.root_of_trust]);
        }
        if !has("--peer-name") {
            args.extend_from_slice(&["--peer-name", CSE]);
        }
        args.extend_from_slice(extra);
        Proc::spawn(&args)
    }
}

#[test]
fn cert_new_self_signed_ca_and_leaves() {
    let d = dir("new");
    // Self-signed: named by its own key hash (the SAN URI ni:///sha-256;..), which is also its
    // Root of Trust; --name adds a second SAN.
    let ss = cert_new(&d, "self", &["--name", "mef.example.com", "--days", "2"]);
    assert_eq!(ss.certificate_name, ss.root_of_trust);
    let ca = cert_new(&d, "ca", &["--ca", "--name", "Test CA", "--path-len", "1"]);
    assert_eq!(ca.certificate_name, "Test CA");
    let (ca_cert, ca_key) = (p(&d, "ca.pem"), p(&d, "ca.key"));
    let signed = |name: &str, args: &[&str]| {
        let mut all = vec!["--ca-cert", &ca_cert, "--ca-key", &ca_key];
        all.extend_from_slice(args);
        cert_new(&d, name, &all)
    };
    let ae = signed("ae", &["--name", AE_ID]);
    assert_eq!(ae.certificate_name, AE_ID);
    let cse = signed("cse", &["--name", CSE, "--kind", "cse"]);
    assert_eq!(cse.certificate_name, CSE);
    let names = [&ss, &ca, &ae, &cse].map(|m| m.root_of_trust.clone());
    for (i, n) in names.iter().enumerate() {
        assert!(!names[..i].contains(n), "fresh keys");
    }

    // cert rot agrees with cert new, from the certificate and from the key; truncated hashes.
    for (name, made) in [("self", &ss), ("ca", &ca), ("ae", &ae), ("cse", &cse)] {
        for flag in ["--cert", "--key"] {
            let file = p(
                &d,
                &format!("{name}.{}", if flag == "--cert" { "pem" } else { "key" }),
            );
            let (status, out, err) = run(&["cert", "rot", flag, &file]);
            assert!(status.success(), "{err}");
            assert_eq!(out.trim(), format!("root-of-trust: {}", made.root_of_trust));
        }
    }
    let (_, out, _) = run(&[
        "cert",
        "rot",
        "--cert",
        &p(&d, "ae.pem"),
        "--hash",
        "sha-256-120",
    ]);
    assert!(
        out.starts_with("root-of-trust: ni:///sha-256-120;"),
        "{out}"
    );
    assert_eq!(
        out.trim().len(),
        "root-of-trust: ni:///sha-256-120;".len() + 20
    );

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for k in ["self.key", "ca.key", "ae.key", "cse.key"] {
            let mode = std::fs::metadata(d.join(k)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{k}");
        }
    }
    let key = std::fs::read_to_string(d.join("ae.key")).unwrap();
    assert!(key.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{key}");
    // The issued certificate file holds the leaf, then the issuer.
    let chain = std::fs::read_to_string(d.join("ae.pem")).unwrap();
    assert_eq!(chain.matches("-----BEGIN CERTIFICATE-----").count(), 2);

    // Refusals: a CA without a name, a bad DNS name, --path-len without --ca.
    for args in [
        &["--ca"][..],
        &["--name", "not a dns name", "--kind", "fqdn"],
        &["--name", "x.example.com", "--path-len", "1"],
        &[
            "--ca-cert",
            &ca_cert,
            "--ca-key",
            &p(&d, "self.key"),
            "--name",
            CSE,
        ],
    ] {
        let mut all = vec!["cert", "new"];
        all.extend_from_slice(args);
        let (ko, kc) = (p(&d, "bad.key"), p(&d, "bad.pem"));
        all.extend_from_slice(&["--out-key", &ko, "--out-cert", &kc]);
        let (status, _, err) = run(&all);
        assert!(!status.success(), "{args:?}");
        assert!(!err.is_empty());
    }

    if !have_openssl() {
        return;
    }
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    };
    let (ok, text) = openssl(&["x509", "-in", &p(&d, "self.pem"), "-noout", "-text"]);
    assert!(ok, "{text}");
    assert!(text.contains("DNS:mef.example.com"), "{text}");
    assert!(
        text.contains(&format!("URI:{}", ss.root_of_trust)),
        "{text}"
    );
    assert!(text.contains("ecdsa-with-SHA256") && text.contains("prime256v1"));
    let (ok, text) = openssl(&["x509", "-in", &p(&d, "ae.pem"), "-noout", "-text"]);
    assert!(ok, "{text}");
    assert!(text.contains(&format!("URI:{AE_ID}")), "{text}");
    assert!(text.contains("Issuer: CN = Test CA"), "{text}");
    assert!(text.contains("CA:FALSE") && text.contains("Digital Signature"));
    let (ok, text) = openssl(&["x509", "-in", &p(&d, "cse.pem"), "-noout", "-text"]);
    assert!(ok && text.contains(&format!("DNS:{CSE}")), "{text}");
    let (ok, text) = openssl(&["x509", "-in", &ca_cert, "-noout", "-text"]);
    assert!(ok, "{text}");
    assert!(text.contains("CA:TRUE, pathlen:1"), "{text}");
    assert!(text.contains("Certificate Sign"), "{text}");
    let (ok, text) = openssl(&[
        "verify",
        "-CAfile",
        &ca_cert,
        &p(&d, "ae.pem"),
        &p(&d, "cse.pem"),
    ]);
    assert!(ok, "{text}");
    assert!(
        text.contains("ae.pem: OK") && text.contains("cse.pem: OK"),
        "{text}"
    );
    // OpenSSL reads our PKCS#8 key, and it is the certificate's.
    let (ok, key_pub) = openssl(&["pkey", "-in", &p(&d, "ae.key"), "-pubout"]);
    assert!(ok, "{key_pub}");
    let (ok, cert_pub) = openssl(&["x509", "-in", &p(&d, "ae.pem"), "-noout", "-pubkey"]);
    assert!(ok);
    assert_eq!(key_pub, cert_pub);
    // A name-constrained CA: a leaf outside example.com is refused by OpenSSL too.
    let nc = cert_new(
        &d,
        "nc",
        &["--ca", "--name", "NC", "--permit-dns", "example.com"],
    );
    let _ = nc;
    let (nc_cert, nc_key) = (p(&d, "nc.pem"), p(&d, "nc.key"));
    cert_new(
        &d,
        "out",
        &[
            "--ca-cert",
            &nc_cert,
            "--ca-key",
            &nc_key,
            "--name",
            "cse.other.org",
        ],
    );
    let (ok, text) = openssl(&["verify", "-CAfile", &nc_cert, &p(&d, "out.pem")]);
    assert!(!ok, "{text}");
}

#[test]
fn mutual_auth_tls_and_dtls_both_suites() {
    let k = pki("mutual");
    for transport in ["tls", "dtls"] {
        for (short, iana) in SUITES {
            let mut extra = vec!["--suite", short];
            extra.extend_from_slice(EXPORT);
            if transport == "dtls" {
                extra.push("--dtls");
            }
            let mut s = k.server(&extra);
            let port = s.port();
            let mut c = k.client(port, true, &extra);

            c.send(b"ping from the AE\n");
            s.wait_stdout(b"ping from the AE\n");
            s.send(b"pong from the CSE\n");
            c.wait_stdout(b"pong from the CSE\n");
            c.close_stdin();
            assert!(c.wait().success(), "{transport} {short}: {}", c.stderr());
            assert!(s.wait().success(), "{transport} {short}: {}", s.stderr());

            let base = format!("connected: suite={iana} identity=- sni={CSE}");
            assert_eq!(
                c.stderr_lines("connected: "),
                [format!(
                    "{base} peer-name={CSE} peer-root={}",
                    k.cse.root_of_trust
                )]
            );
            assert_eq!(
                s.stderr_lines("connected: "),
                [format!(
                    "{base} peer-name={AE_ID} peer-root={}",
                    k.ae.root_of_trust
                )]
            );
            let ce = c.stderr_lines("exporter: ");
            assert_eq!(ce.len(), 1);
            assert_eq!(ce[0].len(), "exporter: ".len() + 96);
            assert_eq!(ce, s.stderr_lines("exporter: "));
            assert!(c.stderr_lines("error").is_empty() && s.stderr_lines("error").is_empty());
        }
    }
}

#[test]
fn self_signed_raw_public_key_and_psk_beside_certificates() {
    let d = dir("selfsigned");
    let srv = cert_new(&d, "srv", &["--name", "mef.example.com"]);
    let cli = cert_new(&d, "cli", &[]);
    let (cert, key, cli_key) = (p(&d, "srv.pem"), p(&d, "srv.key"), p(&d, "cli.key"));
    let psk = "000102030405060708090a0b0c0d0e0f";
    // The server offers a certificate and a PSK; the self-signed client key is known by its
    // Root of Trust (which is also its Certificate Name: --peer-name may be left out).
    let server = |extra: &[&str]| {
        let mut args = vec![
            "server",
            "--listen",
            "127.0.0.1:0",
            "--once",
            "--cert",
            &cert,
            "--key",
            &key,
            "--peer-root",
            &cli.root_of_trust,
            "--psk-identity",
            "cse-01",
            "--psk",
            psk,
        ];
        args.extend_from_slice(extra);
        Proc::spawn(&args)
    };
    for transport in ["tls", "dtls"] {
        let dtls: &[&str] = if transport == "dtls" {
            &["--dtls"]
        } else {
            &[]
        };
        // A raw public key client (RFC 7250 both ways).
        let mut s = server(dtls);
        let addr = format!("127.0.0.1:{}", s.port());
        let mut args = vec![
            "client",
            "--connect",
            &addr,
            "--key",
            &cli_key,
            "--raw-public-key",
            "--peer-root",
            &srv.root_of_trust,
        ];
        args.extend_from_slice(dtls);
        let mut c = Proc::spawn(&args);
        c.send(b"raw\n");
        s.wait_stdout(b"raw\n");
        c.close_stdin();
        assert!(c.wait().success(), "{transport}: {}", c.stderr());
        assert!(s.wait().success(), "{transport}: {}", s.stderr());
        assert_eq!(
            c.stderr_lines("connected: "),
            [format!(
                "connected: suite=TLS_ECDHE_ECDSA_WITH_AES_128_CCM identity=- sni=- peer-name=- peer-root={}",
                srv.root_of_trust
            )]
        );
        assert_eq!(
            s.stderr_lines("connected: "),
            [format!(
                "connected: suite=TLS_ECDHE_ECDSA_WITH_AES_128_CCM identity=- sni=- peer-name=- peer-root={}",
                cli.root_of_trust
            )]
        );

        // A PSK client of the same server: the connected line is the PSK one.
        let mut s = server(dtls);
        let addr = format!("127.0.0.1:{}", s.port());
        let mut args = vec![
            "client",
            "--connect",
            &addr,
            "--psk-identity",
            "cse-01",
            "--psk",
            psk,
        ];
        args.extend_from_slice(dtls);
        let mut c = Proc::spawn(&args);
        c.send(b"psk\n");
        s.wait_stdout(b"psk\n");
        c.close_stdin();
        assert!(c.wait().success(), "{transport}: {}", c.stderr());
        assert!(s.wait().success(), "{transport}: {}", s.stderr());
        let line = "connected: suite=TLS_PSK_WITH_AES_128_CCM identity=cse-01 sni=-";
        assert_eq!(c.stderr_lines("connected: "), [line]);
        assert_eq!(s.stderr_lines("connected: "), [line]);
    }

    // An X.509 self-signed client: its Certificate Name is its key hash.
    let mut s = server(&[]);
    let addr = format!("127.0.0.1:{}", s.port());
    let mut c = Proc::spawn(&[
        "client",
        "--connect",
        &addr,
        "--cert",
        &p(&d, "cli.pem"),
        "--key",
        &cli_key,
        "--peer-root",
        &srv.root_of_trust,
        "--suite",
        "ecdhe-ecdsa-aes128-ccm8",
    ]);
    c.close_stdin();
    assert!(c.wait().success(), "{}", c.stderr());
    assert!(s.wait().success(), "{}", s.stderr());
    assert_eq!(
        s.stderr_lines("connected: "),
        [format!(
            "connected: suite=TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8 identity=- sni=- peer-name={} peer-root={}",
            cli.root_of_trust, cli.root_of_trust
        )]
    );
    assert_eq!(
        c.stderr_lines("connected: "),
        [format!(
            "connected: suite=TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8 identity=- sni=- peer-name={} peer-root={}",
            srv.root_of_trust, srv.root_of_trust
        )]
    );
}

#[test]
fn refusals_name_their_cause() {
    let k = pki("refusals");
    for dtls in [false, true] {
        let t: &[&str] = if dtls { &["--dtls"] } else { &[] };
        // The client expects another Certificate Name.
        let mut s = k.server(t);
        let mut c = k.client(
            s.port(),
            true,
            &[t, &["--peer-name", "cse2.example.com"]].concat(),
        );
        c.expect_error("peer certificate refused: the Certificate Name is not in the certificate");
        s.expect_error("received fatal alert: bad_certificate");

        // The client trusts another root (the AE's own key).
        let mut s = k.server(t);
        let mut c = k.client(
            s.port(),
            true,
            &[t, &["--peer-root", &k.ae.root_of_trust]].concat(),
        );
        c.expect_error("peer certificate refused: no key of the chain matches the Root of Trust");
        s.expect_error("received fatal alert: unknown_ca");

        // A client without a certificate, where the server requires one.
        let mut s = k.server(t);
        let mut c = k.client(s.port(), false, t);
        s.expect_error("peer certificate refused: no certificate");
        c.expect_error("received fatal alert: handshake_failure");

        // The server expects another AE.
        let mut s = k.server(&[t, &["--peer-name", "//sp.example.com/CSE1/Cae2"]].concat());
        let mut c = k.client(s.port(), true, t);
        s.expect_error("peer certificate refused: the Certificate Name is not in the certificate");
        c.expect_error("received fatal alert: bad_certificate");
    }

    // Configuration mistakes, before any connection.
    let (cert, key, ca_key) = (k.f("cse.pem"), k.f("cse.key"), k.f("ca.key"));
    for (args, cause) in [
        (
            vec![
                "server",
                "--listen",
                "127.0.0.1:0",
                "--cert",
                &cert,
                "--key",
                &key,
            ],
            "requires client certificates",
        ),
        (
            vec![
                "server",
                "--listen",
                "127.0.0.1:0",
                "--cert",
                &cert,
                "--key",
                &ca_key,
                "--no-client-auth",
            ],
            "is not the key of the certificate",
        ),
        (
            vec![
                "client",
                "--connect",
                "127.0.0.1:1",
                "--cert",
                &cert,
                "--key",
                &key,
            ],
            "needs --peer-root",
        ),
        (
            vec!["client", "--connect", "127.0.0.1:1"],
            "nothing to authenticate with",
        ),
        (
            vec![
                "client",
                "--connect",
                "127.0.0.1:1",
                "--peer-root",
                &k.ca.root_of_trust,
                "--suite",
                "psk-aes128-ccm",
            ],
            "needs --psk-identity and --psk",
        ),
    ] {
        let mut p = Proc::spawn(&args);
        p.close_stdin();
        p.expect_error(cause);
    }
    // A malformed Root of Trust is a usage error.
    let (status, _, err) = run(&[
        "client",
        "--connect",
        "127.0.0.1:1",
        "--peer-root",
        "ni:///md5;x",
    ]);
    assert_eq!(status.code(), Some(2), "{err}");
}

#[test]
fn openssl_s_client_against_our_server() {
    if !have_openssl() {
        return;
    }
    let k = pki("openssl");
    let mut s = k.server(&[
        "--suite",
        "ecdhe-ecdsa-aes128-ccm8",
        "--export",
        "EXPORTER-oneM2M-Connection:32",
    ]);
    let connect = format!("127.0.0.1:{}", s.port());
    let (cert, key, ca) = (k.f("ae.pem"), k.f("ae.key"), k.f("ca.pem"));
    let mut o = Proc::spawn_cmd(
        "openssl",
        &[
            "s_client",
            "-connect",
            &connect,
            "-tls1_2",
            "-no_ticket",
            "-cert",
            &cert,
            "-cert_chain",
            &ca,
            "-key",
            &key,
            "-CAfile",
            &ca,
            "-verify",
            "2",
            "-verify_return_error",
            "-servername",
            CSE,
            "-cipher",
            "ECDHE-ECDSA-AES128-CCM8:@SECLEVEL=0",
            "-keymatexport",
            "EXPORTER-oneM2M-Connection",
            "-keymatexportlen",
            "32",
        ],
    );
    wait_until("the server's connected line", || {
        !s.stderr_lines("connected: ").is_empty()
    });
    assert_eq!(
        s.stderr_lines("connected: "),
        [format!(
            "connected: suite=TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8 identity=- sni={CSE} peer-name={AE_ID} peer-root={}",
            k.ae.root_of_trust
        )]
    );
    o.send(b"c2s from openssl\n");
    s.wait_stdout(b"c2s from openssl\n");
    s.send(b"s2c from m2msec\n");
    o.wait_stdout(b"s2c from m2msec\n");
    let ours = s.stderr_lines("exporter: ")[0]["exporter: ".len()..].to_string();
    let log = o.stdout_text();
    let theirs = log
        .lines()
        .find_map(|l| l.trim().strip_prefix("Keying material: "))
        .unwrap_or_else(|| panic!("no keying material: {log}"));
    assert_eq!(theirs.to_ascii_lowercase(), ours);
    assert!(log.contains("Cipher is ECDHE-ECDSA-AES128-CCM8"), "{log}");
    assert!(log.contains("Verification: OK"), "{log}");
    // Our server closes: OpenSSL answers close_notify and both end.
    s.close_stdin();
    assert!(s.wait().success(), "{}", s.stderr());
    o.wait();
}
