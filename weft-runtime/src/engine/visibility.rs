//! Visibility indexes: what lets `list` and `count` answer among millions of finished
//! workflows without reading them.
//!
//! - The type index, `ty/<type>\0<id>`, names every workflow by its type. A workflow joins it in
//!   the commit that creates it (`plan::step` of its first step) and leaves it when
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
//! - Live counters, `lcnt/<status>\0<type>\0<version><fingerprint>`, count unfinished
//!   workflows (running, waiting, parked) by the status their record is stored with. Every write
//!   of a workflow record goes through [`stage_rewrite`] (or [`stage_transition`], which calls
//!   it), which knows the record it replaces: when the status, type, version or fingerprint
//!   changes, it adds a count delta to the batch (a pseudo-write under [`DELTA_PREFIX`], never
//!   stored). The writer's [`Counters::stage`] takes the deltas out, adds them up per counter
//!   and writes each counter that moved once, in the same batch. A step that keeps its status
//!   (an activity after an activity, a wait after a wait) stages nothing. A batch that did not
//!   land gets its deltas back ([`StagedCounts::unstage`]), to be counted when its writes are decided
//!   again. A record that no longer decodes (damaged in place) stays counted under the status
//!   it was last written with; describe and list report it parked.
//!
//! A finished workflow is counted under the status it finished with.
//!
//! Stores written before these indexes existed lack them: the first engine built on one fills
//! them in from the workflow records, a page per commit fenced on its epoch, and writes the
//! counters with [`record::VISIBILITY_INDEX_KEY`] in the last commit. It runs in
//! `EngineBuilder::build` before the writer starts, so nothing else writes meanwhile; a crash
//! part-way leaves the marker unwritten and the next build starts over (every write is an
//! idempotent put, and the counters are computed afresh). The created-time, update-time and
//! children indexes came later and have their own marker, [`record::ORDER_INDEX_KEY`], filled
//! in the same way by [`ensure_order`].
//! The live counters came last: [`ensure_live_counters`] counts the live index's records and
//! writes them with [`record::LIVE_COUNTERS_KEY`] in one fenced commit.

use std::collections::{BTreeMap, HashMap};

use crate::storage::{Batch, Storage, StorageError, Write};

use super::error::EngineError;
use super::record::{self, FinishedRecord, LiveCounterKey, WorkflowRecord};

/// Workflow records read per backfill commit.
const PAGE: usize = 512;

/// The key prefix of a count delta: `<prefix><live counter key>` with an `i64` big-endian
/// value, put in a batch by [`stage_rewrite`] and taken out by [`Counters::stage`] before the
/// batch is committed. No stored key begins with a NUL byte.
pub(crate) const DELTA_PREFIX: &[u8] = b"\0weft/count-delta/";

/// Whether `write` is a count delta.
fn is_delta(write: &Write) -> bool {
    matches!(write, Write::Put(key, _) if key.starts_with(DELTA_PREFIX))
}

/// Removes the count deltas from a batch that is committed without the writer (a backfill or
/// an upgrade at build, before the live counters are counted).
pub(crate) fn strip_deltas(batch: &mut Batch) {
    batch.writes.retain(|write| !is_delta(write));
}

/// What [`Counters::stage`] changed in a batch: the count deltas it took out (with their
/// positions) and how many counter writes it appended, so a batch that did not land can be put
/// back as its ops wrote it.
#[derive(Debug, Default)]
pub(crate) struct StagedCounts {
    removed: Vec<(usize, Write)>,
    appended: usize,
}

impl StagedCounts {
    /// Puts `batch` back as it was before it was staged.
    pub(crate) fn unstage(self, batch: &mut Batch) {
        let kept = batch.writes.len() - self.appended;
        batch.writes.truncate(kept);
        // In increasing position: each lands where it was, the earlier ones back in place.
        for (at, write) in self.removed {
            batch.writes.insert(at, write);
        }
    }
}

/// The counters' values as the writer last wrote them, read from storage on first use.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    values: HashMap<Vec<u8>, u64>,
}

