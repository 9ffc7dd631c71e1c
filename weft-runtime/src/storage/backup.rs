//! Online backup of a store to a redb file, and offline restore from one.
//!
//! # Backup file layout (backup format 1)
//!
//! A backup is an ordinary redb file that a [`RedbStorage`](super::RedbStorage) can open, with
//! two tables:
//!
//! | table name       | key type | value type | contents                                   |
//! | ---------------- | -------- | ---------- | ------------------------------------------ |
//! | `weft.kv.v1`     | `&[u8]`  | `&[u8]`    | every key and value of the store, verbatim |
//! | `weft.backup.v1` | `&str`   | `&[u8]`    | one key, `manifest`: a [`BackupManifest`] as UTF-8 JSON |
//!
//! The manifest's `checksum` is the SHA-256, in lowercase hex, of every entry in key order,
//! each fed as `[key length: u64 LE][key][value length: u64 LE][value]`, so entries cannot run
//! into each other. JSON keeps the manifest readable by hand and lets a later build add fields
//! that this one ignores; [`BackupManifest::format_version`] is what tells formats apart.
//!
//! # Procedure
//!
//! [`Storage::backup_to`](super::Storage::backup_to) copies the store from one read snapshot
//! into a file under a temporary name beside the destination, commits it durably, reopens it,
//! runs redb's integrity check, recounts and re-hashes what it holds against what was read, and
//! only then links it to the destination (never over an existing file). [`restore`] copies a
//! backup beside its target, checks it the same way and refuses a newer format, removes the
//! manifest table (so the result is a plain store) and moves it into place.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use ::redb::{
    Database, DatabaseError, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    TableDefinition,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Entry;
use super::redb::TABLE;

/// The version of the store format a backup holds: the redb layout (`weft.kv.v1`), the
/// engine's records (format tag `0x01`) and this module's manifest. A build restores backups of
/// this version and older, and refuses newer ones.
///
/// Version 2 added the created-time, update-time and children indexes (`crt/`, `lus/`,
/// `child/`): a build of version 1 does not keep them, so it must refuse a store a version-2
/// build marked complete rather than leave them stale. A version-1 store opens as it is and is
/// backfilled at build.
///
/// Version 3 keeps a workflow's lifecycle (cancellation, execution deadline, timed-out marker,
/// parent link) in its record (format tag `0x02`) instead of side keys: a build of version 2
/// cannot read those records. A version-2 store is upgraded in place at build (see
/// `engine::record_upgrade`).
///
/// Version 4 added the live counters (`lcnt/`): a build of version 3 does not keep them, so
/// it must refuse a store a version-4 build counted rather than leave them wrong. A version-3
/// store opens as it is and is counted at build.
///
/// Version 5 puts a workflow's partition (`u16` big-endian) right after the prefix of each of
/// its keys that the owner of its partition reads (`wf/<p><id>`, `live/<p><id>`,
/// `tm/<p><deadline><id>`, ...: see `engine::record`): a build of version 4 would not find
/// them. A version-4 store is upgraded in place at build (see `engine::key_upgrade`).
pub const STORE_FORMAT_VERSION: u32 = 5;

/// The manifest table of a backup file.
const MANIFEST_TABLE: TableDefinition<'static, &'static str, &'static [u8]> =
    TableDefinition::new("weft.backup.v1");
/// The manifest's key in [`MANIFEST_TABLE`].
const MANIFEST_KEY: &str = "manifest";
/// Bytes of entries copied per write transaction; bounds the memory redb holds before a commit.
const CHUNK_BYTES: usize = 64 << 20;

/// What the caller of a backup knows and the storage does not: written into the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupMeta {
    /// The store format version the backup holds (see [`STORE_FORMAT_VERSION`]).
    pub format_version: u32,
    /// The version of the Weft build that took the backup.
    pub weft_version: String,
    /// The owner epoch of the engine that took the backup, if an engine did.
    pub owner_epoch: Option<u64>,
    /// When the backup was taken, in ms since the Unix epoch.
    pub created_at_ms: u64,
}

