//! The upgrade of a store of format 2 (workflow records of format `0x01`, lifecycle in side
//! keys) to format 3 (records of format `0x02`, lifecycle inside) at the first build: every
//! workflow reads back the same, runs on to its end, and an upgrade cut off part-way is
//! finished by the next build.

mod engine_support;

use std::ops::Bound;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use engine_support::wait_status;
use serde::{Deserialize, Serialize};
use weft_runtime::engine::record::{
    self, CancelRecord, DeadlineRecord, Lifecycle, RecordStatus, WorkflowRecord,
};
use weft_runtime::engine::{Engine, EngineError, StartOptions, VirtualClock, WorkflowStatus};
use weft_runtime::storage::{
    Batch, Condition, Entry, MemoryStorage, STORE_FORMAT_VERSION, Storage, StorageError,
};
use weft_runtime::{Signal, WorkflowContext, WorkflowError, workflow};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Go {
    n: u64,
}

impl Signal for Go {
    const NAME: &'static str = "go";
}

/// Waits for `Go` and returns its number.
#[workflow]
async fn gated(ctx: &mut WorkflowContext, _input: ()) -> Result<u64, WorkflowError> {
    let go = ctx.wait_for_signal::<Go>().await;
    Ok(go.n)
}

/// Sleeps, then waits for `Go`: run with a deadline inside the sleep, it times out.
#[workflow]
async fn napper(ctx: &mut WorkflowContext, secs: u64) -> Result<u64, WorkflowError> {
    ctx.sleep(Duration::from_secs(secs)).await;
    let go = ctx.wait_for_signal::<Go>().await;
    Ok(go.n)
}

/// Waits for a `gated` child and adds one.
#[workflow]
async fn elder(ctx: &mut WorkflowContext, _input: ()) -> Result<u64, WorkflowError> {
    let n = ctx.child(gated, ()).await?;
    Ok(n + 1)
}

const SIDE_PREFIXES: [&[u8]; 5] = [
    b"cancel/",
    b"cancelled/",
    b"deadline/",
    b"timedout/",
    b"parent/",
];

fn builder(storage: &MemoryStorage, clock: &VirtualClock) -> weft_runtime::EngineBuilder {
    Engine::builder(storage.clone())
        .register::<gated>()
        .register::<napper>()
        .register::<elder>()
        .clock(Arc::new(clock.clone()))
}

/// `<prefix><id>`: a per-workflow key as stores of format 4 and before laid it out, without
/// the partition.
fn old_key(prefix: &[u8], id: &str) -> Vec<u8> {
    [prefix, id.as_bytes()].concat()
}

/// A workflow record's key in a store of one partition, as this build lays it out.
fn wf(id: &str) -> Vec<u8> {
    record::workflow_key(record::Partition::ZERO, id)
}

/// Rewrites the keys of a store of one partition as format 4 laid them out: every
/// per-workflow key without its partition, `meta/format` 4 and no partition-keys marker.
fn downgrade_to_format_4(storage: &MemoryStorage) {
    let mut batch = Batch::new();
    for &prefix in record::PARTITIONED_PREFIXES {
        for (key, value) in storage.scan_prefix(prefix, None, usize::MAX).unwrap() {
            let (p, rest) = record::split_partition(prefix, &key).unwrap();
            assert_eq!(p, record::Partition::ZERO, "one partition");
            batch.put([prefix, rest].concat(), value);
            batch.delete(key);
        }
    }
    batch.put(record::FORMAT_KEY, record::encode_store_format(4));
    batch.delete(record::PARTITION_KEYS_KEY);
    storage.apply(batch).unwrap();
}

