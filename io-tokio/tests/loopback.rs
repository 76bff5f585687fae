//! The adapter over real TCP sockets on 127.0.0.1.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use m2msec::config::DeferAll;
use m2msec::enums::AlertDescription;
use m2msec::{CipherSuite, ClientConfig, ClientPsk, Psk, PskTable, ServerConfig};
use m2msec_tokio::{accept, accept_with, accept_with_async, connect, Error, TlsStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::timeout;

const ID: &[u8] = b"CAE-loopback";
const KEY: [u8; 16] = *b"0123456789abcdef";
const LABEL: &[u8] = b"EXPORTER-oneM2M-Bootstrap";
const LIMIT: Duration = Duration::from_secs(20);

fn client_cfg(id: &[u8], key: &[u8], suites: &[CipherSuite]) -> Arc<ClientConfig> {
    let psk = ClientPsk::new(id, Psk::new(key).unwrap()).unwrap();
    Arc::new(ClientConfig::builder(psk).suites(suites).build().unwrap())
}

fn server_cfg() -> Arc<ServerConfig> {
    let mut t = PskTable::new();
    t.insert(ID, Psk::new(&KEY).unwrap()).unwrap();
    Arc::new(
        ServerConfig::builder(Box::new(t))
            .identity_hint(Some(b"loopback-hint"))
            .build()
            .unwrap(),
    )
}

/// A listener, and a server task running `f` on its first connection.
async fn serve<T, F, Fut>(f: F) -> (std::net::SocketAddr, JoinHandle<T>)
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T> + Send,
    T: Send + 'static,
{
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let h = tokio::spawn(async move {
        let (tcp, _) = l.accept().await.unwrap();
        f(tcp).await
    });
    (addr, h)
}

fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed))
        .collect()
}

fn exporter(tls: &TlsStream<TcpStream>) -> [u8; 48] {
    let mut out = [0; 48];
    tls.export_keying_material(&mut out, LABEL, None).unwrap();
    out
}

/// Sends `data` while reading `data.len()` bytes; returns them.
async fn exchange(tls: &mut TlsStream<TcpStream>, data: &[u8]) -> Vec<u8> {
    let (mut r, mut w) = tokio::io::split(tls);
    let send = async {
        w.write_all(data).await.unwrap();
        w.flush().await.unwrap();
    };
    let recv = async {
        let mut got = vec![0; data.len()];
        r.read_exact(&mut got).await.unwrap();
        got
    };
    tokio::join!(send, recv).1
}

