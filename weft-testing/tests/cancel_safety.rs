//! Cancel safety: a caller may drop the future of any `Engine` or `WorkflowHandle` call at any of
//! its await points (an HTTP handler is dropped when its client goes away), and what the engine
//! acknowledged still happens. Every write here takes 50 ms, so each call is caught mid-commit.
//!
//! Each test drops one call's future after its 1st poll, then (on a fresh setup) after its 2nd,
//! and so on until a poll completes it; each poll but the first comes once the future asked to
//! be woken, so every await point it reaches is one it is dropped at. After each drop, every
//! workflow must still finish, on the same engine, without a rebuild.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use weft_runtime::engine::{GroupBy, ListFilter, WorkflowStatus};
use weft_runtime::storage::MemoryStorage;
use weft_runtime::{
    ActivityError, Decision, Engine, EngineError, Query, ReviewFilter, ReviewOutcome,
    ReviewRequest, Signal, SignalWithStart, StartOptions, Update, UpdateOptions, Workflow,
    WorkflowContext, WorkflowError, activity, workflow,
};
use weft_testing::{FaultControl, FaultyStorage};

/// How long every write of the store takes.
const COMMIT: Duration = Duration::from_millis(50);
/// How long a workflow may take to finish once the call is dropped: many commits' worth.
const FINISH_WITHIN: Duration = Duration::from_secs(10);
/// More polls than any call here needs.
const MAX_POLLS: usize = 12;

#[activity]
async fn greet(name: String) -> Result<String, ActivityError> {
    Ok(format!("hello, {name}"))
}

/// Runs one activity.
#[workflow]
async fn hello(ctx: &mut WorkflowContext, name: String) -> Result<String, WorkflowError> {
    let greeting = ctx.run(greet, name).await?;
    Ok(greeting)
}

#[derive(Debug, Clone, Serialize, Deserialize, Signal)]
struct Go(u32);

/// Waits for one `Go` and returns what it carries.
#[workflow]
async fn gate(ctx: &mut WorkflowContext, _input: ()) -> Result<u32, WorkflowError> {
    let go = ctx.wait_for_signal::<Go>().await;
    Ok(go.0)
}

#[derive(Debug, Clone, Serialize, Deserialize, Update)]
#[update(response = u64, name = "cancel_safety.add")]
struct Add {
    n: u64,
}

/// Answers one `Add` with its `n`, and returns it.
#[workflow]
async fn adder(ctx: &mut WorkflowContext, _input: ()) -> Result<u64, WorkflowError> {
    let (add, reply) = ctx.wait_for_update::<Add>().await;
    ctx.respond(reply, add.n);
    Ok(add.n)
}

/// Asks for a review and says who decided it.
#[workflow]
async fn sign_off(ctx: &mut WorkflowContext, _input: ()) -> Result<String, WorkflowError> {
    let outcome = ctx
        .review(ReviewRequest {
            title: "release".to_string(),
            reviewers: vec!["ana".to_string()],
            timeout: Duration::from_secs(3600),
        })
        .await;
    Ok(match outcome {
        ReviewOutcome::Approved { by, .. } => format!("approved by {by}"),
        ReviewOutcome::Rejected { by, .. } => format!("rejected by {by}"),
        ReviewOutcome::TimedOut => "timed out".to_string(),
    })
}

/// Ids whose `fragile` run panics after its signal, until a test fixes them: a bug fixed
/// without a restart.
static BROKEN: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Waits for a `Go`, then panics while its id is in [`BROKEN`].
#[workflow]
async fn fragile(ctx: &mut WorkflowContext, id: String) -> Result<u32, WorkflowError> {
    let go = ctx.wait_for_signal::<Go>().await;
    if BROKEN.lock().unwrap().contains(&id) {
        panic!("fragile {id} is broken");
    }
    Ok(go.0)
}

/// Answers whether `gate` has state at all (it always has while it runs).
struct GateAlive;

impl Query for GateAlive {
    type Workflow = gate;
    type Output = bool;
    const NAME: &'static str = "alive";
    fn answer(_state: &<gate as Workflow>::State) -> bool {
        true
    }
}

/// An engine whose every commit takes [`COMMIT`], and the handle that sets the delay.
async fn slow_engine() -> (Engine, FaultControl) {
    let storage = FaultyStorage::new(MemoryStorage::new());
    let control = storage.control();
    let engine = Engine::builder(storage)
        .register::<hello>()
        .register::<gate>()
        .register::<adder>()
        .register::<sign_off>()
        .register::<fragile>()
        .query::<GateAlive>()
        .build()
        .await
        .unwrap();
    control.delay_writes(COMMIT);
    (engine, control)
}

