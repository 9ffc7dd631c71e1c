//! [`Clock`]: where the engine reads the time and waits for deadlines.
//!
//! Timers, retry backoff and activity attempt timeouts all go through the clock, so the test
//! kit's [`ManualClock`] can skip them: advancing it fires every due timer at once.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::activity::BoxFuture;

/// The engine's source of time.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> SystemTime;
    /// Completes once [`Clock::now`] has reached `deadline`.
    fn sleep_until(&self, deadline: SystemTime) -> BoxFuture<()>;
}

/// Milliseconds since the Unix epoch, the unit stored in records (saturating at both ends).
pub fn to_millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The inverse of [`to_millis`]. Saturates at the latest time the platform's `SystemTime` can
/// hold (a stored deadline of `u64::MAX` ms means "never").
pub fn from_millis(ms: u64) -> SystemTime {
    later(UNIX_EPOCH, Duration::from_millis(ms))
}

/// `time + by`, saturating at the latest time the platform's `SystemTime` can hold instead of
/// panicking: a deadline past it is never reached.
pub(crate) fn later(time: SystemTime, by: Duration) -> SystemTime {
    if let Some(at) = time.checked_add(by) {
        return at;
    }
    // Out of range: find the latest representable time after `time` by halving the step.
    let mut at = time;
    let mut step = by;
    while !step.is_zero() {
        match at.checked_add(step) {
            Some(next) => at = next,
            None => step /= 2,
        }
    }
    at
}

/// The deadline `after` from `now`, in ms since the Unix epoch: saturating at `u64::MAX`, which
/// no clock reaches, so a sleep or timeout too long to represent never fires. Computed on
/// integers, so no duration, however long, panics.
pub(crate) fn deadline_ms(now: SystemTime, after: Duration) -> u64 {
    to_millis(now).saturating_add(u64::try_from(after.as_millis()).unwrap_or(u64::MAX))
}

/// The wall clock, waiting with tokio timers. The default.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn sleep_until(&self, deadline: SystemTime) -> BoxFuture<()> {
        Box::pin(async move {
            // Re-check after each wait: the wall clock may have been set back meanwhile.
            loop {
                match deadline.duration_since(SystemTime::now()) {
                    Ok(left) if !left.is_zero() => tokio::time::sleep(left).await,
                    _ => return,
                }
            }
        })
    }
}

/// A clock that only moves when told to: the test kit's virtual time.
///
/// Clones share the same time. [`ManualClock::advance`] wakes every sleeper whose deadline has
/// passed, so due timers fire and retry backoffs end at once.
#[derive(Debug, Clone)]
pub struct ManualClock {
    shared: Arc<ManualShared>,
}

#[derive(Debug)]
struct ManualShared {
    now: Mutex<SystemTime>,
    changed: tokio::sync::watch::Sender<SystemTime>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: SystemTime) -> Self {
        let (changed, _) = tokio::sync::watch::channel(start);
        ManualClock {
            shared: Arc::new(ManualShared {
                now: Mutex::new(start),
                changed,
            }),
        }
    }

    /// Moves the clock forward by `by`, stopping at the latest time `SystemTime` can hold.
    pub fn advance(&self, by: Duration) {
        let mut now = self.lock();
        *now = later(*now, by);
        self.shared.changed.send_replace(*now);
    }

    /// Moves the clock to `to`, if that is later than now.
    pub fn set(&self, to: SystemTime) {
        let mut now = self.lock();
        if to > *now {
            *now = to;
            self.shared.changed.send_replace(to);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SystemTime> {
        self.shared
            .now
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Default for ManualClock {
    /// A clock standing at 2030-01-01T00:00:00Z, a fixed point so test output is stable.
    fn default() -> Self {
        ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_893_456_000))
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.lock()
    }

    fn sleep_until(&self, deadline: SystemTime) -> BoxFuture<()> {
        let mut changed = self.shared.changed.subscribe();
        Box::pin(async move {
            loop {
                if *changed.borrow_and_update() >= deadline {
                    return;
                }
                if changed.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_saturate_instead_of_panicking() {
        let now = UNIX_EPOCH + Duration::from_secs(1_893_456_000);
        assert_eq!(deadline_ms(now, Duration::MAX), u64::MAX);
        assert_eq!(
            deadline_ms(now, Duration::from_millis(5)),
            to_millis(now) + 5
        );
        let far = later(now, Duration::MAX);
        assert!(far > now);
        assert!(far.checked_add(Duration::from_secs(1)).is_none());
        assert_eq!(
            later(now, Duration::from_secs(1)),
            now + Duration::from_secs(1)
        );
        // A stored "never" reads back as a time, not a panic.
        assert!(from_millis(u64::MAX) > now);
    }
}
