//! The engine on PostgreSQL: workflows run, survive a restart on the same schema, and many run
//! at once through the writer's grouped, fenced commits. Needs a real PostgreSQL (see
//! `support`).

mod support;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use support::{DropSchema, available, fresh_schema, options};
use weft_postgres::PostgresStorage;
use weft_runtime::engine::WorkflowStatus;
use weft_runtime::{ActivityError, Signal, WorkflowContext, WorkflowError, activity, workflow};
use weft_testing::{TestEngine, TestEngineBuilder};

#[activity]
async fn charge(cents: u64) -> Result<String, ActivityError> {
    unimplemented!("mocked: {cents}")
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Signal)]
struct Shipped(String);

const COOLING_OFF: Duration = Duration::from_secs(3 * 24 * 3600);

/// Charges, sleeps three days, then waits for the parcel to ship.
#[workflow]
async fn order(ctx: &mut WorkflowContext, cents: u64) -> Result<String, WorkflowError> {
    let receipt = ctx.run(charge, cents).await?;
    ctx.sleep(COOLING_OFF).await;
    let shipped = ctx.wait_for_signal::<Shipped>().await;
    Ok(format!("{receipt} shipped as {}", shipped.0))
}

fn builder() -> TestEngineBuilder {
    TestEngine::builder()
        .register::<order>()
        .mock(charge, |cents| async move { Ok(format!("ch_{cents}")) })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflows_run_on_postgres_and_outlive_their_engine() {
    if !available() {
        return;
    }
    let schema = fresh_schema();
    let _drop = DropSchema(schema.clone());
    let storage = PostgresStorage::connect(options(&schema)).await.unwrap();
    let mut engine = builder().storage(storage).build().await.unwrap();
    let handle = engine.start::<order>(4200).await.unwrap();
    let id = handle.id().to_string();
    assert_eq!(engine.mock(charge).calls(), [4200]);
    assert_eq!(engine.status(&id).await.unwrap(), WorkflowStatus::Waiting);
    engine.advance_time(COOLING_OFF).await;
    engine.restart().await.unwrap();
    assert_eq!(
        engine.state_name(&id).await.unwrap(),
        Some("AwaitSignalShipped")
    );
    drop(handle);
    engine.shutdown().await;

    // A second engine on a second connection to the same schema takes over where it stopped.
    let storage = PostgresStorage::connect(options(&schema)).await.unwrap();
    let engine = builder().storage(storage).build().await.unwrap();
    engine.signal(&id, Shipped("1Z999".into())).await.unwrap();
    assert_eq!(
        engine.result::<order>(&id).await.unwrap(),
        Ok("ch_4200 shipped as 1Z999".to_string())
    );
    // The charge ran once: the first engine's recorded result was kept.
    assert!(engine.mock(charge).calls().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_workflows_at_once_each_finish_once() {
    if !available() {
        return;
    }
    let schema = fresh_schema();
    let _drop = DropSchema(schema.clone());
    let storage = PostgresStorage::connect(options(&schema)).await.unwrap();
    let engine = builder().storage(storage).build().await.unwrap();
    let mut ids = Vec::new();
    for cents in 0..200u64 {
        ids.push((
            cents,
            engine.start::<order>(cents).await.unwrap().id().to_string(),
        ));
    }
    engine.advance_time(COOLING_OFF).await;
    for (cents, id) in &ids {
        engine
            .signal(id, Shipped(format!("p{cents}")))
            .await
            .unwrap();
    }
    for (cents, id) in &ids {
        assert_eq!(
            engine.result::<order>(id).await.unwrap(),
            Ok(format!("ch_{cents} shipped as p{cents}"))
        );
    }
    let mut charged = engine.mock(charge).calls();
    charged.sort_unstable();
    assert_eq!(
        charged,
        (0..200).collect::<Vec<u64>>(),
        "each charge ran exactly once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_grouped_batch_is_one_database_transaction() {
    if !available() {
        return;
    }
    let schema = fresh_schema();
    let _drop = DropSchema(schema.clone());
    let storage = std::sync::Arc::new(PostgresStorage::connect(options(&schema)).await.unwrap());
    let engine = builder()
        .storage(std::sync::Arc::clone(&storage))
        .build()
        .await
        .unwrap();
    let built = storage.stats();
    let mut handles = Vec::new();
    for cents in 0..100u64 {
        handles.push(engine.start::<order>(cents).await.unwrap());
    }
    engine.advance_time(COOLING_OFF).await;
    for (cents, handle) in handles.iter().enumerate() {
        engine
            .signal(handle.id(), Shipped(format!("p{cents}")))
            .await
            .unwrap();
    }
    for handle in &handles {
        engine.result::<order>(handle.id()).await.unwrap().unwrap();
    }
    let stats = storage.stats();
    let batches = engine.engine().stats().batches;
    assert_eq!(
        stats.write_transactions - built.write_transactions,
        batches,
        "one transaction per committed batch"
    );
    assert_eq!(stats.serialization_retries, 0, "one writer never collides");
    assert!(stats.rows_written > stats.write_transactions);
    assert!(stats.reads > built.reads);
}
