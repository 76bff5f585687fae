//! The oneM2M certificate verifier (`m2msec::cert::OneM2mVerifier`, draft 8.1.1.2.2 / D7)
//! against certificates made by OpenSSL (`tests/data/certs/make.sh`) and by our own builder:
//! every acceptance path, one refusal per rule (exact `CertError` and its alert), and property
//! tests that garbage and bit flips never panic and never pass.
#![cfg(feature = "ecdhe")]

use m2msec::cert::build::{KU_CRL_SIGN, KU_DIGITAL_SIGNATURE, KU_KEY_AGREEMENT};
use m2msec::cert::{
    root_of_trust_of, CertBuilder, CertDecision, CertError, CertVerifier, CertifiedKey, Credential,
    OneM2mVerifier, RootOfTrust, RotHash, SigningKey, SubjectAltName,
};
use m2msec::enums::AlertDescription;
use m2msec::UnixTime;
use proptest::prelude::*;

const T2025: UnixTime = UnixTime(1_735_689_600);
const T2026: UnixTime = UnixTime(1_767_225_600);
const T2030: UnixTime = UnixTime(1_893_456_000);
const T2040: UnixTime = UnixTime(2_208_988_800);
const T2045: UnixTime = UnixTime(2_366_841_600);
/// 2027-01-15: inside every fixture's validity.
const NOW: UnixTime = UnixTime(1_800_000_000);

const CSE: &str = "cse1.example.com";
const AE: &str = "//sp.example.com/CSE1/Cae1";

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/certs/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32]).unwrap()
}

fn x509(chain: &[&Vec<u8>]) -> Credential {
    Credential::X509(chain.iter().map(|c| (*c).clone()).collect())
}

fn rot_of(cert_or_spki: &Credential) -> RootOfTrust {
    root_of_trust_of(cert_or_spki).unwrap()
}

fn accept(
    v: &OneM2mVerifier,
    cred: &Credential,
    now: UnixTime,
) -> m2msec::cert::PeerCertificateInfo {
    match v.verify(cred, now) {
        CertDecision::Accept(info) => info,
        other => panic!("expected Accept, got {other:?}"),
    }
}

/// Asserts the exact refusal and the alert the handshake will send for it.
fn reject(
    v: &OneM2mVerifier,
    cred: &Credential,
    now: UnixTime,
    want: CertError,
    alert: AlertDescription,
) {
    assert_eq!(v.verify(cred, now), CertDecision::Reject(want));
    assert_eq!(want.alert(), alert, "alert of {want:?}");
}

/// Flips the last byte of a certificate: inside the ECDSA signature's s integer.
fn break_signature(der: &[u8]) -> Vec<u8> {
    let mut d = der.to_vec();
    let n = d.len();
    d[n - 1] ^= 0x01;
    d
}

// ---------------------------------------------------------------------------------------------
// A three-level PKI from our builder: root (key 1) -> intermediate (key 2) -> leaf (key 3).

fn root_b() -> CertBuilder {
    CertBuilder::new(&[1], T2025, T2045)
        .subject_cn("Test Root")
        .ca(None)
        .ni_san(false)
}

fn int_b() -> CertBuilder {
    CertBuilder::new(&[2], T2025, T2040)
        .subject_cn("Test Intermediate")
        .ca(Some(0))
        .name_constraints(
            vec![
                SubjectAltName::Dns("example.com".into()),
                SubjectAltName::Uri(".example.com".into()),
            ],
            vec![SubjectAltName::Dns("bad.example.com".into())],
        )
}

fn leaf_b() -> CertBuilder {
    CertBuilder::new(&[3], T2026, T2030)
        .subject_cn(CSE)
        .san(SubjectAltName::Dns(CSE.into()))
        .san(SubjectAltName::Uri(AE.into()))
}

fn ck(key_n: u8, chain: Vec<Vec<u8>>) -> CertifiedKey {
    CertifiedKey::new(key(key_n), Credential::X509(chain)).unwrap()
}

/// [leaf, intermediate, root] and the root's Root of Trust.
fn pki(root: CertBuilder, int: CertBuilder, leaf: CertBuilder) -> (Vec<Vec<u8>>, RootOfTrust) {
    let root = root.self_signed(&key(1)).unwrap();
    let int = int
        .signed_by(&key(2).verifying_key(), &ck(1, vec![root.clone()]))
        .unwrap();
    let leaf = leaf
        .signed_by(
            &key(3).verifying_key(),
            &ck(2, vec![int.clone(), root.clone()]),
        )
        .unwrap();
    let rot = RootOfTrust::of_spki(&key(1).spki_der(), RotHash::Sha256);
    (vec![leaf, int, root], rot)
}

fn default_pki() -> (Vec<Vec<u8>>, RootOfTrust) {
    pki(root_b(), int_b(), leaf_b())
}

fn cred(chain: &[Vec<u8>]) -> Credential {
    Credential::X509(chain.to_vec())
}

