//! The upgrade of a store of format 4 to format 5: every per-workflow key gains its partition.
//!
//! Format 5 puts a workflow's partition (a `u16`, big-endian) right after the prefix of every
//! key its partition's owner reads to recover or drive it (`wf/`, `live/`, `tm/`, `sig/`,
//! `sigid/`, `upd/`, `updq/`, `actres/`, `attempt/`, `wfattr/`, `child/`: see
//! [`record::PARTITIONED_PREFIXES`]). Stores before it have one partition, so the upgrade
//! rewrites each such key `<prefix><rest>` as `<prefix>\0\0<rest>` (partition 0), value
//! unchanged.
//!
//! The first build on an older store raises `meta/format` to 5 in the write that takes
//! ownership (an older build refuses the store from then on), then moves the keys here, before
//! any backfill, the writer, the timers or recovery run, so nothing else writes meanwhile. Every
//! commit is fenced on the build's epoch and puts the new keys and deletes the old ones together,
//! so each key is either old or new, never both or neither. A crash part-way leaves
//! [`record::PARTITION_KEYS_KEY`] short of complete and the next build goes on:
//!
//! - Keys that begin with the workflow id (all but `tm/`) tell old from new by their first byte
//!   after the prefix: an id is never empty and never holds a NUL, while partition 0 begins
//!   with one. So the old keys left are exactly those from `<prefix>\x01` on, and each page
//!   moved is one fenced commit.
//! - A timer key begins with its deadline, whose first bytes are NULs too, so old and new timer
//!   keys cannot be told apart by their bytes. The timers are moved in one commit, which also
//!   writes the marker's first stage ([`record::PARTITION_KEYS_TIMERS`]): before it every timer
//!   key is old, after it every one is new. Timers are the live waits on a timer, few beside the
//!   records, so one commit holds them.
//!
//! The last commit writes [`record::PARTITION_KEYS_DONE`].

use std::ops::Bound;

use crate::storage::{Batch, Storage, prefix_end};

use super::error::EngineError;
use super::record;

/// Keys moved per upgrade commit.
const PAGE: usize = 512;

/// Moves every per-workflow key of an older store into partition 0 when
/// [`record::PARTITION_KEYS_KEY`] does not say it is done, as the owner of `epoch`.
pub(crate) fn ensure(storage: &dyn Storage, epoch: u64) -> Result<(), EngineError> {
    let marker = storage.get(record::PARTITION_KEYS_KEY)?;
    if marker.as_deref() == Some(record::PARTITION_KEYS_DONE) {
        return Ok(());
    }
    let commit = |batch: Batch| super::fenced::apply(storage, epoch, batch);
    if marker.as_deref() != Some(record::PARTITION_KEYS_TIMERS) {
        // Every timer key is old: none was moved, and nothing else writes during the build.
        let mut batch = Batch::new();
        for (key, value) in storage.scan_prefix(record::TIMER_PREFIX, None, usize::MAX)? {
            batch.put(moved(record::TIMER_PREFIX, &key), value);
            batch.delete(key);
        }
        batch.put(
            record::PARTITION_KEYS_KEY,
            record::PARTITION_KEYS_TIMERS.to_vec(),
        );
        commit(batch)?;
    }
    for &prefix in record::PARTITIONED_PREFIXES {
        if prefix == record::TIMER_PREFIX {
            continue;
        }
        // The old keys: those whose byte after the prefix is not a NUL.
        let start = [prefix, &[0x01]].concat();
        let end = prefix_end(prefix);
        loop {
            let page = storage.scan(
                Bound::Included(&start),
                end.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
                PAGE,
            )?;
            if page.is_empty() {
                break;
            }
            let mut batch = Batch::new();
            for (key, value) in page {
                batch.put(moved(prefix, &key), value);
                batch.delete(key);
            }
            commit(batch)?;
        }
    }
    let mut done = Batch::new();
    done.put(
        record::PARTITION_KEYS_KEY,
        record::PARTITION_KEYS_DONE.to_vec(),
    );
    commit(done)
}

/// `<prefix>\0\0<rest>` for an old key `<prefix><rest>`: the same key in partition 0.
fn moved(prefix: &[u8], key: &[u8]) -> Vec<u8> {
    let rest = &key[prefix.len()..];
    let mut out = Vec::with_capacity(key.len() + 2);
    out.extend_from_slice(prefix);
    out.extend_from_slice(&record::Partition::ZERO.to_be_bytes());
    out.extend_from_slice(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryStorage;

    #[test]
    fn an_old_key_moves_to_partition_zero_and_a_rerun_moves_nothing_more() {
        let storage = MemoryStorage::new();
        storage
            .put(record::EPOCH_KEY, &record::encode_epoch(3))
            .unwrap();
        storage.put(b"wf/a", b"record").unwrap();
        storage.put(b"sig/a\0seq", b"signal").unwrap();
        let deadline = 7u64.to_be_bytes();
        storage
            .put(&[b"tm/".as_slice(), &deadline, b"a"].concat(), b"")
            .unwrap();
        storage.put(b"idem/k", b"global").unwrap();
        ensure(&storage, 3).unwrap();
        let p = record::Partition::ZERO;
        assert_eq!(
            storage.get(&record::workflow_key(p, "a")).unwrap(),
            Some(b"record".to_vec())
        );
        assert_eq!(storage.get(b"wf/a").unwrap(), None);
        assert!(
            storage
                .get(&record::timer_key(p, 7, "a"))
                .unwrap()
                .is_some()
        );
        assert_eq!(
            storage
                .scan_prefix(&record::signal_queue_prefix(p, "a"), None, 10)
                .unwrap()
                .len(),
            1
        );
        assert_eq!(storage.get(b"idem/k").unwrap(), Some(b"global".to_vec()));
        // Run again with the marker taken away: the timers stage is done, the rest finds no
        // old key, and nothing moves twice.
        storage
            .put(record::PARTITION_KEYS_KEY, record::PARTITION_KEYS_TIMERS)
            .unwrap();
        ensure(&storage, 3).unwrap();
        assert!(
            storage
                .get(&record::timer_key(p, 7, "a"))
                .unwrap()
                .is_some()
        );
        assert!(
            storage
                .get(&record::workflow_key(p, "a"))
                .unwrap()
                .is_some()
        );
    }
}
