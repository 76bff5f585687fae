//! The M2M Enrolment Function as a sans-IO server core (`docs/protocol.md`, "MEF (Mmef)"), and
//! the step/continuation machinery the MAF core ([`super::maf`]) shares.
//!
//! ```text
//!   adapter: (D)TLS handshake done ──▶ PeerContext { psk_identity, 48-byte exporter output }
//!            HTTP bytes ──Request::decode──▶ Request
//!                                            │
//!   MefServer::handle_request(&self, now, &peer, &req)
//!        │                  │
//!        │ Err(ServerError) │ Ok(Step::Store(PendingMef)) ──op()──▶ KeyStore / AsyncKeyStore
//!        │  .into_response()│        ▲                                     │
//!        ▼                  │        └──── resume(now, StoreResult) ◀──────┘
//!     Response ◀────────────┴─ Ok(Step::Respond(Response))
//! ```
//!
//! **Contract.** The server holds only configuration and takes `&self`, so one value can serve
//! every session without locks (design 2.5). Each request yields a [`Step`]: either the
//! [`Response`] to send, or a [`Pending`] continuation whose [`Pending::op`] the caller runs against
//! its key store and hands back with [`Pending::resume`]. [`run_to_completion`] does exactly that
//! for a synchronous [`KeyStore`]. A refusal is a [`ServerError`], which carries the oneM2M
//! response status code, a fixed message and the TS-0003 parameter at fault, and turns into the
//! refusal [`Response`] with [`ServerError::into_response`].
//!
//! Rules every procedure here follows:
//!
//! - **Authorization uses the handshake's identity** ([`PeerContext::psk_identity`]) and the
//!   configuration bound to it, never a request field; `X-M2M-Origin` and identity fields of the
//!   body must agree with it or the request is refused with 4103.
//! - **A refusal leaves the store unchanged**: every check that can refuse runs before the first
//!   write, and refusals after a read ([`StoreOp::Derive`]) write nothing.
//! - **Nothing is reported as registered before the store acknowledged it**: a procedure that
//!   writes answers only after its [`StoreOp::Put`] returned [`StoreReply::Stored`]; any store error
//!   yields 5000 and no registration.
//! - **No secret in `Debug` or in error text**: refusal messages are fixed strings; the store's
//!   error is kept for the operator's log ([`ServerError::store_error`]) and never sent.
//!
//! # MEF procedures
//!
//! - **Enrolment** (`POST /mef/enrolment`, Enrolee → MEF, draft 8.3.2.1): the KpmID that
//!   authenticated the session must be configured ([`MefConfig::enrolee_by_kpm_id`]), its
//!   Bootstrap Instruction must name the request's Enrolee-ID and MAF-ID; then
//!   `(KeID, Ke) = keys::enrolment_key(EXPORTER-oneM2M-Bootstrap output, mefIdentifier)` is stored
//!   as `KeyRecord { KeID, Ke, owner: Enrolee-ID, targets: [MAF-ID], not_after: now + Ke lifetime }`
//!   and 2001 answers with [`EnrolmentResponse`] once the store acknowledged.
//! - **fetchCredentials** (`GET /mef/fetchCredentials/<KeID>/21`, MAF → MEF, draft 8.3.1, D13):
//!   the session must belong to a MAF of the [`MafDirectory`]; the store derives
//!   `Km = HMAC-SHA-256(Ke, KM_LABEL || NFKC(MAF-ID))` with [`StoreOp::Derive`] (Ke never leaves
//!   the store), and the Km is released only if the requesting MAF is the record's target and Ke
//!   has not expired; otherwise the derived key is dropped (zeroized) unsent.
//!
//! `MefConfig` (clause 9.1 / 8.3.2.1) says nothing about MAFs or Ke lifetimes, so the
//! [`MefServer`] takes them separately: a [`MafDirectory`] (which PSK identities are MAFs, their
//! MAF-IDs and where they listen) and the Ke lifetime.

use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use zeroize::Zeroizing;

use super::binding::{
    from_body, to_body, BindingError, EnrolmentRequest, EnrolmentResponse, ErrorBody,
    FetchCredentialsResponse, HexKey, Request, Response, Route, Rsc,
};
use super::config::{param, Fqdn, Lifespan, MefConfig, MefEnrolee, ParameterError, Reason};
use crate::keys::{self, IdKind, KeyId, EXPORTER_LEN, KM_LABEL};
use crate::store::{
    store_id, KeyKind, KeyRecord, KeySecret, KeyStore, StoreError, StoreOp, StoreReply, StoreResult,
};
use crate::time::{Now, UnixTime};
use crate::{Session, SessionInfo};

