//! [`WorkflowContext`]: the handle a workflow body uses for durable operations.
//!
//! The durable methods take `&self`, so a group can build its branches from the same context:
//! `ctx.all((ctx.run(a, x), ctx.sleep(d)))`.
//!
//! Inside a `#[workflow]` function, `ctx.run(..).await`, `ctx.sleep(..).await` and
//! `ctx.wait_for_signal::<S>().await` are compiled into suspension points of the state machine;
//! the methods here give them their types and documentation. Their return value, [`Durable`],
//! is deliberately not a future: awaiting one outside `#[workflow]` does not compile.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use crate::activity::{Activity, ActivityError};
use crate::attribute::AttributeValue;
use crate::child::{ChildError, ParentClosePolicy};
use crate::codec::{Payload, encode};
use crate::group::DurableGroup;
use crate::group::GroupShape;
use crate::review::{REVIEW_QUEUE, ReviewOutcome, ReviewRequest};
use crate::saga::Compensation;
use crate::signal::Signal;
use crate::update::{Update, UpdateReply};
use crate::workflow::{Command, StepError, Workflow};

/// What a workflow step knows about the instance it runs for.
///
/// The engine builds one per step. It carries no I/O handles: a step stays pure.
#[derive(Debug)]
pub struct WorkflowContext {
    workflow_id: String,
    step: u64,
    now: SystemTime,
    /// Search attributes set during this step, committed with it.
    attributes: BTreeMap<String, AttributeValue>,
    /// What the step asked for besides its transition; behind a lock because the durable
    /// methods take `&self`.
    effects: Mutex<StepEffects>,
}

impl Clone for WorkflowContext {
    fn clone(&self) -> Self {
        WorkflowContext {
            workflow_id: self.workflow_id.clone(),
            step: self.step,
            now: self.now,
            attributes: self.attributes.clone(),
            effects: Mutex::new(self.lock_effects().clone()),
        }
    }
}

/// What a step produced besides its transition, committed by the engine in the same
/// transaction as the step's next state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepEffects {
    /// Update answers given with [`WorkflowContext::respond`]: `(update id, encoded response)`,
    /// or why a response did not encode.
    pub responses: Vec<Result<(String, Payload), StepError>>,
    /// The review the step suspends at, from [`WorkflowContext::review`].
    pub review: Option<ReviewRequest>,
}

impl StepEffects {
    /// Whether the step produced nothing besides its transition.
    pub fn is_empty(&self) -> bool {
        self.responses.is_empty() && self.review.is_none()
    }
}

impl WorkflowContext {
    /// A context for step `step` of workflow `workflow_id`, at the engine's time `now`.
    #[doc(hidden)]
    pub fn new(workflow_id: impl Into<String>, step: u64, now: SystemTime) -> Self {
        WorkflowContext {
            workflow_id: workflow_id.into(),
            step,
            now,
            attributes: BTreeMap::new(),
            effects: Mutex::new(StepEffects::default()),
        }
    }

    /// Sets search attribute `key` to `value` (a string, an integer or a time: see
    /// [`AttributeValue`]), replacing any earlier value of that key. Other keys keep theirs.
    ///
    /// This is a plain call, not a durable operation: the context buffers the value and the
    /// engine writes it **in the same commit as the step** that set it, so after a crash an
    /// attribute is visible exactly when the step that set it is (a step that did not commit
    /// runs again and sets it again). `Engine::list` filters on attributes and
    /// `Engine::count` groups by them; they outlive the workflow's end.
    ///
    /// ```text
    /// ctx.set_attribute("customer", order.customer.clone());
    /// ctx.set_attribute("total_cents", order.total_cents);
    /// ```
    pub fn set_attribute(&mut self, key: impl Into<String>, value: impl Into<AttributeValue>) {
        self.attributes
            .insert(key.into(), value.into().normalized());
    }

    /// The search attributes set in this step so far, in key order.
    pub fn attributes(&self) -> &BTreeMap<String, AttributeValue> {
        &self.attributes
    }

    /// Takes the buffered attributes out, for the engine to commit with the step.
    pub(crate) fn take_attributes(&mut self) -> BTreeMap<String, AttributeValue> {
        std::mem::take(&mut self.attributes)
    }

