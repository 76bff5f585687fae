//! State shared by the client and server machines: the transcript, the randomness, the record
//! protection of both directions and the outgoing byte queue.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;

use sha2::{Digest, Sha256};

#[cfg(feature = "ecdhe")]
use crate::cert::Credential;
use crate::cert::PeerCertificateInfo;
use crate::codec::put_u24;
use crate::config::Limits;
use crate::crypto::rng::Drbg;
use crate::dtls::{
    FragmentHeader, Reassembler, ReplayWindow, RetransmitConfig, Timer, HS_HEADER_LEN,
};
use crate::enums::{AlertDescription, AlertLevel, ContentType, HandshakeType, ProtocolVersion};
use crate::error::Error;
use crate::key_schedule::{DirectionKeys, MasterSecret};
use crate::record::{plain_record, Protection, Wire, DTLS_HEADER_LEN, MAX_PLAINTEXT};
use crate::suites::CipherSuite;
use crate::time::{Instant, UnixTime};

/// What the handshake established, reported in `Event::Connected`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionInfo {
    /// The negotiated suite.
    pub suite: CipherSuite,
    /// The PSK identity the client used (empty for an ECDHE-ECDSA suite).
    pub psk_identity: Vec<u8>,
    /// The PSK identity hint the server sent, if any.
    pub psk_identity_hint: Option<Vec<u8>>,
    /// The SNI host name the client sent, if any.
    pub server_name: Option<String>,
    /// Whether RFC 7627 extended master secret was negotiated.
    pub extended_master_secret: bool,
    /// What the `CertVerifier` (or `Session::peer_verified`) established about the peer's
    /// certificate or raw public key; `None` for PSK suites and for a client that declined a
    /// CertificateRequest of a server with optional client authentication.
    pub peer_certificate: Option<PeerCertificateInfo>,
}

/// Events queued by the machines (owned; `AppData` is delivered separately).
#[derive(Debug)]
pub(crate) enum QueuedEvent {
    PskNeeded {
        identity: Vec<u8>,
        server_name: Option<String>,
        suite: CipherSuite,
    },
    Connected(SessionInfo),
    #[cfg(feature = "ecdhe")]
    VerifyPeer(Credential),
    PeerClosed,
}

/// Secrets kept after the handshake for the exporter.
pub(crate) struct Established {
    pub(crate) client_random: [u8; 32],
    pub(crate) server_random: [u8; 32],
    pub(crate) master_secret: MasterSecret,
    pub(crate) info: SessionInfo,
}

impl core::fmt::Debug for Established {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Established")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// One message of the last flight sent, kept for retransmission (DTLS).
#[derive(Debug)]
pub(crate) enum FlightItem {
    Handshake {
        epoch: u16,
        typ: HandshakeType,
        message_seq: u16,
        body: Vec<u8>,
    },
    ChangeCipherSpec,
}

/// Counters of what DTLS dropped silently (RFC 6347 4.1.2.7) and of retransmissions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Records that failed to parse.
    pub malformed: u64,
    /// Records that failed authentication.
    pub bad_mac: u64,
    /// Records seen before (anti-replay window).
    pub replayed: u64,
    /// Records from an epoch we cannot read.
    pub wrong_epoch: u64,
    /// Handshake fragments dropped (too far ahead, inconsistent, over the memory bound).
    pub dropped_fragments: u64,
    /// Flights we retransmitted.
    pub retransmissions: u64,
}

/// DTLS state needed only until the handshake completes: the retransmission timer and its
/// settings, the handshake deadline, early next-epoch records, the HelloVerifyRequest count.
/// Freed when the session is connected (`DtlsState::handshake`): afterwards only a peer's
/// retransmitted flight makes us send ours again (the server's, RFC 6347 4.2.4), with no timer.
#[derive(Debug)]
pub(crate) struct DtlsHandshake {
    pub(crate) retransmit: RetransmitConfig,
    pub(crate) timer: Timer,
    /// Records of the next epoch that arrived before the ChangeCipherSpec (bounded).
    pub(crate) early: Vec<Vec<u8>>,
    pub(crate) hello_verify_count: u8,
    /// When the handshake must be over (`RetransmitConfig::handshake_timeout` from the start).
    pub(crate) deadline: Instant,
}

