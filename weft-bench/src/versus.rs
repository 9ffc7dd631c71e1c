//! `versus`: a peer engine and weft on the same workload, back to back, for several rounds.
//!
//! Absolute rates on a shared machine drift by several times within minutes (fsync latency
//! swings), so a peer measured at one moment and weft at another can give almost any ratio.
//! Here each round runs the peer's own script (from `../shared/bench/peers`), then weft on the
//! same W(N, K) with the same C, and the ratio is taken per round: both sides of a pair see the
//! same machine. The reported ratio is the median of the paired ratios.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::BenchResult;
use crate::report::{Table, median};
use crate::throughput;

/// A peer configuration `versus` knows how to run, mirroring `run_all.sh`'s variants.
#[derive(Debug, Clone, Copy)]
pub struct Variant {
    /// The name `run_all.sh` tags its figures with.
    pub name: &'static str,
    /// The script, relative to the peers directory.
    script: &'static str,
    /// Environment the script reads.
    env: &'static [(&'static str, &'static str)],
    /// Workflows.
    pub n: u64,
    /// Steps per workflow.
    pub k: u64,
    /// In flight.
    pub c: u64,
}

/// Every variant `versus` can run. Restate is the fastest peer by an order of magnitude (see
/// docs/benchmarks.md), so its variants decide the "10× every peer" target; DBOS and Temporal
/// take minutes per round and are better run once through `run_all.sh`.
pub const VARIANTS: &[Variant] = &[
    Variant {
        name: "restate-wf",
        script: "restate/run.sh",
        env: &[("TARGET", "wf")],
        n: 1000,
        k: 10,
        c: 64,
    },
    Variant {
        name: "restate-svc",
        script: "restate/run.sh",
        env: &[("TARGET", "svc")],
        n: 1000,
        k: 10,
        c: 64,
    },
    Variant {
        name: "restate-wf-c256",
        script: "restate/run.sh",
        env: &[("TARGET", "wf")],
        n: 2000,
        k: 10,
        c: 256,
    },
    Variant {
        name: "dbos-sqlite",
        script: "dbos/run.sh",
        env: &[("BACKEND", "sqlite")],
        n: 1000,
        k: 10,
        c: 64,
    },
    Variant {
        name: "dbos-postgres",
        script: "dbos/run.sh",
        env: &[("BACKEND", "postgres")],
        n: 1000,
        k: 10,
        c: 64,
    },
    Variant {
        name: "dbos-sqlite-c8",
        script: "dbos/run.sh",
        env: &[("BACKEND", "sqlite")],
        n: 500,
        k: 10,
        c: 8,
    },
];

/// The variants `versus` runs when none are named.
pub const DEFAULT_VARIANTS: &str = "restate-wf,restate-svc,restate-wf-c256";

/// One round: the peer's figure and weft's, measured back to back.
#[derive(Debug, Clone, Copy)]
pub struct Pair {
    /// The peer's workflows/s.
    pub peer: f64,
    /// Weft's workflows/s (median of its repeats in this round).
    pub weft: f64,
}

impl Pair {
    /// Weft's workflows/s over the peer's.
    pub fn ratio(&self) -> f64 {
        self.weft / self.peer
    }
}

/// A variant's rounds.
#[derive(Debug, Clone)]
pub struct Paired {
    /// What ran.
    pub variant: Variant,
    /// One pair per round.
    pub pairs: Vec<Pair>,
}

impl Paired {
    /// The median of the per-round ratios.
    pub fn median_ratio(&self) -> f64 {
        median(&self.pairs.iter().map(Pair::ratio).collect::<Vec<_>>())
    }
}

/// Looks up comma-separated variant names.
pub fn variants(names: &str) -> Result<Vec<Variant>, String> {
    names
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(|name| {
            VARIANTS
                .iter()
                .copied()
                .find(|v| v.name == name)
                .ok_or_else(|| {
                    let known: Vec<_> = VARIANTS.iter().map(|v| v.name).collect();
                    format!("unknown peer variant `{name}`; known: {}", known.join(", "))
                })
        })
        .collect()
}

/// Where the peer scripts live when `--peers-dir` is not given: beside the repository.
pub fn default_peers_dir() -> PathBuf {
    PathBuf::from("../shared/bench/peers")
}

