//! DTLS 1.2 pieces (RFC 6347): record headers with epoch and sequence number, the anti-replay
//! window, handshake fragment headers and reassembly, the retransmission timer and the
//! stateless HelloVerifyRequest cookie listener.
//!
//! The handshake logic itself is shared with TLS (`client`, `server`); only framing, flights and
//! timers live here.

use alloc::vec::Vec;
use core::time::Duration;

use crate::codec::{put_u16, put_u24, Reader};
use crate::crypto::prf::hmac_sha256;
use crate::enums::{ContentType, HandshakeType, ProtocolVersion};
use crate::error::InvalidMessage;
use crate::messages::HelloVerifyRequest;
use crate::record::{plain_record, Wire, DTLS_HEADER_LEN, MAX_CIPHERTEXT};
use crate::secret::ct_eq;
use crate::time::Instant;

/// Bytes of a DTLS handshake message header.
pub const HS_HEADER_LEN: usize = 12;
/// The default datagram size: the IPv6 minimum MTU (1280) less IPv6 (40) and UDP (8) headers.
pub const DEFAULT_MTU: usize = 1232;
/// The smallest MTU accepted: a record header, CCM overhead, a handshake header and one byte.
pub const MIN_MTU: usize = 64;

/// A parsed DTLS record header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DtlsRecordHeader {
    /// Content type.
    pub typ: ContentType,
    /// Record version.
    pub version: u16,
    /// Epoch.
    pub epoch: u16,
    /// 48-bit sequence number.
    pub seq: u64,
    /// Fragment length.
    pub len: usize,
}

impl DtlsRecordHeader {
    /// The 64-bit value epoch || seq used in the nonce and AAD.
    #[must_use]
    pub fn full_seq(&self) -> u64 {
        (u64::from(self.epoch) << 48) | self.seq
    }

    /// Splits the next record off `datagram`: its header and fragment, and the rest.
    pub fn split(datagram: &[u8]) -> Result<(Self, core::ops::Range<usize>), InvalidMessage> {
        let mut r = Reader::new(datagram);
        let typ = ContentType::from(r.u8()?);
        let version = r.u16()?;
        let epoch = r.u16()?;
        let seq = r.u48()?;
        let len = usize::from(r.u16()?);
        if let ContentType::Unknown(_) = typ {
            return Err(InvalidMessage::InvalidValue("record content type"));
        }
        if version >> 8 != 0xfe {
            return Err(InvalidMessage::InvalidValue("record version"));
        }
        if len > MAX_CIPHERTEXT {
            return Err(InvalidMessage::TooLong);
        }
        r.take(len)?;
        Ok((
            Self {
                typ,
                version,
                epoch,
                seq,
                len,
            },
            DTLS_HEADER_LEN..DTLS_HEADER_LEN + len,
        ))
    }
}

/// A sliding anti-replay window of 64 records (RFC 6347 4.1.2.6).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplayWindow {
    /// Highest sequence number accepted, plus one (0: none yet).
    top: u64,
    /// Bit i set: `top - 1 - i` was seen.
    bits: u64,
}

impl ReplayWindow {
    /// Whether `seq` is new and inside the window (check before authenticating, mark after).
    #[must_use]
    pub fn is_fresh(&self, seq: u64) -> bool {
        if seq >= self.top {
            return true;
        }
        let age = self.top - 1 - seq;
        age < 64 && self.bits & (1 << age) == 0
    }

    /// Records `seq` as seen (only after the record authenticated).
    pub fn mark(&mut self, seq: u64) {
        if seq >= self.top {
            let shift = seq + 1 - self.top;
            self.bits = if shift >= 64 { 0 } else { self.bits << shift };
            self.bits |= 1;
            self.top = seq + 1;
        } else {
            let age = self.top - 1 - seq;
            if age < 64 {
                self.bits |= 1 << age;
            }
        }
    }
}

/// A DTLS handshake fragment header (RFC 6347 4.2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragmentHeader {
    /// msg_type.
    pub typ: HandshakeType,
    /// Length of the whole message body.
    pub length: usize,
    /// message_seq.
    pub message_seq: u16,
    /// fragment_offset.
    pub offset: usize,
    /// fragment_length.
    pub fragment_length: usize,
}

