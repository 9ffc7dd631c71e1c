//! In-memory timers: a timer whose stored key is gone (a sleep cut short by cancellation, the
//! execution deadline of a finished workflow) is disarmed, not held until its deadline.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use weft_runtime::engine::{Pending, StartOptions, WorkflowStatus};
use weft_runtime::storage::MemoryStorage;
use weft_runtime::{
    ActivityError, Engine, Signal, WorkflowContext, WorkflowError, activity, workflow,
};

#[derive(Debug, Clone, Serialize, Deserialize, Signal)]
struct Go;

#[activity]
async fn noop(_input: ()) -> Result<(), ActivityError> {
    Ok(())
}

/// Sleeps an hour, runs `noop` (which reports a cancellation that cut the sleep short), then
/// waits for `Go`.
#[workflow]
async fn nap(ctx: &mut WorkflowContext, _input: ()) -> Result<bool, WorkflowError> {
    ctx.sleep(Duration::from_secs(3600)).await;
    let ran: Result<(), ActivityError> = ctx.run(noop, ()).await;
    let cancelled: bool = ran.is_err();
    let _go: Go = ctx.wait_for_signal::<Go>().await;
    Ok(cancelled)
}

/// Returns at once.
#[workflow]
async fn quick(_ctx: &mut WorkflowContext, n: u32) -> Result<u32, WorkflowError> {
    Ok(n)
}

async fn build(storage: &MemoryStorage) -> Engine {
    Engine::builder(storage.clone())
        .register::<nap>()
        .register::<quick>()
        .build()
        .await
        .unwrap()
}

async fn wait_status(engine: &Engine, id: &str, status: WorkflowStatus) {
    for _ in 0..10_000 {
        if engine.describe(id).await.unwrap().status == status {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("{id} never reached {status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sleep_cut_short_by_cancellation_leaves_no_timer_armed() {
    let storage = MemoryStorage::new();
    let engine = build(&storage).await;
    let napping = engine.start::<nap>(()).await.unwrap();
    wait_status(&engine, napping.id(), WorkflowStatus::Waiting).await;
    // Armed by its runner as it goes idle, just after the commit that describe reads.
    for _ in 0..10_000 {
        if engine.next_timer().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(engine.next_timer().is_some(), "the sleep's timer is armed");
    napping.cancel().await.unwrap();
    // The cancellation cut the sleep short and reached `ctx.run`; now it waits for `Go`.
    for _ in 0..10_000 {
        let d = engine.describe(napping.id()).await.unwrap();
        if matches!(d.pending, Some(Pending::Signal { .. })) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(
        engine.next_timer(),
        None,
        "the cut sleep's timer stays armed"
    );
    napping.signal(Go).await.unwrap();
    assert!(napping.result().await.unwrap().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_workflow_leaves_its_execution_deadline_disarmed() {
    let storage = MemoryStorage::new();
    let engine = build(&storage).await;
    let options = StartOptions {
        execution_timeout: Some(Duration::from_secs(7200)),
        ..StartOptions::default()
    };
    let done = engine.start_with::<quick>(3, options).await.unwrap();
    assert_eq!(done.result().await.unwrap().unwrap(), 3);
    assert_eq!(engine.next_timer(), None);
}
