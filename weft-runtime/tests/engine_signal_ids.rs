//! Caller signal ids (`SignalOptions::signal_id`): a signal repeated with one id is queued once
//! and every repeat answers as the first did, also when the repeats are concurrent, come after a
//! restart or after the workflow finished; ids are forgotten after the window and purged with
//! their workflow.

mod engine_support;

use std::sync::Arc;
use std::time::Duration;

use engine_support::{dump, wait_state};
use serde::{Deserialize, Serialize};
use serde_json::json;
use weft_runtime::engine::VirtualClock;
use weft_runtime::engine::record;
use weft_runtime::storage::MemoryStorage;
use weft_runtime::{
    Engine, EngineError, Signal, SignalOptions, WorkflowContext, WorkflowError, workflow,
};

/// Adds to the sum.
#[derive(Debug, Clone, Serialize, Deserialize, Signal)]
struct Add(u64);

/// Ends the sum.
#[derive(Debug, Clone, Serialize, Deserialize, Signal)]
struct Stop;

/// Waits for a `Stop`, then sums every `Add` queued before it.
#[workflow]
async fn sum(ctx: &mut WorkflowContext, _input: ()) -> Result<Vec<u64>, WorkflowError> {
    let _stop = ctx.wait_for_signal::<Stop>().await;
    let mut seen: Vec<u64> = Vec::new();
    loop {
        let next: weft_runtime::Race2<Add, ()> = ctx
            .race((
                ctx.wait_for_signal::<Add>(),
                ctx.sleep(Duration::from_secs(1)),
            ))
            .await;
        match next {
            weft_runtime::Race2::First(add) => seen.push(add.0),
            weft_runtime::Race2::Second(()) => break,
        }
    }
    Ok(seen)
}

async fn build(storage: &MemoryStorage, clock: &VirtualClock, window: Duration) -> Engine {
    Engine::builder(storage.clone())
        .register::<sum>()
        .clock(Arc::new(clock.clone()))
        .signal_id_window(window)
        .build()
        .await
        .unwrap()
}

/// The result of `sum` workflow `id`, moving the clock on until it has finished.
async fn finish(engine: &Engine, clock: &VirtualClock, id: &str) -> Vec<u64> {
    let done = Arc::new(std::sync::Mutex::new(None));
    let waiter = {
        let (engine, id, done) = (engine.clone(), id.to_string(), Arc::clone(&done));
        tokio::spawn(async move {
            let result = engine.result::<sum>(&id).await;
            *done.lock().unwrap() = Some(result);
        })
    };
    engine_support::advance_until(clock, || done.lock().unwrap().is_some()).await;
    waiter.await.unwrap();
    let result = done.lock().unwrap().take().unwrap();
    result.unwrap().unwrap()
}

async fn queued(engine: &Engine, id: &str) -> u64 {
    engine.describe(id).await.unwrap().signals_queued
}

#[tokio::test]
async fn a_repeated_id_is_queued_once_and_answers_the_same() {
    let (storage, clock) = (MemoryStorage::new(), VirtualClock::default());
    let engine = build(&storage, &clock, Duration::from_secs(3600)).await;
    let id = engine.start::<sum>(()).await.unwrap().id().to_string();
    wait_state(&engine, &id, "AwaitSignalStop").await;
    for (value, signal_id) in [(1, "a"), (1, "a"), (2, "b"), (1, "a")] {
        engine
            .signal_with(&id, Add(value), SignalOptions::id(signal_id))
            .await
            .unwrap();
    }
    // By name, the same id is the same signal.
    engine
        .signal_by_name(&id, "Add", json!(1), SignalOptions::id("a"))
        .await
        .unwrap();
    assert_eq!(queued(&engine, &id).await, 2);
    // Without an id, every call is queued.
    engine.signal(&id, Add(3)).await.unwrap();
    engine.signal(&id, Add(3)).await.unwrap();
    assert_eq!(queued(&engine, &id).await, 4);
    engine.signal(&id, Stop).await.unwrap();
    assert_eq!(finish(&engine, &clock, &id).await, vec![1, 2, 3, 3]);

    // After the workflow finished, a repeat still answers as the first call did; a new id is
    // refused because the workflow takes no more signals.
    engine
        .signal_with(&id, Add(1), SignalOptions::id("a"))
        .await
        .unwrap();
    assert_eq!(
        engine
            .signal_with(&id, Add(1), SignalOptions::id("new"))
            .await,
        Err(EngineError::Finished { id: id.clone() })
    );
}

