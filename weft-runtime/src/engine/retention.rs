//! Retention: purging finished workflows a configured time after they finished.
//!
//! A store keeps every finished workflow until something purges it. With a
//! [`RetentionPolicy`], a background sweeper does, on the engine's clock: every
//! [`RetentionPolicy::interval`] it reads the finish-time index (`fin/<finish ms><id>`, oldest
//! first; see the visibility module) and purges each workflow whose keep time has passed, at
//! most [`RetentionPolicy::batch`] per sweep, through the same fenced, checked write as
//! [`Engine::purge`](super::Engine::purge). It reads index entries, never workflow records,
//! to find what is due, and stops at the first entry younger than the shortest keep time.
//!
//! A retention purge keeps the workflow's idempotency key for
//! [`RetentionPolicy::idempotency_window`] more: a late retry of the start that created the
//! workflow is answered with the purged workflow's id (no new run starts; its `result` then
//! answers `NotFound`), until the window ends and the key is deleted. The expiry is indexed at
//! `idemx/<expires ms BE><key>`, so that deletion reads no records either.

use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use super::clock::{deadline_ms, from_millis, to_millis};
use super::core::Inner;
use super::error::EngineError;
use super::purge;
use super::query::WorkflowStatus;
use super::record::{self, FinishedRecord, IdempotencyRecord};
use crate::storage::Batch;

/// How long finished workflows are kept, per type and status, before the engine purges them.
///
/// The most specific rule that matches a workflow decides: a rule for its type and status,
/// then one for its type, then one for its status, then the default. A workflow no rule
/// matches is kept for good.
///
/// ```
/// use std::time::Duration;
/// use weft_runtime::{RetentionPolicy, WorkflowStatus};
///
/// let day = Duration::from_secs(24 * 3600);
/// let policy = RetentionPolicy::keep_finished_for(7 * day)
///     .for_status(WorkflowStatus::Failed, 30 * day)
///     .for_type("audit_export", 365 * day);
/// assert_eq!(policy.keep_for("checkout", WorkflowStatus::Completed), Some(7 * day));
/// assert_eq!(policy.keep_for("checkout", WorkflowStatus::Failed), Some(30 * day));
/// assert_eq!(policy.keep_for("audit_export", WorkflowStatus::Failed), Some(365 * day));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPolicy {
    rules: Vec<Rule>,
    /// How long a purged workflow's idempotency key is kept after the purge (default: one day).
    pub idempotency_window: Duration,
    /// How often the sweeper looks for workflows to purge (default: one minute).
    pub interval: Duration,
    /// The most workflows one sweep purges (default: 1,000); the rest wait for the next one.
    pub batch: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    workflow_type: Option<String>,
    status: Option<WorkflowStatus>,
    keep: Duration,
}

impl Rule {
    /// How specific the rule is, when it matches: type and status 3, type 2, status 1, none 0.
    fn matches(&self, workflow_type: &str, status: WorkflowStatus) -> Option<u8> {
        let type_ok = self
            .workflow_type
            .as_deref()
            .is_none_or(|t| t == workflow_type);
        let status_ok = self.status.is_none_or(|s| s == status);
        (type_ok && status_ok)
            .then(|| 2 * u8::from(self.workflow_type.is_some()) + u8::from(self.status.is_some()))
    }
}

impl RetentionPolicy {
    /// A policy that keeps every finished workflow for `keep` after it finished.
    pub fn keep_finished_for(keep: Duration) -> Self {
        RetentionPolicy {
            rules: vec![Rule {
                workflow_type: None,
                status: None,
                keep,
            }],
            ..RetentionPolicy::keep_forever()
        }
    }

    /// A policy that purges nothing until rules are added: start from it to purge only some
    /// types or statuses.
    pub fn keep_forever() -> Self {
        RetentionPolicy {
            rules: Vec::new(),
            idempotency_window: Duration::from_secs(24 * 3600),
            interval: Duration::from_secs(60),
            batch: 1_000,
        }
    }

    /// Keeps workflows that finished with `status` for `keep`.
    pub fn for_status(self, status: WorkflowStatus, keep: Duration) -> Self {
        self.rule(None, Some(status), keep)
    }

    /// Keeps workflows of type `workflow_type` for `keep`, whatever their status.
    pub fn for_type(self, workflow_type: &str, keep: Duration) -> Self {
        self.rule(Some(workflow_type), None, keep)
    }

    /// Keeps workflows of type `workflow_type` that finished with `status` for `keep`.
    pub fn for_type_and_status(
        self,
        workflow_type: &str,
        status: WorkflowStatus,
        keep: Duration,
    ) -> Self {
        self.rule(Some(workflow_type), Some(status), keep)
    }

    /// Sets [`RetentionPolicy::idempotency_window`].
    pub fn idempotency_window(mut self, window: Duration) -> Self {
        self.idempotency_window = window;
        self
    }

    /// Sets [`RetentionPolicy::interval`].
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Sets [`RetentionPolicy::batch`] (at least 1).
    pub fn batch(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }

