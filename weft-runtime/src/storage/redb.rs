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
//!
//! Commits are redb's default one-phase commit with a checksummed commit slot, which is
//! crash-safe: a commit torn by a crash was never acknowledged, and the open rolls it back.
//! [`RedbOptions::two_phase_commit`] makes the pages durable before the commit slot that names
//! them. That costs a second fsync per commit (12–15 % of W(1000, 10)'s throughput here; see
//! `docs/benchmarks.md`) and buys an unambiguous file: a crash then never leaves a torn commit
//! slot, so a slot that fails its checksum can only be damage to the disk, and the open refuses
//! the file instead of rolling back to the commit before it, which would lose an acknowledged
//! write without a word. Turn it on where the disk itself is not trusted.
//!
//! # Faults
//!
//! - **A damaged file** is checked when it is opened (redb's integrity check on open, which
//!   verifies the checksum of every page of the committed trees and rebuilds the allocator
//!   state): it opens if it passes, or if redb repairs it without losing a commit, and is
//!   refused with [`StorageError::Corrupt`] otherwise, which says to restore from a backup.
//! - **A panic inside redb** (its own assertions on pages it cannot make sense of) is caught at
//!   this boundary and returned as [`StorageError::Corrupt`]; it never reaches the engine. The
//!   database is then reopened (and so checked again) before the next call.
//! - **An I/O error** (a full disk, say) fails the call with [`StorageError::Backend`]; redb then
//!   refuses every later call ("Previous I/O error occurred"), because its memory may no longer
//!   match the file. So the database is closed and opened again before the next call, once no
//!   transaction of this store is open: the reopen is a restart's open (redb's crash recovery,
//!   which keeps every commit that returned), on the one handle this process has, with nothing
//!   in memory carried over, so it is as safe as a restart, and a later call succeeds as soon as
//!   the disk does. While reopening fails, every call fails with an error that says so, and the
//!   next call tries again.

use std::fmt::Display;
use std::ops::Bound;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};

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
    options: RedbOptions,
    /// The open database; `None` while a reopen has failed. Every call holds the read lock for as
    /// long as its transaction lives, so the reopen, which takes the write lock, starts only when
    /// no transaction of this store is open, and two handles to the file never coexist.
    db: RwLock<Option<Database>>,
    path: PathBuf,
    /// An I/O error or a panic left the open database unusable: reopen it before the next call.
    reopen: AtomicBool,
}

/// How a [`RedbStorage`] commits and opens; [`RedbOptions::default`] suits most stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedbOptions {
    two_phase_commit: bool,
    verify_on_open: bool,
}

impl Default for RedbOptions {
    /// One-phase commits, and the whole file verified when it is opened.
    fn default() -> Self {
        RedbOptions {
            two_phase_commit: false,
            verify_on_open: true,
        }
    }
}

impl RedbOptions {
    /// Commits in two phases (see the module docs): damage to the newest commit slot is then
    /// refused at open rather than rolled back over, at the price of a second fsync per commit.
    /// A file's commits may switch between the two modes from one open to the next.
    pub fn two_phase_commit(mut self, on: bool) -> Self {
        self.two_phase_commit = on;
        self
    }

    /// Verifies every page of the committed trees when the file is opened (redb's integrity
    /// check on open), so a damaged file is refused at start with [`StorageError::Corrupt`]
    /// instead of failing calls later. On by default; it reads the whole file, ~0.7 ms per MB
    /// here (0.4 ms → 23 ms for a 34 MB store of 100,000 finished workflows). Damage met later
    /// is still turned into [`StorageError::Corrupt`] either way.
    pub fn verify_on_open(mut self, on: bool) -> Self {
        self.verify_on_open = on;
        self
    }
}

impl RedbStorage {
    /// Opens the store at `path`, creating the file if it does not exist, with
    /// [`RedbOptions::default`] (see [`RedbStorage::create_with`]).
    ///
    /// # Errors
    ///
    /// See [`RedbStorage::create_with`].
    pub fn create(path: impl AsRef<Path>) -> Result<Self, StorageError> {
        Self::create_with(path, RedbOptions::default())
    }

