//! `m2msec mef` and `m2msec enrol` as real processes, configured by TOML files in a temporary
//! directory: the output contract (`listening: ...`, `enrolled: ...`, `error: ...` with exit
//! status 1), refusals that leave every stored key unchanged, configuration refused at start,
//! a MEF restart between Enrolments, and SIGTERM.
//!
//! The MEF's keys are checked from outside: as the MAF (`fetch_km` over TLS or DTLS, Km compared
//! with the one the Enrolee derived and stored) and, once the MEF has stopped, by opening its
//! redb store here and counting and authenticating every record.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use m2msec::keys::{self, Ke, KeyId, Km};
use m2msec::{ClientPsk, Psk};
use m2msec_tokio::frameworks::mef::{fetch_km, fetch_km_dtls};
use m2msec_tokio::node::{stored_enrolment, KM_SLOT};
use m2msec_tokio::store::{AsyncKeyStore, Kek, RedbKeyStore};
use tokio::time::timeout;

mod common;
use common::{finish, now, Run, Server, TempDir, BIN, LIMIT};

const MEF: &str = "mef.example.com";
const MAF_ID: &str = "maf.example.com";
const MAF_URI: &str = "https://localhost:7002";
const MAF_PSK_ID: &str = "maf.example.com@mef.example.com";
const MAF_PSK: [u8; 32] = [0x5a; 32];
/// A second MAF in the MEF's directory, for which no Enrolee is provisioned.
const MAF2_ID: &str = "maf2.example.com";
const MAF2_PSK_ID: &str = "maf2.example.com@mef.example.com";
const MAF2_PSK: [u8; 32] = [0x5b; 32];
const MEF_KEK: [u8; 32] = [0x42; 32];
const ENROLEE_KEK: [u8; 32] = [0x43; 32];
const KPM_ID: &str = "mn-e.kpm1@mef.example.com";
const KPM: [u8; 32] = [0x11; 32];
const ENROLEE: &str = "/id-mn-e";
/// One day, the MEF's keyLifetime.
const KEY_LIFETIME: u64 = 86_400;
/// A MEF file: the Enrolee [`ENROLEE`] provisioned for [`MAF_ID`]; both MAFs in the directory;
/// TLS and DTLS on ephemeral ports; `service_store` is the `store = ...` line, or empty.
fn mef_toml(service_store: &str) -> String {
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
listen = "127.0.0.1:0"
listenDtls = "127.0.0.1:0"
{service_store}
kek = "{kek}"
keyLifetime = "1d"

[[service.maf]]
mafId = "{MAF_ID}"
mafUri = "{MAF_URI}"
pskIdentity = "{MAF_PSK_ID}"
psk = "{maf_psk}"

[[service.maf]]
mafId = "{MAF2_ID}"
mafUri = "https://localhost:7003"
pskIdentity = "{MAF2_PSK_ID}"
psk = "{maf2_psk}"
"#,
        kpm = hex::encode(KPM),
        kek = hex::encode(MEF_KEK),
        maf_psk = hex::encode(MAF_PSK),
        maf2_psk = hex::encode(MAF2_PSK),
    )
}

/// What an Enrolee file may vary.
struct Enrolee<'a> {
    kpm: [u8; 32],
    maf_id: &'a str,
    mef_uri: String,
    association_expiry: &'a str,
    master_credential_expiry: Option<&'a str>,
}

