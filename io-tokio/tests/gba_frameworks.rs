//! GBA-based association (draft 8.2.3.2) over real sockets: a BSF (Ub + Zn), the registrar as
//! NAF from a `[gba]` configuration, Entity A (UE) bootstrapping over Ub and associating with
//! the NAF key, over TLS and DTLS, GBA_ME and GBA_U; reuse of a stored Ks; refusals.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use m2msec::frameworks::binding::AssociationFramework;
use m2msec::gba::kdf::{ks_int_naf, ks_naf, psk_identity, BTid, GbaPrefix, KsNaf, NafId};
use m2msec::keys::Km;
use m2msec::store::MemoryKeyStore;
use m2msec::{CipherSuite, ClientPsk, Psk};
use m2msec_tokio::config_toml::Uri;
use m2msec_tokio::frameworks::bsf::{
    bootstrap, zn_fetch, BsfConfig, BsfService, ServiceHandle, ZnFlavor,
};
use m2msec_tokio::frameworks::maf::{gba_maf_naf_id, register_client_via, MafCredentials};
use m2msec_tokio::frameworks::registrar::{associate_gba, Refusal, RegistrarEvent};
use m2msec_tokio::frameworks::Transport;
use m2msec_tokio::node::{self, Framework, RunningRegistrar};

const K: &str = "465b5ce8b199b49faa5f0a2ee238a6bc";
const OPC: &str = "cd63cb71954a9f4e48a5994e37a02baf";
const IMPI: &str = "ue1@ims.example.com";
const IMPI_NO_U: &str = "ue2@ims.example.com";
const BSF: &str = "bsf.example.com";
const NAF: &str = "in-cse.example.com";
const NAF_NOT_IN_GUSS: &str = "other-cse.example.com";
const NAF_PSK: &str = "4242424242424242424242424242424242424242424242424242424242424242";
const MAF: &str = "maf.example.com";
const MAF_NAF_PSK: &str = "5353535353535353535353535353535353535353535353535353535353535353";
const KM_IN: &str = "6464646464646464646464646464646464646464646464646464646464646464";
const KEK: &str = "0101010101010101010101010101010101010101010101010101010101010101";

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let mut r = [0u8; 8];
        getrandom::getrandom(&mut r).unwrap();
        let d = std::env::temp_dir().join(format!(
            "m2msec-gbafw-{name}-{}-{}",
            std::process::id(),
            u64::from_le_bytes(r)
        ));
        std::fs::create_dir_all(&d).unwrap();
        Self(d)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Bsf {
    ub: ServiceHandle,
    zn: ServiceHandle,
}

async fn start_bsf(lifetime: &str) -> Bsf {
    let text = format!(
        r#"
role = "bsf"
bsfFqdn = "{BSF}"

[[subscriber]]
impi = "{IMPI}"
k = "{K}"
opc = "{OPC}"
guss = ["{NAF}", "{MAF}"]
gbaU = true

[[subscriber]]
impi = "{IMPI_NO_U}"
k = "{K}"
opc = "{OPC}"
guss = ["{NAF}"]

[[naf]]
fqdns = ["{NAF}", "{NAF_NOT_IN_GUSS}"]
pskIdentity = "in-cse@{BSF}"
psk = "{NAF_PSK}"

[[naf]]
fqdns = ["{MAF}"]
pskIdentity = "maf@{BSF}"
psk = "{MAF_NAF_PSK}"

[service]
keyLifetime = "{lifetime}"
"#
    );
    let config = BsfConfig::from_toml(&text, Path::new(".")).unwrap();
    let store = Arc::new(Mutex::new(MemoryKeyStore::new()));
    let bsf = Arc::new(BsfService::new(Arc::new(config), store));
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    Bsf {
        ub: bsf.bind_ub(any).await.unwrap(),
        zn: bsf.bind_zn(any).await.unwrap(),
    }
}

impl Bsf {
    fn ub(&self) -> SocketAddr {
        self.ub.local_addr().unwrap()
    }
    fn zn(&self) -> SocketAddr {
        self.zn.local_addr().unwrap()
    }
}