impl Counters {
    /// Adds to `batch` the counter values that follow from its finish-time entries and its
    /// count deltas, and takes the deltas out: each counter that moves is written once.
    ///
    /// Reads storage once for every finish-time entry the batch writes (once per workflow, when
    /// it finishes or is purged) and once per counter the first time it moves; a batch of plain
    /// steps reads nothing. Every read comes before any change: on an error `batch` is as it
    /// was.
    pub(crate) fn stage(
        &mut self,
        storage: &dyn Storage,
        batch: &mut Batch,
    ) -> Result<StagedCounts, StorageError> {
        // Each touched entry's value as it stands after the writes seen so far.
        let mut entries: HashMap<&[u8], Option<&[u8]>> = HashMap::new();
        let mut stored: HashMap<Vec<u8>, Option<Vec<u8>>> = HashMap::new();
        let mut deltas: BTreeMap<Vec<u8>, i64> = BTreeMap::new();
        let mut has_deltas = false;
        for write in &batch.writes {
            let (key, value) = match write {
                Write::Put(key, value) => (key.as_slice(), Some(value.as_slice())),
                Write::Delete(key) => (key.as_slice(), None),
            };
            if let Some(counter) = key.strip_prefix(DELTA_PREFIX) {
                let delta = value
                    .and_then(|v| <[u8; 8]>::try_from(v).ok())
                    .map_or(0, i64::from_be_bytes);
                // Most deltas of a batch move a counter already seen: no key copied for them.
                match deltas.get_mut(counter) {
                    Some(sum) => *sum += delta,
                    None => {
                        deltas.insert(counter.to_vec(), delta);
                    }
                }
                has_deltas = true;
                continue;
            }
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
            puts.push((key, current.saturating_add_signed(delta)));
        }
        let mut staged = StagedCounts::default();
        if has_deltas {
            let writes = std::mem::take(&mut batch.writes);
            batch.writes.reserve(writes.len());
            for (at, write) in writes.into_iter().enumerate() {
                if is_delta(&write) {
                    staged.removed.push((at, write));
                } else {
                    batch.writes.push(write);
                }
            }
        }
        staged.appended = puts.len();
        for (key, next) in puts {
            self.values.insert(key.clone(), next);
            // A live counter at zero is deleted, so the counters of versions no workflow runs
            // any more do not pile up (a backfill writes none of them either).
            if next == 0 && key.starts_with(record::LIVE_COUNTER_PREFIX) {
                batch.delete(key);
            } else {
                batch.put(key, record::encode_counter(next));
            }
        }
        Ok(staged)
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

/// What the index writes need of a record as it stood before it is rewritten: a view, so a
/// caller that rewrites the record in place keeps only these few values of the old one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Before<'a> {
    /// Its status.
    pub status: &'a record::RecordStatus,
    /// When it was last written.
    pub updated_ms: u64,
    /// Its type.
    pub workflow_type: &'a str,
    /// Its version.
    pub version: u32,
    /// Its fingerprint.
    pub fingerprint: u64,
}

impl<'a> From<&'a WorkflowRecord> for Before<'a> {
    fn from(record: &'a WorkflowRecord) -> Self {
        Before {
            status: &record.status,
            updated_ms: record.updated_ms,
            workflow_type: &record.workflow_type,
            version: record.version,
            fingerprint: record.fingerprint,
        }
    }
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
    stage_transition_from(id, prev.map(Before::from), next, batch)
}

/// [`stage_transition`] from a view of the record before.
pub(crate) fn stage_transition_from(
    id: &str,
    prev: Option<Before<'_>>,
    next: &WorkflowRecord,
    batch: &mut Batch,
) -> Result<(), EngineError> {
    if prev.is_none() {
        batch.put(record::type_index_key(&next.workflow_type, id), Vec::new());
        batch.put(record::created_key(next.created_ms, id), Vec::new());
    }
    stage_rewrite_from(id, prev, next, batch);
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
    stage_rewrite_from(id, prev.map(Before::from), next, batch);
}

