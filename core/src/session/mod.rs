//! [`Session`]: the sans-IO facade over the record layer and the handshake machines.
//!
//! # Driving contract
//!
//! * Inputs: [`Session::handle_input`] with bytes from the transport, [`Session::handle_timeout`]
//!   when the deadline from [`Output::Wait`] passes, [`Session::send`] / [`Session::close`] from
//!   the application, [`Session::provide_psk`] to answer [`Event::PskNeeded`],
//!   [`Session::peer_verified`] to answer [`Event::VerifyPeer`], and
//!   [`Session::handle_eof`] when the transport ends.
//! * Output: after **every** input call, drain [`Session::poll_output`] until it returns
//!   [`Output::Wait`]: write each `Transmit` to the transport, act on each `Event`.
//! * `handle_input` may take fewer bytes than given (it holds at most one record and stops while
//!   received application data waits to be polled). Drain `poll_output`, then call again with
//!   the rest.
//! * Every call takes `now`; the core never reads a clock or ambient randomness: a session's
//!   randomness comes from the 32-byte seed given at construction.
//! * Errors are sticky: after `Err`, drain `poll_output` once more (it carries the alert we
//!   send), then drop the session. Later calls return [`ApiMisuse::AfterFatal`].

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::ops::Range;

mod datagram;

pub use crate::common::Stats;

use crate::cert::{CertError, Credential, PeerCertificateInfo};
use crate::client::{self, ClientState};
use crate::common::{Common, Established, QueuedEvent, SessionInfo};
use crate::config::{ClientConfig, Limits, ServerConfig};
use crate::dtls::{RetransmitConfig, DEFAULT_MTU, MIN_MTU};
use crate::enums::{AlertDescription, AlertLevel, ContentType, HandshakeType};
use crate::error::{ApiMisuse, ConfigError, Error, InvalidMessage, PeerMisbehaved};
use crate::key_schedule::export;
use crate::messages::is_dns_name;
use crate::record::{Deframer, Protection, MAX_PLAINTEXT};
use crate::secret::Psk;
use crate::server::{self, ServerState};
use crate::suites::CipherSuite;
use crate::time::{Instant, Now};

/// The transport a session runs over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transport {
    /// TLS 1.2 over a reliable byte stream.
    Tls,
    /// DTLS 1.2 over datagrams of at most `mtu` bytes (record headers included).
    Dtls {
        /// Largest datagram we send.
        mtu: usize,
    },
}

impl Transport {
    /// DTLS with the default MTU, suited to IPv6 minimum-MTU paths.
    #[must_use]
    pub const fn dtls() -> Self {
        Self::Dtls { mtu: DEFAULT_MTU }
    }
}

/// Something for the application.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event<'b> {
    /// The server needs the key for `identity`: answer with [`Session::provide_psk`].
    PskNeeded {
        /// The client's PSK identity.
        identity: Vec<u8>,
        /// The SNI host name the client sent.
        server_name: Option<String>,
        /// The cipher suite the server chose (already sent in ServerHello): a key that depends
        /// on it, like a GBA NAF key (NAF_Id = FQDN || 01 00 01 || suite code, D10), is derived
        /// with it.
        suite: CipherSuite,
    },
    /// The handshake completed.
    Connected(SessionInfo),
    /// The configured `CertVerifier` deferred its decision on the peer's certificate or raw
    /// public key: decide, then answer with [`Session::peer_verified`]. The session takes no
    /// input meanwhile ([`Session::is_suspended`]).
    VerifyPeer {
        /// What the peer presented (its signatures are checked by the handshake afterwards).
        credential: Credential,
    },
    /// Application data from the peer (borrowed from the caller's buffer).
    AppData(&'b [u8]),
    /// The peer sent close_notify; ours is queued. No more data will come.
    PeerClosed,
}

