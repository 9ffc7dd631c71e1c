//! Purging finished workflows: a store keeps every workflow's record and result until its owner
//! deletes it, so a long-running service purges what it no longer needs (for example, what
//! `list` finds completed before some date).

use crate::storage::Batch;

use std::sync::Arc;

use super::Engine;
use super::core::Inner;
use super::error::EngineError;
use super::record::{self, AttributesRecord, IdempotencyRecord, WorkflowRecord};
use super::retention::{self, RetentionPolicy, SweepReport};
use super::visibility;

impl Engine {
    /// Deletes finished workflow `id` and everything stored under its id: its record and result,
    /// its search attributes and their index entries, its idempotency key (which a new start may
    /// then use again), the signal ids it accepted, stored update answers, a leftover review and
    /// signals, and its link to a parent. Its children are workflows of their own and are not
    /// touched.
    ///
    /// Afterwards the id is free: `describe` and `result` answer `NotFound`, and a start may
    /// use it again. Errors with `NotFinished` for a workflow still running, waiting or parked
    /// (cancel it, or wait for its result, first), with `ParentNotFinished` for a child whose
    /// parent may still read its result, and with `NotFound` when there is none; an unreadable
    /// record is not purged (it cannot be told finished), its `Record` error says why.
    ///
    /// # Errors
    ///
    /// `NotFound`, `NotFinished`, `ParentNotFinished` and `Record` as said above; `Shutdown` or
    /// `Fenced` when the engine no longer serves; `Storage` when the store fails.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the purge is one checked write that the engine's writer applies or refuses
    /// whole; dropped before it is answered, it may or may not have happened, and calling again
    /// answers `NotFound` once it has.
    pub async fn purge(&self, id: &str) -> Result<(), EngineError> {
        self.inner.check_live()?;
        purge(&self.inner, id, None).await
    }

    /// Runs one retention sweep under `policy` now, as the background sweeper of
    /// [`EngineBuilder::retention`](super::EngineBuilder::retention) does every interval: purges
    /// up to `policy.batch` finished workflows whose keep time has passed (oldest first, read
    /// from the finish-time index) and deletes the idempotency keys whose window after a purge
    /// has ended. For an operator who wants the store trimmed at once, and for tests on a
    /// virtual clock.
    ///
    /// # Errors
    ///
    /// `Fenced` or `Shutdown` when the engine can no longer write; a storage error when reading
    /// the index fails. A workflow that cannot be purged yet (a child whose parent has not
    /// finished) is counted in [`SweepReport::deferred`], not an error.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: each purge is one checked write applied whole or not at all; dropped
    /// midway, the workflows not yet purged are purged by a later sweep.
    pub async fn sweep_retention(
        &self,
        policy: &RetentionPolicy,
    ) -> Result<SweepReport, EngineError> {
        self.inner.check_live()?;
        retention::sweep(&self.inner, policy).await
    }
}

/// Purges finished workflow `id` for a retention sweep: like [`Engine::purge`], but its
/// idempotency key stays until `expires_ms` (indexed under `idemx/`), so a late retry of its
/// start is answered with its id instead of starting it again.
pub(crate) async fn purge_keeping_key(
    inner: &Arc<Inner>,
    id: &str,
    expires_ms: u64,
) -> Result<(), EngineError> {
    purge(inner, id, Some(expires_ms)).await
}

/// Purges finished workflow `id`; with `keep_key_until`, keeps its idempotency key until then.
async fn purge(
    inner: &Arc<Inner>,
    id: &str,
    keep_key_until: Option<u64>,
) -> Result<(), EngineError> {
    // The record is compared in the writer with the one the deletes were read from; it only
    // differs when another caller purged it and started a new workflow under the id
    // meanwhile, so a second pass settles it.
    for _ in 0..3 {
        let (bytes, batch) = {
            let id = id.to_string();
            super::read_blocking(inner, move |inner| {
                prepare_purge(inner, &id, keep_key_until)
            })
            .await?
        };
        let (p, owned_id) = (inner.partition(id), id.to_string());
        let purged = inner
            .commit_checked(
                move |view| match view.get(&record::workflow_key(p, &owned_id))? {
                    Some(current) if current == bytes => Ok(Some(batch)),
                    Some(_) => Ok(None),
                    None => Err(EngineError::NotFound { id: owned_id }),
                },
            )
            .await?;
        if purged {
            return Ok(());
        }
    }
    Err(EngineError::NotFinished { id: id.into() })
}

/// The stored record of finished workflow `id` and the deletes that purge it. Blocking: run on
/// the blocking pool.
fn prepare_purge(
    inner: &Inner,
    id: &str,
    keep_key_until: Option<u64>,
) -> Result<(Vec<u8>, Batch), EngineError> {
    let bytes = inner
        .read_raw(id)?
        .ok_or_else(|| EngineError::NotFound { id: id.into() })?;
    let stored: WorkflowRecord =
        record::decode_record(&bytes).map_err(|source| EngineError::Record {
            key: format!("wf/{id}"),
            source,
        })?;
    if !stored.status.is_terminal() {
        return Err(EngineError::NotFinished { id: id.into() });
    }
    // A parent reads a finished child's result from the child's record when it resumes.
    let parent = stored.lifecycle.parent.clone();
    if let Some(parent) = &parent
        && let Some(parent_bytes) = inner.read_raw(parent)?
        && record::decode_record::<WorkflowRecord>(&parent_bytes)
            .map_or(true, |record| !record.status.is_terminal())
    {
        return Err(EngineError::ParentNotFinished {
            id: id.into(),
            parent: parent.clone(),
        });
    }
    // A finished workflow takes no more writes (signals, updates and decisions are refused
    // by the writer once it has finished), so what is read here is all there is.
    let p = inner.partition(id);
    let mut batch = Batch::new();
    for key in [
        record::workflow_key(p, id),
        record::live_key(p, id),
        record::review_key(id),
        record::attributes_key(p, id),
    ] {
        batch.delete(key);
    }
    visibility::stage_purge(id, &stored, &mut batch);
    if let Some(parent) = &parent {
        batch.delete(record::child_key(inner.partition(parent), parent, id));
    }
    if let Some(bytes) = inner.storage.get(&record::attributes_key(p, id))? {
        let attributes: AttributesRecord =
            record::decode_record(&bytes).map_err(|source| EngineError::Record {
                key: format!("wfattr/{id}"),
                source,
            })?;
        for (key, value) in &attributes.values {
            batch.delete(record::attribute_index_key(key, value, id));
        }
    }
    if let Some(key) = &stored.idempotency_key
        && let Some(bytes) = inner.storage.get(&record::idempotency_key(key))?
        && record::decode_record::<IdempotencyRecord>(&bytes)
            .is_ok_and(|named| named.workflow_id == id)
    {
        match keep_key_until {
            None => {
                batch.delete(record::idempotency_key(key));
            }
            Some(expires_ms) => {
                batch.put(record::idempotency_expiry_key(expires_ms, key), Vec::new());
            }
        }
    }
    for prefix in [
        record::signal_queue_prefix(p, id),
        record::signal_id_prefix(p, id),
        record::update_responses_prefix(p, id),
        record::update_queue_prefix(p, id),
    ] {
        for (key, _) in inner.storage.scan_prefix(&prefix, None, usize::MAX)? {
            batch.delete(key);
        }
    }
    Ok((bytes, batch))
}