/// SUID of the key a MAF fetches from the MEF: an RSPF key shared with a MAF (TS-0004
/// `m2m:suid` 21; spec-notes 4.2).
pub const SUID_RSPF_MAF: u8 = 21;

/// TS-0003 parameter names of the wire binding, as [`ErrorBody::parameter`] carries them.
pub mod wire {
    /// `X-M2M-Origin` (the originator header).
    pub const ORIGIN: &str = "X-M2M-Origin";
    /// Enrolee-ID.
    pub const ENROLEE_ID: &str = "enroleeID";
    /// MAF-ID.
    pub const MAF_ID: &str = "mafID";
    /// KeID.
    pub const KE_ID: &str = "keID";
    /// KpmID (the bootstrap `psk_identity`).
    pub const KPM_ID: &str = "kpmId";
    /// SUID.
    pub const SUID: &str = "suid";
    /// MAF-FQDN.
    pub const MAF_FQDN: &str = "mafFQDN";
    /// expirationTime.
    pub const EXPIRATION_TIME: &str = "expirationTime";
    /// targetIDs.
    pub const TARGET_IDS: &str = "targetIDs";
    /// RelativeKeyID.
    pub const RELATIVE_KEY_ID: &str = "relativeKeyID";
    /// KmID (`masterCredentialIdentifier`, the MAF `psk_identity`).
    pub const KM_ID: &str = "masterCredentialIdentifier";
    /// The expiry of a Master Credential.
    pub const KM_EXPIRY: &str = "masterCredentialExpiry";
    /// The (D)TLS exporter output the procedure derives its key from.
    pub const EXPORTER: &str = "exporter";
}

// ---------------------------------------------------------------------------------------------
// What the handshake established

/// What the (D)TLS handshake of the requester's session established: the PSK identity it
/// authenticated with and, for the procedures that derive a key from the session, the 48 bytes
/// the caller exported with [`Session::export_keying_material`]`(out, label, None)`:
///
/// - at the MEF, label [`keys::BOOTSTRAP_EXPORTER_LABEL`] (Enrolment);
/// - at the MAF, label [`keys::CONNECTION_EXPORTER_LABEL`] (Key Registration).
///
/// `Debug` shows the identity and redacts the exporter output.
#[derive(Clone)]
pub struct PeerContext {
    psk_identity: Vec<u8>,
    /// Set by `certificate_enrolee` only (feature `ecdhe`); `None` in a PSK-only build.
    certificate_enrolee: Option<usize>,
    exporter: Option<Zeroizing<[u8; EXPORTER_LEN]>>,
}

impl PeerContext {
    /// The context of a session authenticated with `psk_identity`, with no exporter output.
    #[must_use]
    pub fn new(psk_identity: &[u8]) -> Self {
        Self {
            psk_identity: psk_identity.to_vec(),
            certificate_enrolee: None,
            exporter: None,
        }
    }

    /// The context of a session whose client certificate the adapter verified as the
    /// certificate Enrolee at `index` of [`MefConfig::enrolees`] (Certificate-Based Security
    /// Bootstrap, draft 8.3.2.2: the Enrolee is identified by the verified certificate instead
    /// of a KpmID; see [`MefConfig::match_certificate_enrolee`]). No PSK identity.
    #[cfg(feature = "ecdhe")]
    #[must_use]
    pub fn certificate_enrolee(index: usize) -> Self {
        Self {
            psk_identity: Vec::new(),
            certificate_enrolee: Some(index),
            exporter: None,
        }
    }

    /// The context of a session from what `Event::Connected` reported.
    #[must_use]
    pub fn from_session_info(info: &SessionInfo) -> Self {
        Self::new(&info.psk_identity)
    }

    /// The context of an established session, with its output exported under `label` (no
    /// context, [`EXPORTER_LEN`] bytes). Fails if the session is not connected.
    pub fn from_session(session: &Session, label: &[u8]) -> Result<Self, crate::Error> {
        let info = session.info().ok_or(crate::Error::ApiMisuse(
            crate::error::ApiMisuse::NotConnected,
        ))?;
        let mut out = Zeroizing::new([0u8; EXPORTER_LEN]);
        session.export_keying_material(out.as_mut(), label, None)?;
        Ok(Self {
            psk_identity: info.psk_identity.clone(),
            certificate_enrolee: None,
            exporter: Some(out),
        })
    }

