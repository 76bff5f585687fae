//! The MAF over loopback TLS-PSK: Key Registration by Entity A, the association A -> Registrar
//! (Entity B) keyed by the MAF-distributed Kc and bound to IdA, and the refusals: a non-target
//! asking for Kc, an unknown / tampered KcID, an expired Kc, plus a MAF restart between
//! registration and retrieval (redb) and first contact with a KeID (D13).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use m2msec::enums::AlertDescription;
use m2msec::frameworks::binding::Rsc;
use m2msec::frameworks::config::{
    AssociationConfig, Lifespan, MafClient, MafConfig, MasterCredential,
};
use m2msec::frameworks::maf::MafServer;
use m2msec::keys::{km, IdKind, Kc, Ke, KeyId, Km};
use m2msec::store::{store_id, KeyKind, KeyRecord, KeySecret, MemoryKeyStore};
use m2msec::UnixTime;
use m2msec_tokio::frameworks::maf::{
    register_key, retrieve_key, FetchKm, MafClientError, MafCredentials, MafService,
};
use m2msec_tokio::frameworks::registrar::{associate, LookupFailure, Registrar, RegistrarError};
use m2msec_tokio::store::{AsyncKeyStore, Kek, RedbKeyStore};
use m2msec_tokio::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

const MAF: &str = "maf.example.com";
const ID_A: &str = "C-ae-1";
const ID_B: &str = "/in-cse.example.net/in-cse";
const ID_C: &str = "C-ae-3";
const KM_A: &str = "km-a@maf.example.com";
const KM_B: &str = "km-b@maf.example.com";
const KM_C: &str = "km-c@maf.example.com";
const KC_LIFETIME: u64 = 24 * 3600;
const KE_ID: &str = "0123456789ABCDEF0123456789ABCDEF@mef.example.com";
const KE: [u8; 32] = [0xE1; 32];
const ENROLEE: &str = "C-enrolee-1";

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let mut rnd = [0u8; 8];
        getrandom::getrandom(&mut rnd).unwrap();
        let dir = std::env::temp_dir().join(format!(
            "m2msec-maf-{name}-{}-{}",
            std::process::id(),
            u64::from_le_bytes(rnd)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn maf_client(km_id: &str, id: &str, key: u8, peers: &[&str]) -> MafClient {
    let credential = MasterCredential::builder()
        .this_entity_identifier(id)
        .master_credential(&[key; 32])
        .master_credential_identifier(km_id)
        .build()
        .unwrap();
    let associations = peers
        .iter()
        .map(|p| {
            AssociationConfig::builder()
                .other_entity_identifier(p)
                .build()
                .unwrap()
        })
        .collect();
    MafClient::new(credential, associations).unwrap()
}

fn maf_server() -> MafServer {
    let config = MafConfig::new(
        MAF,
        vec![
            maf_client(KM_A, ID_A, 0xA1, &[ID_B, ID_C]),
            maf_client(KM_B, ID_B, 0xB1, &[ID_A]),
            maf_client(KM_C, ID_C, 0xC1, &[ID_A]),
        ],
    )
    .unwrap();
    MafServer::new(Arc::new(config), Lifespan::from_secs(KC_LIFETIME).unwrap())
}

fn creds(km_id: &str, key: u8, origin: &str) -> MafCredentials {
    MafCredentials {
        maf_fqdn: MAF.into(),
        psk_identity: km_id.into(),
        key: Km::new([key; 32]),
        origin: origin.into(),
    }
}

fn creds_a() -> MafCredentials {
    creds(KM_A, 0xA1, ID_A)
}

fn creds_b() -> MafCredentials {
    creds(KM_B, 0xB1, ID_B)
}

fn creds_c() -> MafCredentials {
    creds(KM_C, 0xC1, ID_C)
}

/// Starts `service` on a loopback port.
async fn start<S: AsyncKeyStore + 'static>(service: MafService<S>) -> (String, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move {
        let _ = Arc::new(service).serve(listener).await;
    });
    (addr, task)
}

