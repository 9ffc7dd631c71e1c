//! Recovery vs history length: workflows parked on a signal after H completed steps; the time to
//! open the store, build the engine (which recovers) and resume one to completion, and the bytes
//! stored per workflow. The design claim is that none of it grows with H. With `finished`, one
//! more store also holds that many finished workflows beside its parked ones: recovery reads the
//! live index, so they should not slow it down either.

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use weft_runtime::storage::{RedbStorage, Storage};
use weft_runtime::{Engine, StartOptions, WorkflowStatus};

use crate::BenchResult;
use crate::report::{Table, median, ms, settle_io};
use crate::throughput;
use crate::workload::{Go, StepsInput, parked, steps};

/// What one history length measured: one value per repeat (one parked workflow each).
#[derive(Debug, Clone, Default)]
pub struct Figures {
    /// Completed steps before parking.
    pub history: u64,
    /// Finished workflows in the store beside the parked ones.
    pub finished: u64,
    /// `RedbStorage::open`, ms.
    pub open_ms: Vec<f64>,
    /// `EngineBuilder::build` (ownership, writer, recovery scan), ms.
    pub build_ms: Vec<f64>,
    /// Signal, resume and run the last step to completion, ms.
    pub resume_ms: Vec<f64>,
    /// The three together, ms.
    pub total_ms: Vec<f64>,
    /// Bytes of every key and value belonging to one parked workflow.
    pub live_bytes: Vec<f64>,
    /// The redb file's size divided by the number of workflows in it.
    pub file_bytes: Vec<f64>,
    /// Time to build the history (not a recovery figure), s.
    pub setup_s: f64,
}

