//! The security frameworks end to end with real processes: `m2msec mef`, `m2msec maf` and
//! `m2msec registrar` configured by TOML files in a temporary directory, `m2msec enrol` and
//! `m2msec associate` as the clients.
//!
//! - Pre-provisioned (8.2.2.1) over TLS and DTLS.
//! - MAF-based (8.2.3.1) for an Entity A with a configured Km: the MAF reached over TLS and over
//!   DTLS, the registrar over TLS and over DTLS.
//! - An Enrolee: Security Bootstrap at the MEF, first contact at the MAF (`km-id:` line, KmID
//!   stored), then MAF-based associations with the stored KmID (no `km-id:` line); enrolment over
//!   TLS with associations over DTLS, and vice versa.
//! - Refusals (exit 1, one `error:` line naming the cause, `refused:` at the registrar where it
//!   saw a handshake, nothing stored at the MAF).
//! - A MAF restart between key registration and association, and a MEF restart between
//!   enrolment and first contact.
//!
//! Every `associated:` line is parsed: this-entity equals bound-identity, the key-id is the
//! KpsaId or a KcID (32 hex digits @ the MAF's FQDN), and the registrar's `association:` line
//! carries the same framework, transport, suite, bound identity, key identifier and deadline.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use m2msec::keys::{IdKind, KeyId, Km};
use m2msec_tokio::frameworks::maf::{register_key, retrieve_key, MafCredentials};
use m2msec_tokio::frameworks::registrar::associate_maf;
use m2msec_tokio::frameworks::Transport;
use m2msec_tokio::node::KM_SLOT;
use m2msec_tokio::store::{AsyncKeyStore, Kek, RedbKeyStore};
use tokio::time::timeout;

mod common;
use common::{finish, free_port, now, Run, Server, TempDir, BIN, LIMIT};

const MEF: &str = "mef.example.com";
const MAF_ID: &str = "maf.example.com";
/// The MAF's PSK at the MEF (fetchCredentials).
const MAF_PSK_ID: &str = "maf.example.com@mef.example.com";
const MAF_PSK: [u8; 32] = [0x5a; 32];
const MEF_KEK: [u8; 32] = [0x42; 32];
const MAF_KEK: [u8; 32] = [0x44; 32];
const ENROLEE_KEK: [u8; 32] = [0x43; 32];
/// The Enrolee.
const KPM_ID: &str = "mn-e.kpm1@mef.example.com";
const KPM: [u8; 32] = [0x11; 32];
const ENROLEE: &str = "/id-mn-e";
/// Entity A, pre-provisioned with the registrar, and a MAF client.
const ID_A: &str = "/id-asn-a";
const KPSA_ID: &str = "asn-a.in@sp.example.com";
const KPSA: [u8; 32] = [0x31; 32];
const KM_A_ID: &str = "asn-a.km1@maf.example.com";
const KM_A: [u8; 32] = [0x41; 32];
/// Entity B, the registrar, and a MAF client allowed to retrieve keys of A and the Enrolee.
const ID_B: &str = "/id-in";
const KM_B_ID: &str = "in-cse.km1@maf.example.com";
const KM_B: [u8; 32] = [0x42; 32];
/// A second registrar, a MAF client too, never a target of A's keys.
const ID_B2: &str = "/id-in2";
const KM_B2_ID: &str = "in2-cse.km1@maf.example.com";
const KM_B2: [u8; 32] = [0x52; 32];
/// Entity C: configured at the MAF for /id-in2 only, while its own file names /id-in.
const ID_C: &str = "/id-asn-c";
const KM_C_ID: &str = "asn-c.km1@maf.example.com";
const KM_C: [u8; 32] = [0x61; 32];
const SUITES: [&str; 2] = ["TLS_PSK_WITH_AES_128_CCM", "TLS_PSK_WITH_AES_128_CCM_8"];
// ---------------------------------------------------------------------------------------------
// Processes

/// A port nothing listens on (a placeholder in a file).
fn closed_port() -> u16 {
    free_port()
}

