//! Interruptions: what a passed execution deadline or a cancellation request does to a
//! waiting workflow, and what ending a wait early stops (timers, children).

use std::time::SystemTime;

use crate::child::ParentClosePolicy;
use crate::workflow::Resume;

use super::super::clock::to_millis;
use super::super::error::EngineError;
use super::super::record::{self, Partition, PendingCommand, WorkflowRecord};
use super::Followup;

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
    p: Partition,
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
                        consumed.push(record::timer_key(p, *deadline_ms, id))
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
    p: Partition,
    id: &str,
    pending: Option<&PendingCommand>,
    now: SystemTime,
) -> Result<(Resume, Vec<Vec<u8>>, Followup), EngineError> {
    let mut consumed = vec![record::cancel_key(id)];
    let followup = on_cancel(p, id, pending, now, &mut consumed)?;
    Ok((Resume::Cancelled, consumed, followup))
}

/// The resume that delivers a passed execution deadline: a cancellation that consumes the
/// deadline (named by `deadline/<id>` among the consumed keys; see [`consume`]) and is
/// committed as [`ResumeKind::TimedOut`].
pub(crate) fn timeout_resume(
    p: Partition,
    id: &str,
    pending: Option<&PendingCommand>,
    now: SystemTime,
) -> Result<(Resume, Vec<Vec<u8>>, Followup), EngineError> {
    let mut consumed = vec![record::deadline_key(id)];
    let mut followup = on_cancel(p, id, pending, now, &mut consumed)?;
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
    p: Partition,
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
            vec![record::timer_key(p, *deadline_ms, id)],
            followup,
        )));
    }
    // As with a cancellation: the parent resumes with the child's result once it ended, and
    // the timeout reaches it at its next durable await.
    if waits_for_child(record) {
        return Ok(Some(Interruption::AwaitChild(Followup::default())));
    }
    *deadline = None;
    let (resume, consumed, followup) = timeout_resume(p, id, record.pending.as_ref(), now)?;
    Ok(Some(Interruption::Resume(resume, consumed, followup)))
}

/// What a cancellation request does to `record` at `now`. A sleep is cut short, once: the
/// cancellation stays pending and reaches the next durable await, where `ctx.run`,
/// `ctx.child` and `ctx.compensate` can report it as an error the workflow handles (a second
/// one ends the workflow, so a loop of sleeps cannot outrun it). A child the workflow must wait
/// for is waited for, the request kept. Anything else is cancelled now.
pub(crate) fn on_cancel_request(
    p: Partition,
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
            vec![record::timer_key(p, *deadline_ms, id)],
            keep(),
        ));
    }
    if waits_for_child(record) {
        return Ok(Interruption::AwaitChild(keep()));
    }
    let (resume, consumed, followup) = cancel_resume(p, id, record.pending.as_ref(), now)?;
    Ok(Interruption::Resume(resume, consumed, followup))
}