    fn rule(
        mut self,
        workflow_type: Option<&str>,
        status: Option<WorkflowStatus>,
        keep: Duration,
    ) -> Self {
        let workflow_type = workflow_type.map(str::to_string);
        // A later rule for the same workflows replaces the earlier one.
        self.rules
            .retain(|rule| rule.workflow_type != workflow_type || rule.status != status);
        self.rules.push(Rule {
            workflow_type,
            status,
            keep,
        });
        self
    }

    /// How long a workflow of `workflow_type` that finished with `status` is kept, or `None`
    /// when it is kept for good.
    pub fn keep_for(&self, workflow_type: &str, status: WorkflowStatus) -> Option<Duration> {
        self.rules
            .iter()
            .filter_map(|rule| Some((rule.matches(workflow_type, status)?, rule.keep)))
            .max_by_key(|(specificity, _)| *specificity)
            .map(|(_, keep)| keep)
    }

    /// The shortest keep time of any rule: no workflow that finished more recently is due.
    fn shortest(&self) -> Option<Duration> {
        self.rules.iter().map(|rule| rule.keep).min()
    }
}

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Finished workflows purged.
    pub purged: u64,
    /// Idempotency keys deleted because their window after the purge ended.
    pub keys_expired: u64,
    /// Due workflows left for a later sweep: over the batch, or refused for now (a child
    /// whose parent has not finished).
    pub deferred: u64,
}

fn parse_expiry_key(key: &[u8]) -> Option<(u64, String)> {
    let rest = key.strip_prefix(record::IDEMPOTENCY_EXPIRY_PREFIX)?;
    let (ms, name) = rest.split_at_checked(8)?;
    Some((
        u64::from_be_bytes(ms.try_into().ok()?),
        String::from_utf8(name.to_vec()).ok()?,
    ))
}

fn parse_finished_key(key: &[u8]) -> Option<(u64, String)> {
    let rest = key.strip_prefix(record::FINISHED_PREFIX)?;
    let (ms, id) = rest.split_at_checked(8)?;
    Some((
        u64::from_be_bytes(ms.try_into().ok()?),
        String::from_utf8(id.to_vec()).ok()?,
    ))
}

fn status_named(name: &str) -> Option<WorkflowStatus> {
    Some(match name {
        "Completed" => WorkflowStatus::Completed,
        "Failed" => WorkflowStatus::Failed,
        "Cancelled" => WorkflowStatus::Cancelled,
        "TimedOut" => WorkflowStatus::TimedOut,
        _ => return None,
    })
}

/// Index entries read per page.
const PAGE: usize = 256;

/// One sweep under `policy` at the engine's current time.
pub(crate) async fn sweep(
    inner: &Arc<Inner>,
    policy: &RetentionPolicy,
) -> Result<SweepReport, EngineError> {
    let mut report = SweepReport::default();
    let now = inner.clock.now();
    let now_ms = to_millis(now);
    expire_keys(inner, now_ms, &mut report).await?;
    let Some(shortest) = policy.shortest() else {
        return Ok(report);
    };
    // Nothing that finished after this is due under any rule.
    let horizon = now_ms.saturating_sub(u64::try_from(shortest.as_millis()).unwrap_or(u64::MAX));
    let mut after: Option<Vec<u8>> = None;
    let mut due: Vec<String> = Vec::new();
    'scan: loop {
        let page = inner
            .read_page(record::FINISHED_PREFIX, after.clone(), PAGE)
            .await?;
        let exhausted = page.len() < PAGE;
        for (key, value) in &page {
            after = Some(key.clone());
            let Some((finished_ms, id)) = parse_finished_key(key) else {
                inner.damage.unparsed(key);
                continue;
            };
            if finished_ms > horizon {
                break 'scan;
            }
            // Left for a purge by hand: without its type and status no rule can be applied.
            let finished = match record::decode_record::<FinishedRecord>(value) {
                Ok(finished) => finished,
                Err(e) => {
                    inner
                        .damage
                        .skipped(key, &format!("its value does not decode ({e})"));
                    continue;
                }
            };
            let Some(status) = status_named(&finished.status) else {
                inner.damage.skipped(
                    key,
                    &format!("it names no finished status (`{}`)", finished.status),
                );
                continue;
            };
            let Some(keep) = policy.keep_for(&finished.workflow_type, status) else {
                continue;
            };
            if deadline_ms(from_millis(finished_ms), keep) > now_ms {
                continue;
            }
            if due.len() == policy.batch {
                report.deferred += 1;
                continue;
            }
            due.push(id);
        }
        if exhausted {
            break;
        }
    }
    let expires_ms = deadline_ms(now, policy.idempotency_window);
    let purges = due
        .iter()
        .map(|id| purge::purge_keeping_key(inner, id, expires_ms));
    // Issued together, so the writer commits them in a few batches, not one commit each.
    for (id, outcome) in due.iter().zip(join_all(purges).await) {
        match outcome {
            Ok(()) => {
                report.purged += 1;
                inner
                    .stats
                    .purged
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            // Purged meanwhile by someone else.
            Err(EngineError::NotFound { .. }) => {}
            Err(e @ (EngineError::Fenced { .. } | EngineError::Shutdown)) => return Err(e),
            // A child whose parent may still read it waits for a later sweep; anything else
            // (an unreadable record, a failing store) is reported and tried again later.
            Err(EngineError::ParentNotFinished { .. }) => report.deferred += 1,
            Err(other) => {
                eprintln!("weft: retention could not purge `{id}`: {other}");
                report.deferred += 1;
            }
        }
    }
    Ok(report)
}

