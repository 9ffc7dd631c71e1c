//! Retention on a virtual clock: finished workflows are purged a configured time after they
//! finished, per type and status, in bounded sweeps, in the background or on demand; a purged
//! workflow's idempotency key outlives it by its own window.

mod engine_support;

use std::sync::Arc;
use std::time::Duration;

use engine_support::*;
use weft_runtime::engine::{Engine, VirtualClock, WorkflowStatus, record};
use weft_runtime::storage::{MemoryStorage, Storage};
use weft_runtime::{EngineError, RetentionPolicy, StartOptions, SweepReport};

const MINUTE: Duration = Duration::from_secs(60);

async fn engine_on(storage: &MemoryStorage, clock: &VirtualClock) -> Engine {
    Engine::builder(storage.clone())
        .register::<waiter>()
        .register::<single>()
        .clock(Arc::new(clock.clone()))
        .build()
        .await
        .unwrap()
}

async fn finish_waiter(engine: &Engine, id: &str, key: Option<&str>) {
    let options = StartOptions {
        id: Some(id.to_string()),
        idempotency_key: key.map(str::to_string),
        ..Default::default()
    };
    let handle = engine.start_with::<waiter>(0, options).await.unwrap();
    handle.result().await.unwrap().unwrap();
}

async fn finish_single(engine: &Engine, id: &str) {
    let options = StartOptions {
        id: Some(id.to_string()),
        ..Default::default()
    };
    let handle = engine
        .start_with::<single>("x".into(), options)
        .await
        .unwrap();
    handle.result().await.unwrap().unwrap();
}

async fn exists(engine: &Engine, id: &str) -> bool {
    match engine.describe(id).await {
        Ok(_) => true,
        Err(EngineError::NotFound { .. }) => false,
        Err(e) => panic!("describe {id}: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_workflows_are_purged_once_their_keep_time_has_passed() {
    let storage = MemoryStorage::new();
    let clock = VirtualClock::default();
    let engine = engine_on(&storage, &clock).await;
    let policy = RetentionPolicy::keep_finished_for(10 * MINUTE).for_type("single", 30 * MINUTE);
    finish_waiter(&engine, "w-old", None).await;
    finish_single(&engine, "s-old").await;
    clock.advance(5 * MINUTE);
    finish_waiter(&engine, "w-new", None).await;
    // Unfinished workflows are never purged, however old.
    engine
        .start_with::<waiter>(
            1,
            StartOptions {
                id: Some("w-live".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();

    assert_eq!(
        engine.sweep_retention(&policy).await.unwrap(),
        SweepReport::default()
    );
    clock.advance(6 * MINUTE);
    let report = engine.sweep_retention(&policy).await.unwrap();
    assert_eq!(report.purged, 1);
    assert!(!exists(&engine, "w-old").await);
    assert!(
        exists(&engine, "s-old").await,
        "singles are kept 30 minutes"
    );
    assert!(exists(&engine, "w-new").await);
    clock.advance(5 * MINUTE);
    assert_eq!(engine.sweep_retention(&policy).await.unwrap().purged, 1);
    assert!(!exists(&engine, "w-new").await);
    clock.advance(20 * MINUTE);
    assert_eq!(engine.sweep_retention(&policy).await.unwrap().purged, 1);
    assert!(!exists(&engine, "s-old").await);
    assert!(exists(&engine, "w-live").await);
    assert_eq!(engine.stats().purged, 3);
    assert!(
        storage
            .scan_prefix(record::FINISHED_PREFIX, None, usize::MAX)
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_by_status_decide_and_nothing_is_purged_without_a_rule() {
    let storage = MemoryStorage::new();
    let clock = VirtualClock::default();
    let engine = engine_on(&storage, &clock).await;
    finish_waiter(&engine, "done", None).await;
    let cancelled = engine
        .start_with::<waiter>(
            1,
            StartOptions {
                id: Some("cancelled".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    cancelled.cancel().await.unwrap();
    wait_status(&engine, "cancelled", WorkflowStatus::Cancelled).await;
    clock.advance(60 * MINUTE);
    let only_cancelled =
        RetentionPolicy::keep_forever().for_status(WorkflowStatus::Cancelled, MINUTE);
    assert_eq!(
        engine
            .sweep_retention(&only_cancelled)
            .await
            .unwrap()
            .purged,
        1
    );
    assert!(exists(&engine, "done").await);
    assert!(!exists(&engine, "cancelled").await);
    let nothing = RetentionPolicy::keep_forever();
    assert_eq!(engine.sweep_retention(&nothing).await.unwrap().purged, 0);
    assert!(exists(&engine, "done").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_purges_at_most_its_batch_oldest_first() {
    let storage = MemoryStorage::new();
    let clock = VirtualClock::default();
    let engine = engine_on(&storage, &clock).await;
    for i in 0..5 {
        finish_waiter(&engine, &format!("w-{i}"), None).await;
        clock.advance(Duration::from_secs(1));
    }
    clock.advance(MINUTE);
    let policy = RetentionPolicy::keep_finished_for(MINUTE).batch(2);
    let report = engine.sweep_retention(&policy).await.unwrap();
    assert_eq!((report.purged, report.deferred), (2, 3));
    assert!(!exists(&engine, "w-0").await && !exists(&engine, "w-1").await);
    assert!(exists(&engine, "w-2").await);
    let report = engine.sweep_retention(&policy).await.unwrap();
    assert_eq!((report.purged, report.deferred), (2, 1));
    assert_eq!(engine.sweep_retention(&policy).await.unwrap().purged, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_outlives_its_purged_workflow_by_its_window() {
    let storage = MemoryStorage::new();
    let clock = VirtualClock::default();
    let engine = engine_on(&storage, &clock).await;
    finish_waiter(&engine, "order-1", Some("checkout-1")).await;
    clock.advance(2 * MINUTE);
    let policy = RetentionPolicy::keep_finished_for(MINUTE).idempotency_window(10 * MINUTE);
    assert_eq!(engine.sweep_retention(&policy).await.unwrap().purged, 1);
    assert!(!exists(&engine, "order-1").await);

    // A late retry of the start is answered with the purged run's id; nothing starts.
    let retried = engine
        .start_with::<waiter>(
            0,
            StartOptions {
                idempotency_key: Some("checkout-1".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(retried.id(), "order-1");
    assert!(!exists(&engine, "order-1").await);

    // Once the window has passed, a sweep deletes the key and the next start is a new run.
    clock.advance(11 * MINUTE);
    let report = engine.sweep_retention(&policy).await.unwrap();
    assert_eq!(report.keys_expired, 1);
    let fresh = engine
        .start_with::<waiter>(
            0,
            StartOptions {
                idempotency_key: Some("checkout-1".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_ne!(fresh.id(), "order-1");
    fresh.result().await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_sweeper_runs_every_interval_on_the_engine_clock() {
    let storage = MemoryStorage::new();
    let clock = VirtualClock::default();
    let engine = Engine::builder(storage.clone())
        .register::<waiter>()
        .clock(Arc::new(clock.clone()))
        .retention(RetentionPolicy::keep_finished_for(MINUTE).interval(MINUTE))
        .build()
        .await
        .unwrap();
    for i in 0..3 {
        finish_waiter(&engine, &format!("w-{i}"), None).await;
    }
    // Each step of the clock lets the sweeper run once it is due; the workflows are due after
    // one minute, and the sweeper looks every minute.
    advance_until(&clock, || engine.stats().purged == 3).await;
    for i in 0..3 {
        assert!(!exists(&engine, &format!("w-{i}")).await);
    }
}
