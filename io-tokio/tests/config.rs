//! The TOML configuration files of the PSK frameworks: every example in `docs/examples` loads
//! and agrees with the others, and every refusal names the file, the group and the parameter.

use std::path::{Path, PathBuf};

use m2msec::frameworks::config::{param, Domain, EntityId, MefTransport, ParameterError, Reason};
use m2msec::keys::{IdKind, KeyError, KeyId};
use m2msec::UnixTime;
use m2msec_tokio::config_toml::{
    load_file, load_file_at, parse_str, Config, FormatProblem, LoadError, LoadErrorKind,
};

/// 2027-01-15T08:00:00Z: before every expiry in the examples.
const NOW: UnixTime = UnixTime(1_800_000_000);
/// 2036-01-01T00:00:00Z.
const Y2036: UnixTime = UnixTime(2_082_758_400);

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../docs/examples")
        .join(name)
}

fn text(name: &str) -> String {
    std::fs::read_to_string(example(name)).unwrap()
}

fn end_point(name: &str) -> m2msec::frameworks::config::EndPointConfig {
    match load_file_at(example(name), NOW).unwrap() {
        Config::EndPoint(c) => *c,
        other => panic!("{name}: not an end-point: {other:?}"),
    }
}

fn eid(s: &str) -> EntityId {
    EntityId::new(s).unwrap()
}

#[test]
fn every_example_loads_and_they_agree() {
    let a = end_point("entity-a.toml");
    let b = end_point("entity-b.toml");
    let e = end_point("enrolee.toml");
    let Config::Mef(mef) = load_file_at(example("mef.toml"), NOW).unwrap() else {
        panic!("mef.toml")
    };
    let Config::Maf(maf) = load_file_at(example("maf.toml"), NOW).unwrap() else {
        panic!("maf.toml")
    };
    let mut n = 0;
    for entry in std::fs::read_dir(example("")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|x| x == "toml") {
            if path.ends_with("entity-a-cert.toml") {
                // Its PEM files are made by the operator: the first one is reported missing.
                let e = load_file_at(&path, NOW).unwrap_err();
                assert!(e.to_string().contains("thisEntityPrivateKey"), "{e}");
                continue;
            }
            if path.ends_with("bsf.toml") {
                // role = "bsf": the BSF's own loader.
                m2msec_tokio::frameworks::bsf::BsfConfig::load(&path)
                    .unwrap_or_else(|e| panic!("{e}"));
                continue;
            }
            load_file_at(&path, NOW).unwrap_or_else(|e| panic!("{e}"));
            n += 1;
        }
    }
    assert_eq!(
        n, 7,
        "docs/examples holds the five PSK examples and the two GBA UEs"
    );

    // Pre-Provisioned: A and B share Kpsa and KpsaId; A names itself (table 9.1.2.1-2).
    assert_eq!(a.domain(), Domain::Field);
    assert_eq!(b.domain(), Domain::Infrastructure);
    let pa = &a.pre_provisioned()[0];
    let pb = b
        .pre_provisioned_by_kpsa_id(pa.credential().kpsa_id())
        .expect("B knows A's KpsaId");
    assert_eq!(pa.credential().kpsa_key(), pb.credential().kpsa_key());
    assert_eq!(pa.this_entity_identifier(), Some(&eid("/id-asn-a")));
    assert_eq!(pa.association().other_entity_identifier(), &eid("/id-in"));
    assert_eq!(
        pb.association().other_entity_identifier(),
        &eid("/id-asn-a")
    );
    assert_eq!(
        pa.association().association_configuration_expiry(),
        Some(Y2036)
    );
    assert_eq!(
        pb.association().association_configuration_expiry(),
        Some(Y2036)
    );
    assert_eq!(
        pa.association().lifespan_deadline(NOW),
        Some(UnixTime(NOW.0 + 86_400))
    );
    assert_eq!(
        pb.association()
            .security_association_lifespan()
            .unwrap()
            .as_secs(),
        86_400
    );

    // MAF-based: A's and B's Km are the MAF's clients 0 and 1.
    for (ep, who) in [(&a, "/id-asn-a"), (&b, "/id-in")] {
        let c = ep.maf_credential().unwrap();
        assert_eq!(c.maf_identifier(), maf.maf_identifier());
        let client = maf
            .client_by_km_id(c.master().master_credential_identifier())
            .expect("the MAF knows the KmID");
        assert_eq!(
            client.credential().master_credential(),
            c.master().master_credential()
        );
        assert_eq!(client.credential().this_entity_identifier(), &eid(who));
        assert_eq!(c.master().this_entity_identifier(), &eid(who));
    }
    // "2035-06-30T12:00:00+02:00"
    let expiry = UnixTime(2_066_810_400);
    assert_eq!(
        a.maf_credential()
            .unwrap()
            .master()
            .master_credential_expiry(),
        Some(expiry)
    );
    assert!(a.maf_credential().unwrap().check_usable(expiry).is_err());
    let lifespan = a.maf_association_with(&eid("/id-in")).unwrap();
    assert_eq!(
        lifespan.security_association_lifespan().unwrap().as_secs(),
        5400
    );
    assert!(b.maf_association_with(&eid("/id-mn-e")).is_some());

    // Bootstrap: the Enrolee and the MEF agree on Kpm, KpmId and the instruction.
    assert!(e.maf_credential().is_none());
    let boot = e.bootstrap().unwrap();
    assert_eq!(boot.mef_uri().transport(), MefTransport::Tls);
    assert_eq!(boot.mef_uri().host(), "localhost");
    assert_eq!(boot.mef_uri().port(), 7001);
    let at_mef = mef
        .enrolee_by_kpm_id(boot.credential().unwrap().kpm_id())
        .expect("the MEF knows the KpmId");
    assert_eq!(
        at_mef.credential().unwrap().kpm(),
        boot.credential().unwrap().kpm()
    );
    assert_eq!(at_mef.instruction(), boot.instruction());
    assert_eq!(boot.instruction().maf_id(), maf.maf_identifier());
    assert_eq!(mef.mef_identifier().as_str(), "mef.example.com");
    assert_eq!(mef.enrolees().len(), 2);
    let kpm_id = KeyId::parse(IdKind::Kpm, "mn-e.kpm1@mef.example.com").unwrap();
    assert_eq!(boot.credential().unwrap().kpm_id(), &kpm_id);
    assert_eq!(
        boot.credential().unwrap().kpm().to_psk().expose(),
        hex::decode("134006bcb1b4063f3455d28efb377f1b903fb7ee90a7950eecd4e5671a79a8ca").unwrap()
    );
}

