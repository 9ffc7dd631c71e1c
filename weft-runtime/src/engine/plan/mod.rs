//! The planner: what one transition of a workflow does, decided in one place, as data.
//!
//! Given what storage holds (the record, and the few [`Facts`] read for the step before it is
//! planned), the step's output and the clock as a value, [`step`] returns a [`Plan`]: the new
//! record, the writes that commit it, the values the writes are guarded on, and the [`Effect`]s
//! that follow once the batch is durable (run by [`super::effects::committed`], never before).
//! It does no I/O and reads no clock, so every decision in it is unit-tested without a store.
//!
//! The same module holds the other rules a transition follows:
//!
//! - readiness ([`ready`]): whether a pending command, a top-level await or a group's branch
//!   alike, resumes the workflow now, given the clock and what was read for it; which branch
//!   wins a race ([`race_winner`]: the signal that arrived first); what a group resumes with
//!   ([`group_value`]) and what its finished branches commit meanwhile ([`group_progress`]);
//! - interruptions: what a passed execution deadline ([`on_deadline`]) or a cancellation
//!   request ([`on_cancel_request`]) does to a waiting workflow, and what ending a wait early
//!   stops ([`on_cancel`]);
//! - retries ([`retry`]): whether a failed activity attempt runs again, and when.
//!
//! What is left to the callers is I/O: reading the facts (`runner::transition`), running
//! activities and steps, committing, and running the effects.

use std::collections::BTreeMap;
use std::time::SystemTime;

use crate::activity::{ActivityError, ActivityOptions};
use crate::attribute::AttributeValue;
use crate::child::ParentClosePolicy;
use crate::codec::Payload;
use crate::context::StepEffects;
use crate::storage::Batch;
use crate::workflow::Command;

use super::attributes;
use super::clock::{deadline_ms, to_millis};
use super::effects::Effect;
use super::error::EngineError;
use super::record::{
    self, AttributesRecord, Branch, Outcome, Partition, PendingCommand, RecordStatus, ResumeKind,
    WorkflowRecord,
};
use super::registry::{StepFault, Stepped};
use super::timers;
use super::visibility;
use super::writer::Expect;

mod interrupt;
mod ready;
mod retry;
#[cfg(test)]
mod tests;

pub(crate) use interrupt::{
    Interruption, cancel_resume, on_cancel, on_cancel_request, on_deadline, timeout_resume,
};
pub(crate) use ready::{Observed, Ready, group_progress, group_value, race_winner, ready};
pub(crate) use retry::{Retry, retry};

/// What the planner needs of the engine's configuration: no I/O behind either.
pub(crate) trait Env {
    /// The largest payload (state, input, output) a record may hold.
    fn payload_limit(&self) -> usize;
    /// The retry policy and timeout of a compensation of activity `name` (a saga stores only
    /// the name and input).
    fn compensation_options(&self, name: &str) -> ActivityOptions;
}

/// One step taken: what the planner turns into a [`Plan`].
pub(crate) struct Step<'a> {
    /// The workflow's id.
    pub id: &'a str,
    /// Its partition, which its keys carry.
    pub partition: Partition,
    /// The record the step was taken from, rewritten in place as the record the plan commits
    /// (a step's record is neither cloned nor moved on the way to its commit).
    pub record: &'a mut WorkflowRecord,
    /// Whether `record` is the stored record, or the one a start (or a parent, for a child)
    /// creates in this very commit.
    pub stored: bool,
    /// What the step returned, or why it could not run.
    pub stepped: Result<Stepped, StepFault>,
    /// Its effects (update answers, a review).
    pub effects: StepEffects,
    /// The search attributes it set.
    pub attributes: BTreeMap<String, AttributeValue>,
    /// What resumed it.
    pub kind: ResumeKind,
    /// The keys its resume consumed (a signal, a fired timer, a delivered cancellation).
    pub consumed: Vec<Vec<u8>>,
    /// The clock, read once for the step.
    pub now: SystemTime,
    /// What a runner's resume adds to the step; `None` for a workflow's (or child's) first.
    pub resumed: Option<Resumed>,
}

