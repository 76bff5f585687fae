//! Entity B (e.g. an IN-CSE) accepting security associations: the [`Registrar`], and Entity
//! A's clients [`associate_pre_provisioned`], [`associate_kpsa`], [`associate_maf`],
//! [`associate_certificate`] (and the older TLS-only [`associate`]) (`docs/protocol.md`,
//! "Registrar").
//!
//! ```text
//!  Entity A ──(D)TLS-PSK(KpsaId, Kpsa)─────▶ Registrar: EndPointConfig entry ──▶ bound to
//!                                            its otherEntityIdentifier (draft 8.2.2.1)
//!  Entity A ──(D)TLS-PSK(KcID@MAF, Kc)─────▶ Registrar ── deferred lookup ──▶ retrieve_key (B's
//!                                            MAF session) ──▶ psk = Kc, bound to IdA =
//!                                            sourceMafClientID, a configured peer (8.2.3.1)
//!  Entity A ──(D)TLS-ECDHE-ECDSA, both ──────▶ Registrar: MatchingVerifier tries every
//!             sides certified                 Certificate-Based association (name + RoT) in
//!                                             configuration order; bound to the first that
//!                                             verifies: its otherEntityIdentifier (8.2.2.2)
//!  Entity A ── GET /registrar/association ─▶ {"boundIdentity", "framework", "keyIdentifier",
//!                                             "expirationTime"}
//! ```
//!
//! Deadline of an association: `now + securityAssociationLifespan` of the configuration entry
//! it was established under (none configured: unbounded); for the MAF-based framework it is
//! also never later than the Kc's `expirationTime`, since B may not go on using a key the MAF
//! says has expired. `associationConfigurationExpiry` only refuses *new* associations. The
//! serving loop ([`Registrar::bind`], [`Registrar::bind_dtls`]) sends close_notify at the
//! deadline; [`Registrar::accept`] leaves that to its caller ([`Association::close_at`]).
//!
//! **Which certificate-based association?** Entity B cannot know who is coming before it sees
//! the client's certificate, so its verifier ([`MatchingVerifier`]) tries each configured
//! Certificate-Based association's `otherEntityCertificateName` and `otherEntityRootOfTrust`
//! (draft 8.1.1.2.2) in configuration order and accepts the credential under the **first** that
//! verifies it and whose `associationConfigurationExpiry` has not passed; IdA is that
//! association's `otherEntityIdentifier`, its lifespan bounds the association, and the key
//! identifier reported is the `ni:///sha-256;...` hash of A's public key. A certificate that
//! verifies only under expired entries is refused (`AssociationExpired`); one that verifies
//! under none is refused with the verifier's reason (`CertificateRefused`), a client without a
//! certificate with `NoCertificate` (the server requires client authentication). The
//! configuration refuses two associations with the same name and Root of Trust.
//!
//! **GBA-based association (draft 8.2.3.2).** With [`Registrar::with_gba`] the registrar is a
//! NAF: it sends the psk_identity_hint `3GPP-bootstrapping` (or `3GPP-bootstrapping-uicc` when
//! it accepts only GBA_U), reads the client's psk_identity with
//! [`parse_psk_identity`] (`prefix ";" B-TID`, `prefix "." B-TID` or the bare B-TID of
//! published oneM2M, D10), asks the BSF over Zn ([`zn_fetch`]) for the NAF key of
//! NAF_Id = [`NafId::tls_psk`]`(naf_fqdn, negotiated suite)` (the lookup learns the suite from
//! the core's `PskNeeded`) - Ks_NAF for the GBA_ME prefix and a bare B-TID, Ks_int_NAF for the
//! `-uicc` prefix - and completes the handshake with it. IdA is the IMPI the BSF returned, or,
//! when [`GbaNaf::peers`] is not empty, the `otherEntityIdentifier` configured for that IMPI
//! (an IMPI without a mapping is then refused: `NotConfiguredPeer`). Keys are cached per
//! (B-TID, flavour, suite) until the bootstrapping's lifetime: a repeat needs no Zn request.
//! Refusals: `GbaUnknownBTid` (the BSF knows no such bootstrapping: unknown, or expired and
//! deleted), `GbaExpired` (the cached key's lifetime passed), `GbaNafNotAllowed` (the BSF
//! refused this NAF: not in the subscriber's GUSS, or GBA_U not allowed), `GbaWrongFlavour`
//! (a prefix of a flavour this NAF does not accept), `Retrieval` (Zn unreachable). Each ends the
//! handshake with `unknown_psk_identity` (RFC 4279 2: the core's only answer to "no key").
//!
//! Over DTLS the listener defers the key lookup to [`DtlsListener::bind_with_lookup`]: the MAF
//! retrieval runs asynchronously while the socket's other peers are served, and the binding it
//! found is kept per peer address until the connection is accepted.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use m2msec::cert::{RootOfTrust, RotHash};
use m2msec::config::{ClientAuth, DeferAll};
use m2msec::frameworks::binding::{
    from_body, to_body, AssociationInfoResponse, ErrorBody, Method, Request, Response, Route, Rsc,
    MAX_BODY, MAX_HEAD,
};
use m2msec::frameworks::config::{
    CertificateAssociation, CertificateCredential, CertificateMatch, EndPointConfig, EntityId,
    ExpiredError, PreProvisionedAssociation,
};
use m2msec::gba::kdf::{parse_psk_identity, BTid, GbaPrefix, KsNaf, NafId};
use m2msec::keys::{IdKind, Kc, KeyId, Kpsa};
use m2msec::{
    CertDecision, CertError, CertVerifier, CertificateType, CertifiedKey, CipherSuite,
    ClientConfig, ClientPsk, Credential, PeerCertificateInfo, Psk, ServerConfig, SessionInfo,
    UnixTime,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs, UdpSocket};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use zeroize::Zeroizing;

pub use super::mef::ServiceHandle;
pub use m2msec::frameworks::binding::AssociationFramework as Framework;

use super::bsf::{zn_fetch, ZnError, ZnFlavor};
use super::maf::{
    now, retrieve_key, retrieve_key_via, server_tls, timed_out, MafClientError, MafCredentials,
    HANDSHAKE_TIMEOUT,
};
use super::Transport;
use crate::{
    accept_with_request, connect, connect_dtls, AsyncPskRequestLookup, DtlsConnection,
    DtlsListener, DtlsListenerOptions, Error, PskRequest, TlsStream,
};

/// The MTU of the registrar's DTLS sessions (fits any IPv6 path).
pub const DTLS_MTU: usize = 1232;

/// Default bound on the connections (TLS) or sessions (DTLS) served at once.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// Default time an established association may stay without a request before the serving
/// loop closes it.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// Times a DTLS client retransmits an unanswered request (`docs/protocol.md`).
const DTLS_RETRANSMISSIONS: u32 = 5;

/// Receive buffer of a DTLS record's plaintext.
const DTLS_RECV_BUF: usize = 64 * 1024;

/// Bytes read from a TLS stream at a time.
const READ_CHUNK: usize = 4096;

// ---------------------------------------------------------------------------------------------
// What an association is bound to

/// What the registrar bound to an accepted association. Carries no key material.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssociationInfo {
    /// The framework that keyed the association.
    pub framework: Framework,
    /// The identity bound to it, IdA: the entry's `otherEntityIdentifier` (pre-provisioned,
    /// certificate-based) or the Kc's `sourceMafClientID` (MAF-based).
    pub bound_identity: String,
    /// The key identifier: the `psk_identity` the peer authenticated with (KpsaId or
    /// KcID@MAF-FQDN), or for a certificate-based association the `ni:///sha-256;...` hash of
    /// the peer's public key.
    pub key_id: String,
    /// The negotiated cipher suite.
    pub suite: CipherSuite,
    /// TLS or DTLS.
    pub transport: Transport,
    /// When the registrar looked the key up (Unix seconds, the registrar's clock).
    pub established_at: u64,
    /// When the registrar closes the association (Unix seconds); `None`: unbounded.
    pub deadline: Option<u64>,
    /// The Kc's `expirationTime` (MAF-based); `None` for Kpsa, which has no expiry.
    pub key_expires: Option<u64>,
}

impl AssociationInfo {
    /// The `GET /registrar/association` body for this association.
    #[must_use]
    pub fn to_response(&self) -> AssociationInfoResponse {
        AssociationInfoResponse {
            bound_identity: self.bound_identity.clone(),
            framework: self.framework,
            key_identifier: self.key_id.clone(),
            expiration_time: self.deadline,
        }
    }
}

/// An association the [`Registrar`] accepted over TLS.
#[derive(Debug)]
pub struct Association<T> {
    /// The TLS stream, keyed by Kpsa or Kc.
    pub stream: TlsStream<T>,
    /// The identity bound to the association: IdA.
    pub peer_id: String,
    /// The key identifier the peer authenticated with (KcID@MAF-FQDN or KpsaId); `None` for a
    /// certificate-based association (see [`AssociationInfo::key_id`]).
    pub kc_id: Option<KeyId>,
    /// When Kc expires (Unix seconds); `u64::MAX` for a pre-provisioned Kpsa or a certificate.
    pub expires: u64,
    /// Everything the registrar bound (framework, suite, deadline, ...).
    pub info: AssociationInfo,
    close_at: Option<Instant>,
}

