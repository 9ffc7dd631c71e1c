//! A damaged redb file is opened and read back exactly, or refused with a typed error: never a
//! panic out of `RedbStorage`, never a record silently missing or changed.
//!
//! One store is written through `RedbStorage` (several hundred keys of mixed sizes over many
//! commits, with overwrites and deletes, so the file has branch pages, freed pages and both
//! commit slots in use) and closed. Each case copies its bytes, damages the copy (a truncation,
//! a flipped bit, a zeroed page, a run of garbage; the offsets come from a fixed seed, with extra
//! weight on the header page, where redb keeps its commit slots) and opens it. A case passes
//! when either
//!
//! - the open is refused with `StorageError::Corrupt` or `StorageError::Backend`, or
//! - the open succeeds, and then: a full scan returns exactly the records written (same keys,
//!   same values, same order) or a typed error; a `get` of every written key and of a deleted
//!   one returns exactly what was written (or a typed error); a new write lands and reads back;
//!   and the store, closed and opened again, still holds every record and the new one.
//!
//! Any panic escaping a `RedbStorage` call, and any read that succeeds with something other
//! than what was written, fails the test.
//!
//! The stores commit in two phases (`RedbOptions::two_phase_commit`), the mode that promises
//! this for a file left by a crash too: with one-phase commits, damage to the newest commit slot
//! looks like a torn commit and is rolled back over (25 of 172 such cases here).

use std::collections::BTreeMap;
use std::ops::Bound;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::Mutex;

use weft_runtime::storage::{Batch, RedbOptions, RedbStorage, Storage, StorageError};

/// The options every store of this suite is written and opened with (see the module docs).
fn two_phase() -> RedbOptions {
    RedbOptions::default().two_phase_commit(true)
}

/// The seed of the damage offsets: fixed, so every run tries the same cases.
const SEED: u64 = 0x5eed_da3a_6e00_0007;

/// xorshift64*: deterministic, good enough to spread offsets.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Every key of a store and its value.
type Records = BTreeMap<Vec<u8>, Vec<u8>>;

/// Writes the base store at `path`; returns what it holds and a key it deleted. With `crash`,
/// the store is left as a killed process leaves it (never closed: no clean-shutdown mark), and
/// the bytes are read while it is still open.
fn write_base(path: &Path, crash: bool) -> (Records, Vec<u8>, Vec<u8>) {
    let storage = RedbStorage::create_with(path, two_phase()).unwrap();
    let mut expected = BTreeMap::new();
    let mut rng = Rng(SEED ^ 0xba5e);
    for commit in 0..24u32 {
        let mut batch = Batch::new();
        for n in 0..10u32 {
            let key = format!("wf/{:04}", (commit * 10 + n) % 160).into_bytes();
            // Mostly small records, some spanning most of a page, a few overflowing one.
            let len = match rng.below(10) {
                0 => 2000 + rng.below(3000),
                1..=3 => 400 + rng.below(800),
                _ => 8 + rng.below(120),
            };
            let value: Vec<u8> = (0..len).map(|i| (i as u64 ^ rng.next()) as u8).collect();
            batch.put(key.clone(), value.clone());
            expected.insert(key, value);
        }
        storage.apply(batch).unwrap();
    }
    let deleted = b"wf/0007".to_vec();
    let mut batch = Batch::new();
    batch.delete(deleted.clone());
    // The last commit is small and distinct, so a rollback to the commit before it shows.
    batch.put(b"last".to_vec(), b"commit 41".to_vec());
    storage.apply(batch).unwrap();
    expected.remove(&deleted);
    expected.insert(b"last".to_vec(), b"commit 41".to_vec());
    if crash {
        let bytes = std::fs::read(path).unwrap();
        // Leaked, not dropped: nothing more is written, as when the process is killed.
        std::mem::forget(storage);
        (expected, deleted, bytes)
    } else {
        storage.close().unwrap();
        (expected, deleted, std::fs::read(path).unwrap())
    }
}