/// What storage held for a step, read before it is planned (by `runner::transition`), only when
/// the step needs it.
#[derive(Default)]
pub(crate) struct Facts {
    /// The update ids among the step's answers that were answered already: the first committed
    /// answer is the one callers get.
    pub answered: Vec<String>,
    /// For a step resumed by a group: whether the workflow's review record is stored.
    pub review_stored: bool,
    /// For a step resumed by a group at or into a review: the keys of the review decisions
    /// queued, stale once the review they answered ended.
    pub review_decisions: Vec<Vec<u8>>,
    /// The stored search attributes, when the step set some.
    pub attributes: Option<AttributesRecord>,
    /// The children the step's command starts, in the command's order.
    pub children: Vec<ChildStart>,
}

/// Whether planning `step` needs [`Facts`] read from storage: when it answers updates, is
/// resumed by a group (which may end a review), sets search attributes, or starts children.
/// Most steps need none, and read nothing.
pub(crate) fn needs_facts(step: &Step<'_>) -> bool {
    let starts_children = match &step.stepped {
        Ok(Stepped::Suspend { command, .. }) => match command {
            Command::Child { .. } => true,
            Command::All { branches, .. } | Command::Race { branches, .. } => branches
                .iter()
                .any(|branch| matches!(branch, Command::Child { .. })),
            _ => false,
        },
        _ => false,
    };
    step.stepped.is_ok()
        && (starts_children
            || !step.effects.responses.is_empty()
            || step.kind == ResumeKind::Group
            || !step.attributes.is_empty())
}

/// A child a step starts, as prepared before planning (its own first step is planned by
/// [`step`] too).
pub(crate) enum ChildStart {
    /// A record is stored under the child's id already (the step is taken again): it is not
    /// created again.
    Exists,
    /// The writes that create it: its record after its first step, with its parent link.
    Created(Batch),
    /// It cannot be started (not registered, input too large, input that does not decode):
    /// the parent parks.
    Fault(StepFault),
}

/// A transition decided: what to write, on what condition, and what follows once it is durable.
/// The record it commits is the step's own, rewritten in place (see [`Step::record`]).
#[derive(Debug)]
pub(crate) struct Plan {
    /// The writes, the record's included.
    pub batch: Batch,
    /// Values the writes were prepared from, which must still hold (empty: none).
    pub expect: Vec<Expect>,
    /// A final transition's signal queue, cleared by the writer as it commits (see
    /// `writer::swept`).
    pub sweep: Option<Vec<u8>>,
    /// What follows once the batch is durable, in order.
    pub effects: Vec<Effect>,
}

/// What a resume leaves to do beside the step, decided with the resume (see [`on_cancel`]).
#[derive(Debug, Default)]
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

/// What a runner adds to the plan of a step it resumed.
#[derive(Default)]
pub(crate) struct Resumed {
    /// What the resume leaves to do.
    pub followup: Followup,
    /// The activity result the step resumed with: kept if the step parks, so a retry resumes
    /// with it instead of running the activity again.
    pub activity_result: Option<Result<Payload, ActivityError>>,
    /// The review record as read before deciding, when the workflow waited at a review.
    pub expect: Vec<Expect>,
}

