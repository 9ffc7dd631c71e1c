//! Cancellation: durable, delivered at the workflow's current durable await, and visible to an
//! in-flight activity through its context.

mod engine_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use engine_support::*;
use weft_runtime::engine::record;
use weft_runtime::engine::{Engine, EngineError, VirtualClock, WorkflowStatus};
use weft_runtime::storage::{MemoryStorage, Storage};
use weft_runtime::{ActivityError, WorkflowError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_workflow_waiting_for_a_signal_ends_it_as_cancelled() {
    let storage = MemoryStorage::new();
    let engine = engine_for::<waiter>(storage.clone()).await;
    let handle = engine.start::<waiter>(1).await.unwrap();
    wait_status(&engine, handle.id(), WorkflowStatus::Waiting).await;
    handle.cancel().await.unwrap();
    let err = handle.result().await.unwrap_err();
    assert_eq!(
        err,
        EngineError::Cancelled {
            id: handle.id().into()
        }
    );
    assert_eq!(err.code(), "engine.cancelled");
    assert_eq!(
        handle.describe().await.unwrap().status,
        WorkflowStatus::Cancelled
    );
    let stored = storage
        .get(&record::workflow_key(record::Partition::ZERO, handle.id()))
        .unwrap();
    let stored: record::WorkflowRecord = record::decode_record(&stored.unwrap()).unwrap();
    assert_eq!(stored.lifecycle.cancel_requested_ms, None);
    assert!(
        !stored.lifecycle.cancelled,
        "a finished record keeps no lifecycle flag"
    );
    // Cancelling again, or a finished workflow, does nothing; an unknown id is an error.
    handle.cancel().await.unwrap();
    assert!(matches!(
        engine.cancel("missing").await,
        Err(EngineError::NotFound { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_sleeping_workflow_removes_its_timer() {
    let storage = MemoryStorage::new();
    let clock = VirtualClock::default();
    let engine = Engine::builder(storage.clone())
        .register::<flow>()
        .clock(Arc::new(clock.clone()))
        .build()
        .await
        .unwrap();
    let handle = engine.start::<flow>("ed".into()).await.unwrap();
    wait_state(&engine, handle.id(), "AwaitSleep").await;
    assert_eq!(
        storage
            .scan_prefix(record::TIMER_PREFIX, None, 10)
            .unwrap()
            .len(),
        1
    );
    handle.cancel().await.unwrap();
    assert!(matches!(
        handle.result().await,
        Err(EngineError::Cancelled { .. })
    ));
    assert!(
        storage
            .scan_prefix(record::TIMER_PREFIX, None, 10)
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_flight_activity_sees_the_cancellation() {
    let saw_cancel = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicBool::new(false));
    let body = {
        let (saw_cancel, started) = (saw_cancel.clone(), started.clone());
        FnActivity::new("greet", move |ctx, _input| {
            let (saw_cancel, started) = (saw_cancel.clone(), started.clone());
            async move {
                started.store(true, Ordering::SeqCst);
                ctx.cancelled().await;
                saw_cancel.store(ctx.is_cancelled(), Ordering::SeqCst);
                Err(ActivityError::Cancelled)
            }
        })
    };
    let engine = Engine::builder(MemoryStorage::new())
        .register::<flow>()
        .activity_override("greet", body)
        .build()
        .await
        .unwrap();
    let handle = engine.start::<flow>("fay".into()).await.unwrap();
    eventually(|| started.load(Ordering::SeqCst)).await;
    handle.cancel().await.unwrap();
    // `flow` turns the cancelled activity into its own error, as `?` would.
    assert_eq!(
        handle.result().await.unwrap(),
        Err(WorkflowError::Activity(ActivityError::Cancelled))
    );
    eventually(|| saw_cancel.load(Ordering::SeqCst)).await;
    // An error the workflow ends with after cancellation reached it ends it as cancelled.
    assert_eq!(
        handle.describe().await.unwrap().status,
        WorkflowStatus::Cancelled
    );
}