impl FragmentHeader {
    /// Reads a header and its fragment from `r`.
    pub fn read<'a>(r: &mut Reader<'a>) -> Result<(Self, &'a [u8]), InvalidMessage> {
        let typ = HandshakeType::from(r.u8()?);
        let length = r.u24()? as usize;
        let message_seq = r.u16()?;
        let offset = r.u24()? as usize;
        let fragment_length = r.u24()? as usize;
        if offset + fragment_length > length {
            return Err(InvalidMessage::InvalidValue("fragment beyond message"));
        }
        let body = r.take(fragment_length)?;
        Ok((
            Self {
                typ,
                length,
                message_seq,
                offset,
                fragment_length,
            },
            body,
        ))
    }

    /// Appends the 12-byte header.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.push(self.typ.into());
        put_u24(out, self.length as u32);
        put_u16(out, self.message_seq);
        put_u24(out, self.offset as u32);
        put_u24(out, self.fragment_length as u32);
    }

    /// The header of the whole message as one fragment: what the transcript hashes (4.2.6).
    #[must_use]
    pub fn unfragmented(typ: HandshakeType, length: usize, message_seq: u16) -> Self {
        Self {
            typ,
            length,
            message_seq,
            offset: 0,
            fragment_length: length,
        }
    }
}

/// One message being reassembled.
#[derive(Debug)]
struct Partial {
    typ: HandshakeType,
    body: Vec<u8>,
    /// Received byte ranges, sorted and merged: for consecutive ranges `(a, b)`, `(c, d)`,
    /// `b < c` (ranges that touch or overlap are one).
    have: Vec<(usize, usize)>,
}

impl Partial {
    fn add(&mut self, offset: usize, data: &[u8]) {
        self.body[offset..offset + data.len()].copy_from_slice(data);
        let mut r = (offset, offset + data.len());
        let mut merged = Vec::with_capacity(self.have.len() + 1);
        for &(a, b) in &self.have {
            if b < r.0 || a > r.1 {
                merged.push((a, b));
            } else {
                r = (r.0.min(a), r.1.max(b));
            }
        }
        // `merged` keeps the order of `have`, and every range left in it is apart from `r`
        // (it ends before `r` starts or starts after `r` ends), so `r` goes before the first
        // one starting after it: the order a sort would give, without linking a sort.
        let at = merged
            .iter()
            .position(|&(a, _)| a > r.0)
            .unwrap_or(merged.len());
        merged.insert(at, r);
        self.have = merged;
    }

    fn complete(&self) -> bool {
        self.have.first() == Some(&(0, self.body.len())) || self.body.is_empty()
    }
}

/// What [`Reassembler::insert`] did with a fragment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inserted {
    /// Stored (or completed a message).
    Stored,
    /// A message we already processed: the peer is retransmitting its previous flight.
    Old,
    /// Dropped: too far ahead, inconsistent, or over the memory bound.
    Dropped,
}

/// Reassembles handshake messages from fragments, in message_seq order, within memory bounds.
#[derive(Debug)]
pub struct Reassembler {
    next: u16,
    /// Messages being assembled, by message_seq (at most `window` of them).
    pending: Vec<(u16, Partial)>,
    max_message: usize,
    max_total: usize,
    window: u16,
}

impl Reassembler {
    /// A reassembler expecting `next` first; messages above `max_message` bytes are refused,
    /// at most `max_total` bytes are buffered, and at most `window` messages ahead are kept.
    #[must_use]
    pub fn new(next: u16, max_message: usize, max_total: usize, window: u16) -> Self {
        Self {
            next,
            pending: Vec::new(),
            max_message,
            max_total,
            window,
        }
    }

    /// The message_seq expected next.
    #[must_use]
    pub fn next(&self) -> u16 {
        self.next
    }

