//! Purging finished workflows: a store keeps every workflow's record and result until its owner
//! deletes it, so a long-running service purges what it no longer needs (for example, what
//! `list` finds completed before some date).

use crate::storage::Batch;

use super::Engine;
use super::error::EngineError;
use super::record::{self, AttributesRecord, IdempotencyRecord, WorkflowRecord};
use super::visibility;

impl Engine {
    /// Deletes finished workflow `id` and everything stored under its id: its record and result,
    /// its search attributes and their index entries, its idempotency key (which a new start may
    /// then use again), stored update answers, a leftover review and signals, and its link to a
    /// parent. Its children are workflows of their own and are not touched.
    ///
    /// Afterwards the id is free: `describe` and `result` answer `NotFound`, and a start may
    /// use it again. Errors with `NotFinished` for a workflow still running, waiting or parked
    /// (cancel it, or wait for its result, first), with `ParentNotFinished` for a child whose
    /// parent may still read its result, and with `NotFound` when there is none; an unreadable
    /// record is not purged (it cannot be told finished), its `Record` error says why.
    pub async fn purge(&self, id: &str) -> Result<(), EngineError> {
        self.inner.check_live()?;
        // The record is compared in the writer with the one the deletes were read from; it only
        // differs when another caller purged it and started a new workflow under the id
        // meanwhile, so a second pass settles it.
        for _ in 0..3 {
            let (bytes, batch) = self.prepare_purge(id)?;
            let owned_id = id.to_string();
            let purged = self
                .inner
                .commit_checked(
                    move |view| match view.get(&record::workflow_key(&owned_id))? {
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

    /// The stored record of finished workflow `id` and the deletes that purge it.
    fn prepare_purge(&self, id: &str) -> Result<(Vec<u8>, Batch), EngineError> {
        let inner = &self.inner;
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
        if let Some(parent) = inner.storage.get(&record::parent_key(id))?
            && let Ok(parent) = String::from_utf8(parent)
            && let Some(parent_bytes) = inner.read_raw(&parent)?
            && record::decode_record::<WorkflowRecord>(&parent_bytes)
                .map_or(true, |record| !record.status.is_terminal())
        {
            return Err(EngineError::ParentNotFinished {
                id: id.into(),
                parent,
            });
        }
        // A finished workflow takes no more writes (signals, updates and decisions are refused
        // by the writer once it has finished), so what is read here is all there is.
        let mut batch = Batch::new();
        for key in [
            record::workflow_key(id),
            record::live_key(id),
            record::parent_key(id),
            record::review_key(id),
            record::cancel_key(id),
            record::cancelled_key(id),
            record::deadline_key(id),
            record::timedout_key(id),
            record::attributes_key(id),
        ] {
            batch.delete(key);
        }
        visibility::stage_purge(id, &stored, &mut batch);
        if let Some(bytes) = inner.storage.get(&record::attributes_key(id))? {
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
            batch.delete(record::idempotency_key(key));
        }
        for prefix in [
            record::signal_queue_prefix(id),
            [record::UPDATE_RESPONSE_PREFIX, id.as_bytes(), b"\0"].concat(),
            [record::UPDATE_QUEUED_PREFIX, id.as_bytes(), b"\0"].concat(),
        ] {
            for (key, _) in inner.storage.scan_prefix(&prefix, None, usize::MAX)? {
                batch.delete(key);
            }
        }
        Ok((bytes, batch))
    }
}
