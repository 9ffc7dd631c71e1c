//! Child workflows: `ctx.child(workflow, input)` starts another workflow and waits for it.

use serde::{Deserialize, Serialize};

/// Why a child workflow did not complete with a value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ChildError {
    /// The child returned its error; `message` is its `Display`.
    #[error("child workflow failed: {message}")]
    Failed {
        /// The child's error, rendered.
        message: String,
    },
    /// The child was cancelled.
    #[error("child workflow cancelled")]
    Cancelled,
    /// The child ran past its execution timeout.
    #[error("child workflow timed out")]
    TimedOut,
    /// The child's workflow type is not registered with the engine.
    #[error("child workflow type `{name}` is not registered with this engine; register it")]
    NotRegistered {
        /// The child's workflow name.
        name: String,
    },
}

impl ChildError {
    /// A stable, machine-readable code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            ChildError::Failed { .. } => "child.failed",
            ChildError::Cancelled => "child.cancelled",
            ChildError::TimedOut => "child.timed_out",
            ChildError::NotRegistered { .. } => "child.not_registered",
        }
    }
}

/// What happens to a running child when its parent ends first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ParentClosePolicy {
    /// Cancel the child (the default): it sees cancellation at its current durable await.
    #[default]
    RequestCancel,
    /// Let the child run on, on its own.
    Abandon,
    /// The parent's completion waits for the child to end.
    Wait,
}
