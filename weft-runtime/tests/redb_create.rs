//! `RedbStorage::create` is crash-safe: a process killed while creating a store never leaves a
//! file at the store's path that does not open.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use weft_runtime::storage::{RedbStorage, Storage};

/// Set for the child process of `a_kill_during_creation_leaves_no_broken_store`.
const CHILD_DIR: &str = "WEFT_REDB_CREATE_CHILD_DIR";

fn stores(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut stores: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("store-") && name.ends_with(".redb"))
        })
        .collect();
    stores.sort();
    stores
}

/// In the child process: create stores one after another until killed. Does nothing in a
/// normal test run.
#[test]
fn creating_stores_until_killed() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    for n in 0u64.. {
        let store = RedbStorage::create(dir.join(format!("store-{n:06}.redb"))).unwrap();
        store.put(b"n", &n.to_be_bytes()).unwrap();
        store.close().unwrap();
    }
}

#[test]
fn a_kill_during_creation_leaves_no_broken_store() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..5 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "creating_stores_until_killed",
                "--test-threads=1",
            ])
            .env(CHILD_DIR, dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Let it create a few stores, so the kill lands somewhere inside a creation.
        let wanted = (round + 1) * 3;
        for _ in 0..10_000 {
            if stores(dir.path()).len() >= wanted {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        // Every store at its path opens; the one being created when the kill came either is
        // complete or is not there at all (its temporary file is never opened).
        for path in stores(dir.path()) {
            let store = RedbStorage::open(&path)
                .unwrap_or_else(|e| panic!("{} does not open: {e}", path.display()));
            store.close().unwrap();
        }
        // The next creator proceeds.
        let next = dir.path().join(format!("store-next-{round}.redb"));
        RedbStorage::create(&next).unwrap().close().unwrap();
    }
}

#[test]
fn an_interrupted_creation_does_not_stop_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weft.redb");
    // What a killed creation leaves: a half-written temporary file of this process, and an
    // empty file at the path (as created by versions that built the store in place).
    let temp = dir
        .path()
        .join(format!(".weft.redb.creating-{}", std::process::id()));
    std::fs::write(&temp, b"half a header").unwrap();
    std::fs::write(&path, b"").unwrap();
    let store = RedbStorage::create(&path).unwrap();
    store.put(b"k", b"v").unwrap();
    store.close().unwrap();
    assert!(
        !temp.exists(),
        "the leftover temporary file was replaced and removed"
    );
    let store = RedbStorage::open(&path).unwrap();
    assert_eq!(store.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
    // Only the store is left in the directory.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["weft.redb"]);
}

#[test]
fn create_keeps_an_existing_store_and_refuses_a_foreign_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weft.redb");
    let store = RedbStorage::create(&path).unwrap();
    store.put(b"k", b"v").unwrap();
    store.close().unwrap();
    let store = RedbStorage::create(&path).unwrap();
    assert_eq!(store.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
    store.close().unwrap();
    // A non-empty file that is not a store is never replaced: it may be someone's data.
    let foreign = dir.path().join("notes.txt");
    std::fs::write(&foreign, b"not a database").unwrap();
    let error = RedbStorage::create(&foreign).unwrap_err();
    assert_eq!(error.code(), "storage.backend");
    assert_eq!(std::fs::read(&foreign).unwrap(), b"not a database");
}