/// Runs one Registrar accept on a loopback port; returns its address and the outcome.
async fn start_registrar(
    registrar: Registrar,
) -> (
    String,
    JoinHandle<
        Result<
            m2msec_tokio::frameworks::registrar::Association<tokio::net::TcpStream>,
            RegistrarError,
        >,
    >,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        registrar.accept(tcp).await
    });
    (addr, task)
}

fn memory_store() -> Arc<Mutex<MemoryKeyStore>> {
    Arc::new(Mutex::new(MemoryKeyStore::new()))
}

fn store_len(store: &Mutex<MemoryKeyStore>) -> usize {
    store.lock().unwrap().len()
}

fn refused(e: &MafClientError) -> Option<Rsc> {
    e.rsc()
}

#[tokio::test]
async fn register_associate_and_bind_ida() {
    let store = memory_store();
    let (maf, _maf_task) = start(MafService::new(maf_server(), store.clone())).await;

    let expires = unix_now() + 3600;
    let (kc_id, kc, granted) = register_key(&maf, &creds_a(), &[ID_B], expires)
        .await
        .unwrap();
    assert_eq!(granted, expires);
    assert_eq!(kc_id.fqdn(), MAF);
    assert_eq!(kc_id.relative().len(), 32);
    let record = store.get(store_id(&kc_id)).await.unwrap().unwrap();
    assert_eq!(record.kind, KeyKind::Kc);
    assert_eq!(record.owner, ID_A);
    assert_eq!(record.secret.expose(), kc.expose());

    let (addr, reg) = start_registrar(Registrar::new(maf.clone(), creds_b())).await;
    let mut a = associate(&addr, &kc_id, &kc).await.unwrap();
    let mut assoc = reg.await.unwrap().unwrap();
    assert_eq!(assoc.peer_id, ID_A);
    assert_eq!(assoc.kc_id, Some(kc_id.clone()));
    assert_eq!(assoc.expires, expires);
    assert_eq!(
        assoc.stream.info().psk_identity,
        kc_id.as_str().as_bytes().to_vec()
    );

    // The association carries data both ways.
    a.write_all(b"hello B").await.unwrap();
    a.flush().await.unwrap();
    let mut buf = [0u8; 7];
    assoc.stream.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"hello B");
    assoc.stream.write_all(b"hi A").await.unwrap();
    assoc.stream.flush().await.unwrap();
    let mut buf = [0u8; 4];
    a.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"hi A");

    // The same Kc again (a second association) is still released to B.
    let (kc2, source, _) = retrieve_key(&maf, &creds_b(), kc_id.relative())
        .await
        .unwrap();
    assert_eq!(kc2, kc);
    assert_eq!(source, ID_A);
}

