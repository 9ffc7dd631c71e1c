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

/// What `stubborn` does in one engine: counts its attempts there, and either fails every
/// attempt (input "fail") or holds its attempt open, watching for its cancellation (input
/// "hold"). The new owner's `Behaviour` lets every attempt succeed.
#[derive(Default)]
struct Behaviour {
    succeed: bool,
    attempts: AtomicUsize,
    held: AtomicUsize,
    saw_cancel: std::sync::atomic::AtomicBool,
    stopped: std::sync::atomic::AtomicBool,
}

/// Sets `stopped` when the attempt holding it is dropped (the engine stopped it).
struct StopGuard(Arc<Behaviour>);

impl Drop for StopGuard {
    fn drop(&mut self) {
        self.0.stopped.store(true, Ordering::SeqCst);
    }
}

/// An activity retried almost forever, 5 ms apart (lowercase like the `#[activity]` structs).
#[allow(non_camel_case_types)]
struct stubborn;

impl weft_runtime::Activity for stubborn {
    type Input = String;
    type Output = String;
    const NAME: &'static str = "stubborn";

    fn options(&self) -> weft_runtime::ActivityOptions {
        weft_runtime::ActivityOptions {
            retry: weft_runtime::RetryPolicy {
                max_attempts: 1_000_000,
                initial_backoff: std::time::Duration::from_millis(5),
                backoff_percent: 100,
                max_backoff: std::time::Duration::from_millis(5),
            },
            attempt_timeout: None,
        }
    }

    async fn execute(
        &self,
        ctx: weft_runtime::ActivityContext,
        mode: String,
    ) -> Result<String, weft_runtime::ActivityError> {
        let behaviour = ctx.resource::<Behaviour>().unwrap();
        behaviour.attempts.fetch_add(1, Ordering::SeqCst);
        if behaviour.succeed {
            return Ok(format!("{mode} done"));
        }
        if mode == "hold" {
            let watcher = ctx.clone();
            let seen = Arc::clone(&behaviour);
            tokio::spawn(async move {
                watcher.cancelled().await;
                seen.saw_cancel.store(true, Ordering::SeqCst);
            });
            let _guard = StopGuard(Arc::clone(&behaviour));
            behaviour.held.fetch_add(1, Ordering::SeqCst);
            std::future::pending::<()>().await;
        }
        Err(weft_runtime::ActivityError::failed("not yet"))
    }
}

#[weft_runtime::workflow]
async fn persist(
    ctx: &mut weft_runtime::WorkflowContext,
    mode: String,
) -> Result<String, weft_runtime::WorkflowError> {
    let out = ctx.run(stubborn, mode).await?;
    Ok(out)
}

async fn persist_engine(storage: &MemoryStorage, behaviour: &Arc<Behaviour>) -> Engine {
    Engine::builder(storage.clone())
        .register::<persist>()
        .resources(weft_runtime::Resources::new().with_arc(Arc::clone(behaviour)))
        .build()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposed_engine_stops_its_activities_before_their_next_attempt_and_reports_fenced() {
    let storage = MemoryStorage::new();
    let old = Arc::new(Behaviour::default());
    let first = persist_engine(&storage, &old).await;
    let failing = first.start::<persist>("fail".into()).await.unwrap();
    let held = first.start::<persist>("hold".into()).await.unwrap();
    eventually(|| old.attempts.load(Ordering::SeqCst) >= 4 && old.held.load(Ordering::SeqCst) == 1)
        .await;

    let new = Arc::new(Behaviour {
        succeed: true,
        ..Behaviour::default()
    });
    let second = persist_engine(&storage, &new).await;

    // The failing activity's next attempt finds the store taken over: the old engine stops,
    // says so, and tells the activity it holds open to stop.
    eventually(|| first.is_fenced()).await;
    eventually(|| old.saw_cancel.load(Ordering::SeqCst)).await;
    eventually(|| old.stopped.load(Ordering::SeqCst)).await;
    let attempts = old.attempts.load(Ordering::SeqCst);
    // Twenty retry periods later, the old engine has made no further attempt.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(old.attempts.load(Ordering::SeqCst), attempts);

    // The new owner runs both to the end.
    assert_eq!(
        second
            .result::<persist>(failing.id())
            .await
            .unwrap()
            .unwrap(),
        "fail done"
    );
    assert_eq!(
        second.result::<persist>(held.id()).await.unwrap().unwrap(),
        "hold done"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_answers_while_the_engine_owns_the_store_and_fails_fenced_once_deposed() {
    let storage = MemoryStorage::new();
    let first = Engine::builder(storage.clone())
        .register::<waiter>()
        .build()
        .await
        .unwrap();
    first.probe().await.unwrap();
    let before = dump(&storage);
    first.probe().await.unwrap();
    assert_eq!(dump(&storage), before, "a probe changes nothing stored");

    let second = Engine::builder(storage.clone())
        .register::<waiter>()
        .build()
        .await
        .unwrap();
    let err = first.probe().await.unwrap_err();
    assert!(matches!(err, EngineError::Fenced { .. }), "{err:?}");
    assert!(first.is_fenced());
    second.probe().await.unwrap();
}
