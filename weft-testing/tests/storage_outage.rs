//! A failing store under the real engine: failed and torn commits of the engine's own
//! transitions are retried until they land, callers get typed errors while the fault lasts, and
//! the same engine finishes every workflow once the fault is gone. Nothing acknowledged is lost.

use std::time::Duration;

use weft_runtime::engine::{Engine, ErrorKind};
use weft_runtime::storage::MemoryStorage;
use weft_runtime::{
    ActivityError, StartOptions, WorkflowContext, WorkflowError, activity, workflow,
};
use weft_testing::{FaultControl, FaultyStorage, WriteFault};

/// Adds one.
#[activity]
async fn add_one(n: u64) -> Result<u64, ActivityError> {
    Ok(n + 1)
}

/// Counts to `steps` one activity at a time: one commit per step.
#[workflow]
async fn count(ctx: &mut WorkflowContext, steps: u64) -> Result<u64, WorkflowError> {
    let mut total: u64 = 0;
    while total < steps {
        total = ctx.run(add_one, total).await?;
    }
    Ok(total)
}

const WORKFLOWS: u64 = 40;
const STEPS: u64 = 12;

async fn engine() -> (Engine, FaultControl, MemoryStorage) {
    let memory = MemoryStorage::new();
    let storage = FaultyStorage::new(memory.clone());
    let faults = storage.control();
    let engine = Engine::builder(storage)
        .register::<count>()
        .build()
        .await
        .unwrap();
    (engine, faults, memory)
}

/// Starts the workflows, each also asked for its result at once (a caller waiting through the
/// fault), and returns those waits. A start refused with a retryable error is retried with its
/// idempotency key, as a client would.
async fn start_all(engine: &Engine) -> Vec<tokio::task::JoinHandle<Result<u64, String>>> {
    let mut waits = Vec::new();
    for n in 0..WORKFLOWS {
        let options = StartOptions {
            id: Some(format!("count-{n}")),
            idempotency_key: Some(format!("count-{n}")),
            ..StartOptions::default()
        };
        let handle = loop {
            match engine.start_with::<count>(STEPS + n, options.clone()).await {
                Ok(handle) => break handle,
                Err(e) => assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}"),
            }
        };
        waits.push(tokio::spawn(async move {
            // A client asks again after a retryable error (a read that failed).
            let result = async {
                loop {
                    match handle.result().await {
                        Err(e) if e.kind() == ErrorKind::Unavailable => {
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                        other => return other,
                    }
                }
            };
            match tokio::time::timeout(Duration::from_secs(60), result).await {
                Ok(Ok(Ok(total))) => Ok(total),
                Ok(other) => Err(format!("{}: {other:?}", handle.id())),
                Err(_) => Err(format!("{}: no result within 60 s", handle.id())),
            }
        }));
    }
    waits
}

async fn assert_all_finish(waits: Vec<tokio::task::JoinHandle<Result<u64, String>>>) {
    for (n, wait) in waits.into_iter().enumerate() {
        assert_eq!(wait.await.unwrap(), Ok(STEPS + n as u64));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_and_torn_commits_are_retried_and_every_workflow_finishes_on_the_same_engine() {
    for fault in [
        WriteFault::Fail,
        WriteFault::TornLanded,
        WriteFault::TornRolledBack,
    ] {
        let (engine, faults, _) = engine().await;
        // Every second write from here on fails once, while the workflows run. (How many
        // writes the run makes depends on how the writer batches, so the faults are dense
        // enough that well over 20 hit even when the batches are large.)
        let from = faults.writes();
        for k in (WORKFLOWS + 2..WORKFLOWS + 400).step_by(2) {
            faults.script_write(from + k, fault);
        }
        let waits = start_all(&engine).await;
        assert_all_finish(waits).await;
        assert!(
            faults.injected().len() > 20,
            "{fault:?}: only {} faults hit",
            faults.injected().len()
        );
        assert!(engine.stats().failed_batches > 20, "{fault:?}");
        engine.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_an_outage_callers_get_typed_errors_and_the_engine_recovers_by_itself() {
    let (engine, faults, memory) = engine().await;
    let waits = start_all(&engine).await;
    faults.fail_all_writes();
    // The writer holds the workflows' transitions and says so.
    let held = tokio::time::timeout(Duration::from_secs(10), async {
        while engine.transitions_awaiting_storage() == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
    assert!(held.is_ok(), "no transition held");
    assert!(engine.storage_fault().is_some());
    // The workflows' transitions are held and retried; new calls are refused with a typed,
    // retryable error, and what they asked for is not stored.
    let mut refused = 0;
    for _ in 0..20 {
        match engine.start::<count>(1).await {
            Ok(handle) => panic!("started {} while every write fails", handle.id()),
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
                refused += 1;
            }
        }
    }
    assert_eq!(refused, 20);
    let stored = weft_runtime::storage::Storage::scan_prefix(&memory, b"wf/", None, usize::MAX)
        .unwrap()
        .len();
    assert!(stored as u64 <= WORKFLOWS, "{stored} workflow records");

    faults.heal();
    assert_all_finish(waits).await;
    assert_eq!(engine.storage_fault(), None);
    assert_eq!(engine.transitions_awaiting_storage(), 0);
    // And the same engine takes new work again.
    let handle = engine.start::<count>(3).await.unwrap();
    assert_eq!(handle.result().await.unwrap().unwrap(), 3);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runners_stopped_by_failing_reads_resume_once_storage_answers() {
    let (engine, faults, _) = engine().await;
    let waits = start_all(&engine).await;
    // Reads fail too: runners stop where they read (their record, while stepping), callers'
    // reads fail with a typed error.
    faults.fail_all_reads();
    faults.fail_all_writes();
    let error = engine.describe("count-0").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable, "{error}");
    let settled = tokio::time::timeout(Duration::from_secs(10), async {
        while engine.active_workflows() > engine.transitions_awaiting_storage() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
    assert!(settled.is_ok(), "runners neither stopped nor held");
    faults.heal();
    assert_all_finish(waits).await;
    engine.shutdown().await;
}
