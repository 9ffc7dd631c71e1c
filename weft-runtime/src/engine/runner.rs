//! Drives one workflow: decide what resumes it, step, commit, execute the command, repeat.
//!
//! The step protocol: `step(state, resume)` gives the next state and command; the new state, the
//! consumed resume value (a delivered signal, a fired timer, a cancellation request are deleted)
//! and the pending command are committed in ONE batch before the command runs. The command's
//! outcome resumes the next step and is committed with the state after it. So an activity result
//! is recorded exactly once, and its side effect happens at least once.
//!
//! A runner exists only while there is work: a workflow waiting on a timer or a signal has no
//! task, only its record (and a `(deadline, id)` pair for a timer).

use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::watch;

use crate::activity::ActivityOptions;
use crate::child::ParentClosePolicy;
use crate::codec::{self, Payload};
use crate::contain;
use crate::context::{StepEffects, WorkflowContext};
use crate::storage::Batch;
use crate::workflow::{Command, Resume};

use super::attributes;
use super::clock::{deadline_ms, to_millis};
use super::composite::{self, Decided, Followup};
use super::core::{Inner, QueuedSignal, Woken};
use super::error::EngineError;
use super::events;
use super::execute::{self, Call, Origin};
use super::record::{self, Outcome, PendingCommand, RecordStatus, ResumeKind, WorkflowRecord};
use super::registry::{ErasedWorkflow, Lookup, StepFault, Stepped};
use super::review::ReviewSnapshot;
use super::timers;
use super::visibility;
use super::writer::Guarded;

/// How many times in a row a transition out of a review may be refused before the runner gives
/// up with [`EngineError::ReviewConflict`]. A refusal means a decision was accepted after the
/// runner read the review record; the decision marks the record decided, after which nothing
/// but this runner changes it, so the second attempt, prepared from the decided record, always
/// holds. One retry settles it; a second refusal is a bug, not a race to retry forever.
const REVIEW_RETRIES: u32 = 1;

/// A workflow record with the code that runs it.
pub(crate) struct Loaded {
    pub record: WorkflowRecord,
    pub workflow: Arc<dyn ErasedWorkflow>,
    /// Whether the caller committed the record's last step itself (a start) or recovered it
    /// from storage: what is known of the attempts of an activity it waits on.
    pub origin: Origin,
}

/// Wakes `id`: pokes its runner, or claims it and spawns one that reads its record.
pub(crate) fn wake(inner: &Arc<Inner>, id: &str) {
    if inner.check_live().is_err() {
        return;
    }
    // A runner driving a group waits on its activities and on this wake, for signals,
    // timers and children.
    if inner.poke_or_claim(id, |entry| {
        entry.poke = true;
        entry.wake.notify_one();
    }) {
        spawn(inner, id.to_string(), None);
    }
}

/// Delivers a cancellation request to `id` (already stored as `cancel/<id>`).
pub(crate) fn wake_cancel(inner: &Arc<Inner>, id: &str) {
    if inner.check_live().is_err() {
        return;
    }
    let claimed = inner.poke_or_claim(id, |entry| {
        entry.cancel = true;
        if let Some(tx) = &entry.cancel_tx {
            let _ = tx.send(true);
        }
        entry.wake.notify_one();
    });
    if claimed {
        spawn(inner, id.to_string(), None);
    }
}

/// Runs a workflow whose creation was just committed, from its committed record: claims it and
/// spawns its runner, or, when a wake claimed it first (its runner read the same record from
/// storage), pokes that runner.
pub(crate) fn launch(inner: &Arc<Inner>, id: String, loaded: Loaded) {
    if inner.check_live().is_err() {
        return;
    }
    if inner.poke_or_claim(&id, |entry| {
        entry.poke = true;
        entry.wake.notify_one();
    }) {
        spawn(inner, id, Some(loaded));
    }
}

/// Spawns the runner of a claimed workflow. With `loaded`, it starts from that record.
pub(crate) fn spawn(inner: &Arc<Inner>, id: String, loaded: Option<Loaded>) {
    if inner.check_live().is_err() {
        inner.release(&id);
        return;
    }
    let task = inner
        .tasks
        .spawn(run(Arc::clone(inner), id.clone(), loaded));
    inner.add_task(&id, task.abort_handle());
}

async fn run(inner: Arc<Inner>, id: String, loaded: Option<Loaded>) {
    // A panic in user code is caught where the code is called (and parks the workflow); this
    // catches one in the engine's own code, so the runner's slot is still given back and
    // whoever waits learns of it, instead of the workflow staying claimed with no runner.
    let error = match contain::Caught::new(drive(&inner, &id, loaded)).await {
        Ok(Ok(())) => return,
        Ok(Err(error)) => error,
        Err(message) => EngineError::Panicked {
            what: format!("the runner of workflow `{id}`"),
            message,
        },
    };
    // The stored record is still the last committed one; a later wake, `Engine::retry` or a
    // restart resumes from it. Whoever waits for the result learns what went wrong.
    inner.stall(&id, error);
}

enum Decision {
    Resume(Resume, Vec<Vec<u8>>, Followup),
    Idle,
    Done,
}

