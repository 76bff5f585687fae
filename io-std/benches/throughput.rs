//! Record-protection throughput, end-to-end record path and PSK handshake rate of m2msec,
//! each measured beside OpenSSL (through the `openssl` crate) in the same run, plus heap use;
//! for TLS 1.2 over an in-memory byte stream and for DTLS 1.2 over an in-memory datagram link
//! (OpenSSL's DTLS driven through `SslStream` over a Read/Write where one write is one datagram
//! and one read takes one).
//!
//! Run: `cargo bench -p m2msec-std --bench throughput`. A plain `main` (no harness) prints a
//! table of medians. `M2MSEC_BENCH_REP_MS` (default 500) and `M2MSEC_BENCH_REPS` (default 5)
//! shorten or lengthen the run; `M2MSEC_BENCH_NO_SPEED=1` skips `openssl speed`.
//!
//! Heap accounting uses the `allocation-counter` dev-dependency as the global allocator (a
//! `GlobalAlloc` wrapper around `System` that counts allocations, current bytes and peak bytes per
//! thread): the workspace lints `forbid` `unsafe_code`, which no `allow` can lift, so the bench
//! cannot implement `GlobalAlloc` itself. Only Rust allocations are seen: OpenSSL's own `malloc`
//! calls are not, so heap figures are reported for m2msec alone.

mod common;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::hint::black_box;
use std::io::{self, Read, Write};
use std::process::Command;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use m2msec::crypto::prf::prf;
use m2msec::dtls::{CookieListener, ListenerDecision};
use m2msec::enums::ContentType;
use m2msec::key_schedule::{key_expansion, MasterSecret};
use m2msec::record::{Protection, Wire, TLS_HEADER_LEN};
use m2msec::secret::SecretArray;
use m2msec::{
    CipherSuite, ClientConfig, ClientPsk, Event, Now, Output, Psk, PskTable, ServerConfig, Session,
    Transport,
};
use openssl::cipher::Cipher;
use openssl::cipher_ctx::CipherCtx;
use openssl::ssl::{
    ErrorCode, Ssl, SslContext, SslMethod, SslOptions, SslSessionCacheMode, SslStream, SslVersion,
};

const ID: &[u8] = b"Client_identity";
const KEY: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
const TLS12: u16 = 0x0303;
const MB: f64 = 1e6;
const CHUNK: usize = 16 * 1024;
/// Poll buffer: one whole protected 16 KiB record fits.
const WIRE: usize = CHUNK + 64;

// ---------------------------------------------------------------------------------------------
// Timing

use common::{Stat, Timer};

impl Stat {
    fn scale(self, k: f64) -> Self {
        Self {
            median: self.median * k,
            min: self.min * k,
            max: self.max * k,
        }
    }
}

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
// Record protection: m2msec `Protection` vs OpenSSL EVP AES-128-CCM

fn suite_name(s: CipherSuite) -> &'static str {
    match s {
        CipherSuite::PskAes128Ccm => "CCM",
        _ => "CCM_8",
    }
}

fn fixed_keys() -> (MasterSecret, [u8; 32], [u8; 32]) {
    (SecretArray::new([0x42; 48]), [0x11; 32], [0x22; 32])
}

/// The client-write key and salt as key_expansion derives them (RFC 5246 6.3), for OpenSSL.
fn client_write_key_and_salt() -> ([u8; 16], [u8; 4]) {
    let (ms, cr, sr) = fixed_keys();
    let mut block = [0u8; 40];
    prf(ms.expose(), b"key expansion", &[&sr, &cr], &mut block);
    let mut k = [0u8; 16];
    let mut s = [0u8; 4];
    k.copy_from_slice(&block[..16]);
    s.copy_from_slice(&block[32..36]);
    (k, s)
}

struct Ours {
    seal: Protection,
    open: Protection,
    pt: Vec<u8>,
    buf: Vec<u8>,
    seq: u64,
}

impl Ours {
    fn new(suite: CipherSuite, len: usize) -> Self {
        let (ms, cr, sr) = fixed_keys();
        let (client_write, _) = key_expansion(&ms, &cr, &sr, suite.tag_len());
        Self {
            seal: Protection::new(client_write.clone()),
            open: Protection::new(client_write),
            pt: (0..len).map(|i| i as u8).collect(),
            buf: Vec::with_capacity(TLS_HEADER_LEN + len + 32),
            seq: 0,
        }
    }

    /// Seals one record into the reused buffer (left in `buf`).
    fn seal(&mut self) {
        self.buf.clear();
        self.seal.seal_record(
            &mut self.buf,
            Wire::Tls,
            ContentType::ApplicationData,
            TLS12,
            self.seq,
            &self.pt,
        );
    }

    /// Seal + open of one record; returns the plaintext length.
    fn round(&mut self) -> usize {
        self.seal();
        let r = self
            .open
            .open_record(
                &mut self.buf[TLS_HEADER_LEN..],
                ContentType::ApplicationData,
                TLS12,
                self.seq,
            )
            .expect("authentic");
        self.seq += 1;
        black_box(&self.buf[TLS_HEADER_LEN..][r]).len()
    }
}

/// OpenSSL doing the same per-record work: one context per direction keyed once, per record a
/// new IV (salt || seq), 13-byte AAD, in-place encrypt + tag, then in-place verify + decrypt.
struct Theirs {
    enc: CipherCtx,
    dec: CipherCtx,
    salt: [u8; 4],
    tag_len: usize,
    pt: Vec<u8>,
    buf: Vec<u8>,
    seq: u64,
}

fn aad(seq: u64, len: usize) -> [u8; 13] {
    let mut a = [0u8; 13];
    a[..8].copy_from_slice(&seq.to_be_bytes());
    a[8] = 23;
    a[9..11].copy_from_slice(&TLS12.to_be_bytes());
    a[11..].copy_from_slice(&(len as u16).to_be_bytes());
    a
}

impl Theirs {
    fn new(suite: CipherSuite, len: usize) -> Self {
        let (key, salt) = client_write_key_and_salt();
        let tag_len = suite.tag_len().bytes();
        let mut enc = CipherCtx::new().unwrap();
        enc.encrypt_init(Some(Cipher::aes_128_ccm()), None, None)
            .unwrap();
        enc.set_iv_length(12).unwrap();
        enc.set_tag_length(tag_len).unwrap();
        enc.encrypt_init(None, Some(&key), None).unwrap();
        let mut dec = CipherCtx::new().unwrap();
        dec.decrypt_init(Some(Cipher::aes_128_ccm()), None, None)
            .unwrap();
        dec.set_iv_length(12).unwrap();
        dec.set_tag_length(tag_len).unwrap();
        dec.decrypt_init(None, Some(&key), None).unwrap();
        Self {
            enc,
            dec,
            salt,
            tag_len,
            pt: (0..len).map(|i| i as u8).collect(),
            buf: Vec::with_capacity(TLS_HEADER_LEN + len + 32),
            seq: 0,
        }
    }

