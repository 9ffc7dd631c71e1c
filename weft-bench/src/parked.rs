//! Parked memory: N workflows asleep on a long timer; the engine process's resident memory.
//!
//! Three measurements, all of VmRSS, each in a fresh child process:
//! * before and after starting the N sleepers (includes allocator slack left by the N starts and
//!   redb's page cache for the pages written);
//! * in a fresh child process that only opens the store and reads every record the way recovery
//!   does (the storage's own cost: redb's page cache);
//! * in a fresh child process that builds an engine on the store (recovery re-arms the N timers).
//!
//! The engine's own cost per parked workflow is the third minus the second, over N.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use weft_runtime::Engine;
use weft_runtime::storage::{RedbStorage, Storage};

use crate::BenchResult;
use crate::report::{Table, rss_bytes};
use crate::workload::{StepsInput, sleeper};

/// How long the sleepers sleep: far longer than any run.
const SLEEP_SECS: u64 = 24 * 3600;
/// Starts in flight while filling the store.
const IN_FLIGHT: u64 = 256;
/// Bytes per MiB.
const MIB: f64 = 1024.0 * 1024.0;

/// What one repeat measured, in bytes.
#[derive(Debug, Clone)]
pub struct Figures {
    /// Parked workflows.
    pub n: u64,
    /// This process: RSS with the engine built, before the starts.
    pub rss_before: u64,
    /// This process: RSS with all N parked.
    pub rss_after: u64,
    /// Child, storage only: RSS growth from opening and reading the store.
    pub storage_delta: u64,
    /// Child, engine: RSS growth from building the engine (recovering N sleepers).
    pub engine_delta: u64,
    /// Seconds to start all N.
    pub start_s: f64,
}

impl Figures {
    /// Engine memory per parked workflow: the engine child's growth beyond the storage child's.
    pub fn engine_per_workflow(&self) -> f64 {
        self.engine_delta.saturating_sub(self.storage_delta) as f64 / self.n as f64
    }

    /// This process's growth per workflow, everything included.
    pub fn process_per_workflow(&self) -> f64 {
        self.rss_after.saturating_sub(self.rss_before) as f64 / self.n as f64
    }
}

