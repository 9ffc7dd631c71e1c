//! Durable attempts: each activity attempt after the first is committed before it starts, so
//! `max_attempts` holds across crashes and describe shows the attempt running.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use weft_runtime::engine::record;
use weft_runtime::engine::{Pending, WorkflowStatus};
use weft_runtime::storage::{MemoryStorage, Storage};
use weft_runtime::{
    Activity, ActivityContext, ActivityError, ActivityOptions, Engine, Resources, RetryPolicy,
    WorkflowContext, WorkflowError, workflow,
};

/// The attempts `fatal` saw, over every engine, and what it does in them.
#[derive(Default)]
struct Seen {
    attempts: Mutex<Vec<u32>>,
    /// Attempts below this fail at once; the others hang, as an attempt that kills the process
    /// does from the engine's point of view (the test then stops the engine).
    fail_below: u32,
}

/// An activity allowed 3 attempts.
#[allow(non_camel_case_types)] // named like the `#[activity]` structs
struct fatal;

impl Activity for fatal {
    type Input = ();
    type Output = u32;
    const NAME: &'static str = "fatal";

    fn options(&self) -> ActivityOptions {
        ActivityOptions {
            retry: RetryPolicy {
                max_attempts: 3,
                initial_backoff: Duration::from_millis(1),
                backoff_percent: 100,
                max_backoff: Duration::from_millis(1),
            },
            attempt_timeout: None,
        }
    }

    async fn execute(&self, ctx: ActivityContext, _input: ()) -> Result<u32, ActivityError> {
        let seen = ctx.resource::<Seen>().unwrap();
        seen.attempts.lock().unwrap().push(ctx.attempt());
        if ctx.attempt() < seen.fail_below {
            return Err(ActivityError::failed("not yet"));
        }
        std::future::pending::<()>().await;
        Ok(ctx.attempt())
    }
}

#[workflow]
async fn doomed(ctx: &mut WorkflowContext, _input: ()) -> Result<u32, WorkflowError> {
    let attempt = ctx.run(fatal, ()).await?;
    Ok(attempt)
}

async fn build(storage: &MemoryStorage, seen: &Arc<Seen>) -> Engine {
    Engine::builder(storage.clone())
        .register::<doomed>()
        .resources(Resources::new().with_arc(Arc::clone(seen)))
        .build()
        .await
        .unwrap()
}

/// Waits until `fatal` has started `n` attempts in all.
async fn started(seen: &Seen, n: usize) {
    for _ in 0..10_000 {
        if seen.attempts.lock().unwrap().len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("attempt {n} never started");
}

/// The pending activity's attempt as describe shows it.
async fn described_attempt(engine: &Engine, id: &str) -> (u32, u32, String) {
    match engine.describe(id).await.unwrap().pending {
        Some(
            pending @ Pending::Activity {
                attempt,
                max_attempts,
                ..
            },
        ) => (attempt, max_attempts, pending.to_string()),
        other => panic!("expected a pending activity, found {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_activity_whose_attempts_kill_the_process_gets_max_attempts_in_all() {
    let storage = MemoryStorage::new();
    let seen = Arc::new(Seen::default());
    let engine = build(&storage, &seen).await;
    let id = engine.start::<doomed>(()).await.unwrap().id().to_string();
    started(&seen, 1).await;
    // The first attempt rides on the step's commit: nothing else is stored for it, as in a
    // store written before attempts were stored, and it reads as attempt 1.
    assert!(
        storage
            .get(&record::attempt_key(record::Partition::ZERO, &id, None))
            .unwrap()
            .is_none()
    );
    assert_eq!(described_attempt(&engine, &id).await.0, 1);
    engine.shutdown().await;

    // Each restart finds the stored attempt spent and runs the next, committed first.
    for attempt in 2..=3u32 {
        let engine = build(&storage, &seen).await;
        started(&seen, attempt as usize).await;
        let (described, max, words) = described_attempt(&engine, &id).await;
        assert_eq!((described, max), (attempt, 3));
        assert_eq!(words, format!("activity fatal, attempt {attempt} of 3"));
        engine.shutdown().await;
    }

    // The third attempt was the last: the next engine fails the activity without running it.
    let engine = build(&storage, &seen).await;
    let error = engine.result::<doomed>(&id).await.unwrap().unwrap_err();
    assert!(
        error.to_string().contains("no attempts are left"),
        "unexpected error: {error}"
    );
    assert_eq!(*seen.attempts.lock().unwrap(), vec![1, 2, 3]);
    assert_eq!(
        engine.describe(&id).await.unwrap().status,
        WorkflowStatus::Failed
    );
    // The spent attempts went with the step that consumed them.
    assert!(
        storage
            .get(&record::attempt_key(record::Partition::ZERO, &id, None))
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_are_committed_so_a_restart_goes_on_from_the_stored_attempt() {
    let storage = MemoryStorage::new();
    let seen = Arc::new(Seen {
        fail_below: 3,
        ..Seen::default()
    });
    let engine = build(&storage, &seen).await;
    let id = engine.start::<doomed>(()).await.unwrap().id().to_string();
    // Attempts 1 and 2 fail; 3 hangs, stored before it started.
    started(&seen, 3).await;
    let stored: record::AttemptRecord = record::decode_record(
        &storage
            .get(&record::attempt_key(record::Partition::ZERO, &id, None))
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(stored.attempt, 3);
    assert_eq!(described_attempt(&engine, &id).await.0, 3);
    engine.shutdown().await;

    // Attempt 3 was the last; nothing runs again.
    let engine = build(&storage, &seen).await;
    assert!(engine.result::<doomed>(&id).await.unwrap().is_err());
    assert_eq!(*seen.attempts.lock().unwrap(), vec![1, 2, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_attempt_record_parks_its_workflow_when_it_is_recovered() {
    let storage = MemoryStorage::new();
    let seen = Arc::new(Seen::default());
    let engine = build(&storage, &seen).await;
    let id = engine.start::<doomed>(()).await.unwrap().id().to_string();
    started(&seen, 1).await;
    engine.shutdown().await;
    storage
        .put(
            &record::attempt_key(record::Partition::ZERO, &id, None),
            &[record::FORMAT_V1, 0xFF],
        )
        .unwrap();

    let engine = build(&storage, &seen).await;
    let error = tokio::time::timeout(Duration::from_secs(10), engine.result::<doomed>(&id))
        .await
        .expect("result waited")
        .unwrap_err();
    assert_eq!(error.code(), "engine.parked", "{error}");
    let d = engine.describe(&id).await.unwrap();
    assert_eq!(d.status, WorkflowStatus::Parked);
    assert_eq!(d.park_reason.unwrap().code, "record.corrupt");
    assert_eq!(*seen.attempts.lock().unwrap(), vec![1], "nothing ran again");
}
