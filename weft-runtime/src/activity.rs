//! Activities: the side-effecting functions a workflow runs through `ctx.run`.
//!
//! `#[activity]` turns an `async fn` into a unit struct implementing [`Activity`]; the engine
//! runs it under its [`RetryPolicy`] and hands it an [`ActivityContext`].

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A typed, named side effect that a workflow runs with `ctx.run(activity, input)`.
///
/// Implemented by `#[activity]`; implement it by hand only for activities the macro cannot express.
/// The result is recorded exactly once in the workflow's state; the side effect itself runs at
/// least once, so an activity should use [`ActivityContext::idempotency_key`] to deduplicate.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an activity",
    label = "expected a function marked `#[activity]`",
    note = "the first argument of `ctx.run` must name a function marked `#[activity]`"
)]
pub trait Activity: Send + Sync + 'static {
    /// The input the workflow passes to `ctx.run`.
    type Input: Serialize + DeserializeOwned + Send + 'static;
    /// The value a successful run returns to the workflow.
    type Output: Serialize + DeserializeOwned + Send + 'static;
    /// The stable name stored in the workflow's pending command. Renaming it strands
    /// workflows parked on the old name, so `#[activity(name = "...")]` can pin it.
    const NAME: &'static str;

    /// The retry policy and timeout the engine applies when no override is registered.
    fn options(&self) -> ActivityOptions {
        ActivityOptions::default()
    }

    /// Runs one attempt.
    fn execute(
        &self,
        ctx: ActivityContext,
        input: Self::Input,
    ) -> impl Future<Output = Result<Self::Output, ActivityError>> + Send;
}

/// Why an activity attempt failed. The variant decides whether the engine retries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ActivityError {
    /// A transient failure: the engine retries it while the retry policy allows.
    #[error("activity failed: {message}")]
    Failed {
        /// What went wrong, for people.
        message: String,
    },
    /// A permanent failure: the engine does not retry it.
    #[error("activity failed permanently: {message}")]
    NonRetryable {
        /// What went wrong, for people.
        message: String,
    },
    /// One attempt ran longer than the policy's per-attempt timeout.
    #[error("activity attempt timed out after {timeout_ms} ms")]
    TimedOut {
        /// The per-attempt timeout that was exceeded.
        timeout_ms: u64,
    },
    /// The workflow was cancelled while the activity was pending.
    #[error("activity cancelled")]
    Cancelled,
    /// The activity is not registered with the engine.
    #[error(
        "activity `{name}` is not registered with this engine; register the workflow that uses it"
    )]
    NotRegistered {
        /// The activity name from the pending command.
        name: String,
    },
    /// The activity's input or output could not be encoded or decoded.
    #[error("activity payload: {message}")]
    Payload {
        /// What the codec reported.
        message: String,
    },
}

impl ActivityError {
    /// A transient failure the engine may retry.
    pub fn failed(message: impl Into<String>) -> Self {
        ActivityError::Failed {
            message: message.into(),
        }
    }

    /// A permanent failure the engine must not retry.
    pub fn non_retryable(message: impl Into<String>) -> Self {
        ActivityError::NonRetryable {
            message: message.into(),
        }
    }

    /// Whether the retry policy may run another attempt after this error.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ActivityError::Failed { .. } | ActivityError::TimedOut { .. }
        )
    }

    /// A stable, machine-readable code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            ActivityError::Failed { .. } => "activity.failed",
            ActivityError::NonRetryable { .. } => "activity.non_retryable",
            ActivityError::TimedOut { .. } => "activity.timed_out",
            ActivityError::Cancelled => "activity.cancelled",
            ActivityError::NotRegistered { .. } => "activity.not_registered",
            ActivityError::Payload { .. } => "activity.payload",
        }
    }
}

impl From<std::io::Error> for ActivityError {
    fn from(e: std::io::Error) -> Self {
        ActivityError::failed(e.to_string())
    }
}

impl From<String> for ActivityError {
    fn from(message: String) -> Self {
        ActivityError::failed(message)
    }
}

impl From<&str> for ActivityError {
    fn from(message: &str) -> Self {
        ActivityError::failed(message)
    }
}

/// How the engine retries an activity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Attempts in total, the first included. `1` means no retry.
    pub max_attempts: u32,
    /// Delay before the second attempt.
    pub initial_backoff: Duration,
    /// Each further delay is the previous one times this factor (in percent: 200 doubles).
    pub backoff_percent: u32,
    /// Delays never grow beyond this.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            backoff_percent: 200,
            max_backoff: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn no_retry() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The delay to wait after attempt `attempt` (1-based) failed, before the next one.
    pub fn backoff_after(&self, attempt: u32) -> Duration {
        let mut delay = self.initial_backoff;
        for _ in 1..attempt {
            delay = delay.saturating_mul(self.backoff_percent) / 100;
            if delay >= self.max_backoff {
                return self.max_backoff;
            }
        }
        delay.min(self.max_backoff)
    }
}

/// Per-activity execution options: retries and the per-attempt timeout.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ActivityOptions {
    /// How failed attempts are retried.
    pub retry: RetryPolicy,
    /// How long one attempt may run; `None` lets it run until it returns.
    pub attempt_timeout: Option<Duration>,
}

