//! The writer's queue is bounded for callers: while storage is slow, requests beyond
//! `EngineBuilder::max_queued_requests` are refused at once with `EngineError::Overloaded`
//! (kind `Unavailable`, code `engine.overloaded`), while the engine's own transitions of work it
//! acknowledged always get in, and everything admitted lands once storage catches up.
//!
//! Storage is slowed deterministically: a gate that holds every commit until the test opens it.

use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use weft_runtime::engine::{ErrorKind, ListFilter};
use weft_runtime::storage::{Batch, Condition, Entry, MemoryStorage, Storage, StorageError};
use weft_runtime::{
    ActivityError, Engine, EngineError, Signal, StartOptions, WorkflowContext, WorkflowError,
    activity, workflow,
};

/// Holds commits while shut; counts those it holds.
#[derive(Default)]
struct CommitGate {
    state: Mutex<(bool, usize)>,
    changed: Condvar,
}

impl CommitGate {
    fn set_open(&self, open: bool) {
        self.state.lock().unwrap().0 = open;
        self.changed.notify_all();
    }

    /// Waits (blocking) until `held` commits are held, failing after a deadline.
    fn wait_held(&self, held: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut state = self.state.lock().unwrap();
        while state.1 < held {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no commit reached storage");
            state = self.changed.wait_timeout(state, left).unwrap().0;
        }
    }
}

/// Memory storage whose commits wait at a [`CommitGate`].
#[derive(Clone)]
struct GatedStorage {
    inner: MemoryStorage,
    gate: Arc<CommitGate>,
}

impl Storage for GatedStorage {
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
        let mut state = self.gate.state.lock().unwrap();
        if !state.0 {
            state.1 += 1;
            self.gate.changed.notify_all();
            while !state.0 {
                state = self.gate.changed.wait(state).unwrap();
            }
            state.1 -= 1;
        }
        drop(state);
        self.inner.apply_if(conditions, batch)
    }
}

/// Shut until the test has filled the writer's queue.
static ACTIVITY_GATE: OnceLock<watch::Sender<bool>> = OnceLock::new();
/// How many activities are waiting at the gate.
static WAITING: OnceLock<watch::Sender<usize>> = OnceLock::new();
/// How many activities went through the gate and returned.
static RETURNED: OnceLock<watch::Sender<usize>> = OnceLock::new();

fn activity_gate() -> &'static watch::Sender<bool> {
    ACTIVITY_GATE.get_or_init(|| watch::channel(false).0)
}

fn waiting() -> &'static watch::Sender<usize> {
    WAITING.get_or_init(|| watch::channel(0).0)
}

fn returned() -> &'static watch::Sender<usize> {
    RETURNED.get_or_init(|| watch::channel(0).0)
}

/// Doubles `n` once the gate opens (at once when `n` is odd: workflows that need no gate).
#[activity]
async fn double(n: u64) -> Result<u64, ActivityError> {
    if n.is_multiple_of(2) {
        waiting().send_modify(|count| *count += 1);
        let _ = activity_gate().subscribe().wait_for(|open| *open).await;
        returned().send_modify(|count| *count += 1);
    }
    Ok(n * 2)
}

/// A signal nobody waits for, only sent.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, Signal)]
struct Nudge;

/// Two steps, each a commit of the engine's own.
#[workflow]
async fn twice(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    let once = ctx.run(double, n).await?;
    let again = ctx.run(double, once + 1).await?;
    Ok(again)
}

fn expected(n: u64) -> u64 {
    (n * 2 + 1) * 2
}

