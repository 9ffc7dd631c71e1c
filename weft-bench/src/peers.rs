//! Peer figures: reads the JSONL that `bench/peers/run_all.sh` writes (one object per phase,
//! tagged with its variant and repeat) and reduces it to medians per variant and mode.

use std::collections::BTreeMap;
use std::path::Path;

use crate::BenchResult;
use crate::report::median;

/// One peer variant in one mode, with medians over its repeats.
#[derive(Debug, Clone)]
pub struct PeerRow {
    /// e.g. `restate-wf`, `dbos-sqlite`.
    pub variant: String,
    /// `throughput` or `latency`.
    pub mode: String,
    /// Workflows.
    pub n: u64,
    /// Steps per workflow.
    pub k: u64,
    /// In flight, as the script printed it.
    pub concurrency: String,
    /// Repeats.
    pub reps: usize,
    /// Median workflows/s.
    pub workflows_per_s: f64,
    /// Median steps/s.
    pub steps_per_s: f64,
    /// Median end-to-end p50, ms.
    pub p50_ms: f64,
    /// Median end-to-end p99, ms.
    pub p99_ms: f64,
}

/// Peer rows and the run's metadata line.
pub struct Peers {
    /// The `meta` object's date.
    pub date: String,
    /// The rows, in file order.
    pub rows: Vec<PeerRow>,
}

/// Reads a `run_all.sh` JSONL file.
pub fn read(path: &Path) -> BenchResult<Peers> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read peers file {}: {e}", path.display()))?;
    let mut date = String::new();
    let mut order: Vec<(String, String)> = Vec::new();
    let mut groups: BTreeMap<(String, String), Vec<serde_json::Value>> = BTreeMap::new();
    for line in text.lines().filter(|l| l.trim_start().starts_with('{')) {
        let value: serde_json::Value = serde_json::from_str(line)?;
        if value.get("meta").is_some() {
            date = value["date"].as_str().unwrap_or_default().to_string();
            continue;
        }
        let key = (
            value["variant"].as_str().unwrap_or("?").to_string(),
            value["mode"].as_str().unwrap_or("?").to_string(),
        );
        if !groups.contains_key(&key) {
            order.push(key.clone());
        }
        groups.entry(key).or_default().push(value);
    }
    let rows = order
        .into_iter()
        .map(|key| {
            let group = &groups[&key];
            let med = |f: &dyn Fn(&serde_json::Value) -> Option<f64>| {
                median(&group.iter().filter_map(f).collect::<Vec<_>>())
            };
            let first = &group[0];
            PeerRow {
                variant: key.0.clone(),
                mode: key.1.clone(),
                n: first["n"].as_u64().unwrap_or(0),
                k: first["k"].as_u64().unwrap_or(0),
                concurrency: match &first["concurrency"] {
                    serde_json::Value::Number(n) => n.to_string(),
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                },
                reps: group.len(),
                workflows_per_s: med(&|v| v["workflows_per_s"].as_f64()),
                steps_per_s: med(&|v| v["steps_per_s"].as_f64()),
                p50_ms: med(&|v| v["lat_ms"]["p50"].as_f64()),
                p99_ms: med(&|v| v["lat_ms"]["p99"].as_f64()),
            }
        })
        .collect();
    Ok(Peers { date, rows })
}
