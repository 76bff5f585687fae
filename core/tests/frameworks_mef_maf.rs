//! The MEF and MAF server cores (`m2msec::frameworks::{mef, maf}`) over real (D)TLS sessions
//! and an in-memory key store: Enrolment, fetchCredentials, Client Registration, Key
//! Registration and Key Retrieval, their refusals (each a clear status code and parameter, the
//! store unchanged) and the rule that nothing is reported as registered before the store
//! acknowledged it.
#![cfg(feature = "binding")]

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use m2msec::frameworks::binding::{
    from_body, to_body, ClientRegistrationRequest, ClientRegistrationResponse, EnrolmentRequest,
    EnrolmentResponse, ErrorBody, FetchCredentialsResponse, KeyRegistrationRequest,
    KeyRegistrationResponse, KeyRetrievalResponse, Method, Request, Response, Route, Rsc,
};
use m2msec::frameworks::config::{
    AssociationConfig, BootstrapCredential, BootstrapInstruction, Lifespan, MafClient, MafConfig,
    MasterCredential, MefConfig, MefEnrolee,
};
use m2msec::frameworks::maf::{MafServer, MafStep};
use m2msec::frameworks::mef::{
    run_to_completion, MafDirectory, MafEntry, MefServer, MefStep, PeerContext, Pending,
    ServerError, Step,
};
use m2msec::keys::{
    connection_key, enrolment_key, km, IdKind, KeyId, BOOTSTRAP_EXPORTER_LABEL,
    CONNECTION_EXPORTER_LABEL, EXPORTER_LEN,
};
use m2msec::store::{
    store_id, KeyKind, KeyRecord, KeyStore, MemoryKeyStore, StoreError, StoreOp, StoreReply,
    StoreResult,
};
use m2msec::{
    CipherSuite, ClientConfig, ClientPsk, Instant, Now, Psk, PskTable, ServerConfig, Session,
    UnixTime,
};
use zeroize::Zeroizing;

const T0: u64 = 1_800_000_000;
const NOW: Now = Now {
    mono: Instant(0),
    unix: UnixTime(T0),
};
const MEF: &str = "mef.example.com";
const MAF: &str = "maf.example.com";
const OTHER_MAF: &str = "other-maf.example.com";
const KPM_1: &str = "kpm-1@mef.example.com";
const KPM_2: &str = "kpm-2@mef.example.com";
const KPM_1_KEY: [u8; 32] = [0x11; 32];
const KPM_2_KEY: [u8; 32] = [0x22; 32];
const ENROLEE_1: &str = "C-enrolee-1";
const ENROLEE_2: &str = "C-enrolee-2";
const MAF_PSK: &str = "maf-1@mef.example.com";
const OTHER_MAF_PSK: &str = "maf-2@mef.example.com";
const KE_LIFETIME: u64 = 30 * 24 * 3600;
const KC_LIFETIME: u64 = 24 * 3600;
const ID_A: &str = "C-ae-1";
const ID_B: &str = "/in-cse.example.net/in-cse";
const ID_C: &str = "C-ae-3";
const KM_A: &str = "km-a@maf.example.com";
const KM_B: &str = "km-b@maf.example.com";
const KM_C: &str = "km-c@maf.example.com";

// ---- fixtures ---------------------------------------------------------------------------------

fn mef_server() -> MefServer {
    let enrolee = |kpm_id: &str, kpm: &[u8], enrolee_id: &str| {
        MefEnrolee::new(
            BootstrapCredential::new(kpm_id, kpm).unwrap(),
            BootstrapInstruction::new(MAF, enrolee_id).unwrap(),
        )
    };
    let config = MefConfig::new(
        MEF,
        vec![
            enrolee(KPM_1, &KPM_1_KEY, ENROLEE_1),
            enrolee(KPM_2, &KPM_2_KEY, ENROLEE_2),
        ],
    )
    .unwrap();
    let mafs = MafDirectory::new(vec![
        MafEntry::new(MAF_PSK, MAF, "maf.example.com:5684").unwrap(),
        MafEntry::new(OTHER_MAF_PSK, OTHER_MAF, "other-maf.example.com:5684").unwrap(),
    ])
    .unwrap();
    MefServer::new(
        Arc::new(config),
        Arc::new(mafs),
        Lifespan::from_secs(KE_LIFETIME).unwrap(),
    )
}

fn maf_client(km_id: &str, id: &str, key: u8, peers: &[&str]) -> MafClient {
    let credential = MasterCredential::builder()
        .this_entity_identifier(id)
        .master_credential(&[key; 32])
        .master_credential_identifier(km_id)
        .build()
        .unwrap();
    let associations = peers
        .iter()
        .map(|p| {
            AssociationConfig::builder()
                .other_entity_identifier(p)
                .build()
                .unwrap()
        })
        .collect();
    MafClient::new(credential, associations).unwrap()
}

fn maf_server() -> MafServer {
    let config = MafConfig::new(
        MAF,
        vec![
            maf_client(KM_A, ID_A, 0xA1, &[ID_B, ID_C]),
            maf_client(KM_B, ID_B, 0xB1, &[ID_A]),
            maf_client(KM_C, ID_C, 0xC1, &[ID_A]),
        ],
    )
    .unwrap();
    MafServer::new(Arc::new(config), Lifespan::from_secs(KC_LIFETIME).unwrap())
}

