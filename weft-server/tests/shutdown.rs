//! A graceful shutdown under load: every request answered with a `2xx` before the server
//! stopped is durable when an engine is built again on the same redb file.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use support::*;
use weft_runtime::storage::RedbStorage;
use weft_runtime::{Engine, StartOptions, WorkflowStatus};
use weft_server::Server;

const WORKFLOWS: usize = 150;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_cancel_acknowledged_before_a_shutdown_under_load_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shutdown.redb");
    let engine = Engine::builder(RedbStorage::create(&path).unwrap())
        .register::<parcel>()
        .build()
        .await
        .unwrap();
    for i in 0..WORKFLOWS {
        engine
            .start_with::<parcel>(
                "Lyon".into(),
                StartOptions {
                    id: Some(format!("p-{i}")),
                    ..StartOptions::default()
                },
            )
            .await
            .unwrap();
    }
    let listening = Server::builder(engine.clone())
        .address("127.0.0.1:0".parse().unwrap())
        .tokens(tokens())
        .build()
        .unwrap()
        .bind()
        .await
        .unwrap();
    let addr = listening.local_addr();
    drop(engine);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(listening.serve_until(async {
        let _ = stopped.await;
    }));

    // Cancel every workflow at once; stop the server once a third have been answered.
    let answered = Arc::new(AtomicUsize::new(0));
    let http = reqwest::Client::new();
    let requests: Vec<_> = (0..WORKFLOWS)
        .map(|i| {
            let (http, answered) = (http.clone(), Arc::clone(&answered));
            tokio::spawn(async move {
                let response = http
                    .post(format!("http://{addr}/v1/workflows/p-{i}/cancel"))
                    .bearer_auth(OPERATOR)
                    .send()
                    .await;
                answered.fetch_add(1, Ordering::SeqCst);
                match response {
                    Ok(r) if r.status().is_success() => Some(format!("p-{i}")),
                    _ => None,
                }
            })
        })
        .collect();
    while answered.load(Ordering::SeqCst) < WORKFLOWS / 3 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let _ = stop.send(());
    let mut acknowledged = Vec::new();
    for request in requests {
        acknowledged.extend(request.await.unwrap());
    }
    server.await.unwrap().unwrap();
    assert!(
        acknowledged.len() >= WORKFLOWS / 3,
        "{}",
        acknowledged.len()
    );

    // The file reopens at once, and every acknowledged cancellation is there.
    let engine = Engine::builder(RedbStorage::create(&path).unwrap())
        .register::<parcel>()
        .build()
        .await
        .unwrap();
    for id in &acknowledged {
        eventually(|| async {
            engine.describe(id).await.unwrap().status == WorkflowStatus::Cancelled
        })
        .await;
    }
    engine.shutdown().await;
}
