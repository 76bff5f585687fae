//! DTLS 1.2 over a deterministic in-memory network: virtual time, seeded loss, duplication,
//! reordering and delay; cookies; fragmentation; replay.

use std::sync::Arc;
use std::time::Duration;

use m2msec::dtls::{CookieListener, ListenerDecision, RetransmitConfig};
use m2msec::enums::AlertDescription;
use m2msec::{
    CipherSuite, ClientConfig, ClientPsk, Error, Event, Instant, Now, Output, Psk, ServerConfig,
    Session, Transport,
};

mod common;
use common::{server_cfg, ID, KEY};

/// SplitMix64: a tiny deterministic generator for the network's decisions.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

#[derive(Clone, Copy)]
struct Netem {
    loss: u64,
    duplicate: u64,
    max_delay_ms: u64,
}

const PERFECT: Netem = Netem {
    loss: 0,
    duplicate: 0,
    max_delay_ms: 1,
};

#[derive(Default)]
struct Side {
    data: Vec<u8>,
    connected: Option<m2msec::SessionInfo>,
    closed: bool,
}

fn now(t: u64) -> Now {
    Now {
        mono: Instant(t),
        unix: m2msec::UnixTime(0),
    }
}

/// Drains `s`: datagrams out, events recorded.
fn drain(s: &mut Session, side: &mut Side, out: &mut Vec<Vec<u8>>) {
    let mut buf = vec![0u8; 2048];
    loop {
        match s.poll_output(&mut buf) {
            Output::Transmit(b) => out.push(b.to_vec()),
            Output::Event(Event::AppData(d)) => side.data.extend_from_slice(d),
            Output::Event(Event::Connected(i)) => side.connected = Some(i),
            Output::Event(Event::PeerClosed) => side.closed = true,
            Output::Event(e) => panic!("unexpected event {e:?}"),
            Output::BufferTooSmall { needed } => buf.resize(needed, 0),
            Output::Wait(_) => return,
            o => panic!("unexpected {o:?}"),
        }
    }
}

fn deadline(s: &mut Session) -> Option<u64> {
    let mut buf = vec![0u8; 4096];
    match s.poll_output(&mut buf) {
        Output::Wait(d) => d.map(|i| i.0),
        o => panic!("undrained output {o:?}"),
    }
}

struct World {
    rng: Rng,
    net: Netem,
    t: u64,
    /// (deliver at, to server?, datagram)
    wire: Vec<(u64, bool, Vec<u8>)>,
    client: Session,
    server: Option<Session>,
    listener: Option<CookieListener>,
    server_cfg: Arc<ServerConfig>,
    mtu: usize,
    c: Side,
    s: Side,
    hello_verifies: usize,
}

impl World {
    fn new(
        seed: u64,
        net: Netem,
        suite: CipherSuite,
        mtu: usize,
        cookies: bool,
        rt: RetransmitConfig,
    ) -> Self {
        let psk = ClientPsk::new(ID, Psk::new(&KEY).unwrap()).unwrap();
        let ccfg = Arc::new(
            ClientConfig::builder(psk)
                .suites(&[suite])
                .retransmit(rt)
                .build()
                .unwrap(),
        );
        let mut t = m2msec::PskTable::new();
        t.insert(ID, Psk::new(&KEY).unwrap()).unwrap();
        let scfg = Arc::new(
            ServerConfig::builder(Box::new(t))
                .identity_hint(Some(b"hint"))
                .retransmit(rt)
                .build()
                .unwrap(),
        );
        let client = Session::client(
            ccfg,
            Transport::Dtls { mtu },
            Some("mef.example"),
            now(0),
            [seed as u8; 32],
        )
        .unwrap();
        let mut w = Self {
            rng: Rng(seed),
            net,
            t: 0,
            wire: Vec::new(),
            client,
            server: None,
            listener: cookies.then(|| CookieListener::new([7; 32])),
            server_cfg: scfg,
            mtu,
            c: Side::default(),
            s: Side::default(),
            hello_verifies: 0,
        };
        if !cookies {
            w.server = Some(
                Session::server(
                    w.server_cfg.clone(),
                    Transport::Dtls { mtu },
                    now(0),
                    [9; 32],
                )
                .unwrap(),
            );
        }
        w.flush();
        w
    }