impl<T> Association<T> {
    /// When the association must be closed (its deadline on the monotonic clock); `None`:
    /// unbounded.
    #[must_use]
    pub fn close_at(&self) -> Option<Instant> {
        self.close_at
    }
}

// ---------------------------------------------------------------------------------------------
// Matching a client certificate to its configuration entry

/// How many accepted-but-not-yet-claimed matches a [`MatchingVerifier`] remembers.
const MATCH_MEMORY: usize = 256;

type Matcher = dyn Fn(&Credential, UnixTime) -> CertificateMatch + Send + Sync;

/// A remembered match: the peer key's SHA-256, the matched name, the configured peer's index.
type Remembered = ([u8; 32], Option<String>, usize);

/// The client-certificate verifier of a server that cannot know before the handshake which
/// configured peer is coming (Entity B, the MEF): it tries every configured certificate peer
/// by the rule of [`match_certificate`](m2msec::frameworks::config::match_certificate) (the first
/// in configuration order that verifies and whose configuration is usable), accepts the
/// credential if one does, and remembers which one, keyed by the SHA-256 of the peer's public
/// key and the matched name, until the adapter claims it with [`take`](Self::take) once the
/// handshake completed (the session reports the same [`PeerCertificateInfo`]).
///
/// A credential that verifies only under expired configuration entries is refused with
/// [`CertError::Refused`] (reported as `AssociationExpired`).
pub(crate) struct MatchingVerifier {
    matcher: Box<Matcher>,
    memory: Mutex<VecDeque<Remembered>>,
}

impl MatchingVerifier {
    pub(crate) fn new(
        matcher: impl Fn(&Credential, UnixTime) -> CertificateMatch + Send + Sync + 'static,
    ) -> Self {
        Self {
            matcher: Box::new(matcher),
            memory: Mutex::new(VecDeque::new()),
        }
    }

    /// The index of the configured peer the session's verified credential matched.
    pub(crate) fn take(&self, info: &PeerCertificateInfo) -> Option<usize> {
        let mut m = self.memory.lock().ok()?;
        let pos = m
            .iter()
            .rposition(|(k, n, _)| *k == info.spki_sha256 && *n == info.matched_name)?;
        m.remove(pos).map(|(_, _, i)| i)
    }
}

impl CertVerifier for MatchingVerifier {
    fn verify(&self, peer: &Credential, now: UnixTime) -> CertDecision {
        match (self.matcher)(peer, now) {
            CertificateMatch::Matched { index, info } => {
                if let Ok(mut m) = self.memory.lock() {
                    if m.len() >= MATCH_MEMORY {
                        m.pop_front();
                    }
                    m.push_back((info.spki_sha256, info.matched_name.clone(), index));
                }
                CertDecision::Accept(info)
            }
            CertificateMatch::Expired { .. } => CertDecision::Reject(CertError::Refused),
            CertificateMatch::Refused(e) => CertDecision::Reject(e),
        }
    }
}

/// The Root of Trust text (`ni:///sha-256;...`) of a verified peer's public key: the key
/// identifier of a certificate-based association.
pub(crate) fn key_identifier_of(info: &PeerCertificateInfo) -> String {
    RootOfTrust::from_digest(RotHash::Sha256, &info.spki_sha256)
        .map(|r| r.to_ni_uri())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Errors and refusals

/// Why the [`Registrar`] accepted no association.
#[derive(Debug)]
#[non_exhaustive]
pub enum RegistrarError {
    /// The handshake failed; `retrieval` says why the key lookup found no key, if it ran.
    Handshake {
        /// The TLS error (e.g. `unknown_psk_identity` when no key was found).
        tls: Error,
        /// Why the lookup gave no key.
        retrieval: Option<LookupFailure>,
    },
}

impl RegistrarError {
    /// The refusal's kind.
    #[must_use]
    pub fn refusal(&self) -> Refusal {
        match self {
            Self::Handshake {
                retrieval: Some(f), ..
            } => f.refusal(),
            Self::Handshake { tls, .. } => refusal_of(tls),
        }
    }
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

/// Why the registrar's key lookup gave no key.
#[derive(Debug)]
#[non_exhaustive]
pub enum LookupFailure {
    /// The identity is not `relative@MAF-FQDN` of this registrar's MAF (registrar built with
    /// [`Registrar::new`], which has no pre-provisioned associations).
    NotMafIdentity,
    /// Key Retrieval failed (e.g. refused with 4004 or 4103).
    Retrieval(MafClientError),
    /// The MAF released a Kc whose expirationTime has passed.
    Expired,
    /// Neither a configured `kpsaId` nor a key identifier of the configured MAF.
    UnknownIdentity,
    /// The configuration entry's `associationConfigurationExpiry` has passed.
    AssociationExpired(ExpiredError),
    /// The Kc's source (IdA) is no `otherEntityIdentifier` of a MAF-based association of this
    /// end-point.
    NotConfiguredPeer(String),
    /// A certificate-based handshake completed but no configured association claims it (the
    /// verifier's match was lost: more than its memory of concurrent handshakes).
    NoCertificateMatch,
    /// GBA: the BSF knows no bootstrapping with this B-TID (unknown, or expired and deleted).
    GbaUnknownBTid(String),
    /// GBA: the bootstrapping's lifetime has passed.
    GbaExpired(String),
    /// GBA: the BSF refused to release a key to this NAF (not in the subscriber's GUSS, GBA_U
    /// not allowed for the subscriber, or this NAF not allowed for the NAF_Id).
    GbaNafNotAllowed(String),
    /// GBA: the psk_identity's prefix names a flavour (GBA_ME / GBA_U) this NAF does not accept.
    GbaWrongFlavour(&'static str),
    /// GBA: Zn failed (transport, malformed answer).
    Zn(ZnError),
}

impl LookupFailure {
    /// The refusal's kind.
    #[must_use]
    pub fn refusal(&self) -> Refusal {
        match self {
            Self::NotMafIdentity => Refusal::NotMafIdentity,
            Self::Retrieval(_) => Refusal::Retrieval,
            Self::Expired => Refusal::KcExpired,
            Self::UnknownIdentity => Refusal::UnknownIdentity,
            Self::AssociationExpired(_) => Refusal::AssociationExpired,
            Self::NotConfiguredPeer(_) => Refusal::NotConfiguredPeer,
            Self::NoCertificateMatch => Refusal::CertificateRefused,
            Self::GbaUnknownBTid(_) => Refusal::GbaUnknownBTid,
            Self::GbaExpired(_) => Refusal::GbaExpired,
            Self::GbaNafNotAllowed(_) => Refusal::GbaNafNotAllowed,
            Self::GbaWrongFlavour(_) => Refusal::GbaWrongFlavour,
            Self::Zn(_) => Refusal::Retrieval,
        }
    }
}

impl fmt::Display for LookupFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotMafIdentity => f.write_str("not a key identifier of the MAF"),
            Self::Retrieval(e) => write!(f, "key retrieval: {e}"),
            Self::Expired => f.write_str("Kc expired"),
            Self::UnknownIdentity => {
                f.write_str("neither a configured kpsaId nor a key identifier of the MAF")
            }
            Self::AssociationExpired(e) => write!(f, "{e}"),
            Self::NotConfiguredPeer(id) => {
                write!(f, "Kc source {id} is not a configured MAF-based peer")
            }
            Self::NoCertificateMatch => {
                f.write_str("no certificate-based association claims the verified certificate")
            }
            Self::GbaUnknownBTid(b) => write!(f, "no bootstrapping {b} at the BSF"),
            Self::GbaExpired(b) => write!(f, "bootstrapping {b} expired"),
            Self::GbaNafNotAllowed(e) => write!(f, "the BSF refused this NAF: {e}"),
            Self::GbaWrongFlavour(p) => write!(f, "this NAF does not accept {p}"),
            Self::Zn(e) => write!(f, "Zn: {e}"),
        }
    }
}

/// The kind of a refusal, as [`RegistrarEvent::Refused`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Refusal {
    /// See [`LookupFailure::NotMafIdentity`].
    NotMafIdentity,
    /// See [`LookupFailure::UnknownIdentity`].
    UnknownIdentity,
    /// See [`LookupFailure::AssociationExpired`].
    AssociationExpired,
    /// See [`LookupFailure::NotConfiguredPeer`].
    NotConfiguredPeer,
    /// See [`LookupFailure::Expired`].
    KcExpired,
    /// See [`LookupFailure::Retrieval`].
    Retrieval,
    /// The key was found and the handshake failed anyway (wrong key: `bad_record_mac`, a
    /// protocol error, the transport).
    HandshakeFailed,
    /// The handshake did not complete in time (over DTLS a wrong key looks like this: the
    /// peer drops what it cannot authenticate).
    TimedOut,
    /// An ECDHE-ECDSA client sent no certificate (mutual authentication is required, 8.2.2.2).
    NoCertificate,
    /// No certificate-based association accepts the client's certificate (wrong name, wrong
    /// Root of Trust, expired or broken chain: the error text says which).
    CertificateRefused,
    /// See [`LookupFailure::GbaUnknownBTid`].
    GbaUnknownBTid,
    /// See [`LookupFailure::GbaExpired`].
    GbaExpired,
    /// See [`LookupFailure::GbaNafNotAllowed`].
    GbaNafNotAllowed,
    /// See [`LookupFailure::GbaWrongFlavour`].
    GbaWrongFlavour,
}

