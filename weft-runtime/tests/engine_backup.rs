//! Backup and restore rehearsal: a load of workflows (activities, timers, signals) runs, a
//! backup is taken mid-way and the load keeps going; the backup restored into a new store and a
//! new engine resumes every workflow it held to the right result, and an activity that was in
//! flight when it was taken runs again, as after a crash.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use weft_runtime::engine::{Pending, VirtualClock, WorkflowStatus};
use weft_runtime::storage::{
    BackupError, MemoryStorage, RedbStorage, RestoreOptions, STORE_FORMAT_VERSION, restore,
};
use weft_runtime::{
    ActivityContext, ActivityError, Engine, EngineError, ErrorKind, Resources, Signal,
    WorkflowContext, WorkflowError, activity, workflow,
};

/// Holds the activities of workflows `n % 4 == 0` until opened, and logs every call.
struct Gate {
    open: tokio::sync::watch::Sender<bool>,
    calls: Mutex<Vec<u64>>,
}

impl Gate {
    fn new(open: bool) -> Arc<Self> {
        Arc::new(Gate {
            open: tokio::sync::watch::Sender::new(open),
            calls: Mutex::new(Vec::new()),
        })
    }

    fn calls(&self) -> Vec<u64> {
        let mut calls = self.calls.lock().unwrap().clone();
        calls.sort_unstable();
        calls
    }
}

#[activity]
async fn compute(ctx: ActivityContext, n: u64) -> Result<u64, ActivityError> {
    let gate = ctx.resource::<Arc<Gate>>().expect("the gate is registered");
    gate.calls.lock().unwrap().push(n);
    if n.is_multiple_of(4) {
        let mut open = gate.open.subscribe();
        let _ = open.wait_for(|open| *open).await;
    }
    Ok(2 * n)
}

#[activity]
async fn add(pair: (u64, u64)) -> Result<u64, ActivityError> {
    Ok(pair.0 + pair.1)
}

#[derive(Debug, Clone, Serialize, Deserialize, Signal)]
struct Bump {
    by: u64,
}

/// An activity, a timer (an hour long for `n % 4 == 3`, a second for the rest), a signal,
/// another activity: `3n + 100` once signalled with `n + 100`.
#[workflow]
async fn rehearsal(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    let doubled = ctx.run(compute, n).await?;
    let wait: u64 = if n % 4 == 3 { 3600 } else { 1 };
    ctx.sleep(Duration::from_secs(wait)).await;
    let bump = ctx.wait_for_signal::<Bump>().await;
    let total = ctx.run(add, (doubled, bump.by)).await?;
    Ok(total)
}

const LOAD: u64 = 40;

fn id(n: u64) -> String {
    format!("w-{n}")
}

async fn engine(storage: RedbStorage, clock: &Arc<VirtualClock>, gate: &Arc<Gate>) -> Engine {
    Engine::builder(storage)
        .register::<rehearsal>()
        .clock(Arc::clone(clock) as _)
        .resources(Resources::new().with(Arc::clone(gate)))
        .build()
        .await
        .unwrap()
}