/// DTLS state (RFC 6347): epochs, sequence numbers, flights, timer, reassembly.
#[derive(Debug)]
pub(crate) struct DtlsState {
    pub(crate) mtu: usize,
    pub(crate) write_epoch: u16,
    /// Next sequence number per epoch (0 and 1: there is no renegotiation).
    pub(crate) epoch_seq: [u64; 2],
    pub(crate) send_msg_seq: u16,
    pub(crate) flight: Vec<FlightItem>,
    /// Whether sends still add to the current flight (reset when a peer message is processed).
    pub(crate) flight_open: bool,
    /// `None` once connected.
    pub(crate) handshake: Option<Box<DtlsHandshake>>,
    pub(crate) read_epoch: u16,
    pub(crate) replay: [ReplayWindow; 2],
    pub(crate) reasm: Reassembler,
    pub(crate) datagrams: VecDeque<Vec<u8>>,
    /// A sent datagram's buffer, reused for the next one (once application data flows: the
    /// handshake's buffers are freed when the handshake is over, see `reuse_buffers`).
    pub(crate) spare: Option<Vec<u8>>,
    /// Whether application data has been sent: from then on a sent datagram's buffer is kept
    /// as `spare` (no allocation per datagram). Before, an established session holds no
    /// datagram buffer: `poll_output` frees the handshake's once its last datagram is out.
    pub(crate) reuse_buffers: bool,
    /// Whether the last queued datagram may take more records.
    pub(crate) datagram_open: bool,
    pub(crate) stats: Stats,
}

/// Most early (next-epoch) records kept.
pub(crate) const MAX_EARLY_RECORDS: usize = 4;

pub(crate) struct Common {
    pub(crate) transcript: Sha256,
    pub(crate) rng: Drbg,
    pub(crate) now: Instant,
    /// The caller's wall clock at the last call (certificate validity).
    pub(crate) unix: UnixTime,
    pub(crate) record_version: ProtocolVersion,
    pub(crate) tx: Vec<u8>,
    pub(crate) tx_pos: usize,
    pub(crate) write: Option<Protection>,
    pub(crate) write_seq: u64,
    pub(crate) read: Option<Protection>,
    pub(crate) read_seq: u64,
    pub(crate) pending_read: Option<DirectionKeys>,
    pub(crate) pending_write: Option<DirectionKeys>,
    pub(crate) events: VecDeque<QueuedEvent>,
    pub(crate) dtls: Option<Box<DtlsState>>,
}

impl Common {
    pub(crate) fn new(
        seed: [u8; 32],
        now: Instant,
        dtls: Option<(usize, RetransmitConfig, &Limits)>,
    ) -> Self {
        let dtls = dtls.map(|(mtu, retransmit, limits)| {
            Box::new(DtlsState {
                mtu,
                write_epoch: 0,
                epoch_seq: [0; 2],
                send_msg_seq: 0,
                flight: Vec::new(),
                flight_open: false,
                handshake: Some(Box::new(DtlsHandshake {
                    retransmit,
                    timer: Timer::Disarmed,
                    early: Vec::new(),
                    hello_verify_count: 0,
                    deadline: now.saturating_add(retransmit.handshake_timeout),
                })),
                read_epoch: 0,
                replay: [ReplayWindow::default(); 2],
                reasm: Reassembler::new(
                    0,
                    limits.max_handshake_message,
                    2 * limits.max_handshake_message,
                    8,
                ),
                datagrams: VecDeque::new(),
                spare: None,
                reuse_buffers: false,
                datagram_open: false,
                stats: Stats::default(),
            })
        });
        Self {
            transcript: Sha256::new(),
            rng: Drbg::new(seed),
            now,
            unix: UnixTime::default(),
            record_version: if dtls.is_some() {
                ProtocolVersion::DTLS12
            } else {
                ProtocolVersion::TLS12
            },
            tx: Vec::new(),
            tx_pos: 0,
            write: None,
            write_seq: 0,
            read: None,
            read_seq: 0,
            pending_read: None,
            pending_write: None,
            events: VecDeque::new(),
            dtls,
        }
    }

    /// The protocol version we speak: TLS 1.2 or DTLS 1.2.
    pub(crate) fn version(&self) -> ProtocolVersion {
        self.record_version
    }

