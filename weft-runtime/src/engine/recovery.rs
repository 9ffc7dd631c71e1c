//! Recovery at build: resume every in-flight workflow from its stored record.
//!
//! It reads the live index (`live/<id>`) and those workflows' records only, so its cost follows
//! the workflows in flight, not the finished ones the store keeps.
//!
//! Pending activities are dispatched again (with the same idempotency key), timers are re-armed
//! at their stored deadline from the `tm/` index, signal waits look at their queue again (a
//! signal stored but not yet delivered is delivered), execution deadlines are armed like timers,
//! and stored cancellations are delivered.
//! Records that cannot run (unreadable, unknown type, other fingerprint, parked) are left as
//! they are; describe and list report why.

use std::sync::Arc;

use super::core::Inner;
use super::error::EngineError;
use super::record::{self, PendingCommand, RecordStatus, WorkflowRecord};
use super::registry::Lookup;
use super::runner::{self, Loaded};

const PAGE: usize = 256;

/// Resumes what was in flight when the previous engine stopped.
pub(crate) fn recover(inner: &Arc<Inner>) -> Result<(), EngineError> {
    for_each(inner, record::TIMER_PREFIX, |key, _| {
        if let Some((deadline, id)) = record::parse_timer_key(key) {
            inner.timers.arm(deadline, &id);
        }
        Ok(())
    })?;
    // Execution deadlines fire like timers: the runner they wake compares the stored deadline
    // with the clock, so arming one is never premature.
    for_each(inner, record::DEADLINE_PREFIX, |key, value| {
        if let Ok(id) = std::str::from_utf8(&key[record::DEADLINE_PREFIX.len()..])
            && let Ok(deadline) = record::decode_record::<record::DeadlineRecord>(value)
        {
            inner.timers.arm(deadline.deadline_ms, id);
        }
        Ok(())
    })?;
    for_each(inner, record::CANCEL_PREFIX, |key, _| {
        if let Ok(id) = std::str::from_utf8(&key[record::CANCEL_PREFIX.len()..]) {
            runner::wake_cancel(inner, id);
        }
        Ok(())
    })?;
    // The live index names the workflows not finished; finished ones are never read, however
    // many the store holds.
    for_each(inner, record::LIVE_PREFIX, |key, _| {
        if let Ok(id) = std::str::from_utf8(&key[record::LIVE_PREFIX.len()..])
            && let Some(value) = inner.read_raw(id)?
        {
            resume(inner, id, &value);
        }
        Ok(())
    })
}

/// Starts the runner of workflow `id` from its stored record `value` when it has something to
/// do now.
fn resume(inner: &Arc<Inner>, id: &str, value: &[u8]) {
    let Ok(record) = record::decode_record::<WorkflowRecord>(value) else {
        return;
    };
    if !matches!(record.status, RecordStatus::Running | RecordStatus::Waiting) {
        return;
    }
    match &record.pending {
        // Timers are armed from their index above; their runner starts when they fire.
        Some(PendingCommand::Timer { .. }) => return,
        // A signal wait needs a runner only if a signal is queued; otherwise it stays a
        // record until one is sent.
        Some(PendingCommand::Signal { .. }) => {
            let queued = inner
                .storage
                .scan_prefix(&record::signal_queue_prefix(id), None, 1)
                .map(|entries| !entries.is_empty());
            if let Ok(false) = queued {
                return;
            }
        }
        _ => {}
    }
    let Lookup::Found(workflow) =
        inner
            .registry
            .lookup(&record.workflow_type, record.version, record.fingerprint)
    else {
        return;
    };
    let workflow = Arc::clone(workflow);
    if inner.claim(id) {
        runner::spawn(
            inner,
            id.to_string(),
            Some(Loaded {
                record,
                workflow,
                // An attempt of its activity may have been cut off by a crash.
                origin: super::execute::Origin::Recovered,
            }),
        );
    }
}

fn for_each(
    inner: &Inner,
    prefix: &[u8],
    mut f: impl FnMut(&[u8], &[u8]) -> Result<(), EngineError>,
) -> Result<(), EngineError> {
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = inner.storage.scan_prefix(prefix, after.as_deref(), PAGE)?;
        let done = page.len() < PAGE;
        for (key, value) in &page {
            f(key, value)?;
        }
        if done {
            return Ok(());
        }
        after = page.last().map(|(key, _)| key.clone());
    }
}
