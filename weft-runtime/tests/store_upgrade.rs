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

/// Rewrites a store of format 3 as format 2 wrote it: records of format `0x01`, their
/// lifecycle in side keys, `meta/format` 2 and no lifecycle marker.
fn downgrade_to_format_2(storage: &MemoryStorage) {
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
        record::decode_record(&storage.get(&record::workflow_key(id)).unwrap().unwrap()).unwrap()
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
        storage.put(&record::workflow_key(name), &bytes).unwrap();
        if !old.status.is_terminal() {
            storage.put(&record::live_key(name), &[]).unwrap();
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
        let bytes = storage.get(&record::workflow_key(name)).unwrap().unwrap();
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
            record::workflow_key(&id),
            record::encode_workflow_v1(&old).unwrap(),
        );
        batch.put(record::live_key(&id), Vec::new());
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

    // Write 1 takes ownership (raising the format marker), write 2 is the first page of the
    // upgrade; write 3 fails.
    let failing = FailingWrites {
        inner: storage.clone(),
        writes: Arc::new(AtomicU64::new(0)),
        fail_from: 3,
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
        let id = std::str::from_utf8(&key[record::WORKFLOW_PREFIX.len()..]).unwrap();
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
        let bytes = storage.get(&record::workflow_key(&id)).unwrap().unwrap();
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
                &record::workflow_key(id),
                &record::encode_workflow_v1(&old).unwrap(),
            )
            .unwrap();
        storage.put(&record::live_key(id), &[]).unwrap();
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
        record::decode_record(&storage.get(&record::workflow_key(id)).unwrap().unwrap()).unwrap()
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
