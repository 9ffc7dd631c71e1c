//! The test engine over redb: the same virtual time, mocks and settling as over memory, on a
//! store that survives the engine, and is read back by a second test engine from the file.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use weft_runtime::engine::WorkflowStatus;
use weft_runtime::storage::{RedbStorage, Storage};
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

#[tokio::test]
async fn a_test_engine_runs_on_a_redb_file_and_its_workflows_outlive_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weft.redb");
    let mut engine = builder()
        .storage(RedbStorage::create(&path).unwrap())
        .build()
        .await
        .unwrap();
    let handle = engine.start::<order>(4200).await.unwrap();
    let id = handle.id().to_string();
    assert_eq!(engine.mock(charge).calls(), [4200]);
    assert_eq!(engine.status(&id).await.unwrap(), WorkflowStatus::Waiting);

    // Virtual time skips the three days; a restart recovers from what redb holds.
    engine.advance_time(COOLING_OFF).await;
    engine.restart().await.unwrap();
    assert_eq!(
        engine.state_name(&id).await.unwrap(),
        Some("AwaitSignalShipped")
    );
    // The records are in the redb file, not in memory: the store the engine runs on reads them.
    let key = weft_runtime::engine::record::workflow_key(
        weft_runtime::engine::record::Partition::ZERO,
        &id,
    );
    assert!(engine.storage().get(&key).unwrap().is_some());
    drop(handle);
    engine.shutdown().await;

    // A second test engine on the same file finds the workflow where the first left it.
    let engine = builder()
        .storage(RedbStorage::open(&path).unwrap())
        .build()
        .await
        .unwrap();
    engine.signal(&id, Shipped("1Z999".into())).await.unwrap();
    assert_eq!(
        engine.result::<order>(&id).await.unwrap(),
        Ok("ch_4200 shipped as 1Z999".to_string())
    );
    // It did not charge again: the first engine's recorded result was kept.
    assert!(engine.mock(charge).calls().is_empty());
}