impl Enrolee<'_> {
    fn new(mef_uri: String) -> Self {
        Self {
            kpm: KPM,
            maf_id: MAF_ID,
            mef_uri,
            association_expiry: "2036-01-01T00:00:00Z",
            master_credential_expiry: None,
        }
    }

    /// The file: as `docs/examples/enrolee.toml`, with its keys in `enrolee.redb`.
    fn toml(&self) -> String {
        let mut s = format!(
            r#"role = "field-end-point"

[bootstrap.credential]
kpmId = "{KPM_ID}"
kpm = "{kpm}"
mefUri = "{mef_uri}"

[bootstrap.instruction]
mafId = "{maf_id}"
enroleeId = "{ENROLEE}"

[[mafBased.association]]
otherEntityIdentifier = "/id-in"
associationConfigurationExpiry = {expiry}
securityAssociationLifespan = "12h"
"#,
            kpm = hex::encode_upper(self.kpm),
            mef_uri = self.mef_uri,
            maf_id = self.maf_id,
            expiry = self.association_expiry,
        );
        if let Some(expiry) = self.master_credential_expiry {
            s += &format!(
                r#"
[mafBased.credential]
mafIdentifier = "{MAF_ID}"
thisEntityIdentifier = "{ENROLEE}"
masterCredential = "{km}"
masterCredentialIdentifier = "0123456789ABCDEF@{MAF_ID}"
masterCredentialExpiry = {expiry}
"#,
                km = hex::encode([0x77; 32]),
            );
        }
        s += &format!(
            "\n[service]\nstore = \"enrolee.redb\"\nkek = \"{}\"\n",
            hex::encode(ENROLEE_KEK)
        );
        s
    }
}

fn run_enrol(config: &Path, mef: Option<&str>) -> Run {
    let mut cmd = Command::new(BIN);
    cmd.args(["enrol", "--config"]).arg(config);
    if let Some(m) = mef {
        cmd.args(["--mef", m]);
    }
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn m2msec enrol");
    finish(child, "m2msec enrol")
}

/// A refusal: exit status 1, nothing on stdout, one `error:` line on stderr; returns it.
fn refused(r: &Run, what: &str) -> String {
    assert_eq!(
        r.code,
        Some(1),
        "{what}: stdout {:?} stderr {:?}",
        r.stdout,
        r.stderr
    );
    assert!(
        !r.stdout.contains("enrolled:"),
        "{what}: stdout {:?}",
        r.stdout
    );
    let line = r
        .stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("{what}: no error line in {:?}", r.stderr))
        .to_owned();
    assert_eq!(
        r.stderr.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{what}: {:?}",
        r.stderr
    );
    line
}

/// The `enrolled:` line, parsed.
#[derive(Debug)]
struct Enrolled {
    ke_id: String,
    maf_id: String,
    maf_uri: String,
    expires: u64,
    transport: String,
}

fn enrolled(r: &Run) -> Enrolled {
    assert_eq!(r.code, Some(0), "enrol failed: {:?}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "stdout {:?}", r.stdout);
    let rest = lines[0]
        .strip_prefix("enrolled: ")
        .unwrap_or_else(|| panic!("not an enrolled line: {:?}", lines[0]));
    let fields: Vec<(&str, &str)> = rest
        .split(' ')
        .map(|kv| kv.split_once('=').expect("key=value"))
        .collect();
    let keys: Vec<&str> = fields.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        keys,
        ["ke-id", "maf-id", "maf-uri", "expires", "transport"],
        "{rest}"
    );
    let e = Enrolled {
        ke_id: fields[0].1.to_owned(),
        maf_id: fields[1].1.to_owned(),
        maf_uri: fields[2].1.to_owned(),
        expires: fields[3].1.parse().expect("expires is Unix seconds"),
        transport: fields[4].1.to_owned(),
    };
    assert!(e.ke_id.ends_with("@mef.example.com"), "{e:?}");
    let relative = e.ke_id.strip_suffix("@mef.example.com").unwrap();
    assert_eq!(relative.len(), 32, "{e:?}");
    assert!(
        relative
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)),
        "{e:?}"
    );
    assert_eq!(e.maf_id, MAF_ID);
    assert_eq!(e.maf_uri, MAF_URI);
    let t = now();
    assert!(
        e.expires > t + KEY_LIFETIME - 120 && e.expires <= t + KEY_LIFETIME + 5,
        "{e:?} at {t}"
    );
    e
}

