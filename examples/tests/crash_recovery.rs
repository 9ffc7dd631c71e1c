//! The crash test: a child process (`crash_worker`) runs many workflows on a redb file and is
//! killed with SIGKILL at random points, several times, then runs to completion. Afterwards:
//!
//! - every workflow completed with the right result, and `list` shows all of them completed;
//! - each activity result was recorded exactly once: a job's result lists its activity outputs
//!   in order, each step once, and the job committed exactly one step per durable await;
//! - each activity side effect (a line in an append-only log, by idempotency key) happened at
//!   least once, and at most once more per kill; and as a job runs one activity at a time, all
//!   of a job's side effects together repeat at most once per kill. (Across jobs, a kill may
//!   repeat one activity of every job that had one in flight.)
//!
//! Kill points are random (the seed is printed; set `WEFT_CRASH_SEED` to pick one) and are
//! driven by observable progress, not by timing: the test waits until the side-effect log has
//! grown by a random number of lines since the child started, then kills it.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use weft_examples::crash_job::{Job, crash_job};
use weft_runtime::storage::{RedbStorage, Storage};
use weft_runtime::{Engine, ListFilter, WorkflowStatus};

const JOBS: u64 = 50;
const STEPS: u64 = 6;
const KILLS: usize = 8;
/// The most log lines a child may add before it is killed.
const MAX_LINES_BEFORE_KILL: u64 = 40;
/// Far beyond what a healthy run needs; only a hang reaches it.
const STUCK: Duration = Duration::from_secs(60);

struct Files {
    db: PathBuf,
    log: PathBuf,
}

