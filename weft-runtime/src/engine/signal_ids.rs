//! Caller signal ids: a signal sent with an id is queued once per workflow and id, so a webhook
//! its sender retries is not delivered twice.
//!
//! The writer decides, in the check of the signal's commit (see `writer`): an id it finds
//! accepted within the window answers as the first call did and writes nothing; otherwise the
//! signal is queued together with the id's record, in the same batch. Two concurrent sends of
//! one id are so ordered by the writer, and exactly one of them queues the signal. The records
//! are kept until their workflow is purged; one older than the window counts as absent (a send
//! with it queues the signal again and renews it).

use std::time::Duration;

use crate::storage::Batch;

use super::error::EngineError;
use super::record::{self, SignalIdRecord};
use super::writer::ReadView;

/// How long a signal id is remembered by default: one day, longer than webhook senders retry.
pub const DEFAULT_SIGNAL_ID_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);

/// Options for `Engine::signal_with` and `Engine::signal_by_name`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignalOptions {
    /// Names this signal for deduplication: another signal to the same workflow with the same
    /// id, within the engine's signal id window (`EngineBuilder::signal_id_window`), is not
    /// queued again and answers as the first did, even after the workflow finished or the
    /// engine restarted. `None` (the default) queues every call.
    pub signal_id: Option<String>,
}

impl SignalOptions {
    /// Options naming the signal `signal_id`.
    pub fn id(signal_id: impl Into<String>) -> Self {
        SignalOptions {
            signal_id: Some(signal_id.into()),
        }
    }
}

/// Whether `signal_id` was accepted for workflow `id` less than `window` before `now_ms`, as
/// the writer sees storage.
pub(crate) fn seen(
    view: &dyn ReadView,
    (p, id): (record::Partition, &str),
    signal_id: &str,
    now_ms: u64,
    window: Duration,
) -> Result<bool, EngineError> {
    let key = record::signal_id_key(p, id, signal_id);
    let Some(bytes) = view.get(&key)? else {
        return Ok(false);
    };
    let stored: SignalIdRecord =
        record::decode_record(&bytes).map_err(|source| EngineError::Record {
            key: String::from_utf8_lossy(&key).into_owned(),
            source,
        })?;
    let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
    Ok(now_ms < stored.accepted_ms.saturating_add(window_ms))
}

/// Adds the record of `signal_id`, accepted at `now_ms`, to the signal's batch.
pub(crate) fn remember(
    batch: &mut Batch,
    (p, id): (record::Partition, &str),
    signal_id: &str,
    now_ms: u64,
) -> Result<(), EngineError> {
    batch.put(
        record::signal_id_key(p, id, signal_id),
        record::encode_record(&SignalIdRecord {
            accepted_ms: now_ms,
        })?,
    );
    Ok(())
}