#[tokio::test]
async fn non_target_is_refused_and_store_unchanged() {
    let store = memory_store();
    let (maf, _maf_task) = start(MafService::new(maf_server(), store.clone())).await;
    let (kc_id, _kc, _) = register_key(&maf, &creds_a(), &[ID_B], unix_now() + 3600)
        .await
        .unwrap();
    let before = store.get(store_id(&kc_id)).await.unwrap().unwrap();
    let len = store_len(&store);

    // C is a configured client of the MAF, but not a target of this Kc.
    let err = retrieve_key(&maf, &creds_c(), kc_id.relative())
        .await
        .unwrap_err();
    assert_eq!(refused(&err), Some(Rsc::NoPrivilege), "{err}");
    assert_eq!(store_len(&store), len);
    assert_eq!(store.get(store_id(&kc_id)).await.unwrap().unwrap(), before);

    // A registrar run as C refuses the association the same way.
    let (addr, reg) = start_registrar(Registrar::new(maf.clone(), creds_c())).await;
    // A holds the registered Kc; its handshake fails because C gets no Kc from the MAF.
    let a_kc = Kc::new(*before.secret.to_key32().unwrap().expose());
    let a = associate(&addr, &kc_id, &a_kc).await;
    assert!(a.is_err());
    match reg.await.unwrap().unwrap_err() {
        RegistrarError::Handshake {
            retrieval: Some(LookupFailure::Retrieval(e)),
            ..
        } => assert_eq!(e.rsc(), Some(Rsc::NoPrivilege)),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(store_len(&store), len);
}

#[tokio::test]
async fn unknown_or_tampered_kc_id_fails_the_association() {
    let store = memory_store();
    let (maf, _maf_task) = start(MafService::new(maf_server(), store.clone())).await;
    let (kc_id, kc, _) = register_key(&maf, &creds_a(), &[ID_B], unix_now() + 3600)
        .await
        .unwrap();

    // Flip one hex digit of the relative part.
    let mut rel = kc_id.relative().to_string();
    let first = if rel.starts_with('0') { "1" } else { "0" };
    rel.replace_range(0..1, first);
    let tampered = KeyId::parse(IdKind::Kc, &format!("{rel}@{MAF}")).unwrap();
    assert_ne!(tampered, kc_id);

    let (addr, reg) = start_registrar(Registrar::new(maf.clone(), creds_b())).await;
    let client = associate(&addr, &tampered, &kc).await.unwrap_err();
    assert!(
        matches!(
            client,
            Error::Tls(m2msec::Error::AlertReceived(
                AlertDescription::UnknownPskIdentity
            ))
        ),
        "{client:?}"
    );
    match reg.await.unwrap().unwrap_err() {
        RegistrarError::Handshake {
            tls,
            retrieval: Some(LookupFailure::Retrieval(e)),
        } => {
            assert_eq!(e.rsc(), Some(Rsc::NotFound), "{e}");
            assert!(
                matches!(tls, Error::Tls(m2msec::Error::UnknownPskIdentity)),
                "{tls:?}"
            );
        }
        other => panic!("unexpected {other:?}"),
    }

    // An identity of another MAF is not even looked up.
    let other = KeyId::parse(
        IdKind::Kc,
        &format!("{}@other-maf.example.com", kc_id.relative()),
    )
    .unwrap();
    let (addr, reg) = start_registrar(Registrar::new(maf.clone(), creds_b())).await;
    assert!(associate(&addr, &other, &kc).await.is_err());
    assert!(matches!(
        reg.await.unwrap().unwrap_err(),
        RegistrarError::Handshake {
            retrieval: Some(LookupFailure::NotMafIdentity),
            ..
        }
    ));
}

#[tokio::test]
async fn expired_kc_is_refused() {
    let store = memory_store();
    let (maf, _maf_task) = start(MafService::new(maf_server(), store.clone())).await;

    // The registrar's own check: its clock is past the expiry the MAF granted.
    let (kc_id, kc, _) = register_key(&maf, &creds_a(), &[ID_B], unix_now() + 3600)
        .await
        .unwrap();
    let late = Registrar::new(maf.clone(), creds_b()).with_clock(|| unix_now() + 7200);
    let (addr, reg) = start_registrar(late).await;
    assert!(associate(&addr, &kc_id, &kc).await.is_err());
    assert!(matches!(
        reg.await.unwrap().unwrap_err(),
        RegistrarError::Handshake {
            retrieval: Some(LookupFailure::Expired),
            ..
        }
    ));

    // The MAF's check: a Kc past its expirationTime is no longer released (4004).
    let (kc_id, kc, granted) = register_key(&maf, &creds_a(), &[ID_B], unix_now() + 2)
        .await
        .unwrap();
    while unix_now() < granted + 1 {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let err = retrieve_key(&maf, &creds_b(), kc_id.relative())
        .await
        .unwrap_err();
    assert_eq!(err.rsc(), Some(Rsc::NotFound), "{err}");
    let (addr, reg) = start_registrar(Registrar::new(maf.clone(), creds_b())).await;
    assert!(associate(&addr, &kc_id, &kc).await.is_err());
    assert!(reg.await.unwrap().is_err());
}

#[tokio::test]
async fn retrieval_survives_a_maf_restart() {
    let dir = TempDir::new("restart");
    let path = dir.0.join("maf.redb");
    let store = Arc::new(
        RedbKeyStore::open_async(&path, Kek::new([0x42; 32]))
            .await
            .unwrap(),
    );
    let (maf, maf_task) = start(MafService::new(maf_server(), store)).await;
    let (kc_id, kc, _) = register_key(&maf, &creds_a(), &[ID_B], unix_now() + 3600)
        .await
        .unwrap();

    // Stop the MAF: the serve loop and every connection it serves drop their store handles.
    maf_task.abort();
    let _ = maf_task.await;
    let mut reopened = None;
    for _ in 0..100 {
        match RedbKeyStore::open_async(&path, Kek::new([0x42; 32])).await {
            Ok(s) => {
                reopened = Some(s);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    let store = Arc::new(reopened.expect("the redb file reopens"));
    let (maf, _maf_task) = start(MafService::new(maf_server(), store)).await;

    let (addr, reg) = start_registrar(Registrar::new(maf.clone(), creds_b())).await;
    let _a = associate(&addr, &kc_id, &kc).await.unwrap();
    let assoc = reg.await.unwrap().unwrap();
    assert_eq!(assoc.peer_id, ID_A);
}

/// A first-contact fetch that derives Km from the one Ke it knows, as the MEF would.
fn fetch_known_ke() -> FetchKm {
    Arc::new(|ke_id: KeyId| {
        Box::pin(async move {
            if ke_id.as_str() != KE_ID {
                return None;
            }
            let km = km(&Ke::new(KE), MAF);
            let record = KeyRecord::new(
                store_id(&ke_id),
                KeyKind::Km,
                ENROLEE,
                UnixTime(unix_now() + 3600),
                KeySecret::from_key(km.expose()),
            )
            .ok()?;
            Some((km, record))
        })
    })
}

#[tokio::test]
async fn first_contact_with_a_ke_id() {
    let store = memory_store();
    let service = MafService::new(maf_server(), store.clone()).with_fetch_km(fetch_known_ke());
    let (maf, _maf_task) = start(service).await;

    let enrolee = MafCredentials {
        maf_fqdn: MAF.into(),
        psk_identity: KE_ID.into(),
        key: km(&Ke::new(KE), MAF),
        origin: ENROLEE.into(),
    };
    let (kc_id, kc, _) = register_key(&maf, &enrolee, &[ID_B], unix_now() + 3600)
        .await
        .unwrap();
    let ke_id = KeyId::parse(IdKind::Ke, KE_ID).unwrap();
    let km_record = store.get(store_id(&ke_id)).await.unwrap().unwrap();
    assert_eq!(km_record.kind, KeyKind::Km);
    assert_eq!(km_record.owner, ENROLEE);

    let (addr, reg) = start_registrar(Registrar::new(maf.clone(), creds_b())).await;
    let _a = associate(&addr, &kc_id, &kc).await.unwrap();
    assert_eq!(reg.await.unwrap().unwrap().peer_id, ENROLEE);

    // An unknown KeID: the fetch gives nothing, the handshake fails, nothing is stored.
    let len = store_len(&store);
    let stranger = MafCredentials {
        psk_identity: "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF@mef.example.com".into(),
        ..enrolee
    };
    let err = register_key(&maf, &stranger, &[ID_B], unix_now() + 3600)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            MafClientError::Transport(Error::Tls(m2msec::Error::AlertReceived(
                AlertDescription::UnknownPskIdentity
            )))
        ),
        "{err:?}"
    );
    assert_eq!(store_len(&store), len);
}

#[tokio::test]
async fn malformed_request_gets_4000_and_close() {
    let (maf, _maf_task) = start(MafService::new(maf_server(), memory_store())).await;
    let psk = m2msec::ClientPsk::new(KM_A.as_bytes(), Km::new([0xA1; 32]).to_psk()).unwrap();
    let config = Arc::new(m2msec::ClientConfig::builder(psk).build().unwrap());
    let tcp = tokio::net::TcpStream::connect(&maf).await.unwrap();
    let mut tls = m2msec_tokio::connect(tcp, config, Some(MAF)).await.unwrap();
    tls.write_all(b"NOT HTTP AT ALL\r\n\r\n").await.unwrap();
    tls.flush().await.unwrap();
    let mut out = Vec::new();
    tls.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("X-M2M-RSC: 4000"), "{text}");
}