async fn drive(inner: &Arc<Inner>, id: &str, loaded: Option<Loaded>) -> Result<(), EngineError> {
    // Where the record came from, for the attempts of the activity it waits on.
    let (mut record, mut workflow, mut check_stored_cancel, mut origin) = match loaded {
        Some(loaded) => (loaded.record, loaded.workflow, false, loaded.origin),
        None => loop {
            match load(inner, id).await? {
                Some(loaded) => {
                    break (loaded.record, loaded.workflow, true, loaded.origin);
                }
                // Nothing to run, unless a wake came while it read (a retry that restored
                // the record after the read): then read again, or the wake is lost.
                None => {
                    if inner.release_unless_poked(id) {
                        return Ok(());
                    }
                }
            }
        },
    };
    // From the record: only this runner changes it (when it fires) until the workflow ends.
    // Taken from here when delivered, so it is delivered once.
    let mut deadline = record.lifecycle.deadline_ms;
    // Armed in memory so it fires while the workflow waits without a runner (at start and at
    // recovery it is armed already; a set entry is armed once).
    if let Some(at) = deadline
        && at > to_millis(inner.clock.now())
    {
        inner.timers.arm(at, id);
    }
    // Transitions out of a review refused in a row.
    let mut conflicts = 0;
    loop {
        // Read before `decide`, so the guard covers everything it reads.
        let review = ReviewSnapshot::read(inner, id, &record).await?;
        let decision = decide(
            inner,
            id,
            &mut record,
            check_stored_cancel,
            &mut deadline,
            review.as_ref(),
            origin,
        )
        .await?;
        check_stored_cancel = false;
        origin = Origin::Read;
        match decision {
            Decision::Resume(resume, consumed, followup) => {
                let stepped = advance(
                    inner,
                    id,
                    &record,
                    &*workflow,
                    (resume, consumed, followup),
                    review.as_ref(),
                )
                .await?;
                match stepped {
                    Some(next) => {
                        record = next;
                        conflicts = 0;
                        origin = Origin::Committed;
                    }
                    None => {
                        // A decision came first. Nothing was written or run (a step is pure,
                        // and its command runs only after its commit), so decide again from
                        // the same record: the cancellation or execution deadline this
                        // attempt delivered is still stored, so read both again.
                        conflicts += 1;
                        if conflicts > REVIEW_RETRIES {
                            return Err(EngineError::ReviewConflict { id: id.to_string() });
                        }
                        check_stored_cancel = true;
                        record.lifecycle.cancel_requested_ms = stored_cancel(inner, id).await?;
                        deadline = record.lifecycle.deadline_ms;
                    }
                }
            }
            Decision::Idle => {
                if inner.try_release(id) {
                    return Ok(());
                }
            }
            Decision::Done => {
                if inner.try_release(id) {
                    return Ok(());
                }
                // Woken meanwhile: say, `Engine::retry` restored the record this runner just
                // parked, and its wake found this runner still holding the workflow. Look at
                // the stored record again rather than drop the wake.
                match load(inner, id).await? {
                    Some(loaded) => {
                        record = loaded.record;
                        workflow = loaded.workflow;
                        check_stored_cancel = true;
                        deadline = record.lifecycle.deadline_ms;
                    }
                    None => {
                        // As above: a wake that came while it read is not dropped.
                        if inner.release_unless_poked(id) {
                            return Ok(());
                        }
                    }
                }
            }
        }
    }
}

/// Reads a record a runner can drive; `None` when it is missing, finished or parked.
async fn load(inner: &Inner, id: &str) -> Result<Option<Loaded>, EngineError> {
    let owned = id.to_string();
    let record = inner
        .read(move |storage| {
            let Some(bytes) = storage.get(&record::workflow_key(&owned))? else {
                return Ok(None);
            };
            // Unreadable, unknown or mismatched records are parked where they are: describe
            // and list report why, and nothing is written or deleted.
            let Ok(record) = record::decode_record::<WorkflowRecord>(&bytes) else {
                return Ok(None);
            };
            if record.status.is_terminal()
                || matches!(record.status, RecordStatus::Parked { .. })
                || !attributes::readable(storage, &owned)?
            {
                return Ok(None);
            }
            Ok(Some(record))
        })
        .await?;
    let Some(record) = record else {
        return Ok(None);
    };
    match inner
        .registry
        .lookup(&record.workflow_type, record.version, record.fingerprint)
    {
        Lookup::Found(workflow) => Ok(Some(Loaded {
            workflow: Arc::clone(workflow),
            record,
            origin: Origin::Read,
        })),
        Lookup::UnknownType | Lookup::FingerprintMismatch { .. } => Ok(None),
    }
}

/// The cancellation request stored in `id`'s record now (the writer may have folded one in
/// since this runner read it); `None` when there is none or the record does not decode.
async fn stored_cancel(inner: &Inner, id: &str) -> Result<Option<u64>, EngineError> {
    Ok(inner
        .read_key(record::workflow_key(id))
        .await?
        .and_then(|bytes| record::decode_record::<WorkflowRecord>(&bytes).ok())
        .and_then(|stored| stored.lifecycle.cancel_requested_ms))
}

/// Whether the execution deadline has passed; once it has, it is taken from `deadline`, so it
/// is delivered once.
pub(crate) fn deadline_passed(inner: &Inner, deadline: &mut Option<u64>) -> bool {
    match *deadline {
        Some(at) if to_millis(inner.clock.now()) >= at => {
            *deadline = None;
            true
        }
        _ => false,
    }
}

/// The resume that delivers a passed execution deadline: a cancellation that consumes the
/// deadline (named by `deadline/<id>` among the consumed keys; see [`consume`]) and is
/// committed as [`ResumeKind::TimedOut`].
pub(crate) fn timeout_resume(
    inner: &Inner,
    id: &str,
    pending: Option<&PendingCommand>,
) -> Result<(Resume, Vec<Vec<u8>>, Followup), EngineError> {
    let mut consumed = vec![record::deadline_key(id)];
    let mut followup = composite::on_cancel(id, pending, inner.clock.now(), &mut consumed)?;
    followup.timed_out = true;
    Ok((Resume::Cancelled, consumed, followup))
}

