//! Runs one activity call under its retry policy: attempts, exponential backoff through the
//! engine's clock, non-retryable errors, per-attempt timeouts, and panics turned into failures.

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
    /// The engine, asked before each attempt whether it still owns the store.
    pub engine: Weak<Inner>,
}

/// Runs the call to its final result: success, a non-retryable error, or the last attempt's error.
pub(crate) async fn execute(call: Call) -> Result<Payload, ActivityError> {
    let max_attempts = call.options.retry.max_attempts.max(1);
    let mut attempt = 1;
    loop {
        // A deposed engine runs no further attempt: its successor runs the activity. (It stops
        // itself on finding out, which cancels and aborts this call; the error is for the
        // record only, nothing of this engine commits any more.)
        let owned = call
            .engine
            .upgrade()
            .is_some_and(|engine| engine.check_owner().is_ok());
        if !owned {
            return Err(ActivityError::Cancelled);
        }
        let mut ctx = ActivityContext::new(
            call.workflow_id.clone(),
            call.step,
            attempt,
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
            Ok(output) => return Ok(output),
            Err(error) => error,
        };
        if !error.is_retryable() || attempt >= max_attempts || *call.cancel.borrow() {
            return Err(error);
        }
        let backoff = call.options.retry.backoff_after(attempt);
        // A next attempt after the end of representable time never comes: this error is final.
        let Some(next_attempt) = call.clock.now().checked_add(backoff) else {
            return Err(error);
        };
        call.clock.sleep_until(next_attempt).await;
        attempt += 1;
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
