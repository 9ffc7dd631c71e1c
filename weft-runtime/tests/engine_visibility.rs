//! Visibility indexes: listing by type reads the type index, counting finished workflows reads
//! the counters the writer keeps, a purge takes a workflow out of both, and a store written
//! before the indexes existed is indexed by the first engine built on it.

mod engine_support;

use engine_support::*;
use weft_runtime::engine::record;
use weft_runtime::engine::{Engine, GroupBy, ListFilter, WorkflowStatus};
use weft_runtime::storage::{Batch, MemoryStorage, Storage};
use weft_runtime::{EngineError, StartOptions};

async fn engine_on(storage: &MemoryStorage) -> Engine {
    Engine::builder(storage.clone())
        .register::<waiter>()
        .register::<single>()
        .build()
        .await
        .unwrap()
}

fn with_id(id: String) -> StartOptions {
    StartOptions {
        id: Some(id),
        ..Default::default()
    }
}

/// `finished` waiters that finish at once, `waiting` that wait for one approval, and `singles`
/// that run one activity each, all run to where they stop.
async fn populate(engine: &Engine, finished: u32, waiting: u32, singles: u32) {
    for i in 0..finished {
        let handle = engine
            .start_with::<waiter>(0, with_id(format!("done-{i:03}")))
            .await
            .unwrap();
        handle.result().await.unwrap().unwrap();
    }
    for i in 0..waiting {
        engine
            .start_with::<waiter>(1, with_id(format!("wait-{i:03}")))
            .await
            .unwrap();
    }
    for i in 0..singles {
        let handle = engine
            .start_with::<single>(format!("s{i}"), with_id(format!("single-{i:03}")))
            .await
            .unwrap();
        handle.result().await.unwrap().unwrap();
    }
}

fn count_of(counts: &[(String, u64)], group: &str) -> u64 {
    counts
        .iter()
        .find(|(name, _)| name == group)
        .map_or(0, |(_, n)| *n)
}

