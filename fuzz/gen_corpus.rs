//! Writes the seed corpora in `fuzz/seeds/<target>/` from real in-memory handshakes, and the
//! `binding` seeds from the examples of `docs/protocol.md` ([`binding_seeds`]).
//!
//! All randomness is seeded (`harness::SERVER_SEED`, `harness::CLIENT_SEED`, the cookie
//! secret) and the virtual clock stays at zero, so a client/server pair run here produces exactly
//! the bytes the fuzzed session produces and expects: replaying the server-bound stream into the
//! `server_*` targets (and the client-bound one into `client_*`) completes the handshake and
//! reaches application data and close_notify, and mutations start from there.
//!
//! ```text
//! cargo run --manifest-path fuzz/Cargo.toml --example gen_corpus            # (re)write the seeds
//! cargo run --manifest-path fuzz/Cargo.toml --example gen_corpus -- --check # exit 1 if stale
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use m2msec::cert::{pem_encode, CertBuilder, SigningKey, SubjectAltName};
use m2msec::codec::Reader;
use m2msec::dtls::{CookieListener, DtlsRecordHeader, FragmentHeader, ListenerDecision};
use m2msec::enums::{ContentType, HandshakeType};
use m2msec::messages::ClientHello;
use m2msec::{Event, Output, Psk, Session, Transport, UnixTime};
use m2msec_fuzz::harness::{
    self as h, CFG_BARE, CFG_CCM8_ONLY, CFG_DEFER_PSK, CFG_E_BARE, CFG_E_CCM8_ONLY, CFG_E_DEFER,
    CFG_E_MIXED, CFG_E_OPTIONAL, CFG_E_RAW,
};

/// Seed files by target, then by file name.
type Seeds = BTreeMap<&'static str, BTreeMap<String, Vec<u8>>>;

fn add(seeds: &mut Seeds, target: &'static str, name: String, data: Vec<u8>) {
    assert!(h::TARGETS.contains(&target));
    seeds.entry(target).or_default().insert(name, data);
}

/// One side of a pair: the session and the op stream that replays what it was given.
struct Side {
    s: Session,
    ops: Vec<u8>,
    dtls: bool,
    server: bool,
    /// The config byte of an ECDHE-ECDSA session.
    ecdhe: Option<u8>,
    /// Everything it received, by transport write (TLS: flight; DTLS: datagram).
    received: Vec<Vec<u8>>,
}

impl Side {
    fn new(s: Session, cfg: u8, dtls: bool, server: bool, ecdhe: bool) -> Self {
        Self {
            s,
            ops: vec![cfg],
            dtls,
            server,
            ecdhe: ecdhe.then_some(cfg),
            received: Vec::new(),
        }
    }

    /// Drains output (answering PskNeeded and VerifyPeer as the harness does); returns the
    /// transmits.
    fn drain(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let mut psk = None;
            let mut verify = None;
            loop {
                match self.s.poll_output(&mut buf) {
                    Output::Transmit(b) => out.push(b.to_vec()),
                    Output::Event(Event::PskNeeded { identity, .. }) => psk = Some(identity),
                    Output::Event(Event::VerifyPeer { credential }) => verify = Some(credential),
                    Output::Event(_) => {}
                    Output::Wait(_) => break,
                    o => panic!("unexpected {o:?}"),
                }
            }
            if let Some(credential) = verify {
                let cfg = self.ecdhe.expect("VerifyPeer on an ECDHE session");
                let decision = h::answer_verify_peer(cfg, self.server, &credential);
                assert!(
                    decision.is_ok(),
                    "the fixture peer is refused: {decision:?}"
                );
                self.s.peer_verified(h::now_at(0), decision).unwrap();
                continue;
            }
            let Some(identity) = psk else { break };
            assert_eq!(identity, h::ID);
            self.s
                .provide_psk(h::now_at(0), Some(Psk::new(&h::KEY).unwrap()))
                .unwrap();
        }
        if self.dtls {
            out
        } else {
            // A TLS side writes one stream: one op per flight.
            let all: Vec<u8> = out.concat();
            if all.is_empty() {
                Vec::new()
            } else {
                vec![all]
            }
        }
    }

    fn receive(&mut self, w: &[u8]) -> Vec<Vec<u8>> {
        if self.dtls {
            h::dtls_op_datagram(&mut self.ops, w);
        } else {
            h::tls_op_input(&mut self.ops, w);
        }
        self.received.push(w.to_vec());
        let mut rest = w;
        let mut out = Vec::new();
        while !rest.is_empty() {
            let n = self.s.handle_input(h::now_at(0), rest).unwrap();
            rest = &rest[n..];
            out.extend(self.drain());
        }
        out
    }

    fn send(&mut self, data: &[u8]) -> Vec<Vec<u8>> {
        if self.dtls {
            h::dtls_op_send(&mut self.ops, data);
        } else {
            h::op_send(&mut self.ops, data);
        }
        assert_eq!(self.s.send(h::now_at(0), data).unwrap(), data.len());
        self.drain()
    }

    fn close(&mut self) -> Vec<Vec<u8>> {
        if self.dtls {
            h::dtls_op_close(&mut self.ops);
        } else {
            self.ops.push(h::OP_CLOSE);
        }
        self.s.close(h::now_at(0)).unwrap();
        self.drain()
    }
}

/// Which way a pair is set up.
#[derive(Clone, Copy)]
struct Setup {
    cfg: u8,
    ecdhe: bool,
    dtls: bool,
    client_mtu: usize,
    server_mtu: usize,
    cookie: bool,
}

/// Runs a whole handshake, data both ways and close_notify both ways.
fn run_pair(st: Setup) -> (Side, Side) {
    let (ct, stp) = if st.dtls {
        (
            Transport::Dtls { mtu: st.client_mtu },
            Transport::Dtls { mtu: st.server_mtu },
        )
    } else {
        (Transport::Tls, Transport::Tls)
    };
    let client = h::new_session(st.cfg, ct, false, st.ecdhe, h::now_at(0));
    let mut c = Side::new(client, st.cfg, st.dtls, false, st.ecdhe);
    let new_server = || {
        let s = h::new_session(st.cfg, stp, true, st.ecdhe, h::now_at(0));
        Side::new(s, st.cfg, st.dtls, true, st.ecdhe)
    };
    let listener = CookieListener::new(h::COOKIE_SECRET);
    let mut server: Option<Side> = (!st.cookie).then(new_server);
    let mut to_server = c.drain();
    let mut rounds = 0;
    while !(c.s.is_connected() && server.as_ref().is_some_and(|s| s.s.is_connected())) {
        rounds += 1;
        assert!(rounds < 20, "no progress");
        let mut to_client = Vec::new();
        for w in to_server.drain(..) {
            if server.is_none() {
                match listener.handle_datagram(b"127.0.0.1:5684", &w) {
                    ListenerDecision::SendHelloVerify(hvr) => {
                        to_client.push(hvr);
                        continue;
                    }
                    ListenerDecision::Accept => server = Some(new_server()),
                    d => panic!("listener: {d:?}"),
                }
            }
            to_client.extend(server.as_mut().unwrap().receive(&w));
        }
        for w in to_client {
            to_server.extend(c.receive(&w));
        }
    }
    let mut s = server.unwrap();
    let flush = |c: &mut Side, s: &mut Side, mut to_s: Vec<Vec<u8>>, mut to_c: Vec<Vec<u8>>| {
        while !(to_s.is_empty() && to_c.is_empty()) {
            for w in std::mem::take(&mut to_s) {
                to_c.extend(s.receive(&w));
            }
            for w in std::mem::take(&mut to_c) {
                to_s.extend(c.receive(&w));
            }
        }
    };
    flush(&mut c, &mut s, to_server, Vec::new());
    let a = c.send(b"ping from the client");
    let b = s.send(b"pong from the server");
    flush(&mut c, &mut s, a, b);
    let a = c.close();
    flush(&mut c, &mut s, a, Vec::new());
    assert!(c.s.is_closed() && s.s.is_closed());
    (c, s)
}