#[tokio::test]
async fn concurrent_repeats_queue_the_signal_exactly_once() {
    let (storage, clock) = (MemoryStorage::new(), VirtualClock::default());
    let engine = build(&storage, &clock, Duration::from_secs(3600)).await;
    let id = engine.start::<sum>(()).await.unwrap().id().to_string();
    wait_state(&engine, &id, "AwaitSignalStop").await;
    let sends: Vec<_> = (0..32)
        .map(|n| {
            let (engine, id) = (engine.clone(), id.clone());
            tokio::spawn(async move {
                // Half typed, half by name: one id, one signal.
                if n % 2 == 0 {
                    engine
                        .signal_with(&id, Add(5), SignalOptions::id("hook-1"))
                        .await
                } else {
                    engine
                        .signal_by_name(&id, "Add", json!(5), SignalOptions::id("hook-1"))
                        .await
                }
            })
        })
        .collect();
    for send in sends {
        send.await.unwrap().unwrap();
    }
    assert_eq!(queued(&engine, &id).await, 1);
    assert_eq!(engine.stats().failed_batches, 0);
}

#[tokio::test]
async fn ids_survive_a_restart_within_the_window_and_expire_after_it() {
    let (storage, clock) = (MemoryStorage::new(), VirtualClock::default());
    let window = Duration::from_secs(600);
    let engine = build(&storage, &clock, window).await;
    let id = engine.start::<sum>(()).await.unwrap().id().to_string();
    wait_state(&engine, &id, "AwaitSignalStop").await;
    engine
        .signal_with(&id, Add(1), SignalOptions::id("a"))
        .await
        .unwrap();
    engine.shutdown().await;

    let engine = build(&storage, &clock, window).await;
    engine
        .signal_with(&id, Add(1), SignalOptions::id("a"))
        .await
        .unwrap();
    assert_eq!(queued(&engine, &id).await, 1);

    // Just inside the window, still a repeat.
    clock.advance(window - Duration::from_millis(1));
    engine
        .signal_with(&id, Add(1), SignalOptions::id("a"))
        .await
        .unwrap();
    assert_eq!(queued(&engine, &id).await, 1);
    // Once the window has passed since it was accepted, the id is new again, and remembered
    // from this acceptance on.
    clock.advance(Duration::from_millis(1));
    engine
        .signal_with(&id, Add(1), SignalOptions::id("a"))
        .await
        .unwrap();
    assert_eq!(queued(&engine, &id).await, 2);
    clock.advance(window / 2);
    engine
        .signal_with(&id, Add(1), SignalOptions::id("a"))
        .await
        .unwrap();
    assert_eq!(queued(&engine, &id).await, 2);
}

#[tokio::test]
async fn ids_are_purged_with_their_workflow() {
    let (storage, clock) = (MemoryStorage::new(), VirtualClock::default());
    let engine = build(&storage, &clock, Duration::from_secs(3600)).await;
    let id = engine.start::<sum>(()).await.unwrap().id().to_string();
    wait_state(&engine, &id, "AwaitSignalStop").await;
    for signal_id in ["a", "b"] {
        engine
            .signal_with(&id, Add(1), SignalOptions::id(signal_id))
            .await
            .unwrap();
    }
    engine
        .signal_with(&id, Stop, SignalOptions::id("stop"))
        .await
        .unwrap();
    assert_eq!(finish(&engine, &clock, &id).await, vec![1, 1]);
    let ids = |storage: &MemoryStorage| {
        dump(storage)
            .into_keys()
            .filter(|key| key.starts_with(record::SIGNAL_ID_PREFIX))
            .count()
    };
    assert_eq!(ids(&storage), 3);
    engine.purge(&id).await.unwrap();
    assert_eq!(ids(&storage), 0);
}

#[tokio::test]
async fn an_invalid_signal_id_is_refused() {
    let (storage, clock) = (MemoryStorage::new(), VirtualClock::default());
    let engine = build(&storage, &clock, Duration::from_secs(3600)).await;
    let id = engine.start::<sum>(()).await.unwrap().id().to_string();
    let error = engine
        .signal_with(&id, Add(1), SignalOptions::id(""))
        .await
        .unwrap_err();
    assert!(matches!(error, EngineError::InvalidId { .. }), "{error:?}");
    assert_eq!(queued(&engine, &id).await, 0);
}