/// How one case ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Opened, and every read that succeeded returned what was written.
    Intact,
    /// Opened; some reads failed with a typed error, none returned anything else.
    OpenedWithTypedErrors,
    /// Refused at open with `StorageError::Corrupt`.
    RefusedCorrupt,
    /// Refused at open with `StorageError::Corrupt`, made of a panic inside redb caught at the
    /// storage boundary.
    RefusedCorruptRedbPanicked,
    /// Refused at open with `StorageError::Backend` (not a redb file, say).
    RefusedBackend,
}

/// Opens the damaged copy at `path` and checks it; `Err` describes a silently changed outcome.
fn check(path: &Path, expected: &Records, deleted: &[u8]) -> Result<Outcome, String> {
    let storage = match RedbStorage::open_with(path, two_phase()) {
        Err(StorageError::Corrupt { message }) => {
            assert!(
                message.contains("restore the store from a backup"),
                "a corrupt store's error says what to do: {message}"
            );
            return Ok(if message.contains("redb panicked") {
                Outcome::RefusedCorruptRedbPanicked
            } else {
                Outcome::RefusedCorrupt
            });
        }
        Err(StorageError::Backend { .. }) => return Ok(Outcome::RefusedBackend),
        Err(other) => return Err(format!("open failed with an unexpected error: {other:?}")),
        Ok(storage) => storage,
    };
    let mut typed_errors = 0;
    match storage.scan(Bound::Unbounded, Bound::Unbounded, usize::MAX) {
        Ok(entries) => {
            let found: BTreeMap<_, _> = entries.iter().cloned().collect();
            if found.len() != entries.len() || &found != expected {
                let missing = expected.keys().filter(|k| !found.contains_key(*k)).count();
                let extra = found.keys().filter(|k| !expected.contains_key(*k)).count();
                let changed = expected
                    .iter()
                    .filter(|(k, v)| found.get(*k).is_some_and(|f| f != *v))
                    .count();
                return Err(format!(
                    "a scan succeeded with other records: {missing} missing, {extra} extra, \
                     {changed} changed"
                ));
            }
        }
        Err(_) => typed_errors += 1,
    }
    for (key, value) in expected {
        match storage.get(key) {
            Ok(Some(found)) if &found == value => {}
            Ok(found) => {
                return Err(format!(
                    "get {:?} succeeded with {} instead of the value written",
                    String::from_utf8_lossy(key),
                    if found.is_some() {
                        "another value"
                    } else {
                        "nothing"
                    }
                ));
            }
            Err(_) => typed_errors += 1,
        }
    }
    match storage.get(deleted) {
        Ok(None) => {}
        Ok(Some(_)) => return Err("a deleted key came back".into()),
        Err(_) => typed_errors += 1,
    }
    match storage.put(b"after", b"damage") {
        Ok(()) => match storage.get(b"after") {
            Ok(Some(value)) if value == b"damage" => {}
            Ok(_) => return Err("a write succeeded but reads back otherwise".into()),
            Err(_) => typed_errors += 1,
        },
        Err(_) => typed_errors += 1,
    }
    drop(storage);
    if typed_errors > 0 {
        return Ok(Outcome::OpenedWithTypedErrors);
    }
    // Closed and opened again, it holds everything, and the write made after the damage.
    match RedbStorage::open_with(path, two_phase()) {
        Ok(again) => {
            let mut want = expected.clone();
            want.insert(b"after".to_vec(), b"damage".to_vec());
            match again.scan(Bound::Unbounded, Bound::Unbounded, usize::MAX) {
                Ok(entries) if entries.iter().cloned().collect::<BTreeMap<_, _>>() == want => {
                    Ok(Outcome::Intact)
                }
                Ok(_) => Err("reopened, the store holds other records".into()),
                Err(_) => Ok(Outcome::OpenedWithTypedErrors),
            }
        }
        Err(StorageError::Corrupt { .. } | StorageError::Backend { .. }) => {
            Ok(Outcome::OpenedWithTypedErrors)
        }
        Err(other) => Err(format!("reopen failed with an unexpected error: {other:?}")),
    }
}

/// The damage done in one case.
#[derive(Debug, Clone)]
enum Damage {
    Truncate(usize),
    FlipBit(usize, u8),
    ZeroPage(usize),
    Garbage(usize, usize),
}

