//! Describe, list with filters and pagination, typed state, and idempotent starts.

mod engine_support;

use std::collections::BTreeSet;

use engine_support::*;
use weft_runtime::engine::record;
use weft_runtime::engine::{
    Engine, EngineError, ListFilter, Pending, StartOptions, WorkflowStatus,
};
use weft_runtime::storage::{MemoryStorage, Storage};

async fn engine(storage: &MemoryStorage) -> Engine {
    Engine::builder(storage.clone())
        .register::<waiter>()
        .register::<single>()
        .build()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_shows_status_type_step_pending_and_state() {
    let engine = engine(&MemoryStorage::new()).await;
    let handle = engine.start::<waiter>(2).await.unwrap();
    handle.signal(Approval { by: "gus".into() }).await.unwrap();
    wait_state(&engine, handle.id(), "AwaitApproval").await;
    eventually_step(&engine, handle.id(), 2).await;
    let d = handle.describe().await.unwrap();
    assert_eq!(d.id, handle.id());
    assert_eq!(d.workflow_type, "waiter");
    assert_eq!(d.version, 1);
    assert_eq!(d.status, WorkflowStatus::Waiting);
    assert_eq!(d.park_reason, None);
    assert_eq!(
        d.pending,
        Some(Pending::Signal {
            name: "approval".into()
        })
    );
    assert_eq!(
        d.state,
        Some(serde_json::json!({"AwaitApproval": {"left": 1, "seen": ["gus"]}}))
    );
    assert!(d.created_at <= d.updated_at);
    match engine.state::<waiter>(handle.id()).await.unwrap() {
        WaiterState::AwaitApproval { left, seen } => {
            assert_eq!((left, seen), (1, vec!["gus".to_string()]));
        }
        other => panic!("unexpected state {other:?}"),
    }
    assert!(matches!(
        engine.state::<single>(handle.id()).await,
        Err(EngineError::WrongType { .. })
    ));
    assert!(matches!(
        engine.describe("nope").await,
        Err(EngineError::NotFound { .. })
    ));
}

async fn eventually_step(engine: &Engine, id: &str, step: u64) {
    for _ in 0..10_000 {
        if engine.describe(id).await.unwrap().step == step {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    panic!("never reached step {step}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_filters_by_status_and_type_and_pages_through_everything() {
    let engine = engine(&MemoryStorage::new()).await;
    let mut waiting = BTreeSet::new();
    for _ in 0..7 {
        waiting.insert(engine.start::<waiter>(1).await.unwrap().id().to_string());
    }
    let mut done = BTreeSet::new();
    for i in 0..3 {
        let h = engine.start::<single>(format!("s{i}")).await.unwrap();
        h.result().await.unwrap().unwrap();
        done.insert(h.id().to_string());
    }
    for id in &waiting {
        wait_status(&engine, id, WorkflowStatus::Waiting).await;
    }

    let mut seen = BTreeSet::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = engine
            .list(&ListFilter::default(), 3, token.as_deref())
            .await
            .unwrap();
        pages += 1;
        assert!(page.items.len() <= 3);
        for item in &page.items {
            assert!(seen.insert(item.id.clone()), "{} listed twice", item.id);
        }
        match page.next_page_token {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    assert!(pages >= 4);
    assert_eq!(seen, waiting.union(&done).cloned().collect());

    let only = |status, workflow_type: Option<&str>| ListFilter {
        status,
        workflow_type: workflow_type.map(str::to_string),
        ..ListFilter::default()
    };
    let ids =
        |page: weft_runtime::Page<weft_runtime::engine::WorkflowSummary>| -> BTreeSet<String> {
            page.items.into_iter().map(|i| i.id).collect()
        };
    let w = engine
        .list(&only(Some(WorkflowStatus::Waiting), None), 100, None)
        .await
        .unwrap();
    assert_eq!(w.next_page_token, None);
    assert_eq!(ids(w), waiting);
    let c = engine
        .list(
            &only(Some(WorkflowStatus::Completed), Some("single")),
            100,
            None,
        )
        .await
        .unwrap();
    assert_eq!(ids(c), done);
    let none = engine
        .list(
            &only(Some(WorkflowStatus::Completed), Some("waiter")),
            100,
            None,
        )
        .await
        .unwrap();
    assert!(none.items.is_empty());
    assert_eq!(
        engine
            .list(&ListFilter::default(), 3, Some(""))
            .await
            .unwrap_err()
            .code(),
        "engine.invalid_page_token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_start_with_the_same_idempotency_key_returns_the_same_run() {
    let storage = MemoryStorage::new();
    let engine = engine(&storage).await;
    let options = StartOptions {
        id: None,
        idempotency_key: Some("order-1".into()),
        ..Default::default()
    };
    let first = engine
        .start_with::<waiter>(1, options.clone())
        .await
        .unwrap();
    let again = engine.start_with::<waiter>(1, options).await.unwrap();
    assert_eq!(first.id(), again.id());
    assert_eq!(
        storage
            .scan_prefix(record::WORKFLOW_PREFIX, None, 100)
            .unwrap()
            .len(),
        1
    );

    // Concurrent starts with one key create one workflow.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let engine = engine.clone();
        tasks.push(tokio::spawn(async move {
            let options = StartOptions {
                id: None,
                idempotency_key: Some("order-2".into()),
                ..Default::default()
            };
            engine
                .start_with::<waiter>(1, options)
                .await
                .unwrap()
                .id()
                .to_string()
        }));
    }
    let mut ids = BTreeSet::new();
    for task in tasks {
        ids.insert(task.await.unwrap());
    }
    assert_eq!(ids.len(), 1);

    // A chosen id is taken once; a second start without the key is refused.
    let chosen = StartOptions {
        id: Some("mine".into()),
        idempotency_key: None,
        ..Default::default()
    };
    engine
        .start_with::<waiter>(1, chosen.clone())
        .await
        .unwrap();
    let err = engine.start_with::<waiter>(1, chosen).await.unwrap_err();
    assert_eq!(err, EngineError::AlreadyExists { id: "mine".into() });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_id_skips_ids_callers_already_chose() {
    let engine = engine(&MemoryStorage::new()).await;
    let taken = format!("waiter-{}-0", engine.epoch());
    let chosen = StartOptions {
        id: Some(taken.clone()),
        idempotency_key: None,
        ..Default::default()
    };
    engine.start_with::<waiter>(1, chosen).await.unwrap();
    let generated = engine.start::<waiter>(1).await.unwrap();
    assert_ne!(generated.id(), taken);
    assert!(generated.id().starts_with("waiter-"));
}
