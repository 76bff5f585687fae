//! Deferred certificate decisions over tokio DTLS: a `CertVerifier` that answers `Defer` is
//! resolved by the listener's [`AsyncCertVerifier`] ([`DtlsListener::bind_verified`]) and by the
//! closure of [`connect_dtls_verified`], asynchronously. While a decision is pending the peer's
//! retransmitted flights start no second one, other peers are served, and the listener's
//! handshake timeout still ends the session (dropping the pending decision). ECDHE-ECDSA with
//! the fixture certificates of `core/tests/data/ecdhe/`, real UDP sockets on 127.0.0.1.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use m2msec::cert::{
    root_of_trust_of, CertDecision, CertError, CertVerifier, CertifiedKey, Credential,
    PeerCertificateInfo, SigningKey,
};
use m2msec::config::ClientAuth;
use m2msec::dtls::RetransmitConfig;
use m2msec::{CipherSuite, ClientConfig, ServerConfig, UnixTime};
use m2msec_tokio::{
    connect_dtls_verified, Accepted, AsyncCertVerifier, CertVerifyFuture, DtlsConnection,
    DtlsListener, DtlsListenerOptions, Error,
};
use tokio::net::UdpSocket;
use tokio::sync::Notify;
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(30);
const MTU: usize = 1232;

fn data(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../core/tests/data/ecdhe")
            .join(name),
    )
    .unwrap()
}

fn key(cert: &str, key: &str) -> CertifiedKey {
    CertifiedKey::new(
        SigningKey::from_pkcs8_der(&data(key)).unwrap(),
        Credential::X509(vec![data(cert)]),
    )
    .unwrap()
}

/// Always defers.
struct Later;

impl CertVerifier for Later {
    fn verify(&self, _peer: &Credential, _now: UnixTime) -> CertDecision {
        CertDecision::Defer
    }
}

/// What a deciding verifier reports for a trusted credential: its key's digest.
fn info(c: &Credential) -> PeerCertificateInfo {
    let rot = root_of_trust_of(c).unwrap();
    let mut digest = [0u8; 32];
    digest.copy_from_slice(rot.digest());
    PeerCertificateInfo::for_key(digest, false)
}

/// Retransmissions soon, and many before giving up: the listener's handshake timeout, not the
/// core's, ends a handshake that waits for a decision.
fn retransmit() -> RetransmitConfig {
    RetransmitConfig {
        initial: Duration::from_millis(100),
        max: Duration::from_millis(400),
        max_retransmissions: 40,
        handshake_timeout: Duration::from_secs(60),
    }
}

/// A client that defers its decision on the server.
fn client_cfg() -> Arc<ClientConfig> {
    Arc::new(
        ClientConfig::builder_with_verifier(Arc::new(Later))
            .certificate(key("client.der", "client.key.der"))
            .suites(CipherSuite::ECDHE_ECDSA)
            .retransmit(retransmit())
            .build()
            .unwrap(),
    )
}

/// A server that requires a client certificate and defers its decision on it.
fn server_cfg() -> Arc<ServerConfig> {
    Arc::new(
        ServerConfig::builder_with_certificate(key("server.der", "server.key.der"))
            .verifier(Arc::new(Later))
            .client_auth(ClientAuth::Required)
            .retransmit(retransmit())
            .build()
            .unwrap(),
    )
}

async fn udp_to(addr: SocketAddr) -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    s.connect(addr).await.unwrap();
    s
}

/// Datagrams seen in one direction, with a wakeup for each.
#[derive(Default)]
struct Log {
    datagrams: Mutex<Vec<Vec<u8>>>,
    changed: Notify,
}

impl Log {
    fn push(&self, d: &[u8]) {
        self.datagrams.lock().unwrap().push(d.to_vec());
        self.changed.notify_waiters();
    }

