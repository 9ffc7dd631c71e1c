//! Cancellation requests folded into workflow records, by the writer.
//!
//! A workflow's pending cancellation request lives in its record
//! ([`Lifecycle::cancel_requested_ms`](super::record::Lifecycle)), which its runner rewrites whole
//! at every step from what it read before. A request made meanwhile (by a caller, or by a parent
//! cancelling its child) must not be erased by such a write, so requests are folded in by the
//! writer, the one place that sees every write in order:
//!
//! - A request reaches the writer as `Put(cancel/<id>, CancelRecord)` in a batch: the writer reads
//!   the record as the batch sees it, sets the request, and writes the record instead (the
//!   `cancel/` key is never stored since store format 3).
//! - A runner's transition that delivers the request carries `Delete(cancel/<id>)`
//!   (`plan::consume`), also never stored: the writer drops it and notes the delivery.
//! - Every later record write of that workflow by a transition gets the writer's view of the
//!   request laid over it, so a transition prepared before the request keeps it, until the
//!   workflow finishes or its record is deleted.
//!
//! The writer only remembers requests it folded since it started: a request stored by an
//! earlier engine was in the record every runner of this engine read. A batch's changes are
//! staged and kept only once it lands, so a batch that fails leaves nothing behind.
//!
//! Batches that name no `cancel/` key and no remembered workflow cost a scan of their keys.

use std::collections::HashMap;

use crate::storage::{Batch, Write};

use super::error::EngineError;
use super::partition::Partitions;
use super::record::{self, CancelRecord, WorkflowRecord};

/// What the writer knows of the requests it folded: per workflow, the pending request
/// (`None`: delivered), until the workflow finishes.
#[derive(Debug, Default)]
pub(crate) struct CancelFold {
    known: HashMap<String, Option<u64>>,
    /// The store's partitioning: where a request's workflow record is.
    partitions: Partitions,
}

/// Reads a key as the batch being built sees it.
pub(crate) type Read<'a> = &'a dyn Fn(&[u8]) -> Result<Option<Vec<u8>>, EngineError>;

/// A batch's changes to [`CancelFold`], kept when it lands: `None` forgets the workflow.
#[derive(Debug, Default)]
pub(crate) struct Staged(HashMap<String, Option<Option<u64>>>);

impl CancelFold {
    /// A fold that knows no request yet, over a store of `partitions`.
    pub fn new(partitions: Partitions) -> CancelFold {
        CancelFold {
            known: HashMap::new(),
            partitions,
        }
    }

    /// The request the writer knows for `id`, staged changes first; `None` when it knows none.
    fn lookup(&self, staged: &Staged, id: &str) -> Option<Option<u64>> {
        match staged.0.get(id) {
            Some(entry) => *entry,
            None => self.known.get(id).copied(),
        }
    }

    /// Whether `writes` carry a request or a delivery, or write a record the writer must lay a
    /// request over.
    pub fn touches(&self, staged: &Staged, writes: &Batch) -> bool {
        let remembered = !self.known.is_empty() || !staged.0.is_empty();
        writes.writes.iter().any(|write| {
            let (Write::Put(key, _) | Write::Delete(key)) = write;
            key.starts_with(record::CANCEL_PREFIX)
                || (remembered
                    && workflow_id(key).is_some_and(|id| self.lookup(staged, id).is_some()))
        })
    }

    /// Folds the requests and deliveries in `writes` into workflow records, reading a record
    /// not written by `writes` through `read` (storage as the batch being built sees it).
    ///
    /// # Errors
    ///
    /// What `read` returns, or a codec error re-encoding a record.
    pub fn fold(
        &self,
        staged: &mut Staged,
        writes: Batch,
        read: Read<'_>,
    ) -> Result<Batch, EngineError> {
        // Deliveries first: the record the same transition writes is the one without the
        // request, wherever in its writes the marker stands.
        for write in &writes.writes {
            if let Write::Delete(key) = write
                && let Some(id) = id_after(key, record::CANCEL_PREFIX)
                && self.lookup(staged, id).is_some()
            {
                staged.0.insert(id.to_string(), Some(None));
            }
        }
        let mut out: Vec<Write> = Vec::with_capacity(writes.writes.len());
        for write in writes.writes {
            match write {
                // Delivered (noted above): never written.
                Write::Delete(key) if key.starts_with(record::CANCEL_PREFIX) => {}
                Write::Put(key, value) if key.starts_with(record::CANCEL_PREFIX) => {
                    let Some(id) = id_after(&key, record::CANCEL_PREFIX) else {
                        continue;
                    };
                    let requested_ms = record::decode_record::<CancelRecord>(&value)
                        .map(|request| request.requested_ms)
                        .unwrap_or_default();
                    request(self, staged, id, requested_ms, &mut out, read)?;
                }
                Write::Put(key, value) => {
                    let value = match workflow_id(&key) {
                        Some(id) => overlay(self, staged, id, value)?,
                        None => value,
                    };
                    out.push(Write::Put(key, value));
                }
                Write::Delete(key) => {
                    if let Some(id) = workflow_id(&key) {
                        staged.0.insert(id.to_string(), None);
                    }
                    out.push(Write::Delete(key));
                }
            }
        }
        Ok(Batch { writes: out })
    }

