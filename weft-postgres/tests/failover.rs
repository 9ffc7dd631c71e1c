//! A database restart under load: the PostgreSQL server stops while workflows are running (a
//! fast shutdown, as an operator's restart does, then, in a second run, an immediate one, as a
//! crash or a failover does), and starts again. While it is down,
//! calls fail with a storage error of kind `unavailable` and the engine holds what it
//! acknowledged; once it is back, the same engine (no rebuild) finishes every workflow with the
//! right result.
//!
//! The last step of every workflow waits for a gate that opens only once the server is down:
//! whatever the machine's speed, every workflow has an activity finish during the outage, whose
//! commit fails and is held, and a step left to run after it.
//!
//! It restarts the server that `.ci/postgres start` runs (with `.ci/postgres down` and `up`), so
//! it needs that cluster, not only `WEFT_TEST_POSTGRES` (see `support`). It is the only test in
//! this file: the other test binaries never run while it has the server down.

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use support::{DropSchema, available, fresh_schema, options};
use tokio::sync::watch;
use weft_postgres::PostgresStorage;
use weft_runtime::{ActivityError, WorkflowContext, WorkflowError, activity, workflow};
use weft_runtime::{Engine, EngineError, ErrorKind};

/// Workflows running when the server stops.
const WORKFLOWS: u64 = 120;
/// Steps per workflow.
const STEPS: u64 = 60;
/// How long the engine gets to notice the outage, and to finish after it.
const PATIENCE: Duration = Duration::from_secs(120);

/// What a step's activity was given.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Step {
    workflow: u64,
    n: u64,
}

/// How many times each (workflow, step) activity ran: its side effect.
static RAN: Mutex<BTreeMap<(u64, u64), u32>> = Mutex::new(BTreeMap::new());
/// Opens once the server is down: the last step of every workflow waits for it, so every
/// workflow is still running at the outage however fast the rest went, and finishes that
/// step's activity while the server is down.
static GATE: OnceLock<watch::Sender<bool>> = OnceLock::new();

fn gate() -> &'static watch::Sender<bool> {
    GATE.get_or_init(|| watch::channel(false).0)
}

#[activity]
async fn step(input: Step) -> Result<u64, ActivityError> {
    *RAN.lock()
        .unwrap()
        .entry((input.workflow, input.n))
        .or_default() += 1;
    if input.n + 1 == STEPS {
        let mut open = gate().subscribe();
        let _ = open.wait_for(|open| *open).await;
    }
    Ok(input.n + 1)
}

/// `STEPS` steps with a short timer halfway; returns a value only the right run gives.
#[workflow]
async fn chain(ctx: &mut WorkflowContext, workflow: u64) -> Result<u64, WorkflowError> {
    let mut n: u64 = 0;
    while n < STEPS {
        if n == STEPS / 2 {
            ctx.sleep(Duration::from_millis(20)).await;
        }
        n = ctx.run(step, Step { workflow, n }).await?;
    }
    Ok(workflow * 1000 + n)
}

/// The `.ci/postgres` script, and the cluster directory it manages.
fn script() -> (PathBuf, PathBuf) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.ci/postgres");
    let dir = std::env::var_os("WEFT_PG_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/weft-postgres"));
    (script, dir)
}

/// Runs `.ci/postgres down` or `up`, waiting until the server has stopped or accepts
/// connections (pg_ctl's `-w`).
async fn server(action: &'static str) {
    let (script, _) = script();
    let status = tokio::task::spawn_blocking(move || {
        std::process::Command::new(script)
            .arg(action)
            .stdin(std::process::Stdio::null())
            .status()
    })
    .await
    .unwrap()
    .expect("run .ci/postgres");
    assert!(status.success(), ".ci/postgres {action} failed: {status}");
}

/// Starts the server again if the test stops half-way, so the tests after it have one.
struct BringBack(AtomicBool);

impl Drop for BringBack {
    fn drop(&mut self) {
        if self.0.load(Ordering::SeqCst) {
            let (script, _) = script();
            let _ = std::process::Command::new(script).arg("up").status();
        }
    }
}

