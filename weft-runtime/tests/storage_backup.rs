//! Backup and restore of stores: one consistent snapshot, verified copies, refusals that leave
//! nothing behind, and the format version check.

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use weft_runtime::storage::{
    BackupError, BackupMeta, MemoryStorage, RedbStorage, RestoreOptions, STORE_FORMAT_VERSION,
    Storage, read_manifest, restore,
};

fn all(storage: &dyn Storage) -> Vec<(Vec<u8>, Vec<u8>)> {
    storage
        .scan(Bound::Unbounded, Bound::Unbounded, usize::MAX)
        .unwrap()
}

fn filled(path: &Path, n: u32) -> RedbStorage {
    let storage = RedbStorage::create(path).unwrap();
    for i in 0..n {
        storage
            .put(format!("k/{i:05}").as_bytes(), &i.to_le_bytes().repeat(8))
            .unwrap();
    }
    storage
}

#[test]
fn a_redb_backup_restores_to_the_same_entries() {
    let dir = tempfile::tempdir().unwrap();
    let storage = filled(&dir.path().join("live.redb"), 500);
    let report = storage
        .backup_to(&dir.path().join("b.redb"), &BackupMeta::now())
        .unwrap();
    assert_eq!(report.manifest.entries, 500);
    assert_eq!(report.manifest.meta.format_version, STORE_FORMAT_VERSION);
    assert_eq!(report.manifest.checksum.len(), 64);
    assert!(report.bytes > 0);
    assert_eq!(read_manifest(&report.path).unwrap(), report.manifest);

    let target = dir.path().join("restored.redb");
    let manifest = restore(&report.path, &target, RestoreOptions::default()).unwrap();
    assert_eq!(manifest, report.manifest);
    let restored = RedbStorage::open(&target).unwrap();
    assert_eq!(all(&restored), all(&storage));
    // The restored store is a plain store: its manifest table is gone.
    drop(restored);
    assert!(matches!(
        read_manifest(&target),
        Err(BackupError::NotABackup { .. })
    ));
    // No temporary file is left beside either.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
}

#[test]
fn a_backup_taken_during_writes_holds_whole_batches_only() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(RedbStorage::create(dir.path().join("live.redb")).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (storage, stop) = (Arc::clone(&storage), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut n = 0u32;
            while !stop.load(Ordering::SeqCst) {
                // Each batch writes a pair and moves the counter: all three or none.
                let mut batch = weft_runtime::storage::Batch::new();
                batch.put(format!("a/{n:08}"), vec![1; 512]);
                batch.put(format!("b/{n:08}"), vec![2; 512]);
                batch.put("count", (n + 1).to_be_bytes().to_vec());
                storage.apply(batch).unwrap();
                n += 1;
            }
            n
        })
    };
    // Let some batches land, then back up twice while the writer keeps going.
    while storage.get(b"count").unwrap().is_none() {
        std::thread::yield_now();
    }
    let first = storage
        .backup_to(&dir.path().join("one.redb"), &BackupMeta::now())
        .unwrap();
    let second = storage
        .backup_to(&dir.path().join("two.redb"), &BackupMeta::now())
        .unwrap();
    stop.store(true, Ordering::SeqCst);
    let written = writer.join().unwrap();

    for report in [first, second] {
        let target = dir.path().join(format!(
            "r-{}",
            report.path.file_name().unwrap().to_string_lossy()
        ));
        restore(&report.path, &target, RestoreOptions::default()).unwrap();
        let restored = RedbStorage::open(&target).unwrap();
        let count =
            u32::from_be_bytes(restored.get(b"count").unwrap().unwrap().try_into().unwrap());
        assert!(count <= written);
        let a = restored.scan_prefix(b"a/", None, usize::MAX).unwrap();
        let b = restored.scan_prefix(b"b/", None, usize::MAX).unwrap();
        assert_eq!(
            a.len(),
            count as usize,
            "a backup holds exactly the batches counted"
        );
        assert_eq!(b.len(), count as usize);
        assert_eq!(report.manifest.entries, 2 * u64::from(count) + 1);
    }
}

#[test]
fn a_memory_store_backs_up_to_a_redb_file() {
    let dir = tempfile::tempdir().unwrap();
    let memory = MemoryStorage::new();
    memory.put(b"x", b"1").unwrap();
    memory.put(b"y", b"").unwrap();
    let report = memory
        .backup_to(&dir.path().join("b.redb"), &BackupMeta::now())
        .unwrap();
    assert_eq!(report.manifest.entries, 2);
    let target = dir.path().join("store.redb");
    restore(&report.path, &target, RestoreOptions::default()).unwrap();
    assert_eq!(all(&RedbStorage::open(&target).unwrap()), all(&memory));
}

#[test]
fn an_empty_store_backs_up_and_restores() {
    let dir = tempfile::tempdir().unwrap();
    let storage = RedbStorage::create(dir.path().join("live.redb")).unwrap();
    let report = storage
        .backup_to(&dir.path().join("b.redb"), &BackupMeta::now())
        .unwrap();
    assert_eq!(report.manifest.entries, 0);
    let target = dir.path().join("restored.redb");
    restore(&report.path, &target, RestoreOptions::default()).unwrap();
    assert!(all(&RedbStorage::open(&target).unwrap()).is_empty());
}

#[test]
fn a_backup_never_overwrites_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let storage = filled(&dir.path().join("live.redb"), 3);
    let path = dir.path().join("b.redb");
    std::fs::write(&path, b"precious").unwrap();
    let error = storage.backup_to(&path, &BackupMeta::now()).unwrap_err();
    assert!(matches!(error, BackupError::Exists { .. }), "{error}");
    assert_eq!(error.code(), "backup.exists");
    assert_eq!(std::fs::read(&path).unwrap(), b"precious");
}

