//! Fault injection under the real engine: chaos in activities against retry policies, and a
//! faulty store under the engine.

use std::sync::Arc;
use std::time::Duration;

use weft_runtime::engine::WorkflowStatus;
use weft_runtime::{
    ActivityError, EngineError, RetryPolicy, StartOptions, WorkflowContext, WorkflowError,
    activity, workflow,
};
use weft_testing::{Chaos, ChaosFault, Mock, TestEngine, TestError, WriteFault};

/// Reserves stock; retried up to 8 times, 1 s apart at first, doubling.
#[activity(max_attempts = 8, initial_backoff_ms = 1000)]
async fn reserve(sku: String) -> Result<String, ActivityError> {
    Ok(format!("reserved {sku}"))
}

/// Reserves one item, waits a day, reserves another.
#[workflow]
async fn restock(ctx: &mut WorkflowContext, sku: String) -> Result<String, WorkflowError> {
    let first = ctx.run(reserve, sku.clone()).await?;
    ctx.sleep(Duration::from_secs(24 * 3600)).await;
    let second = ctx.run(reserve, format!("{sku}-2")).await?;
    Ok(format!("{first}; {second}"))
}

/// A seed whose schedule starts with `faults` injected faults and then lets a call through.
fn seed_with_leading_faults(rates: impl Fn(Chaos) -> Chaos, faults: usize) -> (u64, Chaos) {
    for seed in 0..10_000 {
        let chaos = rates(Chaos::new(
            Mock::new(reserve, |s| async move { Ok(s) }).to_dyn(),
            seed,
        ));
        let preview = chaos.preview(faults as u64 + 1);
        if preview[..faults].iter().all(Option::is_some) && preview[faults].is_none() {
            return (seed, chaos);
        }
    }
    panic!("no seed below 10000 starts with {faults} faults");
}

#[tokio::test]
async fn chaos_transient_failures_and_timeouts_are_retried_with_backoff_on_virtual_time() {
    let rates = |c: Chaos| c.with_transient_rate(0.4).with_timeout_rate(0.3);
    let (seed, _) = seed_with_leading_faults(rates, 3);
    let real = Mock::new(reserve, |sku| async move { Ok(format!("reserved {sku}")) });
    let chaos = Arc::new(rates(Chaos::new(real.to_dyn(), seed)));
    let engine = TestEngine::builder()
        .register::<restock>()
        .activity(chaos.clone())
        .build()
        .await
        .unwrap();
    let start = engine.now();
    let handle = engine.start::<restock>("bolt".into()).await.unwrap();
    // The first call is in its retry backoff: running, waiting on the virtual clock.
    assert_eq!(
        engine.status(handle.id()).await.unwrap(),
        WorkflowStatus::Running
    );
    assert_eq!(chaos.calls(), 1);

    let result = engine
        .result::<restock>(handle.id())
        .await
        .unwrap()
        .unwrap();
    assert!(
        result.starts_with("reserved bolt; reserved bolt-2"),
        "{result}"
    );
    let injected = chaos.injected();
    assert!(injected.len() >= 3, "{injected:?}");
    assert!(injected.iter().all(|i| i.fault != ChaosFault::Permanent));
    // Every injected fault cost one retry: the real activity ran once per step.
    assert_eq!(real.call_count(), 2);
    assert_eq!(chaos.calls() as usize, 2 + injected.len());
    // The first step waited 1 s + 2 s + 4 s of backoff, then the day-long sleep.
    let policy = RetryPolicy {
        initial_backoff: Duration::from_secs(1),
        ..RetryPolicy::default()
    };
    let first_step: Duration = (1..=3).map(|a| policy.backoff_after(a)).sum();
    assert!(engine.now() >= start + first_step + Duration::from_secs(24 * 3600));
}

