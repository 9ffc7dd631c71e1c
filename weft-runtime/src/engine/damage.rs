//! Damaged index entries and records the engine skips: counted, and the first few logged.
//!
//! An index entry whose key does not parse (a torn write, a bit flip, a foreign tool's key), or
//! that names no workflow, says nothing the engine can act on: every reader that scans an
//! index skips it rather than fail every call over one bad key. Skipping silently would hide
//! the damage, so each skip is counted here ([`super::EngineStats::damaged_entries`], for a
//! metric or an alert) and the first [`LOGGED`] are written to stderr with their key, so an
//! operator can find them. Damage that belongs to one workflow (its record, its attributes)
//! parks that workflow instead, with a reason `describe` shows; this is for what belongs to
//! none.

use std::sync::atomic::{AtomicU64, Ordering};

/// How many skips are logged on stderr; after that they are only counted, so a reader that
/// passes the same damaged entry again and again (a scheduler pass, a listing) cannot flood
/// the log.
pub(crate) const LOGGED: u64 = 32;

/// The count of damaged entries skipped since the engine was built.
#[derive(Debug, Default)]
pub(crate) struct DamageLog {
    skipped: AtomicU64,
}

impl DamageLog {
    /// Records that a reader skipped the entry at `key`, which is damaged as `why` says.
    pub(crate) fn skipped(&self, key: &[u8], why: &str) {
        let n = self.skipped.fetch_add(1, Ordering::Relaxed);
        if n < LOGGED {
            eprintln!(
                "weft: skipped the damaged store entry `{}`: {why}{}",
                key.escape_ascii(),
                if n + 1 == LOGGED {
                    " (further damaged entries are only counted, in EngineStats::damaged_entries)"
                } else {
                    ""
                }
            );
        }
    }

    /// Records that a reader skipped the index entry at `key`, whose key does not parse.
    pub(crate) fn unparsed(&self, key: &[u8]) {
        self.skipped(key, "its key does not parse as its index lays keys out");
    }

    /// How many entries were skipped.
    pub(crate) fn count(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }
}
