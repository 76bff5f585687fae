//! TS-0003 key derivations and key identifiers (`m2msec::keys`): unit and property tests.
//!
//! The known-answer vectors computed outside m2msec live in `testvectors/data/ts0003/kdf.json`;
//! these tests pin the rules (NFKC, D1 split, D2 identifier text and comparison) and that no input
//! makes the identifier parser panic.

mod common;

use std::collections::hash_map::DefaultHasher;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use m2msec::keys::{
    connection_key, enrolment_key, km, kpsa, nfkc, split_exporter, IdKind, Kc, Ke, KeyError, KeyId,
    Km, Kpsa, RelativeId, BOOTSTRAP_EXPORTER_LABEL, CONNECTION_EXPORTER_LABEL, EXPORTER_LEN,
    KEY_LEN, KM_LABEL, KPSA_LABEL, MAX_FQDN_LEN, MAX_KEY_ID_LEN, MAX_RELATIVE_LEN, RELATIVE_ID_LEN,
};
use m2msec::{
    CipherSuite, ClientConfig, ClientPsk, PskLookup, PskResolver, PskTable, ServerConfig,
};
use proptest::prelude::*;

const ALL_KINDS: [IdKind; 5] = [
    IdKind::Ke,
    IdKind::Kc,
    IdKind::Km,
    IdKind::Kpsa,
    IdKind::Kpm,
];

fn ke_0_31() -> Ke {
    Ke::new(core::array::from_fn(|i| i as u8))
}