    fn send(&mut self, to_server: bool, dgram: Vec<u8>) {
        assert!(
            dgram.len() <= self.mtu,
            "datagram of {} bytes over the MTU {}",
            dgram.len(),
            self.mtu
        );
        if self.rng.chance(self.net.loss) {
            return;
        }
        let copies = if self.rng.chance(self.net.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay = 1 + self.rng.next() % (self.net.max_delay_ms * 1000);
            self.wire.push((self.t + delay, to_server, dgram.clone()));
        }
    }

    fn flush(&mut self) {
        let mut out = Vec::new();
        drain(&mut self.client, &mut self.c, &mut out);
        for d in out.drain(..) {
            self.send(true, d);
        }
        if let Some(s) = self.server.as_mut() {
            drain(s, &mut self.s, &mut out);
            for d in out {
                self.send(false, d);
            }
        }
    }

    /// Advances to the next event; false when nothing is left to happen.
    fn step(&mut self) -> Result<bool, Error> {
        let next_wire = self.wire.iter().map(|w| w.0).min();
        let cd = deadline(&mut self.client);
        let sd = self.server.as_mut().and_then(deadline);
        let Some(t) = [next_wire, cd, sd].into_iter().flatten().min() else {
            return Ok(false);
        };
        self.t = self.t.max(t);
        if let Some(i) = self.wire.iter().position(|w| w.0 <= self.t) {
            let (_, to_server, d) = self.wire.remove(i);
            if to_server {
                self.deliver_to_server(&d)?;
            } else {
                let n = self.client.handle_input(now(self.t), &d)?;
                assert_eq!(n, d.len());
            }
        }
        if cd.is_some_and(|d| d <= self.t) {
            self.client.handle_timeout(now(self.t))?;
        }
        if sd.is_some_and(|d| d <= self.t) {
            self.server.as_mut().unwrap().handle_timeout(now(self.t))?;
        }
        self.flush();
        Ok(true)
    }

    fn deliver_to_server(&mut self, d: &[u8]) -> Result<(), Error> {
        if self.server.is_none() {
            let l = self.listener.as_ref().unwrap();
            match l.handle_datagram(b"127.0.0.1:5684", d) {
                ListenerDecision::SendHelloVerify(hvr) => {
                    self.hello_verifies += 1;
                    self.send(false, hvr);
                    return Ok(());
                }
                ListenerDecision::Accept => {
                    self.server = Some(
                        Session::server(
                            self.server_cfg.clone(),
                            Transport::Dtls { mtu: self.mtu },
                            now(self.t),
                            [9; 32],
                        )
                        .unwrap(),
                    );
                }
                _ => return Ok(()),
            }
        }
        let s = self.server.as_mut().unwrap();
        assert_eq!(s.handle_input(now(self.t), d)?, d.len());
        Ok(())
    }

    fn run_handshake(&mut self) -> Result<(), Error> {
        while !(self.client.is_connected()
            && self.server.as_ref().is_some_and(Session::is_connected))
        {
            if !self.step()? {
                panic!("stalled at t={} with nothing scheduled", self.t);
            }
        }
        Ok(())
    }
}

fn fast_rt() -> RetransmitConfig {
    RetransmitConfig {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(2),
        ..RetransmitConfig::default()
    }
}

