//! Corruption: a damaged stored record parks only its own workflow (or refuses only the call
//! about it) with a typed error, and every other workflow keeps being listed, counted,
//! described, updated and finished.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use weft_runtime::engine::record::{self, WorkflowRecord};
use weft_runtime::engine::{GroupBy, ListFilter, StartOptions, WorkflowStatus};
use weft_runtime::storage::{MemoryStorage, Storage};
use weft_runtime::{
    Engine, EngineError, Update, UpdateOptions, WorkflowContext, WorkflowError, workflow,
};

/// Adds `n`; zero ends the tally.
#[derive(Debug, Clone, Serialize, Deserialize, Update)]
#[update(response = u64, name = "corruption.add")]
struct Add {
    n: u64,
}

/// Answers each update with the running total; stops at zero.
#[workflow]
async fn tally(ctx: &mut WorkflowContext, start: u64) -> Result<u64, WorkflowError> {
    let mut total: u64 = start;
    loop {
        let (add, reply) = ctx.wait_for_update::<Add>().await;
        total += add.n;
        ctx.respond(reply, total);
        if add.n == 0 {
            break;
        }
    }
    Ok(total)
}

/// Returns its input at once.
#[workflow]
async fn echo(_ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    Ok(n)
}

fn opts(update_id: &str) -> UpdateOptions {
    UpdateOptions {
        update_id: update_id.to_string(),
        timeout: Duration::from_secs(60),
    }
}

/// Bounds a call that must answer at once, so a call that waits fails the test instead of
/// hanging it (the engine's own timeouts are far longer).
async fn at_once<T>(call: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .expect("the call waited instead of answering")
}

fn parked_code(result: Result<impl std::fmt::Debug, EngineError>) -> String {
    match result {
        Err(EngineError::Parked { code, .. }) => code,
        other => panic!("expected a parked error, got {other:?}"),
    }
}

async fn build(storage: &MemoryStorage) -> Engine {
    Engine::builder(storage.clone())
        .register::<tally>()
        .register::<echo>()
        .build()
        .await
        .unwrap()
}

/// Starts `n` tallies and waits until each waits for an update.
async fn tallies(engine: &Engine, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let id = format!("tally-{i}");
        let options = StartOptions {
            id: Some(id.clone()),
            ..StartOptions::default()
        };
        engine.start_with::<tally>(0, options).await.unwrap();
        ids.push(id);
    }
    for id in &ids {
        for _ in 0..10_000 {
            if engine.describe(id).await.unwrap().status == WorkflowStatus::Waiting {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    ids
}

/// Every tally but `skip` is answered and finishes.
async fn others_finish(engine: &Engine, ids: &[String], skip: &str) {
    for id in ids.iter().filter(|id| *id != skip) {
        assert_eq!(
            at_once(engine.update(id, Add { n: 2 }, opts("two")))
                .await
                .unwrap(),
            2
        );
        assert_eq!(
            at_once(engine.update(id, Add { n: 0 }, opts("end")))
                .await
                .unwrap(),
            2
        );
        assert_eq!(
            at_once(engine.result::<tally>(id)).await.unwrap().unwrap(),
            2
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_attributes_record_parks_only_its_workflow_in_every_listing_and_lookup() {
    let storage = MemoryStorage::new();
    let engine = build(&storage).await;
    let ids = tallies(&engine, 3).await;
    let bad = ids[1].clone();
    // A truncated body: the format tag and nothing after it.
    storage
        .put(&record::attributes_key(&bad), &[record::FORMAT_V1])
        .unwrap();

    let page = engine
        .list(&ListFilter::default(), 100, None)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 3);
    for item in &page.items {
        if item.id == bad {
            assert_eq!(item.status, WorkflowStatus::Parked);
            assert_eq!(item.park_reason.as_ref().unwrap().code, "record.corrupt");
            assert!(
                item.park_reason
                    .as_ref()
                    .unwrap()
                    .message
                    .contains("wfattr/")
            );
        } else {
            assert_eq!(item.status, WorkflowStatus::Waiting);
        }
    }
    let counts = engine
        .count(&ListFilter::default(), GroupBy::Status)
        .await
        .unwrap();
    assert_eq!(
        counts,
        vec![("Parked".to_string(), 1), ("Waiting".to_string(), 2)]
    );
    let d = engine.describe(&bad).await.unwrap();
    assert_eq!(d.status, WorkflowStatus::Parked);
    assert_eq!(d.park_reason.unwrap().code, "record.corrupt");
    assert_eq!(
        parked_code(at_once(engine.update(&bad, Add { n: 1 }, opts("one"))).await),
        "record.corrupt"
    );
    assert_eq!(
        parked_code(at_once(engine.result::<tally>(&bad)).await),
        "record.corrupt"
    );
    others_finish(&engine, &ids, &bad).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_workflow_record_is_listed_as_parked_and_its_update_answers_at_once() {
    let storage = MemoryStorage::new();
    let engine = build(&storage).await;
    let ids = tallies(&engine, 3).await;
    let bad = ids[0].clone();
    storage
        .put(&record::workflow_key(&bad), &[0x7f, 1, 2])
        .unwrap();

    let page = engine
        .list(&ListFilter::default(), 100, None)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 3);
    let listed = page.items.iter().find(|i| i.id == bad).unwrap();
    assert_eq!(listed.status, WorkflowStatus::Parked);
    assert_eq!(listed.park_reason.as_ref().unwrap().code, "record.corrupt");
    assert_eq!(
        engine
            .describe(&bad)
            .await
            .unwrap()
            .park_reason
            .unwrap()
            .code,
        "record.corrupt"
    );
    assert_eq!(
        parked_code(at_once(engine.update(&bad, Add { n: 1 }, opts("one"))).await),
        "record.corrupt"
    );
    others_finish(&engine, &ids, &bad).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_record_without_an_outcome_answers_parked_instead_of_waiting_forever() {
    let storage = MemoryStorage::new();
    let engine = build(&storage).await;
    let done = engine.start::<echo>(7).await.unwrap();
    assert_eq!(done.result().await.unwrap().unwrap(), 7);
    let key = record::workflow_key(done.id());
    let mut stored: WorkflowRecord =
        record::decode_record(&storage.get(&key).unwrap().unwrap()).unwrap();
    stored.outcome = None;
    storage
        .put(&key, &record::encode_record(&stored).unwrap())
        .unwrap();

    assert_eq!(
        parked_code(at_once(engine.result::<echo>(done.id())).await),
        "record.corrupt"
    );
    let d = engine.describe(done.id()).await.unwrap();
    assert_eq!(d.status, WorkflowStatus::Parked);
    // Another workflow still runs to its end.
    let other = engine.start::<echo>(8).await.unwrap();
    assert_eq!(at_once(other.result()).await.unwrap().unwrap(), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_to_a_workflow_of_an_unregistered_type_answers_parked_at_once() {
    let storage = MemoryStorage::new();
    let first = build(&storage).await;
    let id = tallies(&first, 1).await.remove(0);
    first.shutdown().await;
    // The same store, without `tally`.
    let engine = Engine::builder(storage.clone())
        .register::<echo>()
        .build()
        .await
        .unwrap();
    assert_eq!(
        parked_code(at_once(engine.update(&id, Add { n: 1 }, opts("one"))).await),
        "workflow.unknown_type"
    );
    assert_eq!(
        parked_code(at_once(engine.result::<tally>(&id)).await),
        "workflow.unknown_type"
    );
}
