//! [`WorkflowError`]: a ready-made error type for workflows that need no error of their own.

use serde::{Deserialize, Serialize};

use crate::activity::ActivityError;
use crate::child::ChildError;

/// The error a workflow fails with when it uses the runtime's own error type.
///
/// Any activity error converts into it, so `ctx.run(..).await?` works in a workflow returning
/// `Result<T, WorkflowError>`. A workflow may use its own error type instead: it must implement
/// `Serialize`, `Deserialize`, `Display` and `From<ActivityError>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum WorkflowError {
    /// An activity failed after its retries.
    #[error(transparent)]
    Activity(#[from] ActivityError),
    /// A child workflow did not complete.
    #[error(transparent)]
    Child(#[from] ChildError),
    /// The workflow was cancelled.
    #[error("workflow cancelled")]
    Cancelled,
    /// The workflow ran past its execution timeout.
    #[error("workflow timed out")]
    TimedOut,
    /// The workflow's own logic decided to fail.
    #[error("{message}")]
    Failed {
        /// Why, for people.
        message: String,
    },
}

impl WorkflowError {
    /// A failure raised by the workflow's own logic.
    pub fn failed(message: impl Into<String>) -> Self {
        WorkflowError::Failed {
            message: message.into(),
        }
    }

    /// A stable, machine-readable code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            WorkflowError::Activity(e) => e.code(),
            WorkflowError::Child(e) => e.code(),
            WorkflowError::Cancelled => "workflow.cancelled",
            WorkflowError::TimedOut => "workflow.timed_out",
            WorkflowError::Failed { .. } => "workflow.failed",
        }
    }
}
