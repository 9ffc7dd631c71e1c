//! A store of several partitions: every per-workflow key carries its workflow's partition,
//! workflows spread over them run to their end and survive a rebuild, and one partition's live
//! workflows and timers are read from that partition's keys alone. The partition count is fixed
//! when the store is created.

mod engine_support;

use std::ops::Bound;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use engine_support::wait_status;
use serde::{Deserialize, Serialize};
use weft_runtime::engine::partition::Partitions;
use weft_runtime::engine::record::{self, Partition};
use weft_runtime::engine::{Engine, EngineError, StartOptions, VirtualClock, WorkflowStatus};
use weft_runtime::storage::{Batch, Condition, Entry, MemoryStorage, Storage, StorageError};
use weft_runtime::{Signal, WorkflowContext, WorkflowError, workflow};

const P: u16 = 8;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Go {
    n: u64,
}

impl Signal for Go {
    const NAME: &'static str = "go";
}

/// Sleeps a minute, then doubles its input.
#[workflow]
async fn napper(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    ctx.sleep(Duration::from_secs(60)).await;
    Ok(n * 2)
}

/// Waits for `Go` and returns its number.
#[workflow]
async fn gated(ctx: &mut WorkflowContext, _input: ()) -> Result<u64, WorkflowError> {
    let go = ctx.wait_for_signal::<Go>().await;
    Ok(go.n)
}

/// Waits for a `gated` child and adds one.
#[workflow]
async fn elder(ctx: &mut WorkflowContext, _input: ()) -> Result<u64, WorkflowError> {
    let n = ctx.child(gated, ()).await?;
    Ok(n + 1)
}

/// A scanned range: its bounds and how many keys it returned.
type Scan = (Bound<Vec<u8>>, Bound<Vec<u8>>, usize);

/// A storage that records the key ranges scanned while `recording` is on.
#[derive(Clone, Default)]
struct Recording {
    inner: MemoryStorage,
    recording: Arc<Mutex<bool>>,
    scans: Arc<Mutex<Vec<Scan>>>,
}

impl Recording {
    fn record(&self, on: bool) {
        *self.recording.lock().unwrap() = on;
    }

    fn scans(&self) -> Vec<Scan> {
        self.scans.lock().unwrap().clone()
    }
}

impl Storage for Recording {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.inner.get(key)
    }

    fn scan(
        &self,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StorageError> {
        let entries = self.inner.scan(start, end, limit)?;
        if *self.recording.lock().unwrap() {
            self.scans.lock().unwrap().push((
                start.map(<[u8]>::to_vec),
                end.map(<[u8]>::to_vec),
                entries.len(),
            ));
        }
        Ok(entries)
    }

    fn apply_if(&self, conditions: &[Condition], batch: &Batch) -> Result<(), StorageError> {
        self.inner.apply_if(conditions, batch)
    }
}

fn builder(storage: &Recording, clock: &VirtualClock) -> weft_runtime::EngineBuilder {
    Engine::builder(storage.clone())
        .register::<napper>()
        .register::<gated>()
        .register::<elder>()
        .clock(Arc::new(clock.clone()))
}

fn named(id: &str) -> StartOptions {
    StartOptions {
        id: Some(id.to_string()),
        ..StartOptions::default()
    }
}

