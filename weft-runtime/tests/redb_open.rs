//! redb's own file behaviour: open, close, a second owner, a file that is not a database.
//!
//! The storage contract every backend keeps (scans, batches, conditions, races, persistence)
//! is `weft_testing::conformance`, run against memory and redb in weft-testing's
//! `tests/storage_conformance.rs`.

use weft_runtime::storage::{RedbStorage, Storage};

#[test]
fn redb_close_releases_the_file_and_create_opens_an_existing_one_without_truncating() {
    // What any durable backend keeps across a reopen is checked by
    // `weft_testing::conformance::data_persists_across_reopen`; these are redb's own calls.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weft.redb");

    let store = RedbStorage::create(&path).unwrap();
    store.put(b"first session", b"x").unwrap();
    store.close().unwrap();

    let store = RedbStorage::open(&path).unwrap();
    assert_eq!(store.path(), path.as_path());
    assert_eq!(
        store.get(b"first session").unwrap().as_deref(),
        Some(&b"x"[..])
    );
    store.put(b"second session", b"y").unwrap();
    drop(store);

    // Dropping closes too, and `create` on an existing file opens it without truncating.
    let store = RedbStorage::create(&path).unwrap();
    assert_eq!(
        store.get(b"second session").unwrap().as_deref(),
        Some(&b"y"[..])
    );
    assert_eq!(
        store.get(b"first session").unwrap().as_deref(),
        Some(&b"x"[..])
    );
}

#[test]
fn redb_open_of_missing_file_is_a_backend_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.redb");
    let error = RedbStorage::open(&path).unwrap_err();
    assert_eq!(error.code(), "storage.backend");
    let message = error.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(!path.exists(), "open must not create the file");
}

#[test]
fn redb_second_open_of_the_same_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weft.redb");
    let first = RedbStorage::create(&path).unwrap();
    let error = RedbStorage::open(&path).unwrap_err();
    // A typed error, with the fix: only one engine may own a store.
    assert_eq!(error.code(), "storage.in_use");
    assert!(
        error.to_string().contains(&path.display().to_string())
            && error
                .to_string()
                .contains("only one engine may own a store"),
        "{error}"
    );
    // The first handle is unaffected.
    first.put(b"k", b"v").unwrap();
    assert_eq!(first.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
}

#[test]
fn redb_refuses_a_file_that_is_not_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(
        &path,
        b"these are not the bytes of a redb database, not even close".repeat(100),
    )
    .unwrap();
    let error = RedbStorage::open(&path).unwrap_err();
    assert_eq!(error.code(), "storage.backend");
    assert!(
        error.to_string().contains(&path.display().to_string()),
        "{error}"
    );
}