/// Starts the registrar (NAF `naf_fqdn`, accepting `flavours`) from a file.
async fn start_registrar(
    dir: &TempDir,
    bsf: &Bsf,
    naf_fqdn: &str,
    flavours: &str,
    peers: &str,
) -> RunningRegistrar {
    let text = format!(
        r#"
role = "infrastructure-end-point"

[service]
listen = "127.0.0.1:0"
listenDtls = "127.0.0.1:0"

[gba]
nafFqdn = "{naf_fqdn}"
znAddress = "{zn}"
pskIdentity = "in-cse@{BSF}"
psk = "{NAF_PSK}"
flavours = {flavours}
{peers}
"#,
        zn = bsf.zn()
    );
    let path = dir.write("entity-b.toml", &text);
    node::start_registrar(node::load_server(&path).unwrap())
        .await
        .unwrap()
}

fn ue_file(dir: &TempDir, bsf: &Bsf, impi: &str, extra: &str) -> PathBuf {
    let text = format!(
        r#"
role = "field-end-point"

[service]
store = "ue.redb"
kek = "{KEK}"

[gba]
ubAddress = "{ub}"
bsfFqdn = "{BSF}"
impi = "{impi}"
k = "{K}"
opc = "{OPC}"
nafFqdn = "{NAF}"
{extra}
"#,
        ub = bsf.ub()
    );
    dir.write("ue.toml", &text)
}

fn uris(r: &RunningRegistrar) -> (Uri, Uri) {
    let u = r.uris();
    let tls = u.iter().find(|u| u.starts_with("https")).unwrap();
    let dtls = u.iter().find(|u| u.starts_with("coaps")).unwrap();
    (Uri::parse(tls).unwrap(), Uri::parse(dtls).unwrap())
}

fn tls_addr(r: &RunningRegistrar) -> SocketAddr {
    r.listeners.tls.as_ref().unwrap().local_addr().unwrap()
}

fn dtls_addr(r: &RunningRegistrar) -> SocketAddr {
    r.listeners.dtls.as_ref().unwrap().local_addr().unwrap()
}

/// The next refusal the registrar reports.
async fn refusal(r: &mut RunningRegistrar) -> Refusal {
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(10), r.events.recv())
            .await
            .expect("a registrar event")
            .expect("events open");
        if let RegistrarEvent::Refused { refusal, .. } = ev {
            return refusal;
        }
    }
}

