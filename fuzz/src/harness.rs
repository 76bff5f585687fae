//! The fuzz harness: one function per cargo-fuzz target, each taking arbitrary bytes and
//! panicking only when an invariant of the core breaks.
//!
//! This file depends on nothing but `m2msec` and `std`: `core/tests/fuzz_regressions.rs`
//! includes it by path to replay `fuzz/regressions/<target>/*` (and `fuzz/seeds/<target>/*`)
//! through exactly the logic the fuzzer ran. The input formats are documented on each target and
//! produced for the seeds by `fuzz/gen_corpus.rs`.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use m2msec::cert::{
    pem_decode, pem_encode, root_of_trust_of, spki_of, verifying_key_from_spki, CertDecision,
    CertError, CertVerifier, CertifiedKey, Credential, OneM2mVerifier, PeerCertificateInfo,
    RootOfTrust, RotHash, SigningKey,
};
use m2msec::codec::Reader;
use m2msec::config::{ClientAuth, PskLookup};
use m2msec::crypto::ecc;
use m2msec::dtls::{
    CookieListener, DtlsRecordHeader, FragmentHeader, Inserted, ListenerDecision, Reassembler,
    COOKIE_LEN, HS_HEADER_LEN,
};
use m2msec::enums::{ContentType, HandshakeType};
use m2msec::error::{ApiMisuse, InvalidMessage};
use m2msec::messages::{
    decode_certificate_list, decode_ec_point, decode_raw_public_key, encode_certificate_list,
    encode_raw_public_key, encode_server_name, encode_u16_list_ext, encode_u8_list_ext,
    is_dns_name, parse_server_name, parse_u16_list_ext, parse_u8_list_ext, u16_list,
    CertificateRequest, ClientHello, DigitallySigned, EcdheServerKeyExchange, HelloVerifyRequest,
    PskIdentityBody, ServerHello,
};
use m2msec::record::{
    Deframer, RecordHeader, DTLS_HEADER_LEN, MAX_CIPHERTEXT, MAX_PLAINTEXT, TLS_HEADER_LEN,
};
use m2msec::{
    CertificateType, CipherSuite, ClientConfig, ClientPsk, Error, Event, Instant, Now, Output, Psk,
    PskResolver, PskTable, ServerConfig, Session, Transport, UnixTime,
};

/// Every target, by name (the `fuzz/seeds/` and `fuzz/regressions/` directory names).
pub const TARGETS: &[&str] = &[
    "record_tls",
    "handshake_messages",
    "dtls_reassembly",
    "server_tls",
    "client_tls",
    "server_dtls",
    "client_dtls",
    "dtls_cookie",
    "binding",
    "cert_verify",
    "ecdhe_messages",
    "server_tls_ecdhe",
    "client_tls_ecdhe",
    "server_dtls_ecdhe",
    "client_dtls_ecdhe",
    "gba",
    "zn",
    "identifiers",
];

/// The session targets: (name, DTLS?, server?, ECDHE-ECDSA?).
pub const SESSION_TARGETS: &[(&str, bool, bool, bool)] = &[
    ("server_tls", false, true, false),
    ("client_tls", false, false, false),
    ("server_dtls", true, true, false),
    ("client_dtls", true, false, false),
    ("server_tls_ecdhe", false, true, true),
    ("client_tls_ecdhe", false, false, true),
    ("server_dtls_ecdhe", true, true, true),
    ("client_dtls_ecdhe", true, false, true),
];

/// The outcome of the session target `name` on `data`; `None` if `name` is not a session target.
pub fn session_outcome(name: &str, data: &[u8]) -> Option<Outcome> {
    let &(_, dtls, server, ecdhe) = SESSION_TARGETS.iter().find(|t| t.0 == name)?;
    Some(if dtls {
        session_dtls_with(data, server, ecdhe)
    } else {
        session_tls_with(data, server, ecdhe)
    })
}

/// Runs the target called `name` on `data`; false if there is no such target.
pub fn run(name: &str, data: &[u8]) -> bool {
    match name {
        "record_tls" => record_tls(data),
        "handshake_messages" => handshake_messages(data),
        "dtls_reassembly" => dtls_reassembly(data),
        "server_tls" => server_tls(data),
        "client_tls" => client_tls(data),
        "server_dtls" => server_dtls(data),
        "client_dtls" => client_dtls(data),
        "dtls_cookie" => dtls_cookie(data),
        "binding" => binding(data),
        "cert_verify" => cert_verify(data),
        "ecdhe_messages" => ecdhe_messages(data),
        "server_tls_ecdhe" => server_tls_ecdhe(data),
        "client_tls_ecdhe" => client_tls_ecdhe(data),
        "server_dtls_ecdhe" => server_dtls_ecdhe(data),
        "client_dtls_ecdhe" => client_dtls_ecdhe(data),
        "gba" => gba(data),
        "zn" => zn(data),
        "identifiers" => identifiers(data),
        _ => return false,
    }
    true
}

/// The PSK identity both sides use (as in `core/tests/common`).
pub const ID: &[u8] = b"Client_identity";
/// The PSK (as in `core/tests/common`).
pub const KEY: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
/// The identity hint the server sends unless the config byte says otherwise.
pub const HINT: &[u8] = b"hint";
/// The SNI the client sends unless the config byte says otherwise.
pub const SNI: &str = "mef.example";
/// The server session's seed.
pub const SERVER_SEED: [u8; 32] = [0; 32];
/// The client session's seed.
pub const CLIENT_SEED: [u8; 32] = [1; 32];
/// The cookie listener's secret.
pub const COOKIE_SECRET: [u8; 32] = [7; 32];
/// The MTU of the DTLS sessions under test.
pub const MTU: usize = 1232;

/// Config byte, bit 0: the server defers the PSK lookup (`Event::PskNeeded` / `provide_psk`).
pub const CFG_DEFER_PSK: u8 = 1;
/// Config byte, bit 1: both sides use TLS_PSK_WITH_AES_128_CCM_8 only.
pub const CFG_CCM8_ONLY: u8 = 2;
/// Config byte, bit 2: the server sends no identity hint and the client no SNI.
pub const CFG_BARE: u8 = 4;

fn suites(cfg: u8) -> &'static [CipherSuite] {
    if cfg & CFG_CCM8_ONLY != 0 {
        &[CipherSuite::PskAes128Ccm8]
    } else {
        CipherSuite::ALL
    }
}

/// Answers every lookup with `Defer`.
struct Deferring;

impl PskResolver for Deferring {
    fn resolve(&self, _identity: &[u8], _server_name: Option<&str>) -> PskLookup {
        PskLookup::Defer
    }
}

/// The server configuration selected by the config byte `cfg`.
pub fn server_config(cfg: u8) -> Arc<ServerConfig> {
    let resolver = server_config_resolver(cfg);
    let hint = (cfg & CFG_BARE == 0).then_some(HINT);
    Arc::new(
        ServerConfig::builder(resolver)
            .suites(suites(cfg))
            .identity_hint(hint)
            .build()
            .expect("valid server config"),
    )
}

/// The PSK resolver under config byte `cfg` (deferring with [`CFG_DEFER_PSK`]).
fn server_config_resolver(cfg: u8) -> Box<dyn PskResolver> {
    if cfg & CFG_DEFER_PSK != 0 {
        Box::new(Deferring)
    } else {
        let mut t = PskTable::new();
        t.insert(ID, Psk::new(&KEY).expect("valid PSK"))
            .expect("valid identity");
        Box::new(t)
    }
}

/// The client configuration selected by the config byte `cfg`.
pub fn client_config(cfg: u8) -> Arc<ClientConfig> {
    let psk = ClientPsk::new(ID, Psk::new(&KEY).expect("valid PSK")).expect("valid identity");
    Arc::new(
        ClientConfig::builder(psk)
            .suites(suites(cfg))
            .build()
            .expect("valid client config"),
    )
}

/// The SNI the client sends under config byte `cfg`.
pub fn client_sni(cfg: u8) -> Option<&'static str> {
    (cfg & CFG_BARE == 0).then_some(SNI)
}

/// The wall clock of every session (2030-03-17, within the validity of the certificates in
/// `core/tests/data/ecdhe/`); the PSK handshakes do not read it.
pub const UNIX_NOW: u64 = 1_900_000_000;

// ---------------------------------------------------------------------------------------------
// ECDHE-ECDSA fixtures and configurations (core/tests/data/ecdhe/, as core/tests/ecdhe.rs)

/// The test root CA (DER).
pub const CA_CERT: &[u8] = include_bytes!("../../core/tests/data/ecdhe/ca.der");
/// The server's certificate (DER; CN localhost, SAN localhost, mef.example.com, 127.0.0.1).
pub const SERVER_CERT: &[u8] = include_bytes!("../../core/tests/data/ecdhe/server.der");
/// The server's key (PKCS#8 DER).
pub const SERVER_KEY: &[u8] = include_bytes!("../../core/tests/data/ecdhe/server.key.der");
/// The client's certificate (DER; CN m2msec-client, no SAN).
pub const CLIENT_CERT: &[u8] = include_bytes!("../../core/tests/data/ecdhe/client.der");
/// The client's key (PKCS#8 DER).
pub const CLIENT_KEY: &[u8] = include_bytes!("../../core/tests/data/ecdhe/client.key.der");
/// The server's Certificate Name (and the SNI of the ECDHE client).
pub const SERVER_NAME: &str = "mef.example.com";
/// The client's Certificate Name (its Subject CN).
pub const CLIENT_NAME: &str = "m2msec-client";
/// The scalar of the key of the self-signed profile of `cert_verify`.
pub const SELF_SIGNED_SCALAR: [u8; 32] = [9; 32];

/// ECDHE config byte, bit 0 (= [`CFG_DEFER_PSK`]): the verifiers defer (`Event::VerifyPeer`,
/// answered with the [`OneM2mVerifier`] decision); with [`CFG_E_MIXED`] the PSK lookup too.
pub const CFG_E_DEFER: u8 = CFG_DEFER_PSK;
/// ECDHE config byte, bit 1 (= [`CFG_CCM8_ONLY`]): TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8 only.
pub const CFG_E_CCM8_ONLY: u8 = CFG_CCM8_ONLY;
/// ECDHE config byte, bit 2 (= [`CFG_BARE`]): the client has no certificate and sends no SNI;
/// the server does not ask for one (unless [`CFG_E_OPTIONAL`]).
pub const CFG_E_BARE: u8 = CFG_BARE;
/// ECDHE config byte, bit 3: RFC 7250 raw public keys both ways (pinned by Root of Trust).
pub const CFG_E_RAW: u8 = 8;
/// ECDHE config byte, bit 4: both sides also have the PSK suites (ECDHE-ECDSA preferred).
pub const CFG_E_MIXED: u8 = 16;
/// ECDHE config byte, bit 5: the server asks for a client certificate optionally (default:
/// required; with [`CFG_E_BARE`]: not at all).
pub const CFG_E_OPTIONAL: u8 = 32;
/// The config bits the ECDHE session targets use.
const CFG_E_MASK: u8 = 63;

/// The fixture keys, parsed once.
struct Keys {
    server: SigningKey,
    client: SigningKey,
    ca_spki: Vec<u8>,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        server: SigningKey::from_pkcs8_der(SERVER_KEY).expect("server key"),
        client: SigningKey::from_pkcs8_der(CLIENT_KEY).expect("client key"),
        ca_spki: Credential::X509(vec![CA_CERT.to_vec()])
            .leaf_spki()
            .expect("CA key"),
    })
}

/// The SHA-256 Root of Trust of a DER SubjectPublicKeyInfo.
fn rot(spki: &[u8]) -> RootOfTrust {
    RootOfTrust::of_spki(spki, RotHash::Sha256)
}

/// SHA-256 of `data` (through the Root of Trust digest).
fn sha256(data: &[u8]) -> [u8; 32] {
    rot(data).digest().try_into().expect("32 bytes")
}

/// Defers every decision.
struct DeferCert;

impl CertVerifier for DeferCert {
    fn verify(&self, _peer: &Credential, _now: UnixTime) -> CertDecision {
        CertDecision::Defer
    }
}

/// The verifier a side of an ECDHE session applies to its peer under config byte `cfg` (the
/// session runs it itself, or defers and the harness answers with its decision): X.509 chains
/// to the test CA under the peer's Certificate Name, or the peer's raw key pinned by its Root
/// of Trust.
pub fn peer_verifier(cfg: u8, server: bool) -> OneM2mVerifier {
    let k = keys();
    let (name, peer_key) = if server {
        (CLIENT_NAME, &k.client)
    } else {
        (SERVER_NAME, &k.server)
    };
    let root = if cfg & CFG_E_RAW != 0 {
        rot(&peer_key.spki_der())
    } else {
        rot(&k.ca_spki)
    };
    OneM2mVerifier::new(name, root)
}

/// SHA-256 of the peer's SubjectPublicKeyInfo: the only key a side may connect to.
pub fn peer_spki_sha256(server: bool) -> [u8; 32] {
    let k = keys();
    let peer = if server { &k.client } else { &k.server };
    sha256(&peer.spki_der())
}

/// The server's DER SubjectPublicKeyInfo.
pub fn server_spki() -> Vec<u8> {
    keys().server.spki_der()
}

/// What the harness (and `gen_corpus`) answers to `Event::VerifyPeer`.
pub fn answer_verify_peer(
    cfg: u8,
    server: bool,
    credential: &Credential,
) -> Result<PeerCertificateInfo, CertError> {
    peer_verifier(cfg, server).check(credential, UnixTime(UNIX_NOW))
}

fn cert_verifier(cfg: u8, server: bool) -> Arc<dyn CertVerifier> {
    if cfg & CFG_E_DEFER != 0 {
        Arc::new(DeferCert)
    } else {
        Arc::new(peer_verifier(cfg, server))
    }
}

fn ecdhe_suites(cfg: u8) -> Vec<CipherSuite> {
    let mut v: Vec<CipherSuite> = if cfg & CFG_E_CCM8_ONLY != 0 {
        vec![CipherSuite::EcdheEcdsaAes128Ccm8]
    } else {
        CipherSuite::ECDHE_ECDSA.to_vec()
    };
    if cfg & CFG_E_MIXED != 0 {
        v.extend_from_slice(suites(cfg & CFG_CCM8_ONLY));
    }
    v
}

/// The server's client authentication under config byte `cfg`.
pub fn ecdhe_client_auth(cfg: u8) -> ClientAuth {
    if cfg & CFG_E_OPTIONAL != 0 {
        ClientAuth::Optional
    } else if cfg & CFG_E_BARE != 0 {
        ClientAuth::Off
    } else {
        ClientAuth::Required
    }
}

/// The ECDHE-ECDSA server configuration selected by the config byte `cfg` (`CFG_E_*`).
pub fn server_config_ecdhe(cfg: u8) -> Arc<ServerConfig> {
    static CACHE: [OnceLock<Arc<ServerConfig>>; 64] = [const { OnceLock::new() }; 64];
    let cfg = cfg & CFG_E_MASK;
    Arc::clone(CACHE[usize::from(cfg)].get_or_init(|| {
        let k = keys();
        let own = if cfg & CFG_E_RAW != 0 {
            CertifiedKey::raw(k.server.clone())
        } else {
            CertifiedKey::new(
                k.server.clone(),
                Credential::X509(vec![SERVER_CERT.to_vec(), CA_CERT.to_vec()]),
            )
            .expect("server credential")
        };
        let mut b = ServerConfig::builder_with_certificate(own)
            .suites(&ecdhe_suites(cfg))
            .client_auth(ecdhe_client_auth(cfg))
            .verifier(cert_verifier(cfg, true))
            .client_certificate_types(&[CertificateType::X509, CertificateType::RawPublicKey]);
        if cfg & CFG_E_MIXED != 0 {
            let psk = server_config_resolver(cfg);
            b = b.psk_resolver(psk).identity_hint(Some(HINT));
        }
        Arc::new(b.build().expect("valid ECDHE server config"))
    }))
}