/// The partition of `range`'s keys of family `prefix`, when the range lies within one
/// partition's keys of it; `None` when it reaches past them.
fn one_partition(prefix: &[u8], start: &Bound<Vec<u8>>, end: &Bound<Vec<u8>>) -> Option<u16> {
    let start = match start {
        Bound::Included(key) | Bound::Excluded(key) => key,
        Bound::Unbounded => return None,
    };
    let (p, _) = record::split_partition(prefix, start)?;
    let first = record::partition_prefix(prefix, p);
    let past = weft_runtime::storage::prefix_end(&first)?;
    match end {
        Bound::Excluded(end) | Bound::Included(end) if *end <= past && *end > first => {
            Some(p.index())
        }
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflows_spread_over_partitions_finish_and_each_partition_recovers_from_its_keys() {
    let storage = Recording::default();
    let clock = VirtualClock::default();
    let partitions = Partitions::new(P);
    let first = builder(&storage, &clock)
        .partitions(P)
        .build()
        .await
        .unwrap();
    assert_eq!(first.partitions(), P);

    let nappers: Vec<String> = (0..48).map(|i| format!("nap-{i}")).collect();
    let waiting: Vec<String> = (0..16).map(|i| format!("gate-{i}")).collect();
    for (i, id) in nappers.iter().enumerate() {
        first
            .start_with::<napper>(i as u64, named(id))
            .await
            .unwrap();
    }
    for id in &waiting {
        first.start_with::<gated>((), named(id)).await.unwrap();
    }
    first.start_with::<elder>((), named("elder")).await.unwrap();
    for id in nappers.iter().chain(&waiting) {
        wait_status(&first, id, WorkflowStatus::Waiting).await;
    }
    let child = first.describe("elder").await.unwrap().children[0].clone();
    wait_status(&first, &child, WorkflowStatus::Waiting).await;
    // Sent before the rebuild: delivered by this engine if its runner gets there before the
    // shutdown, else by the rebuild (which then finds it still running).
    first.signal(&waiting[0], Go { n: 100 }).await.unwrap();
    let first_partition_of = {
        let ids: Vec<(String, u16)> = nappers
            .iter()
            .chain(&waiting)
            .chain([&"elder".to_string(), &child])
            .map(|id| (id.clone(), first.partition_of(id)))
            .collect();
        move |id: &str| ids.iter().find(|(known, _)| known == id).unwrap().1
    };
    first.shutdown().await;
    let delivered_early = storage
        .inner
        .get(&record::live_key(partitions.of(&waiting[0]), &waiting[0]))
        .unwrap()
        .is_none();
    let running_at_rebuild = nappers.len() + waiting.len() - usize::from(delivered_early);

    // Spread: the ids land in most partitions, and every key carries its id's partition.
    let by_partition = |ids: &[String]| {
        let mut counts = vec![0usize; usize::from(P)];
        for id in ids {
            counts[usize::from(partitions.of(id).index())] += 1;
        }
        counts
    };
    let napping = by_partition(&nappers);
    assert!(
        napping.iter().filter(|&&n| n > 0).count() >= 6,
        "{napping:?}"
    );
    for (key, _) in storage
        .inner
        .scan_prefix(record::WORKFLOW_PREFIX, None, usize::MAX)
        .unwrap()
    {
        let (p, id) = record::parse_id_key(record::WORKFLOW_PREFIX, &key).unwrap();
        assert_eq!(p, partitions.of(id), "{id}");
        assert_eq!(p.index(), first_partition_of(id));
    }
    for (key, _) in storage
        .inner
        .scan_prefix(record::TIMER_PREFIX, None, usize::MAX)
        .unwrap()
    {
        let timer = record::parse_timer_key(&key).unwrap();
        assert_eq!(timer.partition, partitions.of(&timer.id), "{}", timer.id);
    }
    // The children index sits in the parent's partition; the child hashes by its own id.
    let children = storage
        .inner
        .scan_prefix(
            &record::children_prefix(partitions.of("elder"), "elder"),
            None,
            10,
        )
        .unwrap();
    assert_eq!(children.len(), 1);
    assert!(
        storage
            .inner
            .get(&record::workflow_key(partitions.of(&child), &child))
            .unwrap()
            .is_some()
    );

    // One partition's due timers are one range scan, from its own keys alone.
    let now_ms = clock
        .now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let due_at = now_ms + 60_000;
    for p in partitions.all() {
        let due = storage
            .inner
            .scan(
                Bound::Included(&record::partition_prefix(record::TIMER_PREFIX, p)),
                Bound::Excluded(&record::due_timers_end(p, due_at)),
                usize::MAX,
            )
            .unwrap();
        assert_eq!(
            due.len(),
            napping[usize::from(p.index())],
            "partition {p:?}"
        );
        let not_yet = storage
            .inner
            .scan(
                Bound::Included(&record::partition_prefix(record::TIMER_PREFIX, p)),
                Bound::Excluded(&record::due_timers_end(p, due_at - 1)),
                usize::MAX,
            )
            .unwrap();
        assert!(not_yet.is_empty(), "partition {p:?}: {not_yet:?}");
    }

    // The rebuild recovers partition by partition: every scan of the timer and live indexes
    // stays within one partition's keys, and together they read each workflow once.
    storage.record(true);
    let second = builder(&storage, &clock).build().await.unwrap();
    storage.record(false);
    assert_eq!(second.partitions(), P, "the store keeps its count");
    let report = second.recovery_report();
    assert_eq!(report.in_flight(), (running_at_rebuild + 2) as u64);
    let mut timers_read = vec![0usize; usize::from(P)];
    let mut live_read = vec![0usize; usize::from(P)];
    for (start, end, read) in storage.scans() {
        for (family, counts) in [
            (record::TIMER_PREFIX, &mut timers_read),
            (record::LIVE_PREFIX, &mut live_read),
        ] {
            let starts_in_family = match &start {
                Bound::Included(key) | Bound::Excluded(key) => key.starts_with(family),
                Bound::Unbounded => false,
            };
            if !starts_in_family {
                continue;
            }
            let p = one_partition(family, &start, &end).unwrap_or_else(|| {
                panic!(
                    "a scan of {} reaches past one partition: {start:?}..{end:?}",
                    String::from_utf8_lossy(family)
                )
            });
            counts[usize::from(p)] += read;
        }
    }
    assert_eq!(timers_read, napping, "each partition's timers, once");
    let mut live = by_partition(&nappers);
    for id in waiting[usize::from(delivered_early)..]
        .iter()
        .chain([&"elder".to_string(), &child])
    {
        live[usize::from(partitions.of(id).index())] += 1;
    }
    // Recovery reads each partition's live index; parked workflows are retried at build from
    // the same per-partition scans.
    assert!(
        live_read.iter().zip(&live).all(|(read, live)| read >= live),
        "{live_read:?} read, {live:?} live"
    );

    // Everything runs to its end with the right result, in whatever partition it is.
    clock.advance(Duration::from_secs(60));
    for (i, id) in nappers.iter().enumerate() {
        assert_eq!(
            second.result::<napper>(id).await.unwrap(),
            Ok(i as u64 * 2),
            "{id}"
        );
    }
    assert_eq!(second.result::<gated>(&waiting[0]).await.unwrap(), Ok(100));
    for (i, id) in waiting.iter().enumerate().skip(1) {
        second.signal(id, Go { n: i as u64 }).await.unwrap();
        assert_eq!(second.result::<gated>(id).await.unwrap(), Ok(i as u64));
    }
    second.signal(&child, Go { n: 41 }).await.unwrap();
    assert_eq!(second.result::<elder>("elder").await.unwrap(), Ok(42));
    // Nothing live is left in any partition.
    assert!(
        storage
            .inner
            .scan_prefix(record::LIVE_PREFIX, None, usize::MAX)
            .unwrap()
            .is_empty()
    );
    // Listing reads every partition, merged in id order, page after page.
    let filter = weft_runtime::engine::ListFilter {
        id_prefix: Some("gate-".into()),
        ..Default::default()
    };
    let mut listed = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = second.list(&filter, 5, token.as_deref()).await.unwrap();
        listed.extend(page.items.iter().map(|w| w.id.clone()));
        token = page.next_page_token;
        if token.is_none() {
            break;
        }
    }
    let mut expected = waiting.clone();
    expected.sort();
    assert_eq!(listed, expected);
    second.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_partition_count_is_fixed_when_the_store_is_created() {
    let storage = MemoryStorage::new();
    let engine = Engine::builder(storage.clone())
        .partitions(4)
        .build()
        .await
        .unwrap();
    assert_eq!(engine.partitions(), 4);
    engine.shutdown().await;
    let refused = Engine::builder(storage.clone()).partitions(8).build().await;
    assert!(
        matches!(
            refused,
            Err(EngineError::PartitionsMismatch {
                stored: 4,
                requested: 8
            })
        ),
        "{:?}",
        refused.err()
    );
    assert_eq!(
        record::decode_partitions(&storage.get(record::PARTITIONS_KEY).unwrap().unwrap()),
        Ok(4),
        "the refused build wrote nothing"
    );
    // The same count, or none, builds.
    let again = Engine::builder(storage.clone())
        .partitions(4)
        .build()
        .await
        .unwrap();
    again.shutdown().await;

    // A store created before partitions existed (no count stored) has one.
    let old = MemoryStorage::new();
    old.put(record::EPOCH_KEY, &record::encode_epoch(1))
        .unwrap();
    let refused = Engine::builder(old.clone()).partitions(2).build().await;
    assert!(matches!(
        refused,
        Err(EngineError::PartitionsMismatch {
            stored: 1,
            requested: 2
        })
    ));
    let one = Engine::builder(old).build().await.unwrap();
    assert_eq!(one.partitions(), 1);
    assert_eq!(one.partition_of("anything"), Partition::ZERO.index());
    one.shutdown().await;
}
