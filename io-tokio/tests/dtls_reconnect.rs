//! RFC 6347 4.2.8 on the tokio [`DtlsListener`]: a client that comes back from the address of
//! an existing session (a rebooted device reusing its UDP port) gets a new session once its
//! cookie proves it reachable there; ClientHellos from that address that prove nothing (no
//! cookie, someone else's cookie, a duplicate of the session's own) leave the session alone.
//! Real UDP sockets on 127.0.0.1.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use m2msec::dtls::{CookieListener, RetransmitConfig};
use m2msec::{
    CipherSuite, ClientConfig, ClientPsk, Event, Now, Output, Psk, PskTable, ServerConfig, Session,
    Transport,
};
use m2msec_tokio::{connect_dtls, Accepted, DtlsConnection, DtlsListener, Error, ListenerStats};
use tokio::net::UdpSocket;
use tokio::time::timeout;

const ID: &[u8] = b"CAE-reboot";
const KEY: [u8; 16] = *b"0123456789abcdef";
const LABEL: &[u8] = b"EXPORTER-oneM2M-Bootstrap";
const LIMIT: Duration = Duration::from_secs(20);
const MTU: usize = 1232;

fn fast() -> RetransmitConfig {
    RetransmitConfig {
        initial: Duration::from_millis(100),
        max: Duration::from_millis(400),
        max_retransmissions: 6,
        ..RetransmitConfig::default()
    }
}

fn client_cfg() -> Arc<ClientConfig> {
    let psk = ClientPsk::new(ID, Psk::new(&KEY).unwrap()).unwrap();
    Arc::new(
        ClientConfig::builder(psk)
            .suites(&[CipherSuite::PskAes128Ccm8])
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
            .retransmit(fast())
            .build()
            .unwrap(),
    )
}

fn seed() -> [u8; 32] {
    let mut s = [0u8; 32];
    getrandom::getrandom(&mut s).unwrap();
    s
}

fn exporter(c: &DtlsConnection) -> [u8; 32] {
    let mut out = [0; 32];
    c.export_keying_material(&mut out, LABEL, None).unwrap();
    out
}

/// The first datagram of a fresh client session: a ClientHello without a cookie, with a new
/// client random.
fn cookieless_hello() -> Vec<u8> {
    let mut s = Session::client(
        client_cfg(),
        Transport::Dtls { mtu: MTU },
        None,
        Now::from_std(std::time::Instant::now()),
        seed(),
    )
    .unwrap();
    let mut buf = vec![0u8; 2048];
    match s.poll_output(&mut buf) {
        Output::Transmit(d) => d.to_vec(),
        other => panic!("{other:?}"),
    }
}

/// A ClientHello with a cookie our listener never issued: a fresh client answered by another
/// listener's HelloVerifyRequest.
fn foreign_cookie_hello() -> Vec<u8> {
    let epoch = std::time::Instant::now();
    let mut s = Session::client(
        client_cfg(),
        Transport::Dtls { mtu: MTU },
        None,
        Now::from_std(epoch),
        seed(),
    )
    .unwrap();
    let mut buf = vec![0u8; 2048];
    let first = match s.poll_output(&mut buf) {
        Output::Transmit(d) => d.to_vec(),
        other => panic!("{other:?}"),
    };
    let hvr = match CookieListener::new(seed()).handle_datagram(b"elsewhere", &first) {
        m2msec::dtls::ListenerDecision::SendHelloVerify(h) => h,
        other => panic!("{other:?}"),
    };
    s.handle_input(Now::from_std(epoch), &hvr).unwrap();
    match s.poll_output(&mut buf) {
        Output::Transmit(d) => d.to_vec(),
        other => panic!("{other:?}"),
    }
}

/// Whether `d` is a HelloVerifyRequest (a handshake record of epoch 0 with message type 3).
fn is_hello_verify(d: &[u8]) -> bool {
    d.len() > 13 && d[0] == 22 && d[3..5] == [0, 0] && d[13] == 3
}

/// Whether `d` is a ClientHello (epoch 0, message type 1) carrying a non-empty cookie.
fn is_hello_with_cookie(d: &[u8]) -> bool {
    // record header 13, handshake header 12, version 2, random 32, then session_id and cookie.
    if d.len() < 13 + 12 + 34 + 2 || d[0] != 22 || d[3..5] != [0, 0] || d[13] != 1 {
        return false;
    }
    let sid = 13 + 12 + 34;
    let cookie_len = d.get(sid + 1 + usize::from(d[sid])).copied();
    cookie_len.is_some_and(|n| n > 0)
}

