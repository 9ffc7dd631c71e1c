//! Workflow execution timeouts: stored as an absolute deadline at start, delivered like a
//! cancellation when it passes, and ending the workflow as timed out. All on a manual clock.

mod engine_support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use engine_support::{eventually, wait_state, wait_status};
use weft_runtime::engine::clock::to_millis;
use weft_runtime::engine::record::{self, WorkflowRecord};
use weft_runtime::engine::{Engine, EngineError, StartOptions, VirtualClock, WorkflowStatus};
use weft_runtime::storage::{MemoryStorage, Storage};
use weft_runtime::{
    ActivityContext, ActivityError, ChildError, ChildOptions, Resources, WorkflowContext,
    WorkflowError, activity, workflow,
};

const HOUR: Duration = Duration::from_secs(3600);

/// Counts calls per key, shared through the engine's resources.
#[derive(Default)]
struct Calls(Mutex<HashMap<String, u32>>);

impl Calls {
    fn hit(&self, key: String) {
        *self.0.lock().unwrap().entry(key).or_default() += 1;
    }
    fn count(&self, key: &str) -> u32 {
        self.0.lock().unwrap().get(key).copied().unwrap_or(0)
    }
}

#[activity]
async fn note(ctx: ActivityContext, what: String) -> Result<String, ActivityError> {
    ctx.resource::<Calls>().unwrap().hit(what.clone());
    Ok(what)
}

/// Runs until cancelled; counts how often it saw its cancellation.
#[activity]
async fn hang(ctx: ActivityContext, what: String) -> Result<String, ActivityError> {
    ctx.resource::<Calls>().unwrap().hit(format!("hang {what}"));
    let seen = ctx.resource::<AtomicU32>().unwrap();
    ctx.cancelled().await;
    seen.fetch_add(1, Ordering::SeqCst);
    Err(ActivityError::Cancelled)
}

#[workflow]
async fn sleepy(ctx: &mut WorkflowContext, secs: u64) -> Result<String, WorkflowError> {
    ctx.sleep(Duration::from_secs(secs)).await;
    let done = ctx.run(note, "after sleep".to_string()).await?;
    Ok(done)
}

#[workflow]
async fn cleans_up(ctx: &mut WorkflowContext, name: String) -> Result<String, WorkflowError> {
    match ctx.run(hang, name.clone()).await {
        Ok(done) => Ok(done),
        Err(ActivityError::Cancelled) => {
            ctx.run(note, format!("cleanup {name}")).await?;
            Err(WorkflowError::TimedOut)
        }
        Err(e) => Err(e.into()),
    }
}

#[workflow]
async fn hanging_child(ctx: &mut WorkflowContext, name: String) -> Result<String, WorkflowError> {
    let done = ctx.run(hang, name).await?;
    Ok(done)
}

#[workflow]
async fn minds_child(ctx: &mut WorkflowContext, name: String) -> Result<String, WorkflowError> {
    match ctx.child(hanging_child, name).await {
        Ok(done) => Ok(done),
        Err(ChildError::Cancelled) => Err(WorkflowError::TimedOut),
        Err(e) => Err(e.into()),
    }
}