    /// The same context with the session's exporter output.
    #[must_use]
    pub fn with_exporter(mut self, out: &[u8; EXPORTER_LEN]) -> Self {
        self.exporter = Some(Zeroizing::new(*out));
        self
    }

    /// The PSK identity the handshake authenticated.
    #[must_use]
    pub fn psk_identity(&self) -> &[u8] {
        &self.psk_identity
    }

    /// The exporter output, if the caller supplied one.
    #[must_use]
    pub fn exporter(&self) -> Option<&[u8; EXPORTER_LEN]> {
        self.exporter.as_deref()
    }
}

impl fmt::Debug for PeerContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerContext")
            .field("psk_identity", &String::from_utf8_lossy(&self.psk_identity))
            .field("certificate_enrolee", &self.certificate_enrolee)
            .field("exporter", &self.exporter.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

// ---------------------------------------------------------------------------------------------
// Steps, continuations, refusals

/// What a server core asks of its caller next.
#[derive(Debug)]
pub enum Step<P> {
    /// Send this response; the request is done.
    Respond(Response),
    /// Run [`Pending::op`] against the key store and [`Pending::resume`] with its result.
    Store(P),
}

/// A request suspended on one key-store operation.
pub trait Pending: Sized {
    /// The operation to run.
    fn op(&self) -> &StoreOp;

    /// Continues the request with the operation's result, at `now`.
    fn resume(self, now: Now, result: StoreResult) -> Result<Step<Self>, ServerError>;
}

/// The steps of the MEF.
pub type MefStep = Step<PendingMef>;

/// Runs a request to its response with a synchronous store: each [`Step::Store`] executes its
/// operation (a clone: the continuation keeps its own) and resumes at `now`; a refusal becomes
/// its refusal response.
pub fn run_to_completion<P: Pending>(
    now: Now,
    step: Result<Step<P>, ServerError>,
    store: &mut impl KeyStore,
) -> Response {
    let mut step = step;
    loop {
        match step {
            Ok(Step::Respond(r)) => return r,
            Err(e) => return e.into_response(),
            Ok(Step::Store(p)) => {
                let result = store.execute(p.op().clone());
                step = p.resume(now, result);
            }
        }
    }
}

/// A refused request: the response status code, a fixed message, the TS-0003 parameter at
/// fault if one is, and the request id to echo. Carries no secret; [`fmt::Display`] and
/// [`ServerError::into_response`] use the fixed message only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerError {
    rsc: Rsc,
    message: &'static str,
    parameter: Option<&'static str>,
    request_id: String,
    detail: Option<String>,
    store: Option<StoreError>,
}

impl ServerError {
    pub(crate) fn new(
        rsc: Rsc,
        request_id: &str,
        message: &'static str,
        parameter: Option<&'static str>,
    ) -> Self {
        Self {
            rsc,
            message,
            parameter,
            request_id: request_id.to_string(),
            detail: None,
            store: None,
        }
    }

    pub(crate) fn bad(req: &str, message: &'static str, parameter: &'static str) -> Self {
        Self::new(Rsc::BadRequest, req, message, Some(parameter))
    }

    pub(crate) fn forbidden(req: &str, message: &'static str, parameter: &'static str) -> Self {
        Self::new(Rsc::NoPrivilege, req, message, Some(parameter))
    }

    pub(crate) fn not_found(req: &str, message: &'static str, parameter: &'static str) -> Self {
        Self::new(Rsc::NotFound, req, message, Some(parameter))
    }

    pub(crate) fn internal(req: &str, message: &'static str) -> Self {
        Self::new(Rsc::InternalError, req, message, None)
    }

    /// A 5000 for a failed or unexpected store operation; the store's error is kept for logs.
    pub(crate) fn store(req: &str, result: StoreResult) -> Self {
        let mut e = Self::internal(req, "key store failure");
        e.store = result.err();
        e
    }

    /// A 4000 for a body that does not parse as the procedure's request; serde's description
    /// (of a body without keys) is kept in [`ServerError::detail`] and sent.
    pub(crate) fn body(req: &str, message: &'static str, e: &BindingError) -> Self {
        let mut err = Self::new(Rsc::BadRequest, req, message, None);
        if let BindingError::BadContent(d) = e {
            err.detail = Some(d.clone());
        }
        err
    }