/// Loads `text` (a modified example) and returns the error.
fn refuse(origin: &str, text: &str) -> LoadError {
    match parse_str(text, origin) {
        Ok(c) => panic!("accepted: {c:?}\n{text}"),
        Err(e) => e,
    }
}

/// The example `name` with `from` replaced by `to` (which must occur).
fn edit(name: &str, from: &str, to: &str) -> String {
    let t = text(name);
    assert!(t.contains(from), "{name} has no {from:?}");
    t.replacen(from, to, 1)
}

/// Checks that the error names `origin`, `param` and (if given) the group `at`.
fn assert_names(e: &LoadError, origin: &str, param: &str, at: Option<&str>) {
    let shown = e.to_string();
    assert_eq!(e.parameter(), Some(param), "{shown}");
    assert_eq!(e.file(), Path::new(origin));
    assert!(shown.starts_with(origin), "{shown}");
    assert!(shown.contains(param), "{shown}");
    if let Some(at) = at {
        assert!(shown.contains(&format!("[{at}]")), "{shown}");
    }
    let lower = shown.to_ascii_lowercase();
    for secret in ["fd92b252", "456e26d9", "6acf2e6b", "134006bc"] {
        assert!(!lower.contains(secret), "a key leaked into {shown}");
    }
}

fn missing(e: &LoadError) -> Option<&'static str> {
    match e.kind() {
        LoadErrorKind::Parameter {
            error: ParameterError::Missing { name },
            ..
        } => Some(name),
        _ => None,
    }
}

