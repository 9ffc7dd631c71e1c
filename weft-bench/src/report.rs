//! Figures and how they are printed: medians over repeats, percentiles, markdown tables, the
//! machine description.

use std::fmt::Write as _;
use std::time::Duration;

/// The median of `values` (the mean of the middle two for an even count); 0 when empty.
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

/// The `p`-th percentile (0..=100) of `values`, nearest-rank; NaN (printed as `–`) when empty.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Milliseconds, as a float.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One row of figures, one value per repeat for each column.
pub struct Row {
    /// What the row measures.
    pub label: String,
    /// Per column, the value of each repeat.
    pub values: Vec<Vec<f64>>,
}

/// A table of medians over repeats, with the min–max range when there is more than one repeat.
pub struct Table {
    /// The table's title (a markdown heading in the results file).
    pub title: String,
    /// Column headers after the label column.
    pub columns: Vec<String>,
    /// The rows.
    pub rows: Vec<Row>,
    /// Decimal places per column.
    pub decimals: Vec<usize>,
}

impl Table {
    /// An empty table with these columns, each printed with `decimals` places.
    pub fn new(title: &str, columns: &[(&str, usize)]) -> Self {
        Table {
            title: title.to_string(),
            columns: columns.iter().map(|(c, _)| c.to_string()).collect(),
            decimals: columns.iter().map(|(_, d)| *d).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row: one `Vec` per column, one value per repeat.
    pub fn row(&mut self, label: impl Into<String>, values: Vec<Vec<f64>>) {
        self.rows.push(Row {
            label: label.into(),
            values,
        });
    }

    /// The median of a column in a row.
    pub fn median_of(&self, row: usize, column: usize) -> f64 {
        median(&self.rows[row].values[column])
    }

    /// The table as markdown.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "| | {} |", self.columns.join(" | "));
        let _ = writeln!(out, "|---|{}", "---|".repeat(self.columns.len()));
        for row in &self.rows {
            let cells: Vec<String> = row
                .values
                .iter()
                .zip(&self.decimals)
                .map(|(values, &decimals)| cell(values, decimals))
                .collect();
            let _ = writeln!(out, "| {} | {} |", row.label, cells.join(" | "));
        }
        out
    }
}

/// A median with its range over repeats, e.g. `12.3 (11.9–12.8)`.
fn cell(values: &[f64], decimals: usize) -> String {
    if values.is_empty() || values.iter().any(|v| v.is_nan()) {
        return "–".to_string();
    }
    let med = median(values);
    if values.len() == 1 {
        return fmt(med, decimals);
    }
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!(
        "{} ({}–{})",
        fmt(med, decimals),
        fmt(min, decimals),
        fmt(max, decimals)
    )
}

/// A number with `decimals` places.
pub fn fmt(value: f64, decimals: usize) -> String {
    format!("{value:.decimals$}")
}

/// CPU model, core count, memory, kernel and disk, from /proc and the environment.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(str::trim)
        .unwrap_or("unknown CPU")
        .to_string();
    let mhz = cpuinfo
        .lines()
        .find(|l| l.starts_with("cpu MHz"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kb = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string();
    let load = std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    format!(
        "{model} ({mhz} MHz), {cores} cores (nproc), {:.1} GiB RAM, Linux {kernel}; load average at start: {load}",
        mem_kb / 1024.0 / 1024.0
    )
}

/// Flushes every dirty page of the machine to disk (`sync`), so writeback left by an earlier
/// phase does not land in the next timed one. Best effort: a missing `sync` is ignored.
pub fn settle_io() {
    let _ = std::process::Command::new("sync").status();
}

/// The resident set size of this process, in bytes (VmRSS from /proc/self/status).
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 50.0), 50.0);
        assert_eq!(percentile(&values, 99.0), 99.0);
        assert_eq!(percentile(&values, 100.0), 100.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
        assert!(percentile(&[], 50.0).is_nan());
    }

    #[test]
    fn cells_show_median_and_range() {
        assert_eq!(cell(&[1.0, 3.0, 2.0], 1), "2.0 (1.0–3.0)");
        assert_eq!(cell(&[5.0], 0), "5");
        assert_eq!(cell(&[f64::NAN], 0), "–");
    }
}