/// [`stage_rewrite`] from a view of the record before.
pub(crate) fn stage_rewrite_from(
    id: &str,
    prev: Option<Before<'_>>,
    next: &WorkflowRecord,
    batch: &mut Batch,
) {
    stage_live_count(prev, next, batch);
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

/// The live counter a record counts in, as its parts (no key built): `None` once finished.
fn live_bucket<'a>(record: Before<'a>) -> Option<(&'static str, &'a str, u32, u64)> {
    Some((
        record.status.live_name()?,
        record.workflow_type,
        record.version,
        record.fingerprint,
    ))
}

/// Adds the count deltas of rewriting `prev` (`None` when this write creates the record) as
/// `next`: nothing when both count in the same live counter.
fn stage_live_count(prev: Option<Before<'_>>, next: &WorkflowRecord, batch: &mut Batch) {
    let old = prev.and_then(live_bucket);
    let new = live_bucket(Before::from(next));
    if old == new {
        return;
    }
    for (bucket, delta) in [(old, -1i64), (new, 1)] {
        if let Some((status, workflow_type, version, fingerprint)) = bucket {
            let mut key = Vec::with_capacity(DELTA_PREFIX.len() + 48);
            key.extend_from_slice(DELTA_PREFIX);
            record::extend_live_counter_key(&mut key, status, workflow_type, version, fingerprint);
            batch.put(key, delta.to_be_bytes().to_vec());
        }
    }
}

