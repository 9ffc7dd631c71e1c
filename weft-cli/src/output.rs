//! How results are printed: aligned tables for people, JSON or JSON lines for scripts.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// The output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns (the default).
    Table,
    /// One JSON document.
    Json,
    /// One JSON value per line (a list's items, a stream's events).
    Jsonl,
}

/// Renders rows under headers with every column aligned.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(width) = widths.get_mut(i) {
                *width = (*width).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(cell);
                text.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

/// A JSON value as a table cell: strings bare, null as `-`.
pub fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Milliseconds since the epoch as "12s ago" / "in 3m".
pub fn ago(ms: &Value) -> String {
    let Some(ms) = ms.as_i64() else {
        return "-".to_string();
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let delta = now - ms;
    let (amount, future) = (delta.unsigned_abs() / 1000, delta < 0);
    let text = match amount {
        0..=119 => format!("{amount}s"),
        120..=7199 => format!("{}m", amount / 60),
        7200..=172_799 => format!("{}h", amount / 3600),
        _ => format!("{}d", (amount + 43_200) / 86_400),
    };
    if future {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

/// Prints `value` as `format` asks, with `table` rendering it for people. For `jsonl`, the
/// array at `items` (when given) is printed one element per line.
pub fn print(
    format: Format,
    value: &Value,
    items: Option<&str>,
    table: impl FnOnce(&Value) -> String,
) {
    match format {
        Format::Table => print!("{}", table(value)),
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        ),
        Format::Jsonl => match items.and_then(|key| value[key].as_array()) {
            Some(items) => {
                for item in items {
                    println!("{item}");
                }
            }
            None => println!("{value}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_on_the_widest_cell() {
        let rendered = table(
            &["ID", "STATUS"],
            &[
                vec!["order-1".into(), "waiting".into()],
                vec!["o".into(), "completed".into()],
            ],
        );
        assert_eq!(
            rendered,
            "ID       STATUS\norder-1  waiting\no        completed\n"
        );
    }
}
