//! [`RedbKeyStore`]: the default, crash-safe key store, one redb file with every secret wrapped.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use m2msec::store::{check_id, KeyRecord, KeyStore, StoreError, StoreOp, StoreReply, StoreResult};
use redb::{Database, Durability, ReadableTable, TableDefinition};

use super::wrap::{stored_owner, Kek, Wrapper};
use super::AsyncKeyStore;

/// Name of the table of records: identifier (`&str`) → record value (`&[u8]`, format in the
/// module documentation of [`super`]).
pub const RECORDS_TABLE: &str = "m2msec_keys_v1";
/// Name of the owner index: (owner, identifier) → `()`.
pub const OWNER_INDEX_TABLE: &str = "m2msec_keys_by_owner_v1";
/// Name of the metadata table (`"kek-check"` → KEK check value).
pub const META_TABLE: &str = "m2msec_meta";

const RECORDS: TableDefinition<&str, &[u8]> = TableDefinition::new(RECORDS_TABLE);
const BY_OWNER: TableDefinition<(&str, &str), ()> = TableDefinition::new(OWNER_INDEX_TABLE);
const META: TableDefinition<&str, &[u8]> = TableDefinition::new(META_TABLE);
const KEK_CHECK: &str = "kek-check";

/// redb's page cache; a key store is small, so far below redb's 1 GiB default.
const CACHE_BYTES: usize = 16 * 1024 * 1024;

/// A key store in one redb file: ACID, copy-on-write B-trees, every `Put` and `Delete` a durable
/// (`Durability::Immediate`, fsync'd) transaction before it returns, and every secret wrapped under
/// a [`Kek`] with AES-256-GCM-SIV.
///
/// Cheap to clone (an `Arc`); one process may hold the file at a time (redb locks it). The
/// asynchronous operations ([`AsyncKeyStore`]) run on tokio's blocking pool; the synchronous
/// [`KeyStore`] implementation and [`RedbKeyStore::execute_blocking`] run on the calling thread and
/// must not be called from an async task.
#[derive(Clone)]
pub struct RedbKeyStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    wrapper: Wrapper,
    path: PathBuf,
}

impl std::fmt::Debug for RedbKeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbKeyStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl RedbKeyStore {
    /// Opens the store at `path`, creating the file if it does not exist. Blocking: after a
    /// crash redb repairs the file here, back to the last committed transaction.
    ///
    /// A new store records a KEK check value; an existing one must have been created with the
    /// same `kek`, or this fails with [`StoreError::WrongKek`] and no record is read.
    pub fn open(path: impl AsRef<Path>, kek: Kek) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create_with_file_format_v3(true)
            .create(&path)
            .map_err(db_err)?;
        let wrapper = Wrapper::new(&kek);
        let mut txn = db.begin_write().map_err(db_err)?;
        durable(&mut txn);
        {
            // Create every table up front, so readers never meet a missing one.
            txn.open_table(RECORDS).map_err(db_err)?;
            txn.open_table(BY_OWNER).map_err(db_err)?;
            let mut meta = txn.open_table(META).map_err(db_err)?;
            let check = meta
                .get(KEK_CHECK)
                .map_err(db_err)?
                .map(|v| v.value().to_vec());
            match check {
                Some(check) => wrapper.verify_kek(&check)?,
                None => {
                    meta.insert(KEK_CHECK, wrapper.kek_check()?.as_slice())
                        .map_err(db_err)?;
                }
            }
        }
        txn.commit().map_err(db_err)?;
        Ok(Self {
            inner: Arc::new(Inner { db, wrapper, path }),
        })
    }

    /// [`RedbKeyStore::open`] on tokio's blocking pool.
    pub async fn open_async(path: impl Into<PathBuf>, kek: Kek) -> Result<Self, StoreError> {
        let path = path.into();
        tokio::task::spawn_blocking(move || Self::open(path, kek))
            .await
            .map_err(join_err)?
    }

    /// The file this store lives in.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `op` on the calling thread (blocking I/O).
    pub fn execute_blocking(&self, op: StoreOp) -> StoreResult {
        self.inner.execute(op)
    }

    /// Reads and authenticates every record and checks the owner index against them; returns
    /// how many records there are. Blocking; for audits, tests and start-up checks.
    pub fn verify_all(&self) -> Result<usize, StoreError> {
        let txn = self.inner.db.begin_read().map_err(db_err)?;
        let records = txn.open_table(RECORDS).map_err(db_err)?;
        let index = txn.open_table(BY_OWNER).map_err(db_err)?;
        let mut n = 0;
        for entry in records.iter().map_err(db_err)? {
            let (k, v) = entry.map_err(db_err)?;
            let rec = self.inner.wrapper.open(k.value(), v.value())?;
            if index
                .get((rec.owner.as_str(), rec.id.as_str()))
                .map_err(db_err)?
                .is_none()
            {
                return Err(StoreError::Corrupt {
                    detail: format!("record {:?} missing from the owner index", rec.id),
                });
            }
            n += 1;
        }
        Ok(n)
    }
}

