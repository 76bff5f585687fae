//! DTLS over real UDP sockets on 127.0.0.1: [`connect_dtls`] against [`DtlsListener`].

use std::sync::Arc;
use std::time::Duration;

use m2msec::dtls::RetransmitConfig;
use m2msec::{CipherSuite, ClientConfig, ClientPsk, Psk, PskTable, ServerConfig};
use m2msec_tokio::{
    connect_dtls, Accepted, DtlsConnection, DtlsListener, DtlsListenerOptions, Error,
};
use tokio::net::UdpSocket;
use tokio::time::timeout;

const ID: &[u8] = b"CAE-dtls";
const KEY: [u8; 16] = *b"0123456789abcdef";
const LABEL: &[u8] = b"EXPORTER-oneM2M-Bootstrap";
const LIMIT: Duration = Duration::from_secs(20);
const MTU: usize = 1232;

fn fast() -> RetransmitConfig {
    RetransmitConfig {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(200),
        max_retransmissions: 4,
        ..RetransmitConfig::default()
    }
}

fn client_cfg(key: &[u8], suites: &[CipherSuite]) -> Arc<ClientConfig> {
    let psk = ClientPsk::new(ID, Psk::new(key).unwrap()).unwrap();
    let suites = if suites.is_empty() {
        CipherSuite::ALL
    } else {
        suites
    };
    Arc::new(
        ClientConfig::builder(psk)
            .suites(suites)
            .retransmit(fast())
            .build()
            .unwrap(),
    )
}

fn server_cfg() -> Arc<ServerConfig> {
    let mut t = PskTable::new();
    t.insert(ID, Psk::new(&KEY).unwrap()).unwrap();
    Arc::new(
        ServerConfig::builder(Box::new(t))
            .identity_hint(Some(b"dtls-hint"))
            .retransmit(fast())
            .build()
            .unwrap(),
    )
}

async fn udp_to(addr: std::net::SocketAddr) -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    s.connect(addr).await.unwrap();
    s
}

fn exporter(c: &DtlsConnection) -> [u8; 48] {
    let mut out = [0; 48];
    c.export_keying_material(&mut out, LABEL, None).unwrap();
    out
}

/// Datagram `i` of a stream: its index, then a pattern.
fn datagram(seed: u8, i: usize, len: usize) -> Vec<u8> {
    let mut d: Vec<u8> = (0..len)
        .map(|j| {
            (j as u8)
                .wrapping_mul(7)
                .wrapping_add(seed)
                .wrapping_add(i as u8)
        })
        .collect();
    d[0] = i as u8;
    d
}

/// Sends `count` datagrams of `len` bytes while receiving as many; checks what arrived.
async fn exchange(c: &DtlsConnection, mine: u8, theirs: u8, count: usize, len: usize) {
    let send = async {
        for i in 0..count {
            c.send(&datagram(mine, i, len)).await.unwrap();
            if i % 16 == 15 {
                tokio::task::yield_now().await;
            }
        }
    };
    let recv = async {
        let mut got = Vec::new();
        let mut buf = vec![0u8; 65536];
        while got.len() < count {
            let n = c.recv(&mut buf).await.unwrap();
            assert_ne!(n, 0, "peer closed early");
            got.push(buf[..n].to_vec());
        }
        got.sort_by_key(|d| d[0]);
        for (i, d) in got.iter().enumerate() {
            assert_eq!(d, &datagram(theirs, i, len), "datagram {i}");
        }
    };
    tokio::join!(send, recv);
}

