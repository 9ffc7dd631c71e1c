//! [`Clock`]: where the engine reads the time and waits for deadlines.
//!
//! Timers, retry backoff and activity attempt timeouts all go through the clock, so a
//! [`VirtualClock`] (the one clock of tests and of the test kit) can skip them: advancing it
//! fires every due timer at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
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

/// A clock that stands still until told to move: virtual time, for tests and the test kit.
///
/// Clones share the same time. [`VirtualClock::advance`] and [`VirtualClock::set`] wake every
/// sleeper whose deadline has passed, so due timers fire and retry backoffs end at once. It also
/// knows who waits on it ([`VirtualClock::next_deadline`]), so a test harness can tell "nothing
/// can happen until time passes" apart from "still working"; `weft-testing`'s `TestEngine` runs
/// on this clock.
#[derive(Debug, Clone)]
pub struct VirtualClock {
    shared: Arc<VirtualShared>,
}

#[derive(Debug)]
struct VirtualShared {
    state: Mutex<VirtualState>,
    changed: tokio::sync::watch::Sender<SystemTime>,
}

#[derive(Debug)]
struct VirtualState {
    now: SystemTime,
    next_sleeper: u64,
    sleepers: HashMap<u64, Sleeper>,
}

/// One [`Clock::sleep_until`] on a [`VirtualClock`] that has not returned yet (for the test
/// kit, which tells a task waiting out a backoff from one still working).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sleeper {
    /// When it returns.
    pub deadline: SystemTime,
    /// The tokio task that awaits it, when it runs inside one.
    pub task: Option<tokio::task::Id>,
}

impl VirtualClock {
    /// A clock standing at `start`.
    pub fn new(start: SystemTime) -> Self {
        let (changed, _) = tokio::sync::watch::channel(start);
        VirtualClock {
            shared: Arc::new(VirtualShared {
                state: Mutex::new(VirtualState {
                    now: start,
                    next_sleeper: 0,
                    sleepers: HashMap::new(),
                }),
                changed,
            }),
        }
    }

    /// The virtual time now.
    pub fn now(&self) -> SystemTime {
        self.lock().now
    }

    /// Moves the clock forward by `by`, stopping at the latest time `SystemTime` can hold, and
    /// wakes every sleeper whose deadline has passed.
    pub fn advance(&self, by: Duration) {
        let mut state = self.lock();
        state.now = later(state.now, by);
        self.shared.changed.send_replace(state.now);
    }

    /// Moves the clock to `to` if that is later than now; the clock never goes back.
    pub fn set(&self, to: SystemTime) {
        let mut state = self.lock();
        if to > state.now {
            state.now = to;
            self.shared.changed.send_replace(to);
        }
    }

    /// The earliest deadline of a sleeper still waiting for a later time: where to move the
    /// clock next for something to happen.
    pub fn next_deadline(&self) -> Option<SystemTime> {
        let state = self.lock();
        state
            .sleepers
            .values()
            .map(|s| s.deadline)
            .filter(|d| *d > state.now)
            .min()
    }

    /// The time now and the sleepers that have not returned yet, read together.
    #[doc(hidden)]
    pub fn sleepers(&self) -> (SystemTime, Vec<Sleeper>) {
        let state = self.lock();
        (state.now, state.sleepers.values().copied().collect())
    }

    fn lock(&self) -> MutexGuard<'_, VirtualState> {
        // The state is a time and a map, each left whole by every critical section.
        self.shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn register(&self, deadline: SystemTime) -> SleeperGuard {
        let mut state = self.lock();
        let id = state.next_sleeper;
        state.next_sleeper += 1;
        state.sleepers.insert(
            id,
            Sleeper {
                deadline,
                task: tokio::task::try_id(),
            },
        );
        SleeperGuard {
            clock: self.clone(),
            id,
        }
    }
}

impl Default for VirtualClock {
    /// A clock standing at 2030-01-01T00:00:00Z, a fixed point so test output is stable.
    fn default() -> Self {
        VirtualClock::new(UNIX_EPOCH + Duration::from_secs(1_893_456_000))
    }
}

/// Unregisters its sleeper when the sleep returns or is dropped (a `select!` took the other arm).
struct SleeperGuard {
    clock: VirtualClock,
    id: u64,
}

impl Drop for SleeperGuard {
    fn drop(&mut self) {
        self.clock.lock().sleepers.remove(&self.id);
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> SystemTime {
        VirtualClock::now(self)
    }

    fn sleep_until(&self, deadline: SystemTime) -> BoxFuture<()> {
        let clock = self.clone();
        let mut changed = self.shared.changed.subscribe();
        Box::pin(async move {
            if *changed.borrow_and_update() >= deadline {
                return;
            }
            // Registered on first poll, so the sleeper carries the task that awaits it.
            let _sleeper = clock.register(deadline);
            loop {
                if *changed.borrow_and_update() >= deadline {
                    return;
                }
                if changed.changed().await.is_err() {
                    // Unreachable while `clock` holds the sender; never wake spuriously.
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

    #[tokio::test]
    async fn a_sleeper_is_registered_until_its_deadline_passes() {
        let clock = VirtualClock::default();
        let start = clock.now();
        let sleep = tokio::spawn(Clock::sleep_until(
            &clock,
            start + Duration::from_secs(3600),
        ));
        while clock.sleepers().1.is_empty() {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            clock.next_deadline(),
            Some(start + Duration::from_secs(3600))
        );
        clock.advance(Duration::from_secs(3599));
        assert!(!sleep.is_finished());
        clock.advance(Duration::from_secs(1));
        sleep.await.unwrap();
        assert!(clock.sleepers().1.is_empty());
        assert_eq!(clock.next_deadline(), None);
    }

    #[tokio::test]
    async fn a_past_deadline_returns_without_registering() {
        let clock = VirtualClock::default();
        Clock::sleep_until(&clock, clock.now()).await;
        assert!(clock.sleepers().1.is_empty());
    }

    #[test]
    fn the_clock_never_goes_back_and_saturates_forward() {
        let clock = VirtualClock::default();
        let start = clock.now();
        clock.set(start - Duration::from_secs(1));
        assert_eq!(clock.now(), start);
        clock.advance(Duration::from_secs(7 * 24 * 3600));
        assert_eq!(clock.now(), start + Duration::from_secs(7 * 24 * 3600));
        clock.advance(Duration::MAX);
        assert!(clock.now() > start);
    }
}