/// What resumes the workflow now, if anything. `review` is the review record as read before
/// this, when the workflow waits at a review. `origin` says where `record` came from.
async fn decide(
    inner: &Arc<Inner>,
    id: &str,
    record: &mut WorkflowRecord,
    check_stored_cancel: bool,
    deadline: &mut Option<u64>,
    review: Option<&ReviewSnapshot>,
    origin: Origin,
) -> Result<Decision, EngineError> {
    if record.status.is_terminal() || matches!(record.status, RecordStatus::Parked { .. }) {
        return Ok(Decision::Done);
    }
    // A decided review resumes with its decision before a passed execution deadline or a
    // cancellation is delivered: the approver was told the decision was taken. Both stay
    // stored and reach the workflow at its next durable await. (Within the race the decision
    // beats the timer too: its branch comes first.)
    if review.is_some_and(|review| review.decided)
        && matches!(
            inner.queued_signal(id, crate::review::REVIEW_QUEUE).await?,
            Some(QueuedSignal::Found(..))
        )
    {
        let cancel = inner
            .with_active(id, |entry| std::mem::take(&mut entry.cancel))
            .unwrap_or(false)
            || (check_stored_cancel && record.lifecycle.cancel_requested_ms.is_some());
        let decided = composite::drive_group(inner, id, record, deadline, origin).await?;
        let mut decision = composite_decision(inner, id, record, decided).await?;
        if let Decision::Resume(_, _, followup) = &mut decision {
            followup.keep_cancel |= cancel;
        }
        return Ok(decision);
    }
    // The execution deadline acts like a cancellation: it cuts a sleep short once (the deadline
    // stays stored, and reaches the next durable await as an error), else it is delivered.
    if let Some(at) = *deadline
        && to_millis(inner.clock.now()) >= at
        && let Some(PendingCommand::Timer { deadline_ms }) = &record.pending
        && !record.lifecycle.timed_out
    {
        let followup = Followup {
            timed_out: true,
            ..Followup::default()
        };
        return Ok(Decision::Resume(
            Resume::Interrupted,
            vec![record::timer_key(*deadline_ms, id)],
            followup,
        ));
    }
    // A child the parent must wait for, as with a cancellation: the deadline waits until the
    // child has ended (it stays stored, and the child's end wakes a new runner that reads it
    // again), then the parent resumes with the child's result and the timeout reaches it at
    // its next durable await.
    if let Some(at) = *deadline
        && to_millis(inner.clock.now()) >= at
        && let Some(decision) = await_wait_child(inner, record, Followup::default()).await?
    {
        return Ok(decision);
    }
    if deadline_passed(inner, deadline) {
        let (resume, consumed, followup) = timeout_resume(inner, id, record.pending.as_ref())?;
        return Ok(Decision::Resume(resume, consumed, followup));
    }
    let cancel_requested = inner
        .with_active(id, |entry| std::mem::take(&mut entry.cancel))
        .unwrap_or(false);
    if cancel_requested || (check_stored_cancel && record.lifecycle.cancel_requested_ms.is_some()) {
        // A sleep is cut short, once: the cancellation stays pending and reaches the next
        // durable await, where `ctx.run`, `ctx.child` and `ctx.compensate` can report it as an
        // error the workflow handles. (A second one ends the workflow, so a loop of sleeps
        // cannot outrun it.)
        if let Some(PendingCommand::Timer { deadline_ms }) = &record.pending
            && !record.lifecycle.cancelled
        {
            let followup = Followup {
                keep_cancel: true,
                ..Followup::default()
            };
            return Ok(Decision::Resume(
                Resume::Interrupted,
                vec![record::timer_key(*deadline_ms, id)],
                followup,
            ));
        }
        // A child the parent must wait for: the cancellation waits until the child has ended,
        // and reaches the parent at its next durable await. While it runs, the stored request
        // (in the record's lifecycle) keeps the cancellation: the child's end wakes a new runner that reads
        // it again.
        let keep = Followup {
            keep_cancel: true,
            ..Followup::default()
        };
        if let Some(decision) = await_wait_child(inner, record, keep).await? {
            return Ok(decision);
        }
        let mut consumed = vec![record::cancel_key(id)];
        let followup = composite::on_cancel(
            id,
            record.pending.as_ref(),
            inner.clock.now(),
            &mut consumed,
        )?;
        return Ok(Decision::Resume(Resume::Cancelled, consumed, followup));
    }
    match &record.pending {
        // Parked by its first step and retried: the first step runs again.
        None if record.step == 0 && record.state.is_some() => Ok(Decision::Resume(
            Resume::Start,
            Vec::new(),
            Followup::default(),
        )),
        None => Ok(Decision::Done),
        Some(PendingCommand::Timer { deadline_ms }) => {
            if to_millis(inner.clock.now()) >= *deadline_ms {
                Ok(Decision::Resume(
                    Resume::Timer,
                    vec![record::timer_key(*deadline_ms, id)],
                    Followup::default(),
                ))
            } else {
                inner.timers.arm(*deadline_ms, id);
                Ok(Decision::Idle)
            }
        }
        Some(PendingCommand::Signal { name }) => match inner.queued_signal(id, name).await? {
            Some(QueuedSignal::Found(key, payload)) => Ok(Decision::Resume(
                Resume::Signal(payload),
                vec![key],
                Followup::default(),
            )),
            // It may be the signal waited for: resuming with a later one, or waiting on, could
            // both be wrong, so the workflow parks with the record kept for an operator.
            Some(QueuedSignal::Unreadable(key, error)) => {
                let fault = StepFault {
                    code: "record.corrupt".into(),
                    message: format!(
                        "the workflow waits for signal `{name}` and the signal queued at `{}` does not decode ({error}); it is kept as stored: restore the store from a backup, or remove that record, then retry the workflow",
                        String::from_utf8_lossy(&key)
                    ),
                };
                park(inner, id, record, fault).await?;
                Ok(Decision::Done)
            }
            None => Ok(Decision::Idle),
        },
        Some(PendingCommand::Activity {
            name,
            input,
            options,
        }) => {
            // The activity ran before the workflow parked: resume with its kept result. Only
            // a record this runner did not commit itself can have one (a result is kept when a
            // step parks, which ends the runner), so the read is skipped on the hot path.
            if origin != Origin::Committed
                && let Some(kept) = kept_result(inner, id, record.step).await?
            {
                return Ok(match kept {
                    Kept::Result(result) => Decision::Resume(
                        Resume::Activity(result),
                        vec![record::activity_result_key(id)],
                        Followup::default(),
                    ),
                    Kept::Unreadable(fault) => {
                        park(inner, id, record, fault).await?;
                        Decision::Done
                    }
                });
            }
            let Some(activity) = inner.registry.activity(name) else {
                park(
                    inner,
                    id,
                    record,
                    StepFault {
                        code: "activity.not_registered".into(),
                        message: format!(
                            "activity `{name}` is not registered with this engine; register it and restart to resume"
                        ),
                    },
                )
                .await?;
                return Ok(Decision::Done);
            };
            let first_attempt =
                match execute::first_attempt(inner, id, record.step, None, origin).await? {
                    Ok(attempt) => attempt,
                    Err(fault) => {
                        park(inner, id, record, fault).await?;
                        return Ok(Decision::Done);
                    }
                };
            let (cancel_tx, cancel_rx) = watch::channel(false);
            let wake = inner
                .with_active(id, |entry| {
                    entry.cancel_tx = Some(cancel_tx.clone());
                    Arc::clone(&entry.wake)
                })
                .unwrap_or_default();
            let call = Call {
                activity: Arc::clone(activity),
                workflow_id: Arc::from(id),
                step: record.step,
                input: input.clone(),
                options: options.clone(),
                resources: inner.resources.clone(),
                clock: Arc::clone(&inner.clock),
                cancel: cancel_rx,
                payload_limit: inner.payload_limit,
                branch: None,
                engine: Arc::downgrade(inner),
                first_attempt,
            };
            // The call runs inside this runner's task (a task of its own per attempt was 5 % of
            // the engine's instructions per step). It is guarded like a task: a panic in the
            // engine's code around the user's activity ends the call, not the runner. Only when
            // the workflow stops awaiting it (cancelled, or past its deadline) does the call
            // move to a task of its own, so the activity may finish on its own meanwhile.
            let mut call = contain::Caught::new(execute::execute_counted(call));
            let outcome = loop {
                tokio::select! {
                    ended = &mut call => {
                        break match ended {
                            Ok(ended) => ended?,
                            Err(message) => execute::Executed {
                                result: Err(crate::activity::ActivityError::failed(format!(
                                    "activity task failed: {message}"
                                ))),
                                attempt_stored: true,
                            },
                        };
                    }
                    () = wake.notified() => {
                        let cancelled = inner
                            .with_active(id, |entry| std::mem::take(&mut entry.cancel))
                            .unwrap_or(false);
                        if cancelled {
                            // The activity sees the cancellation through its context and may
                            // finish on its own; its result is no longer awaited.
                            let _ = cancel_tx.send(true);
                            inner.with_active(id, |entry| entry.cancel_tx = None);
                            detach(inner, id, call);
                            return Ok(Decision::Resume(
                                Resume::Cancelled,
                                vec![record::cancel_key(id)],
                                Followup::default(),
                            ));
                        }
                        if deadline_passed(inner, deadline) {
                            let _ = cancel_tx.send(true);
                            inner.with_active(id, |entry| entry.cancel_tx = None);
                            detach(inner, id, call);
                            let (resume, consumed, followup) =
                                timeout_resume(inner, id, record.pending.as_ref())?;
                            return Ok(Decision::Resume(resume, consumed, followup));
                        }
                    }
                }
            };
            inner.with_active(id, |entry| entry.cancel_tx = None);
            // Cancelled while the activity was finishing (it may have returned because it saw
            // the cancellation): the workflow learns it was cancelled, not a plain failure.
            let cancelled = inner
                .with_active(id, |entry| std::mem::take(&mut entry.cancel))
                .unwrap_or(false);
            if cancelled {
                return Ok(Decision::Resume(
                    Resume::Cancelled,
                    vec![record::cancel_key(id)],
                    Followup::default(),
                ));
            }
            Ok(Decision::Resume(
                Resume::Activity(outcome.result),
                Vec::new(),
                Followup {
                    no_attempt_stored: !outcome.attempt_stored,
                    ..Followup::default()
                },
            ))
        }
        Some(PendingCommand::Child { child_id, .. }) => {
            let decided = composite::decide_child(inner, child_id).await?;
            composite_decision(inner, id, record, decided).await
        }
        Some(PendingCommand::Group { .. }) => {
            let decided = composite::drive_group(inner, id, record, deadline, origin).await?;
            composite_decision(inner, id, record, decided).await
        }
    }
}

