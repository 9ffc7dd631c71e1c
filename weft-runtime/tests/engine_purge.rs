//! `Engine::purge`: a finished workflow and everything stored under its id are deleted, and
//! the id and its idempotency key are free again; live workflows and children whose parent may
//! still read their result are refused.

mod engine_support;

use engine_support::{dump, wait_status};
use serde::{Deserialize, Serialize};
use weft_runtime::engine::{Engine, EngineError, StartOptions, WorkflowStatus};
use weft_runtime::storage::MemoryStorage;
use weft_runtime::{ActivityError, Signal, WorkflowContext, WorkflowError, activity, workflow};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Signal)]
struct Go;

#[activity]
async fn shout(name: String) -> Result<String, ActivityError> {
    Ok(name.to_uppercase())
}

/// Tags itself, runs one step and finishes.
#[workflow]
async fn tagged(ctx: &mut WorkflowContext, name: String) -> Result<String, WorkflowError> {
    ctx.set_attribute("customer", name.clone());
    let loud = ctx.run(shout, name).await?;
    Ok(loud)
}

/// Waits for `Go`, then finishes.
#[workflow]
async fn gated(ctx: &mut WorkflowContext, name: String) -> Result<String, WorkflowError> {
    let Go = ctx.wait_for_signal::<Go>().await;
    Ok(name)
}

/// Runs a `gated` child to its end, then waits for `Go` itself.
#[workflow]
async fn household(ctx: &mut WorkflowContext, name: String) -> Result<String, WorkflowError> {
    let kid: String = ctx.child(gated, name).await?;
    let Go = ctx.wait_for_signal::<Go>().await;
    Ok(kid)
}

async fn engine(storage: &MemoryStorage) -> Engine {
    Engine::builder(storage.clone())
        .register::<tagged>()
        .register::<gated>()
        .register::<household>()
        .build()
        .await
        .unwrap()
}

fn keys_naming(storage: &MemoryStorage, id: &str) -> Vec<String> {
    dump(storage)
        .into_keys()
        .map(|key| String::from_utf8_lossy(&key).into_owned())
        .filter(|key| key.contains(id))
        .collect()
}

fn keyed(id: &str, key: &str) -> StartOptions {
    StartOptions {
        id: Some(id.to_string()),
        idempotency_key: Some(key.to_string()),
        ..StartOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_workflow_is_deleted_with_everything_under_its_id() {
    let storage = MemoryStorage::new();
    let engine = engine(&storage).await;
    let handle = engine
        .start_with::<tagged>("ada".into(), keyed("order-7", "checkout-7"))
        .await
        .unwrap();
    assert_eq!(handle.result().await.unwrap(), Ok("ADA".to_string()));
    assert!(!keys_naming(&storage, "order-7").is_empty());
    assert!(!keys_naming(&storage, "checkout-7").is_empty());

    engine.purge("order-7").await.unwrap();
    assert_eq!(keys_naming(&storage, "order-7"), Vec::<String>::new());
    assert_eq!(keys_naming(&storage, "checkout-7"), Vec::<String>::new());
    assert!(matches!(
        engine.describe("order-7").await,
        Err(EngineError::NotFound { .. })
    ));
    assert!(matches!(
        engine.purge("order-7").await,
        Err(EngineError::NotFound { .. })
    ));
    // The idempotency key and the id are free: the same start creates a new run.
    let again = engine
        .start_with::<tagged>("bea".into(), keyed("order-7", "checkout-7"))
        .await
        .unwrap();
    assert_eq!(again.result().await.unwrap(), Ok("BEA".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_workflow_is_not_purged() {
    let storage = MemoryStorage::new();
    let engine = engine(&storage).await;
    let handle = engine
        .start_with::<gated>("gus".into(), keyed("waits", "w"))
        .await
        .unwrap();
    wait_status(&engine, "waits", WorkflowStatus::Waiting).await;
    let before = dump(&storage);
    let refused = engine.purge("waits").await.unwrap_err();
    assert!(
        matches!(refused, EngineError::NotFinished { .. }),
        "{refused}"
    );
    assert_eq!(refused.code(), "engine.not_finished");
    assert_eq!(dump(&storage), before, "a refused purge writes nothing");

    engine.signal("waits", Go).await.unwrap();
    assert_eq!(handle.result().await.unwrap(), Ok("gus".to_string()));
    engine.purge("waits").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_waits_for_its_parent_to_finish_before_it_can_be_purged() {
    let storage = MemoryStorage::new();
    let engine = engine(&storage).await;
    let handle = engine
        .start_with::<household>("kit".into(), keyed("mum", "m"))
        .await
        .unwrap();
    let child = "mum/1";
    wait_status(&engine, child, WorkflowStatus::Waiting).await;
    engine.signal(child, Go).await.unwrap();
    wait_status(&engine, child, WorkflowStatus::Completed).await;

    let refused = engine.purge(child).await.unwrap_err();
    assert!(
        matches!(&refused, EngineError::ParentNotFinished { parent, .. } if parent == "mum"),
        "{refused}"
    );
    engine.signal("mum", Go).await.unwrap();
    assert_eq!(handle.result().await.unwrap(), Ok("kit".to_string()));
    engine.purge(child).await.unwrap();
    engine.purge("mum").await.unwrap();
    assert!(dump(&storage).keys().all(|key| !key.starts_with(b"wf/")));
}