/// A waker that remembers it was woken.
#[derive(Default)]
struct Flag {
    woken: AtomicBool,
    notify: Notify,
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        self.notify.notify_one();
    }
}

/// Polls `future` up to `polls` times, each poll after the first once the future asked to be
/// woken, and drops it unfinished. Its output when a poll completed it.
async fn drop_after<F: Future>(future: F, polls: usize) -> Option<F::Output> {
    let flag = Arc::new(Flag::default());
    let waker = Waker::from(Arc::clone(&flag));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    for poll in 0..polls {
        if poll > 0 {
            // A future that is never woken (it waits for something this test does not send)
            // is dropped at that await, which is what the caller of a stuck call would do.
            if !flag.woken.swap(false, Ordering::SeqCst)
                && tokio::time::timeout(FINISH_WITHIN, flag.notify.notified())
                    .await
                    .is_err()
            {
                return None;
            }
            flag.woken.store(false, Ordering::SeqCst);
        }
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return Some(output);
        }
    }
    None
}

/// Runs `trial(polls)` for 1, 2, ... polls until one completes its call; `trial` drops the call
/// after that many polls and checks that everything still finishes.
async fn at_every_poll<Fut: Future<Output = bool>>(mut trial: impl FnMut(usize) -> Fut) {
    for polls in 1..=MAX_POLLS {
        if trial(polls).await {
            return;
        }
    }
    panic!("the call did not complete within {MAX_POLLS} polls");
}

/// The result of `W` workflow `id`, which must arrive within [`FINISH_WITHIN`].
async fn finished<W: Workflow>(
    engine: &Engine,
    id: &str,
) -> Result<Result<W::Output, W::Error>, EngineError> {
    tokio::time::timeout(FINISH_WITHIN, engine.result::<W>(id))
        .await
        .unwrap_or_else(|_| panic!("workflow {id} was stranded: no result after the drop"))
}

fn with_id(id: &str) -> StartOptions {
    StartOptions {
        id: Some(id.to_string()),
        ..StartOptions::default()
    }
}

/// Returns once every write queued before it is committed: the writer answers in order, and a
/// signal for a missing workflow goes through it like any other write.
async fn barrier(engine: &Engine) {
    assert!(matches!(
        engine.signal("barrier", Go(0)).await,
        Err(EngineError::NotFound { .. })
    ));
}

