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
//!
//! The review tests hold the other side: the workflow's runner, which prepares a transition out
//! of a review from what it read. The gate holds its scan of the signal queue (where a decision
//! is queued), or its read of the review record that guards the step, until a decision has been
//! written, so the decision is checked after the runner read "no decision" and before the
//! runner's commit. An engine that commits that transition
//! unguarded times the review out over a decision it reported taken, or lets that decision
//! answer the next review.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use weft_runtime::engine::record::{self, WorkflowRecord};
use weft_runtime::engine::{VirtualClock, WorkflowHandle};
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
    /// Holds nothing of the callers. Holds the `nth` scan under `prefix` made by the engine's
    /// runner tasks (not a caller, not the writer thread), after it read, until the key has been
    /// written: the runner goes on with what it read, stale by then.
    RunnerScan { prefix: Vec<u8>, nth: usize },
    /// Holds nothing of the callers. Counts the runner tasks' reads of the workflow (scans
    /// under `prefix`, reads of the key) and, once the test arms it with
    /// [`Gate::hold_next_runner_read`], holds the next one after it read, until the key has been
    /// written.
    RunnerRead { prefix: Vec<u8> },
}

#[derive(Default)]
struct GateState {
    /// Reads of the key made by callers.
    caller_reads: usize,
    /// Scans under [`Hold::RunnerScan`]'s prefix made by runners.
    runner_scans: usize,
    /// Scans and key reads counted under [`Hold::RunnerRead`].
    runner_reads: usize,
    /// The runner read [`Hold::RunnerRead`] holds, once armed.
    hold_at: Option<usize>,
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

    /// Counts a runner's read under [`Hold::RunnerRead`] and holds it if it is the armed one.
    fn runner_read(&self, scan: bool) {
        let mut state = self.lock();
        state.runner_reads += 1;
        if scan {
            state.runner_scans += 1;
        }
        let held = state.hold_at == Some(state.runner_reads);
        let seen = state.key_writes;
        drop(state);
        self.changed.notify_all();
        if held {
            self.wait_until(|s| s.key_writes > seen);
        }
    }

    /// Arms [`Hold::RunnerRead`]: the runner's next read is held.
    fn hold_next_runner_read(&self) {
        let mut state = self.lock();
        state.hold_at = Some(state.runner_reads + 1);
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
        if key == self.key.as_slice()
            && CALLER.try_with(|_| ()).is_ok()
            && matches!(self.hold, Hold::Meet(_) | Hold::UntilWritten(_))
        {
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
                Hold::RunnerScan { .. } | Hold::RunnerRead { .. } => {}
            }
        }
        if key == self.key.as_slice() && matches!(self.hold, Hold::RunnerRead { .. }) && by_runner()
        {
            self.runner_read(false);
        }
        Ok(value)
    }

    fn scan(
        &self,
        start: std::ops::Bound<&[u8]>,
        end: std::ops::Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StorageError> {
        let entries = self.inner.scan(start, end, limit)?;
        if let Hold::RunnerScan { prefix, nth } = &self.hold
            && let std::ops::Bound::Included(from) | std::ops::Bound::Excluded(from) = start
            && from.starts_with(prefix)
            && by_runner()
        {
            let mut state = self.lock();
            state.runner_scans += 1;
            let held = state.runner_scans == *nth;
            let seen = state.key_writes;
            drop(state);
            self.changed.notify_all();
            if held {
                self.wait_until(|s| s.key_writes > seen);
            }
        }
        if let Hold::RunnerRead { prefix } = &self.hold
            && let std::ops::Bound::Included(from) | std::ops::Bound::Excluded(from) = start
            && from.starts_with(prefix)
            && by_runner()
        {
            self.runner_read(true);
        }
        Ok(entries)
    }

    fn apply_if(&self, conditions: &[Condition], batch: &Batch) -> Result<(), StorageError> {
        self.inner.apply_if(conditions, batch)?;
        let mut state = self.lock();
        if batch.writes.iter().any(|w| writes_key(w, &self.key)) {
            state.key_writes += 1;
        }
        state.batches.push(batch.clone());
        drop(state);
        self.changed.notify_all();
        Ok(())
    }
}

/// Whether this read is made by a runner task: neither a caller under test nor the writer.
fn by_runner() -> bool {
    CALLER.try_with(|_| ()).is_err() && std::thread::current().name() != Some("weft-writer")
}

