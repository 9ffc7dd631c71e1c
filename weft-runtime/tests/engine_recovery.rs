//! Recovery: an engine dropped at any kind of pending command resumes on the next build, from
//! the stored record alone. Also on redb.

mod engine_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use engine_support::*;
use tokio::sync::Semaphore;
use weft_runtime::Workflow;
use weft_runtime::engine::record::{self, SignalRecord, WorkflowRecord};
use weft_runtime::engine::{Engine, EngineError, VirtualClock, WorkflowStatus};
use weft_runtime::storage::{MemoryStorage, RedbStorage, Storage};

fn builder(storage: &MemoryStorage, clock: &VirtualClock) -> weft_runtime::EngineBuilder {
    Engine::builder(storage.clone())
        .register::<flow>()
        .register::<waiter>()
        .register::<single>()
        .clock(Arc::new(clock.clone()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_activity_is_dispatched_again_with_the_same_idempotency_key() {
    let storage = MemoryStorage::new();
    let clock = VirtualClock::default();
    let log = CallLog::default();
    let never = {
        let log = log.clone();
        FnActivity::new("greet", move |ctx, _input| {
            log.record(&ctx);
            std::future::pending()
        })
    };
    let first = builder(&storage, &clock)
        .activity_override("greet", never)
        .build()
        .await
        .unwrap();
    let id = first
        .start::<single>("ivy".into())
        .await
        .unwrap()
        .id()
        .to_string();
    eventually(|| log.count() == 1).await;
    first.shutdown().await;

    let again = {
        let log = log.clone();
        FnActivity::new("greet", move |ctx, input| {
            log.record(&ctx);
            async move { Ok(enc(&format!("welcome back, {}", dec::<String>(&input)))) }
        })
    };
    let second = builder(&storage, &clock)
        .activity_override("greet", again)
        .build()
        .await
        .unwrap();
    assert_eq!(
        second.result::<single>(&id).await.unwrap().unwrap(),
        "welcome back, ivy"
    );
    let calls = log.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        calls[0].0, calls[1].0,
        "same idempotency key across the restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timer_is_rearmed_at_its_stored_deadline() {
    let storage = MemoryStorage::new();
    let clock = VirtualClock::default();
    let first = builder(&storage, &clock).build().await.unwrap();
    let id = first
        .start::<flow>("jo".into())
        .await
        .unwrap()
        .id()
        .to_string();
    wait_state(&first, &id, "AwaitSleep").await;
    let deadline = clock.now() + FLOW_SLEEP;
    first.shutdown().await;

    // Half the sleep passes while no engine runs; the rest after the restart.
    clock.advance(FLOW_SLEEP / 2);
    let second = builder(&storage, &clock).build().await.unwrap();
    assert_eq!(
        second.describe(&id).await.unwrap().state_name,
        Some("AwaitSleep")
    );
    advance_until(&clock, || clock.now() >= deadline).await;
    wait_state(&second, &id, "AwaitApproval").await;
    second
        .signal(&id, Approval { by: "kim".into() })
        .await
        .unwrap();
    assert_eq!(
        second.result::<flow>(&id).await.unwrap().unwrap(),
        "hello, jo, approved by kim"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timer_that_expired_while_no_engine_ran_fires_at_build() {
    let storage = MemoryStorage::new();
    let clock = VirtualClock::default();
    let first = builder(&storage, &clock).build().await.unwrap();
    let id = first
        .start::<flow>("lu".into())
        .await
        .unwrap()
        .id()
        .to_string();
    wait_state(&first, &id, "AwaitSleep").await;
    first.shutdown().await;
    clock.advance(FLOW_SLEEP * 2);
    let second = builder(&storage, &clock).build().await.unwrap();
    wait_state(&second, &id, "AwaitApproval").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_wait_is_parked_again_and_an_undelivered_signal_is_delivered() {
    let storage = MemoryStorage::new();
    let clock = VirtualClock::default();
    let first = builder(&storage, &clock).build().await.unwrap();
    let later = first.start::<waiter>(1).await.unwrap().id().to_string();
    let queued = first.start::<waiter>(1).await.unwrap().id().to_string();
    wait_status(&first, &later, WorkflowStatus::Waiting).await;
    wait_status(&first, &queued, WorkflowStatus::Waiting).await;
    first.shutdown().await;

    // A signal that was stored just before the crash, but not yet delivered.
    let signal = SignalRecord {
        name: "approval".into(),
        payload: enc(&Approval { by: "mo".into() }),
        sent_ms: 0,
    };
    storage
        .put(
            &record::signal_key(record::Partition::ZERO, &queued, 1, 99),
            &record::encode_record(&signal).unwrap(),
        )
        .unwrap();

    let second = builder(&storage, &clock).build().await.unwrap();
    assert_eq!(
        second.result::<waiter>(&queued).await.unwrap().unwrap(),
        vec!["mo"]
    );
    assert_eq!(
        second.describe(&later).await.unwrap().status,
        WorkflowStatus::Waiting
    );
    second
        .signal(&later, Approval { by: "ned".into() })
        .await
        .unwrap();
    assert_eq!(
        second.result::<waiter>(&later).await.unwrap().unwrap(),
        vec!["ned"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_cancellation_is_delivered_after_a_restart() {
    let storage = MemoryStorage::new();
    let clock = VirtualClock::default();
    let first = builder(&storage, &clock).build().await.unwrap();
    let id = first.start::<waiter>(1).await.unwrap().id().to_string();
    wait_status(&first, &id, WorkflowStatus::Waiting).await;
    first.shutdown().await;
    // A request stored while no engine ran: in the record's lifecycle (store format 3).
    let key = record::workflow_key(record::Partition::ZERO, &id);
    let mut stored: WorkflowRecord =
        record::decode_record(&storage.get(&key).unwrap().unwrap()).unwrap();
    stored.lifecycle.cancel_requested_ms = Some(0);
    storage
        .put(&key, &record::encode_record(&stored).unwrap())
        .unwrap();
    let second = builder(&storage, &clock).build().await.unwrap();
    assert!(matches!(
        second.result::<waiter>(&id).await,
        Err(EngineError::Cancelled { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_can_be_turned_off() {
    let storage = MemoryStorage::new();
    let clock = VirtualClock::default();
    let calls = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Semaphore::new(0));
    let gated = {
        let (calls, gate) = (calls.clone(), gate.clone());
        move || {
            let (calls, gate) = (calls.clone(), gate.clone());
            FnActivity::new("greet", move |_ctx, _input| {
                calls.fetch_add(1, Ordering::SeqCst);
                let gate = gate.clone();
                async move {
                    let _permit = gate.acquire().await.unwrap();
                    Ok(enc(&"x".to_string()))
                }
            })
        }
    };
    let first = builder(&storage, &clock)
        .activity_override("greet", gated())
        .build()
        .await
        .unwrap();
    let id = first
        .start::<single>("q".into())
        .await
        .unwrap()
        .id()
        .to_string();
    eventually(|| calls.load(Ordering::SeqCst) == 1).await;
    first.shutdown().await;
    let second = builder(&storage, &clock)
        .activity_override("greet", gated())
        .recover(false)
        .build()
        .await
        .unwrap();
    // Nothing was dispatched; the record is as the first engine left it.
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(
        second.describe(&id).await.unwrap().state_name,
        Some("AwaitGreet")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_survives_restarts_at_every_step_on_redb() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(RedbStorage::create(dir.path().join("weft.redb")).unwrap());
    let clock = VirtualClock::default();
    let build = || {
        Engine::builder(Arc::clone(&storage))
            .register::<flow>()
            .clock(Arc::new(clock.clone()))
            .build()
    };
    let engine = build().await.unwrap();
    let id = engine
        .start::<flow>("ola".into())
        .await
        .unwrap()
        .id()
        .to_string();
    wait_state(&engine, &id, "AwaitSleep").await;
    engine.shutdown().await;

    let engine = build().await.unwrap();
    advance_until(&clock, || {
        storage
            .scan_prefix(record::TIMER_PREFIX, None, 1)
            .unwrap()
            .is_empty()
    })
    .await;
    wait_state(&engine, &id, "AwaitApproval").await;
    let state = engine.state::<flow>(&id).await.unwrap();
    assert_eq!(flow::state_name(&state), "AwaitApproval");
    engine.shutdown().await;

    let engine = build().await.unwrap();
    engine
        .signal(&id, Approval { by: "pia".into() })
        .await
        .unwrap();
    assert_eq!(
        engine.result::<flow>(&id).await.unwrap().unwrap(),
        "hello, ola, approved by pia"
    );
    assert_eq!(engine.epoch(), 3);
}
