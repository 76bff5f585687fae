//! Full ECDHE-ECDSA (P-256, TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8) handshake rate of m2msec beside
//! OpenSSL (through the `openssl` crate) in the same run, both ends in one thread over an
//! in-memory link, as the PSK handshake rows of `throughput.rs`: TLS 1.2 over a byte stream and
//! DTLS 1.2 over a datagram queue (no cookie exchange on either side).
//!
//! Mutual authentication with X.509 on both sides (fixtures: `tests/data/ecdhe/make.sh`): each
//! end presents its leaf + intermediate and checks the other's chain up to the root
//! (root → intermediate → leaf). Ours: [`OneM2mVerifier`] with the root's key hash as Root of
//! Trust and the leaf's SAN as Certificate Name (the peer also sends the root, where the chain
//! walk stops). OpenSSL: an `X509Store` holding the root, `SSL_VERIFY_PEER |
//! FAIL_IF_NO_PEER_CERT`. Either way a handshake costs per side one ECDSA sign, one ECDH key
//! generation and agreement, and three ECDSA verifications (two certificate signatures and the
//! peer's ServerKeyExchange / CertificateVerify). One more row: ours with RFC 7250 raw public
//! keys (no chain; OpenSSL 3.0 has no raw public keys, so its X.509 figure is the reference).
//!
//! Run: `cargo bench -p m2msec-std --bench handshake_ecdhe`. `M2MSEC_BENCH_REP_MS` (default 500)
//! and `M2MSEC_BENCH_REPS` (default 5) shorten or lengthen the run (default: about 35 s).

mod common;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::hint::black_box;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use m2msec::cert::{
    pem_decode, CertifiedKey, Credential, OneM2mVerifier, RootOfTrust, RotHash, SigningKey,
};
use m2msec::{
    CertificateType, CipherSuite, ClientAuth, ClientConfig, Event, Now, Output, ServerConfig,
    Session, Transport,
};
use openssl::pkey::PKey;
use openssl::ssl::{
    ErrorCode, Ssl, SslContext, SslMethod, SslOptions, SslSessionCacheMode, SslStream,
    SslVerifyMode, SslVersion,
};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::X509;

const SUITE: CipherSuite = CipherSuite::EcdheEcdsaAes128Ccm8;
const OSSL_CIPHER: &str = "ECDHE-ECDSA-AES128-CCM8";
/// Poll buffer: any handshake flight's record or datagram fits.
const WIRE: usize = 16 * 1024 + 64;

// ---------------------------------------------------------------------------------------------
// Timing (as throughput.rs)

use common::{Stat, Timer};

struct Row {
    case: String,
    unit: &'static str,
    ours: Stat,
    theirs: Stat,
}

fn show(s: Stat) -> String {
    format!("{:.1} ({:.0}-{:.0})", s.median, s.min, s.max)
}

// ---------------------------------------------------------------------------------------------
// Credentials

fn data(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/ecdhe")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn certs(names: &[&str]) -> Vec<Vec<u8>> {
    names
        .iter()
        .flat_map(|n| pem_decode("CERTIFICATE", &data(n)).unwrap())
        .collect()
}

fn signing_key(name: &str) -> SigningKey {
    let der = pem_decode("PRIVATE KEY", &data(name)).unwrap();
    SigningKey::from_pkcs8_der(&der[0]).unwrap()
}

fn rot_of(cert: &str) -> RootOfTrust {
    let spki = Credential::X509(certs(&[cert])).leaf_spki().unwrap();
    RootOfTrust::of_spki(&spki, RotHash::Sha256)
}

