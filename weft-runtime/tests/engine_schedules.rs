//! Durable schedules on a virtual clock: deterministic fire ids, every overlap policy, catch-up
//! after a long downtime, daylight-saving changes in a time zone, pause, trigger, backfill and
//! run limits, and a crash at every write of a fire.

mod engine_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use weft_runtime::engine::{VirtualClock, WorkflowStatus};
use weft_runtime::storage::{Batch, Condition, Entry, MemoryStorage, Storage, StorageError};
use weft_runtime::{
    Engine, OverlapPolicy, ScheduleDescription, ScheduleError, ScheduleSpec, Signal, Trigger,
    WorkflowContext, WorkflowError, workflow,
};

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Serialize, Deserialize, Signal)]
struct Done;

/// Runs until it is sent `Done`, so a test decides when a run is over.
#[workflow]
async fn job(ctx: &mut WorkflowContext, n: u32) -> Result<u32, WorkflowError> {
    ctx.wait_for_signal::<Done>().await;
    Ok(n)
}

/// Finishes in its first step.
#[workflow]
async fn quick(ctx: &mut WorkflowContext, n: u32) -> Result<u32, WorkflowError> {
    Ok(n + 1)
}

async fn engine_on(storage: impl Storage, clock: &VirtualClock) -> Engine {
    Engine::builder(storage)
        .register::<job>()
        .register::<quick>()
        .clock(Arc::new(clock.clone()))
        .build()
        .await
        .unwrap()
}