/// A client that can die like a device losing power: the core session over a socket, no
/// driver task, nothing sent when dropped.
struct Device {
    socket: UdpSocket,
    session: Session,
    epoch: std::time::Instant,
    buf: Vec<u8>,
    /// Application data received, one entry per `AppData` event.
    data: Vec<Vec<u8>>,
    /// Every datagram sent.
    sent: Vec<Vec<u8>>,
    deadline: Option<m2msec::Instant>,
}

impl Device {
    fn new(socket: UdpSocket) -> Self {
        let epoch = std::time::Instant::now();
        let session = Session::client(
            client_cfg(),
            Transport::Dtls { mtu: MTU },
            None,
            Now::from_std(epoch),
            seed(),
        )
        .unwrap();
        Self {
            socket,
            session,
            epoch,
            buf: vec![0u8; 65536],
            data: Vec::new(),
            sent: Vec::new(),
            deadline: None,
        }
    }

    fn now(&self) -> Now {
        Now::from_std(self.epoch)
    }

    /// Sends what the session has to send and collects its events.
    async fn flush(&mut self) {
        loop {
            match self.session.poll_output(&mut self.buf) {
                Output::Transmit(d) => {
                    let d = d.to_vec();
                    self.socket.send(&d).await.unwrap();
                    self.sent.push(d);
                }
                Output::Event(Event::AppData(d)) => self.data.push(d.to_vec()),
                Output::Event(_) => {}
                Output::Wait(deadline) => {
                    self.deadline = deadline;
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(self.session.error().is_none(), "{:?}", self.session.error());
    }

    /// Waits for one datagram (running the retransmission timer meanwhile) and feeds it.
    async fn step(&mut self) {
        let mut d = vec![0u8; 65536];
        loop {
            let wait = self.deadline.map_or(LIMIT, |t| {
                t.saturating_since(self.now().mono)
                    .max(Duration::from_millis(1))
            });
            match timeout(wait, self.socket.recv(&mut d)).await {
                Ok(r) => {
                    let n = r.unwrap();
                    let now = self.now();
                    self.session.handle_input(now, &d[..n]).unwrap();
                    self.flush().await;
                    return;
                }
                Err(_) => {
                    assert!(self.deadline.is_some(), "nothing arrived in {LIMIT:?}");
                    let now = self.now();
                    self.session.handle_timeout(now).unwrap();
                    self.flush().await;
                }
            }
        }
    }

    async fn handshake(&mut self) {
        self.flush().await;
        while !self.session.is_connected() {
            self.step().await;
        }
    }

    async fn send(&mut self, data: &[u8]) {
        let now = self.now();
        assert_eq!(self.session.send(now, data).unwrap(), data.len());
        self.flush().await;
    }

    async fn recv(&mut self) -> Vec<u8> {
        while self.data.is_empty() {
            self.step().await;
        }
        self.data.remove(0)
    }
}

/// A socket bound to `local` and connected to `server`.
async fn bound(local: SocketAddr, server: SocketAddr) -> UdpSocket {
    let s = UdpSocket::bind(local).await.unwrap();
    s.connect(server).await.unwrap();
    s
}

async fn recv_on(c: &DtlsConnection) -> Vec<u8> {
    let mut buf = vec![0u8; 2048];
    let n = timeout(LIMIT, c.recv(&mut buf)).await.unwrap().unwrap();
    buf[..n].to_vec()
}

/// Asserts that `r` is the error of a session replaced by a reconnection.
fn assert_reconnected<T: std::fmt::Debug>(r: Result<T, Error>) {
    match r {
        Err(Error::Io(e)) => {
            assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
            assert!(e.to_string().contains("RFC 6347 4.2.8"), "{e}");
            assert!(e.to_string().contains("same address"), "{e}");
        }
        other => panic!("{other:?}"),
    }
}

/// A device talks to the listener, dies without close_notify and comes back on the same port:
/// the listener starts a second session after the cookie exchange, the first session's handle
/// reports the reconnection, and data flows on the second.
#[tokio::test]
async fn a_rebooted_client_on_the_same_port_connects_again() {
    let mut l = DtlsListener::bind("127.0.0.1:0", server_cfg(), MTU)
        .await
        .unwrap();
    let server = l.local_addr();
    let mut device = Device::new(bound("127.0.0.1:0".parse().unwrap(), server).await);
    let port = device.socket.local_addr().unwrap();
    device.handshake().await;
    let old = timeout(LIMIT, l.accept()).await.unwrap().unwrap();
    assert_eq!(old.peer_addr(), port);
    device.send(b"before the reboot").await;
    assert_eq!(recv_on(&old).await, b"before the reboot");
    old.send(b"seen").await.unwrap();
    assert_eq!(device.recv().await, b"seen");
    // Power lost: no close_notify, the port is free again.
    drop(device);

    let new_client = timeout(
        LIMIT,
        connect_dtls(bound(port, server).await, client_cfg(), None, MTU),
    )
    .await
    .unwrap()
    .unwrap();
    let new = timeout(LIMIT, l.accept()).await.unwrap().unwrap();
    assert_eq!(new.peer_addr(), port);
    assert_eq!(exporter(&new), exporter(&new_client));
    assert_ne!(exporter(&new), exporter(&old));

    // The old session is gone, with an error that says why.
    let mut buf = [0u8; 64];
    assert_reconnected(old.recv(&mut buf).await);
    assert_reconnected(old.send(b"to nobody").await);

    new_client.send(b"after the reboot").await.unwrap();
    assert_eq!(recv_on(&new).await, b"after the reboot");
    new.send(b"welcome back").await.unwrap();
    assert_eq!(recv_on(&new_client).await, b"welcome back");

    let stats = l.stats();
    assert_eq!(stats.reconnects, 1, "{stats:?}");
    assert_eq!(stats.established, 2, "{stats:?}");
    assert_eq!(stats.hello_verify_requests, 2, "{stats:?}");
    assert_eq!(stats.cookies_accepted, 2, "{stats:?}");
    assert_eq!(stats.sessions, 1, "{stats:?}");
    assert_eq!(stats.handshakes_failed, 0, "{stats:?}");
    // Dropping the old handle sends nothing that could disturb the new session.
    drop(old);
    new_client.send(b"still here").await.unwrap();
    assert_eq!(recv_on(&new).await, b"still here");
}

/// A device dies in the middle of its handshake (after its ClientHello with the cookie) and
/// comes back on the same port: the unfinished handshake is reported as failed with the
/// reconnection error, the new one is announced. A duplicated ClientHello (same random) during
/// a handshake is no reconnection.
#[tokio::test]
async fn a_client_rebooted_during_its_handshake_replaces_it() {
    let mut l = DtlsListener::bind("127.0.0.1:0", server_cfg(), MTU)
        .await
        .unwrap();
    let server = l.local_addr();
    let mut device = Device::new(bound("127.0.0.1:0".parse().unwrap(), server).await);
    let port = device.socket.local_addr().unwrap();
    device.flush().await; // ClientHello
    device.step().await; // HelloVerifyRequest in, ClientHello with the cookie out
    let hello = device.sent.last().unwrap().clone();
    assert!(is_hello_with_cookie(&hello));
    // The server's first flight arrives (so the session exists) but is never answered.
    let mut flight = vec![0u8; 65536];
    timeout(LIMIT, device.socket.recv(&mut flight))
        .await
        .unwrap()
        .unwrap();
    // The network duplicates the ClientHello: same random, the same handshake.
    device.socket.send(&hello).await.unwrap();
    drop(device);

    let client = timeout(
        LIMIT,
        connect_dtls(bound(port, server).await, client_cfg(), None, MTU),
    )
    .await
    .unwrap()
    .unwrap();
    match timeout(LIMIT, l.accept_or_failure())
        .await
        .unwrap()
        .unwrap()
    {
        Accepted::Failed { peer, error, .. } => {
            assert_eq!(peer, port);
            assert_reconnected::<()>(Err(error));
        }
        other => panic!("{other:?}"),
    }
    let s = timeout(LIMIT, l.accept()).await.unwrap().unwrap();
    assert_eq!(exporter(&s), exporter(&client));
    client.send(b"ping").await.unwrap();
    assert_eq!(recv_on(&s).await, b"ping");
    let stats = l.stats();
    assert_eq!(stats.reconnects, 1, "{stats:?}");
    assert_eq!(stats.handshakes_failed, 1, "{stats:?}");
    assert_eq!(stats.established, 1, "{stats:?}");
}

/// A relay between one client and the listener whose server-side socket is "the client's
/// address" for the listener: the test sends datagrams from it as an attacker spoofing that
/// address would, and reads what the listener sent back.
struct Relay {
    front: SocketAddr,
    back: Arc<UdpSocket>,
    /// Datagrams client → server and server → client, in order.
    c2s: Arc<Mutex<Vec<Vec<u8>>>>,
    s2c: Arc<Mutex<Vec<Vec<u8>>>>,
}

async fn relay(server: SocketAddr) -> Relay {
    let front = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let front_addr = front.local_addr().unwrap();
    let back = Arc::new(bound("127.0.0.1:0".parse().unwrap(), server).await);
    let (c2s, s2c) = (
        Arc::<Mutex<Vec<_>>>::default(),
        Arc::<Mutex<Vec<_>>>::default(),
    );
    let r = Relay {
        front: front_addr,
        back: back.clone(),
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
                    c2s.lock().unwrap().push(a[..n].to_vec());
                    let _ = back.send(&a[..n]).await;
                }
                r = back.recv(&mut b) => {
                    let Ok(n) = r else { return };
                    s2c.lock().unwrap().push(b[..n].to_vec());
                    if let Some(to) = client {
                        let _ = front.send_to(&b[..n], to).await;
                    }
                }
            }
        }
    });
    r
}

