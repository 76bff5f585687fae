//! Crash safety of the real `m2msec mef` process: an acknowledged Enrolment (the `201 Created`
//! the Enrolee received, sent only after the store committed Ke) is never lost when the MEF is
//! killed with SIGKILL while other Enrolments are being written, and the store restarts without
//! corruption.
//!
//! Each round starts `m2msec mef` on a fresh redb store, then several times: runs Enrolments
//! from concurrent tasks, SIGKILLs the process after 200-600 ms (writes in flight), restarts it
//! on the same store, and checks as the MAF that the MEF releases, for every KeID acknowledged
//! so far, exactly the Km the Enrolee derives from its Ke; then that the restarted MEF still
//! enrols. The round ends with one last SIGKILL and an audit of the store file in this process
//! (every record authenticates, every acknowledged Ke is there byte for byte). Unacknowledged
//! Enrolments in flight at a kill may or may not be stored; nothing is asserted about them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use m2msec::frameworks::config::{BootstrapCredential, BootstrapInstruction, EnroleeBootstrap};
use m2msec::keys;
use m2msec::store::store_id;
use m2msec::{ClientPsk, Psk};
use m2msec_tokio::frameworks::mef::{enrol, fetch_km, Enrolment};
use m2msec_tokio::store::{AsyncKeyStore, Kek, RedbKeyStore};
use tokio::time::timeout;

mod common;
use common::{KillProc, TempDir, LIMIT};

const MEF: &str = "mef.example.com";
const MAF_ID: &str = "maf.example.com";
const MAF_URI: &str = "https://localhost:7002";
const MAF_PSK_ID: &str = "maf.example.com@mef.example.com";
const MAF_PSK: [u8; 32] = [0x5a; 32];
const KEK: [u8; 32] = [0x42; 32];
/// The Enrolees of the MEF: (KpmID, Kpm, Enrolee-ID).
const ENROLEES: [(&str, [u8; 32], &str); 2] = [
    ("mn-e.kpm1@mef.example.com", [0x11; 32], "/id-mn-e"),
    (
        "mn-f.kpm1@mef.example.com",
        [0x22; 32],
        "//sp.example.com/id-mn-f",
    ),
];
const ROUNDS: usize = 3;
const KILLS_PER_ROUND: usize = 3;
/// Concurrent Enrolee tasks while the MEF is killed.
const WRITERS: usize = 6;
fn random_below(n: u64) -> u64 {
    let mut b = [0u8; 8];
    getrandom::getrandom(&mut b).unwrap();
    u64::from_le_bytes(b) % n
}

/// A MEF file: both Enrolees provisioned for [`MAF_ID`], TLS on an ephemeral port, the store in
/// the file's directory.
fn mef_toml() -> String {
    let mut s = format!("role = \"mef\"\nmefIdentifier = \"{MEF}\"\n");
    for (kpm_id, kpm, enrolee_id) in ENROLEES {
        s += &format!(
            "\n[[enrolee]]\n[enrolee.credential]\nkpmId = \"{kpm_id}\"\nkpm = \"{}\"\n\
             [enrolee.instruction]\nmafId = \"{MAF_ID}\"\nenroleeId = \"{enrolee_id}\"\n",
            hex::encode(kpm)
        );
    }
    s += &format!(
        "\n[service]\nlisten = \"127.0.0.1:0\"\nstore = \"mef.redb\"\nkek = \"{}\"\n\
         keyLifetime = \"1d\"\n\n[[service.maf]]\nmafId = \"{MAF_ID}\"\nmafUri = \"{MAF_URI}\"\n\
         pskIdentity = \"{MAF_PSK_ID}\"\npsk = \"{}\"\n",
        hex::encode(KEK),
        hex::encode(MAF_PSK)
    );
    s
}

fn bootstrap(i: usize) -> EnroleeBootstrap {
    let (kpm_id, kpm, enrolee_id) = ENROLEES[i];
    EnroleeBootstrap::new(
        BootstrapCredential::new(kpm_id, &kpm).unwrap(),
        "https://mef.example.com",
        BootstrapInstruction::new(MAF_ID, enrolee_id).unwrap(),
    )
    .unwrap()
}

fn maf_psk() -> ClientPsk {
    ClientPsk::new(MAF_PSK_ID.as_bytes(), Psk::new(&MAF_PSK).unwrap()).unwrap()
}

/// An acknowledged Enrolment and the Enrolee it belongs to.
type Acked = (usize, Enrolment);

