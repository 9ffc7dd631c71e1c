//! `weft`: the command line client of a Weft server.
//!
//! ```text
//! export WEFT_ADDR=http://127.0.0.1:8080 WEFT_TOKEN=...
//! weft start --type checkout --input '{"id": "order-1", ...}' --id order-1
//! weft list --status waiting
//! weft describe order-42
//! weft decide expense-7 approve --comment "fine"
//! weft events order-42
//! weft schedule create nightly --type report --input '"ops"' --cron '0 2 * * *' --time-zone Europe/Berlin
//! ```
//!
//! The token comes from `WEFT_TOKEN` only, never from a flag (a process's arguments are
//! visible to every user of the machine). Exit codes tell failures apart: see `client::exit`.

mod client;
mod doctor;
mod events;
mod output;
mod schedule;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

use client::{CliError, Client, segment};
use output::{Format, ago, cell, table};

/// The Weft command line: a client of a Weft server's HTTP API.
#[derive(Debug, Parser)]
#[command(name = "weft", version, about, long_about = None)]
struct Cli {
    /// The server's address.
    #[arg(
        long,
        env = "WEFT_ADDR",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    addr: String,
    /// The PEM file of the CA that signed an HTTPS server's certificate (for a private CA or
    /// a self-signed certificate); without it, the system's trusted roots are used. HTTPS
    /// needs a weft built with `--features tls`.
    #[arg(long, env = "WEFT_CA_CERT", global = true)]
    ca_cert: Option<std::path::PathBuf>,
    /// How to print results.
    #[arg(long, short, value_enum, default_value = "table", global = true)]
    output: Format,
    #[command(subcommand)]
    command: Command,
}

/// Which workflows.
#[derive(Debug, Clone, Default, Args)]
struct FilterArgs {
    /// Only this status: running, waiting, completed, failed, cancelled, parked, timed_out.
    #[arg(long)]
    status: Option<String>,
    /// Only this workflow type.
    #[arg(long = "type")]
    workflow_type: Option<String>,
    /// Only ids starting with this.
    #[arg(long)]
    id_prefix: Option<String>,
    /// Only workflows whose search attribute NAME has the text VALUE (repeatable).
    #[arg(long = "attr", value_name = "NAME=VALUE")]
    attributes: Vec<String>,
    /// Only workflows whose search attribute NAME has the integer VALUE (repeatable).
    #[arg(long = "attr-int", value_name = "NAME=VALUE")]
    int_attributes: Vec<String>,
}

impl FilterArgs {
    fn split(pair: &str) -> Result<(&str, &str), CliError> {
        pair.split_once('=')
            .ok_or_else(|| CliError::Usage(format!("`{pair}` is not NAME=VALUE")))
    }

    /// As query parameters.
    fn query(&self) -> Result<Vec<(String, String)>, CliError> {
        let mut query = Vec::new();
        let mut push = |k: &str, v: &Option<String>| {
            if let Some(v) = v {
                query.push((k.to_string(), v.clone()));
            }
        };
        push("status", &self.status);
        push("type", &self.workflow_type);
        push("id_prefix", &self.id_prefix);
        for pair in &self.attributes {
            let (name, value) = Self::split(pair)?;
            query.push((format!("attr.{name}"), value.to_string()));
        }
        for pair in &self.int_attributes {
            let (name, value) = Self::split(pair)?;
            query.push((format!("attr_int.{name}"), value.to_string()));
        }
        Ok(query)
    }