impl Damage {
    fn apply(&self, bytes: &mut Vec<u8>, rng: &mut Rng) {
        match *self {
            Damage::Truncate(len) => bytes.truncate(len),
            Damage::FlipBit(at, bit) => bytes[at] ^= 1 << bit,
            Damage::ZeroPage(at) => {
                let end = (at + 4096).min(bytes.len());
                bytes[at..end].fill(0);
            }
            Damage::Garbage(at, len) => {
                let end = (at + len).min(bytes.len());
                for byte in &mut bytes[at..end] {
                    *byte = rng.next() as u8;
                }
            }
        }
    }
}

/// The cases: spread over the file, with extra weight on the header page (commit slots).
fn cases(len: usize, rng: &mut Rng) -> Vec<Damage> {
    let pages = len / 4096;
    let mut cases = vec![
        Damage::Truncate(0),
        Damage::Truncate(1),
        Damage::Truncate(64),
        Damage::Truncate(512),
        Damage::Truncate(4096),
        Damage::Truncate(len - 1),
        Damage::Truncate(len - 4096),
        Damage::Truncate(len / 2),
    ];
    for _ in 0..16 {
        cases.push(Damage::Truncate(rng.below(len)));
    }
    // The header page, byte by byte in its first 512 bytes (god byte, commit slots), then at
    // random.
    for at in (0..512).step_by(16) {
        cases.push(Damage::FlipBit(at, (at % 8) as u8));
    }
    for _ in 0..24 {
        cases.push(Damage::FlipBit(rng.below(4096), rng.below(8) as u8));
    }
    for _ in 0..48 {
        cases.push(Damage::FlipBit(rng.below(len), rng.below(8) as u8));
    }
    for page in 0..pages.min(16) {
        cases.push(Damage::ZeroPage(page * 4096));
    }
    for _ in 0..16 {
        cases.push(Damage::ZeroPage(rng.below(pages) * 4096));
    }
    for _ in 0..12 {
        cases.push(Damage::Garbage(rng.below(len), 1 + rng.below(256)));
    }
    cases
}

/// The message of the last panic, printed only if it escaped.
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// redb asserts on pages it cannot make sense of (debug builds panic where release builds
/// return an error). `RedbStorage` and `restore` catch those panics; this hook keeps them off the
/// test's output, and keeps the message for the report should one escape. Installed once for
/// the whole binary, as its tests run in parallel.
fn quiet_panics() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            *LAST_PANIC.lock().unwrap_or_else(|p| p.into_inner()) = Some(info.to_string());
        }));
    });
}

#[test]
fn every_damaged_file_opens_intact_or_is_refused_with_a_typed_error() {
    damage_suite(false, SEED);
}

#[test]
fn every_damaged_file_left_by_a_crash_opens_intact_or_is_refused_with_a_typed_error() {
    damage_suite(true, SEED ^ 0xc4a5);
}