/// A connected TLS-PSK pair: the client authenticates with `identity` / `key`.
fn session_pair(identity: &str, key: &[u8; 32]) -> common::Pair {
    let psk = ClientPsk::new(identity.as_bytes(), Psk::new(key).unwrap()).unwrap();
    let client = Arc::new(
        ClientConfig::builder(psk)
            .suites(CipherSuite::ALL)
            .build()
            .unwrap(),
    );
    let mut table = PskTable::new();
    table
        .insert(identity.as_bytes(), Psk::new(key).unwrap())
        .unwrap();
    let server = Arc::new(
        ServerConfig::builder(Box::new(table))
            .suites(CipherSuite::ALL)
            .build()
            .unwrap(),
    );
    let (p, _, _) = common::handshake(client, server, None, 1000)
        .unwrap_or_else(|(e, _)| panic!("handshake of {identity}: {e}"));
    p
}

fn export(s: &Session, label: &[u8]) -> [u8; EXPORTER_LEN] {
    let mut out = [0u8; EXPORTER_LEN];
    s.export_keying_material(&mut out, label, None).unwrap();
    out
}

fn request(route: &Route, origin: &str, ri: &str, body: Option<Zeroizing<Vec<u8>>>) -> Request {
    let (method, path) = route.target();
    Request {
        method,
        path,
        origin: origin.into(),
        request_id: ri.into(),
        body: body.unwrap_or_default(),
    }
}

fn enrolment_req(origin: &str, enrolee_id: &str, maf_id: &str) -> Request {
    let body = to_body(&EnrolmentRequest {
        enrolee_id: enrolee_id.into(),
        maf_id: maf_id.into(),
    })
    .unwrap();
    request(&Route::Enrolment, origin, "ri-enrol", Some(body))
}

fn fetch_req(origin: &str, ke_id: &str, suid: u8) -> Request {
    let route = Route::FetchCredentials {
        ke_id: ke_id.into(),
        suid,
    };
    request(&route, origin, "ri-fetch", None)
}

fn key_reg_req(origin: &str, expiration_time: u64, targets: &[&str]) -> Request {
    let body = to_body(&KeyRegistrationRequest {
        maf_fqdn: MAF.into(),
        expiration_time,
        suid: 32,
        target_ids: targets.iter().map(|t| (*t).to_string()).collect(),
    })
    .unwrap();
    request(&Route::KeyRegistration, origin, "ri-keyreg", Some(body))
}

fn key_ret_req(origin: &str, relative: &str) -> Request {
    let route = Route::KeyRetrieval {
        relative_key_id: relative.into(),
    };
    request(&route, origin, "ri-keyret", None)
}

/// The wire round trip an adapter does: encode, decode.
fn over_the_wire(req: &Request) -> Request {
    let mut bytes = Vec::new();
    req.encode(&mut bytes).unwrap();
    let (decoded, used) = Request::decode(&bytes).unwrap().unwrap();
    assert_eq!(used, bytes.len());
    decoded
}

/// A MemoryKeyStore that logs operations and can snapshot every record it ever held.
#[derive(Default)]
struct Recording {
    inner: MemoryKeyStore,
    ops: Vec<&'static str>,
    ids: BTreeSet<String>,
}

impl KeyStore for Recording {
    fn execute(&mut self, op: StoreOp) -> StoreResult {
        self.ops.push(match &op {
            StoreOp::Get(_) => "get",
            StoreOp::Put(r) => {
                self.ids.insert(r.id.clone());
                "put"
            }
            StoreOp::Delete(_) => "delete",
            StoreOp::Derive { .. } => "derive",
            _ => "other",
        });
        self.inner.execute(op)
    }
}

impl Recording {
    /// Every record, secrets included (compared in constant time by `KeyRecord: Eq`).
    fn snapshot(&mut self) -> (usize, Vec<KeyRecord>) {
        let mut records = Vec::new();
        for id in &self.ids {
            if let StoreReply::Found(r) = self.inner.execute(StoreOp::Get(id.clone())).unwrap() {
                records.push(r);
            }
        }
        (self.inner.len(), records)
    }

    fn get(&mut self, id: &str) -> Option<KeyRecord> {
        match self.inner.execute(StoreOp::Get(id.into())).unwrap() {
            StoreReply::Found(r) => Some(r),
            _ => None,
        }
    }
}

/// A store that refuses every write (a full disk, a lost database connection).
#[derive(Default)]
struct FailingWrites(MemoryKeyStore);

impl KeyStore for FailingWrites {
    fn execute(&mut self, op: StoreOp) -> StoreResult {
        match op {
            StoreOp::Put(_) | StoreOp::Delete(_) => Err(StoreError::Backend {
                detail: "disk full".into(),
            }),
            op => self.0.execute(op),
        }
    }
}

fn ok_body<T: serde::de::DeserializeOwned>(r: &Response, rsc: Rsc) -> T {
    assert_eq!(r.rsc, rsc, "body: {}", String::from_utf8_lossy(&r.body));
    from_body(&r.body).unwrap()
}

