//! The redb key store: round trips, wrong KEK, wrapping at rest, and crash safety with real
//! processes killed by SIGKILL.

use std::collections::{BTreeSet, HashSet};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use m2msec::keys::{km, Ke, KM_LABEL};
use m2msec::store::{
    KeyKind, KeyRecord, KeySecret, KeyStore, MemoryKeyStore, StoreError, StoreOp, StoreReply,
};
use m2msec::UnixTime;
use m2msec_tokio::store::{AsyncKeyStore, Kek, RedbKeyStore, RECORDS_TABLE};

/// A directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let mut rnd = [0u8; 8];
        getrandom::getrandom(&mut rnd).unwrap();
        let dir = std::env::temp_dir().join(format!(
            "m2msec-store-{name}-{}-{}",
            std::process::id(),
            u64::from_le_bytes(rnd)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const KEK: [u8; 32] = [0x42; 32];

fn record(id: &str, owner: &str, secret: &[u8], not_after: u64) -> KeyRecord {
    KeyRecord::new(
        id,
        KeyKind::Ke,
        owner,
        UnixTime(not_after),
        KeySecret::new(secret).unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn round_trip_overwrite_delete_missing() {
    let dir = TempDir::new("roundtrip");
    let path = dir.file("keys.redb");
    let store = RedbKeyStore::open_async(&path, Kek::new(KEK))
        .await
        .unwrap();
    let id = "00112233445566778899AABBCCDDEEFF@mef.example";

    assert_eq!(store.get(id).await.unwrap(), None);
    assert!(!store.delete(id).await.unwrap());

    let r1 = record(id, "C-enrolee", &[1; 32], 1_000)
        .with_targets(["maf.example", "CSE-B"])
        .unwrap();
    assert!(!store.put(r1.clone()).await.unwrap());
    assert_eq!(store.get(id).await.unwrap(), Some(r1.clone()));

    // Overwrite: new owner, new secret length, no targets.
    let r2 = record(id, "C-other", &[2; 48], 2_000);
    assert!(store.put(r2.clone()).await.unwrap());
    assert_eq!(store.get(id).await.unwrap(), Some(r2.clone()));

    // The owner index followed the overwrite.
    let listed = |owner: &str| {
        let store = store.clone();
        let owner = owner.to_owned();
        async move {
            match store.execute(StoreOp::ListByOwner(owner)).await.unwrap() {
                StoreReply::Listed(l) => l.into_iter().map(|i| i.id).collect::<Vec<_>>(),
                other => panic!("{other:?}"),
            }
        }
    };
    assert!(listed("C-enrolee").await.is_empty());
    assert_eq!(listed("C-other").await, [id]);

    // Identifiers are byte-exact: another case is another key.
    assert_eq!(
        store
            .get("00112233445566778899AABBCCDDEEFF@MEF.example")
            .await
            .unwrap(),
        None
    );

    // Expiry is not enforced by the store: a record long past not_after is still returned, and
    // the caller decides.
    let got = store.get(id).await.unwrap().unwrap();
    assert!(got.is_expired(UnixTime(1_700_000_000)));

    // Persisted across a reopen.
    drop(store);
    let store = RedbKeyStore::open_async(&path, Kek::new(KEK))
        .await
        .unwrap();
    assert_eq!(store.get(id).await.unwrap(), Some(r2));
    assert!(store.delete(id).await.unwrap());
    assert_eq!(store.get(id).await.unwrap(), None);
    assert!(!store.delete(id).await.unwrap());
    assert_eq!(store.verify_all().unwrap(), 0);

    // Invalid identifiers are refused, typed.
    assert_eq!(
        store.get("").await.unwrap_err(),
        StoreError::InvalidRecord(m2msec::store::RecordError::EmptyId)
    );
}

#[tokio::test]
async fn derive_inside_the_store_matches_km() {
    let dir = TempDir::new("derive");
    let store = RedbKeyStore::open_async(dir.file("keys.redb"), Kek::new(KEK))
        .await
        .unwrap();
    let ke = Ke::new([9; 32]);
    let id = "FFEEDDCCBBAA99887766554433221100@mef.example";
    store
        .put(record(id, "C-enrolee", ke.expose(), 99))
        .await
        .unwrap();
    let reply = store
        .execute(StoreOp::Derive {
            id: id.into(),
            label: KM_LABEL.to_vec(),
            context: b"maf.example".to_vec(),
        })
        .await
        .unwrap();
    let StoreReply::Derived { key, from } = reply else {
        panic!("{reply:?}")
    };
    assert_eq!(key.expose(), km(&ke, "maf.example").expose());
    assert_eq!((from.kind, from.not_after), (KeyKind::Ke, UnixTime(99)));
}

#[test]
fn sync_key_store_trait_and_memory_store_agree() {
    let dir = TempDir::new("sync");
    let mut redb = RedbKeyStore::open(dir.file("keys.redb"), Kek::new(KEK)).unwrap();
    let mut mem = MemoryKeyStore::new();
    let ops = || {
        vec![
            StoreOp::Put(record("a@x.example", "o1", &[1; 32], 5)),
            StoreOp::Put(record("b@x.example", "o1", &[2; 16], 6)),
            StoreOp::Put(record("a@x.example", "o2", &[3; 32], 7)),
            StoreOp::Get("a@x.example".into()),
            StoreOp::Get("zz@x.example".into()),
            StoreOp::ListByOwner("o1".into()),
            StoreOp::ListByOwner("o2".into()),
            StoreOp::Delete("b@x.example".into()),
            StoreOp::Delete("b@x.example".into()),
            StoreOp::ListByOwner("o1".into()),
        ]
    };
    for (a, b) in ops().into_iter().zip(ops()) {
        let shown = format!("{a:?}");
        assert_eq!(KeyStore::execute(&mut redb, a), mem.execute(b), "{shown}");
    }
    assert_eq!(redb.verify_all().unwrap(), 1);
}

#[tokio::test]
async fn mutex_wrapped_memory_store_is_async() {
    let store = Mutex::new(MemoryKeyStore::new());
    store
        .put(record("a@x.example", "o", &[1; 32], 1))
        .await
        .unwrap();
    assert!(store.get("a@x.example").await.unwrap().is_some());
}

#[test]
fn wrong_kek_on_reopen_is_a_typed_error() {
    let dir = TempDir::new("kek");
    let path = dir.file("keys.redb");
    {
        let store = RedbKeyStore::open(&path, Kek::new(KEK)).unwrap();
        store
            .execute_blocking(StoreOp::Put(record("a@x.example", "o", &[7; 32], 1)))
            .unwrap();
    }
    assert_eq!(
        RedbKeyStore::open(&path, Kek::new([0x43; 32])).unwrap_err(),
        StoreError::WrongKek
    );
    // The right KEK still opens it, and the record is intact.
    let store = RedbKeyStore::open(&path, Kek::new(KEK)).unwrap();
    assert_eq!(
        store
            .execute_blocking(StoreOp::Get("a@x.example".into()))
            .unwrap(),
        StoreReply::Found(record("a@x.example", "o", &[7; 32], 1))
    );
}

#[test]
fn a_record_moved_to_another_id_fails_authentication() {
    let dir = TempDir::new("moved");
    let path = dir.file("keys.redb");
    {
        let store = RedbKeyStore::open(&path, Kek::new(KEK)).unwrap();
        store
            .execute_blocking(StoreOp::Put(record("victim@x.example", "o", &[7; 32], 1)))
            .unwrap();
    }
    {
        // An attacker with write access to the file copies a wrapped key under their own id.
        use redb::ReadableTable;
        let db = redb::Database::open(&path).unwrap();
        let table: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new(RECORDS_TABLE);
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(table).unwrap();
            let v = t.get("victim@x.example").unwrap().unwrap().value().to_vec();
            t.insert("attacker@x.example", v.as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    let store = RedbKeyStore::open(&path, Kek::new(KEK)).unwrap();
    assert_eq!(
        store
            .execute_blocking(StoreOp::Get("attacker@x.example".into()))
            .unwrap_err(),
        StoreError::Unwrap {
            id: "attacker@x.example".into()
        }
    );
    assert!(store.verify_all().is_err());
}

#[test]
fn the_file_holds_no_plaintext_key() {
    let dir = TempDir::new("plain");
    let path = dir.file("keys.redb");
    let mut secrets = Vec::new();
    {
        let store = RedbKeyStore::open(&path, Kek::new(KEK)).unwrap();
        for (i, len) in [32usize, 16, 64, 512].into_iter().enumerate() {
            let mut s = vec![0u8; len];
            getrandom::getrandom(&mut s).unwrap();
            store
                .execute_blocking(StoreOp::Put(record(
                    &format!("k{i}@x.example"),
                    "C-owner-visible",
                    &s,
                    1,
                )))
                .unwrap();
            secrets.push(s);
        }
        // Overwrite one, so old pages may linger in the file too.
        let mut s = vec![0u8; 32];
        getrandom::getrandom(&mut s).unwrap();
        store
            .execute_blocking(StoreOp::Put(record(
                "k0@x.example",
                "C-owner-visible",
                &s,
                2,
            )))
            .unwrap();
        secrets.push(s);
    }
    let file = std::fs::read(&path).unwrap();
    // The scan sees the records: the owner is stored in the clear.
    assert!(file.windows(15).any(|w| w == b"C-owner-visible"));
    // No 12-byte window of any secret appears anywhere in the file.
    let windows: HashSet<&[u8]> = secrets.iter().flat_map(|s| s.windows(12)).collect();
    assert!(
        !file.windows(12).any(|w| windows.contains(w)),
        "plaintext key bytes found on disk"
    );
}

#[test]
fn a_second_open_of_the_same_file_is_refused() {
    let dir = TempDir::new("lock");
    let path = dir.file("keys.redb");
    let _first = RedbKeyStore::open(&path, Kek::new(KEK)).unwrap();
    assert!(matches!(
        RedbKeyStore::open(&path, Kek::new(KEK)),
        Err(StoreError::Backend { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// Crash safety: a child process (this test binary, re-executed) writes records in a loop and
// prints "ack put <n>" / "ack over <n>" after each put returns; the parent SIGKILLs it at a
// random point, reopens the file and checks every acknowledged write.

const CHILD_PATH_ENV: &str = "M2MSEC_STORE_CRASH_CHILD_PATH";
const CHILD_START_ENV: &str = "M2MSEC_STORE_CRASH_CHILD_START";

fn crash_id(n: u64) -> String {
    format!("rec-{n:06}@mef.example")
}

/// Record `n` in generation `gen` (0 = first put, 1 = overwrite); every field depends on both.
fn crash_record(n: u64, gen: u64) -> KeyRecord {
    let len = 16 + usize::try_from((n * 7 + gen) % 49).unwrap();
    let secret: Vec<u8> = (0..len)
        .map(|i| {
            let x = n
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .wrapping_add((i as u64 + 1) * 0x100_0000_01B3)
                .wrapping_add(gen * 0xA5A5);
            (x >> 24) as u8
        })
        .collect();
    KeyRecord::new(
        crash_id(n),
        if gen == 0 { KeyKind::Ke } else { KeyKind::Km },
        format!("C-enrolee-{}", n % 4),
        UnixTime(1_000_000 + n * 10 + gen),
        KeySecret::new(&secret).unwrap(),
    )
    .unwrap()
    .with_targets((0..=gen).map(|g| format!("maf{g}.example")))
    .unwrap()
}

/// Not a test on its own: the writer process of `acknowledged_writes_survive_sigkill`.
#[test]
fn crash_child_writer() {
    let Ok(path) = std::env::var(CHILD_PATH_ENV) else {
        return;
    };
    let start: u64 = std::env::var(CHILD_START_ENV).unwrap().parse().unwrap();
    let store = RedbKeyStore::open(&path, Kek::new(KEK)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30); // never outlive a failed parent
    for n in start.. {
        assert!(Instant::now() < deadline, "crash child ran too long");
        store
            .execute_blocking(StoreOp::Put(crash_record(n, 0)))
            .unwrap();
        println!("ack put {n}");
        if n % 3 == 2 {
            let m = n / 2;
            store
                .execute_blocking(StoreOp::Put(crash_record(m, 1)))
                .unwrap();
            println!("ack over {m}");
        }
    }
}

fn random_below(n: u64) -> u64 {
    let mut b = [0u8; 8];
    getrandom::getrandom(&mut b).unwrap();
    u64::from_le_bytes(b) % n
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let dir = TempDir::new("crash");
    let path = dir.file("keys.redb");
    let exe = std::env::current_exe().unwrap();

    let mut acked_puts = BTreeSet::new();
    let mut acked_overs = BTreeSet::new();
    let mut next_start = 0u64;

    for round in 0..5 {
        let kill_after = 3 + random_below(40);
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_child_writer",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_PATH_ENV, &path)
            .env(CHILD_START_ENV, next_start.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut seen = 0;
        let mut max_put = None;
        let mut record_ack = |line: &str, max_put: &mut Option<u64>| -> bool {
            // libtest prints "test crash_child_writer ... " before the first ack, on its line.
            let Some(at) = line.find("ack ") else {
                return false;
            };
            let line = &line[at..];
            if let Some(n) = line.strip_prefix("ack put ") {
                let n: u64 = n.parse().unwrap();
                acked_puts.insert(n);
                *max_put = Some(n);
                true
            } else if let Some(m) = line.strip_prefix("ack over ") {
                acked_overs.insert(m.parse::<u64>().unwrap());
                true
            } else {
                false
            }
        };
        while seen < kill_after {
            let line = lines
                .next()
                .expect("writer exited early")
                .expect("read writer output");
            if record_ack(&line, &mut max_put) {
                seen += 1;
            }
        }
        // Kill at a random moment, usually in the middle of a commit.
        std::thread::sleep(Duration::from_micros(random_below(3_000)));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        // Acks printed before the kill are acknowledgements too.
        for line in lines.map_while(Result::ok) {
            record_ack(&line, &mut max_put);
        }
        let max_put = max_put.expect("at least one ack");

        // Reopen (redb repairs the file after the crash) and check every acknowledged write.
        let store = RedbKeyStore::open(&path, Kek::new(KEK)).unwrap();
        let count = store.verify_all().expect("store intact after SIGKILL");
        for &n in &acked_puts {
            let got = match store.execute_blocking(StoreOp::Get(crash_id(n))).unwrap() {
                StoreReply::Found(r) => r,
                other => panic!("round {round}: acknowledged record {n} lost: {other:?}"),
            };
            if acked_overs.contains(&n) {
                assert_eq!(got, crash_record(n, 1), "round {round}: overwrite of {n}");
            } else {
                // An overwrite in flight at the kill may or may not have landed, but whole.
                assert!(
                    got == crash_record(n, 0) || got == crash_record(n, 1),
                    "round {round}: record {n} torn"
                );
            }
        }
        // The put in flight at the kill (max_put + 1) may have landed, whole; nothing later
        // exists.
        let in_flight = match store
            .execute_blocking(StoreOp::Get(crash_id(max_put + 1)))
            .unwrap()
        {
            StoreReply::Found(r) => {
                assert_eq!(r, crash_record(max_put + 1, 0), "round {round}: torn put");
                1
            }
            _ => 0,
        };
        for n in max_put + 2..max_put + 5 {
            assert_eq!(
                store.execute_blocking(StoreOp::Get(crash_id(n))).unwrap(),
                StoreReply::NotFound
            );
        }
        assert_eq!(
            count,
            acked_puts.len() + in_flight,
            "round {round}: unexpected records"
        );
        // The next writer starts by putting max_put + 1 again (a no-op if it landed).
        next_start = max_put + 1;
        drop(store);
    }
    assert!(acked_puts.len() >= 15);
}
