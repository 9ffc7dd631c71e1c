//! The scheduler: a background task on the engine's clock that reads the due entries of the
//! fire-time index and handles each due schedule one fire at a time.
//!
//! A fire is exactly once across crashes because its workflow id is the schedule id plus the
//! fire time: the scheduler first looks for that workflow (a start that landed before a crash
//! is recorded, not repeated), then starts it with that explicit id (a second create of the id
//! is refused), and only then commits the schedule record, fenced and checked against the
//! revision it read. A crash between the start and the record write leaves the workflow, which
//! the next pass finds and records.

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::spec::{self, Compiled};
use super::store::{self, ScheduleRecord};
use super::{OverlapPolicy, ScheduleError, fire_id};
use crate::engine::clock::{from_millis, to_millis};
use crate::engine::core::Inner;
use crate::engine::error::EngineError;
use crate::engine::{Engine, Owner, StartOptions};
use crate::storage::Batch;

/// How often a schedule with buffered fires looks whether the run they wait for has finished.
pub(crate) const RECHECK_MS: u64 = 1_000;
/// The most fires one schedule handles in one pass, so one schedule cannot starve the rest.
const STEPS_PER_PASS: usize = 1_000;
/// The most missed fires counted one by one in a catch-up (cron); past it the count saturates.
const MISSED_CAP: u64 = 1_000_000;
/// Index entries read per page.
const PAGE: usize = 256;