/// Plans one step: the record and batch that commit it (the new state, the pending command,
/// the consumed resume, the step's effects and the index entries), or a park that keeps
/// everything as it was, and what follows once it is durable.
///
/// Whether the step parks is decided first, from the record as it stands ([`decide`]); then the
/// record is rewritten in place ([`rewrite`]).
pub(crate) fn step(env: &impl Env, step: Step<'_>, facts: Facts) -> Result<Plan, EngineError> {
    let Step {
        id,
        partition: p,
        record,
        stored,
        stepped,
        effects,
        attributes,
        kind,
        consumed,
        now,
        resumed,
    } = step;
    // Update callers wait on the workflow's waiters for their answer.
    let answered = effects.responses.iter().any(Result::is_ok);
    let resumed_by_runner = resumed.is_some();
    let Resumed {
        followup,
        activity_result,
        expect,
    } = resumed.unwrap_or_default();
    let mut batch = Batch::new();
    // The attempts of the activities a runner's step resumes from are spent with it, even
    // when it parks (a parked step keeps the activity's result instead).
    if resumed_by_runner && !followup.no_attempt_stored {
        delete_attempts(p, id, record, &mut batch);
    }
    let decided = decide(
        env,
        p,
        id,
        record,
        stepped,
        effects,
        kind,
        &consumed,
        now,
        facts.children,
    );
    match decided {
        Ok(decided) => {
            let facts = Written {
                answered: facts.answered,
                review_stored: facts.review_stored,
                review_decisions: facts.review_decisions,
                attributes: facts.attributes,
                set: attributes,
            };
            rewrite(
                p, id, record, stored, decided, kind, consumed, now, facts, &mut batch,
            )?;
        }
        Err(fault) => {
            park_transition(record, stored, fault, now, (p, id), &mut batch)?;
            if let Some(result) = activity_result {
                // A parked step keeps its step number: the result is kept for it.
                let kept = record::ActivityResultRecord {
                    step: record.step,
                    result,
                };
                batch.put(
                    record::activity_result_key(p, id),
                    record::encode_record(&kept)?,
                );
            }
        }
    }
    batch.extend(followup.writes);
    let mut effects = in_motion(id, record, &batch, answered);
    effects.extend(followup.cancel_children.into_iter().map(Effect::Cancel));
    if followup.keep_cancel {
        effects.push(Effect::KeepCancel(id.to_string()));
    }
    let sweep = record
        .status
        .is_terminal()
        .then(|| record::signal_queue_prefix(p, id));
    Ok(Plan {
        batch,
        expect,
        sweep,
        effects,
    })
}

/// What storage held that [`rewrite`] writes from (see [`Facts`]), and the attributes the
/// step set.
struct Written {
    answered: Vec<String>,
    review_stored: bool,
    review_decisions: Vec<Vec<u8>>,
    attributes: Option<AttributesRecord>,
    set: BTreeMap<String, AttributeValue>,
}

/// What a step that does not park comes to, decided from the record as it stands.
struct Decided {
    /// The new step number.
    step: u64,
    /// The new count of consumed signals.
    signals_consumed: u64,
    /// Where the workflow stands after it.
    next: Next,
    /// The update answers it gives.
    answers: Vec<(String, Payload)>,
    /// The review it suspends at.
    review: Option<crate::review::ReviewRequest>,
}

/// Where a workflow stands after a step.
enum Next {
    /// Suspended on `pending`, with `writes` (timer entries, children) committed with it.
    Suspend {
        status: RecordStatus,
        state: Payload,
        pending: PendingCommand,
        writes: Batch,
    },
    /// Finished.
    Finished {
        status: RecordStatus,
        outcome: Outcome,
    },
}