    /// Opens the store at `path`, creating the file if it does not exist.
    ///
    /// Creation is crash-safe: the new store is built under a temporary name in the same
    /// directory (`.<name>.creating-<pid>`), synced to disk, and only then linked to `path`, so
    /// a process killed while creating leaves no half-written file at `path`, only a temporary
    /// one that is never opened (delete it at leisure). An empty file at `path`, which holds no
    /// data and is what an interrupted creation by an older version could leave, is replaced.
    /// An existing store is checked as [`RedbStorage::open`] checks it.
    ///
    /// # Errors
    ///
    /// [`StorageError::Corrupt`] when an existing file is damaged beyond what redb repairs
    /// without losing a commit (restore it from a backup); [`StorageError::Backend`] when the
    /// file cannot be created, read or locked (another process has it open, say).
    pub fn create_with(path: impl AsRef<Path>, options: RedbOptions) -> Result<Self, StorageError> {
        let path = path.as_ref().to_path_buf();
        match std::fs::metadata(&path) {
            Ok(meta) if meta.len() > 0 => return Self::open_existing(path, options),
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
        Self::create_new(&path, options)?;
        Self::open_existing(path, options)
    }

    fn open_existing(path: PathBuf, options: RedbOptions) -> Result<Self, StorageError> {
        let db = open_checked(
            &path,
            true,
            options,
            "cannot create or open the database file",
        )?;
        Self::init(db, path, options)
    }

    /// Builds an empty store beside `path` and moves it into place: linked when `path` does not
    /// exist (another process that created it meanwhile wins, and its store is kept), or
    /// renamed over an empty file.
    fn create_new(path: &Path, options: RedbOptions) -> Result<(), StorageError> {
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
        let built = open_checked(&temp, true, options, "cannot create the database file")
            .and_then(|db| Self::init(db, temp.clone(), options))
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
    /// is not a redb database is refused. Every page of the committed trees is verified first
    /// (redb's integrity check on open), so opening reads the whole file and costs time in
    /// proportion to its size. A file that fails the check opens only if redb repairs it
    /// without losing a commit.
    ///
    /// # Errors
    ///
    /// [`StorageError::Corrupt`] when the file is damaged beyond that (restore it from a
    /// backup); [`StorageError::Backend`] when it does not exist, cannot be read, or is locked
    /// by another process.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StorageError> {
        Self::open_with(path, RedbOptions::default())
    }

    /// Opens an existing store at `path` with `options`; see [`RedbStorage::open`].
    ///
    /// # Errors
    ///
    /// As [`RedbStorage::open`]; without [`RedbOptions::verify_on_open`], damage is found
    /// only where a call reads it, and refused then.
    pub fn open_with(path: impl AsRef<Path>, options: RedbOptions) -> Result<Self, StorageError> {
        let path = path.as_ref().to_path_buf();
        let db = open_checked(&path, false, options, "cannot open the database file")?;
        Self::init(db, path, options)
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes the file, reporting any error that dropping the store would ignore.
    ///
    /// # Errors
    ///
    /// [`StorageError::Backend`] when redb cannot record the clean shutdown (the next open then
    /// runs its crash recovery, and nothing committed is lost).
    pub fn close(self) -> Result<(), StorageError> {
        let RedbStorage { db, path, .. } = self;
        match db.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(db) => guarded(&path, "cannot close the database file", || db.close()),
            None => Ok(()),
        }
    }

    /// Makes sure the table exists, so reads never meet a missing table.
    fn init(db: Database, path: PathBuf, options: RedbOptions) -> Result<Self, StorageError> {
        let storage = RedbStorage {
            options,
            db: RwLock::new(Some(db)),
            path,
            reopen: AtomicBool::new(false),
        };
        storage.write(|_| Ok(()))?;
        Ok(storage)
    }

    /// Runs `body` on the open database, which stays open (no reopen can start) until `body`
    /// returns; reopens it first when an earlier call left it unusable. A panic inside redb is
    /// caught here and returned as [`StorageError::Corrupt`], and has the database reopened
    /// before the next call, as an I/O error does (see [`RedbStorage::fail`]).
    fn with_db<T>(
        &self,
        body: impl FnOnce(&Database) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        if self.reopen.load(Ordering::SeqCst) {
            self.reopen()?;
        }
        let guard = self.db.read().unwrap_or_else(|p| p.into_inner());
        let Some(db) = guard.as_ref() else {
            // A reopen by another call failed meanwhile; the next call tries again.
            self.reopen.store(true, Ordering::SeqCst);
            return Err(backend(
                &self.path,
                "the database is closed after an I/O error and reopening it failed",
                "the next call tries again; if this persists, check the disk and restart",
            ));
        };
        match std::panic::catch_unwind(AssertUnwindSafe(|| body(db))) {
            Ok(result) => result,
            Err(panic) => {
                self.reopen.store(true, Ordering::SeqCst);
                Err(corrupt(&self.path, "redb panicked", panic_message(&*panic)))
            }
        }
    }

    /// Closes the database and opens it again, once no transaction of this store is open: what a
    /// restart would do, in this process. Does nothing when another call did it meanwhile.
    fn reopen(&self) -> Result<(), StorageError> {
        let mut slot = self.db.write().unwrap_or_else(|p| p.into_inner());
        if !self.reopen.load(Ordering::SeqCst) {
            return Ok(());
        }
        if let Some(db) = slot.take() {
            // Closing can fail to write the clean-shutdown mark (the disk that failed is still
            // full, say); the open below then runs redb's crash recovery, which loses nothing
            // committed. Dropping releases the file lock either way.
            let _ = std::panic::catch_unwind(AssertUnwindSafe(|| db.close()));
        }
        // A plain open, not the integrity check of the first open: nothing outside redb touched
        // the file since that check, so redb's crash recovery is all a restart would need, and a
        // store of gigabytes is not read whole at every attempt while a disk stays full.
        let db = guarded(
            &self.path,
            "cannot reopen the database file after an I/O error",
            || Database::open(&self.path),
        )?;
        *slot = Some(db);
        self.reopen.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// The [`StorageError`] for a failed redb call: [`StorageError::Corrupt`] when redb found the
    /// file damaged, [`StorageError::Backend`] otherwise. An error after which redb refuses every
    /// later call (I/O, a closed or poisoned database) has the database reopened before the
    /// next call.
    fn fail(&self, what: &str, error: impl Into<::redb::Error>) -> StorageError {
        let error = error.into();
        if needs_reopen(&error) {
            self.reopen.store(true, Ordering::SeqCst);
        }
        classify(&self.path, what, error)
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
        self.with_db(|db| {
            let mut txn = db
                .begin_write()
                .map_err(|e| self.fail("cannot begin a write transaction", e))?;
            // Immediate is redb's default; it is set explicitly because the `Storage` contract
            // (durable when the call returns) depends on it.
            txn.set_durability(Durability::Immediate)
                .map_err(|e| self.fail("cannot request a durable commit", e))?;
            // See the module docs: a commit slot that fails its checksum is then damage, never
            // a torn commit, and the open refuses it rather than roll back an acknowledged write.
            txn.set_two_phase_commit(self.options.two_phase_commit);
            let outcome = match txn.open_table(TABLE) {
                Ok(mut table) => body(&mut table),
                Err(e) => Err(self.fail("cannot open table `weft.kv.v1` for writing", e)),
            };
            match outcome {
                Ok(()) => txn
                    .commit()
                    .map_err(|e| self.fail("cannot commit a write transaction", e)),
                Err(error) => {
                    txn.abort()
                        .map_err(|e| self.fail("cannot roll back a write transaction", e))?;
                    Err(error)
                }
            }
        })
    }
}

impl Storage for RedbStorage {
    fn backup_to(&self, path: &Path, meta: &BackupMeta) -> Result<BackupReport, BackupError> {
        let outcome =
            self.with_db(|db| Ok(super::backup::backup_database(db, &self.path, path, meta)));
        match outcome {
            Ok(report) => report,
            Err(StorageError::Corrupt { message }) => Err(BackupError::Corrupt {
                path: self.path.clone(),
                reason: message,
            }),
            Err(other) => Err(BackupError::Io {
                path: self.path.clone(),
                what: "cannot read the store",
                message: other.to_string(),
            }),
        }
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.with_db(|db| {
            let txn = db
                .begin_read()
                .map_err(|e| self.fail("cannot begin a read transaction", e))?;
            let table = txn
                .open_table(TABLE)
                .map_err(|e| self.fail("cannot open table `weft.kv.v1` for reading", e))?;
            let value = table
                .get(key)
                .map_err(|e| self.fail("cannot read a key", e))?;
            Ok(value.map(|guard| guard.value().to_vec()))
        })
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
        self.with_db(|db| {
            let txn = db
                .begin_read()
                .map_err(|e| self.fail("cannot begin a read transaction", e))?;
            let table = txn
                .open_table(TABLE)
                .map_err(|e| self.fail("cannot open table `weft.kv.v1` for reading", e))?;
            // The range walks the B-tree lazily, so only `limit` entries are ever read; redb
            // returns an empty range for inverted bounds rather than panicking.
            let range = table
                .range::<&[u8]>((start, end))
                .map_err(|e| self.fail("cannot start a range scan", e))?;
            let mut entries = Vec::with_capacity(limit.min(256));
            for item in range.take(limit) {
                let (key, value) = item.map_err(|e| self.fail("cannot read a scanned entry", e))?;
                entries.push((key.value().to_vec(), value.value().to_vec()));
            }
            Ok(entries)
        })
    }

    fn scan_rev(
        &self,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StorageError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.with_db(|db| {
            let txn = db
                .begin_read()
                .map_err(|e| self.fail("cannot begin a read transaction", e))?;
            let table = txn
                .open_table(TABLE)
                .map_err(|e| self.fail("cannot open table `weft.kv.v1` for reading", e))?;
            // Walked from the end, lazily: only `limit` entries are read.
            let range = table
                .range::<&[u8]>((start, end))
                .map_err(|e| self.fail("cannot start a range scan", e))?;
            let mut entries = Vec::with_capacity(limit.min(256));
            for item in range.rev().take(limit) {
                let (key, value) = item.map_err(|e| self.fail("cannot read a scanned entry", e))?;
                entries.push((key.value().to_vec(), value.value().to_vec()));
            }
            Ok(entries)
        })
    }

    fn apply_if(&self, conditions: &[Condition], batch: &Batch) -> Result<(), StorageError> {
        self.write(|table| {
            for condition in conditions {
                let current = table
                    .get(condition.key.as_slice())
                    .map_err(|e| self.fail("cannot read a condition's key", e))?;
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
                            .map_err(|e| self.fail("cannot write a key", e))?;
                    }
                    Write::Delete(key) => {
                        table
                            .remove(key.as_slice())
                            .map_err(|e| self.fail("cannot delete a key", e))?;
                    }
                }
            }
            Ok(())
        })
    }
}

