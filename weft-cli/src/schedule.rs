//! `weft schedule ...`: durable schedules over the server's `/v1/schedules` routes.

use chrono::{DateTime, SecondsFormat, Utc};
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::{CliError, Client, segment};
use crate::output::{self, Format, cell, table};

/// What a schedule starts and when (for `create` and `update`).
#[derive(Debug, Clone, Args)]
pub struct SpecArgs {
    /// The workflow type each fire starts.
    #[arg(long = "type")]
    workflow_type: String,
    /// The workflow input, as JSON.
    #[arg(long, default_value = "null")]
    input: String,
    /// A cron expression of 5 to 7 fields, e.g. "0 9 * * MON-FRI".
    #[arg(
        long,
        conflicts_with = "every_ms",
        required_unless_present = "every_ms"
    )]
    cron: Option<String>,
    /// The IANA time zone the cron expression is read in (default UTC).
    #[arg(long, requires = "cron")]
    time_zone: Option<String>,
    /// Fire every this many ms instead of on a cron expression.
    #[arg(long)]
    every_ms: Option<u64>,
    /// With --every-ms: the time periods are counted from, in ms since the Unix epoch.
    #[arg(long, requires = "every_ms")]
    anchor_ms: Option<u64>,
    /// What a fire does while the previous run still runs.
    #[arg(long, default_value = "skip", value_parser = ["skip", "buffer_one", "buffer_all", "cancel_previous", "allow_all"])]
    overlap: String,
    /// After downtime, missed fires younger than this run; older ones are counted as missed.
    #[arg(long)]
    catchup_window_ms: Option<u64>,
    /// Each fire waits a deterministic pseudo-random delay below this.
    #[arg(long)]
    jitter_ms: Option<u64>,
    /// How many runs it starts in all before it stops.
    #[arg(long)]
    max_runs: Option<u64>,
}

impl SpecArgs {
    /// The JSON body of a create or an update.
    fn json(&self) -> Result<Value, CliError> {
        let mut body = json!({
            "type": self.workflow_type,
            "input": crate::json_arg("--input", &self.input)?,
            "overlap": self.overlap,
        });
        let optional = [
            ("cron", self.cron.clone().map(Value::from)),
            ("time_zone", self.time_zone.clone().map(Value::from)),
            ("every_ms", self.every_ms.map(Value::from)),
            ("anchor_ms", self.anchor_ms.map(Value::from)),
            ("catchup_window_ms", self.catchup_window_ms.map(Value::from)),
            ("jitter_ms", self.jitter_ms.map(Value::from)),
            ("max_runs", self.max_runs.map(Value::from)),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                body[key] = value;
            }
        }
        Ok(body)
    }
}

/// `weft schedule` subcommands.
#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Create a schedule (admin).
    Create {
        /// The schedule's id; each run's id is `<id>@<fire time>`.
        id: String,
        #[command(flatten)]
        spec: SpecArgs,
    },
    /// Replace what a schedule starts and when, keeping its history (admin).
    Update {
        /// The schedule's id.
        id: String,
        #[command(flatten)]
        spec: SpecArgs,
    },
    /// List every schedule.
    List,
    /// Show a schedule: its next fire times, last runs and counts.
    Describe {
        /// The schedule's id.
        id: String,
        /// How many next fire times to show.
        #[arg(long, default_value_t = 5)]
        next: usize,
    },
    /// Pause a schedule, with a note saying why (admin).
    Pause {
        /// The schedule's id.
        id: String,
        /// Why: describe shows it.
        #[arg(long)]
        note: Option<String>,
    },
    /// Resume a paused schedule; it next fires at its first fire time after now (admin).
    Resume {
        /// The schedule's id.
        id: String,
        /// Why: describe shows it.
        #[arg(long)]
        note: Option<String>,
    },
    /// Start the schedule's workflow now, whatever its trigger, overlap policy or pause say.
    Trigger {
        /// The schedule's id.
        id: String,
    },
    /// Run every fire of a past range, [FROM, TO); a fire that already ran is not run again.
    Backfill {
        /// The schedule's id.
        id: String,
        /// The first fire time included: RFC 3339 (2030-01-01T00:00:00Z) or ms since the epoch.
        #[arg(long)]
        from: String,
        /// The end of the range, excluded: RFC 3339 or ms since the epoch.
        #[arg(long)]
        to: String,
    },
    /// Delete a schedule; the runs it started are not touched (admin).
    Delete {
        /// The schedule's id.
        id: String,
    },
}

/// `text` as ms since the Unix epoch: an RFC 3339 time or an integer.
fn time_arg(flag: &str, text: &str) -> Result<i64, CliError> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|e| {
            CliError::Usage(format!(
                "{flag} {text:?} is neither RFC 3339 (2030-01-01T00:00:00Z) nor ms since the epoch: {e}"
            ))
        })
}

/// Ms since the epoch as RFC 3339 UTC, for tables.
fn when(ms: &Value) -> String {
    ms.as_i64()
        .and_then(DateTime::<Utc>::from_timestamp_millis)
        .map_or_else(
            || "-".to_string(),
            |t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        )
}

fn path(id: &str) -> String {
    format!("/v1/schedules/{}", segment(id))
}