/// What the Enrolee stored: (KeID, Ke, Km), after checking the two slots agree.
async fn enrolee_keys(store_file: PathBuf) -> (KeyId, Ke, Km) {
    let store = tokio::task::spawn_blocking(move || {
        RedbKeyStore::open(store_file, Kek::new(ENROLEE_KEK)).unwrap()
    })
    .await
    .unwrap();
    let (ke_id, ke, maf_id, maf_uri, _) = stored_enrolment(&store).await.unwrap().unwrap();
    assert_eq!((maf_id.as_str(), maf_uri.as_str()), (MAF_ID, MAF_URI));
    let km_rec = store.get(KM_SLOT).await.unwrap().unwrap();
    let km = keys::km(&ke, MAF_ID);
    assert_eq!(km_rec.secret.expose(), km.expose());
    assert_eq!(
        km_rec.targets,
        vec![ke_id.as_str().to_owned(), MAF_ID.into()]
    );
    (ke_id, ke, km)
}

/// As the MAF over TLS: the Km the MEF releases for `ke_id`.
async fn released(addr: SocketAddr, ke_id: &KeyId) -> Result<Km, String> {
    let psk = ClientPsk::new(MAF_PSK_ID.as_bytes(), Psk::new(&MAF_PSK).unwrap()).unwrap();
    timeout(LIMIT, fetch_km(addr, psk, ke_id, MAF_ID, Some(MEF)))
        .await
        .expect("fetchCredentials timed out")
        .map(|f| {
            assert_eq!(f.enrolee_id, ENROLEE);
            f.km
        })
        .map_err(|e| e.to_string())
}

/// Opens a stopped MEF's store, authenticates every record and returns how many there are.
async fn mef_records(store_file: PathBuf) -> usize {
    tokio::task::spawn_blocking(move || {
        RedbKeyStore::open(store_file, Kek::new(MEF_KEK))
            .unwrap()
            .verify_all()
            .unwrap()
    })
    .await
    .unwrap()
}

const STORE: &str = "store = \"mef.redb\"";

