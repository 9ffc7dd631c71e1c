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
    let mut started = 0;
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
            started += 1;
        }
        // Every started workflow is live again (recovered) or just started, each with a runner.
        eventually(|| engine.active_workflows() == started).await;
        engine.shutdown().await;
    }
    // The store kept every workflow: the last engine recovered all of them.
    let storage = RedbStorage::open(&path).unwrap();
    let engine = Engine::builder(storage)
        .register::<single>()
        .activity_override("greet", stuck())
        .build()
        .await
        .unwrap();
    eventually(|| engine.active_workflows() == CYCLES * WORKFLOWS).await;
    tokio::time::timeout(Duration::from_secs(10), engine.shutdown())
        .await
        .unwrap();
}
