//! Recovery at build: resume every in-flight workflow from its stored record.
//!
//! It reads the live index (`live/<p><id>`) and those workflows' records only, so its cost
//! follows the workflows in flight, not the finished ones the store keeps. It goes partition by
//! partition, each read from that partition's keys alone (its `tm/<p>` timers and `live/<p>`
//! index, then the records they name), which is what the owner of one partition needs to take
//! it over.
//!
//! Pending activities are dispatched again (with the same idempotency key), timers are re-armed
//! at their stored deadline from the `tm/` index, signal waits look at their queue again (a
//! signal stored but not yet delivered is delivered), execution deadlines are armed like timers,
//! and stored cancellations are delivered (both from the record's lifecycle).
//! Records that cannot run (unreadable, unknown type, other fingerprint, parked) are left as
//! they are; describe and list report why.

use std::sync::Arc;
use std::time::Duration;

use super::Engine;
use super::core::Inner;
use super::error::EngineError;
use super::record::{self, PendingCommand, RecordStatus, WorkflowRecord};
use super::registry::Lookup;
use super::runner::{self, Loaded};

const PAGE: usize = 256;

/// The most workflows a [`RecoveryReport`] names among those it could not resume.
pub const MAX_UNRESOLVED_LISTED: usize = 100;

/// What the build's recovery found and did: the one call that confirms recovery after a
/// deploy ([`Engine::recovery_report`]).
///
/// Counts are of the workflows the live index names (every one not finished), by the status
/// their record held when recovery read it, which is after parked workflows were retried.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Whether the build ran recovery ([`EngineBuilder::recover`](super::EngineBuilder::recover)).
    /// When it did not, every count is zero.
    pub ran: bool,
    /// Parked workflows retried at build on the code registered now; they count as running
    /// below when their retry let them run.
    pub unparked: u64,
    /// Workflows found running (an activity to run or retry, or a step to take).
    pub running: u64,
    /// Workflows found waiting (on a timer, a signal, a review, a child).
    pub waiting: u64,
    /// Workflows found parked, or that cannot run on the code registered now (describe and
    /// list show those as parked too): left as they are until an operator acts.
    pub parked: u64,
    /// Of the running and waiting, those whose runner started at build: they run now.
    pub resumed: u64,
    /// Of the waiting, those that need no runner until something arrives: a timer armed at
    /// its stored deadline, or a signal wait with nothing queued.
    pub armed: u64,
    /// Workflows whose record does not decode, so they have no status to count under.
    pub unreadable: u64,
    /// Workflows that cannot run on the code registered now (unknown type, another
    /// fingerprint; counted as parked too) or whose record is unreadable: reported, never
    /// dropped.
    pub unresolved: u64,
    /// The first [`MAX_UNRESOLVED_LISTED`] of those, with the reason.
    pub unresolved_workflows: Vec<UnresolvedWorkflow>,
    /// How long recovery took.
    pub duration: Duration,
}

/// A workflow recovery could not resume, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnresolvedWorkflow {
    /// The workflow's id.
    pub id: String,
    /// Why, with the fix.
    pub reason: String,
}

impl RecoveryReport {
    /// Workflows found in flight: running, waiting, parked and unreadable.
    pub fn in_flight(&self) -> u64 {
        self.running + self.waiting + self.parked + self.unreadable
    }

    fn unresolved(&mut self, id: &str, reason: String) {
        self.unresolved += 1;
        if self.unresolved_workflows.len() < MAX_UNRESOLVED_LISTED {
            self.unresolved_workflows.push(UnresolvedWorkflow {
                id: id.to_string(),
                reason,
            });
        }
    }
}

impl Engine {
    /// What this engine's recovery at build found and did: the count of in-flight workflows
    /// by status, how many it resumed and armed, and those it could not resume, with why.
    /// After a deploy, check it (or `GET /v1/recovery`, `weft recovery`) instead of waiting
    /// for a workflow to move.
    pub fn recovery_report(&self) -> RecoveryReport {
        self.inner.recovery.get().cloned().unwrap_or_default()
    }
}

/// Resumes what was in flight when the previous engine stopped, and says what it did.
pub(crate) fn recover(inner: &Arc<Inner>) -> Result<RecoveryReport, EngineError> {
    let mut report = RecoveryReport {
        ran: true,
        ..RecoveryReport::default()
    };
    for p in inner.partitions.all() {
        recover_partition(inner, p, &mut report)?;
    }
    Ok(report)
}

