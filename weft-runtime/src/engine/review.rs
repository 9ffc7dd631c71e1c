//! Human review on the engine side: listing pending reviews and deciding them.
//!
//! A workflow at `ctx.review(..)` has a review record at `review/<id>` (written in the step
//! that suspended there) and waits on a race of a decision signal against the review's
//! deadline. `decide_review` queues the decision and marks the record decided in one commit;
//! the resume removes the record.
//!
//! How a review ends is decided by the workflow's runner from what it read, while a decision is
//! decided by the writer. So every transition out of a review is guarded
//! ([`ReviewSnapshot::expect`]) on the review record as the runner read it before deciding:
//! a decision checked after that read and before the transition changes the record, the
//! transition is refused, and the runner decides again, now with the decision.
use std::time::SystemTime;

use super::clock::{from_millis, to_millis};
use super::core::Inner;
use super::effects::Effect;
use super::page::{Page, resume_after, token_key};
use super::record::{self, PendingCommand, ReviewRecord, WorkflowRecord};
use super::writer::Expect;
use super::{Engine, EngineError};
use crate::codec;
use crate::review::{Decision, REVIEW_QUEUE};
use crate::storage::Batch;

/// The review record of a workflow waiting at `ctx.review(..)`, as its runner read it before
/// deciding how the review ends.
pub(crate) struct ReviewSnapshot {
    key: Vec<u8>,
    bytes: Option<Vec<u8>>,
    /// The record holds a decision: its signal was queued in the same commit.
    pub decided: bool,
}

impl ReviewSnapshot {
    /// Reads the review record of `id` when `record` waits at a review, else `None`: only a
    /// transition out of a review pays for the read and the guard.
    ///
    /// Read before anything decides how the review ends (the scan for a decision, the timer,
    /// a cancellation): the guard then covers every read made after it.
    pub async fn read(
        inner: &Inner,
        id: &str,
        record: &WorkflowRecord,
    ) -> Result<Option<ReviewSnapshot>, EngineError> {
        if !waits_at_review(record.pending.as_ref()) {
            return Ok(None);
        }
        let key = record::review_key(id);
        let bytes = inner.read_key(key.clone()).await?;
        // An unreadable record counts as undecided; the guard still compares its bytes.
        let decided = bytes.as_deref().is_some_and(|bytes| {
            record::decode_record::<ReviewRecord>(bytes)
                .is_ok_and(|review| review.decided_by.is_some())
        });
        Ok(Some(ReviewSnapshot {
            key,
            bytes,
            decided,
        }))
    }

    /// The guard of a transition out of the review: the record must still be what was read.
    ///
    /// Why bytes suffice: besides the runner (one per workflow, which is the one committing
    /// this), only `decide_review` writes the record, and only to mark it decided, which it
    /// does once (a decided record refuses further decisions). A new review has another step,
    /// so its bytes differ too. The record therefore never returns to bytes it held before: if
    /// they are unchanged, no decision was accepted since the read.
    pub fn expect(&self) -> Vec<Expect> {
        vec![Expect {
            key: self.key.clone(),
            value: self.bytes.clone(),
        }]
    }
}

/// Whether `pending` is the race `ctx.review(..)` waits on: a decision signal against a timer.
fn waits_at_review(pending: Option<&PendingCommand>) -> bool {
    match pending {
        Some(PendingCommand::Group {
            race: true,
            branches,
            ..
        }) => branches.iter().any(|branch| {
            matches!(&branch.pending, PendingCommand::Signal { name } if name == REVIEW_QUEUE)
        }),
        _ => false,
    }
}

/// Which pending reviews [`Engine::pending_reviews`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReviewFilter {
    /// Only reviews that list this reviewer.
    pub reviewer: Option<String>,
    /// Only reviews of workflows whose id starts with this.
    pub workflow_id_prefix: Option<String>,
}

/// A review waiting for a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingReview {
    /// The review's id: `{workflow id}@{step}`, unique over the workflow's life.
    pub id: String,
    /// The workflow waiting on it; pass it to [`Engine::decide_review`].
    pub workflow_id: String,
    /// What is reviewed.
    pub title: String,
    /// Who may decide.
    pub reviewers: Vec<String>,
    /// When it was requested.
    pub requested_at: SystemTime,
    /// When it times out.
    pub deadline: SystemTime,
}

impl Engine {
    /// Reviews waiting for a decision, in workflow id order, `page_size` (at least 1) at a
    /// time. Pass the previous page's `next_page_token` to continue.
    ///
    /// A review whose stored record does not decode is left out, so that it hides no other;
    /// its workflow still answers `describe`, and [`Engine::decide_review`] about it fails with
    /// the record error.
    ///
    /// # Errors
    ///
    /// [`EngineError::InvalidPageToken`] for a token no page handed out that cannot be read;
    /// a storage error, `Shutdown` or `Fenced` when the engine cannot read.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only reads, so dropping it changes nothing.
    pub async fn pending_reviews(
        &self,
        filter: &ReviewFilter,
        page_size: usize,
        page_token: Option<&str>,
    ) -> Result<Page<PendingReview>, EngineError> {
        self.inner.check_live()?;
        let filter = filter.clone();
        let page_token = page_token.map(str::to_string);
        super::read_blocking(&self.inner, move |inner| {
            pending(inner, &filter, page_size, page_token.as_deref())
        })
        .await
    }