/// Handshake messages (type, body) in plaintext TLS handshake records, up to the first CCS.
fn tls_messages(stream: &[u8]) -> Vec<(HandshakeType, Vec<u8>)> {
    let mut hs = Vec::new();
    let mut r = Reader::new(stream);
    while r.left() >= 5 {
        let typ = ContentType::from(r.u8().unwrap());
        let _version = r.u16().unwrap();
        let frag = r.vec16().unwrap();
        match typ {
            ContentType::Handshake => hs.extend_from_slice(frag),
            ContentType::ChangeCipherSpec => break,
            _ => {}
        }
    }
    let mut out = Vec::new();
    let mut r = Reader::new(&hs);
    while r.left() > 0 {
        let typ = HandshakeType::from(r.u8().unwrap());
        out.push((typ, r.vec24().unwrap().to_vec()));
    }
    out
}

/// Epoch-0 handshake record fragments (fragment headers and data) of a datagram.
fn dtls_handshake_fragments(dgram: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut off = 0;
    while let Ok((hd, range)) = DtlsRecordHeader::split(&dgram[off..]) {
        if hd.typ == ContentType::Handshake && hd.epoch == 0 {
            out.push(dgram[off + range.start..off + range.end].to_vec());
        }
        off += range.end;
    }
    out
}

fn sel(selector: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![selector];
    v.extend_from_slice(body);
    v
}

fn message_seeds(seeds: &mut Seeds, tag: &str, msgs: &[(HandshakeType, Vec<u8>)], dtls: bool) {
    for (i, (typ, body)) in msgs.iter().enumerate() {
        let name = format!("{tag}-{i}-{}", u8::from(*typ));
        let t = "handshake_messages";
        match typ {
            HandshakeType::ClientHello => {
                add(seeds, t, name.clone(), sel(u8::from(dtls), body));
                let ch = ClientHello::decode(body, dtls).unwrap();
                for e in ch.extensions.iter().flatten() {
                    if u16::from(e.typ) == 0 {
                        add(seeds, t, format!("{name}-sni"), sel(5, e.data));
                    }
                }
            }
            HandshakeType::ServerHello => add(seeds, t, name, sel(2, body)),
            HandshakeType::HelloVerifyRequest => add(seeds, t, name, sel(3, body)),
            HandshakeType::ServerKeyExchange | HandshakeType::ClientKeyExchange => {
                add(seeds, t, name, sel(4, body));
            }
            _ => {}
        }
    }
}

/// Whole DTLS handshake messages of a datagram flow (type and body of each unfragmented one).
fn dtls_messages(dgrams: &[Vec<u8>]) -> Vec<(HandshakeType, Vec<u8>)> {
    let mut out = Vec::new();
    for d in dgrams {
        for frag in dtls_handshake_fragments(d) {
            let mut r = Reader::new(&frag);
            while r.left() > 0 {
                let (fh, body) = FragmentHeader::read(&mut r).unwrap();
                if fh.offset == 0 && fh.fragment_length == fh.length {
                    out.push((fh.typ, body.to_vec()));
                }
            }
        }
    }
    out
}

fn reassembly_seed(dgrams: &[Vec<u8>]) -> Option<Vec<u8>> {
    let frags: Vec<u8> = dgrams
        .iter()
        .flat_map(|d| dtls_handshake_fragments(d))
        .flatten()
        .collect();
    // message_seq of the first fragment
    let next = u16::from_be_bytes([*frags.get(4)?, *frags.get(5)?]);
    let mut v = next.to_be_bytes().to_vec();
    v.extend_from_slice(&16384u16.to_be_bytes()); // max_message (the session default)
    v.extend_from_slice(&8192u16.to_be_bytes()); // max_total / 4
    v.push(8); // window
    v.extend_from_slice(&frags);
    Some(v)
}

fn generate() -> Seeds {
    let mut seeds = Seeds::new();
    // TLS
    for cfg in [0, CFG_DEFER_PSK, CFG_CCM8_ONLY, CFG_BARE] {
        let st = Setup {
            cfg,
            ecdhe: false,
            dtls: false,
            client_mtu: 0,
            server_mtu: 0,
            cookie: false,
        };
        let (c, s) = run_pair(st);
        add(
            &mut seeds,
            "server_tls",
            format!("handshake-cfg{cfg}"),
            s.ops,
        );
        add(
            &mut seeds,
            "client_tls",
            format!("handshake-cfg{cfg}"),
            c.ops,
        );
        if cfg == 0 {
            let to_server = s.received.concat();
            let to_client = c.received.concat();
            add(
                &mut seeds,
                "record_tls",
                "to-server".into(),
                sel(0x3f, &to_server),
            );
            add(
                &mut seeds,
                "record_tls",
                "to-client".into(),
                sel(0x3f, &to_client),
            );
            add(
                &mut seeds,
                "record_tls",
                "to-client-chunked".into(),
                sel(0x86, &to_client),
            );
            message_seeds(&mut seeds, "tls-c", &tls_messages(&to_server), false);
            message_seeds(&mut seeds, "tls-s", &tls_messages(&to_client), false);
        }
    }
    // DTLS: the fuzzed side has MTU 1232; its peer 1232 or 100 (fragmented flights).
    for cfg in [0, CFG_DEFER_PSK, CFG_CCM8_ONLY] {
        for cookie in [false, true] {
            for peer_mtu in [h::MTU, 100] {
                let tag = format!(
                    "{}{}-cfg{cfg}",
                    if cookie { "cookie" } else { "direct" },
                    if peer_mtu == h::MTU { "" } else { "-frag" }
                );
                let (c, _) = run_pair(Setup {
                    cfg,
                    ecdhe: false,
                    dtls: true,
                    client_mtu: h::MTU,
                    server_mtu: peer_mtu,
                    cookie,
                });
                let (_, s) = run_pair(Setup {
                    cfg,
                    ecdhe: false,
                    dtls: true,
                    client_mtu: peer_mtu,
                    server_mtu: h::MTU,
                    cookie,
                });
                add(&mut seeds, "server_dtls", tag.clone(), s.ops);
                add(&mut seeds, "client_dtls", tag.clone(), c.ops);
                if cfg != 0 {
                    continue;
                }
                for (i, d) in s.received.iter().chain(&c.received).enumerate() {
                    add(
                        &mut seeds,
                        "record_tls",
                        format!("dtls-{tag}-{i}"),
                        sel(0, d),
                    );
                }
                message_seeds(
                    &mut seeds,
                    &format!("dtls-c-{tag}"),
                    &dtls_messages(&s.received),
                    true,
                );
                message_seeds(
                    &mut seeds,
                    &format!("dtls-s-{tag}"),
                    &dtls_messages(&c.received),
                    true,
                );
                for (i, d) in s.received.iter().chain(&c.received).enumerate() {
                    for (j, f) in dtls_handshake_fragments(d).iter().enumerate() {
                        add(
                            &mut seeds,
                            "handshake_messages",
                            format!("frag-{tag}-{i}-{j}"),
                            sel(6, f),
                        );
                    }
                }
                if let Some(r) = reassembly_seed(&s.received) {
                    add(&mut seeds, "dtls_reassembly", format!("to-server-{tag}"), r);
                }
                if let Some(r) = reassembly_seed(&c.received) {
                    add(&mut seeds, "dtls_reassembly", format!("to-client-{tag}"), r);
                }
                // The listener sees the client's first datagrams from the same peer address.
                let peer = b"127.0.0.1:5684";
                // (direct: a ClientHello without cookie; cookie: the one with our cookie)
                if let Some(d) = s.received.first() {
                    let mut v = vec![u8::try_from(peer.len()).unwrap()];
                    v.extend_from_slice(peer);
                    v.extend_from_slice(d);
                    add(&mut seeds, "dtls_cookie", tag.clone(), v);
                }
            }
        }
    }
    ecdhe_seeds(&mut seeds);
    cert_verify_seeds(&mut seeds);
    binding_seeds(&mut seeds);
    gba_seeds(&mut seeds);
    zn_seeds(&mut seeds);
    identifiers_seeds(&mut seeds);
    seeds
}