    /// As the JSON filter of a bulk request.
    fn json(&self) -> Result<Value, CliError> {
        let mut filter = serde_json::Map::new();
        if let Some(s) = &self.status {
            filter.insert("status".into(), json!(s));
        }
        if let Some(t) = &self.workflow_type {
            filter.insert("type".into(), json!(t));
        }
        if let Some(p) = &self.id_prefix {
            filter.insert("id_prefix".into(), json!(p));
        }
        let mut attributes = serde_json::Map::new();
        for pair in &self.attributes {
            let (name, value) = Self::split(pair)?;
            attributes.insert(name.into(), json!(value));
        }
        for pair in &self.int_attributes {
            let (name, value) = Self::split(pair)?;
            let value: i64 = value
                .parse()
                .map_err(|_| CliError::Usage(format!("`{pair}`: VALUE must be an integer")))?;
            attributes.insert(name.into(), json!(value));
        }
        if !attributes.is_empty() {
            filter.insert("attributes".into(), Value::Object(attributes));
        }
        Ok(Value::Object(filter))
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a workflow by type name with JSON input.
    Start {
        /// The workflow type's name.
        #[arg(long = "type")]
        workflow_type: String,
        /// The input, as JSON.
        #[arg(long, default_value = "null")]
        input: String,
        /// The workflow id (generated when absent).
        #[arg(long)]
        id: Option<String>,
        /// A retried start with the same key returns the same workflow.
        #[arg(long)]
        idempotency_key: Option<String>,
        /// Wait up to this many ms for the result.
        #[arg(long)]
        wait_ms: Option<u64>,
    },
    /// Show a workflow's result, waiting up to --wait-ms for it.
    Result {
        /// The workflow id.
        id: String,
        /// Wait up to this many ms.
        #[arg(long, default_value_t = 0)]
        wait_ms: u64,
    },
    /// Send a signal by name, with a JSON payload.
    Signal {
        /// The workflow id.
        id: String,
        /// The signal's name.
        name: String,
        /// The payload, as JSON.
        #[arg(long, default_value = "null")]
        payload: String,
        /// Deduplicate on this id.
        #[arg(long)]
        signal_id: Option<String>,
    },
    /// Send an update by name and wait for its answer.
    Update {
        /// The workflow id.
        id: String,
        /// The update's name.
        name: String,
        /// The request, as JSON.
        #[arg(long, default_value = "null")]
        request: String,
        /// Names the update, so a retry gets the same answer.
        #[arg(long)]
        update_id: Option<String>,
        /// Wait up to this many ms for the answer.
        #[arg(long)]
        wait_ms: Option<u64>,
    },
    /// List workflows, a page at a time.
    List {
        #[command(flatten)]
        filter: FilterArgs,
        /// How many per page.
        #[arg(long, default_value_t = 50)]
        page_size: usize,
        /// Continue after a previous page (its next_cursor).
        #[arg(long)]
        cursor: Option<String>,
        /// Follow the cursor to the last page.
        #[arg(long)]
        all: bool,
    },
    /// Count workflows, grouped.
    Count {
        #[command(flatten)]
        filter: FilterArgs,
        /// status, type, or attribute:NAME.
        #[arg(long, default_value = "status")]
        group_by: String,
    },
    /// Show one workflow: status, the live checkpoint as JSON, and what it waits on.
    Describe {
        /// The workflow id.
        id: String,
    },
    /// Answer a query registered for the workflow.
    Query {
        /// The workflow id.
        id: String,
        /// The query's name.
        name: String,
    },
    /// Request cancellation of a workflow.
    Cancel {
        /// The workflow id.
        id: String,
    },
    /// Retry a parked workflow once its cause is fixed.
    Retry {
        /// The workflow id.
        id: String,
    },
    /// Delete a finished workflow and everything stored under its id (admin).
    Purge {
        /// The workflow id.
        id: String,
    },
    /// List pending reviews.
    Reviews {
        /// Only reviews listing this reviewer.
        #[arg(long)]
        reviewer: Option<String>,
        /// Only workflows whose id starts with this.
        #[arg(long)]
        id_prefix: Option<String>,
    },
    /// Decide the review a workflow waits on, in the name of your token.
    Decide {
        /// The workflow id.
        id: String,
        /// approve or reject.
        #[arg(value_parser = ["approve", "reject"])]
        decision: String,
        /// Why, or any remark.
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// Act on every workflow matching a filter (admin).
    Bulk {
        /// cancel, signal or purge.
        #[arg(value_parser = ["cancel", "signal", "purge"])]
        action: String,
        /// For `bulk signal`: the signal's name.
        #[arg(long)]
        signal: Option<String>,
        /// For `bulk signal`: the payload, as JSON.
        #[arg(long, default_value = "null")]
        payload: String,
        #[command(flatten)]
        filter: FilterArgs,
        /// Only say how many match.
        #[arg(long)]
        dry_run: bool,
        /// Act on at most this many.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Follow live events: one workflow's, or every workflow's.
    Events {
        /// Only this workflow (its stream ends when it finishes).
        id: Option<String>,
        /// Only this workflow type (all workflows only).
        #[arg(long = "type")]
        workflow_type: Option<String>,
        /// Only steps that leave this status (all workflows only).
        #[arg(long)]
        status: Option<String>,
        /// Resume after this event id.
        #[arg(long)]
        last_event_id: Option<u64>,
    },
    /// Write a verified backup of the store into the server's backup directory, while it runs
    /// (admin).
    Backup {
        /// The file name inside the server's backup directory (default `weft-<ms>.redb`).
        name: Option<String>,
    },
    /// Install a backup file as a store, offline, after checking its integrity and format
    /// version. Runs here, not on the server: stop the server before restoring over its store.
    Restore {
        /// The backup file.
        backup: std::path::PathBuf,
        /// Where the store goes (the server's store path).
        target: std::path::PathBuf,
        /// Replace a store already at the target.
        #[arg(long)]
        replace: bool,
    },
    /// Durable schedules: create, list, describe, pause, resume, trigger, backfill, delete.
    #[command(subcommand)]
    Schedule(schedule::ScheduleCommand),
    /// Confirm recovery after a deploy: what the engine found in flight at start, by status,
    /// and what it resumed. Exits 8 when some workflows could not be resumed.
    Recovery,
    /// Show the server's identity, versions, ownership epoch and limits.
    ClusterInfo,
    /// Check the server, the token and readiness, with a fix for each failure; with --store,
    /// check a store file offline instead (integrity and format version, read-only).
    Doctor {
        /// A redb store file to check offline, read-only (stop the server that owns it first,
        /// or check a backup). Its integrity check runs on a copy in the temp directory.
        #[arg(long)]
        store: Option<std::path::PathBuf>,
    },
    /// Compact a redb store file offline, giving the space of purged workflows back to the
    /// file system. Needs the file to itself: stop the server first (and take a backup).
    Compact {
        /// The store's redb file.
        store: std::path::PathBuf,
    },
    /// Print the CLI's version.
    Version,
}

/// Parses a JSON argument.
fn json_arg(flag: &str, text: &str) -> Result<Value, CliError> {
    serde_json::from_str(text)
        .map_err(|e| CliError::Usage(format!("{flag} is not valid JSON ({e}): {text}")))
}

/// A result for people.
fn result_text(r: &Value) -> String {
    let mut rows = vec![
        vec!["id".to_string(), cell(&r["id"])],
        vec!["status".into(), cell(&r["status"])],
    ];
    if !r["output"].is_null() {
        rows.push(vec!["output".into(), r["output"].to_string()]);
    }
    if !r["error"].is_null() {
        rows.push(vec!["error".into(), r["error"].to_string()]);
    }
    table(&["FIELD", "VALUE"], &rows)
}

fn token() -> Option<String> {
    std::env::var("WEFT_TOKEN").ok()
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let client = Client::new(&cli.addr, token(), cli.ca_cert.as_deref())?;
    let format = cli.output;
    match cli.command {
        Command::Start {
            workflow_type,
            input,
            id,
            idempotency_key,
            wait_ms,
        } => {
            let mut body = json!({ "type": workflow_type, "input": json_arg("--input", &input)? });
            for (key, value) in [("id", id), ("idempotency_key", idempotency_key)] {
                if let Some(value) = value {
                    body[key] = json!(value);
                }
            }
            if let Some(wait_ms) = wait_ms {
                body["wait_ms"] = json!(wait_ms);
            }
            let started = client
                .call(Method::POST, "/v1/workflows", Some(body))
                .await?;
            output::print(format, &started, None, |s| {
                let mut out = format!("started {} ({})\n", cell(&s["id"]), cell(&s["type"]));
                if s["result"].is_object() {
                    out.push_str(&result_text(&s["result"]));
                }
                out
            });
        }
        Command::Result { id, wait_ms } => {
            let result = client
                .get(
                    &format!("/v1/workflows/{}/result", segment(&id)),
                    &[("wait_ms".to_string(), wait_ms.to_string())],
                )
                .await?;
            output::print(format, &result, None, result_text);
        }
        Command::Signal {
            id,
            name,
            payload,
            signal_id,
        } => {
            let mut body = json!({ "payload": json_arg("--payload", &payload)? });
            if let Some(signal_id) = signal_id {
                body["signal_id"] = json!(signal_id);
            }
            let done = client
                .call(
                    Method::POST,
                    &format!("/v1/workflows/{}/signals/{}", segment(&id), segment(&name)),
                    Some(body),
                )
                .await?;
            output::print(format, &done, None, |_| {
                format!("signal {name} stored for {id}\n")
            });
        }
        Command::Update {
            id,
            name,
            request,
            update_id,
            wait_ms,
        } => {
            let mut body = json!({ "request": json_arg("--request", &request)? });
            if let Some(update_id) = update_id {
                body["update_id"] = json!(update_id);
            }
            if let Some(wait_ms) = wait_ms {
                body["wait_ms"] = json!(wait_ms);
            }
            let done = client
                .call(
                    Method::POST,
                    &format!("/v1/workflows/{}/updates/{}", segment(&id), segment(&name)),
                    Some(body),
                )
                .await?;
            output::print(format, &done, None, |d| {
                if d["outcome"] == json!("update_answered") {
                    format!(
                        "{}\n",
                        serde_json::to_string_pretty(&d["result"]).unwrap_or_default()
                    )
                } else {
                    format!(
                        "not answered yet; it stays queued: run again with --update-id {}\n",
                        cell(&d["update_id"])
                    )
                }
            });
        }
        Command::List {
            filter,
            page_size,
            mut cursor,
            all,
        } => {
            let mut items = Vec::new();
            let next = loop {
                let mut query = filter.query()?;
                query.push(("page_size".into(), page_size.to_string()));
                if let Some(c) = &cursor {
                    query.push(("cursor".into(), c.clone()));
                }
                let page = client.get("/v1/workflows", &query).await?;
                items.extend(page["items"].as_array().cloned().unwrap_or_default());
                let next = page["next_cursor"].as_str().map(str::to_string);
                match next {
                    Some(next) if all => cursor = Some(next),
                    other => break other,
                }
            };
            let page = json!({ "items": items, "next_cursor": next });
            output::print(format, &page, Some("items"), |page| {
                let rows: Vec<Vec<String>> = page["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|w| {
                        vec![
                            cell(&w["id"]),
                            cell(&w["type"]),
                            cell(&w["status"]),
                            cell(&w["step"]),
                            ago(&w["updated_at_ms"]),
                        ]
                    })
                    .collect();
                let mut out = table(&["ID", "TYPE", "STATUS", "STEP", "UPDATED"], &rows);
                if let Some(next) = page["next_cursor"].as_str() {
                    out.push_str(&format!("(more: --cursor {next})\n"));
                }
                out
            });
        }
        Command::Count { filter, group_by } => {
            let mut query = filter.query()?;
            query.push(("group_by".into(), group_by));
            let counts = client.get("/v1/workflow-counts", &query).await?;
            output::print(format, &counts, Some("groups"), |counts| {
                let mut rows: Vec<Vec<String>> = counts["groups"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|g| vec![cell(&g["group"]), cell(&g["count"])])
                    .collect();
                rows.push(vec!["total".into(), cell(&counts["total"])]);
                table(&["GROUP", "COUNT"], &rows)
            });
        }
        Command::Describe { id } => {
            let d = client
                .get(&format!("/v1/workflows/{}", segment(&id)), &[])
                .await?;
            output::print(format, &d, None, describe_text);
        }
        Command::Query { id, name } => {
            let answer = client
                .get(
                    &format!("/v1/workflows/{}/queries/{}", segment(&id), segment(&name)),
                    &[],
                )
                .await?;
            output::print(format, &answer, None, |a| {
                format!(
                    "{}\n",
                    serde_json::to_string_pretty(&a["result"]).unwrap_or_default()
                )
            });
        }
        Command::Cancel { id } => {
            let done = client
                .call(
                    Method::POST,
                    &format!("/v1/workflows/{}/cancel", segment(&id)),
                    None,
                )
                .await?;
            output::print(format, &done, None, |_| {
                format!("cancellation of {id} stored\n")
            });
        }
        Command::Retry { id } => {
            let done = client
                .call(
                    Method::POST,
                    &format!("/v1/workflows/{}/retry", segment(&id)),
                    None,
                )
                .await?;
            output::print(format, &done, None, |_| {
                format!("retry of {id} requested\n")
            });
        }
        Command::Purge { id } => {
            let done = client
                .call(
                    Method::DELETE,
                    &format!("/v1/workflows/{}", segment(&id)),
                    None,
                )
                .await?;
            output::print(format, &done, None, |_| format!("{id} purged\n"));
        }
        Command::Reviews {
            reviewer,
            id_prefix,
        } => {
            let mut query = Vec::new();
            if let Some(r) = reviewer {
                query.push(("reviewer".to_string(), r));
            }
            if let Some(p) = id_prefix {
                query.push(("workflow_id_prefix".to_string(), p));
            }
            let list = client.get_all("/v1/reviews", &query).await?;
            output::print(format, &list, Some("items"), |list| {
                let rows: Vec<Vec<String>> = list["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|r| {
                        vec![
                            cell(&r["workflow_id"]),
                            cell(&r["title"]),
                            r["reviewers"]
                                .as_array()
                                .map(|a| a.iter().map(cell).collect::<Vec<_>>().join(","))
                                .unwrap_or_default(),
                            ago(&r["deadline_ms"]),
                        ]
                    })
                    .collect();
                table(&["WORKFLOW", "TITLE", "REVIEWERS", "DEADLINE"], &rows)
            });
        }
        Command::Decide {
            id,
            decision,
            comment,
        } => {
            let done = client
                .call(
                    Method::POST,
                    &format!("/v1/workflows/{}/review", segment(&id)),
                    Some(json!({ "decision": decision, "comment": comment })),
                )
                .await?;
            output::print(format, &done, None, |_| {
                format!("review of {id}: {decision} recorded\n")
            });
        }
        Command::Bulk {
            action,
            signal,
            payload,
            filter,
            dry_run,
            limit,
        } => {
            let mut body = json!({ "filter": filter.json()?, "dry_run": dry_run });
            match (action.as_str(), signal) {
                ("signal", Some(signal)) => {
                    body["signal"] = json!(signal);
                    body["payload"] = json_arg("--payload", &payload)?;
                }
                ("signal", None) => {
                    return Err(CliError::Usage("bulk signal needs --signal NAME".into()));
                }
                (_, Some(_)) => {
                    return Err(CliError::Usage(
                        "--signal goes with bulk signal only".into(),
                    ));
                }
                _ => {}
            }
            if let Some(limit) = limit {
                body["limit"] = json!(limit);
            }
            let done = client
                .call(Method::POST, &format!("/v1/bulk/{action}"), Some(body))
                .await?;
            output::print(format, &done, None, |r| {
                let mut out = if dry_run {
                    format!(
                        "{} workflow(s) match; nothing changed\n",
                        cell(&r["matched"])
                    )
                } else {
                    format!(
                        "{action}: {} of {} succeeded, {} failed\n",
                        cell(&r["succeeded"]),
                        cell(&r["matched"]),
                        cell(&r["failed"])
                    )
                };
                for f in r["failures"].as_array().into_iter().flatten() {
                    out.push_str(&format!("  {}: {}\n", cell(&f["id"]), cell(&f["message"])));
                }
                if r["truncated"] == json!(true) {
                    out.push_str("more match: run it again to go on\n");
                }
                out
            });
        }
        Command::Events {
            id,
            workflow_type,
            status,
            last_event_id,
        } => {
            events::follow(&client, format, id, workflow_type, status, last_event_id).await?;
        }
        Command::Recovery => {
            let report = client.get("/v1/recovery", &[]).await?;
            output::print(format, &report, None, recovery_text);
            let unresolved = report["unresolved"].as_u64().unwrap_or(0);
            if unresolved > 0 {
                return Err(CliError::Unresolved(unresolved));
            }
        }
        Command::ClusterInfo => {
            let info = client.get("/v1/cluster/info", &[]).await?;
            output::print(format, &info, None, |i| {
                let rows = vec![
                    vec!["server version".into(), cell(&i["server_version"])],
                    vec!["build commit".into(), cell(&i["build_commit"])],
                    vec!["api version".into(), cell(&i["api_version"])],
                    vec!["payload codec".into(), cell(&i["payload_codec"])],
                    vec!["store format".into(), cell(&i["store_format_version"])],
                    vec!["ownership epoch".into(), cell(&i["ownership_epoch"])],
                    vec!["fenced".into(), cell(&i["fenced"])],
                    vec!["uptime (s)".into(), cell(&i["uptime_seconds"])],
                    vec!["limits".into(), i["limits"].to_string()],
                    vec!["stats".into(), i["stats"].to_string()],
                ];
                table(&["FIELD", "VALUE"], &rows)
            });
        }
        Command::Doctor { store: None } => doctor::run(&client, format).await?,
        Command::Doctor { store: Some(store) } => doctor::store(&store, format).await?,
        Command::Compact { store } => {
            let path = store.clone();
            let report = tokio::task::spawn_blocking(move || weft_runtime::storage::compact(&path))
                .await
                .map_err(|e| CliError::Protocol(e.to_string()))??;
            let done = json!({
                "path": store.display().to_string(),
                "bytes_before": report.bytes_before,
                "bytes_after": report.bytes_after,
                "entries": report.entries,
            });
            output::print(format, &done, None, |d| {
                format!(
                    "compacted {}: {} -> {} bytes ({} entries)\n",
                    cell(&d["path"]),
                    cell(&d["bytes_before"]),
                    cell(&d["bytes_after"]),
                    cell(&d["entries"])
                )
            });
        }
        Command::Schedule(command) => schedule::run(&client, format, command).await?,
        Command::Backup { name } => {
            let body = json!({ "name": name });
            let done = client
                .call(Method::POST, "/v1/admin/backup", Some(body))
                .await?;
            output::print(format, &done, None, |b| {
                let rows = vec![
                    vec!["path".to_string(), cell(&b["path"])],
                    vec!["bytes".into(), cell(&b["bytes"])],
                    vec!["entries".into(), cell(&b["entries"])],
                    vec!["sha256".into(), cell(&b["checksum"])],
                    vec!["format version".into(), cell(&b["format_version"])],
                    vec!["weft version".into(), cell(&b["weft_version"])],
                    vec!["owner epoch".into(), cell(&b["owner_epoch"])],
                ];
                table(&["FIELD", "VALUE"], &rows)
            });
        }
        Command::Restore {
            backup,
            target,
            replace,
        } => {
            let options = weft_runtime::storage::RestoreOptions { replace };
            let (from, to) = (backup.clone(), target.clone());
            let manifest = tokio::task::spawn_blocking(move || {
                weft_runtime::storage::restore(&from, &to, options)
            })
            .await
            .map_err(|e| CliError::Protocol(e.to_string()))??;
            let done = json!({
                "target": target.display().to_string(),
                "entries": manifest.entries,
                "checksum": manifest.checksum,
                "format_version": manifest.meta.format_version,
                "weft_version": manifest.meta.weft_version,
                "owner_epoch": manifest.meta.owner_epoch,
                "created_at_ms": manifest.meta.created_at_ms,
            });
            output::print(format, &done, None, |d| {
                format!(
                    "restored {} entries (format {}, taken by weft {}) to {}; start the server on it\n",
                    cell(&d["entries"]),
                    cell(&d["format_version"]),
                    cell(&d["weft_version"]),
                    cell(&d["target"])
                )
            });
        }
        Command::Version => {
            let v = json!({ "cli_version": env!("CARGO_PKG_VERSION") });
            output::print(format, &v, None, |_| {
                format!("weft {}\n", env!("CARGO_PKG_VERSION"))
            });
        }
    }
    Ok(())
}

/// `recovery` for people: the counts by status, then what could not be resumed.
fn recovery_text(r: &Value) -> String {
    if r["ran"] != json!(true) {
        return "recovery did not run: the engine was built with recover(false)\n".to_string();
    }
    let rows = vec![
        vec!["in flight".to_string(), cell(&r["in_flight"])],
        vec!["running".into(), cell(&r["running"])],
        vec!["waiting".into(), cell(&r["waiting"])],
        vec!["parked".into(), cell(&r["parked"])],
        vec!["unreadable".into(), cell(&r["unreadable"])],
        vec!["resumed now".into(), cell(&r["resumed"])],
        vec!["armed (timer or signal)".into(), cell(&r["armed"])],
        vec!["unparked at start".into(), cell(&r["unparked"])],
        vec!["not resumable".into(), cell(&r["unresolved"])],
        vec!["took (ms)".into(), cell(&r["duration_ms"])],
        vec!["ownership epoch".into(), cell(&r["ownership_epoch"])],
    ];
    let mut out = table(&["RECOVERY", "COUNT"], &rows);
    let unresolved: Vec<Vec<String>> = r["unresolved_workflows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|u| vec![cell(&u["id"]), cell(&u["reason"])])
        .collect();
    if !unresolved.is_empty() {
        out.push_str("\nnot resumable:\n");
        out.push_str(&table(&["WORKFLOW", "WHY"], &unresolved));
    }
    out
}

/// `describe` for people: the fields, the pending command in words, the state as indented JSON.
fn describe_text(d: &Value) -> String {
    let mut rows = vec![
        vec!["id".to_string(), cell(&d["id"])],
        vec![
            "type".into(),
            format!("{} v{}", cell(&d["type"]), cell(&d["version"])),
        ],
        vec!["status".into(), cell(&d["status"])],
        vec!["step".into(), cell(&d["step"])],
        vec!["created".into(), ago(&d["created_at_ms"])],
        vec!["updated".into(), ago(&d["updated_at_ms"])],
    ];
    if let Some(words) = d["waiting_on"].as_str() {
        rows.push(vec!["waiting on".into(), words.to_string()]);
    }
    if !d["park_reason"].is_null() {
        rows.push(vec![
            "parked".into(),
            format!(
                "{}: {}",
                cell(&d["park_reason"]["code"]),
                cell(&d["park_reason"]["message"])
            ),
        ]);
    }
    if !d["error"].is_null() {
        rows.push(vec!["error".into(), cell(&d["error"])]);
    }
    if !d["parent"].is_null() {
        rows.push(vec!["parent".into(), cell(&d["parent"])]);
    }
    if d["attributes"].as_object().is_some_and(|a| !a.is_empty()) {
        rows.push(vec!["attributes".into(), d["attributes"].to_string()]);
    }
    let mut out = table(&["FIELD", "VALUE"], &rows);
    if let Some(name) = d["state_name"].as_str() {
        out.push_str(&format!(
            "\nstate ({name}):\n{}\n",
            serde_json::to_string_pretty(&d["state"]).unwrap_or_default()
        ));
    }
    if let Some(audit) = d["audit"].as_array().filter(|a| !a.is_empty()) {
        out.push_str("\naudit:\n");
        for e in audit {
            out.push_str(&format!(
                "  {} {} by {} ({})\n",
                ago(&e["at_ms"]),
                cell(&e["action"]),
                cell(&e["principal"]),
                cell(&e["outcome"])
            ));
        }
    }
    out
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    #[cfg(feature = "tls")]
    client::install_tls_provider();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("weft: cannot start: {e}");
            return ExitCode::from(client::exit::SERVER);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::from(client::exit::OK),
        Err(error) => {
            eprintln!("weft: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}