/// Polls `condition` until it holds; fails after [`PATIENCE`].
async fn until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn assert_unavailable(error: &EngineError, call: &str) {
    assert!(
        matches!(error, EngineError::Storage(_)),
        "{call} while the database is down: {error:?}"
    );
    assert_eq!(error.kind(), ErrorKind::Unavailable, "{call}: {error}");
    assert_eq!(error.code(), "storage.backend", "{call}: {error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_restart_under_load_loses_nothing_and_the_same_engine_finishes_every_workflow() {
    if !available() {
        return;
    }
    let (_, dir) = script();
    if !dir.join("data/postmaster.pid").exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "no cluster of .ci/postgres in {}: this test restarts it",
            dir.display()
        );
        eprintln!(
            "skipped: this test restarts the server of `.ci/postgres start` and found none in {}",
            dir.display()
        );
        return;
    }
    // One after the other (never at once: each stops the one server): an operator's restart
    // (a fast shutdown, which lets commits in progress finish or roll back), then a crash (an
    // immediate shutdown, which cuts them off, so a commit's outcome can be unknown to the
    // engine, which reads it back or commits it again).
    restart_under_load("down", 0).await;
    restart_under_load("crash", 1_000_000).await;
}

/// The scenario, with the server stopped by `.ci/postgres <stop>`; workflows are numbered from
/// `base`, so the two runs' side effects are told apart.
async fn restart_under_load(stop: &'static str, base: u64) {
    gate().send_replace(false);
    let schema = fresh_schema();
    let _drop = DropSchema(schema.clone());
    let storage = PostgresStorage::connect(options(&schema)).await.unwrap();
    let engine = Engine::builder(storage)
        .register::<chain>()
        .build()
        .await
        .unwrap();

    let mut acknowledged = Vec::new();
    for w in base..base + WORKFLOWS {
        acknowledged.push((w, engine.start::<chain>(w).await.unwrap()));
    }
    // Under load: a tenth of the steps are committed, the rest still to run.
    let total = WORKFLOWS * (STEPS + 1);
    until("a tenth of the steps are committed", || {
        engine.stats().transitions >= total / 10
    })
    .await;

    let bring_back = BringBack(AtomicBool::new(true));
    server(stop).await;
    let down_at = Instant::now();
    let committed_before = engine.stats().transitions;
    gate().send_replace(true);

    // The engine notices when a step's commit fails, and holds it to commit again.
    until("the engine holds a failed commit", || {
        engine.storage_fault().is_some()
    })
    .await;
    assert!(engine.transitions_awaiting_storage() > 0);
    // New calls are refused at once with a retryable error, not left hanging.
    let refused = tokio::time::timeout(Duration::from_secs(10), engine.start::<chain>(base + 9999))
        .await
        .expect("a start while the database is down answers without waiting for it")
        .unwrap_err();
    assert_unavailable(&refused, "start");
    let (_, first) = &acknowledged[0];
    let unreadable = tokio::time::timeout(Duration::from_secs(10), engine.describe(first.id()))
        .await
        .expect("a describe while the database is down answers without waiting for it")
        .unwrap_err();
    assert_unavailable(&unreadable, "describe");
    // It keeps trying, backing off, for as long as the database is down.
    let failed = engine.stats().failed_batches;
    until("the held commit has failed a few more times", || {
        engine.stats().failed_batches >= failed + 4
    })
    .await;
    assert_eq!(
        engine.stats().transitions,
        committed_before,
        "nothing commits while the database is down"
    );

    server("up").await;
    bring_back.0.store(false, Ordering::SeqCst);
    let up_at = Instant::now();

    // The same engine, never rebuilt: every acknowledged workflow finishes with its result.
    for (w, handle) in &acknowledged {
        let result = tokio::time::timeout(PATIENCE, handle.result())
            .await
            .unwrap_or_else(|_| panic!("workflow {w} did not finish after the restart"))
            .unwrap();
        assert_eq!(result, Ok(w * 1000 + STEPS), "workflow {w}");
    }
    let (outage, finished_in) = (up_at - down_at, up_at.elapsed());
    assert_eq!(engine.storage_fault(), None);
    assert!(engine.stats().failed_batches >= 1);
    // And it takes new work.
    let after = engine.start::<chain>(base + WORKFLOWS).await.unwrap();
    assert_eq!(
        after.result().await.unwrap(),
        Ok((base + WORKFLOWS) * 1000 + STEPS)
    );

    // Every step's side effect ran; at most once more for a workflow whose runner the outage
    // stopped between its activity and that activity's commit.
    let ran = RAN.lock().unwrap().clone();
    let mut repeated = 0;
    for w in base..=base + WORKFLOWS {
        for n in 0..STEPS {
            let times = ran.get(&(w, n)).copied().unwrap_or(0);
            assert!(times >= 1, "step {n} of workflow {w} never ran");
            repeated += times - 1;
        }
    }
    assert!(
        u64::from(repeated) <= WORKFLOWS,
        "{repeated} activities ran again"
    );
    eprintln!(
        "{stop} under load: {committed_before} of {total} transitions committed before the stop, \
         {repeated} activities ran twice, down for {outage:?}, every workflow finished {finished_in:?} after the start"
    );
    engine.shutdown().await;
}
