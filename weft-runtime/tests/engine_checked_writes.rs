//! Writes that are only valid in some stored state (a signal to a live workflow, the first
//! delivery of an update, the one decision of a review, a cancellation of a live workflow) are
//! checked by the engine's writer, in the order of its writes, never by a caller that reads and
//! then commits.
//!
//! Each test forces the worst interleaving a check made outside the writer could meet: a
//! [`Gate`] holds every read of one key made by the callers under test (futures run in
//! [`CALLER`]'s scope) until the stored value is stale: until the other callers read it too, or
//! until the workflow has finished. Reads made by the engine's writer thread or its runner tasks
//! are not held. An engine that decides in its writer passes whatever the gate does; one that
//! checks in the caller accepts a signal or a cancellation after the workflow's final
//! transition, delivers an update twice, or lets two reviewers decide one review.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use weft_runtime::engine::ManualClock;
use weft_runtime::engine::record::{self, WorkflowRecord};
use weft_runtime::storage::{Batch, Condition, Entry, MemoryStorage, Storage, StorageError, Write};
use weft_runtime::{
    Decision, Engine, EngineError, ReviewFilter, ReviewOutcome, ReviewRequest, Signal, Update,
    UpdateOptions, WorkflowContext, WorkflowError, workflow,
};

tokio::task_local! {
    /// Marks the futures of the callers under test: their reads are made outside the writer.
    static CALLER: ();
}

/// What a caller's read of the gated key waits for before it returns the value it read.
enum Hold {
    /// Until this many callers have read the key: they all read before any of them writes.
    Meet(usize),
    /// Runs the closure (which makes the workflow finish), then waits until the key has been
    /// written: the caller goes on with a value that is stale by then.
    UntilWritten(Box<dyn Fn() + Send + Sync>),
}

#[derive(Default)]
struct GateState {
    /// Reads of the key made by callers.
    caller_reads: usize,
    /// Committed batches that wrote the key.
    key_writes: usize,
    /// Every committed batch, in order.
    batches: Vec<Batch>,
}

/// A [`MemoryStorage`] that holds callers' reads of `key` per [`Hold`] and logs every batch.
struct Gate {
    inner: MemoryStorage,
    key: Vec<u8>,
    hold: Hold,
    state: Mutex<GateState>,
    changed: Condvar,
}

