//! Retrying parked workflows: every workflow stored as parked is retried when an engine is built
//! (with recovery on), and one workflow when an operator asks with [`Engine::retry`].
//!
//! A park keeps everything the step needs to run again: the state, the pending command, the
//! resume value (a queued signal, a stored cancellation, a fired timer's index entry, or the
//! pending activity's result at `actres/<id>`). So a retry only restores the status the workflow
//! had before it parked; its runner then decides and steps as usual, and a step that fails the
//! same way parks it again, with nothing run twice.

use std::sync::Arc;

use crate::storage::Batch;

use super::clock::to_millis;
use super::core::Inner;
use super::effects::Effect;
use super::error::EngineError;
use super::record::{self, PendingCommand, RecordStatus, WorkflowRecord};
use super::{Engine, query, runner, visibility};

const PAGE: usize = 256;

/// `record` as it was before it parked (running, or waiting on a timer or a signal), or `None`
/// when it is not stored as parked.
pub(crate) fn unparked(record: &WorkflowRecord, now_ms: u64) -> Option<WorkflowRecord> {
    if !matches!(record.status, RecordStatus::Parked { .. }) {
        return None;
    }
    let mut next = record.clone();
    next.status = match record.pending {
        Some(PendingCommand::Timer { .. } | PendingCommand::Signal { .. }) => RecordStatus::Waiting,
        _ => RecordStatus::Running,
    };
    next.updated_ms = now_ms;
    Some(next)
}

/// At build, before recovery: restores every workflow stored as parked to its status before it
/// parked, a page of the live index per fenced batch, so recovery resumes them with the code
/// now registered. Returns how many were restored.
pub(crate) async fn unpark_all(inner: &Arc<Inner>) -> Result<usize, EngineError> {
    let now_ms = to_millis(inner.clock.now());
    let mut restored = 0;
    // Partition by partition (`live/<p>`), as recovery reads them.
    let mut partitions = inner.partitions.all();
    let Some(mut p) = partitions.next() else {
        return Ok(0);
    };
    let mut after: Option<Vec<u8>> = None;
    loop {
        // A page of the live index with each record, read off the async workers.
        let from = after.clone();
        let page = inner
            .read(move |storage| {
                let mut page = Vec::new();
                let prefix = record::partition_prefix(record::LIVE_PREFIX, p);
                for (key, _) in storage.scan_prefix(&prefix, from.as_deref(), PAGE)? {
                    let bytes = match record::parse_id_key(record::LIVE_PREFIX, &key) {
                        Some((p, id)) => storage.get(&record::workflow_key(p, id))?,
                        None => None,
                    };
                    page.push((key, bytes));
                }
                Ok(page)
            })
            .await?;
        let done = page.len() < PAGE;
        let mut batch = Batch::new();
        for (key, bytes) in &page {
            let Some((p, id)) = record::parse_id_key(record::LIVE_PREFIX, key) else {
                inner.damage.unparsed(key);
                continue;
            };
            let Some(bytes) = bytes else {
                continue;
            };
            // An unreadable record stays as it is, reported by describe and list.
            let Ok(stored) = record::decode_record::<WorkflowRecord>(bytes) else {
                continue;
            };
            if let Some(next) = unparked(&stored, now_ms) {
                visibility::stage_rewrite(id, Some(&stored), &next, &mut batch);
                batch.put(record::workflow_key(p, id), record::encode_record(&next)?);
                restored += 1;
            }
        }
        if !batch.is_empty() {
            // A request at build, not a transition the engine acknowledged: a storage failure
            // fails the build instead of being retried until storage heals.
            inner.commit_checked(move |_| Ok(Some(batch))).await?;
        }
        if !done {
            after = page.last().map(|(key, _)| key.clone());
            continue;
        }
        match partitions.next() {
            Some(next) => {
                p = next;
                after = None;
            }
            None => return Ok(restored),
        }
    }
}

