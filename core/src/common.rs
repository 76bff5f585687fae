//! State shared by the client and server machines: the transcript, the randomness, the record
//! protection of both directions and the outgoing byte queue.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;

use sha2::{Digest, Sha256};

use crate::codec::put_u24;
use crate::crypto::rng::Drbg;
use crate::enums::{AlertDescription, AlertLevel, ContentType, HandshakeType, ProtocolVersion};
use crate::error::Error;
use crate::key_schedule::{DirectionKeys, MasterSecret};
use crate::record::{plain_record, Protection, MAX_PLAINTEXT};
use crate::suites::CipherSuite;

/// What the handshake established, reported in `Event::Connected`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionInfo {
    /// The negotiated suite.
    pub suite: CipherSuite,
    /// The PSK identity the client used.
    pub psk_identity: Vec<u8>,
    /// The PSK identity hint the server sent, if any.
    pub psk_identity_hint: Option<Vec<u8>>,
    /// The SNI host name the client sent, if any.
    pub server_name: Option<String>,
    /// Whether RFC 7627 extended master secret was negotiated.
    pub extended_master_secret: bool,
}

/// Events queued by the machines (owned; `AppData` is delivered separately).
#[derive(Debug)]
pub(crate) enum QueuedEvent {
    PskNeeded {
        identity: Vec<u8>,
        server_name: Option<String>,
    },
    Connected(SessionInfo),
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

pub(crate) struct Common {
    pub(crate) transcript: Sha256,
    pub(crate) rng: Drbg,
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
}

impl Common {
    pub(crate) fn new(seed: [u8; 32]) -> Self {
        Self {
            transcript: Sha256::new(),
            rng: Drbg::new(seed),
            record_version: ProtocolVersion::TLS12,
            tx: Vec::new(),
            tx_pos: 0,
            write: None,
            write_seq: 0,
            read: None,
            read_seq: 0,
            pending_read: None,
            pending_write: None,
            events: VecDeque::new(),
        }
    }

    /// The transcript hash so far.
    pub(crate) fn transcript_hash(&self) -> [u8; 32] {
        self.transcript.clone().finalize().into()
    }

    /// Adds a received or sent handshake message (with its header) to the transcript.
    pub(crate) fn add_to_transcript(&mut self, raw: &[u8]) {
        self.transcript.update(raw);
    }

    /// Frames a handshake message, adds it to the transcript and queues it.
    pub(crate) fn send_handshake(&mut self, typ: HandshakeType, body: &[u8]) -> Result<(), Error> {
        let mut msg = Vec::with_capacity(4 + body.len());
        msg.push(typ.into());
        put_u24(
            &mut msg,
            u32::try_from(body.len()).map_err(|_| Error::RecordOverflow)?,
        );
        msg.extend_from_slice(body);
        self.add_to_transcript(&msg);
        self.write_records(ContentType::Handshake, &msg)
    }

    /// Sends ChangeCipherSpec and switches the write direction to `keys`.
    pub(crate) fn send_ccs_and_switch(&mut self, keys: DirectionKeys) -> Result<(), Error> {
        self.write_records(ContentType::ChangeCipherSpec, &[1])?;
        self.write = Some(Protection::new(keys));
        self.write_seq = 0;
        Ok(())
    }

    /// Queues an alert.
    pub(crate) fn send_alert(&mut self, level: AlertLevel, desc: AlertDescription) {
        // An alert is two bytes; it cannot fail to frame. A sequence overflow is ignored here:
        // the alert is then simply not sent.
        let _ = self.write_records(ContentType::Alert, &[level.into(), desc.into()]);
    }

    /// Queues `data` as records of `typ`, fragmented to the plaintext limit and protected when
    /// write keys are active.
    pub(crate) fn write_records(&mut self, typ: ContentType, data: &[u8]) -> Result<(), Error> {
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
                p.seal_record(&mut self.tx, typ, version, self.write_seq, chunk);
                self.write_seq += 1;
            }
            None => plain_record(&mut self.tx, typ, version, chunk),
        }
        Ok(())
    }

    /// Bytes queued and not yet handed out.
    pub(crate) fn pending_tx(&self) -> usize {
        self.tx.len() - self.tx_pos
    }
}
