//! [`VirtualClock`]: the test engine's time. It moves only when a test moves it, and it knows
//! who waits on it, so the test engine can tell "nothing can happen until time passes" apart
//! from "still working".
//!
//! Every `sleep_until` that has not returned yet is a registered sleeper, with its deadline and
//! the tokio task that awaits it. Timers, retry backoff and activity attempt timeouts all sleep
//! here (the engine reads all its time from its clock), so advancing the clock fires them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use weft_runtime::activity::BoxFuture;
use weft_runtime::engine::Clock;

/// A clock that stands still until told to move. Clones share the same time.
///
/// Give it to an engine with `EngineBuilder::clock`; [`TestEngine`](crate::TestEngine) does
/// that for you and moves it with [`TestEngine::advance_time`](crate::TestEngine::advance_time).
#[derive(Debug, Clone)]
pub struct VirtualClock {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    changed: watch::Sender<SystemTime>,
}

#[derive(Debug)]
struct State {
    now: SystemTime,
    next_sleeper: u64,
    sleepers: HashMap<u64, Sleeper>,
}

/// One `sleep_until` that has not returned yet.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sleeper {
    /// When it returns.
    pub deadline: SystemTime,
    /// The task that awaits it, when it runs inside a tokio task.
    pub task: Option<tokio::task::Id>,
}

impl VirtualClock {
    /// A clock standing at `start`.
    pub fn new(start: SystemTime) -> Self {
        let (changed, _) = watch::channel(start);
        VirtualClock {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
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

    /// Moves the clock forward by `by`, waking every sleeper whose deadline has passed.
    pub fn advance(&self, by: Duration) {
        let to = self.now() + by;
        self.set(to);
    }

    /// Moves the clock to `to` if that is later than now; the clock never goes back.
    pub fn set(&self, to: SystemTime) {
        let mut state = self.lock();
        if to > state.now {
            state.now = to;
            self.shared.changed.send_replace(to);
        }
    }

    /// The earliest deadline of a sleeper still waiting for a later time.
    pub fn next_deadline(&self) -> Option<SystemTime> {
        let state = self.lock();
        state
            .sleepers
            .values()
            .map(|s| s.deadline)
            .filter(|d| *d > state.now)
            .min()
    }

    /// The sleepers that have not returned yet, with the time now.
    pub(crate) fn sleepers(&self) -> (SystemTime, Vec<Sleeper>) {
        let state = self.lock();
        (state.now, state.sleepers.values().copied().collect())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
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
    fn the_clock_never_goes_back() {
        let clock = VirtualClock::default();
        let start = clock.now();
        clock.set(start - Duration::from_secs(1));
        assert_eq!(clock.now(), start);
        clock.advance(Duration::from_secs(7 * 24 * 3600));
        assert_eq!(clock.now(), start + Duration::from_secs(7 * 24 * 3600));
    }
}
