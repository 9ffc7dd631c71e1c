//! Step events: a broadcast, sent after each durable commit of a workflow's step, that a server
//! turns into a live event stream. A hint for watchers, not a record: a slow receiver that lags
//! loses events (tokio's `RecvError::Lagged` says how many), and the stored record stays the one
//! source of truth.

use tokio::sync::broadcast;

use super::Engine;
use super::core::Inner;
use super::query::WorkflowStatus;
use super::record::{RecordStatus, WorkflowRecord};

/// Events buffered per receiver before the slowest one lags.
pub(crate) const CAPACITY: usize = 4096;

/// A workflow's step, committed durably: its start, each later step, its end, or its parking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepEvent {
    /// The workflow's id.
    pub id: String,
    /// The workflow type's name.
    pub workflow_type: String,
    /// How many steps the workflow has committed, this one included.
    pub step: u64,
    /// The status after the step.
    pub status: WorkflowStatus,
}

/// Sends the event of `record`, just committed for workflow `id`. Costs nothing when nobody
/// subscribed.
pub(crate) fn committed(inner: &Inner, id: &str, record: &WorkflowRecord) {
    if inner.events.receiver_count() == 0 {
        return;
    }
    let status = match &record.status {
        RecordStatus::Running => WorkflowStatus::Running,
        RecordStatus::Waiting => WorkflowStatus::Waiting,
        RecordStatus::Completed => WorkflowStatus::Completed,
        RecordStatus::Failed => WorkflowStatus::Failed,
        RecordStatus::Cancelled => WorkflowStatus::Cancelled,
        RecordStatus::TimedOut => WorkflowStatus::TimedOut,
        RecordStatus::Parked { .. } => WorkflowStatus::Parked,
    };
    let _ = inner.events.send(StepEvent {
        id: id.to_string(),
        workflow_type: record.workflow_type.clone(),
        step: record.step,
        status,
    });
}

impl Engine {
    /// Subscribes to the steps this engine commits from now on, each sent once its commit is
    /// durable. A receiver that falls more than 4,096 events behind loses the oldest
    /// (`RecvError::Lagged`); read the records (`describe`, `list`) to catch up.
    pub fn subscribe(&self) -> broadcast::Receiver<StepEvent> {
        self.inner.events.subscribe()
    }
}