/// Runs a refused request and checks the status code, the parameter named and that the
/// store did not change.
#[track_caller]
fn assert_refused<P: Pending>(
    store: &mut Recording,
    step: Result<Step<P>, ServerError>,
    now: Now,
    rsc: Rsc,
    parameter: &str,
) -> ErrorBody {
    let before = store.snapshot();
    let ops_before = store.ops.len();
    let response = run_to_completion(now, step, store);
    assert_eq!(
        response.rsc,
        rsc,
        "body: {}",
        String::from_utf8_lossy(&response.body)
    );
    let body: ErrorBody = from_body(&response.body).unwrap();
    assert_eq!(body.parameter.as_deref(), Some(parameter), "{body:?}");
    assert!(!body.error.is_empty());
    assert!(
        store.ops[ops_before..]
            .iter()
            .all(|op| *op == "get" || *op == "derive"),
        "a refusal wrote to the store: {:?}",
        &store.ops[ops_before..]
    );
    assert_eq!(store.snapshot(), before, "store changed by a refusal");
    body
}

/// An Enrolee's bootstrap over a real session: the MEF's stored Ke and the Enrolee's own Ke /
/// KeID.
struct Enrolled {
    ke_id: KeyId,
    ke: m2msec::keys::Ke,
    response: EnrolmentResponse,
}

fn enrol(mef: &MefServer, store: &mut Recording) -> Enrolled {
    let p = session_pair(KPM_1, &KPM_1_KEY);
    let peer = PeerContext::from_session(&p.server, BOOTSTRAP_EXPORTER_LABEL).unwrap();
    let (ke_id, ke) = enrolment_key(&export(&p.client, BOOTSTRAP_EXPORTER_LABEL), MEF).unwrap();
    let req = over_the_wire(&enrolment_req(ENROLEE_1, ENROLEE_1, MAF));
    let response = run_to_completion(NOW, mef.handle_request(NOW, &peer, &req), store);
    let response: EnrolmentResponse = ok_body(&response, Rsc::Created);
    Enrolled {
        ke_id,
        ke,
        response,
    }
}

// ---- MEF: Enrolment ---------------------------------------------------------------------------

#[test]
fn enrolment_stores_ke_and_answers_with_the_enrolees_own_keid() {
    let mef = mef_server();
    let mut store = Recording::default();
    let p = session_pair(KPM_1, &KPM_1_KEY);
    let peer = PeerContext::from_session(&p.server, BOOTSTRAP_EXPORTER_LABEL).unwrap();
    let (enrolee_ke_id, enrolee_ke) =
        enrolment_key(&export(&p.client, BOOTSTRAP_EXPORTER_LABEL), MEF).unwrap();

    let req = over_the_wire(&enrolment_req(ENROLEE_1, ENROLEE_1, MAF));
    let step = mef.handle_request(NOW, &peer, &req).unwrap();
    // The first step is the Put, not a response.
    let Step::Store(pending) = step else {
        panic!("responded before storing")
    };
    let StoreOp::Put(record) = pending.op() else {
        panic!("not a Put: {:?}", pending.op())
    };
    assert_eq!(record.id, enrolee_ke_id.as_str());
    assert_eq!(record.kind, KeyKind::Ke);
    assert_eq!(record.owner, ENROLEE_1);
    assert_eq!(record.targets, [MAF]);
    assert_eq!(record.not_after, UnixTime(T0 + KE_LIFETIME));
    assert_eq!(record.secret.expose(), enrolee_ke.expose());
    // Secrets stay out of Debug.
    let debug = format!("{pending:?} {peer:?}");
    assert!(
        !debug.contains(&hex::encode(enrolee_ke.expose())),
        "{debug}"
    );
    assert!(!debug.contains(&hex::encode_upper(enrolee_ke.expose())));

    let result = store.execute(pending.op().clone());
    let Step::Respond(response) = pending.resume(NOW, result).unwrap() else {
        panic!("no response after the store acknowledged")
    };
    assert_eq!(response.request_id, "ri-enrol");
    let body: EnrolmentResponse = ok_body(&response, Rsc::Created);
    assert_eq!(
        body.ke_id,
        enrolee_ke_id.as_str(),
        "Enrolee's KeID = MEF's KeID"
    );
    assert_eq!(
        KeyId::parse(IdKind::Ke, &body.ke_id).unwrap(),
        enrolee_ke_id
    );
    assert_eq!(body.maf_id, MAF);
    assert_eq!(body.maf_uri, "maf.example.com:5684");
    assert_eq!(body.expiration_time, T0 + KE_LIFETIME);
    let stored = store.get(enrolee_ke_id.as_str()).unwrap();
    assert_eq!(stored.secret.expose(), enrolee_ke.expose());

    let mut bytes = Vec::new();
    response.encode(&mut bytes).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.starts_with("HTTP/1.1 201 Created\r\n") && text.contains("X-M2M-RSC: 2001"));
}

