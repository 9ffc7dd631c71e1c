//! Visibility indexes: what lets `list` and `count` answer among millions of finished
//! workflows without reading them.
//!
//! - The type index, `ty/<type>\0<id>`, names every workflow by its type. A workflow joins it in
//!   the commit that creates it (`runner::transition` of its first step) and leaves it when
//!   purged. A listing by type reads that type's entries alone.
//! - The finish-time index, `fin/<finish ms BE><id>` ([`FinishedRecord`]: status and type), names
//!   every finished workflow by when it finished. It is written by the transition that finishes
//!   the workflow and deleted by its purge, so a purge by age reads no records.
//! - Counters, `cnt/<status>\0<type>`, count finished workflows per status and type. Only the
//!   writer writes them: as it commits a batch, [`Counters::stage`] looks at the finish-time
//!   entries the batch adds or deletes, compares each with what is stored, and puts the new
//!   counter values into the same batch. So a counter moves exactly when its entry does, in the
//!   same transaction, whichever code path wrote the entry, and a batch retried after a torn
//!   commit (the entry already stored) counts nothing twice.
//!
//! - The created-time index, `crt/<created ms BE><id>`, names every workflow by when it started:
//!   written with the type index entry, deleted by the purge.
//! - The update-time index of live workflows, `lus/<updated s BE><id>`, names every workflow
//!   not finished by the second its record was last written in. A write of a live record in a
//!   later second moves its entry in the same batch ([`stage_rewrite`]: a delete and a put,
//!   nothing within the same second, which spares most steps of a busy workflow the two B-tree
//!   changes), and the commit that finishes the workflow deletes it: a finished workflow is
//!   never written again, so its last update is its finish time and `fin/` orders it. A listing
//!   by update time merges the two.
//! - The children index, `child/<parent>\0<child>`, written with the child's `parent/` link
//!   when the child is started and deleted with it when the child is purged.
//!
//! Unfinished workflows are not counted here: they are few next to the finished ones, and the
//! live index names them, so `count` reads their records (which also finds a corrupt one and
//! reports it parked). A finished workflow is counted under the status it finished with.
//!
//! Stores written before these indexes existed lack them: the first engine built on one fills
//! them in from the workflow records, a page per commit fenced on its epoch, and writes the
//! counters with [`record::VISIBILITY_INDEX_KEY`] in the last commit. It runs in
//! `EngineBuilder::build` before the writer starts, so nothing else writes meanwhile; a crash
//! part-way leaves the marker unwritten and the next build starts over (every write is an
//! idempotent put, and the counters are computed afresh). The created-time, update-time and
//! children indexes came later and have their own marker, [`record::ORDER_INDEX_KEY`], filled
//! in the same way by [`ensure_order`].

use std::collections::{BTreeMap, HashMap};

use crate::storage::{Batch, Condition, Storage, StorageError, Write};

use super::error::EngineError;
use super::record::{self, FinishedRecord, WorkflowRecord};

/// Workflow records read per backfill commit.
const PAGE: usize = 512;

/// The counters' values as the writer last wrote them, read from storage on first use.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    values: HashMap<Vec<u8>, u64>,
}

