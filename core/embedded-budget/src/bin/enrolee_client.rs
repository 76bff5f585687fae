//! A PSK-only Enrolee and MAF client (Entity A) over DTLS 1.2, built on the core with `binding`
//! and without `ecdhe`: its Bootstrap configuration (`frameworks::config`), the Pre-Provisioned
//! Symmetric Key Security Bootstrap with the MEF (KpmId/Kpm, `POST /mef/enrolment`, Ke/KeID from
//! the exporter, Km for the MAF), then a Key Registration at the MAF (KeID/Km on first contact,
//! `POST /maf/keyRegistration`, Kc/KcID from the exporter). Each exchange is one DTLS session:
//! handshake with retransmission timers, the HTTP/1.1 + JSON request, its response, close_notify.
//! Radio and clock are opaque (`rt`) as in `psk_client`.
#![no_std]
#![no_main]

extern crate alloc;

#[path = "../rt.rs"]
mod rt;

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use m2msec::frameworks::binding::{
    from_body, to_body, EnrolmentRequest, EnrolmentResponse, KeyRegistrationRequest,
    KeyRegistrationResponse, Request, Response, Route,
};
use m2msec::frameworks::config::{BootstrapCredential, BootstrapInstruction, EnroleeBootstrap};
use m2msec::keys::{self, BOOTSTRAP_EXPORTER_LABEL, CONNECTION_EXPORTER_LABEL, EXPORTER_LEN};
use m2msec::{ClientConfig, ClientPsk, Event, Instant, Now, Output, Psk, Session, Transport};

const KPM_ID: &str = "kpm-0001@mef.example.com";
const MEF_URI: &str = "coaps://mef.example.com";
const MAF_ID: &str = "maf.example.com";
const ENROLEE_ID: &str = "/id-in/Cdevice-0001";
const TARGET: &str = "/id-in/CSE-B";
/// SUID 32: a MAF-distributed key for a security association.
const SUID_SAEF: u8 = 32;

/// Any failure: the figure is about code, not about which error it is.
struct Fail;

impl<E: core::fmt::Debug> From<E> for Fail {
    fn from(_: E) -> Self {
        Fail
    }
}

fn now() -> Now {
    Now {
        mono: Instant(rt::micros()),
        ..Now::default()
    }
}

/// One request over a fresh PSK DTLS session: the response and the session's exporter output
/// under `label`.
fn exchange(
    identity: &[u8],
    psk: Psk,
    request: &Request,
    label: &[u8],
    seed: [u8; 32],
) -> Result<(Response, [u8; EXPORTER_LEN]), Fail> {
    let config = Arc::new(ClientConfig::builder(ClientPsk::new(identity, psk)?).build()?);
    let mut session = Session::client(config, Transport::dtls(), None, now(), seed)?;
    let mut wire = Vec::new();
    request.encode(&mut wire)?;
    let mut exporter = [0u8; EXPORTER_LEN];
    let mut received = Vec::new();
    let mut out = [0u8; 1500];
    let mut rx = [0u8; 1500];
    loop {
        let deadline = loop {
            match session.poll_output(&mut out) {
                Output::Transmit(d) => rt::radio_tx(d),
                Output::Event(Event::Connected(_)) => {
                    session.export_keying_material(&mut exporter, label, None)?;
                    session.send(now(), &wire)?;
                }
                Output::Event(Event::AppData(d)) => {
                    received.extend_from_slice(d);
                    if let Some((response, _)) = Response::decode(&received)? {
                        session.close(now())?;
                        while let Output::Transmit(d) = session.poll_output(&mut out) {
                            rt::radio_tx(d);
                        }
                        return Ok((response, exporter));
                    }
                }
                Output::Wait(deadline) => break deadline,
                _ => return Err(Fail),
            }
        };
        let n = rt::radio_rx(&mut rx);
        if n == 0 {
            if deadline.is_some_and(|d| now().mono >= d) {
                session.handle_timeout(now())?;
            }
            continue;
        }
        let mut off = 0;
        while off < n {
            off += session.handle_input(now(), &rx[off..n])?;
            while let Output::Transmit(d) = session.poll_output(&mut out) {
                rt::radio_tx(d);
            }
        }
    }
}

fn request(
    route: &Route,
    origin: &str,
    request_id: &str,
    body: m2msec::frameworks::binding::Body,
) -> Request {
    let (method, path) = route.target();
    Request {
        method,
        path,
        origin: String::from(origin),
        request_id: String::from(request_id),
        body,
    }
}

fn run(kpm: &[u8], seeds: [[u8; 32]; 2]) -> Result<bool, Fail> {
    // The Enrolee's configuration (8.3.2.1): Bootstrap Credential, MEF URI, Bootstrap Instruction.
    let bootstrap = EnroleeBootstrap::new(
        BootstrapCredential::new(KPM_ID, kpm)?,
        MEF_URI,
        BootstrapInstruction::new(MAF_ID, ENROLEE_ID)?,
    )?;
    let credential = bootstrap.credential().ok_or(Fail)?;
    let instruction = bootstrap.instruction();
    let enrolee_id = instruction.enrolee_id().as_str();

    // Enrolment at the MEF.
    let body = to_body(&EnrolmentRequest {
        enrolee_id: String::from(enrolee_id),
        maf_id: String::from(instruction.maf_id().as_str()),
    })?;
    let (response, exporter) = exchange(
        credential.kpm_id().as_bytes(),
        credential.kpm().to_psk(),
        &request(&Route::Enrolment, enrolee_id, "e1", body),
        BOOTSTRAP_EXPORTER_LABEL,
        seeds[0],
    )?;
    if !response.rsc.is_success() {
        return Ok(false);
    }
    let enrolled: EnrolmentResponse = from_body(&response.body)?;
    let (ke_id, ke) = keys::enrolment_key(&exporter, bootstrap.mef_fqdn().ok_or(Fail)?)?;
    if !ke_id.as_str().eq_ignore_ascii_case(&enrolled.ke_id) {
        return Ok(false);
    }
    let km = keys::km(&ke, &enrolled.maf_id);

    // Key Registration at the MAF, first contact with KeID and Km.
    let body = to_body(&KeyRegistrationRequest {
        maf_fqdn: enrolled.maf_id.clone(),
        expiration_time: enrolled.expiration_time,
        suid: SUID_SAEF,
        target_ids: alloc::vec![String::from(TARGET)],
    })?;
    let (response, exporter) = exchange(
        ke_id.as_bytes(),
        km.to_psk(),
        &request(&Route::KeyRegistration, enrolee_id, "k1", body),
        CONNECTION_EXPORTER_LABEL,
        seeds[1],
    )?;
    if !response.rsc.is_success() {
        return Ok(false);
    }
    let registered: KeyRegistrationResponse = from_body(&response.body)?;
    let (kc_id, kc) = keys::connection_key(&exporter, &enrolled.maf_id)?;
    rt::radio_tx(kc.expose());
    Ok(registered
        .relative_key_id
        .eq_ignore_ascii_case(kc_id.relative()))
}

/// The entry point (the linker's `--entry` on the embedded target, libc's `main` on a host).
#[no_mangle]
pub extern "C" fn main(_argc: i32, _argv: *const *const u8) -> i32 {
    let mut kpm = [0u8; 32];
    let mut seeds = [[0u8; 32]; 2];
    rt::radio_rx(&mut kpm);
    rt::radio_rx(&mut seeds[0]);
    rt::radio_rx(&mut seeds[1]);
    match run(&kpm, seeds) {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(Fail) => 2,
    }
}