#[tokio::test]
async fn chaos_permanent_failure_ends_the_activity_without_retry() {
    let real = Mock::new(reserve, |sku| async move { Ok(sku) });
    let chaos = Arc::new(Chaos::new(real.to_dyn(), 1).with_permanent_rate(1.0));
    let engine = TestEngine::builder()
        .register::<restock>()
        .activity(chaos.clone())
        .build()
        .await
        .unwrap();
    let handle = engine.start::<restock>("bolt".into()).await.unwrap();
    let error = engine
        .result::<restock>(handle.id())
        .await
        .unwrap()
        .unwrap_err();
    assert!(error.to_string().contains("permanent failure"), "{error}");
    assert_eq!(chaos.calls(), 1);
    assert_eq!(real.call_count(), 0);
}

#[tokio::test]
async fn a_failing_write_surfaces_as_an_error_and_writes_nothing() {
    let engine = TestEngine::builder()
        .register::<restock>()
        .build()
        .await
        .unwrap();
    let options = || StartOptions {
        id: Some("r1".into()),
        idempotency_key: None,
        ..Default::default()
    };
    engine.faults().fail_next_write();
    let refused = engine
        .start_with::<restock>("bolt".into(), options())
        .await
        .unwrap_err();
    assert!(
        matches!(refused, TestError::Engine(EngineError::Storage(_))),
        "{refused:?}"
    );
    assert!(matches!(
        engine.describe("r1").await,
        Err(TestError::Engine(EngineError::NotFound { .. }))
    ));

    engine
        .start_with::<restock>("bolt".into(), options())
        .await
        .unwrap();
    // The timer's step cannot be committed: the workflow's runner stops with the error.
    engine.faults().fail_all_writes();
    let stalled = engine.result::<restock>("r1").await.unwrap_err();
    assert!(
        matches!(stalled, TestError::Engine(EngineError::Storage(_))),
        "{stalled:?}"
    );
    assert_eq!(engine.status("r1").await.unwrap(), WorkflowStatus::Waiting);
}

/// Drives workflow `id` to its result, restarting the engine whenever a write fails.
async fn result_across_failures(engine: &mut TestEngine, id: &str) -> Result<String, String> {
    for _ in 0..10 {
        match engine.result::<restock>(id).await {
            Ok(result) => return result.map_err(|e| e.to_string()),
            Err(TestError::Engine(EngineError::Storage(_))) => engine.restart().await.unwrap(),
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
    panic!("workflow {id} did not finish after 10 restarts");
}

#[tokio::test]
async fn a_torn_write_at_any_point_does_not_corrupt_the_workflow() {
    // Count the writes of a clean run first.
    let mut engine = TestEngine::builder()
        .register::<restock>()
        .build()
        .await
        .unwrap();
    let owned = engine.faults().writes();
    let handle = engine.start::<restock>("bolt".into()).await.unwrap();
    let expected = result_across_failures(&mut engine, handle.id()).await;
    let writes = engine.faults().writes() - owned;
    assert!(writes >= 4, "{writes} writes");

    for fault in [WriteFault::TornLanded, WriteFault::TornRolledBack] {
        for n in 1..=writes {
            let mut engine = TestEngine::builder()
                .register::<restock>()
                .build()
                .await
                .unwrap();
            let faults = engine.faults();
            faults.script_write(faults.writes() + n, fault);
            let options = StartOptions {
                id: Some("torn".into()),
                idempotency_key: None,
                ..Default::default()
            };
            // A torn first write fails the start; it may have landed all the same.
            let started = engine
                .start_with::<restock>("bolt".into(), options.clone())
                .await;
            if started.is_err() {
                engine.restart().await.unwrap();
                if engine.describe("torn").await.is_err() {
                    engine
                        .start_with::<restock>("bolt".into(), options)
                        .await
                        .unwrap();
                }
            }
            let result = result_across_failures(&mut engine, "torn").await;
            assert_eq!(result, expected, "{fault:?} at write {n}");
            assert_eq!(faults.injected().len(), 1, "{fault:?} at write {n}");
        }
    }
}
