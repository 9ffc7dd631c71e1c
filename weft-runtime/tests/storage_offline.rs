//! Offline tools on a redb store: compaction gives purged space back and keeps every entry;
//! inspection checks integrity and the format marker without writing; both refuse a file a
//! process has open.

mod engine_support;

use engine_support::*;
use weft_runtime::engine::record;
use weft_runtime::storage::{
    Batch, OfflineError, RedbStorage, STORE_FORMAT_VERSION, Storage, compact, inspect,
};

fn key(i: u32) -> Vec<u8> {
    format!("wf/{i:06}").into_bytes()
}

fn value(i: u32) -> Vec<u8> {
    vec![(i % 251) as u8; 4096]
}

/// A store of 2,000 entries of 4 KiB, 90% of them deleted again: the file keeps its size.
fn filled_then_purged(path: &std::path::Path) {
    let storage = RedbStorage::create(path).unwrap();
    for chunk in (0..2000u32).collect::<Vec<_>>().chunks(200) {
        let mut batch = Batch::new();
        for &i in chunk {
            batch.put(key(i), value(i));
        }
        storage.apply(batch).unwrap();
    }
    let mut batch = Batch::new();
    for i in (0..2000u32).filter(|i| i % 10 != 0) {
        batch.delete(key(i));
    }
    storage.apply(batch).unwrap();
    storage.close().unwrap();
}

#[test]
fn compaction_shrinks_a_purged_store_and_keeps_every_entry() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    filled_then_purged(&path);
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size > 8 << 20, "the purge left the file at {size} bytes");
    let report = compact(&path).unwrap();
    assert_eq!(report.bytes_before, size);
    assert_eq!(report.entries, 200);
    assert!(
        report.bytes_after * 4 < report.bytes_before,
        "{} -> {} bytes",
        report.bytes_before,
        report.bytes_after
    );
    assert_eq!(std::fs::metadata(&path).unwrap().len(), report.bytes_after);
    let storage = RedbStorage::open(&path).unwrap();
    let all = storage.scan_prefix(b"wf/", None, 10_000).unwrap();
    assert_eq!(all.len(), 200);
    for (k, v) in all {
        let i: u32 = std::str::from_utf8(&k[3..]).unwrap().parse().unwrap();
        assert_eq!(i % 10, 0);
        assert_eq!(v, value(i));
    }
}

#[test]
fn offline_tools_refuse_a_store_that_is_open_and_leave_it_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    filled_then_purged(&path);
    let size = std::fs::metadata(&path).unwrap().len();
    let open = RedbStorage::open(&path).unwrap();
    let error = compact(&path).unwrap_err();
    assert_eq!(error, OfflineError::InUse { path: path.clone() });
    assert_eq!(error.code(), "offline.in_use");
    assert!(error.to_string().contains("stop the server"), "{error}");
    let error = inspect(&path, dir.path()).unwrap_err();
    assert_eq!(error, OfflineError::InUse { path: path.clone() });
    assert_eq!(std::fs::metadata(&path).unwrap().len(), size);
    drop(open);
    assert!(compact(&path).is_ok());
}

#[test]
fn wrong_paths_are_told_apart() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.redb");
    assert!(matches!(
        compact(&missing),
        Err(OfflineError::NotFound { .. })
    ));
    assert!(matches!(
        inspect(&missing, dir.path()),
        Err(OfflineError::NotFound { .. })
    ));
    let text = dir.path().join("notes.txt");
    std::fs::write(
        &text,
        "not a database, just some text that is long enough".repeat(100),
    )
    .unwrap();
    assert!(
        matches!(compact(&text), Err(OfflineError::NotAStore { .. })),
        "{:?}",
        compact(&text)
    );
    assert!(matches!(
        inspect(&text, dir.path()),
        Err(OfflineError::NotAStore { .. })
    ));
    // A redb file of something else.
    let other = dir.path().join("other.redb");
    drop(redb::Database::create(&other).unwrap());
    assert!(matches!(
        inspect(&other, dir.path()),
        Err(OfflineError::NotAStore { .. })
    ));
    assert!(matches!(
        compact(&other),
        Err(OfflineError::NotAStore { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspection_reads_the_format_marker_and_the_epoch_without_writing() {
    let dir = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    {
        let engine = engine_for::<waiter>(RedbStorage::create(&path).unwrap()).await;
        engine.shutdown().await;
    }
    let bytes = std::fs::read(&path).unwrap();
    let found = inspect(&path, scratch.path()).unwrap();
    assert!(found.closed_cleanly && found.integrity_ok, "{found:?}");
    assert_eq!(found.format_version, Some(STORE_FORMAT_VERSION));
    assert_eq!(found.supported_format, STORE_FORMAT_VERSION);
    assert!(found.format_supported());
    assert_eq!(found.owner_epoch, Some(1));
    assert!(found.entries >= 3, "{found:?}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "never written");
    assert_eq!(
        std::fs::read_dir(scratch.path()).unwrap().count(),
        0,
        "the copy is removed"
    );

    // A store of a newer release.
    let storage = RedbStorage::open(&path).unwrap();
    storage
        .put(
            record::FORMAT_KEY,
            &record::encode_store_format(STORE_FORMAT_VERSION + 1),
        )
        .unwrap();
    storage.close().unwrap();
    let found = inspect(&path, scratch.path()).unwrap();
    assert_eq!(found.format_version, Some(STORE_FORMAT_VERSION + 1));
    assert!(!found.format_supported());

    // A store from before the marker.
    let storage = RedbStorage::open(&path).unwrap();
    storage.delete(record::FORMAT_KEY).unwrap();
    storage.close().unwrap();
    let found = inspect(&path, scratch.path()).unwrap();
    assert_eq!(found.format_version, None);
    assert!(found.format_supported());
}

#[test]
fn a_damaged_store_fails_inspection() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    filled_then_purged(&path);
    let mut bytes = std::fs::read(&path).unwrap();
    // Overwrite the data pages after redb's header region.
    let len = bytes.len();
    for b in &mut bytes[len / 4..len / 2] {
        *b = 0xA5;
    }
    std::fs::write(&path, &bytes).unwrap();
    match inspect(&path, dir.path()) {
        Err(OfflineError::Corrupt { .. } | OfflineError::NotAStore { .. }) => {}
        Ok(found) => assert!(!found.integrity_ok, "{found:?}"),
        Err(other) => panic!("{other:?}"),
    }
}
