//! Groups (`ctx.all`, `ctx.race`) and child workflows: planning their pending commands when a
//! step suspends on one, and driving them until they resume the workflow.
//!
//! A group's branches run concurrently. Each branch's value is committed in the workflow's
//! record as soon as the branch finishes, so after a crash only unfinished branches run again.
//! A child is its own workflow, created in the same commit as the parent's step, with a
//! parent link in its record's lifecycle that makes its end wake the parent.

use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::activity::ActivityError;
use crate::child::{ChildError, ParentClosePolicy};
use crate::codec::Payload;
use crate::context::WorkflowContext;
use crate::group::{self, GroupShape};
use crate::storage::Batch;
use crate::workflow::{Command, Resume};

use super::attributes;
use super::clock::{deadline_ms, to_millis};
use super::core::{Inner, QueuedSignal};
use super::error::EngineError;
use super::execute::{self, Call, Origin};
use super::record::{
    self, Branch, Outcome, PendingCommand, RecordStatus, ResumeKind, WorkflowRecord,
};
use super::registry::StepFault;
use super::runner;
use super::visibility;

/// What a resumed group or child leaves to do after the resume is committed.
#[derive(Default)]
pub(crate) struct Followup {
    /// Writes committed together with the resume (cancellation requests for children).
    pub writes: Batch,
    /// Children whose cancellation was requested: woken once the commit is durable.
    pub cancel_children: Vec<String>,
    /// The cancellation being delivered is the execution deadline: the step is committed as
    /// resumed by [`ResumeKind::TimedOut`].
    pub timed_out: bool,
    /// The cancellation was not delivered as such (a sleep cut short, a child waited for):
    /// it stays pending for the workflow's next durable await.
    pub keep_cancel: bool,
    /// The activity this step resumes from ended on its first attempt, so no attempt record
    /// of it is stored and the step need not delete one.
    pub no_attempt_stored: bool,
}

/// The pending command for a group or child command; writes what must be committed with it
/// (timer index entries, child records) into `batch`.
pub(crate) async fn plan(
    inner: &Inner,
    id: &str,
    step: u64,
    command: Command,
    now: SystemTime,
    batch: &mut Batch,
) -> Result<Result<PendingCommand, StepFault>, EngineError> {
    match command {
        Command::All { branches, shape } => {
            plan_group(inner, id, step, false, shape, branches, now, batch).await
        }
        Command::Race { branches, shape } => {
            plan_group(inner, id, step, true, shape, branches, now, batch).await
        }
        Command::Child {
            workflow,
            input,
            policy,
            execution_timeout,
        } => {
            start_child(
                inner,
                id,
                &format!("{id}/{step}"),
                workflow,
                &input,
                (policy, execution_timeout),
                now,
                batch,
            )
            .await
        }
        other => Ok(Err(StepFault {
            code: "engine.unexpected_command".into(),
            message: format!("`{}` is not a group or child command", other.kind()),
        })),
    }
}