#[test]
fn every_missing_mandatory_parameter_is_named() {
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "entity-a.toml",
            "kpsaKey = \"fd92",
            param::KPSA_KEY,
            "preProvisioned[0].credential",
        ),
        (
            "entity-a.toml",
            "kpsaId = ",
            param::KPSA_ID,
            "preProvisioned[0].credential",
        ),
        (
            "entity-a.toml",
            "thisEntityIdentifier = \"/id-asn-a\"\notherEntityIdentifier",
            param::THIS_ENTITY_IDENTIFIER,
            "preProvisioned[0].association",
        ),
        (
            "entity-a.toml",
            "otherEntityIdentifier = \"/id-in\"\nassociationConfigurationExpiry",
            param::OTHER_ENTITY_IDENTIFIER,
            "preProvisioned[0].association",
        ),
        (
            "entity-a.toml",
            "mafIdentifier = ",
            param::MAF_IDENTIFIER,
            "mafBased.credential",
        ),
        (
            "entity-a.toml",
            "thisEntityIdentifier = \"/id-asn-a\"\nmasterCredential ",
            param::THIS_ENTITY_IDENTIFIER,
            "mafBased.credential",
        ),
        (
            "entity-a.toml",
            "masterCredential = ",
            param::MASTER_CREDENTIAL,
            "mafBased.credential",
        ),
        (
            "entity-a.toml",
            "masterCredentialIdentifier = ",
            param::MASTER_CREDENTIAL_IDENTIFIER,
            "mafBased.credential",
        ),
        (
            "entity-b.toml",
            "otherEntityIdentifier = \"/id-mn-e\"",
            param::OTHER_ENTITY_IDENTIFIER,
            "mafBased.association[1]",
        ),
        (
            "enrolee.toml",
            "kpmId = ",
            param::KPM_ID,
            "bootstrap.credential",
        ),
        ("enrolee.toml", "kpm = ", param::KPM, "bootstrap.credential"),
        (
            "enrolee.toml",
            "mefUri = ",
            param::MEF_URI,
            "bootstrap.credential",
        ),
        (
            "enrolee.toml",
            "mafId = ",
            param::MAF_ID,
            "bootstrap.instruction",
        ),
        (
            "enrolee.toml",
            "enroleeId = ",
            param::ENROLEE_ID,
            "bootstrap.instruction",
        ),
        ("mef.toml", "mefIdentifier = ", param::MEF_IDENTIFIER, ""),
        ("mef.toml", "kpm = ", param::KPM, "enrolee[0].credential"),
        (
            "mef.toml",
            "enroleeId = ",
            param::ENROLEE_ID,
            "enrolee[0].instruction",
        ),
        ("maf.toml", "mafIdentifier = ", param::MAF_IDENTIFIER, ""),
        (
            "maf.toml",
            "thisEntityIdentifier = ",
            param::THIS_ENTITY_IDENTIFIER,
            "client[0].credential",
        ),
        (
            "maf.toml",
            "masterCredential = ",
            param::MASTER_CREDENTIAL,
            "client[0].credential",
        ),
        (
            "maf.toml",
            "masterCredentialIdentifier = ",
            param::MASTER_CREDENTIAL_IDENTIFIER,
            "client[0].credential",
        ),
    ];
    for &(file, line_start, name, at) in cases {
        // Comment the line out.
        let t = edit(file, line_start, &format!("# {line_start}"));
        let e = refuse(file, &t);
        assert_eq!(missing(&e), Some(name), "{file} without {name}: {e}");
        assert_names(&e, file, name, (!at.is_empty()).then_some(at));
    }
    // A MAF-based association without Km or bootstrap.
    let t = edit("enrolee.toml", "[bootstrap.credential]", "[unused]").replacen(
        "[bootstrap.instruction]",
        "[unused2]",
        1,
    );
    let e = refuse("enrolee.toml", &t);
    assert!(matches!(e.kind(), LoadErrorKind::Syntax(_)), "{e}");
    let t = text("enrolee.toml");
    let start = t.find("[bootstrap.credential]").unwrap();
    let end = t.find("# Association Configuration").unwrap();
    let t = format!("{}{}", &t[..start], &t[end..]);
    let e = refuse("enrolee.toml", &t);
    assert_eq!(missing(&e), Some(param::MASTER_CREDENTIAL), "{e}");
}

#[test]
fn bad_hex_and_bad_key_lengths_are_named() {
    for (file, from, name, at) in [
        (
            "entity-a.toml",
            "kpsaKey = \"fd",
            param::KPSA_KEY,
            "preProvisioned[0].credential",
        ),
        (
            "entity-a.toml",
            "masterCredential = \"45",
            param::MASTER_CREDENTIAL,
            "mafBased.credential",
        ),
        (
            "enrolee.toml",
            "kpm = \"13",
            param::KPM,
            "bootstrap.credential",
        ),
        (
            "mef.toml",
            "kpm = \"13",
            param::KPM,
            "enrolee[0].credential",
        ),
        (
            "maf.toml",
            "masterCredential = \"45",
            param::MASTER_CREDENTIAL,
            "client[0].credential",
        ),
    ] {
        let prefix = &from[..from.len() - 2];
        // Not hex.
        let e = refuse(file, &edit(file, from, &format!("{prefix}zz")));
        assert!(
            matches!(
                e.kind(),
                LoadErrorKind::Format {
                    problem: FormatProblem::NotHex,
                    ..
                }
            ),
            "{e}"
        );
        assert_names(&e, file, name, Some(at));
        // Odd number of digits.
        let e = refuse(file, &edit(file, from, &from[..from.len() - 1]));
        assert!(matches!(e.kind(), LoadErrorKind::Format { .. }), "{e}");
        assert_names(&e, file, name, Some(at));
        // One byte short: hex, but the wrong length.
        let short = {
            let t = text(file);
            let i = t.find(from).unwrap() + prefix.len();
            // Drop two digits: 31 bytes.
            format!("{}{}", &t[..i], &t[i + 2..])
        };
        let e = refuse(file, &short);
        assert!(
            matches!(
                e.kind(),
                LoadErrorKind::Parameter {
                    error: ParameterError::InvalidParameter {
                        reason: Reason::KeyLength {
                            expected: 32,
                            got: 31
                        },
                        ..
                    },
                    ..
                }
            ),
            "{e}"
        );
        assert_names(&e, file, name, Some(at));
        // Not a string at all.
        let e = refuse(
            file,
            &edit(file, from, &format!("{} 5 # ", &prefix[..prefix.len() - 1])),
        );
        assert!(
            matches!(
                e.kind(),
                LoadErrorKind::Format {
                    problem: FormatProblem::WrongType { .. },
                    ..
                }
            ),
            "{e}"
        );
        assert_names(&e, file, name, Some(at));
    }
}

