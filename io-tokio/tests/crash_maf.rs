//! Crash safety of the real `m2msec maf` process: an acknowledged Key Registration (the `2001`
//! Entity A received, sent only after the store committed Kc) is never lost when the MAF is
//! killed with SIGKILL while other registrations are being written, and the store restarts
//! without corruption.
//!
//! The test starts `m2msec maf` on a fresh redb store, then several times: runs Key
//! Registrations ([`register_key`], configured client Km) from concurrent tasks for several
//! Entity As, SIGKILLs the process after 200-600 ms (writes in flight), restarts it on the same
//! store, and checks as the target registrar ([`retrieve_key`]) that every KcID acknowledged so
//! far is released with the same Kc, the same source (IdA) and the same expiry; then that the
//! restarted MAF still registers. It ends with one last SIGKILL and an audit of the store file
//! in this process (`RedbKeyStore::open`, every record authenticates with `verify_all`, every
//! acknowledged Kc is there byte for byte). Registrations cut off by a kill may or may not be
//! stored; nothing is asserted about them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use m2msec::keys::{Kc, KeyId, Km};
use m2msec::store::{store_id, KeyKind};
use m2msec_tokio::frameworks::maf::{register_key, retrieve_key, MafCredentials};
use m2msec_tokio::store::{AsyncKeyStore, Kek, RedbKeyStore};
use tokio::time::timeout;

mod common;
use common::{now, KillProc, TempDir, LIMIT};

const MAF_ID: &str = "maf.example.com";
const KEK: [u8; 32] = [0x44; 32];
/// The Entity As registering keys: (IdA, KmID, Km).
const CLIENTS: [(&str, &str, [u8; 32]); 3] = [
    ("/id-asn-a", "asn-a.km1@maf.example.com", [0x41; 32]),
    ("/id-asn-b", "asn-b.km1@maf.example.com", [0x42; 32]),
    ("CAE-sensor-1", "ae-s1.km1@maf.example.com", [0x43; 32]),
];
/// The registrar every key targets.
const ID_B: &str = "/id-in";
const KM_B_ID: &str = "in-cse.km1@maf.example.com";
const KM_B: [u8; 32] = [0x4b; 32];
const KILLS: usize = 6;
/// Concurrent Entity A tasks while the MAF is killed.
const WRITERS: usize = 6;
fn random_below(n: u64) -> u64 {
    let mut b = [0u8; 8];
    getrandom::getrandom(&mut b).unwrap();
    u64::from_le_bytes(b) % n
}

/// A MAF file: every client of [`CLIENTS`] may register keys for [`ID_B`], which may retrieve
/// them; TLS on an ephemeral port, the store in the file's directory.
fn maf_toml() -> String {
    let client = |id: &str, km_id: &str, km: [u8; 32], peers: &[&str]| {
        let mut s = format!(
            "\n[[client]]\n[client.credential]\nthisEntityIdentifier = \"{id}\"\n\
             masterCredential = \"{}\"\nmasterCredentialIdentifier = \"{km_id}\"\n",
            hex::encode(km)
        );
        for p in peers {
            s += &format!("[[client.association]]\notherEntityIdentifier = \"{p}\"\n");
        }
        s
    };
    let mut s = format!("role = \"maf\"\nmafIdentifier = \"{MAF_ID}\"\n");
    for (id, km_id, km) in CLIENTS {
        s += &client(id, km_id, km, &[ID_B]);
    }
    let sources: Vec<&str> = CLIENTS.iter().map(|c| c.0).collect();
    s += &client(ID_B, KM_B_ID, KM_B, &sources);
    s += &format!(
        "\n[service]\nlisten = \"127.0.0.1:0\"\nstore = \"maf.redb\"\nkek = \"{}\"\n\
         keyLifetime = \"1h\"\n",
        hex::encode(KEK)
    );
    s
}

fn creds(origin: &str, km_id: &str, km: [u8; 32]) -> MafCredentials {
    MafCredentials {
        maf_fqdn: MAF_ID.into(),
        psk_identity: km_id.into(),
        key: Km::new(km),
        origin: origin.into(),
    }
}

fn client_creds(i: usize) -> MafCredentials {
    let (id, km_id, km) = CLIENTS[i];
    creds(id, km_id, km)
}

/// An acknowledged Key Registration: the client (index into [`CLIENTS`]), KcID, Kc and the
/// granted expiry.
type Acked = (usize, KeyId, Kc, u64);

async fn register_once(addr: SocketAddr, who: usize) -> Result<Acked, String> {
    let (kc_id, kc, granted) = timeout(
        LIMIT,
        register_key(addr, &client_creds(who), &[ID_B], now() + 3600),
    )
    .await
    .map_err(|_| "timed out".to_owned())?
    .map_err(|e| e.to_string())?;
    Ok((who, kc_id, kc, granted))
}

