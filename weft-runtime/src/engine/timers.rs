//! The timer service: fires durable timers at their stored absolute deadlines.
//!
//! It keeps only `(deadline, id)` pairs in memory, filled from the `tm/` index at build and by
//! runners when a workflow starts to sleep. A fired timer wakes the workflow, whose runner
//! re-reads the stored deadline, so a stale pair can never fire a timer early.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::Notify;

use super::clock::Clock;
use super::clock::{from_millis, to_millis};
use super::core::Inner;
use super::record;
use crate::storage::{Batch, Write};

/// The armed timers.
#[derive(Default)]
pub(crate) struct Timers {
    armed: Mutex<Armed>,
    changed: Notify,
}

/// The armed pairs, in deadline order and by workflow, so a workflow's timers can be disarmed
/// without a scan of everyone's.
#[derive(Default)]
struct Armed {
    due: BTreeSet<(u64, String)>,
    by_id: HashMap<String, BTreeSet<u64>>,
}

impl Armed {
    fn remove(&mut self, deadline_ms: u64, id: &str) {
        self.due.remove(&(deadline_ms, id.to_string()));
        if let Some(deadlines) = self.by_id.get_mut(id) {
            deadlines.remove(&deadline_ms);
            if deadlines.is_empty() {
                self.by_id.remove(id);
            }
        }
    }
}

impl Timers {
    fn lock(&self) -> std::sync::MutexGuard<'_, Armed> {
        // Every critical section leaves both maps consistent before it can panic.
        self.armed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Arms a timer for `id` at `deadline_ms`.
    pub fn arm(&self, deadline_ms: u64, id: &str) {
        let mut armed = self.lock();
        let first = armed.due.first().map(|(d, _)| *d);
        if armed.due.insert((deadline_ms, id.to_string())) {
            armed
                .by_id
                .entry(id.to_string())
                .or_default()
                .insert(deadline_ms);
        }
        if first.is_none_or(|first| deadline_ms < first) {
            self.changed.notify_one();
        }
    }

    /// Disarms the timer of `id` at `deadline_ms`, if armed: its stored timer was deleted (a
    /// sleep cut short by cancellation, the losing timer of a race), so nothing waits on it.
    pub fn disarm(&self, deadline_ms: u64, id: &str) {
        self.lock().remove(deadline_ms, id);
    }

    /// Disarms every timer of `id`: it has finished, so none of them can wake it to any end.
    pub fn disarm_all(&self, id: &str) {
        let mut armed = self.lock();
        if let Some(deadlines) = armed.by_id.remove(id) {
            for deadline_ms in deadlines {
                armed.due.remove(&(deadline_ms, id.to_string()));
            }
        }
    }

    /// The earliest armed deadline.
    pub fn next_deadline(&self) -> Option<u64> {
        self.lock().due.first().map(|(deadline, _)| *deadline)
    }

    /// Takes the earliest timer if it is due at `now_ms`; otherwise returns its deadline.
    fn pop_due(&self, now_ms: u64) -> Result<String, Option<u64>> {
        let mut armed = self.lock();
        match armed.due.first().cloned() {
            Some((deadline, id)) if deadline <= now_ms => {
                armed.remove(deadline, &id);
                Ok(id)
            }
            Some((deadline, _)) => Err(Some(deadline)),
            None => Err(None),
        }
    }

    /// How many timers are armed, for tests of what is held in memory.
    #[cfg(test)]
    fn len(&self) -> usize {
        let armed = self.lock();
        debug_assert_eq!(
            armed.due.len(),
            armed.by_id.values().map(BTreeSet::len).sum::<usize>()
        );
        armed.due.len()
    }
}

/// The timers whose stored keys `batch` deletes (and does not put back): once it is committed,
/// they are disarmed in memory too.
pub(crate) fn deleted_by(batch: &Batch) -> Vec<(u64, String)> {
    let mut deleted = Vec::new();
    for write in &batch.writes {
        match write {
            Write::Delete(key) => deleted
                .extend(record::parse_timer_key(key).map(|timer| (timer.deadline_ms, timer.id))),
            Write::Put(key, _) => {
                if let Some(put) = record::parse_timer_key(key) {
                    deleted.retain(|(deadline_ms, id)| {
                        (*deadline_ms, id.as_str()) != (put.deadline_ms, put.id.as_str())
                    });
                }
            }
        }
    }
    deleted
}

/// How long the timer service pauses before it starts again after a panic.
const RESTART_PAUSE: std::time::Duration = std::time::Duration::from_secs(1);

/// Runs the service, starting it again after a panic (an engine bug: timers are kept in
/// `timers`, so none is lost), so no timer of any workflow stops firing.
pub(crate) async fn serve(inner: Weak<Inner>, timers: Arc<Timers>, clock: Arc<dyn Clock>) {
    loop {
        let run = run(inner.clone(), Arc::clone(&timers), Arc::clone(&clock));
        match crate::contain::Caught::new(run).await {
            Ok(()) => return,
            Err(message) => {
                eprintln!("weft: the timer service panicked ({message}); restarting it in 1 s");
                // On tokio's clock, not the engine's: the engine's clock may be what panicked.
                // The pause keeps a panic that recurs (a broken clock) from spinning a core.
                tokio::time::sleep(RESTART_PAUSE).await;
            }
        }
    }
}

/// The service loop. Holds the engine weakly, so it never keeps a dropped engine alive.
async fn run(inner: Weak<Inner>, timers: Arc<Timers>, clock: Arc<dyn Clock>) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_deletes_the_timers_it_does_not_put_back() {
        let mut batch = Batch::new();
        let p = record::Partition::ZERO;
        batch.delete(record::timer_key(p, 5, "a"));
        batch.delete(record::timer_key(p, 6, "a"));
        batch.put(record::timer_key(p, 6, "a"), Vec::new());
        batch.delete(record::workflow_key(p, "a"));
        assert_eq!(deleted_by(&batch), vec![(5, "a".to_string())]);
    }

    #[test]
    fn disarming_removes_only_the_named_timers() {
        let timers = Timers::default();
        timers.arm(10, "a");
        timers.arm(20, "a");
        timers.arm(15, "b");
        timers.arm(15, "b");
        assert_eq!(timers.len(), 3);
        timers.disarm(10, "a");
        assert_eq!(timers.next_deadline(), Some(15));
        timers.disarm_all("b");
        assert_eq!(timers.next_deadline(), Some(20));
        timers.disarm(99, "a");
        assert_eq!(timers.len(), 1);
        assert_eq!(timers.pop_due(25), Ok("a".to_string()));
        assert_eq!(timers.len(), 0);
        assert_eq!(timers.pop_due(25), Err(None));
    }
}