#[test]
fn dtls_handshake_data_exporter_both_suites_with_and_without_cookie() {
    for &suite in CipherSuite::ALL {
        for cookies in [false, true] {
            let mut w = World::new(
                1,
                PERFECT,
                suite,
                1232,
                cookies,
                RetransmitConfig::default(),
            );
            w.run_handshake().unwrap();
            assert_eq!(w.hello_verifies, usize::from(cookies));
            let ci = w.c.connected.clone().unwrap();
            let si = w.s.connected.clone().unwrap();
            assert_eq!((ci.suite, si.suite), (suite, suite));
            assert_eq!(si.psk_identity, ID);
            assert_eq!(si.server_name.as_deref(), Some("mef.example"));
            assert!(ci.extended_master_secret);
            let server = w.server.as_mut().unwrap();
            let (mut a, mut b) = ([0u8; 48], [0u8; 48]);
            w.client
                .export_keying_material(&mut a, b"EXPORTER-oneM2M-Bootstrap", None)
                .unwrap();
            server
                .export_keying_material(&mut b, b"EXPORTER-oneM2M-Bootstrap", None)
                .unwrap();
            assert_eq!(a, b);
            // A datagram each way; payload above one record's room is taken partially.
            let max = w.client.max_payload();
            assert!(max < 1232 && max > 1100, "payload room {max}");
            let big = vec![0xab; 5000];
            assert_eq!(w.client.send(now(w.t), &big).unwrap(), max);
            w.server.as_mut().unwrap().send(now(w.t), b"pong").unwrap();
            w.flush();
            while w.step().unwrap() {}
            assert_eq!(w.s.data.len(), max);
            assert_eq!(w.c.data, b"pong");
            // close_notify both ways
            w.client.close(now(w.t)).unwrap();
            w.flush();
            while w.step().unwrap() {}
            assert!(w.s.closed && w.c.closed);
        }
    }
}

#[test]
fn tiny_mtu_fragments_every_flight() {
    // Below about 100 bytes the cookie no longer fits the first ClientHello fragment.
    for (mtu, cookies) in [(64, false), (80, false), (100, true), (120, true)] {
        let mut w = World::new(
            2,
            PERFECT,
            CipherSuite::PskAes128Ccm8,
            mtu,
            cookies,
            RetransmitConfig::default(),
        );
        w.run_handshake().unwrap();
        assert!(w.client.is_connected());
    }
}

/// 30% loss, 10% duplication, reordering through random delays of up to 80 ms: every one of
/// 1000 seeds completes within the retransmission budget, with fragmentation and cookies.
#[test]
fn lossy_network_1000_seeds() {
    let net = Netem {
        loss: 30,
        duplicate: 10,
        max_delay_ms: 80,
    };
    let mut retransmissions = 0;
    for seed in 0..1000u64 {
        let suite = CipherSuite::ALL[(seed % 2) as usize];
        let mtu = if seed % 3 == 0 { 100 } else { 1232 };
        let mut w = World::new(seed, net, suite, mtu, seed % 2 == 0, fast_rt());
        if let Err(e) = w.run_handshake() {
            panic!("seed {seed}: {e} after {} ms", w.t / 1000);
        }
        retransmissions +=
            w.client.stats().retransmissions + w.server.as_ref().unwrap().stats().retransmissions;
    }
    assert!(
        retransmissions > 1000,
        "the network really was lossy ({retransmissions} retransmissions)"
    );
}

#[test]
fn silence_ends_in_a_timeout() {
    let rt = RetransmitConfig {
        initial: Duration::from_millis(10),
        max: Duration::from_millis(40),
        max_retransmissions: 3,
        ..RetransmitConfig::default()
    };
    let mut w = World::new(
        3,
        Netem {
            loss: 100,
            duplicate: 0,
            max_delay_ms: 1,
        },
        CipherSuite::PskAes128Ccm,
        1232,
        false,
        rt,
    );
    let e = loop {
        match w.step() {
            Ok(true) => {}
            Ok(false) => panic!("no timer left"),
            Err(e) => break e,
        }
    };
    assert_eq!(e, Error::HandshakeTimeout);
    assert_eq!(w.client.stats().retransmissions, 3);
}