/// The index writes for workflow `id` as a step that could not run parks it: `next` is the
/// record with the parked status, `stored` the one it replaces, or `None` when the step is its
/// first, which creates the record. Its type and created-time entries are put either way
/// (idempotent puts of the same keys when it already exists).
pub(crate) fn stage_park(
    id: &str,
    stored: Option<Before<'_>>,
    next: &WorkflowRecord,
    batch: &mut Batch,
) {
    batch.put(record::type_index_key(&next.workflow_type, id), Vec::new());
    batch.put(record::created_key(next.created_ms, id), Vec::new());
    stage_rewrite_from(id, stored, next, batch);
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

/// The live counters that are not zero: unfinished workflows per stored status, type, version
/// and fingerprint.
pub(crate) fn live_counts(
    storage: &dyn Storage,
) -> Result<Vec<(LiveCounterKey, u64)>, EngineError> {
    let mut counts = Vec::new();
    for (key, value) in storage.scan_prefix(record::LIVE_COUNTER_PREFIX, None, usize::MAX)? {
        let Some(counted) = record::parse_live_counter_key(&key) else {
            continue;
        };
        let n = record::decode_counter(&value).map_err(|source| EngineError::Record {
            key: String::from_utf8_lossy(&key).into_owned(),
            source,
        })?;
        if n > 0 {
            counts.push((counted, n));
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
    let commit = |batch: Batch| super::fenced::apply(storage, epoch, batch);
    let mut counts: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = storage.scan_prefix(record::WORKFLOW_PREFIX, after.as_deref(), PAGE)?;
        let done = page.len() < PAGE;
        let mut batch = Batch::new();
        for (key, value) in &page {
            let Some((_, id)) = record::parse_id_key(record::WORKFLOW_PREFIX, key) else {
                continue;
            };
            // A record that does not decode is left out: its type and status are unknown. It
            // is still listed (and reported parked) by a listing that scans the records.
            let Ok(stored) = record::decode_record::<WorkflowRecord>(value) else {
                continue;
            };
            stage_transition(id, None, &stored, &mut batch)?;
            // The live counters have a backfill of their own (`ensure_live_counters`).
            strip_deltas(&mut batch);
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
pub(crate) fn ensure_order(
    storage: &dyn Storage,
    epoch: u64,
    partitions: super::partition::Partitions,
) -> Result<(), EngineError> {
    let marker = storage.get(record::ORDER_INDEX_KEY)?;
    if marker.as_deref() == Some(record::ORDER_INDEX_V2) {
        return Ok(());
    }
    let commit = |batch: Batch| super::fenced::apply(storage, epoch, batch);
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
                // Records are per partition; the `parent/` links of store format 2 are not.
                let id = if is_record {
                    record::parse_id_key(prefix, key).map(|(_, id)| id)
                } else {
                    std::str::from_utf8(&key[prefix.len()..]).ok()
                };
                let Some(id) = id else {
                    continue;
                };
                if !is_record {
                    if let Ok(parent) = std::str::from_utf8(value) {
                        batch.put(
                            record::child_key(partitions.of(parent), parent, id),
                            Vec::new(),
                        );
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

/// Counts the unfinished workflows into the live counters when the store does not have them
/// yet, as the owner of `epoch`: reads the live index's records a page at a time and writes
/// every counter with [`record::LIVE_COUNTERS_KEY`] in one fenced commit, deleting any stored
/// counter first, so the counts are computed afresh. Runs at build before the writer starts,
/// after the live index is complete, so nothing else writes meanwhile; a build that stops
/// before the commit wrote nothing, and the next one starts over.
pub(crate) fn ensure_live_counters(storage: &dyn Storage, epoch: u64) -> Result<(), EngineError> {
    if storage.get(record::LIVE_COUNTERS_KEY)?.is_some() {
        return Ok(());
    }
    let mut counts: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = storage.scan_prefix(record::LIVE_PREFIX, after.as_deref(), PAGE)?;
        for (key, _) in &page {
            let Some((p, id)) = record::parse_id_key(record::LIVE_PREFIX, key) else {
                continue;
            };
            let Some(bytes) = storage.get(&record::workflow_key(p, id))? else {
                continue;
            };
            // A record that does not decode has no status to count (list reports it parked).
            let Ok(stored) = record::decode_record::<WorkflowRecord>(&bytes) else {
                continue;
            };
            if let Some((status, workflow_type, version, fingerprint)) =
                live_bucket(Before::from(&stored))
            {
                *counts
                    .entry(record::live_counter_key(
                        status,
                        workflow_type,
                        version,
                        fingerprint,
                    ))
                    .or_default() += 1;
            }
        }
        if page.len() < PAGE {
            break;
        }
        after = page.last().map(|(key, _)| key.clone());
    }
    let mut batch = Batch::new();
    for (key, _) in storage.scan_prefix(record::LIVE_COUNTER_PREFIX, None, usize::MAX)? {
        batch.delete(key);
    }
    for (key, n) in counts {
        batch.put(key, record::encode_counter(n));
    }
    batch.put(record::LIVE_COUNTERS_KEY, record::LIVE_COUNTERS_V1.to_vec());
    super::fenced::apply(storage, epoch, batch)
}

#[cfg(test)]
mod tests {
    use super::super::partition::Partitions;
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

    fn waiting(step: u64) -> WorkflowRecord {
        WorkflowRecord {
            workflow_type: "order".into(),
            version: 1,
            fingerprint: 9,
            status: record::RecordStatus::Waiting,
            step,
            state: Some(vec![]),
            pending: None,
            created_ms: 1,
            updated_ms: 1,
            outcome: None,
            idempotency_key: None,
            last_resume: None,
            signals_consumed: 0,
            lifecycle: record::Lifecycle::default(),
        }
    }

    fn with_status(status: record::RecordStatus) -> WorkflowRecord {
        WorkflowRecord {
            status,
            ..waiting(2)
        }
    }

    fn live(storage: &MemoryStorage, status: &str) -> Option<u64> {
        storage
            .get(&record::live_counter_key(status, "order", 1, 9))
            .unwrap()
            .map(|bytes| record::decode_counter(&bytes).unwrap())
    }

    #[test]
    fn a_batch_adds_its_status_changes_up_and_writes_each_live_counter_once() {
        let storage = MemoryStorage::new();
        let mut counters = Counters::default();
        let mut batch = Batch::new();
        for id in ["a", "b", "c"] {
            stage_rewrite(id, None, &waiting(1), &mut batch);
        }
        // A step that keeps its status stages nothing.
        let before = batch.writes.len();
        stage_rewrite("a", Some(&waiting(1)), &waiting(2), &mut batch);
        assert_eq!(batch.writes.len(), before);
        let running = with_status(record::RecordStatus::Running);
        stage_rewrite("b", Some(&waiting(1)), &running, &mut batch);
        let original = batch.clone();
        let staged = counters.stage(&storage, &mut batch).unwrap();
        assert!(
            !batch.writes.iter().any(is_delta),
            "the deltas are taken out"
        );
        let counter_writes = batch
            .writes
            .iter()
            .filter(|w| matches!(w, Write::Put(key, _) | Write::Delete(key) if key.starts_with(record::LIVE_COUNTER_PREFIX)))
            .count();
        assert_eq!(
            counter_writes, 2,
            "one write per counter: {:?}",
            batch.writes
        );
        // Put back, the batch is as its ops wrote it (to be decided again).
        let mut undone = batch.clone();
        staged.unstage(&mut undone);
        assert_eq!(undone, original);
        storage.apply(batch).unwrap();
        assert_eq!(live(&storage, "Waiting"), Some(2));
        assert_eq!(live(&storage, "Running"), Some(1));

        // Finishing and parking move them on; a counter at zero is deleted.
        let mut batch = Batch::new();
        let done = with_status(record::RecordStatus::Completed);
        stage_rewrite("b", Some(&running), &done, &mut batch);
        let parked = with_status(record::RecordStatus::Parked {
            code: "x".into(),
            message: "y".into(),
        });
        stage_park("c", Some(Before::from(&waiting(1))), &parked, &mut batch);
        // Parked by its first step: nothing stored to take it from.
        stage_park("d", None, &parked, &mut batch);
        counters.stage(&storage, &mut batch).unwrap();
        storage.apply(batch).unwrap();
        assert_eq!(live(&storage, "Running"), None);
        assert_eq!(live(&storage, "Waiting"), Some(1));
        assert_eq!(live(&storage, "Parked"), Some(2));
    }

    /// A store at `epoch` with three live records (two waiting, one running) and a finished
    /// one.
    fn store_with_live_records(epoch: u64) -> MemoryStorage {
        let storage = MemoryStorage::new();
        storage
            .put(record::EPOCH_KEY, &record::encode_epoch(epoch))
            .unwrap();
        for (id, status) in [
            ("a", record::RecordStatus::Waiting),
            ("b", record::RecordStatus::Waiting),
            ("c", record::RecordStatus::Running),
        ] {
            let bytes = record::encode_record(&with_status(status)).unwrap();
            storage
                .put(&record::workflow_key(record::Partition::ZERO, id), &bytes)
                .unwrap();
            storage
                .put(&record::live_key(record::Partition::ZERO, id), b"")
                .unwrap();
        }
        // Not in the live index: finished, so not counted.
        let done = record::encode_record(&with_status(record::RecordStatus::Completed)).unwrap();
        storage
            .put(&record::workflow_key(record::Partition::ZERO, "z"), &done)
            .unwrap();
        storage
    }

    #[test]
    fn the_live_counter_backfill_counts_the_live_records_and_is_fenced() {
        let deposed = store_with_live_records(4);
        assert!(matches!(
            ensure_live_counters(&deposed, 3),
            Err(EngineError::Fenced { epoch: 3 })
        ));
        assert_eq!(deposed.get(record::LIVE_COUNTERS_KEY).unwrap(), None);
        assert_eq!(live(&deposed, "Waiting"), None);

        let storage = store_with_live_records(3);
        ensure_live_counters(&storage, 3).unwrap();
        assert_eq!(live(&storage, "Waiting"), Some(2));
        assert_eq!(live(&storage, "Running"), Some(1));
        assert!(storage.get(record::LIVE_COUNTERS_KEY).unwrap().is_some());
        // Done once: a later build leaves the counters to the writer.
        storage
            .delete(&record::live_key(record::Partition::ZERO, "a"))
            .unwrap();
        ensure_live_counters(&storage, 3).unwrap();
        assert_eq!(live(&storage, "Waiting"), Some(2));
    }

    #[test]
    fn the_order_backfill_names_children_from_their_parent_links_and_marks_itself_done() {
        let storage = MemoryStorage::new();
        storage
            .put(record::EPOCH_KEY, &record::encode_epoch(3))
            .unwrap();
        storage.put(&record::parent_key("p/1"), b"p").unwrap();
        ensure_order(&storage, 3, Partitions::default()).unwrap();
        assert_eq!(
            storage
                .get(&record::child_key(record::Partition::ZERO, "p", "p/1"))
                .unwrap(),
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
            ensure_order(&other, 3, Partitions::default()),
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