/// Runs Key Registrations from [`WRITERS`] tasks against `maf`, SIGKILLs it after `delay` while
/// they run, and returns the acknowledged ones and how many were cut off by the kill.
async fn register_until_killed(maf: KillProc, delay: Duration) -> (Vec<Acked>, usize) {
    let addr = maf.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let failed = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let (stop, acked, failed) = (Arc::clone(&stop), Arc::clone(&acked), Arc::clone(&failed));
        tasks.push(tokio::spawn(async move {
            let who = w % CLIENTS.len();
            while !stop.load(Ordering::SeqCst) {
                match register_once(addr, who).await {
                    Ok(a) => acked.lock().unwrap().push(a),
                    Err(_) => {
                        // Cut off by the kill, or refused once the MAF is gone.
                        failed.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
            }
        }));
    }
    tokio::time::sleep(delay).await;
    maf.sigkill();
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.unwrap();
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    (acked, failed.load(Ordering::SeqCst))
}

/// As the registrar: every acknowledged KcID releases the same Kc, source and expiry.
async fn check_released(addr: SocketAddr, acked: &Arc<Vec<Acked>>) {
    const FETCHERS: usize = 4;
    let mut tasks = Vec::new();
    for f in 0..FETCHERS {
        let acked = Arc::clone(acked);
        tasks.push(tokio::spawn(async move {
            let b = creds(ID_B, KM_B_ID, KM_B);
            for (who, kc_id, kc, granted) in acked.iter().skip(f).step_by(FETCHERS) {
                let (got, source, expires) =
                    timeout(LIMIT, retrieve_key(addr, &b, kc_id.relative()))
                        .await
                        .expect("keyRetrieval timed out")
                        .unwrap_or_else(|err| {
                            panic!("acknowledged {} lost after SIGKILL: {err}", kc_id.as_str())
                        });
                assert_eq!(&got, kc, "{}", kc_id.as_str());
                assert_eq!(source, CLIENTS[*who].0, "{}", kc_id.as_str());
                assert_eq!(expires, *granted, "{}", kc_id.as_str());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// Opens the store file here (redb repairs it back to the last commit), authenticates every
/// record and compares every acknowledged Kc byte for byte.
async fn audit_store(path: PathBuf, acked: &[Acked]) -> usize {
    let (store, records) = tokio::task::spawn_blocking(move || {
        let store = RedbKeyStore::open(&path, Kek::new(KEK)).expect("store opens after SIGKILL");
        let n = store.verify_all().expect("no corrupt record");
        (store, n)
    })
    .await
    .unwrap();
    assert!(
        records >= acked.len(),
        "{records} records < {} acknowledged",
        acked.len()
    );
    for (who, kc_id, kc, granted) in acked {
        let rec = store
            .get(store_id(kc_id))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("acknowledged {} missing", kc_id.as_str()));
        assert_eq!(rec.kind, KeyKind::Kc, "{}", kc_id.as_str());
        assert_eq!(rec.secret.expose(), kc.expose(), "{}", kc_id.as_str());
        assert_eq!(rec.owner, CLIENTS[*who].0);
        assert_eq!(rec.targets, vec![ID_B.to_owned()]);
        assert_eq!(rec.not_after.0, *granted);
    }
    records
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_key_registrations_survive_sigkill_of_the_maf() {
    let started = Instant::now();
    let dir = TempDir::new("kills");
    let config = dir.path("maf.toml");
    std::fs::write(&config, maf_toml()).unwrap();
    let mut acked: Vec<Acked> = Vec::new();
    let mut cut_off = 0;
    let mut maf = KillProc::start("maf", &config);
    for kill in 0..KILLS {
        // 200-600 ms, spread over the kills, plus jitter.
        let step = 400 / KILLS as u64;
        let ms = 200 + step * kill as u64 + random_below(step);
        let (new, failed) = register_until_killed(maf, Duration::from_millis(ms)).await;
        assert!(!new.is_empty(), "kill {kill}: nothing acknowledged");
        acked.extend(new);
        cut_off += failed;

        // Restart on the same store: it must open (no corruption) and serve.
        maf = KillProc::start("maf", &config);
        let all = Arc::new(std::mem::take(&mut acked));
        check_released(maf.addr, &all).await;
        acked = Arc::try_unwrap(all).unwrap_or_else(|_| unreachable!());
        let again = register_once(maf.addr, kill % CLIENTS.len())
            .await
            .expect("the restarted MAF registers");
        acked.push(again);
    }
    let last = maf.addr;
    maf.sigkill();
    let records = audit_store(dir.path("maf.redb"), &acked).await;
    eprintln!(
        "{} acknowledged key registrations checked after {KILLS} SIGKILLs ({records} records, \
         {cut_off} failed around the kills, last MAF {last}) in {:?}",
        acked.len(),
        started.elapsed()
    );
}