#[tokio::test]
async fn both_suites_data_both_ways_exporter_and_clean_close() {
    timeout(LIMIT, async {
        for &suite in CipherSuite::ALL {
            const N: usize = 200_000;
            let (addr, server) = serve(|tcp| async move {
                let mut tls = accept(tcp, server_cfg()).await.unwrap();
                let ekm = exporter(&tls);
                let info = tls.info().clone();
                let got = exchange(&mut tls, &pattern(2, N)).await;
                // The client's close_notify ends the stream cleanly.
                let mut rest = Vec::new();
                tls.read_to_end(&mut rest).await.unwrap();
                tls.shutdown().await.unwrap();
                (ekm, info, got, rest)
            })
            .await;
            let tcp = TcpStream::connect(addr).await.unwrap();
            let mut tls = connect(tcp, client_cfg(ID, &KEY, &[suite]), Some("mn.example.com"))
                .await
                .unwrap();
            let ekm = exporter(&tls);
            let got = exchange(&mut tls, &pattern(1, N)).await;
            tls.write_all(b"tail").await.unwrap();
            tls.shutdown().await.unwrap();
            let mut rest = Vec::new();
            tls.read_to_end(&mut rest).await.unwrap();
            assert!(rest.is_empty());
            // Writing after close is refused, with the core error inside.
            let e = tls.write_all(b"x").await.unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe);
            assert!(matches!(
                Error::from(e),
                Error::Tls(m2msec::Error::ApiMisuse(_))
            ));

            let (s_ekm, s_info, s_got, s_rest) = server.await.unwrap();
            assert_eq!(got, pattern(2, N));
            assert_eq!(s_got, pattern(1, N));
            assert_eq!(s_rest, b"tail");
            assert_eq!(ekm, s_ekm);
            assert_ne!(ekm, [0; 48]);
            let c_info = tls.info();
            assert_eq!(c_info.suite, suite);
            assert_eq!(s_info.suite, suite);
            assert_eq!(s_info.psk_identity, ID);
            assert_eq!(s_info.server_name.as_deref(), Some("mn.example.com"));
            assert_eq!(
                c_info.psk_identity_hint.as_deref(),
                Some(&b"loopback-hint"[..])
            );
            assert!(c_info.extended_master_secret && s_info.extended_master_secret);
            // absent and empty contexts differ
            let mut a = [0; 32];
            let mut b = [0; 32];
            tls.export_keying_material(&mut a, LABEL, None).unwrap();
            tls.export_keying_material(&mut b, LABEL, Some(b""))
                .unwrap();
            assert_ne!(a, b);
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn tiny_reads_and_writes() {
    timeout(LIMIT, async {
        let (addr, server) = serve(|tcp| async move {
            let mut tls = accept(tcp, server_cfg()).await.unwrap();
            let mut got = Vec::new();
            let mut b = [0u8; 1];
            while tls.read(&mut b).await.unwrap() == 1 {
                got.push(b[0]);
            }
            tls.shutdown().await.unwrap();
            got
        })
        .await;
        let tcp = TcpStream::connect(addr).await.unwrap();
        let mut tls = connect(tcp, client_cfg(ID, &KEY, CipherSuite::ALL), None)
            .await
            .unwrap();
        let data = pattern(9, 3000);
        for c in data.chunks(3) {
            tls.write_all(c).await.unwrap();
        }
        tls.shutdown().await.unwrap();
        assert_eq!(tls.read(&mut [0; 8]).await.unwrap(), 0);
        assert_eq!(server.await.unwrap(), data);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn wrong_psk_fails_on_both_sides() {
    timeout(LIMIT, async {
        let (addr, server) =
            serve(|tcp| async move { accept(tcp, server_cfg()).await.map(|_| ()) }).await;
        let tcp = TcpStream::connect(addr).await.unwrap();
        let e = connect(tcp, client_cfg(ID, &[7; 16], CipherSuite::ALL), None)
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                Error::Tls(m2msec::Error::AlertReceived(AlertDescription::BadRecordMac))
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("bad_record_mac"), "{e}");
        let s = server.await.unwrap().unwrap_err();
        assert!(
            matches!(s, Error::Tls(m2msec::Error::BadRecordMac)),
            "{s:?}"
        );
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn unknown_identity_is_reported_to_the_client() {
    timeout(LIMIT, async {
        let (addr, server) =
            serve(|tcp| async move { accept(tcp, server_cfg()).await.map(|_| ()) }).await;
        let tcp = TcpStream::connect(addr).await.unwrap();
        let e = connect(tcp, client_cfg(b"stranger", &KEY, CipherSuite::ALL), None)
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                Error::Tls(m2msec::Error::AlertReceived(
                    AlertDescription::UnknownPskIdentity
                ))
            ),
            "{e:?}"
        );
        let s = server.await.unwrap().unwrap_err();
        assert!(
            matches!(s, Error::Tls(m2msec::Error::UnknownPskIdentity)),
            "{s:?}"
        );
    })
    .await
    .unwrap();
}

fn defer_cfg() -> Arc<ServerConfig> {
    Arc::new(ServerConfig::builder(Box::new(DeferAll)).build().unwrap())
}

#[tokio::test]
async fn accept_with_answers_deferred_lookups() {
    timeout(LIMIT, async {
        let asked = Arc::new(Mutex::new(Vec::new()));
        let log = asked.clone();
        let (addr, server) = serve(move |tcp| async move {
            let mut tls = accept_with(tcp, defer_cfg(), move |id: &[u8], sni: Option<&str>| {
                log.lock()
                    .unwrap()
                    .push((id.to_vec(), sni.map(String::from)));
                (id == ID).then(|| Psk::new(&KEY).unwrap())
            })
            .await
            .unwrap();
            let mut b = [0u8; 5];
            tls.read_exact(&mut b).await.unwrap();
            tls.write_all(&b).await.unwrap();
            tls.shutdown().await.unwrap();
            exporter(&tls)
        })
        .await;
        let tcp = TcpStream::connect(addr).await.unwrap();
        let mut tls = connect(
            tcp,
            client_cfg(ID, &KEY, CipherSuite::ALL),
            Some("in.example"),
        )
        .await
        .unwrap();
        tls.write_all(b"hello").await.unwrap();
        let mut back = Vec::new();
        tls.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"hello");
        assert_eq!(server.await.unwrap(), exporter(&tls));
        assert_eq!(
            *asked.lock().unwrap(),
            vec![(ID.to_vec(), Some("in.example".to_string()))]
        );
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn deferred_lookup_refusals() {
    timeout(LIMIT, async {
        // The lookup knows nobody; plain `accept` answers deferrals the same way.
        for use_async in [false, true] {
            let (addr, server) = serve(move |tcp| async move {
                if use_async {
                    accept_with_async(
                        tcp,
                        defer_cfg(),
                        Some(|_id: Vec<u8>, _sni: Option<String>| async {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            None
                        }),
                    )
                    .await
                    .map(|_| ())
                } else {
                    accept(tcp, defer_cfg()).await.map(|_| ())
                }
            })
            .await;
            let tcp = TcpStream::connect(addr).await.unwrap();
            let e = connect(tcp, client_cfg(ID, &KEY, CipherSuite::ALL), None)
                .await
                .unwrap_err();
            assert!(
                matches!(
                    e,
                    Error::Tls(m2msec::Error::AlertReceived(
                        AlertDescription::UnknownPskIdentity
                    ))
                ),
                "{e:?}"
            );
            assert!(server.await.unwrap().is_err());
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn async_lookup_succeeds() {
    timeout(LIMIT, async {
        let (addr, server) = serve(|tcp| async move {
            let lookup = |id: Vec<u8>, _sni: Option<String>| async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                (id == ID).then(|| Psk::new(&KEY).unwrap())
            };
            let tls = accept_with_async(tcp, defer_cfg(), Some(lookup))
                .await
                .unwrap();
            exporter(&tls)
        })
        .await;
        let tcp = TcpStream::connect(addr).await.unwrap();
        let tls = connect(tcp, client_cfg(ID, &KEY, CipherSuite::ALL), None)
            .await
            .unwrap();
        assert_eq!(server.await.unwrap(), exporter(&tls));
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn transport_eof_without_close_notify_is_an_error() {
    timeout(LIMIT, async {
        let (addr, server) = serve(|tcp| async move {
            let mut tls = accept(tcp, server_cfg()).await.unwrap();
            tls.write_all(b"partial").await.unwrap();
            tls.flush().await.unwrap();
            drop(tls); // no close_notify
        })
        .await;
        let tcp = TcpStream::connect(addr).await.unwrap();
        let mut tls = connect(tcp, client_cfg(ID, &KEY, CipherSuite::ALL), None)
            .await
            .unwrap();
        server.await.unwrap();
        let mut got = Vec::new();
        let e = tls.read_to_end(&mut got).await.unwrap_err();
        assert_eq!(got, b"partial");
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
        assert!(matches!(
            Error::from(e),
            Error::Tls(m2msec::Error::UnexpectedEof)
        ));
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn garbage_from_the_peer_is_an_error_not_a_panic() {
    timeout(LIMIT, async {
        let (addr, server) = serve(|mut tcp| async move {
            let mut b = [0u8; 512];
            let _ = tcp.read(&mut b).await;
            let _ = tcp.write_all(&[22, 3, 3, 0, 3, 0xff, 0xff, 0xff]).await;
            let _ = tcp.write_all(&[0x17; 64]).await;
        })
        .await;
        let tcp = TcpStream::connect(addr).await.unwrap();
        let e = connect(tcp, client_cfg(ID, &KEY, CipherSuite::ALL), None)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Tls(_)), "{e:?}");
        server.await.unwrap();
    })
    .await
    .unwrap();
}

/// Reads and writes from separate tasks on a multi-threaded runtime (the halves share one
/// transport, whose write waker both may register).
async fn split_tasks(tls: TlsStream<TcpStream>, data: Vec<u8>) -> Vec<u8> {
    let n = data.len();
    let (mut r, mut w) = tokio::io::split(tls);
    let writer = tokio::spawn(async move {
        for c in data.chunks(10_000) {
            w.write_all(c).await.unwrap();
        }
        w.flush().await.unwrap();
        w
    });
    let reader = tokio::spawn(async move {
        let mut got = vec![0; n];
        r.read_exact(&mut got).await.unwrap();
        (r, got)
    });
    let w = writer.await.unwrap();
    let (r, got) = reader.await.unwrap();
    let mut tls = r.unsplit(w);
    tls.shutdown().await.unwrap();
    let mut rest = Vec::new();
    tls.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn halves_in_separate_tasks() {
    timeout(LIMIT, async {
        const N: usize = 1_000_000;
        let (addr, server) = serve(|tcp| async move {
            let tls = accept(tcp, server_cfg()).await.unwrap();
            split_tasks(tls, pattern(4, N)).await
        })
        .await;
        let tcp = TcpStream::connect(addr).await.unwrap();
        let tls = connect(tcp, client_cfg(ID, &KEY, CipherSuite::ALL), None)
            .await
            .unwrap();
        let got = split_tasks(tls, pattern(3, N)).await;
        assert_eq!(got, pattern(4, N));
        assert_eq!(server.await.unwrap(), pattern(3, N));
    })
    .await
    .unwrap();
}
