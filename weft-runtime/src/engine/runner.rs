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

use tokio::sync::watch;

use crate::activity::ActivityOptions;
use crate::codec::{self, Payload};
use crate::contain;
use crate::context::WorkflowContext;
use crate::workflow::Resume;

use super::attributes;
use super::clock::to_millis;
use super::composite::{self, Decided};
use super::core::{Inner, QueuedSignal, Woken};
use super::effects;
use super::error::EngineError;
use super::execute::{self, Call, Origin};
use super::plan::{self, Followup};
use super::record::{self, PendingCommand, RecordStatus, ResumeKind, WorkflowRecord};
use super::registry::{ErasedWorkflow, Lookup, StepFault, Stepped};
use super::review::ReviewSnapshot;
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
        entry.signals.wake.notify_one();
    }) {
        spawn(inner, id.to_string(), None);
    }
}

/// Delivers a cancellation request to `id` (already stored as `cancel/<id>`).
pub(crate) fn wake_cancel(inner: &Arc<Inner>, id: &str) {
    if inner.check_live().is_err() {
        return;
    }
    let claimed = inner.poke_or_claim(id, |entry| entry.signals.request_cancel());
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
        entry.signals.wake.notify_one();
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
        Ok(Ok(())) => {
            // The runner has let go. A result waiter that waited on it without reading the
            // store (`Inner::driven`) reads it now: say, a record damaged behind the runner's
            // back, or a finish it was told of before it began to wait.
            inner.notify(&id, || Woken::Changed);
            return;
        }
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
    // So a result waiter of the same type can wait on this runner rather than read the store.
    inner.runner_signals(id).set_workflow_type(workflow.name());
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
                    &mut record,
                    &*workflow,
                    (resume, consumed, followup),
                    review.as_ref(),
                )
                .await?;
                match stepped {
                    Advanced::Committed => {
                        conflicts = 0;
                        origin = Origin::Committed;
                    }
                    Advanced::Conflict => {
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
    let (p, owned) = (inner.partition(id), id.to_string());
    let record = inner
        .read(move |storage| {
            let Some(bytes) = storage.get(&record::workflow_key(p, &owned))? else {
                return Ok(None);
            };
            // Unreadable, unknown or mismatched records are parked where they are: describe
            // and list report why, and nothing is written or deleted.
            let Ok(record) = record::decode_record::<WorkflowRecord>(&bytes) else {
                return Ok(None);
            };
            if record.status.is_terminal()
                || matches!(record.status, RecordStatus::Parked { .. })
                || !attributes::readable(storage, (p, &owned))?
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
        .read_key(record::workflow_key(inner.partition(id), id))
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

/// The resume that delivers a passed execution deadline (see [`plan::timeout_resume`]).
pub(crate) fn timeout_resume(
    inner: &Inner,
    id: &str,
    pending: Option<&PendingCommand>,
) -> Result<(Resume, Vec<Vec<u8>>, Followup), EngineError> {
    plan::timeout_resume(inner.partition(id), id, pending, inner.clock.now())
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
    // One lookup in the active map for the whole step.
    let signals = inner.runner_signals(id);
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
        let cancel = signals.take_cancel()
            || (check_stored_cancel && record.lifecycle.cancel_requested_ms.is_some());
        let decided = composite::drive_group(inner, id, record, deadline, origin).await?;
        let mut decision = composite_decision(inner, id, record, decided).await?;
        if let Decision::Resume(_, _, followup) = &mut decision {
            followup.keep_cancel |= cancel;
        }
        return Ok(decision);
    }
    if let Some(interruption) =
        plan::on_deadline(inner.partition(id), id, record, inner.clock.now(), deadline)?
    {
        return interrupted(inner, record, interruption).await;
    }
    let cancel_requested = signals.take_cancel();
    if cancel_requested || (check_stored_cancel && record.lifecycle.cancel_requested_ms.is_some()) {
        let interruption =
            plan::on_cancel_request(inner.partition(id), id, record, inner.clock.now())?;
        return interrupted(inner, record, interruption).await;
    }
    match &record.pending {
        // Parked by its first step and retried: the first step runs again.
        None if record.step == 0 && record.state.is_some() => Ok(Decision::Resume(
            Resume::Start,
            Vec::new(),
            Followup::default(),
        )),
        None => Ok(Decision::Done),
        Some(
            pending @ (PendingCommand::Timer { .. }
            | PendingCommand::Signal { .. }
            | PendingCommand::Child { .. }),
        ) => {
            // The readiness rule a group's branches follow too (see `plan::ready`).
            let observed = composite::observe(inner, id, pending, &[]).await?;
            let now_ms = to_millis(inner.clock.now());
            match plan::ready(inner.partition(id), id, pending, false, now_ms, observed) {
                Ok(Some(ready)) => Ok(Decision::Resume(
                    ready.resume,
                    ready.consumes.into_iter().collect(),
                    Followup::default(),
                )),
                Ok(None) => {
                    if let PendingCommand::Timer { deadline_ms } = pending {
                        inner.timers.arm(*deadline_ms, id);
                    }
                    Ok(Decision::Idle)
                }
                Err(fault) => {
                    park(inner, id, record, fault).await?;
                    Ok(Decision::Done)
                }
            }
        }
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
                        vec![record::activity_result_key(inner.partition(id), id)],
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
            signals.set_activity(Some(cancel_tx.clone()));
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
                    () = signals.wake.notified() => {
                        let cancelled = signals.take_cancel();
                        if cancelled {
                            // The activity sees the cancellation through its context and may
                            // finish on its own; its result is no longer awaited.
                            let _ = cancel_tx.send(true);
                            signals.set_activity(None);
                            detach(inner, id, call);
                            let (resume, consumed, followup) =
                                plan::cancel_resume(inner.partition(id), id, record.pending.as_ref(), inner.clock.now())?;
                            return Ok(Decision::Resume(resume, consumed, followup));
                        }
                        if deadline_passed(inner, deadline) {
                            let _ = cancel_tx.send(true);
                            signals.set_activity(None);
                            detach(inner, id, call);
                            let (resume, consumed, followup) =
                                timeout_resume(inner, id, record.pending.as_ref())?;
                            return Ok(Decision::Resume(resume, consumed, followup));
                        }
                    }
                }
            };
            signals.set_activity(None);
            // Cancelled while the activity was finishing (it may have returned because it saw
            // the cancellation): the workflow learns it was cancelled, not a plain failure.
            let cancelled = signals.take_cancel();
            if cancelled {
                let (resume, consumed, followup) = plan::cancel_resume(
                    inner.partition(id),
                    id,
                    record.pending.as_ref(),
                    inner.clock.now(),
                )?;
                return Ok(Decision::Resume(resume, consumed, followup));
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

/// What became of a step a runner took (see [`advance`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Advanced {
    /// It is committed: the record is the one committed.
    Committed,
    /// The workflow waited at a review whose record changed since it was read: nothing was
    /// written and nothing set in motion, and the record is as it was, to decide again from.
    Conflict,
}

/// Steps the workflow with `resume` and commits the result. The step rewrites `record` in
/// place (it is not cloned), except at a review, whose guarded commit may be refused: the
/// record as it was is kept aside then, and put back on a refusal.
async fn advance(
    inner: &Arc<Inner>,
    id: &str,
    record: &mut WorkflowRecord,
    workflow: &dyn ErasedWorkflow,
    (resume, consumed, followup): (Resume, Vec<Vec<u8>>, Followup),
    review: Option<&ReviewSnapshot>,
) -> Result<Advanced, EngineError> {
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
    // Every transition from a review wait ends the review (decision, timeout, cancellation,
    // execution deadline) or replaces it: guarded on the record as read before deciding.
    let (kept, expect) = match review {
        Some(review) => (Some(record.clone()), review.expect()),
        None => (None, Vec::new()),
    };
    let step = plan::Step {
        id,
        partition: inner.partition(id),
        record: &mut *record,
        stored: true,
        stepped,
        effects: ctx.take_effects(),
        attributes: ctx.take_attributes(),
        kind,
        consumed,
        now,
        resumed: Some(plan::Resumed {
            followup,
            activity_result,
            expect,
        }),
    };
    let facts = if plan::needs_facts(&step) {
        facts(inner, &step).await?
    } else {
        plan::Facts::default()
    };
    let plan::Plan {
        batch,
        expect,
        sweep,
        effects,
    } = plan::step(&**inner, step, facts)?;
    match kept {
        None => inner.commit_sweeping(batch, sweep).await?,
        Some(kept) => {
            if inner.commit_guarded(expect, batch, sweep).await? == Guarded::Conflict {
                *record = kept;
                return Ok(Advanced::Conflict);
            }
        }
    }
    effects::committed(inner, id, record, effects);
    Ok(Advanced::Committed)
}

/// What storage holds that the step needs planned, read when it needs it (see [`plan::Facts`]),
/// then the step planned: the single entry to the planner for every step, a runner's, a
/// start's and a child's first.
pub(crate) async fn transition(
    inner: &Inner,
    step: plan::Step<'_>,
) -> Result<plan::Plan, EngineError> {
    let facts = if plan::needs_facts(&step) {
        facts(inner, &step).await?
    } else {
        plan::Facts::default()
    };
    plan::step(inner, step, facts)
}

/// The reads [`transition`] makes for `step`, when [`plan::needs_facts`].
async fn facts(inner: &Inner, step: &plan::Step<'_>) -> Result<plan::Facts, EngineError> {
    let mut facts = plan::Facts::default();
    let id = step.id;
    let Ok(stepped) = &step.stepped else {
        return Ok(facts);
    };
    for (update_id, _) in step.effects.responses.iter().flatten() {
        if inner
            .read_key(record::update_response_key(step.partition, id, update_id))
            .await?
            .is_some()
        {
            facts.answered.push(update_id.clone());
        }
    }
    if step.kind == ResumeKind::Group {
        let suspends = matches!(stepped, Stepped::Suspend { .. });
        if step.effects.review.is_some() && suspends {
            facts.review_decisions = review_decisions(inner, id).await?;
        } else if suspends {
            // Not finished (a finished workflow's review record goes, read or not).
            facts.review_stored = inner.read_key(record::review_key(id)).await?.is_some();
            if facts.review_stored {
                facts.review_decisions = review_decisions(inner, id).await?;
            }
        }
    }
    if !step.attributes.is_empty() {
        facts.attributes = attributes::stored(inner, id).await?;
    }
    if let Stepped::Suspend { command, .. } = stepped
        && let Some(next_step) = step.record.step.checked_add(1)
    {
        facts.children =
            composite::prepare_children(inner, id, next_step, command, step.now).await?;
    }
    Ok(facts)
}

/// The keys of the review decisions queued for `id`.
async fn review_decisions(inner: &Inner, id: &str) -> Result<Vec<Vec<u8>>, EngineError> {
    let prefix = record::signal_queue_prefix(inner.partition(id), id);
    let mut keys = Vec::new();
    for (key, value) in inner.read_prefix(prefix).await? {
        if let Ok(signal) = record::decode_record::<record::SignalRecord>(&value)
            && signal.name == crate::review::REVIEW_QUEUE
        {
            keys.push(key);
        }
    }
    Ok(keys)
}

impl plan::Env for Inner {
    fn payload_limit(&self) -> usize {
        self.payload_limit
    }

    fn compensation_options(&self, name: &str) -> ActivityOptions {
        compensation_options(self, name)
    }
}

/// Parks the workflow with `fault`, keeping its state and pending command.
async fn park(
    inner: &Arc<Inner>,
    id: &str,
    record: &WorkflowRecord,
    fault: StepFault,
) -> Result<(), EngineError> {
    // Parked on a copy: the runner reads the record again if it is woken meanwhile.
    let mut parked = record.clone();
    let plan = plan::parked(
        inner.partition(id),
        id,
        &mut parked,
        fault,
        inner.clock.now(),
    )?;
    inner.commit(plan.batch).await?;
    effects::committed(inner, id, &parked, plan.effects);
    Ok(())
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
    let Some(bytes) = inner
        .read_key(record::activity_result_key(inner.partition(id), id))
        .await?
    else {
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

/// The decision an interruption (see [`plan::on_deadline`], [`plan::on_cancel_request`]) comes
/// to. Waiting for a child, it reads the child's end: while the child runs, nothing (`Idle`; the
/// child is woken so it is driven, and its end wakes the parent again).
async fn interrupted(
    inner: &Arc<Inner>,
    record: &WorkflowRecord,
    interruption: plan::Interruption,
) -> Result<Decision, EngineError> {
    Ok(match interruption {
        plan::Interruption::Resume(resume, consumed, followup) => {
            Decision::Resume(resume, consumed, followup)
        }
        plan::Interruption::AwaitChild(followup) => {
            let Some(PendingCommand::Child { child_id, .. }) = &record.pending else {
                return Ok(Decision::Idle);
            };
            match composite::child_result(inner, child_id).await? {
                None => {
                    wake(inner, child_id);
                    Decision::Idle
                }
                Some(result) => Decision::Resume(Resume::Child(result), Vec::new(), followup),
            }
        }
    })
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

/// Decodes a stored payload for a typed caller.
pub(crate) fn decode_payload<T: serde::de::DeserializeOwned>(
    payload: &Payload,
) -> Result<T, EngineError> {
    Ok(codec::decode(payload)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resume_is_committed_as_its_kind_and_an_interrupted_sleep_as_a_cancellation() {
        let cases = [
            (Resume::Start, ResumeKind::Start),
            (Resume::Activity(Ok(vec![])), ResumeKind::Activity),
            (Resume::Timer, ResumeKind::Timer),
            (Resume::Signal(vec![]), ResumeKind::Signal),
            (Resume::Cancelled, ResumeKind::Cancelled),
            // A sleep cut short counts as a cancellation: the workflow is marked cancelled,
            // so a second one ends it.
            (Resume::Interrupted, ResumeKind::Cancelled),
            (Resume::Group(vec![]), ResumeKind::Group),
            (Resume::Child(Ok(vec![])), ResumeKind::Child),
        ];
        for (resume, kind) in cases {
            assert_eq!(resume_kind(&resume), kind, "{resume:?}");
        }
    }
}
