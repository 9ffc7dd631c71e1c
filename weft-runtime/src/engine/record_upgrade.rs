//! The upgrade of a store of format 2 to format 3: lifecycle side keys folded into records.
//!
//! Format 2 kept a workflow's cancellation request (`cancel/<id>`), delivered cancellation
//! (`cancelled/<id>`), execution deadline (`deadline/<id>`), timed-out marker (`timedout/<id>`)
//! and parent link (`parent/<id>`, the parent's id as raw bytes) in side keys beside its record
//! (format tag `0x01`). Format 3 keeps them in the record (format tag `0x02`, see
//! [`record::Lifecycle`]), and the engine reads no side key.
//!
//! The first build on a format-2 store raises `meta/format` to 3 in the write that takes
//! ownership (so an older build refuses the store from then on, before any record changes),
//! then rewrites every record of format `0x01` here, a page per commit fenced on its epoch:
//! each commit puts the new records and deletes their side keys together, so a record is
//! either old with its side keys or new without them. A crash part-way leaves
//! [`record::LIFECYCLE_KEY`] unwritten and the next build goes on (records already rewritten
//! are skipped). It runs in `EngineBuilder::build` before the writer, the timers or recovery
//! start, so nothing else writes meanwhile.
//!
//! A record that does not decode is left as it is, with its side keys: it stays unreadable
//! (describe and list report it parked) and nothing of it is lost. A side key that does not
//! decode (a damaged `deadline/` record) parks its workflow with a `record.corrupt` reason
//! naming it, as the runner did when it read one: the state and pending command are kept, and
//! a retry resumes the workflow without that deadline.

use crate::storage::{Batch, Storage};

use super::error::EngineError;
use super::record::{self, Lifecycle, RecordStatus, WorkflowRecord};
use super::visibility;

/// Workflow records read per upgrade commit.
const PAGE: usize = 256;

/// Upgrades the records of a format-2 store when [`record::LIFECYCLE_KEY`] is missing, as the
/// owner of `epoch`.
pub(crate) fn ensure(storage: &dyn Storage, epoch: u64) -> Result<(), EngineError> {
    if storage.get(record::LIFECYCLE_KEY)?.is_some() {
        return Ok(());
    }
    let commit = |batch: Batch| super::fenced::apply(storage, epoch, batch);
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = storage.scan_prefix(record::WORKFLOW_PREFIX, after.as_deref(), PAGE)?;
        let done = page.len() < PAGE;
        let mut batch = Batch::new();
        for (key, value) in &page {
            if value.first() != Some(&record::FORMAT_V1) {
                continue;
            }
            // Keys carry their partition since format 5, which `key_upgrade` moved them to
            // before this runs; the side keys read below never did.
            let Some((p, id)) = record::parse_id_key(record::WORKFLOW_PREFIX, key) else {
                continue;
            };
            upgrade(storage, (p, id), value, &mut batch)?;
        }
        if done {
            batch.put(record::LIFECYCLE_KEY, record::LIFECYCLE_V1.to_vec());
            return commit(batch);
        }
        if !batch.is_empty() {
            commit(batch)?;
        }
        after = page.last().map(|(key, _)| key.clone());
    }
}

/// Adds to `batch` the format-3 record of workflow `id`, stored as `value` (format `0x01`) with
/// its side keys, and the deletes of those keys. Nothing for a record that does not decode.
fn upgrade(
    storage: &dyn Storage,
    (p, id): (record::Partition, &str),
    value: &[u8],
    batch: &mut Batch,
) -> Result<(), EngineError> {
    let Ok(mut stored) = record::decode_record::<WorkflowRecord>(value) else {
        return Ok(());
    };
    let side = [
        record::cancel_key(id),
        record::cancelled_key(id),
        record::deadline_key(id),
        record::timedout_key(id),
        record::parent_key(id),
    ];
    let [cancel, cancelled, deadline, timed_out, parent] =
        [0, 1, 2, 3, 4].map(|at| storage.get(&side[at]));
    let mut lifecycle = Lifecycle {
        // Its presence was the request; a time that does not decode reads as 0.
        cancel_requested_ms: cancel?.map(|bytes| {
            record::decode_record::<record::CancelRecord>(&bytes).map_or(0, |r| r.requested_ms)
        }),
        cancelled: cancelled?.is_some(),
        deadline_ms: None,
        timed_out: timed_out?.is_some(),
        parent: parent?.and_then(|bytes| String::from_utf8(bytes).ok()),
        trace_context: None,
    };
    let prev = stored.clone();
    if let Some(bytes) = deadline? {
        match record::decode_record::<record::DeadlineRecord>(&bytes) {
            Ok(deadline) => lifecycle.deadline_ms = Some(deadline.deadline_ms),
            Err(e) if !stored.status.is_terminal() => {
                stored.status = RecordStatus::Parked {
                    code: "record.corrupt".into(),
                    message: format!(
                        "the execution deadline record `deadline/{id}` did not decode ({e}) when the store was upgraded to format 3; the workflow was parked without it: retry it to resume it without a deadline"
                    ),
                };
            }
            // A finished workflow has no deadline left to keep.
            Err(_) => {}
        }
    }
    stored.lifecycle = lifecycle;
    visibility::stage_rewrite(id, Some(&prev), &stored, batch);
    // Committed without the writer: the live counters are counted afresh after this upgrade
    // (`visibility::ensure_live_counters`, a store this old has none), so its deltas go.
    visibility::strip_deltas(batch);
    batch.put(record::workflow_key(p, id), record::encode_record(&stored)?);
    for key in side {
        batch.delete(key);
    }
    Ok(())
}
