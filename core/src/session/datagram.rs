//! The DTLS half of [`Session`]: one datagram in, records opened in place, handshake fragments
//! reassembled in order, flights retransmitted; one datagram out per `Transmit`.
//!
//! Records that fail to parse or authenticate, replays and records of an epoch we cannot read
//! are dropped silently and counted (RFC 6347 4.1.2.7); handshake failures stay fatal, and so
//! does a Finished that fails authentication during the handshake (a wrong key: bad_record_mac
//! at once rather than silence until the handshake timeout).

use alloc::collections::VecDeque;
use core::ops::Range;

use super::{Closure, Event, Machine, Output, Session};
use crate::codec::Reader;
use crate::common::MAX_EARLY_RECORDS;
use crate::dtls::{DtlsRecordHeader, FragmentHeader, Inserted, HS_HEADER_LEN};
use crate::enums::{AlertDescription, AlertLevel, ContentType, HandshakeType};
use crate::error::Error;
use crate::record::{Protection, DTLS_HEADER_LEN};

impl Session {
    /// Takes one datagram. Returns its length, or 0 if received data still waits to be polled
    /// (drain `poll_output` first).
    pub(super) fn handle_datagram(&mut self, input: &[u8]) -> Result<usize, Error> {
        if self.closure == Closure::PeerClosed {
            return Ok(input.len());
        }
        if !self.rx_ranges.is_empty() || self.is_suspended() {
            return Ok(0);
        }
        self.rx_dgram.clear();
        self.rx_dgram.extend_from_slice(input);
        self.process_records(0, input.len())
            .map_err(|e| self.fail(e))?;
        Ok(input.len())
    }

    /// After `provide_psk`: continues with the messages and records that waited.
    pub(super) fn resume_datagram(&mut self) -> Result<(), Error> {
        let r = self.pop_messages().and_then(|()| {
            let stash = core::mem::take(&mut self.stash);
            let start = self.rx_dgram.len();
            self.rx_dgram.extend_from_slice(&stash);
            self.process_records(start, start + stash.len())
        });
        r.map_err(|e| self.fail(e))
    }

    fn process_records(&mut self, mut off: usize, end: usize) -> Result<(), Error> {
        let mut retransmitted = false;
        while off < end {
            let Ok((h, range)) = DtlsRecordHeader::split(&self.rx_dgram[off..end]) else {
                self.stats_mut().malformed += 1;
                break;
            };
            let record = off..off + range.end;
            off = record.end;
            self.process_record_dtls(h, record, &mut retransmitted)?;
            if self.closure == Closure::PeerClosed {
                break;
            }
            if self.is_suspended() {
                self.stash = self.rx_dgram[off..end].to_vec();
                break;
            }
        }
        let replay_early = self.cx.dtls.as_ref().is_some_and(|d| {
            d.read_epoch == 1 && d.handshake.as_ref().is_some_and(|h| !h.early.is_empty())
        });
        if replay_early && !self.is_suspended() {
            // In record-sequence order already (`early_position`).
            let d = self.cx.dtls.as_mut().expect("DTLS session");
            let early = d
                .handshake
                .as_mut()
                .map(|h| core::mem::take(&mut h.early))
                .unwrap_or_default();
            for rec in early {
                let start = self.rx_dgram.len();
                self.rx_dgram.extend_from_slice(&rec);
                self.process_records(start, start + rec.len())?;
            }
        }
        if self.is_connected() {
            let client = matches!(self.machine, Machine::Client(..));
            if let Some(d) = self.cx.dtls.as_mut() {
                // No more timers, early records or cookie exchanges.
                d.handshake = None;
                if client {
                    // The server's final flight answered ours: nothing of it is needed again.
                    d.flight = alloc::vec::Vec::new();
                } else if d.flight.capacity() > d.flight.len() {
                    // Our final flight (ChangeCipherSpec, Finished), kept to answer a
                    // retransmitted client Finished (RFC 6347 4.2.4), in the Vec that held the
                    // longer flight before it.
                    d.flight.shrink_to_fit();
                }
            }
        }
        Ok(())
    }