/// Recovers partition `p` from its own keys: arms its timers, resumes its live workflows.
fn recover_partition(
    inner: &Arc<Inner>,
    p: record::Partition,
    report: &mut RecoveryReport,
) -> Result<(), EngineError> {
    for_each(
        inner,
        &record::partition_prefix(record::TIMER_PREFIX, p),
        |key, _| {
            match record::parse_timer_key(key) {
                Some(timer) => inner.timers.arm(timer.deadline_ms, &timer.id),
                None => inner.damage.unparsed(key),
            }
            Ok(())
        },
    )?;
    // The live index names the workflows not finished; finished ones are never read, however
    // many the store holds.
    for_each(
        inner,
        &record::partition_prefix(record::LIVE_PREFIX, p),
        |key, _| {
            let Some((_, id)) = record::parse_id_key(record::LIVE_PREFIX, key) else {
                inner.damage.unparsed(key);
                return Ok(());
            };
            match inner.storage.get(&record::workflow_key(p, id))? {
                Some(value) => resume(inner, id, &value, report),
                // Nothing else writes while the engine builds, so this is damage, not a race.
                None => inner
                    .damage
                    .skipped(key, "it names a workflow the store holds no record of"),
            }
            Ok(())
        },
    )
}

/// Starts the runner of workflow `id` from its stored record `value` when it has something to
/// do now, and counts it in `report`.
fn resume(inner: &Arc<Inner>, id: &str, value: &[u8], report: &mut RecoveryReport) {
    let record = match record::decode_record::<WorkflowRecord>(value) {
        Ok(record) => record,
        Err(e) => {
            report.unreadable += 1;
            report.unresolved(
                id,
                format!("its record does not decode ({e}); describe it, then purge or restore it"),
            );
            return;
        }
    };
    // Execution deadlines fire like timers: the runner they wake compares the stored deadline
    // with the clock, so arming one is never premature. A stored cancellation request is
    // delivered (a parked workflow's runner leaves it stored, for a retry).
    if let Some(deadline_ms) = record.lifecycle.deadline_ms {
        inner.timers.arm(deadline_ms, id);
    }
    if record.lifecycle.cancel_requested_ms.is_some() {
        runner::wake_cancel(inner, id);
    }
    let running = match record.status {
        RecordStatus::Running => true,
        RecordStatus::Waiting => false,
        RecordStatus::Parked { .. } => {
            report.parked += 1;
            return;
        }
        // A finished workflow left in the live index: nothing to resume.
        _ => return,
    };
    // Looked up first: a workflow the code registered now cannot run is what describe and
    // list show as parked, so it is counted there, whatever its stored command.
    let workflow = match inner.registry.lookup(
        &record.workflow_type,
        record.version,
        record.fingerprint,
    ) {
        Lookup::Found(workflow) => Arc::clone(workflow),
        Lookup::UnknownType => {
            report.parked += 1;
            report.unresolved(
                id,
                format!(
                    "workflow type `{}` version {} is not registered; register it, then retry the workflow",
                    record.workflow_type, record.version
                ),
            );
            return;
        }
        Lookup::FingerprintMismatch { registered } => {
            report.parked += 1;
            report.unresolved(
                id,
                format!(
                    "workflow `{}` version {} is registered with another state machine (fingerprint {registered:#x}, stored {:#x}); register the version that started it",
                    record.workflow_type, record.version, record.fingerprint
                ),
            );
            return;
        }
    };
    if running {
        report.running += 1;
    } else {
        report.waiting += 1;
    }
    match &record.pending {
        // Timers are armed from their index above; their runner starts when they fire.
        Some(PendingCommand::Timer { .. }) => {
            report.armed += 1;
            return;
        }
        // A signal wait needs a runner only if a signal is queued; otherwise it stays a
        // record until one is sent.
        Some(PendingCommand::Signal { .. }) => {
            let queued = inner
                .storage
                .scan_prefix(
                    &record::signal_queue_prefix(inner.partition(id), id),
                    None,
                    1,
                )
                .map(|entries| !entries.is_empty());
            if let Ok(false) = queued {
                report.armed += 1;
                return;
            }
        }
        _ => {}
    }
    report.resumed += 1;
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
