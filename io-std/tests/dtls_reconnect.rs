//! RFC 6347 4.2.8 on the blocking [`DtlsServer`]: a client that comes back on the port of an
//! existing session (a rebooted device) gets a new session after the cookie exchange, reported
//! as [`ServerEvent::Reconnected`]; a ClientHello without a cookie from that address (an
//! off-path attacker spoofing it) only elicits a HelloVerifyRequest and leaves the session
//! working. Real UDP sockets on 127.0.0.1.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use m2msec::dtls::RetransmitConfig;
use m2msec::{
    CipherSuite, ClientConfig, ClientPsk, Now, Output, Psk, PskTable, ServerConfig, Session,
    Transport,
};
use m2msec_std::{connect_dtls, DtlsServer, DtlsStream, ServerEvent};

const ID: &[u8] = b"CAE-reboot";
const KEY: [u8; 16] = *b"0123456789abcdef";
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

/// What the server thread saw, in order (data only as its bytes).
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Connected(SocketAddr),
    Data(SocketAddr, Vec<u8>),
    Closed(SocketAddr),
    Failed(SocketAddr),
    Reconnected(SocketAddr),
}

/// A `DtlsServer` on its own thread that echoes every datagram and reports its events, plus
/// its counters when they change.
struct Server {
    addr: SocketAddr,
    events: mpsc::Receiver<Seen>,
    hello_verifies: Arc<AtomicU64>,
    reconnects: Arc<AtomicU64>,
    sessions: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Server {
    fn start() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        let mut server = DtlsServer::new(socket, server_cfg(), MTU, 16).unwrap();
        let (tx, events) = mpsc::channel();
        let hello_verifies = Arc::new(AtomicU64::new(0));
        let reconnects = Arc::new(AtomicU64::new(0));
        let sessions = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (hv, rc, ss, stop) = (
                hello_verifies.clone(),
                reconnects.clone(),
                sessions.clone(),
                stop.clone(),
            );
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let event = server.poll(Duration::from_millis(20)).unwrap();
                    // Counters first: whoever sees the event sees counters at least as new.
                    hv.store(server.hello_verifies(), Ordering::SeqCst);
                    rc.store(server.reconnects(), Ordering::SeqCst);
                    ss.store(server.session_count() as u64, Ordering::SeqCst);
                    let seen = match event {
                        None => continue,
                        Some(ServerEvent::Connected(a, _)) => Seen::Connected(a),
                        Some(ServerEvent::Data(a, d)) => {
                            server.send_to(a, &d).unwrap();
                            Seen::Data(a, d)
                        }
                        Some(ServerEvent::Closed(a)) => Seen::Closed(a),
                        Some(ServerEvent::Failed(a, _)) => Seen::Failed(a),
                        Some(ServerEvent::Reconnected(a)) => Seen::Reconnected(a),
                        Some(other) => panic!("{other:?}"),
                    };
                    if tx.send(seen).is_err() {
                        return;
                    }
                }
            })
        };
        Self {
            addr,
            events,
            hello_verifies,
            reconnects,
            sessions,
            stop,
            thread: Some(thread),
        }
    }

    fn next(&self) -> Seen {
        self.events.recv_timeout(LIMIT).unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn bound(local: SocketAddr, server: SocketAddr) -> UdpSocket {
    let s = UdpSocket::bind(local).unwrap();
    s.connect(server).unwrap();
    s
}

fn client_on(socket: UdpSocket) -> DtlsStream {
    let mut c = connect_dtls(socket, client_cfg(), None, MTU).unwrap();
    c.set_recv_timeout(Some(LIMIT));
    c
}

/// Sends `data` and reads the server's echo.
fn echo(c: &mut DtlsStream, data: &[u8]) {
    assert_eq!(c.send(data).unwrap(), data.len());
    let mut buf = [0u8; 256];
    let n = c.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], data);
}

/// A client that dies without close_notify (a `DtlsStream` sends nothing when dropped) and
/// comes back on the same port: the server replaces the session after the cookie exchange.
#[test]
fn a_rebooted_client_on_the_same_port_connects_again() {
    let server = Server::start();
    let socket = bound("127.0.0.1:0".parse().unwrap(), server.addr);
    let port = socket.local_addr().unwrap();
    let mut first = client_on(socket);
    assert_eq!(server.next(), Seen::Connected(port));
    echo(&mut first, b"before the reboot");
    assert_eq!(
        server.next(),
        Seen::Data(port, b"before the reboot".to_vec())
    );
    let mut ekm1 = [0u8; 32];
    first
        .export_keying_material(&mut ekm1, b"EXPORTER-test", None)
        .unwrap();
    drop(first); // power lost

    let mut second = client_on(bound(port, server.addr));
    assert_eq!(server.next(), Seen::Reconnected(port));
    assert_eq!(server.next(), Seen::Connected(port));
    echo(&mut second, b"after the reboot");
    assert_eq!(
        server.next(),
        Seen::Data(port, b"after the reboot".to_vec())
    );
    let mut ekm2 = [0u8; 32];
    second
        .export_keying_material(&mut ekm2, b"EXPORTER-test", None)
        .unwrap();
    assert_ne!(ekm1, ekm2);
    assert_eq!(server.reconnects.load(Ordering::SeqCst), 1);
    assert_eq!(server.hello_verifies.load(Ordering::SeqCst), 2);
    assert_eq!(server.sessions.load(Ordering::SeqCst), 1);

    second.close().unwrap();
    assert_eq!(server.next(), Seen::Closed(port));
}

/// The first datagram of a fresh client session: a ClientHello without a cookie.
fn cookieless_hello() -> Vec<u8> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).unwrap();
    let mut s = Session::client(
        client_cfg(),
        Transport::Dtls { mtu: MTU },
        None,
        Now::from_std(std::time::Instant::now()),
        seed,
    )
    .unwrap();
    let mut buf = vec![0u8; 2048];
    match s.poll_output(&mut buf) {
        Output::Transmit(d) => d.to_vec(),
        other => panic!("{other:?}"),
    }
}

/// A ClientHello without a cookie sent from an established client's own address (as an
/// off-path attacker spoofing it would): a HelloVerifyRequest goes back, the session stays.
#[test]
fn a_client_hello_without_a_cookie_leaves_the_session_working() {
    let server = Server::start();
    let socket = bound("127.0.0.1:0".parse().unwrap(), server.addr);
    let port = socket.local_addr().unwrap();
    let spoof = socket.try_clone().unwrap();
    let mut c = client_on(socket);
    assert_eq!(server.next(), Seen::Connected(port));
    echo(&mut c, b"established");
    assert_eq!(server.next(), Seen::Data(port, b"established".to_vec()));
    assert_eq!(server.hello_verifies.load(Ordering::SeqCst), 1);

    spoof.send(&cookieless_hello()).unwrap();
    // The HelloVerifyRequest reaches the client first; its session ignores it.
    echo(&mut c, b"still here");
    assert_eq!(server.next(), Seen::Data(port, b"still here".to_vec()));
    assert_eq!(server.hello_verifies.load(Ordering::SeqCst), 2);
    assert_eq!(server.reconnects.load(Ordering::SeqCst), 0);
    assert_eq!(server.sessions.load(Ordering::SeqCst), 1);

    c.close().unwrap();
    assert_eq!(server.next(), Seen::Closed(port));
}