#[tokio::test]
async fn gba_me_and_gba_u_over_tls_and_dtls_reuse_ks() {
    let dir = TempDir::new("assoc");
    let bsf = start_bsf("1h").await;
    let registrar = start_registrar(&dir, &bsf, NAF, r#"["gba-me", "gba-u"]"#, "").await;
    let (tls, dtls) = uris(&registrar);
    let ue = node::load(ue_file(&dir, &bsf, IMPI, "")).unwrap();

    let mut btid = None;
    for (i, (framework, to)) in [
        (Framework::Gba { uicc: false }, &tls),
        (Framework::Gba { uicc: false }, &dtls),
        (Framework::Gba { uicc: true }, &tls),
        (Framework::Gba { uicc: true }, &dtls),
    ]
    .into_iter()
    .enumerate()
    {
        let done = node::associate_node(&ue, framework, to, None, None)
            .await
            .unwrap_or_else(|e| panic!("{framework} over {}: {e}", to.transport));
        assert_eq!(done.registrar.framework, AssociationFramework::GbaBased);
        assert_eq!(done.registrar.bound_identity, IMPI);
        assert_eq!(done.this_entity, IMPI);
        assert_eq!(done.suite, CipherSuite::PskAes128Ccm);
        assert_eq!(done.identity_hint.as_deref(), Some("3GPP-bootstrapping"));
        let (b, ran) = done.gba.clone().unwrap();
        assert_eq!(done.registrar.key_identifier, b, "key id = B-TID");
        assert!(done.registrar.expiration_time.is_some());
        // Only the first association bootstraps; the others reuse the stored Ks.
        assert_eq!(ran, i == 0, "row {i}");
        match &btid {
            None => btid = Some(b),
            Some(first) => assert_eq!(first, &b, "the B-TID stays the same"),
        }
    }
    registrar.shutdown().await.unwrap();
}

#[tokio::test]
async fn both_sides_agree_on_the_naf_key_and_the_suite_reaches_the_lookup() {
    let dir = TempDir::new("keys");
    let bsf = start_bsf("1h").await;
    let registrar = start_registrar(&dir, &bsf, NAF, r#"["gba-me", "gba-u"]"#, "").await;
    let mut usim = m2msec::gba::usim::Usim::new(
        &hex::decode(K).unwrap().try_into().unwrap(),
        &hex::decode(OPC).unwrap().try_into().unwrap(),
    );
    let b = bootstrap(bsf.ub(), IMPI, BSF, &mut usim).await.unwrap();
    let naf_psk = ClientPsk::new(
        format!("in-cse@{BSF}").as_bytes(),
        Psk::new(&hex::decode(NAF_PSK).unwrap()).unwrap(),
    )
    .unwrap();
    for suite in [CipherSuite::PskAes128Ccm, CipherSuite::PskAes128Ccm8] {
        let naf_id = NafId::tls_psk(NAF, suite.code()).unwrap();
        for (uicc, flavor) in [(false, ZnFlavor::Me), (true, ZnFlavor::Uicc)] {
            let ue_key = if uicc {
                ks_int_naf(&b.ks, &b.rand, IMPI, &naf_id).unwrap()
            } else {
                ks_naf(&b.ks, &b.rand, IMPI, &naf_id).unwrap()
            };
            let z = zn_fetch(bsf.zn(), naf_psk.clone(), &b.btid, &naf_id, flavor)
                .await
                .unwrap();
            assert_eq!(z.key, ue_key, "the BSF's key is the UE's");
            let prefix = if uicc { GbaPrefix::Uicc } else { GbaPrefix::Me };
            for (transport, addr) in [
                (Transport::Tls, tls_addr(&registrar)),
                (Transport::Dtls, dtls_addr(&registrar)),
            ] {
                // Every D10 identity form: prefix ";" B-TID, prefix "." B-TID, bare (GBA_ME).
                let mut identities = vec![
                    psk_identity(prefix, &b.btid),
                    format!("{}.{}", prefix.as_str(), b.btid),
                ];
                if !uicc {
                    identities.push(b.btid.as_str().to_owned());
                }
                for identity in identities {
                    let mut conn = associate_gba(addr, transport, &identity, &ue_key, suite)
                        .await
                        .unwrap_or_else(|e| panic!("{identity} {suite:?} {transport}: {e}"));
                    assert_eq!(conn.info().suite, suite);
                    let info = conn.association_info(IMPI).await.unwrap();
                    assert_eq!(info.bound_identity, IMPI);
                    assert_eq!(info.key_identifier, b.btid.as_str());
                    let _ = conn.close().await;
                }
            }
            // The key of the other suite is not this suite's key.
            let other = NafId::tls_psk(NAF, suite.code() ^ 0x000c).unwrap();
            assert_ne!(ks_naf(&b.ks, &b.rand, IMPI, &other).unwrap(), ue_key);
        }
    }
    registrar.shutdown().await.unwrap();
}

#[tokio::test]
async fn imp_mapping_binds_the_configured_identity() {
    let dir = TempDir::new("map");
    let bsf = start_bsf("1h").await;
    let peers = format!("[[gba.peer]]\nimpi = \"{IMPI}\"\notherEntityIdentifier = \"/id-ue1\"\n");
    let mut registrar = start_registrar(&dir, &bsf, NAF, r#"["gba-me"]"#, &peers).await;
    let (tls, _) = uris(&registrar);
    let ue = node::load(ue_file(
        &dir,
        &bsf,
        IMPI,
        "thisEntityIdentifier = \"/id-ue1\"",
    ))
    .unwrap();
    let done = node::associate_node(&ue, Framework::Gba { uicc: false }, &tls, None, None)
        .await
        .unwrap();
    assert_eq!(done.registrar.bound_identity, "/id-ue1");
    // An IMPI without a mapping is refused.
    let dir2 = TempDir::new("map2");
    let ue2 = node::load(ue_file(&dir2, &bsf, IMPI_NO_U, "")).unwrap();
    assert!(
        node::associate_node(&ue2, Framework::Gba { uicc: false }, &tls, None, None)
            .await
            .is_err()
    );
    assert_eq!(refusal(&mut registrar).await, Refusal::NotConfiguredPeer);
    registrar.shutdown().await.unwrap();
}

fn random_key() -> KsNaf {
    let mut k = [0u8; 32];
    getrandom::getrandom(&mut k).unwrap();
    KsNaf::new(k)
}

#[tokio::test]
async fn refusals_unknown_btid_naf_not_allowed_wrong_flavour_expired() {
    let dir = TempDir::new("refuse");
    let bsf = start_bsf("3s").await;
    let suite = CipherSuite::PskAes128Ccm;

    // Unknown B-TID (TLS and DTLS).
    let mut registrar = start_registrar(&dir, &bsf, NAF, r#"["gba-me", "gba-u"]"#, "").await;
    let unknown = BTid::new(&[7u8; 16], BSF).unwrap();
    for (transport, addr) in [
        (Transport::Tls, tls_addr(&registrar)),
        (Transport::Dtls, dtls_addr(&registrar)),
    ] {
        let id = psk_identity(GbaPrefix::Me, &unknown);
        assert!(associate_gba(addr, transport, &id, &random_key(), suite)
            .await
            .is_err());
        assert_eq!(refusal(&mut registrar).await, Refusal::GbaUnknownBTid);
    }

    // GBA_U for a subscriber without it: the BSF refuses this NAF the key.
    let mut usim = m2msec::gba::usim::Usim::new(
        &hex::decode(K).unwrap().try_into().unwrap(),
        &hex::decode(OPC).unwrap().try_into().unwrap(),
    );
    let b2 = bootstrap(bsf.ub(), IMPI_NO_U, BSF, &mut usim)
        .await
        .unwrap();
    let naf_id = NafId::tls_psk(NAF, suite.code()).unwrap();
    let k2 = ks_int_naf(&b2.ks, &b2.rand, IMPI_NO_U, &naf_id).unwrap();
    let id = psk_identity(GbaPrefix::Uicc, &b2.btid);
    assert!(
        associate_gba(tls_addr(&registrar), Transport::Tls, &id, &k2, suite)
            .await
            .is_err()
    );
    assert_eq!(refusal(&mut registrar).await, Refusal::GbaNafNotAllowed);

    // Bootstrapping with a lifetime of 3 s: accepted now, refused once it passed.
    let b = bootstrap(bsf.ub(), IMPI, BSF, &mut usim).await.unwrap();
    let key = ks_naf(&b.ks, &b.rand, IMPI, &naf_id).unwrap();
    let id = psk_identity(GbaPrefix::Me, &b.btid);
    let conn = associate_gba(tls_addr(&registrar), Transport::Tls, &id, &key, suite)
        .await
        .unwrap();
    let _ = conn.close().await;
    registrar.shutdown().await.unwrap();

    // A NAF (FQDN) the BSF knows but not in the subscriber's GUSS.
    let dir2 = TempDir::new("guss");
    let mut other = start_registrar(&dir2, &bsf, NAF_NOT_IN_GUSS, r#"["gba-me"]"#, "").await;
    let other_id = NafId::tls_psk(NAF_NOT_IN_GUSS, suite.code()).unwrap();
    let k_other = ks_naf(&b.ks, &b.rand, IMPI, &other_id).unwrap();
    for (transport, addr) in [
        (Transport::Tls, tls_addr(&other)),
        (Transport::Dtls, dtls_addr(&other)),
    ] {
        assert!(associate_gba(addr, transport, &id, &k_other, suite)
            .await
            .is_err());
        assert_eq!(refusal(&mut other).await, Refusal::GbaNafNotAllowed);
    }
    // Wrong flavour: this NAF accepts GBA_ME only.
    let idu = psk_identity(GbaPrefix::Uicc, &b.btid);
    let ku = ks_int_naf(&b.ks, &b.rand, IMPI, &other_id).unwrap();
    assert!(
        associate_gba(tls_addr(&other), Transport::Tls, &idu, &ku, suite)
            .await
            .is_err()
    );
    assert_eq!(refusal(&mut other).await, Refusal::GbaWrongFlavour);
    other.shutdown().await.unwrap();

    // Expired: a registrar that cached the key refuses it after the lifetime.
    let dir3 = TempDir::new("exp");
    let mut r3 = start_registrar(&dir3, &bsf, NAF, r#"["gba-me"]"#, "").await;
    let b3 = bootstrap(bsf.ub(), IMPI, BSF, &mut usim).await.unwrap();
    let k3 = ks_naf(&b3.ks, &b3.rand, IMPI, &naf_id).unwrap();
    let id3 = psk_identity(GbaPrefix::Me, &b3.btid);
    let conn = associate_gba(tls_addr(&r3), Transport::Tls, &id3, &k3, suite)
        .await
        .unwrap();
    let _ = conn.close().await;
    tokio::time::sleep(Duration::from_millis(4200)).await;
    assert!(
        associate_gba(tls_addr(&r3), Transport::Tls, &id3, &k3, suite)
            .await
            .is_err()
    );
    assert_eq!(refusal(&mut r3).await, Refusal::GbaExpired);
    // The BSF dropped it too: a registrar without the cache hears "no such bootstrapping"
    // over DTLS (each listener has its own cache; the DTLS one never saw this B-TID).
    assert!(
        associate_gba(dtls_addr(&r3), Transport::Dtls, &id3, &k3, suite)
            .await
            .is_err()
    );
    let r = refusal(&mut r3).await;
    assert!(
        matches!(r, Refusal::GbaUnknownBTid | Refusal::GbaExpired),
        "{r:?}"
    );
    r3.shutdown().await.unwrap();
}

/// GBA-based Security Bootstrap then MAF (8.3.3.1): the MAF (a NAF at the BSF) resolves a
/// B-TID first contact over Zn (Km = Ks_NAF for the MAF), assigns a KmID, and the MAF-based
/// association with the registrar follows; a B-TID the BSF does not know is refused.
#[tokio::test]
async fn gba_bootstrap_then_maf_first_contact_assigns_a_km_id() {
    let dir = TempDir::new("gbamaf");
    let bsf = start_bsf("1h").await;
    let maf_file = dir.write(
        "maf.toml",
        &format!(
            r#"
role = "maf"
mafIdentifier = "{MAF}"

[[client]]
[client.credential]
thisEntityIdentifier = "/id-in"
masterCredential = "{KM_IN}"
masterCredentialIdentifier = "in-cse.km1@{MAF}"
[[client.association]]
otherEntityIdentifier = "/id-ue1"

[service]
listen = "127.0.0.1:0"
listenDtls = "127.0.0.1:0"
store = "maf.redb"
kek = "{KEK}"

[gba]
znAddress = "{zn}"
pskIdentity = "maf@{BSF}"
psk = "{MAF_NAF_PSK}"
bsfFqdn = "{BSF}"
[[gba.peer]]
impi = "{IMPI}"
otherEntityIdentifier = "/id-ue1"
"#,
            zn = bsf.zn()
        ),
    );
    let maf = node::start_maf(node::load_server(&maf_file).unwrap())
        .await
        .unwrap();
    let maf_uris = maf.uris();
    let maf_tls = Uri::parse(maf_uris.iter().find(|u| u.starts_with("https")).unwrap()).unwrap();
    let maf_dtls = Uri::parse(maf_uris.iter().find(|u| u.starts_with("coaps")).unwrap()).unwrap();
    let reg_file = dir.write(
        "registrar.toml",
        &format!(
            r#"
role = "infrastructure-end-point"

[mafBased.credential]
mafIdentifier = "{MAF}"
thisEntityIdentifier = "/id-in"
masterCredential = "{KM_IN}"
masterCredentialIdentifier = "in-cse.km1@{MAF}"
[[mafBased.association]]
otherEntityIdentifier = "/id-ue1"

[service]
listen = "127.0.0.1:0"
listenDtls = "127.0.0.1:0"
mafUri = "{maf_tls}"
"#,
            maf_tls = maf_uris.iter().find(|u| u.starts_with("https")).unwrap()
        ),
    );
    let registrar = node::start_registrar(node::load_server(&reg_file).unwrap())
        .await
        .unwrap();
    let (reg_tls, reg_dtls) = uris(&registrar);
    let ue = node::load(ue_file(
        &dir,
        &bsf,
        IMPI,
        &format!("mafFqdn = \"{MAF}\"\nthisEntityIdentifier = \"/id-ue1\""),
    ))
    .unwrap();

    // First contact with the B-TID: the MAF assigns a KmID; the association is bound to the
    // Enrolee-ID the MAF maps the IMPI to.
    let first = node::associate_node(
        &ue,
        Framework::MafBased,
        &reg_tls,
        Some("/id-in"),
        Some(&maf_tls),
    )
    .await
    .unwrap();
    let km_id = first.assigned_km_id.clone().expect("a KmID assigned");
    let (rel, fqdn) = km_id.split_once('@').unwrap();
    assert!(rel.starts_with("km-") && fqdn == MAF, "{km_id}");
    assert_eq!(first.this_entity, "/id-ue1");
    assert_eq!(first.registrar.bound_identity, "/id-ue1");
    assert_eq!(first.maf_identity.as_deref(), Some(km_id.as_str()));
    // Later: the stored KmID (no new bootstrapping, no new first contact), over DTLS too.
    let again = node::associate_node(
        &ue,
        Framework::MafBased,
        &reg_dtls,
        Some("/id-in"),
        Some(&maf_dtls),
    )
    .await
    .unwrap();
    assert_eq!(again.assigned_km_id, None);
    assert_eq!(again.maf_identity.as_deref(), Some(km_id.as_str()));
    assert_eq!(again.registrar.bound_identity, "/id-ue1");

    // The prefixed form (3GPP-bootstrapping;B-TID) of a fresh bootstrapping, over DTLS.
    let mut usim = m2msec::gba::usim::Usim::new(
        &hex::decode(K).unwrap().try_into().unwrap(),
        &hex::decode(OPC).unwrap().try_into().unwrap(),
    );
    let b = bootstrap(bsf.ub(), IMPI, BSF, &mut usim).await.unwrap();
    let naf_id = gba_maf_naf_id(MAF).unwrap();
    assert_eq!(naf_id.to_bytes()[MAF.len()..], [1, 0, 1, 0xc0, 0xa4]);
    let km = ks_naf(&b.ks, &b.rand, IMPI, &naf_id).unwrap();
    let creds = MafCredentials {
        maf_fqdn: MAF.into(),
        psk_identity: psk_identity(GbaPrefix::Me, &b.btid),
        key: Km::new(*km.expose()),
        origin: "/id-ue1".into(),
    };
    let expires = node::unix_now().0 + 600;
    let maf_dtls_addr = maf.dtls.as_ref().unwrap().local_addr().unwrap();
    let maf_tls_addr = maf.tls.as_ref().unwrap().local_addr().unwrap();
    let reg = register_client_via(maf_dtls_addr, Transport::Dtls, &creds, expires)
        .await
        .unwrap();
    assert_ne!(
        reg.km_id.as_str(),
        km_id,
        "another bootstrapping, another KmID"
    );

    // Refusals: a B-TID the BSF does not know; a GBA_U identity (Km is Ks_NAF, GBA_ME).
    let unknown = BTid::new(&[7u8; 16], BSF).unwrap();
    for (identity, transport, addr) in [
        (unknown.as_str().to_owned(), Transport::Tls, maf_tls_addr),
        (unknown.as_str().to_owned(), Transport::Dtls, maf_dtls_addr),
        (
            psk_identity(GbaPrefix::Uicc, &b.btid),
            Transport::Tls,
            maf_tls_addr,
        ),
    ] {
        let bad = MafCredentials {
            psk_identity: identity.clone(),
            ..creds.clone()
        };
        assert!(
            register_client_via(addr, transport, &bad, expires)
                .await
                .is_err(),
            "{identity} over {transport}"
        );
    }
    registrar.shutdown().await.unwrap();
    maf.shutdown().await.unwrap();
}
