//! Step events: each durable commit of a workflow's step is broadcast to subscribers, in order,
//! after it is durable.

mod engine_support;

use engine_support::*;
use weft_runtime::engine::{Engine, StepEvent, WorkflowStatus};
use weft_runtime::storage::MemoryStorage;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_hear_each_committed_step_of_a_workflow_in_order() {
    let storage = MemoryStorage::new();
    let engine = Engine::builder(storage.clone())
        .register::<waiter>()
        .build()
        .await
        .unwrap();
    let mut events = engine.subscribe();
    let handle = engine.start::<waiter>(2).await.unwrap();
    for by in ["ada", "bob"] {
        handle.signal(Approval { by: by.into() }).await.unwrap();
    }
    assert_eq!(handle.result().await.unwrap().unwrap(), ["ada", "bob"]);
    let mut heard = Vec::new();
    while heard.last().map(|e: &StepEvent| e.status) != Some(WorkflowStatus::Completed) {
        heard.push(events.recv().await.unwrap());
    }
    let steps: Vec<(u64, WorkflowStatus)> = heard.iter().map(|e| (e.step, e.status)).collect();
    assert_eq!(
        steps,
        [
            (1, WorkflowStatus::Waiting),
            (2, WorkflowStatus::Waiting),
            (3, WorkflowStatus::Completed)
        ]
    );
    assert!(
        heard
            .iter()
            .all(|e| e.id == handle.id() && e.workflow_type == "waiter")
    );
    // What was heard was durable: the record says the same.
    let d = engine.describe(handle.id()).await.unwrap();
    assert_eq!((d.step, d.status), (3, WorkflowStatus::Completed));
}
