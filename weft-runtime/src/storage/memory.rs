//! [`MemoryStorage`]: an in-process store for tests and the test kit.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};

use super::{
    BackupError, BackupMeta, BackupReport, Batch, Condition, Entry, Storage, StorageError, Write,
};

/// A store held in memory. Clones share the same data, so a test can "restart" an engine on it.
#[derive(Clone, Default, Debug)]
pub struct MemoryStorage {
    map: Arc<Mutex<BTreeMap<Vec<u8>, Vec<u8>>>>,
}

impl MemoryStorage {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStorage::default()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<Vec<u8>, Vec<u8>>> {
        // A panic while holding the lock cannot leave a half-applied batch (writes are applied
        // after all checks), so a poisoned map is still consistent.
        self.map
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Storage for MemoryStorage {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.lock().get(key).cloned())
    }

    fn scan(
        &self,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StorageError> {
        let map = self.lock();
        let range = (start.map(<[u8]>::to_vec), end.map(<[u8]>::to_vec));
        if limit == 0 || admits_no_key(&range) {
            return Ok(Vec::new());
        }
        Ok(map
            .range::<Vec<u8>, _>(range)
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn scan_rev(
        &self,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StorageError> {
        let map = self.lock();
        let range = (start.map(<[u8]>::to_vec), end.map(<[u8]>::to_vec));
        if limit == 0 || admits_no_key(&range) {
            return Ok(Vec::new());
        }
        Ok(map
            .range::<Vec<u8>, _>(range)
            .rev()
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn apply_if(&self, conditions: &[Condition], batch: &Batch) -> Result<(), StorageError> {
        let mut map = self.lock();
        for condition in conditions {
            if map.get(&condition.key) != condition.expected.as_ref() {
                return Err(StorageError::ConditionFailed {
                    key: condition.key.clone(),
                });
            }
        }
        for write in &batch.writes {
            match write {
                Write::Put(k, v) => {
                    map.insert(k.clone(), v.clone());
                }
                Write::Delete(k) => {
                    map.remove(k);
                }
            }
        }
        Ok(())
    }

    /// Writes the map, as one snapshot taken under the lock, to a redb backup file.
    fn backup_to(
        &self,
        path: &std::path::Path,
        meta: &BackupMeta,
    ) -> Result<BackupReport, BackupError> {
        let snapshot = self.lock().clone();
        super::backup::write_backup(snapshot.into_iter().map(Ok), path, meta)
    }
}

/// Whether `range` admits no key (start past end, or the same key excluded at both ends):
/// `BTreeMap::range` panics on those, and the contract makes them an empty scan.
fn admits_no_key(range: &(Bound<Vec<u8>>, Bound<Vec<u8>>)) -> bool {
    match (&range.0, &range.1) {
        (Bound::Excluded(s), Bound::Excluded(e)) => s >= e,
        (Bound::Included(s) | Bound::Excluded(s), Bound::Included(e) | Bound::Excluded(e)) => s > e,
        _ => false,
    }
}
