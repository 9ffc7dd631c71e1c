//! `postgres`: W(N, K) at C with weft on PostgreSQL, paired round by round with weft on redb
//! and with DBOS on the same PostgreSQL server.
//!
//! Each round runs the three sides back to back, rotating which goes first, so all three see
//! the same machine; ratios are taken per round and reported as medians. Beside the rates it
//! counts what each side asked of the database: transactions and rows written
//! (`pg_stat_database`'s `xact_commit` and `tup_inserted + tup_updated + tup_deleted`), read
//! once every connection of that database has closed (a backend's counts are published when it
//! exits), over the whole run: connecting, migrating, the warm-up and the timed workflows.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio_postgres::NoTls;
use weft_postgres::{PostgresOptions, PostgresStats, PostgresStorage};
use weft_runtime::Engine;

use crate::BenchResult;
use crate::report::{Table, median};
use crate::throughput::{self, Figures, WARMUP};
use crate::versus::{self, Variant};
use crate::workload::steps;

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Workflows per run.
    pub n: u64,
    /// Steps per workflow.
    pub k: u64,
    /// Workflows in flight.
    pub c: u64,
    /// Paired rounds.
    pub rounds: usize,
    /// libpq settings of a database of its own for weft (the server DBOS uses too).
    pub conn: String,
    /// The DBOS variant to pair with, if any.
    pub peer: Option<Variant>,
}

/// Transactions and rows written in one database, from `pg_stat_database`.
#[derive(Debug, Clone, Copy, Default)]
pub struct DbCounts {
    /// Committed transactions (`xact_commit`).
    pub transactions: i64,
    /// Rows inserted, updated or deleted.
    pub rows: i64,
}

impl DbCounts {
    fn since(self, before: DbCounts) -> DbCounts {
        DbCounts {
            transactions: self.transactions - before.transactions,
            rows: self.rows - before.rows,
        }
    }
}

/// One weft run on PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgRun {
    /// The timed part's figures.
    pub figures: Figures,
    /// The database's counts over the whole run.
    pub counts: DbCounts,
    /// The storage's own counts over the whole run.
    pub storage: PostgresStats,
    /// The engine's committed batches over the whole run.
    pub batches: u64,
}

/// One side's figures in one round.
#[derive(Debug, Clone, Copy, Default)]
struct Side {
    wf_s: f64,
    /// Database transactions and rows per workflow step (PostgreSQL sides only).
    counts: Option<DbCounts>,
}

/// A connection for reading statistics and managing schemas, driven on the caller's runtime.
async fn admin(conn: &str) -> BenchResult<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(conn, NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// `datname`'s counts, once no other client is connected to it: each backend publishes its
/// counts when it exits at the latest, so none are left out.
async fn counts(admin: &tokio_postgres::Client, datname: &str) -> BenchResult<DbCounts> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let others: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 \
                 AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
                &[&datname],
            )
            .await?
            .get(0);
        if others == 0 {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "database `{datname}` still has {others} other connections after 60 s: give weft-bench a database of its own"
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let row = admin
        .query_opt(
            "SELECT xact_commit, tup_inserted + tup_updated + tup_deleted \
             FROM pg_stat_database WHERE datname = $1",
            &[&datname],
        )
        .await?
        .ok_or_else(|| {
            format!("no database `{datname}` on the server of --postgres: did the peer run on another one?")
        })?;
    Ok(DbCounts {
        transactions: row.get(0),
        rows: row.get(1),
    })
}

/// Weft on a fresh schema of the database `conn` names: the warm-up, then N workflows timed.
pub async fn once(conn: &str, n: u64, k: u64, c: u64) -> BenchResult<PgRun> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let admin = admin(conn).await?;
    let datname: String = admin
        .query_one("SELECT current_database()", &[])
        .await?
        .get(0);
    let schema = format!(
        "weft_bench_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let before = counts(&admin, &datname).await?;
    let storage =
        Arc::new(PostgresStorage::connect(PostgresOptions::new(conn).schema(&schema)).await?);
    let engine = Engine::builder(Arc::clone(&storage))
        .register::<steps>()
        .build()
        .await?;
    throughput::warm_up(&engine, k, c, 0).await?;
    let figures = throughput::timed(&engine, n, k, c, 0).await?;
    let batches = engine.stats().batches;
    engine.shutdown().await;
    let storage_stats = storage.stats();
    storage.close();
    drop(storage);
    let counts = counts(&admin, &datname).await?.since(before);
    admin
        .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .await?;
    Ok(PgRun {
        figures,
        counts,
        storage: storage_stats,
        batches,
    })
}

