#![no_main]
//! Fuzz target `zn`: the Zn message codec (`m2msec::gba::zn`).
//!
//! The input is tried four ways: as an HTTP request primitive (`Request::decode`, then
//! `ZnRequest::from_request`), as an HTTP response primitive (`Response::decode`, then
//! `ZnReply::from_response`), and as a bare request and answer JSON body. Whatever parses must
//! stay within the codec's bounds, re-encode, and re-parse to the same value (a request also
//! through the binding's HTTP encoding, a refusal through `refusal`). Self-contained (the harness file `fuzz/src/harness.rs` has no
//! `zn` entry), so the logic lives here; seeds come from `gen_corpus.rs` (`zn_seeds`).

use m2msec::frameworks::binding::{Request, Response, Rsc, MAX_BODY};
use m2msec::gba::kdf::{BTid, MAX_BTID_LEN};
use m2msec::gba::zn::{
    refusal, ZnError, ZnKey, ZnReply, ZnRequest, MAX_IMPI_LEN, MAX_LIFETIME, MAX_USS,
};
use m2msec::time::UnixTime;

/// The time the answers are checked against: every valid lifetime is after it.
const NOW: UnixTime = UnixTime(0);

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(Some((req, used))) = Request::decode(data) {
        assert!(used <= data.len());
        if let Ok(z) = ZnRequest::from_request(&req) {
            request_round_trip(&z);
            // The binding's decoder is laxer about X-M2M-Origin / X-M2M-RI than its encoder
            // (binding-level, not Zn): re-encode with the received ones when they encode, and
            // always with plain ones.
            for (origin, rid) in [(req.origin.as_str(), req.request_id.as_str()), ("naf", "1")] {
                let again = z
                    .to_request(origin, rid)
                    .expect("a parsed request re-encodes");
                let mut wire = Vec::new();
                if again.encode(&mut wire).is_err() {
                    assert_ne!((origin, rid), ("naf", "1"), "a Zn request does not encode");
                    continue;
                }
                let (back, n) = Request::decode(&wire)
                    .expect("re-encoded request decodes")
                    .expect("re-encoded request complete");
                assert_eq!(n, wire.len());
                assert_eq!(ZnRequest::from_request(&back).as_ref(), Ok(&z));
            }
        }
    }
    if let Ok(Some((resp, used))) = Response::decode(data) {
        assert!(used <= data.len());
        match ZnReply::from_response(&resp, NOW) {
            Ok(ZnReply::Key(k)) => {
                assert_eq!(resp.rsc, Rsc::Ok);
                let again = k
                    .to_response(&resp.request_id)
                    .expect("a parsed key re-encodes");
                assert_eq!(ZnReply::from_response(&again, NOW), Ok(ZnReply::Key(k)));
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
                    assert_eq!(
                        ZnReply::from_response(&again, NOW),
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
        request_round_trip(&z);
    }
    match ZnKey::from_body(data) {
        Ok(k) => key_round_trip(&k),
        Err(ZnError::Expired) => panic!("a body alone is never expired"),
        Err(_) => {}
    }
});

fn request_round_trip(z: &ZnRequest) {
    assert!(z.btid.as_str().len() <= MAX_BTID_LEN);
    assert_eq!(BTid::parse(z.btid.as_str()).as_ref(), Ok(&z.btid));
    let body = z.to_body().expect("a parsed request re-encodes");
    assert_eq!(
        ZnRequest::from_body(&body).as_ref(),
        Ok(z),
        "ZnRequest round trip"
    );
}

fn key_round_trip(k: &ZnKey) {
    assert!(!k.impi.is_empty() && k.impi.len() <= MAX_IMPI_LEN);
    assert!(k.bootstrapping_time <= k.lifetime && k.lifetime.0 <= MAX_LIFETIME);
    assert!(k.uss.len() <= MAX_USS);
    let body = k.to_body().expect("a parsed key re-encodes");
    let again = ZnKey::from_body(&body).expect("a re-encoded key parses");
    assert_eq!(&again, k, "ZnKey round trip");
    assert_eq!(again.key.expose(), k.key.expose());
    // Either it is live at NOW, or its lifetime is NOW itself.
    assert_eq!(k.is_live(NOW), k.lifetime > NOW);
}
