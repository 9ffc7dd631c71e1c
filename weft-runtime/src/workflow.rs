//! The contract between a workflow compiled by `#[workflow]` and the engine that drives it.
//!
//! A workflow is a pure step function over a serializable state enum: given the state and the
//! value that resumes it, [`Workflow::step`] runs the user's code up to the next durable await
//! and returns a [`Transition`]. The engine executes the [`Command`], persists, and steps again.

use std::fmt::{Debug, Display};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use std::sync::Arc;

use crate::activity::{Activity, ActivityError, ActivityOptions, DynActivity};
use crate::child::{ChildError, ParentClosePolicy};
use crate::codec::{CodecError, Payload};
use crate::context::WorkflowContext;
use crate::group::GroupShape;
use crate::interface::Interface;

/// A durable workflow: implemented by `#[workflow]` on an `async fn`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a workflow",
    label = "expected a function marked `#[workflow]`"
)]
pub trait Workflow: Send + Sync + 'static {
    /// The input given at start.
    type Input: Serialize + DeserializeOwned + Send + 'static;
    /// The value the workflow completes with.
    type Output: Serialize + DeserializeOwned + Send + 'static;
    /// The error the workflow fails with (the `E` of its `Result<T, E>`).
    type Error: Serialize + DeserializeOwned + Display + Debug + Send + 'static;
    /// The persisted state enum: one variant per resume point, carrying the live locals.
    type State: Serialize + DeserializeOwned + Debug + Send + 'static;

    /// The stable type name stored with every instance.
    const NAME: &'static str;
    /// The version, for keeping several versions registered side by side.
    const VERSION: u32 = 1;
    /// A hash of the state machine's shape. A stored state whose fingerprint differs was written
    /// by other code, and is not decoded.
    const FINGERPRINT: u64;

    /// The state a new instance starts in.
    fn start(input: Self::Input) -> Self::State;

    /// Runs the workflow from `state` with `resume` up to its next durable await or its end.
    /// Pure: no I/O, no clock, no randomness; everything it needs comes in as arguments.
    fn step(
        ctx: &mut WorkflowContext,
        state: Self::State,
        resume: Resume,
    ) -> Result<Transition<Self>, StepError>;

    /// The name of the state's variant, for describe and list.
    fn state_name(state: &Self::State) -> &'static str;

    /// Declares the activities this workflow runs, so registering the workflow registers them.
    fn activities(set: &mut ActivitySet);

    /// Declares what the workflow accepts and returns for calls by name: the signals and
    /// updates it waits for and, where its types have them, their JSON Schemas. `#[workflow]`
    /// writes it from the workflow's durable calls; by default nothing is declared, and
    /// `Engine::signal_by_name` and `Engine::update_by_name` refuse every name.
    fn interface(interface: &mut Interface) {
        let _ = interface;
    }
}

/// What a step function returns.
pub enum Transition<W: Workflow + ?Sized> {
    /// The workflow reached a durable await: persist `state`, then execute `command`.
    Suspend {
        /// The state to persist; the resume value of `command` continues it.
        state: W::State,
        /// The durable operation to execute.
        command: Command,
    },
    /// The workflow returned.
    Complete(Result<W::Output, W::Error>),
    /// Cancellation reached a durable await whose result cannot carry it, so the workflow ends
    /// as cancelled.
    Cancelled,
}

impl<W: Workflow + ?Sized> Debug for Transition<W>
where
    W::State: Debug,
    W::Output: Debug,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transition::Suspend { state, command } => f
                .debug_struct("Suspend")
                .field("state", state)
                .field("command", command)
                .finish(),
            Transition::Complete(result) => f.debug_tuple("Complete").field(result).finish(),
            Transition::Cancelled => f.write_str("Cancelled"),
        }
    }
}