#[allow(clippy::too_many_arguments)]
async fn plan_group(
    inner: &Inner,
    id: &str,
    step: u64,
    race: bool,
    shape: GroupShape,
    commands: Vec<Command>,
    now: SystemTime,
    batch: &mut Batch,
) -> Result<Result<PendingCommand, StepFault>, EngineError> {
    let mut branches = Vec::with_capacity(commands.len());
    for (index, command) in commands.into_iter().enumerate() {
        let pending = match command {
            Command::Activity {
                name,
                input,
                options,
            } => PendingCommand::Activity {
                name: name.to_string(),
                input,
                options,
            },
            Command::Compensate { activity, input } => PendingCommand::Activity {
                options: runner::compensation_options(inner, &activity),
                name: activity,
                input,
            },
            Command::Sleep { duration } => {
                let deadline_ms = deadline_ms(now, duration);
                batch.put(record::timer_key(deadline_ms, id), Vec::new());
                PendingCommand::Timer { deadline_ms }
            }
            Command::WaitForSignal { name } => PendingCommand::Signal {
                name: name.to_string(),
            },
            Command::Child {
                workflow,
                input,
                policy,
                execution_timeout,
            } => {
                let child_id = format!("{id}/{step}.{index}");
                let options = (policy, execution_timeout);
                let started =
                    start_child(inner, id, &child_id, workflow, &input, options, now, batch);
                match started.await? {
                    Ok(pending) => pending,
                    Err(fault) => return Ok(Err(fault)),
                }
            }
            Command::All { .. } | Command::Race { .. } => {
                return Ok(Err(StepFault {
                    code: "engine.nested_group".into(),
                    message: "a group's branch cannot be another group; await the inner group in its own statement".into(),
                }));
            }
        };
        branches.push(Branch {
            pending,
            value: None,
        });
    }
    if branches.is_empty() && race {
        return Ok(Err(StepFault {
            code: "engine.empty_race".into(),
            message: "`ctx.race` over no operations can never finish; give it at least one".into(),
        }));
    }
    Ok(Ok(PendingCommand::Group {
        race,
        shape,
        branches,
    }))
}

/// Creates child `child_id` in `batch`: its record after its first step (with its parent link),
/// and its entry in the parent's children index.
#[allow(clippy::too_many_arguments)]
fn start_child<'a>(
    inner: &'a Inner,
    parent: &'a str,
    child_id: &'a str,
    workflow_name: &'a str,
    input: &'a [u8],
    (policy, execution_timeout): (ParentClosePolicy, Option<std::time::Duration>),
    now: SystemTime,
    batch: &'a mut Batch,
) -> StartChild<'a> {
    // A child's first step may start children of its own: the recursion is boxed.
    Box::pin(async move {
        let pending = PendingCommand::Child {
            child_id: child_id.to_string(),
            policy,
        };
        if inner
            .read_key(record::workflow_key(child_id))
            .await?
            .is_some()
        {
            return Ok(Ok(pending));
        }
        let Some(workflow) = inner.registry.latest(workflow_name) else {
            return Ok(Err(StepFault {
                code: "child.not_registered".into(),
                message: format!(
                    "child workflow `{workflow_name}` is not registered with this engine; register it and restart to resume"
                ),
            }));
        };
        if let Some(fault) = runner::too_large(inner, "the child workflow input", input) {
            return Ok(Err(fault));
        }
        let state = match workflow.start(input) {
            Ok(state) => state,
            Err(fault) => return Ok(Err(fault)),
        };
        let created = WorkflowRecord {
            workflow_type: workflow.name().to_string(),
            version: workflow.version(),
            fingerprint: workflow.fingerprint(),
            status: RecordStatus::Running,
            step: 0,
            state: Some(state.clone()),
            pending: None,
            created_ms: to_millis(now),
            updated_ms: to_millis(now),
            outcome: None,
            idempotency_key: None,
            last_resume: None,
            signals_consumed: 0,
            // The link wakes the parent when the child ends; the child's runner arms its
            // deadline when it starts (after this commit). A first step that finishes the
            // child clears the deadline.
            lifecycle: record::Lifecycle {
                deadline_ms: execution_timeout.map(|timeout| deadline_ms(now, timeout)),
                parent: Some(parent.to_string()),
                ..record::Lifecycle::default()
            },
        };
        let mut ctx = WorkflowContext::new(child_id, 0, now);
        let stepped = workflow.step(&mut ctx, &state, Resume::Start);
        let (child, mut child_batch) = runner::transition(
            inner,
            child_id,
            &created,
            false,
            stepped,
            ctx.take_effects(),
            ResumeKind::Start,
            Vec::new(),
            now,
        )
        .await?;
        attributes::stage(
            inner,
            child_id,
            &child,
            ctx.take_attributes(),
            &mut child_batch,
        )
        .await?;
        batch.extend(child_batch);
        batch.put(record::child_key(parent, child_id), Vec::new());
        Ok(Ok(pending))
    })
}

