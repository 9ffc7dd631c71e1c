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
use crate::child::{ChildError, ParentClosePolicy};
use crate::codec::Payload;
use crate::context::StepEffects;
use crate::group::GroupShape;
use crate::storage::Batch;
use crate::workflow::{Command, Resume};

use super::attributes;
use super::clock::{deadline_ms, to_millis};
use super::effects::Effect;
use super::error::EngineError;
use super::record::{
    self, AttributesRecord, Branch, Outcome, PendingCommand, RecordStatus, ResumeKind,
    WorkflowRecord,
};
use super::registry::{StepFault, Stepped};
use super::timers;
use super::visibility;
use super::writer::Expect;

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
        delete_attempts(id, record, &mut batch);
    }
    let decided = decide(
        env,
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
                id, record, stored, decided, kind, consumed, now, facts, &mut batch,
            )?;
        }
        Err(fault) => {
            park_transition(record, stored, fault, now, id, &mut batch)?;
            if let Some(result) = activity_result {
                // A parked step keeps its step number: the result is kept for it.
                let kept = record::ActivityResultRecord {
                    step: record.step,
                    result,
                };
                batch.put(
                    record::activity_result_key(id),
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
        .then(|| record::signal_queue_prefix(id));
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
        .checked_add(signals_among(id, consumed))
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
                    writes.put(record::timer_key(deadline_ms, id), Vec::new());
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
                    let pending =
                        command_pending(env, id, step, command, now, &mut children, &mut writes)?;
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
        batch.delete(record::timer_key(deadline_ms, id));
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
            let key = record::update_response_key(id, &update_id);
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
        batch.delete(record::live_key(id));
        let lifecycle = &mut next.lifecycle;
        lifecycle.cancel_requested_ms = None;
        lifecycle.cancelled = false;
        lifecycle.deadline_ms = None;
        lifecycle.timed_out = false;
        batch.delete(record::activity_result_key(id));
    }
    if kind == ResumeKind::Start && !terminal {
        batch.put(record::live_key(id), Vec::new());
    }
    let before = stored.then(|| visibility::Before {
        status: &prev_status,
        updated_ms: prev_updated_ms,
        workflow_type: &next.workflow_type,
        version: next.version,
        fingerprint: next.fingerprint,
    });
    visibility::stage_transition_from(id, before, next, batch)?;
    batch.put(record::workflow_key(id), record::encode_record(&*next)?);
    if !facts.set.is_empty() {
        attributes::stage(id, next, facts.attributes, facts.set, batch)?;
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
    id: &str,
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
            return start_child(parent_child_id(id, step, None), policy, children, id, batch);
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
                batch.put(record::timer_key(deadline_ms, id), Vec::new());
                PendingCommand::Timer { deadline_ms }
            }
            Command::WaitForSignal { name } => PendingCommand::Signal {
                name: name.to_string(),
            },
            Command::Child { policy, .. } => {
                let child_id = parent_child_id(id, step, Some(index));
                start_child(child_id, policy, children, id, batch)?
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
    parent: &str,
    batch: &mut Batch,
) -> Result<PendingCommand, StepFault> {
    match children.next() {
        Some(ChildStart::Exists) => {}
        Some(ChildStart::Created(writes)) => {
            batch.extend(writes);
            batch.put(record::child_key(parent, &child_id), Vec::new());
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
    id: &str,
    batch: &mut Batch,
) -> Result<(), EngineError> {
    let (prev_status, prev_updated_ms) = (next.status.clone(), next.updated_ms);
    next.status = RecordStatus::Parked {
        code: fault.code,
        message: fault.message,
    };
    next.updated_ms = to_millis(now);
    // A workflow parked by its first step is created here, so it joins the live index here.
    batch.put(record::live_key(id), Vec::new());
    let before = stored.then(|| visibility::Before {
        status: &prev_status,
        updated_ms: prev_updated_ms,
        workflow_type: &next.workflow_type,
        version: next.version,
        fingerprint: next.fingerprint,
    });
    visibility::stage_park(id, before, next, batch);
    batch.put(record::workflow_key(id), record::encode_record(&*next)?);
    Ok(())
}

/// Parks stored record `record` with `fault` where it stands (keeping its state and pending
/// command), in place, without a step: its waiters are told.
pub(crate) fn parked(
    id: &str,
    record: &mut WorkflowRecord,
    fault: StepFault,
    now: SystemTime,
) -> Result<Plan, EngineError> {
    let mut batch = Batch::new();
    park_transition(record, true, fault, now, id, &mut batch)?;
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

/// What ending the wait on `pending` early (a cancellation, a passed execution deadline, a
/// race won) must also do: the timers of unfinished branches are consumed (their index entries
/// deleted, so their in-memory timers are disarmed with the commit), and unfinished children
/// are cancelled per their policy.
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

/// The resume that delivers a cancellation request to a workflow waiting on `pending`: it
/// consumes the request (`cancel/<id>`, see [`consume`]) and what ending the wait stops.
pub(crate) fn cancel_resume(
    id: &str,
    pending: Option<&PendingCommand>,
    now: SystemTime,
) -> Result<(Resume, Vec<Vec<u8>>, Followup), EngineError> {
    let mut consumed = vec![record::cancel_key(id)];
    let followup = on_cancel(id, pending, now, &mut consumed)?;
    Ok((Resume::Cancelled, consumed, followup))
}

/// The resume that delivers a passed execution deadline: a cancellation that consumes the
/// deadline (named by `deadline/<id>` among the consumed keys; see [`consume`]) and is
/// committed as [`ResumeKind::TimedOut`].
pub(crate) fn timeout_resume(
    id: &str,
    pending: Option<&PendingCommand>,
    now: SystemTime,
) -> Result<(Resume, Vec<Vec<u8>>, Followup), EngineError> {
    let mut consumed = vec![record::deadline_key(id)];
    let mut followup = on_cancel(id, pending, now, &mut consumed)?;
    followup.timed_out = true;
    Ok((Resume::Cancelled, consumed, followup))
}

/// What an execution deadline or a cancellation request does to a waiting workflow.
#[derive(Debug)]
pub(crate) enum Interruption {
    /// Resume now with this, consuming these keys, then do the follow-up.
    Resume(Resume, Vec<Vec<u8>>, Followup),
    /// The workflow waits on a child it must wait for ([`ParentClosePolicy::Wait`]): nothing
    /// until the child has ended (the deadline or request stays stored, and the child's end
    /// wakes the parent again), then it resumes with the child's result and this follow-up.
    AwaitChild(Followup),
}

/// Whether `record` waits on a child under [`ParentClosePolicy::Wait`].
pub(crate) fn waits_for_child(record: &WorkflowRecord) -> bool {
    matches!(
        record.pending,
        Some(PendingCommand::Child {
            policy: ParentClosePolicy::Wait,
            ..
        })
    )
}

/// What the execution deadline `deadline` (armed, not yet delivered) does at `now`: nothing
/// before it; then it acts like a cancellation. It cuts a sleep short once (the deadline stays
/// stored, and reaches the next durable await as an error); it waits for a child the workflow
/// must wait for; else it is delivered, and taken from `deadline` so it is delivered once.
pub(crate) fn on_deadline(
    id: &str,
    record: &WorkflowRecord,
    now: SystemTime,
    deadline: &mut Option<u64>,
) -> Result<Option<Interruption>, EngineError> {
    match *deadline {
        Some(at) if to_millis(now) >= at => {}
        _ => return Ok(None),
    }
    if let Some(PendingCommand::Timer { deadline_ms }) = &record.pending
        && !record.lifecycle.timed_out
    {
        let followup = Followup {
            timed_out: true,
            ..Followup::default()
        };
        return Ok(Some(Interruption::Resume(
            Resume::Interrupted,
            vec![record::timer_key(*deadline_ms, id)],
            followup,
        )));
    }
    // As with a cancellation: the parent resumes with the child's result once it ended, and
    // the timeout reaches it at its next durable await.
    if waits_for_child(record) {
        return Ok(Some(Interruption::AwaitChild(Followup::default())));
    }
    *deadline = None;
    let (resume, consumed, followup) = timeout_resume(id, record.pending.as_ref(), now)?;
    Ok(Some(Interruption::Resume(resume, consumed, followup)))
}

/// What a cancellation request does to `record` at `now`. A sleep is cut short, once: the
/// cancellation stays pending and reaches the next durable await, where `ctx.run`,
/// `ctx.child` and `ctx.compensate` can report it as an error the workflow handles (a second
/// one ends the workflow, so a loop of sleeps cannot outrun it). A child the workflow must wait
/// for is waited for, the request kept. Anything else is cancelled now.
pub(crate) fn on_cancel_request(
    id: &str,
    record: &WorkflowRecord,
    now: SystemTime,
) -> Result<Interruption, EngineError> {
    let keep = || Followup {
        keep_cancel: true,
        ..Followup::default()
    };
    if let Some(PendingCommand::Timer { deadline_ms }) = &record.pending
        && !record.lifecycle.cancelled
    {
        return Ok(Interruption::Resume(
            Resume::Interrupted,
            vec![record::timer_key(*deadline_ms, id)],
            keep(),
        ));
    }
    if waits_for_child(record) {
        return Ok(Interruption::AwaitChild(keep()));
    }
    let (resume, consumed, followup) = cancel_resume(id, record.pending.as_ref(), now)?;
    Ok(Interruption::Resume(resume, consumed, followup))
}

/// What follows a failed attempt of an activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// The error is the activity's result: it is not retryable, the attempts are spent, the
    /// call was cancelled, or the next attempt would fall after the end of representable time.
    Final,
    /// The next attempt starts at this time.
    At(SystemTime),
}

/// Whether attempt `attempt` (1-based) of an activity under `policy`, failed with `error` at
/// `now`, is retried, and when. `cancelled` says whether the call was cancelled meanwhile.
pub(crate) fn retry(
    policy: &crate::activity::RetryPolicy,
    error: &ActivityError,
    attempt: u32,
    cancelled: bool,
    now: SystemTime,
) -> Retry {
    if !error.is_retryable() || attempt >= policy.max_attempts.max(1) || cancelled {
        return Retry::Final;
    }
    match now.checked_add(policy.backoff_after(attempt)) {
        Some(at) => Retry::At(at),
        None => Retry::Final,
    }
}

/// What is known of a pending command's outcome: read from storage (a queued signal, a child's
/// record) or from the clock, before [`ready`] decides.
pub(crate) enum Observed {
    /// Nothing that can resume it has been read (a timer is judged by the clock alone).
    Nothing,
    /// The first queued signal of the name it waits for (no other branch took it): its key
    /// and payload.
    Signal(Vec<u8>, Payload),
    /// A signal record queued before any of that name does not decode: its key and why.
    UnreadableSignal(Vec<u8>, record::RecordError),
    /// The child it waits for ended so.
    Child(Result<Payload, ChildError>),
}

/// A pending command found ready to resume the workflow.
#[derive(Debug)]
pub(crate) struct Ready {
    /// What it resumes with.
    pub resume: Resume,
    /// The key it consumes (its signal, its timer's index entry).
    pub consumes: Option<Vec<u8>>,
    /// For a signal, the key it read: its place in the queue.
    pub signal_key: Option<Vec<u8>>,
}

/// The readiness rule, one for top-level awaits and group branches alike: whether `pending`
/// resumes the workflow now, given the clock and what was observed for it. `Ok(None)`: not yet
/// (an activity is never ready here: its result comes from running it). `Err`: the workflow
/// parks (a signal that may be the one waited for does not decode: resuming with a later one,
/// or waiting on, could both be wrong, so the record is kept for an operator). `branch` says
/// whether `pending` is a group's branch, for the words of that fault.
pub(crate) fn ready(
    id: &str,
    pending: &PendingCommand,
    branch: bool,
    now_ms: u64,
    observed: Observed,
) -> Result<Option<Ready>, StepFault> {
    Ok(match (pending, observed) {
        (PendingCommand::Timer { deadline_ms }, _) => (now_ms >= *deadline_ms).then(|| Ready {
            resume: Resume::Timer,
            consumes: Some(record::timer_key(*deadline_ms, id)),
            signal_key: None,
        }),
        (PendingCommand::Signal { .. }, Observed::Signal(key, payload)) => Some(Ready {
            resume: Resume::Signal(payload),
            consumes: Some(key.clone()),
            signal_key: Some(key),
        }),
        (PendingCommand::Signal { name }, Observed::UnreadableSignal(key, error)) => {
            let waiter = if branch { "a branch" } else { "the workflow" };
            return Err(StepFault {
                code: "record.corrupt".into(),
                message: format!(
                    "{waiter} waits for signal `{name}` and the signal queued at `{}` does not decode ({error}); it is kept as stored: restore the store from a backup, or remove that record, then retry the workflow",
                    String::from_utf8_lossy(&key)
                ),
            });
        }
        (PendingCommand::Child { .. }, Observed::Child(result)) => Some(Ready {
            resume: Resume::Child(result),
            consumes: None,
            signal_key: None,
        }),
        _ => None,
    })
}

/// Which of the race branches found ready in one pass wins: its index among `candidates`
/// (each `(branch index, what it found)`).
///
/// A signal that was accepted is answered: ready signal branches beat the others, and among
/// them the signal that arrived first wins (queue keys sort in arrival order), whatever the
/// order the branches were written in. So `ctx.race((approve, reject))` resumes with `reject`
/// when it was sent before `approve`, even if both are queued by the time the workflow looks.
/// Otherwise (timers, children) the first branch listed wins.
pub(crate) fn race_winner<T>(candidates: &[(T, Ready)]) -> Option<usize> {
    let first_signal = candidates
        .iter()
        .enumerate()
        .filter_map(|(at, (_, ready))| ready.signal_key.as_ref().map(|key| (key, at)))
        .min()
        .map(|(_, at)| at);
    match first_signal {
        Some(at) => Some(at),
        None if candidates.is_empty() => None,
        None => Some(0),
    }
}

/// The value a group resumes the workflow with, once it is decided: a race's first branch with
/// a value, or every branch's value of an `all` whose branches all finished; `None` while it
/// waits.
pub(crate) fn group_value(
    race: bool,
    shape: GroupShape,
    branches: &[Branch],
) -> Option<Result<Payload, crate::workflow::StepError>> {
    if race {
        let index = branches.iter().position(|b| b.value.is_some())?;
        Some(crate::group::race_value(
            shape,
            index,
            branches[index].value.as_deref().unwrap_or_default(),
        ))
    } else if branches.iter().all(|b| b.value.is_some()) {
        let values: Vec<Payload> = branches
            .iter()
            .map(|b| b.value.clone().unwrap_or_default())
            .collect();
        Some(crate::group::all_value(shape, &values))
    } else {
        None
    }
}

/// The transition that records group branches finished meanwhile (with what they consumed) in
/// `record`, in place, before the group as a whole resumes the workflow: no step is taken. A
/// fault (a counter at its largest value) leaves `record` as it was.
pub(crate) fn group_progress(
    id: &str,
    record: &mut WorkflowRecord,
    pending: PendingCommand,
    consumed: Vec<Vec<u8>>,
    now: SystemTime,
) -> Result<Result<Plan, StepFault>, EngineError> {
    // A stored counter never wraps: at its largest value the workflow parks.
    let Some(signals_consumed) = record
        .signals_consumed
        .checked_add(signals_among(id, &consumed))
    else {
        return Ok(Err(StepFault::overflow("consumed signal counter")));
    };
    let (prev_status, prev_updated_ms) = (record.status.clone(), record.updated_ms);
    record.status = status_of(&pending);
    record.signals_consumed = signals_consumed;
    record.pending = Some(pending);
    record.updated_ms = to_millis(now);
    let mut batch = Batch::new();
    consume(id, record, consumed, &mut batch);
    let before = visibility::Before {
        status: &prev_status,
        updated_ms: prev_updated_ms,
        workflow_type: &record.workflow_type,
        version: record.version,
        fingerprint: record.fingerprint,
    };
    visibility::stage_rewrite_from(id, Some(before), record, &mut batch);
    batch.put(record::workflow_key(id), record::encode_record(&*record)?);
    Ok(Ok(Plan {
        batch,
        expect: Vec::new(),
        sweep: None,
        effects: Vec::new(),
    }))
}
#[cfg(test)]
mod tests {
    //! The planner driven without a store: each test states a record and what happened, and
    //! checks the record, the writes and the effects the planner decides.

    use std::time::{Duration, UNIX_EPOCH};

    use crate::storage::Write;

    use super::*;

    const ID: &str = "w";

    /// A configuration: a small payload limit, compensations with a recognisable policy.
    struct TestEnv;

    impl Env for TestEnv {
        fn payload_limit(&self) -> usize {
            64
        }

        fn compensation_options(&self, _name: &str) -> ActivityOptions {
            ActivityOptions {
                attempt_timeout: Some(Duration::from_secs(7)),
                ..ActivityOptions::default()
            }
        }
    }

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    /// A stored record at step 3, running activity `charge`.
    fn running() -> WorkflowRecord {
        WorkflowRecord {
            workflow_type: "t".into(),
            version: 1,
            fingerprint: 0,
            status: RecordStatus::Running,
            step: 3,
            state: Some(vec![1]),
            pending: Some(activity("charge")),
            created_ms: 1,
            updated_ms: 1,
            outcome: None,
            idempotency_key: None,
            last_resume: None,
            signals_consumed: 0,
            lifecycle: record::Lifecycle::default(),
        }
    }

    fn waiting_on(pending: PendingCommand) -> WorkflowRecord {
        WorkflowRecord {
            status: status_of(&pending),
            pending: Some(pending),
            ..running()
        }
    }

    fn activity(name: &str) -> PendingCommand {
        PendingCommand::Activity {
            name: name.into(),
            input: vec![0],
            options: ActivityOptions::default(),
        }
    }

    fn suspend(command: Command) -> Result<Stepped, StepFault> {
        Ok(Stepped::Suspend {
            state: vec![2],
            command,
        })
    }

    /// Plans a step of `prev` (which stays with the test: the planner takes a copy).
    fn plan(
        prev: &WorkflowRecord,
        stepped: Result<Stepped, StepFault>,
        kind: ResumeKind,
        consumed: Vec<Vec<u8>>,
        facts: Facts,
    ) -> Planned {
        planned(prev, stepped, kind, consumed, facts, None)
    }

    /// As [`plan`], for a step a runner resumed with `resumed`.
    fn plan_resumed(
        prev: &WorkflowRecord,
        stepped: Result<Stepped, StepFault>,
        kind: ResumeKind,
        consumed: Vec<Vec<u8>>,
        facts: Facts,
        resumed: Resumed,
    ) -> Planned {
        planned(prev, stepped, kind, consumed, facts, Some(resumed))
    }

    fn planned(
        prev: &WorkflowRecord,
        stepped: Result<Stepped, StepFault>,
        kind: ResumeKind,
        consumed: Vec<Vec<u8>>,
        facts: Facts,
        resumed: Option<Resumed>,
    ) -> Planned {
        run(
            prev.clone(),
            Input {
                stored: true,
                stepped,
                effects: StepEffects::default(),
                kind,
                consumed,
                now: at(1_000),
                resumed,
                facts,
            },
        )
    }

    /// The inputs of a step but its record (which [`run`] takes) and its attributes (none).
    struct Input {
        stored: bool,
        stepped: Result<Stepped, StepFault>,
        effects: StepEffects,
        kind: ResumeKind,
        consumed: Vec<Vec<u8>>,
        now: SystemTime,
        resumed: Option<Resumed>,
        facts: Facts,
    }

    /// A plan with the record it rewrote.
    struct Planned {
        record: WorkflowRecord,
        batch: Batch,
        expect: Vec<Expect>,
        sweep: Option<Vec<u8>>,
        effects: Vec<Effect>,
    }

    /// Plans a step of `record`.
    fn run(mut record: WorkflowRecord, input: Input) -> Planned {
        let plan = super::step(
            &TestEnv,
            Step {
                id: ID,
                record: &mut record,
                stored: input.stored,
                stepped: input.stepped,
                effects: input.effects,
                attributes: BTreeMap::new(),
                kind: input.kind,
                consumed: input.consumed,
                now: input.now,
                resumed: input.resumed,
            },
            input.facts,
        )
        .unwrap();
        Planned {
            record,
            batch: plan.batch,
            expect: plan.expect,
            sweep: plan.sweep,
            effects: plan.effects,
        }
    }

    fn effects(plan: &Planned) -> Vec<String> {
        plan.effects.iter().map(|e| format!("{e:?}")).collect()
    }

    fn puts(batch: &Batch, key: &[u8]) -> bool {
        batch
            .writes
            .iter()
            .any(|w| matches!(w, Write::Put(k, _) if k == key))
    }

    fn deletes(batch: &Batch, key: &[u8]) -> bool {
        batch
            .writes
            .iter()
            .any(|w| matches!(w, Write::Delete(k) if k == key))
    }

    /// The record the batch writes is the plan's record.
    fn written(plan: &Planned) -> WorkflowRecord {
        let key = record::workflow_key(ID);
        plan.batch
            .writes
            .iter()
            .find_map(|w| match w {
                Write::Put(k, v) if *k == key => Some(record::decode_record(v).unwrap()),
                _ => None,
            })
            .expect("the record is written")
    }

    #[test]
    fn a_step_that_completes_finishes_the_workflow_and_tells_its_waiters() {
        let plan = plan(
            &running(),
            Ok(Stepped::Output(vec![9])),
            ResumeKind::Activity,
            Vec::new(),
            Facts::default(),
        );
        assert_eq!(plan.record.status, RecordStatus::Completed);
        assert_eq!(plan.record.outcome, Some(Outcome::Output(vec![9])));
        assert_eq!(plan.record.step, 4);
        assert_eq!(plan.record.state, None);
        assert_eq!(plan.record.pending, None);
        assert_eq!(plan.record.updated_ms, 1_000);
        assert_eq!(written(&plan), plan.record);
        // It leaves the live index, its kept activity result goes, its queue is swept.
        assert!(deletes(&plan.batch, &record::live_key(ID)));
        assert!(deletes(&plan.batch, &record::activity_result_key(ID)));
        assert_eq!(plan.sweep, Some(record::signal_queue_prefix(ID)));
        assert!(plan.expect.is_empty());
        assert_eq!(effects(&plan), ["Finished(\"w\")", "DisarmAll(\"w\")"]);
    }

    #[test]
    fn a_finished_child_wakes_its_parent() {
        let mut prev = running();
        prev.lifecycle.parent = Some("p".into());
        prev.lifecycle.deadline_ms = Some(5_000);
        let plan = plan(
            &prev,
            Ok(Stepped::Error {
                payload: vec![1],
                message: "no".into(),
            }),
            ResumeKind::Activity,
            Vec::new(),
            Facts::default(),
        );
        assert_eq!(plan.record.status, RecordStatus::Failed);
        // The link stays (the parent reads the result); the deadline goes with the workflow.
        assert_eq!(plan.record.lifecycle.parent.as_deref(), Some("p"));
        assert_eq!(plan.record.lifecycle.deadline_ms, None);
        assert_eq!(
            effects(&plan),
            ["Finished(\"w\")", "DisarmAll(\"w\")", "Wake(\"p\")"]
        );
    }

    #[test]
    fn a_step_that_runs_an_activity_sets_nothing_in_motion() {
        let plan = plan(
            &running(),
            suspend(Command::Activity {
                name: "ship",
                input: vec![3],
                options: ActivityOptions::default(),
            }),
            ResumeKind::Activity,
            Vec::new(),
            Facts::default(),
        );
        assert_eq!(plan.record.status, RecordStatus::Running);
        assert_eq!(plan.record.pending, Some(activity_with("ship", vec![3])));
        assert_eq!(plan.record.state, Some(vec![2]));
        assert_eq!(plan.record.last_resume, Some(ResumeKind::Activity));
        assert_eq!(plan.sweep, None);
        // The hot path: nothing to run after the commit, not even an allocation for it.
        assert!(plan.effects.is_empty());
        assert_eq!(plan.effects.capacity(), 0);
    }

    fn activity_with(name: &str, input: Vec<u8>) -> PendingCommand {
        PendingCommand::Activity {
            name: name.into(),
            input,
            options: ActivityOptions::default(),
        }
    }

    #[test]
    fn a_compensation_takes_the_options_of_its_activity() {
        let plan = plan(
            &running(),
            suspend(Command::Compensate {
                activity: "refund".into(),
                input: vec![4],
            }),
            ResumeKind::Activity,
            Vec::new(),
            Facts::default(),
        );
        match plan.record.pending {
            Some(PendingCommand::Activity { name, options, .. }) => {
                assert_eq!(name, "refund");
                assert_eq!(options.attempt_timeout, Some(Duration::from_secs(7)));
            }
            other => panic!("not an activity: {other:?}"),
        }
    }

    #[test]
    fn a_step_that_waits_on_a_signal_waits() {
        let plan = plan(
            &running(),
            suspend(Command::WaitForSignal { name: "approve" }),
            ResumeKind::Activity,
            Vec::new(),
            Facts::default(),
        );
        assert_eq!(plan.record.status, RecordStatus::Waiting);
        assert_eq!(
            plan.record.pending,
            Some(PendingCommand::Signal {
                name: "approve".into()
            })
        );
        assert!(plan.effects.is_empty());
    }

    #[test]
    fn a_signal_wait_is_ready_once_its_signal_is_queued() {
        let pending = PendingCommand::Signal {
            name: "approve".into(),
        };
        // Not yet queued: it waits.
        assert!(
            ready(ID, &pending, false, 0, Observed::Nothing)
                .unwrap()
                .is_none()
        );
        // Queued: it resumes with the payload and consumes the signal.
        let key = record::signal_key(ID, 1, 1);
        let ready = ready(
            ID,
            &pending,
            false,
            0,
            Observed::Signal(key.clone(), vec![5]),
        )
        .unwrap()
        .expect("ready");
        assert_eq!(ready.resume, Resume::Signal(vec![5]));
        assert_eq!(ready.consumes, Some(key.clone()));
        assert_eq!(ready.signal_key, Some(key.clone()));
        // Resuming with it consumes it and counts it.
        let prev = waiting_on(pending);
        let plan = plan(
            &prev,
            Ok(Stepped::Output(vec![])),
            ResumeKind::Signal,
            vec![key.clone()],
            Facts::default(),
        );
        assert!(deletes(&plan.batch, &key));
        assert_eq!(plan.record.signals_consumed, 1);
    }

    #[test]
    fn an_unreadable_signal_before_any_of_the_name_parks() {
        let pending = PendingCommand::Signal { name: "s".into() };
        let key = record::signal_key(ID, 1, 1);
        let observed = || Observed::UnreadableSignal(key.clone(), record::RecordError::Empty);
        let fault = ready(ID, &pending, false, 0, observed()).unwrap_err();
        assert_eq!(fault.code, "record.corrupt");
        assert!(
            fault
                .message
                .starts_with("the workflow waits for signal `s`")
        );
        let fault = ready(ID, &pending, true, 0, observed()).unwrap_err();
        assert!(fault.message.starts_with("a branch waits for signal `s`"));
    }

    #[test]
    fn a_timer_is_armed_by_its_step_and_fired_by_the_clock() {
        let plan = plan(
            &running(),
            suspend(Command::Sleep {
                duration: Duration::from_secs(5),
            }),
            ResumeKind::Activity,
            Vec::new(),
            Facts::default(),
        );
        let timer = PendingCommand::Timer { deadline_ms: 6_000 };
        assert_eq!(plan.record.pending, Some(timer.clone()));
        assert_eq!(plan.record.status, RecordStatus::Waiting);
        assert!(puts(&plan.batch, &record::timer_key(6_000, ID)));
        // Armed in memory by the runner that finds it not yet due: no effect of the commit.
        assert!(plan.effects.is_empty());

        // Due at its deadline, not a millisecond before.
        assert!(
            ready(ID, &timer, false, 5_999, Observed::Nothing)
                .unwrap()
                .is_none()
        );
        let fired = ready(ID, &timer, false, 6_000, Observed::Nothing)
            .unwrap()
            .expect("due");
        assert_eq!(fired.resume, Resume::Timer);
        assert_eq!(fired.consumes, Some(record::timer_key(6_000, ID)));

        // The step it resumes deletes its entry, and the in-memory timer is disarmed.
        let prev = plan.record;
        let next = run(
            prev.clone(),
            Input {
                stored: true,
                stepped: suspend(Command::WaitForSignal { name: "s" }),
                effects: StepEffects::default(),
                kind: ResumeKind::Timer,
                consumed: fired.consumes.into_iter().collect(),
                now: at(6_000),
                resumed: None,
                facts: Facts::default(),
            },
        );
        assert!(deletes(&next.batch, &record::timer_key(6_000, ID)));
        assert_eq!(effects(&next), ["Disarm { deadline_ms: 6000, id: \"w\" }"]);
    }

    #[test]
    fn a_sleep_that_reschedules_its_own_timer_keeps_it_armed() {
        // A timer deleted and put again in one batch is not disarmed.
        let prev = waiting_on(PendingCommand::Timer { deadline_ms: 2_000 });
        let plan = run(
            prev.clone(),
            Input {
                stored: true,
                stepped: suspend(Command::Sleep {
                    duration: Duration::from_millis(1_000),
                }),
                effects: StepEffects::default(),
                kind: ResumeKind::Cancelled,
                consumed: Vec::new(),
                now: at(1_000),
                resumed: None,
                facts: Facts::default(),
            },
        );
        assert!(puts(&plan.batch, &record::timer_key(2_000, ID)));
        assert!(plan.effects.is_empty());
    }

    #[test]
    fn a_delivered_cancellation_is_folded_out_of_the_record() {
        let mut prev = waiting_on(PendingCommand::Timer { deadline_ms: 9_000 });
        prev.lifecycle.cancel_requested_ms = Some(500);
        let consumed = vec![record::cancel_key(ID), record::timer_key(9_000, ID)];
        let plan = plan_resumed(
            &prev,
            suspend(Command::WaitForSignal { name: "s" }),
            ResumeKind::Cancelled,
            consumed,
            Facts::default(),
            Resumed {
                followup: Followup {
                    keep_cancel: true,
                    ..Followup::default()
                },
                activity_result: None,
                expect: Vec::new(),
            },
        );
        assert_eq!(plan.record.lifecycle.cancel_requested_ms, None);
        // Not finished: it goes on knowing it was cancelled.
        assert!(plan.record.lifecycle.cancelled);
        // The request's key stays as a delete: the writer learns it was delivered.
        assert!(deletes(&plan.batch, &record::cancel_key(ID)));
        // Cut short as a sleep, the cancellation stays pending for the next await.
        assert_eq!(
            effects(&plan),
            [
                "Disarm { deadline_ms: 9000, id: \"w\" }",
                "KeepCancel(\"w\")"
            ]
        );
    }

    #[test]
    fn a_cancelled_workflow_that_fails_ends_cancelled_or_timed_out() {
        let prev = running();
        let error = || {
            Ok(Stepped::Error {
                payload: vec![],
                message: "stop".into(),
            })
        };
        let cancelled = plan(
            &prev,
            error(),
            ResumeKind::Cancelled,
            vec![],
            Facts::default(),
        );
        assert_eq!(cancelled.record.status, RecordStatus::Cancelled);
        let timed_out = plan(
            &prev,
            error(),
            ResumeKind::TimedOut,
            vec![],
            Facts::default(),
        );
        assert_eq!(timed_out.record.status, RecordStatus::TimedOut);
        let ended = plan(
            &prev,
            Ok(Stepped::Cancelled),
            ResumeKind::Cancelled,
            vec![],
            Facts::default(),
        );
        assert_eq!(ended.record.outcome, Some(Outcome::Cancelled));
    }

    #[test]
    fn a_cancellation_stops_a_group_s_timers_and_cancels_its_children_per_policy() {
        let pending = PendingCommand::Group {
            race: true,
            shape: GroupShape::Tuple,
            branches: vec![
                Branch {
                    pending: PendingCommand::Timer { deadline_ms: 7_000 },
                    value: None,
                },
                Branch {
                    pending: PendingCommand::Child {
                        child_id: "w/3.1".into(),
                        policy: ParentClosePolicy::RequestCancel,
                    },
                    value: None,
                },
                Branch {
                    pending: PendingCommand::Child {
                        child_id: "w/3.2".into(),
                        policy: ParentClosePolicy::Abandon,
                    },
                    value: None,
                },
                Branch {
                    // Finished already: nothing to stop.
                    pending: PendingCommand::Timer { deadline_ms: 1_000 },
                    value: Some(vec![]),
                },
            ],
        };
        let mut consumed = vec![record::cancel_key(ID)];
        let followup = on_cancel(ID, Some(&pending), at(2_000), &mut consumed).unwrap();
        assert_eq!(
            consumed,
            [record::cancel_key(ID), record::timer_key(7_000, ID)]
        );
        assert_eq!(followup.cancel_children, ["w/3.1"]);
        assert!(puts(&followup.writes, &record::cancel_key("w/3.1")));
        assert_eq!(followup.writes.writes.len(), 1);

        let prev = waiting_on(pending);
        let plan = plan_resumed(
            &prev,
            Ok(Stepped::Cancelled),
            ResumeKind::Cancelled,
            consumed,
            Facts::default(),
            Resumed {
                followup,
                activity_result: None,
                expect: Vec::new(),
            },
        );
        assert!(puts(&plan.batch, &record::cancel_key("w/3.1")));
        assert_eq!(
            effects(&plan),
            [
                "Disarm { deadline_ms: 7000, id: \"w\" }",
                "Finished(\"w\")",
                "DisarmAll(\"w\")",
                "Cancel(\"w/3.1\")",
            ]
        );
    }

    #[test]
    fn a_step_that_starts_a_child_creates_it_and_wakes_it_once_durable() {
        let mut child = Batch::new();
        child.put(record::workflow_key("w/4"), vec![1]);
        let plan = plan(
            &running(),
            suspend(Command::Child {
                workflow: "c",
                input: vec![],
                policy: ParentClosePolicy::Wait,
                execution_timeout: None,
            }),
            ResumeKind::Activity,
            Vec::new(),
            Facts {
                children: vec![ChildStart::Created(child)],
                ..Facts::default()
            },
        );
        assert_eq!(parent_child_id(ID, 4, None), "w/4");
        assert_eq!(
            plan.record.pending,
            Some(PendingCommand::Child {
                child_id: "w/4".into(),
                policy: ParentClosePolicy::Wait,
            })
        );
        assert_eq!(plan.record.status, RecordStatus::Waiting);
        assert!(puts(&plan.batch, &record::workflow_key("w/4")));
        assert!(puts(&plan.batch, &record::child_key(ID, "w/4")));
        assert_eq!(effects(&plan), ["Wake(\"w/4\")"]);
    }

    #[test]
    fn a_child_taken_again_is_not_created_again_and_one_that_cannot_start_parks() {
        let command = || {
            suspend(Command::Child {
                workflow: "c",
                input: vec![],
                policy: ParentClosePolicy::Wait,
                execution_timeout: None,
            })
        };
        let exists = plan(
            &running(),
            command(),
            ResumeKind::Activity,
            Vec::new(),
            Facts {
                children: vec![ChildStart::Exists],
                ..Facts::default()
            },
        );
        assert!(!puts(&exists.batch, &record::child_key(ID, "w/4")));
        let fault = StepFault {
            code: "child.not_registered".into(),
            message: "no".into(),
        };
        let parked = plan(
            &running(),
            command(),
            ResumeKind::Activity,
            Vec::new(),
            Facts {
                children: vec![ChildStart::Fault(fault)],
                ..Facts::default()
            },
        );
        assert!(matches!(
            &parked.record.status,
            RecordStatus::Parked { code, .. } if code == "child.not_registered"
        ));
        // Parked where it stood: state and pending command kept, step not taken.
        assert_eq!(parked.record.step, 3);
        assert_eq!(parked.record.pending, running().pending);
        assert_eq!(effects(&parked), ["Changed(\"w\")"]);
    }

    #[test]
    fn a_finished_child_is_ready_with_its_result() {
        let pending = PendingCommand::Child {
            child_id: "w/4".into(),
            policy: ParentClosePolicy::Wait,
        };
        assert!(
            ready(ID, &pending, false, 0, Observed::Nothing)
                .unwrap()
                .is_none()
        );
        let done = ready(
            ID,
            &pending,
            false,
            0,
            Observed::Child(Err(ChildError::Cancelled)),
        )
        .unwrap()
        .expect("ready");
        assert_eq!(done.resume, Resume::Child(Err(ChildError::Cancelled)));
        assert_eq!(done.consumes, None);
    }

    fn signal_ready(key: Vec<u8>) -> Ready {
        Ready {
            resume: Resume::Signal(vec![]),
            consumes: Some(key.clone()),
            signal_key: Some(key),
        }
    }

    fn timer_ready() -> Ready {
        Ready {
            resume: Resume::Timer,
            consumes: None,
            signal_key: None,
        }
    }

    #[test]
    fn a_race_of_signals_takes_the_one_that_arrived_first() {
        let approve = record::signal_key(ID, 1, 2);
        let reject = record::signal_key(ID, 1, 1);
        // `approve` is listed first, `reject` was sent first.
        let candidates = [(0, signal_ready(approve)), (1, signal_ready(reject))];
        assert_eq!(race_winner(&candidates), Some(1));
        // A ready signal beats a timer listed before it.
        let candidates = [
            (0, timer_ready()),
            (1, signal_ready(record::signal_key(ID, 1, 3))),
        ];
        assert_eq!(race_winner(&candidates), Some(1));
        // Otherwise the first listed wins.
        assert_eq!(
            race_winner(&[(0, timer_ready()), (1, timer_ready())]),
            Some(0)
        );
        assert_eq!(race_winner::<usize>(&[]), None);
    }

    #[test]
    fn a_group_resumes_when_its_race_is_won_or_all_its_branches_finished() {
        let branch = |value: Option<Vec<u8>>| Branch {
            pending: PendingCommand::Timer { deadline_ms: 1 },
            value,
        };
        let shape = GroupShape::Tuple;
        let none = [branch(None), branch(None)];
        let one = [branch(None), branch(Some(vec![7]))];
        let both = [branch(Some(vec![1])), branch(Some(vec![2]))];
        assert!(group_value(true, shape, &none).is_none());
        assert_eq!(
            group_value(true, shape, &one).unwrap().unwrap(),
            crate::group::race_value(shape, 1, &[7]).unwrap()
        );
        assert!(group_value(false, shape, &one).is_none());
        assert_eq!(
            group_value(false, shape, &both).unwrap().unwrap(),
            crate::group::all_value(shape, &[vec![1], vec![2]]).unwrap()
        );
    }

    #[test]
    fn a_step_that_awaits_a_group_plans_each_branch() {
        let plan = plan(
            &running(),
            suspend(Command::Race {
                branches: vec![
                    Command::WaitForSignal { name: "approve" },
                    Command::Sleep {
                        duration: Duration::from_secs(1),
                    },
                    Command::Child {
                        workflow: "c",
                        input: vec![],
                        policy: ParentClosePolicy::RequestCancel,
                        execution_timeout: None,
                    },
                ],
                shape: GroupShape::Tuple,
            }),
            ResumeKind::Activity,
            Vec::new(),
            Facts {
                children: vec![ChildStart::Created(Batch::new())],
                ..Facts::default()
            },
        );
        // Signals, timers and children only: the workflow waits (listed as Waiting).
        assert_eq!(plan.record.status, RecordStatus::Waiting);
        let Some(PendingCommand::Group { race, branches, .. }) = &plan.record.pending else {
            panic!("not a group: {:?}", plan.record.pending);
        };
        assert!(race);
        assert_eq!(
            branches
                .iter()
                .map(|b| b.pending.clone())
                .collect::<Vec<_>>(),
            [
                PendingCommand::Signal {
                    name: "approve".into()
                },
                PendingCommand::Timer { deadline_ms: 2_000 },
                PendingCommand::Child {
                    child_id: "w/4.2".into(),
                    policy: ParentClosePolicy::RequestCancel,
                },
            ]
        );
        assert!(puts(&plan.batch, &record::timer_key(2_000, ID)));
        assert!(puts(&plan.batch, &record::child_key(ID, "w/4.2")));
        assert_eq!(effects(&plan), ["Wake(\"w/4.2\")"]);
    }

    #[test]
    fn an_all_with_an_activity_runs_and_malformed_groups_park() {
        let all = plan(
            &running(),
            suspend(Command::All {
                branches: vec![
                    Command::Activity {
                        name: "a",
                        input: vec![],
                        options: ActivityOptions::default(),
                    },
                    Command::WaitForSignal { name: "s" },
                ],
                shape: GroupShape::List,
            }),
            ResumeKind::Activity,
            Vec::new(),
            Facts::default(),
        );
        assert_eq!(all.record.status, RecordStatus::Running);
        let code = |plan: &Planned| match &plan.record.status {
            RecordStatus::Parked { code, .. } => code.clone(),
            other => panic!("not parked: {other:?}"),
        };
        let empty_race = plan(
            &running(),
            suspend(Command::Race {
                branches: vec![],
                shape: GroupShape::List,
            }),
            ResumeKind::Activity,
            Vec::new(),
            Facts::default(),
        );
        assert_eq!(code(&empty_race), "engine.empty_race");
        let nested = plan(
            &running(),
            suspend(Command::All {
                branches: vec![Command::All {
                    branches: vec![],
                    shape: GroupShape::List,
                }],
                shape: GroupShape::List,
            }),
            ResumeKind::Activity,
            Vec::new(),
            Facts::default(),
        );
        assert_eq!(code(&nested), "engine.nested_group");
    }

    #[test]
    fn finished_branches_are_recorded_before_the_group_resumes() {
        let key = record::signal_key(ID, 1, 1);
        let prev = waiting_on(PendingCommand::Group {
            race: false,
            shape: GroupShape::Tuple,
            branches: vec![Branch {
                pending: PendingCommand::Signal { name: "s".into() },
                value: None,
            }],
        });
        let progressed = PendingCommand::Group {
            race: false,
            shape: GroupShape::Tuple,
            branches: vec![Branch {
                pending: PendingCommand::Signal { name: "s".into() },
                value: Some(vec![1]),
            }],
        };
        let mut record = prev.clone();
        let plan = group_progress(
            ID,
            &mut record,
            progressed.clone(),
            vec![key.clone()],
            at(50),
        )
        .unwrap()
        .unwrap();
        let plan = Planned {
            record,
            batch: plan.batch,
            expect: plan.expect,
            sweep: plan.sweep,
            effects: plan.effects,
        };
        // No step is taken; the branch's value and its signal are committed.
        assert_eq!(plan.record.step, prev.step);
        assert_eq!(plan.record.pending, Some(progressed.clone()));
        assert_eq!(plan.record.signals_consumed, 1);
        assert!(deletes(&plan.batch, &key));
        assert_eq!(written(&plan), plan.record);
        // A counter at its largest value parks instead of wrapping.
        let full = WorkflowRecord {
            signals_consumed: u64::MAX,
            ..prev
        };
        let mut record = full.clone();
        let fault = group_progress(ID, &mut record, progressed, vec![key], at(50))
            .unwrap()
            .unwrap_err();
        assert_eq!(fault.code, "engine.counter_overflow");
        // Left as it was.
        assert_eq!(record, full);
    }

    #[test]
    fn an_activity_result_is_kept_when_its_step_parks_and_its_attempts_go_when_it_commits() {
        let result = Ok(vec![1]);
        // The state is over the payload limit: the step parks.
        let too_big = Ok(Stepped::Suspend {
            state: vec![0; 65],
            command: Command::WaitForSignal { name: "s" },
        });
        let prev = running();
        let parked = plan_resumed(
            &prev,
            too_big,
            ResumeKind::Activity,
            vec![],
            Facts::default(),
            Resumed {
                followup: Followup::default(),
                activity_result: Some(result.clone()),
                expect: Vec::new(),
            },
        );
        assert!(matches!(
            &parked.record.status,
            RecordStatus::Parked { code, .. } if code == "engine.payload_too_large"
        ));
        assert!(puts(&parked.batch, &record::activity_result_key(ID)));

        let expect = vec![Expect {
            key: record::review_key(ID),
            value: None,
        }];
        let committed = plan_resumed(
            &prev,
            Ok(Stepped::Output(vec![])),
            ResumeKind::Activity,
            vec![],
            Facts::default(),
            Resumed {
                followup: Followup::default(),
                activity_result: Some(result),
                expect: expect.clone(),
            },
        );
        assert!(!puts(&committed.batch, &record::activity_result_key(ID)));
        assert!(deletes(&committed.batch, &record::attempt_key(ID, None)));
        assert_eq!(committed.expect, expect);
    }

    #[test]
    fn an_update_is_answered_once() {
        let answer = |answered: Vec<String>| {
            run(
                running(),
                Input {
                    stored: true,
                    stepped: suspend(Command::WaitForSignal { name: "s" }),
                    effects: StepEffects {
                        responses: vec![Ok(("u1".into(), vec![8]))],
                        review: None,
                    },
                    kind: ResumeKind::Signal,
                    consumed: Vec::new(),
                    now: at(1_000),
                    resumed: None,
                    facts: Facts {
                        answered,
                        ..Facts::default()
                    },
                },
            )
        };
        let first = answer(Vec::new());
        assert!(puts(&first.batch, &record::update_response_key(ID, "u1")));
        // Its caller waits on the workflow's waiters.
        assert_eq!(effects(&first), ["Changed(\"w\")"]);
        let again = answer(vec!["u1".into()]);
        assert!(!puts(&again.batch, &record::update_response_key(ID, "u1")));
    }

    #[test]
    fn a_first_step_joins_the_live_index_and_a_fault_parks_it_there() {
        let created = WorkflowRecord {
            step: 0,
            pending: None,
            ..running()
        };
        let start = |stepped| {
            run(
                created.clone(),
                Input {
                    stored: false,
                    stepped,
                    effects: StepEffects::default(),
                    kind: ResumeKind::Start,
                    consumed: Vec::new(),
                    now: at(1_000),
                    resumed: None,
                    facts: Facts::default(),
                },
            )
        };
        let started = start(suspend(Command::WaitForSignal { name: "s" }));
        assert!(puts(&started.batch, &record::live_key(ID)));
        assert_eq!(started.record.step, 1);
        let faulted = start(Err(StepFault {
            code: "workflow.panicked".into(),
            message: "boom".into(),
        }));
        assert!(puts(&faulted.batch, &record::live_key(ID)));
        assert!(matches!(faulted.record.status, RecordStatus::Parked { .. }));
        assert_eq!(faulted.record.step, 0);
    }

    #[test]
    fn status_follows_what_the_pending_command_runs() {
        assert_eq!(status_of(&activity("a")), RecordStatus::Running);
        assert_eq!(
            status_of(&PendingCommand::Timer { deadline_ms: 1 }),
            RecordStatus::Waiting
        );
        let group = |value: Option<Vec<u8>>| PendingCommand::Group {
            race: false,
            shape: GroupShape::List,
            branches: vec![Branch {
                pending: activity("a"),
                value,
            }],
        };
        assert_eq!(status_of(&group(None)), RecordStatus::Running);
        // Its activity finished: only waiting is left.
        assert_eq!(status_of(&group(Some(vec![]))), RecordStatus::Waiting);
    }

    fn resume_of(interruption: Interruption) -> (Resume, Vec<Vec<u8>>, Followup) {
        match interruption {
            Interruption::Resume(resume, consumed, followup) => (resume, consumed, followup),
            other => panic!("not a resume: {other:?}"),
        }
    }

    #[test]
    fn an_execution_deadline_cuts_a_sleep_short_once_then_is_delivered() {
        let mut deadline = Some(5_000);
        let sleeping = waiting_on(PendingCommand::Timer { deadline_ms: 9_000 });
        // Not yet passed: nothing.
        assert!(
            on_deadline(ID, &sleeping, at(4_999), &mut deadline)
                .unwrap()
                .is_none()
        );
        // Passed: the sleep is cut short, the deadline stays for the next await.
        let (resume, consumed, followup) = resume_of(
            on_deadline(ID, &sleeping, at(5_000), &mut deadline)
                .unwrap()
                .unwrap(),
        );
        assert_eq!(resume, Resume::Interrupted);
        assert_eq!(consumed, [record::timer_key(9_000, ID)]);
        assert!(followup.timed_out);
        assert_eq!(deadline, Some(5_000));
        // Once cut short, the next sleep gets the timeout itself, delivered once.
        let mut again = sleeping.clone();
        again.lifecycle.timed_out = true;
        let (resume, consumed, followup) = resume_of(
            on_deadline(ID, &again, at(5_000), &mut deadline)
                .unwrap()
                .unwrap(),
        );
        assert_eq!(resume, Resume::Cancelled);
        // (The sleep's own timer goes with the step, as the pending command it leaves.)
        assert_eq!(consumed, [record::deadline_key(ID)]);
        assert!(followup.timed_out);
        assert_eq!(deadline, None);
        assert!(
            on_deadline(ID, &again, at(6_000), &mut deadline)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn an_interruption_waits_for_a_child_the_workflow_must_wait_for() {
        let child = |policy| {
            waiting_on(PendingCommand::Child {
                child_id: "w/3".into(),
                policy,
            })
        };
        let mut deadline = Some(1);
        let waiting = child(ParentClosePolicy::Wait);
        assert!(matches!(
            on_deadline(ID, &waiting, at(2), &mut deadline).unwrap(),
            Some(Interruption::AwaitChild(Followup {
                keep_cancel: false,
                ..
            }))
        ));
        // Kept until the child ends.
        assert_eq!(deadline, Some(1));
        assert!(matches!(
            on_cancel_request(ID, &waiting, at(2)).unwrap(),
            Interruption::AwaitChild(Followup {
                keep_cancel: true,
                ..
            })
        ));
        // A child under `RequestCancel` is cancelled with its parent.
        let cancelling = child(ParentClosePolicy::RequestCancel);
        let (resume, consumed, followup) =
            resume_of(on_cancel_request(ID, &cancelling, at(2)).unwrap());
        assert_eq!(resume, Resume::Cancelled);
        assert_eq!(consumed, [record::cancel_key(ID)]);
        assert_eq!(followup.cancel_children, ["w/3"]);
    }

    #[test]
    fn a_cancellation_cuts_a_sleep_short_once_and_reaches_an_activity_at_once() {
        let sleeping = waiting_on(PendingCommand::Timer { deadline_ms: 9_000 });
        let (resume, consumed, followup) =
            resume_of(on_cancel_request(ID, &sleeping, at(1)).unwrap());
        assert_eq!(resume, Resume::Interrupted);
        assert_eq!(consumed, [record::timer_key(9_000, ID)]);
        assert!(followup.keep_cancel);
        let mut again = sleeping;
        again.lifecycle.cancelled = true;
        let (resume, consumed, _) = resume_of(on_cancel_request(ID, &again, at(1)).unwrap());
        assert_eq!(resume, Resume::Cancelled);
        assert_eq!(consumed, [record::cancel_key(ID)]);
        let (resume, consumed, followup) =
            resume_of(on_cancel_request(ID, &running(), at(1)).unwrap());
        assert_eq!(resume, Resume::Cancelled);
        assert_eq!(consumed, [record::cancel_key(ID)]);
        assert!(!followup.keep_cancel && followup.writes.is_empty());
    }

    #[test]
    fn a_failed_attempt_is_retried_after_its_backoff_until_the_attempts_are_spent() {
        let policy = crate::activity::RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(100),
            backoff_percent: 200,
            max_backoff: Duration::from_secs(1),
        };
        let failed = ActivityError::failed("down");
        assert_eq!(
            retry(&policy, &failed, 1, false, at(1_000)),
            Retry::At(at(1_100))
        );
        assert_eq!(
            retry(&policy, &failed, 2, false, at(1_000)),
            Retry::At(at(1_200))
        );
        // The third attempt was the last.
        assert_eq!(retry(&policy, &failed, 3, false, at(1_000)), Retry::Final);
        // Not retryable, or cancelled: final at once.
        let fatal = ActivityError::non_retryable("bad input");
        assert_eq!(retry(&policy, &fatal, 1, false, at(1_000)), Retry::Final);
        assert_eq!(retry(&policy, &failed, 1, true, at(1_000)), Retry::Final);
        // A policy of zero attempts runs one.
        let none = crate::activity::RetryPolicy {
            max_attempts: 0,
            ..policy
        };
        assert_eq!(retry(&none, &failed, 1, false, at(1_000)), Retry::Final);
    }

    #[test]
    fn most_steps_plan_without_reading_anything() {
        let needs = |stepped, kind| {
            let mut record = running();
            needs_facts(&Step {
                id: ID,
                record: &mut record,
                stored: true,
                stepped,
                effects: StepEffects::default(),
                attributes: BTreeMap::new(),
                kind,
                consumed: Vec::new(),
                now: at(1),
                resumed: None,
            })
        };
        let run = || {
            suspend(Command::Activity {
                name: "a",
                input: vec![],
                options: ActivityOptions::default(),
            })
        };
        assert!(!needs(run(), ResumeKind::Activity));
        assert!(!needs(Ok(Stepped::Output(vec![])), ResumeKind::Signal));
        // A group's resume may end a review; a child is prepared.
        assert!(needs(run(), ResumeKind::Group));
        let child = Command::Child {
            workflow: "c",
            input: vec![],
            policy: ParentClosePolicy::Wait,
            execution_timeout: None,
        };
        let all = Command::All {
            branches: vec![child],
            shape: GroupShape::List,
        };
        assert!(needs(suspend(all), ResumeKind::Activity));
        // A step that cannot run parks: nothing to read.
        let fault = Err(StepFault {
            code: "x".into(),
            message: "y".into(),
        });
        assert!(!needs(fault, ResumeKind::Group));
    }
}
