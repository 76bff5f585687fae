//! The Zn message codec (core/src/gba/zn.rs): the request and the answer through their JSON
//! bodies and the binding's HTTP primitives (the `docs/protocol.md` examples byte for byte),
//! every refusal with the status, text and parameter the BSF answers it with, and proptests that
//! whatever parses re-encodes to the same value.
#![cfg(all(feature = "binding", feature = "gba"))]

use m2msec::frameworks::binding::{
    from_body, BindingError, ErrorBody, Method, Request, Response, Rsc, MAX_BODY,
};
use m2msec::gba::kdf::{BTid, KsNaf, NafId};
use m2msec::gba::zn::{
    refusal, ZnError, ZnFlavor, ZnKey, ZnReply, ZnRequest, MAX_LIFETIME, MAX_USS, ZN_PATH,
};
use m2msec::time::UnixTime;
use proptest::prelude::*;

const BTID: &str = "q0jJtW/edaxxsBFnltPoPA==@bsf.example.net";
const NAF_ID_HEX: &str = "6d65662e6578616d706c652e6e657401000100ae";
const REQUEST_JSON: &str = r#"{"btid":"q0jJtW/edaxxsBFnltPoPA==@bsf.example.net","nafId":"6d65662e6578616d706c652e6e657401000100ae","flavor":"gba-me"}"#;
const KEY_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

fn request() -> ZnRequest {
    ZnRequest {
        btid: BTid::parse(BTID).unwrap(),
        naf_id: NafId::tls_psk("mef.example.net", 0x00ae).unwrap(),
        flavor: ZnFlavor::Me,
    }
}

fn key() -> ZnKey {
    let mut k = [0u8; 32];
    for (i, b) in k.iter_mut().enumerate() {
        *b = u8::try_from(i).unwrap();
    }
    ZnKey {
        key: KsNaf::new(k),
        impi: "001010123456789@ims.example".into(),
        lifetime: UnixTime(1_795_843_676),
        bootstrapping_time: UnixTime(1_795_840_076),
        uss: vec!["mef.example.net".into()],
    }
}

fn answer_json(key: &str, impi: &str, lifetime: &str, time: &str, uss: &str) -> String {
    format!(
        r#"{{"key":{key},"impi":{impi},"lifetime":{lifetime},"bootstrappingTime":{time},"uss":{uss}}}"#
    )
}

fn good_answer() -> String {
    answer_json(
        &format!("\"{KEY_HEX}\""),
        "\"001010123456789@ims.example\"",
        "1795843676",
        "1795840076",
        r#"["mef.example.net"]"#,
    )
}

fn invalid(parameter: &'static str, what: &'static str) -> ZnError {
    ZnError::Invalid { parameter, what }
}

fn is_body_error(r: Result<impl core::fmt::Debug, ZnError>) -> bool {
    matches!(r, Err(ZnError::Body(BindingError::BadContent(_))))
}

