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

/// The inverse of [`to_millis`].
pub fn from_millis(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
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

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.lock();
        *now += by;
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