/// The ECDHE config bytes of the TLS session seeds.
const ECDHE_TLS_CFGS: [u8; 10] = [
    0,
    CFG_E_DEFER,
    CFG_E_CCM8_ONLY,
    CFG_E_BARE,
    CFG_E_RAW,
    CFG_E_RAW | CFG_E_DEFER,
    CFG_E_MIXED,
    CFG_E_MIXED | CFG_E_DEFER,
    CFG_E_OPTIONAL,
    CFG_E_OPTIONAL | CFG_E_BARE,
];

/// The ECDHE config bytes of the DTLS session seeds.
const ECDHE_DTLS_CFGS: [u8; 4] = [0, CFG_E_DEFER, CFG_E_RAW, CFG_E_OPTIONAL | CFG_E_BARE];

/// The ECDHE-ECDSA session seeds (`*_ecdhe`) and, from their handshakes, the `ecdhe_messages`
/// seeds and ECDHE ClientHello / ServerHello seeds for `handshake_messages`.
fn ecdhe_seeds(seeds: &mut Seeds) {
    for cfg in ECDHE_TLS_CFGS {
        let (c, s) = run_pair(Setup {
            cfg,
            ecdhe: true,
            dtls: false,
            client_mtu: 0,
            server_mtu: 0,
            cookie: false,
        });
        let tag = format!("handshake-cfg{cfg}");
        add(seeds, "server_tls_ecdhe", tag.clone(), s.ops);
        add(seeds, "client_tls_ecdhe", tag.clone(), c.ops);
        if matches!(cfg, 0 | CFG_E_RAW | CFG_E_BARE) {
            let to_server = s.received.concat();
            let to_client = c.received.concat();
            add(
                seeds,
                "record_tls",
                format!("ecdhe-to-server-cfg{cfg}"),
                sel(0x3f, &to_server),
            );
            add(
                seeds,
                "record_tls",
                format!("ecdhe-to-client-cfg{cfg}"),
                sel(0x3f, &to_client),
            );
            let msgs: Vec<_> = tls_messages(&to_server)
                .into_iter()
                .chain(tls_messages(&to_client))
                .collect();
            ecdhe_message_seeds(seeds, &format!("tls-cfg{cfg}"), &msgs, false);
        }
    }
    for cfg in ECDHE_DTLS_CFGS {
        for cookie in [false, true] {
            for peer_mtu in [h::MTU, 200] {
                let tag = format!(
                    "{}{}-cfg{cfg}",
                    if cookie { "cookie" } else { "direct" },
                    if peer_mtu == h::MTU { "" } else { "-frag" }
                );
                let setup = |client_mtu, server_mtu| Setup {
                    cfg,
                    ecdhe: true,
                    dtls: true,
                    client_mtu,
                    server_mtu,
                    cookie,
                };
                let (c, _) = run_pair(setup(h::MTU, peer_mtu));
                let (_, s) = run_pair(setup(peer_mtu, h::MTU));
                add(seeds, "server_dtls_ecdhe", tag.clone(), s.ops);
                add(seeds, "client_dtls_ecdhe", tag.clone(), c.ops);
                if cfg == 0 && !cookie && peer_mtu == h::MTU {
                    let msgs: Vec<_> = dtls_messages(&s.received)
                        .into_iter()
                        .chain(dtls_messages(&c.received))
                        .collect();
                    ecdhe_message_seeds(seeds, &format!("dtls-{tag}"), &msgs, true);
                }
            }
        }
    }
}

/// `ecdhe_messages` seeds from the handshake messages of a certificate handshake (and its
/// hellos for `handshake_messages`).
fn ecdhe_message_seeds(
    seeds: &mut Seeds,
    tag: &str,
    msgs: &[(HandshakeType, Vec<u8>)],
    dtls: bool,
) {
    let t = "ecdhe_messages";
    for (i, (typ, body)) in msgs.iter().enumerate() {
        let name = format!("{tag}-{i}-{}", u8::from(*typ));
        match typ {
            HandshakeType::ClientHello => {
                add(
                    seeds,
                    "handshake_messages",
                    format!("ecdhe-{name}"),
                    sel(u8::from(dtls), body),
                );
                let ch = ClientHello::decode(body, dtls).unwrap();
                for e in ch.extensions.iter().flatten() {
                    let et = u16::from(e.typ);
                    // supported_groups, ec_point_formats, signature_algorithms,
                    // client_ and server_certificate_type
                    if matches!(et, 10 | 11 | 13 | 19 | 20) {
                        add(seeds, t, format!("{name}-ext{et}"), sel(6, e.data));
                    }
                }
            }
            HandshakeType::ServerHello => {
                add(
                    seeds,
                    "handshake_messages",
                    format!("ecdhe-{name}"),
                    sel(2, body),
                );
            }
            HandshakeType::Certificate => {
                // The X.509 and the raw public key forms (only one decodes).
                add(seeds, t, format!("{name}-x509"), sel(3, body));
                add(seeds, t, format!("{name}-raw"), sel(4, body));
            }
            HandshakeType::ServerKeyExchange => add(seeds, t, name, sel(1, body)),
            HandshakeType::CertificateRequest => add(seeds, t, name, sel(2, body)),
            HandshakeType::CertificateVerify => add(seeds, t, name, sel(0, body)),
            HandshakeType::ClientKeyExchange => add(seeds, t, name, sel(5, body)),
            _ => {}
        }
    }
}

