//! Random valid values of every record kind the engine stores, to be encoded and then mutated.

use std::collections::BTreeMap;
use std::time::Duration;

use weft_runtime::engine::record::{
    AttributesRecord, Branch, CancelRecord, DeadlineRecord, IdempotencyRecord, Lifecycle, Outcome,
    PendingCommand, RecordStatus, ResumeKind, ReviewRecord, SignalRecord, StoredValue,
    UpdateResponseRecord, WorkflowRecord,
};
use weft_runtime::group::GroupShape;
use weft_runtime::{ActivityError, ActivityOptions, ParentClosePolicy, RetryPolicy};

use crate::rng::Rng;

/// A random `Duration`, edges included.
pub fn duration(rng: &mut Rng) -> Duration {
    Duration::new(rng.int(), rng.below(1_000_000_000) as u32)
}

/// Random activity options.
pub fn activity_options(rng: &mut Rng) -> ActivityOptions {
    ActivityOptions {
        retry: RetryPolicy {
            max_attempts: rng.int() as u32,
            initial_backoff: duration(rng),
            backoff_percent: rng.int() as u32,
            max_backoff: duration(rng),
        },
        attempt_timeout: rng.option(duration),
    }
}

/// A random pending command; groups nest up to `depth` more levels.
pub fn pending(rng: &mut Rng, depth: usize) -> PendingCommand {
    match rng.below(if depth == 0 { 4 } else { 5 }) {
        0 => PendingCommand::Activity {
            name: rng.string(),
            input: rng.bytes(),
            options: activity_options(rng),
        },
        1 => PendingCommand::Timer {
            deadline_ms: rng.int(),
        },
        2 => PendingCommand::Signal { name: rng.string() },
        3 => PendingCommand::Child {
            child_id: rng.string(),
            policy: match rng.below(3) {
                0 => ParentClosePolicy::RequestCancel,
                1 => ParentClosePolicy::Abandon,
                _ => ParentClosePolicy::default(),
            },
        },
        _ => PendingCommand::Group {
            race: rng.flip(),
            shape: if rng.flip() {
                GroupShape::Tuple
            } else {
                GroupShape::List
            },
            branches: (0..rng.below(4))
                .map(|_| Branch {
                    pending: pending(rng, depth - 1),
                    value: rng.option(Rng::bytes),
                })
                .collect(),
        },
    }
}

/// A random workflow record.
pub fn workflow(rng: &mut Rng) -> WorkflowRecord {
    let status = match rng.below(7) {
        0 => RecordStatus::Running,
        1 => RecordStatus::Waiting,
        2 => RecordStatus::Completed,
        3 => RecordStatus::Failed,
        4 => RecordStatus::Cancelled,
        5 => RecordStatus::Parked {
            code: rng.string(),
            message: rng.string(),
        },
        _ => RecordStatus::TimedOut,
    };
    let resume = [
        ResumeKind::Start,
        ResumeKind::Activity,
        ResumeKind::Timer,
        ResumeKind::Signal,
        ResumeKind::Cancelled,
        ResumeKind::Group,
        ResumeKind::Child,
        ResumeKind::TimedOut,
    ];
    WorkflowRecord {
        workflow_type: rng.string(),
        version: rng.int() as u32,
        fingerprint: rng.int(),
        status,
        step: rng.int(),
        state: rng.option(Rng::bytes),
        pending: rng.option(|rng| pending(rng, 2)),
        created_ms: rng.int(),
        updated_ms: rng.int(),
        outcome: rng.option(|rng| match rng.below(4) {
            0 => Outcome::Output(rng.bytes()),
            1 => Outcome::Error {
                payload: rng.bytes(),
                message: rng.string(),
            },
            2 => Outcome::Cancelled,
            _ => Outcome::TimedOut,
        }),
        idempotency_key: rng.option(Rng::string),
        last_resume: rng.option(|rng| resume[rng.below(resume.len())]),
        signals_consumed: rng.int(),
        lifecycle: Lifecycle {
            cancel_requested_ms: rng.option(Rng::int),
            cancelled: rng.below(2) == 1,
            deadline_ms: rng.option(Rng::int),
            timed_out: rng.below(2) == 1,
            parent: rng.option(Rng::string),
            trace_context: rng.option(Rng::bytes),
        },
    }
}

/// A random signal record.
pub fn signal(rng: &mut Rng) -> SignalRecord {
    SignalRecord {
        name: rng.string(),
        payload: rng.bytes(),
        sent_ms: rng.int(),
    }
}

/// A random idempotency record.
pub fn idempotency(rng: &mut Rng) -> IdempotencyRecord {
    IdempotencyRecord {
        workflow_id: rng.string(),
    }
}

/// A random cancellation request.
pub fn cancel(rng: &mut Rng) -> CancelRecord {
    CancelRecord {
        requested_ms: rng.int(),
    }
}

/// A random execution deadline.
pub fn deadline(rng: &mut Rng) -> DeadlineRecord {
    DeadlineRecord {
        deadline_ms: rng.int(),
    }
}

/// A random attribute value.
pub fn stored_value(rng: &mut Rng) -> StoredValue {
    match rng.below(3) {
        0 => StoredValue::Int(rng.int() as i64),
        1 => StoredValue::TimeMs(rng.int() as i64),
        _ => StoredValue::String(rng.string()),
    }
}

/// A random set of search attributes.
pub fn attributes(rng: &mut Rng) -> AttributesRecord {
    let values: BTreeMap<String, StoredValue> = (0..rng.below(5))
        .map(|_| (rng.string(), stored_value(rng)))
        .collect();
    AttributesRecord { values }
}

/// A random update answer.
pub fn update_response(rng: &mut Rng) -> UpdateResponseRecord {
    UpdateResponseRecord {
        payload: rng.bytes(),
        answered_ms: rng.int(),
    }
}

/// A random pending review.
pub fn review(rng: &mut Rng) -> ReviewRecord {
    ReviewRecord {
        workflow_id: rng.string(),
        step: rng.int(),
        title: rng.string(),
        reviewers: rng.strings(),
        created_ms: rng.int(),
        deadline_ms: rng.int(),
        decided_by: rng.option(Rng::string),
    }
}

/// A random activity error.
pub fn activity_error(rng: &mut Rng) -> ActivityError {
    match rng.below(6) {
        0 => ActivityError::Failed {
            message: rng.string(),
        },
        1 => ActivityError::NonRetryable {
            message: rng.string(),
        },
        2 => ActivityError::TimedOut {
            timeout_ms: rng.int(),
        },
        3 => ActivityError::Cancelled,
        4 => ActivityError::NotRegistered { name: rng.string() },
        _ => ActivityError::Payload {
            message: rng.string(),
        },
    }
}