/// Every id listed by `filter`, page by page.
async fn list_all(engine: &Engine, filter: &ListFilter, page_size: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = engine
            .list(filter, page_size, token.as_deref())
            .await
            .unwrap();
        ids.extend(page.items.into_iter().map(|item| item.id));
        match page.next_page_token {
            Some(next) => token = Some(next),
            None => return ids,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_and_type_listings_agree_with_what_is_stored() {
    let storage = MemoryStorage::new();
    let engine = engine_on(&storage).await;
    populate(&engine, 7, 3, 4).await;

    let by_status = engine
        .count(&ListFilter::default(), GroupBy::Status)
        .await
        .unwrap();
    assert_eq!(
        by_status,
        vec![("Completed".to_string(), 11), ("Waiting".to_string(), 3)]
    );
    let by_type = engine
        .count(&ListFilter::default(), GroupBy::Type)
        .await
        .unwrap();
    assert_eq!(
        by_type,
        vec![("single".to_string(), 4), ("waiter".to_string(), 10)]
    );
    let waiters = ListFilter {
        workflow_type: Some("waiter".into()),
        ..Default::default()
    };
    let completed_waiters = ListFilter {
        status: Some(WorkflowStatus::Completed),
        ..waiters.clone()
    };
    assert_eq!(
        engine
            .count(&completed_waiters, GroupBy::Status)
            .await
            .unwrap(),
        vec![("Completed".to_string(), 7)]
    );

    // Listing by type pages through the type index in id order.
    let listed = list_all(&engine, &waiters, 4).await;
    let mut expected: Vec<String> = (0..7).map(|i| format!("done-{i:03}")).collect();
    expected.extend((0..3).map(|i| format!("wait-{i:03}")));
    assert_eq!(listed, expected);
    let singles = ListFilter {
        workflow_type: Some("single".into()),
        id_prefix: Some("single-00".into()),
        ..Default::default()
    };
    assert_eq!(list_all(&engine, &singles, 2).await.len(), 4);
    let none = ListFilter {
        workflow_type: Some("nothing".into()),
        ..Default::default()
    };
    assert!(list_all(&engine, &none, 10).await.is_empty());

    // A waiting workflow that finishes moves from the live count to the counters.
    engine
        .signal("wait-000", Approval { by: "ada".into() })
        .await
        .unwrap();
    wait_status(&engine, "wait-000", WorkflowStatus::Completed).await;
    let by_status = engine
        .count(&ListFilter::default(), GroupBy::Status)
        .await
        .unwrap();
    assert_eq!(count_of(&by_status, "Completed"), 12);
    assert_eq!(count_of(&by_status, "Waiting"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_takes_a_workflow_out_of_the_counts_and_the_type_index() {
    let storage = MemoryStorage::new();
    let engine = engine_on(&storage).await;
    populate(&engine, 3, 0, 1).await;
    engine.purge("done-001").await.unwrap();
    engine.purge("single-000").await.unwrap();
    // A second purge of the same id changes nothing.
    assert!(matches!(
        engine.purge("done-001").await,
        Err(EngineError::NotFound { .. })
    ));
    let by_type = engine
        .count(&ListFilter::default(), GroupBy::Type)
        .await
        .unwrap();
    assert_eq!(by_type, vec![("waiter".to_string(), 2)]);
    let waiters = ListFilter {
        workflow_type: Some("waiter".into()),
        ..Default::default()
    };
    assert_eq!(
        list_all(&engine, &waiters, 10).await,
        ["done-000", "done-002"]
    );
    let finished = storage
        .scan_prefix(record::FINISHED_PREFIX, None, usize::MAX)
        .unwrap();
    assert_eq!(
        finished.len(),
        2,
        "the finish-time index keeps the other two"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_survive_a_restart() {
    let storage = MemoryStorage::new();
    let engine = engine_on(&storage).await;
    populate(&engine, 5, 2, 0).await;
    engine.shutdown().await;
    let engine = engine_on(&storage).await;
    populate(&engine, 0, 0, 2).await;
    let by_status = engine
        .count(&ListFilter::default(), GroupBy::Status)
        .await
        .unwrap();
    assert_eq!(
        by_status,
        vec![("Completed".to_string(), 7), ("Waiting".to_string(), 2)]
    );
}

/// Deletes the indexes and their marker: what a store written before they existed holds.
fn strip_indexes(storage: &MemoryStorage) {
    let mut batch = Batch::new();
    for prefix in [
        record::TYPE_INDEX_PREFIX,
        record::FINISHED_PREFIX,
        record::COUNTER_PREFIX,
    ] {
        for (key, _) in storage.scan_prefix(prefix, None, usize::MAX).unwrap() {
            batch.delete(key);
        }
    }
    batch.delete(record::VISIBILITY_INDEX_KEY.to_vec());
    storage.apply(batch).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_from_before_the_indexes_is_indexed_at_the_first_build() {
    let storage = MemoryStorage::new();
    let engine = engine_on(&storage).await;
    populate(&engine, 600, 2, 3).await;
    engine.shutdown().await;
    let before = dump(&storage);
    strip_indexes(&storage);
    assert!(
        storage
            .scan_prefix(record::COUNTER_PREFIX, None, 1)
            .unwrap()
            .is_empty()
    );

    let engine = engine_on(&storage).await;
    let after = dump(&storage);
    for prefix in [
        record::TYPE_INDEX_PREFIX,
        record::FINISHED_PREFIX,
        record::COUNTER_PREFIX,
    ] {
        let pick = |all: &std::collections::HashMap<Vec<u8>, Vec<u8>>| {
            let mut picked: Vec<_> = all
                .iter()
                .filter(|(key, _)| key.starts_with(prefix))
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect();
            picked.sort();
            picked
        };
        assert_eq!(
            pick(&after),
            pick(&before),
            "the backfill rebuilds {} as the engine wrote it",
            String::from_utf8_lossy(prefix)
        );
    }
    assert!(storage.get(record::VISIBILITY_INDEX_KEY).unwrap().is_some());
    let by_status = engine
        .count(&ListFilter::default(), GroupBy::Status)
        .await
        .unwrap();
    assert_eq!(
        by_status,
        vec![("Completed".to_string(), 603), ("Waiting".to_string(), 2)]
    );
}