/// Our configurations: X.509 chains (leaf + intermediate + root sent, Root of Trust = root), or
/// raw public keys (the self-signed entities' keys, Root of Trust = the key's hash).
fn our_configs(raw: bool) -> (Arc<ClientConfig>, Arc<ServerConfig>) {
    let (ck, sk, cv, sv) = if raw {
        let ss = |who: &str| {
            let ni = data(&format!("ss-{who}.ni.txt")).trim().to_string();
            Arc::new(OneM2mVerifier::new(ni, rot_of(&format!("ss-{who}.crt"))))
        };
        (
            CertifiedKey::raw(signing_key("ss-client.key")),
            CertifiedKey::raw(signing_key("ss-server.key")),
            ss("server"),
            ss("client"),
        )
    } else {
        let chain = |who: &str| {
            CertifiedKey::new(
                signing_key(&format!("{who}.key")),
                Credential::X509(certs(&[&format!("{who}.crt"), "int.crt", "root.crt"])),
            )
            .unwrap()
        };
        let root = rot_of("root.crt");
        (
            chain("client"),
            chain("server"),
            Arc::new(OneM2mVerifier::new("cse1.example.com", root).accept_raw_public_keys(false)),
            Arc::new(
                OneM2mVerifier::new("//sp.example.com/CSE1/Cae1", root)
                    .accept_raw_public_keys(false),
            ),
        )
    };
    let mut c = ClientConfig::builder_with_verifier(cv)
        .suites(&[SUITE])
        .certificate(ck);
    let mut s = ServerConfig::builder_with_certificate(sk)
        .suites(&[SUITE])
        .client_auth(ClientAuth::Required)
        .verifier(sv);
    if raw {
        c = c.server_certificate_types(&[CertificateType::RawPublicKey]);
        s = s.client_certificate_types(&[CertificateType::RawPublicKey]);
    }
    (Arc::new(c.build().unwrap()), Arc::new(s.build().unwrap()))
}

fn ossl_context(server: bool, dtls: bool) -> SslContext {
    let (method, version) = if dtls {
        (SslMethod::dtls(), SslVersion::DTLS1_2)
    } else {
        (SslMethod::tls(), SslVersion::TLS1_2)
    };
    let mut b = SslContext::builder(method).unwrap();
    b.set_min_proto_version(Some(version)).unwrap();
    b.set_max_proto_version(Some(version)).unwrap();
    b.set_cipher_list(&format!("{OSSL_CIPHER}:@SECLEVEL=0"))
        .unwrap();
    b.set_groups_list("P-256").unwrap();
    b.set_sigalgs_list("ECDSA+SHA256").unwrap();
    let mut opts = SslOptions::NO_TICKET;
    if dtls {
        opts |= SslOptions::NO_QUERY_MTU;
    }
    b.set_options(opts);
    b.set_session_cache_mode(SslSessionCacheMode::OFF);
    let who = if server { "server" } else { "client" };
    let leaf = X509::from_pem(data(&format!("{who}.crt")).as_bytes()).unwrap();
    let int = X509::from_pem(data("int.crt").as_bytes()).unwrap();
    let key = PKey::private_key_from_pem(data(&format!("{who}.key")).as_bytes()).unwrap();
    b.set_certificate(&leaf).unwrap();
    b.add_extra_chain_cert(int).unwrap();
    b.set_private_key(&key).unwrap();
    b.check_private_key().unwrap();
    let mut store = X509StoreBuilder::new().unwrap();
    store
        .add_cert(X509::from_pem(data("root.crt").as_bytes()).unwrap())
        .unwrap();
    b.set_verify_cert_store(store.build()).unwrap();
    b.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
    b.build()
}

// ---------------------------------------------------------------------------------------------
// Ours in memory

fn now() -> Now {
    Now::from_std(Instant::now())
}