fn run(args: &[&str], config: &Path) -> Run {
    let child = Command::new(BIN)
        .arg(args[0])
        .arg("--config")
        .arg(config)
        .args(&args[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn m2msec");
    finish(child, &format!("m2msec {}", args.join(" ")))
}

/// `m2msec associate --config <config> --framework <framework> --to <to> [extra...]`.
fn associate(config: &Path, framework: &str, to: &str, extra: &[&str]) -> Run {
    let mut args = vec!["associate", "--framework", framework, "--to", to];
    args.extend_from_slice(extra);
    run(&args, config)
}

// ---------------------------------------------------------------------------------------------
// Configuration files

fn mef_toml(listen_port: u16, maf_port: u16) -> String {
    format!(
        r#"role = "mef"
mefIdentifier = "{MEF}"

[[enrolee]]
[enrolee.credential]
kpmId = "{KPM_ID}"
kpm = "{kpm}"
[enrolee.instruction]
mafId = "{MAF_ID}"
enroleeId = "{ENROLEE}"

[service]
listen = "127.0.0.1:{listen_port}"
listenDtls = "127.0.0.1:{listen_port}"
store = "mef.redb"
kek = "{kek}"
keyLifetime = "1d"

[[service.maf]]
mafId = "{MAF_ID}"
mafUri = "https://localhost:{maf_port}"
pskIdentity = "{MAF_PSK_ID}"
psk = "{maf_psk}"
"#,
        kpm = hex::encode(KPM),
        kek = hex::encode(MEF_KEK),
        maf_psk = hex::encode(MAF_PSK),
    )
}

/// The MAF: clients A, B, B2 and C; first contact at the MEF on `mef_port` if given.
fn maf_toml(listen_port: u16, mef_port: Option<u16>) -> String {
    let client = |id: &str, km: [u8; 32], km_id: &str, peers: &[&str]| {
        let mut s = format!(
            "\n[[client]]\n[client.credential]\nthisEntityIdentifier = \"{id}\"\n\
             masterCredential = \"{}\"\nmasterCredentialIdentifier = \"{km_id}\"\n",
            hex::encode(km)
        );
        for p in peers {
            s += &format!("[[client.association]]\notherEntityIdentifier = \"{p}\"\n");
        }
        s
    };
    let mut s = format!("role = \"maf\"\nmafIdentifier = \"{MAF_ID}\"\n");
    s += &client(ID_A, KM_A, KM_A_ID, &[ID_B]);
    s += &client(ID_B, KM_B, KM_B_ID, &[ID_A, ENROLEE]);
    s += &client(ID_B2, KM_B2, KM_B2_ID, &[ID_A]);
    s += &client(ID_C, KM_C, KM_C_ID, &[ID_B2]);
    s += &format!(
        "\n[service]\nlisten = \"127.0.0.1:{listen_port}\"\nlistenDtls = \"127.0.0.1:{listen_port}\"\n\
         store = \"maf.redb\"\nkek = \"{}\"\nkeyLifetime = \"1h\"\n",
        hex::encode(MAF_KEK)
    );
    if let Some(port) = mef_port {
        s += &format!(
            "\n[service.mef]\nuri = \"https://localhost:{port}\"\npskIdentity = \"{MAF_PSK_ID}\"\n\
             psk = \"{}\"\n",
            hex::encode(MAF_PSK)
        );
    }
    s
}

/// A registrar (Entity B or B2): A pre-provisioned, A and the Enrolee MAF-based, Kc retrieved
/// from the MAF at `https://localhost:<maf_port>`.
fn registrar_toml(this: &str, km: [u8; 32], km_id: &str, maf_port: u16) -> String {
    format!(
        r#"role = "infrastructure-end-point"

[[preProvisioned]]
[preProvisioned.credential]
kpsaKey = "{kpsa}"
kpsaId = "{KPSA_ID}"
[preProvisioned.association]
otherEntityIdentifier = "{ID_A}"
securityAssociationLifespan = "24h"

[mafBased.credential]
mafIdentifier = "{MAF_ID}"
thisEntityIdentifier = "{this}"
masterCredential = "{km}"
masterCredentialIdentifier = "{km_id}"

[[mafBased.association]]
otherEntityIdentifier = "{ID_A}"
securityAssociationLifespan = "1h30m"

[[mafBased.association]]
otherEntityIdentifier = "{ENROLEE}"
securityAssociationLifespan = "12h"

[service]
listen = "127.0.0.1:0"
listenDtls = "127.0.0.1:0"
mafUri = "https://localhost:{maf_port}"
"#,
        kpsa = hex::encode(KPSA),
        km = hex::encode(km),
    )
}

/// What an Entity A file may vary.
struct EntityA<'a> {
    this: &'a str,
    kpsa: [u8; 32],
    kpsa_id: &'a str,
    km: [u8; 32],
    km_id: &'a str,
    master_expiry: &'a str,
    maf_port: u16,
}

impl EntityA<'_> {
    fn new(maf_port: u16) -> Self {
        Self {
            this: ID_A,
            kpsa: KPSA,
            kpsa_id: KPSA_ID,
            km: KM_A,
            km_id: KM_A_ID,
            master_expiry: "2036-01-01T00:00:00Z",
            maf_port,
        }
    }

    /// As `docs/examples/entity-a.toml`: the registrar /id-in both ways, no store.
    fn toml(&self) -> String {
        format!(
            r#"role = "field-end-point"

[[preProvisioned]]
[preProvisioned.credential]
kpsaKey = "{kpsa}"
kpsaId = "{kpsa_id}"
[preProvisioned.association]
thisEntityIdentifier = "{this}"
otherEntityIdentifier = "{ID_B}"
associationConfigurationExpiry = 2036-01-01T00:00:00Z
securityAssociationLifespan = "24h"

[mafBased.credential]
mafIdentifier = "{MAF_ID}"
thisEntityIdentifier = "{this}"
masterCredential = "{km}"
masterCredentialIdentifier = "{km_id}"
masterCredentialExpiry = {expiry}

[[mafBased.association]]
otherEntityIdentifier = "{ID_B}"
securityAssociationLifespan = "1h30m"

[service]
mafUri = "https://localhost:{maf_port}"
"#,
            kpsa = hex::encode(self.kpsa),
            kpsa_id = self.kpsa_id,
            this = self.this,
            km = hex::encode(self.km),
            km_id = self.km_id,
            expiry = self.master_expiry,
            maf_port = self.maf_port,
        )
    }
}