/// Opens (or, with `create`, creates) the database at `path` with redb's integrity check on open,
/// refusing a file that fails it with [`StorageError::Corrupt`]. redb's panics are caught.
///
/// When the file's last commit was two-phase ([`RedbOptions::two_phase_commit`]), a commit
/// slot failing its checksum is refused too, although redb could open the file by rolling back
/// to the commit before: a crash never leaves such a slot, so it is damage, and the rollback
/// would drop an acknowledged write without a word. After a one-phase commit such a slot is what
/// a crash mid-commit leaves, and redb's rollback of it (to the last acknowledged commit) is
/// right.
fn open_checked(
    path: &Path,
    create: bool,
    options: RedbOptions,
    what: &str,
) -> Result<Database, StorageError> {
    guarded(path, what, || {
        let mut builder = Database::builder();
        builder.set_check_integrity_on_open(options.verify_on_open);
        if create {
            builder.create(path)
        } else {
            builder.open(path)
        }
    })
}

/// Whether redb refuses every call after `error` until the database is opened again.
fn needs_reopen(error: &::redb::Error) -> bool {
    matches!(
        error,
        ::redb::Error::Io(_)
            | ::redb::Error::PreviousIo
            | ::redb::Error::DatabaseClosed
            | ::redb::Error::LockPoisoned(_)
    )
}

