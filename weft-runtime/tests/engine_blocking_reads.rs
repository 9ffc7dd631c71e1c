//! Listings and counts read storage off the async worker threads, so a long read never stalls
//! the other tasks of the runtime (on a `current_thread` runtime: all of them).

mod engine_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use engine_support::*;
use weft_runtime::engine::{Engine, GroupBy, ListFilter};
use weft_runtime::storage::{Batch, Condition, Entry, MemoryStorage, Storage, StorageError};

/// The key prefix whose next scan waits, and what releases it.
type Gate = (&'static [u8], mpsc::Receiver<()>);

/// Memory storage whose next scan under a chosen prefix, once armed, blocks its thread until
/// released (or until a bound passes, which the test reports as the stall it guards against).
#[derive(Clone, Default)]
struct Gated {
    inner: MemoryStorage,
    gate: Arc<Mutex<Option<Gate>>>,
    scanning: Arc<AtomicBool>,
    stalled: Arc<AtomicBool>,
}

impl Storage for Gated {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.inner.get(key)
    }
    fn scan(
        &self,
        start: std::ops::Bound<&[u8]>,
        end: std::ops::Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StorageError> {
        let gate = {
            let mut gate = self.gate.lock().unwrap();
            let armed_here = match (&*gate, start) {
                (
                    Some((prefix, _)),
                    std::ops::Bound::Included(from) | std::ops::Bound::Excluded(from),
                ) => from.starts_with(prefix),
                _ => false,
            };
            if armed_here { gate.take() } else { None }
        };
        if let Some((_, release)) = gate {
            self.scanning.store(true, Ordering::SeqCst);
            if release.recv_timeout(Duration::from_secs(5)).is_err() {
                self.stalled.store(true, Ordering::SeqCst);
            }
        }
        self.inner.scan(start, end, limit)
    }
    fn apply_if(&self, conditions: &[Condition], batch: Batch) -> Result<(), StorageError> {
        self.inner.apply_if(conditions, batch)
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_count_that_reads_for_long_does_not_stall_the_runtime() {
    let storage = Gated::default();
    let engine = Engine::builder(storage.clone())
        .register::<waiter>()
        .build()
        .await
        .unwrap();
    for _ in 0..3 {
        engine.start::<waiter>(1).await.unwrap();
    }
    let (release, gate) = mpsc::channel();
    // Unfinished workflows are counted from the live index.
    *storage.gate.lock().unwrap() = Some((b"live/", gate));
    let counting = {
        let engine = engine.clone();
        tokio::spawn(async move {
            engine
                .count(&ListFilter::default(), GroupBy::Status)
                .await
                .unwrap()
        })
    };
    // This task runs while the count's read blocks: only then can it release the read.
    while !storage.scanning.load(Ordering::SeqCst) {
        tokio::task::yield_now().await;
    }
    release.send(()).unwrap();
    let counts = counting.await.unwrap();
    assert!(
        !storage.stalled.load(Ordering::SeqCst),
        "the read blocked the runtime's only thread"
    );
    assert_eq!(counts, vec![("Waiting".to_string(), 3)]);
}

#[tokio::test(flavor = "current_thread")]
async fn a_listing_that_reads_for_long_does_not_stall_the_runtime() {
    let storage = Gated::default();
    let engine = Engine::builder(storage.clone())
        .register::<waiter>()
        .build()
        .await
        .unwrap();
    engine.start::<waiter>(1).await.unwrap();
    let (release, gate) = mpsc::channel();
    *storage.gate.lock().unwrap() = Some((b"wf/", gate));
    let listing = {
        let engine = engine.clone();
        tokio::spawn(async move { engine.list(&ListFilter::default(), 10, None).await.unwrap() })
    };
    while !storage.scanning.load(Ordering::SeqCst) {
        tokio::task::yield_now().await;
    }
    release.send(()).unwrap();
    let page = listing.await.unwrap();
    assert!(!storage.stalled.load(Ordering::SeqCst));
    assert_eq!(page.items.len(), 1);
}
