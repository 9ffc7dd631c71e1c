//! Runs one activity call under its retry policy: attempts, exponential backoff through the
//! engine's clock, non-retryable errors, per-attempt timeouts, and panics turned into failures.
//!
//! Attempts are durable: the first rides on the commit of the step that asked for the activity,
//! and each later one is committed (`attempt/<id>\0`, see [`record::AttemptRecord`]) before it
//! starts. An engine that recovers the activity pending from storage counts the stored attempt
//! as spent (it may have been cut off by a crash) and goes on with the next, so `max_attempts`
//! holds however often the process dies during an attempt.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};

use tokio::sync::watch;

use crate::activity::{ActivityContext, ActivityError, ActivityOptions, DynActivity, Resources};
use crate::codec::Payload;

use super::clock::Clock;
use super::core::Inner;
use super::error::EngineError;
use super::plan::{self, Retry};
use super::record::{self, AttemptRecord, RecordStatus};
use super::registry::StepFault;
use crate::storage::{Batch, Storage};

/// Everything one activity call needs.
pub(crate) struct Call {
    pub activity: Arc<dyn DynActivity>,
    pub workflow_id: Arc<str>,
    pub step: u64,
    pub input: Payload,
    pub options: ActivityOptions,
    pub resources: Resources,
    pub clock: Arc<dyn Clock>,
    pub cancel: watch::Receiver<bool>,
    pub payload_limit: usize,
    /// The branch of a group this call runs for.
    pub branch: Option<u32>,
    /// The engine, asked before each attempt whether it still owns the store, and through
    /// which each attempt after the first is committed.
    pub engine: Weak<Inner>,
    /// The attempt to run first (see [`first_attempt`]).
    pub first_attempt: u32,
}

/// The attempt of `id`'s pending activity (of group branch `branch`) started last, as stored
/// for step `step`: 1 when nothing is stored for that step (the first attempt rides on the
/// step's commit; records written before attempts were stored read so too). A stored attempt
/// that does not decode is a fault that parks the workflow.
/// Blocking: async code reads it through [`Inner::read`].
pub(crate) fn stored_attempt(
    storage: &dyn Storage,
    (p, id): (record::Partition, &str),
    step: u64,
    branch: Option<u32>,
) -> Result<Result<u32, StepFault>, EngineError> {
    let key = record::attempt_key(p, id, branch);
    let Some(bytes) = storage.get(&key)? else {
        return Ok(Ok(1));
    };
    Ok(match record::decode_record::<AttemptRecord>(&bytes) {
        Ok(stored) if stored.step == step => Ok(stored.attempt.max(1)),
        Ok(_) => Ok(1),
        Err(e) => Err(StepFault {
            code: "record.corrupt".into(),
            message: format!(
                "the attempt record `{}` does not decode ({e}); it is kept as stored",
                String::from_utf8_lossy(&key)
            ),
        }),
    })
}

/// How a runner came by the record whose activity it is about to run, which says what it knows
/// of the attempts already started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// It committed the step that asked for the activity itself: no attempt has started.
    Committed,
    /// A wake in this engine read it from storage (a child its parent created, a runner that
    /// stalled): the attempts started past the first are the stored ones.
    Read,
    /// The engine's recovery read it when the engine was built: the stored attempt (the first
    /// when none is stored) may have been cut off by a crash, so it counts as spent.
    Recovered,
}

/// The attempt a runner runs first, given where its record came from.
pub(crate) async fn first_attempt(
    inner: &Inner,
    id: &str,
    step: u64,
    branch: Option<u32>,
    origin: Origin,
) -> Result<Result<u32, StepFault>, EngineError> {
    if origin == Origin::Committed {
        return Ok(Ok(1));
    }
    let (p, owned) = (inner.partition(id), id.to_string());
    let stored = inner
        .read(move |storage| stored_attempt(storage, (p, &owned), step, branch))
        .await?;
    Ok(stored.map(|stored| match origin {
        // Only attempts past the first are stored; the first rode on the step's commit.
        Origin::Read if stored <= 1 => 1,
        _ => stored.saturating_add(1),
    }))
}

/// Commits that `attempt` of the call starts, if the workflow still waits on this step's
/// activity. `Ok(false)` when it does not (the workflow moved on without awaiting this call,
/// say after a cancellation): then the attempt must not run.
async fn commit_attempt(call: &Call, attempt: u32) -> Result<bool, EngineError> {
    let Some(inner) = call.engine.upgrade() else {
        return Ok(false);
    };
    let p = inner.partition(&call.workflow_id);
    let mut batch = Batch::new();
    batch.put(
        record::attempt_key(p, &call.workflow_id, call.branch),
        record::encode_record(&AttemptRecord {
            step: call.step,
            attempt,
        })?,
    );
    let id = call.workflow_id.to_string();
    let step = call.step;
    inner
        .commit_checked(move |view| {
            let stored = view.workflow(p, &id)?;
            let waits = stored.step == step
                && matches!(stored.status, RecordStatus::Running | RecordStatus::Waiting);
            Ok(waits.then_some(batch))
        })
        .await
}