/// Lets an activity call the workflow no longer awaits run to its end in a task of its own,
/// aborted with the workflow's other tasks when the engine stops.
fn detach<F>(inner: &Arc<Inner>, id: &str, call: F)
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let task = tokio::spawn(call);
    inner.add_task(id, task.abort_handle());
}

async fn composite_decision(
    inner: &Arc<Inner>,
    id: &str,
    record: &WorkflowRecord,
    decided: Decided,
) -> Result<Decision, EngineError> {
    Ok(match decided {
        Decided::Resume(resume, consumed, followup) => Decision::Resume(resume, consumed, followup),
        Decided::Idle => Decision::Idle,
        Decided::Park(fault) => {
            park(inner, id, record, fault).await?;
            Decision::Done
        }
    })
}

/// Steps the workflow with `resume` and commits the result; returns the committed record, or
/// `None` when the workflow waited at a review (`review`) whose record changed since it was
/// read: then nothing was written and nothing set in motion.
async fn advance(
    inner: &Arc<Inner>,
    id: &str,
    record: &WorkflowRecord,
    workflow: &dyn ErasedWorkflow,
    (resume, consumed, followup): (Resume, Vec<Vec<u8>>, Followup),
    review: Option<&ReviewSnapshot>,
) -> Result<Option<WorkflowRecord>, EngineError> {
    let now = inner.clock.now();
    let mut ctx = WorkflowContext::new(id, record.step, now);
    let kind = if followup.timed_out {
        ResumeKind::TimedOut
    } else {
        resume_kind(&resume)
    };
    // An activity's result exists only here until this step commits: kept, in case the step
    // parks, so a retry resumes with it instead of running the activity again.
    let activity_result = match &resume {
        Resume::Activity(result) => Some(result.clone()),
        _ => None,
    };
    let stepped = match record.state.as_deref() {
        // A panic in the step is caught inside it and comes back as a fault that parks.
        Some(state) => workflow.step(&mut ctx, state, resume),
        None => Err(StepFault {
            code: "state.missing".into(),
            message: "the record holds no state to resume".into(),
        }),
    };
    let effects = ctx.take_effects();
    let answered = effects.responses.iter().any(Result::is_ok);
    let (next, mut batch) = transition(
        inner, id, record, true, stepped, effects, kind, consumed, now,
    )
    .await?;
    if let (RecordStatus::Parked { .. }, Some(result)) = (&next.status, activity_result) {
        let kept = record::ActivityResultRecord {
            step: record.step,
            result,
        };
        batch.put(
            record::activity_result_key(id),
            record::encode_record(&kept)?,
        );
    }
    if !followup.no_attempt_stored {
        delete_attempts(id, record, &mut batch);
    }
    attributes::stage(inner, id, &next, ctx.take_attributes(), &mut batch).await?;
    batch.extend(followup.writes);
    // A final transition's signal queue is cleared by the writer (see `writer::swept`).
    let sweep = next
        .status
        .is_terminal()
        .then(|| record::signal_queue_prefix(id));
    let disarm = timers::deleted_by(&batch);
    match review {
        // Every transition from a review wait ends the review (decision, timeout, cancellation,
        // execution deadline) or replaces it: guarded on the record as read before deciding.
        Some(review) => {
            if inner.commit_guarded(review.expect(), batch, sweep).await? == Guarded::Conflict {
                return Ok(None);
            }
        }
        None => inner.commit_sweeping(batch, sweep).await?,
    }
    // A sleep cut short or a race's losing timer: its stored timer is gone, so its in-memory
    // one must not stay armed until its deadline.
    for (deadline_ms, timer_id) in disarm {
        inner.timers.disarm(deadline_ms, &timer_id);
    }
    after_commit(inner, id, &next).await?;
    if answered {
        // Update callers wait on the workflow's waiters for their answer.
        inner.notify(id, || Woken::Changed);
    }
    for child in followup.cancel_children {
        wake_cancel(inner, &child);
    }
    if followup.keep_cancel {
        inner.with_active(id, |entry| entry.cancel = true);
    }
    Ok(Some(next))
}

