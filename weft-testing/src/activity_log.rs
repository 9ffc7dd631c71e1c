//! [`ActivityCall`]s: every activity attempt a test engine ran, in order, and which tokio tasks
//! are inside an attempt right now.
//!
//! The test engine wraps every activity (real or mocked) in a recorder, so a test can read what
//! ran, the crash harness can compare the results of two runs, and the quiescence check can tell
//! a runner waiting on its retry backoff (blocked on the clock) from one inside an attempt.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use weft_runtime::activity::BoxFuture;
use weft_runtime::codec::{self, Payload};
use weft_runtime::engine::VirtualClock;
use weft_runtime::{Activity, ActivityContext, ActivityError, ActivityOptions, DynActivity};

/// One attempt of an activity, as the test engine saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityCall {
    /// The activity's name.
    pub activity: &'static str,
    /// The workflow that ran it.
    pub workflow_id: String,
    /// The workflow step that issued it; also its idempotency key's suffix.
    pub step: u64,
    /// The branch of a `ctx.all`/`ctx.race` group it ran for; branches share their step.
    pub branch: Option<u32>,
    /// The attempt number, starting at 1.
    pub attempt: u32,
    /// When the attempt started, on the test engine's virtual clock.
    pub started_at: SystemTime,
    /// The encoded input.
    pub input: Payload,
    /// The encoded output or the error; `None` while the attempt runs, or when it was cut off
    /// (a timeout, a cancellation, an engine shutdown).
    pub outcome: Option<Result<Payload, ActivityError>>,
}

impl ActivityCall {
    /// The input decoded as activity `A`'s input; `None` if this is not a call of `A`.
    pub fn input_as<A: Activity>(&self) -> Option<A::Input> {
        (self.activity == A::NAME)
            .then(|| codec::decode(&self.input).ok())
            .flatten()
    }

    /// The output decoded as activity `A`'s output; `None` if this is not a successful call of `A`.
    pub fn output_as<A: Activity>(&self) -> Option<A::Output> {
        match &self.outcome {
            Some(Ok(output)) if self.activity == A::NAME => codec::decode(output).ok(),
            _ => None,
        }
    }
}

/// The attempts a test engine ran, shared by its recorders. Survives engine restarts.
#[derive(Debug, Default)]
pub(crate) struct ActivityLog {
    inner: Mutex<LogInner>,
}

#[derive(Debug, Default)]
struct LogInner {
    calls: Vec<ActivityCall>,
    /// Tasks inside an attempt now, with how many attempts each runs.
    in_attempt: HashMap<tokio::task::Id, usize>,
    /// Tasks that ever ran an attempt: the engine's activity tasks.
    activity_tasks: HashSet<tokio::task::Id>,
}

/// What the quiescence check needs to know about a task waiting on the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TaskRole {
    /// Inside an attempt: the sleeper is the attempt's timeout, the attempt is working.
    InAttempt,
    /// An activity task between attempts: the sleeper is its retry backoff.
    Backoff,
    /// Anything else, such as the engine's timer service.
    Other,
}

impl ActivityLog {
    fn lock(&self) -> MutexGuard<'_, LogInner> {
        // Every critical section leaves the log whole; a panicking activity runs outside it.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Every attempt so far, in the order they started.
    pub fn calls(&self) -> Vec<ActivityCall> {
        self.lock().calls.clone()
    }

    /// What `task` is doing, for a sleeper it awaits.
    pub fn role(&self, task: Option<tokio::task::Id>) -> TaskRole {
        let Some(task) = task else {
            return TaskRole::Other;
        };
        let log = self.lock();
        if log.in_attempt.contains_key(&task) {
            TaskRole::InAttempt
        } else if log.activity_tasks.contains(&task) {
            TaskRole::Backoff
        } else {
            TaskRole::Other
        }
    }

    /// How many attempts are running now.
    pub fn running(&self) -> usize {
        self.lock().in_attempt.values().sum()
    }

    fn begin(&self, call: ActivityCall) -> usize {
        let mut log = self.lock();
        if let Some(task) = tokio::task::try_id() {
            *log.in_attempt.entry(task).or_default() += 1;
            log.activity_tasks.insert(task);
        }
        log.calls.push(call);
        log.calls.len() - 1
    }

    fn end(&self, task: Option<tokio::task::Id>) {
        let mut log = self.lock();
        if let Some(task) = task
            && let Some(count) = log.in_attempt.get_mut(&task)
        {
            *count -= 1;
            if *count == 0 {
                log.in_attempt.remove(&task);
            }
        }
    }

    fn finish(&self, index: usize, outcome: Result<Payload, ActivityError>) {
        if let Some(call) = self.lock().calls.get_mut(index) {
            call.outcome = Some(outcome);
        }
    }
}

/// Wraps an activity so that each attempt is logged.
pub(crate) struct Recorded {
    inner: Arc<dyn DynActivity>,
    log: Arc<ActivityLog>,
    clock: VirtualClock,
}

impl Recorded {
    pub fn new(inner: Arc<dyn DynActivity>, log: Arc<ActivityLog>, clock: VirtualClock) -> Self {
        Recorded { inner, log, clock }
    }
}

/// Marks the attempt finished in the log even when its future is dropped half-way.
struct AttemptGuard {
    log: Arc<ActivityLog>,
    task: Option<tokio::task::Id>,
}

impl Drop for AttemptGuard {
    fn drop(&mut self) {
        self.log.end(self.task);
    }
}

impl DynActivity for Recorded {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn options(&self) -> ActivityOptions {
        self.inner.options()
    }

    fn call(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: Payload,
    ) -> BoxFuture<Result<Payload, ActivityError>> {
        Box::pin(async move {
            // Logged on first poll, inside the task that runs the attempt.
            let index = self.log.begin(ActivityCall {
                activity: self.inner.name(),
                workflow_id: ctx.workflow_id().to_string(),
                step: ctx.step(),
                branch: ctx.branch(),
                attempt: ctx.attempt(),
                started_at: self.clock.now(),
                input: input.clone(),
                outcome: None,
            });
            let _guard = AttemptGuard {
                log: Arc::clone(&self.log),
                task: tokio::task::try_id(),
            };
            let outcome = Arc::clone(&self.inner).call(ctx, input).await;
            self.log.finish(index, outcome.clone());
            outcome
        })
    }
}