fn h(x: &impl Hash) -> u64 {
    let mut s = DefaultHasher::new();
    x.hash(&mut s);
    s.finish()
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

// ---- constants ----------------------------------------------------------------------------------

#[test]
fn constants_are_the_published_values() {
    assert_eq!(BOOTSTRAP_EXPORTER_LABEL, b"EXPORTER-oneM2M-Bootstrap");
    assert_eq!(CONNECTION_EXPORTER_LABEL, b"EXPORTER-oneM2M-Connection");
    assert_eq!(
        KM_LABEL,
        b"oneM2M Enrolment Key to Master Credential derivation"
    );
    assert_eq!(
        KPSA_LABEL,
        b"oneM2M Enrolment Key to Provisioned Secure Connection Key derivation"
    );
    assert_eq!((EXPORTER_LEN, RELATIVE_ID_LEN, KEY_LEN), (48, 16, 32));
    assert_eq!(MAX_KEY_ID_LEN, MAX_RELATIVE_LEN + 1 + MAX_FQDN_LEN);
}

// ---- Km / Kpsa and NFKC -------------------------------------------------------------------------

#[test]
fn km_reproduces_the_spec_notes_illustration() {
    let k = km(&ke_0_31(), "maf.example.com");
    assert_eq!(
        hex::encode(k.expose()),
        "3055bf32dd9c95586aaffa2ae2e165dfeffd0803566e16bdd343171457da8a5e"
    );
}

#[test]
fn km_is_hmac_over_label_and_id_without_separator() {
    let ke = ke_0_31();
    let want = m2msec::crypto::prf::hmac_sha256(ke.expose(), &[KM_LABEL, b"maf.example.com"]);
    assert_eq!(km(&ke, "maf.example.com").expose(), &want);
    let want = m2msec::crypto::prf::hmac_sha256(ke.expose(), &[KPSA_LABEL, b"/CSE3219"]);
    assert_eq!(kpsa(&ke, "/CSE3219").expose(), &want);
}

/// Without the `unicode` feature (a device build) `nfkc` takes text as given: ASCII, which every
/// identifier the framework types accept is, derives exactly the same keys.
#[cfg(not(feature = "unicode"))]
#[test]
fn without_unicode_text_is_taken_as_given() {
    let full = "\u{ff4d}\u{ff41}\u{ff46}.example.com";
    assert_eq!(nfkc(full), full);
    assert!(matches!(
        nfkc("maf.example.com"),
        std::borrow::Cow::Borrowed(_)
    ));
    let ke = ke_0_31();
    let want = m2msec::crypto::prf::hmac_sha256(ke.expose(), &[KM_LABEL, b"maf.example.com"]);
    assert_eq!(km(&ke, "maf.example.com").expose(), &want);
}

#[cfg(feature = "unicode")]
#[test]
fn full_width_maf_id_normalises_to_ascii() {
    let ke = ke_0_31();
    let full = "\u{ff4d}\u{ff41}\u{ff46}.example.com"; // ｍａｆ.example.com
    assert_eq!(nfkc(full), "maf.example.com");
    assert_eq!(km(&ke, full), km(&ke, "maf.example.com"));
}

#[cfg(feature = "unicode")]
#[test]
fn ligature_and_compatibility_characters_normalise() {
    assert_eq!(nfkc("\u{fb01}rst-maf.example.com"), "first-maf.example.com"); // ﬁ
    assert_eq!(nfkc("maf\u{b2}.\u{216b}"), "maf2.XII"); // ² Ⅻ
    assert_eq!(nfkc("\u{212b}"), "\u{c5}"); // Angstrom sign -> Å
    assert_eq!(nfkc("bu\u{308}cher"), "b\u{fc}cher"); // composition
    let ke = Ke::new([7; 32]);
    assert_eq!(
        km(&ke, "\u{fb01}rst-maf.example.com"),
        km(&ke, "first-maf.example.com")
    );
    assert_eq!(kpsa(&ke, "\u{ff0f}CSE3219"), kpsa(&ke, "/CSE3219"));
}

#[test]
fn nfkc_leaves_ascii_and_nfkc_text_untouched_and_borrowed() {
    for s in [
        "maf.example.com",
        "MEF.Example.COM",
        "",
        "b\u{fc}cher",
        "\u{8a8d}\u{8a3c}.jp",
    ] {
        let n = nfkc(s);
        assert_eq!(n, s);
        assert!(matches!(n, std::borrow::Cow::Borrowed(_)), "{s:?}");
    }
}

#[test]
fn nfkc_does_not_fold_case() {
    let ke = ke_0_31();
    assert_ne!(km(&ke, "MAF.example.com"), km(&ke, "maf.example.com"));
}

#[test]
fn km_and_kpsa_use_different_labels() {
    let ke = ke_0_31();
    assert_ne!(
        km(&ke, "x.example").expose(),
        kpsa(&ke, "x.example").expose()
    );
    assert_ne!(km(&ke, "a.example"), km(&ke, "b.example"));
    assert_ne!(km(&ke, "a.example"), km(&Ke::new([0; 32]), "a.example"));
}

// ---- secret types -------------------------------------------------------------------------------

#[test]
fn keys_are_redacted_and_compare_by_value() {
    let a = Ke::new([0xab; 32]);
    for dbg in [
        format!("{a:?}"),
        format!("{:?}", Kc::new([0xab; 32])),
        format!("{:?}", Km::new([0xab; 32])),
        format!("{:?}", Kpsa::new([0xab; 32])),
        format!("{:?}", split_exporter(&[0xab; 48]).1),
    ] {
        assert!(dbg.contains("redacted"), "{dbg}");
        assert!(!dbg.to_lowercase().contains("abab"), "{dbg}");
    }
    assert_eq!(a, Ke::new([0xab; 32]));
    assert_ne!(a, Ke::new([0xac; 32]));
    let psk = a.to_psk();
    assert_eq!(psk.expose(), &[0xab; 32][..]);
}

// ---- exporter split, Ke/KeID, Kc/KcID -----------------------------------------------------------

#[test]
fn split_takes_the_leading_16_bytes_as_id() {
    let out: [u8; 48] = core::array::from_fn(|i| i as u8);
    let (rel, key) = split_exporter(&out);
    assert_eq!(rel.as_bytes(), &out[..16]);
    assert_eq!(key.expose(), &out[16..]);
    assert_eq!(rel.to_hex(), "000102030405060708090A0B0C0D0E0F");
    assert_eq!(rel.to_string(), rel.to_hex());
    assert_eq!(
        RelativeId::from_hex(&rel.to_hex().to_lowercase()),
        Some(rel)
    );
    assert_eq!(
        RelativeId::from_hex("000102030405060708090A0B0C0D0E0"),
        None
    );
    assert_eq!(
        RelativeId::from_hex("000102030405060708090A0B0C0D0E0G"),
        None
    );
}

#[test]
fn enrolment_key_builds_upper_hex_keid() {
    let out: [u8; 48] = core::array::from_fn(|i| (0xf0 + i) as u8);
    let (id, ke) = enrolment_key(&out, "mef.example.com").unwrap();
    assert_eq!(id.kind(), IdKind::Ke);
    assert_eq!(
        id.as_str(),
        "F0F1F2F3F4F5F6F7F8F9FAFBFCFDFEFF@mef.example.com"
    );
    assert_eq!(id.relative(), "F0F1F2F3F4F5F6F7F8F9FAFBFCFDFEFF");
    assert_eq!(id.fqdn(), "mef.example.com");
    assert_eq!(id.relative_id().unwrap().as_bytes(), &out[..16]);
    assert_eq!(ke.expose(), &out[16..]);
    assert_eq!(
        KeyId::parse(IdKind::Ke, &id.as_str().to_lowercase()).unwrap(),
        id
    );

    let (cid, kc) = connection_key(&out, "maf.example.com").unwrap();
    assert_eq!(cid.kind(), IdKind::Kc);
    assert_eq!(cid.relative(), id.relative());
    assert_eq!(kc.expose(), ke.expose());
    assert_ne!(cid, id, "different kinds are never equal");
}

#[test]
fn derivations_refuse_a_bad_fqdn() {
    let out = [0u8; 48];
    for bad in [
        "",
        "127.0.0.1",
        "a..b",
        "-a.b",
        "a b",
        "a@b",
        "x.example.",
        "m\u{e4}f.example",
    ] {
        assert_eq!(
            enrolment_key(&out, bad).unwrap_err(),
            KeyError::InvalidFqdn,
            "{bad:?}"
        );
        assert_eq!(
            connection_key(&out, bad).unwrap_err(),
            KeyError::InvalidFqdn
        );
    }
}

/// Enrolee and MEF export the same Ke and KeID from a real handshake; the Enrolee then opens its
/// MAF session with psk_identity = KeID and psk = Km (D13), which the MAF got from the MEF.
#[test]
fn bootstrap_then_maf_handshake_over_real_sessions() {
    let (p, _, _) = common::handshake(
        common::client_cfg(&common::KEY, CipherSuite::ALL),
        common::server_cfg(CipherSuite::ALL, None),
        Some("mef.example.com"),
        1000,
    )
    .unwrap_or_else(|(e, _)| panic!("bootstrap handshake: {e}"));
    let mut enrolee = [0u8; EXPORTER_LEN];
    let mut mef = [0u8; EXPORTER_LEN];
    p.client
        .export_keying_material(&mut enrolee, BOOTSTRAP_EXPORTER_LABEL, None)
        .unwrap();
    p.server
        .export_keying_material(&mut mef, BOOTSTRAP_EXPORTER_LABEL, None)
        .unwrap();
    let (id_e, ke_e) = enrolment_key(&enrolee, "mef.example.com").unwrap();
    let (id_m, ke_m) = enrolment_key(&mef, "MEF.example.com").unwrap();
    assert_eq!(id_e, id_m, "FQDN compares case-insensitively");
    assert_eq!(ke_e, ke_m);
    let km_enrolee = km(&ke_e, "maf.example.com");
    let km_for_maf = km(&ke_m, "maf.example.com");

    let client_psk = ClientPsk::new(id_e.as_bytes(), km_enrolee.to_psk()).unwrap();
    // The MEF configured its FQDN in another case, so the KeID texts differ in bytes: a
    // byte-exact PskTable does not find it, a resolver keyed by KeyId (D2 comparison) does.
    assert_ne!(id_e.as_bytes(), id_m.as_bytes());
    let mut table = PskTable::new();
    table.insert(id_m.as_bytes(), km_for_maf.to_psk()).unwrap();
    let exact = Arc::new(ServerConfig::builder(Box::new(table)).build().unwrap());
    let client = Arc::new(ClientConfig::builder(client_psk).build().unwrap());
    let err = common::handshake(client.clone(), exact, Some("maf.example.com"), 1000)
        .err()
        .expect("byte-exact table must not match")
        .0;
    assert_eq!(err, m2msec::Error::UnknownPskIdentity);

    let maf = Arc::new(
        ServerConfig::builder(Box::new(ByKeyId(vec![(id_m, km_for_maf)])))
            .build()
            .unwrap(),
    );
    let (p, _, _) = common::handshake(client, maf, Some("maf.example.com"), 1000)
        .unwrap_or_else(|(e, _)| panic!("MAF handshake with KeID and Km: {e}"));
    assert!(p.client.is_connected() && p.server.is_connected());
}

/// A MAF's key store: psk_identity parsed as a KeID and compared by the D2 rules.
struct ByKeyId(Vec<(KeyId, Km)>);

impl PskResolver for ByKeyId {
    fn resolve(&self, identity: &[u8], _sni: Option<&str>) -> PskLookup {
        let Ok(id) = KeyId::parse_bytes(IdKind::Ke, identity) else {
            return PskLookup::Unknown;
        };
        self.0
            .iter()
            .find(|(k, _)| *k == id)
            .map_or(PskLookup::Unknown, |(_, km)| PskLookup::Found(km.to_psk()))
    }
}

// ---- key identifiers ----------------------------------------------------------------------------

#[test]
fn key_id_examples() {
    let id = KeyId::parse(IdKind::Kpsa, "test@onem2m.com").unwrap();
    assert_eq!((id.relative(), id.fqdn()), ("test", "onem2m.com"));
    assert_eq!(id.to_string(), "test@onem2m.com");
    assert_eq!(id.as_bytes(), b"test@onem2m.com");
    assert_eq!(id.relative_id(), None);
    assert_eq!(format!("{id:?}"), "KeyId(Kpsa, \"test@onem2m.com\")");

    let km_id = KeyId::parse(IdKind::Km, "AE123-lock@in.provider.com").unwrap();
    assert_eq!(
        km_id.as_str(),
        "AE123-lock@in.provider.com",
        "kept verbatim"
    );

    let tok = KeyId::parse(IdKind::Kc, "token-17.a_b@maf.example.com").unwrap();
    assert_eq!(tok.as_str(), "token-17.a_b@maf.example.com");
    let hexkc = KeyId::parse(
        IdKind::Kc,
        "00112233445566778899aabbccddeeff@maf.example.com",
    )
    .unwrap();
    assert_eq!(hexkc.relative(), "00112233445566778899AABBCCDDEEFF");
    assert_eq!(
        hexkc.relative_id().unwrap().as_bytes(),
        &unhex("00112233445566778899aabbccddeeff")[..]
    );
}

#[test]
fn key_id_errors_are_typed() {
    use KeyError::*;
    let cases: &[(IdKind, &str, KeyError)] = &[
        (IdKind::Kpsa, "test", MissingAt),
        (IdKind::Kpsa, "", MissingAt),
        (IdKind::Kpsa, "@onem2m.com", EmptyRelative),
        (IdKind::Kpsa, "te st@onem2m.com", InvalidRelativeChar),
        (IdKind::Kpsa, "t\u{e9}st@onem2m.com", InvalidRelativeChar),
        (IdKind::Kpsa, "a+b=@bsf.example", InvalidRelativeChar),
        (IdKind::Kpsa, "test@", InvalidFqdn),
        (IdKind::Kpsa, "test@a@b.example", InvalidFqdn),
        (IdKind::Kpsa, "test@10.0.0.1", InvalidFqdn),
        (IdKind::Kpsa, "test@[::1]", InvalidFqdn),
        (IdKind::Ke, "thiskey@mymef.com", NotHexRelative),
        (
            IdKind::Ke,
            "00112233445566778899aabbccddeef@m.example",
            NotHexRelative,
        ),
        (
            IdKind::Ke,
            "00112233445566778899aabbccddeeff0@m.example",
            NotHexRelative,
        ),
    ];
    for (kind, s, want) in cases {
        assert_eq!(KeyId::parse(*kind, s).unwrap_err(), *want, "{kind:?} {s:?}");
    }
    let long_rel = format!("{}@maf.example.com", "a".repeat(MAX_RELATIVE_LEN + 1));
    assert_eq!(
        KeyId::parse(IdKind::Km, &long_rel).unwrap_err(),
        RelativeTooLong
    );
    let too_long = "a".repeat(MAX_KEY_ID_LEN + 1);
    assert_eq!(KeyId::parse(IdKind::Km, &too_long).unwrap_err(), TooLong);
    assert_eq!(
        KeyId::parse_bytes(IdKind::Km, b"a\xff@maf.example.com").unwrap_err(),
        NotUtf8
    );
    assert_eq!(
        KeyId::parse_bytes(IdKind::Km, too_long.as_bytes()).unwrap_err(),
        TooLong
    );
    for e in [
        NotUtf8,
        TooLong,
        MissingAt,
        EmptyRelative,
        RelativeTooLong,
        InvalidRelativeChar,
        NotHexRelative,
        InvalidFqdn,
    ] {
        assert!(!e.to_string().is_empty());
    }
}

#[test]
fn key_id_at_the_length_limit() {
    let fqdn = format!("{0}.{0}.{0}.{1}", "b".repeat(63), "c".repeat(61));
    assert_eq!(fqdn.len(), MAX_FQDN_LEN);
    let s = format!("{}@{fqdn}", "a".repeat(MAX_RELATIVE_LEN));
    assert_eq!(s.len(), MAX_KEY_ID_LEN);
    let id = KeyId::parse(IdKind::Km, &s).unwrap();
    assert_eq!(id.as_str(), s);
    assert_eq!(KeyId::parse_bytes(IdKind::Km, s.as_bytes()).unwrap(), id);
}

#[test]
fn key_id_comparison_rules() {
    let p = |k, s: &str| KeyId::parse(k, s).unwrap();
    // FQDN: case-insensitive for every kind (D2).
    for k in [IdKind::Kc, IdKind::Km, IdKind::Kpsa, IdKind::Kpm] {
        assert_eq!(p(k, "key1@MAF.example.COM"), p(k, "key1@maf.example.com"));
    }
    // Relative: case-insensitive for KeID/KcID (hex, D2/D4) and KmID (published 10.6) ...
    assert_eq!(
        p(IdKind::Ke, "00112233445566778899AABBCCDDEEFF@m.example"),
        p(IdKind::Ke, "00112233445566778899aabbccddeeff@m.example")
    );
    assert_eq!(
        p(IdKind::Kc, "Token@m.example"),
        p(IdKind::Kc, "tOKEN@m.example")
    );
    assert_eq!(
        p(IdKind::Km, "AE123-lock@in.provider.com"),
        p(IdKind::Km, "ae123-LOCK@IN.provider.com")
    );
    // ... exact for KpsaID and KpmID.
    assert_ne!(
        p(IdKind::Kpsa, "Test@onem2m.com"),
        p(IdKind::Kpsa, "test@onem2m.com")
    );
    assert_ne!(
        p(IdKind::Kpm, "Test@onem2m.com"),
        p(IdKind::Kpm, "test@onem2m.com")
    );
    // Never across kinds.
    assert_ne!(
        p(IdKind::Km, "test@onem2m.com"),
        p(IdKind::Kpsa, "test@onem2m.com")
    );

    // Hash agrees with Eq.
    let set: HashSet<KeyId> = [
        p(IdKind::Km, "AE123-lock@in.provider.com"),
        p(IdKind::Km, "ae123-LOCK@IN.provider.com"),
        p(IdKind::Kpsa, "Test@onem2m.com"),
        p(IdKind::Kpsa, "test@onem2m.com"),
        p(IdKind::Kpsa, "test@ONEM2M.com"),
    ]
    .into_iter()
    .collect();
    assert_eq!(set.len(), 3);
}

// ---- properties ---------------------------------------------------------------------------------

fn kind() -> impl Strategy<Value = IdKind> {
    prop::sample::select(ALL_KINDS.to_vec())
}

fn dns_label() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_]([A-Za-z0-9_-]{0,8}[A-Za-z0-9_])?"
}