/// Runs every case over a store closed cleanly, or left by a crash (`crash`).
fn damage_suite(crash: bool, seed: u64) {
    // Each case commits a few times; on a memory file system those fsyncs cost nothing, which
    // keeps the suite to seconds. What is tested does not depend on where the file is.
    let dir = match std::fs::metadata("/dev/shm") {
        Ok(meta) if meta.is_dir() => tempfile::tempdir_in("/dev/shm").unwrap(),
        _ => tempfile::tempdir().unwrap(),
    };
    let base = dir.path().join("base.redb");
    let (expected, deleted, pristine) = write_base(&base, crash);
    let copy = dir.path().join("copy.redb");
    std::fs::write(&copy, &pristine).unwrap();
    assert_eq!(
        check(&copy, &expected, &deleted),
        Ok(Outcome::Intact),
        "the undamaged store reads back"
    );
    let pristine_len = pristine.len();

    quiet_panics();

    let mut rng = Rng(seed);
    let cases = cases(pristine_len, &mut rng);
    let mut tally: BTreeMap<String, usize> = BTreeMap::new();
    let mut escaped = Vec::new();
    let mut changed = Vec::new();
    for (n, damage) in cases.iter().enumerate() {
        let path = dir.path().join(format!("case-{n}.redb"));
        let mut bytes = pristine.clone();
        damage.apply(&mut bytes, &mut rng);
        std::fs::write(&path, &bytes).unwrap();
        match std::panic::catch_unwind(AssertUnwindSafe(|| check(&path, &expected, &deleted))) {
            Ok(Ok(outcome)) => *tally.entry(format!("{outcome:?}")).or_default() += 1,
            Ok(Err(what)) => changed.push(format!("{damage:?}: {what}")),
            Err(_) => {
                let message = LAST_PANIC.lock().unwrap().take().unwrap_or_default();
                escaped.push(format!("{damage:?}: {message}"));
            }
        }
        let _ = std::fs::remove_file(&path);
    }

    println!(
        "{} damage cases over a {pristine_len}-byte store (crashed: {crash}): {tally:?}, {} silently changed, {} \
         panics escaped",
        cases.len(),
        changed.len(),
        escaped.len()
    );
    assert!(
        escaped.is_empty(),
        "panics escaped RedbStorage:\n{}",
        escaped.join("\n")
    );
    assert!(
        changed.is_empty(),
        "damage changed what reads return without an error:\n{}",
        changed.join("\n")
    );
    // The suite must exercise both ends: files that still open, and files that are refused.
    assert!(tally.get("Intact").copied().unwrap_or(0) > 0);
    assert!(tally.get("RefusedCorrupt").copied().unwrap_or(0) > 0);
}

/// A restore copes with damage on either side: a damaged backup is refused with a typed error
/// (or, if the damage missed everything the backup holds, restored exactly), and a damaged store
/// (what a restore is often for) is replaced. No panic escapes `restore`.
#[test]
fn a_restore_refuses_a_damaged_backup_typed_and_replaces_a_damaged_store() {
    use weft_runtime::storage::{BackupError, BackupMeta, RestoreOptions, restore};
    quiet_panics();
    let dir = match std::fs::metadata("/dev/shm") {
        Ok(meta) if meta.is_dir() => tempfile::tempdir_in("/dev/shm").unwrap(),
        _ => tempfile::tempdir().unwrap(),
    };
    let (expected, _, store_bytes) = write_base(&dir.path().join("base.redb"), false);
    let backup = dir.path().join("backup.redb");
    let source = RedbStorage::open_with(dir.path().join("base.redb"), two_phase()).unwrap();
    source.backup_to(&backup, &BackupMeta::now()).unwrap();
    drop(source);
    let backup_bytes = std::fs::read(&backup).unwrap();
    let replace = RestoreOptions { replace: true };

    let restored_exactly = |target: &Path| {
        let store = RedbStorage::open_with(target, two_phase()).unwrap();
        let entries = store
            .scan(Bound::Unbounded, Bound::Unbounded, usize::MAX)
            .unwrap();
        entries.into_iter().collect::<Records>() == expected
    };

    let mut rng = Rng(SEED ^ 0xbac0);
    let (mut refused, mut restored) = (0, 0);
    for (n, damage) in cases(backup_bytes.len(), &mut rng)
        .into_iter()
        .step_by(3)
        .enumerate()
    {
        // A damaged backup, restored over nothing.
        let damaged = dir.path().join(format!("backup-{n}.redb"));
        let mut bytes = backup_bytes.clone();
        damage.apply(&mut bytes, &mut rng);
        std::fs::write(&damaged, &bytes).unwrap();
        let target = dir.path().join(format!("target-{n}.redb"));
        let outcome =
            std::panic::catch_unwind(AssertUnwindSafe(|| restore(&damaged, &target, replace)));
        match outcome {
            Err(_) => panic!(
                "{damage:?}: a panic escaped restore: {:?}",
                LAST_PANIC.lock()
            ),
            Ok(Ok(_)) => {
                assert!(
                    restored_exactly(&target),
                    "{damage:?}: restored other records"
                );
                restored += 1;
            }
            Ok(Err(
                BackupError::Corrupt { .. }
                | BackupError::NotABackup { .. }
                | BackupError::Io { .. },
            )) => {
                assert!(
                    !target.exists(),
                    "{damage:?}: a refused restore left a file"
                );
                refused += 1;
            }
            Ok(Err(other)) => panic!("{damage:?}: unexpected error {other:?}"),
        }

        // A damaged store, replaced by the good backup.
        let mut bytes = store_bytes.clone();
        damage.apply(&mut bytes, &mut rng);
        std::fs::write(&target, &bytes).unwrap();
        let outcome =
            std::panic::catch_unwind(AssertUnwindSafe(|| restore(&backup, &target, replace)));
        match outcome {
            Ok(Ok(_)) => assert!(restored_exactly(&target), "{damage:?}"),
            Ok(Err(e)) => panic!("{damage:?}: restoring over a damaged store failed: {e}"),
            Err(_) => panic!("{damage:?}: a panic escaped restore over a damaged store"),
        }
        let _ = std::fs::remove_file(&damaged);
        let _ = std::fs::remove_file(&target);
    }
    println!("damaged backups: {refused} refused typed, {restored} restored exactly");
    assert!(refused > 0);
}