/// What a committed step sets in motion elsewhere: its new children start running, and a
/// finished child wakes its parent, and watchers hear of the step.
pub(crate) async fn after_commit(
    inner: &Arc<Inner>,
    id: &str,
    next: &WorkflowRecord,
) -> Result<(), EngineError> {
    set_in_motion(inner, id, next);
    Ok(())
}

/// [`after_commit`] for code running off the async workers (the writer thread running the
/// effects of a commit): it reads storage where it runs.
pub(crate) fn after_commit_blocking(
    inner: &Arc<Inner>,
    id: &str,
    next: &WorkflowRecord,
) -> Result<(), EngineError> {
    set_in_motion(inner, id, next);
    Ok(())
}

/// What [`after_commit`] does: a finished child wakes its parent, from the link in its own
/// record.
fn set_in_motion(inner: &Arc<Inner>, id: &str, next: &WorkflowRecord) {
    events::committed(inner, id, next);
    finish_notify(inner, id, next);
    if next.status.is_terminal() {
        // Nothing can wake a finished workflow to any end: its execution deadline, say.
        inner.timers.disarm_all(id);
    }
    for child in composite::children_of(next.pending.as_ref()) {
        wake(inner, &child);
    }
    if next.status.is_terminal()
        && let Some(parent) = &next.lifecycle.parent
    {
        wake(inner, parent);
    }
}

