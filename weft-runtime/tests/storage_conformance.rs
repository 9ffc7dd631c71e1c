//! The `Storage` contract, checked the same way against every backend.
//!
//! Each check is a plain function over a [`Fixture`]; `conformance_suite!` turns every
//! (backend, check) pair into its own `#[test]`, so a failure names both. To add a backend, add a
//! fixture constructor and its name to the `backends` list; to add a check, write the function
//! and add its name to the `checks` list. Facts that only one backend can have (a file that
//! survives a reopen) are tested after the suite.

use std::collections::BTreeSet;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use weft_runtime::storage::{
    Batch, Condition, Entry, MemoryStorage, RedbStorage, Storage, StorageError, prefix_end,
};

/// A backend under test, with whatever must outlive it (the redb file's directory).
struct Fixture {
    storage: Arc<dyn Storage>,
    _dir: Option<tempfile::TempDir>,
}

impl Fixture {
    /// The backend itself, not the `Arc` forwarding impl, so its own overrides are exercised.
    fn store(&self) -> &dyn Storage {
        self.storage.as_ref()
    }
}

fn memory() -> Fixture {
    Fixture {
        storage: Arc::new(MemoryStorage::new()),
        _dir: None,
    }
}

fn redb() -> Fixture {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let storage = RedbStorage::create(dir.path().join("weft.redb")).expect("create a redb store");
    Fixture {
        storage: Arc::new(storage),
        _dir: Some(dir),
    }
}

macro_rules! conformance_suite {
    (backends: [$($backend:ident),* $(,)?], checks: $checks:tt $(,)?) => {
        $( conformance_suite!(@backend $backend $checks); )*
    };
    (@backend $backend:ident [$($check:ident),* $(,)?]) => {
        mod $backend {
            $(
                #[test]
                fn $check() {
                    let fixture = super::$backend();
                    super::$check(&fixture);
                }
            )*
        }
    };
}

