//! The [`Storage`] contract as public checks, for any backend to run in its own tests.
//!
//! Each check is a function over a fresh, empty [`Backend`]: reads after writes, scans in byte
//! order against a model (bounds, reverse, limits, prefixes on the edges of byte order), batches
//! applied in order and all or nothing (a reader beside a writer never sees part of one),
//! conditions on a value and on absence, and compare-and-swap races with exactly one winner
//! per round and no lost update, and partition leases on top of them (one winner of a race to
//! acquire, a deposed owner fenced). A backend that passes them can carry the engine's fenced
//! writes. [`storage_conformance!`](crate::storage_conformance) turns every check into its own
//! `#[test]`, so a failure names the check:
//!
//! ```
//! mod memory {
//!     use weft_runtime::storage::MemoryStorage;
//!     use weft_testing::conformance::Backend;
//!
//!     weft_testing::storage_conformance!(Backend::new(MemoryStorage::new()));
//! }
//! ```
//!
//! A backend whose data outlives its handle also runs [`data_persists_across_reopen`], given a
//! way to open the same store again.

use std::any::Any;
use std::collections::BTreeSet;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use weft_runtime::storage::{Batch, Condition, Entry, Storage, StorageError, prefix_end};

/// A backend under test, fresh and empty, with whatever must live as long as it (say, the
/// temporary directory of its file).
pub struct Backend {
    storage: Arc<dyn Storage>,
    _keep: Option<Box<dyn Any + Send + Sync>>,
}

impl Backend {
    /// A backend with nothing else to keep alive.
    pub fn new(storage: impl Storage) -> Backend {
        Backend {
            storage: Arc::new(storage),
            _keep: None,
        }
    }

    /// Keeps `keep` alive as long as the backend (dropped after it): a temporary directory,
    /// a database that the test created.
    pub fn keeping(mut self, keep: impl Any + Send + Sync) -> Backend {
        self._keep = Some(Box::new(keep));
        self
    }

    /// The backend itself, not the `Arc` forwarding impl, so its own overrides are exercised.
    pub fn store(&self) -> &dyn Storage {
        self.storage.as_ref()
    }

    /// The backend for threads that race on it.
    pub fn shared(&self) -> Arc<dyn Storage> {
        Arc::clone(&self.storage)
    }
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend").finish_non_exhaustive()
    }
}

/// Turns every check of [`conformance`](crate::conformance) into its own `#[test]` in the
/// calling module, each on a fresh backend made by `$fresh` (an expression evaluated once per
/// test, yielding a [`Backend`](crate::conformance::Backend)). Invoke it once per backend, in a
/// module of its own.
///
/// For a backend that needs a service the machine may lack (a database server), write
/// `storage_conformance!(if available() => fresh())`: each test returns early when
/// `available()` is false, so `available` should say why (and fail instead under CI, where the
/// service must be there).
#[macro_export]
macro_rules! storage_conformance {
    // The internal arm first, then `if`: an `expr` fragment tried on them would fail hard.
    (@checks $available:expr, $fresh:expr; $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                if !$available {
                    return;
                }
                let backend: $crate::conformance::Backend = $fresh;
                $crate::conformance::$check(&backend);
            }
        )*
    };
    (if $available:expr => $fresh:expr) => {
        $crate::storage_conformance!(@checks $available, $fresh;
            read_after_write,
            get_of_missing_key,
            delete,
            scan_order,
            scan_bounds_match_a_model,
            scan_rev_matches_a_model,
            scan_limit,
            scan_prefix_paginates,
            scan_prefix_edge_prefixes,
            batch_applies_in_order,
            batch_with_failing_condition_writes_nothing,
            batch_is_seen_all_together,
            condition_on_expected_value,
            condition_on_expected_absence,
            condition_mismatch_names_the_key,
            condition_distinguishes_empty_from_absent,
            racing_conditional_batches_have_one_winner,
            racing_increments_lose_no_update,
            lease_races_have_one_winner,
            lease_takeover_fences_the_deposed_owner,
        );
    };
    ($fresh:expr) => {
        $crate::storage_conformance!(if true => $fresh);
    };
}

