//! [`RedbStorage`]: the embedded default backend, one redb file, no server.
//!
//! # On-disk layout
//!
//! A Weft store is a single redb database file holding exactly one table:
//!
//! | table name   | key type | value type | contents                                  |
//! | ------------ | -------- | ---------- | ----------------------------------------- |
//! | `weft.kv.v1` | `&[u8]`  | `&[u8]`    | every key and value of the [`Storage`] API |
//!
//! Keys are compared as raw bytes (lexicographically, shorter prefix first), which is the order
//! [`Storage::scan`] promises. Keys and values are stored verbatim: this layer adds no header,
//! tag or length of its own. Record formats (and their format tags) belong to the layers above;
//! see the engine's record module. The `v1` in the table name is the version of this layout: a
//! different layout would use a new table name, so an old file is never misread.
//!
//! # Transactions
//!
//! Every write call ([`Storage::apply`], [`Storage::apply_if`], and the `put`/`delete` defaults)
//! is one redb write transaction committed with [`Durability::Immediate`], so it is on disk when
//! the call returns. redb admits one write transaction at a time, so conditional batches are
//! serialised and their checks cannot race. Reads use read transactions, which see the last
//! committed state and never block writers.

use std::fmt::Display;
use std::ops::Bound;
use std::path::{Path, PathBuf};

use ::redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use super::{
    BackupError, BackupMeta, BackupReport, Batch, Condition, Entry, Storage, StorageError, Write,
};

/// The one table of a Weft store: raw keys to raw values. Its name carries the layout version.
pub(super) const TABLE: TableDefinition<'static, &'static [u8], &'static [u8]> =
    TableDefinition::new("weft.kv.v1");

/// A store in one redb file. Share it between threads with an `Arc`; redb serialises writers.
///
/// Only one `RedbStorage` (in any process) may have a given file open at a time; a second open
/// fails with [`StorageError::InUse`] until the first is dropped or [closed](Self::close).
#[derive(Debug)]
pub struct RedbStorage {
    db: Database,
    path: PathBuf,
}

impl RedbStorage {
    /// Opens the store at `path`, creating the file if it does not exist.
    ///
    /// Creation is crash-safe: the new store is built under a temporary name in the same
    /// directory (`.<name>.creating-<pid>`), synced to disk, and only then linked to `path`, so
    /// a process killed while creating leaves no half-written file at `path`, only a temporary
    /// one that is never opened (delete it at leisure). An empty file at `path`, which holds no
    /// data and is what an interrupted creation by an older version could leave, is replaced.
    pub fn create(path: impl AsRef<Path>) -> Result<Self, StorageError> {
        let path = path.as_ref().to_path_buf();
        match std::fs::metadata(&path) {
            Ok(meta) if meta.len() > 0 => return Self::open_existing(path),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(backend(
                    &path,
                    "cannot read the database file's metadata",
                    e,
                ));
            }
        }
        Self::create_new(&path)?;
        Self::open_existing(path)
    }

    fn open_existing(path: PathBuf) -> Result<Self, StorageError> {
        let db = Database::create(&path)
            .map_err(|e| open_error(&path, "cannot create or open the database file", e))?;
        Self::init(db, path)
    }

    /// Builds an empty store beside `path` and moves it into place: linked when `path` does not
    /// exist (another process that created it meanwhile wins, and its store is kept), or
    /// renamed over an empty file.
    fn create_new(path: &Path) -> Result<(), StorageError> {
        let name = path.file_name().ok_or_else(|| {
            backend(
                path,
                "cannot create the database file",
                "the path names no file",
            )
        })?;
        let temp = path.with_file_name(format!(
            ".{}.creating-{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        // A leftover of this process id is an earlier, interrupted creation: start over.
        match std::fs::remove_file(&temp) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(backend(&temp, "cannot remove a leftover temporary file", e)),
        }
        let built = Database::create(&temp)
            .map_err(|e| backend(&temp, "cannot create the database file", e))
            .and_then(|db| Self::init(db, temp.clone()))
            .and_then(RedbStorage::close)
            .and_then(|()| {
                std::fs::File::open(&temp)
                    .and_then(|file| file.sync_all())
                    .map_err(|e| backend(&temp, "cannot sync the new database file", e))
            });
        let placed = built.and_then(|()| {
            let empty_in_place = std::fs::metadata(path).is_ok_and(|meta| meta.len() == 0);
            let moved = if empty_in_place {
                std::fs::rename(&temp, path)
            } else {
                match std::fs::hard_link(&temp, path) {
                    Ok(()) => Ok(()),
                    // Created by someone else meanwhile: theirs is kept and opened.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
                    // A file system without hard links: rename (no other creator is expected).
                    Err(_) => std::fs::rename(&temp, path),
                }
            };
            moved.map_err(|e| backend(path, "cannot move the new database file into place", e))
        });
        let _ = std::fs::remove_file(&temp);
        placed?;
        sync_dir(path)
    }

    /// Opens an existing store at `path`; fails if the file does not exist.
    ///
    /// Use this where a missing file means a wrong path rather than a first start. A file that
    /// is not a redb database is refused; note that redb trusts a file it closed cleanly, so one
    /// damaged afterwards by other programs is not fully checked here.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StorageError> {
        let path = path.as_ref().to_path_buf();
        let db = Database::open(&path)
            .map_err(|e| open_error(&path, "cannot open the database file", e))?;
        Self::init(db, path)
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes the file, reporting any error that dropping the store would ignore.
    pub fn close(self) -> Result<(), StorageError> {
        let RedbStorage { db, path } = self;
        db.close()
            .map_err(|e| backend(&path, "cannot close the database file", e))
    }

    /// Makes sure the table exists, so reads never meet a missing table.
    fn init(db: Database, path: PathBuf) -> Result<Self, StorageError> {
        let storage = RedbStorage { db, path };
        storage.write(|_| Ok(()))?;
        Ok(storage)
    }

    /// Runs `body` on the table inside one durable write transaction and commits it.
    ///
    /// If `body` fails, the transaction is aborted, so nothing it wrote is kept.
    fn write(
        &self,
        body: impl FnOnce(
            &mut ::redb::Table<'_, &'static [u8], &'static [u8]>,
        ) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        let path = &self.path;
        let mut txn = self
            .db
            .begin_write()
            .map_err(|e| backend(path, "cannot begin a write transaction", e))?;
        // Immediate is redb's default; it is set explicitly because the `Storage` contract
        // (durable when the call returns) depends on it.
        txn.set_durability(Durability::Immediate)
            .map_err(|e| backend(path, "cannot request a durable commit", e))?;
        let outcome = match txn.open_table(TABLE) {
            Ok(mut table) => body(&mut table),
            Err(e) => Err(backend(
                path,
                "cannot open table `weft.kv.v1` for writing",
                e,
            )),
        };
        match outcome {
            Ok(()) => txn
                .commit()
                .map_err(|e| backend(path, "cannot commit a write transaction", e)),
            Err(error) => {
                txn.abort()
                    .map_err(|e| backend(path, "cannot roll back a write transaction", e))?;
                Err(error)
            }
        }
    }
}