/// Deletes the idempotency keys whose window after their workflow's purge has ended.
async fn expire_keys(
    inner: &Arc<Inner>,
    now_ms: u64,
    report: &mut SweepReport,
) -> Result<(), EngineError> {
    let entries = inner
        .read_page(record::IDEMPOTENCY_EXPIRY_PREFIX, None, PAGE)
        .await?;
    let mut expired = Vec::new();
    for (key, _) in entries {
        match parse_expiry_key(&key) {
            Some((expires_ms, _)) if expires_ms > now_ms => break,
            Some((_, name)) => expired.push((key, name)),
            // Deleted alone: it names no key to delete with it.
            None => {
                inner.damage.unparsed(&key);
                expired.push((key, String::new()));
            }
        }
    }
    if expired.is_empty() {
        return Ok(());
    }
    let count = expired.len() as u64;
    let partitions = inner.partitions;
    inner
        .commit_checked(move |view| {
            let mut batch = Batch::new();
            for (expiry, name) in expired {
                batch.delete(expiry);
                let key = record::idempotency_key(&name);
                // Only a key that still names a purged workflow: a new start may have taken
                // the key again after an operator's purge deleted it.
                if let Some(bytes) = view.get(&key)?
                    && let Ok(named) = record::decode_record::<IdempotencyRecord>(&bytes)
                    && view
                        .get(&record::workflow_key(
                            partitions.of(&named.workflow_id),
                            &named.workflow_id,
                        ))?
                        .is_none()
                {
                    batch.delete(key);
                }
            }
            Ok(Some(batch))
        })
        .await?;
    report.keys_expired += count;
    Ok(())
}

/// Awaits every future, in order; a small stand-in for `futures::future::join_all`.
async fn join_all<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut pending: Vec<std::pin::Pin<Box<F>>> = futures.map(Box::pin).collect();
    let mut done: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all = true;
        for (future, slot) in pending.iter_mut().zip(done.iter_mut()) {
            if slot.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(out) => *slot = Some(out),
                    std::task::Poll::Pending => all = false,
                }
            }
        }
        if all {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    done.into_iter().flatten().collect()
}

/// The sweeper: one sweep every `policy.interval` on the engine's clock, until the engine is
/// gone. Holds the engine weakly, so it never keeps a dropped engine alive.
pub(crate) async fn serve(inner: Weak<Inner>, policy: RetentionPolicy) {
    loop {
        let (clock, next) = {
            let Some(engine) = inner.upgrade() else {
                return;
            };
            match sweep(&engine, &policy).await {
                Ok(_) => {}
                Err(EngineError::Fenced { .. } | EngineError::Shutdown) => return,
                Err(e) => {
                    eprintln!("weft: a retention sweep failed ({e}); retrying at the next interval")
                }
            }
            let clock = Arc::clone(&engine.clock);
            let next: SystemTime = super::clock::later(clock.now(), policy.interval);
            (clock, next)
        };
        clock.sleep_until(next).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_specific_rule_decides() {
        let policy = RetentionPolicy::keep_forever()
            .for_status(WorkflowStatus::Failed, Duration::from_secs(2))
            .for_type("a", Duration::from_secs(3))
            .for_type_and_status("a", WorkflowStatus::Failed, Duration::from_secs(4));
        let keep = |t, s| policy.keep_for(t, s).map(|d| d.as_secs());
        assert_eq!(keep("b", WorkflowStatus::Completed), None);
        assert_eq!(keep("b", WorkflowStatus::Failed), Some(2));
        assert_eq!(keep("a", WorkflowStatus::Completed), Some(3));
        assert_eq!(keep("a", WorkflowStatus::Failed), Some(4));
        assert_eq!(policy.shortest(), Some(Duration::from_secs(2)));
    }

    #[test]
    fn a_later_rule_for_the_same_workflows_replaces_the_earlier() {
        let policy = RetentionPolicy::keep_finished_for(Duration::from_secs(1))
            .for_type("a", Duration::from_secs(5))
            .for_type("a", Duration::from_secs(9));
        assert_eq!(
            policy.keep_for("a", WorkflowStatus::Completed),
            Some(Duration::from_secs(9))
        );
        assert_eq!(
            policy.keep_for("z", WorkflowStatus::Completed),
            Some(Duration::from_secs(1))
        );
    }

    #[test]
    fn expiry_and_finish_keys_parse_back() {
        assert_eq!(
            parse_expiry_key(&record::idempotency_expiry_key(42, "k-1")),
            Some((42, "k-1".to_string()))
        );
        assert_eq!(
            parse_finished_key(&record::finished_key(7, "wf")),
            Some((7, "wf".to_string()))
        );
        assert_eq!(parse_finished_key(b"fin/short"), None);
    }
}