/// What [`Session::poll_output`] has for the caller.
// `Event::Connected` carries the `SessionInfo` by value (with the peer's certificate
// information): an `Output` lives on the caller's stack for one poll and events are rare, so
// boxing would only add an allocation and break `Event::Connected(info)` matches.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output<'b> {
    /// Bytes to write to the transport (borrowed from the caller's buffer).
    Transmit(&'b [u8]),
    /// An event.
    Event(Event<'b>),
    /// The next datagram (DTLS) does not fit the caller's buffer: poll again with `needed` bytes.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
    },
    /// Nothing more now; call `handle_timeout` at the instant, if any.
    Wait(Option<Instant>),
}

enum Machine {
    Client(Arc<ClientConfig>, ClientState),
    Server(Arc<ServerConfig>, ServerState),
    /// Only while a transition runs, or after it failed.
    Poisoned,
}

impl Machine {
    fn established(&self) -> Option<&Established> {
        match self {
            Self::Client(_, ClientState::Connected(e))
            | Self::Server(_, ServerState::Connected(e)) => Some(e),
            _ => None,
        }
    }

    fn expects_ccs(&self) -> bool {
        matches!(
            self,
            Self::Client(_, ClientState::ExpectChangeCipherSpec(_))
                | Self::Server(_, ServerState::ExpectChangeCipherSpec(_))
        )
    }

    fn after_ccs(self) -> Self {
        match self {
            Self::Client(c, ClientState::ExpectChangeCipherSpec(e)) => {
                Self::Client(c, ClientState::ExpectFinished(e))
            }
            Self::Server(c, ServerState::ExpectChangeCipherSpec(e)) => {
                Self::Server(c, ServerState::ExpectFinished(e))
            }
            other => other,
        }
    }

    fn limits(&self) -> Limits {
        match self {
            Self::Client(c, _) => c.limits,
            Self::Server(c, _) => c.limits,
            Self::Poisoned => Limits::default(),
        }
    }

    fn is_connected(&self) -> bool {
        self.established().is_some()
    }

    /// Whether the machine waits for `Session::peer_verified` (never without `ecdhe`).
    fn awaits_peer(&self) -> bool {
        #[cfg(feature = "ecdhe")]
        return matches!(
            self,
            Self::Server(_, ServerState::AwaitingPeer(_))
                | Self::Client(_, ClientState::AwaitingPeer(_))
        );
        #[cfg(not(feature = "ecdhe"))]
        false
    }

