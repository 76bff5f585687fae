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

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use m2msec::frameworks::config::{BootstrapCredential, BootstrapInstruction, EnroleeBootstrap};
use m2msec::keys;
use m2msec::store::store_id;
use m2msec::{ClientPsk, Psk};
use m2msec_tokio::frameworks::mef::{enrol, fetch_km, Enrolment};
use m2msec_tokio::store::{AsyncKeyStore, Kek, RedbKeyStore};
use tokio::time::timeout;

const BIN: &str = env!("CARGO_BIN_EXE_m2msec");
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
/// Bound on any single wait (process start, one client operation).
const LIMIT: Duration = Duration::from_secs(20);

/// A directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let mut rnd = [0u8; 8];
        getrandom::getrandom(&mut rnd).unwrap();
        let dir = std::env::temp_dir().join(format!(
            "m2msec-crash-{name}-{}-{}",
            std::process::id(),
            u64::from_le_bytes(rnd)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

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

/// A running `m2msec mef`; SIGKILLed when dropped.
struct MefProc {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl MefProc {
    /// Starts the MEF and waits for its `listening: https://ADDR` line.
    fn start(config: &Path) -> Self {
        let mut child = Command::new(BIN)
            .args(["mef", "--config"])
            .arg(config)
            .args(["--log", "warn"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn m2msec mef");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        {
            let mut err = child.stderr.take().unwrap();
            let buf = Arc::clone(&stderr);
            thread::spawn(move || {
                let mut chunk = [0u8; 4096];
                while let Ok(n @ 1..) = err.read(&mut chunk) {
                    buf.lock().unwrap().extend_from_slice(&chunk[..n]);
                }
            });
        }
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut mef = Self {
            child,
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            stderr,
        };
        let end = Instant::now() + LIMIT;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left.min(Duration::from_millis(100))) {
                Ok(line) => {
                    if let Some(a) = line.strip_prefix("listening: https://") {
                        mef.addr = a.parse().expect("listening address");
                        return mef;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Some(status) = mef.child.try_wait().unwrap() {
                        panic!(
                            "m2msec mef exited with {status} before listening: {}",
                            mef.stderr()
                        );
                    }
                    assert!(
                        Instant::now() < end,
                        "m2msec mef did not listen: {}",
                        mef.stderr()
                    );
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let _ = mef.child.wait();
                    panic!("m2msec mef closed stdout: {}", mef.stderr());
                }
            }
        }
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// SIGKILL (what `Child::kill` sends on Unix), then reaps the process.
    fn sigkill(mut self) {
        self.child.kill().unwrap();
        let status = self.child.wait().unwrap();
        assert!(!status.success(), "killed MEF exited successfully");
    }
}

impl Drop for MefProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An acknowledged Enrolment and the Enrolee it belongs to.
type Acked = (usize, Enrolment);

/// Runs Enrolments from [`WRITERS`] tasks against `mef`, SIGKILLs it after `delay` while they
/// run, and returns the acknowledged ones and how many were cut off by the kill.
async fn enrol_until_killed(mef: MefProc, delay: Duration) -> (Vec<Acked>, usize) {
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
        let mut mef = MefProc::start(&config);
        for kill in 0..KILLS_PER_ROUND {
            // 200-600 ms, spread over the kills of a round, plus jitter.
            let step = 400 / KILLS_PER_ROUND as u64;
            let ms = 200 + step * kill as u64 + random_below(step);
            let (new, failed) = enrol_until_killed(mef, Duration::from_millis(ms)).await;
            acked.extend(new);
            cut_off += failed;

            // Restart on the same store: it must open (no corruption) and serve.
            mef = MefProc::start(&config);
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