impl BackupMeta {
    /// A label for a backup taken outside any engine: this build's format and version, now.
    pub fn now() -> Self {
        BackupMeta {
            format_version: STORE_FORMAT_VERSION,
            weft_version: env!("CARGO_PKG_VERSION").to_string(),
            owner_epoch: None,
            created_at_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        }
    }
}

/// The description a backup file carries of itself (see the module docs for where).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupManifest {
    /// Who took the backup, when, and in which format.
    #[serde(flatten)]
    pub meta: BackupMeta,
    /// How many entries the store held in the snapshot.
    pub entries: u64,
    /// SHA-256 of the entries in key order, lowercase hex (see the module docs).
    pub checksum: String,
}

/// A backup written and verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupReport {
    /// Where the backup is.
    pub path: PathBuf,
    /// Its size on disk, in bytes.
    pub bytes: u64,
    /// What it holds.
    pub manifest: BackupManifest,
}

/// Options for [`restore`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestoreOptions {
    /// Replace a store already at the target path. Off by default: a restore refuses to
    /// overwrite anything.
    pub replace: bool,
}

/// A backup or a restore failed. Nothing was left at the destination.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackupError {
    /// The storage backend cannot write backups.
    #[error("the {backend} storage backend cannot write backups; back up a redb store instead")]
    Unsupported {
        /// The backend's name.
        backend: &'static str,
    },
    /// The destination already exists; nothing is ever overwritten unless asked to.
    #[error(
        "{} already exists; choose a new file name, or remove it first{hint}",
        path.display()
    )]
    Exists {
        /// The destination.
        path: PathBuf,
        /// What else the caller may do, for people.
        hint: &'static str,
    },
    /// The target store is open in a running process; restore replaces a store only offline.
    #[error("{} is open in a running process; stop the engine before restoring over it", path.display())]
    InUse {
        /// The target.
        path: PathBuf,
    },
    /// A file operation or a redb call failed.
    #[error("{}: {what}: {message}", path.display())]
    Io {
        /// The file it was about.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// What the system or redb reported.
        message: String,
    },
    /// The file is not a Weft backup (no manifest, or no store table).
    #[error("{} is not a Weft backup: {reason}", path.display())]
    NotABackup {
        /// The file.
        path: PathBuf,
        /// What is missing.
        reason: String,
    },
    /// The backup holds a store format newer than this build reads.
    #[error(
        "{} holds store format {found}, written by weft {written_by}; this build reads store format {supported} and older, restore it with weft {written_by} or newer",
        path.display()
    )]
    NewerFormat {
        /// The backup.
        path: PathBuf,
        /// Its format version.
        found: u32,
        /// The newest this build reads.
        supported: u32,
        /// The Weft version that wrote it.
        written_by: String,
    },
    /// The file's contents do not match what was read or what its manifest says.
    #[error("{} failed verification: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What did not match.
        reason: String,
    },
}

impl BackupError {
    /// A stable, machine-readable code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            BackupError::Unsupported { .. } => "backup.unsupported",
            BackupError::Exists { .. } => "backup.exists",
            BackupError::InUse { .. } => "backup.in_use",
            BackupError::Io { .. } => "backup.io",
            BackupError::NotABackup { .. } => "backup.not_a_backup",
            BackupError::NewerFormat { .. } => "backup.newer_format",
            BackupError::Corrupt { .. } => "backup.corrupt",
        }
    }
}

fn io(path: &Path, what: &'static str, error: impl std::fmt::Display) -> BackupError {
    BackupError::Io {
        path: path.to_path_buf(),
        what,
        message: error.to_string(),
    }
}

/// SHA-256 over entries in key order, each length-prefixed (see the module docs).
#[derive(Default)]
struct Tally {
    hasher: Sha256,
    entries: u64,
}

impl Tally {
    fn add(&mut self, key: &[u8], value: &[u8]) {
        self.hasher.update((key.len() as u64).to_le_bytes());
        self.hasher.update(key);
        self.hasher.update((value.len() as u64).to_le_bytes());
        self.hasher.update(value);
        self.entries += 1;
    }

    fn finish(self) -> (u64, String) {
        let digest = self.hasher.finalize();
        let hex = digest.iter().map(|b| format!("{b:02x}")).collect();
        (self.entries, hex)
    }
}