/// The Enrolee, as `docs/examples/enrolee.toml`, its keys in `enrolee.redb`.
fn enrolee_toml(mef_uri: &str) -> String {
    format!(
        r#"role = "field-end-point"

[bootstrap.credential]
kpmId = "{KPM_ID}"
kpm = "{kpm}"
mefUri = "{mef_uri}"

[bootstrap.instruction]
mafId = "{MAF_ID}"
enroleeId = "{ENROLEE}"

[[mafBased.association]]
otherEntityIdentifier = "{ID_B}"
associationConfigurationExpiry = 2036-01-01T00:00:00Z
securityAssociationLifespan = "12h"

[service]
store = "enrolee.redb"
kek = "{kek}"
"#,
        kpm = hex::encode(KPM),
        kek = hex::encode(ENROLEE_KEK),
    )
}

// ---------------------------------------------------------------------------------------------
// The output contract

/// `key=value key=value ...` after `prefix`, checking the keys and their order.
fn fields(line: &str, prefix: &str, keys: &[&str]) -> BTreeMap<String, String> {
    let rest = line
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("not a {prefix:?} line: {line:?}"));
    let pairs: Vec<(&str, &str)> = rest
        .split(' ')
        .map(|kv| {
            kv.split_once('=')
                .unwrap_or_else(|| panic!("{kv:?} is not key=value in {line:?}"))
        })
        .collect();
    let got: Vec<&str> = pairs.iter().map(|(k, _)| *k).collect();
    assert_eq!(got, keys, "{line}");
    pairs
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// A KcID: 32 upper-case hex digits @ the MAF's FQDN.
fn assert_kc_id(s: &str) {
    let (relative, fqdn) = s.split_once('@').unwrap_or_else(|| panic!("{s}"));
    assert_eq!(fqdn, MAF_ID, "{s}");
    assert_eq!(relative.len(), 32, "{s}");
    assert!(
        relative
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)),
        "{s}"
    );
    KeyId::parse(IdKind::Kc, s).unwrap_or_else(|e| panic!("{s}: {e:?}"));
}

/// A KmID the MAF assigned.
fn assert_km_id(s: &str) {
    let id = KeyId::parse(IdKind::Km, s).unwrap_or_else(|e| panic!("{s}: {e:?}"));
    assert_eq!(id.fqdn(), MAF_ID, "{s}");
}

/// A successful `associate`.
#[derive(Debug)]
struct Associated {
    /// The `km-id:` line, if there was one.
    km_id: Option<String>,
    /// The `associated:` line's fields.
    f: BTreeMap<String, String>,
}

