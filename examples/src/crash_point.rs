//! The examples' `--crash-after N` switch: abort the process right after the side effect of the
//! `N`-th activity execution, before its result is committed, to show recovery resuming it.

use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counts activity side effects in this process and aborts after the chosen one.
#[derive(Debug, Default)]
pub struct CrashPoint {
    after: Option<u64>,
    executions: AtomicU64,
}

impl CrashPoint {
    /// Aborts after the `n`-th side effect.
    pub fn after(n: u64) -> Self {
        CrashPoint {
            after: Some(n),
            executions: AtomicU64::new(0),
        }
    }

    /// Call right after an activity's side effect: on the chosen one, says so and aborts the
    /// process (`std::process::abort`, as abrupt as `kill -9`).
    pub fn after_side_effect(&self) {
        let done = self.executions.fetch_add(1, Ordering::SeqCst) + 1;
        if self.after == Some(done) {
            println!(
                "!! --crash-after {done}: aborting the process now, after that side effect and \
                 before its result is committed (like kill -9). Run the same command without \
                 --crash-after to resume."
            );
            let _ = std::io::stdout().flush();
            std::process::abort();
        }
    }
}
