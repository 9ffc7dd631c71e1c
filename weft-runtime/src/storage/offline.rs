//! Offline tools for a redb store that no engine has open: [`compact`] (give freed pages back
//! to the file system) and [`inspect`] (check integrity and the store format, read-only).
//!
//! Both need the file to themselves: redb locks a file while a process has it open, and both
//! refuse a locked file with [`OfflineError::InUse`] rather than wait or guess.

use std::path::{Path, PathBuf};

use ::redb::{Database, DatabaseError, ReadOnlyDatabase, ReadableDatabase, ReadableTableMetadata};

use super::STORE_FORMAT_VERSION;
use super::redb::TABLE;
use crate::engine::record::{EPOCH_KEY, FORMAT_KEY, decode_epoch, decode_store_format};

/// An offline operation on a store file failed; the file is as it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfflineError {
    /// No file at the path.
    #[error("{}: no such file; give the path of the store's redb file", path.display())]
    NotFound {
        /// The path given.
        path: PathBuf,
    },
    /// A process has the file open (an engine, a server, another tool).
    #[error(
        "{} is open in a running process; stop the server (or the engine) that owns it first, or work on a backup of it (`weft backup`)",
        path.display()
    )]
    InUse {
        /// The store's file.
        path: PathBuf,
    },
    /// The file is not a Weft store: not a redb file, or one without the store's table.
    #[error("{} is not a Weft store: {reason}", path.display())]
    NotAStore {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The file is damaged beyond what redb can repair.
    #[error("{} is damaged: {reason}; restore the latest backup (`weft restore BACKUP PATH --replace`)", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What redb reported.
        reason: String,
    },
    /// A file operation or a redb call failed.
    #[error("{}: {what}: {message}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// What failed.
        message: String,
    },
}

impl OfflineError {
    /// A stable, machine-readable code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            OfflineError::NotFound { .. } => "offline.not_found",
            OfflineError::InUse { .. } => "offline.in_use",
            OfflineError::NotAStore { .. } => "offline.not_a_store",
            OfflineError::Corrupt { .. } => "offline.corrupt",
            OfflineError::Io { .. } => "offline.io",
        }
    }
}

fn io(path: &Path, what: &'static str, error: impl std::fmt::Display) -> OfflineError {
    OfflineError::Io {
        path: path.to_path_buf(),
        what,
        message: error.to_string(),
    }
}

/// The error of a failed open of `path`.
fn open_error(path: &Path, error: DatabaseError) -> OfflineError {
    match error {
        DatabaseError::DatabaseAlreadyOpen => OfflineError::InUse {
            path: path.to_path_buf(),
        },
        DatabaseError::Storage(::redb::StorageError::Corrupted(reason)) => OfflineError::Corrupt {
            path: path.to_path_buf(),
            reason,
        },
        // redb reports a file without its magic number as invalid data.
        DatabaseError::Storage(::redb::StorageError::Io(e))
            if e.kind() == std::io::ErrorKind::InvalidData =>
        {
            OfflineError::NotAStore {
                path: path.to_path_buf(),
                reason: e.to_string(),
            }
        }
        DatabaseError::Storage(::redb::StorageError::Io(e)) => io(path, "cannot open the file", e),
        other => OfflineError::NotAStore {
            path: path.to_path_buf(),
            reason: other.to_string(),
        },
    }
}

fn size_of(path: &Path) -> Result<u64, OfflineError> {
    match std::fs::metadata(path) {
        Ok(meta) => Ok(meta.len()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(OfflineError::NotFound {
            path: path.to_path_buf(),
        }),
        Err(e) => Err(io(path, "cannot read the file's metadata", e)),
    }
}

/// Fails with `NotAStore` unless `db` holds the store's table; returns its entry count.
fn entries_in(db: &impl ReadableDatabase, path: &Path) -> Result<u64, OfflineError> {
    let txn = db
        .begin_read()
        .map_err(|e| io(path, "cannot begin a read transaction", e))?;
    match txn.open_table(TABLE) {
        Ok(table) => table
            .len()
            .map_err(|e| io(path, "cannot count the entries", e)),
        Err(::redb::TableError::TableDoesNotExist(_)) => Err(OfflineError::NotAStore {
            path: path.to_path_buf(),
            reason: "it has no `weft.kv.v1` table".into(),
        }),
        Err(e) => Err(io(path, "cannot open the store's table", e)),
    }
}

/// What [`compact`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactReport {
    /// The store's file.
    pub path: PathBuf,
    /// Its size before, in bytes.
    pub bytes_before: u64,
    /// Its size after, in bytes.
    pub bytes_after: u64,
    /// Entries the store holds (unchanged by compaction).
    pub entries: u64,
}