#[test]
fn replayed_and_forged_records_are_dropped_and_counted() {
    let mut w = World::new(
        4,
        PERFECT,
        CipherSuite::PskAes128Ccm8,
        1232,
        false,
        RetransmitConfig::default(),
    );
    w.run_handshake().unwrap();
    w.client.send(now(w.t), b"once").unwrap();
    let mut out = Vec::new();
    drain(&mut w.client, &mut w.c, &mut out);
    let rec = out.pop().unwrap();
    let server = w.server.as_mut().unwrap();
    server.handle_input(now(w.t), &rec).unwrap();
    drain(server, &mut w.s, &mut Vec::new());
    assert_eq!(w.s.data, b"once");
    // the same datagram again: dropped as a replay
    server.handle_input(now(w.t), &rec).unwrap();
    drain(server, &mut w.s, &mut Vec::new());
    assert_eq!(w.s.data, b"once");
    assert_eq!(server.stats().replayed, 1);
    // a flipped bit: dropped as bad MAC, the session lives on
    let mut bad = rec.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x80;
    bad[10] ^= 0x40; // a fresh sequence number, so it is not a replay
    server.handle_input(now(w.t), &bad).unwrap();
    assert_eq!(server.stats().bad_mac, 1);
    // garbage: malformed, dropped
    server
        .handle_input(now(w.t), &[22, 0xfe, 0xfd, 0, 1])
        .unwrap();
    assert_eq!(server.stats().malformed, 1);
    assert!(server.is_connected());
}

/// A flood of ClientHellos without cookies: the listener answers each with a HelloVerifyRequest
/// and keeps no state (it takes `&self`, and no session is created).
#[test]
fn cookie_flood_creates_no_state() {
    let listener = CookieListener::new([1; 32]);
    let psk = ClientPsk::new(ID, Psk::new(&KEY).unwrap()).unwrap();
    let ccfg = Arc::new(ClientConfig::builder(psk).build().unwrap());
    let mut sessions: Vec<Session> = Vec::new();
    for i in 0..2000u32 {
        let mut c =
            Session::client(ccfg.clone(), Transport::dtls(), None, now(0), [i as u8; 32]).unwrap();
        let mut out = Vec::new();
        drain(&mut c, &mut Side::default(), &mut out);
        let peer = i.to_be_bytes();
        match listener.handle_datagram(&peer, &out[0]) {
            ListenerDecision::SendHelloVerify(_) => {}
            ListenerDecision::Accept => sessions.push(
                Session::server(
                    server_cfg(CipherSuite::ALL, None),
                    Transport::dtls(),
                    now(0),
                    [0; 32],
                )
                .unwrap(),
            ),
            d => panic!("{d:?}"),
        }
    }
    assert!(sessions.is_empty());
    // A cookie for one address is refused from another.
    let mut c = Session::client(ccfg, Transport::dtls(), None, now(0), [5; 32]).unwrap();
    let mut out = Vec::new();
    drain(&mut c, &mut Side::default(), &mut out);
    let ListenerDecision::SendHelloVerify(hvr) = listener.handle_datagram(b"a", &out[0]) else {
        panic!()
    };
    c.handle_input(now(0), &hvr).unwrap();
    let mut out = Vec::new();
    drain(&mut c, &mut Side::default(), &mut out);
    assert_eq!(
        listener.handle_datagram(b"b", &out[0]),
        ListenerDecision::Drop
    );
    assert_eq!(
        listener.handle_datagram(b"a", &out[0]),
        ListenerDecision::Accept
    );
}

