//! Property tests: hostile bytes never panic, splits do not matter, tampering is always caught.

use m2msec::enums::{ExtensionType, ProtocolVersion};
use m2msec::messages::{ClientHello, Extension, ServerHello};
use m2msec::{CipherSuite, Now, Output, Session, Transport};
use proptest::prelude::*;

mod common;
use common::*;

/// Drives `s` with `chunks` and checks the invariants that hold for any input: no panic, a
/// failed session reports `AfterFatal` afterwards and emits at most a 7-byte alert record.
fn hammer(mut s: Session, chunks: &[Vec<u8>]) {
    let mut buf = vec![0u8; 512];
    for c in chunks {
        let mut rest = &c[..];
        let mut guard = 0;
        while !rest.is_empty() && guard < 10_000 {
            guard += 1;
            match s.handle_input(Now::default(), rest) {
                Ok(n) => rest = &rest[n..],
                Err(_) => {
                    let mut sent = 0;
                    loop {
                        match s.poll_output(&mut buf) {
                            Output::Transmit(b) => sent += b.len(),
                            Output::Wait(_) => break,
                            _ => {}
                        }
                    }
                    assert!(
                        sent <= 1024,
                        "a failed session sends only what was queued plus its alert"
                    );
                    assert!(s.handle_input(Now::default(), b"x").is_err());
                    return;
                }
            }
            while !matches!(s.poll_output(&mut buf), Output::Wait(_)) {}
            if s.is_suspended() {
                return;
            }
        }
    }
}

fn record(typ: u8, body: &[u8]) -> Vec<u8> {
    let mut r = vec![typ, 3, 3, (body.len() >> 8) as u8, body.len() as u8];
    r.extend_from_slice(body);
    r
}

fn arb_chunks() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..8)
}

