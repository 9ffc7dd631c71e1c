//! Listings sorted by creation and update time: they read the created-time index and the
//! update-time index of live workflows merged with the finish-time index, page both ways, stay
//! in step with every write of a record, and are backfilled on a store written before them.

mod engine_support;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use engine_support::*;
use weft_runtime::StartOptions;
use weft_runtime::engine::record::{self, WorkflowRecord};
use weft_runtime::engine::{Engine, ListFilter, ListOrder, VirtualClock, WorkflowStatus};
use weft_runtime::storage::{Batch, MemoryStorage, Storage};

const T0: u64 = 1_800_000_000_000;

fn at(ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
}

async fn engine_on(storage: &MemoryStorage, clock: &VirtualClock) -> Engine {
    Engine::builder(storage.clone())
        .clock(Arc::new(clock.clone()))
        .register::<waiter>()
        .build()
        .await
        .unwrap()
}

fn with_id(id: &str) -> StartOptions {
    StartOptions {
        id: Some(id.into()),
        ..Default::default()
    }
}

/// Every id listed by `filter`, `page_size` at a time.
async fn list_all(engine: &Engine, filter: &ListFilter, page_size: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = engine
            .list(filter, page_size, token.as_deref())
            .await
            .unwrap();
        assert!(page.items.len() <= page_size);
        ids.extend(page.items.into_iter().map(|item| item.id));
        match page.next_page_token {
            Some(next) => token = Some(next),
            None => return ids,
        }
    }
}

fn ordered(order: ListOrder) -> ListFilter {
    ListFilter {
        order,
        ..Default::default()
    }
}

/// The time indexes name exactly the stored workflows, at their stored times: every record
/// has one `crt/` entry at its creation time, every live one one `lupd/` entry at its last
/// update, and no finished one any.
fn assert_indexes_agree(storage: &MemoryStorage) {
    let records: Vec<(String, WorkflowRecord)> = storage
        .scan_prefix(record::WORKFLOW_PREFIX, None, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|(key, value)| {
            let (_, id) = record::parse_id_key(record::WORKFLOW_PREFIX, &key).unwrap();
            let id = id.to_string();
            (id, record::decode_record(&value).unwrap())
        })
        .collect();
    let keys = |prefix: &[u8]| -> Vec<Vec<u8>> {
        let mut keys: Vec<Vec<u8>> = storage
            .scan_prefix(prefix, None, usize::MAX)
            .unwrap()
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        keys.sort();
        keys
    };
    let mut created: Vec<Vec<u8>> = records
        .iter()
        .map(|(id, r)| record::created_key(r.created_ms, id))
        .collect();
    created.sort();
    assert_eq!(keys(record::CREATED_PREFIX), created);
    let mut live: Vec<Vec<u8>> = records
        .iter()
        .filter(|(_, r)| !r.status.is_terminal())
        .map(|(id, r)| record::live_updated_key(r.updated_ms, id))
        .collect();
    live.sort();
    assert_eq!(keys(record::LIVE_UPDATED_PREFIX), live);
}

/// `a` created at T0+1s and signalled at T0+4s (still waiting), `b` created and finished at
/// T0+2s, `c` created at T0+3s and waiting, `d` created at T0+5s and waiting.
async fn four(engine: &Engine, clock: &VirtualClock) {
    let second = Duration::from_secs(1);
    clock.set(at(T0 + 1000));
    engine.start_with::<waiter>(2, with_id("a")).await.unwrap();
    clock.advance(second);
    let b = engine.start_with::<waiter>(0, with_id("b")).await.unwrap();
    b.result().await.unwrap().unwrap();
    clock.advance(second);
    engine.start_with::<waiter>(1, with_id("c")).await.unwrap();
    wait_status(engine, "a", WorkflowStatus::Waiting).await;
    clock.advance(second);
    engine
        .signal("a", Approval { by: "x".into() })
        .await
        .unwrap();
    eventually_async(engine, "a", |d| d.step == 2).await;
    clock.advance(second);
    engine.start_with::<waiter>(1, with_id("d")).await.unwrap();
    wait_status(engine, "d", WorkflowStatus::Waiting).await;
}

