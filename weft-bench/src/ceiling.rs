//! Storage ceiling: the engine's throughput as a fraction of what redb itself does with the same
//! writes. The engine runs W(N, K) with a ~1 KB live local through a recording storage; then the
//! recorded batches (same keys, same value sizes, same grouping) are replayed in the same run
//! (a) straight into redb, one durable write transaction per batch, and (b) through Weft's
//! `RedbStorage::apply_if` with the engine's epoch condition, which splits the engine's overhead
//! into the storage layer's and the rest.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redb::{Database, Durability, TableDefinition};
use weft_runtime::Engine;
use weft_runtime::storage::{Batch, Condition, RedbStorage, Storage};

use crate::BenchResult;
use crate::recorder::{RecordedWrite, Recorder};
use crate::report::{Table, settle_io};
use crate::throughput;
use crate::workload::steps;

const RAW_TABLE: TableDefinition<'static, &'static [u8], &'static [u8]> =
    TableDefinition::new("raw");

/// What one repeat measured.
#[derive(Debug, Clone)]
pub struct Figures {
    /// The engine's run.
    pub engine: throughput::Figures,
    /// Storage transactions the engine committed while timed.
    pub batches: usize,
    /// Puts and deletes in them.
    pub writes: usize,
    /// Mean value size of the puts, bytes.
    pub mean_value: f64,
    /// The same batches straight into redb.
    pub raw: Duration,
    /// The same batches through `RedbStorage::apply_if`.
    pub storage: Duration,
    /// Raw redb writes/s when the same writes are regrouped into batches of each size in
    /// [`SWEEP`] (at most 200 batches each), to show how the store scales with grouping.
    pub sweep: Vec<f64>,
}

/// How many times each replay runs (the median is kept).
const REPLAYS: usize = 3;

/// Batch sizes for the raw redb sweep.
pub const SWEEP: [usize; 6] = [1, 8, 32, 64, 128, 512];

impl Figures {
    /// Raw redb writes per second.
    pub fn raw_writes_per_s(&self) -> f64 {
        self.writes as f64 / self.raw.as_secs_f64()
    }

    /// Writes per second through `RedbStorage`.
    pub fn storage_writes_per_s(&self) -> f64 {
        self.writes as f64 / self.storage.as_secs_f64()
    }

    /// Engine writes per second (the same writes, in the engine's wall time).
    pub fn engine_writes_per_s(&self) -> f64 {
        self.writes as f64 / self.engine.wall.as_secs_f64()
    }

    /// The engine's throughput as a fraction of raw redb's.
    pub fn fraction(&self) -> f64 {
        self.raw.as_secs_f64() / self.engine.wall.as_secs_f64()
    }
}

/// One repeat in fresh stores.
pub async fn once(dir: &Path, n: u64, k: u64, c: u64, pad: usize) -> BenchResult<Figures> {
    let tmp = tempfile::tempdir_in(dir)?;
    let redb = Arc::new(RedbStorage::create(tmp.path().join("engine.redb"))?);
    let recorder = Arc::new(Recorder::new(Arc::clone(&redb)));
    let engine = Engine::builder(Arc::clone(&recorder))
        .register::<steps>()
        .build()
        .await?;
    throughput::warm_up(&engine, k, c, pad).await?;
    settle_io();
    recorder.start();
    let figures = throughput::timed(&engine, n, k, c, pad).await?;
    let batches = recorder.take();
    engine.shutdown().await;

    let writes: usize = batches.iter().map(Vec::len).sum();
    let (value_bytes, puts) = batches
        .iter()
        .flatten()
        .filter_map(|(_, len)| *len)
        .fold((0usize, 0usize), |(b, p), len| (b + len, p + 1));
    // Replayed three times each, interleaved, each into a fresh file; the median of each is
    // kept, so one disturbed replay on a shared machine does not decide the ratio.
    let (mut raws, mut storages) = (Vec::new(), Vec::new());
    for attempt in 0..REPLAYS {
        settle_io();
        raws.push(replay_raw(
            &tmp.path().join(format!("raw-{attempt}.redb")),
            &batches,
        )?);
        settle_io();
        storages.push(replay_storage(
            &tmp.path().join(format!("storage-{attempt}.redb")),
            &batches,
        )?);
    }
    raws.sort();
    storages.sort();
    let (raw, storage) = (raws[REPLAYS / 2], storages[REPLAYS / 2]);
    let flat: Vec<RecordedWrite> = batches.iter().flatten().cloned().collect();
    let mut sweep = Vec::new();
    for size in SWEEP {
        let take = flat.len().min(size * 200);
        let regrouped: Vec<Vec<RecordedWrite>> =
            flat[..take].chunks(size).map(<[_]>::to_vec).collect();
        let path = tmp.path().join(format!("sweep-{size}.redb"));
        settle_io();
        let elapsed = replay_raw(&path, &regrouped)?;
        sweep.push(take as f64 / elapsed.as_secs_f64());
    }
    Ok(Figures {
        sweep,
        engine: figures,
        batches: batches.len(),
        writes,
        mean_value: value_bytes as f64 / puts.max(1) as f64,
        raw,
        storage,
    })
}