/// What [`start_child`] returns: boxed, as a child's first step may start children of its own.
type StartChild<'a> = std::pin::Pin<
    Box<
        dyn std::future::Future<Output = Result<Result<PendingCommand, StepFault>, EngineError>>
            + Send
            + 'a,
    >,
>;

/// The status of a workflow suspended on a group or a child: `Running` while a branch's
/// activity runs (the workflow holds a task), `Waiting` when it only waits for signals, timers
/// or children, like a top-level signal wait or sleep.
pub(crate) fn status_of(pending: &PendingCommand) -> RecordStatus {
    let runs_activity = match pending {
        PendingCommand::Activity { .. } => true,
        PendingCommand::Group { branches, .. } => branches
            .iter()
            .any(|b| b.value.is_none() && matches!(b.pending, PendingCommand::Activity { .. })),
        _ => false,
    };
    if runs_activity {
        RecordStatus::Running
    } else {
        RecordStatus::Waiting
    }
}

/// How many of `consumed` (keys a step deletes) are signals of workflow `id`'s queue: what
/// [`WorkflowRecord::signals_consumed`] grows by.
pub(crate) fn signals_among(id: &str, consumed: &[Vec<u8>]) -> u64 {
    let prefix = record::signal_queue_prefix(id);
    consumed
        .iter()
        .filter(|key| key.starts_with(&prefix))
        .count() as u64
}