fn refusal_of(e: &Error) -> Refusal {
    use m2msec::Error::Certificate;
    match e {
        // The matching verifier refuses with `Refused` only when just expired association
        // configurations accept the certificate.
        Error::Tls(Certificate(CertError::Refused)) => Refusal::AssociationExpired,
        Error::Tls(Certificate(CertError::NoCertificate)) => Refusal::NoCertificate,
        Error::Tls(Certificate(_)) => Refusal::CertificateRefused,
        Error::Io(io) if io.kind() == io::ErrorKind::TimedOut => Refusal::TimedOut,
        Error::Tls(m2msec::Error::HandshakeTimeout) => Refusal::TimedOut,
        _ => Refusal::HandshakeFailed,
    }
}

/// Why [`Registrar::with_maf`] refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegistrarConfigError {
    /// The end-point configuration has no MAF-based credential (`mafIdentifier`, Km, KmID).
    NoMafCredential,
}

impl fmt::Display for RegistrarConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoMafCredential => f.write_str("the end-point has no MAF-based credential"),
        }
    }
}

impl std::error::Error for RegistrarConfigError {}

// ---------------------------------------------------------------------------------------------
// Events

/// Why the serving loop ended an association.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// Its deadline passed: the registrar sent close_notify.
    LifespanOver,
    /// The peer closed it.
    PeerClosed,
    /// No request for the idle timeout: the registrar sent close_notify.
    Idle,
    /// A malformed request (answered 4000, then closed).
    Malformed,
    /// The transport or the session failed.
    Failed(String),
}

/// What the registrar reports for the operator's log. Never carries a key.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegistrarEvent {
    /// An association was established.
    Accepted {
        /// The peer's address, if known.
        peer: Option<SocketAddr>,
        /// What was bound.
        info: AssociationInfo,
    },
    /// A handshake was refused or failed.
    Refused {
        /// TLS or DTLS.
        transport: Transport,
        /// The peer's address, if known.
        peer: Option<SocketAddr>,
        /// The `psk_identity` offered, if the lookup ran.
        identity: Option<String>,
        /// The kind of refusal.
        refusal: Refusal,
        /// The error text.
        error: String,
    },
    /// The serving loop ended an association.
    Closed {
        /// TLS or DTLS.
        transport: Transport,
        /// The peer's address, if known.
        peer: Option<SocketAddr>,
        /// IdA.
        bound_identity: String,
        /// Why.
        reason: CloseReason,
    },
    /// The TCP listener failed to accept (e.g. out of file descriptors); retried after a pause.
    AcceptFailed {
        /// The error text.
        error: String,
    },
}

// ---------------------------------------------------------------------------------------------
// The registrar

/// What the lookup bound (before the handshake completed).
#[derive(Clone, Debug)]
struct Bound {
    framework: Framework,
    peer: String,
    key_id: String,
    psk_key_id: Option<KeyId>,
    key_expires: Option<u64>,
    established_at: u64,
    deadline: Option<u64>,
    /// `deadline - established_at`, for the monotonic timer.
    remaining: Option<Duration>,
}

impl Bound {
    fn info(&self, suite: CipherSuite, transport: Transport) -> AssociationInfo {
        AssociationInfo {
            framework: self.framework,
            bound_identity: self.peer.clone(),
            key_id: self.key_id.clone(),
            suite,
            transport,
            established_at: self.established_at,
            deadline: self.deadline,
            key_expires: self.key_expires,
        }
    }
}

/// What the deferred lookup found.
enum Lookup {
    Found(Bound),
    Failed(LookupFailure),
}

/// What the identity alone says.
enum Classified {
    PreProvisioned(Psk, Bound),
    Maf(KeyId),
    Failed(LookupFailure),
}

struct MafAccess {
    addr: String,
    transport: Transport,
    creds: MafCredentials,
}

/// How the registrar acts as a GBA NAF ([`Registrar::with_gba`]). `Debug` redacts the PSK.
#[derive(Clone)]
pub struct GbaNaf {
    /// The BSF's Zn address (TLS-PSK).
    pub zn_addr: SocketAddr,
    /// The NAF's own PSK identity and PSK at the BSF.
    pub naf_psk: ClientPsk,
    /// The NAF's FQDN (of NAF_Id; the public domain name of the CSE, spec-notes 6.1).
    pub naf_fqdn: String,
    /// Whether GBA_ME clients (prefix `3GPP-bootstrapping`, or a bare B-TID) are accepted.
    pub accept_me: bool,
    /// Whether GBA_U clients (prefix `3GPP-bootstrapping-uicc`, Ks_int_NAF) are accepted.
    pub accept_uicc: bool,
    /// IMPI -> IdA (`otherEntityIdentifier`). Empty: IdA = the IMPI, for any subscriber the
    /// BSF releases a key for; otherwise only the listed IMPIs are accepted.
    pub peers: Vec<(String, String)>,
}

impl fmt::Debug for GbaNaf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GbaNaf")
            .field("zn_addr", &self.zn_addr)
            .field("naf_fqdn", &self.naf_fqdn)
            .field("accept_me", &self.accept_me)
            .field("accept_uicc", &self.accept_uicc)
            .field("peers", &self.peers)
            .finish_non_exhaustive()
    }
}

impl GbaNaf {
    /// The psk_identity_hint this NAF sends: the GBA_ME prefix unless it accepts only GBA_U.
    #[must_use]
    pub fn hint(&self) -> &'static str {
        if self.accept_me || !self.accept_uicc {
            GbaPrefix::Me.as_str()
        } else {
            GbaPrefix::Uicc.as_str()
        }
    }
}

/// A NAF key fetched over Zn, kept until the bootstrapping's lifetime.
struct CachedNafKey {
    key: KsNaf,
    impi: String,
    lifetime: u64,
}

/// Most NAF keys cached at once (expired ones are dropped first, then all).
const MAX_GBA_CACHE: usize = 4096;

type GbaCacheKey = (String, ZnFlavor, u16);

/// Entity B (e.g. an IN-CSE): accepts (D)TLS-PSK associations keyed by a pre-provisioned Kpsa
/// of its [`EndPointConfig`] or by a Kc it retrieves from its MAF, binds each to IdA and
/// reports it; [`bind`](Self::bind) / [`bind_dtls`](Self::bind_dtls) serve associations and
/// close them at their deadline.
pub struct Registrar {
    config: Option<Arc<EndPointConfig>>,
    maf: Option<MafAccess>,
    /// The (D)TLS server configuration and its certificate matcher, built at first use.
    server: OnceLock<(Arc<ServerConfig>, Option<Arc<MatchingVerifier>>)>,
    clock: fn() -> u64,
    handshake_timeout: Duration,
    idle_timeout: Duration,
    max_connections: usize,
    events: Option<mpsc::Sender<RegistrarEvent>>,
    /// DTLS: what the synchronous lookup bound, by identity, until the connection is accepted.
    dtls_bound: Mutex<HashMap<SocketAddr, (Vec<u8>, Bound)>>,
    gba: Option<GbaNaf>,
    gba_cache: Mutex<HashMap<GbaCacheKey, CachedNafKey>>,
    zn_requests: Arc<AtomicU64>,
}

impl fmt::Debug for Registrar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registrar")
            .field("maf_addr", &self.maf.as_ref().map(|m| &m.addr))
            .field("origin", &self.maf.as_ref().map(|m| &m.creds.origin))
            .field(
                "pre_provisioned",
                &self.config.as_ref().map(|c| c.pre_provisioned().len()),
            )
            .finish_non_exhaustive()
    }
}

fn system_unix() -> u64 {
    now().unix.0
}