/// Compacts the store at `path`, offline: redb moves live pages to the front of the file and
/// truncates the freed space, so a store that purged most of its workflows shrinks on disk.
/// (A redb file never shrinks by itself; freed pages are only reused.) Nothing is added,
/// removed or rewritten at the level of keys and values.
///
/// It opens the file for writing, so no engine may have it open: stop the server first.
/// Compaction rewrites pages in place; a crash midway leaves a file redb recovers at the next
/// open, like any interrupted transaction. Take a backup first all the same.
///
/// # Errors
///
/// [`OfflineError::InUse`] when a process has the file open; [`OfflineError::NotFound`],
/// [`OfflineError::NotAStore`], [`OfflineError::Corrupt`] or [`OfflineError::Io`] otherwise.
pub fn compact(path: impl AsRef<Path>) -> Result<CompactReport, OfflineError> {
    let path = path.as_ref();
    contained(path, || compact_file(path))
}

/// Runs `f`, turning a panic into `Corrupt`: redb panics on some damaged pages rather than
/// returning an error, and a tool pointed at a damaged file must say so, not abort.
fn contained<T>(
    path: &Path,
    f: impl FnOnce() -> Result<T, OfflineError>,
) -> Result<T, OfflineError> {
    crate::contain::catch(f).unwrap_or_else(|message| {
        Err(OfflineError::Corrupt {
            path: path.to_path_buf(),
            reason: format!("redb stopped on a damaged page ({message})"),
        })
    })
}

fn compact_file(path: &Path) -> Result<CompactReport, OfflineError> {
    let bytes_before = size_of(path)?;
    let mut db = Database::open(path).map_err(|e| open_error(path, e))?;
    let entries = entries_in(&db, path)?;
    // Each pass moves what it can; redb says when nothing more would move.
    while db.compact().map_err(|e| io(path, "compaction failed", e))? {}
    db.close()
        .map_err(|e| io(path, "cannot close the file", e))?;
    let bytes_after = size_of(path)?;
    Ok(CompactReport {
        path: path.to_path_buf(),
        bytes_before,
        bytes_after,
        entries,
    })
}

/// What [`inspect`] found in a store file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreInspection {
    /// The store's file.
    pub path: PathBuf,
    /// Its size, in bytes.
    pub bytes: u64,
    /// Whether the last process that wrote it closed it cleanly. `false` after a crash: that
    /// is no damage, redb recovers it at the next open by an engine.
    pub closed_cleanly: bool,
    /// Whether redb's integrity check passed (run on a copy, so the file is never written).
    /// `false` means redb had to repair the copy: the file itself is damaged.
    pub integrity_ok: bool,
    /// Entries the store holds.
    pub entries: u64,
    /// The store format marker: `None` for a store written before the marker existed (format
    /// 1; an engine writes it at its next start).
    pub format_version: Option<u32>,
    /// The newest format this build understands ([`STORE_FORMAT_VERSION`]).
    pub supported_format: u32,
    /// The owner epoch: how many engines have owned the store; `None` if none ever did.
    pub owner_epoch: Option<u64>,
}

impl StoreInspection {
    /// Whether this build's engine can run on the store: its format is not newer.
    pub fn format_supported(&self) -> bool {
        self.format_version
            .is_none_or(|found| found <= self.supported_format)
    }
}