/// Rewrites a store of format 3 as format 2 wrote it: records of format `0x01`, their
/// lifecycle in side keys, keys without partitions, `meta/format` 2 and no lifecycle marker.
fn downgrade_to_format_2(storage: &MemoryStorage) {
    downgrade_to_format_4(storage);
    let mut batch = Batch::new();
    for (key, value) in storage
        .scan_prefix(record::WORKFLOW_PREFIX, None, usize::MAX)
        .unwrap()
    {
        let id = std::str::from_utf8(&key[record::WORKFLOW_PREFIX.len()..]).unwrap();
        let mut stored: WorkflowRecord = record::decode_record(&value).unwrap();
        let lifecycle = std::mem::take(&mut stored.lifecycle);
        assert_eq!(lifecycle.trace_context, None, "format 2 had none");
        if let Some(requested_ms) = lifecycle.cancel_requested_ms {
            let value = record::encode_record(&CancelRecord { requested_ms }).unwrap();
            batch.put(record::cancel_key(id), value);
        }
        if lifecycle.cancelled {
            batch.put(record::cancelled_key(id), Vec::new());
        }
        if let Some(deadline_ms) = lifecycle.deadline_ms {
            let value = record::encode_record(&DeadlineRecord { deadline_ms }).unwrap();
            batch.put(record::deadline_key(id), value);
        }
        if lifecycle.timed_out {
            batch.put(record::timedout_key(id), Vec::new());
        }
        if let Some(parent) = &lifecycle.parent {
            batch.put(record::parent_key(id), parent.as_bytes().to_vec());
        }
        batch.put(key, record::encode_workflow_v1(&stored).unwrap());
    }
    batch.put(record::FORMAT_KEY, record::encode_store_format(2));
    batch.delete(record::LIFECYCLE_KEY);
    // Nor did it have the live counters (format 4), counted at the build that upgrades it.
    for (key, _) in storage
        .scan_prefix(record::LIVE_COUNTER_PREFIX, None, usize::MAX)
        .unwrap()
    {
        batch.delete(key);
    }
    batch.delete(record::LIVE_COUNTERS_KEY);
    storage.apply(batch).unwrap();
}