conformance_suite! {
    backends: [memory, redb],
    checks: [
        read_after_write,
        get_of_missing_key,
        delete,
        scan_order,
        scan_bounds_match_a_model,
        scan_limit,
        scan_rev_matches_a_model,
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
    ],
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

fn read_after_write(fixture: &Fixture) {
    let store = fixture.store();
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

fn get_of_missing_key(fixture: &Fixture) {
    let store = fixture.store();
    assert_eq!(store.get(b"absent").unwrap(), None);
    assert_eq!(store.get(b"").unwrap(), None);
    store.put(b"ab", b"x").unwrap();
    // Neither a prefix nor an extension of a present key is present.
    assert_eq!(store.get(b"a").unwrap(), None);
    assert_eq!(store.get(b"abc").unwrap(), None);
    assert_eq!(store.get(b"ab\x00").unwrap(), None);
}

fn delete(fixture: &Fixture) {
    let store = fixture.store();
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

fn scan_order(fixture: &Fixture) {
    let store = fixture.store();
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
fn scan_bounds_match_a_model(fixture: &Fixture) {
    let store = fixture.store();
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
fn scan_rev_matches_a_model(fixture: &Fixture) {
    let store = fixture.store();
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

fn scan_limit(fixture: &Fixture) {
    let store = fixture.store();
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

fn scan_prefix_paginates(fixture: &Fixture) {
    let store = fixture.store();
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

fn scan_prefix_edge_prefixes(fixture: &Fixture) {
    let store = fixture.store();
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

fn batch_applies_in_order(fixture: &Fixture) {
    let store = fixture.store();
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

fn batch_with_failing_condition_writes_nothing(fixture: &Fixture) {
    let store = fixture.store();
    put_all(store, &[b"epoch", b"keep-1", b"keep-2"]);
    let before = everything(store);

    let mut batch = Batch::new();
    for i in 0..500u32 {
        batch.put(format!("new/{i:04}"), i.to_le_bytes());
    }
    batch.delete(b"keep-1").put(b"keep-2", b"overwritten");
    let result = store.apply_if(&[condition(b"epoch", Some(b"not the value"))], batch);
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
fn batch_is_seen_all_together(fixture: &Fixture) {
    const KEYS: u32 = 64;
    const GENERATIONS: u32 = 40;
    let write_generation = |store: &dyn Storage, generation: u32| {
        let mut batch = Batch::new();
        for i in 0..KEYS {
            batch.put(format!("group/{i:03}"), generation.to_le_bytes());
        }
        store.apply(batch).unwrap();
    };
    write_generation(fixture.store(), 0);

    let done = AtomicBool::new(false);
    let scans = thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let mut scans = 0u32;
            let mut last_seen = 0u32;
            // Keep reading until the writer is finished, then once more.
            loop {
                let finished = done.load(Ordering::Acquire);
                let entries = fixture
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
            write_generation(fixture.store(), generation);
        }
        done.store(true, Ordering::Release);
        reader.join().unwrap()
    });
    assert!(scans >= 1);
}

// ---------------------------------------------------------------------------------------------
// Conditional batches

fn condition_on_expected_value(fixture: &Fixture) {
    let store = fixture.store();
    store.put(b"epoch", b"1").unwrap();
    let mut batch = Batch::new();
    batch.put(b"epoch", b"2").put(b"state", b"s2");
    store
        .apply_if(&[condition(b"epoch", Some(b"1"))], batch)
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
            batch,
        )
        .unwrap();
    assert_eq!(store.get(b"state").unwrap(), None);
}

fn condition_on_expected_absence(fixture: &Fixture) {
    let store = fixture.store();
    let mut batch = Batch::new();
    batch.put(b"claim", b"me");
    store
        .apply_if(&[condition(b"claim", None)], batch)
        .expect("the key is absent, so the batch applies");
    assert_eq!(store.get(b"claim").unwrap().as_deref(), Some(&b"me"[..]));

    // Now present: the same claim fails and writes nothing.
    let mut batch = Batch::new();
    batch.put(b"claim", b"you").put(b"side", b"effect");
    assert_condition_failed(
        store.apply_if(&[condition(b"claim", None)], batch),
        b"claim",
    );
    assert_eq!(store.get(b"claim").unwrap().as_deref(), Some(&b"me"[..]));
    assert_eq!(store.get(b"side").unwrap(), None);

    // After a delete the key is absent again.
    store.delete(b"claim").unwrap();
    let mut batch = Batch::new();
    batch.put(b"claim", b"you");
    store.apply_if(&[condition(b"claim", None)], batch).unwrap();
    assert_eq!(store.get(b"claim").unwrap().as_deref(), Some(&b"you"[..]));
}

fn condition_mismatch_names_the_key(fixture: &Fixture) {
    let store = fixture.store();
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
        batch.clone(),
    );
    let error = result.clone().unwrap_err();
    assert_eq!(error.code(), "storage.condition_failed");
    assert_condition_failed(result, b"b");
    assert_eq!(everything(store), before);

    // A value expected where the key is absent fails too.
    assert_condition_failed(
        store.apply_if(&[condition(b"missing", Some(b"x"))], batch),
        b"missing",
    );
    assert_eq!(everything(store), before);
}

fn condition_distinguishes_empty_from_absent(fixture: &Fixture) {
    let store = fixture.store();
    store.put(b"k", b"").unwrap();
    let mut batch = Batch::new();
    batch.put(b"k", b"next");
    assert_condition_failed(
        store.apply_if(&[condition(b"k", None)], batch.clone()),
        b"k",
    );
    store
        .apply_if(&[condition(b"k", Some(b""))], batch)
        .unwrap();
    assert_eq!(store.get(b"k").unwrap().as_deref(), Some(&b"next"[..]));

    let mut batch = Batch::new();
    batch.put(b"absent", b"x");
    assert_condition_failed(
        store.apply_if(&[condition(b"absent", Some(b""))], batch),
        b"absent",
    );
}

/// Many threads race the same compare-and-swap; exactly one may win each round.
fn racing_conditional_batches_have_one_winner(fixture: &Fixture) {
    const THREADS: usize = 8;
    const ROUNDS: u32 = 10;
    fixture.store().put(b"epoch", &0u32.to_le_bytes()).unwrap();

    for round in 0..ROUNDS {
        let barrier = Barrier::new(THREADS);
        let results: Vec<Result<(), StorageError>> = thread::scope(|scope| {
            let handles: Vec<_> = (0..THREADS)
                .map(|id| {
                    let storage = Arc::clone(&fixture.storage);
                    let barrier = &barrier;
                    scope.spawn(move || {
                        let mut batch = Batch::new();
                        batch
                            .put(b"epoch", (round + 1).to_le_bytes())
                            .put(b"owner", id.to_le_bytes())
                            .put(format!("won/{round}/{id}"), b"");
                        barrier.wait();
                        storage.apply_if(&[condition(b"epoch", Some(&round.to_le_bytes()))], batch)
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
        let store = fixture.store();
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
fn racing_increments_lose_no_update(fixture: &Fixture) {
    const THREADS: u64 = 4;
    const INCREMENTS: u64 = 15;
    fixture
        .store()
        .put(b"counter", &0u64.to_le_bytes())
        .unwrap();
    let barrier = Barrier::new(THREADS as usize);
    let conflicts: u64 = thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let storage = Arc::clone(&fixture.storage);
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
                        match storage.apply_if(&[condition(b"counter", Some(&old))], batch) {
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
    let counter = fixture.store().get(b"counter").unwrap().unwrap();
    assert_eq!(
        u64::from_le_bytes(counter.as_slice().try_into().unwrap()),
        THREADS * INCREMENTS,
        "every successful swap counted exactly once ({conflicts} conflicts retried)"
    );
}

// ---------------------------------------------------------------------------------------------
// redb only: the file

#[test]
fn redb_data_persists_across_close_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weft.redb");

    let store = RedbStorage::create(&path).unwrap();
    put_all(&store, EDGE_KEYS);
    store.delete(b"b").unwrap();
    let mut rejected = Batch::new();
    rejected.put(b"rejected", b"x");
    assert_condition_failed(
        store.apply_if(&[condition(b"a", None)], rejected.clone()),
        b"a",
    );
    let before = everything(&store);
    store.close().unwrap();

    // Reopened with `open`: the same entries, and nothing of the rejected batch.
    let store = RedbStorage::open(&path).unwrap();
    assert_eq!(store.path(), path.as_path());
    assert_eq!(everything(&store), before);
    assert_eq!(store.get(b"b").unwrap(), None);
    assert_eq!(store.get(b"rejected").unwrap(), None);
    store.put(b"second session", b"y").unwrap();
    drop(store);

    // Dropping closes too, and `create` on an existing file opens it without truncating.
    let store = RedbStorage::create(&path).unwrap();
    assert_eq!(
        store.get(b"second session").unwrap().as_deref(),
        Some(&b"y"[..])
    );
    assert_eq!(everything(&store).len(), before.len() + 1);
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
