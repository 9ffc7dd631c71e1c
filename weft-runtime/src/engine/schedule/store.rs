//! How schedules are stored: their record and the fire-time index, as engine records.
//!
//! | key | value | purpose |
//! | --- | --- | --- |
//! | `sched/<schedule id>` | `[0x01][ScheduleRecord]` | one per schedule: what it starts, when, and what it did |
//! | `schedx/<due ms: u64 BE><schedule id>` | empty | fire-time index: one per active schedule, at the time the scheduler must look at it next |
//!
//! The record's `due_ms` names its one index entry, so every write that changes it moves the
//! entry in the same batch; a paused, finished or deleted schedule has none. The scheduler
//! range-scans `schedx/` up to now and reads only those records.
//!
//! The golden-record tests (`tests/engine_golden.rs`) pin these bytes.

use serde::{Deserialize, Serialize};

use super::OverlapPolicy;
use super::spec::Trigger;

/// The prefix of schedule records.
pub const SCHEDULE_PREFIX: &[u8] = b"sched/";
/// The prefix of the fire-time index.
pub const SCHEDULE_DUE_PREFIX: &[u8] = b"schedx/";

/// How many past runs a record keeps for `describe`.
pub(crate) const RECENT_RUNS: usize = 10;

/// `sched/<id>`.
pub fn schedule_key(id: &str) -> Vec<u8> {
    [SCHEDULE_PREFIX, id.as_bytes()].concat()
}

/// `schedx/<due ms BE><id>`.
pub fn schedule_due_key(due_ms: u64, id: &str) -> Vec<u8> {
    [SCHEDULE_DUE_PREFIX, &due_ms.to_be_bytes(), id.as_bytes()].concat()
}

/// Splits a fire-time index key into its due time and schedule id.
pub(crate) fn parse_due_key(key: &[u8]) -> Option<(u64, String)> {
    let rest = key.strip_prefix(SCHEDULE_DUE_PREFIX)?;
    let (ms, id) = rest.split_at_checked(8)?;
    Some((
        u64::from_be_bytes(ms.try_into().ok()?),
        String::from_utf8(id.to_vec()).ok()?,
    ))
}

/// A stored schedule (format tag `0x01`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleRecord {
    /// The workflow type each fire starts (its newest registered version).
    pub workflow_type: String,
    /// The workflow input, as JSON text (the codec cannot store a `serde_json::Value`).
    pub input_json: String,
    /// When it fires.
    pub trigger: Trigger,
    /// What a fire does while the previous run is still running.
    pub overlap: OverlapPolicy,
    /// Missed fires younger than this (ms) still run after downtime.
    pub catchup_window_ms: u64,
    /// Each fire waits a stable pseudo-random delay below this (ms).
    pub jitter_ms: u64,
    /// Whether it is paused.
    pub paused: bool,
    /// The note given with the last pause or resume.
    pub note: Option<String>,
    /// How many more runs it may start; `None` for no limit.
    pub remaining_runs: Option<u64>,
    /// The next nominal fire time not yet handled; `None` when it will not fire again.
    pub next_fire_ms: Option<u64>,
    /// When the scheduler looks at it next: the key of its `schedx/` entry, if any.
    pub due_ms: Option<u64>,
    /// Fires that fell outside the catch-up window.
    pub missed: u64,
    /// Fires the overlap policy skipped.
    pub skipped: u64,
    /// Runs started, by fire, trigger or backfill.
    pub started: u64,
    /// Fire times waiting for the running one to finish (buffer policies), oldest first.
    pub buffered: Vec<u64>,
    /// The run the overlap policy looks at: the last one started by a fire.
    pub running: Option<String>,
    /// The last runs started, oldest first: (fire ms, workflow id).
    pub recent: Vec<(u64, String)>,
    /// Why the last fire could not start its run, if it could not.
    pub last_error: Option<String>,
    /// Bumped by every write, so a write prepared from an older read is refused.
    pub revision: u64,
    /// When it was created (ms).
    pub created_ms: u64,
}

impl crate::engine::record::Record for ScheduleRecord {}

impl ScheduleRecord {
    /// Records a run started for `fire_ms` as `workflow_id`.
    pub(crate) fn note_started(&mut self, fire_ms: u64, workflow_id: String) {
        self.started += 1;
        if let Some(left) = &mut self.remaining_runs {
            *left = left.saturating_sub(1);
        }
        if !self.recent.iter().any(|(_, id)| *id == workflow_id) {
            self.recent.push((fire_ms, workflow_id));
        }
        if self.recent.len() > RECENT_RUNS {
            let over = self.recent.len() - RECENT_RUNS;
            self.recent.drain(..over);
        }
    }

    /// Whether the run limit is used up.
    pub(crate) fn exhausted(&self) -> bool {
        self.remaining_runs == Some(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_keys_parse_back_in_time_order() {
        assert_eq!(
            parse_due_key(&schedule_due_key(42, "nightly")),
            Some((42, "nightly".to_string()))
        );
        assert!(schedule_due_key(1, "z") < schedule_due_key(2, "a"));
        assert_eq!(parse_due_key(b"schedx/short"), None);
    }
}
