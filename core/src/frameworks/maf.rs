//! The M2M Authentication Function as a sans-IO server core (`docs/protocol.md`, "MAF (Mmaf)"),
//! with the same contract as the MEF core: configuration only, `&self`, one [`MafStep`] per
//! request, key-store operations as continuations ([`PendingMaf`]), refusals as
//! [`ServerError`]. [`run_to_completion`] drives it with a
//! synchronous store.
//!
//! ```text
//!   request ──route, body, static checks──▶ requester known from MafConfig (KmID)?
//!                                              │ yes                 │ no: Get(psk_identity)
//!                                              ▼                     ▼   (KmID assigned here, or
//!                                           procedure ◀──── Km record   KeID on first contact)
//!                                              │
//!       clientRegistration ── Put(Km under KmID) ──▶ 2001 once stored
//!       keyRegistration    ── Put(Kc under KcID) ──▶ 2001 once stored
//!       keyRetrieval       ── Get(KcID) ──────────▶ 2000 if requester ∈ targets, not expired
//! ```
//!
//! **Who is asking.** The requester's identity (IdA / IdB, a CSE-ID or AE-ID) comes from the
//! handshake: the session's `psk_identity` is a KmID of a configured client
//! ([`MafConfig::client_by_km_id`], identity = its `thisEntityIdentifier`), or the identifier of a
//! Km record in the store whose `owner` is the identity: a KmID this MAF assigned in a Client
//! Registration, or, on first contact after a bootstrap (D13), the KeID. First contact itself is
//! the adapter's job: it suspends the handshake on the unknown KeID, fetches Km from the MEF
//! ([`MafServer::fetch_credentials_request`]), stores the record
//! [`MafServer::km_record_from_mef`] builds (Km under the KeID, owner = Enrolee-ID) and resumes
//! the handshake with that Km.
//!
//! # Procedures
//!
//! - **clientRegistration** (after a bootstrap; session authenticated with the KeID): assigns
//!   `KmID = km-<32 hex>@MAF-FQDN`, the hex being derived from the KeID (so a repeated
//!   registration is idempotent and assigns the same KmID), stores Km under it with the same
//!   owner and `not_after = min(requested, Km's not_after)`, and answers 2001 with
//!   `assignedSymmKeyID` once stored.
//! - **keyRegistration** (Entity A): `(KcID, Kc) = keys::connection_key(EXPORTER-oneM2M-Connection
//!   output, mafIdentifier)`, stored as `{KcID, Kc, owner: IdA, targets, not_after = min(requested,
//!   now + Kc lifetime)}`; 2001 once stored. SUID must be 32 (MAF-distributed key for SAEF). A
//!   client configured with association configurations (table 9.1.2.3-1) may name only its
//!   configured, unexpired peers as targets; a bootstrapped client (no configuration) any valid
//!   CSE-ID / AE-ID.
//! - **keyRetrieval** (Entity B): Kc is released only if the authenticated requester is one of the
//!   record's targets (4103 otherwise) and it has not expired (4004).

use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;

use zeroize::Zeroizing;

use super::binding::{
    from_body, ClientRegistrationRequest, ClientRegistrationResponse, FetchCredentialsResponse,
    HexKey, KeyRegistrationRequest, KeyRegistrationResponse, KeyRetrievalResponse, Method, Request,
    Response, Route, Rsc,
};
use super::config::{EntityId, Lifespan, MafConfig};
use super::mef::{respond, route, wire, SUID_RSPF_MAF};
pub use super::mef::{run_to_completion, PeerContext, Pending, ServerError, Step};
use crate::crypto::prf::hmac_sha256;
use crate::keys::{self, IdKind, KeyId, EXPORTER_LEN};
use crate::store::{
    store_id, KeyKind, KeyRecord, KeySecret, StoreOp, StoreReply, StoreResult, MAX_TARGETS,
};
use crate::time::{Now, UnixTime};