impl Engine {
    /// Retries workflow `id` now: a workflow stored as parked (its step panicked, an activity or
    /// child it needs was not registered, its state was too large, ...) is restored to running
    /// or waiting and stepped again with the value that resumed it when it parked (a pending
    /// activity's kept result, so the activity does not run again); a workflow whose runner
    /// stopped on an error (a failed commit) is woken. Engines also retry every parked
    /// workflow when they are built, so deploying fixed code and restarting is enough; this is
    /// for retrying without a restart.
    ///
    /// A step that fails the same way parks the workflow again, with a fresh reason; wait for
    /// the outcome with [`WorkflowHandle::result`](super::WorkflowHandle::result).
    ///
    /// # Errors
    ///
    /// `NotFound` for an unknown id; `Finished` when it has finished; `Parked` (with the reason)
    /// when the cause is in what this engine has registered (an unknown type or version, a
    /// fingerprint mismatch, a failed migration) or the record is unreadable: register the right
    /// code and build the engine again; `NotParked` when it is running or waiting as it should;
    /// a storage error, `Shutdown` or `Fenced` when the engine cannot write.
    ///
    /// # Cancel safety
    ///
    /// The restore reaches the engine's writer at the first poll; dropping this future after
    /// that changes nothing: if the writer restores the workflow, the engine wakes it once that
    /// is durable. Retrying again answers `NotParked` once it runs.
    pub async fn retry(&self, id: &str) -> Result<(), EngineError> {
        let inner = &self.inner;
        inner.check_live()?;
        // A workflow stored as parked is restored by the writer at once, on the record as its
        // writes leave it: of concurrent retries one restores it, and a workflow that moved on
        // meanwhile is left alone. The writer wakes it once the restore is durable, even if
        // this call is dropped. Anything else is answered from a read, below.
        let (p, owned_id) = (inner.partition(id), id.to_string());
        let now_ms = to_millis(inner.clock.now());
        let restored = inner
            .request_checked_then(
                move |view| {
                    let Some(bytes) = view.get(&record::workflow_key(p, &owned_id))? else {
                        return Ok(None);
                    };
                    let Ok(current) = record::decode_record::<WorkflowRecord>(&bytes) else {
                        return Ok(None);
                    };
                    let Some(next) = unparked(&current, now_ms) else {
                        return Ok(None);
                    };
                    let mut batch = Batch::new();
                    visibility::stage_rewrite(&owned_id, Some(&current), &next, &mut batch);
                    batch.put(
                        record::workflow_key(p, &owned_id),
                        record::encode_record(&next)?,
                    );
                    Ok(Some(batch))
                },
                vec![Effect::Wake(id.to_string())],
            )
            .await?;
        if restored {
            return Ok(());
        }
        self.not_restored(id).await
    }

    /// What [`Engine::retry`] answers about a workflow the writer did not restore (it was not
    /// stored as parked): why, or a wake for one whose runner stopped on an error.
    async fn not_restored(&self, id: &str) -> Result<(), EngineError> {
        let inner = &self.inner;
        let stored = query::read_stored(inner, id)
            .await?
            .ok_or_else(|| EngineError::NotFound { id: id.into() })?;
        let inspected = query::inspect_stored(inner, stored)?;
        let parked_error = |reason: query::ParkReason| EngineError::Parked {
            id: id.to_string(),
            code: reason.code,
            message: reason.message,
        };
        let Some(record) = inspected.record else {
            return Err(inspected
                .park_reason
                .map(parked_error)
                .unwrap_or_else(|| EngineError::NotFound { id: id.into() }));
        };
        if record.status.is_terminal() {
            return Err(EngineError::Finished { id: id.to_string() });
        }
        if !matches!(record.status, RecordStatus::Parked { .. }) {
            if let Some(reason) = inspected.park_reason {
                return Err(parked_error(reason));
            }
            if inner.stalled(id).is_some() {
                runner::wake(inner, id);
                return Ok(());
            }
            return Err(EngineError::NotParked { id: id.to_string() });
        }
        // Stored as parked after all: restored by a retry meanwhile, or parked again since.
        Err(EngineError::NotParked { id: id.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parked(pending: Option<PendingCommand>) -> WorkflowRecord {
        WorkflowRecord {
            workflow_type: "w".into(),
            version: 1,
            fingerprint: 7,
            status: RecordStatus::Parked {
                code: "workflow.panicked".into(),
                message: "boom".into(),
            },
            step: 3,
            state: Some(vec![1]),
            pending,
            created_ms: 1,
            updated_ms: 2,
            outcome: None,
            idempotency_key: None,
            last_resume: None,
            signals_consumed: 0,
            lifecycle: Default::default(),
        }
    }

    #[test]
    fn a_parked_record_gets_back_the_status_its_pending_command_implies() {
        let timer = unparked(&parked(Some(PendingCommand::Timer { deadline_ms: 9 })), 5).unwrap();
        assert_eq!(timer.status, RecordStatus::Waiting);
        assert_eq!(timer.updated_ms, 5);
        assert_eq!((timer.step, timer.state.clone()), (3, Some(vec![1])));
        let signal = PendingCommand::Signal { name: "s".into() };
        assert_eq!(
            unparked(&parked(Some(signal)), 5).unwrap().status,
            RecordStatus::Waiting
        );
        assert_eq!(
            unparked(&parked(None), 5).unwrap().status,
            RecordStatus::Running
        );
        let mut running = parked(None);
        running.status = RecordStatus::Running;
        assert_eq!(unparked(&running, 5), None);
    }
}
