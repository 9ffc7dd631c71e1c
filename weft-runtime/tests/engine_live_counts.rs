//! The live counters (`lcnt/`): counting unfinished workflows by status and type reads
//! counters the writer keeps in the same batch as each status change, and they stay equal to
//! what the records say across starts, waits, activities, finishes, cancels, parks (in the
//! first step and later), retries, purges, a crash (a second engine deposing the first
//! mid-activity) and restarts, and are counted afresh at the first build on a store from
//! before them.

mod engine_support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use engine_support::{dump, wait_status};
use serde::{Deserialize, Serialize};
use weft_runtime::engine::record;
use weft_runtime::engine::{GroupBy, ListFilter, WorkflowStatus};
use weft_runtime::storage::{Batch, MemoryStorage, Storage};
use weft_runtime::{
    ActivityError, Engine, Signal, StartOptions, WorkflowContext, WorkflowError, activity, workflow,
};

/// While set, `hold` does not return: its workflow stays running.
static HOLD: AtomicBool = AtomicBool::new(false);
/// While set, `brittle` panics after its signal and `fragile` in its first step.
static BREAK: AtomicBool = AtomicBool::new(false);

/// Lets a workflow go on.
#[derive(Debug, Clone, Serialize, Deserialize, Signal)]
struct Go {
    n: u32,
}

