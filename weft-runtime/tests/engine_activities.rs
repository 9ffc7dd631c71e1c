//! Activity execution: retries with backoff on the engine's clock, non-retryable errors,
//! per-attempt timeouts, panics, attempt numbers and idempotency keys.

mod engine_support;

use std::sync::Arc;
use std::time::Duration;

use engine_support::*;
use weft_runtime::engine::{Engine, VirtualClock};
use weft_runtime::storage::MemoryStorage;
use weft_runtime::{ActivityError, WorkflowError};

async fn engine_with(clock: &VirtualClock, body: Arc<dyn weft_runtime::DynActivity>) -> Engine {
    Engine::builder(MemoryStorage::new())
        .register::<call_flaky>()
        .clock(Arc::new(clock.clone()))
        .activity_override("flaky", body)
        .build()
        .await
        .unwrap()
}

/// An override of `flaky` that logs each attempt and answers with `answer(attempt)`.
fn scripted(
    log: &CallLog,
    answer: impl Fn(u32) -> Option<Result<u32, ActivityError>> + Send + Sync + 'static,
) -> Arc<dyn weft_runtime::DynActivity> {
    let log = log.clone();
    let answer = Arc::new(answer);
    FnActivity::new("flaky", move |ctx, _input| {
        log.record(&ctx);
        let answer = answer(ctx.attempt());
        async move {
            match answer {
                Some(result) => result.map(|v| enc(&v)),
                // Never answers: only the attempt timeout ends it.
                None => std::future::pending().await,
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_attempts_are_retried_after_backoff_on_the_engine_clock() {
    let clock = VirtualClock::default();
    let log = CallLog::default();
    let engine = engine_with(
        &clock,
        scripted(&log, |attempt| {
            Some(if attempt < 3 {
                Err(ActivityError::failed("flaky"))
            } else {
                Ok(attempt * 100)
            })
        }),
    )
    .await;
    let t0 = clock.now();
    let handle = engine.start::<call_flaky>(1).await.unwrap();
    eventually(|| log.count() == 1).await;
    advance_until(&clock, || log.count() == 2).await;
    // The first backoff is 10 s: the second attempt did not start before it.
    assert!(clock.now() >= t0 + Duration::from_secs(10));
    advance_until(&clock, || log.count() == 3).await;
    assert!(
        clock.now() >= t0 + Duration::from_secs(25),
        "10 s then 15 s (capped)"
    );
    assert_eq!(handle.result().await.unwrap().unwrap(), 300);
    let key = format!("{}/1", handle.id());
    assert_eq!(
        log.calls(),
        vec![(key.clone(), 1), (key.clone(), 2), (key, 3)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_attempts_error_fails_the_call() {
    let clock = VirtualClock::default();
    let log = CallLog::default();
    let engine = engine_with(
        &clock,
        scripted(&log, |attempt| {
            Some(Err(ActivityError::failed(format!("attempt {attempt}"))))
        }),
    )
    .await;
    let handle = engine.start::<call_flaky>(1).await.unwrap();
    let result = tokio::spawn({
        let handle = handle.clone();
        async move { handle.result().await }
    });
    advance_until(&clock, || log.count() == 3).await;
    assert_eq!(
        result.await.unwrap().unwrap(),
        Err(WorkflowError::Activity(ActivityError::failed("attempt 3")))
    );
    assert_eq!(log.count(), 3, "max_attempts is 3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_retryable_error_stops_at_once() {
    let clock = VirtualClock::default();
    let log = CallLog::default();
    let engine = engine_with(
        &clock,
        scripted(&log, |_| {
            Some(Err(ActivityError::non_retryable("card stolen")))
        }),
    )
    .await;
    let handle = engine.start::<call_flaky>(1).await.unwrap();
    assert_eq!(
        handle.result().await.unwrap(),
        Err(WorkflowError::Activity(ActivityError::non_retryable(
            "card stolen"
        )))
    );
    assert_eq!(log.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_that_outlives_its_timeout_is_retried() {
    let clock = VirtualClock::default();
    let log = CallLog::default();
    let engine = engine_with(
        &clock,
        scripted(&log, |attempt| (attempt > 1).then_some(Ok(attempt))),
    )
    .await;
    let t0 = clock.now();
    let handle = engine.start::<call_flaky>(1).await.unwrap();
    eventually(|| log.count() == 1).await;
    advance_until(&clock, || log.count() == 2).await;
    assert!(
        clock.now() >= t0 + Duration::from_secs(40),
        "30 s attempt timeout, then 10 s backoff"
    );
    assert_eq!(handle.result().await.unwrap().unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_attempt_timing_out_fails_with_timed_out() {
    let clock = VirtualClock::default();
    let log = CallLog::default();
    let engine = engine_with(&clock, scripted(&log, |_| None)).await;
    let handle = engine.start::<call_flaky>(1).await.unwrap();
    let result = tokio::spawn({
        let handle = handle.clone();
        async move { handle.result().await }
    });
    advance_until(&clock, || result.is_finished()).await;
    assert_eq!(
        result.await.unwrap().unwrap(),
        Err(WorkflowError::Activity(ActivityError::TimedOut {
            timeout_ms: 30_000
        }))
    );
    assert_eq!(log.count(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_attempt_is_a_retryable_failure() {
    let clock = VirtualClock::default();
    let log = CallLog::default();
    let body = {
        let log = log.clone();
        FnActivity::new("flaky", move |ctx, _input| {
            log.record(&ctx);
            async move {
                if ctx.attempt() == 1 {
                    panic!("boom");
                }
                Ok(enc(&7u32))
            }
        })
    };
    let engine = engine_with(&clock, body).await;
    let handle = engine.start::<call_flaky>(1).await.unwrap();
    advance_until(&clock, || log.count() == 2).await;
    assert_eq!(handle.result().await.unwrap().unwrap(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activities_read_shared_resources() {
    struct Multiplier(u32);
    let body = FnActivity::new("flaky", |ctx, input| async move {
        let factor = ctx
            .resource::<Multiplier>()
            .expect("resource given to the builder");
        Ok(enc(&(dec::<u32>(&input) * factor.0)))
    });
    let engine = Engine::builder(MemoryStorage::new())
        .register::<call_flaky>()
        .activity_override("flaky", body)
        .resources(weft_runtime::Resources::new().with(Multiplier(6)))
        .build()
        .await
        .unwrap();
    let handle = engine.start::<call_flaky>(7).await.unwrap();
    assert_eq!(handle.result().await.unwrap().unwrap(), 42);
}