    fn nonce(&self) -> [u8; 12] {
        let mut n = [0u8; 12];
        n[..4].copy_from_slice(&self.salt);
        n[4..].copy_from_slice(&self.seq.to_be_bytes());
        n
    }

    /// Builds the same record bytes as `Protection::seal_record` (header, explicit nonce, body, tag).
    fn seal(&mut self) {
        let len = self.pt.len();
        let total = 8 + len + self.tag_len;
        let nonce = self.nonce();
        self.buf.clear();
        self.buf.push(23);
        self.buf.extend_from_slice(&TLS12.to_be_bytes());
        self.buf.extend_from_slice(&(total as u16).to_be_bytes());
        self.buf.extend_from_slice(&self.seq.to_be_bytes());
        self.buf.extend_from_slice(&self.pt);
        self.buf.resize(TLS_HEADER_LEN + total, 0);
        let e = &mut self.enc;
        e.encrypt_init(None, None, Some(&nonce)).unwrap();
        e.set_data_len(len).unwrap();
        e.cipher_update(&aad(self.seq, len), None).unwrap();
        let (body, tag) = self.buf[TLS_HEADER_LEN + 8..].split_at_mut(len);
        e.cipher_update_inplace(body, len).unwrap();
        e.cipher_final(&mut []).unwrap();
        e.tag(tag).unwrap();
    }

    fn round(&mut self) -> usize {
        self.seal();
        let len = self.pt.len();
        let nonce = self.nonce();
        let d = &mut self.dec;
        let (body, tag) = self.buf[TLS_HEADER_LEN + 8..].split_at_mut(len);
        d.decrypt_init(None, None, Some(&nonce)).unwrap();
        d.set_tag(tag).unwrap();
        d.set_data_len(len).unwrap();
        d.cipher_update(&aad(self.seq, len), None).unwrap();
        d.cipher_update_inplace(body, len).expect("authentic");
        d.cipher_final(&mut []).unwrap();
        self.seq += 1;
        black_box(&*body).len()
    }
}

/// What `symm::Crypter` would do: a fresh EVP context and AES key schedule per record and
/// direction. (`Crypter` itself cannot be used for these suites: it keys the context in `new`,
/// and OpenSSL fixes the CCM tag length when the key is set, so `set_tag_len(8 | 16)` afterwards
/// leaves a 12-byte-tag context whose `get_tag` fails.)
fn fresh_ctx_round(key: &[u8; 16], salt: &[u8; 4], seq: u64, pt: &[u8], buf: &mut [u8]) -> usize {
    let mut nonce = [0u8; 12];
    nonce[..4].copy_from_slice(salt);
    nonce[4..].copy_from_slice(&seq.to_be_bytes());
    let a = aad(seq, pt.len());
    let (body, tag) = buf.split_at_mut(pt.len());
    body.copy_from_slice(pt);
    let tag = &mut tag[..8];
    let mut c = CipherCtx::new().unwrap();
    c.encrypt_init(Some(Cipher::aes_128_ccm()), None, None)
        .unwrap();
    c.set_iv_length(12).unwrap();
    c.set_tag_length(8).unwrap();
    c.encrypt_init(None, Some(key), Some(&nonce)).unwrap();
    c.set_data_len(pt.len()).unwrap();
    c.cipher_update(&a, None).unwrap();
    c.cipher_update_inplace(body, pt.len()).unwrap();
    c.cipher_final(&mut []).unwrap();
    c.tag(tag).unwrap();
    let mut d = CipherCtx::new().unwrap();
    d.decrypt_init(Some(Cipher::aes_128_ccm()), None, None)
        .unwrap();
    d.set_iv_length(12).unwrap();
    d.set_tag(tag).unwrap();
    d.decrypt_init(None, Some(key), Some(&nonce)).unwrap();
    d.set_data_len(pt.len()).unwrap();
    d.cipher_update(&a, None).unwrap();
    d.cipher_update_inplace(body, pt.len()).expect("authentic");
    black_box(&*body).len()
}

fn record_rows(t: &Timer, rows: &mut Vec<Row>) {
    for suite in [CipherSuite::PskAes128Ccm, CipherSuite::PskAes128Ccm8] {
        for len in [1024usize, CHUNK] {
            let mut ours = Ours::new(suite, len);
            let mut theirs = Theirs::new(suite, len);
            // Same keys, nonce and AAD: the records must be byte-identical, and both must open.
            ours.seal();
            theirs.seal();
            assert_eq!(ours.buf, theirs.buf, "m2msec and OpenSSL records differ");
            assert_eq!(ours.round(), len);
            assert_eq!(theirs.round(), len);
            let batch = if len < 4096 { 64 } else { 8 };
            let (a, b) = t.pair(
                batch,
                &mut || {
                    black_box(ours.round());
                },
                &mut || {
                    black_box(theirs.round());
                },
            );
            let k = len as f64 / MB;
            rows.push(Row {
                case: format!(
                    "seal+open {} B, {} ({}-B tag)",
                    len,
                    suite_name(suite),
                    suite.tag_len().bytes()
                ),
                unit: "MB/s",
                ours: a.scale(k),
                theirs: b.scale(k),
            });
        }
    }
    // Informative: OpenSSL with a fresh context and key schedule per record (symm::Crypter style).
    let len = 1024;
    let mut ours = Ours::new(CipherSuite::PskAes128Ccm8, len);
    let (key, salt) = client_write_key_and_salt();
    let pt: Vec<u8> = (0..len).map(|i| i as u8).collect();
    let mut ct = vec![0u8; len + 8];
    let mut seq = 0u64;
    assert_eq!(fresh_ctx_round(&key, &salt, 0, &pt, &mut ct), len);
    let (a, b) = t.pair(
        64,
        &mut || {
            black_box(ours.round());
        },
        &mut || {
            seq += 1;
            black_box(fresh_ctx_round(&key, &salt, seq, &pt, &mut ct));
        },
    );
    let k = len as f64 / MB;
    rows.push(Row {
        case: "seal+open 1024 B, CCM_8, OpenSSL new context+key per record".into(),
        unit: "MB/s",
        ours: a.scale(k),
        theirs: b.scale(k),
    });
}