    /// Sets the next expected message_seq (a server accepting a ClientHello after a cookie
    /// exchange it did not keep state for).
    pub fn set_next(&mut self, next: u16) {
        self.next = next;
        self.pending = Vec::new();
    }

    fn buffered(&self) -> usize {
        self.pending.iter().map(|(_, p)| p.body.len()).sum()
    }

    /// Adds a fragment. Errors are fatal (a message over the bound); drops are silent.
    pub fn insert(&mut self, h: &FragmentHeader, data: &[u8]) -> Result<Inserted, InvalidMessage> {
        if h.message_seq < self.next {
            return Ok(Inserted::Old);
        }
        if h.message_seq - self.next >= self.window {
            return Ok(Inserted::Dropped);
        }
        if h.length > self.max_message {
            return Err(InvalidMessage::HandshakeMessageTooLarge);
        }
        if h.offset
            .checked_add(data.len())
            .is_none_or(|end| end > h.length)
        {
            // Only a hand-made header can disagree with its data (`FragmentHeader::read`
            // checks), but the reassembler is public: refuse rather than index out of bounds.
            return Ok(Inserted::Dropped);
        }
        if let Some((_, p)) = self.pending.iter_mut().find(|(s, _)| *s == h.message_seq) {
            if p.typ != h.typ || p.body.len() != h.length {
                return Ok(Inserted::Dropped);
            }
            p.add(h.offset, data);
            return Ok(Inserted::Stored);
        }
        if self.buffered() + h.length > self.max_total {
            return Ok(Inserted::Dropped);
        }
        let mut p = Partial {
            typ: h.typ,
            body: alloc::vec![0u8; h.length],
            have: Vec::new(),
        };
        p.add(h.offset, data);
        self.pending.push((h.message_seq, p));
        Ok(Inserted::Stored)
    }

    /// The next complete message in order, as (type, message_seq, body); advances.
    pub fn pop(&mut self) -> Option<(HandshakeType, u16, Vec<u8>)> {
        let seq = self.next;
        let i = self
            .pending
            .iter()
            .position(|(s, p)| *s == seq && p.complete())?;
        let (_, p) = self.pending.swap_remove(i);
        if self.pending.is_empty() {
            // Free the slots: an established session keeps no reassembly memory.
            self.pending = Vec::new();
        }
        self.next = self.next.wrapping_add(1);
        Some((p.typ, seq, p.body))
    }
}

/// Retransmission timer settings (RFC 6347 4.2.4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetransmitConfig {
    /// First timeout.
    pub initial: Duration,
    /// Ceiling for the doubling timeout.
    pub max: Duration,
    /// Retransmissions of one flight before the handshake fails with a timeout.
    pub max_retransmissions: u32,
    /// The longest a whole handshake may take. DTLS drops what it cannot authenticate, so a
    /// wrong key shows only as silence: this bounds how long a caller waits for it.
    pub handshake_timeout: Duration,
}

impl Default for RetransmitConfig {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            max_retransmissions: 16,
            handshake_timeout: Duration::from_secs(60),
        }
    }
}

/// The retransmission timer of the flight in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timer {
    /// No flight waits for an answer.
    Disarmed,
    /// The flight is retransmitted at `deadline` unless answered.
    Armed {
        /// When it fires.
        deadline: Instant,
        /// The current timeout.
        timeout: Duration,
        /// Retransmissions so far.
        count: u32,
    },
}

impl Timer {
    /// Armed with the initial timeout from `now`.
    #[must_use]
    pub fn start(now: Instant, cfg: &RetransmitConfig) -> Self {
        Self::Armed {
            deadline: now.saturating_add(cfg.initial),
            timeout: cfg.initial,
            count: 0,
        }
    }

    /// The deadline, if armed.
    #[must_use]
    pub fn deadline(&self) -> Option<Instant> {
        match self {
            Self::Disarmed => None,
            Self::Armed { deadline, .. } => Some(*deadline),
        }
    }

