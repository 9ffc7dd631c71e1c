//! The live index (`live/<id>`): a workflow is in it from the commit that creates it to the
//! commit that finishes it; recovery reads it instead of every record; a store written before
//! it existed is indexed by the first engine built on it.

mod engine_support;

use std::ops::Bound;
use std::sync::{Arc, Mutex};

use engine_support::*;
use weft_runtime::engine::record;
use weft_runtime::engine::{Engine, ListFilter, WorkflowStatus};
use weft_runtime::storage::{Batch, Condition, Entry, MemoryStorage, Storage, StorageError};

fn live_ids(storage: &dyn Storage) -> Vec<String> {
    storage
        .scan_prefix(record::LIVE_PREFIX, None, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|(key, _)| {
            let (_, id) = record::parse_id_key(record::LIVE_PREFIX, &key).unwrap();
            id.to_string()
        })
        .collect()
}

async fn engine_on(storage: &MemoryStorage) -> Engine {
    Engine::builder(storage.clone())
        .register::<waiter>()
        .build()
        .await
        .unwrap()
}

/// Starts `waiter(count)` as `id`: 0 finishes at once, more waits for that many approvals.
async fn start(engine: &Engine, id: &str, count: u32) {
    engine
        .start_with::<waiter>(
            count,
            weft_runtime::StartOptions {
                id: Some(id.to_string()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_is_live_from_its_creation_to_its_end() {
    let storage = MemoryStorage::new();
    let engine = engine_on(&storage).await;
    start(&engine, "done-at-once", 0).await;
    start(&engine, "waits", 1).await;
    assert_eq!(live_ids(&storage), ["waits"]);

    engine
        .signal("waits", Approval { by: "ada".into() })
        .await
        .unwrap();
    wait_status(&engine, "waits", WorkflowStatus::Completed).await;
    assert!(live_ids(&storage).is_empty());
    assert_eq!(
        storage.get(record::LIVE_INDEX_KEY).unwrap().as_deref(),
        Some(record::LIVE_INDEX_V1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_written_before_the_index_is_indexed_at_build_and_recovered() {
    let storage = MemoryStorage::new();
    let engine = engine_on(&storage).await;
    start(&engine, "a-finished", 0).await;
    start(&engine, "b-waits", 1).await;
    start(&engine, "c-waits", 2).await;
    engine.shutdown().await;
    // What a store from before the index looks like: no `live/` keys and no marker.
    let mut strip = Batch::new();
    for id in live_ids(&storage) {
        strip.delete(record::live_key(record::Partition::ZERO, &id));
    }
    strip.delete(record::LIVE_INDEX_KEY);
    storage.apply(strip).unwrap();
    assert!(live_ids(&storage).is_empty());

    let engine = engine_on(&storage).await;
    assert_eq!(live_ids(&storage), ["b-waits", "c-waits"]);
    assert!(storage.get(record::LIVE_INDEX_KEY).unwrap().is_some());
    let waiting = ListFilter {
        status: Some(WorkflowStatus::Waiting),
        ..ListFilter::default()
    };
    let page = engine.list(&waiting, 10, None).await.unwrap();
    let ids: Vec<_> = page.items.iter().map(|w| w.id.as_str()).collect();
    assert_eq!(ids, ["b-waits", "c-waits"]);

    engine
        .signal("b-waits", Approval { by: "ada".into() })
        .await
        .unwrap();
    let result = engine.result::<waiter>("b-waits").await.unwrap().unwrap();
    assert_eq!(result, ["ada"]);
    assert_eq!(live_ids(&storage), ["c-waits"]);
}

/// Records which key ranges were scanned.
struct ScanLog {
    inner: MemoryStorage,
    scans: Mutex<Vec<Vec<u8>>>,
}

impl Storage for ScanLog {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.inner.get(key)
    }
    fn scan(
        &self,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StorageError> {
        if let Bound::Included(start) | Bound::Excluded(start) = start {
            self.scans.lock().unwrap().push(start.to_vec());
        }
        self.inner.scan(start, end, limit)
    }
    fn apply_if(&self, conditions: &[Condition], batch: &Batch) -> Result<(), StorageError> {
        self.inner.apply_if(conditions, batch)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_reads_no_finished_workflow() {
    let storage = MemoryStorage::new();
    let engine = engine_on(&storage).await;
    for n in 0..20 {
        start(&engine, &format!("finished-{n:02}"), 0).await;
    }
    start(&engine, "waits", 1).await;
    engine.shutdown().await;

    let log = Arc::new(ScanLog {
        inner: storage.clone(),
        scans: Mutex::new(Vec::new()),
    });
    let engine = Engine::builder(Arc::clone(&log))
        .register::<waiter>()
        .build()
        .await
        .unwrap();
    let scans = log.scans.lock().unwrap().clone();
    assert!(
        scans
            .iter()
            .all(|start| !start.starts_with(record::WORKFLOW_PREFIX)),
        "recovery scanned workflow records: {scans:?}"
    );
    assert!(
        scans
            .iter()
            .any(|start| start.starts_with(record::LIVE_PREFIX))
    );
    // The one live workflow was recovered and still runs to its end.
    engine
        .signal("waits", Approval { by: "ada".into() })
        .await
        .unwrap();
    wait_status(&engine, "waits", WorkflowStatus::Completed).await;
}
