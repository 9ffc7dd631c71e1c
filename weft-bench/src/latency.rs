//! Latency: one workflow of K steps at a time, repeated; per step and end to end.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use weft_runtime::Engine;
use weft_runtime::storage::RedbStorage;

use crate::BenchResult;
use crate::report::{Table, ms, percentile};
use crate::workload::{self, StepsInput, steps};

/// What one repeat measured, in ms.
#[derive(Debug, Clone)]
pub struct Figures {
    /// One workflow, from the start call to the caller holding the result.
    pub e2e_p50: f64,
    /// See `e2e_p50`.
    pub e2e_p99: f64,
    /// From one step's activity running to the next one's: a step, its durable commit, and
    /// the dispatch of the next activity.
    pub step_p50: f64,
    /// See `step_p50`.
    pub step_p99: f64,
}

/// One repeat on a fresh redb store: `runs` workflows one after another.
pub async fn once(dir: &Path, k: u64, runs: u64, pad: usize) -> BenchResult<Figures> {
    let tmp = tempfile::tempdir_in(dir)?;
    let storage = Arc::new(RedbStorage::create(tmp.path().join("latency.redb"))?);
    let engine = Engine::builder(Arc::clone(&storage))
        .register::<steps>()
        .build()
        .await?;
    for _ in 0..super::throughput::WARMUP {
        engine
            .start::<steps>(StepsInput { k, pad })
            .await?
            .result()
            .await??;
    }
    crate::report::settle_io();
    let mut e2e = Vec::new();
    let mut per_step = Vec::new();
    for _ in 0..runs {
        workload::record_steps(true);
        let t = Instant::now();
        let result = engine
            .start::<steps>(StepsInput { k, pad })
            .await?
            .result()
            .await??;
        e2e.push(ms(t.elapsed()));
        let stamps = workload::take_stamps();
        if result != k || stamps.len() as u64 != k {
            return Err(format!(
                "workflow returned {result} after {} steps, expected {k}",
                stamps.len()
            )
            .into());
        }
        per_step.extend(stamps.windows(2).map(|w| ms(w[1] - w[0])));
    }
    workload::record_steps(false);
    engine.shutdown().await;
    Ok(Figures {
        e2e_p50: percentile(&e2e, 50.0),
        e2e_p99: percentile(&e2e, 99.0),
        step_p50: percentile(&per_step, 50.0),
        step_p99: percentile(&per_step, 99.0),
    })
}

/// The scenario: `repeats` repeats, one table.
pub async fn run(
    dir: &Path,
    k: u64,
    runs: u64,
    pad: usize,
    repeats: usize,
) -> BenchResult<(Table, Vec<Figures>)> {
    let mut all = Vec::new();
    for r in 0..repeats {
        let f = once(dir, k, runs, pad).await?;
        eprintln!(
            "latency rep {}: workflow p50 {:.2} ms p99 {:.2} ms, step p50 {:.3} ms p99 {:.3} ms",
            r + 1,
            f.e2e_p50,
            f.e2e_p99,
            f.step_p50,
            f.step_p99
        );
        all.push(f);
    }
    let col = |f: fn(&Figures) -> f64| all.iter().map(f).collect::<Vec<_>>();
    let mut table = Table::new(
        &format!(
            "Latency: one workflow of K={k} steps alone, {runs} runs per repeat, state pad {pad} B"
        ),
        &[
            ("workflow p50 ms", 2),
            ("workflow p99 ms", 2),
            ("step p50 ms", 3),
            ("step p99 ms", 3),
        ],
    );
    table.row(
        "weft (redb)",
        vec![
            col(|f| f.e2e_p50),
            col(|f| f.e2e_p99),
            col(|f| f.step_p50),
            col(|f| f.step_p99),
        ],
    );
    Ok((table, all))
}