#[test]
fn bad_identifiers_are_named() {
    let cases: &[(&str, &str, &str, &str)] = &[
        // A KmID that is not relative@FQDN.
        (
            "entity-a.toml",
            "\"asn-a.km1@maf.example.com\"",
            "\"asn-a.km1\"",
            param::MASTER_CREDENTIAL_IDENTIFIER,
        ),
        (
            "entity-a.toml",
            "\"asn-a.km1@maf.example.com\"",
            "\"asn a@maf.example.com\"",
            param::MASTER_CREDENTIAL_IDENTIFIER,
        ),
        // A KmID of another MAF.
        (
            "entity-a.toml",
            "\"asn-a.km1@maf.example.com\"",
            "\"asn-a.km1@maf2.example.com\"",
            param::MASTER_CREDENTIAL_IDENTIFIER,
        ),
        (
            "maf.toml",
            "\"asn-a.km1@maf.example.com\"",
            "\"asn-a.km1@maf2.example.com\"",
            param::MASTER_CREDENTIAL_IDENTIFIER,
        ),
        (
            "entity-a.toml",
            "\"asn-a.in@sp.example.com\"",
            "\"asn-a.in@sp..example.com\"",
            param::KPSA_ID,
        ),
        (
            "entity-a.toml",
            "\"asn-a.in@sp.example.com\"",
            "\"\"",
            param::KPSA_ID,
        ),
        (
            "enrolee.toml",
            "\"mn-e.kpm1@mef.example.com\"",
            "\"mn-e.kpm1@10.0.0.1\"",
            param::KPM_ID,
        ),
        // FQDNs that are not DNS names.
        (
            "entity-a.toml",
            "mafIdentifier = \"maf.example.com\"",
            "mafIdentifier = \"maf.example.com.\"",
            param::MAF_IDENTIFIER,
        ),
        (
            "enrolee.toml",
            "mafId = \"maf.example.com\"",
            "mafId = \"maf example\"",
            param::MAF_ID,
        ),
        (
            "maf.toml",
            "mafIdentifier = \"maf.example.com\"",
            "mafIdentifier = \"192.0.2.1\"",
            param::MAF_IDENTIFIER,
        ),
        (
            "mef.toml",
            "mefIdentifier = \"mef.example.com\"",
            "mefIdentifier = \"\"",
            param::MEF_IDENTIFIER,
        ),
        // Entity identifiers.
        (
            "entity-a.toml",
            "otherEntityIdentifier = \"/id-in\"\nassoc",
            "otherEntityIdentifier = \"/id in\"\nassoc",
            param::OTHER_ENTITY_IDENTIFIER,
        ),
        (
            "entity-a.toml",
            "thisEntityIdentifier = \"/id-asn-a\"\nother",
            "thisEntityIdentifier = \"/id-asn-a/\"\nother",
            param::THIS_ENTITY_IDENTIFIER,
        ),
        (
            "mef.toml",
            "enroleeId = \"//sp.example.com/id-mn-f\"",
            "enroleeId = \"//sp.example.com\"",
            param::ENROLEE_ID,
        ),
        (
            "enrolee.toml",
            "https://localhost:7001",
            "http://localhost:7001",
            param::MEF_URI,
        ),
        (
            "enrolee.toml",
            "https://localhost:7001",
            "https://localhost:99999",
            param::MEF_URI,
        ),
        // Cross-group rules.
        (
            "mef.toml",
            "kpmId = \"mn-f.kpm1@mef.example.com\"",
            "kpmId = \"mn-e.kpm1@mef.example.com\"",
            param::KPM_ID,
        ),
        (
            "maf.toml",
            "\"in-cse.km1@maf.example.com\"",
            "\"ASN-A.km1@maf.example.com\"",
            param::MASTER_CREDENTIAL_IDENTIFIER,
        ),
        (
            "entity-b.toml",
            "otherEntityIdentifier = \"/id-mn-e\"",
            "otherEntityIdentifier = \"/id-asn-a\"",
            param::OTHER_ENTITY_IDENTIFIER,
        ),
    ];
    for &(file, from, to, name) in cases {
        let e = refuse(file, &edit(file, from, to));
        assert!(
            matches!(
                e.kind(),
                LoadErrorKind::Parameter {
                    error: ParameterError::InvalidParameter { .. },
                    ..
                }
            ),
            "{file} {to}: {e}"
        );
        assert_names(&e, file, name, None);
    }
    let e = refuse(
        "entity-a.toml",
        &edit(
            "entity-a.toml",
            "\"asn-a.km1@maf.example.com\"",
            "\"asn-a.km1\"",
        ),
    );
    assert!(matches!(
        e.kind(),
        LoadErrorKind::Parameter {
            error: ParameterError::InvalidParameter {
                reason: Reason::Identifier(KeyError::MissingAt),
                ..
            },
            ..
        }
    ));
}