impl Counters {
    /// Adds to `batch` the counter values that follow from its finish-time entries.
    ///
    /// Reads storage once for every finish-time entry the batch writes (once per workflow, when
    /// it finishes or is purged) and once per counter the first time it moves; a batch of plain
    /// steps reads nothing.
    pub(crate) fn stage(
        &mut self,
        storage: &dyn Storage,
        batch: &mut Batch,
    ) -> Result<(), StorageError> {
        // Each touched entry's value as it stands after the writes seen so far.
        let mut entries: HashMap<&[u8], Option<&[u8]>> = HashMap::new();
        let mut stored: HashMap<Vec<u8>, Option<Vec<u8>>> = HashMap::new();
        let mut deltas: BTreeMap<Vec<u8>, i64> = BTreeMap::new();
        for write in &batch.writes {
            let (key, value) = match write {
                Write::Put(key, value) => (key.as_slice(), Some(value.as_slice())),
                Write::Delete(key) => (key.as_slice(), None),
            };
            if !key.starts_with(record::FINISHED_PREFIX) {
                continue;
            }
            let before: Option<Vec<u8>> = match entries.get(key) {
                Some(value) => value.map(<[u8]>::to_vec),
                None => {
                    if !stored.contains_key(key) {
                        stored.insert(key.to_vec(), storage.get(key)?);
                    }
                    stored[key].clone()
                }
            };
            if before.as_deref() != value {
                if let Some(counter) = before.as_deref().and_then(counter_of) {
                    *deltas.entry(counter).or_default() -= 1;
                }
                if let Some(counter) = value.and_then(counter_of) {
                    *deltas.entry(counter).or_default() += 1;
                }
            }
            entries.insert(key, value);
        }
        let mut puts = Vec::new();
        for (key, delta) in deltas {
            if delta == 0 {
                continue;
            }
            let current = match self.values.get(&key) {
                Some(&n) => n,
                // An unreadable counter restarts from zero rather than stopping every commit.
                None => storage
                    .get(&key)?
                    .and_then(|bytes| record::decode_counter(&bytes).ok())
                    .unwrap_or(0),
            };
            let next = current.saturating_add_signed(delta);
            self.values.insert(key.clone(), next);
            puts.push((key, record::encode_counter(next)));
        }
        for (key, value) in puts {
            batch.put(key, value);
        }
        Ok(())
    }

    /// Forgets the cached values, after a batch that may not have landed: the next batch reads
    /// them from storage again.
    pub(crate) fn forget(&mut self) {
        self.values.clear();
    }
}

/// The counter a finish-time entry counts in.
fn counter_of(entry: &[u8]) -> Option<Vec<u8>> {
    let finished: FinishedRecord = record::decode_record(entry).ok()?;
    Some(record::counter_key(
        &finished.status,
        &finished.workflow_type,
    ))
}

/// The index writes for workflow `id` as `next` is committed after `prev` (`None` when this
/// commit creates it): its type index entry when it is created, its finish-time entry when it
/// finishes.
pub(crate) fn stage_transition(
    id: &str,
    prev: Option<&WorkflowRecord>,
    next: &WorkflowRecord,
    batch: &mut Batch,
) -> Result<(), EngineError> {
    if prev.is_none() {
        batch.put(record::type_index_key(&next.workflow_type, id), Vec::new());
        batch.put(record::created_key(next.created_ms, id), Vec::new());
    }
    stage_rewrite(id, prev, next, batch);
    let was_finished = prev.is_some_and(|prev| prev.status.is_terminal());
    if let Some(status) = next.status.finished_name()
        && !was_finished
    {
        batch.put(
            record::finished_key(next.updated_ms, id),
            record::encode_record(&FinishedRecord {
                status: status.to_string(),
                workflow_type: next.workflow_type.clone(),
            })?,
        );
    }
    Ok(())
}

/// Moves live workflow `id`'s update-time entry as its record `prev` (`None` when this write
/// creates it) is rewritten as `next`: deletes the old entry and puts the new one, or only
/// deletes it when `next` has finished; nothing when both fall in the same second (the entry is
/// keyed by the second, so most steps of a busy workflow write nothing here). Every write of a
/// workflow record goes through this or [`stage_transition`], which calls it.
pub(crate) fn stage_rewrite(
    id: &str,
    prev: Option<&WorkflowRecord>,
    next: &WorkflowRecord,
    batch: &mut Batch,
) {
    let old = prev
        .filter(|prev| !prev.status.is_terminal())
        .map(|prev| prev.updated_ms / 1000);
    let new = (!next.status.is_terminal()).then_some(next.updated_ms / 1000);
    if old == new {
        return;
    }
    if let Some(s) = old {
        batch.delete(record::live_updated_key(s * 1000, id));
    }
    if let Some(s) = new {
        batch.put(record::live_updated_key(s * 1000, id), Vec::new());
    }
}

/// The index writes for workflow `id` as a step that could not run parks it: `next` is `prev`
/// with the parked status. The step may be its first, which creates the record, so its type and
/// created-time entries are put too (idempotent puts of the same keys when it already exists).
pub(crate) fn stage_park(
    id: &str,
    prev: &WorkflowRecord,
    next: &WorkflowRecord,
    batch: &mut Batch,
) {
    batch.put(record::type_index_key(&next.workflow_type, id), Vec::new());
    batch.put(record::created_key(next.created_ms, id), Vec::new());
    stage_rewrite(id, Some(prev), next, batch);
}