impl Registrar {
    fn with_parts(config: Option<Arc<EndPointConfig>>, maf: Option<MafAccess>) -> Self {
        Self {
            config,
            maf,
            server: OnceLock::new(),
            clock: system_unix,
            handshake_timeout: HANDSHAKE_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            events: None,
            dtls_bound: Mutex::new(HashMap::new()),
            gba: None,
            gba_cache: Mutex::new(HashMap::new()),
            zn_requests: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Accepts GBA-based associations (draft 8.2.3.2) as the NAF `gba` (see the module
    /// documentation).
    #[must_use]
    pub fn with_gba(mut self, gba: GbaNaf) -> Self {
        self.gba = Some(gba);
        self
    }

    /// A counter of the Zn requests this registrar makes (the NAF-key cache answers repeats);
    /// it stays readable after the registrar moved into its serving task.
    #[must_use]
    pub fn zn_requests(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.zn_requests)
    }

    /// A MAF-only registrar using the MAF at `maf_addr` (`host:port`, TLS) with its own
    /// credentials: no pre-provisioned associations, and any IdA the MAF releases a Kc for is
    /// accepted (no configured peers to check against).
    #[must_use]
    pub fn new(maf_addr: impl Into<String>, creds: MafCredentials) -> Self {
        Self::with_parts(
            None,
            Some(MafAccess {
                addr: maf_addr.into(),
                transport: Transport::Tls,
                creds,
            }),
        )
    }

    /// A registrar for the end-point `config` (typically infrastructure domain): its
    /// pre-provisioned associations, and its MAF-based associations once
    /// [`with_maf`](Self::with_maf) says how to reach the MAF.
    #[must_use]
    pub fn from_config(config: Arc<EndPointConfig>) -> Self {
        Self::with_parts(Some(config), None)
    }

    /// Reaches the configuration's MAF at `maf_addr` over `transport` for Key Retrieval, with
    /// the configured `masterCredential` (KmID, Km, `thisEntityIdentifier` as originator).
    /// `transport` is how B reaches the MAF (`https://` TLS or `coaps://` DTLS), independent
    /// of how Entity A reaches B.
    pub fn with_maf(
        mut self,
        maf_addr: impl Into<String>,
        transport: Transport,
    ) -> Result<Self, RegistrarConfigError> {
        let cred = self
            .config
            .as_ref()
            .and_then(|c| c.maf_credential())
            .ok_or(RegistrarConfigError::NoMafCredential)?;
        let master = cred.master();
        let creds = MafCredentials {
            maf_fqdn: cred.maf_identifier().as_str().to_owned(),
            psk_identity: master.master_credential_identifier().as_str().to_owned(),
            key: master.master_credential().clone(),
            origin: master.this_entity_identifier().as_str().to_owned(),
        };
        self.maf = Some(MafAccess {
            addr: maf_addr.into(),
            transport,
            creds,
        });
        Ok(self)
    }

    /// Replaces the clock (Unix seconds) expiries and deadlines are computed with.
    #[must_use]
    pub fn with_clock(mut self, clock: fn() -> u64) -> Self {
        self.clock = clock;
        self
    }

    /// Bounds each handshake, the key lookup included (default [`HANDSHAKE_TIMEOUT`]).
    #[must_use]
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Closes a served association after this long without a request (default
    /// [`DEFAULT_IDLE_TIMEOUT`]).
    #[must_use]
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Serves at most `max` connections / sessions at once (at least one).
    #[must_use]
    pub fn with_max_connections(mut self, max: usize) -> Self {
        self.max_connections = max.max(1);
        self
    }

    /// Reports [`RegistrarEvent`]s to `events` (dropped, not awaited, when the channel is full).
    #[must_use]
    pub fn with_events(mut self, events: mpsc::Sender<RegistrarEvent>) -> Self {
        self.events = Some(events);
        self
    }

    fn emit(&self, event: RegistrarEvent) {
        if let Some(tx) = &self.events {
            let _ = tx.try_send(event);
        }
    }

    fn refused(
        &self,
        transport: Transport,
        peer: Option<SocketAddr>,
        identity: Option<&[u8]>,
        refusal: Refusal,
        error: String,
    ) {
        let identity = identity.map(|i| String::from_utf8_lossy(i).into_owned());
        tracing::warn!(%transport, ?peer, ?identity, ?refusal, %error, "association refused");
        self.emit(RegistrarEvent::Refused {
            transport,
            peer,
            identity,
            refusal,
            error,
        });
    }

    fn accepted(&self, peer: Option<SocketAddr>, info: &AssociationInfo) {
        tracing::info!(
            transport = %info.transport,
            ?peer,
            framework = ?info.framework,
            bound_identity = %info.bound_identity,
            key_id = %info.key_id.as_str(),
            deadline = ?info.deadline,
            "association accepted"
        );
        self.emit(RegistrarEvent::Accepted {
            peer,
            info: info.clone(),
        });
    }

    fn closed(
        &self,
        transport: Transport,
        peer: Option<SocketAddr>,
        bound_identity: &str,
        reason: CloseReason,
    ) {
        tracing::info!(%transport, ?peer, %bound_identity, ?reason, "association closed");
        self.emit(RegistrarEvent::Closed {
            transport,
            peer,
            bound_identity: bound_identity.to_owned(),
            reason,
        });
    }

    // -----------------------------------------------------------------------------------------
    // Server configuration and certificate-based associations

    /// The (D)TLS server configuration: the PSK suites (keys looked up per handshake) and,
    /// when the end-point has a certificate credential, the ECDHE-ECDSA suites with mutual
    /// authentication (`ClientAuth::Required`, X.509 or raw public key clients) whose client
    /// certificates a [`MatchingVerifier`] over the Certificate-Based associations checks.
    fn server(&self) -> &(Arc<ServerConfig>, Option<Arc<MatchingVerifier>>) {
        self.server.get_or_init(|| {
            let certificate = self.config.as_ref().and_then(|c| {
                c.certificate()
                    .map(|k| (Arc::clone(c), k.certified_key().clone()))
            });
            let hint = self.gba.as_ref().map(GbaNaf::hint);
            let Some((config, key)) = certificate else {
                if let Some(h) = hint {
                    let tls = ServerConfig::builder(Box::new(DeferAll))
                        .suites(CipherSuite::ALL)
                        .identity_hint(Some(h.as_bytes()))
                        .build()
                        .expect("a deferring TLS-PSK server configuration is valid");
                    return (Arc::new(tls), None);
                }
                return (server_tls(), None);
            };
            let clock = self.clock;
            let verifier = Arc::new(MatchingVerifier::new(move |peer, now| {
                config.match_certificate_association(peer, now, UnixTime(clock()))
            }));
            let suites: Vec<CipherSuite> = CipherSuite::ALL
                .iter()
                .chain(CipherSuite::ECDHE_ECDSA)
                .copied()
                .collect();
            let tls = ServerConfig::builder(Box::new(DeferAll))
                .suites(&suites)
                .certificate(key)
                .verifier(verifier.clone())
                .client_auth(ClientAuth::Required)
                .client_certificate_types(&[CertificateType::X509, CertificateType::RawPublicKey])
                .identity_hint(hint.map(str::as_bytes))
                .build()
                .expect("a PSK + ECDHE-ECDSA server configuration with a credential is valid");
            (Arc::new(tls), Some(verifier))
        })
    }

    /// What a completed certificate-based handshake is bound to: the association the
    /// verifier matched (IdA = its `otherEntityIdentifier`), checked again against
    /// `associationConfigurationExpiry`, with its lifespan.
    fn certificate_bound(&self, info: &SessionInfo) -> Result<Bound, LookupFailure> {
        let peer = info
            .peer_certificate
            .as_ref()
            .ok_or(LookupFailure::NoCertificateMatch)?;
        let entry = self
            .server()
            .1
            .as_ref()
            .and_then(|v| v.take(peer))
            .and_then(|i| self.config.as_ref()?.certificate_associations().get(i))
            .ok_or(LookupFailure::NoCertificateMatch)?;
        let assoc = entry.association();
        assoc
            .check_usable(UnixTime((self.clock)()))
            .map_err(LookupFailure::AssociationExpired)?;
        Ok(self.bound(
            Framework::CertificateBased,
            assoc.other_entity_identifier().as_str().to_owned(),
            Err(key_identifier_of(peer)),
            assoc.security_association_lifespan().map(|l| l.as_secs()),
            None,
        ))
    }

    // -----------------------------------------------------------------------------------------
    // Key lookup

    /// A bound association established now under a configuration entry's lifespan and, for a
    /// Kc, its expiry.
    fn bound(
        &self,
        framework: Framework,
        peer: String,
        key_id: Result<KeyId, String>,
        lifespan: Option<u64>,
        key_expires: Option<u64>,
    ) -> Bound {
        let (key_id, psk_key_id) = match key_id {
            Ok(k) => (k.as_str().to_owned(), Some(k)),
            Err(text) => (text, None),
        };
        let now = (self.clock)();
        let by_lifespan = lifespan.map(|l| now.saturating_add(l));
        let deadline = match (by_lifespan, key_expires) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Bound {
            framework,
            peer,
            key_id,
            psk_key_id,
            key_expires,
            established_at: now,
            deadline,
            remaining: deadline.map(|d| Duration::from_secs(d.saturating_sub(now))),
        }
    }

    fn classify(&self, identity: &[u8]) -> Classified {
        let now = (self.clock)();
        if let Some(config) = &self.config {
            if let Ok(id) = KeyId::parse_bytes(IdKind::Kpsa, identity) {
                if let Some(entry) = config.pre_provisioned_by_kpsa_id(&id) {
                    let assoc = entry.association();
                    if let Err(e) = assoc.check_usable(UnixTime(now)) {
                        return Classified::Failed(LookupFailure::AssociationExpired(e));
                    }
                    let bound = self.bound(
                        Framework::PreProvisioned,
                        assoc.other_entity_identifier().as_str().to_owned(),
                        Ok(entry.credential().kpsa_id().clone()),
                        assoc.security_association_lifespan().map(|l| l.as_secs()),
                        None,
                    );
                    return Classified::PreProvisioned(
                        entry.credential().kpsa_key().to_psk(),
                        bound,
                    );
                }
            }
        }
        let not_found = || {
            Classified::Failed(if self.config.is_some() {
                LookupFailure::UnknownIdentity
            } else {
                LookupFailure::NotMafIdentity
            })
        };
        let Some(maf) = &self.maf else {
            return not_found();
        };
        match KeyId::parse_bytes(IdKind::Kc, identity) {
            Ok(kc_id) if kc_id.fqdn().eq_ignore_ascii_case(&maf.creds.maf_fqdn) => {
                Classified::Maf(kc_id)
            }
            _ => not_found(),
        }
    }

    /// The checks of a retrieved Kc: not expired, its source a configured, usable peer.
    fn maf_outcome(
        &self,
        kc_id: KeyId,
        retrieved: Result<(Kc, String, u64), MafClientError>,
    ) -> (Option<Psk>, Lookup) {
        let fail = |f| (None, Lookup::Failed(f));
        let (kc, peer, expires) = match retrieved {
            Ok(r) => r,
            Err(e) => return fail(LookupFailure::Retrieval(e)),
        };
        let now = (self.clock)();
        if expires <= now {
            return fail(LookupFailure::Expired);
        }
        let mut lifespan = None;
        if let Some(config) = &self.config {
            let assoc = EntityId::new(&peer)
                .ok()
                .and_then(|id| config.maf_association_with(&id));
            let Some(assoc) = assoc else {
                return fail(LookupFailure::NotConfiguredPeer(peer));
            };
            if let Err(e) = assoc.check_usable(UnixTime(now)) {
                return fail(LookupFailure::AssociationExpired(e));
            }
            lifespan = assoc.security_association_lifespan().map(|l| l.as_secs());
        }
        let bound = self.bound(
            Framework::MafBased,
            peer,
            Ok(kc_id),
            lifespan,
            Some(expires),
        );
        (Some(kc.to_psk()), Lookup::Found(bound))
    }

    /// The DTLS listener's key lookup: records the binding for `peer` until the connection is
    /// accepted (bounded: one entry per handshaking peer of the listener's session table).
    async fn dtls_lookup(
        &self,
        identity: Vec<u8>,
        suite: CipherSuite,
        peer: SocketAddr,
    ) -> Option<Psk> {
        match self.lookup(&identity, suite).await {
            (Some(psk), Lookup::Found(bound)) => {
                if let Ok(mut m) = self.dtls_bound.lock() {
                    m.insert(peer, (identity, bound));
                }
                Some(psk)
            }
            (_, Lookup::Failed(f)) => {
                let error = f.to_string();
                self.refused(
                    Transport::Dtls,
                    Some(peer),
                    Some(&identity),
                    f.refusal(),
                    error,
                );
                None
            }
            (None, Lookup::Found(_)) => None,
        }
    }

    async fn lookup(&self, identity: &[u8], suite: CipherSuite) -> (Option<Psk>, Lookup) {
        match self.classify(identity) {
            Classified::PreProvisioned(psk, bound) => (Some(psk), Lookup::Found(bound)),
            Classified::Failed(LookupFailure::UnknownIdentity | LookupFailure::NotMafIdentity)
                if self.gba.is_some() && gba_identity(identity).is_some() =>
            {
                match self.gba_lookup(identity, suite).await {
                    Ok((psk, bound)) => (Some(psk), Lookup::Found(bound)),
                    Err(f) => (None, Lookup::Failed(f)),
                }
            }
            Classified::Failed(f) => (None, Lookup::Failed(f)),
            Classified::Maf(kc_id) => {
                let Some(maf) = &self.maf else {
                    return (None, Lookup::Failed(LookupFailure::UnknownIdentity));
                };
                let retrieved = match maf.transport {
                    Transport::Tls => {
                        retrieve_key(maf.addr.as_str(), &maf.creds, kc_id.relative()).await
                    }
                    Transport::Dtls => match tokio::net::lookup_host(maf.addr.as_str())
                        .await
                        .ok()
                        .and_then(|mut a| a.next())
                    {
                        Some(addr) => {
                            retrieve_key_via(addr, Transport::Dtls, &maf.creds, kc_id.relative())
                                .await
                        }
                        None => Err(MafClientError::Transport(Error::Io(io::Error::new(
                            io::ErrorKind::NotFound,
                            format!("{}: no address", maf.addr),
                        )))),
                    },
                };
                self.maf_outcome(kc_id, retrieved)
            }
        }
    }

    /// GBA (8.2.3.2): the NAF key of the client's B-TID for the negotiated suite, from the
    /// cache or over Zn, and what it binds.
    async fn gba_lookup(
        &self,
        identity: &[u8],
        suite: CipherSuite,
    ) -> Result<(Psk, Bound), LookupFailure> {
        let gba = self.gba.as_ref().ok_or(LookupFailure::UnknownIdentity)?;
        let (prefix, btid) = gba_identity(identity).ok_or(LookupFailure::UnknownIdentity)?;
        let flavour = match prefix {
            Some(GbaPrefix::Uicc) if !gba.accept_uicc => {
                return Err(LookupFailure::GbaWrongFlavour(
                    "GBA_U (3GPP-bootstrapping-uicc)",
                ))
            }
            Some(GbaPrefix::Me) if !gba.accept_me => {
                return Err(LookupFailure::GbaWrongFlavour(
                    "GBA_ME (3GPP-bootstrapping)",
                ))
            }
            Some(GbaPrefix::Uicc) => ZnFlavor::Uicc,
            Some(GbaPrefix::Me) => ZnFlavor::Me,
            // A bare B-TID (published oneM2M): GBA_ME when accepted, else GBA_U.
            None if gba.accept_me => ZnFlavor::Me,
            None if gba.accept_uicc => ZnFlavor::Uicc,
            None => return Err(LookupFailure::GbaWrongFlavour("GBA")),
        };
        let now = (self.clock)();
        let cache_key: GbaCacheKey = (btid.as_str().to_owned(), flavour, suite.code());
        let cached = self.gba_cache.lock().ok().and_then(|c| {
            c.get(&cache_key)
                .map(|k| (k.key.clone(), k.impi.clone(), k.lifetime))
        });
        let (key, impi, lifetime) = match cached {
            Some((_, _, lifetime)) if lifetime <= now => {
                if let Ok(mut c) = self.gba_cache.lock() {
                    c.remove(&cache_key);
                }
                return Err(LookupFailure::GbaExpired(btid.as_str().to_owned()));
            }
            Some(k) => k,
            None => {
                let naf_id = NafId::tls_psk(&gba.naf_fqdn, suite.code())
                    .map_err(|_| LookupFailure::GbaNafNotAllowed("invalid NAF FQDN".into()))?;
                self.zn_requests.fetch_add(1, Ordering::Relaxed);
                let z = zn_fetch(gba.zn_addr, gba.naf_psk.clone(), &btid, &naf_id, flavour)
                    .await
                    .map_err(|e| match e {
                        ZnError::Refused {
                            rsc: Rsc::NotFound, ..
                        } => LookupFailure::GbaUnknownBTid(btid.as_str().to_owned()),
                        ZnError::Refused {
                            rsc: Rsc::NoPrivilege,
                            error,
                        } => LookupFailure::GbaNafNotAllowed(error.unwrap_or_default()),
                        ZnError::Malformed(m) if m.contains("lifetime") => {
                            LookupFailure::GbaExpired(btid.as_str().to_owned())
                        }
                        e => LookupFailure::Zn(e),
                    })?;
                let lifetime = z.lifetime.0;
                if lifetime <= now {
                    return Err(LookupFailure::GbaExpired(btid.as_str().to_owned()));
                }
                if let Ok(mut c) = self.gba_cache.lock() {
                    if c.len() >= MAX_GBA_CACHE {
                        c.retain(|_, v| v.lifetime > now);
                        if c.len() >= MAX_GBA_CACHE {
                            c.clear();
                        }
                    }
                    c.insert(
                        cache_key,
                        CachedNafKey {
                            key: z.key.clone(),
                            impi: z.impi.clone(),
                            lifetime,
                        },
                    );
                }
                (z.key, z.impi, lifetime)
            }
        };
        let peer = if gba.peers.is_empty() {
            impi
        } else {
            gba.peers
                .iter()
                .find(|(i, _)| *i == impi)
                .map(|(_, id)| id.clone())
                .ok_or(LookupFailure::NotConfiguredPeer(impi))?
        };
        let psk = Psk::new(key.expose()).map_err(|_| LookupFailure::UnknownIdentity)?;
        let bound = self.bound(
            Framework::GbaBased,
            peer,
            Err(btid.as_str().to_owned()),
            None,
            Some(lifetime),
        );
        Ok((psk, bound))
    }

    // -----------------------------------------------------------------------------------------
    // Accepting over TLS

    /// Accepts one TLS association over `io`.
    pub async fn accept<T>(&self, io: T) -> Result<Association<T>, RegistrarError>
    where
        T: AsyncRead + AsyncWrite + Unpin,
    {
        self.accept_from(io, None).await
    }

    async fn accept_from<T>(
        &self,
        io: T,
        peer: Option<SocketAddr>,
    ) -> Result<Association<T>, RegistrarError>
    where
        T: AsyncRead + AsyncWrite + Unpin,
    {
        let outcome: Mutex<Option<(Vec<u8>, Lookup)>> = Mutex::new(None);
        let lookup = |request: PskRequest| {
            let outcome = &outcome;
            async move {
                let identity = request.identity;
                let (psk, result) = self.lookup(&identity, request.suite).await;
                if let Ok(mut slot) = outcome.lock() {
                    *slot = Some((identity, result));
                }
                psk
            }
        };
        let handshake = accept_with_request(io, self.server().0.clone(), Some(lookup));
        let handshake = tokio::time::timeout(self.handshake_timeout, handshake)
            .await
            .unwrap_or_else(|_| Err(timed_out()));
        let started = Instant::now();
        let mut outcome = outcome.into_inner().ok().flatten();
        if let Ok(stream) = &handshake {
            if stream.info().suite.is_ecdhe_ecdsa() {
                outcome = Some((
                    Vec::new(),
                    match self.certificate_bound(stream.info()) {
                        Ok(bound) => Lookup::Found(bound),
                        Err(f) => Lookup::Failed(f),
                    },
                ));
            }
        }
        let identity = outcome
            .as_ref()
            .map(|(i, _)| i.clone())
            .filter(|i| !i.is_empty());
        let result = match (handshake, outcome.map(|(_, l)| l)) {
            (Ok(stream), Some(Lookup::Found(bound))) => {
                let info = bound.info(stream.info().suite, Transport::Tls);
                self.accepted(peer, &info);
                return Ok(Association {
                    stream,
                    peer_id: bound.peer,
                    kc_id: bound.psk_key_id,
                    expires: bound.key_expires.unwrap_or(u64::MAX),
                    info,
                    close_at: bound.remaining.map(|r| started + r),
                });
            }
            (Ok(mut stream), Some(Lookup::Failed(f))) => {
                // A certificate-based handshake completed that no usable association claims.
                let _ = stream.shutdown().await;
                RegistrarError::Handshake {
                    tls: m2msec::Error::Certificate(CertError::Refused).into(),
                    retrieval: Some(f),
                }
            }
            (Ok(_), _) => RegistrarError::Handshake {
                tls: m2msec::Error::UnknownPskIdentity.into(),
                retrieval: None,
            },
            (Err(tls), outcome) => RegistrarError::Handshake {
                tls,
                retrieval: match outcome {
                    Some(Lookup::Failed(f)) => Some(f),
                    _ => None,
                },
            },
        };
        self.refused(
            Transport::Tls,
            peer,
            identity.as_deref(),
            result.refusal(),
            result.to_string(),
        );
        Err(result)
    }

    // -----------------------------------------------------------------------------------------
    // Serving

    /// Binds a TCP listener on `addr` and serves TLS associations in a background task; see
    /// [`RegistrarHandle`].
    pub async fn bind(self, addr: impl ToSocketAddrs) -> io::Result<RegistrarHandle> {
        let listener = TcpListener::bind(addr).await?;
        Ok(self.spawn(listener))
    }

    /// Serves TLS associations from `listener` in a background task.
    pub fn spawn(self, listener: TcpListener) -> RegistrarHandle {
        let local_addr = listener.local_addr().ok();
        let this = Arc::new(self);
        ServiceHandle::spawn(local_addr, move |stop| this.serve(listener, stop))
    }

    /// Binds a DTLS listener (`coaps://`) on `addr` and serves associations in a background
    /// task; see [`RegistrarHandle`]. The listener's handshake timeout is the registrar's.
    pub async fn bind_dtls(self, addr: impl ToSocketAddrs) -> Result<RegistrarHandle, Error> {
        let this = Arc::new(self);
        let config = Arc::clone(&this.server().0);
        let lookup: AsyncPskRequestLookup = {
            let this = Arc::clone(&this);
            Arc::new(move |r: PskRequest| {
                let this = Arc::clone(&this);
                let peer = r
                    .peer
                    .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
                Box::pin(async move { this.dtls_lookup(r.identity, r.suite, peer).await })
            })
        };
        let options = DtlsListenerOptions {
            max_sessions: this.max_connections,
            handshake_timeout: this.handshake_timeout,
            // The serving loop enforces its own idle timeout and the deadlines.
            idle_timeout: None,
            ..DtlsListenerOptions::default()
        };
        let listener =
            DtlsListener::bind_with_request_lookup(addr, config, DTLS_MTU, options, lookup).await?;
        let local_addr = Some(listener.local_addr());
        Ok(ServiceHandle::spawn(local_addr, move |stop| {
            this.serve_dtls(listener, stop)
        }))
    }

    /// Accepts TLS connections from `listener` until `stop` turns true (or its sender is
    /// dropped), each in its own task; then ends those tasks and returns.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        stop: watch::Receiver<bool>,
    ) -> io::Result<()> {
        let max = self.max_connections;
        let this = Arc::clone(&self);
        let serve = move |tcp, peer| {
            let this = Arc::clone(&this);
            async move { this.serve_tcp(tcp, peer).await }
        };
        let failed = |e: &io::Error| {
            tracing::warn!(error = %e, "registrar accept failed");
            self.emit(RegistrarEvent::AcceptFailed {
                error: e.to_string(),
            });
        };
        super::serve::tcp(listener, stop, max, serve, failed).await
    }

    async fn serve_tcp(&self, tcp: TcpStream, peer: SocketAddr) {
        let _ = tcp.set_nodelay(true);
        let Ok(assoc) = self.accept_from(tcp, Some(peer)).await else {
            return; // reported
        };
        let bound = assoc.info.bound_identity.clone();
        let reason = self.tls_requests(assoc).await;
        self.closed(Transport::Tls, Some(peer), &bound, reason);
    }

    /// Answers requests on an established TLS association until it ends.
    async fn tls_requests(&self, assoc: Association<TcpStream>) -> CloseReason {
        let Association {
            mut stream,
            info,
            close_at,
            ..
        } = assoc;
        let mut buf = Zeroizing::new(Vec::with_capacity(READ_CHUNK));
        let mut chunk = Zeroizing::new([0u8; READ_CHUNK]);
        let mut idle = Instant::now() + self.idle_timeout;
        loop {
            match Request::decode(&buf) {
                Ok(Some((req, used))) => {
                    buf.drain(..used);
                    let out = encode(&answer(&info, &req));
                    if let Err(e) = write_all(&mut stream, &out).await {
                        return CloseReason::Failed(e.to_string());
                    }
                    idle = Instant::now() + self.idle_timeout;
                    continue;
                }
                Ok(None) if buf.len() <= MAX_HEAD + MAX_BODY => {}
                Ok(None) | Err(_) => {
                    let _ = write_all(&mut stream, &encode(&malformed())).await;
                    let _ = stream.shutdown().await;
                    return CloseReason::Malformed;
                }
            }
            let end = close_at.map_or(idle, |d| d.min(idle));
            let read = tokio::time::timeout_at(end, stream.read(chunk.as_mut())).await;
            match read {
                Err(_) => {
                    // Deadline or idle: close_notify, best effort.
                    let _ = stream.shutdown().await;
                    return if close_at.is_some_and(|d| Instant::now() >= d) {
                        CloseReason::LifespanOver
                    } else {
                        CloseReason::Idle
                    };
                }
                Ok(Ok(0)) => {
                    let _ = stream.shutdown().await;
                    return CloseReason::PeerClosed;
                }
                Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
                Ok(Err(e)) => return CloseReason::Failed(Error::from(e).to_string()),
            }
        }
    }

    /// Like [`serve`](Self::serve), over DTLS: one request per record.
    async fn serve_dtls(
        self: Arc<Self>,
        listener: DtlsListener,
        stop: watch::Receiver<bool>,
    ) -> io::Result<()> {
        let max = self.max_connections;
        let this = Arc::clone(&self);
        let serve = move |conn| {
            let this = Arc::clone(&this);
            async move { this.serve_dtls_connection(conn).await }
        };
        let failed = |peer, error: Error, identity: Option<Vec<u8>>| {
            // A refused lookup was reported by the lookup itself.
            if !matches!(error, Error::Tls(m2msec::Error::UnknownPskIdentity)) {
                let refusal = refusal_of(&error);
                self.refused(
                    Transport::Dtls,
                    Some(peer),
                    identity.as_deref(),
                    refusal,
                    error.to_string(),
                );
            }
        };
        super::serve::dtls(listener, stop, max, serve, failed).await
    }

    async fn serve_dtls_connection(&self, conn: DtlsConnection) {
        let started = Instant::now();
        let peer = conn.peer_addr();
        let identity = conn.info().psk_identity.clone();
        let bound = if conn.info().suite.is_ecdhe_ecdsa() {
            match self.certificate_bound(conn.info()) {
                Ok(b) => Some((Vec::new(), b)),
                Err(f) => {
                    self.refused(
                        Transport::Dtls,
                        Some(peer),
                        None,
                        f.refusal(),
                        f.to_string(),
                    );
                    let _ = conn.close().await;
                    return;
                }
            }
        } else {
            self.dtls_bound
                .lock()
                .ok()
                .and_then(|mut m| m.remove(&peer))
                .filter(|(id, _)| *id == identity)
        };
        let Some((_, bound)) = bound else {
            self.refused(
                Transport::Dtls,
                Some(peer),
                Some(&identity),
                Refusal::HandshakeFailed,
                "no binding recorded for the peer".to_owned(),
            );
            let _ = conn.close().await;
            return;
        };
        let info = bound.info(conn.info().suite, Transport::Dtls);
        self.accepted(Some(peer), &info);
        let close_at = bound.remaining.map(|r| started + r);
        let reason = self.dtls_requests(&conn, &info, close_at).await;
        self.closed(Transport::Dtls, Some(peer), &info.bound_identity, reason);
    }

    async fn dtls_requests(
        &self,
        conn: &DtlsConnection,
        info: &AssociationInfo,
        close_at: Option<Instant>,
    ) -> CloseReason {
        let mut buf = Zeroizing::new(vec![0u8; DTLS_RECV_BUF]);
        loop {
            let idle = Instant::now() + self.idle_timeout;
            let end = close_at.map_or(idle, |d| d.min(idle));
            let n = match tokio::time::timeout_at(end, conn.recv(&mut buf)).await {
                Err(_) => {
                    let _ = conn.close().await;
                    return if close_at.is_some_and(|d| Instant::now() >= d) {
                        CloseReason::LifespanOver
                    } else {
                        CloseReason::Idle
                    };
                }
                Ok(Ok(0)) => {
                    let _ = conn.close().await;
                    return CloseReason::PeerClosed;
                }
                Ok(Ok(n)) => n,
                Ok(Err(e)) => return CloseReason::Failed(e.to_string()),
            };
            // Exactly one whole request per record; the procedure is idempotent, so a
            // retransmitted request is simply answered again.
            let (response, close) = match Request::decode(&buf[..n]) {
                Ok(Some((req, used))) if used == n => (answer(info, &req), false),
                _ => (malformed(), true),
            };
            if let Err(e) = conn.send(&encode(&response)).await {
                return CloseReason::Failed(e.to_string());
            }
            if close {
                let _ = conn.close().await;
                return CloseReason::Malformed;
            }
        }
    }
}

/// The response to one request on an association.
fn answer(info: &AssociationInfo, req: &Request) -> Response {
    let refuse = |rsc: Rsc, error: &str| Response {
        rsc,
        request_id: req.request_id.clone(),
        body: to_body(&ErrorBody {
            error: error.to_owned(),
            parameter: None,
        })
        .unwrap_or_default(),
    };
    match Route::of(req.method, &req.path) {
        Ok(Route::RegistrarAssociation) => {
            if req.origin != info.bound_identity {
                return refuse(
                    Rsc::NoPrivilege,
                    "X-M2M-Origin is not the identity bound to the association",
                );
            }
            Response {
                rsc: Rsc::Ok,
                request_id: req.request_id.clone(),
                body: to_body(&info.to_response()).unwrap_or_default(),
            }
        }
        _ => refuse(Rsc::NotFound, "unknown procedure"),
    }
}

fn malformed() -> Response {
    Response {
        rsc: Rsc::BadRequest,
        request_id: "-".to_owned(),
        body: to_body(&ErrorBody {
            error: "malformed request".to_owned(),
            parameter: None,
        })
        .unwrap_or_default(),
    }
}

fn encode(response: &Response) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::new());
    if response.encode(&mut out).is_err() {
        // Only a request id with forbidden bytes gets here (the decoder refuses them).
        out.clear();
        malformed().encode(&mut out).ok();
    }
    out
}

