//! A blocking adapter: drives an [`m2msec::Session`] over any `Read + Write` byte stream
//! (a `TcpStream` usually) and exposes the protected channel as `Read + Write`.
//!
//! No protocol logic lives here: the loop moves bytes between the socket and the session and
//! drains `poll_output` after every call, as the core's driving contract asks.

#![forbid(unsafe_code)]

mod dtls;
pub use dtls::{connect_dtls, DtlsServer, DtlsStream, ServerEvent};

use std::fmt;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::Instant as StdInstant;

use m2msec::{
    ClientConfig, Event, Now, Output, Psk, ServerConfig, Session, SessionInfo, Transport,
};

/// An adapter error: the session's or the transport's.
#[derive(Debug)]
pub enum Error {
    /// The (D)TLS session failed.
    Tls(m2msec::Error),
    /// The transport failed.
    Io(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tls(e) => e.fmt(f),
            Self::Io(e) => write!(f, "I/O error: {e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<m2msec::Error> for Error {
    fn from(e: m2msec::Error) -> Self {
        Self::Tls(e)
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Io(e) => e,
            Error::Tls(e) => Self::new(io::ErrorKind::InvalidData, e),
        }
    }
}

/// A 32-byte seed from the operating system for a session's generator.
pub fn os_seed() -> Result<[u8; 32], io::Error> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(io::Error::from)?;
    Ok(seed)
}

/// A key lookup for servers configured with [`m2msec::config::DeferAll`].
pub type KeyLookup<'a> = dyn FnMut(&[u8], Option<&str>) -> Option<Psk> + 'a;

/// A protected stream over `S`.
pub struct TlsStream<S> {
    io: S,
    session: Session,
    epoch: StdInstant,
    /// Bytes read from `io` that the session has not taken yet.
    inbuf: Vec<u8>,
    in_start: usize,
    /// Plaintext received and not yet returned by `read`.
    plain: Vec<u8>,
    plain_start: usize,
    out: Vec<u8>,
    peer_closed: bool,
}

impl<S> fmt::Debug for TlsStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsStream")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

/// Runs a client handshake over `io`.
pub fn connect<S: Read + Write>(
    io: S,
    config: Arc<ClientConfig>,
    server_name: Option<&str>,
) -> Result<TlsStream<S>, Error> {
    let epoch = StdInstant::now();
    let session = Session::client(
        config,
        Transport::Tls,
        server_name,
        Now::from_std(epoch),
        os_seed()?,
    )?;
    let mut s = TlsStream::new(io, session, epoch);
    s.handshake(None)?;
    Ok(s)
}

/// Runs a server handshake over `io`; keys come from the configuration's resolver.
pub fn accept<S: Read + Write>(io: S, config: Arc<ServerConfig>) -> Result<TlsStream<S>, Error> {
    accept_with(io, config, &mut |_, _| None)
}

/// Runs a server handshake over `io`, answering deferred key lookups with `lookup`.
pub fn accept_with<S: Read + Write>(
    io: S,
    config: Arc<ServerConfig>,
    lookup: &mut KeyLookup<'_>,
) -> Result<TlsStream<S>, Error> {
    let epoch = StdInstant::now();
    let session = Session::server(config, Transport::Tls, Now::from_std(epoch), os_seed()?)?;
    let mut s = TlsStream::new(io, session, epoch);
    s.handshake(Some(lookup))?;
    Ok(s)
}

impl<S: Read + Write> TlsStream<S> {
    fn new(io: S, session: Session, epoch: StdInstant) -> Self {
        Self {
            io,
            session,
            epoch,
            inbuf: Vec::new(),
            in_start: 0,
            plain: Vec::new(),
            plain_start: 0,
            out: vec![0u8; 16 * 1024 + 64],
            peer_closed: false,
        }
    }

    fn now(&self) -> Now {
        Now::from_std(self.epoch)
    }

