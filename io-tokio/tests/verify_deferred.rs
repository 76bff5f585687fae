//! Deferred certificate decisions through the tokio TLS adapter: a `CertVerifier` that answers
//! `Defer` is resolved by the closure given to `connect_verified` / `accept_verified`, and
//! without one the deferred credential is refused at once instead of stalling the handshake.

use std::sync::Arc;

use m2msec::cert::{
    root_of_trust_of, CertDecision, CertError, CertVerifier, CertifiedKey, Credential,
    PeerCertificateInfo, SigningKey,
};
use m2msec::config::ClientAuth;
use m2msec::{CipherSuite, ClientConfig, ServerConfig, UnixTime};
use m2msec_tokio::{accept, accept_verified, connect, connect_verified, Error};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

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

/// The type of "no PSK lookup".
type NoLookup = fn(Vec<u8>, Option<String>) -> std::future::Ready<Option<m2msec::Psk>>;

/// Always defers.
struct Later;

impl CertVerifier for Later {
    fn verify(&self, _peer: &Credential, _now: UnixTime) -> CertDecision {
        CertDecision::Defer
    }
}

fn info(c: &Credential) -> PeerCertificateInfo {
    let rot = root_of_trust_of(c).unwrap();
    let mut digest = [0u8; 32];
    digest.copy_from_slice(rot.digest());
    PeerCertificateInfo::for_key(digest, false)
}

fn configs() -> (Arc<ClientConfig>, Arc<ServerConfig>) {
    let client = ClientConfig::builder_with_verifier(Arc::new(Later))
        .certificate(key("client.der", "client.key.der"))
        .suites(CipherSuite::ECDHE_ECDSA)
        .build()
        .unwrap();
    let server = ServerConfig::builder_with_certificate(key("server.der", "server.key.der"))
        .verifier(Arc::new(Later))
        .client_auth(ClientAuth::Required)
        .build()
        .unwrap();
    (Arc::new(client), Arc::new(server))
}

#[tokio::test]
async fn deferred_decisions_are_answered_by_the_closures() {
    let (client, server) = configs();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server_task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let no_lookup: Option<NoLookup> = None;
        let mut tls = accept_verified(tcp, server, no_lookup, |c: Credential| async move {
            // An asynchronous decision, e.g. a database lookup of the client's key.
            tokio::task::yield_now().await;
            Ok(info(&c))
        })
        .await
        .unwrap();
        let seen = tls.info().peer_certificate.clone();
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await.unwrap();
        tls.write_all(b"pong").await.unwrap();
        tls.shutdown().await.unwrap();
        (seen, buf)
    });
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut tls = connect_verified(tcp, client, Some("localhost"), |c: Credential| async move {
        Ok(info(&c))
    })
    .await
    .unwrap();
    let server_seen = info(&Credential::X509(vec![data("client.der")]));
    assert_eq!(
        tls.info().peer_certificate,
        Some(info(&Credential::X509(vec![data("server.der")])))
    );
    tls.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    tls.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"pong");
    let (seen, got) = server_task.await.unwrap();
    assert_eq!(seen, Some(server_seen));
    assert_eq!(&got, b"ping");
}

#[tokio::test]
async fn a_deferred_refusal_and_a_missing_closure_fail_the_handshake() {
    let (client, server) = configs();
    // The client's closure refuses the server: the client fails with the refusal.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let s = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        accept(tcp, server).await.map(|_| ())
    });
    let tcp = TcpStream::connect(addr).await.unwrap();
    let err = connect_verified(tcp, client.clone(), Some("localhost"), |_c| async {
        Err(CertError::NameMismatch)
    })
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Tls(m2msec::Error::Certificate(CertError::NameMismatch))
        ),
        "{err:?}"
    );
    assert!(s.await.unwrap().is_err());

    // No closure for a deferred decision: refused promptly, not stalled.
    let (client, server) = configs();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let s = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        accept(tcp, server).await.map(|_| ())
    });
    let tcp = TcpStream::connect(addr).await.unwrap();
    let started = std::time::Instant::now();
    let err = connect(tcp, client, Some("localhost")).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Tls(m2msec::Error::Certificate(CertError::Refused))
        ),
        "{err:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(s.await.unwrap().is_err());
}

/// Over DTLS, `connect_dtls` (without a verifier: `connect_dtls_verified` answers deferred
/// decisions, see `tests/dtls_verify.rs`) refuses a deferred decision at once, and the server
/// reports the failed handshake.
#[tokio::test]
async fn dtls_deferred_decision_is_refused_promptly() {
    use m2msec_tokio::{connect_dtls, Accepted, DtlsListener};
    let (client, _) = configs();
    let server = ServerConfig::builder_with_certificate(key("server.der", "server.key.der"))
        .build()
        .unwrap();
    let mut listener = DtlsListener::bind("127.0.0.1:0", Arc::new(server), 1232)
        .await
        .unwrap();
    let addr = listener.local_addr();
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.connect(addr).await.unwrap();
    let started = std::time::Instant::now();
    let err = connect_dtls(socket, client, Some("localhost"), 1232)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Tls(m2msec::Error::Certificate(CertError::Refused))
        ),
        "{err:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let failed = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        listener.accept_or_failure(),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(matches!(failed, Accepted::Failed { .. }), "{failed:?}");
}