impl Associated {
    fn key_id(&self) -> &str {
        &self.f["key-id"]
    }
}

/// Checks a successful `associate` of `this` with `framework` over `transport` (TLS / DTLS) and
/// returns its lines, parsed.
fn associated(r: &Run, framework: &str, transport: &str, this: &str) -> Associated {
    assert_eq!(
        r.code,
        Some(0),
        "associate failed: stdout {:?} stderr {:?}",
        r.stdout,
        r.stderr
    );
    assert!(!r.stderr.contains("error:"), "{:?}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    let (km_id, line) = match lines.as_slice() {
        [line] => (None, *line),
        [km, line] => {
            let km = km
                .strip_prefix("km-id: ")
                .unwrap_or_else(|| panic!("not a km-id line: {km:?}"));
            assert_km_id(km);
            (Some(km.to_owned()), *line)
        }
        _ => panic!("associate stdout {:?}", r.stdout),
    };
    let f = fields(
        line,
        "associated: ",
        &[
            "framework",
            "transport",
            "suite",
            "this-entity",
            "bound-identity",
            "key-id",
            "deadline",
        ],
    );
    assert_eq!(f["framework"], framework, "{line}");
    assert_eq!(f["transport"], transport, "{line}");
    assert!(SUITES.contains(&f["suite"].as_str()), "{line}");
    assert_eq!(f["this-entity"], this, "{line}");
    assert_eq!(f["bound-identity"], f["this-entity"], "{line}");
    match framework {
        "pre-provisioned" => assert_eq!(f["key-id"], KPSA_ID, "{line}"),
        _ => assert_kc_id(&f["key-id"]),
    }
    let deadline: u64 = f["deadline"].parse().expect("deadline in Unix seconds");
    assert!(deadline > now(), "{line}");
    Associated { km_id, f }
}

/// The registrar's lines for a successful `associate`: `association:` with the same fields as
/// the client's `associated:`, then `closed: ... reason=PeerClosed`.
fn registrar_saw(reg: &Server, a: &Associated) {
    let line = reg.next_line();
    let f = fields(
        &line,
        "association: ",
        &[
            "framework",
            "transport",
            "suite",
            "bound-identity",
            "key-id",
            "deadline",
        ],
    );
    for (k, v) in &f {
        assert_eq!(v, &a.f[k], "{k} in {line} vs {:?}", a.f);
    }
    let closed = reg.next_line();
    assert_eq!(
        closed,
        format!(
            "closed: transport={} bound-identity={} reason=PeerClosed",
            a.f["transport"], a.f["bound-identity"]
        )
    );
}

/// A refused client: exit status 1, nothing on stdout, exactly one `error:` line; returns it.
fn refused(r: &Run, what: &str) -> String {
    assert_eq!(
        r.code,
        Some(1),
        "{what}: stdout {:?} stderr {:?}",
        r.stdout,
        r.stderr
    );
    assert_eq!(r.stdout, "", "{what}");
    let errors: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("error:"))
        .collect();
    assert_eq!(errors.len(), 1, "{what}: {:?}", r.stderr);
    errors[0].to_owned()
}

/// The registrar's `refused:` line: transport, identity and reason as expected.
fn registrar_refused(reg: &Server, transport: &str, identity: &str, reason: &str) {
    let line = reg.next_line();
    let f = fields(
        &line,
        "refused: ",
        &["transport", "peer", "identity", "reason"],
    );
    assert_eq!(f["transport"], transport, "{line}");
    assert_eq!(f["identity"], identity, "{line}");
    assert_eq!(f["reason"], reason, "{line}");
}

/// Opens a stopped server's store, authenticates every record and returns how many there are.
async fn records(store_file: PathBuf, kek: [u8; 32]) -> usize {
    tokio::task::spawn_blocking(move || {
        RedbKeyStore::open(store_file, Kek::new(kek))
            .unwrap()
            .verify_all()
            .unwrap()
    })
    .await
    .unwrap()
}

/// The PSK identity the Enrolee's store holds for the MAF (its KmID after first contact).
async fn enrolee_maf_identity(store_file: PathBuf) -> String {
    let store = tokio::task::spawn_blocking(move || {
        RedbKeyStore::open(store_file, Kek::new(ENROLEE_KEK)).unwrap()
    })
    .await
    .unwrap();
    let rec = store.get(KM_SLOT).await.unwrap().expect("a Km slot");
    assert_eq!(rec.targets.len(), 2, "{:?}", rec.targets);
    assert_eq!(rec.targets[1], MAF_ID);
    rec.targets[0].clone()
}