/// A redb error as a [`StorageError`]: damage found by redb is [`StorageError::Corrupt`], a
/// file another handle holds (redb locks it) is [`StorageError::InUse`].
fn classify(path: &Path, what: &str, error: ::redb::Error) -> StorageError {
    match error {
        ::redb::Error::Corrupted(_) => corrupt(path, what, error),
        ::redb::Error::DatabaseAlreadyOpen => StorageError::InUse {
            path: path.to_path_buf(),
        },
        _ => backend(path, what, error),
    }
}

/// Runs an open or close of redb, turning its errors into [`StorageError`]s (see [`classify`])
/// and a panic inside it into [`StorageError::Corrupt`].
fn guarded<T, E: Into<::redb::Error>>(
    path: &Path,
    what: &str,
    call: impl FnOnce() -> Result<T, E>,
) -> Result<T, StorageError> {
    match std::panic::catch_unwind(AssertUnwindSafe(call)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(classify(path, what, e.into())),
        Err(panic) => Err(corrupt(
            path,
            what,
            format_args!("redb panicked: {}", panic_message(&*panic)),
        )),
    }
}

/// The text of a caught panic.
pub(super) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".to_string()
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
fn backend(path: &Path, what: &str, error: impl Display) -> StorageError {
    StorageError::backend(format_args!(
        "redb store {}: {what}: {error}",
        path.display()
    ))
}

/// A damaged-file error naming the file, what failed, what redb reported, and what to do.
fn corrupt(path: &Path, what: &str, error: impl Display) -> StorageError {
    StorageError::Corrupt {
        message: format!(
            "redb store {}: {what}: {error}; the file is damaged: stop the engine and restore \
             the store from a backup (`weft restore`)",
            path.display()
        ),
    }
}