    /// What the handshake established.
    pub fn info(&self) -> &SessionInfo {
        self.session
            .info()
            .expect("TlsStream exists only after the handshake")
    }

    /// RFC 5705 keying material.
    pub fn export_keying_material(
        &self,
        out: &mut [u8],
        label: &[u8],
        context: Option<&[u8]>,
    ) -> Result<(), Error> {
        Ok(self.session.export_keying_material(out, label, context)?)
    }

    /// The transport.
    pub fn get_ref(&self) -> &S {
        &self.io
    }

    /// Drains the session: writes transmits, collects data and events.
    fn drain(&mut self, mut lookup: Option<&mut KeyLookup<'_>>) -> Result<(), Error> {
        loop {
            match self.session.poll_output(&mut self.out) {
                Output::Transmit(b) => self.io.write_all(b)?,
                Output::Event(Event::AppData(d)) => self.plain.extend_from_slice(d),
                Output::Event(Event::PeerClosed) => self.peer_closed = true,
                Output::Event(Event::PskNeeded {
                    identity,
                    server_name,
                    ..
                }) => {
                    let key = lookup
                        .as_mut()
                        .and_then(|l| l(&identity, server_name.as_deref()));
                    let now = self.now();
                    self.session.provide_psk(now, key)?;
                }
                // This adapter has no hook for deferred certificate decisions: refused at
                // once (use a verifier that decides synchronously).
                Output::Event(Event::VerifyPeer { .. }) => {
                    let now = self.now();
                    // The alert follows in this drain; the error is reported after it.
                    let _ = self
                        .session
                        .peer_verified(now, Err(m2msec::cert::CertError::Refused));
                }
                Output::Event(_) => {}
                Output::Wait(_) => break,
                _ => {}
            }
        }
        self.io.flush()?;
        if let Some(e) = self.session.error() {
            return Err(e.clone().into());
        }
        Ok(())
    }

    /// Feeds buffered input to the session; reads more from `io` when it has taken everything.
    fn pump(&mut self, lookup: Option<&mut KeyLookup<'_>>) -> Result<(), Error> {
        if self.in_start == self.inbuf.len() {
            self.inbuf.resize(16 * 1024, 0);
            let n = self.io.read(&mut self.inbuf)?;
            self.inbuf.truncate(n);
            self.in_start = 0;
            if n == 0 {
                let now = self.now();
                self.session.handle_eof(now)?;
                self.peer_closed = true;
                return Ok(());
            }
        }
        let now = self.now();
        let r = self.session.handle_input(now, &self.inbuf[self.in_start..]);
        // Drain first even on error: it carries the alert we send.
        let d = self.drain(lookup);
        self.in_start += r?;
        d
    }

    fn handshake(&mut self, mut lookup: Option<&mut KeyLookup<'_>>) -> Result<(), Error> {
        self.drain(lookup.as_deref_mut())?;
        while !self.session.is_connected() {
            if self.peer_closed {
                return Err(m2msec::Error::UnexpectedEof.into());
            }
            self.pump(lookup.as_deref_mut())?;
        }
        Ok(())
    }

    /// Sends close_notify.
    pub fn close(&mut self) -> Result<(), Error> {
        let now = self.now();
        self.session.close(now)?;
        self.drain(None)
    }
}

impl<S: Read + Write> Read for TlsStream<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.plain_start == self.plain.len() {
            self.plain.clear();
            self.plain_start = 0;
            if self.peer_closed {
                return Ok(0);
            }
            self.pump(None)?;
        }
        let n = buf.len().min(self.plain.len() - self.plain_start);
        buf[..n].copy_from_slice(&self.plain[self.plain_start..self.plain_start + n]);
        self.plain_start += n;
        Ok(n)
    }
}

impl<S: Read + Write> Write for TlsStream<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let now = self.now();
        let n = self.session.send(now, buf).map_err(Error::from)?;
        self.drain(None)?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(self.drain(None)?)
    }
}