/// Runs `rounds` rounds of each variant against weft (`repeats` weft runs per round, median).
pub async fn run(
    dir: &Path,
    peers_dir: &Path,
    variants: &[Variant],
    rounds: usize,
    repeats: usize,
) -> BenchResult<(Table, Vec<Paired>)> {
    let mut results: Vec<Paired> = variants
        .iter()
        .map(|&variant| Paired {
            variant,
            pairs: Vec::new(),
        })
        .collect();
    // Rounds outermost, so a slow stretch of the machine touches every variant alike. The
    // order alternates (peer first in odd rounds, weft first in even ones) so that what one
    // side leaves behind (a peer's server flushing its files as it stops) does not always
    // land on the same side; `sync` between the two flushes what it can.
    for round in 1..=rounds {
        for paired in &mut results {
            let v = paired.variant;
            let (peer, weft) = if round % 2 == 1 {
                let peer = run_peer(peers_dir, v).await?;
                crate::report::settle_io();
                (peer, run_weft(dir, v, repeats).await?)
            } else {
                let weft = run_weft(dir, v, repeats).await?;
                crate::report::settle_io();
                (run_peer(peers_dir, v).await?, weft)
            };
            let pair = Pair { peer, weft };
            eprintln!(
                "versus {} round {round}: peer {:.1} wf/s, weft {:.0} wf/s, {:.1}×",
                v.name,
                pair.peer,
                pair.weft,
                pair.ratio()
            );
            paired.pairs.push(pair);
        }
    }
    let mut table = Table::new(
        &format!(
            "Paired with peers: each round runs the peer and weft back to back (alternating which goes first) on the same W(N, K) and C (rounds: {rounds})"
        ),
        &[
            ("N", 0),
            ("K", 0),
            ("C", 0),
            ("peer workflows/s", 1),
            ("weft workflows/s", 0),
            ("weft / peer, per round", 1),
        ],
    );
    for paired in &results {
        let v = paired.variant;
        let col = |f: fn(&Pair) -> f64| paired.pairs.iter().map(f).collect::<Vec<_>>();
        table.row(
            v.name,
            vec![
                vec![v.n as f64],
                vec![v.k as f64],
                vec![v.c as f64],
                col(|p| p.peer),
                col(|p| p.weft),
                col(Pair::ratio),
            ],
        );
    }
    Ok((table, results))
}

/// Weft on the variant's workload: the median workflows/s of `repeats` runs.
async fn run_weft(dir: &Path, v: Variant, repeats: usize) -> BenchResult<f64> {
    let mut runs = Vec::new();
    for _ in 0..repeats.max(1) {
        runs.push(
            throughput::once(dir, v.n, v.k, v.c, 0)
                .await?
                .workflows_per_s,
        );
    }
    Ok(median(&runs))
}

/// Runs one peer variant's throughput phase and returns its workflows/s.
pub(crate) async fn run_peer(peers_dir: &Path, v: Variant) -> BenchResult<f64> {
    let script = peers_dir.join(v.script);
    if !script.exists() {
        return Err(format!(
            "peer script {} not found; pass --peers-dir (the `bench/peers` folder of ../shared)",
            script.display()
        )
        .into());
    }
    let mut command = Command::new(&script);
    command
        .args([v.n.to_string(), v.k.to_string(), v.c.to_string()])
        .env("SKIP_LATENCY", "1")
        .envs(v.env.iter().copied());
    let output = tokio::task::spawn_blocking(move || command.output()).await??;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
        return Err(format!(
            "peer {} failed ({}); last lines of its stderr:\n{}",
            v.name,
            output.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
        .into());
    }
    throughput_of(&stdout).ok_or_else(|| {
        format!(
            "peer {} printed no throughput figure; its stdout was:\n{stdout}",
            v.name
        )
        .into()
    })
}

/// The `workflows_per_s` of the throughput line in a peer script's output.
fn throughput_of(stdout: &str) -> Option<f64> {
    stdout
        .lines()
        .filter(|line| line.trim_start().starts_with('{'))
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|value| value["mode"] == "throughput")
        .and_then(|value| value["workflows_per_s"].as_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_throughput_line() {
        let out = "# restate-server 1.7.12\n{\"mode\":\"latency\",\"workflows_per_s\":46.9}\n{\"mode\":\"throughput\",\"n\":1000,\"workflows_per_s\":242.8}\n";
        assert_eq!(throughput_of(out), Some(242.8));
        assert_eq!(throughput_of("{\"mode\":\"latency\"}"), None);
        assert_eq!(throughput_of("not json"), None);
    }

    #[test]
    fn names_resolve_and_unknown_ones_are_listed() {
        let found = variants(DEFAULT_VARIANTS).unwrap();
        assert_eq!(found.len(), 3);
        assert_eq!(found[2].c, 256);
        let err = variants("restate-wf,nope").unwrap_err();
        assert!(
            err.contains("`nope`") && err.contains("restate-svc"),
            "{err}"
        );
    }

    #[test]
    fn the_ratio_is_the_median_of_paired_ratios() {
        let paired = Paired {
            variant: VARIANTS[0],
            pairs: vec![
                Pair {
                    peer: 100.0,
                    weft: 2000.0,
                },
                Pair {
                    peer: 200.0,
                    weft: 1000.0,
                },
                Pair {
                    peer: 100.0,
                    weft: 1200.0,
                },
            ],
        };
        assert_eq!(paired.median_ratio(), 12.0);
    }
}