fn writes_key(write: &Write, key: &[u8]) -> bool {
    let (Write::Put(k, _) | Write::Delete(k)) = write;
    k.as_slice() == key
}

/// Whether `write` stores a finished record for workflow `id`.
fn finishes(write: &Write, id: &str) -> bool {
    match write {
        Write::Put(key, value) if *key == record::workflow_key(record::Partition::ZERO, id) => {
            record::decode_record::<WorkflowRecord>(value)
                .is_ok_and(|record| record.status.is_terminal())
        }
        _ => false,
    }
}

/// Carries nothing: only its arrival counts.
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

/// A review of `title` that times out after an hour.
fn review_of(title: &str) -> ReviewRequest {
    ReviewRequest {
        title: title.to_string(),
        reviewers: vec!["ana".to_string()],
        timeout: Duration::from_secs(3600),
    }
}

/// How a review ended, in words.
fn ended(outcome: &ReviewOutcome) -> String {
    match outcome {
        ReviewOutcome::Approved { by, .. } => format!("approved by {by}"),
        ReviewOutcome::Rejected { by, .. } => format!("rejected by {by}"),
        ReviewOutcome::TimedOut => "timed out".to_string(),
    }
}

/// Asks for a review; when it times out, asks at once for a second one. Says which review
/// ended, and how.
#[workflow]
async fn escalate(ctx: &mut WorkflowContext, _input: ()) -> Result<String, WorkflowError> {
    let first = ctx.review(review_of("release")).await;
    if first != ReviewOutcome::TimedOut {
        return Ok(format!("first {}", ended(&first)));
    }
    let second = ctx.review(review_of("release, escalated")).await;
    Ok(format!("second {}", ended(&second)))
}

/// Asks for a review, then waits for a poke before it says how the review ended.
#[workflow]
async fn sign_then_wait(ctx: &mut WorkflowContext, _input: ()) -> Result<String, WorkflowError> {
    let outcome = ctx.review(review_of("release")).await;
    ctx.wait_for_signal::<Poke>().await;
    Ok(ended(&outcome))
}

async fn build(storage: &Arc<Gate>, clock: &VirtualClock) -> Engine {
    Engine::builder(Arc::clone(storage))
        .register::<nap>()
        .register::<tally>()
        .register::<sign_off>()
        .register::<escalate>()
        .register::<sign_then_wait>()
        .clock(Arc::new(clock.clone()))
        .build()
        .await
        .unwrap()
}

/// A gate on workflow `id`'s record whose held read makes `nap` finish first.
fn finish_nap_on_read(id: &str, clock: &VirtualClock) -> Arc<Gate> {
    let clock = clock.clone();
    Gate::new(
        record::workflow_key(record::Partition::ZERO, id),
        Hold::UntilWritten(Box::new(move || clock.advance(Duration::from_secs(120)))),
    )
}

