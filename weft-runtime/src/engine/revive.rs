//! Workflows whose runner stopped on a storage error, woken again once storage answers.
//!
//! A runner reads storage as it decides and steps (its record, its signal queue, ...). When such
//! a read fails, the runner stops and the workflow keeps its last committed record. Nothing else
//! would wake it: no timer is armed for it and a signal may never come. So it is noted here, and
//! one background task probes storage with [`Backoff`] (one cheap read per attempt, however many
//! workflows wait) and, once a probe succeeds, wakes every noted workflow. A workflow that meets
//! the fault again is noted again.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::Notify;

use super::backoff::Backoff;
use super::core::Inner;
use super::record;

/// The workflows to wake once storage answers again.
#[derive(Debug, Default)]
pub(crate) struct Revive {
    ids: Mutex<BTreeSet<String>>,
    noted: Notify,
}

impl Revive {
    /// Notes `id`, whose runner stopped on a storage error.
    pub fn note(&self, id: &str) {
        self.lock().insert(id.to_string());
        self.noted.notify_one();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        // A set of ids: no critical section can leave it inconsistent.
        self.ids.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The service loop. Holds the engine weakly, so it never keeps a dropped engine alive.
pub(crate) async fn run(inner: Weak<Inner>, revive: Arc<Revive>) {
    let mut backoff = Backoff::new(0x5eed);
    loop {
        let noted = revive.noted.notified();
        if revive.lock().is_empty() {
            noted.await;
            continue;
        }
        tokio::time::sleep(backoff.next_delay()).await;
        let Some(engine) = inner.upgrade() else {
            return;
        };
        if engine.read_key(record::EPOCH_KEY.to_vec()).await.is_err() {
            continue;
        }
        backoff.reset();
        let ids = std::mem::take(&mut *revive.lock());
        for id in ids {
            super::runner::wake(&engine, &id);
        }
    }
}