/// A DNS name with at least one non-digit label (so never an IPv4-like literal).
fn fqdn() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(dns_label(), 0..4),
        "[a-z][a-z0-9]{0,6}",
    )
        .prop_map(|(mut labels, tld)| {
            labels.push(tld);
            labels.join(".")
        })
}

/// Strings near the valid form: pieces of identifiers, separators and odd characters glued.
fn near_id() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            "[A-Za-z0-9._-]{0,40}",
            Just("@".to_owned()),
            Just(".".to_owned()),
            Just("-".to_owned()),
            "[0-9a-fA-F]{32}",
            "[0-9.:\\[\\]]{0,12}",
            "\\PC{0,4}",
            Just("a".repeat(300)),
        ],
        0..8,
    )
    .prop_map(|v| v.concat())
}

fn flip_case(s: &str, mask: &[bool]) -> String {
    s.chars()
        .zip(mask.iter().cycle())
        .map(|(c, &up)| {
            if up {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

fn check_parsed(kind: IdKind, input: &str) -> Result<(), TestCaseError> {
    if let Ok(id) = KeyId::parse(kind, input) {
        prop_assert_eq!(id.kind(), kind);
        prop_assert!(id.as_str().len() <= MAX_KEY_ID_LEN);
        prop_assert_eq!(format!("{}@{}", id.relative(), id.fqdn()), id.as_str());
        prop_assert!(id.as_str().eq_ignore_ascii_case(input));
        // format(parse(x)) is canonical: a fixed point of parse-then-format, and equal.
        let again = KeyId::parse(kind, id.as_str()).expect("canonical text parses");
        prop_assert_eq!(again.as_str(), id.as_str());
        prop_assert_eq!(&again, &id);
        prop_assert_eq!(h(&again), h(&id));
        prop_assert_eq!(KeyId::parse_bytes(kind, input.as_bytes()).ok(), Some(id));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn parser_never_panics_on_any_string(k in kind(), s in "\\PC{0,80}") {
        check_parsed(k, &s)?;
    }

    #[test]
    fn parser_never_panics_on_near_valid_strings(k in kind(), s in near_id()) {
        check_parsed(k, &s)?;
    }

    #[test]
    fn parser_never_panics_on_any_bytes(
        k in kind(),
        b in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        if let Ok(id) = KeyId::parse_bytes(k, &b) {
            check_parsed(k, std::str::from_utf8(&b).unwrap())?;
            prop_assert!(id.as_bytes().eq_ignore_ascii_case(&b));
        }
    }

    #[test]
    fn valid_ids_parse_and_compare_per_kind(
        k in kind(),
        rel in "[A-Za-z0-9._-]{1,40}",
        hex_rel in "[0-9a-fA-F]{32}",
        host in fqdn(),
        mask in prop::collection::vec(any::<bool>(), 1..8),
    ) {
        let rel = if k == IdKind::Ke { hex_rel } else { rel };
        let text = format!("{rel}@{host}");
        let id = KeyId::parse(k, &text).unwrap();
        prop_assert_eq!(id.fqdn(), host.as_str());
        // FQDN case never matters.
        let other = KeyId::parse(k, &format!("{rel}@{}", flip_case(&host, &mask))).unwrap();
        prop_assert_eq!(&other, &id);
        prop_assert_eq!(h(&other), h(&id));
        // Relative case matters exactly for the kinds that compare it exactly.
        let flipped = flip_case(&rel, &mask);
        let other = KeyId::parse(k, &format!("{flipped}@{host}")).unwrap();
        prop_assert_eq!(other == id, k.relative_case_insensitive() || flipped == rel);
        if other == id {
            prop_assert_eq!(h(&other), h(&id));
        }
    }

    #[test]
    fn relative_bytes_round_trip(k in kind(), bytes in any::<[u8; 16]>(), host in fqdn()) {
        let id = KeyId::from_relative_bytes(k, &bytes, &host).unwrap();
        prop_assert_eq!(id.relative(), RelativeId::from_bytes(bytes).to_hex());
        prop_assert_eq!(id.relative_id(), Some(RelativeId::from_bytes(bytes)));
        let lower = KeyId::parse(k, &id.as_str().to_lowercase()).unwrap();
        if matches!(k, IdKind::Ke | IdKind::Kc) {
            // Hex relative parts are upper-cased whatever case they came in (D2).
            prop_assert_eq!(lower.relative(), id.relative());
        }
        let parsed = KeyId::parse(k, id.as_str()).unwrap();
        prop_assert_eq!(parsed.as_str(), id.as_str());
        prop_assert_eq!(parsed, id);
    }

    #[test]
    fn split_is_a_partition(out in any::<[u8; 48]>(), host in fqdn()) {
        let (rel, key) = split_exporter(&out);
        prop_assert_eq!([&rel.as_bytes()[..], &key.expose()[..]].concat(), out.to_vec());
        let (id, ke) = enrolment_key(&out, &host).unwrap();
        prop_assert_eq!(id.relative_id(), Some(rel));
        prop_assert_eq!(ke.expose(), key.expose());
        let (cid, kc) = connection_key(&out, &host).unwrap();
        prop_assert_eq!(cid.relative(), id.relative());
        prop_assert_eq!(kc.expose(), key.expose());
    }

    #[test]
    fn derivations_take_the_nfkc_form(ke in any::<[u8; 32]>(), s in "\\PC{0,24}") {
        let ke = Ke::new(ke);
        let n = nfkc(&s).into_owned();
        prop_assert_eq!(nfkc(&n), n.as_str(), "NFKC is idempotent");
        prop_assert_eq!(km(&ke, &s), km(&ke, &n));
        prop_assert_eq!(kpsa(&ke, &s), kpsa(&ke, &n));
        prop_assert_ne!(*km(&ke, &s).expose(), *kpsa(&ke, &s).expose());
    }
}
