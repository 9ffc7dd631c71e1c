//! Durable schedules: start a workflow type with a given JSON input on a cron expression or a
//! fixed interval, as engine records that outlive restarts.
//!
//! Each fire starts the workflow with the id `<schedule id>@<fire time, RFC 3339 UTC>`, so a
//! fire happens once across crashes and restarts (see `scheduler`). The scheduler runs on the
//! engine's clock, reads only the due entries of a fire-time index (see `store`), and writes
//! through the engine's fenced writer, so a deposed engine cannot fire.
//!
//! ```
//! use std::time::Duration;
//! use weft_runtime::storage::MemoryStorage;
//! use weft_runtime::{Engine, OverlapPolicy, ScheduleSpec, Trigger, WorkflowContext, WorkflowError, workflow};
//!
//! #[workflow]
//! async fn report(ctx: &mut WorkflowContext, team: String) -> Result<String, WorkflowError> {
//!     Ok(format!("report for {team}"))
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let engine = Engine::builder(MemoryStorage::new()).register::<report>().build().await?;
//! let spec = ScheduleSpec::new("report", serde_json::json!("ops"), Trigger::cron_in("0 9 * * MON-FRI", "Europe/Berlin"))
//!     .overlap(OverlapPolicy::Skip)
//!     .catchup_window(Duration::from_secs(3600));
//! engine.create_schedule("weekday-report", spec).await?;
//! let described = engine.describe_schedule("weekday-report", 3).await?;
//! assert_eq!(described.next_fires.len(), 3);
//! # Ok(())
//! # }
//! ```

pub(super) mod scheduler;
mod spec;
pub mod store;

use std::time::{Duration, SystemTime};

use chrono::{SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Serialize};

pub use spec::Trigger;
use store::{SCHEDULE_PREFIX, ScheduleRecord};

use self::scheduler::{read, write};
use super::clock::{from_millis, to_millis};
use super::core::Inner;
use super::error::EngineError;
use super::page::{Page, token_key};
use super::query::WorkflowStatus;
use super::{Engine, validate_id};

/// What a fire does while the run the schedule started before is still running.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OverlapPolicy {
    /// Skip this fire (counted in [`ScheduleDescription::skipped`]). The default.
    #[default]
    Skip,
    /// Keep this fire until the running one finishes, then start it; a later fire replaces a
    /// kept one (the replaced one counts as skipped).
    BufferOne,
    /// Keep every fire and start them one after another, each once the one before finished.
    BufferAll,
    /// Cancel the running one and start this fire's run.
    CancelPrevious,
    /// Start this fire's run beside the running one.
    AllowAll,
}

/// What a schedule starts and when: the input of [`Engine::create_schedule`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleSpec {
    /// The workflow type each fire starts (the newest registered version of that name).
    pub workflow_type: String,
    /// The workflow input, as JSON.
    pub input: serde_json::Value,
    /// When it fires.
    pub trigger: Trigger,
    /// What a fire does while the previous run still runs (default: skip).
    pub overlap: OverlapPolicy,
    /// After downtime, missed fires younger than this still run; older ones are counted as
    /// missed (default: one minute).
    pub catchup_window: Duration,
    /// Each fire waits a pseudo-random delay below this, the same for a given fire (default:
    /// none), to spread schedules that share a time.
    pub jitter: Duration,
    /// How many runs it starts in all before it stops; `None` for no limit.
    pub max_runs: Option<u64>,
}

impl ScheduleSpec {
    /// A spec that starts `workflow_type` with `input` on `trigger`, with the defaults.
    pub fn new(workflow_type: &str, input: serde_json::Value, trigger: Trigger) -> Self {
        ScheduleSpec {
            workflow_type: workflow_type.to_string(),
            input,
            trigger,
            overlap: OverlapPolicy::Skip,
            catchup_window: Duration::from_secs(60),
            jitter: Duration::ZERO,
            max_runs: None,
        }
    }

    /// Sets [`ScheduleSpec::overlap`].
    pub fn overlap(mut self, overlap: OverlapPolicy) -> Self {
        self.overlap = overlap;
        self
    }

    /// Sets [`ScheduleSpec::catchup_window`].
    pub fn catchup_window(mut self, window: Duration) -> Self {
        self.catchup_window = window;
        self
    }

