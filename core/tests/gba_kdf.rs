//! TS 33.220 Annex B KDF, NAF_Id, B-TID and the D10 psk_identity forms (the full data set runs in
//! `testvectors`; these are the spec-notes 6.2/6.3 illustrations and the refusals).
#![cfg(feature = "gba")]

use m2msec::gba::kdf::{
    kdf, ks_ext_naf, ks_int_naf, ks_naf, parse_psk_identity, psk_identity, BTid, GbaKdfError,
    GbaPrefix, NafId, PREFIX_ME, PREFIX_UICC, UA_HTTP_DIGEST,
};
use m2msec::gba::milenage::Milenage;
use m2msec::gba::Ks;

fn h<const N: usize>(s: &str) -> [u8; N] {
    hex::decode(s).unwrap().try_into().unwrap()
}

const RAND1: &str = "23553cbe9637a89d218ae64dae47bf35";
const IMPI: &str = "user1_private@home1.net";

/// Ks = CK || IK of TS 35.208 test set 1.
fn ks1() -> Ks {
    let m = Milenage::new_with_opc(
        &h("465b5ce8b199b49faa5f0a2ee238a6bc"),
        &h("cd63cb71954a9f4e48a5994e37a02baf"),
    );
    let v = m.f2345(&h(RAND1));
    let mut k = [0u8; 32];
    k[..16].copy_from_slice(&v.ck);
    k[16..].copy_from_slice(&v.ik);
    Ks(k)
}

#[test]
fn spec_notes_illustration() {
    // TLS_PSK_WITH_AES_128_CBC_SHA256 = 0x00AE.
    let id = NafId::tls_psk("maf.example.com", 0x00ae).unwrap();
    assert_eq!(id, NafId::new("maf.example.com", h("01000100ae")).unwrap());
    assert_eq!(id.to_bytes(), b"maf.example.com\x01\x00\x01\x00\xae");
    let ks = ks1();
    let rand = h::<16>(RAND1);
    let me = ks_naf(&ks, &rand, IMPI, &id).unwrap();
    assert_eq!(
        hex::encode(me.expose()),
        "b077df089d01918257754a19d0fcaa05302cf6c7eb805ab8f08f6ce0819c8b91"
    );
    assert_eq!(ks_ext_naf(&ks, &rand, IMPI, &id).unwrap(), me);
    let int = ks_int_naf(&ks, &rand, IMPI, &id).unwrap();
    assert_eq!(
        hex::encode(int.expose()),
        "b301c83ab5b28712a2fc8610c916c05fb0baba04faaa8ba4aa51e796edfc82b4"
    );
    let dbg = format!("{me:?} {int:?} {ks:?}");
    assert!(
        !dbg.contains("b077") && !dbg.contains("b301") && !dbg.contains("b40b"),
        "{dbg}"
    );
    // Any input changes the key.
    let other = NafId::tls_psk("maf.example.com", 0xc0a8).unwrap();
    assert_ne!(ks_naf(&ks, &rand, IMPI, &other).unwrap(), me);
    assert_ne!(ks_naf(&ks, &rand, "user2@home1.net", &id).unwrap(), me);
    let http = NafId::new("maf.example.com", UA_HTTP_DIGEST).unwrap();
    assert_ne!(ks_naf(&ks, &rand, IMPI, &http).unwrap(), me);
}

#[test]
fn generic_kdf_plumbing_and_limits() {
    let key = h::<32>("238E457E0F758BADBCA8D34BB2612C10428D426757CB5553B2B184FA64BFC549");
    let out = kdf(&key, 0x11, &[&h::<4>("DB1A3569")]).unwrap();
    assert_eq!(
        hex::encode_upper(out.expose()),
        "8EB1BF0083BD79281EF7034BF677E9EC529F196E15287514A2D122ACF713B8E8"
    );
    let big = vec![0u8; 65536];
    assert_eq!(
        kdf(&key, 1, &[&big]).map(|_| ()),
        Err(GbaKdfError::ParameterTooLong)
    );
    assert!(kdf(&key, 1, &[&big[..65535]]).is_ok());
    let id = NafId::tls_psk("maf.example.com", 0x00ae).unwrap();
    let long_impi = "x".repeat(65536);
    assert_eq!(
        ks_naf(&ks1(), &h(RAND1), &long_impi, &id).map(|_| ()),
        Err(GbaKdfError::ParameterTooLong)
    );
}

