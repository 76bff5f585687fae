//! The MEF service, the Enrolee's `enrol` and the MAF's `fetch_km` over real TCP sockets on
//! 127.0.0.1, with a temporary redb key store.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use m2msec::enums::AlertDescription;
use m2msec::frameworks::binding::{Response, Rsc};
use m2msec::frameworks::config::{
    BootstrapCredential, BootstrapInstruction, EnroleeBootstrap, Lifespan, MefConfig, MefEnrolee,
};
use m2msec::frameworks::mef::{MafDirectory, MafEntry};
use m2msec::keys::{self, IdKind, KeyId};
use m2msec::store::{store_id, KeyKind};
use m2msec::{ClientConfig, ClientPsk, Psk};
use m2msec_tokio::frameworks::mef::{
    enrol, enrol_dtls, fetch_km, fetch_km_dtls, ClientError, MefEvent, MefHandle, MefService,
    ServiceConfigError, DTLS_MTU,
};
use m2msec_tokio::store::{AsyncKeyStore, Kek, RedbKeyStore};
use m2msec_tokio::{connect, connect_dtls, Error};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;
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
const LIMIT: Duration = Duration::from_secs(20);

/// A directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let mut rnd = [0u8; 8];
        getrandom::getrandom(&mut rnd).unwrap();
        let dir = std::env::temp_dir().join(format!(
            "m2msec-mef-{name}-{}-{}",
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

async fn open_store(dir: &TempDir) -> Arc<RedbKeyStore> {
    Arc::new(
        RedbKeyStore::open_async(dir.file(), Kek::new(KEK))
            .await
            .unwrap(),
    )
}

/// A MEF on 127.0.0.1 over `store`, reporting its events.
async fn start(store: Arc<RedbKeyStore>) -> (MefHandle, mpsc::Receiver<MefEvent>) {
    let (tx, rx) = mpsc::channel(64);
    let service = MefService::new(
        mef_config(),
        directory(),
        maf_psks(),
        Lifespan::from_secs(3600).unwrap(),
        store,
    )
    .unwrap()
    .with_events(tx);
    let handle = service.bind("127.0.0.1:0").await.unwrap();
    (handle, rx)
}

fn bootstrap(kpm: &[u8; 32], maf_id: &str) -> EnroleeBootstrap {
    EnroleeBootstrap::new(
        BootstrapCredential::new(KPM_ID, kpm).unwrap(),
        "https://mef.example.com",
        BootstrapInstruction::new(maf_id, ENROLEE).unwrap(),
    )
    .unwrap()
}

fn maf_psk(id: &str, key: &[u8; 32]) -> ClientPsk {
    ClientPsk::new(id.as_bytes(), Psk::new(key).unwrap()).unwrap()
}

async fn record_count(store: &Arc<RedbKeyStore>) -> usize {
    let s = Arc::clone(store);
    tokio::task::spawn_blocking(move || s.verify_all().unwrap())
        .await
        .unwrap()
}

fn refusal(e: ClientError) -> (Rsc, Option<String>) {
    match e {
        ClientError::Refused { rsc, parameter, .. } => (rsc, parameter),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn enrolment_then_km_for_the_target_maf_only() {
    let dir = TempDir::new("enrol");
    let store = open_store(&dir).await;
    let (mef, mut events) = start(Arc::clone(&store)).await;
    let addr = mef.local_addr().unwrap();

    let e = timeout(
        LIMIT,
        enrol(addr, &bootstrap(&KPM, MAF1_ID), MEF, Some(MEF)),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(e.maf_id, MAF1_ID);
    assert_eq!(e.maf_uri, "maf.example.com:5684");
    assert!(e.ke_id.as_str().ends_with("@mef.example.com"));
    assert!(!format!("{e:?}").contains(&hex::encode(e.ke.expose())));

    // The MEF stored exactly the Enrolee's KeID, with its Ke, for MAF1.
    let rec = store.get(store_id(&e.ke_id)).await.unwrap().unwrap();
    assert_eq!(rec.id, store_id(&e.ke_id));
    assert_eq!(rec.id, e.ke_id.as_str());
    assert_eq!(rec.kind, KeyKind::Ke);
    assert_eq!(rec.owner, ENROLEE);
    assert_eq!(rec.targets, vec![MAF1_ID.to_owned()]);
    assert_eq!(rec.not_after, e.expires);
    assert_eq!(rec.secret.expose(), e.ke.expose());
    assert_eq!(record_count(&store).await, 1);

    // MAF1 gets Km = HMAC(Ke, label || MAF-ID), computed here from the Enrolee's Ke.
    let got = timeout(
        LIMIT,
        fetch_km(
            addr,
            maf_psk(MAF1_PSK_ID, &MAF1_PSK),
            &e.ke_id,
            MAF1_ID,
            None,
        ),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(got.km, keys::km(&e.ke, MAF1_ID));
    assert_eq!(got.enrolee_id, ENROLEE);
    assert_eq!(got.expires, e.expires);

    // MAF2 authenticates fine but is not the target: 4103.
    let err = fetch_km(
        addr,
        maf_psk(MAF2_PSK_ID, &MAF2_PSK),
        &e.ke_id,
        MAF2_ID,
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(refusal(err), (Rsc::NoPrivilege, Some("mafID".into())));

    // MAF2 claiming to be MAF1 in X-M2M-Origin: the handshake identity decides, 4103.
    let err = fetch_km(
        addr,
        maf_psk(MAF2_PSK_ID, &MAF2_PSK),
        &e.ke_id,
        MAF1_ID,
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(
        refusal(err),
        (Rsc::NoPrivilege, Some("X-M2M-Origin".into()))
    );

    // The Enrolee's own session cannot fetch Km: it is no MAF.
    let err = fetch_km(addr, maf_psk(KPM_ID, &KPM), &e.ke_id, MAF1_ID, None)
        .await
        .unwrap_err();
    assert_eq!(refusal(err).0, Rsc::NoPrivilege);

    // The store is unchanged by the refusals.
    assert_eq!(record_count(&store).await, 1);

    mef.shutdown().await.unwrap();
    // Events name identities and status codes, never keys.
    let mut answered = Vec::new();
    while let Ok(ev) = events.try_recv() {
        let text = format!("{ev:?}");
        assert!(!text.contains(&hex::encode(e.ke.expose())), "{text}");
        assert!(!text.contains(&hex::encode(got.km.expose())), "{text}");
        if let MefEvent::Answered { rsc, .. } = ev {
            answered.push(rsc);
        }
    }
    assert_eq!(answered, vec![2001, 2000, 4103, 4103, 4103]);
}

#[tokio::test]
async fn unknown_ke_id_is_4004() {
    let dir = TempDir::new("unknown");
    let store = open_store(&dir).await;
    let (mef, _events) = start(Arc::clone(&store)).await;
    let addr = mef.local_addr().unwrap();
    let ke_id = KeyId::parse(
        IdKind::Ke,
        "00112233445566778899AABBCCDDEEFF@mef.example.com",
    )
    .unwrap();
    let err = timeout(
        LIMIT,
        fetch_km(addr, maf_psk(MAF1_PSK_ID, &MAF1_PSK), &ke_id, MAF1_ID, None),
    )
    .await
    .unwrap()
    .unwrap_err();
    assert_eq!(refusal(err), (Rsc::NotFound, Some("keID".into())));
    // A KeID of another MEF is unknown here too.
    let other = KeyId::parse(
        IdKind::Ke,
        "00112233445566778899AABBCCDDEEFF@mef.example.org",
    )
    .unwrap();
    let err = fetch_km(addr, maf_psk(MAF1_PSK_ID, &MAF1_PSK), &other, MAF1_ID, None)
        .await
        .unwrap_err();
    assert_eq!(refusal(err).0, Rsc::NotFound);
    mef.shutdown().await.unwrap();
}

#[tokio::test]
async fn wrong_kpm_fails_the_handshake_with_bad_record_mac() {
    let dir = TempDir::new("wrongkpm");
    let store = open_store(&dir).await;
    let (mef, mut events) = start(Arc::clone(&store)).await;
    let addr = mef.local_addr().unwrap();
    let err = timeout(
        LIMIT,
        enrol(addr, &bootstrap(&[0x12; 32], MAF1_ID), MEF, None),
    )
    .await
    .unwrap()
    .unwrap_err();
    match &err {
        ClientError::Transport(Error::Tls(m2msec::Error::AlertReceived(
            AlertDescription::BadRecordMac,
        ))) => {}
        other => panic!("expected bad_record_mac, got {other:?}"),
    }
    assert!(err.to_string().contains("bad_record_mac"), "{err}");
    let ev = timeout(LIMIT, events.recv()).await.unwrap().unwrap();
    match ev {
        MefEvent::HandshakeFailed { error, .. } => {
            assert!(error.contains("bad_record_mac"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(record_count(&store).await, 0);
    mef.shutdown().await.unwrap();
}

#[tokio::test]
async fn enrolee_not_authorized_for_the_maf_id_is_4103_and_stores_nothing() {
    let dir = TempDir::new("notauth");
    let store = open_store(&dir).await;
    let (mef, _events) = start(Arc::clone(&store)).await;
    let addr = mef.local_addr().unwrap();
    let err = timeout(LIMIT, enrol(addr, &bootstrap(&KPM, MAF2_ID), MEF, None))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(refusal(err), (Rsc::NoPrivilege, Some("mafID".into())));
    assert_eq!(record_count(&store).await, 0);
    mef.shutdown().await.unwrap();
}

#[tokio::test]
async fn fetch_survives_a_mef_restart() {
    let dir = TempDir::new("restart");
    let store = open_store(&dir).await;
    let (mef, _events) = start(Arc::clone(&store)).await;
    let addr = mef.local_addr().unwrap();
    let e = timeout(LIMIT, enrol(addr, &bootstrap(&KPM, MAF1_ID), MEF, None))
        .await
        .unwrap()
        .unwrap();
    // Stop the MEF and close the database (redb allows one opener at a time).
    mef.shutdown().await.unwrap();
    drop(store);

    let store = open_store(&dir).await;
    assert_eq!(record_count(&store).await, 1);
    let (mef, _events) = start(Arc::clone(&store)).await;
    let got = timeout(
        LIMIT,
        fetch_km(
            mef.local_addr().unwrap(),
            maf_psk(MAF1_PSK_ID, &MAF1_PSK),
            &e.ke_id,
            MAF1_ID,
            None,
        ),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(got.km, keys::km(&e.ke, MAF1_ID));
    mef.shutdown().await.unwrap();
}

#[tokio::test]
async fn malformed_request_gets_4000_and_the_connection_closes() {
    let dir = TempDir::new("malformed");
    let store = open_store(&dir).await;
    let (mef, _events) = start(Arc::clone(&store)).await;
    let tcp = TcpStream::connect(mef.local_addr().unwrap()).await.unwrap();
    let cfg = Arc::new(
        ClientConfig::builder(maf_psk(KPM_ID, &KPM))
            .build()
            .unwrap(),
    );
    let mut tls = timeout(LIMIT, connect(tcp, cfg, None))
        .await
        .unwrap()
        .unwrap();
    tls.write_all(b"GET /mef/enrolment HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    tls.flush().await.unwrap();
    let mut got = Vec::new();
    timeout(LIMIT, tls.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    let (resp, used) = Response::decode(&got).unwrap().unwrap();
    assert_eq!(resp.rsc, Rsc::BadRequest);
    assert_eq!(used, got.len());
    assert_eq!(record_count(&store).await, 0);
    mef.shutdown().await.unwrap();
}

#[tokio::test]
async fn service_configuration_is_checked() {
    let dir = TempDir::new("config");
    let store = open_store(&dir).await;
    let new = |psks| {
        MefService::new(
            mef_config(),
            directory(),
            psks,
            Lifespan::from_secs(60).unwrap(),
            Arc::clone(&store),
        )
        .map(|_| ())
    };
    // A directory entry without its PSK.
    let mut psks = maf_psks();
    psks.pop();
    assert_eq!(
        new(psks),
        Err(ServiceConfigError::MissingMafPsk(MAF2_PSK_ID.into()))
    );
    // A PSK for no directory entry.
    let mut psks = maf_psks();
    psks.push((
        KeyId::parse(IdKind::Kpm, "maf3@mef.example.com").unwrap(),
        Psk::new(&[1; 32]).unwrap(),
    ));
    assert!(matches!(
        new(psks),
        Err(ServiceConfigError::UnknownMafIdentity(_))
    ));
    // The same MAF twice.
    let mut psks = maf_psks();
    psks.push(maf_psks().remove(0));
    assert!(matches!(
        new(psks),
        Err(ServiceConfigError::DuplicateIdentity(_))
    ));
    assert_eq!(new(maf_psks()), Ok(()));
}

#[tokio::test]
async fn unknown_kpm_id_looks_like_a_wrong_key() {
    let dir = TempDir::new("unknownid");
    let store = open_store(&dir).await;
    let (mef, _events) = start(Arc::clone(&store)).await;
    let b = EnroleeBootstrap::new(
        BootstrapCredential::new("nobody@mef.example.com", &KPM).unwrap(),
        "https://mef.example.com",
        BootstrapInstruction::new(MAF1_ID, ENROLEE).unwrap(),
    )
    .unwrap();
    let err = timeout(LIMIT, enrol(mef.local_addr().unwrap(), &b, MEF, None))
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Transport(Error::Tls(m2msec::Error::AlertReceived(
                AlertDescription::BadRecordMac
            )))
        ),
        "{err:?}"
    );
    assert_eq!(record_count(&store).await, 0);
    mef.shutdown().await.unwrap();
}

#[tokio::test]
async fn silent_clients_are_dropped_after_the_timeout() {
    let dir = TempDir::new("idle");
    let store = open_store(&dir).await;
    let service = MefService::new(
        mef_config(),
        directory(),
        maf_psks(),
        Lifespan::from_secs(60).unwrap(),
        Arc::clone(&store),
    )
    .unwrap()
    .with_timeout(Duration::from_millis(300))
    .with_max_connections(4);
    let mef = service.bind("127.0.0.1:0").await.unwrap();
    let addr = mef.local_addr().unwrap();
    // No handshake at all: the server closes the TCP connection.
    let mut raw = TcpStream::connect(addr).await.unwrap();
    let mut sink = Vec::new();
    // Closed by the server (EOF or reset, either is fine), not left hanging.
    let _closed = timeout(LIMIT, raw.read_to_end(&mut sink)).await.unwrap();
    // A handshake, then half a request: closed too.
    let tcp = TcpStream::connect(addr).await.unwrap();
    let cfg = Arc::new(
        ClientConfig::builder(maf_psk(KPM_ID, &KPM))
            .build()
            .unwrap(),
    );
    let mut tls = connect(tcp, cfg, None).await.unwrap();
    tls.write_all(b"POST /mef/enrolment HTTP/1.1\r\n")
        .await
        .unwrap();
    tls.flush().await.unwrap();
    let mut got = Vec::new();
    timeout(LIMIT, tls.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert!(got.is_empty());
    // The service still serves.
    let e = timeout(LIMIT, enrol(addr, &bootstrap(&KPM, MAF1_ID), MEF, None))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e.maf_id, MAF1_ID);
    mef.shutdown().await.unwrap();
}

async fn start_dtls(store: Arc<RedbKeyStore>) -> (MefHandle, mpsc::Receiver<MefEvent>) {
    let (tx, rx) = mpsc::channel(64);
    let service = MefService::new(
        mef_config(),
        directory(),
        maf_psks(),
        Lifespan::from_secs(3600).unwrap(),
        store,
    )
    .unwrap()
    .with_events(tx);
    let handle = service.bind_dtls("127.0.0.1:0").await.unwrap();
    (handle, rx)
}

#[tokio::test]
async fn dtls_enrolment_fetch_and_refusals() {
    let dir = TempDir::new("dtls");
    let store = open_store(&dir).await;
    let (mef, _events) = start_dtls(Arc::clone(&store)).await;
    let addr = mef.local_addr().unwrap();
    let e = timeout(
        LIMIT,
        enrol_dtls(addr, &bootstrap(&KPM, MAF1_ID), MEF, Some(MEF)),
    )
    .await
    .unwrap()
    .unwrap();
    let rec = store.get(store_id(&e.ke_id)).await.unwrap().unwrap();
    assert_eq!(rec.secret.expose(), e.ke.expose());
    let got = timeout(
        LIMIT,
        fetch_km_dtls(
            addr,
            maf_psk(MAF1_PSK_ID, &MAF1_PSK),
            &e.ke_id,
            MAF1_ID,
            None,
        ),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(got.km, keys::km(&e.ke, MAF1_ID));
    let err = fetch_km_dtls(
        addr,
        maf_psk(MAF2_PSK_ID, &MAF2_PSK),
        &e.ke_id,
        MAF2_ID,
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(refusal(err), (Rsc::NoPrivilege, Some("mafID".into())));
    let err = timeout(
        LIMIT,
        enrol_dtls(addr, &bootstrap(&KPM, MAF2_ID), MEF, None),
    )
    .await
    .unwrap()
    .unwrap_err();
    assert_eq!(refusal(err), (Rsc::NoPrivilege, Some("mafID".into())));
    // A wrong Kpm: DTLS drops records that fail authentication, so the client gets an alert or
    // retransmits until it gives up; either way no session and nothing stored.
    let r = timeout(
        Duration::from_secs(3),
        enrol_dtls(addr, &bootstrap(&[0x12; 32], MAF1_ID), MEF, None),
    )
    .await;
    if let Ok(r) = r {
        let err = r.unwrap_err();
        assert!(
            matches!(
                err,
                ClientError::Transport(Error::Tls(
                    m2msec::Error::AlertReceived(_) | m2msec::Error::HandshakeTimeout
                ))
            ),
            "{err:?}"
        );
    }
    assert_eq!(record_count(&store).await, 1);
    mef.shutdown().await.unwrap();
}

#[tokio::test]
async fn dtls_repeated_request_id_is_answered_from_the_cache() {
    let dir = TempDir::new("dtlscache");
    let store = open_store(&dir).await;
    let (mef, mut events) = start_dtls(Arc::clone(&store)).await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.connect(mef.local_addr().unwrap()).await.unwrap();
    let cfg = Arc::new(
        ClientConfig::builder(maf_psk(MAF1_PSK_ID, &MAF1_PSK))
            .build()
            .unwrap(),
    );
    let conn = timeout(LIMIT, connect_dtls(socket, cfg, None, DTLS_MTU))
        .await
        .unwrap()
        .unwrap();
    let req = b"GET /mef/fetchCredentials/00112233445566778899AABBCCDDEEFF@mef.example.com/21 HTTP/1.1\r\nX-M2M-Origin: maf.example.com\r\nX-M2M-RI: r1\r\nContent-Length: 0\r\n\r\n";
    let mut answers = Vec::new();
    for _ in 0..2 {
        conn.send(req).await.unwrap();
        let mut buf = vec![0u8; 65536];
        let n = timeout(LIMIT, conn.recv(&mut buf)).await.unwrap().unwrap();
        buf.truncate(n);
        answers.push(buf);
    }
    assert_eq!(answers[0], answers[1]);
    let (resp, _) = Response::decode(&answers[0]).unwrap().unwrap();
    assert_eq!((resp.rsc, resp.request_id.as_str()), (Rsc::NotFound, "r1"));
    conn.close().await.unwrap();
    mef.shutdown().await.unwrap();
    // The procedure ran once.
    let mut answered = 0;
    while let Ok(ev) = events.try_recv() {
        if matches!(ev, MefEvent::Answered { .. }) {
            answered += 1;
        }
    }
    assert_eq!(answered, 1);
}

/// KpmIDs and MAF identities compare by the KeyId rules (D2): an FQDN in another case is the
/// same identity; a relative part in another case is not (K4: KpmID relative parts are exact).
#[tokio::test]
async fn psk_identities_compare_by_the_key_id_rules() {
    let dir = TempDir::new("d2");
    let store = open_store(&dir).await;
    let (mef, _events) = start(Arc::clone(&store)).await;
    let addr = mef.local_addr().unwrap();
    let upper_fqdn = EnroleeBootstrap::new(
        BootstrapCredential::new("dev1@MEF.Example.COM", &KPM).unwrap(),
        "https://mef.example.com",
        BootstrapInstruction::new(MAF1_ID, ENROLEE).unwrap(),
    )
    .unwrap();
    let e = timeout(LIMIT, enrol(addr, &upper_fqdn, MEF, Some(MEF)))
        .await
        .unwrap()
        .unwrap();
    let got = timeout(
        LIMIT,
        fetch_km(
            addr,
            maf_psk("maf1@Mef.Example.Com", &MAF1_PSK),
            &e.ke_id,
            MAF1_ID,
            None,
        ),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(got.km, keys::km(&e.ke, MAF1_ID));
    let upper_relative = EnroleeBootstrap::new(
        BootstrapCredential::new("DEV1@mef.example.com", &KPM).unwrap(),
        "https://mef.example.com",
        BootstrapInstruction::new(MAF1_ID, ENROLEE).unwrap(),
    )
    .unwrap();
    let err = timeout(LIMIT, enrol(addr, &upper_relative, MEF, Some(MEF)))
        .await
        .unwrap()
        .unwrap_err();
    // hide_unknown_identity: an unknown identity fails like a wrong key.
    assert!(err.to_string().contains("bad_record_mac"), "{err}");
    assert_eq!(record_count(&store).await, 1);
    mef.shutdown().await.unwrap();
}