/// SUID of a MAF-distributed key for a security association (TS-0004 `m2m:suid` 32; spec-notes
/// 4.2). The only SUID keyRegistration accepts.
pub const SUID_MAF_SAEF: u8 = 32;

/// The steps of the MAF.
pub type MafStep = Step<PendingMaf>;

/// The MAF server core: configuration only, `&self`, one [`MafStep`] per request.
#[derive(Clone, Debug)]
pub struct MafServer {
    config: Arc<MafConfig>,
    kc_lifetime: Lifespan,
}

impl MafServer {
    /// A MAF with its configuration and the longest lifetime it grants a Kc
    /// (`not_after = min(requested, now + kc_lifetime)`).
    #[must_use]
    pub fn new(config: Arc<MafConfig>, kc_lifetime: Lifespan) -> Self {
        Self {
            config,
            kc_lifetime,
        }
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &MafConfig {
        &self.config
    }

    /// Handles one request of the session `peer` at `now`.
    ///
    /// For keyRegistration `peer` must carry the 48 bytes exported under
    /// [`keys::CONNECTION_EXPORTER_LABEL`].
    pub fn handle_request(
        &self,
        now: Now,
        peer: &PeerContext,
        req: &Request,
    ) -> Result<MafStep, ServerError> {
        let rid = req.request_id.as_str();
        let proc = self.parse_procedure(now, req)?;
        let ctx = Ctx {
            config: self.config.clone(),
            kc_lifetime: self.kc_lifetime,
            request_id: req.request_id.clone(),
            origin: req.origin.clone(),
            exporter: peer.exporter().map(|e| Zeroizing::new(*e)),
        };
        let maf = self.config.maf_identifier().as_str();
        // A KmID of this MAF: configured, or assigned by a Client Registration (in the store).
        if let Ok(km_id) = KeyId::parse_bytes(IdKind::Km, peer.psk_identity()) {
            if km_id.fqdn().eq_ignore_ascii_case(maf) {
                if let Some(client) = self.config.client_by_km_id(&km_id) {
                    client.credential().check_usable(now.unix).map_err(|_| {
                        ServerError::forbidden(
                            rid,
                            "the Master Credential expired",
                            wire::KM_EXPIRY,
                        )
                    })?;
                    let requester = Requester {
                        id: client.credential().this_entity_identifier().to_string(),
                        session: SessionId::Configured(km_id),
                    };
                    return proceed(ctx, now, requester, proc);
                }
                return Ok(resolve(ctx, proc, SessionId::KmId(km_id)));
            }
        }
        // First contact after a bootstrap: the KeID, with the Km the adapter fetched from the MEF.
        if let Ok(ke_id) = KeyId::parse_bytes(IdKind::Ke, peer.psk_identity()) {
            return Ok(resolve(ctx, proc, SessionId::KeId(ke_id)));
        }
        Err(ServerError::forbidden(
            rid,
            "the session is not authenticated with a KmID or KeID of this MAF",
            wire::KM_ID,
        ))
    }

    /// The procedure and the checks that need neither the requester nor the store.
    fn parse_procedure(&self, now: Now, req: &Request) -> Result<Proc, ServerError> {
        let rid = req.request_id.as_str();
        let maf = self.config.maf_identifier().as_str();
        let check_fqdn = |fqdn: &str| {
            if fqdn.eq_ignore_ascii_case(maf) {
                Ok(())
            } else {
                Err(ServerError::bad(
                    rid,
                    "MAF-FQDN is not this MAF",
                    wire::MAF_FQDN,
                ))
            }
        };
        let check_expiry = |t: u64| {
            if t > now.unix.0 {
                Ok(())
            } else {
                Err(ServerError::bad(
                    rid,
                    "expirationTime is not in the future",
                    wire::EXPIRATION_TIME,
                ))
            }
        };
        match route(req)? {
            Route::ClientRegistration => {
                let body: ClientRegistrationRequest = from_body(&req.body).map_err(|e| {
                    ServerError::body(rid, "malformed Client Registration request", &e)
                })?;
                check_fqdn(&body.maf_fqdn)?;
                check_expiry(body.expiration_time)?;
                Ok(Proc::ClientRegistration(body))
            }
            Route::KeyRegistration => {
                let body: KeyRegistrationRequest = from_body(&req.body).map_err(|e| {
                    ServerError::body(rid, "malformed Key Registration request", &e)
                })?;
                check_fqdn(&body.maf_fqdn)?;
                check_expiry(body.expiration_time)?;
                if body.suid != SUID_MAF_SAEF {
                    return Err(ServerError::bad(
                        rid,
                        "SUID is not 32 (MAF-distributed key for a security association)",
                        wire::SUID,
                    ));
                }
                if body.target_ids.is_empty()
                    || body.target_ids.len() > MAX_TARGETS
                    || body.target_ids.iter().any(|t| EntityId::new(t).is_err())
                {
                    return Err(ServerError::bad(
                        rid,
                        "targetIDs must be 1 to 64 CSE-IDs / AE-IDs",
                        wire::TARGET_IDS,
                    ));
                }
                Ok(Proc::KeyRegistration(body))
            }
            Route::KeyRetrieval { relative_key_id } => {
                let text = if relative_key_id.contains('@') {
                    relative_key_id
                } else {
                    format!("{relative_key_id}@{maf}")
                };
                let kc_id = KeyId::parse(IdKind::Kc, &text).map_err(|_| {
                    ServerError::bad(rid, "malformed RelativeKeyID", wire::RELATIVE_KEY_ID)
                })?;
                if !kc_id.fqdn().eq_ignore_ascii_case(maf) {
                    return Err(unknown_kc(rid));
                }
                Ok(Proc::KeyRetrieval(kc_id))
            }
            _ => Err(ServerError::new(
                Rsc::NotFound,
                rid,
                "not a MAF procedure",
                None,
            )),
        }
    }

    /// The request the MAF sends its MEF to fetch the Km of an Enrolee that opened a session
    /// with `ke_id` as `psk_identity` (D13): `GET /mef/fetchCredentials/<KeID>/21`, originator
    /// this MAF's MAF-ID.
    #[must_use]
    pub fn fetch_credentials_request(&self, ke_id: &KeyId, request_id: &str) -> Request {
        let (method, path) = Route::FetchCredentials {
            ke_id: ke_id.as_str().to_string(),
            suid: SUID_RSPF_MAF,
        }
        .target();
        debug_assert_eq!(method, Method::Get);
        Request {
            method,
            path,
            origin: self.config.maf_identifier().as_str().to_string(),
            request_id: request_id.to_string(),
            body: Zeroizing::new(Vec::new()),
        }
    }

    /// The record to store after the MEF released Km for `ke_id`: `{KeID, Km, owner:
    /// enroleeID, not_after: lifetime}`. Refuses a response that is not a 2000 with status true,
    /// a Km, a valid Enrolee-ID and a lifetime after `now`.
    pub fn km_record_from_mef(
        &self,
        now: Now,
        ke_id: &KeyId,
        response: &Response,
    ) -> Result<KeyRecord, MefReplyError> {
        if response.rsc != Rsc::Ok {
            return Err(MefReplyError::Refused(response.rsc));
        }
        let body: FetchCredentialsResponse =
            from_body(&response.body).map_err(|_| MefReplyError::Malformed)?;
        let (true, Some(km), Some(owner), Some(lifetime)) = (
            body.status,
            body.credential.as_ref(),
            body.enrolee_id.as_deref(),
            body.lifetime,
        ) else {
            return Err(MefReplyError::Malformed);
        };
        EntityId::new(owner).map_err(|_| MefReplyError::Malformed)?;
        if lifetime <= now.unix.0 {
            return Err(MefReplyError::Expired);
        }
        KeyRecord::new(
            store_id(ke_id),
            KeyKind::Km,
            owner,
            UnixTime(lifetime),
            KeySecret::from_key(&km.0),
        )
        .map_err(|_| MefReplyError::Malformed)
    }
}

/// Why a MEF's fetchCredentials response gives no Km record. Carries no secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MefReplyError {
    /// The MEF refused with this status code.
    Refused(Rsc),
    /// The body is not a complete FetchCredentialsResponse with status true.
    Malformed,
    /// The lifetime has already passed.
    Expired,
}