/// The `cert_verify` seeds: the fixture chains under each verifier profile, a self-signed
/// certificate for the self-signed profile, raw keys, PEM texts and Root of Trust texts.
fn cert_verify_seeds(seeds: &mut Seeds) {
    let chain = |ctl: u8, certs: &[&[u8]]| {
        let mut v = vec![ctl];
        for c in certs {
            h::cert_chain_entry(&mut v, c);
        }
        v
    };
    let text = |ctl: u8, t: &str| {
        let mut v = vec![ctl];
        v.extend_from_slice(t.as_bytes());
        v
    };
    let (ca, server, client) = (h::CA_CERT, h::SERVER_CERT, h::CLIENT_CERT);
    let t = "cert_verify";
    add(seeds, t, "server-chain".into(), chain(0, &[server, ca]));
    add(
        seeds,
        t,
        "server-chain-san-only".into(),
        chain(4, &[server, ca]),
    );
    add(seeds, t, "server-leaf-only".into(), chain(0, &[server]));
    add(
        seeds,
        t,
        "server-chain-localhost-128".into(),
        chain(3, &[server, ca]),
    );
    add(
        seeds,
        t,
        "server-chain-expired".into(),
        chain(0x20, &[server, ca]),
    );
    add(seeds, t, "client-chain".into(), chain(1, &[client, ca]));
    add(seeds, t, "ca-alone".into(), chain(1, &[ca]));
    add(seeds, t, "three".into(), chain(0, &[server, client, ca]));

    // The self-signed rule: a certificate for the key of the self-signed profile, carrying
    // its Root of Trust as a SAN URI.
    let key = SigningKey::from_bytes(&h::SELF_SIGNED_SCALAR).unwrap();
    let self_signed = CertBuilder::new(&[0x42], UnixTime(1_800_000_000), UnixTime(2_000_000_000))
        .subject_cn("self-signed")
        .san(SubjectAltName::Dns("self.example.com".into()))
        .end_entity()
        .self_signed(&key)
        .unwrap();
    add(seeds, t, "self-signed".into(), chain(2, &[&self_signed]));
    add(
        seeds,
        t,
        "self-signed-san-only".into(),
        chain(6, &[&self_signed]),
    );

    // A CA with nameConstraints and a leaf below it (pathLen, constraints).
    let ca_key = SigningKey::from_bytes(&[10; 32]).unwrap();
    let nc_ca = CertBuilder::new(&[0x43], UnixTime(1_800_000_000), UnixTime(2_000_000_000))
        .subject_cn("constrained CA")
        .ca(Some(0))
        .name_constraints(
            vec![SubjectAltName::Dns("example.com".into())],
            vec![SubjectAltName::Dns("bad.example.com".into())],
        )
        .self_signed(&ca_key)
        .unwrap();
    let issuer = m2msec::cert::CertifiedKey::new(
        ca_key.clone(),
        m2msec::cert::Credential::X509(vec![nc_ca.clone()]),
    )
    .unwrap();
    let leaf_key = SigningKey::from_bytes(&[11; 32]).unwrap();
    let leaf = CertBuilder::new(&[0x44], UnixTime(1_800_000_000), UnixTime(2_000_000_000))
        .subject_cn("mef.example.com")
        .san(SubjectAltName::Dns("mef.example.com".into()))
        .san(SubjectAltName::Uri("//sp.example.com/CSE1/Cae1".into()))
        .end_entity()
        .signed_by(&leaf_key.verifying_key(), &issuer)
        .unwrap();
    add(
        seeds,
        t,
        "constrained-chain".into(),
        chain(0, &[&leaf, &nc_ca]),
    );

    // Raw public keys (the whole rest): the server's key, trusted by no profile (the CA's is).
    let server_spki = h::server_spki();
    add(seeds, t, "raw-server-key".into(), sel(0, &server_spki));
    add(
        seeds,
        t,
        "raw-self-signed-key".into(),
        sel(2, &key.spki_der()),
    );

    // Text.
    let pem_chain = format!(
        "{}{}",
        pem_encode("CERTIFICATE", server),
        pem_encode("CERTIFICATE", ca)
    );
    add(seeds, t, "pem-server-chain".into(), text(0, &pem_chain));
    add(
        seeds,
        t,
        "pem-public-key".into(),
        text(2, &pem_encode("PUBLIC KEY", &key.spki_der())),
    );
    let ca_rot = h::cert_verifier_of(0).root_of_trust().to_ni_uri();
    add(seeds, t, "rot-ni".into(), text(0, &ca_rot));
    let rot128 = h::cert_verifier_of(3).root_of_trust().to_ni_uri();
    add(
        seeds,
        t,
        "rot-ni-authority-query".into(),
        text(
            0,
            &format!(
                "{}?ct=text/plain",
                rot128.replacen("ni:///", "NI://example.com/", 1)
            ),
        ),
    );
    let hex: String = h::cert_verifier_of(0)
        .root_of_trust()
        .digest()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    add(seeds, t, "rot-hex".into(), text(0, &hex));
    add(
        seeds,
        t,
        "rot-ni-120".into(),
        text(0, "ni:///sha-256-120;AAAAAAAAAAAAAAAAAAAA"),
    );
}

