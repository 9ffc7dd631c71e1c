//! Child workflows: `ctx.child(workflow, input)` starts another workflow and waits for it.

use serde::{Deserialize, Serialize};

/// Why a child workflow did not complete with a value: the error side of
/// `ctx.child(..).await`.
///
/// It is committed with the parent's next state, like an activity's error, so a parent that
/// catches it and carries on does not see the child run again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ChildError {
    /// The child returned its error; `message` is its `Display`.
    #[error("child workflow failed: {message}")]
    Failed {
        /// The child's error, rendered.
        message: String,
    },
    /// The child was cancelled (by `engine.cancel` on the child), or the parent was cancelled
    /// while it waited for the child: the parent can catch this and clean up.
    #[error("child workflow cancelled")]
    Cancelled,
    /// The child ran past its execution timeout. Reserved: children have no execution timeout
    /// yet, so the engine does not produce it today.
    #[error("child workflow timed out")]
    TimedOut,
    /// The child's workflow type is not registered with the engine. The engine parks the
    /// parent (`child.not_registered`) rather than resuming it with this, so that an engine
    /// with the type registered can go on; it exists for callers that report the condition.
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

/// What happens to a running child when its parent stops waiting for it first: the parent is
/// cancelled while it waits on the child, or the child is a losing branch of `ctx.race`.
///
/// Set with `ctx.child_with(workflow, input, policy)`; `ctx.child` uses the default. The policy
/// is stored with the parent's pending wait, and what it decides is committed with the
/// parent's resume: the cancellation request for the child is written in that transaction, and
/// the child is woken to see it once the commit is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ParentClosePolicy {
    /// Request the child's cancellation (the default): the child sees it at its current durable
    /// await, as with `engine.cancel` on the child, and may clean up before it ends.
    #[default]
    RequestCancel,
    /// Let the child run on, on its own, to its end; nobody waits for its result. It stays
    /// listed under its own id.
    Abandon,
    /// The parent waits for the child to end: cancelling (or timing out) a parent that waits
    /// on this child with `ctx.child_with` does not cancel the child; the parent's wait goes
    /// on until the child has ended, resumes with the child's result, and the cancellation
    /// reaches the parent at its next durable await. (A `Wait` child that loses a race, or is
    /// left behind by a group the parent was cancelled in, is not cancelled and runs to its
    /// end on its own.)
    Wait,
}

/// How `ctx.child_with` runs a child: its parent-close policy and an optional execution
/// timeout. A bare [`ParentClosePolicy`] converts into options without a timeout.
///
/// The timeout works as [`StartOptions::execution_timeout`](crate::StartOptions) does for a
/// workflow started by the engine: the child's absolute deadline is committed with the child
/// (in its parent's step), and when it passes the child sees a cancellation, may clean up, and
/// ends as timed out; its parent resumes with `Err(ChildError::TimedOut)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChildOptions {
    /// What happens to the child when its parent stops waiting for it first.
    pub policy: ParentClosePolicy,
    /// How long the child may run in all, from its start.
    pub execution_timeout: Option<std::time::Duration>,
}

impl ChildOptions {
    /// The default policy with an execution timeout.
    pub fn timeout(execution_timeout: std::time::Duration) -> Self {
        ChildOptions {
            policy: ParentClosePolicy::default(),
            execution_timeout: Some(execution_timeout),
        }
    }
}

impl From<ParentClosePolicy> for ChildOptions {
    fn from(policy: ParentClosePolicy) -> Self {
        ChildOptions {
            policy,
            execution_timeout: None,
        }
    }
}