fn creds(origin: &str, km: [u8; 32], km_id: &str) -> MafCredentials {
    MafCredentials {
        maf_fqdn: MAF_ID.into(),
        psk_identity: km_id.into(),
        key: Km::new(km),
        origin: origin.into(),
    }
}

fn enrolled(r: &Run, transport: &str) -> String {
    assert_eq!(r.code, Some(0), "enrol: {:?}", r.stderr);
    let line = r.stdout.lines().next().unwrap_or_default();
    let f = fields(
        line,
        "enrolled: ",
        &["ke-id", "maf-id", "maf-uri", "expires", "transport"],
    );
    assert_eq!(f["transport"], transport, "{line}");
    assert_eq!(f["maf-id"], MAF_ID, "{line}");
    f["ke-id"].clone()
}

// ---------------------------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn pre_provisioned_over_tls_and_dtls() {
    let dir = TempDir::new("pre");
    let reg = Server::start(
        "registrar",
        &dir.write(
            "b.toml",
            &registrar_toml(ID_B, KM_B, KM_B_ID, closed_port()),
        ),
    );
    let a = dir.write("a.toml", &EntityA::new(closed_port()).toml());
    for (to, transport) in [(reg.https(), "TLS"), (reg.coaps(), "DTLS")] {
        let r = associate(&a, "pre-provisioned", &to, &[]);
        let got = associated(&r, "pre-provisioned", transport, ID_A);
        assert_eq!(got.km_id, None);
        registrar_saw(&reg, &got);
    }
    // --peer names the configured peer explicitly.
    let r = associate(&a, "pre-provisioned", &reg.https(), &["--peer", ID_B]);
    registrar_saw(&reg, &associated(&r, "pre-provisioned", "TLS", ID_A));
    reg.sigterm();
}

#[tokio::test]
async fn maf_based_entity_a_over_every_transport() {
    let dir = TempDir::new("maf-based");
    let maf = Server::start("maf", &dir.write("maf.toml", &maf_toml(0, None)));
    let reg = Server::start(
        "registrar",
        &dir.write(
            "b.toml",
            &registrar_toml(ID_B, KM_B, KM_B_ID, maf.tls.port()),
        ),
    );
    let a = dir.write("a.toml", &EntityA::new(maf.tls.port()).toml());
    let maf_dtls = format!("coaps://localhost:{}", maf.dtls.port());
    let maf_coaps = maf.coaps();
    let mut kc_ids = Vec::new();
    for (maf_arg, to, transport) in [
        (None, reg.https(), "TLS"),
        (None, reg.coaps(), "DTLS"),
        (Some(maf_dtls.as_str()), reg.https(), "TLS"),
        (Some(maf_coaps.as_str()), reg.coaps(), "DTLS"),
    ] {
        let extra: Vec<&str> = maf_arg.map(|m| vec!["--maf", m]).unwrap_or_default();
        let r = associate(&a, "maf-based", &to, &extra);
        let got = associated(&r, "maf-based", transport, ID_A);
        assert_eq!(got.km_id, None, "a configured Km needs no first contact");
        registrar_saw(&reg, &got);
        kc_ids.push(got.key_id().to_owned());
    }
    let mut distinct = kc_ids.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), kc_ids.len(), "{kc_ids:?}");
    // Each Kc is still released to its target B, with A as its source.
    for kc_id in &kc_ids {
        let id = KeyId::parse(IdKind::Kc, kc_id).unwrap();
        let (_, source, expires) = timeout(
            LIMIT,
            retrieve_key(maf.tls, &creds(ID_B, KM_B, KM_B_ID), id.relative()),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(source, ID_A);
        assert!(expires > now(), "{kc_id}");
    }
    reg.sigterm();
    maf.sigterm();
    assert_eq!(records(dir.path("maf.redb"), MAF_KEK).await, kc_ids.len());
}