impl Gate {
    fn new(key: Vec<u8>, hold: Hold) -> Arc<Gate> {
        Arc::new(Gate {
            inner: MemoryStorage::new(),
            key,
            hold,
            state: Mutex::new(GateState::default()),
            changed: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until `released`. The bound only turns a broken test setup into a failure instead
    /// of a hang; no outcome depends on it.
    fn wait_until(&self, released: impl Fn(&GateState) -> bool) {
        let state = self.lock();
        let (_state, waited) = self
            .changed
            .wait_timeout_while(state, Duration::from_secs(60), |s| !released(s))
            .unwrap_or_else(|p| p.into_inner());
        assert!(!waited.timed_out(), "a held read was never released");
    }

    fn caller_reads(&self) -> usize {
        self.lock().caller_reads
    }

    /// The position of the first committed batch with a write for which `is` holds.
    fn first_batch(&self, is: impl Fn(&Write) -> bool) -> Option<usize> {
        self.lock()
            .batches
            .iter()
            .position(|batch| batch.writes.iter().any(&is))
    }
}

impl Storage for Gate {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        let value = self.inner.get(key)?;
        if key == self.key.as_slice() && CALLER.try_with(|_| ()).is_ok() {
            let mut state = self.lock();
            state.caller_reads += 1;
            match &self.hold {
                Hold::Meet(callers) => {
                    drop(state);
                    self.changed.notify_all();
                    self.wait_until(|s| s.caller_reads >= *callers);
                }
                Hold::UntilWritten(finish) => {
                    let seen = state.key_writes;
                    drop(state);
                    finish();
                    self.wait_until(|s| s.key_writes > seen);
                }
            }
        }
        Ok(value)
    }

    fn scan(
        &self,
        start: std::ops::Bound<&[u8]>,
        end: std::ops::Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StorageError> {
        self.inner.scan(start, end, limit)
    }

    fn apply_if(&self, conditions: &[Condition], batch: Batch) -> Result<(), StorageError> {
        self.inner.apply_if(conditions, batch.clone())?;
        let mut state = self.lock();
        if batch.writes.iter().any(|w| writes_key(w, &self.key)) {
            state.key_writes += 1;
        }
        state.batches.push(batch);
        drop(state);
        self.changed.notify_all();
        Ok(())
    }
}

fn writes_key(write: &Write, key: &[u8]) -> bool {
    let (Write::Put(k, _) | Write::Delete(k)) = write;
    k.as_slice() == key
}

/// Whether `write` stores a finished record for workflow `id`.
fn finishes(write: &Write, id: &str) -> bool {
    match write {
        Write::Put(key, value) if *key == record::workflow_key(id) => {
            record::decode_record::<WorkflowRecord>(value)
                .is_ok_and(|record| record.status.is_terminal())
        }
        _ => false,
    }
}

/// Never waited for: only sent.
#[derive(Debug, Clone, Serialize, Deserialize, Signal)]
struct Poke;

/// Adds `n` to the total; zero ends the workflow.
#[derive(Debug, Clone, Serialize, Deserialize, Update)]
#[update(response = u64, name = "checked.add")]
struct Add {
    n: u64,
}

/// Sleeps a minute, then ends.
#[workflow]
async fn nap(ctx: &mut WorkflowContext, _input: ()) -> Result<(), WorkflowError> {
    ctx.sleep(Duration::from_secs(60)).await;
    Ok(())
}

/// Answers each update with the running total; stops at zero.
#[workflow]
async fn tally(ctx: &mut WorkflowContext, start: u64) -> Result<u64, WorkflowError> {
    let mut total = start;
    loop {
        let (add, reply) = ctx.wait_for_update::<Add>().await;
        total += add.n;
        ctx.respond(reply, total);
        if add.n == 0 {
            return Ok(total);
        }
    }
}

/// Asks for one review and says who decided it.
#[workflow]
async fn sign_off(ctx: &mut WorkflowContext, _input: ()) -> Result<String, WorkflowError> {
    let outcome = ctx
        .review(ReviewRequest {
            title: "release".to_string(),
            reviewers: vec!["ana".to_string(), "bo".to_string()],
            timeout: Duration::from_secs(3600),
        })
        .await;
    Ok(match outcome {
        ReviewOutcome::Approved { by, .. } => format!("approved by {by}"),
        ReviewOutcome::Rejected { by, .. } => format!("rejected by {by}"),
        ReviewOutcome::TimedOut => "timed out".to_string(),
    })
}

async fn build(storage: &Arc<Gate>, clock: &ManualClock) -> Engine {
    Engine::builder(Arc::clone(storage))
        .register::<nap>()
        .register::<tally>()
        .register::<sign_off>()
        .clock(Arc::new(clock.clone()))
        .build()
        .await
        .unwrap()
}

/// A gate on workflow `id`'s record whose held read makes `nap` finish first.
fn finish_nap_on_read(id: &str, clock: &ManualClock) -> Arc<Gate> {
    let clock = clock.clone();
    Gate::new(
        record::workflow_key(id),
        Hold::UntilWritten(Box::new(move || clock.advance(Duration::from_secs(120)))),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_is_never_accepted_after_the_final_transition() {
    let clock = ManualClock::default();
    let storage = finish_nap_on_read("napper", &clock);
    let engine = build(&storage, &clock).await;
    let handle = engine
        .start_with::<nap>(
            (),
            weft_runtime::StartOptions {
                id: Some("napper".to_string()),
                ..Default::default()
            },
        )
        .await
        .unwrap();

    let sent = CALLER.scope((), engine.signal("napper", Poke)).await;
    if storage.caller_reads() == 0 {
        // Nothing was read outside the writer, so nothing finished the nap yet.
        clock.advance(Duration::from_secs(120));
    }
    assert_eq!(handle.result().await.unwrap(), Ok(()));

    let final_batch = storage
        .first_batch(|w| finishes(w, "napper"))
        .expect("the final transition was committed");
    let prefix = record::signal_queue_prefix("napper");
    let signal_batch = storage.first_batch(|w| match w {
        Write::Put(key, _) => key.starts_with(&prefix),
        Write::Delete(_) => false,
    });
    match sent {
        Ok(()) => {
            let at = signal_batch.expect("an accepted signal was written");
            assert!(
                at <= final_batch,
                "the signal was accepted in batch {at}, after the final transition in batch \
                 {final_batch}: reported delivered, never readable"
            );
        }
        Err(EngineError::Finished { .. }) => assert_eq!(signal_batch, None),
        Err(other) => panic!("unexpected {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_workflow_as_it_finishes_leaves_no_cancel_request_behind() {
    let clock = ManualClock::default();
    let storage = finish_nap_on_read("napper", &clock);
    let engine = build(&storage, &clock).await;
    let handle = engine
        .start_with::<nap>(
            (),
            weft_runtime::StartOptions {
                id: Some("napper".to_string()),
                ..Default::default()
            },
        )
        .await
        .unwrap();

    CALLER
        .scope((), engine.cancel("napper"))
        .await
        .expect("cancelling a live or finished workflow succeeds");
    if storage.caller_reads() == 0 {
        clock.advance(Duration::from_secs(120));
    }
    let result = handle.result().await;
    assert!(
        matches!(result, Ok(Ok(())) | Err(EngineError::Cancelled { .. })),
        "{result:?}"
    );
    // Written before the final transition, the request is consumed by it; written after, it
    // would stay forever.
    assert_eq!(
        storage.inner.get(&record::cancel_key("napper")).unwrap(),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_first_calls_of_one_update_deliver_it_once_and_get_one_answer() {
    let clock = ManualClock::default();
    let storage = Gate::new(record::update_queued_key("till", "u1"), Hold::Meet(2));
    let engine = build(&storage, &clock).await;
    let handle = engine
        .start_with::<tally>(
            10,
            weft_runtime::StartOptions {
                id: Some("till".to_string()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let options = |update_id: &str| UpdateOptions {
        update_id: update_id.to_string(),
        timeout: Duration::from_secs(60),
    };

    // One caller on this thread, one on a worker: each holds its thread while held.
    let other = tokio::spawn(CALLER.scope((), {
        let engine = engine.clone();
        let options = options("u1");
        async move { engine.update("till", Add { n: 5 }, options).await }
    }));
    let mine = CALLER
        .scope((), engine.update("till", Add { n: 5 }, options("u1")))
        .await;
    let theirs = other.await.unwrap();
    assert_eq!(mine, Ok(15));
    assert_eq!(theirs, Ok(15));

    // Delivered twice, the total would now be 20.
    assert_eq!(
        engine.update("till", Add { n: 0 }, options("u2")).await,
        Ok(15)
    );
    assert_eq!(handle.result().await.unwrap(), Ok(15));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_concurrent_decisions_on_one_review_exactly_one_is_taken() {
    let clock = ManualClock::default();
    let storage = Gate::new(record::review_key("gate"), Hold::Meet(2));
    let engine = build(&storage, &clock).await;
    let handle = engine
        .start_with::<sign_off>(
            (),
            weft_runtime::StartOptions {
                id: Some("gate".to_string()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let approve = |by: &str| Decision::Approved {
        by: by.to_string(),
        comment: String::new(),
    };

    let other = tokio::spawn(CALLER.scope((), {
        let engine = engine.clone();
        let decision = approve("bo");
        async move { engine.decide_review("gate", decision).await }
    }));
    let ana = CALLER
        .scope((), engine.decide_review("gate", approve("ana")))
        .await;
    let bo = other.await.unwrap();

    let winner = match (&ana, &bo) {
        (Ok(()), Err(EngineError::ReviewNotPending { .. })) => "ana",
        (Err(EngineError::ReviewNotPending { .. }), Ok(())) => "bo",
        _ => panic!("expected exactly one decision taken, got ana: {ana:?}, bo: {bo:?}"),
    };
    assert_eq!(
        handle.result().await.unwrap(),
        Ok(format!("approved by {winner}"))
    );
    assert!(
        engine
            .pending_reviews(&ReviewFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
}
