//! Groups (`ctx.all`, `ctx.race`) and child workflows: preparing the children a step starts
//! (for the planner, which decides their pending commands), and driving groups until they
//! resume the workflow. What is decided along the way (is a branch ready, which branch wins a
//! race, what the group resumes with, what its progress commits, what its losers stop) is
//! decided by `plan`; this module does the I/O around it.
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
use crate::child::ChildError;
use crate::codec::Payload;
use crate::context::WorkflowContext;
use crate::group;
use crate::workflow::{Command, Resume};

use super::clock::{deadline_ms, to_millis};
use super::core::{Inner, QueuedSignal};
use super::error::EngineError;
use super::execute::{self, Call, Origin};
use super::plan::{self, ChildStart, Followup, Observed, Ready};
use super::record::{self, Outcome, PendingCommand, RecordStatus, ResumeKind, WorkflowRecord};
use super::registry::StepFault;
use super::runner;

/// Prepares the children that `command` (the command a step of workflow `parent` suspends on,
/// at step `step`) starts, in the command's order, for the planner: each child's record after
/// its first step, planned like any step, or why it cannot start. Nothing is written.
pub(crate) async fn prepare_children(
    inner: &Inner,
    parent: &str,
    step: u64,
    command: &Command,
    now: SystemTime,
) -> Result<Vec<ChildStart>, EngineError> {
    let mut children = Vec::new();
    match command {
        Command::Child {
            workflow,
            input,
            execution_timeout,
            ..
        } => {
            let child_id = plan::parent_child_id(parent, step, None);
            let child = prepare_child(
                inner,
                parent,
                &child_id,
                workflow,
                input,
                *execution_timeout,
                now,
            );
            children.push(child.await?);
        }
        Command::All { branches, .. } | Command::Race { branches, .. } => {
            for (index, branch) in branches.iter().enumerate() {
                if let Command::Child {
                    workflow,
                    input,
                    execution_timeout,
                    ..
                } = branch
                {
                    let child_id = plan::parent_child_id(parent, step, Some(index));
                    let child = prepare_child(
                        inner,
                        parent,
                        &child_id,
                        workflow,
                        input,
                        *execution_timeout,
                        now,
                    );
                    children.push(child.await?);
                }
            }
        }
        _ => {}
    }
    Ok(children)
}

/// Prepares child `child_id` of `parent` (see [`prepare_children`]): nothing when it exists
/// already, else its record after its first step, with its parent link.
fn prepare_child<'a>(
    inner: &'a Inner,
    parent: &'a str,
    child_id: &'a str,
    workflow_name: &'a str,
    input: &'a [u8],
    execution_timeout: Option<std::time::Duration>,
    now: SystemTime,
) -> PrepareChild<'a> {
    // A child's first step may start children of its own: the recursion is boxed.
    Box::pin(async move {
        if inner
            .read_key(record::workflow_key(inner.partition(child_id), child_id))
            .await?
            .is_some()
        {
            return Ok(ChildStart::Exists);
        }
        let Some(workflow) = inner.registry.latest(workflow_name) else {
            return Ok(ChildStart::Fault(StepFault {
                code: "child.not_registered".into(),
                message: format!(
                    "child workflow `{workflow_name}` is not registered with this engine; register it and restart to resume"
                ),
            }));
        };
        if let Some(fault) = plan::too_large(inner.payload_limit, "the child workflow input", input)
        {
            return Ok(ChildStart::Fault(fault));
        }
        let state = match workflow.start(input) {
            Ok(state) => state,
            Err(fault) => return Ok(ChildStart::Fault(fault)),
        };
        let mut created = WorkflowRecord {
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
        // What its first step sets in motion is left to its runner, woken by the parent's
        // commit: it drives its own children and finds its own end.
        let child = runner::transition(
            inner,
            plan::Step {
                id: child_id,
                partition: inner.partition(child_id),
                record: &mut created,
                stored: false,
                stepped,
                effects: ctx.take_effects(),
                attributes: ctx.take_attributes(),
                kind: ResumeKind::Start,
                consumed: Vec::new(),
                now,
                resumed: None,
            },
        )
        .await?;
        Ok(ChildStart::Created(child.batch))
    })
}

