//! The registrar (Entity B) over loopback TLS and DTLS: pre-provisioned associations (right IdA
//! bound and reported to A, wrong Kpsa, unknown KpsaId, expired association configuration),
//! MAF-based associations (success, a Kc from a peer B is not configured for, an expired Kc)
//! and the close at the end of `securityAssociationLifespan`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use m2msec::enums::AlertDescription;
use m2msec::frameworks::binding::{AssociationFramework, Rsc};
use m2msec::frameworks::config::{
    AssociationConfig, Domain, EndPointConfig, Lifespan, MafClient, MafConfig, MafCredential,
    MasterCredential, PreProvisionedAssociation, PreProvisionedCredential,
};
use m2msec::frameworks::maf::MafServer;
use m2msec::keys::{IdKind, KeyId, Km, Kpsa};
use m2msec::store::MemoryKeyStore;
use m2msec::UnixTime;
use m2msec_tokio::frameworks::maf::{register_key, MafCredentials, MafService};
use m2msec_tokio::frameworks::registrar::{
    associate_kpsa, associate_maf, associate_pre_provisioned, AssociateError, CloseReason,
    Framework, LookupFailure, Refusal, Registrar, RegistrarError, RegistrarEvent, RegistrarHandle,
};
use m2msec_tokio::frameworks::Transport;
use m2msec_tokio::Error;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

const MAF: &str = "maf.example.com";
const ID_A: &str = "C-ae-1";
const ID_B: &str = "/in-cse.example.net/in-cse";
const ID_C: &str = "C-ae-3";
const KM_A: &str = "km-a@maf.example.com";
const KM_B: &str = "km-b@maf.example.com";
const KM_C: &str = "km-c@maf.example.com";
const KPSA_ID: &str = "ae1.in@in-cse.example.net";
const KPSA: [u8; 32] = [0x5A; 32];
const KPSA_ID_EXPIRED: &str = "ae9.in@in-cse.example.net";
const ID_EXPIRED: &str = "C-ae-9";
const KPSA_ID_SHORT: &str = "ae2.in@in-cse.example.net";
const ID_SHORT: &str = "C-ae-2";
const LIFESPAN: u64 = 3600;
const MAF_LIFESPAN: u64 = 7200;
const TRANSPORTS: [Transport; 2] = [Transport::Tls, Transport::Dtls];

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn pre_provisioned(
    kpsa_id: &str,
    key: [u8; 32],
    other: &str,
    expiry: Option<u64>,
    lifespan: u64,
) -> PreProvisionedAssociation {
    let mut assoc = AssociationConfig::builder()
        .other_entity_identifier(other)
        .security_association_lifespan_secs(lifespan);
    if let Some(e) = expiry {
        assoc = assoc.association_configuration_expiry(UnixTime(e));
    }
    PreProvisionedAssociation::new(
        PreProvisionedCredential::new(&key, kpsa_id).unwrap(),
        None,
        assoc.build().unwrap(),
    )
    .unwrap()
}

