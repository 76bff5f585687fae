//! GBA vectors (`data/gba/`): Milenage (TS 35.208 test sets 1-20) through
//! `m2msec::gba::milenage` and `usim`, and the TS 33.220 KDF, NAF_Id, B-TID and psk_identity
//! vectors of `scripts/gba_kdf.py` through `m2msec::gba::kdf`.

use serde::Deserialize;

use super::common::{load, Hex};
use super::{check_eq, Tally};
use m2msec::gba::kdf::{
    kdf, ks_ext_naf, ks_int_naf, ks_naf, parse_psk_identity, psk_identity, BTid, GbaPrefix, NafId,
};
use m2msec::gba::milenage::{opc, Milenage};
use m2msec::gba::usim::{generate_vector, resync, Usim, UsimFailure};
use m2msec::gba::Ks;

/// `data/gba/milenage.json`.
#[derive(Deserialize)]
struct MilenageFile {
    sets: Vec<MilenageSet>,
}

/// One TS 35.208 test set.
#[derive(Deserialize)]
struct MilenageSet {
    name: String,
    k: Hex,
    rand: Hex,
    sqn: Hex,
    amf: Hex,
    op: Hex,
    opc: Hex,
    f1: Hex,
    f1_star: Hex,
    f2: Hex,
    f3: Hex,
    f4: Hex,
    f5: Hex,
    f5_star: Hex,
}

/// `data/gba/kdf.json`.
#[derive(Deserialize)]
struct KdfFile {
    kdf: Vec<GenericKdf>,
    naf_keys: Vec<NafKeyCase>,
    btid: Vec<BTidCase>,
    psk_identity: Vec<PskIdentityCase>,
}

#[derive(Deserialize)]
struct GenericKdf {
    name: String,
    key: Hex,
    fc: u8,
    params: Vec<Hex>,
    output: Hex,
}

#[derive(Deserialize)]
struct NafKeyCase {
    name: String,
    ks: Hex,
    rand: Hex,
    impi: String,
    naf_fqdn: String,
    ua_protocol_id: Hex,
    naf_id: Hex,
    ks_naf: Hex,
    ks_int_naf: Hex,
}

#[derive(Deserialize)]
struct BTidCase {
    rand: Hex,
    bsf_fqdn: String,
    btid: String,
}

#[derive(Deserialize)]
struct PskIdentityCase {
    input: String,
    prefix: Option<String>,
    btid: Option<String>,
}

fn arr<const N: usize>(what: &str, h: &Hex) -> Result<[u8; N], String> {
    h.0.as_slice()
        .try_into()
        .map_err(|_| format!("{what}: {} bytes, want {N}", h.0.len()))
}