/// The index deletes that purge finished workflow `id`, stored as `stored`.
pub(crate) fn stage_purge(id: &str, stored: &WorkflowRecord, batch: &mut Batch) {
    batch.delete(record::type_index_key(&stored.workflow_type, id));
    batch.delete(record::finished_key(stored.updated_ms, id));
    batch.delete(record::created_key(stored.created_ms, id));
}

/// Finished workflows counted per `(status, type)`, optionally of one status and one type,
/// from the counters alone.
pub(crate) fn finished_counts(
    storage: &dyn Storage,
    damage: &super::damage::DamageLog,
    status: Option<&str>,
    workflow_type: Option<&str>,
) -> Result<Vec<(String, String, u64)>, EngineError> {
    let prefix = match status {
        Some(status) => [record::COUNTER_PREFIX, status.as_bytes(), b"\0"].concat(),
        None => record::COUNTER_PREFIX.to_vec(),
    };
    let mut counts = Vec::new();
    for (key, value) in storage.scan_prefix(&prefix, None, usize::MAX)? {
        let Some((status, found_type)) = record::parse_counter_key(&key) else {
            damage.unparsed(&key);
            continue;
        };
        if workflow_type.is_some_and(|wanted| wanted != found_type) {
            continue;
        }
        let n = record::decode_counter(&value).map_err(|source| EngineError::Record {
            key: String::from_utf8_lossy(&key).into_owned(),
            source,
        })?;
        if n > 0 {
            counts.push((status, found_type, n));
        }
    }
    Ok(counts)
}

/// How many entries of time index `prefix` (`crt/` or `fin/`) fall in `[from_ms, to_ms)`: one
/// range read of the keys, no record read.
pub(crate) fn count_in_window(
    storage: &dyn Storage,
    prefix: &[u8],
    from_ms: u64,
    to_ms: u64,
) -> Result<u64, EngineError> {
    use std::ops::Bound;
    let low = [prefix, &from_ms.to_be_bytes()].concat();
    let high = [prefix, &to_ms.to_be_bytes()].concat();
    let mut count = 0u64;
    let mut cursor: Option<Vec<u8>> = None;
    loop {
        let start = match &cursor {
            Some(after) => Bound::Excluded(after.as_slice()),
            None => Bound::Included(low.as_slice()),
        };
        let page = storage.scan(start, Bound::Excluded(high.as_slice()), PAGE)?;
        count += page.len() as u64;
        if page.len() < PAGE {
            return Ok(count);
        }
        cursor = page.last().map(|(key, _)| key.clone());
    }
}

/// Fills the indexes and counters in when the store does not have them yet, as the owner of
/// `epoch`.
pub(crate) fn ensure(storage: &dyn Storage, epoch: u64) -> Result<(), EngineError> {
    if storage.get(record::VISIBILITY_INDEX_KEY)?.is_some() {
        return Ok(());
    }
    let fenced = [Condition {
        key: record::EPOCH_KEY.to_vec(),
        expected: Some(record::encode_epoch(epoch)),
    }];
    let commit = |batch: Batch| {
        storage.apply_if(&fenced, batch).map_err(|e| match e {
            StorageError::ConditionFailed { .. } => EngineError::Fenced { epoch },
            other => EngineError::Storage(other),
        })
    };
    let mut counts: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = storage.scan_prefix(record::WORKFLOW_PREFIX, after.as_deref(), PAGE)?;
        let done = page.len() < PAGE;
        let mut batch = Batch::new();
        for (key, value) in &page {
            let Ok(id) = std::str::from_utf8(&key[record::WORKFLOW_PREFIX.len()..]) else {
                continue;
            };
            // A record that does not decode is left out: its type and status are unknown. It
            // is still listed (and reported parked) by a listing that scans the records.
            let Ok(stored) = record::decode_record::<WorkflowRecord>(value) else {
                continue;
            };
            stage_transition(id, None, &stored, &mut batch)?;
            if let Some(status) = stored.status.finished_name() {
                *counts
                    .entry(record::counter_key(status, &stored.workflow_type))
                    .or_default() += 1;
            }
        }
        if done {
            for (key, _) in storage.scan_prefix(record::COUNTER_PREFIX, None, usize::MAX)? {
                batch.delete(key);
            }
            for (key, n) in counts {
                batch.put(key, record::encode_counter(n));
            }
            batch.put(
                record::VISIBILITY_INDEX_KEY,
                record::VISIBILITY_INDEX_V1.to_vec(),
            );
            return commit(batch);
        }
        if !batch.is_empty() {
            commit(batch)?;
        }
        after = page.last().map(|(key, _)| key.clone());
    }
}