/// Waits until no workflow has a runner.
async fn settle(engine: &Engine) {
    while engine.active_workflows() > 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One repeat: a child fills a fresh store with N sleepers, then two more children measure it.
pub async fn once(dir: &Path, n: u64, pad: usize) -> BenchResult<Figures> {
    let tmp = tempfile::tempdir_in(dir)?;
    let path = tmp.path().join("parked.redb");
    let fill = child(
        &path,
        "fill",
        &["--n", &n.to_string(), "--pad", &pad.to_string()],
    )?;
    let storage = child(&path, "storage", &[])?;
    let engine = child(&path, "engine", &[])?;
    Ok(Figures {
        n,
        rss_before: fill["before"].as_u64().unwrap_or(0),
        rss_after: fill["after"].as_u64().unwrap_or(0),
        storage_delta: delta(&storage)?,
        engine_delta: delta(&engine)?,
        start_s: fill["seconds"].as_f64().unwrap_or(0.0),
    })
}

fn delta(report: &serde_json::Value) -> BenchResult<u64> {
    report["delta"]
        .as_u64()
        .ok_or_else(|| format!("parked-child printed no delta: {report}").into())
}

/// Fills a fresh store at `path` with `n` sleepers; returns the RSS before (engine built) and
/// after (all parked) and the time it took.
async fn fill(path: &Path, n: u64, pad: usize) -> BenchResult<(u64, u64, f64)> {
    let storage = Arc::new(RedbStorage::create(path)?);
    let engine = Engine::builder(Arc::clone(&storage))
        .register::<sleeper>()
        .build()
        .await?;
    let rss_before = rss_bytes();
    let t = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..IN_FLIGHT {
        let engine = engine.clone();
        let next = Arc::clone(&next);
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < n {
                engine
                    .start::<sleeper>(StepsInput { k: SLEEP_SECS, pad })
                    .await?;
            }
            BenchResult::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    settle(&engine).await;
    let seconds = t.elapsed().as_secs_f64();
    let rss_after = rss_bytes();
    engine.shutdown().await;
    Ok((rss_before, rss_after, seconds))
}

/// Runs `weft-bench parked-child` on `store` in `mode`; returns the JSON it prints.
fn child(store: &Path, mode: &str, extra: &[&str]) -> BenchResult<serde_json::Value> {
    let exe = std::env::current_exe()?;
    let output = Command::new(exe)
        .arg("parked-child")
        .arg("--store")
        .arg(store)
        .arg("--mode")
        .arg(mode)
        .args(extra)
        .output()?;
    if !output.status.success() {
        return Err(format!(
            "parked-child --mode {mode} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    let text = String::from_utf8_lossy(&output.stdout);
    Ok(serde_json::from_str(text.trim())?)
}

/// The child: `fill` creates the store and starts `n` sleepers in it; `storage` opens the store
/// and reads every workflow record and timer entry (what recovery reads); `engine` builds an
/// engine on it and waits until recovery has settled. Prints
/// `{"before":…,"after":…,"delta":…}` in bytes (and `seconds` for `fill`).
pub async fn child_main(store: &Path, mode: &str, n: u64, pad: usize) -> BenchResult<()> {
    if mode == "fill" {
        let (before, after, seconds) = fill(store, n, pad).await?;
        println!(
            "{{\"before\":{before},\"after\":{after},\"delta\":{},\"seconds\":{seconds}}}",
            after.saturating_sub(before)
        );
        return Ok(());
    }
    let before = rss_bytes();
    let storage = Arc::new(RedbStorage::open(store)?);
    let after = match mode {
        "storage" => {
            let mut count = 0usize;
            // What recovery reads: the timer and live indexes, and the live workflows' records
            // (all of them here: every sleeper is live), which hold their deadlines and
            // cancellation requests since store format 3.
            for prefix in [&b"tm/"[..], &b"live/"[..], &b"wf/"[..]] {
                let mut after: Option<Vec<u8>> = None;
                loop {
                    let page = storage.scan_prefix(prefix, after.as_deref(), 256)?;
                    count += page.len();
                    let done = page.len() < 256;
                    after = page.last().map(|(k, _)| k.clone());
                    if done {
                        break;
                    }
                }
            }
            let rss = rss_bytes();
            std::hint::black_box(count);
            rss
        }
        "engine" => {
            let engine = Engine::builder(Arc::clone(&storage))
                .register::<sleeper>()
                .build()
                .await?;
            settle(&engine).await;
            let rss = rss_bytes();
            engine.shutdown().await;
            rss
        }
        other => {
            return Err(format!("unknown --mode `{other}`: use fill, storage or engine").into());
        }
    };
    println!(
        "{{\"before\":{before},\"after\":{after},\"delta\":{}}}",
        after.saturating_sub(before)
    );
    Ok(())
}

/// The scenario: `repeats` repeats, one table.
pub async fn run(
    dir: &Path,
    n: u64,
    pad: usize,
    repeats: usize,
) -> BenchResult<(Table, Vec<Figures>)> {
    let mut all = Vec::new();
    for r in 0..repeats {
        let f = once(dir, n, pad).await?;
        eprintln!(
            "parked rep {}: {n} sleepers started in {:.1} s; filling process +{:.0} B/wf; child storage +{:.1} MiB, child engine +{:.1} MiB => engine {:.0} B/wf",
            r + 1,
            f.start_s,
            f.process_per_workflow(),
            f.storage_delta as f64 / 1048576.0,
            f.engine_delta as f64 / 1048576.0,
            f.engine_per_workflow()
        );
        all.push(f);
    }
    let col = |f: fn(&Figures) -> f64| all.iter().map(f).collect::<Vec<_>>();
    let mut table = Table::new(
        &format!("Parked memory: {n} workflows asleep on a timer, state pad {pad} B"),
        &[
            ("filling process: RSS before MiB", 1),
            ("RSS with all parked MiB", 1),
            ("growth per started workflow B", 0),
            ("fresh process: storage scan MiB", 1),
            ("fresh process: engine recovery MiB", 1),
            ("engine per parked workflow B", 0),
        ],
    );
    table.row(
        "weft (redb)",
        vec![
            col(|f| f.rss_before as f64 / MIB),
            col(|f| f.rss_after as f64 / MIB),
            all.iter().map(Figures::process_per_workflow).collect(),
            col(|f| f.storage_delta as f64 / MIB),
            col(|f| f.engine_delta as f64 / MIB),
            all.iter().map(Figures::engine_per_workflow).collect(),
        ],
    );
    Ok((table, all))
}