/// Runs the call to its final result: success, a non-retryable error, or the last attempt's
/// error. An attempt that could not be committed stops the call with the engine's error: the
/// runner stalls, and the next one resumes from what is stored.
pub(crate) async fn execute(call: Call) -> Result<Result<Payload, ActivityError>, EngineError> {
    Ok(execute_counted(call).await?.result)
}

/// What a call ended with, and whether it left an attempt record behind.
pub(crate) struct Executed {
    /// The final result.
    pub result: Result<Payload, ActivityError>,
    /// An attempt record of this step is stored (an attempt past the first ran, here or in an
    /// engine before), so the step that takes the result must delete it. A call that ended on
    /// its first attempt stored none, and its step spares the delete.
    pub attempt_stored: bool,
}

/// As [`execute`], also telling whether an attempt record is stored.
pub(crate) async fn execute_counted(call: Call) -> Result<Executed, EngineError> {
    let mut attempt = call.first_attempt.max(1);
    let result = attempts(&call, &mut attempt).await?;
    Ok(Executed {
        result,
        // Attempt records are written only for attempts past the first (the first rides on
        // the step's commit), and a call that found one stored starts past the first.
        attempt_stored: attempt > 1,
    })
}

async fn attempts(
    call: &Call,
    attempt: &mut u32,
) -> Result<Result<Payload, ActivityError>, EngineError> {
    let max_attempts = call.options.retry.max_attempts.max(1);
    if *attempt > max_attempts {
        return Ok(Err(ActivityError::failed(format!(
            "attempt {} of {max_attempts} was cut off by an engine stop (a crash or a restart) and no attempts are left",
            *attempt - 1
        ))));
    }
    loop {
        // A deposed engine runs no further attempt: its successor runs the activity. (It stops
        // itself on finding out, which cancels and aborts this call; the error is for the
        // record only, nothing of this engine commits any more.)
        let owned = match call.engine.upgrade() {
            Some(engine) => engine.check_owner().await.is_ok(),
            None => false,
        };
        if !owned {
            return Ok(Err(ActivityError::Cancelled));
        }
        if *attempt > 1 && !commit_attempt(call, *attempt).await? {
            return Ok(Err(ActivityError::Cancelled));
        }
        let mut ctx = ActivityContext::new(
            call.workflow_id.clone(),
            call.step,
            *attempt,
            call.resources.clone(),
            call.cancel.clone(),
        );
        if let Some(branch) = call.branch {
            ctx = ctx.in_branch(branch);
        }
        let run = CatchUnwind(call.activity.clone().call(ctx, call.input.clone()));
        // A timeout too long to represent as a time (say `Duration::MAX`) never fires: the
        // attempt runs as if it had none.
        let deadline = call
            .options
            .attempt_timeout
            .and_then(|timeout| Some((timeout, call.clock.now().checked_add(timeout)?)));
        let result = match deadline {
            None => run.await,
            Some((timeout, deadline)) => {
                tokio::select! {
                    result = run => result,
                    () = call.clock.sleep_until(deadline) => Err(ActivityError::TimedOut {
                        timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
                    }),
                }
            }
        };
        let error = match result {
            Ok(output) if output.len() > call.payload_limit => ActivityError::Payload {
                message: format!(
                    "the output is {} bytes, over the payload limit of {} bytes",
                    output.len(),
                    call.payload_limit
                ),
            },
            Ok(output) => return Ok(Ok(output)),
            Err(error) => error,
        };
        let cancelled = *call.cancel.borrow();
        let next = plan::retry(
            &call.options.retry,
            &error,
            *attempt,
            cancelled,
            call.clock.now(),
        );
        let Retry::At(next_attempt) = next else {
            return Ok(Err(error));
        };
        call.clock.sleep_until(next_attempt).await;
        *attempt += 1;
    }
}

/// Turns a panic inside an attempt into a retryable failure, so one bad attempt does not take
/// the workflow's runner down.
struct CatchUnwind<F>(F);

impl<F: Future<Output = Result<Payload, ActivityError>> + Unpin> Future for CatchUnwind<F> {
    type Output = Result<Payload, ActivityError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.0;
        match std::panic::catch_unwind(AssertUnwindSafe(|| Pin::new(inner).poll(cx))) {
            Ok(poll) => poll,
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".to_string());
                Poll::Ready(Err(ActivityError::failed(format!(
                    "activity panicked: {message}"
                ))))
            }
        }
    }
}