/// A backend whose data outlives its handle keeps every committed write, and nothing of a
/// refused batch, when it is opened again. `open` opens the same store each time it is called
/// (the first call on an empty one); the backend it returned before is dropped first.
pub fn data_persists_across_reopen(open: &dyn Fn() -> Backend) {
    let backend = open();
    let store = backend.store();
    put_all(store, EDGE_KEYS);
    store.delete(b"b").unwrap();
    let mut rejected = Batch::new();
    rejected.put(b"rejected", b"x");
    assert_condition_failed(store.apply_if(&[condition(b"a", None)], &rejected), b"a");
    let before = everything(store);
    drop(backend);

    let backend = open();
    let store = backend.store();
    assert_eq!(everything(store), before, "every committed write is kept");
    assert_eq!(store.get(b"b").unwrap(), None, "a delete is kept");
    assert_eq!(
        store.get(b"rejected").unwrap(),
        None,
        "nothing of a refused batch"
    );
    store.put(b"second session", b"y").unwrap();
    drop(backend);

    let backend = open();
    assert_eq!(
        backend.store().get(b"second session").unwrap().as_deref(),
        Some(&b"y"[..])
    );
    assert_eq!(everything(backend.store()).len(), before.len() + 1);
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn put_all(store: &dyn Storage, keys: &[&[u8]]) {
    let mut batch = Batch::new();
    for key in keys {
        batch.put(*key, value_for(key));
    }
    store.apply(batch).expect("apply the setup batch");
}

/// A value derived from the key, so a scan that pairs a key with the wrong value is caught.
fn value_for(key: &[u8]) -> Vec<u8> {
    let mut value = b"v:".to_vec();
    value.extend_from_slice(key);
    value
}

fn everything(store: &dyn Storage) -> Vec<Entry> {
    store
        .scan(Bound::Unbounded, Bound::Unbounded, usize::MAX)
        .expect("scan the whole store")
}

fn keys(entries: &[Entry]) -> Vec<Vec<u8>> {
    entries.iter().map(|(k, _)| k.clone()).collect()
}

fn condition(key: &[u8], expected: Option<&[u8]>) -> Condition {
    Condition {
        key: key.to_vec(),
        expected: expected.map(<[u8]>::to_vec),
    }
}

fn assert_condition_failed(result: Result<(), StorageError>, key: &[u8]) {
    match result {
        Err(StorageError::ConditionFailed { key: failed }) => {
            assert_eq!(failed, key, "ConditionFailed must name the failing key");
        }
        other => panic!("expected ConditionFailed on {key:?}, got {other:?}"),
    }
}

/// Keys chosen to sit on the edges of byte order: the empty key, a key and its extensions by
/// 0x00 and 0xff, and neighbours that differ in the last byte.
const EDGE_KEYS: &[&[u8]] = &[
    b"c",
    b"a",
    b"",
    b"ab",
    b"a\x00",
    b"b\xff",
    b"b",
    b"\xff",
    b"\xff\xff",
    b"a\xff\xff",
];

// ---------------------------------------------------------------------------------------------
// Single-key operations

/// A write is read back whole: overwrites, a 200 KB value, the empty key and the empty value.
pub fn read_after_write(backend: &Backend) {
    let store = backend.store();
    store.put(b"k", b"one").unwrap();
    assert_eq!(store.get(b"k").unwrap().as_deref(), Some(&b"one"[..]));
    store.put(b"k", b"two").unwrap();
    assert_eq!(store.get(b"k").unwrap().as_deref(), Some(&b"two"[..]));
    // A large value round-trips whole.
    let large: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    store.put(b"large", &large).unwrap();
    assert_eq!(store.get(b"large").unwrap(), Some(large));
    // The empty key and the empty value are ordinary.
    store.put(b"", b"").unwrap();
    assert_eq!(store.get(b"").unwrap(), Some(Vec::new()));
}

/// A missing key reads as `None`; neither a prefix nor an extension of a present key is present.
pub fn get_of_missing_key(backend: &Backend) {
    let store = backend.store();
    assert_eq!(store.get(b"absent").unwrap(), None);
    assert_eq!(store.get(b"").unwrap(), None);
    store.put(b"ab", b"x").unwrap();
    // Neither a prefix nor an extension of a present key is present.
    assert_eq!(store.get(b"a").unwrap(), None);
    assert_eq!(store.get(b"abc").unwrap(), None);
    assert_eq!(store.get(b"ab\x00").unwrap(), None);
}

/// A delete removes one key; deleting an absent key succeeds; a deleted key can be written again.
pub fn delete(backend: &Backend) {
    let store = backend.store();
    put_all(store, &[b"a", b"b", b"c"]);
    store.delete(b"b").unwrap();
    assert_eq!(store.get(b"b").unwrap(), None);
    assert_eq!(keys(&everything(store)), vec![b"a".to_vec(), b"c".to_vec()]);
    // Deleting an absent key succeeds and changes nothing.
    store.delete(b"b").unwrap();
    store.delete(b"never").unwrap();
    assert_eq!(keys(&everything(store)), vec![b"a".to_vec(), b"c".to_vec()]);
    // A deleted key can be written again.
    store.put(b"b", b"again").unwrap();
    assert_eq!(store.get(b"b").unwrap().as_deref(), Some(&b"again"[..]));
}

// ---------------------------------------------------------------------------------------------
// Scans

/// A full scan is in ascending byte order, each key with its own value.
pub fn scan_order(backend: &Backend) {
    let store = backend.store();
    put_all(store, EDGE_KEYS);
    let all = everything(store);
    let mut expected: Vec<Vec<u8>> = EDGE_KEYS.iter().map(|k| k.to_vec()).collect();
    expected.sort();
    assert_eq!(
        keys(&all),
        expected,
        "a full scan is in ascending byte order"
    );
    for (key, value) in &all {
        assert_eq!(value, &value_for(key), "each key comes with its own value");
    }
    // The literal order, spelled out once so the model above cannot hide a shared mistake.
    let literal: Vec<&[u8]> = vec![
        b"",
        b"a",
        b"a\x00",
        b"ab",
        b"a\xff\xff",
        b"b",
        b"b\xff",
        b"c",
        b"\xff",
        b"\xff\xff",
    ];
    assert_eq!(keys(&all), literal);
}

/// Every combination of start and end bound over present and absent probe keys, compared with a
/// model that filters the sorted keys one by one.
pub fn scan_bounds_match_a_model(backend: &Backend) {
    let store = backend.store();
    put_all(store, EDGE_KEYS);
    let mut stored: Vec<Vec<u8>> = EDGE_KEYS.iter().map(|k| k.to_vec()).collect();
    stored.sort();

    let mut probes: BTreeSet<Vec<u8>> = stored.iter().cloned().collect();
    for absent in [
        &b"a0"[..],
        b"aa",
        b"b\x00",
        b"bb",
        b"d",
        b"\xff\x00",
        b"\xff\xff\xff",
    ] {
        probes.insert(absent.to_vec());
    }
    let mut bounds: Vec<Bound<&[u8]>> = vec![Bound::Unbounded];
    for probe in &probes {
        bounds.push(Bound::Included(probe));
        bounds.push(Bound::Excluded(probe));
    }

    let after_start = |key: &[u8], start: Bound<&[u8]>| match start {
        Bound::Unbounded => true,
        Bound::Included(s) => key >= s,
        Bound::Excluded(s) => key > s,
    };
    let before_end = |key: &[u8], end: Bound<&[u8]>| match end {
        Bound::Unbounded => true,
        Bound::Included(e) => key <= e,
        Bound::Excluded(e) => key < e,
    };

    let mut non_empty = 0;
    for &start in &bounds {
        for &end in &bounds {
            let expected: Vec<Vec<u8>> = stored
                .iter()
                .filter(|k| after_start(k, start) && before_end(k, end))
                .cloned()
                .collect();
            let got = store
                .scan(start, end, usize::MAX)
                .unwrap_or_else(|e| panic!("scan({start:?}, {end:?}) failed: {e}"));
            assert_eq!(keys(&got), expected, "scan({start:?}, {end:?})");
            non_empty += usize::from(!expected.is_empty());
        }
    }
    // Guard against a probe set that makes every range empty.
    assert!(non_empty > bounds.len());

    // A few cases spelled out.
    let scan = |start, end| keys(&store.scan(start, end, usize::MAX).unwrap());
    assert_eq!(
        scan(Bound::Included(b"a"), Bound::Excluded(b"b")),
        vec![
            b"a".to_vec(),
            b"a\x00".to_vec(),
            b"ab".to_vec(),
            b"a\xff\xff".to_vec()
        ]
    );
    assert_eq!(
        scan(Bound::Excluded(b"a"), Bound::Included(b"b")),
        vec![
            b"a\x00".to_vec(),
            b"ab".to_vec(),
            b"a\xff\xff".to_vec(),
            b"b".to_vec()
        ]
    );
    assert_eq!(
        scan(Bound::Unbounded, Bound::Excluded(b"a")),
        vec![Vec::<u8>::new()]
    );
    assert!(scan(Bound::Included(b"c"), Bound::Included(b"a")).is_empty());
    assert!(scan(Bound::Excluded(b"b"), Bound::Excluded(b"b")).is_empty());
    assert_eq!(
        scan(Bound::Included(b"b"), Bound::Included(b"b")),
        vec![b"b".to_vec()]
    );
}

/// A reverse scan returns what the forward scan of the same bounds returns, newest (largest)
/// key first, cut at `limit`: so a listing newest first pages through an index backwards.
pub fn scan_rev_matches_a_model(backend: &Backend) {
    let store = backend.store();
    put_all(store, EDGE_KEYS);
    let mut probes: BTreeSet<Vec<u8>> = EDGE_KEYS.iter().map(|k| k.to_vec()).collect();
    for absent in [&b"a0"[..], b"bb", b"\xff\x00"] {
        probes.insert(absent.to_vec());
    }
    let mut bounds: Vec<Bound<&[u8]>> = vec![Bound::Unbounded];
    for probe in &probes {
        bounds.push(Bound::Included(probe));
        bounds.push(Bound::Excluded(probe));
    }
    let mut non_empty = 0;
    for &start in &bounds {
        for &end in &bounds {
            let mut expected = store.scan(start, end, usize::MAX).unwrap();
            expected.reverse();
            for limit in [0, 1, 2, usize::MAX] {
                let got = store
                    .scan_rev(start, end, limit)
                    .unwrap_or_else(|e| panic!("scan_rev({start:?}, {end:?}) failed: {e}"));
                let wanted: Vec<Entry> = expected.iter().take(limit).cloned().collect();
                assert_eq!(got, wanted, "scan_rev({start:?}, {end:?}, {limit})");
            }
            non_empty += usize::from(!expected.is_empty());
        }
    }
    assert!(non_empty > bounds.len());
}

/// A scan returns at most `limit` entries, the first ones in order.
pub fn scan_limit(backend: &Backend) {
    let store = backend.store();
    let names: Vec<Vec<u8>> = (0..20u8).map(|i| vec![b'k', i]).collect();
    let refs: Vec<&[u8]> = names.iter().map(Vec::as_slice).collect();
    put_all(store, &refs);

    assert!(
        store
            .scan(Bound::Unbounded, Bound::Unbounded, 0)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        keys(&store.scan(Bound::Unbounded, Bound::Unbounded, 3).unwrap()),
        names[..3].to_vec(),
        "the limit keeps the smallest keys"
    );
    assert_eq!(
        keys(
            &store
                .scan(Bound::Unbounded, Bound::Unbounded, 1000)
                .unwrap()
        ),
        names,
        "a limit above the count returns everything"
    );
    assert_eq!(
        keys(
            &store
                .scan(Bound::Excluded(&names[5]), Bound::Included(&names[15]), 4)
                .unwrap()
        ),
        names[6..10].to_vec(),
        "the limit applies after the start bound"
    );
}

/// `scan_prefix` pages through exactly the keys under a prefix, resuming after the last one seen.
pub fn scan_prefix_paginates(backend: &Backend) {
    let store = backend.store();
    // `wf/` keys, with neighbours on both sides that must stay out of the prefix scan.
    let mut inside: Vec<Vec<u8>> = (0..23u8)
        .map(|i| [b"wf/".as_slice(), &[i * 11]].concat())
        .collect();
    inside.push(b"wf/".to_vec());
    inside.push(b"wf/\xff\xff".to_vec());
    let outside: Vec<&[u8]> = vec![b"we\xff", b"wf", b"wf.", b"wf0", b"wg", b""];
    let mut all: Vec<&[u8]> = inside.iter().map(Vec::as_slice).collect();
    all.extend(&outside);
    put_all(store, &all);
    inside.sort();

    let first = store.scan_prefix(b"wf/", None, usize::MAX).unwrap();
    assert_eq!(
        keys(&first),
        inside,
        "scan_prefix returns exactly the prefixed keys, in order"
    );

    for page_size in [1, 2, 7, 25, 100] {
        let mut collected = Vec::new();
        let mut cursor: Option<Vec<u8>> = None;
        let mut pages = 0;
        loop {
            let page = store
                .scan_prefix(b"wf/", cursor.as_deref(), page_size)
                .unwrap();
            assert!(page.len() <= page_size);
            pages += 1;
            assert!(pages <= inside.len() + 1, "pagination must terminate");
            let Some((last, _)) = page.last() else { break };
            cursor = Some(last.clone());
            let full = page.len() == page_size;
            collected.extend(keys(&page));
            if !full {
                break;
            }
        }
        assert_eq!(
            collected, inside,
            "pages of {page_size} cover the prefix once, in order"
        );
    }

    // start_after a key that is not stored resumes after where it would be.
    let resumed = store.scan_prefix(b"wf/", Some(b"wf/\x0c"), 2).unwrap();
    assert_eq!(
        keys(&resumed),
        vec![b"wf/\x16".to_vec(), b"wf/\x21".to_vec()]
    );
}

/// Prefixes on the edges of byte order (empty, `0xff`, `0xff 0xff`) select exactly their keys.
pub fn scan_prefix_edge_prefixes(backend: &Backend) {
    let store = backend.store();
    put_all(
        store,
        &[
            b"",
            b"a",
            b"\xfe\xff",
            b"\xff",
            b"\xff\xff",
            b"\xff\xff\x00",
            b"\xff\xff\xff",
        ],
    );
    // The empty prefix covers everything.
    assert_eq!(
        store.scan_prefix(b"", None, usize::MAX).unwrap(),
        everything(store)
    );
    // An all-0xff prefix has no upper bound key, and must still stop at the end of the prefix.
    assert_eq!(prefix_end(b"\xff\xff"), None);
    assert_eq!(
        keys(&store.scan_prefix(b"\xff\xff", None, usize::MAX).unwrap()),
        vec![
            b"\xff\xff".to_vec(),
            b"\xff\xff\x00".to_vec(),
            b"\xff\xff\xff".to_vec()
        ]
    );
    assert_eq!(
        keys(
            &store
                .scan_prefix(b"\xff\xff", Some(b"\xff\xff"), usize::MAX)
                .unwrap()
        ),
        vec![b"\xff\xff\x00".to_vec(), b"\xff\xff\xff".to_vec()]
    );
    // A prefix ending in 0xff carries into the previous byte.
    assert_eq!(
        keys(&store.scan_prefix(b"\xfe\xff", None, usize::MAX).unwrap()),
        vec![b"\xfe\xff".to_vec()]
    );
    // A prefix nothing starts with.
    assert!(
        store
            .scan_prefix(b"zz", None, usize::MAX)
            .unwrap()
            .is_empty()
    );
}

// ---------------------------------------------------------------------------------------------
// Batches

/// A batch's writes apply in order: a later write to a key wins over an earlier one.
pub fn batch_applies_in_order(backend: &Backend) {
    let store = backend.store();
    store.put(b"existing", b"old").unwrap();
    let mut batch = Batch::new();
    batch
        .put(b"put-then-delete", b"x")
        .delete(b"put-then-delete")
        .delete(b"delete-then-put")
        .put(b"delete-then-put", b"y")
        .put(b"twice", b"first")
        .put(b"twice", b"second")
        .delete(b"existing");
    store.apply(batch).unwrap();
    assert_eq!(store.get(b"put-then-delete").unwrap(), None);
    assert_eq!(
        store.get(b"delete-then-put").unwrap().as_deref(),
        Some(&b"y"[..])
    );
    assert_eq!(
        store.get(b"twice").unwrap().as_deref(),
        Some(&b"second"[..])
    );
    assert_eq!(store.get(b"existing").unwrap(), None);
    // An empty batch is accepted and changes nothing.
    let before = everything(store);
    store.apply(Batch::new()).unwrap();
    assert_eq!(everything(store), before);
}

/// A batch whose condition fails writes none of its writes.
pub fn batch_with_failing_condition_writes_nothing(backend: &Backend) {
    let store = backend.store();
    put_all(store, &[b"epoch", b"keep-1", b"keep-2"]);
    let before = everything(store);

    let mut batch = Batch::new();
    for i in 0..500u32 {
        batch.put(format!("new/{i:04}"), i.to_le_bytes());
    }
    batch.delete(b"keep-1").put(b"keep-2", b"overwritten");
    let result = store.apply_if(&[condition(b"epoch", Some(b"not the value"))], &batch);
    assert_condition_failed(result, b"epoch");
    assert_eq!(
        everything(store),
        before,
        "a failed conditional batch writes nothing"
    );

    // The store is still usable afterwards.
    store.put(b"after", b"ok").unwrap();
    assert_eq!(store.get(b"after").unwrap().as_deref(), Some(&b"ok"[..]));
}

/// A reader running beside a writer never sees part of a batch: every batch rewrites all keys of
/// a group with its generation number, so a scan that mixes generations saw a torn batch.
pub fn batch_is_seen_all_together(backend: &Backend) {
    const KEYS: u32 = 64;
    const GENERATIONS: u32 = 40;
    let write_generation = |store: &dyn Storage, generation: u32| {
        let mut batch = Batch::new();
        for i in 0..KEYS {
            batch.put(format!("group/{i:03}"), generation.to_le_bytes());
        }
        store.apply(batch).unwrap();
    };
    write_generation(backend.store(), 0);

    let done = AtomicBool::new(false);
    let scans = thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let mut scans = 0u32;
            let mut last_seen = 0u32;
            // Keep reading until the writer is finished, then once more.
            loop {
                let finished = done.load(Ordering::Acquire);
                let entries = backend
                    .store()
                    .scan_prefix(b"group/", None, usize::MAX)
                    .unwrap();
                assert_eq!(
                    entries.len(),
                    KEYS as usize,
                    "a batch's keys appear together"
                );
                let generation = u32::from_le_bytes(entries[0].1.as_slice().try_into().unwrap());
                for (key, value) in &entries {
                    assert_eq!(
                        value.as_slice(),
                        generation.to_le_bytes(),
                        "key {key:?} is from another batch than the first key: a torn read"
                    );
                }
                assert!(generation >= last_seen, "reads never go back in time");
                last_seen = generation;
                scans += 1;
                if finished {
                    assert_eq!(last_seen, GENERATIONS, "the last read sees the last batch");
                    return scans;
                }
            }
        });
        for generation in 1..=GENERATIONS {
            write_generation(backend.store(), generation);
        }
        done.store(true, Ordering::Release);
        reader.join().unwrap()
    });
    assert!(scans >= 1);
}