/// Returns `n + 1` once `HOLD` is clear.
#[activity]
async fn hold(n: u32) -> Result<u32, ActivityError> {
    while HOLD.load(Ordering::SeqCst) {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    Ok(n + 1)
}

/// Waits for `Go`, runs `hold`, waits for `Go` again: waiting, running, waiting, completed.
#[workflow]
async fn job(ctx: &mut WorkflowContext, n: u32) -> Result<u32, WorkflowError> {
    let first = ctx.wait_for_signal::<Go>().await;
    let held = ctx.run(hold, n + first.n).await?;
    let second = ctx.wait_for_signal::<Go>().await;
    Ok(held + second.n)
}

/// Waits for `Go`, then panics (and so parks) while `BREAK` is set.
#[workflow]
async fn brittle(ctx: &mut WorkflowContext, n: u32) -> Result<u32, WorkflowError> {
    let go = ctx.wait_for_signal::<Go>().await;
    if BREAK.load(Ordering::SeqCst) {
        panic!("brittle is broken");
    }
    Ok(n + go.n)
}

/// Panics in its first step (and so parks as it is created) while `BREAK` is set.
#[workflow]
async fn fragile(_ctx: &mut WorkflowContext, n: u32) -> Result<u32, WorkflowError> {
    if BREAK.load(Ordering::SeqCst) {
        panic!("fragile is broken");
    }
    Ok(n)
}

async fn build(storage: &MemoryStorage) -> Engine {
    Engine::builder(storage.clone())
        .register::<job>()
        .register::<brittle>()
        .register::<fragile>()
        .build()
        .await
        .unwrap()
}

async fn start<W: weft_runtime::Workflow<Input = u32>>(engine: &Engine, id: &str) {
    let options = StartOptions {
        id: Some(id.to_string()),
        ..StartOptions::default()
    };
    engine.start_with::<W>(0, options).await.unwrap();
}

/// Waits (ten seconds at most) until workflow `id` has `status` at `step` or later.
async fn wait_step(engine: &Engine, id: &str, status: WorkflowStatus, step: u64) {
    for _ in 0..10_000 {
        let d = engine.describe(id).await.unwrap();
        if d.status == status && d.step >= step {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    panic!("workflow {id} never reached {status:?} at step {step}");
}

/// Every workflow's status and type as listing reads them from the records.
async fn from_records(engine: &Engine) -> (BTreeMap<String, u64>, BTreeMap<String, u64>) {
    let (mut by_status, mut by_type) = (BTreeMap::new(), BTreeMap::new());
    let mut token: Option<String> = None;
    loop {
        let page = engine
            .list(&ListFilter::default(), 100, token.as_deref())
            .await
            .unwrap();
        for item in page.items {
            *by_status.entry(format!("{:?}", item.status)).or_default() += 1;
            *by_type.entry(item.workflow_type).or_default() += 1;
        }
        match page.next_page_token {
            Some(next) => token = Some(next),
            None => return (by_status, by_type),
        }
    }
}

async fn counted(engine: &Engine, filter: &ListFilter, by: GroupBy) -> BTreeMap<String, u64> {
    engine
        .count(filter, by)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

/// Asserts the counts (read from the counters) agree with the records, and that the unfinished
/// ones are `expected`; `what` names the moment.
async fn check(engine: &Engine, what: &str, expected: &[(&str, u64)]) {
    let all = ListFilter::default();
    let (by_status, by_type) = from_records(engine).await;
    assert_eq!(
        counted(engine, &all, GroupBy::Status).await,
        by_status,
        "{what}: by status"
    );
    assert_eq!(
        counted(engine, &all, GroupBy::Type).await,
        by_type,
        "{what}: by type"
    );
    for status in [
        WorkflowStatus::Running,
        WorkflowStatus::Waiting,
        WorkflowStatus::Parked,
    ] {
        let name = format!("{status:?}");
        let want = expected
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0, |(_, n)| *n);
        let one = ListFilter {
            status: Some(status),
            ..ListFilter::default()
        };
        let got = counted(engine, &one, GroupBy::Status).await;
        assert_eq!(
            got.get(&name).copied().unwrap_or(0),
            want,
            "{what}: {name} ({got:?})"
        );
        assert_eq!(
            by_status.get(&name).copied().unwrap_or(0),
            want,
            "{what}: {name} in the records"
        );
    }
}

/// The stored live counters, by key.
fn live_counters(storage: &MemoryStorage) -> BTreeMap<Vec<u8>, Vec<u8>> {
    dump(storage)
        .into_iter()
        .filter(|(key, _)| key.starts_with(record::LIVE_COUNTER_PREFIX))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_of_unfinished_workflows_stay_exact_through_every_kind_of_change() {
    let storage = MemoryStorage::new();
    let engine = build(&storage).await;
    for i in 0..5 {
        start::<job>(&engine, &format!("job-{i}")).await;
    }
    for i in 0..5 {
        wait_status(&engine, &format!("job-{i}"), WorkflowStatus::Waiting).await;
    }
    check(&engine, "started", &[("Waiting", 5)]).await;

    // Running while the activity is held, waiting again once it returns.
    HOLD.store(true, Ordering::SeqCst);
    for i in 0..2 {
        engine
            .signal(&format!("job-{i}"), Go { n: 1 })
            .await
            .unwrap();
    }
    for i in 0..2 {
        wait_status(&engine, &format!("job-{i}"), WorkflowStatus::Running).await;
    }
    check(&engine, "two running", &[("Running", 2), ("Waiting", 3)]).await;
    HOLD.store(false, Ordering::SeqCst);
    for i in 0..2 {
        wait_step(&engine, &format!("job-{i}"), WorkflowStatus::Waiting, 2).await;
    }
    check(&engine, "back to waiting", &[("Waiting", 5)]).await;

    // Finished, and cancelled.
    engine.signal("job-0", Go { n: 1 }).await.unwrap();
    wait_status(&engine, "job-0", WorkflowStatus::Completed).await;
    engine.cancel("job-4").await.unwrap();
    wait_status(&engine, "job-4", WorkflowStatus::Cancelled).await;
    check(&engine, "finished and cancelled", &[("Waiting", 3)]).await;

    // Parked by the first step (the record is created parked) and by a later one.
    BREAK.store(true, Ordering::SeqCst);
    start::<fragile>(&engine, "fragile-0").await;
    wait_status(&engine, "fragile-0", WorkflowStatus::Parked).await;
    start::<brittle>(&engine, "brittle-0").await;
    start::<brittle>(&engine, "brittle-1").await;
    wait_status(&engine, "brittle-0", WorkflowStatus::Waiting).await;
    wait_status(&engine, "brittle-1", WorkflowStatus::Waiting).await;
    engine.signal("brittle-0", Go { n: 1 }).await.unwrap();
    wait_status(&engine, "brittle-0", WorkflowStatus::Parked).await;
    check(&engine, "parked", &[("Parked", 2), ("Waiting", 4)]).await;

    // Retried: both finish.
    BREAK.store(false, Ordering::SeqCst);
    engine.retry("fragile-0").await.unwrap();
    engine.retry("brittle-0").await.unwrap();
    wait_status(&engine, "fragile-0", WorkflowStatus::Completed).await;
    wait_status(&engine, "brittle-0", WorkflowStatus::Completed).await;
    check(&engine, "retried", &[("Waiting", 4)]).await;

    // Purged: out of the finished counts, the unfinished ones untouched.
    engine.purge("job-0").await.unwrap();
    engine.purge("fragile-0").await.unwrap();
    check(&engine, "purged", &[("Waiting", 4)]).await;

    // A crash mid-activity: a second engine takes the store over (the first is fenced, its
    // activity's commit refused) and runs the workflow again from its record.
    HOLD.store(true, Ordering::SeqCst);
    engine.signal("job-2", Go { n: 1 }).await.unwrap();
    wait_status(&engine, "job-2", WorkflowStatus::Running).await;
    let deposed = engine;
    let engine = build(&storage).await;
    check(&engine, "taken over", &[("Running", 1), ("Waiting", 3)]).await;
    HOLD.store(false, Ordering::SeqCst);
    wait_step(&engine, "job-2", WorkflowStatus::Waiting, 2).await;
    check(&engine, "after the crash", &[("Waiting", 4)]).await;
    drop(deposed);

    // A restart.
    engine.shutdown().await;
    let engine = build(&storage).await;
    check(&engine, "restarted", &[("Waiting", 4)]).await;

    // A workflow whose type is no longer registered counts as parked, as listing shows it.
    engine.shutdown().await;
    let without_brittle = Engine::builder(storage.clone())
        .register::<job>()
        .register::<fragile>()
        .build()
        .await
        .unwrap();
    check(
        &without_brittle,
        "brittle not registered",
        &[("Parked", 1), ("Waiting", 3)],
    )
    .await;
    without_brittle.shutdown().await;

    // Every change wrote each counter once, as a plain value: the stored counters are what a
    // backfill counts from the records.
    let kept = live_counters(&storage);
    let mut strip = Batch::new();
    for key in kept.keys() {
        strip.delete(key.clone());
    }
    strip.delete(record::LIVE_COUNTERS_KEY.to_vec());
    storage.apply(strip).unwrap();
    let engine = build(&storage).await;
    assert_eq!(
        live_counters(&storage),
        kept,
        "the backfill counts the same"
    );
    assert_eq!(
        storage.get(record::LIVE_COUNTERS_KEY).unwrap(),
        Some(record::LIVE_COUNTERS_V1.to_vec())
    );
    check(&engine, "backfilled", &[("Waiting", 4)]).await;
    for id in ["job-1", "job-2", "job-3", "brittle-1"] {
        engine.signal(id, Go { n: 1 }).await.unwrap();
    }
    for id in ["job-1", "job-2", "brittle-1"] {
        wait_status(&engine, id, WorkflowStatus::Completed).await;
    }
    wait_step(&engine, "job-3", WorkflowStatus::Waiting, 2).await;
    check(&engine, "after the backfill", &[("Waiting", 1)]).await;
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_from_before_the_live_counters_is_counted_afresh_at_build() {
    let storage = MemoryStorage::new();
    let engine = build(&storage).await;
    for i in 0..3 {
        start::<job>(&engine, &format!("w-{i}")).await;
    }
    for i in 0..3 {
        wait_status(&engine, &format!("w-{i}"), WorkflowStatus::Waiting).await;
    }
    engine.shutdown().await;
    // What a store from before the counters holds: no `lcnt/`, no marker, but a stale counter
    // a hand (or a half-applied older tool) left, which the backfill must not add to.
    let mut strip = Batch::new();
    for key in live_counters(&storage).keys() {
        strip.delete(key.clone());
    }
    strip.delete(record::LIVE_COUNTERS_KEY.to_vec());
    strip.put(
        record::live_counter_key("Waiting", "job", 1, 7),
        record::encode_counter(40),
    );
    storage.apply(strip).unwrap();
    let engine = build(&storage).await;
    let counts = counted(&engine, &ListFilter::default(), GroupBy::Status).await;
    assert_eq!(counts, BTreeMap::from([("Waiting".to_string(), 3)]));
    assert_eq!(
        live_counters(&storage).len(),
        1,
        "one counter: waiting jobs"
    );
    engine.shutdown().await;
}