    fn stats_mut(&mut self) -> &mut crate::common::Stats {
        &mut self.cx.dtls.as_mut().expect("DTLS session").stats
    }

    fn process_record_dtls(
        &mut self,
        h: DtlsRecordHeader,
        record: Range<usize>,
        retransmitted: &mut bool,
    ) -> Result<(), Error> {
        let handshaking = !self.is_connected();
        let d = self.cx.dtls.as_mut().expect("DTLS session");
        let fragment = record.start + DTLS_HEADER_LEN..record.end;
        // Only epochs 0 and 1 exist; compare without arithmetic on the peer's epoch (0xffff).
        if h.epoch == 1 && d.read_epoch == 0 {
            // Next-epoch records (Finished before ChangeCipherSpec): keep a few for later.
            let early = d.handshake.as_mut().map(|h| &mut h.early);
            if let Some(early) = early.filter(|e| e.len() < MAX_EARLY_RECORDS) {
                let rec = self.rx_dgram[record].to_vec();
                let at = early_position(early, &rec);
                early.insert(at, rec);
            } else {
                d.stats.wrong_epoch += 1;
            }
            return Ok(());
        }
        let old_handshake = h.epoch == 0 && d.read_epoch == 1 && h.typ == ContentType::Handshake;
        if h.epoch > 1 || (h.epoch != d.read_epoch && !old_handshake) {
            d.stats.wrong_epoch += 1;
            return Ok(());
        }
        let e = usize::from(h.epoch);
        if !d.replay[e].is_fresh(h.seq) {
            d.stats.replayed += 1;
            return Ok(());
        }
        let plain = if h.epoch == 0 {
            fragment
        } else {
            let Some(prot) = self.cx.read.as_ref() else {
                d.stats.wrong_epoch += 1;
                return Ok(());
            };
            match prot.open_record(
                &mut self.rx_dgram[fragment.clone()],
                h.typ,
                h.version,
                h.full_seq(),
            ) {
                Ok(r) => fragment.start + r.start..fragment.start + r.end,
                Err(_) => {
                    d.stats.bad_mac += 1;
                    // During the handshake the only protected record is the peer's Finished: one
                    // that fails authentication means the keys differ (a wrong PSK), and dropping
                    // it would leave the peer retransmitting in silence until its handshake
                    // timeout. RFC 6347 4.1.2.7 allows a fatal alert instead of the discard
                    // (bad_record_mac, as over TLS). It opens no new attack: whoever can inject
                    // an epoch-1 record can inject the unauthenticated epoch-0 alerts of a
                    // handshake just as well. After the handshake, forgeries are dropped.
                    if handshaking && h.typ == ContentType::Handshake {
                        return Err(Error::BadRecordMac);
                    }
                    return Ok(());
                }
            }
        };
        d.replay[e].mark(h.seq);
        match h.typ {
            ContentType::Handshake => self.handshake_fragments(plain, h.seq, retransmitted),
            ContentType::ChangeCipherSpec => self.change_cipher_spec(&plain),
            ContentType::Alert => self.alert(&plain),
            ContentType::ApplicationData => {
                if self.is_connected() && h.epoch == 1 {
                    let d = self.cx.dtls.as_mut().expect("DTLS session");
                    if d.flight.capacity() > 0 {
                        // The peer sends protected data only once it has our Finished (a
                        // client is connected only then): it will not repeat its last flight,
                        // so ours need not be kept for it any longer (RFC 6347 4.2.4).
                        d.flight = alloc::vec::Vec::new();
                    }
                    if !plain.is_empty() {
                        self.rx_ranges.push_back(plain);
                    }
                } else {
                    self.stats_mut().wrong_epoch += 1;
                }
                Ok(())
            }
            ContentType::Unknown(_) => Ok(()),
        }
    }