/// The durable operation a suspended workflow waits on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Run an activity; resumes with [`Resume::Activity`].
    Activity {
        /// The activity's stable name.
        name: &'static str,
        /// The encoded input.
        input: Payload,
        /// Retry policy and timeout.
        options: ActivityOptions,
    },
    /// Wait for a duration; the engine stores the absolute deadline. Resumes with [`Resume::Timer`].
    Sleep {
        /// How long to wait from the moment the step is committed.
        duration: Duration,
    },
    /// Wait for a signal of the named type; resumes with [`Resume::Signal`].
    WaitForSignal {
        /// The signal's stable name.
        name: &'static str,
    },
    /// Run the branches concurrently until all finish; resumes with [`Resume::Group`] holding
    /// the encoded value of `ctx.all` (see [`crate::group`]).
    All {
        /// The branches, in order.
        branches: Vec<Command>,
        /// How the group's value is encoded.
        shape: GroupShape,
    },
    /// Run the branches concurrently until one finishes, then cancel the rest; resumes with
    /// [`Resume::Group`] holding the encoded value of `ctx.race`.
    Race {
        /// The branches, in order.
        branches: Vec<Command>,
        /// How the group's value is encoded.
        shape: GroupShape,
    },
    /// Start a child workflow and wait for it; resumes with [`Resume::Child`].
    Child {
        /// The child's workflow name.
        workflow: &'static str,
        /// The encoded input.
        input: Payload,
        /// What happens to the child if the parent ends first.
        policy: ParentClosePolicy,
        /// The child's execution timeout, stored as its absolute deadline when it starts.
        execution_timeout: Option<std::time::Duration>,
    },
    /// Run a saga's compensating activity by name; resumes with [`Resume::Activity`] (the
    /// output is discarded).
    Compensate {
        /// The compensating activity's name.
        activity: String,
        /// The encoded input.
        input: Payload,
    },
}

impl Command {
    /// A short name of the command's kind, for errors and describe.
    pub fn kind(&self) -> &'static str {
        match self {
            Command::Activity { .. } => "activity",
            Command::Sleep { .. } => "sleep",
            Command::WaitForSignal { .. } => "signal",
            Command::All { .. } => "all",
            Command::Race { .. } => "race",
            Command::Child { .. } => "child",
            Command::Compensate { .. } => "compensate",
        }
    }
}

/// The value that continues a suspended workflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resume {
    /// The first step of a new instance.
    Start,
    /// The pending activity finished: its encoded output, or its final error.
    Activity(Result<Payload, ActivityError>),
    /// The pending timer fired.
    Timer,
    /// The awaited signal arrived: its encoded payload.
    Signal(Payload),
    /// A group (`ctx.all`/`ctx.race`) finished: the encoded value of the group.
    Group(Payload),
    /// The child workflow ended: its encoded output, or why it did not complete.
    Child(Result<Payload, ChildError>),
    /// The workflow was cancelled while suspended.
    Cancelled,
    /// A cancellation cut the pending sleep short: the sleep returns, and the cancellation
    /// reaches the workflow at its next durable await as an error it can handle.
    Interrupted,
}

impl Resume {
    /// A short name of the resume kind, for errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Resume::Start => "start",
            Resume::Activity(_) => "activity",
            Resume::Timer => "timer",
            Resume::Signal(_) => "signal",
            Resume::Group(_) => "group",
            Resume::Child(_) => "child",
            Resume::Cancelled => "cancel",
            Resume::Interrupted => "interrupt",
        }
    }
}

/// A step could not run: the stored state and the resume value do not fit together.
///
/// The engine parks the workflow with this error; nothing is deleted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    /// The resume value is not the kind the state waits for.
    #[error("state `{state}` waits for a {expected} result but was resumed with a {got}")]
    UnexpectedResume {
        /// The state's variant name.
        state: &'static str,
        /// The resume kind the state waits for.
        expected: &'static str,
        /// The resume kind that arrived.
        got: &'static str,
    },
    /// A resume payload or a command input could not be encoded or decoded.
    #[error(transparent)]
    Codec(#[from] CodecError),
}

impl StepError {
    /// A stable, machine-readable code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            StepError::UnexpectedResume { .. } => "step.unexpected_resume",
            StepError::Codec(e) => e.code(),
        }
    }
}

/// The activities a workflow declares, collected when the workflow is registered.
#[derive(Default, Clone)]
pub struct ActivitySet {
    declared: Vec<(&'static str, Option<Arc<dyn DynActivity>>)>,
}

impl ActivitySet {
    /// An empty set.
    pub fn new() -> Self {
        ActivitySet::default()
    }

    /// Declares an activity and provides its implementation.
    pub fn add<A: Activity>(&mut self, activity: A) {
        self.declared.push((A::NAME, Some(Arc::new(activity))));
    }

    /// Declares an activity by name only: the engine builder fails unless an implementation
    /// with this name is registered some other way.
    pub fn require(&mut self, name: &'static str) {
        self.declared.push((name, None));
    }

    /// The declared activity names.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.declared.iter().map(|(name, _)| *name)
    }

    /// The declared activities, with their implementation where one was given.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, Option<&Arc<dyn DynActivity>>)> + '_ {
        self.declared
            .iter()
            .map(|(name, imp)| (*name, imp.as_ref()))
    }
}

impl Debug for ActivitySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}
