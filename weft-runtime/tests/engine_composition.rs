//! Composition on the engine: `ctx.all` and `ctx.race` over activities, sleeps, signals and
//! child workflows; child workflows with their own ids; sagas; cancellation reaching groups and
//! children; and restarts in the middle of a group.

mod engine_support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use engine_support::{advance_until, eventually, wait_state};
use serde::{Deserialize, Serialize};
use weft_runtime::engine::{Engine, Pending, VirtualClock, WorkflowStatus};
use weft_runtime::storage::MemoryStorage;
use weft_runtime::{
    ActivityContext, ActivityError, ChildError, ParentClosePolicy, Race2, Resources, Saga, Signal,
    WorkflowContext, WorkflowError, activity, workflow,
};

/// Counts calls per input, shared through the engine's resources.
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
async fn square(ctx: ActivityContext, n: u64) -> Result<u64, ActivityError> {
    ctx.resource::<Calls>().unwrap().hit(format!("square {n}"));
    if n == 13 {
        return Err(ActivityError::non_retryable("unlucky"));
    }
    Ok(n * n)
}

/// Blocks until released by the test (or cancelled), so a test controls when it finishes.
#[activity]
async fn gate(ctx: ActivityContext, name: String) -> Result<String, ActivityError> {
    let gates = ctx.resource::<Gates>().unwrap();
    gates.started.fetch_add(1, Ordering::SeqCst);
    let released = gates.notify.notified();
    tokio::select! {
        () = released => Ok(format!("{name} done")),
        () = ctx.cancelled() => {
            gates.cancelled.fetch_add(1, Ordering::SeqCst);
            Err(ActivityError::Cancelled)
        }
    }
}

#[derive(Default)]
struct Gates {
    notify: tokio::sync::Notify,
    started: AtomicU32,
    cancelled: AtomicU32,
}

#[activity]
async fn record_undo(ctx: ActivityContext, what: String) -> Result<(), ActivityError> {
    ctx.resource::<Calls>().unwrap().hit(format!("undo {what}"));
    ctx.resource::<Mutex<Vec<String>>>()
        .unwrap()
        .lock()
        .unwrap()
        .push(what);
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Signal)]
struct Go {
    ok: bool,
}

#[workflow]
async fn fan_out(ctx: &mut WorkflowContext, ns: Vec<u64>) -> Result<(u64, u32), WorkflowError> {
    let (a, (), b) = ctx
        .all((
            ctx.run(square, 2),
            ctx.sleep(Duration::from_secs(5)),
            ctx.run(square, 3),
        ))
        .await;
    let results: Vec<Result<u64, ActivityError>> = ctx
        .all(ns.iter().map(|n| ctx.run(square, *n)).collect::<Vec<_>>())
        .await;
    let failed: u32 = results.iter().filter(|r| r.is_err()).count() as u32;
    let sum: u64 = results.iter().filter_map(|r| r.as_ref().ok()).sum::<u64>() + a? + b?;
    Ok((sum, failed))
}

#[workflow]
async fn deadline(ctx: &mut WorkflowContext, secs: u64) -> Result<bool, WorkflowError> {
    let raced = ctx
        .race((
            ctx.wait_for_signal::<Go>(),
            ctx.sleep(Duration::from_secs(secs)),
        ))
        .await;
    match raced {
        Race2::First(go) => Ok(go.ok),
        Race2::Second(()) => Ok(false),
    }
}

#[workflow]
async fn race_gate(ctx: &mut WorkflowContext, name: String) -> Result<String, WorkflowError> {
    let raced = ctx
        .race((ctx.run(gate, name.clone()), ctx.run(square, 4)))
        .await;
    match raced {
        Race2::First(gated) => Ok(gated?),
        Race2::Second(squared) => Ok(format!("square won with {}", squared?)),
    }
}

#[workflow]
async fn square_child(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    let s = ctx.run(square, n).await?;
    Ok(s)
}

#[workflow]
async fn parent(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    let one = ctx.child(square_child, n).await?;
    let many: Vec<Result<u64, ChildError>> = ctx
        .all(
            (1..=3u64)
                .map(|i| ctx.child(square_child, n + i))
                .collect::<Vec<_>>(),
        )
        .await;
    let failed = ctx.child(square_child, 13).await;
    let mut total: u64 = one;
    for r in many {
        total += r?;
    }
    if failed.is_ok() {
        return Err(WorkflowError::failed("13 should fail"));
    }
    Ok(total)
}