#[test]
fn times_and_durations() {
    // Bad time forms.
    for (to, problem) in [
        (
            "associationConfigurationExpiry = 2036-01-01T00:00:00 ",
            FormatProblem::LocalTime,
        ),
        (
            "associationConfigurationExpiry = 2036-01-01 ",
            FormatProblem::NotTime,
        ),
        (
            "associationConfigurationExpiry = \"tomorrow\" ",
            FormatProblem::NotTime,
        ),
        (
            "associationConfigurationExpiry = -1 ",
            FormatProblem::BeforeEpoch,
        ),
        (
            "associationConfigurationExpiry = 1.5 ",
            FormatProblem::WrongType {
                expected: "an RFC 3339 date-time or integer Unix seconds",
            },
        ),
    ] {
        let t = edit(
            "entity-a.toml",
            "associationConfigurationExpiry = 2036-01-01T00:00:00Z",
            &format!("{to}#"),
        );
        let e = refuse("entity-a.toml", &t);
        assert!(
            matches!(e.kind(), LoadErrorKind::Format { problem: p, .. } if *p == problem),
            "{to}: {e}"
        );
        assert_names(
            &e,
            "entity-a.toml",
            param::ASSOCIATION_CONFIGURATION_EXPIRY,
            Some("preProvisioned[0].association"),
        );
    }
    // Bad durations, and a zero lifespan.
    for to in ["\"24\"", "\"1.5h\"", "\"forever\"", "-5", "true"] {
        let t = edit(
            "entity-a.toml",
            "securityAssociationLifespan = \"24h\"",
            &format!("securityAssociationLifespan = {to}"),
        );
        let e = refuse("entity-a.toml", &t);
        assert!(
            matches!(e.kind(), LoadErrorKind::Format { .. }),
            "{to}: {e}"
        );
        assert_names(
            &e,
            "entity-a.toml",
            param::SECURITY_ASSOCIATION_LIFESPAN,
            Some("preProvisioned[0].association"),
        );
    }
    for zero in ["0", "\"0s\"", "\"0h0m\""] {
        let t = edit(
            "maf.toml",
            "securityAssociationLifespan = \"1h30m\"",
            &format!("securityAssociationLifespan = {zero}"),
        );
        let e = refuse("maf.toml", &t);
        assert!(
            matches!(
                e.kind(),
                LoadErrorKind::Parameter {
                    error: ParameterError::InvalidParameter {
                        reason: Reason::Zero,
                        ..
                    },
                    ..
                }
            ),
            "{zero}: {e}"
        );
        assert_names(
            &e,
            "maf.toml",
            param::SECURITY_ASSOCIATION_LIFESPAN,
            Some("client[0].association[0]"),
        );
    }
}

#[test]
fn expired_configuration_is_refused_naming_the_parameter() {
    // The examples load at NOW but not after their expiries; the first expiry met is named.
    let cases = [
        (
            "entity-a.toml",
            param::MASTER_CREDENTIAL_EXPIRY,
            "mafBased.credential",
            UnixTime(2_066_810_400),
        ),
        (
            "entity-b.toml",
            param::ASSOCIATION_CONFIGURATION_EXPIRY,
            "preProvisioned[0].association",
            Y2036,
        ),
        (
            "enrolee.toml",
            param::ASSOCIATION_CONFIGURATION_EXPIRY,
            "mafBased.association[0]",
            Y2036,
        ),
        (
            "maf.toml",
            param::MASTER_CREDENTIAL_EXPIRY,
            "client[0].credential",
            UnixTime(2_066_810_400),
        ),
    ];
    for (file, name, at, expiry) in cases {
        let path = example(file);
        assert!(
            load_file_at(&path, UnixTime(expiry.0 - 1)).is_ok(),
            "{file}"
        );
        let e = load_file_at(&path, expiry).unwrap_err();
        let shown = e.to_string();
        assert_eq!(e.parameter(), Some(name), "{shown}");
        assert_eq!(e.file(), path);
        assert!(shown.contains(&format!("[{at}]")), "{shown}");
        assert!(shown.contains(file), "{shown}");
        assert!(
            matches!(
                e.kind(),
                LoadErrorKind::Parameter {
                    error: ParameterError::Expired(x),
                    ..
                } if x.expiry == expiry && x.now == expiry
            ),
            "{shown}"
        );
        // load_file checks form only.
        assert!(load_file(&path).is_ok());
    }
    // Nothing in a MEF file expires.
    assert!(load_file_at(example("mef.toml"), UnixTime(u64::MAX)).is_ok());
    // An expiry in the past, given as Unix seconds.
    let t = edit(
        "entity-b.toml",
        "associationConfigurationExpiry = 2082758400",
        "associationConfigurationExpiry = 1000",
    );
    let dir = scratch_dir();
    let path = dir.join("expired.toml");
    std::fs::write(&path, t).unwrap();
    let e = load_file_at(&path, NOW).unwrap_err();
    assert_eq!(e.parameter(), Some(param::ASSOCIATION_CONFIGURATION_EXPIRY));
    assert!(e.to_string().contains("expired.toml"), "{e}");
    std::fs::remove_dir_all(dir).unwrap();
}

fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "m2msec-config-test-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn structure_errors() {
    // Unknown (e.g. misspelt) keys are refused, the parser's message shows the line.
    let e = refuse(
        "entity-a.toml",
        &edit(
            "entity-a.toml",
            "securityAssociationLifespan = \"24h\"",
            "securityAssociationLifespam = \"24h\"",
        ),
    );
    assert!(matches!(e.kind(), LoadErrorKind::Syntax(_)), "{e}");
    assert!(e.to_string().contains("securityAssociationLifespam"), "{e}");
    // thisEntityIdentifier is not a parameter of a MAF-based association (table 9.1.2.1-2).
    let e = refuse(
        "entity-b.toml",
        &edit(
            "entity-b.toml",
            "otherEntityIdentifier = \"/id-mn-e\"",
            "otherEntityIdentifier = \"/id-mn-e\"\nthisEntityIdentifier = \"/id-in\"",
        ),
    );
    assert!(
        matches!(
            e.kind(),
            LoadErrorKind::Format {
                problem: FormatProblem::NotAllowedHere,
                ..
            }
        ),
        "{e}"
    );
    assert_names(
        &e,
        "entity-b.toml",
        param::THIS_ENTITY_IDENTIFIER,
        Some("mafBased.association[1]"),
    );
    // mefUri belongs to the Enrolee, not the MEF.
    let e = refuse(
        "mef.toml",
        &edit(
            "mef.toml",
            "kpmId = \"mn-e",
            "mefUri = \"https://mef.example.com\"\nkpmId = \"mn-e",
        ),
    );
    assert_names(
        &e,
        "mef.toml",
        param::MEF_URI,
        Some("enrolee[0].credential"),
    );
    // Role.
    let e = refuse("x.toml", &edit("maf.toml", "role = \"maf\"", ""));
    assert!(matches!(e.kind(), LoadErrorKind::Role(None)), "{e}");
    assert_eq!(e.parameter(), Some("role"));
    let e = refuse(
        "x.toml",
        &edit("maf.toml", "role = \"maf\"", "role = \"bsf\""),
    );
    assert!(matches!(e.kind(), LoadErrorKind::Role(Some(_))), "{e}");
    // A MAF file read as an end-point: its keys are unknown there.
    let e = refuse(
        "x.toml",
        &edit("maf.toml", "role = \"maf\"", "role = \"field-end-point\""),
    );
    assert!(matches!(e.kind(), LoadErrorKind::Syntax(_)), "{e}");
    // Not TOML.
    let e = refuse("x.toml", "role = ");
    assert!(matches!(e.kind(), LoadErrorKind::Syntax(_)), "{e}");
    // No such file.
    let e = load_file(example("no-such.toml")).unwrap_err();
    assert!(matches!(e.kind(), LoadErrorKind::Io(_)), "{e}");
    assert!(e.to_string().contains("no-such.toml"), "{e}");
    // The bootstrap's MAF must be the credential's MAF (one MAF per end-point).
    let t = format!(
        "{}\n{}",
        text("entity-a.toml"),
        text("enrolee.toml")
            .split("[bootstrap.credential]")
            .nth(1)
            .map(|s| format!(
                "[bootstrap.credential]{}",
                s.split("# Association").next().unwrap()
            ))
            .unwrap()
            .replace(
                "mafId = \"maf.example.com\"",
                "mafId = \"maf2.example.com\""
            )
    );
    let e = refuse("combined.toml", &t);
    assert_names(&e, "combined.toml", param::MAF_ID, None);
}

// ---------------------------------------------------------------------------------------------
// The [service] section (load_node)

