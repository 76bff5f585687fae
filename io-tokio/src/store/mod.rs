//! Key stores for the MEF / MAF servers: the asynchronous [`AsyncKeyStore`] trait and
//! [`RedbKeyStore`], the embedded, crash-safe default with every secret wrapped at rest.
//!
//! The operations, records and rules are the core's ([`m2msec::store`]): identifiers compare byte
//! for byte as the caller gives them, expiry is compared by the caller (`not_after` against its
//! `now`), `Put` replaces, errors carry no secret. A server loop hands each
//! [`StoreOp`] from a sans-IO server step to [`AsyncKeyStore::execute`], awaits it and resumes the
//! step with the [`StoreResult`].
//!
//! # At rest
//!
//! [`RedbKeyStore`] keeps three redb tables: [`RECORDS_TABLE`] (identifier → record value),
//! [`OWNER_INDEX_TABLE`] ((owner, identifier) → `()`) and [`META_TABLE`] (the KEK check value).
//! A record value is a small length-prefixed header in the clear (kind, owner, targets,
//! not_after), a random 96-bit nonce, and the secret sealed with AES-256-GCM-SIV (RFC 8452) under
//! the 32-byte [`Kek`]; the AAD is the identifier and the whole header, so records cannot be moved
//! or edited without detection. See `docs/architecture.md`, "Key storage", for the reasons.

use std::future::Future;
use std::sync::Mutex;

use m2msec::store::{KeyRecord, KeyStore, StoreError, StoreOp, StoreReply, StoreResult};

mod redb;
mod wrap;

pub use self::redb::{RedbKeyStore, META_TABLE, OWNER_INDEX_TABLE, RECORDS_TABLE};
pub use self::wrap::{Kek, KEK_LEN};

/// An asynchronous key store, shared by the tasks of a server (`&self`).
///
/// Only [`execute`](Self::execute) is required; `get`, `put` and `delete` are conveniences over
/// it. The trait uses `impl Future` in trait methods, so it is used through generics rather than
/// `dyn`.
pub trait AsyncKeyStore: Send + Sync {
    /// Runs `op`. For a persistent store, a successful `Put` or `Delete` is durable when the
    /// future completes.
    fn execute(&self, op: StoreOp) -> impl Future<Output = StoreResult> + Send;

    /// The record with this identifier, or `None`.
    fn get(
        &self,
        id: impl Into<String> + Send,
    ) -> impl Future<Output = Result<Option<KeyRecord>, StoreError>> + Send {
        let op = StoreOp::Get(id.into());
        async move {
            match self.execute(op).await? {
                StoreReply::Found(r) => Ok(Some(r)),
                StoreReply::NotFound => Ok(None),
                other => Err(unexpected(&other)),
            }
        }
    }

    /// Stores `record`, replacing one with the same identifier; `true` if one was replaced.
    fn put(&self, record: KeyRecord) -> impl Future<Output = Result<bool, StoreError>> + Send {
        async move {
            match self.execute(StoreOp::Put(record)).await? {
                StoreReply::Stored { replaced } => Ok(replaced),
                other => Err(unexpected(&other)),
            }
        }
    }

    /// Removes the record with this identifier; `true` if one existed.
    fn delete(
        &self,
        id: impl Into<String> + Send,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        let op = StoreOp::Delete(id.into());
        async move {
            match self.execute(op).await? {
                StoreReply::Deleted { existed } => Ok(existed),
                other => Err(unexpected(&other)),
            }
        }
    }
}

/// Any synchronous store behind a mutex (e.g. `Mutex<MemoryKeyStore>` in tests). The operation
/// runs on the calling task, so only for stores that never block (not for [`RedbKeyStore`],
/// which implements [`AsyncKeyStore`] itself).
impl<S: KeyStore + Send> AsyncKeyStore for Mutex<S> {
    async fn execute(&self, op: StoreOp) -> StoreResult {
        // The guard lives only inside this synchronous block; nothing is held across an await.
        match self.lock() {
            Ok(mut store) => store.execute(op),
            Err(_) => Err(StoreError::Backend {
                detail: "key store mutex poisoned".to_owned(),
            }),
        }
    }
}

fn unexpected(reply: &StoreReply) -> StoreError {
    let what = match reply {
        StoreReply::Found(_) => "Found",
        StoreReply::NotFound => "NotFound",
        StoreReply::Stored { .. } => "Stored",
        StoreReply::Deleted { .. } => "Deleted",
        StoreReply::Listed(_) => "Listed",
        StoreReply::Derived { .. } => "Derived",
        _ => "an unknown reply",
    };
    StoreError::Backend {
        detail: format!("key store answered {what} to the wrong operation"),
    }
}