#[test]
fn a_backend_without_backups_says_so() {
    struct Plain(MemoryStorage);
    impl Storage for Plain {
        fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, weft_runtime::storage::StorageError> {
            self.0.get(key)
        }
        fn scan(
            &self,
            start: Bound<&[u8]>,
            end: Bound<&[u8]>,
            limit: usize,
        ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, weft_runtime::storage::StorageError> {
            self.0.scan(start, end, limit)
        }
        fn apply_if(
            &self,
            conditions: &[weft_runtime::storage::Condition],
            batch: &weft_runtime::storage::Batch,
        ) -> Result<(), weft_runtime::storage::StorageError> {
            self.0.apply_if(conditions, batch)
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.redb");
    let error = Plain(MemoryStorage::new())
        .backup_to(&path, &BackupMeta::now())
        .unwrap_err();
    assert!(matches!(error, BackupError::Unsupported { .. }), "{error}");
    assert!(!path.exists());
}

#[test]
fn restore_refuses_an_existing_target_unless_told_to_replace() {
    let dir = tempfile::tempdir().unwrap();
    let storage = filled(&dir.path().join("live.redb"), 10);
    let report = storage
        .backup_to(&dir.path().join("b.redb"), &BackupMeta::now())
        .unwrap();
    let target = dir.path().join("target.redb");
    let other = filled(&target, 2);
    drop(other);
    let error = restore(&report.path, &target, RestoreOptions::default()).unwrap_err();
    assert!(matches!(error, BackupError::Exists { .. }), "{error}");
    assert!(error.to_string().contains("replace"), "{error}");
    assert_eq!(all(&RedbStorage::open(&target).unwrap()).len(), 2);

    restore(&report.path, &target, RestoreOptions { replace: true }).unwrap();
    assert_eq!(all(&RedbStorage::open(&target).unwrap()), all(&storage));
}

#[test]
fn restore_refuses_to_replace_a_store_that_is_open() {
    let dir = tempfile::tempdir().unwrap();
    let storage = filled(&dir.path().join("live.redb"), 10);
    let report = storage
        .backup_to(&dir.path().join("b.redb"), &BackupMeta::now())
        .unwrap();
    let error = restore(
        &report.path,
        storage.path(),
        RestoreOptions { replace: true },
    )
    .unwrap_err();
    assert!(matches!(error, BackupError::InUse { .. }), "{error}");
    assert_eq!(all(&storage).len(), 10);
}

#[test]
fn restore_refuses_a_newer_format_and_says_which_it_reads() {
    let dir = tempfile::tempdir().unwrap();
    let storage = filled(&dir.path().join("live.redb"), 4);
    let report = storage
        .backup_to(&dir.path().join("b.redb"), &BackupMeta::now())
        .unwrap();
    // What a later build would write: a higher format version, and fields this one lacks.
    {
        let db = redb::Database::open(&report.path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut table = txn
                .open_table(redb::TableDefinition::<&str, &[u8]>::new("weft.backup.v1"))
                .unwrap();
            let json = format!(
                r#"{{"format_version":{},"weft_version":"9.0.0","layout":{{"tables":3}}}}"#,
                STORE_FORMAT_VERSION + 1
            );
            table.insert("manifest", json.as_bytes()).unwrap();
        }
        txn.commit().unwrap();
    }
    let target = dir.path().join("target.redb");
    let error = restore(&report.path, &target, RestoreOptions::default()).unwrap_err();
    match &error {
        BackupError::NewerFormat {
            path,
            found,
            supported,
            written_by,
        } => {
            assert_eq!(path, &report.path);
            assert_eq!(
                (*found, *supported),
                (STORE_FORMAT_VERSION + 1, STORE_FORMAT_VERSION)
            );
            assert_eq!(written_by, "9.0.0");
        }
        other => panic!("expected NewerFormat, got {other}"),
    }
    let message = error.to_string();
    assert!(
        message.contains(&format!(
            "this build reads store format {STORE_FORMAT_VERSION}"
        )),
        "{message}"
    );
    assert!(!target.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        2,
        "no temporary file left"
    );
}

#[test]
fn restore_refuses_a_store_that_is_not_a_backup() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.redb");
    drop(filled(&plain, 3));
    let target = dir.path().join("target.redb");
    let error = restore(&plain, &target, RestoreOptions::default()).unwrap_err();
    assert!(matches!(error, BackupError::NotABackup { .. }), "{error}");
    assert!(!target.exists());

    let junk = dir.path().join("junk");
    std::fs::write(&junk, vec![7u8; 8192]).unwrap();
    let error = restore(&junk, &target, RestoreOptions::default()).unwrap_err();
    assert!(!target.exists(), "{error}");
}

#[test]
fn restore_refuses_a_backup_whose_entries_do_not_match_its_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let storage = filled(&dir.path().join("live.redb"), 20);
    let report = storage
        .backup_to(&dir.path().join("b.redb"), &BackupMeta::now())
        .unwrap();
    // Change one value behind the manifest's back, as a tool or a bad disk might.
    {
        let db = redb::Database::open(&report.path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut table = txn
                .open_table(redb::TableDefinition::<&[u8], &[u8]>::new("weft.kv.v1"))
                .unwrap();
            table
                .insert(b"k/00007".as_slice(), b"tampered".as_slice())
                .unwrap();
        }
        txn.commit().unwrap();
    }
    let target = dir.path().join("target.redb");
    let error = restore(&report.path, &target, RestoreOptions::default()).unwrap_err();
    assert!(matches!(error, BackupError::Corrupt { .. }), "{error}");
    assert!(error.to_string().contains("checksum"), "{error}");
    assert!(!target.exists());
}
