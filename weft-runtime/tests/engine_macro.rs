//! The engine driving workflows compiled by `#[workflow]`, with a restart in the middle.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use weft_runtime::engine::{VirtualClock, WorkflowStatus};
use weft_runtime::storage::MemoryStorage;
use weft_runtime::{
    ActivityError, Engine, Signal, WorkflowContext, WorkflowError, activity, workflow,
};

/// Adds `n` to a running total.
#[activity]
async fn add(pair: (u64, u64)) -> Result<u64, ActivityError> {
    Ok(pair.0 + pair.1)
}

/// How much to add next; zero ends the loop.
#[derive(Debug, Clone, Serialize, Deserialize, Signal)]
struct Amount {
    n: u64,
}

/// Sums amounts sent as signals, pausing a minute after each, until a zero arrives.
#[workflow]
async fn summing(ctx: &mut WorkflowContext, start: u64) -> Result<u64, WorkflowError> {
    let mut total: u64 = start;
    loop {
        let amount = ctx.wait_for_signal::<Amount>().await;
        if amount.n == 0 {
            break;
        }
        total = ctx.run(add, (total, amount.n)).await?;
        ctx.sleep(Duration::from_secs(60)).await;
    }
    Ok(total)
}

async fn wait_until(
    engine: &Engine,
    id: &str,
    check: impl Fn(&weft_runtime::engine::WorkflowDescription) -> bool,
) {
    for _ in 0..10_000 {
        if check(&engine.describe(id).await.unwrap()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("workflow {id} never got there");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compiled_workflow_loops_through_signals_activities_and_sleeps_across_a_restart() {
    let storage = MemoryStorage::new();
    let clock = VirtualClock::default();
    let build = || {
        Engine::builder(storage.clone())
            .register::<summing>()
            .clock(Arc::new(clock.clone()))
            .build()
    };
    let engine = build().await.unwrap();
    let handle = engine.start::<summing>(10).await.unwrap();
    let id = handle.id().to_string();
    handle.signal(Amount { n: 5 }).await.unwrap();
    handle.signal(Amount { n: 7 }).await.unwrap();
    // After the first amount it sleeps; the second amount waits in the queue.
    wait_until(&engine, &id, |d| {
        d.pending
            .as_ref()
            .is_some_and(|p| matches!(p, weft_runtime::engine::Pending::Timer { .. }))
    })
    .await;
    drop(handle);
    engine.shutdown().await;

    let engine = build().await.unwrap();
    let d = engine.describe(&id).await.unwrap();
    assert_eq!(d.status, WorkflowStatus::Waiting);
    assert!(
        d.state.unwrap().to_string().contains("15"),
        "the total so far is in the state"
    );
    clock.advance(Duration::from_secs(60));
    // The queued amount is consumed, then another sleep.
    wait_until(&engine, &id, |d| {
        d.step >= 6
            && d.pending
                .as_ref()
                .is_some_and(|p| matches!(p, weft_runtime::engine::Pending::Timer { .. }))
    })
    .await;
    clock.advance(Duration::from_secs(60));
    engine.signal(&id, Amount { n: 0 }).await.unwrap();
    assert_eq!(engine.result::<summing>(&id).await.unwrap().unwrap(), 22);
}