/// When the scheduler must look at `record` next, at `now_ms`: `None` when never.
pub(crate) fn due_of(record: &ScheduleRecord, id: &str, now_ms: u64) -> Option<u64> {
    if record.paused || record.exhausted() {
        return None;
    }
    let fire = record.next_fire_ms.map(|next| {
        next.saturating_add(spec::jitter_ms(
            id,
            next,
            Duration::from_millis(record.jitter_ms),
        ))
    });
    let recheck = (!record.buffered.is_empty()).then(|| now_ms.saturating_add(RECHECK_MS));
    match (fire, recheck) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Whether the stored index entry of `record` must move: it is not where `due_of` puts it,
/// except for the buffer's recheck, which moves only once it has passed (else the scheduler
/// would wake for it again at once, and spin while the run it waits for runs).
fn stale_due(record: &ScheduleRecord, id: &str, now_ms: u64) -> bool {
    let wanted = due_of(record, id, now_ms);
    if record.due_ms == wanted {
        return false;
    }
    record.buffered.is_empty() || record.due_ms.is_none_or(|due| due <= now_ms)
}

/// Reads schedule `id`; `None` when there is none.
pub(crate) async fn read(inner: &Inner, id: &str) -> Result<Option<ScheduleRecord>, EngineError> {
    let Some(bytes) = inner.read_key(store::schedule_key(id)).await? else {
        return Ok(None);
    };
    crate::engine::record::decode_record(&bytes)
        .map(Some)
        .map_err(|source| EngineError::Record {
            key: format!("sched/{id}"),
            source,
        })
}

/// Writes `record` as the new version of schedule `id` if the stored one still has
/// `record.revision`, moving its index entry. `Ok(false)` when it changed meanwhile (or was
/// deleted): nothing was written, read again.
pub(crate) async fn write(
    inner: &Inner,
    id: &str,
    mut record: ScheduleRecord,
) -> Result<bool, EngineError> {
    let now_ms = to_millis(inner.clock.now());
    let expected = record.revision;
    record.revision += 1;
    record.due_ms = due_of(&record, id, now_ms);
    let id = id.to_string();
    let wake = record.due_ms;
    let written = inner
        .commit_checked(move |view| {
            let key = store::schedule_key(&id);
            let Some(bytes) = view.get(&key)? else {
                return Ok(None);
            };
            let stored: ScheduleRecord =
                crate::engine::record::decode_record(&bytes).map_err(|source| {
                    EngineError::Record {
                        key: format!("sched/{id}"),
                        source,
                    }
                })?;
            if stored.revision != expected {
                return Ok(None);
            }
            let mut batch = Batch::new();
            if let Some(due) = stored.due_ms {
                batch.delete(store::schedule_due_key(due, &id));
            }
            if let Some(due) = record.due_ms {
                batch.put(store::schedule_due_key(due, &id), Vec::new());
            }
            batch.put(key, crate::engine::record::encode_record(&record)?);
            Ok(Some(batch))
        })
        .await?;
    if written && wake.is_some() {
        inner.schedules.notify_one();
    }
    Ok(written)
}

/// Whether workflow `id` exists and has not finished.
async fn live(engine: &Engine, id: Option<&str>) -> Result<bool, EngineError> {
    let Some(id) = id else { return Ok(false) };
    match engine.inner.load_record(id).await {
        Ok(record) => Ok(!record.status.is_terminal()),
        Err(EngineError::NotFound { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether a workflow with id `id` exists.
async fn exists(engine: &Engine, id: &str) -> Result<bool, EngineError> {
    Ok(engine.inner.load_raw(id).await?.is_some())
}

/// Starts the run of schedule `id` for `fire_ms`, or finds the one a previous attempt
/// started. `Ok(Err(reason))` when the start was refused for good (unknown type, bad input).
pub(crate) async fn start_fire(
    engine: &Engine,
    id: &str,
    record: &ScheduleRecord,
    fire_ms: u64,
) -> Result<Result<String, String>, EngineError> {
    let workflow_id = fire_id(id, fire_ms);
    if exists(engine, &workflow_id).await? {
        return Ok(Ok(workflow_id));
    }
    let Some(workflow) = engine.inner.registry.latest(&record.workflow_type) else {
        return Ok(Err(format!(
            "workflow type `{}` is not registered",
            record.workflow_type
        )));
    };
    let input = match serde_json::from_str(&record.input_json) {
        Ok(input) => input,
        Err(e) => return Ok(Err(format!("the stored input is not JSON: {e}"))),
    };
    let options = StartOptions {
        id: Some(workflow_id.clone()),
        ..StartOptions::default()
    };
    let start = match workflow.start_json(engine, input, options) {
        Ok(start) => start,
        Err(reason) => return Ok(Err(format!("the input does not fit: {reason}"))),
    };
    match start.await {
        Ok(started) => Ok(Ok(started)),
        // Created by an earlier attempt that crashed before recording it.
        Err(EngineError::AlreadyExists { .. }) => Ok(Ok(workflow_id)),
        // Faults of the moment: the fire is retried, not given up (an overloaded engine refuses
        // a schedule's start like a caller's, and the fire waits its turn).
        Err(
            e @ (EngineError::Fenced { .. }
            | EngineError::Shutdown
            | EngineError::Storage(_)
            | EngineError::Overloaded { .. }),
        ) => Err(e),
        Err(e) => Ok(Err(e.to_string())),
    }
}

/// Handles at most one fire of schedule `id` at the engine's current time. `Ok(true)` when it
/// did something and the schedule may have more to do now.
pub(crate) async fn step(engine: &Engine, id: &str) -> Result<bool, ScheduleError> {
    let inner = &engine.inner;
    let Some(mut record) = read(inner, id).await? else {
        return Ok(false);
    };
    let now_ms = to_millis(inner.clock.now());
    let compiled: Compiled = record
        .trigger
        .compile()
        .map_err(|reason| ScheduleError::Invalid { reason })?;
    if record.paused {
        return Ok(false);
    }
    // A buffered fire runs once the run it waited for has finished.
    if let Some(&fire_ms) = record.buffered.first()
        && !record.exhausted()
        && !live(engine, record.running.as_deref()).await?
    {
        record.buffered.remove(0);
        fire(engine, id, &mut record, fire_ms).await?;
        return Ok(write(inner, id, record).await?);
    }
    let due = record.next_fire_ms.filter(|_| !record.exhausted());
    let Some(next) = due else {
        // Nothing more to fire: make sure its index entry is gone (or rechecks the buffer).
        if stale_due(&record, id, now_ms) {
            write(inner, id, record).await?;
        }
        return Ok(false);
    };
    let fires_at = next.saturating_add(spec::jitter_ms(
        id,
        next,
        Duration::from_millis(record.jitter_ms),
    ));
    if fires_at > now_ms {
        if stale_due(&record, id, now_ms) {
            write(inner, id, record).await?;
        }
        return Ok(false);
    }
    let cutoff = now_ms.saturating_sub(record.catchup_window_ms);
    if next < cutoff {
        // Fires older than the catch-up window are counted, not run.
        let (count, first_kept) =
            compiled.count_between(next.saturating_sub(1), cutoff, MISSED_CAP);
        record.missed = record.missed.saturating_add(count.max(1));
        record.next_fire_ms = first_kept;
        return Ok(write(inner, id, record).await?);
    }
    let previous_live = live(engine, record.running.as_deref()).await?;
    let already = exists(engine, &fire_id(id, next)).await?;
    if already || !previous_live {
        fire(engine, id, &mut record, next).await?;
    } else {
        match record.overlap {
            OverlapPolicy::Skip => record.skipped += 1,
            OverlapPolicy::BufferOne => {
                record.skipped += record.buffered.len() as u64;
                record.buffered = vec![next];
            }
            OverlapPolicy::BufferAll => record.buffered.push(next),
            OverlapPolicy::CancelPrevious => {
                if let Some(previous) = &record.running {
                    match engine.cancel(previous).await {
                        Ok(()) | Err(EngineError::NotFound { .. }) => {}
                        Err(EngineError::Finished { .. }) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                fire(engine, id, &mut record, next).await?;
            }
            OverlapPolicy::AllowAll => fire(engine, id, &mut record, next).await?,
        }
    }
    record.next_fire_ms = compiled.next_after(next);
    Ok(write(inner, id, record).await?)
}

/// Starts the run for `fire_ms` and records it in `record` (not yet written).
async fn fire(
    engine: &Engine,
    id: &str,
    record: &mut ScheduleRecord,
    fire_ms: u64,
) -> Result<(), EngineError> {
    match start_fire(engine, id, record, fire_ms).await? {
        Ok(workflow_id) => {
            record.running = Some(workflow_id.clone());
            record.note_started(fire_ms, workflow_id);
        }
        Err(reason) => {
            eprintln!("weft: schedule `{id}` could not start its run: {reason}");
            record.skipped += 1;
            record.last_error = Some(reason);
        }
    }
    Ok(())
}

/// One pass: every schedule whose index entry is due, until each has nothing more to do now.
/// Returns the next due time in the index, if any.
pub(crate) async fn pass(engine: &Engine) -> Result<Option<u64>, EngineError> {
    let inner = &engine.inner;
    let now_ms = to_millis(inner.clock.now());
    let mut due = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    'scan: loop {
        let page = inner
            .read_page(store::SCHEDULE_DUE_PREFIX, after.clone(), PAGE)
            .await?;
        let exhausted = page.len() < PAGE;
        for (key, _) in &page {
            after = Some(key.clone());
            match store::parse_due_key(key) {
                Some((at, _)) if at > now_ms => break 'scan,
                Some((_, id)) => due.push(id),
                None => inner.damage.unparsed(key),
            }
        }
        if exhausted {
            break;
        }
    }
    // Schedules that failed in this pass (an unreadable record, a storage error): their index
    // entries stay due, so they are left out of the next due time and retried after
    // RECHECK_MS, not at once, which would spin the scheduler on them.
    let mut failed = std::collections::HashSet::new();
    for id in due {
        for _ in 0..STEPS_PER_PASS {
            match step(engine, &id).await {
                Ok(true) => continue,
                Ok(false) => break,
                Err(ScheduleError::Engine(
                    e @ (EngineError::Fenced { .. } | EngineError::Shutdown),
                )) => return Err(e),
                Err(e) => {
                    eprintln!(
                        "weft: schedule `{id}` failed a fire ({e}); retrying in {RECHECK_MS} ms"
                    );
                    failed.insert(id.clone());
                    break;
                }
            }
        }
    }
    let next = first_due_except(inner, &failed, now_ms).await?;
    let retry = (!failed.is_empty()).then(|| now_ms.saturating_add(RECHECK_MS));
    Ok(match (next, retry) {
        (Some(next), Some(retry)) => Some(next.min(retry)),
        (next, retry) => next.or(retry),
    })
}

/// Deletes the fire-time index entry `key` (schedule `id`, due at `at`) if it names no
/// schedule, or a due time its schedule does not have: damage (a torn write, a record restored
/// without its index), which would otherwise stay due and wake the scheduler at once, forever.
/// Reported when deleted. A schedule's own due entry is never deleted: the check runs in the
/// writer, against the record as stored.
async fn drop_if_stale(
    inner: &Inner,
    key: Vec<u8>,
    id: String,
    at: u64,
) -> Result<bool, EngineError> {
    let stale_key = key.clone();
    let deleted = inner
        .commit_checked(move |view| {
            let stale = match view.get(&store::schedule_key(&id))? {
                None => true,
                Some(bytes) => crate::engine::record::decode_record::<ScheduleRecord>(&bytes)
                    .is_ok_and(|record| record.due_ms != Some(at)),
            };
            Ok(stale.then(|| {
                let mut batch = Batch::new();
                batch.delete(stale_key);
                batch
            }))
        })
        .await?;
    if deleted {
        inner.damage.skipped(
            &key,
            "it names no schedule, or a due time its schedule does not have; deleted",
        );
    }
    Ok(deleted)
}

/// The earliest time in the fire-time index of a schedule not in `except`. An entry still due
/// at `now_ms`, after the pass stepped its schedule, is checked first: a stale one is deleted
/// (see [`drop_if_stale`]) and the scan goes on past it.
async fn first_due_except(
    inner: &Inner,
    except: &std::collections::HashSet<String>,
    now_ms: u64,
) -> Result<Option<u64>, EngineError> {
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = inner
            .read_page(store::SCHEDULE_DUE_PREFIX, after.clone(), PAGE)
            .await?;
        let exhausted = page.len() < PAGE;
        for (key, _) in &page {
            after = Some(key.clone());
            if let Some((at, id)) = store::parse_due_key(key)
                && !except.contains(&id)
            {
                if at <= now_ms && drop_if_stale(inner, key.clone(), id, at).await? {
                    continue;
                }
                return Ok(Some(at));
            }
        }
        if exhausted {
            return Ok(None);
        }
    }
}

/// The scheduler task: a pass whenever the earliest index entry is due or a schedule changed,
/// until the engine is gone. Holds the engine weakly, so it never keeps a dropped engine alive.
pub(in crate::engine) async fn serve(inner: Weak<Inner>, owner: Weak<Owner>) {
    loop {
        let (clock, next, wake) = {
            let (Some(inner), Some(owner)) = (inner.upgrade(), owner.upgrade()) else {
                return;
            };
            // Registered before the pass reads, so a change during the pass is not missed.
            let wake = Arc::clone(&inner.schedules).notified_owned();
            let engine = Engine {
                inner: Arc::clone(&inner),
                _owner: owner,
            };
            let next = match pass(&engine).await {
                Ok(next) => next,
                Err(EngineError::Fenced { .. } | EngineError::Shutdown) => return,
                Err(e) => {
                    eprintln!("weft: a scheduler pass failed ({e}); retrying in a second");
                    Some(to_millis(inner.clock.now()).saturating_add(RECHECK_MS))
                }
            };
            (Arc::clone(&inner.clock), next, wake)
        };
        // With nothing due, wait for a change alone: a sleeper on the clock would show a
        // virtual clock a deadline to jump to, and a test kit that skips time would never see
        // the engine settle.
        match next {
            Some(next) => {
                tokio::select! {
                    () = clock.sleep_until(from_millis(next)) => {}
                    () = wake => {}
                }
            }
            None => wake.await,
        }
    }
}