// ---------------------------------------------------------------------------------------------
// m2msec sessions in memory

fn our_configs(suite: CipherSuite) -> (Arc<ClientConfig>, Arc<ServerConfig>) {
    let psk = ClientPsk::new(ID, Psk::new(&KEY).unwrap()).unwrap();
    let c = ClientConfig::builder(psk).suites(&[suite]).build().unwrap();
    let mut table = PskTable::new();
    table.insert(ID, Psk::new(&KEY).unwrap()).unwrap();
    let s = ServerConfig::builder(Box::new(table))
        .suites(&[suite])
        .build()
        .unwrap();
    (Arc::new(c), Arc::new(s))
}

/// Reused buffers for driving a pair (allocated once, outside any measurement).
struct Bufs {
    wire: Vec<u8>,
    plain: Vec<u8>,
    c2s: Vec<u8>,
    s2c: Vec<u8>,
}

impl Bufs {
    fn new() -> Self {
        Self {
            wire: vec![0u8; WIRE],
            plain: vec![0u8; CHUNK],
            c2s: Vec::with_capacity(4096),
            s2c: Vec::with_capacity(4096),
        }
    }
}

/// Drains `s`, appending transmits to `out`; returns application bytes delivered.
fn drain(s: &mut Session, buf: &mut [u8], out: &mut Vec<u8>) -> usize {
    let mut app = 0;
    loop {
        match s.poll_output(buf) {
            Output::Transmit(b) => out.extend_from_slice(b),
            Output::Event(Event::AppData(d)) => app += d.len(),
            Output::Event(_) => {}
            Output::Wait(_) => return app,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Feeds all of `input` to `s`, draining after every call as the contract requires.
fn feed(s: &mut Session, input: &[u8], buf: &mut [u8], out: &mut Vec<u8>) -> usize {
    let mut rest = input;
    let mut app = 0;
    loop {
        let n = s.handle_input(Now::default(), rest).expect("handle_input");
        rest = &rest[n..];
        app += drain(s, buf, out);
        if rest.is_empty() {
            return app;
        }
        assert!(n > 0 || !s.is_suspended(), "no progress");
    }
}

fn our_handshake(c: &Arc<ClientConfig>, s: &Arc<ServerConfig>, b: &mut Bufs) -> (Session, Session) {
    let mut client =
        Session::client(c.clone(), Transport::Tls, None, Now::default(), [1; 32]).unwrap();
    let mut server = Session::server(s.clone(), Transport::Tls, Now::default(), [2; 32]).unwrap();
    b.c2s.clear();
    drain(&mut client, &mut b.wire, &mut b.c2s);
    for _ in 0..8 {
        b.s2c.clear();
        feed(&mut server, &b.c2s, &mut b.wire, &mut b.s2c);
        b.c2s.clear();
        feed(&mut client, &b.s2c, &mut b.wire, &mut b.c2s);
        if client.is_connected() && server.is_connected() {
            assert!(b.c2s.is_empty());
            return (client, server);
        }
    }
    panic!("handshake made no progress");
}

/// `from.send` of one chunk, each transmit fed straight to `to`; returns bytes delivered.
fn our_transfer(from: &mut Session, to: &mut Session, chunk: &[u8], b: &mut Bufs) -> usize {
    let sent = from.send(Now::default(), chunk).expect("send");
    let mut got = 0;
    loop {
        match from.poll_output(&mut b.wire) {
            Output::Transmit(t) => {
                let mut rest = t;
                while !rest.is_empty() {
                    let n = to.handle_input(Now::default(), rest).expect("handle_input");
                    rest = &rest[n..];
                    loop {
                        match to.poll_output(&mut b.plain) {
                            Output::Event(Event::AppData(d)) => got += d.len(),
                            Output::Wait(_) => break,
                            other => panic!("unexpected {other:?}"),
                        }
                    }
                }
            }
            Output::Wait(_) => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(got, sent);
    got
}

// ---------------------------------------------------------------------------------------------
// OpenSSL sessions in memory

/// One end of an in-memory duplex: reads `rx`, writes `tx`; an empty `rx` is WouldBlock.
struct Pipe {
    rx: Rc<RefCell<VecDeque<u8>>>,
    tx: Rc<RefCell<VecDeque<u8>>>,
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut q = self.rx.borrow_mut();
        if q.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        q.read(buf)
    }
}

impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tx.borrow_mut().extend(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn ossl_context(server: bool, cipher: &str) -> SslContext {
    let mut b = SslContext::builder(SslMethod::tls()).unwrap();
    b.set_min_proto_version(Some(SslVersion::TLS1_2)).unwrap();
    b.set_max_proto_version(Some(SslVersion::TLS1_2)).unwrap();
    b.set_cipher_list(&format!("{cipher}:@SECLEVEL=0")).unwrap();
    b.set_options(SslOptions::NO_TICKET);
    b.set_session_cache_mode(SslSessionCacheMode::OFF);
    if server {
        b.set_psk_server_callback(|_, identity, psk| {
            if identity != Some(ID) {
                return Ok(0);
            }
            psk[..KEY.len()].copy_from_slice(&KEY);
            Ok(KEY.len())
        });
    } else {
        b.set_psk_client_callback(|_, _hint, identity, psk| {
            identity[..ID.len()].copy_from_slice(ID);
            identity[ID.len()] = 0;
            psk[..KEY.len()].copy_from_slice(&KEY);
            Ok(KEY.len())
        });
    }
    b.build()
}

fn ossl_cipher(suite: CipherSuite) -> &'static str {
    match suite {
        CipherSuite::PskAes128Ccm => "PSK-AES128-CCM",
        _ => "PSK-AES128-CCM8",
    }
}

fn want_read(r: Result<(), openssl::ssl::Error>) -> bool {
    match r {
        Ok(()) => true,
        Err(e) if e.code() == ErrorCode::WANT_READ => false,
        Err(e) => panic!("OpenSSL handshake: {e}"),
    }
}

fn ossl_handshake(cctx: &SslContext, sctx: &SslContext) -> (SslStream<Pipe>, SslStream<Pipe>) {
    let a = Rc::new(RefCell::new(VecDeque::new()));
    let b = Rc::new(RefCell::new(VecDeque::new()));
    let mut cssl = Ssl::new(cctx).unwrap();
    cssl.set_connect_state();
    let mut sssl = Ssl::new(sctx).unwrap();
    sssl.set_accept_state();
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

fn ossl_transfer(
    from: &mut SslStream<Pipe>,
    to: &mut SslStream<Pipe>,
    chunk: &[u8],
    plain: &mut [u8],
) -> usize {
    let sent = from.ssl_write(chunk).expect("ssl_write");
    let mut got = 0;
    while got < sent {
        got += to.ssl_read(plain).expect("ssl_read");
    }
    got
}

fn session_rows(t: &Timer, rows: &mut Vec<Row>) {
    let chunk: Vec<u8> = (0..CHUNK).map(|i| (i * 7) as u8).collect();
    for suite in [CipherSuite::PskAes128Ccm, CipherSuite::PskAes128Ccm8] {
        let (cc, sc) = our_configs(suite);
        let mut b = Bufs::new();
        let (mut c, mut s) = our_handshake(&cc, &sc, &mut b);
        assert_eq!(c.info().map(|i| i.suite), Some(suite));
        let cctx = ossl_context(false, ossl_cipher(suite));
        let sctx = ossl_context(true, ossl_cipher(suite));
        let (mut oc, mut os) = ossl_handshake(&cctx, &sctx);
        assert_eq!(
            oc.ssl().current_cipher().map(|c| c.name()),
            Some(ossl_cipher(suite))
        );
        let mut plain = vec![0u8; CHUNK];
        let (x, y) = t.pair(
            8,
            &mut || {
                black_box(our_transfer(&mut c, &mut s, &chunk, &mut b));
            },
            &mut || {
                black_box(ossl_transfer(&mut oc, &mut os, &chunk, &mut plain));
            },
        );
        let k = CHUNK as f64 / MB;
        rows.push(Row {
            case: format!(
                "session 16 KiB send->recv, {} (ours: Session; OpenSSL: SslStream)",
                suite_name(suite)
            ),
            unit: "MB/s",
            ours: x.scale(k),
            theirs: y.scale(k),
        });
    }

    let suite = CipherSuite::PskAes128Ccm8;
    let (cc, sc) = our_configs(suite);
    let mut b = Bufs::new();
    let cctx = ossl_context(false, ossl_cipher(suite));
    let sctx = ossl_context(true, ossl_cipher(suite));
    let (x, y) = t.pair(
        4,
        &mut || {
            black_box(our_handshake(&cc, &sc, &mut b));
        },
        &mut || {
            black_box(ossl_handshake(&cctx, &sctx));
        },
    );
    rows.push(Row {
        case: "full PSK handshake, CCM_8, both ends in one thread".into(),
        unit: "hs/s",
        ours: x,
        theirs: y,
    });
}

// ---------------------------------------------------------------------------------------------
// DTLS 1.2 in memory: m2msec `Session` (with and without the `CookieListener`) beside OpenSSL

/// The peer address bytes the cookie listener binds its cookies to.
const PEER: &[u8] = b"192.0.2.1:5684";
/// Application payload of one DTLS datagram in the record-path rows.
const DGRAM_PAYLOAD: usize = 1024;

/// A queue of datagrams in one flat buffer, reserved once: pushing within capacity allocates
/// nothing, so the heap probes below see only what the sessions allocate.
struct Flat {
    data: Vec<u8>,
    ends: Vec<usize>,
}

impl Flat {
    fn new() -> Self {
        Self {
            data: Vec::with_capacity(64 * 1024),
            ends: Vec::with_capacity(256),
        }
    }

    fn push(&mut self, d: &[u8]) {
        assert!(
            self.data.len() + d.len() <= self.data.capacity()
                && self.ends.len() < self.ends.capacity(),
            "Flat queue over its reserved capacity"
        );
        self.data.extend_from_slice(d);
        self.ends.push(self.data.len());
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    fn get(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.data[start..self.ends[i]]
    }

    fn clear(&mut self) {
        self.data.clear();
        self.ends.clear();
    }
}

struct DBufs {
    wire: Vec<u8>,
    plain: Vec<u8>,
    c2s: Flat,
    s2c: Flat,
}

impl DBufs {
    fn new() -> Self {
        Self {
            wire: vec![0u8; WIRE],
            plain: vec![0u8; CHUNK],
            c2s: Flat::new(),
            s2c: Flat::new(),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Side {
    Client,
    Server,
    /// The stateless cookie listener (no session).
    Listener,
}

/// Live and peak heap of one side, from `allocation_counter::measure` around each of its calls:
/// calls run one at a time, so the side's peak is the largest `live before + peak within call`.
#[derive(Clone, Copy, Default)]
struct Meter {
    live: i64,
    peak: i64,
    allocs: u64,
    /// The capacity `Session::rx_dgram` has reached, modelled from the lengths of the datagrams
    /// fed (`handle_datagram` clears it and `extend_from_slice`s each datagram: Vec growth
    /// takes max(2 * capacity, needed)).
    rx_dgram_cap: usize,
}

impl Meter {
    fn add(&mut self, i: &allocation_counter::AllocationInfo) {
        self.peak = self.peak.max(self.live + i.bytes_max as i64);
        self.live += i.bytes_current;
        self.allocs += i.count_total;
    }

    fn rx(&mut self, len: usize) {
        if len > self.rx_dgram_cap {
            self.rx_dgram_cap = len.max(2 * self.rx_dgram_cap).max(8);
        }
    }
}

struct Step {
    side: Side,
    what: &'static str,
    round: usize,
    input: usize,
    delta: i64,
    peak: u64,
    allocs: u64,
}

/// Per-side heap accounting of a DTLS exchange, and a trace of every call that allocated.
#[derive(Default)]
struct Probe {
    client: Meter,
    server: Meter,
    /// Client and server sessions together (the listener excluded).
    both: Meter,
    listener: Meter,
    trace: Vec<Step>,
    round: usize,
}

impl Probe {
    fn new() -> Self {
        Self {
            trace: Vec::with_capacity(256),
            ..Self::default()
        }
    }
}

/// Runs `f`, charging its heap use to `side` when probing.
fn metered<T>(
    p: &mut Option<&mut Probe>,
    side: Side,
    what: &'static str,
    input: usize,
    f: impl FnOnce() -> T,
) -> T {
    let Some(p) = p.as_deref_mut() else {
        return f();
    };
    let mut out = None;
    let info = allocation_counter::measure(|| out = Some(f()));
    match side {
        Side::Client => {
            p.client.add(&info);
            p.both.add(&info);
        }
        Side::Server => {
            p.server.add(&info);
            p.both.add(&info);
        }
        Side::Listener => p.listener.add(&info),
    }
    if info.count_total > 0 || info.bytes_current != 0 {
        p.trace.push(Step {
            side,
            what,
            round: p.round,
            input,
            delta: info.bytes_current,
            peak: info.bytes_max,
            allocs: info.count_total,
        });
    }
    out.expect("ran")
}

/// Drains a DTLS session: datagrams to `out`, application bytes counted and returned.
fn dtls_drain(
    s: &mut Session,
    wire: &mut [u8],
    out: &mut Flat,
    p: &mut Option<&mut Probe>,
    side: Side,
) -> usize {
    metered(p, side, "poll_output (drain)", 0, || {
        let mut app = 0;
        loop {
            match s.poll_output(wire) {
                Output::Transmit(d) => out.push(d),
                Output::Event(Event::AppData(d)) => app += d.len(),
                Output::Event(_) => {}
                Output::Wait(_) => return app,
                other => panic!("unexpected {other:?}"),
            }
        }
    })
}

/// Feeds one datagram (it must be taken whole) and drains.
fn dtls_feed(
    s: &mut Session,
    d: &[u8],
    wire: &mut [u8],
    out: &mut Flat,
    p: &mut Option<&mut Probe>,
    side: Side,
) -> usize {
    if let Some(p) = p.as_deref_mut() {
        match side {
            Side::Client => p.client.rx(d.len()),
            _ => p.server.rx(d.len()),
        }
    }
    let n = metered(p, side, "handle_input", d.len(), || {
        s.handle_input(Now::default(), d).expect("handle_input")
    });
    assert_eq!(n, d.len(), "datagram not taken whole");
    dtls_drain(s, wire, out, p, side)
}

/// A full DTLS handshake over a perfect in-memory network, the server created for the first
/// datagram that reaches it (after the listener accepts it, when there is a listener).
fn our_dtls_handshake(
    cc: &Arc<ClientConfig>,
    sc: &Arc<ServerConfig>,
    listener: Option<&CookieListener>,
    b: &mut DBufs,
    mut p: Option<&mut Probe>,
) -> (Session, Session) {
    let DBufs { wire, c2s, s2c, .. } = b;
    let mut client = metered(&mut p, Side::Client, "Session::client", 0, || {
        Session::client(cc.clone(), Transport::dtls(), None, Now::default(), [1; 32])
            .expect("client")
    });
    c2s.clear();
    dtls_drain(&mut client, wire, c2s, &mut p, Side::Client);
    let mut server: Option<Session> = None;
    for round in 1..=8 {
        if let Some(p) = p.as_deref_mut() {
            p.round = round;
        }
        s2c.clear();
        for i in 0..c2s.len() {
            let d = c2s.get(i);
            if server.is_none() {
                if let Some(l) = listener {
                    let accept = metered(
                        &mut p,
                        Side::Listener,
                        "CookieListener::handle_datagram",
                        d.len(),
                        || match l.handle_datagram(PEER, d) {
                            ListenerDecision::SendHelloVerify(hvr) => {
                                s2c.push(&hvr);
                                false
                            }
                            ListenerDecision::Accept => true,
                            other => panic!("listener: {other:?}"),
                        },
                    );
                    if !accept {
                        continue;
                    }
                }
                server = Some(metered(&mut p, Side::Server, "Session::server", 0, || {
                    Session::server(sc.clone(), Transport::dtls(), Now::default(), [2; 32])
                        .expect("server")
                }));
            }
            let s = server.as_mut().expect("created above");
            dtls_feed(s, d, wire, s2c, &mut p, Side::Server);
        }
        c2s.clear();
        for i in 0..s2c.len() {
            dtls_feed(&mut client, s2c.get(i), wire, c2s, &mut p, Side::Client);
        }
        if client.is_connected() && server.as_ref().is_some_and(Session::is_connected) {
            assert!(c2s.is_empty(), "client still sending after the handshake");
            return (client, server.expect("connected"));
        }
    }
    panic!("DTLS handshake made no progress");
}

/// `from.send` of one datagram's payload, fed to `to` and drained; returns bytes delivered.
fn our_dtls_transfer(
    from: &mut Session,
    to: &mut Session,
    payload: &[u8],
    b: &mut DBufs,
    p: &mut Option<&mut Probe>,
    (fs, ts): (Side, Side),
) -> usize {
    let sent = metered(p, fs, "send", payload.len(), || {
        from.send(Now::default(), payload).expect("send")
    });
    assert_eq!(sent, payload.len());
    b.c2s.clear();
    dtls_drain(from, &mut b.wire, &mut b.c2s, p, fs);
    assert_eq!(b.c2s.len(), 1, "one datagram");
    b.s2c.clear();
    let got = dtls_feed(to, b.c2s.get(0), &mut b.plain, &mut b.s2c, p, ts);
    assert!(b.s2c.is_empty());
    assert_eq!(got, sent);
    got
}

/// The record path without probes or asserts beyond the delivered length.
fn our_dtls_round(from: &mut Session, to: &mut Session, payload: &[u8], b: &mut DBufs) -> usize {
    let sent = from.send(Now::default(), payload).expect("send");
    let mut got = 0;
    loop {
        match from.poll_output(&mut b.wire) {
            Output::Transmit(t) => {
                let n = to.handle_input(Now::default(), t).expect("handle_input");
                debug_assert_eq!(n, t.len());
                loop {
                    match to.poll_output(&mut b.plain) {
                        Output::Event(Event::AppData(d)) => got += d.len(),
                        Output::Wait(_) => break,
                        other => panic!("unexpected {other:?}"),
                    }
                }
            }
            Output::Wait(_) => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(got, sent);
    got
}

/// One end of an in-memory datagram link: each `write` is one datagram, each `read` takes one.
struct DPipe {
    rx: Rc<RefCell<VecDeque<Vec<u8>>>>,
    tx: Rc<RefCell<VecDeque<Vec<u8>>>>,
}

impl Read for DPipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(d) = self.rx.borrow_mut().pop_front() else {
            return Err(io::ErrorKind::WouldBlock.into());
        };
        assert!(d.len() <= buf.len(), "OpenSSL read buffer below a datagram");
        buf[..d.len()].copy_from_slice(&d);
        Ok(d.len())
    }
}

impl Write for DPipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tx.borrow_mut().push_back(buf.to_vec());
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The OpenSSL side's cookie: SHA-256 over a secret and the peer address, truncated to 16
/// bytes, as OpenSSL's own `s_server` does (an HMAC over the address); OpenSSL keeps no cookie
/// logic itself. (The client random is not usable: it is not yet set when the callbacks run.)
fn ossl_cookie() -> [u8; 16] {
    let mut input = [0u8; 32 + PEER.len()];
    input[..32].copy_from_slice(&[7; 32]);
    input[32..].copy_from_slice(PEER);
    let mut c = [0u8; 16];
    c.copy_from_slice(&openssl::sha::sha256(&input)[..16]);
    c
}

fn ossl_dtls_context(server: bool, cipher: &str, cookies: bool) -> SslContext {
    let mut b = SslContext::builder(SslMethod::dtls()).unwrap();
    b.set_min_proto_version(Some(SslVersion::DTLS1_2)).unwrap();
    b.set_max_proto_version(Some(SslVersion::DTLS1_2)).unwrap();
    b.set_cipher_list(&format!("{cipher}:@SECLEVEL=0")).unwrap();
    b.set_options(SslOptions::NO_TICKET | SslOptions::NO_QUERY_MTU);
    b.set_session_cache_mode(SslSessionCacheMode::OFF);
    if server {
        b.set_psk_server_callback(|_, identity, psk| {
            if identity != Some(ID) {
                return Ok(0);
            }
            psk[..KEY.len()].copy_from_slice(&KEY);
            Ok(KEY.len())
        });
        if cookies {
            b.set_options(SslOptions::COOKIE_EXCHANGE);
            b.set_cookie_generate_cb(|_, out| {
                let c = ossl_cookie();
                out[..c.len()].copy_from_slice(&c);
                Ok(c.len())
            });
            b.set_cookie_verify_cb(|_, cookie| cookie == ossl_cookie());
        }
    } else {
        b.set_psk_client_callback(|_, _hint, identity, psk| {
            identity[..ID.len()].copy_from_slice(ID);
            identity[ID.len()] = 0;
            psk[..KEY.len()].copy_from_slice(&KEY);
            Ok(KEY.len())
        });
    }
    b.build()
}

fn ossl_dtls_handshake(
    cctx: &SslContext,
    sctx: &SslContext,
) -> (SslStream<DPipe>, SslStream<DPipe>) {
    let a = Rc::new(RefCell::new(VecDeque::new()));
    let b = Rc::new(RefCell::new(VecDeque::new()));
    let mut cssl = Ssl::new(cctx).unwrap();
    cssl.set_connect_state();
    cssl.set_mtu(1232).unwrap();
    let mut sssl = Ssl::new(sctx).unwrap();
    sssl.set_accept_state();
    sssl.set_mtu(1232).unwrap();
    let cp = DPipe {
        rx: b.clone(),
        tx: a.clone(),
    };
    let mut c = SslStream::new(cssl, cp).unwrap();
    let mut s = SslStream::new(sssl, DPipe { rx: a, tx: b }).unwrap();
    for _ in 0..8 {
        let cdone = want_read(c.do_handshake());
        let sdone = want_read(s.do_handshake());
        if cdone && sdone {
            return (c, s);
        }
    }
    panic!("OpenSSL DTLS handshake made no progress");
}

fn ossl_dtls_transfer(
    from: &mut SslStream<DPipe>,
    to: &mut SslStream<DPipe>,
    payload: &[u8],
    plain: &mut [u8],
) -> usize {
    let sent = from.ssl_write(payload).expect("ssl_write");
    let got = to.ssl_read(plain).expect("ssl_read");
    assert_eq!(got, sent);
    got
}

fn dtls_rows(t: &Timer, rows: &mut Vec<Row>) {
    let payload: Vec<u8> = (0..DGRAM_PAYLOAD).map(|i| (i * 5) as u8).collect();
    for suite in [CipherSuite::PskAes128Ccm, CipherSuite::PskAes128Ccm8] {
        let (cc, sc) = our_configs(suite);
        let mut b = DBufs::new();
        let (mut c, mut s) = our_dtls_handshake(&cc, &sc, None, &mut b, None);
        assert_eq!(c.info().map(|i| i.suite), Some(suite));
        let cctx = ossl_dtls_context(false, ossl_cipher(suite), false);
        let sctx = ossl_dtls_context(true, ossl_cipher(suite), false);
        let (mut oc, mut os) = ossl_dtls_handshake(&cctx, &sctx);
        assert_eq!(
            oc.ssl().current_cipher().map(|c| c.name()),
            Some(ossl_cipher(suite))
        );
        assert_eq!(oc.ssl().version_str(), "DTLSv1.2");
        let mut plain = vec![0u8; CHUNK];
        let (x, y) = t.pair(
            64,
            &mut || {
                black_box(our_dtls_round(&mut c, &mut s, &payload, &mut b));
            },
            &mut || {
                black_box(ossl_dtls_transfer(&mut oc, &mut os, &payload, &mut plain));
            },
        );
        let k = DGRAM_PAYLOAD as f64 / MB;
        rows.push(Row {
            case: format!(
                "DTLS 1 KiB datagram send->handle_input->AppData, {}",
                suite_name(suite)
            ),
            unit: "MB/s",
            ours: x.scale(k),
            theirs: y.scale(k),
        });
    }

    let suite = CipherSuite::PskAes128Ccm8;
    let (cc, sc) = our_configs(suite);
    let listener = CookieListener::new([7; 32]);
    let mut b = DBufs::new();
    for cookies in [false, true] {
        let cctx = ossl_dtls_context(false, ossl_cipher(suite), false);
        let sctx = ossl_dtls_context(true, ossl_cipher(suite), cookies);
        let l = cookies.then_some(&listener);
        let (x, y) = t.pair(
            4,
            &mut || {
                black_box(our_dtls_handshake(&cc, &sc, l, &mut b, None));
            },
            &mut || {
                black_box(ossl_dtls_handshake(&cctx, &sctx));
            },
        );
        rows.push(Row {
            case: format!(
                "full DTLS-PSK handshake, CCM_8, {}",
                if cookies {
                    "with HelloVerifyRequest (ours: CookieListener)"
                } else {
                    "no cookie exchange"
                }
            ),
            unit: "hs/s",
            ours: x,
            theirs: y,
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Heap use (m2msec only)

fn heap_report() {
    let suite = CipherSuite::PskAes128Ccm8;
    let (cc, sc) = our_configs(suite);
    let mut b = Bufs::new();
    let chunk = vec![0x5au8; CHUNK];
    // Warm up anything lazily allocated outside the sessions.
    drop(our_handshake(&cc, &sc, &mut b));

    let hs = allocation_counter::measure(|| {
        drop(black_box(our_handshake(&cc, &sc, &mut b)));
    });
    let mut pair = None;
    let est = allocation_counter::measure(|| {
        pair = Some(our_handshake(&cc, &sc, &mut b));
    });
    let (mut c, mut s) = pair.expect("pair");
    let first = allocation_counter::measure(|| {
        our_transfer(&mut c, &mut s, &chunk, &mut b);
        our_transfer(&mut s, &mut c, &chunk, &mut b);
    });
    for _ in 0..10 {
        our_transfer(&mut c, &mut s, &chunk, &mut b);
        our_transfer(&mut s, &mut c, &chunk, &mut b);
    }
    const N: u64 = 1000;
    let steady = allocation_counter::measure(|| {
        for _ in 0..N {
            our_transfer(&mut c, &mut s, &chunk, &mut b);
        }
    });
    let small = allocation_counter::measure(|| {
        for _ in 0..N {
            our_transfer(&mut c, &mut s, &chunk[..100], &mut b);
        }
    });
    let mut ours = Ours::new(suite, CHUNK);
    ours.round();
    let rec = allocation_counter::measure(|| {
        for _ in 0..N {
            ours.round();
        }
    });

    println!();
    println!("Heap (m2msec only, CCM_8; Rust allocations of this thread):");
    println!(
        "  one full handshake (client+server):   {} allocations, {} B allocated in total, peak {} B live",
        hs.count_total, hs.bytes_total, hs.bytes_max
    );
    println!(
        "  Session value itself (inline, not heap):  {} B each (size_of::<Session>())",
        size_of::<Session>()
    );
    println!(
        "    of which Protection {} B (x2 live, + pending DirectionKeys {} B while handshaking), CcmKey {} B",
        size_of::<Protection>(),
        size_of::<m2msec::key_schedule::DirectionKeys>(),
        size_of::<m2msec::crypto::aead::CcmKey>()
    );
    println!(
        "  established pair, right after handshake: {} B live in {} blocks (configs excluded, shared by Arc)",
        est.bytes_current, est.count_current
    );
    println!(
        "  + after first 16 KiB record each way:   {} B more in {} blocks -> {} B for the pair",
        first.bytes_current,
        first.count_current,
        est.bytes_current + first.bytes_current
    );
    let mut v = Vec::new();
    Ours::new(suite, CHUNK).seal.seal_record(
        &mut v,
        Wire::Tls,
        ContentType::ApplicationData,
        TLS12,
        0,
        &chunk,
    );
    println!(
        "    (seal_record of 16 KiB into an empty Vec: len {} B, capacity {} B)",
        v.len(),
        v.capacity()
    );
    println!(
        "  steady state Session send->recv, 16 KiB: {:.3} allocations/record ({} in {N} records)",
        steady.count_total as f64 / N as f64,
        steady.count_total
    );
    println!(
        "  steady state Session send->recv, 100 B:  {:.3} allocations/record ({} in {N} records)",
        small.count_total as f64 / N as f64,
        small.count_total
    );
    println!(
        "  Protection seal (reused Vec) + open:     {:.3} allocations/record ({} in {N} records)",
        rec.count_total as f64 / N as f64,
        rec.count_total
    );
}

fn side_name(s: Side) -> &'static str {
    match s {
        Side::Client => "client",
        Side::Server => "server",
        Side::Listener => "listener",
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "NOT met"
    }
}

/// DTLS heap use: per side, measured around each call (see `Probe`).
fn dtls_heap_report() {
    const GOAL_EST: i64 = 2048;
    const GOAL_PEAK: i64 = 8192;
    const N: usize = 100;
    let suite = CipherSuite::PskAes128Ccm8;
    let (cc, sc) = our_configs(suite);
    let listener = CookieListener::new([7; 32]);
    let mut b = DBufs::new();
    let payload = vec![0x5au8; DGRAM_PAYLOAD];
    // Warm up anything lazily allocated outside the sessions.
    drop(our_dtls_handshake(&cc, &sc, Some(&listener), &mut b, None));

    println!();
    println!(
        "Heap, DTLS-PSK (m2msec only, CCM_8, MTU {}, perfect in-memory network; Rust allocations, \
         measured around every Session call and charged to its side):",
        m2msec::dtls::DEFAULT_MTU
    );
    println!(
        "  size_of::<Session>() = {} B inline (the same type for TLS and DTLS; DTLS state is boxed)",
        size_of::<Session>()
    );
    for cookies in [false, true] {
        let mut p = Probe::new();
        let (mut c, mut s) =
            our_dtls_handshake(&cc, &sc, cookies.then_some(&listener), &mut b, Some(&mut p));
        let hs = (p.client, p.server, p.both, p.listener);
        println!(
            "  {}:",
            if cookies {
                "with HelloVerifyRequest (CookieListener before the server Session)"
            } else {
                "without cookie exchange"
            }
        );
        println!(
            "    peak heap during the handshake: client {} B, server {} B, both sessions together {} B \
             (goal < {GOAL_PEAK} B per session: {})",
            hs.0.peak,
            hs.1.peak,
            hs.2.peak,
            verdict(hs.0.peak < GOAL_PEAK && hs.1.peak < GOAL_PEAK)
        );
        println!(
            "    allocations during the handshake: client {}, server {}{}",
            hs.0.allocs,
            hs.1.allocs,
            if cookies {
                format!(
                    "; listener {} ({} B peak, all freed)",
                    hs.3.allocs, hs.3.peak
                )
            } else {
                String::new()
            }
        );
        for (name, m) in [("client", hs.0), ("server", hs.1)] {
            println!(
                "    {name} established, drained: {} B live; rx_dgram capacity (modelled) {} B; \
                 beyond it {} B (goal < {GOAL_EST} B: {})",
                m.live,
                m.rx_dgram_cap,
                m.live - m.rx_dgram_cap as i64,
                verdict(m.live - (m.rx_dgram_cap as i64) < GOAL_EST)
            );
        }
        if !cookies {
            println!(
                "    trace (calls that allocated or freed; r = round trip, 0 = before the first):"
            );
            for st in &p.trace {
                println!(
                    "      {:<8} r{} {:<34} {:>5} B in  {:>+6} B live  peak +{:<5} {:>3} allocs",
                    side_name(st.side),
                    st.round,
                    st.what,
                    st.input,
                    st.delta,
                    st.peak,
                    st.allocs
                );
            }
        }
        // Data: N datagrams of 1 KiB each way.
        let mark = p.trace.len();
        p.round = 9;
        p.client.peak = p.client.live;
        p.server.peak = p.server.live;
        {
            let mut po = Some(&mut p);
            for _ in 0..N {
                our_dtls_transfer(
                    &mut c,
                    &mut s,
                    &payload,
                    &mut b,
                    &mut po,
                    (Side::Client, Side::Server),
                );
                our_dtls_transfer(
                    &mut s,
                    &mut c,
                    &payload,
                    &mut b,
                    &mut po,
                    (Side::Server, Side::Client),
                );
            }
        }
        for (name, m, est) in [("client", p.client, hs.0), ("server", p.server, hs.1)] {
            println!(
                "    {name} after {N} x {DGRAM_PAYLOAD} B datagrams each way: {} B live ({:+} B), \
                 peak {} B; rx_dgram capacity (modelled) {} B; beyond it {} B ({} allocations in \
                 {} datagrams)",
                m.live,
                m.live - est.live,
                m.peak,
                m.rx_dgram_cap,
                m.live - m.rx_dgram_cap as i64,
                m.allocs - est.allocs,
                2 * N
            );
        }
        if !cookies {
            let data = &p.trace[mark..];
            let sends = data.iter().filter(|st| st.what == "send").count();
            for st in data.iter().take(8) {
                println!(
                    "      data     {:<8} {:<34} {:>5} B in  {:>+6} B live  peak +{:<5} {:>3} allocs",
                    side_name(st.side),
                    st.what,
                    st.input,
                    st.delta,
                    st.peak,
                    st.allocs
                );
            }
            println!(
                "      data     ... {} more rows; {} of the {} `send`s allocated (the datagram Vec, \
                 freed when poll_output hands it out)",
                data.len().saturating_sub(8),
                sends,
                2 * N
            );
            let (ms, cr, sr) = fixed_keys();
            let keys = allocation_counter::measure(|| {
                black_box(key_expansion(&ms, &cr, &sr, suite.tag_len()));
            });
            println!(
                "    of the established heap, per session: the two AES-128 key schedules \
                 (key_expansion -> CcmKey::new, boxed) {} B in {} blocks",
                keys.bytes_max, keys.count_total
            );
            println!(
                "      (aes::Aes128Enc, encryption schedule only, one per direction: a union sized \
                 for the software fixsliced schedule, 88 x u64 = 704 B, of which AES-NI uses \
                 11 x 16 = 176 B)"
            );
        }
        // Cross-check: dropping each session frees what its meter says is live.
        let (lc, ls) = (p.client.live, p.server.live);
        let dc = allocation_counter::measure(|| drop(c));
        let ds = allocation_counter::measure(|| drop(s));
        assert_eq!(
            (-dc.bytes_current, -ds.bytes_current),
            (lc, ls),
            "heap meters disagree with what drop frees"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// `openssl speed` for reference

fn openssl_speed() {
    println!();
    if std::env::var_os("M2MSEC_BENCH_NO_SPEED").is_some() {
        println!("openssl speed: skipped (M2MSEC_BENCH_NO_SPEED)");
        return;
    }
    let out = Command::new("openssl")
        .args([
            "speed",
            "-elapsed",
            "-seconds",
            "1",
            "-aead",
            "-evp",
            "aes-128-ccm",
        ])
        .output();
    let out = match out {
        Ok(o) if o.status.success() => o,
        Ok(o) => {
            println!("openssl speed: exited with {} (skipped)", o.status);
            return;
        }
        Err(e) => {
            println!("openssl speed: not run ({e})");
            return;
        }
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    println!("openssl speed -elapsed -seconds 1 -aead -evp aes-128-ccm (encrypt+tag only, 16-byte tag; for reference):");
    let mut any = false;
    for line in text.lines().chain(err.lines()) {
        let l = line.trim();
        if l.starts_with("Doing") && (l.contains(" 1024 size") || l.contains(" 16384 size")) {
            println!("  {l}");
            any = true;
        }
    }
    // The summary table: a `type` header of sizes, then a row of 1000s of bytes per second.
    let mut sizes: Vec<&str> = Vec::new();
    for line in text.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.first() == Some(&"type") {
            sizes = cols[1..]
                .iter()
                .copied()
                .filter(|c| *c != "bytes")
                .collect();
        } else if !sizes.is_empty() && line.to_ascii_uppercase().starts_with("AES-128-CCM") {
            let vals = &cols[cols.len().saturating_sub(sizes.len())..];
            for (size, v) in sizes.iter().zip(vals) {
                if *size == "1024" || *size == "16384" {
                    match v.trim_end_matches('k').parse::<f64>() {
                        Ok(k) => {
                            println!(
                                "  {size:>5} B blocks: {:.1} MB/s (encrypt only)",
                                k / 1000.0
                            );
                            any = true;
                        }
                        Err(_) => println!("  {size:>5} B blocks: unparsed '{v}'"),
                    }
                }
            }
        }
    }
    if !any {
        println!("  (output not recognised; skipped)");
    }
}

// ---------------------------------------------------------------------------------------------

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not supported.
    let t = Timer::from_env();
    let started = Instant::now();
    println!(
        "m2msec vs OpenSSL ({}), medians of {} x {} ms (min-max in parentheses)",
        openssl::version::version(),
        t.reps,
        t.rep.as_millis()
    );
    let mut rows = Vec::new();
    record_rows(&t, &mut rows);
    session_rows(&t, &mut rows);
    dtls_rows(&t, &mut rows);

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

    heap_report();
    dtls_heap_report();
    openssl_speed();

    println!();
    println!("Build: profile.bench = release defaults (opt-level 3, lto off, codegen-units 16) + debug = 1; debug_assertions {}.",
        if cfg!(debug_assertions) { "ON" } else { "off" });
    println!(
        "CPU: aes/pclmulqdq detected at run time: {}; compiled with target-feature aes: {}.",
        cpu_aes(),
        cfg!(target_feature = "aes")
    );
    println!("  -C target-cpu=native is not used. The aes crate selects AES-NI at run time either way, but");
    println!(
        "  only with the target feature enabled at compile time can it inline into the core's CCM"
    );
    println!(
        "  (crypto/aead.rs: one aes backend call per record), so it can matter for ours (OpenSSL"
    );
    println!("  dispatches at run time).");
    println!("Total bench time: {:.1} s", started.elapsed().as_secs_f64());
}

fn cpu_aes() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("aes")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}