    /// The transcript hash so far.
    pub(crate) fn transcript_hash(&self) -> [u8; 32] {
        self.transcript.clone().finalize().into()
    }

    /// Adds a received or sent handshake message (with its header) to the transcript.
    pub(crate) fn add_to_transcript(&mut self, raw: &[u8]) {
        self.transcript.update(raw);
    }

    /// Frames a handshake message, adds it to the transcript and queues it. Over DTLS the
    /// message joins the current flight and is fragmented to the MTU.
    pub(crate) fn send_handshake(&mut self, typ: HandshakeType, body: &[u8]) -> Result<(), Error> {
        let len = u32::try_from(body.len()).map_err(|_| Error::RecordOverflow)?;
        if let Some(d) = self.dtls.as_mut() {
            let message_seq = d.send_msg_seq;
            d.send_msg_seq = d.send_msg_seq.wrapping_add(1);
            let mut head = Vec::with_capacity(HS_HEADER_LEN);
            FragmentHeader::unfragmented(typ, body.len(), message_seq).write(&mut head);
            self.transcript.update(&head);
            self.transcript.update(body);
            let epoch = d.write_epoch;
            self.start_or_extend_flight(FlightItem::Handshake {
                epoch,
                typ,
                message_seq,
                body: body.to_vec(),
            });
            return self.emit_dtls_handshake(epoch, typ, message_seq, body);
        }
        let mut msg = Vec::with_capacity(4 + body.len());
        msg.push(typ.into());
        put_u24(&mut msg, len);
        msg.extend_from_slice(body);
        self.add_to_transcript(&msg);
        self.write_records(ContentType::Handshake, &msg)
    }

    fn start_or_extend_flight(&mut self, item: FlightItem) {
        let now = self.now;
        let Some(d) = self.dtls.as_mut() else { return };
        if !d.flight_open {
            d.flight.clear();
            d.flight_open = true;
            if let Some(h) = d.handshake.as_mut() {
                h.timer = Timer::start(now, &h.retransmit);
            }
        }
        d.flight.push(item);
    }

    /// Sends ChangeCipherSpec and switches the write direction to `keys`.
    pub(crate) fn send_ccs_and_switch(&mut self, keys: DirectionKeys) -> Result<(), Error> {
        self.start_or_extend_flight(FlightItem::ChangeCipherSpec);
        self.write_records(ContentType::ChangeCipherSpec, &[1])?;
        self.write = Some(Protection::new(keys));
        self.write_seq = 0;
        if let Some(d) = self.dtls.as_mut() {
            d.write_epoch = 1;
        }
        Ok(())
    }

    /// Queues an alert.
    pub(crate) fn send_alert(&mut self, level: AlertLevel, desc: AlertDescription) {
        // An alert is two bytes; it cannot fail to frame. A sequence overflow is ignored here:
        // the alert is then simply not sent.
        let _ = self.write_records(ContentType::Alert, &[level.into(), desc.into()]);
    }

    /// Queues `data` as records of `typ`, fragmented to the plaintext limit (TLS) and protected
    /// when write keys are active. Over DTLS, `data` must fit one record.
    pub(crate) fn write_records(&mut self, typ: ContentType, data: &[u8]) -> Result<(), Error> {
        if self.dtls.is_some() {
            let epoch = self.dtls.as_ref().map_or(0, |d| d.write_epoch);
            return self.write_dtls_record(epoch, typ, data);
        }
        for chunk in data.chunks(MAX_PLAINTEXT) {
            self.write_one(typ, chunk)?;
        }
        Ok(())
    }

    fn write_one(&mut self, typ: ContentType, chunk: &[u8]) -> Result<(), Error> {
        let version = self.record_version.0;
        match &self.write {
            Some(p) => {
                if self.write_seq == u64::MAX {
                    return Err(Error::SequenceExhausted);
                }
                p.seal_record(&mut self.tx, Wire::Tls, typ, version, self.write_seq, chunk);
                self.write_seq += 1;
            }
            None => plain_record(&mut self.tx, Wire::Tls, typ, version, self.write_seq, chunk),
        }
        Ok(())
    }