#[workflow]
async fn gated_child(ctx: &mut WorkflowContext, name: String) -> Result<String, WorkflowError> {
    let done = ctx.run(gate, name).await?;
    Ok(done)
}

#[workflow]
async fn waits_on_child(ctx: &mut WorkflowContext, name: String) -> Result<String, WorkflowError> {
    match ctx.child(gated_child, name).await {
        Ok(done) => Ok(done),
        Err(ChildError::Cancelled) => Err(WorkflowError::Cancelled),
        Err(e) => Err(e.into()),
    }
}

#[workflow]
async fn trip(ctx: &mut WorkflowContext, fail_at: u64) -> Result<u64, WorkflowError> {
    let mut saga: Saga = Saga::new();
    let mut booked: u64 = 0;
    for step in 1..=3u64 {
        let result = ctx
            .run(square, if step == fail_at { 13 } else { step })
            .await;
        match result {
            Ok(_) => {
                saga.add(record_undo, format!("step {step}"));
                booked += 1;
            }
            Err(_) => {
                while let Some(undo) = saga.pop() {
                    ctx.compensate(undo).await?;
                }
                return Err(WorkflowError::failed(format!("failed at step {step}")));
            }
        }
    }
    Ok(booked)
}

#[workflow]
async fn sleepy_cleanup(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    ctx.sleep(Duration::from_secs(3600)).await;
    match ctx.run(square, n).await {
        Ok(v) => Ok(v),
        Err(ActivityError::Cancelled) => {
            ctx.run(record_undo, "cleanup".to_string()).await?;
            Err(WorkflowError::Cancelled)
        }
        Err(e) => Err(e.into()),
    }
}

#[workflow]
async fn waits_for_child(ctx: &mut WorkflowContext, name: String) -> Result<String, WorkflowError> {
    let done = ctx
        .child_with(gated_child, name, ParentClosePolicy::Wait)
        .await?;
    match ctx.run(square, 2).await {
        Err(ActivityError::Cancelled) => Ok(format!("{done}, then cancelled")),
        other => Ok(format!("{done}, then {other:?}")),
    }
}

struct Setup {
    engine: Engine,
    clock: VirtualClock,
    calls: Arc<Calls>,
    gates: Arc<Gates>,
    undone: Arc<Mutex<Vec<String>>>,
}

async fn setup_on(
    storage: MemoryStorage,
    clock: VirtualClock,
    calls: Arc<Calls>,
    gates: Arc<Gates>,
    undone: Arc<Mutex<Vec<String>>>,
) -> Setup {
    let resources = Resources::new()
        .with_arc(Arc::clone(&calls))
        .with_arc(Arc::clone(&gates))
        .with_arc(Arc::clone(&undone));
    let engine = Engine::builder(storage)
        .register::<fan_out>()
        .register::<deadline>()
        .register::<race_gate>()
        .register::<square_child>()
        .register::<parent>()
        .register::<gated_child>()
        .register::<waits_on_child>()
        .register::<trip>()
        .register::<sleepy_cleanup>()
        .register::<waits_for_child>()
        .resources(resources)
        .clock(Arc::new(clock.clone()))
        .build()
        .await
        .unwrap();
    Setup {
        engine,
        clock,
        calls,
        gates,
        undone,
    }
}