    /// The response status code.
    #[must_use]
    pub const fn rsc(&self) -> Rsc {
        self.rsc
    }

    /// The fixed description.
    #[must_use]
    pub const fn message(&self) -> &'static str {
        self.message
    }

    /// The TS-0003 parameter at fault, if one is.
    #[must_use]
    pub const fn parameter(&self) -> Option<&'static str> {
        self.parameter
    }

    /// The request id the response echoes.
    #[must_use]
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// The JSON parser's description of a malformed body (sent with the refusal; bodies the
    /// servers parse carry no key).
    #[must_use]
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }

    /// The key store's error behind a 5000, for the operator's log (never sent).
    #[must_use]
    pub fn store_error(&self) -> Option<&StoreError> {
        self.store.as_ref()
    }

    /// The [`ErrorBody`] of the refusal.
    #[must_use]
    pub fn error_body(&self) -> ErrorBody {
        let error = match &self.detail {
            Some(d) => alloc::format!("{}: {d}", self.message),
            None => self.message.to_string(),
        };
        ErrorBody {
            error,
            parameter: self.parameter.map(ToString::to_string),
        }
    }

    /// The refusal response.
    #[must_use]
    pub fn into_response(self) -> Response {
        // An ErrorBody of two strings always serializes; an empty body is the fallback.
        let body = to_body(&self.error_body()).unwrap_or_default();
        Response {
            rsc: self.rsc,
            request_id: self.request_id,
            body,
        }
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.rsc.code(), self.message)?;
        if let Some(p) = self.parameter {
            write!(f, " (parameter {p})")?;
        }
        Ok(())
    }
}

impl core::error::Error for ServerError {}

/// The response `rsc` with `value` as its JSON content.
pub(crate) fn respond<T: serde::Serialize>(
    rsc: Rsc,
    request_id: &str,
    value: &T,
) -> Result<Response, ServerError> {
    let body = to_body(value).map_err(|_| ServerError::internal(request_id, "encoding failure"))?;
    Ok(Response {
        rsc,
        request_id: request_id.to_string(),
        body,
    })
}

/// The request's procedure; 4004 for an unknown one, 4000 for a malformed SUID.
pub(crate) fn route(req: &Request) -> Result<Route, ServerError> {
    Route::of(req.method, &req.path).map_err(|e| match e {
        BindingError::UnknownRoute => {
            ServerError::new(Rsc::NotFound, &req.request_id, "unknown procedure", None)
        }
        _ => ServerError::bad(&req.request_id, "malformed SUID", wire::SUID),
    })
}

// ---------------------------------------------------------------------------------------------
// The MAF directory

/// One MAF as its MEF knows it: the PSK identity (a `KpmID`-form `relative@FQDN`) it
/// authenticates to the MEF with, its MAF-ID (FQDN) and the URI Enrolees reach it at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MafEntry {
    psk_identity: KeyId,
    maf_id: Fqdn,
    maf_uri: String,
}

impl MafEntry {
    /// Validates the identity (`relative@FQDN`, compared as a KpmID), the MAF-ID (a DNS name)
    /// and the URI (non-empty, printable ASCII, at most 512 bytes).
    pub fn new(psk_identity: &str, maf_id: &str, maf_uri: &str) -> Result<Self, ParameterError> {
        let psk_identity = KeyId::parse(IdKind::Kpm, psk_identity).map_err(|e| {
            ParameterError::InvalidParameter {
                name: param::KPM_ID,
                reason: Reason::Identifier(e),
            }
        })?;
        let maf_id = Fqdn::new(maf_id).map_err(|reason| ParameterError::InvalidParameter {
            name: param::MAF_ID,
            reason,
        })?;
        if maf_uri.is_empty()
            || maf_uri.len() > 512
            || !maf_uri.bytes().all(|b| (0x21..0x7f).contains(&b))
        {
            return Err(ParameterError::InvalidParameter {
                name: "mafURI",
                reason: Reason::MalformedUri,
            });
        }
        Ok(Self {
            psk_identity,
            maf_id,
            maf_uri: maf_uri.to_string(),
        })
    }

    /// The PSK identity the MAF authenticates to the MEF with.
    #[must_use]
    pub fn psk_identity(&self) -> &KeyId {
        &self.psk_identity
    }