/// A peer that falls silent after its first flight: the overall handshake limit ends the
/// handshake even while retransmissions would go on.
#[test]
fn handshake_limit_bounds_a_silent_failure() {
    let rt = RetransmitConfig {
        initial: Duration::from_millis(10),
        max: Duration::from_millis(20),
        max_retransmissions: 1000,
        handshake_timeout: Duration::from_millis(500),
    };
    let psk = ClientPsk::new(ID, Psk::new(&KEY).unwrap()).unwrap();
    let ccfg = Arc::new(ClientConfig::builder(psk).retransmit(rt).build().unwrap());
    let mut c = Session::client(ccfg, Transport::dtls(), None, now(0), [1; 32]).unwrap();
    let mut s = Session::server(
        server_cfg(CipherSuite::ALL, None),
        Transport::dtls(),
        now(0),
        [2; 32],
    )
    .unwrap();
    let (mut cs, mut ss) = (Side::default(), Side::default());
    let mut t = 0;
    // The server's first flight reaches the client; then the link dies, and the client's
    // Finished flight is never answered.
    let mut link_up = true;
    let err = loop {
        loop {
            let mut to_s = Vec::new();
            drain(&mut c, &mut cs, &mut to_s);
            if link_up {
                for d in &to_s {
                    s.handle_input(now(t), d).unwrap();
                }
            }
            let mut to_c = Vec::new();
            drain(&mut s, &mut ss, &mut to_c);
            if !link_up {
                to_c.clear();
            }
            for d in &to_c {
                c.handle_input(now(t), d).unwrap();
            }
            // The server's flight (up to ServerHelloDone) is through: the link dies.
            if !to_c.is_empty() {
                link_up = false;
            }
            if to_s.is_empty() && to_c.is_empty() {
                break;
            }
        }
        t = deadline(&mut c).expect("a deadline while handshaking");
        if let Err(e) = c.handle_timeout(now(t)) {
            break e;
        }
    };
    assert_eq!(err, Error::HandshakeTimeout);
    assert!((500_000..600_000).contains(&t), "ended at {t} µs");
}

/// A wrong key over DTLS: the server cannot authenticate the client's Finished and ends the
/// handshake with a fatal bad_record_mac alert (RFC 6347 4.1.2.7 allows it), so the client knows
/// at once instead of retransmitting until its handshake timeout; no timer is involved.
#[test]
fn a_wrong_key_ends_with_bad_record_mac_on_both_sides() {
    for suite in CipherSuite::ALL.iter().copied() {
        let psk = ClientPsk::new(ID, Psk::new(&[9; 16]).unwrap()).unwrap();
        let ccfg = Arc::new(ClientConfig::builder(psk).suites(&[suite]).build().unwrap());
        let mut c = Session::client(ccfg, Transport::dtls(), None, now(0), [1; 32]).unwrap();
        let mut s = Session::server(
            server_cfg(CipherSuite::ALL, None),
            Transport::dtls(),
            now(0),
            [2; 32],
        )
        .unwrap();
        let (mut cs, mut ss) = (Side::default(), Side::default());
        let (mut server_err, mut client_err) = (None, None);
        for _ in 0..10 {
            let mut to_s = Vec::new();
            drain(&mut c, &mut cs, &mut to_s);
            for d in &to_s {
                if let Err(e) = s.handle_input(now(0), d) {
                    server_err.get_or_insert(e);
                }
            }
            let mut to_c = Vec::new();
            drain(&mut s, &mut ss, &mut to_c);
            for d in &to_c {
                if let Err(e) = c.handle_input(now(0), d) {
                    client_err.get_or_insert(e);
                }
            }
            if to_s.is_empty() && to_c.is_empty() {
                break;
            }
        }
        assert_eq!(server_err, Some(Error::BadRecordMac), "{suite:?}");
        assert_eq!(s.stats().bad_mac, 1, "{suite:?}");
        assert_eq!(
            client_err,
            Some(Error::AlertReceived(AlertDescription::BadRecordMac)),
            "{suite:?}"
        );
        assert!(!c.is_connected() && !s.is_connected());
    }
}