/// Runs Enrolments from [`WRITERS`] tasks against `mef`, SIGKILLs it after `delay` while they
/// run, and returns the acknowledged ones and how many were cut off by the kill.
async fn enrol_until_killed(mef: KillProc, delay: Duration) -> (Vec<Acked>, usize) {
    let addr = mef.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let failed = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let (stop, acked, failed) = (Arc::clone(&stop), Arc::clone(&acked), Arc::clone(&failed));
        tasks.push(tokio::spawn(async move {
            let who = w % ENROLEES.len();
            let b = bootstrap(who);
            while !stop.load(Ordering::SeqCst) {
                match timeout(LIMIT, enrol(addr, &b, MEF, Some(MEF))).await {
                    Ok(Ok(e)) => acked.lock().unwrap().push((who, e)),
                    Ok(Err(_)) | Err(_) => {
                        // Cut off by the kill, or refused once the MEF is gone.
                        failed.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
            }
        }));
    }
    tokio::time::sleep(delay).await;
    mef.sigkill();
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.unwrap();
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    (acked, failed.load(Ordering::SeqCst))
}

/// As the MAF: every acknowledged KeID releases the Km its Enrolee derives.
async fn check_released(addr: SocketAddr, acked: &Arc<Vec<Acked>>) {
    const FETCHERS: usize = 4;
    let mut tasks = Vec::new();
    for f in 0..FETCHERS {
        let acked = Arc::clone(acked);
        tasks.push(tokio::spawn(async move {
            for (who, e) in acked.iter().skip(f).step_by(FETCHERS) {
                let got = timeout(
                    LIMIT,
                    fetch_km(addr, maf_psk(), &e.ke_id, MAF_ID, Some(MEF)),
                )
                .await
                .expect("fetchCredentials timed out")
                .unwrap_or_else(|err| {
                    panic!(
                        "acknowledged {} lost after SIGKILL: {err}",
                        e.ke_id.as_str()
                    )
                });
                assert_eq!(got.km, keys::km(&e.ke, MAF_ID), "{}", e.ke_id.as_str());
                assert_eq!(got.enrolee_id, ENROLEES[*who].2);
                assert_eq!(got.expires, e.expires);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// After a restart: the MEF still enrols, and releases the new Km.
async fn enrol_once(addr: SocketAddr) -> Acked {
    let e = timeout(LIMIT, enrol(addr, &bootstrap(0), MEF, Some(MEF)))
        .await
        .expect("enrolment timed out")
        .expect("the restarted MEF enrols");
    assert!(e.ke_id.as_str().ends_with("@mef.example.com"));
    assert_eq!(e.maf_id, MAF_ID);
    assert_eq!(e.maf_uri, MAF_URI);
    (0, e)
}

/// Opens the store file here (redb repairs it back to the last commit), authenticates every
/// record and compares every acknowledged Ke byte for byte.
async fn audit_store(path: PathBuf, acked: &[Acked]) -> usize {
    let store = tokio::task::spawn_blocking(move || {
        let store = RedbKeyStore::open(&path, Kek::new(KEK)).expect("store opens after SIGKILL");
        let n = store.verify_all().expect("no corrupt record");
        (store, n)
    })
    .await
    .unwrap();
    let (store, records) = store;
    assert!(
        records >= acked.len(),
        "{records} records < {} acknowledged",
        acked.len()
    );
    for (who, e) in acked {
        let rec = store
            .get(store_id(&e.ke_id))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("acknowledged {} missing", e.ke_id.as_str()));
        assert_eq!(rec.secret.expose(), e.ke.expose(), "{}", e.ke_id.as_str());
        assert_eq!(rec.owner, ENROLEES[*who].2);
        assert_eq!(rec.targets, vec![MAF_ID.to_owned()]);
        assert_eq!(rec.not_after, e.expires);
    }
    records
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_enrolments_survive_sigkill_of_the_mef() {
    let started = Instant::now();
    for round in 0..ROUNDS {
        let dir = TempDir::new(&format!("round{round}"));
        let config = dir.path("mef.toml");
        std::fs::write(&config, mef_toml()).unwrap();
        let mut acked: Vec<Acked> = Vec::new();
        let mut cut_off = 0;
        let mut mef = KillProc::start("mef", &config);
        for kill in 0..KILLS_PER_ROUND {
            // 200-600 ms, spread over the kills of a round, plus jitter.
            let step = 400 / KILLS_PER_ROUND as u64;
            let ms = 200 + step * kill as u64 + random_below(step);
            let (new, failed) = enrol_until_killed(mef, Duration::from_millis(ms)).await;
            acked.extend(new);
            cut_off += failed;

            // Restart on the same store: it must open (no corruption) and serve.
            mef = KillProc::start("mef", &config);
            let all = Arc::new(std::mem::take(&mut acked));
            check_released(mef.addr, &all).await;
            acked = Arc::try_unwrap(all).unwrap_or_else(|_| unreachable!());
            acked.push(enrol_once(mef.addr).await);
        }
        let last = mef.addr;
        mef.sigkill();
        let records = audit_store(dir.path("mef.redb"), &acked).await;
        eprintln!(
            "round {round}: {} acknowledged enrolments checked after {KILLS_PER_ROUND} SIGKILLs \
             ({records} records, {cut_off} failed around the kills, last MEF {last})",
            acked.len()
        );
        // Each kill contributes its enrolments plus the one after the restart.
        assert!(
            acked.len() > KILLS_PER_ROUND,
            "round {round}: no enrolment acknowledged before the kills"
        );
    }
    eprintln!("crash test took {:?}", started.elapsed());
}
