//! Visibility at scale: listing and counting among many finished workflows.
//!
//! Two stores, one with `small` and one with `large` finished workflows of the bulk type
//! (`steps`, one step each), and in each the same few finished workflows of a rare type
//! (`sleeper`). On each store, per repeat: a page of 50 listed by the rare type, a page of 50
//! listed by the bulk type, and a count grouped by status. The claim under test is that these
//! read indexes and counters, so the large store answers within 2x of the small one.
//!
//! The stores are filled once through the engine and kept in `--dir` (named after their size),
//! so later runs reuse them; the first timed call of each operation on each store is a warm-up,
//! so the figures are for a warm page cache.

use std::path::{Path, PathBuf};
use std::time::Instant;

use weft_runtime::storage::RedbStorage;
use weft_runtime::{Engine, GroupBy, ListFilter, StartOptions, WorkflowStatus};

use crate::BenchResult;
use crate::report::{Table, median, ms};
use crate::throughput;
use crate::workload::{StepsInput, sleeper, steps};

/// Finished workflows of the rare type in every store.
const RARE: u64 = 100;
/// The page size listed.
const PAGE: usize = 50;

/// One store's timings, one value per repeat, in ms.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    /// Finished workflows of the bulk type in the store.
    pub finished: u64,
    /// A page of 50 of the rare type.
    pub list_rare_ms: Vec<f64>,
    /// A page of 50 of the bulk type.
    pub list_bulk_ms: Vec<f64>,
    /// A count grouped by status.
    pub count_ms: Vec<f64>,
}

fn store_path(dir: &Path, finished: u64) -> PathBuf {
    dir.join(format!("weft-visibility-{finished}.redb"))
}

/// Opens the store for `finished` workflows, filling it first if it does not exist yet.
async fn open_filled(dir: &Path, finished: u64) -> BenchResult<Engine> {
    let path = store_path(dir, finished);
    let marker = path.with_extension("filled");
    if !marker.exists() {
        let _ = std::fs::remove_file(&path);
        let started = Instant::now();
        let engine = Engine::builder(RedbStorage::create(&path)?)
            .register::<steps>()
            .register::<sleeper>()
            .build()
            .await?;
        throughput::timed(&engine, finished, 1, 256, 0).await?;
        for i in 0..RARE {
            let options = StartOptions {
                // After every generated id in key order, so a scan meets them last.
                id: Some(format!("~rare-{i:04}")),
                ..Default::default()
            };
            let handle = engine
                .start_with::<sleeper>(StepsInput { k: 0, pad: 0 }, options)
                .await?;
            handle.result().await??;
        }
        engine.shutdown().await;
        std::fs::write(&marker, b"")?;
        eprintln!(
            "visibility: filled {} with {finished} + {RARE} finished workflows in {:.1} s",
            path.display(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(Engine::builder(RedbStorage::open(&path)?)
        .register::<steps>()
        .register::<sleeper>()
        .build()
        .await?)
}

/// Times the three operations once on `engine`, checking what they answer.
async fn measure(engine: &Engine, finished: u64, figures: &mut Figures) -> BenchResult<()> {
    let rare = ListFilter {
        workflow_type: Some("sleeper".into()),
        ..Default::default()
    };
    let t = Instant::now();
    let page = engine.list(&rare, PAGE, None).await?;
    figures.list_rare_ms.push(ms(t.elapsed()));
    if page.items.len() != PAGE {
        return Err(format!(
            "listed {} rare workflows, expected {PAGE}",
            page.items.len()
        )
        .into());
    }
    let bulk = ListFilter {
        workflow_type: Some("steps".into()),
        ..Default::default()
    };
    let t = Instant::now();
    let page = engine.list(&bulk, PAGE, None).await?;
    figures.list_bulk_ms.push(ms(t.elapsed()));
    if page.items.len() != PAGE {
        return Err(format!(
            "listed {} bulk workflows, expected {PAGE}",
            page.items.len()
        )
        .into());
    }
    let t = Instant::now();
    let counts = engine
        .count(&ListFilter::default(), GroupBy::Status)
        .await?;
    figures.count_ms.push(ms(t.elapsed()));
    let completed = counts
        .iter()
        .find(|(status, _)| status == &format!("{:?}", WorkflowStatus::Completed))
        .map(|(_, n)| *n);
    if completed != Some(finished + RARE) {
        return Err(format!("counted {counts:?}, expected {} completed", finished + RARE).into());
    }
    Ok(())
}

/// The scenario: both stores, measured round by round, and the large-to-small ratios.
pub async fn run(
    dir: &Path,
    small: u64,
    large: u64,
    repeats: usize,
) -> BenchResult<(Table, Vec<Figures>)> {
    let mut all = Vec::new();
    let mut engines = Vec::new();
    for finished in [small, large] {
        let engine = open_filled(dir, finished).await?;
        // Warm-up: the page cache and the engine's first reads.
        measure(&engine, finished, &mut Figures::default()).await?;
        engines.push(engine);
        all.push(Figures {
            finished,
            ..Figures::default()
        });
    }
    for _ in 0..repeats {
        for (engine, figures) in engines.iter().zip(all.iter_mut()) {
            let finished = figures.finished;
            measure(engine, finished, figures).await?;
        }
    }
    for engine in engines {
        engine.shutdown().await;
    }
    let mut table = Table::new(
        &format!(
            "Visibility: a page of {PAGE} by type and a count by status among finished workflows ({RARE} of a rare type beside the bulk); warm page cache, stores reused from `--dir`"
        ),
        &[
            ("list 50 of the rare type ms", 3),
            ("list 50 of the bulk type ms", 3),
            ("count by status ms", 3),
        ],
    );
    for f in &all {
        table.row(
            format!("{} finished", f.finished),
            vec![
                f.list_rare_ms.clone(),
                f.list_bulk_ms.clone(),
                f.count_ms.clone(),
            ],
        );
    }
    if let [small, large] = all.as_slice() {
        let ratio = |a: &[f64], b: &[f64]| vec![median(b) / median(a).max(1e-9)];
        table.row(
            format!("ratio {} / {}", large.finished, small.finished),
            vec![
                ratio(&small.list_rare_ms, &large.list_rare_ms),
                ratio(&small.list_bulk_ms, &large.list_bulk_ms),
                ratio(&small.count_ms, &large.count_ms),
            ],
        );
    }
    Ok((table, all))
}