/// Runs a `weft schedule` subcommand.
///
/// # Errors
///
/// [`CliError::Usage`] for bad arguments; the server's answer as [`CliError::Api`].
pub async fn run(
    client: &Client,
    format: Format,
    command: ScheduleCommand,
) -> Result<(), CliError> {
    match command {
        ScheduleCommand::Create { id, spec } => {
            let mut body = spec.json()?;
            body["id"] = json!(id);
            let done = client
                .call(Method::POST, "/v1/schedules", Some(body))
                .await?;
            output::print(format, &done, None, |_| format!("schedule {id} created\n"));
        }
        ScheduleCommand::Update { id, spec } => {
            let done = client
                .call(Method::PUT, &path(&id), Some(spec.json()?))
                .await?;
            output::print(format, &done, None, |_| format!("schedule {id} updated\n"));
        }
        ScheduleCommand::List => {
            let list = client.get_all("/v1/schedules", &[]).await?;
            output::print(format, &list, Some("items"), |list| {
                let rows: Vec<Vec<String>> = list["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|s| {
                        vec![
                            cell(&s["id"]),
                            cell(&s["type"]),
                            if s["paused"] == json!(true) {
                                "paused"
                            } else {
                                "active"
                            }
                            .to_string(),
                            when(&s["next_fire_ms"]),
                            cell(&s["started"]),
                            cell(&s["missed"]),
                        ]
                    })
                    .collect();
                table(
                    &["ID", "TYPE", "STATE", "NEXT FIRE", "STARTED", "MISSED"],
                    &rows,
                )
            });
        }
        ScheduleCommand::Describe { id, next } => {
            let d = client
                .get(&path(&id), &[("next".to_string(), next.to_string())])
                .await?;
            output::print(format, &d, None, describe_text);
        }
        ScheduleCommand::Pause { id, note } => {
            let done = client
                .call(
                    Method::POST,
                    &format!("{}/pause", path(&id)),
                    Some(json!({ "note": note })),
                )
                .await?;
            output::print(format, &done, None, |_| format!("schedule {id} paused\n"));
        }
        ScheduleCommand::Resume { id, note } => {
            let done = client
                .call(
                    Method::POST,
                    &format!("{}/resume", path(&id)),
                    Some(json!({ "note": note })),
                )
                .await?;
            output::print(format, &done, None, |_| format!("schedule {id} resumed\n"));
        }
        ScheduleCommand::Trigger { id } => {
            let done = client
                .call(Method::POST, &format!("{}/trigger", path(&id)), None)
                .await?;
            output::print(format, &done, None, runs_text);
        }
        ScheduleCommand::Backfill { id, from, to } => {
            let body = json!({
                "from_ms": time_arg("--from", &from)?,
                "to_ms": time_arg("--to", &to)?,
            });
            let done = client
                .call(Method::POST, &format!("{}/backfill", path(&id)), Some(body))
                .await?;
            output::print(format, &done, None, runs_text);
        }
        ScheduleCommand::Delete { id } => {
            let done = client.call(Method::DELETE, &path(&id), None).await?;
            output::print(format, &done, None, |_| format!("schedule {id} deleted\n"));
        }
    }
    Ok(())
}

fn runs_text(r: &Value) -> String {
    let ids: Vec<String> = r["workflow_ids"]
        .as_array()
        .into_iter()
        .flatten()
        .map(cell)
        .collect();
    let mut out = format!("{} run(s) of schedule {}\n", ids.len(), cell(&r["id"]));
    for id in ids {
        out.push_str(&format!("  {id}\n"));
    }
    out
}

/// `schedule describe` for people.
fn describe_text(d: &Value) -> String {
    let spec = &d["spec"];
    let trigger = match spec["cron"].as_str() {
        Some(cron) => format!(
            "cron `{cron}` in {}",
            spec["time_zone"].as_str().unwrap_or("UTC")
        ),
        None => format!(
            "every {} ms from {}",
            cell(&spec["every_ms"]),
            when(&spec["anchor_ms"])
        ),
    };
    let mut rows = vec![
        vec!["id".to_string(), cell(&d["id"])],
        vec!["type".into(), cell(&spec["type"])],
        vec!["input".into(), spec["input"].to_string()],
        vec!["trigger".into(), trigger],
        vec!["overlap".into(), cell(&spec["overlap"])],
        vec![
            "state".into(),
            if d["paused"] == json!(true) {
                "paused"
            } else {
                "active"
            }
            .into(),
        ],
        vec!["note".into(), cell(&d["note"])],
        vec!["started".into(), cell(&d["started"])],
        vec!["missed".into(), cell(&d["missed"])],
        vec!["skipped".into(), cell(&d["skipped"])],
        vec!["buffered".into(), cell(&d["buffered"])],
        vec!["remaining runs".into(), cell(&d["remaining_runs"])],
    ];
    if !d["last_error"].is_null() {
        rows.push(vec!["last error".into(), cell(&d["last_error"])]);
    }
    let mut out = table(&["FIELD", "VALUE"], &rows);
    out.push_str("\nnext fires:\n");
    for fire in d["next_fires_ms"].as_array().into_iter().flatten() {
        out.push_str(&format!("  {}\n", when(fire)));
    }
    let runs: Vec<Vec<String>> = d["recent_runs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            vec![
                when(&r["fire_time_ms"]),
                cell(&r["workflow_id"]),
                if r["status"].is_null() {
                    "purged".into()
                } else {
                    cell(&r["status"])
                },
            ]
        })
        .collect();
    if !runs.is_empty() {
        out.push_str("\nlast runs:\n");
        out.push_str(&table(&["FIRE TIME", "WORKFLOW", "STATUS"], &runs));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc_3339_or_ms() {
        assert_eq!(time_arg("--from", "1500").unwrap(), 1500);
        assert_eq!(time_arg("--from", "1970-01-01T00:00:01Z").unwrap(), 1000);
        assert_eq!(
            time_arg("--from", "2030-01-01T01:00:00+01:00").unwrap(),
            1_893_456_000_000
        );
        assert!(matches!(
            time_arg("--to", "yesterday"),
            Err(CliError::Usage(_))
        ));
        assert_eq!(when(&json!(1_893_456_000_000_i64)), "2030-01-01T00:00:00Z");
        assert_eq!(when(&Value::Null), "-");
    }
}
