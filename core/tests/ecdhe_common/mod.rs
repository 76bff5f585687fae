//! Helpers of the ECDHE-ECDSA tests: the fixtures of `data/ecdhe/make.sh`, verifiers that
//! accept, reject or defer, and an in-memory driver for TLS and DTLS that answers
//! `Event::VerifyPeer` with a policy.
#![allow(dead_code, unreachable_pub)]

use std::collections::VecDeque;
use std::sync::Arc;

use m2msec::cert::{
    CertDecision, CertError, CertVerifier, CertifiedKey, Credential, PeerCertificateInfo,
    SigningKey,
};
use m2msec::enums::AlertDescription;
use m2msec::{
    CertificateType, CipherSuite, ClientAuth, ClientConfig, Error, Event, Now, Output,
    ServerConfig, Session, SessionInfo, Transport, UnixTime,
};
use sha2::{Digest, Sha256};

pub const CA: &[u8] = include_bytes!("../data/ecdhe/ca.der");
pub const SERVER_CERT: &[u8] = include_bytes!("../data/ecdhe/server.der");
pub const SERVER_KEY: &[u8] = include_bytes!("../data/ecdhe/server.key.der");
pub const CLIENT_CERT: &[u8] = include_bytes!("../data/ecdhe/client.der");
pub const CLIENT_KEY: &[u8] = include_bytes!("../data/ecdhe/client.key.der");
pub const OTHER_KEY: &[u8] = include_bytes!("../data/ecdhe/other.key.der");

pub fn key(der: &[u8]) -> SigningKey {
    SigningKey::from_pkcs8_der(der).unwrap()
}

pub fn server_x509() -> CertifiedKey {
    CertifiedKey::new(
        key(SERVER_KEY),
        Credential::X509(vec![SERVER_CERT.to_vec(), CA.to_vec()]),
    )
    .unwrap()
}

pub fn client_x509() -> CertifiedKey {
    CertifiedKey::new(
        key(CLIENT_KEY),
        Credential::X509(vec![CLIENT_CERT.to_vec()]),
    )
    .unwrap()
}

pub fn info_for(c: &Credential) -> PeerCertificateInfo {
    let spki = c.leaf_spki().unwrap();
    let h: [u8; 32] = Sha256::digest(&spki).into();
    PeerCertificateInfo::for_key(h, matches!(c, Credential::RawPublicKey(_)))
}

/// Accepts any credential (the handshake still checks the signatures with its key).
pub struct AcceptAll;
impl CertVerifier for AcceptAll {
    fn verify(&self, peer: &Credential, _now: UnixTime) -> CertDecision {
        CertDecision::Accept(info_for(peer))
    }
}

/// Accepts only a credential whose leaf key hashes to the pinned value.
pub struct PinKey(pub [u8; 32]);
impl CertVerifier for PinKey {
    fn verify(&self, peer: &Credential, _now: UnixTime) -> CertDecision {
        let info = info_for(peer);
        if info.spki_sha256 == self.0 {
            CertDecision::Accept(info)
        } else {
            CertDecision::Reject(CertError::UntrustedRoot)
        }
    }
}

pub fn pin(k: &CertifiedKey) -> Arc<PinKey> {
    Arc::new(PinKey(info_for(k.credential()).spki_sha256))
}

pub struct RejectAll(pub CertError);
impl CertVerifier for RejectAll {
    fn verify(&self, _peer: &Credential, _now: UnixTime) -> CertDecision {
        CertDecision::Reject(self.0)
    }
}

pub struct DeferAll;
impl CertVerifier for DeferAll {
    fn verify(&self, _peer: &Credential, _now: UnixTime) -> CertDecision {
        CertDecision::Defer
    }
}

pub fn client_cfg(
    suites: &[CipherSuite],
    verifier: Arc<dyn CertVerifier>,
    own: Option<CertifiedKey>,
) -> ClientConfig {
    let mut b = ClientConfig::builder_with_verifier(verifier).suites(suites);
    if let Some(k) = own {
        b = b.certificate(k);
    }
    b.build().unwrap()
}

pub fn server_cfg(
    suites: &[CipherSuite],
    own: CertifiedKey,
    auth: ClientAuth,
    verifier: Arc<dyn CertVerifier>,
) -> ServerConfig {
    ServerConfig::builder_with_certificate(own)
        .suites(suites)
        .client_auth(auth)
        .verifier(verifier)
        .client_certificate_types(&[CertificateType::X509, CertificateType::RawPublicKey])
        .build()
        .unwrap()
}

/// How a side answers `Event::VerifyPeer`.
pub type Answer = fn(&Credential) -> Result<PeerCertificateInfo, CertError>;

pub fn accept(c: &Credential) -> Result<PeerCertificateInfo, CertError> {
    Ok(info_for(c))
}

pub fn refuse(_c: &Credential) -> Result<PeerCertificateInfo, CertError> {
    Err(CertError::Refused)
}

/// One side of the pair.
pub struct Side {
    pub s: Session,
    pub info: Option<SessionInfo>,
    pub err: Option<Error>,
    pub data: Vec<u8>,
    pub verify_events: usize,
    pub answer: Answer,
    dtls: bool,
}

impl Side {
    pub fn new(s: Session, dtls: bool, answer: Answer) -> Self {
        Self {
            s,
            info: None,
            err: None,
            data: Vec::new(),
            verify_events: 0,
            answer,
            dtls,
        }
    }

