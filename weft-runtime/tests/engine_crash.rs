//! Crash test: a child process runs many workflows against a redb file and is killed with
//! SIGKILL at arbitrary points, several times, then runs to the end. Afterwards every workflow
//! has completed with the right result (so each activity result was recorded exactly once and no
//! workflow was lost), and each activity's side effect, logged by idempotency key, happened at
//! most once more per kill.
//!
//! The child is this test binary itself, running the ignored test `crash_child`.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use weft_runtime::engine::StartOptions;
use weft_runtime::storage::RedbStorage;
use weft_runtime::{
    ActivityContext, ActivityError, Engine, Resources, WorkflowContext, WorkflowError, activity,
    workflow,
};

const WORKFLOWS: u64 = 32;
const STEPS: u64 = 12;
const KILLS: usize = 5;
const DIR_VAR: &str = "WEFT_CRASH_DIR";

/// Where the side-effect log goes.
struct EffectLog(PathBuf);

/// A side effect: appends its idempotency key to the log (one `write`, so a kill cannot tear
/// it), then returns a value derived from its input.
#[activity]
async fn effect(ctx: ActivityContext, i: u64) -> Result<u64, ActivityError> {
    let log = ctx
        .resource::<EffectLog>()
        .expect("the child registers the log");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log.0)?;
    file.write_all(format!("{}\n", ctx.idempotency_key()).as_bytes())?;
    Ok(i * i + 1)
}

/// Runs `effect` `steps` times with a short durable sleep between, collecting the results.
#[workflow]
async fn crashy(ctx: &mut WorkflowContext, steps: u64) -> Result<Vec<u64>, WorkflowError> {
    let mut results: Vec<u64> = Vec::new();
    for i in 0..steps {
        let r = ctx.run(effect, i).await?;
        results.push(r);
        ctx.sleep(Duration::from_millis(2)).await;
    }
    Ok(results)
}

fn expected() -> Vec<u64> {
    (0..STEPS).map(|i| i * i + 1).collect()
}

async fn child_engine(dir: &Path) -> Engine {
    let storage = RedbStorage::open(dir.join("weft.redb")).unwrap();
    Engine::builder(storage)
        .register::<crashy>()
        .resources(Resources::new().with(EffectLog(dir.join("effects.log"))))
        .build()
        .await
        .unwrap()
}

/// The child: (re)starts every workflow idempotently and waits for all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by `crash_test_kills_the_engine_repeatedly_and_loses_nothing` as a child process"]
async fn crash_child() {
    let Some(dir) = std::env::var_os(DIR_VAR) else {
        return;
    };
    let engine = child_engine(Path::new(&dir)).await;
    let mut handles = Vec::new();
    for i in 0..WORKFLOWS {
        let options = StartOptions {
            id: Some(format!("crash-{i}")),
            idempotency_key: Some(format!("crash-{i}")),
            ..Default::default()
        };
        handles.push(engine.start_with::<crashy>(STEPS, options).await.unwrap());
    }
    for handle in handles {
        assert_eq!(handle.result().await.unwrap().unwrap(), expected());
    }
    std::fs::write(Path::new(&dir).join("done"), b"ok").unwrap();
}

/// Starts the child; its output goes to `child.out` in `dir`, shown if the final run fails.
fn spawn_child(dir: &Path) -> Child {
    let out = std::fs::File::create(dir.join("child.out")).unwrap();
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--ignored", "--test-threads=1"])
        .env(DIR_VAR, dir)
        .stdout(Stdio::from(out.try_clone().unwrap()))
        .stderr(Stdio::from(out))
        .spawn()
        .unwrap()
}

/// A small xorshift generator seeded from the clock: kill points differ from run to run; the
/// seed is printed so a failing run can be reasoned about.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Describes every workflow that has not completed, for a failure message.
async fn unfinished(dir: &Path) -> String {
    let storage = RedbStorage::open(dir.join("weft.redb")).unwrap();
    let engine = Engine::builder(storage)
        .register::<crashy>()
        .recover(false)
        .build()
        .await
        .unwrap();
    let mut out = String::new();
    for i in 0..WORKFLOWS {
        match engine.describe(&format!("crash-{i}")).await {
            Ok(d) if d.status == weft_runtime::WorkflowStatus::Completed => {}
            other => out.push_str(&format!("crash-{i}: {other:?}\n")),
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_test_kills_the_engine_repeatedly_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("crash test seed {seed}");
    let mut rng = Rng(seed);
    // Created before any child runs: a kill during creation would leave a file that is not yet
    // a database, which is a property of first-time setup, not of the engine under test.
    RedbStorage::create(dir.path().join("weft.redb"))
        .unwrap()
        .close()
        .unwrap();

    let mut kills = 0;
    for _ in 0..KILLS {
        let mut child = spawn_child(dir.path());
        let wait = Duration::from_millis(15 + rng.next() % 150);
        std::thread::sleep(wait);
        if child.try_wait().unwrap().is_some() {
            break; // It finished before this kill point.
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
    }

    // The last run goes to the end.
    let mut child = spawn_child(dir.path());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!(
                "the final run did not finish (seed {seed}, {kills} kills); unfinished:\n{}",
                unfinished(dir.path()).await
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        status.success(),
        "the final run failed: {status} (seed {seed}, {kills} kills); its output:\n{}",
        std::fs::read_to_string(dir.path().join("child.out")).unwrap_or_default()
    );
    assert!(dir.path().join("done").exists());

    // Every workflow completed with the exact results, each recorded once.
    let storage = Arc::new(RedbStorage::open(dir.path().join("weft.redb")).unwrap());
    let engine = Engine::builder(Arc::clone(&storage))
        .register::<crashy>()
        .recover(false)
        .build()
        .await
        .unwrap();
    for i in 0..WORKFLOWS {
        let result = engine
            .result::<crashy>(&format!("crash-{i}"))
            .await
            .unwrap();
        assert_eq!(result.unwrap(), expected(), "workflow crash-{i}");
    }

    // Side effects: every call happened, and at most once more per kill.
    let log = std::fs::read_to_string(dir.path().join("effects.log")).unwrap();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for line in log.lines() {
        *counts.entry(line).or_default() += 1;
    }
    assert_eq!(
        counts.len() as u64,
        WORKFLOWS * STEPS,
        "one key per activity call"
    );
    let duplicates: usize = counts.values().map(|n| n - 1).sum();
    for (key, n) in &counts {
        assert!(*n <= 1 + kills, "{key} ran {n} times across {kills} kills");
    }
    eprintln!("crash test: {kills} kills, {duplicates} duplicated side effects");
}
