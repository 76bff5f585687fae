//! Entity B (e.g. an IN-CSE) accepting associations: the [`Registrar`], and Entity A's
//! [`associate`] (`docs/protocol.md`, "Registrar").
//!
//! ```text
//!  Entity A ──TLS-PSK(KcID@MAF, Kc)──▶ Registrar ── deferred lookup ──▶ retrieve_key (B's MAF
//!                                                 session) ──▶ psk = Kc, bound to IdA
//! ```

use std::fmt;
use std::sync::{Arc, Mutex};

use m2msec::keys::{IdKind, Kc, KeyId};
use m2msec::{CipherSuite, ClientConfig, ClientPsk, Psk, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, ToSocketAddrs};

use super::maf::{
    now, retrieve_key, server_tls, timed_out, MafClientError, MafCredentials, HANDSHAKE_TIMEOUT,
};
use crate::{accept_with_async, connect, Error, TlsStream};

/// An association the [`Registrar`] accepted.
#[derive(Debug)]
pub struct Association<T> {
    /// The TLS stream, keyed by Kc.
    pub stream: TlsStream<T>,
    /// The identity bound to the association: IdA (`sourceMafClientID`).
    pub peer_id: String,
    /// The key identifier the peer authenticated with.
    pub kc_id: KeyId,
    /// When Kc expires (Unix seconds).
    pub expires: u64,
}

/// Why the [`Registrar`] accepted no association.
#[derive(Debug)]
#[non_exhaustive]
pub enum RegistrarError {
    /// The handshake failed; `retrieval` says why the key lookup found no Kc, if it ran.
    Handshake {
        /// The TLS error (e.g. `unknown_psk_identity` when no Kc was found).
        tls: Error,
        /// Why the lookup gave no key.
        retrieval: Option<LookupFailure>,
    },
}

impl fmt::Display for RegistrarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Handshake { tls, retrieval } => {
                write!(f, "association handshake failed: {tls}")?;
                if let Some(r) = retrieval {
                    write!(f, " ({r})")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for RegistrarError {}

/// Why the registrar's key lookup gave no Kc.
#[derive(Debug)]
#[non_exhaustive]
pub enum LookupFailure {
    /// The identity is not `relative@MAF-FQDN` of this registrar's MAF.
    NotMafIdentity,
    /// Key Retrieval failed (e.g. refused with 4004 or 4103).
    Retrieval(MafClientError),
    /// The MAF released a Kc whose expirationTime has passed.
    Expired,
}

impl fmt::Display for LookupFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotMafIdentity => f.write_str("not a key identifier of the MAF"),
            Self::Retrieval(e) => write!(f, "key retrieval: {e}"),
            Self::Expired => f.write_str("Kc expired"),
        }
    }
}

/// What the deferred lookup found.
enum Lookup {
    Found {
        kc_id: KeyId,
        peer: String,
        expires: u64,
    },
    Failed(LookupFailure),
}

/// Entity B (e.g. an IN-CSE): accepts TLS-PSK associations whose identity is a key identifier of
/// its MAF, retrieving Kc over its own MAF session, and reports the identity bound to each.
pub struct Registrar {
    maf_addr: String,
    creds: MafCredentials,
    tls: Arc<ServerConfig>,
    clock: fn() -> u64,
}

impl fmt::Debug for Registrar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registrar")
            .field("maf_addr", &self.maf_addr)
            .field("origin", &self.creds.origin)
            .finish_non_exhaustive()
    }
}

fn system_unix() -> u64 {
    now().unix.0
}

impl Registrar {
    /// A registrar using the MAF at `maf_addr` (`host:port`) with its own credentials.
    #[must_use]
    pub fn new(maf_addr: impl Into<String>, creds: MafCredentials) -> Self {
        Self {
            maf_addr: maf_addr.into(),
            creds,
            tls: server_tls(),
            clock: system_unix,
        }
    }

    /// Replaces the clock (Unix seconds) the expiry of a retrieved Kc is checked against.
    #[must_use]
    pub fn with_clock(mut self, clock: fn() -> u64) -> Self {
        self.clock = clock;
        self
    }

    /// Accepts one association over `io`.
    pub async fn accept<T>(&self, io: T) -> Result<Association<T>, RegistrarError>
    where
        T: AsyncRead + AsyncWrite + Unpin,
    {
        let outcome: Mutex<Option<Lookup>> = Mutex::new(None);
        let lookup = |identity: Vec<u8>, _sni: Option<String>| {
            let outcome = &outcome;
            async move {
                let (psk, result) = self.lookup(&identity).await;
                if let Ok(mut slot) = outcome.lock() {
                    *slot = Some(result);
                }
                psk
            }
        };
        let handshake = accept_with_async(io, self.tls.clone(), Some(lookup));
        let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake)
            .await
            .unwrap_or_else(|_| Err(timed_out()));
        let outcome = outcome.into_inner().ok().flatten();
        match (handshake, outcome) {
            (
                Ok(stream),
                Some(Lookup::Found {
                    kc_id,
                    peer,
                    expires,
                }),
            ) => Ok(Association {
                stream,
                peer_id: peer,
                kc_id,
                expires,
            }),
            (Ok(_), _) => Err(RegistrarError::Handshake {
                tls: m2msec::Error::UnknownPskIdentity.into(),
                retrieval: None,
            }),
            (Err(tls), outcome) => Err(RegistrarError::Handshake {
                tls,
                retrieval: match outcome {
                    Some(Lookup::Failed(f)) => Some(f),
                    _ => None,
                },
            }),
        }
    }

    async fn lookup(&self, identity: &[u8]) -> (Option<Psk>, Lookup) {
        let fail = |f| (None, Lookup::Failed(f));
        let Ok(kc_id) = KeyId::parse_bytes(IdKind::Kc, identity) else {
            return fail(LookupFailure::NotMafIdentity);
        };
        if !kc_id.fqdn().eq_ignore_ascii_case(&self.creds.maf_fqdn) {
            return fail(LookupFailure::NotMafIdentity);
        }
        let (kc, peer, expires) =
            match retrieve_key(self.maf_addr.as_str(), &self.creds, kc_id.relative()).await {
                Ok(r) => r,
                Err(e) => return fail(LookupFailure::Retrieval(e)),
            };
        if expires <= (self.clock)() {
            return fail(LookupFailure::Expired);
        }
        (
            Some(kc.to_psk()),
            Lookup::Found {
                kc_id,
                peer,
                expires,
            },
        )
    }
}

/// Entity A's side of the association: a TLS-PSK client with `psk_identity = kc_id` and
/// `psk = kc` to the registrar at `addr`.
pub async fn associate(
    addr: impl ToSocketAddrs,
    kc_id: &KeyId,
    kc: &Kc,
) -> Result<TlsStream<TcpStream>, Error> {
    let psk = ClientPsk::new(kc_id.as_bytes(), kc.to_psk()).map_err(m2msec::Error::from)?;
    let config = Arc::new(
        ClientConfig::builder(psk)
            .suites(CipherSuite::ALL)
            .build()
            .map_err(m2msec::Error::from)?,
    );
    let tcp = TcpStream::connect(addr).await?;
    connect(tcp, config, None).await
}
