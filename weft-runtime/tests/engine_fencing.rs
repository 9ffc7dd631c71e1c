//! Ownership: a second engine on the same storage deposes the first, whose writes then fail with
//! a typed error and never land.

mod engine_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use engine_support::*;
use tokio::sync::Semaphore;
use weft_runtime::engine::{Engine, EngineError, WorkflowStatus};
use weft_runtime::storage::MemoryStorage;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_engine_fences_the_first_and_nothing_the_first_tries_lands() {
    let storage = MemoryStorage::new();
    let gate = Arc::new(Semaphore::new(0));
    let entered = Arc::new(AtomicUsize::new(0));
    let gated = {
        let (gate, entered) = (gate.clone(), entered.clone());
        FnActivity::new("greet", move |_ctx, _input| {
            let (gate, entered) = (gate.clone(), entered.clone());
            async move {
                entered.fetch_add(1, Ordering::SeqCst);
                let _permit = gate.acquire().await.unwrap();
                Ok(enc(&"gated".to_string()))
            }
        })
    };
    let first = Engine::builder(storage.clone())
        .register::<single>()
        .register::<waiter>()
        .activity_override("greet", gated)
        .build()
        .await
        .unwrap();
    let running = first.start::<single>("x".into()).await.unwrap();
    let waiting = first.start::<waiter>(1).await.unwrap();
    wait_status(&first, waiting.id(), WorkflowStatus::Waiting).await;
    eventually(|| entered.load(Ordering::SeqCst) == 1).await;

    let second = Engine::builder(storage.clone())
        .register::<single>()
        .register::<waiter>()
        .recover(false)
        .build()
        .await
        .unwrap();
    assert_eq!(second.epoch(), first.epoch() + 1);
    let before = dump(&storage);

    // The first engine's activity finishes; committing its result is refused.
    gate.add_permits(1);
    eventually(|| first.is_fenced()).await;
    assert!(matches!(
        first.result::<single>(running.id()).await,
        Err(EngineError::Fenced { .. })
    ));

    // Every later call of the first engine is refused with the same typed error.
    let err = first
        .signal(waiting.id(), Approval { by: "late".into() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), "engine.fenced");
    assert!(matches!(
        first.start::<waiter>(1).await,
        Err(EngineError::Fenced { .. })
    ));
    assert!(matches!(
        first.cancel(waiting.id()).await,
        Err(EngineError::Fenced { .. })
    ));
    assert_eq!(
        dump(&storage),
        before,
        "nothing the deposed engine tried landed"
    );
    let d = second.describe(running.id()).await.unwrap();
    assert_eq!(
        d.state_name,
        Some("AwaitGreet"),
        "the activity result was not recorded"
    );

    // The new owner carries on.
    second
        .signal(waiting.id(), Approval { by: "new".into() })
        .await
        .unwrap();
    assert_eq!(
        second
            .result::<waiter>(waiting.id())
            .await
            .unwrap()
            .unwrap(),
        vec!["new"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposed_engine_with_nothing_in_flight_fails_on_its_next_write() {
    let storage = MemoryStorage::new();
    let first = engine_for::<waiter>(storage.clone()).await;
    let _second = engine_for::<waiter>(storage.clone()).await;
    let before = dump(&storage);
    let err = first.start::<waiter>(1).await.unwrap_err();
    assert_eq!(
        err,
        EngineError::Fenced {
            epoch: first.epoch()
        }
    );
    assert!(first.is_fenced());
    assert_eq!(dump(&storage), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fencing_holds_on_redb() {
    let dir = tempfile::tempdir().unwrap();
    let storage =
        Arc::new(weft_runtime::storage::RedbStorage::create(dir.path().join("weft.redb")).unwrap());
    let first = engine_for::<waiter>(Arc::clone(&storage)).await;
    let waiting = first.start::<waiter>(1).await.unwrap();
    wait_status(&first, waiting.id(), WorkflowStatus::Waiting).await;
    let second = engine_for::<waiter>(Arc::clone(&storage)).await;
    let before = dump(&*storage);
    let err = first
        .signal(waiting.id(), Approval { by: "old".into() })
        .await
        .unwrap_err();
    assert_eq!(
        err,
        EngineError::Fenced {
            epoch: first.epoch()
        }
    );
    assert_eq!(dump(&*storage), before);
    second
        .signal(waiting.id(), Approval { by: "new".into() })
        .await
        .unwrap();
    assert_eq!(
        second
            .result::<waiter>(waiting.id())
            .await
            .unwrap()
            .unwrap(),
        vec!["new"]
    );
}
