//! [`WorkflowContext`]: the handle a workflow body uses for durable operations.
//!
//! Inside a `#[workflow]` function, `ctx.run(..).await`, `ctx.sleep(..).await` and
//! `ctx.wait_for_signal::<S>().await` are compiled into suspension points of the state machine;
//! the methods here give them their types and documentation. Their return value, [`Durable`],
//! is deliberately not a future: awaiting one outside `#[workflow]` does not compile.

use std::marker::PhantomData;
use std::time::{Duration, SystemTime};

use crate::activity::{Activity, ActivityError};
use crate::codec::encode;
use crate::signal::Signal;
use crate::workflow::{Command, StepError};

/// What a workflow step knows about the instance it runs for.
///
/// The engine builds one per step. It carries no I/O handles: a step stays pure.
#[derive(Debug, Clone)]
pub struct WorkflowContext {
    workflow_id: String,
    step: u64,
    now: SystemTime,
}

impl WorkflowContext {
    /// A context for step `step` of workflow `workflow_id`, at the engine's time `now`.
    pub fn new(workflow_id: impl Into<String>, step: u64, now: SystemTime) -> Self {
        WorkflowContext {
            workflow_id: workflow_id.into(),
            step,
            now,
        }
    }

    /// The workflow instance's id.
    pub fn workflow_id(&self) -> &str {
        &self.workflow_id
    }

    /// How many durable steps this instance has completed before this one.
    pub fn step(&self) -> u64 {
        self.step
    }

    /// The time at which the engine started this step (the virtual time under the test kit).
    pub fn now(&self) -> SystemTime {
        self.now
    }

    /// Runs an activity durably and returns its result.
    ///
    /// Persisted: before the activity starts, the workflow state with the pending call; when it
    /// finishes, its result together with the next state. The activity runs at least once and its
    /// result is recorded exactly once.
    pub fn run<A: Activity>(
        &mut self,
        activity: A,
        input: A::Input,
    ) -> Durable<Result<A::Output, ActivityError>> {
        let command = encode(&input)
            .map(|input| Command::Activity {
                name: A::NAME,
                input,
                options: activity.options(),
            })
            .map_err(StepError::from);
        Durable::new(command)
    }

    /// Sleeps durably. The absolute deadline is stored, so a restart does not extend the wait.
    pub fn sleep(&mut self, duration: Duration) -> Durable<()> {
        Durable::new(Ok(Command::Sleep { duration }))
    }

    /// Parks the workflow until a signal of type `S` arrives. Signals sent before the workflow
    /// waits are stored and delivered in order.
    pub fn wait_for_signal<S: Signal>(&mut self) -> Durable<S> {
        Durable::new(Ok(Command::WaitForSignal { name: S::NAME }))
    }
}

/// A durable operation, written as `ctx.op(..).await` inside a `#[workflow]` function.
///
/// It holds the command the workflow suspends with and, as a type, the value it resumes with.
/// The macro replaces the `.await` with a suspension of the state machine, so it is never
/// polled; outside `#[workflow]` it cannot be awaited at all.
#[must_use = "a durable operation does nothing unless it is awaited inside a #[workflow] function"]
#[derive(Debug)]
pub struct Durable<T> {
    command: Result<Command, StepError>,
    resumes_with: PhantomData<fn() -> T>,
}

impl<T> Durable<T> {
    fn new(command: Result<Command, StepError>) -> Self {
        Durable {
            command,
            resumes_with: PhantomData,
        }
    }

    /// The command the workflow suspends with, or why it could not be built (an input that
    /// does not encode).
    pub fn into_command(self) -> Result<Command, StepError> {
        self.command
    }
}