/// The ECDHE-ECDSA client configuration selected by the config byte `cfg` (`CFG_E_*`).
pub fn client_config_ecdhe(cfg: u8) -> Arc<ClientConfig> {
    static CACHE: [OnceLock<Arc<ClientConfig>>; 64] = [const { OnceLock::new() }; 64];
    let cfg = cfg & CFG_E_MASK;
    Arc::clone(CACHE[usize::from(cfg)].get_or_init(|| {
        let k = keys();
        let mut b = ClientConfig::builder_with_verifier(cert_verifier(cfg, false))
            .suites(&ecdhe_suites(cfg));
        if cfg & CFG_E_RAW != 0 {
            b = b.server_certificate_types(&[CertificateType::RawPublicKey]);
        }
        if cfg & CFG_E_BARE == 0 {
            b = b.certificate(if cfg & CFG_E_RAW != 0 {
                CertifiedKey::raw(k.client.clone())
            } else {
                CertifiedKey::new(
                    k.client.clone(),
                    Credential::X509(vec![CLIENT_CERT.to_vec(), CA_CERT.to_vec()]),
                )
                .expect("client credential")
            });
        }
        if cfg & CFG_E_MIXED != 0 {
            b = b.psk(ClientPsk::new(ID, Psk::new(&KEY).expect("valid PSK")).expect("identity"));
        }
        Arc::new(b.build().expect("valid ECDHE client config"))
    }))
}

/// The SNI the ECDHE client sends under config byte `cfg`.
pub fn client_sni_ecdhe(cfg: u8) -> Option<&'static str> {
    (cfg & CFG_E_BARE == 0).then_some(SERVER_NAME)
}

/// A new session for a session target.
pub fn new_session(cfg: u8, transport: Transport, server: bool, ecdhe: bool, now: Now) -> Session {
    let s = match (server, ecdhe) {
        (true, false) => Session::server(server_config(cfg), transport, now, SERVER_SEED),
        (true, true) => Session::server(server_config_ecdhe(cfg), transport, now, SERVER_SEED),
        (false, false) => Session::client(
            client_config(cfg),
            transport,
            client_sni(cfg),
            now,
            CLIENT_SEED,
        ),
        (false, true) => Session::client(
            client_config_ecdhe(cfg),
            transport,
            client_sni_ecdhe(cfg),
            now,
            CLIENT_SEED,
        ),
    };
    s.expect("session")
}

/// `Now` at `micros` of virtual monotonic time (wall clock [`UNIX_NOW`]).
pub fn now_at(micros: u64) -> Now {
    Now {
        mono: Instant(micros),
        unix: UnixTime(UNIX_NOW),
    }
}

/// A cursor over the fuzz input.
struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.data.split_first()?;
        self.data = rest;
        Some(b)
    }

    fn u16(&mut self) -> Option<u16> {
        let hi = self.byte()?;
        let lo = self.byte().unwrap_or(0);
        Some(u16::from_be_bytes([hi, lo]))
    }

    /// Up to `n` bytes (fewer at the end of the input).
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (a, b) = self.data.split_at(n.min(self.data.len()));
        self.data = b;
        a
    }
}

// ---------------------------------------------------------------------------------------------
// record_tls

/// `record_tls`: input = control byte || stream.
///
/// The stream goes through a TLS [`Deframer`] in chunks of `(ctl & 0x3f) + 1` bytes (`ctl & 0x3f
/// == 0x3f`: all at once), with `protected` starting at `ctl & 0x40` and flipping after each record
/// when `ctl & 0x80`; every 5-byte window of the stream through [`RecordHeader::decode`]; and the
/// stream as one datagram through [`DtlsRecordHeader::split`], record after record.
pub fn record_tls(data: &[u8]) {
    let Some((&ctl, stream)) = data.split_first() else {
        return;
    };
    for w in stream.windows(TLS_HEADER_LEN).take(64) {
        let h: [u8; TLS_HEADER_LEN] = w.try_into().expect("window of 5");
        for protected in [false, true] {
            if let Ok(d) = RecordHeader::decode(&h, protected) {
                let max = if protected {
                    MAX_CIPHERTEXT
                } else {
                    MAX_PLAINTEXT
                };
                assert!(d.len <= max);
                assert_eq!(d.len, usize::from(u16::from_be_bytes([h[3], h[4]])));
                assert_eq!(u8::from(d.typ), h[0]);
                assert!(!matches!(d.typ, ContentType::Unknown(_)));
                assert_eq!(d.version, u16::from_be_bytes([h[1], h[2]]));
                assert_eq!(d.version >> 8, 3);
            }
        }
    }

    // The deframer: it must take every byte offered until a record is whole, and the record it
    // holds must be exactly the bytes of the stream.
    let chunk = match ctl & 0x3f {
        0x3f => stream.len().max(1),
        c => usize::from(c) + 1,
    };
    let mut protected = ctl & 0x40 != 0;
    let mut d = Deframer::default();
    let mut consumed = 0;
    let mut record_start = 0;
    'chunks: for c in stream.chunks(chunk) {
        let mut rest = c;
        loop {
            let (n, whole) = match d.feed(rest, protected) {
                Ok(r) => r,
                Err(e) => {
                    black_box(e);
                    break 'chunks;
                }
            };
            assert!(n <= rest.len(), "took {n} of {}", rest.len());
            rest = &rest[n..];
            consumed += n;
            if whole {
                let (h, fragment) = d.record().expect("a whole record");
                assert_eq!(fragment.len(), h.len);
                let raw = &stream[record_start..consumed];
                assert_eq!(raw.len(), TLS_HEADER_LEN + h.len);
                assert_eq!(&raw[TLS_HEADER_LEN..], &*fragment);
                assert_eq!(u8::from(h.typ), raw[0]);
                assert_eq!(d.fragment(), &raw[TLS_HEADER_LEN..]);
                d.clear();
                assert!(!d.is_mid_record());
                record_start = consumed;
                if ctl & 0x80 != 0 {
                    protected = !protected;
                }
            } else {
                assert!(rest.is_empty(), "deframer stopped before a whole record");
                assert!(d.record().is_none());
                assert_eq!(d.is_mid_record(), consumed > record_start);
                break;
            }
            if rest.is_empty() {
                break;
            }
        }
    }

    // DTLS record headers, one datagram.
    let mut off = 0;
    while off < stream.len() {
        let Ok((h, range)) = DtlsRecordHeader::split(&stream[off..]) else {
            break;
        };
        let raw = &stream[off..];
        assert_eq!(range.start, DTLS_HEADER_LEN);
        assert_eq!(range.len(), h.len);
        assert!(range.end <= raw.len());
        assert!(h.len <= MAX_CIPHERTEXT);
        assert_eq!(h.version >> 8, 0xfe);
        assert!(!matches!(h.typ, ContentType::Unknown(_)));
        assert_eq!(u8::from(h.typ), raw[0]);
        assert_eq!(h.full_seq().to_be_bytes(), raw[3..11]);
        off += range.end;
    }
}

// ---------------------------------------------------------------------------------------------
// handshake_messages

/// `handshake_messages`: input = selector byte || body. `selector % 8` picks the decoder:
/// 0 TLS ClientHello, 1 DTLS ClientHello, 2 ServerHello, 3 HelloVerifyRequest, 4 PSK identity
/// body, 5 server_name extension, 6 DTLS fragment headers (a sequence), 7 all of them.
/// Whatever decodes must encode back to exactly the input.
pub fn handshake_messages(data: &[u8]) {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let all = sel % 8 == 7;
    if all || sel % 8 == 0 {
        client_hello(body, false);
    }
    if all || sel % 8 == 1 {
        client_hello(body, true);
    }
    if all || sel % 8 == 2 {
        if let Ok(m) = ServerHello::decode(body) {
            let mut out = Vec::new();
            m.encode(&mut out).expect("a decoded ServerHello encodes");
            assert_eq!(out, body, "ServerHello encoding is not canonical");
            assert!(m.session_id.len() <= 32);
            assert_eq!(ServerHello::decode(&out).as_ref(), Ok(&m));
            extensions_unique(m.extensions.as_deref());
        }
    }
    if all || sel % 8 == 3 {
        if let Ok(m) = HelloVerifyRequest::decode(body) {
            let mut out = Vec::new();
            m.encode(&mut out)
                .expect("a decoded HelloVerifyRequest encodes");
            assert_eq!(out, body, "HelloVerifyRequest encoding is not canonical");
        }
    }
    if all || sel % 8 == 4 {
        if let Ok(m) = PskIdentityBody::decode(body) {
            let mut out = Vec::new();
            m.encode(&mut out).expect("a decoded PSK identity encodes");
            assert_eq!(out, body, "PSK identity encoding is not canonical");
        }
    }
    if all || sel % 8 == 5 {
        server_name(body);
    }
    if all || sel % 8 == 6 {
        fragment_headers(body);
    }
}