/// `dtls::client_hello_random`, which the adapters use to tell a reconnecting client (RFC 6347
/// 4.2.8) from a retransmission: a real ClientHello gives its random, the same for its
/// retransmission and different for another client; anything else, and every truncation, gives
/// `None` without a panic.
#[test]
fn client_hello_random_reads_the_first_client_hello_only() {
    use m2msec::dtls::client_hello_random;
    let rt = RetransmitConfig {
        initial: Duration::from_millis(10),
        ..RetransmitConfig::default()
    };
    let hello = |seed: u8| {
        let psk = ClientPsk::new(ID, Psk::new(&KEY).unwrap()).unwrap();
        let ccfg = Arc::new(ClientConfig::builder(psk).retransmit(rt).build().unwrap());
        let mut c = Session::client(ccfg, Transport::dtls(), None, now(0), [seed; 32]).unwrap();
        let mut out = Vec::new();
        drain(&mut c, &mut Side::default(), &mut out);
        let t = deadline(&mut c).unwrap();
        c.handle_timeout(now(t)).unwrap();
        drain(&mut c, &mut Side::default(), &mut out);
        assert_eq!(out.len(), 2, "the ClientHello and its retransmission");
        out
    };
    let a = hello(1);
    let b = hello(2);
    let ra = client_hello_random(&a[0]).expect("a ClientHello");
    assert_eq!(client_hello_random(&a[1]), Some(ra), "its retransmission");
    assert_ne!(client_hello_random(&b[0]), Some(ra), "another client");
    // The random sits after the record header (13), the handshake header (12) and the version.
    assert_eq!(&a[0][13 + 12 + 2..13 + 12 + 34], &ra[..]);
    for n in 0..a[0].len() {
        let r = client_hello_random(&a[0][..n]);
        assert!(r.is_none() || n >= 13 + 12 + 34, "{n}");
    }
    // A server's flight is not a ClientHello; nor is the same record at epoch 1.
    let mut s = Session::server(
        server_cfg(CipherSuite::ALL, None),
        Transport::dtls(),
        now(0),
        [3; 32],
    )
    .unwrap();
    s.handle_input(now(0), &a[0]).unwrap();
    let mut from_s = Vec::new();
    drain(&mut s, &mut Side::default(), &mut from_s);
    assert!(!from_s.is_empty());
    assert!(from_s.iter().all(|d| client_hello_random(d).is_none()));
    let mut epoch1 = a[0].clone();
    epoch1[4] = 1;
    assert_eq!(client_hello_random(&epoch1), None);
}

/// RFC 6347 4.2.4: the server keeps its final flight to answer a retransmitted client Finished
/// (its own was lost), and lets it go once the client's application data shows the client has
/// it.
#[test]
fn server_answers_a_repeated_client_finished_until_application_data_arrives() {
    let mut w = World::new(
        9,
        PERFECT,
        CipherSuite::PskAes128Ccm8,
        1232,
        false,
        RetransmitConfig::default(),
    );
    while !w.server.as_ref().unwrap().is_connected() {
        assert!(w.step().unwrap(), "stalled");
    }
    // The server's final flight is lost.
    w.wire.retain(|(_, to_server, _)| *to_server);
    assert!(w.wire.is_empty() && !w.client.is_connected());
    // The client's timer fires twice: two retransmissions of its last flight.
    let mut repeats = Vec::new();
    for _ in 0..2 {
        let t = deadline(&mut w.client).expect("client timer armed");
        w.client.handle_timeout(now(t)).unwrap();
        let mut out = Vec::new();
        drain(&mut w.client, &mut w.c, &mut out);
        assert!(!out.is_empty());
        repeats.push(out);
    }
    let server = w.server.as_mut().unwrap();
    let mut answer = Vec::new();
    for d in &repeats[0] {
        assert_eq!(server.handle_input(now(0), d).unwrap(), d.len());
        drain(server, &mut w.s, &mut answer);
    }
    assert!(!answer.is_empty(), "final flight not retransmitted");
    assert_eq!(server.stats().retransmissions, 1);
    for d in &answer {
        assert_eq!(w.client.handle_input(now(0), d).unwrap(), d.len());
    }
    drain(&mut w.client, &mut w.c, &mut Vec::new());
    assert!(w.client.is_connected());
    // Application data from the client: it has our Finished.
    w.client.send(now(0), b"ping").unwrap();
    let mut out = Vec::new();
    drain(&mut w.client, &mut w.c, &mut out);
    for d in &out {
        assert_eq!(server.handle_input(now(0), d).unwrap(), d.len());
    }
    drain(server, &mut w.s, &mut Vec::new());
    assert_eq!(w.s.data, b"ping");
    // A late copy of the client's flight is no longer answered.
    let mut late = Vec::new();
    for d in &repeats[1] {
        assert_eq!(server.handle_input(now(0), d).unwrap(), d.len());
        drain(server, &mut w.s, &mut late);
    }
    assert!(late.is_empty(), "answered after application data");
    assert_eq!(server.stats().retransmissions, 1);
    assert!(server.is_connected());
}