    /// Fires if due: `Some(true)` retransmit now (timer doubled), `Some(false)` give up,
    /// `None` not due.
    pub fn fire(&mut self, now: Instant, cfg: &RetransmitConfig) -> Option<bool> {
        let Self::Armed {
            deadline,
            timeout,
            count,
        } = *self
        else {
            return None;
        };
        if now < deadline {
            return None;
        }
        if count >= cfg.max_retransmissions {
            *self = Self::Disarmed;
            return Some(false);
        }
        let timeout = (timeout * 2).min(cfg.max);
        *self = Self::Armed {
            deadline: now.saturating_add(timeout),
            timeout,
            count: count + 1,
        };
        Some(true)
    }
}

/// The client random of `datagram` if its first record is, at epoch 0, a handshake record
/// starting with the first fragment of a ClientHello; `None` for anything else (short or
/// malformed input included).
///
/// For a server that demultiplexes peers by address: a ClientHello with another random than the
/// one that opened a session is a new association from the same address (RFC 6347 4.2.8, e.g.
/// a rebooted device on its fixed port), to be put through the cookie exchange; the same random
/// is a retransmission or replay of the session's own.
#[must_use]
pub fn client_hello_random(datagram: &[u8]) -> Option<[u8; 32]> {
    let (h, range) = DtlsRecordHeader::split(datagram).ok()?;
    if h.typ != ContentType::Handshake || h.epoch != 0 {
        return None;
    }
    let mut r = Reader::new(datagram.get(range)?);
    let (fh, body) = FragmentHeader::read(&mut r).ok()?;
    if fh.typ != HandshakeType::ClientHello || fh.offset != 0 {
        return None;
    }
    // client_version (2 bytes), then the random.
    body.get(2..34)?.try_into().ok()
}

/// What the cookie listener decided about a datagram from a peer without a session.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ListenerDecision {
    /// Send this HelloVerifyRequest datagram back; keep no state.
    SendHelloVerify(Vec<u8>),
    /// The cookie is valid: create a server `Session` and feed it this datagram.
    Accept,
    /// Not a ClientHello we answer: ignore it.
    Drop,
}

/// The stateless HelloVerifyRequest exchange (RFC 6347 4.2.1), run before any per-peer state
/// exists. The cookie is HMAC-SHA-256 under a secret the caller rotates, over the peer's
/// transport address (as bytes the caller chooses) and the ClientHello's parameters.
pub struct CookieListener {
    current: [u8; 32],
    previous: Option<[u8; 32]>,
}

impl core::fmt::Debug for CookieListener {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("CookieListener(<redacted>)")
    }
}

impl Drop for CookieListener {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.current.zeroize();
        if let Some(p) = self.previous.as_mut() {
            p.zeroize();
        }
    }
}

/// Bytes of the cookies we issue (a truncated HMAC-SHA-256: enough to prove return routability).
pub const COOKIE_LEN: usize = 16;

impl CookieListener {
    /// A listener with a random `secret` (from a CSPRNG).
    #[must_use]
    pub fn new(secret: [u8; 32]) -> Self {
        Self {
            current: secret,
            previous: None,
        }
    }

    /// Replaces the secret; cookies made with the previous one stay valid until the next rotation.
    pub fn rotate(&mut self, secret: [u8; 32]) {
        self.previous = Some(core::mem::replace(&mut self.current, secret));
    }

    fn cookie(secret: &[u8; 32], peer: &[u8], hello: &HelloPrefix<'_>) -> [u8; COOKIE_LEN] {
        let plen = (peer.len() as u64).to_be_bytes();
        let mac = hmac_sha256(
            secret,
            &[
                b"m2msec dtls cookie",
                &plen,
                peer,
                &hello.version.to_be_bytes(),
                hello.random,
                hello.session_id,
            ],
        );
        let mut c = [0u8; COOKIE_LEN];
        c.copy_from_slice(&mac[..COOKIE_LEN]);
        c
    }

