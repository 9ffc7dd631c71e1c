//! `Engine::shutdown` releases the store: when it returns, every task of the engine has dropped
//! the storage, so a new engine can open the same redb file at once.

mod engine_support;

use std::time::Duration;

use engine_support::*;
use weft_runtime::engine::Engine;
use weft_runtime::storage::RedbStorage;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redb_file_reopens_at_once_after_shutdown_with_runners_in_flight() {
    const CYCLES: usize = 25;
    const WORKFLOWS: usize = 8;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weft.redb");
    // An activity that never finishes keeps each workflow's runner task alive (it holds the
    // engine's state, and so the storage) until shutdown aborts it.
    let stuck = || FnActivity::new("greet", |_ctx, _input| std::future::pending());
    // Attempts are durable: each engine that recovers a workflow counts the attempt the last
    // one cut off, so a workflow is live for `max` engines and then fails for want of attempts.
    let max = weft_runtime::RetryPolicy::default().max_attempts as usize;
    for cycle in 0..CYCLES {
        let storage = match RedbStorage::create(&path) {
            Ok(storage) => storage,
            Err(e) => panic!("cycle {cycle}: the file is still held: {e}"),
        };
        let engine = Engine::builder(storage)
            .register::<single>()
            .activity_override("greet", stuck())
            .build()
            .await
            .unwrap();
        for _ in 0..WORKFLOWS {
            engine.start::<single>("ada".into()).await.unwrap();
        }
        // Every workflow with attempts left is live again (recovered) or just started, each
        // with a runner.
        let live = WORKFLOWS * (cycle + 1).min(max);
        eventually(|| engine.active_workflows() == live).await;
        engine.shutdown().await;
    }
    // The store kept every workflow: the last engine recovered all with attempts left, and the
    // others are stored as failed.
    let storage = RedbStorage::open(&path).unwrap();
    let engine = Engine::builder(storage)
        .register::<single>()
        .activity_override("greet", stuck())
        .build()
        .await
        .unwrap();
    eventually(|| engine.active_workflows() == WORKFLOWS * (max - 1)).await;
    let filter = weft_runtime::engine::ListFilter::default();
    let counts = engine
        .count(&filter, weft_runtime::engine::GroupBy::Status)
        .await
        .unwrap();
    let total: u64 = counts.iter().map(|(_, n)| n).sum();
    assert_eq!(total as usize, CYCLES * WORKFLOWS);
    tokio::time::timeout(Duration::from_secs(10), engine.shutdown())
        .await
        .unwrap();
}