/// The `binding` seeds: the requests, responses and bodies of the examples in
/// `docs/protocol.md` (same values; elided hex such as `3A7F...C2` made whole), encoded by the
/// core's codec so that they decode, plus one request as the document writes it (no `Host`).
/// Every route has a seed: a new route needs its request, its response and its body here.
fn binding_seeds(seeds: &mut Seeds) {
    use m2msec::frameworks::binding::{
        to_body, AssociationFramework, AssociationInfoResponse, Body, EnrolmentRequest, HexKey,
        KeyRegistrationRequest, KeyRetrievalResponse, Method, Request, Response, Rsc,
    };
    fn request(method: Method, path: &str, origin: &str, rid: &str, body: Body) -> Vec<u8> {
        let request = Request {
            method,
            path: path.into(),
            origin: origin.into(),
            request_id: rid.into(),
            body,
        };
        let mut out = Vec::new();
        request.encode(&mut out).unwrap();
        out
    }
    fn response(rsc: Rsc, rid: &str, body: Body) -> Vec<u8> {
        let response = Response {
            rsc,
            request_id: rid.into(),
            body,
        };
        let mut out = Vec::new();
        response.encode(&mut out).unwrap();
        out
    }
    let mut put = |name: &str, data: Vec<u8>| add(seeds, "binding", name.into(), data);

    // MEF: enrolment.
    let enrolment = to_body(&EnrolmentRequest {
        enrolee_id: "C-enrolee-1".into(),
        maf_id: "maf.example.net".into(),
    })
    .unwrap();
    put(
        "enrolment-request",
        request(
            Method::Post,
            "/mef/enrolment",
            "C-enrolee-1",
            "7f1c",
            enrolment,
        ),
    );
    // MEF: fetch Km, as docs/protocol.md writes the request.
    put(
        "fetch-request",
        b"GET /mef/fetchCredentials/3A7FC2@mef.example.net/21 HTTP/1.1\r\n\
          X-M2M-Origin: maf.example.net\r\n\
          X-M2M-RI: 91aa\r\n\
          Content-Length: 0\r\n\r\n"
            .to_vec(),
    );
    // MAF: key registration (the body alone) and key retrieval.
    let registration = to_body(&KeyRegistrationRequest {
        maf_fqdn: "maf.example.net".into(),
        expiration_time: 1_795_000_000,
        suid: 32,
        target_ids: vec!["/in-cse.example.net/in-cse".into()],
    })
    .unwrap();
    put("key-registration-body", registration.to_vec());
    let retrieval = to_body(&KeyRetrievalResponse {
        expiration_time: 1_795_000_000,
        source_maf_client_id: "C-ae-1".into(),
        suid: 32,
        key_value: HexKey([0x9e, 0x2d].repeat(16).try_into().unwrap()),
    })
    .unwrap();
    put(
        "key-retrieval-response",
        response(Rsc::Ok, "91aa", retrieval),
    );
    // Registrar: association information (request, response, and the body alone).
    put(
        "registrar-association-request",
        request(
            Method::Get,
            "/registrar/association",
            "C-ae-1",
            "5e1d",
            Body::default(),
        ),
    );
    let info = to_body(&AssociationInfoResponse {
        bound_identity: "C-ae-1".into(),
        framework: AssociationFramework::PreProvisioned,
        key_identifier: "ae1-kpsa@in-cse.example.net".into(),
        expiration_time: Some(1_795_000_000),
    })
    .unwrap();
    put("registrar-association-body", info.to_vec());
    put(
        "registrar-association-response",
        response(Rsc::Ok, "5e1d", info),
    );
}

/// The `m` of the `gba` client seeds' RES answers (`GBA_OP_ANSWER`: `m % 3 == 0` is the USIM's
/// RES, the cnonce is `[m; 16]`); the recorded exchanges use the same cnonce.
const GBA_M: u8 = 6;

