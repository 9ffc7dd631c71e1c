//! The engine calls storage (which blocks) only off the async worker threads, so a long read
//! never stalls the other tasks of the runtime (on a `current_thread` runtime: all of them).

mod engine_support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::ThreadId;
use std::time::Duration;

use engine_support::*;
use serde::{Deserialize, Serialize};
use weft_runtime::engine::{Engine, GroupBy, ListFilter, StartOptions, WorkflowStatus};
use weft_runtime::storage::{Batch, Condition, Entry, MemoryStorage, Storage, StorageError};
use weft_runtime::{
    ActivityContext, ActivityError, Decision, RetentionPolicy, ReviewFilter, ReviewOutcome,
    ReviewRequest, ScheduleSpec, Signal, Trigger, Update, UpdateOptions, WorkflowContext,
    WorkflowError, activity, workflow,
};

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
    fn apply_if(&self, conditions: &[Condition], batch: &Batch) -> Result<(), StorageError> {
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
    // Unfinished workflows are counted from their counters.
    *storage.gate.lock().unwrap() = Some((b"lcnt/", gate));
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

/// Memory storage that notes every call made on one thread: the thread that runs a
/// `current_thread` runtime, where every task of it runs, so a call there blocked them all.
#[derive(Clone)]
struct Watched {
    inner: MemoryStorage,
    runtime_thread: ThreadId,
    /// What was called on the runtime's thread: the call and its key.
    on_runtime: Arc<Mutex<Vec<String>>>,
    /// Calls made anywhere, so the test knows the workload reached storage at all.
    calls: Arc<AtomicUsize>,
}

impl Watched {
    fn on_this_thread() -> Self {
        Watched {
            inner: MemoryStorage::default(),
            runtime_thread: std::thread::current().id(),
            on_runtime: Arc::default(),
            calls: Arc::default(),
        }
    }

    fn note(&self, call: &str, key: &[u8]) {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if std::thread::current().id() == self.runtime_thread {
            self.on_runtime
                .lock()
                .unwrap()
                .push(format!("{call} {}", String::from_utf8_lossy(key)));
        }
    }

    fn on_runtime(&self) -> Vec<String> {
        self.on_runtime.lock().unwrap().clone()
    }
}

impl Storage for Watched {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.note("get", key);
        self.inner.get(key)
    }
    fn scan(
        &self,
        start: std::ops::Bound<&[u8]>,
        end: std::ops::Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StorageError> {
        let from = match start {
            std::ops::Bound::Included(from) | std::ops::Bound::Excluded(from) => from,
            std::ops::Bound::Unbounded => b"",
        };
        self.note("scan", from);
        self.inner.scan(start, end, limit)
    }
    fn apply_if(&self, conditions: &[Condition], batch: &Batch) -> Result<(), StorageError> {
        self.note("write", b"");
        self.inner.apply_if(conditions, batch)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Signal)]
struct Go {
    n: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, Update)]
#[update(response = u64, name = "blocking_reads.add")]
struct Add {
    n: u64,
}

#[activity]
async fn double(_ctx: ActivityContext, n: u64) -> Result<u64, ActivityError> {
    Ok(n * 2)
}

#[workflow]
async fn leaf(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    let doubled = ctx.run(double, n).await?;
    Ok(doubled)
}

/// Takes every kind of durable await the engine resumes from storage.
#[workflow]
async fn tour(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    ctx.set_attribute("stage", "start");
    let a = ctx.run(double, n).await?;
    ctx.sleep(Duration::from_millis(2)).await;
    let go = ctx.wait_for_signal::<Go>().await;
    let (add, reply) = ctx.wait_for_update::<Add>().await;
    ctx.respond(reply, a + add.n);
    let child = ctx.child(leaf, go.n).await?;
    let (b, ()) = ctx
        .all((ctx.run(double, 1), ctx.sleep(Duration::from_millis(2))))
        .await;
    let review = ctx
        .review(ReviewRequest {
            title: "tour".to_string(),
            reviewers: vec!["ana".to_string()],
            timeout: Duration::from_secs(3600),
        })
        .await;
    let approved = matches!(review, ReviewOutcome::Approved { .. });
    ctx.set_attribute("stage", "end");
    Ok(a + add.n + child + b? + u64::from(approved))
}