// ---------------------------------------------------------------------------------------------
// OpenSSL-made fixtures

#[test]
fn openssl_chain_with_root() {
    let (leaf, int, root) = (fixture("leaf.der"), fixture("int.der"), fixture("root.der"));
    let rot = rot_of(&x509(&[&root]));
    let c = x509(&[&leaf, &int, &root]);
    let info = accept(&OneM2mVerifier::new(CSE, rot), &c, NOW);
    assert!(!info.raw_public_key);
    assert_eq!(info.matched_name.as_deref(), Some(CSE));
    assert_eq!(info.subject.as_deref(), Some("CN=cse1.example.com"));
    assert_eq!(
        info.subject_alt_names,
        vec![
            SubjectAltName::Dns(CSE.into()),
            SubjectAltName::Uri(AE.into())
        ]
    );
    assert_eq!(info.not_before, Some(T2026));
    assert_eq!(info.not_after, Some(T2030));
    assert_eq!(info.chain_len, 3);
    let leaf_spki = Credential::X509(vec![leaf.clone()]).leaf_spki().unwrap();
    assert_eq!(
        info.spki_sha256,
        RootOfTrust::of_spki(&leaf_spki, RotHash::Sha256).digest()
    );
    // The AE-ID URI, a DNS name in another case, the CN with SAN-only off.
    for name in [AE, "CSE1.Example.COM"] {
        let info = accept(&OneM2mVerifier::new(name, rot).san_only(true), &c, NOW);
        assert_eq!(
            info.matched_name.as_deref(),
            Some(if name == AE { AE } else { CSE })
        );
    }
    // A URI is compared exactly.
    reject(
        &OneM2mVerifier::new("//SP.example.com/CSE1/Cae1", rot),
        &c,
        NOW,
        CertError::NameMismatch,
        AlertDescription::BadCertificate,
    );
}

#[test]
fn openssl_chain_root_omitted_and_rot_anywhere() {
    let (leaf, int, root) = (fixture("leaf.der"), fixture("int.der"), fixture("root.der"));
    // The Root of Trust is the intermediate's key: the chain may stop there, root sent or not.
    let rot = rot_of(&x509(&[&int]));
    let v = OneM2mVerifier::new(CSE, rot);
    assert_eq!(accept(&v, &x509(&[&leaf, &int]), NOW).chain_len, 2);
    assert_eq!(accept(&v, &x509(&[&leaf, &int, &root]), NOW).chain_len, 2);
    // The root's key with the root omitted: nothing to reach.
    let v = OneM2mVerifier::new(CSE, rot_of(&x509(&[&root])));
    reject(
        &v,
        &x509(&[&leaf, &int]),
        NOW,
        CertError::UntrustedRoot,
        AlertDescription::UnknownCa,
    );
    // The leaf's own key as Root of Trust (pinning): one certificate used.
    let v = OneM2mVerifier::new(CSE, rot_of(&x509(&[&leaf])));
    assert_eq!(accept(&v, &x509(&[&leaf]), NOW).chain_len, 1);
}

#[test]
fn openssl_chain_refusals() {
    let (leaf, int, root) = (fixture("leaf.der"), fixture("int.der"), fixture("root.der"));
    let v = OneM2mVerifier::new(CSE, rot_of(&x509(&[&root])));
    let expired = UnixTime(T2030.0 + 1);
    reject(
        &v,
        &x509(&[&leaf, &int, &root]),
        expired,
        CertError::Expired,
        AlertDescription::CertificateExpired,
    );
    reject(
        &v,
        &x509(&[&leaf, &int, &root]),
        T2025,
        CertError::NotYetValid,
        AlertDescription::CertificateExpired,
    );
    reject(
        &v,
        &x509(&[&break_signature(&leaf), &int, &root]),
        NOW,
        CertError::BadSignature,
        AlertDescription::BadCertificate,
    );
    reject(
        &v,
        &x509(&[&leaf, &break_signature(&int), &root]),
        NOW,
        CertError::BadSignature,
        AlertDescription::BadCertificate,
    );
    reject(
        &v,
        &x509(&[&leaf, &root, &int]),
        NOW,
        CertError::BadChainOrder,
        AlertDescription::BadCertificate,
    );
    let crit = fixture("leaf-crit.der");
    reject(
        &v,
        &x509(&[&crit, &int, &root]),
        NOW,
        CertError::UnhandledCriticalExtension,
        AlertDescription::UnsupportedCertificate,
    );
    reject(
        &OneM2mVerifier::new("cse2.example.com", rot_of(&x509(&[&root]))),
        &x509(&[&leaf, &int, &root]),
        NOW,
        CertError::NameMismatch,
        AlertDescription::BadCertificate,
    );
}