/// The `gba` seeds: a full Ub exchange with Milenage test set 1 (the fixed challenge of the
/// harness, the USIM's answer, the BootstrappingInfo and the 200 with the BSF's
/// Authentication-Info, which the client accepts), a MAC failure, a sync failure followed by the
/// fresh challenge of `harness::gba_pending_fresh` answered and accepted, their headers, HTTP
/// messages and nonce, B-TIDs, psk identities and NAF_Ids; and client op streams replaying them.
fn gba_seeds(seeds: &mut Seeds) {
    use m2msec::gba::digest::{
        base64_encode, BootstrappingInfo, Credentials, Qop, UbClient, UbRequest, UbResponse,
        UsimOutcome,
    };
    use m2msec::gba::kdf::{psk_identity, BTid, GbaPrefix, NafId};
    let mut put = |name: &str, sel: u8, body: &[u8]| {
        let mut v = vec![sel];
        v.extend_from_slice(body);
        add(seeds, "gba", name.into(), v);
    };
    /// `len (u16 BE) || c`.
    fn chunk(out: &mut Vec<u8>, c: &[u8]) {
        out.extend_from_slice(&u16::try_from(c.len()).unwrap().to_be_bytes());
        out.extend_from_slice(c);
    }
    fn op(out: &mut Vec<u8>, tag: u8, c: &[u8]) {
        out.push(tag);
        chunk(out, c);
    }
    fn resp(r: &UbResponse) -> Vec<u8> {
        let mut w = Vec::new();
        r.encode(&mut w).unwrap();
        w
    }
    fn req(c: &Credentials) -> Vec<u8> {
        let mut w = Vec::new();
        UbRequest {
            uri: h::GBA_URI.into(),
            host: h::GBA_BSF.into(),
            authorization: c.clone(),
        }
        .encode(&mut w)
        .unwrap();
        w
    }

    // The full exchange against the harness's fixed challenge.
    let pending = h::gba_pending();
    let challenge = pending.challenge();
    let mut usim = h::gba_usim();
    let mut client = UbClient::new(h::GBA_IMPI, h::GBA_BSF, h::GBA_URI).unwrap();
    let initial = client.start().unwrap();
    let u = client.on_challenge(&challenge).unwrap();
    let r = usim.authenticate(&u.rand, &u.autn).unwrap();
    // The cnonce the harness's ANSWER op uses for `m` = GBA_M (a RES answer: m % 3 == 0), so
    // that the Authentication-Info recorded here verifies when the op streams replay.
    let answer = client
        .answer(UsimOutcome::Res(&r.res), &[GBA_M; 16], "GET", b"")
        .unwrap();
    assert_eq!(
        pending.verify("GET", h::GBA_URI, b"", &answer),
        m2msec::gba::digest::Verdict::Verified
    );
    let btid = BTid::new(&pending.rand(), h::GBA_BSF).unwrap();
    let info = BootstrappingInfo {
        btid: btid.to_string(),
        lifetime: UnixTime(1_790_000_000),
    };
    // The BSF's Authentication-Info (rspauth over the body), which the client checks.
    let info_xml = info.to_xml().unwrap();
    let auth = pending
        .authentication_info("GET", h::GBA_URI, b"", &answer, info_xml.as_bytes())
        .unwrap();
    client
        .on_bootstrapped(Some(&auth), info_xml.as_bytes())
        .unwrap();
    // A MAC failure (another K) and a sync failure (the USIM has seen set 1's SQN).
    let mut other = UbClient::new(h::GBA_IMPI, h::GBA_BSF, h::GBA_URI).unwrap();
    other.start().unwrap();
    other.on_challenge(&challenge).unwrap();
    let mac_fail = other
        .answer(UsimOutcome::MacFailure, &[8; 16], "GET", b"")
        .unwrap();
    let mut other = UbClient::new(h::GBA_IMPI, h::GBA_BSF, h::GBA_URI).unwrap();
    other.start().unwrap();
    let u = other.on_challenge(&challenge).unwrap();
    let auts = match usim.authenticate(&u.rand, &u.autn) {
        Err(m2msec::gba::usim::UsimFailure::SyncFailure { auts }) => auts,
        other => panic!("expected a sync failure, got {:?}", other.map(|_| ())),
    };
    let sync_fail = other
        .answer(UsimOutcome::SyncFailure { auts }, &[9; 16], "GET", b"")
        .unwrap();
    // The BSF resynchronises and sends a fresh challenge; the USIM accepts it, the BSF answers
    // with its Authentication-Info over the fresh B-TID.
    let fresh_pending = h::gba_pending_fresh();
    let second = fresh_pending.challenge();
    let u = other.on_challenge(&second).unwrap();
    let r = usim.authenticate(&u.rand, &u.autn).unwrap();
    let fresh_answer = other
        .answer(UsimOutcome::Res(&r.res), &[GBA_M; 16], "GET", b"")
        .unwrap();
    assert_eq!(
        fresh_pending.verify("GET", h::GBA_URI, b"", &fresh_answer),
        m2msec::gba::digest::Verdict::Verified
    );
    let fresh_info = BootstrappingInfo {
        btid: BTid::new(&fresh_pending.rand(), h::GBA_BSF)
            .unwrap()
            .to_string(),
        lifetime: UnixTime(1_790_003_600),
    };
    let fresh_xml = fresh_info.to_xml().unwrap();
    let fresh_auth = fresh_pending
        .authentication_info("GET", h::GBA_URI, b"", &fresh_answer, fresh_xml.as_bytes())
        .unwrap();
    let mut fresh_ok = Vec::new();
    UbResponse::Bootstrapped(fresh_info)
        .encode_with(Some(&fresh_auth), &mut fresh_ok)
        .unwrap();
    other
        .on_bootstrapped(Some(&fresh_auth), fresh_xml.as_bytes())
        .unwrap();
    let mut loose = challenge.clone();
    loose.qop = vec![Qop::Auth, Qop::AuthInt];
    loose.stale = true;
    loose.opaque = Some("a \"quoted\" opaque".into());

    for (name, c) in [("fixed", &challenge), ("fresh", &second), ("loose", &loose)] {
        put(
            &format!("challenge-{name}"),
            h::GBA_CHALLENGE,
            c.to_header().unwrap().as_bytes(),
        );
        put(
            &format!("response-401-{name}"),
            h::GBA_UB_RESPONSE,
            &resp(&UbResponse::Unauthorized(c.clone())),
        );
    }
    put(
        "challenge-lower-case",
        h::GBA_CHALLENGE,
        b"digest REALM=bsf.home1.net,nonce=\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\",algorithm=akav1-md5,qop=\"auth-int,foo\"",
    );
    for (name, c) in [
        ("initial", &initial),
        ("answer", &answer),
        ("mac-failure", &mac_fail),
        ("sync-failure", &sync_fail),
    ] {
        let header = c.to_header().unwrap();
        put(
            &format!("credentials-{name}"),
            h::GBA_CREDENTIALS,
            header.as_bytes(),
        );
        put(&format!("verify-{name}"), h::GBA_VERIFY, header.as_bytes());
        put(&format!("request-{name}"), h::GBA_UB_REQUEST, &req(c));
    }
    put("nonce-fixed", h::GBA_NONCE, challenge.nonce.as_bytes());
    put("nonce-fresh", h::GBA_NONCE, second.nonce.as_bytes());
    put(
        "base64-rand",
        h::GBA_NONCE,
        base64_encode(&h::GBA_RAND).as_bytes(),
    );
    let xml = info.to_xml().unwrap();
    put("info-xml", h::GBA_XML, xml.as_bytes());
    put(
        "info-xml-offset",
        h::GBA_XML,
        format!(
            "\u{feff}<BootstrappingInfo xmlns='uri:3gpp-gba'>\r\n<btid>{btid}</btid><lifetime>2026-09-21T14:13:20.5+02:00</lifetime></BootstrappingInfo>"
        )
        .as_bytes(),
    );
    let ok = resp(&UbResponse::Bootstrapped(info.clone()));
    put("response-200", h::GBA_UB_RESPONSE, &ok);
    let mut ok_auth = Vec::new();
    UbResponse::Bootstrapped(info.clone())
        .encode_with(Some(&auth), &mut ok_auth)
        .unwrap();
    put("response-200-rspauth", h::GBA_UB_RESPONSE, &ok_auth);
    put("response-200-rspauth-fresh", h::GBA_UB_RESPONSE, &fresh_ok);
    let auth_header = auth.to_header().unwrap();
    put("auth-info", h::GBA_AUTH_INFO, auth_header.as_bytes());
    put(
        "auth-info-fresh",
        h::GBA_AUTH_INFO,
        fresh_auth.to_header().unwrap().as_bytes(),
    );
    put(
        "response-403",
        h::GBA_UB_RESPONSE,
        &resp(&UbResponse::Status(403)),
    );
    put("btid", h::GBA_BTID, btid.as_str().as_bytes());
    put(
        "btid-other",
        h::GBA_BTID,
        b"c29tZSB1bmlxdWUgdmFsdWU=@bsf.example.org",
    );
    put(
        "psk-identity-me",
        h::GBA_BTID,
        psk_identity(GbaPrefix::Me, &btid).as_bytes(),
    );
    put(
        "psk-identity-uicc",
        h::GBA_BTID,
        psk_identity(GbaPrefix::Uicc, &btid).as_bytes(),
    );
    put(
        "psk-identity-dot",
        h::GBA_BTID,
        format!("3GPP-bootstrapping.{btid}").as_bytes(),
    );
    for (name, id) in [
        (
            "tls-psk",
            NafId::tls_psk("naf.example.org", 0x00a8).unwrap(),
        ),
        ("maf", NafId::tls_psk("maf.example.com", 0xc0a4).unwrap()),
        (
            "http-digest",
            NafId::new("naf.home1.net", m2msec::gba::kdf::UA_HTTP_DIGEST).unwrap(),
        ),
    ] {
        let mut v = id.ua_protocol_id().to_vec();
        v.extend_from_slice(id.fqdn().as_bytes());
        put(&format!("naf-id-{name}"), h::GBA_NAF_ID, &v);
    }

    // Client op streams: the whole exchange (the 200 with its Authentication-Info over HTTP, as
    // the BSF's op, and as a header value), its refusals (no Authentication-Info, an altered
    // rspauth), a MAC failure, and a sync failure then a fresh challenge answered and accepted.
    let unauthorized = resp(&UbResponse::Unauthorized(challenge.clone()));
    let answered = || {
        let mut v = vec![h::GBA_OP_START];
        op(&mut v, h::GBA_OP_RESPONSE, &unauthorized);
        v.extend_from_slice(&[h::GBA_OP_ANSWER, GBA_M]);
        v
    };
    let mut full = answered();
    op(&mut full, h::GBA_OP_RESPONSE, &ok_auth);
    put("client-exchange", h::GBA_CLIENT, &full);
    for (name, m) in [
        ("client-exchange-bsf", h::GBA_TAMPER_NONE),
        ("client-exchange-bsf-http", 0x80 | h::GBA_TAMPER_NONE),
        ("client-exchange-bsf-nextnonce", h::GBA_TAMPER_NEXTNONCE),
        ("client-bad-rspauth", h::GBA_TAMPER_RSPAUTH),
        (
            "client-bad-rspauth-http",
            0x80 | (5 << 3) | h::GBA_TAMPER_RSPAUTH,
        ),
        ("client-bad-qop", 0x80 | h::GBA_TAMPER_QOP),
        ("client-bad-cnonce", h::GBA_TAMPER_CNONCE),
    ] {
        let mut v = answered();
        v.extend_from_slice(&[h::GBA_OP_BSF_OK, m]);
        chunk(&mut v, xml.as_bytes());
        put(name, h::GBA_CLIENT, &v);
    }
    let mut hdr = answered();
    op(&mut hdr, h::GBA_OP_AUTH_INFO, auth_header.as_bytes());
    chunk(&mut hdr, xml.as_bytes());
    put("client-exchange-auth-info", h::GBA_CLIENT, &hdr);
    let mut bare = answered();
    op(&mut bare, h::GBA_OP_RESPONSE, &ok);
    put("client-no-rspauth", h::GBA_CLIENT, &bare);
    let mut raw = answered();
    op(&mut raw, h::GBA_OP_INFO, xml.as_bytes());
    put("client-no-rspauth-xml", h::GBA_CLIENT, &raw);
    let mut mac = vec![h::GBA_OP_START];
    op(&mut mac, h::GBA_OP_RESPONSE, &unauthorized);
    mac.extend_from_slice(&[h::GBA_OP_ANSWER, 1]);
    put("client-mac-failure", h::GBA_CLIENT, &mac);
    let mut sync = vec![h::GBA_OP_START];
    op(&mut sync, h::GBA_OP_RESPONSE, &unauthorized);
    sync.extend_from_slice(&[h::GBA_OP_ANSWER, 2]);
    op(
        &mut sync,
        h::GBA_OP_RESPONSE,
        &resp(&UbResponse::Unauthorized(second)),
    );
    sync.extend_from_slice(&[h::GBA_OP_ANSWER, GBA_M]);
    op(&mut sync, h::GBA_OP_RESPONSE, &fresh_ok);
    put("client-sync-failure", h::GBA_CLIENT, &sync);
    let mut sync403 = sync[..sync.len() - fresh_ok.len() - 3].to_vec();
    op(
        &mut sync403,
        h::GBA_OP_RESPONSE,
        &resp(&UbResponse::Status(403)),
    );
    put("client-sync-failure-403", h::GBA_CLIENT, &sync403);
}

