//! Human review: `ctx.review(request)` parks a workflow until a person approves or rejects, or
//! until the review's timeout.
//!
//! Built on existing primitives: the review is a race of a decision signal against a timer,
//! and the step that suspends at it also commits a review record, which `Engine::pending_reviews`
//! lists and `Engine::decide_review` answers.
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The signal queue name review decisions are delivered under.
pub const REVIEW_QUEUE: &str = "weft.review";

/// What a workflow asks a person to review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewRequest {
    /// What is to be reviewed, shown in the pending-review list.
    pub title: String,
    /// Who may decide, shown in the list and usable as a filter; the engine does not check who
    /// decides (authorization belongs to the caller of `decide_review`).
    pub reviewers: Vec<String>,
    /// How long to wait for a decision before the review resumes with
    /// [`ReviewOutcome::TimedOut`].
    pub timeout: Duration,
}

/// A person's decision on a pending review, given to `Engine::decide_review`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decision {
    /// Approved.
    Approved {
        /// Who approved.
        by: String,
        /// Why, or any remark.
        comment: String,
    },
    /// Rejected.
    Rejected {
        /// Who rejected.
        by: String,
        /// Why.
        comment: String,
    },
}

/// What `ctx.review(..)` resumes with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReviewOutcome {
    /// A reviewer approved.
    Approved {
        /// Who approved.
        by: String,
        /// Their comment.
        comment: String,
    },
    /// A reviewer rejected.
    Rejected {
        /// Who rejected.
        by: String,
        /// Their comment.
        comment: String,
    },
    /// No decision arrived before the review's timeout.
    TimedOut,
}

impl From<Decision> for ReviewOutcome {
    fn from(decision: Decision) -> Self {
        match decision {
            Decision::Approved { by, comment } => ReviewOutcome::Approved { by, comment },
            Decision::Rejected { by, comment } => ReviewOutcome::Rejected { by, comment },
        }
    }
}
