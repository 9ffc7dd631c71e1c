//! A storage wrapper that records every write batch the engine commits (keys and value sizes),
//! so the storage-ceiling scenario can replay exactly the same writes, in the same groups,
//! straight into redb.

use std::ops::Bound;
use std::sync::{Arc, Mutex};

use weft_runtime::storage::{Batch, Condition, Entry, Storage, StorageError, Write};

/// One recorded write: the key, and the value's length for a put (`None` for a delete).
pub type RecordedWrite = (Vec<u8>, Option<usize>);

/// Forwards to `inner` and, while recording, keeps each committed batch's writes.
pub struct Recorder<S> {
    inner: Arc<S>,
    batches: Mutex<Option<Vec<Vec<RecordedWrite>>>>,
}

impl<S: Storage> Recorder<S> {
    /// Wraps `inner`; not recording until [`Recorder::start`].
    pub fn new(inner: Arc<S>) -> Self {
        Recorder {
            inner,
            batches: Mutex::new(None),
        }
    }

    /// Starts recording, dropping anything recorded before.
    pub fn start(&self) {
        *self.batches.lock().unwrap_or_else(|p| p.into_inner()) = Some(Vec::new());
    }

    /// Stops recording and returns the batches committed meanwhile.
    pub fn take(&self) -> Vec<Vec<RecordedWrite>> {
        self.batches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .unwrap_or_default()
    }
}

impl<S: Storage> Storage for Recorder<S> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.inner.get(key)
    }

    fn scan(
        &self,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StorageError> {
        self.inner.scan(start, end, limit)
    }

    fn scan_rev(
        &self,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StorageError> {
        self.inner.scan_rev(start, end, limit)
    }

    fn apply_if(&self, conditions: &[Condition], batch: &Batch) -> Result<(), StorageError> {
        let recorded: Option<Vec<RecordedWrite>> = self
            .batches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
            .then(|| {
                batch
                    .writes
                    .iter()
                    .map(|w| match w {
                        Write::Put(key, value) => (key.clone(), Some(value.len())),
                        Write::Delete(key) => (key.clone(), None),
                    })
                    .collect()
            });
        self.inner.apply_if(conditions, batch)?;
        if let Some(writes) = recorded
            && let Some(batches) = self
                .batches
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_mut()
        {
            batches.push(writes);
        }
        Ok(())
    }
}
