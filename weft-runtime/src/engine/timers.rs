//! The timer service: fires durable timers at their stored absolute deadlines.
//!
//! It keeps only `(deadline, id)` pairs in memory, filled from the `tm/` index at build and by
//! runners when a workflow starts to sleep. A fired timer wakes the workflow, whose runner
//! re-reads the stored deadline, so a stale pair can never fire a timer early.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::Notify;

use super::clock::Clock;
use super::clock::{from_millis, to_millis};
use super::core::Inner;

/// The armed timers.
#[derive(Default)]
pub(crate) struct Timers {
    due: Mutex<BTreeSet<(u64, String)>>,
    changed: Notify,
}

impl Timers {
    /// Arms a timer for `id` at `deadline_ms`.
    pub fn arm(&self, deadline_ms: u64, id: &str) {
        let mut due = self.due.lock().unwrap_or_else(|p| p.into_inner());
        let first = due.first().map(|(d, _)| *d);
        due.insert((deadline_ms, id.to_string()));
        if first.is_none_or(|first| deadline_ms < first) {
            self.changed.notify_one();
        }
    }

    /// The earliest armed deadline.
    pub fn next_deadline(&self) -> Option<u64> {
        let due = self.due.lock().unwrap_or_else(|p| p.into_inner());
        due.first().map(|(deadline, _)| *deadline)
    }

    /// Takes the earliest timer if it is due at `now_ms`; otherwise returns its deadline.
    fn pop_due(&self, now_ms: u64) -> Result<String, Option<u64>> {
        let mut due = self.due.lock().unwrap_or_else(|p| p.into_inner());
        match due.first() {
            Some((deadline, _)) if *deadline <= now_ms => {
                Ok(due.pop_first().map(|(_, id)| id).unwrap_or_default())
            }
            Some((deadline, _)) => Err(Some(*deadline)),
            None => Err(None),
        }
    }
}

/// The service loop. Holds the engine weakly, so it never keeps a dropped engine alive.
pub(crate) async fn run(inner: Weak<Inner>, timers: Arc<Timers>, clock: Arc<dyn Clock>) {
    loop {
        let changed = timers.changed.notified();
        match timers.pop_due(to_millis(clock.now())) {
            Ok(id) => {
                let Some(engine) = inner.upgrade() else {
                    return;
                };
                super::runner::wake(&engine, &id);
            }
            Err(Some(deadline)) => {
                tokio::select! {
                    () = clock.sleep_until(from_millis(deadline)) => {}
                    () = changed => {}
                }
            }
            Err(None) => changed.await,
        }
    }
}