/// The value of a replayed put: `len` bytes.
fn value(len: usize) -> Vec<u8> {
    vec![0xa5; len]
}

/// Replays `batches` into a fresh redb file, one durable write transaction each.
fn replay_raw(path: &Path, batches: &[Vec<RecordedWrite>]) -> BenchResult<Duration> {
    let db = Database::create(path)?;
    let prepared = prepare(batches);
    let start = Instant::now();
    for batch in &prepared {
        let mut txn = db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        {
            let mut table = txn.open_table(RAW_TABLE)?;
            for (key, value) in batch {
                match value {
                    Some(value) => {
                        table.insert(key.as_slice(), value.as_slice())?;
                    }
                    None => {
                        table.remove(key.as_slice())?;
                    }
                }
            }
        }
        txn.commit()?;
    }
    Ok(start.elapsed())
}

/// Replays `batches` through `RedbStorage::apply_if` with an epoch condition, like the engine.
fn replay_storage(path: &Path, batches: &[Vec<RecordedWrite>]) -> BenchResult<Duration> {
    let storage = RedbStorage::create(path)?;
    let epoch_key = b"meta/epoch".to_vec();
    storage.put(&epoch_key, &[1])?;
    let condition = [Condition {
        key: epoch_key,
        expected: Some(vec![1]),
    }];
    let prepared: Vec<Batch> = prepare(batches)
        .into_iter()
        .map(|writes| {
            let mut batch = Batch::new();
            for (key, value) in writes {
                match value {
                    Some(value) => batch.put(key, value),
                    None => batch.delete(key),
                };
            }
            batch
        })
        .collect();
    let start = Instant::now();
    for batch in prepared {
        storage.apply_if(&condition, &batch)?;
    }
    Ok(start.elapsed())
}

/// Batches with their values built, so building them is not timed.
type Prepared = Vec<Vec<(Vec<u8>, Option<Vec<u8>>)>>;

fn prepare(batches: &[Vec<RecordedWrite>]) -> Prepared {
    batches
        .iter()
        .map(|batch| {
            batch
                .iter()
                .map(|(key, len)| (key.clone(), len.map(value)))
                .collect()
        })
        .collect()
}

/// The scenario: `repeats` repeats, one table.
pub async fn run(
    dir: &Path,
    n: u64,
    k: u64,
    c: u64,
    pad: usize,
    repeats: usize,
) -> BenchResult<(Table, Table, Vec<Figures>)> {
    let mut all = Vec::new();
    for r in 0..repeats {
        let f = once(dir, n, k, c, pad).await?;
        eprintln!(
            "ceiling rep {}: engine {:.0} writes/s in {} batches (mean value {:.0} B), raw redb {:.0} writes/s, RedbStorage {:.0} writes/s => {:.0}% of raw",
            r + 1,
            f.engine_writes_per_s(),
            f.batches,
            f.mean_value,
            f.raw_writes_per_s(),
            f.storage_writes_per_s(),
            f.fraction() * 100.0
        );
        all.push(f);
    }
    let col = |f: fn(&Figures) -> f64| all.iter().map(f).collect::<Vec<_>>();
    let mut table = Table::new(
        &format!(
            "Storage ceiling: W(N={n}, K={k}), C={c}, state pad {pad} B; the engine's writes replayed into redb"
        ),
        &[
            ("commits", 0),
            ("writes", 0),
            ("mean value B", 0),
            ("engine writes/s", 0),
            ("raw redb writes/s", 0),
            ("RedbStorage::apply_if writes/s", 0),
            ("engine / raw redb", 2),
        ],
    );
    table.row(
        "weft (redb)",
        vec![
            col(|f| f.batches as f64),
            col(|f| f.writes as f64),
            col(|f| f.mean_value),
            col(Figures::engine_writes_per_s),
            col(Figures::raw_writes_per_s),
            col(Figures::storage_writes_per_s),
            col(Figures::fraction),
        ],
    );
    let mut sweep = Table::new(
        "Raw redb alone: the same writes regrouped into batches of B (at most 200 batches each)",
        &[("", 0); SWEEP.len()],
    );
    sweep.columns = SWEEP.iter().map(|b| format!("B={b} writes/s")).collect();
    sweep.row(
        "raw redb, 1 KB values",
        (0..SWEEP.len())
            .map(|i| all.iter().map(|f| f.sweep[i]).collect())
            .collect(),
    );
    Ok((table, sweep, all))
}