    fn lock_effects(&self) -> std::sync::MutexGuard<'_, StepEffects> {
        // The effects are plain data: a panic elsewhere cannot leave them half-written.
        self.effects.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes what the step produced besides its transition (the engine calls this after `step`).
    #[doc(hidden)]
    pub fn take_effects(&mut self) -> StepEffects {
        std::mem::take(self.lock_effects_mut())
    }

    fn lock_effects_mut(&mut self) -> &mut StepEffects {
        self.effects
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
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
    ///
    /// Cancellation (`engine.cancel`) while it sleeps cuts the sleep short: it returns at once,
    /// and the cancellation reaches the workflow at its next durable await, where `ctx.run`,
    /// `ctx.child` and `ctx.compensate` report it as an error the workflow can handle (for
    /// example by running cleanup activities). If that next await is another sleep, a signal
    /// wait or a group, the workflow ends there as cancelled.
    ///
    /// A duration whose deadline cannot be represented (say `Duration::MAX`) saturates: the
    /// deadline is stored as "never", so the sleep ends only by cancellation.
    pub fn sleep(&self, duration: Duration) -> Durable<()> {
        Durable::new(Ok(Command::Sleep { duration }))
    }

    /// Runs a group of durable operations concurrently and resumes when all have finished, with
    /// each one's value in branch order: a tuple for a tuple of two to four operations, a `Vec`
    /// for a `Vec` of operations of one type (annotate the binding:
    /// `let checks: Vec<Result<bool, ActivityError>> = ctx.all(..).await;`).
    ///
    /// Write the operations without `.await`: `ctx.all((ctx.run(a, x), ctx.sleep(d))).await`, or
    /// `ctx.all(items.iter().map(|i| ctx.run(check, i.clone())).collect::<Vec<_>>()).await`.
    /// A branch's value is what the operation alone would give: `Result<T, ActivityError>` for
    /// an activity, `Result<T, ChildError>` for a child, `()` for a sleep, the signal for a
    /// signal wait. A failing branch is an `Err` in its place; the others still run and are kept.
    /// `ctx.all` of an empty `Vec` resumes at once with an empty `Vec`.
    ///
    /// Persisted, and when:
    /// - **Suspending** commits, in one transaction, the workflow state with every branch
    ///   pending, the timer of each sleep branch, and each child branch's record (see
    ///   [`child`](Self::child)). Activity branches start after that commit.
    /// - **Each branch's value is committed as that branch finishes**, in the workflow's record,
    ///   together with what it consumed (the signal taken off the queue, the fired timer).
    ///   Branches that finish together may share a commit. After a crash only the branches with
    ///   no committed value run again; an activity that was running when the process died runs
    ///   again (at least once, as for [`run`](Self::run)).
    /// - **The resume** commits the next state with the group's value, once the last branch's
    ///   value is in.
    ///
    /// Cancellation (`engine.cancel(id)`) while the group waits: running activity branches are
    /// asked to stop through their cancellation signal and their results are not awaited, the
    /// timers of unfinished sleeps are disarmed, unfinished children are cancelled per their
    /// [`ParentClosePolicy`]. The workflow ends as cancelled at this await: unlike
    /// `ctx.run(..)`, a group does not hand the cancellation to the workflow as a value, so
    /// there is no cleanup after it. A branch that is itself a group is not supported: the
    /// workflow is parked with `engine.nested_group`; await the inner group in its own statement.
    pub fn all<G: DurableGroup>(&self, group: G) -> Durable<G::All> {
        Durable::new(
            group
                .into_branches()
                .map(|(branches, shape)| Command::All { branches, shape }),
        )
    }

    /// Runs a group of durable operations concurrently and resumes with the first to finish:
    /// a [`Race2`](crate::group::Race2)/[`Race3`](crate::group::Race3)/
    /// [`Race4`](crate::group::Race4) naming the winner for a tuple, `(index, value)` for a
    /// `Vec`. A race of a signal against a sleep is the way to wait with a deadline:
    ///
    /// ```text
    /// match ctx.race((ctx.wait_for_signal::<Approval>(), ctx.sleep(deadline))).await {
    ///     Race2::First(approval) => ..,
    ///     Race2::Second(()) => .., // timed out
    /// }
    /// ```
    ///
    /// A failed activity finishes its branch too: it wins with its `Err`. When several branches
    /// are found finished at once (say, after a restart, a queued signal and a passed deadline),
    /// the one listed first wins. A race over an empty `Vec` can never finish: the workflow is
    /// parked with `engine.empty_race`.
    ///
    /// Persisted, and when: suspending commits the state with every branch pending, timers and
    /// child records included, as for [`all`](Self::all). A winning activity's result is
    /// committed as it arrives, as for `all`; a winning timer, signal or child is committed with
    /// the resume itself. The resume commits, in one transaction, the next state with the
    /// winner's value, the winner's signal or timer consumed, the losers' timers disarmed, and a
    /// cancellation request for each losing child (unless its policy is
    /// [`ParentClosePolicy::Abandon`]). Losing activities are asked to stop through their
    /// cancellation signal as soon as the winner is known; their results are dropped, never
    /// recorded, so a losing activity may still have had its effect. A losing signal branch
    /// takes nothing: a signal that arrives later stays queued for a later wait.
    ///
    /// Cancellation while the race waits does what it does for [`all`](Self::all): every branch
    /// is stopped and the workflow ends as cancelled at this await.
    pub fn race<G: DurableGroup>(&self, group: G) -> Durable<G::Race> {
        Durable::new(
            group
                .into_branches()
                .map(|(branches, shape)| Command::Race { branches, shape }),
        )
    }

    /// Starts a child workflow and waits for its result, typed like [`run`](Self::run):
    /// `Ok(output)`, or a [`ChildError`] saying why there is none.
    ///
    /// The child is a workflow of its own: its own id, `{parent id}/{step}` (in a group,
    /// `{parent id}/{step}.{branch}`), its own state and history, and it shows in describe and
    /// list like any other. Its type must be registered with the engine; if it is not, the
    /// parent is parked with `child.not_registered` until an engine that has it resumes it.
    ///
    /// Persisted, and when: the child is created **in the parent's step commit**: the same
    /// transaction stores the parent's state waiting on the child, the child's record after its
    /// own first step (its first durable operation already pending), and the link that makes
    /// the child's end wake the parent. So either both exist or neither does, and a crash can
    /// neither lose the child nor start it twice. The child's result is read from its record
    /// when it ends, and committed with the parent's next state.
    ///
    /// Cancellation: cancelling the parent while it waits here resumes the parent with
    /// `Err(ChildError::Cancelled)`, so it can clean up, and commits, with that resume, a
    /// cancellation request for the child (with the default policy,
    /// [`ParentClosePolicy::RequestCancel`]). Cancelling the child itself ends the parent's wait
    /// with `Err(ChildError::Cancelled)` too.
    pub fn child<W: Workflow>(
        &self,
        workflow: W,
        input: W::Input,
    ) -> Durable<Result<W::Output, ChildError>> {
        self.child_with(workflow, input, ParentClosePolicy::default())
    }

    /// [`child`](Self::child) with an explicit parent-close policy: what happens to the child
    /// when the parent stops waiting for it first (the parent is cancelled, or the child loses a
    /// [`race`](Self::race)). The policy is stored with the parent's pending wait. Pass
    /// [`ChildOptions`](crate::ChildOptions) instead of a policy to give the child an execution
    /// timeout too: `ctx.child_with(w, input, ChildOptions::timeout(HOUR))`.
    pub fn child_with<W: Workflow>(
        &self,
        _workflow: W,
        input: W::Input,
        options: impl Into<crate::child::ChildOptions>,
    ) -> Durable<Result<W::Output, ChildError>> {
        let options = options.into();
        let command = encode(&input)
            .map(|input| Command::Child {
                workflow: W::NAME,
                input,
                policy: options.policy,
                execution_timeout: options.execution_timeout,
            })
            .map_err(StepError::from);
        Durable::new(command)
    }

    /// Runs one compensation of a [`Saga`](crate::saga::Saga) durably, as an activity call:
    /// `Ok(())`, or the compensating activity's error after its retries.
    ///
    /// Persisted, and when: the step that pops the compensation (`saga.pop()`) suspends here,
    /// so its commit stores the saga without that compensation and the compensation pending, in
    /// one transaction; the compensating activity runs after it, and its result is committed with
    /// the next state. After a crash in between, recovery runs the pending compensation again
    /// (at least once, as for [`run`](Self::run)); the ones already committed do not run again
    /// and the ones still in the saga run after it. Make compensations idempotent.
    ///
    /// It runs with the retry policy and timeout of the activity registered under the
    /// compensation's name (declared with `#[activity(max_attempts = .., ..)]`, or an
    /// override's), looked up when it is scheduled. Cancellation while it runs asks the activity to stop
    /// and resumes with `Err(ActivityError::Cancelled)`; `ctx.compensate(step).await?` then
    /// ends the workflow (as cancelled), leaving the rest of the saga undone. To compensate
    /// fully even when cancelled, handle the error instead of `?`: the durable awaits after a
    /// delivered cancellation run normally.
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
    ///
    /// Cancellation while it waits ends the workflow as cancelled at this await: there is no
    /// `S` to resume with. To wait with a way out, race the signal against a sleep.
    pub fn wait_for_signal<S: Signal>(&self) -> Durable<S> {
        Durable::new(Ok(Command::WaitForSignal { name: S::NAME }))
    }

    /// Parks the workflow until an update of type `U` arrives (sent with `Engine::update`), and
    /// resumes with the request and the token to answer it with [`respond`](Self::respond).
    ///
    /// Updates are queued durably like signals, in their own queue (`U::QUEUE`), and delivered
    /// in order; the delivered update is taken off the queue in the commit of the resume.
    pub fn wait_for_update<U: Update>(&self) -> Durable<(U, UpdateReply<U>)> {
        Durable::new(Ok(Command::WaitForSignal { name: U::QUEUE }))
    }

    /// Answers an update. Not a durable operation: the answer is buffered in this context and
    /// committed in the same transaction as the workflow's next state (the state at its next
    /// durable await, or its end), so a caller never sees an answer whose state was lost in a
    /// crash. Answering the same update twice keeps the first answer.
    ///
    /// A response that does not encode parks the workflow with the codec error.
    pub fn respond<U: Update>(&self, reply: UpdateReply<U>, response: U::Response) {
        let answer = encode(&response)
            .map(|payload| (reply.update_id().to_string(), payload))
            .map_err(StepError::from);
        self.lock_effects().responses.push(answer);
    }

    /// Parks the workflow with a review request until a reviewer decides
    /// (`Engine::decide_review`) or the request's timeout passes, and resumes with the
    /// [`ReviewOutcome`]: `Approved`, `Rejected` or `TimedOut`.
    ///
    /// Persisted, and when: the step that suspends here commits, in one transaction, the state,
    /// the review record that `Engine::pending_reviews` lists, and the review's deadline timer.
    /// A decision is queued durably; the resume commits the next state with the outcome and
    /// removes the review record. It is a race of a decision against a timer (see
    /// [`race`](Self::race)); a decision and the deadline found together resolve as the
    /// decision. Cancellation while the review waits ends the workflow as cancelled here, as
    /// for a race. A decision `decide_review` accepted is never dropped: it wins over the
    /// review's timeout, a cancellation or the execution deadline still being delivered, which
    /// then reach the workflow at its next durable await. One review at a time per workflow: do
    /// not put it in a group.
    pub fn review(&self, request: ReviewRequest) -> Durable<ReviewOutcome> {
        let timeout = request.timeout;
        self.lock_effects().review = Some(request);
        Durable::new(Ok(Command::Race {
            branches: vec![
                Command::WaitForSignal { name: REVIEW_QUEUE },
                Command::Sleep { duration: timeout },
            ],
            shape: GroupShape::Tuple,
        }))
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
    #[doc(hidden)]
    pub fn into_command(self) -> Result<Command, StepError> {
        self.command
    }
}