async fn write_all<S: AsyncRead + AsyncWrite + Unpin>(
    tls: &mut TlsStream<S>,
    out: &[u8],
) -> io::Result<()> {
    tls.write_all(out).await?;
    tls.flush().await
}

/// A running registrar: its address, and the way to stop it (the MEF's and MAF's
/// [`ServiceHandle`]).
pub type RegistrarHandle = ServiceHandle;

// ---------------------------------------------------------------------------------------------
// Entity A

/// Why Entity A's association or its request failed. Carries no secret.
#[derive(Debug)]
#[non_exhaustive]
pub enum AssociateError {
    /// The handshake, the session or the transport failed (e.g. `AlertReceived(BadRecordMac)`
    /// for a wrong key, `AlertReceived(UnknownPskIdentity)` for a refused identity).
    Transport(Error),
    /// The registrar refused the request.
    Refused {
        /// The response status code.
        rsc: Rsc,
        /// The registrar's error text, if its body had one.
        error: Option<String>,
    },
    /// The response does not follow the binding.
    Malformed(String),
    /// The association ended before a complete response.
    Closed,
    /// The caller's parameters cannot form an association (e.g. no address).
    BadParameter(&'static str),
}

impl fmt::Display for AssociateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Transport(e) => fmt::Display::fmt(e, f),
            Self::Refused { rsc, error } => {
                write!(f, "the registrar refused with {}", rsc.code())?;
                if let Some(e) = error {
                    write!(f, ": {e}")?;
                }
                Ok(())
            }
            Self::Malformed(w) => write!(f, "malformed registrar response: {w}"),
            Self::Closed => f.write_str("the association ended before a response"),
            Self::BadParameter(p) => write!(f, "invalid parameter {p}"),
        }
    }
}