    fn handshake_fragments(
        &mut self,
        plain: Range<usize>,
        record_seq: u64,
        retransmitted: &mut bool,
    ) -> Result<(), Error> {
        let data = self.rx_dgram[plain].to_vec();
        let mut r = Reader::new(&data);
        while r.left() > 0 {
            let Ok((fh, frag)) = FragmentHeader::read(&mut r) else {
                self.stats_mut().malformed += 1;
                return Ok(());
            };
            let first_hello =
                self.machine.awaits_client_hello() && fh.typ == HandshakeType::ClientHello;
            let d = self.cx.dtls.as_mut().expect("DTLS session");
            if first_hello && d.reasm.next() != fh.message_seq && d.reasm.next() == 0 {
                // After a stateless cookie exchange the ClientHello has message_seq 1; our
                // numbering continues from it (RFC 6347 4.2.2).
                d.reasm.set_next(fh.message_seq);
                d.send_msg_seq = fh.message_seq;
            }
            if first_hello {
                // And our record numbers continue from the ClientHello's (RFC 6347 4.2.1).
                d.epoch_seq[0] = d.epoch_seq[0].max(record_seq);
            }
            match d.reasm.insert(&fh, frag)? {
                Inserted::Stored => {}
                Inserted::Dropped => d.stats.dropped_fragments += 1,
                Inserted::Old => {
                    // The peer repeats its last flight after we finished: our final flight was
                    // lost, and the peer has no timer of ours to wait for. Answer once per
                    // datagram. Before that only timers retransmit: answering old flights while
                    // both sides wait would make them echo each other without end.
                    if !*retransmitted && !d.flight.is_empty() && self.machine.is_connected() {
                        *retransmitted = true;
                        self.cx.retransmit_flight()?;
                    }
                }
            }
            self.pop_messages()?;
            if self.is_suspended() {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Hands every complete in-order message to the machine.
    fn pop_messages(&mut self) -> Result<(), Error> {
        while !self.is_suspended() {
            let Some(d) = self.cx.dtls.as_mut() else {
                return Ok(());
            };
            let Some((typ, message_seq, body)) = d.reasm.pop() else {
                return Ok(());
            };
            d.flight_open = false;
            let mut raw = alloc::vec::Vec::with_capacity(HS_HEADER_LEN + body.len());
            FragmentHeader::unfragmented(typ, body.len(), message_seq).write(&mut raw);
            raw.extend_from_slice(&body);
            self.handle_handshake_message(typ, &raw, HS_HEADER_LEN)?;
        }
        Ok(())
    }

    fn change_cipher_spec(&mut self, plain: &Range<usize>) -> Result<(), Error> {
        if self.rx_dgram[plain.clone()] != [1] {
            self.stats_mut().malformed += 1;
            return Ok(());
        }
        if !self.machine.expects_ccs() {
            // A duplicate, or early (the peer retransmits): ignore.
            return Ok(());
        }
        let Some(keys) = self.cx.pending_read.take() else {
            return Ok(());
        };
        self.cx.read = Some(Protection::new(keys));
        self.cx.dtls.as_mut().expect("DTLS session").read_epoch = 1;
        self.machine = core::mem::replace(&mut self.machine, Machine::Poisoned).after_ccs();
        // Records of the new epoch that came early are replayed once the rest of this datagram
        // is done (`process_records`), in sequence order, so that data after a Finished is kept.
        Ok(())
    }

    fn alert(&mut self, plain: &Range<usize>) -> Result<(), Error> {
        let [level, desc] = self.rx_dgram[plain.clone()] else {
            self.stats_mut().malformed += 1;
            return Ok(());
        };
        let (level, desc) = (AlertLevel::from(level), AlertDescription::from(desc));
        if desc == AlertDescription::CloseNotify {
            if self.closure == Closure::Open {
                self.cx
                    .send_alert(AlertLevel::Warning, AlertDescription::CloseNotify);
            }
            self.closure = Closure::PeerClosed;
            self.cx
                .events
                .push_back(crate::common::QueuedEvent::PeerClosed);
            return Ok(());
        }
        if level != AlertLevel::Warning || !self.is_connected() {
            return Err(Error::AlertReceived(desc));
        }
        Ok(())
    }

    /// `poll_output` over DTLS: whole datagrams, events, whole records of application data.
    pub(super) fn poll_datagram<'b>(&mut self, buf: &'b mut [u8]) -> Output<'b> {
        let d = self.cx.dtls.as_mut().expect("DTLS session");
        if let Some(front) = d.datagrams.front() {
            let n = front.len();
            if n > buf.len() {
                return Output::BufferTooSmall { needed: n };
            }
            buf[..n].copy_from_slice(front);
            if let Some(mut spent) = d.datagrams.pop_front() {
                // Kept for the next datagram: no allocation per datagram once warmed up.
                spent.clear();
                d.spare = Some(spent);
            }
            return Output::Transmit(&buf[..n]);
        }
        let connected = self.machine.is_connected();
        if connected && !d.reuse_buffers && (d.spare.is_some() || d.datagrams.capacity() > 0) {
            // The handshake is over and its last datagram is out: an established session that
            // has sent no application data keeps no datagram buffer (an MTU's worth) nor queue.
            d.spare = None;
            d.datagrams = VecDeque::new();
        }
        let (timer, handshake_deadline) = match d.handshake.as_ref() {
            Some(h) => (h.timer.deadline(), (!connected).then_some(h.deadline)),
            None => (None, None),
        };
        let deadline = match (timer, handshake_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if self.failed.is_some() {
            return Output::Wait(None);
        }
        if let Some(ev) = self.pop_event() {
            return Output::Event(ev);
        }
        if let Some(r) = self.rx_ranges.front().cloned() {
            if r.len() > buf.len() {
                return Output::BufferTooSmall { needed: r.len() };
            }
            self.rx_ranges.pop_front();
            buf[..r.len()].copy_from_slice(&self.rx_dgram[r.clone()]);
            return Output::Event(Event::AppData(&buf[..r.len()]));
        }
        Output::Wait(deadline)
    }
}

/// Where `rec` goes in `early` (kept in record-sequence order): after every record whose
/// epoch || sequence number (the 8 bytes after type and version) is not above its own, so
/// records with equal numbers stay in arrival order, as a stable sort would keep them. At most
/// `MAX_EARLY_RECORDS` records: a linear scan and an insert instead of linking a sort.
fn early_position(early: &[alloc::vec::Vec<u8>], rec: &[u8]) -> usize {
    let key = rec.get(3..11);
    early
        .iter()
        .position(|r| r.get(3..11) > key)
        .unwrap_or(early.len())
}

#[cfg(test)]
mod tests {
    use super::early_position;
    use alloc::vec::Vec;

    /// A record of epoch 1 with sequence number `seq` and a body byte telling records apart.
    fn rec(seq: u8, tag: u8) -> Vec<u8> {
        alloc::vec![23, 254, 253, 0, 1, 0, 0, 0, 0, 0, seq, 0, 1, tag]
    }

    #[test]
    fn early_records_are_kept_as_a_stable_sort_orders_them() {
        // Every arrival order of up to 4 records over 3 sequence numbers (duplicates included),
        // against the stable sort the insertion replaces.
        for n in 0..=4u32 {
            for code in 0..3u32.pow(n) {
                let mut arrivals = Vec::new();
                let mut c = code;
                for tag in 0..n {
                    arrivals.push(rec((c % 3) as u8, tag as u8));
                    c /= 3;
                }
                let mut early: Vec<Vec<u8>> = Vec::new();
                for r in &arrivals {
                    let at = early_position(&early, r);
                    early.insert(at, r.clone());
                }
                let mut sorted = arrivals.clone();
                sorted.sort_by_key(|r| r.get(3..11).map(<[u8]>::to_vec));
                assert_eq!(early, sorted, "arrivals {arrivals:?}");
            }
        }
    }

    #[test]
    fn a_short_record_goes_first() {
        // Never stored (records are split with their 13-byte header), but no panic either.
        let early = alloc::vec![rec(0, 0)];
        assert_eq!(early_position(&early, &[23, 254, 253]), 0);
        assert_eq!(early_position(&early, &rec(1, 0)), 1);
    }
}