/// Decides, without changing anything, what step `stepped` of `prev` comes to, or the fault
/// that parks it (a payload over the limit, a counter at its largest value, a group or child
/// that cannot be planned, a step that could not run).
#[allow(clippy::too_many_arguments)] // the parts of one step, taken apart by `step`
fn decide(
    env: &impl Env,
    p: Partition,
    id: &str,
    prev: &WorkflowRecord,
    stepped: Result<Stepped, StepFault>,
    effects: StepEffects,
    kind: ResumeKind,
    consumed: &[Vec<u8>],
    now: SystemTime,
    children: Vec<ChildStart>,
) -> Result<Decided, StepFault> {
    let limit = env.payload_limit();
    let stepped = stepped?;
    let StepEffects { responses, review } = effects;
    let mut answers = Vec::with_capacity(responses.len());
    for response in responses {
        match response {
            Ok(answer) => answers.push(answer),
            Err(e) => return Err(StepFault::step(&e)),
        }
    }
    // Stored counters never wrap: at their largest value the workflow parks, state kept.
    let step = prev
        .step
        .checked_add(1)
        .ok_or_else(|| StepFault::overflow("step counter"))?;
    // A top-level signal wait consumes its signal; a group resumes with the signals its
    // branches took (the ones it took earlier were counted as they were committed).
    let signals_consumed = prev
        .signals_consumed
        .checked_add(signals_among(p, id, consumed))
        .ok_or_else(|| StepFault::overflow("consumed signal counter"))?;
    let check = |what: &str, payload: &[u8]| match too_large(limit, what, payload) {
        Some(fault) => Err(fault),
        None => Ok(()),
    };
    let next = match stepped {
        Stepped::Suspend { state, command } => {
            check("the workflow state", &state)?;
            let mut writes = Batch::new();
            let (status, pending) = match command {
                Command::Activity {
                    name,
                    input,
                    options,
                } => {
                    check("the activity input", &input)?;
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
                    writes.put(record::timer_key(p, deadline_ms, id), Vec::new());
                    (RecordStatus::Waiting, PendingCommand::Timer { deadline_ms })
                }
                Command::WaitForSignal { name } => (
                    RecordStatus::Waiting,
                    PendingCommand::Signal {
                        name: name.to_string(),
                    },
                ),
                Command::Compensate { activity, input } => {
                    check("the compensation input", &input)?;
                    (
                        RecordStatus::Running,
                        PendingCommand::Activity {
                            options: env.compensation_options(&activity),
                            name: activity,
                            input,
                        },
                    )
                }
                command @ (Command::All { .. } | Command::Race { .. } | Command::Child { .. }) => {
                    let mut children = children.into_iter();
                    let pending = command_pending(
                        env,
                        (p, id),
                        step,
                        command,
                        now,
                        &mut children,
                        &mut writes,
                    )?;
                    (status_of(&pending), pending)
                }
            };
            Next::Suspend {
                status,
                state,
                pending,
                writes,
            }
        }
        Stepped::Output(output) => {
            check("the workflow output", &output)?;
            Next::Finished {
                status: RecordStatus::Completed,
                outcome: Outcome::Output(output),
            }
        }
        Stepped::Error { payload, message } => {
            check("the workflow error", &payload)?;
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
            Next::Finished {
                status,
                outcome: Outcome::Error { payload, message },
            }
        }
        Stepped::Cancelled => {
            if timed_out(prev, kind) {
                Next::Finished {
                    status: RecordStatus::TimedOut,
                    outcome: Outcome::TimedOut,
                }
            } else {
                Next::Finished {
                    status: RecordStatus::Cancelled,
                    outcome: Outcome::Cancelled,
                }
            }
        }
    };
    for (_, payload) in &answers {
        check("the update response", payload)?;
    }
    Ok(Decided {
        step,
        signals_consumed,
        next,
        answers,
        review,
    })
}