    /// Bytes of record overhead for `epoch` over DTLS.
    fn dtls_overhead(&self, epoch: u16) -> usize {
        DTLS_HEADER_LEN
            + if epoch == 0 {
                0
            } else {
                self.write.as_ref().map_or(0, Protection::overhead)
            }
    }

    /// Largest application payload of one DTLS record.
    pub(crate) fn dtls_max_payload(&self) -> usize {
        let d = self.dtls.as_ref().map_or(0, |d| d.mtu);
        d.saturating_sub(self.dtls_overhead(1)).min(MAX_PLAINTEXT)
    }

    /// Writes one DTLS record of `epoch` into the datagram queue, packing records up to the MTU.
    fn write_dtls_record(
        &mut self,
        epoch: u16,
        typ: ContentType,
        data: &[u8],
    ) -> Result<(), Error> {
        let size = self.dtls_overhead(epoch) + data.len();
        let version = self.record_version.0;
        let Some(d) = self.dtls.as_mut() else {
            return Ok(());
        };
        let e = usize::from(epoch.min(1));
        let seq = d.epoch_seq[e];
        if seq >= 1 << 48 {
            return Err(Error::SequenceExhausted);
        }
        d.epoch_seq[e] += 1;
        if typ == ContentType::ApplicationData {
            d.reuse_buffers = true;
        }
        let fits = d.datagram_open && d.datagrams.back().is_some_and(|b| b.len() + size <= d.mtu);
        if !fits {
            let mut buf = d.spare.take().unwrap_or_default();
            buf.reserve(d.mtu.max(size));
            d.datagrams.push_back(buf);
            d.datagram_open = true;
        }
        let out = d.datagrams.back_mut().expect("pushed above");
        let full_seq = (u64::from(epoch) << 48) | seq;
        match (&self.write, epoch) {
            (Some(p), 1..) => p.seal_record(out, Wire::Dtls, typ, version, full_seq, data),
            _ => plain_record(out, Wire::Dtls, typ, version, full_seq, data),
        }
        Ok(())
    }

    /// Fragments one handshake message into records that fit the MTU.
    fn emit_dtls_handshake(
        &mut self,
        epoch: u16,
        typ: HandshakeType,
        message_seq: u16,
        body: &[u8],
    ) -> Result<(), Error> {
        let mtu = self.dtls.as_ref().map_or(0, |d| d.mtu);
        let room = mtu
            .saturating_sub(self.dtls_overhead(epoch) + HS_HEADER_LEN)
            .max(1);
        let mut offset = 0;
        loop {
            let n = room.min(body.len() - offset);
            let mut rec = Vec::with_capacity(HS_HEADER_LEN + n);
            FragmentHeader {
                typ,
                length: body.len(),
                message_seq,
                offset,
                fragment_length: n,
            }
            .write(&mut rec);
            rec.extend_from_slice(&body[offset..offset + n]);
            self.write_dtls_record(epoch, ContentType::Handshake, &rec)?;
            offset += n;
            if offset >= body.len() {
                return Ok(());
            }
        }
    }

    /// Sends the last flight again (timer expiry, or the peer retransmitted its previous flight).
    pub(crate) fn retransmit_flight(&mut self) -> Result<(), Error> {
        let Some(d) = self.dtls.as_mut() else {
            return Ok(());
        };
        let flight = core::mem::take(&mut d.flight);
        d.stats.retransmissions += 1;
        d.datagram_open = false;
        let mut result = Ok(());
        for item in &flight {
            result = match item {
                FlightItem::Handshake {
                    epoch,
                    typ,
                    message_seq,
                    body,
                } => self.emit_dtls_handshake(*epoch, *typ, *message_seq, body),
                FlightItem::ChangeCipherSpec => {
                    self.write_dtls_record(0, ContentType::ChangeCipherSpec, &[1])
                }
            };
            if result.is_err() {
                break;
            }
        }
        if let Some(d) = self.dtls.as_mut() {
            d.flight = flight;
        }
        result
    }

    /// Bytes queued and not yet handed out.
    pub(crate) fn pending_tx(&self) -> usize {
        match &self.dtls {
            Some(d) => d.datagrams.iter().map(Vec::len).sum(),
            None => self.tx.len() - self.tx_pos,
        }
    }
}