async fn setup() -> Setup {
    setup_on(
        MemoryStorage::new(),
        VirtualClock::default(),
        Arc::default(),
        Arc::default(),
        Arc::default(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_over_a_tuple_and_a_list_keeps_every_branch_result() {
    let s = setup().await;
    let handle = s.engine.start::<fan_out>(vec![5, 13, 6]).await.unwrap();
    // The tuple waits for its sleep branch; its activities are done and persisted meanwhile.
    eventually(|| s.calls.count("square 2") == 1 && s.calls.count("square 3") == 1).await;
    advance_until(&s.clock, || s.calls.count("square 5") == 1).await;
    let (sum, failed) = handle.result().await.unwrap().unwrap();
    assert_eq!(failed, 1, "13 fails; its siblings' results are kept");
    assert_eq!(sum, 25 + 36 + 4 + 9);
    for n in [2, 3, 5, 13, 6] {
        assert_eq!(
            s.calls.count(&format!("square {n}")),
            1,
            "square {n} ran once"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_beats_its_deadline_and_a_deadline_beats_silence() {
    let s = setup().await;
    let signalled = s.engine.start::<deadline>(60).await.unwrap();
    let silent = s.engine.start::<deadline>(60).await.unwrap();
    wait_state(&s.engine, signalled.id(), "AwaitRace").await;
    match signalled.describe().await.unwrap().pending {
        Some(Pending::Group {
            race: true,
            branches: 2,
            finished: 0,
        }) => {}
        other => panic!("unexpected pending {other:?}"),
    }
    signalled.signal(Go { ok: true }).await.unwrap();
    assert!(signalled.result().await.unwrap().unwrap());
    wait_state(&s.engine, silent.id(), "AwaitRace").await;
    eventually(|| s.engine.next_timer().is_some()).await;
    advance_until(&s.clock, || s.engine.next_timer().is_none()).await;
    assert!(!silent.result().await.unwrap().unwrap());
    // The winner's timer was disarmed: nothing is left armed.
    assert_eq!(s.engine.next_timer(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_race_cancels_its_losing_activity() {
    let s = setup().await;
    let handle = s.engine.start::<race_gate>("slow".into()).await.unwrap();
    let out = handle.result().await.unwrap().unwrap();
    assert_eq!(out, "square won with 16");
    eventually(|| s.gates.cancelled.load(Ordering::SeqCst) == 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_run_as_their_own_workflows_and_report_to_their_parent() {
    let s = setup().await;
    let handle = s.engine.start::<parent>(2).await.unwrap();
    let total = handle.result().await.unwrap().unwrap();
    assert_eq!(total, 4 + 9 + 16 + 25);
    let child = s
        .engine
        .describe(&format!("{}/1", handle.id()))
        .await
        .unwrap();
    assert_eq!(child.workflow_type, "square_child");
    assert_eq!(child.parent.as_deref(), Some(handle.id()));
    let listed = s
        .engine
        .list(&Default::default(), 100, None)
        .await
        .unwrap()
        .items;
    let children = listed
        .iter()
        .filter(|w| w.parent.as_deref() == Some(handle.id()))
        .count();
    assert_eq!(children, 5, "one child, three in a group, one that failed");
    // The children index names them without a scan: in describe, and a page at a time.
    let id = handle.id();
    let expected: Vec<String> = ["1", "2.0", "2.1", "2.2", "3"]
        .iter()
        .map(|n| format!("{id}/{n}"))
        .collect();
    assert_eq!(s.engine.describe(id).await.unwrap().children, expected);
    let first = s.engine.children(id, 3, None).await.unwrap();
    assert_eq!(first.items, expected[..3]);
    let rest = s
        .engine
        .children(id, 3, first.next_page_token.as_deref())
        .await
        .unwrap();
    assert_eq!(rest.items, expected[3..]);
    assert_eq!(rest.next_page_token, None);
    assert!(child.children.is_empty());
    assert_eq!(child.status, WorkflowStatus::Completed);
    let in_group = s
        .engine
        .describe(&format!("{}/2.1", handle.id()))
        .await
        .unwrap();
    assert_eq!(in_group.status, WorkflowStatus::Completed);
    let failed = s
        .engine
        .describe(&format!("{}/3", handle.id()))
        .await
        .unwrap();
    assert_eq!(failed.status, WorkflowStatus::Failed);
    // A purged child leaves its parent's children.
    s.engine.purge(&expected[4]).await.unwrap();
    assert_eq!(
        s.engine.children(id, 10, None).await.unwrap().items,
        expected[..4]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_parent_cancels_the_child_it_waits_on() {
    let s = setup().await;
    let handle = s
        .engine
        .start::<waits_on_child>("kid".into())
        .await
        .unwrap();
    eventually(|| s.gates.started.load(Ordering::SeqCst) == 1).await;
    handle.cancel().await.unwrap();
    let result = handle.result().await.unwrap();
    assert_eq!(result, Err(WorkflowError::Cancelled));
    eventually(|| s.gates.cancelled.load(Ordering::SeqCst) == 1).await;
    let child_id = format!("{}/1", handle.id());
    let mut status = s.engine.describe(&child_id).await.unwrap().status;
    for _ in 0..1000 {
        if status == WorkflowStatus::Cancelled {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
        status = s.engine.describe(&child_id).await.unwrap().status;
    }
    assert_eq!(status, WorkflowStatus::Cancelled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saga_compensates_in_reverse_order() {
    let s = setup().await;
    let ok = s.engine.start::<trip>(0).await.unwrap();
    assert_eq!(ok.result().await.unwrap().unwrap(), 3);
    assert!(s.undone.lock().unwrap().is_empty());
    let failed = s.engine.start::<trip>(3).await.unwrap();
    let err = failed.result().await.unwrap().unwrap_err();
    assert_eq!(err, WorkflowError::failed("failed at step 3"));
    assert_eq!(*s.undone.lock().unwrap(), ["step 2", "step 1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_only_unfinished_branches_run_again() {
    let storage = MemoryStorage::new();
    let clock = VirtualClock::default();
    let calls: Arc<Calls> = Arc::default();
    let s = setup_on(
        storage.clone(),
        clock.clone(),
        Arc::clone(&calls),
        Arc::default(),
        Arc::default(),
    )
    .await;
    let handle = s.engine.start::<fan_out>(vec![7]).await.unwrap();
    let id = handle.id().to_string();
    // Both activity branches finish and are persisted; the sleep branch holds the group.
    eventually(|| calls.count("square 2") == 1 && calls.count("square 3") == 1).await;
    for _ in 0..1000 {
        if let Some(Pending::Group { finished: 2, .. }) =
            s.engine.describe(&id).await.unwrap().pending
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    s.engine.shutdown().await;
    let again = setup_on(
        storage,
        clock.clone(),
        Arc::clone(&calls),
        Arc::default(),
        Arc::default(),
    )
    .await;
    advance_until(&clock, || calls.count("square 7") == 1).await;
    let (sum, failed) = again
        .engine
        .handle::<fan_out>(&id)
        .result()
        .await
        .unwrap()
        .unwrap();
    assert_eq!((sum, failed), (49 + 4 + 9, 0));
    assert_eq!(
        calls.count("square 2"),
        1,
        "a finished branch does not run again"
    );
    assert_eq!(
        calls.count("square 3"),
        1,
        "a finished branch does not run again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_sleep_ends_early_and_the_next_activity_reports_it() {
    let s = setup().await;
    let handle = s.engine.start::<sleepy_cleanup>(4).await.unwrap();
    wait_state(&s.engine, handle.id(), "AwaitSleep").await;
    handle.cancel().await.unwrap();
    let result = handle.result().await.unwrap();
    assert_eq!(result, Err(WorkflowError::Cancelled));
    assert_eq!(
        s.calls.count("square 4"),
        0,
        "the cancelled activity never ran"
    );
    assert_eq!(
        *s.undone.lock().unwrap(),
        ["cleanup"],
        "the cleanup activity ran"
    );
    assert_eq!(
        handle.describe().await.unwrap().status,
        WorkflowStatus::Cancelled
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parent_waits_for_a_wait_child_before_its_cancellation_lands() {
    let s = setup().await;
    let handle = s
        .engine
        .start::<waits_for_child>("kid".into())
        .await
        .unwrap();
    eventually(|| s.gates.started.load(Ordering::SeqCst) == 1).await;
    handle.cancel().await.unwrap();
    // The child is not cancelled, and the parent keeps waiting for it.
    let child_id = format!("{}/1", handle.id());
    eventually(|| s.engine.active_workflows() <= 1).await;
    assert_eq!(s.gates.cancelled.load(Ordering::SeqCst), 0);
    assert!(!handle.describe().await.unwrap().status.is_terminal());
    s.gates.notify.notify_one();
    let result = handle.result().await.unwrap().unwrap();
    assert_eq!(result, "kid done, then cancelled");
    assert_eq!(s.calls.count("square 2"), 0, "cancelled before it ran");
    assert_eq!(
        s.engine.describe(&child_id).await.unwrap().status,
        WorkflowStatus::Completed
    );
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Signal)]
struct Approve {
    note: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Signal)]
struct Reject {
    note: String,
}

/// Waits for the gate, then races an approval against a rejection (approval listed first),
/// then reads the losing kind's signal, which must still be queued.
#[workflow]
async fn expense(ctx: &mut WorkflowContext, name: String) -> Result<String, WorkflowError> {
    let _gated: String = ctx.run(gate, name).await?;
    let decided = ctx
        .race((
            ctx.wait_for_signal::<Approve>(),
            ctx.wait_for_signal::<Reject>(),
        ))
        .await;
    let out = match decided {
        Race2::First(approve) => {
            let first: String = approve.note;
            let reject: Reject = ctx.wait_for_signal::<Reject>().await;
            format!("approved ({first}), then rejected ({})", reject.note)
        }
        Race2::Second(reject) => {
            let first: String = reject.note;
            let approve: Approve = ctx.wait_for_signal::<Approve>().await;
            format!("rejected ({first}), then approved ({})", approve.note)
        }
    };
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_race_of_signals_takes_the_one_sent_first_and_keeps_the_loser_queued() {
    let s = setup().await;
    let engine = Engine::builder(MemoryStorage::new())
        .register::<expense>()
        .resources(Resources::new().with_arc(Arc::clone(&s.gates)))
        .build()
        .await
        .unwrap();
    let handle = engine.start::<expense>("trip".into()).await.unwrap();
    eventually(|| s.gates.started.load(Ordering::SeqCst) == 1).await;
    // Both are queued before the race is reached: the rejection was sent first.
    handle.signal(Reject { note: "r".into() }).await.unwrap();
    handle.signal(Approve { note: "a".into() }).await.unwrap();
    s.gates.notify.notify_one();
    // Bounded: before the fix the approval won and the rejection was consumed with it, so the
    // workflow waited forever for a rejection.
    let out = tokio::time::timeout(Duration::from_secs(30), handle.result())
        .await
        .expect("the losing signal stays queued, so the workflow finishes")
        .unwrap()
        .unwrap();
    assert_eq!(out, "rejected (r), then approved (a)");
    assert_eq!(handle.describe().await.unwrap().signals_consumed, 2);
}

#[workflow]
async fn two_signals_or_timeout(
    ctx: &mut WorkflowContext,
    secs: u64,
) -> Result<String, WorkflowError> {
    let (approve, reject) = ctx
        .all((
            ctx.wait_for_signal::<Approve>(),
            ctx.wait_for_signal::<Reject>(),
        ))
        .await;
    let raced = ctx
        .race((
            ctx.wait_for_signal::<Go>(),
            ctx.sleep(Duration::from_secs(secs)),
        ))
        .await;
    let go = matches!(raced, Race2::First(_));
    Ok(format!("{} {} {go}", approve.note, reject.note))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_waiting_on_a_group_of_signals_and_timers_is_waiting() {
    let clock = VirtualClock::default();
    let engine = Engine::builder(MemoryStorage::new())
        .register::<two_signals_or_timeout>()
        .clock(Arc::new(clock.clone()))
        .build()
        .await
        .unwrap();
    let handle = engine.start::<two_signals_or_timeout>(60).await.unwrap();
    let waiting = |engine: Engine, id: String| async move {
        let filter = weft_runtime::ListFilter {
            status: Some(WorkflowStatus::Waiting),
            ..Default::default()
        };
        let listed = engine.list(&filter, 10, None).await.unwrap().items;
        listed.iter().any(|w| w.id == id)
    };
    let described = handle.describe().await.unwrap();
    assert_eq!(described.status, WorkflowStatus::Waiting);
    assert!(waiting(engine.clone(), handle.id().to_string()).await);
    // One branch done: still waiting, and that signal is counted.
    handle.signal(Approve { note: "a".into() }).await.unwrap();
    eventually(|| engine.active_workflows() == 0).await;
    let described = handle.describe().await.unwrap();
    assert_eq!(described.status, WorkflowStatus::Waiting);
    assert_eq!(described.signals_consumed, 1);
    handle.signal(Reject { note: "r".into() }).await.unwrap();
    wait_state(&engine, handle.id(), "AwaitRace").await;
    eventually(|| engine.active_workflows() == 0).await;
    let described = handle.describe().await.unwrap();
    assert_eq!(described.status, WorkflowStatus::Waiting);
    assert_eq!(described.signals_consumed, 2);
    assert!(waiting(engine.clone(), handle.id().to_string()).await);
    handle.signal(Go { ok: true }).await.unwrap();
    assert_eq!(handle.result().await.unwrap().unwrap(), "a r true");
    assert_eq!(handle.describe().await.unwrap().signals_consumed, 3);
}