    /// MAF-ID.
    #[must_use]
    pub fn maf_id(&self) -> &Fqdn {
        &self.maf_id
    }

    /// Where Enrolees reach the MAF (`mafURI` of the Enrolment response).
    #[must_use]
    pub fn maf_uri(&self) -> &str {
        &self.maf_uri
    }
}

/// The MAFs a MEF serves (not part of clause 9.1, so not in [`MefConfig`]): which session
/// identities are MAFs, with their MAF-IDs, for fetchCredentials; and each MAF's URI for the
/// Enrolment response. An Enrolee may be provisioned for a MAF-ID that has no entry: its
/// `mafURI` is then the MAF-ID itself, and no session can fetch its Km until the MAF is added.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MafDirectory {
    entries: Vec<MafEntry>,
}

impl MafDirectory {
    /// Checks that no PSK identity and no MAF-ID is listed twice.
    pub fn new(entries: Vec<MafEntry>) -> Result<Self, ParameterError> {
        for (i, e) in entries.iter().enumerate() {
            for o in &entries[..i] {
                if o.psk_identity == e.psk_identity {
                    return Err(ParameterError::InvalidParameter {
                        name: param::KPM_ID,
                        reason: Reason::Duplicate,
                    });
                }
                if o.maf_id == e.maf_id {
                    return Err(ParameterError::InvalidParameter {
                        name: param::MAF_ID,
                        reason: Reason::Duplicate,
                    });
                }
            }
        }
        Ok(Self { entries })
    }

    /// The entries.
    #[must_use]
    pub fn entries(&self) -> &[MafEntry] {
        &self.entries
    }

    /// The MAF that authenticates with `psk_identity` (parsed as a KpmID, D2 comparison).
    #[must_use]
    pub fn by_psk_identity(&self, psk_identity: &[u8]) -> Option<&MafEntry> {
        let id = KeyId::parse_bytes(IdKind::Kpm, psk_identity).ok()?;
        self.entries.iter().find(|e| e.psk_identity == id)
    }

    /// The MAF with this MAF-ID (case-insensitive).
    #[must_use]
    pub fn by_maf_id(&self, maf_id: &Fqdn) -> Option<&MafEntry> {
        self.entries.iter().find(|e| e.maf_id == *maf_id)
    }
}

// ---------------------------------------------------------------------------------------------
// The MEF server

/// The MEF server core: configuration only, `&self`, one [`MefStep`] per request.
#[derive(Clone, Debug)]
pub struct MefServer {
    config: Arc<MefConfig>,
    mafs: Arc<MafDirectory>,
    ke_lifetime: Lifespan,
}