#[test]
fn openssl_self_signed_and_raw_key() {
    let selfc = fixture("self.der");
    let ni = String::from_utf8(fixture("self.ni.txt")).unwrap();
    let ni = ni.trim();
    let rot: RootOfTrust = ni.parse().unwrap();
    assert_eq!(rot, rot_of(&x509(&[&selfc])));
    let info = accept(&OneM2mVerifier::new(ni, rot), &x509(&[&selfc]), NOW);
    assert_eq!(info.matched_name.as_deref(), Some(ni));
    assert_eq!(info.chain_len, 1);
    assert_eq!(info.subject.as_deref(), Some("CN=device1"));
    // The Certificate Name in hex denotes the same hash: equal to the Root of Trust.
    let hex: String = rot.digest().iter().map(|b| format!("{b:02x}")).collect();
    accept(
        &OneM2mVerifier::new(hex, rot).san_only(true),
        &x509(&[&selfc]),
        NOW,
    );
    // Its broken signature.
    reject(
        &OneM2mVerifier::new(ni, rot),
        &x509(&[&break_signature(&selfc)]),
        NOW,
        CertError::BadSignature,
        AlertDescription::BadCertificate,
    );

    let rpk = Credential::RawPublicKey(fixture("rpk.der"));
    assert_eq!(rot_of(&rpk), rot);
    let info = accept(&OneM2mVerifier::new("", rot), &rpk, NOW);
    assert!(info.raw_public_key);
    assert_eq!(info.chain_len, 0);
    assert_eq!(info.spki_sha256, rot.digest());
    // The OpenSSL PKCS#8 key belongs to that raw key.
    let sk = SigningKey::from_pkcs8_der(&fixture("self.key.der")).unwrap();
    assert_eq!(sk.spki_der(), fixture("rpk.der"));
}

// ---------------------------------------------------------------------------------------------
// Builder-made: positive cases

#[test]
fn builder_chain_accepts() {
    let (chain, rot) = default_pki();
    let v = OneM2mVerifier::new(CSE, rot);
    let info = accept(&v, &cred(&chain), NOW);
    assert_eq!(info.chain_len, 3);
    accept(
        &OneM2mVerifier::new(AE, rot).san_only(true),
        &cred(&chain),
        NOW,
    );
    // Root omitted, intermediate's key as the Root of Trust.
    let int_rot = RootOfTrust::of_spki(&key(2).spki_der(), RotHash::Sha256);
    assert_eq!(
        accept(&OneM2mVerifier::new(CSE, int_rot), &cred(&chain[..2]), NOW).chain_len,
        2
    );
}

/// OpenSSL agrees that a chain from our builder is valid (checked when `openssl` is installed).
/// The leaf's URI has a scheme here: OpenSSL 3.0 refuses the scheme-relative AE-ID form under
/// a URI nameConstraint (see `data/certs/make.sh`).
#[test]
fn openssl_accepts_builder_chain() {
    let leaf = CertBuilder::new(&[3], T2026, T2030)
        .subject_cn(CSE)
        .san(SubjectAltName::Dns(CSE.into()))
        .san(SubjectAltName::Uri(
            "coaps://sp.example.com/CSE1/Cae1".into(),
        ));
    let (chain, rot) = pki(root_b(), int_b(), leaf);
    accept(&OneM2mVerifier::new(CSE, rot), &cred(&chain), NOW);
    openssl_verify(&chain);
}

