//! The key-value contract the engine persists through, and its backends.
//!
//! Small on purpose: get, put, delete, ordered scans, atomic batches, and a conditional batch
//! that applies only when stated keys hold stated values. The engine's fencing and grouped
//! commits are built on the conditional batch alone, so any store that offers it can host Weft.

mod backup;
mod memory;
mod offline;
mod redb;

pub(crate) use backup::decode_manifest;
pub use backup::{
    BackupError, BackupManifest, BackupMeta, BackupReport, RestoreOptions, STORE_FORMAT_VERSION,
    read_manifest, restore,
};
pub use memory::MemoryStorage;
pub use offline::{CompactReport, OfflineError, StoreInspection, compact, inspect};
pub use redb::{RedbOptions, RedbStorage};

use std::ops::Bound;
use std::path::Path;

/// A storage operation failed. Nothing of the failed call was applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// A conditional batch found a key not holding its expected value; nothing was written.
    #[error("condition failed on key {key:?}; nothing was written")]
    ConditionFailed {
        /// The first key whose value did not match.
        key: Vec<u8>,
    },
    /// The backend failed to read or write (I/O, a full disk, a lost connection, a file locked
    /// by another process); the same call may succeed later.
    #[error("storage backend failed: {message}")]
    Backend {
        /// What the backend reported.
        message: String,
    },
    /// The store's file is open already, in another process or in this one: only one engine
    /// may own a store, so it cannot be opened until the other one closes it.
    #[error(
        "the store {} is open in another process (or already in this one): only one engine may own a store; stop the other engine (check for a second instance or an overlapping deploy), or open another file",
        path.display()
    )]
    InUse {
        /// The store's file.
        path: std::path::PathBuf,
    },
    /// The stored data is damaged (a page fails its checksum, the backend's own structures make
    /// no sense, the backend panicked on them): retrying does not help. The message says what
    /// to do: stop the engine and restore the store from a backup.
    #[error("storage is corrupt: {message}")]
    Corrupt {
        /// What the backend found, and what to do.
        message: String,
    },
}

impl StorageError {
    /// A backend failure with the given message.
    pub fn backend(message: impl std::fmt::Display) -> Self {
        StorageError::Backend {
            message: message.to_string(),
        }
    }

    /// A stable, machine-readable code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            StorageError::ConditionFailed { .. } => "storage.condition_failed",
            StorageError::Backend { .. } => "storage.backend",
            StorageError::InUse { .. } => "storage.in_use",
            StorageError::Corrupt { .. } => "storage.corrupt",
        }
    }
}

/// One write in a [`Batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// Set `key` to `value`.
    Put(Vec<u8>, Vec<u8>),
    /// Remove `key` (a no-op if absent).
    Delete(Vec<u8>),
}

/// Writes applied all together or not at all, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    /// The writes, applied in order.
    pub writes: Vec<Write>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Batch::default()
    }

    /// Adds a put.
    pub fn put(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> &mut Self {
        self.writes.push(Write::Put(key.into(), value.into()));
        self
    }

    /// Adds a delete.
    pub fn delete(&mut self, key: impl Into<Vec<u8>>) -> &mut Self {
        self.writes.push(Write::Delete(key.into()));
        self
    }

    /// Whether the batch has no writes.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// Appends another batch's writes.
    pub fn extend(&mut self, other: Batch) {
        self.writes.extend(other.writes);
    }
}

/// A precondition of a conditional batch: `key` must hold `expected` (`None`: must be absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// The key to check.
    pub key: Vec<u8>,
    /// The value it must hold, or `None` if it must be absent.
    pub expected: Option<Vec<u8>>,
}

/// A key and its value, as returned by scans.
pub type Entry = (Vec<u8>, Vec<u8>);

