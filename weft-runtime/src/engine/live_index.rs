//! The live index: `live/<id>` for every workflow that has not finished.
//!
//! Finished workflows stay in the store (their results, for `result`, `describe` and `list`),
//! so a store grows with every workflow ever run. Recovery and listings of running, waiting or
//! parked workflows read this index instead of every record, so their cost follows the
//! workflows in flight, not the store's age. A workflow joins the index in the commit that
//! creates it and leaves it in the commit that finishes it (see `plan::step`).
//!
//! Stores written before the index existed lack it: the first engine built on one fills it in
//! from the workflow records, a page per commit fenced on its epoch, then writes
//! [`record::LIVE_INDEX_KEY`]. It runs in `EngineBuilder::build` right after taking ownership,
//! before the writer, the timers or recovery start, so nothing else writes meanwhile; a crash
//! part-way leaves the marker unwritten and the next build starts over (the writes are
//! idempotent).

use crate::storage::{Batch, Storage};

use super::error::EngineError;
use super::record::{self, WorkflowRecord};

/// Workflow records read per backfill commit.
const PAGE: usize = 512;

/// Fills the live index in when the store does not have it yet, as the owner of `epoch`.
pub(crate) fn ensure(storage: &dyn Storage, epoch: u64) -> Result<(), EngineError> {
    if storage.get(record::LIVE_INDEX_KEY)?.is_some() {
        return Ok(());
    }
    let commit = |batch: Batch| super::fenced::apply(storage, epoch, batch);
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = storage.scan_prefix(record::WORKFLOW_PREFIX, after.as_deref(), PAGE)?;
        let done = page.len() < PAGE;
        let mut batch = Batch::new();
        for (key, value) in &page {
            // `<p><id>`: the live key carries the record's partition and id as they are.
            let id = &key[record::WORKFLOW_PREFIX.len()..];
            // A record that does not decode is kept in the index: recovery and listings must
            // still find it to report it parked.
            let live = record::decode_record::<WorkflowRecord>(value)
                .map_or(true, |stored| !stored.status.is_terminal());
            if live {
                batch.put([record::LIVE_PREFIX, id].concat(), Vec::new());
            }
        }
        if done {
            batch.put(record::LIVE_INDEX_KEY, record::LIVE_INDEX_V1.to_vec());
            return commit(batch);
        }
        if !batch.is_empty() {
            commit(batch)?;
        }
        after = page.last().map(|(key, _)| key.clone());
    }
}
