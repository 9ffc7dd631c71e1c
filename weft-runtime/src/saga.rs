//! Sagas: compensations registered after each step that succeeded, run in reverse on failure.
//!
//! A [`Saga`] is ordinary workflow state: keep it in a `let mut saga: Saga` and it is saved with
//! the workflow at every await. Compensating is a loop of durable operations,
//!
//! ```text
//! while let Some(step) = saga.pop() {
//!     ctx.compensate(step).await?;
//! }
//! ```
//!
//! so a crash in the middle of compensating resumes with the compensations still left: each one
//! is popped before it runs, and the state that no longer holds it is committed with its result.

use serde::{Deserialize, Serialize};

use crate::activity::Activity;
use crate::codec::{Payload, encode};

/// One compensating activity call: its name and its encoded input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compensation {
    /// The compensating activity's stable name.
    pub activity: String,
    /// Its encoded input, or why the input could not be encoded.
    pub input: Result<Payload, String>,
}

/// The compensations of a saga, last registered first out.
///
/// A saga is plain data, saved with the workflow's state at every durable await: nothing is
/// persisted when you call [`add`](Self::add) or [`pop`](Self::pop) alone, but the next
/// commit holds the saga as it is then. So register a compensation right after the step it
/// undoes has succeeded; a crash in between re-runs the step (its result was not committed),
/// never the compensation of a step that did not happen. Run the compensations with
/// [`WorkflowContext::compensate`](crate::WorkflowContext::compensate):
///
/// ```text
/// let mut saga: Saga = Saga::new();
/// let flight = ctx.run(book_flight, trip.clone()).await?;
/// saga.add(cancel_flight, flight.clone());
/// // ... on a failure:
/// while let Some(step) = saga.pop() {
///     ctx.compensate(step).await?;
/// }
/// ```
///
/// Each compensation is popped in the step that suspends on it, so the committed state no
/// longer holds it while it runs, and its result is committed with the next state: a crash in
/// the middle of compensating resumes with the pending one and those still in the saga; it
/// does not start over. Annotate the binding (`let mut saga: Saga`) like any value held across
/// an await.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saga {
    steps: Vec<Compensation>,
}

impl Saga {
    /// An empty saga.
    pub fn new() -> Self {
        Saga::default()
    }

    /// Registers `activity(input)` to undo the step that just succeeded. The input is encoded
    /// now; if it cannot be, [`WorkflowContext::compensate`](crate::WorkflowContext::compensate)
    /// reports it when the compensation is run.
    pub fn add<A: Activity>(&mut self, _activity: A, input: A::Input) {
        self.steps.push(Compensation {
            activity: A::NAME.to_string(),
            input: encode(&input).map_err(|e| e.to_string()),
        });
    }

    /// Takes the most recently registered compensation.
    pub fn pop(&mut self) -> Option<Compensation> {
        self.steps.pop()
    }

    /// How many compensations are registered.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// Whether no compensation is registered.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Forgets every compensation, for when the saga succeeded as a whole.
    pub fn clear(&mut self) {
        self.steps.clear();
    }
}
