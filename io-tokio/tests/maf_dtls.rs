//! The MAF over DTLS (and its stop handle over TLS and DTLS) on loopback: Key Registration and
//! Retrieval with the `_via(.., Transport::Dtls, ..)` clients, the refusals (non-target, unknown
//! KcID) leaving the store unchanged, a repeated `X-M2M-RI` answered from the session's cache,
//! a record that is not one request answered 4000, a KmID known only from the store (found by
//! the listener's asynchronous lookup while the handshake waits), an unknown identity refused
//! at once with `unknown_psk_identity` (no client retries), and shutdown.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use m2msec::enums::AlertDescription;
use m2msec::frameworks::binding::{
    to_body, KeyRegistrationRequest, Method, Request, Response, Rsc,
};
use m2msec::frameworks::config::{
    AssociationConfig, Lifespan, MafClient, MafConfig, MasterCredential,
};
use m2msec::frameworks::maf::{MafServer, SUID_MAF_SAEF};
use m2msec::keys::{IdKind, KeyId, Km};
use m2msec::store::{store_id, KeyKind, KeyRecord, KeySecret, MemoryKeyStore};
use m2msec::{ClientConfig, ClientPsk, UnixTime};
use m2msec_tokio::frameworks::maf::{
    register_client_via, register_key, register_key_via, retrieve_key_via, MafClientError,
    MafCredentials, MafService, ServiceHandle,
};
use m2msec_tokio::frameworks::Transport;
use m2msec_tokio::store::AsyncKeyStore;
use m2msec_tokio::{connect_dtls, Error};
use tokio::net::UdpSocket;
use tokio::time::timeout;
use zeroize::Zeroizing;

const MAF: &str = "maf.example.com";
const ID_A: &str = "C-ae-1";
const ID_B: &str = "/in-cse.example.net/in-cse";
const ID_C: &str = "C-ae-3";
const KM_A: &str = "km-a@maf.example.com";
const KM_B: &str = "km-b@maf.example.com";
const KM_C: &str = "km-c@maf.example.com";
const LIMIT: Duration = Duration::from_secs(30);

type Store = Arc<Mutex<MemoryKeyStore>>;

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
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
    MafServer::new(Arc::new(config), Lifespan::from_secs(86_400).unwrap())
}

fn creds(km_id: &str, key: u8, origin: &str) -> MafCredentials {
    MafCredentials {
        maf_fqdn: MAF.into(),
        psk_identity: km_id.into(),
        key: Km::new([key; 32]),
        origin: origin.into(),
    }
}

fn memory_store() -> Store {
    Arc::new(Mutex::new(MemoryKeyStore::new()))
}

fn store_len(store: &Store) -> usize {
    store.lock().unwrap().len()
}

async fn start_dtls(store: &Store) -> (ServiceHandle, SocketAddr) {
    let handle = MafService::new(maf_server(), Arc::clone(store))
        .bind_dtls("127.0.0.1:0")
        .await
        .unwrap();
    let addr = handle.local_addr().unwrap();
    (handle, addr)
}

