//! Writes the build makes before the writer starts (index backfills, format upgrades), fenced
//! on the owner epoch as the writer's are: a build that another engine has since taken over
//! from writes nothing more.

use crate::storage::{Batch, Condition, Storage, StorageError};

use super::error::EngineError;
use super::record;

/// Applies `batch` only while the stored owner epoch is still `epoch`; `Fenced` if it is not.
pub(crate) fn apply(storage: &dyn Storage, epoch: u64, batch: Batch) -> Result<(), EngineError> {
    let fence = [Condition {
        key: record::EPOCH_KEY.to_vec(),
        expected: Some(record::encode_epoch(epoch)),
    }];
    storage.apply_if(&fence, &batch).map_err(|e| match e {
        StorageError::ConditionFailed { .. } => EngineError::Fenced { epoch },
        other => EngineError::Storage(other),
    })
}