// ---------------------------------------------------------------------------------------------
// Conditional batches

/// A condition on a value holds only while the key has exactly that value.
pub fn condition_on_expected_value(backend: &Backend) {
    let store = backend.store();
    store.put(b"epoch", b"1").unwrap();
    let mut batch = Batch::new();
    batch.put(b"epoch", b"2").put(b"state", b"s2");
    store
        .apply_if(&[condition(b"epoch", Some(b"1"))], &batch)
        .expect("the condition holds, so the batch applies");
    assert_eq!(store.get(b"epoch").unwrap().as_deref(), Some(&b"2"[..]));
    assert_eq!(store.get(b"state").unwrap().as_deref(), Some(&b"s2"[..]));

    // Several conditions, all holding.
    let mut batch = Batch::new();
    batch.delete(b"state");
    store
        .apply_if(
            &[
                condition(b"epoch", Some(b"2")),
                condition(b"state", Some(b"s2")),
            ],
            &batch,
        )
        .unwrap();
    assert_eq!(store.get(b"state").unwrap(), None);
}

/// A condition on absence holds only while the key is absent.
pub fn condition_on_expected_absence(backend: &Backend) {
    let store = backend.store();
    let mut batch = Batch::new();
    batch.put(b"claim", b"me");
    store
        .apply_if(&[condition(b"claim", None)], &batch)
        .expect("the key is absent, so the batch applies");
    assert_eq!(store.get(b"claim").unwrap().as_deref(), Some(&b"me"[..]));

    // Now present: the same claim fails and writes nothing.
    let mut batch = Batch::new();
    batch.put(b"claim", b"you").put(b"side", b"effect");
    assert_condition_failed(
        store.apply_if(&[condition(b"claim", None)], &batch),
        b"claim",
    );
    assert_eq!(store.get(b"claim").unwrap().as_deref(), Some(&b"me"[..]));
    assert_eq!(store.get(b"side").unwrap(), None);

    // After a delete the key is absent again.
    store.delete(b"claim").unwrap();
    let mut batch = Batch::new();
    batch.put(b"claim", b"you");
    store
        .apply_if(&[condition(b"claim", None)], &batch)
        .unwrap();
    assert_eq!(store.get(b"claim").unwrap().as_deref(), Some(&b"you"[..]));
}