fn spawn_worker(files: &Files) -> Child {
    Command::new(env!("CARGO_BIN_EXE_crash_worker"))
        .arg(&files.db)
        .arg(&files.log)
        .arg(JOBS.to_string())
        .arg(STEPS.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the crash_worker binary runs")
}

fn log_lines(log: &Path) -> u64 {
    match std::fs::read(log) {
        Ok(bytes) => bytes.iter().filter(|b| **b == b'\n').count() as u64,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => panic!("cannot read {}: {e}", log.display()),
    }
}

/// xorshift64: small, seeded, good enough to pick kill points.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Runs the worker until the log has `grow` more lines, then SIGKILLs it. Returns `false`
/// if the worker finished first.
fn run_and_kill(files: &Files, grow: u64) -> bool {
    let start = log_lines(&files.log);
    let mut child = spawn_worker(files);
    let since = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "the worker failed: {status}");
            return false;
        }
        if log_lines(&files.log) >= start + grow {
            child.kill().unwrap(); // SIGKILL on unix
            child.wait().unwrap();
            return true;
        }
        assert!(
            since.elapsed() < STUCK,
            "the worker made no progress for {STUCK:?}"
        );
        // Polling the log's length, which is the progress being waited for.
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_workers_lose_nothing_and_record_each_result_once() {
    let seed = std::env::var("WEFT_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
        | 1;
    eprintln!("crash test seed: WEFT_CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let files = Files {
        db: dir.path().join("crash.redb"),
        log: dir.path().join("effects.log"),
    };

    let mut kills = 0;
    let mut kill_points = Vec::new();
    for _ in 0..KILLS {
        let grow = 1 + rng.below(MAX_LINES_BEFORE_KILL);
        if !run_and_kill(&files, grow) {
            break;
        }
        kills += 1;
        kill_points.push(log_lines(&files.log));
    }
    eprintln!("killed {kills} times, at log lengths {kill_points:?}");
    assert!(kills >= 1, "the worker finished before the first kill");

    // The last run goes to the end.
    let mut child = spawn_worker(&files);
    let since = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if since.elapsed() > STUCK {
            child.kill().unwrap();
            panic!("the final run did not finish within {STUCK:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(status.success(), "the final run failed: {status}");

    // Read the store back with an engine that resumes nothing.
    let storage = Arc::new(RedbStorage::open(&files.db).unwrap());
    let engine = Engine::builder(Arc::clone(&storage))
        .register::<crash_job>()
        .recover(false)
        .build()
        .await
        .unwrap();

    // No workflow lost: list shows every job, completed.
    let filter = ListFilter {
        workflow_type: Some("crash_job".into()),
        ..ListFilter::default()
    };
    let mut listed = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = engine.list(&filter, 16, token.as_deref()).await.unwrap();
        listed.extend(page.items);
        match page.next_page_token {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    let ids: BTreeSet<String> = listed.iter().map(|s| s.id.clone()).collect();
    let expected_ids: BTreeSet<String> = (0..JOBS).map(|i| Job::nth(i, STEPS).id()).collect();
    assert_eq!(ids, expected_ids, "list shows exactly the started jobs");
    for summary in &listed {
        assert_eq!(summary.status, WorkflowStatus::Completed, "{}", summary.id);
    }

    // Each result right, each step's result recorded once.
    let mut result_keys: BTreeSet<String> = BTreeSet::new();
    for i in 0..JOBS {
        let job = Job::nth(i, STEPS);
        let result = engine
            .result::<crash_job>(&job.id())
            .await
            .unwrap()
            .unwrap();
        let values: Vec<u64> = result.effects.iter().map(|e| e.value).collect();
        assert_eq!(
            values,
            job.expected_values(),
            "{}: activity outputs",
            job.id()
        );
        let keys: BTreeSet<&String> = result.effects.iter().map(|e| &e.key).collect();
        assert_eq!(
            keys.len(),
            result.effects.len(),
            "{}: one key per step",
            job.id()
        );
        let expected_bonus = if job.wait_signal { job.go().bonus } else { 0 };
        assert_eq!(
            result.bonus,
            expected_bonus,
            "{}: the signal's payload",
            job.id()
        );
        // One commit for the start and one per durable await: nothing committed twice.
        let description = engine.describe(&job.id()).await.unwrap();
        assert_eq!(
            description.step,
            1 + job.durable_awaits(),
            "{}: steps committed",
            job.id()
        );
        result_keys.extend(result.effects.into_iter().map(|e| e.key));
    }

    // Side effects: every recorded result's effect happened, none that was not recorded, and
    // each at most once more per kill.
    let log = std::fs::read_to_string(&files.log).unwrap();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for line in log.lines() {
        *counts.entry(line).or_default() += 1;
    }
    let logged: BTreeSet<String> = counts.keys().map(|k| k.to_string()).collect();
    assert_eq!(
        logged, result_keys,
        "the logged side effects are exactly the recorded activity calls"
    );
    let duplicates: usize = counts.values().map(|n| n - 1).sum();
    let worst = counts.values().copied().max().unwrap_or(0);
    let mut per_job: HashMap<&str, usize> = HashMap::new();
    for (key, n) in &counts {
        assert!(
            n - 1 <= kills,
            "{key} ran {n} times across {kills} kills: more than once more per kill"
        );
        let job = key.split('/').next().unwrap();
        *per_job.entry(job).or_default() += n - 1;
    }
    // A job runs its activities one at a time, so a kill interrupts at most one of them.
    for (job, n) in per_job {
        assert!(
            n <= kills,
            "{job} repeated {n} side effects across {kills} kills: more than one per kill"
        );
    }
    eprintln!(
        "{JOBS} jobs x {STEPS} steps: {} side effects logged, {duplicates} duplicated over \
         {kills} kills (at most {worst} runs of one key)",
        log.lines().count()
    );
    // Signals a finished job never read: the worker re-sends `Go` on every run, and a finished
    // workflow's queue is cleared, so this counts signals that raced a job's completion.
    let unread = storage
        .scan_prefix(
            weft_runtime::engine::record::SIGNAL_PREFIX,
            None,
            usize::MAX,
        )
        .unwrap()
        .len();
    eprintln!("{unread} signal records left unread after every job finished");
    engine.shutdown().await;
}