impl MefServer {
    /// A MEF with its configuration, its MAFs and the lifetime of the Ke it issues
    /// (`not_after = now + ke_lifetime`).
    #[must_use]
    pub fn new(config: Arc<MefConfig>, mafs: Arc<MafDirectory>, ke_lifetime: Lifespan) -> Self {
        Self {
            config,
            mafs,
            ke_lifetime,
        }
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &MefConfig {
        &self.config
    }

    /// The MAF directory.
    #[must_use]
    pub fn mafs(&self) -> &MafDirectory {
        &self.mafs
    }

    /// Handles one request of the session `peer` at `now`.
    pub fn handle_request(
        &self,
        now: Now,
        peer: &PeerContext,
        req: &Request,
    ) -> Result<MefStep, ServerError> {
        match route(req)? {
            Route::Enrolment => self.enrolment(now, peer, req),
            Route::FetchCredentials { ke_id, suid } => {
                self.fetch_credentials(peer, req, &ke_id, suid)
            }
            _ => Err(ServerError::new(
                Rsc::NotFound,
                &req.request_id,
                "not a MEF procedure",
                None,
            )),
        }
    }

    /// The configured Enrolee whose KpmID (or, certificate-based, whose verified certificate)
    /// authenticated the session.
    fn enrolee(&self, peer: &PeerContext, rid: &str) -> Result<&MefEnrolee, ServerError> {
        if let Some(i) = peer.certificate_enrolee {
            return self
                .config
                .enrolees()
                .get(i)
                .filter(|e| is_certificate_enrolee(e))
                .ok_or_else(|| {
                    ServerError::forbidden(
                        rid,
                        "the session is not authenticated with a configured Enrolee certificate",
                        wire::KPM_ID,
                    )
                });
        }
        KeyId::parse_bytes(IdKind::Kpm, peer.psk_identity())
            .ok()
            .and_then(|id| self.config.enrolee_by_kpm_id(&id))
            .ok_or_else(|| {
                ServerError::forbidden(
                    rid,
                    "the session is not authenticated with a configured KpmID",
                    wire::KPM_ID,
                )
            })
    }

    fn enrolment(
        &self,
        now: Now,
        peer: &PeerContext,
        req: &Request,
    ) -> Result<MefStep, ServerError> {
        let rid = req.request_id.as_str();
        let enrolee = self.enrolee(peer, rid)?;
        let body: EnrolmentRequest = from_body(&req.body)
            .map_err(|e| ServerError::body(rid, "malformed Enrolment request", &e))?;
        let instruction = enrolee.instruction();
        let enrolee_id = instruction.enrolee_id().as_str();
        if req.origin != enrolee_id {
            return Err(ServerError::forbidden(
                rid,
                "X-M2M-Origin is not the Enrolee-ID bound to the session's KpmID",
                wire::ORIGIN,
            ));
        }
        if body.enrolee_id != enrolee_id {
            return Err(ServerError::forbidden(
                rid,
                "the KpmID of the session does not belong to this Enrolee-ID",
                wire::ENROLEE_ID,
            ));
        }
        let maf_id = Fqdn::new(&body.maf_id)
            .map_err(|_| ServerError::bad(rid, "MAF-ID is not a DNS name", wire::MAF_ID))?;
        if maf_id != *instruction.maf_id() {
            return Err(ServerError::forbidden(
                rid,
                "the Enrolee is not authorized for this MAF-ID",
                wire::MAF_ID,
            ));
        }
        // Km and the stored target use the MAF-ID exactly as configured (K3).
        let maf_id = instruction.maf_id().as_str();
        let exporter = peer.exporter().ok_or_else(|| {
            ServerError::internal(rid, "no bootstrap exporter output for the session")
        })?;
        let (ke_id, ke) = keys::enrolment_key(exporter, self.config.mef_identifier().as_str())
            .map_err(|_| ServerError::internal(rid, "mefIdentifier does not form a KeID"))?;
        let not_after = UnixTime(now.unix.0.saturating_add(self.ke_lifetime.as_secs()));
        let record = KeyRecord::new(
            store_id(&ke_id),
            KeyKind::Ke,
            enrolee_id,
            not_after,
            KeySecret::from_key(ke.expose()),
        )
        .and_then(|r| r.with_targets([maf_id]))
        .map_err(|_| ServerError::internal(rid, "the Ke record breaks the store limits"))?;
        let maf_uri = self
            .mafs
            .by_maf_id(instruction.maf_id())
            .map_or(maf_id, MafEntry::maf_uri);
        let response = EnrolmentResponse {
            ke_id: ke_id.as_str().to_string(),
            maf_id: maf_id.to_string(),
            maf_uri: maf_uri.to_string(),
            expiration_time: not_after.0,
        };
        Ok(Step::Store(PendingMef(State::EnrolmentPut {
            request_id: rid.to_string(),
            op: StoreOp::Put(record),
            response,
        })))
    }

    fn fetch_credentials(
        &self,
        peer: &PeerContext,
        req: &Request,
        ke_id: &str,
        suid: u8,
    ) -> Result<MefStep, ServerError> {
        let rid = req.request_id.as_str();
        let maf = self
            .mafs
            .by_psk_identity(peer.psk_identity())
            .ok_or_else(|| {
                ServerError::forbidden(
                    rid,
                    "the session is not authenticated as a MAF",
                    wire::MAF_ID,
                )
            })?;
        if !req.origin.eq_ignore_ascii_case(maf.maf_id().as_str()) {
            return Err(ServerError::forbidden(
                rid,
                "X-M2M-Origin is not the MAF-ID bound to the session",
                wire::ORIGIN,
            ));
        }
        if suid != SUID_RSPF_MAF {
            return Err(ServerError::bad(
                rid,
                "SUID is not 21 (RSPF key shared with a MAF)",
                wire::SUID,
            ));
        }
        let ke_id = KeyId::parse(IdKind::Ke, ke_id).map_err(|_| {
            ServerError::bad(rid, "KeID is not HEX(RelativeKeID)@FQDN", wire::KE_ID)
        })?;
        if !ke_id
            .fqdn()
            .eq_ignore_ascii_case(self.config.mef_identifier().as_str())
        {
            return Err(ServerError::not_found(
                rid,
                "unknown or expired KeID",
                wire::KE_ID,
            ));
        }
        let maf_id = maf.maf_id().as_str().to_string();
        Ok(Step::Store(PendingMef(State::FetchDerive {
            request_id: rid.to_string(),
            op: derive_km(&ke_id, &maf_id),
            ke_id,
            maf_id,
            retried: false,
        })))
    }
}

/// Whether `e` is a certificate Enrolee (8.3.2.2): never in a PSK-only build.
#[cfg(feature = "ecdhe")]
fn is_certificate_enrolee(e: &MefEnrolee) -> bool {
    e.certificate_peer().is_some()
}

/// Whether `e` is a certificate Enrolee (8.3.2.2): never in a PSK-only build.
#[cfg(not(feature = "ecdhe"))]
fn is_certificate_enrolee(_: &MefEnrolee) -> bool {
    false
}

fn derive_km(ke_id: &KeyId, maf_id: &str) -> StoreOp {
    StoreOp::Derive {
        id: store_id(ke_id),
        label: KM_LABEL.to_vec(),
        context: keys::nfkc(maf_id).as_bytes().to_vec(),
    }
}

/// A MEF request waiting for its key-store operation.
#[derive(Debug)]
pub struct PendingMef(State);

#[derive(Debug)]
enum State {
    /// Enrolment: the Ke record is being stored; the response is sent once it is.
    EnrolmentPut {
        request_id: String,
        op: StoreOp,
        response: EnrolmentResponse,
    },
    /// fetchCredentials: Km is being derived for `maf_id` (the requesting MAF's MAF-ID, or on
    /// the retry the record's target spelled as the Bootstrap Instruction spelled it, K3).
    FetchDerive {
        request_id: String,
        op: StoreOp,
        ke_id: KeyId,
        maf_id: String,
        retried: bool,
    },
}

impl Pending for PendingMef {
    fn op(&self) -> &StoreOp {
        match &self.0 {
            State::EnrolmentPut { op, .. } | State::FetchDerive { op, .. } => op,
        }
    }