#[workflow]
async fn bounded_child(ctx: &mut WorkflowContext, name: String) -> Result<String, WorkflowError> {
    match ctx
        .child_with(hanging_child, name, ChildOptions::timeout(HOUR))
        .await
    {
        Ok(done) => Ok(done),
        Err(ChildError::TimedOut) => {
            let noted = ctx.run(note, "child timed out".to_string()).await?;
            Ok(noted)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, weft_runtime::Signal)]
struct Go;

#[workflow]
async fn waits_for_go(ctx: &mut WorkflowContext, _n: u64) -> Result<String, WorkflowError> {
    let Go = ctx.wait_for_signal::<Go>().await;
    Ok("went".to_string())
}

struct Setup {
    engine: Engine,
    storage: MemoryStorage,
    clock: VirtualClock,
    calls: Arc<Calls>,
    cancelled: Arc<AtomicU32>,
}

async fn setup_on(storage: MemoryStorage, clock: VirtualClock, calls: Arc<Calls>) -> Setup {
    let cancelled: Arc<AtomicU32> = Arc::default();
    let engine = Engine::builder(storage.clone())
        .register::<sleepy>()
        .register::<cleans_up>()
        .register::<hanging_child>()
        .register::<minds_child>()
        .register::<bounded_child>()
        .register::<waits_for_go>()
        .resources(
            Resources::new()
                .with_arc(Arc::clone(&calls))
                .with_arc(Arc::clone(&cancelled)),
        )
        .clock(Arc::new(clock.clone()))
        .build()
        .await
        .unwrap();
    Setup {
        engine,
        storage,
        clock,
        calls,
        cancelled,
    }
}

async fn setup() -> Setup {
    setup_on(
        MemoryStorage::new(),
        VirtualClock::default(),
        Arc::default(),
    )
    .await
}

fn timeout(after: Duration) -> StartOptions {
    StartOptions {
        execution_timeout: Some(after),
        ..Default::default()
    }
}

/// The workflow's stored lifecycle (kept in its record since store format 3).
fn stored_lifecycle(storage: &MemoryStorage, id: &str) -> record::Lifecycle {
    let bytes = storage
        .get(&record::workflow_key(record::Partition::ZERO, id))
        .unwrap()
        .unwrap();
    record::decode_record::<WorkflowRecord>(&bytes)
        .unwrap()
        .lifecycle
}

fn stored_deadline(storage: &MemoryStorage, id: &str) -> Option<u64> {
    stored_lifecycle(storage, id).deadline_ms
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_passing_during_a_sleep_ends_the_workflow_as_timed_out() {
    let s = setup().await;
    let started = s.clock.now();
    let handle = s
        .engine
        .start_with::<sleepy>(2 * 3600, timeout(HOUR))
        .await
        .unwrap();
    // Stored as an absolute deadline at start.
    assert_eq!(
        stored_deadline(&s.storage, handle.id()),
        Some(to_millis(started + HOUR))
    );
    wait_state(&s.engine, handle.id(), "AwaitSleep").await;
    // The execution deadline comes before the sleep's timer.
    assert_eq!(s.engine.next_timer(), Some(started + HOUR));
    s.clock.advance(HOUR);
    // As with a cancellation, the sleep is cut short and the next await reports it: the
    // activity after the sleep never runs, `?` passes the error on, and the workflow ends as
    // timed out with it.
    assert_eq!(
        handle.result().await.unwrap(),
        Err(WorkflowError::Activity(ActivityError::Cancelled))
    );
    assert_eq!(
        handle.describe().await.unwrap().status,
        WorkflowStatus::TimedOut
    );
    assert_eq!(s.calls.count("after sleep"), 0);
    // Nothing of the workflow is left armed or stored besides its record.
    assert_eq!(stored_deadline(&s.storage, handle.id()), None);
    assert!(
        s.storage
            .scan_prefix(record::TIMER_PREFIX, None, 10)
            .unwrap()
            .is_empty()
    );
    assert!(!stored_lifecycle(&s.storage, handle.id()).timed_out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_that_finishes_in_time_is_not_touched_by_its_deadline() {
    let s = setup().await;
    let handle = s
        .engine
        .start_with::<sleepy>(60, timeout(HOUR))
        .await
        .unwrap();
    wait_state(&s.engine, handle.id(), "AwaitSleep").await;
    s.clock.advance(Duration::from_secs(60));
    assert_eq!(handle.result().await.unwrap().unwrap(), "after sleep");
    assert_eq!(stored_deadline(&s.storage, handle.id()), None);
    // Passing the old deadline later changes nothing.
    s.clock.advance(2 * HOUR);
    eventually(|| s.engine.active_workflows() == 0).await;
    assert_eq!(
        handle.describe().await.unwrap().status,
        WorkflowStatus::Completed
    );
    assert_eq!(s.calls.count("after sleep"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_reaches_an_activity_and_the_workflow_cleans_up_like_a_cancellation() {
    let s = setup().await;
    let handle = s
        .engine
        .start_with::<cleans_up>("job".into(), timeout(HOUR))
        .await
        .unwrap();
    // The deadline passes while the activity runs (before it started, the workflow would see
    // it at once, at its await).
    eventually(|| s.calls.count("hang job") == 1).await;
    s.clock.advance(HOUR);
    eventually(|| s.cancelled.load(Ordering::SeqCst) == 1).await;
    assert_eq!(
        handle.result().await.unwrap(),
        Err(WorkflowError::TimedOut),
        "ctx.run returned an error the workflow caught"
    );
    assert_eq!(s.calls.count("cleanup job"), 1);
    assert_eq!(
        handle.describe().await.unwrap().status,
        WorkflowStatus::TimedOut
    );
    assert!(!stored_lifecycle(&s.storage, handle.id()).timed_out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_does_not_extend_the_deadline() {
    let storage = MemoryStorage::new();
    let clock = VirtualClock::default();
    let calls: Arc<Calls> = Arc::default();
    let s = setup_on(storage.clone(), clock.clone(), Arc::clone(&calls)).await;
    let started = clock.now();
    let handle = s
        .engine
        .start_with::<sleepy>(10 * 3600, timeout(HOUR))
        .await
        .unwrap();
    let id = handle.id().to_string();
    wait_state(&s.engine, &id, "AwaitSleep").await;
    clock.advance(HOUR / 2);
    s.engine.shutdown().await;
    let again = setup_on(storage, clock.clone(), calls).await;
    // Recovery armed the stored deadline, not a new one.
    assert_eq!(again.engine.next_timer(), Some(started + HOUR));
    clock.advance(HOUR / 2);
    let handle = again.engine.handle::<sleepy>(&id);
    assert_eq!(
        handle.result().await.unwrap(),
        Err(WorkflowError::Activity(ActivityError::Cancelled))
    );
    assert_eq!(
        handle.describe().await.unwrap().status,
        WorkflowStatus::TimedOut
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_parent_cancels_the_child_it_waits_on() {
    let s = setup().await;
    let handle = s
        .engine
        .start_with::<minds_child>("kid".into(), timeout(HOUR))
        .await
        .unwrap();
    let child_id = format!("{}/1", handle.id());
    eventually(|| s.calls.count("hang kid") == 1).await;
    s.clock.advance(HOUR);
    assert_eq!(handle.result().await.unwrap(), Err(WorkflowError::TimedOut));
    assert_eq!(
        handle.describe().await.unwrap().status,
        WorkflowStatus::TimedOut
    );
    // The child was cancelled (its own status says cancelled: it had no deadline of its own).
    wait_status(&s.engine, &child_id, WorkflowStatus::Cancelled).await;
    // The activity sees its cancellation on its own task, which the child's end does not wait
    // for.
    eventually(|| s.cancelled.load(Ordering::SeqCst) == 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_timeout_nothing_is_stored() {
    let s = setup().await;
    let handle = s.engine.start::<sleepy>(60).await.unwrap();
    wait_state(&s.engine, handle.id(), "AwaitSleep").await;
    assert_eq!(stored_deadline(&s.storage, handle.id()), None);
    s.clock.advance(Duration::from_secs(60));
    assert_eq!(handle.result().await.unwrap().unwrap(), "after sleep");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_with_a_timeout_times_out_and_its_parent_goes_on() {
    let s = setup().await;
    let started = s.clock.now();
    let handle = s.engine.start::<bounded_child>("kid".into()).await.unwrap();
    let child_id = format!("{}/1", handle.id());
    // The child's deadline was committed with it; the parent has none.
    assert_eq!(
        stored_deadline(&s.storage, &child_id),
        Some(to_millis(started + HOUR))
    );
    assert_eq!(stored_deadline(&s.storage, handle.id()), None);
    eventually(|| s.calls.count("hang kid") == 1).await;
    s.clock.advance(HOUR);
    assert_eq!(handle.result().await.unwrap().unwrap(), "child timed out");
    assert_eq!(
        s.engine.describe(&child_id).await.unwrap().status,
        WorkflowStatus::TimedOut
    );
    assert_eq!(s.cancelled.load(Ordering::SeqCst), 1);
    assert_eq!(stored_deadline(&s.storage, &child_id), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_wait_past_its_deadline_ends_as_timed_out_without_a_result() {
    let s = setup().await;
    let handle = s
        .engine
        .start_with::<waits_for_go>(1, timeout(HOUR))
        .await
        .unwrap();
    wait_status(&s.engine, handle.id(), WorkflowStatus::Waiting).await;
    s.clock.advance(HOUR);
    let err = handle.result().await.unwrap_err();
    assert_eq!(
        err,
        EngineError::TimedOut {
            id: handle.id().into()
        }
    );
    assert_eq!(err.code(), "engine.timed_out");
    assert_eq!(
        handle.describe().await.unwrap().status,
        WorkflowStatus::TimedOut
    );
    assert_eq!(stored_deadline(&s.storage, handle.id()), None);
}