/// Waits until no workflow has a runner: every started one is parked on its signal.
async fn settle(engine: &Engine) {
    while engine.active_workflows() > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Drops the last reference to the store and closes its file, so it can be opened again.
async fn close(mut storage: Arc<RedbStorage>) -> BenchResult<()> {
    loop {
        match Arc::try_unwrap(storage) {
            Ok(store) => return Ok(store.close()?),
            Err(shared) => {
                storage = shared;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
}

/// A store with parked workflows, ready to be recovered.
struct Prepared {
    _tmp: tempfile::TempDir,
    path: std::path::PathBuf,
    ids: Vec<String>,
}

/// Parks `repeats` workflows after `history` steps in a fresh store and measures what it holds.
async fn prepare(
    dir: &Path,
    history: u64,
    finished: u64,
    pad: usize,
    repeats: usize,
) -> BenchResult<(Prepared, Figures)> {
    let tmp = tempfile::tempdir_in(dir)?;
    let path = tmp.path().join("recovery.redb");
    let ids: Vec<String> = (0..repeats).map(|i| format!("parked-{i}")).collect();
    let mut figures = Figures {
        history,
        finished,
        ..Figures::default()
    };

    let setup = Instant::now();
    let storage = Arc::new(RedbStorage::create(&path)?);
    let engine = Engine::builder(Arc::clone(&storage))
        .register::<parked>()
        .register::<steps>()
        .build()
        .await?;
    if finished > 0 {
        // Workflows of one step each, run to their end before the parked ones start.
        throughput::timed(&engine, finished, 1, 256, 0).await?;
    }
    for id in &ids {
        let options = StartOptions {
            id: Some(id.clone()),
            idempotency_key: None,
            ..Default::default()
        };
        engine
            .start_with::<parked>(StepsInput { k: history, pad }, options)
            .await?;
    }
    settle(&engine).await;
    for id in &ids {
        let described = engine.describe(id).await?;
        if described.status != WorkflowStatus::Waiting || described.step != history + 1 {
            return Err(format!(
                "{id} is {:?} at step {}, expected waiting at step {}",
                described.status,
                described.step,
                history + 1
            )
            .into());
        }
    }
    figures.setup_s = setup.elapsed().as_secs_f64();
    let entries = storage.scan(Bound::Unbounded, Bound::Unbounded, usize::MAX)?;
    for id in &ids {
        let bytes: usize = entries
            .iter()
            .filter(|(key, _)| contains(key, id.as_bytes()))
            .map(|(key, value)| key.len() + value.len())
            .sum();
        figures.live_bytes.push(bytes as f64);
    }
    engine.shutdown().await;
    close(storage).await?;
    let file_len = std::fs::metadata(&path)?.len() as f64;
    figures.file_bytes.extend(std::iter::repeat_n(
        file_len / (ids.len() as u64 + finished) as f64,
        ids.len(),
    ));
    Ok((
        Prepared {
            _tmp: tmp,
            path,
            ids,
        },
        figures,
    ))
}

/// Opens the store, builds an engine (which recovers), and resumes workflow `id` to completion.
async fn recover_one(
    path: &Path,
    id: &str,
    history: u64,
    figures: &mut Figures,
) -> BenchResult<()> {
    settle_io();
    let t = Instant::now();
    let storage = Arc::new(RedbStorage::open(path)?);
    let opened = t.elapsed();
    let engine = Engine::builder(Arc::clone(&storage))
        .register::<parked>()
        .build()
        .await?;
    let built = t.elapsed();
    engine.signal(id, Go { go: true }).await?;
    let result = engine.result::<parked>(id).await??;
    let done = t.elapsed();
    if result != history + 1 {
        return Err(format!("{id} returned {result}, expected {}", history + 1).into());
    }
    figures.open_ms.push(ms(opened));
    figures.build_ms.push(ms(built - opened));
    figures.resume_ms.push(ms(done - built));
    figures.total_ms.push(ms(done));
    engine.shutdown().await;
    close(storage).await
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The scenario: every history length, one table, and the ratio of the longest to the shortest.
pub async fn run(
    dir: &Path,
    histories: &[u64],
    finished: u64,
    pad: usize,
    repeats: usize,
) -> BenchResult<(Table, Vec<Figures>)> {
    // All stores first, then the recoveries in rounds over the history lengths, so a disturbance
    // on the shared machine, or writeback left by the setup, does not favour one length.
    let mut prepared = Vec::new();
    let mut all = Vec::new();
    let mut stores: Vec<(u64, u64)> = histories.iter().map(|&h| (h, 0)).collect();
    if finished > 0 {
        stores.push((histories.first().copied().unwrap_or(10), finished));
    }
    for (h, finished) in stores {
        let (store, figures) = prepare(dir, h, finished, pad, repeats).await?;
        eprintln!(
            "recovery: {} workflows parked after {h} steps beside {finished} finished in {:.1} s",
            repeats, figures.setup_s
        );
        prepared.push(store);
        all.push(figures);
    }
    for round in 0..repeats {
        for (store, figures) in prepared.iter().zip(all.iter_mut()) {
            let history = figures.history;
            recover_one(&store.path, &store.ids[round], history, figures).await?;
        }
    }
    for f in &all {
        eprintln!(
            "recovery after {} steps: total {:.2} ms (open {:.2}, build {:.2}, resume {:.2}), {:.0} B live",
            f.history,
            median(&f.total_ms),
            median(&f.open_ms),
            median(&f.build_ms),
            median(&f.resume_ms),
            median(&f.live_bytes),
        );
    }
    let mut table = Table::new(
        &format!(
            "Recovery vs history: {repeats} workflows parked on a signal per store, state pad {pad} B; one recovered per repeat (file bytes: over every workflow in the file)"
        ),
        &[
            ("open store ms", 2),
            ("build engine (recovery) ms", 2),
            ("signal + resume to completion ms", 2),
            ("total ms", 2),
            ("stored bytes per workflow", 0),
            ("file bytes / workflows", 0),
        ],
    );
    for f in &all {
        let label = if f.finished > 0 {
            format!(
                "{} completed steps, {} finished workflows beside",
                f.history, f.finished
            )
        } else {
            format!("{} completed steps", f.history)
        };
        table.row(
            label,
            vec![
                f.open_ms.clone(),
                f.build_ms.clone(),
                f.resume_ms.clone(),
                f.total_ms.clone(),
                f.live_bytes.clone(),
                f.file_bytes.clone(),
            ],
        );
    }
    Ok((table, all))
}