/// Rewrites `next` (the record the step was taken from) in place as `decided`, and adds the
/// writes that commit it to `batch`.
#[allow(clippy::too_many_arguments)] // the parts of one step, taken apart by `step`
fn rewrite(
    p: Partition,
    id: &str,
    next: &mut WorkflowRecord,
    stored: bool,
    decided: Decided,
    kind: ResumeKind,
    consumed: Vec<Vec<u8>>,
    now: SystemTime,
    facts: Written,
    batch: &mut Batch,
) -> Result<(), EngineError> {
    let Decided {
        step,
        signals_consumed,
        next: after,
        answers,
        review,
    } = decided;
    // What the index writes need of the record before it is rewritten.
    let (prev_status, prev_updated_ms) = (next.status.clone(), next.updated_ms);
    let now_ms = to_millis(now);
    next.step = step;
    next.updated_ms = now_ms;
    next.last_resume = Some(kind);
    next.signals_consumed = signals_consumed;
    consume(id, next, consumed, batch);
    if let Some(PendingCommand::Timer { deadline_ms }) = next.pending {
        batch.delete(record::timer_key(p, deadline_ms, id));
    }
    let suspends = matches!(after, Next::Suspend { .. });
    match after {
        Next::Suspend {
            status,
            state,
            pending,
            writes,
        } => {
            batch.extend(writes);
            next.status = status;
            next.state = Some(state);
            next.pending = Some(pending);
        }
        Next::Finished { status, outcome } => {
            next.status = status;
            next.outcome = Some(outcome);
            next.state = None;
            next.pending = None;
        }
    }
    let terminal = next.status.is_terminal();
    if !terminal {
        match kind {
            ResumeKind::Cancelled => next.lifecycle.cancelled = true,
            ResumeKind::TimedOut => next.lifecycle.timed_out = true,
            _ => {}
        }
    }
    for (update_id, payload) in answers {
        // The first committed answer is the one callers get.
        if !facts.answered.contains(&update_id) {
            let key = record::update_response_key(p, id, &update_id);
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
                // They were read before planning, so a decision could slip in after the read;
                // but a runner's step out of a review is guarded on the review record as read
                // before deciding (see `runner::advance`), and a decision writes its signal and
                // marks that record decided in one commit. So a decision accepted before this
                // transition, in writer order, either was stored before the guarded read (the
                // runner resumed with it: this step consumes it) or fails the guard (nothing of
                // this step is written; the runner decides again and resumes with it). One
                // accepted after reads the replaced record: it is a decision on this new
                // review, queued after the read.
                for key in facts.review_decisions {
                    batch.delete(key);
                }
            }
            batch.put(record::review_key(id), record::encode_record(&review)?);
        }
        _ if terminal => {
            batch.delete(record::review_key(id));
        }
        _ if kind == ResumeKind::Group && facts.review_stored => {
            // The review ended: decisions queued after the one taken (or after the deadline
            // won) are stale and must not answer a later review. A decision accepted after this
            // transition finds no record and is refused; one accepted before it fails the
            // guard on the record (see above).
            batch.delete(record::review_key(id));
            for key in facts.review_decisions {
                batch.delete(key);
            }
        }
        _ => {}
    }
    if terminal {
        // A finished workflow leaves the live index, and takes no more signals or
        // cancellations: clear what is queued. (Its signal queue is cleared by the writer as it
        // commits this, so that a signal accepted up to that moment goes too: see
        // `writer::swept`. A workflow finishing at its start has no stored queue. The writer
        // also drops a cancellation request folded in after this runner read the record: see
        // `cancel_fold`.) Its parent link and trace context stay: a parent reads its result.
        batch.delete(record::live_key(p, id));
        let lifecycle = &mut next.lifecycle;
        lifecycle.cancel_requested_ms = None;
        lifecycle.cancelled = false;
        lifecycle.deadline_ms = None;
        lifecycle.timed_out = false;
        batch.delete(record::activity_result_key(p, id));
    }
    if kind == ResumeKind::Start && !terminal {
        batch.put(record::live_key(p, id), Vec::new());
    }
    let before = stored.then(|| visibility::Before {
        status: &prev_status,
        updated_ms: prev_updated_ms,
        workflow_type: &next.workflow_type,
        version: next.version,
        fingerprint: next.fingerprint,
    });
    visibility::stage_transition_from(id, before, next, batch)?;
    batch.put(record::workflow_key(p, id), record::encode_record(&*next)?);
    if !facts.set.is_empty() {
        attributes::stage((p, id), next, facts.attributes, facts.set, batch)?;
    }
    Ok(())
}