/// A file name beside `path` that nothing else uses: `.<name>.<purpose>-<pid>-<n>`.
fn temp_beside(path: &Path, purpose: &str) -> Result<PathBuf, BackupError> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .ok_or_else(|| io(path, "cannot use the path", "it names no file"))?;
    Ok(path.with_file_name(format!(
        ".{}.{purpose}-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )))
}

/// Removes a temporary file when dropped, unless it was kept.
struct TempFile {
    path: PathBuf,
    keep: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn refuse_existing(path: &Path, hint: &'static str) -> Result<(), BackupError> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => Err(BackupError::Exists {
            path: path.to_path_buf(),
            hint,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(path, "cannot read the file's metadata", e)),
    }
}

/// Writes a backup of `entries` (one consistent snapshot, in key order) to `path`.
///
/// Backends call this from [`Storage::backup_to`](super::Storage::backup_to) with an iterator
/// over their snapshot; it does the rest of the procedure in the module docs.
pub(super) fn write_backup(
    entries: impl Iterator<Item = Result<Entry, BackupError>>,
    path: &Path,
    meta: &BackupMeta,
) -> Result<BackupReport, BackupError> {
    refuse_existing(path, "")?;
    let temp = TempFile {
        path: temp_beside(path, "backup")?,
        keep: false,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&temp.path)
        .map_err(|e| io(&temp.path, "cannot create the backup file", e))?;
    let backend = ::redb::backends::FileBackend::new(file)
        .map_err(|e| io(&temp.path, "cannot lock the backup file", e))?;
    let db = Database::builder()
        .create_with_backend(backend)
        .map_err(|e| io(&temp.path, "cannot create the backup database", e))?;
    let tally = copy_into(&db, entries, &temp.path)?;
    let (count, checksum) = tally.finish();
    let manifest = BackupManifest {
        meta: meta.clone(),
        entries: count,
        checksum,
    };
    write_manifest(&db, &manifest, &temp.path)?;
    drop(db);

    // Verify what is on disk, not what was meant to be written.
    let found = verify(&temp.path)?;
    if (found.entries, &found.checksum) != (manifest.entries, &manifest.checksum)
        || found.stored != manifest
    {
        return Err(BackupError::Corrupt {
            path: temp.path.clone(),
            reason: format!(
                "the copy holds {} entries with checksum {}, but {} entries with checksum {} were read",
                found.entries, found.checksum, manifest.entries, manifest.checksum
            ),
        });
    }
    sync_file(&temp.path)?;
    link_new(&temp.path, path)?;
    let bytes = std::fs::metadata(path)
        .map_err(|e| io(path, "cannot read the backup's size", e))?
        .len();
    Ok(BackupReport {
        path: path.to_path_buf(),
        bytes,
        manifest,
    })
}

/// Backs up the redb store `db` (whose file is `source`) to `path` from one read transaction:
/// redb keeps that snapshot's pages while the copy runs, and writers go on beside it.
pub(super) fn backup_database(
    db: &Database,
    source: &Path,
    path: &Path,
    meta: &BackupMeta,
) -> Result<BackupReport, BackupError> {
    let txn = db
        .begin_read()
        .map_err(|e| io(source, "cannot begin a read transaction", e))?;
    let table = txn
        .open_table(TABLE)
        .map_err(|e| io(source, "cannot open table `weft.kv.v1` for reading", e))?;
    let entries = table
        .iter()
        .map_err(|e| io(source, "cannot start reading the store", e))?
        .map(|item| {
            item.map(|(key, value)| (key.value().to_vec(), value.value().to_vec()))
                .map_err(|e| io(source, "cannot read an entry", e))
        });
    write_backup(entries, path, meta)
}

/// Copies `entries` into `db`'s store table in chunks, returning their tally. The chunks are
/// committed without fsync; [`write_manifest`]'s durable commit makes them all durable.
fn copy_into(
    db: &Database,
    entries: impl Iterator<Item = Result<Entry, BackupError>>,
    path: &Path,
) -> Result<Tally, BackupError> {
    let mut tally = Tally::default();
    let mut entries = entries.peekable();
    loop {
        let mut txn = db
            .begin_write()
            .map_err(|e| io(path, "cannot begin a write transaction", e))?;
        txn.set_durability(Durability::None)
            .map_err(|e| io(path, "cannot set the commit's durability", e))?;
        {
            let mut table = txn
                .open_table(TABLE)
                .map_err(|e| io(path, "cannot create the store table", e))?;
            let mut chunk = 0;
            while chunk < CHUNK_BYTES {
                let Some(entry) = entries.next() else { break };
                let (key, value) = entry?;
                tally.add(&key, &value);
                chunk += key.len() + value.len();
                table
                    .insert(key.as_slice(), value.as_slice())
                    .map_err(|e| io(path, "cannot write an entry", e))?;
            }
        }
        txn.commit()
            .map_err(|e| io(path, "cannot commit a chunk", e))?;
        if entries.peek().is_none() {
            return Ok(tally);
        }
    }
}

fn write_manifest(
    db: &Database,
    manifest: &BackupManifest,
    path: &Path,
) -> Result<(), BackupError> {
    let json =
        serde_json::to_vec(manifest).map_err(|e| io(path, "cannot encode the manifest", e))?;
    let mut txn = db
        .begin_write()
        .map_err(|e| io(path, "cannot begin a write transaction", e))?;
    txn.set_durability(Durability::Immediate)
        .map_err(|e| io(path, "cannot request a durable commit", e))?;
    {
        let mut table = txn
            .open_table(MANIFEST_TABLE)
            .map_err(|e| io(path, "cannot create the manifest table", e))?;
        table
            .insert(MANIFEST_KEY, json.as_slice())
            .map_err(|e| io(path, "cannot write the manifest", e))?;
    }
    txn.commit()
        .map_err(|e| io(path, "cannot commit the backup", e))
}

/// A backup file's manifest as stored, and what its entries actually are.
struct Checked {
    stored: BackupManifest,
    entries: u64,
    checksum: String,
}

/// Opens the backup file at `path` (which redb may repair if it was not closed cleanly, so
/// callers pass a copy they own), runs redb's integrity check, reads the manifest (refusing a
/// newer format before anything else of it is trusted), and recounts and re-hashes the entries.
///
/// A damaged file can make redb panic (its own assertions on pages it cannot make sense of):
/// that is caught here and reported as [`BackupError::Corrupt`].
fn verify(path: &Path) -> Result<Checked, BackupError> {
    contained(path, || verify_unguarded(path))
}

fn verify_unguarded(path: &Path) -> Result<Checked, BackupError> {
    let mut db = Database::open(path).map_err(|e| match e {
        DatabaseError::Storage(::redb::StorageError::Corrupted(reason)) => BackupError::Corrupt {
            path: path.to_path_buf(),
            reason,
        },
        other => io(path, "cannot open the backup as a redb database", other),
    })?;
    match db.check_integrity() {
        Ok(true) => {}
        Ok(false) => {
            return Err(BackupError::Corrupt {
                path: path.to_path_buf(),
                reason: "redb's integrity check found damage (and repaired this copy)".into(),
            });
        }
        Err(e) => {
            return Err(BackupError::Corrupt {
                path: path.to_path_buf(),
                reason: format!("redb's integrity check failed: {e}"),
            });
        }
    }
    let txn = db
        .begin_read()
        .map_err(|e| io(path, "cannot begin a read transaction", e))?;
    let stored = manifest_in(&txn, path)?;
    let table = txn
        .open_table(TABLE)
        .map_err(|e| not_a_backup(path, "weft.kv.v1", e))?;
    let mut tally = Tally::default();
    let listed = table
        .len()
        .map_err(|e| io(path, "cannot count the entries", e))?;
    for item in table
        .iter()
        .map_err(|e| io(path, "cannot read the entries", e))?
    {
        let (key, value) = item.map_err(|e| io(path, "cannot read an entry", e))?;
        tally.add(key.value(), value.value());
    }
    let (entries, checksum) = tally.finish();
    if listed != entries {
        return Err(BackupError::Corrupt {
            path: path.to_path_buf(),
            reason: format!("the table says it holds {listed} entries, but {entries} were read"),
        });
    }
    Ok(Checked {
        stored,
        entries,
        checksum,
    })
}

/// The manifest of a backup, read in `txn`.
fn manifest_in(txn: &::redb::ReadTransaction, path: &Path) -> Result<BackupManifest, BackupError> {
    let table = txn
        .open_table(MANIFEST_TABLE)
        .map_err(|e| not_a_backup(path, "weft.backup.v1", e))?;
    let json = table
        .get(MANIFEST_KEY)
        .map_err(|e| io(path, "cannot read the manifest", e))?
        .ok_or_else(|| BackupError::NotABackup {
            path: path.to_path_buf(),
            reason: "its manifest table holds no manifest".into(),
        })?;
    decode_manifest(json.value(), path)
}

/// Decodes the manifest JSON of the backup at `path` (bytes from a file anyone may hand in).
/// Its format version is read on its own first, so a newer manifest is refused as newer, not
/// as one that does not decode.
pub(crate) fn decode_manifest(json: &[u8], path: &Path) -> Result<BackupManifest, BackupError> {
    #[derive(Deserialize)]
    struct Version {
        format_version: u32,
        #[serde(default)]
        weft_version: String,
    }
    let undecodable = |e: serde_json::Error| BackupError::NotABackup {
        path: path.to_path_buf(),
        reason: format!("its manifest does not decode: {e}"),
    };
    let version: Version = serde_json::from_slice(json).map_err(undecodable)?;
    if version.format_version > STORE_FORMAT_VERSION {
        return Err(BackupError::NewerFormat {
            path: path.to_path_buf(),
            found: version.format_version,
            supported: STORE_FORMAT_VERSION,
            written_by: version.weft_version,
        });
    }
    serde_json::from_slice(json).map_err(undecodable)
}

fn not_a_backup(path: &Path, table: &str, error: ::redb::TableError) -> BackupError {
    match error {
        ::redb::TableError::TableDoesNotExist(_) => BackupError::NotABackup {
            path: path.to_path_buf(),
            reason: format!("it has no `{table}` table"),
        },
        other => io(path, "cannot open a table", other),
    }
}

fn sync_file(path: &Path) -> Result<(), BackupError> {
    std::fs::File::open(path)
        .and_then(|file| file.sync_all())
        .map_err(|e| io(path, "cannot sync the file", e))
}

/// Makes the directory entry of `path` durable.
fn sync_dir(path: &Path) -> Result<(), BackupError> {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        std::fs::File::open(dir)
            .and_then(|dir| dir.sync_all())
            .map_err(|e| io(path, "cannot sync the directory", e))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Gives the finished file at `temp` the name `path`, failing if `path` exists: a hard link
/// cannot replace a file, so a file created there meanwhile is never overwritten.
fn link_new(temp: &Path, path: &Path) -> Result<(), BackupError> {
    match std::fs::hard_link(temp, path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(BackupError::Exists {
                path: path.to_path_buf(),
                hint: "",
            });
        }
        // A file system without hard links: check, then rename (a narrow window).
        Err(_) => {
            refuse_existing(path, "")?;
            std::fs::rename(temp, path)
                .map_err(|e| io(path, "cannot move the file into place", e))?;
        }
    }
    sync_dir(path)
}

/// Installs the backup at `backup` as the store at `target`, offline. Returns its manifest.
///
/// The backup is copied beside the target (under `.<name>.restoring-<pid>-<n>`) and checked
/// there, so the backup file itself is never opened for writing: redb's integrity check must
/// pass, the manifest must be present and name a store format this build reads (at most
/// [`STORE_FORMAT_VERSION`]), and the entries must match its count and checksum. The manifest
/// table is then removed, so the result is a plain store, and the copy is moved to `target`
/// in one rename. Whatever fails, nothing is left at `target` that was not there before.
///
/// No engine may have `target` open: a store open in this or another process is refused. Build
/// the engine on `target` after the restore returns; it takes ownership with a new epoch and
/// resumes every workflow the backup held (activities that were in flight run again).
///
/// # Errors
///
/// [`BackupError::Exists`] when `target` exists and [`RestoreOptions::replace`] is off;
/// [`BackupError::InUse`] when it is open; [`BackupError::NotABackup`],
/// [`BackupError::NewerFormat`] or [`BackupError::Corrupt`] when the backup fails its checks;
/// [`BackupError::Io`] when a file operation fails.
pub fn restore(
    backup: impl AsRef<Path>,
    target: impl AsRef<Path>,
    options: RestoreOptions,
) -> Result<BackupManifest, BackupError> {
    let (backup, target) = (backup.as_ref(), target.as_ref());
    if !options.replace {
        refuse_existing(target, "; or pass `replace` to restore over it")?;
    }
    std::fs::metadata(backup).map_err(|e| io(backup, "cannot read the backup", e))?;
    let temp = TempFile {
        path: temp_beside(target, "restoring")?,
        keep: false,
    };
    std::fs::copy(backup, &temp.path).map_err(|e| io(&temp.path, "cannot copy the backup", e))?;
    let found = verify(&temp.path).map_err(|e| match e {
        // Name the file the operator gave, not the copy.
        BackupError::NewerFormat {
            found,
            supported,
            written_by,
            ..
        } => BackupError::NewerFormat {
            path: backup.to_path_buf(),
            found,
            supported,
            written_by,
        },
        other => other,
    })?;
    let stored = found.stored;
    if (stored.entries, &stored.checksum) != (found.entries, &found.checksum) {
        return Err(BackupError::Corrupt {
            path: backup.to_path_buf(),
            reason: format!(
                "it holds {} entries with checksum {}, but its manifest says {} entries with checksum {}",
                found.entries, found.checksum, stored.entries, stored.checksum
            ),
        });
    }
    strip_manifest(&temp.path)?;
    sync_file(&temp.path)?;
    if options.replace {
        refuse_open(target)?;
        std::fs::rename(&temp.path, target)
            .map_err(|e| io(target, "cannot move the restored store into place", e))?;
        sync_dir(target)?;
    } else {
        link_new(&temp.path, target)?;
    }
    Ok(stored)
}

/// The manifest of the backup at `path` as stored, without checking the entries (a read-only
/// open). For showing what a backup holds; [`restore`] checks everything.
///
/// # Errors
///
/// [`BackupError::NotABackup`] when the file has no manifest; [`BackupError::Io`] when it
/// cannot be opened or read.
pub fn read_manifest(path: impl AsRef<Path>) -> Result<BackupManifest, BackupError> {
    let path = path.as_ref();
    contained(path, || {
        let db = Database::builder()
            .open_read_only(path)
            .map_err(|e| io(path, "cannot open the backup as a redb database", e))?;
        let txn = db
            .begin_read()
            .map_err(|e| io(path, "cannot begin a read transaction", e))?;
        manifest_in(&txn, path)
    })
}

/// Runs `call`, which reads the redb file at `path`, turning a panic inside redb (a damaged
/// file) into [`BackupError::Corrupt`].
fn contained<T>(
    path: &Path,
    call: impl FnOnce() -> Result<T, BackupError>,
) -> Result<T, BackupError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(call)).unwrap_or_else(|panic| {
        Err(BackupError::Corrupt {
            path: path.to_path_buf(),
            reason: format!(
                "redb could not make sense of the file ({})",
                super::redb::panic_message(&*panic)
            ),
        })
    })
}

fn strip_manifest(path: &Path) -> Result<(), BackupError> {
    let db = Database::open(path).map_err(|e| io(path, "cannot open the restored store", e))?;
    let txn = db
        .begin_write()
        .map_err(|e| io(path, "cannot begin a write transaction", e))?;
    txn.delete_table(MANIFEST_TABLE)
        .map_err(|e| io(path, "cannot remove the manifest table", e))?;
    txn.commit()
        .map_err(|e| io(path, "cannot commit the restored store", e))
}

/// Refuses a target that a running process holds open (redb locks an open file).
fn refuse_open(target: &Path) -> Result<(), BackupError> {
    // A damaged store (what a restore often replaces) can make redb panic as it opens.
    let opened = std::panic::catch_unwind(|| Database::open(target).map(drop));
    match opened {
        Ok(Err(DatabaseError::DatabaseAlreadyOpen)) => Err(BackupError::InUse {
            path: target.to_path_buf(),
        }),
        // Not there, unreadable or damaged: it is being replaced, which is the point.
        _ => Ok(()),
    }
}
