//! First contact after a bootstrap (D13) against a real MEF on loopback: the Enrolee enrols at
//! the MEF (TLS or DTLS, redb store), opens its first MAF session with the KeID, the MAF fetches
//! Km from the MEF ([`mef_fetch_km`], TLS or DTLS), stores it, assigns a KmID in the Client
//! Registration and a later session with the KmID works. Refusals: a MAF that is not the
//! instruction's, an unknown / tampered KeID, an unreachable MEF; every refusal leaves both
//! stores unchanged. A MEF restart between enrolment and first contact still releases Km.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use m2msec::enums::AlertDescription;
use m2msec::frameworks::config::{
    BootstrapCredential, BootstrapInstruction, EnroleeBootstrap, Lifespan, MafClient, MafConfig,
    MasterCredential, MefConfig, MefEnrolee,
};
use m2msec::frameworks::maf::MafServer;
use m2msec::frameworks::mef::{MafDirectory, MafEntry};
use m2msec::keys::{self, IdKind, KeyId, Km};
use m2msec::store::{store_id, KeyKind, MemoryKeyStore};
use m2msec::{ClientPsk, Psk};
use m2msec_tokio::frameworks::maf::{
    mef_fetch_km, register_client_via, register_key_via, retrieve_key_via, MafClientError,
    MafCredentials, MafService, ServiceHandle,
};
use m2msec_tokio::frameworks::mef::{enrol, enrol_dtls, Enrolment, MefService};
use m2msec_tokio::frameworks::Transport;
use m2msec_tokio::store::{AsyncKeyStore, Kek, RedbKeyStore};
use m2msec_tokio::Error;
use tokio::time::timeout;

const MEF: &str = "mef.example.com";
const KPM_ID: &str = "dev1@mef.example.com";
const KPM: [u8; 32] = [0x11; 32];
const ENROLEE: &str = "Cae1";
const MAF1_ID: &str = "maf.example.com";
const MAF1_PSK_ID: &str = "maf1@mef.example.com";
const MAF1_PSK: [u8; 32] = [0x22; 32];
const MAF2_ID: &str = "maf2.example.com";
const MAF2_PSK_ID: &str = "maf2@mef.example.com";
const MAF2_PSK: [u8; 32] = [0x33; 32];
const KEK: [u8; 32] = [0x42; 32];
const ID_B: &str = "/in-cse.example.net/in-cse";
const LIMIT: Duration = Duration::from_secs(30);

type MafStore = Arc<Mutex<MemoryKeyStore>>;