    /// Decides the review workflow `workflow_id` waits on; the workflow resumes with the
    /// matching `ReviewOutcome`. The decision is stored durably before this returns.
    ///
    /// Errors with `ReviewNotPending` when the workflow has no undecided review (none
    /// requested, already decided, or timed out). The engine does not check that `by` is one of
    /// the listed reviewers: authorize in the caller.
    ///
    /// # Errors
    ///
    /// `ReviewNotPending` as said above; `NotFound` when no workflow has the id; `Record` when the
    /// review record does not decode; `Shutdown` or `Fenced` when the engine no longer serves;
    /// `Storage` when the store fails.
    ///
    /// # Cancel safety
    ///
    /// The decision reaches the engine's writer at the first poll; dropping this future after
    /// that does not withdraw it: if the writer accepts it, the engine wakes the workflow once
    /// it is durable. Deciding again then answers `ReviewNotPending`.
    pub async fn decide_review(
        &self,
        workflow_id: &str,
        decision: Decision,
    ) -> Result<(), EngineError> {
        let inner = &self.inner;
        inner.check_live()?;
        let (Decision::Approved { by, .. } | Decision::Rejected { by, .. }) = &decision;
        let by = by.clone();
        let payload = codec::encode(&decision)?;
        inner.check_size("the review decision", &payload)?;
        let signal = record::SignalRecord {
            name: REVIEW_QUEUE.to_string(),
            payload,
            sent_ms: to_millis(inner.clock.now()),
        };
        let signal_key = record::signal_key(
            inner.partition(workflow_id),
            workflow_id,
            inner.epoch,
            inner.next_signal_seq()?,
        );
        let signal = record::encode_record(&signal)?;
        let owned_id = workflow_id.to_string();
        // Checked and written by the writer, so of concurrent deciders exactly one finds the
        // review undecided; the others get `ReviewNotPending`.
        inner
            .request_checked_then(
                move |view| {
                    let key = record::review_key(&owned_id);
                    let not_pending = || EngineError::ReviewNotPending {
                        id: owned_id.clone(),
                    };
                    let bytes = view.get(&key)?.ok_or_else(not_pending)?;
                    let mut review: ReviewRecord =
                        record::decode_record(&bytes).map_err(|source| EngineError::Record {
                            key: String::from_utf8_lossy(&key).into_owned(),
                            source,
                        })?;
                    if review.decided_by.is_some() {
                        return Err(not_pending());
                    }
                    review.decided_by = Some(by);
                    let mut batch = Batch::new();
                    batch.put(signal_key, signal);
                    batch.put(key, record::encode_record(&review)?);
                    Ok(Some(batch))
                },
                vec![Effect::Wake(workflow_id.to_string())],
            )
            .await?;
        Ok(())
    }
}

/// One page of the pending reviews matching `filter`, after the workflow id `page_token`.
fn pending(
    inner: &Inner,
    filter: &ReviewFilter,
    page_size: usize,
    page_token: Option<&str>,
) -> Result<Page<PendingReview>, EngineError> {
    let page_size = page_size.max(1);
    let prefix = record::review_key(filter.workflow_id_prefix.as_deref().unwrap_or(""));
    let mut after = match token_key(page_token)? {
        None => None,
        Some(workflow_id) => match resume_after(&prefix, record::review_key(workflow_id)) {
            Ok(after) => after,
            Err(()) => {
                return Ok(Page::of(Vec::new(), page_size, |r: &PendingReview| {
                    &r.workflow_id
                }));
            }
        },
    };
    let mut items = Vec::new();
    'scan: loop {
        let batch = inner
            .storage
            .scan_prefix(&prefix, after.as_deref(), SCAN_BATCH)?;
        let exhausted = batch.len() < SCAN_BATCH;
        for (key, value) in batch {
            // One unreadable review must not hide every other: it is left out, and a decision
            // about it is refused with the record error (see `decide_review`).
            let review = match record::decode_record::<ReviewRecord>(&value) {
                Ok(review) => review,
                Err(e) => {
                    inner
                        .damage
                        .skipped(&key, &format!("its review does not decode ({e})"));
                    after = Some(key);
                    continue;
                }
            };
            after = Some(key);
            if review.decided_by.is_some()
                || filter
                    .reviewer
                    .as_ref()
                    .is_some_and(|r| !review.reviewers.contains(r))
            {
                continue;
            }
            items.push(PendingReview {
                id: format!("{}@{}", review.workflow_id, review.step),
                workflow_id: review.workflow_id,
                title: review.title,
                reviewers: review.reviewers,
                requested_at: from_millis(review.created_ms),
                deadline: from_millis(review.deadline_ms),
            });
            if items.len() == page_size {
                break 'scan;
            }
        }
        if exhausted {
            break;
        }
    }
    Ok(Page::of(items, page_size, |r| &r.workflow_id))
}

/// How many review records one storage read returns.
const SCAN_BATCH: usize = 256;