    fn resume(self, now: Now, result: StoreResult) -> Result<MefStep, ServerError> {
        match self.0 {
            State::EnrolmentPut {
                request_id,
                response,
                ..
            } => match result {
                Ok(StoreReply::Stored { .. }) => {
                    respond(Rsc::Created, &request_id, &response).map(Step::Respond)
                }
                other => Err(ServerError::store(&request_id, other)),
            },
            State::FetchDerive {
                request_id,
                ke_id,
                maf_id,
                retried,
                ..
            } => {
                let rid = request_id.as_str();
                let (key, from) = match result {
                    Ok(StoreReply::Derived { key, from }) => (key, from),
                    Ok(StoreReply::NotFound) => {
                        return Err(ServerError::not_found(
                            rid,
                            "unknown or expired KeID",
                            wire::KE_ID,
                        ))
                    }
                    other => return Err(ServerError::store(rid, other)),
                };
                if from.kind != KeyKind::Ke {
                    return Err(ServerError::not_found(
                        rid,
                        "unknown or expired KeID",
                        wire::KE_ID,
                    ));
                }
                if !from.targets.contains(&maf_id) {
                    // The record may spell the MAF-ID in another case (it is the Bootstrap
                    // Instruction's spelling, which Km must use): derive again with it.
                    let target = from
                        .targets
                        .iter()
                        .find(|t| t.eq_ignore_ascii_case(&maf_id));
                    return match target {
                        Some(t) if !retried => Ok(Step::Store(Self(State::FetchDerive {
                            op: derive_km(&ke_id, t),
                            maf_id: t.clone(),
                            request_id,
                            ke_id,
                            retried: true,
                        }))),
                        _ => Err(ServerError::forbidden(
                            rid,
                            "the requesting MAF is not the MAF-ID of this KeID",
                            wire::MAF_ID,
                        )),
                    };
                }
                if from.is_expired(now.unix) {
                    return Err(ServerError::not_found(
                        rid,
                        "unknown or expired KeID",
                        wire::KE_ID,
                    ));
                }
                let response = FetchCredentialsResponse {
                    status: true,
                    credential: Some(HexKey(*key.expose())),
                    enrolee_id: Some(from.owner),
                    lifetime: Some(from.not_after.0),
                };
                respond(Rsc::Ok, rid, &response).map(Step::Respond)
            }
        }
    }
}
