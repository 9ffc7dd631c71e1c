//! [`WorkflowContext`]: the handle a workflow body uses for durable operations.
//!
//! The durable methods take `&self`, so a group can build its branches from the same context:
//! `ctx.all((ctx.run(a, x), ctx.sleep(d)))`.
//!
//! Inside a `#[workflow]` function, `ctx.run(..).await`, `ctx.sleep(..).await` and
//! `ctx.wait_for_signal::<S>().await` are compiled into suspension points of the state machine;
//! the methods here give them their types and documentation. Their return value, [`Durable`],
//! is deliberately not a future: awaiting one outside `#[workflow]` does not compile.

use std::marker::PhantomData;
use std::time::{Duration, SystemTime};

use crate::activity::{Activity, ActivityError};
use crate::child::{ChildError, ParentClosePolicy};
use crate::codec::encode;
use crate::group::DurableGroup;
use crate::saga::Compensation;
use crate::signal::Signal;
use crate::workflow::{Command, StepError, Workflow};

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
        &self,
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
    pub fn sleep(&self, duration: Duration) -> Durable<()> {
        Durable::new(Ok(Command::Sleep { duration }))
    }

    /// Runs a group of durable operations concurrently and resumes when all have finished, with
    /// each one's value: a tuple for a tuple of operations, a `Vec` for a `Vec`.
    ///
    /// Write the operations without `.await`: `ctx.all((ctx.run(a, x), ctx.sleep(d))).await`.
    /// Persisted: each branch's value as soon as that branch finishes, so after a crash only the
    /// unfinished branches run again. A failing activity branch is an `Err` in its place; the
    /// others still complete and are kept.
    pub fn all<G: DurableGroup>(&self, group: G) -> Durable<G::All> {
        Durable::new(
            group
                .into_branches()
                .map(|(branches, shape)| Command::All { branches, shape }),
        )
    }

    /// Runs a group of durable operations concurrently and resumes with the first to finish:
    /// a [`Race2`](crate::group::Race2)/`Race3`/`Race4` naming the winner for a tuple,
    /// `(index, value)` for a `Vec`. The losers are cancelled: their timers are disarmed and their
    /// activities see cancellation. A race of a signal against a sleep waits with a deadline.
    pub fn race<G: DurableGroup>(&self, group: G) -> Durable<G::Race> {
        Durable::new(
            group
                .into_branches()
                .map(|(branches, shape)| Command::Race { branches, shape }),
        )
    }

    /// Starts a child workflow and waits for its result. The child has its own id
    /// (`{parent id}/{step}`), state and history, and shows in describe and list with its parent.
    /// When the parent ends first, the child is cancelled (see [`ParentClosePolicy`]).
    pub fn child<W: Workflow>(
        &self,
        workflow: W,
        input: W::Input,
    ) -> Durable<Result<W::Output, ChildError>> {
        self.child_with(workflow, input, ParentClosePolicy::default())
    }

    /// [`child`](Self::child) with an explicit parent-close policy.
    pub fn child_with<W: Workflow>(
        &self,
        _workflow: W,
        input: W::Input,
        policy: ParentClosePolicy,
    ) -> Durable<Result<W::Output, ChildError>> {
        let command = encode(&input)
            .map(|input| Command::Child {
                workflow: W::NAME,
                input,
                policy,
            })
            .map_err(StepError::from);
        Durable::new(command)
    }

    /// Runs one compensation of a [`Saga`](crate::saga::Saga) durably.
    pub fn compensate(&self, step: Compensation) -> Durable<Result<(), ActivityError>> {
        let command = match step.input {
            Ok(input) => Ok(Command::Compensate {
                activity: step.activity,
                input,
            }),
            Err(reason) => Err(StepError::Codec(crate::codec::CodecError::Encode {
                type_name: "compensation input",
                reason,
            })),
        };
        Durable::new(command)
    }

    /// Parks the workflow until a signal of type `S` arrives. Signals sent before the workflow
    /// waits are stored and delivered in order.
    pub fn wait_for_signal<S: Signal>(&self) -> Durable<S> {
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
