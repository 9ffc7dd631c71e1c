//! Retries: whether a failed activity attempt runs again, and when.

use std::time::SystemTime;

use crate::activity::ActivityError;

/// What follows a failed attempt of an activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// The error is the activity's result: it is not retryable, the attempts are spent, the
    /// call was cancelled, or the next attempt would fall after the end of representable time.
    Final,
    /// The next attempt starts at this time.
    At(SystemTime),
}

/// Whether attempt `attempt` (1-based) of an activity under `policy`, failed with `error` at
/// `now`, is retried, and when. `cancelled` says whether the call was cancelled meanwhile.
pub(crate) fn retry(
    policy: &crate::activity::RetryPolicy,
    error: &ActivityError,
    attempt: u32,
    cancelled: bool,
    now: SystemTime,
) -> Retry {
    if !error.is_retryable() || attempt >= policy.max_attempts.max(1) || cancelled {
        return Retry::Final;
    }
    match now.checked_add(policy.backoff_after(attempt)) {
        Some(at) => Retry::At(at),
        None => Retry::Final,
    }
}