/// The three sides in one round, in the order given.
async fn round(
    plan: &Plan,
    dir: &std::path::Path,
    peers_dir: &std::path::Path,
    first: usize,
) -> BenchResult<([Side; 3], PgRun)> {
    let mut sides = [Side::default(); 3];
    let mut pg_run = None;
    for i in 0..3 {
        let which = (first + i) % 3;
        match which {
            0 => {
                let f = throughput::once(dir, plan.n, plan.k, plan.c, 0).await?;
                sides[0] = Side {
                    wf_s: f.workflows_per_s,
                    counts: None,
                };
            }
            1 => {
                let run = once(&plan.conn, plan.n, plan.k, plan.c).await?;
                sides[1] = Side {
                    wf_s: run.figures.workflows_per_s,
                    counts: Some(run.counts),
                };
                pg_run = Some(run);
            }
            _ => {
                let Some(peer) = plan.peer else {
                    sides[2] = Side {
                        wf_s: f64::NAN,
                        counts: None,
                    };
                    continue;
                };
                let wf_s = versus::run_peer(peers_dir, peer).await?;
                let admin = admin(&plan.conn).await?;
                sides[2] = Side {
                    wf_s,
                    counts: Some(counts(&admin, "peerbench").await?),
                };
            }
        }
        crate::report::settle_io();
    }
    Ok((sides, pg_run.ok_or("the PostgreSQL side did not run")?))
}

/// Runs the rounds; returns the per-side table, the per-round table and the target lines.
pub async fn run(
    dir: &std::path::Path,
    peers_dir: &std::path::Path,
    plan: &Plan,
) -> BenchResult<(Table, Table, String)> {
    let (n, k, c) = (plan.n, plan.k, plan.c);
    let steps_run = ((n + WARMUP) * k) as f64;
    let mut rounds: Vec<([Side; 3], PgRun)> = Vec::new();
    for r in 0..plan.rounds {
        let (sides, pg) = round(plan, dir, peers_dir, r % 3).await?;
        eprintln!(
            "postgres round {}: redb {:.0} wf/s, weft-postgres {:.0} wf/s, dbos-postgres {:.1} wf/s; postgres/redb {:.2}, postgres/dbos {:.1}×",
            r + 1,
            sides[0].wf_s,
            sides[1].wf_s,
            sides[2].wf_s,
            sides[1].wf_s / sides[0].wf_s,
            sides[1].wf_s / sides[2].wf_s,
        );
        rounds.push((sides, pg));
    }
    let per_step = |counts: Option<DbCounts>, f: fn(DbCounts) -> i64| {
        counts.map_or(f64::NAN, |c| f(c) as f64 / steps_run)
    };
    let col = |side: usize, f: &dyn Fn(&Side) -> f64| {
        rounds.iter().map(|(s, _)| f(&s[side])).collect::<Vec<_>>()
    };
    let mut sides = Table::new(
        &format!(
            "PostgreSQL: W(N={n}, K={k}), C={c}, {} paired rounds (median, min–max); database counts per workflow step over the whole run ((N + {WARMUP} warm-up) × K steps, connecting and migrating included)",
            plan.rounds
        ),
        &[
            ("workflows/s", 1),
            ("steps/s", 0),
            ("db transactions / step", 2),
            ("rows written / step", 2),
        ],
    );
    for (side, label) in [
        (0, "weft (redb, fsync per commit)"),
        (1, "weft (PostgreSQL)"),
        (2, "DBOS 3.4.0 (PostgreSQL)"),
    ] {
        sides.row(
            label,
            vec![
                col(side, &|s| s.wf_s),
                col(side, &|s| s.wf_s * k as f64),
                col(side, &|s| per_step(s.counts, |c| c.transactions)),
                col(side, &|s| per_step(s.counts, |c| c.rows)),
            ],
        );
    }
    let mut per_round = Table::new(
        "Per round (the order rotates: redb, PostgreSQL, DBOS first in turn)",
        &[
            ("redb wf/s", 0),
            ("weft-pg wf/s", 0),
            ("DBOS-pg wf/s", 1),
            ("weft-pg / redb", 2),
            ("weft-pg / DBOS", 1),
            ("weft-pg batch transactions / engine batch", 2),
            ("weft-pg reads / step", 2),
        ],
    );
    for (r, (s, pg)) in rounds.iter().enumerate() {
        per_round.row(
            format!("round {}", r + 1),
            vec![
                vec![s[0].wf_s],
                vec![s[1].wf_s],
                vec![s[2].wf_s],
                vec![s[1].wf_s / s[0].wf_s],
                vec![s[1].wf_s / s[2].wf_s],
                vec![pg.storage.write_transactions as f64 / pg.batches.max(1) as f64],
                vec![pg.storage.reads as f64 / steps_run],
            ],
        );
    }
    let vs_redb = median(
        &col(1, &|s| s.wf_s)
            .iter()
            .zip(col(0, &|s| s.wf_s))
            .map(|(p, r)| p / r)
            .collect::<Vec<_>>(),
    );
    let vs_dbos = median(
        &col(1, &|s| s.wf_s)
            .iter()
            .zip(col(2, &|s| s.wf_s))
            .map(|(p, d)| p / d)
            .collect::<Vec<_>>(),
    );
    let status = |met: bool| if met { "**met**" } else { "**not met**" };
    let targets = format!(
        "| target | median of the paired ratios | status |\n|---|---|---|\n\
         | weft on PostgreSQL ≥ 10× DBOS on PostgreSQL (workflows/s) | {vs_dbos:.1}× | {} |\n\
         | weft on PostgreSQL ≥ 20 % of weft on redb (workflows/s) | {:.0} % | {} |\n",
        status(vs_dbos >= 10.0),
        vs_redb * 100.0,
        status(vs_redb >= 0.2),
    );
    Ok((sides, per_round, targets))
}