/// Child ids a pending command waits on, to drive them after a commit.
pub(crate) fn children_of(pending: Option<&PendingCommand>) -> Vec<String> {
    match pending {
        Some(PendingCommand::Child { child_id, .. }) => vec![child_id.clone()],
        Some(PendingCommand::Group { branches, .. }) => branches
            .iter()
            .filter(|b| b.value.is_none())
            .filter_map(|b| match &b.pending {
                PendingCommand::Child { child_id, .. } => Some(child_id.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// A child's end as the value its parent resumes with, or `None` while it runs.
pub(crate) async fn child_result(
    inner: &Inner,
    child_id: &str,
) -> Result<Option<Result<Payload, ChildError>>, EngineError> {
    let Some(bytes) = inner.load_raw(child_id).await? else {
        return Ok(Some(Err(ChildError::Failed {
            message: format!("child workflow `{child_id}` has no record"),
        })));
    };
    let Ok(child) = record::decode_record::<WorkflowRecord>(&bytes) else {
        // An unreadable child is parked; the parent waits until an operator repairs it.
        return Ok(None);
    };
    Ok(match (&child.status, child.outcome) {
        (RecordStatus::Completed, Some(Outcome::Output(bytes))) => Some(Ok(bytes)),
        (RecordStatus::Failed, Some(Outcome::Error { message, .. })) => {
            Some(Err(ChildError::Failed { message }))
        }
        (RecordStatus::Cancelled, _) => Some(Err(ChildError::Cancelled)),
        (RecordStatus::TimedOut, _) => Some(Err(ChildError::TimedOut)),
        _ => None,
    })
}

/// Adds a cancellation request for a child to `followup`, per its policy.
fn cancel_child(
    followup: &mut Followup,
    child_id: &str,
    policy: ParentClosePolicy,
    now: SystemTime,
) -> Result<(), EngineError> {
    // Abandoned children run on; a child the parent waits for is not cancelled either.
    if policy != ParentClosePolicy::RequestCancel {
        return Ok(());
    }
    followup.writes.put(
        record::cancel_key(child_id),
        record::encode_record(&record::CancelRecord {
            requested_ms: to_millis(now),
        })?,
    );
    followup.cancel_children.push(child_id.to_string());
    Ok(())
}

/// What a waiting child decides for its parent now.
pub(crate) enum Decided {
    /// Resume with this, consuming these keys, then do the follow-up.
    Resume(Resume, Vec<Vec<u8>>, Followup),
    /// Nothing to do until a wake.
    Idle,
    /// The workflow cannot go on with this engine: park it.
    Park(StepFault),
}

fn value_error(e: crate::workflow::StepError) -> EngineError {
    match e {
        crate::workflow::StepError::Codec(c) => EngineError::Codec(c),
        other => EngineError::Codec(crate::codec::CodecError::Encode {
            type_name: "group value",
            reason: other.to_string(),
        }),
    }
}

/// What a cancellation of a workflow waiting on `pending` must also do: disarm the timers of
/// unfinished branches and cancel unfinished children per their policy.
pub(crate) fn on_cancel(
    id: &str,
    pending: Option<&PendingCommand>,
    now: SystemTime,
    consumed: &mut Vec<Vec<u8>>,
) -> Result<Followup, EngineError> {
    let mut followup = Followup::default();
    match pending {
        Some(PendingCommand::Child { child_id, policy }) => {
            cancel_child(&mut followup, child_id, *policy, now)?
        }
        Some(PendingCommand::Group { branches, .. }) => {
            for branch in branches.iter().filter(|b| b.value.is_none()) {
                match &branch.pending {
                    PendingCommand::Timer { deadline_ms } => {
                        consumed.push(record::timer_key(*deadline_ms, id))
                    }
                    PendingCommand::Child { child_id, policy } => {
                        cancel_child(&mut followup, child_id, *policy, now)?
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
    Ok(followup)
}

/// Decides for a workflow waiting on a single child.
pub(crate) async fn decide_child(
    inner: &Arc<Inner>,
    child_id: &str,
) -> Result<Decided, EngineError> {
    match child_result(inner, child_id).await? {
        Some(result) => Ok(Decided::Resume(
            Resume::Child(result),
            Vec::new(),
            Followup::default(),
        )),
        None => {
            // Make sure the child is driven (after a restart it may have no runner yet).
            runner::wake(inner, child_id);
            Ok(Decided::Idle)
        }
    }
}

struct RunningBranch {
    index: usize,
    task: JoinHandle<Result<Result<Payload, ActivityError>, EngineError>>,
    cancel: watch::Sender<bool>,
}

/// The activity branches in flight. Dropped without [`drain`](Vec::drain)ing (the runner
/// stopped on an error, say a failed commit), it tells them to stop: nobody awaits their
/// results any more, and the next runner starts the unfinished ones again.
#[derive(Default)]
struct Running(Vec<RunningBranch>);

impl std::ops::Deref for Running {
    type Target = Vec<RunningBranch>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        for branch in &self.0 {
            let _ = branch.cancel.send(true);
        }
    }
}

/// Drives a group until it resumes the workflow or nothing can happen before a wake.
/// Branch values are committed into `record` as they arrive.
pub(crate) async fn drive_group(
    inner: &Arc<Inner>,
    id: &str,
    record: &mut WorkflowRecord,
    deadline: &mut Option<u64>,
    origin: Origin,
) -> Result<Decided, EngineError> {
    let Some(PendingCommand::Group {
        race,
        shape,
        branches,
    }) = record.pending.clone()
    else {
        return Ok(Decided::Idle);
    };
    let mut branches = branches;
    let wake = inner
        .with_active(id, |entry| Arc::clone(&entry.wake))
        .unwrap_or_default();
    let mut running = Running::default();
    let stop = |running: &mut Running| {
        for branch in running.drain(..) {
            // The activity sees cancellation through its context; its result is not awaited.
            let _ = branch.cancel.send(true);
        }
    };
    loop {
        let now = inner.clock.now();
        let mut consumed: Vec<Vec<u8>> = Vec::new();
        let mut newly = false;
        let mut taken_signals: Vec<Vec<u8>> = Vec::new();
        // A race whose winner was committed (before a crash, say) resolves below without
        // starting its losers again.
        let race_won = race && branches.iter().any(|b| b.value.is_some());
        // In a race, the branches ready in this pass are candidates; one wins below, and only
        // the winner consumes what it read (a losing signal stays queued).
        let mut candidates: Vec<Candidate> = Vec::new();
        for (index, branch) in branches.iter_mut().enumerate() {
            if race_won {
                break;
            }
            if branch.value.is_some() {
                continue;
            }
            let done: Option<Ready> = match &branch.pending {
                PendingCommand::Timer { deadline_ms } => {
                    (to_millis(now) >= *deadline_ms).then(|| Ready {
                        resume: Resume::Timer,
                        consumes: Some(record::timer_key(*deadline_ms, id)),
                        signal_key: None,
                    })
                }
                PendingCommand::Signal { name } => {
                    match first_untaken_signal(inner, id, name, &taken_signals).await? {
                        // It may be the signal this branch waits for (see `Inner::queued_signal`).
                        Some(QueuedSignal::Unreadable(key, error)) => {
                            return Ok(Decided::Park(StepFault {
                                code: "record.corrupt".into(),
                                message: format!(
                                    "a branch waits for signal `{name}` and the signal queued at `{}` does not decode ({error}); it is kept as stored: restore the store from a backup, or remove that record, then retry the workflow",
                                    String::from_utf8_lossy(&key)
                                ),
                            }));
                        }
                        Some(QueuedSignal::Found(key, payload)) => {
                            taken_signals.push(key.clone());
                            Some(Ready {
                                resume: Resume::Signal(payload),
                                consumes: Some(key.clone()),
                                signal_key: Some(key),
                            })
                        }
                        None => None,
                    }
                }
                PendingCommand::Child { child_id, .. } => {
                    match child_result(inner, child_id).await? {
                        Some(result) => Some(Ready {
                            resume: Resume::Child(result),
                            consumes: None,
                            signal_key: None,
                        }),
                        None => {
                            runner::wake(inner, child_id);
                            None
                        }
                    }
                }
                PendingCommand::Activity {
                    name,
                    input,
                    options,
                } => {
                    if !running.iter().any(|r| r.index == index) {
                        let Some(activity) = inner.registry.activity(name) else {
                            stop(&mut running);
                            return Ok(Decided::Park(StepFault {
                                code: "activity.not_registered".into(),
                                message: format!(
                                    "activity `{name}` is not registered with this engine; register it and restart to resume"
                                ),
                            }));
                        };
                        let branch_index = index as u32;
                        let first_attempt = match execute::first_attempt(
                            inner,
                            id,
                            record.step,
                            Some(branch_index),
                            origin,
                        )
                        .await?
                        {
                            Ok(attempt) => attempt,
                            Err(fault) => {
                                stop(&mut running);
                                return Ok(Decided::Park(fault));
                            }
                        };
                        let (cancel, cancel_rx) = watch::channel(false);
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
                            branch: Some(branch_index),
                            engine: Arc::downgrade(inner),
                            first_attempt,
                        };
                        let task = tokio::spawn(execute::execute(call));
                        inner.add_task(id, task.abort_handle());
                        running.push(RunningBranch {
                            index,
                            task,
                            cancel,
                        });
                    }
                    None
                }
                PendingCommand::Group { .. } => None,
            };
            if let Some(ready) = done {
                if race {
                    candidates.push(Candidate { index, ready });
                } else {
                    consumed.extend(ready.consumes);
                    branch.value = Some(group::branch_value(&ready.resume).map_err(value_error)?);
                    newly = true;
                }
            }
        }
        if let Some(winner) = race_winner(candidates) {
            consumed.extend(winner.ready.consumes);
            branches[winner.index].value =
                Some(group::branch_value(&winner.ready.resume).map_err(value_error)?);
            newly = true;
        }
        // Finished?
        let winner = branches.iter().position(|b| b.value.is_some());
        let resume_value = if race {
            winner.map(|index| {
                group::race_value(
                    shape,
                    index,
                    branches[index].value.as_deref().unwrap_or_default(),
                )
            })
        } else if branches.iter().all(|b| b.value.is_some()) {
            let values: Vec<Payload> = branches
                .iter()
                .map(|b| b.value.clone().unwrap_or_default())
                .collect();
            Some(group::all_value(shape, &values))
        } else {
            None
        };
        if let Some(value) = resume_value {
            let value = value.map_err(value_error)?;
            let mut followup = Followup::default();
            // The losers of a race: activities are told to stop, timers disarmed, children
            // cancelled per their policy.
            stop(&mut running);
            for branch in branches.iter().filter(|b| b.value.is_none()) {
                match &branch.pending {
                    PendingCommand::Timer { deadline_ms } => {
                        consumed.push(record::timer_key(*deadline_ms, id))
                    }
                    PendingCommand::Child { child_id, policy } => {
                        cancel_child(&mut followup, child_id, *policy, now)?
                    }
                    _ => {}
                }
            }
            return Ok(Decided::Resume(Resume::Group(value), consumed, followup));
        }
        if newly {
            // Persist the branches that finished, with what they consumed, before going on.
            let mut next = record.clone();
            let pending = PendingCommand::Group {
                race,
                shape,
                branches: branches.clone(),
            };
            next.status = status_of(&pending);
            // A stored counter never wraps: at its largest value the workflow parks.
            let Some(signals_consumed) = next
                .signals_consumed
                .checked_add(signals_among(id, &consumed))
            else {
                stop(&mut running);
                return Ok(Decided::Park(StepFault::overflow(
                    "consumed signal counter",
                )));
            };
            next.signals_consumed = signals_consumed;
            next.pending = Some(pending);
            next.updated_ms = to_millis(now);
            let mut batch = Batch::new();
            runner::consume(id, &mut next, consumed, &mut batch);
            visibility::stage_rewrite(id, Some(record), &next, &mut batch);
            batch.put(record::workflow_key(id), record::encode_record(&next)?);
            inner.commit(batch).await?;
            *record = next;
            continue;
        }
        if running.is_empty() {
            for branch in branches.iter().filter(|b| b.value.is_none()) {
                if let PendingCommand::Timer { deadline_ms } = branch.pending {
                    inner.timers.arm(deadline_ms, id);
                }
            }
            return Ok(Decided::Idle);
        }
        // Wait for an activity to finish, or for a wake (signal, timer, child, cancellation).
        let finished = {
            let tasks = running
                .iter_mut()
                .map(|r| Box::pin(async { (r.index, (&mut r.task).await) }));
            let earliest_timer = branches
                .iter()
                .filter(|b| b.value.is_none())
                .filter_map(|b| match b.pending {
                    PendingCommand::Timer { deadline_ms } => Some(deadline_ms),
                    _ => None,
                })
                .min();
            if let Some(deadline) = earliest_timer {
                inner.timers.arm(deadline, id);
            }
            tokio::select! {
                (done, _, _) = futures_select_all(tasks.collect()) => Some(done),
                () = wake.notified() => None,
            }
        };
        match finished {
            Some((index, joined)) => {
                running.retain(|r| r.index != index);
                let outcome = match joined {
                    Ok(ended) => ended?,
                    Err(e) => Err(ActivityError::failed(format!("activity task failed: {e}"))),
                };
                let value = group::branch_value(&Resume::Activity(outcome)).map_err(value_error)?;
                branches[index].value = Some(value);
                // Commit it on the next pass (with anything else that finished meanwhile).
                let mut next = record.clone();
                let pending = PendingCommand::Group {
                    race,
                    shape,
                    branches: branches.clone(),
                };
                next.status = status_of(&pending);
                next.pending = Some(pending);
                next.updated_ms = to_millis(inner.clock.now());
                let mut batch = Batch::new();
                visibility::stage_rewrite(id, Some(record), &next, &mut batch);
                batch.put(record::workflow_key(id), record::encode_record(&next)?);
                inner.commit(batch).await?;
                *record = next;
            }
            None => {
                let cancelled = inner
                    .with_active(id, |entry| std::mem::take(&mut entry.cancel))
                    .unwrap_or(false);
                if cancelled {
                    stop(&mut running);
                    let mut followup = Followup::default();
                    let mut consumed = vec![record::cancel_key(id)];
                    for branch in branches.iter().filter(|b| b.value.is_none()) {
                        match &branch.pending {
                            PendingCommand::Timer { deadline_ms } => {
                                consumed.push(record::timer_key(*deadline_ms, id))
                            }
                            PendingCommand::Child { child_id, policy } => {
                                cancel_child(&mut followup, child_id, *policy, inner.clock.now())?
                            }
                            _ => {}
                        }
                    }
                    return Ok(Decided::Resume(Resume::Cancelled, consumed, followup));
                }
                if runner::deadline_passed(inner, deadline) {
                    stop(&mut running);
                    // The branches committed so far, not `record.pending` as it was loaded.
                    let pending = PendingCommand::Group {
                        race,
                        shape,
                        branches: branches.clone(),
                    };
                    let (resume, consumed, followup) =
                        runner::timeout_resume(inner, id, Some(&pending))?;
                    return Ok(Decided::Resume(resume, consumed, followup));
                }
            }
        }
    }
}

/// A branch found ready in one pass of [`drive_group`].
struct Ready {
    /// What it resumes with.
    resume: Resume,
    /// The key it consumes if it wins (its signal, its timer).
    consumes: Option<Vec<u8>>,
    /// For a signal branch, the key of the signal it read: its place in the queue.
    signal_key: Option<Vec<u8>>,
}

/// A race branch found ready in one pass, before the winner is chosen.
struct Candidate {
    /// The branch's position in the race.
    index: usize,
    /// What it found.
    ready: Ready,
}

/// Which of the race branches found ready in one pass wins.
///
/// A signal that was accepted is answered: ready signal branches beat the others, and among
/// them the signal that arrived first wins (queue keys sort in arrival order), whatever the
/// order the branches were written in. So `ctx.race((approve, reject))` resumes with `reject`
/// when it was sent before `approve`, even if both are queued by the time the workflow looks.
/// Otherwise (timers, children) the first branch listed wins.
fn race_winner(mut candidates: Vec<Candidate>) -> Option<Candidate> {
    let first_signal = candidates
        .iter()
        .enumerate()
        .filter_map(|(at, c)| c.ready.signal_key.as_ref().map(|key| (key, at)))
        .min()
        .map(|(_, at)| at);
    match first_signal {
        Some(at) => Some(candidates.swap_remove(at)),
        None if candidates.is_empty() => None,
        None => Some(candidates.swap_remove(0)),
    }
}

/// The first queued signal named `name` that no other branch took in this pass, or the first
/// unreadable one before it (see [`Inner::queued_signal`]).
async fn first_untaken_signal(
    inner: &Inner,
    id: &str,
    name: &str,
    taken: &[Vec<u8>],
) -> Result<Option<QueuedSignal>, EngineError> {
    let prefix = record::signal_queue_prefix(id);
    for (key, value) in inner.read_prefix(prefix).await? {
        if taken.contains(&key) {
            continue;
        }
        match record::decode_record::<record::SignalRecord>(&value) {
            Ok(signal) if signal.name == name => {
                return Ok(Some(QueuedSignal::Found(key, signal.payload)));
            }
            Ok(_) => {}
            Err(error) => return Ok(Some(QueuedSignal::Unreadable(key, error))),
        }
    }
    Ok(None)
}

/// Waits for the first of several futures; a small stand-in for `futures::select_all`.
async fn futures_select_all<F: std::future::Future + Unpin>(
    mut futures: Vec<F>,
) -> (F::Output, usize, ()) {
    std::future::poll_fn(|cx| {
        for (i, f) in futures.iter_mut().enumerate() {
            if let std::task::Poll::Ready(out) = std::pin::Pin::new(f).poll(cx) {
                return std::task::Poll::Ready((out, i, ()));
            }
        }
        std::task::Poll::Pending
    })
    .await
}