#[test]
fn request_round_trip_matches_the_protocol_example() {
    let r = request();
    assert_eq!(hex::encode(r.naf_id.to_bytes()), NAF_ID_HEX);
    let body = r.to_body().unwrap();
    assert_eq!(core::str::from_utf8(&body).unwrap(), REQUEST_JSON);
    assert_eq!(ZnRequest::from_body(&body).unwrap(), r);
    // Upper-case hex is accepted (the value is the same; it is written back in lower case).
    let upper = REQUEST_JSON.replace(NAF_ID_HEX, &NAF_ID_HEX.to_ascii_uppercase());
    assert_eq!(ZnRequest::from_body(upper.as_bytes()).unwrap(), r);
    // gba-u.
    let u = ZnRequest {
        flavor: ZnFlavor::Uicc,
        ..r.clone()
    };
    let body = u.to_body().unwrap();
    assert!(core::str::from_utf8(&body)
        .unwrap()
        .ends_with(r#""flavor":"gba-u"}"#));
    assert_eq!(ZnRequest::from_body(&body).unwrap(), u);
    assert_eq!(ZnFlavor::parse("gba-u"), Some(ZnFlavor::Uicc));
    assert_eq!(ZnFlavor::Me.to_string(), "gba-me");

    // Through the binding's request primitive and HTTP framing.
    let req = r.to_request("naf-mef", "5c1e").unwrap();
    assert_eq!((req.method, req.path.as_str()), (Method::Post, ZN_PATH));
    let mut wire = Vec::new();
    req.encode(&mut wire).unwrap();
    let (back, used) = Request::decode(&wire).unwrap().unwrap();
    assert_eq!(used, wire.len());
    assert_eq!(back.origin, "naf-mef");
    assert_eq!(ZnRequest::from_request(&back).unwrap(), r);
}

#[test]
fn request_refusals() {
    let refused = |json: &str| ZnRequest::from_body(json.as_bytes());
    // Malformed JSON, wrong types, missing, unknown and repeated fields: the parser's text.
    for bad in [
        "",
        "{",
        "[]",
        "null",
        r#"{"btid":"a","nafId":"b","flavor":"gba-me"} x"#,
        r#"{"btid":1,"nafId":"6d","flavor":"gba-me"}"#,
        r#"{"btid":"x@y","nafId":["6d"],"flavor":"gba-me"}"#,
        r#"{"btid":"x@y","nafId":"6d","flavor":null}"#,
        r#"{"btid":"x@y","nafId":"6d"}"#,
        r#"{"nafId":"6d","flavor":"gba-me"}"#,
        &REQUEST_JSON.replace('}', r#","extra":1}"#),
        &REQUEST_JSON.replace(
            r#""flavor":"gba-me""#,
            r#""flavor":"gba-me","flavor":"gba-u""#,
        ),
    ] {
        assert!(is_body_error(refused(bad)), "{bad:?}");
    }
    // Oversize.
    let huge = format!(
        r#"{{"btid":"{}","nafId":"6d","flavor":"gba-me"}}"#,
        "A".repeat(MAX_BODY)
    );
    assert_eq!(refused(&huge), Err(ZnError::Body(BindingError::TooLarge)));
    // Bad B-TIDs: no '@', two, non-canonical or empty base64, a bad domain, over 512 bytes.
    let long = format!("{}@bsf.example.net", "QUFB".repeat(130));
    for btid in [
        "q0jJtW/edaxxsBFnltPoPA==",
        "q0jJtW/edaxxsBFnltPoPA==@a@b",
        "q0jJtW/edaxxsBFnltPoPB==@bsf.example.net",
        "q0jJtW/edaxxsBFnltPoPA@bsf.example.net",
        "@bsf.example.net",
        "q0jJtW/edaxxsBFnltPoPA==@-bsf.example.net",
        "q0jJtW/edaxxsBFnltPoPA==@bsf..net",
        "q0jJ tW/edaxxsBFnltPoPA==@bsf.example.net",
        &long,
    ] {
        let json = REQUEST_JSON.replace(BTID, btid);
        assert_eq!(
            refused(&json),
            Err(invalid("btid", "not a B-TID")),
            "{btid:?}"
        );
    }
    // Bad NAF_Ids: odd length, not hex, only the Ua id, no FQDN, a bad FQDN, over the bound.
    let bad_fqdn = format!("{}01000100ae", hex::encode("bad_host"));
    let too_long = format!("{}01000100ae", hex::encode("a".repeat(254)));
    for naf in [
        "6d65662",
        "zz65662e6578616d706c652e6e657401000100ae",
        "01000100ae",
        "",
        "6d01000100",
        bad_fqdn.as_str(),
        too_long.as_str(),
    ] {
        let json = REQUEST_JSON.replace(NAF_ID_HEX, naf);
        assert_eq!(
            refused(&json),
            Err(invalid("nafId", "not a NAF_Id")),
            "{naf:?}"
        );
    }
    for flavor in ["gba", "GBA-ME", "", "gba-me "] {
        let json = REQUEST_JSON.replace("gba-me", flavor);
        assert_eq!(
            refused(&json),
            Err(invalid("flavor", "flavor is gba-me or gba-u"))
        );
    }
    // Route: another path, another method.
    let mut req = request().to_request("naf", "1").unwrap();
    req.path = "/zn/other".into();
    assert_eq!(ZnRequest::from_request(&req), Err(ZnError::UnknownResource));
    req.path = ZN_PATH.into();
    req.method = Method::Get;
    assert_eq!(ZnRequest::from_request(&req), Err(ZnError::Method));
}

#[test]
fn refusals_carry_status_text_and_parameter() {
    let check = |e: ZnError, rsc: Rsc, error: &str, parameter: Option<&str>| {
        assert_eq!(e.rsc(), rsc);
        let r = e.refusal("7");
        assert_eq!((r.rsc, r.request_id.as_str()), (rsc, "7"));
        let body: ErrorBody = from_body(&r.body).unwrap();
        assert_eq!(body.error, error);
        assert_eq!(body.parameter.as_deref(), parameter);
        assert_eq!(r, refusal(rsc, error, parameter, "7"));
    };
    check(
        ZnError::UnknownResource,
        Rsc::NotFound,
        "no such resource",
        None,
    );
    check(ZnError::Method, Rsc::BadRequest, "method", None);
    check(
        invalid("btid", "not a B-TID"),
        Rsc::BadRequest,
        "not a B-TID",
        Some("btid"),
    );
    let e = ZnRequest::from_body(b"{").unwrap_err();
    let text = e.message();
    assert!(text.starts_with("bad content: "), "{text}");
    check(e, Rsc::BadRequest, &text, None);
    assert_eq!(
        invalid("nafId", "not a NAF_Id").to_string(),
        "nafId: not a NAF_Id"
    );
}

#[test]
fn answer_round_trip_matches_the_protocol_example() {
    let k = key();
    let body = k.to_body().unwrap();
    assert_eq!(core::str::from_utf8(&body).unwrap(), good_answer());
    assert_eq!(ZnKey::from_body(&body).unwrap(), k);
    // The key is never shown.
    let shown = format!("{k:?}");
    assert!(
        !shown.contains(KEY_HEX) && !shown.contains("[0, 1, 2"),
        "{shown}"
    );
    // Upper-case key hex is the same key; an empty uss and equal times are fine.
    let loose = answer_json(
        &format!("\"{}\"", KEY_HEX.to_ascii_uppercase()),
        "\"i\"",
        "5",
        "5",
        "[]",
    );
    let parsed = ZnKey::from_body(loose.as_bytes()).unwrap();
    assert_eq!(parsed.key, k.key);
    assert_eq!(parsed.lifetime, parsed.bootstrapping_time);

    // Through the response primitive, with the time checked.
    let resp = k.to_response("5c1e").unwrap();
    let mut wire = Vec::new();
    resp.encode(&mut wire).unwrap();
    let (back, _) = Response::decode(&wire).unwrap().unwrap();
    assert_eq!(back.rsc, Rsc::Ok);
    let before = UnixTime(k.lifetime.0 - 1);
    assert_eq!(
        ZnReply::from_response(&back, before).unwrap(),
        ZnReply::Key(k.clone())
    );
    assert!(k.is_live(before) && !k.is_live(k.lifetime));
    assert_eq!(
        ZnReply::from_response(&back, k.lifetime),
        Err(ZnError::Expired)
    );

    // Refusals: the ErrorBody's text and parameter; a body that is not one gives none.
    let r = invalid("btid", "unknown B-TID").refusal("1");
    let r = Response {
        rsc: Rsc::NotFound,
        ..r
    };
    assert_eq!(
        ZnReply::from_response(&r, before).unwrap(),
        ZnReply::Refused {
            rsc: Rsc::NotFound,
            error: Some("unknown B-TID".into()),
            parameter: Some("btid".into()),
        }
    );
    let bare = Response {
        rsc: Rsc::NoPrivilege,
        request_id: "1".into(),
        body: Default::default(),
    };
    assert_eq!(
        ZnReply::from_response(&bare, before).unwrap(),
        ZnReply::Refused {
            rsc: Rsc::NoPrivilege,
            error: None,
            parameter: None,
        }
    );
    // A 2000 whose body is not a key is an error, not a refusal.
    let junk = Response {
        rsc: Rsc::Ok,
        ..bare
    };
    assert!(is_body_error(ZnReply::from_response(&junk, before)));
}

#[test]
fn answer_refusals() {
    let key = format!("\"{KEY_HEX}\"");
    let impi = "\"001010123456789@ims.example\"";
    let uss = r#"["mef.example.net"]"#;
    let parse = |json: &str| ZnKey::from_body(json.as_bytes());
    // The JSON's shape.
    for bad in [
        "{}".to_string(),
        "[1]".into(),
        good_answer().replace(r#","uss":["mef.example.net"]"#, ""),
        good_answer().replace('}', r#","extra":true}"#),
        answer_json(&key, impi, "-1", "0", uss),
        answer_json(&key, impi, "1.5", "0", uss),
        answer_json(&key, impi, "\"1\"", "0", uss),
        answer_json(&key, impi, "18446744073709551616", "0", uss),
        answer_json(&key, "7", "1", "0", uss),
        answer_json(&key, impi, "1", "0", "\"mef.example.net\""),
        answer_json(&key, impi, "1", "0", "[1]"),
        // The key: 64 hex digits.
        answer_json("\"00\"", impi, "1", "0", uss),
        answer_json(&format!("\"{}\"", "g".repeat(64)), impi, "1", "0", uss),
        answer_json(&format!("\"{KEY_HEX}00\""), impi, "1", "0", uss),
        answer_json("null", impi, "1", "0", uss),
    ] {
        assert!(is_body_error(parse(&bad)), "{bad}");
    }
    // The values' bounds.
    let long_impi = format!("\"{}\"", "i".repeat(256));
    for (json, want) in [
        (
            answer_json(&key, "\"\"", "1", "0", uss),
            invalid("impi", "1 to 255 printable ASCII bytes"),
        ),
        (
            answer_json(&key, &long_impi, "1", "0", uss),
            invalid("impi", "1 to 255 printable ASCII bytes"),
        ),
        (
            answer_json(&key, "\"a b\"", "1", "0", uss),
            invalid("impi", "1 to 255 printable ASCII bytes"),
        ),
        (
            answer_json(&key, "\"caf\u{e9}\"", "1", "0", uss),
            invalid("impi", "1 to 255 printable ASCII bytes"),
        ),
        (
            answer_json(&key, impi, &(MAX_LIFETIME + 1).to_string(), "0", uss),
            invalid("lifetime", "after 9999-12-31T23:59:59Z"),
        ),
        (
            answer_json(&key, impi, "10", "11", uss),
            invalid("bootstrappingTime", "after the lifetime"),
        ),
        (
            answer_json(&key, impi, "1", "0", r#"["not a host"]"#),
            invalid("uss", "not a host name"),
        ),
        (
            answer_json(&key, impi, "1", "0", r#"[""]"#),
            invalid("uss", "not a host name"),
        ),
    ] {
        assert_eq!(parse(&json), Err(want), "{json}");
    }
    let many: Vec<String> = (0..=MAX_USS).map(|i| format!("\"n{i}.example\"")).collect();
    let json = answer_json(&key, impi, "1", "0", &format!("[{}]", many.join(",")));
    assert_eq!(parse(&json), Err(invalid("uss", "too many entries")));
    let just = answer_json(
        &key,
        impi,
        "1",
        "0",
        &format!("[{}]", many[..MAX_USS].join(",")),
    );
    assert_eq!(parse(&just).unwrap().uss.len(), MAX_USS);
    let huge = answer_json(
        &key,
        impi,
        "1",
        "0",
        &format!("[\"{}\"]", "a".repeat(MAX_BODY)),
    );
    assert_eq!(parse(&huge), Err(ZnError::Body(BindingError::TooLarge)));
    // The encoder refuses what the parser would.
    let mut k = self::key();
    k.bootstrapping_time = UnixTime(k.lifetime.0 + 1);
    assert_eq!(
        k.to_body(),
        Err(invalid("bootstrappingTime", "after the lifetime"))
    );
    let mut k = self::key();
    k.uss = vec!["a b".into()];
    assert!(k.to_response("1").is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever parses re-encodes to a body that parses to the same value (requests from
    /// structured guesses around the valid shape).
    #[test]
    fn parsed_requests_round_trip(
        local in "[A-Za-z0-9+/]{0,8}={0,2}",
        domain in "[a-z0-9.-]{0,12}",
        naf in "[0-9a-fA-F]{0,40}",
        flavor in prop_oneof![Just("gba-me"), Just("gba-u"), Just("x")],
    ) {
        let json = format!(r#"{{"btid":"{local}@{domain}","nafId":"{naf}","flavor":"{flavor}"}}"#);
        if let Ok(r) = ZnRequest::from_body(json.as_bytes()) {
            let again = ZnRequest::from_body(&r.to_body().unwrap()).unwrap();
            prop_assert_eq!(again, r);
        }
    }

    /// Arbitrary bytes never panic, as a body or as a request / response primitive.
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = ZnRequest::from_body(&data);
        let _ = ZnKey::from_body(&data);
        let req = Request {
            method: Method::Post,
            path: ZN_PATH.into(),
            origin: "n".into(),
            request_id: "1".into(),
            body: zeroize::Zeroizing::new(data.clone()),
        };
        let _ = ZnRequest::from_request(&req);
        let resp = Response { rsc: Rsc::Ok, request_id: "1".into(), body: req.body.clone() };
        let _ = ZnReply::from_response(&resp, UnixTime(0));
    }

    /// Answers with arbitrary times and uss entries: accepted exactly within the bounds, and
    /// then they round-trip.
    #[test]
    fn answer_bounds_agree(
        lifetime in prop_oneof![0u64..10, Just(MAX_LIFETIME), Just(MAX_LIFETIME + 1), any::<u64>()],
        time in prop_oneof![0u64..10, Just(MAX_LIFETIME), any::<u64>()],
        uss in proptest::collection::vec("[a-z.-]{0,6}", 0..4),
    ) {
        let list: Vec<String> = uss.iter().map(|u| format!("\"{u}\"")).collect();
        let json = answer_json(
            &format!("\"{KEY_HEX}\""),
            "\"i@x\"",
            &lifetime.to_string(),
            &time.to_string(),
            &format!("[{}]", list.join(",")),
        );
        let hosts_ok = uss.iter().all(|u| NafId::tls_psk(u, 0).is_ok());
        let ok = lifetime <= MAX_LIFETIME && time <= lifetime && hosts_ok;
        match ZnKey::from_body(json.as_bytes()) {
            Ok(k) => {
                prop_assert!(ok);
                prop_assert_eq!(ZnKey::from_body(&k.to_body().unwrap()).unwrap(), k);
            }
            Err(_) => prop_assert!(!ok),
        }
    }
}