/// Checks the store at `path` without ever writing to it: opens it read-only (which fails if a
/// process has it open for writing), copies it into `scratch_dir` while that read-only handle
/// keeps writers out, and runs redb's full integrity check on the copy, then reads the store
/// format marker and the owner epoch. The copy is deleted before it returns.
///
/// The copy needs as much free space in `scratch_dir` as the store's size.
///
/// # Errors
///
/// [`OfflineError::InUse`] when a process has the file open; [`OfflineError::NotFound`] and
/// [`OfflineError::NotAStore`] for a wrong path; [`OfflineError::Corrupt`] when redb cannot
/// repair even the copy; [`OfflineError::Io`] when a file operation fails.
pub fn inspect(
    path: impl AsRef<Path>,
    scratch_dir: impl AsRef<Path>,
) -> Result<StoreInspection, OfflineError> {
    let path = path.as_ref();
    let scratch_dir = scratch_dir.as_ref();
    contained(path, || inspect_file(path, scratch_dir))
}

fn inspect_file(path: &Path, scratch_dir: &Path) -> Result<StoreInspection, OfflineError> {
    let bytes = size_of(path)?;
    // Held while the file is copied, so no engine starts writing to it meanwhile.
    let (reader, closed_cleanly) = match ReadOnlyDatabase::open(path) {
        Ok(reader) => (Some(reader), true),
        // A read-only handle cannot run redb's crash recovery: the file was not closed cleanly.
        Err(DatabaseError::RepairAborted) => (None, false),
        Err(e) => return Err(open_error(path, e)),
    };
    if let Some(reader) = &reader {
        entries_in(reader, path)?;
    }
    let scratch = scratch_dir.join(format!(
        ".weft-doctor-{}-{}.redb",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    let copied = std::fs::copy(path, &scratch);
    drop(reader);
    let result = copied
        .map_err(|e| io(&scratch, "cannot copy the store for the integrity check", e))
        .and_then(|_| contained(path, || check_copy(path, &scratch)));
    let _ = std::fs::remove_file(&scratch);
    let (integrity_ok, entries, format_version, owner_epoch) = result?;
    Ok(StoreInspection {
        path: path.to_path_buf(),
        bytes,
        closed_cleanly,
        integrity_ok,
        entries,
        format_version,
        supported_format: STORE_FORMAT_VERSION,
        owner_epoch,
    })
}

/// Runs the integrity check on the copy at `scratch` of the store at `path`, then reads it.
fn check_copy(
    path: &Path,
    scratch: &Path,
) -> Result<(bool, u64, Option<u32>, Option<u64>), OfflineError> {
    // Errors name the store, not the scratch copy.
    let mut db = Database::open(scratch).map_err(|e| open_error(path, e))?;
    let integrity_ok = match db.check_integrity() {
        Ok(ok) => ok,
        Err(DatabaseError::Storage(::redb::StorageError::Corrupted(reason))) => {
            return Err(OfflineError::Corrupt {
                path: path.to_path_buf(),
                reason,
            });
        }
        Err(e) => return Err(io(path, "the integrity check failed to run", e)),
    };
    let entries = entries_in(&db, path)?;
    let txn = db
        .begin_read()
        .map_err(|e| io(path, "cannot begin a read transaction", e))?;
    let table = txn
        .open_table(TABLE)
        .map_err(|e| io(path, "cannot open the store's table", e))?;
    let read = |key: &[u8]| -> Result<Option<Vec<u8>>, OfflineError> {
        table
            .get(key)
            .map(|v| v.map(|v| v.value().to_vec()))
            .map_err(|e| io(path, "cannot read a key", e))
    };
    let bad = |what: &str, e: crate::engine::record::RecordError| OfflineError::Corrupt {
        path: path.to_path_buf(),
        reason: format!("its {what} does not decode ({e})"),
    };
    let format_version = read(FORMAT_KEY)?
        .map(|bytes| decode_store_format(&bytes))
        .transpose()
        .map_err(|e| bad("format marker (`meta/format`)", e))?;
    let owner_epoch = read(EPOCH_KEY)?
        .map(|bytes| decode_epoch(&bytes))
        .transpose()
        .map_err(|e| bad("owner epoch (`meta/epoch`)", e))?;
    Ok((integrity_ok, entries, format_version, owner_epoch))
}
