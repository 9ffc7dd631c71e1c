//! Backup and restore of a large store: how long `Engine::backup` takes on a store of about
//! `--size-mb` MB (default 1024), and how long `storage::restore` takes to check and install it.
//!
//! The store is filled once through the engine with workflows parked on a signal, each holding
//! `--pad` bytes of live state (default 4 KiB), as many as make `--size-mb` of state, and kept
//! in `--dir`, so later runs reuse it. (Finished workflows would not do: a finished workflow
//! keeps its output, not its state, so their store is mostly free pages, which a backup does
//! not copy.) Each repeat backs it up to a new file with the engine running, then
//! restores that file beside it; both include their verification (integrity check, recount,
//! SHA-256 of every entry), and both files are removed afterwards.

use std::path::Path;
use std::time::Instant;

use weft_runtime::Engine;
use weft_runtime::storage::{RedbStorage, RestoreOptions, restore};

use crate::BenchResult;
use crate::report::Table;
use crate::workload::{StepsInput, parked};

/// Starts in flight while filling.
const IN_FLIGHT: usize = 256;

/// Starts `n` workflows parked on a signal, each holding `pad` bytes, `IN_FLIGHT` at a time.
async fn fill(engine: &Engine, n: u64, pad: usize) -> BenchResult<()> {
    let mut starts = tokio::task::JoinSet::new();
    for _ in 0..n {
        if starts.len() == IN_FLIGHT
            && let Some(done) = starts.join_next().await
        {
            done??;
        }
        let engine = engine.clone();
        starts.spawn(async move {
            engine
                .start::<parked>(StepsInput { k: 0, pad })
                .await
                .map(drop)
        });
    }
    while let Some(done) = starts.join_next().await {
        done??;
    }
    Ok(())
}

/// The scenario: fill once, then time `repeats` backups and restores.
pub async fn run(dir: &Path, size_mb: u64, pad: usize, repeats: usize) -> BenchResult<Table> {
    let path = dir.join(format!("weft-backup-{size_mb}mb.redb"));
    let marker = path.with_extension("filled");
    if !marker.exists() {
        let _ = std::fs::remove_file(&path);
        let started = Instant::now();
        let engine = Engine::builder(RedbStorage::create(&path)?)
            .register::<parked>()
            .build()
            .await?;
        fill(&engine, (size_mb << 20) / pad.max(1) as u64, pad).await?;
        engine.shutdown().await;
        std::fs::write(&marker, b"")?;
        eprintln!(
            "backup: filled {} to {} MB in {:.1} s",
            path.display(),
            std::fs::metadata(&path)?.len() >> 20,
            started.elapsed().as_secs_f64()
        );
    }
    let store_mb = std::fs::metadata(&path)?.len() as f64 / (1 << 20) as f64;
    let engine = Engine::builder(RedbStorage::open(&path)?)
        .register::<parked>()
        .build()
        .await?;
    let (mut backup_s, mut backup_mb, mut restore_s, mut entries) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..repeats {
        let copy = dir.join(format!("weft-backup-{size_mb}mb.{i}.backup"));
        let restored = dir.join(format!("weft-backup-{size_mb}mb.{i}.restored"));
        let _ = std::fs::remove_file(&copy);
        let _ = std::fs::remove_file(&restored);
        crate::report::settle_io();
        let t = Instant::now();
        let report = engine.backup(&copy).await?;
        backup_s.push(t.elapsed().as_secs_f64());
        backup_mb.push(report.bytes as f64 / (1 << 20) as f64);
        entries.push(report.manifest.entries as f64);
        crate::report::settle_io();
        let t = Instant::now();
        restore(&copy, &restored, RestoreOptions::default())?;
        restore_s.push(t.elapsed().as_secs_f64());
        std::fs::remove_file(&copy)?;
        std::fs::remove_file(&restored)?;
    }
    engine.shutdown().await;
    let mut table = Table::new(
        &format!("Backup and restore of a {store_mb:.0} MB store"),
        &[
            ("entries", 0),
            ("backup file MB", 0),
            ("backup s", 1),
            ("restore s", 1),
        ],
    );
    table.row(
        format!("{store_mb:.0} MB redb store"),
        vec![entries, backup_mb, backup_s, restore_s],
    );
    Ok(table)
}