/// Runs `openssl verify` over a chain from our builder, if the `openssl` command exists.
fn openssl_verify(chain: &[Vec<u8>]) {
    let dir = std::env::temp_dir().join(format!("m2msec-cert-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let names = ["leaf", "int", "root"];
    for (n, der) in names.iter().zip(chain) {
        let pem = m2msec::cert::pem_encode("CERTIFICATE", der);
        std::fs::write(dir.join(format!("{n}.pem")), pem).unwrap();
    }
    let out = std::process::Command::new("openssl")
        .current_dir(&dir)
        .args([
            "verify",
            "-attime",
            "1800000000",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "int.pem",
            "leaf.pem",
        ])
        .output();
    let _ = std::fs::remove_dir_all(&dir);
    if let Ok(out) = out {
        assert!(
            out.status.success(),
            "openssl verify: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn builder_self_signed_and_truncated_roots() {
    let k = key(7);
    let spki = k.spki_der();
    let full = RootOfTrust::of_spki(&spki, RotHash::Sha256);
    let t128 = RootOfTrust::of_spki(&spki, RotHash::Sha256_128);
    let t120 = RootOfTrust::of_spki(&spki, RotHash::Sha256_120);
    let selfc = CertBuilder::new(&[9], T2026, T2030)
        .subject_cn("device7")
        .san(SubjectAltName::Uri(t128.to_string()))
        .self_signed(&k)
        .unwrap();
    let c = x509(&[&selfc]);
    // The builder added the sha-256 ni URI of the key; the sha-256-128 one was asked for.
    accept(&OneM2mVerifier::new(full.to_string(), full), &c, NOW);
    accept(
        &OneM2mVerifier::new(t128.to_string(), t128).san_only(true),
        &c,
        NOW,
    );
    // No name field denotes the sha-256-120 hash.
    reject(
        &OneM2mVerifier::new(t120.to_string(), t120),
        &c,
        NOW,
        CertError::NameMismatch,
        AlertDescription::BadCertificate,
    );
    // Raw keys with truncated Roots of Trust.
    let rpk = Credential::RawPublicKey(spki.clone());
    for rot in [full, t128, t120] {
        assert!(accept(&OneM2mVerifier::new("", rot), &rpk, NOW).raw_public_key);
    }
    // A chain whose root is configured by a sha-256-120 ni text.
    let (chain, rot) = default_pki();
    let root_spki = key(1).spki_der();
    let r120: RootOfTrust = RootOfTrust::of_spki(&root_spki, RotHash::Sha256_120)
        .to_string()
        .parse()
        .unwrap();
    assert_ne!(r120, rot);
    assert_eq!(
        accept(&OneM2mVerifier::new(CSE, r120), &cred(&chain), NOW).chain_len,
        3
    );
}

// ---------------------------------------------------------------------------------------------
// Builder-made: one refusal per rule

#[test]
fn self_signed_rules() {
    let k = key(7);
    let rot = RootOfTrust::of_spki(&k.spki_der(), RotHash::Sha256);
    let selfc = CertBuilder::new(&[9], T2026, T2030)
        .subject_cn("device7")
        .self_signed(&k)
        .unwrap();
    let c = x509(&[&selfc]);
    // Certificate Name not identical to the Root of Trust.
    reject(
        &OneM2mVerifier::new("device7", rot),
        &c,
        NOW,
        CertError::NameMismatch,
        AlertDescription::BadCertificate,
    );
    // Another entity's Root of Trust (name and RoT consistent, key not).
    let other = RootOfTrust::of_spki(&key(8).spki_der(), RotHash::Sha256);
    reject(
        &OneM2mVerifier::new(other.to_string(), other),
        &c,
        NOW,
        CertError::UntrustedRoot,
        AlertDescription::UnknownCa,
    );
    // The key hash in no name field.
    let bare = CertBuilder::new(&[9], T2026, T2030)
        .subject_cn("device7")
        .ni_san(false)
        .self_signed(&k)
        .unwrap();
    reject(
        &OneM2mVerifier::new(rot.to_string(), rot),
        &x509(&[&bare]),
        NOW,
        CertError::NameMismatch,
        AlertDescription::BadCertificate,
    );
    // The key hash only in the Subject: accepted unless SAN-only.
    let in_cn = CertBuilder::new(&[9], T2026, T2030)
        .subject_cn(&rot.to_string())
        .ni_san(false)
        .self_signed(&k)
        .unwrap();
    accept(
        &OneM2mVerifier::new(rot.to_string(), rot),
        &x509(&[&in_cn]),
        NOW,
    );
    reject(
        &OneM2mVerifier::new(rot.to_string(), rot).san_only(true),
        &x509(&[&in_cn]),
        NOW,
        CertError::NameMismatch,
        AlertDescription::BadCertificate,
    );
    // Validity.
    let v = OneM2mVerifier::new(rot.to_string(), rot);
    reject(
        &v,
        &c,
        UnixTime(T2030.0 + 1),
        CertError::Expired,
        AlertDescription::CertificateExpired,
    );
    reject(
        &v,
        &c,
        UnixTime(T2026.0 - 1),
        CertError::NotYetValid,
        AlertDescription::CertificateExpired,
    );
    // keyUsage without digitalSignature.
    let ku = CertBuilder::new(&[9], T2026, T2030)
        .key_usage(KU_KEY_AGREEMENT)
        .self_signed(&k)
        .unwrap();
    reject(
        &v,
        &x509(&[&ku]),
        NOW,
        CertError::KeyUsage,
        AlertDescription::BadCertificate,
    );
}

#[test]
fn wrong_name_and_name_in_unrelated_fields() {
    let (chain, rot) = default_pki();
    reject(
        &OneM2mVerifier::new("cse2.example.com", rot),
        &cred(&chain),
        NOW,
        CertError::NameMismatch,
        AlertDescription::BadCertificate,
    );
    // The issuer's name is not a name field of the entity.
    reject(
        &OneM2mVerifier::new("Test Intermediate", rot),
        &cred(&chain),
        NOW,
        CertError::NameMismatch,
        AlertDescription::BadCertificate,
    );

    // The name only inside another extension's value (a UTF8String in a private extension).
    let hidden = "hidden.example.com";
    let mut ext = vec![0x0c, hidden.len() as u8];
    ext.extend_from_slice(hidden.as_bytes());
    let (chain, rot) = pki(
        root_b(),
        int_b(),
        leaf_b().extension("1.3.6.1.4.1.55555.2", false, &ext),
    );
    reject(
        &OneM2mVerifier::new(hidden, rot),
        &cred(&chain),
        NOW,
        CertError::NameMismatch,
        AlertDescription::BadCertificate,
    );
    assert!(chain[0]
        .windows(hidden.len())
        .any(|w| w == hidden.as_bytes()));

    // The name only in the Subject: accepted by default, refused with SAN-only.
    let (chain, rot) = pki(
        root_b(),
        int_b(),
        CertBuilder::new(&[3], T2026, T2030)
            .subject_cn("cn-only.example.com")
            .san(SubjectAltName::Dns(CSE.into())),
    );
    assert_eq!(
        accept(
            &OneM2mVerifier::new("cn-only.example.com", rot),
            &cred(&chain),
            NOW
        )
        .matched_name
        .as_deref(),
        Some("cn-only.example.com")
    );
    reject(
        &OneM2mVerifier::new("cn-only.example.com", rot).san_only(true),
        &cred(&chain),
        NOW,
        CertError::NameMismatch,
        AlertDescription::BadCertificate,
    );

    // Wildcards never match, either way round.
    let (chain, rot) = pki(
        root_b(),
        int_b(),
        leaf_b().san(SubjectAltName::Dns("*.example.com".into())),
    );
    for name in ["a.example.com", "*.example.com"] {
        reject(
            &OneM2mVerifier::new(name, rot),
            &cred(&chain),
            NOW,
            CertError::NameMismatch,
            AlertDescription::BadCertificate,
        );
    }
}

#[test]
fn wrong_root_of_trust() {
    let (chain, _) = default_pki();
    let other = RootOfTrust::of_spki(&key(8).spki_der(), RotHash::Sha256);
    reject(
        &OneM2mVerifier::new(CSE, other),
        &cred(&chain),
        NOW,
        CertError::UntrustedRoot,
        AlertDescription::UnknownCa,
    );
    // Truncated to the same length but another key.
    let other = RootOfTrust::of_spki(&key(8).spki_der(), RotHash::Sha256_128);
    reject(
        &OneM2mVerifier::new(CSE, other),
        &cred(&chain),
        NOW,
        CertError::UntrustedRoot,
        AlertDescription::UnknownCa,
    );
}

#[test]
fn validity_of_leaf_and_intermediate() {
    // Leaf.
    let (chain, rot) = default_pki();
    let v = OneM2mVerifier::new(CSE, rot);
    reject(
        &v,
        &cred(&chain),
        UnixTime(T2030.0 + 1),
        CertError::Expired,
        AlertDescription::CertificateExpired,
    );
    reject(
        &v,
        &cred(&chain),
        UnixTime(T2026.0 - 1),
        CertError::NotYetValid,
        AlertDescription::CertificateExpired,
    );
    // The last second of notAfter and the first of notBefore are inside.
    accept(&v, &cred(&chain), T2030);
    accept(&v, &cred(&chain), T2026);
    // Intermediate expired / not yet valid while the leaf is valid.
    let (chain, rot) = pki(
        root_b(),
        int_b_validity(T2025, UnixTime(NOW.0 - 1)),
        leaf_b(),
    );
    reject(
        &OneM2mVerifier::new(CSE, rot),
        &cred(&chain),
        NOW,
        CertError::Expired,
        AlertDescription::CertificateExpired,
    );
    let (chain, rot) = pki(
        root_b(),
        int_b_validity(UnixTime(NOW.0 + 1), T2040),
        leaf_b(),
    );
    reject(
        &OneM2mVerifier::new(CSE, rot),
        &cred(&chain),
        NOW,
        CertError::NotYetValid,
        AlertDescription::CertificateExpired,
    );
    // An expired root is refused too (every certificate used).
    let root = CertBuilder::new(&[1], T2025, UnixTime(NOW.0 - 1))
        .subject_cn("Test Root")
        .ca(None)
        .ni_san(false);
    let (chain, rot) = pki(root, int_b(), leaf_b());
    reject(
        &OneM2mVerifier::new(CSE, rot),
        &cred(&chain),
        NOW,
        CertError::Expired,
        AlertDescription::CertificateExpired,
    );
}

fn int_b_validity(nb: UnixTime, na: UnixTime) -> CertBuilder {
    CertBuilder::new(&[2], nb, na)
        .subject_cn("Test Intermediate")
        .ca(Some(0))
}

#[test]
fn broken_signature_anywhere() {
    let (chain, rot) = default_pki();
    let v = OneM2mVerifier::new(CSE, rot);
    for i in 0..2 {
        let mut c = chain.clone();
        c[i] = break_signature(&c[i]);
        reject(
            &v,
            &cred(&c),
            NOW,
            CertError::BadSignature,
            AlertDescription::BadCertificate,
        );
    }
    // A leaf signed by a key other than the intermediate's, under the intermediate's name.
    let impostor_int = int_b()
        .signed_by(&key(8).verifying_key(), &ck(1, vec![chain[2].clone()]))
        .unwrap();
    let leaf = leaf_b()
        .signed_by(&key(3).verifying_key(), &ck(8, vec![impostor_int]))
        .unwrap();
    reject(
        &v,
        &cred(&[leaf, chain[1].clone(), chain[2].clone()]),
        NOW,
        CertError::BadSignature,
        AlertDescription::BadCertificate,
    );
}

#[test]
fn issuers_must_be_cas() {
    // Intermediate with basicConstraints cA=FALSE, and with none at all.
    for int in [
        CertBuilder::new(&[2], T2025, T2040)
            .subject_cn("Test Intermediate")
            .end_entity(),
        CertBuilder::new(&[2], T2025, T2040).subject_cn("Test Intermediate"),
    ] {
        let (chain, rot) = pki(root_b(), int, leaf_b());
        reject(
            &OneM2mVerifier::new(CSE, rot),
            &cred(&chain),
            NOW,
            CertError::NotCa,
            AlertDescription::UnknownCa,
        );
    }
    // A CA whose keyUsage lacks keyCertSign.
    let (chain, rot) = pki(
        root_b(),
        int_b().key_usage(KU_DIGITAL_SIGNATURE | KU_CRL_SIGN),
        leaf_b(),
    );
    reject(
        &OneM2mVerifier::new(CSE, rot),
        &cred(&chain),
        NOW,
        CertError::KeyUsage,
        AlertDescription::BadCertificate,
    );
}

#[test]
fn path_len_constraint() {
    // root (pathLen 0) -> intermediate -> leaf: one intermediate below the root.
    let root = CertBuilder::new(&[1], T2025, T2045)
        .subject_cn("Test Root")
        .ca(Some(0))
        .ni_san(false);
    let (chain, rot) = pki(root, int_b(), leaf_b());
    reject(
        &OneM2mVerifier::new(CSE, rot),
        &cred(&chain),
        NOW,
        CertError::PathLenExceeded,
        AlertDescription::UnknownCa,
    );
    // pathLen 1 allows it; the intermediate's own pathLen 0 allows the leaf below it.
    let root = CertBuilder::new(&[1], T2025, T2045)
        .subject_cn("Test Root")
        .ca(Some(1))
        .ni_san(false);
    let (chain, rot) = pki(root, int_b(), leaf_b());
    accept(&OneM2mVerifier::new(CSE, rot), &cred(&chain), NOW);
    // Two intermediates under one with pathLen 0.
    let root = root_b().self_signed(&key(1)).unwrap();
    let int1 = int_b_validity(T2025, T2040)
        .ca(Some(0))
        .signed_by(&key(2).verifying_key(), &ck(1, vec![root.clone()]))
        .unwrap();
    let int2 = CertBuilder::new(&[4], T2025, T2040)
        .subject_cn("Test Intermediate 2")
        .ca(None)
        .signed_by(&key(4).verifying_key(), &ck(2, vec![int1.clone()]))
        .unwrap();
    let leaf = leaf_b()
        .signed_by(&key(3).verifying_key(), &ck(4, vec![int2.clone()]))
        .unwrap();
    let rot = RootOfTrust::of_spki(&key(1).spki_der(), RotHash::Sha256);
    reject(
        &OneM2mVerifier::new(CSE, rot),
        &cred(&[leaf.clone(), int2.clone(), int1.clone(), root.clone()]),
        NOW,
        CertError::PathLenExceeded,
        AlertDescription::UnknownCa,
    );
    // Stopping at int2 (its key as Root of Trust) never looks at int1's pathLen.
    let rot2 = RootOfTrust::of_spki(&key(4).spki_der(), RotHash::Sha256);
    accept(
        &OneM2mVerifier::new(CSE, rot2),
        &cred(&[leaf, int2, int1, root]),
        NOW,
    );
}

#[test]
fn name_constraints() {
    let leaf_with = |dns: &str, uri: &str| {
        CertBuilder::new(&[3], T2026, T2030)
            .subject_cn("x")
            .san(SubjectAltName::Dns(dns.into()))
            .san(SubjectAltName::Uri(uri.into()))
    };
    // DNS outside the permitted subtree.
    let (chain, rot) = pki(root_b(), int_b(), leaf_with("cse1.example.org", AE));
    reject(
        &OneM2mVerifier::new(AE, rot),
        &cred(&chain),
        NOW,
        CertError::NameConstraints,
        AlertDescription::UnknownCa,
    );
    // DNS in the excluded subtree.
    let (chain, rot) = pki(root_b(), int_b(), leaf_with("x.bad.example.com", AE));
    reject(
        &OneM2mVerifier::new(AE, rot),
        &cred(&chain),
        NOW,
        CertError::NameConstraints,
        AlertDescription::UnknownCa,
    );
    // URI host outside `.example.com` (the exact host example.com is not below it either).
    for uri in [
        "//sp.example.org/CSE1/Cae1",
        "//example.com/CSE1/Cae1",
        "urn:no-host",
    ] {
        let (chain, rot) = pki(root_b(), int_b(), leaf_with(CSE, uri));
        reject(
            &OneM2mVerifier::new(CSE, rot),
            &cred(&chain),
            NOW,
            CertError::NameConstraints,
            AlertDescription::UnknownCa,
        );
    }
    // A name matched in the Subject is held to the constraints too.
    let (chain, rot) = pki(
        root_b(),
        int_b(),
        CertBuilder::new(&[3], T2026, T2030)
            .subject_cn("evil.org")
            .san(SubjectAltName::Dns(CSE.into())),
    );
    reject(
        &OneM2mVerifier::new("evil.org", rot),
        &cred(&chain),
        NOW,
        CertError::NameConstraints,
        AlertDescription::UnknownCa,
    );
    // Constraints of the root apply to the intermediate's names as well as the leaf's.
    let root = root_b().name_constraints(vec![SubjectAltName::Dns("example.net".into())], vec![]);
    let (chain, rot) = pki(root, int_b(), leaf_b());
    reject(
        &OneM2mVerifier::new(CSE, rot),
        &cred(&chain),
        NOW,
        CertError::NameConstraints,
        AlertDescription::UnknownCa,
    );
}

#[test]
fn raw_public_keys() {
    let rpk = Credential::RawPublicKey(key(5).spki_der());
    let other = RootOfTrust::of_spki(&key(6).spki_der(), RotHash::Sha256);
    reject(
        &OneM2mVerifier::new("", other),
        &rpk,
        NOW,
        CertError::UntrustedRoot,
        AlertDescription::UnknownCa,
    );
    let rot = RootOfTrust::of_spki(&key(5).spki_der(), RotHash::Sha256);
    reject(
        &OneM2mVerifier::new("", rot).accept_raw_public_keys(false),
        &rpk,
        NOW,
        CertError::RawPublicKeyRefused,
        AlertDescription::UnsupportedCertificate,
    );
    // A compressed point is not the oneM2M profile.
    let mut compressed = key(5).spki_der();
    compressed[26] = 0x02;
    reject(
        &OneM2mVerifier::new("", rot),
        &Credential::RawPublicKey(compressed),
        NOW,
        CertError::UnsupportedKey,
        AlertDescription::UnsupportedCertificate,
    );
    reject(
        &OneM2mVerifier::new("", rot),
        &Credential::RawPublicKey(vec![0x30, 0x00]),
        NOW,
        CertError::Malformed,
        AlertDescription::BadCertificate,
    );
}

#[test]
fn leaf_key_usage() {
    // keyUsage without digitalSignature, and no keyUsage at all (the oneM2M profile requires it).
    for leaf in [
        leaf_b().key_usage(KU_KEY_AGREEMENT),
        leaf_b().no_key_usage(),
    ] {
        let (chain, rot) = pki(root_b(), int_b(), leaf);
        reject(
            &OneM2mVerifier::new(CSE, rot),
            &cred(&chain),
            NOW,
            CertError::KeyUsage,
            AlertDescription::BadCertificate,
        );
    }
    // extendedKeyUsage with codeSigning only (SEQUENCE { 1.3.6.1.5.5.7.3.3 }).
    let eku = [
        0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03,
    ];
    let (chain, rot) = pki(
        root_b(),
        int_b(),
        leaf_b().extension("2.5.29.37", false, &eku),
    );
    reject(
        &OneM2mVerifier::new(CSE, rot),
        &cred(&chain),
        NOW,
        CertError::KeyUsage,
        AlertDescription::BadCertificate,
    );
}

#[test]
fn unknown_critical_extension() {
    let (chain, rot) = pki(
        root_b(),
        int_b(),
        leaf_b().extension("1.3.6.1.4.1.55555.1", true, &[0x05, 0x00]),
    );
    reject(
        &OneM2mVerifier::new(CSE, rot),
        &cred(&chain),
        NOW,
        CertError::UnhandledCriticalExtension,
        AlertDescription::UnsupportedCertificate,
    );
    // The same extension non-critical is ignored.
    let (chain, rot) = pki(
        root_b(),
        int_b(),
        leaf_b().extension("1.3.6.1.4.1.55555.1", false, &[0x05, 0x00]),
    );
    accept(&OneM2mVerifier::new(CSE, rot), &cred(&chain), NOW);
    // On the intermediate.
    let (chain, rot) = pki(
        root_b(),
        int_b().extension("1.3.6.1.4.1.55555.1", true, &[0x05, 0x00]),
        leaf_b(),
    );
    reject(
        &OneM2mVerifier::new(CSE, rot),
        &cred(&chain),
        NOW,
        CertError::UnhandledCriticalExtension,
        AlertDescription::UnsupportedCertificate,
    );
    // A known extension twice is malformed (RFC 5280 4.2).
    let (chain, rot) = pki(
        root_b(),
        int_b(),
        leaf_b().extension("2.5.29.15", true, &[0x03, 0x02, 0x07, 0x80]),
    );
    reject(
        &OneM2mVerifier::new(CSE, rot),
        &cred(&chain),
        NOW,
        CertError::Malformed,
        AlertDescription::BadCertificate,
    );
}

#[test]
fn empty_garbage_and_oversized() {
    let (chain, rot) = default_pki();
    let v = OneM2mVerifier::new(CSE, rot);
    reject(
        &v,
        &Credential::X509(vec![]),
        NOW,
        CertError::NoCertificate,
        AlertDescription::BadCertificate,
    );
    reject(
        &v,
        &Credential::X509(vec![b"garbage".to_vec()]),
        NOW,
        CertError::Malformed,
        AlertDescription::BadCertificate,
    );
    reject(
        &v,
        &Credential::X509(vec![chain[0][..chain[0].len() - 1].to_vec()]),
        NOW,
        CertError::Malformed,
        AlertDescription::BadCertificate,
    );
    reject(
        &v,
        &Credential::X509(vec![chain[0].clone(), vec![0x30, 0x03, 0x02, 0x01, 0x00]]),
        NOW,
        CertError::Malformed,
        AlertDescription::BadCertificate,
    );
    // Trailing bytes after the certificate.
    let mut trailing = chain[0].clone();
    trailing.push(0);
    reject(
        &v,
        &Credential::X509(vec![trailing]),
        NOW,
        CertError::Malformed,
        AlertDescription::BadCertificate,
    );
    // More than MAX_CHAIN_LEN certificates.
    let long = vec![chain[0].clone(); m2msec::cert::MAX_CHAIN_LEN + 1];
    reject(
        &v,
        &Credential::X509(long),
        NOW,
        CertError::ChainTooLong,
        AlertDescription::BadCertificate,
    );
}

// ---------------------------------------------------------------------------------------------
// Properties

fn prop_config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(prop_config())]

    /// Arbitrary bytes as a certificate, a chain or a raw key: no panic, never Accept.
    #[test]
    fn garbage_never_accepted(
        a in proptest::collection::vec(any::<u8>(), 0..600),
        b in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let (_, rot) = fixed_pki();
        let v = OneM2mVerifier::new(CSE, rot);
        for c in [
            Credential::X509(vec![a.clone()]),
            Credential::X509(vec![a.clone(), b.clone()]),
            Credential::RawPublicKey(a.clone()),
        ] {
            prop_assert!(!matches!(v.verify(&c, NOW), CertDecision::Accept(_)));
        }
    }

    /// One or more bit flips in the leaf or the intermediate of a valid chain (the root is the
    /// trust anchor: only its key is used, so flips there may legitimately pass): never Accept.
    #[test]
    fn bit_flips_never_accepted(
        flips in proptest::collection::vec((0usize..2, any::<prop::sample::Index>(), 0u8..8), 1..4),
    ) {
        let (chain, rot) = fixed_pki();
        let mut c = chain.clone();
        for (cert, at, bit) in &flips {
            let i = at.index(c[*cert].len());
            c[*cert][i] ^= 1 << bit;
        }
        prop_assume!(c != chain);
        let v = OneM2mVerifier::new(CSE, rot);
        prop_assert!(!matches!(v.verify(&cred(&c), NOW), CertDecision::Accept(_)));
        // The OpenSSL chain too.
        let (leaf, int, root) = (fixture("leaf.der"), fixture("int.der"), fixture("root.der"));
        let mut o = vec![leaf, int, root.clone()];
        let orig = o.clone();
        for (cert, at, bit) in &flips {
            let i = at.index(o[*cert].len());
            o[*cert][i] ^= 1 << bit;
        }
        prop_assume!(o != orig);
        let v = OneM2mVerifier::new(CSE, rot_of(&x509(&[&root])));
        prop_assert!(!matches!(v.verify(&cred(&o), NOW), CertDecision::Accept(_)));
    }

    /// Truncations of a valid certificate: never Accept.
    #[test]
    fn truncations_never_accepted(at in any::<prop::sample::Index>()) {
        let (chain, rot) = fixed_pki();
        let cut = at.index(chain[0].len());
        let c = vec![chain[0][..cut].to_vec(), chain[1].clone(), chain[2].clone()];
        let v = OneM2mVerifier::new(CSE, rot);
        prop_assert_eq!(v.verify(&cred(&c), NOW), CertDecision::Reject(CertError::Malformed));
    }
}

fn fixed_pki() -> (Vec<Vec<u8>>, RootOfTrust) {
    use std::sync::OnceLock;
    static PKI: OnceLock<(Vec<Vec<u8>>, RootOfTrust)> = OnceLock::new();
    PKI.get_or_init(default_pki).clone()
}