#[tokio::test]
async fn enrol_over_tls_and_dtls_prints_the_contract_line() {
    let dir = TempDir::new("contract");
    let mef = Server::start("mef", &dir.write("mef.toml", &mef_toml(STORE)));

    // TLS through the file's mefUri (a DNS name: also the SNI).
    let uri = format!("https://localhost:{}", mef.tls.port());
    let config = dir.write("enrolee.toml", &Enrolee::new(uri).toml());
    let tls = enrolled(&run_enrol(&config, None));
    assert_eq!(tls.transport, "TLS");
    let (ke_id, _, km) = enrolee_keys(dir.path("enrolee.redb")).await;
    assert_eq!(ke_id.as_str(), tls.ke_id);
    assert_eq!(released(mef.tls, &ke_id).await.unwrap(), km);

    // DTLS with --mef overriding the file; a new Enrolment replaces the Enrolee's slots.
    let coaps = format!("coaps://127.0.0.1:{}", mef.dtls.port());
    let dtls = enrolled(&run_enrol(&config, Some(&coaps)));
    assert_eq!(dtls.transport, "DTLS");
    assert_ne!(dtls.ke_id, tls.ke_id);
    let (ke_id2, _, km2) = enrolee_keys(dir.path("enrolee.redb")).await;
    assert_eq!(ke_id2.as_str(), dtls.ke_id);
    let psk = ClientPsk::new(MAF_PSK_ID.as_bytes(), Psk::new(&MAF_PSK).unwrap()).unwrap();
    let got = timeout(
        LIMIT,
        fetch_km_dtls(mef.dtls, psk, &ke_id2, MAF_ID, Some(MEF)),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(got.km, km2);
    // The first Enrolment is still valid at the MEF.
    assert_eq!(released(mef.tls, &ke_id).await.unwrap(), km);

    assert_eq!(mef.sigterm_status().code(), Some(0));
    assert_eq!(mef_records(dir.path("mef.redb")).await, 2);
}

#[tokio::test]
async fn refusals_exit_1_and_leave_the_stored_keys_unchanged() {
    let dir = TempDir::new("refusals");
    let mef = Server::start("mef", &dir.write("mef.toml", &mef_toml(STORE)));
    let uri = format!("https://localhost:{}", mef.tls.port());
    let good = dir.write("enrolee.toml", &Enrolee::new(uri.clone()).toml());
    let first = enrolled(&run_enrol(&good, None));
    let (ke_id, ke, km) = enrolee_keys(dir.path("enrolee.redb")).await;
    assert_eq!(ke_id.as_str(), first.ke_id);

    // Wrong Kpm: the handshake fails, nothing is stored on either side.
    let mut wrong_kpm = Enrolee::new(uri.clone());
    wrong_kpm.kpm[31] ^= 1;
    let f = dir.write("wrong-kpm.toml", &wrong_kpm.toml());
    let line = refused(&run_enrol(&f, None), "wrong Kpm");
    assert!(line.contains("enrolment"), "{line}");
    // (Not over DTLS here: the MEF discards the undecryptable Finished silently, RFC 6347
    // 4.1.2.7, so the Enrolee only fails at its handshake timeout, 30 s.)
    let coaps = format!("coaps://127.0.0.1:{}", mef.dtls.port());

    // A MAF-ID the MEF knows but does not allow for this Enrolee: 4103 naming mafID.
    let mut other_maf = Enrolee::new(uri.clone());
    other_maf.maf_id = MAF2_ID;
    let f = dir.write("other-maf.toml", &other_maf.toml());
    let line = refused(&run_enrol(&f, None), "MAF-ID not allowed");
    assert!(line.contains("4103"), "{line}");
    assert!(line.contains("mafID"), "{line}");
    let line = refused(&run_enrol(&f, Some(&coaps)), "MAF-ID not allowed over DTLS");
    assert!(line.contains("4103"), "{line}");

    // The first Enrolment still releases its Km; the Enrolee's store still holds it.
    assert_eq!(released(mef.tls, &ke_id).await.unwrap(), km);
    let (ke_id_after, ke_after, km_after) = enrolee_keys(dir.path("enrolee.redb")).await;
    assert_eq!(ke_id_after, ke_id);
    assert_eq!(ke_after.expose(), ke.expose());
    assert_eq!(km_after, km);

    // The MEF stored nothing for the refused attempts.
    assert_eq!(mef.sigterm_status().code(), Some(0));
    assert_eq!(mef_records(dir.path("mef.redb")).await, 1);
}

#[tokio::test]
async fn expired_configuration_is_refused_at_start() {
    let dir = TempDir::new("expired");
    // Nothing listens there: a refusal must come from the configuration, before any connection.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let uri = format!("https://localhost:{closed}");

    let mut e = Enrolee::new(uri.clone());
    e.association_expiry = "2001-01-01T00:00:00Z";
    let f = dir.write("association.toml", &e.toml());
    let line = refused(&run_enrol(&f, None), "expired association");
    assert!(line.contains("associationConfigurationExpiry"), "{line}");
    assert!(line.contains("mafBased.association[0]"), "{line}");
    assert!(line.contains("association.toml"), "{line}");

    let mut e = Enrolee::new(uri.clone());
    e.master_credential_expiry = Some("2001-01-01T00:00:00Z");
    let f = dir.write("master.toml", &e.toml());
    let line = refused(&run_enrol(&f, None), "expired master credential");
    assert!(line.contains("masterCredentialExpiry"), "{line}");

    // Unix seconds one minute ago: expired too.
    let mut e = Enrolee::new(uri.clone());
    let past = (now() - 60).to_string();
    e.association_expiry = &past;
    let f = dir.write("seconds.toml", &e.toml());
    let line = refused(&run_enrol(&f, None), "expired association (Unix seconds)");
    assert!(line.contains("associationConfigurationExpiry"), "{line}");

    // Unexpired, the same file gets as far as connecting (and fails there).
    let f = dir.write("fine.toml", &Enrolee::new(uri).toml());
    let line = refused(&run_enrol(&f, None), "nothing listening");
    assert!(!line.contains("Expiry"), "{line}");
    assert!(!dir.path("enrolee.redb").exists());
}

#[tokio::test]
async fn mef_without_service_store_is_refused() {
    let dir = TempDir::new("nostore");
    let f = dir.write("mef.toml", &mef_toml(""));
    let child = Command::new(BIN)
        .args(["mef", "--config"])
        .arg(&f)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let r = finish(child, "m2msec mef without store");
    assert!(!r.stdout.contains("listening:"), "{:?}", r.stdout);
    let line = refused(&r, "mef without store");
    assert!(line.contains("service.store"), "{line}");
    assert!(!dir.path("mef.redb").exists());
}

#[tokio::test]
async fn mef_restart_between_enrolments_keeps_the_first_key() {
    let dir = TempDir::new("restart");
    let mef_file = dir.write("mef.toml", &mef_toml(STORE));
    let enrolee_file = dir.write(
        "enrolee.toml",
        &Enrolee::new("https://mef.example.com:1".into()).toml(),
    );

    let mef = Server::start("mef", &mef_file);
    let first = enrolled(&run_enrol(
        &enrolee_file,
        Some(&format!("https://localhost:{}", mef.tls.port())),
    ));
    let (ke_id1, _, km1) = enrolee_keys(dir.path("enrolee.redb")).await;
    assert_eq!(ke_id1.as_str(), first.ke_id);
    assert_eq!(mef.sigterm_status().code(), Some(0));

    // Restarted on the same store (new ports).
    let mef = Server::start("mef", &mef_file);
    assert_eq!(released(mef.tls, &ke_id1).await.unwrap(), km1);
    let second = enrolled(&run_enrol(
        &enrolee_file,
        Some(&format!("coaps://localhost:{}", mef.dtls.port())),
    ));
    assert_eq!(second.transport, "DTLS");
    let (ke_id2, _, km2) = enrolee_keys(dir.path("enrolee.redb")).await;
    assert_eq!(ke_id2.as_str(), second.ke_id);
    assert_ne!(ke_id1, ke_id2);
    assert_eq!(released(mef.tls, &ke_id1).await.unwrap(), km1);
    assert_eq!(released(mef.tls, &ke_id2).await.unwrap(), km2);
    assert_eq!(mef.sigterm_status().code(), Some(0));
    assert_eq!(mef_records(dir.path("mef.redb")).await, 2);
}

#[tokio::test]
async fn sigterm_stops_the_mef_with_status_0() {
    let dir = TempDir::new("sigterm");
    let mef_file = dir.write("mef.toml", &mef_toml(STORE));
    // Idle.
    let mef = Server::start("mef", &mef_file);
    let status = mef.sigterm_status();
    assert!(status.success(), "{status}");
    assert_eq!(status.code(), Some(0));
    // After serving, the store is released: a second start opens it again.
    let mef = Server::start("mef", &mef_file);
    let uri = format!("https://localhost:{}", mef.tls.port());
    let f = dir.write("enrolee.toml", &Enrolee::new(uri).toml());
    enrolled(&run_enrol(&f, None));
    let (ke_id, _, _) = enrolee_keys(dir.path("enrolee.redb")).await;
    assert!(released(mef.tls, &ke_id).await.is_ok());
    assert_eq!(mef.sigterm_status().code(), Some(0));
    assert_eq!(mef_records(dir.path("mef.redb")).await, 1);
}