impl core::fmt::Display for MefReplyError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Refused(rsc) => write!(f, "the MEF refused with {}", rsc.code()),
            Self::Malformed => f.write_str("malformed fetchCredentials response"),
            Self::Expired => f.write_str("the released Km has already expired"),
        }
    }
}

impl core::error::Error for MefReplyError {}

fn unknown_kc(rid: &str) -> ServerError {
    ServerError::not_found(
        rid,
        "unknown or expired RelativeKeyID",
        wire::RELATIVE_KEY_ID,
    )
}

/// Everything a continuation needs from the server and the request.
#[derive(Clone)]
struct Ctx {
    config: Arc<MafConfig>,
    kc_lifetime: Lifespan,
    request_id: String,
    origin: String,
    exporter: Option<Zeroizing<[u8; EXPORTER_LEN]>>,
}

impl core::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Ctx")
            .field("request_id", &self.request_id)
            .field("origin", &self.origin)
            .field("exporter", &self.exporter.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// A parsed MAF procedure.
#[derive(Debug)]
enum Proc {
    ClientRegistration(ClientRegistrationRequest),
    KeyRegistration(KeyRegistrationRequest),
    KeyRetrieval(KeyId),
}

/// The identifier the session authenticated with.
#[derive(Debug)]
enum SessionId {
    /// A KmID of a configured client.
    Configured(KeyId),
    /// A KmID this MAF assigned (a Km record in the store).
    KmId(KeyId),
    /// A KeID (first contact after a bootstrap; a Km record in the store).
    KeId(KeyId),
}

impl SessionId {
    fn key_id(&self) -> &KeyId {
        match self {
            Self::Configured(id) | Self::KmId(id) | Self::KeId(id) => id,
        }
    }
}

/// The authenticated requester.
#[derive(Debug)]
struct Requester {
    /// IdA / IdB: its CSE-ID or AE-ID.
    id: String,
    session: SessionId,
}

/// Looks the session's Km record up before the procedure.
fn resolve(ctx: Ctx, proc: Proc, session: SessionId) -> MafStep {
    let op = StoreOp::Get(store_id(session.key_id()));
    Step::Store(PendingMaf {
        ctx,
        state: State::Resolve { op, proc, session },
    })
}

/// Runs the procedure for a known requester.
fn proceed(ctx: Ctx, now: Now, requester: Requester, proc: Proc) -> Result<MafStep, ServerError> {
    let rid = ctx.request_id.as_str();
    if ctx.origin != requester.id {
        return Err(ServerError::forbidden(
            rid,
            "X-M2M-Origin is not the identity bound to the session",
            wire::ORIGIN,
        ));
    }
    match proc {
        // A KeID session registers in `PendingMaf::resume` (it needs the Km record); any other
        // session has no bootstrap to register.
        Proc::ClientRegistration(_) => Err(ServerError::forbidden(
            rid,
            "client registration follows a bootstrap: authenticate with the KeID",
            wire::KM_ID,
        )),
        Proc::KeyRegistration(body) => key_registration(ctx, now, requester, body),
        Proc::KeyRetrieval(kc_id) => {
            let op = StoreOp::Get(store_id(&kc_id));
            Ok(Step::Store(PendingMaf {
                ctx,
                state: State::RetrievalGet {
                    op,
                    requester: requester.id,
                },
            }))
        }
    }
}

fn key_registration(
    ctx: Ctx,
    now: Now,
    requester: Requester,
    body: KeyRegistrationRequest,
) -> Result<MafStep, ServerError> {
    let rid = ctx.request_id.as_str();
    if let SessionId::Configured(km_id) = &requester.session {
        // A configured client may name only its configured, unexpired peers (table 9.1.2.3-1).
        let client = ctx.config.client_by_km_id(km_id);
        let allowed = |t: &String| {
            let Ok(other) = EntityId::new(t) else {
                return false;
            };
            client
                .and_then(|c| c.association_with(&other))
                .is_some_and(|a| a.check_usable(now.unix).is_ok())
        };
        if !body.target_ids.iter().all(allowed) {
            return Err(ServerError::forbidden(
                rid,
                "a target is not a configured association of this client",
                wire::TARGET_IDS,
            ));
        }
    }
    let exporter = ctx.exporter.as_deref().ok_or_else(|| {
        ServerError::internal(rid, "no connection exporter output for the session")
    })?;
    let (kc_id, kc) = keys::connection_key(exporter, ctx.config.maf_identifier().as_str())
        .map_err(|_| ServerError::internal(rid, "mafIdentifier does not form a KcID"))?;
    let cap = now.unix.0.saturating_add(ctx.kc_lifetime.as_secs());
    let not_after = UnixTime(body.expiration_time.min(cap));
    let record = KeyRecord::new(
        store_id(&kc_id),
        KeyKind::Kc,
        requester.id.as_str(),
        not_after,
        KeySecret::from_key(kc.expose()),
    )
    .and_then(|r| r.with_targets(body.target_ids.iter().cloned()))
    .map_err(|_| ServerError::internal(rid, "the Kc record breaks the store limits"))?;
    let response = KeyRegistrationResponse {
        relative_key_id: kc_id.relative().to_string(),
        expiration_time: not_after.0,
        source_maf_client_id: requester.id,
        suid: body.suid,
        target_ids: body.target_ids,
    };
    Ok(Step::Store(PendingMaf {
        ctx,
        state: State::Put {
            op: StoreOp::Put(record),
            response: Registered::Key(response),
        },
    }))
}

/// The KmID a Client Registration assigns to the client of `ke_id`:
/// `km-` HEX(first 16 bytes of HMAC-SHA-256(store_id(KeID), "m2msec KmID")) `@` MAF-FQDN.
/// The KeID is public, so this only makes the KmID unique per KeID and stable on repetition.
fn assigned_km_id(ke_id: &KeyId, maf: &str) -> Option<KeyId> {
    let mac = hmac_sha256(store_id(ke_id).as_bytes(), &[b"m2msec KmID"]);
    let mut rel = [0u8; 16];
    rel.copy_from_slice(&mac[..16]);
    let hex = keys::RelativeId::from_bytes(rel).to_hex();
    KeyId::parse(IdKind::Km, &format!("km-{hex}@{maf}")).ok()
}

/// What a stored registration answers.
#[derive(Debug)]
enum Registered {
    Client(ClientRegistrationResponse),
    Key(KeyRegistrationResponse),
}

/// A MAF request waiting for its key-store operation.
#[derive(Debug)]
pub struct PendingMaf {
    ctx: Ctx,
    state: State,
}

#[derive(Debug)]
enum State {
    /// Fetching the Km record of the session's KmID / KeID to learn the requester.
    Resolve {
        op: StoreOp,
        proc: Proc,
        session: SessionId,
    },
    /// A registration's record is being stored; the response is sent once it is.
    Put { op: StoreOp, response: Registered },
    /// Key Retrieval: fetching the Kc record for `requester`.
    RetrievalGet { op: StoreOp, requester: String },
}

impl Pending for PendingMaf {
    fn op(&self) -> &StoreOp {
        match &self.state {
            State::Resolve { op, .. } | State::Put { op, .. } | State::RetrievalGet { op, .. } => {
                op
            }
        }
    }

    fn resume(self, now: Now, result: StoreResult) -> Result<MafStep, ServerError> {
        let Self { ctx, state } = self;
        let rid = ctx.request_id.clone();
        let rid = rid.as_str();
        match state {
            State::Resolve { proc, session, .. } => {
                let record = match result {
                    Ok(StoreReply::Found(r)) if r.kind == KeyKind::Km => r,
                    Ok(StoreReply::Found(_) | StoreReply::NotFound) => {
                        return Err(ServerError::forbidden(
                            rid,
                            "no Master Credential for the session's identity",
                            wire::KM_ID,
                        ))
                    }
                    other => return Err(ServerError::store(rid, other)),
                };
                if record.is_expired(now.unix) {
                    return Err(ServerError::forbidden(
                        rid,
                        "the Master Credential expired",
                        wire::KM_EXPIRY,
                    ));
                }
                let requester = Requester {
                    id: record.owner.clone(),
                    session,
                };
                if let (Proc::ClientRegistration(body), SessionId::KeId(ke_id)) =
                    (&proc, &requester.session)
                {
                    if ctx.origin != requester.id {
                        return Err(ServerError::forbidden(
                            rid,
                            "X-M2M-Origin is not the identity bound to the session",
                            wire::ORIGIN,
                        ));
                    }
                    return register_client(&ctx, ke_id, &record, body);
                }
                proceed(ctx, now, requester, proc)
            }
            State::Put { response, .. } => match result {
                Ok(StoreReply::Stored { .. }) => match response {
                    Registered::Client(r) => respond(Rsc::Created, rid, &r),
                    Registered::Key(r) => respond(Rsc::Created, rid, &r),
                }
                .map(Step::Respond),
                other => Err(ServerError::store(rid, other)),
            },
            State::RetrievalGet { requester, .. } => {
                let record = match result {
                    Ok(StoreReply::Found(r)) if r.kind == KeyKind::Kc => r,
                    Ok(StoreReply::Found(_) | StoreReply::NotFound) => return Err(unknown_kc(rid)),
                    other => return Err(ServerError::store(rid, other)),
                };
                if !record.authorizes(&requester) {
                    return Err(ServerError::forbidden(
                        rid,
                        "the requester is not a registered target of this key",
                        wire::TARGET_IDS,
                    ));
                }
                if record.is_expired(now.unix) {
                    return Err(unknown_kc(rid));
                }
                let key = record
                    .secret
                    .to_key32()
                    .ok_or_else(|| ServerError::internal(rid, "stored Kc is not 32 bytes"))?;
                let response = KeyRetrievalResponse {
                    expiration_time: record.not_after.0,
                    source_maf_client_id: record.owner.clone(),
                    suid: SUID_MAF_SAEF,
                    key_value: HexKey(*key.expose()),
                };
                respond(Rsc::Ok, rid, &response).map(Step::Respond)
            }
        }
    }
}

/// Client Registration with the session's Km record at hand: store Km under the assigned KmID.
fn register_client(
    ctx: &Ctx,
    ke_id: &KeyId,
    km: &KeyRecord,
    body: &ClientRegistrationRequest,
) -> Result<MafStep, ServerError> {
    let rid = ctx.request_id.as_str();
    let maf = ctx.config.maf_identifier().as_str();
    let km_id = assigned_km_id(ke_id, maf)
        .ok_or_else(|| ServerError::internal(rid, "mafIdentifier does not form a KmID"))?;
    let not_after = UnixTime(body.expiration_time.min(km.not_after.0));
    let record = KeyRecord::new(
        store_id(&km_id),
        KeyKind::Km,
        km.owner.as_str(),
        not_after,
        km.secret.clone(),
    )
    .map_err(|_| ServerError::internal(rid, "the Km record breaks the store limits"))?;
    let response = ClientRegistrationResponse {
        maf_client_reg_id: format!("r-{}", km_id.relative().trim_start_matches("km-")),
        assigned_symm_key_id: km_id.as_str().to_string(),
        expiration_time: not_after.0,
    };
    Ok(Step::Store(PendingMaf {
        ctx: ctx.clone(),
        state: State::Put {
            op: StoreOp::Put(record),
            response: Registered::Client(response),
        },
    }))
}