/// Waits (in real time, bounded) until the schedule's description satisfies `check`.
async fn wait_for(
    engine: &Engine,
    id: &str,
    check: impl Fn(&ScheduleDescription) -> bool,
) -> ScheduleDescription {
    let mut last = None;
    for _ in 0..5_000 {
        let described = engine.describe_schedule(id, 3).await.unwrap();
        if check(&described) {
            return described;
        }
        last = Some(described);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("schedule `{id}` never reached the condition: {last:#?}");
}

fn at(clock: &VirtualClock, after: Duration) -> SystemTime {
    clock.now() + after
}

/// The run ids, oldest first.
fn runs(described: &ScheduleDescription) -> Vec<String> {
    described
        .recent_runs
        .iter()
        .rev()
        .map(|run| run.workflow_id.clone())
        .collect()
}

fn every_minute(workflow: &str, overlap: OverlapPolicy) -> ScheduleSpec {
    ScheduleSpec::new(workflow, serde_json::json!(7), Trigger::every(MINUTE)).overlap(overlap)
}

async fn status(engine: &Engine, id: &str) -> WorkflowStatus {
    engine.describe(id).await.unwrap().status
}

async fn finish(engine: &Engine, id: &str) {
    engine.signal(id, Done).await.unwrap();
    engine_support::wait_status(engine, id, WorkflowStatus::Completed).await;
}

// The default clock stands at 2030-01-01T00:00:00Z.
const FIRE_1: &str = "s@2030-01-01T00:01:00Z";
const FIRE_2: &str = "s@2030-01-01T00:02:00Z";
const FIRE_3: &str = "s@2030-01-01T00:03:00Z";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_fire_starts_one_run_with_the_schedule_id_and_fire_time() {
    let clock = VirtualClock::default();
    let engine = engine_on(MemoryStorage::new(), &clock).await;
    let spec = every_minute("quick", OverlapPolicy::Skip);
    engine.create_schedule("s", spec.clone()).await.unwrap();
    assert!(matches!(
        engine.create_schedule("s", spec).await,
        Err(ScheduleError::AlreadyExists { .. })
    ));
    let described = engine.describe_schedule("s", 3).await.unwrap();
    assert_eq!(
        described.next_fires,
        vec![
            at(&clock, MINUTE),
            at(&clock, 2 * MINUTE),
            at(&clock, 3 * MINUTE)
        ]
    );
    assert_eq!(described.started, 0);

    clock.advance(MINUTE);
    wait_for(&engine, "s", |d| d.started == 1).await;
    let handle = engine.handle::<quick>(FIRE_1);
    assert_eq!(handle.result().await.unwrap(), Ok(8));
    clock.advance(MINUTE);
    let described = wait_for(&engine, "s", |d| d.started == 2).await;
    assert_eq!(runs(&described), vec![FIRE_1, FIRE_2]);
    assert_eq!(
        described.recent_runs[1].status,
        Some(WorkflowStatus::Completed)
    );
    assert_eq!(described.missed, 0);
    assert_eq!(described.next_fires[0], at(&clock, MINUTE));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_drops_a_fire_while_the_previous_run_is_running() {
    let clock = VirtualClock::default();
    let engine = engine_on(MemoryStorage::new(), &clock).await;
    engine
        .create_schedule("s", every_minute("job", OverlapPolicy::Skip))
        .await
        .unwrap();
    clock.advance(MINUTE);
    wait_for(&engine, "s", |d| d.started == 1).await;
    clock.advance(MINUTE);
    let described = wait_for(&engine, "s", |d| d.skipped == 1).await;
    assert_eq!(described.started, 1);
    assert!(engine.describe(FIRE_2).await.is_err());
    finish(&engine, FIRE_1).await;
    clock.advance(MINUTE);
    let described = wait_for(&engine, "s", |d| d.started == 2).await;
    assert_eq!(runs(&described), vec![FIRE_1, FIRE_3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffer_one_keeps_the_latest_fire_until_the_run_finishes() {
    let clock = VirtualClock::default();
    let storage = MemoryStorage::new();
    let engine = engine_on(storage.clone(), &clock).await;
    engine
        .create_schedule("s", every_minute("job", OverlapPolicy::BufferOne))
        .await
        .unwrap();
    clock.advance(MINUTE);
    wait_for(&engine, "s", |d| d.started == 1).await;
    clock.advance(MINUTE);
    wait_for(&engine, "s", |d| d.buffered == 1).await;
    clock.advance(MINUTE);
    // The fire at 00:03 replaces the one kept from 00:02.
    let described = wait_for(&engine, "s", |d| d.skipped == 1).await;
    assert_eq!((described.buffered, described.started), (1, 1));
    // While it waits, its index entry stays ahead of the clock: the scheduler does not spin.
    clock.advance(Duration::from_secs(1));
    let due = |storage: &MemoryStorage| {
        let entries = storage.scan_prefix(b"schedx/", None, 10).unwrap();
        assert_eq!(entries.len(), 1);
        u64::from_be_bytes(entries[0].0[7..15].try_into().unwrap())
    };
    let now_ms = |clock: &VirtualClock| weft_runtime::engine::clock::to_millis(clock.now());
    let mut ahead = false;
    for _ in 0..5_000 {
        ahead = due(&storage) > now_ms(&clock);
        if ahead {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(ahead, "the index entry stayed behind the clock");
    finish(&engine, FIRE_1).await;
    clock.advance(Duration::from_secs(1));
    let described = wait_for(&engine, "s", |d| d.started == 2).await;
    assert_eq!(runs(&described), vec![FIRE_1, FIRE_3]);
    assert_eq!(described.buffered, 0);
    assert_eq!(status(&engine, FIRE_3).await, WorkflowStatus::Waiting);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffer_all_runs_every_fire_one_after_another() {
    let clock = VirtualClock::default();
    let engine = engine_on(MemoryStorage::new(), &clock).await;
    engine
        .create_schedule("s", every_minute("job", OverlapPolicy::BufferAll))
        .await
        .unwrap();
    clock.advance(MINUTE);
    wait_for(&engine, "s", |d| d.started == 1).await;
    clock.advance(MINUTE);
    wait_for(&engine, "s", |d| d.buffered == 1).await;
    clock.advance(MINUTE);
    wait_for(&engine, "s", |d| d.buffered == 2).await;
    for (previous, next, started) in [(FIRE_1, FIRE_2, 2), (FIRE_2, FIRE_3, 3)] {
        finish(&engine, previous).await;
        clock.advance(Duration::from_secs(1));
        let described = wait_for(&engine, "s", |d| d.started == started).await;
        assert_eq!(runs(&described).last().unwrap(), next);
        // Only one runs at a time.
        assert_eq!(status(&engine, next).await, WorkflowStatus::Waiting);
    }
    let described = engine.describe_schedule("s", 1).await.unwrap();
    assert_eq!((described.buffered, described.skipped), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_previous_cancels_the_running_one_and_starts_the_fire() {
    let clock = VirtualClock::default();
    let engine = engine_on(MemoryStorage::new(), &clock).await;
    engine
        .create_schedule("s", every_minute("job", OverlapPolicy::CancelPrevious))
        .await
        .unwrap();
    clock.advance(MINUTE);
    wait_for(&engine, "s", |d| d.started == 1).await;
    clock.advance(MINUTE);
    let described = wait_for(&engine, "s", |d| d.started == 2).await;
    assert_eq!(runs(&described), vec![FIRE_1, FIRE_2]);
    engine_support::wait_status(&engine, FIRE_1, WorkflowStatus::Cancelled).await;
    assert_eq!(status(&engine, FIRE_2).await, WorkflowStatus::Waiting);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_all_runs_fires_side_by_side() {
    let clock = VirtualClock::default();
    let engine = engine_on(MemoryStorage::new(), &clock).await;
    engine
        .create_schedule("s", every_minute("job", OverlapPolicy::AllowAll))
        .await
        .unwrap();
    for started in 1..=3 {
        clock.advance(MINUTE);
        wait_for(&engine, "s", |d| d.started == started).await;
    }
    for id in [FIRE_1, FIRE_2, FIRE_3] {
        assert_eq!(status(&engine, id).await, WorkflowStatus::Waiting);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_long_downtime_fires_inside_the_window_run_and_older_ones_are_missed() {
    let storage = MemoryStorage::new();
    let clock = VirtualClock::default();
    let engine = engine_on(storage.clone(), &clock).await;
    let spec = ScheduleSpec::new("quick", serde_json::json!(1), Trigger::every(HOUR))
        .overlap(OverlapPolicy::AllowAll)
        .catchup_window(Duration::from_secs(150 * 60));
    engine.create_schedule("s", spec).await.unwrap();
    engine.shutdown().await;

    // Down from 00:00 to 10:30: fires at 01:00 .. 10:00; 08:00, 09:00 and 10:00 are within
    // 2.5 hours of 10:30.
    clock.advance(10 * HOUR + 30 * MINUTE);
    let engine = engine_on(storage, &clock).await;
    let described = wait_for(&engine, "s", |d| d.started == 3).await;
    assert_eq!(described.missed, 7);
    assert_eq!(
        runs(&described),
        vec![
            "s@2030-01-01T08:00:00Z",
            "s@2030-01-01T09:00:00Z",
            "s@2030-01-01T10:00:00Z"
        ]
    );
    assert_eq!(described.next_fires[0], at(&clock, 30 * MINUTE));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_year_of_downtime_on_a_short_interval_is_counted_at_once() {
    let storage = MemoryStorage::new();
    let clock = VirtualClock::default();
    let engine = engine_on(storage.clone(), &clock).await;
    let spec = ScheduleSpec::new(
        "quick",
        serde_json::json!(1),
        Trigger::every(Duration::from_secs(1)),
    )
    .catchup_window(Duration::ZERO);
    engine.create_schedule("s", spec).await.unwrap();
    engine.shutdown().await;
    clock.advance(365 * 24 * HOUR);
    let engine = engine_on(storage, &clock).await;
    // The fire at the moment of the restart runs; the year before it is counted.
    let described = wait_for(&engine, "s", |d| d.started == 1).await;
    assert_eq!(described.missed, 365 * 24 * 3600 - 1);
}

fn utc(s: &str) -> SystemTime {
    SystemTime::from(chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc())
}

/// The schedules `daily` (02:30) and `hourly` (every hour on the hour), both in Berlin.
async fn berlin_schedules(engine: &Engine) {
    let daily = ScheduleSpec::new(
        "quick",
        serde_json::json!(0),
        Trigger::cron_in("30 2 * * *", "Europe/Berlin"),
    );
    engine.create_schedule("daily", daily).await.unwrap();
    let hourly = ScheduleSpec::new(
        "quick",
        serde_json::json!(0),
        Trigger::cron_in("0 * * * *", "Europe/Berlin"),
    );
    engine.create_schedule("hourly", hourly).await.unwrap();
}

/// The hourly fires from one local midnight (inclusive) to the next (exclusive).
async fn hourly_fires_between(engine: &Engine, from: SystemTime, to: SystemTime) -> usize {
    let next = engine
        .describe_schedule("hourly", 40)
        .await
        .unwrap()
        .next_fires;
    let day: Vec<_> = next.iter().filter(|t| **t >= from && **t < to).collect();
    // Always an hour apart in real time, across the change too.
    for pair in day.windows(2) {
        assert_eq!(pair[1].duration_since(*pair[0]).unwrap(), HOUR);
    }
    day.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn berlin_springs_forward() {
    // 2030-03-30T12:00:00Z; on 2030-03-31 Berlin goes from 02:00 CET to 03:00 CEST.
    let clock = VirtualClock::new(UNIX_EPOCH + Duration::from_secs(1_901_102_400));
    let engine = engine_on(MemoryStorage::new(), &clock).await;
    berlin_schedules(&engine).await;
    // 02:30 does not exist that day: the fire runs just after the gap, at 03:00 CEST.
    let daily = [
        "2030-03-31T01:00:00Z",
        "2030-04-01T00:30:00Z",
        "2030-04-02T00:30:00Z",
    ];
    let described = engine.describe_schedule("daily", 3).await.unwrap();
    assert_eq!(described.next_fires, daily.map(utc).to_vec());
    // A 23-hour day: 23 hourly fires between local midnights.
    let fires = hourly_fires_between(
        &engine,
        utc("2030-03-30T23:00:00Z"),
        utc("2030-03-31T22:00:00Z"),
    )
    .await;
    assert_eq!(fires, 23);
    // And the engine fires them at those instants.
    for (n, fire) in daily.iter().enumerate() {
        clock.set(utc(fire));
        wait_for(&engine, "daily", |d| d.started == n as u64 + 1).await;
    }
    let described = engine.describe_schedule("daily", 0).await.unwrap();
    assert_eq!(
        runs(&described),
        daily.map(|t| format!("daily@{t}")).to_vec()
    );
    assert_eq!(described.missed, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn berlin_falls_back() {
    // 2030-10-26T12:00:00Z; on 2030-10-27 Berlin goes from 03:00 CEST back to 02:00 CET.
    let clock = VirtualClock::new(UNIX_EPOCH + Duration::from_secs(1_919_246_400));
    let engine = engine_on(MemoryStorage::new(), &clock).await;
    berlin_schedules(&engine).await;
    // 02:30 happens twice that day: the fire runs once, at the first (CEST).
    let daily = [
        "2030-10-27T00:30:00Z",
        "2030-10-28T01:30:00Z",
        "2030-10-29T01:30:00Z",
    ];
    let described = engine.describe_schedule("daily", 3).await.unwrap();
    assert_eq!(described.next_fires, daily.map(utc).to_vec());
    // A 25-hour day: both 02:00s fire.
    let fires = hourly_fires_between(
        &engine,
        utc("2030-10-26T22:00:00Z"),
        utc("2030-10-27T23:00:00Z"),
    )
    .await;
    assert_eq!(fires, 25);
    // The hourly schedule through the repeated hour on the engine: one run per instant.
    for (n, hour) in ["00", "01", "02"].iter().enumerate() {
        clock.set(utc(&format!("2030-10-27T{hour}:00:00Z")));
        wait_for(&engine, "hourly", |d| d.started == n as u64 + 1).await;
        if n == 0 {
            clock.set(utc(daily[0]));
            wait_for(&engine, "daily", |d| d.started == 1).await;
        }
    }
    let described = engine.describe_schedule("hourly", 0).await.unwrap();
    assert_eq!(
        runs(&described),
        vec![
            "hourly@2030-10-27T00:00:00Z",
            "hourly@2030-10-27T01:00:00Z",
            "hourly@2030-10-27T02:00:00Z"
        ]
    );
    let described = engine.describe_schedule("daily", 1).await.unwrap();
    assert_eq!(runs(&described), vec!["daily@2030-10-27T00:30:00Z"]);
    assert_eq!(described.next_fires, vec![utc(daily[1])]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_resume_trigger_jitter_and_a_run_limit() {
    let clock = VirtualClock::default();
    let engine = engine_on(MemoryStorage::new(), &clock).await;
    let spec = every_minute("quick", OverlapPolicy::Skip)
        .jitter(Duration::from_secs(30))
        .max_runs(3);
    engine.create_schedule("s", spec).await.unwrap();
    assert_eq!(
        engine
            .describe_schedule("s", 10)
            .await
            .unwrap()
            .next_fires
            .len(),
        3
    );

    engine
        .pause_schedule("s", Some("maintenance".into()))
        .await
        .unwrap();
    let described = engine.describe_schedule("s", 3).await.unwrap();
    assert!(described.paused && described.next_fires.is_empty());
    assert_eq!(described.note.as_deref(), Some("maintenance"));
    // Triggered by hand while paused: runs now, and counts toward the limit.
    clock.advance(5 * MINUTE);
    let triggered = engine.trigger_schedule("s").await.unwrap();
    assert_eq!(triggered, "s@2030-01-01T00:05:00Z");
    let described = engine.describe_schedule("s", 3).await.unwrap();
    assert_eq!((described.started, described.missed), (1, 0));
    assert_eq!(described.remaining_runs, Some(2));

    engine
        .resume_schedule("s", Some("done".into()))
        .await
        .unwrap();
    let described = engine.describe_schedule("s", 3).await.unwrap();
    assert_eq!(described.note.as_deref(), Some("done"));
    assert_eq!(
        described.next_fires,
        vec![at(&clock, MINUTE), at(&clock, 2 * MINUTE)]
    );
    // Jitter delays a fire by under 30 s; the run keeps the nominal fire time in its id.
    clock.advance(MINUTE + Duration::from_secs(30));
    let described = wait_for(&engine, "s", |d| d.started == 2).await;
    assert_eq!(runs(&described)[1], "s@2030-01-01T00:06:00Z");
    clock.advance(MINUTE);
    let described = wait_for(&engine, "s", |d| d.started == 3).await;
    // The limit is used up: no more fires, and a trigger is refused.
    assert!(described.next_fires.is_empty());
    assert_eq!(described.remaining_runs, Some(0));
    assert!(matches!(
        engine.trigger_schedule("s").await,
        Err(ScheduleError::Invalid { .. })
    ));
    assert_eq!(
        engine.list_schedules(10, None).await.unwrap().items[0].next_fire,
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_runs_each_fire_in_the_range_once() {
    let clock = VirtualClock::default();
    let engine = engine_on(MemoryStorage::new(), &clock).await;
    engine
        .create_schedule("s", every_minute("quick", OverlapPolicy::Skip))
        .await
        .unwrap();
    let start = at(&clock, Duration::ZERO);
    let ids = engine
        .backfill_schedule("s", start - 3 * MINUTE, start)
        .await
        .unwrap();
    assert_eq!(
        ids,
        vec![
            "s@2029-12-31T23:57:00Z",
            "s@2029-12-31T23:58:00Z",
            "s@2029-12-31T23:59:00Z"
        ]
    );
    // Again: the same runs, none started twice.
    let again = engine
        .backfill_schedule("s", start - 3 * MINUTE, start)
        .await
        .unwrap();
    assert_eq!(again, ids);
    assert_eq!(engine.describe_schedule("s", 0).await.unwrap().started, 3);
    assert!(matches!(
        engine.backfill_schedule("s", start, start).await,
        Err(ScheduleError::Invalid { .. })
    ));
    for id in &ids {
        assert_eq!(engine.handle::<quick>(id).result().await.unwrap(), Ok(8));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_from_the_unix_epoch_includes_a_fire_at_the_epoch() {
    let clock = VirtualClock::default();
    let engine = engine_on(MemoryStorage::new(), &clock).await;
    // An interval counted from 0, and a cron expression that matches 1970-01-01T00:00Z.
    engine
        .create_schedule("i", every_minute("quick", OverlapPolicy::AllowAll))
        .await
        .unwrap();
    engine
        .create_schedule(
            "c",
            ScheduleSpec::new("quick", serde_json::json!(7), Trigger::cron("0 * * * *"))
                .overlap(OverlapPolicy::AllowAll),
        )
        .await
        .unwrap();
    let epoch = UNIX_EPOCH;
    let ids = engine
        .backfill_schedule("i", epoch, epoch + 2 * MINUTE)
        .await
        .unwrap();
    assert_eq!(ids, ["i@1970-01-01T00:00:00Z", "i@1970-01-01T00:01:00Z"]);
    let ids = engine
        .backfill_schedule("c", epoch, epoch + Duration::from_secs(7200))
        .await
        .unwrap();
    assert_eq!(ids, ["c@1970-01-01T00:00:00Z", "c@1970-01-01T01:00:00Z"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_specs_are_refused_with_the_reason() {
    let clock = VirtualClock::default();
    let engine = engine_on(MemoryStorage::new(), &clock).await;
    let bad = [
        ScheduleSpec::new("quick", serde_json::json!(1), Trigger::cron("* * *")),
        ScheduleSpec::new(
            "quick",
            serde_json::json!(1),
            Trigger::cron_in("0 * * * *", "Nowhere/City"),
        ),
        ScheduleSpec::new("nope", serde_json::json!(1), Trigger::every(MINUTE)),
        ScheduleSpec::new(
            "quick",
            serde_json::json!("not a number"),
            Trigger::every(MINUTE),
        ),
        ScheduleSpec::new(
            "quick",
            serde_json::json!(1),
            Trigger::every(Duration::ZERO),
        ),
    ];
    for spec in bad {
        assert!(
            matches!(
                engine.create_schedule("s", spec.clone()).await,
                Err(ScheduleError::Invalid { .. })
            ),
            "{spec:?} was accepted"
        );
    }
    assert!(
        engine
            .list_schedules(10, None)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(matches!(
        engine.describe_schedule("s", 1).await,
        Err(ScheduleError::NotFound { .. })
    ));
    engine
        .create_schedule("s", every_minute("quick", OverlapPolicy::Skip))
        .await
        .unwrap();
    engine.delete_schedule("s").await.unwrap();
    assert!(matches!(
        engine.delete_schedule("s").await,
        Err(ScheduleError::NotFound { .. })
    ));
    // A deleted schedule leaves no index entry behind.
    clock.advance(MINUTE);
    assert!(engine.describe("s@2030-01-01T00:01:00Z").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposed_engine_does_not_fire() {
    let storage = MemoryStorage::new();
    let clock = VirtualClock::default();
    let old = engine_on(storage.clone(), &clock).await;
    old.create_schedule("s", every_minute("quick", OverlapPolicy::AllowAll))
        .await
        .unwrap();
    let new = engine_on(storage.clone(), &clock).await;
    clock.advance(MINUTE);
    wait_for(&new, "s", |d| d.started == 1).await;
    assert!(
        old.is_fenced()
            || old
                .create_schedule("t", every_minute("quick", OverlapPolicy::Skip))
                .await
                .is_err()
    );
    assert_eq!(
        storage.scan_prefix(b"wf/\0\0s@", None, 10).unwrap().len(),
        1
    );
}

/// A storage that crashes (refuses every write) once it has taken `left` writes.
#[derive(Clone)]
struct Budget {
    inner: MemoryStorage,
    left: Arc<AtomicU64>,
    crashed: Arc<AtomicBool>,
}

impl Storage for Budget {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.inner.get(key)
    }
    fn scan(
        &self,
        start: std::ops::Bound<&[u8]>,
        end: std::ops::Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StorageError> {
        self.inner.scan(start, end, limit)
    }
    fn apply_if(&self, conditions: &[Condition], batch: &Batch) -> Result<(), StorageError> {
        if self
            .left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_err()
        {
            self.crashed.store(true, Ordering::SeqCst);
            return Err(StorageError::backend("crashed"));
        }
        self.inner.apply_if(conditions, batch)
    }
}

/// The engine dies at each write in turn, from creating the schedule through its first fire,
/// and a new engine takes over on the same store: every run of the schedule exists exactly
/// once, and the schedule records each one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_every_write_of_a_fire_starts_each_run_once() {
    let spec = every_minute("quick", OverlapPolicy::AllowAll);
    let mut crash_after = 1; // the first write is the engine's epoch claim
    loop {
        let memory = MemoryStorage::new();
        let clock = VirtualClock::default();
        let budget = Budget {
            inner: memory.clone(),
            left: Arc::new(AtomicU64::new(crash_after)),
            crashed: Arc::new(AtomicBool::new(false)),
        };
        let engine = engine_on(budget.clone(), &clock).await;
        if engine.create_schedule("s", spec.clone()).await.is_ok() {
            clock.advance(MINUTE);
            for _ in 0..5_000 {
                if budget.crashed.load(Ordering::SeqCst)
                    || engine.describe_schedule("s", 0).await.unwrap().started == 1
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        let crashed = budget.crashed.load(Ordering::SeqCst);
        drop(engine);

        // A new engine on what the store holds.
        let engine = engine_on(memory.clone(), &clock).await;
        if matches!(
            engine.describe_schedule("s", 0).await,
            Err(ScheduleError::NotFound { .. })
        ) {
            // The create never landed: the client creates it again, and waits for a fire.
            engine.create_schedule("s", spec.clone()).await.unwrap();
            clock.advance(MINUTE);
        }
        let described = wait_for(&engine, "s", |d| d.started == 1).await;
        let runs_stored = memory.scan_prefix(b"wf/\0\0s@", None, 10).unwrap();
        assert_eq!(runs_stored.len(), 1, "crash after {crash_after}");
        assert_eq!(
            runs_stored[0].0,
            weft_runtime::engine::record::workflow_key(
                weft_runtime::engine::record::Partition::ZERO,
                &runs(&described)[0]
            ),
            "crash after {crash_after}"
        );
        // And it keeps firing once per fire.
        clock.advance(MINUTE);
        wait_for(&engine, "s", |d| d.started == 2).await;
        assert_eq!(memory.scan_prefix(b"wf/\0\0s@", None, 10).unwrap().len(), 2);
        engine.shutdown().await;
        if !crashed {
            // Four writes: the epoch claim, the create, the fire's start and its record write;
            // the runs before crashed at each of the last three.
            assert_eq!(crash_after, 4);
            break;
        }
        crash_after += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_are_listed_a_page_at_a_time_in_id_order() {
    let clock = VirtualClock::default();
    let engine = engine_on(MemoryStorage::new(), &clock).await;
    for id in ["c", "a", "e", "b", "d"] {
        engine
            .create_schedule(id, every_minute("quick", OverlapPolicy::Skip))
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = engine.list_schedules(2, token.as_deref()).await.unwrap();
        assert!(page.items.len() <= 2);
        pages += 1;
        seen.extend(page.items.into_iter().map(|s| s.id));
        match page.next_page_token {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, ["a", "b", "c", "d", "e"]);
    assert_eq!(pages, 3);
    let after_b = engine.list_schedules(10, Some("b")).await.unwrap();
    let ids: Vec<_> = after_b.items.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["c", "d", "e"]);
    assert_eq!(after_b.next_page_token, None);
    assert!(matches!(
        engine.list_schedules(10, Some("")).await,
        Err(ScheduleError::Engine(
            weft_runtime::EngineError::InvalidPageToken
        ))
    ));
}