/// Records with valid headers and arbitrary bodies reach deeper than raw noise.
fn arb_records() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(
        (
            prop::sample::select(vec![20u8, 21, 22, 23]),
            prop::collection::vec(any::<u8>(), 0..200),
        )
            .prop_map(|(t, b)| record(t, &b)),
        0..6,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn server_survives_arbitrary_bytes(chunks in arb_chunks()) {
        hammer(Session::server(server_cfg(CipherSuite::ALL, None), Transport::Tls, Now::default(), [0; 32]).unwrap(), &chunks);
    }

    #[test]
    fn server_survives_arbitrary_records(recs in arb_records()) {
        hammer(Session::server(server_cfg(CipherSuite::ALL, None), Transport::Tls, Now::default(), [0; 32]).unwrap(), &recs);
    }

    #[test]
    fn client_survives_arbitrary_records(recs in arb_records(), noise in arb_chunks()) {
        let mk = || {
            let mut c = Session::client(client_cfg(&KEY, CipherSuite::ALL), Transport::Tls, None, Now::default(), [0; 32]).unwrap();
            drain(&mut c);
            c
        };
        hammer(mk(), &recs);
        hammer(mk(), &noise);
    }

    /// A valid ServerHello followed by arbitrary handshake messages reaches the later states.
    #[test]
    fn client_survives_arbitrary_messages_after_server_hello(msgs in prop::collection::vec((any::<u8>(), prop::collection::vec(any::<u8>(), 0..64)), 0..5)) {
        let mut c = Session::client(client_cfg(&KEY, CipherSuite::ALL), Transport::Tls, None, Now::default(), [0; 32]).unwrap();
        drain(&mut c);
        let sh = ServerHello { version: ProtocolVersion::TLS12, random: [5; 32], session_id: &[], cipher_suite: 0xC0A8, compression_method: 0, extensions: None };
        let mut body = Vec::new();
        sh.encode(&mut body).unwrap();
        let mut hs = vec![2, 0, 0, body.len() as u8];
        hs.extend_from_slice(&body);
        for (t, b) in &msgs {
            hs.push(*t);
            hs.extend_from_slice(&[0, 0, b.len() as u8]);
            hs.extend_from_slice(b);
        }
        hammer(c, &[record(22, &hs)]);
    }

    /// Any split of a valid byte stream gives the same handshake.
    #[test]
    fn any_split_completes(chunk in 1usize..400, suite in prop::sample::select(CipherSuite::ALL.to_vec())) {
        let (p, c, s) = handshake(client_cfg(&KEY, &[suite]), server_cfg(CipherSuite::ALL, Some(b"h")), Some("a.example"), chunk)
            .map_err(|(e, _)| e).unwrap();
        prop_assert!(p.client.is_connected() && p.server.is_connected());
        prop_assert_eq!(c.connected.unwrap().suite, suite);
        let si = s.connected.unwrap();
        prop_assert_eq!(si.server_name.as_deref(), Some("a.example"));
    }

    /// Any single bit flip in a protected record is rejected: no data is delivered.
    #[test]
    fn bit_flip_in_protected_record_is_rejected(bit in 0usize..(8 * (5 + 8 + 20 + 16)), suite in prop::sample::select(CipherSuite::ALL.to_vec())) {
        let (mut p, _, _) = handshake(client_cfg(&KEY, &[suite]), server_cfg(CipherSuite::ALL, None), None, 1000)
            .map_err(|(e, _)| e).unwrap();
        p.client.send(Now::default(), b"twenty bytes of data").unwrap();
        let mut rec = drain(&mut p.client).bytes;
        let bit = bit % (8 * rec.len());
        rec[bit / 8] ^= 1 << (bit % 8);
        if let Ok(d) = feed(&mut p.server, &rec, 1000) {
            prop_assert!(d.data.is_empty(), "tampered record delivered data");
        }
    }

    /// Changing any byte of a handshake message in the client's first flight makes the
    /// handshake fail (the transcript binds it), never complete.
    #[test]
    fn tampered_client_hello_never_completes(pos in 0usize..1000, x in 1u8..=255) {
        let mut client = Session::client(client_cfg(&KEY, CipherSuite::ALL), Transport::Tls, Some("b.example"), Now::default(), [1; 32]).unwrap();
        let mut server = Session::server(server_cfg(CipherSuite::ALL, None), Transport::Tls, Now::default(), [2; 32]).unwrap();
        let mut ch = drain(&mut client).bytes;
        let pos = 5 + pos % (ch.len() - 5);
        ch[pos] ^= x;
        let mut to_client = match feed(&mut server, &ch, 1000) { Ok(d) => d.bytes, Err(_) => return Ok(()) };
        for _ in 0..4 {
            let to_server = match feed(&mut client, &to_client, 1000) { Ok(d) => d.bytes, Err(_) => break };
            to_client = match feed(&mut server, &to_server, 1000) { Ok(d) => d.bytes, Err(_) => break };
        }
        prop_assert!(!(client.is_connected() && server.is_connected()), "tampered hello at {} completed", pos);
    }

    #[test]
    fn client_hello_round_trips(
        random in any::<[u8; 32]>(),
        sid in prop::collection::vec(any::<u8>(), 0..=32),
        suites in prop::collection::vec(any::<u16>(), 1..20),
        exts in prop::collection::btree_map(any::<u16>(), prop::collection::vec(any::<u8>(), 0..40), 0..6),
        cookie in prop::option::of(prop::collection::vec(any::<u8>(), 0..40)),
    ) {
        let exts: Vec<Extension<'_>> = exts.iter().map(|(t, d)| Extension { typ: ExtensionType::from(*t), data: d }).collect();
        let ch = ClientHello {
            version: ProtocolVersion(0x0303), random, session_id: &sid, cookie: cookie.as_deref(),
            cipher_suites: suites, compression_methods: &[0], extensions: Some(exts),
        };
        let mut out = Vec::new();
        ch.encode(&mut out).unwrap();
        let back = ClientHello::decode(&out, ch.cookie.is_some()).unwrap();
        prop_assert_eq!(&back, &ch);
        let mut again = Vec::new();
        back.encode(&mut again).unwrap();
        prop_assert_eq!(again, out);
    }

    /// Decoding arbitrary bytes never panics, and whatever decodes re-encodes to the same bytes.
    #[test]
    fn decoders_are_canonical(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(ch) = ClientHello::decode(&bytes, false) {
            let mut out = Vec::new();
            ch.encode(&mut out).unwrap();
            prop_assert_eq!(&out, &bytes);
        }
        if let Ok(sh) = ServerHello::decode(&bytes) {
            let mut out = Vec::new();
            sh.encode(&mut out).unwrap();
            prop_assert_eq!(&out, &bytes);
        }
    }
}