impl std::error::Error for AssociateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Transport(e) => Some(e),
            _ => None,
        }
    }
}

impl From<Error> for AssociateError {
    fn from(e: Error) -> Self {
        Self::Transport(e)
    }
}

impl From<io::Error> for AssociateError {
    fn from(e: io::Error) -> Self {
        Self::Transport(e.into())
    }
}

impl From<m2msec::Error> for AssociateError {
    fn from(e: m2msec::Error) -> Self {
        Self::Transport(e.into())
    }
}

enum Conn {
    Tls(Box<TlsStream<TcpStream>>),
    Dtls(Box<DtlsConnection>),
}

/// Entity A's established association with a registrar, over TLS or DTLS.
pub struct RegistrarConnection {
    conn: Conn,
    /// TLS: bytes of a following message.
    buf: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for RegistrarConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistrarConnection")
            .field("transport", &self.transport())
            .field("info", self.info())
            .finish_non_exhaustive()
    }
}

impl RegistrarConnection {
    /// TLS or DTLS.
    #[must_use]
    pub fn transport(&self) -> Transport {
        match self.conn {
            Conn::Tls(_) => Transport::Tls,
            Conn::Dtls(_) => Transport::Dtls,
        }
    }

    /// What the handshake established (suite, identity, ...).
    #[must_use]
    pub fn info(&self) -> &SessionInfo {
        match &self.conn {
            Conn::Tls(t) => t.info(),
            Conn::Dtls(d) => d.info(),
        }
    }