async fn run_pair(suite: CipherSuite, mtu: usize, len: usize) {
    let mut l = DtlsListener::bind("127.0.0.1:0", server_cfg(), mtu)
        .await
        .unwrap();
    let addr = l.local_addr();
    let server = tokio::spawn(async move {
        let c = l.accept().await.unwrap();
        let ekm = exporter(&c);
        exchange(&c, 2, 1, 64, len).await;
        // The client closes first: recv reports it, our reply goes out by itself.
        let mut buf = [0u8; 16];
        assert_eq!(c.recv(&mut buf).await.unwrap(), 0);
        (ekm, c.info().clone(), l.stats())
    });
    let c = connect_dtls(
        udp_to(addr).await,
        client_cfg(&KEY, &[suite]),
        Some("mn-cse.example"),
        mtu,
    )
    .await
    .unwrap();
    assert_eq!(c.info().suite, suite);
    assert!(c.max_payload() <= mtu - 13 - 8, "{}", c.max_payload());
    let ekm = exporter(&c);
    exchange(&c, 1, 2, 64, len).await;
    c.close().await.unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(
        timeout(LIMIT, c.recv(&mut buf)).await.unwrap().unwrap(),
        0,
        "the server's close_notify"
    );
    let (server_ekm, server_info, stats) = timeout(LIMIT, server).await.unwrap().unwrap();
    assert_eq!(ekm, server_ekm);
    assert_eq!(server_info.suite, suite);
    assert_eq!(server_info.psk_identity, ID);
    assert_eq!(server_info.server_name.as_deref(), Some("mn-cse.example"));
    assert_eq!(
        c.info().psk_identity_hint.as_deref(),
        Some(&b"dtls-hint"[..])
    );
    // The cookie listener was in the path: one HelloVerifyRequest, then one session.
    assert_eq!(stats.hello_verify_requests, 1, "{stats:?}");
    assert_eq!(stats.cookies_accepted, 1, "{stats:?}");
    assert_eq!(stats.established, 1, "{stats:?}");
    assert_eq!(stats.handshakes_failed, 0, "{stats:?}");
}

#[tokio::test]
async fn both_suites_data_both_ways_exporter_cookie_and_close() {
    for &suite in CipherSuite::ALL {
        timeout(LIMIT, run_pair(suite, MTU, 1000)).await.unwrap();
    }
}

#[tokio::test]
async fn small_mtu_fragments_the_handshake_and_bounds_records() {
    // 200 bytes: the ClientHello and the server's flight are fragmented.
    timeout(LIMIT, run_pair(CipherSuite::ALL[0], 200, 150))
        .await
        .unwrap();
}