#[tokio::test]
async fn enrolee_bootstrap_first_contact_then_stored_km_id() {
    let dir = TempDir::new("enrolee");
    // The MAF's port is chosen first: the MEF returns it to the Enrolee as mafURI.
    let maf_port = free_port();
    let mef = Server::start("mef", &dir.write("mef.toml", &mef_toml(0, maf_port)));
    let maf = Server::start(
        "maf",
        &dir.write("maf.toml", &maf_toml(maf_port, Some(mef.tls.port()))),
    );
    let reg = Server::start(
        "registrar",
        &dir.write("b.toml", &registrar_toml(ID_B, KM_B, KM_B_ID, maf_port)),
    );
    let e = dir.write(
        "enrolee.toml",
        &enrolee_toml(&format!("https://localhost:{}", mef.tls.port())),
    );
    let store = dir.path("enrolee.redb");

    // Enrol over TLS; first contact (the MAF at the stored mafURI, TLS), association over DTLS.
    let ke_id = enrolled(&run(&["enrol"], &e), "TLS");
    assert_eq!(enrolee_maf_identity(store.clone()).await, ke_id);
    let first = associated(
        &associate(&e, "maf-based", &reg.coaps(), &[]),
        "maf-based",
        "DTLS",
        ENROLEE,
    );
    registrar_saw(&reg, &first);
    let km_id = first.km_id.clone().expect("first contact prints km-id");
    assert_eq!(enrolee_maf_identity(store.clone()).await, km_id);
    // Again, the MAF over DTLS, the registrar over TLS: the stored KmID, no km-id line.
    let second = associated(
        &associate(&e, "maf-based", &reg.https(), &["--maf", &maf.coaps()]),
        "maf-based",
        "TLS",
        ENROLEE,
    );
    registrar_saw(&reg, &second);
    assert_eq!(second.km_id, None);
    assert_ne!(second.key_id(), first.key_id());
    assert_eq!(enrolee_maf_identity(store.clone()).await, km_id);

    // Vice versa: enrol again over DTLS (a new KeID replaces the Enrolee's slots), first contact
    // over DTLS, association over TLS; then again over DTLS with the new stored KmID.
    let ke_id2 = enrolled(&run(&["enrol", "--mef", &mef.coaps()], &e), "DTLS");
    assert_ne!(ke_id2, ke_id);
    assert_eq!(enrolee_maf_identity(store.clone()).await, ke_id2);
    let third = associated(
        &associate(&e, "maf-based", &reg.https(), &["--maf", &maf.coaps()]),
        "maf-based",
        "TLS",
        ENROLEE,
    );
    registrar_saw(&reg, &third);
    let km_id2 = third.km_id.clone().expect("first contact of the new Ke");
    assert_ne!(km_id2, km_id);
    assert_eq!(enrolee_maf_identity(store.clone()).await, km_id2);
    let fourth = associated(
        &associate(&e, "maf-based", &reg.coaps(), &[]),
        "maf-based",
        "DTLS",
        ENROLEE,
    );
    registrar_saw(&reg, &fourth);
    assert_eq!(fourth.km_id, None);
    assert_eq!(enrolee_maf_identity(store.clone()).await, km_id2);

    reg.sigterm();
    maf.sigterm();
    mef.sigterm();
    assert_eq!(records(dir.path("mef.redb"), MEF_KEK).await, 2);
    // The MAF: 4 Kc, and per first contact the Km fetched under the KeID and the same Km under
    // the KmID it assigned.
    assert_eq!(records(dir.path("maf.redb"), MAF_KEK).await, 4 + 2 * 2);
}