/// A failed condition's error names the key whose condition failed.
pub fn condition_mismatch_names_the_key(backend: &Backend) {
    let store = backend.store();
    put_all(store, &[b"a", b"b"]);
    let before = everything(store);

    // The second condition is the one that fails.
    let mut batch = Batch::new();
    batch.put(b"c", b"new").delete(b"a");
    let result = store.apply_if(
        &[
            condition(b"a", Some(&value_for(b"a"))),
            condition(b"b", Some(b"wrong")),
        ],
        &batch,
    );
    let error = result.clone().unwrap_err();
    assert_eq!(error.code(), "storage.condition_failed");
    assert_condition_failed(result, b"b");
    assert_eq!(everything(store), before);

    // A value expected where the key is absent fails too.
    assert_condition_failed(
        store.apply_if(&[condition(b"missing", Some(b"x"))], &batch),
        b"missing",
    );
    assert_eq!(everything(store), before);
}

/// An empty value is present: a condition on absence fails on it, and one on the empty value fails on an absent key.
pub fn condition_distinguishes_empty_from_absent(backend: &Backend) {
    let store = backend.store();
    store.put(b"k", b"").unwrap();
    let mut batch = Batch::new();
    batch.put(b"k", b"next");
    assert_condition_failed(store.apply_if(&[condition(b"k", None)], &batch), b"k");
    store
        .apply_if(&[condition(b"k", Some(b""))], &batch)
        .unwrap();
    assert_eq!(store.get(b"k").unwrap().as_deref(), Some(&b"next"[..]));

    let mut batch = Batch::new();
    batch.put(b"absent", b"x");
    assert_condition_failed(
        store.apply_if(&[condition(b"absent", Some(b""))], &batch),
        b"absent",
    );
}