/// Entity B's configuration: three pre-provisioned peers (one expired, one with a 1 s
/// lifespan) and one MAF-based peer (A; not C).
fn config_b() -> Arc<EndPointConfig> {
    let master = MasterCredential::builder()
        .this_entity_identifier(ID_B)
        .master_credential(&[0xB1; 32])
        .master_credential_identifier(KM_B)
        .build()
        .unwrap();
    let config = EndPointConfig::builder(Domain::Infrastructure)
        .pre_provisioned(pre_provisioned(
            KPSA_ID,
            KPSA,
            ID_A,
            Some(unix_now() + 86_400),
            LIFESPAN,
        ))
        .pre_provisioned(pre_provisioned(
            KPSA_ID_EXPIRED,
            [0x9A; 32],
            ID_EXPIRED,
            Some(1_000_000),
            LIFESPAN,
        ))
        .pre_provisioned(pre_provisioned(
            KPSA_ID_SHORT,
            [0x2A; 32],
            ID_SHORT,
            None,
            1,
        ))
        .maf_credential(MafCredential::new(MAF, master).unwrap())
        .maf_association(
            AssociationConfig::builder()
                .other_entity_identifier(ID_A)
                .security_association_lifespan_secs(MAF_LIFESPAN)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    Arc::new(config)
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

/// The MAF knows A, B and C; A and C may both name B as a target.
async fn start_maf() -> (String, JoinHandle<()>) {
    let config = MafConfig::new(
        MAF,
        vec![
            maf_client(KM_A, ID_A, 0xA1, &[ID_B]),
            maf_client(KM_B, ID_B, 0xB1, &[ID_A, ID_C]),
            maf_client(KM_C, ID_C, 0xC1, &[ID_B]),
        ],
    )
    .unwrap();
    let server = MafServer::new(Arc::new(config), Lifespan::from_secs(86_400).unwrap());
    let store = Arc::new(Mutex::new(MemoryKeyStore::new()));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let service = MafService::new(server, store);
    let task = tokio::spawn(async move {
        let _ = Arc::new(service).serve(listener).await;
    });
    (addr, task)
}

fn creds(km_id: &str, key: u8, origin: &str) -> MafCredentials {
    MafCredentials {
        maf_fqdn: MAF.into(),
        psk_identity: km_id.into(),
        key: Km::new([key; 32]),
        origin: origin.into(),
    }
}

type Events = mpsc::Receiver<RegistrarEvent>;

/// Starts `registrar` on a loopback port over `transport`.
async fn serve(
    registrar: Registrar,
    transport: Transport,
) -> (SocketAddr, RegistrarHandle, Events) {
    let (tx, rx) = mpsc::channel(64);
    let registrar = registrar
        .with_events(tx)
        .with_handshake_timeout(Duration::from_secs(2));
    let handle = match transport {
        Transport::Tls => registrar.bind("127.0.0.1:0").await.unwrap(),
        Transport::Dtls => registrar.bind_dtls("127.0.0.1:0").await.unwrap(),
    };
    (handle.local_addr().unwrap(), handle, rx)
}

/// The next event `pick` accepts (others are skipped), within 10 s.
async fn next_event<T>(rx: &mut Events, mut pick: impl FnMut(RegistrarEvent) -> Option<T>) -> T {
    let wait = async {
        loop {
            let e = rx.recv().await.expect("events channel closed");
            if let Some(t) = pick(e) {
                return t;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .expect("no such event")
}

/// The next refusal: (transport, identity, refusal).
async fn next_refusal(rx: &mut Events) -> (Transport, Option<String>, Refusal) {
    next_event(rx, |e| match e {
        RegistrarEvent::Refused {
            transport,
            identity,
            refusal,
            ..
        } => Some((transport, identity, refusal)),
        _ => None,
    })
    .await
}

fn kpsa_id(s: &str) -> KeyId {
    KeyId::parse(IdKind::Kpsa, s).unwrap()
}

fn alert(e: &AssociateError) -> Option<AlertDescription> {
    match e {
        AssociateError::Transport(Error::Tls(m2msec::Error::AlertReceived(a))) => Some(*a),
        _ => None,
    }
}

#[tokio::test]
async fn pre_provisioned_binds_the_configured_ida() {
    for transport in TRANSPORTS {
        let (addr, handle, mut events) = serve(Registrar::from_config(config_b()), transport).await;
        let before = unix_now();
        let entry = &config_b().pre_provisioned()[0].clone();
        let mut a = associate_pre_provisioned(addr, transport, entry)
            .await
            .unwrap();
        assert_eq!(a.transport(), transport);
        assert_eq!(a.info().psk_identity, KPSA_ID.as_bytes());

        let info = next_event(&mut events, |e| match e {
            RegistrarEvent::Accepted { info, .. } => Some(info),
            _ => None,
        })
        .await;
        assert_eq!(info.framework, Framework::PreProvisioned);
        assert_eq!(info.bound_identity, ID_A);
        assert_eq!(info.key_id, kpsa_id(KPSA_ID).as_str());
        assert_eq!(info.transport, transport);
        assert_eq!(info.key_expires, None);
        assert_eq!(info.deadline, Some(info.established_at + LIFESPAN));
        assert!(info.established_at >= before);

        // What A learns over the association equals what B bound.
        let seen = a.association_info(ID_A).await.unwrap();
        assert_eq!(seen.bound_identity, ID_A);
        assert_eq!(seen.framework, AssociationFramework::PreProvisioned);
        assert_eq!(seen.key_identifier, KPSA_ID);
        assert_eq!(seen.expiration_time, info.deadline);
        assert_eq!(seen, info.to_response());

        // Only the bound identity may ask.
        let err = a.association_info(ID_C).await.unwrap_err();
        assert!(
            matches!(
                err,
                AssociateError::Refused {
                    rsc: Rsc::NoPrivilege,
                    ..
                }
            ),
            "{err:?}"
        );
        // The association survives a refused request.
        assert_eq!(a.association_info(ID_A).await.unwrap(), seen);

        a.close().await.unwrap();
        let reason = next_event(&mut events, |e| match e {
            RegistrarEvent::Closed {
                reason,
                bound_identity,
                transport: t,
                ..
            } => {
                assert_eq!(bound_identity, ID_A);
                assert_eq!(t, transport);
                Some(reason)
            }
            _ => None,
        })
        .await;
        assert_eq!(reason, CloseReason::PeerClosed, "{transport}");
        handle.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn kpsa_id_compares_by_the_key_id_rules() {
    // K2/K4: the FQDN compares case-insensitively, a KpsaID's relative part exactly.
    let (addr, handle, mut events) =
        serve(Registrar::from_config(config_b()), Transport::Tls).await;
    let upper_fqdn = kpsa_id("ae1.in@IN-CSE.Example.NET");
    let mut a = associate_kpsa(addr, Transport::Tls, &upper_fqdn, &Kpsa::new(KPSA))
        .await
        .unwrap();
    assert_eq!(a.association_info(ID_A).await.unwrap().bound_identity, ID_A);
    a.close().await.unwrap();

    let upper_relative = kpsa_id("AE1.in@in-cse.example.net");
    let err = associate_kpsa(addr, Transport::Tls, &upper_relative, &Kpsa::new(KPSA))
        .await
        .unwrap_err();
    assert_eq!(
        alert(&err),
        Some(AlertDescription::UnknownPskIdentity),
        "{err:?}"
    );
    let (_, identity, refusal) = next_refusal(&mut events).await;
    assert_eq!(identity.as_deref(), Some("AE1.in@in-cse.example.net"));
    assert_eq!(refusal, Refusal::UnknownIdentity);
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn wrong_kpsa_fails_on_both_sides() {
    let wrong = Kpsa::new([0x5B; 32]);
    // TLS: the registrar cannot authenticate A's Finished and says so (bad_record_mac).
    let (addr, handle, mut events) =
        serve(Registrar::from_config(config_b()), Transport::Tls).await;
    let err = associate_kpsa(addr, Transport::Tls, &kpsa_id(KPSA_ID), &wrong)
        .await
        .unwrap_err();
    assert_eq!(alert(&err), Some(AlertDescription::BadRecordMac), "{err:?}");
    let (transport, identity, refusal) = next_refusal(&mut events).await;
    assert_eq!(transport, Transport::Tls);
    assert_eq!(identity.as_deref(), Some(KPSA_ID));
    assert_eq!(refusal, Refusal::HandshakeFailed);
    handle.shutdown().await.unwrap();

    // DTLS: records that do not authenticate are dropped, so both sides time out.
    let (addr, handle, mut events) =
        serve(Registrar::from_config(config_b()), Transport::Dtls).await;
    let client = tokio::time::timeout(
        Duration::from_secs(4),
        associate_kpsa(addr, Transport::Dtls, &kpsa_id(KPSA_ID), &wrong),
    )
    .await;
    match client {
        Err(_) => {}
        Ok(Err(e)) => assert!(
            alert(&e).is_some() || matches!(e, AssociateError::Transport(_)),
            "{e:?}"
        ),
        Ok(Ok(_)) => panic!("a wrong Kpsa established a DTLS association"),
    }
    let (transport, _, refusal) = next_refusal(&mut events).await;
    assert_eq!(transport, Transport::Dtls);
    assert!(
        matches!(refusal, Refusal::TimedOut | Refusal::HandshakeFailed),
        "{refusal:?}"
    );
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn unknown_kpsa_id_is_refused() {
    for transport in TRANSPORTS {
        let (addr, handle, mut events) = serve(Registrar::from_config(config_b()), transport).await;
        let unknown = kpsa_id("nobody.in@in-cse.example.net");
        let err = associate_kpsa(addr, transport, &unknown, &Kpsa::new(KPSA))
            .await
            .unwrap_err();
        assert_eq!(
            alert(&err),
            Some(AlertDescription::UnknownPskIdentity),
            "{transport}: {err:?}"
        );
        let (t, identity, refusal) = next_refusal(&mut events).await;
        assert_eq!(t, transport);
        assert_eq!(identity.as_deref(), Some(unknown.as_str()));
        assert_eq!(refusal, Refusal::UnknownIdentity);
        handle.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn expired_association_configuration_is_refused() {
    for transport in TRANSPORTS {
        let (addr, handle, mut events) = serve(Registrar::from_config(config_b()), transport).await;
        let err = associate_kpsa(
            addr,
            transport,
            &kpsa_id(KPSA_ID_EXPIRED),
            &Kpsa::new([0x9A; 32]),
        )
        .await
        .unwrap_err();
        assert_eq!(
            alert(&err),
            Some(AlertDescription::UnknownPskIdentity),
            "{transport}: {err:?}"
        );
        let (t, identity, refusal) = next_refusal(&mut events).await;
        assert_eq!(t, transport);
        assert_eq!(identity.as_deref(), Some(KPSA_ID_EXPIRED));
        assert_eq!(refusal, Refusal::AssociationExpired);
        handle.shutdown().await.unwrap();
    }

    // The typed reason through `accept`, naming the parameter.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let reg = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        Registrar::from_config(config_b()).accept(tcp).await
    });
    let _ = associate_kpsa(
        addr,
        Transport::Tls,
        &kpsa_id(KPSA_ID_EXPIRED),
        &Kpsa::new([0x9A; 32]),
    )
    .await;
    match reg.await.unwrap().unwrap_err() {
        RegistrarError::Handshake {
            retrieval: Some(LookupFailure::AssociationExpired(e)),
            ..
        } => {
            assert_eq!(e.name, "associationConfigurationExpiry");
            assert_eq!(e.expiry, UnixTime(1_000_000));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn maf_based_binds_ida_over_tls_and_dtls() {
    let (maf, _maf_task) = start_maf().await;
    for transport in TRANSPORTS {
        let kc_expiry = unix_now() + 600;
        let (kc_id, kc, granted) = register_key(&maf, &creds(KM_A, 0xA1, ID_A), &[ID_B], kc_expiry)
            .await
            .unwrap();
        assert_eq!(granted, kc_expiry);
        let registrar = Registrar::from_config(config_b())
            .with_maf(maf.clone(), Transport::Tls)
            .unwrap();
        let (addr, handle, mut events) = serve(registrar, transport).await;
        let mut a = associate_maf(addr, transport, &kc_id, &kc).await.unwrap();
        let info = next_event(&mut events, |e| match e {
            RegistrarEvent::Accepted { info, .. } => Some(info),
            _ => None,
        })
        .await;
        assert_eq!(info.framework, Framework::MafBased);
        assert_eq!(info.bound_identity, ID_A);
        assert_eq!(info.key_id, kc_id.as_str());
        assert_eq!(info.key_expires, Some(granted));
        // The Kc expires before the configured lifespan: the deadline is the Kc's.
        assert_eq!(info.deadline, Some(granted));
        assert_eq!(info.transport, transport);

        let seen = a.association_info(ID_A).await.unwrap();
        assert_eq!(seen.bound_identity, ID_A);
        assert_eq!(seen.framework, AssociationFramework::MafBased);
        assert_eq!(seen.key_identifier, kc_id.as_str());
        assert_eq!(seen.expiration_time, Some(granted));
        a.close().await.unwrap();
        handle.shutdown().await.unwrap();
    }

    // A long-lived Kc: the configured lifespan bounds the association.
    let (kc_id, kc, _) = register_key(&maf, &creds(KM_A, 0xA1, ID_A), &[ID_B], unix_now() + 86_000)
        .await
        .unwrap();
    let registrar = Registrar::from_config(config_b())
        .with_maf(maf.clone(), Transport::Tls)
        .unwrap();
    let (addr, handle, _events) = serve(registrar, Transport::Tls).await;
    let mut a = associate_maf(addr, Transport::Tls, &kc_id, &kc)
        .await
        .unwrap();
    let seen = a.association_info(ID_A).await.unwrap();
    let deadline = seen.expiration_time.unwrap();
    let now = unix_now();
    assert!(
        deadline <= now + MAF_LIFESPAN && deadline + 5 >= now + MAF_LIFESPAN,
        "{deadline}"
    );
    handle.shutdown().await.unwrap();
}

/// B retrieves Kc from the MAF over DTLS (`coaps://`), independently of how A reaches B.
#[tokio::test]
async fn registrar_retrieves_kc_over_dtls() {
    let config = MafConfig::new(
        MAF,
        vec![
            maf_client(KM_A, ID_A, 0xA1, &[ID_B]),
            maf_client(KM_B, ID_B, 0xB1, &[ID_A, ID_C]),
        ],
    )
    .unwrap();
    let server = MafServer::new(Arc::new(config), Lifespan::from_secs(86_400).unwrap());
    let store = Arc::new(Mutex::new(MemoryKeyStore::new()));
    let maf_dtls = MafService::new(server, store.clone())
        .bind_dtls("127.0.0.1:0")
        .await
        .unwrap();
    let maf_addr = maf_dtls.local_addr().unwrap();
    let (kc_id, kc, _) = m2msec_tokio::frameworks::maf::register_key_via(
        maf_addr,
        Transport::Dtls,
        &creds(KM_A, 0xA1, ID_A),
        &[ID_B],
        unix_now() + 600,
    )
    .await
    .unwrap();
    for transport in TRANSPORTS {
        let registrar = Registrar::from_config(config_b())
            .with_maf(maf_addr.to_string(), Transport::Dtls)
            .unwrap();
        let (addr, handle, mut events) = serve(registrar, transport).await;
        let mut a = associate_maf(addr, transport, &kc_id, &kc).await.unwrap();
        let info = next_event(&mut events, |e| match e {
            RegistrarEvent::Accepted { info, .. } => Some(info),
            _ => None,
        })
        .await;
        assert_eq!(info.bound_identity, ID_A);
        assert_eq!(info.key_id, kc_id.as_str());
        assert_eq!(a.association_info(ID_A).await.unwrap().bound_identity, ID_A);
        a.close().await.unwrap();
        handle.shutdown().await.unwrap();
    }
    maf_dtls.shutdown().await.unwrap();
}

#[tokio::test]
async fn kc_from_a_peer_b_is_not_configured_for_is_refused() {
    let (maf, _maf_task) = start_maf().await;
    // C may name B at the MAF, and the MAF releases that Kc to B; but B's configuration has
    // no MAF-based association with C.
    for transport in TRANSPORTS {
        let (kc_id, kc, _) =
            register_key(&maf, &creds(KM_C, 0xC1, ID_C), &[ID_B], unix_now() + 600)
                .await
                .unwrap();
        let registrar = Registrar::from_config(config_b())
            .with_maf(maf.clone(), Transport::Tls)
            .unwrap();
        let (addr, handle, mut events) = serve(registrar, transport).await;
        let err = associate_maf(addr, transport, &kc_id, &kc)
            .await
            .unwrap_err();
        assert_eq!(
            alert(&err),
            Some(AlertDescription::UnknownPskIdentity),
            "{transport}: {err:?}"
        );
        let (t, identity, refusal) = next_refusal(&mut events).await;
        assert_eq!(t, transport);
        assert_eq!(identity.as_deref(), Some(kc_id.as_str()));
        assert_eq!(refusal, Refusal::NotConfiguredPeer);
        handle.shutdown().await.unwrap();
    }

    // The typed reason names the source.
    let (kc_id, kc, _) = register_key(&maf, &creds(KM_C, 0xC1, ID_C), &[ID_B], unix_now() + 600)
        .await
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let registrar = Registrar::from_config(config_b())
        .with_maf(maf.clone(), Transport::Tls)
        .unwrap();
    let reg = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        registrar.accept(tcp).await
    });
    let _ = associate_maf(addr, Transport::Tls, &kc_id, &kc).await;
    match reg.await.unwrap().unwrap_err() {
        RegistrarError::Handshake {
            retrieval: Some(LookupFailure::NotConfiguredPeer(source)),
            ..
        } => assert_eq!(source, ID_C),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn expired_kc_is_refused() {
    let (maf, _maf_task) = start_maf().await;
    for transport in TRANSPORTS {
        let (kc_id, kc, _) =
            register_key(&maf, &creds(KM_A, 0xA1, ID_A), &[ID_B], unix_now() + 600)
                .await
                .unwrap();
        // B's clock is past the Kc's expirationTime (the MAF still releases it).
        let registrar = Registrar::from_config(config_b())
            .with_maf(maf.clone(), Transport::Tls)
            .unwrap()
            .with_clock(|| unix_now() + 3600);
        let (addr, handle, mut events) = serve(registrar, transport).await;
        let err = associate_maf(addr, transport, &kc_id, &kc)
            .await
            .unwrap_err();
        assert_eq!(
            alert(&err),
            Some(AlertDescription::UnknownPskIdentity),
            "{transport}: {err:?}"
        );
        let (t, identity, refusal) = next_refusal(&mut events).await;
        assert_eq!(t, transport);
        assert_eq!(identity.as_deref(), Some(kc_id.as_str()));
        assert_eq!(refusal, Refusal::KcExpired);
        handle.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn association_is_closed_at_its_lifespan() {
    for transport in TRANSPORTS {
        let (addr, handle, mut events) = serve(Registrar::from_config(config_b()), transport).await;
        let started = tokio::time::Instant::now();
        let mut a = associate_kpsa(
            addr,
            transport,
            &kpsa_id(KPSA_ID_SHORT),
            &Kpsa::new([0x2A; 32]),
        )
        .await
        .unwrap();
        let seen = a.association_info(ID_SHORT).await.unwrap();
        assert_eq!(seen.bound_identity, ID_SHORT);
        let accepted = next_event(&mut events, |e| match e {
            RegistrarEvent::Accepted { info, .. } => Some(info),
            _ => None,
        })
        .await;
        assert_eq!(accepted.deadline, Some(accepted.established_at + 1));
        assert_eq!(seen.expiration_time, accepted.deadline);

        // The registrar sends close_notify once the 1 s lifespan is over.
        tokio::time::timeout(Duration::from_secs(3), a.wait_closed())
            .await
            .expect("the registrar did not close the association")
            .unwrap();
        assert!(
            started.elapsed() >= Duration::from_millis(900),
            "{transport}"
        );
        let reason = next_event(&mut events, |e| match e {
            RegistrarEvent::Closed { reason, .. } => Some(reason),
            _ => None,
        })
        .await;
        assert_eq!(reason, CloseReason::LifespanOver, "{transport}");
        handle.shutdown().await.unwrap();
    }
}