    /// Keeps what a landed batch staged.
    pub fn commit(&mut self, staged: Staged) {
        for (id, entry) in staged.0 {
            match entry {
                Some(request) => {
                    self.known.insert(id, request);
                }
                None => {
                    self.known.remove(&id);
                }
            }
        }
    }
}

/// Sets a request made at `requested_ms` in `id`'s record: the one written earlier in `out`,
/// or the one `read` finds (then written to `out`). A workflow that has no record, whose record
/// does not decode, or that has finished takes no request: nothing is written.
fn request(
    fold: &CancelFold,
    staged: &mut Staged,
    id: &str,
    requested_ms: u64,
    out: &mut Vec<Write>,
    read: Read<'_>,
) -> Result<(), EngineError> {
    let key = record::workflow_key(fold.partitions.of(id), id);
    let earlier = out
        .iter()
        .rposition(|write| matches!(write, Write::Put(k, _) | Write::Delete(k) if *k == key));
    let bytes = match earlier {
        Some(at) => match &out[at] {
            Write::Put(_, value) => Some(value.clone()),
            Write::Delete(_) => None,
        },
        None => read(&key)?,
    };
    let Some(mut stored) = bytes.and_then(|b| record::decode_record::<WorkflowRecord>(&b).ok())
    else {
        return Ok(());
    };
    if stored.status.is_terminal() {
        return Ok(());
    }
    // A request already pending keeps its time; the writer's own view comes first.
    let pending = fold
        .lookup(staged, id)
        .unwrap_or(stored.lifecycle.cancel_requested_ms)
        .unwrap_or(requested_ms);
    stored.lifecycle.cancel_requested_ms = Some(pending);
    staged.0.insert(id.to_string(), Some(Some(pending)));
    let value = record::encode_record(&stored)?;
    match earlier {
        Some(at) => out[at] = Write::Put(key, value),
        None => out.push(Write::Put(key, value)),
    }
    Ok(())
}

/// `value`, a record of `id` written by a transition, with the request the writer knows for it
/// laid over; the workflow is forgotten once the record says it finished.
fn overlay(
    fold: &CancelFold,
    staged: &mut Staged,
    id: &str,
    value: Vec<u8>,
) -> Result<Vec<u8>, EngineError> {
    let Some(request) = fold.lookup(staged, id) else {
        return Ok(value);
    };
    // A record that does not decode is written as it is (a parked workflow's, kept as stored).
    let Ok(mut written) = record::decode_record::<WorkflowRecord>(&value) else {
        return Ok(value);
    };
    if written.status.is_terminal() {
        staged.0.insert(id.to_string(), None);
        return Ok(value);
    }
    if written.lifecycle.cancel_requested_ms == request {
        return Ok(value);
    }
    written.lifecycle.cancel_requested_ms = request;
    Ok(record::encode_record(&written)?)
}

/// The workflow id of a `wf/<p><id>` key.
fn workflow_id(key: &[u8]) -> Option<&str> {
    record::parse_id_key(record::WORKFLOW_PREFIX, key).map(|(_, id)| id)
}