    /// Decides about a datagram from `peer` (its transport address, e.g. IP and port bytes).
    /// Takes `&self`: it keeps no state per peer.
    ///
    /// Only the first fragment of the ClientHello is needed: the cookie covers the peer address,
    /// client_version, random and session_id, all of which precede it, so a ClientHello
    /// fragmented by a small MTU still gets through as long as its first fragment holds the cookie.
    #[must_use]
    pub fn handle_datagram(&self, peer: &[u8], datagram: &[u8]) -> ListenerDecision {
        let Ok((h, range)) = DtlsRecordHeader::split(datagram) else {
            return ListenerDecision::Drop;
        };
        if h.typ != ContentType::Handshake || h.epoch != 0 {
            return ListenerDecision::Drop;
        }
        let mut r = Reader::new(&datagram[range]);
        let Ok((fh, body)) = FragmentHeader::read(&mut r) else {
            return ListenerDecision::Drop;
        };
        if fh.typ != HandshakeType::ClientHello || fh.offset != 0 {
            return ListenerDecision::Drop;
        }
        let Ok(hello) = HelloPrefix::read(body) else {
            return ListenerDecision::Drop;
        };
        if !hello.cookie.is_empty() {
            let ok = ct_eq(hello.cookie, &Self::cookie(&self.current, peer, &hello))
                || self
                    .previous
                    .is_some_and(|p| ct_eq(hello.cookie, &Self::cookie(&p, peer, &hello)));
            return if ok {
                ListenerDecision::Accept
            } else {
                ListenerDecision::Drop
            };
        }
        let c = Self::cookie(&self.current, peer, &hello);
        let mut body = Vec::new();
        if (HelloVerifyRequest {
            version: ProtocolVersion::DTLS10,
            cookie: &c,
        })
        .encode(&mut body)
        .is_err()
        {
            return ListenerDecision::Drop;
        }
        let mut msg = Vec::new();
        FragmentHeader::unfragmented(HandshakeType::HelloVerifyRequest, body.len(), 0)
            .write(&mut msg);
        msg.extend_from_slice(&body);
        let mut out = Vec::new();
        // RFC 6347 4.2.1: the HelloVerifyRequest reuses the ClientHello's record sequence number.
        plain_record(
            &mut out,
            Wire::Dtls,
            ContentType::Handshake,
            ProtocolVersion::DTLS10.0,
            h.seq,
            &msg,
        );
        ListenerDecision::SendHelloVerify(out)
    }
}

/// The fields of a DTLS ClientHello up to and including the cookie.
struct HelloPrefix<'a> {
    version: u16,
    random: &'a [u8],
    session_id: &'a [u8],
    cookie: &'a [u8],
}

