//! A workflow written without the annotations `#[workflow]` infers (a `for` over an activity's
//! `Vec` output, `while let Some(doc) = queue.pop_front()`, `Saga::new()`, `vec![..]`, the
//! value of `ctx.all` over a `Vec`) runs on the engine and resumes across restarts at the
//! awaits where those inferred types are saved in its state.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use weft_runtime::engine::{Pending, VirtualClock, WorkflowDescription, WorkflowStatus};
use weft_runtime::storage::MemoryStorage;
use weft_runtime::{
    ActivityError, Engine, Saga, Signal, WorkflowContext, WorkflowError, activity, workflow,
};

/// A document to index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Document {
    id: u64,
}

/// Whether to keep the document the workflow is looking at.
#[derive(Debug, Clone, Serialize, Deserialize, Signal)]
struct Keep {
    keep: bool,
}

#[activity]
async fn list_documents(n: u64) -> Result<Vec<Document>, ActivityError> {
    Ok((1..=n).map(|id| Document { id: id * 10 }).collect())
}

#[activity]
async fn index(doc: Document) -> Result<u64, ActivityError> {
    Ok(doc.id + 1)
}

/// How many documents were unindexed by compensation: only this test's workflow calls it.
static UNINDEXED: AtomicU64 = AtomicU64::new(0);

#[activity]
async fn unindex(id: u64) -> Result<(), ActivityError> {
    UNINDEXED.fetch_add(id, Ordering::SeqCst);
    Ok(())
}

/// Asks about each listed document, indexes the kept ones one a minute, checks them all at once,
/// then undoes the indexing: not one binding held across an await is annotated.
#[workflow]
async fn indexing(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    let docs = ctx.run(list_documents, n).await?;
    let mut queue: VecDeque<Document> = VecDeque::new();
    for doc in docs {
        let answer = ctx.wait_for_signal::<Keep>().await;
        if answer.keep {
            queue.push_back(doc);
        }
    }
    let kept = vec![queue.len() as u64];
    let mut saga = Saga::new();
    let mut sum: u64 = 0;
    while let Some(doc) = queue.pop_front() {
        sum += ctx.run(index, doc.clone()).await?;
        ctx.sleep(Duration::from_secs(60)).await;
        saga.add(unindex, doc.id);
        queue.push_back(doc);
        if saga.len() as u64 == kept[0] {
            break;
        }
    }
    let checks = ctx
        .all(
            queue
                .iter()
                .map(|d| ctx.run(index, d.clone()))
                .collect::<Vec<_>>(),
        )
        .await;
    while let Some(step) = saga.pop() {
        ctx.compensate(step).await?;
    }
    let checked: u64 = checks.into_iter().map(|c| c.unwrap_or(0)).sum();
    Ok(sum + checked)
}

async fn wait_until(engine: &Engine, id: &str, check: impl Fn(&WorkflowDescription) -> bool) {
    for _ in 0..10_000 {
        if check(&engine.describe(id).await.unwrap()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("workflow {id} never got there");
}

fn waiting_in(d: &WorkflowDescription, variant: &str) -> bool {
    d.status == WorkflowStatus::Waiting
        && d.state
            .as_ref()
            .is_some_and(|s| s.to_string().contains(variant))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_with_inferred_types_resumes_where_they_are_saved() {
    let storage = MemoryStorage::new();
    let clock = VirtualClock::default();
    let build = || {
        Engine::builder(storage.clone())
            .register::<indexing>()
            .clock(Arc::new(clock.clone()))
            .build()
    };
    let engine = build().await.unwrap();
    let id = engine.start::<indexing>(3).await.unwrap().id().to_string();
    engine.signal(&id, Keep { keep: true }).await.unwrap();
    // At the second document: the loop's position and the document (typed from the activity's
    // output) are in the state.
    wait_until(&engine, &id, |d| {
        waiting_in(d, "AwaitSignalKeep")
            && d.state
                .as_ref()
                .is_some_and(|s| s.to_string().contains("\"doc\":{\"id\":20}"))
    })
    .await;
    engine.shutdown().await;

    let engine = build().await.unwrap();
    engine.signal(&id, Keep { keep: false }).await.unwrap();
    engine.signal(&id, Keep { keep: true }).await.unwrap();
    // Indexing the first kept document, then a minute's sleep holding it (typed from the
    // queue's `pop_front`) and the saga (typed from `Saga::new()`).
    wait_until(&engine, &id, |d| {
        waiting_in(d, "AwaitSleep")
            && d.pending
                .as_ref()
                .is_some_and(|p| matches!(p, Pending::Timer { .. }))
    })
    .await;
    engine.shutdown().await;

    let engine = build().await.unwrap();
    let d = engine.describe(&id).await.unwrap();
    let state = d.state.unwrap().to_string();
    assert!(state.contains("\"doc\":{\"id\":10}"), "{state}");
    clock.advance(Duration::from_secs(60));
    wait_until(&engine, &id, |d| {
        waiting_in(d, "AwaitSleep")
            && d.state
                .as_ref()
                .is_some_and(|s| s.to_string().contains("\"doc\":{\"id\":30}"))
    })
    .await;
    clock.advance(Duration::from_secs(60));
    // Indexed 10 and 30 (11 + 31), checked both again (11 + 31), then unindexed both.
    assert_eq!(engine.result::<indexing>(&id).await.unwrap().unwrap(), 84);
    assert_eq!(UNINDEXED.load(Ordering::SeqCst), 40);
    engine.shutdown().await;
}