    /// Datagrams that carry the first fragment of a Certificate message (epoch 0).
    fn certificates(&self) -> usize {
        self.datagrams
            .lock()
            .unwrap()
            .iter()
            .filter(|d| starts_certificate(d))
            .count()
    }

    /// Waits until at least `n` datagrams carried the start of a Certificate message.
    async fn wait_certificates(&self, n: usize) {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.certificates() >= n {
                return;
            }
            notified.await;
        }
    }
}

/// Whether a handshake record of epoch 0 in `d` holds the fragment at offset 0 of a
/// Certificate message (a flight with the peer's certificate, or its retransmission).
fn starts_certificate(d: &[u8]) -> bool {
    let mut rest = d;
    while rest.len() >= 13 {
        let len = usize::from(u16::from_be_bytes([rest[11], rest[12]]));
        let Some(record) = rest.get(13..13 + len) else {
            return false;
        };
        if rest[0] == 22 && rest[3..5] == [0, 0] {
            let mut hs = record;
            while hs.len() >= 12 {
                let frag_len =
                    (usize::from(hs[9]) << 16) | (usize::from(hs[10]) << 8) | usize::from(hs[11]);
                if hs[0] == 11 && hs[6..9] == [0, 0, 0] {
                    return true;
                }
                hs = hs.get(12 + frag_len..).unwrap_or(&[]);
            }
        }
        rest = &rest[13 + len..];
    }
    false
}

/// A relay between one client and `server` that logs both directions.
struct Relay {
    front: SocketAddr,
    c2s: Arc<Log>,
    s2c: Arc<Log>,
}

async fn relay(server: SocketAddr) -> Relay {
    let front = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let back = udp_to(server).await;
    let (c2s, s2c) = (Arc::<Log>::default(), Arc::<Log>::default());
    let r = Relay {
        front: front.local_addr().unwrap(),
        c2s: c2s.clone(),
        s2c: s2c.clone(),
    };
    tokio::spawn(async move {
        let (mut a, mut b) = (vec![0u8; 65536], vec![0u8; 65536]);
        let mut client = None;
        loop {
            tokio::select! {
                r = front.recv_from(&mut a) => {
                    let Ok((n, from)) = r else { return };
                    client = Some(from);
                    c2s.push(&a[..n]);
                    let _ = back.send(&a[..n]).await;
                }
                r = back.recv(&mut b) => {
                    let Ok(n) = r else { return };
                    s2c.push(&b[..n]);
                    if let Some(to) = client {
                        let _ = front.send_to(&b[..n], to).await;
                    }
                }
            }
        }
    });
    r
}

