//! Properties of the ECDHE-ECDSA handshake: any split of the TLS byte stream and any DTLS MTU
//! completes; a flipped bit anywhere in a handshake message of either flight never completes;
//! arbitrary messages after an ECDHE ServerHello never panic.
#![cfg(feature = "ecdhe")]

use proptest::prelude::*;

use m2msec::config::ClientAuth;
use m2msec::{CipherSuite, Now, Transport};

mod ecdhe_common;
use ecdhe_common::*;

fn mutual(suite: CipherSuite) -> (m2msec::ClientConfig, m2msec::ServerConfig) {
    let server = server_x509();
    let client = client_x509();
    (
        client_cfg(&[suite], pin(&server), Some(client.clone())),
        server_cfg(
            CipherSuite::ECDHE_ECDSA,
            server,
            ClientAuth::Required,
            pin(&client),
        ),
    )
}

/// Byte offsets inside handshake messages of a TLS flight (record headers excluded, and only
/// before the first ChangeCipherSpec: the encrypted Finished has its own test).
fn handshake_offsets(flight: &[u8]) -> Vec<usize> {
    let mut v = Vec::new();
    let mut i = 0;
    while i + 5 <= flight.len() {
        let len = usize::from(u16::from_be_bytes([flight[i + 3], flight[i + 4]]));
        if flight[i] != 22 {
            break;
        }
        v.extend(i + 5..i + 5 + len);
        i += 5 + len;
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn any_split_completes(chunk in 1usize..400, suite in prop::sample::select(CipherSuite::ECDHE_ECDSA.to_vec())) {
        let (c, s) = mutual(suite);
        let o = run(c, s, Transport::Tls, chunk);
        prop_assert!(o.connected(), "{:?} / {:?}", o.c.err, o.s.err);
        prop_assert_eq!(exporter(&o.c.s), exporter(&o.s.s));
    }

    #[test]
    fn any_dtls_mtu_completes(mtu in 200usize..1500, suite in prop::sample::select(CipherSuite::ECDHE_ECDSA.to_vec())) {
        let (c, s) = mutual(suite);
        let o = run(c, s, Transport::Dtls { mtu }, 0);
        prop_assert!(o.connected(), "{:?} / {:?}", o.c.err, o.s.err);
        prop_assert_eq!(exporter(&o.c.s), exporter(&o.s.s));
    }

    #[test]
    fn bit_flip_in_server_flight_never_completes(pick in any::<prop::sample::Index>(), bit in 0u8..8) {
        let (c, s) = mutual(CipherSuite::EcdheEcdsaAes128Ccm8);
        let o = run_with(c, s, Transport::Tls, 100_000, (accept, accept), &mut |round, from_client, f| {
            if round == 0 && !from_client {
                let offs = handshake_offsets(&f[0]);
                let at = offs[pick.index(offs.len())];
                f[0][at] ^= 1 << bit;
            }
        });
        prop_assert!(!o.c.s.is_connected());
        prop_assert!(!o.s.s.is_connected());
    }

    #[test]
    fn bit_flip_in_client_flight_never_completes(pick in any::<prop::sample::Index>(), bit in 0u8..8) {
        let (c, s) = mutual(CipherSuite::EcdheEcdsaAes128Ccm);
        let o = run_with(c, s, Transport::Tls, 100_000, (accept, accept), &mut |round, from_client, f| {
            if round == 1 && from_client {
                let offs = handshake_offsets(&f[0]);
                let at = offs[pick.index(offs.len())];
                f[0][at] ^= 1 << bit;
            }
        });
        prop_assert!(!o.s.s.is_connected());
        prop_assert!(!o.c.s.is_connected());
    }

    #[test]
    fn client_survives_arbitrary_messages_after_server_hello(
        msgs in prop::collection::vec((prop::sample::select(vec![0u8, 2, 11, 12, 13, 14, 15, 16, 20, 99]), prop::collection::vec(any::<u8>(), 0..200)), 0..5)
    ) {
        let (c, s) = mutual(CipherSuite::EcdheEcdsaAes128Ccm);
        let _ = run_with(c, s, Transport::Tls, 100_000, (accept, accept), &mut |round, from_client, f| {
            if round == 0 && !from_client {
                // Keep ServerHello, replace the rest of the flight.
                let recs = records(&f[0]);
                let mut out = vec![recs[0].clone()];
                for (typ, body) in &msgs {
                    let mut m = vec![*typ];
                    m.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes()[1..]);
                    m.extend_from_slice(body);
                    out.push((22, m));
                }
                f[0] = join(&out);
            }
        });
    }

    #[test]
    fn server_survives_arbitrary_messages_after_client_hello(
        msgs in prop::collection::vec((prop::sample::select(vec![11u8, 15, 16, 20, 1]), prop::collection::vec(any::<u8>(), 0..120)), 0..4)
    ) {
        let (c, s) = mutual(CipherSuite::EcdheEcdsaAes128Ccm);
        let _ = run_with(c, s, Transport::Tls, 100_000, (accept, accept), &mut |round, from_client, f| {
            if round == 1 && from_client {
                let mut out = Vec::new();
                for (typ, body) in &msgs {
                    let mut m = vec![*typ];
                    m.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes()[1..]);
                    m.extend_from_slice(body);
                    out.push((22, m));
                }
                f[0] = join(&out);
            }
        });
    }
}

#[test]
fn flipped_finished_is_bad_record_mac() {
    let (c, s) = mutual(CipherSuite::EcdheEcdsaAes128Ccm8);
    let o = run_with(
        c,
        s,
        Transport::Tls,
        100_000,
        (accept, accept),
        &mut |round, from_client, f| {
            if round == 1 && from_client {
                let n = f[0].len();
                f[0][n - 1] ^= 0x80;
            }
        },
    );
    assert_eq!(o.s.err, Some(m2msec::Error::BadRecordMac));
    let _ = Now::default();
}
