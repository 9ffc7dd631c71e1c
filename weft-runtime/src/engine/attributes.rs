//! Search attributes on the engine side: committing a step's attributes with it, and reading
//! them back for list, describe and count.

use std::collections::BTreeMap;

use crate::attribute::AttributeValue;
use crate::storage::{Batch, Storage};

use super::core::Inner;
use super::error::EngineError;
use super::record::{self, AttributesRecord, RecordStatus, StoredValue, WorkflowRecord};

/// Adds to `batch` the writes that commit `set` (the attributes a step set) for workflow `id`
/// over `stored` (its committed attributes, see [`stored`]): the rewritten `wfattr/<id>` record
/// and the index entries of changed keys. Nothing when the step set none, or when the step was
/// not committed as a step (it parked). No I/O: called by the planner.
pub(crate) fn stage(
    (p, id): (record::Partition, &str),
    next: &WorkflowRecord,
    stored: Option<AttributesRecord>,
    set: BTreeMap<String, AttributeValue>,
    batch: &mut Batch,
) -> Result<(), EngineError> {
    if set.is_empty() || matches!(next.status, RecordStatus::Parked { .. }) {
        return Ok(());
    }
    let mut stored = stored.unwrap_or_default();
    for (key, value) in set {
        let value = StoredValue::from(&value);
        match stored.values.get(&key) {
            Some(old) if *old == value => continue,
            Some(old) => {
                batch.delete(record::attribute_index_key(&key, old, id));
            }
            None => {}
        }
        batch.put(record::attribute_index_key(&key, &value, id), Vec::new());
        stored.values.insert(key, value);
    }
    batch.put(
        record::attributes_key(p, id),
        record::encode_record(&stored)?,
    );
    Ok(())
}

/// The committed attributes of workflow `id`, for [`stage`]. Only the workflow's runner writes
/// them, one step at a time, so the read cannot be stale.
pub(crate) async fn stored(
    inner: &Inner,
    id: &str,
) -> Result<Option<AttributesRecord>, EngineError> {
    let (p, owned) = (inner.partition(id), id.to_string());
    inner
        .read(move |storage| read_stored(storage, (p, &owned)))
        .await
}

fn read_stored(
    storage: &dyn Storage,
    (p, id): (record::Partition, &str),
) -> Result<Option<AttributesRecord>, EngineError> {
    let Some(bytes) = storage.get(&record::attributes_key(p, id))? else {
        return Ok(None);
    };
    record::decode_record(&bytes)
        .map(Some)
        .map_err(|source| EngineError::Record {
            key: format!("wfattr/{id}"),
            source,
        })
}

/// Whether the stored attributes of workflow `id` decode (or it has none). A workflow whose
/// attributes do not is parked where it is, like one whose record does not.
/// Blocking: see [`Inner::read`].
pub(crate) fn readable(
    storage: &dyn Storage,
    key: (record::Partition, &str),
) -> Result<bool, EngineError> {
    match read_stored(storage, key) {
        Ok(_) => Ok(true),
        Err(EngineError::Record { .. }) => Ok(false),
        Err(other) => Err(other),
    }
}

/// The committed attributes of workflow `id` (empty when it set none). Blocking: see
/// [`Inner::read`].
pub(crate) fn read(
    storage: &dyn Storage,
    key: (record::Partition, &str),
) -> Result<BTreeMap<String, AttributeValue>, EngineError> {
    Ok(read_stored(storage, key)?
        .map(|stored| {
            stored
                .values
                .into_iter()
                .map(|(key, value)| (key, AttributeValue::from(value)))
                .collect()
        })
        .unwrap_or_default())
}
