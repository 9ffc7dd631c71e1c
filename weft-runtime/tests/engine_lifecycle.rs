//! A workflow's life: start, activity, durable sleep, signal (before and after the wait), result.

mod engine_support;

use std::sync::Arc;

use engine_support::*;
use weft_runtime::Workflow;
use weft_runtime::engine::{Engine, EngineError, Pending, VirtualClock, WorkflowStatus};
use weft_runtime::storage::MemoryStorage;

async fn engine(clock: &VirtualClock) -> Engine {
    Engine::builder(MemoryStorage::new())
        .register::<flow>()
        .register::<waiter>()
        .clock(Arc::new(clock.clone()))
        .build()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_activity_sleep_signal_activity_to_its_result() {
    let clock = VirtualClock::default();
    let engine = engine(&clock).await;
    let started = clock.now();
    let handle = engine.start::<flow>("ada".into()).await.unwrap();

    wait_state(&engine, handle.id(), "AwaitSleep").await;
    let d = handle.describe().await.unwrap();
    assert_eq!(d.status, WorkflowStatus::Waiting);
    assert_eq!(d.workflow_type, "flow");
    assert_eq!(d.step, 2, "start step + greet result step");
    assert_eq!(
        d.pending,
        Some(Pending::Timer {
            deadline: started + FLOW_SLEEP
        }),
        "the stored deadline is absolute"
    );
    assert_eq!(
        d.state,
        Some(serde_json::json!({"AwaitSleep": {"greeting": "hello, ada"}}))
    );

    // Waiting on a timer holds no task: only the record and a (deadline, id) pair.
    eventually(|| engine.active_workflows() == 0).await;
    assert_eq!(engine.next_timer(), Some(started + FLOW_SLEEP));

    clock.advance(FLOW_SLEEP);
    wait_state(&engine, handle.id(), "AwaitApproval").await;
    assert_eq!(
        handle.describe().await.unwrap().status,
        WorkflowStatus::Waiting
    );
    eventually(|| engine.active_workflows() == 0).await;
    assert_eq!(engine.next_timer(), None);

    handle.signal(Approval { by: "bob".into() }).await.unwrap();
    let result = handle.result().await.unwrap();
    assert_eq!(result.unwrap(), "hello, ada, approved by bob");
    let d = handle.describe().await.unwrap();
    assert_eq!(d.status, WorkflowStatus::Completed);
    assert_eq!(d.state, None);
    assert_eq!(d.step, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_sent_before_the_wait_is_kept_and_delivered() {
    let clock = VirtualClock::default();
    let engine = engine(&clock).await;
    let handle = engine.start::<flow>("cy".into()).await.unwrap();
    wait_state(&engine, handle.id(), "AwaitSleep").await;

    // Not waiting for it yet: stored durably, delivered when the wait begins.
    handle.signal(Approval { by: "dee".into() }).await.unwrap();
    let state = engine.state::<flow>(handle.id()).await.unwrap();
    assert_eq!(flow::state_name(&state), "AwaitSleep");
    clock.advance(FLOW_SLEEP);
    assert_eq!(
        handle.result().await.unwrap().unwrap(),
        "hello, cy, approved by dee"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_are_delivered_in_send_order_one_per_wait() {
    let clock = VirtualClock::default();
    let engine = engine(&clock).await;
    let handle = engine.start::<waiter>(3).await.unwrap();
    for by in ["a", "b", "c"] {
        engine
            .signal(handle.id(), Approval { by: by.into() })
            .await
            .unwrap();
    }
    assert_eq!(handle.result().await.unwrap().unwrap(), vec!["a", "b", "c"]);
    // The workflow finished: further signals are refused.
    assert!(matches!(
        engine
            .signal(handle.id(), Approval { by: "e".into() })
            .await,
        Err(EngineError::Finished { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_queued_before_a_restart_are_cleared_when_the_workflow_finishes() {
    // The writer clears a finishing workflow's queue; it must know the queues stored before it
    // started, not only those it wrote to.
    let storage = MemoryStorage::new();
    let clock = VirtualClock::default();
    let build = || {
        Engine::builder(storage.clone())
            .register::<flow>()
            .clock(Arc::new(clock.clone()))
            .build()
    };
    let first = build().await.unwrap();
    let id = first
        .start::<flow>("eve".into())
        .await
        .unwrap()
        .id()
        .to_string();
    wait_state(&first, &id, "AwaitSleep").await;
    for by in ["fay", "gil"] {
        first.signal(&id, Approval { by: by.into() }).await.unwrap();
    }
    first.shutdown().await;

    let second = build().await.unwrap();
    clock.advance(FLOW_SLEEP);
    assert_eq!(
        second.result::<flow>(&id).await.unwrap().unwrap(),
        "hello, eve, approved by fay"
    );
    let queue = weft_runtime::engine::record::signal_queue_prefix(
        weft_runtime::engine::record::Partition::ZERO,
        &id,
    );
    let left = weft_runtime::storage::Storage::scan_prefix(&storage, &queue, None, 10).unwrap();
    assert!(
        left.is_empty(),
        "the unconsumed signal stays queued: {left:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn result_works_for_a_workflow_that_finished_earlier_and_after_a_restart() {
    let storage = MemoryStorage::new();
    let clock = VirtualClock::default();
    let first = Engine::builder(storage.clone())
        .register::<waiter>()
        .clock(Arc::new(clock.clone()))
        .build()
        .await
        .unwrap();
    let id = first.start::<waiter>(0).await.unwrap().id().to_string();
    assert_eq!(
        first.result::<waiter>(&id).await.unwrap().unwrap(),
        Vec::<String>::new()
    );
    first.shutdown().await;
    let second = engine_for::<waiter>(storage).await;
    assert_eq!(
        second.result::<waiter>(&id).await.unwrap().unwrap(),
        Vec::<String>::new()
    );
    assert!(matches!(
        second.result::<waiter>("nope").await,
        Err(EngineError::NotFound { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unregistered_workflows_and_bad_ids_are_refused() {
    let engine = engine_for::<waiter>(MemoryStorage::new()).await;
    let err = engine.start::<flow>("x".into()).await.unwrap_err();
    assert_eq!(err.code(), "engine.not_registered");
    let err = engine
        .start_with::<waiter>(
            1,
            weft_runtime::engine::StartOptions {
                id: Some("a\0b".into()),
                idempotency_key: None,
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "engine.invalid_id");
}

/// The default `#[tokio::test]` runtime has one thread; the engine must not need more.
#[tokio::test]
async fn runs_on_a_current_thread_runtime() {
    let clock = VirtualClock::default();
    let engine = engine(&clock).await;
    let handle = engine.start::<flow>("gil".into()).await.unwrap();
    handle.signal(Approval { by: "hal".into() }).await.unwrap();
    wait_state(&engine, handle.id(), "AwaitSleep").await;
    clock.advance(FLOW_SLEEP);
    assert_eq!(
        handle.result().await.unwrap().unwrap(),
        "hello, gil, approved by hal"
    );
}