/// A directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let mut rnd = [0u8; 8];
        getrandom::getrandom(&mut rnd).unwrap();
        let dir = std::env::temp_dir().join(format!(
            "m2msec-maf-fc-{name}-{}-{}",
            std::process::id(),
            u64::from_le_bytes(rnd)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn file(&self) -> PathBuf {
        self.0.join("mef.redb")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

// --- the MEF ---------------------------------------------------------------------------------

fn mef_config() -> Arc<MefConfig> {
    let enrolee = MefEnrolee::new(
        BootstrapCredential::new(KPM_ID, &KPM).unwrap(),
        BootstrapInstruction::new(MAF1_ID, ENROLEE).unwrap(),
    );
    Arc::new(MefConfig::new(MEF, vec![enrolee]).unwrap())
}

fn directory() -> Arc<MafDirectory> {
    Arc::new(
        MafDirectory::new(vec![
            MafEntry::new(MAF1_PSK_ID, MAF1_ID, "maf.example.com:5684").unwrap(),
            MafEntry::new(MAF2_PSK_ID, MAF2_ID, "maf2.example.com:5684").unwrap(),
        ])
        .unwrap(),
    )
}

fn maf_psks() -> Vec<(KeyId, Psk)> {
    vec![
        (
            KeyId::parse(IdKind::Kpm, MAF1_PSK_ID).unwrap(),
            Psk::new(&MAF1_PSK).unwrap(),
        ),
        (
            KeyId::parse(IdKind::Kpm, MAF2_PSK_ID).unwrap(),
            Psk::new(&MAF2_PSK).unwrap(),
        ),
    ]
}

async fn open_mef_store(dir: &TempDir) -> Arc<RedbKeyStore> {
    Arc::new(
        RedbKeyStore::open_async(dir.file(), Kek::new(KEK))
            .await
            .unwrap(),
    )
}

fn mef_service(store: &Arc<RedbKeyStore>) -> MefService<RedbKeyStore> {
    MefService::new(
        mef_config(),
        directory(),
        maf_psks(),
        Lifespan::from_secs(3600).unwrap(),
        Arc::clone(store),
    )
    .unwrap()
}

/// The MEF on `transport`, 127.0.0.1.
async fn start_mef(store: &Arc<RedbKeyStore>, transport: Transport) -> ServiceHandle {
    match transport {
        Transport::Tls => mef_service(store).bind("127.0.0.1:0").await.unwrap(),
        Transport::Dtls => mef_service(store).bind_dtls("127.0.0.1:0").await.unwrap(),
    }
}

async fn mef_records(store: &Arc<RedbKeyStore>) -> usize {
    let s = Arc::clone(store);
    tokio::task::spawn_blocking(move || s.verify_all().unwrap())
        .await
        .unwrap()
}

fn bootstrap() -> EnroleeBootstrap {
    EnroleeBootstrap::new(
        BootstrapCredential::new(KPM_ID, &KPM).unwrap(),
        "https://mef.example.com",
        BootstrapInstruction::new(MAF1_ID, ENROLEE).unwrap(),
    )
    .unwrap()
}

async fn enrol_via(mef: SocketAddr, transport: Transport) -> Enrolment {
    let e = match transport {
        Transport::Tls => timeout(LIMIT, enrol(mef, &bootstrap(), MEF, Some(MEF))).await,
        Transport::Dtls => timeout(LIMIT, enrol_dtls(mef, &bootstrap(), MEF, Some(MEF))).await,
    };
    e.unwrap().unwrap()
}

// --- the MAF ---------------------------------------------------------------------------------

fn maf_config(maf_id: &str) -> Arc<MafConfig> {
    let b = MasterCredential::builder()
        .this_entity_identifier(ID_B)
        .master_credential(&[0xB1; 32])
        .master_credential_identifier(&format!("km-b@{maf_id}"))
        .build()
        .unwrap();
    Arc::new(MafConfig::new(maf_id, vec![MafClient::new(b, vec![]).unwrap()]).unwrap())
}

fn maf_psk(id: &str, key: &[u8; 32]) -> ClientPsk {
    ClientPsk::new(id.as_bytes(), Psk::new(key).unwrap()).unwrap()
}

/// A MAF `maf_id` (memory store) whose first contact asks the MEF at `mef` over
/// `mef_transport` with the MAF PSK `psk`, served on `transport`.
async fn start_maf(
    maf_id: &str,
    psk: ClientPsk,
    mef: SocketAddr,
    mef_transport: Transport,
    transport: Transport,
) -> (ServiceHandle, MafStore) {
    let config = maf_config(maf_id);
    let store: MafStore = Arc::new(Mutex::new(MemoryKeyStore::new()));
    let fetch = mef_fetch_km(
        mef,
        mef_transport,
        psk,
        maf_id,
        Some(MEF.to_owned()),
        Arc::clone(&config),
    );
    let server = MafServer::new(config, Lifespan::from_secs(3600).unwrap());
    let service = MafService::new(server, Arc::clone(&store))
        .with_fetch_km(fetch)
        .with_timeout(Duration::from_secs(10));
    let handle = match transport {
        Transport::Tls => service.bind("127.0.0.1:0").await.unwrap(),
        Transport::Dtls => service.bind_dtls("127.0.0.1:0").await.unwrap(),
    };
    (handle, store)
}

fn maf_len(store: &MafStore) -> usize {
    store.lock().unwrap().len()
}

fn enrolee_creds(e: &Enrolment, maf_id: &str) -> MafCredentials {
    MafCredentials {
        maf_fqdn: maf_id.into(),
        psk_identity: e.ke_id.as_str().into(),
        key: keys::km(&e.ke, maf_id),
        origin: ENROLEE.into(),
    }
}

fn is_unknown_identity(e: &MafClientError) -> bool {
    matches!(
        e,
        MafClientError::Transport(Error::Tls(m2msec::Error::AlertReceived(
            AlertDescription::UnknownPskIdentity
        )))
    )
}

/// Enrolment over `mef_transport`, then first contact over `maf_transport` with the MAF fetching
/// over `mef_transport`: Client Registration with the KeID, then Key Registration with the KmID.
async fn first_contact(mef_transport: Transport, maf_transport: Transport) {
    let dir = TempDir::new("ok");
    let mef_store = open_mef_store(&dir).await;
    let mef = start_mef(&mef_store, mef_transport).await;
    let mef_addr = mef.local_addr().unwrap();
    let e = enrol_via(mef_addr, mef_transport).await;
    let (maf, store) = start_maf(
        MAF1_ID,
        maf_psk(MAF1_PSK_ID, &MAF1_PSK),
        mef_addr,
        mef_transport,
        maf_transport,
    )
    .await;
    let maf_addr = maf.local_addr().unwrap();
    assert_eq!(maf_len(&store), 0);

    // First contact: the session's identity is the KeID, its key Km = HMAC(Ke, MAF-ID).
    let creds = enrolee_creds(&e, MAF1_ID);
    let expires = unix_now() + 600;
    let reg = timeout(
        LIMIT,
        register_client_via(maf_addr, maf_transport, &creds, expires),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(reg.km_id.fqdn(), MAF1_ID);
    assert!(reg.km_id.relative().starts_with("km-"), "{}", reg.km_id);
    assert_eq!(reg.expires, expires);

    // The MAF stored Km under the KeID (from the MEF) and under the assigned KmID.
    let under_ke = store.get(store_id(&e.ke_id)).await.unwrap().unwrap();
    assert_eq!(under_ke.kind, KeyKind::Km);
    assert_eq!(under_ke.owner, ENROLEE);
    assert_eq!(under_ke.secret.expose(), creds.key.expose());
    assert_eq!(under_ke.not_after, e.expires);
    let under_km = store.get(store_id(&reg.km_id)).await.unwrap().unwrap();
    assert_eq!(under_km.kind, KeyKind::Km);
    assert_eq!(under_km.owner, ENROLEE);
    assert_eq!(under_km.secret.expose(), creds.key.expose());
    assert_eq!(under_km.not_after.0, expires);
    assert_eq!(maf_len(&store), 2);

    // A later session with the KmID: Key Registration, Kc released to the target.
    let later = MafCredentials {
        psk_identity: reg.km_id.as_str().into(),
        ..creds.clone()
    };
    let (kc_id, kc, _) = timeout(
        LIMIT,
        register_key_via(maf_addr, maf_transport, &later, &[ID_B], expires),
    )
    .await
    .unwrap()
    .unwrap();
    let kc_record = store.get(store_id(&kc_id)).await.unwrap().unwrap();
    assert_eq!(kc_record.kind, KeyKind::Kc);
    assert_eq!(kc_record.owner, ENROLEE);
    assert_eq!(kc_record.secret.expose(), kc.expose());
    let b = MafCredentials {
        maf_fqdn: MAF1_ID.into(),
        psk_identity: format!("km-b@{MAF1_ID}"),
        key: Km::new([0xB1; 32]),
        origin: ID_B.into(),
    };
    let (kc2, source, _) = timeout(
        LIMIT,
        retrieve_key_via(maf_addr, maf_transport, &b, kc_id.relative()),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(kc2, kc);
    assert_eq!(source, ENROLEE);

    // The MEF's store still holds exactly the Enrolee's Ke.
    assert_eq!(mef_records(&mef_store).await, 1);
    maf.shutdown().await.unwrap();
    mef.shutdown().await.unwrap();
}

#[tokio::test]
async fn first_contact_tls_enrolment_tls_maf() {
    first_contact(Transport::Tls, Transport::Tls).await;
}

#[tokio::test]
async fn first_contact_dtls_enrolment_dtls_maf() {
    first_contact(Transport::Dtls, Transport::Dtls).await;
}

#[tokio::test]
async fn first_contact_dtls_mef_tls_maf() {
    first_contact(Transport::Dtls, Transport::Tls).await;
}

#[tokio::test]
async fn mef_refuses_a_maf_that_is_not_the_instructions() {
    for transport in [Transport::Tls, Transport::Dtls] {
        let dir = TempDir::new("wrong-maf");
        let mef_store = open_mef_store(&dir).await;
        let mef = start_mef(&mef_store, transport).await;
        let mef_addr = mef.local_addr().unwrap();
        let e = enrol_via(mef_addr, transport).await;
        let ke_before = mef_store.get(store_id(&e.ke_id)).await.unwrap().unwrap();

        // MAF2 authenticates to the MEF with its own PSK, but the Enrolee was sent to MAF1.
        let (maf2, store2) = start_maf(
            MAF2_ID,
            maf_psk(MAF2_PSK_ID, &MAF2_PSK),
            mef_addr,
            transport,
            transport,
        )
        .await;
        let creds = enrolee_creds(&e, MAF2_ID);
        let err = timeout(
            LIMIT,
            register_client_via(
                maf2.local_addr().unwrap(),
                transport,
                &creds,
                unix_now() + 600,
            ),
        )
        .await
        .unwrap()
        .unwrap_err();
        assert!(is_unknown_identity(&err), "{transport}: {err:?}");
        assert_eq!(maf_len(&store2), 0, "{transport}");
        assert_eq!(mef_records(&mef_store).await, 1);
        assert_eq!(
            mef_store.get(store_id(&e.ke_id)).await.unwrap().unwrap(),
            ke_before
        );
        maf2.shutdown().await.unwrap();
        mef.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn unknown_or_tampered_ke_id_fails_and_stores_nothing() {
    for transport in [Transport::Tls, Transport::Dtls] {
        let dir = TempDir::new("tampered");
        let mef_store = open_mef_store(&dir).await;
        let mef = start_mef(&mef_store, transport).await;
        let mef_addr = mef.local_addr().unwrap();
        let e = enrol_via(mef_addr, transport).await;
        let (maf, store) = start_maf(
            MAF1_ID,
            maf_psk(MAF1_PSK_ID, &MAF1_PSK),
            mef_addr,
            transport,
            transport,
        )
        .await;
        let maf_addr = maf.local_addr().unwrap();

        // Flip one hex digit of the relative KeID.
        let mut rel = e.ke_id.relative().to_string();
        let first = if rel.starts_with('0') { "1" } else { "0" };
        rel.replace_range(0..1, first);
        let tampered = KeyId::parse(IdKind::Ke, &format!("{rel}@{MEF}")).unwrap();
        assert_ne!(tampered, e.ke_id);
        let creds = MafCredentials {
            psk_identity: tampered.as_str().into(),
            ..enrolee_creds(&e, MAF1_ID)
        };
        let err = timeout(
            LIMIT,
            register_client_via(maf_addr, transport, &creds, unix_now() + 600),
        )
        .await
        .unwrap()
        .unwrap_err();
        assert!(is_unknown_identity(&err), "{transport}: {err:?}");
        assert_eq!(maf_len(&store), 0, "{transport}");

        // Not a KeID at all: no lookup, same failure.
        let creds = MafCredentials {
            psk_identity: "nobody".into(),
            ..enrolee_creds(&e, MAF1_ID)
        };
        let err = timeout(
            LIMIT,
            register_client_via(maf_addr, transport, &creds, unix_now() + 600),
        )
        .await
        .unwrap()
        .unwrap_err();
        assert!(is_unknown_identity(&err), "{transport}: {err:?}");
        assert_eq!(maf_len(&store), 0, "{transport}");
        assert_eq!(mef_records(&mef_store).await, 1);
        maf.shutdown().await.unwrap();
        mef.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn unreachable_mef_fails_the_handshake_cleanly() {
    let dir = TempDir::new("unreachable");
    let mef_store = open_mef_store(&dir).await;
    let mef = start_mef(&mef_store, Transport::Tls).await;
    let mef_addr = mef.local_addr().unwrap();
    let e = enrol_via(mef_addr, Transport::Tls).await;
    // The MEF goes away: nothing listens on its port any more.
    mef.shutdown().await.unwrap();

    for maf_transport in [Transport::Tls, Transport::Dtls] {
        let (maf, store) = start_maf(
            MAF1_ID,
            maf_psk(MAF1_PSK_ID, &MAF1_PSK),
            mef_addr,
            Transport::Tls,
            maf_transport,
        )
        .await;
        let creds = enrolee_creds(&e, MAF1_ID);
        let err = timeout(
            LIMIT,
            register_client_via(
                maf.local_addr().unwrap(),
                maf_transport,
                &creds,
                unix_now() + 600,
            ),
        )
        .await
        .unwrap()
        .unwrap_err();
        assert!(is_unknown_identity(&err), "{maf_transport}: {err:?}");
        assert_eq!(maf_len(&store), 0);

        // The MAF still serves its configured clients.
        let b = MafCredentials {
            maf_fqdn: MAF1_ID.into(),
            psk_identity: format!("km-b@{MAF1_ID}"),
            key: Km::new([0xB1; 32]),
            origin: ID_B.into(),
        };
        let err = timeout(
            LIMIT,
            retrieve_key_via(
                maf.local_addr().unwrap(),
                maf_transport,
                &b,
                "0123456789ABCDEF0123456789ABCDEF",
            ),
        )
        .await
        .unwrap()
        .unwrap_err();
        assert_eq!(
            err.rsc(),
            Some(m2msec::frameworks::binding::Rsc::NotFound),
            "{err}"
        );
        maf.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn km_is_released_after_a_mef_restart() {
    let dir = TempDir::new("restart");
    let mef_store = open_mef_store(&dir).await;
    let mef = start_mef(&mef_store, Transport::Tls).await;
    let e = enrol_via(mef.local_addr().unwrap(), Transport::Tls).await;
    // Stop the MEF and close the database (redb allows one opener at a time).
    mef.shutdown().await.unwrap();
    drop(mef_store);

    let mef_store = open_mef_store(&dir).await;
    assert_eq!(mef_records(&mef_store).await, 1);
    let mef = start_mef(&mef_store, Transport::Dtls).await;
    let (maf, store) = start_maf(
        MAF1_ID,
        maf_psk(MAF1_PSK_ID, &MAF1_PSK),
        mef.local_addr().unwrap(),
        Transport::Dtls,
        Transport::Tls,
    )
    .await;
    let reg = timeout(
        LIMIT,
        register_client_via(
            maf.local_addr().unwrap(),
            Transport::Tls,
            &enrolee_creds(&e, MAF1_ID),
            unix_now() + 600,
        ),
    )
    .await
    .unwrap()
    .unwrap();
    let under_ke = store.get(store_id(&e.ke_id)).await.unwrap().unwrap();
    assert_eq!(under_ke.owner, ENROLEE);
    assert_eq!(under_ke.secret.expose(), keys::km(&e.ke, MAF1_ID).expose());
    assert!(store.get(store_id(&reg.km_id)).await.unwrap().is_some());
    maf.shutdown().await.unwrap();
    mef.shutdown().await.unwrap();
}

/// A `MakeWriter` collecting the log output of the current thread's tests.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Self;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn logs_name_identities_and_refusals_but_no_keys() {
    let logs = Logs::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    // Global: a thread-local default can miss events whose callsites other tests of this binary
    // registered concurrently (tracing caches their interest). Other tests' events land here too;
    // none may carry a key either.
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let dir = TempDir::new("logs");
    let mef_store = open_mef_store(&dir).await;
    let mef = start_mef(&mef_store, Transport::Tls).await;
    let mef_addr = mef.local_addr().unwrap();
    let e = enrol_via(mef_addr, Transport::Tls).await;
    let (maf, _store) = start_maf(
        MAF1_ID,
        maf_psk(MAF1_PSK_ID, &MAF1_PSK),
        mef_addr,
        Transport::Tls,
        Transport::Tls,
    )
    .await;
    let creds = enrolee_creds(&e, MAF1_ID);
    let maf_addr = maf.local_addr().unwrap();
    let reg = register_client_via(maf_addr, Transport::Tls, &creds, unix_now() + 600)
        .await
        .unwrap();
    let later = MafCredentials {
        psk_identity: reg.km_id.as_str().into(),
        ..creds.clone()
    };
    let (_, kc, _) = register_key_via(maf_addr, Transport::Tls, &later, &[ID_B], unix_now() + 600)
        .await
        .unwrap();
    // A refusal: a target that is no valid CSE-ID / AE-ID.
    let err = register_key_via(
        maf_addr,
        Transport::Tls,
        &later,
        &["not an id"],
        unix_now() + 600,
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.rsc(),
        Some(m2msec::frameworks::binding::Rsc::BadRequest)
    );
    maf.shutdown().await.unwrap();
    mef.shutdown().await.unwrap();

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("MEF handshake completed"), "{text}");
    assert!(text.contains("MAF handshake completed"), "{text}");
    assert!(text.contains(e.ke_id.as_str()), "{text}");
    assert!(text.contains(reg.km_id.as_str()), "{text}");
    assert!(text.contains("first contact: Km stored"), "{text}");
    assert!(text.contains("request refused"), "{text}");
    assert!(text.contains("rsc=4000"), "{text}");
    assert!(text.contains("parameter=\"targetIDs\""), "{text}");
    let lower = text.to_ascii_lowercase();
    for secret in [
        hex::encode(e.ke.expose()),
        hex::encode(creds.key.expose()),
        hex::encode(kc.expose()),
        hex::encode(KPM),
        hex::encode(MAF1_PSK),
    ] {
        assert!(!lower.contains(&secret), "a key in the logs");
    }
}