#[tokio::test]
async fn oversized_send_is_refused_and_mtu_is_checked() {
    let mut l = DtlsListener::bind("127.0.0.1:0", server_cfg(), 300)
        .await
        .unwrap();
    let addr = l.local_addr();
    let server = tokio::spawn(async move {
        let c = l.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = c.recv(&mut buf).await.unwrap();
        buf.truncate(n);
        buf
    });
    let c = connect_dtls(udp_to(addr).await, client_cfg(&KEY, &[]), None, 300)
        .await
        .unwrap();
    let max = c.max_payload();
    assert!(max < 300);
    let e = c.send(&vec![0u8; max + 1]).await.unwrap_err();
    assert!(matches!(&e, Error::Io(io) if io.kind() == std::io::ErrorKind::InvalidInput));
    c.send(&vec![7u8; max]).await.unwrap();
    assert_eq!(
        timeout(LIMIT, server).await.unwrap().unwrap(),
        vec![7u8; max]
    );
    assert!(DtlsListener::bind("127.0.0.1:0", server_cfg(), 10)
        .await
        .is_err());
    assert!(
        connect_dtls(udp_to(addr).await, client_cfg(&KEY, &[]), None, 10)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn wrong_psk_fails_on_the_client_and_yields_no_connection() {
    let opts = DtlsListenerOptions {
        handshake_timeout: Duration::from_secs(2),
        ..DtlsListenerOptions::default()
    };
    let mut l = DtlsListener::bind_with("127.0.0.1:0", server_cfg(), MTU, opts)
        .await
        .unwrap();
    let addr = l.local_addr();
    let r = timeout(
        LIMIT,
        connect_dtls(udp_to(addr).await, client_cfg(&[0xff; 16], &[]), None, MTU),
    )
    .await
    .unwrap();
    let e = r.unwrap_err();
    assert!(
        matches!(
            e,
            Error::Tls(m2msec::Error::HandshakeTimeout | m2msec::Error::AlertReceived(_))
        ),
        "{e:?}"
    );
    // The server reports the failed handshake and never yields a connection.
    match timeout(LIMIT, l.accept_or_failure())
        .await
        .unwrap()
        .unwrap()
    {
        Accepted::Failed { peer, .. } => assert_eq!(peer.ip(), addr.ip()),
        other => panic!("expected a failure, got {other:?}"),
    }
    let stats = l.stats();
    assert_eq!(stats.established, 0, "{stats:?}");
    assert_eq!(stats.handshakes_failed, 1, "{stats:?}");
    assert_eq!(stats.sessions, 0, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_serves_peers_concurrently_and_removes_closed_sessions() {
    let mut l = DtlsListener::bind("127.0.0.1:0", server_cfg(), MTU)
        .await
        .unwrap();
    let addr = l.local_addr();
    let mut clients = Vec::new();
    for i in 0..4u8 {
        clients.push(tokio::spawn(async move {
            let c = connect_dtls(udp_to(addr).await, client_cfg(&KEY, &[]), None, MTU)
                .await
                .unwrap();
            c.send(&[i; 10]).await.unwrap();
            let mut buf = [0u8; 64];
            let n = c.recv(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], &[i + 100; 10]);
            c.close().await.unwrap();
            assert_eq!(c.recv(&mut buf).await.unwrap(), 0);
        }));
    }
    let mut conns = Vec::new();
    for _ in 0..4 {
        conns.push(timeout(LIMIT, l.accept()).await.unwrap().unwrap());
    }
    for c in &conns {
        let mut buf = [0u8; 64];
        let n = c.recv(&mut buf).await.unwrap();
        assert_eq!(n, 10);
        c.send(&[buf[0] + 100; 10]).await.unwrap();
    }
    for h in clients {
        timeout(LIMIT, h).await.unwrap().unwrap();
    }
    for c in &conns {
        let mut buf = [0u8; 64];
        assert_eq!(c.recv(&mut buf).await.unwrap(), 0);
        // After the peer closed, sending is refused.
        assert!(c.send(b"late").await.is_err());
    }
    let stats = l.stats();
    assert_eq!(stats.established, 4);
    assert_eq!(stats.hello_verify_requests, 4);
    // The driver removes closed sessions on its next turn (the gauge may lag `recv` a little).
    timeout(LIMIT, async {
        while l.stats().sessions != 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("closed sessions are removed");
}

#[tokio::test]
async fn session_limit_drops_new_peers() {
    let opts = DtlsListenerOptions {
        max_sessions: 1,
        ..DtlsListenerOptions::default()
    };
    let mut l = DtlsListener::bind_with("127.0.0.1:0", server_cfg(), MTU, opts)
        .await
        .unwrap();
    let addr = l.local_addr();
    let first = connect_dtls(udp_to(addr).await, client_cfg(&KEY, &[]), None, MTU)
        .await
        .unwrap();
    let _held = l.accept().await.unwrap();
    // A second peer gets no answer at all while the first holds the only slot.
    let second = connect_dtls(udp_to(addr).await, client_cfg(&KEY, &[]), None, MTU).await;
    assert!(
        matches!(second, Err(Error::Tls(m2msec::Error::HandshakeTimeout))),
        "{second:?}"
    );
    assert!(l.stats().dropped >= 1);
    drop(first);
}

#[tokio::test]
async fn dropping_a_client_sends_close_notify() {
    let mut l = DtlsListener::bind("127.0.0.1:0", server_cfg(), MTU)
        .await
        .unwrap();
    let addr = l.local_addr();
    let c = connect_dtls(udp_to(addr).await, client_cfg(&KEY, &[]), None, MTU)
        .await
        .unwrap();
    let s = l.accept().await.unwrap();
    drop(c);
    let mut buf = [0u8; 16];
    assert_eq!(timeout(LIMIT, s.recv(&mut buf)).await.unwrap().unwrap(), 0);
}

#[tokio::test]
async fn nothing_listening_is_reported_promptly() {
    // A bound socket that is then dropped: the port is (almost certainly) closed.
    let addr = UdpSocket::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let r = timeout(
        LIMIT,
        connect_dtls(udp_to(addr).await, client_cfg(&KEY, &[]), None, MTU),
    )
    .await
    .unwrap();
    assert!(
        matches!(&r, Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused),
        "{r:?}"
    );
}

/// A UDP relay between one client and `server` that drops the handshake datagrams (those
/// starting with a handshake or ChangeCipherSpec record) whose per-direction index is listed.
/// Application data and alerts always pass: they are never retransmitted.
async fn lossy_relay(
    server: std::net::SocketAddr,
    drop_c2s: &'static [usize],
    drop_s2c: &'static [usize],
) -> std::net::SocketAddr {
    let front = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = front.local_addr().unwrap();
    let back = udp_to(server).await;
    tokio::spawn(async move {
        let (mut a, mut b) = (vec![0u8; 65536], vec![0u8; 65536]);
        let (mut c2s, mut s2c) = (0, 0);
        let mut client = None;
        loop {
            tokio::select! {
                r = front.recv_from(&mut a) => {
                    let Ok((n, from)) = r else { return };
                    client = Some(from);
                    let hs = matches!(a[0], 20 | 22);
                    if !(hs && drop_c2s.contains(&c2s)) {
                        let _ = back.send(&a[..n]).await;
                    }
                    c2s += usize::from(hs);
                }
                r = back.recv(&mut b) => {
                    let Ok(n) = r else { return };
                    let hs = matches!(b[0], 20 | 22);
                    if let (Some(to), false) = (client, hs && drop_s2c.contains(&s2c)) {
                        let _ = front.send_to(&b[..n], to).await;
                    }
                    s2c += usize::from(hs);
                }
            }
        }
    });
    addr
}

#[tokio::test]
async fn lost_flights_are_retransmitted_by_the_drivers() {
    let mut l = DtlsListener::bind("127.0.0.1:0", server_cfg(), MTU)
        .await
        .unwrap();
    // Lost: the first ClientHello, the ClientHello with the cookie, and on the way back the
    // server's first flight and (whichever datagram it is) a later one, e.g. its final flight.
    let relay = lossy_relay(l.local_addr(), &[0, 2], &[1, 3]).await;
    // Request/response: the server answers only what it received, so it never sends data
    // before the client has its Finished (records of the new epoch that arrive before the
    // Finished may be dropped: RFC 6347 4.1.2.7).
    let server = tokio::spawn(async move {
        let c = l.accept().await.unwrap();
        let mut buf = vec![0u8; 2048];
        for i in 0..8 {
            let n = c.recv(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], datagram(1, i, 100));
            c.send(&datagram(2, i, 100)).await.unwrap();
        }
        (exporter(&c), c.stats())
    });
    let c = timeout(
        LIMIT,
        connect_dtls(udp_to(relay).await, client_cfg(&KEY, &[]), None, MTU),
    )
    .await
    .unwrap()
    .unwrap();
    let mut buf = vec![0u8; 2048];
    for i in 0..8 {
        c.send(&datagram(1, i, 100)).await.unwrap();
        let n = timeout(LIMIT, c.recv(&mut buf)).await.unwrap().unwrap();
        assert_eq!(&buf[..n], datagram(2, i, 100));
    }
    let (server_ekm, server_stats) = timeout(LIMIT, server).await.unwrap().unwrap();
    assert_eq!(exporter(&c), server_ekm);
    let retransmissions = c.stats().retransmissions + server_stats.retransmissions;
    assert!(retransmissions >= 2, "{:?} {server_stats:?}", c.stats());
}

#[tokio::test]
async fn junk_from_unknown_peers_is_dropped_and_the_listener_goes_on() {
    let mut l = DtlsListener::bind("127.0.0.1:0", server_cfg(), MTU)
        .await
        .unwrap();
    let addr = l.local_addr();
    let junk = udp_to(addr).await;
    let mut header = vec![22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];
    header.extend_from_slice(&[1; 40]);
    let hello_prefix = [
        22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 14, 1, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 2, 0xfe,
    ];
    for d in [
        &[][..],
        &[22],
        &[23, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1, 0],
        &header,
        &hello_prefix,
        &[0xff; 1500],
    ] {
        junk.send(d).await.unwrap();
    }
    let c = connect_dtls(udp_to(addr).await, client_cfg(&KEY, &[]), None, MTU)
        .await
        .unwrap();
    let s = timeout(LIMIT, l.accept()).await.unwrap().unwrap();
    c.send(b"still fine").await.unwrap();
    let mut buf = [0u8; 64];
    let n = timeout(LIMIT, s.recv(&mut buf)).await.unwrap().unwrap();
    assert_eq!(&buf[..n], b"still fine");
    assert_eq!(l.stats().dropped, 6, "{:?}", l.stats());
}

/// A deferring server answered by an asynchronous lookup: a slow lookup for one peer does not
/// hold up another peer's handshake, an unknown identity fails with unknown_psk_identity, and
/// the lookup sees the identity, the SNI and the peer address.
#[tokio::test]
async fn async_psk_lookup_serves_other_peers_meanwhile() {
    use m2msec::config::DeferAll;
    use m2msec_tokio::AsyncPskLookup;
    use std::sync::Mutex;

    type Seen = Vec<(Vec<u8>, Option<String>, std::net::SocketAddr)>;
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let (release_tx, release_rx) = tokio::sync::watch::channel(false);
    let lookup: AsyncPskLookup = {
        let seen = seen.clone();
        Arc::new(move |identity: Vec<u8>, sni: Option<String>, peer| {
            seen.lock().unwrap().push((identity.clone(), sni, peer));
            let mut release = release_rx.clone();
            Box::pin(async move {
                match identity.as_slice() {
                    b"slow" => {
                        // Waits until the fast peer is connected.
                        while !*release.borrow() {
                            release.changed().await.ok()?;
                        }
                        Some(Psk::new(&KEY).unwrap())
                    }
                    b"fast" => Some(Psk::new(&KEY).unwrap()),
                    _ => None,
                }
            })
        })
    };
    let server = Arc::new(
        ServerConfig::builder(Box::new(DeferAll))
            .retransmit(fast())
            .build()
            .unwrap(),
    );
    let mut listener = DtlsListener::bind_with_lookup(
        "127.0.0.1:0",
        server,
        MTU,
        DtlsListenerOptions::default(),
        lookup,
    )
    .await
    .unwrap();
    let addr = listener.local_addr();
    let client = |id: &'static [u8]| {
        let cfg = Arc::new(
            ClientConfig::builder(ClientPsk::new(id, Psk::new(&KEY).unwrap()).unwrap())
                .retransmit(fast())
                .build()
                .unwrap(),
        );
        async move { connect_dtls(udp_to(addr).await, cfg, Some("b.example.com"), MTU).await }
    };
    let slow = tokio::spawn(client(b"slow"));
    // Let the slow handshake reach its lookup first.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let fast_conn = timeout(LIMIT, client(b"fast")).await.unwrap().unwrap();
    assert!(!slow.is_finished(), "the slow lookup is still pending");
    release_tx.send(true).unwrap();
    let slow_conn = timeout(LIMIT, slow).await.unwrap().unwrap().unwrap();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let c = timeout(LIMIT, listener.accept()).await.unwrap().unwrap();
        ids.push(c.info().psk_identity.clone());
        let theirs = if c.info().psk_identity == b"fast" {
            &fast_conn
        } else {
            &slow_conn
        };
        assert_eq!(exporter(&c), exporter(theirs));
    }
    assert_eq!(ids, [b"fast".to_vec(), b"slow".to_vec()]);

    let unknown = timeout(LIMIT, client(b"nobody")).await.unwrap();
    match unknown {
        Err(Error::Tls(m2msec::Error::AlertReceived(d))) => {
            assert_eq!(d, m2msec::enums::AlertDescription::UnknownPskIdentity)
        }
        other => panic!("{other:?}"),
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3);
    for (identity, sni, peer) in seen.iter() {
        assert!([&b"slow"[..], b"fast", b"nobody"].contains(&identity.as_slice()));
        assert_eq!(sni.as_deref(), Some("b.example.com"));
        assert!(peer.ip().is_loopback());
    }
}

/// A connection whose application never calls `recv` buffers a bounded number of bytes, however
/// much its peer sends (full-size records): the rest is dropped as UDP would, and what was
/// buffered is delivered in order.
#[tokio::test]
async fn an_unread_receive_queue_is_bounded_in_bytes() {
    const BIG_MTU: usize = 17 * 1024;
    let mut l = DtlsListener::bind("127.0.0.1:0", server_cfg(), BIG_MTU)
        .await
        .unwrap();
    let addr = l.local_addr();
    let c = connect_dtls(udp_to(addr).await, client_cfg(&KEY, &[]), None, BIG_MTU)
        .await
        .unwrap();
    let s = timeout(LIMIT, l.accept()).await.unwrap().unwrap();
    let len = c.max_payload().min(16 * 1024);
    assert!(len >= 15 * 1024, "{len}");
    // 64 full records (1 MiB), paced so that the kernel's socket buffer drops none of them.
    for i in 0..64 {
        c.send(&datagram(3, i, len)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = Vec::new();
    while let Ok(r) = timeout(Duration::from_millis(300), s.recv(&mut buf)).await {
        let n = r.unwrap();
        got.push(buf[0] as usize);
        assert_eq!(&buf[..n], &datagram(3, buf[0] as usize, len)[..]);
    }
    // At most 256 KiB were kept, the first ones sent, in order.
    assert!(got.len() * len <= 256 * 1024, "{} records kept", got.len());
    assert!(got.len() >= 8, "{} records kept", got.len());
    assert_eq!(got, (0..got.len()).collect::<Vec<_>>());
    // The connection goes on: a record sent now is delivered.
    c.send(b"after").await.unwrap();
    let n = timeout(LIMIT, s.recv(&mut buf)).await.unwrap().unwrap();
    assert_eq!(&buf[..n], b"after");
}

/// A wrong key over DTLS fails at once (the server cannot authenticate the client's Finished and
/// answers bad_record_mac), and the listener's failure report names the PSK identity its lookup
/// saw, so an operator knows whose key is wrong.
#[tokio::test]
async fn a_wrong_key_fails_at_once_and_the_failure_names_the_identity() {
    use m2msec::config::DeferAll;
    use m2msec::enums::AlertDescription;
    use m2msec_tokio::AsyncPskLookup;

    let lookup: AsyncPskLookup = Arc::new(|identity: Vec<u8>, _sni, _peer| {
        Box::pin(async move { (identity == ID).then(|| Psk::new(&KEY).unwrap()) })
    });
    let server = Arc::new(
        ServerConfig::builder(Box::new(DeferAll))
            .retransmit(fast())
            .build()
            .unwrap(),
    );
    // Long handshake timeouts on both sides: only the alert can end the handshake quickly.
    let opts = DtlsListenerOptions {
        handshake_timeout: Duration::from_secs(60),
        ..DtlsListenerOptions::default()
    };
    let mut l = DtlsListener::bind_with_lookup("127.0.0.1:0", server, MTU, opts, lookup)
        .await
        .unwrap();
    let addr = l.local_addr();
    let psk = ClientPsk::new(ID, Psk::new(&[0xee; 16]).unwrap()).unwrap();
    let slow = RetransmitConfig {
        handshake_timeout: Duration::from_secs(60),
        ..fast()
    };
    let cfg = Arc::new(ClientConfig::builder(psk).retransmit(slow).build().unwrap());
    let started = std::time::Instant::now();
    let e = timeout(LIMIT, connect_dtls(udp_to(addr).await, cfg, None, MTU))
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Tls(m2msec::Error::AlertReceived(AlertDescription::BadRecordMac))
        ),
        "{e:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(30), "not a timeout");
    match timeout(LIMIT, l.accept_or_failure())
        .await
        .unwrap()
        .unwrap()
    {
        Accepted::Failed {
            error,
            psk_identity,
            ..
        } => {
            assert!(
                matches!(error, Error::Tls(m2msec::Error::BadRecordMac)),
                "{error:?}"
            );
            assert_eq!(psk_identity.as_deref(), Some(ID));
        }
        other => panic!("expected a failure, got {other:?}"),
    }
}