    /// A server that has not yet processed a ClientHello.
    fn awaits_client_hello(&self) -> bool {
        matches!(self, Self::Server(_, ServerState::ExpectClientHello))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Closure {
    Open,
    /// We sent close_notify; the peer may still send.
    SentClose,
    /// The peer sent close_notify (ours is queued).
    PeerClosed,
}

fn new_common(
    transport: Transport,
    limits: &Limits,
    retransmit: RetransmitConfig,
    now: Now,
    rng_seed: [u8; 32],
) -> Result<Common, Error> {
    let dtls = match transport {
        Transport::Tls => None,
        Transport::Dtls { mtu } if mtu < MIN_MTU => return Err(ApiMisuse::MtuTooSmall.into()),
        Transport::Dtls { mtu } => Some((mtu, retransmit, limits)),
    };
    let mut cx = Common::new(rng_seed, now.mono, dtls);
    cx.unix = now.unix;
    Ok(cx)
}

/// A (D)TLS session, client or server. See the module documentation for the driving contract.
pub struct Session {
    machine: Machine,
    cx: Common,
    deframer: Deframer,
    /// Reassembly of handshake messages across records (bounded by `Limits`).
    hs_buf: Vec<u8>,
    /// Decrypted application data in the deframer, waiting for `poll_output`.
    rx_plain: Option<Range<usize>>,
    /// DTLS: the datagram being processed, opened in place.
    rx_dgram: Vec<u8>,
    /// DTLS: application data records in `rx_dgram`, waiting for `poll_output`.
    rx_ranges: VecDeque<Range<usize>>,
    /// DTLS: the rest of a datagram that arrived while the session was suspended.
    stash: Vec<u8>,
    closure: Closure,
    failed: Option<Error>,
}

impl core::fmt::Debug for Session {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Session")
            .field("connected", &self.is_connected())
            .field("closure", &self.closure)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A client session; its ClientHello is queued at once. `server_name` is sent as SNI (it must
    /// be a DNS host name, not an IP literal). `rng_seed` must come from a CSPRNG.
    pub fn client(
        config: Arc<ClientConfig>,
        transport: Transport,
        server_name: Option<&str>,
        now: Now,
        rng_seed: [u8; 32],
    ) -> Result<Self, Error> {
        if let Some(n) = server_name {
            if !is_dns_name(n) {
                return Err(ConfigError::BadServerName.into());
            }
        }
        let mut cx = new_common(transport, &config.limits, config.retransmit, now, rng_seed)?;
        let state = client::start(&mut cx, &config, server_name)?;
        Ok(Self::with(Machine::Client(config, state), cx))
    }

    /// A server session waiting for a ClientHello. `rng_seed` must come from a CSPRNG.
    ///
    /// Over DTLS, run a [`crate::dtls::CookieListener`] first and create the session only for a
    /// datagram it accepts; the session itself sends no HelloVerifyRequest.
    pub fn server(
        config: Arc<ServerConfig>,
        transport: Transport,
        now: Now,
        rng_seed: [u8; 32],
    ) -> Result<Self, Error> {
        let cx = new_common(transport, &config.limits, config.retransmit, now, rng_seed)?;
        Ok(Self::with(
            Machine::Server(config, ServerState::ExpectClientHello),
            cx,
        ))
    }

    fn with(machine: Machine, cx: Common) -> Self {
        Self {
            machine,
            cx,
            deframer: Deframer::default(),
            hs_buf: Vec::new(),
            rx_plain: None,
            rx_dgram: Vec::new(),
            rx_ranges: VecDeque::new(),
            stash: Vec::new(),
            closure: Closure::Open,
            failed: None,
        }
    }

    /// Counters of dropped records and retransmissions (DTLS).
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.cx.dtls.as_ref().map(|d| d.stats).unwrap_or_default()
    }

    /// The largest application payload one `send` puts in a DTLS record (TLS: 16 384).
    #[must_use]
    pub fn max_payload(&self) -> usize {
        if self.cx.dtls.is_some() {
            self.cx.dtls_max_payload()
        } else {
            MAX_PLAINTEXT
        }
    }

    /// Whether the session waits for the caller's decision (`provide_psk`, `peer_verified`)
    /// and takes no input.
    #[must_use]
    pub fn is_suspended(&self) -> bool {
        matches!(
            self.machine,
            Machine::Server(_, ServerState::AwaitingPsk { .. })
        ) || self.machine.awaits_peer()
    }

    fn set_now(&mut self, now: Now) {
        self.cx.now = now.mono;
        self.cx.unix = now.unix;
    }

    /// Whether the handshake has completed.
    #[must_use]
    pub fn is_connected(&self) -> bool {
        self.machine.established().is_some()
    }

    /// Whether the session may still carry data in either direction.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.failed.is_some() || self.closure == Closure::PeerClosed
    }

    /// What the handshake established, once connected.
    #[must_use]
    pub fn info(&self) -> Option<&SessionInfo> {
        self.machine.established().map(|e| &e.info)
    }

    /// The error that ended the session, if one did.
    #[must_use]
    pub fn error(&self) -> Option<&Error> {
        self.failed.as_ref()
    }

    fn check_usable(&self) -> Result<(), Error> {
        if self.failed.is_some() {
            return Err(ApiMisuse::AfterFatal.into());
        }
        Ok(())
    }

    /// Records `e` as fatal, queues its alert and returns it.
    fn fail(&mut self, e: Error) -> Error {
        if let Some(alert) = e.alert() {
            let level = if alert == AlertDescription::CloseNotify {
                AlertLevel::Warning
            } else {
                AlertLevel::Fatal
            };
            self.cx.send_alert(level, alert);
        }
        self.rx_plain = None;
        self.rx_ranges.clear();
        self.failed = Some(e.clone());
        self.machine = Machine::Poisoned;
        e
    }

    /// Feeds bytes received from the transport; returns how many were taken. See the driving contract.
    pub fn handle_input(&mut self, now: Now, input: &[u8]) -> Result<usize, Error> {
        self.check_usable()?;
        self.set_now(now);
        if self.cx.dtls.is_some() {
            return self.handle_datagram(input);
        }
        if self.closure == Closure::PeerClosed {
            // RFC 5246 7.2.1: data after close_notify is ignored.
            return Ok(input.len());
        }
        let mut used = 0;
        while self.rx_plain.is_none() && !self.is_suspended() {
            let protected = self.cx.read.is_some();
            let (n, whole) = match self.deframer.feed(&input[used..], protected) {
                Ok(r) => r,
                Err(e) => return Err(self.fail(e)),
            };
            used += n;
            if !whole {
                break;
            }
            if let Err(e) = self.process_record() {
                return Err(self.fail(e));
            }
            if self.closure == Closure::PeerClosed {
                return Ok(input.len());
            }
        }
        Ok(used)
    }

    fn process_record(&mut self) -> Result<(), Error> {
        let Some((header, fragment)) = self.deframer.record() else {
            return Ok(());
        };
        let range = match &self.cx.read {
            Some(p) => {
                let seq = self.cx.read_seq;
                let r = p.open_record(fragment, header.typ, header.version, seq)?;
                self.cx.read_seq = seq.checked_add(1).ok_or(Error::SequenceExhausted)?;
                r
            }
            None => 0..fragment.len(),
        };
        let fragment = &self.deframer.fragment()[range.clone()];
        match header.typ {
            ContentType::ApplicationData => {
                if !self.is_connected() {
                    return Err(PeerMisbehaved::UnexpectedMessage(
                        "application data before Finished",
                    )
                    .into());
                }
                if !fragment.is_empty() {
                    self.rx_plain = Some(range);
                    return Ok(());
                }
            }
            ContentType::Handshake => {
                if fragment.is_empty() {
                    return Err(InvalidMessage::EmptyFragment.into());
                }
                let frag = fragment.to_vec();
                self.handle_handshake_fragment(&frag)?;
                if self.hs_buf.is_empty() && self.is_connected() {
                    // The handshake is over: its reassembly buffer is not kept.
                    self.hs_buf = Vec::new();
                }
            }
            ContentType::ChangeCipherSpec => {
                if fragment != [1] {
                    return Err(InvalidMessage::InvalidValue("ChangeCipherSpec").into());
                }
                if !self.hs_buf.is_empty() {
                    return Err(PeerMisbehaved::MessageInterleavedWithKeyChange.into());
                }
                if !self.machine.expects_ccs() {
                    return Err(PeerMisbehaved::UnexpectedMessage("ChangeCipherSpec").into());
                }
                let keys = self
                    .cx
                    .pending_read
                    .take()
                    .ok_or(PeerMisbehaved::UnexpectedMessage("ChangeCipherSpec"))?;
                self.cx.read = Some(Protection::new(keys));
                self.cx.read_seq = 0;
                self.machine = core::mem::replace(&mut self.machine, Machine::Poisoned).after_ccs();
            }
            ContentType::Alert => {
                let [level, desc] = fragment else {
                    return Err(InvalidMessage::InvalidValue("alert length").into());
                };
                let (level, desc) = (AlertLevel::from(*level), AlertDescription::from(*desc));
                if desc == AlertDescription::CloseNotify {
                    if self.closure == Closure::Open {
                        self.cx
                            .send_alert(AlertLevel::Warning, AlertDescription::CloseNotify);
                    }
                    self.closure = Closure::PeerClosed;
                    self.cx.events.push_back(QueuedEvent::PeerClosed);
                } else if level != AlertLevel::Warning || !self.is_connected() {
                    // Fatal alerts end the session; so does any alert during the handshake.
                    return Err(Error::AlertReceived(desc));
                }
                // Warnings after the handshake (no_renegotiation, user_canceled) are ignored.
            }
            ContentType::Unknown(_) => {
                return Err(PeerMisbehaved::UnexpectedMessage("record type").into())
            }
        }
        self.deframer.clear();
        Ok(())
    }

    fn handle_handshake_fragment(&mut self, frag: &[u8]) -> Result<(), Error> {
        self.hs_buf.extend_from_slice(frag);
        self.process_hs_buf()
    }

    /// TLS: hands every whole message in `hs_buf` to the machine, stopping while suspended
    /// (the rest waits there until the caller answers).
    fn process_hs_buf(&mut self) -> Result<(), Error> {
        let max = self.machine.limits().max_handshake_message;
        while !self.is_suspended() {
            if self.hs_buf.len() < 4 {
                return Ok(());
            }
            let len = usize::from(self.hs_buf[1]) << 16
                | usize::from(self.hs_buf[2]) << 8
                | usize::from(self.hs_buf[3]);
            if len > max {
                return Err(InvalidMessage::HandshakeMessageTooLarge.into());
            }
            if self.hs_buf.len() < 4 + len {
                return Ok(());
            }
            let msg: Vec<u8> = self.hs_buf.drain(..4 + len).collect();
            self.handle_handshake_message(HandshakeType::from(msg[0]), &msg, 4)?;
        }
        Ok(())
    }

    /// Handles one whole handshake message; `raw` is what the transcript hashes, its header
    /// `header_len` bytes long (4 for TLS, 12 for DTLS).
    fn handle_handshake_message(
        &mut self,
        typ: HandshakeType,
        raw: &[u8],
        header_len: usize,
    ) -> Result<(), Error> {
        let body = &raw[header_len..];
        if self.is_connected() {
            // Renegotiation is refused (RFC 5746 leaves it optional; RFC 5246 7.2.2 warning).
            let ask = matches!(
                (&self.machine, typ),
                (Machine::Client(..), HandshakeType::HelloRequest)
                    | (Machine::Server(..), HandshakeType::ClientHello)
            );
            if ask {
                self.cx
                    .send_alert(AlertLevel::Warning, AlertDescription::NoRenegotiation);
                return Ok(());
            }
            return Err(
                PeerMisbehaved::UnexpectedMessage("handshake message after Finished").into(),
            );
        }
        if typ == HandshakeType::HelloRequest {
            // RFC 5246 7.4.1.1: ignored while a handshake is under way; not hashed.
            return Ok(());
        }
        if typ == HandshakeType::Finished && self.cx.read.is_none() {
            return Err(
                PeerMisbehaved::UnexpectedMessage("Finished before ChangeCipherSpec").into(),
            );
        }
        self.machine = match core::mem::replace(&mut self.machine, Machine::Poisoned) {
            Machine::Client(cfg, st) => {
                let st = client::handle(st, &mut self.cx, &cfg, typ, body, raw)?;
                Machine::Client(cfg, st)
            }
            Machine::Server(cfg, st) => {
                let st = server::handle(st, &mut self.cx, &cfg, typ, body, raw)?;
                Machine::Server(cfg, st)
            }
            Machine::Poisoned => return Err(ApiMisuse::AfterFatal.into()),
        };
        Ok(())
    }

    /// Answers [`Event::PskNeeded`]: the key, or `None` if the identity is unknown.
    pub fn provide_psk(&mut self, now: Now, psk: Option<Psk>) -> Result<(), Error> {
        self.check_usable()?;
        let Machine::Server(_, ServerState::AwaitingPsk { .. }) = &self.machine else {
            return Err(ApiMisuse::NoPskRequested.into());
        };
        let Machine::Server(cfg, st) = core::mem::replace(&mut self.machine, Machine::Poisoned)
        else {
            unreachable!("checked just above")
        };
        self.set_now(now);
        match server::resume_with_psk(st, &mut self.cx, &cfg, psk) {
            Ok(st) => self.machine = Machine::Server(cfg, st),
            Err(e) => return Err(self.fail(e)),
        }
        self.resume()
    }

    /// Continues with the input that waited while the session was suspended.
    fn resume(&mut self) -> Result<(), Error> {
        if self.cx.dtls.is_some() {
            return self.resume_datagram();
        }
        self.process_hs_buf().map_err(|e| self.fail(e))
    }

    /// Answers [`Event::VerifyPeer`]: `Ok(info)` trusts the peer's credential (the info is
    /// reported in [`SessionInfo::peer_certificate`]); `Err(e)` refuses it, ending the
    /// handshake with `e`'s alert ([`Error::Certificate`]).
    pub fn peer_verified(
        &mut self,
        now: Now,
        result: Result<PeerCertificateInfo, CertError>,
    ) -> Result<(), Error> {
        self.check_usable()?;
        if !self.machine.awaits_peer() {
            return Err(ApiMisuse::NoVerificationRequested.into());
        }
        self.set_now(now);
        let resumed = match core::mem::replace(&mut self.machine, Machine::Poisoned) {
            Machine::Client(cfg, st) => {
                client::resume_verified(st, result).map(|st| Machine::Client(cfg, st))
            }
            Machine::Server(cfg, st) => {
                server::resume_verified(st, result).map(|st| Machine::Server(cfg, st))
            }
            Machine::Poisoned => Err(ApiMisuse::AfterFatal.into()),
        };
        match resumed {
            Ok(m) => self.machine = m,
            Err(e) => return Err(self.fail(e)),
        }
        self.resume()
    }

    /// Timers (DTLS retransmission). Idempotent; safe to call early.
    pub fn handle_timeout(&mut self, now: Now) -> Result<(), Error> {
        self.check_usable()?;
        self.set_now(now);
        let connected = self.is_connected();
        let Some(h) = self.cx.dtls.as_mut().and_then(|d| d.handshake.as_mut()) else {
            // TLS, or the DTLS handshake is over: no timers.
            return Ok(());
        };
        if !connected && now.mono >= h.deadline {
            return Err(self.fail(Error::HandshakeTimeout));
        }
        match h.timer.fire(now.mono, &h.retransmit) {
            None => Ok(()),
            Some(true) => self.cx.retransmit_flight().map_err(|e| self.fail(e)),
            Some(false) => Err(self.fail(Error::HandshakeTimeout)),
        }
    }

    /// Tells the session the transport has ended. `Ok` if the peer had closed properly.
    pub fn handle_eof(&mut self, _now: Now) -> Result<(), Error> {
        self.check_usable()?;
        if self.closure == Closure::PeerClosed {
            return Ok(());
        }
        let e = Error::UnexpectedEof;
        self.failed = Some(e.clone());
        Err(e)
    }

    /// Queues application data; returns how much was taken (less than all when the output queue
    /// is full: drain `poll_output` and retry).
    pub fn send(&mut self, now: Now, data: &[u8]) -> Result<usize, Error> {
        self.check_usable()?;
        if self.closure != Closure::Open {
            return Err(ApiMisuse::Closed.into());
        }
        if !self.is_connected() {
            return Err(ApiMisuse::NotConnected.into());
        }
        self.set_now(now);
        if self.cx.dtls.is_some() {
            if self.cx.pending_tx() >= self.machine.limits().max_buffered_output || data.is_empty()
            {
                return Ok(0);
            }
            let n = data.len().min(self.cx.dtls_max_payload());
            if let Err(e) = self
                .cx
                .write_records(ContentType::ApplicationData, &data[..n])
            {
                return Err(self.fail(e));
            }
            return Ok(n);
        }
        let room = self
            .machine
            .limits()
            .max_buffered_output
            .saturating_sub(self.cx.pending_tx());
        // With nothing queued, one record always fits, so a tiny limit still makes progress.
        let floor = if self.cx.pending_tx() == 0 {
            MAX_PLAINTEXT
        } else {
            0
        };
        let taken = data.len().min(room.max(floor));
        if let Err(e) = self
            .cx
            .write_records(ContentType::ApplicationData, &data[..taken])
        {
            return Err(self.fail(e));
        }
        Ok(taken)
    }

    /// Sends close_notify. The session still delivers what the peer sends until it closes too.
    pub fn close(&mut self, _now: Now) -> Result<(), Error> {
        self.check_usable()?;
        if self.closure == Closure::Open {
            self.cx
                .send_alert(AlertLevel::Warning, AlertDescription::CloseNotify);
            self.closure = Closure::SentClose;
        }
        Ok(())
    }

    /// RFC 5705 keying material: fills `out` from `label` and an optional `context` (absent and
    /// empty differ). Needs an established session.
    pub fn export_keying_material(
        &self,
        out: &mut [u8],
        label: &[u8],
        context: Option<&[u8]>,
    ) -> Result<(), Error> {
        let est = self.machine.established().ok_or(ApiMisuse::NotConnected)?;
        export(
            &est.master_secret,
            &est.client_random,
            &est.server_random,
            label,
            context,
            out,
        )?;
        Ok(())
    }

    fn pop_event(&mut self) -> Option<Event<'static>> {
        let ev = self.cx.events.pop_front()?;
        if self.cx.events.is_empty() {
            // Events are rare (connected, closed): do not keep the queue's memory.
            self.cx.events = VecDeque::new();
        }
        Some(match ev {
            QueuedEvent::PskNeeded {
                identity,
                server_name,
                suite,
            } => Event::PskNeeded {
                identity,
                server_name,
                suite,
            },
            QueuedEvent::Connected(info) => Event::Connected(info),
            #[cfg(feature = "ecdhe")]
            QueuedEvent::VerifyPeer(credential) => Event::VerifyPeer { credential },
            QueuedEvent::PeerClosed => Event::PeerClosed,
        })
    }

