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
use std::sync::Arc;

use m2msec::codec::Reader;
use m2msec::dtls::{CookieListener, DtlsRecordHeader, FragmentHeader, ListenerDecision};
use m2msec::enums::{ContentType, HandshakeType};
use m2msec::messages::ClientHello;
use m2msec::{Event, Output, Psk, Session, Transport};
use m2msec_fuzz::harness::{self as h, CFG_BARE, CFG_CCM8_ONLY, CFG_DEFER_PSK};

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
    /// Everything it received, by transport write (TLS: flight; DTLS: datagram).
    received: Vec<Vec<u8>>,
}

impl Side {
    fn new(s: Session, cfg: u8, dtls: bool) -> Self {
        Self {
            s,
            ops: vec![cfg],
            dtls,
            received: Vec::new(),
        }
    }

    /// Drains output (answering PskNeeded); returns the transmits.
    fn drain(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let mut psk = None;
            loop {
                match self.s.poll_output(&mut buf) {
                    Output::Transmit(b) => out.push(b.to_vec()),
                    Output::Event(Event::PskNeeded { identity, .. }) => psk = Some(identity),
                    Output::Event(_) => {}
                    Output::Wait(_) => break,
                    o => panic!("unexpected {o:?}"),
                }
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
    let client = Session::client(
        h::client_config(st.cfg),
        ct,
        h::client_sni(st.cfg),
        h::now_at(0),
        h::CLIENT_SEED,
    )
    .unwrap();
    let mut c = Side::new(client, st.cfg, st.dtls);
    let server_cfg = h::server_config(st.cfg);
    let new_server = |cfg: &Arc<_>| {
        let s = Session::server(Arc::clone(cfg), stp, h::now_at(0), h::SERVER_SEED).unwrap();
        Side::new(s, st.cfg, st.dtls)
    };
    let listener = CookieListener::new(h::COOKIE_SECRET);
    let mut server: Option<Side> = (!st.cookie).then(|| new_server(&server_cfg));
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
                    ListenerDecision::Accept => server = Some(new_server(&server_cfg)),
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
                    dtls: true,
                    client_mtu: h::MTU,
                    server_mtu: peer_mtu,
                    cookie,
                });
                let (_, s) = run_pair(Setup {
                    cfg,
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
    binding_seeds(&mut seeds);
    seeds
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
            let outcome = match *target {
                "server_tls" => h::session_tls(data, true),
                "client_tls" => h::session_tls(data, false),
                "server_dtls" => h::session_dtls(data, true),
                "client_dtls" => h::session_dtls(data, false),
                _ => continue,
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