/// Shared application resources (database pools, HTTP clients) that activities can read.
///
/// Built once and given to the engine builder; activities fetch them by type.
#[derive(Clone, Default)]
pub struct Resources {
    by_type: Arc<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
}

impl Resources {
    /// An empty set of resources.
    pub fn new() -> Self {
        Resources::default()
    }

    /// Adds a resource, replacing any earlier one of the same type.
    pub fn with<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        Arc::make_mut(&mut self.by_type).insert(TypeId::of::<T>(), Arc::new(value));
        self
    }

    /// Adds a resource that the caller keeps a handle to as well.
    pub fn with_arc<T: Send + Sync + 'static>(mut self, value: Arc<T>) -> Self {
        Arc::make_mut(&mut self.by_type).insert(TypeId::of::<T>(), value);
        self
    }

    /// The resource of type `T`, if one was added.
    pub fn get<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        self.by_type
            .get(&TypeId::of::<T>())
            .cloned()
            .and_then(|any| any.downcast::<T>().ok())
    }
}

impl std::fmt::Debug for Resources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resources")
            .field("count", &self.by_type.len())
            .finish()
    }
}

/// What an activity attempt knows about itself: who runs it, which attempt it is, and how to
/// notice cancellation.
#[derive(Clone, Debug)]
pub struct ActivityContext {
    workflow_id: Arc<str>,
    step: u64,
    attempt: u32,
    resources: Resources,
    cancel: tokio::sync::watch::Receiver<bool>,
    branch: Option<u32>,
}

impl ActivityContext {
    /// Creates a context. The engine does this; tests and mocks may too.
    pub fn new(
        workflow_id: impl Into<Arc<str>>,
        step: u64,
        attempt: u32,
        resources: Resources,
        cancel: tokio::sync::watch::Receiver<bool>,
    ) -> Self {
        ActivityContext {
            workflow_id: workflow_id.into(),
            step,
            attempt,
            resources,
            cancel,
            branch: None,
        }
    }

    /// The same context for branch `index` of a `ctx.all`/`ctx.race` group, whose branches share
    /// one step: the branch becomes part of the idempotency key.
    pub fn in_branch(mut self, index: u32) -> Self {
        self.branch = Some(index);
        self
    }

    /// The branch of a group this call belongs to, if any.
    pub fn branch(&self) -> Option<u32> {
        self.branch
    }

    /// A context for running an activity outside an engine, for example in a unit test.
    pub fn detached(workflow_id: &str, step: u64) -> Self {
        let (_tx, rx) = tokio::sync::watch::channel(false);
        ActivityContext::new(workflow_id, step, 1, Resources::default(), rx)
    }

    /// The id of the workflow that runs this activity.
    pub fn workflow_id(&self) -> &str {
        &self.workflow_id
    }

    /// The workflow step that issued this activity.
    pub fn step(&self) -> u64 {
        self.step
    }

    /// The attempt number, starting at 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// A key that is the same on every attempt of this activity call, also across crashes:
    /// `"{workflow_id}/{step}"`, or `"{workflow_id}/{step}.{branch}"` inside a group. Pass it to
    /// downstream services to make the side effect idempotent.
    pub fn idempotency_key(&self) -> String {
        match self.branch {
            None => format!("{}/{}", self.workflow_id, self.step),
            Some(branch) => format!("{}/{}.{}", self.workflow_id, self.step, branch),
        }
    }

    /// The shared resource of type `T`, if the engine was given one.
    pub fn resource<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        self.resources.get::<T>()
    }

    /// Whether the engine has asked this activity to stop.
    pub fn is_cancelled(&self) -> bool {
        *self.cancel.borrow()
    }

    /// Completes when the engine asks this activity to stop (never, if it is not asked).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only waits, so it can be one branch of a `select!`.
    pub async fn cancelled(&self) {
        let mut rx = self.cancel.clone();
        while !*rx.borrow_and_update() {
            if rx.changed().await.is_err() {
                // The engine dropped the sender: nobody can cancel any more.
                std::future::pending::<()>().await;
            }
        }
    }
}

/// A boxed future, as returned by [`DynActivity::call`].
pub type BoxFuture<T> = std::pin::Pin<Box<dyn Future<Output = T> + Send>>;

/// An activity with its types erased to encoded payloads, as the engine stores it.
///
/// Every [`Activity`] is one; the test kit implements it directly to mock activities.
pub trait DynActivity: Send + Sync + 'static {
    /// The activity's stable name.
    fn name(&self) -> &'static str;
    /// The activity's default options.
    fn options(&self) -> ActivityOptions;
    /// Decodes the input, runs one attempt, and encodes the output.
    fn call(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: crate::codec::Payload,
    ) -> BoxFuture<Result<crate::codec::Payload, ActivityError>>;
}

impl<A: Activity> DynActivity for A {
    fn name(&self) -> &'static str {
        A::NAME
    }

    fn options(&self) -> ActivityOptions {
        Activity::options(self)
    }

    fn call(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: crate::codec::Payload,
    ) -> BoxFuture<Result<crate::codec::Payload, ActivityError>> {
        Box::pin(async move {
            let input: A::Input =
                crate::codec::decode(&input).map_err(|e| ActivityError::Payload {
                    message: e.to_string(),
                })?;
            let output = self.execute(ctx, input).await?;
            crate::codec::encode(&output).map_err(|e| ActivityError::Payload {
                message: e.to_string(),
            })
        })
    }
}