impl Storage for RedbStorage {
    fn backup_to(&self, path: &Path, meta: &BackupMeta) -> Result<BackupReport, BackupError> {
        super::backup::backup_database(&self.db, &self.path, path, meta)
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        let path = &self.path;
        let txn = self
            .db
            .begin_read()
            .map_err(|e| backend(path, "cannot begin a read transaction", e))?;
        let table = txn
            .open_table(TABLE)
            .map_err(|e| backend(path, "cannot open table `weft.kv.v1` for reading", e))?;
        let value = table
            .get(key)
            .map_err(|e| backend(path, "cannot read a key", e))?;
        Ok(value.map(|guard| guard.value().to_vec()))
    }

    fn scan(
        &self,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StorageError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let path = &self.path;
        let txn = self
            .db
            .begin_read()
            .map_err(|e| backend(path, "cannot begin a read transaction", e))?;
        let table = txn
            .open_table(TABLE)
            .map_err(|e| backend(path, "cannot open table `weft.kv.v1` for reading", e))?;
        // The range walks the B-tree lazily, so only `limit` entries are ever read; redb returns
        // an empty range for inverted bounds rather than panicking.
        let range = table
            .range::<&[u8]>((start, end))
            .map_err(|e| backend(path, "cannot start a range scan", e))?;
        let mut entries = Vec::with_capacity(limit.min(256));
        for item in range.take(limit) {
            let (key, value) = item.map_err(|e| backend(path, "cannot read a scanned entry", e))?;
            entries.push((key.value().to_vec(), value.value().to_vec()));
        }
        Ok(entries)
    }

    fn apply_if(&self, conditions: &[Condition], batch: Batch) -> Result<(), StorageError> {
        let path = &self.path;
        self.write(|table| {
            for condition in conditions {
                let current = table
                    .get(condition.key.as_slice())
                    .map_err(|e| backend(path, "cannot read a condition's key", e))?;
                let holds = match (&current, &condition.expected) {
                    (None, None) => true,
                    (Some(guard), Some(expected)) => guard.value() == expected.as_slice(),
                    _ => false,
                };
                if !holds {
                    return Err(StorageError::ConditionFailed {
                        key: condition.key.clone(),
                    });
                }
            }
            for write in &batch.writes {
                match write {
                    Write::Put(key, value) => {
                        table
                            .insert(key.as_slice(), value.as_slice())
                            .map_err(|e| backend(path, "cannot write a key", e))?;
                    }
                    Write::Delete(key) => {
                        table
                            .remove(key.as_slice())
                            .map_err(|e| backend(path, "cannot delete a key", e))?;
                    }
                }
            }
            Ok(())
        })
    }
}

/// Makes the directory entry of `path` durable, so a created store survives a power loss.
fn sync_dir(path: &Path) -> Result<(), StorageError> {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        std::fs::File::open(dir)
            .and_then(|dir| dir.sync_all())
            .map_err(|e| backend(path, "cannot sync the database file's directory", e))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// A backend error naming the file, the operation that failed, and what redb reported.
/// A failed open: [`StorageError::InUse`] when another handle holds the file (redb locks it),
/// a backend failure otherwise.
fn open_error(path: &Path, what: &str, error: ::redb::DatabaseError) -> StorageError {
    match error {
        ::redb::DatabaseError::DatabaseAlreadyOpen => StorageError::InUse {
            path: path.to_path_buf(),
        },
        other => backend(path, what, other),
    }
}

fn backend(path: &Path, what: &str, error: impl Display) -> StorageError {
    StorageError::backend(format_args!(
        "redb store {}: {what}: {error}",
        path.display()
    ))
}