/// Writes `text` as `name` in a fresh directory and loads it with its service section.
fn node_from(
    name: &str,
    text: &str,
) -> Result<(PathBuf, m2msec_tokio::config_toml::Node), LoadError> {
    let dir = std::env::temp_dir().join(format!(
        "m2msec-config-{}-{}",
        std::process::id(),
        name.replace('/', "_")
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("c.toml");
    std::fs::write(&path, text).unwrap();
    m2msec_tokio::config_toml::load_node(&path, Some(NOW)).map(|n| (dir, n))
}

#[test]
fn service_sections_of_the_examples_load() {
    use m2msec_tokio::frameworks::Transport;
    let (dir, mef) = node_from("mef", &text("mef.toml")).unwrap();
    assert!(matches!(mef.config, Config::Mef(_)));
    let s = &mef.service;
    assert_eq!(s.listen, Some("127.0.0.1:7001".parse().unwrap()));
    assert_eq!(s.listen_dtls, Some("127.0.0.1:7001".parse().unwrap()));
    // Relative to the file's directory.
    assert_eq!(s.store.as_deref(), Some(dir.join("mef.redb").as_path()));
    assert!(s.kek.is_some());
    assert_eq!(s.key_lifetime, Some(30 * 86_400));
    assert_eq!(s.mafs.len(), 1);
    assert_eq!(s.mafs[0].maf_id, "maf.example.com");
    assert!(!format!("{s:?}").contains("8d3c0b6f"), "Debug shows a PSK");

    let (_, maf) = node_from("maf", &text("maf.toml")).unwrap();
    let mef_peer = maf.service.mef.as_ref().unwrap();
    assert_eq!(mef_peer.uri.transport, Transport::Tls);
    assert_eq!(mef_peer.uri.authority, "localhost:7001");
    assert_eq!(mef_peer.uri.host(), "localhost");
    assert_eq!(maf.service.key_lifetime, Some(3600));
    assert_eq!(mef_peer.psk_identity, s.mafs[0].psk_identity);
    assert_eq!(mef_peer.psk, s.mafs[0].psk);

    let (_, b) = node_from("b", &text("entity-b.toml")).unwrap();
    assert_eq!(
        b.service.maf_uri.as_ref().map(|u| u.authority.as_str()),
        Some("localhost:7002")
    );
    // A file without [service] has an empty one.
    let (_, a) = node_from("a", &text("entity-a.toml")).unwrap();
    assert!(a.service.listen.is_none() && a.service.store.is_none());
}

#[test]
fn service_refusals_name_the_parameter() {
    let cases: [(&str, &str, &str); 6] = [
        (
            "listen = \"127.0.0.1:7002\"",
            "listen = \"localhost\"",
            "listen",
        ),
        (
            "listenDtls = \"127.0.0.1:7002\"",
            "listenDtls = 7001",
            "listenDtls",
        ),
        (
            "uri = \"https://localhost:7001\"",
            "uri = \"http://localhost:7001\"",
            "uri",
        ),
        (
            "uri = \"https://localhost:7001\"",
            "uri = \"https://localhost\"",
            "uri",
        ),
        (
            "kek = \"0e1d2c3b4a5968778695a4b3c2d1e0f00f1e2d3c4b5a69788796a5b4c3d2e1f0\"",
            "kek = \"0e1d2c3b\"",
            "kek",
        ),
        (
            "keyLifetime = \"1h\"",
            "keyLifetime = \"1 hour\"",
            "keyLifetime",
        ),
    ];
    for (i, (from, to, param)) in cases.into_iter().enumerate() {
        let t = edit("maf.toml", from, to);
        let Err(e) = node_from(&format!("refuse{i}"), &t) else {
            panic!("accepted {to}");
        };
        assert_eq!(e.parameter(), Some(param), "{e}");
        assert!(e.to_string().contains("[service"), "{e}");
        assert!(!e.to_string().contains("0e1d2c3b4a"), "{e}");
    }
    // Unknown keys and both kek and kekFile are refused.
    let t = edit("maf.toml", "keyLifetime = \"1h\"", "keyLifetme = \"1h\"");
    assert!(node_from("typo", &t)
        .unwrap_err()
        .to_string()
        .contains("keyLifetme"));
    let t = edit("maf.toml", "keyLifetime = \"1h\"", "kekFile = \"kek.bin\"");
    assert_eq!(
        node_from("both", &t).unwrap_err().parameter(),
        Some("kekFile")
    );
    // A kekFile holding 64 hex digits or 32 raw bytes works; anything else is refused.
    let t = text("maf.toml").replacen(
        "kek = \"0e1d2c3b4a5968778695a4b3c2d1e0f00f1e2d3c4b5a69788796a5b4c3d2e1f0\"",
        "kekFile = \"kek.bin\"",
        1,
    );
    for (i, (content, ok)) in [
        (
            b"0e1d2c3b4a5968778695a4b3c2d1e0f00f1e2d3c4b5a69788796a5b4c3d2e1f0\n".to_vec(),
            true,
        ),
        (vec![7u8; 32], true),
        (vec![7u8; 31], false),
    ]
    .into_iter()
    .enumerate()
    {
        let dir = std::env::temp_dir().join(format!("m2msec-kekfile-{}-{i}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("kek.bin"), &content).unwrap();
        std::fs::write(dir.join("c.toml"), &t).unwrap();
        let r = m2msec_tokio::config_toml::load_node(dir.join("c.toml"), Some(NOW));
        assert_eq!(r.is_ok(), ok, "{i}: {:?}", r.err().map(|e| e.to_string()));
    }
}

/// The certificate example loads once its PEM files exist and its Roots of Trust are filled in:
/// the credential, the association and the certificate bootstrap, with the draft's names.
#[test]
fn certificate_example_loads_with_its_files() {
    use m2msec::cert::{pem_encode, root_of_trust_of, CertBuilder, SubjectAltName};
    use m2msec::{CertifiedKey, Credential, SigningKey};
    let dir = std::env::temp_dir().join(format!("m2msec-cert-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_key = SigningKey::from_bytes(&[0x21; 32]).unwrap();
    let ca_der = CertBuilder::new(&[1], UnixTime(NOW.0 - 10), Y2036)
        .subject_cn("example CA")
        .ca(None)
        .self_signed(&ca_key)
        .unwrap();
    let ca = CertifiedKey::new(ca_key, Credential::X509(vec![ca_der.clone()])).unwrap();
    let key = SigningKey::from_bytes(&[0x22; 32]).unwrap();
    let leaf = CertBuilder::new(&[2], UnixTime(NOW.0 - 10), Y2036)
        .san(SubjectAltName::Dns("asn-c.example.com".into()))
        .end_entity()
        .signed_by(&key.verifying_key(), &ca)
        .unwrap();
    // SEC1 "EC PRIVATE KEY" is accepted as well as PKCS#8: build the SEC1 DER by hand.
    let mut sec1 = vec![0x30, 0x77, 0x02, 0x01, 0x01, 0x04, 0x20];
    sec1.extend_from_slice(&[0x22; 32]);
    sec1.extend_from_slice(&[
        0xa0, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0xa1, 0x44, 0x03,
        0x42, 0x00,
    ]);
    let spki = key.spki_der();
    sec1.extend_from_slice(&spki[spki.len() - 65..]);
    std::fs::write(
        dir.join("asn-c-key.pem"),
        pem_encode("EC PRIVATE KEY", &sec1),
    )
    .unwrap();
    std::fs::write(dir.join("asn-c.pem"), pem_encode("CERTIFICATE", &leaf)).unwrap();
    std::fs::write(dir.join("ca.pem"), pem_encode("CERTIFICATE", &ca_der)).unwrap();
    let rot = root_of_trust_of(ca.credential()).unwrap().to_ni_uri();
    let toml = text("entity-a-cert.toml").replace(
        "ni:///sha-256;REPLACE-with-the-CA-root-of-trust-43-chars-xx",
        &rot,
    );
    std::fs::write(dir.join("entity-a-cert.toml"), toml).unwrap();
    let c = match load_file_at(dir.join("entity-a-cert.toml"), NOW) {
        Ok(Config::EndPoint(c)) => c,
        other => panic!("{other:?}"),
    };
    let cred = c.certificate().unwrap();
    assert!(!cred.is_raw_public_key());
    assert_eq!(cred.root_of_trust().unwrap().to_ni_uri(), rot);
    let a = &c.certificate_associations()[0];
    assert_eq!(a.this_entity_identifier(), Some(&eid("/id-asn-c")));
    assert_eq!(a.peer().certificate_name(), "in-cse.example.com");
    assert_eq!(a.peer().root_of_trust().to_ni_uri(), rot);
    let b = c.bootstrap().unwrap();
    assert!(b.credential().is_none());
    assert_eq!(b.mef_fqdn(), Some("mef.example.com"));

    // Refusals name the parameter: a wrong Root of Trust, a key that is not the certificate's,
    // PSK and certificate keys mixed in one bootstrap credential.
    let base = std::fs::read_to_string(dir.join("entity-a-cert.toml")).unwrap();
    let bad = |from: &str, to: &str| {
        let p = dir.join("bad.toml");
        std::fs::write(&p, base.replacen(from, to, 1)).unwrap();
        load_file_at(&p, NOW).unwrap_err().to_string()
    };
    let e = bad(&rot, "ni:///sha-256;AAAA");
    assert!(
        e.contains("certificate.association[0]") && e.contains("otherEntityRootOfTrust"),
        "{e}"
    );
    std::fs::write(
        dir.join("ca-key.pem"),
        pem_encode("PRIVATE KEY", &[0x30, 0x00]),
    )
    .unwrap();
    let e = bad("\"asn-c-key.pem\"", "\"ca-key.pem\"");
    assert!(
        e.contains("certificate.credential") && e.contains("thisEntityPrivateKey"),
        "{e}"
    );
    let e = bad("mefUri", "kpmId = \"x@mef.example.com\"\nmefUri");
    assert!(
        e.contains("bootstrap.credential") && e.contains("kpmId"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