/// Parks the workflow with `fault`, keeping its state and pending command.
async fn park(
    inner: &Arc<Inner>,
    id: &str,
    record: &WorkflowRecord,
    fault: StepFault,
) -> Result<(), EngineError> {
    let (next, batch) = parked(record, true, fault, inner.clock.now(), id)?;
    inner.commit(batch).await?;
    events::committed(inner, id, &next);
    finish_notify(inner, id, &next);
    Ok(())
}

/// Tells result waiters when the workflow finished or parked.
pub(crate) fn finish_notify(inner: &Inner, id: &str, record: &WorkflowRecord) {
    if record.status.is_terminal() && record.outcome.is_some() {
        // The record as committed is what a waiter would read back: hand it over instead.
        inner.notify(id, || Woken::Finished(Arc::new(record.clone())));
    } else if record.status.is_terminal() || matches!(record.status, RecordStatus::Parked { .. }) {
        inner.notify(id, || Woken::Changed);
    }
}

fn resume_kind(resume: &Resume) -> ResumeKind {
    match resume {
        Resume::Start => ResumeKind::Start,
        Resume::Activity(_) => ResumeKind::Activity,
        Resume::Timer => ResumeKind::Timer,
        Resume::Signal(_) => ResumeKind::Signal,
        Resume::Cancelled | Resume::Interrupted => ResumeKind::Cancelled,
        Resume::Group(_) => ResumeKind::Group,
        Resume::Child(_) => ResumeKind::Child,
    }
}

/// `record` parked with `fault`: the new record and its writes. `stored` says whether `record`
/// is the stored one, or the one the workflow's first step creates.
fn parked(
    record: &WorkflowRecord,
    stored: bool,
    fault: StepFault,
    now: SystemTime,
    id: &str,
) -> Result<(WorkflowRecord, Batch), EngineError> {
    let mut next = record.clone();
    next.status = RecordStatus::Parked {
        code: fault.code,
        message: fault.message,
    };
    next.updated_ms = to_millis(now);
    let mut batch = Batch::new();
    // A workflow parked by its first step is created here, so it joins the live index here.
    batch.put(record::live_key(id), Vec::new());
    visibility::stage_park(id, stored.then_some(record), &next, &mut batch);
    batch.put(record::workflow_key(id), record::encode_record(&next)?);
    Ok((next, batch))
}

pub(crate) fn too_large(inner: &Inner, what: &str, payload: &[u8]) -> Option<StepFault> {
    (payload.len() > inner.payload_limit).then(|| StepFault {
        code: "engine.payload_too_large".into(),
        message: format!(
            "{what} is {} bytes, over the payload limit of {} bytes",
            payload.len(),
            inner.payload_limit
        ),
    })
}

/// The attempts of the activities a step resumes from are spent with it: their records go.
fn delete_attempts(id: &str, prev: &WorkflowRecord, batch: &mut Batch) {
    match &prev.pending {
        Some(PendingCommand::Activity { .. }) => {
            batch.delete(record::attempt_key(id, None));
        }
        Some(PendingCommand::Group { branches, .. }) => {
            for (index, branch) in branches.iter().enumerate() {
                if matches!(branch.pending, PendingCommand::Activity { .. }) {
                    let index = u32::try_from(index).unwrap_or(u32::MAX);
                    batch.delete(record::attempt_key(id, Some(index)));
                }
            }
        }
        _ => {}
    }
}