/// The key-value store the engine persists through.
///
/// Calls block (a redb read may wait on the disk). The engine never calls storage on an async
/// worker thread, where a blocked call would stall every task sharing the worker: writes run on
/// its writer thread, and reads on that thread or on tokio's blocking pool (`spawn_blocking`),
/// so an implementation may block for as long as its I/O takes, and is called from several
/// threads at once. Every successful write is durable when the call returns (for redb: a
/// durable commit).
pub trait Storage: Send + Sync + 'static {
    /// The value at `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError>;

    /// Entries with `start <= key < end` (per the bounds), in ascending key order, at most `limit`.
    fn scan(
        &self,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StorageError>;

    /// Entries with `start <= key < end` (per the bounds), in descending key order, at most
    /// `limit`: the newest first of a time-ordered index, for listings sorted newest first.
    ///
    /// The default reads the whole range forward and keeps its last `limit` entries, which is
    /// correct but costs the range's size; [`RedbStorage`] and [`MemoryStorage`] walk it
    /// backwards and read `limit` entries only, and a backend should do the same.
    fn scan_rev(
        &self,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StorageError> {
        let mut all = self.scan(start, end, usize::MAX)?;
        let keep = all.len().saturating_sub(limit);
        let mut newest = all.split_off(keep);
        newest.reverse();
        Ok(newest)
    }

    /// Applies every write of `batch`, or none.
    fn apply(&self, batch: Batch) -> Result<(), StorageError> {
        self.apply_if(&[], &batch)
    }

    /// Applies `batch` only if every condition holds, checked in the same transaction;
    /// otherwise writes nothing and returns [`StorageError::ConditionFailed`].
    ///
    /// The batch is borrowed: the engine keeps it after the call, to commit it again or to
    /// check whether it landed when the call fails, and a backend that copies the bytes into
    /// its own pages (as redb does) needs no copy of its own.
    fn apply_if(&self, conditions: &[Condition], batch: &Batch) -> Result<(), StorageError>;

    /// Sets one key.
    fn put(&self, key: &[u8], value: &[u8]) -> Result<(), StorageError> {
        let mut batch = Batch::new();
        batch.put(key, value);
        self.apply(batch)
    }

    /// Removes one key.
    fn delete(&self, key: &[u8]) -> Result<(), StorageError> {
        let mut batch = Batch::new();
        batch.delete(key);
        self.apply(batch)
    }

    /// Entries whose key starts with `prefix`, after `start_after` if given, at most `limit`.
    fn scan_prefix(
        &self,
        prefix: &[u8],
        start_after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StorageError> {
        let end = prefix_end(prefix);
        let start = match start_after {
            Some(after) => Bound::Excluded(after),
            None => Bound::Included(prefix),
        };
        let end_bound = match &end {
            Some(end) => Bound::Excluded(end.as_slice()),
            None => Bound::Unbounded,
        };
        self.scan(start, end_bound, limit)
    }

    /// Writes a verified copy of the whole store, from one consistent snapshot, to a new redb
    /// file at `path` (the layout is in the `backup` module's docs), labelled with `meta`.
    ///
    /// An optional capability: the default refuses with [`BackupError::Unsupported`].
    /// [`RedbStorage`] and [`MemoryStorage`] implement it. Writes go on while it runs, and the
    /// copy holds none of them. The file appears at `path` only once it is complete, durable and
    /// verified; an existing file is never overwritten. Blocks for as long as the copy takes.
    ///
    /// # Errors
    ///
    /// [`BackupError::Exists`] when `path` exists; [`BackupError::Io`] when reading the store
    /// or writing the file fails; [`BackupError::Corrupt`] when the copy does not verify.
    fn backup_to(&self, path: &Path, meta: &BackupMeta) -> Result<BackupReport, BackupError> {
        let _ = (path, meta);
        Err(BackupError::Unsupported {
            backend: std::any::type_name::<Self>(),
        })
    }
}

impl<S: Storage + ?Sized> Storage for std::sync::Arc<S> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        (**self).get(key)
    }
    fn scan(
        &self,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StorageError> {
        (**self).scan(start, end, limit)
    }
    fn scan_rev(
        &self,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StorageError> {
        (**self).scan_rev(start, end, limit)
    }
    fn apply(&self, batch: Batch) -> Result<(), StorageError> {
        (**self).apply(batch)
    }
    fn apply_if(&self, conditions: &[Condition], batch: &Batch) -> Result<(), StorageError> {
        (**self).apply_if(conditions, batch)
    }
    fn backup_to(&self, path: &Path, meta: &BackupMeta) -> Result<BackupReport, BackupError> {
        (**self).backup_to(path, meta)
    }
}

/// The smallest key greater than every key starting with `prefix`, or `None` if there is none
/// (the prefix is empty or all `0xff`).
#[doc(hidden)]
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}