/// Every workflow id the engine holds.
async fn all_ids(engine: &Engine) -> Vec<String> {
    let page = engine
        .list(&ListFilter::default(), 10_000, None)
        .await
        .unwrap();
    page.items.into_iter().map(|w| w.id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_start_still_runs_the_workflow_it_committed() {
    let (engine, _control) = slow_engine().await;
    at_every_poll(|polls| {
        let engine = engine.clone();
        async move {
            let id = format!("start_with-{polls}");
            let call = engine.start_with::<hello>("ada".into(), with_id(&id));
            let done = drop_after(call, polls).await.is_some();
            barrier(&engine).await;
            assert_eq!(
                finished::<hello>(&engine, &id).await,
                Ok(Ok("hello, ada".into()))
            );
            done
        }
    })
    .await;
    at_every_poll(|polls| {
        let engine = engine.clone();
        async move {
            let id = format!("start_pinned-{polls}");
            let call = engine.start_pinned::<hello>("bo".into(), with_id(&id));
            let done = drop_after(call, polls).await.is_some();
            barrier(&engine).await;
            assert_eq!(
                finished::<hello>(&engine, &id).await,
                Ok(Ok("hello, bo".into()))
            );
            done
        }
    })
    .await;
    at_every_poll(|polls| {
        let engine = engine.clone();
        async move {
            let keyed = StartOptions {
                idempotency_key: Some(format!("key-{polls}")),
                ..StartOptions::default()
            };
            drop_after(engine.start_with::<hello>("cy".into(), keyed), polls)
                .await
                .is_some()
        }
    })
    .await;
    at_every_poll(|polls| {
        let engine = engine.clone();
        async move {
            drop_after(engine.start::<hello>("di".into()), polls)
                .await
                .is_some()
        }
    })
    .await;
    // The generated and keyed ids: every workflow the store holds finishes.
    barrier(&engine).await;
    let ids = all_ids(&engine).await;
    assert!(ids.len() >= 8, "{ids:?}");
    for id in ids {
        assert!(
            finished::<hello>(&engine, &id).await.unwrap().is_ok(),
            "{id}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_signal_still_wakes_the_workflow() {
    let (engine, _control) = slow_engine().await;
    at_every_poll(|polls| {
        let engine = engine.clone();
        async move {
            let handle = engine
                .start_with::<gate>((), with_id(&format!("engine-{polls}")))
                .await
                .unwrap();
            let done = drop_after(engine.signal(handle.id(), Go(7)), polls)
                .await
                .is_some();
            assert_eq!(finished::<gate>(&engine, handle.id()).await, Ok(Ok(7)));
            done
        }
    })
    .await;
    at_every_poll(|polls| {
        let engine = engine.clone();
        async move {
            let handle = engine
                .start_with::<gate>((), with_id(&format!("handle-{polls}")))
                .await
                .unwrap();
            let done = drop_after(handle.signal(Go(8)), polls).await.is_some();
            assert_eq!(finished::<gate>(&engine, handle.id()).await, Ok(Ok(8)));
            done
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_signal_with_start_still_runs_or_wakes_the_workflow() {
    let (engine, _control) = slow_engine().await;
    // No workflow has the id: the call starts it.
    at_every_poll(|polls| {
        let engine = engine.clone();
        async move {
            let id = format!("new-{polls}");
            let call = engine.signal_with_start::<gate, Go>(&id, (), Go(1));
            let done = drop_after(call, polls).await;
            if let Some(done) = &done {
                assert!(done.as_ref().unwrap().started());
            }
            barrier(&engine).await;
            assert_eq!(finished::<gate>(&engine, &id).await, Ok(Ok(1)));
            done.is_some()
        }
    })
    .await;
    // A live workflow has it: the call signals it.
    at_every_poll(|polls| {
        let engine = engine.clone();
        async move {
            let id = format!("live-{polls}");
            engine.start_with::<gate>((), with_id(&id)).await.unwrap();
            let call = engine.signal_with_start::<gate, Go>(&id, (), Go(2));
            let done = drop_after(call, polls).await;
            if let Some(done) = &done {
                assert!(matches!(done, Ok(SignalWithStart::Signalled(_))));
            }
            assert_eq!(finished::<gate>(&engine, &id).await, Ok(Ok(2)));
            done.is_some()
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_cancel_still_cancels_the_workflow() {
    let (engine, _control) = slow_engine().await;
    at_every_poll(|polls| {
        let engine = engine.clone();
        async move {
            let handle = engine
                .start_with::<gate>((), with_id(&format!("engine-{polls}")))
                .await
                .unwrap();
            let done = drop_after(engine.cancel(handle.id()), polls)
                .await
                .is_some();
            assert_eq!(
                finished::<gate>(&engine, handle.id()).await,
                Err(EngineError::Cancelled {
                    id: handle.id().into()
                })
            );
            done
        }
    })
    .await;
    at_every_poll(|polls| {
        let engine = engine.clone();
        async move {
            let handle = engine
                .start_with::<gate>((), with_id(&format!("handle-{polls}")))
                .await
                .unwrap();
            let done = drop_after(handle.cancel(), polls).await.is_some();
            assert!(matches!(
                finished::<gate>(&engine, handle.id()).await,
                Err(EngineError::Cancelled { .. })
            ));
            done
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_update_is_still_delivered_and_answered() {
    let (engine, _control) = slow_engine().await;
    at_every_poll(|polls| {
        let engine = engine.clone();
        async move {
            let handle = engine
                .start_with::<adder>((), with_id(&format!("adder-{polls}")))
                .await
                .unwrap();
            let options = UpdateOptions {
                update_id: "u1".into(),
                timeout: FINISH_WITHIN,
            };
            let call = engine.update(handle.id(), Add { n: 5 }, options.clone());
            let done = drop_after(call, polls).await;
            if let Some(answer) = done.clone() {
                assert_eq!(answer, Ok(5));
            }
            assert_eq!(finished::<adder>(&engine, handle.id()).await, Ok(Ok(5)));
            // A retry with the same update id gets the answer the workflow gave.
            assert_eq!(
                engine.update(handle.id(), Add { n: 9 }, options).await,
                Ok(5)
            );
            done.is_some()
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_review_decision_still_resumes_the_workflow() {
    let (engine, _control) = slow_engine().await;
    at_every_poll(|polls| {
        let engine = engine.clone();
        async move {
            let handle = engine
                .start_with::<sign_off>((), with_id(&format!("review-{polls}")))
                .await
                .unwrap();
            let decision = Decision::Approved {
                by: "ana".into(),
                comment: "ship it".into(),
            };
            let done = drop_after(engine.decide_review(handle.id(), decision), polls)
                .await
                .is_some();
            assert_eq!(
                finished::<sign_off>(&engine, handle.id()).await,
                Ok(Ok("approved by ana".into()))
            );
            done
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_purge_deletes_all_or_nothing_and_the_engine_goes_on() {
    let (engine, _control) = slow_engine().await;
    at_every_poll(|polls| {
        let engine = engine.clone();
        async move {
            let id = format!("purged-{polls}");
            engine
                .start_with::<hello>("ed".into(), with_id(&id))
                .await
                .unwrap();
            finished::<hello>(&engine, &id).await.unwrap().unwrap();
            let done = drop_after(engine.purge(&id), polls).await;
            if let Some(done) = done.clone() {
                assert_eq!(done, Ok(()));
            }
            // Either still there and finished, or gone whole: a second purge settles it.
            match engine.describe(&id).await {
                Ok(description) => assert_eq!(description.status, WorkflowStatus::Completed),
                Err(error) => assert!(matches!(error, EngineError::NotFound { .. }), "{error}"),
            }
            match engine.purge(&id).await {
                Ok(()) | Err(EngineError::NotFound { .. }) => {}
                Err(error) => panic!("{error}"),
            }
            assert!(matches!(
                engine.describe(&id).await,
                Err(EngineError::NotFound { .. })
            ));
            // The id is free again, and a workflow started under it finishes.
            engine
                .start_with::<hello>("fa".into(), with_id(&id))
                .await
                .unwrap();
            assert_eq!(
                finished::<hello>(&engine, &id).await,
                Ok(Ok("hello, fa".into()))
            );
            done.is_some()
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_waits_and_reads_strand_nothing() {
    let (engine, _control) = slow_engine().await;
    // Waiting for a result, given up at each await.
    at_every_poll(|polls| {
        let engine = engine.clone();
        async move {
            let handle = engine
                .start_with::<gate>((), with_id(&format!("result-{polls}")))
                .await
                .unwrap();
            let waiting = engine.result::<gate>(handle.id());
            let sender = {
                let engine = engine.clone();
                let id = handle.id().to_string();
                tokio::spawn(async move { engine.signal(&id, Go(3)).await })
            };
            let done = drop_after(waiting, polls).await;
            sender.await.unwrap().unwrap();
            if let Some(done) = &done {
                assert_eq!(*done, Ok(Ok(3)));
            }
            assert_eq!(finished::<gate>(&engine, handle.id()).await, Ok(Ok(3)));
            // The handle's own wait.
            let again = drop_after(handle.result(), polls).await;
            assert!(again.is_none_or(|r| r == Ok(Ok(3))));
            done.is_some()
        }
    })
    .await;
    // Reads, given up at each poll, while a workflow waits; it still finishes when signalled.
    let handle = engine
        .start_with::<gate>((), with_id("reads"))
        .await
        .unwrap();
    let id = handle.id();
    for polls in 1..=2 {
        drop_after(engine.describe(id), polls).await;
        drop_after(handle.describe(), polls).await;
        drop_after(engine.list(&ListFilter::default(), 10, None), polls).await;
        drop_after(engine.count(&ListFilter::default(), GroupBy::Status), polls).await;
        drop_after(engine.state::<gate>(id), polls).await;
        drop_after(engine.query::<GateAlive>(id), polls).await;
        drop_after(engine.query_by_name(id, "alive"), polls).await;
        drop_after(
            engine.pending_reviews(&ReviewFilter::default(), 10, None),
            polls,
        )
        .await;
    }
    assert_eq!(engine.query::<GateAlive>(id).await, Ok(true));
    handle.signal(Go(4)).await.unwrap();
    assert_eq!(finished::<gate>(&engine, id).await, Ok(Ok(4)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_retry_still_resumes_the_parked_workflow() {
    let (engine, _control) = slow_engine().await;
    at_every_poll(|polls| {
        let engine = engine.clone();
        async move {
            let id = format!("fragile-{polls}");
            BROKEN.lock().unwrap().push(id.clone());
            engine
                .start_with::<fragile>(id.clone(), with_id(&id))
                .await
                .unwrap();
            engine.signal(&id, Go(6)).await.unwrap();
            assert!(matches!(
                finished::<fragile>(&engine, &id).await,
                Err(EngineError::Parked { .. })
            ));
            BROKEN.lock().unwrap().retain(|broken| *broken != id);
            let done = drop_after(engine.retry(&id), polls).await;
            if let Some(done) = &done {
                assert_eq!(*done, Ok(()));
            }
            barrier(&engine).await;
            assert_eq!(finished::<fragile>(&engine, &id).await, Ok(Ok(6)));
            done.is_some()
        }
    })
    .await;
}
