//! Offline compaction of a store that purged most of its workflows: `storage::compact` on a
//! store filled with `--n` MB of live state (workflows parked on a signal, `--pad` bytes each,
//! default 64 MB of 4 KiB), 90% of them then cancelled and purged through the engine. Reports
//! the file size after the fill, after the purge (a redb file does not shrink by itself), and
//! after compaction, with the time compaction took. Each repeat fills a fresh store.

use std::path::Path;
use std::time::Instant;

use weft_runtime::Engine;
use weft_runtime::storage::{RedbStorage, compact};

use crate::BenchResult;
use crate::report::Table;
use crate::workload::{StepsInput, parked};

/// Calls in flight while filling and purging.
const IN_FLIGHT: usize = 64;

/// Runs `call` for each of `ids`, `IN_FLIGHT` at a time.
async fn each<F, Fut>(ids: Vec<String>, call: F) -> BenchResult<()>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = BenchResult<()>> + Send + 'static,
{
    let mut calls = tokio::task::JoinSet::new();
    for id in ids {
        if calls.len() == IN_FLIGHT
            && let Some(done) = calls.join_next().await
        {
            done??;
        }
        calls.spawn(call(id));
    }
    while let Some(done) = calls.join_next().await {
        done??;
    }
    Ok(())
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

/// Fills a store at `path`, purges 90% of it, and returns (entries kept, MB after the fill,
/// MB after the purge).
async fn fill_and_purge(path: &Path, n: u64, pad: usize) -> BenchResult<(u64, f64, f64)> {
    let engine = Engine::builder(RedbStorage::create(path)?)
        .register::<parked>()
        .build()
        .await?;
    let ids: Vec<String> = (0..n).map(|i| format!("c-{i:08}")).collect();
    let starter = engine.clone();
    each(ids.clone(), move |id| {
        let engine = starter.clone();
        async move {
            let options = weft_runtime::StartOptions {
                id: Some(id),
                ..Default::default()
            };
            engine
                .start_with::<parked>(StepsInput { k: 0, pad }, options)
                .await?;
            Ok(())
        }
    })
    .await?;
    let filled = mb(std::fs::metadata(path)?.len());
    let doomed: Vec<String> = ids
        .into_iter()
        .enumerate()
        .filter(|(i, _)| i % 10 != 0)
        .map(|(_, id)| id)
        .collect();
    let purger = engine.clone();
    each(doomed, move |id| {
        let engine = purger.clone();
        async move {
            engine.cancel(&id).await?;
            // Purge takes finished workflows only: wait until the cancellation has ended it.
            let _ = engine.handle::<parked>(&id).result().await;
            engine.purge(&id).await?;
            Ok(())
        }
    })
    .await?;
    engine.shutdown().await;
    let purged = mb(std::fs::metadata(path)?.len());
    Ok((n - n * 9 / 10, filled, purged))
}

/// The scenario: `repeats` times, fill about `size_mb` MB of state, purge 90%, compact.
pub async fn run(dir: &Path, size_mb: u64, pad: usize, repeats: usize) -> BenchResult<Table> {
    let n = (size_mb << 20) / pad.max(1) as u64;
    let (mut filled, mut purged, mut compacted, mut seconds, mut kept) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..repeats {
        let temp = tempfile::tempdir_in(dir)?;
        let path = temp.path().join("store.redb");
        let (left, after_fill, after_purge) = fill_and_purge(&path, n, pad).await?;
        crate::report::settle_io();
        let t = Instant::now();
        let report = compact(&path)?;
        seconds.push(t.elapsed().as_secs_f64());
        filled.push(after_fill);
        purged.push(after_purge);
        compacted.push(mb(report.bytes_after));
        kept.push(left as f64);
    }
    let mut table = Table::new(
        &format!(
            "Offline compaction: {n} workflows parked with {pad} B of state, 90% cancelled and purged, then `weft compact`"
        ),
        &[
            ("workflows kept", 0),
            ("MB filled", 1),
            ("MB after purge", 1),
            ("MB after compact", 1),
            ("compact s", 2),
        ],
    );
    table.row(
        format!("{size_mb} MB of state"),
        vec![kept, filled, purged, compacted, seconds],
    );
    Ok(table)
}