    /// Sets [`ScheduleSpec::jitter`].
    pub fn jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }

    /// Sets [`ScheduleSpec::max_runs`].
    pub fn max_runs(mut self, runs: u64) -> Self {
        self.max_runs = Some(runs);
        self
    }
}

/// A schedule operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// No schedule has this id.
    #[error("no schedule with id `{id}`")]
    NotFound {
        /// The id looked up.
        id: String,
    },
    /// A schedule with this id exists already.
    #[error("a schedule with id `{id}` exists already; delete it first or update it")]
    AlreadyExists {
        /// The id.
        id: String,
    },
    /// The spec is not valid (a bad cron expression, time zone or interval, an unknown
    /// workflow type, an input that does not fit it, a bad range).
    #[error("invalid schedule: {reason}")]
    Invalid {
        /// What is wrong, and the fix.
        reason: String,
    },
    /// The engine failed (fenced, shut down, storage).
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl ScheduleError {
    /// What kind of failure this is, as [`EngineError::kind`] says for engine errors: an
    /// unknown schedule is `NotFound`, a taken id `Conflict`, a bad spec `InvalidInput`.
    pub fn kind(&self) -> super::ErrorKind {
        match self {
            ScheduleError::NotFound { .. } => super::ErrorKind::NotFound,
            ScheduleError::AlreadyExists { .. } => super::ErrorKind::Conflict,
            ScheduleError::Invalid { .. } => super::ErrorKind::InvalidInput,
            ScheduleError::Engine(e) => e.kind(),
        }
    }
}

/// A run a schedule started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleRun {
    /// The nominal fire time it was started for.
    pub fire_time: SystemTime,
    /// The workflow's id.
    pub workflow_id: String,
    /// Its status now; `None` when it has been purged.
    pub status: Option<WorkflowStatus>,
}

/// What [`Engine::describe_schedule`] shows.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleDescription {
    /// The schedule's id.
    pub id: String,
    /// What it starts and when.
    pub spec: ScheduleSpec,
    /// Whether it is paused.
    pub paused: bool,
    /// The note of the last pause or resume.
    pub note: Option<String>,
    /// The next nominal fire times (empty when paused or finished).
    pub next_fires: Vec<SystemTime>,
    /// The last runs it started, newest first.
    pub recent_runs: Vec<ScheduleRun>,
    /// Fires that fell outside the catch-up window.
    pub missed: u64,
    /// Fires the overlap policy skipped, or whose run could not start.
    pub skipped: u64,
    /// Runs started in all.
    pub started: u64,
    /// Fires waiting for the running one to finish.
    pub buffered: u64,
    /// Runs it may still start, when limited.
    pub remaining_runs: Option<u64>,
    /// Why the last fire could not start its run, if it could not.
    pub last_error: Option<String>,
}

/// One schedule, as [`Engine::list_schedules`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleSummary {
    /// The schedule's id.
    pub id: String,
    /// The workflow type it starts.
    pub workflow_type: String,
    /// Whether it is paused.
    pub paused: bool,
    /// The next nominal fire time.
    pub next_fire: Option<SystemTime>,
    /// Runs started in all.
    pub started: u64,
    /// Fires missed.
    pub missed: u64,
}

/// The workflow id of schedule `id`'s run for the fire at `fire_ms`.
pub(crate) fn fire_id(id: &str, fire_ms: u64) -> String {
    let at = i64::try_from(fire_ms)
        .ok()
        .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
        .map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
        .unwrap_or_else(|| fire_ms.to_string());
    format!("{id}@{at}")
}

/// The most fires one backfill starts.
pub const MAX_BACKFILL: usize = 10_000;

fn invalid(reason: impl Into<String>) -> ScheduleError {
    ScheduleError::Invalid {
        reason: reason.into(),
    }
}