/// The record and batch that commit one step: the new state, the pending command, the consumed
/// resume, the step's effects (update answers, a review record) and the index entries, or a
/// park that keeps everything as it was. `stored` says whether `prev` is the stored record, or
/// the one a start creates (a retried first step, `kind` `Start` too, steps a stored one).
#[allow(clippy::too_many_arguments)] // one call per way a step is taken; a struct adds nothing
pub(crate) async fn transition(
    inner: &Inner,
    id: &str,
    prev: &WorkflowRecord,
    stored: bool,
    stepped: Result<Stepped, StepFault>,
    effects: StepEffects,
    kind: ResumeKind,
    consumed: Vec<Vec<u8>>,
    now: SystemTime,
) -> Result<(WorkflowRecord, Batch), EngineError> {
    let stepped = match stepped {
        Ok(stepped) => stepped,
        Err(fault) => return parked(prev, stored, fault, now, id),
    };
    let StepEffects { responses, review } = effects;
    let mut answers = Vec::with_capacity(responses.len());
    for response in responses {
        match response {
            Ok(answer) => answers.push(answer),
            Err(e) => return parked(prev, stored, StepFault::step(&e), now, id),
        }
    }
    let now_ms = to_millis(now);
    let mut next = prev.clone();
    // Stored counters never wrap: at their largest value the workflow parks, state kept.
    let Some(step) = prev.step.checked_add(1) else {
        return parked(prev, stored, StepFault::overflow("step counter"), now, id);
    };
    next.step = step;
    next.updated_ms = now_ms;
    next.last_resume = Some(kind);
    // A top-level signal wait consumes its signal; a group resumes with the signals its
    // branches took (the ones it took earlier were counted as they were committed).
    let taken = composite::signals_among(id, &consumed);
    let Some(signals_consumed) = next.signals_consumed.checked_add(taken) else {
        return parked(
            prev,
            stored,
            StepFault::overflow("consumed signal counter"),
            now,
            id,
        );
    };
    next.signals_consumed = signals_consumed;
    let mut batch = Batch::new();
    consume(id, &mut next, consumed, &mut batch);
    if let Some(PendingCommand::Timer { deadline_ms }) = prev.pending {
        batch.delete(record::timer_key(deadline_ms, id));
    }
    let finished = |next: &mut WorkflowRecord, status, outcome| {
        next.status = status;
        next.outcome = Some(outcome);
        next.state = None;
        next.pending = None;
    };
    let suspends = matches!(stepped, Stepped::Suspend { .. });
    match stepped {
        Stepped::Suspend { state, command } => {
            if let Some(fault) = too_large(inner, "the workflow state", &state) {
                return parked(prev, stored, fault, now, id);
            }
            let (status, pending) = match command {
                Command::Activity {
                    name,
                    input,
                    options,
                } => {
                    if let Some(fault) = too_large(inner, "the activity input", &input) {
                        return parked(prev, stored, fault, now, id);
                    }
                    (
                        RecordStatus::Running,
                        PendingCommand::Activity {
                            name: name.to_string(),
                            input,
                            options,
                        },
                    )
                }
                Command::Sleep { duration } => {
                    let deadline_ms = deadline_ms(now, duration);
                    batch.put(record::timer_key(deadline_ms, id), Vec::new());
                    (RecordStatus::Waiting, PendingCommand::Timer { deadline_ms })
                }
                Command::WaitForSignal { name } => (
                    RecordStatus::Waiting,
                    PendingCommand::Signal {
                        name: name.to_string(),
                    },
                ),
                Command::Compensate { activity, input } => {
                    if let Some(fault) = too_large(inner, "the compensation input", &input) {
                        return parked(prev, stored, fault, now, id);
                    }
                    (
                        RecordStatus::Running,
                        PendingCommand::Activity {
                            options: compensation_options(inner, &activity),
                            name: activity,
                            input,
                        },
                    )
                }
                command @ (Command::All { .. } | Command::Race { .. } | Command::Child { .. }) => {
                    match composite::plan(inner, id, next.step, command, now, &mut batch).await? {
                        Ok(pending) => (composite::status_of(&pending), pending),
                        Err(fault) => return parked(prev, stored, fault, now, id),
                    }
                }
            };
            next.status = status;
            next.state = Some(state);
            next.pending = Some(pending);
        }
        Stepped::Output(output) => {
            if let Some(fault) = too_large(inner, "the workflow output", &output) {
                return parked(prev, stored, fault, now, id);
            }
            finished(&mut next, RecordStatus::Completed, Outcome::Output(output));
        }
        Stepped::Error { payload, message } => {
            if let Some(fault) = too_large(inner, "the workflow error", &payload) {
                return parked(prev, stored, fault, now, id);
            }
            // An error after cancellation reached the workflow (caught, cleaned up, or passed
            // on with `?`) ends it as cancelled, or as timed out when the cancellation was its
            // deadline; the error is kept as its outcome.
            let status = if timed_out(prev, kind) {
                RecordStatus::TimedOut
            } else if kind == ResumeKind::Cancelled || prev.lifecycle.cancelled {
                RecordStatus::Cancelled
            } else {
                RecordStatus::Failed
            };
            finished(&mut next, status, Outcome::Error { payload, message });
        }
        Stepped::Cancelled => {
            if timed_out(prev, kind) {
                finished(&mut next, RecordStatus::TimedOut, Outcome::TimedOut)
            } else {
                finished(&mut next, RecordStatus::Cancelled, Outcome::Cancelled)
            }
        }
    }
    if !next.status.is_terminal() {
        match kind {
            ResumeKind::Cancelled => next.lifecycle.cancelled = true,
            ResumeKind::TimedOut => next.lifecycle.timed_out = true,
            _ => {}
        }
    }
    for (update_id, payload) in answers {
        if let Some(fault) = too_large(inner, "the update response", &payload) {
            return parked(prev, stored, fault, now, id);
        }
        let key = record::update_response_key(id, &update_id);
        // The first committed answer is the one callers get.
        if inner.read_key(key.clone()).await?.is_none() {
            let answer = record::UpdateResponseRecord {
                payload,
                answered_ms: now_ms,
            };
            batch.put(key, record::encode_record(&answer)?);
        }
    }
    match review {
        Some(request) if suspends => {
            let review = record::ReviewRecord {
                workflow_id: id.to_string(),
                step: next.step,
                title: request.title,
                reviewers: request.reviewers,
                created_ms: now_ms,
                deadline_ms: deadline_ms(now, request.timeout),
                decided_by: None,
            };
            if kind == ResumeKind::Group {
                // Decisions queued for the review that just ended must not answer this one.
                // The scan reads storage as it is now, so a decision could slip in after it;
                // but a runner's step out of a review is guarded on the review record as read
                // before deciding (see `advance`), and a decision writes its signal and marks
                // that record decided in one commit. So a decision accepted before this
                // transition, in writer order, either was stored before the guarded read (the
                // runner resumed with it: this step consumes it) or fails the guard (nothing of
                // this step is written; the runner decides again and resumes with it). One
                // accepted after reads the replaced record: it is a decision on this new
                // review, queued after the scan.
                purge_review_decisions(inner, id, &mut batch).await?;
            }
            batch.put(record::review_key(id), record::encode_record(&review)?);
        }
        _ if next.status.is_terminal() => {
            batch.delete(record::review_key(id));
        }
        _ if kind == ResumeKind::Group
            && inner.read_key(record::review_key(id)).await?.is_some() =>
        {
            // The review ended: decisions queued after the one taken (or after the deadline
            // won) are stale and must not answer a later review. A decision accepted after this
            // transition finds no record and is refused; one accepted before it fails the
            // guard on the record (see above).
            batch.delete(record::review_key(id));
            purge_review_decisions(inner, id, &mut batch).await?;
        }
        _ => {}
    }
    if next.status.is_terminal() {
        // A finished workflow leaves the live index, and takes no more signals or
        // cancellations: clear what is queued. (Its signal queue is cleared by the writer as it
        // commits this, so that a signal accepted up to that moment goes too: see
        // `writer::swept`. A workflow finishing at its start has no stored queue. The writer
        // also drops a cancellation request folded in after this runner read the record: see
        // `cancel_fold`.) Its parent link and trace context stay: a parent reads its result.
        batch.delete(record::live_key(id));
        let lifecycle = &mut next.lifecycle;
        lifecycle.cancel_requested_ms = None;
        lifecycle.cancelled = false;
        lifecycle.deadline_ms = None;
        lifecycle.timed_out = false;
        batch.delete(record::activity_result_key(id));
    }
    if kind == ResumeKind::Start && !next.status.is_terminal() {
        batch.put(record::live_key(id), Vec::new());
    }
    let stored_prev = stored.then_some(prev);
    visibility::stage_transition(id, stored_prev, &next, &mut batch)?;
    batch.put(record::workflow_key(id), record::encode_record(&next)?);
    Ok((next, batch))
}