#[tokio::test]
async fn dtls_registration_retrieval_and_refusals() {
    let store = memory_store();
    let (maf, addr) = start_dtls(&store).await;
    let expires = unix_now() + 3600;

    let (kc_id, kc, granted) = timeout(
        LIMIT,
        register_key_via(
            addr,
            Transport::Dtls,
            &creds(KM_A, 0xA1, ID_A),
            &[ID_B],
            expires,
        ),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(granted, expires);
    assert_eq!(kc_id.fqdn(), MAF);
    let record = store.get(store_id(&kc_id)).await.unwrap().unwrap();
    assert_eq!(record.kind, KeyKind::Kc);
    assert_eq!(record.owner, ID_A);
    assert_eq!(record.targets, vec![ID_B.to_owned()]);
    assert_eq!(record.secret.expose(), kc.expose());

    let (kc2, source, until) = timeout(
        LIMIT,
        retrieve_key_via(
            addr,
            Transport::Dtls,
            &creds(KM_B, 0xB1, ID_B),
            kc_id.relative(),
        ),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(kc2, kc);
    assert_eq!(source, ID_A);
    assert_eq!(until, expires);

    // C is configured but not a target: 4103, store unchanged.
    let len = store_len(&store);
    let err = retrieve_key_via(
        addr,
        Transport::Dtls,
        &creds(KM_C, 0xC1, ID_C),
        kc_id.relative(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.rsc(), Some(Rsc::NoPrivilege), "{err}");
    assert_eq!(store_len(&store), len);
    assert_eq!(store.get(store_id(&kc_id)).await.unwrap().unwrap(), record);

    // An unknown KcID: 4004.
    let err = retrieve_key_via(
        addr,
        Transport::Dtls,
        &creds(KM_B, 0xB1, ID_B),
        "00000000000000000000000000000000",
    )
    .await
    .unwrap_err();
    assert_eq!(err.rsc(), Some(Rsc::NotFound), "{err}");

    // A target outside A's association configuration: 4000-class refusal, nothing stored.
    let err = register_key_via(
        addr,
        Transport::Dtls,
        &creds(KM_B, 0xB1, ID_B),
        &[ID_C],
        expires,
    )
    .await
    .unwrap_err();
    assert!(err.rsc().is_some(), "{err:?}");
    assert_eq!(store_len(&store), len);

    // A wrong key for a configured KmID never completes the handshake (DTLS drops the records
    // that fail authentication; the client would give up after its retransmissions): nothing
    // stored.
    let wrong = timeout(
        Duration::from_secs(3),
        register_key_via(
            addr,
            Transport::Dtls,
            &creds(KM_A, 0x00, ID_A),
            &[ID_B],
            expires,
        ),
    )
    .await;
    assert!(!matches!(wrong, Ok(Ok(_))), "{wrong:?}");
    assert_eq!(store_len(&store), len);

    // A KeID-less, KmID-less identity: unknown_psk_identity.
    let err = register_client_via(
        addr,
        Transport::Dtls,
        &creds("stranger", 0xA1, ID_A),
        expires,
    )
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
    maf.shutdown().await.unwrap();
}

/// One raw DTLS session as B.
async fn raw_session(addr: SocketAddr, km_id: &str, key: u8) -> m2msec_tokio::DtlsConnection {
    let psk = ClientPsk::new(km_id.as_bytes(), Km::new([key; 32]).to_psk()).unwrap();
    let config = Arc::new(ClientConfig::builder(psk).build().unwrap());
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.connect(addr).await.unwrap();
    connect_dtls(socket, config, Some(MAF), 1232).await.unwrap()
}

async fn send_recv(conn: &m2msec_tokio::DtlsConnection, bytes: &[u8]) -> Vec<u8> {
    conn.send(bytes).await.unwrap();
    let mut buf = vec![0u8; 65536];
    let n = timeout(LIMIT, conn.recv(&mut buf)).await.unwrap().unwrap();
    buf.truncate(n);
    buf
}

fn retrieval(relative: &str, rid: &str) -> Vec<u8> {
    let request = Request {
        method: Method::Get,
        path: format!("/maf/keyRetrieval/{relative}"),
        origin: ID_B.into(),
        request_id: rid.into(),
        body: Zeroizing::new(Vec::new()),
    };
    let mut out = Zeroizing::new(Vec::new());
    request.encode(&mut out).unwrap();
    out.to_vec()
}

#[tokio::test]
async fn dtls_repeated_request_id_is_answered_from_the_cache() {
    let store = memory_store();
    let (maf, addr) = start_dtls(&store).await;
    let (kc_id, _kc, _) = register_key_via(
        addr,
        Transport::Dtls,
        &creds(KM_A, 0xA1, ID_A),
        &[ID_B],
        unix_now() + 3600,
    )
    .await
    .unwrap();

    let conn = raw_session(addr, KM_B, 0xB1).await;
    let first = send_recv(&conn, &retrieval(kc_id.relative(), "rid-1")).await;
    let (response, _) = Response::decode(&first).unwrap().unwrap();
    assert_eq!(response.rsc, Rsc::Ok);

    // The Kc goes away; a retransmission of rid-1 still gets the same answer (the procedure is
    // not run again), a new request id sees the store as it is.
    assert!(store.delete(store_id(&kc_id)).await.unwrap());
    let again = send_recv(&conn, &retrieval(kc_id.relative(), "rid-1")).await;
    assert_eq!(again, first);
    let fresh = send_recv(&conn, &retrieval(kc_id.relative(), "rid-2")).await;
    let (response, _) = Response::decode(&fresh).unwrap().unwrap();
    assert_eq!(response.rsc, Rsc::NotFound);
    assert_eq!(response.request_id, "rid-2");

    // A record that is not exactly one request: 4000.
    let bad = send_recv(&conn, b"NOT HTTP AT ALL\r\n\r\n").await;
    let text = String::from_utf8_lossy(&bad);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("X-M2M-RSC: 4000"), "{text}");
    assert_eq!(store_len(&store), 0);
    maf.shutdown().await.unwrap();
}

#[tokio::test]
async fn dtls_key_registration_uses_the_dtls_exporter() {
    // The KcID the client derives from its DTLS session's exporter is the one the MAF stored:
    // register_key_via checks relativeKeyID == its own KcID, so success proves both sides
    // exported the same bytes. A raw request with another session's KcID is not possible: the
    // MAF derives it, so two sessions give two KcIDs.
    let store = memory_store();
    let (maf, addr) = start_dtls(&store).await;
    let a = creds(KM_A, 0xA1, ID_A);
    let expires = unix_now() + 3600;
    let (one, _, _) = register_key_via(addr, Transport::Dtls, &a, &[ID_B], expires)
        .await
        .unwrap();
    let (two, _, _) = register_key_via(addr, Transport::Dtls, &a, &[ID_B], expires)
        .await
        .unwrap();
    assert_ne!(one, two);
    assert_eq!(store_len(&store), 2);

    // A keyRegistration whose mafFQDN is another MAF: 4000, nothing stored.
    let conn = raw_session(addr, KM_A, 0xA1).await;
    let body = to_body(&KeyRegistrationRequest {
        maf_fqdn: "other.example.com".into(),
        expiration_time: expires,
        suid: SUID_MAF_SAEF,
        target_ids: vec![ID_B.into()],
    })
    .unwrap();
    let request = Request {
        method: Method::Post,
        path: "/maf/keyRegistration".into(),
        origin: ID_A.into(),
        request_id: "rid-x".into(),
        body,
    };
    let mut out = Zeroizing::new(Vec::new());
    request.encode(&mut out).unwrap();
    let answer = send_recv(&conn, &out).await;
    let (response, _) = Response::decode(&answer).unwrap().unwrap();
    assert_eq!(response.rsc, Rsc::BadRequest);
    assert_eq!(store_len(&store), 2);
    maf.shutdown().await.unwrap();
}

#[tokio::test]
async fn dtls_km_id_known_only_from_the_store() {
    // A KmID this MAF assigned earlier (e.g. before a restart): not configured, in the store
    // only. bind_dtls suspends the handshake while the store answers: the first handshake
    // succeeds.
    let store = memory_store();
    let km_id = KeyId::parse(
        IdKind::Km,
        "km-0123456789abcdef0123456789abcdef@maf.example.com",
    )
    .unwrap();
    let km = Km::new([0x5A; 32]);
    store
        .put(
            KeyRecord::new(
                store_id(&km_id),
                KeyKind::Km,
                "Cae9",
                UnixTime(unix_now() + 3600),
                KeySecret::from_key(km.expose()),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    let (maf, addr) = start_dtls(&store).await;
    let creds = MafCredentials {
        maf_fqdn: MAF.into(),
        psk_identity: km_id.as_str().into(),
        key: km,
        origin: "Cae9".into(),
    };
    let (kc_id, _, _) = timeout(
        LIMIT,
        register_key_via(addr, Transport::Dtls, &creds, &[ID_B], unix_now() + 600),
    )
    .await
    .unwrap()
    .unwrap();
    let record = store.get(store_id(&kc_id)).await.unwrap().unwrap();
    assert_eq!(record.owner, "Cae9");
    assert_eq!(store_len(&store), 2);

    // An expired stored Km is not served.
    let old = KeyId::parse(
        IdKind::Km,
        "km-fedcba9876543210fedcba9876543210@maf.example.com",
    )
    .unwrap();
    store
        .put(
            KeyRecord::new(
                store_id(&old),
                KeyKind::Km,
                "Cae8",
                UnixTime(unix_now() - 10),
                KeySecret::from_key(&[0x5B; 32]),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    let err = register_key_via(
        addr,
        Transport::Dtls,
        &MafCredentials {
            maf_fqdn: MAF.into(),
            psk_identity: old.as_str().into(),
            key: Km::new([0x5B; 32]),
            origin: "Cae8".into(),
        },
        &[ID_B],
        unix_now() + 600,
    )
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
    assert_eq!(store_len(&store), 3);
    maf.shutdown().await.unwrap();
}

/// Whether `err` is a handshake the MAF refused with `unknown_psk_identity`.
fn is_unknown_identity(err: &MafClientError) -> bool {
    matches!(
        err,
        MafClientError::Transport(Error::Tls(m2msec::Error::AlertReceived(
            AlertDescription::UnknownPskIdentity
        )))
    )
}

#[tokio::test]
async fn dtls_unknown_identity_fails_promptly() {
    // The MAF refuses only once its lookup has failed, so the DTLS clients fail at once on
    // unknown_psk_identity instead of retrying: a KmID of this MAF in neither the configuration
    // nor the store, a KeID without first contact, an identity that is no key identifier, and a
    // KmID of another MAF.
    let store = memory_store();
    let (maf, addr) = start_dtls(&store).await;
    let identities = [
        "km-00000000000000000000000000000000@maf.example.com",
        "00112233445566778899AABBCCDDEEFF@mef.example.com",
        "stranger",
        "km-a@other.example.com",
    ];
    for identity in identities {
        let started = std::time::Instant::now();
        let err = timeout(
            Duration::from_secs(5),
            register_key_via(
                addr,
                Transport::Dtls,
                &creds(identity, 0xA1, ID_A),
                &[ID_B],
                unix_now() + 600,
            ),
        )
        .await
        .unwrap_or_else(|_| panic!("{identity}: no answer within 5 s"))
        .unwrap_err();
        let elapsed = started.elapsed();
        assert!(is_unknown_identity(&err), "{identity}: {err:?}");
        assert!(
            elapsed < Duration::from_secs(1),
            "{identity}: refused after {elapsed:?}"
        );
    }
    assert_eq!(store_len(&store), 0);
    maf.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_stops_tls_and_dtls() {
    let store = memory_store();
    let tls = MafService::new(maf_server(), Arc::clone(&store))
        .with_max_connections(2)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let tls_addr = tls.local_addr().unwrap();
    let a = creds(KM_A, 0xA1, ID_A);
    register_key(tls_addr, &a, &[ID_B], unix_now() + 3600)
        .await
        .unwrap();
    timeout(LIMIT, tls.shutdown()).await.unwrap().unwrap();
    let err = register_key(tls_addr, &a, &[ID_B], unix_now() + 3600)
        .await
        .unwrap_err();
    assert!(matches!(err, MafClientError::Transport(_)), "{err:?}");

    let (dtls, dtls_addr) = start_dtls(&store).await;
    register_key_via(dtls_addr, Transport::Dtls, &a, &[ID_B], unix_now() + 3600)
        .await
        .unwrap();
    timeout(LIMIT, dtls.shutdown()).await.unwrap().unwrap();
    let after = timeout(
        Duration::from_secs(15),
        register_key_via(dtls_addr, Transport::Dtls, &a, &[ID_B], unix_now() + 3600),
    )
    .await;
    assert!(!matches!(after, Ok(Ok(_))), "{after:?}");
    // Every task holding the store is gone.
    assert_eq!(Arc::strong_count(&store), 1);
    assert_eq!(store_len(&store), 2);
}

#[tokio::test]
async fn idle_tls_connection_is_closed_after_the_idle_timeout() {
    let store = memory_store();
    let maf = MafService::new(maf_server(), Arc::clone(&store))
        .with_idle_timeout(Duration::from_millis(300))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let psk = ClientPsk::new(KM_A.as_bytes(), Km::new([0xA1; 32]).to_psk()).unwrap();
    let config = Arc::new(ClientConfig::builder(psk).build().unwrap());
    let tcp = tokio::net::TcpStream::connect(maf.local_addr().unwrap())
        .await
        .unwrap();
    let mut tls = m2msec_tokio::connect(tcp, config, Some(MAF)).await.unwrap();
    let mut out = Vec::new();
    let read = timeout(
        Duration::from_secs(5),
        tokio::io::AsyncReadExt::read_to_end(&mut tls, &mut out),
    )
    .await;
    assert!(read.is_ok(), "the MAF did not close an idle connection");
    assert!(out.is_empty());
    maf.shutdown().await.unwrap();
}