/// Fills the created-time, update-time and children indexes in when the store does not have
/// them yet, as the owner of `epoch`: a page of workflow records per fenced commit, then the
/// `parent/` links, then [`record::ORDER_INDEX_KEY`] in the last commit. Runs at build before
/// the writer starts; every write is an idempotent put, so a build that crashed part-way starts
/// over.
pub(crate) fn ensure_order(storage: &dyn Storage, epoch: u64) -> Result<(), EngineError> {
    let marker = storage.get(record::ORDER_INDEX_KEY)?;
    if marker.as_deref() == Some(record::ORDER_INDEX_V2) {
        return Ok(());
    }
    let fenced = [Condition {
        key: record::EPOCH_KEY.to_vec(),
        expected: Some(record::encode_epoch(epoch)),
    }];
    let commit = |batch: Batch| {
        storage.apply_if(&fenced, batch).map_err(|e| match e {
            StorageError::ConditionFailed { .. } => EngineError::Fenced { epoch },
            other => EngineError::Storage(other),
        })
    };
    // The update-time index of the first layout (by the millisecond) goes first.
    loop {
        let page = storage.scan_prefix(record::LIVE_UPDATED_V1_PREFIX, None, PAGE)?;
        if page.is_empty() {
            break;
        }
        let mut batch = Batch::new();
        for (key, _) in page {
            batch.delete(key);
        }
        commit(batch)?;
    }
    for (prefix, is_record) in [
        (record::WORKFLOW_PREFIX, true),
        (record::PARENT_PREFIX, false),
    ] {
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = storage.scan_prefix(prefix, after.as_deref(), PAGE)?;
            let mut batch = Batch::new();
            for (key, value) in &page {
                let Ok(id) = std::str::from_utf8(&key[prefix.len()..]) else {
                    continue;
                };
                if !is_record {
                    if let Ok(parent) = std::str::from_utf8(value) {
                        batch.put(record::child_key(parent, id), Vec::new());
                    }
                    continue;
                }
                // A record that does not decode has no known times: it is left out of the time
                // indexes, and still listed (and reported parked) in id order.
                let Ok(stored) = record::decode_record::<WorkflowRecord>(value) else {
                    continue;
                };
                batch.put(record::created_key(stored.created_ms, id), Vec::new());
                stage_rewrite(id, None, &stored, &mut batch);
            }
            if !batch.is_empty() {
                commit(batch)?;
            }
            if page.len() < PAGE {
                break;
            }
            after = page.last().map(|(key, _)| key.clone());
        }
    }
    let mut done = Batch::new();
    done.put(record::ORDER_INDEX_KEY, record::ORDER_INDEX_V2.to_vec());
    commit(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryStorage;

    fn entry(status: &str, workflow_type: &str) -> Vec<u8> {
        record::encode_record(&FinishedRecord {
            status: status.into(),
            workflow_type: workflow_type.into(),
        })
        .unwrap()
    }

    fn counter(storage: &MemoryStorage, status: &str, workflow_type: &str) -> Option<u64> {
        storage
            .get(&record::counter_key(status, workflow_type))
            .unwrap()
            .map(|bytes| record::decode_counter(&bytes).unwrap())
    }

    fn commit(storage: &MemoryStorage, counters: &mut Counters, mut batch: Batch) {
        counters.stage(storage, &mut batch).unwrap();
        storage.apply(batch).unwrap();
    }

    #[test]
    fn counters_follow_the_finish_time_entries_a_batch_adds_and_deletes() {
        let storage = MemoryStorage::new();
        let mut counters = Counters::default();
        let mut batch = Batch::new();
        batch.put(record::finished_key(5, "a"), entry("Completed", "order"));
        batch.put(record::finished_key(6, "b"), entry("Completed", "order"));
        batch.put(record::finished_key(6, "c"), entry("Failed", "order"));
        batch.put(b"wf/a".to_vec(), b"ignored".to_vec());
        commit(&storage, &mut counters, batch);
        assert_eq!(counter(&storage, "Completed", "order"), Some(2));
        assert_eq!(counter(&storage, "Failed", "order"), Some(1));

        let mut purge = Batch::new();
        purge.delete(record::finished_key(5, "a"));
        // Deleting an entry that is not stored counts nothing.
        purge.delete(record::finished_key(7, "nothing"));
        commit(&storage, &mut counters, purge);
        assert_eq!(counter(&storage, "Completed", "order"), Some(1));
    }

    #[test]
    fn a_batch_written_again_after_a_torn_commit_counts_nothing_twice() {
        let storage = MemoryStorage::new();
        let mut counters = Counters::default();
        let mut batch = Batch::new();
        batch.put(record::finished_key(5, "a"), entry("Completed", "order"));
        commit(&storage, &mut counters, batch.clone());
        // The commit landed but was reported failed: the writer forgets and writes it again.
        counters.forget();
        commit(&storage, &mut counters, batch);
        assert_eq!(counter(&storage, "Completed", "order"), Some(1));
    }

    #[test]
    fn an_entry_put_and_deleted_in_one_batch_leaves_the_counter_as_it_was() {
        let storage = MemoryStorage::new();
        let mut counters = Counters::default();
        let mut batch = Batch::new();
        batch.put(record::finished_key(5, "a"), entry("Completed", "order"));
        batch.delete(record::finished_key(5, "a"));
        commit(&storage, &mut counters, batch);
        assert_eq!(counter(&storage, "Completed", "order"), None);
    }

    #[test]
    fn the_order_backfill_names_children_from_their_parent_links_and_marks_itself_done() {
        let storage = MemoryStorage::new();
        storage
            .put(record::EPOCH_KEY, &record::encode_epoch(3))
            .unwrap();
        storage.put(&record::parent_key("p/1"), b"p").unwrap();
        ensure_order(&storage, 3).unwrap();
        assert_eq!(
            storage.get(&record::child_key("p", "p/1")).unwrap(),
            Some(vec![])
        );
        assert!(storage.get(record::ORDER_INDEX_KEY).unwrap().is_some());
        // Fenced: an engine of another epoch writes nothing.
        let other = MemoryStorage::new();
        other
            .put(record::EPOCH_KEY, &record::encode_epoch(4))
            .unwrap();
        other.put(&record::parent_key("q/1"), b"q").unwrap();
        assert!(matches!(
            ensure_order(&other, 3),
            Err(EngineError::Fenced { epoch: 3 })
        ));
        assert_eq!(other.get(record::ORDER_INDEX_KEY).unwrap(), None);
    }

    #[test]
    fn finished_counts_read_the_counters_by_status_and_type() {
        let storage = MemoryStorage::new();
        let mut counters = Counters::default();
        let mut batch = Batch::new();
        batch.put(record::finished_key(1, "a"), entry("Completed", "order"));
        batch.put(record::finished_key(1, "b"), entry("Completed", "refund"));
        batch.put(record::finished_key(1, "c"), entry("Cancelled", "order"));
        commit(&storage, &mut counters, batch);
        let all = finished_counts(&storage, &Default::default(), None, None).unwrap();
        assert_eq!(
            all,
            vec![
                ("Cancelled".into(), "order".into(), 1),
                ("Completed".into(), "order".into(), 1),
                ("Completed".into(), "refund".into(), 1),
            ]
        );
        let orders = finished_counts(
            &storage,
            &Default::default(),
            Some("Completed"),
            Some("order"),
        )
        .unwrap();
        assert_eq!(orders, vec![("Completed".into(), "order".into(), 1)]);
    }
}
