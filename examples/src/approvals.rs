//! Updates and human review: an expense report collects lines through updates (each answered
//! with the running total, committed with the workflow's state), then waits for a manager's
//! review with a deadline, and is paid only when approved.
//!
//! Run by `cargo run -p weft-examples --bin approvals`.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use weft_runtime::{
    ActivityError, ReviewOutcome, ReviewRequest, Update, WorkflowContext, WorkflowError, activity,
    workflow,
};

/// How long a manager has to decide before the report is returned to its author.
pub const REVIEW_WITHIN: Duration = Duration::from_secs(3 * 24 * 3600);

/// An update: one more line on the report. Answered with the report's total so far, in cents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Update)]
#[update(response = u64, name = "expense.add_line")]
pub struct AddLine {
    /// What was bought.
    pub what: String,
    /// What it cost, in cents.
    pub cents: u64,
    /// Whether this is the last line: the report then goes to review.
    pub last: bool,
}

/// How a report ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Settlement {
    /// Approved and paid.
    Paid {
        /// The total paid, in cents.
        cents: u64,
        /// The payment's reference.
        reference: String,
        /// Who approved.
        approved_by: String,
    },
    /// Rejected by a reviewer.
    Rejected {
        /// Who rejected.
        by: String,
        /// Why.
        comment: String,
    },
    /// Nobody decided in time.
    Expired,
}

/// Pays `cents` to `employee`; returns the payment reference.
#[activity]
pub async fn pay(request: (String, u64)) -> Result<String, ActivityError> {
    let (employee, cents) = request;
    Ok(format!("PAY-{employee}-{cents}"))
}

/// An expense report of `employee`: lines come in as updates, then a manager reviews it.
#[workflow]
pub async fn expense_report(
    ctx: &mut WorkflowContext,
    employee: String,
) -> Result<Settlement, WorkflowError> {
    let mut total: u64 = 0;
    let mut lines: u32 = 0;
    loop {
        let (line, reply) = ctx.wait_for_update::<AddLine>().await;
        total += line.cents;
        lines += 1;
        // Buffered; committed together with the state of the next await.
        ctx.respond(reply, total);
        if line.last {
            break;
        }
    }
    let outcome = ctx
        .review(ReviewRequest {
            title: format!("{employee}: {lines} lines, {total} cents"),
            reviewers: vec!["manager".to_string()],
            timeout: REVIEW_WITHIN,
        })
        .await;
    match outcome {
        ReviewOutcome::Approved { by, .. } => {
            let by: String = by;
            let reference = ctx.run(pay, (employee, total)).await?;
            Ok(Settlement::Paid {
                cents: total,
                reference,
                approved_by: by,
            })
        }
        ReviewOutcome::Rejected { by, comment } => Ok(Settlement::Rejected { by, comment }),
        ReviewOutcome::TimedOut => Ok(Settlement::Expired),
    }
}
