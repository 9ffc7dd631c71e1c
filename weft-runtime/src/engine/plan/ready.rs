//! Readiness: whether a pending command (a top-level await or a group's branch, by one rule)
//! resumes the workflow now, which branch wins a race, what a group resumes with, and what its
//! finished branches commit meanwhile.

use std::time::SystemTime;

use crate::child::ChildError;
use crate::codec::Payload;
use crate::group::GroupShape;
use crate::storage::Batch;
use crate::workflow::Resume;

use super::super::clock::to_millis;
use super::super::error::EngineError;
use super::super::record::{self, Branch, Partition, PendingCommand, WorkflowRecord};
use super::super::registry::StepFault;
use super::super::visibility;
use super::{Plan, consume, signals_among, status_of};

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
    p: Partition,
    id: &str,
    pending: &PendingCommand,
    branch: bool,
    now_ms: u64,
    observed: Observed,
) -> Result<Option<Ready>, StepFault> {
    Ok(match (pending, observed) {
        (PendingCommand::Timer { deadline_ms }, _) => (now_ms >= *deadline_ms).then(|| Ready {
            resume: Resume::Timer,
            consumes: Some(record::timer_key(p, *deadline_ms, id)),
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
    p: Partition,
    id: &str,
    record: &mut WorkflowRecord,
    pending: PendingCommand,
    consumed: Vec<Vec<u8>>,
    now: SystemTime,
) -> Result<Result<Plan, StepFault>, EngineError> {
    // A stored counter never wraps: at its largest value the workflow parks.
    let Some(signals_consumed) = record
        .signals_consumed
        .checked_add(signals_among(p, id, &consumed))
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
    batch.put(
        record::workflow_key(p, id),
        record::encode_record(&*record)?,
    );
    Ok(Ok(Plan {
        batch,
        expect: Vec::new(),
        sweep: None,
        effects: Vec::new(),
    }))
}