    /// The next thing for the caller; drain until [`Output::Wait`].
    pub fn poll_output<'b>(&mut self, buf: &'b mut [u8]) -> Output<'b> {
        if self.cx.dtls.is_some() {
            return self.poll_datagram(buf);
        }
        if self.cx.pending_tx() > 0 && !buf.is_empty() {
            let n = self.cx.pending_tx().min(buf.len());
            buf[..n].copy_from_slice(&self.cx.tx[self.cx.tx_pos..self.cx.tx_pos + n]);
            self.cx.tx_pos += n;
            if self.cx.tx_pos == self.cx.tx.len() {
                self.cx.tx.clear();
                self.cx.tx_pos = 0;
            }
            return Output::Transmit(&buf[..n]);
        }
        if self.failed.is_some() {
            return Output::Wait(None);
        }
        if let Some(ev) = self.pop_event() {
            return Output::Event(ev);
        }
        if let Some(r) = self.rx_plain.clone() {
            if !buf.is_empty() {
                let src = &self.deframer.fragment()[r.clone()];
                let n = src.len().min(buf.len());
                buf[..n].copy_from_slice(&src[..n]);
                if n == src.len() {
                    self.rx_plain = None;
                    self.deframer.clear();
                } else {
                    self.rx_plain = Some(r.start + n..r.end);
                }
                return Output::Event(Event::AppData(&buf[..n]));
            }
        }
        Output::Wait(None)
    }
}
