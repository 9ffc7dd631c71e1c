//! Online backup: a verified copy of the engine's store, taken while it runs.

use std::path::Path;
use std::sync::Arc;

use crate::storage::{BackupMeta, BackupReport, STORE_FORMAT_VERSION};

use super::Engine;
use super::clock::to_millis;
use super::error::EngineError;

impl Engine {
    /// Writes a consistent copy of the whole store to a new file at `path`, while the engine
    /// keeps running.
    ///
    /// The copy is read from one snapshot of the store (for redb, one read transaction), so it
    /// holds every workflow exactly as some committed batch left it: commits made while the copy
    /// runs are not in it, and none is half in it. It is labelled with the store format version
    /// ([`STORE_FORMAT_VERSION`]), this build's version, this engine's owner epoch and the time,
    /// written under a temporary name beside `path`, then reopened and verified (redb's
    /// integrity check, and the entry count and a SHA-256 of every key and value against what
    /// was read), and only then linked to `path`. An existing file at `path` is never
    /// overwritten. The copy runs on a blocking thread, never on the async workers, and does
    /// not hold up the engine's commits.
    ///
    /// Restore it offline with [`crate::storage::restore`], then build an engine on the
    /// restored file: every workflow the backup held resumes, and an activity that was in flight
    /// when it was taken runs again, as after a crash.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future does not stop the copy: it runs to the end on its blocking thread, so
    /// the file appears at `path` if it verifies, and its temporary file is removed if not.
    /// Calling again with the same `path` after a drop answers `Exists` once the first copy has
    /// landed.
    ///
    /// # Errors
    ///
    /// [`EngineError::Shutdown`] or [`EngineError::Fenced`] when the engine no longer runs;
    /// [`EngineError::Backup`] with [`BackupError::Exists`](crate::storage::BackupError::Exists)
    /// when `path` exists, `Unsupported` when the storage backend cannot write backups, `Io` when
    /// reading the store or writing the file fails, `Corrupt` when the copy does not verify.
    pub async fn backup(&self, path: impl AsRef<Path>) -> Result<BackupReport, EngineError> {
        self.inner.check_live()?;
        let meta = BackupMeta {
            format_version: STORE_FORMAT_VERSION,
            weft_version: env!("CARGO_PKG_VERSION").to_string(),
            owner_epoch: Some(self.inner.epoch),
            created_at_ms: to_millis(self.inner.clock.now()),
        };
        let storage = Arc::clone(&self.inner.storage);
        let path = path.as_ref().to_path_buf();
        let copy = tokio::task::spawn_blocking(move || storage.backup_to(&path, &meta));
        match copy.await {
            Ok(outcome) => Ok(outcome?),
            Err(join) => Err(EngineError::Panicked {
                what: "the backup".into(),
                message: join.to_string(),
            }),
        }
    }
}