/// The `zn` seeds: the Zn messages of a real bootstrapping (Milenage test set 1's Ks and RAND,
/// the NAF keys derived from them): the requests and answers as HTTP primitives and as bare JSON
/// bodies, and the BSF's refusals. Each seed is checked here to parse with the core's codec (so
/// that it reaches the round trips of `harness::zn`).
fn zn_seeds(seeds: &mut Seeds) {
    use m2msec::frameworks::binding::{Request, Response, Rsc};
    use m2msec::gba::kdf::{ks_int_naf, ks_naf, BTid, NafId};
    use m2msec::gba::zn::{refusal, ZnError, ZnFlavor, ZnKey, ZnReply, ZnRequest};

    let vector = h::gba_vector();
    let ks = vector.ks();
    let btid = BTid::new(&vector.rand, "bsf.example.net").unwrap();
    let mut put = |name: &str, data: Vec<u8>| {
        let parses = matches!(Request::decode(&data), Ok(Some((r, _))) if ZnRequest::from_request(&r).is_ok())
            || matches!(Response::decode(&data), Ok(Some((r, _))) if ZnReply::from_response(&r, UnixTime(0)).is_ok())
            || ZnRequest::from_body(&data).is_ok()
            || ZnKey::from_body(&data).is_ok();
        assert!(parses, "zn seed {name} does not parse");
        add(seeds, "zn", name.into(), data);
    };
    let encode_req = |r: &Request| {
        let mut w = Vec::new();
        r.encode(&mut w).unwrap();
        w
    };
    let encode_resp = |r: &Response| {
        let mut w = Vec::new();
        r.encode(&mut w).unwrap();
        w
    };
    for (name, fqdn, suite, flavor) in [
        ("me", "mef.example.net", 0x00ae, ZnFlavor::Me),
        ("u", "naf.example.org", 0xc0a4, ZnFlavor::Uicc),
    ] {
        let naf_id = NafId::tls_psk(fqdn, suite).unwrap();
        let req = ZnRequest {
            btid: btid.clone(),
            naf_id: naf_id.clone(),
            flavor,
        };
        put(
            &format!("request-body-{name}"),
            req.to_body().unwrap().to_vec(),
        );
        put(
            &format!("request-{name}"),
            encode_req(&req.to_request("naf-mef", "5c1e").unwrap()),
        );
        let derive = match flavor {
            ZnFlavor::Me => ks_naf,
            ZnFlavor::Uicc => ks_int_naf,
        };
        let key = ZnKey {
            key: derive(&ks, &vector.rand, h::GBA_IMPI, &naf_id).unwrap(),
            impi: h::GBA_IMPI.into(),
            lifetime: UnixTime(1_795_843_676),
            bootstrapping_time: UnixTime(1_795_840_076),
            uss: vec![fqdn.into()],
        };
        put(
            &format!("answer-body-{name}"),
            key.to_body().unwrap().to_vec(),
        );
        put(
            &format!("answer-{name}"),
            encode_resp(&key.to_response("5c1e").unwrap()),
        );
    }
    for (name, response) in [
        (
            "refusal-unknown-btid",
            refusal(Rsc::NotFound, "unknown B-TID", Some("btid"), "5c1e"),
        ),
        (
            "refusal-guss",
            refusal(
                Rsc::NoPrivilege,
                "NAF not allowed by the GUSS",
                Some("nafId"),
                "5c1e",
            ),
        ),
        (
            "refusal-bad-request",
            ZnError::Invalid {
                parameter: "nafId",
                what: "not a NAF_Id",
            }
            .refusal("5c1e"),
        ),
        ("refusal-route", ZnError::UnknownResource.refusal("-")),
    ] {
        put(name, encode_resp(&response));
    }
}

