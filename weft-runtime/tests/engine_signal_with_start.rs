//! Signal-with-start: one atomic call that starts a workflow or signals the live one.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use weft_runtime::storage::{Batch, Condition, Entry, MemoryStorage, Storage, StorageError};
use weft_runtime::{
    Engine, EngineError, Signal, SignalWithStart, WorkflowContext, WorkflowError, workflow,
};

/// One item for `cart`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Signal)]
pub struct Add {
    /// The item.
    pub item: u32,
}

/// Collects `expected` items, in the order they are delivered.
#[workflow]
async fn cart(ctx: &mut WorkflowContext, expected: u32) -> Result<Vec<u32>, WorkflowError> {
    let mut items: Vec<u32> = Vec::new();
    while (items.len() as u32) < expected {
        let add = ctx.wait_for_signal::<Add>().await;
        items.push(add.item);
    }
    Ok(items)
}

async fn engine(storage: impl Storage) -> Engine {
    Engine::builder(storage)
        .register::<cart>()
        .build()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_once_then_signals_the_live_run_then_refuses_a_finished_one() {
    let engine = engine(MemoryStorage::new()).await;
    let first = engine
        .signal_with_start::<cart, _>("cart-1", 3, Add { item: 10 })
        .await
        .unwrap();
    assert!(matches!(first, SignalWithStart::Started(_)));
    for item in [11, 12] {
        let next = engine
            .signal_with_start::<cart, _>("cart-1", 99, Add { item })
            .await
            .unwrap();
        assert!(!next.started(), "{next:?}");
        assert_eq!(next.handle().id(), "cart-1");
    }
    // The input of the calls that only signalled is not used.
    assert_eq!(
        first.handle().result().await.unwrap().unwrap(),
        [10, 11, 12]
    );
    assert!(matches!(
        engine
            .signal_with_start::<cart, _>("cart-1", 3, Add { item: 13 })
            .await,
        Err(EngineError::Finished { .. })
    ));
    assert!(matches!(
        engine
            .signal_with_start::<cart, _>("", 3, Add { item: 13 })
            .await,
        Err(EngineError::InvalidId { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_on_one_id_start_it_exactly_once_and_deliver_every_signal() {
    const CALLS: u32 = 16;
    for _round in 0..5 {
        let engine = engine(MemoryStorage::new()).await;
        let calls: Vec<_> = (0..CALLS)
            .map(|item| {
                let engine = engine.clone();
                tokio::spawn(async move {
                    engine
                        .signal_with_start::<cart, _>("shared", CALLS, Add { item })
                        .await
                        .unwrap()
                        .started()
                })
            })
            .collect();
        let mut starts = 0;
        for call in calls {
            starts += u32::from(call.await.unwrap());
        }
        assert_eq!(starts, 1);
        let mut items = engine
            .handle::<cart>("shared")
            .result()
            .await
            .unwrap()
            .unwrap();
        items.sort();
        assert_eq!(items, (0..CALLS).collect::<Vec<_>>());
    }
}

/// Memory storage that accepts `budget` more commits, then fails every write: the process
/// "dies" right after its `budget`-th commit.
#[derive(Clone)]
struct Budget {
    inner: MemoryStorage,
    left: Arc<AtomicU64>,
}

impl Storage for Budget {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.inner.get(key)
    }
    fn scan(
        &self,
        start: std::ops::Bound<&[u8]>,
        end: std::ops::Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StorageError> {
        self.inner.scan(start, end, limit)
    }
    fn apply_if(&self, conditions: &[Condition], batch: &Batch) -> Result<(), StorageError> {
        if self
            .left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_err()
        {
            return Err(StorageError::backend("crashed"));
        }
        self.inner.apply_if(conditions, batch)
    }
}

/// Sends items 1..=3 with signal-with-start, the engine dying after each of its commits in turn
/// and a new one recovering; a call that failed in the crash is retried on the new engine, as a
/// client would. Every run ends with all three items in send order and exactly one start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_a_crash_after_every_commit() {
    let mut crash_after = 1; // the first commit is the engine's epoch claim
    loop {
        let memory = MemoryStorage::new();
        let left = Arc::new(AtomicU64::new(crash_after));
        let mut engine = engine(Budget {
            inner: memory.clone(),
            left: Arc::clone(&left),
        })
        .await;
        let mut crashed = false;
        let mut starts = 0;
        for item in 1..=3 {
            loop {
                match engine
                    .signal_with_start::<cart, _>("c", 3, Add { item })
                    .await
                {
                    Ok(done) => {
                        starts += u32::from(done.started());
                        break;
                    }
                    Err(EngineError::Storage(_)) if !crashed => {
                        crashed = true;
                        engine.shutdown().await;
                        engine = self::engine(memory.clone()).await;
                    }
                    Err(e) => panic!("crash after {crash_after}: unexpected {e}"),
                }
            }
        }
        let items = loop {
            // The engine holds (and retries) a commit of the workflow's own that storage
            // refused, so its result waits: a dead process never answers either.
            let held = async {
                while engine.transitions_awaiting_storage() == 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
            };
            let handle = engine.handle::<cart>("c");
            let waited = tokio::select! {
                result = handle.result() => Some(result),
                () = held => None,
            };
            match waited {
                Some(Ok(items)) => break items.unwrap(),
                // The crash hit the workflow's own commit: recover it on a new engine.
                None if !crashed => {
                    crashed = true;
                    drop(handle);
                    engine.shutdown().await;
                    engine = self::engine(memory.clone()).await;
                }
                Some(Err(e)) => panic!("crash after {crash_after}: {e}"),
                None => panic!("crash after {crash_after}: a second crash"),
            }
        };
        assert_eq!(items, [1, 2, 3], "crash after {crash_after}");
        assert_eq!(starts, 1, "crash after {crash_after}");
        engine.shutdown().await;
        if !crashed {
            // The budget outlasted the whole run: every commit point was tried.
            assert!(crash_after > 4);
            break;
        }
        crash_after += 1;
    }
}