fn extensions_unique(exts: Option<&[m2msec::messages::Extension<'_>]>) {
    let Some(exts) = exts else { return };
    for (i, a) in exts.iter().enumerate() {
        assert!(
            exts[i + 1..].iter().all(|b| b.typ != a.typ),
            "duplicate extension accepted"
        );
    }
}

fn client_hello(body: &[u8], dtls: bool) {
    let Ok(m) = ClientHello::decode(body, dtls) else {
        return;
    };
    let mut out = Vec::new();
    m.encode(&mut out).expect("a decoded ClientHello encodes");
    assert_eq!(
        out, body,
        "ClientHello encoding is not canonical (dtls {dtls})"
    );
    assert_eq!(ClientHello::decode(&out, dtls).as_ref(), Ok(&m));
    assert_eq!(m.cookie.is_some(), dtls);
    assert!(m.session_id.len() <= 32);
    assert!(!m.cipher_suites.is_empty() && !m.compression_methods.is_empty());
    extensions_unique(m.extensions.as_deref());
    // The SNI parser on what a real ClientHello carries.
    if let Some(exts) = &m.extensions {
        for e in exts {
            if u16::from(e.typ) == 0 {
                server_name(e.data);
            }
        }
    }
}

fn server_name(body: &[u8]) {
    let Ok(name) = parse_server_name(body) else {
        return;
    };
    assert!(is_dns_name(name));
    let mut out = Vec::new();
    encode_server_name(name, &mut out).expect("a parsed host name encodes");
    assert_eq!(parse_server_name(&out), Ok(name));
    // The parser reads the first host_name and skips other name types, so the encoding is
    // canonical only for a list of exactly one host_name.
    if body.len() == 2 + 1 + 2 + name.len() {
        assert_eq!(out, body, "server_name encoding is not canonical");
    }
}

fn fragment_headers(body: &[u8]) {
    let mut r = Reader::new(body);
    let mut at = 0;
    while r.left() > 0 {
        let before = r.left();
        let Ok((h, frag)) = FragmentHeader::read(&mut r) else {
            return;
        };
        let used = before - r.left();
        assert_eq!(used, HS_HEADER_LEN + frag.len());
        assert_eq!(h.fragment_length, frag.len());
        assert!(h.offset + h.fragment_length <= h.length);
        let mut out = Vec::new();
        h.write(&mut out);
        out.extend_from_slice(frag);
        assert_eq!(
            out,
            &body[at..at + used],
            "fragment header is not canonical"
        );
        at += used;
    }
}

// ---------------------------------------------------------------------------------------------
// dtls_reassembly

/// A reference model of the reassembler: the bytes last written at each offset.
struct ModelMessage {
    typ: HandshakeType,
    body: Vec<u8>,
    have: Vec<bool>,
}

/// `dtls_reassembly`: input = next (u16) || max_message (u16) || max_total (u16, times 4) ||
/// window (u8) || fragments (DTLS handshake fragment header || data, back to back; a fragment
/// that does not parse ends the input).
///
/// Checks against a byte-level model: the verdict of every insert, that a message is popped
/// exactly when all its bytes arrived, in message_seq order, with the bytes last received, and
/// never longer than `max_message`; and that buffered bytes stay within `max_total`.
pub fn dtls_reassembly(data: &[u8]) {
    let mut inp = Input { data };
    let next = inp.u16().unwrap_or(0);
    let max_message = usize::from(inp.u16().unwrap_or(0));
    let max_total = usize::from(inp.u16().unwrap_or(0)) * 4;
    let window = u16::from(inp.byte().unwrap_or(0));
    let mut r = Reassembler::new(next, max_message, max_total, window);
    let mut model: BTreeMap<u16, ModelMessage> = BTreeMap::new();
    let mut model_next = next;

    let mut reader = Reader::new(inp.data);
    while reader.left() > 0 {
        let Ok((h, frag)) = FragmentHeader::read(&mut reader) else {
            break;
        };
        let buffered: usize = model.values().map(|m| m.body.len()).sum();
        let expected = if h.message_seq < model_next {
            Ok(Inserted::Old)
        } else if h.message_seq - model_next >= window {
            Ok(Inserted::Dropped)
        } else if h.length > max_message {
            Err(InvalidMessage::HandshakeMessageTooLarge)
        } else if let Some(m) = model.get(&h.message_seq) {
            if m.typ != h.typ || m.body.len() != h.length {
                Ok(Inserted::Dropped)
            } else {
                Ok(Inserted::Stored)
            }
        } else if buffered + h.length > max_total {
            Ok(Inserted::Dropped)
        } else {
            model.insert(
                h.message_seq,
                ModelMessage {
                    typ: h.typ,
                    body: vec![0; h.length],
                    have: vec![false; h.length],
                },
            );
            Ok(Inserted::Stored)
        };
        let got = r.insert(&h, frag);
        assert_eq!(got, expected, "insert verdict for {h:?}");
        if expected == Ok(Inserted::Stored) {
            let m = model.get_mut(&h.message_seq).expect("stored in the model");
            m.body[h.offset..h.offset + frag.len()].copy_from_slice(frag);
            m.have[h.offset..h.offset + frag.len()].fill(true);
        }
        let buffered: usize = model.values().map(|m| m.body.len()).sum();
        assert!(buffered <= max_total, "buffered {buffered} > {max_total}");

        while let Some((typ, seq, body)) = r.pop() {
            assert_eq!(seq, model_next, "popped out of order");
            let m = model.remove(&seq).expect("popped a message never stored");
            assert!(m.have.iter().all(|&b| b), "popped an incomplete message");
            assert_eq!(typ, m.typ);
            assert_eq!(body, m.body, "reassembled bytes differ");
            assert!(body.len() <= max_message, "message over the bound");
            model_next = model_next.wrapping_add(1);
        }
        assert_eq!(r.next(), model_next);
        if let Some(m) = model.get(&model_next) {
            assert!(
                !m.have.iter().all(|&b| b),
                "message {model_next} is complete but was not popped"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Sessions

/// Drives one session under the contract of `m2msec::session` and checks it.
struct Driver {
    s: Session,
    dtls: bool,
    server: bool,
    now: u64,
    buf: Vec<u8>,
    /// The session returned a fatal error.
    failed: bool,
    connected: bool,
    peer_closed: bool,
    /// The deadline of the last `Output::Wait`.
    deadline: Option<Instant>,
    app_data: bool,
    failed_before_eof: bool,
    /// The ECDHE config byte of an ECDHE session target.
    ecdhe: Option<u8>,
}

/// How far a session target got (before the final `handle_eof`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// `Event::Connected` was seen.
    pub connected: bool,
    /// Application data was received.
    pub app_data: bool,
    /// `Event::PeerClosed` was seen.
    pub peer_closed: bool,
    /// The session failed (an error, or `handle_eof` before the peer closed).
    pub failed: bool,
}

/// Drain buffer sizes selected by the op tag (TLS); small ones split transmits and data.
const BUF_SIZES: [usize; 4] = [4096, 1, 7, 17_000];

impl Driver {
    fn new(s: Session, dtls: bool, server: bool, ecdhe: Option<u8>) -> Self {
        let mut d = Self {
            s,
            dtls,
            server,
            now: 0,
            buf: vec![0; 4096],
            failed: false,
            connected: false,
            peer_closed: false,
            deadline: None,
            app_data: false,
            failed_before_eof: false,
            ecdhe,
        };
        d.drain();
        d
    }

    fn now(&self) -> Now {
        now_at(self.now)
    }

    /// Checks the result of a call: after a fatal error every call fails with `AfterFatal`;
    /// a new error must be the session's sticky error (or a non-fatal `ApiMisuse`).
    fn check<T: core::fmt::Debug>(&mut self, r: Result<T, Error>) -> Option<T> {
        if self.failed {
            assert!(
                matches!(r, Err(Error::ApiMisuse(ApiMisuse::AfterFatal))),
                "a call after a fatal error returned {r:?}"
            );
            return None;
        }
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                match self.s.error() {
                    Some(sticky) => {
                        assert_eq!(sticky, &e, "the sticky error differs from the returned one");
                        assert!(self.s.is_closed());
                        self.failed = true;
                    }
                    None => assert!(
                        matches!(
                            e,
                            Error::ApiMisuse(
                                ApiMisuse::NotConnected
                                    | ApiMisuse::Closed
                                    | ApiMisuse::NoPskRequested
                                    | ApiMisuse::NoVerificationRequested
                            )
                        ),
                        "an error that is neither sticky nor misuse: {e:?}"
                    ),
                }
                None
            }
        }
    }

    /// Checks `Event::Connected`: a PSK suite authenticated with our identity; an ECDHE-ECDSA
    /// one only on a certificate session, and only with the fixture key of the peer.
    fn connected(&self, info: &m2msec::SessionInfo) {
        if info.suite.is_psk() {
            assert!(
                self.ecdhe.is_none_or(|c| c & CFG_E_MIXED != 0),
                "a PSK suite on a certificate-only session"
            );
            assert_eq!(info.psk_identity, ID);
            assert_eq!(info.peer_certificate, None);
            return;
        }
        let cfg = self
            .ecdhe
            .expect("an ECDHE-ECDSA suite on a PSK-only session");
        assert!(info.psk_identity.is_empty());
        match &info.peer_certificate {
            Some(p) => {
                assert_eq!(
                    p.spki_sha256,
                    peer_spki_sha256(self.server),
                    "connected to a peer key other than the fixture's"
                );
            }
            None => assert!(
                self.server && ecdhe_client_auth(cfg) != ClientAuth::Required,
                "connected without authenticating the peer"
            ),
        }
    }

    /// Drains `poll_output` until `Wait`; answers `PskNeeded` and `VerifyPeer` (and drains
    /// again).
    fn drain(&mut self) {
        loop {
            let mut psk_for = None;
            let mut verify_for = None;
            let mut polls = 0u32;
            loop {
                polls += 1;
                assert!(polls < 100_000, "poll_output never returns Wait");
                let failed = self.failed;
                match self.s.poll_output(&mut self.buf) {
                    Output::Transmit(b) => {
                        assert!(!b.is_empty(), "empty transmit");
                        if self.dtls {
                            assert!(b.len() <= MTU, "datagram of {} > MTU", b.len());
                        }
                        black_box(b);
                    }
                    Output::Event(ev) => {
                        assert!(!failed, "event after a fatal error: {ev:?}");
                        match ev {
                            Event::PskNeeded { identity, .. } => {
                                assert!(self.server, "PskNeeded on a client");
                                assert!(psk_for.is_none(), "PskNeeded twice in one drain");
                                assert!(self.s.is_suspended());
                                psk_for = Some(identity);
                            }
                            Event::Connected(info) => {
                                assert!(!self.connected, "Connected twice");
                                assert!(self.s.is_connected());
                                self.connected(&info);
                                self.connected = true;
                            }
                            Event::VerifyPeer { credential } => {
                                let cfg = self.ecdhe.expect("VerifyPeer on a PSK session");
                                assert!(cfg & CFG_E_DEFER != 0, "VerifyPeer without deferring");
                                assert!(verify_for.is_none(), "VerifyPeer twice in one drain");
                                assert!(psk_for.is_none(), "VerifyPeer and PskNeeded at once");
                                assert!(!self.connected, "VerifyPeer after Connected");
                                assert!(self.s.is_suspended());
                                verify_for = Some(credential);
                            }
                            Event::AppData(d) => {
                                assert!(self.connected, "application data before Connected");
                                assert!(!d.is_empty(), "empty application data event");
                                black_box(d);
                                self.app_data = true;
                            }
                            Event::PeerClosed => {
                                assert!(!self.peer_closed, "PeerClosed twice");
                                self.peer_closed = true;
                            }
                            other => panic!("unexpected event {other:?}"),
                        }
                    }
                    Output::BufferTooSmall { needed } => {
                        assert!(self.dtls, "BufferTooSmall over TLS");
                        assert!(needed > self.buf.len() && needed <= 1 << 16);
                        self.buf.resize(needed, 0);
                    }
                    Output::Wait(deadline) => {
                        if self.failed {
                            assert_eq!(deadline, None, "a deadline after a fatal error");
                        }
                        self.deadline = deadline;
                        break;
                    }
                    other => panic!("unexpected output {other:?}"),
                }
            }
            if let Some(credential) = verify_for {
                let cfg = self.ecdhe.expect("an ECDHE session");
                let decision = answer_verify_peer(cfg, self.server, &credential);
                let r = self.s.peer_verified(self.now(), decision);
                self.check(r);
                continue;
            }
            let Some(identity) = psk_for else {
                return;
            };
            let psk = (identity == ID).then(|| Psk::new(&KEY).expect("valid PSK"));
            let r = self.s.provide_psk(self.now(), psk);
            self.check(r);
        }
    }

    /// Feeds one chunk (TLS) or datagram (DTLS), re-feeding what was not taken.
    fn input(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        let mut stalls = 0;
        loop {
            let r = self.s.handle_input(self.now(), rest);
            let Some(n) = self.check(r) else {
                self.drain();
                return;
            };
            assert!(n <= rest.len(), "took {n} of {} bytes", rest.len());
            if self.dtls {
                assert!(n == 0 || n == rest.len(), "took part of a datagram");
            }
            rest = &rest[n..];
            self.drain();
            if rest.is_empty() {
                return;
            }
            if n == 0 {
                stalls += 1;
                assert!(stalls < 2, "no progress after draining and answering");
            } else {
                stalls = 0;
            }
        }
    }

    fn timeout(&mut self) {
        let early = self.deadline.is_none_or(|d| self.now < d.0);
        let r = self.s.handle_timeout(self.now());
        let ok = self.check(r).is_some();
        if early && !self.failed {
            assert!(ok, "handle_timeout before the deadline failed");
            // Before the deadline a timeout call must be a no-op.
            match self.s.poll_output(&mut self.buf) {
                Output::Wait(_) => {}
                o => panic!("handle_timeout before the deadline produced {o:?}"),
            }
        }
        self.drain();
    }

    fn send(&mut self, data: &[u8]) {
        let r = self.s.send(self.now(), data);
        if let Some(n) = self.check(r) {
            assert!(n <= data.len());
            assert!(self.connected);
        }
        self.drain();
    }

    fn close(&mut self) {
        let r = self.s.close(self.now());
        self.check(r);
        self.drain();
    }

    fn outcome(&self) -> Outcome {
        Outcome {
            connected: self.connected,
            app_data: self.app_data,
            peer_closed: self.peer_closed,
            failed: self.failed_before_eof,
        }
    }

    fn finish(&mut self) {
        self.failed_before_eof = self.failed;
        if self.connected && !self.failed {
            let mut out = [0u8; 20];
            let r = self
                .s
                .export_keying_material(&mut out, b"EXPORTER-fuzz", Some(b"ctx"));
            assert!(r.is_ok(), "exporter failed on a connected session: {r:?}");
            black_box(out);
        }
        let peer_closed = self.peer_closed;
        let was_failed = self.failed;
        let r = self.s.handle_eof(self.now());
        if !was_failed {
            assert_eq!(r.is_ok(), peer_closed, "handle_eof: {r:?}");
            if r.is_err() {
                assert!(self.s.error().is_some());
                self.failed = true;
            }
        } else {
            self.check(r);
        }
        // Everything fails after a fatal error.
        if self.failed {
            let now = self.now();
            let r = self.s.handle_input(now, b"\x16\x03\x03\x00\x00");
            self.check(r);
            let r = self.s.handle_timeout(now);
            self.check(r);
            let r = self.s.send(now, b"x");
            self.check(r);
            let r = self.s.close(now);
            self.check(r);
            let r = self.s.provide_psk(now, None);
            self.check(r);
            let r = self.s.peer_verified(now, Err(CertError::Refused));
            self.check(r);
            self.drain();
        }
    }
}

/// Op tags of the TLS session targets (low 3 bits; bits 4..6 pick the drain buffer size).
pub const OP_INPUT: u8 = 0;
/// Op: `send` of `len (u8) || data`.
pub const OP_SEND: u8 = 5;
/// Op: `close`.
pub const OP_CLOSE: u8 = 6;
/// Op (TLS): `handle_eof`.
pub const OP_EOF: u8 = 7;

/// Appends an input op to a TLS op stream.
pub fn tls_op_input(out: &mut Vec<u8>, bytes: &[u8]) {
    for c in bytes.chunks(usize::from(u16::MAX)) {
        out.push(OP_INPUT);
        out.extend_from_slice(&u16::try_from(c.len()).expect("chunked").to_be_bytes());
        out.extend_from_slice(c);
    }
}

/// Appends a send op (TLS and DTLS; data of at most 255 bytes).
pub fn op_send(out: &mut Vec<u8>, data: &[u8]) {
    out.push(OP_SEND);
    out.push(u8::try_from(data.len()).expect("at most 255 bytes"));
    out.extend_from_slice(data);
}

/// `server_tls` and `client_tls`: input = config byte (`CFG_*`) || ops. Each op is a tag byte:
/// `tag & 7`: 0..=4 input `len (u16 BE) || bytes` (re-fed until taken), 5 send
/// `len (u8) || data`, 6 close, 7 handle_eof; `(tag >> 4) & 3` selects the drain buffer size.
/// After the ops: the exporter if connected, then `handle_eof`; after any fatal error, every
/// call must fail with `AfterFatal`.
pub fn session_tls(data: &[u8], server: bool) -> Outcome {
    session_tls_with(data, server, false)
}

/// [`session_tls`] on a PSK session or (`ecdhe`) an ECDHE-ECDSA one, whose config byte is
/// `CFG_E_*` ([`server_config_ecdhe`], [`client_config_ecdhe`]).
pub fn session_tls_with(data: &[u8], server: bool, ecdhe: bool) -> Outcome {
    let mut inp = Input { data };
    let cfg = inp.byte().unwrap_or(0);
    let s = new_session(cfg, Transport::Tls, server, ecdhe, now_at(0));
    let mut d = Driver::new(s, false, server, ecdhe.then_some(cfg));
    while let Some(tag) = inp.byte() {
        d.buf.resize(BUF_SIZES[usize::from(tag >> 4) & 3], 0);
        match tag & 7 {
            OP_SEND => {
                let n = inp.byte().unwrap_or(0);
                let data = inp.take(usize::from(n));
                d.send(data);
            }
            OP_CLOSE => d.close(),
            OP_EOF => {
                let r = d.s.handle_eof(d.now());
                if !d.failed && r.is_err() {
                    assert!(d.s.error().is_some());
                    d.failed = true;
                } else {
                    d.check(r);
                }
                d.drain();
            }
            _ => {
                let n = inp.u16().unwrap_or(0);
                let bytes = inp.take(usize::from(n));
                d.input(bytes);
            }
        }
    }
    d.buf.resize(4096, 0);
    d.finish();
    d.outcome()
}

/// `server_tls`: see `session_tls` for the input format.
pub fn server_tls(data: &[u8]) {
    black_box(session_tls(data, true));
}

/// `client_tls`: see `session_tls` for the input format.
pub fn client_tls(data: &[u8]) {
    black_box(session_tls(data, false));
}

/// DTLS op (low 2 bits): a datagram `len (u16 BE) || bytes` (tags 0 and 1).
pub const DOP_DATAGRAM: u8 = 0;
/// DTLS op: `handle_timeout`.
pub const DOP_TIMEOUT: u8 = 2;
/// DTLS op: send `len (u8) || data` (bit 2 clear) or close (bit 2 set).
pub const DOP_APP: u8 = 3;

/// The virtual time a DTLS op tag advances the clock by: `k^4` ms for `k = tag >> 3`
/// (0 .. 0.9 million ms).
pub fn dtls_advance(tag: u8) -> u64 {
    let k = u64::from(tag >> 3);
    k * k * k * k * 1000
}

/// Appends a datagram op (no time advance) to a DTLS op stream.
pub fn dtls_op_datagram(out: &mut Vec<u8>, dgram: &[u8]) {
    out.push(DOP_DATAGRAM);
    out.extend_from_slice(
        &u16::try_from(dgram.len())
            .expect("a datagram")
            .to_be_bytes(),
    );
    out.extend_from_slice(dgram);
}

/// Appends a send op (no time advance) to a DTLS op stream.
pub fn dtls_op_send(out: &mut Vec<u8>, data: &[u8]) {
    out.push(DOP_APP);
    out.push(u8::try_from(data.len()).expect("at most 255 bytes"));
    out.extend_from_slice(data);
}

/// Appends a close op (no time advance) to a DTLS op stream.
pub fn dtls_op_close(out: &mut Vec<u8>) {
    out.push(DOP_APP | 4);
}

/// `server_dtls` and `client_dtls`: input = config byte (`CFG_*`) || ops. Each op is a tag byte:
/// the clock first advances by [`dtls_advance`]`(tag)`; then `tag & 3`: 0, 1 a datagram
/// `len (u16 BE) || bytes`, 2 `handle_timeout`, 3 send `len (u8) || data` or, with bit 2, close.
/// The server is a session created directly (as after a cookie listener accepted the peer).
pub fn session_dtls(data: &[u8], server: bool) -> Outcome {
    session_dtls_with(data, server, false)
}

/// [`session_dtls`] on a PSK session or (`ecdhe`) an ECDHE-ECDSA one (see
/// [`session_tls_with`]).
pub fn session_dtls_with(data: &[u8], server: bool, ecdhe: bool) -> Outcome {
    let mut inp = Input { data };
    let cfg = inp.byte().unwrap_or(0);
    let transport = Transport::Dtls { mtu: MTU };
    let s = new_session(cfg, transport, server, ecdhe, now_at(0));
    let mut d = Driver::new(s, true, server, ecdhe.then_some(cfg));
    while let Some(tag) = inp.byte() {
        d.now = d.now.saturating_add(dtls_advance(tag));
        match tag & 3 {
            DOP_TIMEOUT => d.timeout(),
            DOP_APP if tag & 4 != 0 => d.close(),
            DOP_APP => {
                let n = inp.byte().unwrap_or(0);
                let data = inp.take(usize::from(n));
                d.send(data);
            }
            _ => {
                let n = inp.u16().unwrap_or(0);
                let bytes = inp.take(usize::from(n));
                d.input(bytes);
            }
        }
    }
    d.finish();
    d.outcome()
}

/// `server_dtls`: see `session_dtls` for the input format.
pub fn server_dtls(data: &[u8]) {
    black_box(session_dtls(data, true));
}

/// `client_dtls`: see `session_dtls` for the input format.
pub fn client_dtls(data: &[u8]) {
    black_box(session_dtls(data, false));
}

/// `server_tls_ecdhe`: [`session_tls`] on an ECDHE-ECDSA server (config byte `CFG_E_*`).
pub fn server_tls_ecdhe(data: &[u8]) {
    black_box(session_tls_with(data, true, true));
}

/// `client_tls_ecdhe`: [`session_tls`] on an ECDHE-ECDSA client (config byte `CFG_E_*`).
pub fn client_tls_ecdhe(data: &[u8]) {
    black_box(session_tls_with(data, false, true));
}

/// `server_dtls_ecdhe`: [`session_dtls`] on an ECDHE-ECDSA server (config byte `CFG_E_*`).
pub fn server_dtls_ecdhe(data: &[u8]) {
    black_box(session_dtls_with(data, true, true));
}

/// `client_dtls_ecdhe`: [`session_dtls`] on an ECDHE-ECDSA client (config byte `CFG_E_*`).
pub fn client_dtls_ecdhe(data: &[u8]) {
    black_box(session_dtls_with(data, false, true));
}

// ---------------------------------------------------------------------------------------------
// dtls_cookie

/// `dtls_cookie`: input = peer length (u8, mod 64) || peer bytes || datagram, through a
/// [`CookieListener`] with secret [`COOKIE_SECRET`].
///
/// A `SendHelloVerify` must be one plaintext DTLS record holding a HelloVerifyRequest with a
/// cookie of `COOKIE_LEN` bytes and the ClientHello's record sequence number; the ClientHello with
/// that cookie inserted must then be accepted from the same peer, under the secret and the next
/// one after a rotation, and refused from another peer and after two rotations.
pub fn dtls_cookie(data: &[u8]) {
    let mut inp = Input { data };
    let plen = usize::from(inp.byte().unwrap_or(0) % 64);
    let peer = inp.take(plen);
    let dgram = inp.data;
    let listener = CookieListener::new(COOKIE_SECRET);
    let decision = listener.handle_datagram(peer, dgram);
    let ListenerDecision::SendHelloVerify(hvr) = decision else {
        black_box(decision);
        return;
    };
    let (h, range) = DtlsRecordHeader::split(&hvr).expect("our HelloVerifyRequest record parses");
    assert_eq!(range.end, hvr.len(), "one record");
    assert_eq!(h.typ, ContentType::Handshake);
    assert_eq!(h.epoch, 0);
    let (ch, _) = DtlsRecordHeader::split(dgram).expect("an answered datagram parses");
    assert_eq!(
        h.seq, ch.seq,
        "the HelloVerifyRequest reuses the record sequence number"
    );
    let mut r = Reader::new(&hvr[range]);
    let (fh, body) = FragmentHeader::read(&mut r).expect("our fragment header parses");
    assert_eq!(r.left(), 0);
    assert_eq!(fh.typ, HandshakeType::HelloVerifyRequest);
    assert_eq!((fh.offset, fh.fragment_length), (0, fh.length));
    let m = HelloVerifyRequest::decode(body).expect("our HelloVerifyRequest decodes");
    assert_eq!(m.cookie.len(), COOKIE_LEN);

    // The ClientHello again, with the cookie.
    let Some(with_cookie) = insert_cookie(dgram, m.cookie) else {
        return;
    };
    assert_eq!(
        listener.handle_datagram(peer, &with_cookie),
        ListenerDecision::Accept,
        "the ClientHello with our cookie is refused"
    );
    let mut other = peer.to_vec();
    other.push(0);
    assert_eq!(
        listener.handle_datagram(&other, &with_cookie),
        ListenerDecision::Drop,
        "a cookie is accepted from another peer"
    );
    let mut rotated = CookieListener::new(COOKIE_SECRET);
    rotated.rotate([8; 32]);
    assert_eq!(
        rotated.handle_datagram(peer, &with_cookie),
        ListenerDecision::Accept,
        "a cookie of the previous secret is refused"
    );
    rotated.rotate([9; 32]);
    assert_eq!(
        rotated.handle_datagram(peer, &with_cookie),
        ListenerDecision::Drop,
        "a cookie two secrets old is accepted"
    );
}

/// `dgram` (a datagram the listener answered: its first record a ClientHello fragment at offset
/// 0 with an empty cookie) with `cookie` inserted and the lengths fixed; `None` if it no longer
/// fits the length fields.
fn insert_cookie(dgram: &[u8], cookie: &[u8]) -> Option<Vec<u8>> {
    let (_, range) = DtlsRecordHeader::split(dgram).ok()?;
    let rec = &dgram[range.clone()];
    let body = &rec[HS_HEADER_LEN..];
    // version (2) || random (32) || session_id (1 + n) || cookie length (1, zero)
    let cookie_at = 2 + 32 + 1 + usize::from(body[34]);
    assert_eq!(
        body[cookie_at], 0,
        "the answered ClientHello had an empty cookie"
    );
    let grow = cookie.len();
    let u24 = |b: &[u8]| usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]);
    let length = u24(&rec[1..4]) + grow;
    let frag_len = u24(&rec[9..12]) + grow;
    let rec_len = rec.len() + grow;
    if length >= 1 << 24 || rec_len > MAX_CIPHERTEXT {
        return None;
    }
    let mut out = Vec::with_capacity(dgram.len() + grow);
    out.extend_from_slice(&dgram[..11]);
    out.extend_from_slice(&u16::try_from(rec_len).ok()?.to_be_bytes());
    out.push(rec[0]);
    out.extend_from_slice(&u32::try_from(length).ok()?.to_be_bytes()[1..]);
    out.extend_from_slice(&rec[4..9]);
    out.extend_from_slice(&u32::try_from(frag_len).ok()?.to_be_bytes()[1..]);
    out.extend_from_slice(&body[..cookie_at]);
    out.push(u8::try_from(grow).ok()?);
    out.extend_from_slice(cookie);
    out.extend_from_slice(&body[cookie_at + 1..]);
    out.extend_from_slice(&dgram[range.end..]);
    Some(out)
}