#[test]
fn naf_id_refuses_bad_fqdns() {
    for bad in [
        "",
        ".",
        "maf..example.com",
        "-maf.example.com",
        "maf-.example.com",
        "maf example.com",
        "maf.example.com.",
        "mäf.example.com",
        "maf@example.com",
        &"a".repeat(64),
        &["a"; 128].join("."),
    ] {
        assert_eq!(
            NafId::tls_psk(bad, 0x00ae),
            Err(GbaKdfError::InvalidFqdn),
            "{bad:?}"
        );
        assert_eq!(
            BTid::new(&[0; 16], bad),
            Err(GbaKdfError::InvalidFqdn),
            "{bad:?}"
        );
    }
}

#[test]
fn btid_of_set_1() {
    let b = BTid::new(&h(RAND1), "bsf.home1.net").unwrap();
    assert_eq!(b.as_str(), "I1U8vpY3qJ0hiuZNrke/NQ==@bsf.home1.net");
    assert_eq!(b.to_string(), b.as_str());
    assert_eq!(b.rand(), Some(h(RAND1)));
    assert_eq!(b.bsf_fqdn(), "bsf.home1.net");
    assert_eq!(BTid::parse(b.as_str()), Ok(b.clone()));
    // A B-TID whose local part is not a 16-byte RAND is still a B-TID.
    let other = BTid::parse("Zm9vYg==@bsf.example").unwrap();
    assert_eq!(other.rand(), None);
    for bad in [
        "",
        "@bsf.home1.net",
        "I1U8vpY3qJ0hiuZNrke/NQ==",
        "I1U8vpY3qJ0hiuZNrke/NQ==@",
        "I1U8vpY3qJ0hiuZNrke/NQ@bsf.home1.net",
        "I1U8vpY3qJ0hiuZNrke/NR==@bsf.home1.net",
        "I1U8vpY3qJ0hiuZNrke-NQ==@bsf.home1.net",
        "I1U8vpY3qJ0hiuZNrke/NQ==@a@b",
        "I1U8vpY3qJ0hiuZNrke/NQ==@bsf.home1.net ",
        "I1U8vpY3qJ0hiuZNrke/NQ==@bsf.home1.net\0",
    ] {
        assert_eq!(BTid::parse(bad), Err(GbaKdfError::InvalidBTid), "{bad:?}");
    }
    let long = format!("{}@bsf.home1.net", "QUFB".repeat(200));
    assert_eq!(BTid::parse(&long), Err(GbaKdfError::InvalidBTid));
}

#[test]
fn psk_identity_forms() {
    let b = BTid::new(&h(RAND1), "bsf.home1.net").unwrap();
    assert_eq!(GbaPrefix::Me.as_str(), PREFIX_ME);
    assert_eq!(GbaPrefix::Uicc.as_str(), PREFIX_UICC);
    let me = psk_identity(GbaPrefix::Me, &b);
    assert_eq!(
        me,
        "3GPP-bootstrapping;I1U8vpY3qJ0hiuZNrke/NQ==@bsf.home1.net"
    );
    let uicc = psk_identity(GbaPrefix::Uicc, &b);
    assert_eq!(
        uicc,
        "3GPP-bootstrapping-uicc;I1U8vpY3qJ0hiuZNrke/NQ==@bsf.home1.net"
    );
    assert_eq!(
        parse_psk_identity(&me),
        Ok((Some(GbaPrefix::Me), b.clone()))
    );
    assert_eq!(
        parse_psk_identity(&uicc),
        Ok((Some(GbaPrefix::Uicc), b.clone()))
    );
    assert_eq!(
        parse_psk_identity(&me.replacen(';', ".", 1)),
        Ok((Some(GbaPrefix::Me), b.clone()))
    );
    assert_eq!(
        parse_psk_identity(&uicc.replacen(';', ".", 1)),
        Ok((Some(GbaPrefix::Uicc), b.clone()))
    );
    assert_eq!(parse_psk_identity(b.as_str()), Ok((None, b.clone())));
    for bad in [
        "3GPP-bootstrapping-digest;I1U8vpY3qJ0hiuZNrke/NQ==@bsf.home1.net",
        "3GPP-bootstrappingI1U8vpY3qJ0hiuZNrke/NQ==@bsf.home1.net",
        "3GPP-bootstrapping;",
        "3GPP-bootstrapping;;I1U8vpY3qJ0hiuZNrke/NQ==@bsf.home1.net",
        "3GPP-bootstrapping-uicc:I1U8vpY3qJ0hiuZNrke/NQ==@bsf.home1.net",
        "3GPP-Bootstrapping;I1U8vpY3qJ0hiuZNrke/NQ==@bsf.home1.net",
        "",
    ] {
        assert_eq!(
            parse_psk_identity(bad),
            Err(GbaKdfError::InvalidPskIdentity),
            "{bad:?}"
        );
    }
}