fn id_after<'a>(key: &'a [u8], prefix: &[u8]) -> Option<&'a str> {
    std::str::from_utf8(key.strip_prefix(prefix)?).ok()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::engine::record::{Lifecycle, PendingCommand, RecordStatus};

    fn waiting() -> WorkflowRecord {
        WorkflowRecord {
            workflow_type: "t".into(),
            version: 1,
            fingerprint: 0,
            status: RecordStatus::Waiting,
            step: 1,
            state: Some(vec![1]),
            pending: Some(PendingCommand::Signal { name: "s".into() }),
            created_ms: 1,
            updated_ms: 1,
            outcome: None,
            idempotency_key: None,
            last_resume: None,
            signals_consumed: 0,
            lifecycle: Lifecycle::default(),
        }
    }

    fn request(id: &str, at: u64) -> Batch {
        let mut batch = Batch::new();
        batch.put(
            record::cancel_key(id),
            record::encode_record(&CancelRecord { requested_ms: at }).unwrap(),
        );
        batch
    }

    fn transition(id: &str, record: &WorkflowRecord) -> Batch {
        let mut batch = Batch::new();
        batch.put(
            record::workflow_key(record::Partition::ZERO, id),
            record::encode_record(record).unwrap(),
        );
        batch
    }

    /// The record `writes` put for `id`.
    fn written(writes: &Batch, id: &str) -> WorkflowRecord {
        let key = record::workflow_key(record::Partition::ZERO, id);
        writes
            .writes
            .iter()
            .find_map(|w| match w {
                Write::Put(k, v) if *k == key => Some(record::decode_record(v).unwrap()),
                _ => None,
            })
            .expect("the record is written")
    }

    /// Folds `writes` as one landed batch over `stored`, and applies them there.
    fn land(fold: &mut CancelFold, stored: &mut HashMap<Vec<u8>, Vec<u8>>, writes: Batch) -> Batch {
        let mut staged = Staged::default();
        let folded = if fold.touches(&staged, &writes) {
            let view = stored.clone();
            fold.fold(&mut staged, writes, &|key| Ok(view.get(key).cloned()))
                .unwrap()
        } else {
            writes
        };
        fold.commit(staged);
        for write in &folded.writes {
            match write {
                Write::Put(k, v) => {
                    stored.insert(k.clone(), v.clone());
                }
                Write::Delete(k) => {
                    stored.remove(k);
                }
            }
        }
        folded
    }

    #[test]
    fn a_transition_prepared_before_a_request_keeps_it() {
        let mut fold = CancelFold::default();
        let mut stored = HashMap::new();
        land(&mut fold, &mut stored, transition("w", &waiting()));
        // The runner read the record (no request), then a caller's request lands first.
        let stale = waiting();
        let folded = land(&mut fold, &mut stored, request("w", 5));
        assert!(
            folded.writes.iter().all(|w| !matches!(w, Write::Put(k, _) | Write::Delete(k) if k.starts_with(record::CANCEL_PREFIX))),
            "the request key is never written"
        );
        assert_eq!(written(&folded, "w").lifecycle.cancel_requested_ms, Some(5));
        // The runner's transition, prepared before the request, does not erase it.
        let mut next = stale.clone();
        next.step = 2;
        let folded = land(&mut fold, &mut stored, transition("w", &next));
        let kept = written(&folded, "w");
        assert_eq!(
            (kept.step, kept.lifecycle.cancel_requested_ms),
            (2, Some(5))
        );
        // A second request keeps the first one's time.
        let folded = land(&mut fold, &mut stored, request("w", 9));
        assert_eq!(written(&folded, "w").lifecycle.cancel_requested_ms, Some(5));
    }

    #[test]
    fn a_delivered_request_is_not_folded_back_and_a_finished_workflow_is_forgotten() {
        let mut fold = CancelFold::default();
        let mut stored = HashMap::new();
        land(&mut fold, &mut stored, transition("w", &waiting()));
        land(&mut fold, &mut stored, request("w", 5));
        // The runner delivers it: the delivery marker and its record without the request.
        let mut delivered = transition("w", &waiting());
        delivered.delete(record::cancel_key("w"));
        let folded = land(&mut fold, &mut stored, delivered);
        assert_eq!(folded.writes.len(), 1, "the marker is dropped: {folded:?}");
        assert_eq!(written(&folded, "w").lifecycle.cancel_requested_ms, None);
        // A later transition of a record read before the delivery does not bring it back.
        let mut stale = waiting();
        stale.lifecycle.cancel_requested_ms = Some(5);
        let folded = land(&mut fold, &mut stored, transition("w", &stale));
        assert_eq!(written(&folded, "w").lifecycle.cancel_requested_ms, None);
        // Once it finished, its writes pass as they are and nothing is remembered.
        let mut done = waiting();
        done.status = RecordStatus::Completed;
        land(&mut fold, &mut stored, transition("w", &done));
        assert!(fold.known.is_empty());
        assert!(!fold.touches(&Staged::default(), &transition("w", &waiting())));
    }

    #[test]
    fn a_request_for_a_missing_or_finished_workflow_writes_nothing() {
        let mut fold = CancelFold::default();
        let mut stored = HashMap::new();
        assert!(land(&mut fold, &mut stored, request("nobody", 1)).is_empty());
        let mut done = waiting();
        done.status = RecordStatus::Failed;
        land(&mut fold, &mut stored, transition("w", &done));
        assert!(land(&mut fold, &mut stored, request("w", 1)).is_empty());
        assert!(fold.known.is_empty());
    }

    #[test]
    fn a_batch_that_does_not_land_leaves_nothing_remembered() {
        let fold = CancelFold::default();
        let stored: HashMap<Vec<u8>, Vec<u8>> = [(
            record::workflow_key(record::Partition::ZERO, "w"),
            record::encode_record(&waiting()).unwrap(),
        )]
        .into();
        let mut staged = Staged::default();
        fold.fold(&mut staged, request("w", 5), &|key| {
            Ok(stored.get(key).cloned())
        })
        .unwrap();
        // Not committed: the staged request is dropped with the failed batch.
        drop(staged);
        assert!(!fold.touches(&Staged::default(), &transition("w", &waiting())));
    }
}