/// What is kept for a parked workflow's pending activity.
enum Kept {
    /// The activity's result, to resume with instead of running it again.
    Result(Result<Payload, crate::activity::ActivityError>),
    /// The kept record does not decode: a fault to park with.
    Unreadable(StepFault),
}

/// The activity result kept for `id` when the step it resumed at `step` parked; `None` when
/// none is kept for this step.
async fn kept_result(inner: &Inner, id: &str, step: u64) -> Result<Option<Kept>, EngineError> {
    let Some(bytes) = inner.read_key(record::activity_result_key(id)).await? else {
        return Ok(None);
    };
    Ok(
        match record::decode_record::<record::ActivityResultRecord>(&bytes) {
            Ok(kept) if kept.step == step => Some(Kept::Result(kept.result)),
            // Left by an earlier step that then moved on another way (a cancellation): stale.
            Ok(_) => None,
            // The activity's result is lost to this engine; running it again could repeat its
            // side effect, so the workflow stays parked for an operator.
            Err(e) => Some(Kept::Unreadable(StepFault {
                code: e.code().into(),
                message: format!(
                    "the kept result of the pending activity (at `actres/{id}`) does not decode: {e}"
                ),
            })),
        },
    )
}

/// Deletes the review decisions queued for `id`.
async fn purge_review_decisions(
    inner: &Inner,
    id: &str,
    batch: &mut Batch,
) -> Result<(), EngineError> {
    let prefix = record::signal_queue_prefix(id);
    for (key, value) in inner.read_prefix(prefix).await? {
        if let Ok(signal) = record::decode_record::<record::SignalRecord>(&value)
            && signal.name == crate::review::REVIEW_QUEUE
        {
            batch.delete(key);
        }
    }
    Ok(())
}

/// When the workflow waits on a child under [`ParentClosePolicy::Wait`], what a cancellation or
/// timeout does meanwhile: nothing until the child has ended (`Idle`; the child's end wakes the
/// parent again), then resume with the child's result and `followup`. `None` for any other wait.
async fn await_wait_child(
    inner: &Arc<Inner>,
    record: &WorkflowRecord,
    followup: Followup,
) -> Result<Option<Decision>, EngineError> {
    let Some(PendingCommand::Child {
        child_id,
        policy: ParentClosePolicy::Wait,
    }) = &record.pending
    else {
        return Ok(None);
    };
    Ok(Some(
        match composite::child_result(inner, child_id).await? {
            None => {
                wake(inner, child_id);
                Decision::Idle
            }
            Some(result) => Decision::Resume(Resume::Child(result), Vec::new(), followup),
        },
    ))
}

/// The retry policy and timeout of a compensation: those of the activity registered under its
/// name (the `#[activity]`'s own, or an override's). A saga stores only the name and input, so
/// the options are looked up when the compensation is scheduled.
pub(crate) fn compensation_options(inner: &Inner, name: &str) -> ActivityOptions {
    inner
        .registry
        .activity(name)
        .map(|activity| activity.options())
        .unwrap_or_default()
}

/// Whether the step resumed by `kind` from `prev` ends a workflow whose execution deadline
/// fired.
fn timed_out(prev: &WorkflowRecord, kind: ResumeKind) -> bool {
    kind == ResumeKind::TimedOut || prev.lifecycle.timed_out
}

/// Applies what a step consumed to its next record and batch: the execution deadline
/// (`deadline/<id>`) and a cancellation request (`cancel/<id>`) are taken out of the record's
/// lifecycle; anything else (a signal, a fired timer's index entry) is deleted. The request's
/// key stays in the batch as a delete, never stored since format 3: it tells the writer the
/// request was delivered, so it does not fold it back in (see `cancel_fold`).
pub(crate) fn consume(
    id: &str,
    next: &mut WorkflowRecord,
    consumed: Vec<Vec<u8>>,
    batch: &mut Batch,
) {
    for key in consumed {
        if let Some(rest) = key.strip_prefix(record::DEADLINE_PREFIX)
            && rest == id.as_bytes()
        {
            next.lifecycle.deadline_ms = None;
            continue;
        }
        if let Some(rest) = key.strip_prefix(record::CANCEL_PREFIX)
            && rest == id.as_bytes()
        {
            next.lifecycle.cancel_requested_ms = None;
        }
        batch.delete(key);
    }
}

/// Decodes a stored payload for a typed caller.
pub(crate) fn decode_payload<T: serde::de::DeserializeOwned>(
    payload: &Payload,
) -> Result<T, EngineError> {
    Ok(codec::decode(payload)?)
}