/// What a committed transition to `next` sets in motion: disarming the in-memory timers whose
/// stored entries `batch` deletes (a sleep cut short, a race's losing timer), telling result
/// waiters, starting new children, waking a finished child's parent.
fn in_motion(id: &str, next: &WorkflowRecord, batch: &Batch, answered: bool) -> Vec<Effect> {
    let mut effects = Vec::new();
    let mut disarmed = timers::deleted_by(batch);
    if disarmed.len() > 1 {
        // A fired timer is deleted twice (consumed, and as the pending command it leaves).
        disarmed.sort_unstable();
        disarmed.dedup();
    }
    for (deadline_ms, timer_id) in disarmed {
        effects.push(Effect::Disarm {
            deadline_ms,
            id: timer_id,
        });
    }
    let terminal = next.status.is_terminal();
    if terminal && next.outcome.is_some() {
        effects.push(Effect::Finished(id.to_string()));
    } else if terminal || matches!(next.status, RecordStatus::Parked { .. }) {
        effects.push(Effect::Changed(id.to_string()));
    }
    if terminal {
        // Nothing can wake a finished workflow to any end: its execution deadline, say.
        effects.push(Effect::DisarmAll(id.to_string()));
    }
    effects.extend(
        children_of(next.pending.as_ref())
            .into_iter()
            .map(Effect::Wake),
    );
    if terminal && let Some(parent) = &next.lifecycle.parent {
        effects.push(Effect::Wake(parent.clone()));
    }
    if answered {
        effects.push(Effect::Changed(id.to_string()));
    }
    effects
}

/// The pending command for a group or child command; puts what must be committed with it
/// (timer index entries, child records) into `batch`. `children` are the prepared children of
/// the command, in its order.
fn command_pending(
    env: &impl Env,
    (p, id): (Partition, &str),
    step: u64,
    command: Command,
    now: SystemTime,
    children: &mut impl Iterator<Item = ChildStart>,
    batch: &mut Batch,
) -> Result<PendingCommand, StepFault> {
    let (race, shape, commands) = match command {
        Command::All { branches, shape } => (false, shape, branches),
        Command::Race { branches, shape } => (true, shape, branches),
        Command::Child { policy, .. } => {
            return start_child(
                parent_child_id(id, step, None),
                policy,
                children,
                (p, id),
                batch,
            );
        }
        other => {
            return Err(StepFault {
                code: "engine.unexpected_command".into(),
                message: format!("`{}` is not a group or child command", other.kind()),
            });
        }
    };
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
                options: env.compensation_options(&activity),
                name: activity,
                input,
            },
            Command::Sleep { duration } => {
                let deadline_ms = deadline_ms(now, duration);
                batch.put(record::timer_key(p, deadline_ms, id), Vec::new());
                PendingCommand::Timer { deadline_ms }
            }
            Command::WaitForSignal { name } => PendingCommand::Signal {
                name: name.to_string(),
            },
            Command::Child { policy, .. } => {
                let child_id = parent_child_id(id, step, Some(index));
                start_child(child_id, policy, children, (p, id), batch)?
            }
            Command::All { .. } | Command::Race { .. } => {
                return Err(StepFault {
                    code: "engine.nested_group".into(),
                    message: "a group's branch cannot be another group; await the inner group in its own statement".into(),
                });
            }
        };
        branches.push(Branch {
            pending,
            value: None,
        });
    }
    if branches.is_empty() && race {
        return Err(StepFault {
            code: "engine.empty_race".into(),
            message: "`ctx.race` over no operations can never finish; give it at least one".into(),
        });
    }
    Ok(PendingCommand::Group {
        race,
        shape,
        branches,
    })
}

/// The id of the child started by step `step` of workflow `parent` (at branch `index` of a
/// group).
pub(crate) fn parent_child_id(parent: &str, step: u64, index: Option<usize>) -> String {
    match index {
        None => format!("{parent}/{step}"),
        Some(index) => format!("{parent}/{step}.{index}"),
    }
}

