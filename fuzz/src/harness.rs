//! The fuzz harness: one function per cargo-fuzz target, each taking arbitrary bytes and
//! panicking only when an invariant of the core breaks.
//!
//! This file depends on nothing but `m2msec` and `std`: `core/tests/fuzz_regressions.rs`
//! includes it by path to replay `fuzz/regressions/<target>/*` (and `fuzz/seeds/<target>/*`)
//! through exactly the logic the fuzzer ran. The input formats are documented on each target and
//! produced for the seeds by `fuzz/gen_corpus.rs`.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;

use m2msec::codec::Reader;
use m2msec::config::PskLookup;
use m2msec::dtls::{
    CookieListener, DtlsRecordHeader, FragmentHeader, Inserted, ListenerDecision, Reassembler,
    COOKIE_LEN, HS_HEADER_LEN,
};
use m2msec::enums::{ContentType, HandshakeType};
use m2msec::error::{ApiMisuse, InvalidMessage};
use m2msec::messages::{
    encode_server_name, is_dns_name, parse_server_name, ClientHello, HelloVerifyRequest,
    PskIdentityBody, ServerHello,
};
use m2msec::record::{
    Deframer, RecordHeader, DTLS_HEADER_LEN, MAX_CIPHERTEXT, MAX_PLAINTEXT, TLS_HEADER_LEN,
};
use m2msec::{
    CipherSuite, ClientConfig, ClientPsk, Error, Event, Instant, Now, Output, Psk, PskResolver,
    PskTable, ServerConfig, Session, Transport, UnixTime,
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
];

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
    let resolver: Box<dyn PskResolver> = if cfg & CFG_DEFER_PSK != 0 {
        Box::new(Deferring)
    } else {
        let mut t = PskTable::new();
        t.insert(ID, Psk::new(&KEY).expect("valid PSK"))
            .expect("valid identity");
        Box::new(t)
    };
    let hint = (cfg & CFG_BARE == 0).then_some(HINT);
    Arc::new(
        ServerConfig::builder(resolver)
            .suites(suites(cfg))
            .identity_hint(hint)
            .build()
            .expect("valid server config"),
    )
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

/// `Now` at `micros` of virtual monotonic time.
pub fn now_at(micros: u64) -> Now {
    Now {
        mono: Instant(micros),
        unix: UnixTime(0),
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
    fn new(s: Session, dtls: bool, server: bool) -> Self {
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
                            )
                        ),
                        "an error that is neither sticky nor misuse: {e:?}"
                    ),
                }
                None
            }
        }
    }

    /// Drains `poll_output` until `Wait`; answers `PskNeeded` (and drains again).
    fn drain(&mut self) {
        loop {
            let mut psk_for = None;
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
                                assert_eq!(info.psk_identity, ID);
                                self.connected = true;
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
    let mut inp = Input { data };
    let cfg = inp.byte().unwrap_or(0);
    let s = if server {
        Session::server(server_config(cfg), Transport::Tls, now_at(0), SERVER_SEED)
    } else {
        Session::client(
            client_config(cfg),
            Transport::Tls,
            client_sni(cfg),
            now_at(0),
            CLIENT_SEED,
        )
    };
    let mut d = Driver::new(s.expect("session"), false, server);
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
    let mut inp = Input { data };
    let cfg = inp.byte().unwrap_or(0);
    let transport = Transport::Dtls { mtu: MTU };
    let s = if server {
        Session::server(server_config(cfg), transport, now_at(0), SERVER_SEED)
    } else {
        Session::client(
            client_config(cfg),
            transport,
            client_sni(cfg),
            now_at(0),
            CLIENT_SEED,
        )
    };
    let mut d = Driver::new(s.expect("session"), true, server);
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
/// itself and on the body of a decoded request or response). Whatever decodes re-encodes, and
/// the re-encoding decodes to the same message; nothing panics.
pub fn binding(data: &[u8]) {
    use m2msec::frameworks::binding::*;
    binding_bodies(data);
    if let Ok(Some((req, used))) = Request::decode(data) {
        binding_bodies(&req.body);
        assert!(used <= data.len());
        let mut wire = Vec::new();
        if req.encode(&mut wire).is_ok() {
            let (again, n) = Request::decode(&wire)
                .expect("re-encoded request decodes")
                .expect("complete");
            assert_eq!(n, wire.len());
            assert_eq!(again, req);
        }
        let _ = black_box(Route::of(req.method, &req.path));
    }
    if let Ok(Some((resp, used))) = Response::decode(data) {
        binding_bodies(&resp.body);
        assert!(used <= data.len());
        let mut wire = Vec::new();
        if resp.encode(&mut wire).is_ok() {
            let (again, _) = Response::decode(&wire)
                .expect("re-encoded response decodes")
                .expect("complete");
            assert_eq!(again, resp);
        }
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