/// The MEF/MAF wire binding: HTTP requests and responses and every JSON body type (on the input
/// itself and on the body of a decoded request or response). Whatever decodes re-encodes (always:
/// the decoder refuses the header values the encoder refuses), and the re-encoding decodes to
/// the same message; nothing panics.
pub fn binding(data: &[u8]) {
    use m2msec::frameworks::binding::*;
    binding_bodies(data);
    if let Ok(Some((req, used))) = Request::decode(data) {
        binding_bodies(&req.body);
        assert!(used <= data.len());
        // Strict: the decoder refuses what the encoder would refuse.
        let mut wire = Vec::new();
        req.encode(&mut wire).expect("a decoded request re-encodes");
        let (again, n) = Request::decode(&wire)
            .expect("re-encoded request decodes")
            .expect("complete");
        assert_eq!(n, wire.len());
        assert_eq!(again, req);
        let _ = black_box(Route::of(req.method, &req.path));
    }
    if let Ok(Some((resp, used))) = Response::decode(data) {
        binding_bodies(&resp.body);
        assert!(used <= data.len());
        let mut wire = Vec::new();
        resp.encode(&mut wire)
            .expect("a decoded response re-encodes");
        let (again, n) = Response::decode(&wire)
            .expect("re-encoded response decodes")
            .expect("complete");
        assert_eq!(n, wire.len());
        assert_eq!(again, resp);
    }
}

/// Every JSON body type of the binding on `data`: what parses serializes and parses back equal.
fn binding_bodies(data: &[u8]) {
    use m2msec::frameworks::binding::*;
    fn body<T: serde::Serialize + for<'a> serde::Deserialize<'a> + PartialEq + core::fmt::Debug>(
        data: &[u8],
    ) {
        if let Ok(v) = from_body::<T>(data) {
            let again: T = from_body(&to_body(&v).expect("serializes")).expect("round trips");
            assert_eq!(again, v);
        }
    }
    body::<EnrolmentRequest>(data);
    body::<EnrolmentResponse>(data);
    body::<FetchCredentialsResponse>(data);
    body::<ClientRegistrationRequest>(data);
    body::<ClientRegistrationResponse>(data);
    body::<KeyRegistrationRequest>(data);
    body::<KeyRegistrationResponse>(data);
    body::<KeyRetrievalResponse>(data);
    body::<AssociationInfoResponse>(data);
    body::<ErrorBody>(data);
}

// ---------------------------------------------------------------------------------------------
// cert_verify

/// The wall clocks `cert_verify` checks at: within the fixtures' validity, the epoch, after it
/// (2125-04-21, the fixtures still valid), and the end of time.
pub const CERT_NOWS: [u64; 4] = [UNIX_NOW, 0, 4_900_000_000, u64::MAX];

/// The most certificates `cert_verify` splits off the input (above `MAX_CHAIN_LEN`).
const MAX_FUZZ_CHAIN: usize = 8;

/// Appends one certificate to a `cert_verify` chain: `len (u16 BE) || der`.
pub fn cert_chain_entry(out: &mut Vec<u8>, der: &[u8]) {
    out.extend_from_slice(
        &u16::try_from(der.len())
            .expect("a certificate")
            .to_be_bytes(),
    );
    out.extend_from_slice(der);
}

/// The verifier of `cert_verify`'s control byte `ctl`: `ctl & 3` picks the Certificate Name and
/// the Root of Trust (0: `mef.example.com` under the test CA, 1: `m2msec-client` under the test
/// CA, 2: the self-signed rule for the key of [`SELF_SIGNED_SCALAR`], 3: `localhost` under the
/// test CA as `sha-256-128`), `ctl & 4` makes it SAN-only, `ctl & 8` refuses raw public keys.
pub fn cert_verifier_of(ctl: u8) -> OneM2mVerifier {
    let ca = &keys().ca_spki;
    let v = match ctl & 3 {
        0 => OneM2mVerifier::new(SERVER_NAME, rot(ca)),
        1 => OneM2mVerifier::new(CLIENT_NAME, rot(ca)),
        2 => {
            let spki = SigningKey::from_bytes(&SELF_SIGNED_SCALAR)
                .expect("a scalar")
                .spki_der();
            OneM2mVerifier::new(rot(&spki).to_ni_uri(), rot(&spki))
        }
        _ => OneM2mVerifier::new("localhost", RootOfTrust::of_spki(ca, RotHash::Sha256_128)),
    };
    v.san_only(ctl & 4 != 0)
        .accept_raw_public_keys(ctl & 8 == 0)
}

/// The DER SubjectPublicKeyInfo of certificate `der`, if it parses and holds a P-256 key.
fn spki_of_cert(der: &[u8]) -> Option<Vec<u8>> {
    Credential::X509(vec![der.to_vec()]).leaf_spki().ok()
}

/// `cert_verify`: input = control byte || rest. The rest is read three ways:
///
/// * a certificate chain, leaf first: `len (u16 BE) || DER` repeated (at most 8; a short last
///   entry takes what is left);
/// * a raw public key (the whole rest as a DER SubjectPublicKeyInfo);
/// * text (UTF-8, lossily): [`RootOfTrust::from_str`], and [`pem_decode`] of `CERTIFICATE` and
///   `PUBLIC KEY` blocks, whose contents are again a chain and a raw key.
///
/// Each credential goes through [`Credential::leaf_spki`], `verifying_key`, `check_bounds`,
/// [`root_of_trust_of`] and [`OneM2mVerifier::check`] ([`cert_verifier_of`]`(ctl)`, at
/// [`CERT_NOWS`]`[(ctl >> 4) & 3]`). Checks: the key functions agree with each other and with
/// the canonical SubjectPublicKeyInfo ([`spki_of`]); an accepted credential is within bounds,
/// its reported key hash is its leaf key's, its chain ends at a certificate whose key is the
/// Root of Trust, its name matched, `now` is within the leaf's validity; the decision is
/// deterministic and `CertVerifier::verify` agrees; Root of Trust and PEM text round-trip.
pub fn cert_verify(data: &[u8]) {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let mut inp = Input { data: rest };
    let mut chain = Vec::new();
    while !inp.data.is_empty() && chain.len() < MAX_FUZZ_CHAIN {
        let n = inp.u16().unwrap_or(0);
        chain.push(inp.take(usize::from(n)).to_vec());
    }
    credential_checks(ctl, &Credential::X509(chain));
    credential_checks(ctl, &Credential::RawPublicKey(rest.to_vec()));

    let text = String::from_utf8_lossy(rest);
    if let Ok(r) = RootOfTrust::from_str(&text) {
        assert_eq!(r.digest().len(), r.hash().digest_len());
        let ni = r.to_ni_uri();
        assert_eq!(r.to_string(), ni);
        assert_eq!(
            RootOfTrust::from_str(&ni),
            Ok(r),
            "{ni} does not parse back"
        );
        assert_eq!(RootOfTrust::from_digest(r.hash(), r.digest()), Ok(r));
    }
    for label in ["CERTIFICATE", "PUBLIC KEY"] {
        let Ok(blocks) = pem_decode(label, &text) else {
            continue;
        };
        let pem: String = blocks.iter().map(|b| pem_encode(label, b)).collect();
        assert_eq!(
            pem_decode(label, &pem).as_ref(),
            Ok(&blocks),
            "PEM does not round-trip"
        );
        if blocks.is_empty() {
            continue;
        }
        if label == "CERTIFICATE" {
            let chain = blocks.into_iter().take(MAX_FUZZ_CHAIN).collect();
            credential_checks(ctl, &Credential::X509(chain));
        } else {
            credential_checks(ctl, &Credential::RawPublicKey(blocks[0].clone()));
        }
    }
}

