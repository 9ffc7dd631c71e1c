//! Throughput: W(N, K) with C workflows in flight, on redb with durable commits.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use weft_runtime::Engine;
use weft_runtime::storage::RedbStorage;

use crate::BenchResult;
use crate::report::{Table, ms, percentile};
use crate::workload::{StepsInput, steps};

/// Untimed workflows run first, like the peers' warm-up.
pub const WARMUP: u64 = 20;

/// What one throughput run measured.
#[derive(Debug, Clone)]
pub struct Figures {
    /// Wall time of the timed part.
    pub wall: Duration,
    /// Workflows finished per second.
    pub workflows_per_s: f64,
    /// Activity steps (K per workflow) per second.
    pub steps_per_s: f64,
    /// Committed transitions per second (K + 1 per workflow: the start and each step).
    pub transitions_per_s: f64,
    /// Committed transitions per storage transaction.
    pub mean_batch: f64,
    /// Storage transactions (fsyncs) per second.
    pub commits_per_s: f64,
    /// End-to-end latency of one workflow under load, p50 and p99, in ms.
    pub p50_ms: f64,
    /// See `p50_ms`.
    pub p99_ms: f64,
}

/// Runs the untimed warm-up workflows.
pub async fn warm_up(engine: &Engine, k: u64, c: u64, pad: usize) -> BenchResult<()> {
    run_n(engine, WARMUP, k, c, pad).await?;
    Ok(())
}

/// Runs N workflows of K steps, C in flight, on `engine`; returns their figures.
pub async fn timed(engine: &Engine, n: u64, k: u64, c: u64, pad: usize) -> BenchResult<Figures> {
    let before = engine.stats();
    let start = Instant::now();
    let latencies = run_n(engine, n, k, c, pad).await?;
    let wall = start.elapsed();
    let after = engine.stats();
    let batches = after.batches - before.batches;
    let transitions = after.transitions - before.transitions;
    let secs = wall.as_secs_f64();
    Ok(Figures {
        wall,
        workflows_per_s: n as f64 / secs,
        steps_per_s: (n * k) as f64 / secs,
        transitions_per_s: transitions as f64 / secs,
        mean_batch: transitions as f64 / batches.max(1) as f64,
        commits_per_s: batches as f64 / secs,
        p50_ms: percentile(&latencies, 50.0),
        p99_ms: percentile(&latencies, 99.0),
    })
}

/// Runs `n` workflows with at most `c` in flight; returns each one's end-to-end time in ms.
async fn run_n(engine: &Engine, n: u64, k: u64, c: u64, pad: usize) -> BenchResult<Vec<f64>> {
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..c.min(n.max(1)) {
        let engine = engine.clone();
        let next = Arc::clone(&next);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < n {
                let t = Instant::now();
                let handle = engine.start::<steps>(StepsInput { k, pad }).await?;
                let result = handle.result().await??;
                if result != k {
                    return Err(format!("workflow returned {result}, expected {k}").into());
                }
                latencies.push(ms(t.elapsed()));
            }
            BenchResult::Ok(latencies)
        }));
    }
    let mut all = Vec::with_capacity(n as usize);
    for task in tasks {
        all.extend(task.await??);
    }
    Ok(all)
}

/// One run on a fresh redb store in `dir`.
pub async fn once(dir: &Path, n: u64, k: u64, c: u64, pad: usize) -> BenchResult<Figures> {
    let tmp = tempfile::tempdir_in(dir)?;
    let storage = Arc::new(RedbStorage::create(tmp.path().join("throughput.redb"))?);
    let engine = Engine::builder(Arc::clone(&storage))
        .register::<steps>()
        .build()
        .await?;
    warm_up(&engine, k, c, pad).await?;
    crate::report::settle_io();
    let figures = timed(&engine, n, k, c, pad).await?;
    engine.shutdown().await;
    Ok(figures)
}

/// The scenario: `repeats` runs, one table.
pub async fn run(
    dir: &Path,
    n: u64,
    k: u64,
    c: u64,
    pad: usize,
    repeats: usize,
) -> BenchResult<(Table, Vec<Figures>)> {
    let mut runs = Vec::new();
    for r in 0..repeats {
        let f = once(dir, n, k, c, pad).await?;
        eprintln!(
            "throughput rep {}: {:.0} wf/s, {:.0} steps/s, batch {:.1}",
            r + 1,
            f.workflows_per_s,
            f.steps_per_s,
            f.mean_batch
        );
        runs.push(f);
    }
    let mut table = Table::new(
        &format!("Throughput: W(N={n}, K={k}), C={c}, state pad {pad} B"),
        &COLUMNS,
    );
    table.row("weft (redb)", columns(&runs));
    Ok((table, runs))
}

/// The throughput table's columns and their decimal places, in [`columns`]' order.
pub const COLUMNS: [(&str, usize); 7] = [
    ("workflows/s", 0),
    ("durable steps/s", 0),
    ("transitions/s", 0),
    ("mean commit batch", 1),
    ("commits (fsyncs)/s", 0),
    ("workflow p50 ms", 2),
    ("workflow p99 ms", 2),
];

/// The figures of each run, column by column.
pub fn columns(runs: &[Figures]) -> Vec<Vec<f64>> {
    let col = |f: fn(&Figures) -> f64| runs.iter().map(f).collect::<Vec<_>>();
    vec![
        col(|f| f.workflows_per_s),
        col(|f| f.steps_per_s),
        col(|f| f.transitions_per_s),
        col(|f| f.mean_batch),
        col(|f| f.commits_per_s),
        col(|f| f.p50_ms),
        col(|f| f.p99_ms),
    ]
}