/// The pending command of a child, with the writes that create it taken from its prepared start.
fn start_child(
    child_id: String,
    policy: ParentClosePolicy,
    children: &mut impl Iterator<Item = ChildStart>,
    (p, parent): (Partition, &str),
    batch: &mut Batch,
) -> Result<PendingCommand, StepFault> {
    match children.next() {
        Some(ChildStart::Exists) => {}
        Some(ChildStart::Created(writes)) => {
            batch.extend(writes);
            batch.put(record::child_key(p, parent, &child_id), Vec::new());
        }
        Some(ChildStart::Fault(fault)) => return Err(fault),
        None => {
            return Err(StepFault {
                code: "engine.unprepared_child".into(),
                message: format!("child workflow `{child_id}` was not prepared before planning"),
            });
        }
    }
    Ok(PendingCommand::Child { child_id, policy })
}

/// `next` parked with `fault`, rewritten in place, its writes added to `batch`. `stored` says
/// whether `next` is the stored record, or the one the workflow's first step creates.
fn park_transition(
    next: &mut WorkflowRecord,
    stored: bool,
    fault: StepFault,
    now: SystemTime,
    (p, id): (Partition, &str),
    batch: &mut Batch,
) -> Result<(), EngineError> {
    let (prev_status, prev_updated_ms) = (next.status.clone(), next.updated_ms);
    next.status = RecordStatus::Parked {
        code: fault.code,
        message: fault.message,
    };
    next.updated_ms = to_millis(now);
    // A workflow parked by its first step is created here, so it joins the live index here.
    batch.put(record::live_key(p, id), Vec::new());
    let before = stored.then(|| visibility::Before {
        status: &prev_status,
        updated_ms: prev_updated_ms,
        workflow_type: &next.workflow_type,
        version: next.version,
        fingerprint: next.fingerprint,
    });
    visibility::stage_park(id, before, next, batch);
    batch.put(record::workflow_key(p, id), record::encode_record(&*next)?);
    Ok(())
}

/// Parks stored record `record` with `fault` where it stands (keeping its state and pending
/// command), in place, without a step: its waiters are told.
pub(crate) fn parked(
    p: Partition,
    id: &str,
    record: &mut WorkflowRecord,
    fault: StepFault,
    now: SystemTime,
) -> Result<Plan, EngineError> {
    let mut batch = Batch::new();
    park_transition(record, true, fault, now, (p, id), &mut batch)?;
    Ok(Plan {
        batch,
        expect: Vec::new(),
        sweep: None,
        effects: vec![Effect::Changed(id.to_string())],
    })
}

/// Why `payload` cannot be stored, when it is over `limit` bytes.
pub(crate) fn too_large(limit: usize, what: &str, payload: &[u8]) -> Option<StepFault> {
    (payload.len() > limit).then(|| StepFault {
        code: "engine.payload_too_large".into(),
        message: format!(
            "{what} is {} bytes, over the payload limit of {limit} bytes",
            payload.len(),
        ),
    })
}

/// Whether the step resumed by `kind` from `prev` ends a workflow whose execution deadline
/// fired.
fn timed_out(prev: &WorkflowRecord, kind: ResumeKind) -> bool {
    kind == ResumeKind::TimedOut || prev.lifecycle.timed_out
}

/// The attempts of the activities a step resumes from are spent with it: their records go.
fn delete_attempts(p: Partition, id: &str, prev: &WorkflowRecord, batch: &mut Batch) {
    match &prev.pending {
        Some(PendingCommand::Activity { .. }) => {
            batch.delete(record::attempt_key(p, id, None));
        }
        Some(PendingCommand::Group { branches, .. }) => {
            for (index, branch) in branches.iter().enumerate() {
                if matches!(branch.pending, PendingCommand::Activity { .. }) {
                    let index = u32::try_from(index).unwrap_or(u32::MAX);
                    batch.delete(record::attempt_key(p, id, Some(index)));
                }
            }
        }
        _ => {}
    }
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

/// The status of a workflow suspended on `pending`: `Running` while an activity of it runs
/// (the workflow holds a task), `Waiting` when it only waits for signals, timers or children.
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
pub(crate) fn signals_among(p: Partition, id: &str, consumed: &[Vec<u8>]) -> u64 {
    let prefix = record::signal_queue_prefix(p, id);
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