fn credential_checks(ctl: u8, cred: &Credential) {
    let spki = cred.leaf_spki();
    match &spki {
        Ok(spki) => {
            let key = verifying_key_from_spki(spki).expect("leaf_spki checked the key");
            assert_eq!(cred.verifying_key().as_ref(), Ok(&key));
            assert_eq!(&spki_of(&key), spki, "a P-256 SPKI that is not canonical");
        }
        Err(e) => assert!(
            cred.verifying_key().is_err(),
            "verifying_key without leaf_spki: {e:?}"
        ),
    }
    let bounds = cred.check_bounds();
    if let Ok(r) = root_of_trust_of(cred) {
        assert_eq!(r.hash(), RotHash::Sha256);
    }

    let verifier = cert_verifier_of(ctl);
    let now = CERT_NOWS[usize::from(ctl >> 4) & 3];
    let result = verifier.check(cred, UnixTime(now));
    assert_eq!(
        verifier.check(cred, UnixTime(now)),
        result,
        "not deterministic"
    );
    let decision = verifier.verify(cred, UnixTime(now));
    match (&result, decision) {
        (Ok(a), CertDecision::Accept(b)) => assert_eq!(a, &b),
        (Err(a), CertDecision::Reject(b)) => assert_eq!(*a, b),
        (r, d) => panic!("check {r:?} but verify {d:?}"),
    }
    let Ok(info) = result else {
        return;
    };
    assert_eq!(bounds, Ok(()), "accepted out of bounds");
    let spki = spki.expect("an accepted credential has a P-256 key");
    assert_eq!(info.spki_sha256, sha256(&spki), "reported key hash");
    let root = *verifier.root_of_trust();
    match cred {
        Credential::RawPublicKey(raw) => {
            assert!(
                ctl & 8 == 0,
                "a raw key accepted by a verifier that refuses them"
            );
            assert!(info.raw_public_key);
            assert_eq!(info.chain_len, 0);
            assert!(
                root.matches_spki(raw),
                "a raw key other than the Root of Trust"
            );
        }
        Credential::X509(chain) => {
            assert!(!info.raw_public_key);
            assert!(
                (1..=chain.len()).contains(&info.chain_len),
                "chain_len {} of {}",
                info.chain_len,
                chain.len()
            );
            let anchor = spki_of_cert(&chain[info.chain_len - 1]).expect("the anchor parses");
            assert!(
                root.matches_spki(&anchor),
                "the chain does not end at the Root of Trust"
            );
            let nb = info.not_before.expect("X.509 validity").0;
            let na = info.not_after.expect("X.509 validity").0;
            assert!(
                nb <= now && now <= na,
                "accepted outside {nb}..={na} at {now}"
            );
            let matched = info.matched_name.as_deref().expect("a matched name");
            let name = verifier.certificate_name();
            if ctl & 3 == 2 {
                assert_eq!(RootOfTrust::from_str(matched), Ok(root));
            } else {
                assert!(
                    matched.eq_ignore_ascii_case(name),
                    "matched {matched:?} for {name:?}"
                );
            }
            if ctl & 4 != 0 {
                assert!(
                    !info.subject_alt_names.is_empty(),
                    "SAN-only matched without a subjectAltName"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// ecdhe_messages

/// The DER SubjectPublicKeyInfo of a P-256 key up to its 65-byte point.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// `ecdhe_messages`: input = selector byte || body. `selector % 8` picks the decoder:
/// 0 `DigitallySigned` (CertificateVerify), 1 `EcdheServerKeyExchange`, 2 `CertificateRequest`,
/// 3 the X.509 Certificate body (`decode_certificate_list`), 4 the raw public key Certificate
/// body, 5 an `ECPoint` body (ClientKeyExchange) and the point itself (`ecc::parse_point`),
/// 6 the extension lists (`parse_u16_list_ext`, `parse_u8_list_ext`, `u16_list`), 7 all.
/// Whatever decodes encodes back to exactly the input; signatures are checked against the
/// fixture keys (ECDSA DER parsing) and points against the SPKI parser.
pub fn ecdhe_messages(data: &[u8]) {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let all = sel % 8 == 7;
    let on = |n: u8| all || sel % 8 == n;
    if on(0) {
        if let Ok(m) = DigitallySigned::decode(body) {
            let mut out = Vec::new();
            m.encode(&mut out)
                .expect("a decoded DigitallySigned encodes");
            assert_eq!(out, body, "DigitallySigned encoding is not canonical");
            signature_checks(m.signature, body);
        }
    }
    if on(1) {
        if let Ok(m) = EcdheServerKeyExchange::decode(body) {
            let mut out = Vec::new();
            m.encode(&mut out)
                .expect("a decoded ServerKeyExchange encodes");
            assert_eq!(out, body, "ServerKeyExchange encoding is not canonical");
            let params = m.params().expect("params encode");
            assert_eq!(params.len(), 4 + m.point.len());
            assert_eq!(
                &body[..params.len()],
                &params[..],
                "params are not the prefix"
            );
            assert_eq!(EcdheServerKeyExchange::decode(&out), Ok(m));
            point_checks(m.point);
            signature_checks(m.signed.signature, &params);
        }
    }
    if on(2) {
        if let Ok(m) = CertificateRequest::decode(body) {
            let mut out = Vec::new();
            m.encode(&mut out)
                .expect("a decoded CertificateRequest encodes");
            assert_eq!(out, body, "CertificateRequest encoding is not canonical");
            assert!(!m.certificate_types.is_empty() && !m.sig_schemes.is_empty());
            assert!(m.authorities.iter().all(|a| !a.is_empty()));
        }
    }
    if on(3) {
        if let Ok(list) = decode_certificate_list(body) {
            let owned: Vec<Vec<u8>> = list.iter().map(|c| c.to_vec()).collect();
            let mut out = Vec::new();
            encode_certificate_list(&owned, &mut out).expect("a decoded list encodes");
            assert_eq!(out, body, "certificate list encoding is not canonical");
            assert!(owned.iter().all(|c| !c.is_empty()));
            // What the handshake hands its verifier.
            let cred = Credential::X509(owned.into_iter().take(MAX_FUZZ_CHAIN).collect());
            credential_checks(0, &cred);
        }
    }
    if on(4) {
        if let Ok(spki) = decode_raw_public_key(body) {
            let mut out = Vec::new();
            encode_raw_public_key(spki, &mut out).expect("a decoded raw key encodes");
            assert_eq!(out, body, "raw public key encoding is not canonical");
            assert!(!spki.is_empty());
            credential_checks(0, &Credential::RawPublicKey(spki.to_vec()));
        }
    }
    if on(5) {
        if let Ok(p) = decode_ec_point(body) {
            assert!(!p.is_empty());
            assert_eq!(usize::from(body[0]), p.len());
            assert_eq!(&body[1..], p, "ECPoint encoding is not canonical");
            point_checks(p);
        }
        point_checks(body);
    }
    if on(6) {
        if let Ok(v) = parse_u16_list_ext(body) {
            let mut out = Vec::new();
            encode_u16_list_ext(&v, &mut out).expect("a decoded u16 list encodes");
            assert_eq!(out, body, "u16 list extension encoding is not canonical");
            assert!(!v.is_empty());
        }
        if let Ok(v) = parse_u8_list_ext(body) {
            let mut out = Vec::new();
            encode_u8_list_ext(v, &mut out).expect("a decoded u8 list encodes");
            assert_eq!(out, body, "u8 list extension encoding is not canonical");
        }
        if let Ok(v) = u16_list(body) {
            assert_eq!(v.len() * 2, body.len());
            let out: Vec<u8> = v.iter().flat_map(|x| x.to_be_bytes()).collect();
            assert_eq!(out, body);
        }
    }
}

/// An ECPoint: `ecc::parse_point` and the SubjectPublicKeyInfo parser agree on it.
fn point_checks(point: &[u8]) {
    let parsed = ecc::parse_point(point);
    if parsed.is_some() {
        assert_eq!(point.len(), ecc::POINT_LEN);
        assert_eq!(point[0], 4);
    }
    let mut spki = P256_SPKI_PREFIX.to_vec();
    spki.extend_from_slice(point);
    let from_spki = verifying_key_from_spki(&spki);
    if point.len() == ecc::POINT_LEN {
        assert_eq!(
            parsed.is_some(),
            from_spki.is_ok(),
            "ecc::parse_point and verifying_key_from_spki disagree"
        );
        if let Ok(k) = &from_spki {
            assert_eq!(spki_of(k), spki, "point does not round-trip");
        }
    } else {
        assert!(parsed.is_none() && from_spki.is_err());
    }
}

/// A DER ECDSA signature from the wire: verification under the fixture keys never panics and
/// the message and prehash forms agree.
fn signature_checks(sig: &[u8], message: &[u8]) {
    let k = keys();
    for key in [&k.server, &k.client] {
        let vk = key.verifying_key();
        let a = ecc::verify(&vk, message, sig);
        let b = ecc::verify_digest(&vk, &sha256(message), sig);
        assert_eq!(a, b, "message and digest verification disagree");
        black_box(a);
    }
}

// ---------------------------------------------------------------------------------------------
// gba

use m2msec::gba::digest::{
    base64_decode, base64_encode, digest_response, split_nonce, AuthenticationInfo,
    BootstrappingInfo, Challenge, Credentials, DigestError, DigestInput, PendingChallenge, Qop,
    UbClient, UbRequest, UbResponse, UsimChallenge, UsimOutcome, Verdict, MAX_CHALLENGES,
    MAX_HEADER_VALUE,
};
use m2msec::gba::kdf::{ks_naf, parse_psk_identity, psk_identity, BTid, GbaPrefix, NafId};
use m2msec::gba::usim::{generate_vector, AmfPolicy, SqnProfile, Usim, UsimFailure};
use m2msec::gba::{AuthVector, Ks};

/// Milenage test set 1 (TS 35.208 4.3.1): K.
pub const GBA_K: [u8; 16] = [
    0x46, 0x5b, 0x5c, 0xe8, 0xb1, 0x99, 0xb4, 0x9f, 0xaa, 0x5f, 0x0a, 0x2e, 0xe2, 0x38, 0xa6, 0xbc,
];
/// Milenage test set 1: OPc.
pub const GBA_OPC: [u8; 16] = [
    0xcd, 0x63, 0xcb, 0x71, 0x95, 0x4a, 0x9f, 0x4e, 0x48, 0xa5, 0x99, 0x4e, 0x37, 0xa0, 0x2b, 0xaf,
];
/// Milenage test set 1: RAND.
pub const GBA_RAND: [u8; 16] = [
    0x23, 0x55, 0x3c, 0xbe, 0x96, 0x37, 0xa8, 0x9d, 0x21, 0x8a, 0xe6, 0x4d, 0xae, 0x47, 0xbf, 0x35,
];
/// Milenage test set 1: SQN.
pub const GBA_SQN: [u8; 6] = [0xff, 0x9b, 0xb4, 0xd0, 0xb6, 0x07];
/// Milenage test set 1: AMF.
pub const GBA_AMF: [u8; 2] = [0xb9, 0xb9];
/// The IMPI of the fixed challenge (as in `core/tests/gba_digest.rs`).
pub const GBA_IMPI: &str = "user@ims.mnc001.mcc001.3gppnetwork.org";
/// The BSF FQDN (realm) of the fixed challenge.
pub const GBA_BSF: &str = "bsf.home1.net";
/// The BSF's nonce key.
pub const GBA_NONCE_KEY: &[u8] = b"bsf nonce key for tests, 32 byte";
/// The request-target of Ub.
pub const GBA_URI: &str = "/";
/// The latest lifetime `BootstrappingInfo::to_xml` can write (9999-12-31T23:59:59Z).
const GBA_MAX_LIFETIME: u64 = 253_402_300_799;

/// The Milenage set 1 vector behind the fixed challenge.
pub fn gba_vector() -> AuthVector {
    generate_vector(&GBA_K, &GBA_OPC, &GBA_SQN, &GBA_AMF, &GBA_RAND)
}

/// The fixed challenge the BSF sent ([`gba_vector`], no `opaque`).
pub fn gba_pending() -> PendingChallenge {
    PendingChallenge::new(GBA_NONCE_KEY, GBA_IMPI, GBA_BSF, gba_vector()).expect("valid challenge")
}

/// The USIM of set 1 (no "not too far ahead" limit: set 1's SQN is far from zero).
pub fn gba_usim() -> Usim {
    let profile = SqnProfile {
        delta: None,
        ..SqnProfile::default()
    };
    Usim::with_profile(&GBA_K, &GBA_OPC, profile, AmfPolicy::Any)
}

/// `gba` selector: `Challenge::parse`.
pub const GBA_CHALLENGE: u8 = 0;
/// `gba` selector: `Credentials::parse`.
pub const GBA_CREDENTIALS: u8 = 1;
/// `gba` selector: `split_nonce`, `base64_decode` / `base64_encode`.
pub const GBA_NONCE: u8 = 2;
/// `gba` selector: `BootstrappingInfo::from_xml`.
pub const GBA_XML: u8 = 3;
/// `gba` selector: `UbRequest::decode`.
pub const GBA_UB_REQUEST: u8 = 4;
/// `gba` selector: `UbResponse::decode`.
pub const GBA_UB_RESPONSE: u8 = 5;
/// `gba` selector: `BTid::parse`, `parse_psk_identity`.
pub const GBA_BTID: u8 = 6;
/// `gba` selector: `NafId` (5 bytes Ua protocol id, then the FQDN).
pub const GBA_NAF_ID: u8 = 7;
/// `gba` selector: `PendingChallenge::verify` of parsed credentials against [`gba_pending`].
pub const GBA_VERIFY: u8 = 8;
/// `gba` selector: a `UbClient` driven by ops (see [`gba_client`]).
pub const GBA_CLIENT: u8 = 9;
/// `gba` selector: `AuthenticationInfo::parse`.
pub const GBA_AUTH_INFO: u8 = 10;
/// How many `gba` selectors there are (the selector byte is taken modulo this).
pub const GBA_SELECTORS: u8 = 11;

/// `gba`: input = selector byte || body; `selector % GBA_SELECTORS` picks one of the `GBA_*`
/// parsers.
/// Whatever parses re-formats and parses back equal (unless the re-formatted text exceeds the
/// parser's size limit); `verify` agrees with a reference model and never says `Verified`
/// without the response computed from XRES; the `UbClient` keeps its state machine.
pub fn gba(data: &[u8]) {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let text = std::str::from_utf8(body).ok();
    match sel % GBA_SELECTORS {
        GBA_CHALLENGE => {
            if let Some(c) = text.and_then(|t| Challenge::parse(t).ok()) {
                gba_challenge_round_trip(&c);
            }
        }
        GBA_CREDENTIALS => {
            if let Some(c) = text.and_then(|t| Credentials::parse(t).ok()) {
                gba_credentials_round_trip(&c);
            }
        }
        GBA_NONCE => {
            if let Some(t) = text {
                gba_nonce(t);
            }
            let e = base64_encode(body);
            assert_eq!(
                base64_decode(&e).as_deref(),
                Some(body),
                "base64 round trip"
            );
        }
        GBA_XML => {
            if let Ok(info) = BootstrappingInfo::from_xml(body) {
                gba_info_round_trip(&info);
            }
        }
        GBA_UB_REQUEST => gba_ub_request(body),
        GBA_UB_RESPONSE => {
            gba_ub_response(body);
        }
        GBA_BTID => {
            if let Some(t) = text {
                gba_btid(t);
            }
        }
        GBA_NAF_ID => gba_naf_id(body),
        GBA_VERIFY => {
            if let Some(c) = text.and_then(|t| Credentials::parse(t).ok()) {
                gba_verify(&gba_pending(), &c);
            }
        }
        GBA_CLIENT => {
            gba_client(body);
        }
        _ => {
            gba_auth_info(body);
        }
    }
}

fn gba_challenge_round_trip(c: &Challenge) {
    assert!(c.realm.len() <= 1024 && c.nonce.len() <= 1024);
    // A parsed value may grow when formatted; the formatter refuses what the parser would.
    let h = match c.to_header() {
        Ok(h) => h,
        Err(DigestError::TooLong) => return,
        Err(e) => panic!("a parsed challenge does not format: {e:?} {c:?}"),
    };
    assert!(h.len() <= MAX_HEADER_VALUE);
    assert_eq!(
        Challenge::parse(&h).as_ref(),
        Ok(c),
        "Challenge round trip: {h:?}"
    );
}

fn gba_credentials_round_trip(c: &Credentials) {
    assert_eq!(c.qop.is_some(), c.nc.is_some());
    assert_eq!(c.qop.is_some(), c.cnonce.is_some());
    let h = match c.to_header() {
        Ok(h) => h,
        Err(DigestError::TooLong) => return,
        Err(e) => panic!("parsed credentials do not format: {e:?} {c:?}"),
    };
    assert!(h.len() <= MAX_HEADER_VALUE);
    assert_eq!(
        Credentials::parse(&h).as_ref(),
        Ok(c),
        "Credentials round trip: {h:?}"
    );
}

fn gba_nonce(t: &str) {
    let decoded = base64_decode(t);
    if let Some(v) = &decoded {
        assert_eq!(base64_encode(v), t, "base64 accepted a non-canonical text");
    }
    if let Ok(UsimChallenge { rand, autn }) = split_nonce(t) {
        let v = decoded.expect("split_nonce accepted what base64_decode refuses");
        assert!(
            (32..=32 + 64).contains(&v.len()),
            "nonce of {} bytes",
            v.len()
        );
        assert_eq!(rand[..], v[..16]);
        assert_eq!(autn[..], v[16..32]);
    }
}

fn gba_info_round_trip(info: &BootstrappingInfo) {
    // The parser refuses lifetimes the formatter could not write back.
    assert!(info.lifetime.0 <= GBA_MAX_LIFETIME);
    let x = info
        .to_xml()
        .unwrap_or_else(|e| panic!("parsed BootstrappingInfo does not format: {e:?} {info:?}"));
    assert_eq!(
        BootstrappingInfo::from_xml(x.as_bytes()).as_ref(),
        Ok(info),
        "BootstrappingInfo round trip"
    );
}

fn gba_ub_request(body: &[u8]) {
    let Ok(Some((req, used))) = UbRequest::decode(body) else {
        return;
    };
    assert!(used <= body.len());
    gba_credentials_round_trip(&req.authorization);
    let mut wire = Vec::new();
    if req.encode(&mut wire).is_err() {
        return;
    }
    match UbRequest::decode(&wire) {
        Ok(Some((again, n))) => {
            assert_eq!(again, req, "UbRequest round trip");
            assert_eq!(n, wire.len());
        }
        Ok(None) => panic!("re-encoded UbRequest incomplete"),
        Err(e) => assert!(
            e == DigestError::TooLong,
            "re-encoded UbRequest does not decode: {e:?}"
        ),
    }
}

fn gba_ub_response(body: &[u8]) -> Option<UbResponse> {
    let Ok(Some((resp, used))) = UbResponse::decode(body) else {
        return None;
    };
    assert!(used <= body.len());
    match &resp {
        UbResponse::Unauthorized(c) => gba_challenge_round_trip(c),
        UbResponse::Bootstrapped(info) => gba_info_round_trip(info),
        UbResponse::Status(code) => assert!(*code != 200 && *code != 401),
    }
    let mut wire = Vec::new();
    if resp.encode(&mut wire).is_ok() {
        match UbResponse::decode(&wire) {
            Ok(Some((again, n))) => {
                assert_eq!(again, resp, "UbResponse round trip");
                assert_eq!(n, wire.len());
            }
            Ok(None) => panic!("re-encoded UbResponse incomplete"),
            Err(e) => assert!(
                e == DigestError::TooLong,
                "re-encoded UbResponse does not decode: {e:?}"
            ),
        }
    }
    // The client's view of the same bytes: a 200's Authentication-Info (and the raw body).
    let reply = UbResponse::decode_reply(body)
        .expect("decode_reply agrees with decode")
        .expect("complete");
    assert_eq!(reply.response, resp);
    assert_eq!(reply.used, used);
    assert!(reply.body.len() <= used);
    if let Some(a) = &reply.authentication_info {
        assert!(matches!(resp, UbResponse::Bootstrapped(_)));
        if let Ok(h) = a.to_header() {
            assert_eq!(gba_auth_info(h.as_bytes()).as_ref(), Some(a));
        }
        let mut wire = Vec::new();
        if resp.encode_with(Some(a), &mut wire).is_ok() {
            match UbResponse::decode_reply(&wire) {
                Ok(Some(again)) => {
                    assert_eq!(again.response, resp, "UbResponse round trip");
                    assert_eq!(again.authentication_info.as_ref(), Some(a));
                    assert_eq!(again.used, wire.len());
                }
                Ok(None) => panic!("re-encoded 200 incomplete"),
                Err(e) => assert!(
                    e == DigestError::TooLong,
                    "re-encoded 200 does not decode: {e:?}"
                ),
            }
        }
    }
    Some(resp)
}

fn gba_btid(t: &str) {
    if let Ok(b) = BTid::parse(t) {
        assert_eq!(b.as_str(), t);
        assert_eq!(b.to_string(), t);
        assert_eq!(BTid::parse(b.as_str()).as_ref(), Ok(&b));
        let fqdn = b.bsf_fqdn();
        assert!(t.ends_with(&format!("@{fqdn}")));
        if let Some(rand) = b.rand() {
            assert_eq!(BTid::new(&rand, fqdn).as_ref(), Ok(&b), "BTid::new");
        }
        for p in [GbaPrefix::Me, GbaPrefix::Uicc] {
            let id = psk_identity(p, &b);
            assert_eq!(parse_psk_identity(&id), Ok((Some(p), b.clone())));
        }
        assert_eq!(parse_psk_identity(t), Ok((None, b.clone())));
    }
    if let Ok((p, b)) = parse_psk_identity(t) {
        match p {
            None => assert_eq!(b.as_str(), t),
            Some(p) => {
                let semi = psk_identity(p, &b);
                let dot = format!("{}.{}", p.as_str(), b.as_str());
                assert!(t == semi || t == dot, "psk identity {t:?} is neither form");
            }
        }
    }
}

fn gba_naf_id(body: &[u8]) {
    let Some((ua, fqdn)) = body.split_first_chunk::<5>() else {
        return;
    };
    let Ok(fqdn) = std::str::from_utf8(fqdn) else {
        return;
    };
    let Ok(id) = NafId::new(fqdn, *ua) else {
        assert!(NafId::tls_psk(fqdn, 0x00a8).is_err());
        return;
    };
    assert_eq!(id.fqdn(), fqdn);
    assert_eq!(id.ua_protocol_id(), *ua);
    assert_eq!(id.to_bytes(), [fqdn.as_bytes(), &ua[..]].concat());
    if ua[..3] == [1, 0, 1] {
        let suite = u16::from_be_bytes([ua[3], ua[4]]);
        assert_eq!(NafId::tls_psk(fqdn, suite).as_ref(), Ok(&id));
    }
    let ks = Ks([3; 32]);
    black_box(ks_naf(&ks, &GBA_RAND, GBA_IMPI, &id).is_ok());
}

/// The `response` of `GET /` with an empty body for the fixed challenge.
fn gba_expected(pending: &PendingChallenge, password: &[u8], nc: u32, cnonce: &str) -> String {
    digest_response(&DigestInput {
        username: GBA_IMPI,
        realm: GBA_BSF,
        password,
        method: "GET",
        uri: GBA_URI,
        nonce: pending.nonce(),
        qop: Some((Qop::AuthInt, nc, cnonce)),
        body: b"",
    })
}

/// `verify` of `creds` (for `GET /`, empty body) against a reference model; returns the verdict.
fn gba_verify(pending: &PendingChallenge, creds: &Credentials) -> Verdict {
    let v = pending.verify("GET", GBA_URI, b"", creds);
    let well = creds.username == GBA_IMPI
        && creds.realm == GBA_BSF
        && creds.nonce == pending.nonce()
        && creds.uri == GBA_URI
        && creds.opaque.is_none()
        && creds.algorithm
        && creds.qop == Some(Qop::AuthInt)
        && creds.response.len() == 32;
    if !well {
        assert!(matches!(v, Verdict::Malformed(_)), "{v:?} for {creds:?}");
        return v;
    }
    let (nc, cnonce) = (
        creds.nc.expect("nc"),
        creds.cnonce.as_deref().expect("cnonce"),
    );
    let with_xres = creds.response == gba_expected(pending, &gba_vector().xres, nc, cnonce);
    let with_empty = creds.response == gba_expected(pending, &[], nc, cnonce);
    let want = match (creds.auts, with_xres, with_empty) {
        (Some(auts), _, true) => Verdict::Resync {
            rand: GBA_RAND,
            auts,
        },
        (Some(_), _, false) => Verdict::BadResponse,
        (None, true, _) => Verdict::Verified,
        (None, false, true) => Verdict::NetworkAuthFailed,
        (None, false, false) => Verdict::BadResponse,
    };
    assert_eq!(v, want, "verify disagrees with the model for {creds:?}");
    v
}

/// Reads `len (u16 BE) || bytes` from the front of `data`.
fn gba_chunk<'a>(data: &mut &'a [u8]) -> &'a [u8] {
    let Some((len, rest)) = data.split_first_chunk::<2>() else {
        *data = &[];
        return &[];
    };
    let n = usize::from(u16::from_be_bytes(*len)).min(rest.len());
    let (c, r) = rest.split_at(n);
    *data = r;
    c
}

/// `gba` client op: `UbClient::start`.
pub const GBA_OP_START: u8 = 0;
/// `gba` client op: `len (u16 BE) || an HTTP response` through `UbResponse::decode_reply`; a
/// 401's challenge goes to `on_challenge`, a 200's `Authentication-Info` and body (as received)
/// to `on_bootstrapped`.
pub const GBA_OP_RESPONSE: u8 = 1;
/// `gba` client op: `m` then `answer`: `m % 3` = 0 the USIM of set 1 on the last challenge,
/// 1 a MAC failure, 2 a sync failure with AUTS `[m; 14]`; cnonce `[m; 16]`.
pub const GBA_OP_ANSWER: u8 = 2;
/// `gba` client op: `len (u16 BE) || XML` to `on_bootstrapped(None, ..)` (a 200 without
/// `Authentication-Info`: always refused).
pub const GBA_OP_INFO: u8 = 3;
/// `gba` client op: `m` then `len (u16 BE) || body`: the BSF's 200 for the last RES answered.
/// Its `Authentication-Info` is the BSF's ([`PendingChallenge::authentication_info`] when the
/// challenge answered is [`gba_pending`] or [`gba_pending_fresh`], else the reference model's)
/// over the body, then altered as `m % 8` says ([`GBA_TAMPER_NONE`] ...). With `m & 0x80` and a
/// body that parses, the 200 goes through HTTP (`UbResponse::encode_with`, `decode_reply`; the
/// body is then `BootstrappingInfo::to_xml` of the parsed one), else straight to
/// `on_bootstrapped`.
pub const GBA_OP_BSF_OK: u8 = 4;
/// `gba` client op: `len (u16 BE) || an Authentication-Info value` then `len (u16 BE) || body`:
/// the parsed value (a fuzzed `rspauth`) and the body to `on_bootstrapped`.
pub const GBA_OP_AUTH_INFO: u8 = 5;
/// How many client ops there are (the tag is taken modulo this).
pub const GBA_OPS: u8 = 6;

/// [`GBA_OP_BSF_OK`] alteration (`m % 8`): none, the BSF's value as computed.
pub const GBA_TAMPER_NONE: u8 = 0;
/// [`GBA_OP_BSF_OK`] alteration: one hex digit of `rspauth` changed (the digit `(m >> 3) % 32`).
pub const GBA_TAMPER_RSPAUTH: u8 = 1;
/// [`GBA_OP_BSF_OK`] alteration: no `Authentication-Info` at all.
pub const GBA_TAMPER_ABSENT: u8 = 2;
/// [`GBA_OP_BSF_OK`] alteration: `qop`, `nc` and `cnonce` dropped.
pub const GBA_TAMPER_NO_QOP: u8 = 3;
/// [`GBA_OP_BSF_OK`] alteration: `nc` 2.
pub const GBA_TAMPER_NC: u8 = 4;
/// [`GBA_OP_BSF_OK`] alteration: another `cnonce`.
pub const GBA_TAMPER_CNONCE: u8 = 5;
/// [`GBA_OP_BSF_OK`] alteration: the other `qop` (`auth` for `auth-int` and back).
pub const GBA_TAMPER_QOP: u8 = 6;
/// [`GBA_OP_BSF_OK`] alteration: a `nextnonce` added (not used on Ub: still accepted).
pub const GBA_TAMPER_NEXTNONCE: u8 = 7;

/// The RAND of the challenge after a resynchronisation ([`gba_pending_fresh`]).
pub const GBA_FRESH_RAND: [u8; 16] = [0x5a; 16];
/// Its SQN: above set 1's, so the USIM of [`gba_usim`] accepts it after set 1.
pub const GBA_FRESH_SQN: [u8; 6] = [0xff, 0x9b, 0xb4, 0xd0, 0xb6, 0x27];
/// Its `opaque`.
pub const GBA_FRESH_OPAQUE: &str = "5ccc069c403ebaf9f0171e9517f40e41";

/// The challenge a BSF sends after a resynchronisation: set 1's K and OPc with
/// [`GBA_FRESH_SQN`], [`GBA_FRESH_RAND`] and [`GBA_FRESH_OPAQUE`].
pub fn gba_pending_fresh() -> PendingChallenge {
    let v = generate_vector(&GBA_K, &GBA_OPC, &GBA_FRESH_SQN, &GBA_AMF, &GBA_FRESH_RAND);
    PendingChallenge::new(GBA_NONCE_KEY, GBA_IMPI, GBA_BSF, v)
        .and_then(|p| p.with_opaque(GBA_FRESH_OPAQUE))
        .expect("valid challenge")
}

/// The last RES answer, as the harness saw it.
struct GbaSent {
    /// The credentials sent.
    creds: Credentials,
    /// RES.
    res: Vec<u8>,
    /// RAND of the challenge answered.
    rand: [u8; 16],
    /// The BSF's pending challenge, when the challenge answered is one the harness knows.
    pending: Option<PendingChallenge>,
}

/// The reference `rspauth` (RFC 2617 3.2.3): the Digest of the request's parameters with an
/// empty method and, for `auth-int`, the hash of the 200's `body`.
fn gba_model_rspauth(creds: &Credentials, res: &[u8], body: &[u8]) -> String {
    let qop = match (creds.qop, creds.nc, creds.cnonce.as_deref()) {
        (Some(q), Some(nc), Some(cn)) => Some((q, nc, cn)),
        _ => None,
    };
    digest_response(&DigestInput {
        username: &creds.username,
        realm: &creds.realm,
        password: res,
        method: "",
        uri: &creds.uri,
        nonce: &creds.nonce,
        qop,
        body,
    })
}

/// The `Authentication-Info` the BSF sends with `body` for the answer `sent`: the BSF's own
/// computation when the harness knows the challenge (checked against the model), else the
/// model's.
fn gba_bsf_auth_info(sent: &GbaSent, body: &[u8]) -> AuthenticationInfo {
    let rspauth = gba_model_rspauth(&sent.creds, &sent.res, body);
    if let Some(p) = &sent.pending {
        let a = p
            .authentication_info("GET", GBA_URI, b"", &sent.creds, body)
            .expect("a verified answer gets an Authentication-Info");
        assert_eq!(a.rspauth, rspauth, "the BSF's rspauth is not the model's");
        assert_eq!(
            (a.qop, a.nc, a.cnonce.as_deref()),
            (sent.creds.qop, sent.creds.nc, sent.creds.cnonce.as_deref()),
            "the BSF does not echo the request's qop, nc, cnonce"
        );
        return a;
    }
    AuthenticationInfo {
        qop: sent.creds.qop,
        rspauth,
        cnonce: sent.creds.cnonce.clone(),
        nc: sent.creds.nc,
        nextnonce: None,
    }
}

/// `a` altered as `m % 8` says (`GBA_TAMPER_*`); `None` for [`GBA_TAMPER_ABSENT`].
fn gba_tamper(mut a: AuthenticationInfo, m: u8) -> Option<AuthenticationInfo> {
    match m % 8 {
        GBA_TAMPER_RSPAUTH => {
            let i = usize::from(m >> 3) % 32;
            let mut digits: Vec<u8> = a.rspauth.into_bytes();
            if let Some(d) = digits.get_mut(i) {
                *d = if *d == b'f' {
                    b'0'
                } else if *d == b'9' {
                    b'a'
                } else {
                    *d + 1
                };
            }
            a.rspauth = String::from_utf8(digits).expect("hex digits");
        }
        GBA_TAMPER_ABSENT => return None,
        GBA_TAMPER_NO_QOP => {
            a.qop = None;
            a.nc = None;
            a.cnonce = None;
        }
        GBA_TAMPER_NC => a.nc = a.nc.map(|n| n.wrapping_add(1)),
        GBA_TAMPER_CNONCE => {
            a.cnonce = a.cnonce.map(|c| format!("{c}0"));
        }
        GBA_TAMPER_QOP => {
            a.qop = a.qop.map(|q| match q {
                Qop::AuthInt => Qop::Auth,
                Qop::Auth => Qop::AuthInt,
            });
        }
        GBA_TAMPER_NEXTNONCE => a.nextnonce = Some("bmV4dA==".into()),
        _ => {}
    }
    Some(a)
}

/// The harness's view of the client.
struct GbaClientRun {
    client: UbClient,
    /// The run is over (MAC failure, a 200 accepted, or an `rspauth` refused).
    done: bool,
    /// The last RES answer, while the client waits for the 200.
    sent: Option<GbaSent>,
    /// 200s accepted.
    bootstrapped: u32,
}

impl GbaClientRun {
    /// `on_bootstrapped(auth, body)`, checked against the model: refused out of sequence;
    /// without `Authentication-Info` `MissingRspauth`; unless the echoed `qop`/`nc`/`cnonce`
    /// are the request's and `rspauth` is the model's, `BadRspauth` (both end the run); else
    /// the body's `BootstrappingInfo` if its B-TID carries the RAND answered.
    fn bootstrapped(&mut self, auth: Option<&AuthenticationInfo>, body: &[u8]) {
        let r = self.client.on_bootstrapped(auth, body);
        let Some(sent) = self.sent.as_ref().filter(|_| !self.done) else {
            assert!(
                matches!(r, Err(DigestError::State(_))),
                "{r:?} without a RES answered"
            );
            return;
        };
        let want = match auth {
            None => Err(DigestError::MissingRspauth),
            Some(a) => {
                let c = &sent.creds;
                let echoed = match c.qop {
                    Some(q) => a.qop == Some(q) && a.nc == c.nc && a.cnonce == c.cnonce,
                    None => a.qop.is_none() && a.nc.is_none() && a.cnonce.is_none(),
                };
                if !echoed || a.rspauth != gba_model_rspauth(c, &sent.res, body) {
                    Err(DigestError::BadRspauth)
                } else {
                    BootstrappingInfo::from_xml(body).and_then(|info| {
                        let rand = BTid::parse(&info.btid).ok().and_then(|b| b.rand());
                        if rand == Some(sent.rand) {
                            Ok(info)
                        } else {
                            Err(DigestError::BadValue("btid"))
                        }
                    })
                }
            }
        };
        assert_eq!(r, want, "on_bootstrapped disagrees with the model");
        if matches!(
            r,
            Ok(_) | Err(DigestError::MissingRspauth | DigestError::BadRspauth)
        ) {
            self.done = true;
            self.sent = None;
        }
        if r.is_ok() {
            self.bootstrapped += 1;
            assert_eq!(self.bootstrapped, 1, "two 200s accepted in one run");
        }
    }
}

/// The `GBA_CLIENT` body: ops (`GBA_OP_*`, the tag `% GBA_OPS`) on a `UbClient` for
/// [`GBA_IMPI`] at [`GBA_BSF`] with the USIM of set 1. Answers to the known challenges
/// ([`gba_pending`], [`gba_pending_fresh`]) are checked by `verify`: RES → `Verified`, MAC
/// failure → `NetworkAuthFailed`, sync failure → `Resync`; every 200 by the model of
/// [`GbaClientRun::bootstrapped`]. Returns how many 200s the client accepted (0 or 1).
pub fn gba_client(mut data: &[u8]) -> u32 {
    let known = [gba_pending(), gba_pending_fresh()];
    let fixed = known[0].challenge();
    let mut usim = gba_usim();
    let mut run = GbaClientRun {
        client: UbClient::new(GBA_IMPI, GBA_BSF, GBA_URI).expect("valid client"),
        done: false,
        sent: None,
        bootstrapped: 0,
    };
    let mut challenges = 0u8;
    let mut last: Option<(Challenge, UsimChallenge)> = None;
    let mut ops = 0;
    while let Some((&tag, rest)) = data.split_first() {
        data = rest;
        ops += 1;
        if ops > 64 {
            break;
        }
        match tag % GBA_OPS {
            GBA_OP_START => {
                if let Ok(c) = run.client.start() {
                    assert_eq!(c, Credentials::initial(GBA_IMPI, GBA_BSF, GBA_URI));
                    assert!(c.is_initial());
                    gba_credentials_round_trip(&c);
                }
            }
            GBA_OP_RESPONSE => {
                let chunk = gba_chunk(&mut data);
                if gba_ub_response(chunk).is_none() {
                    continue;
                }
                let reply = UbResponse::decode_reply(chunk)
                    .expect("decode_reply agrees with decode")
                    .expect("complete");
                match &reply.response {
                    UbResponse::Unauthorized(c) => {
                        if let Ok(u) = run.client.on_challenge(c) {
                            assert!(!run.done, "a challenge accepted after the run ended");
                            assert!(run.sent.is_none(), "a challenge accepted after a RES");
                            assert_eq!(split_nonce(&c.nonce).as_ref(), Ok(&u));
                            assert_eq!(c.realm, GBA_BSF);
                            challenges += 1;
                            assert!(challenges <= MAX_CHALLENGES, "too many challenges");
                            last = Some((c.clone(), u));
                        }
                    }
                    UbResponse::Bootstrapped(_) => {
                        run.bootstrapped(reply.authentication_info.as_ref(), reply.body);
                    }
                    UbResponse::Status(_) => {}
                }
            }
            GBA_OP_ANSWER => {
                let Some((&m, rest)) = data.split_first() else {
                    break;
                };
                data = rest;
                let auts = [m; 14];
                let mut res = None;
                let outcome = match (m % 3, &last) {
                    (0, Some((_, u))) => match usim.authenticate(&u.rand, &u.autn) {
                        Ok(r) => {
                            res = Some(r.res);
                            None
                        }
                        Err(UsimFailure::SyncFailure { auts }) => {
                            Some(UsimOutcome::SyncFailure { auts })
                        }
                        Err(_) => Some(UsimOutcome::MacFailure),
                    },
                    (2, _) => Some(UsimOutcome::SyncFailure { auts }),
                    _ => Some(UsimOutcome::MacFailure),
                };
                let outcome = match (&res, outcome) {
                    (Some(r), _) => UsimOutcome::Res(r),
                    (None, Some(o)) => o,
                    (None, None) => unreachable!(),
                };
                let Ok(creds) = run.client.answer(outcome, &[m; 16], "GET", b"") else {
                    continue;
                };
                let (c, u) = last.clone().expect("answered without a challenge");
                assert!(!run.done, "answered after the run ended");
                assert_eq!(creds.username, GBA_IMPI);
                assert_eq!(creds.realm, GBA_BSF);
                assert_eq!(creds.uri, GBA_URI);
                assert_eq!(creds.nonce, c.nonce);
                assert_eq!(creds.opaque, c.opaque);
                gba_credentials_round_trip(&creds);
                let parsed = Credentials::parse(&creds.to_header().expect("answer formats"))
                    .expect("answer parses");
                assert_eq!(parsed, creds);
                let pending = known.iter().find(|p| p.challenge() == c);
                if let Some(p) = pending {
                    let v = if c == fixed {
                        gba_verify(p, &parsed)
                    } else {
                        p.verify("GET", GBA_URI, b"", &parsed)
                    };
                    match outcome {
                        UsimOutcome::Res(_) => assert_eq!(v, Verdict::Verified),
                        UsimOutcome::MacFailure => assert_eq!(v, Verdict::NetworkAuthFailed),
                        UsimOutcome::SyncFailure { auts } => assert_eq!(
                            v,
                            Verdict::Resync {
                                rand: p.rand(),
                                auts
                            }
                        ),
                    }
                }
                run.sent = match outcome {
                    UsimOutcome::Res(r) => Some(GbaSent {
                        creds,
                        res: r.to_vec(),
                        rand: u.rand,
                        pending: pending.cloned(),
                    }),
                    UsimOutcome::MacFailure => {
                        run.done = true;
                        None
                    }
                    UsimOutcome::SyncFailure { .. } => None,
                };
                last = None;
            }
            GBA_OP_INFO => {
                let chunk = gba_chunk(&mut data);
                let before = run.sent.is_some() && !run.done;
                let r = run.client.on_bootstrapped(None, chunk);
                if before {
                    assert_eq!(r, Err(DigestError::MissingRspauth));
                    run.done = true;
                    run.sent = None;
                } else {
                    assert!(matches!(r, Err(DigestError::State(_))), "{r:?}");
                }
            }
            GBA_OP_BSF_OK => {
                let Some((&m, rest)) = data.split_first() else {
                    break;
                };
                data = rest;
                let mut body = gba_chunk(&mut data).to_vec();
                let info = BootstrappingInfo::from_xml(&body).ok();
                let http = m & 0x80 != 0 && info.is_some();
                if http {
                    let xml = info.as_ref().and_then(|i| i.to_xml().ok());
                    body = xml.map(String::into_bytes).unwrap_or_default();
                }
                // Without a RES answered there is no BSF value: a well-formed stranger's.
                let auth = match &run.sent {
                    Some(sent) => gba_bsf_auth_info(sent, &body),
                    None => AuthenticationInfo {
                        qop: Some(Qop::AuthInt),
                        rspauth: "0".repeat(32),
                        cnonce: Some("0".repeat(32)),
                        nc: Some(1),
                        nextnonce: None,
                    },
                };
                let auth = gba_tamper(auth, m);
                match info.filter(|_| http) {
                    Some(info) => {
                        let resp = UbResponse::Bootstrapped(info);
                        let mut wire = Vec::new();
                        resp.encode_with(auth.as_ref(), &mut wire)
                            .expect("a parsed BootstrappingInfo encodes");
                        let reply = UbResponse::decode_reply(&wire)
                            .expect("an encoded 200 decodes")
                            .expect("complete");
                        assert_eq!(reply.response, resp);
                        assert_eq!(reply.authentication_info, auth);
                        assert_eq!(reply.body, &body[..]);
                        assert_eq!(reply.used, wire.len());
                        run.bootstrapped(reply.authentication_info.as_ref(), reply.body);
                    }
                    None => run.bootstrapped(auth.as_ref(), &body),
                }
            }
            _ => {
                let header = gba_chunk(&mut data);
                let body = gba_chunk(&mut data);
                if let Some(a) = gba_auth_info(header) {
                    run.bootstrapped(Some(&a), body);
                }
            }
        }
    }
    run.bootstrapped
}

/// For a `gba` input that drives the client ([`GBA_CLIENT`]): how many 200s the client accepted
/// (the seeds of a whole exchange must reach 1, else they went stale); `None` for other inputs.
pub fn gba_bootstraps(data: &[u8]) -> Option<u32> {
    match data.split_first() {
        Some((&sel, body)) if sel % GBA_SELECTORS == GBA_CLIENT => Some(gba_client(body)),
        _ => None,
    }
}

/// `AuthenticationInfo::parse` of `header` (UTF-8): what parses formats (unless too long) and
/// parses back equal.
fn gba_auth_info(header: &[u8]) -> Option<AuthenticationInfo> {
    let a = AuthenticationInfo::parse(std::str::from_utf8(header).ok()?).ok()?;
    assert_eq!(a.rspauth.len(), 32);
    assert_eq!(a.qop.is_some(), a.nc.is_some());
    assert_eq!(a.qop.is_some(), a.cnonce.is_some());
    match a.to_header() {
        Ok(h) => {
            assert!(h.len() <= MAX_HEADER_VALUE);
            assert_eq!(
                AuthenticationInfo::parse(&h).as_ref(),
                Ok(&a),
                "Authentication-Info round trip: {h:?}"
            );
        }
        Err(DigestError::TooLong) => {}
        Err(e) => panic!("a parsed Authentication-Info does not format: {e:?} {a:?}"),
    }
    Some(a)
}

// ---------------------------------------------------------------------------------------------
// zn

use m2msec::frameworks::binding::{Request as BindingRequest, Response as BindingResponse};
use m2msec::gba::kdf::MAX_BTID_LEN;
use m2msec::gba::zn::{
    refusal, ZnError, ZnKey, ZnReply, ZnRequest, MAX_IMPI_LEN, MAX_LIFETIME, MAX_USS,
};

/// The time `zn` checks answers against: every valid lifetime is after it.
pub const ZN_NOW: UnixTime = UnixTime(0);

/// `zn`: the Zn message codec (`m2msec::gba::zn`). The input is tried four ways: as an HTTP
/// request primitive (`Request::decode`, then `ZnRequest::from_request`), as an HTTP response
/// primitive (`Response::decode`, then `ZnReply::from_response`), and as a bare request and
/// answer JSON body. Whatever parses stays within the codec's bounds, re-encodes (through the
/// binding's HTTP encoding too, with the header values received: the binding's decoder refuses
/// what its encoder refuses) and re-parses to the same value.
pub fn zn(data: &[u8]) {
    use m2msec::frameworks::binding::{Rsc, MAX_BODY};
    if let Ok(Some((req, used))) = BindingRequest::decode(data) {
        assert!(used <= data.len());
        if let Ok(z) = ZnRequest::from_request(&req) {
            zn_request_round_trip(&z);
            let again = z
                .to_request(&req.origin, &req.request_id)
                .expect("a parsed request re-encodes");
            let back = zn_http_request(&again);
            assert_eq!(back.origin, req.origin);
            assert_eq!(back.request_id, req.request_id);
            assert_eq!(ZnRequest::from_request(&back).as_ref(), Ok(&z));
        }
    }
    if let Ok(Some((resp, used))) = BindingResponse::decode(data) {
        assert!(used <= data.len());
        match ZnReply::from_response(&resp, ZN_NOW) {
            Ok(ZnReply::Key(k)) => {
                assert_eq!(resp.rsc, Rsc::Ok);
                let again = k
                    .to_response(&resp.request_id)
                    .expect("a parsed key re-encodes");
                let again = zn_http_response(&again);
                assert_eq!(again.request_id, resp.request_id);
                assert_eq!(ZnReply::from_response(&again, ZN_NOW), Ok(ZnReply::Key(k)));
            }
            Ok(ZnReply::Refused {
                rsc,
                error,
                parameter,
            }) => {
                assert_ne!(rsc, Rsc::Ok);
                // A refusal with an ErrorBody re-encodes to the same refusal.
                if let Some(e) = &error {
                    let again = refusal(rsc, e, parameter.as_deref(), &resp.request_id);
                    let again = zn_http_response(&again);
                    assert_eq!(
                        ZnReply::from_response(&again, ZN_NOW),
                        Ok(ZnReply::Refused {
                            rsc,
                            error,
                            parameter
                        })
                    );
                }
            }
            Err(e) => assert!(resp.rsc == Rsc::Ok, "{e:?} for a refusal"),
        }
    }
    if let Ok(z) = ZnRequest::from_body(data) {
        assert!(data.len() <= MAX_BODY);
        zn_request_round_trip(&z);
    }
    match ZnKey::from_body(data) {
        Ok(k) => zn_key_round_trip(&k),
        Err(ZnError::Expired) => panic!("a body alone is never expired"),
        Err(_) => {}
    }
}

/// `req` through the binding's HTTP encoding and back: it encodes, decodes whole and equal.
fn zn_http_request(req: &BindingRequest) -> BindingRequest {
    let mut wire = Vec::new();
    req.encode(&mut wire).expect("a Zn request encodes");
    let (back, n) = BindingRequest::decode(&wire)
        .expect("re-encoded request decodes")
        .expect("re-encoded request complete");
    assert_eq!(n, wire.len());
    assert_eq!(&back, req);
    back
}

/// `resp` through the binding's HTTP encoding and back: it encodes, decodes whole and equal.
fn zn_http_response(resp: &BindingResponse) -> BindingResponse {
    let mut wire = Vec::new();
    resp.encode(&mut wire).expect("a Zn response encodes");
    let (back, n) = BindingResponse::decode(&wire)
        .expect("re-encoded response decodes")
        .expect("re-encoded response complete");
    assert_eq!(n, wire.len());
    assert_eq!(&back, resp);
    back
}

fn zn_request_round_trip(z: &ZnRequest) {
    assert!(z.btid.as_str().len() <= MAX_BTID_LEN);
    assert_eq!(BTid::parse(z.btid.as_str()).as_ref(), Ok(&z.btid));
    let body = z.to_body().expect("a parsed request re-encodes");
    assert_eq!(
        ZnRequest::from_body(&body).as_ref(),
        Ok(z),
        "ZnRequest round trip"
    );
}

fn zn_key_round_trip(k: &ZnKey) {
    assert!(!k.impi.is_empty() && k.impi.len() <= MAX_IMPI_LEN);
    assert!(k.bootstrapping_time <= k.lifetime && k.lifetime.0 <= MAX_LIFETIME);
    assert!(k.uss.len() <= MAX_USS);
    let body = k.to_body().expect("a parsed key re-encodes");
    let again = ZnKey::from_body(&body).expect("a re-encoded key parses");
    assert_eq!(&again, k, "ZnKey round trip");
    assert_eq!(again.key.expose(), k.key.expose());
    // Either it is live at ZN_NOW, or its lifetime is ZN_NOW itself.
    assert_eq!(k.is_live(ZN_NOW), k.lifetime > ZN_NOW);
}

// ---------------------------------------------------------------------------------------------
// identifiers

use m2msec::frameworks::config::{
    BootstrapInstruction, CertificatePeer, EntityId, Fqdn, MefTransport, MefUri, MAX_ENTITY_ID_LEN,
};
use m2msec::frameworks::mef::MafEntry;
use m2msec::keys::{
    nfkc, IdKind, KeyId, RelativeId, MAX_FQDN_LEN, MAX_KEY_ID_LEN, MAX_RELATIVE_LEN,
};
use m2msec::messages::is_dns_name as dns_name;

/// `identifiers` selector: `Fqdn::new`.
pub const ID_FQDN: u8 = 0;
/// `identifiers` selector: `EntityId::new`.
pub const ID_ENTITY: u8 = 1;
/// `identifiers` selector: `MefUri::parse`.
pub const ID_MEF_URI: u8 = 2;
/// `identifiers` selector: `KeyId::parse` and `parse_bytes` for every `IdKind`.
pub const ID_KEY_ID: u8 = 3;
/// `identifiers` selector: `RelativeId::from_hex`.
pub const ID_RELATIVE: u8 = 4;
/// `identifiers` selector: `RootOfTrust::from_str`.
pub const ID_ROOT_OF_TRUST: u8 = 5;
/// `identifiers` selector: `BTid::parse`, `parse_psk_identity`.
pub const ID_BTID: u8 = 6;
/// `identifiers` selector: `NafId::new` (the FQDN of a NAF_Id).
pub const ID_NAF_FQDN: u8 = 7;
/// `identifiers` selector: `CipherSuite::from_name`, `ZnFlavor::parse`, `nfkc`.
pub const ID_NAMES: u8 = 8;
/// `identifiers` selector: the constructors taking several of them, the fields separated by
/// `\n`: `CertificatePeer::new` (name, Root of Trust), `MafEntry::new` (KpmID-form identity,
/// MAF-ID, URI), `BootstrapInstruction::new` (MAF-ID, Enrolee-ID).
pub const ID_CONFIG: u8 = 9;
/// How many `identifiers` selectors there are (the first byte is taken modulo this).
pub const ID_SELECTORS: u8 = 10;

/// Every `IdKind`.
pub const ID_KINDS: [IdKind; 5] = [
    IdKind::Ke,
    IdKind::Kc,
    IdKind::Km,
    IdKind::Kpsa,
    IdKind::Kpm,
];

/// `identifiers`: the text parsers of configuration and key identifiers. Input = selector byte
/// (`ID_*`, `% ID_SELECTORS`) || text. Nothing panics; whatever is accepted is within the
/// documented bounds and is either kept as given or has a canonical text that parses to an equal
/// value and is itself canonical; the case rules (an FQDN compares case-insensitively, a KeyId's
/// relative part as its `IdKind` says, an EntityId exactly) agree with parsing the upper- and
/// lower-cased text, and equal values hash equal. Parsers that share a rule agree on it.
pub fn identifiers(data: &[u8]) {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let sel = sel % ID_SELECTORS;
    if sel == ID_KEY_ID {
        // parse_bytes takes any bytes.
        for kind in ID_KINDS {
            let from_bytes = KeyId::parse_bytes(kind, body);
            match std::str::from_utf8(body) {
                Ok(t) => assert_eq!(
                    from_bytes.as_ref().map(KeyId::as_str),
                    KeyId::parse(kind, t).as_ref().map(KeyId::as_str),
                    "parse_bytes and parse disagree"
                ),
                Err(_) => assert!(from_bytes.is_err(), "non-UTF-8 key id accepted"),
            }
        }
    }
    let Ok(t) = std::str::from_utf8(body) else {
        return;
    };
    match sel {
        ID_FQDN => id_fqdn(t),
        ID_ENTITY => id_entity(t),
        ID_MEF_URI => id_mef_uri(t),
        ID_KEY_ID => id_key_id(t),
        ID_RELATIVE => id_relative(t),
        ID_ROOT_OF_TRUST => id_root_of_trust(t),
        ID_BTID => {
            gba_btid(t);
            if let Ok(b) = BTid::parse(t) {
                assert!(b.as_str().len() <= MAX_BTID_LEN);
                assert!(b.bsf_fqdn().len() <= MAX_FQDN_LEN);
            }
        }
        ID_NAF_FQDN => id_naf_fqdn(t),
        ID_NAMES => id_names(t),
        _ => id_config(t),
    }
}

fn id_hash<T: std::hash::Hash>(v: &T) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault};
    BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(v)
}

fn id_fqdn(t: &str) {
    let r = Fqdn::new(t);
    // Fqdn is the SNI rule (is_dns_name), which a KeyId's FQDN part and a MefUri host share.
    assert_eq!(
        r.is_ok(),
        dns_name(t),
        "Fqdn and is_dns_name disagree on {t:?}"
    );
    assert_eq!(
        r.is_ok(),
        KeyId::parse(IdKind::Kpm, &format!("k@{t}")).is_ok(),
        "Fqdn and KeyId's FQDN disagree on {t:?}"
    );
    if !t
        .bytes()
        .any(|b| matches!(b, b':' | b'/' | b'?' | b'#' | b'@' | b'['))
    {
        assert_eq!(
            r.is_ok(),
            MefUri::parse(&format!("coaps://{t}")).is_ok(),
            "Fqdn and MefUri's host disagree on {t:?}"
        );
    }
    for other in [t.to_ascii_uppercase(), t.to_ascii_lowercase()] {
        let o = Fqdn::new(&other);
        assert_eq!(o.is_ok(), r.is_ok(), "Fqdn is case-sensitive on {t:?}");
        if let (Ok(a), Ok(b)) = (&r, &o) {
            assert_eq!(a, b, "Fqdn compares case-sensitively");
            assert_eq!(id_hash(a), id_hash(b), "Fqdn hash is case-sensitive");
        }
    }
    let Ok(f) = r else {
        return;
    };
    assert_eq!(f.as_str(), t, "Fqdn is kept as given");
    assert_eq!(f.to_string(), t);
    assert!(!t.is_empty() && t.len() <= MAX_FQDN_LEN);
    assert_eq!(Fqdn::new(f.as_str()).as_ref(), Ok(&f));
}

fn id_entity(t: &str) {
    let r = EntityId::new(t);
    for other in [t.to_ascii_uppercase(), t.to_ascii_lowercase()] {
        let o = EntityId::new(&other);
        assert_eq!(
            o.is_ok(),
            r.is_ok(),
            "EntityId validity depends on case: {t:?}"
        );
        if let (Ok(a), Ok(b)) = (&r, &o) {
            // oneM2M identifiers are case-sensitive.
            assert_eq!(a == b, other == t, "EntityId compares case-insensitively");
        }
    }
    let Ok(e) = r else {
        return;
    };
    assert_eq!(e.as_str(), t, "EntityId is kept as given");
    assert_eq!(e.to_string(), t);
    assert!(!t.is_empty() && t.len() <= MAX_ENTITY_ID_LEN);
    assert!(t
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/')));
    assert!(!t.ends_with('/'), "an empty last segment");
    assert!(!t.contains("///"), "an empty segment");
    if let Some(abs) = t.strip_prefix("//") {
        let sp = abs.split('/').next().unwrap_or("");
        assert!(dns_name(sp), "absolute id without an SP-ID: {t:?}");
    } else {
        assert!(
            !t.trim_start_matches('/').contains("//"),
            "an empty segment"
        );
    }
    assert_eq!(EntityId::new(e.as_str()).as_ref(), Ok(&e));
    assert_eq!(
        id_hash(&EntityId::new(t).expect("parses again")),
        id_hash(&e)
    );
}

fn id_mef_uri(t: &str) {
    let r = MefUri::parse(t);
    // The scheme compares case-insensitively; the rest is checked as given.
    if let Some((scheme, rest)) = t.split_once("://") {
        for s in [scheme.to_ascii_uppercase(), scheme.to_ascii_lowercase()] {
            let o = MefUri::parse(&format!("{s}://{rest}"));
            assert_eq!(
                o.is_ok(),
                r.is_ok(),
                "MefUri validity depends on the scheme's case"
            );
            if let (Ok(a), Ok(b)) = (&r, &o) {
                assert_eq!(
                    (a.transport(), a.host(), a.port(), a.path()),
                    (b.transport(), b.host(), b.port(), b.path())
                );
            }
        }
    }
    let Ok(u) = r else {
        return;
    };
    assert_eq!(u.as_str(), t, "MefUri is kept as given");
    assert_eq!(u.to_string(), t);
    assert_eq!(MefUri::parse(u.as_str()).as_ref(), Ok(&u));
    assert!(dns_name(u.host()), "host {:?} is not a DNS name", u.host());
    assert!(Fqdn::new(u.host()).is_ok());
    assert_ne!(u.port(), 0);
    assert!(u.path().is_empty() || u.path().starts_with(['/', '?']));
    assert!(!t.contains(['#', '@']) && t.bytes().all(|b| b.is_ascii_graphic()));
    // The text is scheme "://" host [":" port] path, the parts as reported.
    let (scheme, rest) = t.split_once("://").expect("a scheme");
    let default = match u.transport() {
        MefTransport::Tls => {
            assert!(scheme.eq_ignore_ascii_case("https"));
            443
        }
        MefTransport::Dtls => {
            assert!(scheme.eq_ignore_ascii_case("coaps"));
            5684
        }
        _ => unreachable!("a transport the harness does not know"),
    };
    let authority = rest.strip_suffix(u.path()).expect("the path ends the text");
    let after = authority
        .strip_prefix(u.host())
        .expect("the host starts the authority");
    match after.strip_prefix(':') {
        None => {
            assert!(after.is_empty(), "{after:?} after the host");
            assert_eq!(u.port(), default);
        }
        Some(p) => assert_eq!(p.parse::<u16>(), Ok(u.port())),
    }
}

fn id_key_id(t: &str) {
    let (rel, fqdn) = t.split_once('@').unwrap_or((t, ""));
    let up = t.to_ascii_uppercase();
    let low = t.to_ascii_lowercase();
    // The FQDN part in upper case: equal for every kind (D2).
    let fqdn_up = format!("{rel}@{}", fqdn.to_ascii_uppercase());
    let parsed: Vec<_> = ID_KINDS.iter().map(|&k| KeyId::parse(k, t)).collect();
    for (i, (&kind, r)) in ID_KINDS.iter().zip(&parsed).enumerate() {
        for other in [&up, &low, &fqdn_up] {
            let o = KeyId::parse(kind, other);
            assert_eq!(
                o.is_ok(),
                r.is_ok(),
                "{kind:?} validity depends on case: {t:?}"
            );
            if let (Ok(a), Ok(b)) = (r, &o) {
                // Exact kinds keep the relative part as given: equal iff it is unchanged.
                let same_rel = kind.relative_case_insensitive() || a.relative() == b.relative();
                assert_eq!(
                    a == b,
                    same_rel,
                    "{kind:?} comparison of {t:?} and {other:?}"
                );
                if a == b {
                    assert_eq!(
                        id_hash(a),
                        id_hash(b),
                        "{kind:?} equal but hash differently"
                    );
                }
            }
        }
        let Ok(id) = r else {
            continue;
        };
        assert_eq!(id.kind(), kind);
        assert!(id.as_str().len() <= MAX_KEY_ID_LEN);
        assert!(!id.relative().is_empty() && id.relative().len() <= MAX_RELATIVE_LEN);
        assert!(id.fqdn().len() <= MAX_FQDN_LEN && dns_name(id.fqdn()));
        assert_eq!(id.as_str(), format!("{}@{}", id.relative(), id.fqdn()));
        assert_eq!(id.to_string(), id.as_str());
        assert_eq!(id.as_bytes(), id.as_str().as_bytes());
        // Canonical form: only a hexadecimal relative part changes (upper case).
        assert_eq!(id.fqdn(), fqdn, "the FQDN is kept as given");
        let hex = rel.len() == 32 && rel.bytes().all(|b| b.is_ascii_hexdigit());
        if kind == IdKind::Ke {
            assert!(hex, "a KeID without 32 hex digits: {t:?}");
        }
        if hex && matches!(kind, IdKind::Ke | IdKind::Kc) {
            assert_eq!(id.relative(), rel.to_ascii_uppercase());
        } else {
            assert_eq!(id.as_str(), t, "{kind:?} not kept as given");
        }
        match id.relative_id() {
            Some(r) => {
                assert!(hex);
                assert_eq!(r.to_hex(), rel.to_ascii_uppercase());
            }
            None => assert!(!hex),
        }
        // Idempotent: the canonical text parses to an equal, identical identifier.
        let again = KeyId::parse(kind, id.as_str()).expect("the canonical text parses");
        assert_eq!(&again, id);
        assert_eq!(
            again.as_str(),
            id.as_str(),
            "canonical text is not canonical"
        );
        assert_eq!(id_hash(&again), id_hash(id));
        if let Some(r) = id
            .relative_id()
            .filter(|_| matches!(kind, IdKind::Ke | IdKind::Kc))
        {
            let built = KeyId::from_relative_bytes(kind, r.as_bytes(), id.fqdn())
                .expect("the FQDN was accepted");
            assert_eq!(
                built.as_str(),
                id.as_str(),
                "from_relative_bytes is not canonical"
            );
        }
        // Identifiers of different kinds are never equal.
        for (j, other) in parsed.iter().enumerate() {
            if let (true, Ok(o)) = (i != j, other) {
                assert_ne!(id, o, "{kind:?} equal to {:?}", o.kind());
            }
        }
    }
}

fn id_relative(t: &str) {
    let hex = t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit());
    let Some(r) = RelativeId::from_hex(t) else {
        assert!(!hex, "32 hex digits refused: {t:?}");
        return;
    };
    assert!(hex, "not 32 hex digits accepted: {t:?}");
    assert_eq!(r.to_hex(), t.to_ascii_uppercase());
    assert_eq!(r.to_string(), r.to_hex());
    assert_eq!(RelativeId::from_hex(&r.to_hex()), Some(r));
    assert_eq!(RelativeId::from_hex(&t.to_ascii_lowercase()), Some(r));
    assert_eq!(RelativeId::from_bytes(*r.as_bytes()), r);
}

fn id_root_of_trust(t: &str) {
    let r = RootOfTrust::from_str(t);
    // Surrounding whitespace is ignored.
    assert_eq!(RootOfTrust::from_str(&format!(" {t}\n")), r);
    let Ok(rot) = r else {
        return;
    };
    assert_eq!(rot.digest().len(), rot.hash().digest_len());
    let canonical = rot.to_ni_uri();
    assert!(canonical.starts_with("ni:///"));
    assert_eq!(rot.to_string(), canonical);
    let again = RootOfTrust::from_str(&canonical).expect("the canonical text parses");
    assert_eq!(again, rot, "canonical text parses to another Root of Trust");
    assert_eq!(
        again.to_ni_uri(),
        canonical,
        "canonical text is not canonical"
    );
    assert_eq!(RootOfTrust::from_digest(rot.hash(), rot.digest()), Ok(rot));
    let tt = t.trim();
    if tt.len() == 64 && tt.bytes().all(|b| b.is_ascii_hexdigit()) {
        assert_eq!(rot.hash(), RotHash::Sha256);
        for other in [tt.to_ascii_uppercase(), tt.to_ascii_lowercase()] {
            assert_eq!(RootOfTrust::from_str(&other), Ok(rot));
        }
    }
    if rot.hash() == RotHash::Sha256 {
        let hex: String = rot.digest().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(RootOfTrust::from_str(&hex), Ok(rot));
    }
}

fn id_naf_fqdn(t: &str) {
    let ua = [1, 0, 1, 0xc0, 0xa4];
    let r = NafId::new(t, ua);
    // A NAF_Id's FQDN and a B-TID's domain are the same rule.
    assert_eq!(
        r.is_ok(),
        BTid::parse(&format!("AAAA@{t}")).is_ok(),
        "NafId and BTid disagree on the host name {t:?}"
    );
    for other in [t.to_ascii_uppercase(), t.to_ascii_lowercase()] {
        assert_eq!(NafId::new(&other, ua).is_ok(), r.is_ok());
    }
    let Ok(id) = r else {
        return;
    };
    assert_eq!(id.fqdn(), t);
    assert!(!t.is_empty() && t.len() <= MAX_FQDN_LEN);
    assert_eq!(NafId::tls_psk(t, 0xc0a4).as_ref(), Ok(&id));
    assert_eq!(id.to_bytes(), [t.as_bytes(), &ua[..]].concat());
}

fn id_names(t: &str) {
    match CipherSuite::from_name(t) {
        Some(c) => {
            assert!(
                t.eq_ignore_ascii_case(c.short_name()) || t.eq_ignore_ascii_case(c.iana_name())
            );
            assert_eq!(CipherSuite::from_name(c.short_name()), Some(c));
            assert_eq!(CipherSuite::from_name(c.iana_name()), Some(c));
            assert_eq!(CipherSuite::from_name(&c.to_string()), Some(c));
            assert_eq!(CipherSuite::from_name(&t.to_ascii_uppercase()), Some(c));
            assert_eq!(CipherSuite::from_code(c.code()), Some(c));
        }
        None => assert!(CipherSuite::every().iter().all(|c| {
            !t.eq_ignore_ascii_case(c.short_name()) && !t.eq_ignore_ascii_case(c.iana_name())
        })),
    }
    if let Some(f) = m2msec::gba::zn::ZnFlavor::parse(t) {
        assert_eq!(f.as_str(), t);
        assert_eq!(f.to_string(), t);
    }
    // NFKC (the identifier form of the TS-0003 10.3.2 / 10.3.3 derivations) is idempotent and
    // leaves ASCII alone.
    let n = nfkc(t);
    if t.is_ascii() {
        assert!(matches!(n, std::borrow::Cow::Borrowed(_)) && n == t);
    }
    assert_eq!(nfkc(&n), n, "NFKC is not idempotent on {t:?}");
}

fn id_config(t: &str) {
    let mut f = t.splitn(3, '\n');
    let a = f.next().unwrap_or("");
    let b = f.next().unwrap_or("");
    let c = f.next().unwrap_or("");
    // CertificatePeer: the Root of Trust text is RootOfTrust's; the name is kept as given.
    let p = CertificatePeer::new(a, b);
    match RootOfTrust::from_str(b) {
        Ok(rot) => assert_eq!(
            p.as_ref().ok(),
            CertificatePeer::with_root_of_trust(a, rot).as_ref().ok()
        ),
        Err(_) => assert!(p.is_err()),
    }
    if let Ok(p) = &p {
        assert_eq!(p.certificate_name(), a);
        assert!(!a.is_empty() && a.len() <= MAX_ENTITY_ID_LEN);
        let again = CertificatePeer::new(a, &p.root_of_trust().to_string());
        assert_eq!(
            again.as_ref(),
            Ok(p),
            "CertificatePeer from its canonical Root of Trust"
        );
    }
    // MafEntry: a KpmID-form identity, an FQDN and a bounded URI.
    let e = MafEntry::new(a, b, c);
    let uri_ok = !c.is_empty() && c.len() <= 512 && c.bytes().all(|x| (0x21..0x7f).contains(&x));
    let id = KeyId::parse(IdKind::Kpm, a);
    let maf = Fqdn::new(b);
    assert_eq!(
        e.is_ok(),
        id.is_ok() && maf.is_ok() && uri_ok,
        "MafEntry on {t:?}"
    );
    if let Ok(e) = &e {
        assert_eq!(Ok(e.psk_identity()), id.as_ref());
        assert_eq!(Ok(e.maf_id()), maf.as_ref());
        assert_eq!(e.maf_uri(), c);
        let again = MafEntry::new(e.psk_identity().as_str(), e.maf_id().as_str(), e.maf_uri());
        assert_eq!(again.as_ref(), Ok(e), "MafEntry from its canonical texts");
    }
    // BootstrapInstruction: Fqdn and EntityId.
    let bi = BootstrapInstruction::new(a, b);
    assert_eq!(bi.is_ok(), Fqdn::new(a).is_ok() && EntityId::new(b).is_ok());
    if let Ok(bi) = &bi {
        assert_eq!(bi.maf_id().as_str(), a);
        assert_eq!(bi.enrolee_id().as_str(), b);
    }
}