/// A file damaged while a `RedbStorage` has it open (another program writing into it): redb
/// verified the pages when the store was opened, not at every read, so it may meet the damage
/// mid-call and panic on its own assertions. Every such panic is caught at the storage boundary
/// and returned as `StorageError::Corrupt`; none escapes. (What a read returns from a damaged
/// page it does not notice is beyond this layer: reopening verifies the file again.)
#[test]
fn damage_under_an_open_store_never_lets_a_redb_panic_escape() {
    use std::io::{Seek, SeekFrom, Write};
    quiet_panics();
    let dir = match std::fs::metadata("/dev/shm") {
        Ok(meta) if meta.is_dir() => tempfile::tempdir_in("/dev/shm").unwrap(),
        _ => tempfile::tempdir().unwrap(),
    };
    let (expected, _, pristine) = write_base(&dir.path().join("base.redb"), false);
    let mut rng = Rng(SEED ^ 0x09e7);
    let (mut caught, mut typed, mut escaped) = (0, 0, Vec::new());
    for n in 0..40 {
        let path = dir.path().join(format!("open-{n}.redb"));
        std::fs::write(&path, &pristine).unwrap();
        let storage = RedbStorage::open_with(&path, two_phase()).unwrap();
        // Damaged in place, under the open store: a page of zeros or of garbage.
        let page = rng.below(pristine.len() / 4096);
        let bytes: Vec<u8> = if n % 2 == 0 {
            vec![0; 4096]
        } else {
            (0..4096).map(|_| rng.next() as u8).collect()
        };
        let mut file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.seek(SeekFrom::Start((page * 4096) as u64)).unwrap();
        file.write_all(&bytes).unwrap();
        drop(file);
        let calls = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let mut errors = vec![
                storage
                    .scan(Bound::Unbounded, Bound::Unbounded, usize::MAX)
                    .err(),
            ];
            for key in expected.keys().step_by(7) {
                errors.push(storage.get(key).err());
            }
            errors.push(storage.put(b"after", b"damage").err());
            errors.into_iter().flatten().collect::<Vec<_>>()
        }));
        match calls {
            Ok(errors) => {
                for error in errors {
                    match error {
                        StorageError::Corrupt { message } if message.contains("redb panicked") => {
                            caught += 1;
                        }
                        StorageError::Corrupt { .. } | StorageError::Backend { .. } => typed += 1,
                        other => panic!("page {page}: unexpected error {other:?}"),
                    }
                }
            }
            Err(_) => escaped.push(format!("page {page}: {:?}", LAST_PANIC.lock())),
        }
        drop(storage);
        let _ = std::fs::remove_file(&path);
    }
    println!(
        "damage under an open store: {caught} redb panics caught as StorageError::Corrupt, \
         {typed} other typed errors, {} escaped",
        escaped.len()
    );
    assert!(escaped.is_empty(), "{}", escaped.join("\n"));
    // The damage was met: as caught panics in debug builds (redb's assertions are on there),
    // as typed errors in either.
    assert!(caught + typed > 0, "no call met the damage");
}