async fn eventually_async(
    engine: &Engine,
    id: &str,
    check: impl Fn(&weft_runtime::engine::WorkflowDescription) -> bool,
) {
    for _ in 0..10_000 {
        if check(&engine.describe(id).await.unwrap()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("workflow {id} never got there");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_sort_by_created_and_updated_time_both_ways_page_by_page() {
    let storage = MemoryStorage::new();
    let clock = VirtualClock::new(at(T0));
    let engine = engine_on(&storage, &clock).await;
    four(&engine, &clock).await;
    let a = engine.describe("a").await.unwrap();
    assert_eq!(a.updated_at, at(T0 + 4000));

    for page_size in [1, 2, 3, 10] {
        let list = |order| {
            let engine = &engine;
            async move { list_all(engine, &ordered(order), page_size).await }
        };
        assert_eq!(list(ListOrder::CreatedAsc).await, ["a", "b", "c", "d"]);
        assert_eq!(list(ListOrder::CreatedDesc).await, ["d", "c", "b", "a"]);
        assert_eq!(list(ListOrder::UpdatedAsc).await, ["b", "c", "a", "d"]);
        assert_eq!(list(ListOrder::UpdatedDesc).await, ["d", "a", "c", "b"]);
        assert_eq!(list(ListOrder::Id).await, ["a", "b", "c", "d"]);
    }

    // A status reads one side of the merge; a time range on the sort key bounds the scan.
    let waiting_newest = ListFilter {
        status: Some(WorkflowStatus::Waiting),
        order: ListOrder::UpdatedDesc,
        ..Default::default()
    };
    assert_eq!(list_all(&engine, &waiting_newest, 2).await, ["d", "a", "c"]);
    let finished = ListFilter {
        status: Some(WorkflowStatus::Completed),
        order: ListOrder::UpdatedAsc,
        ..Default::default()
    };
    assert_eq!(list_all(&engine, &finished, 2).await, ["b"]);
    let window = ListFilter {
        updated_after: Some(at(T0 + 3000)),
        updated_before: Some(at(T0 + 5000)),
        order: ListOrder::UpdatedDesc,
        ..Default::default()
    };
    assert_eq!(list_all(&engine, &window, 1).await, ["a", "c"]);
    let created_window = ListFilter {
        created_after: Some(at(T0 + 2000)),
        order: ListOrder::CreatedAsc,
        ..Default::default()
    };
    assert_eq!(list_all(&engine, &created_window, 1).await, ["b", "c", "d"]);

    // The token of a page carries the sort key: the next page starts right after it.
    let first = engine
        .list(&ordered(ListOrder::UpdatedDesc), 2, None)
        .await
        .unwrap();
    let token = first.next_page_token.unwrap();
    assert_eq!(token, format!("{}/a", T0 + 4000));
    assert!(matches!(
        engine
            .list(&ordered(ListOrder::UpdatedDesc), 2, Some("not-a-time/a"))
            .await,
        Err(weft_runtime::EngineError::InvalidPageToken)
    ));
    assert_indexes_agree(&storage);

    // A step moves the workflow in the update order; finishing hands it to `fin/`.
    clock.advance(Duration::from_secs(1));
    engine
        .signal("c", Approval { by: "y".into() })
        .await
        .unwrap();
    engine.result::<waiter>("c").await.unwrap().unwrap();
    assert_eq!(
        list_all(&engine, &ordered(ListOrder::UpdatedDesc), 2).await,
        ["c", "d", "a", "b"]
    );
    assert_indexes_agree(&storage);

    // A purge takes the workflow out of the created-time index.
    engine.purge("b").await.unwrap();
    assert_eq!(
        list_all(&engine, &ordered(ListOrder::CreatedAsc), 2).await,
        ["a", "c", "d"]
    );
    assert_indexes_agree(&storage);
}

/// Deletes the time and children indexes and their marker, as a store written before they
/// existed holds none.
fn strip_order_indexes(storage: &MemoryStorage) {
    let mut batch = Batch::new();
    for prefix in [
        record::CREATED_PREFIX,
        record::LIVE_UPDATED_PREFIX,
        record::CHILD_PREFIX,
    ] {
        for (key, _) in storage.scan_prefix(prefix, None, usize::MAX).unwrap() {
            batch.delete(key);
        }
    }
    batch.delete(record::ORDER_INDEX_KEY.to_vec());
    storage.apply(batch).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_from_before_the_time_indexes_is_indexed_at_the_first_build() {
    let storage = MemoryStorage::new();
    let clock = VirtualClock::new(at(T0));
    let engine = engine_on(&storage, &clock).await;
    four(&engine, &clock).await;
    // More than a backfill page of records, so the backfill resumes after its cursor.
    for i in 0..600 {
        let handle = engine
            .start_with::<waiter>(0, with_id(&format!("z{i:03}")))
            .await
            .unwrap();
        handle.result().await.unwrap().unwrap();
    }
    engine.shutdown().await;
    let wanted = |all: &std::collections::HashMap<Vec<u8>, Vec<u8>>| {
        let mut picked: Vec<_> = all
            .keys()
            .filter(|key| {
                key.starts_with(record::CREATED_PREFIX)
                    || key.starts_with(record::LIVE_UPDATED_PREFIX)
            })
            .cloned()
            .collect();
        picked.sort();
        picked
    };
    let before = wanted(&dump(&storage));
    assert_eq!(before.len(), 604 + 3);
    strip_order_indexes(&storage);
    assert!(wanted(&dump(&storage)).is_empty());

    let engine = engine_on(&storage, &clock).await;
    assert_eq!(wanted(&dump(&storage)), before);
    assert_eq!(
        storage.get(record::ORDER_INDEX_KEY).unwrap().as_deref(),
        Some(record::ORDER_INDEX_V2)
    );
    assert_indexes_agree(&storage);
    let newest = engine
        .list(&ordered(ListOrder::CreatedAsc), 4, None)
        .await
        .unwrap();
    let ids: Vec<&str> = newest.items.iter().map(|item| item.id.as_str()).collect();
    assert_eq!(ids, ["a", "b", "c", "d"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_counts_the_workflows_started_and_finished_in_it_from_the_indexes() {
    let storage = MemoryStorage::new();
    let clock = VirtualClock::new(at(T0));
    let engine = engine_on(&storage, &clock).await;
    four(&engine, &clock).await;
    let window = |from: u64, to: u64| engine.count_window(at(from), at(to));
    let all = window(T0, T0 + 10_000).await.unwrap();
    assert_eq!((all.started, all.finished), (4, 1));
    // `[from, to)`: a starts at T0+1s, b starts and finishes at T0+2s.
    let first_two = window(T0 + 1000, T0 + 2001).await.unwrap();
    assert_eq!((first_two.started, first_two.finished), (2, 1));
    let before_b = window(T0, T0 + 2000).await.unwrap();
    assert_eq!((before_b.started, before_b.finished), (1, 0));
    let later = window(T0 + 5001, T0 + 10_000).await.unwrap();
    assert_eq!((later.started, later.finished), (0, 0));
    // The oldest waiting, as the dashboard's overview asks for them.
    let oldest_waiting = ListFilter {
        status: Some(WorkflowStatus::Waiting),
        order: ListOrder::UpdatedAsc,
        ..Default::default()
    };
    let page = engine.list(&oldest_waiting, 2, None).await.unwrap();
    let ids: Vec<&str> = page.items.iter().map(|item| item.id.as_str()).collect();
    assert_eq!(ids, ["c", "a"]);
    // A purged workflow is no longer counted.
    engine.purge("b").await.unwrap();
    let all = window(T0, T0 + 10_000).await.unwrap();
    assert_eq!((all.started, all.finished), (3, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflows_updated_within_one_second_list_in_their_exact_order_page_by_page() {
    let storage = MemoryStorage::new();
    let clock = VirtualClock::new(at(T0));
    let engine = engine_on(&storage, &clock).await;
    // All in the second T0: created in the order x, y, z, then x signalled last.
    for (ms, id) in [(100, "z"), (200, "y"), (300, "x")] {
        clock.set(at(T0 + ms));
        engine.start_with::<waiter>(2, with_id(id)).await.unwrap();
        wait_status(&engine, id, WorkflowStatus::Waiting).await;
    }
    clock.set(at(T0 + 400));
    engine
        .signal("z", Approval { by: "x".into() })
        .await
        .unwrap();
    eventually_async(&engine, "z", |d| d.step == 2).await;
    // One entry each, in the same second.
    assert_eq!(
        storage
            .scan_prefix(
                &[record::LIVE_UPDATED_PREFIX, &(T0 / 1000).to_be_bytes()].concat(),
                None,
                10
            )
            .unwrap()
            .len(),
        3
    );
    for page_size in [1, 2, 5] {
        assert_eq!(
            list_all(&engine, &ordered(ListOrder::UpdatedAsc), page_size).await,
            ["y", "x", "z"]
        );
        assert_eq!(
            list_all(&engine, &ordered(ListOrder::UpdatedDesc), page_size).await,
            ["z", "x", "y"]
        );
    }
    let window = ListFilter {
        updated_after: Some(at(T0 + 250)),
        updated_before: Some(at(T0 + 400)),
        order: ListOrder::UpdatedAsc,
        ..Default::default()
    };
    assert_eq!(list_all(&engine, &window, 1).await, ["x"]);
    assert_indexes_agree(&storage);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_with_the_first_update_time_layout_is_rebuilt_at_build() {
    let storage = MemoryStorage::new();
    let clock = VirtualClock::new(at(T0));
    let engine = engine_on(&storage, &clock).await;
    four(&engine, &clock).await;
    engine.shutdown().await;
    // What the first layout left: entries by the millisecond, and its marker.
    let mut batch = Batch::new();
    for (key, _) in storage
        .scan_prefix(record::LIVE_UPDATED_PREFIX, None, usize::MAX)
        .unwrap()
    {
        batch.delete(key);
    }
    batch.put(
        [
            record::LIVE_UPDATED_V1_PREFIX,
            &(T0 + 4000).to_be_bytes(),
            b"a",
        ]
        .concat(),
        Vec::new(),
    );
    batch.put(
        record::ORDER_INDEX_KEY.to_vec(),
        record::ORDER_INDEX_V1.to_vec(),
    );
    storage.apply(batch).unwrap();

    let engine = engine_on(&storage, &clock).await;
    assert!(
        storage
            .scan_prefix(record::LIVE_UPDATED_V1_PREFIX, None, 1)
            .unwrap()
            .is_empty()
    );
    assert_indexes_agree(&storage);
    assert_eq!(
        list_all(&engine, &ordered(ListOrder::UpdatedDesc), 2).await,
        ["d", "a", "c", "b"]
    );
}