fn milenage_set(s: &MilenageSet) -> Result<(), String> {
    let k = arr::<16>("K", &s.k)?;
    let rand = arr::<16>("RAND", &s.rand)?;
    let sqn = arr::<6>("SQN", &s.sqn)?;
    let amf = arr::<2>("AMF", &s.amf)?;
    let op = arr::<16>("OP", &s.op)?;
    let opc_v = arr::<16>("OPc", &s.opc)?;
    check_eq("OPc", &opc(&k, &op), &opc_v)?;
    for (how, m) in [
        ("OP", Milenage::new_with_op(&k, &op)),
        ("OPc", Milenage::new_with_opc(&k, &opc_v)),
    ] {
        let (a, b) = m.f1_both(&rand, &sqn, &amf);
        check_eq(&format!("f1 ({how})"), &a, &s.f1.0)?;
        check_eq(&format!("f1* ({how})"), &b, &s.f1_star.0)?;
        check_eq(
            &format!("f1 alone ({how})"),
            &m.f1(&rand, &sqn, &amf),
            &s.f1.0,
        )?;
        check_eq(
            &format!("f1* alone ({how})"),
            &m.f1_star(&rand, &sqn, &amf),
            &s.f1_star.0,
        )?;
        let v = m.f2345(&rand);
        check_eq(&format!("f2 ({how})"), &v.res, &s.f2.0)?;
        check_eq(&format!("f3 ({how})"), &v.ck, &s.f3.0)?;
        check_eq(&format!("f4 ({how})"), &v.ik, &s.f4.0)?;
        check_eq(&format!("f5 ({how})"), &v.ak, &s.f5.0)?;
        check_eq(&format!("f5* ({how})"), &v.ak_star, &s.f5_star.0)?;
        check_eq(&format!("f2 alone ({how})"), &m.f2(&rand), &s.f2.0)?;
        check_eq(&format!("f3 alone ({how})"), &m.f3(&rand), &s.f3.0)?;
        check_eq(&format!("f4 alone ({how})"), &m.f4(&rand), &s.f4.0)?;
        check_eq(&format!("f5 alone ({how})"), &m.f5(&rand), &s.f5.0)?;
        check_eq(
            &format!("f5* alone ({how})"),
            &m.f5_star(&rand),
            &s.f5_star.0,
        )?;
    }
    // The home network's vector and a fresh USIM agree with the set.
    let av = generate_vector(&k, &opc_v, &sqn, &amf, &rand);
    let mut autn = [0u8; 16];
    for i in 0..6 {
        autn[i] = sqn[i] ^ s.f5.0[i];
    }
    autn[6..8].copy_from_slice(&amf);
    autn[8..].copy_from_slice(&s.f1.0);
    check_eq("AUTN", &av.autn, &autn)?;
    check_eq("XRES", &av.xres, &s.f2.0)?;
    let mut usim = Usim::with_profile(
        &k,
        &opc_v,
        m2msec::gba::usim::SqnProfile {
            ind_bits: 5,
            delta: None,
        },
        m2msec::gba::usim::AmfPolicy::Any,
    );
    let r = usim
        .authenticate(&rand, &autn)
        .map_err(|e| format!("USIM refused the set's AUTN: {e}"))?;
    check_eq("USIM RES", &r.res, &s.f2.0)?;
    check_eq("USIM CK", &r.ck, &s.f3.0)?;
    check_eq("USIM IK", &r.ik, &s.f4.0)?;
    // Replaying it gives an AUTS (f1*, f5* with AMF 0) that the home network resolves to SQN.
    match usim.authenticate(&rand, &autn) {
        Err(UsimFailure::SyncFailure { auts }) => {
            let got = resync(&k, &opc_v, &rand, &auts).map_err(|e| format!("resync: {e}"))?;
            check_eq("SQN_MS from AUTS", &got, &sqn)?;
            let mac_s = Milenage::new_with_opc(&k, &opc_v).f1_star(&rand, &sqn, &[0, 0]);
            check_eq("AUTS MAC-S", &auts[6..], &mac_s)?;
            let mut conc = [0u8; 6];
            for i in 0..6 {
                conc[i] = sqn[i] ^ s.f5_star.0[i];
            }
            check_eq("AUTS SQN_MS xor AK*", &auts[..6], &conc)
        }
        other => Err(format!("replay: {other:?}")),
    }
}

/// Every TS 35.208 set: OPc, f1, f1*, f2, f3, f4, f5, f5* (from OP and from OPc), AUTN, the
/// USIM's answer and a resync on replay.
pub(crate) fn milenage_vectors() -> Tally {
    let mut t = Tally::new("gba-milenage");
    let file: MilenageFile = load("gba/milenage.json");
    for s in &file.sets {
        t.record(&s.name, milenage_set(s));
    }
    t
}