impl Inner {
    fn execute(&self, op: StoreOp) -> StoreResult {
        match op {
            StoreOp::Get(id) => {
                check_id(&id)?;
                Ok(self
                    .get(&id)?
                    .map_or(StoreReply::NotFound, StoreReply::Found))
            }
            StoreOp::Put(record) => self.put(&record),
            StoreOp::Delete(id) => self.delete(&id),
            StoreOp::ListByOwner(owner) => self.list(&owner),
            StoreOp::Derive { id, label, context } => {
                check_id(&id)?;
                Ok(match self.get(&id)? {
                    None => StoreReply::NotFound,
                    Some(r) => StoreReply::Derived {
                        key: r.secret.derive(&label, &context),
                        from: r.info(),
                    },
                })
            }
            _ => Err(StoreError::Unsupported),
        }
    }

    fn get(&self, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let records = txn.open_table(RECORDS).map_err(db_err)?;
        let Some(v) = records.get(id).map_err(db_err)? else {
            return Ok(None);
        };
        self.wrapper.open(id, v.value()).map(Some)
    }

    fn put(&self, record: &KeyRecord) -> StoreResult {
        record.validate()?;
        let value = self.wrapper.seal(record)?;
        let id = record.id.as_str();
        let mut txn = self.db.begin_write().map_err(db_err)?;
        durable(&mut txn);
        let replaced = {
            let mut records = txn.open_table(RECORDS).map_err(db_err)?;
            let mut index = txn.open_table(BY_OWNER).map_err(db_err)?;
            let old_owner = records
                .insert(id, value.as_slice())
                .map_err(db_err)?
                .map(|old| stored_owner(old.value()));
            if let Some(Some(old_owner)) = &old_owner {
                index.remove((old_owner.as_str(), id)).map_err(db_err)?;
            }
            // An old record whose header no longer decodes may leave a stale index entry;
            // `list` skips entries whose record disagrees.
            index
                .insert((record.owner.as_str(), id), ())
                .map_err(db_err)?;
            old_owner.is_some()
        };
        txn.commit().map_err(db_err)?;
        Ok(StoreReply::Stored { replaced })
    }

    fn delete(&self, id: &str) -> StoreResult {
        check_id(id)?;
        let mut txn = self.db.begin_write().map_err(db_err)?;
        durable(&mut txn);
        let existed = {
            let mut records = txn.open_table(RECORDS).map_err(db_err)?;
            let mut index = txn.open_table(BY_OWNER).map_err(db_err)?;
            let old_owner = records
                .remove(id)
                .map_err(db_err)?
                .map(|old| stored_owner(old.value()));
            if let Some(Some(old_owner)) = &old_owner {
                index.remove((old_owner.as_str(), id)).map_err(db_err)?;
            }
            old_owner.is_some()
        };
        if existed {
            txn.commit().map_err(db_err)?;
        } else {
            txn.abort().map_err(db_err)?;
        }
        Ok(StoreReply::Deleted { existed })
    }

    fn list(&self, owner: &str) -> StoreResult {
        let txn = self.db.begin_read().map_err(db_err)?;
        let records = txn.open_table(RECORDS).map_err(db_err)?;
        let index = txn.open_table(BY_OWNER).map_err(db_err)?;
        let mut out = Vec::new();
        for entry in index.range((owner, "")..).map_err(db_err)? {
            let (k, _) = entry.map_err(db_err)?;
            let (o, id) = k.value();
            if o != owner {
                break;
            }
            let Some(v) = records.get(id).map_err(db_err)? else {
                continue; // stale index entry
            };
            let rec = self.wrapper.open(id, v.value())?;
            if rec.owner == owner {
                out.push(rec.info());
            }
        }
        Ok(StoreReply::Listed(out))
    }
}

impl KeyStore for RedbKeyStore {
    /// Blocking; see [`RedbKeyStore::execute_blocking`].
    fn execute(&mut self, op: StoreOp) -> StoreResult {
        self.inner.execute(op)
    }
}

impl AsyncKeyStore for RedbKeyStore {
    async fn execute(&self, op: StoreOp) -> StoreResult {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || inner.execute(op))
            .await
            .map_err(join_err)?
    }
}

/// Every write transaction: fsync'd before `commit` returns (`Durability::Immediate`), with
/// two-phase commit, which redb recommends when writes carry attacker-influenced data (here: key
/// identifiers and owner identities from requests), since its default one-phase commit trusts a
/// non-cryptographic checksum (redb `docs/design.md`, "Security of 1PC+C").
fn durable(txn: &mut redb::WriteTransaction) {
    txn.set_durability(Durability::Immediate);
    txn.set_two_phase_commit(true);
}

fn db_err(e: impl Into<redb::Error>) -> StoreError {
    match e.into() {
        redb::Error::Corrupted(detail) => StoreError::Corrupt { detail },
        e => StoreError::Backend {
            detail: e.to_string(),
        },
    }
}

fn join_err(e: tokio::task::JoinError) -> StoreError {
    StoreError::Backend {
        detail: format!("key store worker failed: {e}"),
    }
}