async fn round_trip(client: &DtlsConnection, server: &DtlsConnection) {
    let mut buf = [0u8; 64];
    client.send(b"ping").await.unwrap();
    let n = timeout(LIMIT, server.recv(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf[..n], b"ping");
    server.send(b"pong").await.unwrap();
    let n = timeout(LIMIT, client.recv(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf[..n], b"pong");
}

/// Both sides defer and decide later, each only after the peer has retransmitted the flight
/// the decision is about: one decision per side, the handshake completes, data flows, and each
/// side reports what its verifier returned.
#[tokio::test]
async fn deferred_decisions_on_both_sides_complete_the_handshake() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c2s: Arc<Mutex<Option<Arc<Log>>>> = Arc::default();
    let verify: AsyncCertVerifier = {
        let (calls, c2s) = (calls.clone(), c2s.clone());
        Arc::new(move |credential: Credential, peer: SocketAddr| {
            calls.fetch_add(1, Ordering::SeqCst);
            let log = c2s.lock().unwrap().clone().unwrap();
            Box::pin(async move {
                assert!(peer.ip().is_loopback());
                // Decide only once the client has sent its certificate flight again.
                log.wait_certificates(2).await;
                Ok(info(&credential))
            }) as CertVerifyFuture
        })
    };
    let mut l = DtlsListener::bind_verified(
        "127.0.0.1:0",
        server_cfg(),
        MTU,
        DtlsListenerOptions::default(),
        None,
        verify,
    )
    .await
    .unwrap();
    let r = relay(l.local_addr()).await;
    *c2s.lock().unwrap() = Some(r.c2s.clone());
    let s2c = r.s2c.clone();
    let client = timeout(
        LIMIT,
        connect_dtls_verified(
            udp_to(r.front).await,
            client_cfg(),
            Some("localhost"),
            MTU,
            |credential: Credential| async move {
                // Decide only once the server has sent its certificate flight again.
                s2c.wait_certificates(2).await;
                Ok(info(&credential))
            },
        ),
    )
    .await
    .unwrap()
    .unwrap();
    let server = timeout(LIMIT, l.accept()).await.unwrap().unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(r.c2s.certificates() >= 2 && r.s2c.certificates() >= 2);
    assert!(client.stats().retransmissions >= 1, "{:?}", client.stats());
    assert!(server.stats().retransmissions >= 1, "{:?}", server.stats());
    assert_eq!(
        client.info().peer_certificate,
        Some(info(&Credential::X509(vec![data("server.der")])))
    );
    assert_eq!(
        server.info().peer_certificate,
        Some(info(&Credential::X509(vec![data("client.der")])))
    );
    round_trip(&client, &server).await;
    let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
    client
        .export_keying_material(&mut a, b"EXPORTER-test", None)
        .unwrap();
    server
        .export_keying_material(&mut b, b"EXPORTER-test", None)
        .unwrap();
    assert_eq!(a, b);
}

/// The listener's verifier refuses (after a wait): the server's handshake fails with the
/// refusal, the client receives its alert.
#[tokio::test]
async fn a_deferred_refusal_by_the_listener_fails_both_sides() {
    let verify: AsyncCertVerifier = Arc::new(|_c: Credential, _peer: SocketAddr| {
        Box::pin(async {
            tokio::task::yield_now().await;
            Err(CertError::NameMismatch)
        }) as CertVerifyFuture
    });
    let mut l = DtlsListener::bind_verified(
        "127.0.0.1:0",
        server_cfg(),
        MTU,
        DtlsListenerOptions::default(),
        None,
        verify,
    )
    .await
    .unwrap();
    let r = timeout(
        LIMIT,
        connect_dtls_verified(
            udp_to(l.local_addr()).await,
            client_cfg(),
            Some("localhost"),
            MTU,
            |c: Credential| async move { Ok(info(&c)) },
        ),
    )
    .await
    .unwrap();
    let alert = m2msec::Error::Certificate(CertError::NameMismatch)
        .alert()
        .unwrap();
    match r {
        Err(Error::Tls(m2msec::Error::AlertReceived(a))) => assert_eq!(a, alert),
        other => panic!("{other:?}"),
    }
    match timeout(LIMIT, l.accept_or_failure())
        .await
        .unwrap()
        .unwrap()
    {
        Accepted::Failed {
            error: Error::Tls(m2msec::Error::Certificate(CertError::NameMismatch)),
            ..
        } => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(l.stats().handshakes_failed, 1);
    assert_eq!(l.stats().established, 0);
}

/// The client's closure refuses the server: the client fails with the refusal, the listener
/// (which verifies nothing here) reports the alert it received.
#[tokio::test]
async fn a_deferred_refusal_by_the_client_fails_both_sides() {
    let server = Arc::new(
        ServerConfig::builder_with_certificate(key("server.der", "server.key.der"))
            .retransmit(retransmit())
            .build()
            .unwrap(),
    );
    let mut l = DtlsListener::bind("127.0.0.1:0", server, MTU)
        .await
        .unwrap();
    let r = timeout(
        LIMIT,
        connect_dtls_verified(
            udp_to(l.local_addr()).await,
            client_cfg(),
            Some("localhost"),
            MTU,
            |_c: Credential| async {
                tokio::task::yield_now().await;
                Err(CertError::UntrustedRoot)
            },
        ),
    )
    .await
    .unwrap();
    match r {
        Err(Error::Tls(m2msec::Error::Certificate(CertError::UntrustedRoot))) => {}
        other => panic!("{other:?}"),
    }
    let alert = m2msec::Error::Certificate(CertError::UntrustedRoot)
        .alert()
        .unwrap();
    match timeout(LIMIT, l.accept_or_failure())
        .await
        .unwrap()
        .unwrap()
    {
        Accepted::Failed {
            error: Error::Tls(m2msec::Error::AlertReceived(a)),
            ..
        } => assert_eq!(a, alert),
        other => panic!("{other:?}"),
    }
}

/// Sends `()` when dropped.
struct DropSignal(Option<tokio::sync::oneshot::Sender<()>>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

/// A decision that never comes: another client is served meanwhile, and the listener's
/// handshake timeout ends the waiting session (reported as failed) and drops the decision.
#[tokio::test]
async fn a_pending_decision_holds_up_no_one_and_times_out() {
    let calls = Arc::new(AtomicUsize::new(0));
    let first_called = Arc::new(Notify::new());
    let (dropped_tx, dropped_rx) = tokio::sync::oneshot::channel();
    let dropped_tx = Arc::new(Mutex::new(Some(dropped_tx)));
    let verify: AsyncCertVerifier = {
        let (calls, first_called) = (calls.clone(), first_called.clone());
        Arc::new(move |credential: Credential, _peer: SocketAddr| {
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                let guard = DropSignal(dropped_tx.lock().unwrap().take());
                first_called.notify_one();
                Box::pin(async move {
                    let _guard = guard;
                    std::future::pending::<Result<PeerCertificateInfo, CertError>>().await
                }) as CertVerifyFuture
            } else {
                Box::pin(async move { Ok(info(&credential)) }) as CertVerifyFuture
            }
        })
    };
    let options = DtlsListenerOptions {
        handshake_timeout: Duration::from_millis(1500),
        ..DtlsListenerOptions::default()
    };
    let mut l =
        DtlsListener::bind_verified("127.0.0.1:0", server_cfg(), MTU, options, None, verify)
            .await
            .unwrap();
    let addr = l.local_addr();
    let connect = move || async move {
        let socket = udp_to(addr).await;
        let local = socket.local_addr().unwrap();
        let r = connect_dtls_verified(
            socket,
            client_cfg(),
            Some("localhost"),
            MTU,
            |c| async move { Ok(info(&c)) },
        )
        .await;
        (local, r)
    };
    let stuck = tokio::spawn(connect());
    timeout(LIMIT, first_called.notified()).await.unwrap();

    // The first decision is pending: a second client gets through.
    let (_, second) = timeout(LIMIT, connect()).await.unwrap();
    let second = second.unwrap();
    let mut outcomes = Vec::new();
    for _ in 0..2 {
        outcomes.push(
            timeout(LIMIT, l.accept_or_failure())
                .await
                .unwrap()
                .unwrap(),
        );
    }
    let (mut connection, mut failure) = (None, None);
    for o in outcomes {
        match o {
            Accepted::Connection(c) => connection = Some(c),
            Accepted::Failed { peer, error, .. } => failure = Some((peer, error)),
            other => panic!("{other:?}"),
        }
    }
    let connection = connection.unwrap();
    round_trip(&second, &connection).await;
    let (peer, error) = failure.unwrap();
    match error {
        Error::Io(e) => assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}"),
        other => panic!("{other:?}"),
    }
    // The pending decision was dropped with its session.
    timeout(LIMIT, dropped_rx).await.unwrap().unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_ne!(peer, connection.peer_addr());
    let stats = l.stats();
    assert_eq!(
        (stats.established, stats.handshakes_failed),
        (1, 1),
        "{stats:?}"
    );
    stuck.abort();
}