    /// Asks the registrar what it bound to this association (`GET /registrar/association`),
    /// as originator `origin` (this entity's CSE-ID / AE-ID: the registrar answers only to the
    /// identity it bound, 4103 otherwise).
    pub async fn association_info(
        &mut self,
        origin: &str,
    ) -> Result<AssociationInfoResponse, AssociateError> {
        let (method, path) = Route::RegistrarAssociation.target();
        debug_assert_eq!(method, Method::Get);
        let req = Request {
            method,
            path,
            origin: origin.to_owned(),
            request_id: request_id(),
            body: Zeroizing::new(Vec::new()),
        };
        let mut out = Zeroizing::new(Vec::new());
        req.encode(&mut out)
            .map_err(|_| AssociateError::BadParameter("origin"))?;
        let response = match &mut self.conn {
            Conn::Tls(tls) => {
                write_all(tls, &out).await?;
                read_response(tls, &mut self.buf).await?
            }
            Conn::Dtls(conn) => exchange_dtls(conn, &out, &req.request_id).await?,
        };
        if response.request_id != req.request_id && response.request_id != "-" {
            return Err(AssociateError::Malformed("X-M2M-RI not echoed".into()));
        }
        if response.rsc != Rsc::Ok {
            let body: Option<ErrorBody> = from_body(&response.body).ok();
            return Err(AssociateError::Refused {
                rsc: response.rsc,
                error: body.map(|b| b.error),
            });
        }
        from_body(&response.body).map_err(|e| AssociateError::Malformed(e.to_string()))
    }

    /// Waits until the registrar closes the association (close_notify), discarding any data:
    /// `Ok` on a clean close, the error otherwise.
    pub async fn wait_closed(&mut self) -> Result<(), AssociateError> {
        match &mut self.conn {
            Conn::Tls(tls) => {
                let mut chunk = Zeroizing::new([0u8; READ_CHUNK]);
                while tls.read(chunk.as_mut()).await? != 0 {}
                Ok(())
            }
            Conn::Dtls(conn) => {
                let mut buf = Zeroizing::new(vec![0u8; DTLS_RECV_BUF]);
                while conn.recv(&mut buf).await? != 0 {}
                Ok(())
            }
        }
    }