/// Every workflow record is of format `0x02`, no lifecycle side key is left, and the store is
/// marked with this build's format (3 or later) and upgraded, its live counters counted.
fn assert_upgraded(storage: &MemoryStorage) {
    for (key, value) in storage
        .scan_prefix(record::WORKFLOW_PREFIX, None, usize::MAX)
        .unwrap()
    {
        assert_eq!(
            value[0],
            record::FORMAT_V2,
            "{}",
            String::from_utf8_lossy(&key)
        );
    }
    for prefix in SIDE_PREFIXES {
        assert!(
            storage
                .scan_prefix(prefix, None, usize::MAX)
                .unwrap()
                .is_empty(),
            "{} keys left",
            String::from_utf8_lossy(prefix)
        );
    }
    let format = storage.get(record::FORMAT_KEY).unwrap().unwrap();
    assert_eq!(
        record::decode_store_format(&format).unwrap(),
        STORE_FORMAT_VERSION
    );
    const { assert!(STORE_FORMAT_VERSION >= 3) };
    assert!(storage.get(record::LIVE_COUNTERS_KEY).unwrap().is_some());
    assert_eq!(
        storage.get(record::LIFECYCLE_KEY).unwrap().as_deref(),
        Some(record::LIFECYCLE_V1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflows_of_a_format_2_store_run_to_their_end_after_the_upgrade() {
    let storage = MemoryStorage::new();
    let clock = VirtualClock::default();
    let first = builder(&storage, &clock).build().await.unwrap();
    let named = |id: &str| StartOptions {
        id: Some(id.to_string()),
        ..StartOptions::default()
    };
    first
        .start_with::<napper>(
            7200,
            StartOptions {
                execution_timeout: Some(Duration::from_secs(3600)),
                ..named("nap")
            },
        )
        .await
        .unwrap();
    first.start_with::<gated>((), named("plain")).await.unwrap();
    first
        .start_with::<gated>((), named("doomed"))
        .await
        .unwrap();
    first.start_with::<elder>((), named("elder")).await.unwrap();
    for id in ["nap", "plain", "doomed", "elder"] {
        wait_status(&first, id, WorkflowStatus::Waiting).await;
    }
    let child = first.describe("elder").await.unwrap().children[0].clone();
    wait_status(&first, &child, WorkflowStatus::Waiting).await;
    first.shutdown().await;

    downgrade_to_format_2(&storage);
    // A cancellation requested while no engine ran, as format 2 stored it.
    storage
        .put(
            &record::cancel_key("doomed"),
            &record::encode_record(&CancelRecord { requested_ms: 1 }).unwrap(),
        )
        .unwrap();
    assert!(storage.get(&record::parent_key(&child)).unwrap().is_some());
    assert!(storage.get(&record::deadline_key("nap")).unwrap().is_some());

    let second = builder(&storage, &clock).build().await.unwrap();
    assert_upgraded(&storage);
    // Read back: the child's parent link and the deadline are in the records now.
    let read = |id: &str| -> WorkflowRecord {
        record::decode_record(&storage.get(&wf(id)).unwrap().unwrap()).unwrap()
    };
    assert_eq!(read(&child).lifecycle.parent.as_deref(), Some("elder"));
    assert_eq!(
        second.describe(&child).await.unwrap().parent.as_deref(),
        Some("elder")
    );
    assert!(read("nap").lifecycle.deadline_ms.is_some());

    // And each runs to its end as it would have.
    assert!(matches!(
        second.result::<gated>("doomed").await,
        Err(EngineError::Cancelled { .. })
    ));
    second.signal("plain", Go { n: 3 }).await.unwrap();
    assert_eq!(second.result::<gated>("plain").await.unwrap(), Ok(3));
    second.signal(&child, Go { n: 4 }).await.unwrap();
    assert_eq!(second.result::<elder>("elder").await.unwrap(), Ok(5));
    clock.advance(Duration::from_secs(3600));
    wait_status(&second, "nap", WorkflowStatus::TimedOut).await;
    second.shutdown().await;
}

fn golden(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("golden")
        .join(format!("engine_{name}.bin"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A store of format 2 as a build of that format left it: its markers and owner epoch.
fn format_2_store() -> MemoryStorage {
    let storage = MemoryStorage::new();
    let mut batch = Batch::new();
    batch.put(record::EPOCH_KEY, record::encode_epoch(4));
    batch.put(record::FORMAT_KEY, record::encode_store_format(2));
    batch.put(record::LIVE_INDEX_KEY, record::LIVE_INDEX_V1.to_vec());
    batch.put(
        record::VISIBILITY_INDEX_KEY,
        record::VISIBILITY_INDEX_V1.to_vec(),
    );
    batch.put(record::ORDER_INDEX_KEY, record::ORDER_INDEX_V2.to_vec());
    storage.apply(batch).unwrap();
    storage
}

/// The golden records of format `0x01` (`tests/golden/engine_workflow_*.bin`), with the golden
/// side keys of format 2 beside some, open in a store of format 2: every one reads back with
/// its lifecycle gathered from its side keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_old_golden_records_are_read_back_with_their_side_keys_folded_in() {
    let storage = format_2_store();
    let names = [
        "workflow_activity",
        "workflow_timer",
        "workflow_signal",
        "workflow_parked",
        "workflow_completed",
        "workflow_failed",
        "workflow_cancelled",
        "workflow_timed_out",
        "workflow_timed_out_with_error",
    ];
    let mut expected = Vec::new();
    for name in names {
        let bytes = golden(name);
        assert_eq!(bytes[0], record::FORMAT_V1, "{name}: an old-format golden");
        let old: WorkflowRecord = record::decode_record(&bytes).unwrap();
        storage
            .put(&old_key(record::WORKFLOW_PREFIX, name), &bytes)
            .unwrap();
        if !old.status.is_terminal() {
            storage
                .put(&old_key(record::LIVE_PREFIX, name), &[])
                .unwrap();
        }
        expected.push((name, old));
    }
    // Side keys, from the golden records of format 2 where it had them.
    let cancel = golden("cancel");
    let deadline = golden("deadline");
    storage
        .put(&record::cancel_key("workflow_timer"), &cancel)
        .unwrap();
    storage
        .put(&record::deadline_key("workflow_timer"), &deadline)
        .unwrap();
    storage
        .put(&record::cancelled_key("workflow_signal"), &[])
        .unwrap();
    storage
        .put(&record::timedout_key("workflow_signal"), &[])
        .unwrap();
    storage
        .put(&record::parent_key("workflow_signal"), b"workflow_timer")
        .unwrap();
    storage
        .put(&record::parent_key("workflow_completed"), b"workflow_timer")
        .unwrap();

    // No workflow type of theirs is registered (and recovery is off): the build only upgrades.
    let engine = Engine::builder(storage.clone())
        .recover(false)
        .build()
        .await
        .unwrap();
    assert_upgraded(&storage);
    let lifecycle_of = |name: &str| match name {
        "workflow_timer" => Lifecycle {
            cancel_requested_ms: Some(1_893_456_003_000),
            deadline_ms: Some(1_893_459_600_000),
            ..Lifecycle::default()
        },
        "workflow_signal" => Lifecycle {
            cancelled: true,
            timed_out: true,
            parent: Some("workflow_timer".into()),
            ..Lifecycle::default()
        },
        "workflow_completed" => Lifecycle {
            parent: Some("workflow_timer".into()),
            ..Lifecycle::default()
        },
        _ => Lifecycle::default(),
    };
    for (name, old) in expected {
        let bytes = storage.get(&wf(name)).unwrap().unwrap();
        let new: WorkflowRecord = record::decode_record(&bytes).unwrap();
        assert_eq!(
            new,
            WorkflowRecord {
                lifecycle: lifecycle_of(name),
                ..old.clone()
            },
            "{name}"
        );
        // Describe reads every one (parked: its type is not registered here).
        let described = engine.describe(name).await.unwrap();
        assert_eq!(described.step, old.step, "{name}");
        assert_eq!(
            described.parent,
            lifecycle_of(name).parent,
            "{name}: its parent link"
        );
    }
    engine.shutdown().await;
}

/// Fails every write from the `fail_from`-th on (1-based): a crash part-way.
#[derive(Clone)]
struct FailingWrites {
    inner: MemoryStorage,
    writes: Arc<AtomicU64>,
    fail_from: u64,
}

impl Storage for FailingWrites {
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

    fn apply_if(&self, conditions: &[Condition], batch: &Batch) -> Result<(), StorageError> {
        if self.writes.fetch_add(1, Ordering::SeqCst) + 1 >= self.fail_from {
            return Err(StorageError::backend("the disk went away"));
        }
        self.inner.apply_if(conditions, batch)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_cut_off_part_way_is_finished_by_the_next_build() {
    // More records than one upgrade commit takes, each with a deadline and a parent link.
    const N: usize = 700;
    let storage = format_2_store();
    let old: WorkflowRecord = record::decode_record(&golden("workflow_signal")).unwrap();
    let mut batch = Batch::new();
    for i in 0..N {
        let id = format!("w{i:04}");
        batch.put(
            old_key(record::WORKFLOW_PREFIX, &id),
            record::encode_workflow_v1(&old).unwrap(),
        );
        batch.put(old_key(record::LIVE_PREFIX, &id), Vec::new());
        batch.put(
            record::deadline_key(&id),
            record::encode_record(&DeadlineRecord {
                deadline_ms: i as u64,
            })
            .unwrap(),
        );
        batch.put(record::parent_key(&id), b"p".to_vec());
    }
    storage.apply(batch).unwrap();
    let count_v1 = |storage: &MemoryStorage| {
        storage
            .scan_prefix(record::WORKFLOW_PREFIX, None, usize::MAX)
            .unwrap()
            .iter()
            .filter(|(_, value)| value[0] == record::FORMAT_V1)
            .count()
    };

    // Write 1 takes ownership (raising the format marker); writes 2 to 7 move the keys into
    // their partition (format 5: the timers, two pages of records, two of the live index, the
    // marker); write 8 is the first page of the lifecycle upgrade; write 9 fails.
    let failing = FailingWrites {
        inner: storage.clone(),
        writes: Arc::new(AtomicU64::new(0)),
        fail_from: 9,
    };
    let cut = Engine::builder(failing).recover(false).build().await;
    assert!(
        matches!(cut, Err(EngineError::Storage(_))),
        "{:?}",
        cut.err()
    );
    let left = count_v1(&storage);
    assert!(0 < left && left < N, "part-way: {left} of {N} left");
    assert_eq!(storage.get(record::LIFECYCLE_KEY).unwrap(), None);
    let format = storage.get(record::FORMAT_KEY).unwrap().unwrap();
    assert_eq!(
        record::decode_store_format(&format).unwrap(),
        STORE_FORMAT_VERSION,
        "an older build refuses the store from the first write on"
    );
    // Each record was rewritten with its side keys deleted, in one commit: never one without
    // the other.
    for (key, value) in storage
        .scan_prefix(record::WORKFLOW_PREFIX, None, usize::MAX)
        .unwrap()
    {
        let (_, id) = record::parse_id_key(record::WORKFLOW_PREFIX, &key).unwrap();
        let side = storage.get(&record::deadline_key(id)).unwrap().is_some();
        assert_eq!(side, value[0] == record::FORMAT_V1, "{id}");
    }

    let engine = Engine::builder(storage.clone())
        .recover(false)
        .build()
        .await
        .unwrap();
    assert_upgraded(&storage);
    for i in [0, N / 2, N - 1] {
        let id = format!("w{i:04}");
        let bytes = storage.get(&wf(&id)).unwrap().unwrap();
        let new: WorkflowRecord = record::decode_record(&bytes).unwrap();
        assert_eq!(new.lifecycle.deadline_ms, Some(i as u64), "{id}");
        assert_eq!(new.lifecycle.parent.as_deref(), Some("p"), "{id}");
        assert_eq!(new.status, old.status, "{id}");
    }
    engine.shutdown().await;
}

/// A damaged `deadline/` side key parks its workflow at the upgrade, naming the key; the
/// others are upgraded as they are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_side_key_parks_its_workflow_at_the_upgrade() {
    let storage = format_2_store();
    let old: WorkflowRecord = record::decode_record(&golden("workflow_signal")).unwrap();
    for id in ["bad", "good"] {
        storage
            .put(
                &old_key(record::WORKFLOW_PREFIX, id),
                &record::encode_workflow_v1(&old).unwrap(),
            )
            .unwrap();
        storage.put(&old_key(record::LIVE_PREFIX, id), &[]).unwrap();
    }
    storage
        .put(&record::deadline_key("bad"), &[0x01, 0xfd])
        .unwrap();
    let engine = Engine::builder(storage.clone())
        .recover(false)
        .build()
        .await
        .unwrap();
    assert_upgraded(&storage);
    let read = |id: &str| -> WorkflowRecord {
        record::decode_record(&storage.get(&wf(id)).unwrap().unwrap()).unwrap()
    };
    match read("bad").status {
        RecordStatus::Parked { code, message } => {
            assert_eq!(code, "record.corrupt");
            assert!(message.contains("deadline/bad"), "{message}");
        }
        other => panic!("not parked: {other:?}"),
    }
    assert_eq!(read("bad").state, old.state, "its state is kept");
    assert_eq!(read("good").status, old.status);
    engine.shutdown().await;
}

/// Loads `tests/golden/engine_store_format_4.bin`: every key and value of a store as the build
/// of store format 4 (main at d1d5acf) left it, each as `[key length: u32 BE][key][value
/// length: u32 BE][value]`, in key order. That build ran the `gated`, `napper` and `elder`
/// workflows above on a `VirtualClock::default()`: `nap` asleep for 60 s with a `Go { n: 7 }`
/// queued under signal id `hook-1`, `elder` waiting on its `gated` child, `done` completed
/// with 3.
fn golden_store_4() -> MemoryStorage {
    let bytes = golden("store_format_4");
    let storage = MemoryStorage::new();
    let mut batch = Batch::new();
    let mut rest = bytes.as_slice();
    let take = |rest: &mut &[u8]| -> Vec<u8> {
        let (len, tail) = rest.split_first_chunk::<4>().unwrap();
        let (item, tail) = tail.split_at(u32::from_be_bytes(*len) as usize);
        *rest = tail;
        item.to_vec()
    };
    while !rest.is_empty() {
        let key = take(&mut rest);
        let value = take(&mut rest);
        batch.put(key, value);
    }
    storage.apply(batch).unwrap();
    storage
}

/// How many keys each per-workflow family holds.
fn family_sizes(storage: &MemoryStorage) -> Vec<usize> {
    record::PARTITIONED_PREFIXES
        .iter()
        .map(|prefix| storage.scan_prefix(prefix, None, usize::MAX).unwrap().len())
        .collect()
}

/// Every per-workflow key is in partition 0 of format 5, and the store is marked so.
fn assert_keys_partitioned(storage: &MemoryStorage) {
    for &prefix in record::PARTITIONED_PREFIXES {
        for (key, _) in storage.scan_prefix(prefix, None, usize::MAX).unwrap() {
            let (p, rest) = record::split_partition(prefix, &key).unwrap();
            assert_eq!(p, record::Partition::ZERO, "{key:?}");
            if prefix != record::TIMER_PREFIX {
                // An id follows, never beginning with the NUL a partition's bytes hold here.
                assert_ne!(rest.first(), Some(&0), "{key:?}");
            }
        }
    }
    assert_eq!(
        storage.get(record::PARTITION_KEYS_KEY).unwrap().as_deref(),
        Some(record::PARTITION_KEYS_DONE)
    );
    let format = storage.get(record::FORMAT_KEY).unwrap().unwrap();
    assert_eq!(record::decode_store_format(&format).unwrap(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_golden_format_4_store_is_upgraded_to_5_and_its_workflows_finish() {
    const { assert!(STORE_FORMAT_VERSION == 5) };
    let storage = golden_store_4();
    let format = storage.get(record::FORMAT_KEY).unwrap().unwrap();
    assert_eq!(record::decode_store_format(&format).unwrap(), 4);
    assert!(
        storage
            .get(&old_key(record::WORKFLOW_PREFIX, "nap"))
            .unwrap()
            .is_some()
    );
    let before = family_sizes(&storage);
    assert!(before.iter().filter(|&&n| n > 0).count() >= 6, "{before:?}");

    let clock = VirtualClock::default();
    let engine = builder(&storage, &clock).build().await.unwrap();
    assert_keys_partitioned(&storage);
    assert_eq!(family_sizes(&storage), before, "every key moved, none lost");
    assert_eq!(engine.recovery_report().in_flight(), 3);

    // The signal id moved with its workflow: a repeat is not queued again.
    engine
        .signal_with(
            "nap",
            Go { n: 8 },
            weft_runtime::engine::SignalOptions {
                signal_id: Some("hook-1".into()),
            },
        )
        .await
        .unwrap();
    let queue = record::signal_queue_prefix(record::Partition::ZERO, "nap");
    assert_eq!(storage.scan_prefix(&queue, None, 10).unwrap().len(), 1);

    assert_eq!(engine.result::<gated>("done").await.unwrap(), Ok(3));
    let child = engine.describe("elder").await.unwrap().children[0].clone();
    engine.signal(&child, Go { n: 4 }).await.unwrap();
    assert_eq!(engine.result::<elder>("elder").await.unwrap(), Ok(5));
    clock.advance(Duration::from_secs(60));
    assert_eq!(engine.result::<napper>("nap").await.unwrap(), Ok(7));
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_upgrade_cut_off_part_way_is_finished_by_the_next_build() {
    // More records than one commit of the upgrade moves, and a few timers.
    const N: usize = 600;
    let storage = MemoryStorage::new();
    let clock = VirtualClock::default();
    let first = builder(&storage, &clock).build().await.unwrap();
    let ids: Vec<String> = (0..N).map(|i| format!("g{i:04}")).collect();
    for id in &ids {
        first
            .start_with::<gated>(
                (),
                StartOptions {
                    id: Some(id.clone()),
                    ..StartOptions::default()
                },
            )
            .await
            .unwrap();
    }
    for i in 0..3 {
        first
            .start_with::<napper>(
                60,
                StartOptions {
                    id: Some(format!("nap{i}")),
                    ..StartOptions::default()
                },
            )
            .await
            .unwrap();
    }
    for id in &ids {
        wait_status(&first, id, WorkflowStatus::Waiting).await;
    }
    for i in 0..3 {
        wait_status(&first, &format!("nap{i}"), WorkflowStatus::Waiting).await;
    }
    first.shutdown().await;
    downgrade_to_format_4(&storage);
    let before = family_sizes(&storage);

    // Write 1 takes ownership (raising the format marker to 5), write 2 moves the timers,
    // write 3 the first page of records; write 4 fails.
    let failing = FailingWrites {
        inner: storage.clone(),
        writes: Arc::new(AtomicU64::new(0)),
        fail_from: 4,
    };
    let cut = Engine::builder(failing).recover(false).build().await;
    assert!(
        matches!(cut, Err(EngineError::Storage(_))),
        "{:?}",
        cut.err()
    );
    let format = storage.get(record::FORMAT_KEY).unwrap().unwrap();
    assert_eq!(record::decode_store_format(&format).unwrap(), 5);
    assert_eq!(
        storage.get(record::PARTITION_KEYS_KEY).unwrap().as_deref(),
        Some(record::PARTITION_KEYS_TIMERS)
    );
    // Part-way: each record is old or new, never both, never neither.
    let (mut old, mut new) = (0, 0);
    for id in &ids {
        let was = storage
            .get(&old_key(record::WORKFLOW_PREFIX, id))
            .unwrap()
            .is_some();
        let is = storage.get(&wf(id)).unwrap().is_some();
        assert!(was != is, "{id}: old {was}, new {is}");
        old += usize::from(was);
        new += usize::from(is);
    }
    assert!(old > 0 && new > 0, "part-way: {old} old, {new} new");
    let timers = storage
        .scan_prefix(
            &record::partition_prefix(record::TIMER_PREFIX, record::Partition::ZERO),
            None,
            usize::MAX,
        )
        .unwrap();
    assert_eq!(timers.len(), 3, "the timers moved in one commit");

    let second = builder(&storage, &clock).build().await.unwrap();
    assert_keys_partitioned(&storage);
    assert_eq!(family_sizes(&storage), before, "every key moved once");
    for (i, id) in ids.iter().enumerate().step_by(97) {
        second.signal(id, Go { n: i as u64 }).await.unwrap();
        assert_eq!(second.result::<gated>(id).await.unwrap(), Ok(i as u64));
    }
    clock.advance(Duration::from_secs(60));
    for i in 0..3 {
        let id = format!("nap{i}");
        second.signal(&id, Go { n: 9 }).await.unwrap();
        assert_eq!(second.result::<napper>(&id).await.unwrap(), Ok(9));
    }
    second.shutdown().await;
}
