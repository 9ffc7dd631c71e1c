//! Grouped commits and storage failures: many workflows share one transaction, and a failed
//! write reaches the caller as an error without a half-applied step.

mod engine_support;

use std::sync::Arc;
use std::time::Duration;

use engine_support::*;
use tokio::sync::Semaphore;
use weft_runtime::engine::{Engine, EngineError, WorkflowStatus};
use weft_runtime::storage::MemoryStorage;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_workflows_share_batches() {
    const N: usize = 64;
    let mut storage = FlakyStorage::new(MemoryStorage::new());
    // A slow durable commit, as on a real disk: transitions queue up behind it.
    storage.write_delay = Some(Duration::from_millis(2));
    let engine = engine_for::<single>(storage.clone()).await;
    let mut tasks = Vec::new();
    for i in 0..N {
        let engine = engine.clone();
        tasks.push(tokio::spawn(async move {
            let handle = engine.start::<single>(format!("w{i}")).await.unwrap();
            handle.result().await.unwrap().unwrap()
        }));
    }
    for (i, task) in tasks.into_iter().enumerate() {
        assert_eq!(task.await.unwrap(), format!("hello, w{i}"));
    }
    let stats = engine.stats();
    // Each workflow commits twice: its start (with the pending activity) and its result.
    assert_eq!(stats.transitions, 2 * N as u64);
    assert!(
        stats.batches < stats.transitions,
        "expected grouped commits, got {stats:?}"
    );
    assert!(stats.mean_batch_size() > 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_write_is_an_error_and_applies_nothing() {
    let storage = FlakyStorage::new(MemoryStorage::new());
    let engine = engine_for::<waiter>(storage.clone()).await;
    let handle = engine.start::<waiter>(1).await.unwrap();
    wait_status(&engine, handle.id(), WorkflowStatus::Waiting).await;

    storage.fail(true);
    let before = dump(&storage.inner);
    let err = handle
        .signal(Approval { by: "x".into() })
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::Storage(_)));
    assert_eq!(err.code(), "storage.backend");
    let err = engine.start::<waiter>(1).await.unwrap_err();
    assert_eq!(err.code(), "storage.backend");
    assert_eq!(dump(&storage.inner), before);
    assert!(engine.stats().failed_batches >= 2);

    storage.fail(false);
    handle.signal(Approval { by: "y".into() }).await.unwrap();
    assert_eq!(handle.result().await.unwrap().unwrap(), vec!["y"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_step_commit_is_retried_until_storage_heals_on_the_same_engine() {
    let storage = FlakyStorage::new(MemoryStorage::new());
    let gate = Arc::new(Semaphore::new(0));
    let gated = {
        let gate = gate.clone();
        FnActivity::new("greet", move |_ctx, input| {
            let gate = gate.clone();
            async move {
                let _permit = gate.acquire().await.unwrap();
                let name: String = dec(&input);
                Ok(enc(&format!("hi {name}")))
            }
        })
    };
    let engine = Engine::builder(storage.clone())
        .register::<single>()
        .activity_override("greet", gated)
        .build()
        .await
        .unwrap();
    let handle = engine.start::<single>("z".into()).await.unwrap();
    let waiting = {
        let handle = handle.clone();
        tokio::spawn(async move { handle.result().await })
    };
    storage.fail(true);
    gate.add_permits(1);
    // The step's commit is held and retried; the caller waiting for the result keeps waiting
    // (no stale error), new requests are refused with the storage error.
    eventually(|| engine.transitions_awaiting_storage() == 1).await;
    assert_eq!(engine.storage_fault().unwrap().code(), "storage.backend");
    let d = engine.describe(handle.id()).await.unwrap();
    assert_eq!(d.state_name, Some("AwaitGreet"), "no half-applied step");
    let refused = engine.start::<single>("y".into()).await.unwrap_err();
    assert_eq!(refused.code(), "storage.backend");
    assert!(!waiting.is_finished());

    storage.fail(false);
    assert_eq!(waiting.await.unwrap().unwrap().unwrap(), "hi z");
    assert_eq!(engine.storage_fault(), None);
    assert!(engine.stats().failed_batches >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_while_a_commit_is_held_resumes_from_the_last_commit_after_a_restart() {
    let storage = FlakyStorage::new(MemoryStorage::new());
    let gate = Arc::new(Semaphore::new(0));
    let gated = {
        let gate = gate.clone();
        FnActivity::new("greet", move |_ctx, _input| {
            let gate = gate.clone();
            async move {
                let _permit = gate.acquire().await.unwrap();
                Ok(enc(&"first engine".to_string()))
            }
        })
    };
    let engine = Engine::builder(storage.clone())
        .register::<single>()
        .activity_override("greet", gated)
        .build()
        .await
        .unwrap();
    let handle = engine.start::<single>("z".into()).await.unwrap();
    let id = handle.id().to_string();
    storage.fail(true);
    gate.add_permits(1);
    eventually(|| engine.transitions_awaiting_storage() == 1).await;
    drop(handle);
    engine.shutdown().await;

    storage.fail(false);
    let engine = engine_for::<single>(storage.clone()).await;
    let result = engine.result::<single>(&id).await.unwrap().unwrap();
    assert_eq!(result, "hello, z");
}