/// Many threads race the same compare-and-swap; exactly one may win each round.
pub fn racing_conditional_batches_have_one_winner(backend: &Backend) {
    const THREADS: usize = 8;
    const ROUNDS: u32 = 10;
    backend.store().put(b"epoch", &0u32.to_le_bytes()).unwrap();

    for round in 0..ROUNDS {
        let barrier = Barrier::new(THREADS);
        let results: Vec<Result<(), StorageError>> = thread::scope(|scope| {
            let handles: Vec<_> = (0..THREADS)
                .map(|id| {
                    let storage = backend.shared();
                    let barrier = &barrier;
                    scope.spawn(move || {
                        let mut batch = Batch::new();
                        batch
                            .put(b"epoch", (round + 1).to_le_bytes())
                            .put(b"owner", id.to_le_bytes())
                            .put(format!("won/{round}/{id}"), b"");
                        barrier.wait();
                        storage.apply_if(&[condition(b"epoch", Some(&round.to_le_bytes()))], &batch)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });

        let winners: Vec<usize> = (0..THREADS).filter(|&id| results[id].is_ok()).collect();
        assert_eq!(
            winners.len(),
            1,
            "round {round}: exactly one winner, got {results:?}"
        );
        for result in results.iter().filter(|r| r.is_err()) {
            assert_condition_failed(result.clone(), b"epoch");
        }
        let store = backend.store();
        let winner = winners[0];
        assert_eq!(
            store.get(b"epoch").unwrap(),
            Some((round + 1).to_le_bytes().to_vec())
        );
        assert_eq!(
            store.get(b"owner").unwrap(),
            Some(winner.to_le_bytes().to_vec())
        );
        let marks = store
            .scan_prefix(format!("won/{round}/").as_bytes(), None, usize::MAX)
            .unwrap();
        assert_eq!(
            keys(&marks),
            vec![format!("won/{round}/{winner}").into_bytes()],
            "round {round}: only the winner's writes landed"
        );
    }
}

/// Threads increment one counter by read, then compare-and-swap, retrying on conflict. A lost
/// update (two swaps from the same old value both succeeding) leaves the counter short.
pub fn racing_increments_lose_no_update(backend: &Backend) {
    const THREADS: u64 = 4;
    const INCREMENTS: u64 = 15;
    backend
        .store()
        .put(b"counter", &0u64.to_le_bytes())
        .unwrap();
    let barrier = Barrier::new(THREADS as usize);
    let conflicts: u64 = thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let storage = backend.shared();
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    let mut conflicts = 0u64;
                    let mut done = 0;
                    while done < INCREMENTS {
                        let old = storage.get(b"counter").unwrap().unwrap();
                        let next = u64::from_le_bytes(old.as_slice().try_into().unwrap()) + 1;
                        let mut batch = Batch::new();
                        batch.put(b"counter", next.to_le_bytes());
                        match storage.apply_if(&[condition(b"counter", Some(&old))], &batch) {
                            Ok(()) => done += 1,
                            Err(StorageError::ConditionFailed { key }) => {
                                assert_eq!(key, b"counter");
                                conflicts += 1;
                            }
                            Err(other) => panic!("unexpected error: {other}"),
                        }
                    }
                    conflicts
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let counter = backend.store().get(b"counter").unwrap().unwrap();
    assert_eq!(
        u64::from_le_bytes(counter.as_slice().try_into().unwrap()),
        THREADS * INCREMENTS,
        "every successful swap counted exactly once ({conflicts} conflicts retried)"
    );
}

/// Engines racing to acquire one partition's lease (see [`weft_runtime::engine::lease`]): in
/// each round, of eight acquirers exactly one takes it, under an epoch one newer than the
/// round before, and every other one is told who holds it; writes fenced on an earlier
/// round's lease are refused, the winner's land.
pub fn lease_races_have_one_winner(backend: &Backend) {
    use weft_runtime::engine::lease::{self, Acquired};
    use weft_runtime::engine::partition::Partition;
    const THREADS: usize = 8;
    const ROUNDS: u64 = 5;
    const TTL: u64 = 1_000;
    let mut previous: Option<lease::Lease> = None;
    for round in 0..ROUNDS {
        // Each round starts after the last round's lease lapsed.
        let now = round * TTL;
        let barrier = Barrier::new(THREADS);
        let results: Vec<Acquired> = thread::scope(|scope| {
            let handles: Vec<_> = (0..THREADS)
                .map(|id| {
                    let storage = backend.shared();
                    let barrier = &barrier;
                    scope.spawn(move || {
                        barrier.wait();
                        // A loser that saw the lease change twice under it may say so; it
                        // then reads what won, as an engine's next heartbeat would.
                        match lease::acquire(
                            &*storage,
                            Partition(3),
                            &format!("node-{id}"),
                            now,
                            TTL,
                        ) {
                            Err(lease::LeaseError::Contended { .. }) => {
                                let stored = lease::read(&*storage, Partition(3)).unwrap().unwrap();
                                Acquired::Held {
                                    owner: stored.owner,
                                    epoch: stored.epoch,
                                    expires_ms: stored.expires_ms,
                                }
                            }
                            other => other.unwrap(),
                        }
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let winners: Vec<&lease::Lease> = results
            .iter()
            .filter_map(|r| match r {
                Acquired::Taken(lease) => Some(lease),
                Acquired::Held { .. } => None,
            })
            .collect();
        assert_eq!(
            winners.len(),
            1,
            "round {round}: one winner, got {results:?}"
        );
        let winner = winners[0].clone();
        assert_eq!(
            winner.epoch,
            round + 1,
            "round {round}: one epoch per round"
        );
        for result in &results {
            if let Acquired::Held { owner, epoch, .. } = result {
                assert_eq!((owner, *epoch), (&winner.owner, winner.epoch));
            }
        }
        let stored = lease::read(backend.store(), Partition(3)).unwrap().unwrap();
        assert_eq!(
            (stored.owner.as_str(), stored.epoch),
            (winner.owner.as_str(), winner.epoch)
        );

        let mut write = Batch::new();
        write.put(format!("wf/{round}"), b"x");
        if let Some(previous) = &previous {
            assert_condition_failed(
                backend.store().apply_if(&[lease::fence(previous)], &write),
                &lease::lease_epoch_key(Partition(3)),
            );
        }
        backend
            .store()
            .apply_if(&[lease::fence(&winner)], &write)
            .unwrap();
        previous = Some(winner);
    }
}

/// A lease's life on the backend: renewed by its owner (its fence unchanged), refused to
/// others until it lapses, then taken over with a newer epoch that refuses the deposed
/// owner's renewals and writes; released, it is taken at once.
pub fn lease_takeover_fences_the_deposed_owner(backend: &Backend) {
    use weft_runtime::engine::lease::{self, Acquired, LeaseError};
    use weft_runtime::engine::partition::Partition;
    const TTL: u64 = 1_000;
    let store = backend.store();
    let Acquired::Taken(mut first) = lease::acquire(store, Partition(0), "a", 0, TTL).unwrap()
    else {
        panic!("a free partition is taken");
    };
    lease::renew(store, &mut first, 500, TTL).unwrap();
    assert_eq!(first.expires_ms, 1_500);
    assert!(matches!(
        lease::acquire(store, Partition(0), "b", 1_499, TTL).unwrap(),
        Acquired::Held { ref owner, epoch: 1, expires_ms: 1_500 } if owner == "a"
    ));
    let mut write = Batch::new();
    write.put(b"wf/x", b"a");
    store.apply_if(&[lease::fence(&first)], &write).unwrap();

    let Acquired::Taken(second) = lease::acquire(store, Partition(0), "b", 1_500, TTL).unwrap()
    else {
        panic!("a lapsed lease is taken over");
    };
    assert_eq!(second.epoch, 2);
    let mut deposed = first.clone();
    assert!(matches!(
        lease::renew(store, &mut deposed, 1_501, TTL),
        Err(LeaseError::Lost { epoch: 1, .. })
    ));
    assert_condition_failed(
        store.apply_if(&[lease::fence(&first)], &write),
        &lease::lease_epoch_key(Partition(0)),
    );
    assert_eq!(store.get(b"wf/x").unwrap().as_deref(), Some(&b"a"[..]));

    lease::release(store, &second).unwrap();
    let Acquired::Taken(third) = lease::acquire(store, Partition(0), "c", 1_502, TTL).unwrap()
    else {
        panic!("a released lease is taken at once");
    };
    assert_eq!(third.epoch, 3);
}