const LIMIT: usize = 4;
/// Workflows whose activities finish while the queue is full.
const RUNNING: u64 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_the_bound_are_refused_typed_and_the_engines_own_transitions_get_in() {
    let gate = Arc::new(CommitGate::default());
    gate.set_open(true);
    let storage = GatedStorage {
        inner: MemoryStorage::new(),
        gate: Arc::clone(&gate),
    };
    let engine = Engine::builder(storage)
        .register::<twice>()
        .max_queued_requests(LIMIT)
        .build()
        .await
        .unwrap();

    // Acknowledged work: started, and waiting in its first activity.
    let mut running = Vec::new();
    for n in 0..RUNNING {
        let options = StartOptions {
            id: Some(format!("running-{n}")),
            ..StartOptions::default()
        };
        running.push(engine.start_with::<twice>(n * 2, options).await.unwrap());
    }
    let mut at_gate = waiting().subscribe();
    let _ = at_gate.wait_for(|count| *count == RUNNING as usize).await;

    // Storage stalls: the writer takes one start and waits in its commit.
    gate.set_open(false);
    let first = tokio::spawn({
        let engine = engine.clone();
        async move { engine.start::<twice>(1).await.map(|h| h.id().to_string()) }
    });
    let waiter = Arc::clone(&gate);
    tokio::task::spawn_blocking(move || waiter.wait_held(1))
        .await
        .unwrap();

    // The queue fills with callers' requests, up to the bound.
    let mut queued = Vec::new();
    for n in 0..LIMIT as u64 {
        let engine = engine.clone();
        queued.push(tokio::spawn(async move {
            engine
                .start::<twice>(2 * n + 3)
                .await
                .map(|h| h.id().to_string())
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while engine.queued_requests() < LIMIT {
        assert!(Instant::now() < deadline, "the requests never queued");
        tokio::task::yield_now().await;
    }

    // Beyond it, every kind of request is refused at once (not queued: storage still holds the
    // writer), typed, saying what to do.
    let at_once = Duration::from_secs(5);
    let refused = tokio::time::timeout(at_once, engine.start::<twice>(101))
        .await
        .expect("refused at once")
        .unwrap_err();
    assert_eq!(
        refused,
        EngineError::Overloaded {
            queued: LIMIT,
            limit: LIMIT
        }
    );
    assert_eq!(refused.kind(), ErrorKind::Unavailable);
    assert_eq!(refused.code(), "engine.overloaded");
    assert!(
        refused.to_string().contains("retry after a backoff"),
        "{refused}"
    );
    let signal = tokio::time::timeout(at_once, engine.signal("running-0", Nudge))
        .await
        .expect("refused at once")
        .unwrap_err();
    assert_eq!(signal.code(), "engine.overloaded", "{signal}");
    let cancel = tokio::time::timeout(at_once, engine.cancel("running-1"))
        .await
        .expect("refused at once")
        .unwrap_err();
    assert_eq!(cancel.code(), "engine.overloaded", "{cancel}");

    // The engine's own transitions are not refused: the running workflows' activities finish
    // now, and their steps queue behind the full queue of requests.
    activity_gate().send_replace(true);
    let mut done = returned().subscribe();
    let _ = done.wait_for(|count| *count == RUNNING as usize).await;
    assert_eq!(engine.queued_requests(), LIMIT, "the queue is still full");

    // Storage catches up: every admitted request lands, and every workflow finishes.
    gate.set_open(true);
    let first = first.await.unwrap().unwrap();
    let mut ids = vec![first];
    for start in queued {
        ids.push(start.await.unwrap().expect("an admitted start lands"));
    }
    for (n, handle) in running.iter().enumerate() {
        let result = tokio::time::timeout(Duration::from_secs(10), handle.result())
            .await
            .expect("a running workflow finishes")
            .unwrap()
            .unwrap();
        assert_eq!(result, expected(2 * n as u64));
    }
    for (n, id) in ids.iter().enumerate() {
        let input = if n == 0 { 1 } else { 2 * (n as u64 - 1) + 3 };
        let result = engine.result::<twice>(id).await.unwrap().unwrap();
        assert_eq!(result, expected(input), "{id}");
    }
    assert_eq!(engine.queued_requests(), 0);
    // Nothing of the refused calls was written: no workflow beyond those admitted.
    let listed = engine
        .list(&ListFilter::default(), 100, None)
        .await
        .unwrap();
    assert_eq!(listed.items.len(), RUNNING as usize + 1 + LIMIT);
    // And with the queue drained, requests are admitted again.
    let again = engine.start::<twice>(7).await.unwrap();
    assert_eq!(again.result().await.unwrap().unwrap(), expected(7));
    engine.shutdown().await;
}