/// Waits for a signal that never comes.
#[workflow]
async fn idle(ctx: &mut WorkflowContext, _n: u64) -> Result<u64, WorkflowError> {
    let go = ctx.wait_for_signal::<Go>().await;
    Ok(go.n)
}

async fn build_watched(storage: &Watched) -> Engine {
    Engine::builder(storage.clone())
        .register::<tour>()
        .register::<leaf>()
        .register::<idle>()
        .build()
        .await
        .unwrap()
}

fn with_id(id: &str) -> StartOptions {
    StartOptions {
        id: Some(id.to_string()),
        ..StartOptions::default()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn no_storage_call_runs_on_a_runtime_thread() {
    let storage = Watched::on_this_thread();
    let engine = build_watched(&storage).await;

    // Every kind of step, and the calls about a workflow, while it runs.
    engine.start_with::<tour>(3, with_id("tour")).await.unwrap();
    engine
        .start_with::<idle>(0, with_id("cancelled"))
        .await
        .unwrap();
    let deadline = StartOptions {
        execution_timeout: Some(Duration::from_millis(5)),
        ..with_id("timed-out")
    };
    engine.start_with::<idle>(0, deadline).await.unwrap();
    engine
        .start_with::<idle>(0, with_id("recovered"))
        .await
        .unwrap();
    wait_status(&engine, "tour", WorkflowStatus::Waiting).await;
    engine.signal("tour", Go { n: 5 }).await.unwrap();
    let options = UpdateOptions {
        update_id: "one".to_string(),
        timeout: Duration::from_secs(60),
    };
    assert_eq!(
        engine.update("tour", Add { n: 1 }, options).await.unwrap(),
        7
    );
    while engine
        .pending_reviews(&ReviewFilter::default(), 10, None)
        .await
        .unwrap()
        .items
        .is_empty()
    {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let approve = Decision::Approved {
        by: "ana".to_string(),
        comment: String::new(),
    };
    engine.decide_review("tour", approve).await.unwrap();
    assert_eq!(
        engine.result::<tour>("tour").await.unwrap().unwrap(),
        6 + 1 + 10 + 2 + 1
    );
    engine.cancel("cancelled").await.unwrap();
    assert!(engine.result::<idle>("cancelled").await.is_err());
    assert!(engine.result::<idle>("timed-out").await.is_err());
    engine.describe("tour").await.unwrap();
    engine.state::<idle>("recovered").await.unwrap();
    engine.list(&ListFilter::default(), 10, None).await.unwrap();
    engine
        .count(&ListFilter::default(), GroupBy::Status)
        .await
        .unwrap();
    engine.probe().await.unwrap();

    // Schedules, retention and purges.
    let spec = ScheduleSpec::new(
        "idle",
        serde_json::json!(1),
        Trigger::every(Duration::from_secs(3600)),
    );
    engine.create_schedule("hourly", spec).await.unwrap();
    engine.list_schedules(10, None).await.unwrap();
    engine.describe_schedule("hourly", 10).await.unwrap();
    engine.trigger_schedule("hourly").await.unwrap();
    engine
        .sweep_retention(&RetentionPolicy::keep_finished_for(Duration::from_secs(
            3600,
        )))
        .await
        .unwrap();
    engine.purge("cancelled").await.unwrap();

    // A restart: ownership, recovery and the resumed runner.
    engine.shutdown().await;
    let engine = build_watched(&storage).await;
    engine.signal("recovered", Go { n: 9 }).await.unwrap();
    assert_eq!(
        engine.result::<idle>("recovered").await.unwrap().unwrap(),
        9
    );
    engine.shutdown().await;

    assert!(storage.calls.load(Ordering::SeqCst) > 100);
    assert_eq!(
        storage.on_runtime(),
        Vec::<String>::new(),
        "storage was called on the runtime's thread, blocking every task of it"
    );
}