/// Waits (bounded) until `check` holds for workflow `id`'s description.
async fn wait_for(
    engine: &Engine,
    id: &str,
    check: impl Fn(&weft_runtime::engine::WorkflowDescription) -> bool,
) {
    for _ in 0..20_000 {
        if check(&engine.describe(id).await.unwrap()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!(
        "workflow {id} never got there: {:?}",
        engine.describe(id).await
    );
}

/// Moves the clock on a minute at a time until workflow `id` waits for its signal, so the test
/// does not depend on when each timer was armed.
async fn until_signalled(engine: &Engine, clock: &VirtualClock, id: &str) {
    for _ in 0..20_000 {
        if pending_signal(&engine.describe(id).await.unwrap()) {
            return;
        }
        clock.advance(Duration::from_secs(60));
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!(
        "workflow {id} never waited for its signal: {:?}",
        engine.describe(id).await
    );
}

fn pending_timer(d: &weft_runtime::engine::WorkflowDescription) -> bool {
    matches!(d.pending, Some(Pending::Timer { .. }))
}

fn pending_signal(d: &weft_runtime::engine::WorkflowDescription) -> bool {
    matches!(d.pending, Some(Pending::Signal { .. }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_load_restores_and_resumes_every_workflow_it_held() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(VirtualClock::default());
    let gate = Gate::new(false);
    let live = engine(
        RedbStorage::create(dir.path().join("live.redb")).unwrap(),
        &clock,
        &gate,
    )
    .await;

    // The load: at the backup, n % 4 == 0 are inside `compute`, 1 wait for their signal,
    // 2 have finished, 3 sleep on an hour-long timer.
    for n in 0..LOAD {
        live.start_with::<rehearsal>(
            n,
            weft_runtime::engine::StartOptions {
                id: Some(id(n)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    }
    for n in 0..LOAD {
        if n % 4 != 0 {
            wait_for(&live, &id(n), pending_timer).await;
        }
    }
    clock.advance(Duration::from_secs(10));
    for n in (0..LOAD).filter(|n| matches!(n % 4, 1 | 2)) {
        wait_for(&live, &id(n), pending_signal).await;
    }
    for n in (0..LOAD).filter(|n| n % 4 == 2) {
        live.signal(&id(n), Bump { by: n + 100 }).await.unwrap();
        let result = live.handle::<rehearsal>(&id(n)).result().await.unwrap();
        assert_eq!(result.unwrap(), 3 * n + 100);
    }
    let in_flight: Vec<u64> = (0..LOAD).filter(|n| n.is_multiple_of(4)).collect();
    assert_eq!(
        gate.calls().iter().filter(|n| n.is_multiple_of(4)).count(),
        in_flight.len()
    );

    let backup = dir.path().join("backup.redb");
    let report = live.backup(&backup).await.unwrap();
    assert_eq!(report.manifest.meta.format_version, STORE_FORMAT_VERSION);
    assert!(report.manifest.meta.owner_epoch.is_some());
    assert!(report.manifest.entries > LOAD);
    // A second backup to the same path is refused, and the first one is kept.
    let again = live.backup(&backup).await.unwrap_err();
    assert!(
        matches!(again, EngineError::Backup(BackupError::Exists { .. })),
        "{again}"
    );
    assert_eq!(again.kind(), ErrorKind::Conflict);

    // The live engine keeps going: new work, and everything finishes there.
    for n in LOAD..LOAD + 8 {
        live.start_with::<rehearsal>(
            n + 1000,
            weft_runtime::engine::StartOptions {
                id: Some(id(n)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    }
    gate.open.send_replace(true);
    for n in 0..LOAD + 8 {
        if n % 4 == 2 && n < LOAD {
            continue;
        }
        let input = if n < LOAD { n } else { n + 1000 };
        until_signalled(&live, &clock, &id(n)).await;
        live.signal(&id(n), Bump { by: input + 100 }).await.unwrap();
        let result = live.handle::<rehearsal>(&id(n)).result().await.unwrap();
        assert_eq!(result.unwrap(), 3 * input + 100);
    }
    live.shutdown().await;

    // Disaster: the live store is gone. Restore the backup into a new store and engine.
    std::fs::remove_file(dir.path().join("live.redb")).unwrap();
    let target = dir.path().join("restored.redb");
    let manifest = restore(&backup, &target, RestoreOptions::default()).unwrap();
    assert_eq!(manifest, report.manifest);
    let clock = Arc::new(VirtualClock::default());
    clock.advance(Duration::from_secs(10));
    let gate = Gate::new(true);
    let restored = engine(RedbStorage::open(&target).unwrap(), &clock, &gate).await;

    // What was started after the backup is not in it.
    for n in LOAD..LOAD + 8 {
        let missing = restored.describe(&id(n)).await.unwrap_err();
        assert!(matches!(missing, EngineError::NotFound { .. }), "{missing}");
    }
    // What had finished is there, finished, with its result.
    for n in (0..LOAD).filter(|n| n % 4 == 2) {
        let d = restored.describe(&id(n)).await.unwrap();
        assert_eq!(d.status, WorkflowStatus::Completed);
        let result = restored.handle::<rehearsal>(&id(n)).result().await.unwrap();
        assert_eq!(result.unwrap(), 3 * n + 100);
    }
    // Every other workflow resumes where the backup left it.
    for n in (0..LOAD).filter(|n| n % 4 != 2) {
        until_signalled(&restored, &clock, &id(n)).await;
        restored.signal(&id(n), Bump { by: n + 100 }).await.unwrap();
        let result = restored.handle::<rehearsal>(&id(n)).result().await.unwrap();
        assert_eq!(result.unwrap(), 3 * n + 100, "workflow {n}");
    }
    // Exactly the activities in flight at the backup ran again; finished ones did not.
    assert_eq!(gate.calls(), in_flight);
    restored.shutdown().await;
}

#[tokio::test(flavor = "current_thread")]
async fn an_engine_on_a_memory_store_backs_up_and_a_stopped_engine_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(VirtualClock::default());
    let gate = Gate::new(true);
    let engine = Engine::builder(MemoryStorage::new())
        .register::<rehearsal>()
        .clock(Arc::clone(&clock) as _)
        .resources(Resources::new().with(Arc::clone(&gate)))
        .build()
        .await
        .unwrap();
    engine.start::<rehearsal>(1).await.unwrap();
    let report = engine.backup(dir.path().join("b.redb")).await.unwrap();
    assert!(report.manifest.entries > 0);
    assert!(report.path.exists());

    let stopped = engine.clone();
    engine.shutdown().await;
    let error = stopped.backup(dir.path().join("c.redb")).await.unwrap_err();
    assert!(matches!(error, EngineError::Shutdown), "{error}");
    assert!(!dir.path().join("c.redb").exists());
}