/// What [`prepare_child`] returns: boxed, as a child's first step may start children of its own.
type PrepareChild<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<ChildStart, EngineError>> + Send + 'a>,
>;

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
    let signals = inner.runner_signals(id);
    let mut running = Running::default();
    let stop = |running: &mut Running| {
        for branch in running.drain(..) {
            // The activity sees cancellation through its context; its result is not awaited.
            let _ = branch.cancel.send(true);
        }
    };
    loop {
        let now = inner.clock.now();
        let now_ms = to_millis(now);
        let mut consumed: Vec<Vec<u8>> = Vec::new();
        let mut newly = false;
        let mut taken_signals: Vec<Vec<u8>> = Vec::new();
        // A race whose winner was committed (before a crash, say) resolves below without
        // starting its losers again.
        let race_won = race && branches.iter().any(|b| b.value.is_some());
        // In a race, the branches ready in this pass are candidates; one wins below, and only
        // the winner consumes what it read (a losing signal stays queued).
        let mut candidates: Vec<(usize, Ready)> = Vec::new();
        for (index, branch) in branches.iter_mut().enumerate() {
            if race_won {
                break;
            }
            if branch.value.is_some() {
                continue;
            }
            if let PendingCommand::Activity {
                name,
                input,
                options,
            } = &branch.pending
            {
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
                continue;
            }
            let observed = observe(inner, id, &branch.pending, &taken_signals).await?;
            let ready = match plan::ready(
                inner.partition(id),
                id,
                &branch.pending,
                true,
                now_ms,
                observed,
            ) {
                Ok(ready) => ready,
                Err(fault) => return Ok(Decided::Park(fault)),
            };
            if let Some(ready) = ready {
                if let Some(key) = &ready.signal_key {
                    taken_signals.push(key.clone());
                }
                if race {
                    candidates.push((index, ready));
                } else {
                    consumed.extend(ready.consumes);
                    branch.value = Some(group::branch_value(&ready.resume).map_err(value_error)?);
                    newly = true;
                }
            }
        }
        if let Some(at) = plan::race_winner(&candidates) {
            let (index, ready) = candidates.swap_remove(at);
            consumed.extend(ready.consumes);
            branches[index].value = Some(group::branch_value(&ready.resume).map_err(value_error)?);
            newly = true;
        }
        if let Some(value) = plan::group_value(race, shape, &branches) {
            let value = value.map_err(value_error)?;
            // The losers of a race: activities are told to stop, timers disarmed, children
            // cancelled per their policy.
            stop(&mut running);
            let pending = PendingCommand::Group {
                race,
                shape,
                branches,
            };
            let followup =
                plan::on_cancel(inner.partition(id), id, Some(&pending), now, &mut consumed)?;
            return Ok(Decided::Resume(Resume::Group(value), consumed, followup));
        }
        if newly {
            // Persist the branches that finished, with what they consumed, before going on.
            let pending = PendingCommand::Group {
                race,
                shape,
                branches: branches.clone(),
            };
            match plan::group_progress(inner.partition(id), id, record, pending, consumed, now)? {
                Ok(plan) => inner.commit(plan.batch).await?,
                Err(fault) => {
                    stop(&mut running);
                    return Ok(Decided::Park(fault));
                }
            }
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
                () = signals.wake.notified() => None,
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
                let pending = PendingCommand::Group {
                    race,
                    shape,
                    branches: branches.clone(),
                };
                match plan::group_progress(
                    inner.partition(id),
                    id,
                    record,
                    pending,
                    Vec::new(),
                    inner.clock.now(),
                )? {
                    Ok(plan) => inner.commit(plan.batch).await?,
                    Err(fault) => {
                        stop(&mut running);
                        return Ok(Decided::Park(fault));
                    }
                }
            }
            None => {
                let cancelled = signals.take_cancel();
                if cancelled {
                    stop(&mut running);
                    let pending = PendingCommand::Group {
                        race,
                        shape,
                        branches: branches.clone(),
                    };
                    let (resume, consumed, followup) = plan::cancel_resume(
                        inner.partition(id),
                        id,
                        Some(&pending),
                        inner.clock.now(),
                    )?;
                    return Ok(Decided::Resume(resume, consumed, followup));
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

/// What storage holds for `pending` (of workflow `id`), for [`plan::ready`]: the first queued
/// signal of its name that no branch took in this pass (`taken`), or the end of the child it
/// waits for. Nothing for a timer (the clock decides) or an activity (it is run). A child that
/// has not ended is woken, so it is driven (after a restart it may have no runner yet).
pub(crate) async fn observe(
    inner: &Arc<Inner>,
    id: &str,
    pending: &PendingCommand,
    taken: &[Vec<u8>],
) -> Result<Observed, EngineError> {
    Ok(match pending {
        PendingCommand::Signal { name } => {
            let queued = if taken.is_empty() {
                inner.queued_signal(id, name).await?
            } else {
                first_untaken_signal(inner, id, name, taken).await?
            };
            match queued {
                Some(QueuedSignal::Found(key, payload)) => Observed::Signal(key, payload),
                Some(QueuedSignal::Unreadable(key, error)) => {
                    Observed::UnreadableSignal(key, error)
                }
                None => Observed::Nothing,
            }
        }
        PendingCommand::Child { child_id, .. } => match child_result(inner, child_id).await? {
            Some(result) => Observed::Child(result),
            None => {
                runner::wake(inner, child_id);
                Observed::Nothing
            }
        },
        _ => Observed::Nothing,
    })
}

/// The first queued signal named `name` that no other branch took in this pass, or the first
/// unreadable one before it (see [`Inner::queued_signal`]).
async fn first_untaken_signal(
    inner: &Inner,
    id: &str,
    name: &str,
    taken: &[Vec<u8>],
) -> Result<Option<QueuedSignal>, EngineError> {
    let prefix = record::signal_queue_prefix(inner.partition(id), id);
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

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use super::*;

    /// A future ready at its `at`-th poll.
    struct ReadyAt {
        at: u32,
        polls: u32,
        value: &'static str,
    }

    impl Future for ReadyAt {
        type Output = &'static str;
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
            self.polls += 1;
            if self.polls >= self.at {
                Poll::Ready(self.value)
            } else {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }

    #[tokio::test]
    async fn the_first_branch_to_finish_is_taken_with_its_index() {
        let futures = vec![
            ReadyAt {
                at: 3,
                polls: 0,
                value: "slow",
            },
            ReadyAt {
                at: 2,
                polls: 0,
                value: "fast",
            },
        ];
        let (value, index, ()) = futures_select_all(futures).await;
        assert_eq!((value, index), ("fast", 1));
    }
}