    /// Drains output into `out` (TLS: one byte string; DTLS: one entry per datagram),
    /// answering VerifyPeer at once.
    pub fn drain(&mut self, out: &mut Vec<Vec<u8>>) {
        let mut buf = vec![0u8; 700];
        loop {
            match self.s.poll_output(&mut buf) {
                Output::Transmit(b) => {
                    if self.dtls || out.is_empty() {
                        out.push(b.to_vec());
                    } else {
                        out[0].extend_from_slice(b);
                    }
                }
                Output::Event(Event::Connected(i)) => self.info = Some(i),
                Output::Event(Event::AppData(d)) => self.data.extend_from_slice(d),
                Output::Event(Event::VerifyPeer { credential }) => {
                    self.verify_events += 1;
                    assert!(self.s.is_suspended());
                    let r = (self.answer)(&credential);
                    if let Err(e) = self.s.peer_verified(Now::default(), r) {
                        self.err.get_or_insert(e);
                    }
                }
                Output::Event(_) => {}
                Output::BufferTooSmall { needed } => buf.resize(needed, 0),
                Output::Wait(_) => return,
                o => panic!("unexpected {o:?}"),
            }
        }
    }

    /// Feeds `input` (TLS in chunks of `chunk`; DTLS datagram by datagram) and returns output.
    pub fn feed(&mut self, input: &[Vec<u8>], chunk: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut queue: VecDeque<Vec<u8>> = if self.dtls {
            input.iter().cloned().collect()
        } else {
            input
                .concat()
                .chunks(chunk.max(1))
                .map(<[u8]>::to_vec)
                .collect()
        };
        while let Some(item) = queue.pop_front() {
            if self.err.is_some() {
                break;
            }
            let mut rest = &item[..];
            let mut stalls = 0;
            while !rest.is_empty() {
                match self.s.handle_input(Now::default(), rest) {
                    Ok(n) => {
                        rest = &rest[n..];
                        if n == 0 {
                            stalls += 1;
                            assert!(stalls < 4, "no progress");
                        }
                    }
                    Err(e) => {
                        self.err = Some(e);
                        self.drain(&mut out);
                        return out;
                    }
                }
                self.drain(&mut out);
                if self.err.is_some() {
                    return out;
                }
            }
        }
        self.drain(&mut out);
        out
    }
}

pub struct Outcome {
    pub c: Side,
    pub s: Side,
}

impl Outcome {
    pub fn connected(&self) -> bool {
        self.c.s.is_connected() && self.s.s.is_connected()
    }
}

/// Edits a flight on the wire: (round, from the client?, the flight).
pub type Tamper<'a> = &'a mut dyn FnMut(usize, bool, &mut Vec<Vec<u8>>);

/// Runs a handshake; `tamper` may edit each flight (index, from client?, bytes) on the way.
pub fn run_with(
    ccfg: ClientConfig,
    scfg: ServerConfig,
    transport: Transport,
    chunk: usize,
    answers: (Answer, Answer),
    tamper: Tamper<'_>,
) -> Outcome {
    let dtls = transport != Transport::Tls;
    let client = Session::client(
        Arc::new(ccfg),
        transport,
        Some("mef.example.com"),
        Now::default(),
        [1; 32],
    )
    .unwrap();
    let server = Session::server(Arc::new(scfg), transport, Now::default(), [2; 32]).unwrap();
    let mut c = Side::new(client, dtls, answers.0);
    let mut s = Side::new(server, dtls, answers.1);
    let mut to_server = Vec::new();
    c.drain(&mut to_server);
    for round in 0..12 {
        tamper(round, true, &mut to_server);
        let mut to_client = s.feed(&to_server, chunk);
        tamper(round, false, &mut to_client);
        to_server = c.feed(&to_client, chunk);
        let done = c.s.is_connected() && s.s.is_connected();
        if done || (to_server.is_empty() && to_client.is_empty()) {
            break;
        }
    }
    Outcome { c, s }
}

pub fn run(ccfg: ClientConfig, scfg: ServerConfig, transport: Transport, chunk: usize) -> Outcome {
    run_with(
        ccfg,
        scfg,
        transport,
        chunk,
        (accept, accept),
        &mut |_, _, _| {},
    )
}

/// The alert description of a received fatal alert, if that is how the side failed.
pub fn alert_received(side: &Side) -> Option<AlertDescription> {
    match &side.err {
        Some(Error::AlertReceived(a)) => Some(*a),
        _ => None,
    }
}

pub fn exporter(s: &Session) -> [u8; 32] {
    let mut out = [0u8; 32];
    s.export_keying_material(&mut out, b"EXPORTER-oneM2M-Bootstrap", None)
        .unwrap();
    out
}

/// TLS plaintext records (type, body) of one flight.
pub fn records(bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut v = Vec::new();
    let mut i = 0;
    while i + 5 <= bytes.len() {
        let len = usize::from(u16::from_be_bytes([bytes[i + 3], bytes[i + 4]]));
        v.push((bytes[i], bytes[i + 5..i + 5 + len].to_vec()));
        i += 5 + len;
    }
    v
}

pub fn join(recs: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (t, b) in recs {
        out.push(*t);
        out.extend_from_slice(&[3, 3]);
        out.extend_from_slice(&u16::try_from(b.len()).unwrap().to_be_bytes());
        out.extend_from_slice(b);
    }
    out
}