#[tokio::test]
async fn refusals_exit_1_name_the_cause_and_store_nothing() {
    let dir = TempDir::new("refusals");
    let maf = Server::start("maf", &dir.write("maf.toml", &maf_toml(0, None)));
    let port = maf.tls.port();
    let reg = Server::start(
        "registrar",
        &dir.write("b.toml", &registrar_toml(ID_B, KM_B, KM_B_ID, port)),
    );
    let reg2 = Server::start(
        "registrar",
        &dir.write("b2.toml", &registrar_toml(ID_B2, KM_B2, KM_B2_ID, port)),
    );

    // Wrong Kpsa over TLS: bad_record_mac, the registrar saw the handshake fail.
    let mut e = EntityA::new(port);
    e.kpsa[31] ^= 1;
    let f = dir.write("wrong-kpsa.toml", &e.toml());
    let line = refused(
        &associate(&f, "pre-provisioned", &reg.https(), &[]),
        "wrong Kpsa",
    );
    assert!(line.contains("association"), "{line}");
    assert!(line.contains("bad_record_mac"), "{line}");
    registrar_refused(&reg, "TLS", KPSA_ID, "HandshakeFailed");

    // An unknown kpsaId, over TLS and DTLS.
    let mut e = EntityA::new(port);
    e.kpsa_id = "nobody.in@sp.example.com";
    let f = dir.write("unknown-kpsa-id.toml", &e.toml());
    for (to, transport) in [(reg.https(), "TLS"), (reg.coaps(), "DTLS")] {
        let line = refused(
            &associate(&f, "pre-provisioned", &to, &[]),
            "unknown kpsaId",
        );
        assert!(line.contains("unknown_psk_identity"), "{line}");
        registrar_refused(&reg, transport, e.kpsa_id, "UnknownIdentity");
    }

    // Entity C's file names /id-in, the MAF allows it /id-in2 only: keyRegistration is
    // refused with 4103 before any handshake with the registrar.
    let mut e = EntityA::new(port);
    e.this = ID_C;
    e.km = KM_C;
    e.km_id = KM_C_ID;
    let f = dir.write("c.toml", &e.toml());
    for maf_uri in [maf.https(), maf.coaps()] {
        let line = refused(
            &associate(&f, "maf-based", &reg.https(), &["--maf", &maf_uri]),
            "target not configured at the MAF",
        );
        assert!(line.contains("key registration"), "{line}");
        assert!(line.contains("4103"), "{line}");
    }

    // A's Kc targets /id-in; the registrar /id-in2 (a MAF client too) may not retrieve it.
    let a = dir.write("a.toml", &EntityA::new(port).toml());
    let line = refused(
        &associate(&a, "maf-based", &reg2.https(), &[]),
        "registrar not a target",
    );
    assert!(line.contains("association"), "{line}");
    let refusal = reg2.next_line();
    let f = fields(
        &refusal,
        "refused: ",
        &["transport", "peer", "identity", "reason"],
    );
    assert_eq!(f["reason"], "Retrieval", "{refusal}");
    assert_kc_id(&f["identity"]);

    // An expired masterCredentialExpiry: refused at start, naming the parameter.
    let mut e = EntityA::new(port);
    e.master_expiry = "2001-01-01T00:00:00Z";
    let f = dir.write("expired.toml", &e.toml());
    let line = refused(
        &associate(&f, "maf-based", &reg.https(), &[]),
        "expired master credential",
    );
    assert!(line.contains("masterCredentialExpiry"), "{line}");
    assert!(line.contains("expired.toml"), "{line}");

    // The registrars saw nothing else; one good association still works.
    reg.no_line(Duration::from_millis(100));
    reg2.no_line(Duration::from_millis(10));
    let ok = associated(
        &associate(&a, "maf-based", &reg.https(), &[]),
        "maf-based",
        "TLS",
        ID_A,
    );
    registrar_saw(&reg, &ok);

    reg.sigterm();
    reg2.sigterm();
    maf.sigterm();
    // Two Kc: the one /id-in2 could not retrieve, and the good one. The refusals stored nothing.
    assert_eq!(records(dir.path("maf.redb"), MAF_KEK).await, 2);
}