/// Data both ways on an established pair; afterwards everything the listener sent before its
/// reply has passed the relay.
async fn round_trip(client: &DtlsConnection, server: &DtlsConnection, tag: &[u8]) {
    client.send(tag).await.unwrap();
    assert_eq!(recv_on(server).await, tag);
    server.send(tag).await.unwrap();
    assert_eq!(recv_on(client).await, tag);
}

fn hello_verifies(s2c: &Mutex<Vec<Vec<u8>>>) -> usize {
    s2c.lock()
        .unwrap()
        .iter()
        .filter(|d| is_hello_verify(d))
        .count()
}

/// ClientHellos "from" an established client's address that prove nothing leave its session
/// working: without a cookie (an off-path attacker, or a rebooted client before the cookie
/// exchange) only a HelloVerifyRequest goes back; with a cookie we never issued, nothing; the
/// session's own ClientHello replayed (its random is the session's), nothing either.
#[tokio::test]
async fn client_hellos_that_prove_nothing_leave_the_session_alone() {
    let mut l = DtlsListener::bind("127.0.0.1:0", server_cfg(), MTU)
        .await
        .unwrap();
    let r = relay(l.local_addr()).await;
    let client = timeout(
        LIMIT,
        connect_dtls(
            bound("127.0.0.1:0".parse().unwrap(), r.front).await,
            client_cfg(),
            None,
            MTU,
        ),
    )
    .await
    .unwrap()
    .unwrap();
    let s = timeout(LIMIT, l.accept()).await.unwrap().unwrap();
    assert_eq!(s.peer_addr(), r.back.local_addr().unwrap());
    round_trip(&client, &s, b"established").await;
    let before: ListenerStats = l.stats();
    assert_eq!(before.hello_verify_requests, 1);
    assert_eq!(hello_verifies(&r.s2c), 1);

    // No cookie: a HelloVerifyRequest to the address, nothing else.
    r.back.send(&cookieless_hello()).await.unwrap();
    round_trip(&client, &s, b"after a ClientHello without a cookie").await;
    assert_eq!(hello_verifies(&r.s2c), 2);
    let stats = l.stats();
    assert_eq!(
        stats.hello_verify_requests,
        before.hello_verify_requests + 1
    );
    assert_eq!(stats.reconnects, 0, "{stats:?}");
    assert_eq!(stats.cookies_accepted, 1, "{stats:?}");

    // A cookie we never issued: dropped.
    r.back.send(&foreign_cookie_hello()).await.unwrap();
    round_trip(&client, &s, b"after a foreign cookie").await;
    let stats = l.stats();
    assert_eq!(stats.dropped, before.dropped + 1, "{stats:?}");
    assert_eq!(stats.reconnects, 0, "{stats:?}");
    assert_eq!(stats.cookies_accepted, 1, "{stats:?}");
    assert_eq!(hello_verifies(&r.s2c), 2);

    // The client's own ClientHello with its (still valid) cookie, replayed: same random, so the
    // session's, which drops it as a replay.
    let hello = r
        .c2s
        .lock()
        .unwrap()
        .iter()
        .find(|d| is_hello_with_cookie(d))
        .cloned()
        .unwrap();
    r.back.send(&hello).await.unwrap();
    round_trip(&client, &s, b"after a replayed ClientHello").await;
    let stats = l.stats();
    assert_eq!(stats.reconnects, 0, "{stats:?}");
    assert_eq!(stats.cookies_accepted, 1, "{stats:?}");
    assert_eq!(stats.established, 1, "{stats:?}");
    assert_eq!(stats.sessions, 1, "{stats:?}");
    assert!(s.stats().replayed >= 1, "{:?}", s.stats());

    // And the session ends normally.
    client.close().await.unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(timeout(LIMIT, s.recv(&mut buf)).await.unwrap().unwrap(), 0);
}