impl<'a> HelloPrefix<'a> {
    fn read(body: &'a [u8]) -> Result<Self, InvalidMessage> {
        let mut r = Reader::new(body);
        let version = r.u16()?;
        let random = r.take(32)?;
        let session_id = r.vec8()?;
        let cookie = r.vec8()?;
        if version >> 8 != 0xfe || session_id.len() > 32 {
            return Err(InvalidMessage::InvalidValue("ClientHello"));
        }
        Ok(Self {
            version,
            random,
            session_id,
            cookie,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_window() {
        let mut w = ReplayWindow::default();
        assert!(w.is_fresh(0));
        w.mark(0);
        assert!(!w.is_fresh(0));
        w.mark(5);
        assert!(w.is_fresh(3) && !w.is_fresh(5));
        w.mark(3);
        assert!(!w.is_fresh(3));
        w.mark(200);
        assert!(!w.is_fresh(100), "older than the window");
        assert!(w.is_fresh(199) && w.is_fresh(137) && !w.is_fresh(136));
    }

    /// `Partial::add` as it was, with a sort: the reference for the insertion that replaced it.
    fn add_with_sort(have: &[(usize, usize)], offset: usize, len: usize) -> Vec<(usize, usize)> {
        let mut r = (offset, offset + len);
        let mut merged = Vec::new();
        for &(a, b) in have {
            if b < r.0 || a > r.1 {
                merged.push((a, b));
            } else {
                r = (r.0.min(a), r.1.max(b));
            }
        }
        merged.push(r);
        merged.sort_unstable();
        merged
    }

    #[test]
    fn received_ranges_stay_sorted_and_merged() {
        // Pseudo-random fragments (empty ones, overlaps, touching ends, duplicates) of a 24-byte
        // message, against the sorting reference; the ranges stay strictly apart.
        let mut x = 0x2545_f491_u32;
        let mut next = |m: u32| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x % m) as usize
        };
        for _ in 0..2000 {
            let mut p = Partial {
                typ: HandshakeType::ClientHello,
                body: alloc::vec![0; 24],
                have: Vec::new(),
            };
            for _ in 0..next(10) {
                let offset = next(25);
                let len = next(7).min(24 - offset);
                let expected = add_with_sort(&p.have, offset, len);
                p.add(offset, &[1; 6][..len]);
                assert_eq!(p.have, expected);
                assert!(p.have.windows(2).all(|w| w[0].1 < w[1].0), "{:?}", p.have);
            }
            assert_eq!(p.complete(), p.have == [(0, 24)]);
        }
    }

    #[test]
    fn reassembly_out_of_order_and_overlapping() {
        let mut r = Reassembler::new(0, 100, 1000, 4);
        let h = |off, len| FragmentHeader {
            typ: HandshakeType::ClientHello,
            length: 10,
            message_seq: 0,
            offset: off,
            fragment_length: len,
        };
        let data: Vec<u8> = (0..10).collect();
        assert_eq!(r.insert(&h(6, 4), &data[6..]).unwrap(), Inserted::Stored);
        assert!(r.pop().is_none());
        assert_eq!(r.insert(&h(0, 4), &data[..4]).unwrap(), Inserted::Stored);
        assert!(r.pop().is_none());
        assert_eq!(r.insert(&h(2, 6), &data[2..8]).unwrap(), Inserted::Stored);
        let (t, seq, body) = r.pop().unwrap();
        assert_eq!(
            (t, seq, body),
            (HandshakeType::ClientHello, 0, data.clone())
        );
        assert_eq!(r.insert(&h(0, 10), &data).unwrap(), Inserted::Old);
    }

    #[test]
    fn inconsistent_fragment_is_dropped() {
        let mut r = Reassembler::new(0, 100, 1000, 4);
        let h = FragmentHeader {
            typ: HandshakeType::Finished,
            length: 4,
            message_seq: 0,
            offset: 2,
            fragment_length: 4,
        };
        assert_eq!(r.insert(&h, &[1, 2, 3, 4]).unwrap(), Inserted::Dropped);
    }

    #[test]
    fn reassembly_is_bounded() {
        let mut r = Reassembler::new(0, 100, 150, 4);
        let h = |seq, len| FragmentHeader {
            typ: HandshakeType::Finished,
            length: len,
            message_seq: seq,
            offset: 0,
            fragment_length: 0,
        };
        assert_eq!(
            r.insert(&h(0, 101), &[]),
            Err(InvalidMessage::HandshakeMessageTooLarge)
        );
        assert_eq!(r.insert(&h(1, 100), &[]).unwrap(), Inserted::Stored);
        assert_eq!(
            r.insert(&h(2, 100), &[]).unwrap(),
            Inserted::Dropped,
            "total bound"
        );
        assert_eq!(
            r.insert(&h(9, 1), &[]).unwrap(),
            Inserted::Dropped,
            "beyond the window"
        );
    }

    #[test]
    fn timer_doubles_and_gives_up() {
        let cfg = RetransmitConfig {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(350),
            max_retransmissions: 3,
            ..RetransmitConfig::default()
        };
        let mut t = Timer::start(Instant(0), &cfg);
        assert_eq!(t.fire(Instant(99_999), &cfg), None);
        assert_eq!(t.fire(Instant(100_000), &cfg), Some(true));
        assert_eq!(t.deadline(), Some(Instant(300_000)));
        assert_eq!(t.fire(Instant(300_000), &cfg), Some(true));
        assert_eq!(t.deadline(), Some(Instant(650_000)), "capped at max");
        assert_eq!(t.fire(Instant(650_000), &cfg), Some(true));
        assert_eq!(t.fire(Instant(2_000_000), &cfg), Some(false));
        assert_eq!(t, Timer::Disarmed);
    }
}