#[test]
fn enrolment_refusals_leave_the_store_unchanged() {
    let mef = mef_server();
    let mut store = Recording::default();
    enrol(&mef, &mut store); // something to keep unchanged
    let p = session_pair(KPM_1, &KPM_1_KEY);
    let peer = PeerContext::from_session(&p.server, BOOTSTRAP_EXPORTER_LABEL).unwrap();

    // The Enrolee is not authorized for that MAF-ID.
    let req = enrolment_req(ENROLEE_1, ENROLEE_1, OTHER_MAF);
    let e = assert_refused(
        &mut store,
        mef.handle_request(NOW, &peer, &req),
        NOW,
        Rsc::NoPrivilege,
        "mafID",
    );
    assert!(e.error.contains("not authorized"), "{e:?}");

    // The KpmID of the session belongs to Enrolee 1, the request names Enrolee 2.
    let req = enrolment_req(ENROLEE_1, ENROLEE_2, MAF);
    let e = assert_refused(
        &mut store,
        mef.handle_request(NOW, &peer, &req),
        NOW,
        Rsc::NoPrivilege,
        "enroleeID",
    );
    assert!(e.error.contains("KpmID"), "{e:?}");

    // ... and the originator claims Enrolee 2.
    let req = enrolment_req(ENROLEE_2, ENROLEE_2, MAF);
    assert_refused(
        &mut store,
        mef.handle_request(NOW, &peer, &req),
        NOW,
        Rsc::NoPrivilege,
        "X-M2M-Origin",
    );

    // A session authenticated with a KpmID the MEF does not know (here: a MAF's identity).
    let stranger = PeerContext::new(MAF_PSK.as_bytes()).with_exporter(&[7; EXPORTER_LEN]);
    let req = enrolment_req(ENROLEE_1, ENROLEE_1, MAF);
    assert_refused(
        &mut store,
        mef.handle_request(NOW, &stranger, &req),
        NOW,
        Rsc::NoPrivilege,
        "kpmId",
    );

    // Malformed content and a MAF-ID that is not a DNS name.
    let mut req = enrolment_req(ENROLEE_1, ENROLEE_1, MAF);
    req.body = Zeroizing::new(br#"{"enroleeID":"C-enrolee-1"}"#.to_vec());
    let r = run_to_completion(NOW, mef.handle_request(NOW, &peer, &req), &mut store);
    assert_eq!(r.rsc, Rsc::BadRequest);
    let req = enrolment_req(ENROLEE_1, ENROLEE_1, "not a name");
    assert_refused(
        &mut store,
        mef.handle_request(NOW, &peer, &req),
        NOW,
        Rsc::BadRequest,
        "mafID",
    );
    assert_eq!(store.inner.len(), 1);
}

#[test]
fn enrolment_is_not_reported_before_the_store_acknowledged() {
    let mef = mef_server();
    let p = session_pair(KPM_1, &KPM_1_KEY);
    let peer = PeerContext::from_session(&p.server, BOOTSTRAP_EXPORTER_LABEL).unwrap();
    let req = enrolment_req(ENROLEE_1, ENROLEE_1, MAF);

    let mut failing = FailingWrites::default();
    let r = run_to_completion(NOW, mef.handle_request(NOW, &peer, &req), &mut failing);
    assert_eq!(r.rsc, Rsc::InternalError);
    let body: ErrorBody = from_body(&r.body).unwrap();
    assert_eq!(
        body.error, "key store failure",
        "the backend's text is not sent"
    );
    assert!(from_body::<EnrolmentResponse>(&r.body).is_err());
    assert!(failing.0.is_empty());

    // Step by step: the store's error surfaces as a 5000 ServerError, for the log.
    let Ok(Step::Store(pending)) = mef.handle_request(NOW, &peer, &req) else {
        panic!("expected a store step")
    };
    let err = pending
        .resume(
            NOW,
            Err(StoreError::Backend {
                detail: "io".into(),
            }),
        )
        .unwrap_err();
    assert_eq!(err.rsc(), Rsc::InternalError);
    assert!(err.store_error().is_some());
    assert_eq!(err.to_string(), "5000 key store failure");

    // An unexpected reply is not an acknowledgement either.
    let Ok(Step::Store(pending)) = mef.handle_request(NOW, &peer, &req) else {
        panic!("expected a store step")
    };
    let err = pending.resume(NOW, Ok(StoreReply::NotFound)).unwrap_err();
    assert_eq!(err.rsc(), Rsc::InternalError);
}

// ---- MEF: fetchCredentials ----------------------------------------------------------------------

#[test]
fn the_target_maf_fetches_km_equal_to_the_enrolees() {
    let mef = mef_server();
    let mut store = Recording::default();
    let enrolled = enrol(&mef, &mut store);
    let enrolee_km = km(&enrolled.ke, MAF);

    let maf = PeerContext::new(MAF_PSK.as_bytes());
    let req = over_the_wire(&fetch_req(MAF, &enrolled.response.ke_id, 21));
    let step = mef.handle_request(NOW, &maf, &req).unwrap();
    let Step::Store(pending) = &step else {
        panic!("expected a Derive")
    };
    assert!(
        matches!(pending.op(), StoreOp::Derive { id, .. } if id == enrolled.ke_id.as_str()),
        "Ke is used inside the store, not fetched: {:?}",
        pending.op()
    );
    let ops = store.ops.len();
    let r = run_to_completion(NOW, Ok(step), &mut store);
    assert_eq!(store.ops[ops..], ["derive"]);
    let body: FetchCredentialsResponse = ok_body(&r, Rsc::Ok);
    assert!(body.status);
    assert_eq!(
        body.credential.as_ref().unwrap().0,
        *enrolee_km.expose(),
        "MEF's Km = keys::km(Ke, MAF-ID) on the Enrolee side"
    );
    assert_eq!(body.enrolee_id.as_deref(), Some(ENROLEE_1));
    assert_eq!(body.lifetime, Some(T0 + KE_LIFETIME));
    assert!(!format!("{body:?}").contains(&hex::encode(enrolee_km.expose())));

    // The MAF-ID compares case-insensitively; Km still uses the configured spelling (K3).
    let req = fetch_req(
        "MAF.Example.COM",
        &enrolled.response.ke_id.to_lowercase(),
        21,
    );
    let r = run_to_completion(NOW, mef.handle_request(NOW, &maf, &req), &mut store);
    let body: FetchCredentialsResponse = ok_body(&r, Rsc::Ok);
    assert_eq!(body.credential.unwrap().0, *enrolee_km.expose());
}

#[test]
fn fetch_credentials_refusals_leave_the_store_unchanged() {
    let mef = mef_server();
    let mut store = Recording::default();
    let enrolled = enrol(&mef, &mut store);
    let ke_id = enrolled.response.ke_id.as_str();
    let maf = PeerContext::new(MAF_PSK.as_bytes());

    // A MAF other than the target.
    let other = PeerContext::new(OTHER_MAF_PSK.as_bytes());
    let e = assert_refused(
        &mut store,
        mef.handle_request(NOW, &other, &fetch_req(OTHER_MAF, ke_id, 21)),
        NOW,
        Rsc::NoPrivilege,
        "mafID",
    );
    assert!(e.error.contains("not the MAF-ID"), "{e:?}");
    // ... even when it claims the target's MAF-ID as originator.
    assert_refused(
        &mut store,
        mef.handle_request(NOW, &other, &fetch_req(MAF, ke_id, 21)),
        NOW,
        Rsc::NoPrivilege,
        "X-M2M-Origin",
    );
    // The Enrolee itself is not a MAF.
    let enrolee = PeerContext::new(KPM_1.as_bytes());
    assert_refused(
        &mut store,
        mef.handle_request(NOW, &enrolee, &fetch_req(MAF, ke_id, 21)),
        NOW,
        Rsc::NoPrivilege,
        "mafID",
    );
    // Unknown KeID (well-formed), a KeID of another MEF, a malformed KeID.
    let unknown = format!("{}@{MEF}", "AB".repeat(16));
    let e = assert_refused(
        &mut store,
        mef.handle_request(NOW, &maf, &fetch_req(MAF, &unknown, 21)),
        NOW,
        Rsc::NotFound,
        "keID",
    );
    assert_eq!(e.error, "unknown or expired KeID");
    let foreign = ke_id.replace(MEF, "mef.elsewhere.example");
    assert_refused(
        &mut store,
        mef.handle_request(NOW, &maf, &fetch_req(MAF, &foreign, 21)),
        NOW,
        Rsc::NotFound,
        "keID",
    );
    assert_refused(
        &mut store,
        mef.handle_request(NOW, &maf, &fetch_req(MAF, "nothex@mef.example.com", 21)),
        NOW,
        Rsc::BadRequest,
        "keID",
    );
    // Expired Ke: valid up to and including not_after, refused after.
    let last = Now {
        unix: UnixTime(T0 + KE_LIFETIME),
        ..NOW
    };
    let r = run_to_completion(
        last,
        mef.handle_request(last, &maf, &fetch_req(MAF, ke_id, 21)),
        &mut store,
    );
    assert_eq!(r.rsc, Rsc::Ok);
    let later = Now {
        unix: UnixTime(T0 + KE_LIFETIME + 1),
        ..NOW
    };
    assert_refused(
        &mut store,
        mef.handle_request(later, &maf, &fetch_req(MAF, ke_id, 21)),
        later,
        Rsc::NotFound,
        "keID",
    );
    // Wrong SUID.
    assert_refused(
        &mut store,
        mef.handle_request(NOW, &maf, &fetch_req(MAF, ke_id, 32)),
        NOW,
        Rsc::BadRequest,
        "suid",
    );
    let mut req = fetch_req(MAF, ke_id, 21);
    req.path = format!("/mef/fetchCredentials/{ke_id}/x");
    assert_refused(
        &mut store,
        mef.handle_request(NOW, &maf, &req),
        NOW,
        Rsc::BadRequest,
        "suid",
    );
    // A MAF procedure at the MEF, an unknown path.
    let r = run_to_completion(
        NOW,
        mef.handle_request(NOW, &maf, &key_ret_req(MAF, "AB")),
        &mut store,
    );
    assert_eq!(r.rsc, Rsc::NotFound);
    let mut req = fetch_req(MAF, ke_id, 21);
    req.method = Method::Delete;
    let r = run_to_completion(NOW, mef.handle_request(NOW, &maf, &req), &mut store);
    assert_eq!(r.rsc, Rsc::NotFound);
}

// ---- MAF: Key Registration and Key Retrieval ------------------------------------------------------

/// Entity A registers a key over a real session with the MAF; returns A's own (KcID, Kc).
fn register_kc(
    maf: &MafServer,
    store: &mut Recording,
    targets: &[&str],
) -> (KeyId, m2msec::keys::Kc, KeyRegistrationResponse) {
    let p = session_pair(KM_A, &[0xA1; 32]);
    let peer = PeerContext::from_session(&p.server, CONNECTION_EXPORTER_LABEL).unwrap();
    let (kc_id, kc) = connection_key(&export(&p.client, CONNECTION_EXPORTER_LABEL), MAF).unwrap();
    let req = over_the_wire(&key_reg_req(ID_A, T0 + 10 * KC_LIFETIME, targets));
    let step = maf.handle_request(NOW, &peer, &req).unwrap();
    let Step::Store(pending) = &step else {
        panic!("responded before storing")
    };
    assert!(matches!(pending.op(), StoreOp::Put(r) if r.id == kc_id.as_str()));
    let r = run_to_completion(NOW, Ok(step), store);
    let body: KeyRegistrationResponse = ok_body(&r, Rsc::Created);
    (kc_id, kc, body)
}

#[test]
fn key_registration_then_retrieval_by_the_target() {
    let maf = maf_server();
    let mut store = Recording::default();
    let (kc_id, kc, reg) = register_kc(&maf, &mut store, &[ID_B]);
    assert_eq!(
        reg.relative_key_id,
        kc_id.relative(),
        "RelativeKeyID = HEX(KcID)"
    );
    assert_eq!(reg.source_maf_client_id, ID_A);
    assert_eq!(
        reg.expiration_time,
        T0 + KC_LIFETIME,
        "min(requested, policy)"
    );
    assert_eq!(reg.suid, 32);
    assert_eq!(reg.target_ids, [ID_B]);
    let stored = store.get(kc_id.as_str()).unwrap();
    assert_eq!(
        (
            stored.kind,
            stored.owner.as_str(),
            stored.targets.as_slice()
        ),
        (KeyKind::Kc, ID_A, [ID_B.to_string()].as_slice())
    );

    let b = PeerContext::new(KM_B.as_bytes());
    let req = over_the_wire(&key_ret_req(ID_B, &reg.relative_key_id));
    let r = run_to_completion(NOW, maf.handle_request(NOW, &b, &req), &mut store);
    let body: KeyRetrievalResponse = ok_body(&r, Rsc::Ok);
    assert_eq!(body.key_value.0, *kc.expose(), "B gets the Kc A exported");
    assert_eq!(body.source_maf_client_id, ID_A);
    assert_eq!(body.expiration_time, T0 + KC_LIFETIME);
    assert_eq!(body.suid, 32);
    // The full identifier, in another case, names the same key.
    let full = format!("{}@MAF.EXAMPLE.COM", reg.relative_key_id.to_lowercase());
    let r = run_to_completion(
        NOW,
        maf.handle_request(NOW, &b, &key_ret_req(ID_B, &full)),
        &mut store,
    );
    assert_eq!(r.rsc, Rsc::Ok);
}

#[test]
fn key_retrieval_refusals_leave_the_store_unchanged() {
    let maf = maf_server();
    let mut store = Recording::default();
    let (_, _, reg) = register_kc(&maf, &mut store, &[ID_B]);
    let rel = reg.relative_key_id.as_str();
    let b = PeerContext::new(KM_B.as_bytes());

    // C is a configured client but not a target.
    let c = PeerContext::new(KM_C.as_bytes());
    let e = assert_refused(
        &mut store,
        maf.handle_request(NOW, &c, &key_ret_req(ID_C, rel)),
        NOW,
        Rsc::NoPrivilege,
        "targetIDs",
    );
    assert!(e.error.contains("not a registered target"), "{e:?}");
    // C claiming to be B as originator.
    assert_refused(
        &mut store,
        maf.handle_request(NOW, &c, &key_ret_req(ID_B, rel)),
        NOW,
        Rsc::NoPrivilege,
        "X-M2M-Origin",
    );
    // The owner itself is not a target either.
    let a = PeerContext::new(KM_A.as_bytes());
    assert_refused(
        &mut store,
        maf.handle_request(NOW, &a, &key_ret_req(ID_A, rel)),
        NOW,
        Rsc::NoPrivilege,
        "targetIDs",
    );
    // Expired Kc.
    let later = Now {
        unix: UnixTime(reg.expiration_time + 1),
        ..NOW
    };
    assert_refused(
        &mut store,
        maf.handle_request(later, &b, &key_ret_req(ID_B, rel)),
        later,
        Rsc::NotFound,
        "relativeKeyID",
    );
    // Unknown RelativeKeyID, one of another MAF, a malformed one.
    let e = assert_refused(
        &mut store,
        maf.handle_request(NOW, &b, &key_ret_req(ID_B, &"0F".repeat(16))),
        NOW,
        Rsc::NotFound,
        "relativeKeyID",
    );
    assert_eq!(e.error, "unknown or expired RelativeKeyID");
    assert_refused(
        &mut store,
        maf.handle_request(NOW, &b, &key_ret_req(ID_B, &format!("{rel}@other.example"))),
        NOW,
        Rsc::NotFound,
        "relativeKeyID",
    );
    assert_refused(
        &mut store,
        maf.handle_request(NOW, &b, &key_ret_req(ID_B, "bad*id")),
        NOW,
        Rsc::BadRequest,
        "relativeKeyID",
    );
    // A session with an identity the MAF does not know: the store lookup finds no Km.
    let stranger = PeerContext::new(b"km-zz@maf.example.com");
    assert_refused(
        &mut store,
        maf.handle_request(NOW, &stranger, &key_ret_req(ID_B, rel)),
        NOW,
        Rsc::NoPrivilege,
        "masterCredentialIdentifier",
    );
    let garbage = PeerContext::new(b"Client_identity");
    assert_refused(
        &mut store,
        maf.handle_request(NOW, &garbage, &key_ret_req(ID_B, rel)),
        NOW,
        Rsc::NoPrivilege,
        "masterCredentialIdentifier",
    );
}

#[test]
fn key_registration_refusals_and_store_failure() {
    let maf = maf_server();
    let mut store = Recording::default();
    register_kc(&maf, &mut store, &[ID_B]);
    let p = session_pair(KM_A, &[0xA1; 32]);
    let peer = PeerContext::from_session(&p.server, CONNECTION_EXPORTER_LABEL).unwrap();
    let exp = T0 + 3600;

    // A target outside A's association configuration.
    assert_refused(
        &mut store,
        maf.handle_request(NOW, &peer, &key_reg_req(ID_A, exp, &["C-stranger"])),
        NOW,
        Rsc::NoPrivilege,
        "targetIDs",
    );
    assert_refused(
        &mut store,
        maf.handle_request(NOW, &peer, &key_reg_req(ID_A, exp, &[])),
        NOW,
        Rsc::BadRequest,
        "targetIDs",
    );
    assert_refused(
        &mut store,
        maf.handle_request(NOW, &peer, &key_reg_req(ID_A, exp, &["bad id"])),
        NOW,
        Rsc::BadRequest,
        "targetIDs",
    );
    assert_refused(
        &mut store,
        maf.handle_request(NOW, &peer, &key_reg_req(ID_A, T0, &[ID_B])),
        NOW,
        Rsc::BadRequest,
        "expirationTime",
    );
    assert_refused(
        &mut store,
        maf.handle_request(NOW, &peer, &key_reg_req(ID_B, exp, &[ID_B])),
        NOW,
        Rsc::NoPrivilege,
        "X-M2M-Origin",
    );
    let mut req = key_reg_req(ID_A, exp, &[ID_B]);
    req.body = to_body(&KeyRegistrationRequest {
        maf_fqdn: OTHER_MAF.into(),
        expiration_time: exp,
        suid: 32,
        target_ids: vec![ID_B.into()],
    })
    .unwrap();
    assert_refused(
        &mut store,
        maf.handle_request(NOW, &peer, &req),
        NOW,
        Rsc::BadRequest,
        "mafFQDN",
    );
    req.body = to_body(&KeyRegistrationRequest {
        maf_fqdn: MAF.into(),
        expiration_time: exp,
        suid: 33,
        target_ids: vec![ID_B.into()],
    })
    .unwrap();
    assert_refused(
        &mut store,
        maf.handle_request(NOW, &peer, &req),
        NOW,
        Rsc::BadRequest,
        "suid",
    );

    // The store refuses the write: 5000, nothing registered.
    let mut failing = FailingWrites::default();
    let r = run_to_completion(
        NOW,
        maf.handle_request(NOW, &peer, &key_reg_req(ID_A, exp, &[ID_B])),
        &mut failing,
    );
    assert_eq!(r.rsc, Rsc::InternalError);
    assert!(from_body::<KeyRegistrationResponse>(&r.body).is_err());
    assert!(failing.0.is_empty());
}

// ---- The whole bootstrap: Enrolment, first contact at the MAF, Client Registration ------------

#[test]
fn bootstrapped_client_registers_and_then_registers_keys() {
    let mef = mef_server();
    let maf = maf_server();
    let mut mef_store = Recording::default();
    let mut maf_store = Recording::default();
    let enrolled = enrol(&mef, &mut mef_store);
    let enrolee_km = km(&enrolled.ke, MAF);

    // First contact (D13, the adapter's part): the session's psk_identity is the KeID; the MAF
    // fetches Km from its MEF and stores it under the KeID.
    let ke_id = KeyId::parse(IdKind::Ke, &enrolled.response.ke_id).unwrap();
    let fetch = maf.fetch_credentials_request(&ke_id, "ri-1");
    assert_eq!(fetch.origin, MAF);
    let maf_at_mef = PeerContext::new(MAF_PSK.as_bytes());
    let reply = run_to_completion(
        NOW,
        mef.handle_request(NOW, &maf_at_mef, &over_the_wire(&fetch)),
        &mut mef_store,
    );
    let record = maf.km_record_from_mef(NOW, &ke_id, &reply).unwrap();
    assert_eq!(record.secret.expose(), enrolee_km.expose());
    assert_eq!(record.owner, ENROLEE_1);
    maf_store.execute(StoreOp::Put(record)).unwrap();

    // Client Registration over the KeID session.
    let keid_session = PeerContext::new(enrolled.ke_id.as_bytes());
    let body = to_body(&ClientRegistrationRequest {
        maf_fqdn: MAF.into(),
        expiration_time: T0 + 1000,
    })
    .unwrap();
    let req = request(&Route::ClientRegistration, ENROLEE_1, "ri-2", Some(body));
    let r = run_to_completion(
        NOW,
        maf.handle_request(NOW, &keid_session, &req),
        &mut maf_store,
    );
    let reg: ClientRegistrationResponse = ok_body(&r, Rsc::Created);
    assert_eq!(reg.expiration_time, T0 + 1000);
    let km_id = KeyId::parse(IdKind::Km, &reg.assigned_symm_key_id).unwrap();
    assert!(km_id.relative().starts_with("km-") && km_id.fqdn() == MAF);
    let stored = maf_store.get(&store_id(&km_id)).unwrap();
    assert_eq!(stored.secret.expose(), enrolee_km.expose());
    assert_eq!(
        (stored.kind, stored.owner.as_str()),
        (KeyKind::Km, ENROLEE_1)
    );
    // Repeating it assigns the same KmID.
    let r = run_to_completion(
        NOW,
        maf.handle_request(NOW, &keid_session, &req),
        &mut maf_store,
    );
    let again: ClientRegistrationResponse = ok_body(&r, Rsc::Created);
    assert_eq!(again.assigned_symm_key_id, reg.assigned_symm_key_id);

    // A KmID session cannot register again; a stranger's origin is refused.
    let km_session = PeerContext::new(km_id.as_bytes());
    assert_refused(
        &mut maf_store,
        maf.handle_request(NOW, &km_session, &req),
        NOW,
        Rsc::NoPrivilege,
        "masterCredentialIdentifier",
    );
    let mut wrong_origin = req.clone();
    wrong_origin.origin = ENROLEE_2.into();
    assert_refused(
        &mut maf_store,
        maf.handle_request(NOW, &keid_session, &wrong_origin),
        NOW,
        Rsc::NoPrivilege,
        "X-M2M-Origin",
    );

    // With its KmID the bootstrapped client registers a key (no association configuration:
    // any valid target), owned by its Enrolee-ID.
    let km_session = km_session.with_exporter(&[9; EXPORTER_LEN]);
    let r = run_to_completion(
        NOW,
        maf.handle_request(NOW, &km_session, &key_reg_req(ENROLEE_1, T0 + 60, &[ID_B])),
        &mut maf_store,
    );
    let kreg: KeyRegistrationResponse = ok_body(&r, Rsc::Created);
    assert_eq!(kreg.source_maf_client_id, ENROLEE_1);
    assert_eq!(kreg.expiration_time, T0 + 60);
    let b = PeerContext::new(KM_B.as_bytes());
    let r = run_to_completion(
        NOW,
        maf.handle_request(NOW, &b, &key_ret_req(ID_B, &kreg.relative_key_id)),
        &mut maf_store,
    );
    let kret: KeyRetrievalResponse = ok_body(&r, Rsc::Ok);
    let (_, kc) = connection_key(&[9; EXPORTER_LEN], MAF).unwrap();
    assert_eq!(kret.key_value.0, *kc.expose());

    // After the Km expires, the session's identity no longer resolves.
    let later = Now {
        unix: UnixTime(T0 + 1001),
        ..NOW
    };
    assert_refused(
        &mut maf_store,
        maf.handle_request(
            later,
            &km_session,
            &key_reg_req(ENROLEE_1, T0 + 2000, &[ID_B]),
        ),
        later,
        Rsc::NoPrivilege,
        "masterCredentialExpiry",
    );

    // A refused fetch yields no record.
    let refused = run_to_completion(
        NOW,
        mef.handle_request(
            NOW,
            &PeerContext::new(OTHER_MAF_PSK.as_bytes()),
            &fetch_req(OTHER_MAF, ke_id.as_str(), 21),
        ),
        &mut mef_store,
    );
    assert_eq!(
        maf.km_record_from_mef(NOW, &ke_id, &refused).unwrap_err(),
        m2msec::frameworks::maf::MefReplyError::Refused(Rsc::NoPrivilege)
    );
}

#[test]
fn steps_are_typed_per_server() {
    // The aliases name the two servers' steps; both run through the same helper.
    fn is_store<P>(s: &Step<P>) -> bool {
        matches!(s, Step::Store(_))
    }
    let p = session_pair(KPM_1, &KPM_1_KEY);
    let peer = PeerContext::from_session(&p.server, BOOTSTRAP_EXPORTER_LABEL).unwrap();
    let s: MefStep = mef_server()
        .handle_request(NOW, &peer, &enrolment_req(ENROLEE_1, ENROLEE_1, MAF))
        .unwrap();
    assert!(is_store(&s));
    let s: Result<MafStep, _> = maf_server().handle_request(
        NOW,
        &PeerContext::new(KM_B.as_bytes()),
        &key_ret_req(ID_B, "AB"),
    );
    assert!(is_store(&s.unwrap()));
}