/// Drains `s` into `out` (one entry per transmit: a TLS chunk or one datagram).
fn drain(s: &mut Session, wire: &mut [u8], out: &mut Vec<Vec<u8>>) {
    loop {
        match s.poll_output(wire) {
            Output::Transmit(b) => out.push(b.to_vec()),
            Output::Event(Event::AppData(_)) => panic!("no data in a handshake"),
            Output::Event(_) => {}
            Output::Wait(_) => return,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Feeds every transmit of `input` to `s` (a TLS chunk may be taken in parts), draining after
/// every call.
fn feed(s: &mut Session, at: Now, input: &[Vec<u8>], wire: &mut [u8], out: &mut Vec<Vec<u8>>) {
    for t in input {
        let mut rest = &t[..];
        loop {
            let n = s.handle_input(at, rest).expect("handle_input");
            rest = &rest[n..];
            drain(s, wire, out);
            if rest.is_empty() {
                break;
            }
            assert!(n > 0, "no progress");
        }
    }
}

fn our_handshake(
    c: &Arc<ClientConfig>,
    s: &Arc<ServerConfig>,
    transport: Transport,
    at: Now,
    wire: &mut [u8],
) -> (Session, Session) {
    let mut client = Session::client(c.clone(), transport, None, at, [1; 32]).unwrap();
    let mut server = Session::server(s.clone(), transport, at, [2; 32]).unwrap();
    let (mut c2s, mut s2c) = (Vec::new(), Vec::new());
    drain(&mut client, wire, &mut c2s);
    for _ in 0..8 {
        s2c.clear();
        feed(&mut server, at, &c2s, wire, &mut s2c);
        c2s.clear();
        feed(&mut client, at, &s2c, wire, &mut c2s);
        if client.is_connected() && server.is_connected() {
            assert!(c2s.is_empty());
            return (client, server);
        }
    }
    panic!("handshake made no progress");
}

// ---------------------------------------------------------------------------------------------
// OpenSSL in memory

/// One end of an in-memory link: each `write` queues one chunk (one datagram for DTLS); a TLS
/// `read` may take part of a chunk, a DTLS read takes exactly one; empty is WouldBlock.
struct Pipe {
    rx: Rc<RefCell<VecDeque<Vec<u8>>>>,
    tx: Rc<RefCell<VecDeque<Vec<u8>>>>,
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut q = self.rx.borrow_mut();
        let Some(d) = q.front_mut() else {
            return Err(io::ErrorKind::WouldBlock.into());
        };
        let n = d.len().min(buf.len());
        buf[..n].copy_from_slice(&d[..n]);
        if n == d.len() {
            q.pop_front();
        } else {
            d.drain(..n);
        }
        Ok(n)
    }
}

impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tx.borrow_mut().push_back(buf.to_vec());
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn want_read(r: Result<(), openssl::ssl::Error>) -> bool {
    match r {
        Ok(()) => true,
        Err(e) if e.code() == ErrorCode::WANT_READ => false,
        Err(e) => panic!("OpenSSL handshake: {e}"),
    }
}

fn ossl_handshake(
    cctx: &SslContext,
    sctx: &SslContext,
    dtls: bool,
) -> (SslStream<Pipe>, SslStream<Pipe>) {
    let a = Rc::new(RefCell::new(VecDeque::new()));
    let b = Rc::new(RefCell::new(VecDeque::new()));
    let mut cssl = Ssl::new(cctx).unwrap();
    cssl.set_connect_state();
    let mut sssl = Ssl::new(sctx).unwrap();
    sssl.set_accept_state();
    if dtls {
        cssl.set_mtu(1232).unwrap();
        sssl.set_mtu(1232).unwrap();
    }
    let cp = Pipe {
        rx: b.clone(),
        tx: a.clone(),
    };
    let mut c = SslStream::new(cssl, cp).unwrap();
    let mut s = SslStream::new(sssl, Pipe { rx: a, tx: b }).unwrap();
    for _ in 0..8 {
        let cdone = want_read(c.do_handshake());
        let sdone = want_read(s.do_handshake());
        if cdone && sdone {
            return (c, s);
        }
    }
    panic!("OpenSSL handshake made no progress");
}

// ---------------------------------------------------------------------------------------------

fn handshake_rows(t: &Timer, rows: &mut Vec<Row>) {
    let at = now();
    let mut wire = vec![0u8; WIRE];
    let (cc, sc) = our_configs(false);
    let (rc, rs) = our_configs(true);
    for dtls in [false, true] {
        let transport = if dtls {
            Transport::dtls()
        } else {
            Transport::Tls
        };
        let cctx = ossl_context(false, dtls);
        let sctx = ossl_context(true, dtls);

        // Sanity: both negotiate the suite with mutual authentication.
        let (c, s) = our_handshake(&cc, &sc, transport, at, &mut wire);
        let (ci, si) = (c.info().unwrap(), s.info().unwrap());
        assert_eq!(ci.suite, SUITE);
        assert_eq!(ci.peer_certificate.as_ref().map(|p| p.chain_len), Some(3));
        assert_eq!(si.peer_certificate.as_ref().map(|p| p.chain_len), Some(3));
        let (oc, os) = ossl_handshake(&cctx, &sctx, dtls);
        assert_eq!(
            oc.ssl().current_cipher().map(|c| c.name()),
            Some(OSSL_CIPHER)
        );
        assert!(oc.ssl().peer_certificate().is_some());
        assert!(
            os.ssl().peer_certificate().is_some(),
            "client authenticated"
        );
        assert_eq!(
            os.ssl().verify_result(),
            openssl::x509::X509VerifyResult::OK
        );
        assert_eq!(
            oc.ssl().version_str(),
            if dtls { "DTLSv1.2" } else { "TLSv1.2" }
        );
        let proto = if dtls { "DTLS" } else { "TLS" };

        let (x, y) = t.pair(
            2,
            &mut || {
                black_box(our_handshake(&cc, &sc, transport, at, &mut wire));
            },
            &mut || {
                black_box(ossl_handshake(&cctx, &sctx, dtls));
            },
        );
        rows.push(Row {
            case: format!("full {proto} ECDHE-ECDSA handshake, CCM_8, mutual X.509 (chain of 2)"),
            unit: "hs/s",
            ours: x,
            theirs: y,
        });

        let (c, s) = our_handshake(&rc, &rs, transport, at, &mut wire);
        assert!(
            c.info()
                .unwrap()
                .peer_certificate
                .as_ref()
                .unwrap()
                .raw_public_key
        );
        assert!(
            s.info()
                .unwrap()
                .peer_certificate
                .as_ref()
                .unwrap()
                .raw_public_key
        );
        let (x, y) = t.pair(
            2,
            &mut || {
                black_box(our_handshake(&rc, &rs, transport, at, &mut wire));
            },
            &mut || {
                black_box(ossl_handshake(&cctx, &sctx, dtls));
            },
        );
        rows.push(Row {
            case: format!("  ours with RFC 7250 raw keys ({proto}; OpenSSL: X.509 as above)"),
            unit: "hs/s",
            ours: x,
            theirs: y,
        });
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not supported.
    let t = Timer::from_env();
    let started = Instant::now();
    println!(
        "m2msec vs OpenSSL ({}), ECDHE-ECDSA P-256 handshakes, both ends in one thread, \
         medians of {} x {} ms (min-max in parentheses)",
        openssl::version::version(),
        t.reps,
        t.rep.as_millis()
    );
    let mut rows = Vec::new();
    handshake_rows(&t, &mut rows);

    println!();
    println!(
        "{:<72} {:>5} {:>22} {:>22} {:>8}",
        "case", "unit", "ours", "OpenSSL", "ours/OSSL"
    );
    for r in &rows {
        println!(
            "{:<72} {:>5} {:>22} {:>22} {:>8.2}",
            r.case,
            r.unit,
            show(r.ours),
            show(r.theirs),
            r.ours.median / r.theirs.median
        );
    }
    println!();
    println!(
        "One handshake = client + server: per side 1 ECDSA sign, 1 ECDH keygen + agreement, and"
    );
    println!(
        "3 ECDSA verifications with X.509 (1 with raw keys). Ours use RustCrypto p256 (pure Rust);"
    );
    println!(
        "OpenSSL uses its nistz256 assembly, several times faster per P-256 operation (compare"
    );
    println!("`openssl speed ecdsap256 ecdhp256`), which bounds the ratio.");
    println!(
        "Build: profile.bench = release defaults; debug_assertions {}.",
        if cfg!(debug_assertions) { "ON" } else { "off" }
    );
    println!("Total bench time: {:.1} s", started.elapsed().as_secs_f64());
}