#[tokio::test]
async fn maf_restart_keeps_kc_and_km_id() {
    let dir = TempDir::new("maf-restart");
    let maf_port = free_port();
    let mef = Server::start("mef", &dir.write("mef.toml", &mef_toml(0, maf_port)));
    let maf_file = dir.write("maf.toml", &maf_toml(maf_port, Some(mef.tls.port())));
    let maf = Server::start("maf", &maf_file);
    let reg = Server::start(
        "registrar",
        &dir.write("b.toml", &registrar_toml(ID_B, KM_B, KM_B_ID, maf_port)),
    );
    let a = dir.write("a.toml", &EntityA::new(maf_port).toml());
    let e = dir.write(
        "enrolee.toml",
        &enrolee_toml(&format!("https://localhost:{}", mef.tls.port())),
    );

    // Before the restart: A associates; A registers one more Kc (the library client) without
    // associating yet; the Enrolee enrols and makes its first contact.
    let before = associated(
        &associate(&a, "maf-based", &reg.https(), &[]),
        "maf-based",
        "TLS",
        ID_A,
    );
    registrar_saw(&reg, &before);
    let (kc_id, kc, kc_expires) = timeout(
        LIMIT,
        register_key(maf.tls, &creds(ID_A, KM_A, KM_A_ID), &[ID_B], now() + 3600),
    )
    .await
    .unwrap()
    .unwrap();
    enrolled(&run(&["enrol"], &e), "TLS");
    let first = associated(
        &associate(&e, "maf-based", &reg.coaps(), &[]),
        "maf-based",
        "DTLS",
        ENROLEE,
    );
    registrar_saw(&reg, &first);
    let km_id = first.km_id.clone().expect("km-id at first contact");

    maf.sigterm();
    let maf = Server::start("maf", &maf_file);
    assert_eq!(maf.tls.port(), maf_port);

    // The Kc registered before the restart keys an association now (the registrar retrieves it
    // from the restarted MAF).
    let mut conn = timeout(LIMIT, associate_maf(reg.dtls, Transport::Dtls, &kc_id, &kc))
        .await
        .unwrap()
        .unwrap();
    let info = conn.association_info(ID_A).await.unwrap();
    assert_eq!(info.bound_identity, ID_A);
    assert_eq!(info.key_identifier, kc_id.as_str());
    assert!(info.expiration_time.is_some_and(|t| t <= kc_expires));
    conn.close().await.unwrap();
    let line = reg.next_line();
    assert!(
        line.starts_with("association: framework=maf-based transport=DTLS "),
        "{line}"
    );
    assert!(
        line.contains(&format!("key-id={}", kc_id.as_str())),
        "{line}"
    );
    assert!(reg.next_line().starts_with("closed: transport=DTLS"));
    // The Kc of the first `associate` too is still released to B.
    let before_id = KeyId::parse(IdKind::Kc, before.key_id()).unwrap();
    let (_, source, _) = timeout(
        LIMIT,
        retrieve_key(maf.tls, &creds(ID_B, KM_B, KM_B_ID), before_id.relative()),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(source, ID_A);

    // Both clients associate again; the Enrolee with its stored KmID (no km-id line).
    let again = associated(
        &associate(&a, "maf-based", &reg.coaps(), &[]),
        "maf-based",
        "DTLS",
        ID_A,
    );
    registrar_saw(&reg, &again);
    let enrolee_again = associated(
        &associate(&e, "maf-based", &reg.https(), &["--maf", &maf.coaps()]),
        "maf-based",
        "TLS",
        ENROLEE,
    );
    registrar_saw(&reg, &enrolee_again);
    assert_eq!(enrolee_again.km_id, None);
    assert_eq!(enrolee_maf_identity(dir.path("enrolee.redb")).await, km_id);

    reg.sigterm();
    maf.sigterm();
    mef.sigterm();
}

#[tokio::test]
async fn mef_restart_between_enrolment_and_first_contact() {
    let dir = TempDir::new("mef-restart");
    let (mef_port, maf_port) = (free_port(), free_port());
    let mef_file = dir.write("mef.toml", &mef_toml(mef_port, maf_port));
    let mef = Server::start("mef", &mef_file);
    let maf = Server::start(
        "maf",
        &dir.write("maf.toml", &maf_toml(maf_port, Some(mef_port))),
    );
    let reg = Server::start(
        "registrar",
        &dir.write("b.toml", &registrar_toml(ID_B, KM_B, KM_B_ID, maf_port)),
    );
    let e = dir.write(
        "enrolee.toml",
        &enrolee_toml(&format!("coaps://localhost:{mef_port}")),
    );
    let ke_id = enrolled(&run(&["enrol"], &e), "DTLS");

    mef.sigterm();
    let mef = Server::start("mef", &mef_file);
    assert_eq!(mef.tls.port(), mef_port);

    // First contact: the MAF fetches Km for the KeID from the restarted MEF.
    let first = associated(
        &associate(&e, "maf-based", &reg.https(), &[]),
        "maf-based",
        "TLS",
        ENROLEE,
    );
    registrar_saw(&reg, &first);
    let km_id = first.km_id.clone().expect("km-id at first contact");
    assert_ne!(km_id, ke_id);
    assert_eq!(enrolee_maf_identity(dir.path("enrolee.redb")).await, km_id);

    reg.sigterm();
    maf.sigterm();
    mef.sigterm();
    assert_eq!(records(dir.path("mef.redb"), MEF_KEK).await, 1);
}