fn spec_of(record: &ScheduleRecord) -> ScheduleSpec {
    ScheduleSpec {
        workflow_type: record.workflow_type.clone(),
        input: serde_json::from_str(&record.input_json).unwrap_or(serde_json::Value::Null),
        trigger: record.trigger.clone(),
        overlap: record.overlap,
        catchup_window: Duration::from_millis(record.catchup_window_ms),
        jitter: Duration::from_millis(record.jitter_ms),
        max_runs: record.remaining_runs.map(|left| left + record.started),
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Engine {
    /// Checks `spec` against the registered code: the trigger parses, the type is registered
    /// and the input fits its input type.
    fn check_spec(&self, spec: &ScheduleSpec) -> Result<spec::Compiled, ScheduleError> {
        let compiled = spec.trigger.compile().map_err(invalid)?;
        let Some(workflow) = self.inner.registry.latest(&spec.workflow_type) else {
            return Err(invalid(format!(
                "workflow type `{}` is not registered with this engine",
                spec.workflow_type
            )));
        };
        // Decoding happens before the returned future is polled, so dropping it starts nothing.
        drop(
            workflow
                .start_json(self, spec.input.clone(), super::StartOptions::default())
                .map_err(|reason| {
                    invalid(format!(
                        "the input does not fit workflow `{}`: {reason}",
                        spec.workflow_type
                    ))
                })?,
        );
        Ok(compiled)
    }

    /// Reads schedule `id`, or `NotFound`.
    async fn schedule_record(&self, id: &str) -> Result<ScheduleRecord, ScheduleError> {
        read(&self.inner, id)
            .await?
            .ok_or_else(|| ScheduleError::NotFound { id: id.to_string() })
    }

    /// Reads schedule `id`, changes it with `change`, and writes it back under its revision,
    /// reading again when another write got there first.
    async fn change_schedule(
        &self,
        id: &str,
        mut change: impl FnMut(&mut ScheduleRecord, u64) -> Result<(), ScheduleError>,
    ) -> Result<(), ScheduleError> {
        self.inner.check_live()?;
        loop {
            let mut record = self.schedule_record(id).await?;
            change(&mut record, to_millis(self.inner.clock.now()))?;
            if write(&self.inner, id, record).await? {
                return Ok(());
            }
        }
    }

    /// Creates schedule `id`. Its first fire is the first fire time after now.
    ///
    /// # Errors
    ///
    /// `AlreadyExists` when the id is taken; `Invalid` when the trigger does not parse, the
    /// workflow type is not registered or the input does not fit it, or the id is not valid;
    /// `Engine` when the write fails.
    ///
    /// # Cancel safety
    ///
    /// The create reaches the engine's writer at the first poll; dropping the future after
    /// that does not withdraw it. Creating again answers `AlreadyExists` if it landed.
    pub async fn create_schedule(&self, id: &str, spec: ScheduleSpec) -> Result<(), ScheduleError> {
        self.inner.check_live()?;
        validate_id(id).map_err(|e| invalid(e.to_string()))?;
        let compiled = self.check_spec(&spec)?;
        let now_ms = to_millis(self.inner.clock.now());
        let record = ScheduleRecord {
            workflow_type: spec.workflow_type,
            input_json: spec.input.to_string(),
            trigger: spec.trigger,
            overlap: spec.overlap,
            catchup_window_ms: millis(spec.catchup_window),
            jitter_ms: millis(spec.jitter),
            paused: false,
            note: None,
            remaining_runs: spec.max_runs,
            next_fire_ms: compiled.next_after(now_ms),
            due_ms: None,
            missed: 0,
            skipped: 0,
            started: 0,
            buffered: Vec::new(),
            running: None,
            recent: Vec::new(),
            last_error: None,
            revision: 0,
            created_ms: now_ms,
        };
        let mut record = record;
        record.due_ms = scheduler::due_of(&record, id, now_ms);
        let key = store::schedule_key(id);
        let due = record.due_ms.map(|due| store::schedule_due_key(due, id));
        let bytes = super::record::encode_record(&record).map_err(EngineError::from)?;
        let created = self
            .inner
            .commit_checked(move |view| {
                if view.get(&key)?.is_some() {
                    return Ok(None);
                }
                let mut batch = crate::storage::Batch::new();
                batch.put(key, bytes);
                if let Some(due) = due {
                    batch.put(due, Vec::new());
                }
                Ok(Some(batch))
            })
            .await?;
        if !created {
            return Err(ScheduleError::AlreadyExists { id: id.to_string() });
        }
        self.inner.schedules.notify_one();
        Ok(())
    }

    /// Replaces what schedule `id` starts and when, keeping its history; the next fire is the
    /// first fire time after now, and buffered fires are dropped.
    ///
    /// # Errors
    ///
    /// `NotFound`, `Invalid` (as for [`Engine::create_schedule`]), `Engine`.
    ///
    /// # Cancel safety
    ///
    /// Each write reaches the writer at its first poll; a dropped call has either replaced the
    /// spec or not. Calling again with the same spec is harmless.
    pub async fn update_schedule(&self, id: &str, spec: ScheduleSpec) -> Result<(), ScheduleError> {
        let compiled = self.check_spec(&spec)?;
        self.change_schedule(id, |record, now_ms| {
            record.workflow_type = spec.workflow_type.clone();
            record.input_json = spec.input.to_string();
            record.trigger = spec.trigger.clone();
            record.overlap = spec.overlap;
            record.catchup_window_ms = millis(spec.catchup_window);
            record.jitter_ms = millis(spec.jitter);
            record.remaining_runs = spec.max_runs.map(|max| max.saturating_sub(record.started));
            record.next_fire_ms = compiled.next_after(now_ms);
            record.buffered.clear();
            Ok(())
        })
        .await
    }

    /// Pauses schedule `id` with a note: it does not fire until resumed, and fires it would
    /// have had meanwhile are neither run nor counted as missed.
    ///
    /// # Errors
    ///
    /// `NotFound`, `Engine`.
    ///
    /// # Cancel safety
    ///
    /// As for [`Engine::update_schedule`]; pausing twice is harmless.
    pub async fn pause_schedule(
        &self,
        id: &str,
        note: Option<String>,
    ) -> Result<(), ScheduleError> {
        self.change_schedule(id, |record, _| {
            record.paused = true;
            record.note = note.clone();
            Ok(())
        })
        .await
    }

    /// Resumes schedule `id` with a note; its next fire is the first fire time after now.
    ///
    /// # Errors
    ///
    /// `NotFound`, `Invalid` (a stored trigger that no longer parses), `Engine`.
    ///
    /// # Cancel safety
    ///
    /// As for [`Engine::update_schedule`]; resuming a running schedule only sets the note.
    pub async fn resume_schedule(
        &self,
        id: &str,
        note: Option<String>,
    ) -> Result<(), ScheduleError> {
        self.change_schedule(id, |record, now_ms| {
            if record.paused {
                let compiled = record.trigger.compile().map_err(invalid)?;
                record.paused = false;
                record.next_fire_ms = compiled.next_after(now_ms);
            }
            record.note = note.clone();
            Ok(())
        })
        .await
    }

    /// Deletes schedule `id`. The runs it started are not touched.
    ///
    /// # Errors
    ///
    /// `NotFound`, `Engine`.
    ///
    /// # Cancel safety
    ///
    /// The delete reaches the writer at the first poll; a retry answers `NotFound` if it landed.
    pub async fn delete_schedule(&self, id: &str) -> Result<(), ScheduleError> {
        self.inner.check_live()?;
        let key = store::schedule_key(id);
        let owned = id.to_string();
        let deleted = self
            .inner
            .commit_checked(move |view| {
                let Some(bytes) = view.get(&key)? else {
                    return Ok(None);
                };
                let stored: ScheduleRecord =
                    super::record::decode_record(&bytes).map_err(|source| EngineError::Record {
                        key: format!("sched/{owned}"),
                        source,
                    })?;
                let mut batch = crate::storage::Batch::new();
                if let Some(due) = stored.due_ms {
                    batch.delete(store::schedule_due_key(due, &owned));
                }
                batch.delete(key);
                Ok(Some(batch))
            })
            .await?;
        if deleted {
            Ok(())
        } else {
            Err(ScheduleError::NotFound { id: id.to_string() })
        }
    }

    /// Starts schedule `id`'s workflow now, whatever its trigger, overlap policy or pause say,
    /// and returns the run's id (`<id>@<now>`). It counts toward the run limit and becomes the
    /// run the overlap policy looks at.
    ///
    /// # Errors
    ///
    /// `NotFound`; `Invalid` when the run limit is used up or the run cannot start (an
    /// unregistered type, an input that no longer fits); `Engine`.
    ///
    /// # Cancel safety
    ///
    /// The start reaches the writer at its first poll. Dropped after that, the run may exist
    /// without being in the schedule's recent runs; it is a normal workflow all the same.
    pub async fn trigger_schedule(&self, id: &str) -> Result<String, ScheduleError> {
        self.inner.check_live()?;
        let record = self.schedule_record(id).await?;
        if record.exhausted() {
            return Err(invalid(format!(
                "schedule `{id}` has used up its run limit"
            )));
        }
        let now_ms = to_millis(self.inner.clock.now());
        let workflow_id = scheduler::start_fire(self, id, &record, now_ms)
            .await?
            .map_err(invalid)?;
        let started = workflow_id.clone();
        self.change_schedule(id, |record, _| {
            record.running = Some(started.clone());
            record.note_started(now_ms, started.clone());
            Ok(())
        })
        .await?;
        Ok(workflow_id)
    }

    /// Starts a run for every fire time of schedule `id` in `[from, to)`, oldest first, with
    /// the same ids the fires would have had (so a fire that already ran is not run again),
    /// whatever the overlap policy and the pause say. Returns the runs' ids.
    ///
    /// # Errors
    ///
    /// `NotFound`; `Invalid` when `from` is not before `to`, when the range holds more than
    /// [`MAX_BACKFILL`] fires or more than the run limit leaves, or a run cannot start; `Engine`.
    ///
    /// # Cancel safety
    ///
    /// Each start reaches the writer at its first poll. Dropped midway, some runs were
    /// started; calling again with the same range starts only the rest.
    pub async fn backfill_schedule(
        &self,
        id: &str,
        from: SystemTime,
        to: SystemTime,
    ) -> Result<Vec<String>, ScheduleError> {
        self.inner.check_live()?;
        let (from_ms, to_ms) = (to_millis(from), to_millis(to));
        if from_ms >= to_ms {
            return Err(invalid(
                "the backfill range is empty: `from` must be before `to`",
            ));
        }
        let record = self.schedule_record(id).await?;
        let compiled = record.trigger.compile().map_err(invalid)?;
        let mut fires = Vec::new();
        let mut at = compiled.first_at_or_after(from_ms);
        while let Some(fire) = at.filter(|&fire| fire < to_ms) {
            if fires.len() == MAX_BACKFILL {
                return Err(invalid(format!(
                    "the range holds more than {MAX_BACKFILL} fires; backfill it in parts"
                )));
            }
            fires.push(fire);
            at = compiled.next_after(fire);
        }
        if let Some(left) = record.remaining_runs
            && fires.len() as u64 > left
        {
            return Err(invalid(format!(
                "the range holds {} fires but the run limit leaves {left}",
                fires.len()
            )));
        }
        let mut started = Vec::new();
        for &fire in &fires {
            let workflow_id = scheduler::start_fire(self, id, &record, fire)
                .await?
                .map_err(invalid)?;
            started.push((fire, workflow_id));
        }
        let ids: Vec<String> = started.iter().map(|(_, id)| id.clone()).collect();
        self.change_schedule(id, |record, _| {
            for (fire, workflow_id) in &started {
                if !record.recent.iter().any(|(_, known)| known == workflow_id) {
                    record.note_started(*fire, workflow_id.clone());
                }
            }
            Ok(())
        })
        .await?;
        Ok(ids)
    }

    /// Describes schedule `id`: its spec, its next `next` fire times, its last runs with their
    /// status, and its counts.
    ///
    /// # Errors
    ///
    /// `NotFound`; `Engine` when the store cannot be read.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only reads.
    pub async fn describe_schedule(
        &self,
        id: &str,
        next: usize,
    ) -> Result<ScheduleDescription, ScheduleError> {
        let record = self.schedule_record(id).await?;
        let mut next_fires = Vec::new();
        if !record.paused
            && !record.exhausted()
            && let Ok(compiled) = record.trigger.compile()
        {
            let limit = record
                .remaining_runs
                .map_or(next, |left| next.min(usize::try_from(left).unwrap_or(next)));
            let mut at = record.next_fire_ms;
            while let Some(fire) = at {
                if next_fires.len() >= limit {
                    break;
                }
                next_fires.push(from_millis(fire));
                at = compiled.next_after(fire);
            }
        }
        let mut recent_runs = Vec::new();
        for (fire_ms, workflow_id) in record.recent.iter().rev() {
            let status = match self.describe(workflow_id).await {
                Ok(described) => Some(described.status),
                Err(EngineError::NotFound { .. }) => None,
                Err(e) => return Err(e.into()),
            };
            recent_runs.push(ScheduleRun {
                fire_time: from_millis(*fire_ms),
                workflow_id: workflow_id.clone(),
                status,
            });
        }
        Ok(ScheduleDescription {
            id: id.to_string(),
            spec: spec_of(&record),
            paused: record.paused,
            note: record.note.clone(),
            next_fires,
            recent_runs,
            missed: record.missed,
            skipped: record.skipped,
            started: record.started,
            buffered: record.buffered.len() as u64,
            remaining_runs: record.remaining_runs,
            last_error: record.last_error.clone(),
        })
    }

    /// The schedules, in id order, `page_size` (at least 1) at a time. Pass the previous page's
    /// `next_page_token` to continue.
    ///
    /// # Errors
    ///
    /// `Engine` when the store cannot be read, or with [`EngineError::InvalidPageToken`] for a
    /// token no page handed out that cannot be read. A schedule whose record does not decode is
    /// left out, so that it hides no other; [`Engine::describe_schedule`] of it reports the
    /// record error.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only reads.
    pub async fn list_schedules(
        &self,
        page_size: usize,
        page_token: Option<&str>,
    ) -> Result<Page<ScheduleSummary>, ScheduleError> {
        self.inner.check_live()?;
        let page_token = page_token.map(str::to_string);
        let page = super::read_blocking(&self.inner, move |inner| {
            list_page(inner, page_size, page_token.as_deref())
        })
        .await?;
        Ok(page)
    }
}

/// One page of the schedules, after the schedule id `page_token`.
fn list_page(
    inner: &Inner,
    page_size: usize,
    page_token: Option<&str>,
) -> Result<Page<ScheduleSummary>, EngineError> {
    let page_size = page_size.max(1);
    let mut after = token_key(page_token)?.map(store::schedule_key);
    let mut items = Vec::new();
    'scan: loop {
        let batch = inner
            .storage
            .scan_prefix(SCHEDULE_PREFIX, after.as_deref(), SCAN_BATCH)?;
        let exhausted = batch.len() < SCAN_BATCH;
        for (key, bytes) in batch {
            let id = String::from_utf8_lossy(&key[SCHEDULE_PREFIX.len()..]).into_owned();
            // One unreadable schedule must not hide every other: it is left out, and calls
            // about it (`describe_schedule`, ...) fail with the record error.
            let record = match super::record::decode_record::<ScheduleRecord>(&bytes) {
                Ok(record) => record,
                Err(e) => {
                    inner
                        .damage
                        .skipped(&key, &format!("its schedule does not decode ({e})"));
                    after = Some(key);
                    continue;
                }
            };
            after = Some(key);
            items.push(ScheduleSummary {
                id,
                workflow_type: record.workflow_type.clone(),
                paused: record.paused,
                next_fire: record
                    .next_fire_ms
                    .filter(|_| !record.paused && !record.exhausted())
                    .map(from_millis),
                started: record.started,
                missed: record.missed,
            });
            if items.len() == page_size {
                break 'scan;
            }
        }
        if exhausted {
            break;
        }
    }
    Ok(Page::of(items, page_size, |s| &s.id))
}

/// How many schedule records one storage read returns.
const SCAN_BATCH: usize = 256;

#[cfg(test)]
mod kind_tests {
    use super::*;
    use crate::engine::ErrorKind;

    #[test]
    fn schedule_errors_have_the_kind_of_what_went_wrong() {
        let id = "s".to_string();
        assert_eq!(
            ScheduleError::NotFound { id: id.clone() }.kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            ScheduleError::AlreadyExists { id }.kind(),
            ErrorKind::Conflict
        );
        let invalid = ScheduleError::Invalid {
            reason: "bad cron".into(),
        };
        assert_eq!(invalid.kind(), ErrorKind::InvalidInput);
        let down = ScheduleError::Engine(EngineError::Shutdown);
        assert_eq!(down.kind(), ErrorKind::Unavailable);
    }
}