/// `nap` started as `napper` on an engine whose storage, when a caller under test reads the
/// record, makes the nap finish before answering (see [`finish_nap_on_read`]).
async fn napping() -> (VirtualClock, Arc<Gate>, Engine, WorkflowHandle<nap>) {
    let clock = VirtualClock::default();
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
    (clock, storage, engine, handle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_is_never_accepted_after_the_final_transition() {
    let (clock, storage, engine, handle) = napping().await;

    let sent = CALLER.scope((), engine.signal("napper", Poke)).await;
    if storage.caller_reads() == 0 {
        // Nothing was read outside the writer, so nothing finished the nap yet.
        clock.advance(Duration::from_secs(120));
    }
    assert_eq!(handle.result().await.unwrap(), Ok(()));

    let final_batch = storage
        .first_batch(|w| finishes(w, "napper"))
        .expect("the final transition was committed");
    let prefix = record::signal_queue_prefix(record::Partition::ZERO, "napper");
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
    // Either way nothing is left queued for a finished workflow: one accepted while the runner
    // prepared the final transition is cleared by the writer with it.
    assert_eq!(
        storage
            .inner
            .scan_prefix(&prefix, None, usize::MAX)
            .unwrap(),
        Vec::new()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_workflow_as_it_finishes_leaves_no_cancel_request_behind() {
    let (clock, storage, engine, handle) = napping().await;

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
    let stored = storage
        .inner
        .get(&record::workflow_key(record::Partition::ZERO, "napper"))
        .unwrap();
    let stored: WorkflowRecord = record::decode_record(&stored.unwrap()).unwrap();
    assert_eq!(stored.lifecycle.cancel_requested_ms, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_first_calls_of_one_update_deliver_it_once_and_get_one_answer() {
    let clock = VirtualClock::default();
    let storage = Gate::new(
        record::update_queued_key(record::Partition::ZERO, "till", "u1"),
        Hold::Meet(2),
    );
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
    let clock = VirtualClock::default();
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
            .pending_reviews(&ReviewFilter::default(), 100, None)
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

/// A gate on workflow `id`'s review record that holds the runner's `nth` scan of the
/// workflow's signal queue until a decision has marked the record.
fn hold_runner_scan(id: &str, nth: usize) -> Arc<Gate> {
    Gate::new(
        record::review_key(id),
        Hold::RunnerScan {
            prefix: record::signal_queue_prefix(record::Partition::ZERO, id),
            nth,
        },
    )
}

/// Starts workflow `W` as `id` at its first review and fires that review's timer.
///
/// The runner's first scan of the signal queue is its pass after the start, which finds no
/// decision with the clock before the deadline (it reads the time before it scans). Only after
/// that scan does the clock move, so every later pass finds the timer due.
async fn start_and_time_out<W: weft_runtime::Workflow<Input = ()>>(
    engine: &Engine,
    storage: &Gate,
    clock: &VirtualClock,
    id: &str,
) -> weft_runtime::WorkflowHandle<W> {
    let handle = engine
        .start_with::<W>(
            (),
            weft_runtime::StartOptions {
                id: Some(id.to_string()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    storage.wait_until(|s| s.runner_scans >= 1);
    clock.advance(Duration::from_secs(7200));
    handle
}

fn approve(by: &str) -> Decision {
    Decision::Approved {
        by: by.to_string(),
        comment: String::new(),
    }
}

/// Review decisions still queued for `id` (other signals are not counted).
fn queued_decisions(storage: &Gate, id: &str) -> usize {
    storage
        .inner
        .scan_prefix(
            &record::signal_queue_prefix(record::Partition::ZERO, id),
            None,
            usize::MAX,
        )
        .unwrap()
        .into_iter()
        .filter(|(_, value)| {
            record::decode_record::<record::SignalRecord>(value)
                .is_ok_and(|signal| signal.name == weft_runtime::review::REVIEW_QUEUE)
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_checked_while_the_runner_times_the_review_out_is_the_one_the_workflow_gets() {
    let clock = VirtualClock::default();
    // Scan 2 is the timeout pass reading "no decision".
    let storage = hold_runner_scan("gate", 2);
    let engine = build(&storage, &clock).await;
    let handle = start_and_time_out::<sign_off>(&engine, &storage, &clock, "gate").await;

    // The runner has read "no decision" with the timer due, and waits before stepping.
    storage.wait_until(|s| s.runner_scans >= 2);
    let decided = engine.decide_review("gate", approve("ana")).await;

    // The approver was told the decision was taken: the workflow must resume with it.
    assert_eq!(decided, Ok(()));
    assert_eq!(
        handle.result().await.unwrap(),
        Ok("approved by ana".to_string())
    );
    assert!(
        engine
            .pending_reviews(&ReviewFilter::default(), 100, None)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert_eq!(queued_decisions(&storage, "gate"), 0);
    assert_eq!(
        storage.inner.get(&record::review_key("gate")).unwrap(),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_racing_a_timeout_never_answers_the_review_opened_after_it() {
    let clock = VirtualClock::default();
    // Scan 2 is the timeout pass reading "no decision"; scan 3 is its step purging the
    // decisions of the first review before it opens the second.
    let storage = hold_runner_scan("esc", 3);
    let engine = build(&storage, &clock).await;
    let handle = start_and_time_out::<escalate>(&engine, &storage, &clock, "esc").await;

    // The runner has stepped past the timeout and purged, and waits before its commit.
    storage.wait_until(|s| s.runner_scans >= 3);
    let decided = engine.decide_review("esc", approve("ana")).await;

    match decided {
        // Taken on the first review, which must resume with it.
        Ok(()) => {
            assert_eq!(
                handle.result().await.unwrap(),
                Ok("first approved by ana".to_string())
            );
        }
        // Refused: it answers nothing, so the second review is still waiting and times out.
        Err(EngineError::ReviewNotPending { .. }) => {
            let pending = engine
                .pending_reviews(&ReviewFilter::default(), 100, None)
                .await
                .unwrap()
                .items;
            assert_eq!(pending.len(), 1);
            assert_eq!(pending[0].title, "release, escalated");
            assert_eq!(queued_decisions(&storage, "esc"), 0);
            clock.advance(Duration::from_secs(7200));
            assert_eq!(
                handle.result().await.unwrap(),
                Ok("second timed out".to_string())
            );
        }
        Err(other) => panic!("unexpected {other:?}"),
    }
    assert!(
        engine
            .pending_reviews(&ReviewFilter::default(), 100, None)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert_eq!(queued_decisions(&storage, "esc"), 0);
}

/// What ends the review under the decision in [`decision_against_an_interruption`].
enum Interruption {
    /// `Engine::cancel`.
    Cancel,
    /// The workflow's execution deadline, half the review's timeout.
    Deadline,
}

/// Starts `sign_then_wait` at its review, interrupts it, holds the runner's interrupted step
/// before its commit, decides the review meanwhile, and checks that the decision resumed the
/// review and the interruption reached the next await. Returns the workflow's result.
async fn decision_against_an_interruption(interruption: Interruption) -> EngineError {
    let clock = VirtualClock::default();
    // Scan 1 is the pass after the start. The next read of the runner is the interrupted
    // pass's read of the review record, which guards the transition it then commits: it is
    // held until the decision has marked that record, so the runner decides on a stale view.
    let storage = Gate::new(
        record::review_key("gate"),
        Hold::RunnerRead {
            prefix: record::signal_queue_prefix(record::Partition::ZERO, "gate"),
        },
    );
    let engine = build(&storage, &clock).await;
    let execution_timeout = match interruption {
        Interruption::Cancel => None,
        Interruption::Deadline => Some(Duration::from_secs(1800)),
    };
    let handle = engine
        .start_with::<sign_then_wait>(
            (),
            weft_runtime::StartOptions {
                id: Some("gate".to_string()),
                execution_timeout,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    storage.wait_until(|s| s.runner_scans >= 1);
    storage.hold_next_runner_read();
    match interruption {
        Interruption::Cancel => engine.cancel("gate").await.unwrap(),
        // Past the deadline, before the review's own timeout.
        Interruption::Deadline => clock.advance(Duration::from_secs(2400)),
    }

    // The runner has read the review record for the interrupted pass and waits.
    storage.wait_until(|s| s.hold_at.is_some_and(|at| s.runner_reads >= at));
    let decided = engine.decide_review("gate", approve("ana")).await;
    assert_eq!(decided, Ok(()));
    // Had the interruption been lost, this poke would complete the workflow.
    let _ = engine.signal("gate", Poke).await;
    let Err(error) = handle.result().await else {
        panic!("the interruption was lost after the decision");
    };

    // Taken before the interruption was committed, the decision resumed the review: the step
    // that consumed it committed a workflow that goes on.
    let consumed = storage
        .first_batch(|w| match w {
            Write::Delete(key) => key.starts_with(&record::signal_queue_prefix(
                record::Partition::ZERO,
                "gate",
            )),
            Write::Put(..) => false,
        })
        .expect("the decision was never consumed: the interruption dropped it");
    let resumed = storage.lock().batches[consumed]
        .writes
        .iter()
        .any(|w| match w {
            Write::Put(key, value)
                if *key == record::workflow_key(record::Partition::ZERO, "gate") =>
            {
                record::decode_record::<WorkflowRecord>(value)
                    .is_ok_and(|record| !record.status.is_terminal())
            }
            _ => false,
        });
    assert!(resumed, "the decision was dropped by the interruption");
    assert_eq!(queued_decisions(&storage, "gate"), 0);
    let stored = storage
        .inner
        .get(&record::workflow_key(record::Partition::ZERO, "gate"))
        .unwrap();
    let stored: WorkflowRecord = record::decode_record(&stored.unwrap()).unwrap();
    assert_eq!(stored.lifecycle.cancel_requested_ms, None);
    assert_eq!(stored.lifecycle.deadline_ms, None);
    error
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_checked_while_the_runner_cancels_the_review_wins_and_the_cancellation_waits() {
    assert_eq!(
        decision_against_an_interruption(Interruption::Cancel).await,
        EngineError::Cancelled {
            id: "gate".to_string()
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_checked_while_the_deadline_ends_the_review_wins_and_the_deadline_waits() {
    assert_eq!(
        decision_against_an_interruption(Interruption::Deadline).await,
        EngineError::TimedOut {
            id: "gate".to_string()
        }
    );
}