fn naf_case(c: &NafKeyCase) -> Result<(), String> {
    let ks = Ks(arr::<32>("Ks", &c.ks)?);
    let rand = arr::<16>("RAND", &c.rand)?;
    let ua = arr::<5>("Ua id", &c.ua_protocol_id)?;
    let id = NafId::new(&c.naf_fqdn, ua).map_err(|e| format!("NafId: {e}"))?;
    check_eq("NAF_Id", &id.to_bytes(), &c.naf_id.0)?;
    if ua[..3] == [0x01, 0x00, 0x01] {
        let tls = NafId::tls_psk(&c.naf_fqdn, u16::from_be_bytes([ua[3], ua[4]]))
            .map_err(|e| format!("NafId::tls_psk: {e}"))?;
        check_eq("NAF_Id (tls_psk)", &tls.to_bytes(), &c.naf_id.0)?;
    }
    let me = ks_naf(&ks, &rand, &c.impi, &id).map_err(|e| format!("ks_naf: {e}"))?;
    check_eq("Ks_NAF", me.expose(), &c.ks_naf.0)?;
    let ext = ks_ext_naf(&ks, &rand, &c.impi, &id).map_err(|e| format!("ks_ext_naf: {e}"))?;
    check_eq("Ks_ext_NAF", ext.expose(), &c.ks_naf.0)?;
    let int = ks_int_naf(&ks, &rand, &c.impi, &id).map_err(|e| format!("ks_int_naf: {e}"))?;
    check_eq("Ks_int_NAF", int.expose(), &c.ks_int_naf.0)
}

fn prefix_name(p: Option<GbaPrefix>) -> Option<&'static str> {
    p.map(|p| match p {
        GbaPrefix::Me => "me",
        GbaPrefix::Uicc => "uicc",
    })
}

fn psk_case(c: &PskIdentityCase) -> Result<(), String> {
    let got = parse_psk_identity(&c.input);
    match (&c.btid, got) {
        (None, Err(_)) => Ok(()),
        (None, Ok(v)) => Err(format!("accepted as {v:?}")),
        (Some(_), Err(e)) => Err(format!("refused: {e}")),
        (Some(want), Ok((p, b))) => {
            if b.as_str() != want || prefix_name(p) != c.prefix.as_deref() {
                return Err(format!("got {p:?} {b}"));
            }
            // The bare B-TID parses on its own, and the client form re-parses to the same.
            let bare = BTid::parse(want).map_err(|e| format!("BTid::parse: {e}"))?;
            for pre in [GbaPrefix::Me, GbaPrefix::Uicc] {
                let id = psk_identity(pre, &bare);
                match parse_psk_identity(&id) {
                    Ok((Some(q), b2)) if q == pre && b2 == bare => {}
                    other => return Err(format!("{id}: {other:?}")),
                }
            }
            Ok(())
        }
    }
}

/// The TS 33.220 KDF, NAF keys, B-TIDs and psk_identity forms.
pub(crate) fn kdf_vectors() -> Tally {
    let mut t = Tally::new("gba-kdf");
    let file: KdfFile = load("gba/kdf.json");
    for g in &file.kdf {
        let params: Vec<&[u8]> = g.params.iter().map(|p| p.0.as_slice()).collect();
        let r = kdf(&g.key.0, g.fc, &params)
            .map_err(|e| e.to_string())
            .and_then(|k| check_eq("KDF", k.expose(), &g.output.0));
        t.record(&format!("kdf: {}", g.name), r);
    }
    for c in &file.naf_keys {
        t.record(&format!("naf key: {}", c.name), naf_case(c));
    }
    for c in &file.btid {
        let r = arr::<16>("RAND", &c.rand).and_then(|rand| {
            let b = BTid::new(&rand, &c.bsf_fqdn).map_err(|e| format!("BTid::new: {e}"))?;
            if b.as_str() != c.btid {
                return Err(format!("got {b}, want {}", c.btid));
            }
            let p = BTid::parse(&c.btid).map_err(|e| format!("BTid::parse: {e}"))?;
            if p != b || p.rand() != Some(rand) || p.bsf_fqdn() != c.bsf_fqdn {
                return Err(format!("parse: {p:?}"));
            }
            Ok(())
        });
        t.record(&format!("b-tid: {}", c.btid), r);
    }
    for c in &file.psk_identity {
        t.record(&format!("psk_identity: {:?}", c.input), psk_case(c));
    }
    t
}