/// The `identifiers` seeds: identifiers as `docs/examples/*.toml` and `docs/protocol.md` write
/// them (FQDNs, CSE-/AE-IDs, MEF URIs, KpmIDs, KpsaIDs, KmIDs, PSK identities, B-TIDs, suite
/// names), and those the core makes from the fixtures: the KeID of a GBA bootstrap
/// (`HEX(RAND)@BSF-FQDN`, protocol.md), the B-TID and psk identities of Milenage set 1's RAND, and
/// the Root of Trust of the test CA (`core/tests/data/ecdhe/ca.der`) in each text form.
fn identifiers_seeds(seeds: &mut Seeds) {
    use m2msec::cert::{root_of_trust_of, Credential, RootOfTrust, RotHash};
    use m2msec::gba::kdf::{psk_identity, BTid, GbaPrefix};
    use m2msec::keys::{IdKind, KeyId, RelativeId};
    let mut put = |name: &str, sel: u8, text: &str| {
        let mut v = vec![sel];
        v.extend_from_slice(text.as_bytes());
        add(seeds, "identifiers", name.into(), v);
    };
    for (name, t) in [
        ("mef", "mef.example.com"),
        ("maf", "maf.example.com"),
        ("bsf", "bsf.example.net"),
        ("naf", "in-cse.example.net"),
        ("localhost", "localhost"),
        ("ip", "127.0.0.1"),
    ] {
        put(&format!("fqdn-{name}"), h::ID_FQDN, t);
    }
    for (name, t) in [
        ("sp-relative", "/id-mn-e"),
        ("in", "/id-in"),
        ("absolute", "//sp.example.com/id-mn-f"),
        ("ae", "C-ae-1"),
        ("enrolee", "C-enrolee-1"),
        ("cse-path", "/in-cse.example.net/in-cse"),
    ] {
        put(&format!("entity-{name}"), h::ID_ENTITY, t);
    }
    for (name, t) in [
        ("mef", "https://localhost:7001"),
        ("maf", "https://localhost:7002"),
        ("coaps-ip", "coaps://127.0.0.1:7003"),
        ("maf-uri", "maf.example.net:5684"),
    ] {
        put(&format!("mef-uri-{name}"), h::ID_MEF_URI, t);
    }
    // The KeID of a GBA bootstrap: HEX(RAND)@BSF-FQDN (lower case here: parse upper-cases it).
    let rand_hex: String = h::GBA_RAND.iter().map(|b| format!("{b:02x}")).collect();
    let ke_id = format!("{rand_hex}@bsf.example.net");
    let canonical = KeyId::parse(IdKind::Ke, &ke_id).unwrap();
    assert_eq!(
        Some(canonical.clone()),
        KeyId::from_relative_bytes(IdKind::Ke, &h::GBA_RAND, "bsf.example.net").ok()
    );
    for (name, t) in [
        ("kpm", "mn-e.kpm1@mef.example.com"),
        ("kpsa", "asn-a.in@sp.example.com"),
        ("km", "asn-a.km1@maf.example.com"),
        ("km-in-cse", "in-cse.km1@maf.example.com"),
        ("maf-psk", "maf.example.com@mef.example.com"),
        ("assigned", "km-4d1f@maf.example.net"),
        ("ke-gba", ke_id.as_str()),
        ("ke-gba-canonical", canonical.as_str()),
    ] {
        put(&format!("key-id-{name}"), h::ID_KEY_ID, t);
    }
    put("relative-rand", h::ID_RELATIVE, &rand_hex);
    put(
        "relative-rand-upper",
        h::ID_RELATIVE,
        &RelativeId::from_bytes(h::GBA_RAND).to_hex(),
    );
    let ca = root_of_trust_of(&Credential::X509(vec![h::CA_CERT.to_vec()])).unwrap();
    let spki = h::server_spki();
    let rots = [
        ("ca", ca.to_ni_uri()),
        (
            "ca-hex",
            ca.digest().iter().map(|b| format!("{b:02X}")).collect(),
        ),
        (
            "server-128",
            RootOfTrust::of_spki(&spki, RotHash::Sha256_128).to_ni_uri(),
        ),
        (
            "server-120-authority",
            RootOfTrust::of_spki(&spki, RotHash::Sha256_120)
                .to_ni_uri()
                .replacen("ni:///", "NI://example.com/", 1),
        ),
        (
            "placeholder",
            "ni:///sha-256;REPLACE-with-the-CA-root-of-trust-43-chars-xx".into(),
        ),
    ];
    for (name, t) in &rots {
        put(&format!("rot-{name}"), h::ID_ROOT_OF_TRUST, t);
    }
    let btid = BTid::new(&h::GBA_RAND, "bsf.example.net").unwrap();
    put("btid", h::ID_BTID, btid.as_str());
    put("btid-me", h::ID_BTID, &psk_identity(GbaPrefix::Me, &btid));
    put(
        "btid-uicc-dot",
        h::ID_BTID,
        &format!("{}.{btid}", GbaPrefix::Uicc.as_str()),
    );
    put("naf-fqdn", h::ID_NAF_FQDN, "in-cse.example.net");
    put("naf-fqdn-maf", h::ID_NAF_FQDN, "maf.example.com");
    for (name, t) in [
        ("suite-iana", "TLS_PSK_WITH_AES_128_CCM"),
        ("suite-short", "psk-aes128-ccm8"),
        ("flavor-me", "gba-me"),
        ("flavor-u", "gba-u"),
        ("fullwidth", "\u{ff4d}\u{ff41}\u{ff46}.example.com"),
    ] {
        put(&format!("name-{name}"), h::ID_NAMES, t);
    }
    put(
        "config-certificate-peer",
        h::ID_CONFIG,
        &format!("mef.example.com\n{}", ca.to_ni_uri()),
    );
    put(
        "config-maf-entry",
        h::ID_CONFIG,
        "maf.example.com@mef.example.com\nmaf.example.com\nhttps://localhost:7002",
    );
    put(
        "config-bootstrap-instruction",
        h::ID_CONFIG,
        "maf.example.com\n/id-mn-e",
    );
}

fn main() {
    let check = std::env::args().any(|a| a == "--check");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let seeds = generate();
    let mut stale = Vec::new();
    for (target, files) in &seeds {
        let dir = root.join(target);
        if !check {
            std::fs::create_dir_all(&dir).unwrap();
        }
        let existing: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|rd| rd.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        for p in &existing {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if !files.contains_key(name.as_str()) {
                stale.push(p.clone());
                if !check {
                    std::fs::remove_file(p).unwrap();
                }
            }
        }
        for (name, data) in files {
            let p = dir.join(name);
            if std::fs::read(&p).ok().as_ref() != Some(data) {
                stale.push(p.clone());
                if !check {
                    std::fs::write(&p, data).unwrap();
                }
            }
        }
    }
    // Every session seed must replay through the harness to a complete session.
    for (target, files) in &seeds {
        for (name, data) in files {
            assert!(h::run(target, data), "{target}");
            let Some(outcome) = h::session_outcome(target, data) else {
                continue;
            };
            let full = h::Outcome {
                connected: true,
                app_data: true,
                peer_closed: true,
                failed: false,
            };
            assert_eq!(
                outcome, full,
                "seed {target}/{name} does not replay to the end"
            );
        }
    }
    // The client seeds of a whole Ub exchange end in an accepted 200; the others in none.
    for (name, data) in &seeds["gba"] {
        let Some(n) = h::gba_bootstraps(data) else {
            continue;
        };
        let want = u32::from(name.starts_with("client-exchange") || name == "client-sync-failure");
        assert_eq!(n, want, "gba seed {name}: {n} bootstraps");
    }
    let total: usize = seeds.values().map(BTreeMap::len).sum();
    let show = |p: &Path| p.strip_prefix(&root).unwrap_or(p).display().to_string();
    if check {
        if stale.is_empty() {
            println!("seeds: {total} files in fuzz/seeds are up to date");
        } else {
            for p in &stale {
                println!("stale: fuzz/seeds/{}", show(p));
            }
            println!(
                "seeds: {} of {total} files differ from what the core produces now; \
                 regenerate: cargo run --manifest-path fuzz/Cargo.toml --example gen_corpus",
                stale.len()
            );
            std::process::exit(1);
        }
    } else {
        println!(
            "seeds: wrote {total} files ({} changed) to fuzz/seeds",
            stale.len()
        );
    }
}
