//! Typed queries: read-only views of a workflow's persisted state that work while it waits or is
//! parked, never wake it and never write; asking the wrong workflow is a typed error.

#![allow(non_camel_case_types)]

mod engine_support;

use std::sync::atomic::Ordering;

use engine_support::*;
use serde::{Deserialize, Serialize};
use weft_runtime::engine::WorkflowStatus;
use weft_runtime::storage::MemoryStorage;
use weft_runtime::{Engine, EngineError, Query, Signal, WorkflowContext, WorkflowError, workflow};

/// One line for the basket.
#[derive(Debug, Clone, Serialize, Deserialize, Signal)]
struct Item {
    name: String,
    cents: u64,
}

/// Collects `limit` items, then returns the total.
#[workflow]
async fn basket(ctx: &mut WorkflowContext, limit: usize) -> Result<u64, WorkflowError> {
    let mut names: Vec<String> = Vec::new();
    let mut total: u64 = 0;
    while names.len() < limit {
        let item = ctx.wait_for_signal::<Item>().await;
        names.push(item.name);
        total += item.cents;
    }
    Ok(total)
}

/// Another workflow, to ask the wrong question of.
#[workflow]
async fn other(ctx: &mut WorkflowContext, _unused: u8) -> Result<(), WorkflowError> {
    ctx.wait_for_signal::<Item>().await;
    Ok(())
}

/// The running total and the names so far.
#[derive(Debug, PartialEq, Serialize)]
struct Summary {
    names: Vec<String>,
    total: u64,
}

struct BasketSummary;

impl Query for BasketSummary {
    type Workflow = basket;
    type Output = Summary;
    const NAME: &'static str = "summary";
    fn answer(state: &BasketState) -> Summary {
        match state {
            BasketState::Start { .. } => Summary {
                names: Vec::new(),
                total: 0,
            },
            BasketState::AwaitSignalItem { names, total, .. } => Summary {
                names: names.clone(),
                total: *total,
            },
        }
    }
}

struct OtherStep;

impl Query for OtherStep {
    type Workflow = other;
    type Output = &'static str;
    const NAME: &'static str = "step";
    fn answer(state: &OtherState) -> &'static str {
        match state {
            OtherState::Start { .. } => "start",
            OtherState::AwaitSignalItem { .. } => "waiting",
        }
    }
}

fn item(name: &str, cents: u64) -> Item {
    Item {
        name: name.into(),
        cents,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_reads_a_waiting_workflow_without_waking_it_or_writing() {
    let storage = FlakyStorage::new(MemoryStorage::new());
    let engine = Engine::builder(storage.clone())
        .register::<basket>()
        .register::<other>()
        .query::<BasketSummary>()
        .build()
        .await
        .unwrap();
    let h = engine.start::<basket>(3).await.unwrap();
    h.signal(item("tea", 350)).await.unwrap();
    h.signal(item("cups", 1200)).await.unwrap();
    eventually(|| engine.active_workflows() == 0).await;
    wait_status(&engine, h.id(), WorkflowStatus::Waiting).await;

    let writes = storage.writes.load(Ordering::SeqCst);
    let stats = engine.stats();
    let before = dump(&storage);
    for _ in 0..3 {
        assert_eq!(
            engine.query::<BasketSummary>(h.id()).await.unwrap(),
            Summary {
                names: vec!["tea".into(), "cups".into()],
                total: 1550
            }
        );
        assert_eq!(
            engine.query_by_name(h.id(), "summary").await.unwrap(),
            serde_json::json!({"names": ["tea", "cups"], "total": 1550})
        );
    }
    assert_eq!(storage.writes.load(Ordering::SeqCst), writes, "no write");
    assert_eq!(engine.stats(), stats, "no commit");
    assert_eq!(engine.active_workflows(), 0, "not woken");
    assert_eq!(dump(&storage), before);

    h.signal(item("pot", 50)).await.unwrap();
    assert_eq!(h.result().await.unwrap().unwrap(), 1600);
    assert!(matches!(
        engine.query::<BasketSummary>(h.id()).await,
        Err(EngineError::Finished { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asking_the_wrong_workflow_or_an_unregistered_name_is_a_typed_error() {
    let engine = Engine::builder(MemoryStorage::new())
        .register::<basket>()
        .register::<other>()
        .query::<BasketSummary>()
        .build()
        .await
        .unwrap();
    let b = engine.start::<basket>(1).await.unwrap();
    let o = engine.start::<other>(0).await.unwrap();
    wait_status(&engine, o.id(), WorkflowStatus::Waiting).await;
    assert_eq!(engine.query::<OtherStep>(o.id()).await.unwrap(), "waiting");

    let err = engine.query::<BasketSummary>(o.id()).await.unwrap_err();
    assert!(
        matches!(&err, EngineError::UnknownQuery { query, .. } if query == "summary"),
        "{err:?}"
    );
    assert_eq!(err.code(), "engine.unknown_query");
    let err = engine.query::<OtherStep>(b.id()).await.unwrap_err();
    assert_eq!(err.code(), "engine.unknown_query");
    // `summary` is registered for `basket` only; `step` is not registered at all.
    let err = engine.query_by_name(o.id(), "summary").await.unwrap_err();
    assert_eq!(err.code(), "engine.unknown_query");
    let err = engine.query_by_name(b.id(), "step").await.unwrap_err();
    assert_eq!(err.code(), "engine.unknown_query");
    assert!(matches!(
        engine.query::<OtherStep>("missing").await,
        Err(EngineError::NotFound { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_reads_a_parked_workflow() {
    let storage = MemoryStorage::new();
    let id = {
        let engine = engine_for::<basket>(storage.clone()).await;
        let h = engine.start::<basket>(2).await.unwrap();
        h.signal(item("tea", 350)).await.unwrap();
        wait_state_count(&engine, h.id(), 1).await;
        let id = h.id().to_string();
        engine.shutdown().await;
        id
    };
    // A deployment without `basket`: the instance is parked, and still answers.
    let engine = engine_for::<other>(storage.clone()).await;
    assert_eq!(
        engine.describe(&id).await.unwrap().status,
        WorkflowStatus::Parked
    );
    assert_eq!(
        engine.query::<BasketSummary>(&id).await.unwrap().names,
        ["tea"]
    );
}

async fn wait_state_count(engine: &Engine, id: &str, n: usize) {
    for _ in 0..10_000 {
        if engine
            .query::<BasketSummary>(id)
            .await
            .is_ok_and(|s| s.names.len() == n)
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    panic!("basket {id} never held {n} items");
}

/// `summary` again, under the same name for the same workflow version.
struct SummaryAgain;

impl Query for SummaryAgain {
    type Workflow = basket;
    type Output = u64;
    const NAME: &'static str = "summary";
    fn answer(state: &BasketState) -> u64 {
        BasketSummary::answer(state).total
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_name_queries_are_checked_at_build() {
    let err = Engine::builder(MemoryStorage::new())
        .register::<basket>()
        .query::<BasketSummary>()
        .query::<SummaryAgain>()
        .build()
        .await
        .unwrap_err();
    assert_eq!(err.code(), "engine.conflicting_query");
    let err = Engine::builder(MemoryStorage::new())
        .register::<other>()
        .query::<BasketSummary>()
        .build()
        .await
        .unwrap_err();
    assert_eq!(
        err,
        EngineError::NotRegistered {
            workflow: "basket".into(),
            version: 1
        }
    );
}