    /// Sends close_notify and ends the association.
    pub async fn close(self) -> Result<(), AssociateError> {
        match self.conn {
            Conn::Tls(mut tls) => Ok(tls.shutdown().await?),
            Conn::Dtls(conn) => Ok(conn.close().await?),
        }
    }
}

async fn read_response(
    tls: &mut TlsStream<TcpStream>,
    buf: &mut Zeroizing<Vec<u8>>,
) -> Result<Response, AssociateError> {
    let mut chunk = Zeroizing::new([0u8; READ_CHUNK]);
    loop {
        match Response::decode(buf) {
            Ok(Some((response, used))) => {
                buf.drain(..used);
                return Ok(response);
            }
            Ok(None) => {}
            Err(e) => return Err(AssociateError::Malformed(e.to_string())),
        }
        let n = tls.read(chunk.as_mut()).await?;
        if n == 0 {
            return Err(AssociateError::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_HEAD + MAX_BODY {
            return Err(AssociateError::Malformed("response too large".into()));
        }
    }
}

/// Sends one request record, retransmitting after 1 s, doubling, up to 5 times.
async fn exchange_dtls(
    conn: &DtlsConnection,
    out: &[u8],
    request_id: &str,
) -> Result<Response, AssociateError> {
    let mut buf = Zeroizing::new(vec![0u8; DTLS_RECV_BUF]);
    let mut wait = Duration::from_secs(1);
    for _ in 0..=DTLS_RETRANSMISSIONS {
        conn.send(out).await?;
        let deadline = Instant::now() + wait;
        loop {
            let n = match tokio::time::timeout_at(deadline, conn.recv(&mut buf)).await {
                Ok(r) => r?,
                Err(_) => break,
            };
            if n == 0 {
                return Err(AssociateError::Closed);
            }
            match Response::decode(&buf[..n]) {
                Ok(Some((r, _))) if r.request_id == request_id || r.request_id == "-" => {
                    return Ok(r)
                }
                // A late answer to an earlier request: keep waiting.
                Ok(Some(_)) => {}
                Ok(None) => return Err(AssociateError::Malformed("truncated response".into())),
                Err(e) => return Err(AssociateError::Malformed(e.to_string())),
            }
        }
        wait *= 2;
    }
    Err(AssociateError::Transport(timed_out()))
}

fn request_id() -> String {
    let mut rnd = [0u8; 8];
    // An unpredictable request id is not a security property; fall back to the clock.
    if getrandom::getrandom(&mut rnd).is_err() {
        rnd = now().unix.0.to_be_bytes();
    }
    hex::encode(rnd)
}

/// Opens an association to the registrar at `addr` over `transport` with `psk_identity =
/// key_id`, `psk = psk`. The handshake is bounded by [`HANDSHAKE_TIMEOUT`].
async fn associate_with(
    addr: impl ToSocketAddrs,
    transport: Transport,
    key_id: &KeyId,
    psk: Psk,
) -> Result<RegistrarConnection, AssociateError> {
    let psk = ClientPsk::new(key_id.as_bytes(), psk).map_err(m2msec::Error::from)?;
    let config = Arc::new(
        ClientConfig::builder(psk)
            .suites(CipherSuite::ALL)
            .build()
            .map_err(m2msec::Error::from)?,
    );
    connect_registrar(addr, transport, config).await
}

/// Opens an association with `config` (bounded by [`HANDSHAKE_TIMEOUT`]).
async fn connect_registrar(
    addr: impl ToSocketAddrs,
    transport: Transport,
    config: Arc<ClientConfig>,
) -> Result<RegistrarConnection, AssociateError> {
    let addr = tokio::net::lookup_host(addr)
        .await?
        .next()
        .ok_or(AssociateError::BadParameter("addr"))?;
    let handshake = async {
        Ok::<_, AssociateError>(match transport {
            Transport::Tls => {
                let tcp = TcpStream::connect(addr).await?;
                let _ = tcp.set_nodelay(true);
                Conn::Tls(Box::new(connect(tcp, config, None).await?))
            }
            Transport::Dtls => {
                let local: SocketAddr = if addr.is_ipv4() {
                    (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
                } else {
                    (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
                };
                let socket = UdpSocket::bind(local).await?;
                socket.connect(addr).await?;
                Conn::Dtls(Box::new(
                    connect_dtls(socket, config, None, DTLS_MTU).await?,
                ))
            }
        })
    };
    let conn = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake)
        .await
        .map_err(|_| AssociateError::Transport(timed_out()))??;
    Ok(RegistrarConnection {
        conn,
        buf: Zeroizing::new(Vec::new()),
    })
}

/// Entity A's Pre-Provisioned association (draft 8.2.2.1): `psk_identity` = the entry's
/// KpsaId, `psk` = its Kpsa, to the registrar at `addr` over `transport`. The entry's
/// `thisEntityIdentifier`, if configured, is the origin to use with
/// [`RegistrarConnection::association_info`].
pub async fn associate_pre_provisioned(
    addr: impl ToSocketAddrs,
    transport: Transport,
    association: &PreProvisionedAssociation,
) -> Result<RegistrarConnection, AssociateError> {
    let c = association.credential();
    associate_kpsa(addr, transport, c.kpsa_id(), c.kpsa_key()).await
}

/// [`associate_pre_provisioned`] with a bare KpsaId and Kpsa.
pub async fn associate_kpsa(
    addr: impl ToSocketAddrs,
    transport: Transport,
    kpsa_id: &KeyId,
    kpsa: &Kpsa,
) -> Result<RegistrarConnection, AssociateError> {
    associate_with(addr, transport, kpsa_id, kpsa.to_psk()).await
}

/// Entity A's Certificate-Based association (draft 8.2.2.2): ECDHE-ECDSA with mutual
/// authentication, presenting `key` (its certificate chain or raw public key) and checking
/// Entity B with `verifier` (typically [`CertificatePeer::verifier`] of the association's
/// `otherEntityCertificateName` / `otherEntityRootOfTrust`). Entity B binds the association to
/// the `otherEntityIdentifier` of its configured association that the certificate matches.
pub async fn associate_certificate(
    addr: impl ToSocketAddrs,
    transport: Transport,
    key: &CertifiedKey,
    verifier: Arc<dyn CertVerifier>,
) -> Result<RegistrarConnection, AssociateError> {
    let config = Arc::new(
        ClientConfig::builder_with_verifier(verifier)
            .certificate(key.clone())
            .server_certificate_types(&[CertificateType::X509, CertificateType::RawPublicKey])
            .build()
            .map_err(m2msec::Error::from)?,
    );
    connect_registrar(addr, transport, config).await
}

/// [`associate_certificate`] from configuration: this end-point's certificate `credential`
/// and the `association` (B's Certificate Name and Root of Trust).
pub async fn associate_certificate_configured(
    addr: impl ToSocketAddrs,
    transport: Transport,
    credential: &CertificateCredential,
    association: &CertificateAssociation,
) -> Result<RegistrarConnection, AssociateError> {
    let verifier: Arc<dyn CertVerifier> = Arc::new(association.peer().verifier());
    associate_certificate(addr, transport, credential.certified_key(), verifier).await
}

/// Entity A's MAF-based association (draft 8.2.3.1): `psk_identity` = `kc_id`
/// (KcID@MAF-FQDN, from [`register_key`](super::maf::register_key)), `psk` = Kc.
pub async fn associate_maf(
    addr: impl ToSocketAddrs,
    transport: Transport,
    kc_id: &KeyId,
    kc: &Kc,
) -> Result<RegistrarConnection, AssociateError> {
    associate_with(addr, transport, kc_id, kc.to_psk()).await
}

/// Entity A's GBA-based association (draft 8.2.3.2): `psk_identity` as the client builds it
/// ([`m2msec::gba::kdf::psk_identity`], or the bare B-TID), `psk` = the NAF key derived for
/// NAF_Id = NAF FQDN || 01 00 01 || `suite`'s code, offering that one suite only (the client's
/// PSK is fixed before the ServerHello, so the suite the key was derived for is the only one
/// it can use).
pub async fn associate_gba(
    addr: impl ToSocketAddrs,
    transport: Transport,
    psk_identity: &str,
    key: &KsNaf,
    suite: CipherSuite,
) -> Result<RegistrarConnection, AssociateError> {
    let psk = Psk::new(key.expose()).map_err(m2msec::Error::from)?;
    let psk = ClientPsk::new(psk_identity.as_bytes(), psk).map_err(m2msec::Error::from)?;
    let config = Arc::new(
        ClientConfig::builder(psk)
            .suites(&[suite])
            .build()
            .map_err(m2msec::Error::from)?,
    );
    connect_registrar(addr, transport, config).await
}

/// The GBA reading of a psk_identity (UTF-8, then [`parse_psk_identity`]).
fn gba_identity(identity: &[u8]) -> Option<(Option<GbaPrefix>, BTid)> {
    parse_psk_identity(std::str::from_utf8(identity).ok()?).ok()
}

/// Entity A's side of the association: a TLS-PSK client with `psk_identity = kc_id` and
/// `psk = kc` to the registrar at `addr`, returning the bare TLS stream (see
/// [`associate_maf`] for the connection type that can query the registrar).
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
